/* gateway_t.h - what the serving process shares with the code it runs: the loop, the config in
 * force, runtime state, the upstream handle, the audit log, the background prober, the counters
 * requests keep. gateway.c fills it; intake.c, request.c, admin.c, cliff.c and probe.c read it,
 * and call nothing in gateway.c (request.c kicks the prober when a breaker changes). */
#ifndef KEEL_GATEWAY_T_H
#define KEEL_GATEWAY_T_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "events.h"
#include "probe.h"
#include "shared.h"
#include "state.h"

struct keel_gateway {
    uv_loop_t *loop;
    struct keel_config *config;     /* held; SIGHUP swaps it, requests hold the one they began with */
    struct keel_state state;        /* breakers, counters, windows: kept across reloads */
    struct keel_events events;      /* event log lines and webhook */
    uint64_t started_ms;            /* loop time at start */
    uint64_t reloads, reload_failures;
    struct keel_server *api;        /* client listener */
    struct keel_server *admin;      /* admin listener */
    struct keel_upstream *upstream; /* shared connection cache */
    struct keel_managed *managed;   /* the local backends keel runs */
    struct keel_probe *probe;       /* background probes of open targets; NULL before the start
                                     * and once stopped (drain) */
    struct keel_shared *shared;     /* breakers and cool-downs shared through Redis (state:);
                                     * NULL without it, and once stopped (drain) */
    struct keel_audit *audit;       /* NULL when no audit_log is configured */
    uint64_t id_seed;               /* random at start: request ids don't repeat across runs */
    uint64_t id_next;
    uint64_t rng;                   /* splitmix64 state for backoff jitter */
    size_t inflight; /* client requests not yet answered */
    uint64_t nofile;          /* the open-file limit at start */
    uint64_t max_connections; /* the client connection cap in force */
    size_t mem_held; /* bytes requests in flight hold in bodies and buffers (config max_memory) */
    int draining;    /* SIGTERM seen: no new connections; exit when inflight reaches 0 */
    int stopping;    /* drained: stopping the managed backends, then exit */
};

#endif
