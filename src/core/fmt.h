/* fmt.h - bounded text built in a caller's buffer without printf, for what every request
 * formats (its id, URL, request head, attempts header, audit line): snprintf's format parsing
 * was about 1 µs of a proxied request's 15 (perf, bench/RESULTS.md). The text is always
 * NUL-terminated; what does not fit is cut and said in `cut`. */
#ifndef KEEL_FMT_H
#define KEEL_FMT_H

#include <stddef.h>
#include <stdint.h>

struct keel_fmt {
    char *p;
    size_t len, cap; /* p[0, len) written, NUL at p[len]; cap counts the NUL */
    int cut;         /* something did not fit */
};

/* cap > 0 */
void keel_fmt_init(struct keel_fmt *f, char *buf, size_t cap);
void keel_fmt_mem(struct keel_fmt *f, const char *s, size_t n);
void keel_fmt_str(struct keel_fmt *f, const char *s);
void keel_fmt_u64(struct keel_fmt *f, uint64_t v);
void keel_fmt_i64(struct keel_fmt *f, long long v);
/* v as exactly `digits` lower-case hex digits (the low ones), zero-padded */
void keel_fmt_hex(struct keel_fmt *f, uint64_t v, int digits);

#endif
