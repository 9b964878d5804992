/* openai.c - the OpenAI chat decoder (core/event.h): a stream chunk or a whole answer judged as
 * DESIGN.md "Content progress" says and, when the decoder has a callback, broken into events;
 * a provider error body's code. Fields are read through the span scanner (core/json.h): no tree,
 * no allocation. chunk.c keeps chunk.h's API over this. Writing events out is the assembler's and
 * the stream encoder's (core/assemble.c); the OpenAI chat encoder's table ends this file. */
#include "core/event.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "core/assemble.h"
#include "core/json.h"

/* ---- reading fields ---- */

enum { ROOT_ID, ROOT_MODEL, ROOT_CREATED, ROOT_FINGERPRINT, ROOT_TIER, ROOT_CHOICES, ROOT_USAGE, ROOT_ERROR, ROOT_N };
static const struct keel_key root_keys[ROOT_N] = {
    [ROOT_ID] = KEEL_KEY("id"), [ROOT_MODEL] = KEEL_KEY("model"), [ROOT_CREATED] = KEEL_KEY("created"),
    [ROOT_FINGERPRINT] = KEEL_KEY("system_fingerprint"), [ROOT_TIER] = KEEL_KEY("service_tier"),
    [ROOT_CHOICES] = KEEL_KEY("choices"), [ROOT_USAGE] = KEEL_KEY("usage"), [ROOT_ERROR] = KEEL_KEY("error"),
};

/* a choice: a chunk's carries a delta, a whole answer's a message */
enum { CHOICE_INDEX, CHOICE_DELTA, CHOICE_MESSAGE, CHOICE_LOGPROBS, CHOICE_FINISH, CHOICE_N };
static const struct keel_key choice_keys[CHOICE_N] = {
    [CHOICE_INDEX] = KEEL_KEY("index"), [CHOICE_DELTA] = KEEL_KEY("delta"), [CHOICE_MESSAGE] = KEEL_KEY("message"),
    [CHOICE_LOGPROBS] = KEEL_KEY("logprobs"), [CHOICE_FINISH] = KEEL_KEY("finish_reason"),
};

/* a delta or a message */
enum { MSG_ROLE, MSG_CONTENT, MSG_REASONING_CONTENT, MSG_REASONING, MSG_REFUSAL, MSG_TOOL_CALLS, MSG_N };
static const struct keel_key msg_keys[MSG_N] = {
    [MSG_ROLE] = KEEL_KEY("role"), [MSG_CONTENT] = KEEL_KEY("content"), [MSG_REASONING_CONTENT] = KEEL_KEY("reasoning_content"),
    [MSG_REASONING] = KEEL_KEY("reasoning"), [MSG_REFUSAL] = KEEL_KEY("refusal"), [MSG_TOOL_CALLS] = KEEL_KEY("tool_calls"),
};

enum { CALL_INDEX, CALL_ID, CALL_TYPE, CALL_FUNCTION, CALL_N };
static const struct keel_key call_keys[CALL_N] = {
    [CALL_INDEX] = KEEL_KEY("index"), [CALL_ID] = KEEL_KEY("id"), [CALL_TYPE] = KEEL_KEY("type"), [CALL_FUNCTION] = KEEL_KEY("function"),
};

enum { FN_NAME, FN_ARGS, FN_N };
static const struct keel_key fn_keys[FN_N] = {[FN_NAME] = KEEL_KEY("name"), [FN_ARGS] = KEEL_KEY("arguments")};

enum { LP_CONTENT, LP_REFUSAL, LP_N };
static const struct keel_key lp_keys[LP_N] = {[LP_CONTENT] = KEEL_KEY("content"), [LP_REFUSAL] = KEEL_KEY("refusal")};

enum { USAGE_PROMPT, USAGE_COMPLETION, USAGE_TOTAL, USAGE_DETAILS, USAGE_N };
static const struct keel_key usage_keys[USAGE_N] = {
    [USAGE_PROMPT] = KEEL_KEY("prompt_tokens"), [USAGE_COMPLETION] = KEEL_KEY("completion_tokens"),
    [USAGE_TOTAL] = KEEL_KEY("total_tokens"), [USAGE_DETAILS] = KEEL_KEY("prompt_tokens_details"),
};

enum { CODE_CODE, CODE_TYPE, CODE_N };
static const struct keel_key code_keys[CODE_N] = {[CODE_CODE] = KEEL_KEY("code"), [CODE_TYPE] = KEEL_KEY("type")};

static struct keel_json if_type(struct keel_json v, enum keel_json_type t)
{
    return keel_json_type(v) == t ? v : (struct keel_json){NULL, 0};
}

/* an "index" member as a number, else the element's place in its array */
static uint32_t index_of(struct keel_json v, uint32_t pos)
{
    long long i;
    return keel_json_int(v, &i) == 0 && i >= 0 && i <= UINT32_MAX ? (uint32_t)i : pos;
}

/* ---- judging ---- */

static void copy_code(struct keel_json v, char *code, size_t codelen)
{
    long long i;
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
static int has_error(struct keel_json err)
{
    enum keel_json_type t = keel_json_type(err);
    return t != KEEL_JSON_NONE && t != KEEL_JSON_NULL;
}

/* err: root's "error" member. error.code, then error.type, then top-level code/type */
static void error_code_of(struct keel_json root, struct keel_json err, char *code, size_t codelen)
{
    struct keel_json f[CODE_N];
    if (codelen == 0)
        return;
    keel_key_pick(keel_json_type(err) == KEEL_JSON_OBJECT ? err : root, code_keys, CODE_N, f);
    copy_code(f[CODE_CODE], code, codelen);
    if (code[0] == '\0')
        copy_code(f[CODE_TYPE], code, codelen);
    if (code[0] == '\0' && keel_json_type(err) == KEEL_JSON_STRING) /* {"error": "overloaded"} */
        copy_code(err, code, codelen);
}

static long long int_of(struct keel_json v)
{
    long long i;
    return keel_json_int(v, &i) == 0 ? i : 0;
}

/* fills u from a usage object; leaves it untouched when there is none: 1 when there is one */
static int usage_of(struct keel_json us, struct keel_usage *u)
{
    struct keel_json f[USAGE_N];
    if (keel_json_type(us) != KEEL_JSON_OBJECT)
        return 0;
    keel_key_pick(us, usage_keys, USAGE_N, f);
    u->present = 1;
    u->prompt_tokens = int_of(f[USAGE_PROMPT]);
    u->completion_tokens = int_of(f[USAGE_COMPLETION]);
    u->total_tokens = int_of(f[USAGE_TOTAL]);
    u->cached_tokens = int_of(keel_json_get(f[USAGE_DETAILS], "cached_tokens"));
    return 1;
}

/* ---- events ---- */

/* an event carrying one string, when v is one */
static void emit_string(struct keel_decoder *d, enum keel_ev_kind kind, uint32_t choice, struct keel_json v,
                        int alt)
{
    struct keel_ev ev = {.kind = kind, .choice = choice};
    if (keel_json_type(v) != KEEL_JSON_STRING)
        return;
    if (kind == KEEL_EV_ROLE) {
        ev.u.role = v;
    } else if (kind == KEEL_EV_FINISH) {
        ev.u.finish = v;
    } else {
        ev.u.text.s = v;
        ev.u.text.alt = alt;
    }
    keel_decoder_emit(d, &ev);
}

/* The answer's identity, when the frame carries any of it. null counts as absent: several
 * providers send "system_fingerprint": null in every chunk. */
static void emit_meta(struct keel_decoder *d, const struct keel_json *f)
{
    struct keel_json v[ROOT_TIER + 1];
    int any = 0;
    if (!keel_decoder_decoding(d))
        return;
    for (size_t i = ROOT_ID; i <= ROOT_TIER; i++) {
        v[i] = keel_json_type(f[i]) == KEEL_JSON_NULL ? (struct keel_json){NULL, 0} : f[i];
        any |= v[i].p != NULL;
    }
    if (!any)
        return;
    struct keel_ev ev = {.kind = KEEL_EV_META};
    ev.u.meta.id = v[ROOT_ID];
    ev.u.meta.model = v[ROOT_MODEL];
    ev.u.meta.created = v[ROOT_CREATED];
    ev.u.meta.system_fingerprint = v[ROOT_FINGERPRINT];
    ev.u.meta.service_tier = v[ROOT_TIER];
    keel_decoder_emit(d, &ev);
}

static void emit_usage(struct keel_decoder *d, struct keel_json raw, const struct keel_usage *n)
{
    struct keel_ev ev = {.kind = KEEL_EV_USAGE};
    if (keel_json_type(raw) != KEEL_JSON_OBJECT)
        return;
    ev.u.usage.n = *n;
    ev.u.usage.raw = raw;
    keel_decoder_emit(d, &ev);
}

/* A choice's tool_calls: whether any fragment carries a name or arguments (progress); their
 * events when decoding. A chunk's fragments say their index, an answer's are in order. */
static int calls_of(struct keel_decoder *d, uint32_t choice, struct keel_json calls, int stream)
{
    struct keel_json call, c[CALL_N], fn[FN_N];
    size_t pos = 0;
    uint32_t n = 0;
    int progress = 0;
    if (keel_json_type(calls) != KEEL_JSON_ARRAY)
        return 0;
    for (; keel_json_next(calls, &pos, NULL, &call); n++) {
        keel_key_pick(call, call_keys, CALL_N, c);
        keel_key_pick(c[CALL_FUNCTION], fn_keys, FN_N, fn);
        if (keel_json_nonempty(fn[FN_ARGS]) || keel_json_nonempty(fn[FN_NAME])) {
            progress = 1;
            if (!keel_decoder_decoding(d))
                return 1;
        }
        if (!keel_decoder_decoding(d) || keel_json_type(call) != KEEL_JSON_OBJECT)
            continue;
        struct keel_ev ev = {.kind = KEEL_EV_TOOL_CALL, .choice = choice};
        ev.u.tool.index = stream ? index_of(c[CALL_INDEX], n) : n;
        ev.u.tool.id = if_type(c[CALL_ID], KEEL_JSON_STRING);
        ev.u.tool.type = if_type(c[CALL_TYPE], KEEL_JSON_STRING);
        ev.u.tool.name = if_type(fn[FN_NAME], KEEL_JSON_STRING);
        ev.u.tool.args = if_type(fn[FN_ARGS], KEEL_JSON_STRING);
        keel_decoder_emit(d, &ev);
    }
    return progress;
}

/* One element of choices (pos: its place): whether its delta (a chunk) or message (an answer)
 * carries content progress; its events in order when decoding. *finished set when it carries
 * its finish reason. */
static int choice_of(struct keel_decoder *d, struct keel_json choice, uint32_t pos, int stream, int *finished)
{
    struct keel_json c[CHOICE_N], m[MSG_N], lp[LP_N];
    keel_key_pick(choice, choice_keys, CHOICE_N, c);
    if (keel_json_type(c[CHOICE_FINISH]) == KEEL_JSON_STRING)
        *finished = 1;
    keel_key_pick(c[stream ? CHOICE_DELTA : CHOICE_MESSAGE], msg_keys, MSG_N, m);
    int progress = keel_json_nonempty(m[MSG_CONTENT]) || keel_json_nonempty(m[MSG_REASONING]) ||
                   keel_json_nonempty(m[MSG_REASONING_CONTENT]) || keel_json_nonempty(m[MSG_REFUSAL]);
    if (!keel_decoder_decoding(d))
        return progress || calls_of(d, 0, m[MSG_TOOL_CALLS], stream);
    if (keel_json_type(choice) != KEEL_JSON_OBJECT)
        return 0;
    uint32_t i = index_of(c[CHOICE_INDEX], pos);
    emit_string(d, KEEL_EV_ROLE, i, m[MSG_ROLE], 0);
    /* both keys at once (some servers send the text twice): reasoning_content only */
    if (keel_json_type(m[MSG_REASONING_CONTENT]) == KEEL_JSON_STRING)
        emit_string(d, KEEL_EV_REASONING, i, m[MSG_REASONING_CONTENT], 0);
    else
        emit_string(d, KEEL_EV_REASONING, i, m[MSG_REASONING], 1);
    emit_string(d, KEEL_EV_TEXT, i, m[MSG_CONTENT], 0);
    emit_string(d, KEEL_EV_REFUSAL, i, m[MSG_REFUSAL], 0);
    progress |= calls_of(d, i, m[MSG_TOOL_CALLS], stream);
    if (keel_json_type(c[CHOICE_LOGPROBS]) == KEEL_JSON_OBJECT) {
        struct keel_ev ev = {.kind = KEEL_EV_LOGPROBS, .choice = i};
        keel_key_pick(c[CHOICE_LOGPROBS], lp_keys, LP_N, lp);
        ev.u.logprobs.content = lp[LP_CONTENT];
        ev.u.logprobs.refusal = lp[LP_REFUSAL];
        keel_decoder_emit(d, &ev);
    }
    emit_string(d, KEEL_EV_FINISH, i, c[CHOICE_FINISH], 0);
    return progress;
}

/* whether any choice progresses: judging alone stops at the first that does once one carried
 * its finish reason (finished: as choice_of, set when any does; may be NULL) */
static int choices_of(struct keel_decoder *d, struct keel_json choices, int stream, int *finished)
{
    int ignored = 0;
    if (finished == NULL)
        finished = &ignored;
    struct keel_json choice;
    size_t pos = 0;
    uint32_t n = 0;
    int progress = 0;
    if (keel_json_type(choices) != KEEL_JSON_ARRAY)
        return 0;
    while (!(progress && *finished && !keel_decoder_decoding(d)) && keel_json_next(choices, &pos, NULL, &choice))
        progress |= choice_of(d, choice, n++, stream, finished);
    return progress;
}

/* ---- the ops ---- */

static void frame(struct keel_decoder *d, const char *event, const char *data, size_t len,
                  struct keel_chunk_info *info)
{
    struct keel_json root, f[ROOT_N];
    int error_event = strcmp(event, "error") == 0;
    memset(info, 0, sizeof(*info));
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        info->kind = KEEL_CHUNK_DONE;
        return;
    }
    if (keel_decoder_open(d, event, data, len, info, &root) != 0)
        return;
    keel_key_pick(root, root_keys, ROOT_N, f);
    info->has_usage = usage_of(f[ROOT_USAGE], &info->usage);
    int error = error_event || has_error(f[ROOT_ERROR]);
    info->kind = error ? KEEL_CHUNK_ERROR : KEEL_CHUNK_IDLE;
    if (error)
        error_code_of(root, f[ROOT_ERROR], info->error_code, sizeof(info->error_code));
    emit_meta(d, f);
    /* judging alone reads no choice of an error chunk */
    if ((!error || keel_decoder_decoding(d)) && choices_of(d, f[ROOT_CHOICES], 1, &info->finished) && !error)
        info->kind = KEEL_CHUNK_PROGRESS;
    emit_usage(d, f[ROOT_USAGE], &info->usage);
    if (error)
        keel_decoder_emit_error(d, info->error_code, root, f[ROOT_ERROR]);
}

static enum keel_answer_kind body(struct keel_decoder *d, const char *text, size_t len, char *code, size_t codelen,
                                  struct keel_usage *usage)
{
    struct keel_json root, f[ROOT_N], first;
    struct keel_usage n = {0};
    size_t pos = 0;
    enum keel_answer_kind kind = KEEL_ANSWER_EMPTY;
    if (keel_decoder_open_body(text, len, code, codelen, &root) != 0)
        return KEEL_ANSWER_MALFORMED;
    keel_key_pick(root, root_keys, ROOT_N, f);
    if (usage != NULL)
        usage_of(f[ROOT_USAGE], usage);
    if (keel_json_type(f[ROOT_CHOICES]) == KEEL_JSON_ARRAY && keel_json_next(f[ROOT_CHOICES], &pos, NULL, &first)) {
        kind = KEEL_ANSWER_OK;
    } else if (has_error(f[ROOT_ERROR])) {
        kind = KEEL_ANSWER_ERROR;
        error_code_of(root, f[ROOT_ERROR], code, codelen);
    }
    if (!keel_decoder_decoding(d))
        return kind;
    emit_meta(d, f);
    choices_of(d, f[ROOT_CHOICES], 0, NULL);
    usage_of(f[ROOT_USAGE], &n);
    emit_usage(d, f[ROOT_USAGE], &n);
    if (kind == KEEL_ANSWER_ERROR)
        keel_decoder_emit_error(d, codelen > 0 ? code : "", root, f[ROOT_ERROR]);
    return kind;
}

static void error_code(const char *text, size_t len, char *code, size_t codelen)
{
    struct keel_json root;
    if (keel_decoder_open_body(text, len, code, codelen, &root) == 0)
        error_code_of(root, keel_json_get(root, "error"), code, codelen);
}

const struct keel_decoder_ops keel_openai_decoder = {
    .kind = "openai",
    .frame = frame,
    .body = body,
    .error_code = error_code,
};

/* An embeddings answer: OK with a non-empty "data" array, EMPTY without one (an empty list is
 * no answer, as a chat answer without choices is not: seed 000), ERROR for an error body; its
 * usage (prompt and total tokens) into *usage. */
enum keel_answer_kind keel_openai_embeddings_judge(const char *text, size_t len, char *code, size_t codelen,
                                                   struct keel_usage *usage)
{
    struct keel_json root;
    if (keel_decoder_open_body(text, len, code, codelen, &root) != 0)
        return KEEL_ANSWER_MALFORMED;
    struct keel_json data = keel_json_get(root, "data"), err = keel_json_get(root, "error"), el;
    size_t pos = 0;
    if (keel_json_type(data) == KEEL_JSON_ARRAY && keel_json_next(data, &pos, NULL, &el)) {
        struct keel_usage n = {0};
        usage_of(keel_json_get(root, "usage"), &n);
        if (usage != NULL && n.present)
            *usage = n;
        return KEEL_ANSWER_OK;
    }
    if (has_error(err)) {
        error_code_of(root, err, code, codelen);
        return KEEL_ANSWER_ERROR;
    }
    return KEEL_ANSWER_EMPTY;
}

const struct keel_encoder_ops keel_openai_chat_encoder = {
    .protocol = "openai-chat",
    .native_kind = "openai",
    .native_end = "data: [DONE]\n\n",
    .answer = keel_asm_openai_chat,
    .stream_init = keel_openai_stream_init,
    .stream_event = keel_openai_stream_event,
    .stream_end = keel_openai_stream_end,
};

/* The embeddings API: an answer of its native kind passes through as sent, judged by its own
 * shape; nothing streams and nothing is translated (config admits only OpenAI targets). */
const struct keel_encoder_ops keel_openai_embeddings_encoder = {
    .protocol = "openai-embeddings",
    .native_kind = "openai",
    .native_path = "/embeddings",
    .judge = keel_openai_embeddings_judge,
};
