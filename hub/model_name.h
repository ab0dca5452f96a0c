/* model_name.h - the rule for model names, in one place for the store, the HTTP routes and the
 * fuzzers: 1..FO_MODEL_NAME_MAX bytes of [A-Za-z0-9._:-]. A header of its own (inline, no
 * library) so that hub/route.c, which the fuzz targets build without the store, shares it
 * with fo_store_model_name_valid instead of copying it. */
#ifndef FO_MODEL_NAME_H
#define FO_MODEL_NAME_H

#include <stdbool.h>
#include <stddef.h>

#define FO_MODEL_NAME_MAX 200

/* True when name[0..len) is a valid model name; NULL or len 0 is not. */
static inline bool fo_model_name_valid(const char *name, size_t len)
{
    if (!name || len == 0 || len > FO_MODEL_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

#endif
