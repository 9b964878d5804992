/* chunk.h - what an OpenAI answer says, judged without I/O: a stream event's data (content
 * progress or not, an error, the end), a non-stream answer's body (choices or none) and a
 * provider error body's code. DESIGN.md "Content progress" is the rule implemented here. */
#ifndef KEEL_CHUNK_H
#define KEEL_CHUNK_H

#include <stddef.h>

enum keel_chunk_kind {
    KEEL_CHUNK_DONE,       /* the "[DONE]" sentinel */
    KEEL_CHUNK_PROGRESS,   /* carries something the agent reads */
    KEEL_CHUNK_IDLE,       /* well-formed but no progress: role-only, empty delta, usage-only */
    KEEL_CHUNK_ERROR,      /* an error object or `event: error` */
    KEEL_CHUNK_MALFORMED,  /* not a JSON object */
};

/* token counts an answer reported (OpenAI "usage") */
struct keel_usage {
    int present;
    long long prompt_tokens, completion_tokens, total_tokens;
    long long cached_tokens; /* of prompt_tokens, read from the provider's prompt cache (OpenAI's
                              * prompt_tokens_details.cached_tokens, Anthropic's
                              * cache_read_input_tokens); 0 when it says none */
};

struct keel_chunk_info {
    enum keel_chunk_kind kind;
    int has_usage;       /* a usage object rode on the chunk */
    int finished;        /* a choice's finish reason rode on it (OpenAI chunks): a stream that ends
                          * without [DONE] after one is whole, one that ends before was cut */
    struct keel_usage usage;
    char error_code[64]; /* for KEEL_CHUNK_ERROR: the provider's code or type, "" if none */
};

/* `data` need not be NUL-terminated; `event` is the SSE event name ("message" by default) */
void keel_chunk_inspect(const char *event, const char *data, size_t len, struct keel_chunk_info *out);

enum keel_answer_kind {
    KEEL_ANSWER_OK,        /* an object with a non-empty choices array */
    KEEL_ANSWER_EMPTY,     /* an object without choices, or with none in it */
    KEEL_ANSWER_ERROR,     /* an object carrying an error and no choices */
    KEEL_ANSWER_MALFORMED, /* not a JSON object */
};

/* usage may be NULL */
enum keel_answer_kind keel_answer_inspect(const char *body, size_t len, char *code, size_t codelen,
                                          struct keel_usage *usage);

/* Copies the provider's error code (error.code, else error.type, else a top-level code/type)
 * from an error body into `code`; "" when the body says none. */
void keel_error_code(const char *body, size_t len, char *code, size_t codelen);

#endif
