/* upstream.c - libcurl multi on the libuv loop; see upstream.h. The bridge is the one from
 * curl's multi-uv example (STYLE L4): curl's socket and timer callbacks drive uv polls and one
 * uv timer, and each socket_action is followed by draining curl_multi_info_read.
 * libcurl forbids adding or removing handles from inside its callbacks (STACK trap 7), and app
 * callbacks run inside them, so adds and removals made there wait in two lists until
 * curl_multi_socket_action has returned. */
#include "io/upstream.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/classify.h"
#include "core/units.h"
#include "io/h1client.h"

/* Creating and freeing an easy handle per transfer was a tenth of keel's instructions
 * (callgrind, mostly malloc and free); a few idle ones are kept for reuse. */
#define IDLE_EASY 64

/* curl's receive buffer is 16 KiB per handle, and about a page of it stays resident while a
 * transfer is open. An event stream's reads are one small event at a time and the stream is
 * held open long, so a stream's handle gets 1 KiB (curl's minimum): 3.3 KB less RSS per open
 * stream (bench/RESULTS.md). A non-stream answer keeps the default and reads in few calls.
 * curl fixes the size at a handle's first transfer, hence one idle list per size. */
#define STREAM_BUFFER 1024L

struct keel_upstream {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    int in_curl;                        /* > 0 while curl may be calling back */
    struct keel_upstream_xfer *to_add;    /* started from inside a curl callback */
    struct keel_upstream_xfer *to_remove; /* cancelled from inside a curl callback */
    struct {
        CURL *easy[IDLE_EASY]; /* easy handles kept for reuse, [0, n) */
        size_t n;
    } idle[2]; /* [1]: with the small buffer, for streams */
    struct sock **socks; /* by fd: the sockets curl polls or keeps in its connection cache */
    size_t nsocks;
    struct keel_h1 *h1; /* http:// transfers (h1client.h); NULL: curl takes all (a proxy is set) */
};

struct keel_upstream_xfer {
    int own; /* 0: curl's; h1client's transfers start with a 1 */
    struct keel_upstream *u;
    CURL *easy;
    struct curl_slist *headers; /* holds the bearer: wiped before free */
    char *body;
    struct keel_upstream_cbs cbs;
    void *ctx;
    struct keel_upstream_xfer *next_pending; /* in u->to_add or u->to_remove */
    int stream;                              /* easy has the small buffer */
    uint64_t retry_after_ms;
    int head_sent;
    int added;     /* in the multi handle */
    int cancelled; /* the app let go: no callback fires any more */
    int local_err; /* keel could not open a socket for it (EMFILE, ENOMEM...): its failure, not the upstream's */
    char errbuf[CURL_ERROR_SIZE];
};

/* A socket's poll. libuv's uv_poll_start costs two epoll_ctl calls even when the events do
 * not change, and init and close one or three more; curl lets go of a connection's socket
 * (CURL_POLL_REMOVE) after every transfer and takes it back for the next. Polling per
 * transfer made seven epoll_ctl calls per proxied request (perf stat), so a connection socket's
 * poll lives as long as the socket: opened by on_open_socket, parked while the connection idles
 * in curl's cache, closed by on_close_socket. Parked, it still watches for readability, which
 * costs nothing until the peer closes the idle connection; then on_poll stops it, and curl
 * finds the connection dead when it next looks. Sockets curl did not open through
 * on_open_socket (the threaded resolver's wake-up pair, which curl closes itself) are polled
 * only between their first event request and CURL_POLL_REMOVE, as before. */
struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct keel_upstream *u;
    int events; /* the UV_* events the poll watches; 0 while stopped */
    int kept;   /* opened by on_open_socket: lives until on_close_socket */
    int parked; /* kept, and curl is not using it */
};

static size_t on_header(char *buf, size_t size, size_t n, void *userp);
static size_t on_write(char *data, size_t size, size_t n, void *userp);
static curl_socket_t on_open_socket(void *userp, curlsocktype purpose, struct curl_sockaddr *a);
static int on_close_socket(void *userp, curl_socket_t fd);
static void on_poll(uv_poll_t *p, int status, int events);

/* ------------------------------------------------------------------ lifecycle */

/* a handle with the options every transfer shares; the others are set per transfer */
static CURL *easy_get(struct keel_upstream *u, int stream)
{
    if (u->idle[stream].n > 0)
        return u->idle[stream].easy[--u->idle[stream].n];
    CURL *e = curl_easy_init();
    if (e == NULL)
        return NULL;
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "keel");
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket); /* its data: the transfer */
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, u);
    if (stream)
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, STREAM_BUFFER);
    return e;
}

/* e is out of the multi handle; nothing it points at outlives the transfer */
static void easy_put(struct keel_upstream *u, CURL *e, int stream)
{
    if (e == NULL)
        return;
    if (u->idle[stream].n == IDLE_EASY) {
        curl_easy_cleanup(e);
        return;
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(e, CURLOPT_PRIVATE, NULL);
    u->idle[stream].easy[u->idle[stream].n++] = e;
}

static void xfer_free(struct keel_upstream_xfer *x)
{
    for (struct curl_slist *l = x->headers; l != NULL; l = l->next)
        explicit_bzero(l->data, strlen(l->data));
    curl_slist_free_all(x->headers);
    easy_put(x->u, x->easy, x->stream);
    free(x->body);
    free(x);
}

static void remove_and_free(struct keel_upstream_xfer *x)
{
    if (x->added)
        curl_multi_remove_handle(x->u->multi, x->easy);
    xfer_free(x);
}

static const char *error_identity(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return NULL;
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT: /* only a connect timeout is set on the handle */
        return keel_err_connect;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return keel_err_resolve;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return keel_err_tls;
    case CURLE_OUT_OF_MEMORY:
        return keel_err_local;
    default:
        return keel_err_reset;
    }
}

static void drain_messages(struct keel_upstream *u)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(u->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct keel_upstream_xfer *x;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode rc = msg->data.result;
        curl_multi_remove_handle(u->multi, x->easy);
        x->added = 0;
        if (!x->cancelled) {
            /* curl reports a socket keel could not open as COULDNT_CONNECT: that would blame the
             * upstream (and open its breaker) for keel running out of descriptors (seed 003) */
            const char *err = x->local_err && rc != CURLE_OK ? keel_err_local : error_identity(rc);
            const char *detail = err ? (x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc)) : "";
            x->cancelled = 1; /* a cancel from inside on_done is a no-op */
            x->cbs.on_done(x->ctx, err, detail);
        }
        xfer_free(x);
    }
}

/* Runs what callbacks postponed, then reports finished transfers. */
static void after_curl(struct keel_upstream *u)
{
    while (u->to_remove != NULL) {
        struct keel_upstream_xfer *x = u->to_remove;
        u->to_remove = x->next_pending;
        remove_and_free(x);
    }
    while (u->to_add != NULL) {
        struct keel_upstream_xfer *x = u->to_add;
        u->to_add = x->next_pending;
        x->added = 1;
        curl_multi_add_handle(u->multi, x->easy);
    }
    drain_messages(u);
}

static void socket_action(struct keel_upstream *u, curl_socket_t fd, int flags)
{
    int running;
    u->in_curl++;
    curl_multi_socket_action(u->multi, fd, flags, &running);
    u->in_curl--;
    if (u->in_curl == 0)
        after_curl(u);
}

/* ------------------------------------------------------------------ loop bridge */

static void free_sock(uv_handle_t *h)
{
    free(h->data);
}

static struct sock *sock_of(struct keel_upstream *u, curl_socket_t fd)
{
    return fd >= 0 && (size_t)fd < u->nsocks ? u->socks[fd] : NULL;
}

static struct sock *sock_new(struct keel_upstream *u, curl_socket_t fd, int kept)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= u->nsocks) {
        size_t n = u->nsocks ? u->nsocks : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct sock **t = realloc(u->socks, n * sizeof(*t));
        if (t == NULL)
            return NULL;
        memset(t + u->nsocks, 0, (n - u->nsocks) * sizeof(*t));
        u->socks = t;
        u->nsocks = n;
    }
    struct sock *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    if (uv_poll_init_socket(u->loop, &s->poll, fd) != 0) {
        free(s);
        return NULL;
    }
    s->fd = fd;
    s->u = u;
    s->kept = kept;
    s->poll.data = s;
    u->socks[fd] = s;
    return s;
}

static void sock_close(struct sock *s)
{
    s->u->socks[s->fd] = NULL;
    uv_close((uv_handle_t *)&s->poll, free_sock);
}

static void sock_watch(struct sock *s, int events)
{
    if (events == s->events)
        return;
    if (events == 0)
        uv_poll_stop(&s->poll);
    else
        uv_poll_start(&s->poll, events, on_poll);
    s->events = events;
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct sock *s = p->data;
    if (s->parked) {
        sock_watch(s, 0); /* the idle peer closed or spoke out of turn: curl sees it on reuse */
        return;
    }
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    socket_action(s->u, s->fd, flags); /* may close s */
}

static void on_timer(uv_timer_t *t)
{
    socket_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static curl_socket_t on_open_socket(void *userp, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)purpose;
    struct keel_upstream_xfer *x = userp;
    curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd < 0) {
        /* out of descriptors or kernel memory is keel's trouble; anything else (an address
         * family the host lacks) is the route's */
        if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS)
            x->local_err = 1;
        return CURL_SOCKET_BAD;
    }
    if (sock_new(x->u, fd, 1) == NULL) {
        close(fd);
        x->local_err = 1;
        return CURL_SOCKET_BAD;
    }
    return fd;
}

static int on_close_socket(void *userp, curl_socket_t fd)
{
    struct sock *s = sock_of(userp, fd);
    if (s != NULL)
        sock_close(s); /* before close(): the fd number may be reused at once */
    return close(fd);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int action, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    struct keel_upstream *u = userp;
    struct sock *s = sock_of(u, fd);
    if (action == CURL_POLL_REMOVE) {
        if (s == NULL)
            return 0;
        if (!s->kept) {
            sock_close(s);
            return 0;
        }
        s->parked = 1;
        sock_watch(s, s->events & UV_WRITABLE ? 0 : s->events); /* writable would fire at once */
        return 0;
    }
    if (s == NULL && (s = sock_new(u, fd, 0)) == NULL)
        return -1;
    s->parked = 0;
    int events = 0;
    if (action != CURL_POLL_OUT)
        events |= UV_READABLE;
    if (action != CURL_POLL_IN)
        events |= UV_WRITABLE;
    sock_watch(s, events);
    return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct keel_upstream *u = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&u->timer);
    else
        uv_timer_start(&u->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ------------------------------------------------------------------ transfer callbacks */

/* a "Name: value\r\n" line to the app's on_header, trimmed */
static void header_line(struct keel_upstream_xfer *x, const char *buf, size_t len)
{
    const char *colon = memchr(buf, ':', len), *end = buf + len;
    const char *v = colon + 1;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    x->cbs.on_header(x->ctx, buf, (size_t)(colon - buf), v, (size_t)(end - v));
}

static size_t on_header(char *buf, size_t size, size_t n, void *userp)
{
    struct keel_upstream_xfer *x = userp;
    size_t len = size * n;
    if (x->cancelled)
        return 0;
    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        x->retry_after_ms = 0; /* a new response (after a 1xx) */
        if (x->cbs.on_header != NULL)
            x->cbs.on_header(x->ctx, NULL, 0, NULL, 0);
    } else if ((len == 2 && buf[0] == '\r') || (len == 1 && buf[0] == '\n')) {
        long status = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && !x->head_sent) {
            char *ct = NULL;
            curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct);
            x->head_sent = 1;
            x->cbs.on_head(x->ctx, (int)status, ct ? ct : "", x->retry_after_ms);
            if (x->cancelled)
                return 0;
        }
    } else if (!x->head_sent && memchr(buf, ':', len) != NULL) { /* trailers are not the head's */
        if (x->cbs.on_header != NULL)
            header_line(x, buf, len);
        if (len > 12 && strncasecmp(buf, "retry-after:", 12) == 0) {
            char v[32];
            size_t i = 12, j = 0;
            while (i < len && buf[i] == ' ')
                i++;
            while (i < len && j < sizeof(v) - 1 && buf[i] >= '0' && buf[i] <= '9')
                v[j++] = buf[i++];
            v[j] = '\0';
            uint64_t secs;
            if (j > 0 && keel_parse_uint(v, &secs) == 0 && secs < 86400)
                x->retry_after_ms = secs * 1000;
        }
    }
    return len;
}

static size_t on_write(char *data, size_t size, size_t n, void *userp)
{
    struct keel_upstream_xfer *x = userp;
    if (x->cancelled)
        return 0; /* aborts the transfer */
    int rv = x->cbs.on_data(x->ctx, data, size * n);
    if (x->cancelled)
        return 0;
    return rv == KEEL_XFER_PAUSE ? CURL_WRITEFUNC_PAUSE : size * n;
}

/* ------------------------------------------------------------------ interface */

struct keel_upstream *keel_upstream_new(uv_loop_t *loop, long max_connections)
{
    static int curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        curl_ready = 1;
    }
    struct keel_upstream *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return NULL;
    u->loop = loop;
    u->multi = curl_multi_init();
    uv_timer_init(loop, &u->timer);
    u->timer.data = u;
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    /* without it the cache shrinks whenever concurrency dips (STACK trap 7) */
    curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, max_connections);
    /* http:// goes through keel's own client unless a proxy is configured in the environment
     * (curl honours it; keel's client does not speak to proxies) */
    static const char *const proxies[] = {"http_proxy", "all_proxy", "ALL_PROXY", NULL};
    int proxied = 0;
    for (size_t i = 0; proxies[i] != NULL; i++)
        proxied |= getenv(proxies[i]) != NULL && getenv(proxies[i])[0] != '\0';
    if (!proxied && (u->h1 = keel_h1_new(loop, (size_t)max_connections)) == NULL) {
        curl_multi_cleanup(u->multi);
        free(u);
        return NULL;
    }
    return u;
}

struct keel_upstream_xfer *keel_upstream_xfer_start(struct keel_upstream *u, const struct keel_upstream_spec *spec,
                                                    const struct keel_upstream_cbs *cbs, void *ctx)
{
    if (u->h1 != NULL && keel_h1_takes(spec->url))
        return (struct keel_upstream_xfer *)keel_h1_start(u->h1, spec, cbs, ctx);
    struct keel_upstream_xfer *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        if (spec->give_body)
            free((char *)spec->body);
        return NULL;
    }
    x->u = u;
    x->cbs = *cbs;
    x->ctx = ctx;
    x->stream = spec->stream != 0;
    x->easy = easy_get(u, x->stream);
    if (spec->give_body) {
        x->body = (char *)spec->body;
    } else if ((x->body = malloc(spec->body_len + 1)) != NULL) {
        if (spec->body != NULL)
            memcpy(x->body, spec->body, spec->body_len);
        x->body[spec->body ? spec->body_len : 0] = '\0';
    }
    if (x->easy == NULL || x->body == NULL) {
        xfer_free(x);
        return NULL;
    }

    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip on big bodies */
    if (spec->bearer != NULL) {
        /* "Authorization: Bearer KEY", or the header the upstream's protocol names */
        const char *name = spec->key_header ? spec->key_header : "Authorization";
        const char *scheme = spec->key_header ? "" : "Bearer ";
        size_t l = strlen(name) + strlen(scheme) + strlen(spec->bearer) + 3;
        char *line = malloc(l);
        if (line != NULL) {
            snprintf(line, l, "%s: %s%s", name, scheme, spec->bearer);
            h = curl_slist_append(h, line);
            explicit_bzero(line, l);
            free(line);
        }
    }
    for (size_t i = 0; h != NULL && i < spec->nheaders; i++)
        h = curl_slist_append(h, spec->headers[i]);
    x->headers = h;
    if (h == NULL) {
        xfer_free(x);
        return NULL;
    }
    /* every option a previous transfer on this handle may have set is set again here */
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_URL, spec->url);
    if (spec->body != NULL) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)spec->body_len);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)spec->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)spec->timeout_ms);

    if (u->in_curl > 0) {
        x->next_pending = u->to_add;
        u->to_add = x;
    } else {
        x->added = 1;
        curl_multi_add_handle(u->multi, e);
    }
    return x;
}

void keel_upstream_xfer_cancel(struct keel_upstream_xfer *x)
{
    if (x->own) {
        keel_h1_cancel((struct keel_h1_xfer *)x);
        return;
    }
    if (x->cancelled)
        return; /* already let go, or inside on_done: freed by the caller of on_done */
    x->cancelled = 1;
    struct keel_upstream *u = x->u;
    if (u->in_curl > 0) {
        /* if it waits in to_add, it is removed from there and freed with the others */
        for (struct keel_upstream_xfer **p = &u->to_add; *p != NULL; p = &(*p)->next_pending) {
            if (*p == x) {
                *p = x->next_pending;
                break;
            }
        }
        x->next_pending = u->to_remove;
        u->to_remove = x;
    } else {
        remove_and_free(x);
    }
}

void keel_upstream_xfer_resume(struct keel_upstream_xfer *x)
{
    if (x->own) {
        keel_h1_resume((struct keel_h1_xfer *)x);
        return;
    }
    struct keel_upstream *u = x->u;
    if (x->cancelled)
        return;
    u->in_curl++;
    curl_easy_pause(x->easy, CURLPAUSE_CONT); /* may call on_write right here */
    u->in_curl--;
    if (u->in_curl == 0)
        after_curl(u);
}
