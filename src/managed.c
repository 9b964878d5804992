/* managed.c - managed local backends; see managed.h. A backend is created once per managed
 * upstream name and lives as long as keel; each process it runs is a `struct run` (the uv
 * process handle and its two output pipes), freed when all three handles are closed. States:
 *   STOPPED  -> STARTING (spawned; health polled every 100 ms until start_timeout)
 *   STARTING -> READY (health 200, then the probe completion if ready_probe)
 *   READY    -> STOPPING (dead, idle, shutdown) -> STOPPED, or STARTING when a restart is due
 *   any      -> BACKOFF when a run dies before it was stable; STARTING again after the backoff */
#include "managed.h"
#include "managed_t.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "core/backend.h"
#include "core/chunk.h"
#include "core/json.h"
#include "events.h"
#include "io/upstream.h"
#include "log.h"

static void start(struct keel_backend *b);
static void stop(struct keel_backend *b, int sig);

static void event(struct keel_backend *b, const char *what, const char *reason)
{
    json_t *ev = json_pack("{s:s, s:s, s:s, s:i, s:i, s:I}", "type", "backend", "upstream", b->name, "event", what,
                           "pid", b->pid, "port", b->port, "restarts", (json_int_t)b->restarts);
    if (reason != NULL)
        json_object_set_new(ev, "reason", json_string(reason));
    keel_events_emit(b->m->events, ev);
}

/* ------------------------------------------------------------------ waiters */

int keel_backend_acquire(struct keel_backend *b, struct keel_backend_waiter *w, keel_backend_ready_cb cb, void *ctx)
{
    switch (b->state) {
    case READY:
        b->active++;
        b->last_used = keel_backend_now(b);
        return 1;
    case BACKOFF:
        return -1;
    case STOPPED:
        start(b);
        if (b->state == BACKOFF)
            return -1;
        break;
    case STOPPING:
        b->restart_due = 1;
        break;
    case STARTING:
        break;
    }
    w->backend = b;
    w->cb = cb;
    w->ctx = ctx;
    w->next = &b->waiters;
    w->prev = b->waiters.prev;
    b->waiters.prev->next = w;
    b->waiters.prev = w;
    return 0;
}

void keel_backend_cancel_wait(struct keel_backend_waiter *w)
{
    if (w->backend == NULL)
        return;
    w->prev->next = w->next;
    w->next->prev = w->prev;
    w->prev = w->next = NULL;
    w->backend = NULL;
}

static void arm_idle(struct keel_backend *b);

void keel_backend_release(struct keel_backend *b)
{
    if (b->active > 0)
        b->active--;
    b->last_used = keel_backend_now(b);
    arm_idle(b);
}

uint64_t keel_backend_generation(const struct keel_backend *b)
{
    return b->generation;
}

const char *keel_backend_base_url(const struct keel_backend *b)
{
    return b->model != NULL ? b->url : NULL;
}

/* ------------------------------------------------------------------ process output and exit */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char slab[65536]; /* one loop thread; consumed before the next read */
    buf->base = slab;
    buf->len = sizeof(slab);
}

static void free_run_handle(uv_handle_t *h)
{
    struct run *run = h->data;
    if (--run->handles == 0)
        free(run);
}

static void log_output(struct run *run, int which, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c != '\n' && run->linelen[which] < LINE_MAX_LEN - 1) {
            run->line[which][run->linelen[which]++] = c;
            continue;
        }
        if (c != '\n')
            continue; /* an overlong line is cut */
        run->line[which][run->linelen[which]] = '\0';
        keel_info("backend %s: %s", run->b->name, run->line[which]);
        run->linelen[which] = 0;
    }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct run *run = s->data;
    int which = s == (uv_stream_t *)&run->out[1];
    if (n > 0) {
        log_output(run, which, buf->base, (size_t)n);
        return;
    }
    if (n < 0 && !uv_is_closing((uv_handle_t *)s))
        uv_close((uv_handle_t *)s, free_run_handle);
}

static void on_backoff_over(uv_timer_t *t)
{
    start(t->data);
}

static void on_process_exit(uv_process_t *p, int64_t status, int sig)
{
    struct run *run = p->data;
    struct keel_backend *b = run->b;
    for (int i = 0; i < 2; i++)
        if (!uv_is_closing((uv_handle_t *)&run->out[i]))
            uv_close((uv_handle_t *)&run->out[i], free_run_handle);
    uv_close((uv_handle_t *)p, free_run_handle);
    if (b->run != run)
        return;
    b->run = NULL;
    if (sig != 0)
        snprintf(b->last_exit, sizeof(b->last_exit), "killed by signal %d", sig);
    else
        snprintf(b->last_exit, sizeof(b->last_exit), "exited with status %lld", (long long)status);
    if (b->check != NULL) {
        keel_upstream_xfer_cancel(b->check);
        b->check = NULL;
    }
    uv_timer_stop(&b->poll);
    uv_timer_stop(&b->wake);
    enum state was = b->state;
    uint64_t now = keel_backend_now(b);
    keel_info("backend %s: pid %d %s (was %s)", b->name, b->pid, b->last_exit, keel_backend_state_names[was]);
    if (was == STOPPING) {
        b->state = STOPPED;
        event(b, "stopped", b->last_exit);
        if (b->restart_due) {
            b->restart_due = 0;
            b->restarts++;
            start(b);
        } else if (b->m->all_stopped != NULL) {
            int all = 1;
            for (size_t i = 0; i < b->m->n; i++)
                all &= b->m->backends[i]->run == NULL;
            if (all)
                b->m->all_stopped(b->m->all_stopped_ctx);
        }
        return;
    }
    /* an exit nobody asked for: died, evicted, crashed */
    event(b, "exited", b->last_exit);
    int stable = was == READY && now - b->ready_at >= KEEL_BACKEND_STABLE_MS;
    b->crashes = stable ? 0 : b->crashes + 1;
    b->restarts++;
    if (b->crashes <= 1 && was == READY) {
        start(b); /* died once while serving: bring it back now, waiters keep waiting */
        return;
    }
    uint64_t wait = keel_backend_backoff_ms(b->crashes);
    b->state = BACKOFF;
    char why[128];
    snprintf(why, sizeof(why), "%llu failed starts in a row: next start in %llu ms", (unsigned long long)b->crashes,
             (unsigned long long)wait);
    event(b, "backoff", why);
    keel_backend_notify(b, 0); /* requests fail over meanwhile */
    uv_timer_start(&b->wake, on_backoff_over, wait, 0);
}

/* ------------------------------------------------------------------ readiness */

static void poll_soon(struct keel_backend *b);

static void became_ready(struct keel_backend *b)
{
    b->state = READY;
    b->ready_at = keel_backend_now(b);
    b->last_used = b->ready_at;
    uv_timer_stop(&b->poll);
    keel_info("backend %s: ready on port %d (pid %d, %llu ms)", b->name, b->port, b->pid,
              (unsigned long long)(b->ready_at - b->started_at));
    event(b, "ready", NULL);
    keel_backend_notify(b, 1);
    arm_idle(b);
}

static void check_done(void *ctx, const char *err, const char *detail);

static void send_check(struct keel_backend *b, int probe)
{
    static const struct keel_upstream_cbs cbs = {keel_backend_check_head, keel_backend_check_data, check_done};
    struct keel_upstream_spec spec = {.url = probe ? b->probe_url : b->health_url,
                                      .body = probe ? b->probe_body : NULL,
                                      .body_len = probe ? strlen(b->probe_body) : 0,
                                      .connect_timeout_ms = CHECK_TIMEOUT_MS,
                                      .timeout_ms = CHECK_TIMEOUT_MS};
    b->check_status = 0;
    b->check_len = 0;
    b->check_probe = probe;
    b->check = keel_upstream_xfer_start(b->m->up, &spec, &cbs, b);
    if (b->check == NULL)
        poll_soon(b);
}

static void check_done(void *ctx, const char *err, const char *detail)
{
    struct keel_backend *b = ctx;
    b->check = NULL;
    if (b->state != STARTING)
        return;
    if (err != NULL || b->check_status != 200) {
        poll_soon(b);
        return;
    }
    if (b->ready_probe && !b->check_probe) {
        send_check(b, 1); /* health passed: now one tiny real completion, since /health can pass
                           * while inference is broken */
        return;
    }
    char code[64];
    if (b->check_probe && keel_answer_inspect(b->check_body, b->check_len, code, sizeof(code), NULL) != KEEL_ANSWER_OK) {
        poll_soon(b);
        return;
    }
    became_ready(b);
}

static void on_poll(uv_timer_t *t)
{
    struct keel_backend *b = t->data;
    if (b->state != STARTING || b->check != NULL)
        return;
    if (keel_backend_now(b) - b->started_at >= b->start_timeout_ms) {
        char why[96];
        snprintf(why, sizeof(why), "not ready within start_timeout (%llu ms)", (unsigned long long)b->start_timeout_ms);
        keel_warn("backend %s: %s: stopping it", b->name, why);
        event(b, "start_timeout", why);
        kill(-b->pid, SIGKILL); /* still STARTING: its exit counts as a failed start */
        return;
    }
    send_check(b, 0);
}

static void poll_soon(struct keel_backend *b)
{
    uv_timer_start(&b->poll, on_poll, POLL_MS, 0);
}

/* ------------------------------------------------------------------ start and stop */

static void start(struct keel_backend *b)
{
    if (b->model != NULL) {
        keel_control_start(b); /* a control plane's model: it runs no process of keel's */
        return;
    }
    if (b->run != NULL)
        return;
    struct run *run = calloc(1, sizeof(*run));
    if (run == NULL)
        return;
    run->b = b;
    uv_loop_t *loop = b->m->loop;
    uv_pipe_init(loop, &run->out[0], 0);
    uv_pipe_init(loop, &run->out[1], 0);
    run->out[0].data = run->out[1].data = run->proc.data = run;
    run->handles = 3;
    /* keel _exec COMMAND...: the child arms PR_SET_PDEATHSIG before exec, so a crashed keel
     * leaves no backend behind; its own session and process group are killed as one */
    char **args = calloc(b->argc + 3, sizeof(*args));
    args[0] = b->m->self_exe;
    args[1] = "_exec";
    for (size_t i = 0; i < b->argc; i++)
        args[2 + i] = b->argv[i];
    uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                     {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&run->out[0]},
                                     {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&run->out[1]}};
    static char *empty_env[] = {NULL};
    uv_process_options_t opts = {.exit_cb = on_process_exit,
                                 .file = b->m->self_exe,
                                 .args = args,
                                 .env = b->env ? b->env : empty_env,
                                 .flags = UV_PROCESS_DETACHED,
                                 .stdio_count = 3,
                                 .stdio = stdio};
    b->generation++;
    b->started_at = keel_backend_now(b);
    int rv = uv_spawn(loop, &run->proc, &opts);
    free(args);
    if (rv != 0) {
        keel_error("backend %s: cannot start %s: %s", b->name, b->argv[0], uv_strerror(rv));
        uv_close((uv_handle_t *)&run->proc, free_run_handle);
        uv_close((uv_handle_t *)&run->out[0], free_run_handle);
        uv_close((uv_handle_t *)&run->out[1], free_run_handle);
        b->crashes++;
        b->state = BACKOFF;
        uv_timer_start(&b->wake, on_backoff_over, keel_backend_backoff_ms(b->crashes), 0);
        return;
    }
    b->run = run;
    b->pid = run->proc.pid;
    b->state = STARTING;
    uv_read_start((uv_stream_t *)&run->out[0], on_alloc, on_read);
    uv_read_start((uv_stream_t *)&run->out[1], on_alloc, on_read);
    keel_info("backend %s: started pid %d on port %d (run %llu)", b->name, b->pid, b->port,
              (unsigned long long)b->generation);
    event(b, "started", NULL);
    uv_timer_start(&b->poll, on_poll, 50, 0);
}

static void on_kill_grace(uv_timer_t *t)
{
    struct keel_backend *b = t->data;
    if (b->run != NULL) {
        keel_warn("backend %s: pid %d still alive after SIGTERM: SIGKILL", b->name, b->pid);
        kill(-b->pid, SIGKILL);
    }
}

/* signals the backend's whole process group; the exit callback finishes the stop */
static void stop(struct keel_backend *b, int sig)
{
    if (b->run == NULL) {
        b->state = STOPPED;
        return;
    }
    b->state = STOPPING;
    uv_timer_stop(&b->poll);
    kill(-b->pid, sig);
    if (sig != SIGKILL)
        uv_timer_start(&b->wake, on_kill_grace, KILL_GRACE_MS, 0);
}

void keel_backend_dead(struct keel_backend *b, uint64_t generation, const char *why)
{
    if (generation != b->generation || b->state != READY)
        return; /* that run is already being replaced: one restart for many requests */
    if (b->model != NULL) {
        keel_control_dead(b, why);
        return;
    }
    keel_warn("backend %s: pid %d looks dead (%s): restarting it on port %d", b->name, b->pid, why, b->port);
    event(b, "restart", why);
    b->restart_due = 1;
    stop(b, SIGKILL); /* an evicted or wedged server gets no grace */
}

static void on_idle(uv_timer_t *t)
{
    struct keel_backend *b = t->data;
    if (b->state != READY || b->active > 0)
        return;
    if (keel_backend_now(b) - b->last_used < b->idle_unload_ms) {
        arm_idle(b);
        return;
    }
    keel_info("backend %s: idle for %llu ms: unloading it", b->name, (unsigned long long)b->idle_unload_ms);
    event(b, "unloaded", "idle");
    stop(b, SIGTERM);
}

static void arm_idle(struct keel_backend *b)
{
    if (b->idle_unload_ms == 0 || b->state != READY || b->active > 0)
        return;
    uint64_t at = b->last_used + b->idle_unload_ms, now = keel_backend_now(b);
    uv_timer_start(&b->wake, on_idle, at > now ? at - now : 0, 0);
}

void keel_managed_stop_all(struct keel_managed *m, void (*done)(void *), void *ctx)
{
    m->all_stopped = done;
    m->all_stopped_ctx = ctx;
    int any = 0;
    for (size_t i = 0; i < m->n; i++) {
        struct keel_backend *b = m->backends[i];
        if (b->model != NULL) {
            keel_control_stop(b);
            continue;
        }
        b->restart_due = 0;
        uv_timer_stop(&b->wake);
        keel_backend_notify(b, 0);
        if (b->run != NULL) {
            any = 1;
            stop(b, SIGTERM);
        } else {
            b->state = STOPPED;
        }
    }
    if (!any)
        done(ctx);
}

/* ------------------------------------------------------------------ configuration */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* s with every "{port}" replaced; malloc'd */
static char *with_port(const char *s, int port)
{
    char num[16];
    snprintf(num, sizeof(num), "%d", port);
    size_t cap = strlen(s) + 1;
    for (const char *p = strstr(s, "{port}"); p != NULL; p = strstr(p + 6, "{port}"))
        cap += strlen(num);
    char *out = malloc(cap), *o = out;
    if (out == NULL)
        return NULL;
    while (*s != '\0') {
        if (strncmp(s, "{port}", 6) == 0) {
            o += snprintf(o, cap - (size_t)(o - out), "%s", num);
            s += 6;
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    return out;
}

static char **copy_strv(char *const *v, size_t n, int port)
{
    char **c = calloc(n + 1, sizeof(*c));
    for (size_t i = 0; c != NULL && i < n; i++)
        c[i] = port ? with_port(v[i], port) : strdup(v[i]);
    return c;
}

static struct keel_backend *create(struct keel_managed *m, const struct keel_config *c,
                                   const struct keel_upstream_conf *u, char *err, size_t errlen)
{
    const struct keel_managed_conf *mc = u->managed;
    int port = mc->port ? mc->port : free_port();
    if (port <= 0) {
        snprintf(err, errlen, "managed upstream %s: no free loopback port", u->name);
        return NULL;
    }
    /* probe_model, else the first target naming this upstream, else a placeholder */
    const char *probe_model = mc->probe_model;
    for (size_t i = 0; i < c->nmodels && probe_model == NULL; i++)
        for (size_t j = 0; j < c->models[i].ntargets && probe_model == NULL; j++)
            if (c->models[i].targets[j].upstream == u)
                probe_model = c->models[i].targets[j].model;
    char *body = keel_backend_probe_body(probe_model ? probe_model : "probe");
    struct keel_backend *b = body ? calloc(1, sizeof(*b)) : NULL;
    struct keel_backend **nb = b ? realloc(m->backends, (m->n + 1) * sizeof(*nb)) : NULL;
    if (nb == NULL) {
        free(body);
        free(b);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->backends = nb;
    m->backends[m->n++] = b;
    b->m = m;
    b->name = strdup(u->name);
    b->port = port;
    b->argc = mc->argc;
    b->argv = copy_strv(mc->argv, mc->argc, port);
    b->env = mc->nenv ? copy_strv(mc->env, mc->nenv, 0) : NULL;
    b->start_timeout_ms = mc->start_timeout_ms;
    b->idle_unload_ms = mc->idle_unload_ms;
    b->ready_probe = mc->ready_probe;
    char *base = with_port(u->base_url, port);
    /* health lives at the server's root: scheme://host:port + path */
    const char *host = strstr(base, "://");
    const char *slash = host ? strchr(host + 3, '/') : NULL;
    size_t origin = slash ? (size_t)(slash - base) : strlen(base);
    size_t hl = origin + strlen(mc->health) + 1, pl = strlen(base) + sizeof("/chat/completions");
    b->health_url = malloc(hl);
    b->probe_url = malloc(pl);
    snprintf(b->health_url, hl, "%.*s%s", (int)origin, base, mc->health);
    snprintf(b->probe_url, pl, "%s/chat/completions", base);
    free(base);
    b->probe_body = body;
    b->waiters.next = b->waiters.prev = &b->waiters;
    uv_timer_init(m->loop, &b->poll);
    uv_timer_init(m->loop, &b->wake);
    b->poll.data = b->wake.data = b;
    b->state = STOPPED;
    return b;
}

struct keel_managed *keel_managed_new(uv_loop_t *loop, struct keel_upstream *up, struct keel_events *events,
                                      const char *self_exe)
{
    struct keel_managed *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->loop = loop;
    m->up = up;
    m->events = events;
    m->self_exe = strdup(self_exe);
    return m;
}

struct keel_backend *keel_managed_get(struct keel_managed *m, const char *upstream, const char *model)
{
    for (size_t i = 0; i < m->n; i++) {
        const struct keel_backend *b = m->backends[i];
        if (strcmp(b->name, upstream) == 0 && (b->model == NULL || (model != NULL && strcmp(b->model, model) == 0)))
            return m->backends[i];
    }
    return NULL;
}

/* a control plane's models: one backend per model a target names, made when first named (kept
 * across reloads); none is loaded before a request needs it */
static int bind_control(struct keel_managed *m, const struct keel_config *c, const struct keel_upstream_conf *u,
                        char *err, size_t errlen)
{
    for (size_t i = 0; i < c->nmodels; i++) {
        for (size_t j = 0; j < c->models[i].ntargets; j++) {
            const struct keel_target_conf *t = &c->models[i].targets[j];
            if (t->upstream != u || keel_managed_get(m, u->name, t->model) != NULL)
                continue;
            struct keel_backend *b = keel_control_create(m, u, t->model);
            struct keel_backend **nb = b ? realloc(m->backends, (m->n + 1) * sizeof(*nb)) : NULL;
            if (nb == NULL) {
                if (b != NULL)
                    keel_control_free(b);
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            m->backends = nb;
            m->backends[m->n++] = b;
        }
    }
    return 0;
}

int keel_managed_bind(struct keel_managed *m, struct keel_config *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->nupstreams; i++) {
        struct keel_upstream_conf *u = &c->upstreams[i];
        if (u->control != NULL && bind_control(m, c, u, err, errlen) != 0)
            return -1;
        if (u->managed == NULL)
            continue;
        struct keel_backend *b = keel_managed_get(m, u->name, NULL);
        int fresh = b == NULL;
        if (fresh && (b = create(m, c, u, err, errlen)) == NULL)
            return -1;
        char *url = with_port(u->base_url, b->port);
        if (url == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        free(u->base_url);
        u->base_url = url;
        if (fresh)
            start(b);
        else
            keel_info("backend %s: kept (port %d, pid %d); command changes take effect at keel's next start",
                      b->name, b->port, b->pid);
    }
    return 0;
}

json_t *keel_managed_status(struct keel_managed *m)
{
    json_t *arr = json_array();
    uint64_t now = uv_now(m->loop);
    for (size_t i = 0; i < m->n; i++) {
        struct keel_backend *b = m->backends[i];
        if (b->model != NULL) {
            json_array_append_new(arr, keel_control_status(b));
            continue;
        }
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:i, s:i, s:I, s:I, s:I, s:s, s:I, s:I}", "upstream", b->name, "state",
                           keel_backend_state_names[b->state], "pid", b->run ? b->pid : 0, "port", b->port, "restarts",
                           (json_int_t)b->restarts, "runs", (json_int_t)b->generation, "crashes",
                           (json_int_t)b->crashes, "last_exit", b->last_exit, "active", (json_int_t)b->active,
                           "uptime_ms", (json_int_t)(b->state == READY ? now - b->ready_at : 0)));
    }
    return arr;
}

void keel_managed_metrics(struct keel_managed *m, void (*line)(void *, const char *), void *ctx)
{
    char buf[512];
    line(ctx, "# HELP keel_backend_restarts_total Runs of a managed backend after its first (deaths, evictions, "
              "crashes).\n# TYPE keel_backend_restarts_total counter\n");
    for (size_t i = 0; i < m->n; i++) {
        if (m->backends[i]->model != NULL)
            continue;
        snprintf(buf, sizeof(buf), "keel_backend_restarts_total{upstream=\"%s\"} %llu\n", m->backends[i]->name,
                 (unsigned long long)m->backends[i]->restarts);
        line(ctx, buf);
    }
    line(ctx, "# HELP keel_backend_recoveries_total Unload-load sequences a control plane's model went through "
              "after its server was found dead.\n# TYPE keel_backend_recoveries_total counter\n");
    for (size_t i = 0; i < m->n; i++) {
        const struct keel_backend *b = m->backends[i];
        if (b->model == NULL)
            continue;
        snprintf(buf, sizeof(buf), "keel_backend_recoveries_total{upstream=\"%s\",model=\"%s\"} %llu\n", b->name,
                 b->model, (unsigned long long)b->recoveries);
        line(ctx, buf);
    }
    line(ctx, "# HELP keel_backend_url_changes_total Times a control plane's model came back at another "
              "data-plane URL.\n# TYPE keel_backend_url_changes_total counter\n");
    for (size_t i = 0; i < m->n; i++) {
        const struct keel_backend *b = m->backends[i];
        if (b->model == NULL)
            continue;
        snprintf(buf, sizeof(buf), "keel_backend_url_changes_total{upstream=\"%s\",model=\"%s\"} %llu\n", b->name,
                 b->model, (unsigned long long)b->url_changes);
        line(ctx, buf);
    }
    line(ctx, "# HELP keel_backend_up Whether a managed backend (or a control plane's model) is ready (1) or not "
              "(0).\n# TYPE keel_backend_up gauge\n");
    for (size_t i = 0; i < m->n; i++) {
        const struct keel_backend *b = m->backends[i];
        if (b->model != NULL)
            snprintf(buf, sizeof(buf), "keel_backend_up{upstream=\"%s\",model=\"%s\"} %d\n", b->name, b->model,
                     b->state == READY);
        else
            snprintf(buf, sizeof(buf), "keel_backend_up{upstream=\"%s\"} %d\n", b->name, b->state == READY);
        line(ctx, buf);
    }
}
