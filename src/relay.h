/* relay.h - the client side of a stream (relay.c): events queued for the client in its
 * protocol's framing, handed to the server one write at a time, the upstream's transfer paused
 * while the client lags (OUT_HIGH_WATER). Before the commit point the queue only holds; the
 * state machine (request.c) decides when it flows, and acts on what a flush reports. */
#ifndef KEEL_RELAY_H
#define KEEL_RELAY_H

#include <stddef.h>

struct keel_request;

/* one event for the client: its name as an "event: ..." line unless it is NULL or "message" (the
 * default, which OpenAI streams leave unnamed), its data as "data: ...\n" lines (multi-line data
 * stays so): 0, or -1 when the queue is full (nothing queued: a half event would corrupt the
 * next one) */
int keel_relay_event(struct keel_request *r, const char *event, const char *data, size_t len);
/* an upstream keep-alive comment, passed on to a committed client whose queue has room (its
 * idle timers), never counted as progress */
void keel_relay_comment(struct keel_request *r, const char *text, size_t len);
/* the stream's last event: an error in the client protocol's envelope, as an `error` event
 * (after the commit a failure cannot be hidden), and no end marker; or the clean end, the
 * protocol's end marker when it has one of keel's own ([DONE]). Either marks the stream
 * finishing. */
void keel_relay_fail(struct keel_request *r, const char *code, const char *message);
void keel_relay_end(struct keel_request *r);
/* the client lags: the upstream's bytes should wait */
int keel_relay_lagging(const struct keel_request *r);

enum keel_flush {
    KEEL_FLUSH_IDLE,  /* nothing to write, or a write is under way */
    KEEL_FLUSH_WROTE, /* queued bytes went to the server; a paused upstream may resume */
    KEEL_FLUSH_FINAL, /* the last bytes went (or could not: the client is dropped); the stream is over */
    KEEL_FLUSH_LOST,  /* the server could not take a write (out of memory) and dropped the client */
};
/* Hands the queue to the server when no write is under way; the finishing one is final, and
 * on_delivered(r, delivered) will say whether the client took it. */
enum keel_flush keel_relay_flush(struct keel_request *r, void (*on_delivered)(void *r, int delivered));

#endif
