/* breaker.h - one circuit breaker per target (upstream + model), pure and clock-injected:
 * closed -> open after `failures` consecutive counting failures, or after `rejections` consecutive
 * rejections (auth, not_found: they may be the request's own, see keel_breaker_is_rejection) ->
 * after the cooldown exactly one half-open probe (everyone else skips the target) -> the probe's
 * success closes it, its failure or rejection reopens it with the cooldown doubled up to
 * max_cooldown. A 429 cools the target for its Retry-After without counting as a failure. The
 * caller serialises calls (one loop). */
#ifndef KEEL_BREAKER_H
#define KEEL_BREAKER_H

#include <stdint.h>

#include "core/classify.h"

enum keel_breaker_state {
    KEEL_BREAKER_CLOSED = 0, /* the values are keel_breaker_state's metric values */
    KEEL_BREAKER_HALF_OPEN = 1,
    KEEL_BREAKER_OPEN = 2,
};

enum keel_admit {
    KEEL_ADMIT_ALLOW, /* use the target */
    KEEL_ADMIT_PROBE, /* use it as the one half-open probe: report with was_probe */
    KEEL_ADMIT_SKIP,  /* open, probing, or cooling after a 429: skip at no cost */
};

struct keel_breaker_params {
    uint64_t failures;        /* consecutive counting failures that open it, >= 1 */
    /* consecutive rejections that open it, >= 1. 0 (params built without the field): the same
     * threshold as `failures`, still on its own count. Not 1: one moderated prompt would open the
     * target for everyone, the very thing the rule prevents; not "never": a revoked key would
     * cost every request a round trip forever. So such a caller never opens sooner than before. */
    uint64_t rejections;
    uint64_t cooldown_ms;     /* first cooldown */
    uint64_t max_cooldown_ms; /* cap of the doubling */
};

struct keel_breaker {
    enum keel_breaker_state state;
    uint64_t failures;    /* CLOSED: counting failures other than rejections since the last ok */
    uint64_t rejections;  /* CLOSED: rejections since the last ok; other failures leave it be */
    uint64_t cooldown_ms; /* the cooldown in force; 0 = params' first one */
    uint64_t open_until;  /* OPEN: when the cooldown ends */
    uint64_t cool_until;  /* after a 429: skip until then (any state) */
    int probing;          /* HALF_OPEN: the probe is out */
};

/* what a report did to the breaker, for events and logs */
enum keel_breaker_change {
    KEEL_BREAKER_SAME,
    KEEL_BREAKER_OPENED,   /* closed -> open */
    KEEL_BREAKER_PROBING,  /* open -> half-open (from admit) */
    KEEL_BREAKER_CLOSED_AGAIN, /* half-open -> closed: the probe succeeded */
    KEEL_BREAKER_REOPENED, /* half-open -> open: the probe failed, cooldown doubled */
};

void keel_breaker_init(struct keel_breaker *b);
/* May a request use the target now? Moves open -> half-open when the cooldown is over. */
enum keel_admit keel_breaker_admit(struct keel_breaker *b, uint64_t now, enum keel_breaker_change *change);
/* An attempt on the target ended with cls. was_probe: it was admitted as the probe. */
enum keel_breaker_change keel_breaker_report(struct keel_breaker *b, const struct keel_breaker_params *p,
                                             enum keel_class cls, int was_probe, uint64_t retry_after_ms,
                                             uint64_t now);
/* a probe admitted but never sent (the request ran out of time first): the next request probes */
void keel_breaker_release(struct keel_breaker *b);
/* does the class count as a failure of the target? (DESIGN.md "counts for breaker?") */
int keel_breaker_counts(enum keel_class cls);
/* Is the counting class a rejection (auth, not_found)? A provider may answer 403 to one flagged
 * prompt or 404 to one request, and a rejection costs the client a fast round trip, not a
 * timeout: rejections open the target only `rejections` in a row (no ok between), apart from
 * `failures`, so a few clients' requests cannot open it for everyone while a revoked key or a
 * removed model still does. */
int keel_breaker_is_rejection(enum keel_class cls);
/* when a skipped target can next be tried (now if it can) */
uint64_t keel_breaker_ready_at(const struct keel_breaker *b, uint64_t now);
const char *keel_breaker_state_name(enum keel_breaker_state s);

#endif
