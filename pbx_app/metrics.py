"""The app's Prometheus metrics, served at GET /metrics on the plain (internal) listener only.

Request latency and status by route template (never by raw path: ids and numbers would make a
series per customer), product limits and throttles that refused a request, and the proxies'
route decisions by outcome. One process per node, so the default registry is the node's.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pbx_app import errors

REQUESTS = Counter(
    "pbx_http_requests", "HTTP requests answered, by route template", ["method", "route", "status"]
)
LATENCY = Histogram(
    "pbx_http_request_duration_seconds",
    "Time to the response's first byte, by route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
LIMITS_HIT = Counter(
    "pbx_limit_refusals",
    "Requests refused by a product limit or a throttle (errors.code, the rule it holds)",
    ["code", "rule"],
)
ROUTE_DECISIONS = Counter(
    "pbx_route_decisions", "The proxies' routing questions answered, by action", ["action"]
)
FAX_CALLS = Counter(
    "pbx_fax_calls",
    "Fax calls the gateways reported, by direction (in, out) and status (ok, busy, no_answer, "
    "failed: the line or the machines failed the fax)",
    ["direction", "status"],
)

# Refusals that mean a limit was reached, not that the request was wrong.
_LIMITS = (
    errors.ExtensionLimitReached,
    errors.ExtensionLicencesExhausted,
    errors.HeadNumberLimitReached,
    errors.DeviceLimitReached,
    errors.BusinessOptionRequired,
    errors.TrialExpired,
    errors.LoginThrottled,
)


# The method is the client's to choose: anything else is counted as "other", so that nobody can
# make the app (and Prometheus) hold a series per invented method.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _method(scope: Scope) -> str:
    method = str(scope["method"])
    return method if method in _METHODS else "other"


def refused(exc: errors.DomainError) -> None:
    if isinstance(exc, _LIMITS):
        LIMITS_HIT.labels(exc.code, exc.rule).inc()


def fax_call(direction: str, status: str) -> None:
    FAX_CALLS.labels(direction, status).inc()


def decided(answer: dict[str, Any]) -> None:
    ROUTE_DECISIONS.labels(str(answer.get("action", "unknown"))).inc()


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request under its route's template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                LATENCY.labels(_method(scope), _route(scope)).observe(time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            REQUESTS.labels(_method(scope), _route(scope), str(status)).inc()


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or (
        "/static" if scope["path"].startswith("/static/") else "unmatched"
    )


def with_metrics_endpoint(app: ASGIApp) -> ASGIApp:
    """`app`, plus GET /metrics: for the internal listener only (pbx_app.serving)."""

    async def serving(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/metrics" and scope["method"] == "GET":
            body = generate_latest()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return serving
