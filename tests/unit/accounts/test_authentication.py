"""Password checks go through the throttle; tokens never count as password guesses."""

from __future__ import annotations

import pytest

from app import clock
from app.accounts import authentication
from app.accounts import records as accounts
from app.accounts.authentication import PasswordCheck
from app.accounts.errors import TooManyAttempts
from app.accounts.models import UserState
from app.accounts.throttle import ThrottlePolicy
from app.metrics import auth_throttled


def freeze_clock() -> None:
    frozen = clock.now()
    clock.set_clock(lambda: frozen)


pytestmark = pytest.mark.usefixtures("database")

PASSWORD = "brute-force-target-1"


def from_address(address: str) -> PasswordCheck:
    return PasswordCheck(address=address, surface="unit", policy=ThrottlePolicy())


async def refusal(login: str, password: str, check: PasswordCheck) -> str | None:
    try:
        await authentication.authenticate_password(login, password, check)
    except TooManyAttempts as error:
        return error.message
    return None


async def test_username_and_email_are_one_account() -> None:
    freeze_clock()  # the wait below is exact, however slow the machine
    await accounts.create_user("brute", "brute@example.com", PASSWORD)
    check = from_address("10.0.0.1")
    for login in ("brute", "brute@example.com", "BRUTE", "brute", "Brute@Example.com"):
        assert await authentication.authenticate_password(login, "wrong!", check) is None
    assert await refusal("brute@example.com", PASSWORD, check) == (
        "too many failed sign-in attempts: try again in 10 seconds"
    )
    assert await refusal("brute", PASSWORD, check) is not None
    user = await authentication.authenticate_password("brute", PASSWORD, from_address("10.0.0.2"))
    assert user is not None and user.username == "brute"


async def test_an_unknown_login_is_throttled_exactly_like_a_real_one() -> None:
    await accounts.create_user("brute", "brute@example.com", PASSWORD)
    answers = {}
    for login in ("brute", "ghost"):
        check = from_address(f"10.0.0.{len(answers) + 1}")
        for _ in range(5):
            assert await authentication.authenticate_password(login, "wrong!", check) is None
        answers[login] = await refusal(login, "wrong!", check)
    assert answers["brute"] == answers["ghost"] is not None


async def test_wrong_tokens_are_not_password_guesses() -> None:
    user = await accounts.create_user("brute", "brute@example.com", PASSWORD)
    token = (await accounts.create_personal_access_token(user, "ci", "api")).secret
    check = from_address("10.0.0.1")
    for _ in range(50):
        assert await authentication.authenticate("brute", "dypat-wrong", check) is None
        assert await authentication.authenticate("brute", "dydt-wrong", check) is None
    assert await authentication.authenticate("brute", PASSWORD, check) is not None
    # And an address held back for passwords still gets in with a token.
    for _ in range(5):
        assert await authentication.authenticate("brute", "wrong!", check) is None
    with pytest.raises(TooManyAttempts):
        await authentication.authenticate("brute", PASSWORD, check)
    assert await authentication.authenticate("brute", token, check) is not None


async def test_a_blocked_users_right_password_counts_as_a_failure() -> None:
    user = await accounts.create_user("brute", "brute@example.com", PASSWORD)
    await accounts.set_state(user, UserState.BLOCKED)
    check = from_address("10.0.0.1")
    for _ in range(5):
        assert await authentication.authenticate_password("brute", PASSWORD, check) is None
    assert await refusal("brute", PASSWORD, check) is not None


async def test_throttled_checks_are_counted_by_surface() -> None:
    before = auth_throttled.labels("unit")._value.get()
    check = from_address("10.0.0.1")
    for _ in range(5):
        await authentication.authenticate_password("ghost", "wrong!", check)
    for _ in range(3):
        assert await refusal("ghost", "wrong!", check) is not None
    assert auth_throttled.labels("unit")._value.get() == before + 3


async def test_the_current_password_check_is_throttled_too() -> None:
    user = await accounts.create_user("brute", "brute@example.com", PASSWORD)
    check = from_address("10.0.0.1")
    for _ in range(5):
        assert not await authentication.verify_current_password(user, "wrong!", check)
    with pytest.raises(TooManyAttempts):
        await authentication.verify_current_password(user, PASSWORD, check)
    # The same account: the sign-in form from that address waits too.
    assert await refusal("brute", PASSWORD, check) is not None
