/* walbuf.h - an SQLite VFS that writes each transaction's WAL frames in one go.
 *
 * SQLite appends a transaction to its write-ahead log one frame at a time, and each frame
 * as two writes (a 24-byte header, then the page): a commit that touches 20 pages costs 40
 * pwrite calls. This VFS wraps the default one ("unix") and changes one thing: writes to a
 * WAL file that continue one another are gathered in memory and reach the file when the
 * transaction's commit frame is complete (a header whose "database size" field is set,
 * then its page), in pieces of at most FO_WALBUF_CHUNK bytes, so a commit is one or two
 * pwrite. Every other access to that WAL file (read, sync, truncate, size, file control,
 * close) writes what is gathered first, so SQLite never sees the difference, and a failed
 * write is reported by the call that made it, the commit frame's: the transaction fails
 * and SQLite rolls it back as on any failed write. Database, journal and other files go
 * straight through.
 *
 * When a commit returns, its frames are in the kernel (as without this VFS); making them
 * durable is still a sync of the WAL (synchronous=FULL, or store_sqlite.c's syncer).
 *
 * Use: sqlite3_open_v2(path, &db, flags, fo_walbuf_vfs()). Thread-safe: the VFS is
 * registered once, and each open file has its own buffer (a connection is used by one
 * thread at a time, as SQLite requires anyway). */
#ifndef FO_WALBUF_H
#define FO_WALBUF_H

#include <stdint.h>

/* Most bytes handed to the underlying write at once (the unix VFS writes at most 128 KiB
 * - 1 bytes per call and reports a shorter write as SQLITE_FULL). */
#define FO_WALBUF_CHUNK (31u * 4096u)

/* Registers the VFS on first use (not as the default) and returns its name, or NULL when
 * SQLite has no default VFS or the registration failed. */
const char *fo_walbuf_vfs(void);

/* Process-wide counters, for tests and the curious: WAL writes SQLite asked for, and the
 * writes that reached the file. */
typedef struct fo_walbuf_stats {
    uint64_t asked;
    uint64_t written;
} fo_walbuf_stats;

void fo_walbuf_stats_get(fo_walbuf_stats *out);

#endif
