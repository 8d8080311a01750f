"""`dockyard upstream add|list|remove` through the real console script."""

from __future__ import annotations

import pytest

from tests.functional.test_cli import Cli


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    runner = Cli(tmp_path_factory.mktemp("cli-upstreams") / "data")
    assert "up to date" in runner("migrate").stdout
    runner("group", "create", "acme")
    runner("group", "create", "acme/platform")
    runner("group", "create", "solo")
    return runner


def test_a_group_starts_with_docker_hub_only(cli: Cli) -> None:
    listing = cli.json("upstream", "list", "solo")
    assert listing["default"] is True and listing["inherited_from"] is None
    assert [(item["name"], item["docker_hub"]) for item in listing["upstreams"]] == [
        ("docker-hub", True)
    ]


def test_add_list_remove_with_credentials_never_shown(cli: Cli) -> None:
    added = cli.json(
        "upstream",
        "add",
        "acme",
        "--url",
        "https://GHCR.io/",
        "--username",
        "octo",
        "--password-stdin",
        stdin="ghp-very-secret\n",
    )
    assert added["name"] == "ghcr.io" and added["url"] == "https://ghcr.io"
    assert added["position"] == 2 and added["has_credentials"] and added["username"] == "octo"
    first = cli.json(
        "upstream",
        "add",
        "acme",
        "--url",
        "http://127.0.0.1:5999",
        "--name",
        "private",
        "--position",
        "1",
    )
    assert first["position"] == 1

    listing = cli.json("upstream", "list", "acme")
    assert [item["name"] for item in listing["upstreams"]] == ["private", "docker-hub", "ghcr.io"]
    assert [item["position"] for item in listing["upstreams"]] == [1, 2, 3]
    plain = cli("upstream", "list", "acme").stdout
    assert "ghp-very-secret" not in plain and "ghp-very-secret" not in str(listing)
    assert "as octo" in plain

    # The subgroup inherits the list until it sets its own.
    inherited = cli.json("upstream", "list", "acme/platform")
    assert inherited["inherited_from"] == "acme"
    assert [item["name"] for item in inherited["upstreams"]] == ["private", "docker-hub", "ghcr.io"]
    message = cli.fails("upstream", "remove", "acme/platform", "ghcr.io")
    assert "inherits its upstreams from acme" in message

    assert cli.json("upstream", "remove", "acme", "private")["removed"] is True
    listing = cli.json("upstream", "list", "acme")
    assert [(item["name"], item["position"]) for item in listing["upstreams"]] == [
        ("docker-hub", 1),
        ("ghcr.io", 2),
    ]


def test_bad_input_is_one_clear_line(cli: Cli) -> None:
    assert "no path" in cli.fails("upstream", "add", "solo", "--url", "https://quay.io/v2/")
    assert "http(s)://host" in cli.fails("upstream", "add", "solo", "--url", "ftp://quay.io")
    assert "--password-stdin" in cli.fails(
        "upstream", "add", "solo", "--url", "https://quay.io", "--username", "u"
    )
    assert "upstream name" in cli.fails(
        "upstream", "add", "solo", "--url", "https://quay.io", "--name", "Bad Name"
    )
    assert "position must be between 1 and 2" in cli.fails(
        "upstream", "add", "solo", "--url", "https://quay.io", "--position", "5"
    )
    cli("upstream", "add", "solo", "--url", "https://quay.io")
    assert "already has an upstream for https://quay.io" in cli.fails(
        "upstream", "add", "solo", "--url", "https://quay.io", "--name", "again"
    )
    assert "no upstream named 'nope'" in cli.fails("upstream", "remove", "solo", "nope")
    assert "not found" in cli.fails("upstream", "list", "no-such-group")
