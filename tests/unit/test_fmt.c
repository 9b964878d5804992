/* test_fmt.c - bounded formatting without printf: numbers at their edges, hex padding, text cut
 * at the buffer's end and said so, always NUL-terminated. */
#include "unit.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "core/fmt.h"

static void test_numbers(void **state)
{
    char buf[128], want[128];
    struct keel_fmt f;
    keel_fmt_init(&f, buf, sizeof(buf));
    keel_fmt_u64(&f, 0);
    keel_fmt_str(&f, ",");
    keel_fmt_u64(&f, UINT64_MAX);
    keel_fmt_str(&f, ",");
    keel_fmt_i64(&f, -7);
    keel_fmt_str(&f, ",");
    keel_fmt_i64(&f, LLONG_MIN);
    keel_fmt_str(&f, ",");
    keel_fmt_i64(&f, LLONG_MAX);
    keel_fmt_str(&f, ",");
    keel_fmt_hex(&f, 0xabcULL, 16);
    keel_fmt_str(&f, ",");
    keel_fmt_hex(&f, 0x123456789abcdef0ULL, 4);
    snprintf(want, sizeof(want), "0,%llu,-7,%lld,%lld,0000000000000abc,def0", (unsigned long long)UINT64_MAX,
             LLONG_MIN, LLONG_MAX);
    assert_string_equal(buf, want);
    assert_int_equal(f.len, strlen(want));
    assert_false(f.cut);
}

static void test_cut(void **state)
{
    char buf[8];
    struct keel_fmt f;
    keel_fmt_init(&f, buf, sizeof(buf));
    assert_string_equal(buf, "");
    keel_fmt_str(&f, "abc");
    keel_fmt_u64(&f, 12345678);
    assert_string_equal(buf, "abc1234");
    assert_int_equal(f.len, 7);
    assert_true(f.cut);
    keel_fmt_str(&f, "more");
    assert_string_equal(buf, "abc1234");
    keel_fmt_init(&f, buf, 1);
    keel_fmt_str(&f, "x");
    assert_string_equal(buf, "");
    assert_true(f.cut);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_cut),
    };
    return cmocka_run_group_tests_name("fmt", tests, NULL, NULL);
}
