/* hubproc.h - runs the real hub binary as a child process for integration tests: a fresh
 * temporary folder per hub (data directory and log), readiness from the hub's own
 * `listening on 127.0.0.1:PORT` line, SIGTERM/SIGKILL, and restarts on the same data
 * directory and port. Test-only (library fo_testsupport); never logs, never aborts.
 *
 * The hub is started as
 *   BIN --listen 127.0.0.1:0 --data DIR/data --store STORE --sequential-ids --log-level info
 *       --overload-lag-ms 0
 * ARGS... (port 0 the first time, the port it reported on restarts). Its stdout and stderr go
 * through a pipe that a thread drains into DIR/hub.log for the hub's whole life, so the pipe never
 * fills. The child gets PR_SET_PDEATHSIG(SIGKILL): a test that crashes or times out does not
 * leave a hub behind. Only the child's own pid is ever signalled. */
#ifndef FO_TEST_HUBPROC_H
#define FO_TEST_HUBPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct fo_hubproc_options {
    const char *bin;         /* NULL: $FO_HUB_BIN */
    const char *store;       /* "sqlite" or "memory"; NULL: "memory" */
    const char *const *args; /* more arguments, NULL-terminated; NULL for none */
    const char *const *env;  /* more environment entries "K=V", NULL-terminated. An
                              * ASAN_OPTIONS entry is appended to the inherited one with ':' */
    int ready_timeout_ms;    /* wait for the listening line; 0: 10000 */
    bool random_ids;         /* leave out --sequential-ids */
} fo_hubproc_options;

typedef struct fo_hubproc fo_hubproc;

/* Makes the temporary folder (mkdtemp under $TMPDIR or /tmp) and copies the options; does not
 * start anything. NULL on failure (out of memory, mkdtemp). */
fo_hubproc *fo_hubproc_new(const fo_hubproc_options *o);
/* Starts the hub (again, on the same data directory and, after the first run, the same port)
 * and waits for its listening line. Returns 0, or -1 with fo_hubproc_error() saying why (the
 * hub exited, printed nothing in time, or exec failed), the end of its log included. The
 * previous run must have been stopped or killed. */
int fo_hubproc_start(fo_hubproc *h);
/* SIGTERM, then waits up to timeout_ms (0: 10000) for the exit. Returns 0 with *wstatus (as
 * from waitpid; may be NULL) when it exited; -1 when it did not in time (it is then killed
 * with SIGKILL and reaped) or was not running. */
int fo_hubproc_stop(fo_hubproc *h, int timeout_ms, int *wstatus);
/* SIGKILL and reap. Returns 0, or -1 when it was not running. */
int fo_hubproc_kill(fo_hubproc *h);
/* Sends `sig` to the running hub (e.g. SIGTERM without waiting). 0 or -1. */
int fo_hubproc_signal(fo_hubproc *h, int sig);
/* Reaps the hub if it has exited, waiting up to timeout_ms. 0 with *wstatus, or -1. */
int fo_hubproc_wait(fo_hubproc *h, int timeout_ms, int *wstatus);
/* Stops the hub if it runs (SIGTERM, then SIGKILL after 5 s), joins the drain thread, echoes
 * sanitizer reports found in the hub's log to stderr (so that ctest's FAIL_REGULAR_EXPRESSION
 * sees them: an ASan hub runs LeakSanitizer at exit) and removes the folder, unless
 * $FO_KEEP_HUB_DIR is set (its path is printed then). NULL is a no-op. */
void fo_hubproc_free(fo_hubproc *h);

bool fo_hubproc_running(const fo_hubproc *h);
int fo_hubproc_port(const fo_hubproc *h);
pid_t fo_hubproc_pid(const fo_hubproc *h);
const char *fo_hubproc_dir(const fo_hubproc *h);      /* the temporary folder */
const char *fo_hubproc_data_dir(const fo_hubproc *h); /* DIR/data, passed as --data */
const char *fo_hubproc_log_path(const fo_hubproc *h); /* DIR/hub.log, every run appended */
const char *fo_hubproc_error(const fo_hubproc *h);
/* VmRSS of the running hub in KiB (from /proc/PID/status), -1 when unknown. */
long fo_hubproc_rss_kb(const fo_hubproc *h);
/* The last `max` bytes of the log, malloc'd and NUL-terminated (free it); NULL on failure. */
char *fo_hubproc_log_tail(const fo_hubproc *h, size_t max);
/* Number of log lines that contain `needle`. */
int fo_hubproc_log_count(const fo_hubproc *h, const char *needle);
/* Describes an exit status: "exit 0", "killed by signal 9", ... in `buf`; returns buf. */
const char *fo_hubproc_status_str(int wstatus, char *buf, size_t n);

#endif
