"""The `dockyard` command (DESIGN §10: names, syntax and --json output are fixed).

Every command exits non-zero with one clear `error: ...` line on bad input,
never a traceback; `--json` prints a single JSON object on stdout.
"""

from app.cli import (  # noqa: F401  (register the commands)
    cache,
    cache_images,
    cache_limits,
    cache_usage,
    cache_warm,
    database,
    group_tokens,
    groups,
    server,
    storage,
    tokens,
    upstreams,
    users,
)
from app.cli.common import main

__all__ = ["main"]
