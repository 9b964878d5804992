/* managed.h - local inference servers keel starts, watches and heals (seed 002), and models a
 * control plane runs (control.c: loaded on demand, their URL read back after every load, an
 * unload-load recovery for a dead one; the same waiting, backoff and events). Each managed
 * upstream is one backend: a port picked once and kept for its whole life, a process keel owns
 * (its own process group, only the configured environment, output in keel's log), readiness by
 * health polling (and optionally one real completion), restart on death or on a request's
 * connect_error/reset (one restart however many requests saw it), exponential backoff when it
 * crash-loops, and optional idle unload. Requests wait for a starting backend within their own
 * deadline; a backend backing off makes them fail over at once. */
#ifndef KEEL_MANAGED_H
#define KEEL_MANAGED_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

struct keel_config;
struct keel_upstream;
struct keel_events;
struct keel_managed;
struct keel_backend;

/* the waiter is told once: ok = 1 the backend is ready, 0 it will not be soon (fail over) */
typedef void (*keel_backend_ready_cb)(void *ctx, int ok);

struct keel_backend_waiter { /* embedded in the waiting request */
    struct keel_backend_waiter *prev, *next;
    struct keel_backend *backend; /* NULL when not waiting */
    keel_backend_ready_cb cb;
    void *ctx;
};

struct keel_managed *keel_managed_new(uv_loop_t *loop, struct keel_upstream *up, struct keel_events *events,
                                      const char *self_exe);
/* Gives each managed upstream of c its backend (kept by name across reloads: same port, same
 * process), rewrites "{port}" in its base_url, and starts backends that are new. 0, or -1 with
 * a message in err. */
int keel_managed_bind(struct keel_managed *m, struct keel_config *c, char *err, size_t errlen);
/* the backend of a managed upstream, or of a control plane's model (model: the target's; NULL
 * finds only a managed upstream's) */
struct keel_backend *keel_managed_get(struct keel_managed *m, const char *upstream, const char *model);
/* where an attempt that acquired b sends its requests: a control plane's model's data-plane URL
 * as last read back (stable while acquired); NULL: the upstream's own base_url */
const char *keel_backend_base_url(const struct keel_backend *b);

/* 1: ready, go; 0: w->cb will say when; -1: backing off after crashes, fail over now */
int keel_backend_acquire(struct keel_backend *b, struct keel_backend_waiter *w, keel_backend_ready_cb cb, void *ctx);
void keel_backend_cancel_wait(struct keel_backend_waiter *w);
/* the attempt that acquired it ended (idle unload counts from the last one) */
void keel_backend_release(struct keel_backend *b);
/* which process run an attempt went to */
uint64_t keel_backend_generation(const struct keel_backend *b);
/* a request met a dead backend (connect_error/reset) on run `generation`: restart it, once */
void keel_backend_dead(struct keel_backend *b, uint64_t generation, const char *why);

/* stops every backend (SIGTERM to its group, SIGKILL after a grace period); done() when all
 * have exited and been reaped */
void keel_managed_stop_all(struct keel_managed *m, void (*done)(void *), void *ctx);
/* /admin/status "backends" and the metrics (admin.c) */
json_t *keel_managed_status(struct keel_managed *m);
void keel_managed_metrics(struct keel_managed *m, void (*line)(void *, const char *), void *ctx);

#endif
