#include "proto/error.h"

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
