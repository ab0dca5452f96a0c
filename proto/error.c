#include "proto/error.h"

#include <string.h>

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);

    memcpy(dst, src, n);
    dst[n] = '\0';
}

void fo_err_clear(fo_err_info *err)
{
    if (err) {
        err->code = 0;
        err->pos = 0;
        err->path[0] = '\0';
        err->msg[0] = '\0';
    }
}

int fo_err_set(fo_err_info *err, int code, size_t pos, const char *path, const char *msg)
{
    if (err) {
        err->code = code;
        err->pos = pos;
        copy_str(err->path, sizeof(err->path), path);
        copy_str(err->msg, sizeof(err->msg), msg);
    }
    return code;
}

const char *fo_strerror(int code)
{
    switch (code) {
    case FO_OK: return "FO_OK";
    case FO_ENOMEM: return "FO_ENOMEM";
    case FO_EINVAL: return "FO_EINVAL";
    case FO_EPROTO: return "FO_EPROTO";
    case FO_EAGAIN: return "FO_EAGAIN";
    case FO_ELIMIT: return "FO_ELIMIT";
    case FO_ESTATE: return "FO_ESTATE";
    case FO_EGAP: return "FO_EGAP";
    case FO_EFAILED: return "FO_EFAILED";
    default: return "FO_E?";
    }
}
