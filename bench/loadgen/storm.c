/* storm.c - `--storm-at S`: a reconnect storm. S seconds into the measured window every
 * subscriber (the writers go on writing) drops its connection at once, with no close
 * handshake, and reconnects at once: hello under the same client id, then `sub` with
 * `from` = the count its frames had reached, as a client does after a network blip. The
 * hub answers each with a diff (or a snap where its history no longer reaches back), and
 * pushes go on from there, checked gap-free as before. The storm is over when every one is
 * subscribed again. Reported: how many, how long until all were back, failures, and the
 * writers' ack latency while it lasted (the stall the others see). */
#include <string.h>

#include "bench/loadgen/lg.h"

static void on_restart(uv_timer_t *t);

static void storm_start(uv_timer_t *t)
{
    fo_lg *lg = t->data;
    fo_lg_storm *s = &lg->storm;

    s->t0 = uv_hrtime();
    fo_hist_init(&s->ack);
    for (uint32_t i = 0; i < lg->next_connect; i++) {
        fo_lg_conn *c = &lg->conns[i];
        if (c->writer || c->state != FO_LGC_READY)
            continue;
        c->storming = true;
        s->clients++;
        fo_ws_abort(&c->ws);
    }
    s->active = s->clients > 0;
    if (lg->o.progress)
        fprintf(stderr, "flushout-bench: storm: %u subscribers dropped their connections\n",
                s->clients);
    if (s->active)
        uv_timer_start(t, on_restart, 1, 1);
}

/* Reconnects the subscribers whose socket is closed (every millisecond until none is left:
 * on_close fires on a later loop iteration than the abort). */
static void on_restart(uv_timer_t *t)
{
    fo_lg *lg = t->data;
    fo_lg_storm *s = &lg->storm;

    for (uint32_t i = 0; i < lg->next_connect && s->to_restart; i++) {
        fo_lg_conn *c = &lg->conns[i];
        if (!c->storm_closed)
            continue;
        c->storm_closed = false;
        s->to_restart--;
        if (lg->phase >= FO_LG_CLOSE) { /* the run ends: it stays closed */
            c->storming = false;
            s->failed++;
            lg->ready++; /* fo_lg_on_closed counts it down again, with the closed one */
            fo_lg_on_closed(lg, c, 0);
            fo_lg_error(lg, c, FO_LGE_CONNECT, "storm: not reconnected when the run ended");
            continue;
        }
        if (fo_lg_conn_start(lg, c) != 0) {
            c->storming = false;
            s->failed++;
            lg->closed++;
            fo_lg_error(lg, c, FO_LGE_CONNECT, "storm: cannot reconnect");
        }
    }
    if (!s->to_restart && s->back + s->failed >= s->clients)
        uv_timer_stop(t);
}

void fo_lg_storm_init(fo_lg *lg)
{
    memset(&lg->storm, 0, sizeof(lg->storm));
    uv_timer_init(&lg->loop, &lg->storm.timer);
    lg->storm.timer.data = lg;
}

void fo_lg_storm_arm(fo_lg *lg)
{
    if (lg->o.storm_at > 0 && !lg->o.idle)
        uv_timer_start(&lg->storm.timer, storm_start, (uint64_t)(lg->o.storm_at * 1000), 0);
}

bool fo_lg_storm_closed(fo_lg *lg, fo_lg_conn *c, fo_lg_conn_state was)
{
    fo_lg_storm *s = &lg->storm;

    if (!c->storming)
        return false;
    if (lg->phase >= FO_LG_CLOSE && was != FO_LGC_READY) {
        /* Not back when the run ends: a failure; the caller closes it as any other
         * (counted ready at the drop, so that its count comes down once more). */
        c->storming = false;
        s->failed++;
        lg->ready++;
        fo_lg_error(lg, c, FO_LGE_CONNECT, "storm: not subscribed again when the run ended");
        return false;
    }
    if (lg->phase >= FO_LG_CLOSE)
        return false;
    if (was == FO_LGC_READY) { /* our abort: reconnect */
        lg->ready--;
        c->storm_closed = true;
        s->to_restart++;
        return true;
    }
    /* A reconnection that failed (already reported by on_open or on_close's caller). */
    c->storming = false;
    s->failed++;
    lg->closed++;
    fo_lg_error(lg, c, FO_LGE_CONNECT, "storm: the reconnection ended before its sub was answered");
    if (s->back + s->failed == s->clients)
        s->active = false;
    return true;
}

void fo_lg_storm_back(fo_lg *lg, fo_lg_conn *c, bool snap)
{
    fo_lg_storm *s = &lg->storm;

    c->storming = false;
    c->state = FO_LGC_READY;
    lg->ready++;
    s->back++;
    s->snaps += snap;
    if (s->back + s->failed == s->clients) {
        s->active = false;
        s->t_done = uv_hrtime();
        if (lg->o.progress)
            fprintf(stderr, "flushout-bench: storm: %u back in %.1f ms, %u failed\n", s->back,
                    (double)(s->t_done - s->t0) / 1e6, s->failed);
    }
}

void fo_lg_storm_report(const fo_lg *lg, FILE *f)
{
    const fo_lg_storm *s = &lg->storm;

    if (lg->o.storm_at <= 0)
        return;
    fprintf(
        f, ", \"storm_clients\": %u, \"storm_back\": %u, \"storm_failed\": %u, \"storm_snaps\": %u",
        s->clients, s->back, s->failed, s->snaps);
    if (s->t_done)
        fprintf(f, ", \"storm_all_back_ms\": %.1f", (double)(s->t_done - s->t0) / 1e6);
    else
        fprintf(f, ", \"storm_all_back_ms\": null");
    fprintf(f,
            ", \"storm_acks\": %llu, \"storm_ack_p50_ms\": %.3f, \"storm_ack_p99_ms\": %.3f, "
            "\"storm_ack_max_ms\": %.3f",
            (unsigned long long)s->ack.count, fo_hist_percentile(&s->ack, 50) / 1e6,
            fo_hist_percentile(&s->ack, 99) / 1e6, fo_hist_percentile(&s->ack, 100) / 1e6);
}
