/* core_gen.h - the fuzz_core target's input reader, value and path generators and its
 * oracles: FLUSHOUT-SEMANTICS.md (which commands apply) and intent tags. Test-only and header-only, like
 * wire_cmp.h; split off fuzz_core.c to keep that file about the master and the proxies. */
#ifndef FO_TEST_CORE_GEN_H
#define FO_TEST_CORE_GEN_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/doc.h"

#define MAX_PATHS 48
#define PROXY_DEPTH FO_DOC_DEFAULT_MAX_DEPTH

static void die(const char *what)
{
    fprintf(stderr, "fuzz_core: %s\n", what);
    abort();
}

#define CHECK(cond, what)                                                                    \
    do {                                                                                     \
        if (!(cond))                                                                         \
            die(what);                                                                       \
    } while (0)

typedef struct rd {
    const uint8_t *p;
    size_t n, at;
} rd;

static uint8_t next(rd *r)
{
    return r->at < r->n ? r->p[r->at++] : 0;
}

/* The maps of a document (at most MAX_PATHS, depth first) with their paths. */
typedef struct paths {
    uint32_t n;
    uint32_t len[MAX_PATHS];
    const fo_map *map[MAX_PATHS];
    fo_key seg[MAX_PATHS][PROXY_DEPTH];
} paths;

static const char *const key_words[] = {"a", "b", "title", "1", "2", "3", "07", "-1",
                                        "\xc3\xbc", "k\"q", "12345678901234567890", "9"};
static const char *const str_words[] = {"", "x", "hello", "\xe2\x82\xac uro", "a\0b",
                                        "a string longer than fourteen"};

static fo_key key_copy(fo_arena *a, fo_key k)
{
    char buf[20];
    size_t len;
    const char *s;
    fo_key r;

    if (fo_key_is_num(k, NULL))
        return k;
    s = fo_key_str(k, buf, &len);
    if (!(r = fo_key_new(a, s, len)))
        die("out of memory");
    return r;
}

static fo_key rand_key(rd *r, uint64_t ids, fo_arena *a)
{
    uint8_t b = next(r);
    fo_key k;

    if (b & 0x80)
        return fo_key_from_u64((b & 0x7f) % ids);
    b %= sizeof(key_words) / sizeof(key_words[0]);
    if (!(k = fo_key_new_cstr(a, key_words[b])))
        die("out of memory");
    return k;
}

static void gen_value(rd *r, uint64_t ids, fo_arena *a, int depth, fo_value *out);

static void gen_map(rd *r, uint64_t ids, fo_arena *a, int depth, fo_value *out)
{
    bool ok = true;
    uint32_t n = next(r) % 4, i;

    *out = fo_value_map(a, n, &ok);
    CHECK(ok, "out of memory");
    for (i = 0; i < n; i++) {
        fo_value v;
        fo_key k = rand_key(r, ids, a);
        gen_value(r, ids, a, depth - 1, &v);
        CHECK(fo_map_set(out->h.as.map, a, k, &v, NULL) == 0, "out of memory");
    }
}

/* A value of nesting depth at most `depth` (maps and arrays only when depth > 1). */
static void gen_value(rd *r, uint64_t ids, fo_arena *a, int depth, fo_value *out)
{
    uint8_t t = next(r), b;
    bool ok = true;

    switch (t % 10) {
    case 0: *out = fo_value_null(); return;
    case 1: *out = fo_value_bool(t & 0x10); return;
    case 2: *out = fo_value_int((int8_t)next(r)); return;
    case 3: *out = fo_value_int((int64_t)((uint64_t)next(r) << 56 | 0x123456789)); return;
    case 4: *out = fo_value_uint(UINT64_MAX - next(r)); return;
    case 5: *out = fo_value_float(((int)next(r) - 128) / 4.0); return;
    case 6:
        b = next(r) % (sizeof(str_words) / sizeof(str_words[0]));
        *out = fo_value_str(a, str_words[b], b == 4 ? 3 : strlen(str_words[b]), &ok);
        break;
    case 7: {
        /* Now and then a big string: replacing a few fills the 64 KiB that compaction
         * waits for. */
        size_t n = (b = next(r)) >= 250 ? 3000 + b : b % 40, i;
        char *s = fo_arena_alloc(a, n + 1);
        CHECK(s, "out of memory");
        for (i = 0; i < n; i++)
            s[i] = (char)('a' + (i + b) % 26);
        *out = fo_value_str(a, s, n, &ok);
        break;
    }
    case 8:
        if (depth > 1) {
            gen_map(r, ids, a, depth, out);
            return;
        }
        *out = fo_value_int(t);
        return;
    default:
        if (depth > 1) {
            uint32_t n = next(r) % 4, i;
            *out = fo_value_array(a, n, &ok);
            for (i = 0; ok && i < n; i++)
                gen_value(r, ids, a, depth - 1, &out->h.as.items[i]);
            break;
        }
        *out = fo_value_null();
        return;
    }
    CHECK(ok, "out of memory");
}

static uint32_t vdepth(const fo_value *v)
{
    uint32_t d = 0, i, x;

    if (fo_value_type(v) == FO_ARRAY) {
        for (i = 0; i < v->h.len; i++)
            if ((x = vdepth(&v->h.as.items[i])) > d)
                d = x;
        return d + 1;
    }
    if (fo_value_type(v) == FO_MAP) {
        const fo_map *m = v->h.as.map;
        for (i = 0; i < fo_map_len(m); i++)
            if (fo_map_entries(m)[i].key && (x = vdepth(&fo_map_entries(m)[i].value)) > d)
                d = x;
        return d + 1;
    }
    return 0;
}

/* The map at `seg` (every step a map), or NULL: FLUSHOUT-SEMANTICS.md's navigate. */
static const fo_map *walk(const fo_value *root, const fo_key *seg, uint32_t n)
{
    const fo_map *m = fo_value_as_map(root);

    for (uint32_t i = 0; m && i < n; i++) {
        const fo_value *v = fo_map_get(m, seg[i]);
        m = v ? fo_value_as_map(v) : NULL;
    }
    return m;
}

static void collect(paths *ps, const fo_map *m, fo_key *pre, uint32_t depth)
{
    uint32_t idx, i;

    if (ps->n == MAX_PATHS)
        return;
    idx = ps->n++;
    memcpy(ps->seg[idx], pre, depth * sizeof(fo_key));
    ps->len[idx] = depth;
    ps->map[idx] = m;
    if (depth == PROXY_DEPTH)
        return;
    for (i = 0; i < fo_map_len(m); i++) {
        const fo_entry *e = &fo_map_entries(m)[i];
        if (e->key && fo_value_type(&e->value) == FO_MAP) {
            pre[depth] = e->key;
            collect(ps, e->value.h.as.map, pre, depth + 1);
        }
    }
}

/* FLUSHOUT-SEMANTICS.md's rules for one command, with the project's deviations (arrays and
 * scalars are not navigable, an empty delete fails) and the depth limit (doc.h). */
static bool predict(const fo_value *doc, const fo_command *c)
{
    uint32_t n = c->path.len;
    const fo_key *seg = c->path.seg;

    switch (c->action) {
    case FO_CREATE: {
        uint32_t dp = c->props ? vdepth(c->props) : 1;
        if (n + 1 + dp > PROXY_DEPTH ||
            (c->parent_default && n + vdepth(c->parent_default) > PROXY_DEPTH))
            return false;
        return walk(doc, seg, n) || (c->parent_default && n > 0 && walk(doc, seg, n - 1));
    }
    case FO_UPDATE:
        return walk(doc, seg, n) && !(c->props && n + vdepth(c->props) > PROXY_DEPTH);
    case FO_DELETE: return n > 0 && walk(doc, seg, n - 1);
    default: return false;
    }
}

/* Convergence cannot see a path that was not remapped: the master is the authority, so
 * every proxy agrees on the command landing on the wrong item. So each create's props get
 * a unique "tag", and each create in or update of a tagged map says which tag it meant
 * ("for"; the generated keys never include either). At the master, a command that lands on a map
 * tagged otherwise while the map it meant is still in the document went astray. (When the
 * meant item is gone, its ID may legitimately have been reused by a later create.) */
static bool tag_of(const fo_map *m, fo_key k, int64_t *t)
{
    const fo_value *v = m ? fo_map_get(m, k) : NULL;

    if (!v || fo_value_type(v) != FO_INT)
        return false;
    *t = v->h.as.i;
    return true;
}

static bool has_tag(const fo_map *m, fo_key k_tag, int64_t t)
{
    int64_t x;

    if (tag_of(m, k_tag, &x) && x == t)
        return true;
    for (uint32_t i = 0; i < fo_map_len(m); i++) {
        const fo_entry *e = &fo_map_entries(m)[i];
        if (e->key && fo_value_type(&e->value) == FO_MAP && has_tag(e->value.h.as.map, k_tag, t))
            return true;
    }
    return false;
}

static void intent(fo_key k_tag, fo_key k_for, const fo_value *doc, const fo_command *cmd)
{
    int64_t meant, got;
    const fo_map *t;

    if ((cmd->action != FO_UPDATE && cmd->action != FO_CREATE) || !cmd->props ||
        !tag_of(fo_value_as_map(cmd->props), k_for, &meant))
        return;
    t = walk(doc, cmd->path.seg, cmd->path.len);
    if (t && tag_of(t, k_tag, &got) && got != meant &&
        has_tag(fo_value_as_map(doc), k_tag, meant))
        die("a command landed on another item than the one its proxy meant (a path not remapped)");
}

#endif
