/* test_store_worker.c - the store's worker thread (hub/store.c) as the kernel sees it: the
 * SQLite backend runs its jobs on one thread of its own, scheduled SCHED_BATCH (a wakeup
 * does not preempt the loop thread), and the memory backend starts no thread at all. Read
 * from /proc/self/task, so these fail if the worker is not started, not started alone, or
 * keeps the default policy. */
#define _GNU_SOURCE /* SCHED_BATCH */
#include <criterion/criterion.h>
#include <dirent.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "hub/store.h"
#include "tests/support/storetest.h"

#define MAX_TASKS 64

/* The ids of this process's threads other than the calling one; returns how many. */
static int other_threads(pid_t *ids, int max)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    pid_t self = gettid();
    int n = 0;

    cr_assert_not_null(d);
    while ((e = readdir(d))) {
        pid_t id = (pid_t)atoi(e->d_name);
        if (id > 0 && id != self) {
            cr_assert_lt(n, max);
            ids[n++] = id;
        }
    }
    closedir(d);
    return n;
}

static bool in(const pid_t *ids, int n, pid_t id)
{
    for (int i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* One commit answered: by then the worker has run its first job, so it set its policy. */
static void commit_one(fo_st *t)
{
    char b[96];
    fo_store_write w = fo_st_row(b, "m", 0, 1, "x", 1);

    cr_assert_eq(fo_st_commit(t, &w, 1, NULL), 0);
}

Test(store_worker, sqlite_has_one_batch_thread)
{
    pid_t before[MAX_TASKS], after[MAX_TASKS], worker = 0;
    int nb = other_threads(before, MAX_TASKS), na, added = 0;
    fo_st t;

    fo_st_init(&t, FO_STORE_SQLITE, NULL);
    commit_one(&t);
    na = other_threads(after, MAX_TASKS);
    for (int i = 0; i < na; i++)
        if (!in(before, nb, after[i])) {
            worker = after[i];
            added++;
        }
    cr_assert_eq(added, 1, "the store started %d threads", added);
    cr_assert_eq(sched_getscheduler(worker), SCHED_BATCH, "the worker's policy is %d",
                 sched_getscheduler(worker));
    /* the loop thread (this one) keeps the default */
    cr_assert_eq(sched_getscheduler(0), SCHED_OTHER);
    fo_st_finish(&t);
}

Test(store_worker, memory_starts_no_thread)
{
    pid_t before[MAX_TASKS], after[MAX_TASKS];
    int nb = other_threads(before, MAX_TASKS), na;
    fo_st t;

    fo_st_init(&t, FO_STORE_MEMORY, NULL);
    commit_one(&t);
    na = other_threads(after, MAX_TASKS);
    for (int i = 0; i < na; i++)
        cr_assert(in(before, nb, after[i]), "thread %d started", (int)after[i]);
    fo_st_finish(&t);
}
