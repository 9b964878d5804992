/* test_units.c - the one checked number parser: durations, sizes, counts, and what it refuses. */
#include "unit.h"

#include "core/units.h"

static void test_durations(void **state)
{
    uint64_t v;
    assert_int_equal(keel_parse_duration_ms("250ms", &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(keel_parse_duration_ms("5s", &v), 0);
    assert_int_equal(v, 5000);
    assert_int_equal(keel_parse_duration_ms("2m", &v), 0);
    assert_int_equal(v, 120000);
    assert_int_equal(keel_parse_duration_ms("1h", &v), 0);
    assert_int_equal(v, 3600000);
    v = 7;
    assert_int_not_equal(keel_parse_duration_ms("5", &v), 0);
    assert_int_not_equal(keel_parse_duration_ms("s", &v), 0);
    assert_int_not_equal(keel_parse_duration_ms("-5s", &v), 0);
    assert_int_not_equal(keel_parse_duration_ms("5 s", &v), 0);
    assert_int_not_equal(keel_parse_duration_ms("1.5s", &v), 0);
    assert_int_not_equal(keel_parse_duration_ms("", &v), 0);
    assert_int_not_equal(keel_parse_duration_ms("99999999999999999999ms", &v), 0);
    assert_int_not_equal(keel_parse_duration_ms("18446744073709551615h", &v), 0);
    assert_int_equal(v, 7); /* untouched on error */
}

static void test_sizes_and_counts(void **state)
{
    uint64_t v;
    assert_int_equal(keel_parse_size("512k", &v), 0);
    assert_int_equal(v, 512 * 1024);
    assert_int_equal(keel_parse_size("8m", &v), 0);
    assert_int_equal(v, 8 << 20);
    assert_int_equal(keel_parse_size("1GiB", &v), 0);
    assert_int_equal(v, 1u << 30);
    assert_int_equal(keel_parse_size("100", &v), 0);
    assert_int_equal(v, 100);
    assert_int_not_equal(keel_parse_size("8mb", &v), 0);
    assert_int_equal(keel_parse_count("32k", &v), 0);
    assert_int_equal(v, 32000);
    assert_int_equal(keel_parse_uint("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_not_equal(keel_parse_uint("0x10", &v), 0);
    assert_int_not_equal(keel_parse_uint("+1", &v), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes_and_counts),
    };
    return cmocka_run_group_tests_name("units", tests, NULL, NULL);
}
