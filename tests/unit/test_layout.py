"""Guards for the layout rules that would break things silently."""

from pathlib import Path

import graphql

ROOT = Path(__file__).resolve().parents[2]


def test_import_graphql_gives_graphql_core() -> None:
    assert hasattr(graphql, "graphql_sync"), graphql.__file__
    assert "site-packages" in str(graphql.__file__)


def test_graphql_folder_holds_no_python() -> None:
    assert not list((ROOT / "graphql").rglob("*.py"))
