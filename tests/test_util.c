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
#include <unistd.h>

#include <cmocka.h>

#include <json-c/json.h>

#include "log.h"
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

/* log_format json: one object per line, the message escaped (quotes,
 * backslashes, control characters, invalid UTF-8), parseable by json-c. */
static void test_log_json(void **state)
{
        char path[] = "/tmp/test_util_log.XXXXXX", line[4096];
        int fd = mkstemp(path), saved = dup(2);
        json_object *obj, *v;
        FILE *fp;

        (void)state;
        assert_true(fd >= 0 && saved >= 0);
        fflush(stderr);
        assert_true(dup2(fd, 2) >= 0);
        cm_log_init("/usr/bin/chatmem-test");
        cm_log_format = CM_LOG_JSON;
        cm_log_write(CM_LOG_WARN, "session '%s': \"quoted\" \\ tab\there %s",
                     "u1:c", "bad \xff byte, caf\xc3\xa9");
        cm_log_format = CM_LOG_TEXT;
        fflush(stderr);
        assert_true(dup2(saved, 2) >= 0);
        close(saved);
        fp = fopen(path, "r");
        assert_non_null(fp);
        assert_non_null(fgets(line, sizeof(line), fp));
        fclose(fp);
        close(fd);
        unlink(path);
        assert_int_equal(line[strlen(line) - 1], '\n');
        obj = json_tokener_parse(line);
        assert_non_null(obj);
        assert_true(json_object_object_get_ex(obj, "level", &v));
        assert_string_equal(json_object_get_string(v), "warn");
        assert_true(json_object_object_get_ex(obj, "prog", &v));
        assert_string_equal(json_object_get_string(v), "chatmem-test");
        assert_true(json_object_object_get_ex(obj, "pid", &v));
        assert_int_equal(json_object_get_int(v), (int)getpid());
        assert_true(json_object_object_get_ex(obj, "ts", &v));
        assert_int_equal(strlen(json_object_get_string(v)), 24);
        assert_true(json_object_object_get_ex(obj, "msg", &v));
        assert_string_equal(json_object_get_string(v),
                            "session 'u1:c': \"quoted\" \\ tab\there bad "
                            "\xef\xbf\xbd byte, caf\xc3\xa9");
        json_object_put(obj);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_log_json), cmocka_unit_test(test_buf_init),
            cmocka_unit_test(test_buf_ops),  cmocka_unit_test(test_buf_detach),
            cmocka_unit_test(test_errf),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
