/* One load-generator connection: hello, sub, then (writers) flushes, and the checks of
 * every frame that comes back (proto/PROTOCOL.md):
 *  - every ack answers the oldest outstanding flush of this connection (same seq, same
 *    model), applies all K commands, reports no command errors, and its applied batch
 *    starts where this connection's stream of frames stands (pushes of batches applied
 *    before ours arrive before our ack);
 *  - pushes are gap-free per model per connection: push.diff.from equals the count this
 *    connection reached; the flushing connection never gets a push of its own batch;
 *  - any `error` frame, text frame or undecodable frame is a failure.
 * Each failure is counted once; the first few are printed in full. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bench/loadgen/lg.h"
#include "bench/loadgen/skim.h"

#define ID_MASK (((uint64_t)1 << 53) - 1)

const char *fo_lg_err_name(fo_lg_err_kind k)
{
    static const char *const names[FO_LGE_NKINDS] = {
        "connect", "error_frame", "bad_frame", "ack_mismatch", "apply", "order",
        "gap",     "overlap",     "own_push",  "unacked",      "local"};

    return (unsigned)k < FO_LGE_NKINDS ? names[k] : "?";
}

void fo_lg_error(fo_lg *lg, const fo_lg_conn *c, fo_lg_err_kind k, const char *fmt, ...)
{
    va_list ap;

    lg->total.errors++;
    lg->errs[k]++;
    if (lg->errors_printed >= lg->o.print_errors)
        return;
    lg->errors_printed++;
    if (c && lg->o.nurls > 1) /* which hub, when there are several */
        fprintf(stderr, "flushout-bench: error [%s]: conn %u (%s, model %s, %s): ",
                fo_lg_err_name(k), c->idx, c->writer ? "writer" : "subscriber",
                lg->model_names[c->model], lg->o.urls[c->url].url);
    else if (c)
        fprintf(stderr, "flushout-bench: error [%s]: conn %u (%s, model %s): ", fo_lg_err_name(k),
                c->idx, c->writer ? "writer" : "subscriber", lg->model_names[c->model]);
    else
        fprintf(stderr, "flushout-bench: error [%s]: ", fo_lg_err_name(k));
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (lg->errors_printed == lg->o.print_errors)
        fprintf(stderr, "flushout-bench: (further errors are counted, not printed)\n");
}

void fo_lg_conn_destroy(fo_lg_conn *c)
{
    free(c->fl);
    free(c->due);
    c->fl = NULL;
    c->due = NULL;
    c->fl_len = c->fl_cap = c->fl_head = 0;
    c->due_len = c->due_cap = c->due_head = 0;
}

static const char *model_of(const fo_lg_conn *c)
{
    return c->lg->model_names[c->model];
}

static int send_msg(fo_lg_conn *c, fo_msg *m)
{
    fo_lg *lg = c->lg;
    int rc;

    lg->out.len = 0;
    if ((rc = fo_wire_encode(m, &lg->out)) != 0)
        return rc;
    return fo_ws_send(&c->ws, fo_buf_data(&lg->out), lg->out.len) ? FO_ESTATE : 0;
}

/* ---- flushes --------------------------------------------------------------------------- */

static int flight_push(fo_lg_conn *c, const fo_lg_flight *f)
{
    if (c->fl_len == c->fl_cap) {
        uint32_t ncap = c->fl_cap ? c->fl_cap * 2 : 4, i;
        fo_lg_flight *n = malloc(ncap * sizeof(*n));
        if (!n)
            return FO_ENOMEM;
        for (i = 0; i < c->fl_len; i++)
            n[i] = c->fl[(c->fl_head + i) % c->fl_cap];
        free(c->fl);
        c->fl = n;
        c->fl_cap = ncap;
        c->fl_head = 0;
    }
    c->fl[(c->fl_head + c->fl_len) % c->fl_cap] = *f;
    c->fl_len++;
    return 0;
}

static void flight_pop(fo_lg_conn *c)
{
    c->fl_head = (c->fl_head + 1) % c->fl_cap;
    c->fl_len--;
    c->lg->inflight--;
}

static fo_action pick_action(fo_lg_conn *c)
{
    fo_lg *lg = c->lg;
    uint32_t sum = lg->o.mix[0] + lg->o.mix[1] + lg->o.mix[2];
    uint32_t r = (uint32_t)(fo_ws_rand(&lg->ws) % sum);
    fo_action a = r < lg->o.mix[0]                  ? FO_CREATE
                  : r < lg->o.mix[0] + lg->o.mix[1] ? FO_UPDATE
                                                    : FO_DELETE;

    if (a != FO_CREATE && c->nids == 0)
        a = FO_CREATE; /* nothing of ours to update or delete yet */
    return a;
}

/* props {v: payload, t: t_ns} (t only when stamp). NULL on OOM. */
static const fo_value *make_props(fo_lg *lg, bool stamp, uint64_t t_ns)
{
    fo_value *props = fo_arena_alloc(&lg->enc, sizeof(*props));
    fo_value v;
    bool ok = true;

    if (!props)
        return NULL;
    *props = fo_value_map(&lg->enc, 2, &ok);
    if (!ok)
        return NULL;
    if (lg->o.payload) {
        v = fo_value_str_static(lg->payload, lg->o.payload);
        if (fo_map_set(props->h.as.map, &lg->enc, lg->key_v, &v, NULL))
            return NULL;
    }
    if (stamp) {
        v = fo_value_int((int64_t)t_ns);
        if (fo_map_set(props->h.as.map, &lg->enc, lg->key_t, &v, NULL))
            return NULL;
    }
    return props;
}

int fo_lg_conn_flush(fo_lg_conn *c, uint64_t t_intended)
{
    fo_lg *lg = c->lg;
    uint32_t k, K = lg->o.commands;
    fo_completion *items;
    fo_key *segs;
    bool stamped = false;
    fo_lg_flight f;
    fo_msg m;
    int rc;

    if (c->state != FO_LGC_READY || !c->writer)
        return FO_ESTATE;
    fo_arena_reset(&lg->enc);
    items = fo_arena_calloc(&lg->enc, K * sizeof(*items));
    segs = fo_arena_alloc(&lg->enc, K * sizeof(*segs));
    if (!items || !segs)
        return FO_ENOMEM;
    for (k = 0; k < K; k++) {
        fo_command *cmd = &items[k].command;
        fo_action a = pick_action(c);
        uint64_t id;
        uint32_t j;

        cmd->action = a;
        if (a == FO_CREATE) {
            id = fo_ws_rand(&lg->ws) & ID_MASK;
            items[k].created_id = fo_key_from_u64(id);
            if (c->nids < FO_LG_MAX_IDS)
                c->ids[c->nids++] = id;
            else /* forget one (it stays in the document) */
                c->ids[fo_ws_rand(&lg->ws) % FO_LG_MAX_IDS] = id;
        } else {
            j = (uint32_t)(fo_ws_rand(&lg->ws) % c->nids);
            id = c->ids[j];
            segs[k] = fo_key_from_u64(id);
            cmd->path.seg = &segs[k];
            cmd->path.len = 1;
            if (a == FO_DELETE)
                c->ids[j] = c->ids[--c->nids];
        }
        if (a != FO_DELETE) {
            /* One timestamp per flush: the push latency sample. */
            if (!(cmd->props = make_props(lg, !stamped, t_intended)))
                return FO_ENOMEM;
            stamped = true;
        }
    }
    memset(&m, 0, sizeof(m));
    m.type = FO_MSG_FLUSH;
    m.model = model_of(c);
    m.seq = ++c->seq;
    m.has_rid = true;
    m.rid = m.seq;
    m.batch.from = c->pos;
    m.batch.len = K;
    m.batch.items = items;
    f.seq = m.seq;
    f.t_intended = t_intended;
    f.ncmds = K;
    if ((rc = flight_push(c, &f)) != 0 || (rc = send_msg(c, &m)) != 0)
        return rc;
    lg->inflight++;
    lg->total.flushes_sent++;
    return 0;
}

static int due_push(fo_lg_conn *c, uint64_t due)
{
    if (c->due_len == c->due_cap) {
        uint32_t ncap = c->due_cap ? c->due_cap * 2 : 8, i;
        uint64_t *n = malloc(ncap * sizeof(*n));
        if (!n)
            return FO_ENOMEM;
        for (i = 0; i < c->due_len; i++)
            n[i] = c->due[(c->due_head + i) % c->due_cap];
        free(c->due);
        c->due = n;
        c->due_cap = ncap;
        c->due_head = 0;
    }
    c->due[(c->due_head + c->due_len) % c->due_cap] = due;
    c->due_len++;
    return 0;
}

void fo_lg_conn_due(fo_lg_conn *c, uint64_t due)
{
    fo_lg *lg = c->lg;
    int rc;

    if (c->state != FO_LGC_READY || (lg->o.max_flushes && c->seq >= lg->o.max_flushes))
        return;
    if (c->fl_len == 0 || lg->o.pipeline) {
        if ((rc = fo_lg_conn_flush(c, due)) != 0)
            fo_lg_error(lg, c, FO_LGE_LOCAL, "cannot send a flush: %s", fo_strerror(rc));
    } else if (due_push(c, due) == 0) {
        lg->backlog++;
    } else {
        fo_lg_error(lg, c, FO_LGE_LOCAL, "out of memory queueing a flush");
    }
}

/* After a flush was answered: the next one. Closed loop: right away. Open loop: the
 * oldest flush that fell due meanwhile, still timed from when it was due. */
static void next_flush(fo_lg_conn *c)
{
    fo_lg *lg = c->lg;
    uint64_t due;
    int rc;

    if (!fo_lg_sending(lg) || c->state != FO_LGC_READY)
        return;
    if (lg->o.max_flushes && c->seq >= lg->o.max_flushes) {
        if (c->fl_len == 0 && !c->quota_done) {
            c->quota_done = true;
            fo_lg_on_writer_done(lg, c);
        }
        return;
    }
    if (lg->o.rate <= 0) {
        due = uv_hrtime();
    } else {
        if (!c->due_len || c->fl_len)
            return;
        due = c->due[c->due_head];
        c->due_head = (c->due_head + 1) % c->due_cap;
        c->due_len--;
        lg->backlog--;
    }
    if ((rc = fo_lg_conn_flush(c, due)) != 0)
        fo_lg_error(lg, c, FO_LGE_LOCAL, "cannot send a flush: %s", fo_strerror(rc));
}

/* ---- replies --------------------------------------------------------------------------- */

static bool is_own_from(const fo_lg_conn *c, uint64_t from)
{
    uint32_t i, n = c->own_n < FO_LG_OWN_RING ? c->own_n : FO_LG_OWN_RING;

    for (i = 0; i < n; i++)
        if (c->own_from[i] == from)
            return true;
    return false;
}

static void remap_ids(fo_lg_conn *c, const fo_sync *s)
{
    uint32_t i, j;
    uint64_t from, to;

    for (i = 0; i < s->mapped_len; i++) {
        const fo_path_mapping *pm = &s->mapped[i];
        if (pm->from.len != 1 || pm->to.len != 1 || !fo_key_is_num(pm->from.seg[0], &from) ||
            !fo_key_is_num(pm->to.seg[0], &to))
            continue;
        for (j = 0; j < c->nids; j++)
            if (c->ids[j] == from)
                c->ids[j] = to;
    }
}

/* The fields the checks use, from a full decode (the skim fills the same struct). */
static void view_of(const fo_lg *lg, const fo_msg *m, fo_skim *v)
{
    const fo_batch *b = m->type == FO_MSG_ACK ? &m->result.applied : &m->batch;
    uint32_t i;

    memset(v, 0, sizeof(*v));
    v->type = m->type;
    v->model = m->model;
    v->model_len = m->model ? (uint32_t)strlen(m->model) : 0;
    v->seq = m->seq;
    v->from = b->from;
    v->len = b->len;
    if (m->type == FO_MSG_ACK) {
        v->sync = m->result.sync.kind;
        v->sync_from = m->result.sync.diff.from;
        v->sync_len = m->result.sync.diff.len;
        v->latest_count = m->result.sync.latest.command_count;
        return;
    }
    for (i = 0; i < b->len && v->nstamps < FO_SKIM_MAX_STAMPS; i++) {
        const fo_value *props = b->items[i].command.props;
        const fo_map *pm = props ? fo_value_as_map(props) : NULL;
        const fo_value *t = pm ? fo_map_get(pm, lg->key_t) : NULL;
        if (t && fo_value_type(t) == FO_INT)
            v->stamps[v->nstamps++] = t->h.as.i;
    }
}

/* `full` is the decoded frame when there is one (NULL when skimmed: then the ack has no
 * errors and no mappedPaths). */
static void on_ack(fo_lg_conn *c, const fo_skim *v, const fo_msg *full)
{
    fo_lg *lg = c->lg;
    uint64_t end = v->from + v->len, count = end, now = lg->ws.now, lat;
    const fo_apply_result *r = full ? &full->result : NULL;
    fo_lg_flight f;
    uint32_t i;

    if (!c->writer || c->fl_len == 0) {
        fo_lg_error(lg, c, FO_LGE_ACK, "ack seq %llu with no flush outstanding",
                    (unsigned long long)v->seq);
        return;
    }
    f = c->fl[c->fl_head];
    if (v->seq != f.seq) {
        for (i = 1; i < c->fl_len && c->fl[(c->fl_head + i) % c->fl_cap].seq != v->seq; i++)
            ;
        fo_lg_error(lg, c, FO_LGE_ACK,
                    "ack seq %llu but the oldest outstanding flush is seq %llu (%s)",
                    (unsigned long long)v->seq, (unsigned long long)f.seq,
                    i < c->fl_len ? "acks out of order" : "no such flush");
        return;
    }
    flight_pop(c);
    lat = now > f.t_intended ? now - f.t_intended : 0;
    if (v->sync == FO_SYNC_PARTIAL)
        count = v->sync_from + v->sync_len;
    else if (v->sync == FO_SYNC_FULL)
        count = v->latest_count;
    if (r && r->errors_len)
        fo_lg_error(lg, c, FO_LGE_APPLY, "ack seq %llu reports %u failed command(s), first: %s %s",
                    (unsigned long long)v->seq, r->errors_len, fo_action_name(r->errors[0].action),
                    r->errors[0].message);
    if (v->len != f.ncmds)
        fo_lg_error(lg, c, FO_LGE_APPLY, "ack seq %llu applied %u of %u commands",
                    (unsigned long long)v->seq, v->len, f.ncmds);
    if (v->from != c->pos)
        fo_lg_error(lg, c, FO_LGE_ORDER,
                    "ack seq %llu: applied.from %llu but this connection's frames reached "
                    "count %llu (pushes %s before the ack)",
                    (unsigned long long)v->seq, (unsigned long long)v->from,
                    (unsigned long long)c->pos, v->from > c->pos ? "missing" : "beyond");
    if (count != end)
        fo_lg_error(lg, c, FO_LGE_ORDER,
                    "ack seq %llu: sync leads to count %llu but applied ends at %llu",
                    (unsigned long long)v->seq, (unsigned long long)count, (unsigned long long)end);
    if (r && r->sync.kind != FO_SYNC_NONE && r->sync.mapped_len)
        remap_ids(c, &r->sync);
    c->own_from[c->own_n++ % FO_LG_OWN_RING] = v->from;
    c->pos = count;
    lg->total.acks++;
    lg->total.commands += v->len;
    if (lg->phase == FO_LG_MEASURE)
        fo_hist_record(&lg->ack, lat);
    fo_hist_record(&lg->ack_sec, lat);
    if (lg->storm.active)
        fo_hist_record(&lg->storm.ack, lat);
    next_flush(c);
}

static void on_push(fo_lg_conn *c, const fo_skim *v)
{
    fo_lg *lg = c->lg;
    uint64_t end = v->from + v->len, now = lg->ws.now;
    uint32_t i;

    if (v->from != c->pos) {
        if (end <= c->pos && is_own_from(c, v->from))
            fo_lg_error(lg, c, FO_LGE_OWN_PUSH, "push of our own batch [%llu, %llu)",
                        (unsigned long long)v->from, (unsigned long long)end);
        else if (v->from < c->pos)
            fo_lg_error(lg, c, FO_LGE_OVERLAP,
                        "push [%llu, %llu) overlaps what this connection has (count %llu)",
                        (unsigned long long)v->from, (unsigned long long)end,
                        (unsigned long long)c->pos);
        else
            fo_lg_error(
                lg, c, FO_LGE_GAP, "gap: push [%llu, %llu) but this connection is at count %llu",
                (unsigned long long)v->from, (unsigned long long)end, (unsigned long long)c->pos);
    }
    if (end > c->pos)
        c->pos = end;
    lg->total.pushes++;
    lg->total.push_cmds += v->len;
    if (lg->phase != FO_LG_MEASURE)
        return;
    for (i = 0; i < v->nstamps; i++)
        if (v->stamps[i] >= 0 && (uint64_t)v->stamps[i] <= now)
            fo_hist_record(&lg->push, now - (uint64_t)v->stamps[i]);
}

/* Every Nth skimmed frame is also decoded in full; the two readings must agree. */
static void cross_check(fo_lg_conn *c, const fo_skim *sk, const char *data, size_t len)
{
    fo_lg *lg = c->lg;
    fo_err_info err;
    fo_skim full;
    fo_msg m;
    int rc;

    fo_arena_reset(&lg->dec);
    if ((rc = fo_wire_decode(data, len, &lg->limits, &lg->dec, &m, &err)) != 0) {
        fo_lg_error(lg, c, FO_LGE_FRAME, "undecodable %s frame (%zu bytes): %s: %s %s",
                    fo_msg_type_name(sk->type), len, fo_strerror(rc), err.path, err.msg);
        return;
    }
    view_of(lg, &m, &full);
    if (full.type != sk->type || full.seq != sk->seq || full.from != sk->from ||
        full.len != sk->len || full.sync != sk->sync ||
        (sk->sync == FO_SYNC_PARTIAL &&
         (full.sync_from != sk->sync_from || full.sync_len != sk->sync_len)) ||
        (sk->sync == FO_SYNC_FULL && full.latest_count != sk->latest_count) ||
        full.nstamps != sk->nstamps || (full.nstamps && full.stamps[0] != sk->stamps[0]))
        fo_lg_error(lg, c, FO_LGE_LOCAL,
                    "the fast reader disagrees with fo_wire_decode on a %zu-byte %s frame", len,
                    fo_msg_type_name(sk->type));
}

/* The hot path: acks and pushes read by the skim (see skim.h). True when handled. */
static bool on_skimmed(fo_lg_conn *c, const char *data, size_t len)
{
    fo_lg *lg = c->lg;
    const char *name = lg->model_names[c->model];
    fo_skim sk;

    if (fo_skim_frame(data, len, &sk) != 0)
        return false; /* not for the skim, or odd: the full decoder says what */
    if (sk.model_len != strlen(name) || memcmp(sk.model, name, sk.model_len) != 0)
        return false;
    if (lg->o.check_every && ++lg->skimmed % lg->o.check_every == 0)
        cross_check(c, &sk, data, len);
    if (sk.type == FO_MSG_ACK)
        on_ack(c, &sk, NULL);
    else
        on_push(c, &sk);
    return true;
}

static void on_error_frame(fo_lg_conn *c, const fo_msg *m)
{
    fo_lg *lg = c->lg;

    const char *code = fo_error_code_name(m->code);

    fo_lg_error(lg, c, FO_LGE_ERROR_FRAME, "hub sent error %s (rid %lld): %s", code ? code : "?",
                m->has_rid ? (long long)m->rid : -1LL, m->message ? m->message : "");
    /* An error answers the request: retire the flush so a closed loop keeps going. */
    if (m->has_rid && c->fl_len && c->fl[c->fl_head].seq == m->rid) {
        flight_pop(c);
        next_flush(c);
    }
}

static void send_sub(fo_lg_conn *c)
{
    fo_msg m;

    memset(&m, 0, sizeof(m));
    m.type = FO_MSG_SUB;
    m.model = model_of(c);
    m.has_from = c->storming; /* back after the storm: from where its frames stopped */
    m.from = c->pos;
    c->state = FO_LGC_SUB;
    if (send_msg(c, &m))
        fo_lg_error(c->lg, c, FO_LGE_LOCAL, "cannot send sub");
}

static void on_message(fo_ws *ws, int opcode, const char *data, size_t len)
{
    fo_lg_conn *c = ws->data;
    fo_lg *lg = c->lg;
    fo_err_info err;
    fo_skim v;
    fo_msg m;
    int rc;

    if (opcode != FO_WS_OP_BINARY) {
        fo_lg_error(lg, c, FO_LGE_FRAME, "text frame from the hub (%zu bytes)", len);
        return;
    }
    if (lg->o.check_every != 1 && on_skimmed(c, data, len))
        return;
    fo_arena_reset(&lg->dec);
    rc = fo_wire_decode(data, len, &lg->limits, &lg->dec, &m, &err);
    if (rc) {
        fo_lg_error(lg, c, FO_LGE_FRAME, "undecodable frame (%zu bytes): %s: %s %s", len,
                    fo_strerror(rc), err.path, err.msg);
        return;
    }
    if (m.model && strcmp(m.model, model_of(c)) != 0) {
        fo_lg_error(lg, c, FO_LGE_FRAME, "%s for model %s, not ours", fo_msg_type_name(m.type),
                    m.model);
        return;
    }
    switch (m.type) {
    case FO_MSG_ACK:
    case FO_MSG_PUSH:
        view_of(lg, &m, &v);
        if (m.type == FO_MSG_ACK)
            on_ack(c, &v, &m);
        else
            on_push(c, &v);
        break;
    case FO_MSG_ERROR: on_error_frame(c, &m); break;
    case FO_MSG_WELCOME:
        if (c->state != FO_LGC_HELLO) {
            fo_lg_error(lg, c, FO_LGE_FRAME, "unexpected welcome");
        } else if (lg->o.idle) {
            c->state = FO_LGC_READY;
            fo_lg_on_ready(lg, c);
        } else {
            send_sub(c);
        }
        break;
    case FO_MSG_DIFF:
        if (c->state != FO_LGC_SUB || !c->storming) {
            fo_lg_error(lg, c, FO_LGE_FRAME, "unexpected diff");
        } else {
            if (m.batch.from != c->pos)
                fo_lg_error(lg, c, m.batch.from > c->pos ? FO_LGE_GAP : FO_LGE_OVERLAP,
                            "sub from %llu after the storm: the diff starts at %llu",
                            (unsigned long long)c->pos, (unsigned long long)m.batch.from);
            c->pos = m.batch.from + m.batch.len;
            fo_lg_storm_back(lg, c, false);
        }
        break;
    case FO_MSG_SNAP:
        if (c->state == FO_LGC_SUB && c->storming) {
            c->pos = m.snapshot.command_count;
            fo_lg_storm_back(lg, c, true);
        } else if (c->state == FO_LGC_SUB) {
            c->pos = m.snapshot.command_count;
            c->state = FO_LGC_READY;
            fo_lg_on_ready(lg, c);
        } else if (c->state == FO_LGC_READY && m.snapshot.command_count >= c->pos) {
            /* A slow subscriber's catch-up when history no longer covers it. */
            c->pos = m.snapshot.command_count;
            lg->total.catchup_snaps++;
        } else {
            fo_lg_error(lg, c, FO_LGE_FRAME, "unexpected snap (count %llu, connection at %llu)",
                        (unsigned long long)m.snapshot.command_count, (unsigned long long)c->pos);
        }
        break;
    case FO_MSG_PRESENCE_EVT: break;
    default:
        fo_lg_error(lg, c, FO_LGE_FRAME, "unexpected %s frame", fo_msg_type_name(m.type));
        break;
    }
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static void on_open(fo_ws *ws, int status)
{
    fo_lg_conn *c = ws->data;
    fo_lg *lg = c->lg;
    char client[80];
    fo_msg m;

    if (status) {
        if (ws->http_status && ws->http_status != 101)
            fo_lg_error(lg, c, FO_LGE_CONNECT, "connect failed: HTTP %d", ws->http_status);
        else if (status == FO_WS_ETLS)
            fo_lg_error(lg, c, FO_LGE_CONNECT, "connect failed: TLS: %s%s", ws->tls_why,
                        strstr(ws->tls_why, "not trusted")
                            ? " (for a private CA: --ca FILE or FLUSHOUT_CA)" : "");
        else
            fo_lg_error(lg, c, FO_LGE_CONNECT, "connect failed: %s", fo_ws_strerror(status));
        lg->connect_failed++;
        return;
    }
    if (lg->o.idle && lg->o.no_hello) {
        c->state = FO_LGC_READY;
        fo_lg_on_ready(lg, c);
        return;
    }
    snprintf(client, sizeof(client), "%s-%u", lg->client_prefix, c->idx);
    memset(&m, 0, sizeof(m));
    m.type = FO_MSG_HELLO;
    m.client = client;
    c->state = FO_LGC_HELLO;
    if (send_msg(c, &m))
        fo_lg_error(lg, c, FO_LGE_LOCAL, "cannot send hello");
}

static void on_close(fo_ws *ws, int status)
{
    fo_lg_conn *c = ws->data;
    fo_lg *lg = c->lg;
    fo_lg_conn_state was = c->state;

    c->state = FO_LGC_CLOSED;
    if (c->storming && fo_lg_storm_closed(lg, c, was))
        return;
    if (was != FO_LGC_READY && was != FO_LGC_CONNECTING && lg->phase < FO_LG_CLOSE)
        fo_lg_error(lg, c, FO_LGE_CONNECT, "connection closed during hello/sub: %s",
                    fo_ws_strerror(status));
    if (was == FO_LGC_READY && lg->phase < FO_LG_CLOSE) {
        if (ws->close_code)
            fo_lg_error(lg, c, FO_LGE_CONNECT,
                        "hub closed the connection (code %u) with %u flush(es) "
                        "outstanding",
                        ws->close_code, c->fl_len);
        else
            fo_lg_error(lg, c, FO_LGE_CONNECT, "connection lost: %s, %u flush(es) outstanding",
                        fo_ws_strerror(status), c->fl_len);
    }
    lg->inflight -= c->fl_len;
    lg->backlog -= c->due_len;
    c->fl_len = 0;
    c->due_len = 0;
    fo_lg_on_closed(lg, c, status);
}

int fo_lg_conn_start(fo_lg *lg, fo_lg_conn *c)
{
    const struct sockaddr *src = NULL;
    const fo_lg_url *u;
    int rc;

    c->lg = lg;
    if (lg->o.nsources)
        src = (const struct sockaddr *)&lg->o.sources[c->idx % lg->o.nsources];
    u = &lg->o.urls[c->url];
    rc = fo_ws_connect(&lg->ws, &c->ws, (const struct sockaddr *)&lg->dst[c->url], src, u->host,
                       u->path, "flushout.v1", on_open, on_message, on_close);
    if (rc)
        return rc;
    c->ws.data = c;
    c->ws.tls_name = u->hostname; /* read when TCP connects, on a later iteration */
    c->state = FO_LGC_CONNECTING;
    return 0;
}
