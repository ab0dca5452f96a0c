/* support.h - small helpers shared by the Criterion tests: build commands and values from
 * JSON text and compare trees against JSON. Test-only; header-only on purpose. */
#ifndef FO_TEST_SUPPORT_H
#define FO_TEST_SUPPORT_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/json.h"

static inline fo_value tj_val(fo_arena *a, const char *json)
{
    fo_value v;
    fo_err_info err;
    int rc = fo_json_read_value(json, strlen(json), 64, a, &v, &err);

    cr_assert_eq(rc, 0, "bad test JSON %s: %s", json, err.msg);
    return v;
}

static inline fo_value *tj_valp(fo_arena *a, const char *json)
{
    fo_value *p = fo_arena_alloc(a, sizeof(*p));
    *p = tj_val(a, json);
    return p;
}

static inline fo_command tj_cmd(fo_arena *a, const char *json)
{
    fo_command c;
    fo_err_info err;
    int rc = fo_json_read_command(json, strlen(json), a, &c, &err);

    cr_assert_eq(rc, 0, "bad test command %s: %s %s", json, err.path, err.msg);
    return c;
}

static inline fo_batch tj_batch(fo_arena *a, const char *json)
{
    fo_batch b;
    fo_err_info err;
    int rc = fo_json_read_batch(json, strlen(json), a, &b, &err);

    cr_assert_eq(rc, 0, "bad test batch %s: %s %s", json, err.path, err.msg);
    return b;
}

/* Canonical JSON (sorted keys), malloc'd. */
static inline char *tj_dump(const fo_value *v)
{
    fo_buf b;
    char nul = 0;

    fo_buf_init(&b, 0);
    cr_assert_eq(fo_json_write_value(v, FO_JSON_SORT_KEYS, &b), 0);
    fo_buf_append(&b, &nul, 1);
    return fo_buf_release(&b);
}

static inline char *tj_dump_result(const fo_apply_result *r)
{
    fo_buf b;
    char nul = 0;

    fo_buf_init(&b, 0);
    cr_assert_eq(fo_json_write_result(r, FO_JSON_SORT_KEYS, &b), 0);
    fo_buf_append(&b, &nul, 1);
    return fo_buf_release(&b);
}

#define tj_assert_value(v, json)                                                             \
    do {                                                                                     \
        fo_arena ta_;                                                                        \
        fo_arena_init(&ta_, 0);                                                              \
        fo_value want_ = tj_val(&ta_, json);                                                 \
        if (!fo_value_eq((v), &want_)) {                                                     \
            char *got_ = tj_dump(v);                                                         \
            cr_log_error("got  %s", got_);                                                   \
            cr_log_error("want %s", json);                                                   \
            free(got_);                                                                      \
            fo_arena_destroy(&ta_);                                                          \
            cr_assert_fail("value differs");                                                 \
        }                                                                                    \
        fo_arena_destroy(&ta_);                                                              \
    } while (0)

/* Compares an apply result with the JSON of the reference's ApplyResult (unordered maps). */
#define tj_assert_result(r, json)                                                            \
    do {                                                                                     \
        fo_arena ta_;                                                                        \
        fo_arena_init(&ta_, 0);                                                              \
        char *got_ = tj_dump_result(r);                                                      \
        fo_value g_ = tj_val(&ta_, got_), w_ = tj_val(&ta_, json);                           \
        if (!fo_value_eq(&g_, &w_)) {                                                        \
            cr_log_error("got  %s", got_);                                                   \
            cr_log_error("want %s", json);                                                   \
            free(got_);                                                                      \
            fo_arena_destroy(&ta_);                                                          \
            cr_assert_fail("result differs");                                                \
        }                                                                                    \
        free(got_);                                                                          \
        fo_arena_destroy(&ta_);                                                              \
    } while (0)

#endif
