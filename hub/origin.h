/* origin.h - which browser origins may open a WebSocket on the hub (--allowed-origins).
 *
 * Browsers send `Origin` with every WebSocket handshake and let any page open a socket to
 * any host, so the server decides (RFC 6455 10.2). Allowed:
 *   - no Origin header: not a browser (the C client, the CLI, the bench, Node);
 *   - the hub's own origin: one whose host[:port] is the request's Host (any scheme: a TLS
 *     proxy in front keeps the Host), i.e. pages the hub serves (--static, the console);
 *     by default a browser may open nothing else;
 *   - an origin in the list (exact, case-insensitive: "https://app.example.com:8443");
 *   - any origin when the list is "*" (it must be asked for).
 * Anything else, `Origin: null` (sandboxed frames, file:// pages) included unless "null" is
 * listed, is refused (the listener answers 403 with the reason).
 *
 * The list is the flag's text, checked once with fo_origins_check and read as it is on each
 * upgrade (upgrades are rare next to frames). No state, no allocation. */
#ifndef FO_ORIGIN_H
#define FO_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>

/* Checks a --allowed-origins value: "*" alone, or a comma-separated list of
 * "http[s]://HOST[:PORT]" (no path, no trailing slash) and "null". 0, or -1 with a sentence
 * in why. */
int fo_origins_check(const char *list, char *why, size_t cap);

/* Whether a handshake with `origin` (NULL: no header) and `host` (the Host header, NULL when
 * absent) may upgrade under `list` (NULL or "": none given). */
bool fo_origins_allow(const char *list, const char *origin, const char *host);

#endif
