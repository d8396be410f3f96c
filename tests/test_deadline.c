/*
 * Unit tests of common/deadline.c, with the caller's clock: the timeout of
 * one blocking step under a deadline, and until when a batch of context
 * requests may wait for Redis. That a hung Redis is then given up in time
 * is proven against a stopped redis-server (test_store.c) and by
 * test_e2e_context_deadline.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "deadline.h"

#define S 1000000LL /* µs */

static void test_step_without_deadline(void **state)
{
        (void)state;
        /* The step's own limit, or none. */
        assert_int_equal(cm_deadline_step_ms(5000, 0, 123 * S), 5000);
        assert_int_equal(cm_deadline_step_ms(0, 0, 123 * S), 0);
        assert_int_equal(cm_deadline_step_ms(-3, 0, 123 * S), 0);
}

static void test_step_cut_to_deadline(void **state)
{
        int64_t now = 100 * S;

        (void)state;
        /* What is left, rounded down, when it is less than the limit. */
        assert_int_equal(cm_deadline_step_ms(5000, now + 200000, now), 200);
        assert_int_equal(cm_deadline_step_ms(5000, now + 199999, now), 199);
        /* The limit, when it is less than what is left. */
        assert_int_equal(cm_deadline_step_ms(2000, now + 10 * S, now), 2000);
        /* No limit of its own: what is left. */
        assert_int_equal(cm_deadline_step_ms(0, now + 10 * S, now), 10000);
        /* Less than 1 ms left: 1 ms, so that what has arrived is read. */
        assert_int_equal(cm_deadline_step_ms(5000, now + 999, now), 1);
        assert_int_equal(cm_deadline_step_ms(5000, now + 1, now), 1);
        /* Passed, or just reached: no wait at all. */
        assert_int_equal(cm_deadline_step_ms(5000, now, now), -1);
        assert_int_equal(cm_deadline_step_ms(5000, now - 1, now), -1);
        assert_int_equal(cm_deadline_step_ms(0, now - S, now), -1);
        /* Far away: no overflow. */
        assert_int_equal(cm_deadline_step_ms(0, INT64_MAX, 0), 0x7fffffff);
}

static void test_wait_until(void **state)
{
        int64_t taken = 50 * S;

        (void)state;
        /* Nothing to build, or builds that cost nothing: the deadline less
         * its tenth, the slack. */
        assert_true(cm_deadline_wait_until(taken, 200, 0, 300) ==
                    taken + 180000);
        assert_true(cm_deadline_wait_until(taken, 200, 256, 0) ==
                    taken + 180000);
        /* The builds' time is kept back too: 10 requests of 300 µs. */
        assert_true(cm_deadline_wait_until(taken, 200, 10, 300) ==
                    taken + 180000 - 3000);
        /* 256 requests of 300 µs: 76.8 ms kept. */
        assert_true(cm_deadline_wait_until(taken, 200, 256, 300) ==
                    taken + 180000 - 76800);
        /* Just at the bound, and just over it. */
        assert_true(cm_deadline_wait_until(taken, 200, 80, 1000) ==
                    taken + 100000);
        assert_true(cm_deadline_wait_until(taken, 200, 81, 1000) ==
                    taken + 100000);
        /* At most half the deadline is kept back, however slow. */
        assert_true(cm_deadline_wait_until(taken, 200, 256, 5000) ==
                    taken + 100000);
        assert_true(cm_deadline_wait_until(taken, 200, (size_t)-1, INT64_MAX) ==
                    taken + 100000);
        /* A negative estimate counts as nothing. */
        assert_true(cm_deadline_wait_until(taken, 200, 5, -7) ==
                    taken + 180000);
        /* A one-ms deadline: 100 µs of slack, then the build. */
        assert_true(cm_deadline_wait_until(taken, 1, 1, 100) == taken + 800);
        assert_true(cm_deadline_wait_until(taken, 1, 9, 100) == taken + 500);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_step_without_deadline),
            cmocka_unit_test(test_step_cut_to_deadline),
            cmocka_unit_test(test_wait_until),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
