/* assemble.c - one answer gathered from its events and written as an OpenAI chat.completion, and
 * events re-encoded one by one as OpenAI chat.completion.chunk frames; see assemble.h. Text is
 * kept as its JSON string literals' inner bytes, escapes as sent, and joined by concatenation: a
 * JSON escape never spans two literals, so the join is one valid literal. Which events a stream
 * carries is the decoders' (core/event.h); errors are the caller's. */
#include "core/assemble.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/writer.h"

/* choices, and tool calls per choice: an index at or past this is refused with -ENOBUFS */
#define MAX_INDEX KEEL_STREAM_MAX_INDEX

enum { META_ID, META_MODEL, META_CREATED, META_FINGERPRINT, META_TIER, META_N };
enum { TEXT_CONTENT, TEXT_REASONING, TEXT_REFUSAL, TEXT_N };
enum { LP_CONTENT, LP_REFUSAL, LP_N };

struct tool {
    int seen;                       /* a fragment of this index came (a lower index may not have) */
    struct keel_buf id, type, name; /* string literals, quotes included; len 0: none came */
    struct keel_buf args;           /* the arguments fragments' inner bytes, joined */
};

struct keel_asm_choice {
    struct keel_buf role, finish; /* string literals, quotes included; len 0: none came */
    struct keel_buf text[TEXT_N]; /* content, reasoning, refusal: inner bytes joined */
    int has_text[TEXT_N];         /* an event of that kind came, "" included */
    int reasoning_alt;            /* the first REASONING's alt: written as "reasoning" */
    struct keel_buf lp[LP_N];     /* logprobs content, refusal: the arrays' elements joined by ',' */
    int has_lp[LP_N];             /* an array came for it (null or absent do not count) */
    int has_logprobs;             /* any LOGPROBS came */
    struct tool *tools;           /* [ntools], by index; tools[ntools - 1].seen */
    size_t ntools;
};

_Static_assert(META_N == sizeof(((struct keel_asm *)0)->meta_at) / sizeof(((struct keel_asm *)0)->meta_at[0]),
               "one meta_at per META field");

/* ---- holding bytes ---- */

/* Appends n bytes to b, what it allocates charged to a's cap: b may grow by what the cap has
 * left and no more (keel_buf clamps its growth to max), so held is what is allocated, slack
 * included, and never passes max. b->cap <= held, so the sum does not overflow. */
static int put(struct keel_asm *a, struct keel_buf *b, const char *p, size_t n)
{
    size_t cap = b->cap;
    assert(a->held <= a->max && cap <= a->held);
    b->max = cap + (a->max - a->held);
    int rv = keel_buf_append(b, p, n);
    a->held += b->cap - cap;
    return rv;
}

static int is_literal(struct keel_json s)
{
    return s.p != NULL && s.len >= 2 && s.p[0] == '"' && s.p[s.len - 1] == '"';
}

/* A field sent whole (role, finish reason, a tool call's id, type, name): the first non-empty
 * value, an empty one only until another comes. Some servers repeat them in every fragment. */
static int keep(struct keel_asm *a, struct keel_buf *b, struct keel_json s)
{
    if (s.p == NULL || b->len > 2 || (b->len == 2 && s.len == 2))
        return 0;
    assert(is_literal(s));
    keel_buf_reset(b);
    return put(a, b, s.p, s.len);
}

/* a text fragment: its literal's inner bytes after the others */
static int join(struct keel_asm *a, struct keel_buf *b, struct keel_json s)
{
    assert(is_literal(s));
    return put(a, b, s.p + 1, s.len - 2);
}

struct held {
    struct keel_asm *a;
    struct keel_buf *b;
};

static int put_held(void *ctx, const char *p, size_t n)
{
    struct held *h = ctx;
    return put(h->a, h->b, p, n);
}

/* a tool call's arguments fragment: a literal's inner bytes, or raw JSON text escaped */
static int join_args(struct keel_asm *a, struct keel_buf *b, const struct keel_ev *ev)
{
    struct held h = {a, b};
    if (!ev->u.tool.args_raw)
        return join(a, b, ev->u.tool.args);
    return keel_json_escape(ev->u.tool.args.p, ev->u.tool.args.len, put_held, &h);
}

static int space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* an array's elements after the others (',' between): nothing of b changes on failure */
static int join_array(struct keel_asm *a, struct keel_buf *b, struct keel_json arr)
{
    const char *p = arr.p + 1, *end = arr.p + arr.len - 1;
    size_t was = b->len;
    int rv = 0;
    assert(arr.len >= 2 && arr.p[0] == '[' && *end == ']');
    while (p < end && space(*p))
        p++;
    while (end > p && space(end[-1]))
        end--;
    if (p == end)
        return 0;
    if (was > 0)
        rv = put(a, b, ",", 1);
    if (rv == 0)
        rv = put(a, b, p, (size_t)(end - p));
    if (rv != 0)
        b->len = was;
    return rv;
}

static void tool_init(void *el, size_t max)
{
    struct tool *t = el;
    t->seen = 0;
    keel_buf_init(&t->id, max);
    keel_buf_init(&t->type, max);
    keel_buf_init(&t->name, max);
    keel_buf_init(&t->args, max);
}

static void tool_release(struct tool *t)
{
    keel_buf_release(&t->id);
    keel_buf_release(&t->type);
    keel_buf_release(&t->name);
    keel_buf_release(&t->args);
}

static void choice_init(void *el, size_t max)
{
    struct keel_asm_choice *c = el;
    memset(c, 0, sizeof(*c));
    keel_buf_init(&c->role, max);
    keel_buf_init(&c->finish, max);
    for (size_t k = 0; k < TEXT_N; k++)
        keel_buf_init(&c->text[k], max);
    for (size_t k = 0; k < LP_N; k++)
        keel_buf_init(&c->lp[k], max);
}

static void choice_release(struct keel_asm_choice *c)
{
    keel_buf_release(&c->role);
    keel_buf_release(&c->finish);
    for (size_t k = 0; k < TEXT_N; k++)
        keel_buf_release(&c->text[k]);
    for (size_t k = 0; k < LP_N; k++)
        keel_buf_release(&c->lp[k]);
    for (size_t k = 0; k < c->ntools; k++)
        tool_release(&c->tools[k]);
    free(c->tools);
}

/* Makes element i of arr (n elements of size sz) exist, new ones set up by init, their size
 * charged to the cap. Returns the array, maybe moved, or NULL with *rv set (-ENOBUFS for an
 * index past MAX_INDEX or the cap, -ENOMEM) and arr untouched. */
static void *slot(struct keel_asm *a, void *arr, size_t *n, size_t sz, uint32_t i, void (*init)(void *, size_t),
                  int *rv)
{
    if (i < *n)
        return arr;
    *rv = -ENOBUFS;
    if (i >= MAX_INDEX || (i + 1 - *n) * sz > a->max - a->held)
        return NULL;
    char *grown = realloc(arr, (i + 1) * sz);
    *rv = -ENOMEM;
    if (grown == NULL)
        return NULL;
    for (size_t k = *n; k <= i; k++)
        init(grown + k * sz, a->max);
    a->held += (i + 1 - *n) * sz;
    *n = i + 1;
    return grown;
}

/* ---- events ---- */

void keel_asm_init(struct keel_asm *a, size_t max, const char *kind)
{
    memset(a, 0, sizeof(*a));
    keel_buf_init(&a->meta, max);
    keel_buf_init(&a->usage, max);
    a->max = max;
    a->kind = kind;
}

/* usage as sent, and a tool call's type as sent: from OpenAI's own events only */
static int native(const struct keel_asm *a)
{
    return strcmp(a->kind, "openai") == 0;
}

void keel_asm_release(struct keel_asm *a)
{
    for (size_t i = 0; i < a->nchoices; i++)
        choice_release(&a->choices[i]);
    free(a->choices);
    keel_buf_release(&a->meta);
    keel_buf_release(&a->usage);
    keel_asm_init(a, a->max, a->kind);
}

/* each field's first value that is not null */
static int meta(struct keel_asm *a, const struct keel_ev *ev)
{
    const struct keel_json *v[META_N] = {
        [META_ID] = &ev->u.meta.id,
        [META_MODEL] = &ev->u.meta.model,
        [META_CREATED] = &ev->u.meta.created,
        [META_FINGERPRINT] = &ev->u.meta.system_fingerprint,
        [META_TIER] = &ev->u.meta.service_tier,
    };
    for (size_t i = 0; i < META_N; i++) {
        enum keel_json_type t = keel_json_type(*v[i]);
        if (a->meta_at[i][1] != 0 || t == KEEL_JSON_NONE || t == KEEL_JSON_NULL)
            continue;
        size_t at = a->meta.len;
        int rv = put(a, &a->meta, v[i]->p, v[i]->len);
        if (rv != 0)
            return rv;
        a->meta_at[i][0] = at;
        a->meta_at[i][1] = v[i]->len;
    }
    return 0;
}

static int tool_call(struct keel_asm *a, struct keel_asm_choice *c, const struct keel_ev *ev)
{
    int rv = 0;
    struct tool *tools = slot(a, c->tools, &c->ntools, sizeof(*c->tools), ev->u.tool.index, tool_init, &rv);
    if (tools == NULL)
        return rv;
    c->tools = tools;
    struct tool *t = &tools[ev->u.tool.index];
    t->seen = 1;
    rv = keep(a, &t->id, ev->u.tool.id);
    if (rv == 0 && native(a))
        rv = keep(a, &t->type, ev->u.tool.type);
    if (rv == 0)
        rv = keep(a, &t->name, ev->u.tool.name);
    if (rv == 0 && ev->u.tool.args.p != NULL)
        rv = join_args(a, &t->args, ev);
    return rv;
}

static int logprobs(struct keel_asm *a, struct keel_asm_choice *c, const struct keel_ev *ev)
{
    struct keel_json v[LP_N] = {[LP_CONTENT] = ev->u.logprobs.content, [LP_REFUSAL] = ev->u.logprobs.refusal};
    c->has_logprobs = 1;
    for (size_t k = 0; k < LP_N; k++) {
        if (keel_json_type(v[k]) != KEEL_JSON_ARRAY)
            continue;
        int rv = join_array(a, &c->lp[k], v[k]);
        if (rv != 0)
            return rv;
        c->has_lp[k] = 1;
    }
    return 0;
}

static int text(struct keel_asm *a, struct keel_asm_choice *c, size_t k, const struct keel_ev *ev)
{
    int rv = join(a, &c->text[k], ev->u.text.s);
    if (rv == 0 && !c->has_text[k]) {
        c->has_text[k] = 1;
        if (k == TEXT_REASONING)
            c->reasoning_alt = ev->u.text.alt;
    }
    return rv;
}

int keel_asm_event(void *ctx, const struct keel_ev *ev)
{
    struct keel_asm *a = ctx;
    int rv = 0;
    switch (ev->kind) {
    case KEEL_EV_META:
        return meta(a, ev);
    case KEEL_EV_USAGE: /* the last one: a running count is worth less than the final */
        a->counts = ev->u.usage.n;
        keel_buf_reset(&a->usage);
        if (!native(a) || ev->u.usage.raw.p == NULL)
            return 0;
        return put(a, &a->usage, ev->u.usage.raw.p, ev->u.usage.raw.len);
    case KEEL_EV_ERROR:
        return 0; /* the caller's to act on: an errored answer is not sent as assembled */
    default:
        break;
    }
    struct keel_asm_choice *choices =
        slot(a, a->choices, &a->nchoices, sizeof(*a->choices), ev->choice, choice_init, &rv);
    if (choices == NULL)
        return rv;
    a->choices = choices;
    struct keel_asm_choice *c = &choices[ev->choice];
    switch (ev->kind) {
    case KEEL_EV_ROLE:
        return keep(a, &c->role, ev->u.role);
    case KEEL_EV_TEXT:
        return text(a, c, TEXT_CONTENT, ev);
    case KEEL_EV_REASONING:
        return text(a, c, TEXT_REASONING, ev);
    case KEEL_EV_REFUSAL:
        return text(a, c, TEXT_REFUSAL, ev);
    case KEEL_EV_TOOL_CALL:
        return tool_call(a, c, ev);
    case KEEL_EV_LOGPROBS:
        return logprobs(a, c, ev);
    case KEEL_EV_FINISH:
        return keep(a, &c->finish, ev->u.finish);
    default:
        assert(!"an event kind handled above");
        return 0;
    }
}

int keel_asm_has_content(const struct keel_asm *a)
{
    for (size_t i = 0; i < a->nchoices; i++) {
        const struct keel_asm_choice *c = &a->choices[i];
        if (c->ntools > 0)
            return 1;
        for (size_t k = 0; k < TEXT_N; k++)
            if (c->text[k].len > 0)
                return 1;
    }
    return 0;
}

int keel_asm_finished(const struct keel_asm *a)
{
    for (size_t i = 0; i < a->nchoices; i++)
        if (a->choices[i].finish.len == 0)
            return 0;
    return a->nchoices > 0;
}

/* ---- reading, for the writers of other files ---- */

_Static_assert(TEXT_CONTENT == (int)KEEL_ASM_CONTENT && TEXT_REASONING == (int)KEEL_ASM_REASONING &&
                   TEXT_REFUSAL == (int)KEEL_ASM_REFUSAL,
               "keel_asm_text's kinds are the text slots");

static struct keel_json held_meta(const struct keel_asm *a, size_t i)
{
    if (a->meta_at[i][1] == 0)
        return (struct keel_json){NULL, 0};
    return (struct keel_json){a->meta.base + a->meta_at[i][0], a->meta_at[i][1]};
}

struct keel_json keel_asm_id(const struct keel_asm *a)
{
    return held_meta(a, META_ID);
}

struct keel_json keel_asm_model(const struct keel_asm *a)
{
    return held_meta(a, META_MODEL);
}

/* a literal kept whole (keep), absent when none came */
static struct keel_json held_literal(const struct keel_buf *b)
{
    return b->len > 0 ? (struct keel_json){b->base, b->len} : (struct keel_json){NULL, 0};
}

const char *keel_asm_text(const struct keel_asm *a, size_t i, enum keel_asm_text k, size_t *len)
{
    assert((int)k >= 0 && (int)k < TEXT_N);
    *len = 0;
    if (i >= a->nchoices || !a->choices[i].has_text[k])
        return NULL;
    const struct keel_buf *b = &a->choices[i].text[k];
    *len = b->len;
    return b->len > 0 ? b->base : "";
}

struct keel_json keel_asm_finish(const struct keel_asm *a, size_t i)
{
    return i < a->nchoices ? held_literal(&a->choices[i].finish) : (struct keel_json){NULL, 0};
}

size_t keel_asm_ntools(const struct keel_asm *a, size_t i)
{
    return i < a->nchoices ? a->choices[i].ntools : 0;
}

int keel_asm_tool_at(const struct keel_asm *a, size_t i, size_t k, struct keel_asm_tool *t)
{
    assert(k < keel_asm_ntools(a, i));
    const struct tool *src = &a->choices[i].tools[k];
    if (!src->seen)
        return -1;
    t->id = held_literal(&src->id);
    t->name = held_literal(&src->name);
    t->args = src->args.len > 0 ? src->args.base : "";
    t->args_len = src->args.len;
    return 0;
}

/* ---- writing ---- */

static void wbuf(struct writer *o, const struct keel_buf *b)
{
    w(o, b->base, b->len);
}

/* usage in OpenAI's three counts */
static void wcounts(struct writer *o, const struct keel_usage *n)
{
    ws(o, "{\"prompt_tokens\":");
    wnum(o, n->prompt_tokens);
    ws(o, ",\"completion_tokens\":");
    wnum(o, n->completion_tokens);
    ws(o, ",\"total_tokens\":");
    wnum(o, n->total_tokens);
    ws(o, "}");
}

/* key (its quotes, colon and any comma before it) and the META value, when one came */
static int wmeta(struct writer *o, const struct keel_asm *a, size_t i, const char *key)
{
    if (a->meta_at[i][1] == 0)
        return 0;
    ws(o, key);
    w(o, a->meta.base + a->meta_at[i][0], a->meta_at[i][1]);
    return 1;
}

/* key, then the literal held in b, else `otherwise` */
static void wfield(struct writer *o, const char *key, const struct keel_buf *b, const char *otherwise)
{
    ws(o, key);
    if (b->len > 0)
        wbuf(o, b);
    else
        ws(o, otherwise);
}

/* key, then what was joined in b between open and close (a literal's quotes, an array's
 * brackets) when has, else `null` */
static void wjoined(struct writer *o, const char *key, const struct keel_buf *b, int has, char open, char close)
{
    ws(o, key);
    if (!has) {
        ws(o, "null");
        return;
    }
    w(o, &open, 1);
    wbuf(o, b);
    w(o, &close, 1);
}

static void wtext(struct writer *o, const char *key, const struct keel_buf *b, int has)
{
    wjoined(o, key, b, has, '"', '"');
}

static void wtools(struct writer *o, const struct keel_asm_choice *c)
{
    const char *sep = "";
    if (c->ntools == 0)
        return;
    ws(o, ",\"tool_calls\":[");
    for (size_t k = 0; k < c->ntools; k++) {
        const struct tool *t = &c->tools[k];
        if (!t->seen)
            continue;
        ws(o, sep);
        sep = ",";
        ws(o, "{");
        if (t->id.len > 0) { /* left out when none came; name is "" then, as the key is required */
            ws(o, "\"id\":");
            wbuf(o, &t->id);
            ws(o, ",");
        }
        wfield(o, "\"type\":", &t->type, "\"function\"");
        wfield(o, ",\"function\":{\"name\":", &t->name, "\"\"");
        wtext(o, ",\"arguments\":", &t->args, 1);
        ws(o, "}}");
    }
    ws(o, "]");
}

static void wchoice(struct writer *o, size_t i, const struct keel_asm_choice *c)
{
    ws(o, "{\"index\":");
    wnum(o, (long long)i);
    wfield(o, ",\"message\":{\"role\":", &c->role, "\"assistant\"");
    wtext(o, ",\"content\":", &c->text[TEXT_CONTENT], c->has_text[TEXT_CONTENT]);
    if (c->has_text[TEXT_REASONING])
        wtext(o, c->reasoning_alt ? ",\"reasoning\":" : ",\"reasoning_content\":", &c->text[TEXT_REASONING], 1);
    wtext(o, ",\"refusal\":", &c->text[TEXT_REFUSAL], c->has_text[TEXT_REFUSAL]);
    wtools(o, c);
    ws(o, "},\"logprobs\":");
    if (c->has_logprobs) {
        wjoined(o, "{\"content\":", &c->lp[LP_CONTENT], c->has_lp[LP_CONTENT], '[', ']');
        wjoined(o, ",\"refusal\":", &c->lp[LP_REFUSAL], c->has_lp[LP_REFUSAL], '[', ']');
        ws(o, "}");
    } else {
        ws(o, "null");
    }
    wfield(o, ",\"finish_reason\":", &c->finish, "null");
    ws(o, "}");
}

int keel_asm_openai_chat(const struct keel_asm *a, struct keel_buf *out)
{
    struct writer o = {out, 0};
    size_t was = out->len;
    ws(&o, "{");
    if (wmeta(&o, a, META_ID, "\"id\":"))
        ws(&o, ",");
    ws(&o, "\"object\":\"chat.completion\"");
    wmeta(&o, a, META_CREATED, ",\"created\":");
    wmeta(&o, a, META_MODEL, ",\"model\":");
    ws(&o, ",\"choices\":[");
    for (size_t i = 0; i < a->nchoices; i++) {
        if (i > 0)
            ws(&o, ",");
        wchoice(&o, i, &a->choices[i]);
    }
    ws(&o, "]");
    if (a->usage.len > 0) {
        ws(&o, ",\"usage\":");
        wbuf(&o, &a->usage);
    } else if (!native(a) && a->counts.present) {
        ws(&o, ",\"usage\":");
        wcounts(&o, &a->counts);
    }
    wmeta(&o, a, META_TIER, ",\"service_tier\":");
    wmeta(&o, a, META_FINGERPRINT, ",\"system_fingerprint\":");
    ws(&o, "}");
    if (o.rv != 0)
        out->len = was; /* nothing half-written */
    return o.rv;
}

/* ---- a stream, re-encoded event by event ---- */

void keel_openai_stream_init(struct keel_stream_enc *s, int include_usage)
{
    memset(s, 0, sizeof(*s));
    s->include_usage = include_usage;
}

/* each field's first value of its type (null is none): all kept, or -ENOBUFS and none */
static int stream_meta(struct keel_stream_enc *s, const struct keel_ev *ev)
{
    struct {
        char *to;
        size_t cap, *len;
        struct keel_json v;
        enum keel_json_type t;
    } f[] = {
        {s->id, sizeof(s->id), &s->id_len, ev->u.meta.id, KEEL_JSON_STRING},
        {s->model, sizeof(s->model), &s->model_len, ev->u.meta.model, KEEL_JSON_STRING},
        {s->created, sizeof(s->created), &s->created_len, ev->u.meta.created, KEEL_JSON_NUMBER},
    };
    size_t n = sizeof(f) / sizeof(f[0]);
    for (size_t i = 0; i < n; i++)
        if (*f[i].len == 0 && keel_json_type(f[i].v) == f[i].t && f[i].v.len > f[i].cap)
            return -ENOBUFS;
    for (size_t i = 0; i < n; i++) {
        if (*f[i].len == 0 && keel_json_type(f[i].v) == f[i].t) {
            memcpy(f[i].to, f[i].v.p, f[i].v.len);
            *f[i].len = f[i].v.len;
        }
    }
    return 0;
}

/* p[0..n), else `otherwise` */
static void wheld(struct writer *o, const char *p, size_t n, const char *otherwise)
{
    if (n > 0)
        w(o, p, n);
    else
        ws(o, otherwise);
}

/* a chunk's frame up to its choices: `data: {"id":..,"object":..,"created":..,"model":..,"choices":[` */
static void wchunk_head(struct writer *o, const struct keel_stream_enc *s)
{
    ws(o, "data: {\"id\":");
    wheld(o, s->id, s->id_len, "\"\"");
    ws(o, ",\"object\":\"chat.completion.chunk\",\"created\":");
    wheld(o, s->created, s->created_len, "0");
    ws(o, ",\"model\":");
    wheld(o, s->model, s->model_len, "\"\"");
    ws(o, ",\"choices\":[");
}

/* a fragment's arguments say something: raw JSON text always does */
static int says_args(const struct keel_ev *ev)
{
    return ev->u.tool.args.p != NULL && (ev->u.tool.args_raw || keel_json_nonempty(ev->u.tool.args));
}

/* a tool call's fragment in a delta: the call named on its first, its arguments */
static void wtool_delta(struct writer *o, const struct keel_ev *ev, int first)
{
    const struct keel_json *args = &ev->u.tool.args;
    ws(o, "\"tool_calls\":[{\"index\":");
    wnum(o, ev->u.tool.index);
    if (first) {
        if (ev->u.tool.id.p != NULL) {
            ws(o, ",\"id\":");
            w(o, ev->u.tool.id.p, ev->u.tool.id.len);
        }
        ws(o, ",\"type\":\"function\",\"function\":{\"name\":");
        wheld(o, ev->u.tool.name.p, ev->u.tool.name.p != NULL ? ev->u.tool.name.len : 0, "\"\"");
        ws(o, ",");
    } else {
        ws(o, ",\"function\":{");
    }
    ws(o, "\"arguments\":");
    if (args->p == NULL)
        ws(o, "\"\"");
    else if (ev->u.tool.args_raw)
        wescaped(o, *args);
    else
        w(o, args->p, args->len);
    ws(o, "}}]");
}

/* the delta's members: the role when it goes out with this one, then what the event says */
static void wdelta(struct writer *o, const struct keel_ev *ev, int role, int first_tool)
{
    static const char *const keys[] = {[KEEL_EV_TEXT] = "\"content\":", [KEEL_EV_REASONING] = "\"reasoning_content\":",
                                       [KEEL_EV_REFUSAL] = "\"refusal\":"};
    const char *sep = role ? "," : "";
    if (role) {
        ws(o, "\"role\":");
        if (ev->kind == KEEL_EV_ROLE)
            w(o, ev->u.role.p, ev->u.role.len);
        else
            ws(o, "\"assistant\"");
    }
    switch (ev->kind) {
    case KEEL_EV_TEXT:
    case KEEL_EV_REASONING:
    case KEEL_EV_REFUSAL:
        if (!keel_json_nonempty(ev->u.text.s))
            break;
        ws(o, sep);
        ws(o, ev->kind == KEEL_EV_REASONING && ev->u.text.alt ? "\"reasoning\":" : keys[ev->kind]);
        w(o, ev->u.text.s.p, ev->u.text.s.len);
        break;
    case KEEL_EV_TOOL_CALL:
        ws(o, sep);
        wtool_delta(o, ev, first_tool);
        break;
    default:
        break;
    }
}

/* an array as sent, else null */
static void warray(struct writer *o, struct keel_json v)
{
    if (keel_json_type(v) == KEEL_JSON_ARRAY)
        w(o, v.p, v.len);
    else
        ws(o, "null");
}

/* one choice's chunk */
static void wchoice_chunk(struct writer *o, const struct keel_stream_enc *s, const struct keel_ev *ev, int role,
                          int first_tool)
{
    wchunk_head(o, s);
    ws(o, "{\"index\":");
    wnum(o, ev->choice);
    ws(o, ",\"delta\":{");
    wdelta(o, ev, role, first_tool);
    ws(o, "},\"logprobs\":");
    if (ev->kind == KEEL_EV_LOGPROBS) {
        ws(o, "{\"content\":");
        warray(o, ev->u.logprobs.content);
        ws(o, ",\"refusal\":");
        warray(o, ev->u.logprobs.refusal);
        ws(o, "}");
    } else {
        ws(o, "null");
    }
    ws(o, ",\"finish_reason\":");
    if (ev->kind == KEEL_EV_FINISH)
        w(o, ev->u.finish.p, ev->u.finish.len);
    else
        ws(o, "null");
    ws(o, "}]}\n\n");
}

int keel_openai_stream_event(struct keel_stream_enc *s, const struct keel_ev *ev, struct keel_buf *out)
{
    struct writer o = {out, 0};
    size_t was = out->len;
    switch (ev->kind) {
    case KEEL_EV_META:
        return stream_meta(s, ev);
    case KEEL_EV_USAGE: /* the last one: a running count is worth less than the final */
        s->usage = ev->u.usage.n;
        return 0;
    case KEEL_EV_ERROR:
        return 0; /* the caller's to act on: it ends the stream its own way */
    default:
        break;
    }
    uint32_t c = ev->choice, t = ev->kind == KEEL_EV_TOOL_CALL ? ev->u.tool.index : 0;
    if (c >= KEEL_STREAM_MAX_INDEX || t >= KEEL_STREAM_MAX_INDEX)
        return -ENOBUFS;
    /* the role goes out with the choice's first delta that says something, LOGPROBS and FINISH
     * aside (their delta stays empty) */
    int carries_role = ev->kind != KEEL_EV_LOGPROBS && ev->kind != KEEL_EV_FINISH;
    int role = carries_role && !keel_stream_bit(s->role_sent, c);
    int first_tool = ev->kind == KEEL_EV_TOOL_CALL && !keel_stream_bit(s->tool_sent[c], t);
    int says;
    switch (ev->kind) {
    case KEEL_EV_ROLE:
        says = role;
        break;
    case KEEL_EV_TEXT:
    case KEEL_EV_REASONING:
    case KEEL_EV_REFUSAL:
        says = role || keel_json_nonempty(ev->u.text.s);
        break;
    case KEEL_EV_TOOL_CALL:
        says = first_tool || says_args(ev);
        break;
    default:
        says = 1;
        break;
    }
    if (!says)
        return 0;
    wchoice_chunk(&o, s, ev, role, first_tool);
    if (o.rv != 0) {
        out->len = was; /* nothing half-written, and the state as it was */
        return o.rv;
    }
    if (role)
        keel_stream_set_bit(s->role_sent, c);
    if (first_tool)
        keel_stream_set_bit(s->tool_sent[c], t);
    return 0;
}

int keel_openai_stream_end(struct keel_stream_enc *s, struct keel_buf *out)
{
    struct writer o = {out, 0};
    size_t was = out->len;
    if (s->include_usage && s->usage.present) {
        wchunk_head(&o, s);
        ws(&o, "],\"usage\":");
        wcounts(&o, &s->usage);
        ws(&o, "}\n\n");
    }
    ws(&o, "data: [DONE]\n\n");
    if (o.rv != 0)
        out->len = was;
    return o.rv;
}
