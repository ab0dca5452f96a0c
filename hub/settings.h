/* settings.h - a table-driven settings engine: one row per setting drives its command-line
 * flag (getopt_long), its `--help` lines, its environment variable, its INI key and its
 * `--print-config` line. Generic over the struct it fills (the row holds a field offset);
 * hub/config.c holds the hub's table and the order of the sources.
 *
 * Names: the row's `name` is the flag without "--" (`memory-budget`), the INI key as is,
 * and the environment variable PREFIX + the name upper-cased with '-' -> '_'
 * (FLUSHOUT_MEMORY_BUDGET).
 *
 * INI files are read with libinih (Debian's libinih-dev, as built there: `;` and `#` start
 * comment lines, ` ;` starts an inline comment, `key: value` is accepted as `key = value`, a
 * line is at most FO_SETTINGS_MAX_LINE bytes). A longer value continues on the next lines,
 * indented; they are joined without separator (leading and trailing blanks of each line
 * dropped). inih has no quoting: a value cannot start or end with blanks nor hold a blank
 * followed by ';' (an inline comment). Keys go in the global section: sections are refused,
 * so are unknown keys, a key set twice and over-long lines. */
#ifndef FO_SETTINGS_H
#define FO_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum fo_setting_type {
    FO_SET_STRING, /* char[size] at offset; `choices` (NULL-terminated) restricts the values */
    FO_SET_UINT,   /* uint32_t or uint64_t (by size) at offset, decimal, >= min */
    FO_SET_SIZE,   /* size_t at offset, "64M", "1G", "4096" (fo_parse_size), >= min */
    FO_SET_BOOL,   /* bool at offset: true/false, yes/no, on/off, 1/0; a flag without value */
    FO_SET_ENUM,   /* int at offset: the index of the value in `choices` (case-insensitive) */
    FO_SET_ACTION, /* command line only, no field: --help, --config FILE, ... (the caller
                    * handles it; `arg` non-NULL when it takes a value) */
} fo_setting_type;

enum {
    FO_SET_SECRET = 1u,   /* --print-config writes FO_SETTINGS_MASK instead of the value,
                           * and error messages do not quote it */
    FO_SET_NONEMPTY = 2u, /* STRING: an empty value is refused everywhere (not only as a flag) */
};

#define FO_SETTINGS_MASK "<secret>"
#define FO_SETTINGS_MAX_LINE 199   /* libinih's INI_MAX_LINE (200) less the newline */
#define FO_SETTINGS_MAX_VALUE 4096 /* a value, continuation lines included */

typedef struct fo_setting {
    const char *name; /* flag, INI key and (upper-cased) environment variable */
    fo_setting_type type;
    size_t offset, size;        /* the field in the target struct: FO_SETTING_FIELD(type, field) */
    const char *def;            /* default as text, parsed like any value; NULL: zero/empty */
    const char *arg;            /* --help's placeholder (N, SIZE, FILE); NULL for BOOL */
    const char *help;           /* --help text: lines separated by '\n', indented by the engine */
    uint64_t min;               /* UINT, SIZE: the smallest value accepted */
    const char *const *choices; /* ENUM, STRING: allowed values, NULL-terminated */
    unsigned flags;             /* FO_SET_SECRET, FO_SET_NONEMPTY */
    /* Optional custom parse, used instead of the type's: 0, or -1 with `why` filled (or left
     * empty: "bad value for X: 'V'" is printed then). */
    int (*parse)(void *target, const char *value, char *why, size_t why_len);
    /* Optional custom text form, used instead of the type's (must parse back). */
    void (*format)(const void *target, char *buf, size_t len);
} fo_setting;

#define FO_SETTING_FIELD(T, f) offsetof(T, f), sizeof(((T *)0)->f)

/* Where a value came from (--print-config writes it as a comment). */
typedef enum fo_setting_source {
    FO_SRC_DEFAULT = 0,
    FO_SRC_FILE,
    FO_SRC_ENV,
    FO_SRC_FLAG,
} fo_setting_source;

typedef struct fo_settings {
    const fo_setting *rows;
    size_t n;
    const char *prog;       /* "flushout-hub": prefix of error messages */
    const char *env_prefix; /* "FLUSHOUT_" */
} fo_settings;

/* "64M", "1G", "4096" -> bytes; -1 when malformed. */
long long fo_parse_size(const char *s);

/* Sets every non-ACTION row to its default. Returns 0, or -1 when a default does not parse
 * (a bug in the table; the message goes to stderr). */
int fo_settings_default(const fo_settings *s, void *target);

/* Parses `value` into row `r` of `target`. `label` names the source in the error message
 * written to `err` ("--history", "FLUSHOUT_HISTORY", "hub.ini:3: history"). 0 or -1. */
int fo_settings_set(const fo_settings *s, const fo_setting *r, void *target, const char *value,
                    const char *label, char *err, size_t err_len);

/* The row called `name` (exact), or NULL. */
const fo_setting *fo_settings_find(const fo_settings *s, const char *name);

/* Reads the INI file `path` into `target`, marking each row read as FO_SRC_FILE in `src`
 * (n entries, may be NULL). Returns 0, or -1 with a message in `err` naming the file and the
 * line: the file cannot be read, a line is not `key = value`, an unknown key, a section, a
 * key set twice, a bad value. */
int fo_settings_load_file(const fo_settings *s, void *target, const char *path,
                          fo_setting_source *src, char *err, size_t err_len);

/* Applies every set and non-empty PREFIX+NAME environment variable (an empty one counts as
 * unset), marking FO_SRC_ENV. Returns 0, or -1 with `err` naming the variable. */
int fo_settings_load_env(const fo_settings *s, void *target, fo_setting_source *src, char *err,
                         size_t err_len);

/* The environment variable of `r` into buf ("FLUSHOUT_MEMORY_BUDGET"). */
void fo_settings_env_name(const fo_settings *s, const fo_setting *r, char *buf, size_t len);

/* The text form of the row's value (what fo_settings_set parses back); secrets unmasked. */
void fo_settings_format(const fo_setting *r, const void *target, char *buf, size_t len);

/* Writes every non-ACTION row as `name = value`, an INI file that fo_settings_load_file reads
 * back to the same values, each preceded by a comment saying where it came from (src may be
 * NULL) and secrets written as FO_SETTINGS_MASK. `file` names the config file in those
 * comments (may be NULL). */
void fo_settings_print(const fo_settings *s, const void *target, const fo_setting_source *src,
                       const char *file, FILE *out);

/* The --help lines of every row: `  --name ARG` padded to column 25, then the help text. */
void fo_settings_help(const fo_settings *s, FILE *out);

#endif
