/* config.c - the hub's settings table and the order of its sources (see config.h).
 *
 * To add a setting, add ONE row to `rows` below, above the actions block, e.g.
 *
 *   {.name = "max-connections", .type = FO_SET_UINT, F(max_connections), .def = "10000",
 *    .min = 1, .arg = "N", .help = "connections accepted at once (default 10000); more get\n"
 *                                  "HTTP 503 at the upgrade"},
 *
 * plus its field in fo_hub_config. Types: FO_SET_STRING (char[]; `choices` to restrict),
 * FO_SET_UINT (uint32_t/uint64_t), FO_SET_SIZE (size_t, "64M"), FO_SET_BOOL (a flag: --name
 * or --name=false; true/false in the file), FO_SET_ENUM (int index into `choices`). Secret values (a
 * passphrase, a token) get .flags = FO_SET_SECRET: --print-config masks them. Paths to
 * secret files are not secrets. A value that needs checks of its own gets .parse (and
 * .format if its text form is not the type's). */
#include "hub/config.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/log.h"
#include "hub/origin.h"

#define F(field) FO_SETTING_FIELD(fo_hub_config, field)

static int parse_listen(void *target, const char *v, char *why, size_t n)
{
    fo_hub_config *c = target;
    const char *colon = strrchr(v, ':');
    const char *h = v;
    size_t hl;
    char *end;
    long port;

    (void)why, (void)n;
    if (!colon)
        return -1;
    hl = (size_t)(colon - v);
    if (hl >= 2 && v[0] == '[' && v[hl - 1] == ']') /* [::1]:7420 */
        h = v + 1, hl -= 2;
    if (hl == 0 || hl >= sizeof(c->host))
        return -1;
    port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535)
        return -1;
    memcpy(c->host, h, hl);
    c->host[hl] = '\0';
    c->port = (int)port;
    return 0;
}

static void format_listen(const void *target, char *buf, size_t n)
{
    const fo_hub_config *c = target;

    snprintf(buf, n, strchr(c->host, ':') ? "[%s]:%d" : "%s:%d", c->host, c->port);
}

static int parse_level(void *target, const char *v, char *why, size_t n)
{
    int l = fo_log_parse_level(v);

    (void)why, (void)n;
    if (l < 0)
        return -1;
    ((fo_hub_config *)target)->log_level = l;
    return 0;
}

static int parse_origins(void *target, const char *v, char *why, size_t n)
{
    fo_hub_config *c = target;

    if (*v && fo_origins_check(v, why, n))
        return -1;
    if (strlen(v) >= sizeof(c->allowed_origins))
        return -1;
    strcpy(c->allowed_origins, v);
    return 0;
}

/* 0 turns it off; otherwise at least `min`. */
static int zero_or_at_least(const char *v, unsigned long long min, unsigned long long *out)
{
    long long n = fo_parse_size(v);

    if (n < 0 || (n > 0 && (unsigned long long)n < min))
        return -1;
    *out = (unsigned long long)n;
    return 0;
}

static int parse_bytes_rate(void *target, const char *v, char *why, size_t n)
{
    unsigned long long x;

    (void)why, (void)n;
    if (zero_or_at_least(v, 1024, &x))
        return -1;
    ((fo_hub_config *)target)->bytes_rate = (size_t)x;
    return 0;
}

static int parse_idle(void *target, const char *v, char *why, size_t n)
{
    unsigned long long x;

    (void)why, (void)n;
    if (strspn(v, "0123456789") != strlen(v) || zero_or_at_least(v, 100, &x) || x > UINT32_MAX)
        return -1;
    ((fo_hub_config *)target)->idle_timeout_ms = (uint32_t)x;
    return 0;
}

static int parse_cluster(void *target, const char *v, char *why, size_t n)
{
    fo_hub_config *c = target;

    (void)why, (void)n;
    if (*v && strncmp(v, "nats://", 7) && strncmp(v, "tls://", 6))
        return -1;
    if (strlen(v) >= sizeof(c->cluster))
        return -1;
    strcpy(c->cluster, v);
    return 0;
}

static const char *const store_kinds[] = {"sqlite", "memory", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const log_formats[] = {"text", "json", NULL};

/* One row per setting reads better than one field per line: */
/* clang-format off */
static const fo_setting rows[] = {
    {.name = "listen", .type = FO_SET_STRING, F(host), .def = "127.0.0.1:7420",
     .arg = "HOST:PORT", .parse = parse_listen, .format = format_listen,
     .help = "address to listen on (default 127.0.0.1:7420; port 0 picks\n"
             "a free port, logged as `listening on HOST:PORT`)"},
    {.name = "data", .type = FO_SET_STRING, F(data_dir), .def = "./data", .arg = "DIR",
     .flags = FO_SET_NONEMPTY,
     .help = "data directory of the sqlite store (default ./data)"},
    {.name = "store", .type = FO_SET_STRING, F(store), .def = "sqlite", .arg = "sqlite|memory",
     .choices = store_kinds, .flags = FO_SET_NONEMPTY,
     .help = "where models are kept (default sqlite; memory loses\n"
             "everything at exit: tests and benchmarks)"},
    {.name = "history", .type = FO_SET_UINT, F(history), .def = "1000", .arg = "N",
     .help = "how far back (in commands) incremental syncs, `history` and\n"
             "`get at` reach per model (default 1000); what is out of\n"
             "memory is read back from the store"},
    {.name = "snapshot-every", .type = FO_SET_UINT, F(snapshot_every), .def = "1000", .min = 1,
     .arg = "N", .help = "write a snapshot every N commands of a model (default 1000)"},
    {.name = "memory-budget", .type = FO_SET_SIZE, F(memory_budget), .def = "512M",
     .arg = "SIZE",
     .help = "bound on hot documents, histories and exactly-once tables,\n"
             "subscribed models included: idle models are evicted, history\n"
             "past it is read back from the store, idle subscribed models'\n"
             "documents are dropped and reloaded (default 512M; the memory\n"
             "store's own rows are not counted)"},
    {.name = "max-frame", .type = FO_SET_SIZE, F(max_frame), .def = "1M", .min = 1024,
     .arg = "SIZE", .help = "largest inbound frame (default 1M)"},
    {.name = "max-queue", .type = FO_SET_SIZE, F(max_queue), .def = "4M", .min = 4096,
     .arg = "SIZE",
     .help = "outbound backlog per connection before its pushes are\n"
             "dropped and replaced by one catch-up (default 4M)"},
    {.name = "static", .type = FO_SET_STRING, F(static_dir), .arg = "DIR",
     .help = "serve the files of DIR at / (the demo app)"},
    {.name = "console-dir", .type = FO_SET_STRING, F(console_dir), .arg = "DIR",
     .help = "serve the operator console (clients/console/dist) at\n"
             "/console/; its data (/v1/console/...) needs a token with\n"
             "the admin right, or an open hub listening on loopback"},
    {.name = "auth", .type = FO_SET_STRING, F(auth_file), .arg = "FILE",
     .help = "require tokens: lines `TOKEN MODEL-PATTERN rw|r|admin [NAME]`\n"
             "(fnmatch patterns; NAME is the identity's sub)"},
    {.name = "jwt-secret-file", .type = FO_SET_STRING, F(jwt_secret_file), .arg = "FILE",
     .help = "accept JWTs signed HS256/384/512 with the secret in FILE\n"
             "(at least 32 bytes; a trailing newline is dropped)"},
    {.name = "jwt-public-key", .type = FO_SET_STRING, F(jwt_public_key), .arg = "FILE",
     .help = "accept JWTs signed with the private half of this PEM public\n"
             "key (RSA: RS256/384/512; EC P-256: ES256, P-384: ES384)\n"
             "claims: sub, exp, nbf, models {PATTERN: \"r\"|\"rw\"}; without\n"
             "--auth and JWT keys the hub is open"},
    {.name = "interceptors", .type = FO_SET_STRING, F(interceptors), .arg = "FILE",
     .help = "server-side rules in Lua (see the README: writing a rule);\n"
             "SIGHUP reloads the file (a bad file keeps the old rules)"},
    {.name = "rule-instructions", .type = FO_SET_UINT, F(rule_instructions), .def = "1000000",
     .min = 1000, .arg = "N",
     .help = "Lua instructions a command's rules may run (default 1000000)"},
    {.name = "rule-time-ms", .type = FO_SET_UINT, F(rule_time_ms), .def = "10", .min = 1,
     .arg = "N", .help = "wall-clock bound of a command's rules (default 10)"},
    {.name = "rule-memory", .type = FO_SET_SIZE, F(rule_memory), .def = "32M", .min = 1 << 20,
     .arg = "SIZE", .help = "memory cap of the rules' Lua state (default 32M)"},
    {.name = "allowed-origins", .type = FO_SET_STRING, F(allowed_origins), .arg = "LIST",
     .parse = parse_origins,
     .help = "browser origins that may open a WebSocket besides the hub's\n"
             "own pages (Origin matching Host, always allowed): comma-\n"
             "separated http[s]://HOST[:PORT], or '*' for any. Clients that\n"
             "send no Origin (not browsers) are always allowed; others 403"},
    {.name = "sequential-ids", .type = FO_SET_BOOL, F(sequential_ids), .def = "false",
     .help = "generate IDs as the reference's test mode (tests only)"},
    {.name = "log-level", .type = FO_SET_ENUM, F(log_level), .def = "info", .arg = "LEVEL",
     .choices = log_levels, .parse = parse_level,
     .help = "error, warn, info (default) or debug"},
    {.name = "log-format", .type = FO_SET_ENUM, F(log_format), .def = "text", .arg = "text|json",
     .choices = log_formats,
     .help = "text (default): `TIME LEVEL message` lines; json: one object\n"
             "per line {\"time\", \"level\", \"message\", and the message's\n"
             "leading key=value fields (model, sid, ...)}"},
    {.name = "max-connections", .type = FO_SET_UINT, F(max_connections), .def = "10000",
     .min = 1, .arg = "N",
     .help = "open WebSocket connections; more are refused at the upgrade\n"
             "with 503 (default 10000, lowered to the open-files limit)"},
    {.name = "max-subs", .type = FO_SET_UINT, F(max_subs), .def = "1000", .min = 1, .arg = "N",
     .help = "subscriptions per connection; more get error too_large\n"
             "(default 1000)"},
    {.name = "flush-rate", .type = FO_SET_UINT, F(flush_rate), .def = "1000", .arg = "N",
     .help = "flushes per second per connection, bursts of 2 s; more get\n"
             "error rate_limited with retryAfterMs (default 1000; 0: off)"},
    {.name = "bytes-rate", .type = FO_SET_SIZE, F(bytes_rate), .def = "8M", .arg = "SIZE",
     .parse = parse_bytes_rate,
     .help = "inbound bytes per second per connection; frames past it get\n"
             "rate_limited with retryAfterMs (default 8M; 0: off)"},
    {.name = "conn-rate", .type = FO_SET_UINT, F(conn_rate), .def = "100", .arg = "N",
     .help = "new WebSocket connections per second per source address\n"
             "(IPv6: per /64), bursts of 2 s; more get 429 with\n"
             "Retry-After (default 100; 0: off)"},
    {.name = "idle-timeout-ms", .type = FO_SET_UINT, F(idle_timeout_ms), .def = "60000",
     .arg = "N", .parse = parse_idle,
     .help = "ping a connection that sent nothing for N/2 ms, close it\n"
             "(4408) when nothing came for N ms (default 60000; 0: off)"},
    {.name = "max-presence", .type = FO_SET_SIZE, F(max_presence), .def = "4K", .min = 256,
     .arg = "SIZE", .help = "largest presence frame (default 4K; too_large past it)"},
    {.name = "presence-rate", .type = FO_SET_UINT, F(presence_rate), .def = "20", .arg = "N",
     .help = "presence updates per second per connection, bursts of 2 s\n"
             "(default 20; 0: off)"},
    {.name = "overload-lag-ms", .type = FO_SET_UINT, F(overload_lag_ms), .def = "200",
     .arg = "N",
     .help = "when more than half of the last second (or 3 N ms) went to\n"
             "loop turns longer than N ms, in two turns or more, new\n"
             "flushes get error overloaded with retryAfterMs until the loop\n"
             "keeps up; accepted flushes are still acked (default 200; 0: off)"},
    {.name = "cluster", .type = FO_SET_STRING, F(cluster), .arg = "URLS", .parse = parse_cluster,
     .help = "keep the models' logs in NATS JetStream instead of --store:\n"
             "nats://HOST:PORT[,nats://...] (stream FLUSHOUT, created if\n"
             "absent); hubs on the same NATS share the models, each model's\n"
             "flushes forwarded to the hub that owns it"},
    {.name = "optimistic", .type = FO_SET_BOOL, F(optimistic), .def = "false",
     .help = "with --cluster: every hub applies every flush itself instead\n"
             "of forwarding it to the model's owner (conflicting appends are\n"
             "refused and retried: to measure that contention)"},
    {.name = "io-uring", .type = FO_SET_BOOL, F(io_uring), .def = "true",
     .help = "hand each loop turn's socket writes to the kernel together\n"
             "through io_uring (Linux 5.6+); with --io-uring=false, or where\n"
             "io_uring is not allowed (io_uring_disabled, a container's\n"
             "seccomp profile), one send() per connection (default true)"},
    {.name = "tls-cert", .type = FO_SET_STRING, F(tls_cert), .arg = "FILE",
     .help = "serve TLS on the port (wss:// and https://) with this PEM\n"
             "certificate chain; needs --tls-key"},
    {.name = "tls-key", .type = FO_SET_STRING, F(tls_key), .arg = "FILE",
     .help = "the certificate's PEM private key"},
    /* New settings go here, above the actions. */

    /* Actions: command line only, handled in fo_hub_config_parse. */
    {.name = "config", .type = FO_SET_ACTION, .arg = "FILE",
     .help = "read settings from FILE (INI: `key = value` lines, the keys\n"
             "are the flags' names; or $FLUSHOUT_CONFIG). Every flag is\n"
             "also FLUSHOUT_NAME in the environment (FLUSHOUT_MEMORY_BUDGET).\n"
             "Flags win over the environment, which wins over the file"},
    {.name = "print-config", .type = FO_SET_ACTION,
     .help = "print the effective settings as a config file (where each\n"
             "comes from in comments; secrets masked) and exit"},
    {.name = "help", .type = FO_SET_ACTION, .help = "this text"},
    {.name = "version", .type = FO_SET_ACTION, .help = "print the version and exit"},
};
/* clang-format on */

#define NROWS (sizeof(rows) / sizeof(rows[0]))

static const fo_settings settings = {rows, NROWS, "flushout-hub", "FLUSHOUT_"};

const fo_settings *fo_hub_config_settings(void)
{
    return &settings;
}

void fo_hub_config_default(fo_hub_config *c)
{
    memset(c, 0, sizeof(*c));
    if (fo_settings_default(&settings, c))
        abort(); /* a default in the table does not parse: a bug caught by every test */
}

bool fo_hub_config_loopback(const fo_hub_config *c)
{
    unsigned char a[16];

    if (strcmp(c->host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, c->host, a) == 1)
        return a[0] == 127;
    if (inet_pton(AF_INET6, c->host, a) == 1)
        return memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0;
    return false;
}

static const char usage_head[] =
    "usage: flushout-hub [options]\n"
    "\n"
    "A WebSocket hub for Flushout documents (wire contract flushout.v1 at /v1/ws).\n"
    "\n";

static const char usage_tail[] =
    "\n"
    "SIGTERM or SIGINT: stop accepting, finish and persist in-flight flushes, close\n"
    "connections with 1001, exit 0.\n"
    "\n"
    "Other forms:\n"
    "  flushout-hub --check-interceptors FILE [FLAGS]\n"
    "                         load and check a rules file under the settings' rule\n"
    "                         limits (flags, FLUSHOUT_*, --config): exit 0 or 2\n"
    "  flushout-hub replay MODEL [FLAGS]\n"
    "                         re-run the model's stored batches (--data, a SQLite store)\n"
    "                         through the --interceptors file's rules and print each\n"
    "                         command they decide differently (exit 1; 0: none); the\n"
    "                         settings are read as the hub reads them (--config too)\n";

static bool is(const fo_setting *r, const char *name)
{
    return strcmp(r->name, name) == 0;
}

int fo_hub_config_parse(fo_hub_config *c, int argc, char **argv)
{
    return fo_hub_config_parse_rest(c, argc, argv, NULL);
}

int fo_hub_config_parse_rest(fo_hub_config *c, int argc, char **argv, int *rest)
{
    static struct option opts[NROWS + 1];
    fo_setting_source src[NROWS] = {0};
    const fo_setting **given_row;
    const char **given_val;
    const char *file = NULL;
    char err[1024], label[128];
    bool print = false;
    int o, n = 0, rc = -1;

    c->argc = argc;
    c->argv = argv;
    for (size_t i = 0; i < NROWS; i++) {
        opts[i].name = rows[i].name;
        opts[i].has_arg = rows[i].type == FO_SET_BOOL ? optional_argument /* --flag=false */
                          : rows[i].arg                ? required_argument
                                                       : no_argument;
        opts[i].flag = NULL;
        opts[i].val = (int)i + 1;
    }
    given_row = calloc((size_t)argc + 1, sizeof(*given_row));
    given_val = calloc((size_t)argc + 1, sizeof(*given_val));
    if (!given_row || !given_val) {
        fprintf(stderr, "flushout-hub: out of memory\n");
        goto out;
    }
    /* 1. The command line, read first but applied last: it wins over the rest. */
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        const fo_setting *r = o >= 1 && (size_t)o <= NROWS ? &rows[o - 1] : NULL;
        if (o == 'h' || (r && is(r, "help"))) {
            fputs(usage_head, stdout);
            fo_settings_help(&settings, stdout);
            fputs(usage_tail, stdout);
            rc = 1;
            goto out;
        }
        if (r && is(r, "version")) {
            printf("flushout-hub %s\n", FO_VERSION);
            rc = 1;
            goto out;
        }
        if (!r) {
            fprintf(stderr, "flushout-hub: unknown or incomplete option '%s' (see --help)\n",
                    argv[optind - 1]);
            goto out;
        }
        if (is(r, "config"))
            file = optarg;
        else if (is(r, "print-config"))
            print = true;
        else
            given_row[n] = r, given_val[n++] = r->type == FO_SET_BOOL && !optarg ? "true" : optarg;
    }
    if (rest)
        *rest = optind;
    else if (optind < argc) {
        fprintf(stderr, "flushout-hub: unexpected argument '%s' (see --help)\n", argv[optind]);
        goto out;
    }
    /* 2. The file, 3. the environment, 4. the flags. */
    if (!file && (file = getenv("FLUSHOUT_CONFIG")) && !*file)
        file = NULL;
    if (file && !*file) {
        fprintf(stderr, "flushout-hub: bad value for --config: '' (see --help)\n");
        goto out;
    }
    if ((file && fo_settings_load_file(&settings, c, file, src, err, sizeof(err))) ||
        fo_settings_load_env(&settings, c, src, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        snprintf(label, sizeof(label), "--%s", given_row[i]->name);
        if (given_row[i]->type == FO_SET_STRING && !given_val[i][0]) {
            fprintf(stderr, "flushout-hub: bad value for %s: '' (see --help)\n", label);
            goto out;
        }
        if (fo_settings_set(&settings, given_row[i], c, given_val[i], label, err, sizeof(err))) {
            fprintf(stderr, "%s\n", err);
            goto out;
        }
        src[given_row[i] - rows] = FO_SRC_FLAG;
    }
    if (!c->tls_cert[0] != !c->tls_key[0]) {
        fprintf(stderr, "flushout-hub: --tls-cert and --tls-key go together (see --help)\n");
        goto out;
    }
    rc = 0;
    if (print) {
        printf("# flushout-hub %s --print-config: the effective settings, a file for --config.\n"
               "# A value without a comment above it is the default.\n",
               FO_VERSION);
        fo_settings_print(&settings, c, src, file, stdout);
        rc = 1;
    }
out:
    free(given_row);
    free(given_val);
    return rc;
}
