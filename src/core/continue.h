/* continue.h - finishing a stream cut after the commit point on another target (DESIGN.md
 * "Continuation after the commit point"). Three pure pieces:
 * - the told: what a stream client was told so far, read from the events that went out (choice
 *   0's text, decoded; whether a tool call, a refusal, another choice or a finish reason went
 *   out, which no prefill can carry on);
 * - the prefill request: the body a target would get, with that text as the final assistant
 *   message in the target's protocol (OpenAI chat or Anthropic Messages);
 * - the splice: the continuation's events filtered so the client reads the answer once: its
 *   reasoning left out (the client has the first target's), nothing before its first content
 *   (a finish or usage with no text would end the answer early), and the whitespace the prefill
 *   lost (Anthropic refuses a prefill that ends in whitespace) not said twice. */
#ifndef KEEL_CONTINUE_H
#define KEEL_CONTINUE_H

#include <stddef.h>

#include "core/buf.h"
#include "core/event.h"

struct keel_told {
    struct keel_buf text; /* choice 0's content so far, decoded (UTF-8) */
    int tool;             /* a tool call went out: its arguments may be cut, no prefill finishes them */
    int refusal;          /* a refusal went out */
    int other;            /* a choice other than 0 went out (n > 1) */
    int finished;         /* choice 0's finish reason went out: the answer was whole */
    int broken;           /* an event could not be recorded (text past max, memory, a NUL) */
};

void keel_told_init(struct keel_told *t, size_t max);
void keel_told_release(struct keel_told *t);
/* records an event that went out to the client: 0, or -1 when it could not be recorded (broken) */
int keel_told_event(struct keel_told *t, const struct keel_ev *ev);
/* why no continuation can finish what was told (a static phrase for the client's error and the
 * log), NULL when one can */
const char *keel_told_blocker(const struct keel_told *t);

/* The continuation request: body (a request in kind's protocol, "openai" chat or "anthropic"
 * Messages, as keel would send it to the target) with text [0, tlen) as the assistant's prefill:
 * appended to the final message when that is already the assistant's (the client's own
 * prefill, continued), else a final {"role":"assistant","content":text}; no message when the
 * text is empty. For anthropic the trailing whitespace is cut from the prefill (its API refuses
 * it), *trimmed its length (else 0), and `thinking` is left out (its API refuses a prefill with
 * thinking on; the continuation's reasoning is not relayed anyway). extra: a JSON object's text
 * (continuation_body) whose members are set at the top, NULL for none. Returns the malloc'd
 * body, *len its length; NULL when body is no JSON object with a messages array, or memory ran
 * out. */
char *keel_prefill_body(const char *body, size_t len, const char *kind, const char *text, size_t tlen,
                        const char *extra, size_t *out_len, size_t *trimmed);

#define KEEL_SPLICE_WS 64 /* trimmed whitespace the splice remembers, bytes */

struct keel_splice {
    char ws[KEEL_SPLICE_WS]; /* the whitespace cut from the prefill's end, in order */
    size_t nws;
    size_t at;   /* how much of it the continuation said again (and was dropped) */
    int started; /* the continuation's first content went on */
};

/* ws: the bytes cut from the prefill's end (keel_prefill_body's *trimmed last bytes of the text) */
void keel_splice_init(struct keel_splice *s, const char *ws, size_t n);

enum keel_splice_verdict {
    KEEL_SPLICE_DROP, /* nothing of it goes to the client */
    KEEL_SPLICE_PASS, /* ev goes on as it is */
    KEEL_SPLICE_EDIT, /* *out goes on: a TEXT whose leading whitespace was cut, its literal in lit */
};

/* What of the continuation's event ev goes to the client. Dropped: REASONING, ROLE and ERROR
 * always, events of choices other than 0, and before the first content (TEXT that says
 * something, REFUSAL, TOOL_CALL) FINISH, USAGE and LOGPROBS. META goes on (a protocol that names
 * the model per chunk names the continuation's). lit: scratch for an edited literal (reset
 * first). -ENOMEM/-ENOBUFS from lit come back as a negative value. */
int keel_splice_event(struct keel_splice *s, const struct keel_ev *ev, struct keel_ev *out, struct keel_buf *lit);

#endif
