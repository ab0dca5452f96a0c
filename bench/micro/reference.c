#include "reference.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Single-quotes `s` for sh. -1 when it does not fit. */
static int shell_quote(char *dst, size_t cap, const char *s)
{
    size_t n = 0;

    if (cap < 3)
        return -1;
    dst[n++] = '\'';
    for (; *s; s++) {
        const char *piece = *s == '\'' ? "'\\''" : NULL;
        size_t len = piece ? 4 : 1;
        if (n + len + 2 > cap)
            return -1;
        memcpy(dst + n, piece ? piece : s, len);
        n += len;
    }
    dst[n++] = '\'';
    dst[n] = '\0';
    return 0;
}

/* The number after `"key":` in a flat JSON object, or -1. */
static double json_number(const char *js, const char *key)
{
    char pat[64];
    const char *p;

    snprintf(pat, sizeof(pat), "\"%s\"", key);
    if (!(p = strstr(js, pat)))
        return -1;
    p += strlen(pat);
    while (*p == ' ' || *p == ':')
        p++;
    return strtod(p, NULL);
}

static void json_string(const char *js, const char *key, char *out, size_t cap)
{
    char pat[64];
    const char *p, *q;

    out[0] = '\0';
    snprintf(pat, sizeof(pat), "\"%s\"", key);
    if (!(p = strstr(js, pat)))
        return;
    p = strchr(p + strlen(pat), '"');
    if (!p || !(q = strchr(p + 1, '"')) || (size_t)(q - p - 1) >= cap)
        return;
    memcpy(out, p + 1, (size_t)(q - p - 1));
    out[q - p - 1] = '\0';
}

void fo_bench_ref_run(const fo_bench_ref_args *a, fo_bench_ref_result *r)
{
    char dir[1024], qdir[2100], qscript[2100], cmd[4600], out[8192];
    const char *slash = strrchr(a->script, '/');
    size_t n = 0, got;
    FILE *p;
    int status;

    memset(r, 0, sizeof(*r));
    if (access(a->script, R_OK) != 0) {
        snprintf(r->note, sizeof(r->note), "script not found: %.120s", a->script);
        return;
    }
    if (system("command -v node >/dev/null 2>&1") != 0) {
        snprintf(r->note, sizeof(r->note), "node is not installed");
        return;
    }
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - a->script) : 1,
             slash ? a->script : ".");
    if (shell_quote(qdir, sizeof(qdir), dir) || shell_quote(qscript, sizeof(qscript), a->script)) {
        snprintf(r->note, sizeof(r->note), "script path too long");
        return;
    }
    snprintf(cmd, sizeof(cmd), "%s/node_modules/flushout/package.json", dir);
    if (access(cmd, R_OK) != 0) {
        fprintf(stderr, "node: installing the reference (npm ci in %s)\n", dir);
        snprintf(cmd, sizeof(cmd), "cd %s && npm ci --no-audit --no-fund --loglevel=error >&2",
                 qdir);
        if (system(cmd) != 0) {
            snprintf(r->note, sizeof(r->note), "npm ci failed in %.120s", dir);
            return;
        }
    }
    fflush(stderr);
    snprintf(cmd, sizeof(cmd),
             "node %s --items %u --batches %u --reps %u --seed %u --min-ms %u --cpu-time %d",
             qscript, a->items, a->batches, a->reps, a->seed, a->min_ms, a->cpu_time ? 1 : 0);
    if (!(p = popen(cmd, "r"))) {
        snprintf(r->note, sizeof(r->note), "popen: %.100s", strerror(errno));
        return;
    }
    while (n < sizeof(out) - 1 && (got = fread(out + n, 1, sizeof(out) - 1 - n, p)) > 0)
        n += got;
    out[n] = '\0';
    status = pclose(p);
    r->median = json_number(out, "commands_per_sec");
    r->min = json_number(out, "min");
    r->max = json_number(out, "max");
    json_string(out, "node", r->node, sizeof(r->node));
    if (status != 0 || r->median <= 0) {
        snprintf(r->note, sizeof(r->note), "reference run failed (status %d)", status);
        return;
    }
    if (json_number(out, "errors") != 0 || json_number(out, "syncs") != 0)
        snprintf(r->note, sizeof(r->note), "reference reported errors or syncs");
    r->ok = 1;
}
