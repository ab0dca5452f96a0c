/* skim.h - reads the few fields of an `ack` or `push` frame that the load generator's
 * checks use straight from the MessagePack bytes, without building a value tree.
 *
 * Why: with K=10 and ten writers per model, acks carry syncs of ~100 commands and the
 * generator receives ~250 MB/s; decoding all of it with fo_wire_decode (scan, msgpack-c
 * unpack, conversion into an arena) took the generator's core before the hub's. The skim
 * is a bounded, non-recursive walk that skips what it does not need. It is not a
 * validator: flushout-bench still decodes every Nth frame with fo_wire_decode
 * (--check-every N) and compares the two readings.
 *
 * Frames it does not handle (any other `t`, an ack with `errors` or a non-empty
 * `mappedPaths`, anything malformed) return FO_EAGAIN or FO_EPROTO: decode those with
 * fo_wire_decode. */
#ifndef FO_SKIM_H
#define FO_SKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/command.h"
#include "proto/wire.h"

#define FO_SKIM_MAX_STAMPS 8

typedef struct fo_skim {
    fo_msg_type type;  /* FO_MSG_ACK or FO_MSG_PUSH */
    const char *model; /* points into the frame; not NUL-terminated */
    uint32_t model_len;
    uint64_t seq;          /* ack */
    uint64_t from;         /* ack: result.applied.from; push: diff.from */
    uint32_t len;          /* completions in that batch */
    fo_sync_kind sync;     /* ack */
    uint64_t sync_from;    /* partial: diff.from */
    uint32_t sync_len;     /* partial: diff.completions */
    uint64_t latest_count; /* full: latest.commandCount */
    uint32_t nstamps;      /* push: int values of props.t, in order (first few) */
    int64_t stamps[FO_SKIM_MAX_STAMPS];
} fo_skim;

/* 0 with *out filled; FO_EAGAIN when the frame is fine but not for the skim (another
 * type, an ack with errors or mappedPaths); FO_EPROTO when the bytes do not parse. */
int fo_skim_frame(const void *data, size_t len, fo_skim *out);

#endif
