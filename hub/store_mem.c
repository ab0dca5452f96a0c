/* store_mem.c - the memory backend: the sqlite backend's rules and errors (contiguous
 * logs, all-or-nothing commits, retention, max_bytes -> FO_STORE_EFULL) without a disk.
 * Only the store's worker thread touches it.
 *
 * A commit is all-or-nothing without an undo log: phase 1 checks every write and
 * allocates everything it will need (rows, room in the arrays and hash tables), phase 2
 * links it in and cannot fail. */
#include <stdlib.h>
#include <string.h>

#include "hub/store_backend.h"

/* ---- a string-keyed hash table (open addressing, never shrinks, no deletion) -------- */

typedef struct slot {
    const char *key; /* owned by val */
    size_t len;
    uint64_t hash;
    void *val;
} slot;

typedef struct strmap {
    slot *slots;
    size_t cap; /* 0 or a power of two */
    size_t count;
} strmap;

static uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static slot *strmap_slot(const strmap *h, const char *key, size_t len, uint64_t hash)
{
    size_t i = hash & (h->cap - 1);

    for (;; i = (i + 1) & (h->cap - 1)) {
        slot *s = &h->slots[i];
        if (!s->key || (s->hash == hash && s->len == len && memcmp(s->key, key, len) == 0))
            return s;
    }
}

static void *strmap_get(const strmap *h, const char *key, size_t len)
{
    return h->cap ? strmap_slot(h, key, len, hash_str(key, len))->val : NULL;
}

/* Room for `count` keys at a load factor <= 3/4. 0 or FO_ENOMEM. */
static int strmap_reserve(strmap *h, size_t count)
{
    size_t cap = h->cap ? h->cap : 16;
    strmap n;

    while (count > cap / 4 * 3)
        cap *= 2;
    if (cap == h->cap)
        return 0;
    n.cap = cap;
    n.count = h->count;
    if (!(n.slots = calloc(cap, sizeof(slot))))
        return FO_ENOMEM;
    for (size_t i = 0; i < h->cap; i++)
        if (h->slots[i].key)
            *strmap_slot(&n, h->slots[i].key, h->slots[i].len, h->slots[i].hash) = h->slots[i];
    free(h->slots);
    *h = n;
    return 0;
}

/* The key must be absent and room reserved. */
static void strmap_put(strmap *h, const char *key, size_t len, void *val)
{
    uint64_t hash = hash_str(key, len);

    *strmap_slot(h, key, len, hash) = (slot){key, len, hash, val};
    h->count++;
}

/* ---- data --------------------------------------------------------------------------- */

typedef struct mem_entry {
    uint64_t from, seq;
    uint32_t len;
    int64_t now_ms;
    size_t size;
    size_t client_len;
    size_t identity_len; /* 0: none */
    char data[]; /* batch bytes, the client (NUL-terminated), the identity (NUL-terminated) */
} mem_entry;

typedef struct mem_rules {
    uint64_t from;
    uint32_t len;
    size_t orig_size, audit_len;
    char data[]; /* original bytes, then the audit, NUL-terminated */
} mem_rules;

typedef struct mem_snap {
    uint64_t count;
    size_t size;
    char data[];
} mem_snap;

typedef struct mem_client {
    uint64_t seq, count;
    size_t len;
    char name[];
} mem_client;

typedef struct mem_model {
    mem_entry **log; /* ordered by from, contiguous */
    size_t nlog, log_cap;
    mem_snap **snaps; /* ordered by count */
    size_t nsnaps, snap_cap;
    mem_rules **rules; /* in commit order (from never decreases) */
    size_t nrules, rules_cap;
    strmap clients;
    /* commit scratch, valid while epoch == the store's: pend_end is where the next batch
     * must start, pend_has whether the log (with this commit's rows) has any row */
    uint64_t epoch;
    bool pend_has;
    uint64_t pend_end;
    size_t pend_log, pend_snaps, pend_clients, pend_rules;
    size_t name_len;
    char name[];
} mem_model;

typedef struct mem {
    strmap models;
    uint64_t bytes, max_bytes, epoch;
} mem;

/* What phase 1 prepared for one write. */
typedef struct prep {
    mem_model *mod;
    mem_entry *entry;
    mem_snap *snap;
    mem_rules *rules;
    mem_client *client; /* a new row, or NULL when the row exists */
} prep;

static mem_model *model_find(mem *m, const char *name)
{
    return strmap_get(&m->models, name, strlen(name));
}

static mem_model *model_get(mem *m, const char *name)
{
    size_t len = strlen(name);
    mem_model *mod = strmap_get(&m->models, name, len);

    if (mod)
        return mod;
    if (strmap_reserve(&m->models, m->models.count + 1) ||
        !(mod = calloc(1, sizeof(*mod) + len + 1)))
        return NULL;
    memcpy(mod->name, name, len + 1);
    mod->name_len = len;
    strmap_put(&m->models, mod->name, len, mod);
    return mod;
}

static int grow(void **arr, size_t *cap, size_t need)
{
    size_t c = *cap ? *cap : 8;
    void *n;

    if (need <= *cap)
        return 0;
    while (c < need)
        c *= 2;
    if (!(n = realloc(*arr, c * sizeof(void *))))
        return FO_ENOMEM;
    *arr = n;
    *cap = c;
    return 0;
}

/* ---- commit ------------------------------------------------------------------------- */

static int prepare(mem *m, const fo_store_write *w, prep *p, uint64_t *add, char *msg, size_t ml)
{
    mem_model *mod = model_get(m, w->model);

    if (!(p->mod = mod))
        return fo_store_fail(FO_ENOMEM, msg, ml, "commit: out of memory");
    if (mod->epoch != m->epoch) {
        mod->epoch = m->epoch;
        mod->pend_has = mod->nlog > 0;
        if (mod->nlog)
            mod->pend_end = mod->log[mod->nlog - 1]->from + mod->log[mod->nlog - 1]->len;
        else
            mod->pend_end = mod->nsnaps ? mod->snaps[mod->nsnaps - 1]->count : 0;
        mod->pend_log = mod->pend_snaps = mod->pend_clients = mod->pend_rules = 0;
    }
    if (w->audit) {
        size_t alen = strlen(w->audit);
        if (!(p->rules = malloc(sizeof(mem_rules) + w->original_size + alen + 1)))
            return fo_store_fail(FO_ENOMEM, msg, ml, "commit: out of memory");
        p->rules->from = w->from;
        p->rules->len = w->len;
        p->rules->orig_size = w->original_size;
        p->rules->audit_len = alen;
        memcpy(p->rules->data, w->original, w->original_size);
        memcpy(p->rules->data + w->original_size, w->audit, alen + 1);
        mod->pend_rules++;
        *add += w->original_size + alen;
    }
    if (w->batch) {
        size_t clen = w->client ? strlen(w->client) : 0;
        size_t ilen = w->identity ? strlen(w->identity) + 1 : 0;
        if (mod->pend_end != w->from)
            return fo_store_fail(FO_STORE_ECONFLICT, msg, ml,
                                 "commit: the log of %s ends at %llu, a batch starts at %llu",
                                 w->model, (unsigned long long)mod->pend_end,
                                 (unsigned long long)w->from);
        if (!(p->entry = malloc(sizeof(mem_entry) + w->batch_size + clen + 1 + ilen)))
            return fo_store_fail(FO_ENOMEM, msg, ml, "commit: out of memory");
        p->entry->from = w->from;
        p->entry->len = w->len;
        p->entry->seq = w->seq;
        p->entry->now_ms = w->now_ms;
        p->entry->size = w->batch_size;
        p->entry->client_len = clen;
        p->entry->identity_len = ilen;
        memcpy(p->entry->data, w->batch, w->batch_size);
        memcpy(p->entry->data + w->batch_size, clen ? w->client : "", clen + 1);
        if (ilen)
            memcpy(p->entry->data + w->batch_size + clen + 1, w->identity, ilen);
        mod->pend_has = true;
        mod->pend_end = w->from + w->len;
        mod->pend_log++;
        *add += w->batch_size + clen + ilen;
    }
    if (w->client && w->client[0]) {
        size_t clen = strlen(w->client);
        if (!strmap_get(&mod->clients, w->client, clen)) {
            if (!(p->client = malloc(sizeof(mem_client) + clen + 1)))
                return fo_store_fail(FO_ENOMEM, msg, ml, "commit: out of memory");
            p->client->len = clen;
            memcpy(p->client->name, w->client, clen + 1);
            mod->pend_clients++;
            *add += clen;
        }
    }
    if (w->snap) {
        if (!(p->snap = malloc(sizeof(mem_snap) + w->snap_size)))
            return fo_store_fail(FO_ENOMEM, msg, ml, "commit: out of memory");
        p->snap->count = w->snap_count;
        p->snap->size = w->snap_size;
        memcpy(p->snap->data, w->snap, w->snap_size);
        mod->pend_snaps++;
        *add += w->snap_size;
        if (!mod->pend_has && w->snap_count > mod->pend_end)
            mod->pend_end = w->snap_count; /* an empty log continues the newest snapshot */
    }
    return 0;
}

static void free_model_prefix(mem *m, mem_model *mod, uint64_t base)
{
    size_t ns = 0, nl = 0;

    while (ns < mod->nsnaps && mod->snaps[ns]->count < base) {
        m->bytes -= mod->snaps[ns]->size;
        free(mod->snaps[ns++]);
    }
    memmove(mod->snaps, mod->snaps + ns, (mod->nsnaps - ns) * sizeof(void *));
    mod->nsnaps -= ns;
    while (nl < mod->nlog && mod->log[nl]->from + mod->log[nl]->len <= base) {
        m->bytes -= mod->log[nl]->size + mod->log[nl]->client_len + mod->log[nl]->identity_len;
        free(mod->log[nl++]);
    }
    memmove(mod->log, mod->log + nl, (mod->nlog - nl) * sizeof(void *));
    mod->nlog -= nl;
    nl = 0;
    while (nl < mod->nrules && mod->rules[nl]->from < base) {
        m->bytes -= mod->rules[nl]->orig_size + mod->rules[nl]->audit_len;
        free(mod->rules[nl++]);
    }
    if (nl) {
        memmove(mod->rules, mod->rules + nl, (mod->nrules - nl) * sizeof(void *));
        mod->nrules -= nl;
    }
}

static void apply(mem *m, const fo_store_write *w, prep *p)
{
    mem_model *mod = p->mod;

    if (p->rules)
        mod->rules[mod->nrules++] = p->rules;
    if (p->entry)
        mod->log[mod->nlog++] = p->entry;
    if (w->client && w->client[0]) {
        size_t clen = strlen(w->client);
        mem_client *c = strmap_get(&mod->clients, w->client, clen);
        if (!c) {
            c = p->client;
            strmap_put(&mod->clients, c->name, clen, c);
        } else if (p->client) { /* the same new client twice in one commit */
            m->bytes -= clen;
            free(p->client);
        }
        c->seq = w->seq;
        c->count = w->from + w->len;
    }
    if (p->snap) {
        size_t i = mod->nsnaps;
        while (i > 0 && mod->snaps[i - 1]->count > p->snap->count)
            i--;
        if (i > 0 && mod->snaps[i - 1]->count == p->snap->count) {
            m->bytes -= mod->snaps[i - 1]->size;
            free(mod->snaps[i - 1]);
            mod->snaps[i - 1] = p->snap;
        } else {
            memmove(mod->snaps + i + 1, mod->snaps + i, (mod->nsnaps - i) * sizeof(void *));
            mod->snaps[i] = p->snap;
            mod->nsnaps++;
        }
    }
    if (w->cut) {
        size_t i = mod->nsnaps;
        while (i > 0 && mod->snaps[i - 1]->count > w->cut)
            i--;
        if (i > 0)
            free_model_prefix(m, mod, mod->snaps[i - 1]->count);
    }
}

static int mem_commit(void *impl, const fo_store_seg *segs, size_t nsegs, char *msg, size_t ml)
{
    mem *m = impl;
    size_t total = 0, k = 0;
    uint64_t add = 0;
    prep *p;
    int rc = 0;

    for (size_t i = 0; i < nsegs; i++)
        total += segs[i].n;
    if (!(p = calloc(total ? total : 1, sizeof(*p))))
        return fo_store_fail(FO_ENOMEM, msg, ml, "commit: out of memory");
    m->epoch++;
    for (size_t i = 0; i < nsegs && !rc; i++)
        for (size_t j = 0; j < segs[i].n && !rc; j++, k++)
            rc = prepare(m, &segs[i].w[j], &p[k], &add, msg, ml);
    if (!rc && m->max_bytes && m->bytes + add > m->max_bytes)
        rc = fo_store_fail(FO_STORE_EFULL, msg, ml,
                           "commit failed: memory store is full (%llu + %llu bytes > max %llu)",
                           (unsigned long long)m->bytes, (unsigned long long)add,
                           (unsigned long long)m->max_bytes);
    for (k = 0; k < total && !rc; k++) {
        mem_model *mod = p[k].mod;
        if (grow((void **)&mod->log, &mod->log_cap, mod->nlog + mod->pend_log) ||
            grow((void **)&mod->snaps, &mod->snap_cap, mod->nsnaps + mod->pend_snaps) ||
            grow((void **)&mod->rules, &mod->rules_cap, mod->nrules + mod->pend_rules) ||
            strmap_reserve(&mod->clients, mod->clients.count + mod->pend_clients))
            rc = fo_store_fail(FO_ENOMEM, msg, ml, "commit: out of memory");
    }
    if (rc) {
        for (k = 0; k < total; k++) {
            free(p[k].entry);
            free(p[k].snap);
            free(p[k].rules);
            free(p[k].client);
        }
        free(p);
        return rc;
    }
    m->bytes += add;
    k = 0;
    for (size_t i = 0; i < nsegs; i++)
        for (size_t j = 0; j < segs[i].n; j++, k++)
            apply(m, &segs[i].w[j], &p[k]);
    free(p);
    return 0;
}

/* ---- reads -------------------------------------------------------------------------- */

int fo_store_mem_seed_clients(void *impl, const char *model, const void *rows, size_t n,
                              uint64_t count)
{
    mem *m = impl;
    mem_model *mod = model_get(m, model);
    size_t off = 0, len;
    const char *name;
    uint64_t seq;

    if (!mod)
        return FO_ENOMEM;
    while (fo_store_clients_next(rows, n, &off, &name, &len, &seq)) {
        mem_client *c;
        if (len == 0)
            continue; /* a batch without a client has no row */
        if (!(c = strmap_get(&mod->clients, name, len))) {
            if (strmap_reserve(&mod->clients, mod->clients.count + 1) ||
                !(c = malloc(sizeof(*c) + len + 1)))
                return FO_ENOMEM;
            c->len = len;
            memcpy(c->name, name, len);
            c->name[len] = '\0';
            strmap_put(&mod->clients, c->name, len, c);
            m->bytes += len;
        }
        c->seq = seq;
        c->count = count;
    }
    return off == n ? 0 : FO_STORE_ECORRUPT;
}

static int mem_read_begin(void *impl, char *msg, size_t ml)
{
    (void)impl;
    (void)msg;
    (void)ml;
    return 0;
}

static void mem_read_end(void *impl)
{
    (void)impl;
}

static int nomem(const char *model, char *msg, size_t ml)
{
    return fo_store_fail(FO_ENOMEM, msg, ml, "read %s: out of memory", model);
}

static int mem_snapshot_le(void *impl, const char *model, uint64_t at, fo_store_result *r,
                           bool *found, uint64_t *count, char *msg, size_t ml)
{
    mem_model *mod = model_find(impl, model);
    size_t i = mod ? mod->nsnaps : 0;

    while (i > 0 && mod->snaps[i - 1]->count > at)
        i--;
    *found = i > 0;
    if (!*found)
        return 0;
    *count = mod->snaps[i - 1]->count;
    if (r &&
        fo_store_result_set_snapshot(r, *count, mod->snaps[i - 1]->data, mod->snaps[i - 1]->size))
        return nomem(model, msg, ml);
    return 0;
}

/* Index of the first log row with from > x. */
static size_t upper_bound(const mem_model *mod, uint64_t x)
{
    size_t lo = 0, hi = mod->nlog;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mod->log[mid]->from <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int mem_log_cover(void *impl, const char *model, uint64_t x, bool *found, fo_store_span *out,
                         char *msg, size_t ml)
{
    mem_model *mod = model_find(impl, model);
    size_t i = mod ? upper_bound(mod, x) : 0;

    (void)msg;
    (void)ml;
    *found = i > 0;
    if (*found)
        *out = (fo_store_span){mod->log[i - 1]->from, mod->log[i - 1]->len};
    return 0;
}

static int mem_log_last(void *impl, const char *model, bool *found, fo_store_span *out, char *msg,
                        size_t ml)
{
    mem_model *mod = model_find(impl, model);

    (void)msg;
    (void)ml;
    *found = mod && mod->nlog > 0;
    if (*found)
        *out = (fo_store_span){mod->log[mod->nlog - 1]->from, mod->log[mod->nlog - 1]->len};
    return 0;
}

static int mem_log_scan(void *impl, const char *model, uint64_t lo, uint64_t hi, fo_store_result *r,
                        char *msg, size_t ml)
{
    mem_model *mod = model_find(impl, model);
    size_t i;

    if (!mod || lo == 0)
        i = 0;
    else
        i = upper_bound(mod, lo - 1);
    for (; mod && i < mod->nlog && mod->log[i]->from < hi; i++) {
        const mem_entry *e = mod->log[i];
        const char *id = e->identity_len ? e->data + e->size + e->client_len + 1 : NULL;
        if (fo_store_result_add_entry(r, e->from, e->len, e->seq, e->data + e->size, e->client_len,
                                      e->data, e->size) ||
            fo_store_result_entry_meta(r, e->now_ms, id, id ? e->identity_len - 1 : 0))
            return nomem(model, msg, ml);
    }
    return 0;
}

static int mem_rules_scan(void *impl, const char *model, uint64_t lo, uint32_t limit,
                          fo_store_result *r, char *msg, size_t ml)
{
    mem_model *mod = model_find(impl, model);
    uint32_t n = 0;
    uint64_t last = 0;

    for (size_t i = 0; mod && i < mod->nrules; i++) {
        const mem_rules *x = mod->rules[i];
        if (x->from < lo)
            continue;
        if (limit && n >= limit && x->from != last) {
            r->more = true;
            break;
        }
        if (fo_store_result_add_rules(r, x->from, x->len, x->data, x->orig_size,
                                      x->data + x->orig_size, x->audit_len))
            return nomem(model, msg, ml);
        last = x->from;
        n++;
    }
    return 0;
}

static int cmp_client(const void *a, const void *b)
{
    return strcmp(((const fo_store_client *)a)->client, ((const fo_store_client *)b)->client);
}

static int mem_clients(void *impl, const char *model, fo_store_result *r, char *msg, size_t ml)
{
    mem_model *mod = model_find(impl, model);
    uint32_t first = r->n_clients;

    for (size_t i = 0; mod && i < mod->clients.cap; i++) {
        const mem_client *c = mod->clients.slots[i].val;
        if (c && fo_store_result_add_client(r, c->name, c->len, c->seq, c->count))
            return nomem(model, msg, ml);
    }
    /* sqlite returns them ORDER BY client */
    if (r->n_clients > first)
        qsort(r->clients + first, r->n_clients - first, sizeof(fo_store_client), cmp_client);
    return 0;
}

/* ---- open / close ------------------------------------------------------------------- */

static int mem_open(const char *dir, const fo_store_options *o, void **impl, fo_err_info *err)
{
    mem *m = calloc(1, sizeof(*m));

    (void)dir;
    if (!m) {
        err->code = FO_ENOMEM;
        strcpy(err->msg, "store: out of memory");
        return FO_ENOMEM;
    }
    m->max_bytes = o->max_bytes;
    *impl = m;
    return 0;
}

static void mem_close(void *impl)
{
    mem *m = impl;

    for (size_t i = 0; i < m->models.cap; i++) {
        mem_model *mod = m->models.slots[i].val;
        if (!mod)
            continue;
        for (size_t k = 0; k < mod->nlog; k++)
            free(mod->log[k]);
        for (size_t k = 0; k < mod->nsnaps; k++)
            free(mod->snaps[k]);
        for (size_t k = 0; k < mod->nrules; k++)
            free(mod->rules[k]);
        free(mod->rules);
        for (size_t k = 0; k < mod->clients.cap; k++)
            free(mod->clients.slots[k].val);
        free(mod->log);
        free(mod->snaps);
        free(mod->clients.slots);
        free(mod);
    }
    free(m->models.slots);
    free(m);
}

const fo_store_backend fo_store_backend_memory = {
    .name = "memory",
    .open = mem_open,
    .close = mem_close,
    .commit = mem_commit,
    .read_begin = mem_read_begin,
    .read_end = mem_read_end,
    .snapshot_le = mem_snapshot_le,
    .log_cover = mem_log_cover,
    .log_last = mem_log_last,
    .log_scan = mem_log_scan,
    .clients = mem_clients,
    .rules_scan = mem_rules_scan,
};
