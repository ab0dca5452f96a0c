/* The hub's settings (hub/config.h, hub/settings.h): defaults, the config file, the
 * environment, flags and their precedence, every error with its source, --print-config read
 * back, secrets masked; and the JSON log lines (hub/log.h). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hub/config.h"
#include "hub/log.h"
#include "tests/support/hubproc.h"

#ifndef FO_HUB_BIN
#define FO_HUB_BIN ""
#endif

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/fo_config_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

/* Writes `text` to DIR/name; returns the path (static buffer per call site is enough). */
static const char *write_file(const char *name, const char *text)
{
    static char path[8][128];
    static int k;
    char *p = path[k++ % 8];
    FILE *f;

    snprintf(p, 128, "%s/%s", dir, name);
    cr_assert_not_null(f = fopen(p, "w"));
    fputs(text, f);
    fclose(f);
    return p;
}

static char err[1024];

/* Loads `text` as a config file over the defaults: 0 or -1 with `err`. */
static int load(fo_hub_config *c, const char *text)
{
    fo_hub_config_default(c);
    return fo_settings_load_file(fo_hub_config_settings(), c, write_file("t.ini", text), NULL, err,
                                 sizeof(err));
}

TestSuite(config, .init = setup, .fini = teardown);

Test(config, defaults_as_before)
{
    fo_hub_config c;

    fo_hub_config_default(&c);
    cr_assert_str_eq(c.host, "127.0.0.1");
    cr_assert_eq(c.port, 7420);
    cr_assert_str_eq(c.data_dir, "./data");
    cr_assert_str_eq(c.store, "sqlite");
    cr_assert_eq(c.history, 1000);
    cr_assert_eq(c.memory_budget, (size_t)512 << 20);
    cr_assert_eq(c.max_frame, (size_t)1 << 20);
    cr_assert_eq(c.max_queue, (size_t)4 << 20);
    cr_assert_eq(c.snapshot_every, 1000);
    cr_assert_eq(c.log_level, FO_LOG_INFO);
    cr_assert_eq(c.log_format, FO_LOG_FORMAT_TEXT);
    cr_assert_eq(c.rule_instructions, 1000000);
    cr_assert_eq(c.rule_time_ms, 10);
    cr_assert_eq(c.rule_memory, (size_t)32 << 20);
    cr_assert_not(c.sequential_ids);
    cr_assert_eq(c.static_dir[0] | c.auth_file[0] | c.allowed_origins[0] | c.interceptors[0], 0);
}

/* Every row is a flag, an environment variable and an INI key: its default's text form is
 * accepted by all three (a row added to the table gets all of them). */
Test(config, every_row_everywhere)
{
    const fo_settings *s = fo_hub_config_settings();
    char val[4096], flag[128], var[128], ini[4300];
    size_t nrows = 0;

    for (size_t i = 0; i < s->n; i++) {
        const fo_setting *r = &s->rows[i];
        fo_hub_config c;
        if (r->type == FO_SET_ACTION)
            continue;
        nrows++;
        fo_hub_config_default(&c);
        fo_settings_format(r, &c, val, sizeof(val));
        if (!val[0])
            strcpy(val, strcmp(r->name, "allowed-origins") == 0 ? "*"
                        : strcmp(r->name, "cluster") == 0       ? "nats://127.0.0.1:4222"
                                                                : "/x/y");
        snprintf(flag, sizeof(flag), "--%s", r->name);
        {
            /* --tls-cert and --tls-key go together: each row gets its partner */
            const char *partner = strcmp(r->name, "tls-cert") == 0   ? "--tls-key"
                                  : strcmp(r->name, "tls-key") == 0 ? "--tls-cert"
                                                                    : NULL;
            char *argv[] = {"hub", flag, val, (char *)partner, "/p", NULL};
            int argc = partner ? 5 : 3;
            if (r->type == FO_SET_BOOL)
                argv[2] = NULL, argc = 2;
            cr_assert_eq(fo_hub_config_parse(&c, argc, argv), 0, "%s %s", flag, val);
        }
        fo_settings_env_name(s, r, var, sizeof(var));
        cr_assert_eq(strncmp(var, "FLUSHOUT_", 9), 0);
        cr_assert_null(strchr(var, '-'), "%s", var);
        cr_assert_eq(setenv(var, val, 1), 0);
        cr_assert_eq(fo_settings_load_env(s, &c, NULL, err, sizeof(err)), 0, "%s: %s", var, err);
        cr_assert_eq(unsetenv(var), 0);
        snprintf(ini, sizeof(ini), "%s = %s\n", r->name, val);
        cr_assert_eq(load(&c, ini), 0, "%s", err);
    }
    cr_assert_geq(nrows, 21);
}

Test(config, file_values)
{
    fo_hub_config c;

    cr_assert_eq(load(&c, "; a comment\n"
                          "# another\n"
                          "\n"
                          "listen = [::1]:9000\n"
                          "store=memory\n"
                          "memory-budget = 64M\n"
                          "sequential-ids = yes\n"
                          "log-level = DEBUG\n"
                          "log-format = json\n"
                          "static = /srv/my app  ; inline comment\n"
                          "allowed-origins = https://a.example,\n"
                          "   https://b.example:8443\n"
                          "rule-instructions = 5000000000\n"),
                 0, "%s", err);
    cr_assert_str_eq(c.host, "::1");
    cr_assert_eq(c.port, 9000);
    cr_assert_str_eq(c.store, "memory");
    cr_assert_eq(c.memory_budget, (size_t)64 << 20);
    cr_assert(c.sequential_ids);
    cr_assert_eq(c.log_level, FO_LOG_DEBUG);
    cr_assert_eq(c.log_format, FO_LOG_FORMAT_JSON);
    cr_assert_str_eq(c.static_dir, "/srv/my app");
    cr_assert_str_eq(c.allowed_origins, "https://a.example,https://b.example:8443");
    cr_assert_eq(c.rule_instructions, 5000000000ull);
    /* Untouched keys keep their defaults. */
    cr_assert_eq(c.history, 1000);
    cr_assert_str_eq(c.data_dir, "./data");
}

static void file_error(const char *text, const char *want)
{
    fo_hub_config c;
    char tail[300];

    cr_assert_eq(load(&c, text), -1, "accepted: %s", text);
    snprintf(tail, sizeof(tail), "%s/t.ini:%s", dir, want);
    cr_assert(strstr(err, tail) && strncmp(err, "flushout-hub: ", 14) == 0,
              "for %s\n got  %s\n want ...%s", text, err, tail);
}

Test(config, file_errors_name_the_line)
{
    char longline[400];

    file_error("history = 5\nhistroy = 6\n", "2: unknown setting 'histroy' (see --help)");
    file_error("\n\nhistory = many\n", "3: bad value for history: 'many' (see --help)");
    file_error("history = -1\n", "1: bad value for history: '-1' (see --help)");
    file_error("max-frame = 10\n", "1: bad value for max-frame: '10' (see --help)");
    file_error("store = disk\n", "1: bad value for store: 'disk' (see --help)");
    file_error("data =\n", "1: bad value for data: '' (see --help)");
    file_error("sequential-ids = maybe\n", "1: bad value for sequential-ids: 'maybe'");
    file_error("log-format = xml\n", "1: bad value for log-format: 'xml'");
    file_error("listen = 7420\n", "1: bad value for listen: '7420'");
    file_error("allowed-origins = ftp://x\n", "1: bad value for allowed-origins: 'ftp://x' is "
                                              "not an origin");
    file_error("history = 1\nstore = memory\nhistory = 2\n",
               "3: 'history' is set twice (first on line 1)");
    file_error("[hub]\nhistory = 1\n", "2: section [hub]: settings go at the top level");
    file_error("history = 1\njust words\n", "2: not a `key = value` line");
    file_error("config = other.ini\n", "1: unknown setting 'config'");
    file_error("help = 1\n", "1: unknown setting 'help'");
    /* A value continued on the next line is checked whole, at its first line. */
    file_error("store = memory\nallowed-origins = https://a.example,\n  nope\n",
               "2: bad value for allowed-origins");
    memset(longline, 'x', sizeof(longline));
    memcpy(longline, "static = /", 10);
    strcpy(longline + 250, "\n");
    file_error(longline, "1: line longer than 199 bytes (continue on indented lines)");
}

Test(config, unreadable_file)
{
    fo_hub_config c;
    char path[128];

    fo_hub_config_default(&c);
    snprintf(path, sizeof(path), "%s/missing.ini", dir);
    cr_assert_eq(fo_settings_load_file(fo_hub_config_settings(), &c, path, NULL, err, sizeof(err)),
                 -1);
    cr_assert(strstr(err, "cannot read the config file") && strstr(err, path) &&
                  strstr(err, "No such file"),
              "%s", err);
    cr_assert_eq(fo_settings_load_file(fo_hub_config_settings(), &c, dir, NULL, err, sizeof(err)),
                 -1, "a directory was read");
    cr_assert(strstr(err, dir), "%s", err);
    {
        char *argv[] = {"hub", "--config", path, NULL};
        cr_assert_eq(fo_hub_config_parse(&c, 3, argv), -1);
    }
}

Test(config, env_errors_name_the_variable)
{
    const fo_settings *s = fo_hub_config_settings();
    fo_hub_config c;

    fo_hub_config_default(&c);
    cr_assert_eq(setenv("FLUSHOUT_MAX_QUEUE", "lots", 1), 0);
    cr_assert_eq(fo_settings_load_env(s, &c, NULL, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "flushout-hub: bad value for FLUSHOUT_MAX_QUEUE: 'lots' (see --help)");
    {
        char *argv[] = {"hub", NULL};
        cr_assert_eq(fo_hub_config_parse(&c, 1, argv), -1);
    }
    /* Empty means unset. */
    cr_assert_eq(setenv("FLUSHOUT_MAX_QUEUE", "", 1), 0);
    cr_assert_eq(fo_settings_load_env(s, &c, NULL, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(c.max_queue, (size_t)4 << 20);
    unsetenv("FLUSHOUT_MAX_QUEUE");
}

/* flags > environment > file > defaults, each setting on its own. */
Test(config, precedence)
{
    const char *file = write_file("p.ini", "history = 10\n"
                                           "snapshot-every = 11\n"
                                           "max-frame = 12K\n"
                                           "store = memory\n");
    char *argv[] = {"hub", "--config", (char *)file, "--history", "30", NULL};
    fo_hub_config c;

    cr_assert_eq(setenv("FLUSHOUT_HISTORY", "20", 1), 0);
    cr_assert_eq(setenv("FLUSHOUT_SNAPSHOT_EVERY", "21", 1), 0);
    fo_hub_config_default(&c);
    cr_assert_eq(fo_hub_config_parse(&c, 5, argv), 0);
    cr_assert_eq(c.history, 30);                 /* flag over environment over file */
    cr_assert_eq(c.snapshot_every, 21);          /* environment over file */
    cr_assert_eq(c.max_frame, (size_t)12 << 10); /* file over default */
    cr_assert_str_eq(c.store, "memory");
    cr_assert_eq(c.max_queue, (size_t)4 << 20); /* default */
    /* The file may also come from FLUSHOUT_CONFIG. */
    cr_assert_eq(setenv("FLUSHOUT_CONFIG", file, 1), 0);
    {
        char *argv2[] = {"hub", NULL};
        fo_hub_config_default(&c);
        cr_assert_eq(fo_hub_config_parse(&c, 1, argv2), 0);
        cr_assert_eq(c.max_frame, (size_t)12 << 10);
        cr_assert_eq(c.history, 20);
    }
    unsetenv("FLUSHOUT_CONFIG");
    unsetenv("FLUSHOUT_HISTORY");
    unsetenv("FLUSHOUT_SNAPSHOT_EVERY");
}

/* Flags keep their old checks. */
Test(config, flags_as_before)
{
    static const char *const bad[][2] = {
        {"--listen", "nohost"},
        {"--listen", ":7420"},
        {"--listen", "h:70000"},
        {"--store", "disk"},
        {"--history", "-1"},
        {"--snapshot-every", "0"},
        {"--max-frame", "1000"},
        {"--max-queue", "4095"},
        {"--rule-instructions", "999"},
        {"--rule-time-ms", "0"},
        {"--rule-memory", "1000K"},
        {"--log-level", "loud"},
        {"--allowed-origins", "ftp://x"},
        {"--static", ""},
        {"--data", ""},
    };
    fo_hub_config c;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *argv[] = {"hub", (char *)bad[i][0], (char *)bad[i][1], NULL};
        fo_hub_config_default(&c);
        cr_assert_eq(fo_hub_config_parse(&c, 3, argv), -1, "%s %s", bad[i][0], bad[i][1]);
    }
    {
        char *argv[] = {"hub",         "--log-level", "warning", "--listen",
                        "localhost:0", "--max-q",     "8M",      NULL};
        fo_hub_config_default(&c);
        cr_assert_eq(fo_hub_config_parse(&c, 7, argv), 0);
        cr_assert_eq(c.log_level, FO_LOG_WARN);
        cr_assert_str_eq(c.host, "localhost");
        cr_assert_eq(c.port, 0);
        cr_assert_eq(c.max_queue, (size_t)8 << 20); /* getopt's unambiguous prefixes */
    }
    {
        char *argv[] = {"hub", "--nope", NULL};
        char *argv2[] = {"hub", "stray", NULL};
        cr_assert_eq(fo_hub_config_parse(&c, 2, argv), -1);
        cr_assert_eq(fo_hub_config_parse(&c, 2, argv2), -1);
    }
}

/* fo_settings_print's output, read back, gives the same settings: every row changed from its
 * default, a value longer than a line, spaces in a path. */
Test(config, print_reads_back)
{
    const fo_settings *s = fo_hub_config_settings();
    char origins[1500] = "", path[128], a[4096], b[4096];
    fo_hub_config c, back;
    FILE *f;

    for (int i = 0; i < 30; i++)
        snprintf(origins + strlen(origins), sizeof(origins) - strlen(origins),
                 "%shttps://h%d.example.com:%d", i ? "," : "", i, 8000 + i);
    {
        char *argv[] = {"hub",
                        "--listen",
                        "[::1]:0",
                        "--data",
                        "/var/lib/my data",
                        "--store",
                        "memory",
                        "--history",
                        "7",
                        "--snapshot-every",
                        "9",
                        "--memory-budget",
                        "1G",
                        "--max-frame",
                        "65537",
                        "--max-queue",
                        "8K",
                        "--static",
                        "/s",
                        "--console-dir",
                        "/c",
                        "--auth",
                        "/a",
                        "--jwt-secret-file",
                        "/j",
                        "--jwt-public-key",
                        "/k",
                        "--interceptors",
                        "/r.lua",
                        "--rule-instructions",
                        "2000",
                        "--rule-time-ms",
                        "3",
                        "--rule-memory",
                        "2M",
                        "--allowed-origins",
                        origins,
                        "--sequential-ids",
                        "--log-level",
                        "error",
                        "--log-format",
                        "json",
                        "--max-connections",
                        "77",
                        "--max-subs",
                        "5",
                        "--flush-rate",
                        "0",
                        "--bytes-rate",
                        "2K",
                        "--conn-rate",
                        "3",
                        "--idle-timeout-ms",
                        "150",
                        "--max-presence",
                        "512",
                        "--presence-rate",
                        "4",
                        "--overload-lag-ms",
                        "0",
                        "--cluster",
                        "nats://127.0.0.1:4222,nats://127.0.0.1:4223",
                        "--optimistic",
                        "--io-uring=false",
                        "--tls-cert",
                        "/cert.pem",
                        "--tls-key",
                        "/key.pem",
                        NULL};
        fo_hub_config_default(&c);
        cr_assert_eq(fo_hub_config_parse(&c, (int)(sizeof(argv) / sizeof(argv[0])) - 1, argv), 0);
    }
    snprintf(path, sizeof(path), "%s/printed.ini", dir);
    cr_assert_not_null(f = fopen(path, "w"));
    fo_settings_print(s, &c, NULL, NULL, f);
    fclose(f);
    fo_hub_config_default(&back);
    cr_assert_eq(fo_settings_load_file(s, &back, path, NULL, err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < s->n; i++) {
        fo_hub_config def;
        if (s->rows[i].type == FO_SET_ACTION)
            continue;
        fo_hub_config_default(&def);
        fo_settings_format(&s->rows[i], &c, a, sizeof(a));
        fo_settings_format(&s->rows[i], &back, b, sizeof(b));
        cr_assert_str_eq(a, b, "%s", s->rows[i].name);
        fo_settings_format(&s->rows[i], &def, b, sizeof(b));
        cr_assert_str_neq(a, b, "%s is still its default: the test does not cover it",
                          s->rows[i].name);
    }
    cr_assert_str_eq(back.allowed_origins, origins);
    cr_assert_eq(back.max_frame, 65537);
    cr_assert_str_eq(back.data_dir, "/var/lib/my data");
}

/* A secret (none of the hub's settings is one yet: a TLS key passphrase will be) is masked. */
typedef struct demo {
    char passphrase[64];
    char key_file[64];
} demo;

Test(config, secrets_masked)
{
    static const fo_setting rows[] = {
        {.name = "key-file",
         .type = FO_SET_STRING,
         FO_SETTING_FIELD(demo, key_file),
         .arg = "F",
         .help = "h"},
        {.name = "key-passphrase",
         .type = FO_SET_STRING,
         FO_SETTING_FIELD(demo, passphrase),
         .arg = "P",
         .flags = FO_SET_SECRET,
         .help = "h"},
    };
    const fo_settings s = {rows, 2, "demo", "DEMO_"};
    fo_setting_source src[2] = {FO_SRC_FILE, FO_SRC_ENV};
    char *out = NULL;
    size_t len = 0;
    FILE *f;
    demo d;

    cr_assert_eq(fo_settings_default(&s, &d), 0);
    strcpy(d.key_file, "/etc/hub/key.pem");
    strcpy(d.passphrase, "hunter2-very-secret");
    cr_assert_not_null(f = open_memstream(&out, &len));
    fo_settings_print(&s, &d, src, "demo.ini", f);
    fclose(f);
    cr_assert_null(strstr(out, "hunter2"), "%s", out);
    cr_assert_not_null(strstr(out, "key-passphrase = " FO_SETTINGS_MASK "\n"), "%s", out);
    cr_assert_not_null(strstr(out, "key-file = /etc/hub/key.pem\n"), "%s", out);
    cr_assert_not_null(strstr(out, "# from demo.ini\nkey-file"), "%s", out);
    cr_assert_not_null(strstr(out, "# from the environment: DEMO_KEY_PASSPHRASE\n"), "%s", out);
    free(out);
    /* A bad secret is not quoted in the error either. */
    cr_assert_eq(fo_settings_set(&s, &rows[1], &d,
                                 "hunter2-but-far-too-long-for-the-sixty-four-"
                                 "bytes-of-this-field-xxxxxxxxxxxxxxxxxx",
                                 "DEMO_KEY_PASSPHRASE", err, sizeof(err)),
                 -1);
    cr_assert_str_eq(err, "demo: bad value for DEMO_KEY_PASSPHRASE (a secret, not shown; see "
                          "--help)");
}

/* --log-format json: one object per line, escaped by jansson, fields taken out. */
Test(config, json_log_lines)
{
    const char *t = "2026-12-02T12:00:00.123Z";
    char line[4096];
    json_error_t je;
    json_t *j;
    size_t n;

    n = fo_log_format_line(line, sizeof(line), FO_LOG_FORMAT_JSON, FO_LOG_WARN, t,
                           "model=todo sid=12 said \"hi\"\n\tand \x01 left");
    cr_assert_eq(line[n - 1], '\n');
    cr_assert_null(memchr(line, '\n', n - 1), "one line: %s", line);
    cr_assert_not_null(j = json_loads(line, 0, &je), "%s: %s", je.text, line);
    cr_assert_str_eq(json_string_value(json_object_get(j, "time")), t);
    cr_assert_str_eq(json_string_value(json_object_get(j, "level")), "warn");
    cr_assert_str_eq(json_string_value(json_object_get(j, "model")), "todo");
    cr_assert_str_eq(json_string_value(json_object_get(j, "sid")), "12");
    cr_assert_str_eq(json_string_value(json_object_get(j, "message")),
                     "said \"hi\"\n\tand \x01 left");
    cr_assert_eq(strncmp(line, "{\"time\":", 8), 0, "%s", line);
    json_decref(j);
    /* Not UTF-8: still valid JSON. A key=value alone is the message, not a field. */
    fo_log_format_line(line, sizeof(line), FO_LOG_FORMAT_JSON, FO_LOG_ERROR, t,
                       "bad \xff\xfe byte");
    cr_assert_not_null(j = json_loads(line, 0, &je), "%s: %s", je.text, line);
    cr_assert_str_eq(json_string_value(json_object_get(j, "message")), "bad ?? byte");
    json_decref(j);
    fo_log_format_line(line, sizeof(line), FO_LOG_FORMAT_JSON, FO_LOG_INFO, t, "a=b");
    cr_assert_not_null(j = json_loads(line, 0, &je), "%s", line);
    cr_assert_str_eq(json_string_value(json_object_get(j, "message")), "a=b");
    cr_assert_eq(json_object_size(j), 3);
    json_decref(j);
    /* text: unchanged. */
    fo_log_format_line(line, sizeof(line), FO_LOG_FORMAT_TEXT, FO_LOG_INFO, t, "model=x loaded\n");
    cr_assert_str_eq(line, "2026-12-02T12:00:00.123Z INFO model=x loaded\n");
}

/* The real hub with --log-format json and FLUSHOUT_HISTORY=77: every line it logs is one JSON
 * object, and its listening line shows the history from the environment. */
Test(config, hub_logs_json)
{
    const char *args[] = {"--log-format", "json", NULL};
    const char *env[] = {"FLUSHOUT_HISTORY=77", NULL};
    fo_hubproc_options o = {.bin = FO_HUB_BIN, .args = args, .env = env};
    fo_hubproc *h = fo_hubproc_new(&o);
    char line[8192];
    int lines = 0, listening = 0, st;
    FILE *f;

    cr_assert_not_null(h);
    cr_assert_eq(fo_hubproc_start(h), 0, "%s", fo_hubproc_error(h));
    cr_assert_eq(fo_hubproc_stop(h, 0, &st), 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the hub ended with status %d", st);
    cr_assert_not_null(f = fopen(fo_hubproc_log_path(h), "r"));
    while (fgets(line, sizeof(line), f)) {
        json_error_t je;
        json_t *j;
        const char *msg, *level;
        if (strncmp(line, "==== hubproc:", 13) == 0)
            continue; /* the test support's own marks */
        j = json_loads(line, 0, &je);
        cr_assert_not_null(j, "not JSON (%s): %s", je.text, line);
        msg = json_string_value(json_object_get(j, "message"));
        level = json_string_value(json_object_get(j, "level"));
        cr_assert(msg && level && json_string_value(json_object_get(j, "time")), "%s", line);
        if (strncmp(msg, "listening on 127.0.0.1:", 23) == 0) {
            cr_assert_str_eq(level, "info");
            cr_assert_not_null(strstr(msg, "history 77"), "%s", msg);
            listening++;
        }
        lines++;
        json_decref(j);
    }
    fclose(f);
    cr_assert_eq(listening, 1);
    cr_assert_gt(lines, 2);
    fo_hubproc_free(h);
}
