"""spandsp 0.0.6 through ctypes: the fax engines (T.30 over V.17/V.29/V.27ter audio, or over
T.38) and G.711. Debian ships the library without a Python binding; every piece of fax DSP and
protocol comes from it, none is written here.

One engine is one fax call. spandsp calls back into Python (a T.38 packet to send, the end of the
call) from inside the calls made here, on the same thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SAMPLE_RATE = 8000

# t30.h
_V27TER, _V29, _V17 = 0x01, 0x02, 0x04
_T4_1D, _T4_2D, _T6 = 0x02, 0x04, 0x08
_STANDARD, _FINE, _SUPERFINE = 0x01, 0x02, 0x04
_R8, _R16 = 0x20000, 0x40000
_WIDTH_215MM = 0x01
_A4, _LETTER, _UNLIMITED = 0x20000, 0x80000, 0x10000
T30_ERR_OK = 0
# g711.h
ALAW, ULAW = 0, 1
# logging.h: what goes to stderr when PBX_EFAX_DSP_LOG is set (flow: every T.30 step).
_LOG_FLOW_WITH_TAGS = 5 | 0x0400 | 0x0800 | 0x2000


class _Stats(ctypes.Structure):
    """t30_stats_t (t30.h, 0.0.6): fifteen ints."""

    _fields_ = [
        (name, ctypes.c_int)
        for name in (
            "bit_rate",
            "error_correcting_mode",
            "pages_tx",
            "pages_rx",
            "pages_in_file",
            "x_resolution",
            "y_resolution",
            "width",
            "length",
            "image_size",
            "encoding",
            "bad_rows",
            "longest_bad_row_run",
            "error_correcting_mode_retries",
            "current_status",
        )
    ]


_PhaseE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)
_T38Tx = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint8),
    ctypes.c_int,
    ctypes.c_int,
)
_P = ctypes.c_void_p
_I = ctypes.c_int
_S = ctypes.c_char_p
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "fax_init": (_P, [_P, _I]),
    "fax_free": (_I, [_P]),
    "fax_rx": (_I, [_P, _P, _I]),
    "fax_tx": (_I, [_P, _P, _I]),
    "fax_rx_fillin": (_I, [_P, _I]),
    "fax_set_transmit_on_idle": (None, [_P, _I]),
    "fax_get_t30_state": (_P, [_P]),
    "fax_get_logging_state": (_P, [_P]),
    "t38_terminal_init": (_P, [_P, _I, _T38Tx, _P]),
    "t38_terminal_free": (_I, [_P]),
    "t38_terminal_send_timeout": (_I, [_P, _I]),
    "t38_terminal_set_config": (None, [_P, _I]),
    "t38_terminal_get_t30_state": (_P, [_P]),
    "t38_terminal_get_t38_core_state": (_P, [_P]),
    "t38_terminal_get_logging_state": (_P, [_P]),
    "t38_core_rx_ifp_packet": (_I, [_P, _P, _I, ctypes.c_uint16]),
    "t38_set_t38_version": (None, [_P, _I]),
    "t38_set_max_datagram_size": (None, [_P, _I]),
    "t38_set_fastest_image_data_rate": (None, [_P, _I]),
    "t30_set_tx_file": (None, [_P, _S, _I, _I]),
    "t30_set_rx_file": (None, [_P, _S, _I]),
    "t30_set_tx_ident": (_I, [_P, _S]),
    "t30_get_rx_ident": (_S, [_P]),
    "t30_set_tx_page_header_info": (_I, [_P, _S]),
    "t30_set_ecm_capability": (_I, [_P, _I]),
    "t30_set_supported_modems": (_I, [_P, _I]),
    "t30_set_supported_compressions": (_I, [_P, _I]),
    "t30_set_supported_resolutions": (_I, [_P, _I]),
    "t30_set_supported_image_sizes": (_I, [_P, _I]),
    "t30_set_phase_e_handler": (None, [_P, _PhaseE, _P]),
    "t30_get_transfer_statistics": (None, [_P, ctypes.POINTER(_Stats)]),
    "t30_completion_code_to_str": (_S, [_I]),
    "t30_terminate": (None, [_P]),
    "t30_call_active": (_I, [_P]),
    "span_log_set_level": (_I, [_P, _I]),
    "g711_init": (_P, [_P, _I]),
    "g711_free": (_I, [_P]),
    "g711_decode": (_I, [_P, _P, _P, _I]),
    "g711_encode": (_I, [_P, _P, _P, _I]),
}


def _load() -> ctypes.CDLL:
    name = os.environ.get("PBX_SPANDSP_LIB") or ctypes.util.find_library("spandsp")
    if not name:
        raise OSError("libspandsp is not installed (Debian: libspandsp2t64)")
    lib = ctypes.CDLL(name)
    for function, (restype, argtypes) in _SIGNATURES.items():
        getattr(lib, function).restype = restype
        getattr(lib, function).argtypes = argtypes
    return lib


_lib: ctypes.CDLL | None = None


def lib() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        _lib = _load()
    return _lib


@dataclass(frozen=True)
class Result:
    """How a fax call ended (phase E), from the T.30 engine's own statistics."""

    code: int  # T30_ERR_*: 0 is success
    text: str  # spandsp's words for the code
    pages: int  # pages transferred (sent or received, by the engine's role)
    bit_rate: int
    ecm: bool
    remote_ident: str  # the other machine's TSI/CSI, as it sent it

    @property
    def ok(self) -> bool:
        return self.code == T30_ERR_OK


class _Engine:
    """What both engines share: the T.30 state, its configuration and phase E."""

    _t30: int

    def _setup_t30(self, *, ident: str, header: str, ecm: bool, sending: bool) -> None:
        spandsp = lib()
        t30 = self._t30
        spandsp.t30_set_tx_ident(t30, ident.encode("ascii", "replace")[:20])
        if header:
            spandsp.t30_set_tx_page_header_info(t30, header.encode("ascii", "replace")[:50])
        spandsp.t30_set_ecm_capability(t30, int(ecm))
        spandsp.t30_set_supported_modems(t30, _V27TER | _V29 | _V17)
        # T.6 only with ECM (T.30): the engine picks the best both ends have.
        spandsp.t30_set_supported_compressions(t30, _T4_1D | _T4_2D | (_T6 if ecm else 0))
        spandsp.t30_set_supported_resolutions(t30, _STANDARD | _FINE | _SUPERFINE | _R8 | _R16)
        spandsp.t30_set_supported_image_sizes(t30, _WIDTH_215MM | _A4 | _LETTER | _UNLIMITED)
        self._sending = sending
        self.result: Result | None = None
        self._phase_e = _PhaseE(self._on_phase_e)
        spandsp.t30_set_phase_e_handler(t30, self._phase_e, None)

    def _on_phase_e(self, _t30: int, _user: int, code: int) -> None:
        spandsp = lib()
        stats = _Stats()
        spandsp.t30_get_transfer_statistics(self._t30, ctypes.byref(stats))
        remote = spandsp.t30_get_rx_ident(self._t30) or b""
        self.result = Result(
            code=code,
            text=(spandsp.t30_completion_code_to_str(code) or b"").decode("ascii", "replace"),
            pages=stats.pages_tx if self._sending else stats.pages_rx,
            bit_rate=stats.bit_rate,
            ecm=bool(stats.error_correcting_mode),
            remote_ident=remote.decode("ascii", "replace").strip(),
        )

    def send_file(self, tiff: str) -> None:
        lib().t30_set_tx_file(self._t30, tiff.encode(), -1, -1)

    def receive_file(self, tiff: str) -> None:
        lib().t30_set_rx_file(self._t30, tiff.encode(), -1)

    def hang_up(self) -> None:
        """The call is gone (BYE, media lost): phase E now, with what was transferred."""
        if self.result is None:
            lib().t30_terminate(self._t30)

    def _log(self, logging_state: int) -> None:
        if os.environ.get("PBX_EFAX_DSP_LOG"):
            lib().span_log_set_level(logging_state, _LOG_FLOW_WITH_TAGS)


class AudioFax(_Engine):
    """A fax machine on an audio line (G.711): 16-bit linear samples in and out at 8 kHz."""

    def __init__(
        self, *, calling: bool, ident: str = "", header: str = "", ecm: bool = True
    ) -> None:
        spandsp = lib()
        self._state = spandsp.fax_init(None, int(calling))
        if not self._state:
            raise MemoryError("fax_init failed")
        self._t30 = spandsp.fax_get_t30_state(self._state)
        # Silence while idle keeps the far end's jitter buffer and the relay's timers fed.
        spandsp.fax_set_transmit_on_idle(self._state, 1)
        self._log(spandsp.fax_get_logging_state(self._state))
        self._setup_t30(ident=ident, header=header, ecm=ecm, sending=calling)

    def receive(self, samples: array[int]) -> None:
        buffer, _ = samples.buffer_info()
        lib().fax_rx(self._state, buffer, len(samples))

    def fill_in(self, count: int) -> None:
        """`count` samples were lost on the way: the modems keep their timing."""
        lib().fax_rx_fillin(self._state, count)

    def transmit(self, count: int) -> array[int]:
        samples = array("h", bytes(2 * count))
        buffer, _ = samples.buffer_info()
        produced = lib().fax_tx(self._state, buffer, count)
        # Idle output is silence of the full length (transmit_on_idle); anything shorter is
        # padded so that the RTP clock never skips.
        return (
            samples
            if produced == count
            else samples[:produced] + array("h", bytes(2 * (count - produced)))
        )

    def close(self) -> None:
        if self._state:
            lib().fax_free(self._state)
            self._state = None


class T38Fax(_Engine):
    """A fax terminal speaking T.38 (IFP packets): `send(packet, count)` is called with each
    packet to put on the wire `count` times (spandsp repeats indicators itself)."""

    def __init__(
        self,
        *,
        calling: bool,
        send: Callable[[bytes, int], None],
        ident: str = "",
        header: str = "",
        ecm: bool = True,
        max_datagram: int = 400,
    ) -> None:
        spandsp = lib()
        self._send = send
        self._tx = _T38Tx(self._on_packet)
        self._state = spandsp.t38_terminal_init(None, int(calling), self._tx, None)
        if not self._state:
            raise MemoryError("t38_terminal_init failed")
        core = spandsp.t38_terminal_get_t38_core_state(self._state)
        self._core = core
        spandsp.t38_set_t38_version(core, 0)
        spandsp.t38_set_max_datagram_size(core, max_datagram)
        spandsp.t38_set_fastest_image_data_rate(core, 14400)
        # Paced output with indicators, as a gateway or a real terminal sends them.
        spandsp.t38_terminal_set_config(self._state, 0)
        self._t30 = spandsp.t38_terminal_get_t30_state(self._state)
        self._log(spandsp.t38_terminal_get_logging_state(self._state))
        self._setup_t30(ident=ident, header=header, ecm=ecm, sending=calling)

    def _on_packet(self, _core: int, _user: int, buf: Any, length: int, count: int) -> int:
        self._send(ctypes.string_at(buf, length), max(count, 1))
        return 0

    def receive(self, packet: bytes, seq: int) -> None:
        """One IFP packet with its UDPTL sequence number (the engine spots gaps by it)."""
        buffer = (ctypes.c_uint8 * len(packet)).from_buffer_copy(packet)
        lib().t38_core_rx_ifp_packet(self._core, buffer, len(packet), seq & 0xFFFF)

    def tick(self, samples: int) -> None:
        """Time passes (in 8 kHz samples): timers run and paced packets go out."""
        lib().t38_terminal_send_timeout(self._state, samples)

    def close(self) -> None:
        if self._state:
            lib().t38_terminal_free(self._state)
            self._state = None


class G711:
    """A-law or µ-law to 16-bit linear and back (RTP payload types 8 and 0)."""

    def __init__(self, law: int) -> None:
        self._state = lib().g711_init(None, law)

    def decode(self, payload: bytes) -> array[int]:
        samples = array("h", bytes(2 * len(payload)))
        data = (ctypes.c_uint8 * len(payload)).from_buffer_copy(payload)
        lib().g711_decode(self._state, samples.buffer_info()[0], data, len(payload))
        return samples

    def encode(self, samples: array[int]) -> bytes:
        out = (ctypes.c_uint8 * len(samples))()
        lib().g711_encode(self._state, out, samples.buffer_info()[0], len(samples))
        return bytes(out)

    def close(self) -> None:
        if self._state:
            lib().g711_free(self._state)
            self._state = None
