"""The lab's TLS material: issued once, reused, covering every proxy, reissued when stale."""

from __future__ import annotations

import datetime as dt

from cryptography import x509

from pbx_infra import tls, topology


def test_lab_certificate_covers_every_proxy_and_is_reused(lab_config, tmp_path) -> None:
    platform = topology.load(lab_config)
    first = tls.lab_material(platform, tmp_path)
    cert = x509.load_pem_x509_certificate(first.certificate.encode())
    ca = x509.load_pem_x509_certificate(first.ca_certificate.encode())
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names, addresses = tls.server_names(platform)
    assert set(names) <= set(san.get_values_for_type(x509.DNSName))
    assert set(addresses) <= {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    assert "pbx.lab" in names
    assert (tmp_path / "server.key").stat().st_mode & 0o777 == 0o600
    assert tls.lab_material(platform, tmp_path) == first  # second run: same material


def test_lab_certificate_is_reissued_when_a_proxy_is_added(lab_config, tmp_path) -> None:
    first = tls.lab_material(topology.load(lab_config), tmp_path)
    lab_config["sites"][0]["services"]["sip_proxy"] = 3
    second = tls.lab_material(topology.load(lab_config), tmp_path)
    assert second.certificate != first.certificate
    assert second.ca_certificate == first.ca_certificate  # clients keep trusting the same CA
    cert = x509.load_pem_x509_certificate(second.certificate.encode())
    assert cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > tls.RENEW_BEFORE


def test_the_certificate_names_every_app_node_for_the_portal(lab_config, tmp_path) -> None:
    """Browsers reach the portal over HTTPS by an app node's address (or name): the platform
    certificate must name each, or the page fails its certificate check."""
    platform = topology.load(lab_config)
    material = tls.lab_material(platform, tmp_path)
    cert = x509.load_pem_x509_certificate(material.certificate.encode())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns_names = set(san.get_values_for_type(x509.DNSName))
    ips = {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    apps = platform.instances(topology.ServiceKind.PBX_APP)
    assert len(apps) == 4
    for app in apps:
        assert str(app.address) in ips, app.name
        assert app.fqdn(platform) in dns_names, app.name
