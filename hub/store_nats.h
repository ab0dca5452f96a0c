/* store_nats.h - the pieces of the NATS JetStream backend (store_nats.c) that tests and
 * later cluster modules use directly: how a model name becomes a subject, and how one
 * JetStream message (a "record") carries a model's writes of one commit.
 *
 * Layout in JetStream: one stream, FO_NATS_STREAM, file storage, subjects
 * FO_NATS_SUBJECT_PREFIX ">"; each model's log is the subject FO_NATS_SUBJECT_PREFIX +
 * fo_nats_subject_token(model). Every message on a model's subject is a record: the
 * fo_store_write rows of one commit for that model, in order (log rows, snapshots,
 * retention cuts, rules rows), so replaying a subject's records through the memory backend
 * rebuilds exactly what the sqlite backend would hold. A snapshot write may carry the
 * model's exactly-once table (fo_store_write.clients): the subject may then be purged below
 * its record, and a reader starts there (store_nats_impl.h). Each append carries
 * Nats-Expected-Last-Subject-Sequence (the fence): the stream sequence of the last record
 * this store appended or read for the model, or "no message yet" for a new model. */
#ifndef FO_STORE_NATS_H
#define FO_STORE_NATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/store.h"

#define FO_NATS_STREAM "FLUSHOUT"
#define FO_NATS_SUBJECT_PREFIX "fo.log."

/* Longest token: every byte escaped (3 bytes each) plus the NUL. */
#define FO_NATS_TOKEN_MAX (3 * FO_STORE_MODEL_MAX + 1)

/* Writes the subject token of name[0..len) into out[0..cap): bytes of [A-Za-z0-9_:-] stay,
 * every other byte (`.`, `%`, `*`, `>`, spaces, anything) becomes %XX (uppercase hex). The
 * map is injective and its tokens never contain `.`, `*`, `>` or whitespace, so every name
 * is exactly one NATS subject token. Returns the token's length, or -1 when it does not
 * fit (cap < 3 * len + 1) or len == 0. */
int fo_nats_subject_token(const char *name, size_t len, char *out, size_t cap);

/* The inverse: token -> name in out[0..cap) (NUL-terminated). Returns the name's length, or
 * -1 for a token that fo_nats_subject_token does not produce (bad escape, lowercase hex, an
 * escaped byte that needs none, a byte outside the kept set) or that does not fit. */
int fo_nats_subject_name(const char *token, size_t len, char *out, size_t cap);

/* Encodes writes[0..n) (all of one model; `model` itself is not stored: it is the subject)
 * as one record. Returns a malloc'd buffer and its size in *size, or NULL on out of memory
 * or a part too large (a size over 4 GiB). */
void *fo_nats_record_encode(const fo_store_write *w, size_t n, size_t *size);

/* A decoded record: writes[0..n) point into the record's own copy (strings are
 * NUL-terminated); model is set to `model` (which must outlive the record). */
typedef struct fo_nats_record {
    fo_store_write *writes;
    size_t n;
} fo_nats_record;

/* Decodes p[0..size). 0, FO_ENOMEM or FO_STORE_ECORRUPT (not a record, truncated, trailing
 * bytes, an unknown flag, flags the encoder never writes). On success free it with
 * fo_nats_record_free. */
int fo_nats_record_decode(const void *p, size_t size, const char *model, fo_nats_record *out);
void fo_nats_record_free(fo_nats_record *r);

/* Bytes a write takes in a record (the fixed part, 6 length prefixes, the parts). */
#define FO_NATS_WRITE_FIXED (1 + 8 + 4 + 8 + 8 + 8 + 8 + 6 * 4)
size_t fo_nats_write_size(const fo_store_write *w);

/* The model's command count after a record: the end of its last log row, its snapshot or
 * rules rows' position, whichever is furthest. */
uint64_t fo_nats_record_count(const fo_nats_record *r);

#endif
