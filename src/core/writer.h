/* writer.h - appending JSON text to a keel_buf, for the answer and stream encoders (assemble.c,
 * anthropic_enc.c, responses_enc.c) and private to them. A writer keeps its first failure and appends nothing
 * after it, so an answer or a frame is written piece by piece unchecked and judged once at the
 * end, where the caller puts out->len back (nothing half-written). The names are short, as
 * file-local ones are (STYLE N2): an encoder is made of them, and only those files include this. */
#ifndef KEEL_WRITER_H
#define KEEL_WRITER_H

#include <stddef.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"

/* what is being written: its first failure, after which nothing more is appended */
struct writer {
    struct keel_buf *out; /* the caller's */
    int rv;               /* 0, or keel_buf_append's first failure */
};

static inline void w(struct writer *o, const char *p, size_t n)
{
    if (o->rv == 0)
        o->rv = keel_buf_append(o->out, p, n);
}

static inline void ws(struct writer *o, const char *s)
{
    w(o, s, strlen(s));
}

static inline void wnum(struct writer *o, long long v)
{
    char d[24];
    size_t n = sizeof(d);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        d[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        d[--n] = '-';
    w(o, d + n, sizeof(d) - n);
}

/* keel_json_escape's sink (ctx = the writer) */
static inline int wsink(void *ctx, const char *p, size_t n)
{
    struct writer *o = ctx;
    w(o, p, n);
    return o->rv;
}

/* a string literal holding raw JSON text (a tool call's raw arguments, core/event.h's args_raw) */
static inline void wescaped(struct writer *o, struct keel_json raw)
{
    ws(o, "\"");
    keel_json_escape(raw.p, raw.len, wsink, o);
    ws(o, "\"");
}

#endif
