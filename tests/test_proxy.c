/* Proxy scenarios mirroring the reference's behaviour (flushout@1.1.1's Proxy with a
 * Master), plus the push and reset operations the reference lacks. */
#include "tests/support.h"

#include "proto/master.h"
#include "proto/proxy.h"

static fo_arena A;

typedef struct history {
    fo_completion items[256];
    uint64_t len;
} history;

static int history_get(void *ctx, uint64_t from, uint64_t to, fo_arena *a, fo_batch *out)
{
    history *h = ctx;

    (void)a;
    if (to > h->len)
        return -1;
    out->from = from;
    out->len = (uint32_t)(to - from);
    out->items = &h->items[from];
    return 0;
}

static void setup(void)
{
    fo_arena_init(&A, 0);
}

static void teardown(void)
{
    fo_arena_destroy(&A);
}

TestSuite(proxy, .init = setup, .fini = teardown);

static fo_master *master(history *h)
{
    fo_master_config cfg = {FO_IDS_SEQUENTIAL, {NULL, NULL}, h ? history_get : NULL, h, false};
    return fo_master_new(NULL, &cfg);
}

static fo_proxy *proxy(void)
{
    fo_proxy_config cfg = {FO_IDS_SEQUENTIAL, {NULL, NULL}};
    return fo_proxy_new(NULL, &cfg);
}

static fo_doc_result papply(fo_proxy *p, const char *json)
{
    fo_command c = tj_cmd(&A, json);
    fo_doc_result r;

    cr_assert_eq(fo_proxy_apply(p, &c, &r), 0);
    return r;
}

/* begin -> master.apply -> end; returns end's idsChanged. The applied completions go to
 * the history when there is one. */
static bool flush(fo_proxy *p, fo_master *m, history *h)
{
    fo_batch b;
    fo_apply_result r;
    bool changed = true;
    uint32_t i;

    cr_assert_eq(fo_proxy_begin_flush(p, &b), 0);
    cr_assert_eq(fo_master_apply(m, &b, NULL, &A, &r), 0);
    if (h) {
        for (i = 0; i < r.applied.len; i++) {
            cr_assert_eq(fo_command_copy(&A, &r.applied.items[i].command,
                                         &h->items[h->len].command), 0);
            h->items[h->len].created_id = r.applied.items[i].created_id;
            h->len++;
        }
    }
    cr_assert_eq(fo_proxy_end_flush(p, &r.sync, &changed), 0);
    return changed;
}

Test(proxy, apply_queues_and_flush_without_sync_commits)
{
    fo_master *m = master(NULL);
    fo_proxy *p = proxy();
    fo_doc_result r = papply(p, "{\"action\":\"create\",\"props\":{\"t\":\"a\"}}");
    fo_batch b;

    cr_assert(r.ok);
    r = papply(p, "{\"action\":\"update\",\"path\":[\"nope\"],\"props\":{\"x\":1}}");
    cr_assert_not(r.ok); /* failures are not queued */
    cr_assert_eq(fo_proxy_queue_len(p), 1);
    cr_assert_eq(fo_proxy_count(p), 1);
    cr_assert_eq(fo_proxy_committed_count(p), 0);
    cr_assert_not(flush(p, m, NULL));
    cr_assert_eq(fo_proxy_committed_count(p), 1);
    tj_assert_value(fo_proxy_committed_document(p), "{\"1\":{\"t\":\"a\"}}");
    tj_assert_value(fo_master_snapshot(m).document, "{\"1\":{\"t\":\"a\"}}");
    cr_assert_eq(fo_proxy_begin_flush(p, &b), 0);
    cr_assert_eq(b.from, 1);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(fo_proxy_begin_flush(p, &b), FO_ESTATE); /* one flush at a time */
    fo_proxy_free(p);
    fo_master_free(m);
}

static void same_id_scenario(history *h)
{
    fo_master *m = master(h);
    fo_proxy *pa = proxy(), *pb = proxy();
    fo_batch b;
    fo_apply_result r;
    fo_doc_result dr;
    bool changed = false;

    papply(pa, "{\"action\":\"create\",\"props\":{\"who\":\"a\"}}");
    dr = papply(pb, "{\"action\":\"create\",\"props\":{\"who\":\"b\"}}");
    cr_assert(fo_key_eq(dr.created_id, fo_key_from_u64(1))); /* both created "1" */
    cr_assert_not(flush(pa, m, h));

    cr_assert_eq(fo_proxy_begin_flush(pb, &b), 0);
    /* Queued while B's flush is in flight: must follow the remap of "1". */
    papply(pb, "{\"action\":\"update\",\"path\":[\"1\"],\"props\":{\"later\":true}}");
    cr_assert_eq(fo_master_apply(m, &b, NULL, &A, &r), 0);
    cr_assert_eq(r.sync.kind, h ? FO_SYNC_PARTIAL : FO_SYNC_FULL);
    cr_assert_eq(r.sync.mapped_len, 1);
    cr_assert_str_eq(fo_path_join(&A, r.sync.mapped[0].from, NULL), "1");
    cr_assert_str_eq(fo_path_join(&A, r.sync.mapped[0].to, NULL), "3");
    if (h)
        cr_assert_eq(r.sync.diff.len, 2); /* A's create from history, then B's remapped one */
    cr_assert_eq(fo_proxy_end_flush(pb, &r.sync, &changed), 0);
    cr_assert(changed);
    cr_assert_eq(fo_proxy_committed_count(pb), 2);
    tj_assert_value(fo_proxy_committed_document(pb),
                    "{\"1\":{\"who\":\"a\"},\"3\":{\"who\":\"b\"}}");
    tj_assert_value(fo_proxy_document(pb),
                    "{\"1\":{\"who\":\"a\"},\"3\":{\"who\":\"b\",\"later\":true}}");
    /* The queued update was rewritten to the new path and reaches the master so. */
    cr_assert_eq(fo_proxy_queue_len(pb), 1);
    cr_assert_not(flush(pb, m, h));
    tj_assert_value(fo_master_snapshot(m).document,
                    "{\"1\":{\"who\":\"a\"},\"3\":{\"who\":\"b\",\"later\":true}}");
    fo_proxy_free(pa);
    fo_proxy_free(pb);
    fo_master_free(m);
}

Test(proxy, two_proxies_same_id_with_history)
{
    history h = {.len = 0};
    same_id_scenario(&h);
}

Test(proxy, two_proxies_same_id_without_history)
{
    same_id_scenario(NULL);
}

Test(proxy, parent_default_from_two_proxies)
{
    history h = {.len = 0};
    fo_master *m = master(&h);
    fo_proxy *pa = proxy(), *pb = proxy();

    papply(pa, "{\"action\":\"create\",\"path\":[\"todos\"],\"props\":{\"t\":\"a\"},"
               "\"parentDefault\":{}}");
    papply(pb, "{\"action\":\"create\",\"path\":[\"todos\"],\"props\":{\"t\":\"b\"},"
               "\"parentDefault\":{}}");
    flush(pa, m, &h);
    cr_assert(flush(pb, m, &h));
    /* B's container already existed at the master: kept, and B's item remapped into it. */
    tj_assert_value(fo_master_snapshot(m).document,
                    "{\"todos\":{\"1\":{\"t\":\"a\"},\"3\":{\"t\":\"b\"}}}");
    tj_assert_value(fo_proxy_document(pb), "{\"todos\":{\"1\":{\"t\":\"a\"},\"3\":{\"t\":\"b\"}}}");
    flush(pa, m, &h);
    tj_assert_value(fo_proxy_document(pa), "{\"todos\":{\"1\":{\"t\":\"a\"},\"3\":{\"t\":\"b\"}}}");
    fo_proxy_free(pa);
    fo_proxy_free(pb);
    fo_master_free(m);
}

Test(proxy, cancel_flush_puts_the_batch_back_in_front)
{
    fo_proxy *p = proxy();
    fo_batch b;

    papply(p, "{\"action\":\"update\",\"props\":{\"a\":1}}");
    cr_assert_eq(fo_proxy_begin_flush(p, &b), 0);
    papply(p, "{\"action\":\"update\",\"props\":{\"b\":2}}");
    cr_assert_eq(fo_proxy_cancel_flush(p), 0);
    cr_assert_eq(fo_proxy_cancel_flush(p), FO_ESTATE);
    cr_assert_eq(fo_proxy_begin_flush(p, &b), 0);
    cr_assert_eq(b.from, 0);
    cr_assert_eq(b.len, 2);
    tj_assert_value(b.items[0].command.props, "{\"a\":1}");
    tj_assert_value(b.items[1].command.props, "{\"b\":2}");
    fo_proxy_free(p);
}

Test(proxy, end_flush_without_flush_and_with_a_gap)
{
    fo_proxy *p = proxy();
    fo_batch b;
    fo_sync s = {.kind = FO_SYNC_PARTIAL, .diff = {5, 0, NULL}};

    cr_assert_eq(fo_proxy_end_flush(p, NULL, NULL), FO_ESTATE);
    cr_assert_eq(fo_proxy_begin_flush(p, &b), 0);
    cr_assert_eq(fo_proxy_end_flush(p, &s, NULL), FO_EGAP);
    cr_assert(fo_proxy_flushing(p)); /* as in the reference: still in progress */
    fo_proxy_free(p);
}

Test(proxy, push_applies_on_committed_and_rebases_the_queue)
{
    history h = {.len = 0};
    fo_master *m = master(&h);
    fo_proxy *pa = proxy(), *pb = proxy();
    fo_batch push;
    bool changed = false;

    papply(pa, "{\"action\":\"create\",\"props\":{\"who\":\"a\"}}");
    flush(pa, m, &h);
    /* B has a local create of the same ID when A's batch arrives as a push. */
    papply(pb, "{\"action\":\"create\",\"props\":{\"who\":\"b\"}}");
    papply(pb, "{\"action\":\"update\",\"path\":[\"1\"],\"props\":{\"x\":1}}");
    push.from = 0;
    push.len = 1;
    push.items = h.items;
    cr_assert_eq(fo_proxy_apply_push(pb, &push, &changed), 0);
    cr_assert(changed);
    cr_assert_eq(fo_proxy_committed_count(pb), 1);
    tj_assert_value(fo_proxy_committed_document(pb), "{\"1\":{\"who\":\"a\"}}");
    /* The local create moved to a fresh ID and the update followed it. */
    tj_assert_value(fo_proxy_document(pb), "{\"1\":{\"who\":\"a\"},\"3\":{\"who\":\"b\",\"x\":1}}");
    cr_assert_eq(fo_proxy_apply_push(pb, &push, NULL), FO_EGAP);
    cr_assert_not(flush(pb, m, &h));
    tj_assert_value(fo_master_snapshot(m).document,
                    "{\"1\":{\"who\":\"a\"},\"3\":{\"who\":\"b\",\"x\":1}}");
    fo_proxy_free(pa);
    fo_proxy_free(pb);
    fo_master_free(m);
}

Test(proxy, push_is_refused_while_flushing_and_reset_adopts_a_snapshot)
{
    fo_proxy *p = proxy();
    fo_batch b, push = {0, 0, NULL};
    fo_snapshot s = {7, tj_valp(&A, "{\"k\":{\"v\":1}}")};

    papply(p, "{\"action\":\"update\",\"path\":[\"k\"],\"props\":{\"mine\":2}}"); /* fails */
    papply(p, "{\"action\":\"update\",\"props\":{\"top\":1}}");
    cr_assert_eq(fo_proxy_begin_flush(p, &b), 0);
    cr_assert_eq(fo_proxy_apply_push(p, &push, NULL), FO_ESTATE);
    cr_assert_eq(fo_proxy_reset(p, &s), FO_ESTATE);
    cr_assert_eq(fo_proxy_cancel_flush(p), 0);
    cr_assert_eq(fo_proxy_reset(p, &s), 0);
    cr_assert_eq(fo_proxy_committed_count(p), 7);
    cr_assert_eq(fo_proxy_count(p), 8);
    tj_assert_value(fo_proxy_document(p), "{\"k\":{\"v\":1},\"top\":1}");
    fo_proxy_free(p);
}

Test(proxy, a_diff_that_does_not_apply_breaks_the_proxy_until_reset)
{
    fo_proxy *p = proxy();
    fo_batch b;
    fo_sync s = {.kind = FO_SYNC_PARTIAL};
    fo_snapshot snap = {0, tj_valp(&A, "{}")};

    s.diff = tj_batch(&A, "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"update\","
                          "\"path\":[\"missing\"]}}]}");
    cr_assert_eq(fo_proxy_begin_flush(p, &b), 0);
    cr_assert_eq(fo_proxy_end_flush(p, &s, NULL), FO_EFAILED);
    cr_assert_eq(fo_proxy_begin_flush(p, &b), FO_ESTATE);
    cr_assert_eq(fo_proxy_reset(p, &snap), 0);
    cr_assert_eq(fo_proxy_begin_flush(p, &b), 0);
    fo_proxy_free(p);
}

Test(proxy, a_long_queue_flushes_in_bounded_pieces)
{
    fo_master *m = master(NULL);
    fo_proxy *p = proxy();
    fo_batch b;
    fo_apply_result r;
    bool changed = true;
    int i;

    for (i = 0; i < 5; i++) {
        char json[80];
        snprintf(json, sizeof(json), "{\"action\":\"update\",\"props\":{\"k%d\":%d}}", i, i);
        papply(p, json);
    }
    cr_assert_eq(fo_proxy_begin_flush_max(p, 2, &b), 0);
    cr_assert_eq(b.len, 2);
    cr_assert_eq(fo_proxy_queue_len(p), 3);
    cr_assert_eq(fo_master_apply(m, &b, NULL, &A, &r), 0);
    cr_assert_eq(fo_proxy_end_flush(p, &r.sync, &changed), 0);
    cr_assert_not(changed);
    cr_assert_eq(fo_proxy_committed_count(p), 2);
    cr_assert_eq(fo_proxy_begin_flush_max(p, 2, &b), 0);
    cr_assert_eq(b.from, 2);
    cr_assert_eq(b.len, 2);
    cr_assert_eq(fo_proxy_cancel_flush(p), 0); /* back in front, order kept */
    cr_assert_eq(fo_proxy_begin_flush_max(p, 0, &b), 0);
    cr_assert_eq(b.len, 3);
    tj_assert_value(b.items[0].command.props, "{\"k2\":2}");
    tj_assert_value(b.items[2].command.props, "{\"k4\":4}");
    cr_assert_eq(fo_master_apply(m, &b, NULL, &A, &r), 0);
    cr_assert_eq(fo_proxy_end_flush(p, &r.sync, NULL), 0);
    tj_assert_value(fo_master_snapshot(m).document,
                    "{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4}");
    tj_assert_value(fo_proxy_document(p), "{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4}");
    fo_proxy_free(p);
    fo_master_free(m);
}
