"""Who may read the Prometheus metrics: the scraper holding DOCKYARD_METRICS_TOKEN, or
(when none is configured) administrators with any API scope."""

from __future__ import annotations

from prometheus_client import generate_latest

from app import metrics
from app.accounts.policy import is_admin_reader
from app.accounts.principal import METRICS_SERVICE, Principal
from app.errors import NotFound


def metrics_exposition(principal: Principal) -> bytes:
    """The metrics in Prometheus' text format; NotFound for anyone else, so the endpoint
    does not advertise itself."""
    if principal.service == METRICS_SERVICE or is_admin_reader(principal):
        return generate_latest(metrics.registry)
    raise NotFound("not found")
