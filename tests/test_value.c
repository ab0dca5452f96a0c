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
