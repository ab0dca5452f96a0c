/* config.h - the hub's settings: its command-line flags, its config file, its environment.
 *
 * Every setting is one row of the table in hub/config.c (the engine is hub/settings.h). A row
 * gives the setting its flag (--NAME), its INI key (NAME = VALUE in --config FILE), its
 * environment variable (FLUSHOUT_NAME, upper-cased, '-' -> '_'), its --help text and its
 * --print-config line. Precedence: flags > environment > file > defaults.
 *
 * Adding a setting: (1) a field below, (2) one row in `rows` in config.c, in the block above
 * the "actions" (type, FO_SETTING_FIELD, default as text, --help text; `min`, `choices`,
 * FO_SET_SECRET or a custom parse/format when needed). Nothing else: getopt's table, --help,
 * the environment, the file and --print-config all come from the row. */
#ifndef FO_CONFIG_H
#define FO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/settings.h"

typedef struct fo_hub_config {
    char host[256];           /* --listen HOST:PORT (default 127.0.0.1:7420) */
    int port;                 /* 0: an ephemeral port, logged at start */
    char data_dir[1024];      /* --data DIR (default ./data) */
    char store[16];           /* --store sqlite|memory (--cluster, when set, wins) */
    bool sequential_ids;      /* --sequential-ids (tests only) */
    uint32_t history;         /* --history N: commands kept per model for diffs */
    size_t memory_budget;     /* --memory-budget BYTES: hot models before LRU eviction */
    size_t max_frame;         /* --max-frame BYTES: largest inbound frame */
    size_t max_queue;         /* --max-queue BYTES: outbound backlog per connection */
    uint32_t snapshot_every;  /* --snapshot-every N commands */
    char static_dir[1024];    /* --static DIR: files served at / (demo) */
    char console_dir[1024];   /* --console-dir DIR: files served at /console/ */
    char auth_file[1024];     /* --auth FILE: tokens and rights; empty = open hub */
    char jwt_secret_file[1024]; /* --jwt-secret-file FILE: HS256/384/512 tokens */
    char jwt_public_key[1024];  /* --jwt-public-key FILE: RS256/384/512 or ES256/384/512 */
    int log_level;            /* --log-level error|warn|info|debug (fo_log_level, log.h) */
    int log_format;           /* --log-format text|json (fo_log_format, log.h) */
    char interceptors[1024];  /* --interceptors FILE.lua: server-side rules; empty = none */
    uint64_t rule_instructions; /* --rule-instructions N: Lua instructions per command */
    uint32_t rule_time_ms;    /* --rule-time-ms N: wall clock per command */
    size_t rule_memory;       /* --rule-memory SIZE: the rules' Lua state */
    char allowed_origins[2048]; /* --allowed-origins LIST (origin.h); empty: own only */
    /* limits and overload shedding (limits.h); 0 turns a rate or timeout off */
    uint32_t max_connections; /* --max-connections N: open WebSockets (503 past it) */
    uint32_t max_subs;        /* --max-subs N: subscriptions per connection */
    uint32_t flush_rate;      /* --flush-rate N: flushes/s per connection (burst 2 s) */
    size_t bytes_rate;        /* --bytes-rate SIZE: inbound bytes/s per connection */
    uint32_t conn_rate;       /* --conn-rate N: new WebSockets/s per source address (429) */
    uint32_t idle_timeout_ms; /* --idle-timeout-ms N: ping at half, close at N */
    size_t max_presence;      /* --max-presence SIZE: a presence frame's bytes */
    uint32_t presence_rate;   /* --presence-rate N: presence updates/s per connection */
    uint32_t overload_lag_ms; /* --overload-lag-ms N: loop lag past which flushes are shed */
    char cluster[2048];       /* --cluster URLS: NATS servers; set: the store is NATS */
    bool optimistic;          /* --optimistic: no forwarding to owners on --cluster */
    bool io_uring;            /* --io-uring: each turn's socket writes in one submission */
    char tls_cert[1024];      /* --tls-cert FILE: PEM chain; with tls_key, TLS on the port */
    char tls_key[1024];       /* --tls-key FILE: PEM private key */
    /* The command line the settings were parsed from (main's argv, kept for the process's
     * life): SIGHUP parses it again, with the environment and --config (reload.c). */
    int argc;
    char **argv;
} fo_hub_config;

/* The defaults: every row's default. */
void fo_hub_config_default(fo_hub_config *c);
/* Reads --config FILE (or $FLUSHOUT_CONFIG), then the FLUSHOUT_* environment, then argv, each
 * over the one before, into `c` (which holds the defaults). Returns 0; 1 when --help,
 * --version or --print-config was printed on stdout (exit 0); or -1 after printing one error
 * to stderr (exit 2): an unknown flag, a bad value (naming the flag, the variable, or the
 * file and line), an unreadable file, an unknown key. */
int fo_hub_config_parse(fo_hub_config *c, int argc, char **argv);
/* The same for a subcommand that also takes positional arguments (`replay MODEL`): they may
 * stand anywhere among the flags; getopt moves them to the end of argv and *rest is the
 * index of the first (argc when there is none). */
int fo_hub_config_parse_rest(fo_hub_config *c, int argc, char **argv, int *rest);
/* The hub's table (for tests and tools). */
const fo_settings *fo_hub_config_settings(void);
/* True when --listen names a loopback address only (127.0.0.0/8, ::1, localhost): an open
 * hub serves its console there without a token. */
bool fo_hub_config_loopback(const fo_hub_config *c);

#endif
