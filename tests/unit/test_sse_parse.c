/* test_sse_parse.c - the SSE reader on every framing the spec allows, each input also fed split
 * at every byte and one byte at a time: the events must not depend on how reads fall. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "core/sse_parse.h"

struct seen {
    char log[4096];
    size_t len;
    int stop_after; /* stop the feed after this many events (0 = never) */
    int events;
};

static int on_event(void *ctx, const char *event, const char *data, size_t len)
{
    struct seen *s = ctx;
    s->len += (size_t)snprintf(s->log + s->len, sizeof(s->log) - s->len, "[%s|%.*s]", event, (int)len, data);
    assert_int_equal(data[len], '\0'); /* documented: data is NUL-terminated */
    s->events++;
    return s->stop_after && s->events >= s->stop_after ? 42 : 0;
}

static int on_comment(void *ctx, const char *text, size_t len)
{
    struct seen *s = ctx;
    s->len += (size_t)snprintf(s->log + s->len, sizeof(s->log) - s->len, "(#%.*s)", (int)len, text);
    return 0;
}

/* feeds `in` in pieces cut at the given points (ascending), returns what was seen */
static int feed_split(const char *in, const size_t *cuts, size_t ncuts, struct seen *s, size_t max_line)
{
    struct keel_sse_parser p;
    memset(s, 0, sizeof(*s));
    keel_sse_parser_init(&p, max_line, on_event, on_comment, s);
    size_t len = strlen(in), from = 0;
    int rv = 0;
    for (size_t i = 0; i <= ncuts && rv == 0; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        rv = keel_sse_parser_feed(&p, in + from, to - from);
        from = to;
    }
    keel_sse_parser_release(&p);
    return rv;
}

/* the same events whole, split at every byte, and byte by byte */
static void check(const char *in, const char *want)
{
    struct seen s;
    assert_int_equal(feed_split(in, NULL, 0, &s, 1024), 0);
    assert_string_equal(s.log, want);
    size_t len = strlen(in);
    for (size_t cut = 0; cut <= len; cut++) {
        assert_int_equal(feed_split(in, &cut, 1, &s, 1024), 0);
        assert_string_equal(s.log, want);
    }
    size_t cuts[512];
    assert_true(len < 512);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    assert_int_equal(feed_split(in, cuts, len, &s, 1024), 0);
    assert_string_equal(s.log, want);
}

static void test_lf(void **state)
{
    check("data: hello\n\ndata: world\n\n", "[message|hello][message|world]");
}

static void test_crlf(void **state)
{
    check("data: hello\r\n\r\ndata: world\r\n\r\n", "[message|hello][message|world]");
}

static void test_cr(void **state)
{
    check("data: hello\r\rdata: world\r\r", "[message|hello][message|world]");
}

static void test_mixed_line_ends(void **state)
{
    check("data: a\r\ndata: b\rdata: c\n\r\n", "[message|a\nb\nc]");
}

static void test_multiline_data(void **state)
{
    check("data: {\"a\":\ndata: 1}\n\n", "[message|{\"a\":\n1}]");
}

static void test_comments(void **state)
{
    check(": keep-alive\n\n:OPENROUTER PROCESSING\n\ndata: x\n\n", "(# keep-alive)(#OPENROUTER PROCESSING)[message|x]");
}

static void test_event_name_and_ignored_fields(void **state)
{
    check("event: error\nid: 7\nretry: 100\ndata: {}\n\ndata: after\n\n", "[error|{}][message|after]");
}

static void test_no_space_and_no_colon(void **state)
{
    check("data:x\n\ndata\n\n", "[message|x][message|]");
}

static void test_only_one_space_stripped(void **state)
{
    check("data:  two\n\n", "[message| two]");
}

static void test_event_without_data_is_not_dispatched(void **state)
{
    check("event: ping\n\n\n\ndata: y\n\n", "[message|y]");
}

static void test_done_sentinel(void **state)
{
    check("data: [DONE]\n\n", "[message|[DONE]]");
}

static void test_unterminated_event_is_pending(void **state)
{
    struct keel_sse_parser p;
    struct seen s = {0};
    keel_sse_parser_init(&p, 1024, on_event, on_comment, &s);
    assert_int_equal(keel_sse_parser_feed(&p, "data: x\n\ndata: half", 19), 0);
    assert_string_equal(s.log, "[message|x]");
    assert_true(keel_sse_parser_pending(&p));
    keel_sse_parser_release(&p);
}

static void test_line_too_long(void **state)
{
    struct seen s;
    char in[200];
    memset(in, 'a', sizeof(in));
    memcpy(in, "data: ", 6);
    in[198] = '\n';
    in[199] = '\0';
    assert_int_equal(feed_split(in, NULL, 0, &s, 64), KEEL_SSE_ETOOLONG);
    size_t cut = 100;
    assert_int_equal(feed_split(in, &cut, 1, &s, 64), KEEL_SSE_ETOOLONG);
}

static void test_event_too_long(void **state)
{
    /* many short data lines add up past the cap */
    char in[2048] = "";
    for (int i = 0; i < 40; i++)
        strcat(in, "data: 0123456789\n"); /* test code: bounded by the buffer above */
    strcat(in, "\n");
    struct seen s;
    assert_int_equal(feed_split(in, NULL, 0, &s, 128), KEEL_SSE_ETOOLONG);
}

static void test_callback_stops_feed(void **state)
{
    struct keel_sse_parser p;
    struct seen s = {.stop_after = 1};
    keel_sse_parser_init(&p, 1024, on_event, NULL, &s);
    assert_int_equal(keel_sse_parser_feed(&p, "data: 1\n\ndata: 2\n\n", 18), 42);
    assert_string_equal(s.log, "[message|1]");
    keel_sse_parser_release(&p);
}

/* Contract (sse_parse.h): a parser that returned KEEL_SSE_ETOOLONG is failed for good. Without
 * that, a later feed went on from a half-kept state and could emit an event missing the data
 * line that did not fit, or a line spliced from the bytes before and after the rejected ones. */
static void feed_after_failure(struct keel_sse_parser *p, struct seen *s)
{
    static const char more[] = "bbb\n\ndata: tail\n\ndata: ok\n\n";
    assert_int_equal(keel_sse_parser_feed(p, more, sizeof(more) - 1), KEEL_SSE_ETOOLONG);
    for (size_t i = 0; i < sizeof(more) - 1; i++) /* byte by byte too, and an empty feed */
        assert_int_equal(keel_sse_parser_feed(p, more + i, 1), KEEL_SSE_ETOOLONG);
    assert_int_equal(keel_sse_parser_feed(p, "", 0), KEEL_SSE_ETOOLONG);
    assert_int_equal(s->events, 0);
    assert_true(keel_sse_parser_pending(p)); /* bytes were dropped: the stream did not end clean */
}

static void test_unterminated_line_too_long_is_final(void **state)
{
    struct keel_sse_parser p;
    struct seen s = {0};
    char big[100];
    memset(big, 'a', sizeof(big));
    keel_sse_parser_init(&p, 64, on_event, on_comment, &s);
    assert_int_equal(keel_sse_parser_feed(&p, "data: ", 6), 0);
    assert_int_equal(keel_sse_parser_feed(&p, big, sizeof(big)), KEEL_SSE_ETOOLONG);
    feed_after_failure(&p, &s);
    assert_string_equal(s.log, "");
    keel_sse_parser_release(&p);
}

static void test_terminated_line_too_long_is_final(void **state)
{
    struct keel_sse_parser p;
    struct seen s = {0};
    char big[101];
    memset(big, 'a', sizeof(big));
    big[100] = '\n';
    keel_sse_parser_init(&p, 64, on_event, on_comment, &s);
    assert_int_equal(keel_sse_parser_feed(&p, big, sizeof(big)), KEEL_SSE_ETOOLONG);
    feed_after_failure(&p, &s);
    keel_sse_parser_release(&p);
}

static void test_event_too_long_is_final(void **state)
{
    /* the fourth data line passes the cap: its event must never be dispatched, even truncated */
    struct keel_sse_parser p;
    struct seen s = {0};
    static const char in[] = "data: 0123456789abcdef\ndata: 0123456789abcdef\ndata: 0123456789abcdef\n"
                             "data: 0123456789abcdef\n";
    keel_sse_parser_init(&p, 64, on_event, on_comment, &s);
    assert_int_equal(keel_sse_parser_feed(&p, in, sizeof(in) - 1), KEEL_SSE_ETOOLONG);
    feed_after_failure(&p, &s);
    keel_sse_parser_release(&p);
}

static void test_failed_parser_works_again_after_reinit(void **state)
{
    struct keel_sse_parser p;
    struct seen s = {0};
    char big[100];
    memset(big, 'a', sizeof(big));
    keel_sse_parser_init(&p, 64, on_event, on_comment, &s);
    assert_int_equal(keel_sse_parser_feed(&p, big, sizeof(big)), KEEL_SSE_ETOOLONG);
    keel_sse_parser_release(&p);
    keel_sse_parser_init(&p, 64, on_event, on_comment, &s);
    assert_false(keel_sse_parser_pending(&p));
    assert_int_equal(keel_sse_parser_feed(&p, "data: ok\n\n", 10), 0);
    assert_string_equal(s.log, "[message|ok]");
    keel_sse_parser_release(&p);
}

static void test_callback_stop_is_not_final(void **state)
{
    /* a callback's stop is the caller's decision, not a parser failure: the parser stays usable */
    struct keel_sse_parser p;
    struct seen s = {.stop_after = 1};
    keel_sse_parser_init(&p, 1024, on_event, NULL, &s);
    assert_int_equal(keel_sse_parser_feed(&p, "data: 1\n\n", 9), 42);
    s.stop_after = 0;
    assert_int_equal(keel_sse_parser_feed(&p, "data: 2\n\n", 9), 0);
    assert_string_equal(s.log, "[message|1][message|2]");
    keel_sse_parser_release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lf),
        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_cr),
        cmocka_unit_test(test_mixed_line_ends),
        cmocka_unit_test(test_multiline_data),
        cmocka_unit_test(test_comments),
        cmocka_unit_test(test_event_name_and_ignored_fields),
        cmocka_unit_test(test_no_space_and_no_colon),
        cmocka_unit_test(test_only_one_space_stripped),
        cmocka_unit_test(test_event_without_data_is_not_dispatched),
        cmocka_unit_test(test_done_sentinel),
        cmocka_unit_test(test_unterminated_event_is_pending),
        cmocka_unit_test(test_line_too_long),
        cmocka_unit_test(test_event_too_long),
        cmocka_unit_test(test_callback_stops_feed),
        cmocka_unit_test(test_unterminated_line_too_long_is_final),
        cmocka_unit_test(test_terminated_line_too_long_is_final),
        cmocka_unit_test(test_event_too_long_is_final),
        cmocka_unit_test(test_failed_parser_works_again_after_reinit),
        cmocka_unit_test(test_callback_stop_is_not_final),
    };
    return cmocka_run_group_tests_name("sse_parse", tests, NULL, NULL);
}
