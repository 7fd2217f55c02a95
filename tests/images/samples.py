"""Sample `node` dicts for the service templates, shaped as pbx_infra.node_config builds them.

They are the values the image proofs used and what the template tests render. Addresses are
in 10.231.0.0/16 (imgtest-* networks), not the lab's 172.30.0.0/16, so image tests can run while
a lab is up. Keep the key sets in step with pbx_infra/node_config.py.
"""

from __future__ import annotations

from typing import Any

from pbx_app.addressing import (
    AOR_PATTERN,
    CARRIER_CALLER,
    EMERGENCY_NUMBERS,
    FAX_CALLER_PREFIX,
    PRIVACY_PREFIX,
    SIP_USERNAME_PATTERN,
)
from pbx_infra.topology import TOS_CS3

KAMAILIO_FRA_1: dict[str, Any] = {
    "name": "fra-sip-proxy-1",
    "site": "fra",
    "listen": ["10.231.1.11", "10.231.0.11"],
    "advertise": "10.231.1.11",
    "internal": "10.231.0.11",
    "vip": "10.231.1.10",
    "server_id": 1,
    "sip_port": 5060,
    "tls_port": 5061,
    "wss_port": 8443,
    "rpc_port": 2049,
    "dmq_peers": ["10.231.0.12", "10.231.0.111", "10.231.0.112"],
    "rtpengines": {"local": ["udp:10.231.1.21:2223"], "remote": ["udp:10.231.2.21:2223"]},
    "relay_sites": ["udp:10.231.1.21:2223=fra", "udp:10.231.2.21:2223=ber"],
    "apps": ["http://10.231.1.31:8000", "http://10.231.1.32:8000", "http://10.231.2.31:8000"],
    "app_addresses": ["10.231.1.31", "10.231.1.32", "10.231.2.31"],
    "sip_domain": "pbx.lab",
    "dmq_port": 5090,
    "carrier": "udp:10.231.0.5:5060",
    "carrier_peers": ["10.231.0.5", "10.231.0.105"],
    "carrier_caller": CARRIER_CALLER,
    "fax_caller_prefix": FAX_CALLER_PREFIX,
    "efax_gateways": ["10.231.0.71:5080", "10.231.0.171:5080"],
    "efax_addresses": ["10.231.0.171", "10.231.0.71"],
    "emergency_numbers": sorted(EMERGENCY_NUMBERS),
    "privacy_prefix": PRIVACY_PREFIX,
    "sip_username_pattern": SIP_USERNAME_PATTERN,
    "aor_pattern": AOR_PATTERN,
    "site_area_code": "069",
    "site_city": "Frankfurt am Main",
    "sip_tos": TOS_CS3,
    "trusted_sources": ["10.231.1.180/30", "10.231.1.184/29", "198.51.100.0/24"],
    "metrics_port": 9070,
    "hep_uri": "sip:10.231.0.61:9060",
    "lab_faults": True,
}

# The second fra proxy: the peer that probes the first one in the proofs.
KAMAILIO_FRA_2: dict[str, Any] = {
    **KAMAILIO_FRA_1,
    "name": "fra-sip-proxy-2",
    "listen": ["10.231.1.12", "10.231.0.12"],
    "advertise": "10.231.1.12",
    "internal": "10.231.0.12",
    "server_id": 2,
    "dmq_peers": ["10.231.0.11", "10.231.0.111", "10.231.0.112"],
}

# A single-proxy, single-network node: empty peer and remote lists must still render valid.
KAMAILIO_MINIMAL: dict[str, Any] = {
    **KAMAILIO_FRA_1,
    "name": "solo-sip-proxy-1",
    "site": "solo",
    "listen": ["10.231.9.11"],
    "advertise": "10.231.9.11",
    "internal": "10.231.9.11",
    "dmq_peers": [],
    "rtpengines": {"local": ["udp:10.231.9.21:2223"], "remote": []},
    "relay_sites": ["udp:10.231.9.21:2223=solo"],
    "apps": ["http://10.231.9.31:8000"],
    "app_addresses": ["10.231.9.31"],
    "efax_gateways": ["10.231.9.71:5080"],
    "efax_addresses": ["10.231.9.71"],
    "trusted_sources": [],
    "lab_faults": False,
}

RTPENGINE_FRA: dict[str, Any] = {
    "name": "fra-media-relay-1",
    "site": "fra",
    "interface": "10.231.1.21",
    "advertise": "10.231.1.21",
    "ng_listen": "10.231.1.21:2223",
    "cli_listen": "127.0.0.1:9900",
    "http_listen": "10.231.1.21:9103",
    "port_min": 30000,
    "port_max": 30999,
    "tos": 184,
}

DNS_FRA: dict[str, Any] = {
    "listen": "10.231.1.53",
    "domain": "pbx.lab",
    "a_records": [
        {"name": "fra-sip-proxy-1.pbx.lab", "address": "10.231.1.11"},
        {"name": "fra-sip-proxy-2.pbx.lab", "address": "10.231.1.12"},
        {"name": "ber-sip-proxy-1.pbx.lab", "address": "10.231.2.11"},
        {"name": "ber-sip-proxy-2.pbx.lab", "address": "10.231.2.12"},
    ],
    "srv_records": [
        {
            "name": "_sip._udp.pbx.lab",
            "target": "fra-sip-proxy-1.pbx.lab",
            "port": 5060,
            "priority": 10,
            "weight": 50,
        },
        {
            "name": "_sip._udp.pbx.lab",
            "target": "fra-sip-proxy-2.pbx.lab",
            "port": 5060,
            "priority": 10,
            "weight": 50,
        },
        {
            "name": "_sip._udp.pbx.lab",
            "target": "ber-sip-proxy-1.pbx.lab",
            "port": 5060,
            "priority": 20,
            "weight": 50,
        },
        {
            "name": "_sip._udp.pbx.lab",
            "target": "ber-sip-proxy-2.pbx.lab",
            "port": 5060,
            "priority": 20,
            "weight": 50,
        },
        {
            "name": "_sips._tcp.pbx.lab",
            "target": "fra-sip-proxy-1.pbx.lab",
            "port": 5061,
            "priority": 10,
            "weight": 50,
        },
        {
            "name": "_sips._tcp.pbx.lab",
            "target": "ber-sip-proxy-1.pbx.lab",
            "port": 5061,
            "priority": 20,
            "weight": 50,
        },
    ],
}
