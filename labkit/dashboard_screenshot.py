"""The operator's dashboard (a Prometheus console page of each site's monitor) as a picture, with
a call in progress so that the numbers are not all zero.

    make dashboard-screenshot  -> docs/observability/dashboard.png (needs the running lab)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .browser import chromium
from .devices import Devices, device_creds, extension_of
from .lab import SITES, load_tenant
from .leases import lease
from .monitoring import prometheus_url

DEVICES = lease("dashboard picture (make dashboard-screenshot)", caller=66, callee=67)


def main(out: str) -> int:
    tenant = load_tenant()
    (c_user, c_pw), (e_user, e_pw) = (
        device_creds(tenant, DEVICES[r]) for r in ("caller", "callee")
    )
    devices = Devices()
    try:
        callee, caller = devices.start("dash-fra", "fra"), devices.start("dash-ber", "ber")
        assert callee.register(e_user, e_pw, SITES["fra"]["proxies"][0]).startswith("200")
        callee.answer(port=5070)
        caller.sh(
            f"cd /tmp && (timeout 60 sipp {SITES['ber']['proxies'][0]} -sf /scen/call.xml "
            f"-s {extension_of(tenant, DEVICES['callee'])} -set caller {c_user} -set hold 30000 "
            f"-au {c_user} -ap '{c_pw}' -i {caller.ip} -p 5080 -m 1 -nostdin >/dev/null 2>&1 &)"
        )
        time.sleep(12)  # two scrapes with the call up
        url = f"{prometheus_url('fra')}/consoles/pbx.html"
        with chromium(fake_media=False) as browser:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(url)
            page.wait_for_selector("h1")
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=out, full_page=True)
        print(f"{out}: {url}")
    finally:
        devices.remove_all()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/observability/dashboard.png"))
