/* peers.c - see peers.h. */
#include "hub/peers.h"

#include <jansson.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <xxhash.h>

#include "hub/hub.h"
#include "hub/log.h"
#include "hub/model.h"
#include "hub/nats_conn.h"
#include "hub/presence.h"
#include "hub/session.h"
#include "hub/store_nats.h"

#define BEAT_MS 500
#define ALIVE_MS 2000
#define FWD_WAIT_MS 5000
#define MAX_MEMBERS 64
#define BEATS "fo.hubs"
#define FWD_PREFIX "fo.fwd."
#define ANS_PREFIX "fo.fwdr."

typedef struct member {
    char id[17];
    uint64_t seen_ms;
    bool gone; /* counted dead and its sessions' presence cleared (loop only) */
} member;

/* A message for the loop: a flush to run here (REQ), the answer to one sent (ANS), NATS
 * saying nobody listens where it was sent (NORESP: the owner is gone), or another hub's
 * presence event (PRES). */
enum { REQ = 1, ANS, NORESP, PRES };
typedef struct item {
    struct item *next;
    int kind;
    uint64_t id;     /* ANS: which forward */
    char reply[128]; /* REQ: where the answer goes */
    size_t n;
    unsigned char data[];
} item;

/* A flush forwarded from here, waiting for its answer (and, when the flusher is subscribed
 * here, for the follower to reach its batch). */
typedef struct fwd {
    struct fwd *next, *prev;
    uint64_t id;
    fo_session *s;   /* reference held */
    fo_model *m;     /* reference held; NULL: the flusher is not subscribed here */
    char row[300];   /* client \x1f seq \x1f model: the key in by_row, when m */
    char model[FO_MODEL_NAME_MAX + 1];
    bool has_rid;
    uint64_t rid;
    fo_frame *flush; /* the flush as sent (run here if its owner has no subscriber) */
    char owner[17];
    uint64_t t_recv;
    fo_frame *ack;   /* the ack, once it came */
    uint64_t from, len;
    uint64_t deadline_ms;
} fwd;

struct fo_peers {
    fo_hub *h;
    char id[17];
    char fwd_subject[64];
    natsConnection *nc;
    natsSubscription *subs[4];
    uv_async_t async;
    uv_timer_t timer;
    pthread_mutex_t mu; /* members, the inbox */
    fo_nats_done done;  /* subscriptions whose last callback has returned */
    member members[MAX_MEMBERS];
    uint32_t nmembers;
    item *head, *tail;
    /* the loop's own */
    fo_strmap by_id; /* decimal id -> fwd */
    fo_strmap by_row;
    fwd *list;
    uint64_t next_id;
    int open_handles;
    bool stopping;
};

/* A forwarded flush's answers go back through this sink (peers.h). */
typedef struct remote {
    fo_reply_sink sink; /* first */
    uint32_t refs;
    natsConnection *nc; /* the peers' connection (alive while the hub runs) */
    char reply[128];
} remote;

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

/* ---- NATS threads ---------------------------------------------------------------------- */

static void push_item(fo_peers *p, item *it)
{
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = it;
    else
        p->head = it;
    p->tail = it;
    pthread_mutex_unlock(&p->mu);
    uv_async_send(&p->async);
}

static void on_beat(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    fo_peers *p = closure;
    const char *d = natsMsg_GetData(msg);
    int n = natsMsg_GetDataLength(msg);

    (void)nc;
    (void)sub;
    if (n == 16 && memcmp(d, p->id, 16) != 0) {
        uint32_t i;
        pthread_mutex_lock(&p->mu);
        for (i = 0; i < p->nmembers && memcmp(p->members[i].id, d, 16) != 0; i++)
            ;
        if (i == p->nmembers && i < MAX_MEMBERS) {
            memcpy(p->members[i].id, d, 16);
            p->members[i].id[16] = '\0';
            p->nmembers++;
        }
        if (i < p->nmembers)
            p->members[i].seen_ms = now_ms();
        pthread_mutex_unlock(&p->mu);
    }
    natsMsg_Destroy(msg);
}

/* The message's bytes as an item of `kind` (NULL: out of memory). */
static item *item_of(natsMsg *msg, int kind)
{
    size_t n = (size_t)natsMsg_GetDataLength(msg);
    item *it = calloc(1, sizeof(*it) + n);

    if (it) {
        it->kind = kind;
        it->n = n;
        memcpy(it->data, natsMsg_GetData(msg), n);
    }
    return it;
}

static void on_request(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    const char *reply = natsMsg_GetReply(msg);
    item *it;

    (void)nc;
    (void)sub;
    if (reply && strlen(reply) < sizeof(it->reply) && (it = item_of(msg, REQ))) {
        snprintf(it->reply, sizeof(it->reply), "%s", reply);
        push_item(closure, it);
    }
    natsMsg_Destroy(msg);
}

static void on_answer(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    const char *dot = strrchr(natsMsg_GetSubject(msg), '.');
    item *it;

    (void)nc;
    (void)sub;
    if (dot && (it = item_of(msg, natsMsg_IsNoResponders(msg) ? NORESP : ANS))) {
        it->id = strtoull(dot + 1, NULL, 10);
        push_item(closure, it);
    }
    natsMsg_Destroy(msg);
}

static void on_presence(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    item *it;

    (void)nc;
    (void)sub;
    if ((it = item_of(msg, PRES)))
        push_item(closure, it);
    natsMsg_Destroy(msg);
}

/* ---- membership and ownership ---------------------------------------------------------- */

const char *fo_peers_id(const fo_peers *p)
{
    return p->id;
}

uint32_t fo_peers_alive(fo_peers *p)
{
    uint64_t now = now_ms();
    uint32_t n = 1;

    pthread_mutex_lock(&p->mu);
    for (uint32_t i = 0; i < p->nmembers; i++)
        n += now - p->members[i].seen_ms <= ALIVE_MS;
    pthread_mutex_unlock(&p->mu);
    return n;
}

static uint64_t weight(const char *id, const char *model, size_t len)
{
    return XXH64(model, len, XXH64(id, 16, 0x666c7573686f7574ull));
}

/* The owner of the model among the alive hubs: writes its id into out[17]; true when it is
 * this hub. */
static bool owner_of(fo_peers *p, const char *model, size_t len, char out[17])
{
    uint64_t now = now_ms(), best = weight(p->id, model, len), w;

    memcpy(out, p->id, 17);
    pthread_mutex_lock(&p->mu);
    for (uint32_t i = 0; i < p->nmembers; i++) {
        if (now - p->members[i].seen_ms > ALIVE_MS)
            continue;
        w = weight(p->members[i].id, model, len);
        if (w > best || (w == best && memcmp(p->members[i].id, out, 16) > 0)) {
            best = w;
            memcpy(out, p->members[i].id, 17);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return memcmp(out, p->id, 16) == 0;
}

/* ---- the owner's side: a forwarded flush ----------------------------------------------- */

static void remote_ref(fo_reply_sink *k)
{
    ((remote *)k)->refs++;
}

static void remote_unref(fo_reply_sink *k)
{
    remote *r = (remote *)k;

    if (--r->refs == 0)
        free(r);
}

static fo_frame *remote_encode(fo_reply_sink *k, const fo_msg *m)
{
    (void)k;
    return fo_frame_encode(m);
}

static void remote_deliver(fo_reply_sink *k, fo_frame *f)
{
    remote *r = (remote *)k;

    natsConnection_Publish(r->nc, r->reply, f->data, (int)f->len);
}

static void remote_error(fo_reply_sink *k, const fo_msg *req, fo_error_code code, const char *why)
{
    fo_msg m;
    fo_frame *f;

    memset(&m, 0, sizeof(m));
    m.type = FO_MSG_ERROR;
    m.code = code;
    m.message = why;
    if (req) {
        m.has_rid = req->has_rid;
        m.rid = req->rid;
        m.model = req->model;
        m.model_len = req->model_len;
    }
    if ((f = fo_frame_encode(&m))) {
        remote_deliver(k, f);
        fo_frame_unref(f);
    }
}

static const fo_reply_ops remote_ops = {remote_ref, remote_unref, remote_encode, remote_deliver,
                                        remote_error};

/* Request: [u8 client length][client][u32 LE identity length][identity JSON][flush frame]. */
static void run_request(fo_peers *p, const item *it)
{
    fo_hub *h = p->h;
    const unsigned char *d = it->data, *end = it->data + it->n;
    char client[65];
    json_t *identity = NULL;
    uint32_t il;
    fo_arena a;
    fo_msg msg;
    fo_err_info err;
    remote *r;

    if (it->n < 5 || d[0] == 0 || d[0] > 64 || (size_t)(end - d) < 1u + d[0] + 4u)
        return;
    memcpy(client, d + 1, d[0]);
    client[d[0]] = '\0';
    d += 1 + d[0];
    il = (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
    d += 4;
    if ((size_t)(end - d) < il)
        return;
    if (il && !(identity = json_loadb((const char *)d, il, 0, NULL)))
        return;
    d += il;
    if (!(r = calloc(1, sizeof(*r)))) {
        json_decref(identity);
        return;
    }
    r->sink.ops = &remote_ops;
    r->refs = 1;
    r->nc = p->nc;
    snprintf(r->reply, sizeof(r->reply), "%s", it->reply);
    fo_arena_init(&a, 1024 + (size_t)(end - d) * 2);
    if (fo_wire_decode(d, (size_t)(end - d), &h->limits, &a, &msg, &err) != 0 ||
        msg.type != FO_MSG_FLUSH) {
        remote_error(&r->sink, NULL, FO_ERR_BAD_REQUEST, "a forwarded flush does not decode");
        fo_arena_destroy(&a);
        json_decref(identity);
        remote_unref(&r->sink);
        return;
    }
    fo_model_submit_forwarded(h, &r->sink, client, identity, &msg, &a, fo_now_ns());
    remote_unref(&r->sink); /* the task holds its own */
}

/* ---- the forwarder's side ---------------------------------------------------------------- */

static void fwd_free(fo_peers *p, fwd *f)
{
    char key[24];

    snprintf(key, sizeof(key), "%llu", (unsigned long long)f->id);
    fo_strmap_del(&p->by_id, key, strlen(key));
    if (f->m) {
        fo_strmap_del(&p->by_row, f->row, strlen(f->row));
        if (!f->ack)
            f->m->fwd_unanswered--;
        else if (f->len == 0)
            f->m->fwd_empty--;
    }
    if (f->prev)
        f->prev->next = f->next;
    else
        p->list = f->next;
    if (f->next)
        f->next->prev = f->prev;
    fo_session_unref(f->s);
    fo_model_unref(f->m);
    fo_frame_unref(f->ack);
    fo_frame_unref(f->flush);
    free(f);
}

/* Sends the ack to the flusher and moves its subscription over the batch. */
static void deliver_ack(fo_peers *p, fwd *f)
{
    fo_sub *sub = f->m ? fo_session_find_sub(f->s, f->m) : NULL;

    fo_session_send(f->s, f->ack);
    if (sub && sub->next_from == f->from)
        sub->next_from = f->from + f->len;
    p->h->metrics.flushes++;
    fwd_free(p, f);
}

/* Frees f, then runs its model (a follower waiting for f's answer goes on). */
static void fwd_done(fo_peers *p, fwd *f)
{
    fo_model *m = f->m ? fo_model_ref(f->m) : NULL;

    fwd_free(p, f);
    if (m) {
        fo_model_run(m);
        fo_model_unref(m);
    }
}

static void fail_fwd(fo_peers *p, fwd *f, fo_error_code code, const char *why)
{
    fo_msg req;

    memset(&req, 0, sizeof(req));
    req.has_rid = f->has_rid;
    req.rid = f->rid;
    req.model = f->model;
    req.model_len = (uint32_t)strlen(f->model);
    fo_session_send_retry(f->s, &req, code, 200, "%s", why);
    fwd_done(p, f); /* a follower waiting for this row goes on without it */
}

/* The owner has no subscriber (it stopped or died; membership has not noticed yet): it is
 * dead to this hub now, and the flush runs here (the log's fence keeps that safe). */
static void run_here(fo_peers *p, fwd *f)
{
    fo_session *s = fo_session_ref(f->s);
    fo_arena a;
    fo_msg m;

    pthread_mutex_lock(&p->mu);
    for (uint32_t i = 0; i < p->nmembers; i++)
        if (memcmp(p->members[i].id, f->owner, 16) == 0)
            p->members[i].seen_ms = 0;
    pthread_mutex_unlock(&p->mu);
    fo_arena_init(&a, 1024 + f->flush->len * 2);
    if (fo_wire_decode(f->flush->data, f->flush->len, &p->h->limits, &a, &m, NULL) == 0) {
        uint64_t t_recv = f->t_recv;
        fwd_free(p, f);
        fo_model_submit(p->h, s, &m, &a, t_recv);
    } else {
        fo_arena_destroy(&a);
        fail_fwd(p, f, FO_ERR_INTERNAL, "the flush does not decode again");
    }
    fo_session_unref(s);
}

static void take_answer(fo_peers *p, const item *it)
{
    char key[24];
    fwd *f;
    fo_arena a;
    fo_msg m;
    fo_err_info err;
    int rc;

    snprintf(key, sizeof(key), "%llu", (unsigned long long)it->id);
    if (!(f = fo_strmap_get(&p->by_id, key, strlen(key))))
        return; /* answered late: the client was told to retry */
    if (it->kind == NORESP) {
        run_here(p, f);
        return;
    }

    fo_arena_init(&a, 1024);
    if ((rc = fo_wire_decode(it->data, it->n, &p->h->limits, &a, &m, &err)) != 0 ||
        (m.type != FO_MSG_ACK && m.type != FO_MSG_ERROR)) {
        FO_LOG(FO_LOG_ERROR, "model=%s the owner's answer (%zu bytes) does not decode: %s",
               f->model, it->n, rc ? err.msg : "not an ack or error");
        fo_arena_destroy(&a);
        fail_fwd(p, f, FO_ERR_INTERNAL, "the owner's answer does not decode");
        return;
    }
    if (m.type == FO_MSG_ERROR || !f->m) {
        fo_frame *fr = fo_frame_new(it->data, it->n);
        fo_arena_destroy(&a);
        if (fr)
            fo_session_send(f->s, fr);
        fo_frame_unref(fr);
        fwd_done(p, f);
        return;
    }
    f->from = m.result.applied.from;
    f->len = m.result.applied.len;
    fo_arena_destroy(&a);
    if (!(f->ack = fo_frame_new(it->data, it->n))) {
        fail_fwd(p, f, FO_ERR_INTERNAL, "out of memory");
        return;
    }
    f->m->fwd_unanswered--;
    f->m->fwd_empty += f->len == 0;
    /* The follower has the batch already (a reload read it), or the ack applies nothing and
     * the follower stands at its `from`: the ack goes now; else the follower waiting for it
     * runs again and sends it in the batch's place (or before the first row past `from`). */
    {
        fo_model *mm = fo_model_ref(f->m);
        if (mm->state == FO_MODEL_READY && mm->master &&
            fo_master_snapshot(mm->master).command_count >= f->from + f->len)
            deliver_ack(p, f);
        fo_model_run(mm); /* a follower waiting for this answer goes on */
        fo_model_unref(mm);
    }
}

bool fo_peers_row_ready(fo_hub *h, fo_model *m, const char *client, uint64_t seq,
                        uint64_t from, fo_session **flusher)
{
    fo_peers *p = h->peers;
    char key[300];
    fwd *f, *next;

    *flusher = NULL;
    if (!p)
        return true;
    /* A forwarded flush of a subscribed flusher not answered yet: where its ack goes in the
     * stream is not known (an ack that applies nothing has no row), so the rows wait. */
    if (m->fwd_unanswered)
        return false;
    /* Acks that applied nothing at or before this row go out first. */
    for (f = m->fwd_empty ? p->list : NULL; f; f = next) {
        next = f->next;
        if (f->m == m && f->ack && f->len == 0 && f->from <= from) {
            deliver_ack(p, f);
            next = m->fwd_empty ? p->list : NULL;
        }
    }
    if (!client || !client[0])
        return true;
    snprintf(key, sizeof(key), "%s\x1f%llu\x1f%s", client, (unsigned long long)seq, m->name);
    if ((f = fo_strmap_get(&p->by_row, key, strlen(key))))
        *flusher = f->s;
    return true;
}

void fo_peers_row_done(fo_hub *h, fo_model *m, const char *client, uint64_t seq, uint64_t from,
                       uint64_t len)
{
    char key[300];
    fwd *f;

    if (!h->peers || !client || !client[0])
        return;
    snprintf(key, sizeof(key), "%s\x1f%llu\x1f%s", client, (unsigned long long)seq, m->name);
    if ((f = fo_strmap_get(&h->peers->by_row, key, strlen(key))) && f->ack &&
        f->from == from && f->len == len)
        deliver_ack(h->peers, f);
}

/* Sends the flush to its owner; false when it could not (then it runs here). */
static bool forward(fo_peers *p, fo_session *s, const fo_msg *msg, const char *owner)
{
    fo_hub *h = p->h;
    char subject[64], reply[128], key[24], *idj = NULL;
    size_t cl = strlen(s->client), il = 0, n;
    fo_frame *fr;
    unsigned char *buf;
    fo_model *m;
    fwd *f;
    natsStatus st;

    if (!(fr = fo_frame_encode(msg)))
        return false;
    if (s->rights.claims && !(idj = json_dumps(s->rights.claims, JSON_COMPACT)))
        goto fail;
    il = idj ? strlen(idj) : 0;
    n = 1 + cl + 4 + il + fr->len;
    if (!(buf = malloc(n)) || !(f = calloc(1, sizeof(*f)))) {
        free(buf);
        goto fail;
    }
    buf[0] = (unsigned char)cl;
    memcpy(buf + 1, s->client, cl);
    buf[1 + cl] = (unsigned char)il;
    buf[2 + cl] = (unsigned char)(il >> 8);
    buf[3 + cl] = (unsigned char)(il >> 16);
    buf[4 + cl] = (unsigned char)(il >> 24);
    if (il)
        memcpy(buf + 5 + cl, idj, il);
    memcpy(buf + 5 + cl + il, fr->data, fr->len);
    f->id = ++p->next_id;
    f->s = fo_session_ref(s);
    snprintf(f->model, sizeof(f->model), "%.*s", (int)msg->model_len, msg->model);
    f->has_rid = msg->has_rid;
    f->rid = msg->rid;
    f->deadline_ms = now_ms() + FWD_WAIT_MS;
    f->flush = fo_frame_ref(fr);
    f->t_recv = fo_now_ns();
    memcpy(f->owner, owner, 17);
    m = fo_strmap_get(&h->models, msg->model, msg->model_len);
    if (m && fo_session_find_sub(s, m)) {
        f->m = fo_model_ref(m);
        m->fwd_unanswered++;
        snprintf(f->row, sizeof(f->row), "%s\x1f%llu\x1f%s", s->client,
                 (unsigned long long)msg->seq, f->model);
    }
    snprintf(key, sizeof(key), "%llu", (unsigned long long)f->id);
    if (fo_strmap_put(&p->by_id, key, strlen(key), f) ||
        (f->m && fo_strmap_put(&p->by_row, f->row, strlen(f->row), f))) {
        fo_strmap_del(&p->by_id, key, strlen(key));
        fo_session_unref(f->s);
        fo_model_unref(f->m);
        fo_frame_unref(f->flush);
        free(f);
        free(buf);
        goto fail;
    }
    f->next = p->list;
    if (p->list)
        p->list->prev = f;
    p->list = f;
    snprintf(subject, sizeof(subject), FWD_PREFIX "%s", owner);
    snprintf(reply, sizeof(reply), ANS_PREFIX "%s.%llu", p->id, (unsigned long long)f->id);
    st = natsConnection_PublishRequest(p->nc, subject, reply, buf, (int)n);
    free(buf);
    free(idj);
    fo_frame_unref(fr);
    if (st != NATS_OK) {
        fail_fwd(p, f, FO_ERR_OVERLOADED, "cannot reach the hub that owns this model: retry");
        return true;
    }
    h->metrics.forwarded++;
    return true;
fail:
    free(idj);
    fo_frame_unref(fr);
    return false;
}

void fo_peers_request(fo_hub *h, fo_session *s, const fo_msg *msg, fo_arena *arena,
                      uint64_t t_recv)
{
    char owner[17];

    if (h->peers && msg->type == FO_MSG_FLUSH && !h->cfg.optimistic &&
        !owner_of(h->peers, msg->model, msg->model_len, owner) &&
        forward(h->peers, s, msg, owner)) {
        fo_arena_destroy(arena);
        return;
    }
    fo_model_submit(h, s, msg, arena, t_recv);
}

/* ---- the loop's handles ----------------------------------------------------------------- */

static void on_async(uv_async_t *a)
{
    fo_peers *p = a->data;
    item *it, *next;

    pthread_mutex_lock(&p->mu);
    it = p->head;
    p->head = p->tail = NULL;
    pthread_mutex_unlock(&p->mu);
    for (; it; it = next) {
        next = it->next;
        if (!p->stopping) {
            if (it->kind == REQ)
                run_request(p, it);
            else if (it->kind == PRES)
                fo_presence_take(p->h->presence, it->data, it->n);
            else
                take_answer(p, it);
        }
        free(it);
    }
}

static void on_timer(uv_timer_t *t)
{
    fo_peers *p = t->data;
    uint64_t now = now_ms();
    fwd *f, *next;

    natsConnection_Publish(p->nc, BEATS, p->id, 16); /* NATS down: nats.c buffers it */
    {
        char gone[MAX_MEMBERS][17];
        uint32_t ngone = 0;
        pthread_mutex_lock(&p->mu);
        for (uint32_t i = 0; i < p->nmembers; i++) {
            bool dead = now - p->members[i].seen_ms > ALIVE_MS;
            if (dead && !p->members[i].gone)
                memcpy(gone[ngone++], p->members[i].id, 17);
            p->members[i].gone = dead;
        }
        pthread_mutex_unlock(&p->mu);
        for (uint32_t i = 0; i < ngone; i++)
            fo_presence_hub_gone(p->h->presence, gone[i]);
    }
    for (f = p->list; f; f = next) {
        next = f->next;
        if (now >= f->deadline_ms)
            fail_fwd(p, f, FO_ERR_OVERLOADED,
                     "the hub that owns this model did not answer within 5 s: retry");
    }
}

static void on_closed(uv_handle_t *hd)
{
    fo_peers *p = hd->data;
    item *it, *next;

    if (--p->open_handles)
        return;
    for (it = p->head; it; it = next) {
        next = it->next;
        free(it);
    }
    for (int i = 0; i < 4; i++)
        natsSubscription_Destroy(p->subs[i]);
    natsConnection_Destroy(p->nc); /* closed by fo_peers_stop; sinks used it till now */
    fo_presence_free(p->h->presence);
    p->h->presence = NULL;
    fo_strmap_destroy(&p->by_id);
    fo_strmap_destroy(&p->by_row);
    fo_nats_done_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int fo_peers_start(fo_hub *h, const char *urls, fo_peers **out, char *msg, size_t ml)
{
    fo_peers *p = calloc(1, sizeof(*p));
    unsigned char rnd[8];
    char ans[64];
    natsStatus s = NATS_OK;
    int rc;

    if (!p) {
        snprintf(msg, ml, "out of memory");
        return FO_ENOMEM;
    }
    p->h = h;
    pthread_mutex_init(&p->mu, NULL);
    fo_nats_done_init(&p->done);
    fo_strmap_init(&p->by_id);
    fo_strmap_init(&p->by_row);
    if (!(h->presence = fo_presence_new(h))) {
        snprintf(msg, ml, "out of memory");
        return FO_ENOMEM;
    }
    if (uv_random(NULL, NULL, rnd, sizeof(rnd), 0, NULL) != 0) {
        uint64_t t = uv_hrtime() ^ ((uint64_t)getpid() << 32);
        memcpy(rnd, &t, sizeof(rnd));
    }
    for (int i = 0; i < 8; i++)
        snprintf(p->id + 2 * i, 3, "%02x", rnd[i]);
    uv_async_init(&h->loop, &p->async, on_async);
    uv_timer_init(&h->loop, &p->timer);
    p->async.data = p->timer.data = p;
    p->open_handles = 2;
    *out = p;
    if ((rc = fo_nats_connect(urls, "flushout-hub peers", &p->nc, msg, ml)))
        return rc;
    snprintf(p->fwd_subject, sizeof(p->fwd_subject), FWD_PREFIX "%s", p->id);
    snprintf(ans, sizeof(ans), ANS_PREFIX "%s.*", p->id);
    if ((s = natsConnection_Subscribe(&p->subs[0], p->nc, BEATS, on_beat, p)) != NATS_OK ||
        (s = natsConnection_Subscribe(&p->subs[1], p->nc, p->fwd_subject, on_request, p)) !=
            NATS_OK ||
        (s = natsConnection_Subscribe(&p->subs[2], p->nc, ans, on_answer, p)) != NATS_OK ||
        (s = natsConnection_Subscribe(&p->subs[3], p->nc, FO_PRESENCE_SUBJECTS, on_presence, p)) !=
            NATS_OK) {
        snprintf(msg, ml, "subscribing at %s: %s", urls, fo_nats_last_error(s));
        return FO_STORE_EIO;
    }
    for (int i = 0; i < 4; i++)
        natsSubscription_SetOnCompleteCB(p->subs[i], fo_nats_done_cb, &p->done);
    snprintf(h->sid_prefix, sizeof(h->sid_prefix), "%.8s-", p->id);
    fo_presence_connect(h->presence, p->nc);
    natsConnection_Publish(p->nc, BEATS, p->id, 16);
    uv_timer_start(&p->timer, on_timer, BEAT_MS, BEAT_MS);
    FO_LOG(FO_LOG_INFO, "cluster: this hub is %s; flushes go to their model's owner%s", p->id,
           h->cfg.optimistic ? " (no: --optimistic)" : "");
    return 0;
}

void fo_peers_stop(fo_peers *p)
{
    int subs = 0;

    if (!p)
        return;
    while (p->list)
        fail_fwd(p, p->list, FO_ERR_SHUTTING_DOWN, "the hub is stopping: retry on another");
    p->stopping = true;
    fo_presence_connect(p->h->presence, NULL);
    uv_timer_stop(&p->timer);
    for (int i = 0; i < 4; i++)
        subs += p->subs[i] != NULL;
    /* Closed, not destroyed: answers of forwarded flushes still settling are dropped
     * (publishing on a closed connection fails cleanly); destroyed with the handles. */
    if (p->nc)
        natsConnection_Close(p->nc);
    fo_nats_done_wait(&p->done, subs, 2000);
    uv_close((uv_handle_t *)&p->async, on_closed);
    uv_close((uv_handle_t *)&p->timer, on_closed);
}
