/* reqbody.c - an attempt's body; see reqbody.h. */
#include "core/reqbody.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

struct edit {
    size_t at, len;   /* the client's bytes replaced: [at, at+len); len 0 inserts at `at` */
    const char *with; /* NULL: the model name, quoted */
    size_t with_len;
};

#define STREAM_TRUE "true"
#define WITH_USAGE "{\"include_usage\":true}"
#define INSERT_STREAM "\"stream\":true,"
#define INSERT_OPTIONS "\"stream_options\":" WITH_USAGE ","

char *keel_reqbody_for(const char *body, size_t len, const struct keel_reqbody *at, const char *model,
                       enum keel_reqbody_ask ask, size_t *out_len)
{
    struct edit e[4];
    size_t n = 0;
    size_t q = keel_json_quote(model, NULL, 0);
    e[n++] = (struct edit){at->model_at, at->model_len, NULL, q};
    if (ask != KEEL_REQBODY_AS_SENT) {
        /* an absent member goes first in the object: "{" + member + "," + what the client wrote
         * (the body has a "model", so the object is never empty) */
        if (at->stream_len > 0)
            e[n++] = (struct edit){at->stream_at, at->stream_len, STREAM_TRUE, sizeof(STREAM_TRUE) - 1};
        else
            e[n++] = (struct edit){at->root_at + 1, 0, INSERT_STREAM, sizeof(INSERT_STREAM) - 1};
        if (ask != KEEL_REQBODY_STREAM_USAGE)
            ;
        else if (at->options_len > 0)
            e[n++] = (struct edit){at->options_at, at->options_len, WITH_USAGE, sizeof(WITH_USAGE) - 1};
        else
            e[n++] = (struct edit){at->root_at + 1, 0, INSERT_OPTIONS, sizeof(INSERT_OPTIONS) - 1};
    }
    /* in the order they apply (insertion sort: at most four); insertions keep their order */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && e[j].at < e[j - 1].at; j--) {
            struct edit t = e[j];
            e[j] = e[j - 1];
            e[j - 1] = t;
        }
    size_t total = len;
    for (size_t i = 0; i < n; i++) {
        assert(e[i].at + e[i].len <= len && (i == 0 || e[i - 1].at + e[i - 1].len <= e[i].at));
        total = total - e[i].len + e[i].with_len;
    }
    char *out = malloc(total + 1), *p = out;
    if (out == NULL)
        return NULL;
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, body + from, e[i].at - from);
        p += e[i].at - from;
        if (e[i].with != NULL)
            memcpy(p, e[i].with, e[i].with_len);
        else
            keel_json_quote(model, p, e[i].with_len + 1); /* writes a NUL after: overwritten next */
        p += e[i].with_len;
        from = e[i].at + e[i].len;
    }
    memcpy(p, body + from, len - from);
    p += len - from;
    *p = '\0';
    *out_len = total;
    return out;
}
