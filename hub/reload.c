/* reload.c - see reload.h. */
#include "hub/reload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/log.h"
#include "hub/origin.h"

int fo_hub_reload_settings(const fo_hub *h, fo_hub_config *next, char *err, size_t errlen)
{
    if (!h->cfg.argv) { /* settings not from a command line (tests): nothing to read again */
        *next = h->cfg;
        return 0;
    }
    /* The same command line, the environment and the --config file again, in the same
     * precedence; what does not parse keeps everything as it is (the parser said why on
     * stderr, the log). */
    fo_hub_config_default(next);
    if (fo_hub_config_parse(next, h->cfg.argc, h->cfg.argv) != 0) {
        snprintf(err, errlen, "the settings no longer parse (see the line above)");
        return -1;
    }
    return 0;
}

static fo_auth_options auth_options(const fo_hub_config *c)
{
    return (fo_auth_options){c->auth_file, c->jwt_secret_file, c->jwt_public_key};
}

/* The token file and the JWT keys, as one: a token checked after the reload sees either all
 * of the old sources or all of the new ones. */
static int reload_auth(fo_hub *h, const fo_hub_config *next)
{
    fo_auth_options ao = auth_options(next);
    fo_auth *a;
    char err[512];

    if (!fo_auth_configured(&ao)) {
        if (!h->auth)
            return 0; /* an open hub stays open */
        h->metrics.auth_reload_errors++;
        FO_LOG(FO_LOG_ERROR, "SIGHUP: tokens not reloaded: the settings name no token file "
               "and no JWT key any more; turning authentication off needs a restart");
        return 1;
    }
    if (!(a = fo_auth_load(&ao, err, sizeof(err)))) {
        h->metrics.auth_reload_errors++;
        FO_LOG(FO_LOG_ERROR, "SIGHUP: tokens not reloaded, the tokens and keys loaded before "
               "stay in force: %s", err);
        return 1;
    }
    fo_auth_free(h->auth); /* sessions own copies of their rights: nothing points into it */
    h->auth = a;
    h->metrics.auth_reloads++;
    fo_auth_describe(a, err, sizeof(err));
    FO_LOG(FO_LOG_INFO, "SIGHUP: tokens reloaded: %s", err);
    return 0;
}

static int reload_origins(fo_hub *h, const fo_hub_config *next)
{
    char why[256];

    if (strcmp(next->allowed_origins, h->cfg.allowed_origins) == 0)
        return 0;
    if (next->allowed_origins[0] &&
        fo_origins_check(next->allowed_origins, why, sizeof(why)) != 0) {
        FO_LOG(FO_LOG_ERROR, "SIGHUP: allowed origins not reloaded, the list before stays "
               "in force: %s", why);
        return 1;
    }
    memcpy(h->cfg.allowed_origins, next->allowed_origins, sizeof(h->cfg.allowed_origins));
    FO_LOG(FO_LOG_INFO, "SIGHUP: allowed origins now %s",
           h->cfg.allowed_origins[0] ? h->cfg.allowed_origins : "the hub's own only");
    return 0;
}

static int reload_rules(fo_hub *h, const fo_hub_config *next)
{
    fo_rules_limits lim = {.instructions = next->rule_instructions,
                           .time_ms = next->rule_time_ms,
                           .memory = next->rule_memory};
    fo_rules *r;
    char err[512];

    if (!next->interceptors[0]) {
        if (h->rules) { /* dropping every rule is a decision for a restart too */
            h->metrics.rule_reload_errors++;
            FO_LOG(FO_LOG_ERROR, "SIGHUP: interceptors not reloaded: the settings name no "
                   "file any more; removing the rules needs a restart");
            return 1;
        }
        return 0;
    }
    if (!(r = fo_rules_load(next->interceptors, &lim, err, sizeof(err)))) {
        h->metrics.rule_reload_errors++;
        FO_LOG(FO_LOG_ERROR, "SIGHUP: interceptors not reloaded, the %u rules loaded before "
               "stay in force: %s", fo_rules_count(h->rules), err);
        return 1;
    }
    fo_rules_free(h->rules);
    h->rules = r;
    h->metrics.rule_reloads++;
    FO_LOG(FO_LOG_INFO, "SIGHUP: interceptors reloaded from %s: %u rules", next->interceptors,
           fo_rules_count(r));
    return 0;
}

/* The TLS certificate and key (renewed by certbot or the like): read again on every
 * SIGHUP. New handshakes use them; connections already open keep theirs (OpenSSL counts
 * the references to the old context). Turning TLS on or off changes the port's scheme:
 * that needs a restart. */
static int reload_tls(fo_hub *h, const fo_hub_config *next)
{
    fo_tls_ctx *c;
    char why[512];

    if (!h->tls && !next->tls_cert[0])
        return 0;
    if (!h->tls || !next->tls_cert[0]) {
        h->metrics.tls_reload_errors++;
        FO_LOG(FO_LOG_ERROR, "SIGHUP: TLS not reloaded: turning TLS %s needs a restart",
               h->tls ? "off" : "on");
        return 1;
    }
    if (!(c = fo_tls_ctx_server(next->tls_cert, next->tls_key, why, sizeof(why)))) {
        h->metrics.tls_reload_errors++;
        FO_LOG(FO_LOG_ERROR, "SIGHUP: TLS certificate not reloaded, the one loaded before "
               "stays in force: %s", why);
        return 1;
    }
    fo_tls_ctx_free(h->tls);
    h->tls = c;
    memcpy(h->cfg.tls_cert, next->tls_cert, sizeof(h->cfg.tls_cert));
    memcpy(h->cfg.tls_key, next->tls_key, sizeof(h->cfg.tls_key));
    h->metrics.tls_reloads++;
    FO_LOG(FO_LOG_INFO, "SIGHUP: TLS certificate reloaded from %s", h->cfg.tls_cert);
    return 0;
}

int fo_hub_reload(fo_hub *h)
{
    fo_hub_config *next = malloc(sizeof(*next));
    char err[512];
    int failed = 0;

    if (!next) {
        FO_LOG(FO_LOG_ERROR, "SIGHUP: nothing reloaded: out of memory");
        return 1;
    }
    if (fo_hub_reload_settings(h, next, err, sizeof(err)) != 0) {
        FO_LOG(FO_LOG_ERROR, "SIGHUP: nothing reloaded, the settings in force stay: %s", err);
        free(next);
        return 1;
    }
    failed += reload_auth(h, next);
    failed += reload_origins(h, next);
    failed += reload_rules(h, next);
    failed += reload_tls(h, next);
    free(next);
    FO_LOG(failed ? FO_LOG_WARN : FO_LOG_INFO, "SIGHUP: reload done%s", failed ?
           ", some sources kept their previous settings (see above)" : "");
    return failed;
}
