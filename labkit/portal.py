"""Acting as the portal does after a login: one place for what a cookie session needs."""

from __future__ import annotations

import httpx

from pbx_app.api.deps import CSRF_HEADER


def keep_session(client: httpx.Client, login: httpx.Response) -> None:
    """The session cookie is in ``client``'s jar already; writes also need the login's CSRF
    token in a header (pbx_app.api.deps.require_csrf_token)."""
    client.headers[CSRF_HEADER] = login.json()["csrf_token"]
