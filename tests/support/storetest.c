#include "tests/support/storetest.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/store_nats.h"

void fo_st_rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];

    if (!d)
        return;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

void fo_st_open(fo_st *t, const fo_store_options *o)
{
    fo_err_info err;
    int rc;

    memset(&err, 0, sizeof(err));
    rc = fo_store_open(&t->loop, t->kind, t->where, o, &t->s, &err);
    cr_assert_eq(rc, 0, "open %s: %s %s (%s)", t->where, fo_store_strerror(rc), err.msg, err.path);
}

void fo_st_init(fo_st *t, fo_store_kind kind, const char *where)
{
    memset(t, 0, sizeof(*t));
    t->kind = kind;
    cr_assert_eq(uv_loop_init(&t->loop), 0);
    strcpy(t->dir, "/tmp/fo-store-test-XXXXXX");
    cr_assert_neq(mkdtemp(t->dir), NULL);
    snprintf(t->where, sizeof(t->where), "%s", where ? where : t->dir);
    fo_st_open(t, NULL);
}

void fo_st_on_closed(void *data)
{
    fo_st *t = data;

    t->close_cbs++;
    t->close_order = ++t->order;
}

void fo_st_close(fo_st *t)
{
    int before = t->close_cbs;

    cr_assert_eq(fo_store_close(t->s, fo_st_on_closed, t), 0);
    cr_assert_eq(fo_store_close(t->s, fo_st_on_closed, t), FO_ESTATE);
    cr_assert_eq(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(t->close_cbs, before + 1);
    t->s = NULL;
}

void fo_st_finish(fo_st *t)
{
    if (t->s)
        fo_st_close(t);
    cr_assert_eq(uv_loop_close(&t->loop), 0);
    fo_st_rm_dir(t->dir);
}

void fo_st_on_commit(fo_store *s, const fo_store_status *st, void *data)
{
    fo_st_req *r = data;

    (void)s;
    r->done++;
    r->order = ++r->t->order;
    r->rc = st->rc;
    snprintf(r->msg, sizeof(r->msg), "%s", st->msg);
    cr_assert_eq(st->rc == 0, st->msg[0] == 0, "rc %d msg '%s'", st->rc, st->msg);
    cr_assert(st->latency_ns >= st->exec_ns);
}

void fo_st_on_read(fo_store *s, const fo_store_status *st, fo_store_result *res, void *data)
{
    fo_st_req *r = data;

    (void)s;
    r->done++;
    r->order = ++r->t->order;
    r->rc = st->rc;
    r->res = res;
    snprintf(r->msg, sizeof(r->msg), "%s", st->msg);
    cr_assert_eq(st->rc == 0, res != NULL);
}

int fo_st_commit(fo_st *t, const fo_store_write *w, size_t n, char *msg)
{
    fo_st_req r = {.t = t};

    cr_assert_eq(fo_store_commit(t->s, w, n, fo_st_on_commit, &r), 0);
    cr_assert_eq(r.done, 0, "a callback ran before fo_store_commit returned");
    cr_assert_eq(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(r.done, 1);
    if (msg)
        strcpy(msg, r.msg);
    return r.rc;
}

fo_store_result *fo_st_read(fo_st *t, fo_st_read_op op, const char *model, uint64_t a,
                            uint64_t b)
{
    fo_st_req r = {.t = t};
    int rc = op == FO_ST_LOAD  ? fo_store_load(t->s, model, a, fo_st_on_read, &r)
             : op == FO_ST_LOG ? fo_store_read_log(t->s, model, a, b, fo_st_on_read, &r)
                               : fo_store_read_state_at(t->s, model, a, fo_st_on_read, &r);

    cr_assert_eq(rc, 0);
    cr_assert_eq(r.done, 0);
    cr_assert_eq(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(r.done, 1);
    cr_assert_eq(r.rc, 0, "read %s: %s", model, r.msg);
    return r.res;
}

static size_t row_text(char *buf, size_t cap, const char *model, uint64_t from, uint32_t len)
{
    return (size_t)snprintf(buf, cap, "batch %s [%llu,+%u)", model, (unsigned long long)from, len);
}

fo_store_write fo_st_row(char *buf, const char *model, uint64_t from, uint32_t len,
                         const char *client, uint64_t seq)
{
    fo_store_write w = {.model = model, .from = from, .len = len, .client = client, .seq = seq};

    w.batch = buf;
    w.batch_size = row_text(buf, 96, model, from, len);
    w.now_ms = 1000 + (int64_t)from;
    return w;
}

void fo_st_check_row(const fo_store_entry *e, const char *model, uint64_t from, uint32_t len,
                     const char *client, uint64_t seq)
{
    char buf[96];
    size_t n = row_text(buf, sizeof(buf), model, from, len);

    cr_assert_eq(e->from, from, "%s: row at %llu, expected %llu", model,
                 (unsigned long long)e->from, (unsigned long long)from);
    cr_assert_eq(e->len, len);
    cr_assert_eq(e->seq, seq);
    cr_assert_str_eq(e->client, client);
    cr_assert_eq(e->batch_size, n);
    cr_assert_eq(memcmp(e->batch, buf, n), 0);
    cr_assert_eq(e->now_ms, 1000 + (int64_t)from);
}

int64_t fo_st_nats_records(const char *urls, const char *model)
{
    char subject[sizeof(FO_NATS_SUBJECT_PREFIX) + FO_NATS_TOKEN_MAX];
    size_t pl = sizeof(FO_NATS_SUBJECT_PREFIX) - 1;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsOptions jo;
    jsErrCode jerr = 0;
    natsStatus s;
    int64_t n = -1;

    memcpy(subject, FO_NATS_SUBJECT_PREFIX, pl);
    if (fo_nats_subject_token(model, strlen(model), subject + pl, sizeof(subject) - pl) < 0)
        return -1;
    jsOptions_Init(&jo);
    jo.Stream.Info.SubjectsFilter = subject;
    if ((s = natsConnection_ConnectTo(&nc, urls)) == NATS_OK &&
        (s = natsConnection_JetStream(&js, nc, NULL)) == NATS_OK &&
        (s = js_GetStreamInfo(&si, js, FO_NATS_STREAM, &jo, &jerr)) == NATS_OK) {
        n = 0;
        for (int i = 0; si->State.Subjects && i < si->State.Subjects->Count; i++)
            if (strcmp(si->State.Subjects->List[i].Subject, subject) == 0)
                n = (int64_t)si->State.Subjects->List[i].Msgs;
    } else {
        fprintf(stderr, "stream info of %s at %s: %s (%d)\n", subject, urls, natsStatus_GetText(s),
                (int)jerr);
    }
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return n;
}
