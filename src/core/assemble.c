/* assemble.c - one answer gathered from its events and written as an OpenAI chat.completion; see
 * assemble.h. Text is kept as its JSON string literals' inner bytes, escapes as sent, and joined
 * by concatenation: a JSON escape never spans two literals, so the join is one valid literal.
 * Which events a stream carries is the decoders' (core/event.h); errors are the caller's. */
#include "core/assemble.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* choices, and tool calls per choice: an index at or past this is refused with -ENOBUFS */
#define MAX_INDEX 128

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

void keel_asm_init(struct keel_asm *a, size_t max)
{
    memset(a, 0, sizeof(*a));
    keel_buf_init(&a->meta, max);
    keel_buf_init(&a->usage, max);
    a->max = max;
}

void keel_asm_release(struct keel_asm *a)
{
    for (size_t i = 0; i < a->nchoices; i++)
        choice_release(&a->choices[i]);
    free(a->choices);
    keel_buf_release(&a->meta);
    keel_buf_release(&a->usage);
    keel_asm_init(a, a->max);
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
    if (rv == 0)
        rv = keep(a, &t->type, ev->u.tool.type);
    if (rv == 0)
        rv = keep(a, &t->name, ev->u.tool.name);
    if (rv == 0 && ev->u.tool.args.p != NULL)
        rv = join(a, &t->args, ev->u.tool.args);
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
        keel_buf_reset(&a->usage);
        return ev->u.usage.raw.p == NULL ? 0 : put(a, &a->usage, ev->u.usage.raw.p, ev->u.usage.raw.len);
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

/* ---- writing ---- */

/* the answer being written: its first failure, after which nothing more is appended */
struct writer {
    struct keel_buf *out;
    int rv;
};

static void w(struct writer *o, const char *p, size_t n)
{
    if (o->rv == 0)
        o->rv = keel_buf_append(o->out, p, n);
}

static void ws(struct writer *o, const char *s)
{
    w(o, s, strlen(s));
}

static void wbuf(struct writer *o, const struct keel_buf *b)
{
    w(o, b->base, b->len);
}

static void wnum(struct writer *o, size_t v)
{
    char d[24];
    size_t n = sizeof(d);
    do {
        d[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    w(o, d + n, sizeof(d) - n);
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
    wnum(o, i);
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
    }
    wmeta(&o, a, META_TIER, ",\"service_tier\":");
    wmeta(&o, a, META_FINGERPRINT, ",\"system_fingerprint\":");
    ws(&o, "}");
    if (o.rv != 0)
        out->len = was; /* nothing half-written */
    return o.rv;
}
