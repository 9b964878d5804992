/* answer.h - what keel writes to a client itself: the x-keel-* headers every answer carries, and
 * errors in the client protocol's envelope (OpenAI's, Anthropic's), with keel's attempts. The
 * bytes only: request.c decides when, and sends them. */
#ifndef KEEL_ANSWER_H
#define KEEL_ANSWER_H

#include <stddef.h>
#include <stdint.h>

#include "io/server.h"

struct keel_request;
struct keel_encoder_ops;

#define KEEL_ANSWER_HEADERS 8 /* the most keel_answer_headers fills, with room for two extra */

/* Fills the content type and the x-keel-* headers (request id, upstream, model, attempts) into
 * hdrs; returns how many. attempts_buf holds the x-keel-attempts value. */
size_t keel_answer_headers(const struct keel_request *r, struct keel_header *hdrs, const char *content_type,
                           char *attempts_buf, size_t attempts_len);

/* The error envelope of the client protocol enc speaks, as a malloc'd string (NULL when out of
 * memory): OpenAI's {"error":{"message","type","code","param"}} with type as given; Anthropic's
 * {"type":"error","error":{"message","type","code"}} with its type for the status (0: an error
 * event inside a stream, typed by code). attempts: the request's attempts are listed when
 * r != NULL; retry_after: seconds, 0 = none. */
char *keel_answer_envelope(const struct keel_encoder_ops *enc, const struct keel_request *r, int status,
                           const char *type, const char *code, const char *message, uint64_t retry_after);

/* Whether a client's own retry of an answer with this error status can help, for the
 * x-should-retry header the SDKs obey (they retry 408, 409, 429 and every 5xx unless told):
 * only a 503 (keel busy, its memory full, every breaker open: Retry-After says when). A 4xx is
 * the client's request (a 429 too: keel already waited what was worth waiting), a 502 a chain
 * keel walked to its end, a 504 a budget spent, a 501 a path keel does not serve: asked again,
 * each would cost the providers keel's attempts again for the same answer. */
int keel_answer_should_retry(int status);

/* answers with the envelope, no request behind it (404s and the like) */
void keel_respond_error(struct keel_http *h, int status, const char *type, const char *code, const char *message);

#endif
