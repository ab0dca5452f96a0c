#include "proto/batch.h"

#include <string.h>

#include "proto/error.h"

static const char replace_delete_msg[] = "Interceptor replaced the props of a delete";

/* Copies a key the document returned (interned keys die with the document's arena). */
static fo_key key_to_arena(fo_arena *a, fo_key k)
{
    char buf[20];
    size_t len;
    const char *s;

    if (fo_key_is_num(k, NULL))
        return k;
    s = fo_key_str(k, buf, &len);
    return fo_key_new(a, s, len);
}

/* The rebuilt batch starts as a copy of the completions before the first change. */
static int start_rebuild(fo_batch_outcome *out, const fo_completion *items, uint32_t n,
                         uint32_t idx, fo_arena *a, fo_completion **rebuilt)
{
    if (out->changed)
        return 0;
    out->changed = true;
    if (!(*rebuilt = fo_arena_alloc(a, (size_t)(n ? n : 1) * sizeof(fo_completion))))
        return FO_ENOMEM;
    if (idx)
        memcpy(*rebuilt, items, idx * sizeof(fo_completion));
    out->rebuilt.len = idx;
    out->rebuilt.items = *rebuilt;
    return 0;
}

int fo_batch_apply(fo_doc *d, const fo_completion *items, uint32_t n, fo_pathmap *pm,
                   const fo_interceptor *ic, void *context, fo_arena *arena,
                   fo_batch_outcome *out)
{
    fo_completion *rebuilt = NULL;
    uint32_t idx;
    int rc;

    memset(out, 0, sizeof(*out));
    out->rebuilt.from = fo_doc_count(d);
    for (idx = 0; idx < n; idx++) {
        const fo_completion *c = &items[idx];
        fo_command cmd = c->command;
        fo_interception icp = {FO_INTERCEPT_ACCEPT, NULL, NULL, c->created_id, false};
        fo_doc_result res = {false, FO_KEY_NONE, NULL};
        fo_path mapped;
        bool modified;

        if ((rc = fo_pathmap_get(pm, cmd.path, &mapped)) < 0)
            return rc;
        if (rc == 1)
            cmd.path = mapped;
        modified = rc == 1;
        if (ic && ic->fn) {
            if ((rc = ic->fn(ic->data, fo_doc_root(d), &cmd, context, arena, &icp)) != 0)
                return rc;
            modified = modified || icp.kind != FO_INTERCEPT_ACCEPT;
        }
        if (icp.kind == FO_INTERCEPT_REPLACE && cmd.action != FO_DELETE) {
            /* The rewritten command keeps only action, path and the new props (and, when
             * the interceptor asks, its parentDefault). */
            fo_command rw = {cmd.action, cmd.path, icp.new_props,
                             icp.keep_parent_default ? cmd.parent_default : NULL};
            cmd = rw;
        }
        if (icp.kind == FO_INTERCEPT_ACCEPT ||
            (icp.kind == FO_INTERCEPT_REPLACE && cmd.action != FO_DELETE)) {
            if ((rc = fo_doc_apply(d, &cmd, c->created_id, arena, &res)) != 0)
                return rc;
        } else {
            res.ok = false;
            res.error = icp.kind == FO_INTERCEPT_REJECT && icp.rejection ? icp.rejection
                                                                         : replace_delete_msg;
        }
        if (res.ok) {
            fo_completion done = {cmd, FO_KEY_NONE};

            if (res.created_id) {
                if (!(done.created_id = key_to_arena(arena, res.created_id)))
                    return FO_ENOMEM;
                if (c->created_id && !fo_key_eq(res.created_id, c->created_id)) {
                    fo_key *from = fo_arena_alloc(arena, (cmd.path.len + 1) * sizeof(fo_key));
                    fo_key *to = fo_arena_alloc(arena, (cmd.path.len + 1) * sizeof(fo_key));
                    fo_path pf = {from, cmd.path.len + 1}, pt = {to, cmd.path.len + 1};

                    if (!from || !to)
                        return FO_ENOMEM;
                    if (cmd.path.len) {
                        memcpy(from, cmd.path.seg, cmd.path.len * sizeof(fo_key));
                        memcpy(to, cmd.path.seg, cmd.path.len * sizeof(fo_key));
                    }
                    from[cmd.path.len] = c->created_id;
                    to[cmd.path.len] = done.created_id;
                    if (fo_pathmap_put(pm, pf, pt))
                        return FO_ENOMEM;
                    modified = true;
                }
            }
            if (out->changed || modified) {
                if ((rc = start_rebuild(out, items, n, idx, arena, &rebuilt)) != 0)
                    return rc;
                rebuilt[out->rebuilt.len++] = done;
            }
        } else {
            fo_completion_error *e;

            if ((rc = start_rebuild(out, items, n, idx, arena, &rebuilt)) != 0)
                return rc;
            if (!out->errors && !(out->errors = fo_arena_alloc(arena, n * sizeof(*e))))
                return FO_ENOMEM;
            e = &out->errors[out->errors_len++];
            e->action = c->command.action;
            e->path = cmd.path;
            e->message = res.error;
        }
    }
    return 0;
}
