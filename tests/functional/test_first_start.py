import stat

from app.accounts import authentication
from app.accounts import records as accounts
from app.accounts.models import User
from app.config import Settings
from app.instance.services import ensure_root_user
from tests.unit.accounts.checks import CHECK


async def test_first_start_creates_root_once_with_a_private_password_file(
    database: Settings,
) -> None:
    first = await ensure_root_user(database)
    assert first is not None and first.root.is_admin
    text = first.password_file.read_text()
    assert f"Password: {first.password}" in text
    assert stat.S_IMODE(first.password_file.stat().st_mode) == 0o600
    assert await authentication.authenticate_password("root", first.password, CHECK) is not None

    assert await ensure_root_user(database) is None
    assert first.password_file.read_text() == text


async def test_a_user_made_with_the_cli_before_the_first_start_does_not_prevent_root(
    database: Settings,
) -> None:
    await accounts.create_user("alice", "alice@example.com", "alice-password-1")
    first = await ensure_root_user(database)
    assert first is not None and first.root.username == "root" and first.root.is_admin
    assert first.password_file.exists()
    assert await authentication.authenticate_password("root", first.password, CHECK) is not None


async def test_no_root_when_the_operator_made_an_admin_before_the_first_start(
    database: Settings,
) -> None:
    await accounts.create_user("ops", "ops@example.com", "ops-password-12", is_admin=True)
    assert await ensure_root_user(database) is None
    assert await accounts.find_user("root") is None
    assert not (database.data_dir / "initial_root_password").exists()


async def test_root_is_created_once_even_if_it_is_removed_later(database: Settings) -> None:
    first = await ensure_root_user(database)
    assert first is not None
    await User.filter(username="root").delete()
    first.password_file.unlink()
    assert await ensure_root_user(database) is None  # not a first start any more
    assert await accounts.find_user("root") is None
