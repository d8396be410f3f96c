/*
 * Unit tests for the recall index cache: a session's slot is reused and
 * extended while the candidates only grow, rebuilt on any other change,
 * and searches through it rank exactly as through a fresh index.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "recall_cache.h"
#include "util.h"

#define N 40

static const char *const topics[] = {
    "the garden roses", "a pottery class", "my sister in Lisbon",
    "the marathon",     "a jazz concert",  "the kitchen paint"};

/* N candidates, each a fresh heap copy (as a new load gives). */
static cm_message_t *candidates(size_t n, int64_t seq0)
{
        cm_message_t *m = cm_calloc(n, sizeof(*m));
        char text[128];
        size_t i;

        for (i = 0; i < n; i++) {
                snprintf(text, sizeof(text), "Message %zu was about %s.", i,
                         topics[i % 6]);
                m[i].role = i % 2 ? CM_ROLE_ASSISTANT : CM_ROLE_USER;
                m[i].content = cm_strdup(text);
                m[i].content_len = strlen(text);
                m[i].seq = seq0 + (int64_t)i;
                m[i].ts = 1683504000000 + (int64_t)i * 1000;
        }
        return m;
}

static void candidates_free(cm_message_t *m, size_t n)
{
        size_t i;

        for (i = 0; i < n; i++)
                cm_message_release(&m[i]);
        free(m);
}

/* The units of a search for query over ix, as "hit:first-last," text. */
static char *units(const cm_recall_index_t *ix, const char *query)
{
        cm_recall_search_t *rs =
            cm_recall_search_new(ix, query, strlen(query), NULL, 0);
        cm_recall_unit_t u;
        cm_buf_t b;

        cm_buf_init(&b);
        while (cm_recall_search_next(rs, &u))
                cm_buf_addf(&b, "%zu:%zu-%zu,", u.hit, u.first, u.last);
        cm_recall_search_destroy(rs);
        return cm_buf_detach(&b, NULL);
}

/* The cached index ranks as a fresh one over the same candidates. */
static void expect_same_ranking(const cm_recall_cached_t *got,
                                const cm_message_t *msgs, size_t cnt)
{
        cm_recall_index_t *fresh = cm_recall_index_new(msgs, cnt);
        char *a = units(got->index, "sister Lisbon pottery");
        char *b = units(fresh, "sister Lisbon pottery");

        assert_int_equal(got->cnt, cnt);
        assert_int_equal(cm_recall_index_count(got->index), cnt);
        assert_string_equal(a, b);
        assert_true(strlen(a) > 0);
        free(a);
        free(b);
        cm_recall_index_destroy(fresh);
}

static void test_cache_grows_then_rebuilds(void **state)
{
        cm_recall_cache_t *c = cm_recall_cache_new(8, 1 << 20);
        cm_recall_cached_t got;
        cm_message_t *m;
        unsigned long long hits, builds;

        (void)state;
        /* First request: built. */
        m = candidates(20, 1);
        cm_recall_cache_get(c, "u:c", m, 20, &got);
        assert_int_equal(got.hit, 0);
        assert_int_equal(got.own, 0);
        assert_ptr_not_equal(got.msgs, m); /* the slot's own copies */
        expect_same_ranking(&got, m, 20);
        cm_recall_cache_release(&got);
        candidates_free(m, 20);

        /* The same and more, from a new load: reused and extended. */
        m = candidates(N, 1);
        cm_recall_cache_get(c, "u:c", m, N, &got);
        assert_int_equal(got.hit, 1);
        expect_same_ranking(&got, m, N);
        cm_recall_cache_release(&got);

        /* The oldest went (archive eviction): rebuilt, never stale. */
        cm_recall_cache_get(c, "u:c", m + 5, N - 5, &got);
        assert_int_equal(got.hit, 0);
        expect_same_ranking(&got, m + 5, N - 5);
        cm_recall_cache_release(&got);

        /* One message's text changed in the middle: rebuilt. */
        m[7].content[0] = 'X';
        cm_recall_cache_get(c, "u:c", m + 5, N - 5, &got);
        assert_int_equal(got.hit, 0);
        cm_recall_cache_release(&got);
        candidates_free(m, N);

        /* The session started again (seqs from 1, other ts): rebuilt. */
        m = candidates(N, 1);
        m[0].ts++;
        cm_recall_cache_get(c, "u:c", m, N, &got);
        assert_int_equal(got.hit, 0);
        expect_same_ranking(&got, m, N);
        cm_recall_cache_release(&got);
        candidates_free(m, N);

        cm_recall_cache_stats(c, &hits, &builds);
        assert_int_equal(hits, 1);
        assert_int_equal(builds, 4);
        cm_recall_cache_destroy(c);
}

/* Another session in the same slot replaces it; a session over the byte
 * limit, and a cache of no slots, give an index of the caller's own. */
static void test_cache_not_kept(void **state)
{
        cm_recall_cache_t *one = cm_recall_cache_new(1, 1 << 20);
        cm_recall_cache_t *none = cm_recall_cache_new(0, 1 << 20);
        cm_recall_cache_t *tiny = cm_recall_cache_new(4, 100);
        cm_message_t *m = candidates(N, 1);
        cm_recall_cached_t got;

        (void)state;
        cm_recall_cache_get(one, "a:c", m, N, &got);
        cm_recall_cache_release(&got);
        cm_recall_cache_get(one, "b:c", m, N, &got);
        assert_int_equal(got.hit, 0); /* the key differs */
        cm_recall_cache_release(&got);
        cm_recall_cache_get(one, "b:c", m, N, &got);
        assert_int_equal(got.hit, 1);
        cm_recall_cache_release(&got);

        cm_recall_cache_get(none, "a:c", m, N, &got);
        assert_int_equal(got.own, 1);
        assert_ptr_equal(got.msgs, m);
        expect_same_ranking(&got, m, N);
        cm_recall_cache_release(&got);
        assert_null(got.index);

        cm_recall_cache_get(tiny, "a:c", m, N, &got);
        assert_int_equal(got.own, 1);
        expect_same_ranking(&got, m, N);
        cm_recall_cache_release(&got);
        /* Small enough later: kept. */
        cm_recall_cache_get(tiny, "a:c", m, 2, &got);
        assert_int_equal(got.own, 0);
        cm_recall_cache_release(&got);

        candidates_free(m, N);
        cm_recall_cache_destroy(one);
        cm_recall_cache_destroy(none);
        cm_recall_cache_destroy(tiny);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_cache_grows_then_rebuilds),
            cmocka_unit_test(test_cache_not_kept),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
