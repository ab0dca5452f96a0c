/* jwt.h - signed tokens (JWT, RFC 7519, compact JWS) as the hub accepts them, checked with
 * libjwt (pkg-config `libjwt`) after the hub's own checks of the header.
 *
 * Keys: an HMAC secret (`--jwt-secret-file`: the file's bytes, a trailing newline dropped,
 * at least 32 bytes) accepts HS256, HS384 and HS512; a public key in PEM
 * (`--jwt-public-key`) accepts the algorithms of its kind only: an RSA key RS256, RS384,
 * RS512; an EC key the ES algorithm of its curve (P-256: ES256, P-384: ES384, P-521:
 * ES512). The header's `alg` picks the key, and is checked against that list BEFORE libjwt
 * sees the token: libjwt 1.10's jwt_decode trusts the header, so an HS256 token "signed"
 * with the public key's PEM text as HMAC secret would verify there (algorithm confusion).
 * `alg: none` is always refused.
 *
 * Claims (the token's payload, a JSON object): `sub` (non-empty string), `exp` (NumericDate,
 * required: the token is refused at and after it), `nbf` (optional: refused before it), and
 * `models`, a map from model pattern (fnmatch) to "r" or "rw". Other claims are kept and
 * passed on as they are (the connection's identity). */
#ifndef FO_JWT_H
#define FO_JWT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fo_jwt_keys fo_jwt_keys;

/* Loads the keys; either path may be NULL or empty, not both. NULL with a sentence in err
 * on an unreadable file, a short secret, or a key the hub cannot use. */
fo_jwt_keys *fo_jwt_keys_load(const char *secret_file, const char *public_key_file, char *err,
                              size_t errlen);
void fo_jwt_keys_free(fo_jwt_keys *k); /* NULL is a no-op */
/* What the keys accept, e.g. "HS256, HS384, HS512, RS256, RS384, RS512" (for the log). */
const char *fo_jwt_keys_algs(const fo_jwt_keys *k);

/* True when `token` has the shape of a compact JWS: two non-empty base64url parts, and a
 * third (the signature) that may be empty, joined by two dots. */
bool fo_jwt_shaped(const char *token);

/* Verifies `token` at `now_ms` (milliseconds since the epoch). 0 with *claims (a new reference: the
 * payload object, checked as above); -1 with the reason in `why` ("token expired",
 * "token signature does not verify", "token algorithm none is not accepted", "malformed
 * token: ...", ...), *claims NULL. */
int fo_jwt_verify(const fo_jwt_keys *k, const char *token, int64_t now_ms, json_t **claims,
                  char *why, size_t whylen);

#endif
