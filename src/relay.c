/* relay.c - the client side of a stream; see relay.h. */
#include "relay.h"

#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "io/server.h"
#include "request_t.h"

int keel_relay_event(struct keel_request *r, const char *event, const char *data, size_t len)
{
    struct keel_buf *out = &r->out;
    const char *p = data, *end = data + len;
    size_t mark = out->len;
    if (event != NULL && strcmp(event, "message") != 0 &&
        (keel_buf_append(out, "event: ", 7) != 0 || keel_buf_append(out, event, strlen(event)) != 0 ||
         keel_buf_append(out, "\n", 1) != 0))
        goto out_undo;
    do {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (keel_buf_append(out, "data: ", 6) != 0 || keel_buf_append(out, p, (size_t)(le - p)) != 0 ||
            keel_buf_append(out, "\n", 1) != 0)
            goto out_undo;
        p = nl ? nl + 1 : end;
    } while (p < end);
    if (keel_buf_append(out, "\n", 1) == 0)
        return 0;
out_undo:
    out->len = mark;
    return -1;
}

void keel_relay_comment(struct keel_request *r, const char *text, size_t len)
{
    if (r->state != REQ_RELAY || r->out.len >= OUT_HIGH_WATER)
        return;
    keel_buf_append(&r->out, ":", 1);
    keel_buf_append(&r->out, text, len);
    keel_buf_append(&r->out, "\n\n", 2);
}

void keel_relay_fail(struct keel_request *r, const char *code, const char *message)
{
    r->out.max += 4096; /* room for the last event even when the queue is full */
    r->finishing = 1;
    if (r->senc_open && r->enc->stream_error != NULL) { /* the protocol's own error event */
        r->enc->stream_error(r->senc, code, message, &r->out);
        return;
    }
    char *ev = keel_answer_envelope(r->enc, NULL, 0, "upstream_error", code, message, 0);
    keel_relay_event(r, r->enc->error_event, ev ? ev : "{}", ev ? strlen(ev) : 2);
    free(ev);
}

void keel_relay_end(struct keel_request *r)
{
    const char *end = r->enc->native_end;
    r->out.max += 32;
    if (end != NULL)
        keel_buf_append(&r->out, end, strlen(end));
    r->finishing = 1;
}

int keel_relay_lagging(const struct keel_request *r)
{
    return r->state == REQ_RELAY && r->writing && r->out.len >= OUT_HIGH_WATER;
}

enum keel_flush keel_relay_flush(struct keel_request *r, void (*on_delivered)(void *r, int delivered))
{
    if (r->writing || r->http == NULL)
        return KEEL_FLUSH_IDLE;
    if (r->out.len == 0 && !r->finishing)
        return KEEL_FLUSH_IDLE;
    int final = r->finishing;
    struct keel_http *h = r->http;
    r->writing = !final;
    if (final) {
        r->http = NULL;
        keel_http_on_delivered(h, on_delivered, r);
        r->sending = 1;
    }
    if (keel_http_write(h, r->out.base, r->out.len, final) != 0) {
        /* the server could not take the write (out of memory) and dropped the client */
        r->writing = 0;
        r->sending = 0;
        return final ? KEEL_FLUSH_FINAL : KEEL_FLUSH_LOST;
    }
    keel_buf_reset(&r->out);
    return final ? KEEL_FLUSH_FINAL : KEEL_FLUSH_WROTE;
}
