#include "hub/jwt.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define TOKEN_MAX 8192      /* longer tokens are refused unread */
#define KEY_FILE_MAX 65536
#define SECRET_MIN 32       /* bytes: RFC 7518 3.2 wants a key as long as the hash */

struct fo_jwt_keys {
    unsigned char *secret; /* NULL: HS* refused */
    size_t secret_len;
    char *pem;             /* the public key's PEM text, as libjwt takes it; NULL: none */
    size_t pem_len;
    jwt_alg_t pem_algs[3]; /* what the public key verifies (JWT_ALG_INVAL: unused slot) */
    char algs[96];
};

static void say(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}

/* The whole file, NUL-terminated; NULL with err set. */
static char *read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (!f) {
        say(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    if (!(buf = malloc(max + 1))) {
        fclose(f);
        say(err, errlen, "out of memory");
        return NULL;
    }
    n = fread(buf, 1, max + 1, f);
    if (ferror(f) || n > max) {
        say(err, errlen, ferror(f) ? "cannot read %s" : "%s is too large", path);
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int load_public_key(fo_jwt_keys *k, const char *path, char *err, size_t errlen)
{
    BIO *bio;
    EVP_PKEY *pkey;
    char group[64];
    size_t glen = 0;

    if (!(k->pem = read_file(path, KEY_FILE_MAX, &k->pem_len, err, errlen)))
        return -1;
    bio = BIO_new_mem_buf(k->pem, (int)k->pem_len);
    pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!pkey) {
        say(err, errlen, "%s: not a public key in PEM (-----BEGIN PUBLIC KEY-----)", path);
        return -1;
    }
    k->pem_algs[0] = k->pem_algs[1] = k->pem_algs[2] = JWT_ALG_INVAL;
    switch (EVP_PKEY_base_id(pkey)) {
    case EVP_PKEY_RSA:
        k->pem_algs[0] = JWT_ALG_RS256;
        k->pem_algs[1] = JWT_ALG_RS384;
        k->pem_algs[2] = JWT_ALG_RS512;
        break;
    case EVP_PKEY_EC:
        if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) == 1) {
            if (!strcmp(group, "prime256v1") || !strcmp(group, "P-256"))
                k->pem_algs[0] = JWT_ALG_ES256;
            else if (!strcmp(group, "secp384r1") || !strcmp(group, "P-384"))
                k->pem_algs[0] = JWT_ALG_ES384;
            else if (!strcmp(group, "secp521r1") || !strcmp(group, "P-521"))
                k->pem_algs[0] = JWT_ALG_ES512;
        }
        break;
    default: break;
    }
    EVP_PKEY_free(pkey);
    if (k->pem_algs[0] == JWT_ALG_INVAL) {
        say(err, errlen, "%s: an RSA key or an EC key on P-256, P-384 or P-521 is needed", path);
        return -1;
    }
    return 0;
}

fo_jwt_keys *fo_jwt_keys_load(const char *secret_file, const char *public_key_file, char *err,
                              size_t errlen)
{
    fo_jwt_keys *k;
    size_t i;

    if ((!secret_file || !*secret_file) && (!public_key_file || !*public_key_file)) {
        say(err, errlen, "no JWT key given");
        return NULL;
    }
    if (!(k = calloc(1, sizeof(*k)))) {
        say(err, errlen, "out of memory");
        return NULL;
    }
    k->pem_algs[0] = k->pem_algs[1] = k->pem_algs[2] = JWT_ALG_INVAL;
    if (secret_file && *secret_file) {
        char *s = read_file(secret_file, KEY_FILE_MAX, &k->secret_len, err, errlen);
        if (!s)
            goto fail;
        k->secret = (unsigned char *)s;
        while (k->secret_len && (s[k->secret_len - 1] == '\n' || s[k->secret_len - 1] == '\r'))
            k->secret_len--;
        if (k->secret_len < SECRET_MIN) {
            say(err, errlen, "%s: the secret has %zu bytes, at least %d are needed", secret_file,
                k->secret_len, SECRET_MIN);
            goto fail;
        }
        snprintf(k->algs, sizeof(k->algs), "HS256, HS384, HS512");
    }
    if (public_key_file && *public_key_file && load_public_key(k, public_key_file, err, errlen))
        goto fail;
    for (i = 0; i < 3 && k->pem_algs[i] != JWT_ALG_INVAL; i++) {
        size_t n = strlen(k->algs);
        snprintf(k->algs + n, sizeof(k->algs) - n, "%s%s", n ? ", " : "",
                 jwt_alg_str(k->pem_algs[i]));
    }
    return k;
fail:
    fo_jwt_keys_free(k);
    return NULL;
}

void fo_jwt_keys_free(fo_jwt_keys *k)
{
    if (!k)
        return;
    if (k->secret) {
        OPENSSL_cleanse(k->secret, k->secret_len);
        free(k->secret);
    }
    free(k->pem);
    free(k);
}

const char *fo_jwt_keys_algs(const fo_jwt_keys *k)
{
    return k->algs;
}

static bool b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

bool fo_jwt_shaped(const char *token)
{
    int dots = 0;
    size_t run = 0;

    for (; *token; token++) {
        if (*token == '.') {
            if (run == 0)
                return false;
            dots++;
            run = 0;
        } else if (b64url_char(*token)) {
            run++;
        } else {
            return false;
        }
    }
    return dots == 2; /* an empty signature is a shape (alg none): refused later, by name */
}

/* Decodes n base64url characters (no padding) as a JSON object. NULL when they are not. */
static json_t *b64url_json(const char *p, size_t n)
{
    unsigned char *in, *out;
    size_t padded = (n + 3) / 4 * 4, pad = padded - n, i;
    json_t *j = NULL;
    int len;

    if (n % 4 == 1 || !(in = malloc(padded + 1)))
        return NULL;
    if (!(out = malloc(padded / 4 * 3 + 1))) {
        free(in);
        return NULL;
    }
    for (i = 0; i < n; i++)
        in[i] = p[i] == '-' ? '+' : p[i] == '_' ? '/' : (unsigned char)p[i];
    for (; i < padded; i++)
        in[i] = '=';
    len = EVP_DecodeBlock(out, in, (int)padded);
    if (len >= (int)pad)
        j = json_loadb((const char *)out, (size_t)len - pad, JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    free(in);
    free(out);
    return j;
}

/* A NumericDate claim in milliseconds: 1, 0 when absent, -1 when not a number. */
static int numeric_date(const json_t *claims, const char *name, int64_t *ms)
{
    const json_t *v = json_object_get(claims, name);
    double d;

    if (!v)
        return 0;
    if (!json_is_number(v))
        return -1;
    d = json_number_value(v);
    if (!isfinite(d) || d < 0 || d > 1e13)
        return -1;
    *ms = (int64_t)(d * 1000.0);
    return 1;
}

/* The claims this hub gives a meaning to. */
static int check_claims(const json_t *claims, int64_t now_ms, char *why, size_t whylen)
{
    const json_t *sub = json_object_get(claims, "sub"), *models = json_object_get(claims, "models"),
                 *v;
    const char *pattern;
    int64_t exp = 0, nbf = 0;
    int rc;

    if ((rc = numeric_date(claims, "exp", &exp)) <= 0) {
        say(why, whylen, rc ? "malformed token: exp is not a number" : "token has no exp");
        return -1;
    }
    if ((rc = numeric_date(claims, "nbf", &nbf)) < 0) {
        say(why, whylen, "malformed token: nbf is not a number");
        return -1;
    }
    if (now_ms >= exp) {
        say(why, whylen, "token expired");
        return -1;
    }
    if (rc > 0 && now_ms < nbf) {
        say(why, whylen, "token not valid yet (nbf)");
        return -1;
    }
    if (!json_is_string(sub) || json_string_length(sub) == 0 || json_string_length(sub) > 256) {
        say(why, whylen, "token has no sub (a string of 1-256 bytes)");
        return -1;
    }
    if (!json_is_object(models)) {
        say(why, whylen, "token has no models claim (a map from model pattern to \"r\" or \"rw\")");
        return -1;
    }
    json_object_foreach((json_t *)models, pattern, v) {
        if (!*pattern || !json_is_string(v) ||
            (strcmp(json_string_value(v), "r") && strcmp(json_string_value(v), "rw") &&
             strcmp(json_string_value(v), "admin"))) {
            say(why, whylen, "malformed token: models[\"%.64s\"] must be \"r\" or \"rw\"", pattern);
            return -1;
        }
    }
    return 0;
}

static bool accepts(const fo_jwt_keys *k, jwt_alg_t alg)
{
    size_t i;

    if (alg == JWT_ALG_HS256 || alg == JWT_ALG_HS384 || alg == JWT_ALG_HS512)
        return k->secret != NULL;
    for (i = 0; i < 3; i++)
        if (k->pem_algs[i] != JWT_ALG_INVAL && k->pem_algs[i] == alg)
            return true;
    return false;
}

int fo_jwt_verify(const fo_jwt_keys *k, const char *token, int64_t now_ms, json_t **claims,
                  char *why, size_t whylen)
{
    const char *dot1, *dot2, *alg_s;
    json_t *head = NULL, *body = NULL;
    jwt_alg_t alg;
    jwt_t *jwt = NULL;
    bool hs;
    int rc;

    *claims = NULL;
    if (strlen(token) > TOKEN_MAX) {
        say(why, whylen, "malformed token: longer than %d bytes", TOKEN_MAX);
        return -1;
    }
    if (!fo_jwt_shaped(token)) {
        say(why, whylen, "malformed token: not a signed JWT (three base64url parts)");
        return -1;
    }
    dot1 = strchr(token, '.');
    dot2 = strchr(dot1 + 1, '.');
    if (!(head = b64url_json(token, (size_t)(dot1 - token)))) {
        say(why, whylen, "malformed token: the header is not a JSON object");
        return -1;
    }
    if (!(body = b64url_json(dot1 + 1, (size_t)(dot2 - dot1 - 1)))) {
        say(why, whylen, "malformed token: the payload is not a JSON object");
        goto fail;
    }
    if (!(alg_s = json_string_value(json_object_get(head, "alg")))) {
        say(why, whylen, "malformed token: the header has no alg");
        goto fail;
    }
    /* The hub's own decision, made before libjwt trusts the header (see jwt.h). */
    alg = jwt_str_alg(alg_s);
    if (alg == JWT_ALG_NONE) {
        say(why, whylen, "token algorithm none is not accepted");
        goto fail;
    }
    if (alg == JWT_ALG_INVAL || strcmp(alg_s, jwt_alg_str(alg)) != 0 || !accepts(k, alg)) {
        say(why, whylen, "token algorithm %.16s is not accepted by this hub (it takes %s)", alg_s,
            k->algs);
        goto fail;
    }
    hs = alg == JWT_ALG_HS256 || alg == JWT_ALG_HS384 || alg == JWT_ALG_HS512;
    rc = hs ? jwt_decode(&jwt, token, k->secret, (int)k->secret_len)
            : jwt_decode(&jwt, token, (const unsigned char *)k->pem, (int)k->pem_len);
    if (rc == ENOMEM) {
        say(why, whylen, "out of memory");
        goto fail;
    }
    if (rc || jwt_get_alg(jwt) != alg) {
        say(why, whylen, "token signature does not verify");
        goto fail;
    }
    jwt_free(jwt);
    jwt = NULL;
    if (check_claims(body, now_ms, why, whylen))
        goto fail;
    json_decref(head);
    *claims = body;
    return 0;
fail:
    jwt_free(jwt);
    json_decref(head);
    json_decref(body);
    return -1;
}
