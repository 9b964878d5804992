/* translate_messages.c - an Anthropic Messages body as an OpenAI chat body; see translate.h.
 * Built like translate.c, on the same bookkeeping (translate_ctx.h): builders put what they make
 * straight into their parent and carry on when jansson runs out of memory (c->oom; the result is
 * thrown away at the end); a request that cannot be translated stops at the first problem
 * (c->failed, its message in c->err). */
#include "core/translate.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h> /* snprintf */
#include <stdlib.h>
#include <string.h>

#include "core/translate_ctx.h"

/* a block's place in the request, "messages[1].content[0].content[2]" at most */
#define PATH_MAX_LEN 128

/* ---- text ----------------------------------------------------------------------------------- */

/* texts (an array of JSON strings) joined with sep, empty ones left out, as a new string; NULL
 * when out of memory (noted) */
static json_t *join(struct keel_tctx *c, const json_t *texts, const char *sep)
{
    size_t k, seplen = strlen(sep), total = 1, used = 0;
    json_t *s;
    json_array_foreach(texts, k, s)
        total += json_string_length(s) + seplen;
    char *buf = malloc(total);
    if (buf == NULL) {
        c->oom = 1;
        return NULL;
    }
    json_array_foreach(texts, k, s) {
        size_t n = json_string_length(s);
        if (n == 0)
            continue;
        if (used > 0) {
            memcpy(buf + used, sep, seplen);
            used += seplen;
        }
        memcpy(buf + used, json_string_value(s), n);
        used += n;
    }
    assert(used < total);
    json_t *joined = keel_tctx_need(c, json_stringn_nocheck(buf, used));
    free(buf);
    return joined;
}

/* v as compact JSON text, in a new string; NULL when out of memory (noted) */
static json_t *json_text(struct keel_tctx *c, const json_t *v)
{
    size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
    size_t n = json_dumpb(v, NULL, 0, flags);
    char *buf = n > 0 ? malloc(n) : NULL;
    json_t *s = NULL;
    if (buf != NULL && json_dumpb(v, buf, n, flags) == n)
        s = json_stringn_nocheck(buf, n);
    free(buf);
    return keel_tctx_need(c, s);
}

/* ---- content blocks ------------------------------------------------------------------------- */

/* Refuses a block of a `user` (else assistant) message; one the other role takes is named with
 * the role it is in, as OpenAI could carry it there. Returns NULL. */
static json_t *refuse_block(struct keel_tctx *c, const char *path, const char *type, int user)
{
    static const char *const user_only[] = {"image", "tool_result", NULL};
    static const char *const assistant_only[] = {"tool_use", "thinking", "redacted_thinking", NULL};
    if (keel_tctx_in_list(type, user ? assistant_only : user_only))
        return keel_tctx_fail(c, "%s: %s blocks in %s messages cannot be sent to an OpenAI target", path, type,
                              user ? "user" : "assistant");
    return keel_tctx_fail(c, "%s: %.64s blocks cannot be sent to an OpenAI target", path, type);
}

/* An image block as an image_url part: a base64 source as a data: URL, a url source as its URL.
 * NULL after keel_tctx_fail(). */
static json_t *image_part(struct keel_tctx *c, const char *path, const json_t *block)
{
    static const char b64[] = ";base64,";
    json_t *src = json_object_get(block, "source");
    const char *type = json_string_value(json_object_get(src, "type"));
    char sub[PATH_MAX_LEN + 8];
    snprintf(sub, sizeof(sub), "%s.source", path);
    if (type == NULL)
        return keel_tctx_fail(c, "%s: must be an object with a string type", sub);
    if (strcmp(type, "url") == 0) {
        json_t *url = keel_tctx_string_member(c, sub, src, "url");
        if (url == NULL)
            return NULL;
        return keel_tctx_need(c, json_pack("{s:s, s:{s:O}}", "type", "image_url", "image_url", "url", url));
    }
    if (strcmp(type, "base64") != 0)
        return keel_tctx_fail(c, "%s: %.64s image sources cannot be sent to an OpenAI target", sub, type);
    json_t *media = keel_tctx_string_member(c, sub, src, "media_type");
    json_t *data = media != NULL ? keel_tctx_string_member(c, sub, src, "data") : NULL;
    if (data == NULL)
        return NULL;
    size_t mlen = json_string_length(media), dlen = json_string_length(data), blen = sizeof(b64) - 1;
    char *url = malloc(5 + mlen + blen + dlen);
    if (url == NULL) {
        c->oom = 1;
        return NULL;
    }
    memcpy(url, "data:", 5);
    memcpy(url + 5, json_string_value(media), mlen);
    memcpy(url + 5 + mlen, b64, blen);
    memcpy(url + 5 + mlen + blen, json_string_value(data), dlen);
    json_t *s = json_stringn_nocheck(url, 5 + mlen + blen + dlen);
    free(url);
    if (s == NULL) {
        c->oom = 1;
        return NULL;
    }
    return keel_tctx_need(c, json_pack("{s:s, s:{s:o}}", "type", "image_url", "image_url", "url", s));
}

/* A tool_result block as a tool message: its content a string as is, text blocks joined, none
 * as "". NULL after keel_tctx_fail(). */
static json_t *tool_message(struct keel_tctx *c, const char *path, const json_t *block)
{
    json_t *id = json_object_get(block, "tool_use_id");
    json_t *content = keel_tctx_get(block, "content");
    json_t *text = NULL;
    if (!keel_tctx_nonempty(id))
        return keel_tctx_fail(c, "%s.tool_use_id: must be a non-empty string", path);
    /* OpenAI's tool messages carry no error flag; the text usually says it anyway */
    if (json_is_true(json_object_get(block, "is_error")))
        keel_tctx_drop(c, "messages[].content[].is_error");
    if (content == NULL) {
        text = keel_tctx_need(c, json_string(""));
    } else if (json_is_string(content)) {
        text = json_incref(content);
    } else if (json_is_array(content)) {
        json_t *texts = keel_tctx_need(c, json_array());
        size_t k;
        json_t *b;
        json_array_foreach(content, k, b) {
            char sub[PATH_MAX_LEN];
            snprintf(sub, sizeof(sub), "%s.content[%zu]", path, k);
            const char *type = keel_tctx_type(c, sub, b);
            if (type != NULL && strcmp(type, "text") != 0) {
                keel_tctx_fail(c, "%s: %.64s blocks in a tool_result cannot be sent to an OpenAI target", sub, type);
            } else if (type != NULL) {
                json_t *s = keel_tctx_string_member(c, sub, b, "text");
                if (s != NULL)
                    keel_tctx_push(c, texts, json_incref(s));
            }
            if (c->failed)
                break;
        }
        if (!c->failed)
            text = join(c, texts, "\n\n");
        json_decref(texts);
    } else {
        return keel_tctx_fail(c, "%s.content: must be a string or an array of text blocks", path);
    }
    if (text == NULL)
        return NULL;
    return keel_tctx_need(c, json_pack("{s:s, s:O, s:o}", "role", "tool", "tool_call_id", id, "content", text));
}

/* A tool_use block as a tool call, its input as the arguments' JSON text. NULL after keel_tctx_fail(). */
static json_t *tool_call(struct keel_tctx *c, const char *path, const json_t *block)
{
    json_t *id = json_object_get(block, "id"), *name = json_object_get(block, "name");
    json_t *input = json_object_get(block, "input");
    if (!keel_tctx_nonempty(id))
        return keel_tctx_fail(c, "%s.id: must be a non-empty string", path);
    if (!keel_tctx_nonempty(name))
        return keel_tctx_fail(c, "%s.name: must be a non-empty string", path);
    if (!json_is_object(input))
        return keel_tctx_fail(c, "%s.input: must be an object", path);
    json_t *args = json_text(c, input);
    if (args == NULL)
        return NULL;
    return keel_tctx_need(c, json_pack("{s:O, s:s, s:{s:O, s:o}}", "id", id, "type", "function", "function", "name",
                                       name, "arguments", args));
}

/* ---- one message per role ------------------------------------------------------------------- */

/* A user message's content as OpenAI messages appended to out: a string as a user message as it
 * is; blocks as the tool messages of the tool_result blocks (OpenAI wants them right after the
 * assistant's tool calls), then one user message with the other blocks as parts, if any. */
static void user_messages(struct keel_tctx *c, json_t *out, size_t i, const json_t *content)
{
    size_t j;
    json_t *b;
    if (json_is_string(content)) {
        keel_tctx_push(c, out, keel_tctx_need(c, json_pack("{s:s, s:O}", "role", "user", "content", content)));
        return;
    }
    json_t *parts = keel_tctx_need(c, json_array());
    json_array_foreach(content, j, b) {
        char path[PATH_MAX_LEN];
        snprintf(path, sizeof(path), "messages[%zu].content[%zu]", i, j);
        const char *type = keel_tctx_type(c, path, b);
        if (type == NULL) {
            break;
        } else if (strcmp(type, "text") == 0) {
            json_t *s = keel_tctx_string_member(c, path, b, "text");
            if (s != NULL)
                keel_tctx_push(c, parts, json_pack("{s:s, s:O}", "type", "text", "text", s));
        } else if (strcmp(type, "image") == 0) {
            json_t *part = image_part(c, path, b);
            if (!c->failed)
                keel_tctx_push(c, parts, part);
        } else if (strcmp(type, "tool_result") == 0) {
            json_t *m = tool_message(c, path, b);
            if (!c->failed)
                keel_tctx_push(c, out, m);
        } else {
            refuse_block(c, path, type, 1);
        }
        if (c->failed)
            break;
    }
    if (!c->failed && json_array_size(parts) > 0)
        keel_tctx_push(c, out, json_pack("{s:s, s:O}", "role", "user", "content", parts));
    json_decref(parts);
}

/* An assistant message's content as one assistant message appended to out: a string as it is;
 * blocks as their texts concatenated and their tool calls, thinking dropped. */
static void assistant_message(struct keel_tctx *c, json_t *out, size_t i, const json_t *content)
{
    size_t j;
    json_t *b;
    if (json_is_string(content)) {
        keel_tctx_push(c, out, keel_tctx_need(c, json_pack("{s:s, s:O}", "role", "assistant", "content", content)));
        return;
    }
    json_t *texts = keel_tctx_need(c, json_array()), *calls = keel_tctx_need(c, json_array());
    json_array_foreach(content, j, b) {
        char path[PATH_MAX_LEN];
        snprintf(path, sizeof(path), "messages[%zu].content[%zu]", i, j);
        const char *type = keel_tctx_type(c, path, b);
        if (type == NULL) {
            break;
        } else if (strcmp(type, "text") == 0) {
            json_t *s = keel_tctx_string_member(c, path, b, "text");
            if (s != NULL)
                keel_tctx_push(c, texts, json_incref(s));
        } else if (strcmp(type, "tool_use") == 0) {
            json_t *call = tool_call(c, path, b);
            if (!c->failed)
                keel_tctx_push(c, calls, call);
        } else if (strcmp(type, "thinking") == 0) {
            keel_tctx_drop(c, "messages[].content[].thinking");
        } else if (strcmp(type, "redacted_thinking") == 0) {
            keel_tctx_drop(c, "messages[].content[].redacted_thinking");
        } else {
            refuse_block(c, path, type, 0);
        }
        if (c->failed)
            break;
    }
    if (!c->failed) {
        int has_calls = json_array_size(calls) > 0;
        json_t *text = join(c, texts, "");
        json_t *m = keel_tctx_need(c, json_pack("{s:s}", "role", "assistant"));
        if (text != NULL && has_calls && json_string_length(text) == 0) {
            json_decref(text);
            text = json_null();
        }
        keel_tctx_put(c, m, "content", text);
        if (has_calls)
            keel_tctx_put(c, m, "tool_calls", json_incref(calls));
        keel_tctx_push(c, out, m);
    }
    json_decref(texts);
    json_decref(calls);
}

/* system as a first system message appended to out, nothing when it holds no text */
static void system_message(struct keel_tctx *c, json_t *out, const json_t *system)
{
    json_t *text = NULL;
    if (system == NULL)
        return;
    if (json_is_string(system)) {
        text = json_incref((json_t *)system);
    } else if (json_is_array(system)) {
        json_t *texts = keel_tctx_need(c, json_array());
        size_t k;
        json_t *b;
        json_array_foreach(system, k, b) {
            char path[PATH_MAX_LEN];
            snprintf(path, sizeof(path), "system[%zu]", k);
            const char *type = json_string_value(json_object_get(b, "type"));
            json_t *s = type != NULL && strcmp(type, "text") == 0 ? keel_tctx_string_member(c, path, b, "text")
                                                                  : keel_tctx_fail(c, "%s: must be a text block", path);
            if (s == NULL)
                break;
            keel_tctx_push(c, texts, json_incref(s));
        }
        if (!c->failed)
            text = join(c, texts, "\n\n");
        json_decref(texts);
    } else {
        keel_tctx_fail(c, "system: must be a string or an array of text blocks");
    }
    if (text != NULL && json_string_length(text) > 0)
        keel_tctx_push(c, out, json_pack("{s:s, s:o}", "role", "system", "content", text));
    else
        json_decref(text);
}

/* ---- the conversation ----------------------------------------------------------------------- */

/* The OpenAI messages for the request's system and messages; NULL after keel_tctx_fail(). */
static json_t *conversation(struct keel_tctx *c, const json_t *req)
{
    static const char *const known[] = {"role", "content", NULL};
    json_t *msgs = keel_tctx_get(req, "messages"), *out = keel_tctx_need(c, json_array());
    size_t i;
    json_t *m;
    system_message(c, out, keel_tctx_get(req, "system"));
    size_t first = json_array_size(out);
    if (!c->failed && !json_is_array(msgs))
        keel_tctx_fail(c, "messages: must be an array");
    else if (!c->failed && json_array_size(msgs) == 0)
        keel_tctx_fail(c, "messages: must not be empty");
    json_array_foreach(c->failed ? NULL : msgs, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = keel_tctx_get(m, "content");
        int user = role != NULL && strcmp(role, "user") == 0;
        if (!json_is_object(m))
            keel_tctx_fail(c, "messages[%zu]: must be an object", i);
        else if (role == NULL)
            keel_tctx_fail(c, "messages[%zu].role: must be a string", i);
        else if (!user && strcmp(role, "assistant") != 0)
            keel_tctx_fail(c, "messages[%zu].role: must be \"user\" or \"assistant\", not \"%.64s\"", i, role);
        else if (!json_is_string(content) && !json_is_array(content))
            keel_tctx_fail(c, "messages[%zu].content: must be a string or an array of content blocks", i);
        if (c->failed)
            break;
        keel_tctx_drop_unknown(c, m, known, "messages[].");
        if (user)
            user_messages(c, out, i, content);
        else
            assistant_message(c, out, i, content);
        if (c->failed)
            break;
    }
    if (!c->failed && !c->oom && json_array_size(out) == first)
        keel_tctx_fail(c, "messages: no message with content");
    if (c->failed) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* ---- parameters ----------------------------------------------------------------------------- */

/* stop_sequences as stop; NULL when none (or empty) or after keel_tctx_fail() */
static json_t *stop_of(struct keel_tctx *c, const json_t *seqs)
{
    size_t k;
    json_t *s;
    if (seqs == NULL)
        return NULL;
    if (!json_is_array(seqs))
        return keel_tctx_fail(c, "stop_sequences: must be an array of strings");
    json_array_foreach(seqs, k, s)
        if (!json_is_string(s))
            return keel_tctx_fail(c, "stop_sequences[%zu]: must be a string", k);
    return json_array_size(seqs) > 0 ? json_incref((json_t *)seqs) : NULL;
}

/* thinking as reasoning_effort; NULL when none (disabled, or dropped: not one we know) */
static json_t *effort_of(struct keel_tctx *c, const json_t *thinking)
{
    const char *type = json_string_value(json_object_get(thinking, "type"));
    json_t *budget = json_object_get(thinking, "budget_tokens");
    const char *effort = NULL;
    if (thinking == NULL || (type != NULL && strcmp(type, "disabled") == 0))
        return NULL;
    if (type != NULL && strcmp(type, "adaptive") == 0) {
        effort = "medium";
    } else if (type != NULL && strcmp(type, "enabled") == 0 && json_is_integer(budget)) {
        json_int_t n = json_integer_value(budget);
        effort = n <= KEEL_TRANSLATE_EFFORT_LOW_MAX ? "low" : n <= KEEL_TRANSLATE_EFFORT_MEDIUM_MAX ? "medium" : "high";
    }
    if (effort == NULL) {
        keel_tctx_drop(c, "thinking");
        return NULL;
    }
    return keel_tctx_need(c, json_string(effort));
}

/* tools as OpenAI function tools; NULL when none or after keel_tctx_fail() */
static json_t *tools_of(struct keel_tctx *c, const json_t *tools)
{
    static const char *const known[] = {"type", "name", "description", "input_schema", "cache_control", NULL};
    json_t *out, *t;
    size_t i;
    if (tools == NULL)
        return NULL;
    if (!json_is_array(tools))
        return keel_tctx_fail(c, "tools: must be an array");
    out = keel_tctx_need(c, json_array());
    json_array_foreach(tools, i, t) {
        json_t *tt = keel_tctx_get(t, "type"), *name = json_object_get(t, "name"),
               *desc = keel_tctx_get(t, "description");
        json_t *schema = json_object_get(t, "input_schema");
        const char *type = json_string_value(tt);
        if (!json_is_object(t))
            keel_tctx_fail(c, "tools[%zu]: must be an object", i);
        else if (tt != NULL && type == NULL)
            keel_tctx_fail(c, "tools[%zu].type: must be a string", i);
        else if (type != NULL && strcmp(type, "custom") != 0)
            keel_tctx_fail(c, "tools[%zu]: %.64s is an Anthropic tool; an OpenAI target has no equivalent", i, type);
        else if (!keel_tctx_nonempty(name))
            keel_tctx_fail(c, "tools[%zu].name: must be a non-empty string", i);
        else if (desc != NULL && !json_is_string(desc))
            keel_tctx_fail(c, "tools[%zu].description: must be a string", i);
        else if (!json_is_object(schema))
            keel_tctx_fail(c, "tools[%zu].input_schema: must be a JSON Schema object", i);
        if (c->failed) {
            json_decref(out);
            return NULL;
        }
        keel_tctx_drop_unknown(c, t, known, "tools[].");
        json_t *fn = keel_tctx_need(c, json_pack("{s:O}", "name", name));
        if (desc != NULL)
            keel_tctx_put(c, fn, "description", json_incref(desc));
        keel_tctx_put(c, fn, "parameters", json_incref(schema));
        keel_tctx_push(c, out, keel_tctx_need(c, json_pack("{s:s, s:o}", "type", "function", "function", fn)));
    }
    if (json_array_size(out) == 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* tool_choice as OpenAI's, and its disable_parallel_tool_use: true as *parallel (false); NULL
 * when absent or after keel_tctx_fail() */
static json_t *tool_choice_of(struct keel_tctx *c, const json_t *choice, json_t **parallel)
{
    static const char *const names[][2] = {{"auto", "auto"}, {"any", "required"}, {"none", "none"}};
    const char *type = json_string_value(json_object_get(choice, "type"));
    json_t *name = json_object_get(choice, "name"), *dp = keel_tctx_get(choice, "disable_parallel_tool_use");
    json_t *out = NULL;
    int known = 0;
    *parallel = NULL;
    if (choice == NULL)
        return NULL;
    for (size_t k = 0; type != NULL && k < sizeof(names) / sizeof(names[0]); k++) {
        if (strcmp(type, names[k][0]) == 0) {
            out = keel_tctx_need(c, json_string(names[k][1]));
            known = 1;
        }
    }
    if (type != NULL && strcmp(type, "tool") == 0 && keel_tctx_nonempty(name)) {
        out = keel_tctx_need(c, json_pack("{s:s, s:{s:O}}", "type", "function", "function", "name", name));
        known = 1;
    }
    if (!known)
        return keel_tctx_fail(c,
                              "tool_choice: must be {\"type\": \"auto\"}, {\"type\": \"any\"}, {\"type\": \"none\"} or "
                              "{\"type\": \"tool\", \"name\": ...}");
    if (dp != NULL && !json_is_boolean(dp)) {
        json_decref(out);
        return keel_tctx_fail(c, "tool_choice.disable_parallel_tool_use: must be a boolean");
    }
    if (json_is_true(dp))
        *parallel = json_false();
    return out;
}

/* metadata.user_id as user (the other keys dropped); NULL when none */
static json_t *user_of(struct keel_tctx *c, const json_t *md)
{
    const char *key;
    json_t *v, *uid = NULL;
    if (md == NULL)
        return NULL;
    if (!json_is_object(md)) {
        keel_tctx_drop(c, "metadata");
        return NULL;
    }
    json_object_foreach((json_t *)md, key, v) {
        char name[64];
        if (json_is_null(v))
            continue;
        if (strcmp(key, "user_id") == 0 && json_is_string(v)) {
            uid = v;
            continue;
        }
        snprintf(name, sizeof(name), "metadata.%s", key);
        keel_tctx_drop(c, name);
    }
    return json_incref(uid);
}

/* ---- the body ------------------------------------------------------------------------------- */

/* the output's members, in the order they are written */
enum out_key { K_MODEL, K_MESSAGES, K_MAX_TOKENS, K_STOP, K_TEMPERATURE, K_TOP_P, K_EFFORT, K_TOOLS,
               K_TOOL_CHOICE, K_PARALLEL, K_USER, K_STREAM, K_STREAM_OPTIONS, K_COUNT };
static const char *const out_names[K_COUNT] = {"model", "messages", "max_completion_tokens", "stop", "temperature",
                                               "top_p", "reasoning_effort", "tools", "tool_choice",
                                               "parallel_tool_calls", "user", "stream", "stream_options"};

/* the request's members that are translated or replaced (the rest are listed as dropped) */
static const char *const translated[] = {"model", "system", "messages", "max_tokens", "stop_sequences", "temperature",
                                         "top_p", "thinking", "tools", "tool_choice", "metadata", "stream", NULL};

/* Fills v[] from the request; stops at the first problem (c->failed). */
static void translate(struct keel_tctx *c, const json_t *req, const struct keel_translate_chat_opts *o, json_t **v)
{
    json_t *max = keel_tctx_get(req, "max_tokens");
    keel_tctx_drop_unknown(c, req, translated, "");
    v[K_MESSAGES] = keel_tctx_need(c, conversation(c, req));
    if (!c->failed && max != NULL && !(json_is_integer(max) && json_integer_value(max) >= 1))
        keel_tctx_fail(c, "max_tokens: must be a positive integer");
    else if (!c->failed)
        v[K_MAX_TOKENS] = json_incref(max);
    if (!c->failed)
        v[K_STOP] = stop_of(c, keel_tctx_get(req, "stop_sequences"));
    if (!c->failed)
        v[K_TEMPERATURE] = keel_tctx_number(c, keel_tctx_get(req, "temperature"), "temperature");
    if (!c->failed)
        v[K_TOP_P] = keel_tctx_number(c, keel_tctx_get(req, "top_p"), "top_p");
    if (!c->failed)
        v[K_EFFORT] = effort_of(c, keel_tctx_get(req, "thinking"));
    if (!c->failed)
        v[K_TOOLS] = tools_of(c, keel_tctx_get(req, "tools"));
    if (!c->failed && v[K_TOOLS] != NULL)
        v[K_TOOL_CHOICE] = tool_choice_of(c, keel_tctx_get(req, "tool_choice"), &v[K_PARALLEL]);
    else if (!c->failed && keel_tctx_get(req, "tool_choice") != NULL)
        keel_tctx_drop(c, "tool_choice");
    if (c->failed)
        return;
    v[K_MODEL] = keel_tctx_need(c, json_string(o->model));
    v[K_USER] = user_of(c, keel_tctx_get(req, "metadata"));
    if (o->stream) {
        v[K_STREAM] = json_true();
        v[K_STREAM_OPTIONS] = keel_tctx_need(c, json_pack("{s:b}", "include_usage", 1));
    }
}

char *keel_translate_messages_to_chat(const char *body, size_t len, const struct keel_translate_chat_opts *o,
                                      size_t *out_len, char *err, size_t errlen, char *dropped,
                                      size_t droppedlen)
{
    struct keel_tctx c;
    json_t *v[K_COUNT] = {NULL};
    assert(o != NULL && o->model != NULL);
    *out_len = 0;
    json_t *req = keel_tctx_begin(&c, body, len, err, errlen, dropped, droppedlen);
    if (req != NULL)
        translate(&c, req, o, v);
    char *s = keel_tctx_finish(&c, v, out_names, K_COUNT, out_len);
    json_decref(req);
    return s;
}
