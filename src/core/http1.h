/* http1.h - HTTP/1.1 request framing, pure (RFC 9112): a request head parsed in place, a
 * header value's tokens, the request target's path, a chunked body decoded in place. The
 * server (io/server.c) reads the bytes; this says what they are. */
#ifndef KEEL_HTTP1_H
#define KEEL_HTTP1_H

#include <stddef.h>
#include <stdint.h>

/* one header field, pointing into the head; its name lowercased in place */
struct keel_http1_field {
    const char *name, *value;
    size_t nlen, vlen;
};

struct keel_http1_head {
    const char *method, *target; /* the request line's, pointing into the head */
    size_t mlen, tlen;
    int minor;                   /* HTTP/1.minor: 0 or 1 */
    size_t nfields;
};

/* A whole head (p[0..n) ends with its blank line; empty lines before the request line are
 * skipped): the request line and each header field, names lowercased in place. 0; -1 when
 * it is malformed (no HTTP/1.x, a method that is no token, a target with spaces or controls,
 * a field without a name or with whitespace before its colon, a folded line, a control
 * character in a value); -2 when it has more than max fields. */
int keel_http1_parse_head(char *p, size_t n, struct keel_http1_head *hd, struct keel_http1_field *f, size_t max);

/* 1 when f's (lowercased) name is `name` */
int keel_http1_is(const struct keel_http1_field *f, const char *name);

/* 1 when the comma-separated value v holds token t, case-insensitively */
int keel_http1_has_token(const char *v, size_t vlen, const char *t);

/* The path p[0..n) (a request target without its query), in place: an absolute-form target
 * (http://host/...) cut to its path, "." and ".." segments taken out (RFC 3986 5.2.4). Its
 * new length, at least 1 ("/"). */
size_t keel_http1_normalize_path(char *p, size_t n);

/* A chunked body being decoded in place in a buffer that grows as bytes come */
struct keel_http1_chunked {
    size_t base;   /* where the body starts (the head's length) */
    size_t raw;    /* the next undecoded byte */
    size_t dst;    /* where the next decoded byte goes (the body is in[base..dst)) */
    uint64_t left; /* bytes left of the current chunk's data */
    int phase;     /* 0 a size line, 1 data, 2 the CRLF after data, 3 trailers */
};

/* Decodes what in[0..len) holds past c->raw: 1 the body is whole (it ends at c->raw), 0 more
 * is needed, -1 malformed, -2 the body passes max bytes. Start with base = raw = dst = the
 * head's length, the rest 0. */
int keel_http1_dechunk(struct keel_http1_chunked *c, char *in, size_t len, size_t max);

#endif
