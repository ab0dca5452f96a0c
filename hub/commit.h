/* commit.h - group commit. Everything the loop applies in one turn goes to the store as
 * one commit (and the store merges commits that queue up behind a slow fsync into one
 * transaction); the replies that depend on it (acks, pushes, snapshots handed to new
 * subscribers) wait in the same group and leave only once it is durable. The store runs
 * jobs in order, so groups are released strictly in order and a reply never overtakes
 * the data it shows. A group that failed fails its replies; later writes of the same
 * models fail too (the store refuses a log that does not continue), and those models are
 * reloaded from the store once their pending replies are gone. */
#ifndef FO_COMMIT_H
#define FO_COMMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/frame.h"

typedef struct fo_hub fo_hub;
typedef struct fo_model fo_model;
typedef struct fo_session fo_session;
typedef struct fo_http_req fo_http_req;

typedef enum fo_pend_kind {
    FO_PEND_ACK = 1, /* a flush's ack, and its push to the other subscribers */
    FO_PEND_REPLY,   /* a reply showing the model's state (get, history) */
    FO_PEND_SUB,     /* a subscriber's snap/diff: activates the subscription */
    FO_PEND_HTTP,    /* an HTTP response showing the model's state */
} fo_pend_kind;

/* One reply waiting for its group to be durable. It holds a reference on its model,
 * session and HTTP request. */
typedef struct fo_pending {
    struct fo_pending *next;
    fo_pend_kind kind;
    fo_model *model;
    fo_session *session;
    fo_http_req *http;
    fo_frame *reply;  /* ack, snap, diff; NULL for HTTP */
    fo_frame *push;   /* ACK with applied commands: the push for the other subscribers */
    uint64_t from;    /* ACK: applied.from; SUB: the count the reply brings it to */
    uint64_t len;     /* ACK: applied commands */
    uint64_t t_recv;  /* ACK: when the flush frame arrived (ns) */
    bool has_rid;     /* the request's rid, for an error reply if the commit fails */
    uint64_t rid;
} fo_pending;

/* One row for the store: an applied batch, with an optional snapshot. The group owns the
 * snapshot buffer and a reference on the frame until it is committed. */
typedef struct fo_commit_write {
    fo_model *model;     /* reference held */
    uint64_t from;
    uint32_t len;
    /* The MessagePack CompletionBatch is frame->data[batch_off, batch_off + batch_len):
     * the very bytes of the push frame's `diff` (one encoding per batch). */
    fo_frame *frame;     /* reference held */
    uint32_t batch_off, batch_len;
    char client[65];
    uint64_t seq;
    char *snapshot;      /* MessagePack document at from + len, or NULL (malloc'd) */
    size_t snapshot_len;
    uint64_t drop_before; /* retention: log and snapshots older than this may go; 0 keeps */
} fo_commit_write;

typedef struct fo_group {
    struct fo_group *next;
    fo_hub *hub;
    fo_pending *head, *tail;
    fo_commit_write *writes;
    size_t nwrites, cap;
    bool submitted;   /* at the store (or, with no writes, waiting for the ones before) */
    bool done;        /* the store answered */
    int rc;
    char err[256];
} fo_group;

typedef struct fo_commit {
    fo_group *first; /* oldest group not yet released */
    fo_group *open;  /* the group new work joins, or NULL */
    fo_group *last;
    size_t pending;  /* replies waiting in all groups */
    size_t groups;   /* groups not yet released */
} fo_commit;

void fo_commit_init(fo_commit *c);
void fo_commit_destroy(fo_commit *c);
/* A zeroed pending reply appended to the open group; NULL on out-of-memory. The caller
 * fills it (taking the references it stores). */
fo_pending *fo_commit_add(fo_hub *h, fo_pend_kind kind, fo_model *m);
/* Moves a write into the open group (the group takes the snapshot buffer and references
 * on the model and the frame). 0 or FO_ENOMEM (then the caller still owns the snapshot). */
int fo_commit_add_write(fo_hub *h, fo_commit_write *w);
/* Called at the end of each loop turn: submits the open group (a commit, or an empty
 * barrier that keeps its place in the order). */
void fo_commit_turn(fo_hub *h);
/* True when no reply waits and no commit is outstanding. */
bool fo_commit_idle(const fo_hub *h);

#endif
