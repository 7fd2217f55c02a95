"""Fixtures of the browser tests: Debian's Chromium (labkit.browser) trusting the lab CA, the
portal as people reach it (HTTPS on an app node, the URL `make lab` prints), and the demo
tenant's admin as the logged-in user."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from labkit.browser import chromium
from labkit.lab import CA_FILE, PLATFORM, REPO, instances, lab_names
from labkit.portal import login
from pbx_infra.node_config import portal_url
from pbx_infra.topology import ServiceKind

PORTAL = portal_url(PLATFORM, instances(ServiceKind.PBX_APP, "fra")[0])


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with chromium(CA_FILE, hosts=lab_names()) as b:
        yield b


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile per test, in German (the portal's first language), with the
    (fake) microphone allowed. HTTPS errors are not ignored: the lab CA is trusted instead."""
    ctx = browser.new_context(locale="de-DE", permissions=["microphone"], ignore_https_errors=False)
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture(scope="session")
def admin_api(tenant: dict[str, Any]) -> Iterator[httpx.Client]:
    """The demo admin's API session over the internal port (set-up and checks)."""
    with login(tenant["admin_email"], tenant["admin_password"]) as api:
        yield api


@dataclass(frozen=True)
class PortalUser:
    email: str
    password: str
    user_id: int
    customer_id: int


@pytest.fixture(scope="session")
def admin(tenant: dict[str, Any], admin_api: httpx.Client) -> PortalUser:
    me = admin_api.get("/me").json()
    return PortalUser(
        tenant["admin_email"], tenant["admin_password"], me["user"]["id"], tenant["customer_id"]
    )


def log_in(page: Page, user: PortalUser, route: str = "") -> None:
    """Log in through the portal's form, by keyboard, as a person does; then open `route`."""
    page.goto(f"{PORTAL}/")
    page.get_by_label("E-Mail-Adresse").fill(user.email)
    page.get_by_label("Passwort", exact=False).first.fill(user.password)
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Abmelden").wait_for()
    if route:
        page.goto(f"{PORTAL}/#{route}")


def focused_label(page: Page) -> str:
    """The accessible name (aria-label, else text) of the focused element."""
    label: str = page.evaluate(
        "() => { const e = document.activeElement;"
        " return e ? (e.getAttribute('aria-label') || e.textContent || '').trim() : ''; }"
    )
    return label


def tab_to(page: Page, name: str, presses: int = 40) -> None:
    """Move the focus with the Tab key alone until it rests on the control called `name`."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if focused_label(page) == name:
            return
    raise AssertionError(f"{name!r} not reachable with the Tab key")


AXE = REPO / "portal" / "node_modules" / "axe-core" / "axe.min.js"


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core (npm, injected into the page) on what the page shows now: the serious and
    critical violations, each with the elements it names."""
    # Evaluated over the DevTools protocol: the page's CSP (rightly) refuses injected scripts.
    page.evaluate(AXE.read_text())
    found: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document)).violations"
        ".filter(v => ['serious', 'critical'].includes(v.impact))"
        ".map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return found


def extension_id(api: httpx.Client, customer_id: int, number: str) -> int:
    offset = 0
    while True:
        page = api.get(f"/customers/{customer_id}/extensions", params={"offset": offset}).json()
        for x in page["items"]:
            if x["number"] == number:
                return int(x["id"])
        if not page["items"]:
            raise AssertionError(f"extension {number} not found")
        offset += len(page["items"])
