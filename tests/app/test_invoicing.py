"""Licences and invoices (R16-R19) through the services, on both databases: the seed's worked
example, notice and cancellation dates, proration, price changes, rating, VAT, idempotence, PDF."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from pbx_app import billing, errors, invoicing, rating
from pbx_app.billing_time import local_day, local_day_of_bucket
from pbx_app.db import Database
from pbx_app.invoice_pdf import render
from pbx_app.porting_scheduler import invoice_last_month
from pbx_app.pricing import DEFAULT, Increment, PriceList
from pbx_app.repositories import customers as customers_repo
from pbx_app.repositories import price_lists as price_lists_repo
from pbx_app.repositories import rating as rating_repo
from pbx_app.repositories.call_records import Window
from pbx_app.repositories.rating import DayCalls
from pbx_app.schema import call_records, faxes, licence_bookings
from pbx_app.schema import invoices as invoices_table
from pbx_app.services import call_records as call_records_service
from pbx_app.services import customers, invoices, price_lists
from pbx_app.services.access import SYSTEM
from tests.app.conftest import Api, error_code, new_customer


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day) + timedelta(hours=hour)


def book(db: Database, cid: int, licences: int, day: str) -> customers.LicenceChange:
    with db.transaction() as conn:
        return customers.set_booked_licences(conn, SYSTEM, cid, licences, at(day))


def run(db: Database, month: str, when: str = "2030-01-01") -> invoices.RunResult:
    with db.transaction() as conn:
        return invoices.run(conn, SYSTEM, invoices.month(month), at(when))


def invoice_of(db: Database, cid: int, month: str) -> dict[str, Any]:
    with db.snapshot() as conn:
        rows = [r for r in invoices.list_for_customer(conn, SYSTEM, cid)]
    found = [invoices.public(r) for r in rows if r["period"] == invoices.month(month)]
    assert len(found) == 1, f"{month}: {len(found)} invoices"
    return found[0]


def lines(invoice: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [line for line in invoice["lines"] if line["kind"] == kind]


def fees_in(db: Database, cid: int, month: str) -> int:
    return sum(
        line["detail"]["fees"] for line in lines(invoice_of(db, cid, month), "activation_fees")
    )


# --- R17: the seed's worked example, as the seed tells it --------------------------------------
def create(db: Database, day: str, **kw: Any) -> int:
    new = customers.NewCustomer(name=f"Customer {day} {kw}", tariff="basic",
                                contract_start=date.fromisoformat(day), **kw)  # fmt: skip
    with db.transaction() as conn:
        return int(customers.create(conn, SYSTEM, new, at(day))["id"])


def test_the_seed_example_of_activation_fees(db: Database) -> None:
    # "Sie buchen im Monat 1 zehn Lizenzen und zahlen 10 Aktivierungsgebuehren."
    cid = create(db, "2026-01-05", booked_licences=5)  # the base package's 5 and 5 more
    # "Im Monat 2 kuendigen Sie 5 Lizenzen."
    assert book(db, cid, 0, "2026-02-10").activation_fees == 0
    # "Im Monat 3 aktivieren Sie wieder 3 Lizenzen: 8 aktiv, keine Aktivierungsgebuehr."
    assert book(db, cid, 3, "2026-03-10").activation_fees == 0
    # "Im Monat 4 aktivieren Sie weitere 3 Lizenzen: 11 aktiv, eine Aktivierungsgebuehr;
    # die neue High-Water-Mark ist 11."
    month4 = book(db, cid, 6, "2026-04-10")
    assert (month4.activation_fees, month4.high_water_mark) == (1, 11)
    months = ("2026-01", "2026-02", "2026-03", "2026-04")
    for month in months:
        run(db, month)
    assert [fees_in(db, cid, m) for m in months] == [10, 0, 0, 1]
    fee = lines(invoice_of(db, cid, "2026-04"), "activation_fees")[0]
    assert fee["amount_cents"] == DEFAULT.activation_fee_cents


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=30))
def test_each_licence_above_the_mark_pays_one_fee_never_two(counts: list[int]) -> None:
    mark, paid = 0, 0
    for booked in counts:
        result = billing.activation_fee_high_water_mark(mark, booked)
        assert result.fees == max(0, booked - mark)
        mark, paid = result.high_water_mark, paid + result.fees
    # Every licence up to the highest count ever booked paid exactly once.
    assert paid == mark == max(counts)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=27)),
        min_size=1,
        max_size=12,
    )
)
def test_bookings_and_cancellations_charge_each_licence_once(
    db: Database, changes: list[tuple[int, int]]
) -> None:
    """Random bookings and cancellations, one per month from January: the fees invoiced over the
    year add up to the highest count ever booked, each month's to its rise above the mark."""
    cid = create(db, "2025-01-01")
    year = 2025 + cid  # each example's customer (one database for all) books in its own year
    start = date(year, 1, 1)
    with db.transaction() as conn:
        customers_repo.update_fields(
            conn, cid, {"contract_start": start, "billing_starts_on": start}
        )
        conn.execute(
            licence_bookings.update()
            .where(licence_bookings.c.customer_id == cid)
            .values(effective_on=date(year, 1, 1), requested_at=datetime(year, 1, 1))
        )
    mark = booked = 5
    expected = [5] + [0] * 11
    for month, (licences, day) in enumerate(changes, start=1):
        change = book(db, cid, licences, f"{year}-{month:02d}-{day + 1:02d}")
        booked = 5 + licences
        assert change.activation_fees == max(0, booked - mark)
        expected[month - 1] += max(0, booked - mark)
        mark = max(mark, booked)
    with db.transaction() as conn:
        for month in range(1, 13):
            invoices.run(conn, SYSTEM, date(year, month, 1), datetime(year + 1, 1, 2))
    charged = [fees_in(db, cid, f"{year}-{m:02d}") for m in range(1, 13)]
    assert charged == expected
    assert sum(charged) == mark


# --- R18: notice of the base package, monthly cancellation of further licences ----------------
def test_notice_on_the_deadline_ends_the_term_and_one_day_late_the_next(db: Database) -> None:
    # 24 months from 2026-01-01: the term ends 2027-12-31; 3 months before is 2027-10-01.
    in_time = new_customer(db, contract_start=date(2026, 1, 1), term_months=24)
    late = new_customer(db, contract_start=date(2026, 1, 1), term_months=24)
    early = new_customer(db, contract_start=date(2026, 1, 1), term_months=24)
    with db.transaction() as conn:
        row = customers.give_notice(conn, SYSTEM, early, date(2027, 9, 30), at("2027-09-30"))
    assert row["contract_ends_on"] == date(2027, 12, 31)  # the day before the deadline
    with db.transaction() as conn:
        row = customers.give_notice(conn, SYSTEM, in_time, date(2027, 10, 1), at("2027-10-01"))
    assert row["contract_ends_on"] == date(2027, 12, 31)
    with db.transaction() as conn:
        row = customers.give_notice(conn, SYSTEM, late, date(2027, 10, 2), at("2027-10-02"))
    assert row["contract_ends_on"] == date(2029, 12, 31)
    with pytest.raises(errors.NoticeAlreadyGiven), db.transaction() as conn:
        customers.give_notice(conn, SYSTEM, in_time, None, at("2027-10-03"))


def test_a_cancellation_takes_effect_on_the_first_of_next_month(db: Database) -> None:
    cid = new_customer(db, booked_licences=10, contract_start=date(2026, 1, 1))  # 15
    change = book(db, cid, 4, "2026-03-31")  # on the last day of the month: effective 1 April
    assert change.effective_on == "2026-04-01"
    assert (change.booked_extensions_before, change.booked_extensions_after) == (15, 9)
    change = book(db, cid, 2, "2026-04-01")  # on the first: effective 1 May, 9 in April
    assert change.effective_on == "2026-05-01"
    run(db, "2026-03")
    run(db, "2026-04")
    run(db, "2026-05")
    booked = [
        [line["detail"]["booked_extensions"] for line in lines(invoice_of(db, cid, m), "licences")]
        for m in ("2026-03", "2026-04", "2026-05")
    ]
    assert booked == [[15], [9], [7]]


def test_bookings_before_the_contract_starts_count_from_its_first_day(db: Database) -> None:
    cid = create(db, "2026-05-01", booked_licences=5)  # created in May, contract from June
    with db.transaction() as conn:
        customers_repo.update_fields(
            conn, cid, {"contract_start": date(2026, 6, 1), "billing_starts_on": date(2026, 6, 1)}
        )
        conn.execute(
            licence_bookings.update()
            .where(licence_bookings.c.customer_id == cid)
            .values(effective_on=date(2026, 6, 1))
        )
    # Before the contract starts, any change is an order change: from its first day.
    change = book(db, cid, 2, "2026-05-20")  # 7 instead of 10
    assert (change.booked_extensions_before, change.effective_on) == (10, "2026-06-01")
    change = book(db, cid, 8, "2026-05-21")  # 13
    assert (change.booked_extensions_before, change.effective_on) == (7, "2026-06-01")
    run(db, "2026-06")
    assert [
        p["detail"]["booked_extensions"] for p in lines(invoice_of(db, cid, "2026-06"), "licences")
    ] == [13]


def test_an_increase_after_a_cancellation_replaces_it(db: Database) -> None:
    cid = new_customer(db, booked_licences=15, contract_start=date(2026, 1, 1))  # 20
    book(db, cid, 5, "2026-06-05")  # 10 from 1 July
    change = book(db, cid, 10, "2026-06-20")  # 15: still fewer than today's 20, from 1 July
    assert change.effective_on == "2026-07-01"
    run(db, "2026-06")
    run(db, "2026-07")
    assert [
        line["detail"]["booked_extensions"]
        for line in lines(invoice_of(db, cid, "2026-07"), "licences")
    ] == [15]


def test_licences_are_prorated_by_day_in_a_leap_february(db: Database) -> None:
    cid = new_customer(db, booked_licences=0, contract_start=date(2028, 1, 1))  # 5
    book(db, cid, 5, "2028-02-15")  # 10 from the 15th, at once
    run(db, "2028-02")
    parts = lines(invoice_of(db, cid, "2028-02"), "licences")
    assert [(p["detail"]["booked_extensions"], p["detail"]["days"]) for p in parts] == [
        (5, 14),
        (10, 15),
    ]
    base, per_extension = 3500, 680
    assert parts[0]["amount_cents"] == invoicing.cents(Decimal(base * 14) / 29)  # 1689.66 -> 1690
    assert parts[1]["amount_cents"] == invoicing.cents(
        Decimal((base + 5 * per_extension) * 15) / 29
    )


def test_a_trial_is_free_and_its_conversion_starts_the_charges(db: Database) -> None:
    cid = create(db, "2026-09-01", trial=True)
    with db.transaction() as conn:
        customers.update(conn, SYSTEM, cid, {"trial": False}, at("2026-09-21"))
    run(db, "2026-09")
    invoice = invoice_of(db, cid, "2026-09")
    assert [p["detail"]["days"] for p in lines(invoice, "licences")] == [10]  # 21st to 30th
    # The base package's activation fees, booked during the trial, fall due on conversion.
    assert fees_in(db, cid, "2026-09") == 5


def test_an_expired_trial_gets_no_invoice(db: Database) -> None:
    new_customer(db, trial=True, contract_start=date(2026, 9, 1))
    result = run(db, "2026-09")
    assert (result.issued, result.nothing_to_charge) == (0, 1)


# --- price lists ------------------------------------------------------------------------------
def test_a_price_change_mid_month_bills_each_day_by_its_list(db: Database) -> None:
    cid = new_customer(db, contract_start=date(2026, 1, 1))
    dearer = DEFAULT.model_copy(
        update={"tariffs": {**DEFAULT.tariffs, "basic": DEFAULT.tariffs["basic"].model_copy(
            update={"base_package_cents": 4000})}}
    )  # fmt: skip
    with db.transaction() as conn:
        price_lists.create(conn, SYSTEM, date(2026, 11, 16), dearer, at("2026-11-01"))
    run(db, "2026-11")
    parts = lines(invoice_of(db, cid, "2026-11"), "licences")
    assert [(p["detail"]["days"], p["detail"]["monthly_cents"]) for p in parts] == [
        (15, 3500),
        (15, 4000),
    ]
    assert sum(p["amount_cents"] for p in parts) == 1750 + 2000


def test_a_list_in_force_cannot_be_changed_or_withdrawn(db: Database) -> None:
    with pytest.raises(errors.PriceListInForce), db.transaction() as conn:
        price_lists.create(conn, SYSTEM, date(2026, 11, 1), DEFAULT, at("2026-11-01"))
    with db.transaction() as conn:
        first = price_lists_repo.in_force(conn, date(2026, 11, 1))
    with pytest.raises(errors.PriceListInForce), db.transaction() as conn:
        price_lists.withdraw(conn, SYSTEM, first.id, at("2026-11-01"))


def test_issued_invoices_keep_their_prices(db: Database) -> None:
    cid = new_customer(db, contract_start=date(2026, 1, 1))
    run(db, "2026-10", when="2026-11-02")
    before = invoice_of(db, cid, "2026-10")
    cheaper = DEFAULT.model_copy(update={"activation_fee_cents": 0, "vat_percent": Decimal(7)})
    with db.transaction() as conn:
        price_lists.create(conn, SYSTEM, date(2026, 11, 3), cheaper, at("2026-11-02"))
    run(db, "2026-10", when="2026-11-04")
    assert invoice_of(db, cid, "2026-10") == before


# --- rating -----------------------------------------------------------------------------------
def call(cid: int, n: int, number: str, started: datetime, talk: float) -> dict[str, Any]:
    answered = started + timedelta(seconds=2)
    return {
        "node": "test", "site": "fra", "call_id": f"c{cid}-{n}", "from_tag": "t",
        "started_at": started, "answered_at": answered if talk >= 0 else None,
        "ended_at": answered + timedelta(seconds=max(talk, 0)), "customer_id": cid,
        "callee_customer_id": None, "source": "device", "caller": "x", "caller_id": "",
        "dialled": number, "resolved": number, "answered_by": "", "diversions": 0,
        "relay": "", "sip_code": 200 if talk >= 0 else 486, "reason": "", "received_at": started,
    }  # fmt: skip


def test_calls_are_rated_by_zone_increment_and_flat_rate(db: Database) -> None:
    cid = new_customer(db, contract_start=date(2026, 1, 1), flat_rate="national")
    day = datetime(2026, 11, 10, 9)
    rows = [
        call(cid, 1, "+496912345678", day, 61),  # national, in the flat rate
        call(cid, 2, "+4917612345678", day, 61),  # mobile: 2 minutes at 12.9
        call(cid, 3, "+4917612345678", day, 0.001),  # answered, 1 ms: one minute
        call(cid, 4, "+4917612345678", day, -1),  # busy: not rated
        call(cid, 5, "+33123456789", day, 120),  # europe: 2 minutes at 4.9
        call(cid, 6, "+15551234567", day, 59.5),  # world: 1 minute at 29.9
        call(cid, 7, "112", day, 300),  # emergency: never rated
        call(cid, 8, "+4917612345678", datetime(2026, 12, 1, 0, 0), 600),  # next month
    ]
    with db.transaction() as conn:
        conn.execute(call_records.insert(), rows)
    run(db, "2026-11")
    rated = {p["detail"]["zone"]: p for p in lines(invoice_of(db, cid, "2026-11"), "calls")}
    assert {z: (p["detail"]["calls"], p["detail"]["billed_seconds"]) for z, p in rated.items()} == {
        "national": (1, 120),
        "mobile": (2, 180),
        "europe": (1, 120),
        "world": (1, 60),
    }
    assert rated["national"]["amount_cents"] == 0
    assert rated["mobile"]["amount_cents"] == invoicing.cents(Decimal("12.9") * 3)  # 38.7 -> 39
    assert rated["europe"]["amount_cents"] == invoicing.cents(Decimal("4.9") * 2)  # 9.8 -> 10
    assert rated["world"]["amount_cents"] == invoicing.cents(Decimal("29.9"))  # 29.9 -> 30
    # Each record shows its own price, unrounded: the invoice line rounds their sum once.
    with db.snapshot() as conn:
        records = call_records_service.list_platform(conn, SYSTEM, Window(None, None), 100, 0)
        shown = {r["call_id"]: r for r in call_records_service.priced(conn, records)}
    assert (shown[f"c{cid}-2"]["price_zone"], shown[f"c{cid}-2"]["price_cents"]) == (
        "mobile", "25.8000",
    )  # fmt: skip
    assert shown[f"c{cid}-1"]["price_cents"] == "0.0000"  # national: in the flat rate
    assert shown[f"c{cid}-4"]["price_cents"] is None  # busy
    assert shown[f"c{cid}-7"]["price_zone"] is None  # 112


@given(
    st.integers(min_value=0, max_value=10_000),
    st.sampled_from([(60, 60), (1, 1), (60, 1), (30, 6)]),
)
def test_billed_seconds_are_whole_increments_never_less_than_the_talk(
    talk: int, inc: tuple[int, int]
) -> None:
    rule = Increment(first_seconds=inc[0], next_seconds=inc[1])
    billed = rule.billed_seconds(talk)
    if talk == 0:
        assert billed == 0
    else:
        assert billed >= max(talk, inc[0])
        assert (billed - inc[0]) % inc[1] == 0
        assert billed - talk < max(inc)


# --- totals, VAT, idempotence, PDF --------------------------------------------------------------
def test_vat_is_rounded_half_up_on_the_net_sum() -> None:
    basic = DEFAULT.tariffs["basic"]
    doc = DEFAULT.model_copy(update={"tariffs": {**DEFAULT.tariffs, "basic": basic.model_copy(
        update={"minute_cents": {**basic.minute_cents, "mobile": Decimal(25)}})}})  # fmt: skip
    lists = [PriceList(id=1, valid_from=date(2000, 1, 1), doc=doc)]
    account = invoicing.Account(
        1, "A", date(2026, 1, 1), None, 0,
        (invoicing.Booking(date(2026, 1, 1), 5, 0, date(2026, 1, 1)),),
        (invoicing.Plan(date(2026, 1, 1), "basic", frozenset()),),
    )  # fmt: skip
    # The base package all month (3,500) and 2 minutes at 25 ct: net 3,550, VAT 674.5 -> 675.
    calls = [DayCalls(1, "+4917", date(2026, 11, 3), 1, 1, 120)]
    invoice = invoicing.build(account, date(2026, 11, 1), lists, calls)
    assert (invoice["net_cents"], invoice["vat_cents"], invoice["gross_cents"]) == (
        3550, 675, 4225,
    )  # fmt: skip


def test_the_run_is_idempotent_and_waits_for_the_month_to_end(db: Database) -> None:
    new_customer(db, contract_start=date(2026, 1, 1))
    new_customer(db, contract_start=date(2026, 1, 1))
    first = run(db, "2026-10", when="2026-11-01")
    again = run(db, "2026-10", when="2026-11-02")
    assert (first.issued, again.issued, again.already_issued) == (2, 0, 2)
    with pytest.raises(errors.InvoicePeriodOpen), db.transaction() as conn:
        invoices.run(conn, SYSTEM, date(2026, 11, 1), at("2026-11-30"))


def test_the_pdf_says_what_the_json_says(db: Database) -> None:
    cid = new_customer(db, name="Müller & Söhne GmbH", contract_start=date(2026, 1, 1))
    run(db, "2026-10", when="2026-11-01")
    invoice = invoice_of(db, cid, "2026-10")
    pdf = render(invoice)
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert f"Invoice {invoice['number']}" in text
    assert "Müller & Söhne GmbH" in text
    assert "35.00 EUR" in text  # the base package, all of October
    assert f"{invoice['gross_cents'] // 100}.{invoice['gross_cents'] % 100:02d} EUR" in text
    assert render(invoice) == pdf  # the same invoice, the same bytes
    assert json.loads(json.dumps(invoice)) == invoice


# --- through the API ----------------------------------------------------------------------------
def test_price_lists_are_the_operators_and_checked_key_by_key(api: Api) -> None:
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    doc = DEFAULT.model_dump(mode="json")
    r = api.admin_a.post("/api/v1/price-lists", json={"valid_from": tomorrow, "document": doc})
    assert r.status_code == 403, r.text
    bad = {**doc, "flat_rates": {"x": {"per_extension_cents": 1, "zones": ["moon"]}}}
    r = api.operator.post("/api/v1/price-lists", json={"valid_from": tomorrow, "document": bad})
    assert r.status_code == 422, r.text
    assert "moon" in r.text
    today = datetime.now(UTC).date().isoformat()
    r = api.operator.post("/api/v1/price-lists", json={"valid_from": today, "document": doc})
    assert (r.status_code, error_code(r)) == (409, "price_list_in_force")
    r = api.operator.post("/api/v1/price-lists", json={"valid_from": tomorrow, "document": doc})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["in_force_since_begun"] is False
    listed = api.operator.get("/api/v1/price-lists").json()["items"]
    assert [p["valid_from"] for p in listed][-1] == tomorrow
    assert api.operator.delete(f"/api/v1/price-lists/{created['id']}").status_code == 204
    first = listed[0]["id"]
    r = api.operator.delete(f"/api/v1/price-lists/{first}")
    assert (r.status_code, error_code(r)) == (409, "price_list_in_force")


def test_customer_discounts_options_and_notice_through_the_api(api: Api) -> None:
    r = api.operator.patch(f"/api/v1/customers/{api.b}", json={"discounts": ["mobile"]})
    assert r.status_code == 200, r.text
    assert (r.json()["discounts"], r.json()["monthly_price_eur"]) == (["mobile"], "25.20")
    # The admin books options but not discounts or tariffs.
    r = api.admin_b.patch(f"/api/v1/customers/{api.b}", json={"discounts": []})
    assert r.status_code == 403, r.text
    r = api.admin_b.patch(f"/api/v1/customers/{api.b}", json={"cti": "premium", "efax": True})
    assert (r.status_code, r.json()["cti"], r.json()["efax"]) == (200, "premium", True)
    r = api.admin_b.patch(f"/api/v1/customers/{api.b}", json={"flat_rate": "galaxy"})
    assert (r.status_code, error_code(r)) == (422, "option_unknown")
    r = api.admin_b.post(f"/api/v1/customers/{api.b}/notice", json={})
    assert r.status_code == 200, r.text
    assert r.json()["contract_ends_on"] is not None
    r = api.admin_b.post(f"/api/v1/customers/{api.b}/notice", json={})
    assert (r.status_code, error_code(r)) == (409, "notice_already_given")
    # Another customer's admin reaches neither.
    r = api.admin_a.post(f"/api/v1/customers/{api.b}/notice", json={})
    assert r.status_code == 403, r.text


def test_invoices_through_the_api_json_and_pdf_each_customer_its_own(api: Api) -> None:
    r = api.admin_a.post("/api/v1/invoice-runs", params={"period": "2026-10"})
    assert r.status_code == 403, r.text
    r = api.operator.post("/api/v1/invoice-runs", params={"period": "2099-01"})
    assert (r.status_code, error_code(r)) == (409, "invoice_period_open")
    # An app node that starts issues last month's invoices itself (the test clients' apps did):
    # start from none, as on the 1st before the run.
    with api.db.transaction() as conn:
        conn.execute(invoices_table.delete())
    r = api.operator.post("/api/v1/invoice-runs", params={"period": "2026-10"})
    assert r.status_code == 200, r.text
    assert r.json()["issued"] == 2
    again = api.operator.post("/api/v1/invoice-runs", params={"period": "2026-10"}).json()
    assert (again["issued"], again["already_issued"]) == (0, 2)
    mine = api.admin_a.get(f"/api/v1/customers/{api.a}/invoices").json()["items"]
    assert [i["period"] for i in mine] == ["2026-10"]
    number = mine[0]["number"]
    assert api.admin_b.get(f"/api/v1/customers/{api.a}/invoices").status_code == 403
    assert api.admin_b.get(f"/api/v1/customers/{api.a}/invoices/{number}").status_code == 403
    r = api.admin_a.get(f"/api/v1/customers/{api.a}/invoices/{number}", params={"format": "pdf"})
    assert (r.status_code, r.headers["content-type"]) == (200, "application/pdf")
    text = PdfReader(io.BytesIO(r.content)).pages[0].extract_text()
    assert f"Invoice {number}" in text
    missing = api.admin_a.get(f"/api/v1/customers/{api.a}/invoices/2026-09-{api.a:06d}")
    assert missing.status_code == 404


def test_the_sql_sums_agree_with_each_call_rated_alone(db: Database) -> None:
    """The invoice run sums in SQL; a call record's price is pbx_app.rating.rate: the same."""
    cid = new_customer(db, contract_start=date(2026, 1, 1), tariff="standard")
    per_second = DEFAULT.model_copy(
        update={"increment": Increment(first_seconds=60, next_seconds=1)}
    )
    with db.transaction() as conn:
        price_lists.create(conn, SYSTEM, date(2026, 10, 20), per_second, at("2026-10-01"))
    rng = random.Random(16)
    numbers = ["+4969123", "+4917612", "+33612", "+15551", "+49900123", "+4980012", "c1x100"]
    rows = []
    for n in range(400):
        started = datetime(2026, 10, 1) + timedelta(seconds=rng.randrange(31 * 86400))
        talk = (
            rng.choice([-1.0, 0.0, 0.001, 59.999, 60.0, 60.001])
            if n % 4 == 0
            else (rng.randrange(0, 900_000) / 1000)
        )
        rows.append(call(cid, n, rng.choice(numbers) + str(rng.randrange(10**6)), started, talk))
    with db.transaction() as conn:
        conn.execute(call_records.insert(), rows)
        lists = price_lists_repo.all_lists(conn)
        groups = rating_repo.day_calls(
            conn, [cid], date(2026, 11, 1), at("2026-11-02"), None, lists
        )
    by_id = {p.id: p.doc for p in lists}
    expected: dict[tuple[str, int], list[int]] = {}
    for r in rows:
        rated = rating.rate(r["resolved"], r["started_at"], r["answered_at"], r["ended_at"],
                            "standard", None, lists)  # fmt: skip
        if rated is not None and local_day(r["started_at"]) < date(2026, 11, 1):
            entry = expected.setdefault((rated.zone, rated.price_list_id), [0, 0])
            entry[0] += 1
            entry[1] += rated.billed_seconds
    got: dict[tuple[str, int], list[int]] = {}
    for g in groups:
        zone = by_id[g.price_list_id].zone_of(g.prefix)
        assert zone is not None
        entry = got.setdefault((zone.name, g.price_list_id), [0, 0])
        entry[0] += g.calls
        entry[1] += g.billed_seconds
    assert got == expected
    assert len({list_id for _, list_id in got}) == 2  # both lists billed part of the month


def test_every_node_issues_last_months_invoices_once(db: Database) -> None:
    cid = new_customer(db, contract_start=date(2026, 1, 1))
    assert invoice_last_month(db, at("2026-12-01", 0)) == "2026-11"
    assert invoice_last_month(db, at("2026-12-01", 1)) == "2026-11"  # another node, later
    with db.snapshot() as conn:
        assert len(invoices.list_for_customer(conn, SYSTEM, cid)) == 1


def test_a_record_that_arrives_after_the_run_goes_on_the_next_invoice(db: Database) -> None:
    cid = new_customer(db, contract_start=date(2026, 1, 1))
    on_time = call(cid, 1, "+4917612345678", datetime(2026, 10, 30, 9), 60)
    late = call(cid, 2, "+4917612345678", datetime(2026, 10, 31, 22, 50), 60)  # 23:50 Berlin
    late["received_at"] = datetime(2026, 11, 2, 8)  # its node was cut off until the 2nd
    november = call(cid, 3, "+4917612345678", datetime(2026, 11, 5, 9), 60)
    with db.transaction() as conn:
        conn.execute(call_records.insert(), [on_time])
    run(db, "2026-10", when="2026-11-01")
    with db.transaction() as conn:
        conn.execute(call_records.insert(), [late, november])
    run(db, "2026-10", when="2026-11-03")  # again: October is done, the late call waits
    run(db, "2026-11", when="2026-12-01")

    def mobile_calls(month: str) -> int:
        return sum(p["detail"]["calls"] for p in lines(invoice_of(db, cid, month), "calls"))

    assert (mobile_calls("2026-10"), mobile_calls("2026-11")) == (1, 2)


def test_a_forwarded_call_is_charged_to_the_customer_whose_rule_forwarded_it(
    db: Database,
) -> None:
    caller = new_customer(db, contract_start=date(2026, 1, 1))
    forwarder = new_customer(db, contract_start=date(2026, 1, 1))
    forwarded = call(caller, 1, "+4917612345678", datetime(2026, 11, 5, 9), 60)
    forwarded.update(callee_customer_id=forwarder, diversions=1)
    with db.transaction() as conn:
        conn.execute(call_records.insert(), [forwarded])
    run(db, "2026-11", when="2026-12-01")
    assert lines(invoice_of(db, caller, "2026-11"), "calls") == []
    charged = lines(invoice_of(db, forwarder, "2026-11"), "calls")
    assert [p["detail"]["calls"] for p in charged] == [1]
    # The record shows its price to the forwarding customer only (the caller pays nothing).
    with db.snapshot() as conn:
        rows = call_records_service.list_platform(conn, SYSTEM, Window(None, None), 10, 0)
        seen_by_caller = call_records_service.priced(conn, rows, viewer=caller)
        seen_by_forwarder = call_records_service.priced(conn, rows, viewer=forwarder)
    assert seen_by_caller[0]["price_cents"] is None
    assert seen_by_forwarder[0]["price_cents"] == "12.9000"


def test_options_are_charged_by_the_day_they_were_booked(db: Database) -> None:
    cid = create(db, "2026-11-01")
    with db.transaction() as conn:
        customers.update(conn, SYSTEM, cid, {"cti": "premium"}, at("2026-11-11"))
        customers.update(conn, SYSTEM, cid, {"efax": True}, at("2026-11-30", 8))
        # Off at 23:30 Berlin on the 30th, on again the next morning: the 30th is charged.
        customers.update(conn, SYSTEM, cid, {"efax": False}, at("2026-11-30", 22))
    run(db, "2026-11", when="2026-12-01")
    invoice = invoice_of(db, cid, "2026-11")
    assert [p["detail"]["days"] for p in lines(invoice, "cti")] == [20]
    assert [p["detail"]["days"] for p in lines(invoice, "efax")] == [1]
    cti = lines(invoice, "cti")[0]
    assert cti["amount_cents"] == invoicing.cents(
        Decimal(DEFAULT.options.cti_premium_cents) * 20 / 30
    )


def test_calls_in_a_trial_are_free(db: Database) -> None:
    cid = create(db, "2026-11-01", trial=True)
    with db.transaction() as conn:
        conn.execute(call_records.insert(), [call(cid, 1, "+4917612345", at("2026-11-03"), 600)])
        customers.update(conn, SYSTEM, cid, {"trial": False}, at("2026-11-20"))
        conn.execute(call_records.insert(), [call(cid, 2, "+4917612345", at("2026-11-21"), 60)])
    run(db, "2026-11", when="2026-12-01")
    rated = lines(invoice_of(db, cid, "2026-11"), "calls")
    assert [(p["detail"]["calls"], p["detail"]["billed_seconds"]) for p in rated] == [(1, 60)]


def fax(cid: int, direction: str, status: str, pages: int, ended: datetime) -> dict[str, Any]:
    return {"customer_id": cid, "direction": direction, "our_number": "+496912345099",
            "remote_number": "+49301234", "status": status, "pages": pages,
            "source": "api" if direction == "out" else "call", "created_at": ended,
            "updated_at": ended, "completed_at": ended}  # fmt: skip


def test_fax_pages_sent_are_charged_by_the_list_of_their_day_and_received_counted(
    db: Database,
) -> None:
    cid = create(db, "2026-11-01", efax=True)
    priced = DEFAULT.model_copy(
        update={"options": DEFAULT.options.model_copy(update={"fax_page_cents": 7})}
    )
    with db.transaction() as conn:
        price_lists.create(conn, SYSTEM, date(2026, 11, 16), priced, at("2026-11-01"))
        conn.execute(faxes.insert(), [
            fax(cid, "out", "sent", 3, at("2026-11-03")),
            fax(cid, "out", "sent", 4, at("2026-11-20")),
            fax(cid, "in", "received", 5, at("2026-11-21")),
            fax(cid, "out", "failed", 2, at("2026-11-22")),  # broke off: not charged
            fax(cid, "in", "failed", 1, at("2026-11-22")),
            # 23:30 UTC on 30 November is 1 December in Berlin: December's invoice.
            fax(cid, "out", "sent", 6, datetime(2026, 11, 30, 23, 30)),
        ])  # fmt: skip
    run(db, "2026-11", when="2026-12-01")
    counted = lines(invoice_of(db, cid, "2026-11"), "fax_pages")
    assert [(p["detail"]["pages_sent"], p["detail"]["pages_received"], p["amount_cents"])
            for p in counted] == [(3, 0, 0), (4, 5, 28)]  # fmt: skip
    assert counted[1]["text"] == "Fax pages sent (7 ct per page; 5 received, included)"
    run(db, "2026-12", when="2027-01-01")
    december = lines(invoice_of(db, cid, "2026-12"), "fax_pages")
    assert [(p["detail"]["pages_sent"], p["amount_cents"]) for p in december] == [(6, 42)]


def test_the_sql_day_buckets_give_the_berlin_day_all_year() -> None:
    """repositories/rating groups by the UTC date of started_at + 1 h and the UTC hour 22;
    billing_time turns that into the Berlin day. Every half hour of a year with both DST
    changes must land on the day local_day gives."""
    t = datetime(2026, 1, 1)
    while t < datetime(2027, 1, 1):
        bucket = (t + timedelta(hours=1)).date()
        assert local_day_of_bucket(bucket, t.hour == 22) == local_day(t), t
        t += timedelta(minutes=30)


def test_the_starting_price_list_is_pricing_default(db: Database) -> None:
    """Migration 0009 stores a frozen copy of pbx_app.pricing.DEFAULT; the tests price by
    DEFAULT. When one changes without the other, this fails."""
    with db.snapshot() as conn:
        first = price_lists_repo.all_lists(conn)[0]
    assert (first.valid_from, first.doc) == (date(2000, 1, 1), DEFAULT)
