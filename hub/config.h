/* config.h - the hub's settings and their command-line flags (`flushout-hub --help`). */
#ifndef FO_CONFIG_H
#define FO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fo_hub_config {
    char host[256];           /* --listen HOST:PORT (default 127.0.0.1:7420) */
    int port;                 /* 0: an ephemeral port, logged at start */
    char data_dir[1024];      /* --data DIR (default ./data) */
    char store[16];           /* --store sqlite|memory */
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
    int log_level;            /* --log-level error|warn|info|debug */
    char interceptors[1024];  /* --interceptors FILE.lua: server-side rules; empty = none */
    uint64_t rule_instructions; /* --rule-instructions N: Lua instructions per command */
    uint32_t rule_time_ms;    /* --rule-time-ms N: wall clock per command */
    size_t rule_memory;       /* --rule-memory SIZE: the rules' Lua state */
    char allowed_origins[2048]; /* --allowed-origins LIST (origin.h); empty: own only */
    char tls_cert[1024];      /* --tls-cert FILE: PEM chain; with tls_key, TLS on the port */
    char tls_key[1024];       /* --tls-key FILE: PEM private key */
} fo_hub_config;

void fo_hub_config_default(fo_hub_config *c);
/* Parses argv. Returns 0, 1 when --help or --version was printed (exit 0), or -1 after
 * printing an error to stderr (exit 2). */
int fo_hub_config_parse(fo_hub_config *c, int argc, char **argv);
/* True when --listen names a loopback address only (127.0.0.0/8, ::1, localhost): an open
 * hub serves its console there without a token. */
bool fo_hub_config_loopback(const fo_hub_config *c);
/* "64M", "1G", "4096" -> bytes; -1 when malformed. */
long long fo_parse_size(const char *s);

#endif
