/* gateway.c - the serving process (`keel serve`): wires config, listeners and the upstream
 * handle onto one libuv loop, answers the admin endpoints, and drains on SIGTERM: stop
 * accepting, let requests in flight finish (bounded by drain_timeout), exit 0. */
#include "gateway.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "io/server.h"
#include "io/upstream.h"
#include "log.h"
#include "request.h"

/* Reachable from here until exit, so leak checkers see live state, not leaks. */
static struct keel_gateway *the_gateway;

static void admin_request(void *app, struct keel_http *h)
{
    struct keel_gateway *gw = app;
    size_t plen, mlen;
    const char *path = keel_http_path(h, &plen);
    const char *method = keel_http_method(h, &mlen);
    struct keel_header hdrs[] = {{"content-type", "application/json"}};
    if (plen == 8 && memcmp(path, "/healthz", 8) == 0 && mlen == 3 && memcmp(method, "GET", 3) == 0) {
        const char *body = gw->draining ? "{\"status\":\"draining\"}" : "{\"status\":\"ok\"}";
        keel_http_respond(h, gw->draining ? 503 : 200, hdrs, 1, body, strlen(body));
        return;
    }
    keel_respond_error(h, 404, "invalid_request_error", "unknown_url", "unknown path");
}

static void stop_when_idle(struct keel_gateway *gw)
{
    if (gw->draining && gw->inflight == 0) {
        keel_info("drained: exiting");
        uv_stop(gw->loop);
    }
}

void keel_gateway_request_done(struct keel_gateway *gw)
{
    gw->inflight--;
    stop_when_idle(gw);
}

static void on_drain_timeout(uv_timer_t *t)
{
    struct keel_gateway *gw = t->data;
    keel_warn("drain timeout: %zu requests still in flight are abandoned", gw->inflight);
    uv_stop(gw->loop);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct keel_gateway *gw = s->data;
    if (gw->draining)
        return;
    keel_info("%s: draining %zu requests in flight (at most %llums)", signum == SIGTERM ? "SIGTERM" : "SIGINT",
              gw->inflight, (unsigned long long)gw->config->drain_ms);
    gw->draining = 1;
    keel_server_stop_accepting(gw->api);
    keel_server_stop_accepting(gw->admin);
    static uv_timer_t timer;
    uv_timer_init(gw->loop, &timer);
    timer.data = gw;
    uv_timer_start(&timer, on_drain_timeout, gw->config->drain_ms, 0);
    uv_unref((uv_handle_t *)&timer);
    stop_when_idle(gw);
}

int keel_gateway_run(struct keel_config *config)
{
    static uv_signal_t sigterm, sigint;
    char err[256];
    signal(SIGPIPE, SIG_IGN);
    struct keel_gateway *gw = calloc(1, sizeof(*gw));
    if (gw == NULL)
        return 1;
    the_gateway = gw;
    gw->loop = uv_default_loop();
    gw->config = config;
    if (getrandom(&gw->id_seed, sizeof(gw->id_seed), 0) != sizeof(gw->id_seed))
        gw->id_seed = (uint64_t)uv_hrtime();
    gw->rng = gw->id_seed ^ 0x5deece66dULL;
    gw->upstream = keel_upstream_new(gw->loop, 1024);
    if (gw->upstream == NULL) {
        keel_error("cannot start: libcurl failed to initialise");
        return 1;
    }
    gw->api = keel_server_new(gw->loop, config->listen_host, config->listen_port, config->max_body,
                              keel_request_handle, gw, err, sizeof(err));
    if (gw->api == NULL) {
        keel_error("listen: %s", err);
        return 1;
    }
    gw->admin = keel_server_new(gw->loop, config->admin_host, config->admin_port, 4096, admin_request, gw, err,
                                sizeof(err));
    if (gw->admin == NULL) {
        keel_error("admin_listen: %s", err);
        return 1;
    }
    uv_signal_init(gw->loop, &sigterm);
    uv_signal_init(gw->loop, &sigint);
    sigterm.data = sigint.data = gw;
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    keel_info("listening api=%s:%d admin=%s:%d models=%zu upstreams=%zu", config->listen_host,
              keel_server_port(gw->api), config->admin_host, keel_server_port(gw->admin), config->nmodels,
              config->nupstreams);
    uv_run(gw->loop, UV_RUN_DEFAULT);
    return 0;
}
