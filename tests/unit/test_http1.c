/* test_http1.c - HTTP/1.1 request framing (core/http1.h): heads parsed in place (names
 * lowercased, values trimmed, bare LFs, leading empty lines), every malformed shape refused, the
 * field limit; tokens in a value; the path's dot segments and absolute form; a chunked body
 * decoded whole, fed a byte at a time, with extensions and trailers, malformed, past max. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "core/http1.h"

static int parse(const char *text, struct keel_http1_head *hd, struct keel_http1_field *f, size_t max)
{
    static char buf[4096];
    size_t n = strlen(text);
    assert_true(n < sizeof(buf));
    memcpy(buf, text, n);
    return keel_http1_parse_head(buf, n, hd, f, max);
}

static void test_head(void **state)
{
    (void)state;
    struct keel_http1_head hd;
    struct keel_http1_field f[8];
    assert_int_equal(parse("\r\nPOST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: k\r\nX-Key:\t v a \t\r\n"
                           "Content-Length:2\r\n\r\n",
                           &hd, f, 8),
                     0);
    assert_int_equal(hd.mlen, 4);
    assert_memory_equal(hd.method, "POST", 4);
    assert_int_equal(hd.tlen, strlen("/v1/chat/completions?x=1"));
    assert_memory_equal(hd.target, "/v1/chat/completions?x=1", hd.tlen);
    assert_int_equal(hd.minor, 1);
    assert_int_equal(hd.nfields, 3);
    assert_true(keel_http1_is(&f[0], "host"));
    assert_true(keel_http1_is(&f[1], "x-key"));
    assert_int_equal(f[1].vlen, 3); /* "v a": inner whitespace kept, the ends trimmed */
    assert_memory_equal(f[1].value, "v a", 3);
    assert_true(keel_http1_is(&f[2], "content-length"));
    assert_memory_equal(f[2].value, "2", 1);
    /* bare LFs, HTTP/1.0, no fields */
    assert_int_equal(parse("GET / HTTP/1.0\n\n", &hd, f, 8), 0);
    assert_int_equal(hd.minor, 0);
    assert_int_equal(hd.nfields, 0);
}

static void test_malformed(void **state)
{
    (void)state;
    struct keel_http1_head hd;
    struct keel_http1_field f[8];
    static const char *const bad[] = {
        "GET / HTTP/2.0\r\n\r\n",             /* not HTTP/1.x */
        "GET / HTTP/1.1x\r\n\r\n",            /* trailing bytes after the version */
        "GET  / HTTP/1.1\r\n\r\n",            /* an empty target */
        " GET / HTTP/1.1\r\n\r\n",            /* no method */
        "G(T / HTTP/1.1\r\n\r\n",             /* a method that is no token */
        "GET /a\x01 HTTP/1.1\r\n\r\n",        /* a control in the target */
        "GET / HTTP/1.1\r\nx-a : 1\r\n\r\n",  /* whitespace before the colon */
        "GET / HTTP/1.1\r\n: 1\r\n\r\n",      /* no name */
        "GET / HTTP/1.1\r\nx-a 1\r\n\r\n",    /* no colon */
        "GET / HTTP/1.1\r\nx-a: 1\r\n  2\r\n\r\n", /* a folded line */
        "GET / HTTP/1.1\r\nx-a: 1\x01\r\n\r\n", /* a control in a value */
        "GET / HTTP/1.1\r\nx-a: 1\r\n",       /* no blank line */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &hd, f, 8) != -1)
            fail_msg("accepted: %s", bad[i]);
    }
    assert_int_equal(parse("GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n", &hd, f, 2), -2);
    assert_int_equal(parse("GET / HTTP/1.1\r\na: 1\r\nb: 2\r\n\r\n", &hd, f, 2), 0);
}

static void test_tokens(void **state)
{
    (void)state;
    const char *v = "keep-alive, Close ,upgrade";
    assert_true(keel_http1_has_token(v, strlen(v), "close"));
    assert_true(keel_http1_has_token(v, strlen(v), "keep-alive"));
    assert_true(keel_http1_has_token(v, strlen(v), "upgrade"));
    assert_false(keel_http1_has_token(v, strlen(v), "clos"));
    assert_false(keel_http1_has_token("closed", 6, "close"));
    assert_false(keel_http1_has_token("", 0, "close"));
}

static void check_path(const char *in, const char *want)
{
    char buf[256];
    size_t n = strlen(in);
    memcpy(buf, in, n);
    n = keel_http1_normalize_path(buf, n);
    if (n != strlen(want) || memcmp(buf, want, n) != 0)
        fail_msg("%s -> %.*s, want %s", in, (int)n, buf, want);
}

static void test_path(void **state)
{
    (void)state;
    check_path("/v1/chat/completions", "/v1/chat/completions");
    check_path("/v1/./chat/completions", "/v1/chat/completions");
    check_path("/v1/x/../chat/completions", "/v1/chat/completions");
    check_path("/v1/chat/.", "/v1/chat/");
    check_path("/v1/chat/..", "/v1/");
    check_path("/../../etc", "/etc");
    check_path("/..", "/");
    check_path("/.hidden/a", "/.hidden/a"); /* a name that starts with a dot is a name */
    check_path("http://example.com/v1/models", "/v1/models");
    check_path("https://example.com", "/");
}

/* feeds body in steps of `step` bytes to a buffer that holds a 5-byte "head" first */
static int dechunk(const char *body, size_t step, size_t max, char *out, size_t *outlen)
{
    char in[1024];
    size_t blen = strlen(body), len = 5;
    memcpy(in, "HEAD\n", 5);
    struct keel_http1_chunked c = {.base = 5, .raw = 5, .dst = 5};
    int rv = 0;
    for (size_t fed = 0; fed < blen && rv == 0;) {
        size_t n = blen - fed < step ? blen - fed : step;
        memcpy(in + len, body + fed, n);
        len += n;
        fed += n;
        rv = keel_http1_dechunk(&c, in, len, max);
    }
    if (rv == 1) {
        memcpy(out, in + 5, c.dst - 5);
        *outlen = c.dst - 5;
        assert_int_equal(c.raw, 5 + blen); /* the request ends where the body does */
    }
    return rv;
}

static void test_chunked(void **state)
{
    (void)state;
    static const char body[] = "5;ext=1\r\nhello\r\n6\r\n world\r\nA\r\n, chunked!\r\n0\r\nx-trailer: t\r\n\r\n";
    char out[256];
    size_t n;
    for (size_t step = 1; step <= sizeof(body); step++) {
        assert_int_equal(dechunk(body, step, 1000, out, &n), 1);
        assert_int_equal(n, 21);
        assert_memory_equal(out, "hello world, chunked!", 21);
    }
    assert_int_equal(dechunk("0\r\n\r\n", 1, 1000, out, &n), 1);
    assert_int_equal(n, 0);
    assert_int_equal(dechunk("5\r\nhello\r\n", 64, 1000, out, &n), 0); /* more is needed */
    assert_int_equal(dechunk("zz\r\n", 64, 1000, out, &n), -1);
    assert_int_equal(dechunk("5\r\nhelloXX0\r\n\r\n", 64, 1000, out, &n), -1); /* no CRLF after data */
    assert_int_equal(dechunk("ffffffffffffffffff\r\n", 64, 1000, out, &n), -1); /* overflows */
    assert_int_equal(dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 64, 10, out, &n), -2);
    assert_int_equal(dechunk("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 64, 10, out, &n), 1); /* exactly max */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head),   cmocka_unit_test(test_malformed), cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_path),   cmocka_unit_test(test_chunked),
    };
    return cmocka_run_group_tests_name("http1", tests, NULL, NULL);
}
