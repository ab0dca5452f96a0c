/* rules_state.c - the rules' Lua state: its allocator and memory cap, the budget hook,
 * and the sandbox (rules_state.h). */
#include "hub/rules_state.h"

#include <lauxlib.h>
#include <luajit.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/rules_value.h"

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

fo_rules *fo_rules_of(lua_State *L)
{
    void *ud;

    lua_getallocf(L, &ud);
    return ud;
}

/* ---- memory, budget ------------------------------------------------------------------- */

/* A block of n <= SMALL_MAX bytes has room for its whole class. */
static size_t small_class(size_t n)
{
    return (n - 1) / SMALL_STEP;
}

static void small_release(small_cache *c, void *p, size_t n)
{
    size_t k = small_class(n);

    if (c->count[k] >= SMALL_KEEP) {
        free(p);
        return;
    }
    *(void **)p = c->head[k];
    c->head[k] = p;
    c->count[k]++;
}

static void small_drain(small_cache *c)
{
    for (size_t k = 0; k < SMALL_CLASSES; k++) {
        while (c->head[k]) {
            void *p = c->head[k];
            c->head[k] = *(void **)p;
            free(p);
        }
        c->count[k] = 0;
    }
}

static void *block_resize(small_cache *c, void *ptr, size_t old, size_t nsize)
{
    void *p;

    if (old > SMALL_MAX && nsize > SMALL_MAX)
        return realloc(ptr, nsize);
    if (old && nsize <= SMALL_MAX && small_class(old) == small_class(nsize))
        return ptr;
    if (nsize <= SMALL_MAX && c->head[small_class(nsize)]) {
        size_t k = small_class(nsize);
        p = c->head[k];
        c->head[k] = *(void **)p;
        c->count[k]--;
    } else if (!(p = malloc(nsize <= SMALL_MAX ? (small_class(nsize) + 1) * SMALL_STEP
                                                : nsize))) {
        return NULL;
    }
    if (old) {
        memcpy(p, ptr, old < nsize ? old : nsize);
        if (old <= SMALL_MAX)
            small_release(c, ptr, old);
        else
            free(ptr);
    }
    return p;
}

static void *rules_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    fo_rules *R = ud;
    size_t old = ptr ? osize : 0;
    void *p;

    if (nsize == 0) {
        if (old && old <= SMALL_MAX)
            small_release(&R->cache, ptr, old);
        else
            free(ptr);
        R->used -= old;
        return NULL;
    }
    if (R->enforce && nsize > old && R->used + (nsize - old) > R->lim.memory) {
        R->mem_hit = true;
        R->abort = true;
        return NULL;
    }
    if (!(p = block_resize(&R->cache, ptr, old, nsize)))
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
    fo_rules *R = fo_rules_of(L);
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
    fo_rules *R = fo_rules_of(L);

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
    fo_rules *R = fo_rules_of(L);
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

static int ctx_read_only(lua_State *L)
{
    return luaL_error(L, "ctx is read-only");
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

static const char *const up_names[] = {"action", "path", "props", "id", "model", "now",
                                       "identity", "create", "update", "delete", NULL};

/* Builds the sandbox (run protected). Registry: env (E, the rules' globals, cleared after
 * every call; __index G, the file's own globals, __index B, the base library). */
static int build_sandbox(lua_State *L)
{
    fo_rules *R = fo_rules_of(L);
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
    /* run_command's upvalues (see UP_*): the interned names it sets, and ctx: one
     * read-only view for every call, whose fields change once per batch. */
    for (int i = 0; up_names[i]; i++)
        lua_pushstring(L, up_names[i]);
    lua_createtable(L, 0, 4); /* ctx's fields */
    lua_pushcfunction(L, sb_get);
    lua_setfield(L, -2, "get");
    lua_newtable(L);          /* ctx */
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ctx_read_only);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_pushcclosure(L, R->run, UP_COUNT);
    R->run_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

const char *fo_rules_error_text(lua_State *L)
{
    int t = lua_type(L, -1);

    if (t == LUA_TSTRING || t == LUA_TNUMBER)
        return lua_tostring(L, -1);
    return t == LUA_TNIL ? "error with a nil value" : "error with a non-string value";
}

void fo_rules_start_budget(lua_State *L, fo_rules *R, uint64_t scale)
{
    R->ticks = 0;
    R->abort = R->mem_hit = false;
    R->deadline_ns = mono_ns() + (uint64_t)R->lim.time_ms * 1000000ull * scale;
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_EVERY);
}

static int panic(lua_State *L)
{
    fprintf(stderr, "flushout-hub: unprotected error in the rules' Lua state: %s\n",
            fo_rules_error_text(L));
    abort();
}

int fo_rules_state_open(fo_rules *R, lua_CFunction run, char *err, size_t errlen)
{
    lua_State *L;

    R->run = run;
    if (!(R->L = L = lua_newstate(rules_alloc, R))) {
        snprintf(err, errlen, "%s: cannot create a Lua state (out of memory?)", R->path);
        return -1;
    }
    lua_atpanic(L, panic);
    /* Count hooks are not called from compiled traces: the budget needs the interpreter. */
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    if (lua_cpcall(L, build_sandbox, NULL)) {
        snprintf(err, errlen, "%s: cannot build the sandbox: %s", R->path, fo_rules_error_text(L));
        return -1;
    }
    return 0;
}

void fo_rules_state_close(fo_rules *R)
{
    R->enforce = false;
    if (R->L)
        lua_close(R->L);
    R->L = NULL;
    small_drain(&R->cache);
}
