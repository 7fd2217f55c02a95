"""The Pulumi program: read and validate stack config, declare the platform, export endpoints."""

from __future__ import annotations

import pulumi

from . import topology
from .platform import PbxPlatform, endpoints
from .services import Secrets
from .tls import vendor_cas


def main() -> None:
    config = pulumi.Config("pbx")
    # Validate before declaring anything: a bad stack config creates nothing.
    platform = topology.load(config.require_object("platform"))
    secrets = Secrets(
        db_password=config.require_secret("dbPassword"),
        db_replication_password=config.require_secret("dbReplicationPassword"),
        app_secret_key=config.require_secret("appSecretKey"),
        tls_certificate=config.require_secret("tlsCertificate"),
        tls_private_key=config.require_secret("tlsPrivateKey"),
        tls_ca_certificate=config.require_secret("tlsCaCertificate"),
        db_kamailio_password=config.require_secret("dbKamailioPassword"),
        internal_api_token=config.require_secret("internalApiToken"),
        sip_auth_secret=config.require_secret("sipAuthSecret"),
        db_rewind_password=config.require_secret("dbRewindPassword"),
        credential_keys=config.require_secret("credentialKeys"),
        vendor_ca_certificates=vendor_cas(config.get_object("vendorCaCertificates") or {}),
    )
    PbxPlatform(platform, secrets)
    pulumi.export("mode", platform.mode)
    pulumi.export("endpoints", endpoints(platform))
    pulumi.export(
        "dns_srv_records",
        {
            site.name: [vars(r) for r in platform.srv_records(home_site=site.name)]
            for site in platform.sites
        },
    )
