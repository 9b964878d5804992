/* request.h - one client request's whole life (request.c): parse, route along the model's
 * fallback chain, attempt, classify, fail over or relay, answer. */
#ifndef KEEL_REQUEST_H
#define KEEL_REQUEST_H

struct keel_gateway;
struct keel_http;

/* the client listener's request callback: POST /v1/chat/completions, GET /v1/models */
void keel_request_handle(void *gw, struct keel_http *h);

/* answers with the OpenAI error envelope {"error":{message,type,code,param}} */
void keel_respond_error(struct keel_http *h, int status, const char *type, const char *code, const char *message);

#endif
