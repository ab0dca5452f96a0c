/* test_splice.c - syncs whose history is spliced as encoded bytes (master.h history_by_ref,
 * wire.h fo_wire_batch_items and fo_msg.ext_parts): for every batch of a script with stale
 * flushes, id collisions, failures and a `from` inside an earlier batch, the ack a master
 * with history by reference encodes (history bytes spliced in) is byte for byte the ack a
 * master with decoded history encodes. */
#include "tests/support.h"

#include "proto/master.h"
#include "proto/wire.h"

static fo_arena A;

/* Every applied batch, as its encoding (what the hub keeps in its history ring). */
typedef struct hlog {
    fo_buf enc[64];
    uint64_t from[64];
    uint32_t len[64];
    uint32_t n;
    uint64_t count;
    /* decoded copies, for the master with decoded history */
    fo_completion items[512];
} hlog;

static int hist_decoded(void *ctx, uint64_t from, uint64_t to, fo_arena *a, fo_batch *out)
{
    hlog *l = ctx;

    (void)a;
    if (to > l->count)
        return -1;
    out->from = from;
    out->len = (uint32_t)(to - from);
    out->items = &l->items[from];
    return 0;
}

static int hist_by_ref(void *ctx, uint64_t from, uint64_t to, fo_arena *a, fo_batch *out)
{
    hlog *l = ctx;

    cr_assert_null(a, "a master with history_by_ref asks for coverage only");
    if (to > l->count)
        return -1;
    out->from = from;
    out->len = (uint32_t)(to - from);
    out->items = NULL;
    return 0;
}

static void record(hlog *l, const fo_batch *applied)
{
    fo_wire_limits lim;
    fo_batch copy;
    uint32_t k = l->n++;

    fo_buf_init(&l->enc[k], 0);
    cr_assert_eq(fo_wire_encode_batch(applied, &l->enc[k]), 0);
    l->from[k] = applied->from;
    l->len[k] = applied->len;
    fo_wire_limits_default(&lim);
    cr_assert_eq(fo_wire_decode_batch(fo_buf_data(&l->enc[k]), l->enc[k].len, &lim, &A, &copy,
                                      NULL),
                 0);
    if (applied->len)
        memcpy(&l->items[applied->from], copy.items, applied->len * sizeof(fo_completion));
    l->count = applied->from + applied->len;
}

/* The runs of [from, to) from the log's encodings, as the hub's history ring gives them. */
static uint32_t parts_of(const hlog *l, uint64_t from, uint64_t to, fo_wire_part *parts)
{
    uint32_t n = 0;

    for (uint32_t k = 0; k < l->n; k++) {
        uint64_t end = l->from[k] + l->len[k];
        const void *items;
        size_t len;
        uint32_t count;
        if (end <= from || l->from[k] >= to)
            continue;
        cr_assert_leq(end, to);
        cr_assert_eq(fo_wire_batch_items(fo_buf_data(&l->enc[k]), l->enc[k].len,
                                         from > l->from[k] ? (uint32_t)(from - l->from[k]) : 0,
                                         k % 2 == 0, &items, &len, &count),
                     0);
        cr_assert_eq(count, end - (from > l->from[k] ? from : l->from[k]));
        parts[n++] = (fo_wire_part){items, len};
    }
    return n;
}

static void encode_ack(const fo_apply_result *r, const fo_buf *raw, const fo_wire_part *parts,
                       uint32_t nparts, fo_buf *out)
{
    fo_msg m;

    memset(&m, 0, sizeof(m));
    m.type = FO_MSG_ACK;
    m.model = "splice";
    m.model_len = 6;
    m.seq = 7;
    m.result = *r;
    if (raw) {
        m.raw_batch = fo_buf_data(raw);
        m.raw_batch_len = raw->len;
    }
    m.ext_parts = parts;
    m.n_ext_parts = nparts;
    fo_buf_init(out, 0);
    cr_assert_eq(fo_wire_encode(&m, out), 0);
}

static const char *const script[] = {
    "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"create\",\"props\":"
    "{\"todos\":{}}},\"createdId\":\"1\"}]}",
    "{\"from\":1,\"completions\":[{\"command\":{\"action\":\"create\",\"path\":[\"1\"],"
    "\"props\":{\"t\":\"a\"}},\"createdId\":\"5\"},{\"command\":{\"action\":\"create\","
    "\"path\":[\"1\"],\"props\":{\"t\":\"b\"}},\"createdId\":\"6\"}]}",
    /* stale: from 1 while the count is 3; its id 5 collides and is remapped */
    "{\"from\":1,\"completions\":[{\"command\":{\"action\":\"create\",\"path\":[\"1\"],"
    "\"props\":{\"t\":\"c\"}},\"createdId\":\"5\"},{\"command\":{\"action\":\"update\","
    "\"path\":[\"1\",\"5\"],\"props\":{\"done\":true}}}]}",
    /* from inside the second batch */
    "{\"from\":2,\"completions\":[{\"command\":{\"action\":\"update\",\"path\":[\"1\",\"6\"],"
    "\"props\":{\"t\":\"B\"}}}]}",
    /* a failure (no such item) next to a good command, stale */
    "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"delete\",\"path\":[\"1\",\"99\"]}},"
    "{\"command\":{\"action\":\"delete\",\"path\":[\"1\",\"6\"]}}]}",
    /* stale with nothing applied */
    "{\"from\":3,\"completions\":[]}",
    /* current: no sync */
    "{\"from\":7,\"completions\":[{\"command\":{\"action\":\"update\",\"path\":[\"1\"],"
    "\"props\":{\"n\":1}}}]}",
};

Test(splice, by_ref_acks_equal_decoded_acks_byte_for_byte)
{
    hlog *ldec = calloc(1, sizeof(*ldec)), *lref = calloc(1, sizeof(*lref));
    fo_master_config cdec = {FO_IDS_SEQUENTIAL, {NULL, NULL}, hist_decoded, ldec, false};
    fo_master_config cref = {FO_IDS_SEQUENTIAL, {NULL, NULL}, hist_by_ref, lref, true};
    fo_master *mdec, *mref;
    int external_seen = 0;

    fo_arena_init(&A, 0);
    mdec = fo_master_new(NULL, &cdec);
    mref = fo_master_new(NULL, &cref);
    for (size_t i = 0; i < sizeof(script) / sizeof(script[0]); i++) {
        fo_batch b = tj_batch(&A, script[i]);
        fo_apply_result rd, rr;
        fo_wire_part parts[64];
        uint32_t np = 0;
        fo_buf raw, want, got;

        cr_assert_eq(fo_master_apply(mdec, &b, NULL, &A, &rd), 0);
        cr_assert_eq(fo_master_apply(mref, &b, NULL, &A, &rr), 0);
        cr_assert_eq(rr.sync.kind, rd.sync.kind, "batch %zu", i);
        cr_assert_eq(rd.sync.external, 0);
        if (rr.sync.kind == FO_SYNC_PARTIAL && rr.sync.diff.from < rr.applied.from) {
            cr_assert_eq(rr.sync.external, rr.applied.from - rr.sync.diff.from, "batch %zu", i);
            cr_assert_eq(rr.sync.diff.len, rd.sync.diff.len);
            np = parts_of(lref, rr.sync.diff.from, rr.applied.from, parts);
            external_seen++;
        }
        fo_buf_init(&raw, 0);
        cr_assert_eq(fo_wire_encode_batch(&rr.applied, &raw), 0);
        encode_ack(&rd, NULL, NULL, 0, &want);
        /* with the applied batch's bytes spliced too (the hub's case), and without */
        for (int with_raw = 0; with_raw < 2; with_raw++) {
            encode_ack(&rr, with_raw ? &raw : NULL, parts, np, &got);
            cr_assert_eq(got.len, want.len, "batch %zu (raw %d): %zu bytes, want %zu", i,
                         with_raw, got.len, want.len);
            cr_assert_eq(memcmp(fo_buf_data(&got), fo_buf_data(&want), got.len), 0,
                         "batch %zu (raw %d): bytes differ", i, with_raw);
            fo_buf_destroy(&got);
        }
        record(ldec, &rd.applied);
        record(lref, &rr.applied);
        fo_buf_destroy(&raw);
        fo_buf_destroy(&want);
    }
    cr_assert_geq(external_seen, 4, "the script must exercise spliced history");
    for (uint32_t k = 0; k < ldec->n; k++)
        fo_buf_destroy(&ldec->enc[k]);
    for (uint32_t k = 0; k < lref->n; k++)
        fo_buf_destroy(&lref->enc[k]);
    fo_master_free(mdec);
    fo_master_free(mref);
    free(ldec);
    free(lref);
    fo_arena_destroy(&A);
}

Test(splice, an_external_sync_without_its_parts_is_not_encoded)
{
    fo_completion c = {.command = {.action = FO_CREATE}, .created_id = FO_KEY_NONE};
    fo_apply_result r;
    fo_msg m;
    fo_buf out;

    memset(&r, 0, sizeof(r));
    r.applied = (fo_batch){3, 1, &c};
    r.sync.kind = FO_SYNC_PARTIAL;
    r.sync.diff = (fo_batch){1, 3, &c};
    r.sync.external = 4; /* more than the diff holds */
    memset(&m, 0, sizeof(m));
    m.type = FO_MSG_ACK;
    m.model = "x";
    m.model_len = 1;
    m.result = r;
    fo_buf_init(&out, 0);
    cr_assert_neq(fo_wire_encode(&m, &out), 0);
    cr_assert_eq(out.len, 0, "a failed encode leaves the buffer as it was");
    fo_buf_destroy(&out);
}

Test(splice, batch_items_reads_only_batches_as_encoded_here)
{
    fo_arena a;
    fo_buf b;
    const void *items;
    size_t len;
    uint32_t count;
    fo_batch batch;

    fo_arena_init(&a, 0);
    batch = tj_batch(&a, "{\"from\":4,\"completions\":[{\"command\":{\"action\":\"create\"},"
                         "\"createdId\":\"9\"},{\"command\":{\"action\":\"delete\",\"path\":"
                         "[\"9\"]}}]}");
    fo_buf_init(&b, 0);
    cr_assert_eq(fo_wire_encode_batch(&batch, &b), 0);
    cr_assert_eq(fo_wire_batch_items(fo_buf_data(&b), b.len, 0, true, &items, &len, &count), 0);
    cr_assert_eq(count, 2);
    cr_assert_eq((const char *)items + len, fo_buf_data(&b) + b.len);
    cr_assert_eq(fo_wire_batch_items(fo_buf_data(&b), b.len, 1, true, &items, &len, &count), 0);
    cr_assert_eq(count, 1);
    cr_assert_eq(fo_wire_batch_items(fo_buf_data(&b), b.len, 2, false, &items, &len, &count), 0);
    cr_assert_eq(count, 0);
    cr_assert_eq(len, 0);
    cr_assert_eq(fo_wire_batch_items(fo_buf_data(&b), b.len, 3, false, &items, &len, &count),
                 FO_ELIMIT);
    /* truncated: found when every item is read through */
    cr_assert_eq(fo_wire_batch_items(fo_buf_data(&b), b.len - 1, 0, true, &items, &len, &count),
                 FO_EPROTO);
    /* trailing bytes after the last completion */
    cr_assert_eq(fo_buf_append(&b, "\xc0", 1), 0);
    cr_assert_eq(fo_wire_batch_items(fo_buf_data(&b), b.len, 0, true, &items, &len, &count),
                 FO_EPROTO);
    /* not a batch: a map with its keys the other way round, an array, nothing */
    static const unsigned char swapped[] = {0x82, 0xab, 'c', 'o', 'm', 'p', 'l', 'e', 't', 'i',
                                            'o',  'n',  's', 0x90, 0xa4, 'f', 'r', 'o', 'm', 0x00};
    cr_assert_eq(fo_wire_batch_items(swapped, sizeof(swapped), 0, true, &items, &len, &count),
                 FO_EPROTO);
    cr_assert_eq(fo_wire_batch_items("\x91\x00", 2, 0, true, &items, &len, &count), FO_EPROTO);
    cr_assert_eq(fo_wire_batch_items("", 0, 0, true, &items, &len, &count), FO_EPROTO);
    fo_buf_destroy(&b);
    fo_arena_destroy(&a);
}

Test(splice, a_push_or_diff_of_spliced_batches_equals_the_decoded_one)
{
    static const char *const batches[] = {
        "{\"from\":10,\"completions\":[{\"command\":{\"action\":\"create\"},\"createdId\":\"1\"},"
        "{\"command\":{\"action\":\"update\",\"path\":[\"1\"],\"props\":{\"a\":[1,2,{\"b\":null}]}}}]}",
        "{\"from\":12,\"completions\":[{\"command\":{\"action\":\"delete\",\"path\":[\"1\"]}}]}",
    };
    fo_arena a;
    fo_buf enc[2], want, got;
    fo_completion all[3];
    fo_wire_part parts[2];
    fo_wire_limits lim;

    fo_arena_init(&a, 0);
    fo_wire_limits_default(&lim);
    for (int i = 0; i < 2; i++) {
        fo_batch b = tj_batch(&a, batches[i]), d;
        size_t len;
        uint32_t count;
        fo_buf_init(&enc[i], 0);
        cr_assert_eq(fo_wire_encode_batch(&b, &enc[i]), 0);
        cr_assert_eq(fo_wire_decode_batch(fo_buf_data(&enc[i]), enc[i].len, &lim, &a, &d, NULL), 0);
        memcpy(&all[i * 2], d.items, d.len * sizeof(*all));
        /* from 11: the first batch's second completion on */
        cr_assert_eq(fo_wire_batch_items(fo_buf_data(&enc[i]), enc[i].len, i == 0 ? 1 : 0, false,
                                         &parts[i].p, &len, &count),
                     0);
        parts[i].n = len;
    }
    for (int type = 0; type < 2; type++) {
        fo_msg m;
        memset(&m, 0, sizeof(m));
        m.type = type ? FO_MSG_DIFF : FO_MSG_PUSH;
        m.model = "p";
        m.model_len = 1;
        m.batch = (fo_batch){11, 2, &all[1]};
        fo_buf_init(&want, 0);
        cr_assert_eq(fo_wire_encode(&m, &want), 0);
        m.batch.items = NULL;
        m.ext_parts = parts;
        m.n_ext_parts = 2;
        fo_buf_init(&got, 0);
        cr_assert_eq(fo_wire_encode(&m, &got), 0);
        cr_assert_eq(got.len, want.len);
        cr_assert_eq(memcmp(fo_buf_data(&got), fo_buf_data(&want), got.len), 0);
        fo_buf_destroy(&want);
        fo_buf_destroy(&got);
    }
    fo_buf_destroy(&enc[0]);
    fo_buf_destroy(&enc[1]);
    fo_arena_destroy(&a);
}
