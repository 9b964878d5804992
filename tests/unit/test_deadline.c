/* test_deadline.c - deadline arithmetic on a fake clock: first_byte until the first content
 * progress, then stall from the last one, total over everything, the client's shorter budget. */
#include "unit.h"

#include "core/deadline.h"

static void test_total_is_shortened_never_lengthened(void **state)
{
    assert_int_equal(keel_deadline_total(1000, 300000, 0), 301000);
    assert_int_equal(keel_deadline_total(1000, 300000, 90000), 91000);
    assert_int_equal(keel_deadline_total(1000, 300000, 900000), 301000);
}

static void test_first_byte_then_stall(void **state)
{
    struct keel_deadline d = {.total_at = 100000, .attempt_at = 1000, .first_byte_ms = 5000, .stall_ms = 2000};
    enum keel_deadline_kind k;
    assert_int_equal(keel_deadline_next(&d, &k), 6000);
    assert_int_equal(k, KEEL_DL_FIRST_BYTE);
    assert_int_equal(keel_deadline_expired(&d, 5999), -1);
    assert_int_equal(keel_deadline_expired(&d, 6000), KEEL_DL_FIRST_BYTE);
    /* content progress at 4000 moves the deadline to stall from there */
    d.progress_at = 4000;
    assert_int_equal(keel_deadline_next(&d, &k), 6000);
    assert_int_equal(k, KEEL_DL_STALL);
    d.progress_at = 5500;
    assert_int_equal(keel_deadline_next(&d, &k), 7500);
    assert_int_equal(keel_deadline_expired(&d, 7000), -1);
    assert_int_equal(keel_deadline_expired(&d, 7500), KEEL_DL_STALL);
}

static void test_total_wins_when_earlier(void **state)
{
    struct keel_deadline d = {.total_at = 3000, .attempt_at = 1000, .first_byte_ms = 5000, .stall_ms = 2000};
    enum keel_deadline_kind k;
    assert_int_equal(keel_deadline_next(&d, &k), 3000);
    assert_int_equal(k, KEEL_DL_TOTAL);
    d.progress_at = 2500;
    assert_int_equal(keel_deadline_next(&d, &k), 3000);
    assert_int_equal(k, KEEL_DL_TOTAL);
    /* on a tie the total is reported: it ends the request, not just the attempt */
    d.total_at = 4500;
    assert_int_equal(keel_deadline_next(&d, &k), 4500);
    assert_int_equal(k, KEEL_DL_TOTAL);
    assert_int_equal(keel_deadline_expired(&d, 4500), KEEL_DL_TOTAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_total_is_shortened_never_lengthened),
        cmocka_unit_test(test_first_byte_then_stall),
        cmocka_unit_test(test_total_wins_when_earlier),
    };
    return cmocka_run_group_tests_name("deadline", tests, NULL, NULL);
}
