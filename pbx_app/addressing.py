"""The formats of numbers and SIP names, each defined once.

Every layer derives from these: the services' validation (compiled regexes), the API schema
(the same patterns, anchored), the ``kamailio_subscriber`` view (pbx_app.subscriber_view renders
the AOR expression from AOR_PREFIX and AOR_SEPARATOR) and Kamailio (pbx_infra.node_config
renders CARRIER_CALLER into node.cfg). Standard library only: the IaC layer imports it without
the app's dependencies.
"""

from __future__ import annotations

import re

# German emergency numbers (police 110, fire and ambulance 112). Dialled without an outside-line
# prefix, so no extension may carry them: routing sends them to the carrier, always.
EMERGENCY_NUMBERS = frozenset({"110", "112"})
# Dialled before a number, it withholds the caller's number on that call (CLIR per call); the
# proxies strip it to recognise an emergency call behind it (node.cfg PBX_PRIVACY_PREFIX).
PRIVACY_PREFIX = "#31#"

# Extension numbers: 2-8 digits, no leading 0 (a leading 0 is the outside line).
EXTENSION_NUMBER_PATTERN = r"[1-9][0-9]{1,7}"
# A German number in E.164: +49, then the area code without its 0, then the subscriber number.
GERMAN_E164_PATTERN = r"\+49[1-9][0-9]{4,12}"
# Geographic area codes (Ortsnetzkennzahlen): 0 + 2-5 digits, first digit 2-9. Excluded: 01x
# (mobile, services; outside the pattern), 032 (national numbers), 0700/0800/0900 (personal,
# freephone, premium).
AREA_CODE_PATTERN = r"0[2-9][0-9]{1,4}"
NON_GEOGRAPHIC_AREA_CODES = ("032", "0700", "0800", "0900")

# A device's SIP username (its digest user, the caller Kamailio names in a route query).
SIP_USERNAME_PATTERN = r"[a-z0-9][a-z0-9._-]{2,63}"
# The address of record of an extension (Kamailio registers all its devices under it):
# c<customer id>x<extension number>; extension numbers have no leading 0, so it is unique across
# customers. Device usernames may not take this shape.
AOR_PREFIX = "c"
AOR_SEPARATOR = "x"
AOR_PATTERN = f"{AOR_PREFIX}([1-9][0-9]{{0,9}}){AOR_SEPARATOR}({EXTENSION_NUMBER_PATTERN})"
AOR_SHAPE = f"{AOR_PREFIX}<customer>{AOR_SEPARATOR}<extension>"

# A device's MAC address as people and certificates write it (00:15:65:AA:BB:01, 0015.65aa.bb01,
# 001565aabb01); the platform keeps it as twelve lower-case hex digits (mac_digits).
MAC_PATTERN = r"[0-9A-Fa-f]{2}(?:[:.-]?[0-9A-Fa-f]{2}){5}"
MAC_SEPARATORS = re.compile(r"[:.-]")


def mac_digits(written: str) -> str:
    """The twelve lower-case hex digits of a MAC written in any of MAC_PATTERN's forms."""
    return MAC_SEPARATORS.sub("", written).lower()


# The caller name Kamailio uses for calls arriving from the carrier trunk (inbound DIDs); no
# device may take it.
CARRIER_CALLER = "carrier"
# The caller Kamailio names for a fax gateway's outgoing call: this prefix and the customer's
# fax number the call is made from (route[FROM_EFAX]).
FAX_CALLER_PREFIX = "fax:"


def aor(customer_id: int, extension_number: str) -> str:
    return f"{AOR_PREFIX}{customer_id}{AOR_SEPARATOR}{extension_number}"


def anchored(pattern: str) -> str:
    """The pattern for a whole value, as JSON Schema (the API) needs it."""
    return f"^{pattern}$"


def alternatives(values: frozenset[str] | tuple[str, ...]) -> str:
    """'110 or 112', '032, 0700, 0800 or 0900': for messages and API descriptions."""
    ordered = sorted(values)
    return ", ".join(ordered[:-1]) + " or " + ordered[-1] if len(ordered) > 1 else ordered[0]
