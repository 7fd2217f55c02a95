"""SIP ladder diagrams: messages between participants, one arrow per message, drawn to SVG.

Used by `make callflow` (labkit.callflow: one call traced with tcpdump at every proxy) and by
`make capture` (pbx_infra.capture: any call from the sites' HEP capture).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Message:
    time: float
    src: str
    dst: str
    kind: str  # "sip", "http" (route lookup at the app) or "ng" (rtpengine control)
    label: str
    call_id: str = ""
    sdp_address: str = ""  # c= of an SDP body, where there is one


@dataclass
class Trace:
    messages: list[Message]
    names: dict[str, str]  # address -> participant ("fra sip-proxy-1")
    caller: str  # the caller phone's address
    callee: str
    status: str  # the caller's final answer to its INVITE
    # Sites left to right after the caller: the caller's site first.
    site_order: tuple[str, ...] = field(default=())


def _header(text: str, *names: str) -> str:
    for name in names:
        m = re.search(rf"^{name}\s*:\s*(.+?)\r?$", text, re.I | re.M)
        if m:
            return m.group(1).strip()
    return ""


def sip_message(text: str) -> tuple[str, str, str]:
    """(label, Call-ID, SDP connection address) of one SIP message."""
    first = text.split("\r\n", 1)[0]
    if first.startswith("SIP/2.0"):
        code, _, reason = first[8:].partition(" ")
        label = f"{code} {reason}" if len(reason) <= 20 else f"{code} {reason[:18]}…"
        method = _header(text, "CSeq").split(" ")[-1]
        label += f" ({method})"
    else:
        method, uri = first.split(" ")[:2]
        target = re.match(r"sips?:(?:([^@;>]+)@)?([^;>]+)", uri)
        label = f"{method} {(target.group(1) or target.group(2)) if target else uri}"
        if _header(text, "Proxy-Authorization", "Authorization"):
            label += " +auth"
    sdp = re.search(r"^c=IN IP4 (\S+)", text, re.M)
    return label, _header(text, "Call-ID", "i"), sdp.group(1) if sdp else ""


COLOURS = {"sip": "#1f4e9c", "http": "#2e7d32", "ng": "#c25e00"}
LEGEND = {"sip": "SIP", "http": "route lookup (app, HTTP)", "ng": "rtpengine control (ng)"}


def columns(t: Trace) -> dict[str, list[str]]:
    """Participant -> its addresses in the call, left to right: the caller, its site's proxies,
    app and relay, then the callee's site, the callee. A node on two networks is one column."""
    used: dict[str, list[str]] = {}
    for m in t.messages:
        for address in (m.src, m.dst):
            addresses = used.setdefault(t.names.get(address, address), [])
            if address not in addresses:
                addresses.append(address)
    kinds = ("sip-proxy", "pbx-app", "media-relay")

    def rank(name: str) -> tuple[int, int, str]:
        if used[name] == [t.caller]:
            return (0, 0, "")
        if used[name] == [t.callee]:
            return (9, 0, "")
        site_name = name.split(" ", 1)[0]
        order = t.site_order
        site = 1 + (order.index(site_name) if site_name in order else len(order))
        kind = next((i for i, k in enumerate(kinds) if k in name), len(kinds))
        return (site, kind, name)

    return {name: used[name] for name in sorted(used, key=rank)}


def render(t: Trace, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # text stays text: searchable, and smaller
    plt.rcParams["svg.hashsalt"] = "pbx-ladder"  # stable element ids
    cols = columns(t)
    x = {address: i for i, addresses in enumerate(cols.values()) for address in addresses}
    rows = len(t.messages)
    fig, ax = plt.subplots(figsize=(1.8 * len(cols) + 1.6, 0.3 * rows + 1.8))
    for i, (name, addresses) in enumerate(cols.items()):
        ax.plot([i, i], [-0.6, rows], color="#b0b0b0", linewidth=1, zorder=0)
        header = "\n".join([*name.split(" ", 1), *addresses])
        ax.text(i, -0.8, header, ha="center", va="bottom", fontsize=8, weight="bold")
    start = t.messages[0].time if t.messages else 0.0
    for row, m in enumerate(t.messages):
        colour = COLOURS[m.kind]
        ax.annotate(
            "",
            xy=(x[m.dst], row),
            xytext=(x[m.src], row),
            arrowprops={"arrowstyle": "-|>", "color": colour, "linewidth": 1.1},
        )
        label = m.label + (f"  [SDP c={m.sdp_address}]" if m.sdp_address else "")
        ax.text(
            (x[m.src] + x[m.dst]) / 2, row - 0.08, label,
            ha="center", va="bottom", fontsize=7, color=colour,
        )  # fmt: skip
        ax.text(-0.45, row, f"{(m.time - start) * 1000:7.1f} ms", ha="right", va="center",
                fontsize=7, family="monospace")  # fmt: skip
    for kind, text in LEGEND.items():
        ax.plot([], [], color=COLOURS[kind], label=text)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=8, frameon=False)
    ax.set_xlim(-1.3, len(cols) - 0.4)
    ax.set_ylim(rows, -3.2)
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)
