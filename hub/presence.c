/* presence.c - see presence.h. */
#include "hub/presence.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/hub.h"
#include "hub/model.h"
#include "hub/session.h"
#include "hub/store_nats.h"

#define PRES_PREFIX "fo.presence."

struct fo_presence {
    fo_hub *h;
    natsConnection *nc; /* the peers' connection, while it is open */
    fo_strmap states;   /* model -> fo_strmap * (session -> fo_frame *: other hubs' states) */
};

static void free_frame(void *ctx, const char *key, void *value)
{
    (void)ctx;
    (void)key;
    fo_frame_unref(value);
}

static void free_states(void *ctx, const char *key, void *value)
{
    (void)key;
    fo_strmap_each(value, free_frame, ctx);
    fo_strmap_destroy(value);
    free(value);
}

/* Sends f to the model's active local subscribers. */
static void relay(fo_hub *h, const char *model, fo_frame *f)
{
    fo_model *m = fo_strmap_get(&h->models, model, strlen(model));

    for (fo_sub *o = m ? m->subs : NULL; o; o = o->mnext)
        if (o->active)
            fo_session_send(o->session, f);
}

void fo_presence_publish(fo_hub *h, const fo_model *m, const fo_frame *ev)
{
    fo_presence *pr = h->presence;
    char subject[sizeof(PRES_PREFIX) + 3 * FO_MODEL_NAME_MAX + 1];
    size_t pl = sizeof(PRES_PREFIX) - 1;

    if (!pr || !pr->nc)
        return;
    memcpy(subject, PRES_PREFIX, pl);
    if (fo_nats_subject_token(m->name, m->name_len, subject + pl, sizeof(subject) - pl) > 0)
        natsConnection_Publish(pr->nc, subject, ev->data, (int)ev->len);
}

static void send_one(void *ctx, const char *key, void *value)
{
    (void)key;
    fo_session_send(ctx, value);
}

void fo_presence_send(fo_hub *h, const fo_model *m, fo_session *to)
{
    fo_strmap *states;

    if (h->presence && (states = fo_strmap_get(&h->presence->states, m->name, m->name_len)))
        fo_strmap_each(states, send_one, to);
}

void fo_presence_take(fo_presence *pr, const void *data, size_t n)
{
    fo_strmap *states;
    fo_frame *f, *old;
    fo_arena a;
    fo_msg m;
    char model[FO_MODEL_NAME_MAX + 1];

    fo_arena_init(&a, 512);
    if (!pr || fo_wire_decode(data, n, &pr->h->limits, &a, &m, NULL) != 0 ||
        m.type != FO_MSG_PRESENCE_EVT || !m.session ||
        strncmp(m.session, pr->h->sid_prefix, strlen(pr->h->sid_prefix)) == 0 ||
        m.model_len > FO_MODEL_NAME_MAX || !(f = fo_frame_new(data, n))) {
        fo_arena_destroy(&a); /* not an event, or this hub's own */
        return;
    }
    memcpy(model, m.model, m.model_len);
    model[m.model_len] = '\0';
    states = fo_strmap_get(&pr->states, model, m.model_len);
    if (!states && m.state && (states = calloc(1, sizeof(*states))) &&
        fo_strmap_put(&pr->states, model, m.model_len, states)) {
        free(states);
        states = NULL;
    }
    if (states) {
        if ((old = fo_strmap_del(states, m.session, strlen(m.session))))
            fo_frame_unref(old);
        if (m.state && fo_strmap_put(states, m.session, strlen(m.session), fo_frame_ref(f)))
            fo_frame_unref(f);
        if (!states->len) {
            fo_strmap_del(&pr->states, model, m.model_len);
            fo_strmap_destroy(states);
            free(states);
        }
    }
    relay(pr->h, model, f);
    fo_frame_unref(f);
    fo_arena_destroy(&a);
}

/* Keys of a map that start with a prefix, collected (a map cannot change in its _each). */
typedef struct keys {
    const char *prefix;
    size_t pl, n, cap;
    char **v;
} keys;

static void collect(void *ctx, const char *key, void *value)
{
    keys *k = ctx;
    char **nv;

    (void)value;
    if (strncmp(key, k->prefix, k->pl) != 0)
        return;
    if (k->n == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 16;
        if (!(nv = realloc(k->v, cap * sizeof(*nv))))
            return;
        k->v = nv;
        k->cap = cap;
    }
    if ((k->v[k->n] = strdup(key)))
        k->n++;
}

static void keys_free(keys *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->v[i]);
    free(k->v);
}

void fo_presence_hub_gone(fo_presence *pr, const char *id)
{
    char prefix[12];
    keys models = {"", 0, 0, 0, NULL};

    if (!pr)
        return;
    snprintf(prefix, sizeof(prefix), "%.8s-", id);
    fo_strmap_each(&pr->states, collect, &models);
    for (size_t i = 0; i < models.n; i++) {
        const char *model = models.v[i];
        fo_strmap *states = fo_strmap_get(&pr->states, model, strlen(model));
        keys sids = {prefix, strlen(prefix), 0, 0, NULL};
        fo_strmap_each(states, collect, &sids);
        for (size_t j = 0; j < sids.n; j++) {
            fo_msg ev;
            fo_frame *f;
            memset(&ev, 0, sizeof(ev));
            ev.type = FO_MSG_PRESENCE_EVT;
            ev.model = model;
            ev.model_len = (uint32_t)strlen(model);
            ev.session = sids.v[j];
            if ((f = fo_frame_encode(&ev))) {
                relay(pr->h, model, f);
                fo_frame_unref(f);
            }
            fo_frame_unref(fo_strmap_del(states, sids.v[j], strlen(sids.v[j])));
        }
        keys_free(&sids);
        if (!states->len) {
            fo_strmap_del(&pr->states, model, strlen(model));
            fo_strmap_destroy(states);
            free(states);
        }
    }
    keys_free(&models);
}


fo_presence *fo_presence_new(fo_hub *h)
{
    fo_presence *pr = calloc(1, sizeof(*pr));

    if (pr) {
        pr->h = h;
        fo_strmap_init(&pr->states);
    }
    return pr;
}

void fo_presence_connect(fo_presence *pr, natsConnection *nc)
{
    if (pr)
        pr->nc = nc;
}

void fo_presence_free(fo_presence *pr)
{
    if (!pr)
        return;
    fo_strmap_each(&pr->states, free_states, NULL);
    fo_strmap_destroy(&pr->states);
    free(pr);
}
