/* gateway.c - the serving process (`keel serve`): wires config, listeners and the upstream
 * handle onto one libuv loop, answers the admin endpoints, and drains on SIGTERM: stop
 * accepting, let requests in flight finish (bounded by drain_timeout), exit 0. */
#include "gateway.h"

#include <assert.h>
#include <malloc.h>
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
    assert(gw->api != NULL);
    keel_server_set_limits(gw->api, &l);
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
    keel_config_drop(old); /* freed when the last request begun under it ends */
    keel_probe_kick(gw->probe); /* cooldowns and targets may have changed */
    gw->reloads++;
    keel_info("SIGHUP: reloaded %s (%zu upstreams, %zu models)", c->file, c->nupstreams, c->nmodels);
}

static void on_backends_stopped(void *ctx)
{
    struct keel_gateway *gw = ctx;
    keel_info("drained: exiting");
    uv_stop(gw->loop);
}

static void stop_when_idle(struct keel_gateway *gw)
{
    if (gw->draining && gw->inflight == 0 && !gw->stopping) {
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
    keel_warn("drain timeout: %zu requests still in flight are abandoned", gw->inflight);
    if (!gw->stopping) {
        gw->stopping = 1;
        keel_managed_stop_all(gw->managed, on_backends_stopped, gw);
    } else {
        uv_stop(gw->loop);
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
              gw->inflight, (unsigned long long)gw->config->drain_ms);
    gw->draining = 1;
    keel_shared_stop(gw->shared); /* before the prober: a claim under way is answered "not granted" */
    gw->shared = NULL;
    keel_probe_stop(gw->probe); /* before the backends stop: no probe waits on one */
    keel_server_stop_accepting(gw->api);
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
    gw->api = keel_server_new(gw->loop, config->listen_addr, config->listen_port, config->max_body,
                              keel_intake_handle, gw, err, sizeof(err));
    if (gw->api == NULL) {
        keel_error("listen: %s", err);
        return 1;
    }
    keel_server_set_refusal(gw->api, keel_intake_refusal);

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
    sigset_t hup; /* blocked by main until now: a SIGHUP sent during the start reloads once */
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    sigprocmask(SIG_UNBLOCK, &hup, NULL);
    keel_info("listening api=%s:%d admin=%s:%d models=%zu upstreams=%zu", config->listen_addr,
              keel_server_port(gw->api), config->admin_addr, keel_server_port(gw->admin), config->nmodels,
              config->nupstreams);
    /* anyone who can reach listen spends the configured provider keys */
    if (config->nkeys == 0 && strncmp(config->listen_addr, "127.", 4) != 0 && strcmp(config->listen_addr, "::1") != 0)
        keel_warn("listen is %s, not a loopback address, and no client keys are configured (keys:): anyone who can "
                  "reach it spends your provider keys. Issue keys with `keel key new NAME`.",
                  config->listen_addr);
    uv_run(gw->loop, UV_RUN_DEFAULT);
    if (gw->audit != NULL)
        keel_audit_flush_now(gw->audit); /* every request that ended is in the file */
    return 0;
}
