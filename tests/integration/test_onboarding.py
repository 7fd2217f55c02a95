"""R6 end to end in the lab: an admin creates a user, the e-mail reaches the lab's SMTP sink,
and its link sets the initial password exactly once, on any app node of either site."""

from __future__ import annotations

import json
import re
import time
import uuid

import httpx
import pytest

from labkit.lab import app_base, load_tenant
from labkit.portal import keep_session
from pbx_infra.node_config import portal_url
from pbx_infra.topology import ServiceKind

from .conftest import exec_in

pytestmark = pytest.mark.lab


def _mail_to(engine, platform, address: str, timeout: float = 20) -> dict:
    # Each site's app nodes mail through their own site's sink: look in every one.
    sinks = [i.container_name(platform) for i in platform.instances(ServiceKind.SMTP)]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for sink in sinks:
            code, out = exec_in(engine, sink, "sink-messages")
            assert code == 0, out
            found = [m for m in json.loads(out) if address in " ".join(m["envelope_to"])]
            if found:
                return found[-1]
        time.sleep(0.5)
    pytest.fail(f"no mail to {address} reached an SMTP sink within {timeout}s")


def test_admin_creates_user_mail_arrives_link_sets_password_once(engine, platform) -> None:
    demo = load_tenant()
    email = f"new-{uuid.uuid4().hex[:8]}@demo.pbx.test"
    with httpx.Client(base_url=app_base("fra"), timeout=10) as admin:
        r = admin.post(
            "/auth/login", json={"email": demo["admin_email"], "password": demo["admin_password"]}
        )
        assert r.status_code == 200, r.text
        keep_session(admin, r)
        r = admin.post(f"/customers/{demo['customer_id']}/users", json={"email": email})
        assert r.status_code == 201, r.text

    mail = _mail_to(engine, platform, email)
    link = re.search(r"https?://\S+/set-password\?token=(\S+)", mail["body"])
    assert link, f"no set-password link in the mail: {mail['body']!r}"
    token = link.group(1)
    # The link people get opens the portal over HTTPS (PBX_PUBLIC_URL), never the internal port.
    first_app = platform.instances(ServiceKind.PBX_APP, "fra")[0]
    assert link.group(0).startswith(f"{portal_url(platform, first_app)}/set-password?"), link[0]

    # The link works on an app node of the other site too (one database), and only once.
    with httpx.Client(base_url=app_base("ber"), timeout=10) as anyone:
        password = f"Pw-{uuid.uuid4().hex}"
        r = anyone.post("/auth/set-password", json={"token": token, "password": password})
        assert r.status_code == 200, r.text
        again = anyone.post("/auth/set-password", json={"token": token, "password": password + "x"})
        assert again.status_code == 410, again.text
        assert again.json()["error"]["code"] == "password_link_invalid"
        login = anyone.post("/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        wrong = anyone.post("/auth/login", json={"email": email, "password": password + "x"})
        assert wrong.status_code == 401, wrong.text
