"""Opening hours and public holidays of a location (issue 13), for call rules by schedule.

Opening hours: per weekday (mon..sun) a list of intervals "HH:MM-HH:MM" in Europe/Berlin local
time, start inclusive, end exclusive ("24:00" ends at midnight); a weekday without intervals is
closed all day; no opening hours at all (None) means always open. Holidays: the German public
holidays of the location's state (python ``holidays``, pinned to Debian 13's 0.71); no state
means no holidays. ``is_open`` takes naive UTC, the representation of every timestamp here.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from pbx_app import errors

with warnings.catch_warnings():
    # holidays 0.x announces its 1.0 versioning on import; the version is pinned (0.71).
    warnings.simplefilter("ignore", DeprecationWarning)
    import holidays

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The 16 German states (ISO 3166-2:DE without "DE-"), as holidays.Germany knows them.
STATES = (
    "BB",
    "BE",
    "BW",
    "BY",
    "HB",
    "HE",
    "HH",
    "MV",
    "NI",
    "NW",
    "RP",
    "SH",
    "SL",
    "SN",
    "ST",
    "TH",
)
MAX_INTERVALS_PER_DAY = 8
INTERVAL_PATTERN = r"([01][0-9]|2[0-3]):([0-5][0-9])-(([01][0-9]|2[0-3]):([0-5][0-9])|24:00)"
_INTERVAL = re.compile(INTERVAL_PATTERN)

Hours = dict[str, list[str]]


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _span(interval: str) -> tuple[int, int]:
    start, end = interval.split("-")
    return _minutes(start), _minutes(end)


def validate_hours(value: Any, field: str = "opening_hours") -> Hours | None:
    """The opening hours in their stored form (days in week order, intervals sorted, closed
    days left out), or None (always open). Raises errors.InvalidSchedule naming the field."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise errors.InvalidSchedule("expected an object of weekdays (mon..sun)", field)
    unknown = sorted(str(k) for k in value if k not in WEEKDAYS)
    if unknown:
        raise errors.InvalidSchedule(
            f"unknown weekday {unknown[0]!r}; weekdays are {', '.join(WEEKDAYS)}",
            f"{field}.{unknown[0]}",
        )
    hours: Hours = {}
    for day in WEEKDAYS:
        intervals = value.get(day)
        if intervals is None:
            continue
        where = f"{field}.{day}"
        if isinstance(intervals, str) or not isinstance(intervals, Sequence):
            raise errors.InvalidSchedule('expected a list of intervals "HH:MM-HH:MM"', where)
        if len(intervals) > MAX_INTERVALS_PER_DAY:
            raise errors.InvalidSchedule(
                f"at most {MAX_INTERVALS_PER_DAY} intervals per day", where
            )
        spans = [(_check_interval(text, f"{where}[{i}]"), i) for i, text in enumerate(intervals)]
        spans.sort()
        for (earlier, _), (later, j) in pairwise(spans):
            if later[0] < earlier[1]:
                raise errors.InvalidSchedule(
                    "overlaps another interval of the day", f"{where}[{j}]"
                )
        if spans:
            hours[day] = [intervals[i] for _, i in spans]
    return hours


def _check_interval(text: Any, field: str) -> tuple[int, int]:
    if not isinstance(text, str) or not _INTERVAL.fullmatch(text):
        raise errors.InvalidSchedule(
            'expected "HH:MM-HH:MM" (00:00 to 24:00, Europe/Berlin), e.g. "08:00-17:30"', field
        )
    start, end = _span(text)
    if start >= end:
        raise errors.InvalidSchedule("the interval ends before it starts", field)
    return start, end


def validate_state(value: Any, field: str = "state") -> str | None:
    if value is None:
        return None
    if value not in STATES:
        raise errors.InvalidSchedule(f"not a German state code; one of {', '.join(STATES)}", field)
    return str(value)


def dumps(hours: Hours | None) -> str | None:
    return None if hours is None else json.dumps(hours, separators=(",", ":"))


@lru_cache(maxsize=1024)
def loads(text: str | None) -> Hours | None:
    """Stored opening hours (read on every schedule decision: cached by their text). Treat
    the result as read-only."""
    if text is None:
        return None
    value: Hours = json.loads(text)
    return value


@lru_cache(maxsize=256)
def _holidays(state: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("DE", subdiv=state, years=year))


def is_holiday(state: str | None, day: date) -> bool:
    return state is not None and day in _holidays(state, day.year)


def local_time(at: datetime) -> datetime:
    """Naive UTC to Europe/Berlin."""
    return at.replace(tzinfo=UTC).astimezone(BERLIN)


def is_open(hours: Hours | None, state: str | None, at: datetime) -> bool:
    """Whether a location with these opening hours (None: always) in this state (None: no
    holidays) is open at ``at`` (naive UTC)."""
    local = local_time(at)
    if is_holiday(state, local.date()):
        return False
    if hours is None:
        return True
    minute = local.hour * 60 + local.minute
    for interval in hours.get(WEEKDAYS[local.weekday()], ()):
        start, end = _span(interval)
        if start <= minute < end:
            return True
    return False
