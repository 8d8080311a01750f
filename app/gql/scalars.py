"""GitLab's scalars: Time (ISO 8601), BigInt (a string), typed global ids."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import NewType

import strawberry

GID_PREFIX = "gid://dockyard"


def _serialize_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a date like 2030-12-31") from None


Time = NewType("Time", datetime)
Date = NewType("Date", date)
BigInt = NewType("BigInt", int)
DependencyProxyManifestID = NewType("DependencyProxyManifestID", str)
PersonalAccessTokenID = NewType("PersonalAccessTokenID", str)

# Handed to StrawberryConfig(scalar_map=...) by app.gql.schema.
SCALAR_MAP = {
    Time: strawberry.scalar(
        name="Time",
        serialize=_serialize_time,
        parse_value=_parse_time,
        description="Time represented in ISO 8601, for example 2019-03-23T20:59:31Z.",
    ),
    Date: strawberry.scalar(
        name="Date",
        serialize=lambda value: value.isoformat(),
        parse_value=_parse_date,
        description="Date represented in ISO 8601, for example 2030-12-31.",
    ),
    PersonalAccessTokenID: strawberry.scalar(
        name="PersonalAccessTokenID",
        serialize=str,
        parse_value=str,
        description=(
            "A `PersonalAccessTokenID` is a global ID, for example "
            '"gid://dockyard/PersonalAccessToken/1".'
        ),
    ),
    BigInt: strawberry.scalar(
        name="BigInt",
        serialize=str,
        parse_value=int,
        description="Represents non-fractional signed whole numeric values (a string).",
    ),
    DependencyProxyManifestID: strawberry.scalar(
        name="DependencyProxyManifestID",
        serialize=str,
        parse_value=str,
        description=(
            "A `DependencyProxyManifestID` is a global ID, for example "
            '"gid://dockyard/DependencyProxy::Manifest/1".'
        ),
    ),
}


def global_id(model_name: str, ident: int) -> str:
    return f"{GID_PREFIX}/{model_name}/{ident}"


def id_of(global_ident: str, model_name: str) -> int | None:
    """The number in `gid://dockyard/<model_name>/<n>` (or a bare number), else None."""
    text = str(global_ident).strip()
    prefix = f"{GID_PREFIX}/{model_name}/"
    number = text.removeprefix(prefix)
    return int(number) if number.isdigit() and len(number) < 19 else None


_UNITS = ("Bytes", "KB", "MB", "GB", "TB", "PB", "EB")


def human_size(size: int) -> str:
    """Rails' `number_to_human_size`: base 1024, 3 significant digits, no trailing zeros.

    GitLab's `dependencyProxyTotalSize` is this string ("0 Bytes", "1.18 MB").
    """
    if size < 1024:
        return f"{size} {'Byte' if size == 1 else 'Bytes'}"
    exponent = 0
    while size >= 1024 ** (exponent + 1) and exponent < len(_UNITS) - 1:
        exponent += 1
    value = Decimal(size) / Decimal(1024**exponent)
    step = Decimal(1).scaleb(value.adjusted() + 1 - 3)  # keep three significant digits
    rounded = value.quantize(step, rounding=ROUND_HALF_UP) if step < 1 else value
    if step >= 1:
        rounded = (value / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step
    text = format(rounded.normalize(), "f")
    return f"{text} {_UNITS[exponent]}"
