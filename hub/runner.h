/* runner.h - what each model request does once its model is loaded and its turn has
 * come (the model's runner calls fo_runner_exec for one task at a time). Replies that
 * show the model's state join the current commit group; the others leave at once. */
#ifndef FO_RUNNER_H
#define FO_RUNNER_H

#include "hub/model.h"

/* Runs `t`. False when it waits for history read back from the store
 * (fo_model_need_history): the task stays queued and runs again, from the start. */
bool fo_runner_exec(fo_model *m, fo_task *t);
/* Answers a task that will not run with an error (or an HTTP status). */
void fo_runner_reject(fo_task *t, fo_error_code code, const char *why);
void fo_runner_task_free(fo_task *t);
void fo_runner_pending_free(fo_pending *p);

/* Shared with model.c. */
bool fo_model_history_covers(fo_model *m, uint64_t from, uint64_t to);
int fo_model_history(fo_model *m, uint64_t from, uint64_t to, fo_arena *a, fo_batch *out);
/* The same range for a frame to a session (a push or a diff): msg->batch with the encoded
 * batches spliced in (msg->ext_parts; encode before the history changes), or decoded when
 * they cannot be. Not for HTTP replies, which re-encode the commands as JSON. */
int fo_model_history_msg(fo_model *m, uint64_t from, uint64_t to, fo_arena *a, fo_msg *msg);
void fo_model_account(fo_model *m);
/* The internal catch-up task (msg.type FO_MSG_PUSH) of a lagging subscriber. */
bool fo_model_exec_catch_up(fo_model *m, fo_task *t);

#endif
