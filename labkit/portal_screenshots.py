"""Pictures of the portal's main pages in German for the README (`make portal-screenshots`):
the demo (labkit.portal_demo) served on loopback, photographed by Debian's Chromium. Needs no
lab, so it runs wherever `make test-unit` does.

    python -m labkit.portal_screenshots docs/portal
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, expect

from .browser import chromium
from .portal_demo import PASSWORD, PortalDemo, serve_demo


def pages(demo: PortalDemo) -> list[tuple[str, str, str]]:
    """(file name, who, route): what an admin of customer A, the operator and a user see."""
    a = demo.a
    c = f"/customers/{a.customer_id}"
    ext = a.extension_ids[0]
    admin, operator = a.admin_email, demo.operator_email
    return [
        ("overview", admin, c),
        ("users", admin, f"{c}/users"),
        ("extensions", admin, f"{c}/extensions"),
        ("extension", admin, f"{c}/extensions/{ext}"),
        ("call-rules", admin, f"{c}/extensions/{a.extension_ids[1]}/rules"),
        ("numbers", admin, f"{c}/numbers"),
        ("ring-groups", admin, f"{c}/ring-groups"),
        ("call-records", admin, f"{c}/call-records"),
        ("faxes", admin, f"{c}/faxes"),
        ("porting", admin, f"{c}/porting"),
        ("licences", admin, f"{c}/licences"),
        ("operator-customers", operator, "/customers"),
        ("user-extensions", a.member_email, f"{c}/extensions"),
    ]


def _login(page: Page, demo: PortalDemo, email: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{demo.base_url}/")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("input[name=password]").press("Enter")
    page.locator("nav").wait_for()


def _settle(page: Page) -> None:
    page.locator("h1").first.wait_for()
    expect(page.locator("[aria-busy=true]")).to_have_count(0)
    # No focus ring or caret in the picture.
    page.evaluate("document.activeElement && document.activeElement.blur()")


def take(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []
    with (
        tempfile.TemporaryDirectory(prefix="pbx-screens-") as tmp,
        serve_demo(Path(tmp)) as demo,
        chromium(fake_media=False) as browser,
    ):
        context = browser.new_context(
            locale="de-DE", viewport={"width": 1280, "height": 800}, device_scale_factor=1
        )
        page = context.new_page()
        page.goto(f"{demo.base_url}/")
        _settle(page)
        page.screenshot(path=out / "login.png")
        taken.append(out / "login.png")
        who = None
        for name, email, route in pages(demo):
            if email != who:
                _login(page, demo, email)
                who = email
            page.goto(f"{demo.base_url}/#{route}")
            _settle(page)
            path = out / f"{name}.png"
            page.screenshot(path=path, full_page=True)
            taken.append(path)
        context.close()
    return taken


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "docs/portal")
    for path in take(out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
