"""eFax in the app (issue 20): fax numbers only of the customer's own free numbers, faxes queued
through the API and by mail from allowed senders, the gateways' job queue (leases, retries with
backoff, takeover after a gateway died, the status mail), faxes received kept and mailed with
their PDF, and customers kept apart."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pbx_app import errors
from pbx_app.app import create_app
from pbx_app.db import utcnow
from pbx_app.mail import SmtpMailer
from pbx_app.schema import faxes, mail_outbox
from pbx_app.services import faxes as service
from tests.app.conftest import Api, error_code, make_settings

INTERNAL = {"X-PBX-Internal-Token": "t0ken"}
PDF = b"%PDF-1.4\n%fake but typed\n"
TIFF = b"II*\x00" + b"\x00" * 64
HEAD = "+4969123450"  # a's block of 100: +4969123450xx


@pytest.fixture
def fax(api: Api) -> dict[str, Any]:
    """Customer a with eFax, a head number block and fax number +496912345099."""
    r = api.operator.patch(f"/api/v1/customers/{api.a}", json={"efax": True})
    assert r.status_code == 200, r.text
    r = api.admin_a.post(
        f"/api/v1/customers/{api.a}/head-numbers",
        json={"location_id": api.loc_a, "number": HEAD, "block_size": 100},
    )
    assert r.status_code == 201, r.text
    r = api.admin_a.post(
        f"/api/v1/customers/{api.a}/fax-numbers",
        json={
            "number": "06912345099",
            "email_to": ["Office@A.test", "boss@a.test"],
            "allowed_senders": ["scanner@a.test"],
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.fixture
def gateway(api: Api) -> TestClient:
    app = create_app(
        make_settings(api.db, internal_token="t0ken", fax_retry_seconds=60),
        api.db,
        SmtpMailer("127.0.0.1", 1, "x@y.z"),
    )
    return TestClient(app, raise_server_exceptions=False, headers=INTERNAL)


def send(api: Api, content: bytes = PDF, **form: str) -> Any:
    data = {"to": "030 1234567", "from": "+496912345099", **form}
    return api.admin_a.post(
        f"/api/v1/customers/{api.a}/faxes", data=data, files={"file": ("brief.pdf", content)}
    )


def test_fax_numbers_are_the_customers_own_free_numbers(api: Api, fax: dict[str, Any]) -> None:
    assert fax["number"] == "+496912345099"
    assert fax["email_to"] == ["office@a.test", "boss@a.test"]
    url = f"/api/v1/customers/{api.a}/fax-numbers"
    # Not in a's blocks; a number an extension answers; the same number twice.
    r = api.admin_a.post(url, json={"number": "+4930999999"})
    assert (r.status_code, error_code(r)) == (422, "number_not_owned")
    ext = api.admin_a.post(
        f"/api/v1/customers/{api.a}/extensions", json={"location_id": api.loc_a, "number": "10"}
    )
    assert ext.status_code == 201, ext.text
    r = api.admin_a.post(url, json={"number": "+496912345010"})
    assert (r.status_code, error_code(r)) == (409, "number_in_use")
    r = api.admin_a.post(url, json={"number": "+496912345099"})
    assert (r.status_code, error_code(r)) == (409, "number_in_use")
    r = api.admin_a.post(url, json={"number": "+496912345098", "email_to": ["not an address"]})
    assert (r.status_code, error_code(r)) == (422, "invalid_email")
    # Another customer sees none of it, and without eFax gets none.
    r = api.admin_b.get(url)
    assert (r.status_code, error_code(r)) == (403, "customer_scope_violation")
    r = api.admin_b.post(f"/api/v1/customers/{api.b}/fax-numbers", json={"number": "+4969555"})
    assert (r.status_code, error_code(r)) == (403, "efax_not_booked")


def test_documents_are_checked_before_anything_is_queued(api: Api, fax: dict[str, Any]) -> None:
    r = send(api, b"hello, not a document")
    assert (r.status_code, error_code(r)) == (415, "document_type_unsupported")
    r = send(api, PDF + b"x" * service.MAX_DOCUMENT_BYTES)
    assert r.status_code == 413, r.text
    r = send(api, to="not a number")
    assert (r.status_code, error_code(r)) == (422, "invalid_number_format")
    r = send(api, **{"from": "+496912345098"})
    assert (r.status_code, error_code(r)) == (404, "not_found")
    with api.db.snapshot() as conn:
        assert conn.execute(select(faxes.c.id)).all() == []
    r = send(api, TIFF)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued"
    assert r.json()["remote_number"] == "+49301234567"


def test_a_job_is_leased_retried_taken_over_and_sent(
    api: Api, fax: dict[str, Any], gateway: TestClient
) -> None:
    queued = send(api, notify="me@a.test").json()
    fid = queued["id"]
    lease = gateway.post("/internal/v1/fax/jobs/lease", json={"gateway": "efax-fra-1"})
    assert lease.status_code == 200, lease.text
    assert lease.json()["id"] == fid
    assert lease.json()["our_number"] == "+496912345099"
    # One gateway per job: nothing else is due.
    assert gateway.post("/internal/v1/fax/jobs/lease", json={"gateway": "x"}).status_code == 204
    doc = gateway.post(f"/internal/v1/fax/jobs/{fid}/document", json={"gateway": "efax-fra-1"})
    assert doc.content == PDF
    r = gateway.post(f"/internal/v1/fax/jobs/{fid}/document", json={"gateway": "other"})
    assert (r.status_code, error_code(r)) == (409, "lease_lost")
    # Busy: back in the queue, due after the retry delay.
    r = gateway.post(
        f"/internal/v1/fax/jobs/{fid}/result",
        json={"gateway": "efax-fra-1", "status": "busy", "sip_code": 486},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["cause"], r.json()["attempts"]) == ("queued", "busy", 1)
    assert gateway.post("/internal/v1/fax/jobs/lease", json={"gateway": "x"}).status_code == 204
    # Time passes: the second try's gateway dies with the job (its lease runs out) ...
    later = utcnow() + timedelta(seconds=61)
    with api.db.transaction() as conn:
        assert service.lease(conn, "efax-fra-1", later) is not None
        assert service.lease(conn, "efax-ber-1", later) is None
        taken = service.lease(conn, "efax-ber-1", later + service.LEASE + timedelta(seconds=1))
    # ... and the other site's gateway takes it over: the third attempt.
    assert taken is not None
    assert (taken["id"], taken["attempts"], taken["lease_owner"]) == (fid, 3, "efax-ber-1")
    r = gateway.post(
        f"/internal/v1/fax/jobs/{fid}/result",
        json={"gateway": "efax-fra-1", "status": "ok", "pages": 3},
    )
    assert (r.status_code, error_code(r)) == (409, "lease_lost")
    r = gateway.post(
        f"/internal/v1/fax/jobs/{fid}/result",
        json={"gateway": "efax-ber-1", "status": "ok", "pages": 3, "seconds": 80,
              "bit_rate": 14400, "transport": "t38", "remote_ident": "+49 30 1234567"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    done = api.admin_a.get(f"/api/v1/customers/{api.a}/faxes/{fid}").json()
    assert (done["status"], done["pages"], done["transport"]) == ("sent", 3, "t38")
    with api.db.snapshot() as conn:
        mails = conn.execute(select(mail_outbox.c.recipient, mail_outbox.c.subject)).all()
    assert [m.recipient for m in mails] == ["me@a.test"]
    assert "gesendet (3 Seiten)" in mails[0].subject


def test_retries_are_bounded_and_permanent_causes_end_at_once(
    api: Api, fax: dict[str, Any], gateway: TestClient
) -> None:
    now = utcnow()
    fid = send(api).json()["id"]
    for attempt in range(1, service.MAX_ATTEMPTS + 1):
        with api.db.transaction() as conn:
            job = service.lease(conn, "gw", now + timedelta(days=attempt))
            assert job is not None
            row = service.finish(
                conn, fid, "gw", service.Outcome("no_answer", sip_code=480),
                now + timedelta(days=attempt), 60,
            )  # fmt: skip
        expected = "failed" if attempt == service.MAX_ATTEMPTS else "queued"
        assert (row["status"], row["attempts"]) == (expected, attempt)
    assert service.retry_delay(1, 60) == timedelta(seconds=60)
    assert service.retry_delay(2, 60) == timedelta(seconds=300)
    second = send(api).json()["id"]
    with api.db.transaction() as conn:
        assert service.lease(conn, "gw", now + timedelta(days=9)) is not None
        row = service.finish(
            conn, second, "gw", service.Outcome("failed", "404 Not Found", sip_code=404),
            now + timedelta(days=9), 60,
        )  # fmt: skip
    assert (row["status"], row["attempts"], row["cause"]) == ("failed", 1, "404 Not Found")


def test_a_received_fax_is_kept_and_mailed_with_its_pdf(
    api: Api, fax: dict[str, Any], gateway: TestClient
) -> None:
    report = {
        "number": "+496912345099",
        "caller": "+4930555",
        "outcome": {"status": "ok", "pages": 2, "seconds": 50, "transport": "audio"},
    }
    r = gateway.post(
        "/internal/v1/fax/received",
        data={"report": json.dumps(report)},
        files={"file": ("fax.pdf", PDF)},
    )
    assert r.status_code == 200, r.text
    fid = r.json()["id"]
    listed = api.admin_a.get(f"/api/v1/customers/{api.a}/faxes", params={"direction": "in"})
    assert [f["id"] for f in listed.json()["items"]] == [fid]
    assert listed.json()["items"][0]["pages"] == 2
    doc = api.admin_a.get(f"/api/v1/customers/{api.a}/faxes/{fid}/document")
    assert (doc.status_code, doc.headers["content-type"], doc.content) == (
        200, "application/pdf", PDF,
    )  # fmt: skip
    with api.db.snapshot() as conn:
        mails = conn.execute(select(mail_outbox.c.recipient, mail_outbox.c.fax_id)).all()
    assert sorted(mails) == [("boss@a.test", fid), ("office@a.test", fid)]
    # Customer b sees nothing of it.
    r = api.admin_b.get(f"/api/v1/customers/{api.a}/faxes/{fid}/document")
    assert r.status_code == 403
    # A number that is no fax number: refused, nothing kept.
    report["number"] = "+496912345098"
    r = gateway.post("/internal/v1/fax/received", data={"report": json.dumps(report)})
    assert (r.status_code, error_code(r)) == (404, "not_found")


def test_mail_to_fax_only_from_allowed_senders(
    api: Api, fax: dict[str, Any], gateway: TestClient
) -> None:
    files = {"file": ("scan.pdf", PDF)}
    r = gateway.post(
        "/internal/v1/fax/mail", data={"sender": "Scanner@A.test", "to": "0301234"}, files=files
    )
    assert r.status_code == 202, r.text
    assert (r.json()["source"], r.json()["our_number"]) == ("mail", "+496912345099")
    r = gateway.post(
        "/internal/v1/fax/mail", data={"sender": "evil@b.test", "to": "0301234"}, files=files
    )
    assert (r.status_code, error_code(r)) == (403, "sender_not_allowed")
    r = gateway.post("/internal/v1/fax/jobs/lease", json={"gateway": "gw"}, headers={})
    assert r.status_code == 200
    r = TestClient(gateway.app).post("/internal/v1/fax/jobs/lease", json={"gateway": "gw"})
    assert r.status_code == 401


def test_routing_sends_fax_numbers_to_the_gateways_and_their_calls_out(
    api: Api, fax: dict[str, Any], gateway: TestClient
) -> None:
    def route(caller: str, target: str) -> dict[str, Any]:
        r = gateway.get("/internal/v1/route", params={"caller": caller, "target": target})
        assert r.status_code == 200, r.text
        return dict(r.json())

    inbound = route("carrier", "06912345099")
    assert inbound["action"] == "local"
    assert [(s["gateway"], s["fax_number"]) for s in inbound["steps"]] == [
        (0, "+496912345099"), (1, "+496912345099"),
    ]  # fmt: skip
    assert inbound["steps"][0]["noanswer"] == 1  # the other site's gateway next
    # The gateway's own call: out with the fax number as caller ID.
    out = route("fax:+496912345099", "0301234567")
    assert (out["action"], out["number"], out["caller_id"]) == (
        "external", "+49301234567", "+496912345099",
    )  # fmt: skip
    # To a fax number of the platform: straight to the gateways again.
    assert "steps" in route("fax:+496912345099", "+496912345099")
    # The relay may turn the caller's G.711 into T.38 for the gateway: the steps say so.
    assert "relay_t38" not in inbound["steps"][0]
    r = api.admin_a.patch(
        f"/api/v1/customers/{api.a}/fax-numbers/{fax['id']}", json={"relay_t38": True}
    )
    assert (r.status_code, r.json()["relay_t38"]) == (200, True)
    assert [s["relay_t38"] for s in route("carrier", "06912345099")["steps"]] == [1, 1]
    # Not a fax number, or its customer gave up eFax: no call.
    assert route("fax:+496912345098", "0301234567")["code"] == 403
    api.operator.patch(f"/api/v1/customers/{api.a}", json={"efax": False})
    assert route("carrier", "06912345099")["code"] == 404


@pytest.mark.parametrize("content", [PDF, TIFF, b"MM\x00*" + b"\x00" * 8, b"GIF89a", b"%PD", b""])
def test_the_app_and_the_gateway_agree_on_what_can_be_faxed(content: bytes) -> None:
    """The app refuses an upload the gateway could not render, and the gateway's code for a
    document it cannot render ends the job at once (no retries of a hopeless document)."""
    from pbx_efax import documents
    from pbx_efax import service as gateway

    def app_says() -> str:
        try:
            return service.document_type(content)
        except errors.DocumentTypeUnsupported:
            return "refused"

    def gateway_says() -> str:
        try:
            return documents.kind_of(content)
        except documents.DocumentError:
            return "refused"

    assert app_says() == gateway_says()
    assert gateway.UNRENDERABLE in service.PERMANENT_SIP_CODES
