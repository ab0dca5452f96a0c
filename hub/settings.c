#include "hub/settings.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FIELD(target, r) ((char *)(target) + (r)->offset)
#define HELP_COLUMN 25

long long fo_parse_size(const char *s)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return -1;
    switch (*end) {
    case 'k':
    case 'K': v <<= 10, end++; break;
    case 'm':
    case 'M': v <<= 20, end++; break;
    case 'g':
    case 'G': v <<= 30, end++; break;
    default: break;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    return *end ? -1 : v;
}

const fo_setting *fo_settings_find(const fo_settings *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->rows[i].name, name) == 0)
            return &s->rows[i];
    return NULL;
}

static int parse_uint(const char *v, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long n;

    errno = 0;
    n = strtoull(v, &end, 10);
    if (errno || *end || end == v || !isdigit((unsigned char)v[0]) || n > max)
        return -1;
    *out = n;
    return 0;
}

static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return *out = true, 0;
        if (strcasecmp(v, no[i]) == 0)
            return *out = false, 0;
    }
    return -1;
}

static int choice(const fo_setting *r, const char *v)
{
    for (int i = 0; r->choices && r->choices[i]; i++)
        if (strcasecmp(r->choices[i], v) == 0)
            return i;
    return -1;
}

/* Parses by type; -1 when the value is bad (the caller words the message). */
static int set_typed(const fo_setting *r, void *target, const char *v)
{
    char *f = FIELD(target, r);
    uint64_t n;
    long long sz;
    int i;

    switch (r->type) {
    case FO_SET_STRING:
        if (strlen(v) >= r->size || (!*v && (r->flags & FO_SET_NONEMPTY)))
            return -1;
        if (r->choices && *v && (i = choice(r, v)) >= 0)
            v = r->choices[i];
        else if (r->choices && *v)
            return -1;
        memcpy(f, v, strlen(v) + 1);
        return 0;
    case FO_SET_UINT:
        if (parse_uint(v, r->size == sizeof(uint32_t) ? UINT32_MAX : UINT64_MAX, &n) || n < r->min)
            return -1;
        if (r->size == sizeof(uint32_t))
            *(uint32_t *)(void *)f = (uint32_t)n;
        else
            *(uint64_t *)(void *)f = n;
        return 0;
    case FO_SET_SIZE:
        if ((sz = fo_parse_size(v)) < 0 || (uint64_t)sz < r->min)
            return -1;
        *(size_t *)(void *)f = (size_t)sz;
        return 0;
    case FO_SET_BOOL: return parse_bool(v, (bool *)(void *)f);
    case FO_SET_ENUM:
        if ((i = choice(r, v)) < 0)
            return -1;
        *(int *)(void *)f = i;
        return 0;
    case FO_SET_ACTION: break;
    }
    return -1;
}

int fo_settings_set(const fo_settings *s, const fo_setting *r, void *target, const char *value,
                    const char *label, char *err, size_t err_len)
{
    char why[512] = "";
    int rc;

    rc = r->parse ? r->parse(target, value, why, sizeof(why)) : set_typed(r, target, value);
    if (rc == 0)
        return 0;
    if (r->flags & FO_SET_SECRET) /* not even in an error message */
        snprintf(err, err_len, "%s: bad value for %s (a secret, not shown; see --help)", s->prog,
                 label);
    else if (why[0])
        snprintf(err, err_len, "%s: bad value for %s: %s", s->prog, label, why);
    else
        snprintf(err, err_len, "%s: bad value for %s: '%s' (see --help)", s->prog, label, value);
    return -1;
}

int fo_settings_default(const fo_settings *s, void *target)
{
    char err[600];

    for (size_t i = 0; i < s->n; i++) {
        const fo_setting *r = &s->rows[i];
        if (r->type == FO_SET_ACTION)
            continue;
        memset(FIELD(target, r), 0, r->size);
        if (r->def && fo_settings_set(s, r, target, r->def, r->name, err, sizeof(err))) {
            fprintf(stderr, "%s (a default)\n", err);
            return -1;
        }
    }
    return 0;
}

/* ---- the INI file ---------------------------------------------------------------------- */

typedef struct ini_ctx {
    const fo_settings *s;
    void *target;
    const char *path;
    fo_setting_source *src;
    FILE *f;
    int line;                  /* the line the reader handed out last */
    bool indented;             /* that line starts with a blank: a continuation for inih */
    int *seen;                 /* per row: the line that set it, 0 if none */
    const fo_setting *pending; /* the key being read: applied when its value is complete */
    int pending_line;
    char value[FO_SETTINGS_MAX_VALUE];
    char *err;
    size_t err_len;
    bool failed;
} ini_ctx;

static void ini_fail(ini_ctx *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void ini_fail(ini_ctx *c, int line, const char *fmt, ...)
{
    char msg[700];
    va_list ap;

    if (c->failed)
        return; /* the first error is the one reported */
    c->failed = true;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(c->err, c->err_len, "%s: %s:%d: %s", c->s->prog, c->path, line, msg);
}

/* inih's reader (an fgets): counts lines, so the handler knows its line number, and refuses
 * lines longer than inih's buffer instead of letting inih split them into two. */
static char *read_line(char *str, int num, void *stream)
{
    ini_ctx *c = stream;
    size_t len;

    if (!fgets(str, num, c->f))
        return NULL;
    c->line++;
    c->indented = str[0] == ' ' || str[0] == '\t';
    len = strlen(str);
    if (len == (size_t)num - 1 && str[len - 1] != '\n') {
        int ch = fgetc(c->f);
        if (ch == EOF || ch == '\n')
            return str; /* exactly num - 1 bytes: it fits */
        ini_fail(c, c->line, "line longer than %d bytes (continue on indented lines)", num - 1);
        while ((ch = fgetc(c->f)) != EOF && ch != '\n')
            ;
        str[0] = '\0'; /* an empty line for inih: nothing set from it */
    }
    return str;
}

/* Sets the key read last, now that its value is complete. */
static void apply_pending(ini_ctx *c)
{
    const fo_setting *r = c->pending;
    char err[700];

    c->pending = NULL;
    if (!r || c->failed)
        return;
    if (fo_settings_set(c->s, r, c->target, c->value, r->name, err, sizeof(err))) {
        /* "PROG: bad value for NAME: ..." -> "PROG: FILE:LINE: bad value for NAME: ..." */
        ini_fail(c, c->pending_line, "%s", err + strlen(c->s->prog) + 2);
        return;
    }
    if (c->src)
        c->src[r - c->s->rows] = FO_SRC_FILE;
}

static int on_pair(void *user, const char *section, const char *name, const char *value)
{
    ini_ctx *c = user;
    const fo_setting *r = fo_settings_find(c->s, name);
    size_t i, len = strlen(c->value);

    if (c->failed)
        return 1;
    if (c->indented && c->pending && c->pending == r) { /* inih's continuation line */
        if (len + strlen(value) >= sizeof(c->value)) {
            ini_fail(c, c->pending_line, "the value of '%s' is too long", name);
            return 0;
        }
        memcpy(c->value + len, value, strlen(value) + 1);
        return 1;
    }
    apply_pending(c);
    if (section[0]) {
        ini_fail(c, c->line, "section [%s]: settings go at the top level, without sections",
                 section);
        return 0;
    }
    if (!r || r->type == FO_SET_ACTION) {
        ini_fail(c, c->line, "unknown setting '%s' (see --help)", name);
        return 0;
    }
    i = (size_t)(r - c->s->rows);
    if (c->seen[i]) {
        ini_fail(c, c->line, "'%s' is set twice (first on line %d)", name, c->seen[i]);
        return 0;
    }
    c->seen[i] = c->line;
    c->pending = r;
    c->pending_line = c->line;
    snprintf(c->value, sizeof(c->value), "%s", value);
    return 1;
}

int fo_settings_load_file(const fo_settings *s, void *target, const char *path,
                          fo_setting_source *src, char *err, size_t err_len)
{
    ini_ctx *c = calloc(1, sizeof(*c));
    int rc;

    if (!c || !(c->seen = calloc(s->n, sizeof(*c->seen)))) {
        free(c);
        snprintf(err, err_len, "%s: out of memory", s->prog);
        return -1;
    }
    *c = (ini_ctx){.s = s,
                   .target = target,
                   .path = path,
                   .src = src,
                   .seen = c->seen,
                   .err = err,
                   .err_len = err_len};
    if (!(c->f = fopen(path, "r"))) {
        snprintf(err, err_len, "%s: cannot read the config file %s: %s", s->prog, path,
                 strerror(errno));
        free(c->seen);
        free(c);
        return -1;
    }
    rc = ini_parse_stream(read_line, c, on_pair, c);
    if (rc > 0)
        /* inih's own error: a line that is neither `key = value`, a [section] nor a comment. */
        ini_fail(c, rc, "not a `key = value` line");
    else if (ferror(c->f) && !c->failed) {
        snprintf(err, err_len, "%s: cannot read the config file %s: %s", s->prog, path,
                 strerror(errno));
        c->failed = true;
    } else
        apply_pending(c);
    rc = c->failed ? -1 : 0;
    fclose(c->f);
    free(c->seen);
    free(c);
    return rc;
}

/* ---- the environment --------------------------------------------------------------------- */

void fo_settings_env_name(const fo_settings *s, const fo_setting *r, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "%s%s", s->env_prefix, r->name);

    for (size_t i = strlen(s->env_prefix); i < n && i < len; i++)
        buf[i] = buf[i] == '-' ? '_' : (char)toupper((unsigned char)buf[i]);
}

int fo_settings_load_env(const fo_settings *s, void *target, fo_setting_source *src, char *err,
                         size_t err_len)
{
    char var[128];
    const char *v;

    for (size_t i = 0; i < s->n; i++) {
        const fo_setting *r = &s->rows[i];
        if (r->type == FO_SET_ACTION)
            continue;
        fo_settings_env_name(s, r, var, sizeof(var));
        if (!(v = getenv(var)) || !*v)
            continue;
        if (fo_settings_set(s, r, target, v, var, err, err_len))
            return -1;
        if (src)
            src[i] = FO_SRC_ENV;
    }
    return 0;
}

/* ---- output ------------------------------------------------------------------------------ */

void fo_settings_format(const fo_setting *r, const void *target, char *buf, size_t len)
{
    const char *f = (const char *)target + r->offset;

    if (r->format) {
        r->format(target, buf, len);
        return;
    }
    switch (r->type) {
    case FO_SET_STRING: snprintf(buf, len, "%s", f); break;
    case FO_SET_UINT:
        snprintf(buf, len, "%llu",
                 r->size == sizeof(uint32_t)
                     ? (unsigned long long)*(const uint32_t *)(const void *)f
                     : (unsigned long long)*(const uint64_t *)(const void *)f);
        break;
    case FO_SET_SIZE: {
        size_t v = *(const size_t *)(const void *)f;
        if (v && v % ((size_t)1 << 30) == 0)
            snprintf(buf, len, "%zuG", v >> 30);
        else if (v && v % ((size_t)1 << 20) == 0)
            snprintf(buf, len, "%zuM", v >> 20);
        else if (v && v % 1024 == 0)
            snprintf(buf, len, "%zuK", v >> 10);
        else
            snprintf(buf, len, "%zu", v);
        break;
    }
    case FO_SET_BOOL:
        snprintf(buf, len, "%s", *(const bool *)(const void *)f ? "true" : "false");
        break;
    case FO_SET_ENUM: snprintf(buf, len, "%s", r->choices[*(const int *)(const void *)f]); break;
    case FO_SET_ACTION: buf[0] = '\0'; break;
    }
}

/* A value on lines of at most FO_SETTINGS_MAX_LINE bytes: continuation lines are indented
 * and cut between two characters that are neither blank nor a comment's start (inih drops the
 * blanks at either end of a line and reads a line starting with ; or # as a comment). */
static bool cut_here(const char *v, size_t at)
{
    return !isspace((unsigned char)v[at - 1]) && !isspace((unsigned char)v[at]) && v[at] != ';' &&
           v[at] != '#';
}

static void print_value(FILE *out, const char *v, size_t col)
{
    size_t left = strlen(v), room = FO_SETTINGS_MAX_LINE - col - 1, cut;

    if (!left) {
        fputc('\n', out);
        return;
    }
    fputc(' ', out);
    while (left > room) {
        for (cut = room; cut > room / 2; cut--) /* after a comma, for lists */
            if (v[cut - 1] == ',' && cut_here(v, cut))
                break;
        if (cut == room / 2)
            for (cut = room; cut > 1 && !cut_here(v, cut); cut--)
                ;
        if (cut <= 1)
            break; /* no place to cut: one long line, refused when read back */
        fprintf(out, "%.*s\n    ", (int)cut, v);
        v += cut, left -= cut;
        room = FO_SETTINGS_MAX_LINE - 4;
    }
    fprintf(out, "%s\n", v);
}

void fo_settings_print(const fo_settings *s, const void *target, const fo_setting_source *src,
                       const char *file, FILE *out)
{
    char val[4096], var[128];

    for (size_t i = 0; i < s->n; i++) {
        const fo_setting *r = &s->rows[i];
        fo_setting_source from = src ? src[i] : FO_SRC_DEFAULT;
        if (r->type == FO_SET_ACTION)
            continue;
        fo_settings_format(r, target, val, sizeof(val));
        switch (from) {
        case FO_SRC_DEFAULT: break;
        case FO_SRC_FILE: fprintf(out, "# from %s\n", file ? file : "the config file"); break;
        case FO_SRC_ENV:
            fo_settings_env_name(s, r, var, sizeof(var));
            fprintf(out, "# from the environment: %s\n", var);
            break;
        case FO_SRC_FLAG: fprintf(out, "# from the command line: --%s\n", r->name); break;
        }
        if ((r->flags & FO_SET_SECRET) && val[0])
            snprintf(val, sizeof(val), "%s", FO_SETTINGS_MASK);
        fprintf(out, "%s =", r->name);
        print_value(out, val, strlen(r->name) + 3);
    }
}

void fo_settings_help(const fo_settings *s, FILE *out)
{
    for (size_t i = 0; i < s->n; i++) {
        const fo_setting *r = &s->rows[i];
        const char *h = r->help, *nl;
        int col = fprintf(out, "  --%s%s%s", r->name, r->arg ? " " : "", r->arg ? r->arg : "");

        fprintf(out, "%*s", col < HELP_COLUMN ? HELP_COLUMN - col : 1, "");
        for (;;) {
            nl = strchr(h, '\n');
            fprintf(out, "%.*s\n", nl ? (int)(nl - h) : (int)strlen(h), h);
            if (!nl || !nl[1])
                break;
            h = nl + 1;
            fprintf(out, "%*s", HELP_COLUMN, "");
        }
    }
}
