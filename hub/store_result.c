/* store_result.c - building and freeing fo_store_result (store.h): what backends append
 * while a read job runs on the worker thread; and the rows of a snapshot's exactly-once
 * table (fo_store_clients_put / _next). */
#include <stdlib.h>
#include <string.h>

#include "hub/store_backend.h"

/* ---- results ------------------------------------------------------------------------ */

fo_store_result *fo_store_result_new(void)
{
    fo_store_result *r = calloc(1, sizeof(*r));

    if (r)
        fo_arena_init(&r->arena, 16384);
    return r;
}

void fo_store_result_free(fo_store_result *r)
{
    if (!r)
        return;
    free(r->entries);
    free(r->clients);
    free(r->rules);
    fo_arena_destroy(&r->arena);
    free(r);
}

int fo_store_result_set_snapshot(fo_store_result *r, uint64_t count, const void *p, size_t n)
{
    void *copy = fo_arena_memdup(&r->arena, p ? p : "", n);

    if (!copy)
        return FO_ENOMEM;
    r->has_snapshot = true;
    r->snap_count = count;
    r->snap = copy;
    r->snap_size = n;
    return 0;
}

int fo_store_result_add_entry(fo_store_result *r, uint64_t from, uint32_t len, uint64_t seq,
                              const char *client, size_t client_len, const void *p, size_t n)
{
    fo_store_entry *e;

    if (r->n_entries == r->cap_entries) {
        uint32_t cap = r->cap_entries ? r->cap_entries * 2 : 64;
        fo_store_entry *ne;
        if (cap < r->cap_entries || !(ne = realloc(r->entries, sizeof(*ne) * cap)))
            return FO_ENOMEM;
        r->entries = ne;
        r->cap_entries = cap;
    }
    e = &r->entries[r->n_entries];
    e->from = from;
    e->len = len;
    e->seq = seq;
    e->client = fo_arena_strndup(&r->arena, client ? client : "", client ? client_len : 0);
    e->batch = fo_arena_memdup(&r->arena, p ? p : "", n);
    e->batch_size = n;
    e->now_ms = 0;
    e->identity = NULL;
    if (!e->client || !e->batch)
        return FO_ENOMEM;
    r->n_entries++;
    return 0;
}

int fo_store_result_entry_meta(fo_store_result *r, int64_t now_ms, const char *identity,
                               size_t identity_len)
{
    fo_store_entry *e = &r->entries[r->n_entries - 1];

    e->now_ms = now_ms;
    if (identity && !(e->identity = fo_arena_strndup(&r->arena, identity, identity_len)))
        return FO_ENOMEM;
    return 0;
}

int fo_store_result_add_rules(fo_store_result *r, uint64_t from, uint32_t len, const void *orig,
                              size_t orig_size, const char *audit, size_t audit_len)
{
    fo_store_rules_row *row;

    if (r->n_rules == r->cap_rules) {
        uint32_t cap = r->cap_rules ? r->cap_rules * 2 : 16;
        fo_store_rules_row *n;
        if (cap < r->cap_rules || !(n = realloc(r->rules, sizeof(*n) * cap)))
            return FO_ENOMEM;
        r->rules = n;
        r->cap_rules = cap;
    }
    row = &r->rules[r->n_rules];
    row->from = from;
    row->len = len;
    row->original = fo_arena_memdup(&r->arena, orig ? orig : "", orig_size);
    row->original_size = orig_size;
    row->audit = fo_arena_strndup(&r->arena, audit ? audit : "", audit ? audit_len : 0);
    if (!row->original || !row->audit)
        return FO_ENOMEM;
    r->n_rules++;
    return 0;
}

int fo_store_result_add_client(fo_store_result *r, const char *client, size_t client_len,
                               uint64_t seq, uint64_t count)
{
    fo_store_client *c;

    if (r->n_clients == r->cap_clients) {
        uint32_t cap = r->cap_clients ? r->cap_clients * 2 : 16;
        fo_store_client *nc;
        if (cap < r->cap_clients || !(nc = realloc(r->clients, sizeof(*nc) * cap)))
            return FO_ENOMEM;
        r->clients = nc;
        r->cap_clients = cap;
    }
    c = &r->clients[r->n_clients];
    c->client = fo_arena_strndup(&r->arena, client ? client : "", client ? client_len : 0);
    c->seq = seq;
    c->count = count;
    if (!c->client)
        return FO_ENOMEM;
    r->n_clients++;
    return 0;
}

/* ---- exactly-once tables of snapshots (fo_store_write.clients) ---------------------- */

size_t fo_store_clients_put(void *out, const char *client, size_t len, uint64_t seq)
{
    unsigned char *p = out;

    for (int i = 0; i < 4; i++)
        *p++ = (unsigned char)((uint32_t)len >> (8 * i));
    memcpy(p, client, len);
    p += len;
    for (int i = 0; i < 8; i++)
        *p++ = (unsigned char)(seq >> (8 * i));
    return FO_STORE_CLIENT_ROW(len);
}

bool fo_store_clients_next(const void *data, size_t n, size_t *off, const char **client,
                           size_t *len, uint64_t *seq)
{
    const unsigned char *p = (const unsigned char *)data + *off;
    size_t left = n - *off, l = 0;
    uint64_t v = 0;

    if (*off >= n || left < 4)
        return false;
    for (int i = 0; i < 4; i++)
        l |= (size_t)p[i] << (8 * i);
    if (left - 4 < l || left - 4 - l < 8)
        return false;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[4 + l + i] << (8 * i);
    *client = (const char *)p + 4;
    *len = l;
    *seq = v;
    *off += FO_STORE_CLIENT_ROW(l);
    return true;
}
