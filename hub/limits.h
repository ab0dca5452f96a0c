/* limits.h - what protects the hub from one bad client and from more work than it can do
 * (the flags are in config.h, the defaults and their reasons in the README):
 *
 * - token buckets (fo_bucket): per connection for flushes, inbound bytes and presence
 *   updates (session.c), per source address for new WebSocket connections (listener.c).
 *   A bucket is two numbers and a few arithmetic operations on the loop's cached clock
 *   (uv_now, taken once per loop turn): no clock call per frame.
 * - the per-address table of connection buckets (fo_conn_rate_*), swept once a second;
 * - overload shedding (fo_overload_*): the loop's lag, measured per turn around its poll
 *   phase (hub.c's uv_prepare: the time from poll's return to the next poll), goes into a
 *   sliding window (fo_lag_window) of the last second (or three times --overload-lag-ms
 *   when that is longer). The hub is overloaded while more than half of that window went
 *   to turns slower than --overload-lag-ms, in two turns or more: the loop no longer keeps
 *   up, and an event waits past the threshold more often than not. One slow turn alone (a
 *   big model loading, the machine stalling once) is not an overload. Meanwhile new
 *   flushes are answered `overloaded` with `retryAfterMs` instead of being queued; replies
 *   of flushes already accepted go out as usual.
 *
 * A refusal never applies anything: a refused flush can be sent again with the same seq
 * (exactly-once holds, the hub never saw it). */
#ifndef FO_LIMITS_H
#define FO_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

#include "hub/strmap.h"

typedef struct fo_hub fo_hub;

/* A token bucket: `tokens` at `at_ms` (0: never used, full). */
typedef struct fo_bucket {
    double tokens;
    uint64_t at_ms;
} fo_bucket;

/* Takes `cost` tokens from a bucket that refills at `rate` per second up to `burst`.
 * Returns 0 when taken, else the milliseconds until `cost` tokens are there (nothing is
 * taken). rate 0: no limit. */
uint64_t fo_bucket_take(fo_bucket *b, double rate, double burst, double cost, uint64_t now_ms);
/* Charges `cost` whatever the balance (bytes already read), down to -burst at most.
 * Returns 0 when the bucket was not overdrawn before this charge; else the frame is refused
 * (and still charged: it was sent) and this is the milliseconds until the bucket is back
 * at 0, when the same frame sent again passes. rate 0: no limit. */
uint64_t fo_bucket_charge(fo_bucket *b, double rate, double burst, double cost, uint64_t now_ms);

/* The loop's recent turns in FO_LAG_SLOTS slots of span/FO_LAG_SLOTS ms each: per slot,
 * the turns that ended in it, how many were slow and their busy milliseconds. */
#define FO_LAG_SLOTS 10
typedef struct fo_lag_window {
    uint64_t span_ms, slot_ms;
    uint64_t slot_id[FO_LAG_SLOTS]; /* now / slot_ms of the slot's counts */
    uint32_t turns[FO_LAG_SLOTS], slow[FO_LAG_SLOTS];
    uint64_t slow_ms[FO_LAG_SLOTS];
} fo_lag_window;

/* A window for turns slower than threshold_ms: span max(1000, 3 x threshold) ms. */
void fo_lag_window_init(fo_lag_window *w, uint64_t threshold_ms);
/* A turn of busy_ms ended at now_ms; slow when past threshold_ms. */
void fo_lag_window_add(fo_lag_window *w, uint64_t now_ms, uint64_t busy_ms, bool slow);
/* The window's totals at now_ms (slots older than the span are not counted). */
void fo_lag_window_sum(const fo_lag_window *w, uint64_t now_ms, uint32_t *turns,
                       uint32_t *slow, uint64_t *slow_ms);
/* Overloaded: two slow turns or more, and more than half of the span in slow turns. */
bool fo_lag_window_overloaded(const fo_lag_window *w, uint64_t now_ms);

typedef struct fo_limits {
    fo_strmap addrs;            /* source address (IPv6: its /64) -> fo_bucket * */
    uint32_t max_connections;   /* --max-connections, lowered to what RLIMIT_NOFILE allows */
    fo_lag_window lag;          /* recent loop turns (overload shedding) */
    bool overloaded;            /* as of overload_at_ms */
    uint64_t overload_at_ms;    /* when `overloaded` was last worked out */
    uint64_t overload_since_ms; /* when the current overload began */
    uint64_t rng;               /* retry jitter */
} fo_limits;

/* At start: the table, and the effective connection limit (logged when lowered). */
void fo_limits_init(fo_hub *h);
void fo_limits_destroy(fo_hub *h);

/* At an upgrade: 0 when a new WebSocket from fd's peer address is within --conn-rate,
 * else the milliseconds until one would be. */
uint64_t fo_conn_rate_check(fo_hub *h, int fd);
/* Once a second: forgets addresses whose bucket is full again (bounded table). */
void fo_conn_rate_sweep(fo_hub *h);

/* The end of a loop turn that ran for busy_ns: into the window, and the overload state
 * worked out again (entering it is counted in metrics and logged, leaving it logged). */
void fo_overload_turn(fo_hub *h, uint64_t busy_ns);
/* 0 when new flushes are taken; else the retryAfterMs to answer (--overload-lag-ms plus a
 * jitter of up to half of it, so retries do not come back at once). */
uint64_t fo_overload_retry_ms(fo_hub *h);
/* Whether the hub is overloaded now (the /metrics gauge). */
bool fo_overloaded(fo_hub *h);

/* The bursts the per-connection buckets allow (2 s of their rate; the bytes bucket at
 * least two frames of --max-frame, so that every frame the hub takes can pass). */
double fo_limits_flush_burst(const fo_hub *h);
double fo_limits_bytes_burst(const fo_hub *h);
double fo_limits_presence_burst(const fo_hub *h);

#endif
