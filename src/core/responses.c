/* responses.c - the OpenAI Responses decoder (core/event.h), kind "openai-responses": an upstream
 * that serves the Responses API natively. Its stream is typed events (`event: TYPE`, data with
 * "type": TYPE), relayed untouched to a Responses client; this decoder judges each one as
 * DESIGN.md "Content progress" says, and a whole Response object, with its usage in OpenAI's chat
 * counts and its error's code as classify.c reads it.
 * Judge-only for now: a callback is handed ERROR events only (error frames and error answers,
 * as every decoder hands them), never content, so keel uses it on the native pass-through path
 * alone; translating a Responses answer into another protocol's is left to a later decoder. */
#include "core/event.h"

#include <string.h>

#include "core/json.h"

/* ---- reading fields ---- */

/* a stream event's data, its "response" (a Response object) and a whole answer: one set of keys */
enum { ROOT_TYPE, ROOT_DELTA, ROOT_ITEM, ROOT_RESPONSE, ROOT_CODE, ROOT_ERROR, ROOT_OUTPUT, ROOT_STATUS,
       ROOT_USAGE, ROOT_N };
static const struct keel_key root_keys[ROOT_N] = {
    [ROOT_TYPE] = KEEL_KEY("type"),         [ROOT_DELTA] = KEEL_KEY("delta"),   [ROOT_ITEM] = KEEL_KEY("item"),
    [ROOT_RESPONSE] = KEEL_KEY("response"), [ROOT_CODE] = KEEL_KEY("code"),     [ROOT_ERROR] = KEEL_KEY("error"),
    [ROOT_OUTPUT] = KEEL_KEY("output"),     [ROOT_STATUS] = KEEL_KEY("status"), [ROOT_USAGE] = KEEL_KEY("usage"),
};

/* an output item (message, function_call, reasoning...) */
enum { ITEM_TYPE, ITEM_NAME, ITEM_CONTENT, ITEM_N };
static const struct keel_key item_keys[ITEM_N] = {
    [ITEM_TYPE] = KEEL_KEY("type"), [ITEM_NAME] = KEEL_KEY("name"), [ITEM_CONTENT] = KEEL_KEY("content"),
};

/* a message's content part: output_text (text) or refusal (refusal) */
enum { PART_TYPE, PART_TEXT, PART_REFUSAL, PART_N };
static const struct keel_key part_keys[PART_N] = {
    [PART_TYPE] = KEEL_KEY("type"), [PART_TEXT] = KEEL_KEY("text"), [PART_REFUSAL] = KEEL_KEY("refusal"),
};

enum { USAGE_INPUT, USAGE_OUTPUT, USAGE_TOTAL, USAGE_DETAILS, USAGE_N };
static const struct keel_key usage_keys[USAGE_N] = {
    [USAGE_INPUT] = KEEL_KEY("input_tokens"), [USAGE_OUTPUT] = KEEL_KEY("output_tokens"),
    [USAGE_TOTAL] = KEEL_KEY("total_tokens"), [USAGE_DETAILS] = KEEL_KEY("input_tokens_details"),
};

enum { ERR_CODE, ERR_TYPE, ERR_N };
static const struct keel_key err_keys[ERR_N] = {[ERR_CODE] = KEEL_KEY("code"), [ERR_TYPE] = KEEL_KEY("type")};

static const struct keel_key message_type = KEEL_KEY("message");
static const struct keel_key call_type = KEEL_KEY("function_call");
static const struct keel_key failed_status = KEEL_KEY("failed");

/* The stream's event types judged other than idle. Several are longer than a keel_key may be,
 * so a frame's type is decoded once and compared as a C string. */
enum { T_TEXT_DELTA, T_REFUSAL_DELTA, T_SUMMARY_DELTA, T_REASONING_DELTA, T_ARGS_DELTA, T_ITEM_ADDED, T_COMPLETED,
       T_INCOMPLETE, T_FAILED, T_ERROR, T_N };
static const char *const types[T_N] = {
    [T_TEXT_DELTA] = "response.output_text.delta",
    [T_REFUSAL_DELTA] = "response.refusal.delta",
    [T_SUMMARY_DELTA] = "response.reasoning_summary_text.delta",
    [T_REASONING_DELTA] = "response.reasoning_text.delta",
    [T_ARGS_DELTA] = "response.function_call_arguments.delta",
    [T_ITEM_ADDED] = "response.output_item.added",
    [T_COMPLETED] = "response.completed",
    [T_INCOMPLETE] = "response.incomplete",
    [T_FAILED] = "response.failed",
    [T_ERROR] = "error",
};

/* the longest type above, and then some: a longer one is none of them */
#define TYPE_MAX 64

/* The frame's type: the data's "type", else the SSE event's name; T_N when it is none of types[]
 * (response.created, response.in_progress, content_part.added, output_text.done, types to come). */
static size_t type_of(const char *event, struct keel_json type)
{
    char buf[TYPE_MAX];
    const char *s = event;
    if (type.p != NULL) {
        long n = keel_json_string(type, buf, sizeof(buf));
        if (n < 0 || n >= (long)sizeof(buf))
            return T_N;
        s = buf;
    }
    size_t t = 0;
    while (t < T_N && strcmp(types[t], s) != 0)
        t++;
    return t;
}

/* A token count: one that is no integer, or is negative, reads as 0. */
static long long tokens(struct keel_json v)
{
    long long i;
    return keel_json_int(v, &i) == 0 && i > 0 ? i : 0;
}

/* Usage object us in OpenAI's counts into *u (total_tokens as sent, else the sum): 1; 0 with *u
 * untouched when us is no object (a Response in progress says "usage": null). */
static int usage_of(struct keel_json us, struct keel_usage *u)
{
    struct keel_json f[USAGE_N];
    if (keel_json_type(us) != KEEL_JSON_OBJECT)
        return 0;
    keel_key_pick(us, usage_keys, USAGE_N, f);
    u->present = 1;
    u->prompt_tokens = tokens(f[USAGE_INPUT]);
    u->completion_tokens = tokens(f[USAGE_OUTPUT]);
    u->total_tokens = f[USAGE_TOTAL].p != NULL ? tokens(f[USAGE_TOTAL]) : u->prompt_tokens + u->completion_tokens;
    u->cached_tokens = tokens(keel_json_get(f[USAGE_DETAILS], "cached_tokens"));
    return 1;
}

/* ---- error codes ---- */

/* a code member into code: a string decoded, an integer as written; "" for anything else */
static void copy_code(struct keel_json v, char *code, size_t codelen)
{
    long long i;
    code[0] = '\0';
    if (keel_json_type(v) == KEEL_JSON_STRING) {
        if (keel_json_string(v, code, codelen) < 0)
            code[0] = '\0';
    } else if (keel_json_int(v, &i) == 0 && v.len < codelen) {
        memcpy(code, v.p, v.len);
        code[v.len] = '\0';
    }
}

/* An error object's code, else its type (OpenAI's codes, which classify.c knows:
 * rate_limit_exceeded, insufficient_quota, server_overloaded...); "" when it is no object or
 * says neither. */
static void code_of(struct keel_json err, char *code, size_t codelen)
{
    struct keel_json f[ERR_N];
    if (codelen == 0)
        return;
    keel_key_pick(err, err_keys, ERR_N, f);
    copy_code(f[ERR_CODE], code, codelen);
    if (code[0] == '\0')
        copy_code(f[ERR_TYPE], code, codelen);
}

/* an "error" member that is an error: a Response says "error": null when all went well */
static int is_error(struct keel_json err)
{
    return keel_json_type(err) == KEEL_JSON_OBJECT;
}

/* ---- a stream's frames ---- */

/* An `error` event: {"type":"error","code":...,"message":...}; its code, else that of an "error"
 * object some servers nest instead (never the top-level "type", which is "error" itself). */
static void error_event(struct keel_decoder *d, struct keel_json root, const struct keel_json *f,
                        struct keel_chunk_info *info)
{
    info->kind = KEEL_CHUNK_ERROR;
    copy_code(f[ROOT_CODE], info->error_code, sizeof(info->error_code));
    if (info->error_code[0] == '\0')
        code_of(f[ROOT_ERROR], info->error_code, sizeof(info->error_code));
    keel_decoder_emit_error(d, info->error_code, root, f[ROOT_ERROR]);
}

/* response.output_item.added: a function call that already has its name is content, as a named
 * call is to keel's other decoders (a call without arguments must not look empty) */
static int named_call(struct keel_json item)
{
    struct keel_json it[ITEM_N];
    keel_key_pick(item, item_keys, ITEM_N, it);
    return keel_key_is(it[ITEM_TYPE], call_type) && keel_json_nonempty(it[ITEM_NAME]);
}

static void frame(struct keel_decoder *d, const char *event, const char *data, size_t len,
                  struct keel_chunk_info *info)
{
    struct keel_json root, f[ROOT_N], r[ROOT_N];
    memset(info, 0, sizeof(*info));
    if (keel_decoder_open(d, event, data, len, info, &root) != 0)
        return;
    keel_key_pick(root, root_keys, ROOT_N, f);
    size_t type = strcmp(event, "error") == 0 ? T_ERROR : type_of(event, f[ROOT_TYPE]);
    info->kind = KEEL_CHUNK_IDLE;
    switch (type) {
    case T_TEXT_DELTA:
    case T_REFUSAL_DELTA:
    case T_SUMMARY_DELTA:
    case T_REASONING_DELTA:
    case T_ARGS_DELTA:
        if (keel_json_nonempty(f[ROOT_DELTA]))
            info->kind = KEEL_CHUNK_PROGRESS;
        break;
    case T_ITEM_ADDED:
        if (named_call(f[ROOT_ITEM]))
            info->kind = KEEL_CHUNK_PROGRESS;
        break;
    case T_COMPLETED:
    case T_INCOMPLETE:
        info->kind = KEEL_CHUNK_DONE;
        keel_key_pick(f[ROOT_RESPONSE], root_keys, ROOT_N, r);
        info->has_usage = usage_of(r[ROOT_USAGE], &info->usage);
        break;
    case T_FAILED:
        info->kind = KEEL_CHUNK_ERROR;
        keel_key_pick(f[ROOT_RESPONSE], root_keys, ROOT_N, r);
        code_of(r[ROOT_ERROR], info->error_code, sizeof(info->error_code));
        info->has_usage = usage_of(r[ROOT_USAGE], &info->usage);
        keel_decoder_emit_error(d, info->error_code, root, r[ROOT_ERROR]);
        break;
    case T_ERROR:
        error_event(d, root, f, info);
        break;
    default:
        break; /* response.created, in_progress, content_part.added, output_text.done...: no progress */
    }
}

/* ---- a whole answer ---- */

/* whether a message item's content holds a non-empty output_text or refusal */
static int message_has_content(struct keel_json content)
{
    static const struct keel_key part_types[] = {KEEL_KEY("output_text"), KEEL_KEY("refusal")};
    struct keel_json part, p[PART_N];
    size_t pos = 0;
    if (keel_json_type(content) != KEEL_JSON_ARRAY)
        return 0;
    while (keel_json_next(content, &pos, NULL, &part)) {
        keel_key_pick(part, part_keys, PART_N, p);
        size_t t = keel_key_find(p[PART_TYPE], part_types, 2);
        if (t < 2 && keel_json_nonempty(p[t == 0 ? PART_TEXT : PART_REFUSAL]))
            return 1;
    }
    return 0;
}

/* whether output holds what a client reads: a message with text or a refusal, or a function call */
static int output_has_content(struct keel_json output)
{
    struct keel_json item, it[ITEM_N];
    size_t pos = 0;
    if (keel_json_type(output) != KEEL_JSON_ARRAY)
        return 0;
    while (keel_json_next(output, &pos, NULL, &item)) {
        keel_key_pick(item, item_keys, ITEM_N, it);
        if (keel_key_is(it[ITEM_TYPE], call_type) ||
            (keel_key_is(it[ITEM_TYPE], message_type) && message_has_content(it[ITEM_CONTENT])))
            return 1;
    }
    return 0;
}

/* ERROR when the Response carries an error object or says it failed (whatever output it holds:
 * a failed answer is no answer), its code from the error; else OK when its output holds content,
 * EMPTY when not (an incomplete Response too). Usage as a stream's end reports it. */
static enum keel_answer_kind body(struct keel_decoder *d, const char *text, size_t len, char *code, size_t codelen,
                                  struct keel_usage *usage)
{
    struct keel_json root, f[ROOT_N];
    struct keel_usage n = {0};
    if (keel_decoder_open_body(text, len, code, codelen, &root) != 0)
        return KEEL_ANSWER_MALFORMED;
    keel_key_pick(root, root_keys, ROOT_N, f);
    if (usage_of(f[ROOT_USAGE], &n) && usage != NULL)
        *usage = n;
    if (is_error(f[ROOT_ERROR]) || keel_key_is(f[ROOT_STATUS], failed_status)) {
        code_of(f[ROOT_ERROR], code, codelen);
        keel_decoder_emit_error(d, codelen > 0 ? code : "", root, f[ROOT_ERROR]);
        return KEEL_ANSWER_ERROR;
    }
    return output_has_content(f[ROOT_OUTPUT]) ? KEEL_ANSWER_OK : KEEL_ANSWER_EMPTY;
}

/* An error body is OpenAI's ({"error": {"code", "type", ...}}): read as the OpenAI decoder reads it. */
static void error_code(const char *text, size_t len, char *code, size_t codelen)
{
    keel_openai_decoder.error_code(text, len, code, codelen);
}

const struct keel_decoder_ops keel_responses_decoder = {
    .kind = "openai-responses",
    .frame = frame,
    .body = body,
    .error_code = error_code,
};
