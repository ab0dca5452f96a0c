/* sendq.h - socket writes handed to the kernel together: one io_uring_enter for a batch
 * of writes to many connections, instead of one send() system call each. The hub's
 * end-of-turn writer (hub/wsconn.c) and the load generator (bench/loadgen/ws.c) use it.
 *
 * Why: at fan-out the hub's time is the kernel's, and a good part of it is the price of
 * entering and leaving it once per socket write (on a paravirtualised kernel, most of it).
 * A batch pays it once. Each write is a plain IORING_OP_SEND with MSG_DONTWAIT, so the
 * kernel does exactly what send() on the non-blocking socket would: it takes what fits
 * and answers at once (bytes taken, or -EAGAIN); nothing is left waiting in the kernel,
 * and when fo_sendq_submit returns every write of the batch has been answered.
 *
 * Where io_uring cannot be had (a kernel before 5.6, io_uring_disabled, a seccomp profile
 * that refuses it, as container runtimes' defaults do) fo_sendq_open returns NULL with the
 * reason, and the caller sends directly as before: same bytes, same order, one syscall
 * per write.
 *
 * Buffers: the bytes of a queued write live in the queue's arena (fo_sendq_reserve) until
 * its completion has been handled; the arena is reused by the next batch (one grown past
 * 4 MiB for a large write goes back to 1 MiB after its batch). */
#ifndef FO_SENDQ_H
#define FO_SENDQ_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct fo_sendq fo_sendq;

/* Called once per queued write, in fo_sendq_submit: ctx and the bytes as queued, and what
 * the socket took (>= 0) or -errno (-EIO for every write of a batch the ring failed to
 * take: the queue refuses writes from then on, fo_sendq_broken says so). Arena bytes
 * stay valid during the call only. */
typedef void (*fo_sendq_done)(void *ctx, const unsigned char *buf, size_t len, ssize_t res);

/* A queue of at most `entries` writes per batch. NULL when io_uring is not available here
 * (*why says why, a static string). */
fo_sendq *fo_sendq_open(unsigned entries, fo_sendq_done done, const char **why);
void fo_sendq_close(fo_sendq *q);

/* Room in the batch's arena for a write of at most len bytes, or NULL when the batch
 * cannot take it now (full of writes or of bytes: submit it, then ask again: an empty
 * batch always has room, growing its arena if it must; or being answered, or broken:
 * write directly then). Pass it to fo_sendq_add before reserving again. */
unsigned char *fo_sendq_reserve(fo_sendq *q, size_t len);
/* Queues a write of buf[0, len) to fd: buf from fo_sendq_reserve, or the caller's own
 * bytes, left untouched until the completion. The caller keeps fd open until then.
 * -1 when the batch cannot take it (as fo_sendq_reserve), else 0. */
int fo_sendq_add(fo_sendq *q, int fd, const unsigned char *buf, size_t len, void *ctx);
/* Hands every queued write to the kernel and calls `done` for each. No-op when empty or
 * q is NULL. */
void fo_sendq_submit(fo_sendq *q);
/* Writes queued and not yet submitted. */
unsigned fo_sendq_queued(const fo_sendq *q);
/* The ring failed (not expected: say so in the log); every write is refused since. */
bool fo_sendq_broken(const fo_sendq *q);

#endif
