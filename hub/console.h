/* console.h - what the operator console (clients/console, served at /console/) reads:
 *
 *   GET /v1/console/feed           a WebSocket (upgrade): once a second one text message,
 *                                  a JSON sample of the hub (connections, hot models and
 *                                  bytes by kind, rates of flushes, commands and pushes,
 *                                  loop lag, commit and ack latency quantiles, dropped
 *                                  pushes, catch-ups, evictions, errors by code). A new
 *                                  stream starts with the last FO_CONSOLE_SAMPLES samples.
 *   GET /v1/console/models?q=TEXT&limit=N
 *                                  hot models whose name contains TEXT, hottest first
 *                                  (commands in the last second, then subscribers).
 *   GET /v1/console/models/NAME    one model: counts, bytes, history range, subscribers
 *                                  with their backlog; presence states only with read
 *                                  rights on the model.
 *
 * The hub pushes the feed: one sample is encoded (and framed) once a second and the same
 * bytes are sent to every open feed. A feed is a socket of the hub's own, like a session:
 * the listener does the upgrade (listener.h) and hands it over; samples are written with
 * send() from the loop, and the socket is only polled for its EOF or a close frame (and
 * POLLOUT while a write is unfinished). A feed that has more than FO_CONSOLE_FEED_BACKLOG
 * bytes unsent is closed (the console reconnects).
 *
 * Why a WebSocket and not server-sent events over lws: an EventSource may reuse a
 * keep-alive connection that lws already serves, where the listener never sees the
 * request; and lws 4.1 does not read a peer's EOF in the middle of an HTTP transaction (the
 * loop spins on the readable socket until a write fails). A WebSocket always comes on a
 * connection of its own, which the listener routes. Samples are
 * taken whether or not a console is open (about 800 bytes a second; the ring is the
 * charts' first minutes); per-model rates are computed only while a feed is open.
 *
 * Access (fo_console_access): a token with an `admin` line (auth.h), or any client of an
 * open hub that listens on loopback only. The model list and details show only models an
 * admin pattern matches. */
#ifndef FO_CONSOLE_H
#define FO_CONSOLE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "hub/auth.h"
#include "hub/frame.h"
#include "hub/metrics.h"
#include "proto/tls.h"

#define FO_CONSOLE_SAMPLES 300  /* five minutes of samples, replayed to a new feed */
#define FO_CONSOLE_MAX_FEEDS 64 /* open feeds at most (each costs a write a second) */
#define FO_CONSOLE_FEED_BACKLOG (512 * 1024)

typedef struct fo_hub fo_hub;
typedef struct fo_http_req fo_http_req;
typedef struct fo_feed fo_feed;

typedef struct fo_console {
    uv_timer_t timer;
    bool started;
    fo_feed *feeds; /* open feeds */
    uint32_t nfeeds;
    fo_frame *ring[FO_CONSOLE_SAMPLES]; /* encoded SSE events, oldest at head */
    uint32_t head, len;
    fo_metrics prev; /* the counters at the last sample */
    uint64_t prev_ns;
    uint64_t samples;
} fo_console;

/* Starts the sampling timer (the loop is running) / stops it and drops the feeds. */
void fo_console_start(fo_hub *h);
void fo_console_stop(fo_hub *h);

/* Whether a request with `token` ("" for none) may use the console: 0 with `rights`
 * filled in, or the HTTP status that refuses it with the reason in `why`: 401 (no token,
 * or one the hub refuses), 403 (no admin right; an open hub that does not listen on
 * loopback only). The caller owns `rights` either way (fo_rights_destroy). */
int fo_console_access(fo_hub *h, const char *token, fo_rights *rights, char *why,
                      size_t whylen);

/* True while another feed may open (FO_CONSOLE_MAX_FEEDS, the hub is running). */
bool fo_console_feed_room(const fo_hub *h);
/* A feed the listener upgraded (access checked, 101 sent): takes over fd, its poll
 * watcher (started or not) and its TLS (NULL: plaintext; freed on failure too) and sends
 * the ring. 0, or -1 (the caller closes fd). */
int fo_console_feed_open(fo_hub *h, int fd, uv_poll_t *poll, fo_tls *tls);

/* The model routes (http.c has checked the console right). Each answers r. */
void fo_console_models(fo_hub *h, fo_http_req *r, const fo_rights *rights, const char *q,
                       uint32_t limit);
void fo_console_model(fo_hub *h, fo_http_req *r, const fo_rights *rights, const char *name);

#endif
