"""`make screenshots`: the portal's main pages in German, from the running lab, as PNGs.

    python -m labkit.screenshots docs/screenshots

Logs in through the portal's form over HTTPS (Debian's Chromium trusting the lab CA, as the
browser tests do): as the demo tenant's admin for the customer's pages and the browser phone in
a call (to a test device that answers and echoes), as a platform operator for the operator's
view. Pages are reached the way a person reaches them, by the navigation's German labels, so a
renamed route needs no change here; a page the portal does not offer (yet) is named at the end
and the command fails, instead of a picture silently missing from the README.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
from playwright.sync_api import Browser, Page, ViewportSize
from playwright.sync_api import Error as PlaywrightError

from pbx_infra.node_config import portal_url
from pbx_infra.topology import ServiceKind

from .browser import chromium
from .control import clear_bindings
from .devices import Devices, aor_for, build_sipclient, device_creds, extension_of
from .docker import docker
from .lab import CA_FILE, PLATFORM, container, instances, lab_names, load_tenant
from .leases import lease
from .portal import login

PORTAL = portal_url(PLATFORM, instances(ServiceKind.PBX_APP, "fra")[0])
OPERATOR = "screenshots@platform.test"
# The phone's picture: the admin phones from one demo extension to another that answers.
DEVICES = lease("screenshots (make screenshots)", browser_extension=26, answering=27)
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
PROXY = str(instances(ServiceKind.SIP_PROXY, "fra")[0].address)  # the answering device's


@dataclass(frozen=True)
class Shot:
    """One picture: `name`.png, taken after `steps` (clicks by visible German names)."""

    name: str
    steps: tuple[tuple[Literal["link", "button"], str], ...]  # (role, accessible name), in order


# The customer admin's pages, by their navigation labels (portal/src/routes.js).
ADMIN_SHOTS = (
    Shot("dashboard", (("link", "Übersicht"),)),
    Shot("users", (("link", "Benutzer"),)),
    Shot("extensions", (("link", "Nebenstellen"),)),
    Shot("call-rules", (("link", "Nebenstellen"), ("link", "Anrufregeln"))),
    Shot("call-records", (("link", "Anrufliste"),)),
)
OPERATOR_SHOTS = (Shot("operator-customers", (("link", "Kunden"),)),)


def log_in(page: Page, email: str, password: str) -> None:
    page.goto(f"{PORTAL}/")
    page.get_by_label("E-Mail-Adresse").fill(email)
    page.get_by_label("Passwort").fill(password)
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Abmelden").wait_for()


def take(page: Page, shot: Shot, out: Path) -> bool:
    page.goto(f"{PORTAL}/#/")
    page.get_by_role("button", name="Abmelden").wait_for()
    try:
        for role, name in shot.steps:
            page.get_by_role(role, name=name).first.click(timeout=5000)
        page.wait_for_load_state("networkidle")
        page.locator("[aria-busy='true']").first.wait_for(state="detached", timeout=10_000)
    except PlaywrightError as exc:
        print(f"  {shot.name}: not in the portal ({str(exc).splitlines()[0]})", file=sys.stderr)
        return False
    page.screenshot(path=str(out / f"{shot.name}.png"), full_page=True)
    print(f"  {shot.name}.png")
    return True


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


def phone_in_a_call(page: Page, dial: str, out: Path) -> bool:
    page.goto(f"{PORTAL}/#/phone")
    try:
        page.wait_for_selector(".phone[data-registration='registered']", timeout=20_000)
        page.get_by_label("Nummer oder Nebenstelle").fill(dial)
        page.get_by_role("button", name="Anrufen").click()
        page.wait_for_selector(".phone[data-call='connected']", timeout=20_000)
    except PlaywrightError as exc:
        print(f"  phone: no call ({str(exc).splitlines()[0]})", file=sys.stderr)
        return False
    page.screenshot(path=str(out / "phone.png"), full_page=True)
    print("  phone.png")
    page.get_by_role("button", name="Auflegen").click()
    page.wait_for_selector(".phone[data-call='ended']", timeout=10_000)
    return True


def operator_password() -> str:
    app = container(instances(ServiceKind.PBX_APP, "fra")[0])
    r = docker(
        "exec", "--user", "pbx", app, "python3", "-m", "pbx_app", "create-operator",
        "--email", OPERATOR, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, f"create-operator: {r.stderr}"
    return str(json.loads(r.stdout)["password"])


def session(
    browser: Browser, email: str, password: str, work: Callable[[Page], list[str]]
) -> list[str]:
    """`work` in a fresh German browser context, logged in as `email`; returns what it lacked."""
    context = browser.new_context(locale="de-DE", viewport=VIEWPORT, permissions=["microphone"])
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        log_in(page, email, password)
        return work(page)
    finally:
        context.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labkit.screenshots", description=__doc__)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    tenant = load_tenant()
    missing: list[str] = []
    print(f"==> screenshots of {PORTAL} into {out}/")
    with (
        chromium(CA_FILE, hosts=lab_names()) as browser,
        login(tenant["admin_email"], tenant["admin_password"]) as api,
    ):

        def admin_pages(page: Page) -> list[str]:
            lost = [s.name for s in ADMIN_SHOTS if not take(page, s, out)]
            with admin_phoning(api, tenant) as dial:
                page.reload()
                if not phone_in_a_call(page, dial, out):
                    lost.append("phone")
            return lost

        missing += session(browser, tenant["admin_email"], tenant["admin_password"], admin_pages)
        missing += session(
            browser,
            OPERATOR,
            operator_password(),
            lambda page: [s.name for s in OPERATOR_SHOTS if not take(page, s, out)],
        )
    if missing:
        print(f"not taken (the portal lacks them): {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
