"""CTI in the app (issue 17): proxy reports become each customer's events in seq order, the
CRM lookup's timeout and cache, webhook signing/retries, the outbound URL guard, the API's
gating and scoping, the WebSocket's resume, and click-to-dial's user agent against a peer
that plays proxy and phone."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pbx_app import errors, outbound
from pbx_app.app import create_app
from pbx_app.click_to_dial import Dialer, Request
from pbx_app.crm import CrmLookup
from pbx_app.event_ingest import Ingestor
from pbx_app.mail import SmtpMailer
from pbx_app.repositories import call_events as repo
from pbx_app.services import call_events
from pbx_app.services.call_events import ReportInvalid, parse
from pbx_app.webhooks import WebhookSender, retry_after, signature, verify
from pbx_sip.agent import UserAgent, build
from pbx_sip.agent import parse as parse_sip
from tests.app.conftest import Api, error_code, make_settings

INTERNAL = {"X-PBX-Internal-Token": "t0ken"}


@pytest.fixture
def world(api: Api) -> dict[str, Any]:
    """Customer a (CTI Premium) with extensions 100 and 101, one phone each; customer b
    (no CTI) with extension 100 and a phone."""
    api.operator.patch(f"/api/v1/customers/{api.a}", json={"cti": "premium"})
    ids: dict[str, Any] = {}
    for who, cust, loc, client in (
        ("a", api.a, api.loc_a, api.admin_a),
        ("b", api.b, api.loc_b, api.admin_b),
    ):
        for number in ("100", "101") if who == "a" else ("100",):
            ext = client.post(
                f"/api/v1/customers/{cust}/extensions", json={"location_id": loc, "number": number}
            ).json()
            dev = client.post(
                f"/api/v1/customers/{cust}/extensions/{ext['id']}/devices",
                json={"sip_username": f"{who}-{number}"},
            )
            assert dev.status_code == 201, dev.text
            ids[f"{who}{number}"] = ext["id"]
    return ids


def report(kind: str, **kw: Any) -> dict[str, Any]:
    base = {
        "kind": kind,
        "call_id": kw.pop("call_id", "c1"),
        "ts": f"{time.time():.6f}",
        "source": "device",
        "caller": "a-100",
        "caller_id": "a-100",
        "customer": "",
        "callee_customer": "",
        "dialled": "101",
        "resolved": "",
    }
    return {**base, **kw}


def ingest(api: Api, *raw: dict[str, Any], crm: CrmLookup | None = None) -> int:
    ingestor = Ingestor(api.db, crm or CrmLookup())
    return ingestor.process([parse(r) for r in raw])


def events(api: Api) -> list[dict[str, Any]]:
    with api.db.snapshot() as conn:
        return [call_events.public(r) for r in repo.after(conn, 0, 1000)]


# --- reports to events -------------------------------------------------------------------------
def test_a_report_names_the_field_at_fault() -> None:
    with pytest.raises(ReportInvalid, match="kind"):
        parse(report("exploded"))
    with pytest.raises(ReportInvalid, match="ts"):
        parse(report("ringing", ts="yesterday"))
    with pytest.raises(ReportInvalid, match="customer"):
        parse(report("ringing", customer="1; DROP"))
    assert parse(report("ringing", customer="<null>")).customer is None


def test_an_internal_call_is_one_event_per_step_in_order(api: Api, world: dict[str, Any]) -> None:
    a = str(api.a)
    for kind in ("ringing", "answered", "ended", "ended"):  # the second "ended" is a repeat
        ingest(
            api,
            report(kind, customer=a, callee_customer=a, resolved=f"c{a}x101", code="200"),
        )
    got = events(api)
    assert [e["kind"] for e in got] == ["ringing", "answered", "ended"]
    assert [e["seq"] for e in got] == sorted(e["seq"] for e in got)
    first = got[0]
    assert first["direction"] == "internal"
    assert first["customer_id"] == api.a
    assert (first["caller_extension_id"], first["callee_extension_id"]) == (
        world["a100"],
        world["a101"],
    )
    assert (first["from_number"], first["to_number"]) == ("100", "101")


def test_a_call_between_customers_reaches_only_those_with_cti(
    api: Api, world: dict[str, Any]
) -> None:
    b = str(api.b)
    raw = report("ringing", caller="b-100", caller_id="b-100", customer=b,
                 callee_customer=str(api.a), resolved=f"c{api.a}x100")  # fmt: skip
    ingest(api, raw)
    (event,) = events(api)
    assert event["customer_id"] == api.a
    assert event["direction"] == "inbound"
    # Customer b's extension stays b's business.
    assert event["caller_extension_id"] is None
    assert event["callee_extension_id"] == world["a100"]
    assert event["from_number"] != "b-100"


def test_the_crm_answer_rides_in_the_ringing_event_and_a_slow_crm_is_cut_off(
    api: Api, world: dict[str, Any]
) -> None:
    api.admin_a.put(f"/api/v1/customers/{api.a}/cti",
                    json={"crm_url_template": "https://crm.example/q?n={number}"})  # fmt: skip
    asked: list[str] = []

    def fetch(url: str) -> Any:
        asked.append(url)
        if "slow" in url:
            time.sleep(2)
        return {"name": "Erika", "company": "ACME", "link": "javascript:alert(1)"}

    crm = CrmLookup(fetch=fetch, timeout=0.3)
    trunk = {"source": "trunk", "caller": "+4930123", "callee_customer": str(api.a),
             "resolved": f"c{api.a}x100"}  # fmt: skip
    ingest(api, report("ringing", call_id="x", **trunk), crm=crm)
    ingest(api, report("ringing", call_id="y", **trunk), crm=crm)  # cached: one lookup
    assert asked == ["https://crm.example/q?n=%2B4930123"]
    first, second = events(api)
    assert first["crm"] == {"name": "Erika", "company": "ACME"}  # no script links
    assert second["crm"] == first["crm"]
    api.admin_a.put(f"/api/v1/customers/{api.a}/cti",
                    json={"crm_url_template": "https://crm.example/slow?n={number}"})  # fmt: skip
    started = time.monotonic()
    ingest(api, report("ringing", call_id="z", **trunk), crm=crm)
    assert time.monotonic() - started < 1.5
    assert events(api)[-1]["crm"] is None


# --- webhooks ----------------------------------------------------------------------------------
def test_signatures_verify_and_detect_tampering() -> None:
    body = b'{"kind":"ringing"}'
    header = signature("whsec_x", body, 1_700_000_000)
    assert verify("whsec_x", body, header, 1_700_000_010)
    assert not verify("whsec_x", body + b" ", header, 1_700_000_010)
    assert not verify("whsec_y", body, header, 1_700_000_010)
    assert not verify("whsec_x", body, header, 1_700_009_999)  # too old: a replay
    assert not verify("whsec_x", body, "garbage", 1_700_000_010)


def test_deliveries_are_retried_with_backoff_and_logged(api: Api, world: dict[str, Any]) -> None:
    r = api.admin_a.post(
        f"/api/v1/customers/{api.a}/webhooks", json={"url": "https://hooks.example/a"}
    )
    assert r.status_code == 201, r.text
    hook = r.json()
    answers = [500, 200]
    sent: list[tuple[str, bytes, dict[str, str]]] = []

    def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        sent.append((url, body, headers))
        return answers.pop(0)

    a = str(api.a)
    ingest(api, report("ringing", customer=a, callee_customer=a, resolved=f"c{a}x101"))
    sender = WebhookSender(api.db, post=post)
    assert sender.send_due() == 1
    log = api.admin_a.get(f"/api/v1/customers/{api.a}/webhooks/{hook['id']}/deliveries").json()
    (entry,) = log["items"]
    assert (entry["status"], entry["attempts"], entry["last_code"]) == ("pending", 1, 500)
    assert sender.send_due() == 0  # not due yet: retried after retry_after(1)
    with api.db.transaction() as conn:
        conn.exec_driver_sql("UPDATE webhook_deliveries SET next_attempt_at = created_at")
    assert sender.send_due() == 1
    (entry,) = api.admin_a.get(
        f"/api/v1/customers/{api.a}/webhooks/{hook['id']}/deliveries"
    ).json()["items"]
    assert (entry["status"], entry["attempts"], entry["last_code"]) == ("delivered", 2, 200)
    url, body, headers = sent[-1]
    assert url == "https://hooks.example/a"
    assert json.loads(body)["kind"] == "ringing"
    assert verify(hook["secret"], body, headers["X-PBX-Signature"], time.time())
    assert retry_after(1).total_seconds() == 5
    assert retry_after(30).total_seconds() == 3600


# --- URLs the platform calls -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://crm.example/x", "http"),
        ("https://user:pw@crm.example/x", "user name"),
        ("http://127.0.0.1:8000/", "platform"),
        ("http://169.254.169.254/latest/meta-data", "platform"),
        ("http://[::1]/", "platform"),
        ("http://10.1.2.3/", "platform"),
        ("http://[::ffff:10.1.2.3]/", "platform"),
    ],
)
def test_the_platform_never_calls_itself_for_a_customer(url: str, why: str) -> None:
    with pytest.raises(outbound.UrlRefused, match=why):
        outbound.check(url, outbound.networks(["10.0.0.0/8"]))


def test_a_public_address_may_be_called() -> None:
    outbound.check("https://203.0.113.7/hook", outbound.networks(["10.0.0.0/8"]))


# --- the API: gating and scope -----------------------------------------------------------------
def test_cti_features_follow_the_booked_option(api: Api, world: dict[str, Any]) -> None:
    b = api.admin_b
    r = b.get("/api/v1/call-events")
    assert r.status_code == 403
    assert error_code(r) == "cti_not_booked"
    r = b.post(f"/api/v1/customers/{api.b}/webhooks", json={"url": "https://h.example/"})
    assert r.status_code == 403
    assert error_code(r) == "cti_not_booked"
    api.operator.patch(f"/api/v1/customers/{api.b}", json={"cti": "standard"})
    assert b.get("/api/v1/call-events").status_code == 200
    r = b.post(f"/api/v1/customers/{api.b}/webhooks", json={"url": "https://h.example/"})
    assert r.status_code == 403
    assert error_code(r) == "cti_premium_required"
    r = b.put(
        f"/api/v1/customers/{api.b}/cti", json={"crm_url_template": "https://c.example/{number}"}
    )
    assert r.status_code == 403
    assert error_code(r) == "cti_premium_required"
    # Another customer's events, webhooks and settings are out of reach.
    assert b.get("/api/v1/call-events", params={"customer_id": api.a}).status_code == 403
    assert b.get(f"/api/v1/customers/{api.a}/webhooks").status_code == 403
    r = api.admin_a.put(
        f"/api/v1/customers/{api.a}/cti", json={"crm_url_template": "https://c.example/x"}
    )
    assert r.status_code == 422
    assert error_code(r) == "url_refused"  # no {number}


def test_each_customer_reads_only_its_own_events(api: Api, world: dict[str, Any]) -> None:
    api.operator.patch(f"/api/v1/customers/{api.b}", json={"cti": "standard"})
    a, b = str(api.a), str(api.b)
    ingest(api, report("ringing", customer=a, callee_customer=a, resolved=f"c{a}x101"))
    ingest(api, report("ringing", call_id="c2", caller="b-100", customer=b, callee_customer=b,
                       resolved=f"c{b}x100", dialled="100"))  # fmt: skip
    mine = api.admin_a.get("/api/v1/call-events").json()
    theirs = api.admin_b.get("/api/v1/call-events").json()
    assert {e["customer_id"] for e in mine["items"]} == {api.a}
    assert {e["customer_id"] for e in theirs["items"]} == {api.b}
    # Resume: nothing after the last seq seen.
    assert (
        api.admin_a.get("/api/v1/call-events", params={"after": mine["last_seq"]}).json()["items"]
        == []
    )


def test_the_websocket_sends_the_backlog_then_live_events_in_order(
    api: Api, world: dict[str, Any]
) -> None:
    a = str(api.a)
    ingest(api, report("ringing", customer=a, callee_customer=a, resolved=f"c{a}x101"))
    settings = make_settings(api.db)
    app = create_app(settings, api.db, SmtpMailer("127.0.0.1", 1, "x@y.z"))
    headers = {"Authorization": f"Bearer {api.token_a}"}
    with (
        TestClient(app) as client,
        client.websocket_connect("/api/v1/call-events/ws?after=0", headers=headers) as ws,
    ):
        assert ws.receive_json()["type"] == "hello"
        first = ws.receive_json()
        assert (first["type"], first["kind"]) == ("event", "ringing")
        ws.send_json({"ack": first["seq"]})
        ingest(api, report("answered", customer=a, callee_customer=a, resolved=f"c{a}x101"))
        app.state.ctx.cti.hub.wake()
        second = ws.receive_json()
        assert (second["kind"], second["seq"] > first["seq"]) == ("answered", True)
    # Resuming after the first: only the second.
    with (
        TestClient(app) as client,
        client.websocket_connect(
            f"/api/v1/call-events/ws?after={first['seq']}", headers=headers
        ) as ws,
    ):
        ws.receive_json()
        assert ws.receive_json()["seq"] == second["seq"]


def test_a_websocket_without_cti_or_credentials_is_closed(api: Api, world: dict[str, Any]) -> None:
    app = create_app(make_settings(api.db), api.db, SmtpMailer("127.0.0.1", 1, "x@y.z"))
    from starlette.websockets import WebSocketDisconnect

    with TestClient(app) as client:
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            client.websocket_connect("/api/v1/call-events/ws") as ws,
        ):
            ws.receive_json()
        assert closed.value.code == 4401
        # A session cookie from another origin is not enough (cross-site WebSocket hijacking).
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            client.websocket_connect(
                "/api/v1/call-events/ws",
                headers={"Origin": "https://evil.example", "Cookie": "pbx_session=x"},
            ) as ws,
        ):
            ws.receive_json()
        assert closed.value.code == 4401


def test_a_websocket_opened_while_no_database_member_leads_is_told_to_retry(
    api: Api, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failover's seconds without a leader: close code 1013 (try again later), which the
    portal and desktop clients retry, never a 44xx refusal that makes them give up."""
    from starlette.websockets import WebSocketDisconnect

    app = create_app(make_settings(api.db), api.db, SmtpMailer("127.0.0.1", 1, "x@y.z"))
    headers = {"Authorization": f"Bearer {api.token_a}"}
    with TestClient(app) as client:

        def no_leader() -> None:
            raise errors.DatabaseUnavailable("no database member leads")

        monkeypatch.setattr(app.state.ctx.db, "snapshot", no_leader)
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            client.websocket_connect("/api/v1/call-events/ws", headers=headers) as ws,
        ):
            ws.receive_json()
        assert (closed.value.code, closed.value.reason) == (1013, "database_unavailable")


def test_proxy_reports_need_the_internal_token(api: Api) -> None:
    app = create_app(make_settings(api.db, internal_token="t0ken"), api.db,
                     SmtpMailer("127.0.0.1", 1, "x@y.z"))  # fmt: skip
    with TestClient(app) as client:
        r = client.post("/internal/v1/call-events", content=json.dumps([report("ringing")]))
        assert r.status_code == 401
        r = client.post("/internal/v1/call-events", headers=INTERNAL,
                        content=json.dumps([report("ringing"), {"kind": "nonsense"}]))  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["queued"] == 1
        assert r.json()["rejected"][0]["index"] == 1
        r = client.post("/internal/v1/call-events", headers=INTERNAL, content=b"{")
        assert r.status_code == 422


def test_click_to_dial_checks_before_it_rings(api: Api, world: dict[str, Any]) -> None:
    a = api.admin_a
    r = a.post("/api/v1/click-to-dial", json={"target": "030 1234", "extension_id": world["a100"]})
    assert r.status_code == 422
    assert error_code(r) == "target_invalid"
    r = a.post("/api/v1/click-to-dial", json={"target": "0301234"})
    assert r.status_code == 422
    assert error_code(r) == "extension_required"  # the admin manages no extension of its own
    bare = a.post(f"/api/v1/customers/{api.a}/extensions",
                  json={"location_id": api.loc_a, "number": "102"}).json()  # fmt: skip
    r = a.post("/api/v1/click-to-dial", json={"target": "0301234", "extension_id": bare["id"]})
    assert r.status_code == 409
    assert error_code(r) == "no_device"
    r = a.post("/api/v1/click-to-dial", json={"target": "0301234", "extension_id": world["a100"]})
    assert r.status_code == 503
    assert error_code(r) == "cti_unavailable"  # no SIP agent here
    r = api.admin_b.post("/api/v1/click-to-dial", json={"target": "0301234"})
    assert r.status_code == 403
    assert error_code(r) == "cti_not_booked"


# --- click-to-dial's user agent ----------------------------------------------------------------
class FakePhone(asyncio.DatagramProtocol):
    """Plays proxy and phone: answers the INVITE, takes the REFER, reports the new call."""

    def __init__(self, refer_answer: int = 202) -> None:
        self.seen: list[str] = []
        self.refer_answer = refer_answer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def reply(self, req: Any, code: int, reason: str, addr: Any, tag: str = "ph1") -> None:
        assert self.transport is not None
        headers = [("Via", v) for v in req.all("via")] + [
            ("From", req.get("from")),
            ("To", req.get("to") + ("" if ";tag=" in req.get("to") else f";tag={tag}")),
            ("Call-ID", req.get("call-id")),
            ("CSeq", req.get("cseq")),
            ("Contact", f"<sip:phone@127.0.0.1:{self.transport.get_extra_info('sockname')[1]}>"),
            ("Allow", "INVITE, ACK, BYE, REFER, NOTIFY"),
        ]
        self.transport.sendto(build(f"SIP/2.0 {code} {reason}", headers), addr)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        msg = parse_sip(data)
        if msg.is_response:
            return
        self.seen.append(msg.method)
        if msg.method == "INVITE":
            assert msg.get("x-pbx-internal-token") == "tok"
            self.reply(msg, 180, "Ringing", addr)
            self.reply(msg, 200, "OK", addr)
        elif msg.method == "REFER":
            assert msg.get("refer-to") == "<sip:0301234@pbx.test>"
            self.reply(
                msg, self.refer_answer, "Accepted" if self.refer_answer < 300 else "No", addr
            )
            if self.refer_answer < 300:
                notify = [
                    ("Via", "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKn1"),
                    ("From", msg.get("to")),
                    ("To", msg.get("from")),
                    ("Call-ID", msg.get("call-id")),
                    ("CSeq", "1 NOTIFY"),
                    ("Event", "refer"),
                    ("Content-Type", "message/sipfrag"),
                ]
                assert self.transport is not None
                self.transport.sendto(
                    build("NOTIFY sip:ctd@x SIP/2.0", notify, b"SIP/2.0 200 OK\r\n"), addr
                )
        elif msg.method == "BYE":
            self.reply(msg, 200, "OK", addr)


@pytest.mark.parametrize(("refer_answer", "expected"), [(202, "connected"), (405, "failed")])
def test_click_to_dial_rings_refers_and_hangs_up(refer_answer: int, expected: str) -> None:
    async def run() -> tuple[list[tuple[str, str]], list[str]]:
        loop = asyncio.get_running_loop()
        phone = FakePhone(refer_answer)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: phone, local_addr=("127.0.0.1", 0)
        )
        port = transport.get_extra_info("sockname")[1]
        agent = UserAgent("127.0.0.1", 0)
        await agent.start()
        assert agent.transport is not None
        agent.port = agent.transport.get_extra_info("sockname")[1]
        states: list[tuple[str, str]] = []

        async def report(status: str, cause: str) -> None:
            states.append((status, cause))

        await Dialer(agent, [("127.0.0.1", port)]).run(
            Request(1, "c1x100", "100", "0301234", "pbx.test", "tok"), report
        )
        await asyncio.sleep(0.1)
        agent.close()
        transport.close()
        return states, phone.seen

    states, seen = asyncio.run(run())
    assert states[0] == ("connecting", "")
    assert states[-1][0] == expected, states
    assert seen[:3] == ["INVITE", "ACK", "REFER"], seen
    assert seen[-1] == "BYE", seen
