#include "hub/auth.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "hub/jwt.h"

typedef struct file_token {
    char *token;
    size_t len;
    char *name;          /* the sub: the fourth column, or "token-<sha256 prefix>" */
    bool named;
    fo_auth_rule *rules;
    size_t nrules;
} file_token;

struct fo_auth {
    file_token *tokens;
    size_t ntokens;
    bool file;
    fo_jwt_keys *jwt;    /* NULL: no JWT accepted */
};

int64_t fo_auth_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool given(const char *s)
{
    return s && *s;
}

bool fo_auth_configured(const fo_auth_options *o)
{
    return given(o->file) || given(o->jwt_secret_file) || given(o->jwt_public_key);
}

static void free_rules(fo_auth_rule *rules, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(rules[i].pattern);
    free(rules);
}

void fo_auth_free(fo_auth *a)
{
    size_t i;

    if (!a)
        return;
    for (i = 0; i < a->ntokens; i++) {
        free_rules(a->tokens[i].rules, a->tokens[i].nrules);
        OPENSSL_cleanse(a->tokens[i].token, a->tokens[i].len);
        free(a->tokens[i].token);
        free(a->tokens[i].name);
    }
    free(a->tokens);
    fo_jwt_keys_free(a->jwt);
    free(a);
}

static bool same(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char d = 0;
    size_t i;

    if (alen != blen)
        return false;
    for (i = 0; i < alen; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

/* "token-" and the first 12 hex digits of SHA-256(token). */
static char *hashed_name(const char *tok)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char *name = malloc(6 + 12 + 1);
    int i;

    if (!name)
        return NULL;
    if (EVP_Digest(tok, strlen(tok), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 6) {
        free(name);
        return NULL;
    }
    memcpy(name, "token-", 6);
    for (i = 0; i < 6; i++)
        snprintf(name + 6 + 2 * i, 3, "%02x", md[i]);
    return name;
}

static file_token *find_or_add(fo_auth *a, const char *tok)
{
    size_t i, len = strlen(tok);
    file_token *n;

    for (i = 0; i < a->ntokens; i++)
        if (same(a->tokens[i].token, a->tokens[i].len, tok, len))
            return &a->tokens[i];
    n = realloc(a->tokens, (a->ntokens + 1) * sizeof(*n));
    if (!n)
        return NULL;
    a->tokens = n;
    n = &a->tokens[a->ntokens];
    memset(n, 0, sizeof(*n));
    if (!(n->token = strdup(tok)) || !(n->name = hashed_name(tok))) {
        free(n->token);
        return NULL;
    }
    n->len = len;
    a->ntokens++;
    return n;
}

static int load_file(fo_auth *a, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    int lineno = 0;

    if (!f) {
        snprintf(err, errlen, "cannot open auth file %s: %s", path, strerror(errno));
        return -1;
    }
    a->file = true;
    while (fgets(line, sizeof(line), f)) {
        char tok[512], pat[256], rights[8], name[257], extra[2];
        file_token *t;
        fo_auth_rule *r;
        int n;

        lineno++;
        n = sscanf(line, " %511s %255s %7s %256s %1s", tok, pat, rights, name, extra);
        if (n <= 0 || tok[0] == '#')
            continue;
        if (n < 3 || n > 4 ||
            (strcmp(rights, "r") && strcmp(rights, "rw") && strcmp(rights, "admin"))) {
            snprintf(err, errlen, "%s:%d: expected `TOKEN PATTERN r|rw|admin [NAME]`", path,
                     lineno);
            goto fail;
        }
        if (!(t = find_or_add(a, tok))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        if (n == 4) {
            if (t->named && strcmp(t->name, name) != 0) {
                snprintf(err, errlen, "%s:%d: this token was named %s on an earlier line", path,
                         lineno, t->name);
                goto fail;
            }
            if (!t->named) {
                char *copy = strdup(name);
                if (!copy) {
                    snprintf(err, errlen, "out of memory");
                    goto fail;
                }
                free(t->name);
                t->name = copy;
                t->named = true;
            }
        }
        if (!(r = realloc(t->rules, (t->nrules + 1) * sizeof(*r)))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        t->rules = r;
        r = &t->rules[t->nrules];
        if (!(r->pattern = strdup(pat))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        r->write = strcmp(rights, "rw") == 0;
        r->admin = strcmp(rights, "admin") == 0;
        t->nrules++;
    }
    fclose(f);
    return 0;
fail:
    fclose(f);
    return -1;
}

fo_auth *fo_auth_load(const fo_auth_options *o, char *err, size_t errlen)
{
    fo_auth *a = calloc(1, sizeof(*a));

    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (given(o->file) && load_file(a, o->file, err, errlen))
        goto fail;
    if ((given(o->jwt_secret_file) || given(o->jwt_public_key)) &&
        !(a->jwt = fo_jwt_keys_load(o->jwt_secret_file, o->jwt_public_key, err, errlen)))
        goto fail;
    return a;
fail:
    fo_auth_free(a);
    return NULL;
}

void fo_auth_describe(const fo_auth *a, char *out, size_t n)
{
    char file[64] = "";

    if (a->file)
        snprintf(file, sizeof(file), "a token file (%zu tokens)", a->ntokens);
    snprintf(out, n, "tokens required: %s%s%s%s", file, a->file && a->jwt ? ", " : "",
             a->jwt ? "JWT " : "", a->jwt ? fo_jwt_keys_algs(a->jwt) : "");
}

void fo_rights_init_open(fo_rights *r)
{
    memset(r, 0, sizeof(*r));
    r->open = true;
}

void fo_rights_destroy(fo_rights *r)
{
    free_rules(r->rules, r->nrules);
    json_decref(r->claims);
    memset(r, 0, sizeof(*r));
}

static int add_rule(fo_rights *r, const char *pattern, bool write, bool admin)
{
    fo_auth_rule *n = realloc(r->rules, (r->nrules + 1) * sizeof(*n));

    if (!n)
        return -1;
    r->rules = n;
    if (!(n[r->nrules].pattern = strdup(pattern)))
        return -1;
    n[r->nrules].admin = admin;
    n[r->nrules++].write = write;
    return 0;
}

static bool from_file(const file_token *t, fo_rights *out)
{
    size_t i;

    if (!(out->claims = json_pack("{s:s}", "sub", t->name)))
        return false;
    for (i = 0; i < t->nrules; i++)
        if (add_rule(out, t->rules[i].pattern, t->rules[i].write, t->rules[i].admin))
            return false;
    return true;
}

static bool from_claims(json_t *claims, fo_rights *out)
{
    const char *pattern;
    json_t *v;
    int64_t exp;

    out->claims = claims; /* ours now */
    json_object_foreach(json_object_get(claims, "models"), pattern, v)
        if (add_rule(out, pattern, strcmp(json_string_value(v), "rw") == 0,
                     strcmp(json_string_value(v), "admin") == 0))
            return false;
    exp = (int64_t)(json_number_value(json_object_get(claims, "exp")) * 1000.0);
    out->exp_ms = exp > 0 ? exp : 1;
    return true;
}

bool fo_auth_check(const fo_auth *a, const char *token, int64_t now_ms, fo_rights *out,
                   char *why, size_t whylen)
{
    size_t i, len = strlen(token);
    const file_token *found = NULL;
    json_t *claims;

    memset(out, 0, sizeof(*out));
    /* Compare with every token so timing does not tell which prefix matched. */
    for (i = 0; i < a->ntokens; i++)
        if (same(a->tokens[i].token, a->tokens[i].len, token, len))
            found = &a->tokens[i];
    if (found) {
        if (from_file(found, out))
            return true;
    } else if (!a->jwt || (a->file && !fo_jwt_shaped(token))) {
        snprintf(why, whylen, "unknown token");
        return false;
    } else if (fo_jwt_verify(a->jwt, token, now_ms, &claims, why, whylen) != 0) {
        return false;
    } else if (from_claims(claims, out)) {
        return true;
    }
    fo_rights_destroy(out);
    snprintf(why, whylen, "out of memory");
    return false;
}

bool fo_rights_allow(const fo_rights *r, const char *model, bool write)
{
    size_t i;

    if (r->open)
        return true;
    for (i = 0; i < r->nrules; i++) {
        const fo_auth_rule *ru = &r->rules[i];
        if (!ru->admin && (!write || ru->write) && fnmatch(ru->pattern, model, 0) == 0)
            return true;
    }
    return false;
}

bool fo_rights_admin(const fo_rights *r, const char *model)
{
    size_t i;

    if (r->open)
        return true;
    for (i = 0; i < r->nrules; i++) {
        const fo_auth_rule *ru = &r->rules[i];
        if (ru->admin && (!model || fnmatch(ru->pattern, model, 0) == 0))
            return true;
    }
    return false;
}

const char *fo_rights_sub(const fo_rights *r)
{
    return json_string_value(json_object_get(r->claims, "sub"));
}
