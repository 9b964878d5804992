/* server.c - keel_server over h2o 2.2.5 (libuv flavour, HTTP/1.1 only); see server.h.
 * Ownership: a keel_http is malloc'd per request and freed when h2o disposes the request's pool
 * (a shared slot's dispose hook), so it never outlives h2o's request nor dies under the app
 * without on_gone. A server-wide timer peeks at every watched client socket for a FIN, and
 * enforces what h2o 2.2.5 lacks: per-phase read timeouts, a send timeout, a connection cap. */
#include "io/server.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <h2o.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROBE_INTERVAL_MS 100
/* Each probe tick sweeps a fifth of the connections for their limits, so each is looked at
 * every 500 ms: sweeping 5,000 at once blocked the loop for 4-9 ms (bench/hostile). */
#define SWEEP_EVERY 5
/* A client socket's send buffer. Linux grows it to about 3 MB for a loopback or LAN client that
 * stops reading (bench/hostile: 200 such clients held 535 MB of unsent bytes in the kernel, and
 * 1,668 would pass the host's TCP memory limit, slowing every socket on it). 256 KiB still
 * carries a token stream or a large answer at 2.5 MB/s across a 100 ms round trip. */
#define CLIENT_SNDBUF (256 << 10)
#define REFUSED_LINGER_MS 1000 /* a refused connection is read and discarded this long at most */
#define REFUSED_LINGER_MAX 32  /* and at most this many at once: under a flood they'd take the fds */
#define LINGER_MS 2000         /* a 413'd connection's unread body is read and discarded this long at most */

struct conn;
struct lingerer;
static void on_conn_closed(uv_handle_t *handle);
static void linger_start(struct keel_server *s, int fd, uint64_t ms, int refused);
static void linger_end(struct lingerer *l);

struct keel_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    keel_server_request_cb on_request;
    keel_server_refusal_cb refusal; /* NULL: OpenAI's envelope */
    void *app;
    uv_timer_t probe;
    struct keel_http *watched; /* head of the list of requests whose client is probed */
    struct conn *conns;        /* head of the list of every accepted connection not yet closed */
    struct conn *cursor;       /* where the next sweep starts (NULL: at the head) */
    size_t nconns;             /* in conns */
    struct lingerer *lingering; /* head of the list of closed connections still draining */
    size_t refused_draining;    /* of them, refused connections (max_connections) */
    struct keel_server_limits limits;
    struct keel_server_stats stats; /* written by this loop alone, read by the admin's (bump) */
    uint64_t *open_shared;          /* with listeners on other loops: the connections open on all */
    int port;
    int accepting;
};

/* A counter of s->stats: one writer (this loop), read from the admin listener's loop when
 * workers run (keel_server_stats): a relaxed store, no lock, no locked instruction. */
static void bump(uint64_t *counter, int delta)
{
    __atomic_store_n(counter, *counter + (uint64_t)(int64_t)delta, __ATOMIC_RELAXED);
}

/* One accepted client connection. h2o owns its life; this record only watches it for the
 * read timeouts h2o 2.2.5 lacks (its one req_timeout runs from the end of the previous response,
 * idle time included, to the end of the body). Freed in the uv close callback, after h2o. */
struct conn {
    uv_tcp_t tcp;             /* first: the close callback is handed its address */
    struct keel_server *s;
    h2o_socket_t *sock;       /* h2o's; NULL once h2o closed it */
    struct conn *prev, *next; /* in s->conns */
    struct keel_http *h;      /* its request while busy (send_timeout) */
    uint64_t since;           /* accepted, or its last request disposed */
    uint64_t head_at;         /* when the current request's first byte was seen; 0 = none yet */
    uint64_t body_at;         /* when its head was seen whole; 0 = not yet */
    int linger_fd;            /* a dup of its socket kept past h2o's close to drain it; -1 = none */
    unsigned busy : 1;        /* a request is with the app (on_req .. dispose) */
    unsigned served : 1;      /* it had a request before: waiting is keep-alive, not slowloris */
    unsigned dropped : 1;     /* shut down by a limit: h2o closes it on the read error */
};

struct handler {
    h2o_handler_t super;
    struct keel_server *s;
};

struct too_large_filter {
    h2o_filter_t super;
    struct keel_server *s;
};

/* A closed connection whose client may still be sending what keel refused (a body over
 * max_body, a request past max_connections). Closing a socket with unread bytes sends a reset,
 * and the client (the openai SDK among them) may then lose the answer already sent and report a
 * connection error, which it retries by uploading the whole body again. So the socket is kept
 * open on a dup of its descriptor, shut for writing (the client reads the answer, then EOF) and
 * drained until the client closes or the time is up. */
struct lingerer {
    uv_poll_t poll;
    int fd;
    uint64_t until;
    unsigned refused : 1; /* counted in s->refused_draining */
    struct keel_server *s;
    struct lingerer *prev, *next; /* in s->lingering */
};

struct keel_http {
    h2o_generator_t gen; /* h2o passes &gen back to proceed/stop */
    h2o_req_t *req;      /* NULL once h2o disposed the request */
    struct keel_server *s;
    struct conn *conn;   /* the connection it came on (outlives h: h2o disposes requests first) */
    keel_http_written_cb on_written;
    keel_http_gone_cb on_gone;
    void *ctx;
    keel_http_delivered_cb on_delivered;
    void *delivered_ctx;
    struct keel_http *prev, *next; /* in s->watched while `watched` */
    char *out;                     /* the bytes of the write in flight; valid until proceed */
    size_t outcap;
    uint64_t write_at;             /* loop time a write was handed to h2o and not yet taken; 0 = none */
    unsigned watched : 1;
    unsigned started : 1;  /* h2o_start_response was called */
    unsigned writing : 1;  /* an h2o_send awaits proceed */
    unsigned done : 1;     /* the app sent its final bytes, or the client is gone */
    unsigned finish_on_proceed : 1; /* end the response with an error at the next proceed */
};

/* ------------------------------------------------------------------ watch list */

static void watch(struct keel_http *h)
{
    if (h->watched)
        return;
    h->watched = 1;
    h->prev = NULL;
    h->next = h->s->watched;
    if (h->next)
        h->next->prev = h;
    h->s->watched = h;
}

static void unwatch(struct keel_http *h)
{
    if (!h->watched)
        return;
    h->watched = 0;
    if (h->prev)
        h->prev->next = h->next;
    else
        h->s->watched = h->next;
    if (h->next)
        h->next->prev = h->prev;
}

/* ------------------------------------------------------------------ request life */

static void on_dispose(void *slot)
{
    struct keel_http *h = *(struct keel_http **)slot;
    struct keel_server *s = h->s;
    h->req = NULL;
    unwatch(h);
    if (h->conn != NULL) {
        h->conn->h = NULL;
        /* the connection reads its next request (kept alive) or closes */
        h->conn->busy = 0;
        h->conn->served = 1;
        h->conn->since = uv_now(s->loop);
        h->conn->head_at = h->conn->body_at = 0;
    }
    if (!h->done) {
        h->done = 1;
        if (h->on_gone)
            h->on_gone(h->ctx);
    } else if (h->on_delivered != NULL) {
        /* h2o lets go of a request once its last bytes are written or its connection closed;
         * a connection a limit dropped (send_timeout) did not take them */
        h->on_delivered(h->delivered_ctx, h->conn == NULL || !h->conn->dropped);
    }
    free(h->out);
    free(h);
}

static h2o_socket_t *req_socket(h2o_req_t *req)
{
    h2o_conn_t *conn = req->conn;
    return conn->callbacks->get_socket ? conn->callbacks->get_socket(conn) : NULL;
}

static void respond_refusal(struct keel_http *h, int status, const char *code, const char *message);

/* The request's head as the client sent it, read back from h2o's input buffer (it still starts
 * with this request's head when on_req runs: h2o consumes it only after the response). h2o
 * keeps Content-Length and Transfer-Encoding out of req->headers and silently picks one when a
 * request has several (the first Content-Length, or chunked over any length), which lets a
 * request smuggle another past a proxy that picked differently: keel refuses both shapes, and
 * counts every header field against max_headers. Returns 0, or the refusal's status. */
static int check_head(struct keel_server *s, h2o_req_t *req, const char **code, const char **message)
{
    h2o_socket_t *sock = req_socket(req);
    if (sock == NULL || sock->input == NULL)
        return 0;
    const char *p = sock->input->bytes, *end = p + sock->input->size;
    size_t nheaders = 0, ncl = 0, nte = 0;
    const char *cl = NULL;
    size_t cllen = 0;
    const char *line = memchr(p, '\n', (size_t)(end - p)); /* past the request line */
    while (line != NULL && ++line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t len = (size_t)((nl ? nl : end) - line);
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (len == 0)
            break; /* the blank line: the head ends */
        nheaders++;
        const char *colon = memchr(line, ':', len);
        size_t nlen = colon ? (size_t)(colon - line) : 0;
        while (nlen > 0 && (line[nlen - 1] == ' ' || line[nlen - 1] == '\t'))
            nlen--;
        if (nlen == 14 && strncasecmp(line, "content-length", 14) == 0) {
            const char *v = colon + 1, *ve = line + len;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (ncl++ > 0 && ((size_t)(ve - v) != cllen || memcmp(v, cl, cllen) != 0))
                ncl = SIZE_MAX; /* two different lengths */
            cl = v;
            cllen = (size_t)(ve - v);
        } else if (nlen == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
            nte++;
        }
        line = nl;
    }
    size_t head_len = line != NULL && line < end ? (size_t)(line - p) : sock->input->size;
    if ((ncl > 0 && nte > 0) || ncl == SIZE_MAX || nte > 1) {
        bump(&s->stats.ambiguous, 1);
        *code = "ambiguous_request_length";
        *message = ncl > 0 && nte > 0 ? "Content-Length together with Transfer-Encoding: refused (request smuggling)"
                   : nte > 1          ? "more than one Transfer-Encoding: refused (request smuggling)"
                                      : "two different Content-Length values: refused (request smuggling)";
        return 400;
    }
    if ((s->limits.max_headers > 0 && nheaders > s->limits.max_headers) ||
        (s->limits.max_header_size > 0 && head_len > s->limits.max_header_size)) {
        bump(&s->stats.headers_too_large, 1);
        *code = "request_header_fields_too_large";
        *message = nheaders > s->limits.max_headers ? "too many header fields (max_headers)"
                                                    : "the request's head is too large (max_header_size)";
        return 431;
    }
    return 0;
}

/* on_accept hangs the connection's record on h2o's socket (h2o's own server side leaves
 * on_close unused; only its client socket pool sets it) */
static struct conn *conn_of(h2o_req_t *req)
{
    h2o_socket_t *sock = req_socket(req);
    return sock != NULL ? sock->on_close.data : NULL;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct keel_server *s = ((struct handler *)self)->s;
    struct keel_http *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return -1;
    struct keel_http **slot = h2o_mem_alloc_shared(&req->pool, sizeof(*slot), on_dispose);
    *slot = h;
    h->req = req;
    h->s = s;
    h->conn = conn_of(req);
    if (h->conn != NULL) {
        h->conn->busy = 1;
        h->conn->h = h;
    }
    const char *code, *message;
    int status = check_head(s, req, &code, &message);
    if (status != 0) {
        respond_refusal(h, status, code, message);
        return 0;
    }
    s->on_request(s->app, h);
    return 0;
}

/* Ends h2o's side of a request the app has given up on. Calls into h2o last: it may dispose h. */
static void finish_abandoned(struct keel_http *h)
{
    h2o_req_t *req = h->req;
    if (req == NULL)
        return;
    if (!h->started) {
        req->http1_is_persistent = 0;
        req->res.status = 499;
        req->res.reason = "Client Closed Request";
        req->res.content_length = 0;
        h2o_send_inline(req, "", 0);
    } else if (h->writing) {
        h->finish_on_proceed = 1;
    } else {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
    }
}

static void client_gone(struct keel_http *h)
{
    h->done = 1;
    unwatch(h);
    if (h->on_gone)
        h->on_gone(h->ctx);
    finish_abandoned(h);
}

static int socket_fd(struct keel_http *h)
{
    h2o_conn_t *conn = h->req->conn;
    h2o_socket_t *sock = conn->callbacks->get_socket ? conn->callbacks->get_socket(conn) : NULL;
    return sock ? h2o_socket_get_fd(sock) : -1;
}

/* A limit ran out: the socket is shut down both ways, h2o's pending read or write fails and h2o
 * closes the connection through its own paths (no h2o internals are touched). */
static void drop(struct conn *c, uint64_t *counter)
{
    if (c->dropped || c->sock == NULL)
        return;
    c->dropped = 1;
    bump(counter, 1);
    int fd = h2o_socket_get_fd(c->sock);
    if (fd < 0)
        return;
    if (counter == &c->s->stats.send_timeouts) {
        /* a client that stopped reading would never let a FIN past the unsent bytes: the socket
         * would linger in the kernel, orphaned, holding them. A reset frees it at once. */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    shutdown(fd, SHUT_RDWR);
}

/* the head is whole once a blank line ends it (picohttpparser accepts bare LFs too) */
static int head_complete(const char *p, size_t n)
{
    return memmem(p, n, "\n\r\n", 3) != NULL || memmem(p, n, "\n\n", 2) != NULL;
}

/* The read timeouts of a connection between requests: a fresh one must send its whole head
 * within header_timeout of its accept (nothing legitimate connects and waits), a kept-alive one
 * within header_timeout of the head's first byte; then the body within body_timeout. Both are
 * totals, not gaps between reads, so trickling a byte at a time buys nothing. Times are taken
 * at the sweep (every SWEEP_EVERY probes: 500 ms), so a limit fires up to 500 ms late. */
static void check_reading(struct keel_server *s, struct conn *c, uint64_t now)
{
    const struct keel_server_limits *l = &s->limits;
    if (c->busy || c->dropped || c->sock == NULL || c->sock->input == NULL)
        return;
    size_t n = c->sock->input->size;
    if (n == 0 && c->served)
        return; /* kept alive, idle: h2o's req_timeout (idle_timeout) closes it */
    if (c->head_at == 0)
        c->head_at = c->served ? now : c->since;
    if (c->body_at == 0) {
        if (n > 0 && head_complete(c->sock->input->bytes, n))
            c->body_at = now;
        else if (l->header_timeout_ms > 0 && now - c->head_at >= l->header_timeout_ms)
            drop(c, &s->stats.header_timeouts);
        return;
    }
    if (l->body_timeout_ms > 0 && now - c->body_at >= l->body_timeout_ms)
        drop(c, &s->stats.body_timeouts);
}

/* STACK trap 1: a FIN (or an error) on a socket h2o is not reading */
static int peer_closed(struct keel_http *h)
{
    int fd = socket_fd(h);
    if (fd < 0)
        return 0;
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* a client that stopped reading: h2o 2.2.5 has no write timeout, so a response it never takes
 * would hold the request (and its slot under max_inflight) as long as it stays */
static void check_sending(struct keel_server *s, struct conn *c, uint64_t now)
{
    struct keel_http *h = c->h;
    /* a committed stream whose upstream is quiet writes nothing, so a client that left would go
     * unseen until the next write: peeked here, every 500 ms, not every 100 */
    if (h != NULL && h->started && !h->writing && keel_http_check_gone(h))
        return;
    uint64_t limit = s->limits.send_timeout_ms;
    if (h == NULL || limit == 0 || h->write_at == 0 || now - h->write_at < limit)
        return;
    h->write_at = 0;
    drop(c, &s->stats.send_timeouts);
    if (!h->done)
        client_gone(h); /* the app ends the request and cancels its upstream now */
}

static void on_probe(uv_timer_t *t)
{
    struct keel_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    struct keel_http *next;
    for (struct keel_http *h = s->watched; h != NULL; h = next) {
        next = h->next;
        keel_http_check_gone(h);
    }
    /* a slice of the connections; a conn is freed only in its uv close callback: c stays valid */
    struct conn *c = s->cursor ? s->cursor : s->conns;
    for (size_t n = s->nconns / SWEEP_EVERY + 1; c != NULL && n > 0; n--, c = c->next) {
        check_reading(s, c, now);
        check_sending(s, c, now);
    }
    s->cursor = c;
    struct lingerer *lnext;
    for (struct lingerer *l = s->lingering; l != NULL; l = lnext) {
        lnext = l->next;
        if (now >= l->until)
            linger_end(l);
    }
}

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    struct keel_http *h = (struct keel_http *)gen;
    h->writing = 0;
    h->write_at = 0;
    if (h->finish_on_proceed) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    if (!h->done && h->on_written)
        h->on_written(h->ctx);
}

static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    struct keel_http *h = (struct keel_http *)gen;
    h->writing = 0;
    if (!h->done) {
        h->done = 1;
        unwatch(h);
        if (h->on_gone)
            h->on_gone(h->ctx);
    }
}

/* ------------------------------------------------------------------ app interface */

const char *keel_http_method(struct keel_http *h, size_t *len)
{
    *len = h->req->method.len;
    return h->req->method.base;
}

const char *keel_http_path(struct keel_http *h, size_t *len)
{
    *len = h->req->path_normalized.len;
    return h->req->path_normalized.base;
}

const char *keel_http_query(struct keel_http *h, size_t *len)
{
    /* h2o keeps the query's offset in the path as sent (SIZE_MAX: none) */
    if (h->req->query_at == SIZE_MAX) {
        *len = 0;
        return "";
    }
    *len = h->req->path.len - h->req->query_at - 1;
    return h->req->path.base + h->req->query_at + 1;
}

const char *keel_http_body(struct keel_http *h, size_t *len)
{
    *len = h->req->entity.base ? h->req->entity.len : 0;
    return h->req->entity.base ? h->req->entity.base : "";
}

const char *keel_http_header(struct keel_http *h, const char *name, size_t *len)
{
    ssize_t i = h2o_find_header_by_str(&h->req->headers, name, strlen(name), -1);
    if (i < 0)
        return NULL;
    *len = h->req->headers.entries[i].value.len;
    return h->req->headers.entries[i].value.base;
}

size_t keel_http_header_count(struct keel_http *h)
{
    return h->req->headers.size;
}

void keel_http_header_at(struct keel_http *h, size_t i, const char **name, size_t *nlen, const char **value,
                         size_t *vlen)
{
    assert(i < h->req->headers.size);
    const h2o_header_t *e = &h->req->headers.entries[i];
    *name = e->name->base;
    *nlen = e->name->len;
    *value = e->value.base;
    *vlen = e->value.len;
}

int keel_http_check_gone(struct keel_http *h)
{
    if (h->done || h->req == NULL || !peer_closed(h))
        return 0;
    client_gone(h);
    return 1;
}

void keel_http_on_delivered(struct keel_http *h, keel_http_delivered_cb cb, void *ctx)
{
    h->on_delivered = cb;
    h->delivered_ctx = ctx;
}

void keel_http_watch(struct keel_http *h, keel_http_gone_cb on_gone, void *ctx)
{
    h->on_gone = on_gone;
    h->ctx = ctx;
    if (!h->done)
        watch(h);
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}

static void head(struct keel_http *h, int status, const struct keel_header *hdrs, size_t n)
{
    h2o_req_t *req = h->req;
    req->res.status = status;
    req->res.reason = reason(status);
    /* h2o keeps pointers, and a streamed response's headers leave later: copy into the pool */
    for (size_t i = 0; i < n; i++) {
        h2o_iovec_t name = h2o_strdup(&req->pool, hdrs[i].name, SIZE_MAX);
        h2o_iovec_t value = h2o_strdup(&req->pool, hdrs[i].value, SIZE_MAX);
        h2o_add_header_by_str(&req->pool, &req->res.headers, name.base, name.len, 1, NULL, value.base, value.len);
    }
}

void keel_http_respond(struct keel_http *h, int status, const struct keel_header *hdrs, size_t nhdrs,
                       const char *body, size_t len)
{
    assert(!h->done && !h->started);
    h->done = 1;
    h->write_at = uv_now(h->s->loop); /* until h2o disposes the request: the send timeout */
    unwatch(h);
    head(h, status, hdrs, nhdrs);
    h->req->res.content_length = len; /* STACK trap 3: h2o sets none for inline bodies */
    h2o_send_inline(h->req, body, len);
}

/* A refusal's body in the envelope of the protocol the request's path speaks (the app's
 * refusal callback), else OpenAI's: its length in out[0..cap) */
static size_t refusal_body(struct keel_server *s, h2o_req_t *req, int status, const char *code, const char *message,
                           char *out, size_t cap)
{
    size_t n = s->refusal ? s->refusal(s->app, req->path_normalized.base, req->path_normalized.len, status, code,
                                       message, out, cap)
                          : 0;
    if (n > 0)
        return n;
    int w = snprintf(out, cap,
                     "{\"error\":{\"message\":\"%s\",\"type\":\"invalid_request_error\",\"code\":\"%s\","
                     "\"param\":null}}",
                     message, code);
    return w > 0 && (size_t)w < cap ? (size_t)w : 0;
}

/* A request refused by the server itself (a limit or an ambiguous head), in the envelope its
 * client reads, and the connection closed after it: what follows the head can't be trusted. */
static void respond_refusal(struct keel_http *h, int status, const char *code, const char *message)
{
    char body[1024];
    size_t n = refusal_body(h->s, h->req, status, code, message, body, sizeof(body));
    /* a refusal is the request's own doing: asked again it is refused again */
    struct keel_header hdrs[] = {{"content-type", "application/json"}, {"x-should-retry", "false"}};
    h->req->http1_is_persistent = 0;
    keel_http_respond(h, status, hdrs, 2, body, n);
}

void keel_server_set_refusal(struct keel_server *s, keel_server_refusal_cb cb)
{
    s->refusal = cb;
}

void keel_http_start(struct keel_http *h, int status, const struct keel_header *hdrs, size_t nhdrs,
                     keel_http_written_cb on_written)
{
    head(h, status, hdrs, nhdrs);
    h->on_written = on_written;
    h->gen.proceed = on_proceed;
    h->gen.stop = on_stop;
    h->started = 1;
    /* from now on keel writes: a client gone shows as a failed write, and peeking at thousands
     * of long streams every 100 ms cost the loop milliseconds (bench/hostile) */
    unwatch(h);
    h2o_start_response(h->req, &h->gen);
}

int keel_http_write(struct keel_http *h, const char *data, size_t len, int final)
{
    assert(h->started && !h->writing && !h->done);
    if (len > h->outcap) {
        char *n = realloc(h->out, len);
        if (n == NULL) {
            /* out of memory: the response can't go on; the app learns its client is gone (as
             * for any lost client) unless this was its last write anyway */
            h->done = 1;
            h->on_delivered = NULL; /* the caller learns it from the -1, and may be gone after */
            unwatch(h);
            finish_abandoned(h); /* may free h */
            return -1;
        }
        h->out = n;
        h->outcap = len;
    }
    if (len > 0)
        memcpy(h->out, data, len);
    h2o_iovec_t buf = h2o_iovec_init(h->out, len);
    h->writing = 1;
    h->write_at = uv_now(h->s->loop);
    if (final) {
        h->done = 1;
        unwatch(h);
    }
    h2o_send(h->req, &buf, len > 0 ? 1 : 0, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
    return 0;
}

void keel_http_abort(struct keel_http *h)
{
    int fd = socket_fd(h);
    if (fd >= 0) {
        /* the peer sees the connection drop; the close that follows sends a RST */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        shutdown(fd, SHUT_RDWR);
    }
    h->done = 1;
    unwatch(h);
    finish_abandoned(h);
}

/* ------------------------------------------------------------------ h2o's own 413 */

/* h2o refuses a body over max_body itself, before keel's handler runs, with a plain-text 413 on
 * the host's fallback path. This filter on that path gives it the envelope keel's clients parse
 * (refusal_body), and has the connection drained after h2o closes it (struct lingerer). */
#define TOO_LARGE_MAX 1024

struct too_large_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body; /* in the request's pool */
    int sent;
};

static void on_too_large_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t n, h2o_send_state_t state)
{
    struct too_large_ostream *o = (struct too_large_ostream *)self;
    h2o_ostream_send_next(&o->super, req, o->sent ? NULL : &o->body, o->sent ? 0 : 1, state);
    o->sent = 1;
}

static void on_setup_too_large(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    if (req->res.status == 413) {
        struct conn *c = conn_of(req);
        struct too_large_ostream *o = (struct too_large_ostream *)h2o_add_ostream(req, sizeof(*o), slot);
        char *body = h2o_mem_alloc_pool(&req->pool, TOO_LARGE_MAX);
        o->body = h2o_iovec_init(body, refusal_body(((struct too_large_filter *)self)->s, req, 413, "request_too_large",
                                                    "request body is larger than max_body", body, TOO_LARGE_MAX));
        req->res.content_length = o->body.len;
        h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, H2O_STRLIT("application/json"), 1);
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-should-retry"), 0, NULL,
                              H2O_STRLIT("false"));
        o->super.do_send = on_too_large_send;
        o->sent = 0;
        slot = &o->super.next;
        if (c != NULL && c->sock != NULL && c->linger_fd < 0)
            c->linger_fd = fcntl(h2o_socket_get_fd(c->sock), F_DUPFD_CLOEXEC, 3);
    }
    h2o_setup_next_ostream(req, slot);
}

/* ------------------------------------------------------------------ listener */

static void free_handle(uv_handle_t *handle)
{
    free(handle);
}

/* the connection's uv handle is closed (h2o freed its socket first): its record goes */
static void on_conn_closed(uv_handle_t *handle)
{
    struct conn *c = (struct conn *)handle;
    struct keel_server *s = c->s;
    if (s->cursor == c)
        s->cursor = c->next;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    bump(&s->stats.open, -1);
    if (s->open_shared)
        __atomic_sub_fetch(s->open_shared, 1, __ATOMIC_RELAXED);
    if (c->linger_fd >= 0)
        linger_start(s, c->linger_fd, LINGER_MS, 0);
    free(c);
}

static void on_linger_closed(uv_handle_t *handle)
{
    struct lingerer *l = (struct lingerer *)handle;
    close(l->fd);
    free(l);
}

static void linger_end(struct lingerer *l)
{
    struct keel_server *s = l->s;
    if (l->prev)
        l->prev->next = l->next;
    else
        s->lingering = l->next;
    if (l->next)
        l->next->prev = l->prev;
    if (l->refused)
        s->refused_draining--;
    uv_close((uv_handle_t *)&l->poll, on_linger_closed);
}

static void on_linger_poll(uv_poll_t *p, int status, int events)
{
    struct lingerer *l = (struct lingerer *)p;
    char sink[4096];
    ssize_t n;
    while ((n = recv(l->fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
        ;
    if (status < 0 || n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        linger_end(l);
}

static void linger_start(struct keel_server *s, int fd, uint64_t ms, int refused)
{
    struct lingerer *l = calloc(1, sizeof(*l));
    if (l == NULL || uv_poll_init_socket(s->loop, &l->poll, fd) != 0) {
        free(l);
        close(fd);
        return;
    }
    l->fd = fd;
    l->s = s;
    l->until = uv_now(s->loop) + ms;
    l->refused = refused != 0;
    s->refused_draining += l->refused;
    l->next = s->lingering;
    if (l->next)
        l->next->prev = l;
    s->lingering = l;
    shutdown(fd, SHUT_WR); /* the client has its answer: now EOF */
    uv_poll_start(&l->poll, UV_READABLE | UV_DISCONNECT, on_linger_poll);
}

static void on_sock_closed(void *data)
{
    struct conn *c = data;
    c->sock = NULL;
}

#define REFUSED_BODY                                                                                      \
    "{\"error\":{\"message\":\"keel is at max_connections: retry shortly\",\"type\":\"server_error\","     \
    "\"code\":\"gateway_busy\",\"param\":null,\"retry_after\":1}}"

/* Over max_connections: an immediate 503 in the OpenAI envelope, written straight to the new
 * socket (it is empty, the write can't block), then whatever the client sent is drained
 * (struct lingerer) for REFUSED_LINGER_MS, so the 503 is not lost to a reset. The socket was
 * never h2o's; it is closed here. */
static void refuse(struct keel_server *s, uv_tcp_t *tcp)
{
    static _Thread_local char resp[512]; /* each worker's loop refuses on its own */
    static _Thread_local size_t resp_len;
    if (resp_len == 0) {
        int n = snprintf(resp, sizeof(resp),
                         "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
                         "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
                         sizeof(REFUSED_BODY) - 1, REFUSED_BODY);
        assert(n > 0 && (size_t)n < sizeof(resp));
        resp_len = (size_t)n;
    }
    bump(&s->stats.refused, 1);
    uv_buf_t b = uv_buf_init(resp, (unsigned)resp_len);
    uv_try_write((uv_stream_t *)tcp, &b, 1);
    uv_os_fd_t fd;
    /* under a flood, past REFUSED_LINGER_MAX draining, their descriptors matter more */
    if (s->refused_draining < REFUSED_LINGER_MAX && uv_fileno((uv_handle_t *)tcp, &fd) == 0) {
        int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dup >= 0)
            linger_start(s, dup, REFUSED_LINGER_MS, 1);
    }
    uv_close((uv_handle_t *)tcp, free_handle);
}

static void on_accept(uv_stream_t *listener, int status)
{
    struct keel_server *s = listener->data;
    if (status != 0)
        return;
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    uv_tcp_init(s->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, free_handle);
        return;
    }
    bump(&s->stats.accepted, 1);
    uint64_t open = s->open_shared ? __atomic_load_n(s->open_shared, __ATOMIC_RELAXED) : s->stats.open;
    if (s->limits.max_connections > 0 && open >= s->limits.max_connections) {
        refuse(s, &c->tcp); /* frees c: tcp is its first member */
        return;
    }
    c->s = s;
    c->linger_fd = -1;
    c->since = uv_now(s->loop);
    c->next = s->conns;
    if (c->next)
        c->next->prev = c;
    s->conns = c;
    s->nconns++;
    bump(&s->stats.open, 1);
    if (s->open_shared)
        __atomic_add_fetch(s->open_shared, 1, __ATOMIC_RELAXED);
    uv_tcp_nodelay(&c->tcp, 1);
    uv_send_buffer_size((uv_handle_t *)&c->tcp, &(int){CLIENT_SNDBUF});
    c->sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_closed);
    c->sock->on_close.cb = on_sock_closed;
    c->sock->on_close.data = c;
    h2o_accept(&s->accept_ctx, c->sock);
}

/* A listening socket others may share (SO_REUSEPORT: the kernel spreads new connections over
 * every listener on the port), opened into the uv handle; a libuv error code. */
static int bind_shared(uv_tcp_t *listener, const struct sockaddr_storage *addr)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int on = 1;
    socklen_t len = addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        bind(fd, (const struct sockaddr *)addr, len) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    int rv = uv_tcp_open(listener, fd);
    if (rv != 0)
        close(fd);
    return rv;
}

struct keel_server *keel_server_new(uv_loop_t *loop, const char *host, int port, size_t max_body,
                                    keel_server_request_cb on_request, void *app, char *err, size_t errlen)
{
    return keel_server_new_shared(loop, host, port, max_body, on_request, app, NULL, err, errlen);
}

struct keel_server *keel_server_new_shared(uv_loop_t *loop, const char *host, int port, size_t max_body,
                                           keel_server_request_cb on_request, void *app, uint64_t *open_shared,
                                           char *err, size_t errlen)
{
    struct sockaddr_storage addr;
    int rv = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr)
                               : uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (rv != 0) {
        snprintf(err, errlen, "cannot listen on \"%s\": not an IP address", host);
        return NULL;
    }
    struct keel_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->on_request = on_request;
    s->app = app;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->open_shared = open_shared;
    rv = open_shared ? bind_shared(&s->listener, &addr) : uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&s->listener, 1024, on_accept);
    if (rv != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, uv_strerror(rv));
        /* the listener must be closed before s is freed (STYLE O3) */
        uv_close((uv_handle_t *)&s->listener, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        free(s);
        return NULL;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    s->accepting = 1;

    h2o_config_init(&s->config);
    s->config.server_name = h2o_iovec_init(H2O_STRLIT("keel"));
    s->config.http1.upgrade_to_http2 = 0; /* HTTP/1.1 only: Debian's h2o 2.2.5 is old (STACK.md) */
    s->config.max_request_entity_size = max_body; /* STACK trap 5 */
    h2o_hostconf_t *hostconf = h2o_config_register_host(&s->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    struct handler *hd = (struct handler *)h2o_create_handler(pathconf, sizeof(*hd));
    hd->super.on_req = on_req;
    hd->s = s;
    struct too_large_filter *too_large =
        (struct too_large_filter *)h2o_create_filter(&hostconf->fallback_path, sizeof(*too_large));
    too_large->super.on_setup_ostream = on_setup_too_large;
    too_large->s = s;
    h2o_context_init(&s->ctx, loop, &s->config);
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->config.hosts;

    uv_timer_init(loop, &s->probe);
    s->probe.data = s;
    uv_timer_start(&s->probe, on_probe, PROBE_INTERVAL_MS, PROBE_INTERVAL_MS);
    uv_unref((uv_handle_t *)&s->probe);
    return s;
}

int keel_server_port(const struct keel_server *s)
{
    return s->port;
}

uint64_t keel_server_accepted(const struct keel_server *s)
{
    return s->stats.accepted;
}

void keel_server_set_limits(struct keel_server *s, const struct keel_server_limits *l)
{
    s->limits = *l;
    /* h2o's one read timeout runs from the end of a response (or the accept) to the end of the
     * next request's body; keel's own sweep enforces the tighter head and body limits, so h2o's
     * is left as the idle bound of a kept-alive connection */
    if (l->idle_timeout_ms > 0)
        s->ctx.http1.req_timeout.timeout = l->idle_timeout_ms;
}

const struct keel_server_stats *keel_server_stats(const struct keel_server *s)
{
    return &s->stats;
}

void keel_server_stats_add(const struct keel_server *s, struct keel_server_stats *sum)
{
    const uint64_t *from = (const uint64_t *)&s->stats;
    uint64_t *to = (uint64_t *)sum;
    for (size_t i = 0; i < sizeof(s->stats) / sizeof(uint64_t); i++)
        to[i] += __atomic_load_n(&from[i], __ATOMIC_RELAXED);
}

void keel_server_stop_accepting(struct keel_server *s)
{
    if (!s->accepting)
        return;
    s->accepting = 0;
    uv_close((uv_handle_t *)&s->listener, NULL);
    h2o_context_request_shutdown(&s->ctx);
}
