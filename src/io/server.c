/* server.c - keel_server: keel's own HTTP/1.1 server over libuv streams; see server.h.
 *
 * Why not h2o any more (README "Performance"): h2o's libuv binding stops reading a connection
 * while a request is answered and starts again after, two epoll_ctl calls per request (a third
 * of keel's syscalls), and holds an 8 KiB input buffer and a 4 KiB pool per connection (13 KB of
 * a stream's 16). Here a connection is read for its whole life: the client's FIN or reset is
 * seen the moment it comes, with no peeking timer; a request's bytes are read into one buffer
 * per loop and copied out once, to the request that owns them; an idle or streaming connection
 * holds no input buffer at all.
 *
 * Ownership: a keel_http is malloc'd when its request is whole, holds the request's bytes, and
 * is freed once the app is done with it (final bytes sent, or on_gone told) and no write of its
 * is in flight. A connection is freed in its uv close callback. */
#include "io/server.h"

#include "core/http1.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define SWEEP_INTERVAL_MS 100
/* Each sweep tick looks at a fifth of the connections for their limits, so each is looked at
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
#define READ_SLAB (64u << 10)  /* one per loop: what a read lands in before it is a request's */
#define PIPELINE_MAX (64u << 10) /* bytes a client may send ahead while its request is answered */
#define HEADERS_MAX 100        /* header fields a head may carry at all (max_headers is at most this) */
#define IDLE_DEFAULT_MS 10000  /* a kept-alive connection's idle limit until limits are set */

struct conn;
struct lingerer;
static void linger_start(struct keel_server *s, int fd, uint64_t ms, int refused);
static void linger_end(struct lingerer *l);

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

struct keel_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    keel_server_request_cb on_request;
    keel_server_refusal_cb refusal; /* NULL: OpenAI's envelope */
    void *app;
    size_t max_body;
    char *slab;                /* READ_SLAB bytes, lent to the read of a connection holding none */
    int slab_lent;
    uv_timer_t sweep;
    uv_check_t check;          /* tells the writes done at once (s->completed) */
    uv_idle_t idle;            /* active while any is waiting: the loop does not block first */
    struct keel_http *completed;
    struct conn *conns;        /* every accepted connection not yet closed */
    struct conn *cursor;       /* where the next sweep starts (NULL: at the head) */
    size_t nconns;
    struct lingerer *lingering; /* closed connections still draining */
    size_t refused_draining;    /* of them, refused connections (max_connections) */
    struct keel_server_limits limits;
    struct keel_server_stats stats; /* written by this loop alone, read by the admin's (bump) */
    uint64_t *open_shared;          /* with listeners on other loops: the connections open on all */
    int port;
    int accepting;
};

/* A counter of s->stats: one writer (this loop), read from the admin listener's loop when
 * workers run (keel_server_stats_add): a relaxed store, no lock, no locked instruction. */
static void bump(uint64_t *counter, int delta)
{
    __atomic_store_n(counter, *counter + (uint64_t)(int64_t)delta, __ATOMIC_RELAXED);
}

enum conn_state {
    C_HEAD, /* reading a request's head */
    C_BODY, /* reading its body */
    C_BUSY, /* the request is with the app, or its answer is being written */
};


struct conn {
    uv_tcp_t tcp;             /* first: the close callback is handed its address */
    struct keel_server *s;
    struct conn *prev, *next; /* in s->conns */
    char *in;                 /* bytes read and not yet a request's (malloc'd; NULL when none) */
    size_t len, cap;
    size_t scanned;           /* C_HEAD: bytes of `in` known not to end the head */
    size_t head_len;          /* C_BODY: the head's bytes at the start of `in` */
    uint64_t body_len;        /* C_BODY, by Content-Length */
    struct keel_http1_chunked ch;        /* C_BODY, chunked */
    struct keel_http *h;      /* C_BUSY: the request */
    uint64_t since;           /* accepted, or its last answer written */
    uint64_t head_at;         /* the head's clock: accept, or a kept-alive request's first byte */
    uint64_t body_at;         /* when the head was whole */
    int linger_fd;            /* a dup of its socket kept past the close to drain it; -1 = none */
    unsigned state : 2;
    unsigned chunked_body : 1;
    unsigned served : 1;      /* it had a request before: waiting is keep-alive, not slowloris */
    unsigned keep : 1;        /* the request being read or answered lets the connection live on */
    unsigned reading : 1;     /* uv_read_start is in force */
    unsigned closing : 1;
};


struct keel_http {
    struct keel_server *s;
    struct conn *c;            /* NULL once its connection closed */
    char *raw;                 /* the request's head and body (body decoded), owned */
    const char *method, *path, *query, *body;
    size_t mlen, plen, qlen, blen;
    struct keel_http1_field *hdrs;          /* [nhdrs], pointing into raw */
    size_t nhdrs;
    keel_http_written_cb on_written;
    keel_http_gone_cb on_gone;
    void *ctx;
    keel_http_delivered_cb on_delivered;
    void *delivered_ctx;
    uv_write_t wr;
    char *out;                 /* the bytes of the write in flight */
    size_t outcap;
    char *pending_head;        /* keel_http_start's head, sent with the first write */
    size_t pending_len;
    uint64_t write_at;         /* loop time of the write in flight; 0 = none */
    unsigned http10 : 1;       /* an HTTP/1.0 client: no chunked framing, the close ends a stream */
    unsigned head_only : 1;    /* HEAD: the answer's head, never its body */
    unsigned started : 1;
    unsigned writing : 1;      /* a write is in flight */
    unsigned done : 1;         /* the app sent its final bytes, or was told the client is gone */
    unsigned final_sent : 1;   /* the final bytes were handed to the socket */
    unsigned head_failed : 1;  /* keel_http_start's head could not be built (out of memory) */
    int wstatus;               /* a write done at once: its status, till it is told */
    struct keel_http *done_next; /* in s->completed */
};

/* ------------------------------------------------------------------ requests */

static void conn_close(struct conn *c);
static void conn_next(struct conn *c);
static void write_out(struct keel_http *h, size_t len, int final);

static void http_free(struct keel_http *h)
{
    free(h->raw);
    free(h->out);
    free(h->pending_head);
    free(h);
}

/* h goes once the app is done with it and no write of its is in flight */
static void http_release(struct keel_http *h)
{
    if (h->done && !h->writing)
        http_free(h);
}

/* the client left before the app's final bytes: the app is told, once */
static void client_gone(struct keel_http *h)
{
    if (h->done)
        return;
    h->done = 1;
    if (h->on_gone)
        h->on_gone(h->ctx);
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
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}

/* the response's head into a new buffer with room for `extra` bytes after it: its length in *n */
static char *build_head(struct keel_http *h, int status, const struct keel_header *hdrs, size_t nhdrs,
                        const char *framing, size_t extra, size_t *n)
{
    int keep = h->c != NULL && h->c->keep && h->s->accepting;
    /* the status line (at most 46 bytes), "connection: close", the blank line: within 128 */
    size_t cap = 128 + strlen(framing) + extra;
    for (size_t i = 0; i < nhdrs; i++)
        cap += strlen(hdrs[i].name) + strlen(hdrs[i].value) + 4;
    char *b = malloc(cap);
    if (b == NULL)
        return NULL;
    size_t w = (size_t)snprintf(b, cap, "HTTP/1.1 %d %s\r\n", status, reason(status));
    for (size_t i = 0; i < nhdrs; i++) {
        size_t nl = strlen(hdrs[i].name), vl = strlen(hdrs[i].value);
        memcpy(b + w, hdrs[i].name, nl);
        w += nl;
        memcpy(b + w, ": ", 2);
        w += 2;
        memcpy(b + w, hdrs[i].value, vl);
        w += vl;
        memcpy(b + w, "\r\n", 2);
        w += 2;
    }
    w += (size_t)snprintf(b + w, cap - w, "%s%s\r\n", framing, keep ? "" : "connection: close\r\n");
    assert(w + extra <= cap);
    if (!keep && h->c != NULL)
        h->c->keep = 0;
    *n = w;
    return b;
}

/* A write of h's is over (status 0: all its bytes were taken): the app hears it, and after an
 * answer's final bytes the connection reads its next request. Always from the loop, never from
 * inside the app's own call (write_out defers it). */
static void write_done(struct keel_http *h, int status)
{
    struct conn *c = h->c;
    h->writing = 0;
    h->write_at = 0;
    if (h->final_sent) {
        if (h->on_delivered != NULL)
            h->on_delivered(h->delivered_ctx, status == 0);
        if (c != NULL && c->h == h) {
            c->h = NULL;
            h->c = NULL;
            if (status == 0)
                conn_next(c);
            else
                conn_close(c);
        }
        http_free(h);
        return;
    }
    if (status != 0) {
        if (c != NULL && c->h == h) {
            conn_close(c); /* tells the app, and lets go of h */
            return;
        }
        client_gone(h);
        http_release(h);
        return;
    }
    if (!h->done && h->on_written)
        h->on_written(h->ctx);
    else
        http_release(h);
}

static void on_write(uv_write_t *wr, int status)
{
    write_done(wr->data, status);
}

static void on_idle(uv_idle_t *t)
{
    (void)t;
}

/* writes done at once wait here for the loop's check phase (the same turn of the loop) */
static void defer_done(struct keel_http *h, int status)
{
    struct keel_server *s = h->s;
    h->wstatus = status;
    h->done_next = s->completed;
    s->completed = h;
    uv_idle_start(&s->idle, on_idle); /* an active idle handle keeps the loop from blocking first */
}

/* Tells the writes done at once: from the loop's check phase, and before the server's next
 * event (a read, an accept), so keel learns an answer went out (and records it) as soon as
 * it can after the client may have seen it. */
static void drain(struct keel_server *s)
{
    while (s->completed != NULL) {
        struct keel_http *h = s->completed;
        s->completed = h->done_next;
        write_done(h, h->wstatus);
    }
    uv_idle_stop(&s->idle);
}

static void on_check(uv_check_t *t)
{
    drain(t->data);
}

/* Hands h->out[0..len) to the socket; final: the answer ends with it. Tried at once: the usual
 * answer leaves in this one write(2), and its completion is told from the loop. Only what the
 * socket does not take goes through uv_write (libuv re-arms a watcher per uv_write, an
 * epoll_ctl per answer). */
static void write_out(struct keel_http *h, size_t len, int final)
{
    assert(!h->writing);
    if (final)
        h->final_sent = 1;
    h->writing = 1;
    if (h->c == NULL || h->c->closing) {
        defer_done(h, UV_ECANCELED); /* the client is gone already: nothing is written */
        return;
    }
    h->write_at = uv_now(h->s->loop);
    uv_stream_t *stream = (uv_stream_t *)&h->c->tcp;
    uv_buf_t b = uv_buf_init(h->out, (unsigned)len);
    int n = len > 0 ? uv_try_write(stream, &b, 1) : 0;
    if (n == (int)len || (n < 0 && n != UV_EAGAIN)) {
        defer_done(h, n < 0 ? n : 0);
        return;
    }
    size_t off = n > 0 ? (size_t)n : 0;
    b = uv_buf_init(h->out + off, (unsigned)(len - off));
    h->wr.data = h;
    int rv = uv_write(&h->wr, stream, &b, 1, on_write);
    if (rv != 0)
        defer_done(h, rv);
}

/* A new request, whole: its bytes in[0..n) become its own (the head re-read in place). */
static struct keel_http *http_new(struct keel_server *s, struct conn *c, char *raw, size_t head_len, size_t body_off,
                                  size_t body_len)
{
    struct keel_http1_head hd;
    struct keel_http1_field tmp[HEADERS_MAX];
    if (keel_http1_parse_head(raw, head_len, &hd, tmp, HEADERS_MAX) != 0)
        return NULL; /* it parsed once already */
    struct keel_http *h = calloc(1, sizeof(*h) + hd.nfields * sizeof(struct keel_http1_field));
    if (h == NULL)
        return NULL;
    h->s = s;
    h->c = c;
    h->raw = raw;
    h->hdrs = (struct keel_http1_field *)(h + 1);
    memcpy(h->hdrs, tmp, hd.nfields * sizeof(struct keel_http1_field));
    h->nhdrs = hd.nfields;
    h->method = hd.method;
    h->mlen = hd.mlen;
    char *t = (char *)hd.target, *q = memchr(t, '?', hd.tlen);
    size_t plen = q ? (size_t)(q - t) : hd.tlen;
    h->query = q ? q + 1 : "";
    h->qlen = q ? hd.tlen - plen - 1 : 0;
    h->path = t;
    h->plen = keel_http1_normalize_path(t, plen);
    h->body = raw + body_off;
    h->blen = body_len;
    h->http10 = hd.minor == 0;
    h->head_only = hd.mlen == 4 && memcmp(hd.method, "HEAD", 4) == 0;
    return h;
}

/* A refusal's body in the envelope of the protocol the request's path speaks (the app's
 * refusal callback), else OpenAI's: its length in out[0..cap) */
static size_t refusal_body(struct keel_server *s, const char *path, size_t plen, int status, const char *code,
                           const char *message, char *out, size_t cap)
{
    size_t n = s->refusal ? s->refusal(s->app, path, plen, status, code, message, out, cap) : 0;
    if (n > 0)
        return n;
    int w = snprintf(out, cap,
                     "{\"error\":{\"message\":\"%s\",\"type\":\"invalid_request_error\",\"code\":\"%s\","
                     "\"param\":null}}",
                     message, code);
    return w > 0 && (size_t)w < cap ? (size_t)w : 0;
}

/* A request refused by the server itself (a limit, a head it can't trust), in the envelope its
 * client reads, and the connection closed after it: what follows the head can't be trusted.
 * path: the request's, when its head could be read (the envelope follows it). */
static void refuse_request(struct conn *c, int status, const char *code, const char *message, const char *path,
                           size_t plen)
{
    struct keel_server *s = c->s;
    struct keel_http *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        conn_close(c);
        return;
    }
    h->s = s;
    h->c = c;
    h->method = h->path = h->query = h->body = "";
    c->h = h;
    c->state = C_BUSY;
    c->keep = 0;
    char body[1024];
    size_t n = refusal_body(s, path ? path : "/", path ? plen : 1, status, code, message, body, sizeof(body));
    /* a refusal is the request's own doing: asked again it is refused again */
    struct keel_header hdrs[] = {{"content-type", "application/json"}, {"x-should-retry", "false"}};
    keel_http_respond(h, status, hdrs, 2, body, n);
}

/* ------------------------------------------------------------------ connections */

static void free_handle(uv_handle_t *handle)
{
    free(handle);
}

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
    free(c->in);
    free(c);
}

/* The connection closes: a request the app still has hears that its client is gone (a write in
 * flight is cancelled by the close and lets go of it). */
static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    struct keel_http *h = c->h;
    c->h = NULL;
    if (h != NULL) {
        h->c = NULL;
        client_gone(h);    /* the app writes nothing more */
        http_release(h);   /* else the write in flight, cancelled by the close, lets go of it */
    }
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* A limit ran out (read or send timeout): counted, and the connection closed; a send timeout's
 * with a reset: a client that stopped reading would never let a FIN past the unsent bytes, and
 * the socket would linger in the kernel, orphaned, holding them. */
static void drop(struct conn *c, uint64_t *counter)
{
    bump(counter, 1);
    if (counter == &c->s->stats.send_timeouts) {
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
    }
    conn_close(c);
}

/* room for n more bytes of input; -1 when out of memory */
static int reserve(struct conn *c, size_t n)
{
    if (c->cap - c->len >= n)
        return 0;
    size_t cap = c->cap ? c->cap : 4096;
    while (cap - c->len < n)
        cap *= 2;
    char *p = realloc(c->in, cap);
    if (p == NULL)
        return -1;
    c->in = p;
    c->cap = cap;
    return 0;
}

/* the bytes after a whole request stay the connection's: in[0..len) becomes in[used..len) */
static void keep_rest(struct conn *c, char *in, size_t len, size_t used)
{
    c->in = NULL;
    c->len = c->cap = 0;
    if (used < len && reserve(c, len - used) == 0) {
        memcpy(c->in, in + used, len - used);
        c->len = len - used;
    }
}

static void start_reading(struct conn *c);

/* The request in c->in is whole (its head then body_len bytes of body at body_off): it is handed
 * to the app with its own copy of those bytes. */
static void dispatch(struct conn *c, size_t head_len, size_t body_off, size_t body_len, size_t used)
{
    struct keel_server *s = c->s;
    char *raw;
    if (used == c->len) { /* the usual case: nothing follows; the bytes become the request's */
        raw = c->in;
        c->in = NULL;
        c->len = c->cap = 0;
    } else {
        raw = malloc(body_off + body_len);
        if (raw == NULL) {
            conn_close(c);
            return;
        }
        memcpy(raw, c->in, body_off + body_len);
        char *in = c->in;
        keep_rest(c, in, c->len, used);
        free(in);
    }
    struct keel_http *h = http_new(s, c, raw, head_len, body_off, body_len);
    if (h == NULL) {
        free(raw);
        conn_close(c);
        return;
    }
    c->h = h;
    c->state = C_BUSY;
    s->on_request(s->app, h);
}

static void head_refused(struct conn *c, int status, const char *code, const char *message, uint64_t *counter)
{
    if (counter != NULL)
        bump(counter, 1);
    /* the request line, when there is one, says which protocol's envelope the client reads */
    const char *path = NULL;
    size_t plen = 0;
    const char *sp = c->len ? memchr(c->in, ' ', c->len < 1024 ? c->len : 1024) : NULL;
    if (sp != NULL) {
        const char *e = sp + 1;
        while (e < c->in + c->len && *e != ' ' && *e != '?' && *e != '\r' && *e != '\n')
            e++;
        path = sp + 1;
        plen = (size_t)(e - path);
    }
    char p[256];
    if (plen >= sizeof(p))
        plen = sizeof(p) - 1;
    if (path)
        memcpy(p, path, plen);
    refuse_request(c, status, code, message, path ? p : NULL, plen);
}

/* The head is whole (c->in[0..head_len)): what frames its body, and whether it may be read. */
static void head_done(struct conn *c, size_t head_len)
{
    struct keel_server *s = c->s;
    const struct keel_server_limits *l = &s->limits;
    struct keel_http1_head hd;
    struct keel_http1_field hdrs[HEADERS_MAX];
    int rv = keel_http1_parse_head(c->in, head_len, &hd, hdrs, HEADERS_MAX);
    if (rv == -1) {
        head_refused(c, 400, "invalid_request", "the request's head is not HTTP/1.1", NULL);
        return;
    }
    if (rv == -2 || (l->max_headers > 0 && hd.nfields > l->max_headers) ||
        (l->max_header_size > 0 && head_len > l->max_header_size)) {
        head_refused(c, 431, "request_header_fields_too_large",
                     rv == -2 || hd.nfields > l->max_headers ? "too many header fields (max_headers)"
                                                           : "the request's head is too large (max_header_size)",
                     &s->stats.headers_too_large);
        return;
    }
    /* Content-Length and Transfer-Encoding: both, two different lengths, or two codings let a
     * request smuggle another past a proxy that picked differently; keel refuses them all */
    size_t ncl = 0, nte = 0;
    const struct keel_http1_field *cl = NULL, *te = NULL;
    int keep = hd.minor == 1, expect = 0;
    for (size_t i = 0; i < hd.nfields; i++) {
        const struct keel_http1_field *x = &hdrs[i];
        if (keel_http1_is(x, "content-length")) {
            if (ncl++ > 0 && (x->vlen != cl->vlen || memcmp(x->value, cl->value, cl->vlen) != 0))
                ncl = SIZE_MAX;
            cl = x;
        } else if (keel_http1_is(x, "transfer-encoding")) {
            nte++;
            te = x;
        } else if (keel_http1_is(x, "connection")) {
            if (keel_http1_has_token(x->value, x->vlen, "close"))
                keep = 0;
            else if (keel_http1_has_token(x->value, x->vlen, "keep-alive") && hd.minor == 0)
                keep = 0; /* an HTTP/1.0 client's keep-alive: answered, then closed (simpler, rare) */
        } else if (keel_http1_is(x, "expect")) {
            expect = keel_http1_has_token(x->value, x->vlen, "100-continue");
        }
    }
    if ((ncl > 0 && nte > 0) || ncl == SIZE_MAX || nte > 1) {
        head_refused(c, 400, "ambiguous_request_length",
                     ncl > 0 && nte > 0 ? "Content-Length together with Transfer-Encoding: refused (request smuggling)"
                     : nte > 1          ? "more than one Transfer-Encoding: refused (request smuggling)"
                                        : "two different Content-Length values: refused (request smuggling)",
                     &s->stats.ambiguous);
        return;
    }
    uint64_t length = 0;
    if (te != NULL && !(te->vlen == 7 && strncasecmp(te->value, "chunked", 7) == 0)) {
        head_refused(c, 400, "invalid_request", "Transfer-Encoding other than chunked", NULL);
        return;
    }
    if (cl != NULL) {
        if (cl->vlen == 0 || cl->vlen > 19) {
            head_refused(c, 400, "invalid_request", "Content-Length is not a number", NULL);
            return;
        }
        for (size_t i = 0; i < cl->vlen; i++) {
            if (cl->value[i] < '0' || cl->value[i] > '9') {
                head_refused(c, 400, "invalid_request", "Content-Length is not a number", NULL);
                return;
            }
            length = length * 10 + (uint64_t)(cl->value[i] - '0');
        }
    }
    c->keep = keep;
    c->head_len = head_len;
    c->chunked_body = te != NULL;
    c->body_len = length;
    c->ch = (struct keel_http1_chunked){.base = head_len, .raw = head_len, .dst = head_len};
    c->state = C_BODY;
    c->body_at = uv_now(s->loop);
    if (length > s->max_body) {
        head_refused(c, 413, "request_too_large", "request body is larger than max_body", NULL);
        return;
    }
    if (expect && (length > 0 || te != NULL) && c->len == head_len) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_buf_t b = uv_buf_init((char *)cont, sizeof(cont) - 1);
        uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
}

/* the head ends at the first empty line: its length, or 0 while it has not come */
static size_t head_end(struct conn *c)
{
    size_t from = c->scanned > 3 ? c->scanned - 3 : 0;
    for (const char *p = c->in + from, *e = c->in + c->len; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++) {
        size_t at = (size_t)(p - c->in);
        if (at + 1 < c->len && c->in[at + 1] == '\n')
            return at + 2;
        if (at + 2 < c->len && c->in[at + 1] == '\r' && c->in[at + 2] == '\n')
            return at + 3;
    }
    c->scanned = c->len;
    return 0;
}

/* what the bytes read so far make of the connection: a head, a body, a request */
static void advance(struct conn *c)
{
    struct keel_server *s = c->s;
    while (!c->closing && c->state != C_BUSY && c->len > 0) {
        if (c->state == C_HEAD) {
            /* leading empty lines (a client's stray CRLF after a body) are not a head */
            size_t skip = 0;
            while (skip < c->len && (c->in[skip] == '\r' || c->in[skip] == '\n'))
                skip++;
            if (skip > 0) {
                memmove(c->in, c->in + skip, c->len - skip);
                c->len -= skip;
                c->scanned = 0;
                if (c->len == 0)
                    return;
            }
            size_t end = head_end(c);
            if (end == 0) {
                size_t max = s->limits.max_header_size ? s->limits.max_header_size : 400000;
                if (c->len > max)
                    head_refused(c, 431, "request_header_fields_too_large",
                                 "the request's head is too large (max_header_size)", &s->stats.headers_too_large);
                return;
            }
            head_done(c, end);
            continue;
        }
        if (!c->chunked_body) {
            if (c->len - c->head_len < c->body_len)
                return;
            dispatch(c, c->head_len, c->head_len, (size_t)c->body_len, c->head_len + (size_t)c->body_len);
            return;
        }
        int rv = keel_http1_dechunk(&c->ch, c->in, c->len, s->max_body);
        if (rv == 0)
            return;
        if (rv < 0) {
            if (rv == -2)
                head_refused(c, 413, "request_too_large", "request body is larger than max_body", NULL);
            else
                head_refused(c, 400, "invalid_request", "malformed chunked body", NULL);
            return;
        }
        /* decoded in place: the body is in[head_len..dst), the request's bytes end at raw */
        size_t used = c->ch.raw;
        dispatch(c, c->head_len, c->head_len, c->ch.dst - c->head_len, used);
        return;
    }
}

/* The answer is written whole: the connection reads its next request, or closes. */
static void conn_next(struct conn *c)
{
    struct keel_server *s = c->s;
    c->state = C_HEAD;
    c->served = 1;
    c->since = uv_now(s->loop);
    c->head_at = c->body_at = 0;
    c->scanned = 0;
    if (!c->keep || !s->accepting) {
        conn_close(c);
        return;
    }
    if (c->len > 0)
        c->head_at = c->since;
    start_reading(c);
    advance(c);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct conn *c = (struct conn *)handle;
    struct keel_server *s = c->s;
    if (c->len == 0 && !s->slab_lent) {
        s->slab_lent = 1; /* the common case: a whole request in one read, copied once, to it */
        *b = uv_buf_init(s->slab, READ_SLAB);
        return;
    }
    if (reserve(c, 16384) != 0) {
        *b = uv_buf_init(NULL, 0);
        return;
    }
    *b = uv_buf_init(c->in + c->len, (unsigned)(c->cap - c->len));
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = (struct conn *)stream;
    struct keel_server *s = c->s;
    int slab = b->base == s->slab;
    if (s->completed != NULL)
        drain(s);
    if (n <= 0) {
        if (slab)
            s->slab_lent = 0;
        if (n == 0)
            return;
        /* EOF or an error: the client is gone (a request the app has is told so) */
        conn_close(c);
        return;
    }
    if (slab) {
        s->slab_lent = 0;
        if (reserve(c, (size_t)n) != 0) {
            conn_close(c);
            return;
        }
        memcpy(c->in + c->len, b->base, (size_t)n);
    }
    if (c->len == 0 && c->state == C_HEAD && c->served)
        c->head_at = uv_now(s->loop); /* a kept-alive request's first byte */
    c->len += (size_t)n;
    if (c->state == C_BUSY) {
        /* a client may send ahead; past PIPELINE_MAX it waits (its FIN is then seen late) */
        if (c->len > PIPELINE_MAX && c->reading) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = 0;
        }
        return;
    }
    advance(c);
}

static void start_reading(struct conn *c)
{
    if (c->reading || c->closing)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = 1;
}

/* ------------------------------------------------------------------ the sweep */

/* STACK trap 1's check: a FIN (or an error) on a socket not being read */
static int peer_closed(struct conn *c)
{
    uv_os_fd_t fd;
    if (c->closing || uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
        return 0;
    char ch;
    ssize_t r = recv(fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* The read timeouts of a connection between requests: a fresh one must send its whole head
 * within header_timeout of its accept (nothing legitimate connects and waits), a kept-alive one
 * within header_timeout of the head's first byte; then the body within body_timeout; an idle
 * kept-alive one goes after idle_timeout. All are totals, not gaps between reads, so trickling
 * a byte at a time buys nothing. Times are taken at the sweep (every 500 ms for a connection),
 * so a limit fires up to 500 ms late. A connection whose answer is being written must have
 * each write taken within send_timeout. */
static void check(struct keel_server *s, struct conn *c, uint64_t now)
{
    const struct keel_server_limits *l = &s->limits;
    if (c->closing)
        return;
    if (c->state == C_BUSY) {
        struct keel_http *h = c->h;
        if (!c->reading && h != NULL && !h->done && peer_closed(c)) {
            conn_close(c);
            return;
        }
        if (h != NULL && l->send_timeout_ms > 0 && h->write_at != 0 && now - h->write_at >= l->send_timeout_ms)
            drop(c, &s->stats.send_timeouts);
        return;
    }
    if (c->state == C_HEAD && c->len == 0 && c->served) {
        uint64_t idle = l->idle_timeout_ms ? l->idle_timeout_ms : IDLE_DEFAULT_MS;
        if (now - c->since >= idle)
            conn_close(c);
        return;
    }
    if (c->state == C_HEAD) {
        uint64_t from = c->head_at ? c->head_at : c->since;
        if (l->header_timeout_ms > 0 && now - from >= l->header_timeout_ms)
            drop(c, &s->stats.header_timeouts);
        return;
    }
    if (l->body_timeout_ms > 0 && now - c->body_at >= l->body_timeout_ms)
        drop(c, &s->stats.body_timeouts);
}

static void on_sweep(uv_timer_t *t)
{
    struct keel_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    /* a slice of the connections; a conn is freed only in its uv close callback: c stays valid */
    struct conn *c = s->cursor ? s->cursor : s->conns;
    for (size_t n = s->nconns / SWEEP_EVERY + 1; c != NULL && n > 0; n--, c = c->next)
        check(s, c, now);
    s->cursor = c;
    struct lingerer *lnext;
    for (struct lingerer *l = s->lingering; l != NULL; l = lnext) {
        lnext = l->next;
        if (now >= l->until)
            linger_end(l);
    }
}

/* ------------------------------------------------------------------ app interface */

const char *keel_http_method(struct keel_http *h, size_t *len)
{
    *len = h->mlen;
    return h->method;
}

const char *keel_http_path(struct keel_http *h, size_t *len)
{
    *len = h->plen;
    return h->path;
}

const char *keel_http_query(struct keel_http *h, size_t *len)
{
    *len = h->qlen;
    return h->query;
}

const char *keel_http_body(struct keel_http *h, size_t *len)
{
    *len = h->blen;
    return h->blen ? h->body : "";
}

const char *keel_http_header(struct keel_http *h, const char *name, size_t *len)
{
    for (size_t i = 0; i < h->nhdrs; i++)
        if (keel_http1_is(&h->hdrs[i], name)) {
            *len = h->hdrs[i].vlen;
            return h->hdrs[i].value;
        }
    return NULL;
}

size_t keel_http_header_count(struct keel_http *h)
{
    return h->nhdrs;
}

void keel_http_header_at(struct keel_http *h, size_t i, const char **name, size_t *nlen, const char **value,
                         size_t *vlen)
{
    assert(i < h->nhdrs);
    *name = h->hdrs[i].name;
    *nlen = h->hdrs[i].nlen;
    *value = h->hdrs[i].value;
    *vlen = h->hdrs[i].vlen;
}

int keel_http_check_gone(struct keel_http *h)
{
    if (h->done || h->c == NULL || !peer_closed(h->c))
        return 0;
    conn_close(h->c);
    return 1;
}

void keel_http_on_delivered(struct keel_http *h, keel_http_delivered_cb cb, void *ctx)
{
    h->on_delivered = cb;
    h->delivered_ctx = ctx;
}

/* the connection is read for its whole life: its FIN or reset ends the request at once */
void keel_http_watch(struct keel_http *h, keel_http_gone_cb on_gone, void *ctx)
{
    h->on_gone = on_gone;
    h->ctx = ctx;
}

void keel_http_respond(struct keel_http *h, int status, const struct keel_header *hdrs, size_t nhdrs,
                       const char *body, size_t len)
{
    assert(!h->done && !h->started);
    h->done = 1;
    char framing[48];
    snprintf(framing, sizeof(framing), "content-length: %zu\r\n", len);
    size_t n;
    size_t extra = h->head_only ? 0 : len;
    char *out = build_head(h, status, hdrs, nhdrs, framing, extra, &n);
    if (out == NULL) { /* out of memory: the answer can't be sent; the connection closes */
        h->final_sent = 1;
        h->writing = 1;
        defer_done(h, UV_ENOMEM);
        return;
    }
    if (extra > 0)
        memcpy(out + n, body, len);
    free(h->out);
    h->out = out;
    h->outcap = n + extra;
    if (status == 413 && h->c != NULL && h->c->linger_fd < 0) {
        /* the client may still be sending the body keel refused: once the answer is out the
         * socket is drained, not reset (struct lingerer) */
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&h->c->tcp, &fd) == 0)
            h->c->linger_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    }
    write_out(h, n + extra, 1);
}

void keel_server_set_refusal(struct keel_server *s, keel_server_refusal_cb cb)
{
    s->refusal = cb;
}

void keel_http_start(struct keel_http *h, int status, const struct keel_header *hdrs, size_t nhdrs,
                     keel_http_written_cb on_written)
{
    assert(!h->done && !h->started);
    if (h->http10 && h->c != NULL)
        h->c->keep = 0; /* the close ends the stream */
    h->pending_head = build_head(h, status, hdrs, nhdrs, h->http10 ? "" : "transfer-encoding: chunked\r\n", 0,
                                 &h->pending_len);
    h->head_failed = h->pending_head == NULL;
    h->on_written = on_written;
    h->started = 1;
}

int keel_http_write(struct keel_http *h, const char *data, size_t len, int final)
{
    assert(h->started && !h->writing && !h->done);
    int chunked = !h->http10;
    size_t body = h->head_only ? 0 : len;
    size_t need = h->pending_len + body + (chunked ? 32 : 0);
    char *grown = need > h->outcap && !h->head_failed ? realloc(h->out, need) : h->out;
    if (h->head_failed || grown == NULL) {
        /* out of memory: the response can't go on; the app learns its client is gone (as for
         * any lost client) unless this was its last write anyway */
        h->done = 1;
        h->on_delivered = NULL; /* the caller learns it from the -1, and may be gone after */
        struct conn *c = h->c;
        if (c != NULL && c->h == h)
            conn_close(c); /* lets go of h */
        else
            http_release(h);
        return -1;
    }
    if (need > h->outcap) {
        h->out = grown;
        h->outcap = need;
    }
    size_t w = 0;
    if (h->pending_len > 0) {
        memcpy(h->out, h->pending_head, h->pending_len);
        w = h->pending_len;
        free(h->pending_head);
        h->pending_head = NULL;
        h->pending_len = 0;
    }
    if (chunked && body > 0)
        w += (size_t)snprintf(h->out + w, 24, "%zx\r\n", body);
    if (body > 0)
        memcpy(h->out + w, data, body);
    w += body;
    if (chunked && body > 0) {
        memcpy(h->out + w, "\r\n", 2);
        w += 2;
    }
    if (chunked && final && !h->head_only) {
        memcpy(h->out + w, "0\r\n\r\n", 5);
        w += 5;
    }
    if (final)
        h->done = 1;
    write_out(h, w, final);
    return 0;
}

void keel_http_abort(struct keel_http *h)
{
    struct conn *c = h->c;
    h->done = 1;
    h->on_gone = NULL;
    if (c == NULL) {
        http_release(h);
        return;
    }
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
        /* the peer sees the connection drop: what was written goes first, then a FIN, and the
         * close that follows sends a RST */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        shutdown(fd, SHUT_RDWR);
    }
    conn_close(c);
}

/* ------------------------------------------------------------------ draining */

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
    (void)events;
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

/* ------------------------------------------------------------------ listener */

#define REFUSED_BODY                                                                                      \
    "{\"error\":{\"message\":\"keel is at max_connections: retry shortly\",\"type\":\"server_error\","     \
    "\"code\":\"gateway_busy\",\"param\":null,\"retry_after\":1}}"

/* Over max_connections: an immediate 503 in the OpenAI envelope, written straight to the new
 * socket (it is empty, the write can't block), then whatever the client sent is drained
 * (struct lingerer) for REFUSED_LINGER_MS, so the 503 is not lost to a reset. */
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
    start_reading(c);
    if (!c->reading)
        conn_close(c);
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
    char *slab = malloc(READ_SLAB);
    if (s == NULL || slab == NULL) {
        free(s);
        free(slab);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->on_request = on_request;
    s->app = app;
    s->max_body = max_body;
    s->slab = slab;
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
        free(s->slab);
        free(s);
        return NULL;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    s->accepting = 1;
    uv_timer_init(loop, &s->sweep);
    s->sweep.data = s;
    uv_timer_start(&s->sweep, on_sweep, SWEEP_INTERVAL_MS, SWEEP_INTERVAL_MS);
    uv_unref((uv_handle_t *)&s->sweep);
    uv_check_init(loop, &s->check);
    s->check.data = s;
    uv_check_start(&s->check, on_check);
    uv_unref((uv_handle_t *)&s->check);
    uv_idle_init(loop, &s->idle);
    uv_unref((uv_handle_t *)&s->idle);
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

/* Stops accepting: idle connections close now, busy ones after their answer. */
void keel_server_stop_accepting(struct keel_server *s)
{
    if (!s->accepting)
        return;
    s->accepting = 0;
    uv_close((uv_handle_t *)&s->listener, NULL);
    struct conn *next;
    for (struct conn *c = s->conns; c != NULL; c = next) {
        next = c->next;
        if (c->state == C_HEAD && c->len == 0)
            conn_close(c);
    }
}
