"""The portal in a real browser: the app on loopback with two customers and an operator
(labkit.portal_demo), Debian's Chromium driven by Playwright (labkit.browser). No Docker, no
lab: these run in `make test-unit`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, Page, expect

from labkit.browser import chromium
from labkit.pg_cluster import free_port
from labkit.portal_demo import PASSWORD, PortalDemo, serve_demo
from pbx_app.web import STATIC_DIR
from tests.app.conftest import SmtpSink

World = PortalDemo

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "portal" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="session")
def mail_sink() -> Iterator[SmtpSink]:
    """Where the demo app's mail goes (the set-password links of invited users)."""
    sink = SmtpSink(port=free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def portal_world(tmp_path_factory: pytest.TempPathFactory, mail_sink: SmtpSink) -> Iterator[World]:
    assert (STATIC_DIR / "app.js").is_file(), "the portal bundle is missing: run `make portal`"
    with serve_demo(tmp_path_factory.mktemp("portal"), smtp_port=mail_sink.port) as demo:
        yield demo


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One browser for the portal's tests, closed when a worker leaves them: Playwright's sync
    API keeps an event loop running in the thread, which asyncio code in other test files
    (run by the same xdist worker) cannot start beside."""
    with chromium(fake_media=False) as b:
        yield b


def new_page(browser: Browser, locale: str = "de-DE", **context: Any) -> Page:
    ctx = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900}, **context)
    page = ctx.new_page()
    page.set_default_timeout(10_000)
    return page


def login(page: Page, world: World, email: str) -> None:
    page.goto(f"{world.base_url}/")
    page.get_by_label("E-Mail-Adresse").or_(page.get_by_label("E-mail address")).fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("input[name=password]").press("Enter")
    page.locator("nav").wait_for()


def goto_route(page: Page, world: World, route: str) -> None:
    """A hash route, and the page it shows done loading (no busy marker left)."""
    page.goto(f"{world.base_url}/#{route}")
    page.locator("h1").first.wait_for()
    expect(page.locator("[aria-busy=true]")).to_have_count(0)


def run_axe(page: Page) -> list[dict[str, Any]]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


def describe(violations: list[dict[str, Any]]) -> str:
    return json.dumps(
        [
            {"id": v["id"], "impact": v["impact"], "nodes": [n["html"][:120] for n in v["nodes"]]}
            for v in violations
        ],
        indent=1,
        ensure_ascii=False,
    )
