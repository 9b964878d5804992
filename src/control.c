/* control.c - a model a control plane runs (seed 002 as it happened: Lemonade's lemond, LM
 * Studio, llama-swap), the other kind of backend (managed_t.h). The control plane spawns the
 * model's inference server on a port of its own choosing and may evict it behind keel's back,
 * its own bookkeeping gone stale; keel keeps the control/data split (chat goes straight to the
 * data plane) and never trusts a URL from before:
 *   first use:  health -> the model listed with a URL that answers a probe: READY; else as below
 *   recovery:   unload (a failure is logged, not fatal: a bare load is a no-op while the control
 *               plane still lists the model on a dead process) -> load -> health (the URL read
 *               back: the server may be on another port) -> a 1-token probe of that URL (the
 *               control plane saying "loaded" is not trusted alone) -> READY
 * A sequence that fails (or outlasts load_timeout) backs off as a crash-looping managed backend
 * does; its waiters fail over. One sequence however many requests met the dead server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "core/backend.h"
#include "core/chunk.h"
#include "core/jpath.h"
#include "core/json.h"
#include "events.h"
#include "io/upstream.h"
#include "log.h"
#include "managed_t.h"

enum step { HEALTH_FIRST, UNLOAD, LOAD, HEALTH, PROBE };
static const char *const step_names[] = {"health", "unload", "load", "health", "probe"};

static void send_step(struct keel_backend *b, enum step s);

static void event(struct keel_backend *b, const char *what, const char *reason)
{
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:I}", "type", "backend", "upstream", b->name, "model", b->model,
                           "event", what, "runs", (json_int_t)b->generation);
    if (b->url != NULL)
        json_object_set_new(ev, "url", json_string(b->url));
    if (reason != NULL)
        json_object_set_new(ev, "reason", json_string(reason));
    keel_events_emit(b->m->events, ev);
}

/* ------------------------------------------------------------------ the sequence's ends */

static void on_backoff_over(uv_timer_t *t)
{
    struct keel_backend *b = t->data;
    if (b->state == BACKOFF)
        b->state = STOPPED; /* the next request starts a sequence again */
}

/* the sequence failed: its waiters fail over, and the next one waits out a backoff */
static void failed(struct keel_backend *b, const char *why)
{
    if (b->check != NULL) {
        struct keel_upstream_xfer *x = b->check;
        b->check = NULL;
        keel_upstream_xfer_cancel(x);
    }
    uv_timer_stop(&b->poll);
    snprintf(b->last_error, sizeof(b->last_error), "%s", why);
    free(b->url); /* a URL from before is never used again: the next sequence reads it back */
    b->url = NULL;
    free(b->pending_url);
    b->pending_url = NULL;
    b->crashes++;
    uint64_t wait = keel_backend_backoff_ms(b->crashes);
    b->state = BACKOFF;
    char reason[256];
    snprintf(reason, sizeof(reason), "%s; %llu failed in a row: next try in %llu ms", why,
             (unsigned long long)b->crashes, (unsigned long long)wait);
    keel_warn("backend %s/%s: %s", b->name, b->model, reason);
    event(b, "backoff", reason);
    keel_backend_notify(b, 0);
    uv_timer_start(&b->wake, on_backoff_over, wait, 0);
}

/* the data plane at pending_url answered: traffic goes there from now on */
static void ready(struct keel_backend *b)
{
    uv_timer_stop(&b->poll);
    if (b->url != NULL && strcmp(b->url, b->pending_url) != 0) {
        b->url_changes++;
        char why[512];
        snprintf(why, sizeof(why), "from %s to %s", b->url, b->pending_url);
        keel_info("backend %s/%s: the data plane moved %s", b->name, b->model, why);
        free(b->url);
        b->url = b->pending_url;
        event(b, "url_changed", why);
    } else {
        free(b->url);
        b->url = b->pending_url;
    }
    b->pending_url = NULL;
    b->generation++;
    b->state = READY;
    b->crashes = 0;
    b->last_error[0] = '\0';
    b->ready_at = keel_backend_now(b);
    b->last_used = b->ready_at;
    keel_info("backend %s/%s: ready at %s (%llu ms)", b->name, b->model, b->url,
              (unsigned long long)(b->ready_at - b->started_at));
    event(b, "ready", NULL);
    keel_backend_notify(b, 1);
}

/* ------------------------------------------------------------------ one call of the sequence */

/* health's answer: the model's data-plane URL (base_path added) into pending_url; 0, else -1 */
static int read_url(struct keel_backend *b)
{
    struct keel_json root;
    char url[1024];
    if (b->check_status != 200 || keel_json_parse(b->check_body, b->check_len, &root) != 0 ||
        keel_jpath_string(root, b->url_at, b->model, url, sizeof(url)) <= 0 ||
        (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        return -1;
    size_t l = strlen(url);
    while (l > 0 && url[l - 1] == '/')
        url[--l] = '\0';
    free(b->pending_url);
    size_t n = l + strlen(b->base_path) + 1;
    b->pending_url = malloc(n);
    if (b->pending_url == NULL)
        return -1;
    snprintf(b->pending_url, n, "%s%s", url, b->base_path);
    return 0;
}

static void on_retry_probe(uv_timer_t *t)
{
    struct keel_backend *b = t->data;
    if (b->state == STARTING && b->check == NULL)
        send_step(b, PROBE);
}

static void step_done(void *ctx, const char *err, const char *detail)
{
    struct keel_backend *b = ctx;
    b->check = NULL;
    if (b->state != STARTING)
        return;
    b->check_body[b->check_len] = '\0';
    int ok = err == NULL && b->check_status >= 200 && b->check_status < 300;
    char why[256];
    snprintf(why, sizeof(why), "%s: %s", step_names[b->step], err ? err : "");
    if (err == NULL)
        snprintf(why, sizeof(why), "%s answered %d", step_names[b->step], b->check_status);
    char code[64];
    switch ((enum step)b->step) {
    case HEALTH_FIRST:
        if (err != NULL) {
            failed(b, why); /* the control plane itself is down */
        } else if (read_url(b) == 0) {
            if (b->ready_probe)
                send_step(b, PROBE);
            else
                ready(b);
        } else {
            send_step(b, LOAD); /* not loaded: load it */
        }
        return;
    case UNLOAD:
        if (!ok) /* logged, not fatal: the load may still work */
            keel_warn("backend %s/%s: unload failed (%s): loading all the same", b->name, b->model, why);
        send_step(b, LOAD);
        return;
    case LOAD:
        if (!ok) {
            failed(b, why);
            return;
        }
        b->reloaded = 1;
        send_step(b, HEALTH);
        return;
    case HEALTH:
        if (read_url(b) != 0) {
            failed(b, err ? why : "health lists no data-plane URL for the model after its load");
            return;
        }
        if (b->ready_probe)
            send_step(b, PROBE);
        else
            ready(b);
        return;
    case PROBE:
        if (ok && keel_answer_inspect(b->check_body, b->check_len, code, sizeof(code), NULL) == KEEL_ANSWER_OK) {
            ready(b);
        } else if (!b->reloaded) {
            /* listed but not answering: the stale entry of a dead server; a bare load would be a
             * no-op, so unload first */
            keel_info("backend %s/%s: %s lists it but it does not answer (%s): reloading it", b->name, b->model,
                      b->pending_url, why);
            send_step(b, UNLOAD);
        } else {
            uv_timer_start(&b->poll, on_retry_probe, POLL_MS, 0); /* loaded: give it a moment */
        }
        return;
    }
}

/* Sends step s of the sequence; each within what is left of load_timeout (a probe or a health
 * call within CHECK_TIMEOUT_MS too). */
static void send_step(struct keel_backend *b, enum step s)
{
    static const struct keel_upstream_cbs cbs = {keel_backend_check_head, keel_backend_check_data, step_done};
    uint64_t now = keel_backend_now(b), end = b->started_at + b->load_timeout_ms;
    if (now >= end) {
        failed(b, "not ready within load_timeout");
        return;
    }
    uint64_t left = end - now;
    char probe_url[1200];
    const char *url = s == UNLOAD ? b->unload_url : s == LOAD ? b->load_url : b->control_health_url;
    if (s == PROBE) {
        snprintf(probe_url, sizeof(probe_url), "%s/chat/completions", b->pending_url);
        url = probe_url;
    }
    const char *body = s == UNLOAD || s == LOAD ? b->control_body : s == PROBE ? b->probe_body : NULL;
    uint64_t limit = s == LOAD || s == UNLOAD || left < CHECK_TIMEOUT_MS ? left : CHECK_TIMEOUT_MS;
    struct keel_upstream_spec spec = {.url = url,
                                      .body = body,
                                      .body_len = body ? strlen(body) : 0,
                                      .connect_timeout_ms = limit < CHECK_TIMEOUT_MS ? limit : CHECK_TIMEOUT_MS,
                                      .timeout_ms = limit};
    b->step = s;
    b->check_status = 0;
    b->check_len = 0;
    keel_debug("backend %s/%s: %s %s", b->name, b->model, step_names[s], url);
    b->check = keel_upstream_xfer_start(b->m->up, &spec, &cbs, b);
    if (b->check == NULL)
        failed(b, "cannot start a request to the control plane (out of memory)");
}

/* ------------------------------------------------------------------ the backend's interface */

void keel_control_start(struct keel_backend *b)
{
    if (b->state == STARTING)
        return;
    int recover = b->url != NULL; /* it was ready: its server died, so unload first */
    b->state = STARTING;
    b->started_at = keel_backend_now(b);
    b->reloaded = 0;
    event(b, recover ? "recover" : "starting", NULL);
    send_step(b, recover ? UNLOAD : HEALTH_FIRST);
}

void keel_control_dead(struct keel_backend *b, const char *why)
{
    keel_warn("backend %s/%s: the data plane at %s looks dead (%s): unload, load, read its URL back", b->name,
              b->model, b->url, why);
    b->recoveries++;
    event(b, "dead", why);
    keel_control_start(b);
}

void keel_control_stop(struct keel_backend *b)
{
    if (b->check != NULL) {
        struct keel_upstream_xfer *x = b->check;
        b->check = NULL;
        keel_upstream_xfer_cancel(x);
    }
    uv_timer_stop(&b->poll);
    uv_timer_stop(&b->wake);
    keel_backend_notify(b, 0);
    b->state = STOPPED; /* the control plane keeps its models: keel unloads nothing on exit */
}

/* the control API's URL for path */
static char *call_url(const struct keel_control_conf *c, const char *path)
{
    size_t n = strlen(c->url) + strlen(path) + 1;
    char *u = malloc(n);
    if (u != NULL)
        snprintf(u, n, "%s%s", c->url, path);
    return u;
}

/* body with every "{model}" replaced by model as a JSON string's inside */
static char *with_model(const char *body, const char *model)
{
    size_t q = keel_json_quote(model, NULL, 0); /* quotes included */
    size_t cap = strlen(body) + 1;
    for (const char *p = strstr(body, "{model}"); p != NULL; p = strstr(p + 7, "{model}"))
        cap += q;
    char *out = malloc(cap), *o = out;
    char *quoted = malloc(q + 1);
    if (out == NULL || quoted == NULL) {
        free(out);
        free(quoted);
        return NULL;
    }
    keel_json_quote(model, quoted, q + 1);
    while (*body != '\0') {
        if (strncmp(body, "{model}", 7) == 0) {
            memcpy(o, quoted + 1, q - 2);
            o += q - 2;
            body += 7;
        } else {
            *o++ = *body++;
        }
    }
    *o = '\0';
    free(quoted);
    return out;
}

struct keel_backend *keel_control_create(struct keel_managed *m, const struct keel_upstream_conf *u,
                                         const char *model)
{
    const struct keel_control_conf *c = u->control;
    struct keel_backend *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->m = m;
    b->name = strdup(u->name);
    b->model = strdup(model);
    b->load_url = call_url(c, c->load);
    b->unload_url = call_url(c, c->unload);
    b->control_health_url = call_url(c, c->health);
    b->control_body = with_model(c->body, model);
    b->url_at = strdup(c->url_at);
    b->base_path = strdup(c->base_path);
    b->probe_body = keel_backend_probe_body(model);
    b->load_timeout_ms = c->load_timeout_ms;
    b->ready_probe = c->ready_probe;
    b->waiters.next = b->waiters.prev = &b->waiters;
    b->state = STOPPED;
    if (b->name == NULL || b->model == NULL || b->load_url == NULL || b->unload_url == NULL ||
        b->control_health_url == NULL || b->control_body == NULL || b->url_at == NULL || b->base_path == NULL ||
        b->probe_body == NULL) {
        keel_control_free(b);
        return NULL;
    }
    uv_timer_init(m->loop, &b->poll);
    uv_timer_init(m->loop, &b->wake);
    b->poll.data = b->wake.data = b;
    return b;
}

/* a backend whose timers were never started (create's failure) */
void keel_control_free(struct keel_backend *b)
{
    free(b->name);
    free(b->model);
    free(b->load_url);
    free(b->unload_url);
    free(b->control_health_url);
    free(b->control_body);
    free(b->url_at);
    free(b->base_path);
    free(b->probe_body);
    free(b->url);
    free(b->pending_url);
    free(b);
}

json_t *keel_control_status(const struct keel_backend *b)
{
    uint64_t now = keel_backend_now(b);
    return json_pack("{s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:s, s:I, s:I}", "upstream", b->name, "model", b->model,
                     "state", keel_backend_state_names[b->state], "url", b->url ? json_string(b->url) : json_null(),
                     "runs", (json_int_t)b->generation, "recoveries", (json_int_t)b->recoveries, "url_changes",
                     (json_int_t)b->url_changes, "crashes", (json_int_t)b->crashes, "last_error", b->last_error,
                     "active", (json_int_t)b->active, "uptime_ms",
                     (json_int_t)(b->state == READY ? now - b->ready_at : 0));
}
