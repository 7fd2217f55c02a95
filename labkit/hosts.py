"""The lab's stand-in hosts for the shell: `python -m labkit.hosts` prints them as bash
assignments for scripts/labhosts.sh to `eval`, from the one list in pbx_infra.inventory (the
Ansible inventory's lab hosts come from the same list)."""

from __future__ import annotations

import shlex
import sys

from pbx_infra.inventory import LAB_STAND_IN_NETWORK, LAB_STAND_INS

NETWORK, SUBNET = LAB_STAND_IN_NETWORK
STAND_INS = {site: name for site, (name, _) in LAB_STAND_INS.items()}
ADDRESSES = {site: address for site, (_, address) in LAB_STAND_INS.items()}


def shell_assignments() -> str:
    q = shlex.quote
    sites = " ".join(q(s) for s in LAB_STAND_INS)
    pairs = " ".join(f"[{q(s)}]={q(a)}" for s, a in ADDRESSES.items())
    names = " ".join(f"[{q(s)}]={q(n)}" for s, n in STAND_INS.items())
    return (
        f"NETWORK={q(NETWORK)}\nSUBNET={q(SUBNET)}\nSITES=({sites})\n"
        f"declare -A ADDRESS=({pairs})\ndeclare -A NAME=({names})\n"
    )


if __name__ == "__main__":
    sys.stdout.write(shell_assignments())
