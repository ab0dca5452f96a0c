#!/usr/bin/env python3
"""Writes the fuzz_wire seed corpus (tests/fuzz/corpus/): small valid frames of every
message type and a set of invalid ones. MessagePack is written by hand (no pip packages).

Usage: python3 tests/fuzz/make_corpus.py [OUTDIR]   (default: the corpus/ next to this file)
The output is deterministic; rerun it after changing the cases and commit the result."""
import os
import struct
import sys


class F32:
    def __init__(self, v):
        self.v = v


class Raw:
    """Bytes inserted as they are (for malformed frames)."""

    def __init__(self, b):
        self.b = b


class Bin:
    def __init__(self, b):
        self.b = b


def hdr(n, fix, fixmax, t8, t16, t32):
    if n <= fixmax:
        return bytes([fix | n])
    if t8 is not None and n <= 0xFF:
        return bytes([t8, n])
    if n <= 0xFFFF:
        return bytes([t16]) + struct.pack(">H", n)
    return bytes([t32]) + struct.pack(">I", n)


def pack(o):
    if isinstance(o, Raw):
        return o.b
    if o is None:
        return b"\xc0"
    if o is True:
        return b"\xc3"
    if o is False:
        return b"\xc2"
    if isinstance(o, int):
        if 0 <= o < 128:
            return bytes([o])
        if -32 <= o < 0:
            return struct.pack(">b", o)
        if o >= 0:
            for t, f, lim in ((0xCC, ">B", 1 << 8), (0xCD, ">H", 1 << 16),
                              (0xCE, ">I", 1 << 32), (0xCF, ">Q", 1 << 64)):
                if o < lim:
                    return bytes([t]) + struct.pack(f, o)
        for t, f, lim in ((0xD0, ">b", 1 << 7), (0xD1, ">h", 1 << 15),
                          (0xD2, ">i", 1 << 31), (0xD3, ">q", 1 << 63)):
            if -lim <= o:
                return bytes([t]) + struct.pack(f, o)
    if isinstance(o, float):
        return b"\xcb" + struct.pack(">d", o)
    if isinstance(o, F32):
        return b"\xca" + struct.pack(">f", o.v)
    if isinstance(o, str):
        b = o.encode("utf-8", "surrogatepass")
        return hdr(len(b), 0xA0, 31, 0xD9, 0xDA, 0xDB) + b
    if isinstance(o, bytes):  # a str with these exact bytes (may be invalid UTF-8)
        return hdr(len(o), 0xA0, 31, 0xD9, 0xDA, 0xDB) + o
    if isinstance(o, Bin):
        return hdr(len(o.b), 0, -1, 0xC4, 0xC5, 0xC6) + o.b
    if isinstance(o, list):
        return hdr(len(o), 0x90, 15, None, 0xDC, 0xDD) + b"".join(pack(x) for x in o)
    if isinstance(o, dict):
        return hdr(len(o), 0x80, 15, None, 0xDE, 0xDF) + b"".join(
            pack(k) + pack(v) for k, v in o.items())
    if isinstance(o, tuple):  # a map with possibly repeated or non-str keys
        return hdr(len(o), 0x80, 15, None, 0xDE, 0xDF) + b"".join(
            pack(k) + pack(v) for k, v in o)
    raise TypeError(o)


def batch(frm, *completions):
    return {"from": frm, "completions": list(completions)}


def comp(action, path=None, props=None, parent=None, created=None):
    cmd = {"action": action}
    if path is not None:
        cmd["path"] = path
    if props is not None:
        cmd["props"] = props
    if parent is not None:
        cmd["parentDefault"] = parent
    c = {"command": cmd}
    if created is not None:
        c["createdId"] = created
    return c


B = batch(7, comp("create", ["lists"], {"title": "milk", "n": -3, "f": 0.5}, {"k": {}}, "12"),
          comp("update", ["lists", "12"], {"done": True, "tags": ["a", None, 1]}),
          comp("detete", ["lists", "12"]))
DOC = {"lists": {"12": {"title": "milk", "u": 2**64 - 1, "i": -2**63}}}

VALID = {
    "hello": {"t": "hello", "rid": 1, "client": "c1", "token": "tok"},
    "sub": {"t": "sub", "rid": 2, "model": "todo:list-1", "from": 4},
    "unsub": {"t": "unsub", "model": "m"},
    "flush": {"t": "flush", "rid": 3, "model": "m", "seq": 1, "batch": B},
    "flush_empty": {"t": "flush", "model": "m", "seq": 0, "batch": batch(0)},
    "get": {"t": "get", "model": "m", "at": 3},
    "history": {"t": "history", "model": "m", "from": 1, "to": 9},
    "presence": {"t": "presence", "model": "m", "state": {"cursor": [1, 2]}},
    "presence_nil": {"t": "presence", "model": "m", "state": None},
    "welcome": {"t": "welcome", "rid": 1, "session": "s1", "server": "fo", "maxFrame": 1 << 20},
    "snap": {"t": "snap", "model": "m", "snapshot": {"commandCount": 3, "document": DOC}},
    "diff": {"t": "diff", "model": "m", "diff": B},
    "ok": {"t": "ok", "rid": 5},
    "ack_partial": {"t": "ack", "model": "m", "seq": 2, "result": {
        "applied": B,
        "sync": {"isPartial": True, "diff": B, "mappedPaths": {"lists,5": ["lists", "6"]}},
        "errors": [{"action": "update", "path": ["x"], "errorMessage": "No object at document path x"}]}},
    "ack_full": {"t": "ack", "model": "m", "seq": 3, "result": {
        "applied": batch(3),
        "sync": {"isPartial": False, "latest": {"commandCount": 9, "document": DOC},
                 "mappedPaths": {}}}},
    "push": {"t": "push", "model": "m", "diff": B},
    "presence_evt": {"t": "presence", "model": "m", "session": "s2", "state": {"name": "ann"}},
    "error": {"t": "error", "rid": 4, "model": "m", "code": "bad_request", "message": "seq"},
    "unknown_keys": {"t": "sub", "model": "m", "v2": {"x": [Bin(b"z")]}, "from": None},
    "nil_optionals": {"t": "flush", "rid": None, "model": "m", "seq": 1, "batch": batch(
        0, {"command": {"action": "create", "path": None, "props": None}, "createdId": None})},
    "float32": {"t": "presence", "model": "m", "state": {"x": F32(1.5), "y": -0.0}},
    "dup_keys": (("t", "presence"), ("model", "m"), ("state", {"a": 1}),
                 ("state", (("k", 1), ("k", 2)))),
    # the decoder's exact pass (wire_decode.c): `t` after other fields, a repeated `t`,
    # a bad value overwritten by a good one, a presence whose last session is nil
    "t_last": (("seq", 1), ("batch", B), ("model", "m"), ("rid", 8), ("t", "flush")),
    "t_twice": (("t", "hello"), ("client", "c"), ("t", "sub"), ("model", "m")),
    "bad_then_good": (("t", "flush"), ("model", "m"), ("seq", "x"), ("seq", 2),
                      ("batch", (("from", -1), ("completions", []), ("from", 0)))),
    "session_nil_last": (("t", "presence"), ("model", "m"), ("session", "s"),
                         ("session", None), ("state", None)),
    "batch_only": B,
    "value_array": [1, "two", 3.0, None, {"x": [True]}],
}

INVALID = {
    "empty": Raw(b""),
    "text": Raw(b'{"t":"hello"}'),
    "not_map": ["hello"],
    "trailing": Raw(pack({"t": "ok"}) + b"\x00"),
    "reserved_c1": Raw(b"\x81\xa1t\xc1"),
    "ext": Raw(b"\x81\xa1t\xd4\x01\x00"),
    "timestamp": Raw(b"\x81\xa1t\xd6\xff\x00\x00\x00\x00"),
    "huge_array": Raw(b"\x81\xa1t\xdd\xff\xff\xff\xff"),
    "huge_map": Raw(b"\xdf\xff\xff\xff\xff"),
    "huge_str": Raw(b"\x81\xa1t\xdb\x7f\xff\xff\xff"),
    "truncated": Raw(pack(VALID["flush"])[:-3]),
    "deep": Raw(b"\x83\xa1t\xa8presence\xa5model\xa1m\xa5state" + b"\x81\xa1k" * 40 + b"\x80"),
    "bad_t": {"t": "hullo"},
    "neg_seq": {"t": "flush", "model": "m", "seq": -1, "batch": batch(0)},
    "bad_path": {"t": "flush", "model": "m", "seq": 1,
                 "batch": batch(0, comp("create", ["a", 1]))},
    "bad_model": {"t": "sub", "model": "a b"},
    "long_model": {"t": "sub", "model": "m" * 201},
    "non_str_key": (("t", "ok"), (1, 2)),
    "bad_utf8": {"t": "hello", "client": b"\xed\xa0\x80"},
    "bin_value": {"t": "presence", "model": "m", "state": {"b": Bin(b"\x00\x01")}},
    "bad_action": {"t": "flush", "model": "m", "seq": 1, "batch": batch(0, comp("move"))},
    "bad_sync": {"t": "ack", "model": "m", "seq": 1,
                 "result": {"applied": batch(0), "sync": {"isPartial": 1}}},
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for prefix, cases in (("valid", VALID), ("invalid", INVALID)):
        for name, obj in cases.items():
            with open(os.path.join(out, f"{prefix}_{name}.mp"), "wb") as f:
                f.write(pack(obj))
    print(f"wrote {len(VALID) + len(INVALID)} seeds to {out}")


if __name__ == "__main__":
    main()
