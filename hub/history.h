/* history.h - a model's recent batches, kept as their encoded bytes for incremental syncs.
 *
 * An entry is the MessagePack CompletionBatch of one applied batch: a slice of a refcounted
 * frame, normally the push frame the batch was broadcast in (its `diff`, which is also the
 * store row), or a frame holding a row read back from the store. Nothing is decoded until
 * a sync, a `diff` reply or a catch-up needs the commands (fo_history_get).
 *
 * The ring holds a suffix of the model's log: entries are contiguous and the newest ends at
 * the model's count. --history N bounds how far back it may reach; the memory budget may
 * cut it shorter (fo_history_trim drops the oldest entries, only those already durable:
 * the store then has them). What is older than the ring is read back from the store when
 * a request needs it: the rows go in `disk` for the one request that asked, and
 * fo_history_get serves [from, to) from `disk` and the ring together. */
#ifndef FO_HISTORY_H
#define FO_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/frame.h"
#include "hub/store.h"
#include "proto/command.h"

typedef struct fo_hbatch {
    uint64_t from;
    uint32_t len;       /* commands; the batch ends at from + len */
    uint32_t off, size; /* the encoded batch is frame->data[off, off + size) */
    uint32_t items_off; /* its completions start at off + items_off (0: not known) */
    fo_frame *frame;    /* reference held */
} fo_hbatch;

typedef struct fo_history {
    fo_hbatch *ring; /* oldest first from `head` */
    uint32_t head, len, cap;
    uint64_t commands; /* commands in the ring */
    size_t bytes;      /* estimated heap footprint of the ring and its frames */
    /* Rows read back from the store for the request being run (fo_history_set_disk), and
     * whether the read was tried: a request that still misses after it falls back. */
    fo_store_result *disk;
    bool disk_tried;
} fo_history;

void fo_history_init(fo_history *h);
/* Drops every entry and the disk rows. */
void fo_history_destroy(fo_history *h);

/* Appends the batch [from, from + len) held at f->data[off, off + size) (takes a reference
 * of its own on f), then drops the oldest entries while the rest still reach `keep`
 * commands back (--history). The entry must continue the ring (from == its end) unless the
 * ring is empty. len == 0 or keep == 0 keeps nothing. 0, FO_ENOMEM or FO_EGAP. */
int fo_history_add(fo_history *h, uint64_t from, uint32_t len, fo_frame *f, uint32_t off,
                   uint32_t size, uint32_t keep);
/* Same for bytes that are not in a frame yet (a row read from the store): copies them. */
int fo_history_add_copy(fo_history *h, uint64_t from, uint32_t len, const void *p, size_t n,
                        uint32_t keep);

/* The count where the ring starts (UINT64_MAX when it is empty). */
uint64_t fo_history_start(const fo_history *h);
/* Drops the oldest entries that end at or before `durable` until the ring's footprint is
 * at most `max_bytes`. Returns the bytes freed. */
size_t fo_history_trim(fo_history *h, uint64_t durable, size_t max_bytes);

/* True when [from, to) can be served from the ring and the disk rows without a read. */
bool fo_history_covers(const fo_history *h, uint64_t from, uint64_t to);
/* The completions of [from, to), decoded into `a` (empty when from == to). 0, or -1 when
 * the ring and the disk rows do not cover the range, or a decode error / FO_ENOMEM. */
int fo_history_get(const fo_history *h, uint64_t from, uint64_t to, fo_arena *a, fo_batch *out);

/* The same range as encoded runs to splice into a frame (fo_msg.ext_parts), nothing
 * decoded: *parts (in `a`) borrow the ring's frames and the disk rows, so use them before
 * the ring changes. 0; FO_EGAP when the ring and disk rows do not cover [from, to) or
 * `to` falls inside an entry (fo_history_get can still serve that); FO_EPROTO (a row
 * that is not a batch) or FO_ENOMEM. */
int fo_history_parts(const fo_history *h, uint64_t from, uint64_t to, fo_arena *a,
                     fo_wire_part **parts, uint32_t *n);

/* Keeps `r` (taken over; may be NULL after a failed or gone read) as the disk rows, and
 * marks the read as tried. fo_history_clear_disk frees them once the request is done. */
void fo_history_set_disk(fo_history *h, fo_store_result *r);
void fo_history_clear_disk(fo_history *h);

/* Decodes the completions of [from, to) from store rows (contiguous, in log order) into
 * `a`. 0, FO_EGAP when the rows do not cover the range, or a decode error. */
int fo_history_from_rows(const fo_store_entry *rows, uint32_t n, uint64_t from, uint64_t to,
                         fo_arena *a, fo_batch *out);

#endif
