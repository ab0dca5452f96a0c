/* nats_conn.c - see nats_conn.h. */
#include "hub/nats_conn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/store.h"
#include "hub/store_nats.h"

#define CONNECT_MS 2000
#define MAX_URLS 16

const char *fo_nats_last_error(natsStatus s)
{
    natsStatus ls;
    const char *t = nats_GetLastError(&ls);

    return t && t[0] ? t : natsStatus_GetText(s);
}

int fo_nats_connect(const char *urls, const char *name, natsConnection **nc, char *msg,
                    size_t ml)
{
    char *copy, *save = NULL, *tok;
    const char *list[MAX_URLS];
    natsOptions *opts = NULL;
    natsStatus s;
    int n = 0, rc = 0;

    if (!urls || !urls[0]) {
        snprintf(msg, ml, "nats: no server URL");
        return FO_EINVAL;
    }
    if (!(copy = strdup(urls))) {
        snprintf(msg, ml, "nats: out of memory");
        return FO_ENOMEM;
    }
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (!*tok)
            continue;
        if (n == MAX_URLS || (strncmp(tok, "nats://", 7) && strncmp(tok, "tls://", 6))) {
            snprintf(msg, ml,
                     "nats: bad server URL '%s' (want nats://HOST:PORT, at most %d, "
                     "comma-separated)",
                     tok, MAX_URLS);
            rc = FO_EINVAL;
            goto out;
        }
        list[n++] = tok;
    }
    if (n == 0) {
        snprintf(msg, ml, "nats: no server URL in '%s'", urls);
        rc = FO_EINVAL;
        goto out;
    }
    if ((s = natsOptions_Create(&opts)) != NATS_OK ||
        (s = natsOptions_SetServers(opts, list, n)) != NATS_OK ||
        (s = natsOptions_SetName(opts, name)) != NATS_OK ||
        (s = natsOptions_SetTimeout(opts, CONNECT_MS)) != NATS_OK ||
        (s = natsOptions_SetMaxReconnect(opts, -1)) != NATS_OK ||
        (s = natsOptions_SetReconnectWait(opts, 250)) != NATS_OK) {
        snprintf(msg, ml, "nats: %s", natsStatus_GetText(s));
        rc = FO_STORE_EIO;
        goto out;
    }
    if ((s = natsConnection_Connect(nc, opts)) != NATS_OK) {
        snprintf(msg, ml, "cannot connect to NATS at %s: %s", urls, fo_nats_last_error(s));
        rc = FO_STORE_EIO;
    }
out:
    natsOptions_Destroy(opts);
    free(copy);
    return rc;
}

static int fail(char *msg, size_t ml, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *msg, size_t ml, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, ml, fmt, ap);
    va_end(ap);
    return code;
}

static const char *stream_subjects[] = {FO_NATS_SUBJECT_PREFIX ">"};

/* The stream's info, creating it first when it does not exist (replicas: min(3, servers)). */
static natsStatus stream_info_or_create(natsConnection *nc, jsCtx *js, jsStreamInfo **si,
                                        jsOptions *jo, jsErrCode *jerr)
{
    char **servers = NULL;
    int nservers = 0;
    jsStreamConfig sc;
    natsStatus s;

    *jerr = 0;
    s = js_GetStreamInfo(si, js, FO_NATS_STREAM, jo, jerr);
    if (s != NATS_NOT_FOUND && *jerr != JSStreamNotFoundErr)
        return s;
    if (natsConnection_GetServers(nc, &servers, &nservers) != NATS_OK)
        nservers = 1;
    for (int i = 0; i < nservers; i++)
        free(servers[i]);
    free(servers);
    jsStreamConfig_Init(&sc);
    sc.Name = FO_NATS_STREAM;
    sc.Description = "flushout-hub: each model's log on its own subject";
    sc.Subjects = stream_subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Retention = js_LimitsPolicy;
    sc.Replicas = nservers < 1 ? 1 : nservers > 3 ? 3 : nservers;
    sc.AllowDirect = true;
    *jerr = 0;
    s = js_AddStream(si, js, &sc, jo, jerr);
    if (s != NATS_OK && *jerr == JSStreamNameExistErr) /* another hub created it first */
        s = js_GetStreamInfo(si, js, FO_NATS_STREAM, jo, jerr);
    return s;
}

int fo_nats_ensure_stream(natsConnection *nc, jsCtx *js, const char *where, char *msg,
                          size_t ml)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    jsOptions jo;
    natsStatus s;
    bool ok = false;
    int rc = 0;

    jsOptions_Init(&jo);
    jo.Wait = 5000;
    /* A NATS cluster that starts with the hubs (scripts/cluster.sh, a reboot) may refuse to
     * place the stream for a few seconds after electing its leader: ask again, 15 s at most,
     * unless nothing answers JetStream requests at all (no -js). */
    for (int attempt = 0; attempt < 30; attempt++) {
        s = stream_info_or_create(nc, js, &si, &jo, &jerr);
        if (s == NATS_OK || s == NATS_NO_RESPONDERS || (s == NATS_TIMEOUT && !jerr))
            break;
        nats_Sleep(500);
    }
    if (s == NATS_NO_RESPONDERS || (s == NATS_TIMEOUT && !jerr))
        return fail(msg, ml, FO_STORE_EIO,
                    "NATS at %s does not answer JetStream requests (%s): start nats-server "
                    "with JetStream enabled (-js)",
                    where, fo_nats_last_error(s));
    if (s != NATS_OK)
        return fail(msg, ml, FO_STORE_EIO,
                    "NATS at %s: cannot create or read the stream FLUSHOUT: %s", where,
                    fo_nats_last_error(s));
    for (int i = 0; si->Config && i < si->Config->SubjectsLen; i++)
        ok |= strcmp(si->Config->Subjects[i], stream_subjects[0]) == 0;
    if (!ok || si->Config->Storage != js_FileStorage)
        rc = fail(msg, ml, FO_STORE_ECORRUPT,
                  "NATS at %s: the stream FLUSHOUT exists but is not the hub's (%s); delete it "
                  "or point --cluster at another NATS",
                  where, !ok ? "its subjects are not fo.log.>" : "it does not use file storage");
    jsStreamInfo_Destroy(si);
    return rc;
}

void fo_nats_done_init(fo_nats_done *d)
{
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cond, NULL);
    d->done = 0;
}

void fo_nats_done_destroy(fo_nats_done *d)
{
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->mu);
}

void fo_nats_done_cb(void *closure)
{
    fo_nats_done *d = closure;

    pthread_mutex_lock(&d->mu);
    d->done++;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->mu);
}

void fo_nats_done_wait(fo_nats_done *d, int want, int ms)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&d->mu);
    while (d->done < want)
        if (pthread_cond_timedwait(&d->cond, &d->mu, &until))
            break;
    pthread_mutex_unlock(&d->mu);
}
