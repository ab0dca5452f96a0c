#include "hub/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/log.h"
#include "hub/origin.h"

void fo_hub_config_default(fo_hub_config *c)
{
    memset(c, 0, sizeof(*c));
    strcpy(c->host, "127.0.0.1");
    c->port = 7420;
    strcpy(c->data_dir, "./data");
    strcpy(c->store, "sqlite");
    c->history = 1000;
    c->memory_budget = (size_t)512 << 20;
    c->max_frame = (size_t)1 << 20;
    c->max_queue = (size_t)4 << 20;
    c->snapshot_every = 1000;
    c->log_level = FO_LOG_INFO;
    c->rule_instructions = 1000000;
    c->rule_time_ms = 10;
    c->rule_memory = (size_t)32 << 20;
}

long long fo_parse_size(const char *s)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return -1;
    switch (*end) {
    case 'k': case 'K': v <<= 10, end++; break;
    case 'm': case 'M': v <<= 20, end++; break;
    case 'g': case 'G': v <<= 30, end++; break;
    default: break;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    return *end ? -1 : v;
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

static const char usage[] =
    "usage: flushout-hub [options]\n"
    "\n"
    "A WebSocket hub for Flushout documents (wire contract flushout.v1 at /v1/ws).\n"
    "\n"
    "  --listen HOST:PORT     address to listen on (default 127.0.0.1:7420; port 0 picks\n"
    "                         a free port, logged as `listening on HOST:PORT`)\n"
    "  --data DIR             data directory of the sqlite store (default ./data)\n"
    "  --store sqlite|memory  where models are kept (default sqlite; memory loses\n"
    "                         everything at exit: tests and benchmarks)\n"
    "  --history N            how far back (in commands) incremental syncs, `history` and\n"
    "                         `get at` reach per model (default 1000); what is out of\n"
    "                         memory is read back from the store\n"
    "  --snapshot-every N     write a snapshot every N commands of a model (default 1000)\n"
    "  --memory-budget SIZE   bound on hot documents, histories and exactly-once tables,\n"
    "                         subscribed models included: idle models are evicted, history\n"
    "                         past it is read back from the store, idle subscribed models'\n"
    "                         documents are dropped and reloaded (default 512M; the memory\n"
    "                         store's own rows are not counted)\n"
    "  --max-frame SIZE       largest inbound frame (default 1M)\n"
    "  --max-queue SIZE       outbound backlog per connection before its pushes are\n"
    "                         dropped and replaced by one catch-up (default 4M)\n"
    "  --static DIR           serve the files of DIR at / (the demo app)\n"
    "  --console-dir DIR      serve the operator console (clients/console/dist) at\n"
    "                         /console/; its data (/v1/console/...) needs a token with\n"
    "                         the admin right, or an open hub listening on loopback\n"
    "  --auth FILE            require tokens: lines `TOKEN MODEL-PATTERN rw|r|admin [NAME]`\n"
    "                         (fnmatch patterns; NAME is the identity's sub)\n"
    "  --jwt-secret-file FILE accept JWTs signed HS256/384/512 with the secret in FILE\n"
    "                         (at least 32 bytes; a trailing newline is dropped)\n"
    "  --jwt-public-key FILE  accept JWTs signed with the private half of this PEM public\n"
    "                         key (RSA: RS256/384/512; EC P-256: ES256, P-384: ES384)\n"
    "                         claims: sub, exp, nbf, models {PATTERN: \"r\"|\"rw\"}; without\n"
    "                         --auth and JWT keys the hub is open\n"
    "  --interceptors FILE    server-side rules in Lua (see the README: writing a rule);\n"
    "                         SIGHUP reloads the file (a bad file keeps the old rules)\n"
    "  --rule-instructions N  Lua instructions a command's rules may run (default 1000000)\n"
    "  --rule-time-ms N       wall-clock bound of a command's rules (default 10)\n"
    "  --rule-memory SIZE     memory cap of the rules' Lua state (default 32M)\n"
    "  --allowed-origins LIST browser origins that may open a WebSocket besides the hub's\n"
    "                         own pages (Origin matching Host, always allowed): comma-\n"
    "                         separated http[s]://HOST[:PORT], or '*' for any. Clients that\n"
    "                         send no Origin (not browsers) are always allowed; others 403\n"
    "  --tls-cert FILE        serve TLS on the port (wss:// and https://) with this PEM\n"
    "                         certificate chain; needs --tls-key\n"
    "  --tls-key FILE         the certificate's PEM private key\n"
    "  --sequential-ids       generate IDs as the reference's test mode (tests only)\n"
    "  --log-level LEVEL      error, warn, info (default) or debug\n"
    "  --help                 this text\n"
    "  --version              print the version and exit\n"
    "\n"
    "SIGTERM or SIGINT: stop accepting, finish and persist in-flight flushes, close\n"
    "connections with 1001, exit 0.\n"
    "\n"
    "Other forms:\n"
    "  flushout-hub --check-interceptors FILE   load and check a rules file: exit 0 or 2\n"
    "  flushout-hub replay --data DIR MODEL --interceptors FILE\n"
    "                         re-run the model's stored batches through FILE's rules and\n"
    "                         print each command they decide differently (exit 1; 0: none)\n";

static int bad(const char *flag, const char *val)
{
    fprintf(stderr, "flushout-hub: bad value for %s: '%s' (see --help)\n", flag, val);
    return -1;
}

static int copy_str(char *dst, size_t cap, const char *flag, const char *val)
{
    if (strlen(val) >= cap || !*val)
        return bad(flag, val);
    strcpy(dst, val);
    return 0;
}

static int parse_listen(fo_hub_config *c, const char *v)
{
    const char *colon = strrchr(v, ':');
    const char *h = v;
    size_t hl;
    char *end;
    long port;

    if (!colon)
        return bad("--listen", v);
    hl = (size_t)(colon - v);
    if (hl >= 2 && v[0] == '[' && v[hl - 1] == ']') /* [::1]:7420 */
        h = v + 1, hl -= 2;
    if (hl == 0 || hl >= sizeof(c->host))
        return bad("--listen", v);
    port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535)
        return bad("--listen", v);
    memcpy(c->host, h, hl);
    c->host[hl] = '\0';
    c->port = (int)port;
    return 0;
}

static int parse_uint(const char *flag, const char *v, uint32_t *out)
{
    char *end;
    unsigned long n;

    errno = 0;
    n = strtoul(v, &end, 10);
    if (errno || *end || end == v || n > UINT32_MAX || v[0] == '-')
        return bad(flag, v);
    *out = (uint32_t)n;
    return 0;
}

static int parse_size(const char *flag, const char *v, size_t min, size_t *out)
{
    long long n = fo_parse_size(v);

    if (n < 0 || (size_t)n < min)
        return bad(flag, v);
    *out = (size_t)n;
    return 0;
}

int fo_hub_config_parse(fo_hub_config *c, int argc, char **argv)
{
    enum { LISTEN = 1, DATA, STORE, HISTORY, SNAP, BUDGET, FRAME, QUEUE, STATIC, CONSOLE, AUTH, SEQ,
           LEVEL, HELP, RULES, RULE_INS, RULE_TIME, RULE_MEM, JWT_SECRET, JWT_KEY,
           ORIGINS, VERSION, TLS_CERT, TLS_KEY };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, LISTEN},
        {"data", required_argument, NULL, DATA},
        {"store", required_argument, NULL, STORE},
        {"history", required_argument, NULL, HISTORY},
        {"snapshot-every", required_argument, NULL, SNAP},
        {"memory-budget", required_argument, NULL, BUDGET},
        {"max-frame", required_argument, NULL, FRAME},
        {"max-queue", required_argument, NULL, QUEUE},
        {"static", required_argument, NULL, STATIC},
        {"console-dir", required_argument, NULL, CONSOLE},
        {"auth", required_argument, NULL, AUTH},
        {"jwt-secret-file", required_argument, NULL, JWT_SECRET},
        {"jwt-public-key", required_argument, NULL, JWT_KEY},
        {"sequential-ids", no_argument, NULL, SEQ},
        {"log-level", required_argument, NULL, LEVEL},
        {"help", no_argument, NULL, HELP},
        {"interceptors", required_argument, NULL, RULES},
        {"rule-instructions", required_argument, NULL, RULE_INS},
        {"rule-time-ms", required_argument, NULL, RULE_TIME},
        {"rule-memory", required_argument, NULL, RULE_MEM},
        {"allowed-origins", required_argument, NULL, ORIGINS},
        {"version", no_argument, NULL, VERSION},
        {"tls-cert", required_argument, NULL, TLS_CERT},
        {"tls-key", required_argument, NULL, TLS_KEY},
        {NULL, 0, NULL, 0},
    };
    int o, rc = 0;

    optind = 1;
    opterr = 0;
    while (rc == 0 && (o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case LISTEN: rc = parse_listen(c, optarg); break;
        case DATA: rc = copy_str(c->data_dir, sizeof(c->data_dir), "--data", optarg); break;
        case STORE:
            if (strcmp(optarg, "sqlite") && strcmp(optarg, "memory"))
                return bad("--store", optarg);
            strcpy(c->store, optarg);
            break;
        case HISTORY: rc = parse_uint("--history", optarg, &c->history); break;
        case SNAP:
            rc = parse_uint("--snapshot-every", optarg, &c->snapshot_every);
            if (!rc && c->snapshot_every == 0)
                rc = bad("--snapshot-every", optarg);
            break;
        case BUDGET: rc = parse_size("--memory-budget", optarg, 0, &c->memory_budget); break;
        case FRAME: rc = parse_size("--max-frame", optarg, 1024, &c->max_frame); break;
        case QUEUE: rc = parse_size("--max-queue", optarg, 4096, &c->max_queue); break;
        case STATIC:
            rc = copy_str(c->static_dir, sizeof(c->static_dir), "--static", optarg);
            break;
        case CONSOLE:
            rc = copy_str(c->console_dir, sizeof(c->console_dir), "--console-dir", optarg);
            break;
        case AUTH: rc = copy_str(c->auth_file, sizeof(c->auth_file), "--auth", optarg); break;
        case JWT_SECRET:
            rc = copy_str(c->jwt_secret_file, sizeof(c->jwt_secret_file), "--jwt-secret-file",
                          optarg);
            break;
        case JWT_KEY:
            rc = copy_str(c->jwt_public_key, sizeof(c->jwt_public_key), "--jwt-public-key",
                          optarg);
            break;
        case SEQ: c->sequential_ids = true; break;
        case RULES:
            rc = copy_str(c->interceptors, sizeof(c->interceptors), "--interceptors", optarg);
            break;
        case RULE_INS: {
            uint32_t n = 0;
            rc = parse_uint("--rule-instructions", optarg, &n);
            if (!rc && n < 1000)
                rc = bad("--rule-instructions", optarg);
            c->rule_instructions = n;
            break;
        }
        case RULE_TIME:
            rc = parse_uint("--rule-time-ms", optarg, &c->rule_time_ms);
            if (!rc && c->rule_time_ms == 0)
                rc = bad("--rule-time-ms", optarg);
            break;
        case RULE_MEM: rc = parse_size("--rule-memory", optarg, 1 << 20, &c->rule_memory); break;
        case LEVEL:
            if ((c->log_level = fo_log_parse_level(optarg)) < 0)
                return bad("--log-level", optarg);
            break;
        case ORIGINS: {
            char why[300];
            if (fo_origins_check(optarg, why, sizeof(why))) {
                fprintf(stderr, "flushout-hub: bad value for --allowed-origins: %s\n", why);
                return -1;
            }
            rc = copy_str(c->allowed_origins, sizeof(c->allowed_origins), "--allowed-origins",
                          optarg);
            break;
        }
        case TLS_CERT: rc = copy_str(c->tls_cert, sizeof(c->tls_cert), "--tls-cert", optarg); break;
        case TLS_KEY: rc = copy_str(c->tls_key, sizeof(c->tls_key), "--tls-key", optarg); break;
        case VERSION: printf("flushout-hub %s\n", FO_VERSION); return 1;
        case 'h':
        case HELP: fputs(usage, stdout); return 1;
        default:
            fprintf(stderr, "flushout-hub: unknown or incomplete option '%s' (see --help)\n",
                    argv[optind - 1]);
            return -1;
        }
    }
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "flushout-hub: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    if (rc == 0 && !c->tls_cert[0] != !c->tls_key[0]) {
        fprintf(stderr, "flushout-hub: --tls-cert and --tls-key go together (see --help)\n");
        return -1;
    }
    return rc;
}
