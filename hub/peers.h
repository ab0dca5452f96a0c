/* peers.h - on --cluster, the other hubs: who is alive, which hub owns a model, and a
 * flush forwarded to its owner.
 *
 * Membership. Every hub announces its id on the core NATS subject fo.hubs every 500 ms; a
 * hub heard within the last 2 s is alive (this hub always is).
 *
 * Ownership. A model's owner is the alive hub with the highest hash of (hub id, model name)
 * (rendezvous hashing): every hub computes the same owner from the same membership, a hub
 * that joins or leaves moves only its share of the models, and nothing is renewed. For the
 * 2 s in which hubs may disagree (one just joined or died), two hubs may apply flushes of one
 * model: the log's fence keeps that safe (the later append is refused, the flush retried),
 * as it does with --optimistic, where nothing is forwarded.
 *
 * Forwarding. A session's flush for a model another hub owns goes to that hub (subject
 * fo.fwd.<id>: the client id, the flusher's claims, the flush frame), which runs it as one
 * of its own (its runner, its append) and answers with the ack or error frame; this hub
 * sends that to the client. When the flusher is subscribed here, the ack waits for this
 * hub's follower to apply the batch it acknowledges, and takes that batch's place in the
 * flusher's stream (the batch is not pushed to it): pushes before, ack, pushes after, as
 * the contract orders them (while such a flush waits for its answer, the follower does not
 * apply that model's rows). An owner that does not answer within 5 s: the flush gets
 * `overloaded` with retryAfterMs (the client sends it again with the same seq, and
 * exactly-once makes that safe whatever happened to the first). */
#ifndef FO_PEERS_H
#define FO_PEERS_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/arena.h"
#include "proto/wire.h"

typedef struct fo_hub fo_hub;
typedef struct fo_model fo_model;
typedef struct fo_session fo_session;
typedef struct fo_peers fo_peers;

/* Connects to `urls`, subscribes, starts announcing. 0, or an error code with the reason in
 * msg[0..ml). */
int fo_peers_start(fo_hub *h, const char *urls, fo_peers **out, char *msg, size_t ml);
/* Answers what waits (`shutting_down`), closes the connection; the rest is freed once the
 * loop has closed the handles (run the loop). NULL is a no-op. */
void fo_peers_stop(fo_peers *p);

/* This hub's id (16 hex digits). */
const char *fo_peers_id(const fo_peers *p);
/* Hubs alive now, this one included. */
uint32_t fo_peers_alive(fo_peers *p);

/* The session port's request (hub.c): a flush of a model another hub owns is forwarded
 * (takes over `arena`); anything else goes to fo_model_submit. */
void fo_peers_request(fo_hub *h, fo_session *s, const fo_msg *msg, fo_arena *arena,
                      uint64_t t_recv);

/* For the follower (follow.c), before it applies the row (client, seq) at `from` of model
 * m: false while a flush forwarded from a subscriber of m here has no answer yet (where its
 * ack goes in the stream is not known: the follower waits, the answer runs the model
 * again); else sends the acks that applied nothing at or before `from`, and returns true
 * with *flusher the session to leave out of the row's push (its ack takes the row's
 * place; NULL: none). */
bool fo_peers_row_ready(fo_hub *h, fo_model *m, const char *client, uint64_t seq,
                        uint64_t from, fo_session **flusher);
/* After the follower pushed the row: the flusher's ack goes out in the batch's place. */
void fo_peers_row_done(fo_hub *h, fo_model *m, const char *client, uint64_t seq, uint64_t from,
                       uint64_t len);

#endif
