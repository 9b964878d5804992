/* breaker.h - one circuit breaker per target (upstream + model), pure and clock-injected:
 * closed -> open after `failures` consecutive counting failures, or after `rejections` consecutive
 * rejections (auth, not_found: they may be the request's own, see keel_breaker_is_rejection).
 * Who probes an open target is the params' `probe` rule at the time it opened:
 * - background (default): clients always skip it; keel sends probes of its own (probe.c), the
 *   first one a jittered base cooldown after the opening, each failed one followed by the next a
 *   jittered base cooldown later (no doubling: a target that comes back is in service within
 *   about one cooldown, and a broken one costs client requests nothing); a live probe closes it.
 * - request: after the cooldown the first client request is the one half-open probe (everyone
 *   else skips the target); its success closes it, its failure or rejection reopens it with the
 *   cooldown doubled up to max_cooldown.
 * A 429 cools the target for its Retry-After without counting as a failure. The caller
 * serialises calls (one loop); randomness comes in as arguments. */
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

/* who probes an open target (config.h's keel_probe_mode, in the same order) */
enum keel_breaker_probe {
    KEEL_BREAKER_PROBE_BACKGROUND = 0, /* keel itself: keel_breaker_probe_* */
    KEEL_BREAKER_PROBE_REQUEST = 1,    /* the first client request after the cooldown */
};

/* background probes never come closer together than this, whatever the cooldown (`cooldown: 0s`
 * would otherwise probe a refusing target in a tight loop) */
#define KEEL_BREAKER_PROBE_MIN_MS UINT64_C(100)

struct keel_breaker_params {
    uint64_t failures;        /* consecutive counting failures that open it, >= 1 */
    /* consecutive rejections that open it, >= 1. 0 (params built without the field): the same
     * threshold as `failures`, still on its own count. Not 1: one moderated prompt would open the
     * target for everyone, the very thing the rule prevents; not "never": a revoked key would
     * cost every request a round trip forever. So such a caller never opens sooner than before. */
    uint64_t rejections;
    uint64_t cooldown_ms;     /* first cooldown */
    uint64_t max_cooldown_ms; /* cap of the doubling (probe: request only) */
    enum keel_breaker_probe probe; /* the rule for the target's next opening */
};

struct keel_breaker {
    enum keel_breaker_state state;
    uint64_t failures;    /* CLOSED: counting failures other than rejections since the last ok */
    uint64_t rejections;  /* CLOSED: rejections since the last ok; other failures leave it be */
    uint64_t cooldown_ms; /* the cooldown in force; 0 = params' first one */
    uint64_t open_until;  /* OPEN: when the cooldown ends (background: = probe_at once planned) */
    uint64_t cool_until;  /* after a 429: skip until then (any state) */
    int probing;          /* HALF_OPEN: the client probe is out; OPEN: the background probe is */
    int background;       /* OPEN: opened under probe: background: clients skip it until it closes */
    uint64_t probe_at;    /* OPEN, background, not probing: when the next background probe is due;
                           * 0 = not planned yet (keel_breaker_probe_due plans it) */
};

/* what a report did to the breaker, for events and logs */
enum keel_breaker_change {
    KEEL_BREAKER_SAME,
    KEEL_BREAKER_OPENED,   /* closed -> open */
    KEEL_BREAKER_PROBING,  /* open -> half-open (from admit) */
    KEEL_BREAKER_CLOSED_AGAIN, /* half-open -> closed: the probe succeeded */
    KEEL_BREAKER_REOPENED, /* half-open -> open: the probe failed, cooldown doubled */
    KEEL_BREAKER_RECOVERED, /* open -> closed: a background probe found it alive (only
                             * keel_breaker_probe_done says this one) */
};

void keel_breaker_init(struct keel_breaker *b);
/* May a request use the target now? Opened under probe: request, moves open -> half-open when the
 * cooldown is over; opened under probe: background, an open target is always skipped. */
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
/* When the target's next probe may go, keel's or a client's: 0 for the next request (half-open,
 * its probe given back); UINT64_MAX when none is waiting (closed, or a probe is out). */
uint64_t keel_breaker_next_probe(const struct keel_breaker *b);
/* when a skipped target can next be tried (now if it can) */
uint64_t keel_breaker_ready_at(const struct keel_breaker *b, uint64_t now);
const char *keel_breaker_state_name(enum keel_breaker_state s);

/* ---- background probes (opened under probe: background) ----
 * The prober asks each target when its next probe is due, starts it when due, and reports how it
 * ended. rnd is a uniform 64-bit random number: each interval is uniform in [0.9, 1.1] x the
 * params' base cooldown (at least KEEL_BREAKER_PROBE_MIN_MS), so probes from many targets, or
 * many keel instances, do not march in step. */

/* one jittered base cooldown */
uint64_t keel_breaker_probe_interval(const struct keel_breaker_params *p, uint64_t rnd);
/* When the next background probe is due; UINT64_MAX when none is wanted (closed, opened under
 * probe: request, or a probe is out). An unplanned one is planned here: one interval from now. */
uint64_t keel_breaker_probe_due(struct keel_breaker *b, const struct keel_breaker_params *p, uint64_t now,
                                uint64_t rnd);
/* 1: the probe was due and is now out (the caller sends it, then calls keel_breaker_probe_done;
 * clients keep skipping the target meanwhile); 0: not due, nothing changed. */
int keel_breaker_probe_start(struct keel_breaker *b, uint64_t now);
/* The background probe ended with cls. Alive (keel_breaker_probe_alive): closed, counts reset
 * (a 429 also cools it for retry_after_ms), KEEL_BREAKER_RECOVERED. Otherwise it stays open and
 * the next probe is due one interval from now; KEEL_BREAKER_SAME. SAME too when no probe was out. */
enum keel_breaker_change keel_breaker_probe_done(struct keel_breaker *b, const struct keel_breaker_params *p,
                                                 enum keel_class cls, uint64_t retry_after_ms, uint64_t now,
                                                 uint64_t rnd);
/* Does a probe that ended with cls show the target alive? ok; rate_limited (an answer, "slow
 * down"); and the client-side 4xx classes (bad_request, context_length, invalid_request): the
 * server read the request and answered it, which is all a probe asks. Its body is keel's, and a
 * target that refuses it (a minimum max_tokens, a parameter it does not take) serves clients'
 * requests well: holding that against it would keep a healthy target out of service for good. */
int keel_breaker_probe_alive(enum keel_class cls);

/* ---- shared state (state: redis): another instance's view of the same target ----
 * Another instance opened the target until `until` (this loop's clock) with `cooldown`: a closed
 * breaker here opens too (OPENED; its background probe planned as after any opening, whoever
 * claims it probes), an open one keeps the later end. Another instance closed it: an open one
 * here closes (RECOVERED) unless its own probe is out. cool_until: the later 429 cool-down
 * wins. Returns what changed here. */
enum keel_breaker_change keel_breaker_shared_open(struct keel_breaker *b, const struct keel_breaker_params *p,
                                                  uint64_t until, uint64_t cooldown, uint64_t now);
enum keel_breaker_change keel_breaker_shared_close(struct keel_breaker *b);
void keel_breaker_shared_cool(struct keel_breaker *b, uint64_t cool_until);

#endif
