/* follow.h - on --cluster, every hub keeps the models it holds in memory level with what
 * other hubs append to their logs, and pushes those batches to its own subscribers.
 *
 * One ordered JetStream consumer per hub on every model's subject (fo.log.>), delivering
 * the records appended after the hub started, in stream order, on a NATS thread; they reach
 * the loop through a uv_async. A record of a model this hub holds (loading or loaded) is
 * queued in the model's runner like a request, so it runs between flushes, never inside
 * one; there each batch the master does not have yet (its own appends come back too, and
 * are skipped by their counts) is applied as stored, added to the history, its exactly-once
 * key taken, and pushed to the local subscribers, once per hub. A record that does not
 * continue the model's count (a gap: the consumer was reset past it, or this hub's own
 * conflicting append is in flight) reloads the model from the log. Models not in memory
 * ignore records: their next load reads the log to its end.
 *
 * The follower also tells the store where each model's log ends (fo_follow_log_end, the
 * store's log_end option), so a hub that applied another hub's batch fences its next append
 * on that record instead of having it refused. Presence does not cross hubs yet. */
#ifndef FO_FOLLOW_H
#define FO_FOLLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fo_hub fo_hub;
typedef struct fo_model fo_model;
typedef struct fo_task fo_task;
typedef struct fo_follow fo_follow;

/* The follower's state and its loop handle, before the store opens (its log_end). 0 or
 * FO_ENOMEM. */
int fo_follow_new(fo_hub *h, fo_follow **out);
/* Connects to `urls` and starts the consumer, once the store has made sure of the stream.
 * 0, or an error code with the reason in msg[0..ml). */
int fo_follow_start(fo_follow *f, const char *urls, char *msg, size_t ml);
/* Stops the consumer and closes the connection; the rest is freed once the loop has closed
 * the follower's handle (run the loop). NULL is a no-op. */
void fo_follow_stop(fo_follow *f);

/* The store's log_end (store.h): thread-safe. */
bool fo_follow_log_end(void *f, const char *model, uint64_t *seq, uint64_t *count);

/* Frees a followed record (fo_task.record). NULL is a no-op. */
void fo_follow_record_free(void *record);
/* Runs a followed record's task (t->record) in the model's runner: true when done, false
 * while it waits (replies of this hub in flight, or a forwarded flush's answer). */
bool fo_model_exec_follow(fo_model *m, fo_task *t);

#endif
