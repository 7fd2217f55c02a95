"""Product rules through the service layer (no HTTP), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from pbx_app import errors
from pbx_app.db import Database, utcnow
from pbx_app.limits import (
    BASE_PACKAGE_EXTENSIONS,
    MAX_EXTENSIONS_PER_CUSTOMER,
    MAX_HEAD_NUMBERS_PER_CUSTOMER,
    TRIAL_PERIOD,
    max_devices_per_extension,
)
from pbx_app.repositories import customers as customers_repo
from pbx_app.schema import devices as devices_table
from pbx_app.schema import extensions as extensions_table
from pbx_app.schema import head_numbers as head_numbers_table
from pbx_app.services import (
    customers,
    devices,
    extension_import,
    extensions,
    head_numbers,
    locations,
    porting,
)
from pbx_app.services.access import SYSTEM, Actor, Role
from tests.app.conftest import new_customer

# The most licences a customer may book on top of the base package (R14, R16).
MAX_LICENCES = MAX_EXTENSIONS_PER_CUSTOMER - BASE_PACKAGE_EXTENSIONS


def add_location(db: Database, cid: int, name: str = "Frankfurt", area: str = "069") -> int:
    with db.transaction() as conn:
        loc = locations.create(
            conn,
            SYSTEM,
            cid,
            locations.NewLocation(name, "Street 1", "60329", name, area),
            utcnow(),
        )
    return int(loc["id"])


def extension_count(db: Database, cid: int) -> int:
    with db.transaction() as conn:
        q = select(func.count()).select_from(extensions_table)
        return int(conn.execute(q.where(extensions_table.c.customer_id == cid)).scalar_one())


def import_range(db: Database, cid: int, loc: int, start: int, count: int) -> None:
    rows = ({"number": str(n), "location_id": loc} for n in range(start, start + count))
    extension_import.import_rows(db, SYSTEM, cid, rows, utcnow())


def create_ext(db: Database, cid: int, loc: int, number: str, geo: str | None = None) -> int:
    with db.transaction() as conn:
        row = extensions.create(
            conn, SYSTEM, cid, extensions.NewExtension(loc, number, "", geo), utcnow()
        )
    return int(row["id"])


# The requirements' numbers, stated once: every other test (and every layer) takes them from
# pbx_app.limits, so this is the one place where changing a limit meets the requirement text.
def test_limits_are_the_requirements() -> None:
    assert MAX_EXTENSIONS_PER_CUSTOMER == 249_000  # R14
    assert MAX_HEAD_NUMBERS_PER_CUSTOMER == 1_000  # R15
    assert BASE_PACKAGE_EXTENSIONS == 5  # R16
    assert (max_devices_per_extension(False), max_devices_per_extension(True)) == (1, 3)  # R4
    assert timedelta(days=30) == TRIAL_PERIOD  # R19


# --- R14: 249,000 extensions ----------------------------------------------------------------
def test_extension_limit_is_exactly_249000(db: Database) -> None:
    cid = new_customer(db, booked_licences=MAX_LICENCES)
    loc = add_location(db, cid)
    import_range(db, cid, loc, 100_000, MAX_EXTENSIONS_PER_CUSTOMER - 1)
    assert extension_count(db, cid) == MAX_EXTENSIONS_PER_CUSTOMER - 1
    create_ext(db, cid, loc, "99999")  # the last one allowed
    assert extension_count(db, cid) == MAX_EXTENSIONS_PER_CUSTOMER
    with pytest.raises(errors.ExtensionLimitReached) as exc:
        create_ext(db, cid, loc, "99998")  # one too many
    assert "R14" in exc.value.message or exc.value.rule == "R14"
    assert extension_count(db, cid) == MAX_EXTENSIONS_PER_CUSTOMER


def test_bulk_import_past_the_limit_writes_nothing(db: Database) -> None:
    cid = new_customer(db, booked_licences=MAX_LICENCES)
    loc = add_location(db, cid)
    import_range(db, cid, loc, 100_000, MAX_EXTENSIONS_PER_CUSTOMER - 1)
    with pytest.raises(errors.ExtensionLimitReached):
        import_range(db, cid, loc, 900_000, 2)
    assert extension_count(db, cid) == MAX_EXTENSIONS_PER_CUSTOMER - 1
    with db.transaction() as conn:
        row = customers_repo.get(conn, cid)
        assert row is not None
        assert row["extension_count"] == MAX_EXTENSIONS_PER_CUSTOMER - 1


def test_licences_cannot_exceed_the_extension_limit(db: Database) -> None:
    cid = new_customer(db)
    with db.transaction() as conn:
        customers.set_booked_licences(conn, SYSTEM, cid, MAX_LICENCES, utcnow())
    with pytest.raises(errors.ExtensionLimitReached), db.transaction() as conn:
        customers.set_booked_licences(conn, SYSTEM, cid, MAX_LICENCES + 1, utcnow())


# --- R16: base package of 5, licences, R17 high-water mark ------------------------------------
def test_base_package_has_five_extensions_then_licences_are_needed(db: Database) -> None:
    cid = new_customer(db)
    loc = add_location(db, cid)
    for n in range(5):
        create_ext(db, cid, loc, f"10{n}")
    with pytest.raises(errors.ExtensionLicencesExhausted):
        create_ext(db, cid, loc, "120")
    with db.transaction() as conn:
        change = customers.set_booked_licences(conn, SYSTEM, cid, 1, utcnow())
    assert change.activation_fees == 1
    create_ext(db, cid, loc, "120")
    assert extension_count(db, cid) == 6


def test_licences_follow_the_high_water_mark(db: Database) -> None:
    cid = new_customer(db, booked_licences=5)  # 10 booked
    fees = []
    for licences in (0, 3, 6):  # 5, 8, 11 booked
        with db.transaction() as conn:
            fees.append(customers.set_booked_licences(conn, SYSTEM, cid, licences, utcnow()))
    assert [f.activation_fees for f in fees] == [0, 0, 1]
    assert fees[-1].high_water_mark == 11


def test_licences_in_use_cannot_be_cancelled(db: Database) -> None:
    cid = new_customer(db, booked_licences=2)
    loc = add_location(db, cid)
    import_range(db, cid, loc, 100, 7)
    with pytest.raises(errors.LicenceCountInvalid), db.transaction() as conn:
        customers.set_booked_licences(conn, SYSTEM, cid, 1, utcnow())


# --- R15: 1,000 head numbers -----------------------------------------------------------------
def test_head_number_limit_is_exactly_1000(db: Database) -> None:
    cid = new_customer(db)
    loc = add_location(db, cid)
    batch = [head_numbers.NewHeadNumber(loc, f"+4969{100000 + i}", 10) for i in range(999)]
    with db.transaction() as conn:
        head_numbers.create_many(conn, SYSTEM, cid, batch, utcnow())
    with db.transaction() as conn:  # the 1,000th
        head_numbers.create(
            conn, SYSTEM, cid, head_numbers.NewHeadNumber(loc, "+4969200000"), utcnow()
        )
    with pytest.raises(errors.HeadNumberLimitReached), db.transaction() as conn:  # the 1,001st
        head_numbers.create(
            conn, SYSTEM, cid, head_numbers.NewHeadNumber(loc, "+4969200001"), utcnow()
        )
    with db.transaction() as conn:
        q = select(func.count()).select_from(head_numbers_table)
        assert conn.execute(q).scalar_one() == MAX_HEAD_NUMBERS_PER_CUSTOMER


def test_head_number_bulk_past_the_limit_writes_nothing(db: Database) -> None:
    cid = new_customer(db)
    loc = add_location(db, cid)
    batch = [head_numbers.NewHeadNumber(loc, f"+4969{100000 + i}", 10) for i in range(1001)]
    with pytest.raises(errors.HeadNumberLimitReached), db.transaction() as conn:
        head_numbers.create_many(conn, SYSTEM, cid, batch, utcnow())
    with db.transaction() as conn:
        assert conn.execute(select(func.count()).select_from(head_numbers_table)).scalar_one() == 0


# --- R13: locations and areas ----------------------------------------------------------------
def test_head_number_of_another_area_is_rejected_for_a_location(db: Database) -> None:
    cid = new_customer(db)
    frankfurt = add_location(db, cid, "Frankfurt", "069")
    with pytest.raises(errors.NumberAreaMismatch), db.transaction() as conn:
        head_numbers.create(
            conn, SYSTEM, cid, head_numbers.NewHeadNumber(frankfurt, "+4930123456"), utcnow()
        )


def test_geo_number_must_match_the_extensions_location(db: Database) -> None:
    cid = new_customer(db)
    frankfurt = add_location(db, cid, "Frankfurt", "069")
    berlin = add_location(db, cid, "Berlin", "030")
    with db.transaction() as conn:
        for loc, number in ((frankfurt, "+496912345"), (berlin, "+493012345")):
            head_numbers.create(
                conn, SYSTEM, cid, head_numbers.NewHeadNumber(loc, number, 100), utcnow()
            )
    create_ext(db, cid, frankfurt, "100", "+49691234510")
    with pytest.raises(errors.NumberAreaMismatch):
        create_ext(db, cid, frankfurt, "101", "+49301234511")  # Berlin number, Frankfurt location
    with pytest.raises(errors.NumberNotOwned):
        create_ext(db, cid, frankfurt, "102", "+49699999912")  # Frankfurt area, not our block
    berlin_ext = create_ext(db, cid, berlin, "103", "+49301234503")
    with pytest.raises(errors.NumberAreaMismatch), db.transaction() as conn:
        extensions.update(conn, SYSTEM, cid, berlin_ext, utcnow(), location_id=frankfurt)
    assert extension_count(db, cid) == 2


@pytest.mark.parametrize("area_code", ["0800", "0151", "032", "0900", "069x", "69", "00"])
def test_only_german_geographic_area_codes(db: Database, area_code: str) -> None:
    cid = new_customer(db)
    with pytest.raises(errors.InvalidAreaCode):
        add_location(db, cid, "X", area_code)


# --- R4: devices per extension ---------------------------------------------------------------
@pytest.mark.parametrize("business_option", [False, True])
def test_device_limit(db: Database, business_option: bool) -> None:
    allowed = max_devices_per_extension(business_option)
    cid = new_customer(db, business_option=business_option)
    ext = create_ext(db, cid, add_location(db, cid), "100")
    for _ in range(allowed):
        with db.transaction() as conn:
            devices.create(conn, SYSTEM, cid, ext, devices.NewDevice(), utcnow(), "sip.test")
    with pytest.raises(errors.DeviceLimitReached), db.transaction() as conn:
        devices.create(conn, SYSTEM, cid, ext, devices.NewDevice(), utcnow(), "sip.test")
    with db.transaction() as conn:
        q = select(func.count()).select_from(devices_table)
        assert conn.execute(q).scalar_one() == allowed


def test_business_option_cannot_be_dropped_while_extensions_have_more_devices(
    db: Database,
) -> None:
    cid = new_customer(db, business_option=True)
    ext = create_ext(db, cid, add_location(db, cid), "100")
    for _ in range(max_devices_per_extension(business_option=False) + 1):
        with db.transaction() as conn:
            devices.create(conn, SYSTEM, cid, ext, devices.NewDevice(), utcnow(), "sip.test")
    with pytest.raises(errors.DeviceLimitReached), db.transaction() as conn:
        customers.update(conn, SYSTEM, cid, {"business_option": False}, utcnow())


def test_sip_credentials_are_stored_as_ha1_only(db: Database) -> None:
    cid = new_customer(db, sip_domain="acme.sip.test")
    ext = create_ext(db, cid, add_location(db, cid), "100")
    with db.transaction() as conn:
        creds = devices.create(
            conn,
            SYSTEM,
            cid,
            ext,
            devices.NewDevice("acme-100", "s3cret-password-1"),
            utcnow(),
            "sip.test",
        )
    expected = hashlib.md5(b"acme-100:acme.sip.test:s3cret-password-1").hexdigest()
    assert creds.device["ha1"] == expected
    assert creds.device["realm"] == "acme.sip.test"
    assert "s3cret-password-1" not in {str(v) for v in creds.device.values()}


# --- scope and trial -------------------------------------------------------------------------
def test_cross_customer_reads_and_writes_are_refused(db: Database) -> None:
    a, b = new_customer(db), new_customer(db)
    b_loc = add_location(db, b)
    b_ext = create_ext(db, b, b_loc, "100")
    admin_a = Actor(user_id=None, customer_id=a, role=Role.CUSTOMER_ADMIN)
    with pytest.raises(errors.CustomerScopeViolation), db.transaction() as conn:
        extensions.get(conn, admin_a, b, b_ext, utcnow())
    with pytest.raises(errors.CustomerScopeViolation), db.transaction() as conn:
        extensions.create(conn, admin_a, b, extensions.NewExtension(b_loc, "101"), utcnow())
    # B's extension id under A's own customer id is simply not there
    with pytest.raises(errors.NotFound), db.transaction() as conn:
        extensions.get(conn, admin_a, a, b_ext, utcnow())
    # and A cannot put an extension into B's location
    with pytest.raises(errors.NotFound), db.transaction() as conn:
        extensions.create(conn, admin_a, a, extensions.NewExtension(b_loc, "101"), utcnow())
    assert extension_count(db, b) == 1
    assert extension_count(db, a) == 0


def test_plain_users_only_read(db: Database) -> None:
    cid = new_customer(db)
    loc = add_location(db, cid)
    user = Actor(user_id=None, customer_id=cid, role=Role.USER)
    with db.transaction() as conn:
        assert locations.list_(conn, user, cid, utcnow())
    with pytest.raises(errors.PermissionDenied), db.transaction() as conn:
        extensions.create(conn, user, cid, extensions.NewExtension(loc, "100"), utcnow())


def test_trial_ends_by_itself_after_its_period(db: Database) -> None:
    cid = new_customer(db, trial=True)
    admin = Actor(user_id=None, customer_id=cid, role=Role.CUSTOMER_ADMIN)
    start = utcnow()
    with db.transaction() as conn:
        customers.get(conn, admin, cid, start + TRIAL_PERIOD - timedelta(hours=1))
    with pytest.raises(errors.TrialExpired), db.transaction() as conn:
        customers.get(conn, admin, cid, start + TRIAL_PERIOD + timedelta(minutes=1))
    with db.transaction() as conn:  # the operator converts the trial into a contract
        customers.update(conn, SYSTEM, cid, {"trial": False}, start)
    with db.transaction() as conn:
        customers.get(conn, admin, cid, start + TRIAL_PERIOD + timedelta(days=1))


# --- R12: porting ----------------------------------------------------------------------------
def test_porting_state_machine_with_audit_trail(db: Database) -> None:
    cid = new_customer(db)
    loc = add_location(db, cid)
    create_ext(db, cid, loc, "101")
    create_ext(db, cid, loc, "102")
    admin = Actor(user_id=None, customer_id=cid, role=Role.CUSTOMER_ADMIN)
    new = porting.NewPortingRequest(
        loc,
        ["+4969555001", "+4969555002"],
        "Old Telco",
        date(2027, 1, 15),
        {"+4969555001": "101", "+4969555002": "102"},
    )
    with db.transaction() as conn:
        req = porting.create(conn, admin, cid, new, utcnow())
        porting.transition(conn, admin, cid, req["id"], "submitted", "please port", utcnow())
    with pytest.raises(errors.PermissionDenied), db.transaction() as conn:
        porting.transition(conn, admin, cid, req["id"], "confirmed", "", utcnow())
    with pytest.raises(errors.PortingTransitionInvalid), db.transaction() as conn:
        porting.transition(conn, SYSTEM, cid, req["id"], "completed", "", utcnow())
    with db.transaction() as conn:
        porting.transition(conn, SYSTEM, cid, req["id"], "confirmed", "donor ok", utcnow())
        porting.transition(conn, SYSTEM, cid, req["id"], "completed", "switched", utcnow())
    with pytest.raises(errors.PortingTransitionInvalid), db.transaction() as conn:
        porting.transition(conn, SYSTEM, cid, req["id"], "cancelled", "", utcnow())
    with db.transaction() as conn:
        row, events = porting.get(conn, admin, cid, req["id"], utcnow())
    assert row["state"] == "completed"
    assert [(e["from_state"], e["to_state"]) for e in events] == [
        (None, "draft"),
        ("draft", "submitted"),
        ("submitted", "confirmed"),
        ("confirmed", "completed"),
    ]


def test_porting_numbers_must_be_in_the_locations_area(db: Database) -> None:
    cid = new_customer(db)
    loc = add_location(db, cid, "Frankfurt", "069")
    new = porting.NewPortingRequest(
        loc, ["+4969555001", "+4930555002"], "Old Telco", date(2027, 1, 15)
    )
    with pytest.raises(errors.NumberAreaMismatch), db.transaction() as conn:
        porting.create(conn, SYSTEM, cid, new, utcnow())


def test_bulk_import_of_249000_extensions_within_60_seconds_on_postgresql(pg_db: Database) -> None:
    import time

    cid = new_customer(pg_db, booked_licences=MAX_LICENCES)
    loc = add_location(pg_db, cid)
    started = time.perf_counter()
    import_range(pg_db, cid, loc, 100_000, MAX_EXTENSIONS_PER_CUSTOMER)
    assert time.perf_counter() - started <= 60
    assert extension_count(pg_db, cid) == MAX_EXTENSIONS_PER_CUSTOMER
