/* main.c - `flushout`: options, help, the loop and exit codes. The subcommands are in
 * cmds.c; everything talks to the hub through libflushout-client. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"

#define DEFAULT_URL "ws://127.0.0.1:7420/v1/ws"

static const char usage_main[] =
    "usage: flushout [--url URL] [--token TOKEN] [--timeout S] COMMAND MODEL [ARGS]\n"
    "\n"
    "Look inside and change the documents of a flushout-hub.\n"
    "\n"
    "commands:\n"
    "  get MODEL [--at N]           print the snapshot {commandCount, document}\n"
    "  watch MODEL                  print pushes and presence changes as JSON lines\n"
    "  apply MODEL [COMMAND...]     apply commands (arguments, or JSON lines on stdin)\n"
    "                               and print the ApplyResult of their flush\n"
    "  history MODEL --from N [--to M]  print the CompletionBatch [N, M)\n"
    "  presence MODEL JSON          set this session's presence while connected\n"
    "  audit MODEL [--from N]       print what the hub's rules rejected or rewrote\n"
    "  token --secret-file F --sub NAME --models 'PATTERN=rw' [--ttl 1h]\n"
    "                               print a signed token (JWT) for development\n"
    "\n"
    "options (anywhere on the line):\n"
    "  --url URL      the hub's WebSocket URL (default $FLUSHOUT_URL, else\n"
    "                 " DEFAULT_URL ")\n"
    "  --token TOKEN  sent as `Authorization: Bearer TOKEN` (default $FLUSHOUT_TOKEN)\n"
    "  --ca FILE      wss://: trust the CAs in this PEM file (a private CA; default\n"
    "                 $FLUSHOUT_CA, else the system's CAs); the hub is always verified\n"
    "  --timeout S    give up after S seconds (default 10; watch and presence: none)\n"
    "  --pretty       indent the JSON output\n"
    "  --help         this text; `flushout COMMAND --help` for one command\n"
    "  --version      print the version and exit\n"
    "\n"
    "Model names are 1-200 characters of A-Z a-z 0-9 . _ : -\n"
    "\n"
    "exit codes:\n"
    "  0    success\n"
    "  1    the hub answered with an error (also: refused the connection with HTTP 401),\n"
    "       or a command failed (apply: a command that does not apply, or `errors` in\n"
    "       the ApplyResult)\n"
    "  2    usage error, bad JSON or bad model name\n"
    "  3    the hub cannot be reached, or the connection was lost\n"
    "  4    timed out (--timeout)\n"
    "  130  interrupted (SIGINT/SIGTERM) during get, history or apply\n";

static const char usage_get[] =
    "usage: flushout get MODEL [--at N] [--pretty]\n"
    "\n"
    "Prints the model's snapshot as JSON: {\"commandCount\": N, \"document\": {...}}.\n"
    "--at N: the state after the first N commands, where the hub's history still has it\n"
    "(else the hub answers `gone`: exit 1). A model nobody wrote is {commandCount 0, {}}.\n";

static const char usage_watch[] =
    "usage: flushout watch MODEL [--count N] [--timeout S]\n"
    "\n"
    "Subscribes and prints one JSON line per event, until SIGINT (exit 0):\n"
    "  {\"t\":\"push\",\"model\":M,\"diff\":{\"from\":N,\"completions\":[...]}}\n"
    "  {\"t\":\"presence\",\"model\":M,\"session\":S,\"state\":{...}|null}\n"
    "  {\"t\":\"snap\",\"model\":M,\"snapshot\":{...}}  (when the hub resends the whole state)\n"
    "Once subscribed it says `flushout: watching MODEL at commandCount N` on stderr.\n"
    "--count N: exit 0 after N events (exit 4 if --timeout passes first).\n"
    "--timeout S without --count: watch for S seconds, then exit 0.\n";

static const char usage_apply[] =
    "usage: flushout apply MODEL [COMMAND...]\n"
    "\n"
    "Applies commands and prints the ApplyResult of their flush as JSON:\n"
    "  {\"applied\":{\"from\":N,\"completions\":[...]},\"sync\"?:{...},\"errors\"?:[...]}\n"
    "Commands come as arguments, or, without any, as JSON lines on stdin (blank lines\n"
    "are skipped). A command is {\"action\":\"create\"|\"update\"|\"delete\",\"path\":[...],\n"
    "\"props\":{...},\"parentDefault\":{...}}. All commands are checked before connecting\n"
    "(bad JSON: exit 2, naming the line and column); they are applied to the current\n"
    "document in order and flushed together, once. A command that does not apply is\n"
    "reported on stderr and left out (exit 1).\n"
    "--sequential-ids: create IDs as the reference's test mode (commandCount + 1).\n";

static const char usage_history[] =
    "usage: flushout history MODEL --from N [--to M]\n"
    "\n"
    "Prints the completions that took the model from N to M commands (M: the latest)\n"
    "as a CompletionBatch {\"from\":N,\"completions\":[...]}. A range the hub no longer\n"
    "keeps is answered with `gone` (exit 1).\n";

static const char usage_presence[] =
    "usage: flushout presence MODEL JSON [--hold S]\n"
    "\n"
    "Subscribes and sets this session's presence to JSON (an object). Presence lasts as\n"
    "long as the connection: the program holds it until SIGINT (exit 0), or for S\n"
    "seconds with --hold S (0: exit as soon as the hub has taken it).\n";

static const char usage_audit[] =
    "usage: flushout audit MODEL [--from N] [--pretty]\n"
    "\n"
    "Prints every command the hub's rules (--interceptors) rejected or rewrote in the\n"
    "batches stored from command count N on (default 0), as kept under the hub's\n"
    "history retention: {\"model\":M,\"batches\":[{\"from\",\"applied\",\"now\",\"seq\",\n"
    "\"client\",\"identity\",\"actions\":[{\"index\",\"command\",\"outcome\",\"message\"|\n"
    "\"props\",\"rules\"}]}]}. Reads GET /v1/models/MODEL/audit on the hub's port.\n";

static const char *usage_for(cli_cmd cmd)
{
    switch (cmd) {
    case CMD_GET: return usage_get;
    case CMD_WATCH: return usage_watch;
    case CMD_APPLY: return usage_apply;
    case CMD_HISTORY: return usage_history;
    case CMD_PRESENCE: return usage_presence;
    case CMD_AUDIT: return usage_audit;
    }
    return usage_main;
}

/* ---- outcome ------------------------------------------------------------------------- */

static void on_closed(fo_client *cl, void *data)
{
    cli *c = data;

    (void)cl;
    c->client = NULL;
    uv_close((uv_handle_t *)&c->timer, NULL);
    uv_close((uv_handle_t *)&c->sigint, NULL);
    uv_close((uv_handle_t *)&c->sigterm, NULL);
}

void cli_finish(cli *c, int code)
{
    if (c->done)
        return;
    c->done = true;
    c->exit_code = code;
    fflush(stdout);
    fo_client_close(c->client, on_closed, c);
}

void cli_fail(cli *c, int code, const char *fmt, ...)
{
    va_list ap;

    if (c->done)
        return;
    fputs("flushout: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cli_finish(c, code);
}

void cli_print(cli *c, fo_buf *b)
{
    fwrite(fo_buf_data(b), 1, b->len, stdout);
    fputc('\n', stdout);
    if (fflush(stdout) != 0)
        cli_finish(c, CLI_OK); /* the reader went away (`flushout watch M | head -1`) */
}

static void on_timer(uv_timer_t *t)
{
    cli_on_timeout(t->data);
}

void cli_arm_timer(cli *c, double secs)
{
    uv_timer_start(&c->timer, on_timer, (uint64_t)llround(secs * 1000), 0);
}

static void on_signal(uv_signal_t *s, int signum)
{
    cli *c = s->data;

    (void)signum;
    /* watch and presence run until interrupted: that is their normal end. */
    cli_finish(c, c->cmd == CMD_WATCH || c->cmd == CMD_PRESENCE ? CLI_OK : CLI_EINTR);
}

/* ---- options ------------------------------------------------------------------------- */

static int usage_error(cli *c, const char *fmt, const char *arg)
{
    fputs("flushout: ", stderr);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see flushout %s--help)\n",
            c->cmd == CMD_GET        ? "get "
            : c->cmd == CMD_WATCH    ? "watch "
            : c->cmd == CMD_APPLY    ? "apply "
            : c->cmd == CMD_HISTORY  ? "history "
            : c->cmd == CMD_PRESENCE ? "presence "
            : c->cmd == CMD_AUDIT    ? "audit "
                                     : "");
    return CLI_EUSAGE;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!s || !*s || *s == '-' || *s == '+')
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static bool parse_secs(const char *s, double *out)
{
    char *end;
    double v;

    if (!s || !*s)
        return false;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || !(v >= 0) || v > 1e6)
        return false;
    *out = v;
    return true;
}

static cli_cmd parse_cmd(const char *s)
{
    static const struct {
        const char *name;
        cli_cmd cmd;
    } cmds[] = {{"get", CMD_GET},
                {"watch", CMD_WATCH},
                {"apply", CMD_APPLY},
                {"history", CMD_HISTORY},
                {"presence", CMD_PRESENCE},
                {"audit", CMD_AUDIT}};

    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(s, cmds[i].name) == 0)
            return cmds[i].cmd;
    return 0;
}

/* Returns -1 to go on, else the exit code. */
static int parse_args(cli *c, int argc, char **argv)
{
    bool help = false, opts_done = false;
    int i;

    for (i = 1; i < argc; i++) {
        char *a = argv[i], *val = NULL, *eq;
        const char *name;

        if (opts_done || a[0] != '-' || a[1] != '-' || !a[2]) {
            if (!opts_done && strcmp(a, "--") == 0) {
                opts_done = true;
                continue;
            }
            if (!c->cmd) {
                if (!(c->cmd = parse_cmd(a)))
                    return usage_error(c, "unknown command '%s'", a);
            } else if (!c->model) {
                c->model = a;
            } else {
                c->args[c->nargs++] = a;
            }
            continue;
        }
        name = a + 2;
        if ((eq = strchr(a, '='))) {
            *eq = '\0';
            val = eq + 1;
        }
#define TAKE()                                                                                     \
    do {                                                                                           \
        if (!val && ++i >= argc)                                                                   \
            return usage_error(c, "option '%s' needs a value", a);                                 \
        if (!val)                                                                                  \
            val = argv[i];                                                                         \
    } while (0)
        if (strcmp(name, "help") == 0) {
            help = true;
        } else if (strcmp(name, "version") == 0) {
            printf("flushout %s\n", FO_VERSION);
            return CLI_OK;
        } else if (strcmp(name, "pretty") == 0) {
            c->pretty = true;
        } else if (strcmp(name, "sequential-ids") == 0) {
            c->sequential_ids = true;
        } else if (strcmp(name, "url") == 0) {
            TAKE();
            c->url = val;
        } else if (strcmp(name, "token") == 0) {
            TAKE();
            c->token = val;
        } else if (strcmp(name, "ca") == 0) {
            TAKE();
            c->ca = val;
        } else if (strcmp(name, "timeout") == 0) {
            TAKE();
            if (!parse_secs(val, &c->timeout_s))
                return usage_error(c, "bad --timeout '%s': seconds expected", val);
            c->has_timeout = true;
        } else if (strcmp(name, "hold") == 0) {
            TAKE();
            if (!parse_secs(val, &c->hold_s))
                return usage_error(c, "bad --hold '%s': seconds expected", val);
            c->has_hold = true;
        } else if (strcmp(name, "at") == 0 || strcmp(name, "from") == 0 ||
                   strcmp(name, "to") == 0 || strcmp(name, "count") == 0) {
            uint64_t *dst = name[0] == 'a'   ? &c->at
                            : name[0] == 'f' ? &c->from
                            : name[0] == 't' ? &c->to
                                             : &c->count;
            TAKE();
            if (!parse_u64(val, dst))
                return usage_error(c, "bad value '%s': a non-negative integer expected", val);
            *(name[0] == 'a'   ? &c->has_at
              : name[0] == 'f' ? &c->has_from
              : name[0] == 't' ? &c->has_to
                               : &c->has_count) = true;
        } else {
            return usage_error(c, "unknown option '%s'", a);
        }
#undef TAKE
    }
    if (help || !c->cmd) {
        fputs(usage_for(c->cmd), help ? stdout : stderr);
        return help ? CLI_OK : CLI_EUSAGE;
    }
    return -1;
}

/* Option combinations each command accepts. */
static int check_args(cli *c)
{
    if (!c->model)
        return usage_error(c, "%s: MODEL is missing", "usage");
    if (!fo_client_model_name_valid(c->model)) {
        fprintf(stderr,
                "flushout: bad model name '%s': use 1-200 characters of "
                "A-Z a-z 0-9 . _ : -\n",
                c->model);
        return CLI_EUSAGE;
    }
    if (c->has_at && c->cmd != CMD_GET)
        return usage_error(c, "%s: --at is for get", "usage");
    if ((c->has_from && c->cmd != CMD_HISTORY && c->cmd != CMD_AUDIT) ||
        (c->has_to && c->cmd != CMD_HISTORY))
        return usage_error(c, "%s: --from and --to are for history (--from: and audit)",
                           "usage");
    if (c->cmd == CMD_HISTORY && !c->has_from)
        return usage_error(c, "%s: history needs --from N", "usage");
    if (c->has_count && c->cmd != CMD_WATCH)
        return usage_error(c, "%s: --count is for watch", "usage");
    if (c->has_hold && c->cmd != CMD_PRESENCE)
        return usage_error(c, "%s: --hold is for presence", "usage");
    if (c->cmd == CMD_PRESENCE && c->nargs != 1)
        return usage_error(c, "%s: presence needs one JSON object after MODEL", "usage");
    if (c->nargs && c->cmd != CMD_APPLY && c->cmd != CMD_PRESENCE)
        return usage_error(c, "unexpected argument '%s'", c->args[0]);
    if (!c->has_timeout && c->cmd != CMD_WATCH && c->cmd != CMD_PRESENCE) {
        c->has_timeout = true;
        c->timeout_s = 10;
    }
    return -1;
}

int main(int argc, char **argv)
{
    static cli c; /* zeroed; lives for the whole run */
    fo_client_config cfg;
    int rc;

    /* A hub that resets the connection must not kill us on the next write (see client.h);
     * a closed stdout is noticed by cli_print instead. */
    signal(SIGPIPE, SIG_IGN);
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (argv[i][0] != '-') {
            if (strcmp(argv[i], "token") == 0)
                return cli_token_main(argc, argv); /* no hub involved: its own options */
            break;
        }
        if (strchr(argv[i], '=') == NULL && (strcmp(argv[i], "--url") == 0 ||
                                              strcmp(argv[i], "--token") == 0 ||
                                              strcmp(argv[i], "--ca") == 0 ||
                                              strcmp(argv[i], "--timeout") == 0))
            i++; /* the option's value */
    }
    c.args = calloc((size_t)argc + 1, sizeof(*c.args));
    if (!c.args)
        return CLI_EUSAGE;
    c.url = getenv("FLUSHOUT_URL");
    c.token = getenv("FLUSHOUT_TOKEN");
    if (!c.url || !*c.url)
        c.url = DEFAULT_URL;
    if (c.token && !*c.token)
        c.token = NULL;
    fo_arena_init(&c.arena, 4096);
    if ((rc = parse_args(&c, argc, argv)) >= 0 || (rc = check_args(&c)) >= 0 ||
        (rc = cli_prepare(&c)) > 0)
        goto out;
    if (c.cmd == CMD_AUDIT) {
        rc = cli_audit(&c);
        goto out;
    }

    fo_client_config_default(&cfg);
    cfg.url = c.url;
    cfg.token = c.token;
    cfg.ca_file = c.ca;
    cfg.manual_flush = true;
    cfg.ids = c.sequential_ids ? FO_IDS_SEQUENTIAL : FO_IDS_RANDOM;
    cfg.connect_timeout_ms = 5000;
    cfg.cb.on_state = cli_on_state;
    cfg.cb.on_change = cli_on_change;
    cfg.cb.on_flush = cli_on_flush;
    cfg.cb.on_presence = cli_on_presence;
    cfg.cb.on_error = cli_on_error;
    cfg.data = &c;
    uv_loop_init(&c.loop);
    if ((rc = fo_client_new(&c.loop, &cfg, &c.client)) != 0) {
        const char *why = fo_client_config_error(&cfg);
        if (rc == FO_EINVAL && why && strncmp(why, "ca_file:", 8) == 0)
            fprintf(stderr, "flushout: bad --ca '%s': %s\n", c.ca ? c.ca : getenv("FLUSHOUT_CA"),
                    why + 9);
        else if (rc == FO_EINVAL)
            fprintf(stderr, "flushout: bad --url '%s': %s\n", c.url, why);
        else
            fprintf(stderr, "flushout: cannot start the client for '%s': %s\n", c.url,
                    fo_strerror(rc));
        uv_loop_close(&c.loop);
        rc = CLI_EUSAGE;
        goto out;
    }
    uv_timer_init(&c.loop, &c.timer);
    c.timer.data = &c;
    if (c.has_timeout)
        cli_arm_timer(&c, c.timeout_s);
    uv_signal_init(&c.loop, &c.sigint);
    uv_signal_init(&c.loop, &c.sigterm);
    c.sigint.data = c.sigterm.data = &c;
    uv_signal_start(&c.sigint, on_signal, SIGINT);
    uv_signal_start(&c.sigterm, on_signal, SIGTERM);
    cli_start(&c);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    uv_loop_close(&c.loop);
    rc = c.exit_code;
out:
    for (int i = 0; i < c.ncmds; i++)
        free(c.cmds[i]);
    free(c.cmds);
    free(c.cmd_line);
    free(c.args);
    fo_arena_destroy(&c.arena);
    return rc;
}
