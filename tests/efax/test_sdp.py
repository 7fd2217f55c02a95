"""SDP as a fax endpoint meets it: carriers' and relays' offers, audio and T.38."""

from __future__ import annotations

import pytest

from pbx_efax import sdp

CARRIER_AUDIO = (
    "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    "m=audio 30000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)
REINVITE_T38 = (
    "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n"
    "m=image 30002 udptl t38\r\nc=IN IP4 192.0.2.9\r\na=T38FaxVersion:0\r\n"
    "a=T38FaxRateManagement:transferredTCF\r\na=T38FaxMaxDatagram:272\r\n"
    "a=T38FaxUdpEC:t38UDPRedundancy\r\n"
)


def test_audio_offer_takes_a_g711_payload() -> None:
    stream = sdp.parse(CARRIER_AUDIO).usable()
    assert stream is not None
    assert (stream.kind, stream.address, stream.port, stream.audio_payload) == (
        "audio", "192.0.2.1", 30000, 0,
    )  # fmt: skip


def test_t38_offer_with_media_level_address_and_datagram_size() -> None:
    stream = sdp.parse(REINVITE_T38).usable()
    assert stream is not None
    assert stream.t38
    assert (stream.address, stream.port, stream.max_datagram) == ("192.0.2.9", 30002, 272)


def test_t38_preferred_when_both_are_offered() -> None:
    both = CARRIER_AUDIO + REINVITE_T38.split("t=0 0\r\n", 1)[1]
    stream = sdp.parse(both).usable()
    assert stream is not None
    assert stream.t38


def test_nothing_usable_in_an_offer_of_other_codecs_or_declined_streams() -> None:
    assert sdp.parse(CARRIER_AUDIO.replace("RTP/AVP 0 8 101", "RTP/AVP 9 101")).usable() is None
    assert sdp.parse(REINVITE_T38.replace("image 30002", "image 0")).usable() is None


@pytest.mark.parametrize(
    "text",
    ["", "v=0\r\n", "v=0\r\nm=audio 1 RTP/AVP 8\r\n", "v=0\r\nc=IN IP6 ::1\r\nm=audio 1 RTP/AVP 8"],
)
def test_offers_a_fax_cannot_use_are_errors(text: str) -> None:
    with pytest.raises(sdp.SdpError):
        sdp.parse(text)


def test_answers_and_offers_parse_back() -> None:
    builder = sdp.Builder("10.0.0.5")
    offer = sdp.parse(builder.audio(40000))
    assert offer.usable() == sdp.Stream(
        "audio", "10.0.0.5", 40000, ("8", "0"),
        {"rtpmap": "0 PCMU/8000", "ptime": "20", "sendrecv": ""},
    )  # fmt: skip
    remote = sdp.parse(REINVITE_T38).usable()
    answer = builder.t38(40002, remote)
    assert "o=pbx-efax" in answer
    assert " 2 IN IP4" in answer  # the origin's version counts each change
    t38 = sdp.parse(answer).usable()
    assert t38 is not None
    assert t38.attributes["T38FaxVersion"] == "0"
    assert t38.attributes["T38FaxUdpEC"] == "t38UDPRedundancy"
    declined = sdp.parse(builder.declined(("audio", "image")))
    assert [s.port for s in declined.streams] == [0, 0]
