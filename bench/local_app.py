"""The app as the app benchmarks drive it: this checkout's pbx_app on a free loopback port, against
a throwaway PostgreSQL cluster (labkit/pg_cluster.py), or PBX_BENCH_DATABASE_URL when set."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from labkit import pg_cluster

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class LocalApp:
    env: dict[str, str]
    base_url: str
    database: str  # what the results say the app ran against
    server: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def cli(self, *args: str) -> str:
        """`python -m pbx_app <args>` against the same database; its standard output."""
        return subprocess.run(
            [sys.executable, "-m", "pbx_app", *args],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def serve(self, timeout: float = 30) -> str:
        """Start the HTTP server; return its base URL once /healthz answers."""
        self.server = subprocess.Popen(
            [sys.executable, "-m", "pbx_app", "serve"],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return self.base_url
            except httpx.HTTPError:
                pass
            if self.server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the app did not come up on {self.base_url}")
            time.sleep(0.1)


@contextmanager
def local_app(**settings: str) -> Iterator[LocalApp]:
    """A LocalApp with PBX_* `settings` on top of the database and listen address."""
    cluster = None
    url = os.environ.get("PBX_BENCH_DATABASE_URL")
    if not url:
        cluster = pg_cluster.ThrowawayCluster(durable=True)
        cluster.start()
        url = cluster.url()
    port = pg_cluster.free_port()
    env = {
        **os.environ,
        "PBX_DATABASE_URL": url,
        "PBX_LISTEN": f"127.0.0.1:{port}",
        "PBX_SECRET_KEY": "bench",
        **settings,
        "PYTHONPATH": str(ROOT),
    }
    database = "PBX_BENCH_DATABASE_URL" if cluster is None else "postgresql (throwaway, fsync on)"
    app = LocalApp(env, f"http://127.0.0.1:{port}", database)
    try:
        yield app
    finally:
        if app.server is not None:
            app.server.terminate()
            app.server.wait(timeout=30)
        if cluster is not None:
            cluster.stop()
