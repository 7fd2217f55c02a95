"""The portal's pages in Chromium: keyboard-only login, an admin's call rule change reaching the
API, one customer's admin never seeing another's data, German and English, the set-password
link, and axe-core on every main page."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from labkit.fax import letter
from labkit.portal_demo import PASSWORD
from tests.app.conftest import SmtpSink
from tests.portal.conftest import World, describe, goto_route, login, new_page, run_axe


def test_login_with_the_keyboard_alone(browser: Browser, portal_world: World) -> None:
    page = new_page(browser)
    page.goto(f"{portal_world.base_url}/")
    expect(page.locator("h1")).to_have_text("Anmelden")
    # The first Tab stop is the skip link; Enter on it moves the focus to the main content.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    for _ in range(10):  # on through the page to the e-mail field
        if page.evaluate("document.activeElement.name") == "email":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "email"
    page.keyboard.type(portal_world.a.admin_email)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    heading = page.locator("h1")
    expect(heading).to_have_text(f"Kunde: {portal_world.a.name}")
    expect(heading).to_be_focused()  # the new page is announced
    assert page.url.endswith(f"#/customers/{portal_world.a.customer_id}")
    page.context.close()


def test_a_wrong_password_is_refused_with_the_apis_answer(
    browser: Browser, portal_world: World
) -> None:
    page = new_page(browser)
    page.goto(f"{portal_world.base_url}/")
    page.get_by_label("E-Mail-Adresse").fill(portal_world.a.admin_email)
    page.get_by_label("Passwort").fill("not the password at all")
    page.get_by_label("Passwort").press("Enter")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("invalid_credentials")
    expect(page.locator("nav")).to_have_count(0)
    page.context.close()


def test_an_admin_changes_a_call_rule_and_the_api_has_it(
    browser: Browser, portal_world: World
) -> None:
    a = portal_world.a
    page = new_page(browser)
    login(page, portal_world, a.admin_email)
    ext = a.extension_ids[0]
    goto_route(page, portal_world, f"/customers/{a.customer_id}/extensions/{ext}/rules")
    expect(page.locator("h1")).to_have_text("Anrufregeln von 100")
    page.get_by_role("button", name="Regel hinzufügen").click()
    page.get_by_label("Wann").select_option("busy")
    page.get_by_label("Art des Ziels").select_option("group")
    page.get_by_label("Gruppe", exact=True).select_option(str(a.group_id))
    page.get_by_role("button", name="Regel hinzufügen").click()
    rule2 = page.locator("fieldset.rule").nth(1)
    rule2.get_by_label("Wann").select_option("noanswer")
    rule2.get_by_label("Sekunden bis zur Weiterleitung").fill("25")
    rule2.get_by_label("Art des Ziels").select_option("external")
    rule2.get_by_label("Externe Rufnummer").fill("+4930123456")
    page.get_by_role("button", name="Speichern").click()
    expect(page.get_by_role("status")).to_have_text("Gespeichert.")
    with portal_world.api(a.admin_email) as api:
        rules = api.get(f"/customers/{a.customer_id}/extensions/{ext}/call-rules").json()
    assert rules["rules"] == [
        {"kind": "busy", "match": None, "timeout": None, "target": {"group": a.group_id}},
        {"kind": "noanswer", "match": None, "timeout": 25, "target": {"external": "+4930123456"}},
    ]
    # The saved list is what the page shows now, in words.
    expect(page.locator("ol li").first).to_contain_text(f"Bei besetzt → Gruppe: {a.group_name}")
    # A rule the API refuses comes back with its code, and nothing is stored.
    rule2.get_by_label("Externe Rufnummer").fill("110")
    page.get_by_role("button", name="Speichern").click()
    expect(page.get_by_role("alert")).to_contain_text(
        re.compile(r"invalid_call_rule|validation_failed")
    )
    with portal_world.api(a.admin_email) as api:
        again = api.get(f"/customers/{a.customer_id}/extensions/{ext}/call-rules").json()
    assert again == rules
    page.context.close()


def test_a_field_the_api_names_shows_its_error_beside_it(
    browser: Browser, portal_world: World
) -> None:
    a = portal_world.a
    page = new_page(browser)
    login(page, portal_world, a.admin_email)
    goto_route(page, portal_world, f"/customers/{a.customer_id}/locations")
    form = page.locator("form", has=page.get_by_role("heading", name="Neuer Standort"))
    form.get_by_label("Name").fill("Filiale")
    form.get_by_label("Straße").fill("Weg 2")
    form.get_by_label("PLZ").fill("123")  # five digits, says the API
    form.get_by_label("Ort").fill("Offenbach")
    form.get_by_label("Vorwahl").fill("069")
    form.get_by_role("button", name="Speichern").click()
    postal = form.get_by_label("PLZ")
    expect(postal).to_have_attribute("aria-invalid", "true")
    error = form.locator(".field-error")
    expect(error).to_contain_text("validation_failed")
    assert postal.get_attribute("aria-describedby").endswith(error.get_attribute("id"))  # type: ignore[union-attr]
    page.context.close()


def test_the_area_code_rule_and_the_limits_are_visible_before_one_hits_them(
    browser: Browser, portal_world: World
) -> None:
    a = portal_world.a
    page = new_page(browser)
    login(page, portal_world, a.admin_email)
    goto_route(page, portal_world, f"/customers/{a.customer_id}/numbers")
    expect(page.get_by_text("1 von höchstens 1000 Kopfnummern je Kunde.")).to_be_visible()
    hint = page.locator(".hint", has_text="Vorwahl ihres Standorts")
    expect(hint).to_contain_text("(069) beginnt sie mit +4969")
    page.get_by_label("Rufnummer (E.164)").fill("+4989111100")
    page.get_by_role("button", name="Anlegen").click()
    expect(page.get_by_role("alert")).to_contain_text("069")
    with portal_world.api(a.admin_email) as api:
        customer = api.get(f"/customers/{a.customer_id}").json()
    used, booked = customer["extension_count"], customer["booked_extensions"]
    goto_route(page, portal_world, f"/customers/{a.customer_id}/extensions")
    expect(page.get_by_text(f"{used} von {booked} gebuchten Nebenstellen belegt")).to_be_visible()
    goto_route(page, portal_world, f"/customers/{a.customer_id}/extensions/{a.extension_ids[0]}")
    expect(page.get_by_text(re.compile(r"1 von [13] Geräten"))).to_be_visible()
    page.context.close()


def b_routes(w: World) -> list[str]:
    """Every page, with customer B's ids: under B, and B's objects under A."""
    a, b = w.a, w.b
    cb = f"/customers/{b.customer_id}"
    ca = f"/customers/{a.customer_id}"
    pages = ["", "/users", "/extensions", "/locations", "/numbers", "/ring-groups"]
    pages += ["/call-records", "/faxes", "/porting", "/licences", "/invoices", "/audit"]
    return [
        *(cb + p for p in pages),
        f"{cb}/extensions/{b.extension_ids[0]}",
        f"{cb}/extensions/{b.extension_ids[0]}/rules",
        f"{cb}/users/{b.user_id}",
        f"{cb}/porting/{b.porting_id}",
        f"{ca}/extensions/{b.extension_ids[0]}",
        f"{ca}/extensions/{b.extension_ids[0]}/rules",
        f"{ca}/users/{b.user_id}",
        f"{ca}/porting/{b.porting_id}",
    ]


def test_an_admin_never_sees_another_customers_data(browser: Browser, portal_world: World) -> None:
    w = portal_world
    b = w.b
    secrets = [b.name, b.location_name, b.group_name, b.admin_email, *b.extension_names]
    secrets += ["Beta Telekom", "+4989555500", "+4989777701"]
    page = new_page(browser)
    login(page, w, w.a.admin_email)
    for route in b_routes(w):
        goto_route(page, w, route)
        alert = page.get_by_role("alert").first
        expect(alert).to_contain_text(re.compile(r"customer_scope_violation|not_found"))
        text = page.locator("body").inner_text()
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{route} shows {leaked}"
        # Nor a form to change what it could not read.
        expect(page.locator("main form")).to_have_count(0)
    page.context.close()


def test_the_operator_drills_down_into_any_customer(browser: Browser, portal_world: World) -> None:
    w = portal_world
    page = new_page(browser, locale="en-US")
    login(page, w, w.operator_email)
    expect(page.locator("h1")).to_have_text("Customers")
    table = page.get_by_role("table", name="All customers")
    expect(table).to_contain_text(w.a.name)
    expect(table).to_contain_text(w.b.name)
    page.get_by_role("link", name=w.b.name).click()
    expect(page.locator("h1")).to_have_text(f"Customer: {w.b.name}")
    page.get_by_role("navigation").get_by_role("link", name="Extensions").click()
    expect(page.get_by_role("table")).to_contain_text(w.b.extension_names[0])
    page.context.close()


@pytest.mark.parametrize(
    ("locale", "login_title", "overview"),
    [("de-DE", "Anmelden", "Kunde: "), ("en-US", "Log in", "Customer: ")],
)
def test_german_and_english_both_render(
    browser: Browser, portal_world: World, locale: str, login_title: str, overview: str
) -> None:
    page = new_page(browser, locale=locale)
    page.goto(f"{portal_world.base_url}/")
    expect(page.locator("h1")).to_have_text(login_title)
    assert page.evaluate("document.documentElement.lang") == locale[:2]
    login(page, portal_world, portal_world.a.admin_email)
    expect(page.locator("h1")).to_have_text(overview + portal_world.a.name)
    # The switch: the other language at once, and kept for the next visit.
    other = "en" if locale.startswith("de") else "de"
    page.locator("#lang-select").select_option(other)
    expect(page.locator("h1")).to_have_text(
        ("Customer: " if other == "en" else "Kunde: ") + portal_world.a.name
    )
    assert page.evaluate("document.documentElement.lang") == other
    page.reload()
    expect(page.locator("#lang-select")).to_have_value(other)
    page.context.close()


def test_the_set_password_link_keeps_its_token_out_of_the_address(
    browser: Browser, portal_world: World
) -> None:
    page = new_page(browser)
    page.goto(f"{portal_world.base_url}/set-password?token=not-a-real-token-1234")
    expect(page.locator("h1")).to_have_text("Passwort festlegen")
    assert page.url == f"{portal_world.base_url}/#/set-password"
    page.get_by_label(re.compile("^Neues Passwort")).fill("a long enough passphrase")
    page.get_by_role("button", name="Passwort festlegen").click()
    expect(page.get_by_role("alert")).to_contain_text("password_link_invalid")
    # The link's address was replaced, not added to: back leads to where the tab was before.
    page.go_back()
    assert "token" not in page.url, page.url
    page.context.close()


def main_pages(w: World) -> list[tuple[str, str]]:
    a = w.a
    c = f"/customers/{a.customer_id}"
    e = a.extension_ids[0]
    routes = ["", "/users", "/extensions", f"/extensions/{e}", f"/extensions/{e}/rules"]
    routes += ["/locations", "/numbers", "/ring-groups", "/call-records", "/faxes", "/porting"]
    routes += [f"/porting/{a.porting_id}", "/licences", "/invoices", "/audit"]
    routes += [f"/users/{a.user_id}"]
    pages = [(a.admin_email, c + r) for r in routes]
    pages += [(a.admin_email, "/tokens"), (a.admin_email, "/phone")]
    pages += [(w.operator_email, "/customers"), (w.operator_email, f"/customers/{w.b.customer_id}")]
    pages += [(w.b.admin_email, f"/customers/{w.b.customer_id}/faxes")]  # eFax not booked
    pages += [
        (a.member_email, f"{c}/extensions"),
        (a.member_email, f"{c}/extensions/{a.extension_ids[1]}"),
    ]
    return pages


@pytest.mark.parametrize("locale", ["de-DE", "en-US"])
def test_axe_finds_no_serious_violation_on_any_main_page(
    browser: Browser, portal_world: World, locale: str
) -> None:
    w = portal_world
    # The page's CSP allows only this origin's scripts; axe is the test's, injected past it.
    page = new_page(browser, locale=locale, bypass_csp=True)
    page.goto(f"{w.base_url}/")
    page.locator("h1").wait_for()
    found = {"login": run_axe(page)}
    who = None
    for email, route in main_pages(w):
        if email != who:
            page.context.clear_cookies()
            login(page, w, email)
            who = email
        goto_route(page, w, route)
        found[f"{email} {route}"] = run_axe(page)
    bad = {route: v for route, v in found.items() if v}
    assert not bad, "\n".join(f"{r}: {describe(v)}" for r, v in bad.items())
    assert len(found) == len(main_pages(w)) + 1
    page.context.close()


def test_a_user_manages_the_rules_of_their_own_extension_only(
    browser: Browser, portal_world: World
) -> None:
    a = portal_world.a
    mine, other = a.extension_ids[1], a.extension_ids[2]
    page = new_page(browser)
    login(page, portal_world, a.member_email)
    expect(page.locator("h1")).to_have_text("Ihre Nebenstellen")
    nav = page.get_by_role("navigation")
    for hidden in ("Benutzer", "Lizenzen", "Anrufliste", "Rufnummern"):
        expect(nav.get_by_role("link", name=hidden)).to_have_count(0)
    table = page.get_by_role("table", name="Ihre Nebenstellen")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text(a.extension_names[1])
    table.get_by_role("link", name="Anrufregeln").click()
    expect(page.locator("h1")).to_have_text("Anrufregeln von 101")
    page.get_by_role("button", name="Regel 3 entfernen").click()
    page.get_by_role("button", name="Speichern").click()
    expect(page.get_by_role("status")).to_have_text("Gespeichert.")
    with portal_world.api(a.admin_email) as api:
        saved = api.get(f"/customers/{a.customer_id}/extensions/{mine}/call-rules").json()
    assert [r["kind"] for r in saved["rules"]] == ["caller", "busy"]
    # Another extension of the same customer: the page shows the API's refusal, no rules.
    goto_route(page, portal_world, f"/customers/{a.customer_id}/extensions/{other}/rules")
    expect(page.get_by_role("alert")).to_contain_text("permission_denied")
    expect(page.get_by_role("button", name="Speichern")).to_have_count(0)
    page.context.close()


def test_the_business_option_per_extension_and_its_device_limit(
    browser: Browser, portal_world: World
) -> None:
    a = portal_world.a
    ext = a.extension_ids[2]  # "102": no device yet, the customer's default (booked)
    page = new_page(browser)
    login(page, portal_world, a.admin_email)
    goto_route(page, portal_world, f"/customers/{a.customer_id}/extensions/{ext}")
    expect(page.get_by_text("0 von 3 Geräten (mit Business Option)")).to_be_visible()
    add = page.locator("form", has=page.get_by_role("heading", name="Gerät hinzufügen"))
    for n in (1, 2):
        add.get_by_role("button", name="Gerät hinzufügen").click()
        expect(page.get_by_text(f"{n} von 3 Geräten (mit Business Option)")).to_be_visible()
    # The SIP password is shown once, right after the device is made.
    expect(page.locator(".secret")).to_contain_text("sip.")
    # With 2 devices the option cannot go: the API says why, next to nothing else changing.
    settings = page.locator("form", has=page.get_by_role("heading", name="Einstellungen"))
    settings.get_by_label("Business Option").uncheck()
    settings.get_by_role("button", name="Speichern").click()
    expect(settings.get_by_role("alert")).to_contain_text("device_limit_reached")
    with portal_world.api(a.admin_email) as api:
        base = f"/customers/{a.customer_id}/extensions/{ext}"
        assert api.get(base).json()["business_option"] is True
        device = api.get(f"{base}/devices").json()["items"][-1]
        assert api.delete(f"{base}/devices/{device['id']}").status_code == 204
    page.reload()
    expect(page.get_by_text("1 von 3 Geräten (mit Business Option)")).to_be_visible()
    settings.get_by_label("Business Option").uncheck()
    settings.get_by_role("button", name="Speichern").click()
    expect(settings.get_by_role("status")).to_have_text("Gespeichert.")
    expect(page.get_by_text("1 von 1 Geräten (ohne Business Option)")).to_be_visible()
    with portal_world.api(a.admin_email) as api:
        assert api.get(base).json()["business_option"] is False
    page.context.close()


def test_extensions_are_imported_from_a_file_or_not_at_all(
    browser: Browser, portal_world: World, tmp_path: Path
) -> None:
    a = portal_world.a
    good = tmp_path / "extensions.csv"
    good.write_text(f"number,location_id,display_name\n300,{a.location_id},Import Eins\n")
    bad = tmp_path / "broken.csv"
    bad.write_text(
        f"number,location_id,display_name\n301,{a.location_id},Gut\nabc,{a.location_id},X\n"
    )
    page = new_page(browser)
    login(page, portal_world, a.admin_email)
    goto_route(page, portal_world, f"/customers/{a.customer_id}/extensions")
    form = page.locator("form", has=page.get_by_role("heading", name="Nebenstellen importieren"))
    form.get_by_label("Datei (CSV oder JSON)").set_input_files(str(bad))
    form.get_by_role("button", name="Importieren").click()
    expect(form.get_by_role("alert")).to_contain_text("import_invalid")
    expect(form.locator("li")).to_contain_text("Zeile 2")
    form.get_by_label("Datei (CSV oder JSON)").set_input_files(str(good))
    form.get_by_role("button", name="Importieren").click()
    expect(form.get_by_role("status")).to_contain_text("1 Nebenstellen angelegt")
    expect(page.get_by_role("table")).to_contain_text("Import Eins")
    with portal_world.api(a.admin_email) as api:
        numbers = [
            x["number"] for x in api.get(f"/customers/{a.customer_id}/extensions").json()["items"]
        ]
    assert "300" in numbers
    assert "301" not in numbers  # the broken file imported nothing
    page.context.close()


def test_licences_booked_in_the_page_and_a_full_customer_is_told_before_creating(
    browser: Browser, portal_world: World
) -> None:
    b = portal_world.b
    base = f"/customers/{b.customer_id}"
    page = new_page(browser)
    login(page, portal_world, b.admin_email)
    goto_route(page, portal_world, f"{base}/licences")
    field = page.get_by_label("Gebuchte Lizenzen (zusätzlich zum Basispaket)")
    field.fill("0")  # the base package's 5 cover B's extensions
    page.get_by_role("button", name="Buchen").click()
    expect(page.get_by_role("status")).to_contain_text("Gebucht: 15 → 5 Nebenstellen")
    with portal_world.api(b.admin_email) as api:
        assert api.get(base).json()["booked_extensions"] == 5
        while api.get(base).json()["extension_count"] < 5:
            n = 110 + api.get(base).json()["extension_count"]
            body = {"location_id": b.location_id, "number": str(n)}
            assert api.post(f"{base}/extensions", json=body).status_code == 201
    goto_route(page, portal_world, f"{base}/extensions")
    expect(page.get_by_text("5 von 5 gebuchten Nebenstellen belegt")).to_be_visible()
    form = page.locator("form", has=page.get_by_role("heading", name="Neue Nebenstelle"))
    expect(form).to_contain_text("Alle gebuchten Nebenstellen sind belegt")
    expect(form.get_by_role("button", name="Anlegen")).to_be_disabled()
    page.context.close()


def test_an_invited_user_sets_a_password_from_the_mail_and_logs_in(
    browser: Browser, portal_world: World, mail_sink: SmtpSink
) -> None:
    a = portal_world.a
    page = new_page(browser)
    login(page, portal_world, a.admin_email)
    goto_route(page, portal_world, f"/customers/{a.customer_id}/users")
    form = page.locator("form", has=page.get_by_role("heading", name="Benutzer einladen"))
    form.get_by_label("E-Mail-Adresse").fill("Neu.Kollege@Alpha.test")
    form.get_by_label("Name").fill("Neuer Kollege")
    before = len(mail_sink.messages)
    form.get_by_role("button", name="Benutzer einladen").click()
    expect(form.get_by_role("status")).to_contain_text("neu.kollege@alpha.test")
    expect(page.get_by_role("table")).to_contain_text("neu.kollege@alpha.test")
    mails = mail_sink.wait_for(before + 1, timeout=20)
    invite = next(m for m in mails[before:] if m["To"] == "neu.kollege@alpha.test")
    body = invite.get_payload(decode=True).decode()  # type: ignore[union-attr]
    link = re.search(r"http://\S+/set-password\?token=\S+", body)
    assert link, body
    page.context.clear_cookies()
    page.goto(link.group(0))
    expect(page.locator("h1")).to_have_text("Passwort festlegen")
    assert "token" not in page.url
    page.get_by_label(re.compile("^Neues Passwort")).fill("ein gutes langes Passwort")
    page.get_by_role("button", name="Passwort festlegen").click()
    expect(page.get_by_role("status")).to_contain_text("Das Passwort ist gesetzt")
    page.get_by_role("link", name="Zur Anmeldung").click()
    page.get_by_label("E-Mail-Adresse").fill("neu.kollege@alpha.test")
    page.get_by_label("Passwort").fill("ein gutes langes Passwort")
    page.get_by_label("Passwort").press("Enter")
    expect(page.locator("h1")).to_have_text("Ihre Nebenstellen")  # a user's start page
    page.context.close()


def test_call_records_are_listed_and_exported_as_csv(
    browser: Browser, portal_world: World, tmp_path: Path
) -> None:
    a = portal_world.a
    page = new_page(browser)
    login(page, portal_world, a.admin_email)
    goto_route(page, portal_world, f"/customers/{a.customer_id}/call-records")
    table = page.get_by_role("table", name="Anrufe")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table).to_contain_text("+4969123401")
    expect(table).to_contain_text("besetzt")
    with page.expect_download() as download:
        page.get_by_role("link", name="Als CSV herunterladen").click()
    path = tmp_path / "records.csv"
    download.value.save_as(path)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("id,") or "call_id" in lines[0], lines[0]
    assert len(lines) == 3, lines
    assert f"demo-{a.customer_id}-1" in path.read_text()
    # A window that holds neither call: the page asks the API for that window.
    page.get_by_label("Von (UTC)").fill("2026-11-30T10:00")
    page.get_by_role("button", name="Anzeigen").click()
    expect(page.get_by_text("Keine Einträge.")).to_be_visible()
    page.context.close()


def test_an_admin_gets_a_phones_one_time_provisioning_link(
    browser: Browser, portal_world: World
) -> None:
    """For a certified phone without a vendor certificate: the link it fetches its file from,
    shown once; the phone's first fetch works, the second is refused."""
    a = portal_world.a
    with portal_world.api(a.admin_email) as api:
        base = f"/customers/{a.customer_id}/extensions"
        location = api.get(f"/customers/{a.customer_id}/locations").json()["items"][0]["id"]
        r = api.post(base, json={"location_id": location, "number": "150"})
        assert r.status_code == 201, r.text
        ext = r.json()["id"]
        r = api.post(
            f"{base}/{ext}/devices", json={"mac": "00:15:65:12:34:56", "model": "yealink-t54w"}
        )
        assert r.status_code == 201, r.text
    page = new_page(browser)
    login(page, portal_world, a.admin_email)
    goto_route(page, portal_world, f"{base}/{ext}")
    page.get_by_role("button", name=re.compile("^Provisionierungs-Link für")).click()
    link = page.locator(".secret code")
    expect(link).to_contain_text("/prov/t/")
    url = link.inner_text().strip()
    page.context.close()
    with httpx.Client(timeout=10) as phone:
        first = phone.get(url.replace("https://", "http://", 1) + "001565123456.cfg")
        second = phone.get(url.replace("https://", "http://", 1) + "001565123456.cfg")
    with portal_world.api(a.admin_email) as api:
        assert api.delete(f"{base}/{ext}").status_code == 204
    assert first.status_code == 200, first.text
    assert "account.1.password = " in first.text
    assert second.status_code == 403


def test_an_admin_adds_a_fax_number_sends_a_fax_and_reads_the_one_received(
    browser: Browser, portal_world: World
) -> None:
    a = portal_world.a
    page = new_page(browser)
    login(page, portal_world, a.admin_email)
    goto_route(page, portal_world, f"/customers/{a.customer_id}/faxes")
    expect(page.locator("h1")).to_have_text("Fax")
    received = page.get_by_role("row").filter(has_text="LIEFERANT")
    expect(received).to_contain_text("empfangen")
    with page.expect_download() as download:
        received.get_by_role("link").click()
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF")

    numbers = page.locator("form", has=page.get_by_role("heading", name="Neue Faxnummer"))
    numbers.get_by_label(re.compile("^Faxnummer")).fill("+496912340099")  # the demo's fax number
    numbers.get_by_role("button", name="Anlegen").click()
    expect(numbers.locator(".field-error")).to_contain_text("number_in_use")
    numbers.get_by_label(re.compile("^Faxnummer")).fill("+496912340098")
    numbers.get_by_label("Empfangene Faxe per E-Mail an").fill("fax@alpha.test, chef@alpha.test")
    numbers.get_by_role("button", name="Anlegen").click()
    expect(numbers.get_by_role("status")).to_have_text("Gespeichert.")
    expect(page.get_by_role("row").filter(has_text="+496912340098")).to_contain_text(
        "chef@alpha.test"
    )

    send = page.locator("form", has=page.get_by_role("heading", name="Fax senden"))
    send.get_by_label("Absender (Faxnummer)").select_option("+496912340098")
    send.get_by_label("Empfänger (Rufnummer)").fill("030 555123")
    document = send.get_by_label("Dokument (PDF oder TIFF, bis 10 MiB)")
    document.set_input_files({"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hi"})
    send.get_by_role("button", name="Fax senden").click()
    expect(send.locator(".field-error")).to_contain_text("document_type_unsupported")
    pdf = letter(2, "Angebot")
    document.set_input_files({"name": "angebot.pdf", "mimeType": "application/pdf", "buffer": pdf})
    send.get_by_role("button", name="Fax senden").click()
    expect(send.get_by_role("status")).to_contain_text("steht zum Senden bereit")
    expect(page.get_by_role("row").filter(has_text="angebot.pdf")).to_contain_text("wartet")
    with portal_world.api(a.admin_email) as api:
        out = api.get(f"/customers/{a.customer_id}/faxes", params={"direction": "out"}).json()
        [fax] = [f for f in out["items"] if f["document_name"] == "angebot.pdf"]
        assert (fax["our_number"], fax["remote_number"], fax["status"]) == (
            "+496912340098", "+4930555123", "queued"
        )  # fmt: skip
        sent = api.get(f"/customers/{a.customer_id}/faxes/{fax['id']}/document")
        assert sent.content == pdf
    page.context.close()


def test_a_customer_without_efax_is_offered_it_and_cannot_send(
    browser: Browser, portal_world: World
) -> None:
    b = portal_world.b
    page = new_page(browser, locale="en-US")
    login(page, portal_world, b.admin_email)
    goto_route(page, portal_world, f"/customers/{b.customer_id}/faxes")
    expect(page.get_by_text("eFax is not booked")).to_be_visible()
    expect(page.get_by_role("button", name="Book eFax")).to_be_visible()
    expect(page.get_by_role("heading", name="Send a fax")).to_have_count(0)
    page.context.close()
