/* server.c - keel_server over h2o 2.2.5 (libuv flavour, HTTP/1.1 only); see server.h.
 * Ownership: a keel_http is malloc'd per request and freed when h2o disposes the request's pool
 * (a shared slot's dispose hook), so it never outlives h2o's request nor dies under the app
 * without on_gone. A server-wide timer peeks at every watched client socket for a FIN. */
#include "io/server.h"

#include <errno.h>
#include <h2o.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define PROBE_INTERVAL_MS 100

struct keel_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    keel_server_request_cb on_request;
    void *app;
    uv_timer_t probe;
    struct keel_http *watched; /* head of the list of requests whose client is probed */
    int port;
    int accepting;
    uint64_t accepted; /* connections accepted so far */
};

struct handler {
    h2o_handler_t super;
    struct keel_server *s;
};

struct keel_http {
    h2o_generator_t gen; /* h2o passes &gen back to proceed/stop */
    h2o_req_t *req;      /* NULL once h2o disposed the request */
    struct keel_server *s;
    keel_http_written_cb on_written;
    keel_http_gone_cb on_gone;
    void *ctx;
    struct keel_http *prev, *next; /* in s->watched while `watched` */
    char *out;                     /* the bytes of the write in flight; valid until proceed */
    size_t outcap;
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
    h->req = NULL;
    unwatch(h);
    if (!h->done) {
        h->done = 1;
        if (h->on_gone)
            h->on_gone(h->ctx);
    }
    free(h->out);
    free(h);
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

static void on_probe(uv_timer_t *t)
{
    struct keel_server *s = t->data;
    struct keel_http *next;
    for (struct keel_http *h = s->watched; h != NULL; h = next) {
        next = h->next;
        int fd = socket_fd(h);
        if (fd < 0)
            continue;
        char c;
        ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            client_gone(h);
    }
}

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    struct keel_http *h = (struct keel_http *)gen;
    h->writing = 0;
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
    case 500: return "Internal Server Error";
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
    h->done = 1;
    unwatch(h);
    head(h, status, hdrs, nhdrs);
    h->req->res.content_length = len; /* STACK trap 3: h2o sets none for inline bodies */
    h2o_send_inline(h->req, body, len);
}

void keel_http_start(struct keel_http *h, int status, const struct keel_header *hdrs, size_t nhdrs,
                     keel_http_written_cb on_written)
{
    head(h, status, hdrs, nhdrs);
    h->on_written = on_written;
    h->gen.proceed = on_proceed;
    h->gen.stop = on_stop;
    h->started = 1;
    h2o_start_response(h->req, &h->gen);
}

void keel_http_write(struct keel_http *h, const char *data, size_t len, int final)
{
    if (len > h->outcap) {
        char *n = realloc(h->out, len);
        if (n == NULL) {
            h->writing = 1;
            h->done = 1;
            unwatch(h);
            h2o_send(h->req, NULL, 0, H2O_SEND_STATE_ERROR);
            return;
        }
        h->out = n;
        h->outcap = len;
    }
    if (len > 0)
        memcpy(h->out, data, len);
    h2o_iovec_t buf = h2o_iovec_init(h->out, len);
    h->writing = 1;
    if (final) {
        h->done = 1;
        unwatch(h);
    }
    h2o_send(h->req, &buf, len > 0 ? 1 : 0, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
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

/* ------------------------------------------------------------------ listener */

static void free_handle(uv_handle_t *handle)
{
    free(handle);
}

static void on_accept(uv_stream_t *listener, int status)
{
    struct keel_server *s = listener->data;
    if (status != 0)
        return;
    uv_tcp_t *conn = malloc(sizeof(*conn));
    if (conn == NULL)
        return;
    uv_tcp_init(s->loop, conn);
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, free_handle);
        return;
    }
    uv_tcp_nodelay(conn, 1);
    s->accepted++;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, free_handle);
    h2o_accept(&s->accept_ctx, sock);
}

struct keel_server *keel_server_new(uv_loop_t *loop, const char *host, int port, size_t max_body,
                                    keel_server_request_cb on_request, void *app, char *err, size_t errlen)
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
    rv = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
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
    return s->accepted;
}

void keel_server_stop_accepting(struct keel_server *s)
{
    if (!s->accepting)
        return;
    s->accepting = 0;
    uv_close((uv_handle_t *)&s->listener, NULL);
    h2o_context_request_shutdown(&s->ctx);
}
