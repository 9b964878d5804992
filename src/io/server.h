/* server.h - the HTTP/1.1 server keel's listeners run on (server.c, keel's own over libuv; h2o
 * ran behind this interface before). A client's disconnect is noticed while nothing is being
 * written (STACK trap 1: the connection is read for its whole life), and a request is never
 * freed under the app (trap 2: it lives until the app's final bytes or on_gone). */
#ifndef KEEL_SERVER_H
#define KEEL_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct keel_server;
struct keel_http; /* one request and its response */

struct keel_header {
    const char *name; /* lowercase */
    const char *value;
};

/* A new request: the app owns answering it. `h` stays valid until the app sends the final bytes
 * (keel_http_respond, or keel_http_write with final) or until on_gone fires, whichever is first. */
typedef void (*keel_server_request_cb)(void *app, struct keel_http *h);
/* the last write was handed to the socket: the app may write again (backpressure, STYLE O5) */
typedef void (*keel_http_written_cb)(void *ctx);
/* the client went away before the final bytes; `h` is invalid from this call on */
typedef void (*keel_http_gone_cb)(void *ctx);

/* What a client may cost keel (config.h has the defaults and README the reasons). Each limit hit is
 * answered or the connection dropped, and counted in keel_server_stats. 0 = no limit, except
 * for idle_timeout, whose 0 means 10 s. */
struct keel_server_limits {
    uint64_t max_connections;   /* open client connections; one more is answered 503 and closed */
    uint64_t header_timeout_ms; /* accept, or a kept-alive request's first byte -> its whole head */
    uint64_t body_timeout_ms;   /* the head -> the whole body */
    uint64_t idle_timeout_ms;   /* a kept-alive connection waiting for its next request */
    uint64_t send_timeout_ms;   /* a write the client does not take: the connection is dropped */
    uint64_t max_headers;       /* header fields in a request; more gets 431 */
    uint64_t max_header_size;   /* bytes in a request's head; more gets 431 */
};

struct keel_server_stats {
    uint64_t accepted;        /* connections accepted so far */
    uint64_t open;            /* connections open now */
    uint64_t refused;         /* connections answered 503 at max_connections */
    uint64_t header_timeouts; /* dropped: the head was not in within header_timeout */
    uint64_t body_timeouts;   /* dropped: the body was not in within body_timeout */
    uint64_t send_timeouts;   /* dropped: a write was not taken within send_timeout */
    uint64_t headers_too_large; /* answered 431 */
    uint64_t ambiguous;       /* answered 400: Content-Length with Transfer-Encoding, or two lengths */
};

/* Binds host:port (port 0 = any free port); NULL with a message in err on failure. */
struct keel_server *keel_server_new(uv_loop_t *loop, const char *host, int port, size_t max_body,
                                    keel_server_request_cb on_request, void *app, char *err, size_t errlen);
/* The same, as one of several listeners on host:port, each on its own loop (SO_REUSEPORT; the
 * first may ask for port 0, the others then bind keel_server_port of it). open_shared counts
 * the connections open on all of them, for max_connections. */
struct keel_server *keel_server_new_shared(uv_loop_t *loop, const char *host, int port, size_t max_body,
                                           keel_server_request_cb on_request, void *app, uint64_t *open_shared,
                                           char *err, size_t errlen);
/* A refusal the server answers itself (a limit, an ambiguous head, a body over max_body), written
 * as the body the client's protocol reads, which the app picks by the request's path: its length
 * (0: it has none, or out is too small). Without one the server writes OpenAI's envelope. */
typedef size_t (*keel_server_refusal_cb)(void *app, const char *path, size_t pathlen, int status, const char *code,
                                         const char *message, char *out, size_t cap);
void keel_server_set_refusal(struct keel_server *s, keel_server_refusal_cb cb);
int keel_server_port(const struct keel_server *s);
uint64_t keel_server_accepted(const struct keel_server *s); /* connections accepted so far */
/* sets (or, on a reload, changes) the limits; until called, none but max_body (and 10 s idle) */
void keel_server_set_limits(struct keel_server *s, const struct keel_server_limits *l);
const struct keel_server_stats *keel_server_stats(const struct keel_server *s);
/* adds s's counters to *sum, read as they stand from any thread (keel_server_stats is s's loop's) */
void keel_server_stats_add(const struct keel_server *s, struct keel_server_stats *sum);
/* stops accepting; requests under way go on */
void keel_server_stop_accepting(struct keel_server *s);

/* request accessors; returned pointers live as long as h */
const char *keel_http_method(struct keel_http *h, size_t *len);
const char *keel_http_path(struct keel_http *h, size_t *len); /* without the query */
const char *keel_http_query(struct keel_http *h, size_t *len); /* after the '?', "" when none */
const char *keel_http_body(struct keel_http *h, size_t *len);
const char *keel_http_header(struct keel_http *h, const char *name, size_t *len); /* NULL if absent */
/* every request header in turn: its name (lower case) and value, i below the count */
size_t keel_http_header_count(struct keel_http *h);
void keel_http_header_at(struct keel_http *h, size_t i, const char **name, size_t *nlen, const char **value,
                         size_t *vlen);

/* The app's final bytes were taken by the client (delivered = 1), or the connection was dropped
 * before they were (a send_timeout, a reset): called once, when the server lets go of `h`. */
typedef void (*keel_http_delivered_cb)(void *ctx, int delivered);
/* Asks for that call; set it before the final bytes (keel_http_respond, a final write). */
void keel_http_on_delivered(struct keel_http *h, keel_http_delivered_cb cb, void *ctx);

/* From now on on_gone fires if the client disconnects, even while the app writes nothing. */
void keel_http_watch(struct keel_http *h, keel_http_gone_cb on_gone, void *ctx);
/* Looks at the client's socket now: if it has left, on_gone fires before this returns 1 (h is
 * then invalid); 0 while it is there. For a verdict that must not blame an upstream for a
 * client that left between two peeks. */
int keel_http_check_gone(struct keel_http *h);
/* The whole response at once, with Content-Length; body is copied. h is done. */
void keel_http_respond(struct keel_http *h, int status, const struct keel_header *hdrs, size_t nhdrs,
                       const char *body, size_t len);
/* Starts a response of unknown length (chunked); headers leave with the first write. */
void keel_http_start(struct keel_http *h, int status, const struct keel_header *hdrs, size_t nhdrs,
                     keel_http_written_cb on_written);
/* One write at a time: call again only after on_written. data is copied. With final, h is done. */
/* returns -1 if the write could not be made (out of memory): h is done, and on_gone will not fire */
int keel_http_write(struct keel_http *h, const char *data, size_t len, int final);
/* Drops the connection abruptly (the fault simulator's resets). h is done; on_gone won't fire. */
void keel_http_abort(struct keel_http *h);

#endif
