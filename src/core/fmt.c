/* fmt.c - see fmt.h. */
#include "core/fmt.h"

#include <assert.h>
#include <string.h>

void keel_fmt_init(struct keel_fmt *f, char *buf, size_t cap)
{
    assert(cap > 0);
    *f = (struct keel_fmt){buf, 0, cap, 0};
    buf[0] = '\0';
}

void keel_fmt_mem(struct keel_fmt *f, const char *s, size_t n)
{
    size_t room = f->cap - 1 - f->len;
    if (n > room) {
        n = room;
        f->cut = 1;
    }
    memcpy(f->p + f->len, s, n);
    f->len += n;
    f->p[f->len] = '\0';
}

void keel_fmt_str(struct keel_fmt *f, const char *s)
{
    keel_fmt_mem(f, s, strlen(s));
}

void keel_fmt_u64(struct keel_fmt *f, uint64_t v)
{
    char d[20];
    size_t i = sizeof(d);
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    keel_fmt_mem(f, d + i, sizeof(d) - i);
}

void keel_fmt_i64(struct keel_fmt *f, long long v)
{
    if (v < 0) {
        keel_fmt_mem(f, "-", 1);
        keel_fmt_u64(f, (uint64_t)0 - (uint64_t)v); /* LLONG_MIN too */
        return;
    }
    keel_fmt_u64(f, (uint64_t)v);
}

void keel_fmt_hex(struct keel_fmt *f, uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    char d[16];
    assert(digits > 0 && digits <= 16);
    for (int i = digits - 1; i >= 0; i--, v >>= 4)
        d[i] = hex[v & 15];
    keel_fmt_mem(f, d, (size_t)digits);
}
