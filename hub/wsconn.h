/* wsconn.h - the socket side of a session (session.h): RFC 6455 frames in and out on the
 * hub's own non-blocking socket, with proto/ws.h doing the framing.
 *
 * In: one recv per readable event into a buffer the hub shares between connections; every
 * whole frame in it is handled in place (a one-frame message goes to
 * fo_session_on_message without a copy); only the bytes of an unfinished frame are kept
 * per connection, so an idle connection holds no buffer. Fragments are reassembled up to
 * --max-frame; a larger message is answered with too_large and dropped without being
 * buffered. Pings are answered, a close frame is echoed, a framing violation closes the
 * connection with 1002.
 *
 * Out: the queued frames of a connection are packed (header + payload, up to 256 KiB) and
 * written with one send: queued in the hub's send batch (sendq.h: every connection's pack
 * of a pass in one io_uring submission), or a direct send() without it and with TLS. A
 * send that the socket does not take whole keeps its unsent end (at most one pack) and
 * arms POLLOUT; nothing more is sent until that end has gone out.
 * That is the only case that changes what the socket is polled for. */
#ifndef FO_WSCONN_H
#define FO_WSCONN_H

#include <stddef.h>
#include <sys/types.h>

#include "hub/session.h"

/* Starts watching the socket (readable, and writable while a partial write is pending,
 * not readable while reading is paused). */
void fo_wsconn_update_poll(fo_session *s);
/* Handles bytes that came with the upgrade, as if just read (in place). */
void fo_wsconn_feed(fo_session *s, unsigned char *data, size_t len);
/* Writes what is queued as long as the socket takes it whole; then, when the queue is
 * empty, a closing session's close frame, and a drained one's lagging subscribers catch
 * up. The session may be ended by this call (a failed socket). */
void fo_wsconn_write(fo_session *s);
/* The hub's sendq.h completion: a batched write of buf[0, len) to the session `ctx` took
 * res bytes (or -errno); the session goes on as after a direct write. */
void fo_wsconn_sent(void *ctx, const unsigned char *buf, size_t len, ssize_t res);
/* Frees the per-connection buffers (at the end of the session). */
void fo_wsconn_free(fo_session *s);

#endif
