"""The platform's own SIP user agent core over UDP (RFC 3261 subset): click-to-dial on the app
nodes and the fax gateway use it. Devices and carriers never talk to it directly; it sends
and receives through the site's proxies."""
