/* nats_conn.h - connecting to NATS the way every part of the hub does (the JetStream store,
 * the log follower): a comma-separated URL list, reconnecting forever, with messages that
 * say which servers and why. */
#ifndef FO_NATS_CONN_H
#define FO_NATS_CONN_H

#include <nats/nats.h>
#include <pthread.h>
#include <stddef.h>

/* Connects to `urls` ("nats://HOST:PORT[,nats://...]", at most 16; tls:// too) as client
 * `name`, with a 2 s connect timeout and endless reconnects 250 ms apart. 0 and *nc, or
 * FO_EINVAL (a bad list), FO_ENOMEM or FO_STORE_EIO (no server answered) with the reason in
 * msg[0..ml). */
int fo_nats_connect(const char *urls, const char *name, natsConnection **nc, char *msg,
                    size_t ml);

/* Makes sure of the stream FLUSHOUT (store_nats.h): created when absent (file storage,
 * subjects fo.log.>, replicas min(3, servers known)), asked again for up to 15 s while a
 * starting cluster cannot place it yet. 0; FO_STORE_EIO (no JetStream, or no stream in
 * time) or FO_STORE_ECORRUPT (a stream of that name that is not the hub's), the reason
 * in msg[0..ml). `where` names the servers in messages. */
int fo_nats_ensure_stream(natsConnection *nc, jsCtx *js, const char *where, char *msg,
                          size_t ml);

/* Subscriptions whose last message callback has returned: give fo_nats_done_cb and the
 * struct to natsSubscription_SetOnCompleteCB, and before freeing what the callbacks use,
 * close the connection and fo_nats_done_wait for them (nats.c does not wait itself). */
typedef struct fo_nats_done {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int done;
} fo_nats_done;

void fo_nats_done_init(fo_nats_done *d);
void fo_nats_done_destroy(fo_nats_done *d);
void fo_nats_done_cb(void *d);
/* Waits until `want` subscriptions are done, at most ms milliseconds. */
void fo_nats_done_wait(fo_nats_done *d, int want, int ms);

/* nats.c's last error text for this thread, or the status's text. Static. */
const char *fo_nats_last_error(natsStatus s);

#endif
