"""pbx-efax: `serve` (the gateway node) or `healthcheck` (the container's probe)."""

from __future__ import annotations

import asyncio
import logging
import sys

from pbx_sip.agent import ping

from . import spandsp
from .service import Node, Settings


def healthcheck() -> int:
    """The node answers SIP OPTIONS on its listener, and the fax engine loads and starts."""
    settings = Settings.from_env()
    engine = spandsp.AudioFax(calling=False)
    engine.close()
    host, port = settings.config.host, settings.config.sip_port
    return 0 if asyncio.run(ping(host, port, source=host)) == 200 else 1


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not every lease poll
    command = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if command == "healthcheck":
        try:
            return healthcheck()
        except Exception as exc:
            print(f"unhealthy: {type(exc).__name__}: {exc}")
            return 1
    if command == "serve":
        asyncio.run(Node(Settings.from_env()).run())
        return 0
    print(f"usage: python -m pbx_efax [serve|healthcheck], not {command!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
