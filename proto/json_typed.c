/* json_typed.c - JSON for Flushout's typed structs (commands, batches, snapshots, syncs,
 * apply results), both ways; json.c does the text and the values (see json.h).
 *
 * Export wraps a struct into a small fo_value tree in a scratch arena (documents and props
 * are borrowed, not copied) and hands it to fo_json_write_value, so key order, sorting and
 * indentation are handled in one place. Import reads the fields of an imported value,
 * naming the offending field in errors as the wire codec does. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "proto/arena.h"
#include "proto/json.h"
#include "proto/value.h"


/* ---- typed structs as values, for export ---------------------------------------------- */

typedef struct builder {
    fo_arena *a;
    int rc;
} builder;

static fo_value b_map(builder *b, uint32_t cap)
{
    bool ok = true;
    fo_value v = fo_value_map(b->a, cap, &ok);

    if (!ok && !b->rc)
        b->rc = FO_ENOMEM;
    return v;
}

static void b_put(builder *b, fo_value *obj, const char *name, fo_value v)
{
    fo_key k;

    if (b->rc)
        return;
    k = fo_key_new_cstr(b->a, name);
    if (!k || fo_map_set(fo_value_as_map(obj), b->a, k, &v, NULL))
        b->rc = FO_ENOMEM;
}

static fo_value b_str(builder *b, const char *s, size_t n)
{
    bool ok = true;
    fo_value v = fo_value_str(b->a, s, n, &ok);

    if (!ok && !b->rc)
        b->rc = FO_ENOMEM;
    return v;
}

static fo_value b_key(builder *b, fo_key k)
{
    char buf[20];
    size_t n;
    const char *s = fo_key_str(k, buf, &n);

    return b_str(b, s, n);
}

static fo_value b_path(builder *b, fo_path p)
{
    bool ok = true;
    fo_value v = fo_value_array(b->a, p.len, &ok);
    uint32_t i;

    if (!ok) {
        b->rc = b->rc ? b->rc : FO_ENOMEM;
        return v;
    }
    for (i = 0; i < p.len; i++)
        v.h.as.items[i] = b_key(b, p.seg[i]);
    return v;
}

static fo_value b_action(builder *b, fo_action a)
{
    const char *s = fo_action_name(a);

    if (a != FO_CREATE && a != FO_UPDATE && a != FO_DELETE) {
        b->rc = b->rc ? b->rc : FO_EINVAL;
        return fo_value_null();
    }
    return fo_value_str_static(s, strlen(s));
}

static fo_value b_command(builder *b, const fo_command *c)
{
    fo_value o = b_map(b, 4);

    b_put(b, &o, "action", b_action(b, c->action));
    if (c->path.len) /* absent means empty, as on the wire */
        b_put(b, &o, "path", b_path(b, c->path));
    if (c->props)
        b_put(b, &o, "props", *c->props);
    if (c->parent_default)
        b_put(b, &o, "parentDefault", *c->parent_default);
    return o;
}

static fo_value b_batch(builder *b, const fo_batch *batch)
{
    fo_value o = b_map(b, 2);
    bool ok = true;
    fo_value list = fo_value_array(b->a, batch->len, &ok);
    uint32_t i;

    if (!ok) {
        b->rc = b->rc ? b->rc : FO_ENOMEM;
        return o;
    }
    for (i = 0; i < batch->len && !b->rc; i++) {
        const fo_completion *c = &batch->items[i];
        fo_value item = b_map(b, 2);

        b_put(b, &item, "command", b_command(b, &c->command));
        if (c->created_id)
            b_put(b, &item, "createdId", b_key(b, c->created_id));
        list.h.as.items[i] = item;
    }
    b_put(b, &o, "from", fo_value_uint(batch->from));
    b_put(b, &o, "completions", list);
    return o;
}

static fo_value b_snapshot(builder *b, const fo_snapshot *s)
{
    fo_value o = b_map(b, 2);

    if (!s->document || fo_value_type(s->document) != FO_MAP) {
        b->rc = b->rc ? b->rc : FO_EINVAL;
        return o;
    }
    b_put(b, &o, "commandCount", fo_value_uint(s->command_count));
    b_put(b, &o, "document", *s->document);
    return o;
}

static fo_value b_sync(builder *b, const fo_sync *s)
{
    fo_value o = b_map(b, 3), mapped;
    uint32_t i;

    b_put(b, &o, "isPartial", fo_value_bool(s->kind == FO_SYNC_PARTIAL));
    if (s->kind == FO_SYNC_PARTIAL)
        b_put(b, &o, "diff", b_batch(b, &s->diff));
    else
        b_put(b, &o, "latest", b_snapshot(b, &s->latest));
    if (!s->has_mapped)
        return o;
    mapped = b_map(b, s->mapped_len);
    for (i = 0; i < s->mapped_len && !b->rc; i++) {
        size_t len;
        char *from = fo_path_join(b->a, s->mapped[i].from, &len);
        fo_key k = from ? fo_key_new(b->a, from, len) : FO_KEY_NONE;
        fo_value to = b_path(b, s->mapped[i].to);

        if (!k || (!b->rc && fo_map_set(fo_value_as_map(&mapped), b->a, k, &to, NULL)))
            b->rc = b->rc ? b->rc : FO_ENOMEM;
    }
    b_put(b, &o, "mappedPaths", mapped);
    return o;
}

static fo_value b_result(builder *b, const fo_apply_result *r)
{
    fo_value o = b_map(b, 3);
    uint32_t i;

    b_put(b, &o, "applied", b_batch(b, &r->applied));
    if (r->sync.kind != FO_SYNC_NONE)
        b_put(b, &o, "sync", b_sync(b, &r->sync));
    if (r->errors_len) {
        bool ok = true;
        fo_value list = fo_value_array(b->a, r->errors_len, &ok);

        if (!ok) {
            b->rc = b->rc ? b->rc : FO_ENOMEM;
            return o;
        }
        for (i = 0; i < r->errors_len && !b->rc; i++) {
            const fo_completion_error *e = &r->errors[i];
            fo_value item = b_map(b, 3);
            const char *msg = e->message ? e->message : "";

            b_put(b, &item, "action", b_action(b, e->action));
            b_put(b, &item, "path", b_path(b, e->path));
            b_put(b, &item, "errorMessage", b_str(b, msg, strlen(msg)));
            list.h.as.items[i] = item;
        }
        b_put(b, &o, "errors", list);
    }
    return o;
}

enum { K_SNAPSHOT, K_BATCH, K_RESULT, K_COMMAND };

static int write_typed(int kind, const void *p, int flags, fo_buf *out)
{
    fo_arena a;
    builder b;
    fo_value v;
    int rc;

    fo_arena_init(&a, 0);
    b.a = &a;
    b.rc = 0;
    switch (kind) {
    case K_SNAPSHOT: v = b_snapshot(&b, p); break;
    case K_BATCH: v = b_batch(&b, p); break;
    case K_RESULT: v = b_result(&b, p); break;
    default: v = b_command(&b, p); break;
    }
    rc = b.rc ? b.rc : fo_json_write_value(&v, flags, out);
    fo_arena_destroy(&a);
    return rc;
}

int fo_json_write_snapshot(const fo_snapshot *s, int flags, fo_buf *out)
{
    return write_typed(K_SNAPSHOT, s, flags, out);
}

int fo_json_write_batch(const fo_batch *b, int flags, fo_buf *out)
{
    return write_typed(K_BATCH, b, flags, out);
}

int fo_json_write_result(const fo_apply_result *r, int flags, fo_buf *out)
{
    return write_typed(K_RESULT, r, flags, out);
}

static int put_lit(fo_buf *out, const char *s)
{
    return fo_buf_append(out, s, strlen(s));
}

/* Compact output, the common case (e.g. the hub's audit rows), without the scratch tree:
 * the same text as the builder gives, fields in its order. */
static int write_command_compact(const fo_command *c, fo_buf *out)
{
    const char *action = fo_action_name(c->action);
    int rc;

    if (c->action != FO_CREATE && c->action != FO_UPDATE && c->action != FO_DELETE)
        return FO_EINVAL;
    if ((rc = put_lit(out, "{\"action\":\"")) || (rc = put_lit(out, action)) ||
        (rc = put_lit(out, "\"")))
        return rc;
    if (c->path.len) {
        if ((rc = put_lit(out, ",\"path\":[")))
            return rc;
        for (uint32_t i = 0; i < c->path.len; i++) {
            char buf[20];
            size_t n;
            const char *k = fo_key_str(c->path.seg[i], buf, &n);
            if ((i && (rc = put_lit(out, ","))) || (rc = fo_json_write_str(k, n, out)))
                return rc;
        }
        if ((rc = put_lit(out, "]")))
            return rc;
    }
    if (c->props &&
        ((rc = put_lit(out, ",\"props\":")) || (rc = fo_json_write_value(c->props, 0, out))))
        return rc;
    if (c->parent_default && ((rc = put_lit(out, ",\"parentDefault\":")) ||
                              (rc = fo_json_write_value(c->parent_default, 0, out))))
        return rc;
    return put_lit(out, "}");
}

int fo_json_write_command(const fo_command *c, int flags, fo_buf *out)
{
    size_t len0 = out->len;
    int rc;

    if (flags != FO_JSON_COMPACT)
        return write_typed(K_COMMAND, c, flags, out);
    if ((rc = write_command_compact(c, out)))
        out->len = len0;
    return rc;
}

/* ---- import: values to typed structs ------------------------------------------------- */

typedef struct reader {
    fo_arena *a;
    fo_err_info *err;
    size_t plen;
    char path[sizeof(((fo_err_info *)0)->path)];
} reader;

static void r_init(reader *r, fo_arena *a, fo_err_info *err)
{
    r->a = a;
    r->err = err;
    r->plen = 0;
    r->path[0] = '\0';
    fo_err_clear(err);
}

/* Appends `.name` (or `[index]` when name is NULL) to the field path; returns the old
 * length for r_pop. A path too long for the buffer is cut. */
static size_t r_push(reader *r, const char *name, uint32_t index)
{
    size_t old = r->plen, room = sizeof(r->path) - old;
    int n = name ? snprintf(r->path + old, room, "%s%s", old ? "." : "", name)
                 : snprintf(r->path + old, room, "[%" PRIu32 "]", index);

    if (n > 0)
        r->plen = old + ((size_t)n < room ? (size_t)n : room - 1);
    return old;
}

static void r_pop(reader *r, size_t old)
{
    r->plen = old;
    r->path[old] = '\0';
}

static int r_fail(reader *r, const char *msg)
{
    return fo_err_set(r->err, FO_EINVAL, 0, r->path, msg);
}

static int r_nomem(reader *r)
{
    return fo_err_set(r->err, FO_ENOMEM, 0, r->path, "out of memory");
}

/* The field `name` of map `obj`, or NULL; pushes its name onto the field path. */
static const fo_value *r_field(reader *r, const fo_value *obj, const char *name, size_t *old)
{
    fo_key k = fo_key_new_cstr(r->a, name);

    *old = r_push(r, name, 0);
    return k ? fo_map_get(fo_value_as_map(obj), k) : NULL;
}

static bool is_map(const fo_value *v)
{
    return v && fo_value_type(v) == FO_MAP;
}

static int r_uint(reader *r, const fo_value *v, uint64_t *out)
{
    if (!v)
        return r_fail(r, "missing");
    if (fo_value_type(v) == FO_INT && v->h.as.i >= 0)
        *out = (uint64_t)v->h.as.i;
    else if (fo_value_type(v) == FO_UINT)
        *out = v->h.as.u;
    else
        return r_fail(r, "expected unsigned integer");
    return 0;
}

static int r_action(reader *r, const fo_value *v, fo_action *out)
{
    const char *s;
    size_t l;

    if (!v)
        return r_fail(r, "missing");
    if (fo_value_type(v) != FO_STR)
        return r_fail(r, "expected string");
    s = fo_value_strbuf(v, &l);
    if ((*out = fo_action_parse(s, l)) == FO_ACTION_NONE)
        return r_fail(r, "expected \"create\", \"update\" or \"delete\"");
    return 0;
}

/* An array of strings; absent means the empty path. */
static int r_path(reader *r, const fo_value *v, fo_path *out)
{
    fo_key *seg = NULL;
    uint32_t i;

    out->seg = NULL;
    out->len = 0;
    if (!v)
        return 0;
    if (fo_value_type(v) != FO_ARRAY)
        return r_fail(r, "expected array");
    if (v->h.len && !(seg = fo_arena_alloc(r->a, (size_t)v->h.len * sizeof(*seg))))
        return r_nomem(r);
    for (i = 0; i < v->h.len; i++) {
        const fo_value *item = &v->h.as.items[i];
        size_t old = r_push(r, NULL, i), l;
        const char *s;

        if (fo_value_type(item) != FO_STR)
            return r_fail(r, "expected string");
        s = fo_value_strbuf(item, &l);
        if (!(seg[i] = fo_key_new(r->a, s, l)))
            return r_nomem(r);
        r_pop(r, old);
    }
    out->seg = seg;
    out->len = v->h.len;
    return 0;
}

static int r_opt_map(reader *r, const fo_value *obj, const char *name, const fo_value **out)
{
    size_t old;
    const fo_value *f = r_field(r, obj, name, &old);

    if (f && !is_map(f))
        return r_fail(r, "expected object");
    *out = f;
    r_pop(r, old);
    return 0;
}

static int r_command(reader *r, const fo_value *v, fo_command *c)
{
    const fo_value *f;
    size_t old;
    int rc;

    memset(c, 0, sizeof(*c));
    if (!is_map(v))
        return r_fail(r, "expected object");
    f = r_field(r, v, "action", &old);
    if ((rc = r_action(r, f, &c->action)) != 0)
        return rc;
    r_pop(r, old);
    f = r_field(r, v, "path", &old);
    if ((rc = r_path(r, f, &c->path)) != 0)
        return rc;
    r_pop(r, old);
    if ((rc = r_opt_map(r, v, "props", &c->props)) != 0)
        return rc;
    return r_opt_map(r, v, "parentDefault", &c->parent_default);
}

static int r_batch(reader *r, const fo_value *v, fo_batch *b)
{
    const fo_value *f;
    fo_completion *items = NULL;
    size_t old;
    uint32_t i;
    int rc;

    memset(b, 0, sizeof(*b));
    if (!is_map(v))
        return r_fail(r, "expected object");
    f = r_field(r, v, "from", &old);
    if ((rc = r_uint(r, f, &b->from)) != 0)
        return rc;
    r_pop(r, old);
    f = r_field(r, v, "completions", &old);
    if (!f)
        return r_fail(r, "missing");
    if (fo_value_type(f) != FO_ARRAY)
        return r_fail(r, "expected array");
    if (f->h.len && !(items = fo_arena_calloc(r->a, (size_t)f->h.len * sizeof(*items))))
        return r_nomem(r);
    for (i = 0; i < f->h.len; i++) {
        const fo_value *item = &f->h.as.items[i], *g;
        size_t old2 = r_push(r, NULL, i), old3;

        if (!is_map(item))
            return r_fail(r, "expected object");
        g = r_field(r, item, "command", &old3);
        if (!g)
            return r_fail(r, "missing");
        if ((rc = r_command(r, g, &items[i].command)) != 0)
            return rc;
        r_pop(r, old3);
        g = r_field(r, item, "createdId", &old3);
        if (g && fo_value_type(g) != FO_STR)
            return r_fail(r, "expected string");
        if (g) {
            size_t l;
            const char *s = fo_value_strbuf(g, &l);
            if (!(items[i].created_id = fo_key_new(r->a, s, l)))
                return r_nomem(r);
        }
        r_pop(r, old3);
        r_pop(r, old2);
    }
    r_pop(r, old);
    b->len = f->h.len;
    b->items = items;
    return 0;
}

static int r_snapshot(reader *r, const fo_value *v, fo_snapshot *s)
{
    const fo_value *f;
    size_t old;
    int rc;

    memset(s, 0, sizeof(*s));
    if (!is_map(v))
        return r_fail(r, "expected object");
    f = r_field(r, v, "commandCount", &old);
    if ((rc = r_uint(r, f, &s->command_count)) != 0)
        return rc;
    r_pop(r, old);
    f = r_field(r, v, "document", &old);
    if (!f)
        return r_fail(r, "missing");
    if (!is_map(f))
        return r_fail(r, "expected object");
    s->document = f;
    r_pop(r, old);
    return 0;
}

/* A mappedPaths key: the path joined with ','; "" is the empty path. */
static int split_path(fo_arena *a, const char *s, size_t n, fo_path *out)
{
    uint32_t count = n ? 1 : 0, k = 0;
    size_t i, start = 0;
    fo_key *seg;

    for (i = 0; i < n; i++)
        count += s[i] == ',';
    out->seg = NULL;
    out->len = 0;
    if (!count)
        return 0;
    if (!(seg = fo_arena_alloc(a, (size_t)count * sizeof(*seg))))
        return FO_ENOMEM;
    for (i = 0; i <= n; i++) {
        if (i < n && s[i] != ',')
            continue;
        if (!(seg[k++] = fo_key_new(a, s + start, i - start)))
            return FO_ENOMEM;
        start = i + 1;
    }
    out->seg = seg;
    out->len = count;
    return 0;
}

static int r_sync(reader *r, const fo_value *v, fo_sync *s)
{
    const fo_value *f;
    const fo_map *m;
    fo_path_mapping *mapped = NULL;
    size_t old;
    uint32_t i, n = 0;
    int rc;

    memset(s, 0, sizeof(*s));
    if (!is_map(v))
        return r_fail(r, "expected object");
    f = r_field(r, v, "isPartial", &old);
    if (!f)
        return r_fail(r, "missing");
    if (fo_value_type(f) != FO_BOOL)
        return r_fail(r, "expected boolean");
    s->kind = f->h.as.b ? FO_SYNC_PARTIAL : FO_SYNC_FULL;
    r_pop(r, old);
    f = r_field(r, v, s->kind == FO_SYNC_PARTIAL ? "diff" : "latest", &old);
    if (!f)
        return r_fail(r, "missing");
    rc = s->kind == FO_SYNC_PARTIAL ? r_batch(r, f, &s->diff) : r_snapshot(r, f, &s->latest);
    if (rc)
        return rc;
    r_pop(r, old);
    f = r_field(r, v, "mappedPaths", &old);
    if (!f) {
        r_pop(r, old);
        return 0;
    }
    if (!is_map(f))
        return r_fail(r, "expected object");
    m = fo_value_as_map(f);
    if (fo_map_count(m) &&
        !(mapped = fo_arena_alloc(r->a, (size_t)fo_map_count(m) * sizeof(*mapped))))
        return r_nomem(r);
    for (i = 0; i < fo_map_len(m); i++) {
        const fo_entry *e = &fo_map_entries(m)[i];
        char buf[20];
        size_t l, old2;
        const char *key;

        if (!e->key)
            continue;
        key = fo_key_str(e->key, buf, &l);
        old2 = r_push(r, key, 0);
        if (split_path(r->a, key, l, &mapped[n].from))
            return r_nomem(r);
        if ((rc = r_path(r, &e->value, &mapped[n].to)) != 0)
            return rc;
        n++;
        r_pop(r, old2);
    }
    r_pop(r, old);
    s->has_mapped = true;
    s->mapped_len = n;
    s->mapped = mapped;
    return 0;
}

static int r_errors(reader *r, const fo_value *f, fo_apply_result *res)
{
    fo_completion_error *errs = NULL;
    uint32_t i;
    int rc;

    if (fo_value_type(f) != FO_ARRAY)
        return r_fail(r, "expected array");
    if (f->h.len && !(errs = fo_arena_calloc(r->a, (size_t)f->h.len * sizeof(*errs))))
        return r_nomem(r);
    for (i = 0; i < f->h.len; i++) {
        const fo_value *item = &f->h.as.items[i], *g;
        size_t old = r_push(r, NULL, i), old2, l;
        const char *s;

        if (!is_map(item))
            return r_fail(r, "expected object");
        g = r_field(r, item, "action", &old2);
        if ((rc = r_action(r, g, &errs[i].action)) != 0)
            return rc;
        r_pop(r, old2);
        g = r_field(r, item, "path", &old2);
        if ((rc = r_path(r, g, &errs[i].path)) != 0)
            return rc;
        r_pop(r, old2);
        g = r_field(r, item, "errorMessage", &old2);
        if (!g)
            return r_fail(r, "missing");
        if (fo_value_type(g) != FO_STR)
            return r_fail(r, "expected string");
        s = fo_value_strbuf(g, &l);
        if (!(errs[i].message = fo_arena_strndup(r->a, s, l)))
            return r_nomem(r);
        r_pop(r, old2);
        r_pop(r, old);
    }
    res->errors = errs;
    res->errors_len = f->h.len;
    return 0;
}

static int r_result(reader *r, const fo_value *v, fo_apply_result *res)
{
    const fo_value *f;
    size_t old;
    int rc;

    memset(res, 0, sizeof(*res));
    if (!is_map(v))
        return r_fail(r, "expected object");
    f = r_field(r, v, "applied", &old);
    if (!f)
        return r_fail(r, "missing");
    if ((rc = r_batch(r, f, &res->applied)) != 0)
        return rc;
    r_pop(r, old);
    f = r_field(r, v, "sync", &old);
    if (f && (rc = r_sync(r, f, &res->sync)) != 0)
        return rc;
    r_pop(r, old);
    f = r_field(r, v, "errors", &old);
    if (f && (rc = r_errors(r, f, res)) != 0)
        return rc;
    r_pop(r, old);
    return 0;
}

int fo_json_command_from_value(const fo_value *v, fo_arena *a, fo_command *out, fo_err_info *err)
{
    reader r;

    r_init(&r, a, err);
    return r_command(&r, v, out);
}

int fo_json_snapshot_from_value(const fo_value *v, fo_arena *a, fo_snapshot *out, fo_err_info *err)
{
    reader r;

    r_init(&r, a, err);
    return r_snapshot(&r, v, out);
}

int fo_json_batch_from_value(const fo_value *v, fo_arena *a, fo_batch *out, fo_err_info *err)
{
    reader r;

    r_init(&r, a, err);
    return r_batch(&r, v, out);
}

int fo_json_sync_from_value(const fo_value *v, fo_arena *a, fo_sync *out, fo_err_info *err)
{
    reader r;

    r_init(&r, a, err);
    return r_sync(&r, v, out);
}

int fo_json_result_from_value(const fo_value *v, fo_arena *a, fo_apply_result *out,
                              fo_err_info *err)
{
    reader r;

    r_init(&r, a, err);
    return r_result(&r, v, out);
}

/* The typed readers: parse (the root value lives in `a`, so nothing borrows from this
 * stack frame), then convert. */
enum { R_COMMAND, R_SNAPSHOT, R_BATCH, R_SYNC, R_RESULT };

static int read_typed(const char *text, size_t len, fo_arena *a, int kind, void *out,
                      fo_err_info *err)
{
    fo_value *v = fo_arena_alloc(a, sizeof(*v));
    reader r;
    int rc;

    if (!v)
        return fo_err_set(err, FO_ENOMEM, 0, "", "out of memory");
    if ((rc = fo_json_read_value(text, len, FO_JSON_MAX_DEPTH, a, v, err)) != 0)
        return rc;
    r_init(&r, a, err);
    switch (kind) {
    case R_COMMAND: return r_command(&r, v, out);
    case R_SNAPSHOT: return r_snapshot(&r, v, out);
    case R_BATCH: return r_batch(&r, v, out);
    case R_SYNC: return r_sync(&r, v, out);
    default: return r_result(&r, v, out);
    }
}

int fo_json_read_command(const char *text, size_t len, fo_arena *a, fo_command *out,
                         fo_err_info *err)
{
    return read_typed(text, len, a, R_COMMAND, out, err);
}

int fo_json_read_snapshot(const char *text, size_t len, fo_arena *a, fo_snapshot *out,
                          fo_err_info *err)
{
    return read_typed(text, len, a, R_SNAPSHOT, out, err);
}

int fo_json_read_batch(const char *text, size_t len, fo_arena *a, fo_batch *out, fo_err_info *err)
{
    return read_typed(text, len, a, R_BATCH, out, err);
}

int fo_json_read_sync(const char *text, size_t len, fo_arena *a, fo_sync *out, fo_err_info *err)
{
    return read_typed(text, len, a, R_SYNC, out, err);
}

int fo_json_read_result(const char *text, size_t len, fo_arena *a, fo_apply_result *out,
                        fo_err_info *err)
{
    return read_typed(text, len, a, R_RESULT, out, err);
}
