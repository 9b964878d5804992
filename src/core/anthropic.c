/* anthropic.c - the Anthropic Messages decoder (core/event.h): a stream's events (message_start,
 * content blocks by index, message_delta, message_stop, ping, error) or a whole Messages answer
 * judged as DESIGN.md "Content progress" says and, when the decoder has a callback, read into
 * events in OpenAI's vocabulary: finish reasons, token counts and error codes mapped. A stream's
 * deltas name only their block, so what each block is lives in the decoder's state across
 * frames. Writing events out is others' job. */
#include "core/event.h"

#include <stdint.h>
#include <string.h>

#include "core/json.h"

/* what a content block is; 0 (never started) is what keel_decoder_init leaves */
enum block_kind { BLOCK_NONE, BLOCK_TEXT, BLOCK_THINKING, BLOCK_TOOL, BLOCK_OTHER };

/* ---- reading fields ---- */

/* a stream event's data, message_start's message, and a whole answer: one set of keys */
enum { ROOT_TYPE, ROOT_MESSAGE, ROOT_INDEX, ROOT_BLOCK, ROOT_DELTA, ROOT_USAGE, ROOT_ERROR, ROOT_ID, ROOT_MODEL,
       ROOT_CONTENT, ROOT_STOP, ROOT_N };
static const struct keel_key root_keys[ROOT_N] = {
    [ROOT_TYPE] = KEEL_KEY("type"),       [ROOT_MESSAGE] = KEEL_KEY("message"), [ROOT_INDEX] = KEEL_KEY("index"),
    [ROOT_BLOCK] = KEEL_KEY("content_block"), [ROOT_DELTA] = KEEL_KEY("delta"),  [ROOT_USAGE] = KEEL_KEY("usage"),
    [ROOT_ERROR] = KEEL_KEY("error"),     [ROOT_ID] = KEEL_KEY("id"),           [ROOT_MODEL] = KEEL_KEY("model"),
    [ROOT_CONTENT] = KEEL_KEY("content"), [ROOT_STOP] = KEEL_KEY("stop_reason"),
};

/* a content block (content_block_start's, an answer's content[]), a block's delta, and
 * message_delta's delta */
enum { PART_TYPE, PART_TEXT, PART_THINKING, PART_JSON, PART_ID, PART_NAME, PART_INPUT, PART_STOP, PART_N };
static const struct keel_key part_keys[PART_N] = {
    [PART_TYPE] = KEEL_KEY("type"), [PART_TEXT] = KEEL_KEY("text"),   [PART_THINKING] = KEEL_KEY("thinking"),
    [PART_JSON] = KEEL_KEY("partial_json"), [PART_ID] = KEEL_KEY("id"), [PART_NAME] = KEEL_KEY("name"),
    [PART_INPUT] = KEEL_KEY("input"), [PART_STOP] = KEEL_KEY("stop_reason"),
};

enum { USAGE_INPUT, USAGE_OUTPUT, USAGE_CACHE_WRITE, USAGE_CACHE_READ, USAGE_N };
static const struct keel_key usage_keys[USAGE_N] = {
    [USAGE_INPUT] = KEEL_KEY("input_tokens"), [USAGE_OUTPUT] = KEEL_KEY("output_tokens"),
    [USAGE_CACHE_WRITE] = KEEL_KEY("cache_creation_input_tokens"),
    [USAGE_CACHE_READ] = KEEL_KEY("cache_read_input_tokens"),
};

enum { ERR_TYPE, ERR_MESSAGE, ERR_N };
static const struct keel_key err_keys[ERR_N] = {[ERR_TYPE] = KEEL_KEY("type"), [ERR_MESSAGE] = KEEL_KEY("message")};

/* the stream's event types (the data's "type", else the SSE event's name) */
enum { T_MESSAGE_START, T_BLOCK_START, T_BLOCK_DELTA, T_BLOCK_STOP, T_MESSAGE_DELTA, T_MESSAGE_STOP, T_PING, T_ERROR,
       T_N };
static const struct keel_key types[T_N] = {
    [T_MESSAGE_START] = KEEL_KEY("message_start"), [T_BLOCK_START] = KEEL_KEY("content_block_start"),
    [T_BLOCK_DELTA] = KEEL_KEY("content_block_delta"), [T_BLOCK_STOP] = KEEL_KEY("content_block_stop"),
    [T_MESSAGE_DELTA] = KEEL_KEY("message_delta"), [T_MESSAGE_STOP] = KEEL_KEY("message_stop"),
    [T_PING] = KEEL_KEY("ping"), [T_ERROR] = KEEL_KEY("error"),
};

/* content block types, in enum block_kind's order from BLOCK_TEXT; any other is BLOCK_OTHER
 * (redacted_thinking, server_tool_use, web_search_tool_result...: nothing an OpenAI client reads) */
static const struct keel_key block_types[] = {KEEL_KEY("text"), KEEL_KEY("thinking"), KEEL_KEY("tool_use")};

/* a block's delta types: signature_delta, citations_delta and new ones are none of these */
enum { D_TEXT, D_THINKING, D_JSON, D_N };
static const struct keel_key delta_types[D_N] = {
    [D_TEXT] = KEEL_KEY("text_delta"), [D_THINKING] = KEEL_KEY("thinking_delta"),
    [D_JSON] = KEEL_KEY("input_json_delta"),
};

/* stop_reason in OpenAI's finish_reason vocabulary; one not listed is "stop" */
static const struct {
    struct keel_key from;
    const char *to; /* a JSON string literal */
} finishes[] = {
    {KEEL_KEY("end_turn"), "\"stop\""},
    {KEEL_KEY("stop_sequence"), "\"stop\""},
    {KEEL_KEY("pause_turn"), "\"stop\""},
    {KEEL_KEY("max_tokens"), "\"length\""},
    {KEEL_KEY("model_context_window_exceeded"), "\"length\""},
    {KEEL_KEY("tool_use"), "\"tool_calls\""},
    {KEEL_KEY("refusal"), "\"content_filter\""},
};

static const struct keel_json absent = {NULL, 0};

_Static_assert(BLOCK_TEXT + sizeof(block_types) / sizeof(block_types[0]) == BLOCK_OTHER,
               "block_types lists the kinds from BLOCK_TEXT to BLOCK_OTHER");

/* a block's kind from its type */
static uint8_t kind_of(struct keel_json type)
{
    return (uint8_t)(BLOCK_TEXT + keel_key_find(type, block_types, sizeof(block_types) / sizeof(block_types[0])));
}

/* an "index" member: 0 and the index, or -1 when it is no integer from 0 to UINT32_MAX */
static int index_of(struct keel_json v, uint32_t *out)
{
    long long i;
    if (keel_json_int(v, &i) != 0 || i < 0 || i > UINT32_MAX)
        return -1;
    *out = (uint32_t)i;
    return 0;
}

/* A token count: one that is no integer reads as 0, a negative one as 0, a huge one as 2^50 (so
 * sums of a few never overflow). */
static long long tokens(struct keel_json v)
{
    long long i;
    if (keel_json_int(v, &i) != 0 || i < 0)
        return 0;
    return i < (1LL << 50) ? i : 1LL << 50;
}

/* Every prompt token a usage object counts: input_tokens leaves out the cache's reads and
 * writes, which OpenAI's prompt_tokens counts. Unchanged when the object has no input_tokens. */
static void prompt_of(const struct keel_json *u, long long *prompt)
{
    if (u[USAGE_INPUT].p != NULL)
        *prompt = tokens(u[USAGE_INPUT]) + tokens(u[USAGE_CACHE_WRITE]) + tokens(u[USAGE_CACHE_READ]);
}

/* ---- error codes ---- */

static void set_code(char *code, size_t codelen, const char *s)
{
    size_t n = strlen(s);
    if (codelen == 0)
        return;
    n = n < codelen ? n : codelen - 1;
    memcpy(code, s, n);
    code[n] = '\0';
}

/* an error message saying the prompt does not fit the model's context */
static int context_message(struct keel_json msg)
{
    static const char *const prefixes[] = {"prompt is too long", "input length and `max_tokens` exceed context limit"};
    char text[64];
    if (keel_json_string(msg, text, sizeof(text)) < 0)
        return 0;
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(text, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    return 0;
}

/* An error object's type, as classify.c knows it: overloaded_error and rate_limit_error are
 * known as they are; an invalid_request_error about the context's length is
 * context_length_exceeded, not_found_error model_not_found; any other type as sent. */
static void code_of(struct keel_json err, char *code, size_t codelen)
{
    static const struct keel_key remapped[] = {KEEL_KEY("invalid_request_error"), KEEL_KEY("not_found_error")};
    struct keel_json f[ERR_N];
    if (codelen == 0)
        return;
    code[0] = '\0';
    keel_key_pick(err, err_keys, ERR_N, f);
    size_t which = keel_key_find(f[ERR_TYPE], remapped, 2);
    if (which == 0 && context_message(f[ERR_MESSAGE]))
        set_code(code, codelen, "context_length_exceeded");
    else if (which == 1)
        set_code(code, codelen, "model_not_found");
    else if (keel_json_string(f[ERR_TYPE], code, codelen) < 0)
        code[0] = '\0';
}

/* ---- events ---- */

static void emit_text(struct keel_decoder *d, enum keel_ev_kind kind, struct keel_json s)
{
    struct keel_ev ev = {.kind = kind};
    ev.u.text.s = s;
    keel_decoder_emit(d, &ev);
}

/* the answer's id and model (Anthropic sends no created) */
static void emit_meta(struct keel_decoder *d, const struct keel_json *f)
{
    struct keel_ev ev = {.kind = KEEL_EV_META};
    ev.u.meta.id = keel_json_type(f[ROOT_ID]) == KEEL_JSON_STRING ? f[ROOT_ID] : absent;
    ev.u.meta.model = keel_json_type(f[ROOT_MODEL]) == KEEL_JSON_STRING ? f[ROOT_MODEL] : absent;
    if (ev.u.meta.id.p != NULL || ev.u.meta.model.p != NULL)
        keel_decoder_emit(d, &ev);
}

/* stop_reason's finish reason: a span over a static literal; none when it is no string */
static void emit_finish(struct keel_decoder *d, struct keel_json stop)
{
    struct keel_ev ev = {.kind = KEEL_EV_FINISH};
    const char *to = "\"stop\"";
    if (keel_json_type(stop) != KEEL_JSON_STRING)
        return;
    for (size_t i = 0; i < sizeof(finishes) / sizeof(finishes[0]); i++) {
        if (keel_key_is(stop, finishes[i].from)) {
            to = finishes[i].to;
            break;
        }
    }
    ev.u.finish = (struct keel_json){to, strlen(to)};
    keel_decoder_emit(d, &ev);
}

/* Usage object raw in OpenAI's counts into *n (prompt as prompt_of says, else `prompt`; cache
 * reads, else `cached`): 1, with a USAGE event when decoding; 0 when raw is no object. */
static int usage_of(struct keel_decoder *d, struct keel_json raw, long long prompt, long long cached,
                    struct keel_usage *n)
{
    struct keel_json u[USAGE_N];
    struct keel_ev ev = {.kind = KEEL_EV_USAGE};
    if (keel_json_type(raw) != KEEL_JSON_OBJECT)
        return 0;
    keel_key_pick(raw, usage_keys, USAGE_N, u);
    prompt_of(u, &prompt);
    if (u[USAGE_INPUT].p != NULL)
        cached = tokens(u[USAGE_CACHE_READ]);
    n->present = 1;
    n->prompt_tokens = prompt;
    n->cached_tokens = cached;
    n->completion_tokens = tokens(u[USAGE_OUTPUT]);
    n->total_tokens = n->prompt_tokens + n->completion_tokens;
    ev.u.usage.n = *n;
    ev.u.usage.raw = raw;
    keel_decoder_emit(d, &ev);
    return 1;
}

/* A fragment of tool call `index`: its block's id and name (p: the block; NULL for an input
 * fragment), its input (args). No type: the encoder writes its own. */
static void emit_tool(struct keel_decoder *d, uint32_t index, const struct keel_json *p, struct keel_json args,
                      int raw)
{
    struct keel_ev ev = {.kind = KEEL_EV_TOOL_CALL};
    ev.u.tool.index = index;
    if (p != NULL) {
        ev.u.tool.id = keel_json_type(p[PART_ID]) == KEEL_JSON_STRING ? p[PART_ID] : absent;
        ev.u.tool.name = keel_json_type(p[PART_NAME]) == KEEL_JSON_STRING ? p[PART_NAME] : absent;
    }
    ev.u.tool.args = args;
    ev.u.tool.args_raw = raw;
    keel_decoder_emit(d, &ev);
}

/* ---- a stream's frames ---- */

static void message_start(struct keel_decoder *d, struct keel_json message, struct keel_chunk_info *info)
{
    struct keel_anthropic_state *st = &d->_state.anthropic;
    struct keel_json m[ROOT_N];
    keel_key_pick(message, root_keys, ROOT_N, m);
    emit_meta(d, m);
    info->has_usage = usage_of(d, m[ROOT_USAGE], 0, 0, &info->usage);
    if (info->has_usage) {
        st->prompt_tokens = info->usage.prompt_tokens;
        st->cached_tokens = info->usage.cached_tokens;
    }
}

/* Remembers what block `index` is (a tool_use block: its tool-call index, the next one); a text
 * or thinking block that starts with text progresses with it. */
static void block_start(struct keel_decoder *d, struct keel_json index, struct keel_json block,
                        struct keel_chunk_info *info)
{
    struct keel_anthropic_state *st = &d->_state.anthropic;
    struct keel_json p[PART_N];
    uint32_t i, tool = st->ntools;
    keel_key_pick(block, part_keys, PART_N, p);
    uint8_t kind = kind_of(p[PART_TYPE]);
    int known = index_of(index, &i) == 0 && i < KEEL_ANTHROPIC_MAX_BLOCKS;
    if (known)
        st->block[i] = kind;
    if (kind == BLOCK_TOOL) {
        st->ntools += st->ntools < UINT16_MAX;
        if (known)
            st->tool[i] = (uint16_t)tool;
        /* a named call is content, as an OpenAI tool call's name is: an answer that is only a
         * call to a tool without arguments must not look empty */
        if (keel_json_nonempty(p[PART_NAME]))
            info->kind = KEEL_CHUNK_PROGRESS;
        emit_tool(d, tool, p, absent, 0);
    } else if (kind == BLOCK_TEXT || kind == BLOCK_THINKING) {
        struct keel_json s = p[kind == BLOCK_TEXT ? PART_TEXT : PART_THINKING];
        if (keel_json_nonempty(s)) {
            info->kind = KEEL_CHUNK_PROGRESS;
            emit_text(d, kind == BLOCK_TEXT ? KEEL_EV_TEXT : KEEL_EV_REASONING, s);
        }
    }
}

/* A text or thinking delta goes by its type alone; a tool's input fragment goes to the call
 * its block started, and is malformed when no tool_use block started at that index (keel could
 * not place it). A server tool's input (a block of another kind) is nothing a client reads. */
static void block_delta(struct keel_decoder *d, struct keel_json index, struct keel_json delta,
                        struct keel_chunk_info *info)
{
    const struct keel_anthropic_state *st = &d->_state.anthropic;
    static const enum keel_ev_kind kinds[D_N] = {[D_TEXT] = KEEL_EV_TEXT, [D_THINKING] = KEEL_EV_REASONING,
                                                 [D_JSON] = KEEL_EV_TOOL_CALL};
    static const size_t fields[D_N] = {[D_TEXT] = PART_TEXT, [D_THINKING] = PART_THINKING, [D_JSON] = PART_JSON};
    struct keel_json p[PART_N];
    uint32_t i;
    keel_key_pick(delta, part_keys, PART_N, p);
    size_t type = keel_key_find(p[PART_TYPE], delta_types, D_N);
    if (type == D_N || keel_json_type(p[fields[type]]) != KEEL_JSON_STRING)
        return; /* signature_delta (kept nowhere), citations_delta, types to come */
    struct keel_json s = p[fields[type]];
    if (type == D_JSON) {
        int known = index_of(index, &i) == 0 && i < KEEL_ANTHROPIC_MAX_BLOCKS;
        if (known && st->block[i] == BLOCK_OTHER)
            return;
        if (!known || st->block[i] != BLOCK_TOOL) {
            info->kind = KEEL_CHUNK_MALFORMED;
            return;
        }
        if (keel_json_nonempty(s))
            info->kind = KEEL_CHUNK_PROGRESS;
        emit_tool(d, st->tool[i], NULL, s, 0);
        return;
    }
    if (keel_json_nonempty(s))
        info->kind = KEEL_CHUNK_PROGRESS;
    emit_text(d, kinds[type], s);
}

static void message_delta(struct keel_decoder *d, struct keel_json delta, struct keel_json usage,
                          struct keel_chunk_info *info)
{
    emit_finish(d, keel_json_get(delta, "stop_reason"));
    info->has_usage =
        usage_of(d, usage, d->_state.anthropic.prompt_tokens, d->_state.anthropic.cached_tokens, &info->usage);
}

/* the stream's type: the data's, else the event's name; T_N when neither is one */
static size_t type_of(const char *event, struct keel_json type)
{
    size_t t = 0;
    if (type.p != NULL)
        return keel_key_find(type, types, T_N);
    while (t < T_N && strcmp(types[t].s, event) != 0)
        t++;
    return t;
}

static void frame(struct keel_decoder *d, const char *event, const char *data, size_t len,
                  struct keel_chunk_info *info)
{
    struct keel_json root, f[ROOT_N];
    memset(info, 0, sizeof(*info));
    if (keel_decoder_open(d, event, data, len, info, &root) != 0)
        return;
    keel_key_pick(root, root_keys, ROOT_N, f);
    size_t type = strcmp(event, "error") == 0 ? T_ERROR : type_of(event, f[ROOT_TYPE]);
    info->kind = KEEL_CHUNK_IDLE;
    switch (type) {
    case T_MESSAGE_START:
        message_start(d, f[ROOT_MESSAGE], info);
        break;
    case T_BLOCK_START:
        block_start(d, f[ROOT_INDEX], f[ROOT_BLOCK], info);
        break;
    case T_BLOCK_DELTA:
        block_delta(d, f[ROOT_INDEX], f[ROOT_DELTA], info);
        break;
    case T_MESSAGE_DELTA:
        message_delta(d, f[ROOT_DELTA], f[ROOT_USAGE], info);
        break;
    case T_MESSAGE_STOP:
        info->kind = KEEL_CHUNK_DONE;
        break;
    case T_ERROR:
        info->kind = KEEL_CHUNK_ERROR;
        code_of(f[ROOT_ERROR], info->error_code, sizeof(info->error_code));
        keel_decoder_emit_error(d, info->error_code, root, f[ROOT_ERROR]);
        break;
    default:
        break; /* ping (never progress: seed 001), content_block_stop, types to come */
    }
}

/* ---- a whole answer ---- */

/* whether a content block holds what a client reads: text or thinking, or a tool call */
static int block_has_content(const struct keel_json *p)
{
    uint8_t kind = kind_of(p[PART_TYPE]);
    return kind == BLOCK_TOOL || (kind == BLOCK_TEXT && keel_json_nonempty(p[PART_TEXT])) ||
           (kind == BLOCK_THINKING && keel_json_nonempty(p[PART_THINKING]));
}

/* An answer's content blocks: whether any holds content; their events in order when decoding. A
 * tool_use block's input is an object: handed on as raw JSON text ("{}" when it has none). */
static int blocks_of(struct keel_decoder *d, struct keel_json content)
{
    static const struct keel_json no_input = {"{}", 2};
    struct keel_json block, p[PART_N];
    size_t pos = 0;
    uint32_t ntools = 0;
    int any = 0;
    if (keel_json_type(content) != KEEL_JSON_ARRAY)
        return 0;
    while (keel_json_next(content, &pos, NULL, &block)) {
        keel_key_pick(block, part_keys, PART_N, p);
        any |= block_has_content(p);
        if (!keel_decoder_decoding(d)) {
            if (any)
                return 1;
            continue;
        }
        uint8_t kind = kind_of(p[PART_TYPE]);
        if (kind == BLOCK_TOOL) {
            emit_tool(d, ntools++, p, p[PART_INPUT].p != NULL ? p[PART_INPUT] : no_input, 1);
        } else if (kind == BLOCK_TEXT && keel_json_type(p[PART_TEXT]) == KEEL_JSON_STRING) {
            emit_text(d, KEEL_EV_TEXT, p[PART_TEXT]);
        } else if (kind == BLOCK_THINKING && keel_json_type(p[PART_THINKING]) == KEEL_JSON_STRING) {
            emit_text(d, KEEL_EV_REASONING, p[PART_THINKING]);
        }
    }
    return any;
}

/* OK when a content block holds text, thinking or a tool call; EMPTY when none does (no content,
 * or empty text blocks only); ERROR for an error body ("type": "error") */
static enum keel_answer_kind body(struct keel_decoder *d, const char *text, size_t len, char *code, size_t codelen,
                                  struct keel_usage *usage)
{
    struct keel_json root, f[ROOT_N];
    struct keel_usage n = {0};
    if (keel_decoder_open_body(text, len, code, codelen, &root) != 0)
        return KEEL_ANSWER_MALFORMED;
    keel_key_pick(root, root_keys, ROOT_N, f);
    if (keel_key_is(f[ROOT_TYPE], types[T_ERROR])) {
        code_of(f[ROOT_ERROR], code, codelen);
        keel_decoder_emit_error(d, codelen > 0 ? code : "", root, f[ROOT_ERROR]);
        return KEEL_ANSWER_ERROR;
    }
    emit_meta(d, f);
    enum keel_answer_kind kind = blocks_of(d, f[ROOT_CONTENT]) ? KEEL_ANSWER_OK : KEEL_ANSWER_EMPTY;
    emit_finish(d, f[ROOT_STOP]);
    if (usage_of(d, f[ROOT_USAGE], 0, 0, &n) && usage != NULL)
        *usage = n;
    return kind;
}

static void error_code(const char *text, size_t len, char *code, size_t codelen)
{
    struct keel_json root;
    if (keel_decoder_open_body(text, len, code, codelen, &root) == 0)
        code_of(keel_json_get(root, "error"), code, codelen);
}

const struct keel_decoder_ops keel_anthropic_decoder = {
    .kind = "anthropic",
    .frame = frame,
    .body = body,
    .error_code = error_code,
};
