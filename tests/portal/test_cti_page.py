"""The CTI page in Chromium, against the app on loopback (labkit.portal_demo) with CTI Premium
booked for customer A: the page and its live stream load; a CRM URL template saved in the page
is what the API has; a new webhook's secret is shown once; click-to-dial shows the API's refusal
of a bad number, and follows a good one to its end (a stand-in phone answers the app's SIP user
agent); the levels below Premium say what is missing; call events reported by a proxy appear,
are acknowledged and resumed after. The stream's finer points (text only, http(s) links only,
the acknowledgements, resume, backoff, 4403) are played to the page by a stand-in WebSocket
server (Playwright's route_web_socket)."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, WebSocketRoute, expect

from labkit.pg_cluster import free_port
from labkit.portal_demo import INTERNAL_TOKEN, serve_demo
from pbx_app.web import STATIC_DIR
from tests.app.conftest import SmtpSink
from tests.portal.conftest import World, describe, goto_route, login, new_page, run_axe

CRM_TEMPLATE = "https://crm.example/lookup?number={number}"
HOOK_URL = "https://hooks.example.com/pbx/cti"
BUSY = "+4930486486"  # a target the stand-in phone reports busy


class FakePhone:
    """The site's proxy and the extension's phone in one UDP socket, as click-to-dial meets
    them: the INVITE is answered after a moment (486 for BUSY), the REFER taken (202), and the
    new call's outcome reported a moment later in a NOTIFY (message/sipfrag, 200)."""

    DELAY = 1.5  # seconds: long enough for the page's one-second polls to see each state

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.methods: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            head = data.split(b"\r\n\r\n", 1)[0].decode()
            first, *lines = head.split("\r\n")
            if first.startswith("SIP/2.0"):
                continue  # the user agent's answers to our NOTIFY
            fields = (x.partition(":") for x in lines)
            headers = [(n.strip().lower(), v.strip()) for n, _, v in fields]
            method = first.split()[0]
            self.methods.append(method)
            if method == "INVITE":
                self._reply(headers, addr, "180 Ringing")
                busy = BUSY in _one(headers, "from")
                status = "486 Busy Here" if busy else "200 OK"
                self._later(self._reply, headers, addr, status, not busy)
            elif method == "REFER":
                self._reply(headers, addr, "202 Accepted")
                self._later(self._notify, headers, addr)
            elif method in ("BYE", "OPTIONS"):
                self._reply(headers, addr, "200 OK")

    def _later(self, fn: Any, *args: Any) -> None:
        threading.Timer(self.DELAY, fn, args).start()

    def _send(self, first: str, headers: list[tuple[str, str]], addr: Any, body: str = "") -> None:
        lines = [first, *(f"{n}: {v}" for n, v in headers), f"Content-Length: {len(body)}"]
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n" + body).encode(), addr)

    def _reply(
        self, req: list[tuple[str, str]], addr: Any, status: str, contact: bool = False
    ) -> None:
        to = _one(req, "to")
        if ";tag=" not in to:
            to += ";tag=phone1"
        headers = [("Via", v) for n, v in req if n == "via"]
        headers += [("From", _one(req, "from")), ("To", to), ("Call-ID", _one(req, "call-id"))]
        headers += [("CSeq", _one(req, "cseq"))]
        if contact:
            headers.append(("Contact", f"<sip:phone@127.0.0.1:{self.port}>"))
        self._send(f"SIP/2.0 {status}", headers, addr)

    def _notify(self, refer: list[tuple[str, str]], addr: Any) -> None:
        headers = [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{uuid.uuid4().hex}"),
            ("Max-Forwards", "70"),
            ("From", _one(refer, "to")),
            ("To", _one(refer, "from")),
            ("Call-ID", _one(refer, "call-id")),
            ("CSeq", "1 NOTIFY"),
            ("Event", "refer"),
            ("Subscription-State", "terminated;reason=noresource"),
            ("Content-Type", "message/sipfrag"),
        ]
        uri = _one(refer, "contact").strip("<>")
        self._send(f"NOTIFY {uri} SIP/2.0", headers, addr, "SIP/2.0 200 OK\r\n")


def _one(headers: list[tuple[str, str]], name: str) -> str:
    return next((v for n, v in headers if n == name), "")


@pytest.fixture(scope="module")
def phone() -> Iterator[FakePhone]:
    p = FakePhone()
    try:
        yield p
    finally:
        p.close()


@pytest.fixture(scope="module")
def cti_world(
    tmp_path_factory: pytest.TempPathFactory, mail_sink: SmtpSink, phone: FakePhone
) -> Iterator[World]:
    """A demo of its own: the shared one runs without a SIP user agent, where every
    click-to-dial is answered 503 before its number is looked at. Customer A books CTI
    Premium; its user's extension ("101") gets a device to ring."""
    assert (STATIC_DIR / "app.js").is_file(), "the portal bundle is missing: run `make portal`"
    with ExitStack() as stack:
        with pytest.MonkeyPatch.context() as env:  # what serve_demo's server starts with
            env.setenv("PBX_SIP_UAC_LISTEN", f"127.0.0.1:{free_port()}")
            env.setenv("PBX_SIP_PROXIES", f"127.0.0.1:{phone.port}")
            world = stack.enter_context(
                serve_demo(tmp_path_factory.mktemp("cti"), smtp_port=mail_sink.port)
            )
        a = world.a
        set_cti(world, a.admin_email, a.customer_id, "premium")
        with world.api(a.admin_email) as api:
            path = f"/customers/{a.customer_id}/extensions/{a.extension_ids[1]}/devices"
            r = api.post(path, json={})
            assert r.status_code == 201, r.text
        yield world


@pytest.fixture
def premium_a(cti_world: World) -> Iterator[World]:
    """Customer A as each test expects it, and afterwards: Premium, no CRM template, no
    webhooks."""
    yield cti_world
    a = cti_world.a
    base = f"/customers/{a.customer_id}"
    set_cti(cti_world, a.admin_email, a.customer_id, "premium")
    with cti_world.api(a.admin_email) as api:
        assert api.put(f"{base}/cti", json={"crm_url_template": None}).status_code == 200
        for hook in api.get(f"{base}/webhooks").json()["items"]:
            api.delete(f"{base}/webhooks/{hook['id']}")


def cti_route(customer_id: int) -> str:
    return f"/customers/{customer_id}/cti"


def set_cti(world: World, email: str, customer_id: int, level: str) -> None:
    with world.api(email) as api:
        r = api.patch(f"/customers/{customer_id}", json={"cti": level})
        assert r.status_code == 200, r.text


def items(answer: Any) -> list[dict[str, Any]]:
    """A list answer: the API's {"items": [...]} (the brief's contract said a bare array)."""
    return answer if isinstance(answer, list) else answer["items"]


CONNECTED = "Verbunden: neue Anrufe erscheinen sofort."
RINGING_YOU = "Ihr Telefon klingelt \u2013 bitte abheben."


def test_the_page_loads_for_an_admin_of_a_premium_customer(
    browser: Browser, premium_a: World
) -> None:
    w = premium_a
    a = w.a
    page = new_page(browser, bypass_csp=True)  # axe is the test's script, injected past the CSP
    login(page, w, a.admin_email)
    page.get_by_role("navigation").get_by_role("link", name="CTI").click()
    expect(page.locator("h1")).to_have_text("CTI")
    assert page.url.endswith(f"#{cti_route(a.customer_id)}")
    expect(page.locator("#cti-level")).to_have_text("CTI Premium")
    for heading in ("Anrufe live", "Click-to-Dial", "CRM-Abfrage", "Webhooks"):
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    # The real stream: the app greets the page (hello) over the session cookie.
    expect(page.locator(".cti-conn")).to_have_text(CONNECTED)
    expect(page.get_by_text("Noch keine Anrufe.")).to_be_visible()
    # An admin with no extension of their own picks which of the customer's phones rings.
    picker = page.get_by_label("Von Nebenstelle")
    expect(picker.locator("option")).to_have_count(len(a.extension_ids))
    expect(picker.locator("option").first).to_have_text(f"100 \u2013 {a.extension_names[0]}")
    # #/cti leads to one's own customer's page.
    goto_route(page, w, "/cti")
    expect(page.locator("#cti-level")).to_have_text("CTI Premium")
    assert page.url.endswith(f"#{cti_route(a.customer_id)}")
    expect(page.locator(".cti-conn")).to_have_text(CONNECTED)
    found = run_axe(page)
    assert not found, describe(found)
    page.locator("#lang-select").select_option("en")
    expect(page.get_by_role("heading", name="Live calls")).to_be_visible()
    expect(page.locator(".cti-conn")).to_have_text("Connected: new calls appear at once.")
    found = run_axe(page)
    assert not found, describe(found)
    page.context.close()


def test_an_operator_follows_a_customers_calls_without_dialling(
    browser: Browser, premium_a: World
) -> None:
    w = premium_a
    page = new_page(browser)
    login(page, w, w.operator_email)
    goto_route(page, w, cti_route(w.a.customer_id))
    expect(page.locator("#cti-level")).to_have_text("CTI Premium")
    expect(page.locator(".cti-conn")).to_have_text(CONNECTED)  # ?customer_id=A
    expect(page.get_by_role("heading", name="Click-to-Dial")).to_have_count(0)
    expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
    page.context.close()


def test_a_crm_template_saved_in_the_page_round_trips(browser: Browser, premium_a: World) -> None:
    w = premium_a
    a = w.a
    page = new_page(browser)
    login(page, w, a.admin_email)
    goto_route(page, w, cti_route(a.customer_id))
    form = page.locator("form", has=page.get_by_role("heading", name="CRM-Abfrage"))
    field = form.get_by_label("URL-Vorlage")
    expect(field).to_have_value("")
    field.fill(CRM_TEMPLATE)
    form.get_by_role("button", name="Speichern").click()
    expect(form.get_by_role("status")).to_have_text("Gespeichert.")
    with w.api(a.admin_email) as api:
        cti = api.get(f"/customers/{a.customer_id}/cti").json()
    assert cti == {"cti": "premium", "crm_url_template": CRM_TEMPLATE}
    page.reload()
    expect(form.get_by_label("URL-Vorlage")).to_have_value(CRM_TEMPLATE)
    # A template the API refuses: its message beside the field, the stored one unchanged.
    form.get_by_label("URL-Vorlage").fill("javascript:alert(1)//{number}")
    form.get_by_role("button", name="Speichern").click()
    expect(form.get_by_label("URL-Vorlage")).to_have_attribute("aria-invalid", "true")
    expect(form.locator(".field-error")).to_contain_text("url_refused")
    with w.api(a.admin_email) as api:
        assert api.get(f"/customers/{a.customer_id}/cti").json()["crm_url_template"] == (
            CRM_TEMPLATE
        )
    # Emptied, the lookup is off: null in the API.
    form.get_by_label("URL-Vorlage").fill("")
    form.get_by_role("button", name="Speichern").click()
    expect(form.get_by_role("status")).to_have_text("Gespeichert.")
    with w.api(a.admin_email) as api:
        assert api.get(f"/customers/{a.customer_id}/cti").json()["crm_url_template"] is None
    page.context.close()


def test_a_new_webhook_shows_its_secret_once(browser: Browser, premium_a: World) -> None:
    w = premium_a
    a = w.a
    page = new_page(browser)
    login(page, w, a.admin_email)
    goto_route(page, w, cti_route(a.customer_id))
    expect(page.get_by_text("Noch keine Webhooks.")).to_be_visible()
    form = page.locator("form", has=page.get_by_role("heading", name="Webhook hinzufügen"))
    form.get_by_label("URL").fill(HOOK_URL)
    form.get_by_role("button", name="Hinzufügen").click()
    secret_box = form.locator(".secret")
    expect(secret_box).to_contain_text("es wird nur jetzt angezeigt")
    secret = secret_box.locator("code").inner_text().strip()
    assert len(secret) >= 16, secret
    table = page.get_by_role("table", name="Webhooks des Kunden")
    expect(table).to_contain_text(HOOK_URL)
    expect(form.get_by_label("URL")).to_have_value("")
    with w.api(a.admin_email) as api:
        listed = api.get(f"/customers/{a.customer_id}/webhooks")
    assert listed.status_code == 200, listed.text
    assert [h["url"] for h in items(listed.json())] == [HOOK_URL]
    assert secret not in listed.text  # the API shows it once, too
    # Once: gone after a reload, the webhook still listed.
    page.reload()
    expect(table).to_contain_text(HOOK_URL)
    expect(page.locator(".secret")).to_have_count(0)
    assert secret not in page.locator("body").inner_text()
    # A URL the platform will not call: the API's refusal beside the field.
    form.get_by_label("URL").fill("http://127.0.0.1:8080/hook")
    form.get_by_role("button", name="Hinzufügen").click()
    expect(form.locator(".field-error")).to_contain_text("url_refused")
    expect(table.locator("tbody tr")).to_have_count(1)
    # Its delivery log (nothing delivered yet), then the delete.
    table.get_by_role("button", name=f"Zustellungen an {HOOK_URL} anzeigen").click()
    expect(page.get_by_text(f"Noch keine Zustellungen an {HOOK_URL}.")).to_be_visible()
    page.once("dialog", lambda d: d.accept())
    table.get_by_role("button", name=f"Webhook {HOOK_URL} löschen").click()
    expect(page.get_by_text("Noch keine Webhooks.")).to_be_visible()
    expect(page.get_by_text("Noch keine Zustellungen")).to_have_count(0)
    with w.api(a.admin_email) as api:
        assert items(api.get(f"/customers/{a.customer_id}/webhooks").json()) == []
    page.context.close()


def test_click_to_dial_with_an_invalid_target_shows_the_apis_message(
    browser: Browser, premium_a: World
) -> None:
    w = premium_a
    a = w.a
    body = {"target": "not a number"}
    with w.api(a.member_email) as api:
        r = api.post("/click-to-dial", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    page = new_page(browser)
    login(page, w, a.member_email)  # a user, with one extension of their own
    goto_route(page, w, cti_route(a.customer_id))
    # A user: the stream and click-to-dial; the customer's settings are the admin's.
    expect(page.locator(".cti-conn")).to_have_text(CONNECTED)
    expect(page.get_by_role("heading", name="Webhooks")).to_have_count(0)
    expect(page.get_by_label("Von Nebenstelle")).to_have_count(0)  # one extension: no choice
    form = page.locator("form", has=page.get_by_role("heading", name="Click-to-Dial"))
    form.get_by_label(re.compile("^Rufnummer")).fill(body["target"])
    form.get_by_role("button", name="Anrufen").click()
    expect(form).to_contain_text(error["message"])
    expect(form).to_contain_text(error["code"])
    expect(form.locator(".cti-dial-status")).to_have_text("")
    page.context.close()


def test_click_to_dial_is_followed_until_it_connects_or_fails(
    browser: Browser, premium_a: World, phone: FakePhone
) -> None:
    w = premium_a
    a = w.a
    page = new_page(browser)
    login(page, w, a.member_email)
    goto_route(page, w, cti_route(a.customer_id))
    form = page.locator("form", has=page.get_by_role("heading", name="Click-to-Dial"))
    status = form.locator(".cti-dial-status")
    form.get_by_label(re.compile("^Rufnummer")).fill("+4930123456")
    form.get_by_role("button", name="Anrufen").click()
    expect(status).to_have_text(RINGING_YOU)
    expect(status).to_have_text("Verbinde mit +4930123456 …")
    expect(status).to_have_text("Verbunden mit +4930123456.")
    assert {"INVITE", "REFER"} <= set(phone.methods), phone.methods
    form.get_by_label(re.compile("^Rufnummer")).fill(BUSY)
    form.get_by_role("button", name="Anrufen").click()
    expect(status).to_have_text(RINGING_YOU)
    expect(status).to_have_text("Nicht verbunden: busy")
    page.context.close()


def test_the_levels_below_premium_say_what_is_missing(browser: Browser, cti_world: World) -> None:
    b = cti_world.b
    page = new_page(browser)
    login(page, cti_world, b.admin_email)
    goto_route(page, cti_world, cti_route(b.customer_id))
    expect(page.locator("#cti-level")).to_have_text("nicht gebucht")
    expect(page.get_by_role("status")).to_have_text("CTI ist für diesen Kunden nicht gebucht.")
    expect(page.get_by_role("heading", name="Click-to-Dial")).to_have_count(0)
    set_cti(cti_world, b.admin_email, b.customer_id, "standard")
    try:
        page.reload()
        expect(page.locator("#cti-level")).to_have_text("CTI Standard")
        expect(page.locator(".cti-conn")).to_have_text(CONNECTED)
        expect(page.get_by_role("heading", name="Click-to-Dial")).to_be_visible()
        expect(page.get_by_text("Dafür ist „CTI Premium“ nötig")).to_be_visible()
        expect(page.get_by_label("URL-Vorlage")).to_have_count(0)
        expect(page.get_by_role("heading", name="Webhook hinzufügen")).to_have_count(0)
    finally:
        set_cti(cti_world, b.admin_email, b.customer_id, "none")
    page.context.close()


def report(world: World, kind: str, call_id: str, **more: Any) -> None:
    """A proxy's CTI report of a call from the carrier to customer A's head number."""
    body = {
        "kind": kind,
        "source": "trunk",
        "ts": f"{time.time():.3f}",
        "call_id": call_id,
        "caller": "+4930555123",
        "caller_id": "+4930555123",
        "callee_customer": str(world.a.customer_id),
        "dialled": "+4969123400",
        "node": "sip-proxy-fra-1",
        **more,
    }
    r = httpx.post(
        f"{world.base_url}/internal/v1/call-events",
        json=[body],
        headers={"X-PBX-Internal-Token": INTERNAL_TOKEN},
        timeout=15,
    )
    assert r.status_code == 200, r.text
    assert r.json()["queued"] == 1, r.text


def test_reported_calls_appear_and_a_reload_resumes_after_the_last_acknowledged(
    browser: Browser, premium_a: World
) -> None:
    w = premium_a
    a = w.a
    page = new_page(browser)
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    login(page, w, a.admin_email)
    goto_route(page, w, cti_route(a.customer_id))
    expect(page.locator(".cti-conn")).to_have_text(CONNECTED)
    call = f"e2e-{uuid.uuid4().hex[:8]}"
    report(w, "ringing", call)
    table = page.get_by_role("table", name="Anrufe")
    row = table.locator("tbody tr", has_text="+4930555123")
    expect(row).to_contain_text("klingelt")
    expect(row).to_contain_text("eingehend")
    report(w, "answered", call)
    expect(row).to_contain_text("angenommen")
    report(w, "ended", call, code="200", reason="OK")
    expect(row).to_contain_text("beendet (200 OK)")
    expect(table.locator("tbody tr")).to_have_count(1)
    with w.api(a.admin_email) as api:
        events = api.get("/call-events", params={"after": 0}).json()["items"]
    last = max(e["seq"] for e in events if e["call_id"] == call)
    key = f"pbx.cti.{a.user_id}.{a.customer_id}"
    stored = page.evaluate(f"JSON.parse(sessionStorage.getItem('{key}'))")
    assert stored["acked"] == last, stored
    page.reload()
    expect(page.locator(".cti-conn")).to_have_text(CONNECTED)
    assert sockets[-1].endswith(f"/api/v1/call-events/ws?after={last}"), sockets
    expect(row).to_contain_text("beendet (200 OK)")  # the tab's table, kept
    page.context.close()


# --- the stream, played by a stand-in server ---------------------------------------------------


class FakeStream:
    """Every WebSocket the page opens to /api/v1/call-events/ws, answered by the test."""

    def __init__(self, page: Page) -> None:
        self.sockets: list[WebSocketRoute] = []
        self.received: list[list[dict[str, Any]]] = []
        page.route_web_socket(re.compile(r"/api/v1/call-events/ws"), self._accept)

    def _accept(self, ws: WebSocketRoute) -> None:
        got: list[dict[str, Any]] = []
        self.sockets.append(ws)
        self.received.append(got)
        ws.on_message(lambda m: got.append(json.loads(m)))

    def wait_for(self, count: int, page: Page) -> WebSocketRoute:
        for _ in range(100):
            if len(self.sockets) >= count:
                return self.sockets[count - 1]
            page.wait_for_timeout(100)
        raise AssertionError(f"{len(self.sockets)} connections, expected {count}")

    def acks(self, n: int, expected: list[int], page: Page) -> list[int]:
        """The acknowledgements on connection `n`, once they are `expected` (or after 5 s)."""
        got: list[int] = []
        for _ in range(50):
            got = [m["ack"] for m in self.received[n - 1] if "ack" in m]
            if got == expected:
                break
            page.wait_for_timeout(100)
        return got


def hello(last_seq: int) -> str:
    return json.dumps({"type": "hello", "last_seq": last_seq})


def event(seq: int, kind: str, call_id: str, **more: Any) -> str:
    body = {
        "type": "event",
        "seq": seq,
        "kind": kind,
        "call_id": call_id,
        "direction": "inbound",
        "from_number": "+4930555123",
        "to_number": "+4969123400",
        "caller_extension_id": None,
        "callee_extension_id": None,
        "occurred_at": "2026-12-03T09:00:00.000Z",
        "crm": None,
        "code": None,
        "reason": None,
        "refer_to": None,
    }
    return json.dumps(body | more)


def test_live_events_are_shown_as_text_acknowledged_and_resumed(
    browser: Browser, premium_a: World
) -> None:
    w = premium_a
    a = w.a
    page = new_page(browser)
    stream = FakeStream(page)
    login(page, w, a.admin_email)
    goto_route(page, w, cti_route(a.customer_id))
    # A fresh tab: no after=; the page takes the calls from the greeting's seq on, not the days
    # of history the server keeps, and resumes there.
    fresh = stream.wait_for(1, page)
    assert fresh.url.endswith("/api/v1/call-events/ws"), fresh.url
    fresh.send(hello(40))
    first = stream.wait_for(2, page)
    assert first.url.endswith("/api/v1/call-events/ws?after=40"), first.url
    first.send(hello(40))
    first.send(event(40, "ringing", "old-call"))  # not after 40: dropped
    expect(page.locator(".cti-conn")).to_have_text(CONNECTED)
    sneaky = '<img src=x onerror="window.__xss=1">'
    crm = {"name": sneaky, "company": "Muster GmbH", "link": "https://crm.example/c/7?x=1"}
    first.send(event(41, "ringing", "call-a", crm=crm))
    bad_link = {"name": "Eva Beispiel", "company": None, "link": "javascript:window.__xss=2"}
    first.send(event(42, "ringing", "call-b", crm=bad_link, from_number="+4930999"))
    cards = page.locator(".cti-caller")
    expect(cards).to_have_count(2)
    card_a = cards.filter(has_text="Muster GmbH")
    expect(card_a.locator(".cti-caller-name")).to_have_text(f"Anrufer: {sneaky}, Muster GmbH")
    link = card_a.get_by_role("link", name="Im CRM öffnen")
    expect(link).to_have_attribute("href", "https://crm.example/c/7?x=1")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    card_b = cards.filter(has_text="Eva Beispiel")
    expect(card_b.get_by_role("link")).to_have_count(0)  # not http(s): text only
    expect(card_b).to_contain_text("javascript:window.__xss=2")
    expect(page.locator("main img")).to_have_count(0)
    assert page.evaluate("window.__xss") is None
    table = page.get_by_role("table", name="Anrufe")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator("tbody tr").first).to_contain_text("+4930999")  # newest first
    assert stream.acks(2, [41, 42], page) == [41, 42]
    key = f"pbx.cti.{a.user_id}.{a.customer_id}"
    assert json.loads(page.evaluate(f"sessionStorage.getItem('{key}')"))["acked"] == 42
    # Answered and ended: one row per call, its card gone once it no longer rings.
    first.send(event(43, "answered", "call-a"))
    first.send(event(44, "ended", "call-a", code=200, reason="OK"))
    expect(cards).to_have_count(1)
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table).to_contain_text("beendet (200 OK)")
    # The server goes away: the page comes back after a second, after the last acknowledged.
    first.close(code=1011, reason="restart")
    expect(page.locator(".cti-conn")).to_contain_text("neuer Versuch in 1 s")
    second = stream.wait_for(3, page)
    assert second.url.endswith("/api/v1/call-events/ws?after=44"), second.url
    second.send(hello(45))
    second.send(event(44, "ended", "call-a", code=200, reason="OK"))  # a repeat: dropped
    second.send(event(45, "ended", "call-b", code=487, reason="Request Terminated"))
    expect(cards).to_have_count(0)
    expect(table).to_contain_text("beendet (487 Request Terminated)")
    assert stream.acks(3, [45], page) == [45]
    # A reload of the tab resumes after the last one shown, the calls still listed.
    page.reload()
    third = stream.wait_for(4, page)
    assert third.url.endswith("?after=45"), third.url
    expect(page.get_by_role("table", name="Anrufe").locator("tbody tr")).to_have_count(2)
    # 4403: CTI is not booked (any more); the reason in words, and no further attempts.
    third.close(code=4403, reason="cti_not_booked")
    refused = page.locator("#cti-refused")
    expect(refused).to_have_text("CTI ist für diesen Kunden nicht gebucht. cti_not_booked")
    page.wait_for_timeout(2500)
    assert len(stream.sockets) == 4
    page.context.close()


def test_a_refused_handshake_is_explained_by_the_api(browser: Browser, premium_a: World) -> None:
    """A server that refuses the handshake leaves the page a bare 1006; the page asks the same
    over HTTP (GET /call-events), shows the API's refusal and stops trying."""
    w = premium_a
    a = w.a
    page = new_page(browser)
    stream = FakeStream(page)
    login(page, w, a.admin_email)
    goto_route(page, w, cti_route(a.customer_id))
    stream.wait_for(1, page).send(hello(7))
    stream.wait_for(2, page).send(hello(7))
    expect(page.locator(".cti-conn")).to_have_text(CONNECTED)
    set_cti(w, a.admin_email, a.customer_id, "none")
    stream.sockets[1].close(code=1011, reason="restart")
    stream.wait_for(3, page).close(code=1011, reason="refused")  # no greeting this time
    refused = page.locator("#cti-refused")
    expect(refused).to_contain_text("CTI is not booked")
    expect(refused).to_contain_text("cti_not_booked")
    page.wait_for_timeout(2500)
    assert len(stream.sockets) == 3
    page.context.close()


def test_reconnects_back_off_up_to_fifteen_seconds(browser: Browser, premium_a: World) -> None:
    """Closed again and again, the page waits 1, 2, 4, 8, then at most 15 s."""
    w = premium_a
    page = new_page(browser)
    stream = FakeStream(page)
    page.clock.install()
    login(page, w, w.a.admin_email)
    goto_route(page, w, cti_route(w.a.customer_id))
    status = page.locator(".cti-conn")
    stream.wait_for(1, page)
    # An installed clock still follows real time; paused, it moves only by run_for (a loaded
    # machine would otherwise bring the next attempt early).
    page.clock.pause_at(page.evaluate("Date.now()") + 10)
    for n, seconds in enumerate((1, 2, 4, 8, 15, 15), start=1):
        stream.wait_for(n, page).close(code=1011, reason="busy")
        expect(status).to_have_text(f"Verbindung unterbrochen; neuer Versuch in {seconds} s.")
        page.clock.run_for(seconds * 1000 - 200)
        page.wait_for_timeout(100)
        assert len(stream.sockets) == n  # not before its time
        page.clock.run_for(400)
    page.context.close()
