/* test_backend.c - managed backend policy: what heals, and the crash-loop backoff. */
#include "unit.h"

#include "core/backend.h"

static void test_only_death_heals(void **state)
{
    assert_true(keel_backend_heals(KEEL_CLASS_CONNECT_ERROR));
    assert_true(keel_backend_heals(KEEL_CLASS_RESET));
    /* a read timeout is overload, not death: no restart storm on a hung server */
    assert_false(keel_backend_heals(KEEL_CLASS_FIRST_BYTE_TIMEOUT));
    assert_false(keel_backend_heals(KEEL_CLASS_STALL_TIMEOUT));
    assert_false(keel_backend_heals(KEEL_CLASS_SERVER_ERROR));
    assert_false(keel_backend_heals(KEEL_CLASS_CLIENT_GONE));
}

static void test_backoff_doubles_and_caps(void **state)
{
    assert_int_equal(keel_backend_backoff_ms(0), 0);
    assert_int_equal(keel_backend_backoff_ms(1), 500);
    assert_int_equal(keel_backend_backoff_ms(2), 1000);
    assert_int_equal(keel_backend_backoff_ms(3), 2000);
    assert_int_equal(keel_backend_backoff_ms(7), 30000);
    assert_int_equal(keel_backend_backoff_ms(1000000), 30000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_only_death_heals),
        cmocka_unit_test(test_backoff_doubles_and_caps),
    };
    return cmocka_run_group_tests_name("backend", tests, NULL, NULL);
}
