/* test_json.c - the span scanner: RFC 8259 grammar accepted and rejected, lookups (escaped
 * keys, repeated keys, nesting), string decoding, quoting and escaping. */
#include "unit.h"

#include <string.h>

#include "core/json.h"

static int valid(const char *s)
{
    struct keel_json root;
    return keel_json_parse(s, strlen(s), &root) == 0;
}

static struct keel_json root_of(const char *s)
{
    struct keel_json root = {NULL, 0};
    assert_int_equal(keel_json_parse(s, strlen(s), &root), 0);
    return root;
}

static void test_accepts(void **state)
{
    const char *ok[] = {
        "{}", "[]", " {\"a\" : [1, -2.5e+3, 0, 0.0, 1E9, true, false, null, \"x\"]} ", "\"\"", "0", "-0", "123",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"", "\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
        "[[[[[]]]]]", "{\"a\":{\"b\":{\"c\":{}}}}", "\t\r\n[ ]\n",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (!valid(ok[i]))
            fail_msg("rejected %s", ok[i]);
    }
}

static void test_rejects(void **state)
{
    const char *bad[] = {
        "", " ", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "[,1]", "{a:1}", "{'a':1}", "01", "1.",
        ".5", "-", "1e", "+1", "0x10", "tru", "truex", "nul", "NaN", "Infinity", "\"abc", "\"a\nb\"", "\"\\x\"",
        "\"\\u12\"", "\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83d\\u0041\"", "\"\xc3\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"", "\"\xff\"", "{} {}", "[1] x", "{\"a\":1 \"b\":2}", "[1 2]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (valid(bad[i]))
            fail_msg("accepted %s", bad[i]);
    }
    assert_false(keel_json_parse("[1]", 2, &(struct keel_json){0}) == 0); /* the length bounds it */
}

static void test_depth(void **state)
{
    char deep[2 * 600 + 1];
    for (int n = 500; n <= 600; n += 100) {
        memset(deep, '[', (size_t)n);
        memset(deep + n, ']', (size_t)n);
        deep[2 * n] = '\0';
        assert_int_equal(valid(deep), n <= 512);
    }
}

static void test_get(void **state)
{
    const char *s = "{\"model\" : \"gpt\", \"n\":{\"model\":\"inner\"}, \"stream\":true, \"m\\u006fdel\":\"esc\", "
                    "\"arr\":[1,{\"k\":2}],\"model\":\"last\"}";
    struct keel_json root = root_of(s);
    char buf[32];
    assert_int_equal(keel_json_type(root), KEEL_JSON_OBJECT);
    /* the last "model", spelled with an escape or not, wins; nested ones are not members */
    struct keel_json m = keel_json_get(root, "model");
    assert_int_equal(keel_json_string(m, buf, sizeof(buf)), 4);
    assert_string_equal(buf, "last");
    assert_int_equal(m.p - s, (long)(strstr(s, "\"last\"") - s));
    assert_int_equal(m.len, 6);
    assert_int_equal(keel_json_type(keel_json_get(root, "stream")), KEEL_JSON_TRUE);
    assert_null(keel_json_get(root, "k").p);
    assert_null(keel_json_get(root, "mod").p);
    assert_int_equal(keel_json_type(keel_json_get(root, "absent")), KEEL_JSON_NONE);
    assert_null(keel_json_get(keel_json_get(root, "arr"), "k").p); /* not an object */

    struct keel_json arr = keel_json_get(root, "arr"), v;
    size_t pos = 0, n = 0;
    long long i;
    while (keel_json_next(arr, &pos, NULL, &v))
        n++;
    assert_int_equal(n, 2);
    pos = 0;
    assert_true(keel_json_next(arr, &pos, NULL, &v));
    assert_int_equal(keel_json_int(v, &i), 0);
    assert_int_equal(i, 1);
    assert_true(keel_json_next(arr, &pos, NULL, &v));
    assert_int_equal(keel_json_int(keel_json_get(v, "k"), &i), 0);
    assert_int_equal(i, 2);
    assert_false(keel_json_next(arr, &pos, NULL, &v));

    pos = 0;
    assert_false(keel_json_next(root_of(" [ ] "), &pos, NULL, &v));
    pos = 0;
    assert_false(keel_json_next(root_of("{ }"), &pos, NULL, &v));

    struct keel_json k;
    pos = 0;
    n = 0;
    while (keel_json_next(root, &pos, &k, &v))
        n++;
    assert_int_equal(n, 6);
}

static void test_strings_and_numbers(void **state)
{
    char buf[16];
    long long i;
    assert_int_equal(keel_json_string(root_of("\"a\\u00e9\\ud83d\\ude00\\n\""), buf, sizeof(buf)), 8);
    assert_string_equal(buf, "a\xc3\xa9\xf0\x9f\x98\x80\n");
    /* truncated to fit, still the full length */
    assert_int_equal(keel_json_string(root_of("\"abcdefghijklmnopqrstuvwxyz\""), buf, sizeof(buf)), 26);
    assert_string_equal(buf, "abcdefghijklmno");
    assert_int_equal(keel_json_string(root_of("\"a\\u0000b\""), buf, sizeof(buf)), -1);
    assert_int_equal(keel_json_string(root_of("12"), buf, sizeof(buf)), -1);
    assert_true(keel_json_nonempty(root_of("\"x\"")));
    assert_false(keel_json_nonempty(root_of("\"\"")));
    assert_false(keel_json_nonempty(root_of("1")));
    assert_int_equal(keel_json_int(root_of("-42"), &i), 0);
    assert_int_equal(i, -42);
    assert_int_equal(keel_json_int(root_of("1.5"), &i), -1);
    assert_int_equal(keel_json_int(root_of("1e3"), &i), -1);
    assert_int_equal(keel_json_int(root_of("99999999999999999999"), &i), -1);
    assert_int_equal(keel_json_int(root_of("\"1\""), &i), -1);
}

static void test_quote(void **state)
{
    char buf[64];
    assert_int_equal(keel_json_quote("a\"b\\c\n", buf, sizeof(buf)), 15);
    assert_string_equal(buf, "\"a\\\"b\\\\c\\u000a\"");
    assert_int_equal(keel_json_quote("gpt-4o", NULL, 0), 8);
    assert_int_equal(keel_json_quote("gpt-4o", buf, 4), 8);
    assert_string_equal(buf, "\"gp");
    /* what it writes reads back as what it was given */
    char out[64];
    keel_json_quote("h\xc3\xa9 \"x\"\t", buf, sizeof(buf));
    assert_int_equal(keel_json_string(root_of(buf), out, sizeof(out)), 8);
    assert_string_equal(out, "h\xc3\xa9 \"x\"\t");
}

/* keel_json_escape's runs gathered into a string literal's inside; fail_at: the call that fails */
struct sink {
    char buf[128];
    size_t len;
    int calls, fail_at;
};

static int into(void *ctx, const char *p, size_t n)
{
    struct sink *k = ctx;
    if (++k->calls == k->fail_at)
        return -7;
    assert_true(k->len + n <= sizeof(k->buf));
    memcpy(k->buf + k->len, p, n);
    k->len += n;
    return 0;
}

static void test_escape(void **state)
{
    static const char raw[] = "{\"a\": \"x\\\"y\",\n\t\"b\":\r\"\x01\xc3\xa9\"}";
    static const char want[] = "{\\\"a\\\": \\\"x\\\\\\\"y\\\",\\n\\t\\\"b\\\":\\r\\\"\\u0001\xc3\xa9\\\"}";
    struct sink k = {.fail_at = 0};
    assert_int_equal(keel_json_escape(raw, sizeof(raw) - 1, into, &k), 0);
    assert_int_equal(k.len, sizeof(want) - 1);
    assert_memory_equal(k.buf, want, k.len);
    /* in quotes it is a literal whose value is the text */
    char lit[160], out[64];
    lit[0] = '"';
    memcpy(lit + 1, k.buf, k.len);
    lit[k.len + 1] = '"';
    struct keel_json v;
    assert_int_equal(keel_json_parse(lit, k.len + 2, &v), 0);
    assert_int_equal(keel_json_string(v, out, sizeof(out)), (long)sizeof(raw) - 1);
    assert_memory_equal(out, raw, sizeof(raw) - 1);
    /* nothing to escape: one run; nothing at all: one empty run */
    k = (struct sink){.fail_at = 0};
    assert_int_equal(keel_json_escape("[1, 2]", 6, into, &k), 0);
    assert_int_equal(k.calls, 1);
    assert_int_equal(k.len, 6);
    k = (struct sink){.fail_at = 0};
    assert_int_equal(keel_json_escape("", 0, into, &k), 0);
    assert_int_equal(k.len, 0);
    /* the sink's first failure is returned and it is not called again */
    for (int at = 1; at <= 3; at++) {
        k = (struct sink){.fail_at = at};
        assert_int_equal(keel_json_escape("\"a\"", 3, into, &k), -7);
        assert_int_equal(k.calls, at);
    }
}

/* the strings a JSON text may hold: ASCII, 2- to 4-byte sequences; no cut sequence, overlong,
 * surrogate or code point past U+10FFFF */
static void test_utf8_valid(void **state)
{
    static const char *const good[] = {"", "plain", "caf\xc3\xa9", "\xe2\x98\x95", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf"};
    static const char *const bad[] = {"\xff", "bad\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                      "\xe2\x98"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(keel_json_utf8_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(keel_json_utf8_valid(bad[i], strlen(bad[i])));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_strings_and_numbers),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_utf8_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
