/* breaker.c - circuit breaker; see breaker.h. */
#include "core/breaker.h"

static const char *const state_names[] = {"closed", "half_open", "open"};

const char *keel_breaker_state_name(enum keel_breaker_state s)
{
    return state_names[s];
}

void keel_breaker_init(struct keel_breaker *b)
{
    *b = (struct keel_breaker){.state = KEEL_BREAKER_CLOSED};
}

int keel_breaker_counts(enum keel_class cls)
{
    switch (cls) {
    case KEEL_CLASS_CONNECT_ERROR:
    case KEEL_CLASS_RESET:
    case KEEL_CLASS_FIRST_BYTE_TIMEOUT:
    case KEEL_CLASS_STALL_TIMEOUT:
    case KEEL_CLASS_SERVER_ERROR:
    case KEEL_CLASS_OVERLOADED:
    case KEEL_CLASS_QUOTA:
    case KEEL_CLASS_AUTH:
    case KEEL_CLASS_NOT_FOUND:
    case KEEL_CLASS_STREAM_ERROR:
    case KEEL_CLASS_EMPTY_RESPONSE:
        return 1;
    default:
        /* ok, rate_limited (cools instead), the client's own 4xx, local outcomes (seed 003) */
        return 0;
    }
}

int keel_breaker_is_rejection(enum keel_class cls)
{
    return cls == KEEL_CLASS_AUTH || cls == KEEL_CLASS_NOT_FOUND;
}

enum keel_admit keel_breaker_admit(struct keel_breaker *b, uint64_t now, enum keel_breaker_change *change)
{
    *change = KEEL_BREAKER_SAME;
    if (now < b->cool_until)
        return KEEL_ADMIT_SKIP;
    switch (b->state) {
    case KEEL_BREAKER_CLOSED:
        return KEEL_ADMIT_ALLOW;
    case KEEL_BREAKER_OPEN:
        /* background: only keel's own probe tests it. probing: that probe is out (it may have been
         * opened under background and the rule changed since) */
        if (b->background || b->probing || now < b->open_until)
            return KEEL_ADMIT_SKIP;
        b->state = KEEL_BREAKER_HALF_OPEN;
        *change = KEEL_BREAKER_PROBING;
        b->probing = 1;
        return KEEL_ADMIT_PROBE;
    case KEEL_BREAKER_HALF_OPEN:
        if (b->probing)
            return KEEL_ADMIT_SKIP;
        b->probing = 1; /* the last probe ended without a verdict (client gone, 4xx) */
        return KEEL_ADMIT_PROBE;
    }
    return KEEL_ADMIT_SKIP;
}

static enum keel_breaker_change open_for(struct keel_breaker *b, const struct keel_breaker_params *p,
                                         uint64_t cooldown, uint64_t now, enum keel_breaker_change change)
{
    b->state = KEEL_BREAKER_OPEN;
    b->background = p->probe == KEEL_BREAKER_PROBE_BACKGROUND;
    b->probe_at = 0; /* planned by keel_breaker_probe_due, which has the randomness */
    b->cooldown_ms = cooldown;
    b->open_until = now + cooldown;
    b->probing = 0;
    b->failures = 0;
    b->rejections = 0;
    return change;
}

static enum keel_breaker_change close_it(struct keel_breaker *b, enum keel_breaker_change change)
{
    b->state = KEEL_BREAKER_CLOSED;
    b->probing = 0;
    b->background = 0;
    b->probe_at = 0;
    b->failures = 0;
    b->rejections = 0;
    b->cooldown_ms = 0;
    return change;
}

/* one more counting failure or rejection while closed: does it open the breaker? */
static int closed_count_opens(struct keel_breaker *b, const struct keel_breaker_params *p,
                              enum keel_class cls)
{
    if (keel_breaker_is_rejection(cls))
        return ++b->rejections >= (p->rejections ? p->rejections : p->failures);
    return ++b->failures >= p->failures;
}

enum keel_breaker_change keel_breaker_report(struct keel_breaker *b, const struct keel_breaker_params *p,
                                             enum keel_class cls, int was_probe, uint64_t retry_after_ms,
                                             uint64_t now)
{
    if (cls == KEEL_CLASS_RATE_LIMITED)
        b->cool_until = now + (retry_after_ms ? retry_after_ms : 1000);
    int probe = was_probe && b->state == KEEL_BREAKER_HALF_OPEN;
    if (keel_breaker_counts(cls)) {
        /* A probe's rejection reopens too. The probe is one request and the rejection may be its
         * own (a flagged prompt), but the target was open and still rejects: not worth
         * re-admitting. Kept simple: the next probe, a longer cooldown later, settles it. */
        if (probe && p->probe == KEEL_BREAKER_PROBE_BACKGROUND) /* the rule changed since it opened */
            return open_for(b, p, p->cooldown_ms, now, KEEL_BREAKER_REOPENED);
        if (probe) {
            uint64_t next = b->cooldown_ms ? b->cooldown_ms * 2 : p->cooldown_ms * 2;
            if (next > p->max_cooldown_ms)
                next = p->max_cooldown_ms;
            if (next < p->cooldown_ms)
                next = p->cooldown_ms;
            return open_for(b, p, next, now, KEEL_BREAKER_REOPENED);
        }
        if (b->state == KEEL_BREAKER_CLOSED && closed_count_opens(b, p, cls))
            return open_for(b, p, p->cooldown_ms, now, KEEL_BREAKER_OPENED);
        return KEEL_BREAKER_SAME; /* late reports while open or probing change nothing */
    }
    if (cls == KEEL_CLASS_OK || cls == KEEL_CLASS_RATE_LIMITED) {
        /* an answer, even "slow down", shows the target alive */
        if (probe)
            return close_it(b, KEEL_BREAKER_CLOSED_AGAIN);
        if (b->state == KEEL_BREAKER_CLOSED && cls == KEEL_CLASS_OK) {
            b->failures = 0;
            b->rejections = 0;
        }
        return KEEL_BREAKER_SAME;
    }
    /* neutral (the client's own 4xx, client gone, local errors): a probe gives its turn back */
    if (probe)
        b->probing = 0;
    return KEEL_BREAKER_SAME;
}

void keel_breaker_release(struct keel_breaker *b)
{
    if (b->state == KEEL_BREAKER_HALF_OPEN)
        b->probing = 0;
}

uint64_t keel_breaker_next_probe(const struct keel_breaker *b)
{
    if (b->state == KEEL_BREAKER_CLOSED || b->probing)
        return UINT64_MAX;
    return b->state == KEEL_BREAKER_HALF_OPEN ? 0 : b->open_until; /* background: = probe_at once planned */
}

uint64_t keel_breaker_ready_at(const struct keel_breaker *b, uint64_t now)
{
    uint64_t at = now;
    if (b->state == KEEL_BREAKER_OPEN && b->open_until > at)
        at = b->open_until;
    if (b->cool_until > at)
        at = b->cool_until;
    return at;
}

/* ------------------------------------------------------------------ background probes */

uint64_t keel_breaker_probe_interval(const struct keel_breaker_params *p, uint64_t rnd)
{
    uint64_t c = p->cooldown_ms;
    uint64_t at = c - c / 10 + rnd % (2 * (c / 10) + 1); /* uniform in [c - c/10, c + c/10] */
    return at > KEEL_BREAKER_PROBE_MIN_MS ? at : KEEL_BREAKER_PROBE_MIN_MS;
}

uint64_t keel_breaker_probe_due(struct keel_breaker *b, const struct keel_breaker_params *p, uint64_t now,
                                uint64_t rnd)
{
    if (b->state != KEEL_BREAKER_OPEN || !b->background || b->probing)
        return UINT64_MAX;
    if (b->probe_at == 0) {
        b->probe_at = now + keel_breaker_probe_interval(p, rnd);
        b->open_until = b->probe_at; /* ready_at: when it may next be found alive */
    }
    return b->probe_at;
}

int keel_breaker_probe_start(struct keel_breaker *b, uint64_t now)
{
    if (b->state != KEEL_BREAKER_OPEN || !b->background || b->probing || b->probe_at == 0 || now < b->probe_at)
        return 0;
    b->probing = 1;
    return 1;
}

int keel_breaker_probe_alive(enum keel_class cls)
{
    switch (cls) {
    case KEEL_CLASS_OK:
    case KEEL_CLASS_RATE_LIMITED:
    case KEEL_CLASS_BAD_REQUEST:
    case KEEL_CLASS_CONTEXT_LENGTH:
    case KEEL_CLASS_INVALID_REQUEST:
        return 1;
    default:
        return 0;
    }
}

enum keel_breaker_change keel_breaker_probe_done(struct keel_breaker *b, const struct keel_breaker_params *p,
                                                 enum keel_class cls, uint64_t retry_after_ms, uint64_t now,
                                                 uint64_t rnd)
{
    if (b->state != KEEL_BREAKER_OPEN || !b->probing)
        return KEEL_BREAKER_SAME;
    b->probing = 0;
    if (keel_breaker_probe_alive(cls)) {
        if (cls == KEEL_CLASS_RATE_LIMITED)
            b->cool_until = now + (retry_after_ms ? retry_after_ms : 1000);
        return close_it(b, KEEL_BREAKER_RECOVERED);
    }
    /* a counting failure: still down. Anything else (keel's own trouble, the probe never sent):
     * no verdict, so the same wait before the next try */
    b->cooldown_ms = p->cooldown_ms;
    b->probe_at = now + keel_breaker_probe_interval(p, rnd);
    b->open_until = b->probe_at;
    return KEEL_BREAKER_SAME;
}

enum keel_breaker_change keel_breaker_shared_open(struct keel_breaker *b, const struct keel_breaker_params *p,
                                                  uint64_t until, uint64_t cooldown, uint64_t now)
{
    if (until <= now)
        return KEEL_BREAKER_SAME; /* already over where it was decided */
    if (b->state == KEEL_BREAKER_CLOSED) {
        open_for(b, p, cooldown ? cooldown : p->cooldown_ms, now, KEEL_BREAKER_OPENED);
        b->open_until = until;
        return KEEL_BREAKER_OPENED;
    }
    if (b->state == KEEL_BREAKER_OPEN && until > b->open_until && !b->background)
        b->open_until = until; /* a client probe waits for the later end */
    return KEEL_BREAKER_SAME;
}

enum keel_breaker_change keel_breaker_shared_close(struct keel_breaker *b)
{
    if (b->state == KEEL_BREAKER_CLOSED || b->probing)
        return KEEL_BREAKER_SAME; /* our own probe decides for us */
    return close_it(b, KEEL_BREAKER_RECOVERED);
}

void keel_breaker_shared_cool(struct keel_breaker *b, uint64_t cool_until)
{
    if (cool_until > b->cool_until)
        b->cool_until = cool_until;
}
