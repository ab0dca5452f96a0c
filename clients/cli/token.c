/* token.c - `flushout token`: mints a signed token (JWT) for development, the kind the hub
 * takes with --jwt-secret-file / --jwt-public-key. No hub is contacted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "clients/cli/cli.h"

#define KEY_FILE_MAX 65536
#define SECRET_MIN 32

static const char usage_token[] =
    "usage: flushout token (--secret-file FILE | --key-file PEM) --sub NAME\n"
    "                      --models 'PATTERN=r|rw[,...]' [--ttl DURATION] [--alg ALG]\n"
    "                      [--not-before DURATION]\n"
    "\n"
    "Prints a signed token (JWT) for a hub started with --jwt-secret-file or\n"
    "--jwt-public-key; for development: production tokens come from your identity\n"
    "service. Claims: sub, iat, exp (now + --ttl, default 1h), nbf (with --not-before:\n"
    "now + DURATION), models {PATTERN: \"r\"|\"rw\"}.\n"
    "  --secret-file FILE  the hub's HMAC secret (the file's bytes, a trailing newline\n"
    "                      dropped; at least 32 bytes): HS256 (default), HS384, HS512\n"
    "  --key-file PEM      a private key in PEM: RS256 (default for RSA), RS384, RS512;\n"
    "                      ES256 for a P-256 key, ES384 for P-384, ES512 for P-521\n"
    "  --sub NAME          the identity (the rules see it as ctx.identity.sub)\n"
    "  --models LIST       model patterns (fnmatch, as --auth) and their rights, e.g.\n"
    "                      'todos:*=rw,shared=r'; may be repeated\n"
    "  --ttl DURATION      how long the token is valid: 90 (seconds), 30s, 15m, 1h, 7d\n"
    "  --alg ALG           the signing algorithm (see above)\n"
    "Example: FLUSHOUT_TOKEN=$(flushout token --secret-file hub.secret --sub ann \\\n"
    "             --models 'todos:*=rw') flushout get todos:ann\n";

static int fail(const char *fmt, const char *arg)
{
    fputs("flushout token: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (see flushout token --help)\n", stderr);
    return CLI_EUSAGE;
}

/* "90", "30s", "15m", "1h", "7d" -> seconds; -1 when malformed. */
static long long duration(const char *s)
{
    char *end;
    long long v;

    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || v > 100LL * 365 * 86400)
        return -1;
    switch (*end) {
    case '\0': return v;
    case 's': break;
    case 'm': v *= 60; break;
    case 'h': v *= 3600; break;
    case 'd': v *= 86400; break;
    default: return -1;
    }
    return end[1] ? -1 : v;
}

static char *read_key(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (!f) {
        fprintf(stderr, "flushout token: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    if (!(buf = malloc(KEY_FILE_MAX + 1))) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, KEY_FILE_MAX + 1, f);
    fclose(f);
    if (n > KEY_FILE_MAX) {
        fprintf(stderr, "flushout token: %s is too large\n", path);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The default algorithm of a private key in PEM: RS256 for RSA, ES256/384/512 by the EC
 * curve; JWT_ALG_INVAL when it is not a key libjwt can sign with. */
static jwt_alg_t key_alg(const char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    jwt_alg_t alg = JWT_ALG_INVAL;
    char group[64];
    size_t glen = 0;

    BIO_free(bio);
    if (!pkey)
        return JWT_ALG_INVAL;
    if (EVP_PKEY_base_id(pkey) == EVP_PKEY_RSA) {
        alg = JWT_ALG_RS256;
    } else if (EVP_PKEY_base_id(pkey) == EVP_PKEY_EC &&
               EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) == 1) {
        alg = !strcmp(group, "prime256v1")  ? JWT_ALG_ES256
              : !strcmp(group, "secp384r1") ? JWT_ALG_ES384
              : !strcmp(group, "secp521r1") ? JWT_ALG_ES512
                                            : JWT_ALG_INVAL;
    }
    EVP_PKEY_free(pkey);
    return alg;
}

/* Adds 'PATTERN=r|rw[,...]' to the models object. */
static int add_models(json_t *models, char *list)
{
    char *save = NULL, *item;

    for (item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strrchr(item, '=');
        if (!eq || eq == item || (strcmp(eq + 1, "r") && strcmp(eq + 1, "rw")))
            return fail("bad --models entry '%s': PATTERN=r or PATTERN=rw expected", item);
        *eq = '\0';
        json_object_set_new(models, item, json_string(eq + 1));
    }
    return 0;
}

int cli_token_main(int argc, char **argv)
{
    const char *secret_file = NULL, *key_file = NULL, *sub = NULL, *alg_name = NULL;
    long long ttl = 3600, not_before = -1;
    json_t *models = json_object(), *claims = NULL;
    jwt_alg_t alg;
    jwt_t *jwt = NULL;
    char *key = NULL, *grants = NULL, *out = NULL;
    size_t key_len = 0;
    int i, rc = CLI_EUSAGE;
    time_t now = time(NULL);

    for (i = 1; i < argc; i++) {
        char *a = argv[i], *val = NULL, *eq;

        if (strcmp(a, "token") == 0)
            continue;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_token, stdout);
            rc = CLI_OK;
            goto out;
        }
        if (strncmp(a, "--", 2) != 0) {
            rc = fail("unexpected argument '%s'", a);
            goto out;
        }
        if ((eq = strchr(a, '='))) {
            *eq = '\0';
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            rc = fail("option '%s' needs a value", a);
            goto out;
        }
        if (!strcmp(a, "--secret-file")) {
            secret_file = val;
        } else if (!strcmp(a, "--key-file")) {
            key_file = val;
        } else if (!strcmp(a, "--sub")) {
            sub = val;
        } else if (!strcmp(a, "--alg")) {
            alg_name = val;
        } else if (!strcmp(a, "--models")) {
            if (add_models(models, val))
                goto out;
        } else if (!strcmp(a, "--ttl")) {
            if ((ttl = duration(val)) <= 0) {
                rc = fail("bad --ttl '%s': e.g. 90, 30s, 15m, 1h, 7d", val);
                goto out;
            }
        } else if (!strcmp(a, "--not-before")) {
            if ((not_before = duration(val)) < 0) {
                rc = fail("bad --not-before '%s': e.g. 0, 30s, 15m", val);
                goto out;
            }
        } else {
            rc = fail("unknown option '%s'", a);
            goto out;
        }
    }
    if (!secret_file == !key_file) {
        rc = fail("%s", "give one of --secret-file and --key-file");
        goto out;
    }
    if (!sub || !*sub || strlen(sub) > 256) {
        rc = fail("%s", "--sub NAME is needed (1-256 bytes)");
        goto out;
    }
    if (json_object_size(models) == 0) {
        rc = fail("%s", "--models 'PATTERN=r|rw' is needed");
        goto out;
    }
    if (!(key = read_key(secret_file ? secret_file : key_file, &key_len))) {
        rc = CLI_EUSAGE;
        goto out;
    }
    if (secret_file) {
        while (key_len && (key[key_len - 1] == '\n' || key[key_len - 1] == '\r'))
            key_len--;
        if (key_len < SECRET_MIN) {
            rc = fail("%s: the secret needs at least 32 bytes", secret_file);
            goto out;
        }
    }
    if (alg_name) {
        alg = jwt_str_alg(alg_name);
        if (alg == JWT_ALG_INVAL || alg == JWT_ALG_NONE || strcmp(alg_name, jwt_alg_str(alg))) {
            rc = fail("bad --alg '%s': HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384 "
                      "or ES512", alg_name);
            goto out;
        }
    } else if (secret_file) {
        alg = JWT_ALG_HS256;
    } else if ((alg = key_alg(key, key_len)) == JWT_ALG_INVAL) {
        rc = fail("%s: not a private key in PEM (RSA, or EC on P-256, P-384 or P-521)",
                  key_file);
        goto out;
    }
    if ((alg <= JWT_ALG_HS512) != (secret_file != NULL)) {
        rc = fail("--alg %s does not go with this key: HS* take --secret-file, RS*/ES* "
                  "--key-file", jwt_alg_str(alg));
        goto out;
    }
    claims = json_pack("{s:s, s:I, s:I, s:O}", "sub", sub, "iat", (json_int_t)now, "exp",
                       (json_int_t)(now + ttl), "models", models);
    if (claims && not_before >= 0)
        json_object_set_new(claims, "nbf", json_integer((json_int_t)(now + not_before)));
    if (!claims || !(grants = json_dumps(claims, JSON_COMPACT)) || jwt_new(&jwt) ||
        jwt_add_grants_json(jwt, grants)) {
        fputs("flushout token: out of memory\n", stderr);
        rc = CLI_EUSAGE;
        goto out;
    }
    if (jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)key_len) ||
        !(out = jwt_encode_str(jwt))) {
        fprintf(stderr, "flushout token: cannot sign with %s: %s\n",
                secret_file ? secret_file : key_file,
                secret_file ? "bad secret" : "not a private key in PEM of that algorithm");
        rc = CLI_EUSAGE;
        goto out;
    }
    printf("%s\n", out);
    rc = fflush(stdout) == 0 ? CLI_OK : CLI_EUSAGE;
out:
    free(out);
    jwt_free(jwt);
    free(grants);
    if (key) {
        memset(key, 0, key_len);
        free(key);
    }
    json_decref(claims);
    json_decref(models);
    return rc;
}
