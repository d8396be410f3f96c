/*
 * chatmem-bench: the load generator behind `make bench`.
 *
 *   chatmem-bench ingest   produce chat events over S sessions, paced so
 *                          the consumers stay within the devbroker's
 *                          retention, and wait until Redis holds them all;
 *                          events/s from the first produce to the last ack
 *   chatmem-bench context  open-loop context requests at a fixed rate,
 *                          latency from the request's scheduled send time
 *                          to the receipt of its reply (log-bucketed
 *                          histogram, corrected for coordinated omission)
 *   chatmem-bench build    in-process: decode a 50-message session, build
 *                          its context, encode the reply; µs per build
 *   chatmem-bench cost     exact tokens with and without chatmem for
 *                          conversations of several lengths, and the
 *                          monthly cost they imply
 *
 * Results are JSON lines on stdout; progress goes to stderr. Settings come
 * from chatmem.conf and the environment like every chatmem program
 * (CHATMEM_KAFKA_BROKERS, CHATMEM_REDIS_URL, CHATMEM_KAFKA_PROP_*).
 *
 * The conversations are in the seed's style: the user introduces
 * themself ("Hi, I'm Sumit Pandya, full stack developer") and asks
 * programming questions that get long answers.
 */
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <json-c/json.h>
#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "config.h"
#include "context.h"
#include "daemon.h"
#include "kafka.h"
#include "log.h"
#include "profile.h"
#include "summarize.h"
#include "tokens.h"
#include "util.h"

/* ------------------------------------------------------------------ */
/* Options                                                              */

typedef struct bench_opts {
        const char *conf_path;
        const char *tag;         /* prefix of the user ids of this run */
        long long events;        /* ingest: total events (0: from msgs) */
        long long sessions;      /* sessions to spread over / ask about */
        long long msgs_min;      /* per-session messages when events=0 */
        long long msgs_max;      /* */
        long long window;        /* ingest: max produced but not acked */
        long long rate;          /* context: requests per second */
        long long duration;      /* context: seconds of sending */
        long long timeout;       /* seconds to wait for acks / replies */
        long long iterations;    /* build: builds to time */
        long long linger_ms;     /* -1: chatmem's default */
        long long wait_summary;  /* ingest: also wait for this many summaries */
        const char *reply_topic; /* context: NULL = the configured one */
        const char *req_prefix;  /* context: request_id = <prefix><n> */
        const char *lengths;     /* cost: "5,10,20,50" */
        double price;            /* cost: $ per 1M input tokens */
        long long users;         /* cost */
        long long per_day;       /* cost: messages per user per day */
} bench_opts_t;

static void usage(FILE *fp)
{
        fprintf(fp,
                "usage: chatmem-bench MODE [options]\n"
                "\n"
                "  ingest   --events N --sessions S [--window W] [--tag T]\n"
                "           [--msgs-min A --msgs-max B] [--wait-summary K]\n"
                "  context  --rate R --duration D --sessions S --tag T\n"
                "           [--reply-topic TOPIC] [--req-prefix P]\n"
                "  build    [--iterations N]\n"
                "  cost     [--lengths 5,10,20,50] [--price USD_PER_1M]\n"
                "           [--users N] [--per-day N]\n"
                "\n"
                "common:    [-c chatmem.conf] [--linger-ms MS] [--timeout S]\n"
                "\n"
                "Results are JSON lines on stdout, progress is on stderr.\n"
                "With --events 0 each session gets between --msgs-min and\n"
                "--msgs-max messages. --window bounds the events produced but\n"
                "not yet in Redis, so that the consumers stay within the\n"
                "devbroker's retention (about 5 MB per partition).\n");
}

static int opt_int(const char *name, const char *s, long long min,
                   long long max, long long *out)
{
        if (cm_parse_int(s, min, max, out) == -1) {
                fprintf(stderr,
                        "chatmem-bench: %s: '%s' is not a number in "
                        "[%lld, %lld]\n",
                        name, s, min, max);
                return -1;
        }
        return 0;
}

/* ------------------------------------------------------------------ */
/* Conversations in the seed's style                                    */

static const char *const topics[][2] = {
    {"async/await in JavaScript",
     "an async function returns a Promise and await pauses it until the "
     "Promise settles"},
    {"the event loop",
     "the call stack runs to completion, then microtasks such as resolved "
     "Promises, then the next macrotask such as a timer"},
    {"closures", "a function keeps access to the variables of the scope it "
                 "was created in, even after that scope has returned"},
    {"React hooks", "useState keeps state between renders and useEffect runs "
                    "side effects after the render is committed"},
    {"Node.js streams",
     "a readable stream emits chunks, a writable stream accepts them, and "
     "pipe() handles backpressure between them"},
    {"PostgreSQL indexes", "a B-tree index speeds up equality and range "
                           "lookups at the cost of slower writes"},
    {"Docker layers", "each instruction of a Dockerfile adds a layer, and "
                      "unchanged layers are reused from the cache"},
    {"JWT authentication", "the server signs a token with the user's claims "
                           "and checks the signature on every request"},
};
#define TOPIC_CNT (sizeof(topics) / sizeof(topics[0]))

/* Writes message n of the conversation into b (reset first) and returns
 * its role. Message 0 introduces the user; then questions and answers
 * alternate. Cannot fail. */
static cm_role_t conv_msg(long long n, cm_buf_t *b)
{
        const char *const *t = topics[(size_t)(n / 2) % TOPIC_CNT];

        cm_buf_reset(b);
        if (n == 0) {
                cm_buf_adds(b, "Hi, I'm Sumit Pandya, full stack developer");
                return CM_ROLE_USER;
        }
        if (n == 1) {
                cm_buf_adds(b, "Nice to meet you, Sumit! How can I help you "
                               "today?");
                return CM_ROLE_ASSISTANT;
        }
        if (n % 2 == 0) {
                cm_buf_addf(b,
                            "Can you explain %s? I use it at work on our React "
                            "and Node.js app.",
                            t[0]);
                return CM_ROLE_USER;
        }
        cm_buf_addf(b,
                    "Sure. In short, %s. In practice this matters because it "
                    "decides how your code behaves under load, how errors "
                    "surface and how easy it is to test. If you tell me more "
                    "about your setup, I can suggest a concrete pattern for "
                    "%s.",
                    t[1], t[0]);
        return CM_ROLE_ASSISTANT;
}

/* Fills msgs[0..cnt) with the conversation (owned; release each). */
static void conv_fill(cm_message_t *msgs, size_t cnt)
{
        cm_buf_t b;
        size_t i;

        cm_buf_init(&b);
        for (i = 0; i < cnt; i++) {
                memset(&msgs[i], 0, sizeof(msgs[i]));
                msgs[i].role = conv_msg((long long)i, &b);
                msgs[i].content = cm_strndup(b.buf, b.len);
                msgs[i].content_len = b.len;
                msgs[i].seq = (int64_t)i + 1;
                msgs[i].ts = 1732400000000LL + (int64_t)i * 1000;
                msgs[i].tokens = -1;
        }
        cm_buf_release(&b);
}

static void conv_free(cm_message_t *msgs, size_t cnt)
{
        size_t i;

        for (i = 0; msgs && i < cnt; i++)
                cm_message_release(&msgs[i]);
        free(msgs);
}

/* ------------------------------------------------------------------ */
/* Log-bucketed latency histogram (HDR-style, ~1.6% precision)          */

#define HIST_SUB 64
#define HIST_EXP 40
#define HIST_LEN (2 * HIST_SUB + HIST_EXP * HIST_SUB)

typedef struct hist {
        uint64_t counts[HIST_LEN];
        uint64_t total;
        int64_t max;
} hist_t;

static int hist_index(int64_t v)
{
        int e = 0;

        if (v < 0)
                v = 0;
        if (v < 2 * HIST_SUB)
                return (int)v;
        while ((v >> e) >= 2 * HIST_SUB)
                e++;
        /* v >> e in [64, 128) */
        if (e >= HIST_EXP)
                return HIST_LEN - 1;
        return 2 * HIST_SUB + (e - 1) * HIST_SUB + (int)((v >> e) - HIST_SUB);
}

/* Highest value that falls in bucket i. */
static int64_t hist_value(int i)
{
        int e, sub;

        if (i < 2 * HIST_SUB)
                return i;
        e = (i - 2 * HIST_SUB) / HIST_SUB + 1;
        sub = (i - 2 * HIST_SUB) % HIST_SUB + HIST_SUB;
        return (((int64_t)sub + 1) << e) - 1;
}

static void hist_record(hist_t *h, int64_t v)
{
        h->counts[hist_index(v)]++;
        h->total++;
        if (v > h->max)
                h->max = v;
}

static int64_t hist_pct(const hist_t *h, double pct)
{
        uint64_t want, seen = 0;
        int i;

        if (!h->total)
                return 0;
        want = (uint64_t)ceil(pct / 100.0 * (double)h->total);
        if (want < 1)
                want = 1;
        for (i = 0; i < HIST_LEN; i++) {
                seen += h->counts[i];
                if (seen >= want) {
                        int64_t v = hist_value(i);
                        return v < h->max ? v : h->max;
                }
        }
        return h->max;
}

/* ------------------------------------------------------------------ */
/* Redis: how many events of this run are stored                        */

/* ARGV: key prefix, tag, session count, "1" to count summaries and
 * profiles too (else they are 0). Returns {sum of meta 'total',
 * sessions with a summary, sessions with a profile name}. */
static const char count_lua[] =
    "local p, t, n = ARGV[1], ARGV[2], tonumber(ARGV[3])\n"
    "local s, sm, pr = 0, 0, 0\n"
    "for i = 0, n - 1 do\n"
    "  local u = t .. 'u' .. i\n"
    "  local v = redis.call('HGET', p .. '{' .. u .. ':default}:meta', "
    "'total')\n"
    "  if v then s = s + tonumber(v) end\n"
    "  if ARGV[4] == '1' then\n"
    "  if redis.call('HEXISTS', p .. '{' .. u .. ':default}:summary', "
    "'text') == 1 then sm = sm + 1 end\n"
    "  if redis.call('HEXISTS', p .. '{' .. u .. '}:profile', 'name') == 1 "
    "then pr = pr + 1 end\n"
    "  end\n"
    "end\n"
    "return {s, sm, pr}\n";

static redisContext *redis_connect(const char *url, char *errstr,
                                   size_t errstr_size)
{
        char host[256] = "127.0.0.1";
        long long port = 6379;
        const char *p = url, *colon, *end;
        redisContext *rc;
        char portbuf[16];

        if (!strncmp(p, "redis://", 8))
                p += 8;
        if (strchr(p, '@'))
                p = strchr(p, '@') + 1;
        end = p + strcspn(p, "/");
        colon = memchr(p, ':', (size_t)(end - p));
        if (colon) {
                size_t hl = (size_t)(colon - p), pl = (size_t)(end - colon - 1);

                if (hl && hl < sizeof(host)) {
                        memcpy(host, p, hl);
                        host[hl] = '\0';
                }
                if (pl && pl < sizeof(portbuf)) {
                        memcpy(portbuf, colon + 1, pl);
                        portbuf[pl] = '\0';
                        cm_parse_int(portbuf, 1, 65535, &port);
                }
        } else if (end > p && (size_t)(end - p) < sizeof(host)) {
                memcpy(host, p, (size_t)(end - p));
                host[end - p] = '\0';
        }
        rc = redisConnect(host, (int)port);
        if (!rc || rc->err) {
                snprintf(errstr, errstr_size,
                         "cannot connect to redis '%s': %s", url,
                         rc ? rc->errstr : "out of memory");
                redisFree(rc);
                return NULL;
        }
        return rc;
}

/* Counts what Redis holds for the run. Returns 0, or -1 with the reason. */
static int redis_count(redisContext *rc, const char *prefix, const char *tag,
                       long long sessions, int full, long long out[3],
                       char *errstr, size_t errstr_size)
{
        redisReply *r;
        char n[32];
        int i, ret = -1;

        snprintf(n, sizeof(n), "%lld", sessions);
        r = redisCommand(rc, "EVAL %s 0 %s %s %s %s", count_lua, prefix, tag, n,
                         full ? "1" : "0");
        if (!r) {
                snprintf(errstr, errstr_size, "redis: %s", rc->errstr);
                return -1;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
                snprintf(errstr, errstr_size, "redis: unexpected reply: %s",
                         r->type == REDIS_REPLY_ERROR ? r->str : "?");
                goto out;
        }
        for (i = 0; i < 3; i++)
                out[i] = r->element[i]->integer;
        ret = 0;
out:
        freeReplyObject(r);
        return ret;
}

/* Reads the fleet counter ingest_applied (P:stats) into *out: ingest adds
 * to it once per batch, after Redis acknowledged the batch, so polling it
 * costs Redis one HGET however many sessions there are. */
static int redis_applied(redisContext *rc, const char *prefix, long long *out,
                         char *errstr, size_t errstr_size)
{
        redisReply *r;
        int ret = -1;

        r = redisCommand(rc, "HGET %sstats ingest_applied", prefix);
        if (!r) {
                snprintf(errstr, errstr_size, "redis: %s", rc->errstr);
                return -1;
        }
        if (r->type == REDIS_REPLY_NIL) {
                *out = 0;
                ret = 0;
        } else if (r->type == REDIS_REPLY_STRING) {
                *out = atoll(r->str);
                ret = 0;
        } else {
                snprintf(errstr, errstr_size, "redis: unexpected reply: %s",
                         r->type == REDIS_REPLY_ERROR ? r->str : "?");
        }
        freeReplyObject(r);
        return ret;
}

/* ------------------------------------------------------------------ */
/* Kafka helpers                                                        */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque)
{
        atomic_llong *failed = opaque;

        (void)rk;
        if (m->err) {
                if (atomic_fetch_add(failed, 1) < 5)
                        cm_error("delivery failed: %s",
                                 rd_kafka_err2str(m->err));
        }
}

/* Loads the topic's metadata now so that the first produce does not wait
 * for librdkafka's periodic scan. Returns the partition count or -1. */
static int warm_up(rd_kafka_t *rk, const char *topic, int32_t **ids)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        int i, cnt = -1, tries;

        for (tries = 0; tries < 50 && !cm_stop; tries++) {
                if (rd_kafka_metadata(rk, 0, rkt, &md, 2000) ==
                        RD_KAFKA_RESP_ERR_NO_ERROR &&
                    md->topic_cnt == 1 && !md->topics[0].err &&
                    md->topics[0].partition_cnt > 0)
                        break;
                if (md)
                        rd_kafka_metadata_destroy(md);
                md = NULL;
                cm_kafka_sleep(NULL, 100);
        }
        if (md) {
                cnt = md->topics[0].partition_cnt;
                if (ids) {
                        *ids = cm_calloc((size_t)cnt, sizeof(**ids));
                        for (i = 0; i < cnt; i++)
                                (*ids)[i] = md->topics[0].partitions[i].id;
                }
                rd_kafka_metadata_destroy(md);
        } else {
                cm_error("cannot read the metadata of '%s'", topic);
        }
        rd_kafka_topic_destroy(rkt);
        return cnt;
}

static int produce(rd_kafka_t *rk, const char *topic, const char *key,
                   const char *payload)
{
        rd_kafka_resp_err_t err;

        for (;;) {
                err = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(topic),
                    RD_KAFKA_V_KEY(key, strlen(key)),
                    RD_KAFKA_V_VALUE((void *)payload, strlen(payload)),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || cm_stop)
                        break;
                rd_kafka_poll(rk, 10);
        }
        if (err) {
                cm_error("cannot produce to '%s': %s", topic,
                         rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

static double now_s(void)
{
        return (double)cm_mono_us() / 1e6;
}

/* ------------------------------------------------------------------ */
/* ingest                                                               */

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
        char *payload, key[2 * CM_ID_MAX + 2];
        double deadline = now_s() + (double)o->timeout;
        int ret = -1;

        memset(&ev, 0, sizeof(ev));
        ev.type = CM_EVENT_MESSAGE;
        snprintf(ev.user_id, sizeof(ev.user_id), "%sw", o->tag);
        snprintf(ev.conversation_id, sizeof(ev.conversation_id), "default");
        snprintf(ev.event_id, sizeof(ev.event_id), "%s-warm", o->tag);
        ev.msg.role = CM_ROLE_USER;
        ev.msg.content = "warm-up";
        ev.msg.content_len = 7;
        payload = cm_event_encode(&ev);
        snprintf(key, sizeof(key), "%s:default", ev.user_id);
        if (produce(rk, cfg->topic_events, key, payload) == -1)
                goto out;
        rd_kafka_flush(rk, 10000);
        while (!cm_stop) {
                redisReply *r = redisCommand(rc, "HGET %s{%s}:meta total",
                                             cfg->key_prefix, key);
                int have = r && r->type == REDIS_REPLY_STRING;

                freeReplyObject(r);
                if (have) {
                        ret = 0;
                        break;
                }
                if (now_s() > deadline) {
                        cm_error("warm-up: no ingest worker stored an event "
                                 "within %lld s",
                                 o->timeout);
                        break;
                }
                usleep(20000);
        }
out:
        free(payload);
        return ret;
}

static int run_ingest(const cm_config_t *cfg, const bench_opts_t *o)
{
        rd_kafka_t *rk = NULL;
        redisContext *rc = NULL;
        atomic_llong failed = 0;
        long long *cnt = NULL, total = 0, produced = 0, acked = 0, round, s;
        long long base = 0, applied = 0;
        struct rusage ru;
        long long maxc = 0, counts[3] = {0, 0, 0};
        double t0 = 0, t_last = 0, t_prog = 0, deadline;
        cm_buf_t content, key;
        char errstr[512], eid[64], user[CM_ID_MAX + 1];
        int ret = 1;

        cm_buf_init(&content);
        cm_buf_init(&key);
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
        if (warm_up(rk, cfg->topic_events, NULL) < 0)
                goto out;
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
                        char *payload;

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
                        snprintf(user, sizeof(user), "%su%lld", o->tag, s);
                        snprintf(ev.user_id, sizeof(ev.user_id), "%s", user);
                        snprintf(ev.conversation_id, sizeof(ev.conversation_id),
                                 "default");
                        snprintf(eid, sizeof(eid), "%s-%lld-%lld", o->tag, s,
                                 round);
                        snprintf(ev.event_id, sizeof(ev.event_id), "%s", eid);
                        ev.msg.role = conv_msg(round, &content);
                        ev.msg.content = content.buf;
                        ev.msg.content_len = content.len;
                        ev.msg.ts = 1732400000000LL + round * 1000;
                        payload = cm_event_encode(&ev);
                        cm_buf_reset(&key);
                        cm_buf_addf(&key, "%s:default", user);
                        if (produce(rk, cfg->topic_events, key.buf, payload) ==
                            -1) {
                                free(payload);
                                goto out;
                        }
                        free(payload);
                        produced++;
                        if ((produced & 1023) == 0)
                                rd_kafka_poll(rk, 0);
                        if (now_s() - t_prog >= 1.0) {
                                t_prog = now_s();
                                fprintf(stderr,
                                        "ingest: %.0fs produced %lld, in "
                                        "redis %lld\n",
                                        t_prog - t0, produced, acked);
                        }
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
                        if (now_s() - t_prog >= 1.0) {
                                t_prog = now_s();
                                fprintf(stderr,
                                        "ingest: %.0fs produced %lld, in "
                                        "redis %lld\n",
                                        t_prog - t0, produced, acked);
                        }
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
                if (now_s() - t_prog >= 1.0) {
                        t_prog = now_s();
                        fprintf(stderr,
                                "ingest: %.0fs produced %lld, in redis %lld, "
                                "summaries %lld\n",
                                t_prog - t0, produced, acked, counts[1]);
                }
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
        cm_buf_release(&key);
        return ret;
}

/* ------------------------------------------------------------------ */
/* context                                                              */

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
        atomic_int warm;         /* the reply to "<prefix>w" arrived */
        _Atomic int64_t last_us; /* receipt of the last reply */
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
                if (m->key_len == cr->tag_len + 1 &&
                    !memcmp(m->key, cr->tag, cr->tag_len) &&
                    ((const char *)m->key)[cr->tag_len] == 'w')
                        atomic_store(&cr->warm, 1);
                n = reply_index(cr, m->key, m->key_len);
                if (n >= 0) {
                        sent = atomic_exchange(&cr->sent_us[n], 0);
                        if (sent > 0) {
                                hist_record(&cr->hist, now - sent);
                                if (memmem(m->payload, m->len, "\"error\":", 8))
                                        atomic_fetch_add(&cr->errors, 1);
                                atomic_fetch_add(&cr->received, 1);
                                atomic_store(&cr->last_us, now);
                        }
                }
                rd_kafka_message_destroy(m);
        }
        return NULL;
}

/* Assigns every partition of topic at its end. Returns 0 or -1. */
static int assign_at_end(rd_kafka_t *rk, const char *topic)
{
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_resp_err_t err;
        int32_t *ids = NULL;
        int i, cnt, ret = -1;

        cnt = warm_up(rk, topic, &ids);
        if (cnt < 0)
                return -1;
        parts = rd_kafka_topic_partition_list_new(cnt);
        for (i = 0; i < cnt; i++) {
                int64_t lo = 0, hi = 0;

                err = rd_kafka_query_watermark_offsets(rk, topic, ids[i], &lo,
                                                       &hi, 5000);
                if (err) {
                        cm_error("cannot read the end of '%s' [%d]: %s", topic,
                                 (int)ids[i], rd_kafka_err2str(err));
                        goto out;
                }
                rd_kafka_topic_partition_list_add(parts, topic, ids[i])
                    ->offset = hi;
        }
        err = rd_kafka_assign(rk, parts);
        if (err) {
                cm_error("cannot assign '%s': %s", topic,
                         rd_kafka_err2str(err));
                goto out;
        }
        ret = 0;
out:
        rd_kafka_topic_partition_list_destroy(parts);
        free(ids);
        return ret;
}

static int run_context(const cm_config_t *cfg, const bench_opts_t *o)
{
        ctx_run_t cr;
        rd_kafka_t *rk = NULL;
        pthread_t th;
        int th_started = 0, ret = 1;
        atomic_llong failed = 0;
        const char *reply_topic =
            o->reply_topic ? o->reply_topic : cfg->topic_replies;
        long long total = o->rate * o->duration, sent = 0, missing;
        int64_t t0, now, behind_max = 0;
        double t_prog, deadline, secs;
        char errstr[512], key[2 * CM_ID_MAX + 2], group[64];

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
        if (warm_up(rk, cfg->topic_requests, NULL) < 0 ||
            assign_at_end(cr.consumer, reply_topic) == -1)
                goto out;
        if (pthread_create(&th, NULL, reply_loop, &cr) != 0) {
                cm_error("cannot start the reply thread");
                goto out;
        }
        th_started = 1;
        /* One request answered before the clock starts: the worker is in
         * its group and the reply path is warm. */
        {
                cm_request_t req;
                char *payload;
                double warm_deadline = now_s() + (double)o->timeout;

                memset(&req, 0, sizeof(req));
                snprintf(req.request_id, sizeof(req.request_id), "%sw",
                         o->req_prefix);
                snprintf(req.user_id, sizeof(req.user_id), "%su0", o->tag);
                snprintf(req.conversation_id, sizeof(req.conversation_id),
                         "default");
                req.reply_to = (char *)reply_topic;
                req.recent = -1;
                payload = cm_request_encode(&req);
                snprintf(key, sizeof(key), "%s:default", req.user_id);
                if (produce(rk, cfg->topic_requests, key, payload) == -1) {
                        free(payload);
                        goto out;
                }
                free(payload);
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
        fprintf(stderr, "context: %lld req/s for %lld s over %lld sessions\n",
                o->rate, o->duration, o->sessions);
        t0 = cm_mono_us();
        t_prog = now_s();
        while (sent < total && !cm_stop) {
                now = cm_mono_us();
                /* Open loop: every request has its scheduled time; send all
                 * that are due, latency counts from that time. */
                while (sent < total) {
                        int64_t due = t0 + (int64_t)((double)sent * 1e6 /
                                                     (double)o->rate);
                        cm_request_t req;
                        char *payload;

                        if (due > now)
                                break;
                        if (now - due > behind_max)
                                behind_max = now - due;
                        memset(&req, 0, sizeof(req));
                        snprintf(req.request_id, sizeof(req.request_id),
                                 "%s%lld", o->req_prefix, sent);
                        snprintf(req.user_id, sizeof(req.user_id), "%su%lld",
                                 o->tag, sent % o->sessions);
                        snprintf(req.conversation_id,
                                 sizeof(req.conversation_id), "default");
                        req.reply_to = (char *)reply_topic;
                        req.recent = -1;
                        payload = cm_request_encode(&req);
                        snprintf(key, sizeof(key), "%s:default", req.user_id);
                        atomic_store(&cr.sent_us[sent], due);
                        if (produce(rk, cfg->topic_requests, key, payload) ==
                            -1) {
                                free(payload);
                                goto out;
                        }
                        free(payload);
                        sent++;
                }
                rd_kafka_poll(rk, 0);
                if (now_s() - t_prog >= 1.0) {
                        t_prog = now_s();
                        fprintf(stderr,
                                "context: %lld/%lld sent, %lld "
                                "replies\n",
                                sent, total,
                                (long long)atomic_load(&cr.received));
                }
                usleep(100);
        }
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

/* ------------------------------------------------------------------ */
/* build and cost (in-process)                                          */

/* Folds the facts of one user message into profile as ingest does: a
 * later statement replaces an earlier one, interests add up. */
static void profile_merge(cm_profile_t *profile, const cm_message_t *msg)
{
        cm_profile_t facts;
        size_t j;

        cm_profile_extract(msg->content, msg->content_len, &facts);
        if (facts.name) {
                free(profile->name);
                profile->name = facts.name;
                facts.name = NULL;
        }
        if (facts.role) {
                free(profile->role);
                profile->role = facts.role;
                facts.role = NULL;
        }
        for (j = 0; j < facts.interest_cnt; j++) {
                profile->interests =
                    cm_realloc(profile->interests,
                               (profile->interest_cnt + 1) * sizeof(char *));
                profile->interests[profile->interest_cnt++] =
                    facts.interests[j];
                facts.interests[j] = NULL;
        }
        facts.interest_cnt = 0;
        cm_profile_release(&facts);
}

/* The state chatmem keeps for a conversation of cnt messages: the profile
 * extracted from the user's messages and the summary of all but the newest
 * recent ones, folded in steps as the summarizer does. */
static void session_state(const cm_config_t *cfg, const cm_tokenizer_t *tk,
                          cm_message_t *msgs, size_t cnt, cm_profile_t *profile,
                          char **summary)
{
        size_t i, keep = (size_t)cfg->recent_verbatim,
                  step = (size_t)cfg->summarize_after, upto = 0;
        char *sum = cm_strdup("");

        memset(profile, 0, sizeof(*profile));
        for (i = 0; i < cnt; i++) {
                if (msgs[i].role == CM_ROLE_USER)
                        profile_merge(profile, &msgs[i]);
                msgs[i].tokens = cm_context_line_tokens(&msgs[i], tk);
        }
        /* Fold once more than keep + step are unsummarized. */
        while (cnt > keep && cnt - upto > keep + step) {
                cm_fold_in_t in = {
                    .summary = sum,
                    .msgs = msgs + upto,
                    .msg_cnt = cnt - keep - upto,
                    .max_tokens = cfg->summary_max_tokens,
                    .tk = tk,
                };
                char *next = cm_extractive_fold(&in);

                free(sum);
                sum = next;
                upto = cnt - keep;
        }
        *summary = sum;
}

static int run_build(const cm_config_t *cfg, const cm_tokenizer_t *tk,
                     const bench_opts_t *o)
{
        const size_t cnt = 50;
        cm_message_t *msgs = cm_calloc(cnt, sizeof(*msgs));
        cm_profile_t profile;
        char *summary = NULL, **stored = NULL;
        size_t i, recent = (size_t)cfg->recent_verbatim;
        long long it, tokens = 0;
        int64_t t0, t_build = 0, t_all = 0;

        conv_fill(msgs, cnt);
        session_state(cfg, tk, msgs, cnt, &profile, &summary);
        /* What Redis hands the worker: the stored JSON of the messages. */
        stored = cm_calloc(cnt, sizeof(*stored));
        for (i = 0; i < cnt; i++) {
                char *tail = cm_stored_tail_encode(&msgs[i], "e");
                cm_buf_t b;

                cm_buf_init(&b);
                cm_buf_addf(&b, "{\"seq\":%zu%s", i + 1, tail);
                stored[i] = cm_buf_detach(&b, NULL);
                free(tail);
        }
        fprintf(stderr, "build: %lld builds of a %zu-message session\n",
                o->iterations, cnt);
        for (it = 0; it < o->iterations && !cm_stop; it++) {
                cm_message_t dec[16];
                size_t n = recent < 16 ? recent : 16, j;
                cm_context_in_t in;
                cm_context_out_t out;
                cm_reply_t reply;
                char *json, why[256];
                int64_t t1;

                t0 = cm_mono_us();
                memset(dec, 0, sizeof(dec));
                for (j = 0; j < n; j++) {
                        if (cm_stored_decode(stored[cnt - n + j],
                                             strlen(stored[cnt - n + j]),
                                             &dec[j], why, sizeof(why)) == -1) {
                                cm_error("stored message: %s", why);
                                abort();
                        }
                }
                memset(&in, 0, sizeof(in));
                in.profile = &profile;
                in.summary = summary;
                in.msgs = dec;
                in.msg_cnt = n;
                in.max_tokens = cfg->max_tokens;
                in.tk = tk;
                t1 = cm_mono_us();
                cm_context_build(&in, &out);
                t_build += cm_mono_us() - t1;
                memset(&reply, 0, sizeof(reply));
                reply.request_id = "r";
                reply.user_id = "sumit";
                reply.conversation_id = "default";
                reply.context = out.text;
                reply.profile = &profile;
                reply.summary = out.summary;
                reply.recent = out.recent;
                reply.recent_cnt = out.recent_cnt;
                reply.meta.tokens = out.tokens;
                reply.meta.full_history_tokens = cm_context_full_tokens_stored(
                    &profile, 0, &dec[n - 1], NULL, tk);
                json = cm_reply_encode(&reply);
                t_all += cm_mono_us() - t0;
                tokens = out.tokens;
                free(json);
                cm_context_out_release(&out);
                for (j = 0; j < n; j++)
                        cm_message_release(&dec[j]);
        }
        printf("{\"mode\":\"build\",\"messages\":%zu,\"iterations\":%lld,"
               "\"tokenizer\":\"%s\",\"context_tokens\":%lld,"
               "\"build_us\":%.2f,\"builds_per_s\":%.0f,"
               "\"decode_build_encode_us\":%.2f,\"per_s\":%.0f}\n",
               cnt, it, cm_tokenizer_name(tk), tokens,
               (double)t_build / (double)it,
               (double)it * 1e6 / (double)(t_build ? t_build : 1),
               (double)t_all / (double)it,
               (double)it * 1e6 / (double)(t_all ? t_all : 1));
        fflush(stdout);
        for (i = 0; i < cnt; i++)
                free(stored[i]);
        free(stored);
        free(summary);
        cm_profile_release(&profile);
        conv_free(msgs, cnt);
        return 0;
}

static int run_cost(const cm_config_t *cfg, const cm_tokenizer_t *tk,
                    const bench_opts_t *o)
{
        const char *p = o->lengths;

        while (*p) {
                char num[16];
                size_t l = strcspn(p, ","), cnt, keep;
                long long n;
                cm_message_t *msgs;
                cm_profile_t profile;
                char *summary = NULL;
                cm_context_in_t in;
                cm_context_out_t out;
                int full;
                double reqs, cost_full, cost_cm;

                if (l == 0 || l >= sizeof(num)) {
                        cm_error("bad --lengths '%s'", o->lengths);
                        return 1;
                }
                memcpy(num, p, l);
                num[l] = '\0';
                if (cm_parse_int(num, 1, 10000, &n) == -1) {
                        cm_error("bad --lengths '%s'", o->lengths);
                        return 1;
                }
                p += l + (p[l] == ',');
                cnt = (size_t)n;
                msgs = cm_calloc(cnt, sizeof(*msgs));
                conv_fill(msgs, cnt);
                session_state(cfg, tk, msgs, cnt, &profile, &summary);
                keep = cnt < (size_t)cfg->recent_verbatim
                           ? cnt
                           : (size_t)cfg->recent_verbatim;
                memset(&in, 0, sizeof(in));
                in.profile = &profile;
                in.summary = summary;
                in.msgs = msgs + cnt - keep;
                in.msg_cnt = keep;
                in.max_tokens = cfg->max_tokens;
                in.tk = tk;
                cm_context_build(&in, &out);
                full = cm_context_full_tokens(&profile, msgs, cnt, tk);
                /* Each of users × per_day messages a day (30 days) sends
                 * one context of a conversation this long. */
                reqs = (double)o->users * (double)o->per_day * 30.0;
                cost_full = reqs * full / 1e6 * o->price;
                cost_cm = reqs * out.tokens / 1e6 * o->price;
                printf("{\"mode\":\"cost\",\"messages\":%zu,\"tokenizer\":"
                       "\"%s\",\"full_tokens\":%d,\"chatmem_tokens\":%d,"
                       "\"saving\":%.3f,\"users\":%lld,\"per_day\":%lld,"
                       "\"price_per_1m\":%.4f,\"monthly_full_usd\":%.0f,"
                       "\"monthly_chatmem_usd\":%.0f}\n",
                       cnt, cm_tokenizer_name(tk), full, out.tokens,
                       full ? 1.0 - (double)out.tokens / full : 0.0, o->users,
                       o->per_day, o->price, cost_full, cost_cm);
                cm_context_out_release(&out);
                free(summary);
                cm_profile_release(&profile);
                conv_free(msgs, cnt);
        }
        fflush(stdout);
        return 0;
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"config", required_argument, NULL, 'c'},
            {"events", required_argument, NULL, 'e'},
            {"sessions", required_argument, NULL, 's'},
            {"msgs-min", required_argument, NULL, 'm'},
            {"msgs-max", required_argument, NULL, 'M'},
            {"window", required_argument, NULL, 'w'},
            {"rate", required_argument, NULL, 'r'},
            {"duration", required_argument, NULL, 'd'},
            {"timeout", required_argument, NULL, 't'},
            {"iterations", required_argument, NULL, 'i'},
            {"linger-ms", required_argument, NULL, 'l'},
            {"wait-summary", required_argument, NULL, 'W'},
            {"reply-topic", required_argument, NULL, 'R'},
            {"tag", required_argument, NULL, 'T'},
            {"req-prefix", required_argument, NULL, 'P'},
            {"lengths", required_argument, NULL, 'L'},
            {"price", required_argument, NULL, 'p'},
            {"users", required_argument, NULL, 'u'},
            {"per-day", required_argument, NULL, 'D'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        bench_opts_t o = {
            .tag = "b",
            .req_prefix = "q",
            .events = 10000,
            .sessions = 1000,
            .msgs_min = 20,
            .msgs_max = 50,
            .window = 50000,
            .rate = 1000,
            .duration = 5,
            .timeout = 120,
            .iterations = 20000,
            .linger_ms = -1,
            .lengths = "5,10,20,50",
            .price = 0.15,
            .users = 1000000,
            .per_day = 10,
        };
        cm_config_t cfg;
        const cm_tokenizer_t *tk = NULL;
        const char *mode;
        char errstr[512], *end = NULL;
        int opt, ret = 2;

        cm_log_init("chatmem-bench");
        cm_config_init(&cfg);
        if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
                usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        mode = argv[1];
        argc--;
        argv++;
        while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
                int bad = 0;

                switch (opt) {
                case 'c':
                        o.conf_path = optarg;
                        break;
                case 'e':
                        bad = opt_int("--events", optarg, 0, 1LL << 40,
                                      &o.events);
                        break;
                case 's':
                        bad = opt_int("--sessions", optarg, 1, 100000000,
                                      &o.sessions);
                        break;
                case 'm':
                        bad = opt_int("--msgs-min", optarg, 1, 100000,
                                      &o.msgs_min);
                        break;
                case 'M':
                        bad = opt_int("--msgs-max", optarg, 1, 100000,
                                      &o.msgs_max);
                        break;
                case 'w':
                        bad = opt_int("--window", optarg, 1, 1LL << 40,
                                      &o.window);
                        break;
                case 'r':
                        bad = opt_int("--rate", optarg, 1, 10000000, &o.rate);
                        break;
                case 'd':
                        bad =
                            opt_int("--duration", optarg, 1, 3600, &o.duration);
                        break;
                case 't':
                        bad =
                            opt_int("--timeout", optarg, 1, 36000, &o.timeout);
                        break;
                case 'i':
                        bad = opt_int("--iterations", optarg, 1, 1LL << 40,
                                      &o.iterations);
                        break;
                case 'l':
                        bad = opt_int("--linger-ms", optarg, 0, 10000,
                                      &o.linger_ms);
                        break;
                case 'W':
                        bad = opt_int("--wait-summary", optarg, 0, 100000000,
                                      &o.wait_summary);
                        break;
                case 'R':
                        o.reply_topic = optarg;
                        break;
                case 'T':
                        o.tag = optarg;
                        break;
                case 'P':
                        o.req_prefix = optarg;
                        break;
                case 'L':
                        o.lengths = optarg;
                        break;
                case 'p':
                        o.price = strtod(optarg, &end);
                        bad = !end || *end || o.price < 0;
                        if (bad)
                                fprintf(stderr,
                                        "chatmem-bench: --price: "
                                        "'%s' is not a price\n",
                                        optarg);
                        break;
                case 'u':
                        bad =
                            opt_int("--users", optarg, 1, 1LL << 40, &o.users);
                        break;
                case 'D':
                        bad =
                            opt_int("--per-day", optarg, 1, 100000, &o.per_day);
                        break;
                case 'h':
                        usage(stdout);
                        ret = 0;
                        goto out;
                default:
                        usage(stderr);
                        goto out;
                }
                if (bad)
                        goto out;
        }
        if (o.msgs_max < o.msgs_min) {
                fprintf(stderr, "chatmem-bench: --msgs-max < --msgs-min\n");
                goto out;
        }
        ret = 1;
        if (cm_config_load(&cfg, o.conf_path, errstr, sizeof(errstr)) == -1) {
                fprintf(stderr, "chatmem-bench: %s\n", errstr);
                goto out;
        }
        cm_log_level_parse(cfg.log_level, &cm_log_level);
        if (o.linger_ms >= 0) {
                char v[32];

                snprintf(v, sizeof(v), "%lld", o.linger_ms);
                if (cm_config_set(&cfg, "kafka.linger_ms", v, errstr,
                                  sizeof(errstr)) == -1) {
                        fprintf(stderr, "chatmem-bench: %s\n", errstr);
                        goto out;
                }
        }
        cm_daemon_signals();
        if (!strcmp(mode, "ingest")) {
                ret = run_ingest(&cfg, &o);
        } else if (!strcmp(mode, "context")) {
                ret = run_context(&cfg, &o);
        } else if (!strcmp(mode, "build") || !strcmp(mode, "cost")) {
                if (cm_tokenizer_get(cfg.tokenizer, &tk, errstr,
                                     sizeof(errstr)) == -1) {
                        fprintf(stderr, "chatmem-bench: %s\n", errstr);
                        goto out;
                }
                ret = !strcmp(mode, "build") ? run_build(&cfg, tk, &o)
                                             : run_cost(&cfg, tk, &o);
        } else {
                fprintf(stderr, "chatmem-bench: unknown mode '%s'\n", mode);
                usage(stderr);
                ret = 2;
        }
out:
        cm_config_release(&cfg);
        return ret;
}
