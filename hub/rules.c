/* rules.c - the Lua state of the interceptors: sandbox, loading, budgets, and the
 * interceptor that runs the rules on each command. Values cross over in rules_value.c. */
#include "hub/rules.h"

#include <errno.h>
#include <stdarg.h>
#include <fnmatch.h>
#include <lauxlib.h>
#include <lua.h>
#include <luajit.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/rules_value.h"
#include "proto/error.h"
#include "proto/json.h"

#define HOOK_EVERY 1000   /* instructions between two calls of the count hook */
#define MAX_RULES 1000
#define MAX_FILE (4u << 20)

typedef struct rule {
    char *pattern;
    char *label; /* rule 2 "stamp" (rules.lua:4) */
    int fn_ref;
} rule;

struct fo_rules {
    lua_State *L;
    fo_rules_limits lim;
    size_t used;          /* bytes held by the state */
    bool enforce;         /* the memory cap is enforced (while a rule runs) */
    bool abort;           /* a budget stop is under way: pcall inside the rule rethrows */
    bool mem_hit;
    char abort_msg[300];
    uint64_t ticks;       /* hook calls during this command */
    uint64_t deadline_ns;
    int env_ref, run_ref, ctx_ref, get_ref;
    uint64_t serial;      /* batches seen (the ctx table is built once per batch) */
    const fo_value *doc;  /* the document of the command being intercepted */
    fo_arena scratch;     /* keys for ctx.get */
    uint32_t n;
    rule *rules;
    char *path;
    char name[64];        /* the file's base name, as messages show it */
};

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

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static fo_rules *rules_of(lua_State *L)
{
    void *ud;

    lua_getallocf(L, &ud);
    return ud;
}

/* ---- memory, budget ------------------------------------------------------------------- */

static void *rules_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    fo_rules *R = ud;
    size_t old = ptr ? osize : 0;
    void *p;

    if (nsize == 0) {
        free(ptr);
        R->used -= old;
        return NULL;
    }
    if (R->enforce && nsize > old && R->used + (nsize - old) > R->lim.memory) {
        R->mem_hit = true;
        R->abort = true;
        return NULL;
    }
    if (!(p = realloc(ptr, nsize)))
        return NULL;
    R->used = R->used - old + nsize;
    return p;
}

/* Stops the running rule: the message names the line it was at. */
static void stop_rule(lua_State *L, fo_rules *R, const char *why)
{
    lua_Debug ar;
    char where[160] = "";

    if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0)
        snprintf(where, sizeof(where), " at %s:%d", ar.short_src, ar.currentline);
    snprintf(R->abort_msg, sizeof(R->abort_msg), "stopped%s: %s", where, why);
    R->abort = true;
    R->enforce = false; /* room for the error message */
    lua_pushstring(L, R->abort_msg);
    lua_error(L);
}

static void hook(lua_State *L, lua_Debug *ar)
{
    fo_rules *R = rules_of(L);
    char why[120];

    (void)ar;
    if (R->abort) { /* a pcall in the rule caught the stop: stop again */
        lua_pushstring(L, R->abort_msg);
        lua_error(L);
    }
    if (++R->ticks * HOOK_EVERY > R->lim.instructions) {
        snprintf(why, sizeof(why), "instruction budget of %llu exceeded",
                 (unsigned long long)R->lim.instructions);
        stop_rule(L, R, why);
    }
    if (mono_ns() > R->deadline_ns) {
        snprintf(why, sizeof(why), "time budget of %u ms exceeded", R->lim.time_ms);
        stop_rule(L, R, why);
    }
}

/* ---- the sandbox's own functions ------------------------------------------------------- */

/* pcall and xpcall that cannot catch a budget stop or the memory cap. */
static int finish_pcall(lua_State *L, int status)
{
    fo_rules *R = rules_of(L);

    if (status != 0 && R->abort)
        lua_error(L);
    lua_pushboolean(L, status == 0);
    lua_insert(L, 1);
    return lua_gettop(L);
}

static int sb_pcall(lua_State *L)
{
    luaL_checkany(L, 1);
    return finish_pcall(L, lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0));
}

static int sb_xpcall(lua_State *L)
{
    int status;

    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 1); /* f, handler, args..., f */
    lua_insert(L, 3);    /* f, handler, f, args... */
    lua_remove(L, 1);    /* handler, f, args... */
    status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 1);
    lua_remove(L, 1);
    return finish_pcall(L, status);
}

static int sb_collectgarbage(lua_State *L)
{
    const char *opt = luaL_optstring(L, 1, "collect");

    if (strcmp(opt, "count") != 0)
        return luaL_error(L, "collectgarbage: only \"count\" is allowed in a rule");
    lua_pushnumber(L, (lua_Number)lua_gc(L, LUA_GCCOUNT, 0) +
                          (lua_Number)lua_gc(L, LUA_GCCOUNTB, 0) / 1024.0);
    return 1;
}

static int sb_array(lua_State *L)
{
    if (lua_isnoneornil(L, 1))
        lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    fo_lua_mark_array(L, 1);
    return 1;
}

/* ctx.get(path): a copy of the value at a document path, or nil. */
static int sb_get(lua_State *L)
{
    fo_rules *R = rules_of(L);
    const fo_value *v = R->doc;
    int n;

    if (!v)
        return 0;
    if (!lua_isnoneornil(L, 1))
        luaL_checktype(L, 1, LUA_TTABLE);
    n = lua_isnoneornil(L, 1) ? 0 : (int)lua_objlen(L, 1);
    fo_arena_reset(&R->scratch);
    for (int i = 1; i <= n; i++) {
        size_t len;
        const char *s;
        const fo_map *m = fo_value_as_map(v);
        fo_key k;
        lua_rawgeti(L, 1, i);
        if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
            return luaL_error(L, "ctx.get: path segment %d is a %s, not a string", i,
                              luaL_typename(L, -1));
        s = lua_tolstring(L, -1, &len);
        if (!m)
            return 0;
        if (!(k = fo_key_new(&R->scratch, s, len)))
            return luaL_error(L, "ctx.get: out of memory");
        lua_pop(L, 1);
        if (!(v = fo_map_get(m, k)))
            return 0;
    }
    fo_lua_push_value(L, v);
    return 1;
}

/* A read-only view of the table at the top: {} with __index = it. Replaces it. */
static void make_proxy(lua_State *L)
{
    lua_newtable(L);              /* t, proxy */
    lua_createtable(L, 0, 3);     /* t, proxy, mt */
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);      /* t, proxy */
    lua_remove(L, -2);
}

static int read_only(lua_State *L)
{
    return luaL_error(L, "the sandbox's libraries are read-only");
}

/* Copies the named fields of global table `lib` into a new table, then proxies it. */
static void sandbox_lib(lua_State *L, const char *lib, const char *const *skip)
{
    lua_getglobal(L, lib);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, -3)) {
        bool drop = false;
        for (int i = 0; skip && skip[i]; i++)
            drop = drop || (lua_type(L, -2) == LUA_TSTRING &&
                            strcmp(lua_tostring(L, -2), skip[i]) == 0);
        if (drop) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    lua_remove(L, -2);
    make_proxy(L);
    /* writes fail loudly */
    lua_getmetatable(L, -1);
    lua_pushcfunction(L, read_only);
    lua_setfield(L, -2, "__newindex");
    lua_pop(L, 1);
}

static int open_lib(lua_State *L, lua_CFunction f, const char *name)
{
    lua_pushcfunction(L, f);
    lua_pushstring(L, name);
    lua_call(L, 1, 0);
    return 0;
}

static int run_command(lua_State *L);

/* Builds the sandbox (run protected). Registry: env (E, the rules' globals, cleared after
 * every call; __index G, the file's own globals, __index B, the base library). */
static int build_sandbox(lua_State *L)
{
    fo_rules *R = rules_of(L);
    static const char *const base[] = {"assert", "error",    "ipairs",   "next",     "pairs",
                                       "select", "tonumber", "tostring", "type",     "unpack",
                                       "rawequal", "rawget", "setmetatable", "getmetatable",
                                       NULL};
    static const char *const no_string[] = {"dump", NULL};
    static const char *const no_math[] = {"random", "randomseed", NULL};

    open_lib(L, luaopen_base, "");
    open_lib(L, luaopen_string, LUA_STRLIBNAME);
    open_lib(L, luaopen_table, LUA_TABLIBNAME);
    open_lib(L, luaopen_math, LUA_MATHLIBNAME);
    open_lib(L, luaopen_bit, LUA_BITLIBNAME);
    fo_lua_value_setup(L);
    /* string.dump stays out of reach through the strings' metatable too */
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);

    lua_newtable(L); /* B */
    for (int i = 0; base[i]; i++) {
        lua_getglobal(L, base[i]);
        lua_setfield(L, -2, base[i]);
    }
    lua_pushcfunction(L, sb_pcall);
    lua_setfield(L, -2, "pcall");
    lua_pushcfunction(L, sb_xpcall);
    lua_setfield(L, -2, "xpcall");
    lua_pushcfunction(L, sb_collectgarbage);
    lua_setfield(L, -2, "collectgarbage");
    lua_pushcfunction(L, sb_array);
    lua_setfield(L, -2, "array");
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    sandbox_lib(L, LUA_STRLIBNAME, no_string);
    lua_setfield(L, -2, LUA_STRLIBNAME);
    sandbox_lib(L, LUA_TABLIBNAME, NULL);
    lua_setfield(L, -2, LUA_TABLIBNAME);
    sandbox_lib(L, LUA_MATHLIBNAME, no_math);
    lua_setfield(L, -2, LUA_MATHLIBNAME);
    sandbox_lib(L, LUA_BITLIBNAME, NULL);
    lua_setfield(L, -2, LUA_BITLIBNAME);
    /* G: the file's globals (filled after loading), __index B */
    lua_newtable(L);
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_remove(L, -2); /* G */
    /* E: __index G */
    lua_newtable(L);
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    R->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    lua_pushcfunction(L, run_command);
    R->run_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushcfunction(L, sb_get);
    R->get_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushboolean(L, 0);
    R->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* ---- loading --------------------------------------------------------------------------- */

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
    fo_rules *R = rules_of(L);

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
    fo_rules *R = rules_of(L);
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

/* The error at the top as text (a rule may throw any value). */
static const char *error_text(lua_State *L)
{
    int t = lua_type(L, -1);

    if (t == LUA_TSTRING || t == LUA_TNUMBER)
        return lua_tostring(L, -1);
    return t == LUA_TNIL ? "error with a nil value" : "error with a non-string value";
}

static void start_budget(lua_State *L, fo_rules *R, uint64_t scale)
{
    R->ticks = 0;
    R->abort = R->mem_hit = false;
    R->deadline_ns = mono_ns() + (uint64_t)R->lim.time_ms * 1000000ull * scale;
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_EVERY);
}

static int panic(lua_State *L)
{
    fprintf(stderr, "flushout-hub: unprotected error in the rules' Lua state: %s\n",
            error_text(L));
    abort();
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
    if (!(R->L = L = lua_newstate(rules_alloc, R))) {
        snprintf(err, errlen, "%s: cannot create a Lua state (out of memory?)", path);
        goto fail;
    }
    lua_atpanic(L, panic);
    /* Count hooks are not called from compiled traces: the budget needs the interpreter. */
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    if (lua_cpcall(L, build_sandbox, NULL)) {
        snprintf(err, errlen, "%s: cannot build the sandbox: %s", path, error_text(L));
        goto fail;
    }
    snprintf(chunk, sizeof(chunk), "@%s", R->name);
    if (luaL_loadbuffer(L, src, len, chunk)) {
        snprintf(err, errlen, "%s", error_text(L));
        goto fail;
    }
    free(src);
    src = NULL;
    lua_rawgeti(L, LUA_REGISTRYINDEX, R->env_ref);
    lua_setfenv(L, -2);
    /* The file's top level runs under ten times a command's budget. */
    start_budget(L, R, 10);
    R->enforce = true;
    rc = lua_pcall(L, 0, 1, 0);
    R->enforce = false;
    if (rc) {
        snprintf(err, errlen, "%s: %s", R->name,
                 R->mem_hit ? "the file's top level reached the memory cap" : error_text(L));
        goto fail;
    }
    lua_pushcfunction(L, collect_rules);
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 0, 0) || lua_cpcall(L, keep_file_globals, NULL)) {
        snprintf(err, errlen, "%s", error_text(L));
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
    R->enforce = false;
    if (R->L)
        lua_close(R->L);
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

static void push_cmd(lua_State *L, const fo_command *c, fo_key id)
{
    lua_createtable(L, 0, 4);
    lua_pushstring(L, fo_action_name(c->action));
    lua_setfield(L, -2, "action");
    lua_createtable(L, (int)c->path.len, 0);
    for (uint32_t i = 0; i < c->path.len; i++) {
        push_key(L, c->path.seg[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_setfield(L, -2, "path");
    if (c->props) {
        fo_lua_push_value(L, c->props);
        lua_setfield(L, -2, "props");
    }
    if (id) {
        push_key(L, id);
        lua_setfield(L, -2, "id");
    }
}

static void add_actor(job *j, const rule *r)
{
    int n = snprintf(j->actors + j->alen, sizeof(j->actors) - j->alen, "%s%s",
                     j->alen ? ", " : "", r->label);

    if (n > 0)
        j->alen = j->alen + (size_t)n < sizeof(j->actors) ? j->alen + (size_t)n
                                                         : sizeof(j->actors) - 1;
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

    if (B->serial != R->serial || !B->serial) { /* the batch's identity, once */
        B->serial = ++R->serial;
        if (B->identity)
            fo_lua_push_json(L, B->identity);
        else
            lua_pushnil(L);
        lua_rawseti(L, LUA_REGISTRYINDEX, R->ctx_ref);
    }
    push_cmd(L, j->cmd, j->id);
    cmd_idx = lua_gettop(L);
    start_budget(L, R, 1);
    for (int32_t k = 0; k < B->nmatch; k++) {
        const rule *r = &R->rules[B->match[k]];
        int base = lua_gettop(L), st, nres, t;

        lua_rawgeti(L, LUA_REGISTRYINDEX, r->fn_ref);
        lua_pushvalue(L, cmd_idx);
        lua_createtable(L, 0, 4); /* ctx: fresh for every call */
        lua_pushstring(L, B->model);
        lua_setfield(L, -2, "model");
        lua_pushnumber(L, (lua_Number)B->now_ms);
        lua_setfield(L, -2, "now");
        lua_rawgeti(L, LUA_REGISTRYINDEX, R->ctx_ref);
        lua_setfield(L, -2, "identity");
        lua_rawgeti(L, LUA_REGISTRYINDEX, R->get_ref);
        lua_setfield(L, -2, "get");
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
                reject(j, r, arena_fmt(j->arena, "%s failed: %s", r->label, error_text(L)));
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
            lua_setfield(L, cmd_idx, "props");
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
        j.message = arena_fmt(arena, "rules (%s): %s", R->name, error_text(R->L));
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
    fo_value v = fo_value_str_static(s, strlen(s));

    return fo_json_write_value(&v, 0, b);
}

int fo_rules_write_actions(const fo_rules_batch *B, fo_buf *out)
{
    int rc = put(out, "[");

    for (uint32_t i = 0; i < B->nactions && !rc; i++) {
        const fo_rules_action *a = &B->actions[i];
        char num[32];
        snprintf(num, sizeof(num), "%s{\"index\":%u,\"command\":", i ? "," : "", a->index);
        if ((rc = put(out, num)) || (rc = fo_json_write_command(&a->original, 0, out)))
            break;
        if (a->id) {
            char buf[20];
            size_t len;
            const char *s = fo_key_str(a->id, buf, &len);
            fo_value v = fo_value_str_static(s, len);
            if ((rc = put(out, ",\"id\":")) || (rc = fo_json_write_value(&v, 0, out)))
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
    return rc ? FO_ENOMEM : 0;
}
