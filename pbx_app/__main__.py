"""Operator CLI: python -m pbx_app <command>.

Commands: serve, migrate, healthcheck, import-extensions, seed-demo, create-operator, rekey,
invoice-run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import urllib.error
import urllib.request
from pathlib import Path

from pbx_app.settings import Settings, host_port


def _serve(settings: Settings) -> int:
    import asyncio

    from pbx_app.app import create_app
    from pbx_app.db import Database
    from pbx_app.serving import listeners, serve

    db = Database(settings.database_url, settings.database_read_url)
    # Several nodes may start at once; migrate() serialises them with an advisory lock.
    db.migrate()
    return asyncio.run(serve(create_app(settings, db), listeners(settings)))


def _migrate(settings: Settings) -> int:
    from pbx_app.db import Database

    db = Database(settings.database_url)
    db.migrate()
    db.dispose()
    print("database schema is up to date")
    return 0


def _healthcheck(settings: Settings) -> int:
    """/healthz over each listener: the plain port, and the HTTPS port where the node has one
    (its TLS handshake included; the certificate's names are checked by the lab tests, which
    reach the node by the address people use, not 127.0.0.1)."""
    import ssl

    urls: list[tuple[str, ssl.SSLContext | None]] = [
        (f"http://127.0.0.1:{settings.listen_port}/healthz", None)
    ]
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    # The phones' listener too (a client certificate is optional there).
    for listen in (settings.https_listen, settings.provisioning_listen):
        if listen:
            host, port = host_port(listen)
            host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            urls.append((f"https://{host}:{port}/healthz", unverified))
    for url, context in urls:
        try:
            with urllib.request.urlopen(url, timeout=5, context=context) as response:  # noqa: S310
                ok = response.status == 200
                print(response.read().decode(errors="replace"))
        except (urllib.error.URLError, OSError) as exc:
            print(f"unhealthy: {url}: {exc}", file=sys.stderr)
            return 1
        if not ok:
            return 1
    return 0


def _import_extensions(settings: Settings, customer_id: int, path: Path) -> int:
    from pbx_app import errors
    from pbx_app.db import Database, utcnow
    from pbx_app.services.access import SYSTEM
    from pbx_app.services.extension_import import import_file

    kind = "application/json" if path.suffix.lower() == ".json" else "text/csv"
    db = Database(settings.database_url)
    try:
        with path.open("rb") as binary:
            result = import_file(db, SYSTEM, customer_id, kind, binary, utcnow())
    except errors.DomainError as exc:
        body: dict[str, object] = {"code": exc.code, "message": exc.message}
        if isinstance(exc, errors.ImportInvalid):
            body["rows"] = exc.rows[:20]
        print(json.dumps({"error": body}, indent=2), file=sys.stderr)
        return 2
    finally:
        db.dispose()
    print(json.dumps({"created": result.created, "extension_count": result.extension_count}))
    return 0


def _seed_demo(settings: Settings, out: Path) -> int:
    from pbx_app.db import Database
    from pbx_app.seed import seed_demo

    db = Database(settings.database_url)
    db.migrate()
    data = seed_demo(settings, db, out)
    db.dispose()
    print(f"demo tenant {data['customer_id']} ready; credentials in {out}")
    return 0


def _invoice_run(settings: Settings, period: str | None) -> int:
    """The month's invoices for every customer (default: last month), as a timer runs it on the
    1st; idempotent like the API's run."""
    from pbx_app import errors
    from pbx_app.billing_time import local_day
    from pbx_app.db import Database, utcnow
    from pbx_app.invoicing import previous_month
    from pbx_app.services import invoices
    from pbx_app.services.access import SYSTEM

    now = utcnow()
    if period is None:
        period = f"{previous_month(local_day(now)):%Y-%m}"
    db = Database(settings.database_url)
    try:
        with db.transaction() as conn:
            result = invoices.run(conn, SYSTEM, invoices.month(period), now)
    except errors.DomainError as exc:
        print(json.dumps({"error": {"code": exc.code, "message": exc.message}}), file=sys.stderr)
        return 2
    finally:
        db.dispose()
    print(json.dumps(result.__dict__))
    return 0


def _create_operator(settings: Settings, email: str) -> int:
    from pbx_app.db import Database, utcnow
    from pbx_app.repositories import users as users_repo
    from pbx_app.security import generate_password
    from pbx_app.services import users
    from pbx_app.services.access import Role

    db = Database(settings.database_url)
    password = generate_password()
    with db.transaction() as conn:
        email = users.normalise_email(email)
        existing = users_repo.get_by_email(conn, email)
        if existing is not None and existing["role"] != Role.OPERATOR.value:
            print(f"{email} exists and is not an operator", file=sys.stderr)
            return 2
        user_id = (
            existing["id"]
            if existing
            else users_repo.insert(
                conn,
                {
                    "customer_id": None,
                    "email": email,
                    "display_name": "Operator",
                    "role": Role.OPERATOR.value,
                    "password_hash": None,
                    "created_at": utcnow(),
                },
            )
        )
        users.set_password_directly(conn, int(user_id), password, utcnow())
    print(json.dumps({"email": email, "password": password}))
    return 0


def _rekey(settings: Settings) -> int:
    from pbx_app.db import Database
    from pbx_app.provisioning import rekey
    from pbx_app.vault import Vault

    vault = Vault.from_setting(settings.effective_credential_keys)
    db = Database(settings.database_url)
    changed = rekey(db, vault)
    db.dispose()
    print(json.dumps({"key": vault.current, "devices_resealed": changed}))
    return 0


def _month(text: str) -> str:
    if len(text) != 7 or text[4] != "-" or not (text[:4] + text[5:]).isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a month (YYYY-MM)")
    if not 1 <= int(text[5:]) <= 12:
        raise argparse.ArgumentTypeError(f"{text!r}: the month must be 01-12")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pbx_app")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="migrate, then serve (PBX_LISTEN, PBX_HTTPS_LISTEN)")
    sub.add_parser("migrate", help="upgrade the database schema")
    sub.add_parser("healthcheck", help="exit 0 if /healthz answers 200")
    imp = sub.add_parser("import-extensions", help="bulk import extensions (CSV or JSON)")
    imp.add_argument("--customer", type=int, required=True)
    imp.add_argument("file", type=Path)
    seed = sub.add_parser("seed-demo", help="create or keep the lab's demo tenant")
    seed.add_argument("--out", type=Path, required=True)
    op = sub.add_parser("create-operator", help="create an operator, print a new password")
    op.add_argument("--email", required=True)
    sub.add_parser(
        "rekey", help="seal stored device secrets again under the first PBX_CREDENTIAL_KEYS key"
    )
    inv = sub.add_parser("invoice-run", help="issue a month's invoices (default: last month)")
    inv.add_argument("--period", help="YYYY-MM", type=_month)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings.from_env()
    if args.command == "serve":
        return _serve(settings)
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "healthcheck":
        return _healthcheck(settings)
    if args.command == "import-extensions":
        return _import_extensions(settings, args.customer, args.file)
    if args.command == "seed-demo":
        return _seed_demo(settings, args.out)
    if args.command == "rekey":
        return _rekey(settings)
    if args.command == "invoice-run":
        return _invoice_run(settings, args.period)
    return _create_operator(settings, args.email)


if __name__ == "__main__":
    sys.exit(main())
