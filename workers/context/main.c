/*
 * chatmem-context: context.requests -> a compact context on each request's
 * reply_to topic.
 *
 * Each request is answered exactly once while this process runs: a context
 * or an error object. A batch of requests is answered, the replies are
 * delivered, and only then are the request offsets stored (at-least-once:
 * after a crash, requests whose replies were not yet acknowledged are
 * answered again, with the same request_id).
 *
 * Redis down: replies keep coming, marked degraded, built from the inline
 * history or from a bounded in-process cache of the sessions last read
 * (a direct-mapped table of context.cache_sessions slots).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "config.h"
#include "context.h"
#include "kafka.h"
#include "log.h"
#include "store.h"
#include "tokens.h"
#include "util.h"

#define BATCH_MAX 256

typedef struct cache_slot {
        char *key; /* "<user>:<conv>", NULL when empty */
        cm_session_t s;
} cache_slot_t;

typedef struct ctxw {
        cm_config_t cfg;
        rd_kafka_t *consumer;
        rd_kafka_t *producer;
        cm_store_t *st;
        const cm_tokenizer_t *tk;
        int64_t redis_retry_at; /* mono µs before which we do not reconnect */
        int redis_backoff_ms;
        cache_slot_t *cache;
        size_t cache_cnt;
        unsigned long long replies, errors, degraded, prebuilt;
        int64_t prebuilt_at; /* mono µs of the last prebuilt pass */
} ctxw_t;

static uint64_t hash_key(const char *s)
{
        uint64_t h = 1469598103934665603ULL; /* FNV-1a */

        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        return h;
}

static void copy_message(cm_message_t *dst, const cm_message_t *src)
{
        *dst = *src;
        dst->content = cm_strndup(src->content, src->content_len);
        dst->event_id = cm_strdup(src->event_id);
}

static void copy_profile(cm_profile_t *dst, const cm_profile_t *src)
{
        size_t i;

        dst->name = cm_strdup(src->name);
        dst->role = cm_strdup(src->role);
        dst->interest_cnt = src->interest_cnt;
        dst->interests = cm_calloc(src->interest_cnt + 1, sizeof(char *));
        for (i = 0; i < src->interest_cnt; i++)
                dst->interests[i] = cm_strdup(src->interests[i]);
}

static void copy_session(cm_session_t *dst, const cm_session_t *src)
{
        size_t i;

        *dst = *src;
        dst->msgs = cm_calloc(src->msg_cnt + 1, sizeof(cm_message_t));
        for (i = 0; i < src->msg_cnt; i++)
                copy_message(&dst->msgs[i], &src->msgs[i]);
        dst->summary = cm_strdup(src->summary ? src->summary : "");
        memset(&dst->profile, 0, sizeof(dst->profile));
        copy_profile(&dst->profile, &src->profile);
}

static cache_slot_t *cache_slot(ctxw_t *cw, const char *key)
{
        if (cw->cache_cnt == 0)
                return NULL;
        return &cw->cache[hash_key(key) % cw->cache_cnt];
}

static void cache_put(ctxw_t *cw, const char *key, const cm_session_t *s)
{
        cache_slot_t *slot = cache_slot(cw, key);

        if (!slot)
                return;
        free(slot->key);
        cm_session_release(&slot->s);
        slot->key = cm_strdup(key);
        copy_session(&slot->s, s);
}

/* Returns 0 and a copy of the cached session, or -1 if not cached. */
static int cache_get(ctxw_t *cw, const char *key, cm_session_t *out)
{
        cache_slot_t *slot = cache_slot(cw, key);

        if (!slot || !slot->key || strcmp(slot->key, key))
                return -1;
        copy_session(out, &slot->s);
        return 0;
}

/* Loads the session from Redis, reconnecting with backoff. Returns 0, or
 * -1 when Redis cannot be used now. */
static int load_session(ctxw_t *cw, const cm_request_t *req, int recent,
                        cm_session_t *s)
{
        char errstr[512];
        int64_t now = cm_mono_us();

        if (!cm_store_connected(cw->st) && now < cw->redis_retry_at)
                return -1;
        if (cm_store_load(cw->st, req->user_id, req->conversation_id, recent, s,
                          errstr, sizeof(errstr)) == 0) {
                if (cw->redis_backoff_ms)
                        cm_info("redis '%s' is back", cm_store_url(cw->st));
                cw->redis_backoff_ms = 0;
                return 0;
        }
        if (!cw->redis_backoff_ms)
                cm_warn("%s; replying degraded", errstr);
        cw->redis_backoff_ms =
            cw->redis_backoff_ms
                ? (cw->redis_backoff_ms * 2 > 5000 ? 5000
                                                   : cw->redis_backoff_ms * 2)
                : 100;
        cw->redis_retry_at = now + (int64_t)cw->redis_backoff_ms * 1000;
        return -1;
}

static void reply_error(ctxw_t *cw, const rd_kafka_message_t *m,
                        const cm_request_t *req, const char *why)
{
        const char *topic =
            req->reply_to ? req->reply_to : cw->cfg.topic_replies;

        cw->errors++;
        if (!req->request_id[0]) {
                /* Nobody to answer: the operator sees it in the DLQ. */
                cm_kafka_to_dlq(cw->producer, cw->cfg.topic_dlq, m, why);
                return;
        }
        cm_debug("request '%s' is invalid: %s", req->request_id, why);
        cm_kafka_produce(
            cw->producer, topic, req->request_id,
            cm_error_reply_encode(req->request_id, "invalid_request", why));
}

/* The session's newest message (seq last_seq) if it was loaded, else NULL.
 * It is not the last one loaded when an append came in between the reads
 * of the meta and of the list. */
static const cm_message_t *stored_newest(const cm_session_t *s)
{
        size_t i;

        for (i = s->msg_cnt; i > 0; i--) {
                if (s->msgs[i - 1].seq == s->last_seq)
                        return &s->msgs[i - 1];
        }
        return NULL;
}

/* Builds the reply to a decoded request (request_id "" gives the
 * prebuilt shape, without request_id). Returns a heap JSON string. */
static char *build(ctxw_t *cw, const cm_request_t *req, int64_t t0)
{
        cm_session_t s;
        cm_context_out_t out;
        cm_context_in_t cin;
        cm_reply_t reply;
        const cm_message_t *msgs;
        size_t msg_cnt, take;
        char skey[2 * CM_ID_MAX + 2], *json;
        int recent, degraded = 0, full;

        memset(&s, 0, sizeof(s));
        memset(&out, 0, sizeof(out));
        recent = req->recent >= 0 ? req->recent : cw->cfg.recent_verbatim;
        snprintf(skey, sizeof(skey), "%s:%s", req->user_id,
                 req->conversation_id);

        /* Inline history replaces the stored messages; the profile and
         * summary still come from the store when it answers. At least the
         * newest stored message is loaded, for full_history_tokens. */
        if (load_session(cw, req,
                         req->has_history ? 0 : (recent > 0 ? recent : 1),
                         &s) == 0) {
                if (!req->has_history)
                        cache_put(cw, skey, &s);
        } else {
                degraded = 1;
                if (req->has_history || cache_get(cw, skey, &s) == -1)
                        memset(&s, 0, sizeof(s));
        }
        if (req->has_history) {
                msgs = req->history;
                msg_cnt = req->history_cnt;
        } else {
                msgs = s.msgs;
                msg_cnt = s.msg_cnt;
        }
        take = msg_cnt < (size_t)recent ? msg_cnt : (size_t)recent;

        memset(&cin, 0, sizeof(cin));
        cin.profile = &s.profile;
        cin.summary = s.summary;
        cin.msgs = msgs + (msg_cnt - take);
        cin.msg_cnt = take;
        cin.max_tokens = req->max_tokens ? req->max_tokens : cw->cfg.max_tokens;
        cin.tk = cw->tk;
        cm_context_build(&cin, &out);

        if (req->has_history || (int64_t)s.msg_cnt >= s.total) {
                full =
                    cm_context_full_tokens(&s.profile, msgs, msg_cnt, cw->tk);
        } else {
                /* Older messages were folded or are not loaded: their line
                 * tokens were stored at ingest and summed in the session. */
                full = cm_context_full_tokens_stored(
                    &s.profile, s.tokens, stored_newest(&s),
                    s.last_break_known ? &s.last_break : NULL, cw->tk);
        }

        memset(&reply, 0, sizeof(reply));
        reply.request_id = req->request_id[0] ? req->request_id : NULL;
        reply.user_id = req->user_id;
        reply.conversation_id = req->conversation_id;
        reply.context = out.text;
        reply.profile = &s.profile;
        reply.summary = out.summary;
        reply.recent = out.recent;
        reply.recent_cnt = out.recent_cnt;
        reply.meta.total_messages =
            req->has_history ? (int64_t)req->history_cnt : s.total;
        reply.meta.summarized = out.summary && *out.summary;
        reply.meta.cached = 0;
        reply.meta.tokens = out.tokens;
        reply.meta.full_history_tokens = full;
        reply.meta.degraded = degraded;
        reply.meta.build_us = cm_mono_us() - t0;
        json = cm_reply_encode(&reply);
        cw->degraded += (unsigned long long)degraded;
        cm_context_out_release(&out);
        cm_session_release(&s);
        return json;
}

static void answer(ctxw_t *cw, const rd_kafka_message_t *m)
{
        cm_request_t req;
        char why[512];
        int64_t t0 = cm_mono_us();

        memset(&req, 0, sizeof(req));
        if (cm_request_decode(m->payload, m->len,
                              (size_t)cw->cfg.max_content_bytes, &req, why,
                              sizeof(why)) == -1) {
                reply_error(cw, m, &req, why);
        } else {
                cm_kafka_produce(cw->producer,
                                 req.reply_to ? req.reply_to
                                              : cw->cfg.topic_replies,
                                 req.request_id, build(cw, &req, t0));
                cw->replies++;
        }
        cm_request_release(&req);
}

#define PREBUILT_BATCH 256

/*
 * Publishes the fresh context of the sessions that changed. Ingest and the
 * summarizer mark a changed session in the store's dirty set (with the
 * time of its first change since its last publication); this pops those
 * whose first change is at least prebuilt_interval_ms old, builds each
 * with the default budget and publishes it to the prebuilt topic, keyed
 * by session. So a session is published at most once per interval and its
 * last change always is, whichever context worker pops it.
 */
static void publish_prebuilt(ctxw_t *cw)
{
        char *sessions[PREBUILT_BATCH], errstr[512];
        int n, i;

        if (!cm_store_connected(cw->st) && cm_mono_us() < cw->redis_retry_at)
                return;
        n = cm_store_pop_dirty(cw->st, sessions, PREBUILT_BATCH,
                               cm_now_ms() - cw->cfg.prebuilt_interval_ms,
                               errstr, sizeof(errstr));
        if (n == -1) {
                /* Redis is away: try again in a second, so that the loop
                 * does not block on reconnects. */
                cm_debug("prebuilt: %s", errstr);
                cw->redis_retry_at = cm_mono_us() + 1000000;
                return;
        }
        for (i = 0; i < n; i++) {
                cm_request_t req;
                char *colon = strchr(sessions[i], ':');

                memset(&req, 0, sizeof(req));
                if (colon && (size_t)(colon - sessions[i]) <= CM_ID_MAX &&
                    strlen(colon + 1) <= CM_ID_MAX) {
                        memcpy(req.user_id, sessions[i],
                               (size_t)(colon - sessions[i]));
                        snprintf(req.conversation_id,
                                 sizeof(req.conversation_id), "%s", colon + 1);
                        req.recent = -1;
                        cm_kafka_produce(cw->producer, cw->cfg.topic_prebuilt,
                                         sessions[i],
                                         build(cw, &req, cm_mono_us()));
                        cw->prebuilt++;
                }
                free(sessions[i]);
        }
}

int main(int argc, char **argv)
{
        ctxw_t cw;
        rd_kafka_message_t *batch[BATCH_MAX];
        char errstr[512];
        int ret = 1;
        size_t i;

        memset(&cw, 0, sizeof(cw));
        cm_config_init(&cw.cfg);
        ret = cm_daemon_init(argc, argv, "chatmem-context",
                             "Answers context requests with a compact context.",
                             &cw.cfg);
        if (ret != -1)
                goto out;
        ret = 1;
        if (cm_tokenizer_get(cw.cfg.tokenizer, &cw.tk, errstr,
                             sizeof(errstr)) == -1) {
                cm_error("%s", errstr);
                goto out;
        }
        cw.st = cm_store_new(&cw.cfg, errstr, sizeof(errstr));
        if (!cw.st) {
                cm_error("%s", errstr);
                goto out;
        }
        if (cm_store_connect(cw.st, errstr, sizeof(errstr)) == -1)
                cm_warn("%s; replies are degraded until it is back", errstr);
        cw.cache_cnt = (size_t)cw.cfg.cache_sessions;
        cw.cache = cm_calloc(cw.cache_cnt + 1, sizeof(*cw.cache));

        cw.producer =
            cm_kafka_producer_new(&cw.cfg, NULL, NULL, errstr, sizeof(errstr));
        if (!cw.producer) {
                cm_error("%s", errstr);
                goto out;
        }
        cw.consumer = cm_kafka_consumer_new(&cw.cfg, cw.cfg.context_group,
                                            cm_kafka_rebalance_default, &cw,
                                            errstr, sizeof(errstr));
        if (!cw.consumer) {
                cm_error("%s", errstr);
                goto out;
        }
        if (cm_kafka_subscribe(cw.consumer, cw.cfg.topic_requests, errstr,
                               sizeof(errstr)) == -1) {
                cm_error("%s", errstr);
                goto out;
        }
        cm_info("answering '%s' in group '%s' from redis '%s'",
                cw.cfg.topic_requests, cw.cfg.context_group,
                cm_store_url(cw.st));

        while (!cm_stop) {
                size_t n = 0;
                rd_kafka_message_t *m =
                    rd_kafka_consumer_poll(cw.consumer, 100);

                if (cw.cfg.prebuilt &&
                    cm_mono_us() - cw.prebuilt_at >= 100000) {
                        cw.prebuilt_at = cm_mono_us();
                        publish_prebuilt(&cw);
                }
                if (!m) {
                        rd_kafka_poll(cw.producer, 0);
                        continue;
                }
                batch[n++] = m;
                while (n < BATCH_MAX &&
                       (m = rd_kafka_consumer_poll(cw.consumer, 0)))
                        batch[n++] = m;
                for (i = 0; i < n; i++) {
                        if (batch[i]->err) {
                                if (batch[i]->err !=
                                    RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                        cm_warn(
                                            "consumer: %s",
                                            rd_kafka_message_errstr(batch[i]));
                                continue;
                        }
                        answer(&cw, batch[i]);
                }
                /* Replies first, then the offsets that stand for them. */
                while (rd_kafka_outq_len(cw.producer) > 0 && !cm_stop)
                        rd_kafka_flush(cw.producer, 100);
                for (i = 0; i < n; i++) {
                        if (!batch[i]->err &&
                            rd_kafka_outq_len(cw.producer) == 0)
                                rd_kafka_offset_store(batch[i]->rkt,
                                                      batch[i]->partition,
                                                      batch[i]->offset);
                        rd_kafka_message_destroy(batch[i]);
                }
        }
        cm_info("stopping: %llu replies (%llu degraded), %llu errors, %llu "
                "prebuilt",
                cw.replies, cw.degraded, cw.errors, cw.prebuilt);
        ret = 0;
out:
        cm_kafka_consumer_close(cw.consumer);
        if (cm_kafka_producer_close(cw.producer, 5000) > 0)
                ret = 1;
        cm_store_destroy(cw.st);
        for (i = 0; cw.cache && i < cw.cache_cnt; i++) {
                free(cw.cache[i].key);
                cm_session_release(&cw.cache[i].s);
        }
        free(cw.cache);
        cm_config_release(&cw.cfg);
        return ret;
}
