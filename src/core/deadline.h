/* deadline.h - the deadlines of one attempt inside one client request, as pure arithmetic on
 * injected times (ms, any monotonic origin). request.c arms one timer at keel_deadline_next and,
 * when it fires, asks again: content progress only moves progress_at, never a timer. */
#ifndef KEEL_DEADLINE_H
#define KEEL_DEADLINE_H

#include <stdint.h>

enum keel_deadline_kind {
    KEEL_DL_FIRST_BYTE, /* no content progress within first_byte of the attempt's start */
    KEEL_DL_STALL,      /* no content progress within stall of the last one */
    KEEL_DL_TOTAL,      /* the client request's whole budget is spent */
};

struct keel_deadline {
    uint64_t total_at;      /* absolute end of the request's budget */
    uint64_t attempt_at;    /* when the attempt under way started */
    uint64_t progress_at;   /* the attempt's last content progress; 0 = none yet */
    uint64_t first_byte_ms; /* the target's first_byte */
    uint64_t stall_ms;      /* the target's stall */
};

/* Absolute end of a request's budget: the target's total, shortened (never lengthened) by
 * the client's own budget when it gave one (client_ms > 0). */
uint64_t keel_deadline_total(uint64_t start, uint64_t total_ms, uint64_t client_ms);

/* The instant the next deadline falls, and which one (the earliest; TOTAL on a tie). */
uint64_t keel_deadline_next(const struct keel_deadline *d, enum keel_deadline_kind *kind);

/* The kind that has expired at `now`, or -1 if none has. */
int keel_deadline_expired(const struct keel_deadline *d, uint64_t now);

#endif
