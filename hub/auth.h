/* auth.h - bearer tokens and their rights on models, from the file given by --auth:
 *
 *     # token            model pattern (fnmatch)   rights
 *     s3cr3t-editor      todo-*                    rw
 *     s3cr3t-viewer      *                         r
 *     s3cr3t-ops         *                         admin
 *
 * A token may have several lines. `admin` is the operator's right for the console
 * (/console, /v1/console/...): the hub-wide metrics feed, and the names, counts and
 * subscribers of the models its pattern matches. It grants no read: a model's contents
 * (document, batches, presence) need an `r` or `rw` line as well. Without --auth the hub is
 * open: every connection may read and write every model (and the console is open when the
 * hub listens on loopback only: see http.h). */
#ifndef FO_AUTH_H
#define FO_AUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct fo_auth fo_auth;
typedef struct fo_auth_token fo_auth_token;

/* What one connection may do: `open` (no --auth) or the lines of its token. */
typedef struct fo_rights {
    bool open;
    const fo_auth_token *token;
    json_t *claims;   /* the identity: the token's claims (sub inside); NULL = open hub */
} fo_rights;

/* Loads the file. NULL with a message in err on a missing file or a bad line. */
fo_auth *fo_auth_load(const char *path, char *err, size_t errlen);
void fo_auth_free(fo_auth *a);
/* Looks a token up (constant time per candidate). False: unknown token. */
bool fo_auth_check(const fo_auth *a, const char *token, fo_rights *out);
/* True when the rights allow reading (write=false) or writing the model. */
bool fo_rights_allow(const fo_rights *r, const char *model, bool write);
/* The console's right (`admin` lines): true when the rights are open or an admin pattern
 * matches the model; with model NULL, when the token has any admin line (the feed). Where
 * other token sources (JWT claims) grant admin, they hook in here. */
bool fo_rights_admin(const fo_rights *r, const char *model);

#endif
