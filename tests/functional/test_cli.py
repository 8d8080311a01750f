"""The `dockyard` command through its real console-script entry point."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DOCKYARD = shutil.which("dockyard", path=str(Path(sys.executable).parent)) or "dockyard"


class Cli:
    def __init__(self, data_dir: Path) -> None:
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")},
            "DOCKYARD_DATA_DIR": str(data_dir),
        }

    def __call__(
        self, *args: str, stdin: str | None = None, ok: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [DOCKYARD, *args], env=self.env, input=stdin, capture_output=True, text=True, timeout=60
        )
        if ok:
            assert result.returncode == 0, result.stderr
        return result

    def json(self, *args: str, stdin: str | None = None) -> Any:
        return json.loads(self(*args, "--json", stdin=stdin).stdout)

    def fails(self, *args: str) -> str:
        result = self(*args, ok=False)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        return lines[0]


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    runner = Cli(tmp_path_factory.mktemp("cli") / "data")
    assert "up to date" in runner("migrate").stdout
    return runner


def test_the_done_when_scenario(cli: Cli) -> None:
    """User, nested group, membership, personal access token and deploy token."""
    alice = cli.json(
        "user",
        "create",
        "alice",
        "--email",
        "alice@example.com",
        "--password-stdin",
        stdin="alice-password\n",
    )
    assert alice["username"] == "alice" and alice["admin"] is False
    assert cli.json("group", "create", "acme")["full_path"] == "acme"
    assert cli.json("group", "create", "acme/platform", "--name", "Platform")["name"] == "Platform"
    member = cli.json("member", "add", "acme", "alice", "--role", "maintainer")
    assert member == {"group": "acme", "username": "alice", "role": "Maintainer"}
    members = cli.json("member", "list", "acme/platform")["members"]
    assert members == [
        {"username": "alice", "role": "Maintainer", "access_level": 40, "inherited_from": "acme"}
    ]

    token = cli.json(
        "token",
        "create",
        "alice",
        "--name",
        "ci",
        "--scopes",
        "read_registry,write_registry",
        "--expires-at",
        "2999-01-01",
    )
    assert token["token"].startswith("dypat-")
    listed = cli.json("token", "list", "alice")["tokens"]
    assert [item["name"] for item in listed] == ["ci"]
    assert token["token"] not in json.dumps(listed)

    deploy = cli.json(
        "deploy-token",
        "create",
        "acme/platform",
        "--name",
        "deploy",
        "--scopes",
        "read_registry,write_registry",
    )
    assert deploy["username"].startswith("dockyard+deploy-token-") and deploy["token"].startswith(
        "dydt-"
    )
    assert cli.json("deploy-token", "list", "acme/platform")["deploy_tokens"][0]["revoked"] is False
    assert cli.json("deploy-token", "revoke", "acme/platform", "deploy")["revoked"] is True
    assert cli.json("token", "revoke", "alice", "ci")["revoked"] is True

    assert [g["full_path"] for g in cli.json("group", "list")["groups"]] == [
        "acme",
        "acme/platform",
    ]
    assert cli.json("user", "block", "alice")["state"] == "blocked"
    assert cli.json("user", "unblock", "alice")["state"] == "active"
    cli("user", "set-password", "alice", "--password", "new-password-1")
    assert cli.json("member", "remove", "acme", "alice")["removed"] is True


def test_plain_output_prints_the_secret_once(cli: Cli) -> None:
    cli("user", "create", "bob", "--email", "bob@example.com", "--password", "bob-password")
    secret = cli("token", "create", "bob", "--name", "t", "--scopes", "api").stdout.strip()
    assert secret.startswith("dypat-")
    assert secret not in cli("token", "list", "bob").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("group", "create", "bad-"), "special character"),
        (("group", "create", "nope/child"), "parent group 'nope' not found"),
        (("member", "add", "missing", "alice", "--role", "owner"), "group 'missing' not found"),
        (("member", "add", "acme", "alice", "--role", "king"), "unknown role"),
        (
            ("user", "create", "x!", "--email", "x@example.com", "--password", "password1"),
            "username",
        ),
        (("user", "create", "carol", "--email", "carol@example.com"), "--password"),
        (("token", "create", "ghost", "--name", "n", "--scopes", "api"), "user 'ghost' not found"),
        (("token", "create", "alice", "--name", "n", "--scopes", "sudo"), "unknown scope"),
        (
            ("token", "create", "alice", "--name", "n", "--scopes", "api", "--expires-at", "soon"),
            "YYYY-MM-DD",
        ),
        (("deploy-token", "create", "acme", "--name", "n", "--scopes", "api"), "unknown scope"),
        (("token", "revoke", "alice", "never-made"), "no active token"),
    ],
)
def test_bad_input_gives_one_clear_line_and_non_zero_exit(
    cli: Cli, args: tuple[str, ...], message: str
) -> None:
    if not cli.json("user", "list")["users"]:
        cli(
            "user",
            "create",
            "alice",
            "--email",
            "alice@example.com",
            "--password",
            "alice-password",
        )
    if not cli.json("group", "list", "--search", "acme")["groups"]:
        cli("group", "create", "acme")
    assert message in cli.fails(*args)


def test_invalid_setting_stops_with_one_line(tmp_path: Path) -> None:
    runner = Cli(tmp_path / "data")
    runner.env["DOCKYARD_PORT"] = "eighty"
    assert (
        runner.fails("user", "list") == "error: DOCKYARD_PORT: invalid value 'eighty': not a number"
    )


def test_unmigrated_database_says_what_to_do(tmp_path: Path) -> None:
    runner = Cli(tmp_path / "data")
    assert "dockyard migrate" in runner.fails("user", "list")
    key_file = tmp_path / "data" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_group_access_tokens_from_the_shell(cli: Cli) -> None:
    """create prints the secret once; list shows role and last use; revoke ends it."""
    cli("group", "create", "tokens-acme")
    made = cli.json(
        "group-token",
        "create",
        "tokens-acme",
        "--name",
        "ci",
        "--role",
        "developer",
        "--scopes",
        "read_registry,write_registry",
        "--expires-at",
        "2999-01-01",
    )
    assert made["token"].startswith("dygat-") and made["role"] == "developer"
    assert made["username"].startswith("group_") and made["expires_at"] == "2999-01-01"
    listed = cli.json("group-token", "list", "tokens-acme")["group_access_tokens"]
    assert [(item["name"], item["access_level"], item["last_used_at"]) for item in listed] == [
        ("ci", 30, None)
    ]
    assert made["token"] not in json.dumps(listed)
    plain = cli("group-token", "list", "tokens-acme").stdout
    assert "ci\t" in plain and "Developer" in plain and "last used never" in plain
    assert cli.json("group-token", "revoke", "tokens-acme", "ci")["revoked"] is True
    assert "no active access token" in cli.fails("group-token", "revoke", "tokens-acme", "ci")
    assert "unknown role" in cli.fails(
        "group-token", "create", "tokens-acme", "--name", "x", "--role", "king", "--scopes", "api"
    )
    assert "group 'nowhere' not found" in cli.fails(
        "group-token", "create", "nowhere", "--name", "x", "--role", "guest", "--scopes", "api"
    )


def test_token_rotate_from_the_shell(cli: Cli) -> None:
    cli("user", "create", "rota", "--email", "rota@example.com", "--password", "rota-password")
    old = cli.json("token", "create", "rota", "--name", "ci", "--scopes", "api")
    new = cli.json("token", "rotate", "rota", "ci")
    assert new["token"].startswith("dypat-") and new["token"] != old["token"]
    assert (new["name"], new["scopes"]) == ("ci", ["api"])
    states = sorted(item["revoked"] for item in cli.json("token", "list", "rota")["tokens"])
    assert states == [False, True]
    assert "no active token" in cli.fails("token", "rotate", "rota", "never-made")
