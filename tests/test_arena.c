#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "proto/arena.h"

Test(arena, allocations_are_aligned_and_distinct)
{
    fo_arena a;
    char *p[100];
    int i;

    fo_arena_init(&a, 64);
    for (i = 0; i < 100; i++) {
        p[i] = fo_arena_alloc(&a, (size_t)i + 1);
        cr_assert_not_null(p[i]);
        cr_assert_eq((uintptr_t)p[i] % 8, 0);
        memset(p[i], i, (size_t)i + 1);
    }
    for (i = 0; i < 100; i++)
        cr_assert_eq((unsigned char)p[i][i], (unsigned char)i);
    cr_assert_geq(a.reserved, a.used);
    fo_arena_destroy(&a);
}

Test(arena, big_allocations_get_their_own_chunk)
{
    fo_arena a;
    char *small, *big, *after;

    fo_arena_init(&a, 4096);
    small = fo_arena_alloc(&a, 16);
    big = fo_arena_alloc(&a, 1 << 20);
    after = fo_arena_alloc(&a, 16);
    cr_assert_not_null(big);
    memset(big, 1, 1 << 20);
    /* The small allocations keep using the first chunk. */
    cr_assert_eq(after, small + 16);
    fo_arena_destroy(&a);
}

Test(arena, reset_reuses_the_newest_chunk)
{
    fo_arena a;
    int i;

    fo_arena_init(&a, 128);
    for (i = 0; i < 50; i++)
        fo_arena_alloc(&a, 100);
    fo_arena_reset(&a);
    cr_assert_eq(a.used, 0);
    cr_assert_not_null(fo_arena_alloc(&a, 100));
    cr_assert_str_eq(fo_arena_strndup(&a, "hello", 3), "hel");
    fo_arena_destroy(&a);
}

Test(arena, chunks_stop_doubling_at_max_chunk)
{
    fo_arena a;
    int i;

    fo_arena_init(&a, 4096);
    a.max_chunk = 16384;
    for (i = 0; i < 64; i++)
        cr_assert_not_null(fo_arena_alloc(&a, 1000));
    /* 4 + 8 + 16 + 16 + ... KiB: never a chunk past 16 KiB, so less than one of slack. */
    cr_assert_lt(a.reserved - a.used, 16384 + 4 * 64);
    cr_assert_eq(a.next_size, 16384);
    fo_arena_destroy(&a);

    /* A big first chunk is followed by chunks of max_chunk, not of its own size. */
    fo_arena_init(&a, 1 << 20);
    a.max_chunk = 65536;
    cr_assert_not_null(fo_arena_alloc(&a, 8));
    cr_assert_eq(a.next_size, 65536);
    fo_arena_destroy(&a);
}
