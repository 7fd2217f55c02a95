"""The proxies' call-record shipper (kamailio/pbx-cdr-shipper) against the real app: spool lines
as Kamailio's acc + db_flatstore write them become records; while no app can store them the
files stay on the node; once one can, every record is stored exactly once, however often a
delivery is repeated; a line or record that can never be stored is set aside, not lost, and
blocks nothing."""

from __future__ import annotations

import http.server
import importlib.machinery
import importlib.util
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from labkit.pg_cluster import free_port
from pbx_app.db import Database
from pbx_app.schema import call_records
from tests.app.conftest import make_settings, start_server, stop_server

SCRIPT = Path(__file__).resolve().parents[2] / "kamailio" / "pbx-cdr-shipper"
TOKEN = "shipper-test-token"

# Lines as the lab's proxies wrote them (kamailio.cfg CDR_AVPS / CDR_DLG_VARS), fields:
# answered: start_time|end_time|duration|<record fields>
# failed:   method|from_tag|to_tag|call-id|code|reason|time|time.usec|<record fields>
ANSWERED = (
    "1796210869|1796210870|1.546003|pbx1|device|call-a@lab|23c1|1|1|demo-136|demo-136|137|"
    "c1x137|demo-137@172.30.2.110:5071|0|udp:172.30.0.21:2223|1796210869.019120|"
    "1796210869.041597|200|OK\n"
)
BUSY = (
    "INVITE|24c1|58b1|call-b@lab|486|Busy Here|1796210874|1796210874.343682|pbx1|device|"
    "call-b@lab|24c1|1|1|demo-136|demo-136|137|c1x137||1|udp:172.30.0.121:2223|"
    "1796210871.301798|||\n"
)
NOT_FOUND = (
    "INVITE|32c1||call-c@lab|404|Not Found|1796210874|1796210874.579829|pbx1|device|"
    "call-c@lab|32c1|1||demo-136|demo-136|999|||||1796210874.573117|||\n"
)
# acc writes the 2xx of an answered INVITE into `failed` too: the dialog's record covers it.
ANSWERED_TX = (
    "INVITE|23c1|99b1|call-a@lab|200|OK|1796210869|1796210869.041597|pbx1|device|call-a@lab|"
    "23c1|1|1|demo-136|demo-136|137|c1x137||0|udp:172.30.0.21:2223|1796210869.019120|||\n"
)
# From the carrier to a customer's number, with a '|' in the caller's name (flatstore: %7C).
FROM_TRUNK = (
    "1796210900|1796210960|60.5|pbx1|trunk|call-d@carrier|9f|2|2|+4930555%7C1|+4930555|"
    "+49309876162|c2x162|demo-162@172.30.1.120:5070|0|udp:172.30.0.21:2223|1796210900.000000|"
    "1796210900.250000|200|OK\n"
)


@pytest.fixture
def shipper_module() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("pbx_cdr_shipper", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # dataclasses look their module up while it loads
    loader.exec_module(module)
    return module


def node_cfg(tmp_path: Path, apps: list[str]) -> Path:
    path = tmp_path / "node.cfg"
    path.write_text(
        '#!substdef "!PBX_NODE_NAME!fra-sip-proxy-1!g"\n'
        '#!substdef "!PBX_SITE!fra!g"\n'
        f'#!substdef "!PBX_APP_URLS!{",".join(apps)}!g"\n'
        '#!substdef "!PBX_RELAY_SITES!udp:172.30.0.21:2223=fra udp:172.30.0.121:2223=ber!g"\n'
    )
    return path


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    path = tmp_path / "spool"
    path.mkdir()
    return path


def make_shipper(
    module: ModuleType, tmp_path: Path, spool: Path, apps: list[str], rotate: str = "true"
) -> Any:
    env = {
        "PBX_INTERNAL_TOKEN": TOKEN,
        "PBX_CDR_SPOOL": str(spool),
        "PBX_CDR_STATE": str(tmp_path / "state.json"),
        "PBX_CDR_RPC": rotate,
        "PBX_CDR_MAX_BACKOFF": "8",
    }
    config = module.load_config(env, str(node_cfg(tmp_path, apps)))
    config.grace = 0.0
    shipper = module.Shipper(config)
    shipper.prepare()
    return shipper


def spool_lines(spool: Path, name: str, *lines: str) -> None:
    with (spool / name).open("a") as f:
        f.writelines(lines)


def waiting(spool: Path) -> list[str]:
    return sorted(p.name for d in ("staged", "ready") for p in (spool / d).iterdir())


def stored(db: Database) -> list[dict[str, Any]]:
    with db.snapshot() as conn:
        rows = conn.execute(select(call_records).order_by(call_records.c.started_at))
        return [dict(r) for r in rows.mappings()]


@pytest.fixture
def app_url(sqlite_db: Database) -> Iterator[str]:
    live = start_server(sqlite_db, make_settings(sqlite_db, internal_token=TOKEN))
    try:
        yield live.base_url
    finally:
        stop_server(live)


# --- lines -> records --------------------------------------------------------------------------
def test_spool_lines_become_the_records_the_app_takes(
    shipper_module: ModuleType, tmp_path: Path, spool: Path
) -> None:
    config = make_shipper(shipper_module, tmp_path, spool, ["http://127.0.0.1:1"]).config
    parse = shipper_module.parse_line
    answered = parse("answered", ANSWERED, config)
    assert answered == {
        "node": "fra-sip-proxy-1",
        "site": "fra",
        "call_id": "call-a@lab",
        "from_tag": "23c1",
        "started_at": "2026-12-02T11:27:49.019120Z",
        "answered_at": "2026-12-02T11:27:49.041597Z",
        # start + acc's duration (from the dialog's creation, the same moment as start)
        "ended_at": "2026-12-02T11:27:50.565123Z",
        "customer_id": 1,
        "callee_customer_id": 1,
        "source": "device",
        "caller": "demo-136",
        "caller_id": "demo-136",
        "dialled": "137",
        "resolved": "c1x137",
        "answered_by": "demo-137@172.30.2.110:5071",
        "diversions": 0,
        "relay": "fra",
        "sip_code": 200,
        "reason": "OK",
    }
    busy = parse("failed", BUSY, config)
    assert (busy["sip_code"], busy["reason"], busy["answered_at"]) == (486, "Busy Here", None)
    assert (busy["started_at"], busy["ended_at"]) == (
        "2026-12-02T11:27:51.301798Z",
        "2026-12-02T11:27:54.343682Z",
    )
    assert (busy["relay"], busy["diversions"]) == ("ber", 1)
    assert parse("failed", NOT_FOUND, config)["callee_customer_id"] is None
    assert parse("failed", ANSWERED_TX, config) is None
    trunk = parse("answered", FROM_TRUNK, config)
    assert (trunk["source"], trunk["caller"], trunk["customer_id"]) == ("trunk", "+4930555|1", 2)


@pytest.mark.parametrize(
    "line",
    [
        "garbage\n",
        ANSWERED.replace("|pbx1|", "|pbx0|"),
        ANSWERED.replace("|device|", "|fax|"),
        ANSWERED.replace("1796210869.019120", "yesterday"),
        BUSY.replace("|486|", "|4x6|"),
    ],
    ids=["fields", "format", "source", "time", "code"],
)
def test_a_line_that_is_no_record_is_refused(
    shipper_module: ModuleType, tmp_path: Path, spool: Path, line: str
) -> None:
    config = make_shipper(shipper_module, tmp_path, spool, ["http://127.0.0.1:1"]).config
    table = "failed" if line.startswith("INVITE") else "answered"
    with pytest.raises(shipper_module.BadLine):
        shipper_module.parse_line(table, line, config)


def test_text_is_made_storable(shipper_module: ModuleType, tmp_path: Path, spool: Path) -> None:
    config = make_shipper(shipper_module, tmp_path, spool, ["http://127.0.0.1:1"]).config
    line = ANSWERED.replace("|demo-136|demo-136|", "|demo\x07136|" + "9" * 100 + "|")
    record = shipper_module.parse_line("answered", line, config)
    assert record["caller"] == "demo?136"
    assert record["caller_id"] == "9" * 64


# --- delivery ----------------------------------------------------------------------------------
def test_app_down_keeps_the_files_then_delivers_each_record_once(
    shipper_module: ModuleType, tmp_path: Path, spool: Path, sqlite_db: Database, app_url: str
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    shipper = make_shipper(shipper_module, tmp_path, spool, [down])
    spool_lines(spool, "answered_5.log", ANSWERED, FROM_TRUNK)
    spool_lines(spool, "failed_7.log", BUSY, ANSWERED_TX, NOT_FOUND)
    wait = shipper.round()
    assert 1 <= wait <= 8
    assert [n.split(".log")[0] for n in waiting(spool)] == ["answered_5", "failed_7"]
    assert not list(spool.glob("*.log")), "the live files were not rotated away"
    assert stored(sqlite_db) == []
    shipper.write_state()
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["pending_files"] == 2
    assert down in state["last_error"]
    # Backoff: doubling up to the maximum while nothing can be delivered.
    assert [shipper.round() for _ in range(4)] == [2.0, 4.0, 8.0, 8.0]

    # The other site's app answers: the first URL is still down.
    shipper.config.apps = [down, app_url]
    spool_lines(spool, "failed_7.log", BUSY.replace("call-b@lab", "call-e@lab"))
    assert shipper.round() == shipper.config.interval
    assert waiting(spool) == []
    rows = stored(sqlite_db)
    assert sorted(r["call_id"] for r in rows) == [
        "call-a@lab",
        "call-b@lab",
        "call-c@lab",
        "call-d@carrier",
        "call-e@lab",
    ]
    shipper.write_state()
    state = json.loads((tmp_path / "state.json").read_text())
    assert (state["pending_files"], state["delivered"], state["last_error"]) == (0, 5, "")

    # The same lines again (a crash after the app's answer, before the delete): stored once.
    spool_lines(spool, "answered_5.log", ANSWERED, FROM_TRUNK)
    spool_lines(spool, "failed_9.log", BUSY, NOT_FOUND)
    assert shipper.round() == shipper.config.interval
    assert waiting(spool) == []
    assert len(stored(sqlite_db)) == 5


def test_files_wait_for_a_rotation_that_works(
    shipper_module: ModuleType, tmp_path: Path, spool: Path, sqlite_db: Database, app_url: str
) -> None:
    """Until Kamailio has reopened its files, a renamed file may still be written: it is not
    delivered (nor deleted) before a rotation succeeded."""
    shipper = make_shipper(shipper_module, tmp_path, spool, [app_url], rotate="false")
    spool_lines(spool, "failed_3.log", BUSY)
    shipper.round()
    assert [p.parent.name for p in spool.glob("*/failed_3.log.*")] == ["staged"]
    assert stored(sqlite_db) == []
    shipper.config.rotate_command = ["true"]
    shipper.round()
    assert waiting(spool) == []
    assert [r["call_id"] for r in stored(sqlite_db)] == ["call-b@lab"]


def test_unparsable_lines_are_set_aside_and_the_rest_delivered(
    shipper_module: ModuleType, tmp_path: Path, spool: Path, sqlite_db: Database, app_url: str
) -> None:
    shipper = make_shipper(shipper_module, tmp_path, spool, [app_url])
    spool_lines(spool, "failed_3.log", BUSY, "broken|line\n", NOT_FOUND, "cut off")
    shipper.round()
    assert waiting(spool) == []
    assert [r["call_id"] for r in stored(sqlite_db)] == ["call-b@lab", "call-c@lab"]
    (rejected,) = (spool / "rejected").iterdir()
    text = rejected.read_text()
    assert "broken|line" in text
    assert "cut off" in text


class StubApp(http.server.BaseHTTPRequestHandler):
    """Answers each POST with the next of `answers` (status, headers, body); records bodies."""

    answers: ClassVar[list[tuple[int, dict[str, str], dict[str, Any]]]] = []
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append(body)
        status, headers, answer = type(self).answers.pop(0)
        data = json.dumps(answer).encode()
        self.send_response(status)
        for k, v in {**headers, "Content-Type": "application/json"}.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[tuple[str, type[StubApp]]]:
    handler = type("Handler", (StubApp,), {"answers": [], "received": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()


def test_a_503_keeps_the_files_and_its_retry_after_is_respected(
    shipper_module: ModuleType, tmp_path: Path, spool: Path, stub: tuple[str, type[StubApp]]
) -> None:
    url, handler = stub
    unavailable = {"error": {"code": "database_unavailable", "message": "retry later"}}
    handler.answers = [(503, {"Retry-After": "5"}, unavailable)]
    shipper = make_shipper(shipper_module, tmp_path, spool, [url])
    spool_lines(spool, "failed_3.log", BUSY)
    assert shipper.round() == 5.0
    assert len(waiting(spool)) == 1
    assert "503" in shipper.last_error
    handler.answers = [(200, {}, {"received": 1, "stored": 1})]
    assert shipper.round() == shipper.config.interval
    assert waiting(spool) == []
    assert [r["call_id"] for b in handler.received for r in b["records"]] == ["call-b@lab"] * 2


def test_a_record_the_app_refuses_is_set_aside_and_the_rest_delivered(
    shipper_module: ModuleType, tmp_path: Path, spool: Path, stub: tuple[str, type[StubApp]]
) -> None:
    url, handler = stub
    invalid = {
        "error": {
            "code": "validation_failed",
            "message": "invalid request: body.records.1.caller: too long",
            "details": [
                {"location": ["body", "records", "1", "caller"], "message": "x", "type": "x"}
            ],
        }
    }
    handler.answers = [(422, {}, invalid), (200, {}, {"received": 2, "stored": 2})]
    shipper = make_shipper(shipper_module, tmp_path, spool, [url])
    spool_lines(spool, "failed_3.log", BUSY, NOT_FOUND, BUSY.replace("call-b@lab", "call-e@lab"))
    shipper.round()
    assert waiting(spool) == []
    assert [r["call_id"] for r in handler.received[1]["records"]] == ["call-b@lab", "call-e@lab"]
    (rejected,) = (spool / "rejected").iterdir()
    assert "call-c@lab" in rejected.read_text()
    assert "body.records.1.caller" in rejected.read_text()


def test_batches_stay_below_the_apps_body_limit(shipper_module: ModuleType) -> None:
    record = {"resolved": "x" * 512, "answered_by": "y" * 256}
    batches = shipper_module.batches([("line", record)] * 2000)
    assert all(len(b) <= shipper_module.BATCH_RECORDS for b in batches)
    assert all(len(json.dumps({"records": [r for _, r in b]})) < 1024 * 1024 for b in batches)
    assert sum(len(b) for b in batches) == 2000
