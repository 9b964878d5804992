/* fuzz_request.c - libFuzzer driver for the client request path: an input is the raw bytes a
 * client sends on one connection (any number of HTTP/1.1 requests, or garbage). They reach
 * keel's real server (io/server.c) and request handler (keel_intake_handle) through a
 * socketpair whose one end is handed to the server's listener as if accepted; the other end
 * writes the bytes, half-closes, and reads the answer until keel closes. The models' targets
 * are a loopback port that refuses connections and a fake upstream in the same loop whose
 * canned answers (ok, streams, errors, a cut stream) the URL path picks. Every input must end
 * within a bound with every request slot, attempt and connection given back. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "gateway.h"
#include "io/server.h"
#include "io/upstream.h"
#include "log.h"
#include "managed.h"
#include "intake.h"
#include "state.h"

#define ANSWER_BOUND_MS 10000 /* the config's total is 2 s: an input still open after this hangs */
#define MAX_ANSWER (1u << 20)  /* what the client end keeps of keel's answer */

#define check(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            broken(__LINE__, #cond);                                                               \
    } while (0)

static void broken(int line, const char *what)
{
    fprintf(stderr, "fuzz_request.c:%d: invariant broken: %s\n", line, what);
    abort();
}

static uv_loop_t loop;
static int verbose; /* KEEL_FUZZ_VERBOSE=1: print each answer (to look at a corpus file) */

/* ------------------------------------------------------------------ the fake upstream */

/* Its canned answers, by the first segment of the URL path (each upstream's base_url names
 * one). All keep the connection alive (Content-Length), so curl reuses it across inputs; but
 * "cut", which promises more body than it sends and half-closes: curl reads what came, then
 * sees the stream end early (after keel's commit point). The fake closes its side with a reset
 * once curl closed its own, so no TIME_WAIT piles up over thousands of inputs. */
#define JSON_OK                                                                                     \
    "{\"id\":\"c1\",\"object\":\"chat.completion\",\"model\":\"x\",\"choices\":[{\"index\":0,"          \
    "\"message\":{\"role\":\"assistant\",\"content\":\"hi\"},\"finish_reason\":\"stop\"}],"              \
    "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}"
#define SSE_OK                                                                                      \
    ": keep-alive\n\n"                                                                              \
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n"                       \
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\r\n\r\n"                       \
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\n" \
    "data: [DONE]\n\n"
#define SSE_ERROR "event: error\ndata: {\"error\":{\"code\":\"overloaded_error\",\"message\":\"busy\"}}\n\n"
#define SSE_CUT "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"half\"}}]}\n\n"

struct canned {
    const char *name; /* the path's first segment */
    int status;
    const char *type;
    const char *extra; /* more header lines, each ending in \r\n */
    const char *body;
    int cut; /* promise more than the body, then reset */
};

static const struct canned canned[] = {
    {"ok", 200, "application/json", "", JSON_OK, 0},
    {"sse", 200, "text/event-stream", "", SSE_OK, 0},
    {"sseerr", 200, "text/event-stream", "", SSE_ERROR, 0},
    {"cut", 200, "text/event-stream", "", SSE_CUT, 1},
    {"empty", 200, "application/json", "", "{\"choices\":[]}", 0},
    {"e503", 503, "application/json", "", "{\"error\":{\"message\":\"down\",\"type\":\"server_error\"}}", 0},
    {"e429", 429, "application/json", "Retry-After: 1\r\n", "{\"error\":{\"code\":\"rate_limit_exceeded\"}}", 0},
    {"e400", 400, "application/json", "", "{\"error\":{\"code\":\"invalid_value\",\"message\":\"no\"}}", 0},
    {"ctx", 400, "application/json", "", "{\"error\":{\"code\":\"context_length_exceeded\"}}", 0},
};

struct fake_conn {
    uv_tcp_t tcp; /* first: callbacks get its address */
    char in[1 << 17];
    size_t len;
    int cut; /* it sent a cut answer and half-closed */
};

static uv_tcp_t fake_listener;

static void fake_closed(uv_handle_t *h)
{
    free(h);
}

static void fake_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct fake_conn *c = (struct fake_conn *)h;
    buf->base = c->in + c->len;
    buf->len = sizeof(c->in) - c->len;
}

struct fake_write {
    uv_write_t req;
    char bytes[];
};

static void fake_written(uv_write_t *w, int status)
{
    free(w);
}

static void fake_shut(uv_shutdown_t *sh, int status)
{
    free(sh);
}

static const struct canned *canned_for(const char *path, size_t len)
{
    for (size_t i = 0; i < sizeof(canned) / sizeof(canned[0]); i++) {
        size_t n = strlen(canned[i].name);
        if (len > n + 1 && path[0] == '/' && memcmp(path + 1, canned[i].name, n) == 0 && path[n + 1] == '/')
            return &canned[i];
    }
    return NULL;
}

/* answers every whole request in c->in; 0, or -1 when the connection must go */
static int fake_serve(struct fake_conn *c)
{
    for (;;) {
        char *end = memmem(c->in, c->len, "\r\n\r\n", 4);
        if (end == NULL)
            return c->len < sizeof(c->in) ? 0 : -1;
        size_t head = (size_t)(end - c->in) + 4, body = 0;
        for (char *p = c->in; p < end; p++) {
            if (strncasecmp(p, "\r\ncontent-length:", 17) == 0) {
                body = strtoul(p + 17, NULL, 10);
                break;
            }
        }
        if (body > sizeof(c->in) - head)
            return -1;
        if (c->len < head + body)
            return 0;
        char *sp = memchr(c->in, ' ', head);
        char *sp2 = sp ? memchr(sp + 1, ' ', (size_t)(end - sp - 1)) : NULL;
        const struct canned *k = sp2 ? canned_for(sp + 1, (size_t)(sp2 - sp - 1)) : NULL;
        if (k == NULL)
            return -1;
        size_t blen = strlen(k->body);
        size_t cap = blen + 512;
        struct fake_write *w = malloc(sizeof(*w) + cap);
        if (w == NULL)
            return -1;
        int n = snprintf(w->bytes, cap, "HTTP/1.1 %d X\r\nContent-Type: %s\r\n%sContent-Length: %zu\r\n\r\n%s",
                         k->status, k->type, k->extra, blen + (k->cut ? 100 : 0), k->body);
        uv_buf_t b = uv_buf_init(w->bytes, (unsigned)n);
        if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, fake_written) != 0) {
            free(w);
            return -1;
        }
        memmove(c->in, c->in + head + body, c->len - head - body);
        c->len -= head + body;
        if (k->cut) {
            uv_shutdown_t *sh = malloc(sizeof(*sh));
            if (sh == NULL || uv_shutdown(sh, (uv_stream_t *)&c->tcp, fake_shut) != 0) {
                free(sh);
                return -1;
            }
            c->len = 0;
            return 1; /* nothing more is answered on it */
        }
    }
}

static void fake_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct fake_conn *c = (struct fake_conn *)s;
    if (n == 0)
        return;
    if (n > 0) {
        c->len += (size_t)n;
        if (c->cut) {
            c->len = 0; /* half-closed: whatever comes is dropped */
            return;
        }
        int rv = fake_serve(c);
        if (rv > 0)
            c->cut = 1;
        if (rv >= 0)
            return;
    }
    /* curl closed (or the request was unusable): a reset, so this side keeps no TIME_WAIT */
    if (!uv_is_closing((uv_handle_t *)s) && uv_tcp_close_reset((uv_tcp_t *)s, fake_closed) != 0)
        uv_close((uv_handle_t *)s, fake_closed); /* its shutdown still pending */
}

static void fake_accept(uv_stream_t *listener, int status)
{
    if (status != 0)
        return;
    struct fake_conn *c = malloc(sizeof(*c));
    check(c != NULL);
    c->len = 0;
    c->cut = 0;
    uv_tcp_init(&loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, fake_closed);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, fake_alloc, fake_read);
}

static int tcp_port(uv_tcp_t *t)
{
    struct sockaddr_storage a;
    int len = sizeof(a);
    check(uv_tcp_getsockname(t, (struct sockaddr *)&a, &len) == 0);
    return ntohs(((struct sockaddr_in *)&a)->sin_port);
}

/* ------------------------------------------------------------------ the gateway */

static struct keel_gateway *gw;
static uv_stream_t *listener; /* the api server's, found by its data pointer */

static void find_listener(uv_handle_t *h, void *arg)
{
    if (h->type == UV_TCP && h->data == arg)
        listener = (uv_stream_t *)h;
}

/* the config: every path the request handler can take after parsing, by model alias */
static const char config_fmt[] =
    "listen: 127.0.0.1:0\n"
    "admin_listen: 127.0.0.1:0\n"
    "workers: 1\n"
    "max_body: 64k\n"
    "max_inflight: 8\n"
    "max_memory: 24k\n" /* a body over 8k is refused (held three times): within -max_len */
    "defaults:\n"
    "  timeouts: { connect: 1s, first_byte: 1s, stall: 1s, total: 2s }\n"
    "  retry: { same_target: 1, backoff: 1ms, max_wait: 0ms }\n"
    "upstreams:\n"
    "  - { name: dead, base_url: \"http://127.0.0.1:%d/v1\", api_key: k }\n"
    "  - { name: ok, base_url: \"http://127.0.0.1:%d/ok/v1\" }\n"
    "  - { name: sse, base_url: \"http://127.0.0.1:%d/sse/v1\" }\n"
    "  - { name: sseerr, base_url: \"http://127.0.0.1:%d/sseerr/v1\" }\n"
    "  - { name: cut, base_url: \"http://127.0.0.1:%d/cut/v1\" }\n"
    "  - { name: empty, base_url: \"http://127.0.0.1:%d/empty/v1\" }\n"
    "  - { name: e503, base_url: \"http://127.0.0.1:%d/e503/v1\" }\n"
    "  - { name: e429, base_url: \"http://127.0.0.1:%d/e429/v1\" }\n"
    "  - { name: e400, base_url: \"http://127.0.0.1:%d/e400/v1\" }\n"
    "  - { name: ctx, base_url: \"http://127.0.0.1:%d/ctx/v1\" }\n"
    "models:\n"
    "  - { name: gpt-4o, targets: [{ upstream: ok, model: m1 }] }\n"
    "  - { name: chat, targets: [{ upstream: dead, model: m1 }, { upstream: ok, model: m2 }] }\n"
    "  - { name: stream, targets: [{ upstream: sseerr, model: m1 }, { upstream: sse, model: m2 }] }\n"
    "  - { name: cut, targets: [{ upstream: cut, model: m1 }, { upstream: ok, model: m2 }] }\n"
    "  - { name: bad, targets: [{ upstream: e400, model: m1 }, { upstream: ok, model: m2 }] }\n"
    "  - { name: busy, targets: [{ upstream: e503, model: m1 }, { upstream: e429, model: m2 },\n"
    "                            { upstream: empty, model: m3 }] }\n"
    "  - { name: ctx, targets: [{ upstream: ctx, model: m1, context_window: 8k },\n"
    "                           { upstream: ok, model: m2, context_window: 128k }] }\n";

static int dead_fd = -1; /* bound, never listening: connects to its port are refused at once */

static int dead_port(void)
{
    dead_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    check(dead_fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    check(bind(dead_fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    check(getsockname(dead_fd, (struct sockaddr *)&a, &len) == 0);
    return ntohs(a.sin_port);
}

/* What keel_gateway_run does before it serves, less signals, admin and audit. */
static void setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* a client end closed under a write */
    verbose = getenv("KEEL_FUZZ_VERBOSE") != NULL;
    keel_log_set_level((enum keel_log_level)(KEEL_LOG_ERROR + 1)); /* quiet: thousands of inputs */
    check(uv_loop_init(&loop) == 0);

    uv_tcp_init(&loop, &fake_listener);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    check(uv_tcp_bind(&fake_listener, (struct sockaddr *)&a, 0) == 0);
    check(uv_listen((uv_stream_t *)&fake_listener, 128, fake_accept) == 0);
    int fp = tcp_port(&fake_listener), dp = dead_port();

    char text[sizeof(config_fmt) + 128], err[512];
    int n = snprintf(text, sizeof(text), config_fmt, dp, fp, fp, fp, fp, fp, fp, fp, fp, fp);
    check(n > 0 && (size_t)n < sizeof(text));
    struct keel_config *c = keel_config_parse("fuzz.yaml", text, (size_t)n, NULL, err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "fuzz_request: the driver's config is refused: %s\n", err);
        abort();
    }
    gw = calloc(1, sizeof(*gw));
    check(gw != NULL);
    gw->loop = &loop;
    gw->config = keel_config_hold(c);
    gw->started_ms = uv_now(&loop);
    gw->id_seed = 0x6b65656cULL; /* fixed: an input replays the same */
    gw->rng = gw->id_seed ^ 0x5deece66dULL;
    gw->upstream = keel_upstream_new(&loop, 64);
    check(gw->upstream != NULL);
    keel_events_init(&gw->events, gw->upstream, NULL);
    gw->managed = keel_managed_new(&loop, gw->upstream, &gw->events, "/proc/self/exe");
    check(gw->managed != NULL && keel_managed_bind(gw->managed, c, err, sizeof(err)) == 0);
    if (keel_gateway_listen(gw, c, 64, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_request: cannot start the server: %s\n", err);
        abort();
    }
    gw->nofile = 256; /* the default connection cap from it: (256 - 128) / 2 = 64 */
    keel_gateway_apply(gw, c);
    check(gw->max_connections == 64);
    uv_walk(&loop, find_listener, gw->workers[0].api);
    check(listener != NULL);
}

/* ------------------------------------------------------------------ one input */

struct client {
    uv_pipe_t pipe; /* the client's end of the socketpair */
    char *answer;   /* what keel sent, capped at MAX_ANSWER */
    size_t len;
    int eof;   /* keel closed its end */
    int closed;
};

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char chunk[65536];
    buf->base = chunk;
    buf->len = sizeof(chunk);
}

static void client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct client *c = s->data;
    if (n > 0) {
        size_t keep = c->len + (size_t)n <= MAX_ANSWER ? (size_t)n : MAX_ANSWER - c->len;
        memcpy(c->answer + c->len, buf->base, keep);
        c->len += keep;
    } else if (n < 0) {
        c->eof = 1; /* UV_EOF, or a reset */
        uv_read_stop(s);
    }
}

static void client_closed(uv_handle_t *h)
{
    struct client *c = h->data;
    c->closed = 1;
}

static uv_timer_t bound; /* an input's time limit */
static int expired;

static void on_bound(uv_timer_t *t)
{
    expired = 1;
}

/* Every response keel wrote starts with a status line; keel's own
 * last-resort 500 ("never reached", request.c's finish) must never show. */
static void check_answer(const char *a, size_t len)
{
    check(len == 0 || (len >= 12 && memcmp(a, "HTTP/1.", 7) == 0 && a[8] == ' ' && a[9] >= '1' && a[9] <= '5'));
    /* as the message itself: a client's model name may spell the words, echoed inside another */
    static const char never[] = "\"message\":\"request ended without an answer\"";
    check(memmem(a, len, never, sizeof(never) - 1) == NULL);
}

static size_t open_attempts(void)
{
    size_t n = 0;
    for (size_t i = 0; i < gw->state.ntargets; i++)
        n += gw->state.targets[i]->inflight;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (gw == NULL) {
        setup();
        uv_timer_init(&loop, &bound);
    }
    /* breakers closed, ids and jitter from the same seed: an input replays alike on its own */
    for (size_t i = 0; i < gw->state.ntargets; i++)
        keel_breaker_init(&gw->state.targets[i]->breaker);
    gw->id_next = 0;
    gw->rng = gw->id_seed ^ 0x5deece66dULL;

    int sv[2];
    check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    /* the client's bytes are in the socket before keel reads any: one read may see them all */
    for (size_t off = 0; off < size;) {
        ssize_t w = write(sv[1], data + off, size - off);
        if (w < 0 && errno == EINTR)
            continue;
        check(w > 0); /* a unix socket buffer holds -max_len bytes */
        off += (size_t)w;
    }
    shutdown(sv[1], SHUT_WR); /* the request is all there is */

    /* Hands sv[0] to the server as its listener's next connection, so server.c's own on_accept
     * (caps, records, reading) runs as for a TCP client: libuv's uv_accept takes the
     * listener's accepted_fd. server.h has no way in for a ready socket, and a loopback TCP
     * connection per input would cost more and leave TIME_WAITs behind; these two fields are
     * libuv's unix stream internals (uv/unix.h), unchanged across 1.x. */
    check(listener->accepted_fd == -1);
    listener->accepted_fd = sv[0];
    listener->connection_cb(listener, 0);

    static char answer[MAX_ANSWER];
    static struct client c;
    c = (struct client){.answer = answer};
    check(uv_pipe_init(&loop, &c.pipe, 0) == 0);
    c.pipe.data = &c;
    check(uv_pipe_open(&c.pipe, sv[1]) == 0);
    check(uv_read_start((uv_stream_t *)&c.pipe, client_alloc, client_read) == 0);

    expired = 0;
    uv_timer_start(&bound, on_bound, ANSWER_BOUND_MS, 0);
    while (!c.eof && !expired)
        uv_run(&loop, UV_RUN_ONCE);
    if (verbose)
        fprintf(stderr, "---- answer (%zu bytes)\n%.*s\n----\n", c.len, (int)c.len, c.answer);
    check(c.eof); /* keel answered and closed, or closed, within the bound */
    check_answer(c.answer, c.len);

    /* the client leaves; keel's side of the connection and every request on it must end */
    uv_close((uv_handle_t *)&c.pipe, client_closed);
    expired = 0;
    uv_timer_start(&bound, on_bound, ANSWER_BOUND_MS, 0);
    while ((!c.closed || gw->inflight > 0 || keel_server_stats(gw->workers[0].api)->open > 0) && !expired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&bound);
    check(c.closed);
    check(gw->inflight == 0);                      /* no request slot held */
    check(keel_server_stats(gw->workers[0].api)->open == 0); /* nor a connection */
    check(open_attempts() == 0);                   /* nor an attempt counted in flight */
    check(gw->mem_held == 0);                      /* nor memory charged against max_memory */
    return 0;
}
