/* fuzz_route.c - libFuzzer target for the HTTP routes (hub/route.h; built with clang by
 * tests/fuzz/CMakeLists.txt with hub/route.c, run by the ctest `fuzz_route`).
 *
 * Input: lines. The first is the decoded request path (a C string, as lws hands it: a NUL
 * in it ends it), each further line one query argument fragment ("name=value", NULs and all,
 * as lws_hdr_copy_fragment copies it). Invariants checked, each aborting so that libFuzzer
 * keeps the input:
 *   - routing is deterministic: the same input gives the same route twice;
 *   - an error always has a 400 or 404 status and a message, a success neither;
 *   - a model name handed out passes fo_model_name_valid, and every kind that serves a
 *     model has one;
 *   - a number handed out is exactly the decimal text given: every fragment "at=", "from=",
 *     "to=", "limit=" whose value fo_route_u64 accepts is digits only and re-renders with
 *     %llu to the same text less its leading zeros; the routes' numbers come from those;
 *   - the canonical request rebuilt from a served route (path from kind and model or file
 *     path; arguments at, from, to, limit, q, token in that order) routes to the same route;
 *   - a file path is not empty, has no leading '/', no empty segment, no ".." anywhere (so
 *     no ".." segment whether '/' or '\' separates them), fits FO_ROUTE_PATH_MAX, is the
 *     request path less its '/' (plus "index.html"), and never climbs above the directory. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 64

static void die(const char *what)
{
    fprintf(stderr, "fuzz_route: %s\n", what);
    abort();
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_route(const fo_route *a, const fo_route *b)
{
    return a->kind == b->kind && a->status == b->status && str_eq(a->error, b->error) &&
           strcmp(a->model, b->model) == 0 && a->at == b->at && a->from == b->from &&
           a->to == b->to && a->limit == b->limit && a->has_at == b->has_at &&
           a->has_from == b->has_from && a->has_to == b->has_to && a->has_limit == b->has_limit &&
           str_eq(a->q, b->q) && str_eq(a->token, b->token) && strcmp(a->path, b->path) == 0;
}

static bool model_kind(fo_route_kind k)
{
    return k == FO_ROUTE_MODEL_GET || k == FO_ROUTE_MODEL_HISTORY || k == FO_ROUTE_MODEL_AUDIT ||
           k == FO_ROUTE_MODEL_OTHER || k == FO_ROUTE_CONSOLE_MODEL;
}

/* fo_route_u64 on its own: digits only, and the value rendered back is the text. */
static void check_number(const char *s)
{
    char text[32];
    uint64_t v;

    if (!fo_route_u64(s, &v))
        return;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            die("a number with a byte that is not a digit");
    while (s[0] == '0' && s[1])
        s++;
    snprintf(text, sizeof(text), "%llu", (unsigned long long)v);
    if (strcmp(text, s) != 0)
        die("a number that is not its decimal text");
}

/* The value of the first fragment that starts with name, looked up without the buffer
 * limits: a route's number must be one of the fragments' numbers. */
static bool number_given(const fo_route_arg *args, size_t n, const char *name, uint64_t v)
{
    size_t sl = strlen(name);
    uint64_t w;

    for (size_t i = 0; i < n; i++)
        if (strncmp(args[i].s, name, sl) == 0 && fo_route_u64(args[i].s + sl, &w) && w == v)
            return true;
    return false;
}

static void check_path(const fo_route *rt, const char *uri)
{
    static char expect[FO_ROUTE_PATH_MAX + 16];
    const char *p = rt->path, *want;
    size_t len = strlen(p), wlen;
    int depth = 0;

    if (rt->status) {
        if (p[0])
            die("a refused file path handed out");
        return;
    }
    if (uri[0] != '/')
        die("a file path from a request path without its '/'");
    want = rt->kind == FO_ROUTE_CONSOLE_FILE ? uri + 9 : uri + 1;
    wlen = strlen(want);
    if (!len || len >= FO_ROUTE_PATH_MAX || p[0] == '/' || strstr(p, "..") || strstr(p, "//"))
        die("a file path that could leave its directory");
    /* the request path less its '/', "index.html" after a trailing '/' */
    snprintf(expect, sizeof(expect), "%s%s", want,
             !wlen || want[wlen - 1] == '/' ? "index.html" : "");
    if (strcmp(p, expect) != 0)
        die("a file path that is not the request's");
    /* resolved lexically, with '\' as a separator too, it never goes above the directory */
    for (const char *s = p; *s;) {
        size_t seg = strcspn(s, "/\\");
        if (seg == 2 && s[0] == '.' && s[1] == '.' && --depth < 0)
            die("a file path above its directory");
        if (seg && !(seg == 1 && s[0] == '.') && !(seg == 2 && s[0] == '.' && s[1] == '.'))
            depth++;
        s += seg + (s[seg] != '\0');
    }
}

/* The canonical request for a served route, routed again. */
static void check_rebuild(const fo_route *rt)
{
    static char uri[FO_ROUTE_PATH_MAX + 300];
    char nums[4][40], qa[300], ta[2100];
    fo_route_arg args[6];
    fo_route again;
    size_t n = 0;

    switch (rt->kind) {
    case FO_ROUTE_HEALTHZ: snprintf(uri, sizeof(uri), "/healthz"); break;
    case FO_ROUTE_METRICS: snprintf(uri, sizeof(uri), "/metrics"); break;
    case FO_ROUTE_MODEL_GET: snprintf(uri, sizeof(uri), "/v1/models/%s", rt->model); break;
    case FO_ROUTE_MODEL_HISTORY:
        snprintf(uri, sizeof(uri), "/v1/models/%s/history", rt->model);
        break;
    case FO_ROUTE_MODEL_AUDIT: snprintf(uri, sizeof(uri), "/v1/models/%s/audit", rt->model); break;
    case FO_ROUTE_CONSOLE_MODELS: snprintf(uri, sizeof(uri), "/v1/console/models"); break;
    case FO_ROUTE_CONSOLE_MODEL:
        snprintf(uri, sizeof(uri), "/v1/console/models/%s", rt->model);
        break;
    case FO_ROUTE_CONSOLE_REDIRECT: snprintf(uri, sizeof(uri), "/console"); break;
    case FO_ROUTE_CONSOLE_FILE: snprintf(uri, sizeof(uri), "/console/%s", rt->path); break;
    case FO_ROUTE_STATIC_FILE: snprintf(uri, sizeof(uri), "/%s", rt->path); break;
    default: die("a served route of an unknown kind");
    }
#define NUM(has, name, v)                                                                          \
    if (has) {                                                                                     \
        snprintf(nums[n], sizeof(nums[n]), "%s%llu", name, (unsigned long long)(v));               \
        args[n].s = nums[n];                                                                       \
        args[n].len = strlen(nums[n]);                                                             \
        n++;                                                                                       \
    }
    NUM(rt->has_at, "at=", rt->at)
    NUM(rt->has_from, "from=", rt->from)
    NUM(rt->has_to, "to=", rt->to)
    NUM(rt->has_limit, "limit=", rt->limit)
    if (rt->q) {
        snprintf(qa, sizeof(qa), "q=%s", rt->q);
        args[n++] = (fo_route_arg){qa, strlen(qa)};
    }
    if (rt->token) {
        snprintf(ta, sizeof(ta), "token=%s", rt->token);
        args[n++] = (fo_route_arg){ta, strlen(ta)};
    }
    fo_route_parse(uri, args, n, &again);
    if (!same_route(rt, &again))
        die("the canonical request does not route back to the same route");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fo_route rt, rt2;
    char *copy = malloc(size + 1), *uri, *p, *end;
    fo_route_arg args[MAX_ARGS];
    size_t n = 0;

    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    end = copy + size;
    /* lines, each NUL-terminated in place; the fragments keep their length */
    uri = copy;
    p = memchr(copy, '\n', size);
    if (p) {
        *p++ = '\0';
        while (p <= end && n < MAX_ARGS) {
            char *nl = memchr(p, '\n', (size_t)(end - p));
            char *e = nl ? nl : end;
            *e = '\0';
            args[n].s = p;
            args[n].len = (size_t)(e - p);
            n++;
            if (!nl)
                break;
            p = nl + 1;
        }
    }

    fo_route_parse(uri, args, n, &rt);
    fo_route_parse(uri, args, n, &rt2);
    if (!same_route(&rt, &rt2))
        die("the same request routed two ways");
    if (!rt.kind || rt.kind > FO_ROUTE_STATIC_FILE)
        die("no route kind");
    if (rt.status ? !(rt.status == 400 || rt.status == 404) || !rt.error || !rt.error[0]
                  : rt.error != NULL)
        die("an error without a status and a message, or a success with one");
    if (rt.model[0] && !fo_model_name_valid(rt.model, strlen(rt.model)))
        die("an invalid model name handed out");
    if (model_kind(rt.kind) && !rt.status && !rt.model[0])
        die("a model route without a model");
    for (size_t i = 0; i < n; i++) {
        const char *eq = memchr(args[i].s, '=', args[i].len);
        if (eq)
            check_number(eq + 1);
    }
    check_number(uri);
    if ((rt.has_at && !number_given(args, n, "at=", rt.at)) ||
        (rt.has_from && !number_given(args, n, "from=", rt.from)) ||
        (rt.has_to && !number_given(args, n, "to=", rt.to)) ||
        (rt.has_limit && !number_given(args, n, "limit=", rt.limit)))
        die("a number that was not given");
    if (rt.kind == FO_ROUTE_STATIC_FILE || rt.kind == FO_ROUTE_CONSOLE_FILE)
        check_path(&rt, uri);
    else if (rt.path[0])
        die("a file path on a route that serves no file");
    if (!rt.status)
        check_rebuild(&rt);
    free(copy);
    return 0;
}
