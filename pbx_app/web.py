"""The web portal: one HTML shell for every page (a single-page app with hash routes, built from
portal/ by `make portal`) and its bundle under /static.

The shell is the same document at ``/`` and at ``/set-password``, the address the onboarding
mail links to: the app reads the link's token, drops it from the address bar and history, and
shows its set-password view. The shell itself never contains the token."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "web" / "static"
# Files whose names carry a content hash (esbuild's chunks) never change under their name.
IMMUTABLE_PREFIX = "chunks/"

# Scripts and styles come from files of this origin only: the CSP (pbx_app.app.html_csp) allows
# nothing inline. `lang` is the default until the app has picked the reader's language.
SHELL_HTML = """<!doctype html>
<html lang="de">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>PBX Portal</title>
<link rel="stylesheet" href="/static/app.css">
<script type="module" src="/static/app.js"></script>
</head>
<body>
<div id="app"></div>
<noscript>Das Portal braucht JavaScript. / The portal needs JavaScript.</noscript>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def portal() -> HTMLResponse:
    return HTMLResponse(SHELL_HTML)


@router.get("/set-password", response_class=HTMLResponse)
def set_password_link() -> HTMLResponse:
    """The e-mailed link (``?token=...``, and whatever a mail client appends): the portal's
    set-password view, which reads the token from its own address. The access log redacts it
    (pbx_app.app.RedactSecretsInAccessLog); the page never repeats it."""
    return HTMLResponse(SHELL_HTML)


@router.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for it on every first visit; the portal has none."""
    return Response(status_code=204)


class PortalFiles(StaticFiles):
    """The bundle: hashed chunks are cached for good; the entry files (fixed names) are
    revalidated on every load (ETag / Last-Modified), so a new build shows at once."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        immutable = self.get_path(scope).startswith(IMMUTABLE_PREFIX)
        response.headers["cache-control"] = (
            "public, max-age=31536000, immutable" if immutable else "no-cache"
        )
        return response


def static_files() -> PortalFiles:
    # check_dir=False: an app without a built portal still serves its API (/static answers 404).
    return PortalFiles(directory=STATIC_DIR, check_dir=False)
