/* cliff.h - the cliff watch (seed 000): warns (log, event) when a model's live p99 or max over
 * the last 5 minutes comes within cliff_margin of its cliff, and says so again when it is clear.
 * The gateway's timer checks every model; a request that comes near the cliff checks its own. */
#ifndef KEEL_CLIFF_H
#define KEEL_CLIFF_H

#define KEEL_CLIFF_WINDOW_MS (5 * 60 * 1000)

struct keel_gateway;
struct keel_model_state;
struct keel_model_conf;

void keel_cliff_check(struct keel_gateway *gw, struct keel_model_state *m, const struct keel_model_conf *mc);

#endif
