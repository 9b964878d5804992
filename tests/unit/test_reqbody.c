/* test_reqbody.c - an attempt's body: the client's bytes with only the model replaced, and, for
 * a non-stream client whose target streams (stream_upstream), stream and usage asked for. */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/reqbody.h"

/* the spans as intake.c finds them */
static struct keel_reqbody spans_of(const char *body)
{
    struct keel_json root, k, v;
    size_t pos = 0;
    struct keel_reqbody at = {0};
    assert_int_equal(keel_json_parse(body, strlen(body), &root), 0);
    at.root_at = (size_t)(root.p - body);
    while (keel_json_next(root, &pos, &k, &v)) {
        char key[32];
        keel_json_string(k, key, sizeof(key));
        size_t off = (size_t)(v.p - body);
        if (strcmp(key, "model") == 0)
            at.model_at = off, at.model_len = v.len;
        else if (strcmp(key, "stream") == 0)
            at.stream_at = off, at.stream_len = v.len;
        else if (strcmp(key, "stream_options") == 0)
            at.options_at = off, at.options_len = v.len;
    }
    return at;
}

static void check(const char *body, const char *model, enum keel_reqbody_ask ask, const char *want)
{
    struct keel_reqbody at = spans_of(body);
    size_t len = 0;
    char *out = keel_reqbody_for(body, strlen(body), &at, model, ask, &len);
    assert_non_null(out);
    assert_string_equal(out, want);
    assert_int_equal(len, strlen(want));
    struct keel_json root;
    assert_int_equal(keel_json_parse(out, len, &root), 0);
    free(out);
}

static void test_model_only(void **state)
{
    /* everything else byte for byte: spacing, float digits, escapes, key order */
    check("{\"model\" : \"fast\", \"temperature\":0.70, \"messages\":[{\"content\":\"\\u00e9\"}]}", "gpt-4o", KEEL_REQBODY_AS_SENT,
          "{\"model\" : \"gpt-4o\", \"temperature\":0.70, \"messages\":[{\"content\":\"\\u00e9\"}]}");
    check("{\"stream\":false,\"model\":\"m\"}", "a\"b", KEEL_REQBODY_AS_SENT, "{\"stream\":false,\"model\":\"a\\\"b\"}");
}

static void test_ask_stream_inserts(void **state)
{
    check("  {\"model\":\"fast\",\"messages\":[]}", "x", KEEL_REQBODY_STREAM_USAGE,
          "  {\"stream\":true,\"stream_options\":{\"include_usage\":true},\"model\":\"x\",\"messages\":[]}");
}

static void test_ask_stream_replaces(void **state)
{
    check("{\"messages\":[],\"stream\":false,\"model\":\"fast\",\"stream_options\":{\"include_usage\":false}}", "x", KEEL_REQBODY_STREAM_USAGE,
          "{\"messages\":[],\"stream\":true,\"model\":\"x\",\"stream_options\":{\"include_usage\":true}}");
    check("{\"model\":\"fast\",\"stream\":null}", "longer-name", KEEL_REQBODY_STREAM_USAGE,
          "{\"stream_options\":{\"include_usage\":true},\"model\":\"longer-name\",\"stream\":true}");
}

/* an Anthropic target: stream only (its streams always carry usage); any stream_options the
 * client wrote is its own business and stays as written */
static void test_ask_stream_only(void **state)
{
    check("{\"model\":\"fast\",\"max_tokens\":5}", "claude", KEEL_REQBODY_STREAM,
          "{\"stream\":true,\"model\":\"claude\",\"max_tokens\":5}");
    check("{\"stream\":false,\"model\":\"fast\"}", "claude", KEEL_REQBODY_STREAM,
          "{\"stream\":true,\"model\":\"claude\"}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_only),
        cmocka_unit_test(test_ask_stream_inserts),
        cmocka_unit_test(test_ask_stream_replaces),
        cmocka_unit_test(test_ask_stream_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
