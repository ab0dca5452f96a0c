/* http.h - HTTP on the hub's port: GET /healthz, /metrics (Prometheus text),
 * /v1/models/NAME (the snapshot as JSON), /v1/models/NAME/history?from=N[&to=M] (a
 * CompletionBatch as JSON), the console's data at /v1/console/... (console.h), the files
 * of --console-dir at /console/ and those of --static at / (the demo). Model endpoints
 * follow the WebSocket's auth rules (Authorization: Bearer, or ?token=); the console's
 * need the `admin` right (auth.h), or an open hub listening on loopback only.
 *
 * A request for a model waits for the model's runner like a WebSocket request, so its
 * fo_http_req is refcounted: the connection holds one reference until it closes or the
 * response is written, the runner and pending replies one each. */
#ifndef FO_HTTP_H
#define FO_HTTP_H

#include <libwebsockets.h>

#include "hub/reply.h"
#include "proto/buf.h"

typedef struct fo_http_req fo_http_req;

/* The lws callback for everything HTTP (lws serves HTTP only: see listener.h). */
int fo_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len);

/* The request as the sink its model read is answered through (reply.h). */
fo_reply_sink *fo_http_req_sink(fo_http_req *r);

fo_http_req *fo_http_req_ref(fo_http_req *r);
void fo_http_req_unref(fo_http_req *r); /* NULL is a no-op */

/* Stores the response (the body is copied) without sending it: fo_http_release sends it
 * once the state it shows is durable. 0 or FO_ENOMEM. */
int fo_http_set_response(fo_http_req *r, int status, const char *content_type,
                         const fo_buf *body);
void fo_http_release(fo_http_req *r);
/* Sends a response now (the body is copied). */
void fo_http_respond(fo_http_req *r, int status, const char *content_type, const fo_buf *body);
/* Sends {"error": message} with the status. */
void fo_http_respond_error(fo_http_req *r, int status, const char *message);

#endif
