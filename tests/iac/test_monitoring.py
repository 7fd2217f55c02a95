"""The monitoring the Pulumi program declares: a monitor per site scraping every service of both
sites, exporters and the capture on internal addresses only, each proxy mirroring its SIP to its
own site's collector, and the thresholds coming from the stack config."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

import pytest
import yaml

from pbx_infra import topology
from pbx_infra.lab.declared import stack_config
from pbx_infra.topology import Platform, ServiceKind

from .conftest import Stack

STACKS = ("lab", "production")


def _platform(name: str) -> Platform:
    return topology.load(json.loads(stack_config(name)["pbx:platform"]))


def _files(container: dict[str, Any]) -> dict[str, str]:
    return {u["file"]: u["content"] for u in container["uploads"]}


def _stack(name: str, lab: Stack, production: Stack) -> Stack:
    return lab if name == "lab" else production


@pytest.mark.parametrize("name", STACKS)
def test_each_site_has_a_monitor_scraping_every_service_of_both_sites(
    name: str, lab: Stack, production: Stack
) -> None:
    stack, platform = _stack(name, lab, production), _platform(name)
    kinds = (ServiceKind.SIP_PROXY, ServiceKind.MEDIA_RELAY, ServiceKind.PBX_APP, ServiceKind.DB)
    everything = {i.name for k in kinds for i in platform.instances(k)}
    for site in platform.sites:
        (monitor,) = stack.by_service(site.name, "monitor")
        scraped = yaml.safe_load(_files(monitor)["/etc/monitor/prometheus.yml"])
        instances = {
            target["labels"]["instance"]
            for job in scraped["scrape_configs"]
            for target in job["static_configs"]
        }
        assert everything <= instances, everything - instances
        # Both Alertmanagers, which gossip with each other.
        alerting = scraped["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
        assert len(alerting) == len(platform.sites)
        env = _files(monitor)["/etc/monitor/monitor.env"]
        (peers,) = re.findall(r'^CLUSTER_PEERS="(.*)"$', env, re.M)
        assert len(peers.split()) == 1
        assert scraped["global"]["scrape_interval"] == f"{platform.monitoring.scrape_interval_s}s"


@pytest.mark.parametrize("name", STACKS)
def test_management_endpoints_listen_on_internal_addresses_only(
    name: str, lab: Stack, production: Stack
) -> None:
    stack, platform = _stack(name, lab, production), _platform(name)
    internal = {str(i.reach) for i in platform.instances()}
    public = {str(i.address) for i in platform.instances() if i.internal} - internal
    ports = platform.ports
    for site in platform.sites:
        for proxy in stack.by_service(site.name, "sip-proxy"):
            node_cfg = _files(proxy)["/etc/kamailio/node.cfg"]
            (metrics,) = re.findall(rf"^listen=tcp:(\S+):{ports.sip_metrics}$", node_cfg, re.M)
            assert metrics in internal, metrics
        for relay in stack.by_service(site.name, "media-relay"):
            conf = _files(relay)["/etc/rtpengine/rtpengine.conf"]
            (http,) = re.findall(r"^listen-http = (\S+):(\d+)$", conf, re.M)
            assert http == (http[0], str(ports.relay_metrics))
            assert http[0] in internal
        for db in stack.by_service(site.name, "db"):
            env = stack.env(db)
            host, _, port = env["PBX_DB_METRICS_LISTEN"].rpartition(":")
            assert (host in internal, int(port)) == (True, ports.db_metrics)
        (monitor,) = stack.by_service(site.name, "monitor")
        env = _files(monitor)["/etc/monitor/monitor.env"]
        (listen,) = re.findall(r"^LISTEN=(\S+)$", env, re.M)
        assert listen in internal
        assert listen not in public
        capture = _files(monitor)["/etc/monitor/capture.cfg"]
        assert f"listen=udp:{listen}:{ports.hep}" in capture


@pytest.mark.parametrize("name", STACKS)
def test_each_proxy_mirrors_its_sip_to_its_own_sites_collector(
    name: str, lab: Stack, production: Stack
) -> None:
    stack, platform = _stack(name, lab, production), _platform(name)
    for site in platform.sites:
        collector = platform.instances(ServiceKind.MONITOR, site.name)[0].reach
        for proxy in stack.by_service(site.name, "sip-proxy"):
            node_cfg = _files(proxy)["/etc/kamailio/node.cfg"]
            assert f'"!PBX_HEP_URI!sip:{collector}:{platform.ports.hep}!g"' in node_cfg
            lab_faults = "#!define PBX_LAB_FAULTS" in node_cfg
            assert lab_faults == (name == "lab"), "fault injection is for the lab only"


def test_production_scrapes_each_site_hosts_node_exporter(production: Stack) -> None:
    platform = _platform("production")
    (monitor, *_) = production.by_service("fra", "monitor")
    scraped = yaml.safe_load(_files(monitor)["/etc/monitor/prometheus.yml"])
    (node,) = [j for j in scraped["scrape_configs"] if j["job_name"] == "node"]
    targets = [t["targets"][0] for t in node["static_configs"]]
    assert targets == [f"{s.internal_addresses[0]}:{platform.ports.node_metrics}"
                       for s in platform.sites]  # fmt: skip
    for target in targets:
        assert ipaddress.IPv4Address(target.split(":")[0]).is_private


def test_the_stack_configs_thresholds_reach_the_rules_and_the_mail(lab: Stack) -> None:
    platform = _platform("lab")
    (monitor,) = lab.by_service("fra", "monitor")
    rules = yaml.safe_load(_files(monitor)["/etc/monitor/alerts.yml"])
    fors = {r["for"] for g in rules["groups"] for r in g["rules"]}
    assert fors == {f"{platform.monitoring.alert_after_s}s"}
    alertmanager = yaml.safe_load(_files(monitor)["/etc/monitor/alertmanager.yml"])
    assert alertmanager["receivers"][0]["email_configs"][0]["to"] == "oncall@pbx.lab"
    sink = platform.instances(ServiceKind.SMTP, "fra")[0]
    assert alertmanager["global"]["smtp_smarthost"] == f"{sink.reach}:{platform.ports.smtp}"


def test_production_needs_an_on_call_address(production_config: dict[str, Any]) -> None:
    del production_config["monitoring"]
    with pytest.raises(topology.TopologyError, match=r"monitoring\.alert_email"):
        topology.load(production_config)
