#include "hub/auth.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rule {
    char *pattern;
    bool write;
    bool admin; /* an `admin` line: the console's right, no read or write */
} rule;

struct fo_auth_token {
    char *token;
    size_t len;
    rule *rules;
    size_t nrules;
};

struct fo_auth {
    fo_auth_token *tokens;
    size_t ntokens;
};

void fo_auth_free(fo_auth *a)
{
    size_t i, j;

    if (!a)
        return;
    for (i = 0; i < a->ntokens; i++) {
        for (j = 0; j < a->tokens[i].nrules; j++)
            free(a->tokens[i].rules[j].pattern);
        free(a->tokens[i].rules);
        free(a->tokens[i].token);
    }
    free(a->tokens);
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

static fo_auth_token *find_or_add(fo_auth *a, const char *tok)
{
    size_t i, len = strlen(tok);
    fo_auth_token *n;

    for (i = 0; i < a->ntokens; i++)
        if (same(a->tokens[i].token, a->tokens[i].len, tok, len))
            return &a->tokens[i];
    n = realloc(a->tokens, (a->ntokens + 1) * sizeof(*n));
    if (!n)
        return NULL;
    a->tokens = n;
    n = &a->tokens[a->ntokens];
    memset(n, 0, sizeof(*n));
    if (!(n->token = strdup(tok)))
        return NULL;
    n->len = len;
    a->ntokens++;
    return n;
}

fo_auth *fo_auth_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    fo_auth *a;
    char line[1024];
    int lineno = 0;

    if (!f) {
        snprintf(err, errlen, "cannot open auth file %s", path);
        return NULL;
    }
    if (!(a = calloc(1, sizeof(*a)))) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    while (fgets(line, sizeof(line), f)) {
        char tok[512], pat[256], rights[8];
        fo_auth_token *t;
        rule *r;
        int n;

        lineno++;
        n = sscanf(line, " %511s %255s %7s", tok, pat, rights);
        if (n <= 0 || tok[0] == '#')
            continue;
        if (n != 3 || (strcmp(rights, "r") && strcmp(rights, "rw") && strcmp(rights, "admin"))) {
            snprintf(err, errlen, "%s:%d: expected `TOKEN PATTERN r|rw|admin`", path, lineno);
            goto fail;
        }
        if (!(t = find_or_add(a, tok)) ||
            !(r = realloc(t->rules, (t->nrules + 1) * sizeof(*r)))) {
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
    return a;
fail:
    fclose(f);
    fo_auth_free(a);
    return NULL;
}

bool fo_auth_check(const fo_auth *a, const char *token, fo_rights *out)
{
    size_t i, len = strlen(token);
    const fo_auth_token *found = NULL;

    /* Compare with every token so timing does not tell which prefix matched. */
    for (i = 0; i < a->ntokens; i++)
        if (same(a->tokens[i].token, a->tokens[i].len, token, len))
            found = &a->tokens[i];
    out->open = false;
    out->token = found;
    return found != NULL;
}

bool fo_rights_allow(const fo_rights *r, const char *model, bool write)
{
    size_t i;

    if (r->open)
        return true;
    if (!r->token)
        return false;
    for (i = 0; i < r->token->nrules; i++) {
        const rule *ru = &r->token->rules[i];
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
    if (!r->token)
        return false;
    for (i = 0; i < r->token->nrules; i++) {
        const rule *ru = &r->token->rules[i];
        if (ru->admin && (!model || fnmatch(ru->pattern, model, 0) == 0))
            return true;
    }
    return false;
}
