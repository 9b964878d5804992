/* sse_parse.h - incremental Server-Sent Events parser (WHATWG framing): CR, LF and CRLF line
 * ends, comments, multi-line data, events split across feeds at any byte, bounded line and
 * event size. It knows nothing of OpenAI; chunk.h judges what an event's data means. */
#ifndef KEEL_SSE_PARSE_H
#define KEEL_SSE_PARSE_H

#include <stddef.h>

#include "core/buf.h"

/* A callback returns 0 to go on; any other value stops the feed, which returns it. The pointers
 * are valid only during the call. `event` is "message" when the event named none. */
typedef int (*keel_sse_event_cb)(void *ctx, const char *event, const char *data, size_t len);
typedef int (*keel_sse_comment_cb)(void *ctx, const char *text, size_t len);

#define KEEL_SSE_ETOOLONG (-7001) /* a line or an event's data passed the cap */

struct keel_sse_parser {
    keel_sse_event_cb on_event;
    keel_sse_comment_cb on_comment; /* may be NULL */
    void *ctx;
    struct keel_buf line; /* the current, unterminated line */
    struct keel_buf data; /* data lines of the current event, each followed by '\n' */
    char event[32];       /* event type of the current event, "" = message */
    int has_data;         /* a data field was seen in the current event */
    int after_cr;         /* the last byte fed was CR: a following LF belongs to it */
    int failed;           /* 0, or the parser's own error (KEEL_SSE_ETOOLONG, -ENOMEM): final */
};

void keel_sse_parser_init(struct keel_sse_parser *p, size_t max_line, keel_sse_event_cb on_event,
                          keel_sse_comment_cb on_comment, void *ctx);
void keel_sse_parser_release(struct keel_sse_parser *p);
/* 0, a callback's non-zero value, KEEL_SSE_ETOOLONG or -ENOMEM.
 * KEEL_SSE_ETOOLONG and -ENOMEM are final: the bytes that did not fit are lost, so the event
 * under way is never dispatched, and every later feed returns the same error at once, parses
 * nothing and calls no callback, until keel_sse_parser_release and a fresh init. A callback's
 * value is not final: the parser stays usable; the rest of that feed is not parsed, and a later
 * feed goes on at the start of a line. */
int keel_sse_parser_feed(struct keel_sse_parser *p, const char *bytes, size_t n);
/* true if bytes of an undispatched event are pending (the stream ended mid-event); always true
 * for a parser that failed, since it dropped bytes */
int keel_sse_parser_pending(const struct keel_sse_parser *p);

#endif
