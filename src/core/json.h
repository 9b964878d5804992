/* json.h - a validating JSON scanner that builds no tree: a value is a span of the caller's
 * text, looked into on demand. keel reads a few fields of bodies it forwards byte for byte;
 * jansson's tree cost ~200 instructions per byte (callgrind, bench/RESULTS.md), and its
 * re-serialisation altered what the client sent (float digits, escapes). Writing JSON stays
 * with jansson. */
#ifndef KEEL_JSON_H
#define KEEL_JSON_H

#include <stddef.h>
#include <stdint.h>

enum keel_json_type {
    KEEL_JSON_NONE, /* absent (a missing member, the end of an array) */
    KEEL_JSON_OBJECT,
    KEEL_JSON_ARRAY,
    KEEL_JSON_STRING,
    KEEL_JSON_NUMBER,
    KEEL_JSON_TRUE,
    KEEL_JSON_FALSE,
    KEEL_JSON_NULL,
};

/* One value: [p, p+len) of the caller's text, quotes and brackets included, no surrounding
 * whitespace. Stale when that text goes. p == NULL: absent. Spans handed out by these
 * functions lie inside a text keel_json_parse accepted; the lookups trust that. */
struct keel_json {
    const char *p;
    size_t len;
};

/* 0 when text[0..len) is exactly one JSON value (RFC 8259: strict grammar, valid UTF-8,
 * paired surrogate escapes, nesting at most 512 deep) with optional whitespace around it;
 * -1 otherwise. `root` spans the value. */
int keel_json_parse(const char *text, size_t len, struct keel_json *root);

#define KEEL_JSON_MAX_DEPTH 512
/* keel_json_parse with nesting at most max_depth (<= KEEL_JSON_MAX_DEPTH): -2 when the text is
 * nested deeper (its grammar up to there was valid), -1 when it is not JSON */
int keel_json_parse_depth(const char *text, size_t len, size_t max_depth, struct keel_json *root);

enum keel_json_type keel_json_type(struct keel_json v);

/* The member of object `obj` named `key` (escapes in the text's key are decoded before
 * comparing); the last one when the key repeats, as jansson and most parsers do. Absent when
 * `obj` is not an object or has no such member. */
struct keel_json keel_json_get(struct keel_json obj, const char *key);

/* Iterates an array's elements or an object's members: start with *pos = 0; returns 1 and
 * sets *val (and *key for an object member, when key != NULL) or 0 at the end. */
int keel_json_next(struct keel_json v, size_t *pos, struct keel_json *key, struct keel_json *val);

/* a string holding at least one character */
int keel_json_nonempty(struct keel_json v);

/* Decodes string `v` into out[0..cap) NUL-terminated, truncated to fit. Returns the decoded
 * length, or -1 when v is not a string or decodes to a NUL byte. */
long keel_json_string(struct keel_json v, char *out, size_t cap);

/* An integer number (no fraction or exponent) that fits: 0, else -1. */
int keel_json_int(struct keel_json v, long long *out);

/* Whether s[0..n) is well-formed UTF-8 (the rule strings in a JSON text are held to) */
int keel_json_utf8_valid(const char *s, size_t n);

/* Writes s as a JSON string literal, quotes included, into out[0..cap); returns the length it
 * needs (like snprintf), so a caller may size a buffer with cap 0. */
size_t keel_json_quote(const char *s, char *out, size_t cap);

/* JSON text [p, p+n) (e.g. a tool call's raw arguments) as the inside of the string literal holding
 * it, handed to sink(ctx, run, len) in runs (some empty): '"' and '\\' escaped, \n \r \t as
 * such and other control characters as \u00XX (valid JSON text holds raw only the whitespace
 * between its tokens); every other byte as it is. Returns 0, or the first nonzero value sink
 * returned (it is not called again). */
int keel_json_escape(const char *p, size_t n, int (*sink)(void *ctx, const char *run, size_t len), void *ctx);

#endif
