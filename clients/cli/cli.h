/* cli.h - the `flushout` command line program: what main.c (options, the loop, exit
 * codes) and cmds.c (the subcommands) share. */
#ifndef FO_CLI_H
#define FO_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "clients/c/client.h"
#include "proto/buf.h"

/* Exit codes (documented in --help). */
enum {
    CLI_OK = 0,
    CLI_EHUB = 1,         /* the hub answered with an error, or a command failed */
    CLI_EUSAGE = 2,       /* usage, bad JSON, bad model name */
    CLI_EUNREACHABLE = 3, /* hub unreachable, or the connection was lost */
    CLI_ETIMEOUT = 4,     /* --timeout passed */
    CLI_EINTR = 130,      /* SIGINT/SIGTERM during get, history or apply */
};

typedef enum cli_cmd {
    CMD_GET = 1,
    CMD_WATCH,
    CMD_APPLY,
    CMD_HISTORY,
    CMD_PRESENCE,
    CMD_AUDIT,
} cli_cmd;

typedef struct cli {
    cli_cmd cmd;
    /* options */
    const char *url, *token, *model;
    const char *ca; /* --ca FILE; NULL: the library reads $FLUSHOUT_CA */
    double timeout_s; /* < 0: none */
    bool has_timeout;
    bool pretty, sequential_ids;
    bool has_at, has_from, has_to, has_count, has_hold;
    uint64_t at, from, to, count;
    double hold_s;
    char **args; /* positional arguments after MODEL */
    int nargs;
    /* apply: commands parsed before connecting */
    char **cmds;   /* JSON texts */
    int *cmd_line; /* their line (stdin) or argument number */
    int ncmds;
    bool from_stdin;
    /* run time */
    uv_loop_t loop;
    uv_timer_t timer;
    uv_signal_t sigint, sigterm;
    fo_client *client;
    fo_client_model *m;
    bool opened, done, applied;
    uint64_t events;
    int exit_code;
    fo_value presence; /* CMD_PRESENCE: the state to set */
    fo_arena arena;
} cli;

/* main.c */
void cli_finish(cli *c, int code);
void cli_fail(cli *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* (Re)starts the run's timer: cli_on_timeout after `secs`. */
void cli_arm_timer(cli *c, double secs);
/* Writes one JSON line (the buffer's text) to stdout and flushes it. */
void cli_print(cli *c, fo_buf *b);

/* audit.c: the whole `audit` command (plain HTTP, no WebSocket); returns the exit code. */
int cli_audit(cli *c);

/* cmds.c: parse-time checks (before connecting; return an exit code or 0) and the
 * callbacks that drive each command. */
int cli_prepare(cli *c);
void cli_start(cli *c);
void cli_on_state(fo_client *cl, fo_client_state s, const char *why, void *data);
void cli_on_change(fo_client_model *m, fo_client_change why, const fo_batch *diff, void *data);
void cli_on_flush(fo_client_model *m, const fo_client_flush_info *info, void *data);
void cli_on_presence(fo_client_model *m, const char *session, const fo_value *state, void *data);
void cli_on_error(fo_client *cl, const fo_client_error *e, void *data);
void cli_on_timeout(cli *c);

/* token.c: `flushout token ...` (argv as main's); returns the exit code. */
int cli_token_main(int argc, char **argv);

#endif
