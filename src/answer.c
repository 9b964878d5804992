/* answer.c - keel's own bytes to a client: headers and error envelopes; see answer.h. */
#include "answer.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fmt.h"
#include "request_t.h"

/* the attempts, as an error answer lists them (a new array) */
static json_t *attempts_json(const struct keel_request *r)
{
    json_t *arr = json_array();
    for (size_t i = 0; r != NULL && i < r->nattempts; i++) {
        const struct attempt *a = &r->attempts[i];
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:i, s:I}", "upstream", a->target->upstream->name,
                                             "model", a->target->model, "class", keel_class_name(a->cls), "status",
                                             a->status, "ms", (json_int_t)a->ms));
    }
    return arr;
}

/* x-keel-attempts: "upstream/model;class=C;status=S;ms=M, ..." */
static void attempts_header(const struct keel_request *r, char *dst, size_t n)
{
    struct keel_fmt f;
    keel_fmt_init(&f, dst, n);
    for (size_t i = 0; i < r->nattempts && !f.cut; i++) {
        const struct attempt *a = &r->attempts[i];
        if (i > 0)
            keel_fmt_str(&f, ", ");
        keel_fmt_str(&f, a->target->upstream->name);
        keel_fmt_str(&f, "/");
        keel_fmt_str(&f, a->target->model);
        keel_fmt_str(&f, ";class=");
        keel_fmt_str(&f, keel_class_name(a->cls));
        keel_fmt_str(&f, ";status=");
        keel_fmt_i64(&f, a->status);
        keel_fmt_str(&f, ";ms=");
        keel_fmt_u64(&f, a->ms);
    }
}

size_t keel_answer_headers(const struct keel_request *r, struct keel_header *hdrs, const char *content_type,
                           char *attempts_buf, size_t attempts_len)
{
    const struct keel_target_conf *t = r->target;
    attempts_header(r, attempts_buf, attempts_len);
    size_t n = 0;
    hdrs[n++] = (struct keel_header){"content-type", content_type};
    hdrs[n++] = (struct keel_header){"x-keel-request-id", r->id};
    hdrs[n++] = (struct keel_header){"x-keel-upstream", t ? t->upstream->name : "none"};
    hdrs[n++] = (struct keel_header){"x-keel-model", t ? t->model : "none"};
    hdrs[n++] = (struct keel_header){"x-keel-attempts", attempts_buf};
    return n;
}

/* a string from text that may quote a client or an upstream cut mid-character (not UTF-8):
 * its valid prefix rather than no answer at all */
static json_t *text(const char *s)
{
    json_t *j = json_string(s);
    for (size_t n = strlen(s); j == NULL && n > 0; n--)
        j = json_stringn(s, n - 1);
    return j ? j : json_string("");
}

/* OpenAI's: {"error":{"message","type","code","param"}} */
static json_t *openai_envelope(json_t *err, int status, const char *type, const char *code)
{
    json_object_set_new(err, "type", json_string(type));
    json_object_set_new(err, "code", text(code));
    json_object_set_new(err, "param", json_null());
    return json_pack("{s:o}", "error", err);
}

/* Anthropic's error type for a status (its API's list); 0, an error inside a stream, by code */
static const char *anthropic_type(int status, const char *code)
{
    switch (status) {
    case 0:
        return strcmp(code, "deadline_exceeded") == 0 ? "timeout_error"
               : strcmp(code, "overloaded") == 0      ? "overloaded_error"
                                                      : "api_error";
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 503:
    case 529:
        return "overloaded_error";
    case 504:
        return "timeout_error";
    default:
        return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

/* Anthropic's: {"type":"error","error":{"type","message"}}, keel's code beside them */
static json_t *anthropic_envelope(json_t *err, int status, const char *type, const char *code)
{
    (void)type;
    json_object_set_new(err, "type", json_string(anthropic_type(status, code)));
    json_object_set_new(err, "code", text(code));
    return json_pack("{s:s, s:o}", "type", "error", "error", err);
}

/* each client protocol's envelope around the error object {message, code, attempts, retry_after} */
static const struct {
    const char *protocol;
    json_t *(*wrap)(json_t *err, int status, const char *type, const char *code);
} envelopes[] = {
    {"openai-chat", openai_envelope},
    {"anthropic-messages", anthropic_envelope},
    {"openai-responses", openai_envelope},
    {"openai-embeddings", openai_envelope},
};

char *keel_answer_envelope(const struct keel_encoder_ops *enc, const struct keel_request *r, int status,
                           const char *type, const char *code, const char *message, uint64_t retry_after)
{
    size_t i = 0;
    while (i + 1 < sizeof(envelopes) / sizeof(envelopes[0]) && strcmp(envelopes[i].protocol, enc->protocol) != 0)
        i++;
    assert(strcmp(envelopes[i].protocol, enc->protocol) == 0);
    json_t *err = json_pack("{s:o}", "message", text(message));
    json_t *root = err ? envelopes[i].wrap(err, status, type, code) : NULL;
    if (root != NULL && r != NULL)
        json_object_set_new(err, "attempts", attempts_json(r));
    if (root != NULL && retry_after > 0)
        json_object_set_new(err, "retry_after", json_integer((json_int_t)retry_after));
    char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return s;
}

int keel_answer_should_retry(int status)
{
    return status < 400 || status == 503;
}

void keel_respond_error(struct keel_http *h, int status, const char *type, const char *code, const char *message)
{
    char *body = keel_answer_envelope(&keel_openai_chat_encoder, NULL, status, type, code, message, 0);
    struct keel_header hdrs[] = {{"content-type", "application/json"}};
    keel_http_respond(h, status, hdrs, 1, body ? body : "", body ? strlen(body) : 0);
    free(body);
}
