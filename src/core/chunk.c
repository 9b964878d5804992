/* chunk.c - OpenAI answer inspection; see chunk.h. Reads the fields it needs through the span
 * scanner (core/json.h): no tree, no allocation. */
#include "core/chunk.h"

#include <string.h>

#include "core/json.h"

static void copy_code(struct keel_json v, char *code, size_t codelen)
{
    long long i;
    if (codelen == 0)
        return;
    code[0] = '\0';
    if (keel_json_type(v) == KEEL_JSON_STRING) {
        if (keel_json_string(v, code, codelen) < 0)
            code[0] = '\0';
    } else if (keel_json_int(v, &i) == 0 && (size_t)v.len < codelen) {
        memcpy(code, v.p, v.len); /* the number as written: an integer, no fraction or exponent */
        code[v.len] = '\0';
    }
}

/* an "error" member that says something: some providers send "error": null in every chunk */
static int has_error(struct keel_json root)
{
    enum keel_json_type t = keel_json_type(keel_json_get(root, "error"));
    return t != KEEL_JSON_NONE && t != KEEL_JSON_NULL;
}

/* error.code, then error.type, then top-level code/type */
static void error_code_of(struct keel_json root, char *code, size_t codelen)
{
    struct keel_json err = keel_json_get(root, "error");
    struct keel_json obj = keel_json_type(err) == KEEL_JSON_OBJECT ? err : root;
    copy_code(keel_json_get(obj, "code"), code, codelen);
    if (code[0] == '\0')
        copy_code(keel_json_get(obj, "type"), code, codelen);
    if (code[0] == '\0' && keel_json_type(err) == KEEL_JSON_STRING) /* {"error": "overloaded"} */
        copy_code(err, code, codelen);
}

static long long int_of(struct keel_json v)
{
    long long i;
    return keel_json_int(v, &i) == 0 ? i : 0;
}

static void usage_of(struct keel_json root, struct keel_usage *u)
{
    struct keel_json us = keel_json_get(root, "usage");
    if (keel_json_type(us) != KEEL_JSON_OBJECT)
        return;
    u->present = 1;
    u->prompt_tokens = int_of(keel_json_get(us, "prompt_tokens"));
    u->completion_tokens = int_of(keel_json_get(us, "completion_tokens"));
    u->total_tokens = int_of(keel_json_get(us, "total_tokens"));
}

static int delta_progresses(struct keel_json delta)
{
    if (keel_json_type(delta) != KEEL_JSON_OBJECT)
        return 0;
    if (keel_json_nonempty(keel_json_get(delta, "content")) || keel_json_nonempty(keel_json_get(delta, "reasoning")) ||
        keel_json_nonempty(keel_json_get(delta, "reasoning_content")) ||
        keel_json_nonempty(keel_json_get(delta, "refusal")))
        return 1;
    struct keel_json calls = keel_json_get(delta, "tool_calls"), call;
    size_t pos = 0;
    if (keel_json_type(calls) != KEEL_JSON_ARRAY)
        return 0;
    while (keel_json_next(calls, &pos, NULL, &call)) {
        struct keel_json fn = keel_json_get(call, "function");
        if (keel_json_nonempty(keel_json_get(fn, "arguments")) || keel_json_nonempty(keel_json_get(fn, "name")))
            return 1;
    }
    return 0;
}

static int parse_object(const char *text, size_t len, struct keel_json *root)
{
    return keel_json_parse(text, len, root) == 0 && keel_json_type(*root) == KEEL_JSON_OBJECT ? 0 : -1;
}

void keel_chunk_inspect(const char *event, const char *data, size_t len, struct keel_chunk_info *out)
{
    struct keel_json root;
    memset(out, 0, sizeof(*out));
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        out->kind = KEEL_CHUNK_DONE;
        return;
    }
    if (parse_object(data, len, &root) != 0) {
        /* `event: error` with a non-JSON payload is still an error */
        out->kind = strcmp(event, "error") == 0 ? KEEL_CHUNK_ERROR : KEEL_CHUNK_MALFORMED;
        return;
    }
    out->has_usage = keel_json_type(keel_json_get(root, "usage")) == KEEL_JSON_OBJECT;
    usage_of(root, &out->usage);
    if (strcmp(event, "error") == 0 || has_error(root)) {
        out->kind = KEEL_CHUNK_ERROR;
        error_code_of(root, out->error_code, sizeof(out->error_code));
        return;
    }
    out->kind = KEEL_CHUNK_IDLE;
    struct keel_json choices = keel_json_get(root, "choices"), choice;
    size_t pos = 0;
    if (keel_json_type(choices) != KEEL_JSON_ARRAY)
        return;
    while (keel_json_next(choices, &pos, NULL, &choice)) {
        if (delta_progresses(keel_json_get(choice, "delta"))) {
            out->kind = KEEL_CHUNK_PROGRESS;
            break;
        }
    }
}

enum keel_answer_kind keel_answer_inspect(const char *body, size_t len, char *code, size_t codelen,
                                          struct keel_usage *usage)
{
    struct keel_json root, first;
    size_t pos = 0;
    if (codelen > 0)
        code[0] = '\0';
    if (parse_object(body, len, &root) != 0)
        return KEEL_ANSWER_MALFORMED;
    if (usage != NULL)
        usage_of(root, usage);
    struct keel_json choices = keel_json_get(root, "choices");
    if (keel_json_type(choices) == KEEL_JSON_ARRAY && keel_json_next(choices, &pos, NULL, &first))
        return KEEL_ANSWER_OK;
    if (has_error(root)) {
        error_code_of(root, code, codelen);
        return KEEL_ANSWER_ERROR;
    }
    return KEEL_ANSWER_EMPTY;
}

void keel_error_code(const char *body, size_t len, char *code, size_t codelen)
{
    struct keel_json root;
    if (codelen > 0)
        code[0] = '\0';
    if (parse_object(body, len, &root) == 0)
        error_code_of(root, code, codelen);
}
