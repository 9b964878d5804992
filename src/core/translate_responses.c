/* translate_responses.c - an OpenAI Responses API request body as an OpenAI chat completions
 * body; see translate.h. Built like translate_messages.c on translate_ctx.h (builders carry on
 * past out-of-memory, noted in c->oom; the first untranslatable field stops it, c->failed). keel
 * keeps no state, so whatever names a stored object is refused; answers are translated elsewhere. */
#include "core/translate.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h> /* snprintf */
#include <stdlib.h>
#include <string.h>

#include "core/translate_ctx.h"

/* a part's place in the request, "input[1].content[0]" */
#define PATH_MAX_LEN 64

/* ---- text ----------------------------------------------------------------------------------- */

/* texts (an array of JSON strings) concatenated as they are, as a new string; NULL when out of
 * memory (noted). The parts of one Responses message are one text to the model: no separator. */
static json_t *concat(struct keel_tctx *c, const json_t *texts)
{
    size_t k, total = 1, used = 0;
    json_t *s;
    json_array_foreach(texts, k, s)
        total += json_string_length(s);
    char *buf = malloc(total);
    if (buf == NULL) {
        c->oom = 1;
        return NULL;
    }
    json_array_foreach(texts, k, s) {
        memcpy(buf + used, json_string_value(s), json_string_length(s));
        used += json_string_length(s);
    }
    assert(used < total);
    json_t *joined = keel_tctx_need(c, json_stringn_nocheck(buf, used));
    free(buf);
    return joined;
}

/* m appended to out: m (out holds it, a borrowed pointer) or NULL when it could not be (out of
 * memory, noted; m released) */
static json_t *append(struct keel_tctx *c, json_t *out, json_t *m)
{
    if (json_array_append_new(out, m) != 0) {
        keel_tctx_need(c, NULL);
        return NULL;
    }
    return m;
}

/* ---- content parts -------------------------------------------------------------------------- */

/* Refuses a part of a `role` message; one another role takes is named with the role it is in.
 * Returns NULL. */
static json_t *refuse_part(struct keel_tctx *c, const char *path, const char *type, const char *role)
{
    static const char *const taken[] = {"input_image", "output_text", "refusal", NULL};
    if (keel_tctx_in_list(type, taken))
        return keel_tctx_fail(c, "%s: %s parts in %s messages cannot be sent to a chat completions target", path,
                              type, role);
    return keel_tctx_fail(c, "%s: %.64s parts cannot be sent to a chat completions target", path, type);
}

/* An input_image part as an image_url part, detail kept; NULL after keel_tctx_fail(). A file_id
 * names a file uploaded to OpenAI, which a chat message cannot carry. */
static json_t *image_part(struct keel_tctx *c, const char *path, const json_t *part)
{
    json_t *url = keel_tctx_get(part, "image_url"), *detail = keel_tctx_get(part, "detail");
    if (url == NULL && keel_tctx_nonempty(json_object_get(part, "file_id")))
        return keel_tctx_fail(c,
                              "%s: input_image parts with only a file_id cannot be sent to a chat completions "
                              "target",
                              path);
    if (!keel_tctx_nonempty(url))
        return keel_tctx_fail(c, "%s.image_url: must be a non-empty string", path);
    json_t *img = keel_tctx_need(c, json_pack("{s:O}", "url", url));
    if (json_is_string(detail))
        keel_tctx_put(c, img, "detail", json_incref(detail));
    return keel_tctx_need(c, json_pack("{s:s, s:o}", "type", "image_url", "image_url", img));
}

/* ---- one message per role ------------------------------------------------------------------- */

/* A user message appended to out: a string content as it is; parts as text and image_url parts,
 * no message when there are none. */
static void user_message(struct keel_tctx *c, json_t *out, size_t i, const json_t *content)
{
    size_t j;
    json_t *p;
    if (json_is_string(content)) {
        append(c, out, keel_tctx_need(c, json_pack("{s:s, s:O}", "role", "user", "content", content)));
        return;
    }
    json_t *parts = keel_tctx_need(c, json_array());
    json_array_foreach(content, j, p) {
        char path[PATH_MAX_LEN];
        snprintf(path, sizeof(path), "input[%zu].content[%zu]", i, j);
        const char *type = keel_tctx_type(c, path, p);
        if (type == NULL) {
            break;
        } else if (strcmp(type, "input_text") == 0) {
            json_t *s = keel_tctx_string_member(c, path, p, "text");
            if (s != NULL)
                keel_tctx_push(c, parts, json_pack("{s:s, s:O}", "type", "text", "text", s));
        } else if (strcmp(type, "input_image") == 0) {
            json_t *part = image_part(c, path, p);
            if (!c->failed)
                keel_tctx_push(c, parts, part);
        } else {
            refuse_part(c, path, type, "user");
        }
        if (c->failed)
            break;
    }
    if (!c->failed && json_array_size(content) > 0)
        append(c, out, keel_tctx_need(c, json_pack("{s:s, s:O}", "role", "user", "content", parts)));
    json_decref(parts);
}

/* A system or developer message as a system message appended to out, its content one string:
 * as it is, or its input_text parts concatenated (no message when there are none). */
static void system_message(struct keel_tctx *c, json_t *out, size_t i, const char *role, const json_t *content)
{
    size_t j;
    json_t *p;
    if (json_is_string(content)) {
        append(c, out, keel_tctx_need(c, json_pack("{s:s, s:O}", "role", "system", "content", content)));
        return;
    }
    json_t *texts = keel_tctx_need(c, json_array());
    json_array_foreach(content, j, p) {
        char path[PATH_MAX_LEN];
        snprintf(path, sizeof(path), "input[%zu].content[%zu]", i, j);
        const char *type = keel_tctx_type(c, path, p);
        if (type == NULL)
            break;
        if (strcmp(type, "input_text") != 0) {
            refuse_part(c, path, type, role);
            break;
        }
        json_t *s = keel_tctx_string_member(c, path, p, "text");
        if (s == NULL)
            break;
        keel_tctx_push(c, texts, json_incref(s));
    }
    if (!c->failed && json_array_size(content) > 0) {
        json_t *text = concat(c, texts);
        append(c, out, keel_tctx_need(c, json_pack("{s:s, s:o}", "role", "system", "content", text)));
    }
    json_decref(texts);
}

/* An assistant message appended to out: a string content as it is; parts as their texts
 * concatenated, refusal parts as its refusal. Returns the message (borrowed: function calls
 * right after it join it), NULL after keel_tctx_fail() or when out of memory. */
static json_t *assistant_message(struct keel_tctx *c, json_t *out, size_t i, const json_t *content)
{
    size_t j;
    json_t *p;
    json_t *m = keel_tctx_need(c, json_pack("{s:s}", "role", "assistant"));
    if (json_is_string(content)) {
        keel_tctx_put(c, m, "content", json_incref((json_t *)content));
        return append(c, out, m);
    }
    json_t *texts = keel_tctx_need(c, json_array()), *refusals = keel_tctx_need(c, json_array());
    json_array_foreach(content, j, p) {
        char path[PATH_MAX_LEN];
        snprintf(path, sizeof(path), "input[%zu].content[%zu]", i, j);
        const char *type = keel_tctx_type(c, path, p);
        json_t *s = NULL;
        if (type == NULL)
            break;
        if (strcmp(type, "output_text") == 0 || strcmp(type, "input_text") == 0) {
            s = keel_tctx_string_member(c, path, p, "text");
            if (s != NULL)
                keel_tctx_push(c, texts, json_incref(s));
        } else if (strcmp(type, "refusal") == 0) {
            s = keel_tctx_string_member(c, path, p, "refusal");
            if (s != NULL)
                keel_tctx_push(c, refusals, json_incref(s));
        } else {
            refuse_part(c, path, type, "assistant");
        }
        if (c->failed)
            break;
    }
    if (!c->failed) {
        keel_tctx_put(c, m, "content", concat(c, texts));
        if (json_array_size(refusals) > 0)
            keel_tctx_put(c, m, "refusal", concat(c, refusals));
    }
    json_decref(texts);
    json_decref(refusals);
    if (c->failed) {
        json_decref(m);
        return NULL;
    }
    return append(c, out, m);
}

/* ---- items ---------------------------------------------------------------------------------- */

/* A message item appended to out by its role; *open becomes the assistant message that function
 * calls after it join, else NULL. */
static void message_item(struct keel_tctx *c, json_t *out, size_t i, const json_t *item, json_t **open)
{
    static const char *const known[] = {"type", "role", "content", "id", "status", NULL};
    static const char *const roles[] = {"user", "system", "developer", "assistant", NULL};
    const char *role = json_string_value(json_object_get(item, "role"));
    json_t *content = keel_tctx_get(item, "content");
    if (role == NULL)
        keel_tctx_fail(c, "input[%zu].role: must be a string", i);
    else if (!keel_tctx_in_list(role, roles))
        keel_tctx_fail(c,
                       "input[%zu].role: must be \"user\", \"assistant\", \"system\" or \"developer\", not "
                       "\"%.64s\"",
                       i, role);
    else if (!json_is_string(content) && !json_is_array(content))
        keel_tctx_fail(c, "input[%zu].content: must be a string or an array of content parts", i);
    *open = NULL;
    if (c->failed)
        return;
    keel_tctx_drop_unknown(c, item, known, "input[].");
    if (strcmp(role, "assistant") == 0)
        *open = assistant_message(c, out, i, content);
    else if (strcmp(role, "user") == 0)
        user_message(c, out, i, content);
    else
        system_message(c, out, i, role, content);
}

/* A function_call item as a tool call of *open (the assistant message or calls right before it),
 * else of a new assistant message that becomes *open. */
static void function_call(struct keel_tctx *c, json_t *out, size_t i, const json_t *item, json_t **open)
{
    static const char *const known[] = {"type", "call_id", "name", "arguments", "id", "status", NULL};
    json_t *id = json_object_get(item, "call_id"), *name = json_object_get(item, "name");
    json_t *args = json_object_get(item, "arguments");
    if (!keel_tctx_nonempty(id))
        keel_tctx_fail(c, "input[%zu].call_id: must be a non-empty string", i);
    else if (!keel_tctx_nonempty(name))
        keel_tctx_fail(c, "input[%zu].name: must be a non-empty string", i);
    else if (!json_is_string(args))
        keel_tctx_fail(c, "input[%zu].arguments: must be a string", i);
    if (c->failed)
        return;
    keel_tctx_drop_unknown(c, item, known, "input[].");
    json_t *call = keel_tctx_need(c, json_pack("{s:O, s:s, s:{s:O, s:O}}", "id", id, "type", "function", "function",
                                               "name", name, "arguments", args));
    if (*open == NULL)
        *open = append(c, out, keel_tctx_need(c, json_pack("{s:s, s:n}", "role", "assistant", "content")));
    json_t *content = json_object_get(*open, "content");
    if (json_is_string(content) && json_string_length(content) == 0)
        keel_tctx_put(c, *open, "content", json_null());
    if (*open != NULL && json_object_get(*open, "tool_calls") == NULL)
        keel_tctx_put(c, *open, "tool_calls", keel_tctx_need(c, json_array()));
    keel_tctx_push(c, json_object_get(*open, "tool_calls"), call);
}

/* A function_call_output item as a tool message appended to out: the output string, or its
 * input_text parts concatenated (chat's tool messages carry text only). */
static void function_output(struct keel_tctx *c, json_t *out, size_t i, const json_t *item)
{
    static const char *const known[] = {"type", "call_id", "output", "id", "status", NULL};
    json_t *id = json_object_get(item, "call_id"), *output = keel_tctx_get(item, "output"), *text = NULL;
    size_t j;
    json_t *p;
    if (!keel_tctx_nonempty(id)) {
        keel_tctx_fail(c, "input[%zu].call_id: must be a non-empty string", i);
        return;
    }
    if (json_is_string(output)) {
        text = json_incref(output);
    } else if (json_is_array(output)) {
        json_t *texts = keel_tctx_need(c, json_array());
        json_array_foreach(output, j, p) {
            char path[PATH_MAX_LEN];
            snprintf(path, sizeof(path), "input[%zu].output[%zu]", i, j);
            const char *type = keel_tctx_type(c, path, p);
            json_t *s = NULL;
            if (type != NULL && strcmp(type, "input_text") != 0)
                keel_tctx_fail(c,
                               "%s: %.64s parts in a function_call_output cannot be sent to a chat completions "
                               "target",
                               path, type);
            else if (type != NULL)
                s = keel_tctx_string_member(c, path, p, "text");
            if (s == NULL)
                break;
            keel_tctx_push(c, texts, json_incref(s));
        }
        if (!c->failed)
            text = concat(c, texts);
        json_decref(texts);
    } else {
        keel_tctx_fail(c, "input[%zu].output: must be a string or an array of content parts", i);
    }
    if (c->failed)
        return;
    keel_tctx_drop_unknown(c, item, known, "input[].");
    append(c, out,
           keel_tctx_need(c, json_pack("{s:s, s:O, s:o}", "role", "tool", "tool_call_id", id, "content", text)));
}

/* One input item appended to out; *open: the assistant message function calls join, if any.
 * An item without a type is a message when it has a role, else a reference when it has an id
 * (both are optional in Responses' item_reference). */
static void input_item(struct keel_tctx *c, json_t *out, size_t i, const json_t *item, json_t **open)
{
    json_t *tt = keel_tctx_get(item, "type");
    const char *type = json_string_value(tt);
    if (!json_is_object(item)) {
        keel_tctx_fail(c, "input[%zu]: must be an object", i);
        return;
    }
    if (tt != NULL && type == NULL) {
        keel_tctx_fail(c, "input[%zu].type: must be a string", i);
        return;
    }
    if (type == NULL && keel_tctx_get(item, "role") == NULL && keel_tctx_get(item, "id") != NULL)
        type = "item_reference";
    if (type == NULL || strcmp(type, "message") == 0) {
        message_item(c, out, i, item, open);
    } else if (strcmp(type, "function_call") == 0) {
        function_call(c, out, i, item, open);
    } else if (strcmp(type, "function_call_output") == 0) {
        *open = NULL;
        function_output(c, out, i, item);
    } else if (strcmp(type, "reasoning") == 0) {
        /* the model's own earlier reasoning: chat takes none back; calls around it still join */
        keel_tctx_drop(c, "input[].reasoning");
    } else if (strcmp(type, "item_reference") == 0) {
        keel_tctx_fail(c,
                       "input[%zu]: item_reference needs server-side state: keel keeps no conversation state; send "
                       "the item itself (clients do with store: false)",
                       i);
    } else {
        keel_tctx_fail(c, "input[%zu]: %.64s items need a Responses target", i, type);
    }
}

/* ---- the conversation ----------------------------------------------------------------------- */

/* The chat messages for the request's instructions and input; NULL after keel_tctx_fail(). */
static json_t *conversation(struct keel_tctx *c, const json_t *req)
{
    json_t *instr = keel_tctx_get(req, "instructions"), *input = keel_tctx_get(req, "input");
    json_t *out = keel_tctx_need(c, json_array()), *open = NULL;
    size_t i;
    json_t *item;
    if (instr != NULL && !json_is_string(instr))
        keel_tctx_fail(c, "instructions: must be a string");
    else if (json_string_length(instr) > 0)
        append(c, out, keel_tctx_need(c, json_pack("{s:s, s:O}", "role", "system", "content", instr)));
    if (!c->failed && json_is_string(input))
        append(c, out, keel_tctx_need(c, json_pack("{s:s, s:O}", "role", "user", "content", input)));
    else if (!c->failed && !json_is_array(input))
        keel_tctx_fail(c, "input: must be a string or an array of items");
    json_array_foreach(c->failed || !json_is_array(input) ? NULL : input, i, item) {
        input_item(c, out, i, item, &open);
        if (c->failed)
            break;
    }
    if (!c->failed && !c->oom && json_array_size(out) == 0)
        keel_tctx_fail(c, "input: no message to send");
    if (c->failed) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* ---- parameters ----------------------------------------------------------------------------- */

/* Refuses what names state keel does not keep (a stored response, conversation or prompt, or
 * asks it to store one); lists store and background when false. */
static void stateless(struct keel_tctx *c, const json_t *req)
{
    static const char *const refs[][2] = {
        {"previous_response_id", "send the whole conversation in input"},
        {"conversation", "send the whole conversation in input"},
        {"prompt", "send the prompt's text as instructions and input"},
    };
    static const char *const flags[][2] = {
        {"store", "send store: false or leave it out"},
        {"background", "leave background out"},
    };
    for (size_t k = 0; k < sizeof(refs) / sizeof(refs[0]) && !c->failed; k++)
        if (keel_tctx_get(req, refs[k][0]) != NULL)
            keel_tctx_fail(c, "%s needs server-side state: keel keeps no conversation state; %s", refs[k][0],
                           refs[k][1]);
    for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]) && !c->failed; k++) {
        json_t *v = keel_tctx_get(req, flags[k][0]);
        if (v != NULL && !json_is_boolean(v))
            keel_tctx_fail(c, "%s: must be a boolean", flags[k][0]);
        else if (json_is_true(v))
            keel_tctx_fail(c, "%s needs server-side state: keel keeps no conversation state; %s", flags[k][0],
                           flags[k][1]);
        else if (v != NULL)
            keel_tctx_drop(c, flags[k][0]);
    }
}

/* v as it is when it is a string; NULL when absent or after keel_tctx_fail() */
static json_t *string(struct keel_tctx *c, const json_t *v, const char *name)
{
    if (v != NULL && !json_is_string(v))
        return keel_tctx_fail(c, "%s: must be a string", name);
    return json_incref((json_t *)v);
}

/* reasoning.effort as reasoning_effort, as sent (the target knows its own levels); the other
 * members dropped. NULL when none or after keel_tctx_fail(). */
static json_t *effort_of(struct keel_tctx *c, const json_t *reasoning)
{
    static const char *const known[] = {"effort", NULL};
    if (reasoning == NULL)
        return NULL;
    if (!json_is_object(reasoning))
        return keel_tctx_fail(c, "reasoning: must be an object");
    keel_tctx_drop_unknown(c, reasoning, known, "reasoning.");
    return string(c, keel_tctx_get(reasoning, "effort"), "reasoning.effort");
}

/* text.format json_schema as response_format's (name, schema, strict, description); NULL after
 * keel_tctx_fail() */
static json_t *json_schema_format(struct keel_tctx *c, const json_t *fmt)
{
    static const char *const known[] = {"type", "name", "schema", "strict", "description", NULL};
    json_t *name = json_object_get(fmt, "name"), *schema = json_object_get(fmt, "schema");
    json_t *strict = keel_tctx_get(fmt, "strict"), *desc = keel_tctx_get(fmt, "description");
    if (!keel_tctx_nonempty(name))
        return keel_tctx_fail(c, "text.format.name: must be a non-empty string");
    if (!json_is_object(schema))
        return keel_tctx_fail(c, "text.format.schema: must be a JSON Schema object");
    if (strict != NULL && !json_is_boolean(strict))
        return keel_tctx_fail(c, "text.format.strict: must be a boolean");
    if (desc != NULL && !json_is_string(desc))
        return keel_tctx_fail(c, "text.format.description: must be a string");
    keel_tctx_drop_unknown(c, fmt, known, "text.format.");
    json_t *js = keel_tctx_need(c, json_pack("{s:O, s:O}", "name", name, "schema", schema));
    if (strict != NULL)
        keel_tctx_put(c, js, "strict", json_incref(strict));
    if (desc != NULL)
        keel_tctx_put(c, js, "description", json_incref(desc));
    return keel_tctx_need(c, json_pack("{s:s, s:o}", "type", "json_schema", "json_schema", js));
}

/* text.format as response_format and text.verbosity as *verbosity; NULL when none (or "text")
 * or after keel_tctx_fail() */
static json_t *format_of(struct keel_tctx *c, const json_t *text, json_t **verbosity)
{
    static const char *const known[] = {"format", "verbosity", NULL};
    json_t *fmt = keel_tctx_get(text, "format"), *verb = keel_tctx_get(text, "verbosity"), *out = NULL;
    const char *type = json_string_value(json_object_get(fmt, "type"));
    *verbosity = NULL;
    if (text == NULL)
        return NULL;
    if (!json_is_object(text))
        return keel_tctx_fail(c, "text: must be an object");
    if (verb != NULL && !json_is_string(verb))
        return keel_tctx_fail(c, "text.verbosity: must be a string");
    keel_tctx_drop_unknown(c, text, known, "text.");
    if (fmt != NULL && type == NULL)
        return keel_tctx_fail(c, "text.format: must be an object with a string type");
    if (type != NULL && strcmp(type, "json_schema") == 0)
        out = json_schema_format(c, fmt);
    else if (type != NULL && strcmp(type, "json_object") == 0)
        out = keel_tctx_need(c, json_pack("{s:s}", "type", "json_object"));
    else if (type != NULL && strcmp(type, "text") != 0)
        return keel_tctx_fail(c, "text.format: %.64s formats cannot be sent to a chat completions target", type);
    if (c->failed)
        return NULL;
    *verbosity = json_incref(verb);
    return out;
}

/* tools (flat function tools) as chat function tools; NULL when none or after keel_tctx_fail() */
static json_t *tools_of(struct keel_tctx *c, const json_t *tools)
{
    static const char *const known[] = {"type", "name", "description", "parameters", "strict", NULL};
    json_t *out, *t;
    size_t i;
    if (tools == NULL)
        return NULL;
    if (!json_is_array(tools))
        return keel_tctx_fail(c, "tools: must be an array");
    out = keel_tctx_need(c, json_array());
    json_array_foreach(tools, i, t) {
        const char *type = json_string_value(json_object_get(t, "type"));
        json_t *name = json_object_get(t, "name"), *desc = keel_tctx_get(t, "description");
        json_t *params = keel_tctx_get(t, "parameters"), *strict = keel_tctx_get(t, "strict");
        if (type == NULL)
            keel_tctx_fail(c, "tools[%zu]: must be an object with a string type", i);
        else if (strcmp(type, "function") != 0)
            keel_tctx_fail(c, "tools[%zu]: %.64s tools need a Responses target", i, type);
        else if (!keel_tctx_nonempty(name))
            keel_tctx_fail(c, "tools[%zu].name: must be a non-empty string", i);
        else if (desc != NULL && !json_is_string(desc))
            keel_tctx_fail(c, "tools[%zu].description: must be a string", i);
        else if (params != NULL && !json_is_object(params))
            keel_tctx_fail(c, "tools[%zu].parameters: must be a JSON Schema object", i);
        else if (strict != NULL && !json_is_boolean(strict))
            keel_tctx_fail(c, "tools[%zu].strict: must be a boolean", i);
        if (c->failed) {
            json_decref(out);
            return NULL;
        }
        keel_tctx_drop_unknown(c, t, known, "tools[].");
        json_t *fn = keel_tctx_need(c, json_pack("{s:O}", "name", name));
        if (desc != NULL)
            keel_tctx_put(c, fn, "description", json_incref(desc));
        if (params != NULL)
            keel_tctx_put(c, fn, "parameters", json_incref(params));
        if (strict != NULL)
            keel_tctx_put(c, fn, "strict", json_incref(strict));
        keel_tctx_push(c, out, keel_tctx_need(c, json_pack("{s:s, s:o}", "type", "function", "function", fn)));
    }
    if (json_array_size(out) == 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* tool_choice as chat's; NULL when absent or after keel_tctx_fail() */
static json_t *tool_choice_of(struct keel_tctx *c, const json_t *choice)
{
    static const char *const modes[] = {"auto", "none", "required", NULL};
    const char *mode = json_string_value(choice), *type = json_string_value(json_object_get(choice, "type"));
    json_t *name = json_object_get(choice, "name");
    if (choice == NULL)
        return NULL;
    if (mode != NULL && keel_tctx_in_list(mode, modes))
        return json_incref((json_t *)choice);
    if (type != NULL && strcmp(type, "function") == 0 && keel_tctx_nonempty(name))
        return keel_tctx_need(c, json_pack("{s:s, s:{s:O}}", "type", "function", "function", "name", name));
    return keel_tctx_fail(c, "tool_choice: must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", "
                             "\"name\": ...}");
}

/* ---- the body ------------------------------------------------------------------------------- */

/* the output's members, in the order they are written */
enum out_key { K_MODEL, K_MESSAGES, K_MAX_TOKENS, K_TEMPERATURE, K_TOP_P, K_EFFORT, K_VERBOSITY, K_FORMAT, K_TOOLS,
               K_TOOL_CHOICE, K_PARALLEL, K_LOGPROBS, K_TOP_LOGPROBS, K_USER, K_SAFETY, K_CACHE_KEY,
               K_CACHE_RETENTION, K_SERVICE_TIER, K_STREAM, K_STREAM_OPTIONS, K_COUNT };
static const char *const out_names[K_COUNT] = {
    "model", "messages", "max_completion_tokens", "temperature", "top_p", "reasoning_effort", "verbosity",
    "response_format", "tools", "tool_choice", "parallel_tool_calls", "logprobs", "top_logprobs", "user",
    "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "service_tier", "stream", "stream_options"};

/* string members chat takes with the same name and meaning */
static const enum out_key as_is[] = {K_USER, K_SAFETY, K_CACHE_KEY, K_CACHE_RETENTION, K_SERVICE_TIER};

/* the request's members that are translated, replaced or refused (the rest are listed as
 * dropped; store and background list themselves when false) */
static const char *const translated[] = {
    "model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "reasoning", "text", "tools",
    "tool_choice", "parallel_tool_calls", "top_logprobs", "user", "safety_identifier", "prompt_cache_key",
    "prompt_cache_retention", "service_tier", "stream", "stream_options", "previous_response_id", "conversation",
    "prompt", "store", "background", NULL};

/* the tools' companions: sent with tools, dropped without (chat refuses parallel_tool_calls then) */
static void tool_companions(struct keel_tctx *c, const json_t *req, json_t **v)
{
    json_t *choice = keel_tctx_get(req, "tool_choice"), *parallel = keel_tctx_get(req, "parallel_tool_calls");
    if (v[K_TOOLS] == NULL) {
        if (choice != NULL)
            keel_tctx_drop(c, "tool_choice");
        if (parallel != NULL)
            keel_tctx_drop(c, "parallel_tool_calls");
        return;
    }
    v[K_TOOL_CHOICE] = tool_choice_of(c, choice);
    if (!c->failed && parallel != NULL && !json_is_boolean(parallel))
        keel_tctx_fail(c, "parallel_tool_calls: must be a boolean");
    else if (!c->failed)
        v[K_PARALLEL] = json_incref(parallel);
}

/* Fills v[] from the request; stops at the first problem (c->failed). */
static void translate(struct keel_tctx *c, const json_t *req, const struct keel_translate_responses_opts *o,
                      json_t **v)
{
    json_t *max = keel_tctx_get(req, "max_output_tokens"), *top = keel_tctx_get(req, "top_logprobs");
    keel_tctx_drop_unknown(c, req, translated, "");
    stateless(c, req);
    if (!c->failed)
        v[K_MESSAGES] = keel_tctx_need(c, conversation(c, req));
    if (!c->failed && max != NULL && !(json_is_integer(max) && json_integer_value(max) >= 1))
        keel_tctx_fail(c, "max_output_tokens: must be a positive integer");
    else if (!c->failed)
        v[K_MAX_TOKENS] = json_incref(max);
    if (!c->failed)
        v[K_TEMPERATURE] = keel_tctx_number(c, keel_tctx_get(req, "temperature"), "temperature");
    if (!c->failed)
        v[K_TOP_P] = keel_tctx_number(c, keel_tctx_get(req, "top_p"), "top_p");
    if (!c->failed)
        v[K_EFFORT] = effort_of(c, keel_tctx_get(req, "reasoning"));
    if (!c->failed)
        v[K_FORMAT] = format_of(c, keel_tctx_get(req, "text"), &v[K_VERBOSITY]);
    if (!c->failed)
        v[K_TOOLS] = tools_of(c, keel_tctx_get(req, "tools"));
    if (!c->failed)
        tool_companions(c, req, v);
    if (!c->failed && top != NULL && !(json_is_integer(top) && json_integer_value(top) >= 0))
        keel_tctx_fail(c, "top_logprobs: must be a non-negative integer");
    else if (!c->failed && top != NULL) {
        v[K_LOGPROBS] = json_true();
        v[K_TOP_LOGPROBS] = json_incref(top);
    }
    for (size_t k = 0; k < sizeof(as_is) / sizeof(as_is[0]) && !c->failed; k++)
        v[as_is[k]] = string(c, keel_tctx_get(req, out_names[as_is[k]]), out_names[as_is[k]]);
    if (c->failed)
        return;
    v[K_MODEL] = keel_tctx_need(c, json_string(o->model));
    if (o->stream) {
        v[K_STREAM] = json_true();
        v[K_STREAM_OPTIONS] = keel_tctx_need(c, json_pack("{s:b}", "include_usage", 1));
    }
}

char *keel_translate_responses_to_chat(const char *body, size_t len, const struct keel_translate_responses_opts *o,
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
