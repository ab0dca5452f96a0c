#!/usr/bin/env python3
"""make_corpus_core.py - writes the seed corpus of fuzz_core (tests/fuzz/corpus_core/).

A seed is a little program (fuzz_core.c's header comment has the format): three header
bytes (proxies, master IDs, history_by_ref, interceptor, history kept, depth limit, start
snapshot), then ops, one byte each ((proxy << 4) | kind), each followed by the bytes it
reads. The seeds cover every header option and every op: a few written out by hand
(collisions of created IDs, a stale flush with and without history, pushes, resets), the
rest drawn from a fixed random stream weighted towards local commands and flushes. Run it
from anywhere; it rewrites the directory."""
import random

from seeds import write_corpus

APPLY, BEGIN, SEND, DELIVER, FLUSH, CANCEL, PUSH, RESET, COMPACT, QUIESCE = (
    0, 5, 6, 7, 8, 9, 10, 12, 13, 14)


def op(kind, proxy=0, *args):
    return bytes([(proxy << 4) | kind, *args])


def create(proxy, path_index=0, props=(1, 2, 0x10, 2, 7)):
    """A create at the proxy's path_index-th map with a map of one int (c = 0x02)."""
    return op(APPLY, proxy, 0x00, 0x02, path_index, *props)


def header(proxies3=False, random_ids=False, by_ref=False, icpt=0, keep_pd=False, window=0,
           depth8=False, icpt_fail=False, seed=0, start=0):
    b0 = proxies3 | random_ids << 1 | by_ref << 2 | icpt << 3 | keep_pd << 5 | window << 6
    b1 = depth8 | icpt_fail << 1 | seed << 2
    return bytes([b0, b1, start])


seeds = {}
# Two proxies create under the root with the same sequential ID: the master remaps one.
seeds["collide"] = header() + create(0) + create(1) + op(FLUSH, 0, 0, 0) + op(FLUSH, 1, 0, 0)
# The second flush is stale: history gives a partial sync, none gives a full one.
for w, name in ((0, "stale_partial"), (3, "stale_full"), (1, "stale_window4")):
    seeds[name] = (header(window=w) + create(0) + create(1) + op(BEGIN, 1, 0) + op(FLUSH, 0, 0, 0)
                   + op(SEND, 1) + create(1, 1) + op(DELIVER, 1, 1) + op(QUIESCE, 0, 0, 1, 0))
seeds["by_ref"] = header(by_ref=True) + seeds["stale_partial"][3:]
seeds["push_reset"] = (header(proxies3=True) + create(0) + op(FLUSH, 0, 0, 0) + op(PUSH, 1, 0x80)
                       + op(PUSH, 2, 0x45) + op(RESET, 2) + create(2, 1) + op(FLUSH, 2, 0, 0))
seeds["cancel"] = header() + create(0) + create(0) + op(BEGIN, 0, 1) + op(CANCEL, 0) + op(FLUSH, 0, 0, 0)
seeds["reject_replace"] = header(icpt=3, seed=5) + b"".join(create(i % 2) for i in range(6)) + op(
    QUIESCE, 0, 1, 0)
seeds["depth8"] = header(depth8=True) + b"".join(create(0, i) for i in range(10)) + op(FLUSH, 0, 0, 0)
seeds["start_doc"] = header(start=3) + bytes([3, 0, 2, 8, 0, 1, 0x41, 2, 5]) + create(1) + op(
    FLUSH, 1, 0, 0) + op(PUSH, 0, 3)
seeds["compact"] = header() + create(0) + op(COMPACT) + op(QUIESCE, 0, 0, 0)
seeds["icpt_fail"] = header(icpt=1, icpt_fail=True) + b"".join(create(0) for _ in range(4)) + op(
    FLUSH, 0, 0, 0)

rnd = random.Random(20261202)
kinds = [APPLY] * 8 + [BEGIN, SEND, DELIVER, FLUSH, FLUSH, CANCEL, PUSH, RESET, COMPACT, QUIESCE]
for i in range(20):
    h = header(proxies3=bool(i & 1), random_ids=bool(i & 2), by_ref=bool(i & 4), icpt=(i >> 1) % 4,
               keep_pd=bool(i & 8), window=(i >> 2) % 4, depth8=(i % 7 == 0), seed=i,
               start=(0 if i % 3 else rnd.randrange(1, 40)))
    body = bytearray(rnd.randrange(256) for _ in range(12 if h[2] else 0))
    for _ in range(rnd.randrange(8, 40)):
        k = rnd.choice(kinds)
        body += op(k, rnd.randrange(3), *(rnd.randrange(256) for _ in range(6 if k == APPLY else 2)))
    seeds[f"random_{i:02d}"] = h + bytes(body)

write_corpus("corpus_core", seeds)
