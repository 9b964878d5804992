/* health.c - a model's recent outcomes and the verdict on them; see health.h. */
#include "core/health.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h> /* snprintf, vsnprintf only: no I/O */
#include <string.h>

void keel_outcomes_add(struct keel_outcomes *o, uint64_t now, enum keel_class cls, int failover)
{
    o->at[o->head] = now;
    o->cls[o->head] = (uint8_t)cls;
    o->failover[o->head] = failover != 0;
    o->head = (o->head + 1) % KEEL_OUTCOMES_CAP;
    if (o->n < KEEL_OUTCOMES_CAP)
        o->n++;
}

int keel_health_local(enum keel_class cls)
{
    return keel_class_refused(cls) || cls == KEEL_CLASS_CLIENT_GONE;
}

void keel_outcomes_count(const struct keel_outcomes *o, uint64_t now, uint64_t span, struct keel_outcome_counts *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t k = 0; k < o->n; k++) {
        size_t i = (o->head + KEEL_OUTCOMES_CAP - 1 - k) % KEEL_OUTCOMES_CAP; /* newest first */
        if (o->at[i] + span <= now)
            break;
        c->requests++;
        if (o->cls[i] < KEEL_CLASS_COUNT)
            c->by_class[o->cls[i]]++;
        c->ok += o->cls[i] == KEEL_CLASS_OK;
        c->local += o->cls[i] < KEEL_CLASS_COUNT && keel_health_local((enum keel_class)o->cls[i]);
        c->failovers += o->failover[i];
    }
}

static const char *const names[] = {"idle", "healthy", "degraded", "failing"};

const char *keel_health_name(enum keel_health_state s)
{
    return names[s];
}

/* appends a phrase to reasons, "; " first when it holds one already */
static void say(char *reasons, size_t cap, const char *fmt, ...)
{
    size_t used = strlen(reasons);
    if (cap == 0 || used + 3 >= cap)
        return;
    if (used > 0) {
        memcpy(reasons + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reasons + used, cap - used, fmt, ap);
    va_end(ap);
}

enum keel_health_state keel_health_of(const struct keel_outcome_counts *c, size_t targets, size_t open,
                                      int near_cliff, char *reasons, size_t cap)
{
    if (cap > 0)
        reasons[0] = '\0';
    uint64_t judged = c->requests - c->local, failed = judged - c->ok;
    enum keel_health_state s = judged == 0 ? KEEL_HEALTH_IDLE : KEEL_HEALTH_HEALTHY;
    assert(c->ok + c->local <= c->requests);
    if (failed > 0) {
        /* the two most frequent classes, to name what went wrong */
        int top[2] = {-1, -1};
        for (int k = 0; k < KEEL_CLASS_COUNT; k++) {
            if (k == KEEL_CLASS_OK || c->by_class[k] == 0 || keel_health_local((enum keel_class)k))
                continue;
            if (top[0] < 0 || c->by_class[k] > c->by_class[top[0]]) {
                top[1] = top[0];
                top[0] = k;
            } else if (top[1] < 0 || c->by_class[k] > c->by_class[top[1]]) {
                top[1] = k;
            }
        }
        char cls[128];
        if (top[1] >= 0)
            snprintf(cls, sizeof(cls), "%s %llu, %s %llu", keel_class_name((enum keel_class)top[0]),
                     (unsigned long long)c->by_class[top[0]], keel_class_name((enum keel_class)top[1]),
                     (unsigned long long)c->by_class[top[1]]);
        else
            snprintf(cls, sizeof(cls), "%s %llu", keel_class_name((enum keel_class)top[0]),
                     (unsigned long long)c->by_class[top[0]]);
        say(reasons, cap, "%llu of %llu requests failed (%s)", (unsigned long long)failed, (unsigned long long)judged,
            cls);
        s = judged >= 3 && c->ok * 2 < judged ? KEEL_HEALTH_FAILING : KEEL_HEALTH_DEGRADED;
    }
    if (targets > 0 && open == targets) {
        say(reasons, cap, "every target's breaker is open");
        s = KEEL_HEALTH_FAILING;
    } else if (open > 0) {
        say(reasons, cap, "%zu of %zu targets' breakers open", open, targets);
        if (s < KEEL_HEALTH_DEGRADED)
            s = KEEL_HEALTH_DEGRADED;
    }
    if (c->requests > 0 && c->failovers * 10 > c->requests) {
        say(reasons, cap, "%llu of %llu requests failed over", (unsigned long long)c->failovers,
            (unsigned long long)c->requests);
        if (s < KEEL_HEALTH_DEGRADED)
            s = KEEL_HEALTH_DEGRADED;
    }
    if (near_cliff) {
        say(reasons, cap, "near its cliff");
        if (s < KEEL_HEALTH_DEGRADED)
            s = KEEL_HEALTH_DEGRADED;
    }
    if (c->local > 0)
        say(reasons, cap, "%llu refused by keel or left by their client (not the providers' doing)",
            (unsigned long long)c->local);
    return s;
}
