/* texts.h - the texts tests write and feed: JSON written with ' for " to stay readable (\' is an
 * escaped quote), whether a text is JSON to jansson, an SSE text fed in pieces. Static helpers,
 * included by the test files that use them. */
#ifndef KEEL_TEST_TEXTS_H
#define KEEL_TEST_TEXTS_H

#include <jansson.h>
#include <string.h>

#include "core/sse_parse.h"

/* s with every ' turned into ", into out (NUL-terminated); its length */
static size_t dq(const char *s, char *out, size_t cap)
{
    size_t n = strlen(s);
    assert_true(n < cap);
    for (size_t i = 0; i <= n; i++)
        out[i] = s[i] == '\'' ? '"' : s[i];
    return n;
}

static void assert_json(const char *text, size_t len)
{
    json_error_t err;
    json_t *v = json_loadb(text, len, 0, &err);
    if (v == NULL)
        fail_msg("not JSON (%s at %d): %.*s", err.text, err.position, (int)len, text);
    json_decref(v);
}

/* text[0..len) into p cut at cuts[0..ncuts) (ascending): every feed goes through, and no event
 * is left pending at the end */
static void feed_pieces(struct keel_sse_parser *p, const char *text, size_t len, const size_t *cuts, size_t ncuts)
{
    size_t from = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        assert_int_equal(keel_sse_parser_feed(p, text + from, to - from), 0);
        from = to;
    }
    assert_false(keel_sse_parser_pending(p));
}

#endif
