/* auth.h - who a connection is (its identity) and what it may do on which models. Two
 * sources of tokens, either or both; without any the hub is open.
 *
 * 1. The token file of --auth, for simple set-ups:
 *
 *     # token            model pattern (fnmatch)   rights   name (optional)
 *     s3cr3t-editor      todo-*                    rw       ann
 *     s3cr3t-editor      shared                    r
 *     s3cr3t-viewer      *                         r
 *     s3cr3t-operator    *                         admin    ops
 *
 *    A token may have several lines. The fourth column names the token: that name is the
 *    identity's `sub` (lines of one token that name it must agree). An unnamed token's sub
 *    is "token-" and the first 12 hex digits of the token's SHA-256: the secret itself never
 *    becomes an identity (identities are logged, stored in audits and shown to rules).
 *
 * 2. Signed tokens (JWT, jwt.h) with --jwt-secret-file and/or --jwt-public-key: the claims
 *    `sub`, `exp`, `nbf` and `models` (pattern -> "r" | "rw" | "admin").
 *
 * A token that is in the file is the file's; any other token is checked as a JWT when JWT
 * keys are configured. */
#ifndef FO_AUTH_H
#define FO_AUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fo_auth fo_auth;

typedef struct fo_auth_rule {
    char *pattern; /* fnmatch pattern of model names */
    bool write;    /* "rw"; false: "r" */
    bool admin;    /* "admin": the console's right only (no read, no write) */
} fo_auth_rule;

/* What one connection (or one HTTP request) may do. Everything in it is owned by it: a
 * session's rights outlive any reload of the token file, and a renewal replaces them. */
typedef struct fo_rights {
    bool open;            /* no tokens configured: every model, read and write */
    fo_auth_rule *rules;  /* owned (patterns too) */
    size_t nrules;
    json_t *claims;       /* the identity: the token's claims (sub inside); NULL = open hub.
                           * Owned (one reference); whoever keeps it past the call that
                           * handed it over takes json_incref. */
    int64_t exp_ms;       /* when the identity ends (ms since the epoch, a JWT's exp); 0:
                           * never (token file, open hub) */
} fo_rights;

typedef struct fo_auth_options {
    const char *file;            /* --auth FILE, or NULL/"" */
    const char *jwt_secret_file; /* --jwt-secret-file FILE, or NULL/"" */
    const char *jwt_public_key;  /* --jwt-public-key FILE, or NULL/"" */
} fo_auth_options;

/* True when the options name any source of tokens (otherwise the hub is open). */
bool fo_auth_configured(const fo_auth_options *o);
/* Loads the file and keys. NULL with a sentence in err (file:line for a bad line). */
fo_auth *fo_auth_load(const fo_auth_options *o, char *err, size_t errlen);
void fo_auth_free(fo_auth *a); /* NULL is a no-op */
/* One line for the log: what the hub accepts. */
void fo_auth_describe(const fo_auth *a, char *out, size_t n);

/* Checks a token at `now_ms` (fo_auth_now_ms()). True with *out filled (release it with
 * fo_rights_destroy); false with the reason in `why` ("unknown token", "token expired",
 * "token signature does not verify", ...) and *out empty. File tokens are compared in
 * constant time per candidate. */
bool fo_auth_check(const fo_auth *a, const char *token, int64_t now_ms, fo_rights *out,
                   char *why, size_t whylen);
/* The rights of a connection to an open hub. */
void fo_rights_init_open(fo_rights *r);
/* Frees what r owns and leaves it empty (no rights). */
void fo_rights_destroy(fo_rights *r);
/* True when the rights allow reading (write=false) or writing the model. */
bool fo_rights_allow(const fo_rights *r, const char *model, bool write);
/* The console's right (`admin` in the token file, or a JWT's models claim): true when
 * the rights are open or an admin pattern matches the model; with model NULL, when the
 * token has any admin rule (the feed). `admin` grants no read: a model's contents
 * (document, batches, presence) need an `r` or `rw` rule as well; without tokens the
 * console is open only when the hub listens on loopback (see http.h). */
bool fo_rights_admin(const fo_rights *r, const char *model);

/* The identity's sub, or NULL (open hub). Borrowed from r. */
const char *fo_rights_sub(const fo_rights *r);

/* The wall clock in milliseconds since the epoch (what exp and nbf are compared with). */
int64_t fo_auth_now_ms(void);

#endif
