/* proxy.h - a client's local copy of a model (the reference's Proxy), plus what a real
 * client needs and the reference lacks: applying a pushed batch onto the committed state
 * and adopting a fresh snapshot, both re-applying the local queue on top.
 *
 * States: idle (no flush in flight) and flushing (between begin and end/cancel). Local
 * applies work in both. */
#ifndef FO_PROXY_H
#define FO_PROXY_H

#include "proto/batch.h"
#include "proto/doc.h"

typedef struct fo_proxy_config {
    fo_id_mode ids;
    fo_interceptor interceptor; /* run on local applies only, as in the reference */
} fo_proxy_config;

typedef struct fo_proxy fo_proxy;

/* A proxy over a deep copy of `s` (NULL: empty model). NULL on out-of-memory. */
fo_proxy *fo_proxy_new(const fo_snapshot *s, const fo_proxy_config *cfg);
void fo_proxy_free(fo_proxy *p);

/* The local document (committed state + queued commands); borrowed until the next call
 * that changes the proxy. */
const fo_value *fo_proxy_document(const fo_proxy *p);
uint64_t fo_proxy_count(const fo_proxy *p);
/* Count of the last state the master confirmed. */
uint64_t fo_proxy_committed_count(const fo_proxy *p);
const fo_value *fo_proxy_committed_document(const fo_proxy *p);
bool fo_proxy_flushing(const fo_proxy *p);
bool fo_proxy_has_unflushed(const fo_proxy *p);
uint32_t fo_proxy_queue_len(const fo_proxy *p);

/* Applies a command locally with a generated ID; on success it is queued. The command is
 * copied. out->error (on failure) lives until the next call on the proxy. */
int fo_proxy_apply(fo_proxy *p, const fo_command *c, fo_doc_result *out);

/* Starts a flush: *out gets {from: committed count, completions: the queue}, borrowed
 * until end/cancel. FO_ESTATE when a flush is in progress. */
int fo_proxy_begin_flush(fo_proxy *p, fo_batch *out);
/* As fo_proxy_begin_flush, with at most `max_items` completions in the flight (0: no
 * limit); the rest stay queued for the next flush. A queue grown offline can so be sent
 * in frames the hub accepts. */
int fo_proxy_begin_flush_max(fo_proxy *p, uint32_t max_items, fo_batch *out);
/* Puts the in-flight batch back in front of the queue. FO_ESTATE when not flushing. */
int fo_proxy_cancel_flush(fo_proxy *p);
/* Ends a flush with the ack's sync (NULL or kind NONE: accepted as is). The sync is
 * copied as needed. *ids_changed is set as the reference's idsChanged (true on the two
 * diff errors too, as there). Returns 0;
 * FO_ESTATE when not flushing; FO_EGAP when a partial diff does not start at the
 * committed count (the flush stays in progress, as in the reference); FO_EFAILED when a
 * diff does not apply (the flight is dropped and the proxy needs fo_proxy_reset). */
int fo_proxy_end_flush(fo_proxy *p, const fo_sync *sync, bool *ids_changed);

/* Applies a batch someone else flushed onto the committed state, then re-applies the
 * local queue (commands that no longer apply are dropped, created IDs that collide are
 * remapped along with later paths). FO_ESTATE while a flush is in flight (the ack's sync
 * covers pushes that arrive before it), FO_EGAP when diff->from is not the committed
 * count (resubscribe), FO_EFAILED when it does not apply (needs a reset). */
int fo_proxy_apply_push(fo_proxy *p, const fo_batch *diff, bool *ids_changed);
/* Adopts a snapshot (a `snap` from the hub) as the committed state and re-applies the
 * local queue. FO_ESTATE while a flush is in flight: a client that reconnects resends
 * its in-flight batch with the same seq, and that ack's sync brings it level. */
int fo_proxy_reset(fo_proxy *p, const fo_snapshot *s);

#endif
