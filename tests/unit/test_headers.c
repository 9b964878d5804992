/* test_headers.c - the allowlists of core/headers.h: what crosses, in any case, and what never does. */
#include "unit.h"

#include <string.h>

#include "core/headers.h"

#define UP(name, kind) keel_header_up(name, strlen(name), kind)
#define BACK(name) keel_header_back(name, strlen(name))

static void test_up(void **state)
{
    (void)state;
    assert_true(UP("idempotency-key", "openai"));
    assert_true(UP("Idempotency-Key", "anthropic"));
    assert_true(UP("traceparent", "anthropic"));
    assert_true(UP("tracestate", "openai"));
    assert_true(UP("OpenAI-Organization", "openai"));
    assert_false(UP("openai-organization", "anthropic"));
    assert_true(UP("openai-project", "openai"));
    assert_true(UP("HTTP-Referer", "openai"));
    assert_true(UP("X-Title", "openai"));
    assert_false(UP("x-title", "anthropic"));
    assert_true(UP("anthropic-beta", "anthropic"));
    assert_false(UP("anthropic-beta", "openai"));
    /* credentials and everything unlisted stay with keel */
    assert_false(UP("authorization", "openai"));
    assert_false(UP("x-api-key", "anthropic"));
    assert_false(UP("cookie", "openai"));
    assert_false(UP("idempotency-ke", "openai"));
    assert_false(UP("idempotency-keys", "openai"));
    assert_false(keel_header_up("traceparent", 5, "openai")); /* a prefix of a name is not the name */
}

static void test_back(void **state)
{
    (void)state;
    assert_true(BACK("x-request-id"));
    assert_true(BACK("Request-Id"));
    assert_true(BACK("openai-processing-ms"));
    assert_true(BACK("retry-after"));
    assert_true(BACK("x-ratelimit-remaining-requests"));
    assert_true(BACK("X-RateLimit-Reset-Tokens"));
    assert_true(BACK("anthropic-ratelimit-tokens-remaining"));
    assert_false(BACK("x-ratelimit-")); /* a family's prefix alone is no header of it */
    assert_false(BACK("set-cookie"));
    assert_false(BACK("content-length"));
    assert_false(BACK("x-request-ids"));
    assert_false(BACK("openai-organization"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_up),
        cmocka_unit_test(test_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
