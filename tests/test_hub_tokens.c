/* The hub over real WebSockets, part 7: identities from signed tokens (--jwt-secret-file,
 * --jwt-public-key) and from the named token file (--auth). Keys are made here with
 * libcrypto, tokens are signed with libjwt or put together by hand (alg none, a forged
 * signature, an HS256 token keyed with the public key's PEM). Every refusal is checked at the
 * upgrade (401 and its reason) and on the HTTP endpoint; rights per request (`forbidden`);
 * expiry of an open connection (close 4401) and renewal through `hello`. */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "tests/support/hubtest.h"

#ifndef FO_HUB_BIN
#define FO_HUB_BIN ""
#endif

static char dir[64];

static void setup(void)
{
    setenv("FO_HUB_BIN", FO_HUB_BIN, 0);
    snprintf(dir, sizeof(dir), "/tmp/fo-tokens-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];

    ht_cleanup();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(hub_tokens, .init = setup, .fini = teardown, .timeout = 90);

/* ---- keys and tokens ------------------------------------------------------------------------ */

static const char SECRET[] = "0123456789abcdef0123456789abcdef-test-secret";

/* Writes `text` to dir/name; returns the path (static buffer per call site is not needed:
 * malloc'd, freed at exit). */
static char *put_file(const char *name, const char *text, size_t len)
{
    char *path = malloc(128);
    FILE *f;

    snprintf(path, 128, "%s/%s", dir, name);
    f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, len, f), len);
    fclose(f);
    return path;
}

typedef struct keypair {
    char *priv, *pub; /* PEM text, malloc'd */
    size_t priv_len, pub_len;
} keypair;

static char *bio_text(BIO *b, size_t *len)
{
    char *data, *out;
    long n = BIO_get_mem_data(b, &data);

    out = malloc((size_t)n + 1);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    *len = (size_t)n;
    return out;
}

/* "RSA" (2048 bits) or "EC" (curve P-256). */
static keypair make_keys(const char *kind)
{
    EVP_PKEY *k = strcmp(kind, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                                           : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIO *priv = BIO_new(BIO_s_mem()), *pub = BIO_new(BIO_s_mem());
    keypair kp;

    cr_assert_not_null(k, "libcrypto made no %s key", kind);
    cr_assert_eq(PEM_write_bio_PrivateKey(priv, k, NULL, NULL, 0, NULL, NULL), 1);
    cr_assert_eq(PEM_write_bio_PUBKEY(pub, k), 1);
    kp.priv = bio_text(priv, &kp.priv_len);
    kp.pub = bio_text(pub, &kp.pub_len);
    BIO_free(priv);
    BIO_free(pub);
    EVP_PKEY_free(k);
    return kp;
}

static void free_keys(keypair *kp)
{
    free(kp->priv);
    free(kp->pub);
}

static long now_s(void)
{
    return (long)time(NULL);
}

/* A token of `claims` (JSON) signed by libjwt with alg and key. malloc'd. */
static char *sign(jwt_alg_t alg, const void *key, size_t key_len, const char *claims)
{
    jwt_t *j = NULL;
    char *out;

    cr_assert_eq(jwt_new(&j), 0);
    cr_assert_eq(jwt_add_grants_json(j, claims), 0, "bad test claims %s", claims);
    cr_assert_eq(jwt_set_alg(j, alg, key, (int)key_len), 0, "libjwt refused the key for %s",
                 jwt_alg_str(alg));
    out = jwt_encode_str(j);
    cr_assert_not_null(out);
    jwt_free(j);
    return out;
}

static char *hs256(const char *claims)
{
    return sign(JWT_ALG_HS256, SECRET, strlen(SECRET), claims);
}

/* Claims for `sub` with exp = now + ttl and the given models (JSON object text). */
static char *claims(const char *sub, long ttl, const char *models)
{
    char *c = malloc(1024);

    snprintf(c, 1024, "{\"sub\":\"%s\",\"exp\":%ld,\"models\":%s}", sub, now_s() + ttl, models);
    return c;
}

static char *b64url(const char *text)
{
    size_t n = strlen(text), i, j;
    unsigned char *tmp = malloc(4 * (n / 3 + 2));
    char *out = malloc(4 * (n / 3 + 2));
    int len = EVP_EncodeBlock(tmp, (const unsigned char *)text, (int)n);

    for (i = j = 0; i < (size_t)len; i++) {
        char ch = (char)tmp[i];
        if (ch == '=')
            break;
        out[j++] = ch == '+' ? '-' : ch == '/' ? '_' : ch;
    }
    out[j] = '\0';
    free(tmp);
    return out;
}

/* header.payload.sig put together by hand (sig already base64url). */
static char *raw_token(const char *header, const char *payload, const char *sig)
{
    char *h = b64url(header), *p = b64url(payload), *out = malloc(4096);

    snprintf(out, 4096, "%s.%s.%s", h, p, sig);
    free(h);
    free(p);
    return out;
}

/* ---- asserting refusals ---------------------------------------------------------------------- */

static bool url_safe(const char *t)
{
    return strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") ==
           strlen(t);
}

/* The upgrade with `token` (as a bearer header) is refused with 401 naming `reason`, and so
 * is GET /v1/models/todos:a (header, then query). */
static void assert_refused(fo_hubproc *h, const char *token, const char *reason, const char *what)
{
    fo_ws_options o = {.port = fo_hubproc_port(h), .bearer = token};
    fo_ws_result res;
    fo_ws *ws = fo_ws_connect(&o, &res);
    char hdr[4200], target[4200];
    int status;
    char *body;
    size_t len;

    if (ws) {
        fo_ws_free(ws);
        cr_assert_fail("%s: the upgrade was accepted", what);
    }
    cr_assert_eq(res.http_status, 401, "%s: want HTTP 401, got %s", what, res.message);
    cr_assert(strstr(res.message, reason), "%s: want a reason with \"%s\", got \"%s\"", what,
              reason, res.message);
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", token ? token : "");
    cr_assert_eq(fo_http_get(NULL, o.port, "/v1/models/todos:a", token ? hdr : NULL, 5000,
                             &status, &body, &len),
                 0);
    cr_assert_eq(status, 401, "%s: HTTP endpoint answered %d %s", what, status, body);
    cr_assert(strstr(body, reason), "%s: HTTP body %s lacks \"%s\"", what, body, reason);
    free(body);
    if (token && url_safe(token)) {
        snprintf(target, sizeof(target), "/v1/models/todos:a?token=%s", token);
        cr_assert_eq(fo_http_get(NULL, o.port, target, NULL, 5000, &status, &body, &len), 0);
        cr_assert_eq(status, 401, "%s (query): HTTP endpoint answered %d %s", what, status, body);
        free(body);
    }
}

/* The hub's log reaches its file through a pipe and a thread: waits (bounded: 2 s) until
 * `min` lines have `needle`; returns how many have it. */
static int log_count(fo_hubproc *h, const char *needle, int min)
{
    int i, n = 0;

    for (i = 0; i < 200 && (n = fo_hubproc_log_count(h, needle)) < min; i++)
        usleep(10 * 1000);
    return n;
}

/* ---- connecting with a token ----------------------------------------------------------------- */

/* Connects with `token` (bearer header, or ?token= with `query`) and says hello as `id`. */
static ht_client *connect_as(fo_hubproc *h, const char *token, bool query, const char *id)
{
    fo_ws_options o = {.port = fo_hubproc_port(h)};
    ht_client *c;
    fo_msg m = {.type = FO_MSG_HELLO, .client = id};
    uint64_t rid;

    if (query)
        o.query_token = token;
    else
        o.bearer = token;
    c = ht_connect_raw(h, &o);
    snprintf(c->id, sizeof(c->id), "%s", id);
    rid = ht_send(c, &m);
    ht_expect_reply(c, FO_MSG_WELCOME, rid, &m);
    return c;
}

/* A hello carrying `token` on an open connection: welcome (true) or `error unauthorized`
 * whose message contains `reason` (false). */
static bool renew(ht_client *c, const char *token, const char *reason)
{
    fo_msg m = {.type = FO_MSG_HELLO, .client = c->id, .token = token};
    uint64_t rid = ht_send(c, &m);

    if (!reason) {
        ht_expect_reply(c, FO_MSG_WELCOME, rid, &m);
        return true;
    }
    ht_expect_error(c, FO_ERR_UNAUTHORIZED, rid, reason);
    return false;
}

static void expect_forbidden(ht_client *c, fo_msg_type t, const char *model)
{
    fo_msg m = {.type = t, .model = model, .seq = ++c->seq};
    uint64_t rid;

    m.model_len = (uint32_t)strlen(model);
    rid = ht_send(c, &m);
    ht_expect_error(c, FO_ERR_FORBIDDEN, rid, model);
}

/* GET target with an optional bearer token: the status; the body in *body (free it). */
static int http_get(fo_hubproc *h, const char *target, const char *token, char **body)
{
    char hdr[4200];
    int status;
    size_t len;

    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", token ? token : "");
    cr_assert_eq(fo_http_get(NULL, fo_hubproc_port(h), target, token ? hdr : NULL, 5000, &status,
                             body, &len),
                 0);
    return status;
}

static fo_hubproc *hs_hub(void)
{
    char *secret = put_file("secret", SECRET, strlen(SECRET));
    const char *args[] = {"--jwt-secret-file", secret, NULL};
    fo_hubproc *h = ht_hub_start("memory", args);

    free(secret);
    return h;
}

/* ---- tests ------------------------------------------------------------------------------------ */

Test(hub_tokens, a_signed_token_gives_its_models_rights)
{
    fo_hubproc *h = hs_hub();
    char *c1 = claims("ann", 3600, "{\"todos:*\":\"rw\",\"ro\":\"r\"}");
    char *tok = hs256(c1), *body;
    fo_arena a;
    fo_batch b;
    fo_apply_result r;
    ht_client *c, *q;

    fo_arena_init(&a, 0);
    c = connect_as(h, tok, false, "ann-1");
    b = ht_batch_json(&a, "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"update\","
                          "\"props\":{\"x\":1}}}]}");
    r = ht_flush(c, "todos:a", &b);
    cr_assert_eq(r.applied.len, 1, "the write with \"rw\" was not applied");
    ht_get(c, "ro");
    expect_forbidden(c, FO_MSG_FLUSH, "ro");   /* a write with "r" */
    expect_forbidden(c, FO_MSG_SUB, "other");  /* a model outside the claims */
    expect_forbidden(c, FO_MSG_GET, "todosx"); /* the pattern is todos:* */
    ht_get(c, "todos:a");                      /* only those requests were refused */

    q = connect_as(h, tok, true, "ann-2"); /* ?token= as browsers send it */
    ht_sub(q, "todos:a");
    expect_forbidden(q, FO_MSG_PRESENCE, "ro");

    cr_assert_eq(http_get(h, "/v1/models/todos:a", tok, &body), 200, "%s", body);
    cr_assert(strstr(body, "\"x\":1"), "%s", body);
    free(body);
    {
        char target[2048];
        snprintf(target, sizeof(target), "/v1/models/ro?token=%s", tok);
        cr_assert_eq(http_get(h, target, NULL, &body), 200, "%s", body);
        free(body);
        snprintf(target, sizeof(target), "/v1/models/other/history?from=0&token=%s", tok);
        cr_assert_eq(http_get(h, target, NULL, &body), 403, "%s", body);
        cr_assert(strstr(body, "forbidden"), "%s", body);
        free(body);
    }
    cr_assert_geq(log_count(h, "as ann", 2), 2, "the identity is not in the log");
    fo_arena_destroy(&a);
    free(c1);
    free(tok);
}

Test(hub_tokens, bad_tokens_are_refused_with_their_reason)
{
    fo_hubproc *h = hs_hub();
    keypair rsa = make_keys("RSA");
    long now = now_s();
    char buf[512], *good_claims = claims("ann", 3600, "{\"todos:*\":\"rw\"}");
    char *good = hs256(good_claims), *t, *dot;
    static const char other_secret[] = "another-secret-of-at-least-32-bytes!!";

    assert_refused(h, NULL, "missing token", "no token");

    t = sign(JWT_ALG_HS256, other_secret, strlen(other_secret), good_claims);
    assert_refused(h, t, "signature does not verify", "signed with another secret");
    free(t);

    /* The payload swapped for one with more rights, the signature kept. */
    {
        char *p = b64url("{\"sub\":\"ann\",\"exp\":9999999999,\"models\":{\"*\":\"rw\"}}");
        char *sig = strrchr(good, '.');
        dot = strchr(good, '.');
        t = malloc(4096);
        snprintf(t, 4096, "%.*s.%s%s", (int)(dot - good), good, p, sig);
        assert_refused(h, t, "signature does not verify", "payload tampered with");
        free(t);
        free(p);
    }
    /* A flipped byte in the signature. */
    t = strdup(good);
    t[strlen(t) - 2] = t[strlen(t) - 2] == 'A' ? 'B' : 'A';
    assert_refused(h, t, "signature does not verify", "signature altered");
    free(t);

    t = raw_token("{\"alg\":\"none\",\"typ\":\"JWT\"}", good_claims, "");
    assert_refused(h, t, "algorithm none is not accepted", "alg none, empty signature");
    free(t);
    t = raw_token("{\"alg\":\"none\"}", good_claims, strrchr(good, '.') + 1);
    assert_refused(h, t, "algorithm none is not accepted", "alg none with a signature");
    free(t);
    t = raw_token("{\"alg\":\"NONE\"}", good_claims, "");
    assert_refused(h, t, "algorithm none is not accepted", "alg NONE");
    free(t);

    t = sign(JWT_ALG_RS256, rsa.priv, rsa.priv_len, good_claims);
    assert_refused(h, t, "algorithm RS256 is not accepted", "RS256 on a hub with an HMAC secret");
    free(t);

    snprintf(buf, sizeof(buf), "{\"sub\":\"ann\",\"exp\":%ld,\"models\":{\"*\":\"rw\"}}",
             now - 5);
    t = hs256(buf);
    assert_refused(h, t, "token expired", "expired");
    free(t);
    snprintf(buf, sizeof(buf),
             "{\"sub\":\"ann\",\"exp\":%ld,\"nbf\":%ld,\"models\":{\"*\":\"rw\"}}", now + 7200,
             now + 3600);
    t = hs256(buf);
    assert_refused(h, t, "not valid yet", "nbf in the future");
    free(t);

    assert_refused(h, "not-a-token", "malformed token", "not a JWT");
    assert_refused(h, "a.b.c", "malformed token", "parts that are not JSON");
    t = raw_token("{\"alg\":\"HS256\"}", "[1,2]", "c2ln");
    assert_refused(h, t, "malformed token", "a payload that is not an object");
    free(t);

    snprintf(buf, sizeof(buf), "{\"sub\":\"ann\",\"models\":{\"*\":\"rw\"}}");
    t = hs256(buf);
    assert_refused(h, t, "no exp", "no exp");
    free(t);
    snprintf(buf, sizeof(buf), "{\"exp\":%ld,\"models\":{\"*\":\"rw\"}}", now + 600);
    t = hs256(buf);
    assert_refused(h, t, "no sub", "no sub");
    free(t);
    snprintf(buf, sizeof(buf), "{\"sub\":\"ann\",\"exp\":%ld,\"models\":{\"*\":\"w\"}}", now + 600);
    t = hs256(buf);
    assert_refused(h, t, "malformed token: models", "rights other than r and rw");
    free(t);

    /* Still serving the good token after all that. */
    ht_close(connect_as(h, good, false, "ann"));
    free(good);
    free(good_claims);
    free_keys(&rsa);
}

/* libjwt 1.10 trusts the header's alg: handed the public key's PEM, it verifies an HS256
 * token whose HMAC key is that PEM text. The hub must refuse it before libjwt sees it. */
Test(hub_tokens, a_public_key_hub_takes_its_own_algorithm_only)
{
    keypair rsa = make_keys("RSA"), ec = make_keys("EC");
    char *rsa_pub = put_file("rsa.pub", rsa.pub, rsa.pub_len);
    char *ec_pub = put_file("ec.pub", ec.pub, ec.pub_len);
    const char *rsa_args[] = {"--jwt-public-key", rsa_pub, NULL};
    const char *ec_args[] = {"--jwt-public-key", ec_pub, NULL};
    char *cl = claims("bob", 600, "{\"todos:*\":\"rw\"}");
    char *rs = sign(JWT_ALG_RS256, rsa.priv, rsa.priv_len, cl);
    char *es = sign(JWT_ALG_ES256, ec.priv, ec.priv_len, cl);
    char *confused = sign(JWT_ALG_HS256, rsa.pub, rsa.pub_len, cl);
    char *rs_other;
    keypair rsa2 = make_keys("RSA");
    fo_hubproc *h;
    jwt_t *j = NULL;

    /* The hazard is real in this libjwt: alone, it accepts that token. */
    cr_assert_eq(jwt_decode(&j, confused, (const unsigned char *)rsa.pub, (int)rsa.pub_len), 0,
                 "libjwt no longer accepts an HS256 token keyed with a public key's PEM");
    jwt_free(j);

    h = ht_hub_start("memory", rsa_args);
    ht_close(connect_as(h, rs, false, "bob"));
    assert_refused(h, confused, "algorithm HS256 is not accepted", "HS256 keyed with the PEM");
    assert_refused(h, es, "algorithm ES256 is not accepted", "ES256 on an RSA hub");
    rs_other = sign(JWT_ALG_RS256, rsa2.priv, rsa2.priv_len, cl);
    assert_refused(h, rs_other, "signature does not verify", "RS256 by another key");
    ht_hub_stop_ok(h, 10000);

    h = ht_hub_start("memory", ec_args);
    ht_close(connect_as(h, es, true, "bob"));
    assert_refused(h, rs, "algorithm RS256 is not accepted", "RS256 on an EC hub");
    {
        char *hs = hs256(cl);
        assert_refused(h, hs, "algorithm HS256 is not accepted", "HS256 on an EC hub");
        free(hs);
    }

    free(rs);
    free(es);
    free(rs_other);
    free(confused);
    free(cl);
    free(rsa_pub);
    free(ec_pub);
    free_keys(&rsa);
    free_keys(&rsa2);
    free_keys(&ec);
}

Test(hub_tokens, both_key_kinds_and_the_token_file_together)
{
    keypair rsa = make_keys("RSA");
    char *rsa_pub = put_file("rsa.pub", rsa.pub, rsa.pub_len);
    char *secret = put_file("secret", SECRET, strlen(SECRET));
    static const char file[] = "# token pattern rights name\n"
                               "file-tok-1 todos:* rw carol\n";
    char *auth = put_file("auth", file, sizeof(file) - 1);
    const char *args[] = {"--jwt-public-key", rsa_pub, "--jwt-secret-file", secret, "--auth",
                          auth, NULL};
    char *cl = claims("bob", 600, "{\"todos:*\":\"r\"}");
    char *rs = sign(JWT_ALG_RS256, rsa.priv, rsa.priv_len, cl), *hs = hs256(cl);
    fo_hubproc *h = ht_hub_start("memory", args);
    ht_client *c;

    c = connect_as(h, rs, false, "b1");
    expect_forbidden(c, FO_MSG_FLUSH, "todos:a");
    ht_close(c);
    ht_close(connect_as(h, hs, false, "b2"));
    c = connect_as(h, "file-tok-1", false, "c1");
    ht_sub(c, "todos:a");
    ht_close(c);
    assert_refused(h, "file-tok-2", "unknown token", "neither in the file nor a JWT");
    assert_refused(h, "x.y.z", "malformed token", "not in the file, shaped like a JWT");
    cr_assert_geq(log_count(h, "as carol", 1), 1, "the file token's name is not its sub");
    free(rs);
    free(hs);
    free(cl);
    free(rsa_pub);
    free(secret);
    free(auth);
    free_keys(&rsa);
}

/* The token file: the fourth column names a token; an unnamed token is "token-" and a
 * SHA-256 prefix; the secret never shows. Old three-column files stay valid. */
Test(hub_tokens, token_file_names_are_the_identity)
{
    static const char file[] = "# token pattern rights [name]\n"
                               "s3cret-named-token  team.*  rw  dana\n"
                               "s3cret-named-token  shared  r\n"
                               "s3cret-anonymous    team.*  r\n";
    char *auth = put_file("auth", file, sizeof(file) - 1);
    const char *args[] = {"--auth", auth, NULL};
    fo_hubproc *h = ht_hub_start("memory", args);
    unsigned char md[32];
    unsigned int mdlen;
    char want[32];
    ht_client *c;
    int i;

    c = connect_as(h, "s3cret-named-token", false, "d");
    ht_get(c, "shared");
    expect_forbidden(c, FO_MSG_FLUSH, "shared");
    ht_close(c);
    c = connect_as(h, "s3cret-anonymous", false, "a");
    expect_forbidden(c, FO_MSG_FLUSH, "team.x");
    ht_close(c);
    cr_assert_geq(log_count(h, "as dana", 1), 1);
    EVP_Digest("s3cret-anonymous", 16, md, &mdlen, EVP_sha256(), NULL);
    strcpy(want, "as token-");
    for (i = 0; i < 6; i++)
        snprintf(want + 9 + 2 * i, 3, "%02x", md[i]);
    cr_assert_geq(log_count(h, want, 1), 1, "no `%s` in the log", want);
    cr_assert_eq(fo_hubproc_log_count(h, "s3cret"), 0, "a secret is in the log");
    ht_hub_stop_ok(h, 10000);
    free(auth);

    /* Two names for one token: the hub does not start. */
    {
        static const char bad[] = "t1 a rw ann\nt1 b r bob\n";
        fo_hubproc_options o = {.store = "memory", .ready_timeout_ms = 5000};
        const char *bargs[] = {"--auth", NULL, NULL};
        fo_hubproc *b;

        bargs[1] = auth = put_file("auth-bad", bad, sizeof(bad) - 1);
        o.args = bargs;
        b = fo_hubproc_new(&o);
        cr_assert_neq(fo_hubproc_start(b), 0, "a hub started with a token named twice");
        cr_assert(strstr(fo_hubproc_error(b), "named ann on an earlier line"), "%s",
                  fo_hubproc_error(b));
        fo_hubproc_free(b);
        free(auth);
    }
}

Test(hub_tokens, unusable_keys_stop_the_hub_at_start)
{
    static const struct {
        const char *flag, *content, *why;
    } cases[] = {
        {"--jwt-secret-file", "short\n", "at least 32"},
        {"--jwt-public-key", "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n",
         "not a public key in PEM"},
        {"--jwt-secret-file", NULL, "cannot open"},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *path = cases[i].content ? put_file("key", cases[i].content, strlen(cases[i].content))
                                      : strdup("/nonexistent/key");
        const char *args[] = {cases[i].flag, path, NULL};
        fo_hubproc_options o = {.store = "memory", .args = args, .ready_timeout_ms = 5000};
        fo_hubproc *b = fo_hubproc_new(&o);

        cr_assert_neq(fo_hubproc_start(b), 0, "the hub started with %s %s", cases[i].flag, path);
        cr_assert(strstr(fo_hubproc_error(b), cases[i].why), "want \"%s\" in: %s", cases[i].why,
                  fo_hubproc_error(b));
        fo_hubproc_free(b);
        free(path);
    }
}

/* ---- expiry and renewal ---------------------------------------------------------------------- */

/* Waits for the close frame: its code and reason; asserts it comes within timeout_ms. */
static void expect_expiry_close(ht_client *c, int timeout_ms)
{
    fo_ws_message wm;
    int rc;

    do
        rc = fo_ws_recv(c->ws, timeout_ms, &wm);
    while (rc == 0 && wm.opcode != FO_WS_CLOSE); /* replies still queued before the close */
    cr_assert_eq(rc, 0, "no close frame: %s", fo_ws_error(c->ws));
    cr_assert_eq(wm.close_code, 4401, "close code %d (%.*s)", wm.close_code, (int)wm.len, wm.data);
    cr_assert(wm.len >= 13 && memmem(wm.data, wm.len, "token expired", 13), "reason %.*s",
              (int)wm.len, wm.data);
}

Test(hub_tokens, an_open_connection_is_closed_at_exp)
{
    fo_hubproc *h = hs_hub();
    long exp = now_s() + 3;
    char buf[256], *t, *expired, *forged;
    struct timespec t0, t1;
    ht_client *c;
    double waited;

    snprintf(buf, sizeof(buf), "{\"sub\":\"eve\",\"exp\":%ld,\"models\":{\"*\":\"rw\"}}", exp);
    t = hs256(buf);
    snprintf(buf, sizeof(buf), "{\"sub\":\"eve\",\"exp\":%ld,\"models\":{\"*\":\"rw\"}}",
             now_s() - 1);
    expired = hs256(buf);
    snprintf(buf, sizeof(buf), "{\"sub\":\"eve\",\"exp\":%ld,\"models\":{\"*\":\"rw\"}}",
             now_s() + 3600);
    forged = sign(JWT_ALG_HS256, "a-different-secret-32-bytes-long!!", 34, buf);
    c = connect_as(h, t, false, "eve");
    ht_sub(c, "m");
    /* Renewals that do not count: the identity (and its exp) stay. */
    renew(c, expired, "token expired");
    renew(c, forged, "signature does not verify");
    ht_get(c, "m");
    clock_gettime(CLOCK_REALTIME, &t0);
    expect_expiry_close(c, 8000);
    clock_gettime(CLOCK_REALTIME, &t1);
    waited = (double)t1.tv_sec + t1.tv_nsec / 1e9;
    cr_assert_geq(waited, (double)exp - 0.05, "closed %.3f s before exp", (double)exp - waited);
    cr_assert_leq(waited, (double)exp + 2.0, "closed %.3f s after exp", waited - (double)exp);
    cr_assert_geq(log_count(h, "token of eve expired", 1), 1);
    (void)t0;
    free(t);
    free(expired);
    free(forged);
}

Test(hub_tokens, a_fresh_token_in_hello_keeps_the_connection)
{
    fo_hubproc *h = hs_hub();
    long exp = now_s() + 3;
    char buf[256], *first, *fresh, *read_only;
    fo_batch b = {0, 0, NULL};
    ht_client *c;

    snprintf(buf, sizeof(buf), "{\"sub\":\"fay\",\"exp\":%ld,\"models\":{\"*\":\"rw\"}}", exp);
    first = hs256(buf);
    snprintf(buf, sizeof(buf), "{\"sub\":\"fay\",\"exp\":%ld,\"models\":{\"*\":\"rw\"}}",
             now_s() + 60);
    fresh = hs256(buf);
    snprintf(buf, sizeof(buf), "{\"sub\":\"fay\",\"exp\":%ld,\"models\":{\"*\":\"r\"}}",
             now_s() + 60);
    read_only = hs256(buf);

    c = connect_as(h, first, false, "fay");
    ht_sub(c, "m");
    renew(c, fresh, NULL);
    /* Past the first token's exp (and a margin): still open, still writing. */
    while (now_s() <= exp + 1)
        usleep(100 * 1000);
    ht_flush(c, "m", &b);
    ht_expect_silence(c, 300);
    /* A renewal replaces the rights too. */
    renew(c, read_only, NULL);
    expect_forbidden(c, FO_MSG_FLUSH, "m");
    ht_get(c, "m");
    ht_close(c);
    free(first);
    free(fresh);
    free(read_only);
}
