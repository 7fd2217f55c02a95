"""The monitor's capture search (monitor/pbx-capture) over a store laid out as Kamailio's
sipcapture writes it: a call is found by its Call-ID, by any written form of a number, and
within a time window; bad input is refused with a message naming it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "monitor" / "pbx-capture"
T0 = 1_796_000_000  # seconds since the epoch


def run(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PBX_CAPTURE_DB": str(db)}
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True,
                          text=True, timeout=30)  # fmt: skip


def lines(result: subprocess.CompletedProcess[str]) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    db = tmp_path / "capture.db"
    assert run(db, "init").returncode == 0
    con = sqlite3.connect(db)
    rows = [
        # call-a: +49 69 1234567 calls extension 100; INVITE then its 200.
        ("call-a", T0, "INVITE", "", "+49691234567", "100", "100"),
        ("call-a", T0 + 1, "", "OK", "+49691234567", "100", ""),
        # call-b, an hour later: 100 calls 030 555 123 (national form).
        ("call-b", T0 + 3600, "INVITE", "", "100", "030555123", "030555123"),
    ]
    con.executemany(
        "INSERT INTO sip_capture (callid, micro_ts, method, reply_reason, from_user, to_user,"
        " ruri_user, msg) VALUES (?, ?, ?, ?, ?, ?, ?, 'SIP')",
        [(c, t * 1_000_000, m, r, f, to, ru) for c, t, m, r, f, to, ru in rows],
    )
    con.commit()
    return db


def test_a_call_is_found_by_its_call_id_in_time_order(store: Path) -> None:
    found = lines(run(store, "search", "--call-id", "call-a"))
    assert [(m["method"], m["reply_reason"]) for m in found] == [("INVITE", ""), ("", "OK")]
    assert lines(run(store, "search", "--call-id", "nobody")) == []


@pytest.mark.parametrize("number", ["+49691234567", "0049691234567", "0691234567", "49691234567"])
def test_every_written_form_of_a_number_finds_its_call(store: Path, number: str) -> None:
    assert [c["callid"] for c in lines(run(store, "calls", "--number", number))] == ["call-a"]


def test_a_national_number_finds_its_international_form(store: Path) -> None:
    assert [c["callid"] for c in lines(run(store, "calls", "--number", "+4930555123"))] == [
        "call-b"
    ]


def test_a_short_number_is_matched_as_written(store: Path) -> None:
    """An extension is not stripped of a leading 0 or 49 (too short to carry a prefix)."""
    assert {c["callid"] for c in lines(run(store, "calls", "--number", "100"))} == {
        "call-a",
        "call-b",
    }


def test_calls_are_listed_within_a_time_window(store: Path) -> None:
    since = str(T0 + 60)
    assert [c["callid"] for c in lines(run(store, "calls", "--since", since))] == ["call-b"]
    assert [c["callid"] for c in lines(run(store, "calls", "--until", since))] == ["call-a"]
    iso = "2026-12-01T00:00:00+00:00"  # after both
    assert lines(run(store, "calls", "--since", iso)) == []
    (call,) = lines(run(store, "calls", "--number", "0691234567"))
    assert (call["from_user"], call["to_user"], call["messages"]) == ("+49691234567", "100", 2)


def test_bad_input_is_refused_naming_it(store: Path) -> None:
    bad_time = run(store, "calls", "--since", "yesterday")
    assert bad_time.returncode == 2
    assert "not a time: 'yesterday'" in bad_time.stderr
    no_key = run(store, "search")
    assert no_key.returncode != 0
    assert "give --call-id or --number" in no_key.stderr
