/*
 * Unit tests for httpd: the forms of metrics.listen it accepts and
 * refuses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "httpd.h"

static void test_parse_listen(void **state)
{
        static const char *const bad[] = {
            "9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", ":65536",
            ":x",   "::1:9464",  "[::1]9464",  "[::1",
        };
        char host[64], errstr[256];
        int port = 0;
        size_t i;

        (void)state;
        assert_int_equal(cm_httpd_parse_listen("127.0.0.1:9464", host,
                                               sizeof(host), &port, errstr,
                                               sizeof(errstr)),
                         0);
        assert_string_equal(host, "127.0.0.1");
        assert_int_equal(port, 9464);
        assert_int_equal(cm_httpd_parse_listen(":1", host, sizeof(host), &port,
                                               errstr, sizeof(errstr)),
                         0);
        assert_string_equal(host, "");
        assert_int_equal(port, 1);
        assert_int_equal(cm_httpd_parse_listen("[::1]:65535", host,
                                               sizeof(host), &port, errstr,
                                               sizeof(errstr)),
                         0);
        assert_string_equal(host, "::1");
        assert_int_equal(port, 65535);
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                errstr[0] = '\0';
                assert_int_equal(cm_httpd_parse_listen(bad[i], host,
                                                       sizeof(host), &port,
                                                       errstr, sizeof(errstr)),
                                 -1);
                assert_non_null(strstr(errstr, "metrics.listen"));
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_listen),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
