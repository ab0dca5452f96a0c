/* rules.c - the interceptors: loading a rules file, and the interceptor that runs the
 * rules on each command. The Lua state itself (allocator, budgets, sandbox) is in
 * rules_state.c; values cross over in rules_value.c. */
#include "hub/rules.h"

#include <errno.h>
#include <stdarg.h>
#include <fnmatch.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/rules_state.h"
#include "hub/rules_value.h"
#include "proto/error.h"
#include "proto/json.h"

#define MAX_RULES 1000
#define MAX_FILE (4u << 20)

void fo_rules_limits_default(fo_rules_limits *l)
{
    l->instructions = 1000000;
    l->time_ms = 10;
    l->memory = (size_t)32 << 20;
}

int64_t fo_rules_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- loading --------------------------------------------------------------------------- */

static int run_command(lua_State *L);

static void clear_env(lua_State *L, fo_rules *R)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, R->env_ref);
    lua_pushnil(L);
    if (!lua_next(L, -2)) { /* the usual case: the rule wrote no global */
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 2);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushnil(L);
        lua_rawset(L, -4);
    }
    lua_pop(L, 1);
}

/* What the file defined at its top level becomes the rules' shared globals (G). */
static int keep_file_globals(lua_State *L)
{
    fo_rules *R = fo_rules_of(L);

    lua_settop(L, 0);                              /* lua_cpcall's argument */
    lua_rawgeti(L, LUA_REGISTRYINDEX, R->env_ref); /* E */
    lua_getmetatable(L, -1);
    lua_getfield(L, -1, "__index");                /* E, mt, G */
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, 3);
    }
    lua_settop(L, 0);
    clear_env(L, R);
    return 0;
}

static int collect_rules(lua_State *L)
{
    fo_rules *R = fo_rules_of(L);
    size_t n;

    if (!lua_istable(L, 1))
        return luaL_error(L, "%s: the file must return a list of rules (a table), not a %s",
                          R->name, luaL_typename(L, 1));
    n = lua_objlen(L, 1);
    if (n > MAX_RULES)
        return luaL_error(L, "%s: more than %d rules", R->name, MAX_RULES);
    if (!(R->rules = calloc(n ? n : 1, sizeof(rule))))
        return luaL_error(L, "out of memory");
    for (size_t i = 1; i <= n; i++) {
        rule *r = &R->rules[i - 1];
        const char *name = NULL, *pattern;
        lua_Debug ar;
        char label[300];

        R->n = (uint32_t)i; /* so that a failure frees what this rule got */
        lua_rawgeti(L, 1, (int)i);
        if (!lua_istable(L, -1))
            return luaL_error(L, "%s: rule %d: expected a table {models = PATTERN, intercept "
                              "= function(cmd, ctx) ... end}, got a %s",
                              R->name, (int)i, luaL_typename(L, -1));
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            if (!k || (strcmp(k, "name") && strcmp(k, "models") && strcmp(k, "intercept")))
                return luaL_error(L, "%s: rule %d: unknown field %s%s%s (expected name, models, "
                                  "intercept)", R->name, (int)i, k ? "'" : "a ",
                                  k ? k : luaL_typename(L, -2), k ? "'" : " key");
            lua_pop(L, 1);
        }
        lua_getfield(L, -1, "models");
        if (lua_type(L, -1) != LUA_TSTRING || !*(pattern = lua_tostring(L, -1)))
            return luaL_error(L, "%s: rule %d: 'models' must be a fnmatch pattern (a non-empty "
                              "string), not a %s", R->name, (int)i, luaL_typename(L, -1));
        if (!(r->pattern = strdup(pattern)))
            return luaL_error(L, "out of memory");
        lua_pop(L, 1);
        lua_getfield(L, -1, "name");
        if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "%s: rule %d: 'name' must be a string, not a %s", R->name,
                              (int)i, luaL_typename(L, -1));
        name = lua_tostring(L, -1);
        lua_pop(L, 1);
        lua_getfield(L, -1, "intercept");
        if (!lua_isfunction(L, -1) || lua_iscfunction(L, -1))
            return luaL_error(L, "%s: rule %d: 'intercept' must be a function(cmd, ctx), not a %s",
                              R->name, (int)i, luaL_typename(L, -1));
        lua_pushvalue(L, -1);
        lua_getinfo(L, ">S", &ar);
        snprintf(label, sizeof(label), "rule %d \"%s\" (%s:%d)", (int)i, name ? name : pattern,
                 R->name, ar.linedefined);
        if (!(r->label = strdup(label)))
            return luaL_error(L, "out of memory");
        r->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_pop(L, 1);
    }
    return 0;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf;

    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (!(buf = malloc(MAX_FILE + 1))) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    *len = fread(buf, 1, MAX_FILE + 1, f);
    if (ferror(f) || *len > MAX_FILE) {
        snprintf(err, errlen, "%s: %s", path, ferror(f) ? strerror(errno) : "larger than 4 MiB");
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    return buf;
}

fo_rules *fo_rules_load(const char *path, const fo_rules_limits *lim, char *err, size_t errlen)
{
    fo_rules *R = calloc(1, sizeof(*R));
    const char *base = strrchr(path, '/');
    char chunk[80];
    size_t len = 0;
    char *src = NULL;
    lua_State *L;
    int rc;

    if (!R || !(R->path = strdup(path))) {
        free(R);
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    if (lim)
        R->lim = *lim;
    else
        fo_rules_limits_default(&R->lim);
    snprintf(R->name, sizeof(R->name), "%s", base ? base + 1 : path);
    fo_arena_init(&R->scratch, 256);
    if (!(src = read_file(path, &len, err, errlen)))
        goto fail;
    if (len && src[0] == 0x1b) {
        snprintf(err, errlen, "%s: precompiled bytecode is not accepted: give the source", path);
        goto fail;
    }
    if (fo_rules_state_open(R, run_command, err, errlen))
        goto fail;
    L = R->L;
    snprintf(chunk, sizeof(chunk), "@%s", R->name);
    if (luaL_loadbuffer(L, src, len, chunk)) {
        snprintf(err, errlen, "%s", fo_rules_error_text(L));
        goto fail;
    }
    free(src);
    src = NULL;
    lua_rawgeti(L, LUA_REGISTRYINDEX, R->env_ref);
    lua_setfenv(L, -2);
    /* The file's top level runs under ten times a command's budget. */
    fo_rules_start_budget(L, R, 10);
    R->enforce = true;
    rc = lua_pcall(L, 0, 1, 0);
    R->enforce = false;
    if (rc) {
        snprintf(err, errlen, "%s: %s", R->name,
                 R->mem_hit ? "the file's top level reached the memory cap" : fo_rules_error_text(L));
        goto fail;
    }
    lua_pushcfunction(L, collect_rules);
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 0, 0) || lua_cpcall(L, keep_file_globals, NULL)) {
        snprintf(err, errlen, "%s", fo_rules_error_text(L));
        goto fail;
    }
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT, 0);
    return R;
fail:
    free(src);
    fo_rules_free(R);
    return NULL;
}

void fo_rules_free(fo_rules *R)
{
    if (!R)
        return;
    fo_rules_state_close(R);
    for (uint32_t i = 0; R->rules && i < R->n; i++) {
        free(R->rules[i].pattern);
        free(R->rules[i].label);
    }
    free(R->rules);
    fo_arena_destroy(&R->scratch);
    free(R->path);
    free(R);
}

uint32_t fo_rules_count(const fo_rules *r)
{
    return r->n;
}

const char *fo_rules_path(const fo_rules *r)
{
    return r->path;
}

size_t fo_rules_memory(const fo_rules *r)
{
    return r->used;
}

/* ---- running --------------------------------------------------------------------------- */

typedef struct job {
    fo_rules *R;
    fo_rules_batch *B;
    const fo_command *cmd;
    fo_key id;
    fo_arena *arena;
    fo_intercept_kind kind;
    const char *message;
    const fo_value *props;
    char actors[512];
    size_t alen;
} job;

static void push_key(lua_State *L, fo_key k)
{
    char buf[20];
    size_t len;
    const char *s = fo_key_str(k, buf, &len);

    lua_pushlstring(L, s, len);
}

static void set_up(lua_State *L, int up, int table)
{
    lua_pushvalue(L, lua_upvalueindex(up));
    lua_insert(L, -2);
    lua_rawset(L, table);
}

static void push_cmd(lua_State *L, const fo_command *c, fo_key id)
{
    int t;

    lua_createtable(L, 0, 4);
    t = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(c->action == FO_CREATE   ? UP_CREATE
                                      : c->action == FO_UPDATE ? UP_UPDATE
                                                               : UP_DELETE));
    set_up(L, UP_ACTION, t);
    lua_createtable(L, (int)c->path.len, 0);
    for (uint32_t i = 0; i < c->path.len; i++) {
        push_key(L, c->path.seg[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    set_up(L, UP_PATH, t);
    if (c->props) {
        fo_lua_push_props(L, c->props);
        set_up(L, UP_PROPS, t);
    }
    if (id) {
        push_key(L, id);
        set_up(L, UP_ID, t);
    }
}

static void add_actor(job *j, const rule *r)
{
    size_t room = sizeof(j->actors) - 1 - j->alen, n = strlen(r->label);

    if (j->alen && room >= 2) {
        memcpy(j->actors + j->alen, ", ", 2);
        j->alen += 2;
        room -= 2;
    }
    n = n < room ? n : room;
    memcpy(j->actors + j->alen, r->label, n);
    j->alen += n;
}

static const char *arena_fmt(fo_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static const char *arena_fmt(fo_arena *a, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    return fo_arena_strndup(a, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void reject(job *j, const rule *r, const char *msg)
{
    j->kind = FO_INTERCEPT_REJECT;
    j->message = msg ? msg : "out of memory";
    add_actor(j, r);
}

/* Runs the matching rules on one command (protected: conversions may raise). */
static int run_command(lua_State *L)
{
    job *j = lua_touserdata(L, 1);
    fo_rules *R = j->R;
    fo_rules_batch *B = j->B;
    int cmd_idx;

    if (B->serial != R->serial || !B->serial) { /* ctx's fields, once per batch */
        int f = lua_upvalueindex(UP_FIELDS);
        B->serial = ++R->serial;
        lua_pushstring(L, B->model);
        set_up(L, UP_MODEL, f);
        lua_pushnumber(L, (lua_Number)B->now_ms);
        set_up(L, UP_NOW, f);
        if (B->identity)
            fo_lua_push_json(L, B->identity);
        else
            lua_pushnil(L);
        set_up(L, UP_IDENTITY, f);
    }
    push_cmd(L, j->cmd, j->id);
    cmd_idx = lua_gettop(L);
    fo_rules_start_budget(L, R, 1);
    for (int32_t k = 0; k < B->nmatch; k++) {
        const rule *r = &R->rules[B->match[k]];
        int base = lua_gettop(L), st, nres, t;

        lua_rawgeti(L, LUA_REGISTRYINDEX, r->fn_ref);
        lua_pushvalue(L, cmd_idx);
        lua_pushvalue(L, lua_upvalueindex(UP_CTX));
        if (R->used > R->lim.memory / 2)
            lua_gc(L, LUA_GCCOLLECT, 0);
        R->abort = R->mem_hit = false;
        R->enforce = true;
        st = lua_pcall(L, 2, LUA_MULTRET, 0);
        R->enforce = false;
        clear_env(L, R);
        if (st) {
            if (R->mem_hit)
                reject(j, r, arena_fmt(j->arena, "%s stopped: the rules reached their memory "
                                       "cap of %zu bytes", r->label, R->lim.memory));
            else if (R->abort)
                reject(j, r, arena_fmt(j->arena, "%s %s", r->label, R->abort_msg));
            else
                reject(j, r, arena_fmt(j->arena, "%s failed: %s", r->label, fo_rules_error_text(L)));
            return 0;
        }
        nres = lua_gettop(L) - base;
        t = nres ? lua_type(L, base + 1) : LUA_TNIL;
        if (t == LUA_TNIL || (t == LUA_TBOOLEAN && lua_toboolean(L, base + 1))) {
            lua_settop(L, base);
            continue;
        }
        if (t == LUA_TBOOLEAN) {
            if (nres >= 2 && (lua_type(L, base + 2) == LUA_TSTRING ||
                              lua_type(L, base + 2) == LUA_TNUMBER)) {
                size_t len;
                const char *m = lua_tolstring(L, base + 2, &len);
                reject(j, r, fo_arena_strndup(j->arena, m, len));
            } else {
                reject(j, r, arena_fmt(j->arena, "rejected by %s", r->label));
            }
            return 0;
        }
        if (t == LUA_TTABLE) {
            fo_value *v = fo_arena_alloc(j->arena, sizeof(*v));
            const char *e = v ? fo_lua_to_value(L, base + 1, j->arena, "props", v) : "out of memory";
            if (!e && fo_value_type(v) != FO_MAP)
                e = "props: a list, where a map of props was expected";
            if (e) {
                reject(j, r, arena_fmt(j->arena, "%s returned props that cannot be applied: %s",
                                       r->label, e));
                return 0;
            }
            if (j->cmd->action == FO_DELETE) {
                reject(j, r, arena_fmt(j->arena, "%s returned props for a delete", r->label));
                return 0;
            }
            j->kind = FO_INTERCEPT_REPLACE;
            j->props = v;
            add_actor(j, r);
            lua_pushvalue(L, base + 1); /* later rules see the new props */
            set_up(L, UP_PROPS, cmd_idx);
            lua_settop(L, base);
            continue;
        }
        reject(j, r, arena_fmt(j->arena, "%s returned a %s: expected nothing, false and a "
                               "message, or a table of props", r->label, lua_typename(L, t)));
        return 0;
    }
    return 0;
}

static int match_rules(fo_rules_batch *B, fo_arena *a)
{
    fo_rules *R = B->rules;

    B->nmatch = 0;
    if (!R->n)
        return 0;
    if (!(B->match = fo_arena_alloc(a, R->n * sizeof(*B->match))))
        return FO_ENOMEM;
    for (uint32_t i = 0; i < R->n; i++)
        if (fnmatch(R->rules[i].pattern, B->model, 0) == 0)
            B->match[B->nmatch++] = (uint16_t)i;
    return 0;
}

void fo_rules_batch_init(fo_rules_batch *b, fo_rules *r, const char *model,
                         const json_t *identity, int64_t now_ms)
{
    memset(b, 0, sizeof(*b));
    b->rules = r;
    b->model = model;
    b->identity = identity;
    b->now_ms = now_ms;
    b->nmatch = -1;
}

static int record(fo_rules_batch *B, const job *j, uint32_t index, fo_arena *a)
{
    fo_rules_action *act;

    if (B->nactions == B->cap) {
        uint32_t cap = B->cap ? B->cap * 2 : 8;
        fo_rules_action *n = fo_arena_alloc(a, cap * sizeof(*n));
        if (!n)
            return FO_ENOMEM;
        if (B->nactions)
            memcpy(n, B->actions, B->nactions * sizeof(*n));
        B->actions = n;
        B->cap = cap;
    }
    act = &B->actions[B->nactions++];
    act->index = index;
    act->original = *j->cmd;
    act->id = j->id;
    act->rejected = j->kind == FO_INTERCEPT_REJECT;
    act->message = j->message;
    act->props = j->props;
    act->rules = fo_arena_strndup(a, j->actors, j->alen);
    return act->rules ? 0 : FO_ENOMEM;
}

int fo_rules_intercept(void *data, const fo_value *document, const fo_command *cmd,
                       void *context, fo_arena *arena, fo_interception *out)
{
    fo_rules_batch *B = context;
    fo_rules *R;
    uint32_t index;
    job j;

    (void)data;
    if (!B || !(R = B->rules))
        return 0;
    index = B->ncalls++;
    if (B->nmatch < 0 && match_rules(B, arena))
        return FO_ENOMEM;
    if (B->nmatch == 0)
        return 0;
    memset(&j, 0, sizeof(j));
    j.R = R;
    j.B = B;
    j.cmd = cmd;
    j.id = out->proposed_id;
    j.arena = arena;
    R->doc = document;
    lua_rawgeti(R->L, LUA_REGISTRYINDEX, R->run_ref);
    lua_pushlightuserdata(R->L, &j);
    if (lua_pcall(R->L, 1, 0, 0)) {
        j.kind = FO_INTERCEPT_REJECT;
        j.message = arena_fmt(arena, "rules (%s): %s", R->name, fo_rules_error_text(R->L));
    }
    lua_settop(R->L, 0);
    R->doc = NULL;
    if (j.kind == FO_INTERCEPT_ACCEPT)
        return 0;
    if (!j.message && j.kind == FO_INTERCEPT_REJECT)
        return FO_ENOMEM;
    out->kind = j.kind;
    out->rejection = j.message;
    out->new_props = j.props;
    /* A replacement keeps the create's parentDefault (the reference would drop it). */
    out->keep_parent_default = true;
    return record(B, &j, index, arena);
}

const fo_interceptor fo_rules_interceptor = {fo_rules_intercept, NULL};

/* ---- actions as JSON ------------------------------------------------------------------- */

static int put(fo_buf *b, const char *s)
{
    return fo_buf_append(b, s, strlen(s));
}

static int put_str(fo_buf *b, const char *s)
{
    return fo_json_write_str(s, strlen(s), b);
}

int fo_rules_write_actions(const fo_rules_batch *B, fo_buf *out)
{
    size_t len0 = out->len;
    int rc = put(out, "[");

    for (uint32_t i = 0; i < B->nactions && !rc; i++) {
        const fo_rules_action *a = &B->actions[i];
        if ((rc = put(out, i ? ",{\"index\":" : "{\"index\":")) ||
            (rc = fo_json_write_u64(a->index, out)) || (rc = put(out, ",\"command\":")) ||
            (rc = fo_json_write_command(&a->original, 0, out)))
            break;
        if (a->id) {
            char buf[20];
            size_t len;
            const char *s = fo_key_str(a->id, buf, &len);
            if ((rc = put(out, ",\"id\":")) || (rc = fo_json_write_str(s, len, out)))
                break;
        }
        if (a->rejected)
            rc = put(out, ",\"outcome\":\"rejected\",\"message\":") || put_str(out, a->message);
        else
            rc = put(out, ",\"outcome\":\"rewritten\",\"props\":") ||
                 fo_json_write_value(a->props, 0, out);
        if (rc || (rc = put(out, ",\"rules\":")) || (rc = put_str(out, a->rules)) ||
            (rc = put(out, "}")))
            break;
    }
    if (!rc)
        rc = put(out, "]");
    if (rc)
        out->len = len0;
    return rc ? FO_ENOMEM : 0;
}
