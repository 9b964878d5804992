/* continue.c - the told, the prefill request and the splice; see continue.h. */
#include "core/continue.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

void keel_told_init(struct keel_told *t, size_t max)
{
    *t = (struct keel_told){0};
    keel_buf_init(&t->text, max);
}

void keel_told_release(struct keel_told *t)
{
    keel_buf_release(&t->text);
    size_t max = t->text.max;
    keel_told_init(t, max);
}

/* appends string literal v decoded */
static int told_text(struct keel_told *t, struct keel_json v)
{
    if (!keel_json_nonempty(v))
        return 0;
    char *tmp = malloc(v.len);
    long n = tmp ? keel_json_string(v, tmp, v.len) : -1;
    int rv = n < 0 ? -1 : keel_buf_append(&t->text, tmp, (size_t)n);
    free(tmp);
    return rv;
}

int keel_told_event(struct keel_told *t, const struct keel_ev *ev)
{
    if (ev->choice != 0) {
        t->other = 1;
        return 0;
    }
    switch (ev->kind) {
    case KEEL_EV_TEXT:
        if (told_text(t, ev->u.text.s) != 0) {
            t->broken = 1;
            return -1;
        }
        return 0;
    case KEEL_EV_REFUSAL:
        t->refusal |= keel_json_nonempty(ev->u.text.s);
        return 0;
    case KEEL_EV_TOOL_CALL:
        t->tool = 1;
        return 0;
    case KEEL_EV_FINISH:
        t->finished = 1;
        return 0;
    default:
        return 0; /* META, ROLE, REASONING (it stays as it went), LOGPROBS, USAGE, ERROR */
    }
}

const char *keel_told_blocker(const struct keel_told *t)
{
    if (t->tool)
        return "a tool call had begun, its arguments may be cut";
    if (t->refusal)
        return "a refusal had begun";
    if (t->other)
        return "the answer has several choices";
    if (t->finished)
        return "the answer had its finish reason";
    if (t->broken)
        return "keel could not keep the text relayed";
    return NULL;
}

/* ------------------------------------------------------------------ the prefill request */

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* the prefill appended to message m, already the assistant's: its string content extended, or a
 * text part added to its parts */
static int extend(json_t *m, const char *text, size_t n)
{
    json_t *content = json_object_get(m, "content");
    if (json_is_string(content)) {
        size_t had = json_string_length(content);
        char *joined = malloc(had + n + 1);
        if (joined == NULL)
            return -1;
        memcpy(joined, json_string_value(content), had);
        memcpy(joined + had, text, n);
        int rv = json_object_set_new(m, "content", json_stringn(joined, had + n));
        free(joined);
        return rv;
    }
    json_t *part = json_pack("{s:s, s:s%}", "type", "text", "text", text, n);
    if (json_is_array(content))
        return json_array_append_new(content, part);
    return json_object_set_new(m, "content", json_pack("[o]", part)); /* null or none: the prefill alone */
}

char *keel_prefill_body(const char *body, size_t len, const char *kind, const char *text, size_t tlen,
                        const char *extra, size_t *out_len, size_t *trimmed)
{
    int anthropic = strcmp(kind, "anthropic") == 0;
    *trimmed = 0;
    if (anthropic)
        while (tlen > 0 && is_ws(text[tlen - 1])) {
            tlen--;
            (*trimmed)++;
        }
    json_t *o = json_loadb(body, len, JSON_ALLOW_NUL, NULL);
    json_t *messages = json_object_get(o, "messages");
    json_t *more = extra ? json_loads(extra, 0, NULL) : NULL;
    char *out = NULL;
    if (!json_is_array(messages) || (extra != NULL && !json_is_object(more)))
        goto done;
    size_t n = json_array_size(messages);
    json_t *last = n > 0 ? json_array_get(messages, n - 1) : NULL;
    int rv = 0;
    if (tlen > 0 && json_is_string(json_object_get(last, "role")) &&
        strcmp(json_string_value(json_object_get(last, "role")), "assistant") == 0)
        rv = extend(last, text, tlen);
    else if (tlen > 0)
        rv = json_array_append_new(messages, json_pack("{s:s, s:s%}", "role", "assistant", "content", text, tlen));
    if (anthropic)
        json_object_del(o, "thinking");
    if (rv == 0 && (more == NULL || json_object_update(o, more) == 0))
        out = json_dumps(o, JSON_COMPACT);
done:
    json_decref(o);
    json_decref(more);
    *out_len = out ? strlen(out) : 0;
    return out;
}

/* ------------------------------------------------------------------ the splice */

void keel_splice_init(struct keel_splice *s, const char *ws, size_t n)
{
    *s = (struct keel_splice){0};
    if (n > KEEL_SPLICE_WS) { /* the last of a longer run: what a model repeats, if anything */
        ws += n - KEEL_SPLICE_WS;
        n = KEEL_SPLICE_WS;
    }
    memcpy(s->ws, ws, n);
    s->nws = n;
}

/* the character at p[i] of a literal's inside (i < n), and *step its bytes: a whitespace escape
 * decoded, anything else as its first byte (only compared with whitespace) */
static char next_char(const char *p, size_t n, size_t i, size_t *step)
{
    *step = 1;
    if (p[i] != '\\' || i + 1 >= n)
        return p[i];
    *step = 2;
    switch (p[i + 1]) {
    case 'n':
        return '\n';
    case 't':
        return '\t';
    case 'r':
        return '\r';
    case 'u':
        if (i + 5 < n && strncmp(p + i + 2, "00", 2) == 0) {
            *step = 6;
            unsigned v = (unsigned)strtoul((char[]){p[i + 4], p[i + 5], '\0'}, NULL, 16);
            return (char)v;
        }
        return '\\';
    default:
        return '\\';
    }
}

/* a TEXT's literal with the whitespace already said cut from its front: 1 (nothing cut: as it is),
 * 0 (*out, the literal in lit), -1 (it said only that whitespace: nothing left) */
static int cut_front(struct keel_splice *s, const struct keel_ev *ev, struct keel_ev *out, struct keel_buf *lit,
                     int *err)
{
    const char *p = ev->u.text.s.p + 1;
    size_t n = ev->u.text.s.len - 2, i = 0;
    while (s->at < s->nws && i < n) {
        size_t step;
        if (next_char(p, n, i, &step) != s->ws[s->at]) {
            s->at = s->nws; /* it says something else: nothing more is skipped */
            break;
        }
        s->at++;
        i += step;
    }
    if (i == 0)
        return 1;
    if (i == n)
        return -1;
    keel_buf_reset(lit);
    if ((*err = keel_buf_append(lit, "\"", 1)) != 0 || (*err = keel_buf_append(lit, p + i, n - i)) != 0 ||
        (*err = keel_buf_append(lit, "\"", 1)) != 0)
        return 0;
    *out = *ev;
    out->u.text.s = (struct keel_json){lit->base, lit->len};
    return 0;
}

int keel_splice_event(struct keel_splice *s, const struct keel_ev *ev, struct keel_ev *out, struct keel_buf *lit)
{
    if (ev->choice != 0)
        return KEEL_SPLICE_DROP;
    switch (ev->kind) {
    case KEEL_EV_META:
        return KEEL_SPLICE_PASS;
    case KEEL_EV_ROLE:
    case KEEL_EV_REASONING:
    case KEEL_EV_ERROR:
        return KEEL_SPLICE_DROP;
    case KEEL_EV_TEXT: {
        if (!keel_json_nonempty(ev->u.text.s))
            return KEEL_SPLICE_DROP;
        if (s->started || s->at >= s->nws) {
            s->started = 1;
            return KEEL_SPLICE_PASS;
        }
        int err = 0, rv = cut_front(s, ev, out, lit, &err);
        if (err != 0)
            return err;
        if (rv < 0)
            return KEEL_SPLICE_DROP;
        s->started = 1;
        return rv == 1 ? KEEL_SPLICE_PASS : KEEL_SPLICE_EDIT;
    }
    case KEEL_EV_REFUSAL:
        if (!keel_json_nonempty(ev->u.text.s))
            return KEEL_SPLICE_DROP;
        s->started = 1;
        return KEEL_SPLICE_PASS;
    case KEEL_EV_TOOL_CALL:
        s->started = 1;
        return KEEL_SPLICE_PASS;
    case KEEL_EV_FINISH:
    case KEEL_EV_USAGE:
    case KEEL_EV_LOGPROBS:
        return s->started ? KEEL_SPLICE_PASS : KEEL_SPLICE_DROP;
    }
    return KEEL_SPLICE_DROP;
}
