/* storetest.h - the store (hub/store.h) from Criterion tests: a store on a loop of its own,
 * one job at a time (submit, run the loop until it is answered, return its outcome), and
 * deterministic log rows to write and to check. Test-only (library fo_storetest). */
#ifndef FO_TEST_STORETEST_H
#define FO_TEST_STORETEST_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "hub/store.h"

typedef struct fo_st {
    uv_loop_t loop;
    fo_store *s;
    fo_store_kind kind;
    char dir[64];     /* a fresh folder: sqlite's data directory, removed by fo_st_finish */
    char where[256];  /* what fo_store_open gets: dir, or the NATS URLs given to fo_st_init */
    int order;        /* callbacks run so far, of any kind */
    int close_cbs;    /* fo_st_on_closed calls, and the order of the last one */
    int close_order;
} fo_st;

/* One job's outcome; `t` counts the order. */
typedef struct fo_st_req {
    fo_st *t;
    int done, order, rc;
    char msg[512];
    fo_store_result *res;
} fo_st_req;

/* Inits the loop, makes the folder and opens the store (asserts). `where`: NULL for the
 * folder, else what to open instead (nats: "nats://..."). */
void fo_st_init(fo_st *t, fo_store_kind kind, const char *where);
/* Opens the store again (after fo_st_close) with options `o` (may be NULL); asserts. */
void fo_st_open(fo_st *t, const fo_store_options *o);
/* Closes it: fo_store_close once (a second call is FO_ESTATE), the loop runs to its end. */
void fo_st_close(fo_st *t);
/* Closes it if open, closes the loop (asserts uv_loop_close == 0), removes the folder. */
void fo_st_finish(fo_st *t);

/* Removes the files of a folder (not its subfolders) and the folder. */
void fo_st_rm_dir(const char *dir);

/* Callbacks for jobs submitted by hand: data is a fo_st_req (its `t` set), or, for
 * fo_st_on_closed, the fo_st. A commit's callback asserts rc == 0 exactly when there is no
 * message, and latency >= execution time; a read's, a result exactly when rc == 0. */
void fo_st_on_commit(fo_store *s, const fo_store_status *st, void *data);
void fo_st_on_read(fo_store *s, const fo_store_status *st, fo_store_result *res, void *data);
void fo_st_on_closed(void *data);

/* Commits w[0..n), runs the loop, returns the commit's rc; its message is copied to `msg`
 * (512 bytes; may be NULL). Asserts that no callback ran before fo_store_commit returned. */
int fo_st_commit(fo_st *t, const fo_store_write *w, size_t n, char *msg);

typedef enum { FO_ST_LOAD, FO_ST_LOG, FO_ST_AT } fo_st_read_op;
/* load (a = history_from), read_log [a, b) or read_state_at a; asserts success and returns
 * the result (free it with fo_store_result_free). */
fo_store_result *fo_st_read(fo_st *t, fo_st_read_op op, const char *model, uint64_t a,
                            uint64_t b);
#define FO_ST_LOAD_OF(t, m, h) fo_st_read((t), FO_ST_LOAD, (m), (h), 0)

/* A write with a log row for (model, from, len) whose batch bytes are a text naming them,
 * written into buf (96 bytes, which must outlive the commit), and now_ms = 1000 + from. */
fo_store_write fo_st_row(char *buf, const char *model, uint64_t from, uint32_t len,
                         const char *client, uint64_t seq);
/* Asserts that e is the row fo_st_row made for these arguments. */
void fo_st_check_row(const fo_store_entry *e, const char *model, uint64_t from, uint32_t len,
                     const char *client, uint64_t seq);

/* nats: how many records the model's subject holds now (JetStream's stream info, filtered
 * by the subject), or -1 when it cannot be asked (printed to stderr). */
int64_t fo_st_nats_records(const char *urls, const char *model);

#endif
