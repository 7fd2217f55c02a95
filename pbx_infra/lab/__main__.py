"""`python -m pbx_infra.lab up|down|status` - the lab without the Pulumi CLI.

`up` runs the Pulumi program under Pulumi's mock interface, realises exactly what it declares on
the local Docker Engine, waits for every healthcheck, seeds the demo tenant and prints the table.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import secrets
import sys
import tarfile
import time
from typing import Any

import docker

from .. import topology
from ..node_config import provisioning_url
from ..platform import endpoints
from ..tls import lab_material, lab_vendor_cas
from ..topology import Platform, ServiceKind
from .declared import REPO, declare, stack_config
from .realise import Realiser, StaleData, health_of

LAB_DIR = REPO / ".lab"
APP_USER = "pbx"  # the app image's service user (its entrypoint drops to it; `exec` must too)
SECRET_KEYS = (
    "dbPassword",
    "dbReplicationPassword",
    "dbKamailioPassword",
    "dbRewindPassword",
    "appSecretKey",
    "internalApiToken",
    "sipAuthSecret",
    "credentialKeys",
)


def lab_secrets(platform: Platform) -> dict[str, Any]:
    """Generated once per checkout and kept in .lab/ (git-ignored): re-runs keep the same ones.

    The TLS material comes from the lab CA in .lab/tls/; production sets the same keys as
    Pulumi config secrets.
    """
    path = LAB_DIR / "secrets.json"
    LAB_DIR.mkdir(exist_ok=True)
    current: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [k for k in SECRET_KEYS if k not in current]
    if missing:
        current.update({k: _new_secret(k) for k in missing})
        path.write_text(json.dumps(current, indent=2))
        path.chmod(0o600)
    tls = lab_material(platform, LAB_DIR / "tls")
    return current | {
        "tlsCertificate": tls.certificate,
        "tlsPrivateKey": tls.private_key,
        "tlsCaCertificate": tls.ca_certificate,
        # Stand-in phone vendors' CAs: the lab's test phones carry device certificates of them.
        "vendorCaCertificates": lab_vendor_cas(LAB_DIR / "tls"),
    }


def _new_secret(key: str) -> str:
    if key == "credentialKeys":  # pbx_app.vault: <key id>:<secret>
        return f"k1:{secrets.token_urlsafe(32)}"
    return secrets.token_urlsafe(24)


def data_fingerprint(values: dict[str, Any]) -> str:
    """A short, non-reversible name for the secrets a database volume is initialised with."""
    keys = ("dbPassword", "dbReplicationPassword", "dbKamailioPassword", "dbRewindPassword")
    return hashlib.sha256("\0".join(values[k] for k in keys).encode()).hexdigest()[:16]


def load_platform(stack: str) -> Platform:
    config = stack_config(stack)
    return topology.load(json.loads(config["pbx:platform"]))


def up(stack: str, timeout: float, afresh_if_stale: bool = False) -> int:
    started = time.monotonic()
    platform = load_platform(stack)  # fails here, naming the key, before anything is created
    print(f"[1/4] declaring stack '{stack}' (Pulumi program under the mock monitor)", flush=True)
    secret_values = lab_secrets(platform)
    declared = declare(stack, stack_config(stack, secret_values))
    print(f"      {len(declared)} resources declared", flush=True)
    print("[2/4] realising on the local Docker Engine", flush=True)
    realiser = Realiser(data_fingerprint=data_fingerprint(secret_values))
    try:
        if afresh_if_stale:
            names = realiser.apply_afresh_if_stale(declared, platform.name)
        else:
            names = realiser.apply(declared)
    except StaleData as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("[3/4] waiting for healthchecks", flush=True)
    states = realiser.wait_healthy(names, timeout)
    print("[4/4] seeding the demo tenant", flush=True)
    unhealthy = {n: s for n, s in states.items() if s != "healthy"}
    demo = None if unhealthy else seed_demo(realiser.client, platform)
    print_table(realiser.client, platform)
    if unhealthy:
        for name, state in sorted(unhealthy.items()):
            print(f"NOT HEALTHY: {name} is {state}; see `docker logs {name}`", file=sys.stderr)
        return 1
    print(f"\nLab up in {time.monotonic() - started:.0f}s.")
    if demo:
        print_demo(demo)
    print_operator(platform)
    return 0


def seed_demo(client: docker.DockerClient, platform: Platform) -> dict[str, Any]:
    """Create (or keep) the demo tenant via the app's CLI; write .lab/demo-tenant.json."""
    app = client.containers.get(platform.instances(ServiceKind.PBX_APP)[0].container_name(platform))
    out = LAB_DIR / "demo-tenant.json"
    workdir = app.attrs["Config"]["WorkingDir"]  # the app user's own directory
    inside = f"{workdir}/demo-tenant.json"
    if out.exists():  # hand the previous credentials back so a re-run keeps them
        uid, gid = (int(app.exec_run(["id", flag], user=APP_USER).output) for flag in ("-u", "-g"))
        app.put_archive(workdir, _tar_one("demo-tenant.json", out.read_bytes(), uid, gid))
    result = app.exec_run(["python3", "-m", "pbx_app", "seed-demo", "--out", inside], user=APP_USER)
    if result.exit_code != 0:
        raise RuntimeError(f"seed-demo failed: {result.output.decode(errors='replace')}")
    stream, _ = app.get_archive(inside)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.extractfile("demo-tenant.json")
        assert member is not None
        demo: dict[str, Any] = json.loads(member.read())
    demo["proxies"] = proxy_addresses(platform)
    out.write_text(json.dumps(demo, indent=2))
    out.chmod(0o600)
    return demo


def proxy_addresses(platform: Platform) -> dict[str, dict[str, list[str]]]:
    ports = platform.ports
    result: dict[str, dict[str, list[str]]] = {}
    for site in platform.sites:
        proxies = platform.instances(ServiceKind.SIP_PROXY, site.name)
        result[site.name] = {
            "udp": [f"{p.address}:{ports.sip}" for p in proxies],
            "tcp": [f"{p.address}:{ports.sip}" for p in proxies],
            "tls": [f"{p.address}:{ports.sip_tls}" for p in proxies],
            "dns": [str(d.address) for d in platform.instances(ServiceKind.DNS, site.name)],
        }
    return result


def _tar_one(name: str, data: bytes, uid: int, gid: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o600
        info.uid, info.gid = uid, gid
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def print_table(client: docker.DockerClient, platform: Platform) -> None:
    rows = []
    for row in endpoints(platform):
        try:
            health = health_of(client.containers.get(str(row["container"])))
        except docker.errors.NotFound:
            health = "missing"
        rows.append(
            [
                str(row["site"]),
                str(row["service"]),
                str(row["container"]),
                health,
                "  ".join(row["endpoints"]),  # type: ignore[arg-type]
            ]
        )
    header = ["SITE", "SERVICE", "CONTAINER", "HEALTH", "ENDPOINTS"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print()
    for r in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip())


def print_demo(demo: dict[str, Any]) -> None:
    device = demo["devices"][0]
    fra = next(iter(demo["proxies"].values()))
    print(
        f"""
Demo tenant (also in .lab/demo-tenant.json):
  Portal       {demo["portal_url"]}  (trust .lab/tls/ca.pem, the lab CA, in the browser)
  API          {demo["api_base_url"]}
  Admin login  {demo["admin_email"]} / {demo["admin_password"]}
  Softphone    user {device["sip_username"]}  password {device["sip_password"]}
               domain {device["sip_domain"]}  proxy {fra["udp"][0]} (UDP/TCP), {fra["tls"][0]} (TLS)
               extension {device["extension"]}; {len(demo["devices"])} demo devices in all"""
    )


def print_operator(platform: Platform) -> None:
    """Where phones fetch their configuration and where an SRE looks (docs/observability.md)."""
    monitors = platform.instances(ServiceKind.MONITOR)
    print(f"""
Operator:
  Provisioning {provisioning_url(platform)}/prov/<file>  (phones; docs/provisioning.md)""")
    for m in monitors:
        print(
            f"  Dashboard    http://{m.reach}:{platform.ports.prometheus}/consoles/pbx.html"
            f"  ({m.site}; alerts http://{m.reach}:{platform.ports.alertmanager})"
        )
    print("  SIP capture  make capture NUMBER=<number>  |  make capture CALL_ID=<id> SVG=call.svg")


def down(stack: str) -> int:
    platform = load_platform(stack)
    Realiser().remove_platform(platform.name)
    return 0


def status(stack: str) -> int:
    platform = load_platform(stack)
    client = docker.from_env()
    print_table(client, platform)
    bad = [
        r["container"]
        for r in endpoints(platform)
        if _health(client, str(r["container"])) != "healthy"
    ]
    return 1 if bad else 0


def _health(client: docker.DockerClient, name: str) -> str:
    try:
        return health_of(client.containers.get(name))
    except docker.errors.NotFound:
        return "missing"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pbx_infra.lab", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--stack", default="lab")
    parser.add_argument("--timeout", type=float, default=420, help="seconds to wait for health")
    parser.add_argument(
        "--afresh-if-stale",
        action="store_true",
        help="up: replace a lab whose data was initialised with other secrets (make test)",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            return up(args.stack, args.timeout, args.afresh_if_stale)
        if args.command == "down":
            return down(args.stack)
        return status(args.stack)
    except topology.TopologyError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
