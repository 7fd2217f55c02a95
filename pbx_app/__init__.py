"""pbx_app: the bundled PBX application.

Customers, locations, numbers, extensions, users and devices with the product's limits.
"""

__version__ = "0.1.0"
