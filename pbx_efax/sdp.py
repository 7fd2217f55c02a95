"""SDP for a fax endpoint (RFC 4566/3264): G.711 audio, or T.38 over UDPTL (T.38 Annex D).

A fax endpoint needs little of SDP: one stream, audio or image, its address, port and format,
and for T.38 the few attributes that change behaviour (version, rate management, the largest
datagram the peer takes, its error correction).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

PCMA, PCMU = 8, 0
AUDIO_FORMATS = {PCMA: "PCMA/8000", PCMU: "PCMU/8000"}
T38_DEFAULTS = {
    "T38FaxVersion": "0",
    "T38MaxBitRate": "14400",
    "T38FaxRateManagement": "transferredTCF",
    "T38FaxMaxBuffer": "2000",
    "T38FaxMaxDatagram": "400",
    "T38FaxUdpEC": "t38UDPRedundancy",
}


class SdpError(ValueError):
    pass


@dataclass(frozen=True)
class Stream:
    kind: str  # "audio" or "image"
    address: str
    port: int  # 0: declined
    formats: tuple[str, ...]
    attributes: dict[str, str] = field(default_factory=dict)  # name -> value ("" for flags)

    @property
    def t38(self) -> bool:
        return self.kind == "image" and "t38" in self.formats

    @property
    def audio_payload(self) -> int | None:
        """The first of the offered payload types a fax can use (A-law first, then µ-law)."""
        for f in self.formats:
            if f.isdigit() and int(f) in AUDIO_FORMATS:
                return int(f)
        return None

    @property
    def max_datagram(self) -> int:
        value = self.attributes.get("T38FaxMaxDatagram", "")
        return int(value) if value.isdigit() and int(value) >= 100 else 400


@dataclass(frozen=True)
class Session:
    streams: tuple[Stream, ...]

    def usable(self) -> Stream | None:
        """The stream a fax call can use: T.38 where offered, else G.711 audio."""
        live = [s for s in self.streams if s.port]
        return next((s for s in live if s.t38), None) or next(
            (s for s in live if s.kind == "audio" and s.audio_payload is not None), None
        )


def parse(text: str) -> Session:
    session_address = ""
    streams: list[Stream] = []
    current: dict[str, object] | None = None

    def close() -> None:
        if current is not None:
            address = str(current["address"] or session_address)
            if not address:
                raise SdpError("a media stream without a connection address")
            streams.append(
                Stream(
                    kind=str(current["kind"]),
                    address=address,
                    port=int(str(current["port"])),
                    formats=tuple(current["formats"]),  # type: ignore[arg-type]
                    attributes=dict(current["attributes"]),  # type: ignore[call-overload]
                )
            )

    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        key, value = line[0], line[2:]
        if key == "m":
            close()
            parts = value.split()
            if len(parts) < 4 or not parts[1].split("/")[0].isdigit():
                raise SdpError(f"malformed media line: {value!r}")
            current = {
                "kind": parts[0],
                "port": int(parts[1].split("/")[0]),
                "formats": parts[3:],
                "address": "",
                "attributes": {},
            }
        elif key == "c":
            parts = value.split()
            if len(parts) != 3 or parts[1] != "IP4":
                raise SdpError(f"unsupported connection line: {value!r}")
            if current is None:
                session_address = parts[2]
            else:
                current["address"] = parts[2]
        elif key == "a" and current is not None:
            name, _, attr_value = value.partition(":")
            current["attributes"][name] = attr_value  # type: ignore[index]
    close()
    if not streams:
        raise SdpError("no media stream")
    return Session(tuple(streams))


class Builder:
    """Our side's SDP: one origin per dialog, its version counting up with each change."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._id = secrets.randbelow(2**31)
        self._version = 0

    def _head(self) -> list[str]:
        self._version += 1
        return [
            "v=0",
            f"o=pbx-efax {self._id} {self._version} IN IP4 {self.address}",
            "s=fax",
            f"c=IN IP4 {self.address}",
            "t=0 0",
        ]

    def audio(self, port: int, payloads: tuple[int, ...] = (PCMA, PCMU)) -> str:
        lines = [*self._head(), f"m=audio {port} RTP/AVP {' '.join(map(str, payloads))}"]
        lines += [f"a=rtpmap:{pt} {AUDIO_FORMATS[pt]}" for pt in payloads]
        lines += ["a=ptime:20", "a=sendrecv"]
        return "\r\n".join(lines) + "\r\n"

    def t38(self, port: int, remote: Stream | None = None) -> str:
        """An image stream (T.38 version 0, which every peer speaks); answering, it takes the
        offer's rate management and states the datagram size we accept."""
        attributes = dict(T38_DEFAULTS)
        if remote is not None and remote.attributes.get("T38FaxRateManagement"):
            attributes["T38FaxRateManagement"] = remote.attributes["T38FaxRateManagement"]
        lines = [*self._head(), f"m=image {port} udptl t38"]
        lines += [f"a={name}:{value}" for name, value in attributes.items()]
        return "\r\n".join(lines) + "\r\n"

    def declined(self, kinds: tuple[str, ...]) -> str:
        """Every offered stream refused (port 0), in the offer's order (RFC 3264 6)."""
        lines = self._head()
        for kind in kinds:
            lines.append(f"m={kind} 0 {'udptl t38' if kind == 'image' else 'RTP/AVP 8'}")
        return "\r\n".join(lines) + "\r\n"
