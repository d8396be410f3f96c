/*
 * memory_fleet: the real fleet through the wire contract (see memory.h).
 *
 * Ingest: every turn is one message event on topics.events, keyed by its
 * session, with the event_id "<run tag>-<sample_id>-<turn>". A wait reads
 * Redis (the keys of store.h) until every session holds what was produced
 * (meta 'total') and is folded down (at most recent_verbatim +
 * summarize_after messages in its list, no pending compaction job 'cjob'
 * in its meta hash), bounded by one deadline for the whole ingest; a
 * session holding more messages than were produced, or an event in the
 * DLQ, ends it at once.
 *
 * Paced (the default), turn k of every conversation goes out only once
 * the fleet has settled after turn k - 1, as in a live chat: the folds
 * then fall at the same turns in every run, and so do the summaries, which
 * makes runs comparable. A burst (every turn at once, as an import would
 * do) lets the summarizer fold whatever has piled up when it gets to a
 * session, which depends on timing: runs then differ by a point or so.
 *
 * Ask: context requests (request_id "<run tag>-r<n>", keyed by session)
 * go to topics.requests, at most `window` unanswered at a time, so that
 * the reply topic is read as fast as it fills (the devbroker keeps only
 * ~5 MB per partition). The replies are read from the reply topic with a
 * consumer assigned at its end before the first request is sent, matched
 * by key and request_id. The consumer's group is the run's own and never
 * commits (no offset is ever stored: chatmem's consumers store by hand).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <json-c/json.h>

#include "daemon.h"
#include "json.h"
#include "kafka.h"
#include "log.h"
#include "memory.h"
#include "produce.h"
#include "redis.h"
#include "store.h"
#include "topic.h"
#include "util.h"

#define SETUP_TIMEOUT_US (30 * 1000000LL)
#define FLUSH_TIMEOUT_MS 30000
#define PROGRESS_US      (2 * 1000000LL)

typedef struct fleet {
        rd_kafka_t *producer;
        rd_kafka_t *consumer;
        long long failed; /* undelivered messages */
        char failure[256];
} fleet_t;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque)
{
        fleet_t *f = opaque;

        (void)rk;
        if (!m->err)
                return;
        if (f->failed++ == 0)
                snprintf(f->failure, sizeof(f->failure), "'%s': %s",
                         rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
}

static void pause_ms(int ms)
{
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

        nanosleep(&ts, NULL);
}

static void fleet_close(fleet_t *f)
{
        if (f->consumer) {
                rd_kafka_consumer_close(f->consumer);
                rd_kafka_destroy(f->consumer);
        }
        cm_kafka_producer_close(f->producer, FLUSH_TIMEOUT_MS);
        memset(f, 0, sizeof(*f));
}

/* Produces turn k of conversation c. Returns 0, or -1 with the reason. */
static int produce_turn(fleet_t *f, const cm_config_t *cfg,
                        const em_fleet_opts_t *o, const em_convo_t *c, size_t k,
                        char *errstr, size_t errstr_size)
{
        cm_event_t ev;
        char key[CM_SESSION_KEY_MAX];

        memset(&ev, 0, sizeof(ev));
        ev.type = CM_EVENT_MESSAGE;
        snprintf(ev.event_id, sizeof(ev.event_id), "%s-%s-%zu", o->run_tag,
                 c->sample_id, k);
        snprintf(ev.user_id, sizeof(ev.user_id), "%s", c->user_id);
        snprintf(ev.conversation_id, sizeof(ev.conversation_id), "%s",
                 c->conv_id);
        ev.msg = c->turns[k].msg; /* borrowed: not released */
        cm_session_key(key, c->user_id, c->conv_id);
        if (tool_produce(f->producer, cfg->topic_events, key,
                         cm_event_encode(&ev)) == -1)
                return cm_errf(errstr, errstr_size, "cannot produce to '%s'",
                               cfg->topic_events);
        rd_kafka_poll(f->producer, 0);
        return 0;
}

/* Waits until every event produced so far is delivered. */
static int flush_events(fleet_t *f, const cm_config_t *cfg, char *errstr,
                        size_t errstr_size)
{
        rd_kafka_flush(f->producer, FLUSH_TIMEOUT_MS);
        if (rd_kafka_outq_len(f->producer) > 0)
                return cm_errf(errstr, errstr_size,
                               "%d events not delivered to '%s' within %d ms",
                               rd_kafka_outq_len(f->producer),
                               cfg->topic_events, FLUSH_TIMEOUT_MS);
        if (f->failed)
                return cm_errf(errstr, errstr_size,
                               "%lld events not delivered: %s", f->failed,
                               f->failure);
        return 0;
}

/* The wait for Redis: its connection and what each session is to hold. */
typedef struct settle {
        const cm_config_t *cfg;
        const em_data_t *d;
        redisContext *rc;
        cm_store_t *st;
        cm_redis_url_t url;
        long long *expected; /* messages each session is to hold */
        int *pending;        /* a compaction job is pending */
        int timeout_s;       /* from the first event on */
        int64_t deadline;    /* cm_mono_us() */
        int64_t progress;    /* last progress line */
} settle_t;

static int settle_init(settle_t *se, const cm_config_t *cfg,
                       const em_fleet_opts_t *o, const em_data_t *d,
                       char *errstr, size_t errstr_size)
{
        memset(se, 0, sizeof(*se));
        se->cfg = cfg;
        se->d = d;
        se->expected = cm_calloc(d->convo_cnt, sizeof(*se->expected));
        se->pending = cm_calloc(d->convo_cnt, sizeof(*se->pending));
        se->timeout_s = o->settle_timeout_s;
        se->deadline = cm_mono_us() + o->settle_timeout_s * 1000000LL;
        se->progress = cm_mono_us();
        se->st = cm_store_new(cfg, errstr, errstr_size);
        if (!se->st || cm_redis_url_parse(cfg->redis_url, &se->url, errstr,
                                          errstr_size) == -1)
                return -1;
        se->rc = cm_redis_connect(&se->url, 2000, 10000, errstr, errstr_size);
        return se->rc ? 0 : -1;
}

static void settle_release(settle_t *se)
{
        if (se->rc)
                redisFree(se->rc);
        cm_redis_url_release(&se->url);
        cm_store_destroy(se->st);
        free(se->expected);
        free(se->pending);
        memset(se, 0, sizeof(*se));
}

/* An integer reply (or a string holding one); nil and anything else are
 * 0. */
static long long reply_ll(const redisReply *r)
{
        if (!r)
                return 0;
        if (r->type == REDIS_REPLY_INTEGER)
                return r->integer;
        if (r->type == REDIS_REPLY_STRING)
                return atoll(r->str);
        return 0;
}

/* Reads what Redis holds of every session into states and se->pending,
 * and the count of events that went to the DLQ into *dead, in one round
 * trip. Returns 0, or -1 with the reason (the connection is then dead). */
static int read_states(settle_t *se, em_session_state_t *states,
                       long long *dead, char *errstr, size_t errstr_size)
{
        const em_data_t *d = se->d;
        char meta[512], msgs[512], summary[512];
        redisReply *r = NULL;
        size_t i;
        int k;

        for (i = 0; i < d->convo_cnt; i++) {
                const em_convo_t *c = &d->convos[i];

                cm_store_key(se->st, meta, sizeof(meta), c->user_id, c->conv_id,
                             "meta");
                cm_store_key(se->st, msgs, sizeof(msgs), c->user_id, c->conv_id,
                             "msgs");
                cm_store_key(se->st, summary, sizeof(summary), c->user_id,
                             c->conv_id, "summary");
                redisAppendCommand(se->rc, "HMGET %s total cjob", meta);
                redisAppendCommand(se->rc, "LLEN %s", msgs);
                redisAppendCommand(se->rc, "HGET %s folded", summary);
        }
        redisAppendCommand(se->rc, "HGET %sstats ingest_dead",
                           se->cfg->key_prefix);
        for (i = 0; i <= d->convo_cnt; i++) {
                for (k = 0; k < (i < d->convo_cnt ? 3 : 1); k++) {
                        if (redisGetReply(se->rc, (void **)&r) != REDIS_OK ||
                            !r)
                                return cm_errf(errstr, errstr_size, "redis: %s",
                                               se->rc->errstr);
                        if (r->type == REDIS_REPLY_ERROR) {
                                cm_errf(errstr, errstr_size, "redis: %s",
                                        r->str);
                                freeReplyObject(r);
                                return -1;
                        }
                        if (i == d->convo_cnt) {
                                *dead = reply_ll(r);
                        } else if (k == 0) {
                                states[i].total = r->type == REDIS_REPLY_ARRAY
                                                      ? reply_ll(r->element[0])
                                                      : 0;
                                se->pending[i] =
                                    r->type == REDIS_REPLY_ARRAY &&
                                    r->elements > 1 &&
                                    r->element[1]->type == REDIS_REPLY_STRING;
                        } else if (k == 1) {
                                states[i].stored = reply_ll(r);
                        } else {
                                states[i].folded = reply_ll(r);
                        }
                        freeReplyObject(r);
                }
        }
        return 0;
}

static void describe_states(cm_buf_t *b, const settle_t *se,
                            const em_session_state_t *states)
{
        size_t i;

        for (i = 0; i < se->d->convo_cnt; i++)
                cm_buf_addf(b, "%s'%s:%s' %lld/%lld messages, %lld stored%s",
                            i ? "; " : "", se->d->convos[i].user_id,
                            se->d->convos[i].conv_id, states[i].total,
                            se->expected[i], states[i].stored,
                            se->pending[i] ? ", compaction pending" : "");
}

/* Waits until every session holds se->expected messages and is folded
 * down. Returns 0, or -1 with the reason. */
static int settle_wait(settle_t *se, em_session_state_t *states, char *errstr,
                       size_t errstr_size)
{
        const em_data_t *d = se->d;
        long long limit = se->cfg->recent_verbatim + se->cfg->summarize_after;
        cm_buf_t b = CM_BUF_INIT;
        int ret = -1;

        for (;;) {
                long long dead = 0, in = 0, want = 0;
                size_t i, done = 0;

                if (read_states(se, states, &dead, errstr, errstr_size) == -1)
                        goto out;
                for (i = 0; i < d->convo_cnt; i++) {
                        const em_convo_t *c = &d->convos[i];

                        if (states[i].total > se->expected[i]) {
                                cm_errf(errstr, errstr_size,
                                        "session '%s:%s' holds %lld messages, "
                                        "more than the %lld produced",
                                        c->user_id, c->conv_id, states[i].total,
                                        se->expected[i]);
                                goto out;
                        }
                        in += states[i].total;
                        want += se->expected[i];
                        done += states[i].total == se->expected[i] &&
                                states[i].stored <= limit && !se->pending[i];
                }
                if (dead > 0) {
                        cm_errf(errstr, errstr_size,
                                "%lld events went to the DLQ ('%s')", dead,
                                se->cfg->topic_dlq);
                        goto out;
                }
                if (done == d->convo_cnt)
                        break;
                if (cm_stop) {
                        cm_errf(errstr, errstr_size, "interrupted");
                        goto out;
                }
                if (cm_mono_us() > se->deadline) {
                        describe_states(&b, se, states);
                        cm_errf(errstr, errstr_size,
                                "the fleet did not settle within %d s of the "
                                "first event (ingest and summarizer "
                                "running?): %s",
                                se->timeout_s, b.buf);
                        goto out;
                }
                if (cm_mono_us() - se->progress >= PROGRESS_US) {
                        se->progress = cm_mono_us();
                        fprintf(stderr,
                                "eval-memory: %lld/%zu turns in redis, %zu/%zu "
                                "sessions settled at %lld/%zu\n",
                                in, d->turn_cnt, done, d->convo_cnt, want,
                                d->turn_cnt);
                }
                pause_ms(1);
        }
        ret = 0;
out:
        cm_buf_release(&b);
        return ret;
}

/* Produces the turns [from, to) of every conversation (those it has),
 * waits until they are delivered, and sets what each session is then to
 * hold. Returns 0, or -1 with the reason. */
static int produce_round(fleet_t *f, const cm_config_t *cfg,
                         const em_fleet_opts_t *o, settle_t *se, size_t from,
                         size_t to, char *errstr, size_t errstr_size)
{
        size_t i, k;

        for (i = 0; i < se->d->convo_cnt; i++) {
                const em_convo_t *c = &se->d->convos[i];

                for (k = from; k < to && k < c->turn_cnt; k++) {
                        if (produce_turn(f, cfg, o, c, k, errstr,
                                         errstr_size) == -1)
                                return -1;
                }
                se->expected[i] =
                    (long long)(to < c->turn_cnt ? to : c->turn_cnt);
        }
        return flush_events(f, cfg, errstr, errstr_size);
}

/* The summary text of each session and its tokens, and the user's
 * profile, into states. */
static int read_summaries(settle_t *se, const cm_tokenizer_t *tk,
                          em_session_state_t *states, char *errstr,
                          size_t errstr_size)
{
        char summary[512];
        size_t i, k;

        for (i = 0; i < se->d->convo_cnt; i++) {
                const em_convo_t *c = &se->d->convos[i];
                redisReply *r;

                cm_store_key(se->st, summary, sizeof(summary), c->user_id,
                             c->conv_id, "summary");
                r = redisCommand(se->rc, "HGET %s text", summary);
                if (!r)
                        return cm_errf(errstr, errstr_size, "redis: %s",
                                       se->rc->errstr);
                states[i].summary_tokens =
                    r->type == REDIS_REPLY_STRING
                        ? cm_tokenizer_count(tk, r->str, r->len)
                        : 0;
                free(states[i].summary);
                states[i].summary = r->type == REDIS_REPLY_STRING
                                        ? cm_strndup(r->str, r->len)
                                        : NULL;
                freeReplyObject(r);
                cm_store_key(se->st, summary, sizeof(summary), c->user_id, NULL,
                             "profile");
                r = redisCommand(se->rc, "HMGET %s name role interests",
                                 summary);
                if (!r)
                        return cm_errf(errstr, errstr_size, "redis: %s",
                                       se->rc->errstr);
                for (k = 0;
                     r->type == REDIS_REPLY_ARRAY && k < 3 && k < r->elements;
                     k++) {
                        const redisReply *e = r->element[k];

                        free(states[i].profile[k]);
                        states[i].profile[k] = e->type == REDIS_REPLY_STRING
                                                   ? cm_strndup(e->str, e->len)
                                                   : NULL;
                }
                freeReplyObject(r);
        }
        return 0;
}

int em_fleet_ingest(const cm_config_t *cfg, const em_fleet_opts_t *o,
                    const em_data_t *d, const cm_tokenizer_t *tk,
                    em_session_state_t *states, double *ingest_s, char *errstr,
                    size_t errstr_size)
{
        fleet_t f;
        settle_t se;
        int64_t t0 = cm_mono_us();
        size_t i, k, rounds = 0;
        int ret = -1;

        memset(&f, 0, sizeof(f));
        memset(&se, 0, sizeof(se));
        f.producer =
            cm_kafka_producer_new(cfg, on_delivery, &f, errstr, errstr_size);
        if (!f.producer ||
            tool_topic_partitions(f.producer, cfg->topic_events,
                                  cm_mono_us() + SETUP_TIMEOUT_US, NULL, errstr,
                                  errstr_size) == -1 ||
            settle_init(&se, cfg, o, d, errstr, errstr_size) == -1)
                goto out;
        for (i = 0; i < d->convo_cnt; i++) {
                if (d->convos[i].turn_cnt > rounds)
                        rounds = d->convos[i].turn_cnt;
        }
        if (!o->paced) {
                if (produce_round(&f, cfg, o, &se, 0, rounds, errstr,
                                  errstr_size) == -1 ||
                    settle_wait(&se, states, errstr, errstr_size) == -1)
                        goto out;
        }
        for (k = 0; o->paced && k < rounds; k++) {
                if (produce_round(&f, cfg, o, &se, k, k + 1, errstr,
                                  errstr_size) == -1 ||
                    settle_wait(&se, states, errstr, errstr_size) == -1)
                        goto out;
        }
        if (read_summaries(&se, tk, states, errstr, errstr_size) == -1)
                goto out;
        *ingest_s = (double)(cm_mono_us() - t0) / 1e6;
        ret = 0;
out:
        settle_release(&se);
        fleet_close(&f);
        return ret;
}

/* metadata.recalled and metadata.recall_us of a reply (-1 when absent),
 * read here because cm_reply_doc_t does not carry them yet: once the codec
 * decodes them into cm_reply_meta_t, read them there and drop this. */
static void reply_recall(const char *buf, size_t len, int64_t *recalled,
                         int64_t *recall_us)
{
        char why[256];
        json_object *root = cm_json_parse_object(buf, len, why, sizeof(why));
        json_object *meta, *v;

        *recalled = -1;
        *recall_us = -1;
        if (!root)
                return;
        if (json_object_object_get_ex(root, "metadata", &meta)) {
                if (json_object_object_get_ex(meta, "recalled", &v) &&
                    json_object_is_type(v, json_type_int))
                        *recalled = json_object_get_int64(v);
                if (json_object_object_get_ex(meta, "recall_us", &v) &&
                    json_object_is_type(v, json_type_int))
                        *recall_us = json_object_get_int64(v);
        }
        json_object_put(root);
}

/* The request number n of a reply key "<tag>-r<n>", or -1. */
static long long reply_index(const char *tag, const void *key, size_t len,
                             long long total)
{
        size_t tag_len = strlen(tag), i;
        const char *k = key;
        long long n = 0;

        if (!key || len <= tag_len + 2 || memcmp(k, tag, tag_len) ||
            k[tag_len] != '-' || k[tag_len + 1] != 'r')
                return -1;
        for (i = tag_len + 2; i < len; i++) {
                if (k[i] < '0' || k[i] > '9' || n > total)
                        return -1;
                n = n * 10 + (k[i] - '0');
        }
        return n < total ? n : -1;
}

static int send_request(fleet_t *f, const cm_config_t *cfg,
                        const em_fleet_opts_t *o, const em_data_t *d,
                        long long n)
{
        const em_question_t *q = &d->qs[n / (EM_MODE_CNT * EM_BUDGET_CNT)];
        const em_convo_t *c = &d->convos[q->convo];
        int mode = (int)(n / EM_BUDGET_CNT % EM_MODE_CNT);
        cm_request_t req;
        char key[CM_SESSION_KEY_MAX];

        memset(&req, 0, sizeof(req));
        snprintf(req.request_id, sizeof(req.request_id), "%s-r%lld", o->run_tag,
                 n);
        snprintf(req.user_id, sizeof(req.user_id), "%s", c->user_id);
        snprintf(req.conversation_id, sizeof(req.conversation_id), "%s",
                 c->conv_id);
        req.reply_to = (char *)o->reply_topic; /* borrowed: not released */
        req.max_tokens = em_budgets[n % EM_BUDGET_CNT];
        req.recent = -1;
        req.query = mode == EM_MODE_QUERY ? q->question : NULL; /* borrowed */
        cm_session_key(key, c->user_id, c->conv_id);
        return tool_produce(f->producer, cfg->topic_requests, key,
                            cm_request_encode(&req));
}

/* Records the reply m to request n. */
static void take_reply(const em_data_t *d, const rd_kafka_message_t *m,
                       long long n, em_reply_t *r, long long *bad)
{
        const em_question_t *q = &d->qs[n / (EM_MODE_CNT * EM_BUDGET_CNT)];
        cm_reply_doc_t doc;
        char why[512];

        r->got = 1;
        if (cm_reply_decode(m->payload, m->len, &doc, why, sizeof(why)) == -1) {
                if ((*bad)++ == 0)
                        cm_warn("a reply that does not decode: %s", why);
                r->error = 1;
                return;
        }
        if (!doc.request_id || strncmp(doc.request_id, m->key, m->key_len) ||
            doc.request_id[m->key_len] != '\0') {
                if ((*bad)++ == 0)
                        cm_warn("a reply keyed '%.*s' carries request_id "
                                "'%s'",
                                (int)m->key_len, (const char *)m->key,
                                doc.request_id ? doc.request_id : "");
                r->error = 1;
        } else if (doc.is_error) {
                if ((*bad)++ == 0)
                        cm_warn("an error reply: %s: %s", doc.error_code,
                                doc.error_message);
                r->error = 1;
        } else {
                char *norm = em_norm(doc.context, strlen(doc.context));

                r->out.answered = strstr(norm, q->answer_norm) != NULL;
                r->out.tokens = doc.meta.tokens;
                r->cached = doc.meta.cached;
                r->degraded = doc.meta.degraded;
                r->build_us = doc.meta.build_us;
                reply_recall(m->payload, m->len, &r->recalled, &r->recall_us);
                free(norm);
        }
        cm_reply_doc_release(&doc);
}

int em_fleet_ask(const cm_config_t *cfg, const em_fleet_opts_t *o,
                 const em_data_t *d, em_reply_t *replies, char *errstr,
                 size_t errstr_size)
{
        fleet_t f;
        long long total = (long long)d->q_cnt * EM_MODE_CNT * EM_BUDGET_CNT;
        long long sent = 0, received = 0, bad = 0;
        int64_t deadline = cm_mono_us() + SETUP_TIMEOUT_US, last, progress;
        char group[CM_ID_MAX + 32];
        int ret = -1;

        memset(&f, 0, sizeof(f));
        f.producer = cm_kafka_rpc_producer_new(cfg, on_delivery, &f, errstr,
                                               errstr_size);
        if (!f.producer)
                goto out;
        snprintf(group, sizeof(group), "chatmem-eval-%s", o->run_tag);
        f.consumer =
            cm_kafka_consumer_new(cfg, group, NULL, NULL, errstr, errstr_size);
        if (!f.consumer)
                goto out;
        /* The producer's metadata request also creates the reply topic
         * where the broker creates topics on demand (the devbroker). */
        if (tool_topic_partitions(f.producer, cfg->topic_requests, deadline,
                                  NULL, errstr, errstr_size) == -1 ||
            tool_topic_partitions(f.producer, o->reply_topic, deadline, NULL,
                                  errstr, errstr_size) == -1 ||
            tool_topic_assign_at_end(f.consumer, o->reply_topic, deadline,
                                     errstr, errstr_size) == -1)
                goto out;
        last = progress = cm_mono_us();
        while (received < total) {
                rd_kafka_message_t *m;
                long long n;

                while (sent < total && sent - received < o->window) {
                        if (send_request(&f, cfg, o, d, sent) == -1) {
                                cm_errf(errstr, errstr_size,
                                        "cannot send context request %lld",
                                        sent);
                                goto out;
                        }
                        sent++;
                }
                m = rd_kafka_consumer_poll(f.consumer, 100);
                rd_kafka_poll(f.producer, 0);
                if (f.failed) {
                        cm_errf(errstr, errstr_size,
                                "%lld context requests not delivered: %s",
                                f.failed, f.failure);
                        if (m)
                                rd_kafka_message_destroy(m);
                        goto out;
                }
                if (cm_stop) {
                        cm_errf(errstr, errstr_size, "interrupted");
                        if (m)
                                rd_kafka_message_destroy(m);
                        goto out;
                }
                if (cm_mono_us() - progress >= PROGRESS_US) {
                        progress = cm_mono_us();
                        fprintf(stderr,
                                "eval-memory: %lld/%lld context requests "
                                "answered\n",
                                received, total);
                }
                if (!m) {
                        if (cm_mono_us() - last >
                            o->reply_timeout_s * 1000000LL) {
                                cm_errf(errstr, errstr_size,
                                        "no reply on '%s' for %d s, %lld of "
                                        "%lld answered (chatmem-context "
                                        "running? '%s' allowed by "
                                        "context.reply_topics?)",
                                        o->reply_topic, o->reply_timeout_s,
                                        received, total, o->reply_topic);
                                goto out;
                        }
                        continue;
                }
                n = m->err ? -1
                           : reply_index(o->run_tag, m->key, m->key_len, total);
                if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
                        cm_errf(errstr, errstr_size, "consumer: %s",
                                rd_kafka_message_errstr(m));
                        rd_kafka_message_destroy(m);
                        goto out;
                }
                if (n >= 0 && !replies[n].got) {
                        take_reply(d, m, n, &replies[n], &bad);
                        received++;
                        last = cm_mono_us();
                }
                rd_kafka_message_destroy(m);
        }
        ret = 0;
out:
        fleet_close(&f);
        return ret;
}
