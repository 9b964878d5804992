/* upstream.h - HTTP requests to upstreams: libcurl's multi interface driven by the libuv loop,
 * one shared connection cache. It moves bytes and reports transport failures as keel_err_*
 * identities; judging them is classify's job. */
#ifndef KEEL_UPSTREAM_H
#define KEEL_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct keel_upstream;      /* the multi handle and its loop bridge */
struct keel_upstream_xfer; /* one HTTP request */

/* What on_data returns. */
enum { KEEL_XFER_CONSUMED = 0, KEEL_XFER_PAUSE = 1 };

struct keel_upstream_cbs {
    /* the response head arrived (final status, never 1xx); content_type may be "" */
    void (*on_head)(void *ctx, int status, const char *content_type, uint64_t retry_after_ms);
    /* body bytes; return KEEL_XFER_PAUSE to hand them back unconsumed (they come again after
     * keel_upstream_xfer_resume) */
    int (*on_data)(void *ctx, const char *data, size_t len);
    /* the transfer ended: err is NULL or a keel_err_* identity; the xfer is freed after return */
    void (*on_done)(void *ctx, const char *err, const char *detail);
    /* one header of a response (name and value trimmed, not NUL-terminated); a new response
     * after a 1xx starts with name NULL: what came before is void. NULL: none wanted */
    void (*on_header)(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen);
};

struct keel_upstream_spec {
    const char *url;
    const char *bearer; /* secret: goes into the Authorization header only; may be NULL */
    const char *key_header;   /* NULL: bearer as "Authorization: Bearer"; else the header it goes in as is */
    const char *const *headers; /* more "Name: value" lines, [nheaders] */
    size_t nheaders;
    const char *body;   /* JSON; copied, unless give_body. NULL: a GET */
    size_t body_len;
    int give_body;      /* body is malloc'd, NUL-terminated, and the transfer frees it (also when
                           keel_upstream_xfer_start fails) */
    int stream;         /* an event stream is expected: small reads, held open long */
    uint64_t connect_timeout_ms;
    uint64_t timeout_ms; /* the whole transfer (0 = none: request.c runs its own deadlines) */
};

struct keel_upstream *keel_upstream_new(uv_loop_t *loop, long max_connections);
/* Starts a transfer; NULL on failure (out of memory). Callbacks run from the loop. */
struct keel_upstream_xfer *keel_upstream_xfer_start(struct keel_upstream *u, const struct keel_upstream_spec *spec,
                                                    const struct keel_upstream_cbs *cbs, void *ctx);
/* Stops a transfer at once; no callback fires after. Safe inside the xfer's own callbacks. */
void keel_upstream_xfer_cancel(struct keel_upstream_xfer *x);
/* Resumes a paused transfer; may call on_data before returning. */
void keel_upstream_xfer_resume(struct keel_upstream_xfer *x);

#endif
