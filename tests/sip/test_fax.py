"""eFax (issue 20) against the lab, with real faxes: the remote fax machine behind the simulated
carrier (carrier/faxpeer.py) and the platform's gateways exchange a three-page letter both ways
over G.711 and over T.38, at the same time; the pages that arrive are compared with the pages
sent as images; received faxes come by mail with their PDF; busy lines, calls nobody answers and
a machine that hangs up in mid-page end in a clear status after a bounded number of tries; and a
job whose gateway's site is lost is sent by the other site's gateway."""

from __future__ import annotations

import hashlib
import json
import smtplib
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from labkit.docker import docker, wait_healthy
from labkit.fax import SIMILARITY_THRESHOLD, letter, pdf_pages, similarity
from labkit.lab import PLATFORM, container, instances
from labkit.wait import wait_for
from pbx_efax.documents import fax_pages
from pbx_infra.topology import ServiceKind
from tests.sip.site_drills import healthy_pair, kill_site, login, site_containers, start_site

pytestmark = pytest.mark.lab

FAX_NUMBER = "+49699876990"  # free in the demo customer's block +49 69 9876 xxx
RELAY_NUMBER = "+49699876991"  # the relay turns its callers' G.711 into T.38 for the gateway
PEER = {  # the remote fax machine's numbers (carrier/faxpeer.py)
    "g711": "+49407770001",  # refuses T.38
    "t38": "+49407770002",  # moves the call to T.38 itself
    "busy": "+49407770486",
    "no_answer": "+49407770480",
    "hangs_up": "+49407770499",
}
CARRIER = {s.name: container(instances(ServiceKind.CARRIER, s.name)[0]) for s in PLATFORM.sites}
SINKS = [container(i) for i in instances(ServiceKind.SMTP)]
RECEIVED = "/var/lib/faxpeer/received"
PAGES = 3
FAX_S = 240  # a three-page fax takes about 80 s of line time; several run at once
MAILBOX = f"fax-{time.time_ns()}@demo.pbx.test"  # where this run's received faxes are mailed


@pytest.fixture(scope="module")
def admin(tenant: dict[str, Any]) -> Iterator[httpx.Client]:
    """The demo customer's admin, with eFax booked and a fax number mailed to a fresh address."""
    client = login("fra")
    cid = tenant["customer_id"]
    before = client.get(f"/customers/{cid}").json()["efax"]
    assert client.patch(f"/customers/{cid}", json={"efax": True}).status_code == 200
    for number in client.get(f"/customers/{cid}/fax-numbers").json()["items"]:
        client.delete(f"/customers/{cid}/fax-numbers/{number['id']}")
    created = [
        client.post(f"/customers/{cid}/fax-numbers", json=body)
        for body in (
            {"number": FAX_NUMBER, "email_to": [MAILBOX]},
            {"number": RELAY_NUMBER, "relay_t38": True},
        )
    ]
    assert [r.status_code for r in created] == [201, 201], [r.text for r in created]
    yield client
    for r in created:
        client.delete(f"/customers/{cid}/fax-numbers/{r.json()['id']}")
    client.patch(f"/customers/{cid}", json={"efax": before})
    client.close()


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path]:
    """The letter (PDF) and its pages as the fax engine sends them (TIFF), to compare with."""
    pdf = letter(PAGES, title="Testfax Plattform")
    pages = tmp_path_factory.mktemp("fax") / "sent.tif"
    assert fax_pages(pdf, pages) == PAGES
    return pdf, pages


def peer_sends(site: str, to: str, pdf: bytes, t38: str) -> dict[str, Any]:
    """The remote fax machine faxes `pdf` to `to` through the carrier of `site`."""
    name = f"/tmp/doc-{time.time_ns()}.pdf"
    subprocess.run(["docker", "exec", "-i", CARRIER[site], "sh", "-c", f"cat > {name}"],
                   input=pdf, check=True, timeout=30)  # fmt: skip
    done = docker(
        "exec", CARRIER[site], "python3", "/opt/pbx/faxpeer.py", "send", "--to", to,
        "--file", name, "--t38", t38, timeout=FAX_S,
    )  # fmt: skip
    assert done.stdout.strip(), done.stderr[-2000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def peer_reports() -> set[tuple[str, str]]:
    """Every report the remote fax machines hold: (site, path)."""
    return {
        (site, path)
        for site, name in CARRIER.items()
        for path in docker(
            "exec", name, "sh", "-c", f"ls {RECEIVED}/*.json 2>/dev/null"
        ).stdout.split()
    }


def peer_received(
    caller: str, tmp: Path, before: set[tuple[str, str]]
) -> list[tuple[dict[str, Any], Path]]:
    """What the remote fax machines received from `caller` since `before`: report and pages."""
    out = []
    for site, path in sorted(peer_reports() - before):
        report = json.loads(docker("exec", CARRIER[site], "cat", path).stdout)
        if report["caller"] != caller:
            continue
        tiff = tmp / (Path(path).stem + ".tif")
        docker("cp", f"{CARRIER[site]}:{path.removesuffix('.json')}.tif", str(tiff))
        out.append((report, tiff))
    return out


def submit(admin: httpx.Client, cid: int, to: str, pdf: bytes, notify: str = "") -> dict[str, Any]:
    r = admin.post(
        f"/customers/{cid}/faxes",
        data={"to": to, "from": FAX_NUMBER, "notify": notify},
        files={"file": ("brief.pdf", pdf, "application/pdf")},
    )
    assert r.status_code == 202, r.text
    return dict(r.json())


def final(admin: httpx.Client, cid: int, fax_id: int, timeout: float) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        fax = admin.get(f"/customers/{cid}/faxes/{fax_id}").json()
        return fax if fax["status"] in ("sent", "failed") else None

    return wait_for(done, timeout, 2, f"fax {fax_id} to end")


def mails_to(address: str) -> list[dict[str, Any]]:
    found = []
    for sink in SINKS:
        for mail in json.loads(docker("exec", sink, "sink-messages", check=True).stdout):
            if address in " ".join(mail["envelope_to"]):
                found.append(mail)
    return found


def test_letters_go_both_ways_over_g711_and_t38_at_once(
    admin: httpx.Client, tenant: dict[str, Any], document: tuple[bytes, Path], tmp_path: Path
) -> None:
    pdf, sent_pages = document
    cid = tenant["customer_id"]
    notify = f"status-{time.time_ns()}@demo.pbx.test"
    started = time.time()
    before = peer_reports()
    # Two faxes in from the PSTN (the machine declines T.38; the machine takes T.38 when our
    # gateway offers it), two out (to a G.711-only machine; to one that moves to T.38).
    outgoing = {mode: submit(admin, cid, PEER[mode], pdf, notify) for mode in ("g711", "t38")}
    # And one to a number whose calls the relay turns from G.711 into T.38 (rtpengine).
    with ThreadPoolExecutor(3) as pool:
        incoming = list(
            pool.map(
                lambda call: peer_sends("fra", call[0], pdf, call[1]),
                [(FAX_NUMBER, "off"), (FAX_NUMBER, "accept"), (RELAY_NUMBER, "off")],
            )
        )
    for outcome in incoming:
        assert outcome["status"] == "ok", outcome
        assert outcome["pages"] == PAGES, outcome
    # The far end spoke G.711 to the number the relay converts for.
    assert [o["mode"] for o in incoming] == ["audio", "t38", "audio"]

    # In: kept with sender, pages and transport; the PDF is the letter; it came by mail.
    received = [
        f for f in admin.get(f"/customers/{cid}/faxes", params={"direction": "in"}).json()["items"]
        if f["created_at"] >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started - 1))
    ]  # fmt: skip
    assert len(received) == 3, received
    # Our gateway took the relay's T.38 for the converted call.
    assert sorted((f["our_number"], f["transport"]) for f in received) == [
        (FAX_NUMBER, "audio"), (FAX_NUMBER, "t38"), (RELAY_NUMBER, "t38"),
    ]  # fmt: skip
    for fax in received:
        assert (fax["status"], fax["pages"], fax["remote_number"]) == (
            "received", PAGES, PEER["g711"],
        )  # fmt: skip
        content = admin.get(f"/customers/{cid}/faxes/{fax['id']}/document").content
        scores = similarity(sent_pages, pdf_pages(content, tmp_path / f"in-{fax['id']}.tif"))
        assert min(scores) >= SIMILARITY_THRESHOLD, (fax, scores)
        digest = hashlib.sha256(content).hexdigest()
        if fax["our_number"] == RELAY_NUMBER:
            continue  # mailed to nobody: the number has no addresses
        mail = wait_for(
            lambda d=digest: next(
                (m for m in mails_to(MAILBOX) if any(a["sha256"] == d for a in m["attachments"])),
                None,
            ),
            30, 1, "the fax's mail with its PDF",
        )  # fmt: skip
        assert f"{PAGES} Seiten" in mail["subject"], mail

    # Out: sent with its pages over the transport the far end chose; the pages arrived.
    for mode, job in outgoing.items():
        fax = final(admin, cid, job["id"], FAX_S)
        assert (fax["status"], fax["pages"]) == ("sent", PAGES), fax
        assert fax["transport"] == ("t38" if mode == "t38" else "audio"), fax
    arrived = peer_received(FAX_NUMBER, tmp_path, before)
    assert sorted((r["status"], r["pages"], r["mode"]) for r, _ in arrived) == [
        ("ok", PAGES, "audio"), ("ok", PAGES, "t38"),
    ], arrived  # fmt: skip
    for report, tiff in arrived:
        assert min(similarity(sent_pages, tiff)) >= SIMILARITY_THRESHOLD, report
    statuses = wait_for(
        lambda: len(mails_to(notify)) >= 2 and mails_to(notify), 30, 1, "status mails"
    )
    assert all("gesendet (3 Seiten)" in m["subject"] for m in statuses), statuses


def test_busy_no_answer_and_a_hang_up_mid_page_end_clearly_after_bounded_tries(
    admin: httpx.Client, tenant: dict[str, Any], document: tuple[bytes, Path]
) -> None:
    pdf, _ = document
    cid = tenant["customer_id"]
    notify = f"failures-{time.time_ns()}@demo.pbx.test"
    jobs = {k: submit(admin, cid, PEER[k], pdf, notify) for k in ("busy", "no_answer", "hangs_up")}
    ended = {k: final(admin, cid, job["id"], 3 * FAX_S) for k, job in jobs.items()}
    for fax in ended.values():
        assert fax["status"] == "failed", fax
        assert fax["attempts"] == 3, fax  # the first try and two retries, no more
    assert ended["busy"]["cause"] == "busy"
    assert ended["no_answer"]["cause"] == "no answer"
    assert ended["hangs_up"]["pages"] < PAGES, ended["hangs_up"]
    assert "dropped" in ended["hangs_up"]["cause"].lower(), ended["hangs_up"]
    # Nothing lost: the document is still there, and the sender was told.
    for job in jobs.values():
        assert admin.get(f"/customers/{cid}/faxes/{job['id']}/document").content == pdf
    mails = wait_for(lambda: len(mails_to(notify)) >= 3 and mails_to(notify), 30, 1, "mails")
    assert all("nicht gesendet" in m["subject"] for m in mails), mails


def _holder(fax_id: int) -> str | None:
    """The site whose gateway is sending fax `fax_id` (from the gateways' own log)."""
    for gateway in instances(ServiceKind.EFAX):
        log = docker("logs", container(gateway)).stderr
        if f"fax {fax_id}: " in log:
            return gateway.site
    return None


@pytest.mark.disruptive
def test_a_job_whose_site_is_lost_is_sent_from_the_other_site(
    admin: httpx.Client, tenant: dict[str, Any]
) -> None:
    cid = tenant["customer_id"]
    pdf = letter(2, title="Standortausfall")
    job = submit(admin, cid, PEER["g711"], pdf)
    site = wait_for(lambda: _holder(job["id"]), 30, 1, "a gateway to take the job")
    other = next(s.name for s in PLATFORM.sites if s.name != site)
    time.sleep(10)  # the call is up, the first page under way
    kill_site(site)
    try:
        survivor = login(other)
        fax = final(survivor, cid, job["id"], 420)
        assert (fax["status"], fax["pages"]) == ("sent", 2), fax
        assert fax["attempts"] == 2, fax  # the lost call, then the other site's
        survivor.close()
    finally:
        start_site(site)
        wait_healthy(site_containers(site), timeout=180)
        wait_for(healthy_pair, 120, 1, "a leader and a synchronous standby")


def test_a_mail_from_an_allowed_sender_is_faxed_and_others_are_refused(
    admin: httpx.Client, tenant: dict[str, Any], tmp_path: Path
) -> None:
    """Mail to fax, as the operator's MX hands it to a gateway: the allowed sender's PDF
    attachment goes out to the number in the address; anyone else gets a 550."""
    cid = tenant["customer_id"]
    number = admin.get(f"/customers/{cid}/fax-numbers").json()["items"]
    mine = next(n for n in number if n["number"] == FAX_NUMBER)
    sender = f"scanner-{time.time_ns()}@demo.pbx.test"
    r = admin.patch(
        f"/customers/{cid}/fax-numbers/{mine['id']}", json={"allowed_senders": [sender]}
    )
    assert r.status_code == 200, r.text
    gateway = instances(ServiceKind.EFAX, "fra")[0]
    pdf = letter(1, title="Fax per E-Mail")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "fax", "Scan"
    message.set_content("Bitte faxen.")
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="scan.pdf")
    address = f"{PEER['g711']}@fax.{PLATFORM.sip_domain}"
    with smtplib.SMTP(str(gateway.reach), PLATFORM.ports.efax_mail, timeout=20) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.send_message(message, "intruder@example.net", [address])
        assert refused.value.smtp_code == 550
        assert b"sender_not_allowed" in refused.value.smtp_error
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.send_message(message, sender, [f"not-a-number@fax.{PLATFORM.sip_domain}"])
        smtp.send_message(message, sender, [address])
    queued = admin.get(f"/customers/{cid}/faxes", params={"direction": "out"}).json()["items"][0]
    assert (queued["source"], queued["remote_number"]) == ("mail", PEER["g711"]), queued
    fax = final(admin, cid, queued["id"], FAX_S)
    assert (fax["status"], fax["pages"]) == ("sent", 1), fax
    # The sender hears how it went.
    mails = wait_for(lambda: mails_to(sender), 30, 1, "the status mail to the sender")
    assert "gesendet (1 Seite)" in mails[-1]["subject"], mails
