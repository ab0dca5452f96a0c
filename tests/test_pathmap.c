#include "tests/support.h"

#include "proto/pathmap.h"

static fo_path P(fo_arena *a, int n, ...)
{
    va_list ap;
    fo_key *seg = fo_arena_alloc(a, (size_t)(n ? n : 1) * sizeof(fo_key));
    fo_path p = {seg, (uint32_t)n};
    int i;

    va_start(ap, n);
    for (i = 0; i < n; i++)
        seg[i] = fo_key_new_cstr(a, va_arg(ap, const char *));
    va_end(ap);
    return p;
}

static const char *J(fo_arena *a, fo_path p)
{
    return fo_path_join(a, p, NULL);
}

Test(pathmap, empty_mapper_maps_nothing)
{
    fo_arena a;
    fo_pathmap pm;
    fo_path out;

    fo_arena_init(&a, 0);
    fo_pathmap_init(&pm, &a);
    cr_assert_eq(fo_pathmap_get(&pm, P(&a, 2, "a", "b"), &out), 0);
    cr_assert(fo_pathmap_empty(&pm));
    fo_arena_destroy(&a);
}

Test(pathmap, longest_prefix_wins_and_is_remembered)
{
    fo_arena a;
    fo_pathmap pm;
    fo_path out;

    fo_arena_init(&a, 0);
    fo_pathmap_init(&pm, &a);
    fo_pathmap_put(&pm, P(&a, 1, "5"), P(&a, 1, "7"));
    fo_pathmap_put(&pm, P(&a, 2, "5", "1"), P(&a, 2, "7", "9"));
    cr_assert_eq(fo_pathmap_get(&pm, P(&a, 3, "5", "1", "x"), &out), 1);
    cr_assert_str_eq(J(&a, out), "7,9,x");
    cr_assert_eq(fo_pathmap_get(&pm, P(&a, 2, "5", "2"), &out), 1);
    cr_assert_str_eq(J(&a, out), "7,2");
    cr_assert_eq(fo_pathmap_get(&pm, P(&a, 2, "6", "5"), &out), 0);
    /* The two lookups were memoised: the mappings a master reports include them. */
    cr_assert_eq(pm.len, 4);
    cr_assert_str_eq(J(&a, pm.items[2].from), "5,1,x");
    cr_assert_str_eq(J(&a, pm.items[3].to), "7,2");
    fo_arena_destroy(&a);
}

Test(pathmap, put_replaces_and_load_seeds)
{
    fo_arena a;
    fo_pathmap pm, pm2;
    fo_path out;

    fo_arena_init(&a, 0);
    fo_pathmap_init(&pm, &a);
    fo_pathmap_put(&pm, P(&a, 1, "x"), P(&a, 1, "y"));
    fo_pathmap_put(&pm, P(&a, 1, "x"), P(&a, 1, "z"));
    cr_assert_eq(pm.len, 1);
    fo_pathmap_init(&pm2, &a);
    cr_assert_eq(fo_pathmap_load(&pm2, pm.items, pm.len), 0);
    cr_assert_eq(fo_pathmap_get(&pm2, P(&a, 1, "x"), &out), 1);
    cr_assert_str_eq(J(&a, out), "z");
    fo_arena_destroy(&a);
}

Test(pathmap, many_mappings_stay_fast)
{
    fo_arena a;
    fo_pathmap pm;
    fo_path out;
    uint32_t i;

    fo_arena_init(&a, 0);
    fo_pathmap_init(&pm, &a);
    for (i = 0; i < 50000; i++) {
        fo_key f = fo_key_from_u64(i), t = fo_key_from_u64(i + 1000000);
        fo_key *fs = fo_arena_memdup(&a, &f, sizeof(f)), *ts = fo_arena_memdup(&a, &t, sizeof(t));
        fo_path pf = {fs, 1}, pt = {ts, 1};
        cr_assert_eq(fo_pathmap_put(&pm, pf, pt), 0);
    }
    for (i = 0; i < 50000; i++) {
        fo_key k[2] = {fo_key_from_u64(i), fo_key_new_cstr(&a, "child")};
        fo_path p = {k, 2};
        uint64_t n;
        cr_assert_eq(fo_pathmap_get(&pm, p, &out), 1);
        cr_assert(fo_key_is_num(out.seg[0], &n));
        cr_assert_eq(n, i + 1000000);
    }
    fo_arena_destroy(&a);
}
