/* reply.h - where the answer to a model request goes. A WebSocket session (session.c) and
 * an HTTP request (http.c) both implement this sink, so the runner and the models answer a
 * request, now or once its commit is durable, without knowing where it came from.
 *
 * A sink is refcounted: a task, a pending reply or a store read holds a reference while it
 * may still answer. A sink whose connection is gone drops what it is given. */
#ifndef FO_REPLY_H
#define FO_REPLY_H

#include "hub/frame.h"
#include "proto/wire.h"

typedef struct fo_reply_sink fo_reply_sink;

typedef struct fo_reply_ops {
    void (*ref)(fo_reply_sink *s);
    void (*unref)(fo_reply_sink *s);
    /* The answer `m` (snap, diff, ok, ...) in the sink's own form: a MessagePack frame for
     * a session, a JSON body for HTTP (which answers snap and diff only). NULL when it
     * cannot be encoded (out of memory). */
    fo_frame *(*encode)(fo_reply_sink *s, const fo_msg *m);
    /* Sends what encode made (the sink takes a reference of its own). */
    void (*deliver)(fo_reply_sink *s, fo_frame *f);
    /* An error answering `req` (rid and model are taken from it; req may be NULL). */
    void (*error)(fo_reply_sink *s, const fo_msg *req, fo_error_code code, const char *why);
} fo_reply_ops;

/* Embedded first in the implementing struct. */
struct fo_reply_sink {
    const fo_reply_ops *ops;
};

static inline fo_reply_sink *fo_reply_ref(fo_reply_sink *s)
{
    s->ops->ref(s);
    return s;
}

static inline void fo_reply_unref(fo_reply_sink *s) /* NULL is a no-op */
{
    if (s)
        s->ops->unref(s);
}

static inline void fo_reply_error(fo_reply_sink *s, const fo_msg *req, fo_error_code code,
                                  const char *why)
{
    s->ops->error(s, req, code, why);
}

/* Encodes and delivers `m` now; an encoding failure is answered as `internal`. */
static inline void fo_reply_send(fo_reply_sink *s, const fo_msg *req, const fo_msg *m)
{
    fo_frame *f = s->ops->encode(s, m);

    if (!f) {
        s->ops->error(s, req, FO_ERR_INTERNAL, "cannot encode the reply");
        return;
    }
    s->ops->deliver(s, f);
    fo_frame_unref(f);
}

#endif
