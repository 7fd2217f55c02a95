"""Opening hours (Europe/Berlin) and German public holidays per state (issue 13): the pure
rules, and how a location takes them through the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from pbx_app import errors
from pbx_app.services import calendar
from tests.app.conftest import Api, error_code

WEEKDAYS_8_TO_18 = {d: ["08:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}


def test_the_states_are_those_the_holidays_package_knows() -> None:
    assert set(calendar.STATES) == set(calendar.holidays.Germany.subdivisions)


def test_opening_hours_are_stored_sorted_without_closed_days() -> None:
    hours = {"fri": ["13:00-24:00", "08:00-12:00"], "mon": ["00:00-08:00"], "sun": []}
    assert calendar.validate_hours(hours) == {
        "mon": ["00:00-08:00"],
        "fri": ["08:00-12:00", "13:00-24:00"],
    }
    assert calendar.validate_hours(None) is None
    assert calendar.validate_hours({}) == {}  # closed every day
    # touching intervals are fine
    assert calendar.validate_hours({"tue": ["08:00-12:00", "12:00-13:00"]}) is not None


@pytest.mark.parametrize(
    ("hours", "field"),
    [
        ({"monday": ["08:00-12:00"]}, "opening_hours.monday"),
        ({"mon": ["8:00-12:00"]}, "opening_hours.mon[0]"),
        ({"mon": ["08:00-12:00", "12:00-24:01"]}, "opening_hours.mon[1]"),
        ({"mon": ["12:00-08:00"]}, "opening_hours.mon[0]"),
        ({"mon": ["12:00-12:00"]}, "opening_hours.mon[0]"),
        ({"tue": ["08:00-12:00", "11:59-13:00"]}, "opening_hours.tue[1]"),
        ({"wed": "08:00-12:00"}, "opening_hours.wed"),
        ({"thu": [f"0{i}:00-0{i}:30" for i in range(9)]}, "opening_hours.thu"),
        ({"fri": [800]}, "opening_hours.fri[0]"),
        (["08:00-12:00"], "opening_hours"),
    ],
)
def test_unreadable_opening_hours_name_the_field(hours: Any, field: str) -> None:
    with pytest.raises(errors.InvalidSchedule) as caught:
        calendar.validate_hours(hours)
    assert caught.value.extra["field"] == field
    assert caught.value.message.startswith(field + ": ")


def test_unknown_states_are_refused() -> None:
    assert calendar.validate_state("BY") == "BY"
    assert calendar.validate_state(None) is None
    for wrong in ("XX", "by", "DE-BY", ""):
        with pytest.raises(errors.InvalidSchedule):
            calendar.validate_state(wrong)


@pytest.mark.parametrize(
    ("utc", "open_"),
    [
        # summer (CEST, UTC+2): 08:00-18:00 local is 06:00-16:00 UTC; start in, end out
        (datetime(2026, 7, 1, 5, 59, 59), False),
        (datetime(2026, 7, 1, 6, 0), True),
        (datetime(2026, 7, 1, 15, 59, 59), True),
        (datetime(2026, 7, 1, 16, 0), False),
        # winter (CET, UTC+1)
        (datetime(2026, 1, 14, 6, 59), False),
        (datetime(2026, 1, 14, 7, 0), True),
        (datetime(2026, 1, 14, 16, 59), True),
        (datetime(2026, 1, 14, 17, 0), False),
        # Saturday: closed all day
        (datetime(2026, 7, 4, 10, 0), False),
    ],
)
def test_opening_hours_either_side_of_the_edge(utc: datetime, open_: bool) -> None:
    assert calendar.is_open(WEEKDAYS_8_TO_18, None, utc) is open_


def test_midnight_and_the_local_weekday() -> None:
    late = {"fri": ["20:00-24:00"]}
    # Friday 23:59 in Berlin is Friday 21:59 UTC in summer; Saturday 00:00 local is closed
    assert calendar.is_open(late, None, datetime(2026, 7, 3, 21, 59))
    assert not calendar.is_open(late, None, datetime(2026, 7, 3, 22, 0))


def test_a_public_holiday_in_one_state_but_not_another() -> None:
    epiphany = datetime(2026, 1, 6, 10, 0)  # Tuesday; a holiday in Bavaria, not in Berlin
    assert not calendar.is_open(WEEKDAYS_8_TO_18, "BY", epiphany)
    assert calendar.is_open(WEEKDAYS_8_TO_18, "BE", epiphany)
    assert calendar.is_open(WEEKDAYS_8_TO_18, None, epiphany)
    # no opening hours: always open, except on a holiday of the state
    assert not calendar.is_open(None, "BY", epiphany)
    assert calendar.is_open(None, "BE", epiphany)
    women = datetime(2027, 3, 8, 10, 0)  # Monday; International Women's Day: Berlin only
    assert not calendar.is_open(None, "BE", women)
    assert calendar.is_open(None, "BY", women)


def test_the_holiday_is_the_local_date() -> None:
    # 2026-01-05 23:30 UTC is already 6 January in Berlin
    assert not calendar.is_open(None, "BY", datetime(2026, 1, 5, 23, 30))
    assert calendar.is_open(None, "BY", datetime(2026, 1, 5, 22, 59))
    assert calendar.is_open(None, "BY", datetime(2026, 1, 6, 23, 0))  # 7 January local


# --- through the API ---------------------------------------------------------------------------
BERLIN = {
    "name": "Berlin",
    "street": "Spree 1",
    "postal_code": "10117",
    "city": "Berlin",
    "area_code": "030",
}


def test_a_location_takes_opening_hours_and_a_state(api: Api) -> None:
    path = f"/api/v1/customers/{api.a}/locations"
    hours = {"mon": ["13:00-17:00", "08:00-12:00"], "sat": []}
    r = api.admin_a.post(path, json={**BERLIN, "opening_hours": hours, "state": "BE"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["opening_hours"] == {"mon": ["08:00-12:00", "13:00-17:00"]}
    assert body["state"] == "BE"
    location = body["id"]
    # a location made without them is always open and knows no holidays
    plain = api.admin_a.get(f"{path}/{api.loc_a}").json()
    assert (plain["opening_hours"], plain["state"]) == (None, None)

    r = api.admin_a.patch(f"{path}/{location}", json={"state": "BY", "city": "Berlin-Mitte"})
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["city"]) == ("BY", "Berlin-Mitte")
    assert r.json()["opening_hours"] == {"mon": ["08:00-12:00", "13:00-17:00"]}
    r = api.admin_a.patch(f"{path}/{location}", json={"opening_hours": None, "state": None})
    assert (r.json()["opening_hours"], r.json()["state"]) == (None, None)
    r = api.admin_a.patch(f"{path}/{location}", json={"opening_hours": {"sun": ["10:00-11:00"]}})
    assert r.json()["opening_hours"] == {"sun": ["10:00-11:00"]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"opening_hours": {"mon": ["18:00-08:00"]}}, "opening_hours.mon[0]"),
        ({"opening_hours": {"tue": ["08:00-12:00", "09:00-10:00"]}}, "opening_hours.tue[1]"),
        ({"opening_hours": {"wed": ["8-12"]}}, "opening_hours.wed[0]"),
    ],
)
def test_unreadable_opening_hours_are_422_invalid_schedule(
    api: Api, change: dict[str, Any], field: str
) -> None:
    path = f"/api/v1/customers/{api.a}/locations"
    r = api.admin_a.post(path, json={**BERLIN, **change})
    assert (r.status_code, error_code(r)) == (422, "invalid_schedule")
    assert r.json()["error"]["field"] == field
    r = api.admin_a.patch(f"{path}/{api.loc_a}", json=change)
    assert (r.status_code, error_code(r)) == (422, "invalid_schedule")
    assert api.admin_a.get(f"{path}/{api.loc_a}").json()["opening_hours"] is None


def test_location_changes_stay_inside_the_customer(api: Api) -> None:
    r = api.admin_b.patch(f"/api/v1/customers/{api.a}/locations/{api.loc_a}", json={"state": "BY"})
    assert (r.status_code, error_code(r)) == (403, "customer_scope_violation")
    r = api.admin_a.patch(f"/api/v1/customers/{api.a}/locations/{api.loc_b}", json={"state": "BY"})
    assert (r.status_code, error_code(r)) == (404, "not_found")
    r = api.admin_a.patch(f"/api/v1/customers/{api.a}/locations/{api.loc_a}", json={"state": "XX"})
    assert r.status_code == 422
    r = api.admin_a.patch(
        f"/api/v1/customers/{api.a}/locations/{api.loc_a}", json={"area_code": "030"}
    )
    assert (r.status_code, error_code(r)) == (422, "validation_failed")
