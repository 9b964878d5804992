/* probe.c - background probes of open targets; see probe.h. A probe is the smallest real request
 * the target's API answers (a 1-token chat completion or Message, or one embedding of "ping"),
 * sent with the upstream's key and configured headers, judged as request.c judges an attempt
 * (keel_classify), within the target's first_byte timeout. Its verdict goes to the breaker
 * (keel_breaker_probe_done), its record to the target's state (/admin/status, /metrics), and a
 * `probe` event out, plus the breaker's own event when it closes. */
#include "probe.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "core/assemble.h"
#include "core/backend.h"
#include "core/breaker.h"
#include "core/buf.h"
#include "core/classify.h"
#include "core/event.h"
#include "events.h"
#include "gateway_t.h"
#include "io/upstream.h"
#include "log.h"
#include "managed.h"
#include "state.h"

#define MAX_ANSWER (1u << 20) /* an embedding of one word is tens of KiB; a 1-token answer less */

/* one probe under way */
struct job {
    struct keel_probe *p;
    struct job *next;              /* the prober's list */
    struct keel_target_state *ts;  /* lives as long as the process (state.h) */
    struct keel_config *config;    /* held while the probe runs: t points into it */
    const struct keel_target_conf *t;
    enum keel_api api;             /* of the model that names t: which request the probe is */
    struct keel_backend *backend;  /* t's managed backend, or NULL */
    struct keel_backend_waiter waiter; /* waiting for that backend to be ready */
    int acquired;                  /* holds the backend: released when the probe ends */
    uint64_t generation;           /* the backend run it went to */
    struct keel_upstream_xfer *xfer; /* NULL before it is sent and once it ended */
    uint64_t started, deadline;    /* loop ms; deadline = started + t's first_byte */
    uint64_t retry_after_ms;
    struct keel_outcome outcome;
    char code[64];                 /* the provider's error code, outcome.code points here */
    struct keel_buf answer;        /* the body, capped at MAX_ANSWER */
};

struct keel_probe {
    struct keel_gateway *gw;
    uv_timer_t timer;  /* the earliest due probe or job deadline */
    struct job *jobs;  /* probes under way */
    uint64_t rng;      /* xorshift64* state for the jitter, never 0 */
    int stopped;       /* keel_probe_stop ran: no new probe, no re-arm */
};

static void finish(struct job *j);
static void arm(struct keel_probe *p);

/* xorshift64*: the jitter needs no more than this */
static uint64_t next_random(struct keel_probe *p)
{
    p->rng ^= p->rng >> 12;
    p->rng ^= p->rng << 25;
    p->rng ^= p->rng >> 27;
    return p->rng * 2685821657736338717ULL;
}

/* The first target of the running config naming upstream/model, and the api of its model; NULL
 * when none does (a target a reload removed is not probed: nothing says how to reach it, and no
 * client request goes to it either). */
static const struct keel_target_conf *find_target(const struct keel_config *c, const char *upstream,
                                                  const char *model, enum keel_api *api)
{
    for (size_t i = 0; i < c->nmodels; i++) {
        for (size_t k = 0; k < c->models[i].ntargets; k++) {
            const struct keel_target_conf *t = &c->models[i].targets[k];
            if (strcmp(t->upstream->name, upstream) == 0 && strcmp(t->model, model) == 0) {
                *api = c->models[i].api;
                return t;
            }
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ the transfer */

static void on_head(void *ctx, int status, const char *content_type, uint64_t retry_after_ms)
{
    struct job *j = ctx;
    j->outcome.status = status;
    j->retry_after_ms = retry_after_ms;
}

static int on_data(void *ctx, const char *data, size_t len)
{
    struct job *j = ctx;
    if (keel_buf_append(&j->answer, data, len) != 0)
        j->outcome.transport = keel_err_too_large; /* judged so; the rest is read and dropped */
    return KEEL_XFER_CONSUMED;
}

/* a whole answer judged as request.c judges a non-stream one: a 2xx must carry an answer */
static void judge(struct job *j)
{
    const struct keel_decoder_ops *ops = keel_decoder_for(j->t->upstream->kind);
    const char *body = j->answer.base ? j->answer.base : "";
    if (j->outcome.status >= 200 && j->outcome.status < 300) {
        struct keel_decoder d;
        enum keel_answer_kind k;
        if (j->api == KEEL_API_EMBEDDINGS) {
            k = keel_openai_embeddings_judge(body, j->answer.len, j->code, sizeof(j->code), NULL);
        } else {
            keel_decoder_init(&d, ops, NULL, NULL);
            k = ops->body(&d, body, j->answer.len, j->code, sizeof(j->code), NULL);
        }
        j->outcome.empty = k == KEEL_ANSWER_EMPTY;
        j->outcome.malformed = k == KEEL_ANSWER_MALFORMED;
        j->outcome.stream_error = k == KEEL_ANSWER_ERROR;
    } else {
        ops->error_code(body, j->answer.len, j->code, sizeof(j->code));
    }
    j->outcome.code = j->code[0] ? j->code : NULL;
}

static void on_done(void *ctx, const char *err, const char *detail)
{
    struct job *j = ctx;
    j->xfer = NULL; /* freed by upstream.c after we return */
    if (err != NULL)
        j->outcome.transport = err;
    else if (j->outcome.status == 0)
        j->outcome.transport = keel_err_reset; /* ended without a response head */
    else if (j->outcome.transport == NULL)
        judge(j);
    finish(j);
}

/* Sends the probe: the target's own API, the upstream's key and configured headers. */
static void send_probe(struct job *j)
{
    static const struct keel_upstream_cbs cbs = {on_head, on_data, on_done, NULL};
    const struct keel_target_conf *t = j->t;
    const struct keel_upstream_conf *u = t->upstream;
    int anthropic = strcmp(u->kind, "anthropic") == 0;
    json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", "ping");
    json_t *req = j->api == KEEL_API_EMBEDDINGS
                      ? json_pack("{s:s, s:s}", "model", t->model, "input", "ping")
                      : json_pack("{s:s, s:o, s:i}", "model", t->model, "messages", msgs, "max_tokens", 1);
    if (j->api == KEEL_API_EMBEDDINGS)
        json_decref(msgs);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    char url[2048];
    const char *lines[1 + KEEL_MAX_UPSTREAM_HEADERS];
    size_t n = 0;
    const char *base = j->backend ? keel_backend_base_url(j->backend) : NULL;
    snprintf(url, sizeof(url), "%s%s", base ? base : u->base_url,
             j->api == KEEL_API_EMBEDDINGS ? "/embeddings" : anthropic ? "/messages" : "/chat/completions");
    if (anthropic)
        lines[n++] = "anthropic-version: 2023-06-01";
    for (size_t i = 0; i < u->nheaders; i++)
        lines[n++] = u->headers[i];
    struct keel_upstream_spec spec = {
        .url = url,
        .bearer = u->api_key,
        .key_header = anthropic ? "x-api-key" : NULL,
        .headers = lines,
        .nheaders = n,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .give_body = 1,
        .connect_timeout_ms = t->timeouts.connect_ms,
        /* no timeout_ms: the job's deadline is the first_byte timeout, from the probe's start */
    };
    if (j->backend != NULL)
        j->generation = keel_backend_generation(j->backend);
    j->xfer = body ? keel_upstream_xfer_start(j->p->gw->upstream, &spec, &cbs, j) : NULL;
    if (j->xfer != NULL)
        return;
    keel_error("probe %s/%s: cannot start a transfer: out of memory", u->name, t->model);
    j->outcome.transport = keel_err_local;
    finish(j);
}

static void on_backend(void *ctx, int ok)
{
    struct job *j = ctx;
    if (!ok) {
        j->outcome.transport = keel_err_connect; /* it will not be ready soon: still down */
        finish(j);
        return;
    }
    j->acquired = 1;
    send_probe(j);
}

/* Starts a probe of ts (its breaker has just marked it out). */
static void launch(struct keel_probe *p, struct keel_target_state *ts, const struct keel_target_conf *t,
                   enum keel_api api, uint64_t now)
{
    struct keel_gateway *gw = p->gw;
    struct job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        keel_breaker_probe_done(&ts->breaker, &ts->params, KEEL_CLASS_LOCAL_ERROR, 0, now, next_random(p));
        return;
    }
    j->p = p;
    j->ts = ts;
    j->config = keel_config_hold(gw->config);
    j->t = t;
    j->api = api;
    j->started = now;
    j->deadline = now + (t->timeouts.first_byte_ms ? t->timeouts.first_byte_ms : 1);
    keel_buf_init(&j->answer, MAX_ANSWER);
    j->next = p->jobs;
    p->jobs = j;
    if (keel_upstream_backed(t->upstream)) {
        /* A managed backend is probed as a request uses it: acquired first. Ready: the same
         * minimal request. Starting (a restart under way): the probe waits for it within its
         * deadline, then sends. Backing off after crashes: still down, and nothing is spawned for
         * the probe. Stopped (idle-unloaded since the breaker opened): acquiring starts it, as it
         * would for any request (managed.c loads an unloaded backend on demand, and unloads it
         * again when idle). That is deliberate: under probe: background no client request ever
         * reaches an open target, so a probe that left a stopped backend alone would keep the
         * target out of service for good. */
        j->backend = keel_managed_get(gw->managed, t->upstream->name, t->model);
        int rc = j->backend ? keel_backend_acquire(j->backend, &j->waiter, on_backend, j) : -1;
        if (rc < 0) {
            j->outcome.transport = keel_err_connect;
            finish(j);
            return;
        }
        if (rc == 0)
            return; /* on_backend says when */
        j->acquired = 1;
    }
    send_probe(j);
}

/* ------------------------------------------------------------------ the verdict */

static void unlink_job(struct job *j)
{
    for (struct job **q = &j->p->jobs; *q != NULL; q = &(*q)->next) {
        if (*q == j) {
            *q = j->next;
            return;
        }
    }
}

/* lets go of what a job holds (its transfer and backend wait already ended or cancelled) */
static void free_job(struct job *j)
{
    if (j->acquired)
        keel_backend_release(j->backend);
    keel_config_drop(j->config);
    keel_buf_release(&j->answer);
    free(j);
}

/* The probe ended (answered, failed, timed out, or never sent): the breaker, the record, the
 * events, and the timer for what is due next. */
static void finish(struct job *j)
{
    struct keel_probe *p = j->p;
    struct keel_gateway *gw = p->gw;
    struct keel_target_state *ts = j->ts;
    uint64_t now = uv_now(gw->loop);
    enum keel_class cls = keel_classify(&j->outcome);
    unlink_job(j);
    if (j->acquired && keel_backend_heals(cls)) /* seed 002: dead or evicted: restart it, once */
        keel_backend_dead(j->backend, j->generation, keel_class_name(cls));
    ts->probes[cls]++;
    ts->last_probe = (struct keel_probe_record){.at = keel_time_now_ms(), .ms = now - j->started, .cls = cls,
                                                .status = j->outcome.status};
    if (keel_breaker_counts(cls) || cls == KEEL_CLASS_RATE_LIMITED)
        keel_state_recent(ts, cls);
    enum keel_breaker_change change =
        keel_breaker_probe_done(&ts->breaker, &ts->params, cls, j->retry_after_ms, now, next_random(p));
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:I}", "type", "probe", "upstream", ts->upstream, "model",
                           ts->model, "outcome", keel_class_name(cls), "ms", (json_int_t)(now - j->started));
    if (j->outcome.status != 0)
        json_object_set_new(ev, "status", json_integer(j->outcome.status));
    keel_events_emit(&gw->events, ev);
    if (change == KEEL_BREAKER_RECOVERED)
        keel_events_emit(&gw->events, json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "breaker", "upstream",
                                                ts->upstream, "model", ts->model, "from", "open", "to",
                                                keel_breaker_state_name(ts->breaker.state)));
    keel_shared_publish(gw->shared, ts); /* closed, or open until the next probe: for every instance */
    free_job(j);
    arm(p);
}

/* the first_byte deadline passed, waiting for the backend or for the answer */
static void expire(struct job *j)
{
    if (j->xfer != NULL) {
        keel_upstream_xfer_cancel(j->xfer);
        j->xfer = NULL;
    }
    keel_backend_cancel_wait(&j->waiter);
    j->outcome.transport = keel_err_timeout;
    j->outcome.timeout = KEEL_TIMEOUT_FIRST_BYTE;
    finish(j);
}

/* ------------------------------------------------------------------ the schedule */

/* a background probe's claim across instances, waiting for its answer */
struct claim {
    struct keel_probe *p;
    struct keel_target_state *ts;
};

/* The claim's answer: this instance probes (the target as the config in force names it), or
 * another does, or keel stops: no verdict, the next try one interval later. */
static void on_claim(void *ctx, int granted)
{
    struct claim *cl = ctx;
    struct keel_probe *p = cl->p;
    struct keel_target_state *ts = cl->ts;
    free(cl);
    uint64_t now = uv_now(p->gw->loop);
    enum keel_api api;
    const struct keel_target_conf *t = granted && !p->stopped ? find_target(p->gw->config, ts->upstream, ts->model, &api)
                                                              : NULL;
    if (t != NULL) {
        launch(p, ts, t, api, now); /* may end at once (nothing to send): due again, later */
        return;
    }
    keel_breaker_probe_done(&ts->breaker, &ts->params, KEEL_CLASS_SKIPPED, 0, now, next_random(p));
    if (!p->stopped)
        arm(p);
}

/* One pass over the targets: plans the probes of those that opened, starts the due ones when
 * `start`; returns when the timer must next fire (UINT64_MAX: never). */
static uint64_t plan(struct keel_probe *p, uint64_t now, int start)
{
    struct keel_gateway *gw = p->gw;
    uint64_t wake = UINT64_MAX;
    for (size_t i = 0; i < gw->state.ntargets; i++) {
        struct keel_target_state *ts = gw->state.targets[i];
        uint64_t due = keel_breaker_probe_due(&ts->breaker, &ts->params, now, next_random(p));
        if (due == UINT64_MAX)
            continue;
        enum keel_api api;
        const struct keel_target_conf *t = find_target(gw->config, ts->upstream, ts->model, &api);
        if (t == NULL)
            continue;
        if (start && keel_breaker_probe_start(&ts->breaker, now)) {
            /* one probe across instances (state: redis): claimed for the shortest interval, so the
             * claim is over before anyone's next probe is due; answered at once without Redis */
            struct claim *cl = malloc(sizeof(*cl));
            if (cl != NULL) {
                *cl = (struct claim){p, ts};
                keel_shared_claim(gw->shared, ts, keel_breaker_probe_interval(&ts->params, 0), on_claim, cl);
            } else {
                keel_breaker_probe_done(&ts->breaker, &ts->params, KEEL_CLASS_LOCAL_ERROR, 0, now, next_random(p));
            }
            due = keel_breaker_probe_due(&ts->breaker, &ts->params, now, next_random(p));
        }
        wake = due < wake ? due : wake;
    }
    for (struct job *j = p->jobs; j != NULL; j = j->next)
        wake = j->deadline < wake ? j->deadline : wake;
    return wake;
}

static void on_timer(uv_timer_t *t)
{
    struct keel_probe *p = t->data;
    uint64_t now = uv_now(p->gw->loop);
    struct job *j = p->jobs;
    while (j != NULL) { /* finish unlinks only its own job */
        struct job *next = j->next;
        if (j->deadline <= now)
            expire(j);
        j = next;
    }
    uint64_t wake = plan(p, now, 1);
    if (wake == UINT64_MAX)
        uv_timer_stop(&p->timer);
    else
        uv_timer_start(&p->timer, on_timer, wake > now ? wake - now : 0, 0);
}

static void arm(struct keel_probe *p)
{
    if (p->stopped)
        return;
    uint64_t now = uv_now(p->gw->loop);
    uint64_t wake = plan(p, now, 0);
    if (wake == UINT64_MAX)
        uv_timer_stop(&p->timer);
    else
        uv_timer_start(&p->timer, on_timer, wake > now ? wake - now : 0, 0);
}

/* ------------------------------------------------------------------ lifecycle */

struct keel_probe *keel_probe_new(struct keel_gateway *gw)
{
    struct keel_probe *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->gw = gw;
    p->rng = gw->id_seed | 1;
    uv_timer_init(gw->loop, &p->timer);
    p->timer.data = p;
    uv_unref((uv_handle_t *)&p->timer); /* the gateway decides when the loop ends */
    return p;
}

void keel_probe_kick(struct keel_probe *p)
{
    if (p != NULL)
        arm(p);
}

static void on_closed(uv_handle_t *h)
{
    struct keel_probe *p = h->data;
    p->gw->probe = NULL;
    free(p);
}

void keel_probe_stop(struct keel_probe *p)
{
    if (p == NULL || p->stopped)
        return;
    p->stopped = 1;
    while (p->jobs != NULL) {
        struct job *j = p->jobs;
        p->jobs = j->next;
        if (j->xfer != NULL)
            keel_upstream_xfer_cancel(j->xfer);
        keel_backend_cancel_wait(&j->waiter);
        free_job(j);
    }
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_closed);
}
