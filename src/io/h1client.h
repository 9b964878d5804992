/* h1client.h - keel's own HTTP/1.1 client for plain http:// upstreams, on keel's loop, behind
 * upstream.h's interface (upstream.c hands it every transfer it takes; libcurl keeps https://
 * and anything behind a proxy). Why: per proxied request libcurl cost two poll() calls (is the
 * cached connection alive, is the answer readable), its own per-transfer work (request headers,
 * URL handling, proxy environment lookups, status-line parsing) and about 11 KB per open
 * stream; this client keeps each connection's socket read-armed for its whole life (no
 * epoll_ctl or poll per request), writes a request with one writev, and frames the answer
 * (Content-Length, chunked, or until close) itself. bench/RESULTS.md has the figures. */
#ifndef KEEL_H1CLIENT_H
#define KEEL_H1CLIENT_H

#include <stddef.h>
#include <uv.h>

#include "io/upstream.h"

struct keel_h1;
struct keel_h1_xfer;

/* a client whose idle connection pool holds at most max_idle connections */
struct keel_h1 *keel_h1_new(uv_loop_t *loop, size_t max_idle);
/* whether url is one this client takes: http://HOST[:PORT][/PATH], HOST a name, an IPv4
 * address or a bracketed IPv6 one */
int keel_h1_takes(const char *url);
/* as keel_upstream_xfer_start; the transfer's first member is an int that is 1 (upstream.c
 * tells its two kinds of transfer apart by it) */
struct keel_h1_xfer *keel_h1_start(struct keel_h1 *h, const struct keel_upstream_spec *spec,
                                   const struct keel_upstream_cbs *cbs, void *ctx);
void keel_h1_cancel(struct keel_h1_xfer *x);
void keel_h1_resume(struct keel_h1_xfer *x);

#endif
