/* backend.c - managed backend policy; see backend.h. */
#include "core/backend.h"

int keel_backend_heals(enum keel_class cls)
{
    return cls == KEEL_CLASS_CONNECT_ERROR || cls == KEEL_CLASS_RESET;
}

uint64_t keel_backend_backoff_ms(uint64_t crashes)
{
    if (crashes == 0)
        return 0;
    uint64_t ms = KEEL_BACKEND_BACKOFF_BASE_MS;
    for (uint64_t i = 1; i < crashes && ms < KEEL_BACKEND_BACKOFF_CAP_MS; i++)
        ms *= 2;
    return ms < KEEL_BACKEND_BACKOFF_CAP_MS ? ms : KEEL_BACKEND_BACKOFF_CAP_MS;
}
