/*
 * Unit tests for metrics: the exact text of a few metrics, cumulative
 * histogram buckets, label escaping, and increments from two threads.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

static void test_render_counter_gauge(void **state)
{
        cm_metrics_t *mx = cm_metrics_new("chatmem_test");
        const char *const ok[] = {"reason", "bad_key", NULL};
        cm_metric_t *c, *g, *d;
        char *text;

        (void)state;
        c = cm_metrics_counter(mx, "events_applied_total", "Events applied.",
                               NULL);
        g = cm_metrics_gauge(mx, "lag_messages", "Consumer lag.", NULL);
        d = cm_metrics_counter(mx, "dlq_total", "To the DLQ.", ok);
        cm_metric_inc(c);
        cm_metric_add(c, 2);
        cm_metric_set(g, 1.5);
        cm_metric_inc(d);
        /* the same name and labels: the same metric */
        assert_ptr_equal(
            cm_metrics_counter(mx, "events_applied_total", "other help", NULL),
            c);
        text = cm_metrics_render(mx);
        assert_string_equal(text,
                            "# HELP chatmem_test_events_applied_total Events "
                            "applied.\n"
                            "# TYPE chatmem_test_events_applied_total counter\n"
                            "chatmem_test_events_applied_total 3\n"
                            "# HELP chatmem_test_lag_messages Consumer lag.\n"
                            "# TYPE chatmem_test_lag_messages gauge\n"
                            "chatmem_test_lag_messages 1.5\n"
                            "# HELP chatmem_test_dlq_total To the DLQ.\n"
                            "# TYPE chatmem_test_dlq_total counter\n"
                            "chatmem_test_dlq_total{reason=\"bad_key\"} 1\n");
        assert_true(cm_metric_value(c) == 3);
        free(text);
        cm_metrics_destroy(mx);
}

static void test_histogram_cumulative(void **state)
{
        static const double bounds[] = {0.01, 0.1, 1};
        cm_metrics_t *mx = cm_metrics_new("x");
        cm_metric_t *h;
        char *text;

        (void)state;
        h = cm_metrics_histogram(mx, "build_seconds", "Build time.", bounds, 3,
                                 NULL);
        cm_metric_observe(h, 0.005); /* le 0.01 */
        cm_metric_observe(h, 0.01);  /* le 0.01: bounds are inclusive */
        cm_metric_observe(h, 0.5);   /* le 1 */
        cm_metric_observe(h, 2);     /* +Inf only */
        text = cm_metrics_render(mx);
        assert_string_equal(text, "# HELP x_build_seconds Build time.\n"
                                  "# TYPE x_build_seconds histogram\n"
                                  "x_build_seconds_bucket{le=\"0.01\"} 2\n"
                                  "x_build_seconds_bucket{le=\"0.1\"} 2\n"
                                  "x_build_seconds_bucket{le=\"1\"} 3\n"
                                  "x_build_seconds_bucket{le=\"+Inf\"} 4\n"
                                  "x_build_seconds_sum 2.515\n"
                                  "x_build_seconds_count 4\n");
        assert_true(cm_metric_value(h) == 4);
        free(text);
        cm_metrics_destroy(mx);
}

static void test_histogram_labels(void **state)
{
        static const double bounds[] = {0.5};
        const char *const l[] = {"kind", "llm", NULL};
        cm_metrics_t *mx = cm_metrics_new(NULL);
        char *text;

        (void)state;
        cm_metric_observe(
            cm_metrics_histogram(mx, "fold_seconds", "F.", bounds, 1, l), 0.25);
        text = cm_metrics_render(mx);
        assert_string_equal(text,
                            "# HELP fold_seconds F.\n"
                            "# TYPE fold_seconds histogram\n"
                            "fold_seconds_bucket{kind=\"llm\",le=\"0.5\"} 1\n"
                            "fold_seconds_bucket{kind=\"llm\",le=\"+Inf\"} 1\n"
                            "fold_seconds_sum{kind=\"llm\"} 0.25\n"
                            "fold_seconds_count{kind=\"llm\"} 1\n");
        free(text);
        cm_metrics_destroy(mx);
}

static void test_escaping(void **state)
{
        const char *const l[] = {"topic", "a\"b\\c\nd", "partition", "3", NULL};
        cm_metrics_t *mx = cm_metrics_new("p");
        char *text;

        (void)state;
        cm_metric_set(cm_metrics_gauge(mx, "g", "line\\one\nline \"two\"", l),
                      -2);
        text = cm_metrics_render(mx);
        assert_string_equal(
            text, "# HELP p_g line\\\\one\\nline \"two\"\n"
                  "# TYPE p_g gauge\n"
                  "p_g{topic=\"a\\\"b\\\\c\\nd\",partition=\"3\"} -2\n");
        free(text);
        cm_metrics_destroy(mx);
}

#define INCS 200000

static void *incr(void *arg)
{
        cm_metric_t **m = arg;
        int i;

        for (i = 0; i < INCS; i++) {
                cm_metric_inc(m[0]);
                cm_metric_observe(m[1], 0.001);
        }
        return NULL;
}

static void test_two_threads(void **state)
{
        static const double bounds[] = {0.01};
        cm_metrics_t *mx = cm_metrics_new("t");
        cm_metric_t *m[2];
        pthread_t a, b;
        char *text;

        (void)state;
        m[0] = cm_metrics_counter(mx, "n_total", "N.", NULL);
        m[1] = cm_metrics_histogram(mx, "h_seconds", "H.", bounds, 1, NULL);
        assert_int_equal(pthread_create(&a, NULL, incr, m), 0);
        assert_int_equal(pthread_create(&b, NULL, incr, m), 0);
        /* rendering meanwhile is safe */
        free(cm_metrics_render(mx));
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        assert_true(cm_metric_value(m[0]) == 2.0 * INCS);
        assert_true(cm_metric_value(m[1]) == 2.0 * INCS);
        text = cm_metrics_render(mx);
        assert_non_null(strstr(text, "t_n_total 400000\n"));
        assert_non_null(
            strstr(text, "t_h_seconds_bucket{le=\"0.01\"} 400000\n"));
        assert_non_null(strstr(text, "t_h_seconds_count 400000\n"));
        free(text);
        cm_metrics_destroy(mx);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_render_counter_gauge),
            cmocka_unit_test(test_histogram_cumulative),
            cmocka_unit_test(test_histogram_labels),
            cmocka_unit_test(test_escaping),
            cmocka_unit_test(test_two_threads),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
