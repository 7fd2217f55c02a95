"""Billing days are days in Germany (Europe/Berlin): a month, a notice date, the day a licence
change or an option takes effect, the day a call is priced by. Timestamps in the database are
naive UTC; these convert between the two."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")


def local_day(utc: datetime) -> date:
    """The Berlin day of a naive UTC timestamp."""
    return utc.replace(tzinfo=UTC).astimezone(BERLIN).date()


def utc_start(day: date) -> datetime:
    """Berlin midnight at the start of ``day``, as naive UTC."""
    return datetime.combine(day, time(0), BERLIN).astimezone(UTC).replace(tzinfo=None)


def local_day_of_bucket(utc_day_plus_1h: date, late_evening: bool) -> date:
    """The Berlin day of calls grouped in SQL by the UTC date of (started_at + 1 hour) and by
    whether they started in the UTC hour 22 (the one hour whose Berlin day depends on summer
    time): at UTC+1 that hour is still the same day, at UTC+2 it is the next."""
    if not late_evening:
        return utc_day_plus_1h
    at = datetime.combine(utc_day_plus_1h, time(22), UTC)
    offset = at.astimezone(BERLIN).utcoffset() or timedelta(0)
    return utc_day_plus_1h + timedelta(days=1) if offset >= timedelta(hours=2) else utc_day_plus_1h
