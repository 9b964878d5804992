/* event.h - the protocol-neutral events one attempt's answer is read as (DESIGN.md "The next
 * capabilities"), and the decoders that produce them, one per upstream kind behind an ops table
 * (STYLE B4). A decoder judges each stream frame (content progress, error, end: what deadlines,
 * the commit point and classification read) and, when asked, breaks it into events for an
 * encoder of another shape (core/assemble.h: one JSON answer; later, other protocols' streams).
 * Events point into the frame they came from: spans valid only during the callback. Text stays
 * as the JSON string literal it was sent as (escapes included), so an encoder copies it into its
 * own JSON without decoding and re-escaping. Pure: no I/O, no clock. */
#ifndef KEEL_EVENT_H
#define KEEL_EVENT_H

#include <stddef.h>
#include <stdint.h>

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
    KEEL_EV_FINISH,    /* a choice's finish reason: finish (a string) */
    KEEL_EV_USAGE,     /* token counts: usage.n, and usage.raw, the object as sent */
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
    const char *kind; /* the upstream kind it reads: "openai" */
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

struct keel_decoder {
    const struct keel_decoder_ops *ops;
    keel_ev_cb on_ev; /* NULL: judge only, decode nothing (the pass-through path) */
    void *ctx;
    int rv; /* the first non-zero value on_ev returned: no event is handed on from there until the
             * next keel_decoder_init (frames are still judged) */
};

extern const struct keel_decoder_ops keel_openai_decoder;

/* the decoder for an upstream kind, NULL when there is none */
const struct keel_decoder_ops *keel_decoder_for(const char *kind);

static inline void keel_decoder_init(struct keel_decoder *d, const struct keel_decoder_ops *ops, keel_ev_cb on_ev,
                                     void *ctx)
{
    d->ops = ops;
    d->on_ev = on_ev;
    d->ctx = ctx;
    d->rv = 0;
}

#endif
