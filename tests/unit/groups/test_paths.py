import pytest

from app.groups.paths import full_path_error, path_error, username_error


@pytest.mark.parametrize("path", ["acme", "a", "A1", "my_group", "my-group", "my.group", "x" * 255])
def test_valid_paths_are_accepted(path: str) -> None:
    assert path_error(path, top_level=True) is None


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "blank"),
        ("-acme", "special character"),
        ("acme-", "special character"),
        (".acme", "special character"),
        ("acme.", "special character"),
        ("ac me", "only letters"),
        ("ac/me", "only letters"),
        ("acme%2e", "only letters"),
        ("..", "special character"),
        ("acme.git", ".git"),
        ("feed.atom", ".atom"),
        ("x" * 256, "too long"),
        ("admin", "reserved"),
        ("v2", "reserved"),
        ("dependency_proxy", "reserved"),
    ],
)
def test_invalid_paths_are_refused_with_a_reason(path: str, reason: str) -> None:
    error = path_error(path, top_level=True)
    assert error is not None and reason in error


def test_reserved_top_level_names_are_fine_for_subgroups() -> None:
    assert path_error("admin", top_level=False) is None
    assert path_error("dependency_proxy", top_level=False) is not None


def test_full_paths_check_every_segment_and_depth() -> None:
    assert full_path_error("acme/platform/ci") is None
    assert full_path_error("acme//ci") is not None
    assert full_path_error("acme/-bad") is not None
    assert full_path_error("/".join(["g"] * 21)) is not None


def test_usernames_follow_namespace_rules() -> None:
    assert username_error("alice") is None
    assert username_error("a") is not None
    assert username_error("root+x") is not None
    assert username_error("admin") is not None
