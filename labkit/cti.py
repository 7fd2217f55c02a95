"""CTI in the lab: a call-event stream client (WebSocket, as a desktop client would run it), and
a small HTTP server in a test container that plays the customer's CRM and webhook receiver."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from .devices import Device

CTI_PORT = 8090

# The customer's side: GET /crm?number= answers a record for every number; /slow never answers
# in time; POST /hook stores each delivery (headers and raw body) as a JSON line.
SERVER = r"""
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs

class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def _json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        u = urlsplit(self.path)
        if u.path == "/slow":
            time.sleep(30); return self._json(200, {"name": "too late"})
        number = parse_qs(u.query).get("number", [""])[0]
        with open("/tmp/crm-asked.txt", "a") as f: f.write(number + "\n")
        self._json(200, {"name": "Erika Mustermann", "company": "Beispiel GmbH",
                         "link": "https://crm.example/contacts/" + number})
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        line = {"headers": dict(self.headers), "body": body.decode()}
        with open("/tmp/hooks.jsonl", "a") as f: f.write(json.dumps(line) + "\n")
        self._json(200, {"ok": True})

ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
"""


def start_server(box: Device) -> str:
    """Starts the CRM/webhook server in ``box``; its base URL."""
    box.sh(f"cat > /tmp/cti_server.py <<'PY'\n{SERVER}PY\n")
    box.sh(f"(python3 /tmp/cti_server.py {CTI_PORT} > /tmp/cti_server.log 2>&1 &)")
    base = f"http://{box.ip}:{CTI_PORT}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (
            box.sh(
                f"python3 -c \"import urllib.request as u; u.urlopen('{base}/crm?number=0')\""
            ).returncode
            == 0
        ):
            return base
        time.sleep(0.3)
    raise AssertionError(f"CTI test server in {box.name} did not start")


def deliveries(box: Device) -> list[dict[str, Any]]:
    text = box.sh("cat /tmp/hooks.jsonl 2>/dev/null").stdout
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class EventStream:
    """A WebSocket on /api/v1/call-events/ws; collects events in a thread, acknowledging each."""

    def __init__(self, ws_url: str, token: str, after: int = 0, customer_id: int = 0) -> None:
        self.url = f"{ws_url}?after={after}" + (
            f"&customer_id={customer_id}" if customer_id else ""
        )
        self.events: list[dict[str, Any]] = []
        self.hello: dict[str, Any] | None = None
        self.closed: tuple[int, str] | None = None
        self._stack = ExitStack()
        self._ws: ClientConnection = self._stack.enter_context(
            connect(
                self.url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10
            )
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for text in self._ws:
                msg = json.loads(text)
                if msg.get("type") == "hello":
                    self.hello = msg
                elif msg.get("type") == "event":
                    msg["_received"] = time.time()
                    self.events.append(msg)
                    self._ws.send(json.dumps({"ack": msg["seq"]}))
        except ConnectionClosed as exc:
            self.closed = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (1006, "")
        except OSError:
            self.closed = (1006, "")

    @property
    def last_seq(self) -> int:
        return self.events[-1]["seq"] if self.events else 0

    def of_call(self, call_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["call_id"] == call_id]

    def wait(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; events: {self.events[-10:]}")

    def close(self) -> None:
        self._stack.close()
        self._thread.join(5)
