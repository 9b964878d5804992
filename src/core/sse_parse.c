/* sse_parse.c - incremental SSE parser; see sse_parse.h. Per the WHATWG rules: a blank line
 * dispatches, ':' starts a comment, "field: value" loses one leading space, unknown fields
 * (id, retry, anything) are ignored, an event without data is not dispatched. */
#include "core/sse_parse.h"

#include <errno.h>
#include <string.h>

void keel_sse_parser_init(struct keel_sse_parser *p, size_t max_line, keel_sse_event_cb on_event,
                          keel_sse_comment_cb on_comment, void *ctx)
{
    memset(p, 0, sizeof(*p));
    p->on_event = on_event;
    p->on_comment = on_comment;
    p->ctx = ctx;
    keel_buf_init(&p->line, max_line);
    keel_buf_init(&p->data, max_line);
}

void keel_sse_parser_release(struct keel_sse_parser *p)
{
    keel_buf_release(&p->line);
    keel_buf_release(&p->data);
}

int keel_sse_parser_pending(const struct keel_sse_parser *p)
{
    return p->failed != 0 || p->line.len > 0 || p->has_data;
}

/* Makes a failure final (see sse_parse.h): what the buffers still hold is a line or an event
 * missing the bytes that did not fit, and parsing on from it would splice or truncate one. */
static int fail(struct keel_sse_parser *p, int append_rv)
{
    p->failed = append_rv == -ENOMEM ? -ENOMEM : KEEL_SSE_ETOOLONG;
    keel_buf_release(&p->line);
    keel_buf_release(&p->data);
    p->has_data = 0;
    return p->failed;
}

static int dispatch(struct keel_sse_parser *p)
{
    int rv = 0;
    if (p->has_data) {
        /* every data line ended with '\n': the last one becomes the NUL callers may rely on */
        size_t len = p->data.len - 1;
        p->data.base[len] = '\0';
        rv = p->on_event(p->ctx, p->event[0] ? p->event : "message", p->data.base, len);
    }
    keel_buf_reset(&p->data);
    p->has_data = 0;
    p->event[0] = '\0';
    return rv;
}

static int field(struct keel_sse_parser *p, const char *line, size_t len)
{
    if (len == 0)
        return dispatch(p);
    if (line[0] == ':')
        return p->on_comment ? p->on_comment(p->ctx, line + 1, len - 1) : 0;
    const char *colon = memchr(line, ':', len);
    size_t nlen = colon ? (size_t)(colon - line) : len;
    const char *val = colon ? colon + 1 : line + len;
    size_t vlen = (size_t)(line + len - val);
    if (vlen > 0 && val[0] == ' ') {
        val++;
        vlen--;
    }
    if (nlen == 4 && memcmp(line, "data", 4) == 0) {
        p->has_data = 1;
        int rv = keel_buf_append(&p->data, val, vlen);
        if (rv == 0)
            rv = keel_buf_append(&p->data, "\n", 1);
        if (rv != 0)
            return fail(p, rv);
    } else if (nlen == 5 && memcmp(line, "event", 5) == 0) {
        if (vlen >= sizeof(p->event))
            vlen = sizeof(p->event) - 1;
        memcpy(p->event, val, vlen);
        p->event[vlen] = '\0';
    }
    return 0;
}

int keel_sse_parser_feed(struct keel_sse_parser *p, const char *bytes, size_t n)
{
    if (p->failed != 0)
        return p->failed;
    size_t i = 0;
    while (i < n) {
        if (p->after_cr) {
            p->after_cr = 0;
            if (bytes[i] == '\n') {
                i++;
                continue;
            }
        }
        /* find the end of the line within this feed */
        size_t j = i;
        while (j < n && bytes[j] != '\n' && bytes[j] != '\r')
            j++;
        if (j == n) { /* unterminated: keep it for the next feed */
            int rv = keel_buf_append(&p->line, bytes + i, n - i);
            return rv == 0 ? 0 : fail(p, rv);
        }
        const char *line = bytes + i;
        size_t len = j - i;
        if (p->line.len > 0) {
            int rv = keel_buf_append(&p->line, bytes + i, j - i);
            if (rv != 0)
                return fail(p, rv);
            line = p->line.base;
            len = p->line.len;
        }
        if (len > p->line.max)
            return fail(p, -ENOBUFS);
        p->after_cr = bytes[j] == '\r';
        i = j + 1;
        int rv = field(p, line, len);
        keel_buf_reset(&p->line);
        if (rv != 0)
            return rv;
    }
    return 0;
}
