"""Phones fetching their configuration in the lab, as the real ones do: from a test device on a
site network, by the provisioning name its site's DNS resolves, over HTTPS checked against the
lab CA, with a vendor's User-Agent and (optionally) a device certificate the lab's stand-in
vendor CA signed (CN = the MAC, as Snom's and Yealink's factory certificates carry it)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .devices import Device
from .lab import LAB_DIR, PLATFORM, PORTS

VENDOR_CAS = LAB_DIR / "tls"  # vendor-ca-<vendor>.pem/.key (pbx_infra.tls.lab_vendor_cas)
PROVISIONING_URL = f"https://{PLATFORM.provisioning_name}:{PORTS.provisioning}/prov/"

# In the device: one GET, printing {"status", "body"} (a failed TLS handshake: status 0).
_FETCH = r"""
import json, ssl, sys, urllib.error, urllib.request
url, ua, cert, key, auth = sys.argv[1:6]
ctx = ssl.create_default_context(cafile="/ca.pem")
if cert:
    ctx.load_cert_chain(cert, key)
req = urllib.request.Request(url, headers={"User-Agent": ua})
if auth:
    req.add_header("Authorization", "Basic " + auth)
try:
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        out = {"status": r.status, "body": r.read().decode()}
except urllib.error.HTTPError as e:
    out = {"status": e.code, "body": e.read().decode()}
except (ssl.SSLError, urllib.error.URLError, ConnectionError) as e:
    out = {"status": 0, "body": str(e)}
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Fetched:
    status: int
    body: str


def device_certificate(
    mac: str,
    directory: Path,
    vendor: str,
    trusted: bool = True,
    *,
    common_name: str = "",
    cas: Path = VENDOR_CAS,
) -> tuple[Path, Path]:
    """A phone's device certificate and key for `mac` (12 hex digits) in `directory`, signed by
    the CA of `vendor` in `cas` (pbx_infra.tls.lab_vendor_cas), or by a CA nobody configured
    (`trusted=False`). Its CN is the MAC in upper case, as Snom and Yealink write it, unless
    `common_name` says otherwise."""
    if trusted:
        ca = cas / f"vendor-ca-{vendor}"
        ca_key = serialization.load_pem_private_key(
            ca.with_suffix(".key").read_bytes(), password=None
        )
        ca_name = x509.load_pem_x509_certificate(ca.with_suffix(".pem").read_bytes()).subject
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unknown vendor CA")])
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or mac.upper())])
        )
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    stem = directory / f"{mac}-{vendor if trusted else 'untrusted'}"
    cert_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def fetch(
    device: Device,
    url: str,
    user_agent: str,
    certificate: tuple[Path, Path] | None = None,
    basic_auth: tuple[str, str] | None = None,
) -> Fetched:
    """GET `url` from inside `device`, as a phone there would."""
    files = ""
    cert = key = ""
    if certificate is not None:
        cert, key = f"/tmp/{certificate[0].name}", f"/tmp/{certificate[1].name}"
        for host_path, inside in zip(certificate, (cert, key), strict=True):
            files += f"cat > {inside} <<'PEM'\n{host_path.read_text()}PEM\n"
    auth = base64.b64encode(":".join(basic_auth).encode()).decode() if basic_auth else ""
    args = " ".join(shlex.quote(a) for a in (url, user_agent, cert, key, auth))
    r = device.sh(f"{files}python3 - {args} <<'PY'\n{_FETCH}PY\n", timeout=30)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return Fetched(int(out["status"]), str(out["body"]))


def srv_targets(device: Device, name: str) -> list[tuple[str, int]]:
    """Where a phone sends SIP over TLS for `name`, in the order it tries: its SRV records by
    priority, each target resolved, by the device's site DNS."""
    r = device.sh(f"dig +short SRV _sips._tcp.{name}")
    records = sorted(
        (line.split() for line in r.stdout.splitlines() if line.strip()),
        key=lambda rec: int(rec[0]),
    )
    assert records, f"no SRV records for _sips._tcp.{name}: {r.stdout} {r.stderr}"
    found = []
    for _, _, port, target in records:
        address = device.sh(f"dig +short A {target.rstrip('.')}").stdout.split()
        assert address, f"{target} does not resolve"
        found.append((address[0], int(port)))
    return found
