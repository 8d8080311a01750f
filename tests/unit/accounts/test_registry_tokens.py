from datetime import timedelta

from app import clock
from app.accounts import registry_tokens
from app.accounts.models import User
from app.accounts.principal import Principal
from app.accounts.registry_tokens import GrantedAccess

SECRET = "s" * 40
REPO = "acme/dependency_proxy/containers/alpine"


def principal() -> Principal:
    return Principal(user=User(id=7, username="alice"))


def test_issued_token_round_trips_with_its_grants() -> None:
    issued = registry_tokens.issue(
        principal(), [GrantedAccess("repository", REPO, ("pull",))], SECRET, timedelta(minutes=15)
    )
    assert issued.expires_in == 900
    claims = registry_tokens.verify(issued.token, SECRET)
    assert claims is not None
    assert (claims.principal_kind, claims.principal_id) == ("user", 7)
    assert claims.allows_pull(REPO)
    assert not claims.allows_pull("other/dependency_proxy/containers/alpine")


def test_another_secret_or_an_expired_token_is_refused() -> None:
    issued = registry_tokens.issue(principal(), [], SECRET, timedelta(minutes=1))
    assert registry_tokens.verify(issued.token, "t" * 40) is None
    later = clock.now() + timedelta(minutes=2)
    clock.set_clock(lambda: later)
    assert registry_tokens.verify(issued.token, SECRET) is None


def test_garbage_is_refused() -> None:
    assert registry_tokens.verify("a.b.c", SECRET) is None
    assert registry_tokens.verify("", SECRET) is None


def test_a_token_verified_before_still_expires_and_still_needs_its_key() -> None:
    """Verified tokens are kept (a pull sends the same one on every request): the
    expiry is checked on every use, and another key never finds them."""
    issued = registry_tokens.issue(principal(), [], SECRET, timedelta(minutes=1))
    assert registry_tokens.verify(issued.token, SECRET) is not None
    assert registry_tokens.verify(issued.token, SECRET) is not None  # the kept answer
    assert registry_tokens.verify(issued.token, "t" * 40) is None
    later = clock.now() + timedelta(minutes=2)
    clock.set_clock(lambda: later)
    assert registry_tokens.verify(issued.token, SECRET) is None
