/*
 * Unit tests of the worker skeleton's pure parts: the backoff (with the
 * caller's clock), the reply-topic allow-list, the session cache, the
 * reply tracker and the largest message value a producer takes. The Kafka and
 * Redis paths of the worker are proven by the integration tests
 * (test_e2e_redis_outage.sh, test_e2e_dlq_faults.sh, test_e2e_reply_to.sh,
 * test_e2e_context_crash.sh, ...).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "kafka.h"
#include "reply_tracker.h"
#include "session_cache.h"
#include "util.h"
#include "worker.h"

static void test_backoff(void **state)
{
        cm_backoff_t b = {0};
        int64_t now = 1000000;
        int expect[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000};
        size_t i;

        (void)state;
        assert_true(cm_backoff_ready(&b, now));
        assert_int_equal(cm_backoff_ok(&b), 0); /* no failure to end */
        for (i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
                assert_int_equal(cm_backoff_fail(&b, now), expect[i]);
                assert_false(cm_backoff_ready(&b, now));
                assert_false(
                    cm_backoff_ready(&b, now + expect[i] * 1000LL - 1));
                assert_true(cm_backoff_ready(&b, now + expect[i] * 1000LL));
                now += expect[i] * 1000LL;
        }
        assert_int_equal(cm_backoff_ok(&b), 1);
        assert_true(cm_backoff_ready(&b, 0));
        assert_int_equal(cm_backoff_fail(&b, now), 100); /* starts over */
}

static void test_reply_topics(void **state)
{
        cm_config_t cfg;
        char errstr[256];

        (void)state;
        cm_config_init(&cfg);
        /* The default: context.replies*, and topics.replies itself. */
        assert_true(cm_config_reply_topic_allowed(&cfg, "context.replies"));
        assert_true(
            cm_config_reply_topic_allowed(&cfg, "context.replies.app7"));
        assert_false(cm_config_reply_topic_allowed(&cfg, "chat.events"));
        assert_false(cm_config_reply_topic_allowed(&cfg, "chat.compaction"));
        assert_false(cm_config_reply_topic_allowed(&cfg, "context.requests"));
        assert_false(cm_config_reply_topic_allowed(&cfg, "context.reply"));
        assert_false(cm_config_reply_topic_allowed(&cfg, ""));

        /* Names and prefixes, blanks around entries ignored. */
        assert_int_equal(cm_config_set(&cfg, "context.reply_topics",
                                       " app.replies.* , exact.one,b*", errstr,
                                       sizeof(errstr)),
                         0);
        assert_true(cm_config_reply_topic_allowed(&cfg, "app.replies.x"));
        assert_true(cm_config_reply_topic_allowed(&cfg, "app.replies."));
        assert_false(cm_config_reply_topic_allowed(&cfg, "app.replies"));
        assert_true(cm_config_reply_topic_allowed(&cfg, "exact.one"));
        assert_false(cm_config_reply_topic_allowed(&cfg, "exact.one.more"));
        assert_false(cm_config_reply_topic_allowed(&cfg, "exact.on"));
        assert_true(cm_config_reply_topic_allowed(&cfg, "b"));
        assert_true(cm_config_reply_topic_allowed(&cfg, "bob"));
        /* The default reply topic stays allowed whatever the list says. */
        assert_true(cm_config_reply_topic_allowed(&cfg, "context.replies"));
        assert_false(
            cm_config_reply_topic_allowed(&cfg, "context.replies.app7"));
        cm_config_release(&cfg);
}

static cm_session_t session_with(const char *summary, int64_t total)
{
        cm_session_t s;

        memset(&s, 0, sizeof(s));
        s.exists = 1;
        s.summary = cm_strdup(summary);
        s.total = total;
        return s;
}

static void test_session_cache(void **state)
{
        cm_session_cache_t *c = cm_session_cache_new(64);
        cm_session_cache_t *none = cm_session_cache_new(0);
        cm_session_t s = session_with("first", 3);
        const cm_session_t *got;

        (void)state;
        assert_null(cm_session_cache_get(c, "u:c"));
        cm_session_cache_put(c, "u:c", &s);
        assert_null(s.summary); /* moved, not copied */
        got = cm_session_cache_get(c, "u:c");
        assert_non_null(got);
        assert_string_equal(got->summary, "first");
        assert_int_equal(got->total, 3);
        assert_null(cm_session_cache_get(c, "u:d"));

        /* A newer load of the same session replaces the older. */
        s = session_with("second", 4);
        cm_session_cache_put(c, "u:c", &s);
        assert_string_equal(cm_session_cache_get(c, "u:c")->summary, "second");

        /* Bounded: many keys never grow it; every key found is its own. */
        for (int i = 0; i < 1000; i++) {
                char key[32];

                snprintf(key, sizeof(key), "u%d:c", i);
                s = session_with(key, i);
                cm_session_cache_put(c, key, &s);
        }
        for (int i = 0; i < 1000; i++) {
                char key[32];

                snprintf(key, sizeof(key), "u%d:c", i);
                got = cm_session_cache_get(c, key);
                if (got)
                        assert_string_equal(got->summary, key);
        }
        assert_non_null(cm_session_cache_get(c, "u999:c"));

        /* A cache of 0 slots keeps nothing and frees what it is given. */
        s = session_with("dropped", 1);
        cm_session_cache_put(none, "u:c", &s);
        assert_null(s.summary);
        assert_null(cm_session_cache_get(none, "u:c"));
        cm_session_cache_destroy(none);
        cm_session_cache_destroy(c);
        cm_session_cache_destroy(NULL);
}

typedef struct stored {
        int calls;
        int64_t offset[8]; /* last offset stored per partition */
} stored_t;

static void store_cb(void *opaque, rd_kafka_topic_partition_list_t *o)
{
        stored_t *st = opaque;
        int i;

        st->calls++;
        for (i = 0; i < o->cnt; i++)
                st->offset[o->elems[i].partition] = o->elems[i].offset;
}

/* A handle that talks to nothing, for topic objects of test messages. */
static rd_kafka_t *rk;
static rd_kafka_topic_t *rkt;

static int setup(void **state)
{
        char errstr[256];

        (void)state;
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, NULL, errstr, sizeof(errstr));
        rkt = rk ? rd_kafka_topic_new(rk, "t", NULL) : NULL;
        return rkt ? 0 : -1;
}

static int teardown(void **state)
{
        (void)state;
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
        return 0;
}

/* Notes a consumed message of topic "t" at partition/offset in tr. */
static void add(cm_tracker_t *tr, int32_t partition, int64_t offset)
{
        rd_kafka_message_t m;

        memset(&m, 0, sizeof(m));
        m.rkt = rkt;
        m.partition = partition;
        m.offset = offset;
        cm_tracker_add(tr, &m);
}

static void test_tracker_fifo_order(void **state)
{
        cm_tracker_fifo_t f;
        stored_t st;
        cm_tracker_t *a, *b;

        (void)state;
        memset(&st, 0, sizeof(st));
        cm_tracker_fifo_init(&f);
        a = cm_tracker_push(&f);
        add(a, 0, 10);
        add(a, 0, 11);
        add(a, 1, 5);
        a->d.pending += 2; /* two replies in flight */
        cm_tracker_seal(a);
        b = cm_tracker_push(&f);
        add(b, 0, 12);
        cm_tracker_seal(b); /* no reply in flight: done already */

        /* b is done but a is not: nothing is stored (FIFO order). */
        assert_int_equal(cm_tracker_pop_done(&f, store_cb, &st), 0);
        assert_int_equal(st.calls, 0);
        a->d.pending--;
        assert_int_equal(cm_tracker_pop_done(&f, store_cb, &st), 0);
        /* a reply given up still counts as final */
        a->d.pending--;
        a->d.failed++;
        assert_int_equal(cm_tracker_pop_done(&f, store_cb, &st), 2);
        assert_int_equal(st.calls, 2);
        assert_int_equal(st.offset[0], 13); /* next offset after 12 */
        assert_int_equal(st.offset[1], 6);
        assert_int_equal(f.cnt, 0);
        cm_tracker_fifo_release(&f);
}

static void test_tracker_lost_and_full(void **state)
{
        cm_tracker_fifo_t f;
        stored_t st;
        cm_tracker_t *a;
        int i;

        (void)state;
        memset(&st, 0, sizeof(st));
        cm_tracker_fifo_init(&f);
        a = cm_tracker_push(&f);
        add(a, 0, 1);
        a->lost = 1; /* a reply could not be queued at shutdown */
        cm_tracker_seal(a);
        a = cm_tracker_push(&f);
        add(a, 0, 2);
        cm_tracker_seal(a);
        assert_int_equal(cm_tracker_pop_done(&f, store_cb, &st), 0);
        assert_int_equal(st.calls, 0);

        for (i = 2; i < CM_TRACKER_MAX; i++) {
                assert_false(cm_tracker_full(&f));
                cm_tracker_seal(cm_tracker_push(&f));
        }
        assert_true(cm_tracker_full(&f));
        cm_tracker_fifo_release(&f); /* frees the trackers still in it */
        assert_int_equal(f.cnt, 0);
}

/* The largest reply the context worker sends follows the producer's
 * message.max.bytes, with room for the key and headers. */
static void test_kafka_value_max(void **state)
{
        cm_kafka_prop_t prop = {"message.max.bytes", "50000"};
        cm_config_t cfg;
        rd_kafka_t *producer;
        char err[512];

        (void)state;
        cm_config_init(&cfg);
        producer = cm_kafka_producer_new(&cfg, NULL, NULL, err, sizeof(err));
        assert_non_null(producer);
        assert_int_equal(cm_kafka_value_max(producer),
                         1000000 - CM_KAFKA_MESSAGE_OVERHEAD);
        rd_kafka_destroy(producer);
        cfg.kafka_props = &prop;
        cfg.kafka_prop_cnt = 1;
        producer = cm_kafka_producer_new(&cfg, NULL, NULL, err, sizeof(err));
        assert_non_null(producer);
        assert_int_equal(cm_kafka_value_max(producer),
                         50000 - CM_KAFKA_MESSAGE_OVERHEAD);
        rd_kafka_destroy(producer);
        cfg.kafka_props = NULL;
        cfg.kafka_prop_cnt = 0;
        cm_config_release(&cfg);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_backoff),
            cmocka_unit_test(test_reply_topics),
            cmocka_unit_test(test_session_cache),
            cmocka_unit_test(test_tracker_fifo_order),
            cmocka_unit_test(test_tracker_lost_and_full),
            cmocka_unit_test(test_kafka_value_max),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
