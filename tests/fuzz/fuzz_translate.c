/* fuzz_translate.c - libFuzzer driver for the request translators (core/translate.h): the input
 * as a client's request body through keel_translate_chat_to_messages,
 * keel_translate_messages_to_chat and keel_translate_responses_to_chat, each asked for no stream and for a stream, and once more with
 * small err and dropped buffers. Never a crash or leak; a body translated is a JSON object of the
 * keys the header lists in its order, "model" the one passed, its length *out_len, and the shape
 * the target's protocol wants; a body refused has *out_len 0 and a message ("" only when out of
 * memory, which cannot happen here); err and dropped are NUL-terminated within their sizes,
 * dropped a list of whole, distinct names. The stream flag changes only the stream keys; the
 * buffers' sizes change only how much of err and dropped fits. The input as a body to continue
 * (core/continue.h's keel_prefill_body) for both target kinds: refused, or a JSON object whose
 * last message is the assistant's and ends with the prefill (its trailing whitespace cut for
 * Anthropic, and `thinking` gone), with continuation_body's member set. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/continue.h"
#include "core/translate.h"

#define MODEL "fuzz-model \"q\" \\ \xc3\xa9"
#define ERR_LEN 256
#define DROPPED_LEN 8192
#define NAME_MAX_LEN 63 /* translate.c cuts a dropped name there */

/* an invariant broken is a finding: say which, then abort so libFuzzer keeps the input */
static void broken(int line, const char *what)
{
    fprintf(stderr, "fuzz_translate.c:%d: invariant broken: %s\n", line, what);
    abort();
}

enum dir { TO_MESSAGES, TO_CHAT, RESPONSES_TO_CHAT };

/* one translation and what came back */
struct call {
    char *out; /* the translator's, NULL when refused */
    size_t out_len;
    char *err;     /* errlen bytes exactly, so ASan sees a write past them */
    size_t errlen;
    char *dropped; /* droppedlen bytes exactly; NULL when 0 */
    size_t droppedlen;
};

/* ---- the dropped list ---- */

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("_.[]-?", c) != NULL;
}

/* whether list (comma-separated) holds name[0..n) */
static int listed(const char *list, const char *name, size_t n)
{
    for (const char *p = list; *p != '\0';) {
        size_t m = strcspn(p, ",");
        if (m == n && memcmp(p, name, n) == 0)
            return 1;
        p += m + (p[m] == ',');
    }
    return 0;
}

/* whole names of [A-Za-z0-9_.[]-?], 1 to 63 bytes each, comma-separated, each once */
static void check_dropped(const char *list)
{
    const char *p = list;
    if (*p == '\0')
        return;
    for (;;) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n > NAME_MAX_LEN)
            broken(__LINE__, "an empty or over-long name in dropped");
        for (size_t i = 0; i < n; i++)
            if (!name_char(p[i]))
                broken(__LINE__, "a byte in dropped no name holds");
        for (const char *q = list; q < p;) {
            size_t m = strcspn(q, ",");
            if (m == n && memcmp(q, p, n) == 0)
                broken(__LINE__, "a name twice in dropped");
            q += m + 1;
        }
        if (p[n] == '\0')
            return;
        p += n + 1;
    }
}

/* ---- the output's shape ---- */

/* v's keys, in order, are among keys[] in that order */
static void check_order(json_t *v, const char *const *keys)
{
    const char *key;
    json_t *el;
    size_t k = 0;
    json_object_foreach(v, key, el) {
        while (keys[k] != NULL && strcmp(keys[k], key) != 0)
            k++;
        if (keys[k] == NULL)
            broken(__LINE__, "a key the header does not list, or out of its order");
        k++;
    }
}

/* empty or whitespace only (what Anthropic refuses as a text block) */
static int blank(json_t *s)
{
    const char *p = json_string_value(s);
    size_t n = json_string_length(s);
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            return 0;
    return 1;
}

/* an Anthropic Messages body as translate.h says keel_translate_chat_to_messages writes it */
static void check_messages_body(json_t *v, int stream)
{
    static const char *const keys[] = {"model",       "max_tokens", "system", "messages",   "stop_sequences",
                                       "temperature", "top_p",      "thinking", "tools",    "tool_choice",
                                       "metadata",    "stream",     NULL};
    json_t *msgs = json_object_get(v, "messages"), *m, *block, *thinking = json_object_get(v, "thinking");
    json_t *temp = json_object_get(v, "temperature"), *max = json_object_get(v, "max_tokens");
    size_t i, j;
    const char *prev = NULL;
    check_order(v, keys);
    if (!json_is_integer(max) || json_integer_value(max) <= 0)
        broken(__LINE__, "max_tokens is no positive integer");
    if (msgs != NULL && !json_is_array(msgs))
        broken(__LINE__, "messages is no array");
    json_array_foreach(msgs, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        if (role == NULL || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0))
            broken(__LINE__, "a turn neither user nor assistant");
        if (prev != NULL && strcmp(prev, role) == 0)
            broken(__LINE__, "two turns of one role in a row (Anthropic alternates)");
        prev = role;
        if (!json_is_array(content) || json_array_size(content) == 0)
            broken(__LINE__, "a turn without content blocks");
        json_array_foreach(content, j, block) {
            const char *type = json_string_value(json_object_get(block, "type"));
            if (type == NULL)
                broken(__LINE__, "a content block without its type");
            if (strcmp(type, "text") == 0 && (!json_is_string(json_object_get(block, "text")) ||
                                              blank(json_object_get(block, "text"))))
                broken(__LINE__, "a blank text block (Anthropic refuses it)");
        }
    }
    if (thinking != NULL) {
        json_t *budget = json_object_get(thinking, "budget_tokens");
        if (!json_is_integer(budget) || json_integer_value(max) <= json_integer_value(budget) || temp != NULL)
            broken(__LINE__, "thinking's budget not below max_tokens, or temperature with thinking");
    }
    if (temp != NULL && (!json_is_number(temp) || json_number_value(temp) < 0 || json_number_value(temp) > 1))
        broken(__LINE__, "temperature outside [0, 1]");
    if (json_object_get(v, "tool_choice") != NULL && json_object_get(v, "tools") == NULL)
        broken(__LINE__, "tool_choice without tools");
    if (stream ? !json_is_true(json_object_get(v, "stream")) : json_object_get(v, "stream") != NULL)
        broken(__LINE__, "stream not as asked");
}

/* the keys keel_translate_messages_to_chat writes, in their order */
static const char *const from_messages[] = {"model",       "messages",       "max_completion_tokens",
                                            "stop",        "temperature",    "top_p",
                                            "reasoning_effort", "tools",     "tool_choice",
                                            "parallel_tool_calls", "user",   "stream",
                                            "stream_options", NULL};
/* and keel_translate_responses_to_chat */
static const char *const from_responses[] = {
    "model",           "messages",          "max_completion_tokens", "temperature",     "top_p",
    "reasoning_effort", "verbosity",        "response_format",       "tools",           "tool_choice",
    "parallel_tool_calls", "logprobs",      "top_logprobs",          "user",            "safety_identifier",
    "prompt_cache_key", "prompt_cache_retention", "service_tier",    "stream",          "stream_options",
    NULL};

/* an OpenAI chat body as translate.h says the translator whose keys those are writes it (the
 * Responses one passes reasoning effort as sent) */
static void check_chat_body(json_t *v, int stream, const char *const *keys)
{
    json_t *msgs = json_object_get(v, "messages"), *m, *opts = json_object_get(v, "stream_options");
    const char *effort = json_string_value(json_object_get(v, "reasoning_effort"));
    size_t i;
    check_order(v, keys);
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        broken(__LINE__, "no messages");
    json_array_foreach(msgs, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (role == NULL || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0 &&
                             strcmp(role, "tool") != 0 && (strcmp(role, "system") != 0 || i > 0)))
            broken(__LINE__, "a message of a role the translation does not write");
        if (strcmp(role, "tool") == 0 && (!json_is_string(json_object_get(m, "tool_call_id")) ||
                                          !json_is_string(json_object_get(m, "content"))))
            broken(__LINE__, "a tool message without its id or string content");
    }
    if (json_object_get(v, "reasoning_effort") != NULL && keys == from_messages &&
        (effort == NULL ||
         (strcmp(effort, "low") != 0 && strcmp(effort, "medium") != 0 && strcmp(effort, "high") != 0)))
        broken(__LINE__, "a reasoning_effort OpenAI does not take");
    if ((json_object_get(v, "tool_choice") != NULL || json_object_get(v, "parallel_tool_calls") != NULL) &&
        json_object_get(v, "tools") == NULL)
        broken(__LINE__, "tool_choice or parallel_tool_calls without tools");
    if (stream ? !json_is_true(json_object_get(v, "stream")) || json_object_size(opts) != 1 ||
                     !json_is_true(json_object_get(opts, "include_usage"))
               : json_object_get(v, "stream") != NULL || opts != NULL)
        broken(__LINE__, "stream and stream_options not as asked");
}

/* ---- one call ---- */

/* the body d[0..n) translated in direction dir into c, every invariant of one call checked */
static void translate(enum dir dir, const uint8_t *d, size_t n, int stream, uint64_t max_tokens, size_t errlen,
                      size_t droppedlen, struct call *c)
{
    c->errlen = errlen;
    c->droppedlen = droppedlen;
    c->err = malloc(errlen);
    c->dropped = droppedlen > 0 ? malloc(droppedlen) : NULL;
    if (c->err == NULL || (droppedlen > 0 && c->dropped == NULL))
        abort();
    memset(c->err, 'x', errlen);
    if (droppedlen > 0)
        memset(c->dropped, 'x', droppedlen);
    c->out_len = 12345;
    if (dir == TO_MESSAGES) {
        struct keel_translate_opts o = {.model = MODEL, .stream = stream, .default_max_tokens = max_tokens};
        c->out = keel_translate_chat_to_messages((const char *)d, n, &o, &c->out_len, c->err, errlen, c->dropped,
                                                 droppedlen);
    } else if (dir == TO_CHAT) {
        struct keel_translate_chat_opts o = {.model = MODEL, .stream = stream};
        c->out = keel_translate_messages_to_chat((const char *)d, n, &o, &c->out_len, c->err, errlen, c->dropped,
                                                 droppedlen);
    } else {
        struct keel_translate_responses_opts o = {.model = MODEL, .stream = stream};
        c->out = keel_translate_responses_to_chat((const char *)d, n, &o, &c->out_len, c->err, errlen, c->dropped,
                                                  droppedlen);
    }
    if (memchr(c->err, '\0', errlen) == NULL)
        broken(__LINE__, "err not NUL-terminated within its size");
    if (droppedlen > 0 && memchr(c->dropped, '\0', droppedlen) == NULL)
        broken(__LINE__, "dropped not NUL-terminated within its size");
    if (droppedlen > 0)
        check_dropped(c->dropped);
    if (c->out == NULL) {
        if (c->out_len != 0)
            broken(__LINE__, "refused, and *out_len is not 0");
        if (errlen > 1 && c->err[0] == '\0')
            broken(__LINE__, "refused without a message (\"\" says out of memory)");
        return;
    }
    if (c->out_len != strlen(c->out))
        broken(__LINE__, "*out_len is not the output's length");
    if (c->err[0] != '\0')
        broken(__LINE__, "translated, with an error message");
    json_error_t err;
    json_t *v = json_loadb(c->out, c->out_len, JSON_ALLOW_NUL, &err);
    if (!json_is_object(v))
        broken(__LINE__, "the output is no JSON object");
    const char *model = json_string_value(json_object_get(v, "model"));
    if (model == NULL || strcmp(model, MODEL) != 0)
        broken(__LINE__, "the output's model is not the one passed");
    if (dir == TO_MESSAGES)
        check_messages_body(v, stream);
    else
        check_chat_body(v, stream, dir == TO_CHAT ? from_messages : from_responses);
    json_decref(v);
}

static void release(struct call *c)
{
    free(c->out);
    free(c->err);
    free(c->dropped);
}

/* the output parsed, without the keys a stream adds */
static json_t *without_stream(const struct call *c)
{
    json_error_t err;
    json_t *v = json_loadb(c->out, c->out_len, JSON_ALLOW_NUL, &err);
    json_object_del(v, "stream");
    json_object_del(v, "stream_options");
    return v;
}

/* One direction: no stream (a), a stream (b), no stream with small buffers (sm). The stream flag
 * changes the stream keys only; small buffers hold a prefix of err and some of the names. */
static void direction(enum dir dir, const uint8_t *d, size_t n)
{
    static const uint64_t defaults[] = {1, 1000, 100000, UINT64_MAX};
    uint64_t max_tokens = defaults[n % 4];
    struct call a, b, sm;
    translate(dir, d, n, 0, max_tokens, ERR_LEN, DROPPED_LEN, &a);
    translate(dir, d, n, 1, max_tokens, ERR_LEN, DROPPED_LEN, &b);
    translate(dir, d, n, 0, max_tokens, 2 + n % 30, n % 40, &sm);
    if ((a.out == NULL) != (b.out == NULL) || strcmp(a.err, b.err) != 0 || strcmp(a.dropped, b.dropped) != 0)
        broken(__LINE__, "with and without a stream, a different verdict, err or dropped");
    if (a.out != NULL) {
        json_t *x = without_stream(&a), *y = without_stream(&b);
        if (!json_equal(x, y))
            broken(__LINE__, "with and without a stream, different bodies beyond the stream keys");
        json_decref(x);
        json_decref(y);
    }
    if ((a.out == NULL) != (sm.out == NULL) || (a.out != NULL && strcmp(a.out, sm.out) != 0))
        broken(__LINE__, "with small buffers, a different verdict or body");
    if (strncmp(a.err, sm.err, strlen(sm.err)) != 0)
        broken(__LINE__, "with a small err, not a prefix of the message");
    /* every name that fit a small list is in the whole one, unless that one was full */
    if (sm.dropped != NULL && strlen(a.dropped) + NAME_MAX_LEN + 2 < DROPPED_LEN) {
        for (const char *p = sm.dropped; *p != '\0';) {
            size_t m = strcspn(p, ",");
            if (!listed(a.dropped, p, m))
                broken(__LINE__, "a name in a small dropped list that the whole one has not");
            p += m + (p[m] == ',');
        }
    }
    if (getenv("KEEL_FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "%s: %s\n  err \"%s\" dropped \"%s\"\n", dir == TO_MESSAGES ? "to messages" : dir == TO_CHAT ? "to chat" : "responses to chat",
                a.out != NULL ? a.out : "(refused)", a.err, a.dropped);
    release(&a);
    release(&b);
    release(&sm);
}

/* ---- the continuation's prefill ---- */

static void prefill(const uint8_t *data, size_t size, const char *kind)
{
    static const char text[] = "Hello \"fr\" \\ \xc3\xa9 \n";
    int anthropic = strcmp(kind, "anthropic") == 0;
    size_t len, trimmed, want = sizeof(text) - 1 - (anthropic ? 2 : 0);
    char *out = keel_prefill_body((const char *)data, size, kind, text, sizeof(text) - 1, "{\"x_keel\":1}", &len,
                                  &trimmed);
    if (out == NULL)
        return;
    json_t *o = json_loadb(out, len, JSON_ALLOW_NUL, NULL);
    if (!json_is_object(o) || strlen(out) != len)
        broken(__LINE__, "a prefill body that is no JSON object of its length");
    if (trimmed != sizeof(text) - 1 - want)
        broken(__LINE__, "trailing whitespace cut where it should not be, or kept");
    if (json_integer_value(json_object_get(o, "x_keel")) != 1)
        broken(__LINE__, "continuation_body's member missing");
    if (anthropic && json_object_get(o, "thinking") != NULL)
        broken(__LINE__, "thinking kept with a prefill for Anthropic");
    json_t *messages = json_object_get(o, "messages");
    json_t *last = json_array_get(messages, json_array_size(messages) - 1);
    const char *role = json_string_value(json_object_get(last, "role"));
    if (role == NULL || strcmp(role, "assistant") != 0)
        broken(__LINE__, "the last message is not the assistant's");
    json_t *c = json_object_get(last, "content");
    if (json_is_array(c))
        c = json_object_get(json_array_get(c, json_array_size(c) - 1), "text");
    size_t n = json_string_length(c);
    if (!json_is_string(c) || n < want || memcmp(json_string_value(c) + n - want, text, want) != 0)
        broken(__LINE__, "the assistant's content does not end with the prefill");
    json_decref(o);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    direction(TO_MESSAGES, data, size);
    direction(TO_CHAT, data, size);
    direction(RESPONSES_TO_CHAT, data, size);
    prefill(data, size, "openai");
    prefill(data, size, "anthropic");
    return 0;
}
