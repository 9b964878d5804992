/* translate.c - an OpenAI chat body as an Anthropic Messages body; see translate.h. Built on
 * translate_ctx.h's bookkeeping: builders put what they make straight into their parent and carry
 * on when jansson runs out of memory (c->oom; the result is thrown away at the end); a request
 * that cannot be translated stops at the first problem (c->failed, its message in c->err). */
#include "core/translate.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h> /* snprintf */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/translate_ctx.h"

/* ---- text ----------------------------------------------------------------------------------- */

/* empty or whitespace only: Anthropic rejects such a text block */
static int blank(const json_t *s)
{
    const char *p = json_string_value(s);
    size_t n = json_string_length(s);
    for (size_t i = 0; i < n; i++)
        if (strchr(" \t\r\n", p[i]) == NULL || p[i] == '\0')
            return 0;
    return 1;
}

/* ---- content blocks ------------------------------------------------------------------------- */

/* Appends {"type":"text","text":s} to blocks, unless s is blank. */
static void add_text(struct keel_tctx *c, json_t *blocks, json_t *s)
{
    if (!blank(s))
        keel_tctx_push(c, blocks, json_pack("{s:s, s:O}", "type", "text", "text", s));
}

/* part[key] as a string, or NULL after keel_tctx_fail() */
static json_t *part_string(struct keel_tctx *c, size_t i, size_t j, const json_t *part, const char *key)
{
    json_t *s = json_object_get(part, key);
    if (!json_is_string(s))
        return keel_tctx_fail(c, "messages[%zu].content[%zu].%s: must be a string", i, j, key);
    return s;
}

/* part's "type", or NULL after keel_tctx_fail() */
static const char *part_type(struct keel_tctx *c, size_t i, size_t j, const json_t *part)
{
    const char *type = json_string_value(json_object_get(part, "type"));
    if (type == NULL)
        keel_tctx_fail(c, "messages[%zu].content[%zu]: must be an object with a string type", i, j);
    return type;
}

/* the media types Anthropic takes for an image, as it spells them; image/jpg is a common alias */
static const char *image_media_type(const char *t, size_t n)
{
    static const char *const types[] = {"image/jpeg", "image/png", "image/gif", "image/webp", NULL};
    if (n == 9 && strncasecmp(t, "image/jpg", 9) == 0)
        return "image/jpeg";
    for (size_t k = 0; types[k] != NULL; k++)
        if (strlen(types[k]) == n && strncasecmp(t, types[k], n) == 0)
            return types[k];
    return NULL;
}

/* An image_url part as an image block: a data:image/...;base64, URL as a base64 source, an
 * http(s) URL as a url source. NULL after keel_tctx_fail(). */
static json_t *image_block(struct keel_tctx *c, size_t i, size_t j, const json_t *part)
{
    static const char b64[] = ";base64,";
    json_t *iu = json_object_get(part, "image_url");
    json_t *url = json_is_string(iu) ? iu : json_object_get(iu, "url");
    const char *u = json_string_value(url);
    size_t n = json_string_length(url);
    if (u == NULL)
        return keel_tctx_fail(c, "messages[%zu].content[%zu].image_url.url: must be a string", i, j);
    if (n >= 5 && strncasecmp(u, "data:", 5) == 0) {
        const char *type = u + 5, *end = u + n;
        const char *semi = memchr(type, ';', n - 5);
        size_t blen = sizeof(b64) - 1;
        if (semi == NULL || semi == type || (size_t)(end - semi) <= blen || strncasecmp(semi, b64, blen) != 0)
            return keel_tctx_fail(
                c, "messages[%zu].content[%zu]: image_url data: URL must be data:<media type>;base64,<data>", i, j);
        const char *media = image_media_type(type, (size_t)(semi - type));
        if (media == NULL)
            return keel_tctx_fail(c,
                                  "messages[%zu].content[%zu]: image media type %.*s is not supported (image/jpeg, "
                                  "image/png, image/gif, image/webp)",
                                  i, j, (int)(semi - type > 64 ? 64 : semi - type), type);
        return json_pack("{s:s, s:{s:s, s:s, s:s%}}", "type", "image", "source", "type", "base64", "media_type", media,
                         "data", semi + blen, (size_t)(end - semi - blen));
    }
    if ((n > 7 && strncasecmp(u, "http://", 7) == 0) || (n > 8 && strncasecmp(u, "https://", 8) == 0))
        return json_pack("{s:s, s:{s:s, s:O}}", "type", "image", "source", "type", "url", "url", url);
    return keel_tctx_fail(c, "messages[%zu].content[%zu]: image_url must be a data: URL or an http(s) URL", i, j);
}

/* what a role's content parts may be, beyond text (enum part_kinds) */
enum part_kinds {
    PARTS_IMAGE = 1 << 0,   /* image_url; input_audio and file are refused as unsupported */
    PARTS_REFUSAL = 1 << 1, /* refusal, sent as text */
};

/* A string content or an array of content parts as content blocks (blank text left out), as a
 * new array; NULL after keel_tctx_fail(). `role` names the message in the error. */
static json_t *content_blocks(struct keel_tctx *c, size_t i, const json_t *content, const char *role, unsigned kinds)
{
    json_t *blocks = json_array();
    size_t j;
    json_t *part;
    if (json_is_string(content)) {
        add_text(c, blocks, (json_t *)content);
        return blocks;
    }
    if (!json_is_array(content))
        keel_tctx_fail(c, "messages[%zu].content: must be a string or an array of %s parts", i,
                       kinds == 0 ? "text" : "content");
    json_array_foreach(c->failed ? NULL : content, j, part) {
        const char *type = part_type(c, i, j, part);
        int audio_or_file = type != NULL && (strcmp(type, "input_audio") == 0 || strcmp(type, "file") == 0);
        if (type == NULL) {
            break;
        } else if (strcmp(type, "text") == 0 || (strcmp(type, "refusal") == 0 && (kinds & PARTS_REFUSAL))) {
            json_t *text = part_string(c, i, j, part, type);
            if (text != NULL)
                add_text(c, blocks, text);
        } else if (strcmp(type, "image_url") == 0 && (kinds & PARTS_IMAGE)) {
            json_t *image = image_block(c, i, j, part);
            if (image != NULL || !c->failed)
                keel_tctx_push(c, blocks, image);
        } else if (audio_or_file && (kinds & PARTS_IMAGE)) {
            keel_tctx_fail(c, "messages[%zu].content[%zu]: %s parts are not supported by an anthropic upstream", i, j,
                           type);
        } else if (kinds & PARTS_IMAGE) {
            keel_tctx_fail(c, "messages[%zu].content[%zu]: unknown content part type \"%.64s\"", i, j, type);
        } else {
            keel_tctx_fail(c, "messages[%zu].content[%zu]: %s messages hold %s parts only", i, j, role,
                           kinds & PARTS_REFUSAL ? "text and refusal" : "text");
        }
        if (c->failed)
            break;
    }
    if (c->failed) {
        json_decref(blocks);
        return NULL;
    }
    return blocks;
}

/* ---- one message per role ------------------------------------------------------------------- */

/* A tool call as a tool_use block; its arguments (a string holding a JSON object; absent or blank
 * as {}) become the block's input. NULL after keel_tctx_fail(). */
static json_t *tool_use(struct keel_tctx *c, size_t i, size_t j, const json_t *call)
{
    const char *type = json_string_value(json_object_get(call, "type"));
    json_t *id = json_object_get(call, "id");
    json_t *fn = json_object_get(call, "function");
    json_t *name = json_object_get(fn, "name");
    json_t *args = keel_tctx_get(fn, "arguments");
    json_t *input = NULL;
    enum json_error_code code;
    int typed = json_object_get(call, "type") != NULL;
    if (!json_is_object(call) || (typed && (type == NULL || strcmp(type, "function") != 0)))
        return keel_tctx_fail(c, "messages[%zu].tool_calls[%zu]: only function tool calls are supported", i, j);
    if (!keel_tctx_nonempty(id))
        return keel_tctx_fail(c, "messages[%zu].tool_calls[%zu].id: must be a non-empty string", i, j);
    if (!keel_tctx_nonempty(name))
        return keel_tctx_fail(c, "messages[%zu].tool_calls[%zu].function.name: must be a non-empty string", i, j);
    if (args == NULL || (json_is_string(args) && blank(args)))
        input = keel_tctx_need(c, json_object());
    else if (json_is_string(args))
        input = keel_tctx_load(c, json_string_value(args), json_string_length(args), &code);
    if (c->oom)
        return NULL;
    if (!json_is_object(input)) {
        json_decref(input);
        return keel_tctx_fail(
            c, "messages[%zu].tool_calls[%zu].function.arguments: must be a string holding a JSON object", i, j);
    }
    return json_pack("{s:s, s:O, s:O, s:o}", "type", "tool_use", "id", id, "name", name, "input", input);
}

/* content (text and refusal parts), refusal, then each tool call as a tool_use block */
static json_t *assistant_blocks(struct keel_tctx *c, size_t i, const json_t *m)
{
    json_t *content = keel_tctx_get(m, "content"), *refusal = keel_tctx_get(m, "refusal"),
           *calls = keel_tctx_get(m, "tool_calls");
    json_t *blocks = content != NULL ? content_blocks(c, i, content, "assistant", PARTS_REFUSAL) : json_array();
    size_t j;
    json_t *v;
    if (!c->failed && refusal != NULL && !json_is_string(refusal))
        keel_tctx_fail(c, "messages[%zu].refusal: must be a string", i);
    else if (!c->failed && refusal != NULL)
        add_text(c, blocks, refusal);
    if (!c->failed && calls != NULL && !json_is_array(calls))
        keel_tctx_fail(c, "messages[%zu].tool_calls: must be an array", i);
    json_array_foreach(c->failed ? NULL : calls, j, v) {
        json_t *use = tool_use(c, i, j, v);
        if (c->failed)
            break;
        keel_tctx_push(c, blocks, use);
    }
    if (!c->failed && keel_tctx_get(m, "function_call") != NULL)
        keel_tctx_fail(c, "messages[%zu].function_call: not supported, send tool_calls", i);
    if (c->failed) {
        json_decref(blocks);
        return NULL;
    }
    return blocks;
}

/* a tool message as one tool_result block (in a user turn); a blank content is left out */
static json_t *tool_blocks(struct keel_tctx *c, size_t i, const json_t *m)
{
    json_t *id = json_object_get(m, "tool_call_id");
    json_t *content = keel_tctx_get(m, "content");
    if (!keel_tctx_nonempty(id))
        return keel_tctx_fail(c, "messages[%zu].tool_call_id: must be a non-empty string", i);
    json_t *texts = content_blocks(c, i, content, "tool", 0);
    if (texts == NULL)
        return NULL;
    json_t *block = json_pack("{s:s, s:O}", "type", "tool_result", "tool_use_id", id);
    if (json_array_size(texts) > 0)
        keel_tctx_put(c, block, "content", json_is_string(content) ? json_incref(content) : json_incref(texts));
    json_decref(texts);
    return json_pack("[o]", block);
}

/* ---- the conversation ----------------------------------------------------------------------- */

static const char USER[] = "user", ASSISTANT[] = "assistant";

struct turns {
    json_t *list;     /* the Anthropic messages so far */
    const char *role; /* the last one's role (USER or ASSISTANT, compared by pointer); NULL before the first */
    json_t *content;  /* the last one's content array, owned by list */
};

/* Appends blocks (stolen) as a `role` turn, into the last turn when it has the same role:
 * Anthropic wants the roles to alternate. No blocks add nothing. */
static void add_turn(struct keel_tctx *c, struct turns *t, const char *role, json_t *blocks)
{
    if (blocks == NULL && !c->failed)
        c->oom = 1;
    if (c->failed || c->oom || json_array_size(blocks) == 0) {
        json_decref(blocks);
        return;
    }
    if (t->role == role) {
        if (json_array_extend(t->content, blocks) != 0)
            c->oom = 1;
        json_decref(blocks);
        return;
    }
    json_t *m = json_pack("{s:s, s:O}", "role", role, "content", blocks);
    if (m == NULL || json_array_append_new(t->list, m) != 0) {
        c->oom = 1;
        json_decref(blocks);
        return;
    }
    t->role = role;
    t->content = blocks;
    json_decref(blocks); /* m holds it */
}

/* the text blocks' texts joined with "\n\n"; NULL when there are none */
static json_t *join(struct keel_tctx *c, const json_t *blocks)
{
    size_t k, total = 0;
    json_t *b;
    if (json_array_size(blocks) == 0)
        return NULL;
    json_array_foreach(blocks, k, b)
        total += json_string_length(json_object_get(b, "text")) + 2;
    char *buf = malloc(total), *p = buf;
    if (buf == NULL) {
        c->oom = 1;
        return NULL;
    }
    json_array_foreach(blocks, k, b) {
        json_t *s = json_object_get(b, "text");
        if (k > 0) {
            memcpy(p, "\n\n", 2);
            p += 2;
        }
        memcpy(p, json_string_value(s), json_string_length(s));
        p += json_string_length(s);
    }
    json_t *joined = json_stringn_nocheck(buf, (size_t)(p - buf));
    free(buf);
    if (joined == NULL)
        c->oom = 1;
    return joined;
}

/* The Anthropic messages for OpenAI's, and in *system the system and developer messages' text
 * (NULL when none). NULL after keel_tctx_fail(). */
static json_t *conversation(struct keel_tctx *c, const json_t *msgs, json_t **system)
{
    static const char *const known_system[] = {"role", "content", NULL};
    static const char *const known_assistant[] = {"role", "content", "refusal", "tool_calls", "function_call", NULL};
    static const char *const known_tool[] = {"role", "content", "tool_call_id", NULL};
    struct turns t = {keel_tctx_need(c, json_array()), NULL, NULL};
    json_t *sys = keel_tctx_need(c, json_array());
    size_t i;
    json_t *m;
    *system = NULL;
    if (!json_is_array(msgs))
        keel_tctx_fail(c, "messages: must be an array");
    else if (json_array_size(msgs) == 0)
        keel_tctx_fail(c, "messages: must not be empty");
    json_array_foreach(c->failed ? NULL : msgs, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = keel_tctx_get(m, "content");
        if (!json_is_object(m)) {
            keel_tctx_fail(c, "messages[%zu]: must be an object", i);
        } else if (role == NULL) {
            keel_tctx_fail(c, "messages[%zu].role: must be a string", i);
        } else if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            keel_tctx_drop_unknown(c, m, known_system, "messages[].");
            json_t *texts = keel_tctx_need(c, content_blocks(c, i, content, role, 0));
            if (texts != NULL && json_array_extend(sys, texts) != 0)
                c->oom = 1;
            json_decref(texts);
        } else if (strcmp(role, "user") == 0) {
            keel_tctx_drop_unknown(c, m, known_system, "messages[].");
            add_turn(c, &t, USER, content_blocks(c, i, content, role, PARTS_IMAGE));
        } else if (strcmp(role, "assistant") == 0) {
            keel_tctx_drop_unknown(c, m, known_assistant, "messages[].");
            add_turn(c, &t, ASSISTANT, assistant_blocks(c, i, m));
        } else if (strcmp(role, "tool") == 0) {
            keel_tctx_drop_unknown(c, m, known_tool, "messages[].");
            add_turn(c, &t, USER, tool_blocks(c, i, m));
        } else if (strcmp(role, "function") == 0) {
            keel_tctx_fail(c, "messages[%zu].role: function messages are not supported, send tool messages", i);
        } else {
            keel_tctx_fail(c, "messages[%zu].role: unknown role \"%.64s\"", i, role);
        }
        if (c->failed)
            break;
    }
    if (!c->failed && !c->oom && json_array_size(t.list) == 0)
        keel_tctx_fail(c, "messages: no user or assistant message with content");
    if (!c->failed)
        *system = join(c, sys);
    json_decref(sys);
    if (c->failed) {
        json_decref(t.list);
        return NULL;
    }
    return t.list;
}

/* ---- parameters ----------------------------------------------------------------------------- */

/* max_completion_tokens, else max_tokens, else the default; 0 after keel_tctx_fail() */
static json_int_t max_tokens_of(struct keel_tctx *c, const json_t *req, const struct keel_translate_opts *o)
{
    json_t *mct = keel_tctx_get(req, "max_completion_tokens"), *mt = keel_tctx_get(req, "max_tokens");
    json_t *v = mct != NULL ? mct : mt;
    if (mct != NULL && mt != NULL)
        keel_tctx_drop(c, "max_tokens");
    if (v == NULL)
        return o->default_max_tokens > INT64_MAX ? INT64_MAX : (json_int_t)o->default_max_tokens;
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
        keel_tctx_fail(c, "%s: must be a positive integer", mct != NULL ? "max_completion_tokens" : "max_tokens");
        return 0;
    }
    return json_integer_value(v);
}

/* reasoning_effort's thinking budget; 0: no thinking (absent or "none", or after keel_tctx_fail()) */
static json_int_t thinking_budget(struct keel_tctx *c, const json_t *effort)
{
    static const struct {
        const char *name;
        json_int_t budget;
    } levels[] = {
        {"none", 0},
        {"minimal", KEEL_TRANSLATE_BUDGET_LOW},
        {"low", KEEL_TRANSLATE_BUDGET_LOW},
        {"medium", KEEL_TRANSLATE_BUDGET_MEDIUM},
        {"high", KEEL_TRANSLATE_BUDGET_HIGH},
        {"xhigh", KEEL_TRANSLATE_BUDGET_XHIGH},
    };
    const char *s = json_string_value(effort);
    if (effort == NULL)
        return 0;
    for (size_t k = 0; s != NULL && k < sizeof(levels) / sizeof(levels[0]); k++)
        if (strcmp(s, levels[k].name) == 0)
            return levels[k].budget;
    keel_tctx_fail(c, "reasoning_effort: must be one of none, minimal, low, medium, high, xhigh");
    return 0;
}

/* stop as stop_sequences (empty strings left out); NULL when none or after keel_tctx_fail() */
static json_t *stop_sequences(struct keel_tctx *c, const json_t *stop)
{
    json_t *seqs, *s;
    size_t k;
    if (stop == NULL)
        return NULL;
    if (!json_is_string(stop) && !json_is_array(stop))
        return keel_tctx_fail(c, "stop: must be a string or an array of strings");
    seqs = json_array();
    if (json_is_string(stop) && json_string_length(stop) > 0)
        keel_tctx_push(c, seqs, json_incref((json_t *)stop));
    json_array_foreach(stop, k, s) {
        if (!json_is_string(s)) {
            json_decref(seqs);
            return keel_tctx_fail(c, "stop[%zu]: must be a string", k);
        }
        if (json_string_length(s) > 0)
            keel_tctx_push(c, seqs, json_incref(s));
    }
    if (json_array_size(seqs) == 0) {
        json_decref(seqs);
        return NULL;
    }
    return seqs;
}

/* a number in [0, 1]: v itself inside the range, the bound outside it; NULL after keel_tctx_fail() */
static json_t *unit_interval(struct keel_tctx *c, json_t *v, const char *name)
{
    if (!json_is_number(v))
        return keel_tctx_fail(c, "%s: must be a number", name);
    if (json_number_value(v) < 0)
        return keel_tctx_need(c, json_real(0));
    if (json_number_value(v) > 1)
        return keel_tctx_need(c, json_real(1));
    return json_incref(v);
}

/* tools as Anthropic tools; NULL when none or after keel_tctx_fail() */
static json_t *tools_of(struct keel_tctx *c, const json_t *tools)
{
    json_t *out, *t;
    size_t i;
    if (tools == NULL)
        return NULL;
    if (!json_is_array(tools))
        return keel_tctx_fail(c, "tools: must be an array");
    out = json_array();
    json_array_foreach(tools, i, t) {
        const char *type = json_string_value(json_object_get(t, "type"));
        json_t *fn = json_object_get(t, "function");
        json_t *name = json_object_get(fn, "name"), *desc = keel_tctx_get(fn, "description"),
               *params = keel_tctx_get(fn, "parameters");
        if (type == NULL || strcmp(type, "function") != 0)
            keel_tctx_fail(c, "tools[%zu]: only function tools are supported", i);
        else if (!keel_tctx_nonempty(name))
            keel_tctx_fail(c, "tools[%zu].function.name: must be a non-empty string", i);
        else if (desc != NULL && !json_is_string(desc))
            keel_tctx_fail(c, "tools[%zu].function.description: must be a string", i);
        else if (params != NULL && !json_is_object(params))
            keel_tctx_fail(c, "tools[%zu].function.parameters: must be a JSON Schema object", i);
        if (c->failed) {
            json_decref(out);
            return NULL;
        }
        if (keel_tctx_get(fn, "strict") != NULL)
            keel_tctx_drop(c, "tools[].function.strict");
        json_t *tool = json_pack("{s:O}", "name", name);
        if (desc != NULL)
            keel_tctx_put(c, tool, "description", json_incref(desc));
        keel_tctx_put(c, tool, "input_schema",
                      params != NULL ? json_incref(params) : json_pack("{s:s}", "type", "object"));
        keel_tctx_push(c, out, tool);
    }
    if (json_array_size(out) == 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* tool_choice and parallel_tool_calls as Anthropic's tool_choice; NULL when neither says
 * anything or after keel_tctx_fail() */
static json_t *tool_choice_of(struct keel_tctx *c, const json_t *choice, const json_t *parallel)
{
    static const char *const names[][2] = {{"auto", "auto"}, {"required", "any"}, {"none", "none"}};
    const char *s = json_string_value(choice), *type = NULL;
    const char *ftype = json_string_value(json_object_get(choice, "type"));
    json_t *name = json_object_get(json_object_get(choice, "function"), "name");
    for (size_t k = 0; s != NULL && k < sizeof(names) / sizeof(names[0]); k++)
        if (strcmp(s, names[k][0]) == 0)
            type = names[k][1];
    if (ftype != NULL && strcmp(ftype, "function") == 0 && keel_tctx_nonempty(name))
        type = "tool";
    else
        name = NULL;
    if (type == NULL && choice != NULL)
        return keel_tctx_fail(c, "tool_choice: must be \"auto\", \"required\", \"none\" or {\"type\": \"function\", "
                                 "\"function\": {\"name\": ...}}");
    if (parallel != NULL && !json_is_boolean(parallel))
        return keel_tctx_fail(c, "parallel_tool_calls: must be a boolean");
    if (type == NULL && !json_is_false(parallel))
        return NULL;
    json_t *tc = keel_tctx_need(c, json_pack("{s:s}", "type", type != NULL ? type : "auto"));
    if (name != NULL)
        keel_tctx_put(c, tc, "name", json_incref(name));
    if (json_is_false(parallel) && (type == NULL || strcmp(type, "none") != 0))
        keel_tctx_put(c, tc, "disable_parallel_tool_use", json_true());
    return tc;
}

/* metadata.user_id, else user, else safety_identifier, as metadata.user_id; NULL when none */
static json_t *metadata_of(struct keel_tctx *c, const json_t *req)
{
    json_t *md = keel_tctx_get(req, "metadata");
    json_t *ids[] = {keel_tctx_get(md, "user_id"), keel_tctx_get(req, "user"), keel_tctx_get(req, "safety_identifier")};
    json_t *uid = NULL;
    for (size_t k = 0; k < 3; k++)
        if (uid == NULL && keel_tctx_nonempty(ids[k]))
            uid = ids[k];
    if (md != NULL && !(json_object_size(md) == 1 && uid == ids[0]))
        keel_tctx_drop(c, "metadata");
    if (ids[1] != NULL && uid != ids[1])
        keel_tctx_drop(c, "user");
    if (ids[2] != NULL && uid != ids[2])
        keel_tctx_drop(c, "safety_identifier");
    return uid != NULL ? keel_tctx_need(c, json_pack("{s:O}", "user_id", uid)) : NULL;
}

/* ---- the body ------------------------------------------------------------------------------- */

/* the output's members, in the order they are written */
enum out_key { K_MODEL, K_MAX_TOKENS, K_SYSTEM, K_MESSAGES, K_STOP, K_TEMPERATURE, K_TOP_P, K_THINKING,
               K_TOOLS, K_TOOL_CHOICE, K_METADATA, K_STREAM, K_COUNT };
static const char *const out_names[K_COUNT] = {"model", "max_tokens", "system", "messages", "stop_sequences",
                                               "temperature", "top_p", "thinking", "tools", "tool_choice",
                                               "metadata", "stream"};

/* the request's members that are translated (the rest are listed as dropped) */
static const char *const translated[] = {"model", "messages", "stream", "max_tokens", "max_completion_tokens",
                                         "stop", "temperature", "top_p", "reasoning_effort", "metadata",
                                         "user", "safety_identifier", "tools", "tool_choice",
                                         "parallel_tool_calls", NULL};

/* Fills v[] from the request; stops at the first problem (c->failed). */
static void translate(struct keel_tctx *c, const json_t *req, const struct keel_translate_opts *o, json_t **v)
{
    json_t *n = keel_tctx_get(req, "n"), *temperature = keel_tctx_get(req, "temperature"),
           *top_p = keel_tctx_get(req, "top_p");
    keel_tctx_drop_unknown(c, req, translated, "");
    if (n != NULL && !(json_is_integer(n) && json_integer_value(n) == 1))
        keel_tctx_fail(c, "n: only 1 choice is supported by an anthropic upstream");
    else if (keel_tctx_get(req, "functions") != NULL || keel_tctx_get(req, "function_call") != NULL)
        keel_tctx_fail(c, "functions: not supported, send tools");
    if (c->failed)
        return;
    v[K_MESSAGES] = keel_tctx_need(c, conversation(c, keel_tctx_get(req, "messages"), &v[K_SYSTEM]));
    json_int_t max = c->failed ? 0 : max_tokens_of(c, req, o);
    json_int_t budget = c->failed ? 0 : thinking_budget(c, keel_tctx_get(req, "reasoning_effort"));
    if (!c->failed)
        v[K_STOP] = stop_sequences(c, keel_tctx_get(req, "stop"));
    /* thinking takes no temperature, and top_p only from 0.95 up; newer models take temperature
     * or top_p, not both */
    if (!c->failed && temperature != NULL && budget > 0)
        keel_tctx_drop(c, "temperature");
    else if (!c->failed && temperature != NULL)
        v[K_TEMPERATURE] = unit_interval(c, temperature, "temperature");
    if (!c->failed && top_p != NULL) {
        v[K_TOP_P] = unit_interval(c, top_p, "top_p");
        if (v[K_TOP_P] != NULL && (budget > 0 ? json_number_value(v[K_TOP_P]) < 0.95 : temperature != NULL)) {
            json_decref(v[K_TOP_P]);
            v[K_TOP_P] = NULL;
            keel_tctx_drop(c, "top_p");
        }
    }
    if (!c->failed)
        v[K_TOOLS] = tools_of(c, keel_tctx_get(req, "tools"));
    if (!c->failed && v[K_TOOLS] != NULL) {
        v[K_TOOL_CHOICE] =
            tool_choice_of(c, keel_tctx_get(req, "tool_choice"), keel_tctx_get(req, "parallel_tool_calls"));
    } else if (!c->failed) {
        if (keel_tctx_get(req, "tool_choice") != NULL)
            keel_tctx_drop(c, "tool_choice");
        if (keel_tctx_get(req, "parallel_tool_calls") != NULL)
            keel_tctx_drop(c, "parallel_tool_calls");
    }
    const char *choice = json_string_value(json_object_get(v[K_TOOL_CHOICE], "type"));
    if (!c->failed && budget > 0 && choice != NULL && (strcmp(choice, "any") == 0 || strcmp(choice, "tool") == 0))
        keel_tctx_fail(
            c, "reasoning_effort: an anthropic upstream does not think with tool_choice \"required\" or a named "
               "function");
    if (c->failed)
        return;
    if (budget > 0) {
        v[K_THINKING] = keel_tctx_need(c, json_pack("{s:s, s:I}", "type", "enabled", "budget_tokens", budget));
        if (max <= budget)
            max = budget + KEEL_TRANSLATE_THINKING_MARGIN;
    }
    v[K_MODEL] = keel_tctx_need(c, json_string(o->model));
    v[K_MAX_TOKENS] = keel_tctx_need(c, json_integer(max));
    v[K_METADATA] = metadata_of(c, req);
    if (o->stream)
        v[K_STREAM] = keel_tctx_need(c, json_true());
}

char *keel_translate_chat_to_messages(const char *body, size_t len, const struct keel_translate_opts *o,
                                      size_t *out_len, char *err, size_t errlen, char *dropped,
                                      size_t droppedlen)
{
    struct keel_tctx c;
    json_t *v[K_COUNT] = {NULL};
    assert(o != NULL && o->model != NULL && o->default_max_tokens > 0);
    *out_len = 0;
    json_t *req = keel_tctx_begin(&c, body, len, err, errlen, dropped, droppedlen);
    if (req != NULL)
        translate(&c, req, o, v);
    char *s = keel_tctx_finish(&c, v, out_names, K_COUNT, out_len);
    json_decref(req);
    return s;
}
