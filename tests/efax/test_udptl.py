"""UDPTL framing and redundancy: what a lossy, reordering network does to T.38 packets, and
what the receiver hands the engine."""

from __future__ import annotations

import random

import pytest

from pbx_efax import udptl


def test_a_datagram_round_trips_with_its_copies() -> None:
    d = udptl.Datagram(65535, b"\x06" * 300, (b"a", b"bb" * 100))
    assert udptl.decode(udptl.encode(d)) == d


def test_known_bytes() -> None:
    # seq 1, primary "\x00\x02" (a CNG indicator), one copy "\x00\x00": as T.38 Annex A lays out.
    data = udptl.encode(udptl.Datagram(1, b"\x00\x02", (b"\x00\x00",)))
    assert data == bytes.fromhex("00010200020001020000")


def test_fec_datagrams_yield_their_primary() -> None:
    data = bytes.fromhex("00070142800102")
    assert udptl.decode(data) == udptl.Datagram(7, b"\x42")


@pytest.mark.parametrize(
    "data", [b"", b"\x00\x01", b"\x00\x01\x05ab", b"\x00\x01\x01a", b"\x00\x01\x01a\x00\x02\x01x"]
)
def test_truncated_datagrams_are_refused(data: bytes) -> None:
    with pytest.raises(udptl.UdptlError):
        udptl.decode(data)


def test_copies_shrink_to_the_peers_largest_datagram() -> None:
    sender = udptl.Sender(redundancy=3, max_datagram=120)
    for _ in range(4):
        data = sender.datagram(b"x" * 50)
    assert len(data) <= 120
    assert udptl.decode(data).primary == b"x" * 50


@pytest.mark.parametrize("loss", [0.0, 0.1, 0.3])
def test_redundancy_recovers_what_the_network_loses(loss: float) -> None:
    rng = random.Random(20)
    sender, receiver = udptl.Sender(redundancy=3), udptl.Receiver()
    sender.seq = 65_000  # the run crosses the 16-bit wrap
    sent = [i.to_bytes(2, "big") * (1 + i % 7) for i in range(20_000)]
    wire = [sender.datagram(p) for p in sent]
    # Some datagrams lost, some delivered twice, neighbours swapped now and then.
    delivered = []
    for data in wire:
        if rng.random() >= loss:
            delivered.append(data)
            if rng.random() < 0.05:
                delivered.append(data)
    for i in range(0, len(delivered) - 1, 50):
        delivered[i], delivered[i + 1] = delivered[i + 1], delivered[i]
    got = [pkt for data in delivered for pkt in receiver.packets(data)]
    seqs = [seq for seq, _ in got]
    # Every packet at most once, in order (modulo the wrap), with its own content.
    assert len(seqs) == len(set(seqs))
    indexes = [(seq - 65_000) % (1 << 16) for seq, _ in got]
    assert indexes == sorted(indexes)
    assert all(sent[i] == packet for i, (_, packet) in zip(indexes, got, strict=True))
    lost = len(sent) - len(got)
    if loss == 0.0:
        assert lost <= len(sent) // 50  # only what the swaps made late
    else:
        # Three copies: a packet is gone only when four datagrams in a row are.
        assert lost / len(sent) < loss**4 * 10 + 0.002, lost
