/* rules_value.h - values between Flushout (fo_value), jansson (identities) and Lua, for
 * the rules' sandbox (rules.c). Private to rules.c and its tests.
 *
 * Flushout -> Lua: maps are tables with string keys; arrays are sequences that carry the
 * array metatable (so that an empty one stays an array); JSON null is the sandbox's
 * `null` (a light userdata); numbers are Lua numbers (doubles: integers past 2^53 lose
 * precision).
 * Lua -> Flushout: a table with the array metatable, or whose keys are exactly 1..n
 * (n >= 1), is an array; any other table is a map and its keys must be strings; an
 * integral number in (-2^63, 2^63) is an integer, any other number a float; `null` is
 * null; functions, userdata and threads cannot be stored. */
#ifndef FO_RULES_VALUE_H
#define FO_RULES_VALUE_H

#include <jansson.h>
#include <lua.h>

#include "proto/value.h"

/* Nesting bound both ways. */
#define FO_RULES_MAX_DEPTH 32

/* Creates the array metatable (once per state, in the registry). */
void fo_lua_value_setup(lua_State *L);
/* Pushes a copy of v (raises a Lua error on out-of-memory or too deep). */
void fo_lua_push_value(lua_State *L, const fo_value *v);
/* The same for a command's props: room for a few more keys (what rules add). */
void fo_lua_push_props(lua_State *L, const fo_value *v);
/* Pushes a copy of a JSON value (claims). */
void fo_lua_push_json(lua_State *L, const json_t *j);
/* Converts the value at idx into `a`. NULL on success, else what is wrong (static text or
 * in `a`); `what` names it in the message ("props"). Does not raise. */
const char *fo_lua_to_value(lua_State *L, int idx, fo_arena *a, const char *what,
                            fo_value *out);
/* Marks the table at idx as an array (the sandbox's `array(t)`). */
void fo_lua_mark_array(lua_State *L, int idx);

#endif
