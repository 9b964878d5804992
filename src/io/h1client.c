/* h1client.c - keel's HTTP/1.1 client for http:// upstreams; see h1client.h.
 * A connection (struct conn) reads for its whole life: while a transfer uses it, what arrives
 * is framed and handed on; while it idles in its host's pool, any byte or EOF closes it (the
 * upstream let it go; the next request finds another). A transfer (struct keel_h1_xfer) takes
 * an idle connection of its host or opens one (resolving the name when it is not an address,
 * trying each address in turn), writes its request, and frames the answer: 1xx heads skipped,
 * then Content-Length, chunked, or until the upstream closes. A reused connection that dies
 * before any byte of the answer (the upstream closed it as it was taken) is retried once on a
 * fresh one, as curl does. The app's callbacks may cancel the transfer, or start others; after
 * each one the transfer checks whether it was let go. */
#include "io/h1client.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/classify.h"
#include "core/fmt.h"
#include "core/units.h"

#define HEAD_MAX (64u << 10) /* a longer line or head in an answer is a protocol error */
#define BUF_ANSWER 16384     /* a connection's read buffer; a stream's is small, as with curl */
#define BUF_STREAM 1024
#define KEEPALIVE_S 60

struct host { /* one HOST:PORT, and its idle connections */
    char *name;      /* as in the URL, brackets stripped */
    char *authority; /* the Host header: HOST[:PORT] as in the URL */
    int port;
    int numeric;     /* name is an address: addr holds it */
    struct sockaddr_storage addr;
    struct conn *idle; /* most recently used first */
    struct host *next;
};

struct conn {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    struct keel_h1 *h;
    struct host *host;
    struct keel_h1_xfer *x; /* the transfer using it; NULL while it idles or closes */
    struct conn *next_idle;
    char *buf;
    size_t off, len, cap; /* what is read and not yet taken: buf[off, len) */
    int reused;           /* it served an answer before: a death before the next answer's first
                           * byte may be the upstream's idle close racing us */
    int reading, closing;
    int writing;          /* a uv_write of the request is under way */
};

enum phase { P_CONNECT, P_STATUS, P_HEADERS, P_BODY, P_CHUNK_SIZE, P_CHUNK_DATA, P_CHUNK_END, P_TRAILERS,
             P_UNTIL_CLOSE, P_DONE };

struct keel_h1_xfer {
    int own; /* 1: this client's transfer (upstream.c) */
    struct keel_h1 *h;
    struct host *host;
    struct conn *c;
    struct keel_upstream_cbs cbs;
    void *ctx;
    char *head; /* request line and headers; holds the bearer: wiped before free */
    size_t head_len;
    char *body;
    size_t body_len;
    int stream;
    enum phase phase;
    int status, keep_alive, has_length, chunked;
    uint64_t remaining; /* of the body (Content-Length) or of the chunk */
    int got_bytes;      /* a byte of the answer came on c */
    int retried, paused, cancelled, head_sent;
    int depth; /* > 0 while a callback of this transfer runs */
    uint64_t retry_after_ms;
    char ctype[128];
    uint64_t connect_timeout_ms, timeout_ms;
    uv_timer_t *timer; /* the connect timeout, then the whole transfer's; closed async */
    uv_getaddrinfo_t *gai;
    struct addrinfo *addrs, *next_addr;
    const char *fail_err; /* failed before any I/O: reported from the loop, as curl would */
    const char *fail_detail;
    struct keel_h1_xfer *next_failed;
};

struct keel_h1 {
    uv_loop_t *loop;
    struct host *hosts;
    size_t max_idle, nidle;
    uv_timer_t later; /* reports the transfers in failed on the loop's next turn */
    struct keel_h1_xfer *failed;
};

static void advance(struct keel_h1_xfer *x);
static void open_conn(struct keel_h1_xfer *x);

/* ------------------------------------------------------------------ URLs and hosts */

struct url {
    const char *host, *authority, *path; /* none NUL-terminated */
    size_t hlen, alen, plen;             /* the path and query, the fragment left out */
    int port;
};

static int parse_url(const char *s, struct url *u)
{
    if (strncasecmp(s, "http://", 7) != 0)
        return -1;
    const char *a = s + 7, *end = a + strcspn(a, "/?#");
    if (end == a || memchr(a, '@', (size_t)(end - a)) != NULL)
        return -1;
    u->authority = a;
    u->alen = (size_t)(end - a);
    const char *colon;
    if (*a == '[') {
        const char *close = memchr(a, ']', (size_t)(end - a));
        if (close == NULL)
            return -1;
        u->host = a + 1;
        u->hlen = (size_t)(close - a - 1);
        colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
        if (close + 1 < end && colon == NULL)
            return -1;
    } else {
        colon = memchr(a, ':', (size_t)(end - a));
        u->host = a;
        u->hlen = (size_t)((colon ? colon : end) - a);
    }
    u->port = 80;
    if (colon != NULL) {
        char digits[8];
        size_t n = (size_t)(end - colon - 1);
        uint64_t port;
        if (n == 0 || n >= sizeof(digits))
            return -1;
        memcpy(digits, colon + 1, n);
        digits[n] = '\0';
        if (keel_parse_uint(digits, &port) != 0 || port == 0 || port > 65535)
            return -1;
        u->port = (int)port;
    }
    u->path = end;
    u->plen = strcspn(end, "#");
    return u->hlen > 0 && u->hlen < 256 ? 0 : -1;
}

int keel_h1_takes(const char *url)
{
    struct url u;
    return parse_url(url, &u) == 0;
}

static struct host *host_of(struct keel_h1 *h, const struct url *u)
{
    for (struct host *t = h->hosts; t != NULL; t = t->next)
        if (t->port == u->port && strlen(t->authority) == u->alen && memcmp(t->authority, u->authority, u->alen) == 0)
            return t;
    struct host *t = calloc(1, sizeof(*t));
    if (t == NULL || (t->name = strndup(u->host, u->hlen)) == NULL ||
        (t->authority = strndup(u->authority, u->alen)) == NULL) {
        if (t != NULL)
            free(t->name);
        free(t);
        return NULL;
    }
    t->port = u->port;
    t->numeric = uv_ip4_addr(t->name, t->port, (struct sockaddr_in *)&t->addr) == 0 ||
                 uv_ip6_addr(t->name, t->port, (struct sockaddr_in6 *)&t->addr) == 0;
    t->next = h->hosts;
    h->hosts = t;
    return t;
}

/* ------------------------------------------------------------------ connections */

static void on_conn_closed(uv_handle_t *handle)
{
    struct conn *c = handle->data;
    free(c->buf);
    free(c);
}

static void unidle(struct conn *c)
{
    for (struct conn **p = &c->host->idle; *p != NULL; p = &(*p)->next_idle) {
        if (*p == c) {
            *p = c->next_idle;
            c->h->nidle--;
            return;
        }
    }
}

/* closes c; whatever used it has let go (x->c cleared by the caller) */
static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    if (c->x == NULL)
        unidle(c);
    c->x = NULL;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* c's answer ended cleanly: back to its host's pool, or closed */
static void conn_release(struct conn *c, int keep)
{
    struct keel_h1 *h = c->h;
    c->x = NULL;
    if (!keep || c->off != c->len || h->nidle >= h->max_idle || !c->reading || c->writing) {
        c->closing = 1;
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    c->off = c->len = 0;
    c->reused = 1;
    c->next_idle = c->host->idle;
    c->host->idle = c;
    h->nidle++;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct conn *c = handle->data;
    if (c->off > 0 && c->len == c->cap) { /* what was taken makes room */
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    if (c->len == c->cap && c->cap < HEAD_MAX) { /* a head or a line longer than the buffer */
        size_t cap = c->cap * 2 > HEAD_MAX ? HEAD_MAX : c->cap * 2;
        char *grown = realloc(c->buf, cap);
        if (grown != NULL) {
            c->buf = grown;
            c->cap = cap;
        }
    }
    *b = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len)); /* 0 bytes: UV_ENOBUFS */
}

/* ------------------------------------------------------------------ a transfer's end */

static void free_handle(uv_handle_t *handle)
{
    free(handle);
}

static void xfer_free(struct keel_h1_xfer *x)
{
    assert(x->c == NULL);
    if (x->head != NULL)
        explicit_bzero(x->head, x->head_len);
    free(x->head);
    free(x->body);
    if (x->timer != NULL)
        uv_close((uv_handle_t *)x->timer, free_handle);
    if (x->gai != NULL)
        x->gai->data = NULL; /* its callback frees it */
    if (x->addrs != NULL)
        uv_freeaddrinfo(x->addrs);
    free(x);
}

/* lets go of x's connection: closed (mid-answer it cannot serve another) */
static void drop_conn(struct keel_h1_xfer *x)
{
    if (x->c != NULL) {
        x->c->x = NULL;
        conn_close(x->c);
        x->c = NULL;
    }
}

/* reports the end (err NULL: a whole answer) and frees x; nothing touches x after */
static void finish(struct keel_h1_xfer *x, const char *err, const char *detail)
{
    drop_conn(x);
    if (!x->cancelled) {
        x->cancelled = 1; /* a cancel from inside on_done is a no-op */
        x->depth++;
        x->cbs.on_done(x->ctx, err, detail);
    }
    xfer_free(x);
}

/* after a callback: 1 if the app let x go in it (x is freed then) */
static int let_go(struct keel_h1_xfer *x)
{
    if (!x->cancelled)
        return 0;
    drop_conn(x);
    xfer_free(x);
    return 1;
}

static void on_later(uv_timer_t *t)
{
    struct keel_h1 *h = t->data;
    while (h->failed != NULL) {
        struct keel_h1_xfer *x = h->failed;
        h->failed = x->next_failed;
        finish(x, x->fail_err, x->fail_detail);
    }
}

/* x failed before any I/O (no descriptor, no memory): on_done from the loop's next turn */
static void fail_later(struct keel_h1_xfer *x, const char *err, const char *detail)
{
    drop_conn(x);
    x->fail_err = err;
    x->fail_detail = detail;
    x->next_failed = x->h->failed;
    x->h->failed = x;
    uv_timer_start(&x->h->later, on_later, 0, 0);
}

static int local_errno(int rc)
{
    return rc == UV_EMFILE || rc == UV_ENFILE || rc == UV_ENOMEM || rc == UV_ENOBUFS;
}

/* the connection died (EOF, reset, a failed write) while x used it */
static void peer_closed(struct keel_h1_xfer *x, int rc)
{
    if (x->phase == P_UNTIL_CLOSE && rc == UV_EOF) {
        x->phase = P_DONE;
        finish(x, NULL, "");
        return;
    }
    if (!x->got_bytes && x->c->reused && !x->retried && x->phase == P_STATUS) {
        drop_conn(x); /* the upstream's idle close raced the request: once more, on a new one */
        x->retried = 1;
        open_conn(x);
        return;
    }
    finish(x, keel_err_reset, rc == UV_EOF ? "the upstream closed the connection before the answer ended"
                                           : uv_strerror(rc));
}

/* ------------------------------------------------------------------ sending */

/* the request is no longer needed once the answer has begun and every byte of it went: a
 * retry is only for a connection that died before the answer. A long prompt is not held for
 * the whole of a long stream. */
static void drop_request(struct keel_h1_xfer *x)
{
    if (x->head == NULL || !x->got_bytes || x->c->writing)
        return;
    explicit_bzero(x->head, x->head_len); /* it holds the key */
    free(x->head);
    free(x->body);
    x->head = x->body = NULL;
    x->head_len = x->body_len = 0;
}

static void on_written(uv_write_t *w, int status)
{
    struct conn *c = w->data;
    c->writing = 0;
    if (status >= 0 && c->x != NULL && !c->closing)
        drop_request(c->x);
    if (status < 0 && c->x != NULL && !c->closing)
        peer_closed(c->x, status);
}

static void send_request(struct keel_h1_xfer *x)
{
    struct conn *c = x->c;
    uv_buf_t bufs[2] = {uv_buf_init(x->head, (unsigned)x->head_len), uv_buf_init(x->body, (unsigned)x->body_len)};
    unsigned n = x->body_len > 0 ? 2 : 1;
    x->phase = P_STATUS;
    x->got_bytes = 0;
    int rc = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
    size_t sent = rc > 0 ? (size_t)rc : 0;
    if (sent == x->head_len + x->body_len)
        return;
    if (rc < 0 && rc != UV_EAGAIN) {
        peer_closed(x, rc);
        return;
    }
    /* the rest when the socket takes it: the buffers stay valid as long as x */
    unsigned first = 0;
    if (sent >= x->head_len) {
        first = 1;
        sent -= x->head_len;
    }
    bufs[first].base += sent;
    bufs[first].len -= sent;
    c->write_req.data = c;
    rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs + first, n - first, on_written);
    if (rc < 0)
        peer_closed(x, rc);
    else
        c->writing = 1;
}

/* ------------------------------------------------------------------ connecting */

static void on_timeout(uv_timer_t *t)
{
    struct keel_h1_xfer *x = t->data;
    finish(x, keel_err_connect, x->phase == P_CONNECT ? "connect timeout" : "transfer timeout");
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    struct keel_h1_xfer *x = c->x;
    if (c->closing || x == NULL)
        return;
    if (status < 0) {
        drop_conn(x);
        if (x->next_addr != NULL) {
            open_conn(x);
            return;
        }
        finish(x, local_errno(status) ? keel_err_local : keel_err_connect, uv_strerror(status));
        return;
    }
    if (x->timer != NULL) {
        if (x->timeout_ms > 0)
            uv_timer_start(x->timer, on_timeout, x->timeout_ms, 0);
        else
            uv_timer_stop(x->timer);
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, KEEPALIVE_S);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = 1;
    send_request(x);
}

static void connect_to(struct keel_h1_xfer *x, const struct sockaddr *addr)
{
    struct conn *c = calloc(1, sizeof(*c));
    size_t cap = x->stream ? BUF_STREAM : BUF_ANSWER;
    if (c == NULL || (c->buf = malloc(cap)) == NULL) {
        free(c);
        fail_later(x, keel_err_local, "out of memory");
        return;
    }
    c->cap = cap;
    c->h = x->h;
    c->host = x->host;
    uv_tcp_init(x->h->loop, &c->tcp);
    c->tcp.data = c;
    c->connect_req.data = c;
    c->x = x;
    x->c = c;
    x->phase = P_CONNECT;
    int rc = uv_tcp_connect(&c->connect_req, &c->tcp, addr, on_connect);
    if (rc < 0) { /* no descriptor is keel's trouble; anything else the route's */
        fail_later(x, local_errno(rc) ? keel_err_local : keel_err_connect, uv_strerror(rc));
        return;
    }
    if (x->timer == NULL && (x->timer = malloc(sizeof(*x->timer))) != NULL) {
        uv_timer_init(x->h->loop, x->timer);
        x->timer->data = x;
    }
    if (x->timer != NULL && x->connect_timeout_ms > 0)
        uv_timer_start(x->timer, on_timeout, x->connect_timeout_ms, 0);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct keel_h1_xfer *x = req->data;
    free(req);
    if (x == NULL) { /* let go meanwhile */
        uv_freeaddrinfo(res);
        return;
    }
    x->gai = NULL;
    if (status < 0) {
        finish(x, keel_err_resolve, uv_strerror(status));
        return;
    }
    x->addrs = x->next_addr = res;
    open_conn(x);
}

/* x's next connection: an idle one of its host, else a new one to the host's next address */
static void open_conn(struct keel_h1_xfer *x)
{
    struct host *t = x->host;
    if (!x->retried && t->idle != NULL) {
        struct conn *c = t->idle;
        t->idle = c->next_idle;
        x->h->nidle--;
        c->x = x;
        x->c = c;
        send_request(x);
        return;
    }
    if (t->numeric) {
        connect_to(x, (const struct sockaddr *)&t->addr);
        return;
    }
    if (x->addrs == NULL) {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        char port[8];
        snprintf(port, sizeof(port), "%d", t->port);
        if ((x->gai = malloc(sizeof(*x->gai))) == NULL) {
            fail_later(x, keel_err_local, "out of memory");
            return;
        }
        x->gai->data = x;
        int rc = uv_getaddrinfo(x->h->loop, x->gai, on_resolved, t->name, port, &hints);
        if (rc < 0) {
            free(x->gai);
            x->gai = NULL;
            fail_later(x, keel_err_resolve, uv_strerror(rc));
        }
        return;
    }
    if (x->next_addr == NULL) /* a retry after every address was tried: from the first */
        x->next_addr = x->addrs;
    struct addrinfo *a = x->next_addr;
    x->next_addr = a->ai_next;
    connect_to(x, a->ai_addr);
}

/* ------------------------------------------------------------------ the answer */

/* hands data to the app: 0 taken, -1 it paused (left in the buffer) or let x go */
static int deliver(struct keel_h1_xfer *x, const char *p, size_t n)
{
    struct conn *c = x->c;
    x->depth++;
    int rv = x->cbs.on_data(x->ctx, p, n);
    x->depth--;
    if (let_go(x))
        return -1;
    if (rv == KEEL_XFER_PAUSE) {
        x->paused = 1;
        if (c->reading) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = 0;
        }
        return -1;
    }
    c->off += n;
    return 0;
}

static void complete(struct keel_h1_xfer *x)
{
    struct conn *c = x->c;
    x->phase = P_DONE;
    x->c = NULL;
    conn_release(c, x->keep_alive);
    finish(x, NULL, "");
}

static int equals(const char *p, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(p, lit, n) == 0;
}

/* a header of the answer: what framing and the app need */
static int header(struct keel_h1_xfer *x, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len), *end = line + len;
    if (colon == NULL || colon == line)
        return -1;
    const char *v = colon + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t nlen = (size_t)(colon - line), vlen = (size_t)(end - v);
    char val[64];
    if (equals(line, nlen, "content-length") || equals(line, nlen, "retry-after")) {
        uint64_t num;
        if (vlen == 0 || vlen >= sizeof(val))
            return equals(line, nlen, "content-length") ? -1 : 0;
        memcpy(val, v, vlen);
        val[vlen] = '\0';
        int ok = keel_parse_uint(val, &num) == 0;
        if (equals(line, nlen, "content-length")) {
            if (!ok)
                return -1;
            x->has_length = 1;
            x->remaining = num;
        } else if (ok && num < 86400) {
            x->retry_after_ms = num * 1000;
        }
    } else if (equals(line, nlen, "transfer-encoding")) {
        x->chunked = vlen >= 7 && strncasecmp(end - 7, "chunked", 7) == 0;
        if (!x->chunked)
            return -1; /* another coding: no framing keel knows */
    } else if (equals(line, nlen, "connection")) {
        if (equals(v, vlen, "close"))
            x->keep_alive = 0;
        else if (equals(v, vlen, "keep-alive"))
            x->keep_alive = 1;
    } else if (equals(line, nlen, "content-type")) {
        size_t n = vlen < sizeof(x->ctype) - 1 ? vlen : sizeof(x->ctype) - 1;
        memcpy(x->ctype, v, n);
        x->ctype[n] = '\0';
    }
    if (x->cbs.on_header != NULL) {
        x->depth++;
        x->cbs.on_header(x->ctx, line, nlen, v, vlen);
        x->depth--;
    }
    return 0;
}

/* the head ended: on_head for a final answer, and how its body is framed; -1: x ended */
static int head_done(struct keel_h1_xfer *x)
{
    if (x->status < 200) {
        x->phase = P_STATUS; /* 1xx: the real answer follows */
        return 0;
    }
    x->head_sent = 1;
    x->depth++;
    x->cbs.on_head(x->ctx, x->status, x->ctype, x->retry_after_ms);
    x->depth--;
    if (let_go(x))
        return -1;
    if (x->status == 204 || x->status == 304) {
        complete(x);
        return -1;
    }
    if (x->chunked)
        x->phase = P_CHUNK_SIZE;
    else if (x->has_length)
        x->phase = P_BODY;
    else
        x->phase = P_UNTIL_CLOSE, x->keep_alive = 0;
    return 0;
}

/* one line of the head, a chunk size or a trailer; -1: x ended (failed or let go) */
static int line(struct keel_h1_xfer *x, const char *p, size_t len)
{
    switch (x->phase) {
    case P_STATUS:
        if (len < 12 || strncmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ' || p[9] < '1' || p[9] > '5') {
            finish(x, keel_err_reset, "not an HTTP/1.x answer");
            return -1;
        }
        x->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
        x->keep_alive = p[7] == '1';
        x->has_length = x->chunked = 0;
        x->ctype[0] = '\0';
        x->retry_after_ms = 0;
        x->phase = P_HEADERS;
        if (x->cbs.on_header != NULL) { /* a new answer: what came before (a 1xx's) is void */
            x->depth++;
            x->cbs.on_header(x->ctx, NULL, 0, NULL, 0);
            x->depth--;
            if (let_go(x))
                return -1;
        }
        return 0;
    case P_HEADERS:
        if (len == 0)
            return head_done(x);
        if (header(x, p, len) != 0) {
            finish(x, keel_err_reset, "a malformed header in the answer");
            return -1;
        }
        return let_go(x) ? -1 : 0;
    case P_CHUNK_SIZE: {
        uint64_t size = 0;
        size_t i = 0;
        for (; i < len && i < 16; i++) {
            char ch = p[i];
            int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                                      : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
            if (d < 0)
                break;
            size = size * 16 + (uint64_t)d;
        }
        if (i == 0 || (i < len && p[i] != ';' && p[i] != ' ' && p[i] != '\t')) {
            finish(x, keel_err_reset, "a malformed chunk size in the answer");
            return -1;
        }
        x->remaining = size;
        x->phase = size == 0 ? P_TRAILERS : P_CHUNK_DATA;
        return 0;
    }
    case P_CHUNK_END:
        if (len != 0) {
            finish(x, keel_err_reset, "a chunk of the answer overran its size");
            return -1;
        }
        x->phase = P_CHUNK_SIZE;
        return 0;
    case P_TRAILERS:
        if (len == 0) {
            complete(x);
            return -1;
        }
        return 0;
    default:
        assert(0);
        return -1;
    }
}

/* frames what c holds for x; stops when it needs more, or x paused or ended */
static void advance(struct keel_h1_xfer *x)
{
    while (!x->paused) {
        struct conn *c = x->c;
        const char *p = c->buf + c->off;
        size_t n = c->len - c->off;
        if (x->phase == P_BODY || x->phase == P_CHUNK_DATA || x->phase == P_UNTIL_CLOSE) {
            if (x->phase == P_BODY && x->remaining == 0) {
                complete(x);
                return;
            }
            if (x->phase == P_CHUNK_DATA && x->remaining == 0) {
                x->phase = P_CHUNK_END;
                continue;
            }
            if (n == 0)
                break;
            size_t take = x->phase == P_UNTIL_CLOSE || n < x->remaining ? n : (size_t)x->remaining;
            if (deliver(x, p, take) != 0)
                return;
            if (x->phase != P_UNTIL_CLOSE)
                x->remaining -= take;
            continue;
        }
        const char *nl = memchr(p, '\n', n);
        if (nl == NULL) {
            if (n >= HEAD_MAX) {
                finish(x, keel_err_reset, "a line of the answer is too long");
                return;
            }
            break;
        }
        size_t len = (size_t)(nl - p);
        c->off += len + 1;
        if (line(x, p, len > 0 && p[len - 1] == '\r' ? len - 1 : len) != 0)
            return;
    }
    struct conn *c = x->c;
    if (c->off == c->len)
        c->off = c->len = 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    struct conn *c = s->data;
    struct keel_h1_xfer *x = c->x;
    if (n > 0)
        c->len += (size_t)n;
    if (x == NULL) { /* idle: the upstream closed it, or spoke out of turn */
        if (n != 0 && !c->closing)
            conn_close(c);
        return;
    }
    if (n > 0) {
        x->got_bytes = 1;
        drop_request(x);
        advance(x);
    } else if (n < 0) {
        if (n == UV_ENOBUFS)
            finish(x, keel_err_reset, "the answer's head is too large");
        else
            peer_closed(x, (int)n);
    }
}

/* ------------------------------------------------------------------ interface */

struct keel_h1 *keel_h1_new(uv_loop_t *loop, size_t max_idle)
{
    struct keel_h1 *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->loop = loop;
    h->max_idle = max_idle;
    uv_timer_init(loop, &h->later);
    h->later.data = h;
    uv_unref((uv_handle_t *)&h->later);
    return h;
}

/* the request line and headers: METHOD PATH, Host, the key, the caller's, the length */
static char *request_head(const struct keel_upstream_spec *spec, const struct url *u, const struct host *t,
                          size_t *len)
{
    size_t cap = u->plen + strlen(t->authority) + 256;
    if (spec->bearer != NULL)
        cap += strlen(spec->bearer) + (spec->key_header ? strlen(spec->key_header) : 0) + 32;
    for (size_t i = 0; i < spec->nheaders; i++)
        cap += strlen(spec->headers[i]) + 2;
    char *h = malloc(cap);
    if (h == NULL)
        return NULL;
    struct keel_fmt f;
    keel_fmt_init(&f, h, cap);
    keel_fmt_str(&f, spec->body ? "POST " : "GET ");
    if (*u->path != '/')
        keel_fmt_str(&f, "/");
    keel_fmt_mem(&f, u->path, u->plen);
    keel_fmt_str(&f, " HTTP/1.1\r\nHost: ");
    keel_fmt_str(&f, t->authority);
    keel_fmt_str(&f, "\r\nUser-Agent: keel\r\nAccept: */*\r\n");
    if (spec->body != NULL) {
        keel_fmt_str(&f, "Content-Type: application/json\r\nContent-Length: ");
        keel_fmt_u64(&f, spec->body_len);
        keel_fmt_str(&f, "\r\n");
    }
    if (spec->bearer != NULL) {
        keel_fmt_str(&f, spec->key_header ? spec->key_header : "Authorization: Bearer ");
        if (spec->key_header)
            keel_fmt_str(&f, ": ");
        keel_fmt_str(&f, spec->bearer);
        keel_fmt_str(&f, "\r\n");
    }
    for (size_t i = 0; i < spec->nheaders; i++) {
        const char *line = spec->headers[i], *colon = strchr(line, ':');
        if (colon == NULL || colon[1 + strspn(colon + 1, " \t")] == '\0')
            continue; /* "Name:" with no value sends nothing, as with curl */
        keel_fmt_str(&f, line);
        keel_fmt_str(&f, "\r\n");
    }
    keel_fmt_str(&f, "\r\n");
    assert(!f.cut); /* cap counted every part */
    *len = f.len;
    return h;
}

struct keel_h1_xfer *keel_h1_start(struct keel_h1 *h, const struct keel_upstream_spec *spec,
                                   const struct keel_upstream_cbs *cbs, void *ctx)
{
    struct url u;
    struct keel_h1_xfer *x = calloc(1, sizeof(*x));
    struct host *t = x != NULL && parse_url(spec->url, &u) == 0 ? host_of(h, &u) : NULL;
    if (t != NULL && spec->body != NULL) {
        if (spec->give_body)
            x->body = (char *)spec->body;
        else if ((x->body = malloc(spec->body_len + 1)) != NULL)
            memcpy(x->body, spec->body, spec->body_len);
        x->body_len = spec->body_len;
    }
    if (t != NULL && (spec->body == NULL || x->body != NULL))
        x->head = request_head(spec, &u, t, &x->head_len);
    if (x == NULL || x->head == NULL) {
        if (spec->give_body && (x == NULL || x->body == NULL))
            free((char *)spec->body);
        if (x != NULL)
            xfer_free(x);
        return NULL;
    }
    x->own = 1;
    x->h = h;
    x->host = t;
    x->cbs = *cbs;
    x->ctx = ctx;
    x->stream = spec->stream != 0;
    x->connect_timeout_ms = spec->connect_timeout_ms;
    x->timeout_ms = spec->timeout_ms;
    if (spec->timeout_ms > 0 && (x->timer = malloc(sizeof(*x->timer))) != NULL) {
        uv_timer_init(h->loop, x->timer);
        x->timer->data = x;
        uv_timer_start(x->timer, on_timeout, spec->timeout_ms, 0);
    }
    open_conn(x);
    return x;
}

void keel_h1_cancel(struct keel_h1_xfer *x)
{
    if (x->cancelled)
        return; /* already let go, or inside on_done: freed by finish() */
    x->cancelled = 1;
    if (x->depth > 0)
        return; /* inside one of its callbacks: freed when that returns (let_go) */
    for (struct keel_h1_xfer **p = &x->h->failed; *p != NULL; p = &(*p)->next_failed) {
        if (*p == x) {
            *p = x->next_failed;
            break;
        }
    }
    drop_conn(x);
    xfer_free(x);
}

void keel_h1_resume(struct keel_h1_xfer *x)
{
    if (x->cancelled || !x->paused)
        return;
    x->paused = 0;
    struct conn *c = x->c;
    advance(x);
    /* x may be freed (ended, or let go in a callback): only c, alive until its close callback,
     * is looked at, and x through it */
    if (c->x == x && !x->paused && !c->reading && !c->closing &&
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = 1;
}
