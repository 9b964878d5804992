/* fuzz_sse.c - libFuzzer driver for the SSE reader: any input, fed whole and fed split at a
 * point the input chooses, must give the same events (and never crash or overrun). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sse_parse.h"

struct log {
    char buf[65536];
    size_t len;
};

static int on_event(void *ctx, const char *event, const char *data, size_t len)
{
    struct log *l = ctx;
    size_t need = strlen(event) + len + 3;
    if (l->len + need < sizeof(l->buf)) {
        l->len += (size_t)snprintf(l->buf + l->len, sizeof(l->buf) - l->len, "%s|", event);
        memcpy(l->buf + l->len, data, len);
        l->len += len;
        l->buf[l->len++] = '\n';
    }
    return 0;
}

static int feed(const uint8_t *d, size_t n, size_t cut, struct log *l)
{
    struct keel_sse_parser p;
    keel_sse_parser_init(&p, 512, on_event, NULL, l);
    int rv = keel_sse_parser_feed(&p, (const char *)d, cut);
    if (rv == 0)
        rv = keel_sse_parser_feed(&p, (const char *)d + cut, n - cut);
    keel_sse_parser_release(&p);
    return rv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct log a, b;
    if (size == 0)
        return 0;
    size_t cut = data[0] % size;
    a.len = b.len = 0;
    int ra = feed(data, size, size, &a);
    int rb = feed(data, size, cut, &b);
    /* an over-long line may be caught at a different event, so compare only clean parses */
    if (ra == 0 && rb == 0 && (a.len != b.len || memcmp(a.buf, b.buf, a.len) != 0))
        abort();
    return 0;
}
