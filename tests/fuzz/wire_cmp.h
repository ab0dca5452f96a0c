/* wire_cmp.h - deep equality of decoded wire messages, shared by tests/test_wire.c and the
 * fuzz target. Test-only and header-only. Compares exactly the fields that the message's
 * type carries on the wire (what fo_wire_encode writes). */
#ifndef FO_TEST_WIRE_CMP_H
#define FO_TEST_WIRE_CMP_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wire.h"

static bool wc_str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool wc_path_eq(fo_path a, fo_path b)
{
    if (a.len != b.len)
        return false;
    for (uint32_t i = 0; i < a.len; i++)
        if (!fo_key_eq(a.seg[i], b.seg[i]))
            return false;
    return true;
}

/* fo_value_eq, except that NaN equals itself: the codec keeps a NaN's bits, so two
 * trees whose encodings are byte-identical are the same value. */
static bool wc_value_eq(const fo_value *a, const fo_value *b)
{
    if (!a || !b)
        return a == b;
    if (fo_value_eq(a, b))
        return true;
    fo_buf x, y;
    fo_buf_init(&x, 0);
    fo_buf_init(&y, 0);
    bool eq = fo_wire_encode_value(a, &x) == 0 && fo_wire_encode_value(b, &y) == 0 &&
              x.len == y.len && memcmp(fo_buf_data(&x), fo_buf_data(&y), x.len) == 0;
    fo_buf_destroy(&x);
    fo_buf_destroy(&y);
    return eq;
}

static bool wc_command_eq(const fo_command *a, const fo_command *b)
{
    return a->action == b->action && wc_path_eq(a->path, b->path) &&
           wc_value_eq(a->props, b->props) && wc_value_eq(a->parent_default, b->parent_default);
}

static bool wc_batch_eq(const fo_batch *a, const fo_batch *b)
{
    if (a->from != b->from || a->len != b->len)
        return false;
    for (uint32_t i = 0; i < a->len; i++) {
        if (!wc_command_eq(&a->items[i].command, &b->items[i].command) ||
            !fo_key_eq(a->items[i].created_id, b->items[i].created_id))
            return false;
    }
    return true;
}

static bool wc_snapshot_eq(const fo_snapshot *a, const fo_snapshot *b)
{
    return a->command_count == b->command_count && wc_value_eq(a->document, b->document);
}

static bool wc_sync_eq(const fo_sync *a, const fo_sync *b)
{
    if (a->kind != b->kind || a->has_mapped != b->has_mapped)
        return false;
    if (a->kind == FO_SYNC_PARTIAL && !wc_batch_eq(&a->diff, &b->diff))
        return false;
    if (a->kind == FO_SYNC_FULL && !wc_snapshot_eq(&a->latest, &b->latest))
        return false;
    if (!a->has_mapped)
        return true;
    if (a->mapped_len != b->mapped_len)
        return false;
    for (uint32_t i = 0; i < a->mapped_len; i++) {
        if (!wc_path_eq(a->mapped[i].from, b->mapped[i].from) ||
            !wc_path_eq(a->mapped[i].to, b->mapped[i].to))
            return false;
    }
    return true;
}

static bool wc_result_eq(const fo_apply_result *a, const fo_apply_result *b)
{
    if (!wc_batch_eq(&a->applied, &b->applied) || !wc_sync_eq(&a->sync, &b->sync) ||
        a->errors_len != b->errors_len)
        return false;
    for (uint32_t i = 0; i < a->errors_len; i++) {
        const fo_completion_error *x = &a->errors[i], *y = &b->errors[i];
        if (x->action != y->action || !wc_path_eq(x->path, y->path) ||
            !wc_str_eq(x->message, y->message))
            return false;
    }
    return true;
}

static bool wc_model_eq(const fo_msg *a, const fo_msg *b)
{
    return wc_str_eq(a->model, b->model);
}

static bool wc_msg_eq(const fo_msg *a, const fo_msg *b)
{
    if (a->type != b->type || a->has_rid != b->has_rid || (a->has_rid && a->rid != b->rid))
        return false;
    switch (a->type) {
    case FO_MSG_HELLO: return wc_str_eq(a->client, b->client) && wc_str_eq(a->token, b->token);
    case FO_MSG_SUB:
        return wc_model_eq(a, b) && a->has_from == b->has_from &&
               (!a->has_from || a->from == b->from);
    case FO_MSG_UNSUB: return wc_model_eq(a, b);
    case FO_MSG_FLUSH:
        return wc_model_eq(a, b) && a->seq == b->seq && wc_batch_eq(&a->batch, &b->batch);
    case FO_MSG_GET:
        return wc_model_eq(a, b) && a->has_at == b->has_at && (!a->has_at || a->at == b->at);
    case FO_MSG_HISTORY:
        return wc_model_eq(a, b) && a->from == b->from && a->has_to == b->has_to &&
               (!a->has_to || a->to == b->to);
    case FO_MSG_PRESENCE: return wc_model_eq(a, b) && wc_value_eq(a->state, b->state);
    case FO_MSG_PRESENCE_EVT:
        return wc_model_eq(a, b) && wc_str_eq(a->session, b->session) &&
               wc_value_eq(a->state, b->state);
    case FO_MSG_WELCOME:
        return wc_str_eq(a->session, b->session) && wc_str_eq(a->server, b->server) &&
               a->max_frame == b->max_frame;
    case FO_MSG_SNAP: return wc_model_eq(a, b) && wc_snapshot_eq(&a->snapshot, &b->snapshot);
    case FO_MSG_DIFF:
    case FO_MSG_PUSH: return wc_model_eq(a, b) && wc_batch_eq(&a->batch, &b->batch);
    case FO_MSG_OK: return true;
    case FO_MSG_ACK:
        return wc_model_eq(a, b) && a->seq == b->seq && wc_result_eq(&a->result, &b->result);
    case FO_MSG_ERROR:
        return wc_model_eq(a, b) && a->code == b->code && wc_str_eq(a->message, b->message) &&
               a->has_retry_after == b->has_retry_after &&
               (!a->has_retry_after || a->retry_after_ms == b->retry_after_ms);
    case FO_MSG_NONE: break;
    }
    return false;
}

#endif
