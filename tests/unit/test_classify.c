/* test_classify.c - outcome -> class, one row per line of DESIGN.md's failure table,
 * plus the rule of seed 003: an explicit upstream status wins over a nested cause. */
#include "unit.h"

#include "core/classify.h"

struct row {
    struct keel_outcome o;
    enum keel_class want;
};

static void test_table(void **state)
{
    static const struct row rows[] = {
        {{0}, KEEL_CLASS_RESET},
        {{.status = 200}, KEEL_CLASS_OK},
        {{.transport = keel_err_connect}, KEEL_CLASS_CONNECT_ERROR},
        {{.transport = keel_err_resolve}, KEEL_CLASS_CONNECT_ERROR},
        {{.transport = keel_err_tls}, KEEL_CLASS_CONNECT_ERROR},
        {{.transport = keel_err_reset}, KEEL_CLASS_RESET},
        {{.status = 200, .transport = keel_err_reset}, KEEL_CLASS_RESET},
        {{.transport = keel_err_timeout, .timeout = KEEL_TIMEOUT_FIRST_BYTE}, KEEL_CLASS_FIRST_BYTE_TIMEOUT},
        {{.status = 200, .transport = keel_err_timeout, .timeout = KEEL_TIMEOUT_STALL}, KEEL_CLASS_STALL_TIMEOUT},
        {{.status = 500}, KEEL_CLASS_SERVER_ERROR},
        {{.status = 502}, KEEL_CLASS_SERVER_ERROR},
        {{.status = 503}, KEEL_CLASS_SERVER_ERROR},
        {{.status = 504}, KEEL_CLASS_SERVER_ERROR},
        {{.status = 529}, KEEL_CLASS_OVERLOADED},
        {{.status = 503, .code = "overloaded_error"}, KEEL_CLASS_OVERLOADED},
        {{.status = 429}, KEEL_CLASS_RATE_LIMITED},
        {{.status = 429, .code = "insufficient_quota"}, KEEL_CLASS_QUOTA},
        {{.status = 402}, KEEL_CLASS_QUOTA},
        {{.status = 401}, KEEL_CLASS_AUTH},
        {{.status = 403}, KEEL_CLASS_AUTH},
        {{.status = 404}, KEEL_CLASS_NOT_FOUND},
        {{.status = 400, .code = "model_not_found"}, KEEL_CLASS_NOT_FOUND},
        {{.status = 400, .code = "context_length_exceeded"}, KEEL_CLASS_CONTEXT_LENGTH},
        {{.status = 400, .code = "content_policy_violation"}, KEEL_CLASS_BAD_REQUEST},
        {{.status = 400}, KEEL_CLASS_BAD_REQUEST},
        {{.status = 422}, KEEL_CLASS_BAD_REQUEST},
        {{.status = 200, .stream_error = 1}, KEEL_CLASS_STREAM_ERROR},
        {{.status = 200, .stream_error = 1, .code = "internal_error"}, KEEL_CLASS_STREAM_ERROR},
        {{.status = 200, .stream_error = 1, .code = "overloaded_error"}, KEEL_CLASS_OVERLOADED},
        {{.status = 200, .empty = 1}, KEEL_CLASS_EMPTY_RESPONSE},
        {{.status = 200, .malformed = 1}, KEEL_CLASS_EMPTY_RESPONSE},
        {{.status = 200, .transport = keel_err_too_large}, KEEL_CLASS_SERVER_ERROR},
        /* seed 003: the upstream's explicit status wins over a nested local-looking cause */
        {{.status = 503, .code = "session_write_lock_timeout"}, KEEL_CLASS_SERVER_ERROR},
        {{.status = 400, .code = "internal_error"}, KEEL_CLASS_BAD_REQUEST},
        {{.status = 302}, KEEL_CLASS_SERVER_ERROR},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        enum keel_class got = keel_classify(&rows[i].o);
        if (got != rows[i].want)
            fail_msg("row %zu: got %s, want %s", i, keel_class_name(got), keel_class_name(rows[i].want));
    }
}

static void test_names_are_the_contract(void **state)
{
    assert_string_equal(keel_class_name(KEEL_CLASS_CONNECT_ERROR), "connect_error");
    assert_string_equal(keel_class_name(KEEL_CLASS_FIRST_BYTE_TIMEOUT), "first_byte_timeout");
    assert_string_equal(keel_class_name(KEEL_CLASS_EMPTY_RESPONSE), "empty_response");
    assert_string_equal(keel_class_name(KEEL_CLASS_GATEWAY_BUSY), "gateway_busy");
    assert_string_equal(keel_class_name(KEEL_CLASS_DEADLINE_EXCEEDED), "deadline_exceeded");
    for (int c = 0; c < KEEL_CLASS_COUNT; c++)
        assert_non_null(keel_class_name((enum keel_class)c));
    assert_string_equal(keel_class_name(KEEL_CLASS_COUNT), "unknown");
}

/* keel's own refusals, the one list the audit report, the status page and the health verdict
 * share */
static void test_refused(void **state)
{
    for (int c = 0; c < KEEL_CLASS_COUNT; c++)
        assert_int_equal(keel_class_refused((enum keel_class)c),
                         c == KEEL_CLASS_INVALID_REQUEST || c == KEEL_CLASS_GATEWAY_BUSY || c == KEEL_CLASS_KEY_LIMITED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_names_are_the_contract),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests_name("classify", tests, NULL, NULL);
}
