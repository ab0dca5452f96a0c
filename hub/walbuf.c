/* walbuf.c - the WAL write-gathering VFS (walbuf.h). Every method of a wrapped file
 * forwards to the real one; a WAL file's xWrite gathers, and the methods that could observe
 * the file first write what was gathered (wb_flush). */
#include "hub/walbuf.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define WAL_FRAME_HDR 24
#define BUF_CAP (8 * FO_WALBUF_CHUNK)

typedef struct wb_file {
    sqlite3_file base;   /* pMethods: wb_io, or NULL when the real open failed */
    sqlite3_file *real;  /* the wrapped file, allocated right behind this struct */
    int wal;             /* a WAL file: writes are gathered */
    int commit_next;     /* the last write was a commit frame's header: its page ends it */
    unsigned char *buf;  /* buf[0..len) goes to offset `off` */
    size_t len;
    sqlite3_int64 off;
} wb_file;

static sqlite3_vfs *g_real;
static sqlite3_vfs g_vfs;
static const sqlite3_io_methods wb_io;
static const char *g_name;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static uint64_t g_asked, g_written;

#define REAL(p) (((wb_file *)(p))->real)
#define RM(p) (REAL(p)->pMethods)

static int wb_flush(wb_file *f)
{
    size_t done = 0;
    int rc = SQLITE_OK;

    while (done < f->len && rc == SQLITE_OK) {
        size_t n = f->len - done < FO_WALBUF_CHUNK ? f->len - done : FO_WALBUF_CHUNK;
        rc = f->real->pMethods->xWrite(f->real, f->buf + done, (int)n,
                                       f->off + (sqlite3_int64)done);
        __atomic_fetch_add(&g_written, 1, __ATOMIC_RELAXED);
        done += n;
    }
    f->len = 0;
    f->commit_next = 0;
    return rc;
}

static int wb_write(sqlite3_file *p, const void *b, int n, sqlite3_int64 o)
{
    wb_file *f = (wb_file *)p;
    const unsigned char *h = b;
    int rc, ends_commit;

    if (!f->wal)
        return RM(p)->xWrite(REAL(p), b, n, o);
    __atomic_fetch_add(&g_asked, 1, __ATOMIC_RELAXED);
    if (!f->buf && !(f->buf = malloc(BUF_CAP)))
        return SQLITE_IOERR_NOMEM;
    if (f->len && (f->off + (sqlite3_int64)f->len != o || f->len + (size_t)n > BUF_CAP) &&
        (rc = wb_flush(f)))
        return rc;
    ends_commit = f->commit_next;
    /* A frame header (big-endian page number, then the database size after a commit or 0). */
    f->commit_next = n == WAL_FRAME_HDR && (h[4] | h[5] | h[6] | h[7]) != 0;
    if ((size_t)n > BUF_CAP) {
        __atomic_fetch_add(&g_written, 1, __ATOMIC_RELAXED);
        return RM(p)->xWrite(REAL(p), b, n, o);
    }
    if (!f->len)
        f->off = o;
    memcpy(f->buf + f->len, b, (size_t)n);
    f->len += (size_t)n;
    return ends_commit ? wb_flush(f) : SQLITE_OK;
}

static int wb_close(sqlite3_file *p)
{
    wb_file *f = (wb_file *)p;
    int rc = wb_flush(f), rc2 = RM(p)->xClose(REAL(p));

    free(f->buf);
    f->buf = NULL;
    return rc ? rc : rc2;
}

static int wb_read(sqlite3_file *p, void *b, int n, sqlite3_int64 o)
{
    int rc = wb_flush((wb_file *)p);

    return rc ? rc : RM(p)->xRead(REAL(p), b, n, o);
}

static int wb_truncate(sqlite3_file *p, sqlite3_int64 size)
{
    int rc = wb_flush((wb_file *)p);

    return rc ? rc : RM(p)->xTruncate(REAL(p), size);
}

static int wb_sync(sqlite3_file *p, int flags)
{
    int rc = wb_flush((wb_file *)p);

    return rc ? rc : RM(p)->xSync(REAL(p), flags);
}

static int wb_size(sqlite3_file *p, sqlite3_int64 *size)
{
    int rc = wb_flush((wb_file *)p);

    return rc ? rc : RM(p)->xFileSize(REAL(p), size);
}

static int wb_fcntl(sqlite3_file *p, int op, void *arg)
{
    int rc = wb_flush((wb_file *)p);

    return rc ? rc : RM(p)->xFileControl(REAL(p), op, arg);
}

static int wb_lock(sqlite3_file *p, int l)
{
    return RM(p)->xLock(REAL(p), l);
}

static int wb_unlock(sqlite3_file *p, int l)
{
    return RM(p)->xUnlock(REAL(p), l);
}

static int wb_reserved(sqlite3_file *p, int *out)
{
    return RM(p)->xCheckReservedLock(REAL(p), out);
}

static int wb_sector(sqlite3_file *p)
{
    return RM(p)->xSectorSize(REAL(p));
}

static int wb_device(sqlite3_file *p)
{
    return RM(p)->xDeviceCharacteristics(REAL(p));
}

/* The shared-memory and mmap methods exist from io_methods version 2 and 3 on. */
static int wb_shm_map(sqlite3_file *p, int pg, int sz, int extend, void volatile **out)
{
    if (RM(p)->iVersion < 2 || !RM(p)->xShmMap)
        return SQLITE_IOERR_SHMMAP;
    return RM(p)->xShmMap(REAL(p), pg, sz, extend, out);
}

static int wb_shm_lock(sqlite3_file *p, int off, int n, int flags)
{
    if (RM(p)->iVersion < 2 || !RM(p)->xShmLock)
        return SQLITE_IOERR_SHMLOCK;
    return RM(p)->xShmLock(REAL(p), off, n, flags);
}

static void wb_shm_barrier(sqlite3_file *p)
{
    if (RM(p)->iVersion >= 2 && RM(p)->xShmBarrier)
        RM(p)->xShmBarrier(REAL(p));
}

static int wb_shm_unmap(sqlite3_file *p, int del)
{
    if (RM(p)->iVersion < 2 || !RM(p)->xShmUnmap)
        return SQLITE_OK;
    return RM(p)->xShmUnmap(REAL(p), del);
}

static int wb_fetch(sqlite3_file *p, sqlite3_int64 o, int n, void **out)
{
    int rc = wb_flush((wb_file *)p);

    *out = NULL;
    if (rc || RM(p)->iVersion < 3 || !RM(p)->xFetch)
        return rc;
    return RM(p)->xFetch(REAL(p), o, n, out);
}

static int wb_unfetch(sqlite3_file *p, sqlite3_int64 o, void *ptr)
{
    if (RM(p)->iVersion < 3 || !RM(p)->xUnfetch)
        return SQLITE_OK;
    return RM(p)->xUnfetch(REAL(p), o, ptr);
}

static const sqlite3_io_methods wb_io = {
    3,         wb_close,     wb_read,     wb_write,    wb_truncate,    wb_sync,
    wb_size,   wb_lock,      wb_unlock,   wb_reserved, wb_fcntl,       wb_sector,
    wb_device, wb_shm_map,   wb_shm_lock, wb_shm_barrier, wb_shm_unmap, wb_fetch,
    wb_unfetch,
};

static int wb_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *p, int flags, int *out)
{
    wb_file *f = (wb_file *)p;
    int rc;

    (void)vfs;
    memset(f, 0, sizeof(*f));
    f->real = (sqlite3_file *)(f + 1);
    rc = g_real->xOpen(g_real, name, f->real, flags, out);
    if (rc != SQLITE_OK || !f->real->pMethods) {
        /* SQLite calls xClose only when pMethods is set: close what the real open left. */
        if (f->real->pMethods)
            f->real->pMethods->xClose(f->real);
        f->base.pMethods = NULL;
        return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
    }
    f->wal = (flags & SQLITE_OPEN_WAL) != 0;
    f->base.pMethods = &wb_io;
    return SQLITE_OK;
}

static void wb_register(void)
{
    if (!(g_real = sqlite3_vfs_find(NULL)))
        return;
    g_vfs = *g_real;
    g_vfs.pNext = NULL;
    g_vfs.zName = "flushout-walbuf";
    g_vfs.szOsFile = (int)sizeof(wb_file) + g_real->szOsFile;
    g_vfs.xOpen = wb_open;
    if (sqlite3_vfs_register(&g_vfs, 0) == SQLITE_OK)
        g_name = g_vfs.zName;
}

const char *fo_walbuf_vfs(void)
{
    pthread_once(&g_once, wb_register);
    return g_name;
}

void fo_walbuf_stats_get(fo_walbuf_stats *out)
{
    out->asked = __atomic_load_n(&g_asked, __ATOMIC_RELAXED);
    out->written = __atomic_load_n(&g_written, __ATOMIC_RELAXED);
}
