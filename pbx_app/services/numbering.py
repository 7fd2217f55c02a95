"""German numbering rules: area codes and geographic numbers (R13)."""

from __future__ import annotations

import re

from pbx_app import errors
from pbx_app.addressing import AREA_CODE_PATTERN, GERMAN_E164_PATTERN, NON_GEOGRAPHIC_AREA_CODES

_AREA_CODE = re.compile(AREA_CODE_PATTERN)
GERMAN_E164 = re.compile(GERMAN_E164_PATTERN)


def validate_area_code(area_code: str) -> str:
    if not _AREA_CODE.fullmatch(area_code) or area_code.startswith(NON_GEOGRAPHIC_AREA_CODES):
        raise errors.InvalidAreaCode(
            f"{area_code!r} is not a German geographic area code "
            "(R13: numbers are bound to an area)"
        )
    return area_code


def validate_e164(number: str) -> str:
    if not GERMAN_E164.fullmatch(number):
        raise errors.NumberAreaMismatch(
            f"{number!r} is not a German geographic number in E.164 form (+49...)"
        )
    return number


def in_area(number: str, area_code: str) -> bool:
    """German area codes are prefix-free, so a prefix match decides the area."""
    return number.startswith("+49" + area_code[1:])


def require_in_area(number: str, area_code: str, location_name: str) -> None:
    validate_e164(number)
    if not in_area(number, area_code):
        raise errors.NumberAreaMismatch(
            f"{number} is not in area {area_code} of location {location_name!r}; geographic "
            "numbers are bound to their area and need a location there (R13)"
        )


def block_digits(block_size: int) -> int:
    return {1: 0, 10: 1, 100: 2, 1000: 3, 10000: 4}[block_size]


# Dialled public numbers: E.164 (+49..., any country), international (00...), national (0...).
_DIALLED_E164 = re.compile(r"\+([1-9][0-9]{6,14})")
_DIALLED_INTERNATIONAL = re.compile(r"00([1-9][0-9]{6,14})")
_DIALLED_NATIONAL = re.compile(r"0([1-9][0-9]{5,12})")
GERMANY = "49"


def dialled_to_e164(dialled: str) -> str | None:
    """``+4969123456``, ``004969123456`` and ``069123456`` all give ``+4969123456``; anything
    else (too short or long, letters, an extension number) gives None."""
    for pattern, prefix in (
        (_DIALLED_E164, "+"),
        (_DIALLED_INTERNATIONAL, "+"),
        (_DIALLED_NATIONAL, "+" + GERMANY),
    ):
        match = pattern.fullmatch(dialled)
        if match:
            number = prefix + match.group(1)
            return number if len(number) <= 16 else None
    return None
