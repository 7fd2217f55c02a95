"""URLs the platform calls on a customer's behalf (webhooks, CRM lookups): never the platform
itself. A customer could otherwise point them at the database, the proxies' RPC or a cloud
metadata address and read the answers (server-side request forgery).

Refused: schemes other than http/https, user info in the URL, and hosts that are or resolve to
loopback, link-local, multicast, unspecified or reserved addresses, or to the operator's
platform networks (PBX_OUTBOUND_DENY: the internal networks and the nodes' own addresses).
Checked when the URL is saved (its form) and before every request (where its name points now).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class UrlRefused(ValueError):
    """The URL may not be called; the message says why."""


def networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip())


def check_form(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL without user info; UrlRefused otherwise."""
    if len(url) > 2000 or not url.isascii() or any(c.isspace() for c in url):
        raise UrlRefused("an http or https URL of at most 2,000 characters, without spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("only http and https URLs")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("no user name or password in the URL (the request is signed instead)")
    if not parts.hostname:
        raise UrlRefused("the URL names no host")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _refused_address(address: str, deny: Sequence[Network]) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    special = ip.is_loopback or ip.is_link_local or ip.is_multicast
    return special or ip.is_unspecified or ip.is_reserved or any(ip in n for n in deny)


def check(url: str, deny: Sequence[Network], resolve: bool = True) -> None:
    """UrlRefused unless ``url`` may be called now (``resolve``: where its name points)."""
    host, port = check_form(url)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    elif not resolve:
        return
    else:
        try:
            infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            raise UrlRefused(f"{host} does not resolve: {exc.strerror or exc}") from None
        addresses = [str(info[4][0]) for info in infos]
    if any(_refused_address(a, deny) for a in addresses):
        raise UrlRefused(f"{host} is an address of the platform or a special-purpose address")
