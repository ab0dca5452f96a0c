/* flushout-bench's command line: the options, their defaults, and the connection roles
 * they imply. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "bench/loadgen/lg.h"

static const char usage[] =
    "usage: flushout-bench [options]\n"
    "\n"
    "Drives flushout-hub over WebSockets and checks every reply (acks match flushes, pushes\n"
    "are gap-free, no error frames). Prints a progress line each second on stderr and a\n"
    "table (or, with --json, one JSON object) on stdout. Exit status 0 when no failure was\n"
    "seen, 1 when some were, 2 on bad usage.\n"
    "\n"
    "  --url URL[,URL...]     ws[s]://HOST:PORT/v1/ws[?token=T] (default\n"
    "                         ws://127.0.0.1:7420/v1/ws). Several hubs: up to 16 URLs,\n"
    "                         comma-separated, all ws:// or all wss://; connections go\n"
    "                         round-robin over them, the k-th connection of model m to\n"
    "                         URL (m + k) % n, so a model's writers and subscribers land\n"
    "                         on different hubs\n"
    "  --ca FILE              wss://: trust the CAs of this PEM file (default $FLUSHOUT_CA,\n"
    "                         else the system's); the hub is always verified\n"
    "  --connections N        connections (default 100)\n"
    "  --models M             models bench-0..bench-M-1 (default 10); connection i uses\n"
    "                         model i % M\n"
    "  --writers W            writers per model (each subscribes, then flushes)\n"
    "  --subscribers S        pure subscribers per model. Default: every connection writes.\n"
    "                         Given both, N = M*(W+S); given one, the other is N/M minus it\n"
    "  --commands K           commands per flush (default 1)\n"
    "  --mix C:U:D            weights of create, update, delete (default 1:2:1); updates and\n"
    "                         deletes target IDs the writer created\n"
    "  --payload BYTES        size of the string prop `v` (default 16)\n"
    "  --rate R               open loop: R flushes/s overall, round-robin over writers, latency\n"
    "                         from the intended send time (no coordinated omission). Default:\n"
    "                         closed loop, each writer waits for its ack. A writer has one\n"
    "                         flush in flight, as a Flushout proxy does: flushes that fall\n"
    "                         due meanwhile wait for the ack (their latency still counts\n"
    "                         from when they were due)\n"
    "  --pipeline             open loop without that limit: flushes go out when due, with the\n"
    "                         `from` of the last frame seen, so each ack's sync repeats every\n"
    "                         batch since then (bytes grow with the pipeline depth)\n"
    "  --flushes N            each writer sends N flushes, then stops; the window ends when\n"
    "                         every writer has had all its acks (--duration still caps it)\n"
    "  --storm-at SECONDS     a reconnect storm that far into the window: every subscriber\n"
    "                         drops its connection and at once reconnects and subscribes\n"
    "                         with `from`; JSON storm_* (time until all are back, the\n"
    "                         writers' ack latency meanwhile)\n"
    "  --warmup SECONDS       before measuring (default 2)\n"
    "  --duration SECONDS     measured window (default 10)\n"
    "  --drain SECONDS        wait for outstanding acks after the window (default 5)\n"
    "  --source-ips A,B,...   local addresses to bind, round-robin (e.g. 127.0.0.1,127.0.0.2)\n"
    "  --hub-pid PID          hub process for CPU% and RSS (default: the local process\n"
    "                         listening on the first URL's port, found through /proc);\n"
    "                         the /metrics deltas are the first URL's hub's too\n"
    "  --idle                 connections only upgrade and say hello: no sub, no flush; for\n"
    "                         hub memory per idle connection (waits --duration, reads RSS)\n"
    "  --no-hello             with --idle: not even hello (the bare WebSocket's cost)\n"
    "  --model-prefix P       model name prefix (default bench-)\n"
    "  --connect-concurrency N  handshakes in progress at once (default 256)\n"
    "  --print-errors N       failures printed in full (default 10; all are counted)\n"
    "  --no-progress          no progress line\n"
    "  --check-every N        decode 1 in N acks and pushes with fo_wire_decode (strict, and\n"
    "                         compared with the fast reader) and read the others with a\n"
    "                         fast reader of just the checked fields; 0: never. Default 1:\n"
    "                         every frame fully decoded (the generator's core may then be\n"
    "                         the limit: with K=10 it receives ~250 MB/s)\n"
    "  --json                 one JSON object on stdout instead of the table\n"
    "  --help\n"
    "  --version\n";

/* ---- options --------------------------------------------------------------------------- */

static int bad(const char *flag, const char *v)
{
    fprintf(stderr, "flushout-bench: bad value for %s: '%s' (see --help)\n", flag, v);
    return -1;
}

static int parse_u32(const char *flag, const char *v, uint32_t *out, uint32_t min)
{
    char *end;
    unsigned long n;

    errno = 0;
    n = strtoul(v, &end, 10);
    if (errno || *end || end == v || v[0] == '-' || n > UINT32_MAX || n < min)
        return bad(flag, v);
    *out = (uint32_t)n;
    return 0;
}

static int parse_secs(const char *flag, const char *v, double *out)
{
    char *end;
    double d = strtod(v, &end);

    if (*end || end == v || !(d >= 0) || d > 86400)
        return bad(flag, v);
    *out = d;
    return 0;
}

/* One hub URL into *u and *tls. NULL, or why it is bad (static). */
static const char *parse_one(fo_lg_url *u, bool *tls, const char *url)
{
    const char *hs, *he, *slash, *port = NULL;
    size_t hl;

    *tls = strncmp(url, "wss://", 6) == 0;
    if (!*url)
        return "empty";
    if (strncmp(url, "ws://", 5) != 0 && !*tls)
        return "not ws:// or wss://";
    if (strlen(url) >= sizeof(u->url))
        return "too long";
    strcpy(u->url, url);
    hs = url + (*tls ? 6 : 5);
    slash = strpbrk(hs, "/?");
    he = slash ? slash : hs + strlen(hs);
    hl = (size_t)(he - hs);
    if (hl == 0 || hl >= sizeof(u->host))
        return "bad host";
    memcpy(u->host, hs, hl);
    u->host[hl] = '\0';
    snprintf(u->path, sizeof(u->path), "%s%s", slash && *slash == '?' ? "/" : "",
             slash ? slash : "/");
    if (u->host[0] == '[') { /* [v6]:port */
        const char *rb = strchr(u->host, ']');
        if (!rb)
            return "bad host";
        hl = (size_t)(rb - u->host - 1);
        if (hl >= sizeof(u->hostname))
            return "bad host";
        memcpy(u->hostname, u->host + 1, hl); /* not snprintf: gcc sees an overlap in u */
        u->hostname[hl] = '\0';
        port = rb[1] == ':' ? rb + 2 : NULL;
    } else {
        const char *colon = strrchr(u->host, ':');
        hl = colon ? (size_t)(colon - u->host) : strlen(u->host);
        if (hl >= sizeof(u->hostname))
            return "bad host";
        memcpy(u->hostname, u->host, hl);
        u->hostname[hl] = '\0';
        port = colon ? colon + 1 : NULL;
    }
    u->port = *tls ? 443 : 80;
    if (port) {
        char *end;
        long p = strtol(port, &end, 10);
        if (*end || end == port || p <= 0 || p > 65535)
            return "bad port";
        u->port = (int)p;
    }
    return NULL;
}

static int bad_item(uint32_t n, const char *item, const char *why)
{
    fprintf(stderr, "flushout-bench: bad value for --url: item %u '%s': %s (see --help)\n", n, item,
            why);
    return -1;
}

/* --url: one URL, or up to FO_LG_MAX_URLS separated by commas, all ws:// or all wss://. A
 * single URL's error reads as before the lists; a list's names the bad item. */
static int parse_url(fo_lg_opts *o, const char *v)
{
    char item[sizeof(o->urls[0].url) + 1];
    const char *p = v, *why;
    bool tls;

    if (strlen(v) >= sizeof(o->url))
        return bad("--url", v);
    o->nurls = 0;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        bool list = comma || o->nurls;

        snprintf(item, sizeof(item), "%.*s", (int)len, p); /* a longer one is "too long" */
        if (o->nurls == FO_LG_MAX_URLS) {
            fprintf(stderr,
                    "flushout-bench: bad value for --url: more than %d URLs (item %u '%s')\n",
                    FO_LG_MAX_URLS, o->nurls + 1, item);
            return -1;
        }
        why =
            len >= sizeof(o->urls[0].url) ? "too long" : parse_one(&o->urls[o->nurls], &tls, item);
        if (why)
            return list ? bad_item(o->nurls + 1, item, why) : bad("--url", v);
        if (o->nurls && tls != o->tls)
            return bad_item(o->nurls + 1, item, "ws:// and wss:// mixed");
        o->tls = tls;
        o->nurls++;
        if (!comma)
            break;
        p = comma + 1;
    }
    strcpy(o->url, v);
    return 0;
}

uint32_t fo_lg_url_of(const fo_lg_opts *o, uint32_t i)
{
    if (o->nurls <= 1 || o->models == 0)
        return 0;
    return (i % o->models + i / o->models) % o->nurls;
}

static int parse_mix(fo_lg_opts *o, const char *v)
{
    unsigned a, b, c;
    char extra;

    if (sscanf(v, "%u:%u:%u%c", &a, &b, &c, &extra) != 3 || a + b + c == 0 || a == 0)
        return bad("--mix", v); /* without creates nothing can be updated or deleted */
    o->mix[0] = a, o->mix[1] = b, o->mix[2] = c;
    return 0;
}

static int parse_sources(fo_lg_opts *o, const char *v)
{
    char buf[2048], *tok, *save = NULL;

    if (strlen(v) >= sizeof(buf))
        return bad("--source-ips", v);
    strcpy(buf, v);
    o->nsources = 0;
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (o->nsources == FO_LG_MAX_SOURCES || uv_ip4_addr(tok, 0, &o->sources[o->nsources]))
            return bad("--source-ips", v);
        o->nsources++;
    }
    return o->nsources ? 0 : bad("--source-ips", v);
}

int fo_lg_opts_parse(fo_lg_opts *o, int argc, char **argv)
{
    enum {
        URL = 1,
        CONNS,
        MODELS,
        WRITERS,
        SUBS,
        CMDS,
        MIX,
        PAYLOAD,
        RATE,
        WARMUP,
        DURATION,
        DRAIN,
        SOURCES,
        PID,
        IDLE,
        PREFIX,
        CONC,
        PERR,
        NOPROG,
        JSON,
        PIPELINE,
        NOHELLO,
        CHECK,
        FLUSHES,
        STORM,
        HELP,
        VERSION,
        CA
    };
    static const struct option opts[] = {
        {"url", required_argument, NULL, URL},
        {"ca", required_argument, NULL, CA},
        {"connections", required_argument, NULL, CONNS},
        {"models", required_argument, NULL, MODELS},
        {"writers", required_argument, NULL, WRITERS},
        {"subscribers", required_argument, NULL, SUBS},
        {"commands", required_argument, NULL, CMDS},
        {"mix", required_argument, NULL, MIX},
        {"payload", required_argument, NULL, PAYLOAD},
        {"rate", required_argument, NULL, RATE},
        {"warmup", required_argument, NULL, WARMUP},
        {"duration", required_argument, NULL, DURATION},
        {"drain", required_argument, NULL, DRAIN},
        {"source-ips", required_argument, NULL, SOURCES},
        {"hub-pid", required_argument, NULL, PID},
        {"idle", no_argument, NULL, IDLE},
        {"model-prefix", required_argument, NULL, PREFIX},
        {"connect-concurrency", required_argument, NULL, CONC},
        {"print-errors", required_argument, NULL, PERR},
        {"no-progress", no_argument, NULL, NOPROG},
        {"json", no_argument, NULL, JSON},
        {"pipeline", no_argument, NULL, PIPELINE},
        {"no-hello", no_argument, NULL, NOHELLO},
        {"check-every", required_argument, NULL, CHECK},
        {"flushes", required_argument, NULL, FLUSHES},
        {"storm-at", required_argument, NULL, STORM},
        {"help", no_argument, NULL, HELP},
        {"version", no_argument, NULL, VERSION},
        {NULL, 0, NULL, 0},
    };
    uint32_t u = 0;
    int opt, rc = 0;

    memset(o, 0, sizeof(*o));
    parse_url(o, "ws://127.0.0.1:7420/v1/ws");
    o->connections = 100;
    o->models = 10;
    o->commands = 1;
    o->mix[0] = 1, o->mix[1] = 2, o->mix[2] = 1;
    o->payload = 16;
    o->warmup = 2;
    o->duration = 10;
    o->drain = 5;
    o->progress = true;
    strcpy(o->model_prefix, "bench-");
    o->connect_concurrency = 256;
    o->print_errors = 10;
    o->check_every = 1;
    opterr = 0;
    while (rc == 0 && (opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case URL: rc = parse_url(o, optarg); break;
        case CA:
            if (strlen(optarg) >= sizeof(o->ca) || !*optarg)
                return bad("--ca", optarg);
            strcpy(o->ca, optarg);
            break;
        case CONNS:
            rc = parse_u32("--connections", optarg, &o->connections, 1);
            o->has_connections = true;
            break;
        case MODELS: rc = parse_u32("--models", optarg, &o->models, 1); break;
        case WRITERS:
            rc = parse_u32("--writers", optarg, &o->writers, 0);
            o->has_writers = true;
            break;
        case SUBS:
            rc = parse_u32("--subscribers", optarg, &o->subscribers, 0);
            o->has_subscribers = true;
            break;
        case CMDS: rc = parse_u32("--commands", optarg, &o->commands, 1); break;
        case MIX: rc = parse_mix(o, optarg); break;
        case PAYLOAD: rc = parse_u32("--payload", optarg, &o->payload, 0); break;
        case RATE: rc = parse_secs("--rate", optarg, &o->rate); break;
        case WARMUP: rc = parse_secs("--warmup", optarg, &o->warmup); break;
        case DURATION: rc = parse_secs("--duration", optarg, &o->duration); break;
        case DRAIN: rc = parse_secs("--drain", optarg, &o->drain); break;
        case SOURCES: rc = parse_sources(o, optarg); break;
        case PID:
            rc = parse_u32("--hub-pid", optarg, &u, 1);
            o->hub_pid = (int)u;
            break;
        case IDLE: o->idle = true; break;
        case PREFIX:
            if (strlen(optarg) > 40 ||
                strspn(optarg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
                               "OPQRSTUVWXYZ0123456789._:-") != strlen(optarg))
                return bad("--model-prefix", optarg);
            strcpy(o->model_prefix, optarg);
            break;
        case CONC:
            rc = parse_u32("--connect-concurrency", optarg, &o->connect_concurrency, 1);
            break;
        case PERR: rc = parse_u32("--print-errors", optarg, &o->print_errors, 0); break;
        case NOPROG: o->progress = false; break;
        case JSON: o->json = true; break;
        case PIPELINE: o->pipeline = true; break;
        case NOHELLO: o->no_hello = true; break;
        case CHECK: rc = parse_u32("--check-every", optarg, &o->check_every, 0); break;
        case FLUSHES: rc = parse_u32("--flushes", optarg, &o->max_flushes, 1); break;
        case STORM: rc = parse_secs("--storm-at", optarg, &o->storm_at); break;
        case 'h':
        case HELP: fputs(usage, stdout); return 1;
        case VERSION: printf("flushout-bench %s\n", FO_VERSION); return 1;
        default:
            fprintf(stderr, "flushout-bench: unknown or incomplete option '%s' (see --help)\n",
                    argv[optind - 1]);
            return -1;
        }
    }
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "flushout-bench: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (rc)
        return rc;
    /* Roles per model: W writers then S subscribers. */
    if (o->has_writers && o->has_subscribers) {
        uint64_t n = (uint64_t)o->models * (o->writers + o->subscribers);
        if (n == 0 || n > 1000000 || (o->has_connections && n != o->connections)) {
            fprintf(stderr,
                    "flushout-bench: --models x (--writers + --subscribers) = %llu "
                    "connections, but --connections says %u\n",
                    (unsigned long long)n, o->connections);
            return -1;
        }
        o->connections = (uint32_t)n;
    } else if (o->has_writers || o->has_subscribers) {
        uint32_t per = o->connections / o->models,
                 given = o->has_writers ? o->writers : o->subscribers;
        if (per < given) {
            fprintf(stderr,
                    "flushout-bench: %u connections over %u models leave fewer than "
                    "%u per model\n",
                    o->connections, o->models, given);
            return -1;
        }
        if (o->has_writers)
            o->subscribers = per - o->writers;
        else
            o->writers = per - o->subscribers;
    } else {
        o->writers = (o->connections + o->models - 1) / o->models;
        o->subscribers = 0;
    }
    if (o->idle)
        o->writers = o->subscribers = 0;
    if (o->connections < o->models)
        fprintf(stderr,
                "flushout-bench: warning: %u connections for %u models: models "
                "%u.. get none\n",
                o->connections, o->models, o->connections);
    return 0;
}
