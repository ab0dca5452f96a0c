/* test_store_rows.c - the store's exactly-once rows and log ends under retention and failed
 * commits (hub/store.h), against a real SQLite file and the memory backend. SQLite keeps a
 * client's newest batch in the log only, moves it to its `clients` table when a retention
 * cut deletes it, and checks each batch against a model's log end it remembers between
 * commits: these tests fail if a cut loses a row, if an older row wins, or if a rolled-back
 * commit leaves the remembered end ahead of the log. */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hub/store.h"
#include "tests/support/storetest.h"

#define LOAD(t, m) fo_st_read((t), FO_ST_LOAD, (m), UINT64_MAX, 0)

static void check_client(const fo_store_client *c, const char *client, uint64_t seq, uint64_t count)
{
    cr_assert_str_eq(c->client, client);
    cr_assert_eq(c->seq, seq, "%s: seq %llu", client, (unsigned long long)c->seq);
    cr_assert_eq(c->count, count, "%s: count %llu", client, (unsigned long long)c->count);
}

/* The model's count after a load (and nothing else about it). */
static void check_count(fo_st *t, const char *model, uint64_t count)
{
    fo_store_result *r = LOAD(t, model);

    cr_assert_eq(r->count, count, "%s: count %llu", model, (unsigned long long)r->count);
    fo_store_result_free(r);
}

#define BOTH(fn)                                                                                   \
    Test(store_rows, fn##_sqlite)                                                                  \
    {                                                                                              \
        fn(FO_STORE_SQLITE);                                                                       \
    }                                                                                              \
    Test(store_rows, fn##_memory)                                                                  \
    {                                                                                              \
        fn(FO_STORE_MEMORY);                                                                       \
    }

/* After the cut at 6: a's rows are all gone (its newest, seq 2, ends at 6), b keeps a newer
 * row above the cut, c's only row is above it. */
static void check_after_first_cut(fo_st *t)
{
    fo_store_result *r = LOAD(t, "m");

    cr_assert_eq(r->count, 9);
    cr_assert_eq(r->n_entries, 2);
    cr_assert_eq(r->entries[0].from, 6);
    cr_assert_eq(r->n_clients, 3);
    check_client(&r->clients[0], "a", 2, 6);
    check_client(&r->clients[1], "b", 2, 9);
    check_client(&r->clients[2], "c", 5, 8);
    fo_store_result_free(r);
}

static void rows_outlive_their_log_rows(fo_store_kind kind)
{
    fo_st t;
    char b[8][96];
    fo_store_result *r;

    fo_st_init(&t, kind, NULL);
    fo_store_write w[5] = {fo_st_row(b[0], "m", 0, 2, "a", 1), fo_st_row(b[1], "m", 2, 2, "b", 1),
                           fo_st_row(b[2], "m", 4, 2, "a", 2), fo_st_row(b[3], "m", 6, 2, "c", 5),
                           fo_st_row(b[4], "m", 8, 1, "b", 2)};
    w[2].snap = "doc@6";
    w[2].snap_size = 5;
    w[2].snap_count = 6;
    cr_assert_eq(fo_st_commit(&t, w, 2, NULL), 0);
    cr_assert_eq(fo_st_commit(&t, w + 2, 3, NULL), 0);
    fo_store_write cut = {.model = "m", .cut = 6};
    cr_assert_eq(fo_st_commit(&t, &cut, 1, NULL), 0);
    check_after_first_cut(&t);
    if (kind == FO_STORE_SQLITE) {
        fo_st_close(&t);
        fo_st_open(&t, NULL);
        check_after_first_cut(&t);
    }

    /* a writes again and a second cut takes that row too: the kept row moves forward */
    fo_store_write more = fo_st_row(b[5], "m", 9, 1, "a", 3);
    more.snap = "doc@10";
    more.snap_size = 6;
    more.snap_count = 10;
    more.cut = 10;
    cr_assert_eq(fo_st_commit(&t, &more, 1, NULL), 0);
    r = LOAD(&t, "m");
    cr_assert_eq(r->count, 10);
    cr_assert_eq(r->n_entries, 0);
    cr_assert_eq(r->n_clients, 3);
    check_client(&r->clients[0], "a", 3, 10);
    check_client(&r->clients[1], "b", 2, 9);
    check_client(&r->clients[2], "c", 5, 8);
    fo_store_result_free(r);
    /* a batch without a client leaves no row */
    fo_store_write anon = fo_st_row(b[6], "m", 10, 1, "", 0);
    cr_assert_eq(fo_st_commit(&t, &anon, 1, NULL), 0);
    r = LOAD(&t, "m");
    cr_assert_eq(r->n_clients, 3);
    fo_store_result_free(r);
    fo_st_finish(&t);
}
BOTH(rows_outlive_their_log_rows)

/* A commit that fails part-way is rolled back whole, and the log ends are where they were:
 * a model it wrote first (new, and one already known) takes its next batch at its old end. */
static void a_failed_commit_leaves_the_log_ends(fo_store_kind kind)
{
    fo_st t;
    char b[6][96], msg[512];
    fo_store_result *r;

    fo_st_init(&t, kind, NULL);
    fo_store_write n0 = fo_st_row(b[0], "n", 0, 1, "x", 1);
    cr_assert_eq(fo_st_commit(&t, &n0, 1, NULL), 0);
    /* n (known end 1) and m (new) are written, then a gap fails the commit */
    fo_store_write bad[3] = {fo_st_row(b[1], "n", 1, 1, "x", 2), fo_st_row(b[2], "m", 0, 1, "y", 1),
                             fo_st_row(b[3], "m", 5, 1, "y", 2)};
    cr_assert_eq(fo_st_commit(&t, bad, 3, msg), FO_STORE_ECONFLICT);
    cr_assert_neq(strstr(msg, "ends at 1, a batch starts at 5"), NULL, "%s", msg);
    r = LOAD(&t, "m");
    cr_assert_eq(r->count, 0);
    cr_assert_eq(r->n_entries, 0);
    fo_store_result_free(r);
    /* m continues at 0 (not at 1), n at 1 (not at 2) */
    fo_store_write m1 = fo_st_row(b[4], "m", 1, 1, "y", 1);
    cr_assert_eq(fo_st_commit(&t, &m1, 1, msg), FO_STORE_ECONFLICT);
    cr_assert_neq(strstr(msg, "ends at 0"), NULL, "%s", msg);
    fo_store_write n2 = fo_st_row(b[5], "n", 2, 1, "x", 3);
    cr_assert_eq(fo_st_commit(&t, &n2, 1, msg), FO_STORE_ECONFLICT);
    cr_assert_neq(strstr(msg, "ends at 1"), NULL, "%s", msg);
    cr_assert_eq(fo_st_commit(&t, bad, 2, NULL), 0);
    /* two batches of one model in one commit: the second continues the first */
    fo_store_write two[2] = {fo_st_row(b[1], "n", 2, 3, "x", 3), fo_st_row(b[2], "n", 5, 1, "x", 4)};
    cr_assert_eq(fo_st_commit(&t, two, 2, NULL), 0);
    r = LOAD(&t, "n");
    cr_assert_eq(r->count, 6);
    cr_assert_eq(r->n_entries, 4);
    cr_assert_eq(r->n_clients, 1);
    check_client(&r->clients[0], "x", 4, 6);
    fo_store_result_free(r);
    check_count(&t, "m", 1);
    fo_st_finish(&t);
}
BOTH(a_failed_commit_leaves_the_log_ends)

/* Schema 4 (a client's newest batch lives in the log) and 5 (the log keyed by model id <<
 * 40 | from): an older build must refuse the file, so the version says so. */
Test(store_rows, sqlite_schema_is_version_5)
{
    fo_st t;
    sqlite3 *db;
    sqlite3_stmt *st;
    char path[128];

    fo_st_init(&t, FO_STORE_SQLITE, NULL);
    fo_st_close(&t);
    snprintf(path, sizeof(path), "%s/flushout.db", t.dir);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int(st, 0), 5);
    sqlite3_finalize(st);
    sqlite3_close(db);
    fo_st_finish(&t);
}

/* Schema 5 keys a log row by model id << 38 | from: a batch that would take a model's log
 * to 2^38 commands is refused (FO_ELIMIT, nothing written), and models keep their rows
 * apart. */
Test(store_rows, sqlite_log_positions)
{
    fo_st t;
    char b[4][96], msg[512];
    fo_store_result *r;

    fo_st_init(&t, FO_STORE_SQLITE, NULL);
    fo_store_write far = fo_st_row(b[0], "far", ((uint64_t)1 << 38) - 1, 1, "x", 1);
    cr_assert_eq(fo_st_commit(&t, &far, 1, msg), FO_ELIMIT);
    cr_assert_neq(strstr(msg, "2^38"), NULL, "%s", msg);
    fo_store_write two[3] = {fo_st_row(b[1], "a", 0, 3, "x", 1), fo_st_row(b[2], "b", 0, 2, "y", 1),
                             fo_st_row(b[3], "a", 3, 1, "x", 2)};
    cr_assert_eq(fo_st_commit(&t, two, 3, NULL), 0);
    r = LOAD(&t, "a");
    cr_assert_eq(r->count, 4);
    cr_assert_eq(r->n_entries, 2);
    fo_store_result_free(r);
    r = LOAD(&t, "b");
    cr_assert_eq(r->count, 2);
    cr_assert_eq(r->n_entries, 1);
    fo_store_result_free(r);
    check_count(&t, "far", 0);
    fo_st_finish(&t);
}

/* A schema 4 directory (log rows keyed by a rowid and a unique (model, from_count) index) is
 * migrated to schema 5 when opened: every log row, exactly-once row and model is kept, and
 * the models (and a new one) go on where they were. */
Test(store_rows, sqlite_schema_4_is_migrated)
{
    fo_st t;
    char b[5][96], path[160];
    sqlite3 *db;
    sqlite3_stmt *st;
    fo_store_result *r;

    fo_st_init(&t, FO_STORE_SQLITE, NULL);
    fo_st_close(&t);
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/flushout.db%s", t.dir, (const char *[]){"", "-wal", "-shm"}[i]);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/flushout.db", t.dir);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db,
        "PRAGMA journal_mode = WAL;"
        "CREATE TABLE log (model TEXT NOT NULL, from_count INTEGER NOT NULL, len INTEGER NOT NULL,"
        " client TEXT NOT NULL, seq INTEGER NOT NULL, batch BLOB NOT NULL, now_ms INTEGER,"
        " identity TEXT, UNIQUE (model, from_count));"
        "CREATE TABLE snapshots (model TEXT NOT NULL, cmd_count INTEGER NOT NULL, doc BLOB NOT NULL,"
        " UNIQUE (model, cmd_count));"
        "CREATE TABLE clients (model TEXT NOT NULL, client TEXT NOT NULL, seq INTEGER NOT NULL,"
        " cmd_count INTEGER NOT NULL, PRIMARY KEY (model, client)) WITHOUT ROWID;"
        "CREATE TABLE rules (model TEXT NOT NULL, from_count INTEGER NOT NULL, ord INTEGER NOT NULL,"
        " len INTEGER NOT NULL, original BLOB NOT NULL, audit TEXT NOT NULL,"
        " UNIQUE (model, from_count, ord));"
        "INSERT INTO clients VALUES ('a', 'z', 3, 0);"
        "PRAGMA user_version = 4;", NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    fo_store_write rows[3] = {fo_st_row(b[0], "b", 0, 1, "x", 7), fo_st_row(b[1], "a", 0, 2, "x", 1),
                              fo_st_row(b[2], "a", 2, 1, "y", 1)};
    cr_assert_eq(sqlite3_prepare_v2(db, "INSERT INTO log VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)",
                                    -1, &st, NULL), SQLITE_OK);
    for (int i = 0; i < 3; i++) {
        sqlite3_bind_text(st, 1, rows[i].model, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)rows[i].from);
        sqlite3_bind_int64(st, 3, rows[i].len);
        sqlite3_bind_text(st, 4, rows[i].client, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)rows[i].seq);
        sqlite3_bind_blob(st, 6, rows[i].batch, (int)rows[i].batch_size, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, rows[i].now_ms);
        cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);

    fo_st_open(&t, NULL);
    r = LOAD(&t, "a");
    cr_assert_eq(r->count, 3);
    cr_assert_eq(r->n_entries, 2);
    fo_st_check_row(&r->entries[0], "a", 0, 2, "x", 1);
    fo_st_check_row(&r->entries[1], "a", 2, 1, "y", 1);
    cr_assert_eq(r->n_clients, 3);
    check_client(&r->clients[0], "x", 1, 2);
    check_client(&r->clients[1], "y", 1, 3);
    check_client(&r->clients[2], "z", 3, 0);
    fo_store_result_free(r);
    fo_store_write next[2] = {fo_st_row(b[3], "a", 3, 1, "x", 2), fo_st_row(b[4], "c", 0, 1, "x", 1)};
    cr_assert_eq(fo_st_commit(&t, next, 2, NULL), 0);
    fo_st_close(&t);
    fo_st_open(&t, NULL);
    r = LOAD(&t, "a");
    cr_assert_eq(r->count, 4);
    cr_assert_eq(r->n_entries, 3);
    fo_st_check_row(&r->entries[2], "a", 3, 1, "x", 2);
    fo_store_result_free(r);
    r = LOAD(&t, "b");
    cr_assert_eq(r->count, 1);
    fo_st_check_row(&r->entries[0], "b", 0, 1, "x", 7);
    check_client(&r->clients[0], "x", 7, 1);
    fo_store_result_free(r);
    check_count(&t, "c", 1);
    fo_st_finish(&t);
}

/* A store gives out fewer than 2^25 model ids (schema 5): past the last one a new model's
 * batch fails with FO_ELIMIT and leaves nothing; the model with the highest id goes on. */
Test(store_rows, sqlite_model_ids_run_out)
{
    fo_st t;
    char b[2][96], path[160], msg[512];
    sqlite3 *db;
    fo_store_result *r;

    fo_st_init(&t, FO_STORE_SQLITE, NULL);
    fo_st_close(&t);
    snprintf(path, sizeof(path), "%s/flushout.db", t.dir);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "INSERT INTO models (id, name) VALUES (33554431, 'last')", NULL,
                              NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    fo_st_open(&t, NULL);
    fo_store_write w = fo_st_row(b[0], "new", 0, 1, "x", 1);
    cr_assert_eq(fo_st_commit(&t, &w, 1, msg), FO_ELIMIT);
    cr_assert_neq(strstr(msg, "2^25 model ids"), NULL, "%s", msg);
    fo_store_write l = fo_st_row(b[1], "last", 0, 2, "x", 1);
    cr_assert_eq(fo_st_commit(&t, &l, 1, NULL), 0);
    r = LOAD(&t, "last");
    cr_assert_eq(r->count, 2);
    fo_st_check_row(&r->entries[0], "last", 0, 2, "x", 1);
    fo_store_result_free(r);
    r = LOAD(&t, "new");
    cr_assert_eq(r->count, 0);
    cr_assert(!r->exists);
    fo_store_result_free(r);
    fo_st_finish(&t);
}
