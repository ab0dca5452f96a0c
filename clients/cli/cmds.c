/* cmds.c - the subcommands of `flushout`: checks done before connecting, then the
 * client callbacks that drive each command to its exit code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"
#include "proto/json.h"

/* ---- before connecting --------------------------------------------------------------- */

/* "line 3, column 14" for stdin, "argument 2, column 14" for arguments. */
static void report_json(const cli *c, int where, const char *what, const fo_err_info *e)
{
    const char *kind = c->from_stdin ? "line" : "argument";

    if (e->code == FO_EINVAL)
        fprintf(stderr, "flushout: bad %s on %s %d: %s%s%s\n", what, kind, where, e->path,
                e->path[0] ? ": " : "", e->msg);
    else if (e->code == FO_ENOMEM)
        fprintf(stderr, "flushout: out of memory reading %s %d\n", kind, where);
    else
        fprintf(stderr, "flushout: bad JSON on %s %d, column %zu: %s\n", kind, where,
                e->pos ? e->pos : 1, e->msg[0] ? e->msg : "syntax error");
}

static int add_cmd(cli *c, const char *text, size_t len, int where)
{
    fo_arena a;
    fo_command cmd;
    fo_err_info e;
    int rc;

    fo_arena_init(&a, 1024);
    memset(&e, 0, sizeof(e));
    rc = fo_json_read_command(text, len, &a, &cmd, &e);
    fo_arena_destroy(&a);
    if (rc) {
        e.code = rc;
        report_json(c, where, "command", &e);
        return CLI_EUSAGE;
    }
    if (!(c->cmds[c->ncmds] = strndup(text, len)))
        return CLI_EUSAGE;
    c->cmd_line[c->ncmds++] = where;
    return 0;
}

static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 65536, n = 0, got;
    char *buf = malloc(cap + 1), *nb;

    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            if (!(nb = realloc(buf, 2 * cap + 1))) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

static int prepare_apply(cli *c)
{
    size_t len, i, start, lines = 1;
    char *in;
    int rc = 0, line = 0;

    if (c->nargs) {
        c->cmds = calloc((size_t)c->nargs, sizeof(*c->cmds));
        c->cmd_line = calloc((size_t)c->nargs, sizeof(*c->cmd_line));
        if (!c->cmds || !c->cmd_line)
            return CLI_EUSAGE;
        for (int k = 0; k < c->nargs && !rc; k++)
            rc = add_cmd(c, c->args[k], strlen(c->args[k]), k + 1);
        return rc;
    }
    c->from_stdin = true;
    if (!(in = read_all(stdin, &len))) {
        fprintf(stderr, "flushout: cannot read stdin\n");
        return CLI_EUSAGE;
    }
    for (i = 0; i < len; i++)
        lines += in[i] == '\n';
    c->cmds = calloc(lines, sizeof(*c->cmds));
    c->cmd_line = calloc(lines, sizeof(*c->cmd_line));
    for (start = 0; c->cmds && c->cmd_line && start <= len && !rc; start = i + 1) {
        size_t j;
        for (i = start; i < len && in[i] != '\n'; i++)
            ;
        line++;
        for (j = start; j < i && strchr(" \t\r", in[j]); j++)
            ;
        if (j < i)
            rc = add_cmd(c, in + start, i - start, line);
    }
    free(in);
    if (!c->cmds || !c->cmd_line)
        return CLI_EUSAGE;
    if (!rc && c->ncmds == 0) {
        fprintf(stderr, "flushout: no commands: give them as arguments or as JSON lines on "
                        "stdin (see flushout apply --help)\n");
        rc = CLI_EUSAGE;
    }
    return rc;
}

int cli_prepare(cli *c)
{
    fo_err_info e;
    int rc;

    if (c->cmd == CMD_APPLY)
        return prepare_apply(c);
    if (c->cmd == CMD_PRESENCE) {
        memset(&e, 0, sizeof(e));
        rc = fo_json_read_value(c->args[0], strlen(c->args[0]), FO_JSON_MAX_DEPTH, &c->arena,
                                &c->presence, &e);
        if (rc) {
            e.code = rc;
            report_json(c, 1, "presence", &e);
            return CLI_EUSAGE;
        }
        if (fo_value_type(&c->presence) != FO_MAP) {
            fprintf(stderr, "flushout: bad presence: a JSON object expected\n");
            return CLI_EUSAGE;
        }
    }
    return 0;
}

/* ---- output -------------------------------------------------------------------------- */

static int flags(const cli *c)
{
    return c->pretty ? FO_JSON_PRETTY : FO_JSON_COMPACT;
}

static void event_head(fo_buf *b, const char *t, const char *model)
{
    char head[300];
    int n = snprintf(head, sizeof(head), "{\"t\":\"%s\",\"model\":\"%s\",", t, model);

    fo_buf_append(b, head, (size_t)n);
}

static void print_push(cli *c, const fo_batch *diff)
{
    fo_buf b;

    fo_buf_init(&b, 0);
    event_head(&b, "push", c->model);
    fo_buf_append(&b, "\"diff\":", 7);
    fo_json_write_batch(diff, FO_JSON_COMPACT, &b);
    fo_buf_append(&b, "}", 1);
    cli_print(c, &b);
    fo_buf_destroy(&b);
}

static void print_snap(cli *c)
{
    fo_snapshot s = {fo_client_committed_count(c->m), NULL};
    fo_buf b;

    /* The committed document: the watcher applies nothing locally. */
    s.document = fo_client_document(c->m);
    fo_buf_init(&b, 0);
    event_head(&b, "snap", c->model);
    fo_buf_append(&b, "\"snapshot\":", 11);
    fo_json_write_snapshot(&s, FO_JSON_COMPACT, &b);
    fo_buf_append(&b, "}", 1);
    cli_print(c, &b);
    fo_buf_destroy(&b);
}

/* Counts an event of watch; enough of them ends the run. */
static void watch_event(cli *c)
{
    c->events++;
    if (c->has_count && c->events >= c->count)
        cli_finish(c, CLI_OK);
}

/* ---- running ------------------------------------------------------------------------- */

static void on_reply(fo_client *cl, const fo_msg *r, void *data)
{
    cli *c = data;
    fo_buf b;
    int rc;

    (void)cl;
    if (!r || c->done)
        return;
    if (r->type == FO_MSG_ERROR) {
        cli_fail(c, CLI_EHUB, "the hub answered %s: %s", fo_error_code_name(r->code),
                 r->message ? r->message : "");
        return;
    }
    fo_buf_init(&b, 0);
    rc = r->type == FO_MSG_SNAP ? fo_json_write_snapshot(&r->snapshot, flags(c), &b)
                                : fo_json_write_batch(&r->batch, flags(c), &b);
    if (rc == 0)
        cli_print(c, &b);
    fo_buf_destroy(&b);
    if (rc)
        cli_fail(c, CLI_EHUB, "cannot write the hub's answer as JSON: %s", fo_strerror(rc));
    else
        cli_finish(c, CLI_OK);
}

/* presence: the reply to a `get` sent after the presence request, so the hub has taken
 * the presence by now (one model's requests run in order). */
static void on_presence_taken(fo_client *cl, const fo_msg *r, void *data)
{
    cli *c = data;

    (void)cl;
    if (!r || c->done)
        return;
    if (r->type == FO_MSG_ERROR) {
        cli_fail(c, CLI_EHUB, "the hub answered %s: %s", fo_error_code_name(r->code),
                 r->message ? r->message : "");
        return;
    }
    if (!c->has_hold)
        return; /* until SIGINT */
    if (c->hold_s == 0)
        cli_finish(c, CLI_OK);
    else
        cli_arm_timer(c, c->hold_s);
}

void cli_start(cli *c)
{
    int rc;

    switch (c->cmd) {
    case CMD_GET: rc = fo_client_get(c->client, c->model, c->has_at, c->at, on_reply, c); break;
    case CMD_HISTORY:
        rc = fo_client_history(c->client, c->model, c->from, c->has_to, c->to, on_reply, c);
        break;
    default: rc = fo_client_subscribe(c->client, c->model, &c->m); break;
    }
    if (rc)
        cli_fail(c, CLI_EUSAGE, "cannot start: %s", fo_strerror(rc));
}

void cli_on_state(fo_client *cl, fo_client_state s, const char *why, void *data)
{
    cli *c = data;

    (void)cl;
    if (s == FO_CLIENT_OPEN)
        c->opened = true;
    if (s != FO_CLIENT_CLOSED)
        return;
    if (strncmp(why, "upgrade refused: HTTP 401", 25) == 0)
        cli_fail(c, CLI_EHUB,
                 "the hub at %s refused the connection: %s (a token is missing or "
                 "not valid: --token)",
                 c->url, why + 17);
    else if (!c->opened && strstr(why, "certificate is not trusted"))
        cli_fail(c, CLI_EUNREACHABLE, "cannot reach the hub at %s: %s (for a private CA: "
                 "--ca FILE or FLUSHOUT_CA)", c->url, why);
    else if (!c->opened)
        cli_fail(c, CLI_EUNREACHABLE, "cannot reach the hub at %s: %s", c->url, why);
    else
        cli_fail(c, CLI_EUNREACHABLE, "the connection to the hub at %s was lost: %s%s", c->url, why,
                 c->m && fo_client_model_flushing(c->m)
                     ? " (the flush was sent: it may or may not have been applied)"
                     : "");
}

static void apply_all(cli *c)
{
    fo_client_result r;
    fo_err_info e;
    int i, rc;

    c->applied = true;
    for (i = 0; i < c->ncmds; i++) {
        rc = fo_client_apply_json(c->m, c->cmds[i], strlen(c->cmds[i]), &r, &e);
        if (rc) {
            cli_fail(c, CLI_EUSAGE, "cannot apply the command on %s %d: %s",
                     c->from_stdin ? "line" : "argument", c->cmd_line[i], fo_strerror(rc));
            return;
        }
        if (!r.ok) {
            fprintf(stderr, "flushout: the command on %s %d does not apply: %s\n",
                    c->from_stdin ? "line" : "argument", c->cmd_line[i], r.error);
            c->exit_code = CLI_EHUB; /* reported once the flush is done */
        }
    }
    fo_client_flush(c->m);
}

void cli_on_change(fo_client_model *m, fo_client_change why, const fo_batch *diff, void *data)
{
    cli *c = data;

    (void)m;
    if (c->done)
        return;
    switch (c->cmd) {
    case CMD_WATCH:
        if (why == FO_CHANGE_SNAPSHOT && !c->applied) {
            c->applied = true;
            fprintf(stderr, "flushout: watching %s at commandCount %llu\n", c->model,
                    (unsigned long long)fo_client_committed_count(c->m));
        } else if (why == FO_CHANGE_SNAPSHOT) {
            print_snap(c);
            watch_event(c);
        } else if (why == FO_CHANGE_PUSH && diff) {
            print_push(c, diff);
            watch_event(c);
        }
        break;
    case CMD_APPLY:
        if (why == FO_CHANGE_SNAPSHOT && !c->applied)
            apply_all(c);
        break;
    case CMD_PRESENCE:
        if (why == FO_CHANGE_SNAPSHOT && !c->applied) {
            c->applied = true;
            if (fo_client_set_presence(c->m, &c->presence) != 0 ||
                fo_client_get(c->client, c->model, false, 0, on_presence_taken, c) != 0)
                cli_fail(c, CLI_EUSAGE, "out of memory");
        }
        break;
    default: break;
    }
}

void cli_on_flush(fo_client_model *m, const fo_client_flush_info *info, void *data)
{
    cli *c = data;
    fo_buf b;
    int rc;

    (void)m;
    if (c->done || c->cmd != CMD_APPLY)
        return;
    if (!info->result) {
        if (!info->dropped) {
            fprintf(stderr, "flushout: the hub answered %s: %s (retrying)\n",
                    fo_error_code_name(info->code), info->message);
            return;
        }
        cli_fail(c, CLI_EHUB, "the hub refused the flush: %s: %s", fo_error_code_name(info->code),
                 info->message);
        return;
    }
    fo_buf_init(&b, 0);
    if ((rc = fo_json_write_result(info->result, flags(c), &b)) == 0)
        cli_print(c, &b);
    fo_buf_destroy(&b);
    if (rc)
        cli_fail(c, CLI_EHUB, "cannot write the ApplyResult as JSON: %s", fo_strerror(rc));
    else
        cli_finish(c, c->exit_code || info->result->errors_len ? CLI_EHUB : CLI_OK);
}

void cli_on_presence(fo_client_model *m, const char *session, const fo_value *state, void *data)
{
    cli *c = data;
    fo_value s = fo_value_str_static(session, strlen(session));
    fo_buf b;

    (void)m;
    if (c->done || c->cmd != CMD_WATCH)
        return;
    fo_buf_init(&b, 0);
    event_head(&b, "presence", c->model);
    fo_buf_append(&b, "\"session\":", 10);
    fo_json_write_value(&s, FO_JSON_COMPACT, &b);
    fo_buf_append(&b, ",\"state\":", 9);
    if (state)
        fo_json_write_value(state, FO_JSON_COMPACT, &b);
    else
        fo_buf_append(&b, "null", 4);
    fo_buf_append(&b, "}", 1);
    cli_print(c, &b);
    fo_buf_destroy(&b);
    watch_event(c);
}

void cli_on_error(fo_client *cl, const fo_client_error *e, void *data)
{
    cli *c = data;

    (void)cl;
    if (c->done)
        return;
    if (e->code)
        cli_fail(c, CLI_EHUB, "the hub answered %s%s%s: %s", fo_error_code_name(e->code),
                 e->model ? " on " : "", e->model ? e->model : "", e->message);
    else
        fprintf(stderr, "flushout: warning: %s\n", e->message);
}

void cli_on_timeout(cli *c)
{
    if (c->cmd == CMD_PRESENCE || (c->cmd == CMD_WATCH && !c->has_count)) {
        cli_finish(c, CLI_OK);
        return;
    }
    if (c->cmd == CMD_WATCH) {
        cli_fail(c, CLI_ETIMEOUT, "timed out after %g s: %llu of %llu events", c->timeout_s,
                 (unsigned long long)c->events, (unsigned long long)c->count);
        return;
    }
    cli_fail(c, CLI_ETIMEOUT, "timed out after %g s waiting for the hub at %s%s", c->timeout_s,
             c->url,
             c->m && fo_client_model_flushing(c->m)
                 ? " (the flush was sent: it may or may not have been applied)"
                 : "");
}
