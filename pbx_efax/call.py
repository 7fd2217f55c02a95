"""One fax call's media and DSP, as a process of its own (`python -m pbx_efax.call`).

The gateway's SIP user agent starts one per call and steers it with JSON lines on stdin:
  {"op": "start", "role": "send"|"receive", "file": ..., "ident": ..., "header": ..., "ip": ...}
  {"op": "audio", "port": ..., "remote": [ip, port], "payload": 8}
  {"op": "t38", "port": ..., "remote": [ip, port], "max_datagram": 400}
  {"op": "hangup"}
and reads JSON lines on stdout: {"event": "media", ...} once media flows, and one
{"event": "result", ...} when the fax is over (then the process exits).

A process per call: a fault in the DSP library ends one call, not the gateway, and concurrent
calls run on every core.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict
from typing import Any

from . import spandsp
from .media import Media, RtpAudio, UdptlT38

# No RTP for this long: the other side is gone. Audio flows without a break for the whole
# call; T.38 is silent in one direction while a page goes the other way, and T.30's own
# timers (and the T.38 engine's mid-receive timeout) end a call whose peer vanished there.
MEDIA_TIMEOUT_S = 20.0
_WATCH_S = 0.25


class Call:
    def __init__(self, start: dict[str, Any]) -> None:
        self.sending = start["role"] == "send"
        self.file = str(start["file"])
        self.ident = str(start.get("ident", ""))
        self.header = str(start.get("header", ""))
        self.ip = str(start["ip"])
        self.ecm = bool(start.get("ecm", True))
        self.media: Media | None = None
        self.engine: spandsp.AudioFax | spandsp.T38Fax | None = None
        self.mode = ""
        self.switched = False

    def _configure(self, engine: spandsp.AudioFax | spandsp.T38Fax) -> None:
        if self.sending:
            engine.send_file(self.file)
        else:
            engine.receive_file(self.file)

    def _drop_media(self) -> None:
        if self.media is not None:
            self.media.close()
        if self.engine is not None:
            self.engine.close()
        self.media = self.engine = None

    async def audio(self, port: int, remote: tuple[str, int], payload: int) -> None:
        if self.mode == "audio" and self.media is not None:
            self.media.remote = remote  # a re-INVITE that moved the far end
            assert isinstance(self.media, RtpAudio)
            self.media.payload = payload
            return
        self._drop_media()
        engine = spandsp.AudioFax(
            calling=self.sending, ident=self.ident, header=self.header, ecm=self.ecm
        )
        self._configure(engine)
        self.engine, self.mode = engine, "audio"
        self.media = RtpAudio(engine, (self.ip, port), remote, payload)
        await self.media.start()

    async def t38(self, port: int, remote: tuple[str, int], max_datagram: int) -> None:
        if self.mode == "t38" and self.media is not None:
            self.media.remote = remote
            return
        # T.30 starts over on T.38: what the audio engine did so far was tones only.
        self.switched = self.mode == "audio"
        self._drop_media()

        def make(send: Any) -> spandsp.T38Fax:
            engine = spandsp.T38Fax(
                calling=self.sending,
                send=send,
                ident=self.ident,
                header=self.header,
                ecm=self.ecm,
            )
            self._configure(engine)
            return engine

        media = UdptlT38(make, (self.ip, port), remote, max_datagram)
        self.engine, self.mode, self.media = media.engine, "t38", media
        await media.start()

    def result(self) -> spandsp.Result | None:
        return self.engine.result if self.engine is not None else None

    def hang_up(self) -> None:
        if self.engine is not None:
            self.engine.hang_up()

    def close(self) -> None:
        self._drop_media()


def _emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def _commands(queue: asyncio.Queue[dict[str, Any] | None]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        try:
            await queue.put(json.loads(line))
        except ValueError:
            continue
    await queue.put(None)  # the gateway is gone: hang up


async def run() -> int:
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    reader = asyncio.create_task(_commands(queue))
    first = await queue.get()
    if first is None or first.get("op") != "start":
        return 2
    call = Call(first)
    loop = asyncio.get_running_loop()
    hung_up = False
    try:
        while (result := call.result()) is None:
            try:
                command = await asyncio.wait_for(queue.get(), _WATCH_S)
            except TimeoutError:
                command = {}
            if command is None or command.get("op") == "hangup":
                if call.engine is None:
                    break
                hung_up = True
                call.hang_up()
            elif command.get("op") == "audio":
                await call.audio(
                    int(command["port"]), tuple(command["remote"]), int(command["payload"])
                )
                _emit("media", mode="audio")
            elif command.get("op") == "t38":
                await call.t38(
                    int(command["port"]),
                    tuple(command["remote"]),
                    int(command.get("max_datagram", 400)),
                )
                _emit("media", mode="t38")
            if (
                isinstance(call.media, RtpAudio)
                and not hung_up
                and loop.time() - call.media.last_packet > MEDIA_TIMEOUT_S
            ):
                hung_up = True
                call.hang_up()
        if result is None:
            _emit(
                "result",
                ok=False,
                code=-1,
                text="no media",
                pages=0,
                bit_rate=0,
                ecm=False,
                remote_ident="",
                mode="",
                switched=False,
                hung_up=True,
            )
        else:
            _emit(
                "result",
                **asdict(result),
                ok=result.ok,
                mode=call.mode,
                switched=call.switched,
                hung_up=hung_up,
            )
        # The last frames (the receiver's MCF, the DCN) still go out before the socket closes.
        await asyncio.sleep(0.5 if not hung_up else 0)
        return 0
    finally:
        call.close()
        reader.cancel()


def main() -> None:
    sys.exit(asyncio.run(run()))


if __name__ == "__main__":
    main()
