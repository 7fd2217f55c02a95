"""`make phone-screenshot`: the browser phone in a call, in German, from the running lab.

    python -m labkit.phone_screenshot docs/portal/phone.png

The portal's other pictures come from a demo on loopback (`make portal-screenshots`,
labkit.portal_screenshots); a call needs the proxies and a relay, so this one needs the lab.
Logs in through the portal's form over HTTPS as the demo tenant's admin (Debian's Chromium
trusting the lab CA, as the browser tests do), links the admin to a demo extension for the
picture, calls a test device that answers and echoes, and photographs the page in the call.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, ViewportSize

from pbx_infra.node_config import portal_url
from pbx_infra.topology import ServiceKind

from .browser import chromium
from .control import clear_bindings
from .devices import Devices, aor_for, build_sipclient, device_creds, extension_of
from .lab import CA_FILE, PLATFORM, instances, lab_names, load_tenant
from .leases import lease
from .portal import login

PORTAL = portal_url(PLATFORM, instances(ServiceKind.PBX_APP, "fra")[0])
# The phone's picture: the admin phones from one demo extension to another that answers.
DEVICES = lease("phone screenshot (make phone-screenshot)", browser_extension=26, answering=27)
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
PROXY = str(instances(ServiceKind.SIP_PROXY, "fra")[0].address)  # the answering device's


def log_in(page: Page, email: str, password: str) -> None:
    page.goto(f"{PORTAL}/")
    page.get_by_label("E-Mail-Adresse").fill(email)
    page.get_by_label("Passwort").fill(password)
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Abmelden").wait_for()


@contextmanager
def admin_phoning(api: httpx.Client, tenant: dict[str, Any]) -> Iterator[str]:
    """The admin linked to the phone's extension for the picture (their links restored after);
    a test device answering the number it dials, which is yielded."""
    me = api.get("/me").json()
    cid = tenant["customer_id"]
    number = extension_of(tenant, DEVICES["browser_extension"])
    ext = next(
        x["id"]
        for offset in range(0, 100_000, 100)
        for x in api.get(f"/customers/{cid}/extensions", params={"offset": offset}).json()["items"]
        if x["number"] == number
    )
    links = f"/customers/{cid}/users/{me['user']['id']}/extensions"
    before = api.get(links).json()["extension_ids"]
    assert api.put(links, json={"extension_ids": [ext]}).status_code == 200
    user, password = device_creds(tenant, DEVICES["answering"])
    clear_bindings(aor_for(user), aor_for(device_creds(tenant, DEVICES["browser_extension"])[0]))
    pool = Devices(build_sipclient(), prefix="pbx-screenshots")
    try:
        device = pool.start("answering", "fra")
        status = device.register(user, password, PROXY, port=5072)
        assert status.startswith("200"), f"the answering device did not register: {status}"
        device.answer(port=5072)
        yield extension_of(tenant, DEVICES["answering"])
    finally:
        pool.remove_all()
        api.put(links, json={"extension_ids": before})


def phone_in_a_call(page: Page, dial: str, out: Path) -> None:
    page.goto(f"{PORTAL}/#/phone")
    page.wait_for_selector(".phone[data-registration='registered']", timeout=20_000)
    page.get_by_label("Nummer oder Nebenstelle").fill(dial)
    page.get_by_role("button", name="Anrufen").click()
    page.wait_for_selector(".phone[data-call='connected']", timeout=20_000)
    # No focus ring or caret in the picture.
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.screenshot(path=str(out), full_page=True)
    page.get_by_role("button", name="Auflegen").click()
    page.wait_for_selector(".phone[data-call='ended']", timeout=10_000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labkit.phone_screenshot", description=__doc__)
    parser.add_argument("out", type=Path, help="the PNG to write")
    out: Path = parser.parse_args(argv).out
    out.parent.mkdir(parents=True, exist_ok=True)
    tenant = load_tenant()
    with (
        chromium(CA_FILE, hosts=lab_names()) as browser,
        login(tenant["admin_email"], tenant["admin_password"]) as api,
        admin_phoning(api, tenant) as dial,
    ):
        context = browser.new_context(
            locale="de-DE", viewport=VIEWPORT, device_scale_factor=1, permissions=["microphone"]
        )
        context.set_default_timeout(15_000)
        try:
            page = context.new_page()
            log_in(page, tenant["admin_email"], tenant["admin_password"])
            phone_in_a_call(page, dial, out)
        except PlaywrightError as exc:
            print(f"no picture of the phone in a call: {exc}", file=sys.stderr)
            return 1
        finally:
            context.close()
    print(f"{out} written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
