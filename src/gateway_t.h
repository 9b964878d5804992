/* gateway_t.h - what the serving process shares with the code it runs: the loop, the config in
 * force, runtime state, the upstream handle, the audit log, the background prober, the counters
 * requests keep. gateway.c fills it; intake.c, request.c, admin.c, cliff.c and probe.c read it,
 * and call nothing in gateway.c (request.c kicks the prober when a breaker changes). */
#ifndef KEEL_GATEWAY_T_H
#define KEEL_GATEWAY_T_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "core/buf.h"
#include "events.h"
#include "io/server.h"
#include "probe.h"
#include "shared.h"
#include "state.h"

struct keel_request;

/* One loop serving client requests (`workers:`, README "Many cores"). With one worker it is the
 * gateway's own loop and thread; with more, each runs its own loop on its own thread, with its
 * own listener on the client port (SO_REUSEPORT: the kernel spreads connections) and its own
 * upstream connections. What they share (gw->state, the events, the audit log, the prober, the
 * managed backends, Redis) is touched only under gw->mu; the gateway's loop, which runs the
 * admin listener, the prober, the backends and the signals, holds gw->mu whenever it runs. */
struct keel_worker {
    struct keel_gateway *gw;
    unsigned index;
    uv_loop_t *loop;                 /* gw->loop with one worker, else &own */
    uv_loop_t own;
    struct keel_server *api;         /* its client listener */
    struct keel_upstream *upstream;  /* its upstream connections */
    struct keel_config *config;      /* held: the config in force when its last request began */
    uint64_t config_gen;             /* of gw->config_gen */
    uint64_t limits_gen;             /* of gw->limits_gen: the client limits it applied */
    uint64_t requests;               /* client requests it took (keel_worker_requests_total) */
    struct keel_buf audit_line;      /* its requests' audit lines, formatted outside gw->mu */
    uv_async_t wake;                 /* the gateway's loop -> this one: limits, drain, backends */
    struct keel_request *inbox;      /* requests whose managed backend answered (under gw->mu) */
    int drain, quit;                 /* under gw->mu */
    pthread_t thread;
};

struct keel_gateway {
    uv_loop_t *loop;
    struct keel_config *config;     /* held; SIGHUP swaps it, requests hold the one they began with */
    struct keel_state state;        /* breakers, counters, windows: kept across reloads */
    struct keel_events events;      /* event log lines and webhook */
    uint64_t started_ms;            /* loop time at start */
    uint64_t reloads, reload_failures;
    struct keel_server *admin;      /* admin listener */
    struct keel_upstream *upstream; /* the gateway loop's connections (probes, webhook, backends) */
    struct keel_managed *managed;   /* the local backends keel runs */
    struct keel_probe *probe;       /* background probes of open targets; NULL before the start
                                     * and once stopped (drain) */
    struct keel_shared *shared;     /* breakers and cool-downs shared through Redis (state:);
                                     * NULL without it, and once stopped (drain) */
    struct keel_audit *audit;       /* NULL when no audit_log is configured */
    uint64_t id_seed;               /* random at start: request ids don't repeat across runs */
    uint64_t id_next;
    uint64_t rng;                   /* splitmix64 state for backoff jitter */
    size_t inflight; /* client requests not yet answered (atomic: every worker counts) */
    uint64_t nofile;          /* the open-file limit at start */
    uint64_t max_connections; /* the client connection cap in force */
    size_t mem_held; /* bytes requests in flight hold in bodies and buffers (config max_memory; atomic) */
    int draining;    /* SIGTERM seen: no new connections; exit when inflight reaches 0 */
    int stopping;    /* drained: stopping the managed backends, then exit */

    struct keel_worker *workers; /* [nworkers]: workers[0] is the gateway's own loop when alone */
    size_t nworkers;
    int threaded;                /* nworkers > 1: gw->mu guards what the workers share */
    pthread_mutex_t mu;          /* recursive */
    uv_async_t main_wake;        /* a worker changed the gateway loop's timers or sockets */
    int main_touched;            /* under mu: main_wake is due when the worker lets go of mu */
    uint64_t config_gen;         /* bumped with each config swap (under mu) */
    uint64_t limits_gen;         /* bumped with each change of the client limits (under mu) */
    struct keel_server_limits *limits; /* the client listener's limits in force (under mu) */
    uint64_t open_connections;   /* client connections open on every worker (atomic) */
    int quit;                    /* the gateway's loop stops */
    /* what the workers' sharing costs (keel_worker_lock_*, bench/workers.sh), under mu */
    uint64_t lock_taken, lock_waited; /* acquisitions by workers; of them, ones that had to wait */
    unsigned lock_depth;              /* nesting of the holder's keel_gw_lock */
    int lock_timing;                  /* KEEL_LOCK_TIMING=1 at start: hold times are measured */
    uint64_t lock_t0, lock_held_ns;
};

/* request.c: runs the backend callbacks a worker's inbox holds (the list's requests, in turn) */
void keel_req_inbox(struct keel_request *list);

/* Taken around every use of what the workers share; recursive; nothing when gw->threaded is 0. */
static inline void keel_gw_lock(struct keel_gateway *gw)
{
    if (!gw->threaded)
        return;
    int waited = pthread_mutex_trylock(&gw->mu) != 0;
    if (waited)
        pthread_mutex_lock(&gw->mu);
    gw->lock_taken++;
    gw->lock_waited += (uint64_t)waited;
    if (gw->lock_depth++ == 0 && gw->lock_timing)
        gw->lock_t0 = uv_hrtime();
}

/* A worker changed the gateway loop's handles (a timer, a socket: the prober, the webhook, the
 * backends, Redis) under the lock: that loop's clock is brought up to date first, so a timer
 * started now is due when meant, and it is woken when the worker lets go. */
static inline void keel_gw_touch(struct keel_gateway *gw)
{
    if (gw->threaded) {
        uv_update_time(gw->loop);
        gw->main_touched = 1;
    }
}

static inline void keel_gw_unlock(struct keel_gateway *gw)
{
    if (!gw->threaded)
        return;
    if (gw->main_touched) {
        gw->main_touched = 0;
        uv_async_send(&gw->main_wake);
    }
    if (--gw->lock_depth == 0 && gw->lock_timing)
        gw->lock_held_ns += uv_hrtime() - gw->lock_t0;
    pthread_mutex_unlock(&gw->mu);
}

#endif
