/* buf.h - a growable byte buffer with a hard cap fixed at init (STYLE O4).
 * Hitting the cap is an error the caller must handle; nothing grows without bound. */
#ifndef KEEL_BUF_H
#define KEEL_BUF_H

#include <stddef.h>

struct keel_buf {
    char *base; /* owned; NULL until the first append; freed by keel_buf_release */
    size_t len; /* bytes in use, always <= cap */
    size_t cap; /* bytes allocated */
    size_t max; /* hard cap on len, set at init */
};

void keel_buf_init(struct keel_buf *b, size_t max);
/* 0, or -ENOBUFS when len would pass max (nothing appended), -ENOMEM */
int keel_buf_append(struct keel_buf *b, const void *p, size_t n);
int keel_buf_appends(struct keel_buf *b, const char *s);
/* drops the first n bytes */
void keel_buf_consume(struct keel_buf *b, size_t n);
void keel_buf_release(struct keel_buf *b);
static inline void keel_buf_reset(struct keel_buf *b)
{
    b->len = 0;
}

#endif
