/* commit.h - group commit. Everything the loop applies in one turn goes to the store as
 * one commit (and the store merges commits that queue up behind a slow fsync into one
 * transaction); the replies that depend on it (acks, pushes, snapshots handed to new
 * subscribers) wait in the same group and leave only once it is durable. The store runs
 * jobs in order, so groups are released strictly in order and a reply never overtakes
 * the data it shows. A group that failed fails its replies; later writes of the same
 * models fail too (the store refuses a log that does not continue), and those models are
 * reloaded from the store once their pending replies are gone. On a store atomic per model
 * only (nats), a group goes as one commit per model (one round trip still), and a model
 * whose append failed fails its own replies, not the group's. */
#ifndef FO_COMMIT_H
#define FO_COMMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/frame.h"

typedef struct fo_hub fo_hub;

/* A reply waiting for its group to be durable, embedded in its owner's struct (the models'
 * fo_pending): `settle` is called once, in group order, with rc 0 and NULL once the group
 * is durable, or with the store's error code (store.h) and why it failed. This module
 * knows nothing else of it. */
typedef struct fo_commit_waiter {
    struct fo_commit_waiter *next;
    void (*settle)(struct fo_commit_waiter *w, int rc, const char *failed);
} fo_commit_waiter;

/* Whose log a write extends (a model), embedded in the owner: its name is the store's key;
 * the group holds it (hold true, then false) until the write is committed, and tells it
 * when a commit with its write failed, with the store's error code. */
typedef struct fo_commit_owner {
    const char *name;
    void (*hold)(struct fo_commit_owner *o, bool take);
    void (*failed)(struct fo_commit_owner *o, int rc);
} fo_commit_owner;

/* One row for the store: an applied batch, with an optional snapshot and rules row. The
 * group owns the malloc'd buffers and a reference on the frame until it is committed. A
 * batch of which nothing applied has no frame (len 0) and only a rules row. */
typedef struct fo_commit_write {
    fo_commit_owner *owner; /* held */
    uint64_t from;
    uint32_t len;
    /* The MessagePack CompletionBatch is frame->data[batch_off, batch_off + batch_len):
     * the very bytes of the push frame's `diff` (one encoding per batch). */
    fo_frame *frame;     /* reference held; NULL: no log row */
    uint32_t batch_off, batch_len;
    char client[65];
    uint64_t seq;
    char *snapshot;      /* MessagePack document at from + len, or NULL (malloc'd) */
    size_t snapshot_len;
    char *clients;       /* with a snapshot: the exactly-once table then (fo_store_write.clients,
                          * malloc'd), or NULL */
    size_t clients_len;
    uint64_t drop_before; /* retention: log and snapshots older than this may go; 0 keeps */
    int64_t now_ms;       /* the batch's `now` */
    char *identity;       /* JSON of the flusher's claims, or NULL (malloc'd) */
    char *original;       /* rules row: the batch as flushed (MessagePack), or NULL */
    size_t original_len;
    char *audit;          /* rules row: what the rules did (JSON text), or NULL */
} fo_commit_write;

typedef struct fo_group {
    struct fo_group *next;
    fo_hub *hub;
    fo_commit_waiter *head, *tail;
    fo_commit_write *writes;
    size_t nwrites, cap;
    bool submitted;   /* at the store (or, with no writes, waiting for the ones before) */
    bool done;        /* the store answered */
    size_t snap_bytes; /* its snapshots' bytes, counted in fo_commit.snap_bytes until done */
    size_t parts;      /* per-model store (nats): one commit per model, answers outstanding */
    int rc;
    char err[256];
} fo_group;

typedef struct fo_commit {
    fo_group *first; /* oldest group not yet released */
    fo_group *open;  /* the group new work joins, or NULL */
    fo_group *last;
    size_t pending;  /* replies waiting in all groups */
    size_t groups;   /* groups not yet released */
    /* Snapshot bytes not yet written by the store (in open groups or the store's queue):
     * a burst of models reaching --snapshot-every together would otherwise hold a copy of
     * every document at once. The runner defers a snapshot while this is past its cap. */
    size_t snap_bytes;
    /* Called after groups were released (hub.c: the memory budget may evict). */
    void (*released)(fo_hub *h);
    /* Arrays kept from one turn to the next, up to 4096 entries each (FO_COMMIT_KEEP in
     * commit.c): a turn of a thousand flushes would otherwise grow a group's writes by
     * realloc and allocate the store's view of them afresh, page faults included. */
    fo_commit_write *spare; /* a released group's writes array, for the next group */
    size_t spare_cap;
    struct fo_store_write *wbuf; /* fo_commit_turn's writes as the store takes them */
    size_t wbuf_cap;
} fo_commit;

void fo_commit_init(fo_commit *c);
void fo_commit_destroy(fo_commit *c);
/* Appends a waiter to the open group. 0 or FO_ENOMEM. */
int fo_commit_wait(fo_hub *h, fo_commit_waiter *w);
/* Moves a write into the open group (the group takes the snapshot, identity, original and
 * audit buffers and holds the owner and the frame). 0 or FO_ENOMEM (then the caller still
 * owns the buffers). */
int fo_commit_add_write(fo_hub *h, fo_commit_write *w);
/* Called at the end of each loop turn: submits the open group (a commit, or an empty
 * barrier that keeps its place in the order). The store copies the rows, so the group's
 * snapshot buffers are freed at once. */
void fo_commit_turn(fo_hub *h);
/* True when no reply waits and no commit is outstanding. */
bool fo_commit_idle(const fo_hub *h);

#endif
