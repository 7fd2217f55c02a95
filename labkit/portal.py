"""Acting as the portal does after a login: one place for what a cookie session needs, and the
sessions tests use (the demo tenant's admin, a platform operator)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from pbx_app.api.deps import CSRF_HEADER
from pbx_infra.topology import ServiceKind

from .docker import docker
from .lab import app_base, container, instances


def keep_session(client: httpx.Client, login: httpx.Response) -> None:
    """The session cookie is in ``client``'s jar already; writes also need the login's CSRF
    token in a header (pbx_app.api.deps.require_csrf_token)."""
    client.headers[CSRF_HEADER] = login.json()["csrf_token"]


@contextmanager
def login(email: str, password: str, site: str = "fra") -> Iterator[httpx.Client]:
    """A logged-in API client on the REST base URL of `site`'s first app node."""
    with httpx.Client(base_url=app_base(site), timeout=15) as client:
        r = client.post("/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, f"login {email}: {r.status_code} {r.text}"
        keep_session(client, r)
        yield client


@contextmanager
def operator(email: str, site: str = "fra") -> Iterator[httpx.Client]:
    """A platform operator's session: `email` is created (or gets a new password) with the
    app's CLI on `site`'s first app node."""
    app = container(instances(ServiceKind.PBX_APP, site)[0])
    r = docker(
        "exec", "--user", "pbx", app, "python3", "-m", "pbx_app", "create-operator",
        "--email", email, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, f"create-operator {email}: {r.stderr}"
    with login(email, json.loads(r.stdout)["password"], site) as client:
        yield client
