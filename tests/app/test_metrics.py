"""The app's Prometheus metrics: requests by route template (never by raw path), product limits
that refused a request, the proxies' route decisions; served on the plain listener only."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from pbx_app.metrics import with_metrics_endpoint
from tests.app.conftest import Api, error_code


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _routes_of(name: str) -> set[str]:
    return {
        s.labels["route"]
        for metric in REGISTRY.collect()
        for s in metric.samples
        if s.name == name and "route" in s.labels
    }


def test_requests_are_counted_and_timed_by_route_template(api: Api) -> None:
    path = f"/api/v1/customers/{api.a}/extensions"
    template = "/api/v1/customers/{customer_id}/extensions"
    before = _value("pbx_http_requests_total", method="GET", route=template, status="200")
    timed = _value("pbx_http_request_duration_seconds_count", method="GET", route=template)
    assert api.admin_a.get(path).status_code == 200
    assert api.admin_b.get(path).status_code == 403  # another customer's: refused, counted
    after = _value("pbx_http_requests_total", method="GET", route=template, status="200")
    assert after == before + 1
    assert _value("pbx_http_requests_total", method="GET", route=template, status="403") >= 1
    assert _value("pbx_http_request_duration_seconds_count", method="GET", route=template) == (
        timed + 2
    )
    # No customer id, number or token ever becomes a label.
    routes = _routes_of("pbx_http_requests_total")
    assert template in routes
    assert not [r for r in routes if re.search(r"\d", r.replace("/v1/", "/"))], routes


def test_a_product_limit_that_refuses_is_counted(api: Api) -> None:
    base = f"/api/v1/customers/{api.b}"
    r = api.admin_b.post(f"{base}/extensions", json={"location_id": api.loc_b, "number": "100"})
    assert r.status_code == 201, r.text
    ext = r.json()["id"]
    assert api.admin_b.post(f"{base}/extensions/{ext}/devices", json={}).status_code == 201
    refused = api.admin_b.post(f"{base}/extensions/{ext}/devices", json={})
    assert error_code(refused) == "device_limit_reached"
    rule = refused.json()["error"]["rule"]
    before = _value("pbx_limit_refusals_total", code="device_limit_reached", rule=rule)
    api.admin_b.post(f"{base}/extensions/{ext}/devices", json={})
    assert _value("pbx_limit_refusals_total", code="device_limit_reached", rule=rule) == (
        before + 1
    )


def test_metrics_are_served_only_where_the_wrapper_is(api: Api) -> None:
    assert api.operator.get("/metrics").status_code == 404  # the app itself has no such page
    internal = TestClient(with_metrics_endpoint(api.operator.app))
    r = internal.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "pbx_http_requests_total" in r.text
    assert internal.get("/healthz").status_code == 200  # everything else passes through
