/* quota.c - per-minute limits as GCRA; see quota.h. */
#include "core/quota.h"

#define MINUTE_US UINT64_C(60000000)

/* ms until the debt reaching `tat` is back within one minute of now (0: it is) */
static uint64_t over(uint64_t tat, uint64_t now_us)
{
    if (tat <= now_us + MINUTE_US)
        return 0;
    uint64_t wait_us = tat - now_us - MINUTE_US;
    return (wait_us + 999) / 1000;
}

uint64_t keel_quota_admit(struct keel_quota *q, uint64_t rpm, uint64_t tpm, uint64_t now_ms)
{
    uint64_t now = now_ms * 1000;
    uint64_t wait = tpm > 0 ? over(q->tok_tat, now) : 0;
    uint64_t next = q->req_tat;
    if (rpm > 0) {
        next = (q->req_tat > now ? q->req_tat : now) + MINUTE_US / rpm;
        uint64_t w = over(next, now);
        if (w > wait)
            wait = w;
    }
    if (wait > 0)
        return wait;
    q->req_tat = next;
    return 0;
}

#define MAX_COUNT UINT64_C(1000000000) /* a count past this is no real answer's: clamped (no overflow below) */

void keel_quota_spend(struct keel_quota *q, uint64_t tpm, uint64_t tokens, uint64_t now_ms)
{
    if (tpm == 0 || tokens == 0)
        return;
    if (tokens > MAX_COUNT)
        tokens = MAX_COUNT;
    uint64_t now = now_ms * 1000, base = q->tok_tat > now ? q->tok_tat : now;
    /* tokens * minute / tpm without overflow for any sane count */
    q->tok_tat = base + tokens / tpm * MINUTE_US + tokens % tpm * MINUTE_US / tpm;
}

void keel_quota_charge(struct keel_quota *q, uint64_t rpm, uint64_t requests, uint64_t now_ms)
{
    if (rpm == 0 || requests == 0)
        return;
    if (requests > MAX_COUNT)
        requests = MAX_COUNT;
    uint64_t now = now_ms * 1000, base = q->req_tat > now ? q->req_tat : now;
    q->req_tat = base + requests * (MINUTE_US / rpm);
}
