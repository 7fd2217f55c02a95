// The product's limits as pbx_app/limits.py states them (tests/app/test_portal.py keeps the two
// equal). The API enforces them; the pages show them before one runs into them.
export const MAX_EXTENSIONS_PER_CUSTOMER = 249000; // R14
export const MAX_HEAD_NUMBERS_PER_CUSTOMER = 1000; // R15
export const BASE_PACKAGE_EXTENSIONS = 5; // R16
export const DEVICES_PER_EXTENSION = 1; // R4
export const DEVICES_PER_EXTENSION_BUSINESS = 3; // R4, with the Business Option
