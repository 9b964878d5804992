/* assemble.h - one answer gathered from its events (core/event.h), whatever protocol they were
 * decoded from, and written out whole in a client protocol's JSON: what a client that did not
 * ask for a stream gets when the upstream streamed (DESIGN.md "Non-stream clients"). Choices by
 * index, each with its text, reasoning, refusal, tool calls (fragments joined by index),
 * logprobs and finish reason; the answer's id, model, created, system fingerprint and usage.
 * Bounded: an event that would need more than `max` bytes allocated in all is refused with
 * -ENOBUFS. Also the stream a stream client gets from events of another protocol, re-encoded
 * event by event (struct keel_stream_enc). Pure. */
#ifndef KEEL_ASSEMBLE_H
#define KEEL_ASSEMBLE_H

#include <stddef.h>

#include "core/buf.h"
#include "core/event.h"

struct keel_asm_choice;

struct keel_asm {
    const char *kind;                /* the decoder's kind the events come from (static storage) */
    struct keel_buf meta;            /* the META spans copied: id, model, created, fingerprint, tier */
    size_t meta_at[5][2];            /* each one's offset and length in meta (length 0: absent) */
    struct keel_buf usage;           /* kind "openai": the last usage object as sent ("" when none) */
    struct keel_usage counts;        /* the last usage's counts (present 0 until one came) */
    struct keel_asm_choice *choices; /* [nchoices], by index */
    size_t nchoices;
    size_t held; /* bytes allocated: buffers (their growth slack too) and choice/tool-call slots; the
                  * figure for keel's max_memory, never past max */
    size_t max;
};

/* kind: the kind of the decoder whose events it gets (keel_decoder_ops.kind), static storage */
void keel_asm_init(struct keel_asm *a, size_t max, const char *kind);
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
 * system_fingerprint: each the first non-null value sent; usage the last object, as sent when
 * the kind is "openai", else {"prompt_tokens","completion_tokens","total_tokens"} from its
 * counts), except:
 * message.content and message.refusal, null; logprobs, null (else {"content","refusal"}, each
 * the arrays sent joined, or null when only null came); finish_reason, null; role,
 * "assistant". Every choice index from 0 to the highest seen is written, one never seen as an
 * empty message. Reasoning goes under the key its first fragment came in. A tool call is written
 * per index seen, in index order: its id left out when none came, type "function" and name ""
 * when none came, arguments joined (raw ones, core/event.h's args_raw, escaped into the
 * string). Role, finish reason and a tool call's id, type and name are the first non-empty value
 * sent (some servers repeat them in every fragment); a tool call's type only from kind "openai",
 * else "function". */
int keel_asm_openai_chat(const struct keel_asm *a, struct keel_buf *out);

/* ---- a stream for a stream client, from events of another kind ---- */

/* choices, and tool calls per choice, a stream encoder follows: an index at or past this is
 * refused with -ENOBUFS (the assembler's limit too) */
#define KEEL_STREAM_MAX_INDEX 128

/* A stream encoder's state: what the client was told so far. Fixed size, nothing allocated:
 * nothing to release. Set up by the encoder's stream_init. */
struct keel_stream_enc {
    char id[256], model[256]; /* META's first id and model, string literals as sent, quotes included */
    char created[24];         /* META's first created, an integer as sent */
    size_t id_len, model_len, created_len; /* 0: none came (written "", "" and 0: core reads no clock) */
    unsigned char role_sent[KEEL_STREAM_MAX_INDEX / 8]; /* bit c: choice c's first delta went out */
    unsigned char tool_sent[KEEL_STREAM_MAX_INDEX][KEEL_STREAM_MAX_INDEX / 8]; /* [c] bit t: tool call t
                                                                               * of choice c was named */
    struct keel_usage usage; /* the last USAGE's counts (present 0 until one came) */
    int include_usage;       /* the client asked for usage (stream_options.include_usage) */
};

/* The OpenAI chat.completion.chunk stream (keel_openai_chat_encoder's stream ops). Every content
 * event is one chunk {"id","object":"chat.completion.chunk","created","model","choices":[{"index",
 * "delta","logprobs":null,"finish_reason":null}]}: TEXT {"content"}, REASONING
 * {"reasoning_content"} (or {"reasoning"}, as it came), REFUSAL {"refusal"}, a choice's first
 * delta with "role":"assistant" before them (a ROLE event: its role alone). A tool call's first
 * fragment {"tool_calls":[{"index","id" (when one came),"type":"function","function":{"name"
 * ("" when none came),"arguments"}}]}, its later ones {"tool_calls":[{"index","function":
 * {"arguments"}}]} (raw arguments escaped into the string). A delta that would say nothing (an
 * empty text or arguments fragment once the role went out) writes no chunk. LOGPROBS: an empty
 * delta with "logprobs":{"content","refusal"}. FINISH: an empty delta with its finish_reason.
 * META (id, model, created: the first non-null of each) and USAGE (the last counts) are kept for
 * the chunks and the end; ERROR is the caller's. Each call appends whole SSE frames
 * ("data: ...\n\n") or nothing: 0, -ENOBUFS (out's cap, an id or model past its room, an index
 * past KEEL_STREAM_MAX_INDEX), -ENOMEM; the state moves only with what went out. */
void keel_openai_stream_init(struct keel_stream_enc *s, int include_usage);
int keel_openai_stream_event(struct keel_stream_enc *s, const struct keel_ev *ev, struct keel_buf *out);
/* after a clean end: the usage chunk (choices [], "usage" from the counts) when the client asked
 * for it and a USAGE came, then "data: [DONE]\n\n"; all or nothing, as above */
int keel_openai_stream_end(struct keel_stream_enc *s, struct keel_buf *out);

/* An encoder: what clients of one protocol get (STYLE B4; the decoders' counterpart). A stream
 * from an upstream of its native kind reaches a stream client byte for byte (only judged);
 * one of another kind is re-encoded event by event by the stream ops; any answer for a client
 * that asked for no stream is assembled and written by `answer`. */
struct keel_encoder_ops {
    const char *protocol;    /* the client protocol: "openai-chat" */
    const char *native_kind; /* the upstream kind it relays untouched: "openai" */
    int (*answer)(const struct keel_asm *a, struct keel_buf *out);
    /* a stream for a stream client from events of another kind (NULL: none) */
    void (*stream_init)(struct keel_stream_enc *s, int include_usage);
    /* appends whole SSE frames ("data: ...\n\n"): 0, -ENOBUFS, -ENOMEM */
    int (*stream_event)(struct keel_stream_enc *s, const struct keel_ev *ev, struct keel_buf *out);
    /* after a clean end: the usage chunk when include_usage, then "data: [DONE]\n\n" */
    int (*stream_end)(struct keel_stream_enc *s, struct keel_buf *out);
};

extern const struct keel_encoder_ops keel_openai_chat_encoder;

#endif
