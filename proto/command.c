#include "proto/command.h"

#include <string.h>

#include "proto/error.h"

const char *fo_action_name(fo_action a)
{
    switch (a) {
    case FO_CREATE: return "create";
    case FO_UPDATE: return "update";
    case FO_DELETE: return "delete";
    default: return "none";
    }
}

fo_action fo_action_parse(const char *s, size_t len)
{
    if (len == 6 && memcmp(s, "create", 6) == 0)
        return FO_CREATE;
    if (len == 6 && memcmp(s, "update", 6) == 0)
        return FO_UPDATE;
    /* "detete" is how the reference library spells its Delete enum value. */
    if (len == 6 && (memcmp(s, "delete", 6) == 0 || memcmp(s, "detete", 6) == 0))
        return FO_DELETE;
    return FO_ACTION_NONE;
}

char *fo_path_join(fo_arena *a, fo_path p, size_t *len)
{
    size_t total = 0, off = 0;
    uint32_t i;
    char buf[20], *out;

    for (i = 0; i < p.len; i++) {
        size_t l;
        fo_key_str(p.seg[i], buf, &l);
        total += l + (i ? 1 : 0);
    }
    if (!(out = fo_arena_alloc(a, total + 1)))
        return NULL;
    for (i = 0; i < p.len; i++) {
        size_t l;
        const char *s = fo_key_str(p.seg[i], buf, &l);
        if (i)
            out[off++] = ',';
        memcpy(out + off, s, l);
        off += l;
    }
    out[off] = '\0';
    if (len)
        *len = off;
    return out;
}

bool fo_path_eq(fo_path a, fo_path b)
{
    uint32_t i;

    if (a.len != b.len)
        return false;
    for (i = 0; i < a.len; i++)
        if (!fo_key_eq(a.seg[i], b.seg[i]))
            return false;
    return true;
}

int fo_path_copy(fo_arena *a, fo_path p, fo_path *out)
{
    fo_key *seg = NULL;
    uint32_t i;

    if (p.len && !(seg = fo_arena_alloc(a, (size_t)p.len * sizeof(fo_key))))
        return FO_ENOMEM;
    for (i = 0; i < p.len; i++) {
        uint64_t n;
        size_t l;
        char buf[20];
        const char *s;

        if (fo_key_is_num(p.seg[i], &n)) {
            seg[i] = p.seg[i];
            continue;
        }
        s = fo_key_str(p.seg[i], buf, &l);
        if (!(seg[i] = fo_key_new(a, s, l)))
            return FO_ENOMEM;
    }
    out->seg = seg;
    out->len = p.len;
    return 0;
}

static int copy_opt_value(fo_arena *a, const fo_value *v, const fo_value **out)
{
    fo_value *c;

    *out = NULL;
    if (!v)
        return 0;
    if (!(c = fo_arena_alloc(a, sizeof(*c))))
        return FO_ENOMEM;
    if (fo_value_copy(a, v, c, NULL, NULL))
        return FO_ENOMEM;
    *out = c;
    return 0;
}

int fo_command_copy(fo_arena *a, const fo_command *c, fo_command *out)
{
    fo_command r = *c;

    if (fo_path_copy(a, c->path, &r.path) || copy_opt_value(a, c->props, &r.props) ||
        copy_opt_value(a, c->parent_default, &r.parent_default))
        return FO_ENOMEM;
    *out = r;
    return 0;
}
