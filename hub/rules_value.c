#include "hub/rules_value.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* The array metatable's registry key: a light userdata (no string to hash per lookup). */
static const char array_mt_key = 0;

static void push_array_mt(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&array_mt_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
}

void fo_lua_value_setup(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&array_mt_key);
    lua_newtable(L);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_rawset(L, LUA_REGISTRYINDEX);
}

void fo_lua_mark_array(lua_State *L, int idx)
{
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    push_array_mt(L);
    lua_setmetatable(L, idx);
}

static void push_key(lua_State *L, fo_key k)
{
    char buf[20];
    size_t len;
    const char *s = fo_key_str(k, buf, &len);

    lua_pushlstring(L, s, len);
}

#define PROPS_ROOM 4 /* hash slots left free in a command's props */

static void push_value(lua_State *L, const fo_value *v, int depth, int room)
{
    size_t len;
    const char *s;

    if (depth > FO_RULES_MAX_DEPTH)
        luaL_error(L, "value nested deeper than %d", FO_RULES_MAX_DEPTH);
    luaL_checkstack(L, 4, "value too deep");
    switch (fo_value_type(v)) {
    case FO_NULL: lua_pushlightuserdata(L, NULL); break;
    case FO_BOOL: lua_pushboolean(L, v->h.as.b); break;
    case FO_INT: lua_pushnumber(L, (lua_Number)v->h.as.i); break;
    case FO_UINT: lua_pushnumber(L, (lua_Number)v->h.as.u); break;
    case FO_FLOAT: lua_pushnumber(L, v->h.as.f); break;
    case FO_STR:
        s = fo_value_strbuf(v, &len);
        lua_pushlstring(L, s, len);
        break;
    case FO_ARRAY:
        lua_createtable(L, (int)v->h.len, 0);
        for (uint32_t i = 0; i < v->h.len; i++) {
            push_value(L, &v->h.as.items[i], depth + 1, 0);
            lua_rawseti(L, -2, (int)i + 1);
        }
        fo_lua_mark_array(L, -1);
        break;
    case FO_MAP: {
        const fo_map *m = v->h.as.map;
        const fo_entry *e = fo_map_entries(m);
        lua_createtable(L, 0, (int)fo_map_count(m) + room);
        for (uint32_t i = 0; i < fo_map_len(m); i++) {
            if (!e[i].key)
                continue;
            push_key(L, e[i].key);
            push_value(L, &e[i].value, depth + 1, 0);
            lua_rawset(L, -3);
        }
        break;
    }
    default: lua_pushnil(L); break;
    }
}

void fo_lua_push_value(lua_State *L, const fo_value *v)
{
    push_value(L, v, 0, 0);
}

void fo_lua_push_props(lua_State *L, const fo_value *v)
{
    push_value(L, v, 0, PROPS_ROOM);
}

static void push_json(lua_State *L, const json_t *j, int depth)
{
    if (depth > FO_RULES_MAX_DEPTH)
        luaL_error(L, "identity nested deeper than %d", FO_RULES_MAX_DEPTH);
    luaL_checkstack(L, 4, "identity too deep");
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        lua_createtable(L, 0, (int)json_object_size(j));
        json_object_foreach((json_t *)j, k, v) {
            push_json(L, v, depth + 1);
            lua_setfield(L, -2, k);
        }
        break;
    }
    case JSON_ARRAY:
        lua_createtable(L, (int)json_array_size(j), 0);
        for (size_t i = 0; i < json_array_size(j); i++) {
            push_json(L, json_array_get(j, i), depth + 1);
            lua_rawseti(L, -2, (int)i + 1);
        }
        fo_lua_mark_array(L, -1);
        break;
    case JSON_STRING: lua_pushlstring(L, json_string_value(j), json_string_length(j)); break;
    case JSON_INTEGER: lua_pushnumber(L, (lua_Number)json_integer_value(j)); break;
    case JSON_REAL: lua_pushnumber(L, json_real_value(j)); break;
    case JSON_TRUE: lua_pushboolean(L, 1); break;
    case JSON_FALSE: lua_pushboolean(L, 0); break;
    default: lua_pushlightuserdata(L, NULL); break;
    }
}

void fo_lua_push_json(lua_State *L, const json_t *j)
{
    push_json(L, j, 0);
}

/* ---- Lua -> fo_value ------------------------------------------------------------------- */

typedef struct conv {
    lua_State *L;
    fo_arena *a;
    const char *what;
    char err[200];
} conv;

static const char *fail(conv *c, const char *fmt, const char *detail)
{
    char *m;

    snprintf(c->err, sizeof(c->err), fmt, c->what, detail);
    m = fo_arena_strndup(c->a, c->err, strlen(c->err));
    return m ? m : "out of memory";
}

/* True for an array (*n: its length); false for a map (*n: its number of keys) or a
 * table that is neither (*bad_key). */
static bool is_array(lua_State *L, int idx, uint32_t *n, bool *bad_key)
{
    double count = 0, max = 0;
    bool marked = false, numbers = false;

    *bad_key = false;
    if (lua_getmetatable(L, idx)) {
        push_array_mt(L);
        marked = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
    }
    if (marked) {
        *n = (uint32_t)lua_objlen(L, idx);
        return true;
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TNUMBER) {
            double k = lua_tonumber(L, -1);
            if (k < 1 || k != floor(k) || k > (double)UINT32_MAX / 2)
                *bad_key = true;
            else if (k > max)
                max = k;
            numbers = true;
        } else if (lua_type(L, -1) != LUA_TSTRING) {
            *bad_key = true;
        }
        count++;
    }
    if (*bad_key)
        return false;
    /* Every key a number 1..n and n of them: a sequence. */
    if (count > 0 && max == count) {
        *n = (uint32_t)count;
        return true;
    }
    *bad_key = numbers; /* a map with number keys */
    *n = (uint32_t)count;
    return false;
}

static const char *to_value(conv *c, int idx, fo_value *out, int depth);

#define FAST_KEYS 16

/* The common case in one pass: an unmarked table with string keys only, at most
 * FAST_KEYS of them. *done false: it is not such a table (nothing kept; the caller
 * decides the general way); else the result. */
static const char *map_fast(conv *c, int idx, fo_value *out, int depth, bool *done)
{
    lua_State *L = c->L;
    fo_key keys[FAST_KEYS];
    fo_value vals[FAST_KEYS];
    uint32_t n = 0;
    bool ok = true;
    const char *e;

    *done = false;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t klen;
        const char *k;
        if (lua_type(L, -2) != LUA_TSTRING || n == FAST_KEYS) {
            lua_pop(L, 2);
            return NULL;
        }
        *done = true;
        k = lua_tolstring(L, -2, &klen);
        if (!(keys[n] = fo_key_new(c->a, k, klen))) {
            lua_pop(L, 2);
            return "out of memory";
        }
        if ((e = to_value(c, lua_gettop(L), &vals[n], depth + 1))) {
            lua_pop(L, 2);
            return e;
        }
        n++;
        *done = false;
        lua_pop(L, 1);
    }
    *done = true;
    *out = fo_value_map(c->a, n, &ok);
    for (uint32_t i = 0; ok && i < n; i++)
        ok = fo_map_add(out->h.as.map, c->a, keys[i], &vals[i], NULL) == 0;
    return ok ? NULL : "out of memory";
}

static bool marked_array(lua_State *L, int idx)
{
    bool marked = false;

    if (lua_getmetatable(L, idx)) {
        push_array_mt(L);
        marked = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
    }
    return marked;
}

static const char *to_value(conv *c, int idx, fo_value *out, int depth)
{
    lua_State *L = c->L;
    bool ok = true;

    if (depth > FO_RULES_MAX_DEPTH)
        return fail(c, "%s: nested deeper than %s levels", "32");
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN: *out = fo_value_bool(lua_toboolean(L, idx)); return NULL;
    case LUA_TNUMBER: {
        double d = lua_tonumber(L, idx);
        if (d == floor(d) && d > -9223372036854775808.0 && d < 9223372036854775808.0)
            *out = fo_value_int((int64_t)d);
        else
            *out = fo_value_float(d);
        return NULL;
    }
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        *out = fo_value_str(c->a, s, len, &ok);
        return ok ? NULL : "out of memory";
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {
            *out = fo_value_null();
            return NULL;
        }
        return fail(c, "%s: a %s cannot be stored", "userdata");
    case LUA_TTABLE: break;
    default: return fail(c, "%s: a %s cannot be stored", lua_typename(L, lua_type(L, idx)));
    }
    if (!lua_checkstack(L, 4))
        return "out of Lua stack";
    {
        uint32_t n = 0, i = 0;
        bool bad_key, done;
        const char *e;
        if (lua_objlen(L, idx) == 0 && !marked_array(L, idx)) {
            e = map_fast(c, idx, out, depth, &done);
            if (done)
                return e;
        }
        if (is_array(L, idx, &n, &bad_key)) {
            *out = fo_value_array(c->a, n, &ok);
            if (!ok)
                return "out of memory";
            for (i = 0; i < n; i++) {
                lua_rawgeti(L, idx, (int)i + 1);
                e = to_value(c, lua_gettop(L), &out->h.as.items[i], depth + 1);
                lua_pop(L, 1);
                if (e)
                    return e;
            }
            return NULL;
        }
        if (bad_key)
            return fail(c, "%s: map keys must be strings%s", "");
        *out = fo_value_map(c->a, n, &ok);
        if (!ok)
            return "out of memory";
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            size_t klen;
            const char *k = lua_tolstring(L, -2, &klen);
            fo_key key = fo_key_new(c->a, k, klen);
            fo_value v;
            if (!key) {
                lua_pop(L, 2);
                return "out of memory";
            }
            if ((e = to_value(c, lua_gettop(L), &v, depth + 1)) ||
                (fo_map_add(out->h.as.map, c->a, key, &v, NULL) && (e = "out of memory"))) {
                lua_pop(L, 2);
                return e;
            }
            lua_pop(L, 1);
        }
        return NULL;
    }
}

const char *fo_lua_to_value(lua_State *L, int idx, fo_arena *a, const char *what,
                            fo_value *out)
{
    conv c = {L, a, what, {0}};

    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    return to_value(&c, idx, out, 0);
}
