/* answer.c - keel's own bytes to a client: headers and error envelopes; see answer.h. */
#include "answer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request_t.h"

void *keel_answer_attempts_json(const struct keel_request *r, int for_audit)
{
    json_t *arr = json_array();
    for (size_t i = 0; r != NULL && i < r->nattempts; i++) {
        const struct attempt *a = &r->attempts[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:I}", "upstream", a->target->upstream->name, "model",
                              a->target->model, "class", keel_class_name(a->cls), "status", a->status, "ms",
                              (json_int_t)a->ms);
        if (for_audit) { /* the audit's: also what protocol the target speaks */
            json_object_set_new(o, "ttft_ms", json_integer((json_int_t)a->ttft_ms));
            json_object_set_new(o, "kind", json_string(a->target->upstream->kind));
        }
        json_array_append_new(arr, o);
    }
    return arr;
}

/* x-keel-attempts: "upstream/model;class=C;status=S;ms=M, ..." */
static void attempts_header(const struct keel_request *r, char *dst, size_t n)
{
    size_t off = 0;
    dst[0] = '\0';
    for (size_t i = 0; i < r->nattempts && off < n; i++) {
        const struct attempt *a = &r->attempts[i];
        int w = snprintf(dst + off, n - off, "%s%s/%s;class=%s;status=%d;ms=%llu", i ? ", " : "",
                         a->target->upstream->name, a->target->model, keel_class_name(a->cls), a->status,
                         (unsigned long long)a->ms);
        if (w < 0)
            break;
        off += (size_t)w;
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

char *keel_answer_envelope(const struct keel_request *r, const char *type, const char *code, const char *message,
                           uint64_t retry_after)
{
    json_t *err = json_pack("{s:o, s:s, s:o, s:n}", "message", text(message), "type", type, "code", text(code),
                            "param");
    if (r != NULL)
        json_object_set_new(err, "attempts", keel_answer_attempts_json(r, 0));
    if (retry_after > 0)
        json_object_set_new(err, "retry_after", json_integer((json_int_t)retry_after));
    json_t *root = json_pack("{s:o}", "error", err);
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

void keel_respond_error(struct keel_http *h, int status, const char *type, const char *code, const char *message)
{
    char *body = keel_answer_envelope(NULL, type, code, message, 0);
    struct keel_header hdrs[] = {{"content-type", "application/json"}};
    keel_http_respond(h, status, hdrs, 1, body ? body : "", body ? strlen(body) : 0);
    free(body);
}
