/* intake.h - the client listener's door (intake.c): each request's path and method, then a chat
 * request read and checked (JSON, depth, duplicate keys, model, x-keel-timeout, keel's limits)
 * before any upstream is chosen; what passes goes to request.c, what fails is answered here. */
#ifndef KEEL_INTAKE_H
#define KEEL_INTAKE_H

#include <stddef.h>

struct keel_http;

/* the client listener's request callback: POST /v1/chat/completions, POST /v1/messages,
 * GET /v1/models */
void keel_intake_handle(void *gw, struct keel_http *h);

/* the client listener's refusals (keel_server_refusal_cb: past max_body, max_headers, an
 * ambiguous length): counted and audited as any rejected request, answered in the envelope of
 * the protocol the path speaks */
size_t keel_intake_refusal(void *gw, const char *path, size_t pathlen, int status, const char *code,
                           const char *message, char *out, size_t cap);

#endif
