/* responses_enc.c - the OpenAI Responses API encoder (keel_responses_encoder, core/assemble.h): a
 * whole Response written from an assembly, and a stream of named, numbered SSE events re-encoded
 * event by event, for clients of `POST /v1/responses` served by targets of another kind. Events
 * speak chat completions' vocabulary (core/event.h): items, their ids and statuses are made here.
 * A stream repeats what it said whole (.done events, the final Response), so it keeps it: an
 * assembler of its own, bounded by the state's max. What an errored or refused attempt becomes,
 * and keel's own error frame, are the caller's. */
#include "core/assemble.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/writer.h"

/* an output item's kind; ITEM_MESSAGE (text and refusal parts at once) only in a whole answer */
enum item { ITEM_NONE, ITEM_REASONING, ITEM_TEXT, ITEM_REFUSAL, ITEM_TOOL, ITEM_MESSAGE };

struct keel_stream_item {
    uint8_t kind;    /* enum item */
    uint8_t made_id; /* ITEM_TOOL: its first fragment sent no id: its call_id is keel's */
    uint32_t tool;   /* ITEM_TOOL: its tool-call index */
    size_t from, to; /* a text item: its bytes in choice 0's text of its kind, [from, to); `to` is
                      * set when it closes (ITEM_MESSAGE: its whole text and refusal) */
};

/* the response id's tail at most (what follows "resp_", and ends every item id) */
#define TAIL_MAX 64

/* What every Response of one answer says the same: the id's tail, created_at, model. */
struct head {
    char tail[TAIL_MAX];
    size_t tail_len;       /* > 0 */
    long long created;     /* created_at */
    struct keel_json model; /* a string literal, or absent ("") */
};

/* the head from META's id, model and created (each may be absent), created else `now` */
static void head_of(struct head *h, struct keel_json id, struct keel_json model, struct keel_json created,
                    long long now)
{
    static const char keel[] = "keel";
    h->tail_len = 0;
    if (keel_json_type(id) == KEEL_JSON_STRING) {
        for (size_t i = 1; i + 1 < id.len && h->tail_len < TAIL_MAX; i++) {
            char c = id.p[i];
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-')
                h->tail[h->tail_len++] = c;
        }
    }
    if (h->tail_len == 0) {
        memcpy(h->tail, keel, sizeof(keel) - 1);
        h->tail_len = sizeof(keel) - 1;
    }
    h->model = keel_json_type(model) == KEEL_JSON_STRING ? model : (struct keel_json){NULL, 0};
    if (keel_json_int(created, &h->created) != 0)
        h->created = now;
}

/* ---- writing ---- */

/* a token count as the Responses usage says one: never negative (an OpenAI server's -1 is none) */
static long long tokens(long long n)
{
    return n > 0 ? n : 0;
}

/* the string literal `s` holding a literal's inside p[0..n) */
static void wquoted(struct writer *o, const char *p, size_t n)
{
    ws(o, "\"");
    w(o, p, n);
    ws(o, "\"");
}

static const char *const id_prefix[] = {
    [ITEM_REASONING] = "\"rs_", [ITEM_TEXT] = "\"msg_", [ITEM_REFUSAL] = "\"msg_",
    [ITEM_TOOL] = "\"fc_",      [ITEM_MESSAGE] = "\"msg_",
};

/* item n's id: "<prefix><n>_<tail>" */
static void witem_id(struct writer *o, const struct head *h, enum item kind, size_t n)
{
    assert(kind > ITEM_NONE && kind <= ITEM_MESSAGE);
    ws(o, id_prefix[kind]);
    wnum(o, (long long)n);
    ws(o, "_");
    w(o, h->tail, h->tail_len);
    ws(o, "\"");
}

/* a tool call's call_id: the id sent, else keel's "call_<index>_<tail>" */
static void wcall_id(struct writer *o, const struct head *h, struct keel_json id, int made, uint32_t tool)
{
    if (!made) {
        assert(keel_json_nonempty(id));
        w(o, id.p, id.len);
        return;
    }
    ws(o, "\"call_");
    wnum(o, tool);
    ws(o, "_");
    w(o, h->tail, h->tail_len);
    ws(o, "\"");
}

/* a string literal as sent when v is one, else "" */
static void wstring(struct writer *o, struct keel_json v)
{
    if (keel_json_type(v) == KEEL_JSON_STRING)
        w(o, v.p, v.len);
    else
        ws(o, "\"\"");
}

static void wpart_text(struct writer *o, const char *t, size_t n)
{
    ws(o, "{\"type\":\"output_text\",\"text\":");
    wquoted(o, t, n);
    ws(o, ",\"annotations\":[]}");
}

static void wpart_refusal(struct writer *o, const char *t, size_t n)
{
    ws(o, "{\"type\":\"refusal\",\"refusal\":");
    wquoted(o, t, n);
    ws(o, "}");
}

static void wsummary_part(struct writer *o, const char *t, size_t n)
{
    ws(o, "{\"type\":\"summary_text\",\"text\":");
    wquoted(o, t, n);
    ws(o, "}");
}

/* choice 0's text of kind k: its bytes, *len long ("" when none came) */
static const char *text_of(const struct keel_asm *a, enum keel_asm_text k, size_t *len)
{
    const char *t = keel_asm_text(a, 0, k, len);
    return t != NULL ? t : "";
}

static enum keel_asm_text text_kind(enum item kind)
{
    assert(kind == ITEM_REASONING || kind == ITEM_TEXT || kind == ITEM_REFUSAL);
    return kind == ITEM_REASONING ? KEEL_ASM_REASONING : kind == ITEM_TEXT ? KEEL_ASM_CONTENT : KEEL_ASM_REFUSAL;
}

/* a text item's bytes: [from, to) of its kind's text */
static const char *slice(const struct keel_asm *a, const struct keel_stream_item *it, size_t *len)
{
    size_t all;
    const char *t = text_of(a, text_kind(it->kind), &all);
    assert(it->from <= it->to && it->to <= all);
    *len = it->to - it->from;
    return t + it->from;
}

/* a tool item's call as assembled: every item's call took a fragment before the item is read */
static void tool_of(const struct keel_asm *a, const struct keel_stream_item *it, struct keel_asm_tool *t)
{
    assert(it->kind == ITEM_TOOL && it->tool < keel_asm_ntools(a, 0));
    int seen = keel_asm_tool_at(a, 0, it->tool, t);
    assert(seen == 0);
    (void)seen;
}

/* item n whole (its status, where the type has one, `status`) */
static void witem(struct writer *o, const struct keel_asm *a, const struct head *h, const struct keel_stream_item *it,
                  size_t n, const char *status)
{
    const char *t, *r;
    size_t tn, rn;
    struct keel_asm_tool tool;
    switch (it->kind) {
    case ITEM_REASONING:
        t = slice(a, it, &tn);
        ws(o, "{\"type\":\"reasoning\",\"id\":");
        witem_id(o, h, ITEM_REASONING, n);
        ws(o, ",\"summary\":[");
        wsummary_part(o, t, tn);
        ws(o, "]}");
        return;
    case ITEM_TOOL:
        tool_of(a, it, &tool);
        ws(o, "{\"type\":\"function_call\",\"id\":");
        witem_id(o, h, ITEM_TOOL, n);
        ws(o, ",\"call_id\":");
        wcall_id(o, h, tool.id, it->made_id, it->tool);
        ws(o, ",\"name\":");
        wstring(o, tool.name);
        ws(o, ",\"arguments\":");
        wquoted(o, tool.args, tool.args_len);
        ws(o, ",\"status\":\"");
        ws(o, status);
        ws(o, "\"}");
        return;
    default:
        break;
    }
    ws(o, "{\"type\":\"message\",\"id\":");
    witem_id(o, h, (enum item)it->kind, n);
    ws(o, ",\"status\":\"");
    ws(o, status);
    ws(o, "\",\"role\":\"assistant\",\"content\":[");
    switch (it->kind) {
    case ITEM_TEXT:
        t = slice(a, it, &tn);
        wpart_text(o, t, tn);
        break;
    case ITEM_REFUSAL:
        r = slice(a, it, &rn);
        wpart_refusal(o, r, rn);
        break;
    case ITEM_MESSAGE:
        t = text_of(a, KEEL_ASM_CONTENT, &tn);
        r = text_of(a, KEEL_ASM_REFUSAL, &rn);
        if (tn > 0)
            wpart_text(o, t, tn);
        if (tn > 0 && rn > 0)
            ws(o, ",");
        if (rn > 0)
            wpart_refusal(o, r, rn);
        break;
    default:
        assert(!"an item kind");
    }
    ws(o, "]}");
}

/* the incomplete_details reason the finish reason says (length, content_filter), else NULL */
static const char *incomplete_reason(const struct keel_asm *a)
{
    static const struct keel_key length = KEEL_KEY("length"), filter = KEEL_KEY("content_filter");
    struct keel_json finish = keel_asm_finish(a, 0);
    if (keel_key_is(finish, length))
        return "max_output_tokens";
    if (keel_key_is(finish, filter))
        return "content_filter";
    return NULL;
}

/* the status of item i of n in a Response whose reason is `reason`: the last one was cut */
static const char *item_status(const char *reason, size_t i, size_t n)
{
    return reason != NULL && i + 1 == n ? "incomplete" : "completed";
}

static void wusage(struct writer *o, const struct keel_usage *u)
{
    long long in = tokens(u->prompt_tokens), out = tokens(u->completion_tokens);
    ws(o, "{\"input_tokens\":");
    wnum(o, in);
    ws(o, ",\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":");
    wnum(o, out);
    ws(o, ",\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":");
    wnum(o, out > LLONG_MAX - in ? LLONG_MAX : in + out);
    ws(o, "}");
}

/* A Response: whole, its output items[0..n) and its status from the finish reason; else in
 * progress (output [], usage null) */
static void wresponse(struct writer *o, const struct keel_asm *a, const struct head *h, int whole,
                      const struct keel_stream_item *items, size_t n)
{
    const char *reason = whole ? incomplete_reason(a) : NULL;
    ws(o, "{\"id\":\"resp_");
    w(o, h->tail, h->tail_len);
    ws(o, "\",\"object\":\"response\",\"created_at\":");
    wnum(o, h->created);
    ws(o, ",\"status\":\"");
    ws(o, !whole ? "in_progress" : reason != NULL ? "incomplete" : "completed");
    ws(o, "\",\"error\":null,\"incomplete_details\":");
    if (reason != NULL) {
        ws(o, "{\"reason\":\"");
        ws(o, reason);
        ws(o, "\"}");
    } else {
        ws(o, "null");
    }
    ws(o, ",\"instructions\":null,\"metadata\":{},\"model\":");
    wstring(o, h->model);
    ws(o, ",\"output\":[");
    for (size_t i = 0; whole && i < n; i++) {
        if (i > 0)
            ws(o, ",");
        witem(o, a, h, &items[i], i, item_status(reason, i, n));
    }
    ws(o, "],\"parallel_tool_calls\":true,\"temperature\":null,\"tool_choice\":\"auto\",\"tools\":[],"
          "\"top_p\":null,\"usage\":");
    if (whole)
        wusage(o, &a->counts);
    else
        ws(o, "null");
    ws(o, "}");
}

/* ---- the whole answer ---- */

int keel_asm_responses(const struct keel_asm *a, struct keel_buf *out)
{
    struct keel_stream_item items[2 + KEEL_STREAM_MAX_INDEX];
    struct writer o = {out, 0};
    struct head h;
    size_t n = 0, len, refusal;
    size_t was = out->len;
    head_of(&h, keel_asm_id(a), keel_asm_model(a), keel_asm_created(a), a->created_at);
    text_of(a, KEEL_ASM_REASONING, &len);
    if (len > 0)
        items[n++] = (struct keel_stream_item){.kind = ITEM_REASONING, .to = len};
    text_of(a, KEEL_ASM_CONTENT, &len);
    text_of(a, KEEL_ASM_REFUSAL, &refusal);
    if (len > 0 || refusal > 0)
        items[n++] = (struct keel_stream_item){.kind = ITEM_MESSAGE};
    assert(keel_asm_ntools(a, 0) <= KEEL_STREAM_MAX_INDEX);
    for (size_t k = 0; k < keel_asm_ntools(a, 0); k++) {
        struct keel_asm_tool t;
        if (keel_asm_tool_at(a, 0, k, &t) == 0)
            items[n++] = (struct keel_stream_item){
                .kind = ITEM_TOOL, .made_id = !keel_json_nonempty(t.id), .tool = (uint32_t)k};
    }
    wresponse(&o, a, &h, 1, items, n);
    if (o.rv != 0)
        out->len = was; /* nothing half-written */
    return o.rv;
}

/* ---- a stream, re-encoded event by event ---- */

void keel_responses_stream_init(struct keel_stream_enc *s, int include_usage)
{
    memset(s, 0, sizeof(*s));
    s->include_usage = include_usage;
    s->max = KEEL_STREAM_MAX_HELD;
    keel_asm_init(&s->responses.a, s->max, ""); /* no kind: usage as counts, types as keel's */
}

void keel_responses_stream_release(struct keel_stream_enc *s)
{
    struct keel_stream_responses *r = &s->responses;
    keel_asm_release(&r->a);
    free(r->items);
    r->items = NULL;
    r->cap = 0;
    s->held = 0;
}

/* the bytes the state holds */
static void hold(struct keel_stream_enc *s)
{
    s->held = s->responses.a.held + s->responses.cap * sizeof(struct keel_stream_item);
    assert(s->held <= s->max);
}

/* room for n items: 0, -ENOBUFS past the state's max, -ENOMEM (items as they were) */
static int grow(struct keel_stream_enc *s, size_t n)
{
    struct keel_stream_responses *r = &s->responses;
    size_t sz = sizeof(*r->items), room = (s->max - s->held) / sz, cap = r->cap < 4 ? 8 : 2 * r->cap;
    if (n <= r->cap)
        return 0;
    if (cap - r->cap > room)
        cap = r->cap + room;
    if (cap < n)
        return -ENOBUFS;
    struct keel_stream_item *items = realloc(r->items, cap * sz);
    if (items == NULL)
        return -ENOMEM;
    r->items = items;
    r->cap = cap;
    hold(s);
    return 0;
}

/* a frame up to its data's members: `event: TYPE\ndata: {"type":"TYPE"` (closed by wframe_end) */
static void wframe(struct writer *o, const char *type)
{
    ws(o, "event: ");
    ws(o, type);
    ws(o, "\ndata: {\"type\":\"");
    ws(o, type);
    ws(o, "\"");
}

/* the frame's sequence_number, and its end */
static void wframe_end(struct writer *o, struct keel_stream_told *t)
{
    ws(o, ",\"sequence_number\":");
    wnum(o, (long long)t->seq++);
    ws(o, "}\n\n");
}

/* `"item_id":..,"output_index":n` of item n (the members of a frame about one item) */
static void wabout(struct writer *o, const struct head *h, enum item kind, size_t n)
{
    ws(o, ",\"item_id\":");
    witem_id(o, h, kind, n);
    ws(o, ",\"output_index\":");
    wnum(o, (long long)n);
}

/* response.created and response.in_progress, with the Response so far */
static void wstart(struct writer *o, const struct keel_stream_enc *s, struct keel_stream_told *t,
                   const struct head *h)
{
    static const char *const types[] = {"response.created", "response.in_progress"};
    for (size_t i = 0; i < 2; i++) {
        wframe(o, types[i]);
        ws(o, ",\"response\":");
        wresponse(o, &s->responses.a, h, 0, NULL, 0);
        wframe_end(o, t);
    }
    t->started = 1;
}

/* the open item's kind (ITEM_NONE: none open) */
static enum item open_kind(const struct keel_stream_enc *s, const struct keel_stream_told *t)
{
    return t->open ? (enum item)s->responses.items[t->nitems - 1].kind : ITEM_NONE;
}

/* Closes the open item, when one is: its text done (its end set: what the assembly holds of its
 * kind now, the event being written not assembled yet), its part done, the item done with
 * status `status`. */
static void wclose(struct writer *o, struct keel_stream_enc *s, struct keel_stream_told *t, const struct head *h,
                   const char *status)
{
    static const char *const text_done[] = {[ITEM_REASONING] = "response.reasoning_summary_text.done",
                                            [ITEM_TEXT] = "response.output_text.done",
                                            [ITEM_REFUSAL] = "response.refusal.done"};
    static const char *const text_key[] = {
        [ITEM_REASONING] = ",\"summary_index\":0,\"text\":", [ITEM_TEXT] = ",\"content_index\":0,\"text\":",
        [ITEM_REFUSAL] = ",\"content_index\":0,\"refusal\":"};
    const struct keel_asm *a = &s->responses.a;
    if (!t->open)
        return;
    size_t n = t->nitems - 1, len;
    struct keel_stream_item *it = &s->responses.items[n];
    enum item kind = (enum item)it->kind;
    if (kind == ITEM_TOOL) {
        struct keel_asm_tool tool;
        tool_of(a, it, &tool);
        wframe(o, "response.function_call_arguments.done");
        wabout(o, h, kind, n);
        ws(o, ",\"name\":");
        wstring(o, tool.name);
        ws(o, ",\"arguments\":");
        wquoted(o, tool.args, tool.args_len);
        wframe_end(o, t);
    } else {
        /* its end: set now, unmoved by what follows (the same again if this call is refused) */
        text_of(a, text_kind(kind), &it->to);
        const char *p = slice(a, it, &len);
        wframe(o, text_done[kind]);
        wabout(o, h, kind, n);
        ws(o, text_key[kind]);
        wquoted(o, p, len);
        if (kind == ITEM_TEXT)
            ws(o, ",\"logprobs\":[]");
        wframe_end(o, t);
        wframe(o, kind == ITEM_REASONING ? "response.reasoning_summary_part.done" : "response.content_part.done");
        wabout(o, h, kind, n);
        ws(o, kind == ITEM_REASONING ? ",\"summary_index\":0,\"part\":" : ",\"content_index\":0,\"part\":");
        if (kind == ITEM_REASONING)
            wsummary_part(o, p, len);
        else if (kind == ITEM_TEXT)
            wpart_text(o, p, len);
        else
            wpart_refusal(o, p, len);
        wframe_end(o, t);
    }
    wframe(o, "response.output_item.done");
    ws(o, ",\"output_index\":");
    wnum(o, (long long)n);
    ws(o, ",\"item\":");
    witem(o, a, h, it, n, status);
    wframe_end(o, t);
    t->open = 0;
}

/* Closes the open item and starts one of kind (a function_call from the tool call's first
 * fragment ev), described into *add for the caller to keep once all went out. */
static void wopen(struct writer *o, struct keel_stream_enc *s, struct keel_stream_told *t, const struct head *h,
                  enum item kind, const struct keel_ev *ev, struct keel_stream_item *add)
{
    wclose(o, s, t, h, "completed");
    size_t n = t->nitems;
    *add = (struct keel_stream_item){.kind = (uint8_t)kind};
    wframe(o, "response.output_item.added");
    ws(o, ",\"output_index\":");
    wnum(o, (long long)n);
    ws(o, ",\"item\":");
    switch (kind) {
    case ITEM_REASONING:
        ws(o, "{\"type\":\"reasoning\",\"id\":");
        witem_id(o, h, kind, n);
        ws(o, ",\"summary\":[]}");
        break;
    case ITEM_TEXT:
    case ITEM_REFUSAL:
        ws(o, "{\"type\":\"message\",\"id\":");
        witem_id(o, h, kind, n);
        ws(o, ",\"status\":\"in_progress\",\"role\":\"assistant\",\"content\":[]}");
        break;
    case ITEM_TOOL:
        add->tool = ev->u.tool.index;
        add->made_id = !keel_json_nonempty(ev->u.tool.id);
        ws(o, "{\"type\":\"function_call\",\"id\":");
        witem_id(o, h, kind, n);
        ws(o, ",\"call_id\":");
        wcall_id(o, h, ev->u.tool.id, add->made_id, add->tool);
        ws(o, ",\"name\":");
        wstring(o, ev->u.tool.name);
        ws(o, ",\"arguments\":\"\",\"status\":\"in_progress\"}");
        break;
    default:
        assert(!"an item kind a stream starts");
    }
    wframe_end(o, t);
    if (kind != ITEM_TOOL) {
        wframe(o, kind == ITEM_REASONING ? "response.reasoning_summary_part.added" : "response.content_part.added");
        wabout(o, h, kind, n);
        if (kind == ITEM_REASONING) {
            ws(o, ",\"summary_index\":0,\"part\":");
            wsummary_part(o, "", 0);
        } else {
            ws(o, ",\"content_index\":0,\"part\":");
            if (kind == ITEM_TEXT)
                wpart_text(o, "", 0);
            else
                wpart_refusal(o, "", 0);
        }
        wframe_end(o, t);
    }
    t->nitems++;
    t->open = 1;
}

/* TEXT, REASONING or REFUSAL of choice 0: into the open item of its kind, else a new one */
static int text(struct writer *o, struct keel_stream_enc *s, struct keel_stream_told *t, const struct head *h,
                enum item kind, const struct keel_ev *ev, struct keel_stream_item *add)
{
    static const char *const delta[] = {[ITEM_REASONING] = "response.reasoning_summary_text.delta",
                                        [ITEM_TEXT] = "response.output_text.delta",
                                        [ITEM_REFUSAL] = "response.refusal.delta"};
    if (!keel_json_nonempty(ev->u.text.s))
        return 0;
    if (open_kind(s, t) != kind)
        wopen(o, s, t, h, kind, ev, add);
    wframe(o, delta[kind]);
    wabout(o, h, kind, t->nitems - 1);
    ws(o, kind == ITEM_REASONING ? ",\"summary_index\":0,\"delta\":" : ",\"content_index\":0,\"delta\":");
    w(o, ev->u.text.s.p, ev->u.text.s.len);
    if (kind == ITEM_TEXT)
        ws(o, ",\"logprobs\":[]");
    wframe_end(o, t);
    return 0;
}

/* a fragment's arguments say something: raw JSON text always does */
static int says_args(const struct keel_ev *ev)
{
    return ev->u.tool.args.p != NULL && (ev->u.tool.args_raw || keel_json_nonempty(ev->u.tool.args));
}

/* a tool call's fragment of choice 0: its item started on the first, its arguments into it */
static int tool_call(struct writer *o, struct keel_stream_enc *s, struct keel_stream_told *t, const struct head *h,
                     const struct keel_ev *ev, struct keel_stream_item *add)
{
    uint32_t k = ev->u.tool.index;
    if (k >= KEEL_STREAM_MAX_INDEX)
        return -ENOBUFS;
    if (!keel_stream_bit(t->tool_started, k)) {
        wopen(o, s, t, h, ITEM_TOOL, ev, add);
        keel_stream_set_bit(t->tool_started, k);
    } else if (open_kind(s, t) != ITEM_TOOL || s->responses.items[t->nitems - 1].tool != k) {
        return says_args(ev) ? -EPROTO : 0; /* its item is closed: the protocol cannot reopen one */
    }
    if (!says_args(ev))
        return 0;
    wframe(o, "response.function_call_arguments.delta");
    wabout(o, h, ITEM_TOOL, t->nitems - 1);
    ws(o, ",\"delta\":");
    if (ev->u.tool.args_raw)
        wescaped(o, ev->u.tool.args);
    else
        w(o, ev->u.tool.args.p, ev->u.tool.args.len);
    wframe_end(o, t);
    return 0;
}

/* what the assembly keeps: META and USAGE, choice 0's content and finish (not its role nor
 * logprobs, which no frame repeats) */
static int kept(const struct keel_ev *ev)
{
    switch (ev->kind) {
    case KEEL_EV_META:
    case KEEL_EV_USAGE:
        return 1;
    case KEEL_EV_TEXT:
    case KEEL_EV_REASONING:
    case KEEL_EV_REFUSAL:
    case KEEL_EV_TOOL_CALL:
    case KEEL_EV_FINISH:
        return ev->choice == 0;
    default:
        return 0;
    }
}

/* the head the stream's Responses say: the first event's META (ev when it is that event, else
 * what the assembly kept of it), else keel's */
static void stream_head(const struct keel_stream_enc *s, const struct keel_ev *ev, struct head *h)
{
    static const struct keel_json none = {NULL, 0};
    const struct keel_asm *a = &s->responses.a;
    unsigned bits = s->responses.told.head;
    if (!s->responses.told.started && ev != NULL && ev->kind == KEEL_EV_META) {
        head_of(h, ev->u.meta.id, ev->u.meta.model, ev->u.meta.created, s->created_at);
        return;
    }
    head_of(h, bits & 1 ? keel_asm_id(a) : none, bits & 2 ? keel_asm_model(a) : none,
            bits & 4 ? keel_asm_created(a) : none, s->created_at);
}

/* which of META's fields the assembly keeps (not null): what response.created says of them */
static unsigned head_bits(const struct keel_ev *ev)
{
    const struct keel_json f[] = {ev->u.meta.id, ev->u.meta.model, ev->u.meta.created};
    unsigned bits = 0;
    for (unsigned i = 0; i < 3; i++) {
        enum keel_json_type type = keel_json_type(f[i]);
        if (type != KEEL_JSON_NONE && type != KEEL_JSON_NULL)
            bits |= 1u << i;
    }
    return bits;
}

int keel_responses_stream_event(struct keel_stream_enc *s, const struct keel_ev *ev, struct keel_buf *out)
{
    struct keel_stream_responses *r = &s->responses;
    struct keel_stream_told t = r->told;
    struct keel_stream_item add = {0};
    struct writer o = {out, 0};
    struct head h;
    size_t was = out->len;
    int rv = 0;
    if (ev->kind == KEEL_EV_ERROR)
        return 0; /* the caller's to act on: it ends the stream its own way */
    if (s->held > s->max)
        return -ENOBUFS; /* the caller lowered max past what is held */
    stream_head(s, ev, &h);
    if (!t.started) {
        wstart(&o, s, &t, &h);
        if (ev->kind == KEEL_EV_META)
            t.head = head_bits(ev);
    }
    if (ev->choice == 0 || ev->kind == KEEL_EV_META || ev->kind == KEEL_EV_USAGE) {
        switch (ev->kind) {
        case KEEL_EV_TEXT:
            rv = text(&o, s, &t, &h, ITEM_TEXT, ev, &add);
            break;
        case KEEL_EV_REASONING:
            rv = text(&o, s, &t, &h, ITEM_REASONING, ev, &add);
            break;
        case KEEL_EV_REFUSAL:
            rv = text(&o, s, &t, &h, ITEM_REFUSAL, ev, &add);
            break;
        case KEEL_EV_TOOL_CALL:
            rv = tool_call(&o, s, &t, &h, ev, &add);
            break;
        default:
            break; /* META, USAGE and FINISH kept for the end; ROLE, LOGPROBS: nothing to say */
        }
    }
    if (rv == 0)
        rv = o.rv;
    /* all went out: the new item kept (its text starts where its kind's ends now), then the event */
    if (rv == 0 && t.nitems > r->told.nitems)
        rv = grow(s, t.nitems);
    if (rv == 0 && t.nitems > r->told.nitems) {
        if (add.kind != ITEM_TOOL)
            text_of(&r->a, text_kind((enum item)add.kind), &add.from);
        r->items[t.nitems - 1] = add;
    }
    if (rv == 0 && kept(ev)) {
        r->a.max = s->max - r->cap * sizeof(*r->items);
        rv = keel_asm_event(&r->a, ev);
    }
    hold(s);
    if (rv != 0) {
        out->len = was; /* nothing half-written, and the position as it was */
        return rv;
    }
    r->told = t;
    return 0;
}

int keel_responses_stream_end(struct keel_stream_enc *s, struct keel_buf *out)
{
    struct keel_stream_responses *r = &s->responses;
    struct keel_stream_told t = r->told;
    struct writer o = {out, 0};
    struct head h;
    size_t was = out->len;
    stream_head(s, NULL, &h);
    if (!t.started)
        wstart(&o, s, &t, &h);
    const char *reason = incomplete_reason(&r->a);
    if (t.open)
        wclose(&o, s, &t, &h, item_status(reason, t.nitems - 1, t.nitems));
    wframe(&o, reason != NULL ? "response.incomplete" : "response.completed");
    ws(&o, ",\"response\":");
    wresponse(&o, &r->a, &h, 1, r->items, t.nitems);
    wframe_end(&o, &t);
    if (o.rv != 0) {
        out->len = was;
        return o.rv;
    }
    r->told = t;
    return 0;
}

/* C string s quoted as a JSON string, "" when it does not fit a frame's room */
static void wcstring(struct writer *o, const char *s)
{
    char buf[512];
    size_t n = keel_json_quote(s, NULL, 0);
    if (n < sizeof(buf)) {
        keel_json_quote(s, buf, sizeof(buf));
        w(o, buf, n);
    } else {
        ws(o, "\"\"");
    }
}

int keel_responses_stream_error(struct keel_stream_enc *s, const char *code, const char *message,
                                struct keel_buf *out)
{
    struct keel_stream_responses *r = &s->responses;
    struct keel_stream_told t = r->told;
    struct writer o = {out, 0};
    size_t was = out->len;
    wframe(&o, "error");
    ws(&o, ",\"code\":");
    wcstring(&o, code);
    ws(&o, ",\"message\":");
    wcstring(&o, message);
    ws(&o, ",\"param\":null");
    wframe_end(&o, &t);
    if (o.rv != 0) {
        out->len = was;
        return o.rv;
    }
    r->told = t;
    return 0;
}

const struct keel_encoder_ops keel_responses_encoder = {
    .protocol = "openai-responses",
    .native_kind = "openai-responses", /* no upstream kind has it yet: every stream is re-encoded */
    .native_end = NULL,
    .error_event = "error", /* the SDKs read a stream's error from an event of that type */
    .native_frames = 0,
    .answer = keel_asm_responses,
    .stream_init = keel_responses_stream_init,
    .stream_event = keel_responses_stream_event,
    .stream_end = keel_responses_stream_end,
    .stream_release = keel_responses_stream_release,
    .stream_error = keel_responses_stream_error,
};
