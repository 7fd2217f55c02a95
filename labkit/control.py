"""The proxies' and relays' management interfaces: Kamailio's RPC (kamcmd, inside each proxy's
container) and rtpengine's CLI (rtpengine-ctl). Bans, bindings, relay sessions and counters."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from .docker import docker, shell
from .lab import ALL_PROXIES, RTPENGINE_CLI_HOST, RTPENGINE_CLI_PORT, SIP_DOMAIN
from .wait import wait_for

BAN_TABLES = ("ipban", "authfail")  # the ban itself and the failed-auth count behind it


def kamcmd(container: str, *args: str, check: bool = True, timeout: float = 20) -> str:
    """One RPC on a proxy; its output (with `check`, a failure is an AssertionError)."""
    r = docker("exec", container, "kamcmd", *args, timeout=timeout)
    assert r.returncode == 0 or not check, f"kamcmd {args} on {container}: {r.stderr}"
    return r.stdout


def _on_every_proxy(commands: Iterable[str]) -> None:
    """Run kamcmd command lines on every proxy, one shell per proxy, ignoring their failures."""
    script = "; ".join(f"kamcmd {c} >/dev/null 2>&1" for c in commands)
    if script:
        for proxy in ALL_PROXIES:
            shell(proxy, script, timeout=60)


# ---- bindings ---------------------------------------------------------------------------------


def location_contacts(container: str, aor: str) -> list[str]:
    """Contact addresses of an AOR in a proxy's location table (empty when not found)."""
    r = docker("exec", container, "kamcmd", "ul.lookup", "location", f"{aor}@{SIP_DOMAIN}",
               timeout=20)  # fmt: skip
    if r.returncode != 0:
        return []
    return re.findall(r"Address:\s*(\S+)", r.stdout)


def only_binding(proxy: str, aor: str, marker: str) -> list[str] | None:
    """The AOR's bindings at `proxy` when there are some and all of them contain `marker`."""
    contacts = location_contacts(proxy, aor)
    return contacts if contacts and all(marker in c for c in contacts) else None


def clear_bindings(*aors: str) -> None:
    """Remove every binding of these AORs on every proxy, and wait until none is left. A UA that
    was killed leaves its binding until it expires (baresip's contact has a new port every run),
    and stale bindings count against the device's max_contacts and get the AOR's calls forked."""
    _on_every_proxy(f"ul.rm location {aor}@{SIP_DOMAIN}" for aor in aors)
    ours = {aor.split("@")[0] for aor in aors}
    wait_for(
        lambda: not any(a.split("@")[0] in ours for p in ALL_PROXIES for a, _ in bindings(p)),
        10,
        what=f"no bindings of {', '.join(aors)} left on any proxy",
    )


def bindings(proxy: str) -> list[tuple[str, str]]:
    """Every (AOR, contact address) in a proxy's location table."""
    found: list[tuple[str, str]] = []
    aor = ""
    for line in kamcmd(proxy, "ul.dump", check=False, timeout=30).splitlines():
        line = line.strip()
        if line.startswith("AoR:"):
            aor = line.split(":", 1)[1].strip()
        elif line.startswith("Address:"):
            found.append((aor, line.split(":", 1)[1].strip()))
    return found


# ---- bans -------------------------------------------------------------------------------------


def unban(*ips: str) -> None:
    """Lift bans and failed-auth counts of these addresses on every proxy."""
    _on_every_proxy(f"htable.delete {table} {ip}" for ip in ips for table in BAN_TABLES)


def banned(proxy: str, ips: Iterable[str]) -> list[str]:
    """Those of `ips` in the proxy's ban table."""
    dump = kamcmd(proxy, "htable.dump", "ipban", check=False)
    return [ip for ip in ips if f"name: {ip}\n" in dump]


def banned_everywhere(ip: str) -> bool:
    """The source is in the ban table of every proxy (DMQ replication)."""
    for proxy in ALL_PROXIES:
        r = docker("exec", proxy, "kamcmd", "htable.get", "ipban", ip, timeout=20)
        if r.returncode != 0 or not re.search(r"value: 1\b", r.stdout):
            return False
    return True


# ---- other proxy state ------------------------------------------------------------------------


def appstats(proxy: str) -> dict[str, int]:
    """The proxy's counters in htable 'appstats' (route lookups; credential cache hits, misses,
    drops and resets), 0 for one not counted yet."""
    values: dict[str, int] = {}
    name = None
    for line in kamcmd(proxy, "htable.dump", "appstats", check=False).splitlines():
        key, _, value = line.strip().partition(":")
        if key == "name":
            name = value.strip()
        elif key == "value" and name:
            values[name] = int(value.strip())
    keys = ("lookups", "lookup_us", "cache_hits", "cred_hits", "cred_misses", "cred_dropped")
    return {k: values.get(k, 0) for k in (*keys, "cred_resets")}


def credentials_cached(proxy: str, username: str) -> bool:
    """The device's credentials are in the proxy's cache (htable 'creds')."""
    r = docker("exec", proxy, "kamcmd", "htable.get", "creds", username, timeout=20)
    return r.returncode == 0 and "value:" in r.stdout


def dmq_peers(proxy: str) -> list[str]:
    """The hosts of the other nodes in a proxy's DMQ node list, one per entry (a duplicated
    peer is listed twice, and then gets every replication message twice)."""
    out = kamcmd(proxy, "dmq.list_nodes", check=False)
    return [
        m.group(1)
        for entry in out.split("}")
        if "local: 0" in entry and (m := re.search(r"host: (\S+)", entry))
    ]


def set_route_cache(proxy: str, on: bool) -> None:
    """The proxy's runtime switch for caching the app's routing decisions (pbx.route_cache)."""
    kamcmd(proxy, "cfg.set_now_int", "pbx", "route_cache", str(int(on)), check=False)


# ---- media relays -----------------------------------------------------------------------------


def rtpengine_ctl(relay: str, *args: str) -> str:
    cli = ("-ip", RTPENGINE_CLI_HOST, "-port", str(RTPENGINE_CLI_PORT))
    r = docker("exec", relay, "rtpengine-ctl", *cli, *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def relay_totals(relay: str) -> dict[str, int]:
    """rtpengine's cumulative counters (packets/bytes relayed, sessions)."""
    values: dict[str, int] = {}
    section = ""
    for line in rtpengine_ctl(relay, "list", "totals").splitlines():
        if line.startswith("Total statistics"):
            section = "total:"
        elif line.startswith("Statistics over currently"):
            section = "current:"
        m = re.match(r"\s*(.+?)\s*:\s*(\d+)\s*$", line)
        if m:
            values[section + m.group(1)] = int(m.group(2))
    return values


def relay_calls(relay: str) -> str:
    """The Call-IDs a relay currently holds (rtpengine-ctl's session list)."""
    return rtpengine_ctl(relay, "list", "sessions", "all")


def relay_stats(relay: str) -> dict[str, Any]:
    """rtpengine's statistics as JSON (interfaces with their ports, control counters)."""
    stats: dict[str, Any] = json.loads(rtpengine_ctl(relay, "list", "jsonstats"))
    return stats


def relay_delete_delay(relay: str) -> int:
    """Seconds a relay keeps a call's ports after its delete (BYE)."""
    return int(rtpengine_ctl(relay, "list", "deletedelay").split()[-1])


def relay_packets_by_side(relay: str, call_id: str) -> list[int]:
    """Packets the relay has received from each party of one call (rtpengine-ctl's per-call
    listing: a block per party, "--- Tag ...", its streams' counters as "<n> p"); [] when the
    relay does not hold the call."""
    r = docker("exec", relay, "rtpengine-ctl", "-ip", RTPENGINE_CLI_HOST, "-port",
               str(RTPENGINE_CLI_PORT), "list", "sessions", call_id)  # fmt: skip
    sides: list[int] = []
    for line in r.stdout.splitlines():
        if line.startswith("--- Tag"):
            sides.append(0)
        elif sides and (m := re.search(r"\b(\d+) p\b", line)):
            sides[-1] += int(m.group(1))
    return sides
