"""The files phones ask for, by vendor: which file names mean which MAC, and the configuration
rendered for one device (templates in pbx_app/provisioning_templates/).

A format is what a vendor's firmware reads: Yealink's `.cfg` (key = value), Snom's XML
settings, Grandstream's `<gs_provision>` P-values (its phones and its HT8xx ATAs alike), and a
generic JSON for everything else a certified model needs.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import jinja2

TEMPLATES = Path(__file__).with_name("provisioning_templates")


@dataclass(frozen=True)
class Format:
    """What one vendor's firmware reads."""

    asks_for: re.Pattern[str]  # the file names it asks for; the MAC in lower case
    file: str  # the name the platform gives a device's file, "{mac}" in it
    template: str | None  # in provisioning_templates/; None: the profile as JSON
    content_type: str


# Matched in this order (a MAC in upper case is folded first, as phones send it lower case).
_FORMATS = {
    "yealink": Format(
        re.compile(r"(?P<mac>[0-9a-f]{12})\.cfg"),
        "{mac}.cfg",
        "yealink.cfg.j2",
        "text/plain; charset=utf-8",
    ),
    "snom": Format(
        re.compile(r"(?:snom[a-z0-9]*-)?(?P<mac>[0-9a-f]{12})\.xml"),
        "{mac}.xml",
        "snom.xml.j2",
        "application/xml",
    ),
    "grandstream": Format(
        re.compile(r"cfg(?P<mac>[0-9a-f]{12})(?:\.xml)?"),
        "cfg{mac}.xml",
        "grandstream.xml.j2",
        "application/xml",
    ),
    "generic": Format(
        re.compile(r"(?P<mac>[0-9a-f]{12})\.json"), "{mac}.json", None, "application/json"
    ),
}
# The API's spelling of the same names (a Literal: the schema lists them); tested equal.
FormatName = Literal["yealink", "snom", "grandstream", "generic"]
FORMATS: tuple[str, ...] = tuple(_FORMATS)
# What a customer's phones may be set to: the zones and languages every supported vendor names.
TimeZoneName = Literal[
    "Europe/Berlin", "Europe/Vienna", "Europe/Zurich", "Europe/Amsterdam", "Europe/London"
]
LanguageCode = Literal["de", "en"]
# The time zones customers may choose; each vendor names them its own way.
TIME_ZONES = {
    # IANA name: (Yealink time_zone_name, Snom timezone)
    "Europe/Berlin": ("Germany(Berlin)", "GER+1"),
    "Europe/Vienna": ("Austria(Vienna)", "AUT+1"),
    "Europe/Zurich": ("Switzerland(Bern)", "CHE+1"),
    "Europe/Amsterdam": ("Netherlands(Amsterdam)", "NLD+1"),
    "Europe/London": ("United Kingdom(London)", "GBR-0"),
}
LANGUAGES = {"de": ("German", "Deutsch"), "en": ("English", "English")}


@dataclass(frozen=True)
class Server:
    host: str  # a site's SIP name: SRV records of its own, that site first
    port: int


@dataclass(frozen=True)
class Account:
    line: int
    label: str
    display_name: str
    user: str
    password: str
    domain: str  # the registrar domain (the device's realm)
    proxies: tuple[Server, ...]  # home site first
    srtp_required: bool


@dataclass(frozen=True)
class Profile:
    mac: str
    model: str
    label: str
    accounts: tuple[Account, ...]
    time_zone: str  # IANA
    language: str  # de | en
    firmware_url: str | None
    provisioning_url: str  # where the phone comes back to (with the credentials below)
    provisioning_user: str
    provisioning_password: str


def parse_file(name: str) -> tuple[str, str] | None:
    """(format, MAC) for a file name a phone asked for, or None."""
    lowered = name.lower()
    for fmt, spec in _FORMATS.items():
        found = spec.asks_for.fullmatch(lowered)
        if found:
            return fmt, found["mac"]
    return None


def file_name(fmt: str, mac: str) -> str:
    return _FORMATS[fmt].file.format(mac=mac)


def utc_offset_hours(time_zone: str) -> str:
    """The zone's standard offset as Yealink writes it: "+1", "-3:30"."""
    jan = datetime(2025, 1, 15, tzinfo=zoneinfo.ZoneInfo(time_zone)).utcoffset()
    assert jan is not None
    minutes = int(jan.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h}" + (f":{m:02d}" if m else "")


def posix_tz(time_zone: str) -> str:
    """The POSIX TZ rule (with daylight saving) Grandstream takes, read from the tz database's
    own file: its footer line is that rule ("CET-1CEST,M3.5.0,M10.5.0/3")."""
    for base in zoneinfo.TZPATH:
        path = Path(base) / time_zone
        if path.is_file():
            return path.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[-1].decode()
    raise ValueError(f"time zone {time_zone!r} is not in the tz database")


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=jinja2.select_autoescape(enabled_extensions=("xml.j2",)),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
# key = value files end a value at the line's end: no value may carry a line break into them.
_env.filters["line"] = lambda value: re.sub(r"[\r\n]+", " ", str(value))


def render(fmt: str, profile: Profile) -> tuple[str, str]:
    """The configuration file and its content type."""
    spec = _FORMATS[fmt]
    if spec.template is None:
        return json.dumps(asdict(profile), indent=2) + "\n", spec.content_type
    yealink_tz, snom_tz = TIME_ZONES[profile.time_zone]
    yealink_lang, snom_lang = LANGUAGES[profile.language]
    values = {
        "p": profile,
        "tz_offset": utc_offset_hours(profile.time_zone),
        "tz_yealink": yealink_tz,
        "tz_snom": snom_tz,
        "tz_posix": posix_tz(profile.time_zone),
        "lang_yealink": yealink_lang,
        "lang_snom": snom_lang,
    }
    return _env.get_template(spec.template).render(values), spec.content_type
