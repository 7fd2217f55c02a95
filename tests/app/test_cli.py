"""The operator CLI: migrate (concurrent, advisory lock), seed-demo, import-extensions,
healthcheck."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import select

from pbx_app.__main__ import main
from pbx_app.addressing import EMERGENCY_NUMBERS, aor
from pbx_app.db import Database, alembic_config
from pbx_app.schema import devices, extensions, users
from pbx_app.security import verify_password
from tests.app.conftest import PgServer, make_settings, new_customer, start_server, stop_server


def test_four_nodes_migrating_at_once_do_not_race(
    pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import create_engine, text

    name = "pbx_migrate_race"
    admin = create_engine(pg_server.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    errors: list[BaseException] = []

    def node() -> None:
        db = Database(pg_server.url(name))
        try:
            db.migrate()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=node) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        with Database(pg_server.url(name)).engine.connect() as conn:
            head = ScriptDirectory.from_config(alembic_config()).get_current_head()
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
    finally:
        pg_server.drop(name)
        admin.dispose()


def run_cli(monkeypatch: pytest.MonkeyPatch, db: Database, *args: str) -> int:
    monkeypatch.setenv("PBX_DATABASE_URL", db.url)
    monkeypatch.setenv("PBX_SIP_DOMAIN", "sip.lab.test")
    monkeypatch.setenv("PBX_PUBLIC_URL", "http://127.0.0.1:8000")
    return main(list(args))


def test_seed_demo_is_idempotent_and_keeps_credentials(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "seed.json"
    assert run_cli(monkeypatch, db, "seed-demo", "--out", str(out)) == 0
    first = json.loads(out.read_text())
    assert set(first) >= {"api_base_url", "admin_email", "admin_password", "sip_domain", "devices"}
    expected = [str(n) for n in range(100, 200) if str(n) not in EMERGENCY_NUMBERS]
    assert [d["extension"] for d in first["devices"]] == expected
    cid, other = first["customer_id"], first["other_customer_id"]
    assert other != cid
    assert [d["sip_username"] for d in first["other_devices"]] == [
        f"other-{n}" for n in range(100, 110)
    ]
    for d in first["devices"]:
        assert d["aor"] == aor(cid, d["extension"])
        area = "+4969" if int(d["extension"]) < 150 else "+4930"
        assert d["did"].startswith(area)
        assert d["did"].endswith(d["extension"])
    for d in first["other_devices"]:
        assert d["aor"] == aor(other, d["extension"])
        assert d["did"].startswith("+4989")
        assert d["did"].endswith(d["extension"])
    first["proxies"] = ["added by the lab runner"]
    out.write_text(json.dumps(first))
    assert run_cli(monkeypatch, db, "seed-demo", "--out", str(out)) == 0
    second = json.loads(out.read_text())
    assert second == first
    with db.transaction() as conn:
        # the demo extensions (100-199 without the emergency numbers) + 10 of the other customer
        assert len(conn.execute(select(extensions.c.id)).all()) == len(expected) + 10
        rows = {r["sip_username"]: r for r in conn.execute(select(devices)).mappings()}
        admin = (
            conn.execute(select(users).where(users.c.email == first["admin_email"]))
            .mappings()
            .one()
        )
    assert len(rows) == 108
    for d in first["devices"] + first["other_devices"]:
        raw = f"{d['sip_username']}:{d['sip_domain']}:{d['sip_password']}".encode()
        assert rows[d["sip_username"]]["ha1"] == hashlib.md5(raw).hexdigest()
    assert verify_password(admin["password_hash"], first["admin_password"])
    # file lost, tenant kept: passwords are reset and written again
    out.unlink()
    assert run_cli(monkeypatch, db, "seed-demo", "--out", str(out)) == 0
    third = json.loads(out.read_text())
    assert third["admin_password"] != first["admin_password"]
    with db.transaction() as conn:
        admin = (
            conn.execute(select(users).where(users.c.email == first["admin_email"]))
            .mappings()
            .one()
        )
        d0 = (
            conn.execute(
                select(devices).where(devices.c.sip_username == third["devices"][0]["sip_username"])
            )
            .mappings()
            .one()
        )
    assert verify_password(admin["password_hash"], third["admin_password"])
    d = third["devices"][0]
    assert (
        d0["ha1"]
        == hashlib.md5(
            f"{d['sip_username']}:{d['sip_domain']}:{d['sip_password']}".encode()
        ).hexdigest()
    )


def test_import_extensions_cli(
    db: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cid = new_customer(db, booked_licences=10)
    from pbx_app.db import utcnow
    from pbx_app.services import locations
    from pbx_app.services.access import SYSTEM

    with db.transaction() as conn:
        locations.create(
            conn, SYSTEM, cid, locations.NewLocation("HQ", "S", "60329", "F", "069"), utcnow()
        )
    csv_file = tmp_path / "ext.csv"
    csv_file.write_text(
        "number,location,display_name\n" + "".join(f"{n},HQ,User {n}\n" for n in range(100, 110))
    )
    assert run_cli(monkeypatch, db, "import-extensions", "--customer", str(cid), str(csv_file)) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {
        "created": 10,
        "extension_count": 10,
    }
    json_file = tmp_path / "ext.json"
    json_file.write_text(
        json.dumps([{"number": str(n), "location": "HQ"} for n in range(200, 206)])
    )
    assert (
        run_cli(monkeypatch, db, "import-extensions", "--customer", str(cid), str(json_file)) == 2
    )
    assert "extension_licences_exhausted" in capsys.readouterr().err
    with db.transaction() as conn:
        assert len(conn.execute(select(extensions.c.id)).all()) == 10


def test_healthcheck_cli(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_server(sqlite_db, make_settings(sqlite_db))
    try:
        port = server.base_url.rsplit(":", 1)[1]
        monkeypatch.setenv("PBX_LISTEN", f"127.0.0.1:{port}")
        assert main(["healthcheck"]) == 0
    finally:
        stop_server(server)
    assert main(["healthcheck"]) == 1


def test_invoice_run_cli_issues_last_month_once(
    db: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    new_customer(db)
    assert run_cli(monkeypatch, db, "invoice-run") == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (first["issued"], first["already_issued"]) == (1, 0)
    assert run_cli(monkeypatch, db, "invoice-run", "--period", first["period"]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (again["issued"], again["already_issued"]) == (0, 1)
    assert run_cli(monkeypatch, db, "invoice-run", "--period", "2999-01") == 2
    assert "invoice_period_open" in capsys.readouterr().err
