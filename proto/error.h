/* error.h - error codes shared by every fo_ library.
 *
 * Functions return int: 0 (or a count) on success, a negative FO_E* on error. The
 * libraries never log and never abort on bad input or on out-of-memory. */
#ifndef FO_ERROR_H
#define FO_ERROR_H

#include <stddef.h>

enum {
    FO_OK = 0,
    FO_ENOMEM = -1,   /* an allocation failed; nothing was changed */
    FO_EINVAL = -2,   /* an argument broke the function's contract */
    FO_EPROTO = -3,   /* malformed input (frame, JSON); see fo_err_info */
    FO_EAGAIN = -4,   /* input ends too early: a proper prefix of something valid */
    FO_ELIMIT = -5,   /* input exceeds a configured bound (size, depth, count) */
    FO_ESTATE = -6,   /* the object is not in a state that allows the call */
    FO_EGAP = -7,     /* a diff does not start where the receiver stands */
    FO_EFAILED = -8,  /* a command or diff could not be applied */
};

/* Where and why decoding failed. `msg` points into static storage or into `buf`, `path`
 * names the offending field (`batch.completions[3].command.path[1]`). */
typedef struct fo_err_info {
    int code;
    size_t pos;        /* byte offset in the input, when known */
    char path[128];    /* field path, NUL-terminated, may be empty */
    char msg[128];     /* human-readable reason, NUL-terminated */
} fo_err_info;

/* Empties *err (NULL is a no-op). */
void fo_err_clear(fo_err_info *err);
/* Fills *err (NULL is a no-op), cutting path and msg to fit; returns code. */
int fo_err_set(fo_err_info *err, int code, size_t pos, const char *path, const char *msg);

/* Static name of an error code ("FO_ENOMEM", ...). */
const char *fo_strerror(int code);

#endif
