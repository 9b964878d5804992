/* request.c - one client request's whole life, top to bottom: accept and parse, route along the
 * model's fallback chain, attempt a target, read its head and body, classify, then fail over,
 * return the client's own error as is, or relay; answer; finish. Policy lives in src/core
 * (classify, chunk, sse_parse, deadline, router); this file only turns I/O events into those
 * calls and their verdicts back into I/O. One timer per request serves every deadline and wait. */
#include "request.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "core/buf.h"
#include "core/chunk.h"
#include "core/classify.h"
#include "core/deadline.h"
#include "core/json.h"
#include "core/router.h"
#include "core/sse_parse.h"
#include "core/units.h"
#include "gateway.h"
#include "io/server.h"
#include "io/upstream.h"
#include "audit.h"
#include "core/backend.h"
#include "log.h"
#include "managed.h"
#include "state.h"

#define MAX_ATTEMPTS 32
#define MAX_ANSWER (64u << 20)     /* a non-stream answer or error body, bytes */
#define MAX_SSE_LINE (4u << 20)    /* one SSE line or event */
#define OUT_HIGH_WATER (64u << 10) /* client bytes pending before the upstream is paused */
#define MAX_OUT (MAX_SSE_LINE + OUT_HIGH_WATER + 4096)

/* The states of a request (STYLE L1). Each attempt walks ATTEMPT -> BUFFER or PRECOMMIT ->
 * (RELAY); a failed attempt before the commit point goes to ATTEMPT again (the router's next
 * target) or to WAIT first (a backoff or a Retry-After on the same target). */
enum keel_req_state {
    REQ_WAIT,      /* no transfer: waiting until wake_at to try the router's target again */
    REQ_ATTEMPT,   /* a transfer to the current target is under way; its head not yet in */
    REQ_BUFFER,    /* a non-stream answer or an error: its body is collected, capped */
    REQ_PRECOMMIT, /* a 200 event stream; client headers held until the first content progress */
    REQ_RELAY,     /* committed: events flow to the client, the upstream paused when it lags */
    REQ_END,       /* answered or the client is gone; freed on entry */
};

static const char *const state_names[] = {"wait", "attempt", "buffer", "precommit", "relay", "end"};

struct attempt {
    const struct keel_target_conf *target;
    enum keel_class cls;
    int status;
    uint64_t ms;
    uint64_t ttft_ms; /* attempt start -> its first content progress; 0 = none */
};

struct keel_request {
    struct keel_gateway *gw;
    struct keel_http *http; /* NULL once the client has its final bytes or is gone */
    enum keel_req_state state;
    char id[24];
    char *body;                          /* the client's body as sent: malloc'd, freed at the end */
    size_t body_len;
    size_t model_at, model_len;          /* its "model" value's bytes: each attempt sends the target's */
    int stream;                          /* the client asked for a stream (the audit says so) */
    struct keel_config *config;          /* held until the request ends (SIGHUP may replace it) */
    const struct keel_model_conf *model; /* in config */
    struct keel_model_state *mstate;     /* the model's counters and windows (gw->state) */
    struct keel_target_state **tstate;   /* [model->ntargets]: each target's breaker and counters */
    uint64_t start_ms;
    uint64_t client_budget_ms;           /* from x-keel-timeout; 0 = none */
    struct attempt attempts[MAX_ATTEMPTS];
    size_t nattempts;
    struct keel_router router;  /* which target next, and when */
    uv_timer_t *timer;          /* every deadline and wait; malloc'd, freed in its close cb */
    struct keel_deadline dl;    /* of the attempt under way (total_at also while waiting) */
    uint64_t wake_at;           /* WAIT: when to try again */
    int probe;                  /* the attempt under way is its breaker's half-open probe */
    int attempt_open;           /* an attempt started and is not yet reported to its breaker */
    int failed;                 /* the last attempt failed: a move to another target is a failover */
    enum keel_class failed_cls; /* its class */
    size_t failed_from;         /* and its target */
    uint64_t ttft_ms;           /* request start -> the answer's first content; 0 = none */
    int answered;               /* the client got a successful answer */
    int status_sent;            /* the HTTP status the client got (0: none, it left first) */
    uint64_t first_progress_at; /* the attempt under way's first content progress; 0 = none */
    struct keel_usage usage;    /* what the answering attempt reported */
    int64_t start_wall_ms;      /* wall clock at arrival, for the audit's ts */
    size_t prompt_bytes;        /* the client's body size */
    int gone;                   /* the client went away */
    size_t mem;                 /* bytes charged to gw->mem_held: bodies and buffers (max_memory) */
    uint64_t ended_ms;          /* REQ_END reached: the answer was handed to the server */
    int sending;                /* REQ_END reached with the final bytes still with the server:
                                   recorded and freed once on_delivered says whether they went */

    /* a managed target (seed 002) */
    struct keel_backend_waiter waiter; /* queued while its backend starts */
    struct keel_backend *backend;      /* acquired for the attempt under way, or NULL */
    uint64_t backend_gen;              /* the backend run the attempt went to */
    int healed;                        /* the one retry after a restart is spent */

    /* the attempt under way; reset by start_attempt */
    const struct keel_target_conf *target;
    struct keel_upstream_xfer *xfer; /* NULL when no transfer is under way */
    uint64_t attempt_start_ms;
    int status;                 /* the upstream's status, 0 before the head */
    uint64_t retry_after_ms;    /* the upstream's Retry-After, 0 = none */
    char content_type[64];
    struct keel_outcome outcome; /* evidence for classify */
    char code[64];               /* the provider's error code, outcome.code points here */
    struct keel_buf answer;      /* BUFFER: the body so far */
    struct keel_sse_parser sse;  /* PRECOMMIT/RELAY */

    /* the client side of a stream */
    struct keel_buf out; /* SSE bytes not yet handed to the client (held before the commit) */
    int writing;         /* a write awaits on_written */
    int paused;          /* the transfer is paused until the client catches up */
    int finishing;       /* the stream's last bytes are in `out`: the next write is final */

    struct keel_route_target route[]; /* the model's targets as the router sees them */
};

static void start_attempt(struct keel_request *r);
static void end_attempt(struct keel_request *r);
static void next_step(struct keel_request *r, struct keel_step step);
static void attempt_over(struct keel_request *r, enum keel_class cls);
static void give_up(struct keel_request *r, const struct keel_step *step);
static void finish(struct keel_request *r);
static void complete(struct keel_request *r);
static void on_delivered(void *ctx, int delivered);
static void arm(struct keel_request *r);

static uint64_t now_ms(struct keel_request *r)
{
    return uv_now(r->gw->loop);
}

static uint64_t next_random(struct keel_gateway *gw)
{
    uint64_t z = (gw->rng += 0x9e3779b97f4a7c15ULL); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* the state machine's edges: a head only follows an attempt, the commit only a held stream,
 * and nothing follows the commit but the end (issue 17's continuation will add RELAY -> ATTEMPT) */
static int edge_ok(enum keel_req_state from, enum keel_req_state to)
{
    switch (to) {
    case REQ_WAIT:
    case REQ_ATTEMPT:
        return from != REQ_RELAY && from != REQ_END;
    case REQ_BUFFER:
    case REQ_PRECOMMIT:
        return from == REQ_ATTEMPT;
    case REQ_RELAY:
        return from == REQ_PRECOMMIT;
    case REQ_END:
        return from != REQ_END;
    }
    return 0;
}

static void set_state(struct keel_request *r, enum keel_req_state to)
{
    assert(edge_ok(r->state, to));
    keel_debug("req %s: %s -> %s", r->id, state_names[r->state], state_names[to]);
    r->state = to;
    if (to == REQ_END)
        finish(r);
}

/* Brings the request's charge against max_memory up to what it holds now: its body twice (the
 * attempt's copy included), h2o's copy, and the capacity of its answer and stream buffers. */
static void charge(struct keel_request *r)
{
    size_t now = 3 * r->body_len + r->answer.cap + r->out.cap;
    assert(r->gw->mem_held >= r->mem);
    r->gw->mem_held = r->gw->mem_held - r->mem + now;
    r->mem = now;
}

/* ------------------------------------------------------------------ answers to the client */

static void attempts_json(json_t *arr, const struct keel_request *r)
{
    for (size_t i = 0; i < r->nattempts; i++) {
        const struct attempt *a = &r->attempts[i];
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:i, s:I}", "upstream", a->target->upstream->name,
                                             "model", a->target->model, "class", keel_class_name(a->cls),
                                             "status", a->status, "ms", (json_int_t)a->ms));
    }
}

/* x-keel-attempts: "upstream/model;class=C;status=S;ms=M, ..." */
static void attempts_header(const struct keel_request *r, char *dst, size_t n)
{
    size_t off = 0;
    dst[0] = '\0';
    for (size_t i = 0; i < r->nattempts && off < n; i++) {
        const struct attempt *a = &r->attempts[i];
        int w = snprintf(dst + off, n - off, "%s%s/%s;class=%s;status=%d;ms=%llu", i ? ", " : "",
                         a->target->upstream->name, a->target->model, keel_class_name(a->cls), a->status,
                         (unsigned long long)a->ms);
        if (w < 0)
            break;
        off += (size_t)w;
    }
}

/* fills the x-keel-* headers (and the content type) into hdrs; returns how many */
static size_t keel_headers(const struct keel_request *r, struct keel_header *hdrs, const char *content_type,
                           char *attempts_buf, size_t attempts_len)
{
    const struct keel_target_conf *t = r->target;
    attempts_header(r, attempts_buf, attempts_len);
    size_t n = 0;
    hdrs[n++] = (struct keel_header){"content-type", content_type};
    hdrs[n++] = (struct keel_header){"x-keel-request-id", r->id};
    hdrs[n++] = (struct keel_header){"x-keel-upstream", t ? t->upstream->name : "none"};
    hdrs[n++] = (struct keel_header){"x-keel-model", t ? t->model : "none"};
    hdrs[n++] = (struct keel_header){"x-keel-attempts", attempts_buf};
    return n;
}

static void respond(struct keel_request *r, int status, const char *content_type, const char *body, size_t len,
                    const struct keel_header *extra)
{
    assert(r->http != NULL && r->status_sent == 0); /* one answer per request */
    struct keel_header hdrs[7];
    char attempts[2048];
    size_t n = keel_headers(r, hdrs, content_type, attempts, sizeof(attempts));
    if (extra != NULL)
        hdrs[n++] = *extra;
    struct keel_http *h = r->http;
    r->http = NULL;
    r->status_sent = status;
    keel_http_on_delivered(h, on_delivered, r);
    r->sending = 1;
    keel_http_respond(h, status, hdrs, n, body, len);
}

/* retry_after: seconds to add as "retry_after" (0 = none) */
static char *envelope(const char *type, const char *code, const char *message, json_t *attempts,
                      uint64_t retry_after)
{
    json_t *err = json_pack("{s:s, s:s, s:s, s:n}", "message", message, "type", type, "code", code, "param");
    if (attempts != NULL)
        json_object_set_new(err, "attempts", attempts);
    if (retry_after > 0)
        json_object_set_new(err, "retry_after", json_integer((json_int_t)retry_after));
    json_t *root = json_pack("{s:o}", "error", err);
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

void keel_respond_error(struct keel_http *h, int status, const char *type, const char *code, const char *message)
{
    char *body = envelope(type, code, message, NULL, 0);
    struct keel_header hdrs[] = {{"content-type", "application/json"}};
    keel_http_respond(h, status, hdrs, 1, body ? body : "", body ? strlen(body) : 0);
    free(body);
}

static void respond_error(struct keel_request *r, int status, const char *type, const char *code,
                          const char *message, uint64_t retry_after)
{
    json_t *arr = json_array();
    attempts_json(arr, r);
    char *body = envelope(type, code, message, arr, retry_after);
    char secs[24];
    snprintf(secs, sizeof(secs), "%llu", (unsigned long long)retry_after);
    struct keel_header ra = {"retry-after", secs};
    const struct keel_header *extra = retry_after > 0 ? &ra : NULL;
    respond(r, status, "application/json", body ? body : "", body ? strlen(body) : 0, extra);
    free(body);
}

/* ------------------------------------------------------------------ accept and route */

static void on_gone(void *ctx);

static void new_id(struct keel_gateway *gw, char *dst, size_t n)
{
    /* splitmix64 over a random seed and a counter: unique per process, unguessable across runs */
    uint64_t z = gw->id_seed + 0x9e3779b97f4a7c15ULL * ++gw->id_next;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    snprintf(dst, n, "%016llx", (unsigned long long)z);
}

static void models_list(struct keel_gateway *gw, struct keel_http *h)
{
    json_t *data = json_array();
    for (size_t i = 0; i < gw->config->nmodels; i++)
        json_array_append_new(data, json_pack("{s:s, s:s, s:i, s:s}", "id", gw->config->models[i].name, "object",
                                              "model", "created", 0, "owned_by", "keel"));
    json_t *root = json_pack("{s:s, s:o}", "object", "list", "data", data);
    char *body = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    struct keel_header hdrs[] = {{"content-type", "application/json"}};
    keel_http_respond(h, 200, hdrs, 1, body, strlen(body));
    free(body);
}

/* invalid_request (and gateway_busy): answered here, before any upstream is chosen or touched */
static void reject(struct keel_gateway *gw, struct keel_http *h, int status, const char *code, const char *message)
{
    char id[24];
    new_id(gw, id, sizeof(id));
    int busy = status == 503;
    char *body = envelope(busy ? "server_error" : "invalid_request_error", code, message, NULL, busy ? 1 : 0);
    struct keel_model_state *ms = keel_state_model(&gw->state, ""); /* the alias may be anything */
    struct keel_route_stats *rs = ms ? keel_state_route(ms, "") : NULL;
    if (rs != NULL)
        rs->requests[busy ? KEEL_CLASS_GATEWAY_BUSY : KEEL_CLASS_INVALID_REQUEST]++;
    struct keel_header hdrs[] = {{"content-type", "application/json"}, {"x-keel-request-id", id},
                                 {"x-keel-upstream", "none"}, {"x-keel-model", "none"}, {"x-keel-attempts", ""},
                                 {"retry-after", "1"}};
    keel_http_respond(h, status, hdrs, busy ? 6 : 5, body ? body : "", body ? strlen(body) : 0);
    keel_info("req %s: rejected: %d %s", id, status, code);
    if (gw->audit != NULL) {
        /* audited like any request, under model "" (what was asked may be anything) */
        char ts[40];
        keel_time_rfc3339(keel_time_now_ms(), ts, sizeof(ts));
        json_t *rec = json_pack("{s:s, s:s, s:s, s:b, s:i, s:i, s:n, s:n, s:n, s:[], s:i, s:n, s:b, s:s, s:s}",
                                "ts", ts, "id", id, "model", "", "stream", 0, "status", status, "ms", 0, "ttft_ms",
                                "upstream", "target_model", "attempts", "prompt_bytes", 0, "usage", "client_gone", 0,
                                "class", busy ? "gateway_busy" : "invalid_request", "error", code);
        char *line = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
        json_decref(rec);
        if (line != NULL)
            keel_audit_line(gw->audit, line, strlen(line));
        free(line);
    }
    free(body);
}

/* ------------------------------------------------------------------ breakers */

static void breaker_event(struct keel_request *r, struct keel_target_state *ts, enum keel_breaker_change change,
                          enum keel_class cause)
{
    static const char *const from[] = {"", "closed", "open", "half_open", "half_open"};
    if (change == KEEL_BREAKER_SAME)
        return;
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "breaker", "upstream", ts->upstream, "model",
                           ts->model, "from", from[change], "to", keel_breaker_state_name(ts->breaker.state));
    if (change == KEEL_BREAKER_OPENED || change == KEEL_BREAKER_REOPENED) {
        json_object_set_new(ev, "cause", json_string(keel_class_name(cause)));
        json_object_set_new(ev, "cooldown_ms", json_integer((json_int_t)ts->breaker.cooldown_ms));
    }
    keel_events_emit(&r->gw->events, ev);
}

/* the router's admission: the target's breaker says allow, probe or skip */
static enum keel_admit admit_target(void *ctx, size_t i, uint64_t now)
{
    struct keel_request *r = ctx;
    enum keel_breaker_change change;
    enum keel_admit a = keel_breaker_admit(&r->tstate[i]->breaker, now, &change);
    breaker_event(r, r->tstate[i], change, KEEL_CLASS_OK);
    return a;
}

static void skip_target(void *ctx, size_t i)
{
    struct keel_request *r = ctx;
    r->tstate[i]->skipped++;
    if (r->nattempts < MAX_ATTEMPTS)
        r->attempts[r->nattempts++] = (struct attempt){&r->model->targets[i], KEEL_CLASS_SKIPPED, 0, 0, 0};
}

/* An attempt ended with cls: its breaker, in-flight count and counters learn it, once. */
static void attempt_over(struct keel_request *r, enum keel_class cls)
{
    if (!r->attempt_open)
        return;
    r->attempt_open = 0;
    if (r->backend != NULL) {
        keel_backend_release(r->backend);
        r->backend = NULL;
    }
    struct keel_target_state *ts = r->tstate[r->router.cur];
    assert(ts->inflight > 0);
    ts->inflight--;
    ts->attempts[cls]++;
    if (keel_breaker_counts(cls) || cls == KEEL_CLASS_RATE_LIMITED)
        keel_state_recent(ts, cls);
    enum keel_breaker_change change =
        keel_breaker_report(&ts->breaker, &ts->params, cls, r->probe, r->retry_after_ms, now_ms(r));
    breaker_event(r, ts, change, cls);
    r->probe = 0; /* reported: a retry on this target is not the probe again */
}

/* The top-level "model" and "stream" members of a parsed object, each absent or found once;
 * -1 when either is there twice. One pass over the members, keys decoded as keel_json_get does. */
static int top_level_keys(struct keel_json root, struct keel_json *model, struct keel_json *stream)
{
    *model = *stream = (struct keel_json){NULL, 0};
    struct keel_json k, v;
    size_t pos = 0;
    while (keel_json_next(root, &pos, &k, &v)) {
        char key[8];
        long n = keel_json_string(k, key, sizeof(key));
        struct keel_json *slot = n == 5 && memcmp(key, "model", 5) == 0    ? model
                                 : n == 6 && memcmp(key, "stream", 6) == 0 ? stream
                                                                           : NULL;
        if (slot == NULL)
            continue;
        if (slot->p != NULL)
            return -1;
        *slot = v;
    }
    return 0;
}

static void chat(struct keel_gateway *gw, struct keel_http *h)
{
    if (gw->inflight >= gw->config->max_inflight) {
        /* shed load before parsing anything: keel's own limit, never an upstream's fault */
        reject(gw, h, 503, "gateway_busy", "keel is at max_inflight: retry shortly");
        return;
    }
    size_t len;
    const char *text = keel_http_body(h, &len);
    size_t body_len = len;
    /* the body is held three times while the request lives: h2o's copy, r->body and the
     * attempt's (the target's model in place of the alias); all requests together stay within
     * max_memory, checked before anything is copied */
    if (gw->mem_held + 3 * body_len > gw->config->max_memory) {
        reject(gw, h, 503, "gateway_busy", "keel is at max_memory: retry shortly");
        return;
    }
    /* the body goes upstream byte for byte but for "model": read what is needed, build no tree */
    struct keel_json root, m, stream;
    int rv = keel_json_parse_depth(text, len, gw->config->max_json_depth, &root);
    if (rv == -2) {
        char msg[96];
        snprintf(msg, sizeof(msg), "request body is nested deeper than %llu levels (max_json_depth)",
                 (unsigned long long)gw->config->max_json_depth);
        reject(gw, h, 400, "invalid_json", msg);
        return;
    }
    if (rv != 0 || keel_json_type(root) != KEEL_JSON_OBJECT) {
        reject(gw, h, 400, "invalid_json", "request body is not a JSON object");
        return;
    }
    /* keel routes on "model" and reads "stream"; a body that names either twice is refused, as an
     * upstream's parser may take the other one and serve a model the operator never listed */
    if (top_level_keys(root, &m, &stream) != 0) {
        reject(gw, h, 400, "duplicate_key", "request body names \"model\" or \"stream\" more than once");
        return;
    }
    char name[256];
    long namelen = keel_json_string(m, name, sizeof(name));
    if (namelen <= 0) {
        reject(gw, h, 400, "missing_model", "request body has no \"model\"");
        return;
    }
    struct keel_config *config = gw->config;
    const struct keel_model_conf *model = (size_t)namelen < sizeof(name) ? keel_config_model(config, name) : NULL;
    if (model == NULL) {
        char msg[256];
        snprintf(msg, sizeof(msg), "unknown model \"%.100s\": GET /v1/models lists the configured ones", name);
        reject(gw, h, 400, "model_not_found", msg);
        return;
    }
    /* the client may shorten its own budget, never lengthen it past the config */
    uint64_t budget = 0;
    const char *tv = keel_http_header(h, "x-keel-timeout", &len);
    if (tv != NULL) {
        char v[32];
        snprintf(v, sizeof(v), "%.*s", (int)(len < sizeof(v) ? len : sizeof(v) - 1), tv);
        int bad = keel_parse_duration_ms(v, &budget) != 0;
        if (bad && keel_parse_uint(v, &budget) == 0 && budget < UINT64_MAX / 1000) {
            budget *= 1000; /* a bare number is seconds */
            bad = 0;
        }
        if (bad || budget == 0) {
            reject(gw, h, 400, "invalid_timeout", "x-keel-timeout: expected a duration such as 90s or 500ms");
            return;
        }
    }
    struct keel_request *r = calloc(1, sizeof(*r) + model->ntargets * sizeof(r->route[0]));
    char *body = malloc(body_len);
    uv_timer_t *timer = malloc(sizeof(*timer));
    struct keel_target_state **tstate = calloc(model->ntargets, sizeof(*tstate));
    struct keel_model_state *mstate = keel_state_model(&gw->state, model->name);
    for (size_t i = 0; tstate != NULL && i < model->ntargets; i++) {
        tstate[i] = keel_state_target(&gw->state, model->targets[i].upstream->name, model->targets[i].model);
        if (tstate[i] == NULL)
            mstate = NULL;
    }
    if (r == NULL || body == NULL || timer == NULL || tstate == NULL || mstate == NULL) {
        free(r);
        free(body);
        free(timer);
        free(tstate);
        keel_respond_error(h, 503, "server_error", "gateway_busy", "out of memory");
        return;
    }
    r->gw = gw;
    r->http = h;
    r->body = memcpy(body, text, body_len);
    r->body_len = body_len;
    r->model_at = (size_t)(m.p - text);
    r->model_len = m.len;
    r->stream = keel_json_type(stream) == KEEL_JSON_TRUE;
    r->config = keel_config_hold(config);
    r->model = model;
    r->mstate = mstate;
    r->tstate = tstate;
    r->start_ms = uv_now(gw->loop);
    r->client_budget_ms = budget;
    r->prompt_bytes = body_len;
    charge(r);
    r->start_wall_ms = keel_time_now_ms();
    new_id(gw, r->id, sizeof(r->id));
    keel_buf_init(&r->answer, MAX_ANSWER);
    keel_buf_init(&r->out, MAX_OUT);
    for (size_t i = 0; i < model->ntargets; i++) {
        const struct keel_target_conf *t = &model->targets[i];
        r->route[i] = (struct keel_route_target){.context_window = t->context_window,
                                                 .same_target = t->retry.same_target,
                                                 .backoff_ms = t->retry.backoff_ms,
                                                 .max_wait_ms = t->retry.max_wait_ms};
    }
    keel_router_init(&r->router, r->route, model->ntargets, admit_target, skip_target, r);
    uv_timer_init(gw->loop, timer);
    timer->data = r;
    r->timer = timer;
    gw->inflight++;
    keel_http_watch(h, on_gone, r);
    next_step(r, keel_router_start(&r->router, now_ms(r)));
}

void keel_request_handle(void *app, struct keel_http *h)
{
    struct keel_gateway *gw = app;
    size_t mlen, plen;
    const char *method = keel_http_method(h, &mlen);
    const char *path = keel_http_path(h, &plen);
    int post = mlen == 4 && memcmp(method, "POST", 4) == 0;
    int get = mlen == 3 && memcmp(method, "GET", 3) == 0;
#define PATH_IS(s) (plen == sizeof(s) - 1 && memcmp(path, s, plen) == 0)
    if (PATH_IS("/v1/chat/completions") || PATH_IS("/chat/completions")) {
        if (post)
            chat(gw, h);
        else
            reject(gw, h, 405, "method_not_allowed", "use POST");
    } else if (PATH_IS("/v1/models") || PATH_IS("/models")) {
        if (get)
            models_list(gw, h);
        else
            reject(gw, h, 405, "method_not_allowed", "use GET");
    } else {
        reject(gw, h, 404, "unknown_url", "unknown path");
    }
#undef PATH_IS
}

/* ------------------------------------------------------------------ attempt */

static void on_head(void *ctx, int status, const char *content_type, uint64_t retry_after_ms);
static int on_data(void *ctx, const char *data, size_t len);
static void on_done(void *ctx, const char *err, const char *detail);
static int on_event(void *ctx, const char *event, const char *data, size_t len);
static int on_comment(void *ctx, const char *text, size_t len);

static const struct keel_upstream_cbs upstream_cbs = {on_head, on_data, on_done};

static void deadline_exceeded(struct keel_request *r);

/* the managed backend a request waited for is ready (ok) or backing off */
static void on_backend(void *ctx, int ok)
{
    struct keel_request *r = ctx;
    if (ok) {
        r->backend = keel_managed_get(r->gw->managed, r->model->targets[r->router.cur].upstream->name);
        start_attempt(r);
        return;
    }
    set_state(r, REQ_ATTEMPT);
    r->attempt_open = 1;
    r->tstate[r->router.cur]->inflight++;
    r->outcome = (struct keel_outcome){.transport = keel_err_connect};
    end_attempt(r);
}

/* Starts an attempt on the router's current target. */
static void start_attempt(struct keel_request *r)
{
    assert(r->xfer == NULL && !r->attempt_open && r->http != NULL);
    {
        const struct keel_target_conf *t = &r->model->targets[r->router.cur];
        uint64_t now = now_ms(r);
        r->target = t;
        r->status = 0;
        r->retry_after_ms = 0;
        r->content_type[0] = '\0';
        r->code[0] = '\0';
        memset(&r->outcome, 0, sizeof(r->outcome));
        keel_buf_reset(&r->answer);
        r->attempt_start_ms = now;
        r->first_progress_at = 0;
        r->usage = (struct keel_usage){0};
        r->dl = (struct keel_deadline){
            .total_at = keel_deadline_total(r->start_ms, t->timeouts.total_ms, r->client_budget_ms),
            .attempt_at = now,
            .first_byte_ms = t->timeouts.first_byte_ms,
            .stall_ms = t->timeouts.stall_ms,
        };
        if (now >= r->dl.total_at) {
            if (r->probe)
                keel_breaker_release(&r->tstate[r->router.cur]->breaker);
            r->probe = 0;
            deadline_exceeded(r);
            return;
        }
        if (t->upstream->managed != NULL && r->backend == NULL) {
            struct keel_backend *b = keel_managed_get(r->gw->managed, t->upstream->name);
            int rc = b ? keel_backend_acquire(b, &r->waiter, on_backend, r) : -1;
            if (rc == 0) {
                /* starting or restarting: wait for it within the request's own deadline */
                r->wake_at = UINT64_MAX;
                set_state(r, REQ_WAIT);
                arm(r);
                return;
            }
            if (rc < 0) {
                /* backing off after crashes: fail over at once */
                set_state(r, REQ_ATTEMPT);
                r->attempt_open = 1;
                r->tstate[r->router.cur]->inflight++;
                r->outcome.transport = keel_err_connect;
                end_attempt(r);
                return;
            }
            r->backend = b;
        }
        if (r->backend != NULL)
            r->backend_gen = keel_backend_generation(r->backend);
        set_state(r, REQ_ATTEMPT);
        r->attempt_open = 1;
        r->tstate[r->router.cur]->inflight++;
        arm(r);

        /* the client's bytes with the target's model name in place of the alias */
        size_t q = keel_json_quote(t->model, NULL, 0), tail = r->body_len - r->model_at - r->model_len;
        char *body = malloc(r->model_at + q + tail + 1);
        if (body != NULL) {
            memcpy(body, r->body, r->model_at);
            keel_json_quote(t->model, body + r->model_at, q + 1);
            memcpy(body + r->model_at + q, r->body + r->model_at + r->model_len, tail);
            body[r->model_at + q + tail] = '\0';
        }
        char url[2048];
        snprintf(url, sizeof(url), "%s/chat/completions", t->upstream->base_url);
        struct keel_upstream_spec spec = {
            .url = url,
            .bearer = t->upstream->api_key,
            .body = body,
            .body_len = r->model_at + q + tail,
            .give_body = 1,
            .stream = r->stream,
            .connect_timeout_ms = t->timeouts.connect_ms,
        };
        r->xfer = body ? keel_upstream_xfer_start(r->gw->upstream, &spec, &upstream_cbs, r) : NULL;
        if (r->xfer != NULL)
            return;
        keel_error("req %s: cannot start a transfer to %s: out of memory", r->id, t->upstream->name);
        r->outcome.transport = keel_err_local;
        end_attempt(r);
    }
}

static void on_head(void *ctx, int status, const char *content_type, uint64_t retry_after_ms)
{
    struct keel_request *r = ctx;
    assert(r->state == REQ_ATTEMPT && r->xfer != NULL);
    r->status = status;
    r->retry_after_ms = retry_after_ms;
    r->outcome.status = status;
    snprintf(r->content_type, sizeof(r->content_type), "%s", content_type);
    /* decided by what the upstream sent, not by the request's stream flag (STACK trap 8) */
    if (status >= 200 && status < 300 && strncmp(content_type, "text/event-stream", 17) == 0) {
        keel_sse_parser_init(&r->sse, MAX_SSE_LINE, on_event, on_comment, r);
        set_state(r, REQ_PRECOMMIT);
    } else {
        set_state(r, REQ_BUFFER);
    }
}

/* ------------------------------------------------------------------ body and stream */

enum { EV_GO_ON = 0, EV_FAIL = 1, EV_CUT = 2 };

static void flush(struct keel_request *r);
static void on_written(void *ctx);

static void record_attempt(struct keel_request *r, enum keel_class cls)
{
    if (r->nattempts == MAX_ATTEMPTS)
        r->nattempts--; /* full (never in practice: the router stops first): the last slot is reused */
    uint64_t ttft = cls == KEEL_CLASS_OK && r->first_progress_at ? r->first_progress_at - r->attempt_start_ms : 0;
    r->attempts[r->nattempts++] = (struct attempt){r->target, cls, r->status, now_ms(r) - r->attempt_start_ms, ttft};
}

/* the committed attempt is listed (as ok, ms = time to first content) in the headers it sends;
 * a later failure rewrites its class in the log line */
static void commit(struct keel_request *r)
{
    assert(r->state == REQ_PRECOMMIT && r->http != NULL && r->status_sent == 0);
    record_attempt(r, KEEL_CLASS_OK);
    r->ttft_ms = now_ms(r) - r->start_ms;
    struct keel_header hdrs[7];
    char attempts[2048];
    size_t n = keel_headers(r, hdrs, "text/event-stream", attempts, sizeof(attempts));
    hdrs[n++] = (struct keel_header){"cache-control", "no-cache"};
    r->status_sent = 200;
    keel_http_start(r->http, 200, hdrs, n, on_written);
    set_state(r, REQ_RELAY);
}

/* one event for the client: data lines re-framed as "data: ...\n" (multi-line data stays so) */
static int emit(struct keel_request *r, const char *data, size_t len)
{
    const char *p = data, *end = data + len;
    size_t mark = r->out.len; /* all or nothing: a half event would corrupt the next one */
    do {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (keel_buf_append(&r->out, "data: ", 6) != 0 || keel_buf_append(&r->out, p, (size_t)(le - p)) != 0 ||
            keel_buf_append(&r->out, "\n", 1) != 0)
            goto out_undo;
        p = nl ? nl + 1 : end;
    } while (p < end);
    if (keel_buf_append(&r->out, "\n", 1) == 0)
        return 0;
out_undo:
    r->out.len = mark;
    return -1;
}

/* After the commit a failure can't be hidden: say so in an error event and send no [DONE].
 * `code` is the event's error code (NULL = the class name). */
static void cut_stream(struct keel_request *r, enum keel_class cls, const char *code)
{
    char msg[160];
    if (code == NULL)
        snprintf(msg, sizeof(msg), "upstream %s failed mid-stream: %s", r->target->upstream->name,
                 keel_class_name(cls));
    else
        snprintf(msg, sizeof(msg), "the request's deadline ran out mid-stream (upstream %s)",
                 r->target->upstream->name);
    char *ev = envelope("upstream_error", code ? code : keel_class_name(cls), msg, NULL, 0);
    r->out.max += 4096; /* room for the last event even when the buffer is full */
    emit(r, ev ? ev : "{}", ev ? strlen(ev) : 2);
    free(ev);
    r->finishing = 1;
    r->attempts[r->nattempts - 1].cls = cls; /* the committed attempt, recorded at the commit */
    attempt_over(r, cls);
}

/* Content progress: the only thing that moves first_byte and stall. The timer is armed for the
 * next deadline and later progress only moves that later, except the first: from then on stall
 * counts, and progress + stall may fall before the attempt's first_byte (the soak found stalls
 * cut at first_byte) */
static void progress(struct keel_request *r)
{
    r->dl.progress_at = now_ms(r);
    if (r->first_progress_at == 0) {
        r->first_progress_at = r->dl.progress_at;
        arm(r);
    }
}

static int on_event(void *ctx, const char *event, const char *data, size_t len)
{
    struct keel_request *r = ctx;
    struct keel_chunk_info info;
    keel_chunk_inspect(event, data, len, &info);
    if (info.usage.present)
        r->usage = info.usage;
    switch (info.kind) {
    case KEEL_CHUNK_DONE:
        return EV_GO_ON; /* keel sends its own [DONE] when the transfer ends cleanly */
    case KEEL_CHUNK_MALFORMED:
        keel_warn("req %s: %s sent a malformed chunk (%zu bytes): skipped", r->id, r->target->upstream->name, len);
        return EV_GO_ON;
    case KEEL_CHUNK_ERROR:
        r->outcome.stream_error = 1;
        snprintf(r->code, sizeof(r->code), "%s", info.error_code);
        r->outcome.code = r->code;
        return r->state == REQ_RELAY ? EV_CUT : EV_FAIL;
    case KEEL_CHUNK_PROGRESS:
        progress(r);
        if (r->state == REQ_PRECOMMIT)
            commit(r);
        break;
    case KEEL_CHUNK_IDLE:
        break; /* role-only, empty and usage chunks go along (held until the commit) */
    }
    if (emit(r, data, len) != 0) {
        r->outcome.transport = keel_err_too_large;
        return r->state == REQ_RELAY ? EV_CUT : EV_FAIL;
    }
    return EV_GO_ON;
}

static int on_comment(void *ctx, const char *text, size_t len)
{
    struct keel_request *r = ctx;
    /* keep-alives reach a committed client (its idle timers), but never count as progress */
    if (r->state == REQ_RELAY && r->out.len < OUT_HIGH_WATER) {
        keel_buf_append(&r->out, ":", 1);
        keel_buf_append(&r->out, text, len);
        keel_buf_append(&r->out, "\n\n", 2);
    }
    return EV_GO_ON;
}

static int on_data(void *ctx, const char *data, size_t len)
{
    struct keel_request *r = ctx;
    if (r->state == REQ_BUFFER) {
        /* a non-stream body progresses with its bytes; whitespace keep-alives don't count */
        for (size_t i = 0; i < len; i++) {
            if (data[i] != ' ' && data[i] != '\n' && data[i] != '\r' && data[i] != '\t') {
                progress(r);
                break;
            }
        }
        if (r->gw->mem_held + len > r->config->max_memory) {
            keel_warn("req %s: max_memory reached while buffering %s's answer", r->id, r->target->upstream->name);
            r->outcome.transport = keel_err_local;
            end_attempt(r);
            return KEEL_XFER_CONSUMED;
        }
        if (keel_buf_append(&r->answer, data, len) != 0) {
            r->outcome.transport = keel_err_too_large;
            end_attempt(r);
            return KEEL_XFER_CONSUMED;
        }
        charge(r);
        return KEEL_XFER_CONSUMED;
    }
    if (r->state == REQ_RELAY && r->writing && r->out.len >= OUT_HIGH_WATER) {
        r->paused = 1; /* handed back; curl delivers it again after the resume */
        return KEEL_XFER_PAUSE;
    }
    int rv = keel_sse_parser_feed(&r->sse, data, len);
    if (rv == EV_FAIL || rv == KEEL_SSE_ETOOLONG || rv < 0) {
        if (rv != EV_FAIL)
            r->outcome.transport = keel_err_reset; /* framing we can't read is a broken stream */
        if (r->state == REQ_RELAY) {
            rv = EV_CUT;
        } else {
            end_attempt(r);
            return KEEL_XFER_CONSUMED;
        }
    }
    if (rv == EV_CUT) {
        struct keel_upstream_xfer *x = r->xfer;
        r->xfer = NULL;
        keel_upstream_xfer_cancel(x);
        cut_stream(r, keel_classify(&r->outcome), NULL);
    }
    if (r->state == REQ_RELAY)
        flush(r);
    return KEEL_XFER_CONSUMED;
}

/* hands `out` to the client when no write is under way; the last one is final */
static void flush(struct keel_request *r)
{
    if (r->writing || r->http == NULL)
        return;
    if (r->out.len == 0 && !r->finishing)
        return;
    int final = r->finishing;
    struct keel_http *h = r->http;
    r->writing = !final;
    if (final)
        r->http = NULL;
    charge(r);
    if (final) {
        keel_http_on_delivered(h, on_delivered, r);
        r->sending = 1;
    }
    if (keel_http_write(h, r->out.base, r->out.len, final) != 0) {
        /* the server could not take the write (out of memory) and dropped the client */
        r->writing = 0;
        r->sending = 0;
        if (!final)
            on_gone(r);
        else
            set_state(r, REQ_END);
        return;
    }
    keel_buf_reset(&r->out);
    if (final) {
        set_state(r, REQ_END);
        return;
    }
    if (r->paused && r->xfer != NULL) {
        r->paused = 0;
        keel_upstream_xfer_resume(r->xfer);
    }
}

static void on_written(void *ctx)
{
    struct keel_request *r = ctx;
    r->writing = 0;
    flush(r);
}

/* ------------------------------------------------------------------ end of an attempt */

static void on_done(void *ctx, const char *err, const char *detail)
{
    struct keel_request *r = ctx;
    r->xfer = NULL; /* freed by upstream.c after we return */
    if (err != NULL) {
        keel_info("req %s: %s/%s: %s (%s)", r->id, r->target->upstream->name, r->target->model, err, detail);
        r->outcome.transport = err;
    }
    switch (r->state) {
    case REQ_ATTEMPT:
        if (err == NULL)
            r->outcome.transport = keel_err_reset; /* ended without a response head */
        end_attempt(r);
        return;
    case REQ_BUFFER:
        if (err == NULL && r->status >= 200 && r->status < 300) {
            /* any 2xx must carry an answer: a 204, or a 201 with no choices, is empty (seed 000) */
            enum keel_answer_kind k =
                keel_answer_inspect(r->answer.base, r->answer.len, r->code, sizeof(r->code), &r->usage);
            r->outcome.empty = k == KEEL_ANSWER_EMPTY;
            r->outcome.malformed = k == KEEL_ANSWER_MALFORMED;
            r->outcome.stream_error = k == KEEL_ANSWER_ERROR;
        } else if (err == NULL) {
            keel_error_code(r->answer.base, r->answer.len, r->code, sizeof(r->code));
        }
        r->outcome.code = r->code[0] ? r->code : NULL;
        end_attempt(r);
        return;
    case REQ_PRECOMMIT:
        if (err == NULL)
            r->outcome.empty = 1; /* the stream ended without content progress */
        end_attempt(r);
        return;
    case REQ_RELAY:
        if (err != NULL) {
            cut_stream(r, keel_classify(&r->outcome), NULL);
        } else {
            /* a stream that ended cleanly without [DONE] is finalised at once */
            r->out.max += 32;
            keel_buf_append(&r->out, "data: [DONE]\n\n", 14);
            r->finishing = 1;
            r->answered = 1;
            attempt_over(r, KEEL_CLASS_OK);
        }
        flush(r);
        return;
    case REQ_WAIT:
    case REQ_END:
        return;
    }
}

/* The attempt failed or its answer is complete: classify it and ask the router what next. */
static void end_attempt(struct keel_request *r)
{
    if (r->xfer != NULL) {
        struct keel_upstream_xfer *x = r->xfer;
        r->xfer = NULL;
        keel_upstream_xfer_cancel(x);
    }
    if (r->state == REQ_PRECOMMIT || r->state == REQ_RELAY)
        keel_sse_parser_release(&r->sse);
    keel_buf_reset(&r->out); /* events held for a commit that never came */

    enum keel_class cls = keel_classify(&r->outcome);
    record_attempt(r, cls);
    attempt_over(r, cls);
    if (cls != KEEL_CLASS_OK)
        keel_info("req %s: %s/%s failed: %s (status %d)", r->id, r->target->upstream->name, r->target->model,
                  keel_class_name(cls), r->status);
    const struct keel_target_conf *t = r->target;
    if (t->upstream->managed != NULL && keel_backend_heals(cls)) {
        /* seed 002: a dead or evicted local server: restart it (once, however many requests
         * saw it) and retry this request on it once, if the deadline still allows */
        struct keel_backend *b = keel_managed_get(r->gw->managed, t->upstream->name);
        if (b != NULL) {
            keel_backend_dead(b, r->backend_gen, keel_class_name(cls));
            if (!r->healed && now_ms(r) < r->dl.total_at) {
                r->healed = 1;
                start_attempt(r);
                return;
            }
        }
    }
    r->failed = cls != KEEL_CLASS_OK;
    r->failed_cls = cls;
    r->failed_from = r->router.cur;
    struct keel_step step = {.kind = KEEL_STEP_GIVE_UP, .status = 502};
    if (r->nattempts < MAX_ATTEMPTS)
        step = keel_router_after(&r->router, cls, r->retry_after_ms, now_ms(r), r->dl.total_at,
                                 next_random(r->gw));
    next_step(r, step);
}

/* Acts on the router's step. */
static void next_step(struct keel_request *r, struct keel_step step)
{
    const char *ct = r->content_type[0] ? r->content_type : "application/json";
    switch (step.kind) {
    case KEEL_STEP_DONE:
        r->answered = 1;
        if (r->ttft_ms == 0)
            r->ttft_ms = now_ms(r) - r->start_ms; /* non-stream: the answer is its first content */
        respond(r, 200, ct, r->answer.base ? r->answer.base : "", r->answer.len, NULL);
        set_state(r, REQ_END);
        return;
    case KEEL_STEP_RETURN:
        /* the client's own fault: the upstream's answer, as is */
        respond(r, r->status, ct, r->answer.base ? r->answer.base : "", r->answer.len, NULL);
        set_state(r, REQ_END);
        return;
    case KEEL_STEP_GIVE_UP:
        give_up(r, &step);
        return;
    case KEEL_STEP_WAIT:
        r->wake_at = now_ms(r) + step.wait_ms;
        set_state(r, REQ_WAIT);
        arm(r);
        return;
    case KEEL_STEP_TRY:
        if (r->failed && step.target != r->failed_from)
            keel_state_failover(r->mstate, r->model->targets[r->failed_from].upstream->name,
                                r->model->targets[step.target].upstream->name, r->failed_cls);
        r->failed = 0;
        r->probe = step.probe;
        start_attempt(r);
        return;
    }
}

static void give_up(struct keel_request *r, const struct keel_step *step)
{
    if (step->local) {
        respond_error(r, 503, "server_error", "local_error",
                      "keel ran out of its own resources (file descriptors, memory or max_memory) before an "
                      "upstream could answer: retry shortly",
                      1);
    } else if (step->status == 429) {
        respond_error(r, 429, "rate_limit_error", "rate_limited", "every target of the model is rate-limited",
                      (step->retry_after_ms + 999) / 1000);
    } else if (step->status == 503) {
        /* every breaker is open: answer at once, and say when the first one may take a probe */
        uint64_t now = now_ms(r), ready = UINT64_MAX;
        for (size_t i = 0; i < r->model->ntargets; i++) {
            uint64_t at = keel_breaker_ready_at(&r->tstate[i]->breaker, now);
            if (at < ready)
                ready = at;
        }
        uint64_t secs = (ready - now + 999) / 1000;
        respond_error(r, 503, "upstream_error", "all_targets_open",
                      "every target of the model is cooling down after failures (circuit breakers open)",
                      secs > 0 ? secs : 1);
    } else {
        respond_error(r, 502, "upstream_error", "all_targets_failed", "every target of the model failed", 0);
    }
    set_state(r, REQ_END);
}

/* ------------------------------------------------------------------ deadlines and waits */

static void on_timer(uv_timer_t *t);

/* (re)arms the request's one timer for whatever falls first */
static void arm(struct keel_request *r)
{
    uint64_t at;
    if (r->state == REQ_WAIT) {
        at = r->wake_at < r->dl.total_at ? r->wake_at : r->dl.total_at;
    } else {
        enum keel_deadline_kind kind;
        at = keel_deadline_next(&r->dl, &kind);
    }
    uint64_t now = now_ms(r);
    uv_timer_start(r->timer, on_timer, at > now ? at - now : 0, 0);
}

/* The request's budget is spent: 504 before the commit point, an error event after it. */
static void deadline_exceeded(struct keel_request *r)
{
    keel_backend_cancel_wait(&r->waiter);
    if (r->xfer != NULL) {
        struct keel_upstream_xfer *x = r->xfer;
        r->xfer = NULL;
        keel_upstream_xfer_cancel(x);
        /* the attempt's own first_byte and stall had not run out (they would have fired
         * first): a budget spent, often the client's own x-keel-timeout, says nothing about the
         * upstream, so it is not held against its breaker */
        if (r->state != REQ_RELAY) {
            record_attempt(r, KEEL_CLASS_DEADLINE_EXCEEDED);
            attempt_over(r, KEEL_CLASS_DEADLINE_EXCEEDED);
        }
    }
    keel_info("req %s: deadline of %llu ms exceeded in state %s", r->id,
              (unsigned long long)(r->dl.total_at - r->start_ms), state_names[r->state]);
    if (r->state == REQ_RELAY) {
        cut_stream(r, KEEL_CLASS_DEADLINE_EXCEEDED, "deadline_exceeded");
        flush(r);
        return;
    }
    char msg[160];
    snprintf(msg, sizeof(msg), "the request's deadline of %llu ms ran out after %zu attempts",
             (unsigned long long)(r->dl.total_at - r->start_ms), r->nattempts);
    respond_error(r, 504, "timeout_error", "deadline_exceeded", msg, 0);
    set_state(r, REQ_END);
}

static void on_timer(uv_timer_t *t)
{
    struct keel_request *r = t->data;
    uint64_t now = now_ms(r);
    if (r->state == REQ_WAIT) {
        if (now >= r->dl.total_at)
            deadline_exceeded(r);
        else if (now >= r->wake_at)
            next_step(r, keel_router_resume(&r->router, now));
        else
            arm(r);
        return;
    }
    if (r->xfer == NULL)
        return; /* the answer is complete and on its way to the client: nothing left to time */
    int kind = keel_deadline_expired(&r->dl, now);
    if (kind < 0) {
        arm(r); /* progress moved the deadline since the timer was set */
        return;
    }
    if (kind == KEEL_DL_TOTAL) {
        deadline_exceeded(r);
        return;
    }
    /* a client that left since the last peek: its request ends as client_gone, and the upstream
     * is not blamed with a timeout it never got to finish (the soak saw a stall_timeout counted
     * against a breaker for a client 283 ms gone) */
    if (r->http != NULL && keel_http_check_gone(r->http))
        return; /* on_gone ended (and freed) the request */
    if (kind == KEEL_DL_STALL && r->paused) {
        /* the client is slow, not the upstream: keel paused the transfer itself */
        r->dl.progress_at = now;
        arm(r);
        return;
    }
    r->outcome.transport = keel_err_timeout;
    r->outcome.timeout = kind == KEEL_DL_FIRST_BYTE ? KEEL_TIMEOUT_FIRST_BYTE : KEEL_TIMEOUT_STALL;
    if (r->state == REQ_RELAY) {
        struct keel_upstream_xfer *x = r->xfer;
        r->xfer = NULL;
        keel_upstream_xfer_cancel(x);
        cut_stream(r, KEEL_CLASS_STALL_TIMEOUT, NULL);
        flush(r);
        return;
    }
    keel_info("req %s: %s/%s: %s after %llu ms", r->id, r->target->upstream->name, r->target->model,
              kind == KEEL_DL_FIRST_BYTE ? "first_byte timeout" : "stall timeout",
              (unsigned long long)(now - r->attempt_start_ms));
    end_attempt(r);
}

/* ------------------------------------------------------------------ finish */

static void on_gone(void *ctx)
{
    struct keel_request *r = ctx;
    r->http = NULL;
    r->gone = 1;
    if (r->xfer != NULL && r->state != REQ_RELAY)
        record_attempt(r, KEEL_CLASS_CLIENT_GONE);
    else if (r->state == REQ_RELAY)
        r->attempts[r->nattempts - 1].cls = KEEL_CLASS_CLIENT_GONE;
    attempt_over(r, KEEL_CLASS_CLIENT_GONE); /* never counts against the upstream */
    keel_backend_cancel_wait(&r->waiter);
    keel_info("req %s: client gone in state %s: upstream transfer cancelled", r->id, state_names[r->state]);
    set_state(r, REQ_END);
}

/* DESIGN.md's audit record, one line: ids, names, statuses, sizes and times, never a secret,
 * a header or a prompt */
static void audit(struct keel_request *r, enum keel_class cls, const struct attempt *last, uint64_t ms)
{
    char ts[40];
    keel_time_rfc3339(r->start_wall_ms, ts, sizeof(ts));
    json_t *attempts = json_array();
    for (size_t i = 0; i < r->nattempts; i++) {
        const struct attempt *a = &r->attempts[i];
        json_array_append_new(attempts, json_pack("{s:s, s:s, s:s, s:i, s:I, s:I}", "upstream",
                                                  a->target->upstream->name, "model", a->target->model, "class",
                                                  keel_class_name(a->cls), "status", a->status, "ms",
                                                  (json_int_t)a->ms, "ttft_ms", (json_int_t)a->ttft_ms));
    }
    json_t *rec = json_pack("{s:s, s:s, s:s, s:b, s:i, s:I, s:o, s:o, s:o, s:o, s:I, s:o, s:b, s:s}", "ts", ts,
                            "id", r->id, "model", r->model->name, "stream",
                            r->stream, "status", r->status_sent, "ms",
                            (json_int_t)ms, "ttft_ms",
                            r->ttft_ms || r->answered ? json_integer((json_int_t)r->ttft_ms) : json_null(),
                            "upstream", last ? json_string(last->target->upstream->name) : json_null(),
                            "target_model", last ? json_string(last->target->model) : json_null(), "attempts",
                            attempts, "prompt_bytes", (json_int_t)r->prompt_bytes, "usage",
                            r->usage.present ? json_pack("{s:I, s:I, s:I}", "prompt_tokens",
                                                         (json_int_t)r->usage.prompt_tokens, "completion_tokens",
                                                         (json_int_t)r->usage.completion_tokens, "total_tokens",
                                                         (json_int_t)r->usage.total_tokens)
                                             : json_null(),
                            "client_gone", r->gone, "class", keel_class_name(cls));
    char *line = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    if (line != NULL)
        keel_audit_line(r->gw->audit, line, strlen(line));
    free(line);
}

/* the request's line in keel_requests_total and the latency histograms and windows */
static void account(struct keel_request *r)
{
    const struct attempt *last = NULL;
    for (size_t i = r->nattempts; i > 0 && last == NULL; i--)
        if (r->attempts[i - 1].cls != KEEL_CLASS_SKIPPED)
            last = &r->attempts[i - 1];
    enum keel_class cls = r->gone       ? KEEL_CLASS_CLIENT_GONE
                          : r->answered ? KEEL_CLASS_OK
                          : last        ? last->cls
                                        : KEEL_CLASS_SKIPPED;
    struct keel_route_stats *rs = keel_state_route(r->mstate, last ? last->target->upstream->name : "");
    /* until keel handed its answer over, not until a slow client took it: the latency windows
     * and the cliff watch measure the providers and keel, not the clients' links */
    uint64_t ms = r->ended_ms - r->start_ms;
    if (rs != NULL) {
        rs->requests[cls]++;
        keel_hist_observe(&rs->duration, (double)ms / 1000.0);
        if (r->ttft_ms > 0 || r->answered)
            keel_hist_observe(&rs->ttft, (double)r->ttft_ms / 1000.0);
    }
    if (r->gw->audit != NULL)
        audit(r, cls, last, ms);
    /* every request's time, answered or not, feeds the cliff watch; one that comes near the cliff
     * is checked at once (p99 <= max, so the max crossing is the first sign) */
    keel_window_add(&r->mstate->answers, now_ms(r), (uint32_t)ms);
    if (r->answered)
        keel_window_add(&r->mstate->ttfts, now_ms(r), (uint32_t)r->ttft_ms);
    if (!r->mstate->near_cliff && ms + r->config->cliff_margin_ms >= r->model->cliff_ms)
        keel_gateway_cliff_check(r->gw, r->mstate, r->model);
    if (r->answered && last != NULL) {
        struct keel_window_stats *w = keel_state_window(r->mstate, last->target->upstream->name, last->target->model);
        if (w != NULL) {
            keel_window_add(&w->duration, now_ms(r), (uint32_t)ms);
            keel_window_add(&w->ttft, now_ms(r), (uint32_t)r->ttft_ms);
        }
    }
}

static void free_timer(uv_handle_t *t)
{
    free(t);
}

static void finish(struct keel_request *r)
{
    if (r->xfer != NULL) {
        keel_upstream_xfer_cancel(r->xfer);
        r->xfer = NULL;
    }
    const struct attempt *last = r->nattempts ? &r->attempts[r->nattempts - 1] : NULL;
    /* the audit log is the per-request record; this line is for debugging (-v) */
    keel_debug("req %s: model=%s attempts=%zu last=%s/%s class=%s ms=%llu", r->id, r->model->name, r->nattempts,
              last ? last->target->upstream->name : "-", last ? last->target->model : "-",
              last ? keel_class_name(last->cls) : "-", (unsigned long long)(now_ms(r) - r->start_ms));
    if (r->http != NULL) /* never reached: every path to REQ_END answers or loses the client */
        keel_respond_error(r->http, 500, "server_error", "internal", "request ended without an answer");
    attempt_over(r, KEEL_CLASS_CLIENT_GONE); /* no-op unless an attempt is somehow still open */
    keel_backend_cancel_wait(&r->waiter);
    /* admitted as a probe or handed a backend, but ended (deadline, client gone) before the
     * attempt started: give both back, or the breaker stays half-open and the backend busy */
    if (r->probe)
        keel_breaker_release(&r->tstate[r->router.cur]->breaker);
    if (r->backend != NULL)
        keel_backend_release(r->backend);
    uv_timer_stop(r->timer);
    r->ended_ms = now_ms(r);
    if (r->sending)
        return; /* on_delivered records and frees it, holding its max_inflight slot till then */
    complete(r);
}

/* The server let go of the final bytes: taken by the client, or dropped with its connection
 * (a send_timeout). Until now the request held its slot: a client that never reads an answer
 * costs keel the same as one still being answered (issue 13, finding 1). */
static void on_delivered(void *ctx, int delivered)
{
    struct keel_request *r = ctx;
    assert(r->state == REQ_END && r->sending);
    r->sending = 0;
    if (!delivered) {
        r->gone = 1;
        keel_info("req %s: the client did not take its answer (send_timeout): recorded as client_gone", r->id);
    }
    complete(r);
}

/* the request's record (metrics, windows, audit line), then its memory */
static void complete(struct keel_request *r)
{
    account(r);
    if (r->sse.on_event != NULL)
        keel_sse_parser_release(&r->sse);
    keel_buf_release(&r->answer);
    keel_buf_release(&r->out);
    assert(r->gw->mem_held >= r->mem);
    r->gw->mem_held -= r->mem;
    free(r->body);
    keel_config_drop(r->config);
    free(r->tstate);
    uv_close((uv_handle_t *)r->timer, free_timer); /* STACK trap 6: freed in the close callback */
    struct keel_gateway *gw = r->gw;
    free(r);
    keel_gateway_request_done(gw);
}
