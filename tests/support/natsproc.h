/* natsproc.h - runs a real nats-server (JetStream on, file storage in a fresh temporary
 * folder) as a child process for tests: on 127.0.0.1 and a free port, ready once it logs
 * "Server is ready", stopped, killed and restarted (same port, same storage) by its own pid
 * only. Test-only (library fo_testsupport); never aborts.
 *
 * The server is started as `nats-server -js -a 127.0.0.1 -p PORT -sd DIR/js`, its output
 * appended to DIR/nats.log; it gets PR_SET_PDEATHSIG(SIGKILL), so a crashed test leaves
 * none behind. */
#ifndef FO_TEST_NATSPROC_H
#define FO_TEST_NATSPROC_H

#include <stdbool.h>
#include <stddef.h>

typedef struct fo_natsproc fo_natsproc;

/* The nats-server binary ($FO_NATS_SERVER, else nats-server on PATH, /usr/sbin or
 * /usr/bin), or NULL when there is none: tests then skip and say so. */
const char *fo_natsproc_bin(void);
/* Makes the folder, picks a free port and starts the server; NULL when it could not (the
 * reason is printed to stderr). */
fo_natsproc *fo_natsproc_start(void);
/* Starts `count` (1..5) nodes forming one JetStream cluster on loopback (each its own folder,
 * client and route ports, routes to every node), and waits until one of them logs that the
 * cluster has a JetStream meta leader (20 s at most). Writes their client URLs,
 * comma-separated, into urls[0..cap). 0, or -1 with every node stopped and freed. */
int fo_natsproc_start_cluster(fo_natsproc **nodes, int count, char *urls, size_t cap);
/* SIGTERM (kill = false) or SIGKILL, then reaps it. 0, or -1 when it was not running. */
int fo_natsproc_stop(fo_natsproc *n, bool kill);
/* Starts it again on the same port and storage. 0 or -1. */
int fo_natsproc_restart(fo_natsproc *n);
/* "nats://127.0.0.1:PORT" */
const char *fo_natsproc_url(const fo_natsproc *n);
int fo_natsproc_port(const fo_natsproc *n);
/* Stops it if it runs and removes its folder ($FO_KEEP_NATS_DIR keeps it). NULL: no-op. */
void fo_natsproc_free(fo_natsproc *n);

#endif
