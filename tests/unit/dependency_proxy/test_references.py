import pytest

from app.dependency_proxy.errors import InvalidReference
from app.dependency_proxy.references import Kind, manifest_file_name, parse_path

DIGEST = "sha256:" + "ab" * 32


def test_manifest_by_tag_in_a_nested_group() -> None:
    ref = parse_path("acme/platform/ci/dependency_proxy/containers/bitnami/redis/manifests/7.2")
    assert (ref.group_path, ref.image, ref.kind, ref.reference) == (
        "acme/platform/ci",
        "bitnami/redis",
        Kind.MANIFEST,
        "7.2",
    )
    assert ref.repository == "acme/platform/ci/dependency_proxy/containers/bitnami/redis"
    assert not ref.is_digest


def test_blob_by_digest() -> None:
    ref = parse_path(f"acme/dependency_proxy/containers/alpine/blobs/{DIGEST}")
    assert ref.kind is Kind.BLOB and ref.is_digest


def test_an_image_called_blobs_or_manifests_still_parses() -> None:
    ref = parse_path(f"acme/dependency_proxy/containers/tools/blobs/manifests/{DIGEST}")
    assert ref.image == "tools/blobs" and ref.kind is Kind.MANIFEST


def test_an_image_called_manifests_has_blobs_too() -> None:
    ref = parse_path(f"acme/dependency_proxy/containers/manifests/blobs/{DIGEST}")
    assert (ref.image, ref.kind, ref.reference) == ("manifests", Kind.BLOB, DIGEST)


@pytest.mark.parametrize("suffix", [".sig", ".att", ".sbom", ""])
def test_cosign_style_tags_are_tags(suffix: str) -> None:
    tag = DIGEST.replace(":", "-") + suffix
    ref = parse_path(f"acme/dependency_proxy/containers/alpine/manifests/{tag}")
    assert (ref.kind, ref.reference, ref.is_digest) == (Kind.MANIFEST, tag, False)


def test_tags_list_and_referrers() -> None:
    tags = parse_path("acme/dependency_proxy/containers/bitnami/redis/tags/list")
    assert (tags.image, tags.kind, tags.reference) == ("bitnami/redis", Kind.TAGS, "list")
    referrers = parse_path(f"acme/dependency_proxy/containers/alpine/referrers/{DIGEST}")
    assert (referrers.kind, referrers.reference) == (Kind.REFERRERS, DIGEST)


@pytest.mark.parametrize(
    ("reference", "part"),
    [("bad!tag", "reference"), ("-x", "reference"), ("sha256:XYZ", "digest"), ("md5:a", "digest")],
)
def test_which_part_of_a_manifest_reference_is_wrong(reference: str, part: str) -> None:
    with pytest.raises(InvalidReference) as raised:
        parse_path(f"acme/dependency_proxy/containers/alpine/manifests/{reference}")
    assert raised.value.part == part


@pytest.mark.parametrize(
    "path",
    [
        "acme/dependency_proxy/containers/UPPER/manifests/latest",
        "acme/dependency_proxy/containers/a//b/manifests/latest",
        "acme/dependency_proxy/containers/../x/manifests/latest",
        "acme/dependency_proxy/containers/a/b/c/d/e/f/manifests/latest",
        "acme/dependency_proxy/containers/alpine/manifests/" + "t" * 129,
        "acme/dependency_proxy/containers/alpine/manifests/-x",
        "acme/dependency_proxy/containers/alpine/blobs/sha256:XYZ",
        "acme/dependency_proxy/containers/alpine/blobs/md5:abc",
        "ac me/dependency_proxy/containers/alpine/manifests/latest",
        "acme/dependency_proxy/containers/alpine",
        "acme/alpine/manifests/latest",
    ],
)
def test_anything_off_grammar_is_invalid(path: str) -> None:
    with pytest.raises(InvalidReference):
        parse_path(path)


def test_file_names_follow_gitlab() -> None:
    assert manifest_file_name("alpine", "latest") == "alpine:latest.json"
    assert manifest_file_name("alpine", DIGEST) == f"alpine:{DIGEST}.json"


def test_image_size_is_config_plus_layers_and_none_for_an_index() -> None:
    from app.dependency_proxy.references import image_size

    manifest = b'{"config": {"size": 100}, "layers": [{"size": 1000}, {"size": 24}]}'
    assert image_size(manifest) == 1124
    assert image_size(b'{"manifests": [{"size": 500}]}') is None
    assert image_size(b"not json") is None
    assert image_size(b'{"config": {"size": -1}, "layers": []}') is None
