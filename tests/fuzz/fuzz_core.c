/* fuzz_core.c - libFuzzer target for the Flushout core (proto/master.h, proxy.h, doc.h,
 * batch.h): sequences of commands, flushes, acks, pushes and resets between one master and
 * two or three proxies (built with clang by tests/fuzz/CMakeLists.txt, run by the ctest
 * `fuzz_core`; seeds from make_corpus_core.py). The generators and the oracles of single
 * commands are in core_gen.h.
 *
 * Input: three header bytes, then one op per byte (with the bytes the op reads after it).
 *   byte 0: bit 0 three proxies (else two), bit 1 master with seeded random IDs (else
 *           sequential), bit 2 history_by_ref (the hub's path: the ack's history part is
 *           spliced from the stored encodings), bits 3-4 master interceptor (reject /
 *           replace some commands), bit 5 keep_parent_default on a replace, bits 6-7 how
 *           much history the master keeps (all, 4, 16 completions, none: full syncs).
 *   byte 1: bit 0 master depth limit 8 (stricter than the proxies' 24: the master then
 *           fails commands the proxies applied), bit 1 the interceptor may fail the whole
 *           apply (the run then stops: the hub treats that as fatal), bits 2-7 a seed.
 *   byte 2: 0 an empty start, else a start snapshot at count 5 * byte 2 built from the
 *           bytes that follow.
 * A proxy's flush goes through three ops (begin, master apply, ack delivery) so that other
 * proxies' flushes and pushes interleave; acks, pushes and snapshots travel as wire frames.
 *
 * Invariants checked, each aborting so that libFuzzer keeps the input:
 *   - a local apply succeeds iff FLUSHOUT-SEMANTICS.md says it does (an oracle over the
 *     document: navigation through maps only, parentDefault, the depth limit); a success
 *     has its effect (the created item, the merged keys, the deleted key) and adds one to
 *     the count; a failure has an error and leaves document, count and queue as they were;
 *   - a proxy's count is always committed count + in-flight + queued commands;
 *   - the master's result: applied.from is the count before, applied + errors = the batch,
 *     the count grows by applied.len, no sync iff the batch was current and unchanged, a
 *     partial sync's diff is exactly the history from batch.from plus the applied batch,
 *     a full one is the master's snapshot;
 *   - an ack, push or snapshot frame decodes to what was encoded (by-ref acks included),
 *     an applied batch survives wire and JSON round trips, and so does the result;
 *   - an ack ends the flush (0) and, when no other batch was applied since, leaves the
 *     proxy's committed document equal to the master's; a forged diff with a wrong `from`
 *     gets FO_EGAP and leaves the flush in progress; a second end gets FO_ESTATE;
 *   - pushes of history apply (0) and move the committed count; a wrong `from` is FO_EGAP,
 *     a push or reset during a flush FO_ESTATE;
 *   - after every proxy has flushed everything and synced (by push or by an empty flush),
 *     every proxy's document and committed document equal the master's, counts agree;
 *   - a proxy built from the start snapshot plus one push of the whole history, and one
 *     reset from the master's snapshot, equal the master (diff vs full sync);
 *   - replaying the applied batches on a fresh master (no interceptor) applies each as is
 *     (no sync, no errors) and ends with the live master's document and count;
 *   - compaction keeps the document; the snapshot survives a JSON round trip;
 *   - ASan/UBSan/LeakSanitizer clean.
 * Keys never contain ',' nor are empty: mappedPaths keys are paths joined with ',', an
 * ambiguity the reference has too (PROTOCOL.md). Values are finite and valid UTF-8, so that
 * JSON can carry them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"
#include "proto/json.h"
#include "proto/master.h"
#include "proto/proxy.h"
#include "proto/wire.h"
#include "tests/fuzz/core_gen.h"
#include "tests/fuzz/wire_cmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OPS 160
#define MAX_HIST 1024   /* completions: at most one per local apply */
#define MAX_BATCHES 2048 /* master applies (a quiesce makes up to nine) */
#define ICPT_FAIL FO_EINVAL

typedef enum { P_IDLE, P_BEGUN, P_SENT } pstate;

typedef struct peer {
    fo_proxy *p;
    pstate st;
    fo_batch flight; /* borrowed from the proxy from begin to end/cancel */
    fo_buf ack;      /* the encoded ack (P_SENT) */
    uint64_t ack_count; /* the master's count right after it applied the flight */
} peer;

typedef struct hbatch {
    uint64_t from;
    uint32_t len;
    char *bytes; /* fo_wire_encode_batch of the applied batch */
    size_t size;
} hbatch;

typedef struct world {
    fo_master *m;
    peer peers[3];
    int np;
    fo_snapshot start;
    fo_arena start_arena, hist_arena, res, tmp;
    fo_completion hist[MAX_HIST]; /* hist[i] took the model from start.count + i */
    uint32_t hist_len;
    hbatch batches[MAX_BATCHES];
    uint32_t nbatches;
    uint64_t window; /* completions of history kept; UINT64_MAX: all */
    bool by_ref, keep_pd, icpt_may_fail, dead;
    int icpt_mode;
    uint32_t icpt_calls, seed, master_depth;
    fo_key k_tag, k_for; /* intent tags, see intent() */
    int64_t tags;
    uint64_t seq;
    paths ps;
} world;

/* The wire's default limits but the frame size: a few big strings (gen_value) may make a
 * snapshot longer than 1 MiB, which is the hub's business, not the codec's. */
static const fo_wire_limits *roomy(void)
{
    static fo_wire_limits l;

    if (!l.max_frame) {
        fo_wire_limits_default(&l);
        l.max_frame = (size_t)64 << 20;
    }
    return &l;
}

/* ---- checks shared by the ops -------------------------------------------------------- */

/* Bound of the numeric keys rand_key draws: IDs near the master's count. */
static uint64_t ids(const world *w)
{
    return fo_master_snapshot(w->m).command_count + 4;
}

static void check_peer(const peer *pe)
{
    const fo_proxy *p = pe->p;
    uint64_t inflight = pe->st == P_IDLE ? 0 : pe->flight.len;

    CHECK(fo_proxy_flushing(p) == (pe->st != P_IDLE), "proxy flushing state is wrong");
    CHECK(fo_proxy_count(p) == fo_proxy_committed_count(p) + inflight + fo_proxy_queue_len(p),
          "proxy count is not committed + in flight + queued");
    CHECK(fo_proxy_has_unflushed(p) == (fo_proxy_queue_len(p) > 0), "has_unflushed is wrong");
}

static void check_batch_roundtrip(const fo_batch *b, fo_arena *a)
{
    fo_buf buf;
    fo_batch d;
    fo_err_info err;

    fo_buf_init(&buf, 0);
    CHECK(fo_json_write_batch(b, FO_JSON_COMPACT, &buf) == 0, "JSON export of a batch failed");
    CHECK(fo_json_read_batch(fo_buf_data(&buf), buf.len, a, &d, &err) == 0,
          "JSON import of an exported batch failed");
    CHECK(wc_batch_eq(b, &d), "a batch changed in a JSON round trip");
    fo_buf_destroy(&buf);
}

static uint64_t master_count(const world *w)
{
    return fo_master_snapshot(w->m).command_count;
}

static bool doc_eq_master(const world *w, const fo_value *v)
{
    return fo_value_eq(v, fo_master_snapshot(w->m).document);
}

/* ---- history ------------------------------------------------------------------------- */

static int history(void *ctx, uint64_t from, uint64_t to, fo_arena *a, fo_batch *out)
{
    world *w = ctx;
    uint64_t base = w->start.command_count;

    if (from < base || to > base + w->hist_len || from > to ||
        (w->window != UINT64_MAX && to - from > w->window))
        return -1;
    out->from = from;
    out->len = (uint32_t)(to - from);
    out->items = a ? &w->hist[from - base] : NULL;
    return 0;
}

/* Records an applied batch: encoded (kept for spliced acks and pushes) and decoded back
 * into the history arena. */
static void record(world *w, const fo_batch *b)
{
    fo_buf buf;
    fo_batch d;
    fo_err_info err;
    hbatch *h;

    CHECK(w->nbatches < MAX_BATCHES && w->hist_len + b->len <= MAX_HIST, "history full");
    fo_buf_init(&buf, 0);
    CHECK(fo_wire_encode_batch(b, &buf) == 0, "encoding an applied batch failed");
    CHECK(fo_wire_decode_batch(fo_buf_data(&buf), buf.len, roomy(), &w->hist_arena, &d, &err) == 0,
          "an encoded applied batch does not decode");
    CHECK(wc_batch_eq(b, &d), "an applied batch changed in a wire round trip");
    check_batch_roundtrip(b, &w->tmp);
    h = &w->batches[w->nbatches++];
    h->from = b->from;
    h->len = b->len;
    h->size = buf.len;
    h->bytes = fo_buf_release(&buf);
    if (d.len)
        memcpy(&w->hist[w->hist_len], d.items, d.len * sizeof(fo_completion));
    w->hist_len += d.len;
}

/* Encoded completions [from, to) of the history, as the hub splices them: one part per
 * stored batch, cut with fo_wire_batch_items. */
static fo_wire_part *hist_parts(world *w, uint64_t from, uint64_t to, uint32_t *n)
{
    fo_wire_part *parts = fo_arena_alloc(&w->tmp, (w->nbatches + 1) * sizeof(*parts));

    CHECK(parts, "out of memory");
    *n = 0;
    for (uint32_t i = 0; i < w->nbatches && from < to; i++) {
        const hbatch *h = &w->batches[i];
        uint64_t end = h->from + h->len, stop = end < to ? end : to;
        const void *pa, *pb;
        size_t la = 0, lb = 0;
        uint32_t ca = 0, cb = 0;

        if (end <= from || h->len == 0)
            continue;
        CHECK(h->from <= from, "history has a gap");
        CHECK(fo_wire_batch_items(h->bytes, h->size, (uint32_t)(from - h->from), true, &pa, &la,
                                  &ca) == 0 &&
                  fo_wire_batch_items(h->bytes, h->size, (uint32_t)(stop - h->from), false, &pb,
                                      &lb, &cb) == 0,
              "fo_wire_batch_items failed on a stored batch");
        CHECK(ca == end - from && cb == end - stop && (const char *)pa + (la - lb) == pb,
              "fo_wire_batch_items: counts or offsets disagree");
        if (la > lb)
            parts[(*n)++] = (fo_wire_part){pa, la - lb};
        from = stop;
    }
    CHECK(from == to, "history does not cover the parts asked for");
    return parts;
}

/* ---- master -------------------------------------------------------------------------- */

static int interceptor(void *data, const fo_value *doc, const fo_command *cmd, void *context,
                       fo_arena *a, fo_interception *out)
{
    world *w = data;
    uint32_t h = (w->icpt_calls++ + w->seed) * 2654435761u;

    (void)context;
    intent(w->k_tag, w->k_for, doc, cmd);
    h ^= h >> 15;
    if (w->icpt_may_fail && h % 61 == 0)
        return ICPT_FAIL;
    if ((w->icpt_mode & 1) && h % 5 == 0) {
        out->kind = FO_INTERCEPT_REJECT;
        out->rejection = (h & 64) ? "rejected by the fuzz interceptor" : NULL;
    } else if ((w->icpt_mode & 2) && h % 5 == 1) {
        bool ok = true;
        fo_value *v = fo_arena_alloc(a, sizeof(*v)), n = fo_value_int(h % 1000);
        fo_key k = fo_key_new_cstr(a, "stamp");
        if (!v || !k)
            return FO_ENOMEM;
        *v = fo_value_map(a, 1, &ok);
        if (!ok || fo_map_set(v->h.as.map, a, k, &n, NULL))
            return FO_ENOMEM;
        out->kind = FO_INTERCEPT_REPLACE; /* on a delete: a rejection (batch.h) */
        out->new_props = v;
        out->keep_parent_default = w->keep_pd;
    }
    return 0;
}

/* The master applies a peer's flight; the ack is encoded into pe->ack. */
static void master_apply(world *w, peer *pe)
{
    const fo_batch *b = &pe->flight;
    uint64_t start = master_count(w);
    fo_apply_result res, want;
    fo_msg ack, dec;
    fo_err_info err;
    fo_batch hist;
    int rc;

    fo_arena_reset(&w->res);
    rc = fo_master_apply(w->m, b, NULL, &w->res, &res);
    if (rc == ICPT_FAIL && w->icpt_may_fail) {
        w->dead = true;
        return;
    }
    CHECK(rc == 0, "fo_master_apply failed");
    CHECK(res.applied.from == start, "applied.from is not the count before the apply");
    CHECK(res.applied.len + res.errors_len == b->len, "applied + errors != the batch");
    CHECK(master_count(w) == start + res.applied.len, "the count did not grow by applied.len");
    for (uint32_t i = 0; i < res.errors_len; i++)
        CHECK(res.errors[i].message, "an error without a message");
    if (res.sync.kind == FO_SYNC_NONE)
        CHECK(b->from == start && res.errors_len == 0, "no sync for a stale or failed batch");
    else
        CHECK(res.sync.has_mapped, "a sync without mappedPaths");
    if (b->from != start) {
        bool covered = b->from < start && history(w, b->from, start, &w->tmp, &hist) == 0;
        CHECK(res.sync.kind == (covered ? FO_SYNC_PARTIAL : FO_SYNC_FULL),
              "a stale batch got the wrong kind of sync");
    }
    record(w, &res.applied);

    /* What the ack must say, the diff written out in full. */
    want = res;
    if (res.sync.kind == FO_SYNC_PARTIAL) {
        uint64_t h = start - b->from;
        fo_completion *all = fo_arena_alloc(&w->tmp, (h + res.applied.len + 1) * sizeof(*all));
        CHECK(all, "out of memory");
        CHECK(res.sync.diff.from == b->from && res.sync.diff.len == h + res.applied.len,
              "a partial sync's diff has the wrong range");
        CHECK(res.sync.external == (w->by_ref ? h : 0), "sync.external is wrong");
        if (h)
            memcpy(all, &w->hist[b->from - w->start.command_count], h * sizeof(*all));
        if (res.applied.len)
            memcpy(all + h, res.applied.items, res.applied.len * sizeof(*all));
        want.sync.diff.items = all;
        want.sync.external = 0;
        if (!w->by_ref) {
            fo_batch x = {b->from, (uint32_t)(h + res.applied.len), all};
            CHECK(wc_batch_eq(&res.sync.diff, &x), "a partial diff is not history + applied");
        }
    } else if (res.sync.kind == FO_SYNC_FULL) {
        CHECK(res.sync.latest.command_count == master_count(w) &&
                  doc_eq_master(w, res.sync.latest.document),
              "a full sync is not the master's snapshot");
    }

    memset(&ack, 0, sizeof(ack));
    ack.type = FO_MSG_ACK;
    ack.model = "doc";
    ack.seq = ++w->seq;
    ack.result = res;
    if (res.sync.external)
        ack.ext_parts = hist_parts(w, b->from, start, &ack.n_ext_parts);
    fo_buf_init(&pe->ack, 0);
    CHECK(fo_wire_encode(&ack, &pe->ack) == 0, "encoding an ack failed");
    CHECK(fo_wire_decode(fo_buf_data(&pe->ack), pe->ack.len, roomy(), &w->tmp, &dec, &err) == 0,
          "an encoded ack does not decode");
    CHECK(dec.type == FO_MSG_ACK && dec.seq == ack.seq && wc_result_eq(&want, &dec.result),
          "an ack changed in a wire round trip");
    {
        fo_buf j;
        fo_apply_result back;
        fo_buf_init(&j, 0);
        CHECK(fo_json_write_result(&want, FO_JSON_COMPACT, &j) == 0, "JSON export of a result");
        CHECK(fo_json_read_result(fo_buf_data(&j), j.len, &w->tmp, &back, &err) == 0,
              "JSON import of an exported result failed");
        CHECK(wc_result_eq(&want, &back), "a result changed in a JSON round trip");
        fo_buf_destroy(&j);
    }
    pe->ack_count = master_count(w);
    pe->st = P_SENT;
}

/* ---- proxy ops ----------------------------------------------------------------------- */

static void op_apply(world *w, peer *pe, rd *r)
{
    fo_proxy *p = pe->p;
    paths *ps = &w->ps;
    fo_key pre[PROXY_DEPTH], *seg;
    uint8_t b = next(r), c = next(r);
    uint32_t pi, n, i;
    fo_command cmd;
    fo_value *props = NULL, *pd = NULL, *before = NULL;
    fo_doc_result out;
    uint64_t count = fo_proxy_count(p), queued = fo_proxy_queue_len(p);
    bool want;

    ps->n = 0;
    collect(ps, fo_value_as_map(fo_proxy_document(p)), pre, 0);
    pi = next(r) % ps->n;
    CHECK((seg = fo_arena_alloc(&w->tmp, (ps->len[pi] + 2) * sizeof(fo_key))), "out of memory");
    for (n = 0; n < ps->len[pi]; n++)
        seg[n] = key_copy(&w->tmp, ps->seg[pi][n]);
    if ((b & 8) && fo_map_len(ps->map[pi])) {
        const fo_entry *e = &fo_map_entries(ps->map[pi])[next(r) % fo_map_len(ps->map[pi])];
        if (e->key)
            seg[n++] = key_copy(&w->tmp, e->key);
    }
    if (b & 16)
        seg[n++] = rand_key(r, ids(w), &w->tmp);
    memset(&cmd, 0, sizeof(cmd));
    cmd.path.seg = seg;
    cmd.path.len = n;
    switch (b & 7) {
    case 0: case 1: case 2: cmd.action = FO_CREATE; break;
    case 3: case 4: cmd.action = FO_UPDATE; break;
    case 5: case 6: cmd.action = FO_DELETE; break;
    default: cmd.action = FO_ACTION_NONE; break;
    }
    if (cmd.action != FO_DELETE && !(c & 1)) {
        CHECK((props = fo_arena_alloc(&w->tmp, sizeof(*props))), "out of memory");
        gen_map(r, ids(w), &w->tmp, 1 + (c >> 1) % 4, props);
        cmd.props = props;
    }
    if (cmd.action == FO_CREATE && (c & 0x20)) {
        CHECK((pd = fo_arena_alloc(&w->tmp, sizeof(*pd))), "out of memory");
        gen_map(r, ids(w), &w->tmp, 1 + (c >> 6), pd);
        cmd.parent_default = pd;
    }
    if (props && cmd.action == FO_CREATE) {
        fo_value t = fo_value_int(++w->tags);
        CHECK(fo_map_set(props->h.as.map, &w->tmp, w->k_tag, &t, NULL) == 0, "out of memory");
    }
    if (props) {
        int64_t meant;
        if (tag_of(walk(fo_proxy_document(p), seg, n), w->k_tag, &meant)) {
            fo_value t = fo_value_int(meant);
            CHECK(fo_map_set(props->h.as.map, &w->tmp, w->k_for, &t, NULL) == 0, "oom");
        }
    }
    want = predict(fo_proxy_document(p), &cmd);
    if (!want) {
        CHECK((before = fo_arena_alloc(&w->tmp, sizeof(*before))), "out of memory");
        CHECK(fo_value_copy(&w->tmp, fo_proxy_document(p), before, NULL, NULL) == 0, "oom");
    }
    CHECK(fo_proxy_apply(p, &cmd, &out) == 0, "fo_proxy_apply failed");
    CHECK(out.ok == want, want ? "a valid command failed" : "an invalid command succeeded");
    if (!out.ok) {
        CHECK(out.error, "a failure without a message");
        CHECK(fo_proxy_count(p) == count && fo_proxy_queue_len(p) == queued &&
                  fo_value_eq(before, fo_proxy_document(p)),
              "a failed command changed the proxy");
        return;
    }
    CHECK(fo_proxy_count(p) == count + 1 && fo_proxy_queue_len(p) == queued + 1,
          "a command did not add one to the count and the queue");
    const fo_value *doc = fo_proxy_document(p);
    if (cmd.action == FO_CREATE) {
        const fo_map *t = walk(doc, seg, n);
        const fo_value *item = t && out.created_id ? fo_map_get(t, out.created_id) : NULL;
        fo_value empty;
        bool ok = true;
        empty = fo_value_map(&w->tmp, 0, &ok);
        CHECK(item && fo_value_eq(item, props ? props : &empty), "a create left no such item");
    } else if (cmd.action == FO_UPDATE) {
        const fo_map *t = walk(doc, seg, n);
        CHECK(t, "an update's target is gone");
        for (i = 0; props && i < fo_map_len(props->h.as.map); i++) {
            const fo_entry *e = &fo_map_entries(props->h.as.map)[i];
            const fo_value *v = e->key ? fo_map_get(t, e->key) : NULL;
            CHECK(!e->key || (v && fo_value_eq(v, &e->value)), "an update did not merge");
        }
    } else {
        const fo_map *t = walk(doc, seg, n - 1);
        CHECK(t && !fo_map_get(t, seg[n - 1]), "a delete left its key");
    }
}

static void op_begin(world *w, peer *pe, rd *r)
{
    uint32_t max = next(r) % 5, q = fo_proxy_queue_len(pe->p);
    fo_batch again;

    (void)w;
    CHECK(fo_proxy_begin_flush_max(pe->p, max, &pe->flight) == 0, "begin_flush failed");
    CHECK(pe->flight.from == fo_proxy_committed_count(pe->p), "a flush not from committed");
    CHECK(pe->flight.len == (max && q > max ? max : q) && fo_proxy_queue_len(pe->p) == q - pe->flight.len,
          "begin_flush_max took the wrong number of commands");
    CHECK(fo_proxy_begin_flush(pe->p, &again) == FO_ESTATE, "a second begin_flush");
    pe->st = P_BEGUN;
}

static void op_deliver(world *w, peer *pe, rd *r)
{
    fo_msg dec;
    fo_err_info err;
    fo_sync *s;
    bool changed;
    uint8_t b = next(r);

    CHECK(fo_wire_decode(fo_buf_data(&pe->ack), pe->ack.len, roomy(), &w->tmp, &dec, &err) == 0,
          "an ack does not decode");
    s = &dec.result.sync;
    if ((b & 1) && s->kind == FO_SYNC_PARTIAL) {
        fo_sync bad = *s;
        bad.diff.from++;
        CHECK(fo_proxy_end_flush(pe->p, &bad, &changed) == FO_EGAP && changed,
              "a diff from the wrong count was not FO_EGAP");
        CHECK(fo_proxy_flushing(pe->p), "FO_EGAP ended the flush");
    }
    CHECK(fo_proxy_end_flush(pe->p, (s->kind == FO_SYNC_NONE && (b & 2)) ? NULL : s,
                             &changed) == 0,
          "end_flush of a real ack failed");
    CHECK(changed == (s->kind != FO_SYNC_NONE), "ids_changed is wrong");
    CHECK(fo_proxy_end_flush(pe->p, NULL, NULL) == FO_ESTATE, "a second end_flush");
    CHECK(fo_proxy_committed_count(pe->p) == pe->ack_count, "the ack left the wrong count");
    if (master_count(w) == pe->ack_count)
        CHECK(doc_eq_master(w, fo_proxy_committed_document(pe->p)),
              "after its ack, a proxy's committed document is not the master's");
    fo_buf_destroy(&pe->ack);
    pe->st = P_IDLE;
}

static void op_cancel(peer *pe)
{
    uint32_t q = fo_proxy_queue_len(pe->p);
    uint64_t count = fo_proxy_count(pe->p);

    CHECK(fo_proxy_cancel_flush(pe->p) == 0, "cancel_flush failed");
    CHECK(fo_proxy_queue_len(pe->p) == q + pe->flight.len && fo_proxy_count(pe->p) == count,
          "cancel_flush lost commands");
    CHECK(fo_proxy_cancel_flush(pe->p) == FO_ESTATE, "a second cancel_flush");
    pe->st = P_IDLE;
}

/* Pushes history [committed, +k) as a wire frame; bit 0x80: the history as spliced parts;
 * bit 0x40: first a push from the wrong count. */
static void op_push(world *w, peer *pe, uint8_t b)
{
    uint64_t c = fo_proxy_committed_count(pe->p), end = w->start.command_count + w->hist_len;
    uint64_t k = (uint64_t)(b & 15) + 1, count = fo_proxy_count(pe->p);
    fo_msg msg, dec;
    fo_err_info err;
    fo_buf buf;
    bool changed;
    fo_batch want;

    CHECK(c >= w->start.command_count && c <= end, "a committed count outside the history");
    if (k > end - c)
        k = end - c;
    want = (fo_batch){c, (uint32_t)k, &w->hist[c - w->start.command_count]};
    memset(&msg, 0, sizeof(msg));
    msg.type = FO_MSG_PUSH;
    msg.model = "doc";
    msg.batch = want;
    if ((b & 0x80) && k) {
        msg.batch.items = NULL;
        msg.ext_parts = hist_parts(w, c, c + k, &msg.n_ext_parts);
    }
    fo_buf_init(&buf, 0);
    CHECK(fo_wire_encode(&msg, &buf) == 0, "encoding a push failed");
    CHECK(fo_wire_decode(fo_buf_data(&buf), buf.len, roomy(), &w->tmp, &dec, &err) == 0 &&
              dec.type == FO_MSG_PUSH && wc_batch_eq(&want, &dec.batch),
          "a push changed in a wire round trip");
    fo_buf_destroy(&buf);
    if (b & 0x40) {
        fo_batch bad = dec.batch;
        bad.from = c + 1 + (b & 1);
        CHECK(fo_proxy_apply_push(pe->p, &bad, &changed) == FO_EGAP,
              "a push from the wrong count was not FO_EGAP");
        CHECK(fo_proxy_count(pe->p) == count, "a refused push changed the proxy");
    }
    CHECK(fo_proxy_apply_push(pe->p, &dec.batch, &changed) == 0, "a push of history failed");
    CHECK(fo_proxy_committed_count(pe->p) == c + k, "a push left the wrong committed count");
    if (c + k == master_count(w))
        CHECK(doc_eq_master(w, fo_proxy_committed_document(pe->p)),
              "pushed up to date, a proxy differs from the master");
    if (fo_proxy_queue_len(pe->p) == 0)
        CHECK(fo_value_eq(fo_proxy_document(pe->p), fo_proxy_committed_document(pe->p)),
              "with nothing queued, the document is not the committed one");
}

/* The master's snapshot as a `snap` frame, decoded into w->tmp. */
static fo_snapshot snap_frame(world *w)
{
    fo_msg msg, dec;
    fo_err_info err;
    fo_buf buf;

    memset(&msg, 0, sizeof(msg));
    msg.type = FO_MSG_SNAP;
    msg.model = "doc";
    msg.snapshot = fo_master_snapshot(w->m);
    fo_buf_init(&buf, 0);
    CHECK(fo_wire_encode(&msg, &buf) == 0, "encoding a snap failed");
    CHECK(fo_wire_decode(fo_buf_data(&buf), buf.len, roomy(), &w->tmp, &dec, &err) == 0 &&
              wc_snapshot_eq(&msg.snapshot, &dec.snapshot),
          "a snapshot changed in a wire round trip");
    fo_buf_destroy(&buf);
    return dec.snapshot;
}

static void op_reset(world *w, peer *pe)
{
    fo_snapshot s = snap_frame(w);

    CHECK(fo_proxy_reset(pe->p, &s) == 0, "reset failed");
    CHECK(fo_proxy_committed_count(pe->p) == s.command_count &&
              doc_eq_master(w, fo_proxy_committed_document(pe->p)),
          "a reset proxy's committed state is not the snapshot");
}

/* A full flush: begin, master, ack. */
static void flush(world *w, peer *pe, rd *r)
{
    if (pe->st == P_IDLE)
        op_begin(w, pe, r);
    if (pe->st == P_BEGUN)
        master_apply(w, pe);
    if (w->dead)
        return;
    op_deliver(w, pe, r);
}

/* Every proxy flushes everything, then catches up (push or empty flush): all equal. */
static void quiesce(world *w, rd *r)
{
    int i;

    for (i = 0; i < w->np && !w->dead; i++) {
        peer *pe = &w->peers[i];
        if (pe->st != P_IDLE)
            flush(w, pe, r);
        while (!w->dead && fo_proxy_queue_len(pe->p))
            flush(w, pe, r);
    }
    for (i = 0; i < w->np && !w->dead; i++) {
        peer *pe = &w->peers[i];
        uint64_t c = fo_proxy_committed_count(pe->p);
        if (next(r) & 1) {
            while (c < master_count(w)) {
                op_push(w, pe, 15);
                c = fo_proxy_committed_count(pe->p);
            }
        } else {
            flush(w, pe, r);
        }
    }
    for (i = 0; i < w->np && !w->dead; i++) {
        const fo_proxy *p = w->peers[i].p;
        check_peer(&w->peers[i]);
        CHECK(fo_proxy_committed_count(p) == master_count(w) &&
                  fo_proxy_count(p) == master_count(w),
              "after a full sync, a proxy's count is not the master's");
        CHECK(doc_eq_master(w, fo_proxy_committed_document(p)) &&
                  doc_eq_master(w, fo_proxy_document(p)),
              "after a full sync, a proxy's document is not the master's");
    }
}

/* ---- final checks -------------------------------------------------------------------- */

static void final_checks(world *w)
{
    fo_master_config cfg = {FO_IDS_SEQUENTIAL, {NULL, NULL}, NULL, NULL, false};
    fo_proxy_config pc = {FO_IDS_SEQUENTIAL, {NULL, NULL}};
    fo_master *re = fo_master_new(&w->start, &cfg);
    fo_proxy *shadow = fo_proxy_new(&w->start, &pc), *fresh;
    fo_doc_limits lim = {w->master_depth};
    fo_batch all = {w->start.command_count, w->hist_len, w->hist};
    fo_snapshot s, back;
    fo_err_info err;
    fo_buf buf;
    bool changed;

    CHECK(re && shadow, "out of memory");
    fo_doc_set_limits(fo_master_doc(re), &lim);
    for (uint32_t i = 0; i < w->nbatches; i++) {
        const hbatch *h = &w->batches[i];
        fo_batch b = {h->from, h->len, &w->hist[h->from - w->start.command_count]};
        fo_apply_result res;
        fo_arena_reset(&w->res);
        CHECK(fo_master_apply(re, &b, NULL, &w->res, &res) == 0 &&
                  res.sync.kind == FO_SYNC_NONE && res.errors_len == 0,
              "replaying an applied batch did not apply it as it was");
    }
    CHECK(fo_master_snapshot(re).command_count == master_count(w) &&
              doc_eq_master(w, fo_master_snapshot(re).document),
          "replaying the history does not give the master's document");
    fo_master_free(re);

    CHECK(fo_proxy_apply_push(shadow, &all, &changed) == 0, "pushing the whole history failed");
    CHECK(fo_proxy_committed_count(shadow) == master_count(w) &&
              doc_eq_master(w, fo_proxy_document(shadow)),
          "the start snapshot plus the whole history is not the master's document");
    s = snap_frame(w);
    CHECK((fresh = fo_proxy_new(&s, &pc)), "out of memory");
    CHECK(fo_value_eq(fo_proxy_document(fresh), fo_proxy_document(shadow)),
          "a proxy from a full snapshot differs from one synced by diff");
    fo_proxy_free(fresh);
    fo_proxy_free(shadow);

    s = fo_master_snapshot(w->m);
    fo_buf_init(&buf, 0);
    CHECK(fo_json_write_snapshot(&s, FO_JSON_COMPACT, &buf) == 0, "JSON export of a snapshot");
    CHECK(fo_json_read_snapshot(fo_buf_data(&buf), buf.len, &w->tmp, &back, &err) == 0 &&
              wc_snapshot_eq(&s, &back),
          "a snapshot changed in a JSON round trip");
    fo_buf_destroy(&buf);
}

static void op_compact(world *w)
{
    fo_doc *d = fo_master_doc(w->m), *copy = fo_doc_clone(d);

    CHECK(copy, "out of memory");
    CHECK(fo_doc_compact(d) == 0, "compaction failed");
    CHECK(fo_doc_count(d) == fo_doc_count(copy) && fo_value_eq(fo_doc_root(d), fo_doc_root(copy)),
          "compaction changed the document");
    fo_doc_free(copy);
}

/* ---- the program --------------------------------------------------------------------- */

static void setup(world *w, rd *r)
{
    static const uint64_t windows[4] = {UINT64_MAX, 4, 16, 0};
    uint8_t b0 = next(r), b1 = next(r), b2 = next(r);
    fo_master_config mc = {(b0 & 2) ? FO_IDS_RANDOM : FO_IDS_SEQUENTIAL, {NULL, NULL},
                           history, w, (b0 & 4) != 0};
    fo_proxy_config pc = {FO_IDS_SEQUENTIAL, {NULL, NULL}};
    fo_doc_limits lim;
    fo_value *doc;

    fo_arena_init(&w->start_arena, 0);
    fo_arena_init(&w->hist_arena, 0);
    fo_arena_init(&w->res, 0);
    fo_arena_init(&w->tmp, 0);
    w->np = 2 + (b0 & 1);
    w->by_ref = (b0 & 4) != 0;
    w->icpt_mode = (b0 >> 3) & 3;
    w->keep_pd = (b0 & 0x20) != 0;
    w->window = windows[b0 >> 6];
    w->master_depth = (b1 & 1) ? 8 : PROXY_DEPTH;
    w->icpt_may_fail = (b1 & 2) != 0;
    w->seed = b1 >> 2;
    mc.interceptor = (fo_interceptor){interceptor, w}; /* intent() at least */
    CHECK((w->k_tag = fo_key_new_cstr(&w->start_arena, "tag")) &&
              (w->k_for = fo_key_new_cstr(&w->start_arena, "for")),
          "out of memory");
    CHECK((doc = fo_arena_alloc(&w->start_arena, sizeof(*doc))), "out of memory");
    if (b2) {
        gen_map(r, 4, &w->start_arena, 3, doc);
    } else {
        bool ok = true;
        *doc = fo_value_map(&w->start_arena, 0, &ok);
        CHECK(ok, "out of memory");
    }
    w->start = (fo_snapshot){(uint64_t)b2 * 5, doc};
    CHECK((w->m = fo_master_new(&w->start, &mc)), "out of memory");
    if (b0 & 2)
        fo_doc_seed(fo_master_doc(w->m), b1);
    lim.max_depth = w->master_depth;
    fo_doc_set_limits(fo_master_doc(w->m), &lim);
    for (int i = 0; i < w->np; i++)
        CHECK((w->peers[i].p = fo_proxy_new(&w->start, &pc)), "out of memory");
}

static void teardown(world *w)
{
    for (int i = 0; i < w->np; i++) {
        fo_proxy_free(w->peers[i].p);
        fo_buf_destroy(&w->peers[i].ack);
    }
    for (uint32_t i = 0; i < w->nbatches; i++)
        free(w->batches[i].bytes);
    fo_master_free(w->m);
    fo_arena_destroy(&w->start_arena);
    fo_arena_destroy(&w->hist_arena);
    fo_arena_destroy(&w->res);
    fo_arena_destroy(&w->tmp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static world w; /* large (the history), zeroed for every input below */
    rd r = {data, size, 0};
    int ops = 0;

    memset(&w, 0, sizeof(w));
    setup(&w, &r);
    while (r.at < r.n && ops++ < MAX_OPS && !w.dead) {
        uint8_t op = next(&r);
        peer *pe = &w.peers[(op >> 4) % w.np];

        fo_arena_reset(&w.tmp);
        switch (op & 15) {
        case 0: case 1: case 2: case 3: case 4: op_apply(&w, pe, &r); break;
        case 5:
            if (pe->st == P_IDLE)
                op_begin(&w, pe, &r);
            break;
        case 6:
            if (pe->st == P_BEGUN)
                master_apply(&w, pe);
            break;
        case 7:
            if (pe->st == P_SENT)
                op_deliver(&w, pe, &r);
            break;
        case 8: flush(&w, pe, &r); break;
        case 9:
            if (pe->st == P_BEGUN)
                op_cancel(pe);
            break;
        case 10:
        case 11:
            if (pe->st == P_IDLE)
                op_push(&w, pe, next(&r));
            else
                CHECK(fo_proxy_apply_push(pe->p, &pe->flight, NULL) == FO_ESTATE,
                      "a push during a flush was not FO_ESTATE");
            break;
        case 12:
            if (pe->st == P_IDLE)
                op_reset(&w, pe);
            else
                CHECK(fo_proxy_reset(pe->p, &w.start) == FO_ESTATE,
                      "a reset during a flush was not FO_ESTATE");
            break;
        case 13: op_compact(&w); break;
        default: quiesce(&w, &r); break;
        }
        if (!w.dead)
            for (int i = 0; i < w.np; i++)
                check_peer(&w.peers[i]);
    }
    if (!w.dead) {
        fo_arena_reset(&w.tmp);
        quiesce(&w, &r);
    }
    if (!w.dead)
        final_checks(&w);
    teardown(&w);
    return 0;
}
