"""The operator's price list (R16, R17): what a document holds, its checks, and the price of a
base package, a licence and a call under it.

A price list is a JSON document with the first day it is in force (``valid_from``); the list in
force on a day is the one with the latest ``valid_from`` on or before it. Lists in force are never
edited (invoices already issued keep their own lines anyway): a price change is a new list from a
later day. Money is in euro cents: whole cents for monthly prices and fees, and cents with up to
four decimals for minute prices; an invoice line is rounded once, half up, to whole cents
(pbx_app.invoicing).

What the seed fixes and this module's default list holds: the base package with 5 extensions at
35-59 EUR by tariff, lowered with mobile to as little as 25.20 EUR and with All-IP to 50 EUR, and
further extensions from 6.80 EUR in Basic; calls priced by the tariff's minute prices or a flat
rate, from abroad at no extra cost (the price depends on the number dialled, not on where the
device is). Every other figure in DEFAULT is the operator's to set (docs/architecture.md, R16).
"""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

TariffName = Literal["basic", "standard", "premium"]
DiscountName = Literal["mobile", "all_ip"]
CtiLevel = Literal["none", "standard", "premium"]
Cents = Annotated[int, Field(ge=0, le=100_000_000)]
MinuteCents = Annotated[Decimal, Field(ge=0, le=100_000, max_digits=10, decimal_places=4)]
ZoneName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
# An E.164 prefix: "+" alone matches every number the others do not.
Prefix = Annotated[str, StringConstraints(pattern=r"^\+[0-9]{0,14}$")]

# Dialled numbers that are never charged (R: emergency calls are free, from any device).
EMERGENCY = "emergency"


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Increment(_Doc):
    """Billed seconds of a call: the first increment in full, then whole further increments;
    60/60 is per minute, 1/1 per second, 60/1 a minute first and then per second."""

    first_seconds: int = Field(ge=1, le=3600)
    next_seconds: int = Field(ge=1, le=3600)

    def billed_seconds(self, talk_seconds: int) -> int:
        if talk_seconds <= 0:
            return 0
        if talk_seconds <= self.first_seconds:
            return self.first_seconds
        rest = talk_seconds - self.first_seconds
        return self.first_seconds + math.ceil(rest / self.next_seconds) * self.next_seconds


class Tariff(_Doc):
    base_package_cents: Cents = Field(description="per month, the base package's 5 extensions")
    per_extension_cents: Cents = Field(description="per month, each extension beyond the 5")
    minute_cents: dict[ZoneName, MinuteCents] = Field(
        description="per minute, for every zone of the list"
    )


class Discount(_Doc):
    base_package_off_cents: Cents = Field(description="off the base package per month")


class FlatRate(_Doc):
    per_extension_cents: Cents = Field(description="per booked extension and month")
    zones: list[ZoneName] = Field(min_length=1, description="calls to these zones cost nothing")


class Zone(_Doc):
    name: ZoneName
    prefixes: list[Prefix] = Field(min_length=1)
    # Premium-rate and other service numbers: refused unless the customer allows them.
    refused_unless_allowed: bool = False


class Options(_Doc):
    business_option_per_extension_cents: Cents
    cti_standard_cents: Cents = Field(description="per customer and month")
    cti_premium_cents: Cents = Field(description="per customer and month")
    efax_cents: Cents = Field(description="per customer and month")
    # Lists written before pages were priced carry none: their pages are counted, at 0 ct.
    fax_page_cents: Cents = Field(
        default=0, description="per fax page sent; pages received included"
    )


class PriceListDoc(_Doc):
    vat_percent: Decimal = Field(ge=0, le=100, max_digits=5, decimal_places=2)
    activation_fee_cents: Cents = Field(description="once per licence above the high-water mark")
    increment: Increment
    tariffs: dict[TariffName, Tariff]
    discounts: dict[DiscountName, Discount]
    options: Options
    flat_rates: dict[ZoneName, FlatRate]
    zones: list[Zone] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> PriceListDoc:
        names = [z.name for z in self.zones]
        if len(set(names)) != len(names) or EMERGENCY in names:
            raise ValueError(f"zones: names must be unique and not {EMERGENCY!r}")
        prefixes = [p for z in self.zones for p in z.prefixes]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError("zones: a prefix belongs to one zone only")
        if set(self.tariffs) != {"basic", "standard", "premium"}:
            raise ValueError("tariffs: basic, standard and premium must all be priced")
        if "+" not in prefixes:
            raise ValueError('zones: one zone must hold the prefix "+" (every other number)')
        for tariff_name, tariff in self.tariffs.items():
            if set(tariff.minute_cents) != set(names):
                unknown = sorted(set(tariff.minute_cents) - set(names))
                missing = sorted(set(names) - set(tariff.minute_cents))
                raise ValueError(
                    f"tariffs.{tariff_name}.minute_cents: every zone needs a price "
                    f"(unknown: {unknown}, missing: {missing})"
                )
        for flat_name, flat in self.flat_rates.items():
            strangers = sorted(set(flat.zones) - set(names))
            if strangers:
                raise ValueError(f"flat_rates.{flat_name}.zones: unknown zones {strangers}")
        return self

    # --- the prices -----------------------------------------------------------------------
    def base_package_cents(self, tariff: str, discounts: frozenset[str]) -> int:
        """Discounts combine; the base package never costs less than nothing."""
        off = sum(
            self.discounts[d].base_package_off_cents for d in discounts if d in self.discounts
        )
        return max(0, self.tariffs[tariff].base_package_cents - off)  # type: ignore[index]

    def monthly_licences_cents(self, tariff: str, discounts: frozenset[str], booked: int) -> int:
        """The base package with its 5 extensions and each booked extension beyond them."""
        further = max(0, booked - 5)
        per_extension = self.tariffs[tariff].per_extension_cents  # type: ignore[index]
        return self.base_package_cents(tariff, discounts) + per_extension * further

    def zone_of(self, number: str) -> Zone | None:
        """The zone of an E.164 number by its longest matching prefix; None: no zone holds it."""
        best: Zone | None = None
        length = -1
        for zone in self.zones:
            for prefix in zone.prefixes:
                if number.startswith(prefix) and len(prefix) > length:
                    best, length = zone, len(prefix)
        return best

    def minute_price(self, tariff: str, zone: str) -> Decimal | None:
        return self.tariffs[tariff].minute_cents.get(zone)  # type: ignore[index]


class PriceList(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    valid_from: date
    doc: PriceListDoc


def in_force(lists: list[PriceList], day: date) -> PriceList | None:
    """The list in force on ``day``: the latest ``valid_from`` on or before it."""
    candidates = [p for p in lists if p.valid_from <= day]
    return max(candidates, key=lambda p: p.valid_from) if candidates else None


_GERMAN_MOBILE = ["+4915", "+4916", "+4917"]
_GERMAN_SERVICE = ["+49900", "+49180", "+49137", "+49118", "+49700"]
_GERMAN_FREEPHONE = ["+49800"]
_EUROPE = [
    "+30", "+31", "+32", "+33", "+34", "+351", "+352", "+353", "+354", "+356", "+357", "+358",
    "+359", "+36", "+370", "+371", "+372", "+385", "+386", "+39", "+40", "+41", "+420", "+421",
    "+423", "+43", "+44", "+45", "+46", "+47", "+48",
]  # fmt: skip

# The list the platform starts with (migration 0009 stores it from 2000-01-01): the seed's base
# package and Basic extension prices; every other figure is a placeholder for the operator's own.
DEFAULT = PriceListDoc(
    vat_percent=Decimal("19"),
    activation_fee_cents=990,
    increment=Increment(first_seconds=60, next_seconds=60),
    tariffs={
        "basic": Tariff(
            base_package_cents=3500,
            per_extension_cents=680,
            minute_cents={
                "national": Decimal("1.9"),
                "mobile": Decimal("12.9"),
                "europe": Decimal("4.9"),
                "world": Decimal("29.9"),
                "service": Decimal("99"),
                "freephone": Decimal("0"),
            },
        ),
        "standard": Tariff(
            base_package_cents=4700,
            per_extension_cents=880,
            minute_cents={
                "national": Decimal("1.5"),
                "mobile": Decimal("9.9"),
                "europe": Decimal("3.9"),
                "world": Decimal("24.9"),
                "service": Decimal("99"),
                "freephone": Decimal("0"),
            },
        ),
        "premium": Tariff(
            base_package_cents=5900,
            per_extension_cents=1080,
            minute_cents={
                "national": Decimal("0.9"),
                "mobile": Decimal("6.9"),
                "europe": Decimal("2.9"),
                "world": Decimal("19.9"),
                "service": Decimal("99"),
                "freephone": Decimal("0"),
            },
        ),
    },
    # "bis auf 25,20" with mobile: Basic's 35.00 less 9.80; "auf 50" with All-IP: Premium's
    # 59.00 less 9.00. Booked together, both come off.
    discounts={
        "mobile": Discount(base_package_off_cents=980),
        "all_ip": Discount(base_package_off_cents=900),
    },
    options=Options(
        business_option_per_extension_cents=300,
        cti_standard_cents=990,
        cti_premium_cents=1990,
        efax_cents=490,
    ),
    flat_rates={
        "national": FlatRate(per_extension_cents=490, zones=["national"]),
        "national_mobile": FlatRate(per_extension_cents=1490, zones=["national", "mobile"]),
    },
    zones=[
        Zone(name="national", prefixes=["+49"]),
        Zone(name="mobile", prefixes=_GERMAN_MOBILE),
        Zone(name="service", prefixes=_GERMAN_SERVICE, refused_unless_allowed=True),
        Zone(name="freephone", prefixes=_GERMAN_FREEPHONE),
        Zone(name="europe", prefixes=_EUROPE),
        Zone(name="world", prefixes=["+"]),
    ],
)
