/* fuzz_upstream.c - libFuzzer driver for what keel makes of upstreams' answers. An input is a
 * small chain (targets, retry and breaker settings, a budget) and a series of answers: status,
 * content type, Retry-After, how the transfer ends, how long it takes, a body and the points its
 * bytes arrive split at. Each answer goes through the steps request.c takes (its on_head,
 * on_data, on_event and on_done, mirrored below: SSE parser, chunk inspection, the outcome,
 * classify), its class into the target's breaker and the request's router on a fake clock, and
 * the invariants marked `check` must hold for any bytes. request.c's I/O is fuzz_request's. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/breaker.h"
#include "core/chunk.h"
#include "core/classify.h"
#include "core/router.h"
#include "core/sse_parse.h"

#define MAX_TARGETS 4
#define MAX_REQUESTS 16 /* per input; answers run out first in most */
#define MAX_SSE_LINE (4u << 20) /* request.c's cap on one SSE line or event */

/* an invariant broken is a finding: say which, then abort so libFuzzer keeps the input */
#define check(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            broken(__LINE__, #cond);                                                               \
    } while (0)

static int verbose; /* KEEL_FUZZ_VERBOSE=1: trace each attempt (to look at a corpus file) */

static void broken(int line, const char *what)
{
    fprintf(stderr, "fuzz_upstream.c:%d: invariant broken: %s\n", line, what);
    abort();
}

/* ------------------------------------------------------------------ the input */

struct input {
    const uint8_t *p;
    size_t n;
};

/* the next byte, 0 once the input is spent (so a short input still decodes) */
static uint8_t byte(struct input *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

struct answer {
    int status;               /* 0: the transfer ended before a response head */
    const char *content_type; /* as the upstream sent it */
    uint64_t retry_after_ms;  /* as upstream.c parsed it */
    const char *err;          /* how the transfer ended: NULL (cleanly) or a keel_err_* */
    uint64_t elapsed_ms;      /* from the attempt's start to its end */
    const char *body;         /* NULL when empty, as request.c's answer buffer is then */
    size_t len;
    const uint8_t *splits; /* piece lengths minus one, cycled; none: the body in one piece */
    size_t nsplits;
};

static const int statuses[] = {200, 200, 200, 200, 0,   400, 401, 402, 403, 404, 408, 413, 422,
                               429, 500, 502, 503, 504, 529, 201, 204, 302, 418, 451, 599};
static const char *const content_types[] = {"text/event-stream",
                                            "text/event-stream; charset=utf-8",
                                            "application/json",
                                            "",
                                            "text/plain",
                                            "TEXT/EVENT-STREAM",
                                            "text/event-streamx",
                                            "application/json; charset=utf-8"};
static const uint64_t retry_afters[] = {0, 0, 1, 500, 1000, 5000, 30000, 120000};
static const uint64_t elapsed[] = {0, 1, 10, 100, 1000, 10000, 60000, 400000};

/* Answer layout: status, raw status, content type, Retry-After, end, elapsed, body length (2,
 * little-endian), number of split lengths (0-7), the split lengths, the body. */
static int next_answer(struct input *in, struct answer *a)
{
    if (in->n < 9)
        return 0;
    uint8_t s = byte(in), raw = byte(in);
    /* the table hits the statuses keel treats apart; the high bit any status at all */
    a->status = s & 0x80 ? 100 + (int)((((unsigned)s & 0x7f) << 8 | raw) % 500)
                         : statuses[s % (sizeof(statuses) / sizeof(statuses[0]))];
    a->content_type = content_types[byte(in) % 8];
    a->retry_after_ms = retry_afters[byte(in) % 8];
    /* keel_err_local: keel ran out mid-answer (max_memory while buffering, descriptors) */
    static const char *const ends[] = {NULL,           NULL,         NULL,
                                       keel_err_reset, keel_err_connect, keel_err_tls,
                                       keel_err_too_large, keel_err_timeout, keel_err_local};
    a->err = ends[byte(in) % (sizeof(ends) / sizeof(ends[0]))];
    a->elapsed_ms = elapsed[byte(in) % 8];
    size_t len = byte(in);
    len |= (size_t)byte(in) << 8;
    a->nsplits = byte(in) % 8;
    if (a->nsplits > in->n)
        a->nsplits = in->n;
    a->splits = in->p;
    in->p += a->nsplits;
    in->n -= a->nsplits;
    if (len > in->n)
        len = in->n;
    a->body = len ? (const char *)in->p : NULL;
    a->len = len;
    in->p += len;
    in->n -= len;
    return 1;
}

/* ------------------------------------------------------------------ SSE: whole vs split */

struct log {
    char buf[1 << 16];
    size_t len;
    int full; /* stopped recording: compare nothing */
};

static void log_add(struct log *l, const char *tag, const char *s, size_t n)
{
    size_t tl = strlen(tag);
    if (l->full || l->len + tl + n + 2 > sizeof(l->buf)) {
        l->full = 1;
        return;
    }
    memcpy(l->buf + l->len, tag, tl);
    l->len += tl;
    l->buf[l->len++] = '|';
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    l->buf[l->len++] = '\n';
}

static int log_event(void *ctx, const char *event, const char *data, size_t len)
{
    check(data[len] == '\0'); /* sse_parse.c promises callers a NUL after the data */
    log_add(ctx, event, data, len);
    return 0;
}

static int log_comment(void *ctx, const char *text, size_t len)
{
    log_add(ctx, ":", text, len);
    return 0;
}

/* pieces: 0 = all at once */
static int parse_into(const struct answer *a, size_t max_line, int pieces, struct log *l)
{
    struct keel_sse_parser p;
    keel_sse_parser_init(&p, max_line, log_event, log_comment, l);
    int rv = 0;
    for (size_t off = 0, i = 0; rv == 0 && off < a->len; i++) {
        size_t n = a->len - off;
        if (pieces && a->nsplits > 0 && (size_t)a->splits[i % a->nsplits] + 1 < n)
            n = (size_t)a->splits[i % a->nsplits] + 1;
        rv = keel_sse_parser_feed(&p, a->body + off, n);
        off += n;
    }
    keel_sse_parser_release(&p);
    return rv;
}

static void sse_whole_vs_split(const struct answer *a, size_t max_line)
{
    static struct log whole, split;
    whole.len = split.len = 0;
    whole.full = split.full = 0;
    int rw = parse_into(a, max_line, 0, &whole);
    int rs = parse_into(a, max_line, 1, &split);
    check(rw == 0 || rw == KEEL_SSE_ETOOLONG);
    check(rs == 0 || rs == KEEL_SSE_ETOOLONG);
    /* a line over the cap may be caught at another event when split: compare clean parses */
    if (rw == 0 && rs == 0 && !whole.full && !split.full)
        check(whole.len == split.len && memcmp(whole.buf, split.buf, whole.len) == 0);
}

/* ------------------------------------------------------------------ one attempt, as request.c */

enum { EV_GO_ON = 0, EV_FAIL = 1, EV_CUT = 2 }; /* request.c's on_event verdicts */

struct relay {
    int committed; /* REQ_RELAY: the first content progress came; else REQ_PRECOMMIT */
    struct keel_outcome outcome;
    char code[64]; /* outcome.code points here */
};

static int relay_event(void *ctx, const char *event, const char *data, size_t len)
{
    struct relay *r = ctx;
    struct keel_chunk_info info;
    keel_chunk_inspect(event, data, len, &info);
    check(info.kind <= KEEL_CHUNK_MALFORMED);
    check(memchr(info.error_code, '\0', sizeof(info.error_code)) != NULL);
    int done = len == 6 && memcmp(data, "[DONE]", 6) == 0;
    check(done == (info.kind == KEEL_CHUNK_DONE));
    if (!done && strcmp(event, "error") == 0)
        check(info.kind == KEEL_CHUNK_ERROR); /* `event: error` is an error whatever its data */
    if (info.kind != KEEL_CHUNK_ERROR)
        check(info.error_code[0] == '\0');
    switch (info.kind) {
    case KEEL_CHUNK_DONE:
    case KEEL_CHUNK_MALFORMED:
        return EV_GO_ON;
    case KEEL_CHUNK_ERROR:
        r->outcome.stream_error = 1;
        snprintf(r->code, sizeof(r->code), "%s", info.error_code);
        r->outcome.code = r->code;
        return r->committed ? EV_CUT : EV_FAIL;
    case KEEL_CHUNK_PROGRESS:
        r->committed = 1;
        break;
    case KEEL_CHUNK_IDLE:
        break;
    }
    return EV_GO_ON;
}

struct verdict {
    enum keel_class cls;
    int committed;    /* the client has a 200 stream: no other target is tried */
    int parse_error;  /* the parser's own error (cap): a split feed may see it elsewhere */
    int stopped_early; /* an event or the framing ended the attempt before the transfer did */
};

static int is_space(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* A non-stream answer or an error (REQ_BUFFER): the body is collected, judged at the end. */
static struct verdict buffered(const struct answer *a, int deadline)
{
    struct verdict v = {0};
    struct relay r = {.outcome.status = a->status};
    int progressed = 0; /* a byte that is not whitespace came (request.c's on_data) */
    for (size_t i = 0; i < a->len && !progressed; i++)
        progressed = !is_space(a->body[i]);
    if (deadline) {
        v.cls = KEEL_CLASS_DEADLINE_EXCEEDED; /* deadline_exceeded() before the end */
    } else if (a->err == keel_err_timeout) {
        r.outcome.transport = keel_err_timeout; /* on_timer: no code is read */
        r.outcome.timeout = progressed ? KEEL_TIMEOUT_STALL : KEEL_TIMEOUT_FIRST_BYTE;
        v.cls = keel_classify(&r.outcome);
    } else {
        r.outcome.transport = a->err;
        if (a->err == NULL && a->status >= 200 && a->status < 300) {
            struct keel_usage usage = {0};
            enum keel_answer_kind k = keel_answer_inspect(a->body, a->len, r.code, sizeof(r.code), &usage);
            check(k <= KEEL_ANSWER_MALFORMED);
            check(memchr(r.code, '\0', sizeof(r.code)) != NULL);
            if (k != KEEL_ANSWER_ERROR)
                check(r.code[0] == '\0');
            r.outcome.empty = k == KEEL_ANSWER_EMPTY;
            r.outcome.malformed = k == KEEL_ANSWER_MALFORMED;
            r.outcome.stream_error = k == KEEL_ANSWER_ERROR;
        } else if (a->err == NULL) {
            keel_error_code(a->body, a->len, r.code, sizeof(r.code));
            check(memchr(r.code, '\0', sizeof(r.code)) != NULL);
        }
        r.outcome.code = r.code[0] ? r.code : NULL;
        v.cls = keel_classify(&r.outcome);
    }
    return v;
}

/* A 200 event stream (REQ_PRECOMMIT, then REQ_RELAY after its first content progress). */
static struct verdict streamed(const struct answer *a, size_t max_line, int pieces, int deadline)
{
    struct verdict v = {0};
    struct relay r = {.outcome.status = a->status};
    struct keel_sse_parser p;
    keel_sse_parser_init(&p, max_line, relay_event, NULL, &r);
    for (size_t off = 0, i = 0; off < a->len; i++) {
        size_t n = a->len - off;
        if (pieces && a->nsplits > 0 && (size_t)a->splits[i % a->nsplits] + 1 < n)
            n = (size_t)a->splits[i % a->nsplits] + 1;
        int rv = keel_sse_parser_feed(&p, a->body + off, n);
        off += n;
        check(rv == 0 || rv == EV_FAIL || rv == EV_CUT || rv == KEEL_SSE_ETOOLONG);
        if (rv == EV_FAIL || rv == KEEL_SSE_ETOOLONG || rv < 0) {
            if (rv != EV_FAIL) {
                r.outcome.transport = keel_err_reset; /* framing keel can't read */
                v.parse_error = 1;
            }
            v.stopped_early = 1;
            if (r.committed)
                rv = EV_CUT;
            else
                goto out_judged; /* end_attempt */
        }
        if (rv == EV_CUT) {
            v.stopped_early = 1;
            goto out_judged; /* cut_stream(keel_classify()) */
        }
    }
    /* the transfer's end */
    if (deadline) {
        v.committed = r.committed;
        v.cls = KEEL_CLASS_DEADLINE_EXCEEDED; /* 504, or the committed stream's error event */
        goto out_release;
    }
    if (a->err == keel_err_timeout) {
        r.outcome.transport = keel_err_timeout;
        r.outcome.timeout = r.committed ? KEEL_TIMEOUT_STALL : KEEL_TIMEOUT_FIRST_BYTE;
        if (r.committed) {
            v.committed = 1;
            v.cls = KEEL_CLASS_STALL_TIMEOUT; /* on_timer cuts a relayed stream as a stall */
            goto out_release;
        }
    } else if (a->err != NULL) {
        r.outcome.transport = a->err;
    } else if (!r.committed) {
        r.outcome.empty = 1; /* ended without content progress */
    }
out_judged:
    v.committed = r.committed;
    /* a committed stream that ended cleanly gets its [DONE]: ok */
    v.cls = r.committed && r.outcome.transport == NULL && !r.outcome.stream_error ? KEEL_CLASS_OK
                                                                                  : keel_classify(&r.outcome);
out_release:
    keel_sse_parser_release(&p);
    check(v.cls != KEEL_CLASS_OK || v.committed); /* success on a stream means content came */
    return v;
}

static struct verdict attempt(const struct answer *a, size_t max_line, int pieces, int deadline)
{
    if (a->status == 0) {
        /* on_done (or on_timer) in REQ_ATTEMPT: no head */
        struct verdict v = {0};
        struct keel_outcome o = {.transport = a->err ? a->err : keel_err_reset};
        if (a->err == keel_err_timeout)
            o.timeout = KEEL_TIMEOUT_FIRST_BYTE;
        v.cls = deadline ? KEEL_CLASS_DEADLINE_EXCEEDED : keel_classify(&o);
        return v;
    }
    /* on_head: SSE is decided by the upstream's content type, not by "stream" */
    if (a->status >= 200 && a->status < 300 && strncmp(a->content_type, "text/event-stream", 17) == 0)
        return streamed(a, max_line, pieces, deadline);
    return buffered(a, deadline);
}

/* classification as DESIGN.md's failure table states it */
static void check_class(const struct answer *a, const struct verdict *v)
{
    enum keel_class c = v->cls;
    check(c < KEEL_CLASS_COUNT && strcmp(keel_class_name(c), "unknown") != 0);
    check(c != KEEL_CLASS_SKIPPED && c != KEEL_CLASS_CLIENT_GONE && c != KEEL_CLASS_INVALID_REQUEST &&
          c != KEEL_CLASS_GATEWAY_BUSY);
    if (c == KEEL_CLASS_DEADLINE_EXCEEDED)
        return;
    check((c == KEEL_CLASS_LOCAL_ERROR) == (a->err == keel_err_local && !v->stopped_early));
    if (c == KEEL_CLASS_LOCAL_ERROR)
        return; /* keel's own failure, whatever the upstream said */
    if (c == KEEL_CLASS_OK)
        check(a->status >= 200 && a->status < 300 && a->err == NULL);
    if (a->err == keel_err_timeout || a->status == 0 || (a->status >= 200 && a->status < 300))
        return;
    /* an explicit status wins over the body (seed 003) */
    int s = a->status;
    if (s == 401 || s == 403)
        check(c == KEEL_CLASS_AUTH);
    else if (s == 402)
        check(c == KEEL_CLASS_QUOTA);
    else if (s == 404)
        check(c == KEEL_CLASS_NOT_FOUND);
    else if (s == 429)
        check(c == KEEL_CLASS_RATE_LIMITED || c == KEEL_CLASS_QUOTA);
    else if (s == 529)
        check(c == KEEL_CLASS_OVERLOADED);
    else if (s >= 500 || s == 408)
        check(c == KEEL_CLASS_SERVER_ERROR || c == KEEL_CLASS_OVERLOADED);
    else if (s == 413)
        check(c == KEEL_CLASS_BAD_REQUEST || c == KEEL_CLASS_CONTEXT_LENGTH);
    else if (s >= 400)
        check(c == KEEL_CLASS_BAD_REQUEST || c == KEEL_CLASS_CONTEXT_LENGTH || c == KEEL_CLASS_QUOTA ||
              c == KEEL_CLASS_NOT_FOUND);
    else
        check(c == KEEL_CLASS_SERVER_ERROR); /* 1xx/3xx: nothing an OpenAI client can use */
}

/* ------------------------------------------------------------------ breakers and router */

struct chain {
    struct keel_route_target route[MAX_TARGETS];
    size_t n;
    struct keel_breaker_params params;
    struct keel_breaker br[MAX_TARGETS];
    int probe_out[MAX_TARGETS]; /* a probe was admitted and is not yet reported or given back */
    uint64_t total_ms;          /* each request's budget */
    size_t max_line;
    uint64_t now;
    uint64_t rng;
};

static uint64_t next_random(struct chain *c)
{
    uint64_t z = (c->rng += 0x9e3779b97f4a7c15ULL); /* splitmix64, as request.c */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void check_breaker(const struct keel_breaker *b, const struct keel_breaker_params *p)
{
    check(b->state == KEEL_BREAKER_CLOSED || b->state == KEEL_BREAKER_HALF_OPEN || b->state == KEEL_BREAKER_OPEN);
    uint64_t rejections = p->rejections ? p->rejections : p->failures;
    if (b->state == KEEL_BREAKER_CLOSED)
        check(b->failures < p->failures && b->rejections < rejections);
    else
        check(b->failures == 0 && b->rejections == 0);
    uint64_t cap = p->max_cooldown_ms > p->cooldown_ms ? p->max_cooldown_ms : p->cooldown_ms;
    check(b->cooldown_ms <= cap);
    check(b->state == KEEL_BREAKER_HALF_OPEN || !b->probing);
}

static enum keel_admit admit(void *ctx, size_t i, uint64_t now)
{
    struct chain *c = ctx;
    check(i < c->n);
    struct keel_breaker *b = &c->br[i];
    enum keel_breaker_state was = b->state;
    enum keel_breaker_change change;
    enum keel_admit a = keel_breaker_admit(b, now, &change);
    check_breaker(b, &c->params);
    switch (a) {
    case KEEL_ADMIT_ALLOW:
        check(b->state == KEEL_BREAKER_CLOSED && now >= b->cool_until && change == KEEL_BREAKER_SAME);
        break;
    case KEEL_ADMIT_PROBE:
        /* exactly one probe out at a time */
        check(b->state == KEEL_BREAKER_HALF_OPEN && b->probing && !c->probe_out[i]);
        check(c->params.probe == KEEL_BREAKER_PROBE_REQUEST); /* background: never a client */
        check(change == (was == KEEL_BREAKER_OPEN ? KEEL_BREAKER_PROBING : KEEL_BREAKER_SAME));
        c->probe_out[i] = 1;
        break;
    case KEEL_ADMIT_SKIP:
        /* opened under probe: background, only keel's own probe (probe.c, not driven here) tests it */
        check(keel_breaker_ready_at(b, now) > now || (b->state == KEEL_BREAKER_HALF_OPEN && b->probing) ||
              (b->state == KEEL_BREAKER_OPEN && b->background));
        check(change == KEEL_BREAKER_SAME);
        break;
    default:
        check(!"admission out of range");
    }
    return a;
}

/* request.c's attempt_over: the class reaches the target's breaker once */
static void report(struct chain *c, size_t i, enum keel_class cls, int probe, uint64_t retry_after_ms)
{
    struct keel_breaker *b = &c->br[i], before = *b;
    enum keel_breaker_change ch = keel_breaker_report(b, &c->params, cls, probe, retry_after_ms, c->now);
    check_breaker(b, &c->params);
    c->probe_out[i] = 0;
    /* the client's own 4xx and keel's local outcomes never count against a target */
    if (cls == KEEL_CLASS_BAD_REQUEST || cls == KEEL_CLASS_CONTEXT_LENGTH || cls == KEEL_CLASS_DEADLINE_EXCEEDED ||
        cls == KEEL_CLASS_LOCAL_ERROR || cls == KEEL_CLASS_RATE_LIMITED || cls == KEEL_CLASS_OK)
        check(!keel_breaker_counts(cls));
    if (!keel_breaker_counts(cls)) {
        check(ch == KEEL_BREAKER_SAME || (ch == KEEL_BREAKER_CLOSED_AGAIN && probe));
        check((b->failures <= before.failures && b->rejections <= before.rejections) ||
              ch == KEEL_BREAKER_CLOSED_AGAIN);
    } else if (before.state == KEEL_BREAKER_CLOSED && ch != KEEL_BREAKER_OPENED) {
        /* a rejection and a failure are counted apart (breaker.h) */
        if (keel_breaker_is_rejection(cls))
            check(b->rejections == before.rejections + 1 && b->failures == before.failures);
        else
            check(b->failures == before.failures + 1 && b->rejections == before.rejections);
    }
    if (ch == KEEL_BREAKER_OPENED)
        check(before.state == KEEL_BREAKER_CLOSED && keel_breaker_counts(cls));
    if (ch == KEEL_BREAKER_OPENED || ch == KEEL_BREAKER_REOPENED)
        check(b->state == KEEL_BREAKER_OPEN && b->open_until >= c->now);
    if (cls == KEEL_CLASS_RATE_LIMITED)
        check(b->cool_until > c->now); /* a 429 cools the target instead */
    if (probe)
        check(b->state != KEEL_BREAKER_HALF_OPEN || !b->probing); /* the probe's turn is settled */
}

/* the router's answer after an attempt on `cur` that ended with cls */
static void check_after(const struct chain *c, const struct keel_router *r, size_t cur, enum keel_class cls,
                        uint64_t retry_after_ms, uint64_t deadline, const struct keel_step *s)
{
    int local = cls == KEEL_CLASS_CLIENT_GONE || cls == KEEL_CLASS_INVALID_REQUEST ||
                cls == KEEL_CLASS_GATEWAY_BUSY || cls == KEEL_CLASS_DEADLINE_EXCEEDED || cls == KEEL_CLASS_LOCAL_ERROR;
    switch (s->kind) {
    case KEEL_STEP_TRY:
        /* forward only: a target failed over from is not tried again in this request */
        check(s->target < c->n && s->target > cur && r->cur == s->target);
        check(cls != KEEL_CLASS_OK && cls != KEEL_CLASS_BAD_REQUEST && !local);
        if (cls == KEEL_CLASS_CONTEXT_LENGTH)
            check(c->route[s->target].context_window > c->route[cur].context_window);
        break;
    case KEEL_STEP_WAIT:
        check(r->cur == cur && c->now + s->wait_ms < deadline);
        if (cls == KEEL_CLASS_RATE_LIMITED)
            check(s->wait_ms == retry_after_ms && retry_after_ms <= c->route[cur].max_wait_ms);
        else
            check((cls == KEEL_CLASS_SERVER_ERROR || cls == KEEL_CLASS_OVERLOADED) &&
                  s->wait_ms <= KEEL_BACKOFF_CAP_MS);
        break;
    case KEEL_STEP_DONE:
        check(cls == KEEL_CLASS_OK && s->target == cur);
        break;
    case KEEL_STEP_RETURN:
        check(cls == KEEL_CLASS_BAD_REQUEST || cls == KEEL_CLASS_CONTEXT_LENGTH ||
              (local && cls != KEEL_CLASS_LOCAL_ERROR));
        check(s->target == cur);
        break;
    case KEEL_STEP_GIVE_UP:
        /* keel's own failure gives up at once with 503, never blaming the chain */
        check((cls == KEEL_CLASS_LOCAL_ERROR) == (s->status == 503 && s->local));
        check(s->status == 502 || (s->status == 429 && r->rate_limited == r->attempts) || s->local);
        break;
    default:
        check(!"step out of range");
    }
    /* the client's own fault is returned as is, never walked down the chain */
    if (cls == KEEL_CLASS_BAD_REQUEST)
        check(s->kind == KEEL_STEP_RETURN);
}

/* One client request: the router walks the chain, each attempt spends one answer. */
static void request(struct chain *c, struct input *in)
{
    struct keel_router r;
    keel_router_init(&r, c->route, c->n, admit, NULL, c);
    uint64_t total_at = c->now + c->total_ms;
    size_t tries = 0;
    struct keel_step s = keel_router_start(&r, c->now);
    check(s.kind == KEEL_STEP_TRY || (s.kind == KEEL_STEP_GIVE_UP && s.status == 503));
    if (verbose && s.kind == KEEL_STEP_GIVE_UP)
        fprintf(stderr, "  every target skipped: 503\n");
    for (;;) {
        if (s.kind == KEEL_STEP_WAIT) {
            c->now += s.wait_ms;
            if (c->now >= total_at)
                return; /* on_timer in REQ_WAIT: 504 */
            size_t cur = r.cur;
            s = keel_router_resume(&r, c->now);
            check((s.kind == KEEL_STEP_TRY && s.target >= cur && s.target < c->n) ||
                  (s.kind == KEEL_STEP_GIVE_UP && (s.status == 502 || s.status == 429)));
            continue;
        }
        if (s.kind != KEEL_STEP_TRY)
            return;
        check(s.target == r.cur && s.target < c->n);
        struct answer a;
        if (c->now >= total_at || !next_answer(in, &a)) {
            /* start_attempt past the deadline (504), or the input is spent: a probe never sent
             * is given back, as finish() does */
            if (s.probe) {
                keel_breaker_release(&c->br[s.target]);
                c->probe_out[s.target] = 0;
            }
            return;
        }
        /* every target: one try, its same-target retries and one Retry-After wait */
        check(++tries <= c->n * (c->route[0].same_target + 2));
        size_t cur = r.cur;
        int deadline = c->now + a.elapsed_ms >= total_at;
        if (a.status >= 200 && a.status < 300 && strncmp(a.content_type, "text/event-stream", 17) == 0)
            sse_whole_vs_split(&a, c->max_line);
        struct verdict v = attempt(&a, c->max_line, 1, deadline);
        struct verdict w = attempt(&a, c->max_line, 0, deadline);
        /* how the bytes were cut into reads changes nothing keel decides */
        if (!v.parse_error && !w.parse_error)
            check(v.cls == w.cls && v.committed == w.committed);
        check_class(&a, &v);
        c->now = deadline ? total_at : c->now + a.elapsed_ms;
        uint64_t retry_after = a.status ? a.retry_after_ms : 0; /* no head, no Retry-After */
        report(c, cur, v.cls, s.probe, retry_after);
        /* the stream is the answer, or the budget is spent: the router is done */
        if (v.committed || deadline) {
            if (verbose)
                fprintf(stderr, "  t=%llu target %zu: status %d -> %s, %s\n", (unsigned long long)c->now, cur,
                        a.status, keel_class_name(v.cls), deadline ? "deadline spent" : "committed stream");
            return;
        }
        s = keel_router_after(&r, v.cls, retry_after, c->now, total_at, next_random(c));
        check_after(c, &r, cur, v.cls, retry_after, total_at, &s);
        if (verbose)
            fprintf(stderr, "  t=%llu target %zu (breaker %s): status %d -> %s -> step %d (target %zu, wait %llu, "
                    "status %d)\n", (unsigned long long)c->now, cur, keel_breaker_state_name(c->br[cur].state),
                    a.status, keel_class_name(v.cls), s.kind, s.target, (unsigned long long)s.wait_ms, s.status);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t backoffs[] = {0, 200, 1000, 30000};
    static const uint64_t max_waits[] = {0, 1000, 5000, 60000};
    static const uint64_t cooldowns[] = {1000, 30000};
    static const uint64_t max_cooldowns[] = {300000, 2000, 500};
    static const uint64_t totals[] = {300000, 5000, 1000, 60000};
    static const uint64_t rejections[] = {0, 1, 2, 10};
    verbose = getenv("KEEL_FUZZ_VERBOSE") != NULL;
    struct input in = {data, size};
    struct chain c = {.rng = size};
    uint8_t g0 = byte(&in), g1 = byte(&in), g2 = byte(&in), g3 = byte(&in);
    c.n = 1 + g0 % MAX_TARGETS;
    for (size_t i = 0; i < c.n; i++) {
        c.route[i] = (struct keel_route_target){
            .context_window = (g3 >> (3 + i)) & 1 ? 8000 * (i + 1) : 0,
            .same_target = (g0 >> 2) % 3,
            .backoff_ms = backoffs[g1 % 4],
            .max_wait_ms = max_waits[(g1 >> 2) % 4],
        };
        keel_breaker_init(&c.br[i]);
    }
    c.params = (struct keel_breaker_params){
        .failures = 1 + (g2 & 3) % 3,
        .rejections = rejections[(g2 >> 5) % 4],
        .cooldown_ms = cooldowns[(g2 >> 2) % 2],
        .max_cooldown_ms = max_cooldowns[(g2 >> 3) % 3],
        .probe = g2 >> 7 ? KEEL_BREAKER_PROBE_BACKGROUND : KEEL_BREAKER_PROBE_REQUEST,
    };
    c.total_ms = totals[g3 % 4];
    c.max_line = (g3 >> 2) & 1 ? 64 : MAX_SSE_LINE;
    static const uint64_t gaps[] = {0, 1000, 30000, 600000};
    for (size_t k = 0; k < MAX_REQUESTS && in.n >= 9; k++) {
        if (verbose)
            fprintf(stderr, "request %zu at t=%llu\n", k, (unsigned long long)c.now);
        request(&c, &in);
        for (size_t i = 0; i < c.n; i++)
            check(!c.probe_out[i]); /* every probe admitted was reported or given back */
        c.now += gaps[k % 4];
    }
    return 0;
}
