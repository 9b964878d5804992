/* event.h - the protocol-neutral events one attempt's answer is read as (DESIGN.md "The next
 * capabilities"), and the decoders that produce them, one per upstream kind behind an ops table
 * (STYLE B4). A decoder judges each stream frame (content progress, error, end: what deadlines,
 * the commit point and classification read) and, when asked, breaks it into events for an
 * encoder of another shape (core/assemble.h: one JSON answer, or a stream client's stream from
 * an upstream of another protocol).
 * Events point into the frame they came from: spans valid only during the callback. Text stays
 * as the JSON string literal it was sent as (escapes included), so an encoder copies it into its
 * own JSON without decoding and re-escaping. Events speak OpenAI's vocabulary (finish reasons,
 * token counts, error codes classify.c knows): a decoder of another protocol maps its own to it.
 * Pure: no I/O, no clock. */
#ifndef KEEL_EVENT_H
#define KEEL_EVENT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/chunk.h"
#include "core/json.h"

enum keel_ev_kind {
    KEEL_EV_META,      /* the answer's identity: meta.* (any may be absent) */
    KEEL_EV_ROLE,      /* a choice's role: role (a string) */
    KEEL_EV_TEXT,      /* content: text.s */
    KEEL_EV_REASONING, /* reasoning: text.s; text.alt = 1 when sent as "reasoning", else "reasoning_content" */
    KEEL_EV_REFUSAL,   /* refusal: text.s */
    KEEL_EV_TOOL_CALL, /* a fragment of tool call tool.index: id, type, name on its first, args on any */
    KEEL_EV_LOGPROBS,  /* logprobs entries: arrays to append to the choice's content and refusal lists */
    KEEL_EV_FINISH,    /* a choice's finish reason: finish (a string; OpenAI's word, which for
                        * another protocol is a literal of the decoder's, not the frame's) */
    KEEL_EV_USAGE,     /* token counts: usage.n (OpenAI's three), and usage.raw, the object as sent
                        * in the upstream's protocol (written as is only to clients of that one) */
    KEEL_EV_ERROR,     /* an error inside the answer, last of its frame: error.code ("" if none), error.raw
                        * (the error object, else the whole payload; absent when that is not JSON) */
};

struct keel_ev {
    enum keel_ev_kind kind;
    uint32_t choice; /* the choice it belongs to (n > 1); 0 for META, USAGE and ERROR */
    union {
        struct {
            struct keel_json id, model, created, system_fingerprint, service_tier;
        } meta;
        struct keel_json role;
        struct {
            struct keel_json s; /* a JSON string literal, quotes included */
            int alt;
        } text;
        struct {
            uint32_t index;
            struct keel_json id, type, name, args; /* strings; absent when p == NULL */
            int args_raw; /* args is JSON text as sent (a whole Anthropic answer's tool input, an
                           * object), not a string literal: an encoder writes it as the string
                           * holding that text, escaped */
        } tool;
        struct {
            struct keel_json content, refusal; /* arrays; absent or null when none */
        } logprobs;
        struct keel_json finish;
        struct {
            struct keel_usage n;
            struct keel_json raw;
        } usage;
        struct {
            const char *code;
            struct keel_json raw;
        } error;
    } u;
};

/* An event's consumer: 0 to go on; anything else stops the frame's decoding and is kept in the
 * decoder's rv (for example -ENOBUFS from an assembler past its cap). */
typedef int (*keel_ev_cb)(void *ctx, const struct keel_ev *ev);

struct keel_decoder;

struct keel_decoder_ops {
    const char *kind; /* the upstream kind it reads: "openai", "anthropic", "openai-responses"
                       * (static storage) */
    /* One stream frame (an SSE event: its name, "message" when none, and its data). Fills info
     * (the frame's kind: progress, idle, error, done or malformed; its usage; an error's code) and,
     * when the decoder has a callback, hands it the frame's events in order. */
    void (*frame)(struct keel_decoder *d, const char *event, const char *data, size_t len,
                  struct keel_chunk_info *info);
    /* A whole non-stream answer (2xx): judged as keel_answer_inspect does, decoded into events
     * when the decoder has a callback. */
    enum keel_answer_kind (*body)(struct keel_decoder *d, const char *body, size_t len, char *code, size_t codelen,
                                  struct keel_usage *usage);
    /* The provider's error code from an error body (any status), "" when it says none. */
    void (*error_code)(const char *body, size_t len, char *code, size_t codelen);
};

/* An Anthropic stream's state across frames (core/anthropic.c): its content blocks by index,
 * for the deltas that name only their block. Blocks at or past the cap are not remembered. */
#define KEEL_ANTHROPIC_MAX_BLOCKS 256
struct keel_anthropic_state {
    uint8_t block[KEEL_ANTHROPIC_MAX_BLOCKS]; /* each block's kind (anthropic.c's enum block_kind;
                                               * 0: never started) */
    uint16_t tool[KEEL_ANTHROPIC_MAX_BLOCKS]; /* a tool_use block's tool-call index */
    uint32_t ntools;                          /* tool_use blocks started so far: the next one's
                                               * tool-call index (saturates at UINT16_MAX) */
    long long prompt_tokens;                  /* message_start's input tokens, cache reads and
                                               * writes included; 0 until it came */
    long long cached_tokens;                  /* of them, message_start's cache reads */
};

struct keel_decoder {
    const struct keel_decoder_ops *ops;
    keel_ev_cb on_ev; /* NULL: judge only, decode nothing (the pass-through path) */
    void *ctx;
    int rv; /* the first non-zero value on_ev returned: no event is handed on from there until the
             * next keel_decoder_init (frames are still judged) */
    union {
        struct keel_anthropic_state anthropic;
    } _state; /* the protocol's, kept whether or not there is a callback (a later frame's verdict
               * may need it); zeroed by keel_decoder_init */
};

extern const struct keel_decoder_ops keel_openai_decoder;
extern const struct keel_decoder_ops keel_anthropic_decoder;
/* kind "openai-responses" (core/responses.c): judge-only, its callback handed ERROR events alone */
extern const struct keel_decoder_ops keel_responses_decoder;

/* the decoder for an upstream kind, NULL when there is none */
const struct keel_decoder_ops *keel_decoder_for(const char *kind);

/* a fresh decoder: nothing handed on yet, no state; the same ops again start a new answer */
static inline void keel_decoder_init(struct keel_decoder *d, const struct keel_decoder_ops *ops, keel_ev_cb on_ev,
                                     void *ctx)
{
    d->ops = ops;
    d->on_ev = on_ev;
    d->ctx = ctx;
    d->rv = 0;
    memset(&d->_state, 0, sizeof(d->_state));
}

/* ---- for decoders (core/event.c): reading fields, handing events on ---- */

struct keel_key {
    const char *s;
    size_t len; /* strlen(s), below 32 */
};
#define KEEL_KEY(s) {s, sizeof(s) - 1}

/* whether string v (an object's key or a value) is key, escapes in v decoded */
int keel_key_is(struct keel_json v, struct keel_key key);

/* the first of keys[0..n) string v is; n when none (or v is no string) */
size_t keel_key_find(struct keel_json v, const struct keel_key *keys, size_t n);

/* The members of object obj named keys[0..n) into out[0..n): absent when missing or obj is no
 * object, the last one when a key repeats (keel_json_get's rule). One walk of obj where n
 * keel_json_get calls walked it n times. */
void keel_key_pick(struct keel_json obj, const struct keel_key *keys, size_t n, struct keel_json *out);

/* A whole answer or error body, for a decoder's body and error_code: code cleared (when codelen >
 * 0); 0 with root the body's object, -1 when it is none */
int keel_decoder_open_body(const char *text, size_t len, char *code, size_t codelen, struct keel_json *root);

/* An ERROR event: code, and raw the error object err when it is one, else root (absent when the
 * payload is no JSON) */
void keel_decoder_emit_error(struct keel_decoder *d, const char *code, struct keel_json root, struct keel_json err);

/* A stream frame's data, for a decoder's frame (info cleared before): 0 with root its object;
 * -1 when it is no JSON object, the frame then judged: an error for an `error` event (its ERROR
 * event handed on, with no code and no raw), else malformed. */
int keel_decoder_open(struct keel_decoder *d, const char *event, const char *data, size_t len,
                      struct keel_chunk_info *info, struct keel_json *root);

/* whether events are handed on: there is a callback and it has not said stop */
static inline int keel_decoder_decoding(const struct keel_decoder *d)
{
    return d->on_ev != NULL && d->rv == 0;
}

/* hands ev on, when decoding */
static inline void keel_decoder_emit(struct keel_decoder *d, const struct keel_ev *ev)
{
    if (keel_decoder_decoding(d))
        d->rv = d->on_ev(d->ctx, ev);
}

#endif
