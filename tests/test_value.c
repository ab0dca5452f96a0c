#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "proto/value.h"

Test(value, numeric_keys_are_canonical_decimals)
{
    fo_arena a;
    uint64_t n;
    char buf[20];
    size_t len;

    fo_arena_init(&a, 0);
    cr_assert(fo_key_is_num(fo_key_new_cstr(&a, "0"), &n));
    cr_assert_eq(n, 0);
    cr_assert(fo_key_is_num(fo_key_new_cstr(&a, "9007199254740991"), &n));
    cr_assert_eq(n, 9007199254740991ull);
    /* Leading zeros, signs, 19+ digits and empty strings stay strings. */
    cr_assert_not(fo_key_is_num(fo_key_new_cstr(&a, "01"), NULL));
    cr_assert_not(fo_key_is_num(fo_key_new_cstr(&a, "-1"), NULL));
    cr_assert_not(fo_key_is_num(fo_key_new_cstr(&a, "1234567890123456789"), NULL));
    cr_assert_not(fo_key_is_num(fo_key_new_cstr(&a, ""), NULL));
    cr_assert_str_eq(fo_key_str(fo_key_new_cstr(&a, "01"), buf, &len), "01");
    cr_assert_str_eq(fo_key_str(fo_key_from_u64(1234), buf, &len), "1234");
    cr_assert_eq(len, 4);
    fo_arena_destroy(&a);
}

Test(value, keys_compare_across_arenas)
{
    fo_arena a, b;

    fo_arena_init(&a, 0);
    fo_arena_init(&b, 0);
    cr_assert(fo_key_eq(fo_key_new_cstr(&a, "title"), fo_key_new_cstr(&b, "title")));
    cr_assert_not(fo_key_eq(fo_key_new_cstr(&a, "title"), fo_key_new_cstr(&b, "titl")));
    cr_assert(fo_key_eq(fo_key_new_cstr(&a, "42"), fo_key_from_u64(42)));
    cr_assert_not(fo_key_eq(fo_key_new_cstr(&a, "042"), fo_key_from_u64(42)));
    cr_assert_eq(fo_key_hash(fo_key_new_cstr(&a, "x")), fo_key_hash(fo_key_new_cstr(&b, "x")));
    fo_arena_destroy(&a);
    fo_arena_destroy(&b);
}

Test(value, strings_inline_and_heap)
{
    fo_arena a;
    bool ok = true;
    size_t len;
    fo_value s, l;
    const char *p;

    fo_arena_init(&a, 0);
    cr_assert_eq(sizeof(fo_value), 16);
    s = fo_value_str(&a, "fourteen bytes", 14, &ok);
    l = fo_value_str(&a, "fifteen bytes!!", 15, &ok);
    cr_assert(ok);
    p = fo_value_strbuf(&s, &len);
    cr_assert_eq(len, 14);
    cr_assert_eq(memcmp(p, "fourteen bytes", 14), 0);
    cr_assert_eq(a.used, 16); /* only the long one took arena space */
    p = fo_value_strbuf(&l, &len);
    cr_assert_eq(len, 15);
    cr_assert_str_eq(p, "fifteen bytes!!");
    fo_arena_destroy(&a);
}

Test(value, map_keeps_order_and_stays_consistent_at_100k_keys)
{
    fo_arena a;
    bool ok = true;
    fo_value mv;
    fo_map *m;
    uint32_t i, seen = 0;
    uint64_t n, prev = 0;

    fo_arena_init(&a, 0);
    mv = fo_value_map(&a, 0, &ok);
    m = fo_value_as_map(&mv);
    for (i = 0; i < 100000; i++) {
        fo_value v = fo_value_int(i);
        cr_assert_eq(fo_map_set(m, &a, fo_key_from_u64((uint64_t)i * 7919), &v, NULL), 0);
    }
    cr_assert_eq(fo_map_count(m), 100000);
    for (i = 0; i < 100000; i += 2)
        cr_assert_gt(fo_map_del(m, &a, fo_key_from_u64((uint64_t)i * 7919)), 0);
    cr_assert_eq(fo_map_count(m), 50000);
    for (i = 0; i < 100000; i++) {
        fo_value *v = fo_map_get(m, fo_key_from_u64((uint64_t)i * 7919));
        if (i % 2)
            cr_assert(v && v->h.as.i == i);
        else
            cr_assert_null(v);
    }
    /* Re-inserting after deletions squeezes the tombstones; order is insertion order. */
    for (i = 0; i < 100000; i += 2) {
        fo_value v = fo_value_int(-1);
        cr_assert_eq(fo_map_set(m, &a, fo_key_from_u64((uint64_t)i * 7919), &v, NULL), 0);
    }
    for (i = 0; i < fo_map_len(m); i++) {
        if (!fo_map_entries(m)[i].key)
            continue;
        fo_key_is_num(fo_map_entries(m)[i].key, &n);
        if (seen < 50000)
            cr_assert(seen == 0 || n > prev);
        prev = n;
        seen++;
    }
    cr_assert_eq(seen, 100000);
    fo_arena_destroy(&a);
}

Test(value, copy_and_unordered_equality)
{
    fo_arena a, b;
    bool ok = true;
    fo_value m1, m2, c, inner, s;

    fo_arena_init(&a, 0);
    fo_arena_init(&b, 0);
    m1 = fo_value_map(&a, 0, &ok);
    m2 = fo_value_map(&a, 0, &ok);
    inner = fo_value_array(&a, 2, &ok);
    inner.h.as.items[0] = fo_value_float(1.5);
    inner.h.as.items[1] = fo_value_str(&a, "a string longer than inline", 27, &ok);
    s = fo_value_bool(true);
    fo_map_set(fo_value_as_map(&m1), &a, fo_key_new_cstr(&a, "x"), &inner, NULL);
    fo_map_set(fo_value_as_map(&m1), &a, fo_key_new_cstr(&a, "y"), &s, NULL);
    fo_map_set(fo_value_as_map(&m2), &a, fo_key_new_cstr(&a, "y"), &s, NULL);
    fo_map_set(fo_value_as_map(&m2), &a, fo_key_new_cstr(&a, "x"), &inner, NULL);
    cr_assert(fo_value_eq(&m1, &m2));
    cr_assert_eq(fo_value_copy(&b, &m1, &c, NULL, NULL), 0);
    fo_arena_destroy(&a); /* the copy must not point into a */
    fo_value t = fo_value_bool(true);
    cr_assert(fo_value_eq(fo_map_get(fo_value_as_map(&c), fo_key_new_cstr(&b, "y")), &t));
    cr_assert_eq(fo_value_depth(&c), 2);
    fo_value one = fo_value_int(1), onef = fo_value_float(1.0);
    cr_assert_not(fo_value_eq(&one, &onef));
    fo_arena_destroy(&b);
}

/* ---- the map layout: inline small maps, external big ones ------------------------------- */

/* A model of a map: the live keys in insertion order. */
typedef struct model {
    uint64_t keys[4096];
    uint32_t n;
} model;

static void model_add(model *md, uint64_t k)
{
    md->keys[md->n++] = k;
}

static void model_del(model *md, uint64_t k)
{
    uint32_t i;

    for (i = 0; i < md->n && md->keys[i] != k; i++)
        ;
    cr_assert_lt(i, md->n);
    memmove(&md->keys[i], &md->keys[i + 1], (md->n - i - 1) * sizeof(md->keys[0]));
    md->n--;
}

/* The map holds exactly the model's keys, in its order, each with value (key * 3). */
static void check_model(const fo_map *m, const model *md)
{
    const fo_entry *e = fo_map_entries(m);
    uint32_t i, j = 0;

    cr_assert_eq(fo_map_count(m), md->n);
    for (i = 0; i < fo_map_len(m); i++) {
        uint64_t n;
        if (!e[i].key)
            continue;
        cr_assert_lt(j, md->n);
        cr_assert(fo_key_is_num(e[i].key, &n));
        cr_assert_eq(n, md->keys[j], "entry %u: %llu, expected %llu", j,
                     (unsigned long long)n, (unsigned long long)md->keys[j]);
        j++;
    }
    cr_assert_eq(j, md->n);
    for (i = 0; i < md->n; i++) {
        fo_value *v = fo_map_get(m, fo_key_from_u64(md->keys[i]));
        cr_assert_not_null(v, "key %llu lost", (unsigned long long)md->keys[i]);
        cr_assert_eq(v->h.as.i, (int64_t)(md->keys[i] * 3));
    }
}

static void add_key(fo_map *m, fo_arena *a, model *md, uint64_t k)
{
    fo_value v = fo_value_int((int64_t)(k * 3));

    cr_assert_eq(fo_map_add(m, a, fo_key_from_u64(k), &v, NULL), 0);
    model_add(md, k);
}

Test(value, small_maps_are_an_8_byte_header_and_their_entries)
{
    fo_arena a;
    bool ok = true;
    size_t before;
    fo_value mv;
    uint32_t cap;

    fo_arena_init(&a, 0);
    cr_assert_eq(sizeof(fo_map), 8);
    cr_assert_eq(sizeof(fo_entry), 24);
    for (cap = 1; cap <= FO_MAP_LINEAR; cap++) {
        before = a.used;
        mv = fo_value_map(&a, cap, &ok);
        cr_assert(ok);
        cr_assert_eq(a.used - before, 8 + cap * sizeof(fo_entry));
        cr_assert_eq(fo_map_bytes(fo_value_as_map(&mv)), 8 + cap * sizeof(fo_entry));
        cr_assert_eq(fo_map_new_bytes(cap, false), 8 + cap * sizeof(fo_entry));
    }
    /* An empty map keeps room for one entry, so that it can grow in place. */
    before = a.used;
    mv = fo_value_map(&a, 0, &ok);
    cr_assert_eq(a.used - before, 8 + sizeof(fo_entry));
    cr_assert_eq(fo_map_count(fo_value_as_map(&mv)), 0);
    cr_assert_eq(fo_map_len(fo_value_as_map(&mv)), 0);
    /* Past FO_MAP_LINEAR: a header, the fo_map_ext and a block with the index. */
    before = a.used;
    mv = fo_value_map(&a, FO_MAP_LINEAR + 1, &ok);
    cr_assert_eq(a.used - before, fo_map_new_bytes(FO_MAP_LINEAR + 1, false));
    cr_assert_gt(a.used - before, 8 + (FO_MAP_LINEAR + 1) * sizeof(fo_entry));
    fo_arena_destroy(&a);
}

/* Every start capacity, grown key by key past the inline room, past FO_MAP_LINEAR and onto
 * the heap, then shrunk by deletes and grown again: order, lookups and counts hold at every
 * step, and heap blocks are accounted for and all freed. */
static void grow_shrink_regrow(bool on_heap, uint32_t start_cap, uint32_t n)
{
    static model md;
    fo_arena a;
    bool ok = true;
    fo_value mv;
    fo_map *m;
    uint32_t i;

    memset(&md, 0, sizeof(md));
    fo_arena_init(&a, 0);
    a.big_blocks_on_heap = on_heap;
    mv = fo_value_map(&a, start_cap, &ok);
    cr_assert(ok);
    m = fo_value_as_map(&mv);
    for (i = 0; i < n; i++) {
        add_key(m, &a, &md, (uint64_t)i * 7 + 1);
        if (i < 40 || i % 97 == 0)
            check_model(m, &md);
    }
    check_model(m, &md);
    if (on_heap && n >= 1000)
        cr_assert_gt(a.heap_bytes, 0);
    /* Delete all but every fifth key, from the back, then from the front. */
    for (i = n; i-- > 0;)
        if (i % 5 && i % 2) {
            cr_assert_gt(fo_map_del(m, &a, fo_key_from_u64((uint64_t)i * 7 + 1)), 0);
            model_del(&md, (uint64_t)i * 7 + 1);
        }
    check_model(m, &md);
    for (i = 0; i < n; i++)
        if (i % 5 && !(i % 2)) {
            cr_assert_gt(fo_map_del(m, &a, fo_key_from_u64((uint64_t)i * 7 + 1)), 0);
            model_del(&md, (uint64_t)i * 7 + 1);
        }
    check_model(m, &md);
    cr_assert_eq(fo_map_del(m, &a, fo_key_from_u64(2)), 0); /* absent */
    /* Regrowing reuses the squeezed room; deleted keys come back at the end. */
    for (i = 0; i < n; i++) {
        if (i % 5 && i % 3 == 0)
            add_key(m, &a, &md, (uint64_t)i * 7 + 1);
        if (i < 40)
            check_model(m, &md);
    }
    for (i = 0; i < n / 2; i++)
        add_key(m, &a, &md, (uint64_t)(n + i) * 7 + 1);
    check_model(m, &md);
    fo_value_release(&a, &mv);
    cr_assert_eq(a.heap_bytes, 0);
    fo_arena_destroy(&a);
}

Test(value, maps_grow_from_inline_to_external_and_back_through_deletes)
{
    uint32_t cap, n;

    for (cap = 0; cap <= FO_MAP_LINEAR + 2; cap++)
        for (n = 0; n <= 3 * FO_MAP_LINEAR; n++)
            grow_shrink_regrow(false, cap, n);
    grow_shrink_regrow(false, 3, 2000);
    grow_shrink_regrow(true, 0, 2000);
    grow_shrink_regrow(true, 3, 2730);
    grow_shrink_regrow(true, 200, 3000);
}

Test(value, inline_map_reuses_deleted_room_before_growing)
{
    fo_arena a;
    bool ok = true;
    fo_value mv, v = fo_value_int(0);
    fo_map *m;
    size_t used;

    fo_arena_init(&a, 0);
    mv = fo_value_map(&a, 3, &ok);
    m = fo_value_as_map(&mv);
    cr_assert_eq(fo_map_add(m, &a, fo_key_from_u64(1), &v, NULL), 0);
    cr_assert_eq(fo_map_add(m, &a, fo_key_from_u64(2), &v, NULL), 0);
    cr_assert_eq(fo_map_add(m, &a, fo_key_from_u64(3), &v, NULL), 0);
    fo_map_del(m, &a, fo_key_from_u64(2));
    used = a.used;
    cr_assert_eq(fo_map_add(m, &a, fo_key_from_u64(4), &v, NULL), 0);
    cr_assert_eq(a.used, used); /* squeezed in place: no block of its own */
    cr_assert_eq(fo_map_len(m), 3);
    cr_assert(fo_key_eq(fo_map_entries(m)[1].key, fo_key_from_u64(3)));
    cr_assert(fo_key_eq(fo_map_entries(m)[2].key, fo_key_from_u64(4)));
    cr_assert_eq(fo_map_add(m, &a, fo_key_from_u64(5), &v, NULL), 0); /* now it grows */
    cr_assert_gt(a.used, used);
    cr_assert_eq(fo_map_count(m), 4);
    cr_assert_not_null(fo_map_get(m, fo_key_from_u64(1)));
    cr_assert_null(fo_map_get(m, fo_key_from_u64(2)));
    fo_arena_destroy(&a);
}

Test(value, string_and_numeric_keys_mix_in_small_and_big_maps)
{
    fo_arena a, other;
    bool ok = true;
    char buf[32];
    uint32_t n, i;

    fo_arena_init(&a, 0);
    fo_arena_init(&other, 0);
    for (n = 1; n <= 40; n += 13) {
        fo_value mv = fo_value_map(&a, 2, &ok);
        fo_map *m = fo_value_as_map(&mv);

        for (i = 0; i < n; i++) {
            fo_value v = fo_value_int(i);
            /* "k<i>", the canonical decimal i (stored in the key) and "0<i>" (a string). */
            snprintf(buf, sizeof(buf), "k%u", i);
            cr_assert_eq(fo_map_set(m, &a, fo_key_new_cstr(&a, buf), &v, NULL), 0);
            snprintf(buf, sizeof(buf), "%u", i);
            cr_assert_eq(fo_map_set(m, &a, fo_key_new_cstr(&a, buf), &v, NULL), 0);
            snprintf(buf, sizeof(buf), "0%u", i);
            cr_assert_eq(fo_map_set(m, &a, fo_key_new_cstr(&a, buf), &v, NULL), 0);
        }
        cr_assert_eq(fo_map_count(m), 3 * n);
        for (i = 0; i < n; i++) {
            fo_value *v;
            /* Keys from another arena: equal by content, not by pointer. */
            snprintf(buf, sizeof(buf), "k%u", i);
            cr_assert((v = fo_map_get(m, fo_key_new_cstr(&other, buf))) && v->h.as.i == i);
            cr_assert((v = fo_map_get(m, fo_key_from_u64(i))) && v->h.as.i == i);
            snprintf(buf, sizeof(buf), "0%u", i);
            cr_assert((v = fo_map_get(m, fo_key_new_cstr(&other, buf))) && v->h.as.i == i);
        }
        snprintf(buf, sizeof(buf), "k%u", n);
        cr_assert_null(fo_map_get(m, fo_key_new_cstr(&other, buf)));
    }
    fo_arena_destroy(&a);
    fo_arena_destroy(&other);
}

Test(value, copy_of_a_grown_map_is_compact_and_equal)
{
    fo_arena a, b;
    bool ok = true;
    fo_value mv, c;
    fo_map *m;
    uint32_t i;

    fo_arena_init(&a, 0);
    fo_arena_init(&b, 0);
    mv = fo_value_map(&a, 0, &ok);
    m = fo_value_as_map(&mv);
    for (i = 0; i < 100; i++) {
        fo_value v = fo_value_int(i);
        cr_assert_eq(fo_map_add(m, &a, fo_key_from_u64(i), &v, NULL), 0);
    }
    for (i = 0; i < 97; i++)
        fo_map_del(m, &a, fo_key_from_u64(i));
    cr_assert_gt(fo_map_bytes(m), 8 + 3 * sizeof(fo_entry)); /* still external */
    cr_assert_eq(fo_value_copy(&b, &mv, &c, NULL, NULL), 0);
    /* Three live entries: the copy is an inline map again. */
    cr_assert_eq(fo_map_bytes(fo_value_as_map(&c)), 8 + 3 * sizeof(fo_entry));
    cr_assert_eq(fo_value_copy_size(&mv, false), 8 + 3 * sizeof(fo_entry));
    cr_assert(fo_value_eq(&mv, &c));
    cr_assert(fo_key_eq(fo_map_entries(fo_value_as_map(&c))[0].key, fo_key_from_u64(97)));
    fo_arena_destroy(&a);
    fo_arena_destroy(&b);
}
