/* gateway.h - the serving process: the client and admin listeners, the upstream multi handle
 * and the config they share, on one libuv loop. request.c runs each client request. */
#ifndef KEEL_GATEWAY_H
#define KEEL_GATEWAY_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "events.h"
#include "state.h"

struct keel_http;

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

/* Listens and serves until SIGTERM/SIGINT drains it; returns the process exit code.
 * Takes ownership of config. */
int keel_gateway_run(struct keel_config *config);

/* Takes a (re)loaded config's per-target breaker parameters, webhook and client limits (gw->api
 * must exist; gw->nofile sets the default connection cap). */
void keel_gateway_apply(struct keel_gateway *gw, const struct keel_config *c);

/* called by request.c when a request ends */
void keel_gateway_request_done(struct keel_gateway *gw);

#define KEEL_CLIFF_WINDOW_MS (5 * 60 * 1000)
struct keel_model_state;
struct keel_model_conf;
/* the cliff watch (seed 000): warns (log, event) when the model's live p99 or max over the last
 * 5 minutes comes within cliff_margin of its cliff, and says so again when it is clear */
void keel_gateway_cliff_check(struct keel_gateway *gw, struct keel_model_state *m, const struct keel_model_conf *mc);

/* the admin listener's request callback (admin.c): /healthz, /metrics, /admin/status */
void keel_admin_handle(void *gw, struct keel_http *h);

#endif
