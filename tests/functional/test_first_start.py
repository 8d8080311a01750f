import stat

from app.accounts import authentication
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
