/* request.c - one client request's state machine: route along the model's fallback chain,
 * attempt a target, read its answer as events, classify, then fail over, return the client's own
 * error as is, relay or answer; finish. What happens next, and when: intake.c read the request,
 * relay.c carries a stream to the client, answer.c writes keel's own bytes, audit.c the record;
 * policy lives in src/core (classify, deadline, router, the decoders and the assembler). One
 * timer per request serves every deadline and wait. */
#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "answer.h"
#include "core/fmt.h"
#include "core/anthropic_msg.h"
#include "core/headers.h"
#include "core/json.h"
#include "core/translate.h"
#include "gateway_t.h"
#include "io/server.h"
#include "io/upstream.h"
#include "log.h"
#include "managed.h"
#include "record.h"
#include "relay.h"
#include "request_t.h"
#include "state.h"

static const char *const state_names[] = {"wait", "attempt", "buffer", "precommit", "relay", "assemble", "end"};

static void start_attempt(struct keel_request *r);
static void end_attempt(struct keel_request *r);
static void next_step(struct keel_request *r, struct keel_step step);
static void attempt_over(struct keel_request *r, enum keel_class cls);
static void finish(struct keel_request *r);
static void complete(struct keel_request *r);
static void commit(struct keel_request *r);
static void open_reader(struct keel_request *r);
static void arm(struct keel_request *r);
static void on_gone(void *ctx);

static uint64_t now_ms(struct keel_request *r)
{
    return uv_now(r->w->loop);
}

static uint64_t next_random(struct keel_gateway *gw)
{
    uint64_t z = __atomic_add_fetch(&gw->rng, 0x9e3779b97f4a7c15ULL, __ATOMIC_RELAXED); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* the state machine's edges: a head only follows an attempt, the commit only a held stream,
 * and nothing follows the commit but the end, or a continuation (set_state) */
static int edge_ok(enum keel_req_state from, enum keel_req_state to)
{
    switch (to) {
    case REQ_WAIT:
    case REQ_ATTEMPT:
        return from != REQ_RELAY && from != REQ_END;
    case REQ_BUFFER:
    case REQ_PRECOMMIT:
    case REQ_ASSEMBLE:
        return from == REQ_ATTEMPT;
    case REQ_RELAY:
        return from == REQ_PRECOMMIT;
    case REQ_END:
        return from != REQ_END;
    }
    return 0;
}

/* Every state change goes through here, and each state's entry action runs here (STYLE L1):
 * an attempt opens against its target's counters, a stream's reader is set up, the commit sends
 * the client its headers, the end records and frees. */
static void set_state(struct keel_request *r, enum keel_req_state to)
{
    /* a continuation leaves the committed stream for an attempt on another target (or a wait for
     * its managed backend); its answer comes back through PRECOMMIT without a second commit */
    assert(edge_ok(r->state, to) ||
           (r->continuing && r->state == REQ_RELAY && (to == REQ_ATTEMPT || to == REQ_WAIT)));
    keel_debug("req %s: %s -> %s", r->id, state_names[r->state], state_names[to]);
    r->state = to;
    switch (to) {
    case REQ_WAIT:
        arm(r);
        break;
    case REQ_ATTEMPT:
        assert(!r->attempt_open);
        r->attempt_open = 1;
        keel_gw_lock(r->gw);
        r->tstate[r->router.cur]->inflight++;
        keel_gw_unlock(r->gw);
        arm(r);
        break;
    case REQ_BUFFER:
        break;
    case REQ_PRECOMMIT:
    case REQ_ASSEMBLE:
        open_reader(r);
        break;
    case REQ_RELAY:
        commit(r);
        break;
    case REQ_END:
        finish(r);
        break;
    }
}

/* Brings the request's charge against max_memory up to what it holds now: its body twice (the
 * attempt's copy included), the server's copy, its answer and stream buffers and what it assembled
 * (from events or from frames). */
static void charge(struct keel_request *r)
{
    size_t now = 3 * r->body_len + r->answer.cap + r->out.cap + r->assembly.held + r->frames.held +
                 (r->senc != NULL ? r->senc->held : 0) +
                 r->told.text.cap + r->scratch.cap;
    if (now != r->mem)
        __atomic_add_fetch(&r->gw->mem_held, now - r->mem, __ATOMIC_RELAXED); /* wraps down when smaller */
    r->mem = now;
}

/* ------------------------------------------------------------------ the client's answer */

static void on_delivered(void *ctx, int delivered);

/* the answering attempt's upstream headers (on_header) after keel's own in hdrs[n..] */
static size_t with_upstream_headers(const struct keel_request *r, struct keel_header *hdrs, size_t n)
{
    const char *p = r->back.base;
    for (size_t i = 0; i < r->nback; i++) {
        const char *v = p + strlen(p) + 1;
        hdrs[n++] = (struct keel_header){p, v};
        p = v + strlen(v) + 1;
    }
    return n;
}

/* the one final answer: status, keel's headers (the upstream's allowed ones too when it is the
 * attempt's own answer: from_upstream), the body */
static void respond(struct keel_request *r, int status, const char *content_type, const char *body, size_t len,
                    const struct keel_header *extra, int from_upstream)
{
    assert(r->http != NULL && r->status_sent == 0); /* one answer per request */
    struct keel_header hdrs[KEEL_ANSWER_HEADERS + KEEL_BACK_HEADERS];
    char attempts[2048];
    size_t n = keel_answer_headers(r, hdrs, content_type, attempts, sizeof(attempts));
    if (extra != NULL)
        hdrs[n++] = *extra;
    if (from_upstream)
        n = with_upstream_headers(r, hdrs, n);
    if (!keel_answer_should_retry(status))
        hdrs[n++] = (struct keel_header){"x-should-retry", "false"};
    struct keel_http *h = r->http;
    r->http = NULL;
    r->status_sent = status;
    keel_http_on_delivered(h, on_delivered, r);
    r->sending = 1;
    keel_http_respond(h, status, hdrs, n, body, len);
}

/* retry_after: seconds (0 = none), in the envelope and as Retry-After */
static void respond_error(struct keel_request *r, int status, const char *type, const char *code,
                          const char *message, uint64_t retry_after)
{
    char *body = keel_answer_envelope(r->enc, r, status, type, code, message, retry_after);
    char secs[24];
    snprintf(secs, sizeof(secs), "%llu", (unsigned long long)retry_after);
    struct keel_header ra = {"retry-after", secs};
    respond(r, status, "application/json", body ? body : "", body ? strlen(body) : 0, retry_after > 0 ? &ra : NULL,
            0);
    free(body);
}

static void on_written(void *ctx);

/* the commit point (entry of RELAY): the committed attempt is listed (as ok, ms = time to first
 * content) in the headers it sends; a later failure rewrites its class in the record */
static void record_attempt(struct keel_request *r, enum keel_class cls);
static void commit(struct keel_request *r)
{
    if (r->continuing) {
        record_attempt(r, KEEL_CLASS_OK); /* the client has its headers: the continuation is listed */
        return;
    }
    assert(r->http != NULL && r->status_sent == 0);
    record_attempt(r, KEEL_CLASS_OK);
    r->ttft_ms = now_ms(r) - r->start_ms;
    struct keel_header hdrs[KEEL_ANSWER_HEADERS + KEEL_BACK_HEADERS];
    char attempts[2048];
    size_t n = keel_answer_headers(r, hdrs, "text/event-stream", attempts, sizeof(attempts));
    hdrs[n++] = (struct keel_header){"cache-control", "no-cache"};
    n = with_upstream_headers(r, hdrs, n);
    r->status_sent = 200;
    keel_http_start(r->http, 200, hdrs, n, on_written);
}

/* hands the stream's queue to the client and acts on what happened */
static void flush(struct keel_request *r)
{
    charge(r);
    switch (keel_relay_flush(r, on_delivered)) {
    case KEEL_FLUSH_IDLE:
        return;
    case KEEL_FLUSH_WROTE:
        if (r->paused && r->xfer != NULL) {
            r->paused = 0;
            keel_upstream_xfer_resume(r->xfer);
        }
        return;
    case KEEL_FLUSH_FINAL:
        set_state(r, REQ_END);
        return;
    case KEEL_FLUSH_LOST:
        on_gone(r);
        return;
    }
}

static void on_written(void *ctx)
{
    struct keel_request *r = ctx;
    r->writing = 0;
    flush(r);
}

static int try_continue(struct keel_request *r, enum keel_class cls);

/* After the commit a failure can't be hidden: the stream is continued on another target when one
 * can (try_continue), else it ends with an error event and no [DONE]. `code` is the event's error
 * code (NULL = the class name). */
static void cut_stream(struct keel_request *r, enum keel_class cls, const char *code)
{
    if (r->state == REQ_RELAY)
        r->attempts[r->nattempts - 1].cls = cls; /* the committed attempt, recorded at the commit */
    attempt_over(r, cls);
    if (code == NULL && try_continue(r, cls))
        return;
    char msg[240];
    if (code != NULL)
        snprintf(msg, sizeof(msg), "the request's deadline ran out mid-stream (upstream %s)",
                 r->target->upstream->name);
    else if (r->continuing)
        snprintf(msg, sizeof(msg), "upstream %s failed mid-stream: %s; its continuation on upstream %s failed: %s",
                 r->cut_target->upstream->name, keel_class_name(r->cut_cls),
                 r->target->upstream->name, keel_class_name(cls));
    else
        snprintf(msg, sizeof(msg), "upstream %s failed mid-stream: %s", r->target->upstream->name,
                 keel_class_name(cls));
    keel_relay_fail(r, code ? code : keel_class_name(cls), msg);
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
    keel_gw_touch(r->gw); /* the caller holds gw->mu */
    keel_events_emit(&r->gw->events, ev);
    keel_probe_kick(r->gw->probe); /* an opened target gets its background probe planned */
    keel_shared_publish(r->gw->shared, ts); /* the other instances skip it too, without a failure of theirs */
}

/* the router's admission: the target's breaker says allow, probe or skip */
static enum keel_admit admit_target(void *ctx, size_t i, uint64_t now)
{
    struct keel_request *r = ctx;
    enum keel_breaker_change change;
    keel_gw_lock(r->gw);
    enum keel_admit a = keel_breaker_admit(&r->tstate[i]->breaker, now, &change);
    breaker_event(r, r->tstate[i], change, KEEL_CLASS_OK);
    keel_gw_unlock(r->gw);
    return a;
}

/* room for one more attempt: 0, or -1 when there is none (MAX_ATTEMPTS, or no memory) */
static int attempt_room(struct keel_request *r)
{
    if (r->nattempts < r->attempts_cap)
        return 0;
    size_t cap = r->attempts_cap * 2 > MAX_ATTEMPTS ? MAX_ATTEMPTS : r->attempts_cap * 2;
    if (cap <= r->attempts_cap)
        return -1;
    struct attempt *a = r->attempts == r->attempts_inline ? malloc(cap * sizeof(*a))
                                                          : realloc(r->attempts, cap * sizeof(*a));
    if (a == NULL)
        return -1;
    if (r->attempts == r->attempts_inline)
        memcpy(a, r->attempts_inline, sizeof(r->attempts_inline));
    r->attempts = a;
    r->attempts_cap = cap;
    return 0;
}

static void skip_target(void *ctx, size_t i)
{
    struct keel_request *r = ctx;
    keel_gw_lock(r->gw);
    r->tstate[i]->skipped++;
    keel_gw_unlock(r->gw);
    if (attempt_room(r) == 0)
        r->attempts[r->nattempts++] = (struct attempt){&r->model->targets[i], KEEL_CLASS_SKIPPED, 0, 0, 0};
}

/* An attempt ended with cls: its breaker, in-flight count and counters learn it, once. blame 0:
 * the target is not held to it (its local server is being healed and the request retries on
 * it): the breaker hears nothing yet, and a probe stays the probe for the retry, whose outcome
 * settles it. */
static void attempt_done(struct keel_request *r, enum keel_class cls, int blame)
{
    if (!r->attempt_open)
        return;
    r->attempt_open = 0;
    keel_gw_lock(r->gw);
    if (r->backend != NULL) {
        keel_gw_touch(r->gw);
        keel_backend_release(r->backend);
        r->backend = NULL;
    }
    struct keel_target_state *ts = r->tstate[r->router.cur];
    assert(ts->inflight > 0);
    ts->inflight--;
    ts->attempts[cls]++;
    if (blame) {
        if (keel_breaker_counts(cls) || cls == KEEL_CLASS_RATE_LIMITED)
            keel_state_recent(ts, cls);
        enum keel_breaker_change change =
            keel_breaker_report(&ts->breaker, &ts->params, cls, r->probe, r->retry_after_ms, now_ms(r));
        breaker_event(r, ts, change, cls);
        if (change == KEEL_BREAKER_SAME && cls == KEEL_CLASS_RATE_LIMITED && r->gw->shared != NULL) {
            keel_gw_touch(r->gw);
            keel_shared_publish(r->gw->shared, ts); /* a 429's cool-down holds for every instance */
        }
        r->probe = 0; /* reported: a retry on this target is not the probe again */
    }
    keel_gw_unlock(r->gw);
}

static void attempt_over(struct keel_request *r, enum keel_class cls)
{
    attempt_done(r, cls, 1);
}

/* How each upstream protocol is reached: the path under its base_url, how its key is sent, how
 * a client's body of the same protocol asks it for a stream with usage, and whether a
 * non-stream client's answer can be built from its stream (stream_upstream; the Responses
 * decoder only judges, so a non-stream Responses client gets the target's own answer). */
struct protocol {
    const char *kind, *path, *key_header, *extra_header;
    enum keel_reqbody_ask stream_ask;
    int assembles;
};
static const struct protocol protocols[] = {
    {"openai", "/chat/completions", NULL, NULL, KEEL_REQBODY_STREAM_USAGE, 1},
    {"anthropic", "/messages", "x-api-key", "anthropic-version: 2023-06-01", KEEL_REQBODY_STREAM, 1},
    {"openai-responses", "/responses", NULL, NULL, KEEL_REQBODY_STREAM, 0},
};

/* The protocol target t speaks with this request's client: its upstream's kind, or the
 * Responses API itself when the client speaks it and the upstream serves it (responses: true) */
static const char *target_kind(const struct keel_request *r, const struct keel_target_conf *t)
{
    return t->upstream->responses && strcmp(r->enc->native_kind, "openai-responses") == 0 ? "openai-responses"
                                                                                           : t->upstream->kind;
}

static const struct protocol *protocol_of(const char *kind)
{
    for (size_t i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++)
        if (strcmp(protocols[i].kind, kind) == 0)
            return &protocols[i];
    assert(0 && "config admits only kinds keel speaks");
    return &protocols[0];
}

/* Whether a continuation on t can finish this client's stream: a stream client whose protocol
 * keel writes itself (chat, Messages, Responses), and t's stream read into events (a Responses
 * upstream's is only judged). */
static int continues(const struct keel_request *r, const struct keel_target_conf *t)
{
    return r->stream && r->enc->stream_event != NULL && strcmp(target_kind(r, t), "openai-responses") != 0;
}

/* ------------------------------------------------------------------ begin */

void keel_req_begin(struct keel_request *r)
{
    struct keel_gateway *gw = r->gw;
    r->start_ms = uv_now(r->w->loop);
    r->start_wall_ms = keel_time_now_ms();
    charge(r);
    keel_buf_init(&r->answer, MAX_ANSWER);
    keel_buf_init(&r->out, MAX_OUT);
    keel_buf_init(&r->back, 1536);
    r->attempts = r->attempts_inline;
    r->attempts_cap = sizeof(r->attempts_inline) / sizeof(r->attempts_inline[0]);
    for (size_t i = 0; i < r->model->ntargets; i++) {
        const struct keel_target_conf *t = &r->model->targets[i];
        r->route[i] = (struct keel_route_target){.context_window = t->context_window,
                                                 .same_target = t->retry.same_target,
                                                 .backoff_ms = t->retry.backoff_ms,
                                                 .max_wait_ms = t->retry.max_wait_ms,
                                                 .protocol = (int)(protocol_of(target_kind(r, t)) - protocols),
                                                 .continuation = t->continuation && continues(r, t)};
    }
    keel_buf_init(&r->scratch, MAX_SSE_LINE);
    keel_told_init(&r->told, MAX_ANSWER);
    keel_router_init(&r->router, r->route, r->model->ntargets, admit_target, skip_target, r);
    uv_timer_init(r->w->loop, r->timer);
    r->timer->data = r;
    __atomic_add_fetch(&gw->inflight, 1, __ATOMIC_RELAXED);
    keel_http_watch(r->http, on_gone, r);
    next_step(r, keel_router_start(&r->router, now_ms(r)));
}

/* ------------------------------------------------------------------ attempt */

static void on_head(void *ctx, int status, const char *content_type, uint64_t retry_after_ms);
static int on_data(void *ctx, const char *data, size_t len);
static void on_done(void *ctx, const char *err, const char *detail);

static void on_header(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen);
static const struct keel_upstream_cbs upstream_cbs = {on_head, on_data, on_done, on_header};

static void deadline_exceeded(struct keel_request *r);
static int armed(const struct keel_request *r);

/* an attempt that fails before it starts (a managed backend that cannot take it) */
static void fail_to_start(struct keel_request *r, const char *transport)
{
    r->healed = 1; /* nothing of it reached the server: its backend knows already, no retry on it */
    set_state(r, REQ_ATTEMPT);
    r->outcome.transport = transport;
    end_attempt(r);
}

/* a managed target's backend, under gw->mu (the gateway's loop runs the backends) */
static struct keel_backend *backend_of(struct keel_request *r, const struct keel_target_conf *t)
{
    keel_gw_lock(r->gw);
    struct keel_backend *b = keel_managed_get(r->gw->managed, t->upstream->name, t->model);
    keel_gw_unlock(r->gw);
    return b;
}

/* a request met a dead backend: it is restarted (once) on the gateway's loop */
static void backend_dead(struct keel_request *r, struct keel_backend *b, enum keel_class cls)
{
    keel_gw_lock(r->gw);
    keel_gw_touch(r->gw);
    keel_backend_dead(b, r->backend_gen, keel_class_name(cls));
    keel_gw_unlock(r->gw);
}

/* the request waits for no backend any more: its place in the queue, or its answer not yet
 * taken from its worker's inbox, goes */
static void backend_unwait(struct keel_request *r)
{
    if (!r->backend_waiting)
        return;
    r->backend_waiting = 0;
    keel_gw_lock(r->gw);
    keel_gw_touch(r->gw);
    keel_backend_cancel_wait(&r->waiter);
    for (struct keel_request **p = &r->w->inbox; *p != NULL; p = &(*p)->inbox_next)
        if (*p == r) {
            *p = r->inbox_next;
            break;
        }
    keel_gw_unlock(r->gw);
}

/* the managed backend a request waited for is ready (ok) or backing off: on the request's loop */
static void backend_answered(struct keel_request *r, int ok)
{
    r->backend_waiting = 0;
    if (!ok) {
        fail_to_start(r, keel_err_connect);
        return;
    }
    r->backend = backend_of(r, &r->model->targets[r->router.cur]);
    start_attempt(r);
}

/* The backend's answer, told on the gateway's loop (under gw->mu). With workers the request is
 * its own worker's to carry on: it goes to that worker's inbox, run in that loop's time. */
static void on_backend(void *ctx, int ok)
{
    struct keel_request *r = ctx;
    if (!r->gw->threaded) {
        backend_answered(r, ok);
        return;
    }
    r->backend_ok = ok;
    r->inbox_next = r->w->inbox;
    r->w->inbox = r;
    uv_async_send(&r->w->wake);
}

void keel_req_inbox(struct keel_request *list)
{
    while (list != NULL) {
        struct keel_request *r = list;
        list = r->inbox_next;
        r->inbox_next = NULL;
        if (r->backend_waiting) /* else it ended while queued (backend_unwait) */
            backend_answered(r, r->backend_ok);
    }
}

/* the router's current target, from scratch: its deadlines, its reader, its evidence */
static void reset_attempt(struct keel_request *r, const struct keel_target_conf *t, uint64_t now)
{
    r->target = t;
    r->status = 0;
    r->retry_after_ms = 0;
    r->content_type[0] = '\0';
    r->code[0] = '\0';
    memset(&r->outcome, 0, sizeof(r->outcome));
    keel_buf_reset(&r->answer);
    r->attempt_start_ms = now;
    r->first_progress_at = 0;
    r->saw_done = 0;
    r->saw_finish = 0;
    r->paused = 0; /* a transfer paused for a slow client is over: this one is not */
    r->nback = 0;
    keel_buf_reset(&r->back);
    r->usage = (struct keel_usage){0};
    r->dl = (struct keel_deadline){
        .total_at = keel_deadline_total(r->start_ms, t->timeouts.total_ms, r->client_budget_ms),
        .attempt_at = now,
        .first_byte_ms = t->timeouts.first_byte_ms,
        .stall_ms = t->timeouts.stall_ms,
    };
}

/* the attempt's target speaks the client's protocol: bytes pass through, only model replaced */
static int native(const struct keel_request *r)
{
    return strcmp(target_kind(r, r->target), r->enc->native_kind) == 0;
}

/* The client's request cannot be said in the target's protocol (an input that protocol has no
 * way to carry): the client's fault, as a 400 from the target would be, and nobody else's. */
static void untranslatable(struct keel_request *r, const char *why)
{
    char msg[320];
    snprintf(msg, sizeof(msg), "cannot translate the request for upstream %s (%s): %s", r->target->upstream->name,
             r->target->upstream->kind, why);
    char *env = keel_answer_envelope(r->enc, NULL, 400, "invalid_request_error", "untranslatable_request", msg, 0);
    if (env != NULL)
        keel_buf_append(&r->answer, env, strlen(env));
    free(env);
    r->status = r->outcome.status = 400;
    r->outcome.untranslatable = 1;
    snprintf(r->code, sizeof(r->code), "untranslatable_request");
    r->outcome.code = r->code;
    snprintf(r->content_type, sizeof(r->content_type), "application/json");
    /* the reason quotes the client's text: to the client, not the log */
    keel_info("req %s: untranslatable for %s (%s)", r->id, r->target->upstream->name, r->target->upstream->kind);
    end_attempt(r);
}

/* A request body in another protocol's words (core/translate.h), by client protocol and target
 * kind; what the target's protocol cannot carry is dropped (listed in dropped) or refused (err) */
typedef char *(*translate_fn)(const struct keel_request *r, const struct keel_target_conf *t, int stream,
                              size_t *len, char *err, size_t errlen, char *dropped, size_t droppedlen);

static char *to_messages(const struct keel_request *r, const struct keel_target_conf *t, int stream, size_t *len,
                         char *err, size_t errlen, char *dropped, size_t droppedlen)
{
    struct keel_translate_opts o = {.model = t->model, .stream = stream, .default_max_tokens = t->max_tokens};
    return keel_translate_chat_to_messages(r->body, r->body_len, &o, len, err, errlen, dropped, droppedlen);
}

static char *to_chat(const struct keel_request *r, const struct keel_target_conf *t, int stream, size_t *len,
                     char *err, size_t errlen, char *dropped, size_t droppedlen)
{
    struct keel_translate_chat_opts o = {.model = t->model, .stream = stream};
    return keel_translate_messages_to_chat(r->body, r->body_len, &o, len, err, errlen, dropped, droppedlen);
}

/* A Responses request for a chat target, and for an Anthropic one through chat (what the
 * second step drops is listed after the first's) */
static char *responses_to_chat(const struct keel_request *r, const struct keel_target_conf *t, int stream,
                               size_t *len, char *err, size_t errlen, char *dropped, size_t droppedlen)
{
    struct keel_translate_responses_opts o = {.model = t->model, .stream = stream};
    return keel_translate_responses_to_chat(r->body, r->body_len, &o, len, err, errlen, dropped, droppedlen);
}

static char *responses_to_messages(const struct keel_request *r, const struct keel_target_conf *t, int stream,
                                   size_t *len, char *err, size_t errlen, char *dropped, size_t droppedlen)
{
    struct keel_translate_responses_opts o = {.model = t->model, .stream = 0};
    size_t chat_len;
    char *chat = keel_translate_responses_to_chat(r->body, r->body_len, &o, &chat_len, err, errlen, dropped,
                                                  droppedlen);
    if (chat == NULL)
        return NULL;
    char more[512] = "";
    struct keel_translate_opts m = {.model = t->model, .stream = stream, .default_max_tokens = t->max_tokens};
    char *body = keel_translate_chat_to_messages(chat, chat_len, &m, len, err, errlen, more, sizeof(more));
    free(chat);
    size_t used = dropped != NULL ? strlen(dropped) : 0;
    if (more[0] != '\0' && used + strlen(more) + 2 <= droppedlen)
        snprintf(dropped + used, droppedlen - used, "%s%s", used > 0 ? "," : "", more);
    return body;
}

static const struct {
    const char *protocol, *kind;
    translate_fn fn;
} translators[] = {
    {"openai-chat", "anthropic", to_messages},
    {"anthropic-messages", "openai", to_chat},
    {"openai-responses", "openai", responses_to_chat},
    {"openai-responses", "anthropic", responses_to_messages},
};

static translate_fn translator(const struct keel_request *r, const struct keel_target_conf *t)
{
    for (size_t i = 0; i < sizeof(translators) / sizeof(translators[0]); i++)
        if (strcmp(translators[i].protocol, r->enc->protocol) == 0 && strcmp(translators[i].kind, t->upstream->kind) == 0)
            return translators[i].fn;
    assert(0 && "every client protocol has a translator to every upstream kind");
    return NULL;
}

/* whether the upstream's `headers:` set the header [name, name+nlen) */
static int configured(const struct keel_upstream_conf *u, const char *name, size_t nlen)
{
    for (size_t i = 0; i < u->nheaders; i++)
        if (strncasecmp(u->headers[i], name, nlen) == 0 && u->headers[i][nlen] == ':')
            return 1;
    return 0;
}

/* The attempt's header lines beyond its protocol's own: the client's headers the allowlist lets
 * go to a target of this kind (core/headers.h; anthropic-beta only from a client that speaks
 * Anthropic too), as "name: value" in buf. Returns how many went into lines[]; a header past
 * buf's room is left out (logged). */
static size_t up_headers(const struct keel_request *r, const struct keel_target_conf *t, const char **lines,
                         size_t max, char *buf, size_t cap)
{
    size_t n = 0, used = 0;
    for (size_t i = 0; r->http != NULL && i < keel_http_header_count(r->http) && n < max; i++) {
        const char *name, *value;
        size_t nlen, vlen;
        keel_http_header_at(r->http, i, &name, &nlen, &value, &vlen);
        if (!keel_header_up(name, nlen, t->upstream->kind))
            continue;
        if (nlen == 14 && memcmp(name, "anthropic-beta", 14) == 0 && !native(r))
            continue;
        if (configured(t->upstream, name, nlen))
            continue; /* the operator's value for this upstream wins */
        if (used + nlen + vlen + 3 > cap) {
            keel_warn("req %s: header %.*s not forwarded: the request's forwarded headers pass %zu bytes", r->id,
                      (int)nlen, name, cap);
            continue;
        }
        lines[n++] = buf + used;
        used += (size_t)snprintf(buf + used, cap - used, "%.*s: %.*s", (int)nlen, name, (int)vlen, value) + 1;
    }
    return n;
}

/* A continuation's body: the one t would get (body, taken), with the text the client was told as
 * the assistant's prefill (core/continue.h); the splice learns what whitespace the prefill lost.
 * NULL when memory ran out. */
static char *prefilled(struct keel_request *r, const struct keel_target_conf *t, char *body, size_t *len)
{
    const char *text = r->told.text.base ? r->told.text.base : "";
    size_t trimmed = 0;
    char *p = keel_prefill_body(body, *len, target_kind(r, t), text, r->told.text.len, t->continuation_body, len,
                                &trimmed);
    free(body);
    keel_splice_init(&r->splice, text + r->told.text.len - trimmed, trimmed);
    return p;
}

/* Starts an attempt on the router's current target. */
static void start_attempt(struct keel_request *r)
{
    assert(r->xfer == NULL && !r->attempt_open && r->http != NULL);
    const struct keel_target_conf *t = &r->model->targets[r->router.cur];
    uint64_t now = now_ms(r);
    reset_attempt(r, t, now);
    if (now >= r->dl.total_at) {
        if (r->probe) {
            keel_gw_lock(r->gw);
            keel_breaker_release(&r->tstate[r->router.cur]->breaker);
            keel_gw_unlock(r->gw);
        }
        r->probe = 0;
        deadline_exceeded(r);
        return;
    }
    if (keel_upstream_backed(t->upstream) && r->backend == NULL) {
        keel_gw_lock(r->gw);
        keel_gw_touch(r->gw);
        struct keel_backend *b = keel_managed_get(r->gw->managed, t->upstream->name, t->model);
        int rc = b ? keel_backend_acquire(b, &r->waiter, on_backend, r) : -1;
        r->backend_waiting = rc == 0;
        keel_gw_unlock(r->gw);
        if (rc == 0) {
            /* starting or restarting: wait for it within the request's own deadline */
            r->wake_at = UINT64_MAX;
            set_state(r, REQ_WAIT);
            return;
        }
        if (rc < 0) {
            fail_to_start(r, keel_err_connect); /* backing off after crashes: fail over at once */
            return;
        }
        r->backend = b;
    }
    if (r->backend != NULL) {
        keel_gw_lock(r->gw);
        r->backend_gen = keel_backend_generation(r->backend);
        keel_gw_unlock(r->gw);
    }
    set_state(r, REQ_ATTEMPT);
    /* the client's stream encoder (3 KB), only for a stream re-encoded from another protocol or
     * one a later target could continue: a native stream's bytes pass as sent */
    if (r->stream && r->senc == NULL && (!native(r) || armed(r)) && (r->senc = calloc(1, sizeof(*r->senc))) == NULL) {
        keel_error("req %s: cannot start an attempt on %s: out of memory", r->id, t->upstream->name);
        r->outcome.transport = keel_err_local;
        end_attempt(r);
        return;
    }

    /* a client that did not ask for a stream gets one answer either way; asking the target for a
     * stream (stream_upstream) lets first_byte and stall watch the generation, and any failure
     * before the end fail over unseen */
    const struct protocol *p = protocol_of(target_kind(r, t));
    int ask_stream = r->enc->stream_init != NULL && (r->stream || (t->stream_upstream && (!native(r) || p->assembles)));
    size_t len = 0;
    char *body;
    if (native(r)) {
        body = keel_reqbody_for(r->body, r->body_len, &r->spans, t->model,
                                ask_stream && !r->stream ? p->stream_ask : KEEL_REQBODY_AS_SENT, &len);
    } else {
        char err[256] = "", dropped[512] = "";
        body = translator(r, t)(r, t, ask_stream, &len, err, sizeof(err), dropped, sizeof(dropped));
        if (dropped[0] != '\0')
            keel_debug("req %s: for %s (%s) dropped: %s", r->id, t->upstream->name, t->upstream->kind, dropped);
        if (body == NULL && err[0] != '\0') {
            untranslatable(r, err);
            return;
        }
    }
    if (r->continuing && body != NULL)
        body = prefilled(r, t, body, &len);
    char url[2048], hbuf[2048];
    const char *lines[12 + KEEL_MAX_UPSTREAM_HEADERS];
    const char *base = r->backend ? keel_backend_base_url(r->backend) : NULL;
    struct keel_fmt uf;
    keel_fmt_init(&uf, url, sizeof(url));
    keel_fmt_str(&uf, base ? base : t->upstream->base_url);
    keel_fmt_str(&uf, native(r) && r->enc->native_path != NULL ? r->enc->native_path : p->path);
    size_t nlines = 0;
    if (p->extra_header != NULL)
        lines[nlines++] = p->extra_header;
    for (size_t i = 0; i < t->upstream->nheaders; i++) /* the config's, for every request to it */
        lines[nlines++] = t->upstream->headers[i];
    nlines += up_headers(r, t, lines + nlines, sizeof(lines) / sizeof(lines[0]) - nlines, hbuf, sizeof(hbuf));
    struct keel_upstream_spec spec = {
        .url = url,
        .bearer = t->upstream->api_key,
        .key_header = p->key_header,
        .headers = lines,
        .nheaders = nlines,
        .body = body,
        .body_len = len,
        .give_body = 1,
        .stream = ask_stream,
        .connect_timeout_ms = t->timeouts.connect_ms,
    };
    r->xfer = body ? keel_upstream_xfer_start(r->w->upstream, &spec, &upstream_cbs, r) : NULL;
    if (r->xfer != NULL)
        return;
    keel_error("req %s: cannot start a transfer to %s: out of memory", r->id, t->upstream->name);
    r->outcome.transport = keel_err_local;
    end_attempt(r);
}

/* An upstream response header: kept for the client's answer when the allowlist says it goes
 * back (core/headers.h: request ids, rate limits...), the attempt's own, while there is room. */
static void on_header(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen)
{
    struct keel_request *r = ctx;
    if (name == NULL) { /* a 1xx came first: its headers are not the answer's */
        r->nback = 0;
        keel_buf_reset(&r->back);
        return;
    }
    size_t was = r->back.len;
    if (!keel_header_back(name, nlen) || r->nback == KEEL_BACK_HEADERS || memchr(name, '\0', nlen) != NULL ||
        memchr(value, '\0', vlen) != NULL || keel_buf_append(&r->back, name, nlen) != 0 ||
        keel_buf_append(&r->back, "", 1) != 0 || keel_buf_append(&r->back, value, vlen) != 0 ||
        keel_buf_append(&r->back, "", 1) != 0) {
        r->back.len = was; /* no room (1536 bytes): the header stays behind */
        return;
    }
    for (char *c = r->back.base + was; *c; c++) /* HTTP/1.1 names in lower case, as keel writes its own */
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    r->nback++;
}

static void on_head(void *ctx, int status, const char *content_type, uint64_t retry_after_ms)
{
    struct keel_request *r = ctx;
    assert(r->state == REQ_ATTEMPT && r->xfer != NULL);
    r->status = status;
    r->retry_after_ms = retry_after_ms;
    r->outcome.status = status;
    struct keel_fmt cf;
    keel_fmt_init(&cf, r->content_type, sizeof(r->content_type));
    keel_fmt_str(&cf, content_type);
    /* decided by what the upstream sent, not by what was asked (STACK trap 8): a stream goes to
     * a stream client through the commit point, to any other client through the assembler */
    if (status >= 200 && status < 300 && strncmp(content_type, "text/event-stream", 17) == 0 &&
        r->enc->stream_init != NULL)
        set_state(r, r->stream ? REQ_PRECOMMIT : REQ_ASSEMBLE);
    else
        set_state(r, REQ_BUFFER);
}

/* ------------------------------------------------------------------ the answer, read as events */

enum { EV_GO_ON = 0, EV_FAIL = 1, EV_CUT = 2 };

static int on_event(void *ctx, const char *event, const char *data, size_t len);
static int on_comment(void *ctx, const char *text, size_t len);

/* a re-encoded stream's events, in the client's protocol, queued as the relay's are; kept in
 * the told when the stream may be continued */
static int to_client(void *ctx, const struct keel_ev *ev)
{
    struct keel_request *r = ctx;
    int rv = r->enc->stream_event(r->senc, ev, &r->out);
    if (rv == 0 && r->armed)
        keel_told_event(&r->told, ev);
    return rv;
}

/* A stream relayed as sent that may be continued: each event is kept in the told and said by a
 * shadow of the client's encoder whose frames are dropped, so that a continuation's events carry
 * on from the encoder's state (the same chunk id, the same content block). Never stops the
 * relay: a shadow that loses track only rules the continuation out. */
static int shadow(void *ctx, const struct keel_ev *ev)
{
    struct keel_request *r = ctx;
    keel_told_event(&r->told, ev);
    keel_buf_reset(&r->scratch);
    if (r->enc->stream_event(r->senc, ev, &r->scratch) != 0)
        r->told.broken = 1;
    return 0;
}

/* a continuation's events: spliced (core/continue.h), then re-encoded into the same stream */
static int continue_event(void *ctx, const struct keel_ev *ev)
{
    struct keel_request *r = ctx;
    struct keel_ev edited;
    int v = keel_splice_event(&r->splice, ev, &edited, &r->scratch);
    if (v < 0 || v == KEEL_SPLICE_DROP)
        return v < 0 ? v : 0;
    return to_client(r, v == KEEL_SPLICE_EDIT ? &edited : ev);
}

/* the stream encoder's state, once it is over (whatever happened): what it held given back */
static void release_senc(struct keel_request *r)
{
    if (r->senc_open && r->enc->stream_release != NULL)
        r->enc->stream_release(r->senc);
    r->senc_open = 0;
}

/* the client's stream encoder, fresh */
static void open_senc(struct keel_request *r)
{
    assert(r->senc != NULL); /* start_attempt allocated it */
    release_senc(r);
    r->enc->stream_init(r->senc, r->include_usage);
    r->senc_open = 1;
    r->senc->max = MAX_ANSWER;
    r->senc->created_at = r->start_wall_ms / 1000;
}

/* whether a later target in the chain could continue the stream of the attempt under way */
static int armed(const struct keel_request *r)
{
    if (!continues(r, r->target))
        return 0;
    for (size_t j = r->router.cur + 1; j < r->model->ntargets; j++)
        if (r->route[j].continuation)
            return 1;
    return 0;
}

/* a continuation's answer began: the client reads, as an SSE comment, where the rest comes from
 * (SDKs ignore comments; the audit says it too) */
static void announce(struct keel_request *r)
{
    char line[512];
    int n = snprintf(line, sizeof(line), ": keel continues the answer on %s/%s after %s/%s: %s (%zu bytes prefilled)\n\n",
                     r->target->upstream->name, r->target->model, r->cut_target->upstream->name,
                     r->cut_target->model, keel_class_name(r->cut_cls), r->told.text.len);
    r->out.max += (size_t)n;
    keel_buf_append(&r->out, line, (size_t)n);
}

/* entry of PRECOMMIT and ASSEMBLE: the stream's framing, and the target's protocol read into
 * events. A stream client of the same protocol only needs each frame judged: its bytes pass
 * through untouched (the hot path decodes nothing, unless a later target could continue the
 * stream); an assembled answer needs every event; a continuation carries on in the encoder the
 * stream had. */
static void open_reader(struct keel_request *r)
{
    keel_sse_parser_init(&r->sse, MAX_SSE_LINE, on_event, on_comment, r);
    const struct keel_decoder_ops *ops = keel_decoder_for(target_kind(r, r->target));
    assert(ops != NULL); /* config admits only kinds that have a decoder */
    if (r->continuing) {
        assert(r->state == REQ_PRECOMMIT && r->senc_open);
        r->sink = SINK_ENCODE;
        /* OpenAI chunks name their model: the continuation's name the model that wrote them (the
         * id stays: one stream); the other protocols named theirs once, at the start */
        r->senc->model_len = 0;
        keel_decoder_init(&r->dec, ops, continue_event, r);
        announce(r);
    } else if (r->state == REQ_ASSEMBLE && native(r) && r->enc->native_frames) {
        r->sink = SINK_FRAMES;
        /* the protocol's own answer built from its frames as sent; the decoder only judges */
        keel_anthropic_msg_release(&r->frames);
        keel_anthropic_msg_init(&r->frames, MAX_ANSWER);
        keel_decoder_init(&r->dec, ops, NULL, NULL);
    } else if (r->state == REQ_ASSEMBLE) {
        r->sink = SINK_ASM;
        keel_asm_release(&r->assembly);
        keel_asm_init(&r->assembly, MAX_ANSWER, ops->kind);
        r->assembly.created_at = r->start_wall_ms / 1000; /* when the upstream sends none */
        keel_decoder_init(&r->dec, ops, keel_asm_event, &r->assembly);
    } else {
        keel_told_release(&r->told);
        r->armed = armed(r);
        if (native(r)) {
            r->sink = SINK_PASS;
            if (r->armed)
                open_senc(r);
            keel_decoder_init(&r->dec, ops, r->armed ? shadow : NULL, r);
        } else {
            /* another protocol's stream, re-encoded event by event in the client's */
            r->sink = SINK_ENCODE;
            open_senc(r);
            keel_decoder_init(&r->dec, ops, to_client, r);
        }
    }
}

/* the attempt's reader, when it is over */
static void close_reader(struct keel_request *r)
{
    if (r->sse.on_event != NULL)
        keel_sse_parser_release(&r->sse);
    r->sse.on_event = NULL;
    keel_asm_release(&r->assembly);
    keel_anthropic_msg_release(&r->frames);
    release_senc(r);
    charge(r); /* what the assembler held is given back now, not when the client has read */
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

/* An answer could not be built: past its cap (too large), out of memory (local), or -EPROTO,
 * what the target sent does not hold together (a tool call's input that is no JSON object,
 * frames out of order): malformed, the target's fault. */
static void answer_failed(struct keel_request *r, int rv)
{
    if (rv == -EPROTO)
        r->outcome.malformed = 1;
    else
        r->outcome.transport = rv == -ENOBUFS ? keel_err_too_large : keel_err_local;
}

/* one frame of a streamed answer: judged by the target's decoder, then held, relayed or
 * assembled */
static int on_event(void *ctx, const char *event, const char *data, size_t len)
{
    struct keel_request *r = ctx;
    int committed = r->state == REQ_RELAY;
    struct keel_chunk_info info;
    if (r->state == REQ_ASSEMBLE && __atomic_load_n(&r->gw->mem_held, __ATOMIC_RELAXED) + len > r->config->max_memory) {
        keel_warn("req %s: max_memory reached while assembling %s's answer", r->id, r->target->upstream->name);
        r->outcome.transport = keel_err_local;
        return EV_FAIL;
    }
    r->dec.ops->frame(&r->dec, event, data, len, &info);
    if (info.usage.present)
        r->usage = info.usage;
    r->saw_finish |= info.finished;
    switch (info.kind) {
    case KEEL_CHUNK_DONE:
        r->saw_done = 1;
        if (r->sink != SINK_FRAMES && (r->sink != SINK_PASS || r->enc->native_end != NULL))
            return EV_GO_ON; /* keel writes the end itself when the transfer ends cleanly ([DONE]) */
        break;              /* the protocol's own end frame (message_stop) goes as sent */
    case KEEL_CHUNK_MALFORMED:
        if (r->state == REQ_ASSEMBLE) {
            /* skipped, it would leave a hole in the one answer: the client has seen nothing yet,
             * so the attempt fails (as a non-stream body that is not JSON does) */
            r->outcome.malformed = 1;
            return EV_FAIL;
        }
        keel_warn("req %s: %s sent a malformed chunk (%zu bytes): skipped", r->id, r->target->upstream->name, len);
        return EV_GO_ON;
    case KEEL_CHUNK_ERROR:
        r->outcome.stream_error = 1;
        snprintf(r->code, sizeof(r->code), "%s", info.error_code);
        r->outcome.code = r->code;
        return committed ? EV_CUT : EV_FAIL;
    case KEEL_CHUNK_PROGRESS:
        progress(r);
        if (r->state == REQ_PRECOMMIT)
            set_state(r, REQ_RELAY);
        break;
    case KEEL_CHUNK_IDLE:
        break; /* role-only, empty and usage chunks go along (held until the commit) */
    }
    if (r->dec.rv != 0) {
        /* the assembler's or the encoder's queue is full, memory ran out, or the client's protocol
         * cannot say what came (-EPROTO: a translation's limit, keel's own, never the target's) */
        r->outcome.transport = r->dec.rv == -ENOBUFS ? keel_err_too_large : keel_err_local;
        return r->state == REQ_RELAY ? EV_CUT : EV_FAIL;
    }
    if (r->sink == SINK_ASM || r->sink == SINK_ENCODE) { /* the events went there */
        charge(r);
        return EV_GO_ON;
    }
    if (r->sink == SINK_FRAMES) { /* assembled from the frames as sent */
        int rv = keel_anthropic_msg_frame(&r->frames, event, data, len);
        charge(r);
        if (rv == 0)
            return EV_GO_ON;
        answer_failed(r, rv);
        return EV_FAIL;
    }
    if (keel_relay_event(r, event, data, len) != 0) {
        r->outcome.transport = keel_err_too_large;
        return r->state == REQ_RELAY ? EV_CUT : EV_FAIL;
    }
    return EV_GO_ON;
}

static int on_comment(void *ctx, const char *text, size_t len)
{
    keel_relay_comment(ctx, text, len);
    return EV_GO_ON;
}

/* a non-stream body progresses with its bytes; whitespace keep-alives don't count */
static void buffer(struct keel_request *r, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (data[i] != ' ' && data[i] != '\n' && data[i] != '\r' && data[i] != '\t') {
            progress(r);
            break;
        }
    }
    if (__atomic_load_n(&r->gw->mem_held, __ATOMIC_RELAXED) + len > r->config->max_memory) {
        keel_warn("req %s: max_memory reached while buffering %s's answer", r->id, r->target->upstream->name);
        r->outcome.transport = keel_err_local;
        end_attempt(r);
        return;
    }
    if (keel_buf_append(&r->answer, data, len) != 0) {
        r->outcome.transport = keel_err_too_large;
        end_attempt(r);
        return;
    }
    charge(r);
}

static int on_data(void *ctx, const char *data, size_t len)
{
    struct keel_request *r = ctx;
    if (r->state == REQ_BUFFER) {
        buffer(r, data, len);
        return KEEL_XFER_CONSUMED;
    }
    if (keel_relay_lagging(r)) {
        r->paused = 1; /* handed back; curl delivers it again after the resume */
        return KEEL_XFER_PAUSE;
    }
    int rv = keel_sse_parser_feed(&r->sse, data, len);
    if (rv == EV_FAIL || rv == KEEL_SSE_ETOOLONG || rv < 0) {
        if (rv != EV_FAIL)
            r->outcome.transport = keel_err_reset; /* framing we can't read is a broken stream */
        if (r->state != REQ_RELAY) {
            end_attempt(r);
            return KEEL_XFER_CONSUMED;
        }
        rv = EV_CUT;
    }
    if (rv == EV_CUT) {
        struct keel_upstream_xfer *x = r->xfer;
        r->xfer = NULL;
        keel_upstream_xfer_cancel(x);
        cut_stream(r, keel_classify(&r->outcome), NULL);
    }
    if (r->state == REQ_RELAY || r->continuing)
        flush(r);
    return KEEL_XFER_CONSUMED;
}

/* ------------------------------------------------------------------ end of an attempt */

/* An answer from a target of another protocol, decoded whole into a: written in the client's
 * protocol (rv: the decoding's); an error body in the client's envelope, with the upstream's
 * message. */
static void reencode_body(struct keel_request *r, struct keel_asm *a, int rv)
{
    if (r->status >= 200 && r->status < 300) {
        if (rv == 0 && __atomic_load_n(&r->gw->mem_held, __ATOMIC_RELAXED) + a->held > r->config->max_memory)
            rv = -ENOMEM; /* the answer twice over would pass max_memory */
        keel_buf_reset(&r->answer);
        if (rv == 0)
            rv = r->enc->answer(a, &r->answer);
        if (rv != 0)
            answer_failed(r, rv);
    } else {
        char msg[512] = "";
        struct keel_json root;
        if (r->answer.len > 0 && keel_json_parse(r->answer.base, r->answer.len, &root) == 0)
            keel_json_string(keel_json_get(keel_json_get(root, "error"), "message"), msg, sizeof(msg));
        char *env = keel_answer_envelope(r->enc, NULL, r->status, "invalid_request_error",
                                         r->code[0] ? r->code : "upstream_error",
                                         msg[0] ? msg : "the upstream refused the request", 0);
        keel_buf_reset(&r->answer);
        if (env != NULL)
            keel_buf_append(&r->answer, env, strlen(env));
        free(env);
    }
    snprintf(r->content_type, sizeof(r->content_type), "application/json");
}

/* A non-stream answer's body is complete: judged by the target's decoder, in one pass that
 * also feeds an assembler when the client speaks another protocol, then written in its. */
static void judge_body(struct keel_request *r)
{
    const struct keel_decoder_ops *ops = keel_decoder_for(target_kind(r, r->target));
    int reencode = !native(r);
    struct keel_asm a;
    struct keel_decoder d;
    if (reencode)
        keel_asm_init(&a, MAX_ANSWER, ops->kind);
    if (reencode)
        a.created_at = r->start_wall_ms / 1000;
    keel_decoder_init(&d, ops, reencode ? keel_asm_event : NULL, reencode ? &a : NULL);
    if (r->status >= 200 && r->status < 300) {
        /* any 2xx must carry an answer: a 204, or a 201 with no choices, is empty (seed 000) */
        enum keel_answer_kind k =
            !reencode && r->enc->judge != NULL
                ? r->enc->judge(r->answer.base, r->answer.len, r->code, sizeof(r->code), &r->usage)
                : ops->body(&d, r->answer.base, r->answer.len, r->code, sizeof(r->code), &r->usage);
        r->outcome.empty = k == KEEL_ANSWER_EMPTY;
        r->outcome.malformed = k == KEEL_ANSWER_MALFORMED;
        r->outcome.stream_error = k == KEEL_ANSWER_ERROR;
    } else {
        ops->error_code(r->answer.base, r->answer.len, r->code, sizeof(r->code));
    }
    r->outcome.code = r->code[0] ? r->code : NULL;
    if (reencode) {
        reencode_body(r, &a, d.rv);
        keel_asm_release(&a);
        charge(r);
    }
}

/* a stream read for a non-stream client ended cleanly: its answer, whole, in the client's JSON */
static void assembled(struct keel_request *r)
{
    if (r->first_progress_at == 0) {
        r->outcome.empty = 1; /* the stream ended without content progress */
        return;
    }
    /* a stream that ends mid-event, or without its end marker and before every choice has its
     * finish reason, was cut: the client has seen nothing, so it fails over (a streaming client
     * would have been committed to it) */
    int frames = r->enc->native_frames && native(r);
    if (keel_sse_parser_pending(&r->sse) || (!r->saw_done && (frames || !keel_asm_finished(&r->assembly)))) {
        keel_info("req %s: %s's stream ended before its answer did", r->id, r->target->upstream->name);
        r->outcome.transport = keel_err_reset;
        return;
    }
    keel_buf_reset(&r->answer);
    int rv = frames ? keel_anthropic_msg_write(&r->frames, &r->answer) : r->enc->answer(&r->assembly, &r->answer);
    if (rv != 0) {
        answer_failed(r, rv);
        return;
    }
    snprintf(r->content_type, sizeof(r->content_type), "application/json");
    charge(r);
}

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
        if (err == NULL)
            judge_body(r);
        end_attempt(r);
        return;
    case REQ_PRECOMMIT:
        if (err == NULL)
            r->outcome.empty = 1; /* the stream ended without content progress */
        end_attempt(r);
        return;
    case REQ_ASSEMBLE:
        if (err == NULL)
            assembled(r);
        end_attempt(r);
        return;
    case REQ_RELAY:
        if (err != NULL) {
            cut_stream(r, keel_classify(&r->outcome), NULL);
        } else {
            /* a stream relayed as sent that ended cleanly after its finish reason but without
             * [DONE] is finalised at once; one that ended before was cut */
            int pass = r->sink == SINK_PASS;
            if (pass && r->enc->native_end != NULL && (r->saw_done || r->saw_finish)) {
                keel_relay_end(r);
            } else if (!r->saw_done || keel_sse_parser_pending(&r->sse)) {
                /* its end is the protocol's frame, or keel's to write when re-encoded: a stream
                 * cut before it must not look whole */
                r->outcome.transport = keel_err_reset;
                cut_stream(r, KEEL_CLASS_RESET, NULL);
                flush(r);
                return;
            } else if (pass) {
                keel_relay_end(r); /* its end frame went with the others */
            } else {
                /* room for the end's frames even when the queue is full: a Responses stream ends
                 * with the whole answer again */
                r->out.max += 4096 + r->senc->held;
                r->enc->stream_end(r->senc, &r->out);
                r->finishing = 1;
            }
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

static void record_attempt(struct keel_request *r, enum keel_class cls)
{
    if (attempt_room(r) != 0)
        r->nattempts--; /* full (never in practice: the router stops first): the last slot is reused */
    uint64_t ttft = cls == KEEL_CLASS_OK && r->first_progress_at ? r->first_progress_at - r->attempt_start_ms : 0;
    r->attempts[r->nattempts++] = (struct attempt){r->target, cls, r->status, now_ms(r) - r->attempt_start_ms, ttft};
}

static void continuation_failed(struct keel_request *r);

/* The attempt failed or its answer is complete: classify it and ask the router what next. */
static void end_attempt(struct keel_request *r)
{
    if (r->xfer != NULL) {
        struct keel_upstream_xfer *x = r->xfer;
        r->xfer = NULL;
        keel_upstream_xfer_cancel(x);
    }
    if (r->continuing) {
        continuation_failed(r);
        return;
    }
    close_reader(r);
    keel_buf_reset(&r->out); /* events held for a commit that never came (a committed stream's
                              * attempts end in continuation_failed) */

    enum keel_class cls = keel_classify(&r->outcome);
    record_attempt(r, cls);
    const struct keel_target_conf *t = r->target;
    /* seed 002: a dead or evicted local server: restart it, or have its control plane unload and
     * load it (once, however many requests saw it), and retry this request on it once, if the
     * deadline still allows. The target is not held to the failure that showed it dead: only a
     * heal that fails counts (else a few requests meeting one eviction would open its breaker
     * while it comes back, and the requests behind them would find it skipped) */
    struct keel_backend *b = keel_upstream_backed(t->upstream) && keel_backend_heals(cls) ? backend_of(r, t) : NULL;
    int heal = b != NULL && !r->healed && now_ms(r) < r->dl.total_at;
    attempt_done(r, cls, !heal);
    if (cls != KEEL_CLASS_OK)
        keel_info("req %s: %s/%s failed: %s (status %d)", r->id, r->target->upstream->name, r->target->model,
                  keel_class_name(cls), r->status);
    if (b != NULL)
        backend_dead(r, b, cls);
    if (heal) {
        r->healed = 1;
        start_attempt(r);
        return;
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

/* ------------------------------------------------------------------ continuation */

/* A native Anthropic stream's blocks as the client saw them and as the shadow encoder numbered
 * them agree: a block that makes no event (redacted thinking, a server tool's) would have the
 * continuation's text written into the wrong block. */
static int aligned(const struct keel_request *r)
{
    if (r->sink != SINK_PASS || strcmp(r->enc->native_kind, "anthropic") != 0)
        return 1;
    uint32_t n = 0;
    for (uint32_t i = 0; i < KEEL_ANTHROPIC_MAX_BLOCKS; i++)
        if (r->dec._state.anthropic.block[i] != 0)
            n = i + 1;
    return r->senc != NULL && n == r->senc->anthropic.nblocks; /* none: no continuation armed */
}

/* The continuation's attempt starts from the loop, not from inside the callback that broke the
 * stream (whose caller goes on with the request): a WAIT that is due at once (on_timer). */
static void begin_continuation(struct keel_request *r, const struct keel_step *step, enum keel_class cls,
                               size_t from)
{
    if (from != step->target) {
        keel_gw_lock(r->gw);
        keel_state_failover(r->mstate, r->model->targets[from].upstream->name,
                            r->model->targets[step->target].upstream->name, cls);
        keel_gw_unlock(r->gw);
    }
    r->probe = step->probe;
    r->continuing = 1;
    r->continued++;
    r->wake_at = now_ms(r);
    set_state(r, REQ_WAIT);
}

/* A committed stream broke with cls (its attempt reported): 1 when a continuation will finish
 * it, 0 when the client gets the stream's error: nothing was armed, what went out cannot be
 * carried on (a tool call, a refusal, several choices), the budget is spent, or no later target
 * declares continuation: prefill and is admitted. */
static int try_continue(struct keel_request *r, enum keel_class cls)
{
    if (!r->armed || r->http == NULL || !keel_router_continuable(cls))
        return 0;
    const char *why = keel_told_blocker(&r->told);
    if (why == NULL && !aligned(r))
        why = "the stream has content blocks keel does not follow";
    uint64_t now = now_ms(r);
    if (why == NULL && now >= r->dl.total_at)
        why = "the request's deadline ran out";
    size_t from = r->router.cur;
    struct keel_step step = {.kind = KEEL_STEP_GIVE_UP};
    if (why == NULL && r->nattempts < MAX_ATTEMPTS)
        step = keel_router_continue(&r->router, cls, now);
    if (step.kind != KEEL_STEP_TRY) {
        keel_info("req %s: %s/%s broke mid-stream (%s), not continued: %s", r->id, r->target->upstream->name,
                  r->target->model, keel_class_name(cls),
                  why ? why : "no later target that declares continuation: prefill is admitted");
        return 0;
    }
    if (!r->continuing) {
        r->cut_target = r->target;
        r->cut_cls = cls;
    }
    keel_sse_parser_release(&r->sse); /* the encoder and the told carry on */
    r->sse.on_event = NULL;
    keel_info("req %s: %s/%s broke mid-stream (%s): continuing on %s/%s with %zu bytes prefilled", r->id,
              r->target->upstream->name, r->target->model, keel_class_name(cls),
              r->model->targets[step.target].upstream->name, r->model->targets[step.target].model,
              r->told.text.len);
    begin_continuation(r, &step, cls, from);
    return 1;
}

/* A continuation's attempt ended before its first content: refused (a rejected prefill: the
 * client's error), failed (the next target that can continue), or it answered something that is
 * no stream. The client's stream ends with its error when nothing is left. */
static void continuation_failed(struct keel_request *r)
{
    if (r->sse.on_event != NULL)
        keel_sse_parser_release(&r->sse);
    r->sse.on_event = NULL;
    enum keel_class cls = keel_classify(&r->outcome);
    if (cls == KEEL_CLASS_OK)
        cls = KEEL_CLASS_EMPTY_RESPONSE; /* a whole answer, not the stream it was asked for */
    record_attempt(r, cls);
    attempt_over(r, cls);
    keel_info("req %s: continuation on %s/%s failed: %s (status %d)", r->id, r->target->upstream->name,
              r->target->model, keel_class_name(cls), r->status);
    const struct keel_target_conf *t = r->target;
    struct keel_backend *b = keel_upstream_backed(t->upstream) && keel_backend_heals(cls) ? backend_of(r, t) : NULL;
    if (b != NULL)
        backend_dead(r, b, cls);
    uint64_t now = now_ms(r);
    size_t from = r->router.cur;
    struct keel_step step = {.kind = KEEL_STEP_GIVE_UP};
    if (now < r->dl.total_at && r->nattempts < MAX_ATTEMPTS)
        step = keel_router_continue(&r->router, cls, now);
    if (step.kind == KEEL_STEP_TRY) {
        begin_continuation(r, &step, cls, from);
        return;
    }
    char msg[320];
    snprintf(msg, sizeof(msg), "upstream %s failed mid-stream: %s; its continuation on upstream %s %s: %s%s",
             r->cut_target->upstream->name, keel_class_name(r->cut_cls), t->upstream->name,
             step.kind == KEEL_STEP_RETURN ? "was refused" : "failed", keel_class_name(cls),
             step.kind == KEEL_STEP_RETURN ? "" : ", and no other target can continue it");
    keel_relay_fail(r, keel_class_name(r->cut_cls), msg);
    flush(r); /* the last word: the request may end here */
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
        keel_gw_lock(r->gw);
        for (size_t i = 0; i < r->model->ntargets; i++) {
            uint64_t at = keel_breaker_ready_at(&r->tstate[i]->breaker, now);
            if (at < ready)
                ready = at;
        }
        keel_gw_unlock(r->gw);
        uint64_t secs = (ready - now + 999) / 1000;
        respond_error(r, 503, "upstream_error", "all_targets_open",
                      "every target of the model is cooling down after failures (circuit breakers open)",
                      secs > 0 ? secs : 1);
    } else {
        respond_error(r, 502, "upstream_error", "all_targets_failed", "every target of the model failed", 0);
    }
    set_state(r, REQ_END);
}

/* Acts on the router's step. */
static void next_step(struct keel_request *r, struct keel_step step)
{
    const char *ct = r->content_type[0] ? r->content_type : "application/json";
    switch (step.kind) {
    case KEEL_STEP_DONE:
        r->answered = 1;
        /* the answer's first content: its first token when it streamed, else the answer itself */
        r->ttft_ms = (r->first_progress_at ? r->first_progress_at : now_ms(r)) - r->start_ms;
        respond(r, 200, ct, r->answer.base ? r->answer.base : "", r->answer.len, NULL, 1);
        set_state(r, REQ_END);
        return;
    case KEEL_STEP_RETURN:
        /* the client's own fault: the upstream's answer, as is */
        respond(r, r->status, ct, r->answer.base ? r->answer.base : "", r->answer.len, NULL, 1);
        set_state(r, REQ_END);
        return;
    case KEEL_STEP_GIVE_UP:
        give_up(r, &step);
        return;
    case KEEL_STEP_WAIT:
        r->wake_at = now_ms(r) + step.wait_ms;
        set_state(r, REQ_WAIT);
        return;
    case KEEL_STEP_TRY:
        if (r->failed && step.target != r->failed_from) {
            keel_gw_lock(r->gw);
            keel_state_failover(r->mstate, r->model->targets[r->failed_from].upstream->name,
                                r->model->targets[step.target].upstream->name, r->failed_cls);
            keel_gw_unlock(r->gw);
        }
        r->failed = 0;
        r->probe = step.probe;
        start_attempt(r);
        return;
    }
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
    if (r->state == REQ_WAIT && r->wake_at == UINT64_MAX) {
        /* it ran out waiting for a managed backend to start: the attempt that never began is
         * the request's last word (else it would read as skipped), held against nothing */
        record_attempt(r, KEEL_CLASS_DEADLINE_EXCEEDED);
    }
    backend_unwait(r);
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
    if (r->state == REQ_RELAY || r->continuing) {
        cut_stream(r, KEEL_CLASS_DEADLINE_EXCEEDED, "deadline_exceeded");
        flush(r);
        return;
    }
    close_reader(r);
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
        else if (now >= r->wake_at && r->continuing)
            start_attempt(r); /* a continuation, due (begin_continuation) */
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
    backend_unwait(r);
    keel_info("req %s: client gone in state %s: upstream transfer cancelled", r->id, state_names[r->state]);
    set_state(r, REQ_END);
}

static void free_timer(uv_handle_t *t)
{
    free(t);
}

/* entry of END */
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
    backend_unwait(r);
    /* admitted as a probe or handed a backend, but ended (deadline, client gone) before the
     * attempt started: give both back, or the breaker stays half-open and the backend busy */
    if (r->probe || r->backend != NULL) {
        keel_gw_lock(r->gw);
        keel_gw_touch(r->gw);
        if (r->probe)
            keel_breaker_release(&r->tstate[r->router.cur]->breaker);
        if (r->backend != NULL)
            keel_backend_release(r->backend);
        keel_gw_unlock(r->gw);
    }
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
    keel_record(r);
    close_reader(r);
    free(r->senc);
    if (r->attempts != r->attempts_inline)
        free(r->attempts);
    keel_buf_release(&r->back);
    keel_buf_release(&r->answer);
    keel_buf_release(&r->out);
    keel_buf_release(&r->scratch);
    keel_told_release(&r->told);
    __atomic_sub_fetch(&r->gw->mem_held, r->mem, __ATOMIC_RELAXED);
    free(r->body);
    keel_config_drop(r->config);
    free(r->tstate);
    uv_close((uv_handle_t *)r->timer, free_timer); /* STACK trap 6: freed in the close callback */
    struct keel_gateway *gw = r->gw;
    free(r);
    /* the gateway's drain notices the last one (gateway.c): woken for it when it waits */
    if (__atomic_sub_fetch(&gw->inflight, 1, __ATOMIC_RELAXED) == 0 && gw->threaded) {
        keel_gw_lock(gw);
        if (gw->draining)
            keel_gw_touch(gw);
        keel_gw_unlock(gw);
    }
}
