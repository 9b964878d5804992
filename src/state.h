/* state.h - keel's runtime state beside the immutable config, kept by name so it survives a
 * SIGHUP reload: per target (upstream + model) its breaker, in-flight count, attempt counters,
 * recent failure classes and background probes; per model its request counters, latency
 * histograms, failovers and sliding latency windows. Entries are created on first use and
 * never move or die before the process: a request from an older config generation can still
 * point at them. */
#ifndef KEEL_STATE_H
#define KEEL_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/breaker.h"
#include "core/classify.h"
#include "core/health.h"
#include "core/quota.h"
#include "core/stats.h"

#define KEEL_RECENT 8

/* how a target's last background probe ended (probe.c) */
struct keel_probe_record {
    long long at;        /* when it ended, wall clock ms; 0: no probe yet */
    uint64_t ms;         /* how long it took */
    enum keel_class cls; /* its outcome */
    int status;          /* the HTTP status it got, 0 if none */
};

struct keel_target_state {
    char *upstream, *model;              /* the key */
    struct keel_breaker_params params;   /* from the config that last named this target */
    struct keel_breaker breaker;
    uint64_t inflight;                   /* attempts under way */
    uint64_t attempts[KEEL_CLASS_COUNT]; /* keel_attempts_total by class (skipped ones apart) */
    uint64_t skipped;                    /* requests that skipped it (breaker open or cooling) */
    enum keel_class recent[KEEL_RECENT]; /* the last failure classes, oldest first once full */
    size_t nrecent;                      /* how many failures ever (ring position) */
    uint64_t probes[KEEL_CLASS_COUNT];   /* keel_probes_total: background probes by outcome */
    struct keel_probe_record last_probe;
};

/* what happened to requests of one model answered (or last tried) by one upstream */
struct keel_route_stats {
    char *upstream;                      /* "" for requests that reached no upstream */
    uint64_t requests[KEEL_CLASS_COUNT]; /* keel_requests_total by final class */
    struct keel_hist duration, ttft;
    uint64_t prompt_tokens, completion_tokens, cached_tokens; /* keel_tokens_total: the answers' usage */
    double cost;                         /* keel_cost_total: what those tokens cost at the target's price */
    struct keel_hist tpot;               /* keel_time_per_output_token_seconds: streamed answers' time
                                          * per token after the first */
};

struct keel_failover_stats {
    char *from, *to; /* upstream names */
    enum keel_class cls;
    uint64_t n;
};

/* live latency of one model's target (by upstream + target model) */
struct keel_window_stats {
    char *upstream, *model;
    struct keel_window duration, ttft;
};

/* one point of a model's latency history (the status page's charts) */
struct keel_snapshot {
    long long t; /* wall clock, ms */
    struct keel_pcts d, ttft;
};

#define KEEL_HISTORY 360 /* points kept: an hour at one per 10 s */

struct keel_model_state {
    char *name;
    struct keel_outcomes outcomes; /* the last requests' final classes: /admin/status's health */
    struct keel_window answers; /* every request's duration (any target): the cliff watch */
    struct keel_window ttfts;   /* every answer's time to first content */
    int near_cliff;             /* warned, and not yet back to a safe distance */
    struct keel_snapshot history[KEEL_HISTORY];
    size_t nhistory;            /* snapshots taken so far (ring position) */
    struct keel_route_stats **routes;
    size_t nroutes;
    struct keel_failover_stats **failovers;
    size_t nfailovers;
    struct keel_window_stats **windows;
    size_t nwindows;
};

/* a client key's limits and counts, by name (config's keys; kept across reloads) */
struct keel_key_state {
    char *name;
    struct keel_quota quota;             /* its rpm and tpm (core/quota.h) */
    uint64_t requests[KEEL_CLASS_COUNT]; /* keel_key_requests_total by final class */
    uint64_t tokens;                     /* keel_key_tokens_total: what its answers reported */
};

struct keel_state {
    struct keel_target_state **targets;
    size_t ntargets;
    struct keel_model_state **models;
    size_t nmodels;
    struct keel_key_state **keys;
    size_t nkeys;
};

/* get-or-create; NULL only when out of memory */
struct keel_target_state *keel_state_target(struct keel_state *s, const char *upstream, const char *model);
struct keel_model_state *keel_state_model(struct keel_state *s, const char *name);
struct keel_key_state *keel_state_key(struct keel_state *s, const char *name);
struct keel_route_stats *keel_state_route(struct keel_model_state *m, const char *upstream);
struct keel_window_stats *keel_state_window(struct keel_model_state *m, const char *upstream, const char *model);
void keel_state_failover(struct keel_model_state *m, const char *from, const char *to, enum keel_class cls);
void keel_state_recent(struct keel_target_state *t, enum keel_class cls);

#endif
