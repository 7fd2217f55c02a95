"""Debian's Chromium, driven by Playwright, as the tests' real browser.

Nothing downloads a browser: Playwright launches /usr/bin/chromium (Debian's package, installed
by scripts/install-test-tools.sh). Each launch gets a fresh profile and a fresh NSS database in a
home directory of its own; given a CA, that database trusts it, so HTTPS and WSS to the lab are
verified as a user's browser would verify them (no ignored certificate errors). Fake media
devices stand in for a headset: the microphone is Chromium's test tone, and the permission
prompt is answered "allow".
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path(os.environ.get("PBX_CHROMIUM", "/usr/bin/chromium"))
# Without the background-networking switches Chromium calls home at start, which this
# machine's closed network refuses many times over; the rest keep a headless run quiet.
QUIET = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
)
FAKE_MEDIA = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")


def trust_store(home: Path, ca_pem: Path) -> None:
    """Chromium on Linux reads trust anchors from $HOME/.pki/nssdb (certutil, libnss3-tools)."""
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    db = f"sql:{nssdb}"
    for args in (
        ["-N", "--empty-password"],
        ["-A", "-t", "C,,", "-n", "pbx-lab-ca", "-i", str(ca_pem)],
    ):
        subprocess.run(["certutil", "-d", db, *args], check=True, capture_output=True)


def resolver_rules(hosts: Mapping[str, str]) -> str:
    """Chromium's --host-resolver-rules for names this machine's DNS does not know (the lab's
    names, e.g. the proxies' WSS URLs); everything else resolves as usual."""
    return ", ".join(f"MAP {name} {address}" for name, address in sorted(hosts.items()))


@contextmanager
def chromium(
    ca_pem: Path | None = None, *, fake_media: bool = True, hosts: Mapping[str, str] | None = None
) -> Iterator[Browser]:
    """A headless Chromium; contexts made from it trust `ca_pem` (if given), may use the
    microphone and resolve `hosts` (name -> address). Closed, with its profile, on exit."""
    with tempfile.TemporaryDirectory(prefix="pbx-chromium-") as tmp:
        home = Path(tmp)
        if ca_pem is not None:
            trust_store(home, ca_pem)
        args = [*QUIET, *(FAKE_MEDIA if fake_media else ())]
        if hosts:
            args.append(f"--host-resolver-rules={resolver_rules(hosts)}")
        env: dict[str, str | float | bool] = {**os.environ, "HOME": str(home)}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=args, env=env
            )
            try:
                yield browser
            finally:
                browser.close()
