/* rules.h - server-side rules: interceptors written in Lua (LuaJIT 2.1), loaded from the
 * file given by --interceptors. The file returns a list of rules
 *
 *     return {
 *       { name = "stamp", models = "todos:*",           -- fnmatch pattern, as --auth
 *         intercept = function(cmd, ctx) ... end },
 *     }
 *
 * and the master calls them through fo_rules_intercept (an fo_interceptor, batch.h) on
 * every command of a flushed batch, in file order, for the rules whose pattern matches the
 * model. A rule returns nothing (accept), `false, "message"` (reject: the command fails
 * with that message in the ApplyResult's errors) or a table (the command's new props; later
 * rules see them). The first rejection stops. The reference has one interceptor; this is a
 * chain of them whose combined answer is the reference's (accept, rejection or newProps).
 *
 * One Lua state per fo_rules, used on the loop thread only. Each rule runs in a sandbox
 * (no io, os, require, package, load*, dofile, debug, ffi, jit, string.dump, coroutine,
 * math.random; collectgarbage("count") only); what a rule writes into a global is gone
 * after the call. The JIT is off in this state: LuaJIT does not call count hooks from
 * compiled traces, and the instruction budget relies on them. Per command (all its rules
 * together) a budget of Lua instructions and a wall-clock bound; per state a memory cap
 * (a lua_Alloc that refuses to grow past it: LuaJIT 2.1 on x64 is built with GC64 in
 * Debian 12, where lua_newstate accepts a custom allocator). Exceeding one of them, or a
 * runtime error, rejects that command with a message that names the rule and the line;
 * pcall inside a rule cannot catch these stops. */
#ifndef FO_RULES_H
#define FO_RULES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/batch.h"
#include "proto/buf.h"

typedef struct fo_rules_limits {
    uint64_t instructions; /* Lua VM instructions per command (counted in steps of 1000) */
    uint32_t time_ms;      /* wall clock per command: a safety net for slow C calls */
    size_t memory;         /* bytes the Lua state may hold */
} fo_rules_limits;

/* 1,000,000 instructions (about 2 ms of the interpreter), 10 ms, 32 MiB. */
void fo_rules_limits_default(fo_rules_limits *l);

typedef struct fo_rules fo_rules;

/* Loads and checks the file: it must return a list of tables with a string `models` and a
 * function `intercept` (and an optional string `name`). NULL with a message in err (file,
 * line and what is wrong) otherwise. */
fo_rules *fo_rules_load(const char *path, const fo_rules_limits *lim, char *err, size_t errlen);
void fo_rules_free(fo_rules *r); /* NULL is a no-op */
uint32_t fo_rules_count(const fo_rules *r);
const char *fo_rules_path(const fo_rules *r);
/* Bytes the Lua state holds now. */
size_t fo_rules_memory(const fo_rules *r);

/* What the rules did to one command of a batch (kept for the audit). */
typedef struct fo_rules_action {
    uint32_t index;          /* the command's position in the batch */
    fo_command original;     /* as the rules got it (after path mapping); borrowed */
    fo_key id;               /* its proposed createdId, or FO_KEY_NONE */
    bool rejected;           /* else rewritten */
    const char *message;     /* rejected: why (in the apply arena) */
    const fo_value *props;   /* rewritten: the props applied */
    const char *rules;       /* the rules that acted, e.g. `rule 2 "stamp" (rules.lua:4)` */
} fo_rules_action;

/* The context of one batch: pass it as the `context` of fo_master_apply (or
 * fo_batch_apply) with fo_rules_interceptor. Actions are allocated in the apply arena. */
typedef struct fo_rules_batch {
    fo_rules *rules;         /* NULL: no rules (every command accepted) */
    const char *model;
    const json_t *identity;  /* the flusher's claims, or NULL */
    int64_t now_ms;          /* ms since the epoch, once per batch */
    fo_rules_action *actions;
    uint32_t nactions, cap;
    /* private */
    uint32_t ncalls;         /* commands seen */
    int32_t nmatch;          /* -1: not computed yet */
    uint16_t *match;         /* indices of the rules that apply to the model */
    uint64_t serial;         /* which batch the state's ctx table was built for */
} fo_rules_batch;

void fo_rules_batch_init(fo_rules_batch *b, fo_rules *r, const char *model,
                         const json_t *identity, int64_t now_ms);

/* The interceptor (context: an fo_rules_batch). Returns 0 or FO_ENOMEM. */
int fo_rules_intercept(void *data, const fo_value *document, const fo_command *cmd,
                       void *context, fo_arena *arena, fo_interception *out);
extern const fo_interceptor fo_rules_interceptor;

/* Appends the batch's actions as a JSON array: [{index, command, id?, outcome:
 * "rejected" | "rewritten", message?, props?, rules}]. 0 or FO_ENOMEM. */
int fo_rules_write_actions(const fo_rules_batch *b, fo_buf *out);

/* Milliseconds since the epoch (CLOCK_REALTIME). */
int64_t fo_rules_now_ms(void);

#endif
