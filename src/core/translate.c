/* translate.c - an OpenAI chat body as an Anthropic Messages body; see translate.h. Builders
 * put what they make straight into their parent and carry on when jansson runs out of memory
 * (ctx.oom; the result is thrown away at the end); a request that cannot be translated stops at
 * the first problem (ctx.failed, its message in ctx.err). */
#include "core/translate.h"

#include <assert.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h> /* snprintf */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"

struct ctx {
    char *err; /* NULL or errlen bytes; written by the first fail() only */
    size_t errlen;
    char *dropped; /* NULL or droppedlen bytes, always NUL-terminated */
    size_t droppedlen;
    int failed; /* the request cannot be translated: err says why */
    int oom;    /* an allocation failed: the result is discarded */
};

/* ---- bookkeeping ---------------------------------------------------------------------------- */

/* Records why the request cannot be translated; returns NULL for `return fail(...)`. */
__attribute__((format(printf, 2, 3))) static json_t *fail(struct ctx *c, const char *fmt, ...)
{
    if (!c->failed && c->err != NULL && c->errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    c->failed = 1;
    return NULL;
}

/* Lists `name` as not sent, once. A client's unknown key reaches the logs this way, so bytes
 * outside [A-Za-z0-9_.[]-] become '?' and a name is cut at 63 bytes. */
static void drop(struct ctx *c, const char *name)
{
    char clean[64];
    size_t n = 0;
    if (c->dropped == NULL || c->droppedlen == 0)
        return;
    for (; name[n] != '\0' && n < sizeof(clean) - 1; n++) {
        char ch = name[n];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 strchr("_.[]-", ch) != NULL;
        clean[n] = ok ? ch : '?';
    }
    clean[n] = '\0';
    size_t used = strlen(c->dropped);
    for (size_t at = 0; at < used;) {
        size_t end = at;
        while (end < used && c->dropped[end] != ',')
            end++;
        if (end - at == n && memcmp(c->dropped + at, clean, n) == 0)
            return;
        at = end + 1;
    }
    if (n == 0 || used + (used > 0) + n + 1 > c->droppedlen)
        return;
    if (used > 0)
        c->dropped[used++] = ',';
    memcpy(c->dropped + used, clean, n + 1);
}

/* The set_new/append_new of jansson, noting a failure (they free `v` when they fail). */
static void put(struct ctx *c, json_t *obj, const char *key, json_t *v)
{
    if (json_object_set_new(obj, key, v) != 0)
        c->oom = 1;
}

static void push(struct ctx *c, json_t *arr, json_t *v)
{
    if (json_array_append_new(arr, v) != 0)
        c->oom = 1;
}

/* v, noting an allocation failure when it is NULL without a fail() */
static json_t *need(struct ctx *c, json_t *v)
{
    if (v == NULL && !c->failed)
        c->oom = 1;
    return v;
}

/* obj's member `key`; a JSON null counts as absent, as OpenAI's clients send it */
static json_t *get(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/* jansson's tree of [s, s+n); NULL when it failed, the reason in *code. jansson reports running
 * out of memory as a syntax error, so a failure on a text keel's scanner accepts is taken for one
 * (c->oom), unless jansson says why it refuses valid JSON (a number past 64 bits, a NUL in a
 * key). Without JSON_DECODE_ANY only an object or array is a tree. */
static json_t *load(struct ctx *c, const char *s, size_t n, enum json_error_code *code)
{
    json_error_t je;
    struct keel_json root;
    json_t *v = json_loadb(s, n, JSON_ALLOW_NUL, &je);
    if (v != NULL)
        return v;
    *code = json_error_code(&je);
    if (*code != json_error_numeric_overflow && *code != json_error_null_byte_in_key && keel_json_parse(s, n, &root) == 0 &&
        (keel_json_type(root) == KEEL_JSON_OBJECT || keel_json_type(root) == KEEL_JSON_ARRAY))
        c->oom = 1;
    return NULL;
}

static int nonempty(const json_t *s)
{
    return json_is_string(s) && json_string_length(s) > 0;
}

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

static int in_list(const char *key, const char *const *list)
{
    for (; *list != NULL; list++)
        if (strcmp(key, *list) == 0)
            return 1;
    return 0;
}

/* Lists obj's non-null members that are not in `known` as dropped, `prefix` before each. */
static void drop_unknown(struct ctx *c, const json_t *obj, const char *const *known, const char *prefix)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        char name[64];
        if (json_is_null(v) || in_list(key, known))
            continue;
        snprintf(name, sizeof(name), "%s%s", prefix, key);
        drop(c, name);
    }
}

/* ---- content blocks ------------------------------------------------------------------------- */

/* Appends {"type":"text","text":s} to blocks, unless s is blank. */
static void add_text(struct ctx *c, json_t *blocks, json_t *s)
{
    if (!blank(s))
        push(c, blocks, json_pack("{s:s, s:O}", "type", "text", "text", s));
}

/* part[key] as a string, or NULL after fail() */
static json_t *part_string(struct ctx *c, size_t i, size_t j, const json_t *part, const char *key)
{
    json_t *s = json_object_get(part, key);
    if (!json_is_string(s))
        return fail(c, "messages[%zu].content[%zu].%s: must be a string", i, j, key);
    return s;
}

/* part's "type", or NULL after fail() */
static const char *part_type(struct ctx *c, size_t i, size_t j, const json_t *part)
{
    const char *type = json_string_value(json_object_get(part, "type"));
    if (type == NULL)
        fail(c, "messages[%zu].content[%zu]: must be an object with a string type", i, j);
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
 * http(s) URL as a url source. NULL after fail(). */
static json_t *image_block(struct ctx *c, size_t i, size_t j, const json_t *part)
{
    static const char b64[] = ";base64,";
    json_t *iu = json_object_get(part, "image_url");
    json_t *url = json_is_string(iu) ? iu : json_object_get(iu, "url");
    const char *u = json_string_value(url);
    size_t n = json_string_length(url);
    if (u == NULL)
        return fail(c, "messages[%zu].content[%zu].image_url.url: must be a string", i, j);
    if (n >= 5 && strncasecmp(u, "data:", 5) == 0) {
        const char *type = u + 5, *end = u + n;
        const char *semi = memchr(type, ';', n - 5);
        size_t blen = sizeof(b64) - 1;
        if (semi == NULL || semi == type || (size_t)(end - semi) <= blen || strncasecmp(semi, b64, blen) != 0)
            return fail(c, "messages[%zu].content[%zu]: image_url data: URL must be data:<media type>;base64,<data>",
                        i, j);
        const char *media = image_media_type(type, (size_t)(semi - type));
        if (media == NULL)
            return fail(c,
                        "messages[%zu].content[%zu]: image media type %.*s is not supported (image/jpeg, "
                        "image/png, image/gif, image/webp)",
                        i, j, (int)(semi - type > 64 ? 64 : semi - type), type);
        return json_pack("{s:s, s:{s:s, s:s, s:s%}}", "type", "image", "source", "type", "base64", "media_type", media,
                         "data", semi + blen, (size_t)(end - semi - blen));
    }
    if ((n > 7 && strncasecmp(u, "http://", 7) == 0) || (n > 8 && strncasecmp(u, "https://", 8) == 0))
        return json_pack("{s:s, s:{s:s, s:O}}", "type", "image", "source", "type", "url", "url", url);
    return fail(c, "messages[%zu].content[%zu]: image_url must be a data: URL or an http(s) URL", i, j);
}

/* what a role's content parts may be, beyond text (enum part_kinds) */
enum part_kinds {
    PARTS_IMAGE = 1 << 0,   /* image_url; input_audio and file are refused as unsupported */
    PARTS_REFUSAL = 1 << 1, /* refusal, sent as text */
};

/* A string content or an array of content parts as content blocks (blank text left out), as a
 * new array; NULL after fail(). `role` names the message in the error. */
static json_t *content_blocks(struct ctx *c, size_t i, const json_t *content, const char *role, unsigned kinds)
{
    json_t *blocks = json_array();
    size_t j;
    json_t *part;
    if (json_is_string(content)) {
        add_text(c, blocks, (json_t *)content);
        return blocks;
    }
    if (!json_is_array(content))
        fail(c, "messages[%zu].content: must be a string or an array of %s parts", i, kinds == 0 ? "text" : "content");
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
                push(c, blocks, image);
        } else if (audio_or_file && (kinds & PARTS_IMAGE)) {
            fail(c, "messages[%zu].content[%zu]: %s parts are not supported by an anthropic upstream", i, j, type);
        } else if (kinds & PARTS_IMAGE) {
            fail(c, "messages[%zu].content[%zu]: unknown content part type \"%.64s\"", i, j, type);
        } else {
            fail(c, "messages[%zu].content[%zu]: %s messages hold %s parts only", i, j, role,
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
 * as {}) become the block's input. NULL after fail(). */
static json_t *tool_use(struct ctx *c, size_t i, size_t j, const json_t *call)
{
    const char *type = json_string_value(json_object_get(call, "type"));
    json_t *id = json_object_get(call, "id");
    json_t *fn = json_object_get(call, "function");
    json_t *name = json_object_get(fn, "name");
    json_t *args = get(fn, "arguments");
    json_t *input = NULL;
    enum json_error_code code;
    int typed = json_object_get(call, "type") != NULL;
    if (!json_is_object(call) || (typed && (type == NULL || strcmp(type, "function") != 0)))
        return fail(c, "messages[%zu].tool_calls[%zu]: only function tool calls are supported", i, j);
    if (!nonempty(id))
        return fail(c, "messages[%zu].tool_calls[%zu].id: must be a non-empty string", i, j);
    if (!nonempty(name))
        return fail(c, "messages[%zu].tool_calls[%zu].function.name: must be a non-empty string", i, j);
    if (args == NULL || (json_is_string(args) && blank(args)))
        input = need(c, json_object());
    else if (json_is_string(args))
        input = load(c, json_string_value(args), json_string_length(args), &code);
    if (c->oom)
        return NULL;
    if (!json_is_object(input)) {
        json_decref(input);
        return fail(c, "messages[%zu].tool_calls[%zu].function.arguments: must be a string holding a JSON object", i, j);
    }
    return json_pack("{s:s, s:O, s:O, s:o}", "type", "tool_use", "id", id, "name", name, "input", input);
}

/* content (text and refusal parts), refusal, then each tool call as a tool_use block */
static json_t *assistant_blocks(struct ctx *c, size_t i, const json_t *m)
{
    json_t *content = get(m, "content"), *refusal = get(m, "refusal"), *calls = get(m, "tool_calls");
    json_t *blocks = content != NULL ? content_blocks(c, i, content, "assistant", PARTS_REFUSAL) : json_array();
    size_t j;
    json_t *v;
    if (!c->failed && refusal != NULL && !json_is_string(refusal))
        fail(c, "messages[%zu].refusal: must be a string", i);
    else if (!c->failed && refusal != NULL)
        add_text(c, blocks, refusal);
    if (!c->failed && calls != NULL && !json_is_array(calls))
        fail(c, "messages[%zu].tool_calls: must be an array", i);
    json_array_foreach(c->failed ? NULL : calls, j, v) {
        json_t *use = tool_use(c, i, j, v);
        if (c->failed)
            break;
        push(c, blocks, use);
    }
    if (!c->failed && get(m, "function_call") != NULL)
        fail(c, "messages[%zu].function_call: not supported, send tool_calls", i);
    if (c->failed) {
        json_decref(blocks);
        return NULL;
    }
    return blocks;
}

/* a tool message as one tool_result block (in a user turn); a blank content is left out */
static json_t *tool_blocks(struct ctx *c, size_t i, const json_t *m)
{
    json_t *id = json_object_get(m, "tool_call_id");
    json_t *content = get(m, "content");
    if (!nonempty(id))
        return fail(c, "messages[%zu].tool_call_id: must be a non-empty string", i);
    json_t *texts = content_blocks(c, i, content, "tool", 0);
    if (texts == NULL)
        return NULL;
    json_t *block = json_pack("{s:s, s:O}", "type", "tool_result", "tool_use_id", id);
    if (json_array_size(texts) > 0)
        put(c, block, "content", json_is_string(content) ? json_incref(content) : json_incref(texts));
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
static void add_turn(struct ctx *c, struct turns *t, const char *role, json_t *blocks)
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
static json_t *join(struct ctx *c, const json_t *blocks)
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
 * (NULL when none). NULL after fail(). */
static json_t *conversation(struct ctx *c, const json_t *msgs, json_t **system)
{
    static const char *const known_system[] = {"role", "content", NULL};
    static const char *const known_assistant[] = {"role", "content", "refusal", "tool_calls", "function_call", NULL};
    static const char *const known_tool[] = {"role", "content", "tool_call_id", NULL};
    struct turns t = {need(c, json_array()), NULL, NULL};
    json_t *sys = need(c, json_array());
    size_t i;
    json_t *m;
    *system = NULL;
    if (!json_is_array(msgs))
        fail(c, "messages: must be an array");
    else if (json_array_size(msgs) == 0)
        fail(c, "messages: must not be empty");
    json_array_foreach(c->failed ? NULL : msgs, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = get(m, "content");
        if (!json_is_object(m)) {
            fail(c, "messages[%zu]: must be an object", i);
        } else if (role == NULL) {
            fail(c, "messages[%zu].role: must be a string", i);
        } else if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            drop_unknown(c, m, known_system, "messages[].");
            json_t *texts = need(c, content_blocks(c, i, content, role, 0));
            if (texts != NULL && json_array_extend(sys, texts) != 0)
                c->oom = 1;
            json_decref(texts);
        } else if (strcmp(role, "user") == 0) {
            drop_unknown(c, m, known_system, "messages[].");
            add_turn(c, &t, USER, content_blocks(c, i, content, role, PARTS_IMAGE));
        } else if (strcmp(role, "assistant") == 0) {
            drop_unknown(c, m, known_assistant, "messages[].");
            add_turn(c, &t, ASSISTANT, assistant_blocks(c, i, m));
        } else if (strcmp(role, "tool") == 0) {
            drop_unknown(c, m, known_tool, "messages[].");
            add_turn(c, &t, USER, tool_blocks(c, i, m));
        } else if (strcmp(role, "function") == 0) {
            fail(c, "messages[%zu].role: function messages are not supported, send tool messages", i);
        } else {
            fail(c, "messages[%zu].role: unknown role \"%.64s\"", i, role);
        }
        if (c->failed)
            break;
    }
    if (!c->failed && !c->oom && json_array_size(t.list) == 0)
        fail(c, "messages: no user or assistant message with content");
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

/* max_completion_tokens, else max_tokens, else the default; 0 after fail() */
static json_int_t max_tokens_of(struct ctx *c, const json_t *req, const struct keel_translate_opts *o)
{
    json_t *mct = get(req, "max_completion_tokens"), *mt = get(req, "max_tokens");
    json_t *v = mct != NULL ? mct : mt;
    if (mct != NULL && mt != NULL)
        drop(c, "max_tokens");
    if (v == NULL)
        return o->default_max_tokens > INT64_MAX ? INT64_MAX : (json_int_t)o->default_max_tokens;
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
        fail(c, "%s: must be a positive integer", mct != NULL ? "max_completion_tokens" : "max_tokens");
        return 0;
    }
    return json_integer_value(v);
}

/* reasoning_effort's thinking budget; 0: no thinking (absent or "none", or after fail()) */
static json_int_t thinking_budget(struct ctx *c, const json_t *effort)
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
    fail(c, "reasoning_effort: must be one of none, minimal, low, medium, high, xhigh");
    return 0;
}

/* stop as stop_sequences (empty strings left out); NULL when none or after fail() */
static json_t *stop_sequences(struct ctx *c, const json_t *stop)
{
    json_t *seqs, *s;
    size_t k;
    if (stop == NULL)
        return NULL;
    if (!json_is_string(stop) && !json_is_array(stop))
        return fail(c, "stop: must be a string or an array of strings");
    seqs = json_array();
    if (json_is_string(stop) && json_string_length(stop) > 0)
        push(c, seqs, json_incref((json_t *)stop));
    json_array_foreach(stop, k, s) {
        if (!json_is_string(s)) {
            json_decref(seqs);
            return fail(c, "stop[%zu]: must be a string", k);
        }
        if (json_string_length(s) > 0)
            push(c, seqs, json_incref(s));
    }
    if (json_array_size(seqs) == 0) {
        json_decref(seqs);
        return NULL;
    }
    return seqs;
}

/* a number in [0, 1]: v itself inside the range, the bound outside it; NULL after fail() */
static json_t *unit_interval(struct ctx *c, json_t *v, const char *name)
{
    if (!json_is_number(v))
        return fail(c, "%s: must be a number", name);
    if (json_number_value(v) < 0)
        return need(c, json_real(0));
    if (json_number_value(v) > 1)
        return need(c, json_real(1));
    return json_incref(v);
}

/* tools as Anthropic tools; NULL when none or after fail() */
static json_t *tools_of(struct ctx *c, const json_t *tools)
{
    json_t *out, *t;
    size_t i;
    if (tools == NULL)
        return NULL;
    if (!json_is_array(tools))
        return fail(c, "tools: must be an array");
    out = json_array();
    json_array_foreach(tools, i, t) {
        const char *type = json_string_value(json_object_get(t, "type"));
        json_t *fn = json_object_get(t, "function");
        json_t *name = json_object_get(fn, "name"), *desc = get(fn, "description"), *params = get(fn, "parameters");
        if (type == NULL || strcmp(type, "function") != 0)
            fail(c, "tools[%zu]: only function tools are supported", i);
        else if (!nonempty(name))
            fail(c, "tools[%zu].function.name: must be a non-empty string", i);
        else if (desc != NULL && !json_is_string(desc))
            fail(c, "tools[%zu].function.description: must be a string", i);
        else if (params != NULL && !json_is_object(params))
            fail(c, "tools[%zu].function.parameters: must be a JSON Schema object", i);
        if (c->failed) {
            json_decref(out);
            return NULL;
        }
        if (get(fn, "strict") != NULL)
            drop(c, "tools[].function.strict");
        json_t *tool = json_pack("{s:O}", "name", name);
        if (desc != NULL)
            put(c, tool, "description", json_incref(desc));
        put(c, tool, "input_schema", params != NULL ? json_incref(params) : json_pack("{s:s}", "type", "object"));
        push(c, out, tool);
    }
    if (json_array_size(out) == 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* tool_choice and parallel_tool_calls as Anthropic's tool_choice; NULL when neither says
 * anything or after fail() */
static json_t *tool_choice_of(struct ctx *c, const json_t *choice, const json_t *parallel)
{
    static const char *const names[][2] = {{"auto", "auto"}, {"required", "any"}, {"none", "none"}};
    const char *s = json_string_value(choice), *type = NULL;
    const char *ftype = json_string_value(json_object_get(choice, "type"));
    json_t *name = json_object_get(json_object_get(choice, "function"), "name");
    for (size_t k = 0; s != NULL && k < sizeof(names) / sizeof(names[0]); k++)
        if (strcmp(s, names[k][0]) == 0)
            type = names[k][1];
    if (ftype != NULL && strcmp(ftype, "function") == 0 && nonempty(name))
        type = "tool";
    else
        name = NULL;
    if (type == NULL && choice != NULL)
        return fail(c, "tool_choice: must be \"auto\", \"required\", \"none\" or {\"type\": \"function\", "
                       "\"function\": {\"name\": ...}}");
    if (parallel != NULL && !json_is_boolean(parallel))
        return fail(c, "parallel_tool_calls: must be a boolean");
    if (type == NULL && !json_is_false(parallel))
        return NULL;
    json_t *tc = need(c, json_pack("{s:s}", "type", type != NULL ? type : "auto"));
    if (name != NULL)
        put(c, tc, "name", json_incref(name));
    if (json_is_false(parallel) && (type == NULL || strcmp(type, "none") != 0))
        put(c, tc, "disable_parallel_tool_use", json_true());
    return tc;
}

/* metadata.user_id, else user, else safety_identifier, as metadata.user_id; NULL when none */
static json_t *metadata_of(struct ctx *c, const json_t *req)
{
    json_t *md = get(req, "metadata");
    json_t *ids[] = {get(md, "user_id"), get(req, "user"), get(req, "safety_identifier")};
    json_t *uid = NULL;
    for (size_t k = 0; k < 3; k++)
        if (uid == NULL && nonempty(ids[k]))
            uid = ids[k];
    if (md != NULL && !(json_object_size(md) == 1 && uid == ids[0]))
        drop(c, "metadata");
    if (ids[1] != NULL && uid != ids[1])
        drop(c, "user");
    if (ids[2] != NULL && uid != ids[2])
        drop(c, "safety_identifier");
    return uid != NULL ? need(c, json_pack("{s:O}", "user_id", uid)) : NULL;
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
static void translate(struct ctx *c, const json_t *req, const struct keel_translate_opts *o, json_t **v)
{
    json_t *n = get(req, "n"), *temperature = get(req, "temperature"), *top_p = get(req, "top_p");
    drop_unknown(c, req, translated, "");
    if (n != NULL && !(json_is_integer(n) && json_integer_value(n) == 1))
        fail(c, "n: only 1 choice is supported by an anthropic upstream");
    else if (get(req, "functions") != NULL || get(req, "function_call") != NULL)
        fail(c, "functions: not supported, send tools");
    if (c->failed)
        return;
    v[K_MESSAGES] = need(c, conversation(c, get(req, "messages"), &v[K_SYSTEM]));
    json_int_t max = c->failed ? 0 : max_tokens_of(c, req, o);
    json_int_t budget = c->failed ? 0 : thinking_budget(c, get(req, "reasoning_effort"));
    if (!c->failed)
        v[K_STOP] = stop_sequences(c, get(req, "stop"));
    /* thinking takes no temperature, and top_p only from 0.95 up; newer models take temperature
     * or top_p, not both */
    if (!c->failed && temperature != NULL && budget > 0)
        drop(c, "temperature");
    else if (!c->failed && temperature != NULL)
        v[K_TEMPERATURE] = unit_interval(c, temperature, "temperature");
    if (!c->failed && top_p != NULL) {
        v[K_TOP_P] = unit_interval(c, top_p, "top_p");
        if (v[K_TOP_P] != NULL && (budget > 0 ? json_number_value(v[K_TOP_P]) < 0.95 : temperature != NULL)) {
            json_decref(v[K_TOP_P]);
            v[K_TOP_P] = NULL;
            drop(c, "top_p");
        }
    }
    if (!c->failed)
        v[K_TOOLS] = tools_of(c, get(req, "tools"));
    if (!c->failed && v[K_TOOLS] != NULL) {
        v[K_TOOL_CHOICE] = tool_choice_of(c, get(req, "tool_choice"), get(req, "parallel_tool_calls"));
    } else if (!c->failed) {
        if (get(req, "tool_choice") != NULL)
            drop(c, "tool_choice");
        if (get(req, "parallel_tool_calls") != NULL)
            drop(c, "parallel_tool_calls");
    }
    const char *choice = json_string_value(json_object_get(v[K_TOOL_CHOICE], "type"));
    if (!c->failed && budget > 0 && choice != NULL && (strcmp(choice, "any") == 0 || strcmp(choice, "tool") == 0))
        fail(c, "reasoning_effort: an anthropic upstream does not think with tool_choice \"required\" or a named "
                "function");
    if (c->failed)
        return;
    if (budget > 0) {
        v[K_THINKING] = need(c, json_pack("{s:s, s:I}", "type", "enabled", "budget_tokens", budget));
        if (max <= budget)
            max = budget + KEEL_TRANSLATE_THINKING_MARGIN;
    }
    v[K_MODEL] = need(c, json_string(o->model));
    v[K_MAX_TOKENS] = need(c, json_integer(max));
    v[K_METADATA] = metadata_of(c, req);
    if (o->stream)
        v[K_STREAM] = need(c, json_true());
}

/* compact JSON, malloc'd (not jansson's allocator: the caller frees with free()) */
static char *dump(const json_t *out, size_t *out_len)
{
    size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
    size_t n = json_dumpb(out, NULL, 0, flags);
    char *s = n > 0 ? malloc(n + 1) : NULL;
    if (s == NULL)
        return NULL;
    if (json_dumpb(out, s, n, flags) != n) {
        free(s);
        return NULL;
    }
    s[n] = '\0';
    *out_len = n;
    return s;
}

char *keel_translate_chat_to_messages(const char *body, size_t len, const struct keel_translate_opts *o,
                                      size_t *out_len, char *err, size_t errlen, char *dropped,
                                      size_t droppedlen)
{
    struct ctx c = {err, errlen, dropped, droppedlen, 0, 0};
    json_t *v[K_COUNT] = {NULL};
    json_t *req = NULL, *out = NULL;
    char *s = NULL;
    assert(o != NULL && o->model != NULL && o->default_max_tokens > 0);
    *out_len = 0;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (dropped != NULL && droppedlen > 0)
        dropped[0] = '\0';
    enum json_error_code code = json_error_unknown;
    if (body != NULL && len > 0)
        req = load(&c, body, len, &code);
    if (c.oom)
        return NULL;
    if (req == NULL && code == json_error_numeric_overflow)
        fail(&c, "request body: a number is out of range");
    else if (req == NULL && code == json_error_null_byte_in_key)
        fail(&c, "request body: an object key holds a NUL character");
    else if (!json_is_object(req))
        fail(&c, "request body must be a JSON object");
    else
        translate(&c, req, o, v);
    if (!c.failed) {
        out = json_object();
        for (size_t k = 0; k < K_COUNT; k++)
            if (v[k] != NULL)
                put(&c, out, out_names[k], json_incref(v[k]));
    }
    if (!c.failed && !c.oom)
        s = dump(out, out_len);
    json_decref(out);
    for (size_t k = 0; k < K_COUNT; k++)
        json_decref(v[k]);
    json_decref(req);
    return s;
}
