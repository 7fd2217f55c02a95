"""Draw the topology from the model: `python -m pbx_infra.diagram [stack] > docs/topology.dot`.

`make diagram` renders it to docs/topology.svg with Graphviz; a test keeps the .dot in step with
the stack config, so the README's picture cannot drift from what `make lab` builds.
"""

from __future__ import annotations

import json
import sys

from . import topology
from .lab.declared import stack_config
from .node_config import app_port
from .topology import Instance, Platform, ServiceKind

_STYLE = {
    ServiceKind.SIP_PROXY: ("Kamailio 6.0", "#cfe2ff"),
    ServiceKind.MEDIA_RELAY: ("rtpengine 12.5", "#d1e7dd"),
    ServiceKind.PBX_APP: ("pbx_app", "#fff3cd"),
    ServiceKind.DB: ("PostgreSQL 17 + Patroni 4", "#e2d9f3"),
    ServiceKind.ETCD: ("etcd 3.5", "#e2d9f3"),
    ServiceKind.DNS: ("dnsmasq (lab)", "#eeeeee"),
    ServiceKind.SMTP: ("SMTP sink (lab)", "#eeeeee"),
    ServiceKind.CARRIER: ("simulated carrier (lab)", "#f8d7da"),
    ServiceKind.MONITOR: ("Prometheus + Alertmanager + HEP capture", "#dee2e6"),
    ServiceKind.EFAX: ("eFax gateway (spandsp)", "#fde2e4"),
}


def _node(platform: Platform, inst: Instance) -> str:
    software, colour = _STYLE[inst.kind]
    role = " (leader or sync replica)" if inst.kind is ServiceKind.DB else ""
    port = f":{app_port(platform, inst)}" if inst.kind is ServiceKind.PBX_APP else ""
    label = f"{inst.name}{role}\\n{software}\\n{inst.address}{port}"
    if inst.internal:
        label += f" / {inst.internal}"
    return f'    "{inst.name}" [label="{label}", fillcolor="{colour}"];'


def dot(platform: Platform) -> str:
    lines = [
        f'digraph "{platform.name}" {{',
        "  rankdir=TB; compound=true; newrank=true;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
        '  phones [label="phones, softphones, browsers\\n(DNS SRV: home site first)", '
        'shape=oval, fillcolor="#ffffff"];',
    ]
    for site in platform.sites:
        where = site.subnet or site.docker_host
        lines.append(f'  subgraph "cluster_{site.name}" {{')
        lines.append(f'    label="site {site.name}: {site.city} ({site.area_code})\\n{where}";')
        lines.append('    style="rounded"; color="#888888";')
        lines.extend(_node(platform, inst) for inst in platform.instances(site=site.name))
        lines.append("  }")
    witness = platform.witness
    lines.append(f'  subgraph "cluster_{witness.name}" {{')
    where = witness.docker_host or "backbone"
    lines.append(f'    label="witness {witness.name}: {witness.city}\\n{where}";')
    lines.append('    style="rounded,dashed"; color="#888888";')
    lines.extend(_node(platform, inst) for inst in platform.instances(site=witness.name))
    lines.append("  }")
    proxies = platform.instances(ServiceKind.SIP_PROXY)
    relays = platform.instances(ServiceKind.MEDIA_RELAY)
    dbs = platform.instances(ServiceKind.DB)
    for site in platform.sites:
        first = platform.instances(ServiceKind.SIP_PROXY, site.name)[0]
        lines.append(
            f'  phones -> "{first.name}" [label="SIP UDP/TCP/TLS/WSS\\n'
            f'{platform.sip_vip_name(site.name)} {platform.sip_vip(site.name)} (VRRP)", '
            f'lhead="cluster_{site.name}"];'
        )
    for a in proxies:
        for b in proxies:
            if (
                a.site == platform.sites[0].name
                and b.site != a.site
                and a.ordinal == b.ordinal == 1
            ):
                lines.append(
                    f'  "{a.name}" -> "{b.name}" [dir=both, style=dashed, label="DMQ (backbone)"];'
                )
        for r in relays:
            local = r.site == a.site
            if a.ordinal == 1:
                style, label = ("solid", "ng") if local else ("dotted", "ng failover")
                lines.append(f'  "{a.name}" -> "{r.name}" [style={style}, label="{label}"];')
        for app in platform.instances(ServiceKind.PBX_APP, a.site):
            if a.ordinal == 1 and app.ordinal == 1:
                lines.append(f'  "{a.name}" -> "{app.name}" [label="routing"];')
    lines.append(
        f'  "{dbs[0].name}" -> "{dbs[1].name}" '
        '[dir=both, label="synchronous replication\\n(either way)", style=bold];'
    )
    etcd = platform.instances(ServiceKind.ETCD)
    for db in dbs:
        member = next(e for e in etcd if e.site == db.site)
        lines.append(f'  "{db.name}" -> "{member.name}" [label="leader lock"];')
    quorum = [e for e in etcd if e.site == witness.name] + [
        e for e in etcd if e.site != witness.name
    ]
    for other in quorum[1:]:
        lines.append(
            f'  "{quorum[0].name}" -> "{other.name}" [dir=both, style=dashed, label="quorum"];'
        )
    for app in platform.instances(ServiceKind.PBX_APP):
        if app.ordinal == 1:
            own = next(d for d in dbs if d.site == app.site)
            lines.append(
                f'  "{app.name}" -> "{own.name}" [label="reads local,\\nwrites to the leader"];'
            )
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    stack = sys.argv[1] if len(sys.argv) > 1 else "lab"
    platform = topology.load(json.loads(stack_config(stack)["pbx:platform"]))
    sys.stdout.write(dot(platform))


if __name__ == "__main__":
    main()
