/* nats_conn.c - see nats_conn.h. */
#include "hub/nats_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/store.h"

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
