"""Run the Ansible host roles for real: playbooks against the stand-in hosts, ansible-lint.

A missing prerequisite (docker, ansible-playbook, ansible-lint, the stand-in hosts) is a test
failure, never a skip: these tests are the proof that the roles converge and are idempotent.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from labkit import hosts

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
LABHOSTS = REPO / "scripts" / "labhosts.sh"
STAND_INS = tuple(hosts.STAND_INS.values())
FRA_HOST, BER_HOST = hosts.STAND_INS["fra"], hosts.STAND_INS["ber"]
FRA_ADDRESS, BER_ADDRESS = hosts.ADDRESSES["fra"], hosts.ADDRESSES["ber"]

_RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Recap:
    ok: int
    changed: int
    unreachable: int
    failed: int


@dataclass(frozen=True)
class PlaybookRun:
    returncode: int
    output: str
    recap: dict[str, Recap]

    def describe(self) -> str:
        return f"rc={self.returncode}\n{self.output[-6000:]}"


def tool(name: str) -> str:
    path = VENV_BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (pip install -r requirements/ansible.txt)")
    return found


def ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def run_playbook(playbook: str, inventory: str, *extra: str, timeout: int = 900) -> PlaybookRun:
    proc = subprocess.run(
        [tool("ansible-playbook"), "-i", inventory, playbook, *extra],
        cwd=REPO,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = proc.stdout + proc.stderr
    recap = {
        m["host"]: Recap(int(m["ok"]), int(m["changed"]), int(m["unreachable"]), int(m["failed"]))
        for m in _RECAP.finditer(output)
    }
    return PlaybookRun(proc.returncode, output, recap)


def docker(*args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def in_host(container: str, *argv: str, timeout: int = 60) -> subprocess.CompletedProcess[str]:
    return docker("exec", container, *argv, timeout=timeout)


@pytest.fixture(scope="session")
def stand_in_hosts() -> Iterator[tuple[str, ...]]:
    """Fresh stand-in hosts for the session (the first run must start from a bare image)."""
    if shutil.which("docker") is None:
        pytest.fail("docker CLI missing: the stand-in hosts need the local Docker Engine")
    if docker("info").returncode != 0:
        pytest.fail("Docker Engine not reachable: run `make host` (playbooks/docker_hosts.yml)")
    env = {**os.environ, "PYTHON": sys.executable}  # the script reads the stand-ins with it
    subprocess.run([str(LABHOSTS), "down"], check=False, capture_output=True, timeout=120, env=env)
    up = subprocess.run(
        [str(LABHOSTS), "up"], check=False, capture_output=True, text=True, timeout=600, env=env
    )
    if up.returncode != 0:
        pytest.fail(f"scripts/labhosts.sh up failed:\n{up.stdout}\n{up.stderr}")
    yield STAND_INS
    subprocess.run([str(LABHOSTS), "down"], check=False, capture_output=True, timeout=120, env=env)
