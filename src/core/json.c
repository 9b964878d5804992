/* json.c - the span scanner; see json.h. keel_json_parse validates a text once, by recursive
 * descent (value_end); lookups inside it then skip values without checking them again
 * (skip_value). Nothing is allocated. */
#include "core/json.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>


static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static int hex4(const char *p, const char *end, unsigned *out)
{
    unsigned v = 0;
    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static int cont(const unsigned char *p, const char *end, size_t i)
{
    return (const char *)p + i < end && (p[i] & 0xC0) == 0x80;
}

/* the length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs, no surrogates,
 * nothing past U+10FFFF), 0 if it is not one */
static size_t utf8_len(const char *s, const char *end)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned c = p[0];
    if (c >= 0xC2 && c <= 0xDF)
        return cont(p, end, 1) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (!cont(p, end, 1) || !cont(p, end, 2))
            return 0;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F))
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (!cont(p, end, 1) || !cont(p, end, 2) || !cont(p, end, 3))
            return 0;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))
            return 0;
        return 4;
    }
    return 0;
}

/* p at the opening quote; returns just past the closing one, NULL if the string is bad */
static const char *string_end(const char *p, const char *end)
{
    p++;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL;
        if (c < 0x80 && c != '\\') {
            p++;
            continue;
        }
        if (c >= 0x80) {
            size_t n = utf8_len(p, end);
            if (n == 0)
                return NULL;
            p += n;
            continue;
        }
        if (++p >= end)
            return NULL;
        switch (*p) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            p++;
            continue;
        case 'u': {
            unsigned u, lo;
            if (hex4(p + 1, end, &u) != 0 || (u >= 0xDC00 && u <= 0xDFFF))
                return NULL;
            p += 5;
            if (u >= 0xD800 && u <= 0xDBFF) { /* a high surrogate needs its low half next */
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, end, &lo) != 0 || lo < 0xDC00 ||
                    lo > 0xDFFF)
                    return NULL;
                p += 6;
            }
            continue;
        }
        default:
            return NULL;
        }
    }
    return NULL;
}

static int digit(const char *p, const char *end)
{
    return p < end && *p >= '0' && *p <= '9';
}

static const char *number_end(const char *p, const char *end)
{
    if (p < end && *p == '-')
        p++;
    if (!digit(p, end))
        return NULL;
    if (*p == '0')
        p++;
    else
        while (digit(p, end))
            p++;
    if (p < end && *p == '.') {
        if (!digit(++p, end))
            return NULL;
        while (digit(p, end))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (!digit(p, end))
            return NULL;
        while (digit(p, end))
            p++;
    }
    return p;
}

static const char *literal_end(const char *p, const char *end, const char *word, size_t n)
{
    return (size_t)(end - p) >= n && memcmp(p, word, n) == 0 ? p + n : NULL;
}

/* p at a value's first byte; returns just past the value, NULL if it is not one */
/* depth: containers open around p; past max, *deep is set and the scan fails */
static const char *value_end(const char *p, const char *end, size_t depth, size_t max, int *deep)
{
    if (p >= end)
        return NULL;
    switch (*p) {
    case '"':
        return string_end(p, end);
    case 't':
        return literal_end(p, end, "true", 4);
    case 'f':
        return literal_end(p, end, "false", 5);
    case 'n':
        return literal_end(p, end, "null", 4);
    case '{':
    case '[': {
        char close = *p == '{' ? '}' : ']';
        if (depth >= max) {
            *deep = 1;
            return NULL;
        }
        p = skip_ws(p + 1, end);
        if (p < end && *p == close)
            return p + 1;
        for (;;) {
            if (close == '}') {
                if (p >= end || *p != '"' || (p = string_end(p, end)) == NULL)
                    return NULL;
                p = skip_ws(p, end);
                if (p >= end || *p != ':')
                    return NULL;
                p = skip_ws(p + 1, end);
            }
            if ((p = value_end(p, end, depth + 1, max, deep)) == NULL)
                return NULL;
            p = skip_ws(p, end);
            if (p >= end)
                return NULL;
            if (*p == close)
                return p + 1;
            if (*p != ',')
                return NULL;
            p = skip_ws(p + 1, end);
        }
    }
    default:
        return number_end(p, end);
    }
}

/* Past the value at p in text already validated: strings by memchr, containers by counting
 * brackets outside strings. Lookups use it; validating again made each lookup cost a parse. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++;;) {
        const char *q = memchr(p, '"', (size_t)(end - p)), *b;
        if (q == NULL)
            return NULL;
        for (b = q; b > p && b[-1] == '\\';)
            b--;
        if ((q - b) % 2 == 0) /* an even run of backslashes escapes itself, not the quote */
            return q + 1;
        p = q + 1;
    }
}

static const char *skip_value(const char *p, const char *end)
{
    if (p >= end)
        return NULL;
    if (*p == '"')
        return skip_string(p, end);
    if (*p != '{' && *p != '[') {
        while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' && *p != '\r' &&
               *p != '\t')
            p++;
        return p;
    }
    size_t depth = 0;
    while (p < end) {
        switch (*p) {
        case '"':
            if ((p = skip_string(p, end)) == NULL)
                return NULL;
            continue;
        case '{':
        case '[':
            depth++;
            break;
        case '}':
        case ']':
            if (--depth == 0)
                return p + 1;
            break;
        }
        p++;
    }
    return NULL;
}

int keel_json_parse_depth(const char *text, size_t len, size_t max_depth, struct keel_json *root)
{
    assert(max_depth <= KEEL_JSON_MAX_DEPTH); /* the scan recurses once per level */
    if (len == 0)
        return -1; /* and text may be NULL (an empty buffer): no arithmetic on it */
    const char *end = text + len;
    const char *p = skip_ws(text, end);
    int deep = 0;
    const char *e = value_end(p, end, 0, max_depth, &deep);
    if (deep)
        return -2;
    if (e == NULL || skip_ws(e, end) != end)
        return -1;
    root->p = p;
    root->len = (size_t)(e - p);
    return 0;
}

int keel_json_parse(const char *text, size_t len, struct keel_json *root)
{
    return keel_json_parse_depth(text, len, KEEL_JSON_MAX_DEPTH, root) == 0 ? 0 : -1;
}

enum keel_json_type keel_json_type(struct keel_json v)
{
    if (v.p == NULL || v.len == 0)
        return KEEL_JSON_NONE;
    switch (v.p[0]) {
    case '{':
        return KEEL_JSON_OBJECT;
    case '[':
        return KEEL_JSON_ARRAY;
    case '"':
        return KEEL_JSON_STRING;
    case 't':
        return KEEL_JSON_TRUE;
    case 'f':
        return KEEL_JSON_FALSE;
    case 'n':
        return KEEL_JSON_NULL;
    default:
        return KEEL_JSON_NUMBER;
    }
}

int keel_json_next(struct keel_json v, size_t *pos, struct keel_json *key, struct keel_json *val)
{
    enum keel_json_type t = keel_json_type(v);
    if (t != KEEL_JSON_OBJECT && t != KEEL_JSON_ARRAY)
        return 0;
    const char *end = v.p + v.len - 1; /* the closing bracket */
    const char *p = skip_ws(v.p + (*pos == 0 ? 1 : *pos), end);
    if (p < end && *pos != 0 && *p == ',')
        p = skip_ws(p + 1, end);
    if (p >= end)
        return 0;
    if (t == KEEL_JSON_OBJECT) {
        const char *k = p;
        if ((p = skip_string(p, end)) == NULL)
            return 0;
        if (key != NULL)
            *key = (struct keel_json){k, (size_t)(p - k)};
        p = skip_ws(skip_ws(p, end) + 1, end); /* past the ':' */
    }
    const char *e = skip_value(p, end);
    if (e == NULL)
        return 0;
    *val = (struct keel_json){p, (size_t)(e - p)};
    *pos = (size_t)(e - v.p);
    return 1;
}

static int key_is(struct keel_json k, const char *key, size_t keylen)
{
    if (memchr(k.p, '\\', k.len) == NULL)
        return k.len - 2 == keylen && memcmp(k.p + 1, key, keylen) == 0;
    char buf[128];
    long n = keel_json_string(k, buf, sizeof(buf));
    return n >= 0 && (size_t)n == keylen && keylen < sizeof(buf) && memcmp(buf, key, keylen) == 0;
}

struct keel_json keel_json_get(struct keel_json obj, const char *key)
{
    struct keel_json found = {NULL, 0}, k, v;
    size_t pos = 0, keylen = strlen(key);
    if (keel_json_type(obj) != KEEL_JSON_OBJECT)
        return found;
    while (keel_json_next(obj, &pos, &k, &v))
        if (key_is(k, key, keylen))
            found = v;
    return found;
}

int keel_json_nonempty(struct keel_json v)
{
    return keel_json_type(v) == KEEL_JSON_STRING && v.len > 2;
}

static size_t put_utf8(unsigned u, char *b)
{
    if (u < 0x80) {
        b[0] = (char)u;
        return 1;
    }
    if (u < 0x800) {
        b[0] = (char)(0xC0 | (u >> 6));
        b[1] = (char)(0x80 | (u & 0x3F));
        return 2;
    }
    if (u < 0x10000) {
        b[0] = (char)(0xE0 | (u >> 12));
        b[1] = (char)(0x80 | ((u >> 6) & 0x3F));
        b[2] = (char)(0x80 | (u & 0x3F));
        return 3;
    }
    b[0] = (char)(0xF0 | (u >> 18));
    b[1] = (char)(0x80 | ((u >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((u >> 6) & 0x3F));
    b[3] = (char)(0x80 | (u & 0x3F));
    return 4;
}

long keel_json_string(struct keel_json v, char *out, size_t cap)
{
    if (keel_json_type(v) != KEEL_JSON_STRING)
        return -1;
    const char *p = v.p + 1, *end = v.p + v.len - 1;
    size_t n = 0;
    while (p < end) {
        char b[4];
        size_t bl = 1;
        if (*p != '\\') {
            b[0] = *p++;
        } else {
            char e = p[1];
            p += 2;
            switch (e) {
            case 'b':
                b[0] = '\b';
                break;
            case 'f':
                b[0] = '\f';
                break;
            case 'n':
                b[0] = '\n';
                break;
            case 'r':
                b[0] = '\r';
                break;
            case 't':
                b[0] = '\t';
                break;
            case 'u': {
                unsigned u = 0, lo = 0;
                hex4(p, end, &u);
                p += 4;
                if (u >= 0xD800 && u <= 0xDBFF && hex4(p + 2, end, &lo) == 0) {
                    u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
                bl = put_utf8(u, b);
                break;
            }
            default: /* " \ / */
                b[0] = e;
            }
        }
        if (bl == 1 && b[0] == '\0')
            return -1;
        for (size_t i = 0; i < bl; i++, n++)
            if (n + 1 < cap)
                out[n] = b[i];
    }
    if (cap > 0)
        out[n < cap ? n : cap - 1] = '\0';
    return (long)n;
}

int keel_json_int(struct keel_json v, long long *out)
{
    char buf[24];
    if (keel_json_type(v) != KEEL_JSON_NUMBER || v.len >= sizeof(buf) || memchr(v.p, '.', v.len) ||
        memchr(v.p, 'e', v.len) || memchr(v.p, 'E', v.len))
        return -1;
    memcpy(buf, v.p, v.len);
    buf[v.len] = '\0';
    char *e;
    errno = 0;
    long long x = strtoll(buf, &e, 10);
    if (errno != 0 || *e != '\0')
        return -1;
    *out = x;
    return 0;
}

size_t keel_json_quote(const char *s, char *out, size_t cap)
{
    size_t n = 0;
#define PUT(c)                                                                                                         \
    do {                                                                                                               \
        if (n + 1 < cap)                                                                                               \
            out[n] = (c);                                                                                              \
        n++;                                                                                                           \
    } while (0)
    PUT('"');
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            PUT('\\');
            PUT((char)c);
        } else if (c < 0x20) {
            const char *hex = "0123456789abcdef";
            PUT('\\');
            PUT('u');
            PUT('0');
            PUT('0');
            PUT(hex[c >> 4]);
            PUT(hex[c & 15]);
        } else {
            PUT((char)c);
        }
    }
    PUT('"');
#undef PUT
    if (cap > 0)
        out[n < cap ? n : cap - 1] = '\0';
    return n;
}

int keel_json_utf8_valid(const char *s, size_t n)
{
    const char *end = s + n;
    while (s < end) {
        size_t len = (unsigned char)*s < 0x80 ? 1 : utf8_len(s, end);
        if (len == 0)
            return 0;
        s += len;
    }
    return 1;
}

int keel_json_escape(const char *p, size_t n, int (*sink)(void *ctx, const char *run, size_t len), void *ctx)
{
    static const char hex[] = "0123456789abcdef";
    size_t from = 0;
    int rv = 0;
    for (size_t i = 0; i < n && rv == 0; i++) {
        unsigned char c = (unsigned char)p[i];
        char e[6] = {'\\', (char)c, '0', '0', hex[c >> 4], hex[c & 15]};
        size_t elen = 2;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (c == '\n') {
            e[1] = 'n';
        } else if (c == '\r') {
            e[1] = 'r';
        } else if (c == '\t') {
            e[1] = 't';
        } else if (c < 0x20) {
            e[1] = 'u';
            elen = 6;
        }
        rv = sink(ctx, p + from, i - from);
        if (rv == 0)
            rv = sink(ctx, e, elen);
        from = i + 1;
    }
    return rv == 0 ? sink(ctx, p + from, n - from) : rv;
}
