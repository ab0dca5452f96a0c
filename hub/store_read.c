/* store_read.c - the read jobs of store.h put together from a backend's primitives (on the
 * worker thread, inside read_begin/read_end): where a load starts (the newest snapshot and
 * the log row covering the history asked for), contiguity, and `gone` when history no
 * longer reaches. The same rules for every backend. */
#include "hub/store_backend.h"

/* The model's count: end of its last log row, or its newest snapshot's count. */
static int model_count(const fo_store_read_req *q, uint64_t *count, bool *exists)
{
    fo_store_span last;
    bool has_last, has_snap;
    uint64_t snap_count = 0;
    int rc;

    rc = q->be->log_last(q->impl, q->model, &has_last, &last, q->msg, q->msglen);
    if (!rc)
        rc = q->be->snapshot_le(q->impl, q->model, UINT64_MAX, NULL, &has_snap, &snap_count, q->msg,
                                q->msglen);
    if (rc)
        return rc;
    *count = has_last && last.from + last.len > snap_count ? last.from + last.len : snap_count;
    *exists = has_last || has_snap;
    return 0;
}

static int do_load(const fo_store_read_req *q, fo_store_result *r)
{
    const fo_store_backend *be = q->be;
    fo_store_span cov;
    bool has_cov, has_snap;
    uint64_t base = 0, lo, start, expect;
    uint32_t i;
    int rc;

    rc = be->snapshot_le(q->impl, q->model, UINT64_MAX, r, &has_snap, &base, q->msg, q->msglen);
    if (rc)
        return rc;
    lo = q->a < base ? q->a : base;
    rc = be->log_cover(q->impl, q->model, lo, &has_cov, &cov, q->msg, q->msglen);
    if (rc)
        return rc;
    start = has_cov && cov.from + cov.len > lo ? cov.from : lo;
    if ((rc = be->log_scan(q->impl, q->model, start, UINT64_MAX, r, q->msg, q->msglen)) ||
        (rc = be->clients(q->impl, q->model, r, q->msg, q->msglen)))
        return rc;
    for (i = 0; i < r->n_entries && r->entries[i].from < base; i++)
        ;
    r->n_before = i;
    expect = r->n_entries ? r->entries[0].from : base;
    for (i = 0; i < r->n_entries; i++) {
        const fo_store_entry *e = &r->entries[i];
        if (e->from != expect || (i == r->n_before && e->from != base) ||
            (i < r->n_before && e->from + e->len > base))
            return fo_store_fail(FO_STORE_ECORRUPT, q->msg, q->msglen,
                                 "load %s: log row [%llu, +%u) does not fit the log (expected "
                                 "%llu, snapshot at %llu)",
                                 q->model, (unsigned long long)e->from, e->len,
                                 (unsigned long long)expect, (unsigned long long)base);
        expect = e->from + e->len;
    }
    if (!has_snap && r->n_entries && r->entries[0].from != 0)
        return fo_store_fail(FO_STORE_ECORRUPT, q->msg, q->msglen,
                             "load %s: log starts at %llu and there is no snapshot", q->model,
                             (unsigned long long)r->entries[0].from);
    r->count = r->n_entries > r->n_before ? expect : base;
    r->exists = has_snap || r->n_entries > 0 || r->n_clients > 0;
    return 0;
}

static void drop_rows(fo_store_result *r)
{
    r->n_entries = 0;
    r->n_before = 0;
    r->has_snapshot = false;
    r->snap = NULL;
    r->snap_size = 0;
    r->snap_count = 0;
}

static int do_read_log(const fo_store_read_req *q, fo_store_result *r)
{
    uint64_t from = q->a, to = q->b, start, expect;
    fo_store_span cov;
    bool has_cov;
    int rc;

    if ((rc = model_count(q, &r->count, &r->exists)))
        return rc;
    if (to <= from || from >= r->count)
        return 0;
    rc = q->be->log_cover(q->impl, q->model, from, &has_cov, &cov, q->msg, q->msglen);
    if (rc)
        return rc;
    start = has_cov && cov.from + cov.len > from ? cov.from : from;
    if ((rc = q->be->log_scan(q->impl, q->model, start, to, r, q->msg, q->msglen)))
        return rc;
    if (r->n_entries == 0 || r->entries[0].from > from) {
        r->gone = true;
    } else {
        expect = r->entries[0].from;
        for (uint32_t i = 0; i < r->n_entries && !r->gone; i++) {
            r->gone = r->entries[i].from != expect;
            expect = r->entries[i].from + r->entries[i].len;
        }
    }
    if (r->gone)
        drop_rows(r);
    return 0;
}

static int do_read_at(const fo_store_read_req *q, fo_store_result *r)
{
    uint64_t base = 0, target, expect;
    bool has_snap;
    int rc;

    if ((rc = model_count(q, &r->count, &r->exists)))
        return rc;
    target = q->a < r->count ? q->a : r->count;
    rc = q->be->snapshot_le(q->impl, q->model, target, r, &has_snap, &base, q->msg, q->msglen);
    if (rc)
        return rc;
    if (target > base &&
        (rc = q->be->log_scan(q->impl, q->model, base, target, r, q->msg, q->msglen)))
        return rc;
    expect = base;
    for (uint32_t i = 0; i < r->n_entries && !r->gone; i++) {
        r->gone = r->entries[i].from != expect;
        expect = r->entries[i].from + r->entries[i].len;
    }
    if (expect < target)
        r->gone = true;
    if (r->gone)
        drop_rows(r);
    return 0;
}

static int do_read_audit(const fo_store_read_req *q, fo_store_result *r)
{
    return q->be->rules_scan(q->impl, q->model, q->a, (uint32_t)q->b, r, q->msg, q->msglen);
}

static int do_read_replay(const fo_store_read_req *q, fo_store_result *r)
{
    uint64_t base, expect, snap = 0;
    bool has_snap;
    int rc;

    if ((rc = model_count(q, &r->count, &r->exists)) ||
        (rc = q->be->log_scan(q->impl, q->model, 0, UINT64_MAX, r, q->msg, q->msglen)))
        return rc;
    base = r->n_entries ? r->entries[0].from : r->count;
    if (base > 0) {
        rc = q->be->snapshot_le(q->impl, q->model, base, r, &has_snap, &snap, q->msg, q->msglen);
        if (rc)
            return rc;
        if (!has_snap || snap != base)
            return fo_store_fail(FO_STORE_ECORRUPT, q->msg, q->msglen,
                                 "replay %s: the stored log starts at %llu, where no snapshot "
                                 "is kept",
                                 q->model, (unsigned long long)base);
    }
    expect = base;
    for (uint32_t i = 0; i < r->n_entries; i++) {
        if (r->entries[i].from != expect)
            return fo_store_fail(FO_STORE_ECORRUPT, q->msg, q->msglen,
                                 "replay %s: log row at %llu does not continue %llu", q->model,
                                 (unsigned long long)r->entries[i].from,
                                 (unsigned long long)expect);
        expect = r->entries[i].from + r->entries[i].len;
    }
    return q->be->rules_scan(q->impl, q->model, base, 0, r, q->msg, q->msglen);
}

int fo_store_read_run(const fo_store_read_req *q, fo_store_result *r)
{
    switch (q->kind) {
    case FO_STORE_READ_LOAD: return do_load(q, r);
    case FO_STORE_READ_LOG: return do_read_log(q, r);
    case FO_STORE_READ_AT: return do_read_at(q, r);
    case FO_STORE_READ_AUDIT: return do_read_audit(q, r);
    case FO_STORE_READ_REPLAY: return do_read_replay(q, r);
    }
    return FO_EINVAL;
}
