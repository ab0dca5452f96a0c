/* reload.h - what SIGHUP does: the hub reads again, without dropping a connection,
 *   - the token file (--auth) and the JWT keys (--jwt-secret-file, --jwt-public-key),
 *   - the allowed origins, as the settings give them (fo_hub_reload_settings: the flags,
 *     the environment and the --config file, read again),
 *   - the rules file (--interceptors),
 *   - the TLS certificate and key (--tls-cert, --tls-key): new handshakes use the new ones,
 *     connections already open keep theirs; turning TLS on or off needs a restart.
 * Each source is loaded and checked in full before it replaces the one in force; one that
 * does not load (missing, unreadable, a bad line, a bad key) leaves what was in force,
 * says why in the log and counts in /metrics (flushout_*_reload_errors_total). Sources are
 * independent: a broken token file does not hold back the rules file.
 *
 * Sessions copied their rights when they were granted (auth.h, fo_rights): an open
 * connection keeps them until it closes or renews them with a token in `hello`; every new
 * upgrade, `hello` renewal and HTTP request is checked against the new tokens. The loop runs
 * no batch while the reload runs, so no batch sees two sets of rules.
 *
 * Reloading cannot turn authentication off (a token file or key that the new settings no
 * longer name): that needs a restart, so that a mistake never opens the hub. */
#ifndef FO_RELOAD_H
#define FO_RELOAD_H

#include "hub/hub.h"

/* Reloads everything above from the hub's settings (fo_hub_reload_settings), logging one
 * line per source. Returns the number of sources that failed to reload (0: all in force). */
int fo_hub_reload(fo_hub *h);

/* The settings a reload applies, into *next: the command line parsed again, with the
 * environment and the --config file it names, so that edits to the file (or to the files
 * the settings name) take effect on SIGHUP; only the sources above change without a
 * restart. 0, or -1 with a sentence in err (nothing is reloaded then). */
int fo_hub_reload_settings(const fo_hub *h, fo_hub_config *next, char *err, size_t errlen);

#endif
