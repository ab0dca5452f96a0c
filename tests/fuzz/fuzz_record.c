/* fuzz_record.c - libFuzzer target for the records of the NATS JetStream store
 * (hub/store_nats.h: fo_nats_record_decode / _encode / _count) and the exactly-once table
 * rows a snapshot write carries (hub/store.h: fo_store_clients_next / _put). Built with
 * clang by tests/fuzz/CMakeLists.txt with hub/store_nats_record.c and hub/store_result.c,
 * run by the ctest `fuzz_record`.
 *
 * Input: the bytes of one JetStream message, as a reader gets them from a (possibly
 * damaged) stream. Invariants checked, each aborting so that libFuzzer keeps the input
 * (ASan catches any read past the input or the decoded copy):
 *   - decode returns 0, FO_STORE_ECORRUPT or FO_ENOMEM, and on failure hands out nothing;
 *   - on success every write has the model given, each part present is NUL-terminated at
 *     its size, absent parts have size 0, a client only with a batch, a batch with len > 0,
 *     a clients table only with a snapshot;
 *   - the decoded writes encoded again take 8 bytes plus fo_nats_write_size of each, and
 *     decode to the same writes: same count, same numbers, the same parts (bytes, sizes,
 *     and presence: NULL stays NULL, "" stays ""); encoding those gives the same bytes
 *     (the encoding is canonical), and fo_nats_record_count agrees on both;
 *   - fo_nats_record_count is the furthest end of a log row or snapshot: no write ends past
 *     it and it is one of those ends (0 when there is none; the decoder refuses a batch
 *     ending past 2^64);
 *   - a clients table walked with fo_store_clients_next never moves *off backwards or past
 *     its size, the rows handed out lie inside it, and the rows written again with
 *     fo_store_clients_put give the same bytes up to where the walk stopped. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/store_nats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char model[] = "fuzz.model";

static void die(const char *what, size_t i)
{
    fprintf(stderr, "fuzz_record: write %zu: %s\n", i, what);
    abort();
}

/* A part: both absent, or both present with the same size and bytes. */
static bool same_part(const void *a, size_t an, const void *b, size_t bn)
{
    if (!a || !b)
        return !a && !b && an == 0 && bn == 0;
    return an == bn && memcmp(a, b, an) == 0;
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_part(const void *p, size_t n, size_t i, const char *what)
{
    if (!p && n)
        die(what, i);
    if (p && ((const char *)p)[n] != '\0')
        die(what, i);
}

static void check_write(const fo_store_write *w, size_t i)
{
    if (w->model != model)
        die("model is not the one given", i);
    check_part(w->batch, w->batch_size, i, "batch");
    check_part(w->snap, w->snap_size, i, "snap");
    check_part(w->clients, w->clients_size, i, "clients");
    check_part(w->original, w->original_size, i, "original");
    if ((w->batch && w->len == 0) || (w->client && !w->batch))
        die("a batch with len 0 or a client without a batch", i);
    if (w->clients && !w->snap)
        die("a clients table without a snapshot", i);
    if (!w->audit && w->original)
        die("an original without an audit", i);
}

/* Walks a clients table; rebuilds what it read with fo_store_clients_put. */
static void walk_clients(const fo_store_write *w, size_t i)
{
    const char *name;
    size_t off = 0, prev = 0, len, at = 0;
    uint64_t seq;
    unsigned char *copy;

    if (!w->clients)
        return;
    if (!(copy = malloc(w->clients_size + 1)))
        return;
    while (fo_store_clients_next(w->clients, w->clients_size, &off, &name, &len, &seq)) {
        const char *base = w->clients;
        if (off <= prev || off > w->clients_size || off - prev != FO_STORE_CLIENT_ROW(len))
            die("clients: *off went backwards, past the size or by the wrong step", i);
        if (name != base + prev + 4)
            die("clients: a name outside its row", i);
        at += fo_store_clients_put(copy + at, name, len, seq);
        if (at != off)
            die("clients: put wrote another size than next read", i);
        prev = off;
    }
    if (off != prev || off > w->clients_size)
        die("clients: *off moved on a false", i);
    if (memcmp(copy, w->clients, off) != 0)
        die("clients: rows put again differ", i);
    free(copy);
}

/* fo_nats_record_count as a property: no write ends past it (batches, snapshots, rules
 * rows' positions), and it is 0 or one of those ends. */
static bool count_ok(const fo_nats_record *r, uint64_t c)
{
    bool hit = c == 0;

    for (size_t i = 0; i < r->n; i++) {
        const fo_store_write *w = &r->writes[i];
        uint64_t end = w->batch ? w->from + w->len : w->from;
        if (end > c || (w->snap && w->snap_count > c))
            return false;
        hit |= end == c || (w->snap && w->snap_count == c);
    }
    return hit;
}

static void compare(const fo_nats_record *a, const fo_nats_record *b)
{
    if (a->n != b->n)
        die("the round trip changed the number of writes", a->n);
    for (size_t i = 0; i < a->n; i++) {
        const fo_store_write *x = &a->writes[i], *y = &b->writes[i];
        if (x->from != y->from || x->len != y->len || x->seq != y->seq || x->now_ms != y->now_ms ||
            x->snap_count != y->snap_count || x->cut != y->cut)
            die("the round trip changed a number", i);
        if (!same_part(x->batch, x->batch_size, y->batch, y->batch_size))
            die("the round trip changed the batch", i);
        if (!same_part(x->snap, x->snap_size, y->snap, y->snap_size))
            die("the round trip changed the snapshot", i);
        if (!same_part(x->clients, x->clients_size, y->clients, y->clients_size))
            die("the round trip changed the clients table", i);
        if (!same_part(x->original, x->original_size, y->original, y->original_size))
            die("the round trip changed the original", i);
        if (!same_str(x->client, y->client))
            die("the round trip changed the client", i);
        if (!same_str(x->identity, y->identity))
            die("the round trip changed the identity", i);
        if (!same_str(x->audit, y->audit))
            die("the round trip changed the audit", i);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fo_nats_record r1, r2;
    void *e1, *e2;
    size_t n1, n2, want = 8;
    int rc = fo_nats_record_decode(data, size, model, &r1);

    if (rc) {
        if (rc != FO_STORE_ECORRUPT && rc != FO_ENOMEM)
            die("decode returned another error", 0);
        if (r1.writes || r1.n)
            die("a failed decode handed out writes", 0);
        return 0;
    }
    for (size_t i = 0; i < r1.n; i++) {
        check_write(&r1.writes[i], i);
        walk_clients(&r1.writes[i], i);
        want += fo_nats_write_size(&r1.writes[i]);
    }
    if (!count_ok(&r1, fo_nats_record_count(&r1)))
        die("fo_nats_record_count is not the furthest end", r1.n);

    if (!(e1 = fo_nats_record_encode(r1.writes, r1.n, &n1)))
        die("encode failed on a decoded record", r1.n);
    if (n1 != want || n1 > size)
        die("encoded size is not 8 + fo_nats_write_size of each, or grew", r1.n);
    rc = fo_nats_record_decode(e1, n1, model, &r2);
    if (rc)
        die("a re-encoded record does not decode", r1.n);
    compare(&r1, &r2);
    if (fo_nats_record_count(&r2) != fo_nats_record_count(&r1))
        die("the round trip changed the count", r1.n);
    if (!(e2 = fo_nats_record_encode(r2.writes, r2.n, &n2)))
        die("encode failed on a decoded record", r2.n);
    if (n2 != n1 || memcmp(e1, e2, n1) != 0)
        die("encoding is not canonical: encode(decode(encode(x))) differs", r2.n);

    free(e1);
    free(e2);
    fo_nats_record_free(&r1);
    fo_nats_record_free(&r2);
    if (r1.writes || r1.n)
        die("fo_nats_record_free left writes", 0);
    return 0;
}
