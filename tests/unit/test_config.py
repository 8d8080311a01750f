import os
import stat
from pathlib import Path

import pytest

from app.config import ConfigError, load_settings, prepare_data_dir


def test_defaults_follow_the_operator_contract(tmp_path: Path) -> None:
    settings = load_settings({}, data_dir=tmp_path)
    assert settings.host == "127.0.0.1"
    assert settings.port == 5000
    assert settings.external_url == "http://127.0.0.1:5000"
    assert settings.database_url == f"sqlite://{tmp_path.resolve()}/dockyard.sqlite3"
    assert settings.upstream_url == "https://registry-1.docker.io"
    assert settings.registry_token_expire_minutes == 15


def test_serve_uses_every_core_unless_told(tmp_path: Path) -> None:
    cores = len(os.sched_getaffinity(0))
    assert load_settings({}, data_dir=tmp_path).workers == cores
    assert load_settings({"DOCKYARD_WORKERS": "3"}, data_dir=tmp_path).workers == 3
    with pytest.raises(ConfigError, match="DOCKYARD_WORKERS"):
        load_settings({"DOCKYARD_WORKERS": "0"}, data_dir=tmp_path)


def test_environment_wins_over_the_toml_file(tmp_path: Path) -> None:
    config = tmp_path / "dockyard.toml"
    config.write_text('port = 6000\nexternal_url = "https://file.example"\nlog_level = "debug"\n')
    settings = load_settings(
        {
            "DOCKYARD_CONFIG": str(config),
            "DOCKYARD_PORT": "7000",
            "DOCKYARD_DATA_DIR": str(tmp_path),
        }
    )
    assert settings.port == 7000
    assert settings.external_url == "https://file.example"
    assert settings.log_level == "debug"
    assert settings.registry_host == "file.example"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DOCKYARD_PORT", "http"),
        ("DOCKYARD_PORT", "70000"),
        ("DOCKYARD_EXTERNAL_URL", "dockyard.example"),
        ("DOCKYARD_DATABASE_URL", "mysql://x"),
        ("DOCKYARD_SECRET_KEY", "short"),
        ("DOCKYARD_LOG_LEVEL", "loud"),
        ("DOCKYARD_REGISTRY_TOKEN_EXPIRE_MINUTES", "0"),
        ("DOCKYARD_TRUSTED_PROXIES", "not-an-ip"),
    ],
)
def test_invalid_values_name_the_setting(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


def test_unknown_key_in_the_toml_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "dockyard.toml"
    config.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="colour"):
        load_settings({"DOCKYARD_CONFIG": str(config)})


def test_secret_key_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    first = prepare_data_dir(load_settings({}, data_dir=tmp_path / "data"))
    key_file = tmp_path / "data" / "secret_key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert len(first.secret_key) >= 32
    second = prepare_data_dir(load_settings({}, data_dir=tmp_path / "data"))
    assert second.secret_key == first.secret_key
    assert first.secret_key not in repr(first)


def test_a_configured_secret_key_is_not_written_to_disk(tmp_path: Path) -> None:
    settings = prepare_data_dir(load_settings({}, data_dir=tmp_path, secret_key="k" * 40))
    assert settings.secret_key == "k" * 40
    assert not (tmp_path / "secret_key").exists()
