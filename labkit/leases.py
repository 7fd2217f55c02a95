"""Demo device leases: which suite uses which of the demo tenant's devices.

Every suite that drives the lab's demo devices (a test module, a benchmark, `make callflow`)
claims them here, by index into `.lab/demo-tenant.json` and with a role name for each:

    DEVICES = lease("carrier trunk", national=51, emergency=52, did_callee=53)
    user, password = device_creds(tenant, DEVICES["national"])

A device claimed by two suites is a LeaseConflict at import, naming both suites and roles: a test
run (which imports every collected module) fails at collection instead of two suites sharing a
phone's bindings, bans or contact limit. tests/labkit/test_leases.py imports every claimant,
the benchmark and `make callflow` included, so that no pair of them goes unchecked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

DEMO = "devices"  # the demo customer (Business Option: three devices per extension)
OTHER = "other_devices"  # the other customer (no Business Option)


class LeaseConflict(RuntimeError):
    """Two suites claimed the same demo device."""


@dataclass(frozen=True)
class Lease:
    """One suite's demo devices: role -> index (or indexes) into tenant[key]."""

    purpose: str
    key: str
    roles: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def __getitem__(self, role: str) -> int:
        (index,) = self.roles[role]
        return index

    def many(self, role: str) -> tuple[int, ...]:
        return self.roles[role]

    @property
    def indexes(self) -> list[int]:
        return [i for indexes in self.roles.values() for i in indexes]


@dataclass
class Registry:
    """Every claim made in this process: (tenant key, index) -> (purpose, role). The same
    claim made again (a module imported twice) is no conflict."""

    held: dict[tuple[str, int], tuple[str, str]] = field(default_factory=dict)

    def claim(self, purpose: str, key: str, roles: dict[str, int | Sequence[int]]) -> Lease:
        lease = Lease(purpose, key, {r: _indexes(i) for r, i in roles.items()})
        wanted = {(key, i): (purpose, r) for r, indexes in lease.roles.items() for i in indexes}
        if len(wanted) != len(lease.indexes):
            raise LeaseConflict(f"{purpose!r} claims one of its {key} twice: {lease.roles}")
        clashes = [
            f"{k}[{i}]: {held[0]!r} ({held[1]}) and {purpose!r} ({role})"
            for (k, i), (_, role) in sorted(wanted.items())
            if (held := self.held.get((k, i))) is not None and held != (purpose, role)
        ]
        if clashes:
            raise LeaseConflict("demo devices claimed twice:\n  " + "\n  ".join(clashes))
        self.held |= wanted
        return lease

    def release(self, purpose: str) -> None:
        self.held = {k: v for k, v in self.held.items() if v[0] != purpose}


def _indexes(value: int | Sequence[int]) -> tuple[int, ...]:
    found = (value,) if isinstance(value, int) else tuple(value)
    if not found or any(i < 0 for i in found):
        raise LeaseConflict(f"not device indexes: {value!r}")
    return found


REGISTRY = Registry()


def lease(purpose: str, key: str = DEMO, **roles: int | Sequence[int]) -> Lease:
    """Claim demo devices for `purpose` (a suite): role=index or role=indexes."""
    return REGISTRY.claim(purpose, key, roles)
