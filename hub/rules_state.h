/* rules_state.h - inside the rules: the Lua state that rules.c loads and runs. Private to
 * rules.c and rules_state.c (nothing else includes it).
 *
 * The state's allocator keeps small freed blocks for reuse and refuses to grow past the
 * memory cap while a rule runs (`enforce`); a count hook every HOOK_EVERY instructions
 * checks the instruction and time budgets and stops the rule with a message naming the
 * line; the sandbox is the globals a rule sees (E, cleared after every call, __index G,
 * the file's own top-level globals, __index B, the allowed part of the base libraries)
 * and run_command's upvalues (the interned field names and the read-only ctx). */
#ifndef FO_RULES_STATE_H
#define FO_RULES_STATE_H

#include <lua.h>
#include <stdbool.h>
#include <stdint.h>

#include "hub/rules.h"

#define HOOK_EVERY 1000   /* instructions between two calls of the count hook */

/* Small blocks the Lua state freed, kept for its next allocations (most of what a command
 * allocates: tables, their parts, short strings), in size classes of SMALL_STEP bytes. */
#define SMALL_STEP 16
#define SMALL_MAX 512
#define SMALL_CLASSES (SMALL_MAX / SMALL_STEP)
#define SMALL_KEEP 256 /* blocks kept per class */

typedef struct small_cache {
    void *head[SMALL_CLASSES];
    uint32_t count[SMALL_CLASSES];
} small_cache;

typedef struct rule {
    char *pattern;
    char *label; /* rule 2 "stamp" (rules.lua:4) */
    int fn_ref;
} rule;

struct fo_rules {
    lua_State *L;
    fo_rules_limits lim;
    size_t used;          /* bytes held by the state */
    small_cache cache;
    bool enforce;         /* the memory cap is enforced (while a rule runs) */
    bool abort;           /* a budget stop is under way: pcall inside the rule rethrows */
    bool mem_hit;
    char abort_msg[300];
    uint64_t ticks;       /* hook calls during this command */
    uint64_t deadline_ns;
    int env_ref, run_ref;
    lua_CFunction run;    /* run_command, wrapped into run_ref by the sandbox */
    uint64_t serial;      /* batches seen (ctx's fields are set once per batch) */
    const fo_value *doc;  /* the document of the command being intercepted */
    fo_arena scratch;     /* keys for ctx.get */
    uint32_t n;
    rule *rules;
    char *path;
    char name[64];        /* the file's base name, as messages show it */
};

/* run_command's upvalues: names pushed without hashing them again on every command. */
enum { UP_ACTION = 1, UP_PATH, UP_PROPS, UP_ID, UP_MODEL, UP_NOW, UP_IDENTITY, UP_CREATE,
       UP_UPDATE, UP_DELETE, UP_FIELDS, UP_CTX, UP_COUNT = UP_CTX };

/* Creates R->L with the allocator, the panic handler and the JIT off, and builds the
 * sandbox; `run` becomes R->run_ref (a closure over the UP_* upvalues). 0, or -1 with a
 * message in err. */
int fo_rules_state_open(fo_rules *R, lua_CFunction run, char *err, size_t errlen);
/* Closes R->L and frees the allocator's cached blocks. */
void fo_rules_state_close(fo_rules *R);
fo_rules *fo_rules_of(lua_State *L);
/* Arms the budget for one command (scale 1) or the file's top level (scale 10). */
void fo_rules_start_budget(lua_State *L, fo_rules *R, uint64_t scale);
/* The error at the top as text (a rule may throw any value). */
const char *fo_rules_error_text(lua_State *L);

#endif
