/* assemble.h - one answer gathered from its events (core/event.h), whatever protocol they were
 * decoded from, and written out whole in a client protocol's JSON: what a client that did not
 * ask for a stream gets when the upstream streamed (DESIGN.md "Non-stream clients"). Choices by
 * index, each with its text, reasoning, refusal, tool calls (fragments joined by index),
 * logprobs and finish reason; the answer's id, model, created, system fingerprint and usage.
 * Bounded: an event that would need more than `max` bytes allocated in all is refused with
 * -ENOBUFS. Pure. */
#ifndef KEEL_ASSEMBLE_H
#define KEEL_ASSEMBLE_H

#include <stddef.h>

#include "core/buf.h"
#include "core/event.h"

struct keel_asm_choice;

struct keel_asm {
    struct keel_buf meta;            /* the META spans copied: id, model, created, fingerprint, tier */
    size_t meta_at[5][2];            /* each one's offset and length in meta (length 0: absent) */
    struct keel_buf usage;           /* the last usage object as sent ("" when none) */
    struct keel_asm_choice *choices; /* [nchoices], by index */
    size_t nchoices;
    size_t held; /* bytes allocated: buffers (their growth slack too) and choice/tool-call slots; the
                  * figure for keel's max_memory, never past max */
    size_t max;
};

void keel_asm_init(struct keel_asm *a, size_t max);
void keel_asm_release(struct keel_asm *a);

/* a keel_ev_cb (ctx = the assembler): 0, -ENOBUFS past max or for a choice or tool call index of
 * 128 or more, -ENOMEM. ERROR events are ignored: acting on them is the caller's. */
int keel_asm_event(void *a, const struct keel_ev *ev);

/* true once any choice holds text, reasoning, a refusal or a tool call */
int keel_asm_has_content(const struct keel_asm *a);

/* true when there is a choice and every choice has its finish reason: the answer is whole */
int keel_asm_finished(const struct keel_asm *a);

/* Appends the OpenAI chat.completion for everything assembled to out: 0, or -ENOBUFS, -ENOMEM
 * (out then as it was). No whitespace; keys in the order OpenAI writes them: id, object, created,
 * model, choices (index, message (role, content, reasoning_content or reasoning, refusal,
 * tool_calls), logprobs, finish_reason), usage, service_tier, system_fingerprint. Fields the
 * stream never carried are left out (id, created, model, usage, service_tier,
 * system_fingerprint: each the first non-null value sent; usage the last object), except:
 * message.content and message.refusal, null; logprobs, null (else {"content","refusal"}, each
 * the arrays sent joined, or null when only null came); finish_reason, null; role,
 * "assistant". Every choice index from 0 to the highest seen is written, one never seen as an
 * empty message. Reasoning goes under the key its first fragment came in. A tool call is written
 * per index seen, in index order: its id left out when none came, type "function" and name ""
 * when none came, arguments joined. Role, finish reason and a tool call's id, type and name are
 * the first non-empty value sent (some servers repeat them in every fragment). */
int keel_asm_openai_chat(const struct keel_asm *a, struct keel_buf *out);

/* An encoder: what clients of one protocol get (STYLE B4; the decoders' counterpart). A stream
 * from an upstream of its native kind reaches a stream client byte for byte (only judged);
 * any answer for a client that asked for no stream is assembled and written by `answer`.
 * Streams of another kind for a stream client come with the next protocol (issue 15). */
struct keel_encoder_ops {
    const char *protocol;    /* the client protocol: "openai-chat" */
    const char *native_kind; /* the upstream kind it relays untouched: "openai" */
    int (*answer)(const struct keel_asm *a, struct keel_buf *out);
};

extern const struct keel_encoder_ops keel_openai_chat_encoder;

#endif
