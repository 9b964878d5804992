/* router.c - the per-request plan over a model's targets; see router.h and DESIGN.md's failure
 * table ("same target again?", "next target?"). */
#include "core/router.h"

void keel_router_init(struct keel_router *r, const struct keel_route_target *targets, size_t n,
                      keel_router_admit_cb admit, keel_router_skip_cb on_skip, void *ctx)
{
    *r = (struct keel_router){.targets = targets, .n = n, .admit = admit, .on_skip = on_skip, .ctx = ctx};
}

uint64_t keel_backoff_ms(uint64_t base_ms, uint64_t retry, uint64_t rnd)
{
    uint64_t shift = retry > 0 ? retry - 1 : 0;
    uint64_t ceiling = KEEL_BACKOFF_CAP_MS;
    if (shift < 32 && base_ms < (KEEL_BACKOFF_CAP_MS >> shift))
        ceiling = base_ms << shift;
    return rnd % (ceiling + 1);
}

static struct keel_step wait_for(uint64_t wait)
{
    return (struct keel_step){.kind = KEEL_STEP_WAIT, .wait_ms = wait};
}

static enum keel_admit admit(struct keel_router *r, size_t target, uint64_t now)
{
    return r->admit ? r->admit(r->ctx, target, now) : KEEL_ADMIT_ALLOW;
}

/* Moves to the first admitted target from `to` on (only those that declare continuation when
 * `continuation`; the others are passed over as if absent, neither tried nor skipped): 1 with
 * *step the TRY, 0 when there is none. A target admission refuses is skipped, and said. */
static int first_admitted(struct keel_router *r, size_t to, uint64_t now, int continuation, struct keel_step *step)
{
    for (size_t j = to; j < r->n; j++) {
        if (continuation && !r->targets[j].continuation)
            continue;
        enum keel_admit a = admit(r, j, now);
        if (a == KEEL_ADMIT_SKIP) {
            r->skipped++;
            if (r->on_skip)
                r->on_skip(r->ctx, j);
            continue;
        }
        r->cur = j;
        r->retries = 0;
        r->waited = 0;
        *step = (struct keel_step){.kind = KEEL_STEP_TRY, .target = j, .probe = a == KEEL_ADMIT_PROBE};
        return 1;
    }
    return 0;
}

/* moves to the first admitted target from `to` on, or gives up when there is none */
static struct keel_step move_to(struct keel_router *r, size_t to, uint64_t now)
{
    struct keel_step step;
    if (first_admitted(r, to, now, 0, &step))
        return step;
    if (r->attempts == 0)
        return (struct keel_step){.kind = KEEL_STEP_GIVE_UP, .status = 503};
    if (r->rate_limited == r->attempts)
        return (struct keel_step){.kind = KEEL_STEP_GIVE_UP, .status = 429, .retry_after_ms = r->min_retry_after};
    return (struct keel_step){.kind = KEEL_STEP_GIVE_UP, .status = 502};
}

struct keel_step keel_router_start(struct keel_router *r, uint64_t now)
{
    return move_to(r, 0, now);
}

struct keel_step keel_router_resume(struct keel_router *r, uint64_t now)
{
    enum keel_admit a = admit(r, r->cur, now);
    if (a != KEEL_ADMIT_SKIP)
        return (struct keel_step){.kind = KEEL_STEP_TRY, .target = r->cur, .probe = a == KEEL_ADMIT_PROBE};
    r->skipped++;
    if (r->on_skip)
        r->on_skip(r->ctx, r->cur);
    return move_to(r, r->cur + 1, now);
}

struct keel_step keel_router_after(struct keel_router *r, enum keel_class cls, uint64_t retry_after_ms,
                                   uint64_t now, uint64_t deadline, uint64_t rnd)
{
    const struct keel_route_target *t = &r->targets[r->cur];
    r->attempts++;
    switch (cls) {
    case KEEL_CLASS_OK:
        return (struct keel_step){.kind = KEEL_STEP_DONE, .target = r->cur};
    case KEEL_CLASS_BAD_REQUEST:
        return (struct keel_step){.kind = KEEL_STEP_RETURN, .target = r->cur};
    case KEEL_CLASS_CONTEXT_LENGTH:
        /* only a later target that declares a larger window can take it */
        for (size_t j = r->cur + 1; j < r->n; j++)
            if (r->targets[j].context_window > t->context_window)
                return move_to(r, j, now);
        return (struct keel_step){.kind = KEEL_STEP_RETURN, .target = r->cur};
    case KEEL_CLASS_UNTRANSLATABLE:
        /* a target of the same protocol could not take it either */
        for (size_t j = r->cur + 1; j < r->n; j++)
            if (r->targets[j].protocol != t->protocol)
                return move_to(r, j, now);
        return (struct keel_step){.kind = KEEL_STEP_RETURN, .target = r->cur};
    case KEEL_CLASS_CLIENT_GONE:
    case KEEL_CLASS_INVALID_REQUEST:
    case KEEL_CLASS_GATEWAY_BUSY:
    case KEEL_CLASS_DEADLINE_EXCEEDED:
        /* local outcomes never walk the chain (seed 003); a spent budget has nowhere to go */
        return (struct keel_step){.kind = KEEL_STEP_RETURN, .target = r->cur};
    case KEEL_CLASS_LOCAL_ERROR:
        /* keel itself ran out (descriptors, memory): every other target would fail the same
         * way and be blamed for it (seed 003); the client is told to come back shortly */
        return (struct keel_step){.kind = KEEL_STEP_GIVE_UP, .target = r->cur, .status = 503, .local = 1};
    case KEEL_CLASS_RATE_LIMITED:
        r->rate_limited++;
        if (retry_after_ms > 0 && (r->min_retry_after == 0 || retry_after_ms < r->min_retry_after))
            r->min_retry_after = retry_after_ms;
        if (retry_after_ms > 0 && !r->waited && retry_after_ms <= t->max_wait_ms && now + retry_after_ms < deadline) {
            r->waited = 1;
            return wait_for(retry_after_ms);
        }
        return move_to(r, r->cur + 1, now);
    case KEEL_CLASS_SERVER_ERROR:
    case KEEL_CLASS_OVERLOADED:
        if (r->retries < t->same_target) {
            uint64_t wait = keel_backoff_ms(t->backoff_ms, r->retries + 1, rnd);
            if (now + wait < deadline) {
                r->retries++;
                return wait_for(wait);
            }
        }
        return move_to(r, r->cur + 1, now);
    default:
        /* connect_error, reset, timeouts, quota, auth, not_found, stream_error, empty_response:
         * this target is done for this request */
        return move_to(r, r->cur + 1, now);
    }
}

int keel_router_continuable(enum keel_class cls)
{
    return cls == KEEL_CLASS_RESET || cls == KEEL_CLASS_STALL_TIMEOUT || cls == KEEL_CLASS_STREAM_ERROR;
}

struct keel_step keel_router_continue(struct keel_router *r, enum keel_class cls, uint64_t now)
{
    r->attempts++;
    if (!keel_router_continuable(cls) && !keel_breaker_counts(cls) && cls != KEEL_CLASS_RATE_LIMITED)
        return (struct keel_step){.kind = KEEL_STEP_RETURN, .target = r->cur};
    struct keel_step step;
    if (first_admitted(r, r->cur + 1, now, 1, &step))
        return step;
    return (struct keel_step){.kind = KEEL_STEP_GIVE_UP, .status = 502};
}
