/* router.h - the plan over one model's targets for one request: after each failed attempt,
 * whether to retry the same target (after a backoff or a Retry-After), move to the next one,
 * return the upstream's answer as the client's own fault, or give up with a status. Every move
 * to a target asks an injected admit callback (the breakers), so open targets are skipped at no
 * cost. Pure: time, randomness and admission come in as arguments. */
#ifndef KEEL_ROUTER_H
#define KEEL_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "core/breaker.h"
#include "core/classify.h"

#define KEEL_BACKOFF_CAP_MS UINT64_C(30000)

struct keel_route_target {
    uint64_t context_window; /* tokens; 0 = not declared */
    uint64_t same_target;    /* extra tries on server_error/overloaded */
    uint64_t backoff_ms;     /* base of the full-jitter exponential backoff */
    uint64_t max_wait_ms;    /* the longest Retry-After worth waiting for */
    int protocol;            /* which protocol the target speaks (any id; equal ids: the same) */
    int continuation;        /* it can finish a committed stream from a prefill (continuation: prefill) */
};

/* may the request use target i now? (NULL: always) */
typedef enum keel_admit (*keel_router_admit_cb)(void *ctx, size_t target, uint64_t now);
/* target i was skipped (its breaker is open or it is cooling) */
typedef void (*keel_router_skip_cb)(void *ctx, size_t target);

struct keel_router {
    const struct keel_route_target *targets; /* borrowed */
    size_t n;
    keel_router_admit_cb admit;
    keel_router_skip_cb on_skip;
    void *ctx;
    size_t cur;               /* the target being tried */
    uint64_t retries;         /* same-target retries spent on cur */
    int waited;               /* cur already had its Retry-After wait */
    size_t attempts;          /* attempts that ended (all targets) */
    size_t rate_limited;      /* of those, how many were rate_limited */
    uint64_t min_retry_after; /* smallest Retry-After seen, ms; 0 = none */
    size_t skipped;           /* targets skipped by admission */
};

enum keel_step_kind {
    KEEL_STEP_TRY,     /* try `target` now (admitted; `probe` if as the breaker's probe) */
    KEEL_STEP_WAIT,    /* wait `wait_ms`, then call keel_router_resume (same target again) */
    KEEL_STEP_DONE,    /* the attempt succeeded: relay it */
    KEEL_STEP_RETURN,  /* the client's own fault: return the upstream's answer as is */
    KEEL_STEP_GIVE_UP, /* no target left: answer `status`: 502, 429 (with retry_after_ms), or
                        * 503 when every target was skipped and none tried */
};

struct keel_step {
    enum keel_step_kind kind;
    size_t target;
    int probe;
    uint64_t wait_ms;
    int status;
    uint64_t retry_after_ms;
    int local; /* GIVE_UP because of keel's own failure (local_error), not the targets' */
};

void keel_router_init(struct keel_router *r, const struct keel_route_target *targets, size_t n,
                      keel_router_admit_cb admit, keel_router_skip_cb on_skip, void *ctx);
/* the first target to try */
struct keel_step keel_router_start(struct keel_router *r, uint64_t now);
/* after a WAIT: the same target again if it is still admitted, else the next one */
struct keel_step keel_router_resume(struct keel_router *r, uint64_t now);

/* After an attempt on r->cur ended with `cls`. retry_after_ms is the upstream's Retry-After
 * (0 = none); a wait is only planned if now + wait stays before deadline. rnd is uniform. */
struct keel_step keel_router_after(struct keel_router *r, enum keel_class cls, uint64_t retry_after_ms,
                                   uint64_t now, uint64_t deadline, uint64_t rnd);

/* whether a committed stream that failed with cls may be finished by a continuation: the
 * upstream broke it (reset, stall_timeout, stream_error); not the client leaving, not a spent
 * budget, not keel's own limits */
int keel_router_continuable(enum keel_class cls);

/* After a committed stream broke, or a continuation attempt on r->cur ended with cls before its
 * content: the next target after cur that declares continuation and admission admits (TRY; one
 * open is skipped as keel_router_after skips, one without the declaration is passed over as if
 * absent); RETURN when cls is the client's own (a refused prefill: no other target is asked);
 * GIVE_UP (502) when none is left. No retry of the same target: the client is waiting mid-answer. */
struct keel_step keel_router_continue(struct keel_router *r, enum keel_class cls, uint64_t now);

/* full-jitter exponential backoff before retry number `retry` (1-based) */
uint64_t keel_backoff_ms(uint64_t base_ms, uint64_t retry, uint64_t rnd);

#endif
