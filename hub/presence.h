/* presence.h - on --cluster, presence crosses hubs. A local session's presence event (the
 * frame sent to local subscribers; state nil when cleared) is published on the core subject
 * fo.presence.<model token>; every hub keeps the other hubs' current states of each model,
 * relays their events to its own active subscribers, and sends those states to a new
 * subscriber after its snap, as it does the local ones. Sessions are named
 * `<first 8 digits of the hub id>-<n>` on --cluster (hub.h, sid_prefix), so names do not
 * collide between hubs and tell which hub a session is on: when a hub counts dead
 * (peers.h), its sessions' states are cleared, each with a nil event. Loop thread only;
 * every function is a no-op off --cluster (h->presence NULL). */
#ifndef FO_PRESENCE_H
#define FO_PRESENCE_H

#include <nats/nats.h>
#include <stddef.h>

#include "hub/frame.h"

typedef struct fo_hub fo_hub;
typedef struct fo_model fo_model;
typedef struct fo_session fo_session;
typedef struct fo_presence fo_presence;

#define FO_PRESENCE_SUBJECTS "fo.presence.>"

fo_presence *fo_presence_new(fo_hub *h);
/* The connection events are published on (NULL: none, while stopping). */
void fo_presence_connect(fo_presence *pr, natsConnection *nc);
void fo_presence_free(fo_presence *pr);

/* A local presence event of model m: published for the other hubs. */
void fo_presence_publish(fo_hub *h, const fo_model *m, const fo_frame *ev);
/* Sends the other hubs' current states of m to a new subscriber. */
void fo_presence_send(fo_hub *h, const fo_model *m, fo_session *to);
/* An event another hub published (its frame bytes): kept or cleared, relayed. */
void fo_presence_take(fo_presence *pr, const void *data, size_t n);
/* The hub with this id counts dead: its sessions' states are cleared. */
void fo_presence_hub_gone(fo_presence *pr, const char *id);

#endif
