#include "hub/route.h"

#include <stdio.h>
#include <string.h>

static const char bad_model[] = "model: 1-200 bytes of [A-Za-z0-9._:-]";
static const char no_endpoint[] = "no such endpoint";
static const char not_found[] = "not found";

/* lws_get_urlarg_by_name(wsi, name, buf, cap): lws_hdr_copy_fragment fails on a fragment
 * that does not fit the buffer, and that failure also ends the search, so a long argument
 * hides the ones after it; kept so that routing stays what it was with those buffers. */
static const char *arg_get(const fo_route_arg *args, size_t n, const char *name, size_t cap)
{
    size_t sl = strlen(name);

    for (size_t i = 0; i < n; i++) {
        if (args[i].len >= cap)
            return NULL;
        if (strncmp(args[i].s, name, sl) == 0)
            return args[i].s + sl;
    }
    return NULL;
}

bool fo_route_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    /* Digits only: strtoull would also take " 7", "+7" and " -1" (as 2^64-1), and lws turns
     * a '+' of the query into a space. */
    if (!s || !*s)
        return false;
    for (i = 0; s[i]; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static void fail(fo_route *rt, int status, const char *error)
{
    rt->status = status;
    rt->error = error;
}

/* Looks up `name` and parses it into *v; false (with the route's 400) when it is there but
 * not a number. */
static bool num_arg(fo_route *rt, const fo_route_arg *args, size_t n, const char *name, size_t cap,
                    uint64_t *v, bool *has, const char *error)
{
    const char *s = arg_get(args, n, name, cap);

    if (!s)
        return true;
    if (!fo_route_u64(s, v)) {
        fail(rt, 400, error);
        return false;
    }
    *has = true;
    return true;
}

static void model_route(fo_route *rt, const char *rest, const fo_route_arg *args, size_t n)
{
    const char *slash = strchr(rest, '/');
    size_t nlen = slash ? (size_t)(slash - rest) : strlen(rest);

    if (!fo_model_name_valid(rest, nlen)) {
        rt->kind = FO_ROUTE_ERROR;
        fail(rt, 400, bad_model);
        return;
    }
    memcpy(rt->model, rest, nlen);
    rt->model[nlen] = '\0';
    if (!slash) {
        rt->kind = FO_ROUTE_MODEL_GET;
        num_arg(rt, args, n, "at=", 64, &rt->at, &rt->has_at, "at: expected an unsigned integer");
    } else if (strcmp(slash, "/history") == 0) {
        rt->kind = FO_ROUTE_MODEL_HISTORY;
        if (!num_arg(rt, args, n, "from=", 64, &rt->from, &rt->has_from,
                     "from: expected an unsigned integer"))
            return;
        if (!rt->has_from) {
            fail(rt, 400, "from: expected an unsigned integer");
            return;
        }
        num_arg(rt, args, n, "to=", 64, &rt->to, &rt->has_to, "to: expected an unsigned integer");
    } else if (strcmp(slash, "/audit") == 0 || strncmp(slash, "/audit?", 7) == 0) {
        /* "/audit?" too: a "%3F" in the path decodes to a '?' that does not start the query */
        rt->kind = FO_ROUTE_MODEL_AUDIT;
        num_arg(rt, args, n, "from=", 64, &rt->from, &rt->has_from,
                "from: expected an unsigned integer");
    } else {
        rt->kind = FO_ROUTE_MODEL_OTHER;
        fail(rt, 404, no_endpoint);
    }
}

static void console_route(fo_route *rt, const char *rest, const fo_route_arg *args, size_t n)
{
    if (strcmp(rest, "feed") == 0) {
        rt->kind = FO_ROUTE_CONSOLE_FEED;
        fail(rt, 400, "the feed is a WebSocket: ws://HOST:PORT/v1/console/feed");
    } else if (strcmp(rest, "models") == 0) {
        rt->kind = FO_ROUTE_CONSOLE_MODELS;
        rt->q = arg_get(args, n, "q=", 256);
        if (!num_arg(rt, args, n, "limit=", 32, &rt->limit, &rt->has_limit, "limit: 1 to 1000"))
            return;
        if (rt->has_limit && (rt->limit == 0 || rt->limit > 1000))
            fail(rt, 400, "limit: 1 to 1000");
    } else if (strncmp(rest, "models/", 7) == 0) {
        size_t len = strlen(rest + 7);
        rt->kind = FO_ROUTE_CONSOLE_MODEL;
        if (!fo_model_name_valid(rest + 7, len)) {
            fail(rt, 400, bad_model);
            return;
        }
        memcpy(rt->model, rest + 7, len + 1);
    } else {
        rt->kind = FO_ROUTE_CONSOLE_OTHER;
        fail(rt, 404, no_endpoint);
    }
}

/* `uri` is the path under the served directory and starts with '/'. lws folds "//", "/./"
 * and "/../" before the hub sees the path, so whatever ".." or empty segment is left is an
 * attempt, or a request no browser makes: 404, as the ".." rule always was. */
static void file_route(fo_route *rt, fo_route_kind kind, const char *uri)
{
    size_t len = strlen(uri);
    bool dir = len > 0 && uri[len - 1] == '/';

    rt->kind = kind;
    if (uri[0] != '/' || strstr(uri, "..") || strstr(uri, "//") ||
        (size_t)snprintf(rt->path, sizeof(rt->path), "%s%s", uri + 1, dir ? "index.html" : "") >=
            sizeof(rt->path)) {
        rt->path[0] = '\0';
        fail(rt, 404, not_found);
    }
}

void fo_route_parse(const char *uri, const fo_route_arg *args, size_t nargs, fo_route *out)
{
    fo_route *rt = out;

    memset(rt, 0, sizeof(*rt));
    rt->limit = 50;
    rt->token = arg_get(args, nargs, "token=", 2048);
    if (strcmp(uri, "/healthz") == 0)
        rt->kind = FO_ROUTE_HEALTHZ;
    else if (strcmp(uri, "/metrics") == 0)
        rt->kind = FO_ROUTE_METRICS;
    else if (strncmp(uri, "/v1/models/", 11) == 0)
        model_route(rt, uri + 11, args, nargs);
    else if (strncmp(uri, "/v1/console/", 12) == 0)
        console_route(rt, uri + 12, args, nargs);
    else if (strcmp(uri, "/console") == 0)
        rt->kind = FO_ROUTE_CONSOLE_REDIRECT;
    else if (strncmp(uri, "/console/", 9) == 0)
        file_route(rt, FO_ROUTE_CONSOLE_FILE, uri + 8);
    else
        file_route(rt, FO_ROUTE_STATIC_FILE, uri);
}
