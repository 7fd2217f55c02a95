"""The alert rules as production renders them, run by promtool against synthetic series: each
alert fires on its fault, with the summary the on-call reads, and stays quiet on the near misses
(a failover, a small platform, a gentle decline). The lab drills the same rules against real
faults (tests/sip/test_alerts.py); these pin the thresholds and messages.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from pbx_infra import topology
from pbx_infra.lab.declared import stack_config
from pbx_infra.node_config import REPO, config_files
from pbx_infra.topology import ServiceKind

PROMTOOL = shutil.which("promtool")
RUNBOOKS = REPO / "docs" / "runbooks"


def _rules(config: dict[str, Any]) -> str:
    platform = topology.load(config)
    monitor = platform.instances(ServiceKind.MONITOR)[0]
    (rules,) = [f.content for f in config_files(platform, monitor) if f.path.endswith("alerts.yml")]
    return rules


def _alerts(rules: str) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in yaml.safe_load(rules)["groups"] for r in g["rules"]}


@dataclass
class Case:
    """Series for a while (values every 15 s), then what is firing at `at`."""

    name: str
    series: dict[str, str]
    at: str
    alert: str
    firing: list[tuple[dict[str, str], str]] = field(default_factory=list)  # labels, summary


def _series(metric: str, **labels: str) -> str:
    return metric + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _up(service: str, site: str, instance: str) -> str:
    return _series("up", job=service, service=service, site=site, instance=instance)


def _site(site: str, proxy: str, relay: str, app: str) -> dict[str, str]:
    return {
        _up("sip-proxy", site, f"{site}-sip-proxy-1"): proxy,
        _up("media-relay", site, f"{site}-media-relay-1"): relay,
        _up("pbx-app", site, f"{site}-pbx-app-1"): app,
    }


PROXY_TLS = {"endpoint": "192.0.2.10:5061", "instance": "fra-sip-proxy-1"}
LEADERLESS = "No database member leads: writes (portal, API, call records) fail"


UP, DOWN_AFTER_30S = "1x40", "1 1 0x38"
CASES = [
    Case(
        "site down",
        _site("fra", UP, UP, UP) | _site("ber", DOWN_AFTER_30S, DOWN_AFTER_30S, DOWN_AFTER_30S),
        "2m",
        "SiteDown",
        [
            (
                {"site": "ber", "severity": "critical"},
                "Site ber is down: none of its proxies, relays or app nodes answers",
            )
        ],
    ),
    Case(
        "one proxy of a site down is not the site",
        _site("fra", DOWN_AFTER_30S, UP, UP) | _site("ber", UP, UP, UP),
        "2m",
        "SiteDown",
    ),
    Case(
        "a proxy down",
        _site("fra", DOWN_AFTER_30S, UP, UP),
        "2m",
        "SipProxyDown",
        [
            (
                {
                    "job": "sip-proxy",
                    "service": "sip-proxy",
                    "site": "fra",
                    "instance": "fra-sip-proxy-1",
                    "severity": "critical",
                },
                "SIP proxy fra-sip-proxy-1 (fra) does not answer",
            )
        ],
    ),
    Case("a proxy restarting", _site("fra", "1 1 0 0 1x36", UP, UP), "2m", "SipProxyDown"),
    Case(
        "a relay down",
        _site("ber", UP, DOWN_AFTER_30S, UP),
        "2m",
        "MediaRelayDown",
        [
            (
                {
                    "job": "media-relay",
                    "service": "media-relay",
                    "site": "ber",
                    "instance": "ber-media-relay-1",
                    "severity": "critical",
                },
                "Media relay ber-media-relay-1 (ber) does not answer",
            )
        ],
    ),
    Case(
        "an app node down",
        _site("ber", UP, UP, DOWN_AFTER_30S),
        "2m",
        "AppNodeDown",
        [
            (
                {
                    "job": "pbx-app",
                    "service": "pbx-app",
                    "site": "ber",
                    "instance": "ber-pbx-app-1",
                    "severity": "critical",
                },
                "App node ber-pbx-app-1 (ber) does not answer",
            )
        ],
    ),
    Case(
        "a database exporter down",
        {'up{job="db",service="db",site="fra",instance="fra-db"}': DOWN_AFTER_30S},
        "2m",
        "ScrapeTargetDown",
        [
            (
                {
                    "job": "db",
                    "service": "db",
                    "site": "fra",
                    "instance": "fra-db",
                    "severity": "warning",
                },
                "db on fra-db (fra) cannot be scraped",
            )
        ],
    ),
    Case(
        "registrations fall to a fifth",
        {'kamailio_usrloc_registered_users{instance="fra-sip-proxy-1"}': "1000x40 200x40"},
        "12m",
        "RegistrationsDropping",
        [
            (
                {"severity": "critical"},
                "Registered devices fell to 200, under half of the last 15 minutes' high",
            )
        ],
    ),
    Case(
        "registrations decline gently",
        {'kamailio_usrloc_registered_users{instance="fra-sip-proxy-1"}': "1000-5x80"},
        "20m",
        "RegistrationsDropping",
    ),
    Case(
        "a tiny platform loses its few devices",
        {'kamailio_usrloc_registered_users{instance="fra-sip-proxy-1"}': "10x40 2x40"},
        "12m",
        "RegistrationsDropping",
    ),
    Case(
        "shared memory at 95 %",
        {
            'kamailio_shmem_real_used_size{instance="fra-sip-proxy-2"}': "950x20",
            'kamailio_shmem_total_size{instance="fra-sip-proxy-2"}': "1000x20",
        },
        "2m",
        "SharedMemoryNearlyFull",
        [
            (
                {"instance": "fra-sip-proxy-2", "severity": "critical"},
                "Proxy fra-sip-proxy-2 uses 95% of its shared memory",
            )
        ],
    ),
    Case(
        "shared memory at 80 %",
        {
            'kamailio_shmem_real_used_size{instance="fra-sip-proxy-2"}': "800x20",
            'kamailio_shmem_total_size{instance="fra-sip-proxy-2"}': "1000x20",
        },
        "2m",
        "SharedMemoryNearlyFull",
    ),
    Case(
        "no database member leads",
        {
            'patroni_primary{instance="fra-db"}': "1 1 0x38",
            'patroni_primary{instance="ber-db"}': "0x40",
        },
        "2m",
        "NoDatabaseLeader",
        [({"severity": "critical"}, LEADERLESS)],
    ),
    Case(
        "both members unreachable",
        {'up{job="patroni",instance="fra-db"}': "0x40"},
        "2m",
        "NoDatabaseLeader",
        [({"severity": "critical"}, LEADERLESS)],
    ),
    Case(
        "a failover within 30 s",
        {
            'patroni_primary{instance="fra-db"}': "1 1 0x38",
            'patroni_primary{instance="ber-db"}': "0 0 0 0 1x36",
        },
        "2m",
        "NoDatabaseLeader",
    ),
    Case(
        "a replica 45 s behind",
        {'pg_replication_lag_seconds{instance="ber-db"}': "0 0 45x38"},
        "2m",
        "ReplicationLagging",
        [
            (
                {"instance": "ber-db", "severity": "warning"},
                "Replica ber-db replays 45s behind its leader",
            )
        ],
    ),
    Case(
        "a replica 5 s behind",
        {'pg_replication_lag_seconds{instance="ber-db"}': "0 0 5x38"},
        "2m",
        "ReplicationLagging",
    ),
    Case(
        "one API request in ten fails",
        {
            'pbx_http_requests_total{status="200",route="/api/v1/customers"}': "0+135x80",
            'pbx_http_requests_total{status="503",route="/api/v1/customers"}': "0+15x80",
        },
        "10m",
        "ApiErrorRatioHigh",
        [({"severity": "critical"}, "10% of API requests fail with a server error")],
    ),
    Case(
        "one API request in a hundred fails",
        {
            'pbx_http_requests_total{status="200",route="/api/v1/customers"}': "0+148x80",
            'pbx_http_requests_total{status="503",route="/api/v1/customers"}': "0+1.5x80",
        },
        "10m",
        "ApiErrorRatioHigh",
    ),
    Case(
        "two requests in five minutes, both failing",
        {'pbx_http_requests_total{status="500",route="/api/v1/customers"}': "0+0.1x80"},
        "10m",
        "ApiErrorRatioHigh",
    ),
    Case(
        "two fax calls in three fail on the line",
        {
            'pbx_fax_calls_total{direction="out",status="failed"}': "0+0.05x200",
            'pbx_fax_calls_total{direction="out",status="ok"}': "0+0.025x200",
        },
        "45m",
        "FaxFailuresHigh",
        [({"severity": "warning"}, "66.67% of fax calls fail on the line")],
    ),
    Case(
        "busy lines and no answers are not the line failing",
        {
            'pbx_fax_calls_total{direction="out",status="busy"}': "0+0.05x200",
            'pbx_fax_calls_total{direction="out",status="failed"}': "0+0.02x200",
            'pbx_fax_calls_total{direction="out",status="ok"}': "0+0.02x200",
        },
        "45m",
        "FaxFailuresHigh",
    ),
    Case(
        # promtool's clock starts at the epoch: the certificate ends ten days after it.
        "a certificate ending in ten days",
        {
            _series("probe_ssl_earliest_cert_expiry", **PROXY_TLS): "864000x20"
        },
        "2m",
        "CertificateExpiresSoon",
        [
            (
                {
                    "endpoint": "192.0.2.10:5061",
                    "instance": "fra-sip-proxy-1",
                    "severity": "warning",
                },
                "The certificate on 192.0.2.10:5061 (fra-sip-proxy-1) expires in 9d 23h 58m 0s",
            )
        ],
    ),
    Case(
        "a certificate ending in 90 days",
        {
            _series("probe_ssl_earliest_cert_expiry", **PROXY_TLS): "7776000x20"
        },
        "2m",
        "CertificateExpiresSoon",
    ),
    Case(
        "a TLS handshake failing",
        {_series("probe_success", service="tls", **PROXY_TLS): "0x20"},
        "2m",
        "TlsHandshakeFailing",
        [
            (
                {
                    "service": "tls",
                    "endpoint": "192.0.2.10:5061",
                    "instance": "fra-sip-proxy-1",
                    "severity": "critical",
                },
                "No verified TLS handshake on 192.0.2.10:5061 (fra-sip-proxy-1): expired, wrong "
                "chain or down",
            )
        ],
    ),
]  # fmt: skip


@pytest.fixture(scope="module")
def rules() -> str:
    return _rules(json.loads(stack_config("production")["pbx:platform"]))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_alert_fires_on_its_fault_and_not_on_a_near_miss(
    case: Case, rules: str, tmp_path: Path
) -> None:
    runbook = _alerts(rules)[case.alert]["annotations"]["runbook"]
    (tmp_path / "alerts.yml").write_text(rules)
    test = {
        "rule_files": ["alerts.yml"],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [{"series": s, "values": v} for s, v in case.series.items()],
                "alert_rule_test": [
                    {
                        "eval_time": case.at,
                        "alertname": case.alert,
                        "exp_alerts": [
                            {
                                "exp_labels": labels,
                                "exp_annotations": {"summary": summary, "runbook": runbook},
                            }
                            for labels, summary in case.firing
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    assert PROMTOOL is not None, "promtool is missing: scripts/install-test-tools.sh fetches it"
    run = subprocess.run(
        [PROMTOOL, "test", "rules", "test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_alert_has_a_runbook_that_names_it(rules: str) -> None:
    alerts = _alerts(rules)
    for name, rule in alerts.items():
        path = REPO / rule["annotations"]["runbook"]
        assert path.parent == RUNBOOKS, name
        assert path.is_file(), f"{name}: {path} is missing"
        text = path.read_text()
        assert f"`{name}`" in text, f"{path.name} does not name {name}"
        for heading in ("## What it means", "## What to do"):
            assert heading in text, f"{path.name} lacks '{heading}'"
    named = {REPO / r["annotations"]["runbook"] for r in alerts.values()}
    assert set(RUNBOOKS.glob("*.md")) - {RUNBOOKS / "README.md"} == named


def test_every_alert_has_a_case_where_it_fires(rules: str) -> None:
    assert {c.alert for c in CASES if c.firing} == set(_alerts(rules))


def _table_alerts(text: str) -> list[str]:
    """The alerts a Markdown table names in its first column (`A`, `B` in one cell counts both)."""
    cells = re.findall(r"^\| ([^|]*`[A-Z]\w+`[^|]*) \|", text, re.M)
    return [name for cell in cells for name in re.findall(r"`([A-Z]\w+)`", cell)]


def test_the_docs_tables_name_every_alert_once(rules: str) -> None:
    """What the on-call reads beside the rules: the alert table in docs/observability.md and
    the runbook index, with each alert's severity as the rules give it."""
    alerts = _alerts(rules)
    for doc in (REPO / "docs" / "observability.md", RUNBOOKS / "README.md"):
        named = _table_alerts(doc.read_text())
        assert sorted(named) == sorted(alerts), f"{doc.name} lists {named}"
    index = (RUNBOOKS / "README.md").read_text()
    for name, rule in alerts.items():
        page = Path(rule["annotations"]["runbook"]).name
        row = f"| `{name}` | {rule['labels']['severity']} | [{page}]({page}) |"
        assert row in index, f"runbooks/README.md: want {row}"


def test_the_defaults_the_docs_quote_are_the_models() -> None:
    """`monitoring.key` (N), (default N) or `ports.key`, N in the observability page and the
    runbooks say the model's defaults."""
    pages = [REPO / "docs" / "observability.md", *sorted(RUNBOOKS.glob("*.md"))]
    quoted = [
        (page.name, *found)
        for page in pages
        for found in re.findall(
            r"`(monitoring|ports)\.(\w+)`(?: \((?:default )?|, )(\d+(?:\.\d+)?)", page.read_text()
        )
    ]
    assert len({q[0] for q in quoted}) > 3, quoted
    models = {"monitoring": topology.Monitoring(), "ports": topology.Ports()}
    for page, model, key, value in quoted:
        assert str(getattr(models[model], key)) == value, f"{page}: {model}.{key} is not {value}"
