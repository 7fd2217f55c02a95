"""The portal as the app serves it: one shell page under the page CSP at / and at the e-mailed
/set-password link, the bundle that `make portal` built, with cache headers that fit it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pbx_app import limits
from pbx_app.db import Database
from pbx_app.web import STATIC_DIR
from pbx_infra.platform import PortalBundleMissing, require_portal_bundle
from tests.app.conftest import client_for

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(sqlite_db: Database) -> TestClient:
    return client_for(sqlite_db)


def assert_is_the_shell(page) -> None:
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    # Nothing inline for the CSP to forbid: scripts and styles are files of this origin.
    assert re.search(r"<script(?![^>]*\bsrc=)", page.text) is None, page.text
    assert "<style" not in page.text
    assert " style=" not in page.text
    assert '<script type="module" src="/static/app.js">' in page.text
    assert '<link rel="stylesheet" href="/static/app.css">' in page.text
    assert page.headers["cache-control"] == "no-store"


def test_the_shell_is_served_at_the_root_under_the_page_csp(client: TestClient) -> None:
    assert_is_the_shell(client.get("/"))


def test_the_set_password_link_opens_the_shell_without_repeating_the_token(
    client: TestClient,
) -> None:
    token = "abcdefghijklmnop-secret-token"
    page = client.get(f"/set-password?token={token}")
    assert_is_the_shell(page)
    assert token not in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    # A mail client's own parameters do not break the link.
    assert_is_the_shell(client.get(f"/set-password?token={token}&utm_source=mail"))


def test_the_bundle_is_built_and_served_with_cache_headers(client: TestClient) -> None:
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
        assert (STATIC_DIR / name).stat().st_size > 0, f"{name}: run `make portal`"
        r = client.get(f"/static/{name}")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith(kind)
        assert r.headers["cache-control"] == "no-cache"  # revalidated: a new build shows at once
        assert r.headers["etag"]
        again = client.get(f"/static/{name}", headers={"if-none-match": r.headers["etag"]})
        assert again.status_code == 304
    chunks = sorted((STATIC_DIR / "chunks").glob("*.js"))
    assert chunks, "esbuild splits lazily loaded views (the phone) into chunks"
    r = client.get(f"/static/chunks/{chunks[0].name}")
    assert r.status_code == 200
    assert "immutable" in r.headers["cache-control"]  # content-hashed names
    assert client.get("/static/nothing-here.js").status_code == 404
    assert client.get("/static/../app.py").status_code == 404


def test_the_bundle_holds_both_languages_and_no_inline_style_hacks() -> None:
    bundle = "".join(p.read_text() for p in STATIC_DIR.rglob("*.js"))
    for text in ("Anmelden", "Log in", "Zum Inhalt springen", "Skip to content"):
        assert text in bundle, text


def test_the_pages_state_the_limits_the_app_enforces() -> None:
    source = (REPO / "portal" / "src" / "limits.js").read_text()
    stated = {m[1]: int(m[2]) for m in re.finditer(r"export const (\w+) = (\d+);", source)}
    assert stated == {
        "MAX_EXTENSIONS_PER_CUSTOMER": limits.MAX_EXTENSIONS_PER_CUSTOMER,
        "MAX_HEAD_NUMBERS_PER_CUSTOMER": limits.MAX_HEAD_NUMBERS_PER_CUSTOMER,
        "BASE_PACKAGE_EXTENSIONS": limits.BASE_PACKAGE_EXTENSIONS,
        "DEVICES_PER_EXTENSION": limits.DEVICES_PER_EXTENSION,
        "DEVICES_PER_EXTENSION_BUSINESS": limits.DEVICES_PER_EXTENSION_BUSINESS,
    }


def test_the_app_image_is_not_built_without_the_bundle(tmp_path: Path) -> None:
    with pytest.raises(PortalBundleMissing, match=r"run `make portal`"):
        require_portal_bundle(tmp_path / "app.js")
    (tmp_path / "app.js").write_text("")
    with pytest.raises(PortalBundleMissing):
        require_portal_bundle(tmp_path / "app.js")
    require_portal_bundle()  # the real one, built by `make portal` before the tests
