/* store.c - what both backends share: the job queue, the worker thread, the completion
 * queue back to the loop, group commit and stats; the read logic (gone, contiguity) is
 * store_read.c.
 *
 * Jobs flow loop -> q (mutex + cond) -> worker -> d (mutex) -> uv_async -> loop. A job is
 * one malloc; a commit job carries a private copy of its writes right behind it. */
#define _GNU_SOURCE /* SCHED_BATCH */
#include "hub/store.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/store_backend.h"

/* Merged commits per transaction: bounds the stack array of segments. */
#define MAX_MERGE_JOBS 256

const uint64_t fo_store_lat_bounds_us[FO_STORE_LAT_BUCKETS - 1] = {
    250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000,
};

typedef enum job_kind {
    JOB_COMMIT,
    JOB_LOAD,
    JOB_READ_LOG,
    JOB_READ_AT,
    JOB_READ_AUDIT,
    JOB_READ_REPLAY
} job_kind;

typedef struct job job;
struct job {
    job *next;
    job_kind kind;
    fo_store_commit_cb commit_cb;
    fo_store_read_cb read_cb;
    void *data;
    uint64_t t_submit, t_done, exec_ns;
    int rc;
    uint32_t transactions; /* transactions this job stands for in the stats */
    /* commit: writes[0..n) and their bytes follow the struct */
    fo_store_write *writes;
    size_t n;
    uint64_t bytes;
    /* reads */
    uint64_t a, b;
    fo_store_result *res;
    char model[FO_STORE_MODEL_MAX + 1];
    char msg[384];
};

struct fo_store {
    uv_loop_t *loop;
    uv_async_t async;
    const fo_store_backend *be;
    void *impl;
    uint32_t max_merge;
    bool inline_jobs; /* memory: jobs run at submit on the loop thread, no worker */
    uv_idle_t idle;   /* inline: keeps the loop from sleeping while callbacks wait */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    /* under mu */
    job *q_head, *q_tail; /* submitted, not yet taken by the worker */
    job *d_head, *d_tail; /* done, callback not yet run */
    bool stop;            /* close requested: the worker exits once q is empty */
    bool exited;          /* the backend is closed and the worker is returning */
    /* loop thread only */
    bool closing, joined;
    fo_store_close_cb close_cb;
    void *close_data;
    fo_store_stats stats;
};

/* ---- small public helpers ----------------------------------------------------------- */

const char *fo_store_strerror(int code)
{
    switch (code) {
    case FO_STORE_EFULL: return "FO_STORE_EFULL";
    case FO_STORE_EIO: return "FO_STORE_EIO";
    case FO_STORE_EREADONLY: return "FO_STORE_EREADONLY";
    case FO_STORE_ECORRUPT: return "FO_STORE_ECORRUPT";
    case FO_STORE_ECONFLICT: return "FO_STORE_ECONFLICT";
    case FO_STORE_EBUSY: return "FO_STORE_EBUSY";
    case FO_STORE_EVERSION: return "FO_STORE_EVERSION";
    case FO_STORE_EFENCED: return "FO_STORE_EFENCED";
    default: return fo_strerror(code);
    }
}

fo_store_kind fo_store_kind_parse(const char *name)
{
    if (name && strcmp(name, "sqlite") == 0)
        return FO_STORE_SQLITE;
    if (name && strcmp(name, "memory") == 0)
        return FO_STORE_MEMORY;
    if (name && strcmp(name, "nats") == 0)
        return FO_STORE_NATS;
    return 0;
}

const char *fo_store_kind_name(fo_store_kind k)
{
    switch (k) {
    case FO_STORE_SQLITE: return "sqlite";
    case FO_STORE_MEMORY: return "memory";
    case FO_STORE_NATS: return "nats";
    default: return "?";
    }
}

bool fo_store_per_model(const fo_store *s)
{
    return s->be->per_segment;
}

bool fo_store_wants_clients(const fo_store *s)
{
    return s->be == &fo_store_backend_nats;
}

bool fo_store_model_name_valid(const char *name, size_t len)
{
    return fo_model_name_valid(name, len);
}

void fo_store_options_default(fo_store_options *o)
{
    memset(o, 0, sizeof(*o));
    o->busy_timeout_ms = 5000;
    o->max_merge_writes = 65536;
    o->cache_bytes = 16u << 20;
}

int fo_store_fail(int code, char *msg, size_t msglen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- reads (worker thread) ---------------------------------------------------------- */

static void run_read(fo_store *s, job *j)
{
    fo_store_result *r = fo_store_result_new();
    uint64_t t0 = uv_hrtime();
    int rc;

    if (!r) {
        j->rc =
            fo_store_fail(FO_ENOMEM, j->msg, sizeof(j->msg), "read %s: out of memory", j->model);
        return;
    }
    rc = s->be->read_begin(s->impl, j->msg, sizeof(j->msg));
    if (!rc) {
        fo_store_read_req q = {.be = s->be,
                               .impl = s->impl,
                               .model = j->model,
                               .a = j->a,
                               .b = j->b,
                               .msg = j->msg,
                               .msglen = sizeof(j->msg)};
        q.kind = j->kind == JOB_LOAD          ? FO_STORE_READ_LOAD
                 : j->kind == JOB_READ_LOG    ? FO_STORE_READ_LOG
                 : j->kind == JOB_READ_AUDIT  ? FO_STORE_READ_AUDIT
                 : j->kind == JOB_READ_REPLAY ? FO_STORE_READ_REPLAY
                                              : FO_STORE_READ_AT;
        rc = fo_store_read_run(&q, r);
        s->be->read_end(s->impl);
    }
    if (rc == FO_ENOMEM && !j->msg[0])
        fo_store_fail(rc, j->msg, sizeof(j->msg), "read %s: out of memory", j->model);
    if (rc) {
        fo_store_result_free(r);
        r = NULL;
    }
    j->rc = rc;
    j->res = r;
    j->exec_ns = uv_hrtime() - t0;
}

/* ---- commits (worker thread) -------------------------------------------------------- */

static void run_commits(fo_store *s, job *run)
{
    fo_store_seg segs[MAX_MERGE_JOBS];
    size_t n = 0;
    uint64_t t0 = uv_hrtime(), t1;
    int rc;

    for (job *j = run; j; j = j->next)
        segs[n++] = (fo_store_seg){j->writes, j->n, 0, j->msg, sizeof(j->msg)};
    rc = s->be->commit(s->impl, segs, n, run->msg, sizeof(run->msg));
    t1 = uv_hrtime();
    if (s->be->per_segment) {
        /* Each segment has its own outcome (and message); none is run again. */
        n = 0;
        for (job *j = run; j; j = j->next, n++) {
            j->rc = segs[n].rc;
            j->exec_ns = t1 - t0;
        }
        run->transactions = 1;
        return;
    }
    if (rc == 0 || n == 1) {
        for (job *j = run; j; j = j->next) {
            j->rc = rc;
            j->exec_ns = t1 - t0;
        }
        run->transactions = 1;
        return;
    }
    /* The merged transaction failed and was rolled back: run each commit on its own so
     * that only the commits that fail by themselves report the error. */
    run->transactions = 1;
    for (job *j = run; j; j = j->next) {
        t0 = uv_hrtime();
        j->msg[0] = 0;
        j->rc = s->be->commit(s->impl, &(fo_store_seg){j->writes, j->n, 0, NULL, 0}, 1, j->msg,
                              sizeof(j->msg));
        j->exec_ns = uv_hrtime() - t0;
        j->transactions++;
    }
}

/* Takes the next job, plus every commit right behind a commit up to the merge limits. */
static job *take_run(fo_store *s)
{
    job *run = s->q_head, *last = run;
    size_t writes = run->n, jobs = 1;

    if (run->kind == JOB_COMMIT) {
        while (last->next && last->next->kind == JOB_COMMIT && jobs < MAX_MERGE_JOBS &&
               writes + last->next->n <= s->max_merge) {
            last = last->next;
            writes += last->n;
            jobs++;
        }
    }
    s->q_head = last->next;
    if (!s->q_head)
        s->q_tail = NULL;
    last->next = NULL;
    return run;
}

static void *worker_main(void *arg)
{
    fo_store *s = arg;
    struct sched_param prio0 = {0}; /* SCHED_BATCH takes priority 0 only */

    /* A throughput thread. SCHED_BATCH keeps its fair share of the CPU, but a wakeup (a job
     * queued, its fsync done) no longer preempts the loop; and after handing a commit's
     * results back it yields, so the loop sends those acks before the next transaction's
     * work. On a core the two share, the next transaction then takes what the loop's turn
     * queued meanwhile: fewer, bigger transactions, less worker CPU per flush (bench/run.sh,
     * scenario f: +10%). Reads do not yield: a burst of loads (a cold start, scenario g)
     * would give the busy loop a time slice per model. A worker with a core of its own runs
     * at once as before (the yield finds no one to run). Failing to set the policy changes
     * nothing else. */
    (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &prio0);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        job *run, *last;
        while (!s->q_head && !s->stop)
            pthread_cond_wait(&s->cond, &s->mu);
        if (!s->q_head)
            break;
        run = take_run(s);
        pthread_mutex_unlock(&s->mu);

        if (run->kind == JOB_COMMIT)
            run_commits(s, run);
        else
            run_read(s, run);
        last = run;
        for (job *j = run; j; j = j->next) {
            j->t_done = uv_hrtime();
            last = j;
        }

        pthread_mutex_lock(&s->mu);
        if (s->d_tail)
            s->d_tail->next = run;
        else
            s->d_head = run;
        s->d_tail = last;
        pthread_mutex_unlock(&s->mu);
        uv_async_send(&s->async);
        if (run->kind == JOB_COMMIT)
            sched_yield(); /* the loop sends the acks first (see above) */
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);

    s->be->close(s->impl);
    s->impl = NULL;
    pthread_mutex_lock(&s->mu);
    s->exited = true;
    pthread_mutex_unlock(&s->mu);
    uv_async_send(&s->async);
    return NULL;
}

/* ---- completions (loop thread) ------------------------------------------------------ */

static void count_commit(fo_store *s, const job *j, uint64_t lat)
{
    fo_store_stats *st = &s->stats;
    uint64_t us = lat / 1000;
    size_t b = 0;

    if (j->rc == 0) {
        st->commits++;
        st->writes += j->n;
        st->bytes_written += j->bytes;
    } else {
        st->commit_errors++;
    }
    st->transactions += j->transactions;
    st->commit_latency_ns_sum += lat;
    if (lat > st->commit_latency_ns_max)
        st->commit_latency_ns_max = lat;
    st->commit_exec_ns_sum += j->exec_ns;
    while (b < FO_STORE_LAT_BUCKETS - 1 && us > fo_store_lat_bounds_us[b])
        b++;
    st->lat_buckets[b]++;
}

static void on_closed(uv_handle_t *h)
{
    fo_store *s = h->data;
    fo_store_close_cb cb = s->close_cb;
    void *data = s->close_data;

    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    free(s);
    if (cb)
        cb(data);
}

/* msg without its operator-only detail: a last " [...]" (store_backend.h). */
static const char *public_reason(const char *msg, char *out, size_t cap)
{
    const char *open = strrchr(msg, '[');
    size_t n = strlen(msg);

    if (!open || open == msg || open[-1] != ' ' || msg[n - 1] != ']')
        return msg;
    n = (size_t)(open - msg) - 1;
    snprintf(out, cap, "%.*s", (int)n, msg);
    return out;
}

/* Runs the callbacks of finished jobs, in order; returns how many ran. */
static size_t deliver(fo_store *s, bool *exited)
{
    job *list;
    size_t n = 0;

    pthread_mutex_lock(&s->mu);
    list = s->d_head;
    s->d_head = s->d_tail = NULL;
    *exited = s->exited;
    pthread_mutex_unlock(&s->mu);

    while (list) {
        job *j = list;
        fo_store_status st = {j->rc, j->rc ? j->msg : "", j->t_done - j->t_submit, j->exec_ns, ""};
        char reason[sizeof(j->msg)];
        list = j->next;
        st.reason = j->rc ? public_reason(j->msg, reason, sizeof(reason)) : "";
        if (j->kind == JOB_COMMIT) {
            count_commit(s, j, st.latency_ns);
            if (j->commit_cb)
                j->commit_cb(s, &st, j->data);
        } else {
            s->stats.reads++;
            s->stats.read_errors += j->rc != 0;
            j->read_cb(s, &st, j->res, j->data);
        }
        free(j);
        n++;
        if (--s->stats.queued == 0 && !s->closing)
            uv_unref((uv_handle_t *)&s->async);
    }
    return n;
}

static void on_idle_closed(uv_handle_t *h)
{
    on_closed((uv_handle_t *)&((fo_store *)h->data)->async);
}

static void on_async_closed_inline(uv_handle_t *h)
{
    fo_store *s = h->data;

    uv_close((uv_handle_t *)&s->idle, on_idle_closed);
}

static void on_async(uv_async_t *h)
{
    fo_store *s = h->data;
    bool exited;

    deliver(s, &exited);
    if (exited && !s->joined) {
        s->joined = true;
        if (s->inline_jobs) {
            uv_idle_stop(&s->idle);
            uv_close((uv_handle_t *)&s->async, on_async_closed_inline);
            return;
        }
        pthread_join(s->thread, NULL);
        uv_close((uv_handle_t *)&s->async, on_closed);
    }
}

size_t fo_store_run_completions(fo_store *s)
{
    bool exited;
    size_t n;

    if (!s || !s->inline_jobs || s->joined)
        return 0;
    n = deliver(s, &exited);
    if (!s->d_head)
        uv_idle_stop(&s->idle);
    return n;
}

static void on_idle(uv_idle_t *idle)
{
    fo_store_run_completions(idle->data);
}

/* ---- submission --------------------------------------------------------------------- */

static job *job_new(job_kind kind, size_t extra)
{
    job *j = malloc(sizeof(*j) + extra);

    if (!j)
        return NULL;
    memset(j, 0, sizeof(*j));
    j->kind = kind;
    return j;
}

/* Inline: the job ran already; its callback waits for fo_store_run_completions. */
static void finish_inline(fo_store *s, job *j)
{
    j->t_done = uv_hrtime();
    if (s->d_tail)
        s->d_tail->next = j;
    else
        s->d_head = j;
    s->d_tail = j;
    uv_idle_start(&s->idle, on_idle);
    if (s->stats.queued++ == 0)
        uv_ref((uv_handle_t *)&s->async);
}

static void submit(fo_store *s, job *j)
{
    j->t_submit = uv_hrtime();
    if (s->inline_jobs) {
        run_read(s, j);
        finish_inline(s, j);
        return;
    }
    pthread_mutex_lock(&s->mu);
    if (s->q_tail)
        s->q_tail->next = j;
    else
        s->q_head = j;
    s->q_tail = j;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
    if (s->stats.queued++ == 0)
        uv_ref((uv_handle_t *)&s->async);
}

static size_t str_size(const char *p)
{
    return p ? strlen(p) + 1 : 0;
}

/* Copies a string or byte range into the job's tail; NULL stays NULL. */
static const void *copy_in(char **tail, const void *p, size_t n)
{
    char *dst = *tail;

    if (!p)
        return NULL;
    if (n)
        memcpy(dst, p, n);
    *tail += n;
    return dst;
}

int fo_store_commit(fo_store *s, const fo_store_write *w, size_t n, fo_store_commit_cb cb,
                    void *data)
{
    size_t extra = 0, i, add;
    job *j;
    char *tail;

    if (!s || (n && !w) || n > (SIZE_MAX / 2) / sizeof(fo_store_write))
        return FO_EINVAL;
    if (s->closing)
        return FO_ESTATE;
    for (i = 0; i < n; i++) {
        size_t mlen = w[i].model ? strnlen(w[i].model, FO_STORE_MODEL_MAX + 1) : 0;
        bool has_client = w[i].client && w[i].client[0];
        if (!fo_store_model_name_valid(w[i].model, mlen) || (w[i].batch && w[i].len == 0) ||
            (has_client && !w[i].batch) || (w[i].audit && !w[i].original))
            return FO_EINVAL;
        add = mlen + 1 + str_size(w[i].client) + str_size(w[i].identity) + str_size(w[i].audit);
        if ((w[i].batch && w[i].batch_size > SIZE_MAX / 4) ||
            (w[i].snap && w[i].snap_size > SIZE_MAX / 4) ||
            (w[i].original && w[i].original_size > SIZE_MAX / 4))
            return FO_EINVAL;
        if (w[i].clients && (!w[i].snap || w[i].clients_size > SIZE_MAX / 4))
            return FO_EINVAL;
        add += (w[i].batch ? w[i].batch_size : 0) + (w[i].snap ? w[i].snap_size : 0) +
               (w[i].audit ? w[i].original_size : 0) + (w[i].clients ? w[i].clients_size : 0);
        if (add > SIZE_MAX / 2 - extra)
            return FO_EINVAL;
        extra += add;
    }
    if (s->inline_jobs) {
        /* The writes are read during this call: no private copy. */
        if (!(j = job_new(JOB_COMMIT, 0)))
            return FO_ENOMEM;
        j->commit_cb = cb;
        j->data = data;
        j->writes = (fo_store_write *)w;
        j->n = n;
        for (i = 0; i < n; i++)
            j->bytes += (w[i].batch ? w[i].batch_size : 0) + (w[i].snap ? w[i].snap_size : 0);
        j->t_submit = uv_hrtime();
        run_commits(s, j);
        j->writes = NULL;
        finish_inline(s, j);
        return 0;
    }
    if (!(j = job_new(JOB_COMMIT, n * sizeof(fo_store_write) + extra)))
        return FO_ENOMEM;
    j->commit_cb = cb;
    j->data = data;
    j->writes = (fo_store_write *)(j + 1);
    j->n = n;
    tail = (char *)(j->writes + n);
    for (i = 0; i < n; i++) {
        fo_store_write *d = &j->writes[i];
        *d = w[i];
        d->model = copy_in(&tail, w[i].model, strlen(w[i].model) + 1);
        d->client = copy_in(&tail, w[i].client, str_size(w[i].client));
        d->batch = copy_in(&tail, w[i].batch, w[i].batch_size);
        d->snap = copy_in(&tail, w[i].snap, w[i].snap_size);
        d->identity = copy_in(&tail, w[i].identity, str_size(w[i].identity));
        d->audit = copy_in(&tail, w[i].audit, str_size(w[i].audit));
        d->original = w[i].audit ? copy_in(&tail, w[i].original, w[i].original_size) : NULL;
        d->clients = copy_in(&tail, w[i].clients, w[i].clients_size);
        if (!d->clients)
            d->clients_size = 0;
        if (!d->original)
            d->original_size = 0;
        if (!d->batch)
            d->batch_size = 0;
        if (!d->snap)
            d->snap_size = 0;
        j->bytes += d->batch_size + d->snap_size + d->original_size;
    }
    submit(s, j);
    return 0;
}

static int submit_read(fo_store *s, job_kind kind, const char *model, uint64_t a, uint64_t b,
                       fo_store_read_cb cb, void *data)
{
    size_t mlen = model ? strnlen(model, FO_STORE_MODEL_MAX + 1) : 0;
    job *j;

    if (!s || !cb || !fo_store_model_name_valid(model, mlen))
        return FO_EINVAL;
    if (s->closing)
        return FO_ESTATE;
    if (!(j = job_new(kind, 0)))
        return FO_ENOMEM;
    memcpy(j->model, model, mlen + 1);
    j->a = a;
    j->b = b;
    j->read_cb = cb;
    j->data = data;
    submit(s, j);
    return 0;
}

int fo_store_load(fo_store *s, const char *model, uint64_t history_from, fo_store_read_cb cb,
                  void *data)
{
    return submit_read(s, JOB_LOAD, model, history_from, 0, cb, data);
}

int fo_store_read_log(fo_store *s, const char *model, uint64_t from, uint64_t to,
                      fo_store_read_cb cb, void *data)
{
    return submit_read(s, JOB_READ_LOG, model, from, to, cb, data);
}

int fo_store_read_state_at(fo_store *s, const char *model, uint64_t at, fo_store_read_cb cb,
                           void *data)
{
    return submit_read(s, JOB_READ_AT, model, at, 0, cb, data);
}

int fo_store_read_audit(fo_store *s, const char *model, uint64_t from, uint32_t limit,
                        fo_store_read_cb cb, void *data)
{
    return submit_read(s, JOB_READ_AUDIT, model, from, limit, cb, data);
}

int fo_store_read_replay(fo_store *s, const char *model, fo_store_read_cb cb, void *data)
{
    return submit_read(s, JOB_READ_REPLAY, model, 0, 0, cb, data);
}

void fo_store_stats_get(const fo_store *s, fo_store_stats *out)
{
    *out = s->stats;
}

/* ---- open / close ------------------------------------------------------------------- */

static void on_open_failed_closed(uv_handle_t *h)
{
    fo_store *s = h->data;

    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    free(s);
}

int fo_store_open(uv_loop_t *loop, fo_store_kind kind, const char *dir, const fo_store_options *opt,
                  fo_store **out, fo_err_info *err)
{
    fo_err_info scratch;
    fo_store_options o;
    sigset_t all, old;
    fo_store *s;
    int rc;

    if (!err)
        err = &scratch;
    memset(err, 0, sizeof(*err));
    fo_store_options_default(&o);
    if (opt) {
        o.max_bytes = opt->max_bytes;
        if (opt->busy_timeout_ms)
            o.busy_timeout_ms = opt->busy_timeout_ms;
        if (opt->max_merge_writes)
            o.max_merge_writes = opt->max_merge_writes;
        if (opt->cache_bytes)
            o.cache_bytes = opt->cache_bytes;
        o.log_end = opt->log_end;
        o.log_end_ctx = opt->log_end_ctx;
    }
    if (!loop || !out ||
        (kind != FO_STORE_SQLITE && kind != FO_STORE_MEMORY && kind != FO_STORE_NATS)) {
        err->code = FO_EINVAL;
        snprintf(err->msg, sizeof(err->msg), "store: bad arguments (kind %d)", (int)kind);
        return FO_EINVAL;
    }
    if (!(s = calloc(1, sizeof(*s)))) {
        err->code = FO_ENOMEM;
        snprintf(err->msg, sizeof(err->msg), "store: out of memory");
        return FO_ENOMEM;
    }
    s->loop = loop;
    s->be = kind == FO_STORE_SQLITE   ? &fo_store_backend_sqlite
            : kind == FO_STORE_MEMORY ? &fo_store_backend_memory
                                      : &fo_store_backend_nats;
    s->max_merge = o.max_merge_writes;
    if ((rc = s->be->open(dir, &o, &s->impl, err))) {
        err->code = rc;
        free(s);
        return rc;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    if ((rc = uv_async_init(loop, &s->async, on_async))) {
        s->be->close(s->impl);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cond);
        free(s);
        err->code = FO_STORE_EIO;
        snprintf(err->msg, sizeof(err->msg), "store: uv_async_init: %s", uv_strerror(rc));
        return FO_STORE_EIO;
    }
    s->async.data = s;
    uv_unref((uv_handle_t *)&s->async);
    if (kind == FO_STORE_MEMORY) {
        /* Nothing blocks in the memory store: its jobs run on the loop thread. */
        s->inline_jobs = true;
        uv_idle_init(loop, &s->idle);
        s->idle.data = s;
        *out = s;
        return 0;
    }
    /* The worker takes no signals: they belong to the loop thread (uv_signal). */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&s->thread, NULL, worker_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        s->be->close(s->impl);
        uv_close((uv_handle_t *)&s->async, on_open_failed_closed);
        err->code = FO_STORE_EIO;
        snprintf(err->msg, sizeof(err->msg), "store: cannot start the worker thread: %s",
                 strerror(rc));
        return FO_STORE_EIO;
    }
    *out = s;
    return 0;
}

int fo_store_close(fo_store *s, fo_store_close_cb cb, void *data)
{
    if (!s)
        return FO_EINVAL;
    if (s->closing)
        return FO_ESTATE;
    s->closing = true;
    s->close_cb = cb;
    s->close_data = data;
    uv_ref((uv_handle_t *)&s->async);
    if (s->inline_jobs) {
        /* Every job ran already; the callbacks still due run before the close ends. */
        s->be->close(s->impl);
        s->impl = NULL;
        s->exited = true;
        uv_async_send(&s->async);
        return 0;
    }
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
    return 0;
}
