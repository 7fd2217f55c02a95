"""TLS material for SIP/TLS and WSS: a lab CA and server certificate, generated once per checkout.

Production takes its certificate, key and CA chain from stack secrets (`pbx:tlsCertificate`,
`pbx:tlsPrivateKey`, `pbx:tlsCaCertificate`); the lab generates the same three with this module
and hands them to the Pulumi program the same way, so both paths share one code path after that.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .topology import Platform, ServiceKind

RENEW_BEFORE = dt.timedelta(days=30)  # the SRE check fails below this (tls_material role)
SERVER_LIFETIME = dt.timedelta(days=397)
CA_LIFETIME = dt.timedelta(days=3650)


@dataclass(frozen=True)
class TlsMaterial:
    certificate: str  # PEM, server certificate
    private_key: str  # PEM, PKCS#8
    ca_certificate: str  # PEM, the issuing CA (clients trust this)


def server_names(platform: Platform) -> tuple[list[str], list[str]]:
    """DNS names and IP addresses a client may use to reach any proxy (SRV target or address),
    or an app node over HTTPS (a browser on the portal, a phone fetching its configuration: they
    check the name like any client)."""
    nodes = platform.instances(ServiceKind.SIP_PROXY) + platform.instances(ServiceKind.PBX_APP)
    names = [
        platform.sip_domain,
        # Each site's SIP name: provisioned phones use it as their outbound proxy (and check it).
        *(platform.sip_vip_name(s.name) for s in platform.sites),
        platform.provisioning_name,
        *(n.fqdn(platform) for n in nodes),
    ]
    addresses = [str(n.address) for n in nodes]
    return names, addresses


def lab_material(platform: Platform, directory: Path) -> TlsMaterial:
    """Load the lab's CA and certificate from `directory`, (re)issuing what is missing or stale."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _lab_ca(platform, directory)
    names, addresses = server_names(platform)
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if _covers(cert, names, addresses) and _fresh(cert) and _issued_by(cert, ca_cert):
            return TlsMaterial(cert_path.read_text(), key_path.read_text(), _pem(ca_cert))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _server_certificate(platform, ca_key, ca_cert, key.public_key(), SERVER_LIFETIME)
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, _pem(cert), 0o644)
    return TlsMaterial(_pem(cert), _key_pem(key), _pem(ca_cert))


def lab_certificate_ending_in(platform: Platform, directory: Path, lifetime: dt.timedelta) -> str:
    """The lab's server certificate again (same key, names and CA), but ending after `lifetime`
    (PEM): the certificate alert's drill (tests/sip/test_alerts.py)."""
    ca_key, ca_cert = _lab_ca(platform, directory)
    key = serialization.load_pem_private_key((directory / "server.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return _pem(_server_certificate(platform, ca_key, ca_cert, key.public_key(), lifetime))


def _server_certificate(
    platform: Platform,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    public_key: ec.EllipticCurvePublicKey,
    lifetime: dt.timedelta,
) -> x509.Certificate:
    names, addresses = server_names(platform)
    san = [x509.DNSName(n) for n in names] + [
        x509.IPAddress(ipaddress.IPv4Address(a)) for a in addresses
    ]
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, platform.sip_domain)]))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + lifetime)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        # Key identifiers: strict verifiers (Python 3.13's default context, OpenSSL's
        # X509_STRICT) refuse a chain without them.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


# The vendors whose phones the lab provisions with device certificates.
LAB_VENDORS = ("yealink", "snom", "grandstream")


def lab_vendor_cas(directory: Path) -> dict[str, str]:
    """A stand-in CA (PEM) per phone vendor, made once: the lab's test phones carry device
    certificates their vendor's CA signs (CN = the MAC, as Snom's and Yealink's factory
    certificates do)."""
    directory.mkdir(parents=True, exist_ok=True)
    return {
        vendor: _pem(_ca(directory, f"vendor-ca-{vendor}", f"pbx lab {vendor} device CA")[1])
        for vendor in LAB_VENDORS
    }


# A vendor as device models name it (pbx_app.api.provisioning's DeviceModel.vendor).
_VENDOR = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


def vendor_cas(raw: object, key: str = "pbx:vendorCaCertificates") -> dict[str, str]:
    """The stack config's vendor CAs: {vendor: PEM}, every PEM a CA certificate; a ValueError
    naming the offending key otherwise."""
    if not isinstance(raw, dict):
        raise ValueError(f"{key}: a map of vendor to PEM certificates, got {type(raw).__name__}")
    for vendor, pem in raw.items():
        if not isinstance(vendor, str) or not _VENDOR.fullmatch(vendor):
            raise ValueError(
                f"{key}.{vendor}: a vendor as device models name it ({_VENDOR.pattern})"
            )
        try:
            certificates = x509.load_pem_x509_certificates(str(pem).encode())
        except ValueError:
            certificates = []
        if not certificates or not all(_is_ca(c) for c in certificates):
            raise ValueError(f"{key}.{vendor}: not PEM CA certificates")
    return {vendor: str(pem) for vendor, pem in raw.items()}


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _lab_ca(
    platform: Platform, directory: Path
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    return _ca(directory, "ca", f"{platform.name} lab CA")


def _ca(
    directory: Path, stem: str, common_name: str
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key_path, cert_path = directory / f"{stem}.key", directory / f"{stem}.pem"
    if key_path.exists() and cert_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if _has(cert, x509.SubjectKeyIdentifier):
            return key, cert
        # A CA made before key identifiers were added: made again (its certificates follow).
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, _pem(cert), 0o644)
    return key, cert


def _covers(cert: x509.Certificate, names: list[str], addresses: list[str]) -> bool:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    have_names = set(san.get_values_for_type(x509.DNSName))
    have_ips = {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    return set(names) <= have_names and set(addresses) <= have_ips


def _has(cert: x509.Certificate, extension: type[x509.ExtensionType]) -> bool:
    try:
        cert.extensions.get_extension_for_class(extension)
    except x509.ExtensionNotFound:
        return False
    return True


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """Signed by this CA's key, and saying so (an authority key identifier)."""
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return _has(cert, x509.AuthorityKeyIdentifier)


def _fresh(cert: x509.Certificate) -> bool:
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > RENEW_BEFORE


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _write(path: Path, text: str, mode: int) -> None:
    path.touch(mode=mode, exist_ok=True)
    path.chmod(mode)
    path.write_text(text)
