"""spandsp's fax engines driven through the binding, back to back in one process (faster than
real time): a three-page letter goes through as a real fax over audio (V.17/V.29 with ECM and
without) and over T.38, and arrives as the same pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit.fax import SIMILARITY_THRESHOLD, letter, pdf_pages, similarity
from pbx_efax import spandsp
from pbx_efax.documents import DocumentError, fax_pages, to_pdf

BLOCK = 160  # 20 ms of samples
# A fax of three pages takes about 80 s of line time; anything near the T.30 timeouts fails.
LINE_SECONDS_LIMIT = 200


@pytest.fixture(scope="module")
def three_pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("doc") / "sent.tif"
    assert fax_pages(letter(3), out) == 3
    return out


def audio_fax(sent: Path, received: Path, ecm: bool) -> tuple[spandsp.Result, spandsp.Result]:
    sender = spandsp.AudioFax(calling=True, ident="+49 30 1111", ecm=ecm)
    receiver = spandsp.AudioFax(calling=False, ident="+49 89 2222", ecm=ecm)
    sender.send_file(str(sent))
    receiver.receive_file(str(received))
    try:
        for _ in range(LINE_SECONDS_LIMIT * 50):
            receiver.receive(sender.transmit(BLOCK))
            sender.receive(receiver.transmit(BLOCK))
            if sender.result and receiver.result:
                break
        assert sender.result, "the sender's fax did not end"
        assert receiver.result, "the receiver's fax did not end"
        return sender.result, receiver.result
    finally:
        sender.close()
        receiver.close()


@pytest.mark.parametrize("ecm", [True, False], ids=["ecm", "no-ecm"])
def test_three_pages_over_audio(three_pages: Path, tmp_path: Path, ecm: bool) -> None:
    received = tmp_path / "received.tif"
    sent_result, received_result = audio_fax(three_pages, received, ecm)
    assert sent_result.ok, sent_result
    assert received_result.ok, received_result
    assert (sent_result.pages, received_result.pages) == (3, 3)
    assert sent_result.bit_rate == 14400, sent_result
    assert sent_result.ecm == ecm, sent_result
    assert received_result.remote_ident == "+49 30 1111"
    scores = similarity(three_pages, received)
    assert min(scores) >= SIMILARITY_THRESHOLD, scores


def test_three_pages_over_t38(three_pages: Path, tmp_path: Path) -> None:
    received = tmp_path / "received.tif"
    wire: dict[str, list[bytes]] = {"to_receiver": [], "to_sender": []}
    sender = spandsp.T38Fax(
        calling=True, send=lambda p, n: wire["to_receiver"].append(p), ident="+49 30 1111"
    )
    receiver = spandsp.T38Fax(
        calling=False, send=lambda p, n: wire["to_sender"].append(p), ident="+49 89 2222"
    )
    sender.send_file(str(three_pages))
    receiver.receive_file(str(received))
    seq = {"to_receiver": 0, "to_sender": 0}
    try:
        for _ in range(LINE_SECONDS_LIMIT * 50):
            sender.tick(BLOCK)
            receiver.tick(BLOCK)
            for direction, engine in (("to_receiver", receiver), ("to_sender", sender)):
                for packet in wire[direction]:
                    engine.receive(packet, seq[direction])
                    seq[direction] += 1
                wire[direction].clear()
            if sender.result and receiver.result:
                break
        assert sender.result, "the sender's fax did not end"
        assert sender.result.ok, sender.result
        assert receiver.result, "the receiver's fax did not end"
        assert receiver.result.ok, receiver.result
        assert receiver.result.pages == 3
    finally:
        sender.close()
        receiver.close()
    assert min(similarity(three_pages, received)) >= SIMILARITY_THRESHOLD


def test_received_pages_become_a_pdf(three_pages: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "fax.pdf"
    to_pdf(three_pages, pdf)
    assert pdf.read_bytes().startswith(b"%PDF-")
    # The PDF renders back to the same three pages.
    again = pdf_pages(pdf.read_bytes(), tmp_path / "again.tif")
    assert min(similarity(three_pages, again)) >= SIMILARITY_THRESHOLD


def test_a_different_document_is_not_similar(three_pages: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.tif"
    fax_pages(letter(3, title="Anderes Dokument mit anderem Text"), other)
    assert max(similarity(three_pages, other)) < SIMILARITY_THRESHOLD
    two = tmp_path / "two.tif"
    fax_pages(letter(2), two)
    assert similarity(three_pages, two)[-1] == 0.0


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"hello", "document_type_unsupported"),
        (b"%PDF-1.4\nnot a pdf at all", "document_unreadable"),
        (b"II*\x00garbage", "document_unreadable"),
    ],
)
def test_documents_that_cannot_be_faxed_say_why(data: bytes, code: str, tmp_path: Path) -> None:
    with pytest.raises(DocumentError) as e:
        fax_pages(data, tmp_path / "out.tif")
    assert e.value.code == code
