/* test_walbuf.c - the WAL write-gathering VFS (hub/walbuf.h) against real SQLite files.
 * A second connection on the default VFS reads the same file after each commit: the tests
 * fail if a commit's frames stay in the buffer (synchronous=NORMAL, so no xSync flushes
 * them), if gathering loses or reorders a write, if a transaction bigger than the buffer
 * or than one underlying write is cut short, or if a failed write is not the commit's. */
#include <criterion/criterion.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hub/walbuf.h"

static char dir[64], path[96];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/fo-walbuf.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/t.db", dir);
}

static void teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(walbuf, .init = setup, .fini = teardown);

static void exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);

    cr_assert_eq(rc, SQLITE_OK, "%s: %s", sql, err ? err : sqlite3_errstr(rc));
}

static sqlite3 *open_db(const char *vfs, const char *sync)
{
    sqlite3 *db = NULL;
    char sql[64];

    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs),
                 SQLITE_OK);
    exec(db, "PRAGMA journal_mode = WAL");
    snprintf(sql, sizeof(sql), "PRAGMA synchronous = %s", sync);
    exec(db, sql);
    return db;
}

static long long one(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    long long v;

    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sql);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void check_integrity(sqlite3 *db)
{
    sqlite3_stmt *st;

    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
}

/* One transaction of n rows of `size` bytes, keys spread over the index so that many
 * pages change; returns sqlite3_exec's code. */
static int insert_rows(sqlite3 *db, int first, int n, int size)
{
    char sql[160];
    int rc;

    snprintf(sql, sizeof(sql),
             "WITH RECURSIVE k(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM k WHERE i < %d)"
             " INSERT INTO t SELECT (i * 7919) %% 1000003, i, randomblob(%d) FROM k",
             first, first + n - 1, size);
    if ((rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL)))
        return rc;
    if ((rc = sqlite3_exec(db, sql, NULL, NULL, NULL))) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
}

Test(walbuf, each_commit_is_in_the_file_in_few_writes)
{
    sqlite3 *db, *reader;
    fo_walbuf_stats a, b;

    cr_assert_not_null(fo_walbuf_vfs());
    db = open_db(fo_walbuf_vfs(), "NORMAL");
    exec(db, "PRAGMA wal_autocheckpoint = 0"); /* every frame of the test stays in the WAL */
    exec(db, "CREATE TABLE t (k INTEGER, i INTEGER, v BLOB); CREATE INDEX t_k ON t (k)");
    reader = open_db(NULL, "NORMAL");
    fo_walbuf_stats_get(&a);
    for (int c = 0; c < 20; c++) {
        cr_assert_eq(insert_rows(db, c * 40, 40, 300), SQLITE_OK);
        /* The other connection reads the WAL through its own descriptor. */
        cr_assert_eq(one(reader, "SELECT count(*) FROM t"), (c + 1) * 40, "after commit %d", c);
        cr_assert_eq(one(reader, "SELECT max(i) FROM t"), c * 40 + 39);
    }
    fo_walbuf_stats_get(&b);
    /* 40 rows of 300 bytes: ~4 table pages and several index pages a commit, two writes a
     * frame without the VFS; with it, one or two a commit. */
    cr_assert_geq(b.asked - a.asked, 20 * 8, "asked %llu", (unsigned long long)(b.asked - a.asked));
    cr_assert_leq(b.written - a.written, 20 * 2, "written %llu",
                  (unsigned long long)(b.written - a.written));
    check_integrity(reader);
    sqlite3_close(reader);
    sqlite3_close(db);
}

Test(walbuf, a_transaction_bigger_than_the_buffer)
{
    sqlite3 *db = open_db(fo_walbuf_vfs(), "FULL"), *reader;
    fo_walbuf_stats a, b;

    exec(db, "CREATE TABLE t (k INTEGER, i INTEGER, v BLOB)");
    fo_walbuf_stats_get(&a);
    /* ~3 MiB in one commit: several buffers, each written in pieces under 128 KiB. */
    cr_assert_eq(insert_rows(db, 0, 3000, 1000), SQLITE_OK);
    fo_walbuf_stats_get(&b);
    cr_assert_gt(b.written - a.written, 3u * 1024 * 1024 / FO_WALBUF_CHUNK - 1);
    reader = open_db(NULL, "FULL");
    cr_assert_eq(one(reader, "SELECT count(*) FROM t"), 3000);
    cr_assert_eq(one(reader, "SELECT sum(length(v)) FROM t"), 3000 * 1000);
    exec(reader, "PRAGMA wal_checkpoint(TRUNCATE)");
    cr_assert_eq(one(reader, "SELECT count(*) FROM t"), 3000);
    sqlite3_close(reader);
    sqlite3_close(db);
}

Test(walbuf, a_process_that_dies_after_commit_keeps_it)
{
    pid_t pid = fork();
    int status;

    cr_assert_geq(pid, 0);
    if (pid == 0) {
        sqlite3 *db = open_db(fo_walbuf_vfs(), "NORMAL");
        exec(db, "CREATE TABLE t (k INTEGER, i INTEGER, v BLOB)");
        _exit(insert_rows(db, 0, 100, 500) == SQLITE_OK ? 0 : 1); /* no close, no checkpoint */
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    sqlite3 *db = open_db(NULL, "FULL");
    cr_assert_eq(one(db, "SELECT count(*) FROM t"), 100);
    sqlite3_close(db);
}

/* The file size limit makes the gathered write fail (EFBIG): the commit reports it, rolls
 * back, and what was committed before stays whole. */
Test(walbuf, a_failed_write_fails_its_commit)
{
    sqlite3 *db = open_db(fo_walbuf_vfs(), "FULL"), *reader;
    struct rlimit lim;
    struct stat sb;
    char wal[128];
    int rc;

    exec(db, "PRAGMA wal_autocheckpoint = 0");
    exec(db, "CREATE TABLE t (k INTEGER, i INTEGER, v BLOB)");
    cr_assert_eq(insert_rows(db, 0, 50, 200), SQLITE_OK);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    cr_assert_eq(stat(wal, &sb), 0);
    signal(SIGXFSZ, SIG_IGN);
    lim.rlim_cur = lim.rlim_max = (rlim_t)sb.st_size + 16 * 1024;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    /* ~200 KiB: past the limit, within one buffer, so the commit frame's write fails. */
    rc = insert_rows(db, 50, 200, 1000);
    cr_assert_neq(rc, SQLITE_OK, "the commit past the file size limit succeeded");
    cr_assert(sqlite3_get_autocommit(db), "the failed transaction is still open");
    reader = open_db(NULL, "FULL");
    cr_assert_eq(one(reader, "SELECT count(*) FROM t"), 50);
    cr_assert_eq(one(db, "SELECT count(*) FROM t"), 50);
    /* Below the limit again, the connection goes on. */
    cr_assert_eq(insert_rows(db, 50, 5, 100), SQLITE_OK);
    cr_assert_eq(one(reader, "SELECT count(*) FROM t"), 55);
    check_integrity(reader);
    sqlite3_close(reader);
    sqlite3_close(db);
}
