"""The lab's remote fax machine, behind the simulated carrier: the far end the platform's fax
gateways exchange real faxes with. It runs the same fax engine (spandsp through pbx_efax) on
its own numbers, with the behaviours of real lines:

  +49 40 7770 001   answers on G.711 and refuses T.38 (a 488 to a re-INVITE)
  +49 40 7770 002   answers and moves the call to T.38 itself (re-INVITE), as carriers do
  +49 40 7770 486   busy
  +49 40 7770 480   nobody answers (480)
  +49 40 7770 499   answers, then hangs up in the middle of the first page

`serve` answers them and keeps what it receives in /var/lib/faxpeer/received (the pages as
TIFF, the outcome as JSON); `send --to N --file F [--t38 accept|off]` faxes a document to the
platform through the carrier and prints the outcome as JSON; `healthcheck` asks it for OPTIONS.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import socket
import sys
from pathlib import Path

from pbx_efax.documents import fax_pages
from pbx_efax.gateway import Config, Gateway, Policy, Received
from pbx_sip.agent import ping

PORT = 5070
SEND_PORTS = range(5072, 5100)  # senders run side by side, one port each
HOME = Path("/var/lib/faxpeer")
PREFIX = "+49407770"
POLICIES = {
    "001": Policy(t38="off"),
    "002": Policy(t38="offer"),
    "486": Policy(486, "Busy Here"),
    "480": Policy(480, "Temporarily Unavailable"),
    # The page has begun some 10 s after the answer (CNG/CED, DIS/DCS, training).
    "499": Policy(t38="off", hang_up_after_s=18.0),
}


def own_address() -> str:
    """The container's address (the carrier has one network): the entrypoint's, or its name's."""
    return os.environ.get("PBX_FAXPEER_ADDRESS") or socket.gethostbyname(socket.gethostname())


def config(port: int, t38: str = "accept") -> Config:
    """Port PORT answers; each sender has one of SEND_PORTS, its media beside the others'."""
    address = own_address()
    slot = port - PORT
    return Config(
        host=address,
        sip_port=port,
        proxies=[(address, 5060)],  # the carrier's router
        media_ports=range(40000 + slot * 40, 40040 + slot * 40),
        domain="pstn.lab",
        token="",
        spool=HOME / "spool",
        t38=t38,
    )


def policy(number: str) -> Policy:
    digits = number.replace("+490", "+49")
    if not digits.startswith(PREFIX):
        return Policy(404, "Not Found")
    return POLICIES.get(digits[len(PREFIX) :], Policy(404, "Not Found"))


async def serve() -> None:
    received = HOME / "received"
    received.mkdir(parents=True, exist_ok=True)

    async def keep(fax: Received) -> None:
        stem = received / fax.call_id.replace("/", "_")
        if fax.tiff.exists():
            fax.tiff.rename(stem.with_suffix(".tif"))
        report = {"number": fax.number, "caller": fax.caller, **dataclasses.asdict(fax.outcome)}
        stem.with_suffix(".json").write_text(json.dumps(report))

    gateway = Gateway(config(PORT), keep)
    gateway.policy = policy
    await gateway.start()
    await asyncio.Event().wait()


async def send(number: str, document: Path, t38: str) -> int:
    for port in SEND_PORTS:
        gateway = Gateway(config(port, t38), lambda fax: asyncio.sleep(0))
        try:
            await gateway.start()
            break
        except OSError:  # another sender has it
            continue
    else:
        raise SystemExit("every sender port is taken")
    try:
        pages = HOME / "spool" / f"send-{gateway.config.sip_port}.tif"
        fax_pages(document.read_bytes(), pages)
        outcome = await gateway.send(number, "+49407770001", pages, header="Remote fax")
        print(json.dumps(dataclasses.asdict(outcome)))
        return 0 if outcome.status == "ok" else 1
    finally:
        await gateway.close()


async def healthcheck() -> int:
    address = own_address()
    return 0 if await ping(address, PORT, source=address) == 200 else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="faxpeer")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve")
    sub.add_parser("healthcheck")
    sending = sub.add_parser("send")
    sending.add_argument("--to", required=True)
    sending.add_argument("--file", type=Path, required=True)
    sending.add_argument("--t38", choices=("accept", "off"), default="accept")
    args = parser.parse_args()
    if args.command == "serve":
        asyncio.run(serve())
        return 0
    if args.command == "healthcheck":
        return asyncio.run(healthcheck())
    return asyncio.run(send(args.to, args.file, args.t38))


if __name__ == "__main__":
    sys.exit(main())
