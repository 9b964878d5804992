/* chunk.c - OpenAI answer inspection; see chunk.h. Parses with jansson, allocates nothing that
 * outlives a call. */
#include "core/chunk.h"

#include <jansson.h>
#include <string.h>

static void copy_code(json_t *v, char *code, size_t codelen)
{
    if (codelen == 0)
        return;
    code[0] = '\0';
    if (json_is_string(v)) {
        snprintf(code, codelen, "%s", json_string_value(v));
    } else if (json_is_integer(v)) {
        snprintf(code, codelen, "%lld", (long long)json_integer_value(v));
    }
}

/* error.code, then error.type, then top-level code/type */
static void error_code_of(json_t *root, char *code, size_t codelen)
{
    json_t *err = json_object_get(root, "error");
    json_t *obj = json_is_object(err) ? err : root;
    copy_code(json_object_get(obj, "code"), code, codelen);
    if (code[0] == '\0')
        copy_code(json_object_get(obj, "type"), code, codelen);
    if (code[0] == '\0' && json_is_string(err)) /* {"error": "overloaded"} */
        copy_code(err, code, codelen);
}

static void usage_of(json_t *root, struct keel_usage *u)
{
    json_t *us = json_object_get(root, "usage");
    if (!json_is_object(us))
        return;
    u->present = 1;
    u->prompt_tokens = json_integer_value(json_object_get(us, "prompt_tokens"));
    u->completion_tokens = json_integer_value(json_object_get(us, "completion_tokens"));
    u->total_tokens = json_integer_value(json_object_get(us, "total_tokens"));
}

static int nonempty_string(json_t *v)
{
    return json_is_string(v) && json_string_length(v) > 0;
}

static int delta_progresses(json_t *delta)
{
    if (!json_is_object(delta))
        return 0;
    if (nonempty_string(json_object_get(delta, "content")) ||
        nonempty_string(json_object_get(delta, "reasoning")) ||
        nonempty_string(json_object_get(delta, "reasoning_content")) ||
        nonempty_string(json_object_get(delta, "refusal")))
        return 1;
    json_t *calls = json_object_get(delta, "tool_calls");
    size_t i;
    json_t *call;
    json_array_foreach(calls, i, call)
    {
        json_t *fn = json_object_get(call, "function");
        if (nonempty_string(json_object_get(fn, "arguments")) || nonempty_string(json_object_get(fn, "name")))
            return 1;
    }
    return 0;
}

void keel_chunk_inspect(const char *event, const char *data, size_t len, struct keel_chunk_info *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        out->kind = KEEL_CHUNK_DONE;
        return;
    }
    json_t *root = json_loadb(data, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        /* `event: error` with a non-JSON payload is still an error */
        out->kind = strcmp(event, "error") == 0 ? KEEL_CHUNK_ERROR : KEEL_CHUNK_MALFORMED;
        return;
    }
    out->has_usage = json_is_object(json_object_get(root, "usage"));
    usage_of(root, &out->usage);
    if (strcmp(event, "error") == 0 || json_object_get(root, "error") != NULL) {
        out->kind = KEEL_CHUNK_ERROR;
        error_code_of(root, out->error_code, sizeof(out->error_code));
        json_decref(root);
        return;
    }
    out->kind = KEEL_CHUNK_IDLE;
    size_t i;
    json_t *choice;
    json_array_foreach(json_object_get(root, "choices"), i, choice)
    {
        if (delta_progresses(json_object_get(choice, "delta"))) {
            out->kind = KEEL_CHUNK_PROGRESS;
            break;
        }
    }
    json_decref(root);
}

enum keel_answer_kind keel_answer_inspect(const char *body, size_t len, char *code, size_t codelen,
                                          struct keel_usage *usage)
{
    if (codelen > 0)
        code[0] = '\0';
    json_t *root = json_loadb(body, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return KEEL_ANSWER_MALFORMED;
    }
    if (usage != NULL)
        usage_of(root, usage);
    json_t *choices = json_object_get(root, "choices");
    enum keel_answer_kind kind = KEEL_ANSWER_EMPTY;
    if (json_is_array(choices) && json_array_size(choices) > 0) {
        kind = KEEL_ANSWER_OK;
    } else if (json_object_get(root, "error") != NULL) {
        kind = KEEL_ANSWER_ERROR;
        error_code_of(root, code, codelen);
    }
    json_decref(root);
    return kind;
}

void keel_error_code(const char *body, size_t len, char *code, size_t codelen)
{
    if (codelen > 0)
        code[0] = '\0';
    json_t *root = json_loadb(body, len, 0, NULL);
    if (json_is_object(root))
        error_code_of(root, code, codelen);
    json_decref(root);
}
