#!/usr/bin/env python3
"""make_corpus_ws.py - writes the seed corpus of fuzz_ws (tests/fuzz/corpus_ws/).

Each seed is one control byte (bit 0: parse as a server, so frames are masked; bits 1-2: the
message limit; bits 3-7: the piece size) and a stream of RFC 6455 frames: the RFC's
examples, every length encoding, fragments with control frames between, close frames,
UTF-8 edge cases and a few violations. Run it from anywhere; it rewrites the directory."""
import struct

from seeds import write_corpus

KEY = bytes([0x37, 0xFA, 0x21, 0x3D])


def frame(op, payload=b"", fin=True, mask=None):
    n = len(payload)
    b0 = (0x80 if fin else 0) | op
    m = 0x80 if mask else 0
    if n < 126:
        h = bytes([b0, m | n])
    elif n <= 0xFFFF:
        h = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        h = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        h += mask
    return h + payload


def both(name, frames, ctl=0x18):
    """The stream as a client reads it (unmasked) and as a server does (masked)."""
    seeds[name + "_client"] = bytes([ctl & ~1]) + b"".join(frame(*f) for f in frames)
    seeds[name + "_server"] = bytes([ctl | 1]) + b"".join(frame(*f, mask=KEY) for f in frames)


seeds = {}
both("hello", [(1, b"Hello")])
both("lengths", [(2, b"x" * 125), (2, b"y" * 126), (2, bytes(range(256)) * 4)])
both("fragments", [(1, "h\u00e9".encode()[:2], False), (9, b"p0"), (0, "h\u00e9".encode()[2:], False),
                   (0, b"!", True), (2, b"one"), (10, b"")])
both("close", [(2, b"a"), (8, struct.pack(">H", 1000) + b"bye")])
both("close_empty", [(8, b"")])
both("close_bad_code", [(8, struct.pack(">H", 1005))])
both("utf8_edges", [(1, "\u07ff\uffff\U0010ffff".encode()), (1, b"\xed\xa0\x80")])
both("utf8_split", [(1, b"\xf0\x9f", False), (0, b"\x98", False), (0, b"\x80", True)])
both("cont_first", [(0, b"x")])
both("limit", [(2, b"z" * 40)], ctl=0x02)  # limit 16
seeds["big_64bit_client"] = bytes([0x06]) + frame(2, b"q" * 70000)[:64]  # limit 70000
seeds["rsv_client"] = bytes([0]) + bytes([0xC2, 0x00])
seeds["nonminimal_client"] = bytes([0]) + bytes([0x82, 0x7E, 0x00, 0x05]) + b"hello"

write_corpus("corpus_ws", seeds)
