"""GitLab's value formats: number_to_human_size, Time, cursors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.errors import InvalidInput
from app.gql.scalars import _serialize_time, human_size
from app.pagination import decode_cursor, encode_cursor, page_size


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 Bytes"),
        (1, "1 Byte"),
        (1023, "1023 Bytes"),
        (1024, "1 KB"),
        (1536, "1.5 KB"),
        (123_456, "121 KB"),
        (1_234_567, "1.18 MB"),
        (1_048_575, "1020 KB"),
        (5 * 1024**3, "5 GB"),
        (3 * 1024**4 + 1024**3, "3 TB"),
    ],
)
def test_human_size_matches_rails(size: int, text: str) -> None:
    assert human_size(size) == text


def test_time_is_utc_iso8601_with_z() -> None:
    moment = datetime(2024, 3, 23, 21, 59, 31, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert _serialize_time(moment) == "2024-03-23T20:59:31Z"
    assert _serialize_time(datetime(2024, 1, 1, tzinfo=UTC)) == "2024-01-01T00:00:00Z"


def test_cursors_round_trip_and_reject_garbage() -> None:
    assert decode_cursor(encode_cursor(42)) == 42
    for garbage in ("", "!!!", encode_cursor(1)[:-3] + "x", "eyJmb28iOiAxfQ=="):
        with pytest.raises(InvalidInput):
            decode_cursor(garbage)


def test_page_size_is_capped() -> None:
    assert page_size(None, None) == 100
    assert page_size(1000, None) == 100
    assert page_size(None, 5) == 5
    with pytest.raises(InvalidInput):
        page_size(-1, None)
