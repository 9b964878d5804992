/* test_chunk.c - what counts as content progress (DESIGN.md), errors inside streams, and
 * non-stream answers with and without choices. */
#include "unit.h"

#include <string.h>

#include "core/chunk.h"

static enum keel_chunk_kind kind(const char *event, const char *data)
{
    struct keel_chunk_info info;
    keel_chunk_inspect(event, data, strlen(data), &info);
    return info.kind;
}

static void test_progress(void **state)
{
    assert_int_equal(kind("message", "{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}"), KEEL_CHUNK_PROGRESS);
    assert_int_equal(kind("message", "{\"choices\":[{\"delta\":{\"reasoning\":\"hmm\"}}]}"), KEEL_CHUNK_PROGRESS);
    assert_int_equal(kind("message", "{\"choices\":[{\"delta\":{\"reasoning_content\":\"x\"}}]}"), KEEL_CHUNK_PROGRESS);
    assert_int_equal(kind("message", "{\"choices\":[{\"delta\":{\"refusal\":\"no\"}}]}"), KEEL_CHUNK_PROGRESS);
    assert_int_equal(kind("message", "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\"}}]}}]}"),
                     KEEL_CHUNK_PROGRESS);
    /* the second choice progresses */
    assert_int_equal(kind("message", "{\"choices\":[{\"delta\":{}},{\"delta\":{\"content\":\"x\"}}]}"), KEEL_CHUNK_PROGRESS);
}

static void test_no_progress(void **state)
{
    assert_int_equal(kind("message", "{\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}"), KEEL_CHUNK_IDLE);
    assert_int_equal(kind("message", "{\"choices\":[{\"delta\":{\"content\":\"\"}}]}"), KEEL_CHUNK_IDLE);
    assert_int_equal(kind("message", "{\"choices\":[{\"delta\":{}}]}"), KEEL_CHUNK_IDLE);
    assert_int_equal(kind("message", "{\"choices\":[{\"delta\":{\"content\":null}}]}"), KEEL_CHUNK_IDLE);
    assert_int_equal(kind("message", "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":{\"arguments\":\"\"}}]}}]}"),
                     KEEL_CHUNK_IDLE);
    assert_int_equal(kind("message", "{\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}"), KEEL_CHUNK_IDLE);
}

static void test_usage_only_chunk_is_legal(void **state)
{
    struct keel_chunk_info info;
    const char *d = "{\"choices\":[],\"usage\":{\"total_tokens\":9}}";
    keel_chunk_inspect("message", d, strlen(d), &info);
    assert_int_equal(info.kind, KEEL_CHUNK_IDLE);
    assert_true(info.has_usage);
    assert_int_equal(info.usage.cached_tokens, 0);
    /* OpenAI's cached prompt tokens */
    d = "{\"choices\":[],\"usage\":{\"prompt_tokens\":2006,\"completion_tokens\":300,\"total_tokens\":2306,"
        "\"prompt_tokens_details\":{\"cached_tokens\":1920}}}";
    keel_chunk_inspect("message", d, strlen(d), &info);
    assert_int_equal(info.usage.prompt_tokens, 2006);
    assert_int_equal(info.usage.cached_tokens, 1920);
}

static void test_errors_and_sentinels(void **state)
{
    struct keel_chunk_info info;
    const char *d = "{\"error\":{\"message\":\"INTERNAL_ERROR\",\"code\":\"internal_error\"}}";
    keel_chunk_inspect("message", d, strlen(d), &info);
    assert_int_equal(info.kind, KEEL_CHUNK_ERROR);
    assert_string_equal(info.error_code, "internal_error");
    d = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}";
    keel_chunk_inspect("message", d, strlen(d), &info);
    assert_int_equal(info.kind, KEEL_CHUNK_ERROR);
    assert_string_equal(info.error_code, "overloaded_error");
    assert_int_equal(kind("error", "{\"message\":\"boom\"}"), KEEL_CHUNK_ERROR);
    assert_int_equal(kind("error", "not json"), KEEL_CHUNK_ERROR);
    assert_int_equal(kind("message", "[DONE]"), KEEL_CHUNK_DONE);
    assert_int_equal(kind("message", "{\"choices\":[{\"delta\":"), KEEL_CHUNK_MALFORMED);
    assert_int_equal(kind("message", "[1,2]"), KEEL_CHUNK_MALFORMED);
}

static void test_answers(void **state)
{
    char code[64];
    const char *ok = "{\"choices\":[{\"message\":{\"content\":\"hi\"}}]}";
    assert_int_equal(keel_answer_inspect(ok, strlen(ok), code, sizeof(code), NULL), KEEL_ANSWER_OK);
    const char *empty = "{\"id\":\"x\",\"choices\":[]}";
    assert_int_equal(keel_answer_inspect(empty, strlen(empty), code, sizeof(code), NULL), KEEL_ANSWER_EMPTY);
    const char *none = "{\"id\":\"x\"}";
    assert_int_equal(keel_answer_inspect(none, strlen(none), code, sizeof(code), NULL), KEEL_ANSWER_EMPTY);
    const char *err = "{\"error\":{\"message\":\"x\",\"type\":\"server_error\"}}";
    assert_int_equal(keel_answer_inspect(err, strlen(err), code, sizeof(code), NULL), KEEL_ANSWER_ERROR);
    assert_string_equal(code, "server_error");
    assert_int_equal(keel_answer_inspect("{\"choices\":[", 12, code, sizeof(code), NULL), KEEL_ANSWER_MALFORMED);
    assert_int_equal(keel_answer_inspect("", 0, code, sizeof(code), NULL), KEEL_ANSWER_MALFORMED);
    /* an empty body may come as no buffer at all (fuzz_upstream: clang's UBSan saw NULL + 0) */
    assert_int_equal(keel_answer_inspect(NULL, 0, code, sizeof(code), NULL), KEEL_ANSWER_MALFORMED);
    /* "error": null is no error (some providers send it with every answer and chunk) */
    const char *nullerr = "{\"error\":null,\"choices\":[]}";
    assert_int_equal(keel_answer_inspect(nullerr, strlen(nullerr), code, sizeof(code), NULL), KEEL_ANSWER_EMPTY);
    assert_int_equal(kind("message", "{\"error\":null,\"choices\":[{\"delta\":{\"content\":\"x\"}}]}"),
                     KEEL_CHUNK_PROGRESS);
    struct keel_usage u = {0};
    const char *withu = "{\"choices\":[{}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":4,\"total_tokens\":9}}";
    assert_int_equal(keel_answer_inspect(withu, strlen(withu), code, sizeof(code), &u), KEEL_ANSWER_OK);
    assert_true(u.present);
    assert_int_equal(u.prompt_tokens, 5);
    assert_int_equal(u.total_tokens, 9);
}

static void test_error_codes(void **state)
{
    char code[64];
    const char *a = "{\"error\":{\"message\":\"m\",\"type\":\"invalid_request_error\",\"code\":\"context_length_exceeded\"}}";
    keel_error_code(a, strlen(a), code, sizeof(code));
    assert_string_equal(code, "context_length_exceeded");
    const char *b = "{\"error\":{\"message\":\"m\",\"code\":502}}";
    keel_error_code(b, strlen(b), code, sizeof(code));
    assert_string_equal(code, "502");
    const char *c = "<html>bad gateway</html>";
    keel_error_code(c, strlen(c), code, sizeof(code));
    assert_string_equal(code, "");
    const char *d = "{\"error\":\"overloaded\"}";
    keel_error_code(d, strlen(d), code, sizeof(code));
    assert_string_equal(code, "overloaded");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_no_progress),
        cmocka_unit_test(test_usage_only_chunk_is_legal),
        cmocka_unit_test(test_errors_and_sentinels),
        cmocka_unit_test(test_answers),
        cmocka_unit_test(test_error_codes),
    };
    return cmocka_run_group_tests_name("chunk", tests, NULL, NULL);
}
