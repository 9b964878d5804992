/* health.h - what is wrong with a model right now (issue 20): its recent requests' outcomes
 * (a window of final classes and failovers, pure and clock-injected) and a verdict an operator
 * reads at a glance: idle, healthy, degraded or failing, with the reasons in words. A model
 * that answers nothing is failing whatever its latency says. */
#ifndef KEEL_HEALTH_H
#define KEEL_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "core/classify.h"

#define KEEL_OUTCOMES_CAP 4096

/* the last KEEL_OUTCOMES_CAP requests of a model: when each ended, its class, a failover */
struct keel_outcomes {
    uint64_t at[KEEL_OUTCOMES_CAP];
    uint8_t cls[KEEL_OUTCOMES_CAP];
    uint8_t failover[KEEL_OUTCOMES_CAP];
    size_t head, n;
};

void keel_outcomes_add(struct keel_outcomes *o, uint64_t now, enum keel_class cls, int failover);

/* a window's counts; local: requests keel refused itself (a bad request, a key's limit, its own
 * load) or whose client left, which say nothing of the model's providers */
struct keel_outcome_counts {
    uint64_t requests, ok, failovers, local;
    uint64_t by_class[KEEL_CLASS_COUNT];
};

/* the requests that ended in (now - span, now] */
void keel_outcomes_count(const struct keel_outcomes *o, uint64_t now, uint64_t span, struct keel_outcome_counts *c);

enum keel_health_state { KEEL_HEALTH_IDLE, KEEL_HEALTH_HEALTHY, KEEL_HEALTH_DEGRADED, KEEL_HEALTH_FAILING };

/* a class that ends a request without a provider's fault (counted in local) */
int keel_health_local(enum keel_class cls);

/* The verdict, on the requests that reached a provider (local ones apart, named in the reasons
 * but never a cause): failing when fewer than half of at least 3 of them were answered, or no target
 * can be tried (every breaker open); degraded when any request failed, a breaker is open, more
 * than a tenth failed over, or the model is near its cliff; healthy when it answered; idle with
 * no request and nothing open. The reasons, each a short phrase, go into reasons ("; " between
 * them, cut to fit cap). */
enum keel_health_state keel_health_of(const struct keel_outcome_counts *c, size_t targets, size_t open,
                                      int near_cliff, char *reasons, size_t cap);
const char *keel_health_name(enum keel_health_state s);

#endif
