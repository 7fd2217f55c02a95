"""The product's limits, each with the requirement it comes from."""

from __future__ import annotations

from datetime import timedelta

# R14: at most 249,000 extensions per customer.
MAX_EXTENSIONS_PER_CUSTOMER = 249_000
# R15: at most 1,000 trunk lines / head numbers (Kopfnummern) per customer.
MAX_HEAD_NUMBERS_PER_CUSTOMER = 1_000
# R16: the base package always includes 5 extensions; more need booked licences.
BASE_PACKAGE_EXTENSIONS = 5
# R4: one device per extension; up to 3 with the Business Option (booked per extension).
DEVICES_PER_EXTENSION = 1
DEVICES_PER_EXTENSION_BUSINESS = 3
# R19: a trial account ends by itself after 30 days.
TRIAL_PERIOD = timedelta(days=30)
# R18: the base package needs 3 months notice before the end of its term.
BASE_PACKAGE_NOTICE_MONTHS = 3


def max_devices_per_extension(business_option: bool) -> int:
    return DEVICES_PER_EXTENSION_BUSINESS if business_option else DEVICES_PER_EXTENSION


def devices_phrase(count: int) -> str:
    """'1 device', '3 devices': for the messages that state the limit."""
    return f"{count} device{'' if count == 1 else 's'}"
