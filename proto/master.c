#include "proto/master.h"

#include <stdlib.h>
#include <string.h>

#include "proto/error.h"

struct fo_master {
    fo_doc *doc;
    fo_master_config cfg;
};

fo_master *fo_master_new(const fo_snapshot *s, const fo_master_config *cfg)
{
    fo_master *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    if (cfg)
        m->cfg = *cfg;
    m->doc = s ? fo_doc_new_from(s, m->cfg.ids) : fo_doc_new(m->cfg.ids);
    if (!m->doc) {
        free(m);
        return NULL;
    }
    return m;
}

void fo_master_free(fo_master *m)
{
    if (!m)
        return;
    fo_doc_free(m->doc);
    free(m);
}

fo_doc *fo_master_doc(fo_master *m)
{
    return m->doc;
}

fo_snapshot fo_master_snapshot(const fo_master *m)
{
    return fo_doc_snapshot(m->doc);
}

int fo_master_apply(fo_master *m, const fo_batch *b, void *context, fo_arena *arena,
                    fo_apply_result *out)
{
    uint64_t start;
    fo_pathmap pm;
    fo_batch_outcome o;
    int rc;

    memset(out, 0, sizeof(*out));
    /* The previous result may borrow the document (a full sync's `latest`): compact only
     * here, before this apply, when the caller is done with it. */
    if ((rc = fo_doc_maybe_compact(m->doc)) != 0)
        return rc;
    start = fo_doc_count(m->doc);
    fo_pathmap_init(&pm, arena);
    rc = fo_batch_apply(m->doc, b->items, b->len, &pm, &m->cfg.interceptor, context, arena, &o);
    if (rc)
        return rc;
    out->applied.from = start;
    if (o.changed) {
        out->applied.len = o.rebuilt.len;
        out->applied.items = o.rebuilt.items;
        out->errors_len = o.errors_len;
        out->errors = o.errors;
    } else {
        out->applied.len = b->len;
        out->applied.items = b->items;
    }
    if (b->from == start && !o.changed)
        return 0;

    out->sync.has_mapped = true;
    out->sync.mapped = pm.items;
    out->sync.mapped_len = pm.len;
    if (b->from != start) {
        fo_batch hist = {0, 0, NULL};
        bool by_ref = m->cfg.history_by_ref;
        bool covered = b->from < start && m->cfg.history &&
                       m->cfg.history(m->cfg.history_ctx, b->from, start, by_ref ? NULL : arena,
                                      &hist) == 0 &&
                       hist.len == start - b->from;
        fo_completion *all;

        if (!covered) {
            out->sync.kind = FO_SYNC_FULL;
            out->sync.latest = fo_doc_snapshot(m->doc);
            return 0;
        }
        if (by_ref) {
            out->sync.kind = FO_SYNC_PARTIAL;
            out->sync.diff.from = b->from;
            out->sync.diff.len = hist.len + out->applied.len;
            out->sync.diff.items = out->applied.items;
            out->sync.external = hist.len;
            return 0;
        }
        if (!(all = fo_arena_alloc(arena, ((size_t)hist.len + out->applied.len + 1) *
                                              sizeof(fo_completion))))
            return FO_ENOMEM;
        if (hist.len)
            memcpy(all, hist.items, hist.len * sizeof(fo_completion));
        if (out->applied.len)
            memcpy(all + hist.len, out->applied.items,
                   out->applied.len * sizeof(fo_completion));
        out->sync.kind = FO_SYNC_PARTIAL;
        out->sync.diff.from = b->from;
        out->sync.diff.len = hist.len + out->applied.len;
        out->sync.diff.items = all;
        return 0;
    }
    out->sync.kind = FO_SYNC_PARTIAL;
    out->sync.diff.from = b->from;
    out->sync.diff.len = out->applied.len;
    out->sync.diff.items = out->applied.items;
    return 0;
}
