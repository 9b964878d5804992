/* anthropic_msg.h - an Anthropic Messages stream gathered back into the one Message the upstream
 * would have answered without a stream: what a client of the Messages protocol that asked for
 * no stream gets when keel streamed from an Anthropic upstream anyway (to watch its first-byte
 * and stall deadlines and fail over unseen). The SDKs' MessageStream accumulation, in C, with
 * jansson. Judging frames (errors, progress) is the decoder's (core/anthropic.c); this keeps
 * everything the stream says, so the client gets what Anthropic sent: every content block of
 * any type with every member (a thinking block's signature must survive, or the client's next
 * turn with thinking and tools is refused), stop_reason, stop_sequence and usage as sent.
 *
 * Rules, frame by frame (the frame's type is its data's "type", else the SSE event's name):
 * - message_start: its "message" is the base, key order kept ("content" [] made when absent).
 * - content_block_start: its content_block becomes content[index]; index must be the content's
 *   length (blocks come in order).
 * - content_block_delta on content[index]: text_delta and thinking_delta append to the block's
 *   "text" and "thinking" (a string, "" when absent); signature_delta sets "signature";
 *   citations_delta appends its "citation" to "citations" (made when absent or null);
 *   input_json_delta's partial_json is joined aside until the block stops; any other delta type
 *   is ignored.
 * - content_block_stop: the block's text and thinking are set on it, and a block that got an
 *   input_json_delta gets "input" = the joined JSON parsed ("" is {}): it must be an object.
 *   message_stop stops every block still open the same way.
 * - message_delta: every member of its "delta" is set on the message (stop_reason,
 *   stop_sequence, container, any to come); every member of its "usage" on message.usage
 *   (counts are cumulative: the last wins; a null never overwrites a value); any other member
 *   but "type" (context_management) on the message, as the SDKs do. A key already there keeps
 *   its place; a new one goes last.
 * - message_stop: the message is whole. ping, error frames (the decoder's and the caller's to
 *   act on; an SSE event named "error" is not even parsed) and unknown types: nothing.
 * Refused with -EPROTO: data that is no JSON object; any frame but ping and error before
 *   message_start; a second message_start; a block, delta or message frame after message_stop;
 *   a delta or stop for a block that does not exist or already stopped; a member a rule needs
 *   of the wrong type (text_delta's "text" no string...); a tool input that is no JSON object.
 * A failure is final: every later frame returns it at once (the caller gives the answer up). */
#ifndef KEEL_ANTHROPIC_MSG_H
#define KEEL_ANTHROPIC_MSG_H

#include <stddef.h>

#include "core/buf.h"

struct json_t;
struct keel_anthropic_msg_block;

struct keel_anthropic_msg {
    struct json_t *_msg; /* message_start's message, every frame since applied (a block's text,
                          * thinking and input as of its stop); owned (one reference); NULL
                          * before message_start */
    struct keel_anthropic_msg_block *_blocks; /* [_nblocks], by content index: what a block's
                                               * deltas gathered aside, not yet set on it; owned */
    size_t _nblocks;    /* content blocks so far: the length of _msg's content */
    size_t _blocks_cap; /* slots allocated in _blocks */
    int _failed;        /* 0, or the first frame's failure: final */
    int _finished;      /* message_stop came after message_start (and every block stopped) */
    size_t held; /* bytes the builder holds, estimated: what jansson allocated for the message
                  * (a cost per kind of value measured on jansson 2.14, plus string and key bytes)
                  * and the side buffers and block slots allocated (exactly); never above max. A
                  * frame's own parse tree lives only during the call, uncounted. */
    size_t max;
};

/* max: the cap on held; a frame that would need more is refused with -ENOBUFS */
void keel_anthropic_msg_init(struct keel_anthropic_msg *m, size_t max);
/* frees everything; idempotent, and fine on a zeroed struct or after any failure */
void keel_anthropic_msg_release(struct keel_anthropic_msg *m);

/* One SSE frame: event = the SSE event's name ("message" when it named none), data[0..len) its
 * payload (need not be NUL-terminated; read only during the call). 0, or -EPROTO (above),
 * -ENOBUFS (held would pass max), -ENOMEM. */
int keel_anthropic_msg_frame(struct keel_anthropic_msg *m, const char *event, const char *data, size_t len);

/* true once message_stop came after message_start: the Message is whole */
int keel_anthropic_msg_finished(const struct keel_anthropic_msg *m);

/* Appends the Message as compact JSON (no whitespace, jansson's writing: UTF-8 as is, numbers
 * with a fraction or exponent as jansson reprints them) to out, keys in the order they came. A
 * builder not finished (after a failure, or mid-stream) writes what it has: a block still open
 * with its text and thinking so far, its input as it started until its JSON is whole. 0, or
 * -ENOBUFS (out's cap), -ENOMEM, -EPROTO (no message_start came: nothing to write); out as it
 * was on failure. */
int keel_anthropic_msg_write(const struct keel_anthropic_msg *m, struct keel_buf *out);

#endif
