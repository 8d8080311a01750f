import stat

from app.accounts import services as accounts
from app.config import Settings
from app.instance.services import ensure_root_user


async def test_first_start_creates_root_once_with_a_private_password_file(
    database: Settings,
) -> None:
    first = await ensure_root_user(database)
    assert first is not None and first.root.is_admin
    text = first.password_file.read_text()
    assert f"Password: {first.password}" in text
    assert stat.S_IMODE(first.password_file.stat().st_mode) == 0o600
    assert await accounts.authenticate_password("root", first.password) is not None

    assert await ensure_root_user(database) is None
    assert first.password_file.read_text() == text
