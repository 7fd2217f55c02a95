"""pbx_app: the bundled PBX application (customers, locations, numbers, extensions, users, devices)."""

__version__ = "0.1.0"
