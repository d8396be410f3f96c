/*
 * Unit tests for util: the cm_buf invariant (never NULL, always
 * NUL-terminated, from init on) and cm_errf.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"

/* The invariant every cm_buf_t holds between calls. */
static void check(const cm_buf_t *b)
{
        assert_non_null(b->buf);
        assert_int_equal(b->buf[b->len], '\0');
        assert_true(b->cap == 0 || b->len < b->cap);
        if (b->cap == 0) {
                assert_int_equal(b->len, 0);
                assert_ptr_equal(b->buf, cm_buf_empty);
        }
}

static void test_buf_init(void **state)
{
        cm_buf_t a, b = CM_BUF_INIT;

        (void)state;
        cm_buf_init(&a);
        check(&a);
        check(&b);
        assert_string_equal(a.buf, "");
        assert_int_equal(strlen(b.buf), 0);
        /* adding nothing and resetting keep the static "" */
        cm_buf_add(&a, "x", 0);
        cm_buf_adds(&a, "");
        cm_buf_reset(&a);
        check(&a);
        assert_int_equal(a.cap, 0);
        cm_buf_release(&a);
        cm_buf_release(&b);
        check(&a);
        check(&b);
}

static void test_buf_ops(void **state)
{
        cm_buf_t b = CM_BUF_INIT;
        char big[300];
        size_t i;

        (void)state;
        cm_buf_adds(&b, "abc");
        check(&b);
        assert_string_equal(b.buf, "abc");
        cm_buf_add(&b, "d\0e", 3); /* bytes, NUL included */
        check(&b);
        assert_int_equal(b.len, 6);
        assert_memory_equal(b.buf, "abcd\0e", 6);
        memset(big, 'z', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        cm_buf_addf(&b, "[%s]", big); /* past the first allocation */
        check(&b);
        assert_int_equal(b.len, 6 + 2 + sizeof(big) - 1);
        assert_int_equal(b.buf[6], '[');
        assert_int_equal(b.buf[b.len - 1], ']');
        for (i = 0; i < 1000; i++) {
                cm_buf_addf(&b, "%zu,", i);
                check(&b);
        }
        cm_buf_reset(&b);
        check(&b);
        assert_string_equal(b.buf, "");
        assert_true(b.cap > 0); /* memory kept */
        cm_buf_addf(&b, "%d", 42);
        assert_string_equal(b.buf, "42");
        cm_buf_release(&b);
        check(&b);
        assert_int_equal(b.cap, 0);
}

/* detach always gives a heap string (ASan would catch a free of the
 * static ""), and leaves the buffer as init does. */
static void test_buf_detach(void **state)
{
        cm_buf_t b = CM_BUF_INIT;
        size_t len = 99;
        char *s;

        (void)state;
        s = cm_buf_detach(&b, &len);
        assert_non_null(s);
        assert_string_equal(s, "");
        assert_int_equal(len, 0);
        assert_ptr_not_equal(s, cm_buf_empty);
        free(s);
        check(&b);

        cm_buf_adds(&b, "hello");
        s = cm_buf_detach(&b, NULL);
        assert_string_equal(s, "hello");
        free(s);
        check(&b);
        assert_int_equal(b.cap, 0);

        /* a reset buffer detaches as "" too, from its own memory */
        cm_buf_adds(&b, "x");
        cm_buf_reset(&b);
        s = cm_buf_detach(&b, &len);
        assert_string_equal(s, "");
        assert_int_equal(len, 0);
        free(s);
        check(&b);
}

static void test_errf(void **state)
{
        char err[8];

        (void)state;
        assert_int_equal(cm_errf(err, sizeof(err), "bad %d", 7), -1);
        assert_string_equal(err, "bad 7");
        assert_int_equal(cm_errf(err, sizeof(err), "%s", "truncated!"), -1);
        assert_string_equal(err, "truncat");
        assert_int_equal(cm_errf(NULL, 0, "ignored %d", 1), -1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_buf_init),
            cmocka_unit_test(test_buf_ops),
            cmocka_unit_test(test_buf_detach),
            cmocka_unit_test(test_errf),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
