#include "hub/limits.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "hub/hub.h"
#include "hub/log.h"

#define FD_RESERVE 64 /* descriptors kept for the store, the listener, HTTP and logs */

static void refill(fo_bucket *b, double rate, double burst, uint64_t now)
{
    if (!b->at_ms) {
        b->tokens = burst;
        b->at_ms = now;
    } else if (now > b->at_ms) {
        b->tokens += (double)(now - b->at_ms) * rate / 1000.0;
        if (b->tokens > burst)
            b->tokens = burst;
        b->at_ms = now;
    }
}

static uint64_t wait_ms(double missing, double rate)
{
    return (uint64_t)(missing * 1000.0 / rate) + 1;
}

uint64_t fo_bucket_take(fo_bucket *b, double rate, double burst, double cost, uint64_t now)
{
    if (rate <= 0)
        return 0;
    refill(b, rate, burst, now);
    if (b->tokens >= cost) {
        b->tokens -= cost;
        return 0;
    }
    return wait_ms(cost - b->tokens, rate);
}

uint64_t fo_bucket_charge(fo_bucket *b, double rate, double burst, double cost, uint64_t now)
{
    uint64_t wait = 0;
    bool over;

    if (rate <= 0)
        return 0;
    refill(b, rate, burst, now);
    over = b->tokens < 0;
    b->tokens -= cost;
    if (b->tokens < -burst)
        b->tokens = -burst;
    /* Refused: back when this frame, charged too, is paid for (sent again then, it passes). */
    if (over)
        wait = wait_ms(-b->tokens, rate);
    return wait;
}

double fo_limits_flush_burst(const fo_hub *h)
{
    return 2.0 * h->cfg.flush_rate;
}

double fo_limits_bytes_burst(const fo_hub *h)
{
    double b = 2.0 * (double)h->cfg.bytes_rate, f = 2.0 * (double)h->cfg.max_frame;

    return b > f ? b : f;
}

double fo_limits_presence_burst(const fo_hub *h)
{
    return 2.0 * h->cfg.presence_rate;
}

void fo_limits_init(fo_hub *h)
{
    struct rlimit rl;
    uint64_t room;

    fo_strmap_init(&h->lim.addrs);
    h->lim.rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)uv_hrtime();
    h->lim.max_connections = h->cfg.max_connections;
    fo_lag_window_init(&h->lim.lag, h->cfg.overload_lag_ms);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        room = rl.rlim_cur > FD_RESERVE ? rl.rlim_cur - FD_RESERVE : 1;
        if (room < h->lim.max_connections) {
            FO_LOG(FO_LOG_WARN, "--max-connections %u lowered to %llu: the open-files limit "
                   "(ulimit -n, LimitNOFILE) is %llu", h->cfg.max_connections,
                   (unsigned long long)room, (unsigned long long)rl.rlim_cur);
            h->lim.max_connections = (uint32_t)room;
        }
    }
}

static void free_bucket(void *ctx, const char *key, void *value)
{
    (void)ctx;
    (void)key;
    free(value);
}

void fo_limits_destroy(fo_hub *h)
{
    fo_strmap_each(&h->lim.addrs, free_bucket, NULL);
    fo_strmap_destroy(&h->lim.addrs);
}

/* The peer's address as the table's key: IPv4 (or v4-mapped) whole, IPv6 by its /64 (one
 * host usually has a whole /64 to pick addresses from). */
static int addr_key(int fd, char *out, size_t cap)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof(sa);
    unsigned char a6[16];

    if (getpeername(fd, (struct sockaddr *)&sa, &len) != 0)
        return -1;
    if (sa.ss_family == AF_INET)
        return inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, out, (socklen_t)cap)
                   ? 0 : -1;
    if (sa.ss_family != AF_INET6)
        return -1;
    memcpy(a6, &((struct sockaddr_in6 *)&sa)->sin6_addr, 16);
    if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)a6))
        return inet_ntop(AF_INET, a6 + 12, out, (socklen_t)cap) ? 0 : -1;
    if (IN6_IS_ADDR_LOOPBACK((struct in6_addr *)a6)) /* ::1 is one host, not a /64 */
        return snprintf(out, cap, "::1") > 0 ? 0 : -1;
    memset(a6 + 8, 0, 8);
    if (!inet_ntop(AF_INET6, a6, out, (socklen_t)cap))
        return -1;
    strncat(out, "/64", cap - strlen(out) - 1);
    return 0;
}

uint64_t fo_conn_rate_check(fo_hub *h, int fd)
{
    double rate = h->cfg.conn_rate, burst = 2.0 * rate;
    char key[INET6_ADDRSTRLEN + 4];
    fo_bucket *b;

    if (!h->cfg.conn_rate || addr_key(fd, key, sizeof(key)) != 0)
        return 0;
    if (!(b = fo_strmap_get(&h->lim.addrs, key, strlen(key)))) {
        if (!(b = calloc(1, sizeof(*b))))
            return 0; /* no memory for the entry: not a reason to refuse a client */
        if (fo_strmap_put(&h->lim.addrs, key, strlen(key), b) != 0) {
            free(b);
            return 0;
        }
    }
    return fo_bucket_take(b, rate, burst, 1, fo_hub_now_ms(h));
}

typedef struct sweep_ctx {
    fo_hub *h;
    char **keys;
    size_t n, cap;
} sweep_ctx;

static void collect_full(void *ctx, const char *key, void *value)
{
    sweep_ctx *c = ctx;
    fo_bucket *b = value;
    double rate = c->h->cfg.conn_rate;
    char **nk;

    refill(b, rate, 2.0 * rate, fo_hub_now_ms(c->h));
    if (b->tokens < 2.0 * rate)
        return;
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 64;
        if (!(nk = realloc(c->keys, ncap * sizeof(*nk))))
            return; /* swept next time */
        c->keys = nk;
        c->cap = ncap;
    }
    c->keys[c->n++] = (char *)key;
}

void fo_conn_rate_sweep(fo_hub *h)
{
    sweep_ctx c = {h, NULL, 0, 0};

    if (!h->lim.addrs.len)
        return;
    fo_strmap_each(&h->lim.addrs, collect_full, &c);
    for (size_t i = 0; i < c.n; i++) {
        /* The key belongs to the entry: copy it before the entry goes. */
        char key[INET6_ADDRSTRLEN + 4];
        snprintf(key, sizeof(key), "%s", c.keys[i]);
        c.keys[i] = NULL;
        free(fo_strmap_del(&h->lim.addrs, key, strlen(key)));
    }
    free(c.keys);
}

void fo_lag_window_init(fo_lag_window *w, uint64_t threshold_ms)
{
    memset(w, 0, sizeof(*w));
    w->span_ms = threshold_ms * 3 > 1000 ? threshold_ms * 3 : 1000;
    w->slot_ms = w->span_ms / FO_LAG_SLOTS;
    for (int i = 0; i < FO_LAG_SLOTS; i++)
        w->slot_id[i] = UINT64_MAX; /* empty */
}

void fo_lag_window_add(fo_lag_window *w, uint64_t now_ms, uint64_t busy_ms, bool slow)
{
    uint64_t id = now_ms / w->slot_ms;
    int i = (int)(id % FO_LAG_SLOTS);

    if (w->slot_id[i] != id) {
        w->slot_id[i] = id;
        w->turns[i] = w->slow[i] = 0;
        w->slow_ms[i] = 0;
    }
    w->turns[i]++;
    if (slow) {
        w->slow[i]++;
        w->slow_ms[i] += busy_ms;
    }
}

void fo_lag_window_sum(const fo_lag_window *w, uint64_t now_ms, uint32_t *turns,
                       uint32_t *slow, uint64_t *slow_ms)
{
    uint64_t id = now_ms / w->slot_ms;

    *turns = *slow = 0;
    *slow_ms = 0;
    for (int i = 0; i < FO_LAG_SLOTS; i++) {
        if (w->slot_id[i] == UINT64_MAX || w->slot_id[i] > id || id - w->slot_id[i] >= FO_LAG_SLOTS)
            continue;
        *turns += w->turns[i];
        *slow += w->slow[i];
        *slow_ms += w->slow_ms[i];
    }
}

bool fo_lag_window_overloaded(const fo_lag_window *w, uint64_t now_ms)
{
    uint32_t turns, slow;
    uint64_t slow_ms;

    fo_lag_window_sum(w, now_ms, &turns, &slow, &slow_ms);
    return slow >= 2 && slow_ms * 2 > w->span_ms;
}

/* Works the overload state out again at `now`; logs and counts a change. */
static void overload_update(fo_hub *h, uint64_t now)
{
    bool over = fo_lag_window_overloaded(&h->lim.lag, now);
    uint32_t turns, slow;
    uint64_t slow_ms;

    h->lim.overload_at_ms = now;
    if (over == h->lim.overloaded)
        return;
    h->lim.overloaded = over;
    if (over) {
        h->metrics.overloads++;
        h->lim.overload_since_ms = now;
        fo_lag_window_sum(&h->lim.lag, now, &turns, &slow, &slow_ms);
        FO_LOG(FO_LOG_WARN, "overloaded: %u loop turns past --overload-lag-ms %u took %llu ms "
               "of the last %llu ms; new flushes are refused until the loop keeps up", slow,
               h->cfg.overload_lag_ms, (unsigned long long)slow_ms,
               (unsigned long long)h->lim.lag.span_ms);
    } else {
        FO_LOG(FO_LOG_INFO, "overload over after %llu ms: new flushes are taken again",
               (unsigned long long)(now - h->lim.overload_since_ms));
    }
}

void fo_overload_turn(fo_hub *h, uint64_t busy_ns)
{
    uint64_t busy_ms = busy_ns / 1000000, now;
    bool slow;

    if (!h->cfg.overload_lag_ms)
        return;
    slow = busy_ms > h->cfg.overload_lag_ms;
    if (slow)
        uv_update_time(&h->loop); /* the clock cached when the slow turn began is behind */
    now = fo_hub_now_ms(h);
    fo_lag_window_add(&h->lim.lag, now, busy_ms, slow);
    /* Slow turns can start an overload; time passing (a slot) can end one. */
    if (slow || now - h->lim.overload_at_ms >= h->lim.lag.slot_ms)
        overload_update(h, now);
}

bool fo_overloaded(fo_hub *h)
{
    uint64_t now = fo_hub_now_ms(h);

    /* An idle loop works nothing out: look again when a slot has passed since. */
    if (h->lim.overloaded && now - h->lim.overload_at_ms >= h->lim.lag.slot_ms)
        overload_update(h, now);
    return h->lim.overloaded;
}

uint64_t fo_overload_retry_ms(fo_hub *h)
{
    uint64_t x, lag = h->cfg.overload_lag_ms;

    if (!h->cfg.overload_lag_ms || !fo_overloaded(h))
        return 0;
    x = h->lim.rng; /* xorshift64 */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    h->lim.rng = x;
    return lag + x % (lag / 2 + 1);
}
