/* anthropic_enc.c - the Anthropic Messages encoder (keel_anthropic_encoder, core/assemble.h):
 * a whole Message written from an assembly, and a stream of named SSE events re-encoded event by
 * event, for clients of `POST /v1/messages` served by targets of another kind. Events speak
 * OpenAI's vocabulary (core/event.h): finish reasons and token counts are mapped here. What an
 * errored or refused attempt becomes is the caller's. */
#include "core/assemble.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/writer.h"

/* the open content block's kind (struct keel_stream_anthropic.open) */
enum block { BLOCK_NONE, BLOCK_TEXT, BLOCK_THINKING, BLOCK_TOOL };

/* ---- writing ---- */

/* a string literal as sent when v is one, else "" */
/* a token count as Anthropic's usage says one: never negative (an OpenAI server's -1 is none) */
static long long tokens(long long n)
{
    return n > 0 ? n : 0;
}

static void wstring(struct writer *o, struct keel_json v)
{
    if (keel_json_type(v) == KEEL_JSON_STRING)
        w(o, v.p, v.len);
    else
        ws(o, "\"\"");
}

/* a tool call's id: the one sent when not empty, else one made of its index */
static void wtool_id(struct writer *o, struct keel_json id, size_t index)
{
    if (keel_json_nonempty(id)) {
        w(o, id.p, id.len);
        return;
    }
    ws(o, "\"toolu_keel_");
    wnum(o, (long long)index);
    ws(o, "\"");
}

/* ---- stop reasons ---- */

/* OpenAI's finish reason as Anthropic's stop_reason, a JSON string literal (static storage) */
static const char *stop_reason(struct keel_json finish)
{
    static const struct {
        struct keel_key from;
        const char *to;
    } stops[] = {
        {KEEL_KEY("stop"), "\"end_turn\""},
        {KEEL_KEY("length"), "\"max_tokens\""},
        {KEEL_KEY("tool_calls"), "\"tool_use\""},
        {KEEL_KEY("function_call"), "\"tool_use\""},
        {KEEL_KEY("content_filter"), "\"refusal\""},
    };
    for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++)
        if (keel_key_is(finish, stops[i].from))
            return stops[i].to;
    return "\"end_turn\""; /* none, or a word Anthropic has none for */
}

/* ---- the whole answer ---- */

static int space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* JSON text v (valid) without the whitespace between its tokens */
static void wcompact(struct writer *o, struct keel_json v)
{
    const char *p = v.p, *end = v.p + v.len, *run = p;
    int in_string = 0;
    for (; p < end; p++) {
        if (in_string) {
            if (*p == '\\')
                p++; /* an escaped character: never the string's end */
            else if (*p == '"')
                in_string = 0;
        } else if (*p == '"') {
            in_string = 1;
        } else if (space(*p)) {
            w(o, run, (size_t)(p - run));
            run = p + 1;
        }
    }
    w(o, run, (size_t)(end - run));
}

/* A tool_use block's input: the arguments (a literal's inside, args[0..n)) decoded into JSON text,
 * which must be one object, written compact; {} when blank. Sets o->rv to -EPROTO when it is
 * neither (or args is no valid literal's inside), -ENOMEM. */
static void winput(struct writer *o, const char *args, size_t n)
{
    struct keel_json lit, text;
    if (o->rv != 0)
        return;
    if (n == 0) {
        ws(o, "{}");
        return;
    }
    /* the literal "args", then its decoded text: never longer than the escaped one */
    char *buf = malloc(2 * n + 3);
    if (buf == NULL) {
        o->rv = -ENOMEM;
        return;
    }
    char *dec = buf + n + 2;
    buf[0] = '"';
    memcpy(buf + 1, args, n);
    buf[n + 1] = '"';
    long dn = -1;
    if (keel_json_parse(buf, n + 2, &lit) == 0 && keel_json_type(lit) == KEEL_JSON_STRING)
        dn = keel_json_string(lit, dec, n + 1);
    size_t i = 0;
    while (dn >= 0 && i < (size_t)dn && space(dec[i]))
        i++;
    if (dn >= 0 && i == (size_t)dn)
        ws(o, "{}");
    else if (dn >= 0 && keel_json_parse(dec, (size_t)dn, &text) == 0 && keel_json_type(text) == KEEL_JSON_OBJECT)
        wcompact(o, text);
    else
        o->rv = -EPROTO;
    free(buf);
}

/* a text block for choice 0's text of kind k, when there is any: 1 when written */
static int wtext_block(struct writer *o, const struct keel_asm *a, enum keel_asm_text k, const char *sep)
{
    size_t n;
    const char *t = keel_asm_text(a, 0, k, &n);
    if (n == 0)
        return 0;
    ws(o, sep);
    if (k == KEEL_ASM_REASONING)
        ws(o, "{\"type\":\"thinking\",\"thinking\":\"");
    else
        ws(o, "{\"type\":\"text\",\"text\":\"");
    w(o, t, n);
    ws(o, k == KEEL_ASM_REASONING ? "\",\"signature\":\"\"}" : "\"}");
    return 1;
}

static void wblocks(struct writer *o, const struct keel_asm *a)
{
    static const enum keel_asm_text order[] = {KEEL_ASM_REASONING, KEEL_ASM_CONTENT, KEEL_ASM_REFUSAL};
    const char *sep = "";
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        if (wtext_block(o, a, order[i], sep))
            sep = ",";
    for (size_t k = 0; k < keel_asm_ntools(a, 0); k++) {
        struct keel_asm_tool t;
        if (keel_asm_tool_at(a, 0, k, &t) != 0)
            continue;
        ws(o, sep);
        sep = ",";
        ws(o, "{\"type\":\"tool_use\",\"id\":");
        wtool_id(o, t.id, k);
        ws(o, ",\"name\":");
        wstring(o, t.name);
        ws(o, ",\"input\":");
        winput(o, t.args, t.args_len);
        ws(o, "}");
    }
}

int keel_asm_anthropic_message(const struct keel_asm *a, struct keel_buf *out)
{
    struct writer o = {out, 0};
    size_t was = out->len;
    ws(&o, "{\"id\":");
    wstring(&o, keel_asm_id(a));
    ws(&o, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    wstring(&o, keel_asm_model(a));
    ws(&o, ",\"content\":[");
    wblocks(&o, a);
    ws(&o, "],\"stop_reason\":");
    ws(&o, stop_reason(keel_asm_finish(a, 0)));
    ws(&o, ",\"stop_sequence\":null,\"usage\":{\"input_tokens\":");
    wnum(&o, tokens(a->counts.prompt_tokens));
    ws(&o, ",\"output_tokens\":");
    wnum(&o, tokens(a->counts.completion_tokens));
    ws(&o, "}}");
    if (o.rv != 0)
        out->len = was; /* nothing half-written */
    return o.rv;
}

/* ---- a stream, re-encoded event by event ---- */

void keel_anthropic_stream_init(struct keel_stream_enc *s, int include_usage)
{
    memset(s, 0, sizeof(*s));
    s->include_usage = include_usage;
}

/* a frame up to its data's members: `event: NAME\ndata: {"type":"NAME"` (closed by wframe_end) */
static void wframe(struct writer *o, const char *name)
{
    ws(o, "event: ");
    ws(o, name);
    ws(o, "\ndata: {\"type\":\"");
    ws(o, name);
    ws(o, "\"");
}

static void wframe_end(struct writer *o)
{
    ws(o, "}\n\n");
}

/* message_start: id and model those of META when it is the first event (meta NULL: none) */
static void wmessage_start(struct writer *o, const struct keel_ev *meta)
{
    static const struct keel_json none = {NULL, 0};
    wframe(o, "message_start");
    ws(o, ",\"message\":{\"id\":");
    wstring(o, meta != NULL ? meta->u.meta.id : none);
    ws(o, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    wstring(o, meta != NULL ? meta->u.meta.model : none);
    ws(o, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,"
          "\"output_tokens\":0}}");
    wframe_end(o);
}

/* the open block's content_block_stop, when one is open */
static void wclose(struct writer *o, struct keel_stream_anthropic *st)
{
    if (st->open == BLOCK_NONE)
        return;
    assert(st->nblocks > 0);
    wframe(o, "content_block_stop");
    ws(o, ",\"index\":");
    wnum(o, (long long)st->nblocks - 1);
    wframe_end(o);
    st->open = BLOCK_NONE;
}

/* closes the open block and starts one of kind (a tool_use one from the tool call's fragment
 * ev): 0, or -ENOBUFS when the blocks' count would wrap */
static int wopen(struct writer *o, struct keel_stream_anthropic *st, enum block kind, const struct keel_ev *ev)
{
    if (st->nblocks == UINT32_MAX)
        return -ENOBUFS;
    wclose(o, st);
    wframe(o, "content_block_start");
    ws(o, ",\"index\":");
    wnum(o, st->nblocks);
    ws(o, ",\"content_block\":");
    switch (kind) {
    case BLOCK_TEXT:
        ws(o, "{\"type\":\"text\",\"text\":\"\"}");
        break;
    case BLOCK_THINKING:
        ws(o, "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}");
        break;
    case BLOCK_TOOL:
        ws(o, "{\"type\":\"tool_use\",\"id\":");
        wtool_id(o, ev->u.tool.id, ev->u.tool.index);
        ws(o, ",\"name\":");
        wstring(o, ev->u.tool.name);
        ws(o, ",\"input\":{}}");
        st->tool = ev->u.tool.index;
        break;
    default:
        assert(!"a block kind");
    }
    wframe_end(o);
    st->open = kind;
    st->nblocks++;
    return 0;
}

/* a content_block_delta for the open block: {"type":type,key:...}, the rest the caller's */
static void wdelta(struct writer *o, const struct keel_stream_anthropic *st, const char *type, const char *key)
{
    assert(st->open != BLOCK_NONE && st->nblocks > 0);
    wframe(o, "content_block_delta");
    ws(o, ",\"index\":");
    wnum(o, (long long)st->nblocks - 1);
    ws(o, ",\"delta\":{\"type\":\"");
    ws(o, type);
    ws(o, "\",\"");
    ws(o, key);
    ws(o, "\":");
}

/* TEXT, REFUSAL (kind text) or REASONING (kind thinking) of choice 0 */
static int text(struct writer *o, struct keel_stream_anthropic *st, enum block kind, const struct keel_ev *ev)
{
    if (!keel_json_nonempty(ev->u.text.s))
        return 0;
    if (st->open != (int)kind) {
        int rv = wopen(o, st, kind, NULL);
        if (rv != 0)
            return rv;
    }
    if (kind == BLOCK_THINKING)
        wdelta(o, st, "thinking_delta", "thinking");
    else
        wdelta(o, st, "text_delta", "text");
    w(o, ev->u.text.s.p, ev->u.text.s.len);
    ws(o, "}");
    wframe_end(o);
    return 0;
}

/* a fragment's arguments say something: raw JSON text always does */
static int says_args(const struct keel_ev *ev)
{
    return ev->u.tool.args.p != NULL && (ev->u.tool.args_raw || keel_json_nonempty(ev->u.tool.args));
}

/* a tool call's fragment of choice 0: its block started on the first, its arguments into the
 * open block */
static int tool_call(struct writer *o, struct keel_stream_anthropic *st, const struct keel_ev *ev)
{
    uint32_t t = ev->u.tool.index;
    if (t >= KEEL_STREAM_MAX_INDEX)
        return -ENOBUFS;
    if (!keel_stream_bit(st->tool_started, t)) {
        int rv = wopen(o, st, BLOCK_TOOL, ev);
        if (rv != 0)
            return rv;
        keel_stream_set_bit(st->tool_started, t);
    } else if (st->open != BLOCK_TOOL || st->tool != t) {
        return says_args(ev) ? -EPROTO : 0; /* its block is closed: Anthropic cannot reopen one */
    }
    if (!says_args(ev))
        return 0;
    wdelta(o, st, "input_json_delta", "partial_json");
    if (ev->u.tool.args_raw)
        wescaped(o, ev->u.tool.args);
    else
        w(o, ev->u.tool.args.p, ev->u.tool.args.len);
    ws(o, "}");
    wframe_end(o);
    return 0;
}

/* what ev says once the message started: into st and *usage, frames into o */
static int event(struct writer *o, struct keel_stream_anthropic *st, struct keel_usage *usage,
                 const struct keel_ev *ev)
{
    if (ev->kind == KEEL_EV_USAGE) {
        *usage = ev->u.usage.n; /* the last one: a running count is worth less than the final */
        return 0;
    }
    if (ev->choice != 0)
        return 0; /* the protocol has one choice */
    switch (ev->kind) {
    case KEEL_EV_TEXT:
    case KEEL_EV_REFUSAL:
        return text(o, st, BLOCK_TEXT, ev);
    case KEEL_EV_REASONING:
        return text(o, st, BLOCK_THINKING, ev);
    case KEEL_EV_TOOL_CALL:
        return tool_call(o, st, ev);
    case KEEL_EV_FINISH:
        if (st->stop_reason == NULL && keel_json_nonempty(ev->u.finish))
            st->stop_reason = stop_reason(ev->u.finish);
        return 0;
    default:
        return 0; /* META (kept for message_start only), ROLE, LOGPROBS: nothing more to say */
    }
}

int keel_anthropic_stream_event(struct keel_stream_enc *s, const struct keel_ev *ev, struct keel_buf *out)
{
    struct keel_stream_anthropic st = s->anthropic;
    struct keel_usage usage = s->usage;
    struct writer o = {out, 0};
    size_t was = out->len;
    if (ev->kind == KEEL_EV_ERROR)
        return 0; /* the caller's to act on: it ends the stream its own way */
    if (!st.started) {
        wmessage_start(&o, ev->kind == KEEL_EV_META ? ev : NULL);
        st.started = 1;
    }
    int rv = event(&o, &st, &usage, ev);
    if (rv == 0)
        rv = o.rv;
    if (rv != 0) {
        out->len = was; /* nothing half-written, and the state as it was */
        return rv;
    }
    s->anthropic = st;
    s->usage = usage;
    return 0;
}

int keel_anthropic_stream_end(struct keel_stream_enc *s, struct keel_buf *out)
{
    struct keel_stream_anthropic st = s->anthropic;
    struct writer o = {out, 0};
    size_t was = out->len;
    if (!st.started) {
        wmessage_start(&o, NULL);
        st.started = 1;
    }
    wclose(&o, &st);
    wframe(&o, "message_delta");
    ws(&o, ",\"delta\":{\"stop_reason\":");
    ws(&o, st.stop_reason != NULL ? st.stop_reason : "\"end_turn\"");
    ws(&o, ",\"stop_sequence\":null},\"usage\":{\"input_tokens\":");
    wnum(&o, tokens(s->usage.prompt_tokens));
    ws(&o, ",\"output_tokens\":");
    wnum(&o, tokens(s->usage.completion_tokens));
    ws(&o, "}");
    wframe_end(&o);
    wframe(&o, "message_stop");
    wframe_end(&o);
    if (o.rv != 0) {
        out->len = was;
        return o.rv;
    }
    s->anthropic = st;
    return 0;
}

const struct keel_encoder_ops keel_anthropic_encoder = {
    .protocol = "anthropic-messages",
    .native_kind = "anthropic",
    .native_end = NULL,      /* message_stop goes as the target sent it */
    .error_event = "error",  /* the SDKs read an error only from an event named so */
    .native_frames = 1,
    .answer = keel_asm_anthropic_message,
    .stream_init = keel_anthropic_stream_init,
    .stream_event = keel_anthropic_stream_event,
    .stream_end = keel_anthropic_stream_end,
};
