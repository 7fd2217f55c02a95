"""The one rule for names people see (display names on phones and in caller ID, customer,
location and user names): API and import paths both apply it."""

from __future__ import annotations

import unicodedata

NOT_PRINTABLE = (
    "must be printable: no control, bidirectional-override, zero-width or line-separator characters"
)


def require_printable(value: str) -> str:
    """What str.isprintable() refuses (categories C* and Z* apart from the plain space): control
    characters, format characters such as right-to-left overrides and zero-width joiners that
    make a name display as something else, line and paragraph separators, unassigned code
    points."""
    if not value.isprintable():
        raise ValueError(NOT_PRINTABLE)
    return value


def require_no_control(value: str) -> str:
    """For secrets (passwords, tokens), which nobody displays: only control characters,
    surrogates and unassigned code points are refused."""
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn"):
            raise ValueError("control characters and unassigned code points are not allowed")
    return value
