/* test_limits.c - hub/limits.h's pure parts: token buckets, and the sliding window of loop
 * turns that decides overload shedding. */
#include <criterion/criterion.h>

#include "hub/limits.h"

TestSuite(limits);

Test(limits, bucket_takes_its_burst_then_says_when)
{
    fo_bucket b = {0};

    for (int i = 0; i < 20; i++)
        cr_assert_eq(fo_bucket_take(&b, 10, 20, 1, 1000), 0, "take %d of a burst of 20", i);
    cr_assert_eq(fo_bucket_take(&b, 10, 20, 1, 1000), 101); /* one token: 100 ms at 10/s */
    cr_assert_eq(fo_bucket_take(&b, 10, 20, 1, 1100), 0);
    cr_assert_eq(fo_bucket_take(&b, 0, 0, 1e9, 1100), 0, "rate 0 is no limit");
}

Test(limits, one_slow_turn_is_no_overload)
{
    fo_lag_window w;

    fo_lag_window_init(&w, 200);
    cr_assert_eq(w.span_ms, 1000);
    for (uint64_t t = 10000; t < 10500; t += 5)
        fo_lag_window_add(&w, t, 1, false);
    fo_lag_window_add(&w, 11400, 900, true); /* a big cold load, or the machine stalled */
    cr_assert_not(fo_lag_window_overloaded(&w, 11400));
    fo_lag_window_add(&w, 11405, 1, false);
    cr_assert_not(fo_lag_window_overloaded(&w, 11405));
}

Test(limits, turns_slow_for_half_the_window_are_an_overload_that_passes)
{
    fo_lag_window w;
    uint32_t turns, slow;
    uint64_t slow_ms;

    fo_lag_window_init(&w, 200);
    fo_lag_window_add(&w, 20000, 250, true);
    cr_assert_not(fo_lag_window_overloaded(&w, 20000));
    fo_lag_window_add(&w, 20250, 250, true); /* 500 ms of 1000: not more than half */
    cr_assert_not(fo_lag_window_overloaded(&w, 20250));
    fo_lag_window_add(&w, 20251, 0, false);
    fo_lag_window_add(&w, 20510, 259, true);
    cr_assert(fo_lag_window_overloaded(&w, 20510));
    fo_lag_window_sum(&w, 20510, &turns, &slow, &slow_ms);
    cr_assert_eq(turns, 4);
    cr_assert_eq(slow, 3);
    cr_assert_eq(slow_ms, 759);
    /* quick turns after it do not hide it at once... */
    for (uint64_t t = 20511; t < 20800; t += 1)
        fo_lag_window_add(&w, t, 0, false);
    cr_assert(fo_lag_window_overloaded(&w, 20800));
    /* ...but once the slow turns' slots leave the window it is over, with or without turns */
    cr_assert_not(fo_lag_window_overloaded(&w, 21300));
    fo_lag_window_add(&w, 22000, 1, false);
    cr_assert_not(fo_lag_window_overloaded(&w, 22000));
    fo_lag_window_sum(&w, 22000, &turns, &slow, &slow_ms);
    cr_assert_eq(slow, 0);
}

Test(limits, a_long_threshold_gets_a_long_window)
{
    fo_lag_window w;

    fo_lag_window_init(&w, 1000);
    cr_assert_eq(w.span_ms, 3000);
    fo_lag_window_add(&w, 50000, 1200, true);
    fo_lag_window_add(&w, 51300, 1300, true); /* two turns, 2500 of 3000 ms */
    cr_assert(fo_lag_window_overloaded(&w, 51300));
}
