"""Two fax call processes (the gateway's per-call media and DSP) in real time over loopback UDP:
a page goes out over G.711 RTP, the call switches to T.38 in mid-call as carriers do, and the
page arrives over UDPTL. One real-time fax only: it takes half a minute of line time."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from labkit.fax import SIMILARITY_THRESHOLD, letter, similarity
from pbx_efax.documents import fax_pages

IP = "127.0.0.1"


class Process:
    def __init__(self, **start: Any) -> None:
        self.p = subprocess.Popen(
            [sys.executable, "-m", "pbx_efax.call"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.command(op="start", ip=IP, **start)

    def command(self, **fields: Any) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(json.dumps(fields) + "\n")
        self.p.stdin.flush()

    def event(self) -> dict[str, Any]:
        assert self.p.stdout is not None
        line = self.p.stdout.readline()
        assert line, f"the call process ended (rc {self.p.wait()})"
        return dict(json.loads(line))


def test_audio_then_t38_in_mid_call(tmp_path: Path) -> None:
    sent, received = tmp_path / "sent.tif", tmp_path / "received.tif"
    fax_pages(letter(1), sent)
    sender = Process(role="send", file=str(sent), ident="+49 30 1111", header="Test")
    receiver = Process(role="receive", file=str(received), ident="+49 89 2222")
    try:
        sender.command(op="audio", port=41000, remote=[IP, 42000], payload=8)
        receiver.command(op="audio", port=42000, remote=[IP, 41000], payload=8)
        assert sender.event() == {"event": "media", "mode": "audio"}
        assert receiver.event() == {"event": "media", "mode": "audio"}
        time.sleep(3)  # CNG and CED on the line, as when a carrier spots the fax and switches
        receiver.command(op="t38", port=42002, remote=[IP, 41002])
        sender.command(op="t38", port=41002, remote=[IP, 42002])
        assert receiver.event()["mode"] == "t38"
        assert sender.event()["mode"] == "t38"
        got, done = receiver.event(), sender.event()
    finally:
        for p in (sender, receiver):
            p.p.kill()
            p.p.wait()
    assert done["event"] == "result"
    assert done["ok"], (done, got)
    assert got["ok"], got
    assert (done["pages"], got["pages"]) == (1, 1)
    assert got["mode"] == "t38"
    assert got["switched"]
    assert got["remote_ident"] == "+49 30 1111"
    assert min(similarity(sent, received)) >= SIMILARITY_THRESHOLD
