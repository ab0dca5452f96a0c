/* test_store_nats.c - the NATS JetStream backend of the store (hub/store_nats.h): subject
 * tokens and records as units, then the store against a real nats-server that each test
 * starts on 127.0.0.1 (a free port, a temporary storage folder) and stops by its pid.
 * Without a nats-server binary the server tests skip and say why. */
#include <criterion/criterion.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/store.h"
#include "hub/store_nats.h"
#include "tests/support/natsproc.h"
#include "tests/support/storetest.h"

/* ---- subject tokens ------------------------------------------------------------------- */

static void roundtrip_name(const char *name, size_t len)
{
    char tok[FO_NATS_TOKEN_MAX], back[FO_STORE_MODEL_MAX * 2];
    int tl = fo_nats_subject_token(name, len, tok, sizeof(tok));
    int bl;

    cr_assert_gt(tl, 0, "no token for '%.*s'", (int)len, name);
    cr_assert_eq((size_t)tl, strlen(tok));
    for (int i = 0; i < tl; i++)
        cr_assert(tok[i] != '.' && tok[i] != '*' && tok[i] != '>' && tok[i] > ' ' &&
                      (unsigned char)tok[i] < 0x7f,
                  "token '%s' of '%.*s' has byte %d", tok, (int)len, name, tok[i]);
    bl = fo_nats_subject_name(tok, (size_t)tl, back, sizeof(back));
    cr_assert_eq(bl, (int)len, "'%s' decodes to %d bytes", tok, bl);
    cr_assert_eq(memcmp(back, name, len), 0);
}

Test(store_nats, subject_tokens_round_trip)
{
    static const char *names[] = {
        "doc",  "doc.1", "a..b", ".",    "..",   ".a.",   "*",        ">",      "a.*",
        "a.>",  "a b",   "%",    "%2E",  "_",    "a_2E", "x:y-z_w", "UPPER.lower", "a\tb",
        "\x01", "\xff",  "é",
    };
    char big[FO_STORE_MODEL_MAX];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        roundtrip_name(names[i], strlen(names[i]));
    memset(big, '.', sizeof(big));
    roundtrip_name(big, sizeof(big));
    for (int c = 1; c < 256; c++) {
        char one = (char)c;
        roundtrip_name(&one, 1);
    }
}

Test(store_nats, subject_tokens_are_injective)
{
    static const char *names[] = {"a.b", "a%2Eb", "a_b", "a:b", "a-b", "a.b.", "a..b",
                                  "ab",  "a%b",   "a.",  ".a",  "a b", "a%20b"};
    enum { N = sizeof(names) / sizeof(names[0]) };
    char tok[N][FO_NATS_TOKEN_MAX];

    for (int i = 0; i < N; i++)
        cr_assert_gt(fo_nats_subject_token(names[i], strlen(names[i]), tok[i], sizeof(tok[i])), 0);
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            cr_assert_str_neq(tok[i], tok[j], "'%s' and '%s' share a token", names[i], names[j]);
    cr_assert_str_eq(tok[0], "a%2Eb");
    cr_assert_str_eq(tok[1], "a%252Eb");
}

Test(store_nats, subject_token_errors)
{
    static const char *bad[] = {"a.b", "%2e", "%41", "%5F", "%", "%4", "a%", "a b", "*", ">", "é"};
    char out[64], tok[8];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(fo_nats_subject_name(bad[i], strlen(bad[i]), out, sizeof(out)), -1,
                     "'%s' was accepted", bad[i]);
    cr_assert_eq(fo_nats_subject_name("", 0, out, sizeof(out)), -1);
    cr_assert_eq(fo_nats_subject_token("", 0, tok, sizeof(tok)), -1);
    cr_assert_eq(fo_nats_subject_token("a.b", 3, tok, 9), -1); /* needs 3 * 3 + 1 */
    cr_assert_eq(fo_nats_subject_token("a.b", 3, tok, 10), 5);
    cr_assert_eq(fo_nats_subject_name("abcdef", 6, out, 6), -1); /* no room for the NUL */
}

/* ---- records -------------------------------------------------------------------------- */

Test(store_nats, record_round_trip)
{
    static const char orig[] = {1, 0, 2};
    char table[64];
    size_t tsize = fo_store_clients_put(table, "alice", 5, 41);
    fo_store_write w[3] = {
        {.model = "m", .from = 0, .len = 3, .batch = "abc\0def", .batch_size = 7,
         .client = "alice", .seq = 41, .now_ms = -5, .identity = "{\"sub\":\"a\"}"},
        {.model = "m", .from = 3, .len = 0, .original = orig, .original_size = 3,
         .audit = "{\"rejected\":1}"},
        {.model = "m", .from = 3, .len = 2, .batch = "xy", .batch_size = 2, .snap = "S",
         .snap_size = 1, .snap_count = 5, .cut = 1, .now_ms = 1700000000000, .clients = table},
    };
    fo_nats_record r;
    size_t size, off = 0, clen;
    const char *cname;
    uint64_t cseq;
    void *p;

    tsize += fo_store_clients_put(table + tsize, "", 0, UINT64_MAX);
    w[2].clients_size = tsize;
    p = fo_nats_record_encode(w, 3, &size);

    cr_assert_not_null(p);
    cr_assert_eq(fo_nats_record_decode(p, size, "m", &r), 0);
    cr_assert_eq(r.n, 3);
    cr_assert_eq(r.writes[0].batch_size, 7);
    cr_assert_eq(memcmp(r.writes[0].batch, "abc\0def", 7), 0);
    cr_assert_str_eq(r.writes[0].client, "alice");
    cr_assert_eq(r.writes[0].seq, 41);
    cr_assert_eq(r.writes[0].now_ms, -5);
    cr_assert_str_eq(r.writes[0].identity, "{\"sub\":\"a\"}");
    cr_assert_null(r.writes[0].snap);
    cr_assert_null(r.writes[0].audit);
    cr_assert_null(r.writes[1].batch);
    cr_assert_null(r.writes[1].client);
    cr_assert_eq(r.writes[1].original_size, 3);
    cr_assert_eq(memcmp(r.writes[1].original, orig, 3), 0);
    cr_assert_str_eq(r.writes[1].audit, "{\"rejected\":1}");
    cr_assert_eq(r.writes[2].snap_count, 5);
    cr_assert_eq(r.writes[2].snap_size, 1);
    cr_assert_eq(r.writes[2].cut, 1);
    cr_assert_null(r.writes[2].identity);
    cr_assert_str_eq(r.writes[2].model, "m");
    cr_assert_null(r.writes[0].clients);
    /* The snapshot's exactly-once table, row by row. */
    cr_assert_eq(r.writes[2].clients_size, tsize);
    cr_assert(fo_store_clients_next(r.writes[2].clients, tsize, &off, &cname, &clen, &cseq));
    cr_assert(clen == 5 && memcmp(cname, "alice", 5) == 0 && cseq == 41);
    cr_assert(fo_store_clients_next(r.writes[2].clients, tsize, &off, &cname, &clen, &cseq));
    cr_assert(clen == 0 && cseq == UINT64_MAX);
    cr_assert_not(fo_store_clients_next(r.writes[2].clients, tsize, &off, &cname, &clen, &cseq));
    cr_assert_eq(off, tsize);
    off = 0; /* a truncated row is not read */
    cr_assert_not(fo_store_clients_next(r.writes[2].clients, 16, &off, &cname, &clen, &cseq));
    cr_assert_eq(off, 0);
    cr_assert_eq(fo_nats_record_count(&r), 5);
    fo_nats_record_free(&r);

    /* Every truncation and a trailing byte are refused; so is another magic. */
    for (size_t n = 0; n < size; n++)
        cr_assert_eq(fo_nats_record_decode(p, n, "m", &r), FO_STORE_ECORRUPT, "cut at %zu", n);
    {
        char *longer = malloc(size + 1);
        memcpy(longer, p, size);
        longer[size] = 0;
        cr_assert_eq(fo_nats_record_decode(longer, size + 1, "m", &r), FO_STORE_ECORRUPT);
        longer[0] = 'X';
        cr_assert_eq(fo_nats_record_decode(longer, size, "m", &r), FO_STORE_ECORRUPT);
        free(longer);
    }
    free(p);
}

/* Found by fuzz_record: a write with a flag bit above HAS_CLIENTS ended the decoding loop
 * without marking the record bad, so a last write of that kind was handed out (with a NULL
 * batch of batch_size bytes); a client flag over an empty client decoded to "", which the
 * encoder writes back as no client. Both are refused now. */
Test(store_nats, record_refuses_what_no_encoder_writes)
{
    fo_store_write w = {.model = "m", .from = 0, .len = 1, .batch = "x", .batch_size = 1,
                        .client = "c", .seq = 1};
    fo_nats_record r;
    unsigned char *p;
    size_t size;

    p = fo_nats_record_encode(&w, 1, &size);
    cr_assert_not_null(p);
    cr_assert_eq(fo_nats_record_decode(p, size, "m", &r), 0);
    fo_nats_record_free(&r);
    p[8] |= 64; /* the first write's flags */
    cr_assert_eq(fo_nats_record_decode(p, size, "m", &r), FO_STORE_ECORRUPT);
    cr_assert_null(r.writes);
    free(p);

    w.client = "";
    p = fo_nats_record_encode(&w, 1, &size);
    cr_assert_not_null(p);
    cr_assert_eq(p[8], 1); /* HAS_BATCH only */
    p[8] |= 2;             /* HAS_CLIENT over the empty client part */
    cr_assert_eq(fo_nats_record_decode(p, size, "m", &r), FO_STORE_ECORRUPT);
    free(p);

    /* A NUL inside the client would read as a shorter client: refused. */
    w.client = "abc";
    p = fo_nats_record_encode(&w, 1, &size);
    cr_assert_eq(fo_nats_record_decode(p, size, "m", &r), 0);
    fo_nats_record_free(&r);
    for (size_t i = 0; i + 3 <= size; i++)
        if (memcmp(p + i, "abc", 3) == 0)
            p[i + 1] = 0;
    cr_assert_eq(fo_nats_record_decode(p, size, "m", &r), FO_STORE_ECORRUPT);
    free(p);

    /* A batch ending past 2^64. */
    w.from = UINT64_MAX;
    p = fo_nats_record_encode(&w, 1, &size);
    cr_assert_eq(fo_nats_record_decode(p, size, "m", &r), FO_STORE_ECORRUPT);
    free(p);

    /* A snapshot whose exactly-once table ends inside a row. */
    w.from = 0;
    w.snap = "S";
    w.snap_size = 1;
    w.snap_count = 1;
    w.clients = "\5\0\0\0ab";
    w.clients_size = 6;
    p = fo_nats_record_encode(&w, 1, &size);
    cr_assert_eq(fo_nats_record_decode(p, size, "m", &r), FO_STORE_ECORRUPT);
    free(p);
    w.clients_size = 0; /* an empty table is a table */
    p = fo_nats_record_encode(&w, 1, &size);
    cr_assert_eq(fo_nats_record_decode(p, size, "m", &r), 0);
    cr_assert_not_null(r.writes[0].clients);
    fo_nats_record_free(&r);
    free(p);
}

/* ---- against a real nats-server ------------------------------------------------------- */

typedef struct tctx {
    fo_st st; /* the store under test (tests/support/storetest.h) */
    fo_natsproc *nats;
} tctx;

static fo_natsproc *nats_or_skip(void)
{
    fo_natsproc *n;

    if (!fo_natsproc_bin())
        cr_skip_test("no nats-server binary (install Debian's nats-server, or set "
                     "FO_NATS_SERVER): the JetStream backend is not tested");
    n = fo_natsproc_start();
    cr_assert_not_null(n, "nats-server did not start");
    return n;
}

static int open_store(uv_loop_t *loop, const char *urls, fo_store **out, fo_err_info *err)
{
    return fo_store_open(loop, FO_STORE_NATS, urls, NULL, out, err);
}

static void t_init(tctx *t)
{
    memset(t, 0, sizeof(*t));
    t->nats = nats_or_skip();
    fo_st_init(&t->st, FO_STORE_NATS, fo_natsproc_url(t->nats));
}

static void t_finish(tctx *t)
{
    fo_st_finish(&t->st);
    fo_natsproc_free(t->nats);
}

#define LOAD(st, m) fo_st_read((st), FO_ST_LOAD, (m), 0, 0)
#define READ_AT(st, m, at) fo_st_read((st), FO_ST_AT, (m), (at), 0)

Test(store_nats, commit_load_restart)
{
    tctx t;
    char b[5][96];
    fo_store_result *r;

    t_init(&t);
    /* Two models with awkward names, interleaved, in one commit: one record each. */
    fo_store_write w[4] = {
        fo_st_row(b[0], "doc.1", 0, 3, "alice", 1),
        fo_st_row(b[1], "doc.1.x", 0, 1, NULL, 0),
        fo_st_row(b[2], "doc.1", 3, 2, "bob", 9),
        fo_st_row(b[3], "doc.1", 5, 1, "alice", 2),
    };
    w[2].identity = "{\"sub\":\"bob\"}";
    cr_assert_eq(fo_st_commit(&t.st, w, 4, NULL), 0);

    r = LOAD(&t.st, "doc.1");
    cr_assert(r->exists);
    cr_assert_eq(r->count, 6);
    cr_assert_eq(r->n_entries, 3);
    fo_st_check_row(&r->entries[0], "doc.1", 0, 3, "alice", 1);
    fo_st_check_row(&r->entries[1], "doc.1", 3, 2, "bob", 9);
    fo_st_check_row(&r->entries[2], "doc.1", 5, 1, "alice", 2);
    cr_assert_str_eq(r->entries[1].identity, "{\"sub\":\"bob\"}");
    cr_assert_eq(r->n_clients, 2);
    cr_assert_str_eq(r->clients[0].client, "alice");
    cr_assert_eq(r->clients[0].seq, 2);
    cr_assert_eq(r->clients[0].count, 6);
    cr_assert_eq(r->clients[1].seq, 9);
    fo_store_result_free(r);

    r = LOAD(&t.st, "doc.1.x");
    cr_assert_eq(r->count, 1);
    cr_assert_eq(r->n_entries, 1);
    fo_store_result_free(r);
    r = LOAD(&t.st, "missing");
    cr_assert_not(r->exists);
    cr_assert_eq(r->count, 0);
    fo_store_result_free(r);

    /* A new store process-wise (its fences start empty) sees everything and continues. */
    fo_st_close(&t.st);
    fo_st_open(&t.st, NULL);
    /* The stream survives a restart of nats-server too. */
    fo_st_close(&t.st);
    cr_assert_eq(fo_natsproc_stop(t.nats, false), 0);
    cr_assert_eq(fo_natsproc_restart(t.nats), 0);
    fo_st_open(&t.st, NULL);
    r = LOAD(&t.st, "doc.1");
    cr_assert_eq(r->count, 6);
    cr_assert_eq(r->n_clients, 2);
    fo_store_result_free(r);
    {
        char msg[512];
        fo_store_write again = fo_st_row(b[4], "doc.1", 3, 1, "carol", 1);
        cr_assert_eq(fo_st_commit(&t.st, &again, 1, msg), FO_STORE_ECONFLICT, "%s", msg);
        /* Commits queued behind a failed one were built on it: even one that continues the
         * log is refused until the model is read again (the hub reloads it). */
        again = fo_st_row(b[4], "doc.1", 6, 2, "carol", 1);
        cr_assert_eq(fo_st_commit(&t.st, &again, 1, msg), FO_STORE_ECONFLICT, "%s", msg);
        cr_assert(strstr(msg, "an earlier append to the log of doc.1 failed"), "%s", msg);
        fo_store_result_free(LOAD(&t.st, "doc.1"));
        cr_assert_eq(fo_st_commit(&t.st, &again, 1, msg), 0, "%s", msg);
    }
    r = READ_AT(&t.st, "doc.1", 4);
    cr_assert_not(r->gone);
    cr_assert_eq(r->count, 8);
    cr_assert_eq(r->n_entries, 2); /* [0,3) and [3,5): the last ends after 4 */
    fo_store_result_free(r);
    t_finish(&t);
}

Test(store_nats, snapshots_and_retention_read_like_sqlite)
{
    tctx t;
    char b[6][96];
    fo_store_result *r;

    t_init(&t);
    for (uint64_t i = 0; i < 6; i++) {
        fo_store_write w = fo_st_row(b[i], "s", i * 2, 2, "c", i + 1);
        if (i == 2 || i == 4) { /* snapshots at 6 and 10, keeping from 6 at the second */
            w.snap = i == 2 ? "six" : "ten";
            w.snap_size = 3;
            w.snap_count = i * 2 + 2;
            w.cut = i == 4 ? 6 : 0;
        }
        cr_assert_eq(fo_st_commit(&t.st, &w, 1, NULL), 0);
    }
    r = LOAD(&t.st, "s");
    cr_assert_eq(r->count, 12);
    cr_assert(r->has_snapshot);
    cr_assert_eq(r->snap_count, 10);
    cr_assert_eq(memcmp(r->snap, "ten", 3), 0);
    cr_assert_eq(r->n_entries - r->n_before, 1); /* [10, 12) to replay */
    cr_assert_eq(r->n_clients, 1);
    cr_assert_eq(r->clients[0].seq, 6);
    fo_store_result_free(r);
    r = READ_AT(&t.st, "s", 2); /* before the cut: gone, as with sqlite */
    cr_assert(r->gone);
    fo_store_result_free(r);
    r = READ_AT(&t.st, "s", 8);
    cr_assert_not(r->gone);
    cr_assert_eq(r->snap_count, 6);
    fo_store_result_free(r);
    t_finish(&t);
}

/* Commits the single-command row [i, i+1) of model "p": client alice at 0 only, bob after;
 * every 4 commands a snapshot with its exactly-once table and a cut keeping 4 commands. */
static void purge_row(tctx *t, uint64_t i)
{
    char b[96], table[64], doc[32];
    size_t tl = 0;
    fo_store_write w = fo_st_row(b, "p", i, 1, i == 0 ? "alice" : "bob", i + 1);

    if ((i + 1) % 4 == 0) {
        tl += fo_store_clients_put(table, "alice", 5, 1);
        tl += fo_store_clients_put(table + tl, "bob", 3, i + 1);
        snprintf(doc, sizeof(doc), "doc@%llu", (unsigned long long)(i + 1));
        w.snap = doc;
        w.snap_size = strlen(doc);
        w.snap_count = i + 1;
        w.clients = table;
        w.clients_size = tl;
        w.cut = i + 1 > 4 ? i + 1 - 4 : 0;
    }
    cr_assert_eq(fo_st_commit(&t->st, &w, 1, NULL), 0);
}

/* Retention purges the subject below its base snapshot: the log starts there, a cold load
 * reads that snapshot and the tail, the exactly-once row of a client whose batches are all
 * gone survives in the snapshot's table, and reads answer as sqlite's do. */
Test(store_nats, retention_purges_the_log_below_its_base_snapshot)
{
    const char *url;
    fo_store_result *r;
    tctx t;

    t_init(&t);
    url = fo_natsproc_url(t.nats);
    for (uint64_t i = 0; i < 8; i++)
        purge_row(&t, i);
    /* Cut 4 at count 8: the base is the snapshot at 4, in the record of [3, 4). */
    cr_assert_eq(fo_st_nats_records(url, "p"), 5);
    for (uint64_t i = 8; i < 14; i++)
        purge_row(&t, i);
    /* Cut 8 at count 12: base 8, records [7, 8) .. [13, 14). */
    cr_assert_eq(fo_st_nats_records(url, "p"), 7);

    /* A store that never saw the model (fences empty) loads it from the base. */
    fo_st_close(&t.st);
    fo_st_open(&t.st, NULL);
    r = LOAD(&t.st, "p");
    cr_assert(r->exists);
    cr_assert_eq(r->count, 14);
    cr_assert(r->has_snapshot);
    cr_assert_eq(r->snap_count, 12);
    cr_assert_eq(r->snap_size, 6);
    cr_assert_eq(memcmp(r->snap, "doc@12", 6), 0);
    cr_assert_eq(r->n_entries - r->n_before, 2); /* [12, 13), [13, 14) to replay */
    fo_st_check_row(&r->entries[r->n_before], "p", 12, 1, "bob", 13);
    cr_assert_eq(r->n_clients, 2);
    cr_assert_str_eq(r->clients[0].client, "alice"); /* only in the snapshot's table now */
    cr_assert_eq(r->clients[0].seq, 1);
    cr_assert_str_eq(r->clients[1].client, "bob");
    cr_assert_eq(r->clients[1].seq, 14);
    fo_store_result_free(r);
    r = READ_AT(&t.st, "p", 6); /* before the base: gone, as with sqlite */
    cr_assert(r->gone);
    fo_store_result_free(r);
    r = READ_AT(&t.st, "p", 10);
    cr_assert_not(r->gone);
    cr_assert_eq(r->snap_count, 8);
    cr_assert_eq(memcmp(r->snap, "doc@8", 5), 0);
    cr_assert_eq(r->n_entries, 2); /* [8, 9), [9, 10) */
    fo_st_check_row(&r->entries[0], "p", 8, 1, "bob", 9);
    fo_store_result_free(r);
    r = fo_st_read(&t.st, FO_ST_LOG, "p", 8, UINT64_MAX);
    cr_assert_not(r->gone);
    cr_assert_eq(r->n_entries, 6);
    fo_store_result_free(r);

    /* The new store read the marks: its next cut purges again. */
    for (uint64_t i = 14; i < 16; i++)
        purge_row(&t, i);
    cr_assert_eq(fo_st_nats_records(url, "p"), 5); /* base 12: [11, 12) .. [15, 16) */
    r = LOAD(&t.st, "p");
    cr_assert_eq(r->count, 16);
    cr_assert_eq(r->snap_count, 16);
    cr_assert_eq(r->n_clients, 2);
    fo_store_result_free(r);
    t_finish(&t);
}

Test(store_nats, a_second_writer_fails_the_fence)
{
    tctx t;
    fo_st st2;
    char b[6][96], msg[512];
    fo_store_result *r;
    fo_store_stats st;

    t_init(&t);
    fo_st_init(&st2, FO_STORE_NATS, fo_natsproc_url(t.nats)); /* a second writer */

    fo_store_write w = fo_st_row(b[0], "m", 0, 3, "a", 1);
    cr_assert_eq(fo_st_commit(&t.st, &w, 1, NULL), 0);
    /* The second writer catches up and appends behind the first one's back. */
    r = LOAD(&st2, "m");
    cr_assert_eq(r->count, 3);
    fo_store_result_free(r);
    w = fo_st_row(b[1], "m", 3, 2, "b", 1);
    cr_assert_eq(fo_st_commit(&st2, &w, 1, msg), 0, "%s", msg);

    /* The first writer's next append continues where it stands: refused by JetStream. A
     * model it did not touch in that commit is stored anyway (atomic per model). */
    fo_store_write two[2] = {fo_st_row(b[2], "m", 3, 1, "a", 2), fo_st_row(b[3], "other", 0, 1, "a", 1)};
    cr_assert_eq(fo_st_commit(&t.st, two, 2, msg), FO_STORE_EFENCED, "%s", msg);
    cr_assert(strstr(msg, "another writer appended to the log of m"), "%s", msg);
    fo_store_stats_get(t.st.s, &st);
    cr_assert_eq(st.commit_errors, 1);
    r = LOAD(&t.st, "other");
    cr_assert_eq(r->count, 1);
    fo_store_result_free(r);

    /* Until it has read the log again, its stale write does not continue the log... */
    w = fo_st_row(b[2], "m", 3, 1, "a", 2);
    cr_assert_eq(fo_st_commit(&t.st, &w, 1, msg), FO_STORE_ECONFLICT, "%s", msg);
    /* ...and after catching up (a load, as the hub's reload does) it appends again. */
    r = LOAD(&t.st, "m");
    cr_assert_eq(r->count, 5);
    cr_assert_eq(r->n_entries, 2);
    fo_st_check_row(&r->entries[1], "m", 3, 2, "b", 1);
    fo_store_result_free(r);
    w = fo_st_row(b[4], "m", 5, 1, "a", 2);
    cr_assert_eq(fo_st_commit(&t.st, &w, 1, msg), 0, "%s", msg);
    /* Now the second writer is the stale one. */
    w = fo_st_row(b[5], "m", 5, 1, "b", 2);
    cr_assert_eq(fo_st_commit(&st2, &w, 1, msg), FO_STORE_EFENCED, "%s", msg);

    /* A new model is fenced too: the second writer read it empty ("no message yet"), then
     * the first one created it. */
    r = LOAD(&st2, "fresh");
    cr_assert_not(r->exists);
    fo_store_result_free(r);
    w = fo_st_row(b[0], "fresh", 0, 1, "a", 1);
    cr_assert_eq(fo_st_commit(&t.st, &w, 1, msg), 0, "%s", msg);
    w = fo_st_row(b[1], "fresh", 0, 1, "b", 1);
    cr_assert_eq(fo_st_commit(&st2, &w, 1, msg), FO_STORE_EFENCED, "%s", msg);

    fo_st_finish(&st2);
    t_finish(&t);
}

Test(store_nats, large_commits_span_several_records)
{
    enum { N = 300 };
    tctx t;
    static char big[N][64 * 1024];
    fo_store_write w[N];
    fo_store_result *r;
    char msg[512];

    t_init(&t);
    /* 300 x 64 KiB for one model: about 19 MiB, past the 1 MiB max_payload many times. */
    for (int i = 0; i < N; i++) {
        memset(big[i], 'a' + i % 26, sizeof(big[i]));
        w[i] = (fo_store_write){.model = "big", .from = (uint64_t)i, .len = 1, .batch = big[i],
                                .batch_size = sizeof(big[i]), .client = "c", .seq = (uint64_t)i + 1};
    }
    cr_assert_eq(fo_st_commit(&t.st, w, N, msg), 0, "%s", msg);
    r = LOAD(&t.st, "big");
    cr_assert_eq(r->count, N);
    cr_assert_eq(r->n_entries, N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(r->entries[i].batch_size, sizeof(big[i]));
        cr_assert_eq(memcmp(r->entries[i].batch, big[i], sizeof(big[i])), 0);
    }
    cr_assert_eq(r->clients[0].seq, N);
    fo_store_result_free(r);
    /* One write larger than max_payload is refused with a clear error, and stores nothing. */
    {
        char *huge = calloc(1, 2 << 20);
        fo_store_write h = {.model = "big", .from = N, .len = 1, .batch = huge,
                            .batch_size = 2 << 20};
        cr_assert_eq(fo_st_commit(&t.st, &h, 1, msg), FO_STORE_EFULL);
        cr_assert(strstr(msg, "max_payload"), "%s", msg);
        free(huge);
    }
    t_finish(&t);
}

Test(store_nats, open_errors)
{
    uv_loop_t loop;
    fo_store *s = NULL;
    fo_err_info err;
    fo_natsproc *n;
    int rc, port;
    char url[64];

    cr_assert_eq(uv_loop_init(&loop), 0);
    rc = open_store(&loop, "", &s, &err);
    cr_assert_eq(rc, FO_EINVAL);
    rc = open_store(&loop, "http://127.0.0.1:1", &s, &err);
    cr_assert_eq(rc, FO_EINVAL);
    cr_assert(strstr(err.msg, "bad server URL"), "%s", err.msg);

    /* Nobody listens: a clear message, FO_STORE_EIO. */
    n = nats_or_skip();
    port = fo_natsproc_port(n);
    cr_assert_eq(fo_natsproc_stop(n, false), 0);
    snprintf(url, sizeof(url), "nats://127.0.0.1:%d", port);
    rc = open_store(&loop, url, &s, &err);
    cr_assert_eq(rc, FO_STORE_EIO);
    cr_assert(strstr(err.msg, "cannot connect to NATS at nats://127.0.0.1:"), "%s", err.msg);
    cr_assert_null(s);

    /* A stream FLUSHOUT that is not the hub's is refused, not used. */
    cr_assert_eq(fo_natsproc_restart(n), 0);
    {
        natsConnection *nc = NULL;
        jsCtx *js = NULL;
        jsStreamConfig sc;
        jsStreamInfo *si = NULL;
        const char *subj[] = {"elsewhere.>"};
        cr_assert_eq(natsConnection_ConnectTo(&nc, fo_natsproc_url(n)), NATS_OK);
        cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
        jsStreamConfig_Init(&sc);
        sc.Name = "FLUSHOUT";
        sc.Subjects = subj;
        sc.SubjectsLen = 1;
        cr_assert_eq(js_AddStream(&si, js, &sc, NULL, NULL), NATS_OK);
        jsStreamInfo_Destroy(si);
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
    }
    rc = open_store(&loop, fo_natsproc_url(n), &s, &err);
    cr_assert_eq(rc, FO_STORE_ECORRUPT);
    cr_assert(strstr(err.msg, "is not the hub's"), "%s", err.msg);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0);
    fo_natsproc_free(n);
}

Test(store_nats, server_killed_then_back, .timeout = 120)
{
    tctx t;
    char b[4][96], msg[512];
    fo_store_result *r;
    int rc = -1;

    t_init(&t);
    fo_store_write w = fo_st_row(b[0], "k", 0, 2, "c", 1);
    cr_assert_eq(fo_st_commit(&t.st, &w, 1, msg), 0, "%s", msg);

    /* kill -9: the next commit fails within the ack wait, with a clear message. */
    cr_assert_eq(fo_natsproc_stop(t.nats, true), 0);
    w = fo_st_row(b[1], "k", 2, 1, "c", 2);
    rc = fo_st_commit(&t.st, &w, 1, msg);
    cr_assert_eq(rc, FO_STORE_EIO, "%s: %s", fo_store_strerror(rc), msg);
    cr_assert(strstr(msg, "JetStream") || strstr(msg, "NATS"), "%s", msg);

    /* Back: the store reconnects by itself; what was acknowledged is there. */
    cr_assert_eq(fo_natsproc_restart(t.nats), 0);
    for (int i = 0; i < 100; i++) { /* reconnect wait 250 ms */
        fo_st_req q = {.t = &t.st};
        cr_assert_eq(fo_store_load(t.st.s, "k", 0, fo_st_on_read, &q), 0);
        cr_assert_eq(uv_run(&t.st.loop, UV_RUN_DEFAULT), 0);
        if (q.rc == 0) {
            r = q.res;
            cr_assert(r->count == 2 || r->count == 3, "count %llu", (unsigned long long)r->count);
            w = fo_st_row(b[2], "k", r->count, 1, "c", 3);
            fo_store_result_free(r);
            rc = fo_st_commit(&t.st, &w, 1, msg);
            break;
        }
        uv_sleep(100);
    }
    cr_assert_eq(rc, 0, "writes did not resume: %s", msg);
    r = LOAD(&t.st, "k");
    cr_assert(r->count >= 3);
    fo_st_check_row(&r->entries[0], "k", 0, 2, "c", 1);
    fo_store_result_free(r);
    t_finish(&t);
}
