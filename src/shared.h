/* shared.h - state shared by the keel instances behind one load balancer (DESIGN.md "Shared
 * state", config `state: { redis, prefix }`): each target's breaker (opened, closed) and 429
 * cool-down, and the one background probe per target across instances (an atomic claim). hiredis
 * async on keel's loop; a request never waits on Redis: decisions read the local breakers, which
 * this keeps current from the others' messages (pub/sub), and a trip here is published at once.
 * Redis down or slow: each instance goes on with its local state, says so once (log, event,
 * keel_state_redis_up 0), reconnects with backoff and resyncs. */
#ifndef KEEL_SHARED_H
#define KEEL_SHARED_H

#include <jansson.h>
#include <stdint.h>

struct keel_gateway;
struct keel_target_state;
struct keel_state_conf;
struct keel_shared;

/* Starts connecting to conf's Redis (the config at start: a change takes effect at the next
 * start); NULL when conf is NULL (no shared state) or out of memory. opened(ctx) is called when
 * another instance's message opened a breaker here (its background probe is to be planned). */
struct keel_shared *keel_shared_new(struct keel_gateway *gw, const struct keel_state_conf *conf,
                                    void (*opened)(void *ctx), void *ctx);
/* disconnects now (pending claims are answered "not granted") and frees s in the loop's time */
void keel_shared_stop(struct keel_shared *s);

/* Target ts's breaker or cool-down changed here (not by a message from another instance): the
 * others learn it. Nothing when s is NULL or Redis is down (the resync on reconnect carries it). */
void keel_shared_publish(struct keel_shared *s, const struct keel_target_state *ts);

/* A client key's use here (requests admitted, tokens its answers reported): the other instances
 * count it against the key's rpm and tpm too. Batched, sent within a few ms; nothing when s is
 * NULL or Redis is down (each instance then counts alone). */
void keel_shared_key_use(struct keel_shared *s, const char *key, uint64_t requests, uint64_t tokens);

/* the answer to a claim: 1, this instance probes; 0, another holds the claim (or keel stops) */
typedef void (*keel_shared_claim_cb)(void *ctx, int granted);
/* Claims ts's background probe for ttl_ms across instances; cb is called once, at once (granted)
 * when s is NULL or Redis is down. */
void keel_shared_claim(struct keel_shared *s, const struct keel_target_state *ts, uint64_t ttl_ms,
                       keel_shared_claim_cb cb, void *ctx);

/* /admin/status "state" and the metrics (keel_state_redis_up and the counters); NULL s: none */
json_t *keel_shared_status(const struct keel_shared *s);
void keel_shared_metrics(const struct keel_shared *s, void (*line)(void *, const char *), void *ctx);

#endif
