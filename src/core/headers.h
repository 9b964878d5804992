/* headers.h - which HTTP headers cross keel, and which way (README "Headers both ways"). keel
 * builds every upstream request's headers itself (the target's key, its protocol's) and answers
 * with its own; these allowlists add what clients and providers rely on and nothing else: a
 * header not listed never crosses, so a client's Authorization or x-api-key never goes upstream
 * and a provider's cookies or internal headers never reach the client. Pure. */
#ifndef KEEL_HEADERS_H
#define KEEL_HEADERS_H

#include <stddef.h>

/* Whether a client's request header [name, name+n) (any case) goes to a target of upstream kind
 * `kind` ("openai", "anthropic"): idempotency-key, traceparent, tracestate to any;
 * openai-organization, openai-project and OpenRouter's http-referer and x-title to an OpenAI one;
 * anthropic-beta to an Anthropic one (the caller sends it only when the client speaks Anthropic,
 * so its meaning is the same at both ends). */
int keel_header_up(const char *name, size_t n, const char *kind);

/* Whether an upstream's response header [name, name+n) (any case) goes back to the client with
 * the answer of the attempt that sent it: x-request-id and request-id (the SDKs' _request_id),
 * openai-processing-ms, retry-after, and the rate-limit families x-ratelimit-* and
 * anthropic-ratelimit-*. */
int keel_header_back(const char *name, size_t n);

#endif
