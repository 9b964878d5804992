/* gateway.c - the serving process (`keel serve`): wires config, listeners and the upstream
 * handle onto one libuv loop, answers the admin endpoints, and drains on SIGTERM: stop
 * accepting, let requests in flight finish (bounded by drain_timeout), exit 0. */
#include "gateway.h"

#include <assert.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include "io/server.h"
#include "io/upstream.h"
#include "admin.h"
#include "audit.h"
#include "cliff.h"
#include "log.h"
#include "managed.h"
#include "intake.h"
#include "probe.h"
#include "state.h"

/* descriptors kept for keel's own use (listeners, audit, managed backends' pipes, curl) */
#define FD_RESERVE 64
#define ADMIN_CONNECTIONS 64 /* scrapers, the status page, operators */

/* Reachable from here until exit, so leak checkers see live state, not leaks. */
static struct keel_gateway *the_gateway;

/* every 2 s: the cliff watch; every 10 s: a history point per model for the status page */
/* another instance opened a breaker here (shared state): its background probe is planned */
static void kick_prober(void *ctx)
{
    struct keel_gateway *gw = ctx;
    keel_probe_kick(gw->probe);
}

static void on_cliff_timer(uv_timer_t *t)
{
    static unsigned ticks;
    struct keel_gateway *gw = t->data;
    int snapshot = ticks++ % 5 == 0;
    uint64_t now = uv_now(gw->loop);
    for (size_t i = 0; i < gw->config->nmodels; i++) {
        const struct keel_model_conf *mc = &gw->config->models[i];
        struct keel_model_state *m = keel_state_model(&gw->state, mc->name);
        if (m == NULL)
            continue;
        keel_cliff_check(gw, m, mc);
        if (snapshot) {
            struct keel_snapshot *s = &m->history[m->nhistory++ % KEEL_HISTORY];
            s->t = keel_time_now_ms();
            keel_window_pcts(&m->answers, now, KEEL_CLIFF_WINDOW_MS, &s->d);
            keel_window_pcts(&m->ttfts, now, KEEL_CLIFF_WINDOW_MS, &s->ttft);
        }
    }
}

/* What a client may cost (config.h). max_connections defaults to what the open-file limit leaves
 * after each connection's upstream socket and a reserve for keel's own files, so the upstream
 * side always finds a descriptor: past it clients are refused, never providers blamed. */
static uint64_t upstream_room(const struct keel_gateway *gw)
{
    uint64_t reserve = FD_RESERVE + ADMIN_CONNECTIONS;
    return gw->nofile > reserve + 32 ? (gw->nofile - reserve) / 2 : 16;
}

static void apply_limits(struct keel_gateway *gw, const struct keel_config *c)
{
    uint64_t room = upstream_room(gw);
    uint64_t max = c->max_connections ? c->max_connections : room;
    if (max > room)
        keel_warn("max_connections %llu may leave no descriptor for upstream sockets under the open-file limit "
                  "%llu (at most %llu leave room); requests that find none fail as local_error",
                  (unsigned long long)max, (unsigned long long)gw->nofile, (unsigned long long)room);
    struct keel_server_limits l = {
        .max_connections = max,
        .header_timeout_ms = c->header_timeout_ms,
        .body_timeout_ms = c->body_timeout_ms,
        .idle_timeout_ms = c->idle_timeout_ms,
        .send_timeout_ms = c->send_timeout_ms,
        .max_headers = c->max_headers,
        .max_header_size = c->max_header_size,
    };
    /* each worker applies them on its own loop: at once before they run, else when woken */
    *gw->limits = l;
    gw->limits_gen++;
    for (size_t i = 0; i < gw->nworkers; i++) {
        struct keel_worker *w = &gw->workers[i];
        if (!gw->threaded || !w->thread) {
            keel_server_set_limits(w->api, &l);
            w->limits_gen = gw->limits_gen;
        } else {
            uv_async_send(&w->wake);
        }
    }
    gw->max_connections = max;
    /* the admin listener is reachable too: the same timeouts, a small cap of its own */
    l.max_connections = ADMIN_CONNECTIONS;
    if (gw->admin != NULL)
        keel_server_set_limits(gw->admin, &l);
}

/* config.h's rule for an open target's probes, as the breaker names it */
static enum keel_breaker_probe probe_rule(enum keel_probe_mode m)
{
    return m == KEEL_PROBE_REQUEST ? KEEL_BREAKER_PROBE_REQUEST : KEEL_BREAKER_PROBE_BACKGROUND;
}

/* Breaker parameters follow the config that last named the target; their state stays. */
void keel_gateway_apply(struct keel_gateway *gw, const struct keel_config *c)
{
    for (size_t i = 0; i < c->nmodels; i++) {
        const struct keel_model_conf *m = &c->models[i];
        keel_state_model(&gw->state, m->name);
        for (size_t j = 0; j < m->ntargets; j++) {
            const struct keel_target_conf *t = &m->targets[j];
            struct keel_target_state *ts = keel_state_target(&gw->state, t->upstream->name, t->model);
            if (ts != NULL)
                ts->params = (struct keel_breaker_params){.failures = t->breaker.failures,
                                                          .rejections = t->breaker.rejections,
                                                          .cooldown_ms = t->breaker.cooldown_ms,
                                                          .max_cooldown_ms = t->breaker.max_cooldown_ms,
                                                          .probe = probe_rule(t->breaker.probe)};
        }
    }
    keel_events_set_url(&gw->events, c->webhook);
    apply_limits(gw, c);
}

/* SIGHUP: load the file again; a bad config is refused and the old one kept */
/* the config's errors, every one, as `keel check` prints them (10 KiB: off the stack) */
static struct keel_config_errors reload_errors;

static void reload(struct keel_gateway *gw)
{
    char err[512];
    struct keel_config *c = keel_config_load_all(gw->config->file, &reload_errors);
    if (c == NULL) {
        gw->reload_failures++;
        keel_error("SIGHUP: reload refused, the running config stays: %zu error%s", reload_errors.n + reload_errors.more,
                   reload_errors.n + reload_errors.more == 1 ? "" : "s");
        for (size_t i = 0; i < reload_errors.n; i++)
            keel_error("  %s", reload_errors.msg[i]);
        if (reload_errors.more > 0)
            keel_error("  ... and %zu more", reload_errors.more);
        return;
    }
    if (keel_managed_bind(gw->managed, c, err, sizeof(err)) != 0) {
        keel_config_free(c);
        gw->reload_failures++;
        keel_error("SIGHUP: reload refused, the running config stays: %s", err);
        return;
    }
    if (c->listen_port != gw->config->listen_port || strcmp(c->listen_addr, gw->config->listen_addr) != 0 ||
        c->admin_port != gw->config->admin_port || strcmp(c->admin_addr, gw->config->admin_addr) != 0)
        keel_warn("SIGHUP: listen and admin_listen changes take effect at the next start");
    keel_gateway_apply(gw, c);
    struct keel_config *old = gw->config;
    gw->config = keel_config_hold(c);
    __atomic_store_n(&gw->config_gen, gw->config_gen + 1, __ATOMIC_RELAXED); /* each worker takes it at its next request */
    keel_config_drop(old); /* freed when the last request begun under it ends */
    keel_probe_kick(gw->probe); /* cooldowns and targets may have changed */
    gw->reloads++;
    keel_info("SIGHUP: reloaded %s (%zu upstreams, %zu models)", c->file, c->nupstreams, c->nmodels);
}

/* the gateway's loop stops, and with it every worker's */
static void quit(struct keel_gateway *gw)
{
    for (size_t i = 0; gw->threaded && i < gw->nworkers; i++) {
        gw->workers[i].quit = 1;
        uv_async_send(&gw->workers[i].wake);
    }
    gw->quit = 1;
    uv_stop(gw->loop);
}

static void on_backends_stopped(void *ctx)
{
    struct keel_gateway *gw = ctx;
    keel_info("drained: exiting");
    quit(gw);
}

static void stop_when_idle(struct keel_gateway *gw)
{
    if (gw->draining && __atomic_load_n(&gw->inflight, __ATOMIC_RELAXED) == 0 && !gw->stopping) {
        gw->stopping = 1;
        keel_managed_stop_all(gw->managed, on_backends_stopped, gw); /* no backend outlives keel */
    }
}

/* while draining, after each turn of the loop: the requests end on their own (request.c only
 * counts them down), and the gateway notices the last one here */
static void on_drain_check(uv_check_t *c)
{
    stop_when_idle(c->data);
}

static void on_drain_timeout(uv_timer_t *t)
{
    struct keel_gateway *gw = t->data;
    keel_warn("drain timeout: %zu requests still in flight are abandoned", __atomic_load_n(&gw->inflight, __ATOMIC_RELAXED));
    if (!gw->stopping) {
        gw->stopping = 1;
        keel_managed_stop_all(gw->managed, on_backends_stopped, gw);
    } else {
        quit(gw);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct keel_gateway *gw = s->data;
    if (signum == SIGHUP) {
        if (!gw->draining)
            reload(gw);
        return;
    }
    if (gw->draining)
        return;
    keel_info("%s: draining %zu requests in flight (at most %llums)", signum == SIGTERM ? "SIGTERM" : "SIGINT",
              __atomic_load_n(&gw->inflight, __ATOMIC_RELAXED), (unsigned long long)gw->config->drain_ms);
    gw->draining = 1;
    keel_shared_stop(gw->shared); /* before the prober: a claim under way is answered "not granted" */
    gw->shared = NULL;
    keel_probe_stop(gw->probe); /* before the backends stop: no probe waits on one */
    for (size_t i = 0; i < gw->nworkers; i++) {
        struct keel_worker *w = &gw->workers[i];
        if (gw->threaded) {
            w->drain = 1; /* it stops accepting on its own loop */
            uv_async_send(&w->wake);
        } else {
            keel_server_stop_accepting(w->api);
        }
    }
    keel_server_stop_accepting(gw->admin);
    static uv_timer_t timer;
    uv_timer_init(gw->loop, &timer);
    timer.data = gw;
    uv_timer_start(&timer, on_drain_timeout, gw->config->drain_ms, 0);
    uv_unref((uv_handle_t *)&timer);
    static uv_check_t check;
    uv_check_init(gw->loop, &check);
    check.data = gw;
    uv_check_start(&check, on_drain_check);
    uv_unref((uv_handle_t *)&check);
    stop_when_idle(gw);
}

/* ---- workers (README "Many cores") ---- */

/* the gateway's loop asked: new client limits, drain, quit, or requests whose backend answered */
static void on_worker_wake(uv_async_t *a)
{
    struct keel_worker *w = a->data;
    struct keel_gateway *gw = w->gw;
    struct keel_server_limits l;
    keel_gw_lock(gw);
    int limits = w->limits_gen != gw->limits_gen;
    if (limits) {
        l = *gw->limits;
        w->limits_gen = gw->limits_gen;
    }
    int drain = w->drain, stop = w->quit;
    struct keel_request *inbox = w->inbox;
    w->inbox = NULL;
    keel_gw_unlock(gw);
    if (limits)
        keel_server_set_limits(w->api, &l);
    if (drain)
        keel_server_stop_accepting(w->api);
    keel_req_inbox(inbox);
    if (stop)
        uv_stop(w->loop);
}

/* a worker's thread: its loop, until the gateway quits */
static void *worker_main(void *arg)
{
    struct keel_worker *w = arg;
    uv_run(w->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* a worker let go of gw->mu after changing this loop's handles: uv_run looks again */
static void on_main_wake(uv_async_t *a)
{
    (void)a;
}

/* workers: N from the config, else one per core the process may run on */
static size_t worker_count(const struct keel_config *c)
{
    if (c->workers > 0)
        return (size_t)c->workers;
    unsigned n = uv_available_parallelism();
    return n < 1 ? 1 : n > KEEL_MAX_WORKERS ? KEEL_MAX_WORKERS : n;
}

int keel_gateway_listen(struct keel_gateway *gw, struct keel_config *config, uint64_t room, char *err, size_t errlen)
{
    gw->nworkers = worker_count(config);
    gw->threaded = gw->nworkers > 1;
    const char *timing = getenv("KEEL_LOCK_TIMING"); /* bench/workers.sh: what the lock costs */
    gw->lock_timing = timing != NULL && strcmp(timing, "1") == 0;
    gw->workers = calloc(gw->nworkers, sizeof(*gw->workers));
    gw->limits = calloc(1, sizeof(*gw->limits));
    if (gw->workers == NULL || gw->limits == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (gw->threaded) {
        pthread_mutexattr_t attr;
        pthread_mutexattr_init(&attr);
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&gw->mu, &attr);
        pthread_mutexattr_destroy(&attr);
        uv_async_init(gw->loop, &gw->main_wake, on_main_wake);
        uv_unref((uv_handle_t *)&gw->main_wake);
    }
    int port = config->listen_port;
    for (size_t i = 0; i < gw->nworkers; i++) {
        struct keel_worker *w = &gw->workers[i];
        w->gw = gw;
        w->index = (unsigned)i;
        w->config = keel_config_hold(config);
        keel_buf_init(&w->audit_line, 16u << 20);
        if (!gw->threaded) {
            w->loop = gw->loop;
            w->upstream = gw->upstream;
            w->api = keel_server_new(w->loop, config->listen_addr, port, config->max_body, keel_intake_handle, w, err,
                                     errlen);
        } else {
            w->loop = &w->own;
            uv_loop_init(w->loop);
            uv_async_init(w->loop, &w->wake, on_worker_wake);
            w->wake.data = w;
            w->upstream = keel_upstream_new(w->loop, (long)(room > 1024 ? room : 1024));
            if (w->upstream == NULL) {
                snprintf(err, errlen, "libcurl failed to initialise");
                return -1;
            }
            w->api = keel_server_new_shared(w->loop, config->listen_addr, port, config->max_body, keel_intake_handle,
                                            w, &gw->open_connections, err, errlen);
        }
        if (w->api == NULL)
            return -1;
        keel_server_set_refusal(w->api, keel_intake_refusal);
        port = keel_server_port(w->api); /* port 0: the others join the one the first was given */
    }
    return 0;
}

/* the workers' threads, with every signal blocked: signals are the gateway loop's */
static int start_workers(struct keel_gateway *gw)
{
    sigset_t all, was;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &was);
    int rv = 0;
    for (size_t i = 0; gw->threaded && i < gw->nworkers && rv == 0; i++)
        rv = pthread_create(&gw->workers[i].thread, NULL, worker_main, &gw->workers[i]) != 0 ? -1 : 0;
    pthread_sigmask(SIG_SETMASK, &was, NULL);
    return rv;
}

/* The gateway's loop beside the workers: it runs with gw->mu held and lets go of it only while
 * it waits for its next event (its libuv backend descriptor polled from outside uv_run), so
 * its code (admin, prober, backends, Redis, signals, reloads) needs no lock of its own, and a
 * worker holding gw->mu may touch its handles (keel_gw_touch). */
static void run_threaded(struct keel_gateway *gw)
{
    pthread_mutex_lock(&gw->mu);
    for (;;) {
        int alive = uv_run(gw->loop, UV_RUN_NOWAIT);
        if (!alive || gw->quit)
            break;
        struct pollfd p = {.fd = uv_backend_fd(gw->loop), .events = POLLIN};
        int timeout = uv_backend_timeout(gw->loop);
        pthread_mutex_unlock(&gw->mu);
        poll(&p, 1, timeout);
        pthread_mutex_lock(&gw->mu);
    }
    pthread_mutex_unlock(&gw->mu);
    for (size_t i = 0; i < gw->nworkers; i++)
        pthread_join(gw->workers[i].thread, NULL);
}

int keel_gateway_run(struct keel_config *config)
{
    static uv_signal_t sigterm, sigint, sighup;
    char err[256];
    signal(SIGPIPE, SIG_IGN);
    /* glibc raises its mmap threshold each time a large block is freed, after which large answer
     * buffers live on the heap and its top is rarely given back: the soak's 12 MB answers left
     * RSS 32 MB up at rest. A fixed threshold keeps buffers past 128 KiB in their own mappings,
     * returned to the system when freed (a mmap and munmap per such answer). */
    mallopt(M_MMAP_THRESHOLD, 128 << 10);
    struct keel_gateway *gw = calloc(1, sizeof(*gw));
    if (gw == NULL)
        return 1;
    the_gateway = gw;
    gw->loop = uv_default_loop();
    gw->config = keel_config_hold(config);
    gw->started_ms = uv_now(gw->loop);
    if (getrandom(&gw->id_seed, sizeof(gw->id_seed), 0) != sizeof(gw->id_seed))
        gw->id_seed = (uint64_t)uv_hrtime();
    gw->rng = gw->id_seed ^ 0x5deece66dULL;
    struct rlimit rl;
    gw->nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (uint64_t)rl.rlim_cur : 1024;
    /* curl's cache of idle upstream connections: below the number of streams held open, every
     * other request would connect anew (bench/hostile: 2,172 connects in 3 s at 1,668 streams) */
    uint64_t room = upstream_room(gw);
    gw->upstream = keel_upstream_new(gw->loop, (long)(room > 1024 ? room : 1024));
    if (gw->upstream == NULL) {
        keel_error("cannot start: libcurl failed to initialise");
        return 1;
    }
    keel_events_init(&gw->events, gw->upstream, NULL);
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self[sl > 0 ? sl : 0] = '\0';
    gw->managed = keel_managed_new(gw->loop, gw->upstream, &gw->events, self);
    if (gw->managed == NULL || keel_managed_bind(gw->managed, config, err, sizeof(err)) != 0) {
        keel_error("cannot start: %s", gw->managed ? err : "out of memory");
        return 1;
    }
    if (config->audit_log != NULL) {
        gw->audit = keel_audit_open(gw->loop, config->audit_log, config->audit_max_size, (unsigned)config->audit_keep,
                                    err, sizeof(err));
        if (gw->audit == NULL) {
            keel_error("cannot start: %s", err);
            return 1;
        }
    }
    if (keel_gateway_listen(gw, config, room, err, sizeof(err)) != 0) {
        keel_error("listen: %s", err);
        return 1;
    }

    gw->admin = keel_server_new(gw->loop, config->admin_addr, config->admin_port, 4096, keel_admin_handle, gw,
                                err, sizeof(err));
    if (gw->admin == NULL) {
        keel_error("admin_listen: %s", err);
        return 1;
    }
    keel_gateway_apply(gw, config); /* nothing is served before uv_run */
    gw->probe = keel_probe_new(gw);
    gw->shared = keel_shared_new(gw, config->state, kick_prober, gw); /* connects in the loop's time */
    if (gw->probe == NULL || (config->state != NULL && gw->shared == NULL)) {
        keel_error("cannot start: out of memory");
        return 1;
    }
    static uv_timer_t cliff_timer; /* clears cliff warnings as old samples leave the window */
    uv_timer_init(gw->loop, &cliff_timer);
    cliff_timer.data = gw;
    uv_timer_start(&cliff_timer, on_cliff_timer, 2000, 2000);
    uv_unref((uv_handle_t *)&cliff_timer);
    uv_signal_init(gw->loop, &sigterm);
    uv_signal_init(gw->loop, &sigint);
    uv_signal_init(gw->loop, &sighup);
    sigterm.data = sigint.data = sighup.data = gw;
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sighup, on_signal, SIGHUP);
    if (start_workers(gw) != 0) {
        keel_error("cannot start: no thread for a worker");
        return 1;
    }
    sigset_t hup; /* blocked by main until now: a SIGHUP sent during the start reloads once */
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    sigprocmask(SIG_UNBLOCK, &hup, NULL);
    keel_info("listening api=%s:%d admin=%s:%d models=%zu upstreams=%zu workers=%zu", config->listen_addr,
              keel_server_port(gw->workers[0].api), config->admin_addr, keel_server_port(gw->admin), config->nmodels,
              config->nupstreams, gw->nworkers);
    /* anyone who can reach listen spends the configured provider keys */
    if (config->nkeys == 0 && strncmp(config->listen_addr, "127.", 4) != 0 && strcmp(config->listen_addr, "::1") != 0)
        keel_warn("listen is %s, not a loopback address, and no client keys are configured (keys:): anyone who can "
                  "reach it spends your provider keys. Issue keys with `keel key new NAME`.",
                  config->listen_addr);
    if (gw->threaded)
        run_threaded(gw);
    else
        uv_run(gw->loop, UV_RUN_DEFAULT);
    if (gw->audit != NULL)
        keel_audit_flush_now(gw->audit); /* every request that ended is in the file */
    return 0;
}
