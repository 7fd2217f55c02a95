"""The lab's monitors as tests reach them: each site's Prometheus and Alertmanager (monitor/),
on the internal (backbone) address the topology gives them, and the alerts they raise."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from pbx_infra.topology import ServiceKind

from .lab import PLATFORM, PORTS, instances

MONITORS = {s.name: instances(ServiceKind.MONITOR, s.name)[0] for s in PLATFORM.sites}


def prometheus_url(site: str) -> str:
    return f"http://{MONITORS[site].reach}:{PORTS.prometheus}"


def alertmanager_url(site: str) -> str:
    return f"http://{MONITORS[site].reach}:{PORTS.alertmanager}"


def _get(url: str, **params: str) -> Any:
    r = httpx.get(url, params=params, timeout=10)
    r.raise_for_status()
    return r.json()


def query(site: str, expr: str) -> list[dict[str, Any]]:
    """An instant query at the site's Prometheus: [{"metric": {...}, "value": [t, "v"]}, ...]."""
    body = _get(f"{prometheus_url(site)}/api/v1/query", query=expr)
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def values(site: str, expr: str) -> dict[str, float]:
    """instance label -> value of an instant query."""
    return {r["metric"].get("instance", ""): float(r["value"][1]) for r in query(site, expr)}


def targets(site: str) -> list[dict[str, Any]]:
    return list(
        _get(f"{prometheus_url(site)}/api/v1/targets", state="active")["data"]["activeTargets"]
    )


def rules(site: str) -> list[dict[str, Any]]:
    groups = _get(f"{prometheus_url(site)}/api/v1/rules", type="alert")["data"]["groups"]
    return [r for g in groups for r in g["rules"]]


def firing(at: str, alert: str, **labels: str) -> list[dict[str, Any]]:
    """Site `at`'s Prometheus's firing alerts of that name whose labels include `labels`."""
    found = _get(f"{prometheus_url(at)}/api/v1/alerts")["data"]["alerts"]
    return [
        a
        for a in found
        if a["state"] == "firing"
        and a["labels"].get("alertname") == alert
        and all(a["labels"].get(k) == v for k, v in labels.items())
    ]


def notified(at: str, alert: str, **labels: str) -> list[dict[str, Any]]:
    """The alerts of that name site `at`'s Alertmanager holds as active (not inhibited)."""
    found = _get(f"{alertmanager_url(at)}/api/v2/alerts", active="true", inhibited="false")
    return [
        a
        for a in found
        if a["labels"].get("alertname") == alert
        and all(a["labels"].get(k) == v for k, v in labels.items())
    ]


def wait_firing(at: str, alert: str, since: float, timeout: float = 90, **labels: str) -> float:
    """Seconds from `since` (time.monotonic()) until the alert fires at site `at`'s Prometheus."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if firing(at, alert, **labels):
            return round(time.monotonic() - since, 1)
        time.sleep(1)
    raise AssertionError(f"{alert} {labels} did not fire at {at} within {timeout} s")


def wait_cleared(at: str, alert: str, since: float, timeout: float = 90, **labels: str) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not firing(at, alert, **labels):
            return round(time.monotonic() - since, 1)
        time.sleep(1)
    raise AssertionError(f"{alert} {labels} still firing at {at} {timeout} s after the repair")


class AlertWatch:
    """Polls one site's Prometheus every second from `start()`: when the alert first fired,
    while the test does other things (a site-loss drill waits on promotions and calls)."""

    def __init__(self, at: str, alert: str, **labels: str) -> None:
        self.at, self.alert, self.labels = at, alert, labels
        self.since = 0.0
        self.fired_s: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, since: float) -> None:
        self.since = since
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and self.fired_s is None:
            try:
                if firing(self.at, self.alert, **self.labels):
                    self.fired_s = round(time.monotonic() - self.since, 1)
            except httpx.HTTPError:
                pass  # the monitor itself may be briefly unreachable
            self._stop.wait(1)

    def stop(self) -> float | None:
        self._stop.set()
        self._thread.join(timeout=15)
        return self.fired_s
