/*
 * chatmem-bench ingest: produce chat events over S sessions, paced so that
 * the consumers stay within the devbroker's retention, and wait until
 * Redis holds them all; events/s from the first produce to the last ack.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"
#include "daemon.h"
#include "kafka.h"
#include "produce.h"
#include "log.h"
#include "topic.h"

static long long session_msgs(const bench_opts_t *o, long long s)
{
        if (o->events > 0)
                return o->events / o->sessions +
                       (s < o->events % o->sessions ? 1 : 0);
        /* 20..50 spread deterministically */
        return o->msgs_min +
               (long long)(((unsigned long long)s * 2654435761ULL) %
                           (unsigned long long)(o->msgs_max - o->msgs_min + 1));
}

/* Produces one event of a session outside the run ("<tag>w") and waits
 * until Redis holds it, so that the clock starts with the workers in their
 * group and serving. Returns 0, or -1 after logging why. */
static int warm_ingest(rd_kafka_t *rk, redisContext *rc, const cm_config_t *cfg,
                       const bench_opts_t *o)
{
        cm_event_t ev;
        char key[CM_SESSION_KEY_MAX];
        double deadline = now_s() + (double)o->timeout;

        memset(&ev, 0, sizeof(ev));
        ev.type = CM_EVENT_MESSAGE;
        snprintf(ev.user_id, sizeof(ev.user_id), "%sw", o->tag);
        snprintf(ev.conversation_id, sizeof(ev.conversation_id), "default");
        snprintf(ev.event_id, sizeof(ev.event_id), "%s-warm", o->tag);
        ev.msg.role = CM_ROLE_USER;
        ev.msg.content = "warm-up";
        ev.msg.content_len = 7;
        cm_session_key(key, ev.user_id, ev.conversation_id);
        if (tool_produce(rk, cfg->topic_events, key, cm_event_encode(&ev)) ==
            -1)
                return -1;
        rd_kafka_flush(rk, 10000);
        while (!cm_stop) {
                redisReply *r = redisCommand(rc, "HGET %s{%s}:meta total",
                                             cfg->key_prefix, key);
                int have = r && r->type == REDIS_REPLY_STRING;

                freeReplyObject(r);
                if (have)
                        return 0;
                if (now_s() > deadline) {
                        cm_error("warm-up: no ingest worker stored an event "
                                 "within %lld s",
                                 o->timeout);
                        break;
                }
                usleep(20000);
        }
        return -1;
}

/* Prints where the run is, at most once a second (*t_prog: when it last
 * did); summaries < 0 are not shown. */
static void progress(double t0, double *t_prog, long long produced,
                     long long acked, long long summaries)
{
        if (now_s() - *t_prog < 1.0)
                return;
        *t_prog = now_s();
        if (summaries < 0)
                fprintf(stderr, "ingest: %.0fs produced %lld, in redis %lld\n",
                        *t_prog - t0, produced, acked);
        else
                fprintf(stderr,
                        "ingest: %.0fs produced %lld, in redis %lld, "
                        "summaries %lld\n",
                        *t_prog - t0, produced, acked, summaries);
}

int run_ingest(const cm_config_t *cfg, const bench_opts_t *o)
{
        rd_kafka_t *rk = NULL;
        redisContext *rc = NULL;
        atomic_llong failed = 0;
        long long *cnt = NULL, total = 0, produced = 0, acked = 0, round, s;
        long long base = 0, applied = 0;
        struct rusage ru;
        long long maxc = 0, counts[3] = {0, 0, 0};
        double t0 = 0, t_last = 0, t_prog = 0, deadline;
        cm_buf_t content;
        char errstr[512], key[CM_SESSION_KEY_MAX];
        int ret = 1;

        cm_buf_init(&content);
        rc = redis_connect(cfg->redis_url, errstr, sizeof(errstr));
        if (!rc) {
                cm_error("%s", errstr);
                goto out;
        }
        rk = cm_kafka_producer_new(cfg, on_delivery, &failed, errstr,
                                   sizeof(errstr));
        if (!rk) {
                cm_error("%s", errstr);
                goto out;
        }
        /* The producer learns the partitions now, not at its first
         * message. */
        if (tool_topic_partitions(rk, cfg->topic_events,
                                  cm_mono_us() + o->timeout * 1000000, NULL,
                                  errstr, sizeof(errstr)) == -1) {
                cm_error("%s", errstr);
                goto out;
        }
        if (redis_applied(rc, cfg->key_prefix, &base, errstr, sizeof(errstr)) ==
            -1) {
                cm_error("%s", errstr);
                goto out;
        }
        if (warm_ingest(rk, rc, cfg, o) == -1)
                goto out;
        base++; /* the warm-up event */
        cnt = cm_calloc((size_t)o->sessions, sizeof(*cnt));
        for (s = 0; s < o->sessions; s++) {
                cnt[s] = session_msgs(o, s);
                total += cnt[s];
                if (cnt[s] > maxc)
                        maxc = cnt[s];
        }
        fprintf(stderr,
                "ingest: %lld events over %lld sessions (window %lld)\n", total,
                o->sessions, o->window);
        t0 = now_s();
        t_prog = t0;
        for (round = 0; round < maxc && !cm_stop; round++) {
                for (s = 0; s < o->sessions && !cm_stop; s++) {
                        cm_event_t ev;

                        if (round >= cnt[s])
                                continue;
                        /* Pace: stay within the broker's retention. */
                        while (produced - acked >= o->window && !cm_stop) {
                                rd_kafka_poll(rk, 0);
                                if (redis_applied(rc, cfg->key_prefix, &acked,
                                                  errstr,
                                                  sizeof(errstr)) == -1) {
                                        cm_error("%s", errstr);
                                        goto out;
                                }
                                acked -= base;
                                if (produced - acked >= o->window)
                                        cm_kafka_sleep(rk, 5);
                        }
                        memset(&ev, 0, sizeof(ev));
                        ev.type = CM_EVENT_MESSAGE;
                        snprintf(ev.user_id, sizeof(ev.user_id), "%su%lld",
                                 o->tag, s);
                        snprintf(ev.conversation_id, sizeof(ev.conversation_id),
                                 "default");
                        snprintf(ev.event_id, sizeof(ev.event_id),
                                 "%s-%lld-%lld", o->tag, s, round);
                        ev.msg.role = conv_msg(round, &content);
                        ev.msg.content = content.buf;
                        ev.msg.content_len = content.len;
                        ev.msg.ts = 1732400000000LL + round * 1000;
                        cm_session_key(key, ev.user_id, ev.conversation_id);
                        if (tool_produce(rk, cfg->topic_events, key,
                                         cm_event_encode(&ev)) == -1)
                                goto out;
                        produced++;
                        if ((produced & 1023) == 0)
                                rd_kafka_poll(rk, 0);
                        progress(t0, &t_prog, produced, acked, -1);
                }
        }
        rd_kafka_flush(rk, 30000);
        if (atomic_load(&failed)) {
                cm_error("%lld events were not delivered",
                         (long long)atomic_load(&failed));
                goto out;
        }
        /* Wait for every ack, by the fleet counter; then check what Redis
         * holds event by event (untimed), and wait for the summaries when
         * asked. */
        deadline = now_s() + (double)o->timeout;
        for (;;) {
                if (acked < total) {
                        if (redis_applied(rc, cfg->key_prefix, &applied, errstr,
                                          sizeof(errstr)) == -1) {
                                cm_error("%s", errstr);
                                goto out;
                        }
                        if (applied - base > acked)
                                t_last = now_s();
                        acked = applied - base;
                }
                if (acked < total) {
                        if (now_s() > deadline || cm_stop) {
                                cm_error("timed out: %lld of %lld events in "
                                         "redis",
                                         acked, total);
                                goto out;
                        }
                        progress(t0, &t_prog, produced, acked, -1);
                        usleep(2000);
                        continue;
                }
                if (redis_count(rc, cfg->key_prefix, o->tag, o->sessions, 1,
                                counts, errstr, sizeof(errstr)) == -1) {
                        cm_error("%s", errstr);
                        goto out;
                }
                if (counts[0] != total) {
                        cm_error("the fleet counter says %lld events were "
                                 "applied, but the sessions hold %lld of %lld",
                                 acked, counts[0], total);
                        goto out;
                }
                if (counts[1] >= o->wait_summary)
                        break;
                if (now_s() > deadline || cm_stop) {
                        cm_error("timed out: %lld of %lld events in redis, "
                                 "%lld summaries",
                                 acked, total, counts[1]);
                        goto out;
                }
                progress(t0, &t_prog, produced, acked, counts[1]);
                usleep(200000);
        }
        if (t_last == 0)
                t_last = now_s();
        getrusage(RUSAGE_SELF, &ru);
        printf("{\"mode\":\"ingest\",\"events\":%lld,\"sessions\":%lld,"
               "\"seconds\":%.3f,\"events_per_s\":%.0f,\"summaries\":%lld,"
               "\"profiles\":%lld,\"load_cpu_s\":%.3f}\n",
               total, o->sessions, t_last - t0, (double)total / (t_last - t0),
               counts[1], counts[2],
               (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                   (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
        fflush(stdout);
        fprintf(stderr, "ingest: %lld events in %.2f s: %.0f events/s\n", total,
                t_last - t0, (double)total / (t_last - t0));
        ret = 0;
out:
        cm_kafka_producer_close(rk, 5000);
        if (rc)
                redisFree(rc);
        free(cnt);
        cm_buf_release(&content);
        return ret;
}
