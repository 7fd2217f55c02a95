"""A throwaway PostgreSQL cluster on a loopback TCP port, from the host's PostgreSQL binaries.

Used by the app tests and by the app benchmarks (bench/local_app.py). As root, the server runs
as the unprivileged `postgres` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


class PostgresBinariesMissing(RuntimeError):
    pass


def find_bindir() -> Path:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if not candidates:
        found = shutil.which("initdb")
        if found:
            return Path(found).resolve().parent
        raise PostgresBinariesMissing(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb). "
            "Install them with `apt-get install -y postgresql` (make test does this), or set "
            "PBX_TEST_DATABASE_URL to a server the tests may create databases on."
        )
    return Path(candidates[-1]).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayCluster:
    def __init__(self, *, durable: bool = False) -> None:
        self.bindir = find_bindir()
        self.port = free_port()
        self.durable = durable
        self.tmp = Path(tempfile.mkdtemp(prefix="pbx-pg-"))
        self.datadir = self.tmp / "data"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.tmp, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self._as_user, *args], check=True, capture_output=True, timeout=120, cwd=self.tmp
        )

    def start(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D", str(self.datadir),
            "-U", "postgres",
            "-A", "trust",
            "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip
        self.resume()

    def start_standby(self, primary: ThrowawayCluster) -> None:
        """A hot standby streaming from `primary` (a base backup with -R), read-only until
        promote(); initdb's trust rules already allow replication over 127.0.0.1."""
        self._run(
            str(self.bindir / "pg_basebackup"),
            "-h", "127.0.0.1",
            "-p", str(primary.port),
            "-U", "postgres",
            "-D", str(self.datadir),
            "-R",
            "-X", "stream",
            "--checkpoint=fast",
            "--no-sync",
        )  # fmt: skip
        self.resume()

    def resume(self) -> None:
        """Start the server (again, after halt()) on the same port and data."""
        options = [
            "-c", "listen_addresses=127.0.0.1",
            "-c", f"port={self.port}",
            "-c", f"unix_socket_directories={self.tmp}",
            "-c", "max_connections=200",
            "-c", "shared_buffers=128MB",
        ]  # fmt: skip
        if not self.durable:
            # Throwaway data: skip the disk flushes that only protect against power loss.
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
            options += ["-c", "full_page_writes=off"]
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D", str(self.datadir),
            "-l", str(self.tmp / "server.log"),
            "-o", " ".join(options),
            "-w",
            "start",
        )  # fmt: skip

    def halt(self) -> None:
        """Stop the server (fast: connections are terminated), keeping its data for resume()."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "stop")

    def promote(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-w", "promote")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        try:
            if (self.datadir / "postmaster.pid").exists():  # not halted
                self.halt()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
