/* sim_control.c - `keel sim --control`: a stand-in for Lemonade's `lemond` control plane (seed
 * 002), so keel's tests and demo can meet its traps. POST /api/v1/load spawns one child `keel sim`
 * per model on a port the kernel picks; loaded[] is bookkeeping only: a child that dies (evicted,
 * POST /sim/evict) stays listed, and a load of a listed model answers success without spawning.
 * The children answer inference themselves (sim.c); this file spawns, watches, reaps and kills
 * them, and answers /api/v1/{load,unload,health} and the test hooks /sim/evict and /sim/control. */
#include "sim.h"

#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "core/units.h"
#include "io/server.h"
#include "log.h"

#define MAX_MODELS 64          /* loaded and spawning at once; one more load is answered 500 */
#define START_TIMEOUT_MS 10000 /* a child's log must say where it listens within this */
#define STOP_GRACE_MS 5000     /* SIGTERM: children not reaped by then are left to PDEATHSIG */
#define LINE_CAP 4096          /* a child's log line; longer ones are cut */
#define MAX_NAME 256           /* bytes in a model_name; a longer one is answered 400 */
#define MAX_BODY (1u << 20)
#define READY_LINE "sim listening on 127.0.0.1:" /* sim.c's start line: the port follows */

/* A request answered later: a load waiting for its spawn, an unload or evict for the reap. */
struct held {
    struct keel_http *h; /* NULL once its client left (on_held_gone) */
    int status;          /* the answer's status, when it was decided at hold time */
    json_t *answer;      /* owned; NULL: the answer comes with release() */
    struct held *next;
};

struct model;

/* One child process, a `keel sim --listen 127.0.0.1:0`. Freed when its four handles are closed,
 * which starts in its exit callback; until then it is on ctl->runs. */
struct run {
    struct control *ctl;
    struct model *m; /* the model it serves; NULL once unloaded or its start failed */
    char *name;      /* the model's name, for its log lines (owned) */
    int pid;
    int port;        /* 0 until its log says where it listens */
    uv_process_t proc;
    uv_pipe_t out[2];  /* its stdout, stderr */
    uv_timer_t start;  /* START_TIMEOUT_MS for the port to show */
    int handles;       /* handles not yet closed; freed at 0 */
    struct run *next;  /* ctl->runs, every child not yet reaped */
    struct held *reap; /* unloads and evicts answered once it is reaped */
    char line[2][LINE_CAP];
    size_t linelen[2];
};

/* A model being spawned, or in loaded[] (then listed by health until unloaded, dead or not). */
struct model {
    char *name;          /* owned */
    int loaded;          /* in loaded[]: its child's port was known; 0 while spawning */
    int port, pid;       /* of the child loaded[] names, stale once it died */
    struct run *run;     /* that child until reaped; NULL: it died, the entry is stale */
    struct held *waiting; /* loads waiting for the spawn under way */
};

struct control {
    uv_loop_t *loop;
    struct keel_server *srv;
    char exe[4096]; /* this binary: each child runs it as `keel _exec EXE sim ...` */
    struct model *models[MAX_MODELS]; /* spawning and loaded; loaded ones in load order */
    size_t nmodels;
    struct run *runs; /* children not yet reaped */
    uint64_t loads, spawns, unloads, unload_failures, health; /* requests (spawns: children started) */
    uint64_t fail_unloads; /* unloads still to fail (POST /sim/control) */
    int down;              /* every /api/v1 request answers 503 (POST /sim/control) */
    int stopping;          /* SIGTERM or SIGINT: children killed, the loop stops once all are reaped */
    uv_signal_t sigterm, sigint;
    uv_timer_t grace; /* STOP_GRACE_MS once stopping */
};

/* ------------------------------------------------------------------ answers */

/* answers h with j as JSON; takes j */
static void reply(struct keel_http *h, int status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    struct keel_header hdrs[] = {{"content-type", "application/json"}};
    keel_http_respond(h, status, hdrs, 1, s ? s : "{}", s ? strlen(s) : 2);
    free(s);
}

/* Lemonade's answer shape: {"status": status, "message": ...}; a new reference */
static json_t *lemonade(const char *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *lemonade(const char *status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return json_pack("{s:s, s:s}", "status", status, "message", msg);
}

/* the client of a held request left: it is answered no more (the held stays on its list) */
static void on_held_gone(void *ctx)
{
    ((struct held *)ctx)->h = NULL;
}

/* Appends h to *list, to be answered by release(): with answer (taken) if not NULL, else with
 * what release() is given. Out of memory: answered 500 now. */
static void hold(struct held **list, struct keel_http *h, int status, json_t *answer)
{
    struct held *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        json_decref(answer);
        reply(h, 500, lemonade("error", "out of memory"));
        return;
    }
    w->h = h;
    w->status = status;
    w->answer = answer;
    while (*list != NULL)
        list = &(*list)->next;
    *list = w;
    keel_http_watch(h, on_held_gone, w);
}

/* Answers and frees every held request of list: each with its own answer, else status and j;
 * takes j. */
static void release(struct held *list, int status, json_t *j)
{
    while (list != NULL) {
        struct held *w = list;
        list = w->next;
        if (w->h != NULL) {
            struct keel_http *h = w->h;
            w->h = NULL;
            reply(h, w->answer ? w->status : status, json_incref(w->answer ? w->answer : j));
        }
        json_decref(w->answer);
        free(w);
    }
    json_decref(j);
}

/* ------------------------------------------------------------------ loaded[] */

/* the model of that name, spawning or loaded, or NULL */
static struct model *find(struct control *ctl, const char *name)
{
    for (size_t i = 0; i < ctl->nmodels; i++)
        if (strcmp(ctl->models[i]->name, name) == 0)
            return ctl->models[i];
    return NULL;
}

/* takes m out of the table (order kept); the caller frees or re-adds it */
static void take_out(struct control *ctl, struct model *m)
{
    for (size_t i = 0; i < ctl->nmodels; i++) {
        if (ctl->models[i] != m)
            continue;
        memmove(&ctl->models[i], &ctl->models[i + 1], (ctl->nmodels - i - 1) * sizeof(*ctl->models));
        ctl->nmodels--;
        return;
    }
}

/* m out of the table and freed; its child, if any, no longer serves it (left to whoever kills it) */
static void model_free(struct control *ctl, struct model *m)
{
    take_out(ctl, m);
    if (m->run != NULL)
        m->run->m = NULL;
    free(m->name);
    free(m);
}

/* every model in loaded[], in load order, as health lists them ("alive" too for /sim/control) */
static json_t *listing(struct control *ctl, int with_alive)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < ctl->nmodels; i++) {
        struct model *m = ctl->models[i];
        if (!m->loaded)
            continue;
        char url[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1", m->port);
        json_t *e = json_pack("{s:s, s:s, s:i}", "model_name", m->name, "backend_url", url, "pid", m->pid);
        if (with_alive)
            json_object_set_new(e, "alive", json_boolean(m->run != NULL));
        json_array_append_new(arr, e);
    }
    return arr;
}

/* ------------------------------------------------------------------ children */

/* the start under way failed (why): its loads are answered 500 and m forgotten */
static void start_failed(struct control *ctl, struct model *m, const char *why)
{
    keel_warn("sim control: load %s failed: %s", m->name, why);
    struct held *waiting = m->waiting;
    json_t *j = lemonade("error", "Failed to load model %s: %s", m->name, why);
    m->waiting = NULL;
    model_free(ctl, m);
    release(waiting, 500, j);
}

/* the child's log said where it listens: m joins loaded[] (last) and its loads are answered */
static void became_loaded(struct control *ctl, struct model *m, struct run *run)
{
    m->loaded = 1;
    m->port = run->port;
    m->pid = run->pid;
    take_out(ctl, m);
    ctl->models[ctl->nmodels++] = m;
    keel_info("sim control: loaded %s: pid %d on port %d", m->name, m->pid, m->port);
    struct held *waiting = m->waiting;
    m->waiting = NULL;
    release(waiting, 200, lemonade("success", "Loaded model: %s", m->name));
}

/* one line of the child's output: forwarded to this log; until the port is known, looked at
 * for sim.c's start line */
static void on_line(struct run *run, const char *line)
{
    keel_info("sim control: %s[%d]: %s", run->name, run->pid, line);
    const char *p = run->port == 0 ? strstr(line, READY_LINE) : NULL;
    if (p == NULL)
        return;
    p += sizeof(READY_LINE) - 1;
    size_t n = strspn(p, "0123456789");
    char digits[8];
    uint64_t port;
    if (n == 0 || n >= sizeof(digits))
        return;
    memcpy(digits, p, n);
    digits[n] = '\0';
    if (keel_parse_uint(digits, &port) != 0 || port == 0 || port > 65535)
        return;
    run->port = (int)port;
    uv_timer_stop(&run->start);
    if (run->m != NULL)
        became_loaded(run->ctl, run->m, run);
}

/* every read into one buffer: on_read is done with it before the next */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char slab[65536]; /* one loop thread; consumed before the next read */
    buf->base = slab;
    buf->len = sizeof(slab);
}

/* one of the run's handles closed: the run is freed with its last (STYLE O3) */
static void on_run_closed(uv_handle_t *h)
{
    struct run *run = h->data;
    if (--run->handles == 0) {
        free(run->name);
        free(run);
    }
}

/* cuts the child's output into lines (an overlong one is cut at LINE_CAP) for on_line */
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct run *run = s->data;
    int which = s == (uv_stream_t *)&run->out[1];
    if (n < 0) {
        if (!uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, on_run_closed);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        char c = buf->base[i];
        if (c != '\n') {
            if (run->linelen[which] < LINE_CAP - 1)
                run->line[which][run->linelen[which]++] = c;
            continue;
        }
        run->line[which][run->linelen[which]] = '\0';
        run->linelen[which] = 0;
        on_line(run, run->line[which]);
    }
}

/* START_TIMEOUT_MS passed and the child never said where it listens: it is killed, its loads
 * answered 500 now (its exit concerns no model any more) */
static void on_start_timeout(uv_timer_t *t)
{
    struct run *run = t->data;
    if (run->port != 0 || run->m == NULL)
        return;
    char why[64];
    snprintf(why, sizeof(why), "not listening within %d ms", START_TIMEOUT_MS);
    start_failed(run->ctl, run->m, why);
    uv_process_kill(&run->proc, SIGKILL);
}

/* The child is reaped: its pid may be reused from now on, so nothing signals it again. A model
 * still starting fails; a loaded one stays in loaded[], stale (the seed's silent eviction). */
static void on_child_exit(uv_process_t *p, int64_t status, int sig)
{
    struct run *run = p->data;
    struct control *ctl = run->ctl;
    char how[64];
    if (sig != 0)
        snprintf(how, sizeof(how), "killed by signal %d", sig);
    else
        snprintf(how, sizeof(how), "exited with status %lld", (long long)status);
    for (struct run **r = &ctl->runs; *r != NULL; r = &(*r)->next) {
        if (*r == run) {
            *r = run->next;
            break;
        }
    }
    struct model *m = run->m;
    run->m = NULL;
    if (m != NULL)
        m->run = NULL;
    if (m != NULL && !m->loaded) {
        start_failed(ctl, m, how);
    } else if (m != NULL && !ctl->stopping) {
        keel_warn("sim control: %s: pid %d %s: loaded[] still lists it on port %d", m->name, run->pid, how,
                  m->port);
    } else {
        keel_info("sim control: %s: pid %d %s", run->name, run->pid, how);
    }
    struct held *reap = run->reap;
    run->reap = NULL;
    release(reap, 500, NULL);
    for (int i = 0; i < 2; i++)
        if (!uv_is_closing((uv_handle_t *)&run->out[i]))
            uv_close((uv_handle_t *)&run->out[i], on_run_closed);
    uv_close((uv_handle_t *)&run->start, on_run_closed);
    uv_close((uv_handle_t *)p, on_run_closed);
    if (ctl->stopping && ctl->runs == NULL)
        uv_stop(ctl->loop);
}

/* Starts m's child: `keel _exec EXE sim --listen 127.0.0.1:0`, so it arms PR_SET_PDEATHSIG
 * (SIGKILL) before exec and dies with this process however it ends. 0, or a libuv error. */
static int spawn(struct control *ctl, struct model *m)
{
    struct run *run = calloc(1, sizeof(*run));
    char *name = strdup(m->name);
    if (run == NULL || name == NULL) {
        free(run);
        free(name);
        return UV_ENOMEM;
    }
    run->ctl = ctl;
    run->name = name;
    run->handles = 4;
    uv_pipe_init(ctl->loop, &run->out[0], 0);
    uv_pipe_init(ctl->loop, &run->out[1], 0);
    uv_timer_init(ctl->loop, &run->start);
    run->out[0].data = run->out[1].data = run->start.data = run->proc.data = run;
    char *args[] = {ctl->exe, "_exec", ctl->exe, "sim", "--listen", "127.0.0.1:0", NULL};
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&run->out[0]},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&run->out[1]}};
    uv_process_options_t opts = {
        .exit_cb = on_child_exit, .file = ctl->exe, .args = args, .stdio_count = 3, .stdio = stdio};
    int rv = uv_spawn(ctl->loop, &run->proc, &opts);
    if (rv != 0) {
        uv_close((uv_handle_t *)&run->proc, on_run_closed);
        uv_close((uv_handle_t *)&run->out[0], on_run_closed);
        uv_close((uv_handle_t *)&run->out[1], on_run_closed);
        uv_close((uv_handle_t *)&run->start, on_run_closed);
        return rv;
    }
    ctl->spawns++;
    run->pid = run->proc.pid;
    run->m = m;
    m->run = run;
    run->next = ctl->runs;
    ctl->runs = run;
    uv_read_start((uv_stream_t *)&run->out[0], on_alloc, on_read);
    uv_read_start((uv_stream_t *)&run->out[1], on_alloc, on_read);
    uv_timer_start(&run->start, on_start_timeout, START_TIMEOUT_MS, 0);
    keel_info("sim control: loading %s: started pid %d", m->name, run->pid);
    return 0;
}

/* ------------------------------------------------------------------ endpoints */

/* the request's body as JSON (a new reference), or NULL if it is none */
static json_t *read_body(struct keel_http *h)
{
    size_t len;
    const char *text = keel_http_body(h, &len);
    return json_loadb(text, len, 0, NULL);
}

/* body's "model_name" if a string of 1 to MAX_NAME bytes, else NULL (lives as long as body) */
static const char *model_name(json_t *body)
{
    json_t *j = json_object_get(body, "model_name");
    size_t len = json_string_length(j);
    return json_is_string(j) && len > 0 && len <= MAX_NAME ? json_string_value(j) : NULL;
}

/* 1 after answering 503 while the control plane plays down (POST /sim/control) */
static int refused_down(struct control *ctl, struct keel_http *h)
{
    if (!ctl->down)
        return 0;
    reply(h, 503, lemonade("error", "control plane down"));
    return 1;
}

/* An /api/v1 request naming a model, counted in *count: its body (a new reference; *name is its
 * model_name, living as long as it), or NULL once answered: 503 while down, 400 without a name */
static json_t *named_request(struct control *ctl, struct keel_http *h, uint64_t *count, const char **name)
{
    (*count)++;
    if (refused_down(ctl, h))
        return NULL;
    json_t *body = read_body(h);
    *name = model_name(body);
    if (*name == NULL) {
        reply(h, 400, lemonade("error", "model_name: expected a string of 1 to %d bytes", MAX_NAME));
        json_decref(body);
        return NULL;
    }
    return body;
}

/* POST /api/v1/load: a listed model (its child alive or not) is "already loaded" with no spawn,
 * as lemond answers; one being started is waited for; any other gets a child of its own */
static void load(struct control *ctl, struct keel_http *h)
{
    const char *name;
    json_t *body = named_request(ctl, h, &ctl->loads, &name);
    if (body == NULL)
        return;
    struct model *m = find(ctl, name);
    if (m != NULL && m->loaded) {
        keel_info("sim control: load %s: already in loaded[] (pid %d, %s): no spawn", name, m->pid,
                  m->run ? "alive" : "dead");
        reply(h, 200, lemonade("success", "Model already loaded: %s", name));
    } else if (m != NULL) {
        hold(&m->waiting, h, 0, NULL); /* one spawn for every load while it starts */
    } else if (ctl->nmodels == MAX_MODELS) {
        reply(h, 500, lemonade("error", "Failed to load model %s: %d models already", name, MAX_MODELS));
    } else {
        m = calloc(1, sizeof(*m));
        char *copy = m ? strdup(name) : NULL;
        int rv = copy ? 0 : UV_ENOMEM;
        if (rv == 0) {
            m->name = copy;
            ctl->models[ctl->nmodels++] = m;
            rv = spawn(ctl, m);
        }
        if (rv == 0) {
            hold(&m->waiting, h, 0, NULL);
        } else {
            keel_error("sim control: load %s failed: cannot start %s: %s", name, ctl->exe, uv_strerror(rv));
            reply(h, 500, lemonade("error", "Failed to load model %s: %s", name, uv_strerror(rv)));
            if (copy != NULL)
                model_free(ctl, m);
            else
                free(m);
        }
    }
    json_decref(body);
}

/* POST /api/v1/unload: the child SIGKILLed and the model out of loaded[], answered once the child
 * is reaped (its port then refuses); while fail_unloads lasts, 500 and nothing changes */
static void unload(struct control *ctl, struct keel_http *h)
{
    const char *name;
    json_t *body = named_request(ctl, h, &ctl->unloads, &name);
    if (body == NULL)
        return;
    struct model *m = find(ctl, name);
    if (ctl->fail_unloads > 0) {
        ctl->fail_unloads--;
        ctl->unload_failures++;
        keel_warn("sim control: unload %s: failed on purpose (%llu more to fail)", name,
                  (unsigned long long)ctl->fail_unloads);
        reply(h, 500, lemonade("error", "unload failed"));
    } else if (m == NULL || !m->loaded) {
        reply(h, 404, lemonade("error", "Model not loaded: %s", name));
    } else {
        keel_info("sim control: unloaded %s (pid %d, %s)", name, m->pid, m->run ? "killing it" : "already dead");
        json_t *ok = lemonade("success", "Unloaded model: %s", name);
        struct run *run = m->run;
        model_free(ctl, m);
        if (run != NULL) {
            uv_process_kill(&run->proc, SIGKILL);
            hold(&run->reap, h, 200, ok);
        } else {
            reply(h, 200, ok);
        }
    }
    json_decref(body);
}

/* GET /api/v1/health: loaded[] as lemond keeps it, dead children included */
static void health(struct control *ctl, struct keel_http *h)
{
    ctl->health++;
    if (refused_down(ctl, h))
        return;
    struct model *last = NULL;
    for (size_t i = 0; i < ctl->nmodels; i++)
        if (ctl->models[i]->loaded)
            last = ctl->models[i];
    reply(h, 200, json_pack("{s:s, s:s?, s:o}", "status", "ok", "model_loaded", last ? last->name : NULL,
                            "all_models_loaded", listing(ctl, 0)));
}

/* POST /sim/evict: the model's child SIGKILLed behind lemond's back (loaded[] unchanged),
 * answered once it is reaped; a child already dead is answered at once */
static void evict(struct control *ctl, struct keel_http *h)
{
    json_t *body = read_body(h);
    const char *name = model_name(body);
    struct model *m = name ? find(ctl, name) : NULL;
    if (m == NULL || !m->loaded) {
        reply(h, 404, lemonade("error", "Model not loaded: %s", name ? name : ""));
    } else if (m->run != NULL) {
        keel_info("sim control: evicting %s: SIGKILL pid %d, loaded[] kept", name, m->pid);
        uv_process_kill(&m->run->proc, SIGKILL);
        hold(&m->run->reap, h, 200, json_pack("{s:i}", "evicted", m->pid));
    } else {
        reply(h, 200, json_pack("{s:i}", "evicted", m->pid));
    }
    json_decref(body);
}

/* GET /sim/control, and the answer to POST: the counters, the injected failures, loaded[] */
static void control_state(struct control *ctl, struct keel_http *h)
{
    reply(h, 200, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:o}", "loads", (json_int_t)ctl->loads, "spawns",
                            (json_int_t)ctl->spawns, "unloads", (json_int_t)ctl->unloads, "unload_failures",
                            (json_int_t)ctl->unload_failures, "health", (json_int_t)ctl->health, "fail_unloads",
                            (json_int_t)ctl->fail_unloads, "down", ctl->down, "loaded", listing(ctl, 1)));
}

/* POST /sim/control {"fail_unloads": N, "down": BOOL}, either or both: a body with anything
 * else changes nothing and gets 400 */
static void control_set(struct control *ctl, struct keel_http *h)
{
    json_t *body = read_body(h);
    json_t *fail = json_object_get(body, "fail_unloads"), *down = json_object_get(body, "down");
    size_t known = (fail != NULL) + (down != NULL);
    if (!json_is_object(body) || json_object_size(body) != known || (fail && !json_is_integer(fail)) ||
        (fail && json_integer_value(fail) < 0) || (down && !json_is_boolean(down))) {
        reply(h, 400, json_pack("{s:s}", "error", "expected {\"fail_unloads\": N >= 0, \"down\": true|false}"));
        json_decref(body);
        return;
    }
    if (fail != NULL)
        ctl->fail_unloads = (uint64_t)json_integer_value(fail);
    if (down != NULL)
        ctl->down = json_is_true(down);
    keel_info("sim control: fail_unloads %llu, %s", (unsigned long long)ctl->fail_unloads, ctl->down ? "down" : "up");
    json_decref(body);
    control_state(ctl, h);
}

/* every endpoint: /api/v1 answers as lemond does, /sim/evict and /sim/control are the test hooks */
static const struct {
    const char *method, *path;
    void (*fn)(struct control *ctl, struct keel_http *h);
} routes[] = {
    {"POST", "/api/v1/load", load},     {"POST", "/api/v1/unload", unload}, {"GET", "/api/v1/health", health},
    {"POST", "/sim/evict", evict},      {"POST", "/sim/control", control_set},
    {"GET", "/sim/control", control_state},
};

/* the route of the request's method and path, else 404 */
static void on_request(void *app, struct keel_http *h)
{
    size_t plen, mlen;
    const char *path = keel_http_path(h, &plen);
    const char *method = keel_http_method(h, &mlen);
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strlen(routes[i].method) == mlen && memcmp(routes[i].method, method, mlen) == 0 &&
            strlen(routes[i].path) == plen && memcmp(routes[i].path, path, plen) == 0) {
            routes[i].fn(app, h);
            return;
        }
    }
    reply(h, 404, lemonade("error", "unknown path"));
}

/* ------------------------------------------------------------------ life */

/* STOP_GRACE_MS after SIGTERM and some child is still not reaped: stop anyway (PDEATHSIG) */
static void on_grace(uv_timer_t *t)
{
    keel_warn("sim control: children not reaped within %d ms: exiting anyway", STOP_GRACE_MS);
    uv_stop(t->loop);
}

/* SIGTERM, SIGINT: no new connections, every child SIGKILLed; the loop stops once all are
 * reaped (on_child_exit), so none outlives the control plane */
static void on_signal(uv_signal_t *s, int signum)
{
    struct control *ctl = s->data;
    if (ctl->stopping)
        return;
    ctl->stopping = 1;
    keel_server_stop_accepting(ctl->srv);
    if (ctl->runs == NULL) {
        uv_stop(ctl->loop);
        return;
    }
    for (struct run *r = ctl->runs; r != NULL; r = r->next)
        uv_process_kill(&r->proc, SIGKILL);
    uv_timer_start(&ctl->grace, on_grace, STOP_GRACE_MS, 0);
}

/* see sim.h */
int keel_sim_control_run(const char *listen)
{
    static struct control ctl; /* reachable until exit */
    char *host;
    int port;
    if (keel_sim_listen(listen, &host, &port) != 0)
        return 2;
    ssize_t l = readlink("/proc/self/exe", ctl.exe, sizeof(ctl.exe) - 1);
    if (l <= 0) {
        keel_error("sim control: cannot find this binary (/proc/self/exe)");
        free(host);
        return 1;
    }
    ctl.exe[l] = '\0';
    char err[256];
    ctl.loop = uv_default_loop();
    ctl.srv = keel_server_new(ctl.loop, host, port, MAX_BODY, on_request, &ctl, err, sizeof(err));
    if (ctl.srv == NULL) {
        keel_error("sim control: %s", err);
        free(host);
        return 1;
    }
    uv_timer_init(ctl.loop, &ctl.grace);
    uv_signal_init(ctl.loop, &ctl.sigterm);
    uv_signal_init(ctl.loop, &ctl.sigint);
    ctl.sigterm.data = ctl.sigint.data = &ctl;
    uv_signal_start(&ctl.sigterm, on_signal, SIGTERM);
    uv_signal_start(&ctl.sigint, on_signal, SIGINT);
    keel_info("sim control plane listening on %s:%d", host, keel_server_port(ctl.srv));
    free(host);
    uv_run(ctl.loop, UV_RUN_DEFAULT);
    return 0;
}
