/* http1.c - HTTP/1.1 request framing; see http1.h. */
#include "core/http1.h"

#include <string.h>
#include <strings.h>

static int tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* one line of p[0..n) from *pos: its bytes without the CR LF (a bare LF also ends it);
 * -1 when no LF is there */
static long next_line(const char *p, size_t n, size_t *pos, const char **line)
{
    const char *lf = memchr(p + *pos, '\n', n - *pos);
    if (lf == NULL)
        return -1;
    *line = p + *pos;
    size_t len = (size_t)(lf - *line);
    *pos += len + 1;
    if (len > 0 && (*line)[len - 1] == '\r')
        len--;
    return (long)len;
}

/* A whole head (p[0..n) ends with its blank line): the request line and each header field,
 * names lowercased in place. 0, -1 malformed, -2 more than max fields. */
int keel_http1_parse_head(char *p, size_t n, struct keel_http1_head *hd, struct keel_http1_field *hdrs, size_t max)
{
    size_t pos = 0;
    const char *line;
    long len = next_line(p, n, &pos, &line);
    while (len == 0) /* RFC 9112 2.2: empty lines before the request line are ignored */
        len = next_line(p, n, &pos, &line);
    if (len < 0)
        return -1;
    const char *end = line + len, *sp1 = memchr(line, ' ', (size_t)len);
    if (sp1 == NULL || sp1 == line)
        return -1;
    const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1));
    if (sp2 == NULL || sp2 == sp1 + 1 || end - sp2 != 9 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
        (sp2[8] != '0' && sp2[8] != '1'))
        return -1;
    for (const char *q = line; q < sp1; q++)
        if (!tchar((unsigned char)*q))
            return -1;
    for (const char *q = sp1 + 1; q < sp2; q++)
        if ((unsigned char)*q <= ' ' || *q == 0x7f)
            return -1;
    hd->method = line;
    hd->mlen = (size_t)(sp1 - line);
    hd->target = sp1 + 1;
    hd->tlen = (size_t)(sp2 - sp1 - 1);
    hd->minor = sp2[8] - '0';
    hd->nfields = 0;
    while ((len = next_line(p, n, &pos, &line)) > 0) {
        char *l = (char *)line, *colon = memchr(l, ':', (size_t)len);
        if (colon == NULL || colon == l)
            return -1; /* no name, or a folded line (obs-fold is refused, RFC 9112 5.2) */
        for (char *q = l; q < colon; q++) {
            if (!tchar((unsigned char)*q))
                return -1; /* whitespace before the colon among them (RFC 9112 5.1) */
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q - 'A' + 'a');
        }
        const char *v = colon + 1, *ve = line + len;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        for (const char *q = v; q < ve; q++)
            if (((unsigned char)*q < ' ' && *q != '\t') || *q == 0x7f)
                return -1;
        if (hd->nfields == max)
            return -2;
        hdrs[hd->nfields++] = (struct keel_http1_field){l, v, (size_t)(colon - l), (size_t)(ve - v)};
    }
    return len == 0 ? 0 : -1;
}

int keel_http1_is(const struct keel_http1_field *h, const char *name)
{
    size_t n = strlen(name);
    return h->nlen == n && memcmp(h->name, name, n) == 0;
}

/* a comma-separated header value holds token t (case-insensitive) */
int keel_http1_has_token(const char *v, size_t vlen, const char *t)
{
    size_t tl = strlen(t);
    for (size_t i = 0; i < vlen;) {
        while (i < vlen && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t j = i;
        while (j < vlen && v[j] != ',')
            j++;
        size_t k = j;
        while (k > i && (v[k - 1] == ' ' || v[k - 1] == '\t'))
            k--;
        if (k - i == tl && strncasecmp(v + i, t, tl) == 0)
            return 1;
        i = j;
    }
    return 0;
}

/* The path without its query, with "." and ".." segments taken out (RFC 3986 5.2.4), in place;
 * an absolute-form target (a proxy's) is cut to its path. Returns the path's length. */
size_t keel_http1_normalize_path(char *p, size_t n)
{
    if (n > 7 && (strncasecmp(p, "http://", 7) == 0 || (n > 8 && strncasecmp(p, "https://", 8) == 0))) {
        char *slash = memchr(p + 8, '/', n - 8);
        size_t skip = slash ? (size_t)(slash - p) : n;
        memmove(p, p + skip, n - skip);
        n -= skip;
        if (n == 0)
            p[n++] = '/';
    }
    if (memmem(p, n, "/.", 2) == NULL)
        return n;
    size_t w = 0, r = 0;
    while (r < n) {
        size_t e = r + 1;
        while (e < n && p[e] != '/')
            e++;
        size_t seg = e - r; /* "/name", with its slash */
        if (seg == 2 && p[r + 1] == '.') {
            if (e == n)
                p[w++] = '/';
        } else if (seg == 3 && p[r + 1] == '.' && p[r + 2] == '.') {
            while (w > 0 && p[--w] != '/')
                ;
            if (e == n)
                p[w++] = '/';
        } else {
            memmove(p + w, p + r, seg);
            w += seg;
        }
        r = e;
    }
    if (w == 0)
        p[w++] = '/';
    return w;
}

/* One step of the chunked decoder over in[0..len): 1 the body is whole, 0 more is needed,
 * -1 malformed, -2 the body passes max. Decoded bytes move down in place. */
int keel_http1_dechunk(struct keel_http1_chunked *c, char *in, size_t len, size_t max)
{
    for (;;) {
        if (c->phase == 1) {
            size_t have = len - c->raw, take = have < c->left ? have : (size_t)c->left;
            memmove(in + c->dst, in + c->raw, take);
            c->dst += take;
            c->raw += take;
            c->left -= take;
            if (c->left > 0)
                return 0;
            c->phase = 2;
            continue;
        }
        const char *line;
        size_t pos = c->raw;
        long n = next_line(in, len, &pos, &line);
        if (n < 0)
            return len - c->raw > 4096 ? -1 : 0; /* no line is that long */
        c->raw = pos;
        if (c->phase == 2) {
            if (n != 0)
                return -1;
            c->phase = 0;
        } else if (c->phase == 3) {
            if (n == 0)
                return 1;
        } else {
            uint64_t size = 0;
            long i = 0;
            for (; i < n && line[i] != ';' && line[i] != ' ' && line[i] != '\t'; i++) {
                int d = line[i] >= '0' && line[i] <= '9'   ? line[i] - '0'
                        : line[i] >= 'a' && line[i] <= 'f' ? line[i] - 'a' + 10
                        : line[i] >= 'A' && line[i] <= 'F' ? line[i] - 'A' + 10
                                                           : -1;
                if (d < 0 || size > (UINT64_MAX >> 4))
                    return -1;
                size = size << 4 | (uint64_t)d;
            }
            if (i == 0)
                return -1;
            if (size > max || c->dst - c->base > max - size)
                return -2;
            c->left = size;
            c->phase = size == 0 ? 3 : 1;
        }
    }
}

