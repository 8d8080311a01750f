"""The internal endpoint's tokens (`downloads/internal.py`): bound to one digest, short-
lived, and only made with the instance secret."""

from app.dependency_proxy.downloads import internal

SECRET = "s" * 48
DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


def header(token: str) -> str:
    return f"{internal.SCHEME} {token}"


def test_a_token_opens_its_digest_for_a_minute_and_nothing_else() -> None:
    now = 1_800_000_000.0
    token = internal.sign(SECRET, DIGEST, now)
    assert internal.verify(SECRET, DIGEST, header(token), now)
    assert internal.verify(SECRET, DIGEST, header(token), now + internal.TOKEN_SECONDS)
    assert not internal.verify(SECRET, OTHER, header(token), now)
    assert not internal.verify("t" * 48, DIGEST, header(token), now)  # another secret
    late = now + internal.TOKEN_SECONDS + internal.CLOCK_SKEW_SECONDS + 1
    assert not internal.verify(SECRET, DIGEST, header(token), late)


def test_malformed_or_foreign_credentials_are_refused() -> None:
    now = 1_800_000_000.0
    token = internal.sign(SECRET, DIGEST, now)
    expires, _, mac = token.partition(".")
    far = int(expires) + 3600  # a forged long expiry with the old signature
    for presented in (
        "",
        f"Bearer {token}",
        header(""),
        header(mac),
        header(f"{far}.{mac}"),
        header(f"-1.{mac}"),
        header(f"{expires}.{'0' * 64}"),
        header(f"{'9' * 40}.{mac}"),
    ):
        assert not internal.verify(SECRET, DIGEST, presented, now), presented
