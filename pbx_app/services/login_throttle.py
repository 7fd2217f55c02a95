"""Login throttling, in the database so that every app node of both sites shares it.

Failed logins are counted under three keys; each key has a number of free failures, after which
each further failure blocks that key for twice as long as the last (1 s, 2 s, 4 s, ...) up to a
cap. While a key is blocked, logins under it get 429 with Retry-After and are not even checked
(no argon2 work for an attacker). A count starts over 15 minutes after its last failure.

- the account from this source: 5 free, capped at 15 min. A guesser at one address is slowed to
  a crawl, and the real user, elsewhere, does not notice it;
- the source (an IPv4 address, an IPv6 /64): 30 free (an office behind one NAT mistypes too),
  capped at 15 min: spraying one password over many accounts;
- the account from anywhere: 100 free, capped at 60 s: guessing spread over many addresses.
  This is the one key an attacker can push for the real user too, so its cap is short: an
  account is never locked, at worst its logins wait a minute.

A successful login clears the account's keys, not the source's (one valid account must not
buy a sprayer new attempts).
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from pbx_app.db import is_postgresql
from pbx_app.schema import login_throttle

WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class Rule:
    kind: str
    free_failures: int
    max_block: timedelta


ACCOUNT_FROM_SOURCE = Rule("account_source", 5, timedelta(minutes=15))
SOURCE = Rule("source", 30, timedelta(minutes=15))
ACCOUNT = Rule("account", 100, timedelta(seconds=60))


def source_of(address: str) -> str:
    """IPv6 clients get a /64 each: counting single addresses there would count nothing."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def keys(email: str, source: str) -> dict[str, Rule]:
    """The keys of one attempt. ``email`` as typed (normalised where it is an address)."""
    account = email[:254]
    return {
        f"{ACCOUNT_FROM_SOURCE.kind}:{account}|{source}": ACCOUNT_FROM_SOURCE,
        f"{SOURCE.kind}:{source}": SOURCE,
        f"{ACCOUNT.kind}:{account}": ACCOUNT,
    }


def retry_after(conn: Connection, attempt: dict[str, Rule], now: datetime) -> int:
    """Seconds until a login under these keys is looked at again; 0: now."""
    q = select(login_throttle.c.blocked_until).where(
        login_throttle.c.key.in_(list(attempt)), login_throttle.c.blocked_until > now
    )
    latest = max(conn.execute(q).scalars(), default=None)
    return 0 if latest is None else max(1, math.ceil((latest - now).total_seconds()))


def record_failure(conn: Connection, attempt: dict[str, Rule], now: datetime) -> int:
    """Counts the failure under each key; returns the longest block it started (seconds)."""
    longest = 0
    for key, rule in sorted(attempt.items()):  # one lock order for every node: no deadlocks
        failures = _count(conn, key, now)
        blocked = None
        if failures > rule.free_failures:
            doublings = min(failures - rule.free_failures - 1, 20)  # 2**20 s is past any cap
            block = min(timedelta(seconds=2**doublings), rule.max_block)
            blocked = now + block
            longest = max(longest, math.ceil(block.total_seconds()))
        conn.execute(
            update(login_throttle)
            .where(login_throttle.c.key == key)
            .values(failures=failures, last_failure_at=now, blocked_until=blocked)
        )
    return longest


def record_success(conn: Connection, attempt: dict[str, Rule]) -> None:
    accounts = [key for key, rule in attempt.items() if rule is not SOURCE]
    conn.execute(delete(login_throttle).where(login_throttle.c.key.in_(accounts)))


def _count(conn: Connection, key: str, now: datetime) -> int:
    """This failure's number under ``key``, the row locked (or created) for the update."""
    q = (
        select(login_throttle.c.failures, login_throttle.c.last_failure_at)
        .where(login_throttle.c.key == key)
        .with_for_update()
    )
    row = conn.execute(q).first()
    if row is None:
        # Another node's failure may create it at the same moment: then theirs counts first.
        insert = (postgresql.insert if is_postgresql(conn) else sqlite.insert)(login_throttle)
        conn.execute(
            insert.values(key=key, failures=0, last_failure_at=now).on_conflict_do_nothing()
        )
        row = conn.execute(q).one()
    if now - row.last_failure_at > WINDOW:
        return 1
    return int(row.failures) + 1
