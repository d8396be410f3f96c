/*
 * chatmem-bench context: open-loop context requests at a fixed rate;
 * latency from the request's scheduled send time to the receipt of its
 * reply (log-bucketed histogram, corrected for coordinated omission).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "daemon.h"
#include "kafka.h"
#include "produce.h"
#include "log.h"
#include "topic.h"

typedef struct ctx_run {
        rd_kafka_t *consumer;
        const char *tag;
        size_t tag_len;
        _Atomic int64_t *sent_us; /* scheduled send time per request, 0 */
        long long cap;
        hist_t hist;
        atomic_llong received;
        atomic_llong errors;
        atomic_int done;
        atomic_int warm;            /* the reply to "<prefix>w" arrived */
        atomic_llong warm_received; /* replies to "<prefix>x<n>" */
        _Atomic int64_t last_us;    /* receipt of the last reply */
} ctx_run_t;

/* Parses "<tag>r<n>" into n. Returns -1 when the key is not ours. */
static long long reply_index(const ctx_run_t *cr, const char *key, size_t len)
{
        long long n = 0;
        size_t i;

        if (len <= cr->tag_len || memcmp(key, cr->tag, cr->tag_len))
                return -1;
        for (i = cr->tag_len; i < len; i++) {
                if (key[i] < '0' || key[i] > '9' || n > (1LL << 40))
                        return -1;
                n = n * 10 + (key[i] - '0');
        }
        return n < cr->cap ? n : -1;
}

static void *reply_loop(void *arg)
{
        ctx_run_t *cr = arg;

        while (!atomic_load(&cr->done)) {
                rd_kafka_message_t *m =
                    rd_kafka_consumer_poll(cr->consumer, 50);
                int64_t now = cm_mono_us(), sent;
                long long n;

                if (!m)
                        continue;
                if (m->err || !m->key) {
                        rd_kafka_message_destroy(m);
                        continue;
                }
                /* The warm-up's: "<prefix>w", then "<prefix>x<n>". */
                if (m->key_len > cr->tag_len &&
                    !memcmp(m->key, cr->tag, cr->tag_len)) {
                        char c = ((const char *)m->key)[cr->tag_len];

                        if (c == 'w' && m->key_len == cr->tag_len + 1)
                                atomic_store(&cr->warm, 1);
                        else if (c == 'x')
                                atomic_fetch_add(&cr->warm_received, 1);
                }
                n = reply_index(cr, m->key, m->key_len);
                if (n >= 0) {
                        sent = atomic_exchange(&cr->sent_us[n], 0);
                        if (sent > 0) {
                                hist_record(&cr->hist, now - sent);
                                if (cm_reply_is_error(m->payload, m->len))
                                        atomic_fetch_add(&cr->errors, 1);
                                atomic_fetch_add(&cr->received, 1);
                                atomic_store(&cr->last_us, now);
                        }
                }
                rd_kafka_message_destroy(m);
        }
        return NULL;
}

/* Sends the context request request_id for the session of the run's user
 * number user_n ("<tag>u<n>:default"), its reply to go to reply_topic.
 * Returns 0, or -1 after logging why. */
static int send_request(rd_kafka_t *rk, const cm_config_t *cfg,
                        const bench_opts_t *o, const char *reply_topic,
                        const char *request_id, long long user_n)
{
        cm_request_t req;
        char key[CM_SESSION_KEY_MAX], query[128];

        memset(&req, 0, sizeof(req));
        snprintf(req.request_id, sizeof(req.request_id), "%s", request_id);
        snprintf(req.user_id, sizeof(req.user_id), "%su%lld", o->tag, user_n);
        snprintf(req.conversation_id, sizeof(req.conversation_id), "default");
        req.reply_to = (char *)reply_topic; /* borrowed: not released */
        req.recent = -1;
        if (o->query) {
                /* A question about one of the session's topics, as an
                 * application would pass the message it is answering. */
                snprintf(query, sizeof(query),
                         "Can you remind me what you said about %s?",
                         conv_topic(user_n + (long long)strlen(request_id)));
                req.query = query; /* borrowed: not released */
        }
        cm_session_key(key, req.user_id, req.conversation_id);
        return tool_produce(rk, cfg->topic_requests, key,
                            cm_request_encode(&req));
}

/* Sends total requests at o->rate, open loop: every request has its
 * scheduled time, all that are due go out, latency counts from that time.
 * With cr, the measured run: request_id "<prefix><n>", each scheduled time
 * kept in cr->sent_us, the start written to *t0 and the worst lateness
 * to *behind_max, progress on stderr. Without, the warm-up: request_id
 * "<prefix>x<n>", nothing kept. Returns the number sent (fewer when
 * stopped by a signal), or -1 after logging why. */
static long long open_loop(rd_kafka_t *rk, const cm_config_t *cfg,
                           const bench_opts_t *o, const char *reply_topic,
                           ctx_run_t *cr, long long total, int64_t *t0,
                           int64_t *behind_max)
{
        int64_t start = cm_mono_us(), now;
        long long sent = 0;
        double t_prog = now_s();
        char request_id[CM_ID_MAX + 1];

        if (t0)
                *t0 = start;
        while (sent < total && !cm_stop) {
                now = cm_mono_us();
                while (sent < total) {
                        int64_t due = start + (int64_t)((double)sent * 1e6 /
                                                        (double)o->rate);

                        if (due > now)
                                break;
                        if (behind_max && now - due > *behind_max)
                                *behind_max = now - due;
                        snprintf(request_id, sizeof(request_id), "%s%s%lld",
                                 o->req_prefix, cr ? "" : "x", sent);
                        if (cr)
                                atomic_store(&cr->sent_us[sent], due);
                        if (send_request(rk, cfg, o, reply_topic, request_id,
                                         sent % o->sessions) == -1)
                                return -1;
                        sent++;
                }
                rd_kafka_poll(rk, 0);
                if (cr && now_s() - t_prog >= 1.0) {
                        t_prog = now_s();
                        fprintf(stderr,
                                "context: %lld/%lld sent, %lld "
                                "replies\n",
                                sent, total,
                                (long long)atomic_load(&cr->received));
                }
                usleep(100);
        }
        return sent;
}

int run_context(const cm_config_t *cfg, const bench_opts_t *o)
{
        ctx_run_t cr;
        rd_kafka_t *rk = NULL;
        pthread_t th;
        int th_started = 0, ret = 1;
        atomic_llong failed = 0;
        const char *reply_topic =
            o->reply_topic ? o->reply_topic : cfg->topic_replies;
        long long total = o->rate * o->duration, sent = 0, missing;
        int64_t t0 = 0, behind_max = 0;
        int64_t setup_deadline = cm_mono_us() + o->timeout * 1000000;
        double deadline, secs;
        char errstr[512], request_id[CM_ID_MAX + 1], group[64];

        memset(&cr, 0, sizeof(cr));
        cr.tag = o->req_prefix;
        cr.tag_len = strlen(o->req_prefix);
        cr.cap = total;
        cr.sent_us = cm_calloc((size_t)total, sizeof(*cr.sent_us));
        /* A group of its own: assign() needs one; offsets are not used. */
        snprintf(group, sizeof(group), "chatmem-bench-%d", (int)getpid());
        cr.consumer = cm_kafka_consumer_new(cfg, group, NULL, NULL, errstr,
                                            sizeof(errstr));
        if (!cr.consumer) {
                cm_error("%s", errstr);
                goto out;
        }
        rk = cm_kafka_rpc_producer_new(cfg, on_delivery, &failed, errstr,
                                       sizeof(errstr));
        if (!rk) {
                cm_error("%s", errstr);
                goto out;
        }
        /* The producer learns the request topic's partitions now, and
         * the consumer reads every reply produced from now on. */
        if (tool_topic_partitions(rk, cfg->topic_requests, setup_deadline, NULL,
                                  errstr, sizeof(errstr)) == -1 ||
            tool_topic_assign_at_end(cr.consumer, reply_topic, setup_deadline,
                                     errstr, sizeof(errstr)) == -1) {
                cm_error("%s", errstr);
                goto out;
        }
        if (pthread_create(&th, NULL, reply_loop, &cr) != 0) {
                cm_error("cannot start the reply thread");
                goto out;
        }
        th_started = 1;
        /* One request answered before the clock starts: the worker is in
         * its group and the reply path is warm. */
        {
                double warm_deadline = now_s() + (double)o->timeout;

                snprintf(request_id, sizeof(request_id), "%sw", o->req_prefix);
                if (send_request(rk, cfg, o, reply_topic, request_id, 0) == -1)
                        goto out;
                while (!atomic_load(&cr.warm) && !cm_stop) {
                        if (now_s() > warm_deadline) {
                                cm_error("warm-up: no reply within %lld s; is "
                                         "chatmem-context running?",
                                         o->timeout);
                                goto out;
                        }
                        rd_kafka_poll(rk, 10);
                }
        }
        /* Warm-up at the run's rate (--warmup), its replies awaited and
         * not recorded: the load generator, the worker and the broker are
         * past their start-up when the clock starts. */
        if (o->warmup > 0) {
                long long n = open_loop(rk, cfg, o, reply_topic, NULL,
                                        o->rate * o->warmup, NULL, NULL);
                double warm_deadline = now_s() + (double)o->timeout;

                if (n < 0)
                        goto out;
                while (atomic_load(&cr.warm_received) < n && !cm_stop &&
                       now_s() < warm_deadline)
                        rd_kafka_poll(rk, 10);
        }
        fprintf(stderr, "context: %lld req/s for %lld s over %lld sessions\n",
                o->rate, o->duration, o->sessions);
        sent = open_loop(rk, cfg, o, reply_topic, &cr, total, &t0, &behind_max);
        if (sent < 0)
                goto out;
        secs = (double)(cm_mono_us() - t0) / 1e6;
        deadline = now_s() + (double)o->timeout;
        while (atomic_load(&cr.received) < sent && now_s() < deadline &&
               !cm_stop) {
                rd_kafka_poll(rk, 50);
        }
        ret = 0;
out:
        if (th_started) {
                atomic_store(&cr.done, 1);
                pthread_join(th, NULL);
        }
        if (ret == 0) {
                missing = sent - atomic_load(&cr.received);
                printf("{\"mode\":\"context\",\"rate\":%lld,\"duration_s\":"
                       "%lld,\"sent\":%lld,\"received\":%lld,\"errors\":%lld,"
                       "\"missing\":%lld,\"send_s\":%.3f,\"achieved_rps\":%.0f,"
                       "\"sender_behind_max_us\":%lld,\"p50_us\":%lld,"
                       "\"p90_us\":%lld,\"p99_us\":%lld,\"p999_us\":%lld,"
                       "\"max_us\":%lld}\n",
                       o->rate, o->duration, sent,
                       (long long)atomic_load(&cr.received),
                       (long long)atomic_load(&cr.errors), missing, secs,
                       (double)atomic_load(&cr.received) /
                           ((double)(atomic_load(&cr.last_us) - t0) / 1e6 > secs
                                ? (double)(atomic_load(&cr.last_us) - t0) / 1e6
                                : secs),
                       (long long)behind_max, (long long)hist_pct(&cr.hist, 50),
                       (long long)hist_pct(&cr.hist, 90),
                       (long long)hist_pct(&cr.hist, 99),
                       (long long)hist_pct(&cr.hist, 99.9),
                       (long long)cr.hist.max);
                fflush(stdout);
                fprintf(stderr,
                        "context: %lld req/s: p50 %.2f ms, p99 %.2f ms, "
                        "max %.2f ms, %lld missing\n",
                        o->rate, (double)hist_pct(&cr.hist, 50) / 1000,
                        (double)hist_pct(&cr.hist, 99) / 1000,
                        (double)cr.hist.max / 1000, missing);
        }
        cm_kafka_producer_close(rk, 5000);
        if (cr.consumer) {
                rd_kafka_consumer_close(cr.consumer);
                rd_kafka_destroy(cr.consumer);
        }
        free((void *)cr.sent_us);
        return ret;
}
