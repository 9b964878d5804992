/* reqbody.h - the body an attempt sends: the client's bytes as sent, but for the target's model
 * name in place of the alias and, when keel asks the target for a stream the client did not ask
 * for (stream_upstream), "stream": true, with "stream_options": {"include_usage": true} for an
 * OpenAI target. Built by
 * splicing spans, never by re-serialising: what the client wrote reaches the upstream as
 * written (float digits, escapes, key order). Pure. */
#ifndef KEEL_REQBODY_H
#define KEEL_REQBODY_H

#include <stddef.h>

/* where the client's top-level members sit in its body: byte offsets; a length of 0 is absent */
struct keel_reqbody {
    size_t root_at;                /* the object's '{' */
    size_t model_at, model_len;    /* "model"'s value */
    size_t stream_at, stream_len;  /* "stream"'s value */
    size_t options_at, options_len; /* "stream_options"'s value */
};

/* what an attempt's body asks for beside the client's own request */
enum keel_reqbody_ask {
    KEEL_REQBODY_AS_SENT,      /* stream as the client set it */
    KEEL_REQBODY_STREAM,       /* "stream": true (Anthropic streams always carry usage) */
    KEEL_REQBODY_STREAM_USAGE, /* and "stream_options": {"include_usage": true} (OpenAI's) */
};

/* The attempt's body, malloc'd and NUL-terminated (its length in *out_len); NULL when out of
 * memory. model: the target's model name (quoted here). */
char *keel_reqbody_for(const char *body, size_t len, const struct keel_reqbody *at, const char *model,
                       enum keel_reqbody_ask ask, size_t *out_len);

#endif
