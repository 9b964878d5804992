/* deadline.c - deadline arithmetic; see deadline.h. */
#include "core/deadline.h"

uint64_t keel_deadline_total(uint64_t start, uint64_t total_ms, uint64_t client_ms)
{
    uint64_t ms = client_ms > 0 && client_ms < total_ms ? client_ms : total_ms;
    return start + ms;
}

uint64_t keel_deadline_next(const struct keel_deadline *d, enum keel_deadline_kind *kind)
{
    uint64_t at;
    enum keel_deadline_kind k;
    if (d->progress_at == 0) {
        at = d->attempt_at + d->first_byte_ms;
        k = KEEL_DL_FIRST_BYTE;
    } else {
        at = d->progress_at + d->stall_ms;
        k = KEEL_DL_STALL;
    }
    if (d->total_at <= at) {
        at = d->total_at;
        k = KEEL_DL_TOTAL;
    }
    *kind = k;
    return at;
}

int keel_deadline_expired(const struct keel_deadline *d, uint64_t now)
{
    enum keel_deadline_kind kind;
    uint64_t at = keel_deadline_next(d, &kind);
    return now >= at ? (int)kind : -1;
}
