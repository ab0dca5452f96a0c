/* route.h - what an HTTP request to the hub asks for: its route, model name, numeric
 * arguments and file path, from the decoded path and query arguments. The pure half of
 * hub/http.c: no lws, no I/O, so that the tests and a fuzzer (tests/fuzz/fuzz_route.c)
 * reach it. http.c does the I/O: the 405 for other methods, tokens and rights, the store,
 * the files.
 *
 * Routes (GET):
 *   /healthz                              FO_ROUTE_HEALTHZ
 *   /metrics                              FO_ROUTE_METRICS
 *   /v1/models/NAME?at=N                  FO_ROUTE_MODEL_GET (at optional)
 *   /v1/models/NAME/history?from=N&to=N   FO_ROUTE_MODEL_HISTORY (from required)
 *   /v1/models/NAME/audit?from=N          FO_ROUTE_MODEL_AUDIT (from optional, default 0)
 *   /v1/console/models?q=TEXT&limit=N     FO_ROUTE_CONSOLE_MODELS (limit 1..1000, default 50)
 *   /v1/console/models/NAME               FO_ROUTE_CONSOLE_MODEL
 *   /console                              FO_ROUTE_CONSOLE_REDIRECT (to /console/)
 *   /console/PATH                         FO_ROUTE_CONSOLE_FILE, a file of --console-dir
 *   anything else                         FO_ROUTE_STATIC_FILE, a file of --static
 * Any route may carry ?token=JWT (the Authorization header, read by http.c, wins). */
#ifndef FO_ROUTE_H
#define FO_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/model_name.h"

/* One query argument as lws 4.1 hands it (lws_hdr_copy_fragment(WSI_TOKEN_HTTP_URI_ARGS, i)):
 * the query is split on unencoded '&' and ';' and each fragment url-decoded ('+' is a space;
 * an encoded '=' before the first literal one becomes '_'), so s is "name=value", len bytes,
 * NUL-terminated at s[len]. Borrowed: the route points into it. */
typedef struct fo_route_arg {
    const char *s;
    size_t len;
} fo_route_arg;

typedef enum fo_route_kind {
    FO_ROUTE_ERROR = 1, /* answer status/error at once (a bad /v1/models/ name) */
    FO_ROUTE_HEALTHZ,
    FO_ROUTE_METRICS,
    FO_ROUTE_MODEL_GET,
    FO_ROUTE_MODEL_HISTORY,
    FO_ROUTE_MODEL_AUDIT,
    FO_ROUTE_MODEL_OTHER,  /* /v1/models/NAME/unknown: always 404 */
    FO_ROUTE_CONSOLE_FEED, /* /v1/console/feed over HTTP: always 400 (it is a WebSocket) */
    FO_ROUTE_CONSOLE_MODELS,
    FO_ROUTE_CONSOLE_MODEL,
    FO_ROUTE_CONSOLE_OTHER, /* /v1/console/unknown: always 404 */
    FO_ROUTE_CONSOLE_REDIRECT,
    FO_ROUTE_CONSOLE_FILE,
    FO_ROUTE_STATIC_FILE,
} fo_route_kind;

/* Longest relative file path, with its NUL (PATH_MAX on Linux); longer ones are 404. */
#define FO_ROUTE_PATH_MAX 4096

typedef struct fo_route {
    fo_route_kind kind;
    /* 0; or the HTTP status (400, 404) to answer with `error` (a static text, the JSON error
     * message) instead of serving the route. Except for FO_ROUTE_ERROR the hub answers it
     * only after the route's own checks, as it always has: the read right on `model` for the
     * model kinds (so a client without rights gets 401/403, not a hint about its query),
     * console access for the console kinds, an installed console for CONSOLE_FILE; and for
     * MODEL_AUDIT after the shutting-down check. NULL when status is 0. */
    int status;
    const char *error;
    /* Model kinds and CONSOLE_MODEL: the model name, valid (model_name.h) unless status is
     * set; "" for the other kinds. */
    char model[FO_MODEL_NAME_MAX + 1];
    /* The numeric arguments of the route's kind, and whether each was given. Only plain
     * decimal digits are numbers (no sign, no space, no overflow). Absent: at = from = to = 0,
     * limit = 50. */
    uint64_t at, from, to, limit;
    bool has_at, has_from, has_to, has_limit;
    const char *q;     /* CONSOLE_MODELS: the ?q= text, or NULL; borrowed from the args */
    const char *token; /* ?token= of any route, or NULL; borrowed from the args */
    /* File kinds: the file's path relative to the served directory, "index.html" added to a
     * path that ends in '/'. Never empty, never starting with '/', never with ".." anywhere
     * (lws already folds "/../", so any ".." left is refused), never with an empty segment:
     * it cannot leave the directory lexically (http.c still checks the resolved path, for
     * symlinks). A path that breaks these is status 404 "not found". "" for other kinds. */
    char path[FO_ROUTE_PATH_MAX];
} fo_route;

/* Routes the decoded request path `uri` (a C string, as lws passes it to LWS_CALLBACK_HTTP;
 * a decoded %00 ends it, as it always has) with its `nargs` query arguments `args` (NULL
 * when nargs is 0). An argument is looked up as lws_get_urlarg_by_name would with the
 * buffers http.c used: the first fragment that starts with "name=" wins, and the search
 * ends at a fragment as long as the buffer (it could not be copied): 64 bytes for at, from
 * and to, 32 for limit, 256 for q, 2048 for token. Always fills *out; the returned strings
 * borrow from `args` and the error texts are static. */
void fo_route_parse(const char *uri, const fo_route_arg *args, size_t nargs, fo_route *out);

/* The number rule of the routes: true and *out set when s is 1 or more decimal digits whose
 * value fits 64 bits; false (and *out untouched) for NULL, "", a sign, a space, any other
 * byte or an overflow. */
bool fo_route_u64(const char *s, uint64_t *out);

#endif
