/* openai.c - the OpenAI chat decoder (core/event.h): a stream chunk or a whole answer judged as
 * DESIGN.md "Content progress" says and, when the decoder has a callback, broken into events;
 * a provider error body's code. Fields are read through the span scanner (core/json.h): no tree,
 * no allocation. chunk.c keeps chunk.h's API over this; writing events out is others' job. */
#include "core/event.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "core/assemble.h"
#include "core/json.h"

/* ---- reading fields ---- */

struct key {
    const char *s;
    size_t len; /* strlen(s), less than sizeof(decoded) in key_is */
};
#define KEY(s) {s, sizeof(s) - 1}

static int key_is(struct keel_json k, struct key key)
{
    char decoded[32];
    assert(key.len < sizeof(decoded));
    if (memchr(k.p, '\\', k.len) == NULL)
        return k.len - 2 == key.len && memcmp(k.p + 1, key.s, key.len) == 0;
    long n = keel_json_string(k, decoded, sizeof(decoded)); /* an escaped key compares decoded */
    return n == (long)key.len && memcmp(decoded, key.s, key.len) == 0;
}

/* The members of object obj named keys[0..n) into out[0..n): absent when missing or obj is no
 * object, the last one when a key repeats (keel_json_get's rule). One walk of obj where n
 * keel_json_get calls walked it n times: the judge-only path walks no more than chunk.c did. */
static void pick(struct keel_json obj, const struct key *keys, size_t n, struct keel_json *out)
{
    struct keel_json k, v;
    size_t pos = 0;
    for (size_t i = 0; i < n; i++)
        out[i] = (struct keel_json){NULL, 0};
    if (keel_json_type(obj) != KEEL_JSON_OBJECT)
        return;
    while (keel_json_next(obj, &pos, &k, &v)) {
        for (size_t i = 0; i < n; i++) {
            if (key_is(k, keys[i])) {
                out[i] = v;
                break;
            }
        }
    }
}

enum { ROOT_ID, ROOT_MODEL, ROOT_CREATED, ROOT_FINGERPRINT, ROOT_TIER, ROOT_CHOICES, ROOT_USAGE, ROOT_ERROR, ROOT_N };
static const struct key root_keys[ROOT_N] = {
    [ROOT_ID] = KEY("id"), [ROOT_MODEL] = KEY("model"), [ROOT_CREATED] = KEY("created"),
    [ROOT_FINGERPRINT] = KEY("system_fingerprint"), [ROOT_TIER] = KEY("service_tier"),
    [ROOT_CHOICES] = KEY("choices"), [ROOT_USAGE] = KEY("usage"), [ROOT_ERROR] = KEY("error"),
};

/* a choice: a chunk's carries a delta, a whole answer's a message */
enum { CHOICE_INDEX, CHOICE_DELTA, CHOICE_MESSAGE, CHOICE_LOGPROBS, CHOICE_FINISH, CHOICE_N };
static const struct key choice_keys[CHOICE_N] = {
    [CHOICE_INDEX] = KEY("index"), [CHOICE_DELTA] = KEY("delta"), [CHOICE_MESSAGE] = KEY("message"),
    [CHOICE_LOGPROBS] = KEY("logprobs"), [CHOICE_FINISH] = KEY("finish_reason"),
};

/* a delta or a message */
enum { MSG_ROLE, MSG_CONTENT, MSG_REASONING_CONTENT, MSG_REASONING, MSG_REFUSAL, MSG_TOOL_CALLS, MSG_N };
static const struct key msg_keys[MSG_N] = {
    [MSG_ROLE] = KEY("role"), [MSG_CONTENT] = KEY("content"), [MSG_REASONING_CONTENT] = KEY("reasoning_content"),
    [MSG_REASONING] = KEY("reasoning"), [MSG_REFUSAL] = KEY("refusal"), [MSG_TOOL_CALLS] = KEY("tool_calls"),
};

enum { CALL_INDEX, CALL_ID, CALL_TYPE, CALL_FUNCTION, CALL_N };
static const struct key call_keys[CALL_N] = {
    [CALL_INDEX] = KEY("index"), [CALL_ID] = KEY("id"), [CALL_TYPE] = KEY("type"), [CALL_FUNCTION] = KEY("function"),
};

enum { FN_NAME, FN_ARGS, FN_N };
static const struct key fn_keys[FN_N] = {[FN_NAME] = KEY("name"), [FN_ARGS] = KEY("arguments")};

enum { LP_CONTENT, LP_REFUSAL, LP_N };
static const struct key lp_keys[LP_N] = {[LP_CONTENT] = KEY("content"), [LP_REFUSAL] = KEY("refusal")};

enum { USAGE_PROMPT, USAGE_COMPLETION, USAGE_TOTAL, USAGE_N };
static const struct key usage_keys[USAGE_N] = {
    [USAGE_PROMPT] = KEY("prompt_tokens"), [USAGE_COMPLETION] = KEY("completion_tokens"),
    [USAGE_TOTAL] = KEY("total_tokens"),
};

enum { CODE_CODE, CODE_TYPE, CODE_N };
static const struct key code_keys[CODE_N] = {[CODE_CODE] = KEY("code"), [CODE_TYPE] = KEY("type")};

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

static int parse_object(const char *text, size_t len, struct keel_json *root)
{
    return keel_json_parse(text, len, root) == 0 && keel_json_type(*root) == KEEL_JSON_OBJECT ? 0 : -1;
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
    pick(keel_json_type(err) == KEEL_JSON_OBJECT ? err : root, code_keys, CODE_N, f);
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
    pick(us, usage_keys, USAGE_N, f);
    u->present = 1;
    u->prompt_tokens = int_of(f[USAGE_PROMPT]);
    u->completion_tokens = int_of(f[USAGE_COMPLETION]);
    u->total_tokens = int_of(f[USAGE_TOTAL]);
    return 1;
}

/* ---- events ---- */

/* the callback runs until it first says stop; the judging goes on without it */
static int decoding(const struct keel_decoder *d)
{
    return d->on_ev != NULL && d->rv == 0;
}

static void emit(struct keel_decoder *d, const struct keel_ev *ev)
{
    if (decoding(d))
        d->rv = d->on_ev(d->ctx, ev);
}

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
    emit(d, &ev);
}

/* The answer's identity, when the frame carries any of it. null counts as absent: several
 * providers send "system_fingerprint": null in every chunk. */
static void emit_meta(struct keel_decoder *d, const struct keel_json *f)
{
    struct keel_json v[ROOT_TIER + 1];
    int any = 0;
    if (!decoding(d))
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
    emit(d, &ev);
}

static void emit_usage(struct keel_decoder *d, struct keel_json raw, const struct keel_usage *n)
{
    struct keel_ev ev = {.kind = KEEL_EV_USAGE};
    if (keel_json_type(raw) != KEEL_JSON_OBJECT)
        return;
    ev.u.usage.n = *n;
    ev.u.usage.raw = raw;
    emit(d, &ev);
}

/* raw: the error object when the payload has one, else the whole payload (absent when it is
 * not JSON: an `event: error` with a text payload) */
static void emit_error(struct keel_decoder *d, const char *code, struct keel_json root, struct keel_json err)
{
    struct keel_ev ev = {.kind = KEEL_EV_ERROR};
    ev.u.error.code = code;
    ev.u.error.raw = keel_json_type(err) == KEEL_JSON_OBJECT ? err : root;
    emit(d, &ev);
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
        pick(call, call_keys, CALL_N, c);
        pick(c[CALL_FUNCTION], fn_keys, FN_N, fn);
        if (keel_json_nonempty(fn[FN_ARGS]) || keel_json_nonempty(fn[FN_NAME])) {
            progress = 1;
            if (!decoding(d))
                return 1;
        }
        if (!decoding(d) || keel_json_type(call) != KEEL_JSON_OBJECT)
            continue;
        struct keel_ev ev = {.kind = KEEL_EV_TOOL_CALL, .choice = choice};
        ev.u.tool.index = stream ? index_of(c[CALL_INDEX], n) : n;
        ev.u.tool.id = if_type(c[CALL_ID], KEEL_JSON_STRING);
        ev.u.tool.type = if_type(c[CALL_TYPE], KEEL_JSON_STRING);
        ev.u.tool.name = if_type(fn[FN_NAME], KEEL_JSON_STRING);
        ev.u.tool.args = if_type(fn[FN_ARGS], KEEL_JSON_STRING);
        emit(d, &ev);
    }
    return progress;
}

/* One element of choices (pos: its place): whether its delta (a chunk) or message (an answer)
 * carries content progress; its events in order when decoding. */
static int choice_of(struct keel_decoder *d, struct keel_json choice, uint32_t pos, int stream)
{
    struct keel_json c[CHOICE_N], m[MSG_N], lp[LP_N];
    pick(choice, choice_keys, CHOICE_N, c);
    pick(c[stream ? CHOICE_DELTA : CHOICE_MESSAGE], msg_keys, MSG_N, m);
    int progress = keel_json_nonempty(m[MSG_CONTENT]) || keel_json_nonempty(m[MSG_REASONING]) ||
                   keel_json_nonempty(m[MSG_REASONING_CONTENT]) || keel_json_nonempty(m[MSG_REFUSAL]);
    if (!decoding(d))
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
        pick(c[CHOICE_LOGPROBS], lp_keys, LP_N, lp);
        ev.u.logprobs.content = lp[LP_CONTENT];
        ev.u.logprobs.refusal = lp[LP_REFUSAL];
        emit(d, &ev);
    }
    emit_string(d, KEEL_EV_FINISH, i, c[CHOICE_FINISH], 0);
    return progress;
}

/* whether any choice progresses: judging alone stops at the first that does */
static int choices_of(struct keel_decoder *d, struct keel_json choices, int stream)
{
    struct keel_json choice;
    size_t pos = 0;
    uint32_t n = 0;
    int progress = 0;
    if (keel_json_type(choices) != KEEL_JSON_ARRAY)
        return 0;
    while (!(progress && !decoding(d)) && keel_json_next(choices, &pos, NULL, &choice))
        progress |= choice_of(d, choice, n++, stream);
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
    if (parse_object(data, len, &root) != 0) {
        /* `event: error` with a non-JSON payload is still an error */
        info->kind = error_event ? KEEL_CHUNK_ERROR : KEEL_CHUNK_MALFORMED;
        if (error_event)
            emit_error(d, info->error_code, (struct keel_json){NULL, 0}, (struct keel_json){NULL, 0});
        return;
    }
    pick(root, root_keys, ROOT_N, f);
    info->has_usage = usage_of(f[ROOT_USAGE], &info->usage);
    int error = error_event || has_error(f[ROOT_ERROR]);
    info->kind = error ? KEEL_CHUNK_ERROR : KEEL_CHUNK_IDLE;
    if (error)
        error_code_of(root, f[ROOT_ERROR], info->error_code, sizeof(info->error_code));
    emit_meta(d, f);
    /* judging alone reads no choice of an error chunk */
    if ((!error || decoding(d)) && choices_of(d, f[ROOT_CHOICES], 1) && !error)
        info->kind = KEEL_CHUNK_PROGRESS;
    emit_usage(d, f[ROOT_USAGE], &info->usage);
    if (error)
        emit_error(d, info->error_code, root, f[ROOT_ERROR]);
}

static enum keel_answer_kind body(struct keel_decoder *d, const char *text, size_t len, char *code, size_t codelen,
                                  struct keel_usage *usage)
{
    struct keel_json root, f[ROOT_N], first;
    struct keel_usage n = {0};
    size_t pos = 0;
    enum keel_answer_kind kind = KEEL_ANSWER_EMPTY;
    if (codelen > 0)
        code[0] = '\0';
    if (parse_object(text, len, &root) != 0)
        return KEEL_ANSWER_MALFORMED;
    pick(root, root_keys, ROOT_N, f);
    if (usage != NULL)
        usage_of(f[ROOT_USAGE], usage);
    if (keel_json_type(f[ROOT_CHOICES]) == KEEL_JSON_ARRAY && keel_json_next(f[ROOT_CHOICES], &pos, NULL, &first)) {
        kind = KEEL_ANSWER_OK;
    } else if (has_error(f[ROOT_ERROR])) {
        kind = KEEL_ANSWER_ERROR;
        error_code_of(root, f[ROOT_ERROR], code, codelen);
    }
    if (!decoding(d))
        return kind;
    emit_meta(d, f);
    choices_of(d, f[ROOT_CHOICES], 0);
    usage_of(f[ROOT_USAGE], &n);
    emit_usage(d, f[ROOT_USAGE], &n);
    if (kind == KEEL_ANSWER_ERROR)
        emit_error(d, codelen > 0 ? code : "", root, f[ROOT_ERROR]);
    return kind;
}

static void error_code(const char *text, size_t len, char *code, size_t codelen)
{
    struct keel_json root;
    if (codelen > 0)
        code[0] = '\0';
    if (parse_object(text, len, &root) == 0)
        error_code_of(root, keel_json_get(root, "error"), code, codelen);
}

const struct keel_decoder_ops keel_openai_decoder = {
    .kind = "openai",
    .frame = frame,
    .body = body,
    .error_code = error_code,
};

const struct keel_decoder_ops *keel_decoder_for(const char *kind)
{
    static const struct keel_decoder_ops *const all[] = {&keel_openai_decoder};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (strcmp(all[i]->kind, kind) == 0)
            return all[i];
    return NULL;
}

const struct keel_encoder_ops keel_openai_chat_encoder = {
    .protocol = "openai-chat",
    .native_kind = "openai",
    .answer = keel_asm_openai_chat,
};
