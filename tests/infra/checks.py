"""Small readers for what minimal service images lack tools for (no ss, no ps)."""

from __future__ import annotations

import ipaddress


def listening(host, proto: str) -> set[tuple[str, int]]:
    """(address, port) pairs bound on IPv4 in the container, from /proc/net/{udp,tcp}."""
    table = host.file(f"/proc/net/{proto}").content_string.splitlines()[1:]
    found = set()
    for line in table:
        fields = line.split()
        local, state = fields[1], fields[3]
        if proto == "tcp" and state != "0A":  # 0A = LISTEN
            continue
        hex_ip, hex_port = local.split(":")
        ip = ipaddress.IPv4Address(bytes.fromhex(hex_ip)[::-1])
        found.add((str(ip), int(hex_port, 16)))
    return found


def processes(host) -> list[str]:
    out = host.run("cat /proc/[0-9]*/comm 2>/dev/null").stdout
    return out.split()


def where(target, what: str) -> str:
    """The failure message: which host and service, and what is wrong."""
    return f"{target.label}: {what}"
