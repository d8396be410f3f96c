#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "codec.h"
#include "daemon.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

/* How long teardown waits for the producer's last deliveries. */
#define FINISH_FLUSH_MS 5000
/* librdkafka statistics (consumer lag, brokers up) with metrics.listen. */
#define STATS_INTERVAL_MS 2000
/* One retry warning a second at most: in a Kafka outage every message
 * comes back. */
#define DR_WARN_US 1000000
/* Seeking a released partition. */
#define SEEK_TIMEOUT_MS 5000

int cm_backoff_fail(cm_backoff_t *b, int64_t now_us)
{
        if (!b->ms)
                b->ms = CM_BACKOFF_FIRST_MS;
        else
                b->ms = b->ms * 2 > CM_BACKOFF_MAX_MS ? CM_BACKOFF_MAX_MS
                                                      : b->ms * 2;
        b->until_us = now_us + (int64_t)b->ms * 1000;
        return b->ms;
}

int cm_backoff_ready(const cm_backoff_t *b, int64_t now_us)
{
        return !b->ms || now_us >= b->until_us;
}

int cm_backoff_ok(cm_backoff_t *b)
{
        int was = b->ms != 0;

        b->ms = 0;
        b->until_us = 0;
        return was;
}

/* The one delivery-retry policy (see worker.h). */
static void worker_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        cm_worker_t *w = opaque;
        cm_delivery_t *d = m->_private;

        if (m->err) {
                int64_t now = cm_mono_us();

                if (cm_kafka_delivery_retriable(m->err)) {
                        if (now - w->dr_warned_at >= DR_WARN_US) {
                                w->dr_warned_at = now;
                                cm_warn("message to '%s' not delivered (%s); "
                                        "producing it again",
                                        rd_kafka_topic_name(m->rkt),
                                        rd_kafka_err2str(m->err));
                        }
                        if (cm_kafka_produce_again(rk, m) == 0)
                                return; /* still pending in d */
                } else {
                        cm_error("message to '%s' cannot be delivered: %s; "
                                 "giving it up",
                                 rd_kafka_topic_name(m->rkt),
                                 rd_kafka_err2str(m->err));
                }
                w->given_up++;
                cm_metric_inc(w->m.given_up);
                if (d)
                        d->failed++;
        }
        if (d)
                d->pending--;
}

/* 1 when partition p of topic is held. */
static int is_held(const cm_worker_t *w, const char *topic, int32_t p)
{
        return w->held && w->held->cnt > 0 &&
               rd_kafka_topic_partition_list_find(w->held, topic, p);
}

/* Keeps w->held in step with an assign or revoke of parts. */
static void track_held(cm_worker_t *w, rd_kafka_resp_err_t err,
                       const rd_kafka_topic_partition_list_t *parts)
{
        int i;

        if (!w->held)
                w->held = rd_kafka_topic_partition_list_new(parts->cnt);
        for (i = 0; i < parts->cnt; i++) {
                const char *t = parts->elems[i].topic;
                int32_t p = parts->elems[i].partition;

                if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
                        rd_kafka_topic_partition_list_del(w->held, t, p);
                else if (!is_held(w, t, p))
                        rd_kafka_topic_partition_list_add(w->held, t, p);
        }
}

/* The one rebalance handler: the worker's revoke hook, the default
 * assign/commit-on-revoke, new partitions paused during an outage or held,
 * and the count of partitions assigned for /readyz. */
static void worker_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *parts,
                             void *opaque)
{
        cm_worker_t *w = opaque;
        rd_kafka_topic_partition_list_t *now = NULL;

        if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && w->spec->revoke)
                w->spec->revoke(w);
        cm_kafka_rebalance_default(rk, err, parts, opaque);
        if (rd_kafka_assignment(rk, &now) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                atomic_store(&w->ready_assigned, now->cnt);
                rd_kafka_topic_partition_list_destroy(now);
        }
        if (w->spec->hold)
                track_held(w, err, parts);
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS &&
            (w->redis_paused || w->spec->hold)) {
                rd_kafka_resp_err_t perr = rd_kafka_pause_partitions(rk, parts);

                if (perr)
                        cm_error("cannot pause new partitions: %s",
                                 rd_kafka_err2str(perr));
        }
}

int cm_worker_init(cm_worker_t *w, int argc, char **argv,
                   const cm_worker_spec_t *spec)
{
        memset(w, 0, sizeof(*w));
        w->spec = spec;
        cm_config_init(&w->cfg);
        return cm_daemon_init(argc, argv, spec->name, spec->summary, &w->cfg,
                              &w->status);
}

/* /readyz, on the HTTP thread: reads only the atomics. */
static int worker_ready(void *opaque, char *why, size_t why_size)
{
        cm_worker_t *w = opaque;

        if (atomic_load(&w->ready_fatal))
                snprintf(why, why_size, "fatal kafka error");
        else if (!atomic_load(&w->ready_kafka))
                snprintf(why, why_size, "no kafka broker up");
        else if (!atomic_load(&w->ready_redis))
                snprintf(why, why_size, "redis not connected");
        else if (atomic_load(&w->ready_assigned) <= 0)
                snprintf(why, why_size, "no partitions assigned");
        else
                return 1;
        return 0;
}

/* The consumer lag of each partition of stats' topic t (a JSON object),
 * 0 for a partition no longer wanted (another worker reports it). */
static void stats_lag(cm_worker_t *w, const char *topic, json_object *t)
{
        json_object *parts, *v;

        if (!json_object_object_get_ex(t, "partitions", &parts))
                return;
        json_object_object_foreach(parts, id, p)
        {
                const char *labels[] = {"topic", topic, "partition", id, NULL};
                int64_t lag = -1;
                int desired = 0;

                if (!strcmp(id, "-1"))
                        continue; /* librdkafka's unassigned partition */
                if (json_object_object_get_ex(p, "desired", &v))
                        desired = json_object_get_boolean(v);
                if (json_object_object_get_ex(p, "consumer_lag", &v))
                        lag = json_object_get_int64(v);
                if (desired && lag < 0)
                        continue; /* not known yet */
                cm_metric_set(
                    cm_metrics_gauge(w->mx, "consumer_lag_messages",
                                     "Messages behind the end of the "
                                     "partition, from librdkafka's statistics.",
                                     labels),
                    desired ? (double)lag : 0);
        }
}

/* librdkafka's statistics, on the worker's thread (consumer poll): the
 * consumer lag per partition, and whether a broker is up. */
static int worker_stats(rd_kafka_t *rk, char *json, size_t json_len,
                        void *opaque)
{
        cm_worker_t *w = opaque;
        json_tokener *tok = json_tokener_new();
        json_object *root, *brokers, *topics, *v;
        int up = 0;

        (void)rk;
        root = json_tokener_parse_ex(tok, json, (int)json_len);
        json_tokener_free(tok);
        if (!root)
                return 0;
        if (json_object_object_get_ex(root, "brokers", &brokers)) {
                json_object_object_foreach(brokers, name, b)
                {
                        (void)name;
                        /* nodeid -1: a bootstrap address, not a broker */
                        if (json_object_object_get_ex(b, "nodeid", &v) &&
                            json_object_get_int(v) >= 0 &&
                            json_object_object_get_ex(b, "state", &v) &&
                            !strcmp(json_object_get_string(v), "UP"))
                                up = 1;
                }
        }
        atomic_store(&w->ready_kafka, up);
        if (json_object_object_get_ex(root, "topics", &topics)) {
                json_object_object_foreach(topics, topic, t)
                    stats_lag(w, topic, t);
        }
        json_object_put(root);
        return 0;
}

/* The metrics every worker has, and the HTTP server when configured. */
static int start_ops(cm_worker_t *w, char *errstr, size_t errstr_size)
{
        char prefix[64], *p;

        snprintf(prefix, sizeof(prefix), "%s", w->spec->name);
        for (p = prefix; *p; p++)
                if (*p == '-')
                        *p = '_';
        w->mx = cm_metrics_new(prefix);
        w->m.redis_errors = cm_metrics_counter(
            w->mx, "redis_errors_total", "Redis calls that failed.", NULL);
        w->m.paused_seconds = cm_metrics_counter(
            w->mx, "paused_seconds_total",
            "Seconds the partitions were paused for a Redis outage.", NULL);
        w->m.given_up = cm_metrics_counter(
            w->mx, "produce_given_up_total",
            "Messages produced that could never be delivered.", NULL);
        if (!w->cfg.metrics_listen[0])
                return 0;
        w->httpd = cm_httpd_new(w->cfg.metrics_listen, w->mx, worker_ready, w,
                                errstr, errstr_size);
        if (!w->httpd)
                return -1;
        cm_info("serving /metrics, /healthz and /readyz on '%s'",
                w->cfg.metrics_listen);
        return 0;
}

int cm_worker_start(cm_worker_t *w, const char *group, const char *topic)
{
        char errstr[512];

        w->status = 1; /* until started */
        if (start_ops(w, errstr, sizeof(errstr)) == -1)
                goto fail;
        if (cm_tokenizer_get(w->cfg.tokenizer, &w->tk, errstr,
                             sizeof(errstr)) == -1)
                goto fail;
        w->st = cm_store_new(&w->cfg, errstr, sizeof(errstr));
        if (!w->st)
                goto fail;
        if (cm_store_connect(w->st, errstr, sizeof(errstr)) == -1)
                cm_warn("%s; retrying when there is work", errstr);
        atomic_store(&w->ready_redis, cm_store_connected(w->st));
        if (w->spec->rpc)
                w->producer = cm_kafka_rpc_producer_new(&w->cfg, worker_dr, w,
                                                        errstr, sizeof(errstr));
        else
                w->producer = cm_kafka_producer_new(&w->cfg, worker_dr, w,
                                                    errstr, sizeof(errstr));
        if (!w->producer)
                goto fail;
        if (w->httpd)
                w->consumer = cm_kafka_consumer_new_stats(
                    &w->cfg, group, worker_rebalance, worker_stats,
                    STATS_INTERVAL_MS, w, errstr, sizeof(errstr));
        else
                w->consumer =
                    cm_kafka_consumer_new(&w->cfg, group, worker_rebalance, w,
                                          errstr, sizeof(errstr));
        if (!w->consumer)
                goto fail;
        if (cm_kafka_subscribe(w->consumer, topic, errstr, sizeof(errstr)) ==
            -1)
                goto fail;
        cm_info("consuming '%s' in group '%s', redis '%s'", topic, group,
                cm_store_url(w->st));
        w->status = 0;
        return 0;
fail:
        cm_error("%s", errstr);
        return -1;
}

int cm_worker_running(cm_worker_t *w)
{
        if (w->st)
                atomic_store(&w->ready_redis,
                             cm_store_connected(w->st) && !w->redis_paused);
        if (cm_stop)
                return 0;
        if ((w->consumer && rd_kafka_fatal_error(w->consumer, NULL, 0)) ||
            (w->producer && rd_kafka_fatal_error(w->producer, NULL, 0))) {
                cm_error("stopping after a fatal kafka error");
                atomic_store(&w->ready_fatal, 1);
                cm_stop = 1;
                return 0;
        }
        return 1;
}

/* Adds the time paused since it was last counted. */
static void count_paused(cm_worker_t *w)
{
        int64_t now = cm_mono_us();

        cm_metric_add(w->m.paused_seconds, (now - w->paused_acct_us) / 1e6);
        w->paused_acct_us = now;
}

static void log_consumer_error(const rd_kafka_message_t *m)
{
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                cm_warn("consumer: %s", rd_kafka_message_errstr(m));
}

rd_kafka_message_t *cm_worker_poll(cm_worker_t *w, int timeout_ms)
{
        rd_kafka_message_t *m;

        for (;;) {
                if (w->carry_cnt > 0 && !w->redis_paused) {
                        m = w->carry[0];
                        memmove(w->carry, w->carry + 1,
                                --w->carry_cnt * sizeof(*w->carry));
                } else {
                        m = rd_kafka_consumer_poll(w->consumer, timeout_ms);
                }
                if (m && m->err) {
                        log_consumer_error(m);
                        rd_kafka_message_destroy(m);
                        return NULL;
                }
                if (!m ||
                    !is_held(w, rd_kafka_topic_name(m->rkt), m->partition))
                        return m;
                /* Fetched before its hold: its release seeks back. */
                rd_kafka_message_destroy(m);
                timeout_ms = 0;
        }
}

size_t cm_worker_poll_batch(cm_worker_t *w, rd_kafka_message_t **batch,
                            size_t max, int timeout_ms)
{
        rd_kafka_message_t *m;
        size_t n = 0;

        if (max == 0)
                return 0;
        m = cm_worker_poll(w, timeout_ms);
        if (!m)
                return 0;
        batch[n++] = m;
        while (n < max && (m = cm_worker_poll(w, 0)))
                batch[n++] = m;
        return n;
}

/* Keeps a message fetched while paused, for cm_worker_poll(). */
static void carry(cm_worker_t *w, rd_kafka_message_t *m)
{
        if (w->carry_cnt == w->carry_cap) {
                w->carry_cap = w->carry_cap ? 2 * w->carry_cap : 16;
                w->carry =
                    cm_realloc(w->carry, w->carry_cap * sizeof(*w->carry));
        }
        w->carry[w->carry_cnt++] = m;
}

int cm_worker_redis_wait(cm_worker_t *w, const char *errstr)
{
        char why[512];
        int ms;

        cm_metric_inc(w->m.redis_errors);
        if (!w->redis_paused) {
                w->redis_paused = 1;
                w->paused_acct_us = cm_mono_us();
                if (cm_kafka_pause_all(w->consumer, 1, NULL, why,
                                       sizeof(why)) == -1)
                        cm_error("%s", why);
                cm_warn("%s; partitions paused, retrying", errstr);
        } else {
                cm_debug("%s; retrying", errstr);
        }
        ms = cm_backoff_fail(&w->backoff, cm_mono_us());
        while (cm_worker_running(w) &&
               !cm_backoff_ready(&w->backoff, cm_mono_us())) {
                rd_kafka_message_t *m =
                    rd_kafka_consumer_poll(w->consumer, ms < 100 ? ms : 100);

                /* Fetched before the pause took effect: its turn comes
                 * after the batch in hand. */
                if (m && m->err) {
                        log_consumer_error(m);
                        rd_kafka_message_destroy(m);
                } else if (m && is_held(w, rd_kafka_topic_name(m->rkt),
                                        m->partition)) {
                        rd_kafka_message_destroy(m);
                } else if (m) {
                        carry(w, m);
                }
                rd_kafka_poll(w->producer, 0);
                count_paused(w);
        }
        return cm_worker_running(w) ? 0 : -1;
}

void cm_worker_redis_ok(cm_worker_t *w)
{
        char why[512];

        cm_backoff_ok(&w->backoff);
        if (!w->redis_paused)
                return;
        count_paused(w);
        w->redis_paused = 0;
        if (cm_kafka_pause_all(w->consumer, 0, w->held, why, sizeof(why)) == -1)
                cm_error("%s", why);
        cm_info("redis '%s' is back; partitions resumed", cm_store_url(w->st));
}

void cm_worker_hold_all(cm_worker_t *w)
{
        rd_kafka_topic_partition_list_t *now = NULL;
        rd_kafka_resp_err_t err;
        char why[512];
        size_t i;

        err = rd_kafka_assignment(w->consumer, &now);
        if (err) {
                cm_error("cannot read the assignment to hold it: %s",
                         rd_kafka_err2str(err));
                return;
        }
        if (cm_kafka_pause_all(w->consumer, 1, NULL, why, sizeof(why)) == -1)
                cm_error("%s", why);
        if (w->held)
                rd_kafka_topic_partition_list_destroy(w->held);
        w->held = now;
        /* Every partition is held: what was carried comes again. */
        for (i = 0; i < w->carry_cnt; i++)
                rd_kafka_message_destroy(w->carry[i]);
        w->carry_cnt = 0;
}

int cm_worker_release(cm_worker_t *w,
                      const rd_kafka_topic_partition_list_t *starts,
                      char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *seek, *done;
        rd_kafka_error_t *error;
        int i, ret = 0;

        seek = rd_kafka_topic_partition_list_new(starts->cnt);
        for (i = 0; i < starts->cnt; i++) {
                const rd_kafka_topic_partition_t *s = &starts->elems[i];

                if (is_held(w, s->topic, s->partition))
                        rd_kafka_topic_partition_list_add(seek, s->topic,
                                                          s->partition)
                            ->offset = s->offset;
        }
        if (!seek->cnt) {
                rd_kafka_topic_partition_list_destroy(seek);
                return 0;
        }
        error = rd_kafka_seek_partitions(w->consumer, seek, SEEK_TIMEOUT_MS);
        if (error) {
                snprintf(errstr, errstr_size, "cannot seek: %s",
                         rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                rd_kafka_topic_partition_list_destroy(seek);
                return -1;
        }
        done = rd_kafka_topic_partition_list_new(seek->cnt);
        for (i = 0; i < seek->cnt; i++) {
                const rd_kafka_topic_partition_t *s = &seek->elems[i];

                if (s->err) {
                        snprintf(errstr, errstr_size,
                                 "cannot seek '%s' [%d]: %s", s->topic,
                                 (int)s->partition, rd_kafka_err2str(s->err));
                        ret = -1;
                        continue;
                }
                rd_kafka_topic_partition_list_del(w->held, s->topic,
                                                  s->partition);
                rd_kafka_topic_partition_list_add(done, s->topic, s->partition);
        }
        if (done->cnt && !w->redis_paused) {
                rd_kafka_resp_err_t err =
                    rd_kafka_resume_partitions(w->consumer, done);

                if (err)
                        cm_error("cannot resume released partitions: %s",
                                 rd_kafka_err2str(err));
        }
        rd_kafka_topic_partition_list_destroy(done);
        rd_kafka_topic_partition_list_destroy(seek);
        return ret;
}

/* Queues payload (owned from here on) with key[0..key_len), counted in d,
 * waiting in steps of 100 ms while the queue is full, so that a stop is
 * noticed. */
static int produce(cm_worker_t *w, const char *topic, const void *key,
                   size_t key_len, char *payload, rd_kafka_headers_t *hdrs,
                   cm_delivery_t *d)
{
        rd_kafka_resp_err_t err;

        do {
                err = cm_kafka_produce(w->producer, topic, key, key_len,
                                       payload, hdrs, d, cm_mono_us() + 100000);
        } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && cm_worker_running(w));
        if (err) {
                cm_error("cannot produce to '%s': %s", topic,
                         rd_kafka_err2str(err));
                free(payload);
                if (hdrs)
                        rd_kafka_headers_destroy(hdrs);
                w->given_up++;
                cm_metric_inc(w->m.given_up);
                return -1;
        }
        if (d)
                d->pending++;
        return 0;
}

int cm_worker_produce(cm_worker_t *w, const char *topic, const char *key,
                      char *payload, cm_delivery_t *d)
{
        return produce(w, topic, key, key ? strlen(key) : 0, payload, NULL, d);
}

int cm_worker_produce_headers(cm_worker_t *w, const char *topic,
                              const char *key, char *payload,
                              rd_kafka_headers_t *hdrs, cm_delivery_t *d)
{
        return produce(w, topic, key, key ? strlen(key) : 0, payload, hdrs, d);
}

int cm_worker_to_dlq(cm_worker_t *w, const rd_kafka_message_t *m,
                     const char *why, cm_delivery_t *d)
{
        /* As much of the key as the entry keeps (cm_dlq_encode()): a
         * hostile key must not make the entry too large to deliver. */
        size_t key_len =
            m->key_len < CM_DLQ_KEY_MAX ? m->key_len : CM_DLQ_KEY_MAX;

        cm_warn("message at '%s' [%d] @%lld to '%s': %s",
                rd_kafka_topic_name(m->rkt), (int)m->partition,
                (long long)m->offset, w->cfg.topic_dlq, why);
        return produce(w, w->cfg.topic_dlq, m->key, key_len,
                       cm_dlq_encode(rd_kafka_topic_name(m->rkt), m->partition,
                                     m->offset, m->key, m->key_len, m->payload,
                                     m->len, why),
                       NULL, d);
}

int cm_worker_wait_delivered(cm_worker_t *w, const cm_delivery_t *d)
{
        while (d->pending > 0) {
                if (!cm_worker_running(w))
                        return -1;
                rd_kafka_poll(w->producer, 10);
        }
        return 0;
}

void cm_worker_ask_compaction(cm_worker_t *w, const char *user_id,
                              const char *conversation_id)
{
        char key[CM_SESSION_KEY_MAX];

        cm_session_key(key, user_id, conversation_id);
        /* When it cannot be queued, the job stays marked pending in Redis
         * and is asked for again once it goes stale. */
        cm_worker_produce(
            w, w->cfg.topic_compaction, key,
            cm_compaction_job_encode(user_id, conversation_id, cm_now_ms()),
            NULL);
}

int cm_worker_finish(cm_worker_t *w)
{
        char errstr[512];
        int status = w->status;
        size_t i;

        /* No endpoint once teardown begins. */
        cm_httpd_destroy(w->httpd);
        w->httpd = NULL;
        if (w->consumer &&
            cm_kafka_commit(w->consumer, errstr, sizeof(errstr)) == -1)
                cm_warn("final %s", errstr);
        if (cm_kafka_producer_close(w->producer, FINISH_FLUSH_MS) > 0)
                status = 1;
        cm_kafka_consumer_close(w->consumer);
        for (i = 0; i < w->carry_cnt; i++)
                rd_kafka_message_destroy(w->carry[i]);
        free(w->carry);
        if (w->held)
                rd_kafka_topic_partition_list_destroy(w->held);
        cm_store_destroy(w->st);
        curl_global_cleanup();
        cm_config_release(&w->cfg);
        cm_metrics_destroy(w->mx);
        memset(w, 0, sizeof(*w));
        return status;
}
