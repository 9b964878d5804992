/* buf.c - bounded growable buffer; see buf.h. */
#include "core/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void keel_buf_init(struct keel_buf *b, size_t max)
{
    b->base = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

int keel_buf_append(struct keel_buf *b, const void *p, size_t n)
{
    if (n > b->max - b->len)
        return -ENOBUFS;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        if (cap > b->max)
            cap = b->max;
        char *nb = realloc(b->base, cap);
        if (nb == NULL)
            return -ENOMEM;
        b->base = nb;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->base + b->len, p, n);
    b->len += n;
    return 0;
}

int keel_buf_appends(struct keel_buf *b, const char *s)
{
    return keel_buf_append(b, s, strlen(s));
}

void keel_buf_consume(struct keel_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->base, b->base + n, b->len - n);
    b->len -= n;
}

void keel_buf_release(struct keel_buf *b)
{
    free(b->base);
    keel_buf_init(b, b->max);
}
