/* server.h - the HTTP/1.1 server keel's listeners run on, with h2o behind this narrow interface
 * (STACK.md) so that a hand-written server could replace it. It adds what h2o lacks: the client's
 * disconnect is noticed while nothing is being written (STACK trap 1), and a request freed under
 * us is reported, never touched (trap 2). */
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

/* Binds host:port (port 0 = any free port); NULL with a message in err on failure. */
struct keel_server *keel_server_new(uv_loop_t *loop, const char *host, int port, size_t max_body,
                                    keel_server_request_cb on_request, void *app, char *err, size_t errlen);
int keel_server_port(const struct keel_server *s);
uint64_t keel_server_accepted(const struct keel_server *s); /* connections accepted so far */
/* stops accepting; requests under way go on */
void keel_server_stop_accepting(struct keel_server *s);

/* request accessors; returned pointers live as long as h */
const char *keel_http_method(struct keel_http *h, size_t *len);
const char *keel_http_path(struct keel_http *h, size_t *len); /* without the query */
const char *keel_http_body(struct keel_http *h, size_t *len);
const char *keel_http_header(struct keel_http *h, const char *name, size_t *len); /* NULL if absent */

/* From now on on_gone fires if the client disconnects, even while the app writes nothing. */
void keel_http_watch(struct keel_http *h, keel_http_gone_cb on_gone, void *ctx);
/* The whole response at once, with Content-Length; body is copied. h is done. */
void keel_http_respond(struct keel_http *h, int status, const struct keel_header *hdrs, size_t nhdrs,
                       const char *body, size_t len);
/* Starts a response of unknown length (chunked); headers leave with the first write. */
void keel_http_start(struct keel_http *h, int status, const struct keel_header *hdrs, size_t nhdrs,
                     keel_http_written_cb on_written);
/* One write at a time: call again only after on_written. data is copied. With final, h is done. */
void keel_http_write(struct keel_http *h, const char *data, size_t len, int final);
/* Drops the connection abruptly (the fault simulator's resets). h is done; on_gone won't fire. */
void keel_http_abort(struct keel_http *h);

#endif
