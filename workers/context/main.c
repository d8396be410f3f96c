/*
 * chatmem-context: context.requests -> a compact context on each request's
 * reply_to topic.
 *
 * The loop takes a batch of up to BATCH_MAX requests and answers it in
 * phases: it decodes every request (a bad one gets its error reply at
 * once, or a DLQ entry when not even its request_id can be read); it sends
 * the Redis loads of the sessions it needs in one pipeline; then it
 * receives each load in order, builds the context and produces the reply.
 * So a batch costs one Redis round trip, not one per request.
 *
 * A reply too large for a Kafka message (the producer's
 * message.max.bytes: a huge inline history with a huge max_tokens) is
 * answered with an invalid_request error instead, as it could never be
 * delivered.
 *
 * A reply goes to the request's reply_to when context.reply_topics allows
 * it, else (an internal topic such as chat.events) the request gets an
 * invalid_request error on the default reply topic and nothing is written
 * to the topic it named. An error reply goes to the request's reply_to
 * whenever that field itself is readable and allowed.
 *
 * Each request is answered exactly once while this process runs: a context
 * or an error object. Offsets are stored without waiting for delivery in
 * the loop, through the reply tracker (reply_tracker.h: a FIFO of batches,
 * each storing its offsets once its replies are all delivered). When the
 * FIFO is full the loop serves the producer until its head completes. On a
 * revoke and at shutdown the replies in flight are delivered (bounded) and
 * their offsets stored before the commit. A reply that can never be
 * delivered (too large, unknown topic) is given up by the worker's
 * delivery policy, so that one bad reply_to cannot hold back the offsets
 * of its partition for ever.
 *
 * Redis down: replies keep coming, marked degraded, built from the inline
 * history or from the bounded session cache (session_cache.h) of the
 * sessions last read. Reconnects back off from 100 ms to 5 s, one step per
 * batch.
 *
 * The deadline: every request is answered within context.deadline_ms of
 * being taken from Kafka, whatever Redis does (refuses connections, hangs,
 * is slow). The requests of a batch are taken together, so the batch waits
 * for Redis (connect, every read and write: cm_store_set_deadline()) at
 * most until their deadline less the time its replies take to build
 * (cm_deadline_wait_until(), from a moving average of one build); a load
 * that has not come back by then fails as an I/O error does, and its
 * request, and every later one of the pipeline, is answered degraded.
 * metadata.build_us counts from the request being taken. A prebuilt pass
 * has the same bound, so that it never holds up the requests behind it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "context.h"
#include "deadline.h"
#include "kafka.h"
#include "log.h"
#include "recall_cache.h"
#include "reply_tracker.h"
#include "session_cache.h"
#include "store.h"
#include "util.h"
#include "worker.h"

#define BATCH_MAX              256 /* requests per batch, sessions per prebuilt pass */
#define REVOKE_FLUSH_MS        5000 /* delivering the replies in flight on revoke */
#define SHUTDOWN_FLUSH_MS      5000
#define PREBUILT_EVERY_US      100000
#define RECALL_CACHE_MAX_BYTES (1u << 20) /* a session's earlier messages */
#define BUILD_US_FIRST         100 /* the build estimate before any build */

/* One request of the batch in hand (or one session of a prebuilt pass). */
typedef struct item {
        cm_request_t req;
        int answer;  /* 1: decoded, to be answered with a context */
        int sent;    /* 1: its load is in the Redis pipeline */
        int loaded;  /* 1: s holds the session as Redis gave it */
        int partial; /* 1: the other conversations could not be read */
        cm_session_t s;
        cm_conv_history_t *others; /* scope "user": the user's other
                                      conversations */
        size_t others_cnt;
        /* The request's kafka_correlationId header (corr_len 0: none),
         * returned on its reply. */
        unsigned char corr[CM_KAFKA_CORR_MAX];
        size_t corr_len;
} item_t;

typedef struct ctxw {
        cm_worker_t w;
        cm_backoff_t redis; /* reconnects, one step per batch */
        int redis_trouble;  /* 1 once a load of the batch in hand failed */
        cm_session_cache_t *cache;
        cm_recall_cache_t *recall_cache; /* per-session recall indexes */
        item_t *items;                   /* BATCH_MAX */
        cm_tracker_fifo_t inflight;
        /* per partition, the next offset past the requests this process
         * answered (replies delivered): a request redelivered after a
         * rebalance (its offset not committed, the broker restarted) is
         * not answered twice */
        rd_kafka_topic_partition_list_t *answered;
        size_t reply_max; /* bytes a reply may have (a Kafka message) */
        unsigned long long replies, errors, degraded, prebuilt;
        int64_t prebuilt_at;          /* mono µs of the last prebuilt pass */
        int64_t build_us;             /* moving average of one build: the time a
                                         batch keeps from its deadline to build */
        char *unpublished[BATCH_MAX]; /* sessions popped for prebuilt
                                         publication whose load failed */
        size_t unpublished_cnt;
        struct {
                cm_metric_t *requests, *errors, *degraded, *recalled,
                    *tokens_saved, *prebuilt, *build_seconds, *reply_seconds;
        } m;
} ctxw_t;

static void metrics_init(ctxw_t *cw)
{
        cm_metrics_t *mx = cw->w.mx;

        cw->m.requests = cm_metrics_counter(
            mx, "requests_total",
            "Context requests taken, each answered with a context or an error.",
            NULL);
        cw->m.errors = cm_metrics_counter(
            mx, "error_replies_total",
            "Requests answered with an error (or sent to the DLQ).", NULL);
        cw->m.degraded = cm_metrics_counter(
            mx, "degraded_replies_total",
            "Contexts built without Redis, marked degraded.", NULL);
        cw->m.recalled = cm_metrics_counter(
            mx, "recalled_messages_total",
            "Earlier messages recalled into contexts.", NULL);
        cw->m.tokens_saved = cm_metrics_counter(
            mx, "tokens_saved_total",
            "Tokens of the full histories minus those of the contexts.", NULL);
        cw->m.prebuilt = cm_metrics_counter(
            mx, "prebuilt_published_total",
            "Prebuilt contexts and tombstones published.", NULL);
        cw->m.build_seconds = cm_metrics_histogram(
            mx, "build_seconds", "Time to build one context.",
            cm_metrics_latency_buckets, cm_metrics_latency_bucket_cnt, NULL);
        cw->m.reply_seconds = cm_metrics_histogram(
            mx, "reply_seconds",
            "Time from a request's batch taken to its reply queued.",
            cm_metrics_latency_buckets, cm_metrics_latency_bucket_cnt, NULL);
}

/* A load of the batch in hand failed: one backoff step per batch. */
static void redis_trouble(ctxw_t *cw, const char *errstr)
{
        if (cw->redis_trouble)
                return;
        cw->redis_trouble = 1;
        cm_metric_inc(cw->w.m.redis_errors);
        if (!cw->redis.ms)
                cm_warn("%s; replying degraded", errstr);
        else
                cm_debug("%s", errstr);
        cm_backoff_fail(&cw->redis, cm_mono_us());
}

/* A load succeeded. */
static void redis_fine(ctxw_t *cw)
{
        if (!cw->redis_trouble && cm_backoff_ok(&cw->redis))
                cm_info("redis '%s' is back", cm_store_url(cw->w.st));
}

/* 1 when the store may be asked now: connected, or the backoff is over. */
static int redis_ready(const ctxw_t *cw)
{
        return cm_store_connected(cw->w.st) ||
               cm_backoff_ready(&cw->redis, cm_mono_us());
}

static int recent_of(const ctxw_t *cw, const cm_request_t *req)
{
        return req->recent >= 0 ? req->recent : cw->w.cfg.recent_verbatim;
}

/* Inline history replaces the stored messages (and is itself the whole
 * history recall searches); the profile and summary still come from the
 * store when it answers. Otherwise every stored message and the archive
 * are loaded: the recent window, and the earlier messages recall ranks. */
static int load_cnt(const cm_request_t *req)
{
        return req->has_history ? 0 : -1;
}

static unsigned load_flags(const cm_request_t *req)
{
        return req->has_history ? 0 : CM_LOAD_ARCHIVE;
}

/* Sends the loads of the items to answer in one pipeline, connecting once
 * (with backoff) first. An item whose load is not sent is answered
 * degraded. */
static void send_loads(ctxw_t *cw, item_t *items, size_t n)
{
        char errstr[512];
        size_t i, todo = 0;

        for (i = 0; i < n; i++)
                todo += (size_t)(items[i].answer && !items[i].req.stateless);
        if (!todo || !redis_ready(cw))
                return;
        if (cm_store_connect(cw->w.st, errstr, sizeof(errstr)) == -1) {
                redis_trouble(cw, errstr);
                return;
        }
        for (i = 0; i < n; i++) {
                if (!items[i].answer || items[i].req.stateless)
                        continue;
                if (cm_store_load_send(cw->w.st, items[i].req.user_id,
                                       items[i].req.conversation_id,
                                       load_cnt(&items[i].req),
                                       load_flags(&items[i].req), errstr,
                                       sizeof(errstr)) == -1) {
                        redis_trouble(cw, errstr);
                        return;
                }
                items[i].sent = 1;
        }
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

/* The query recall answers: the request's; else, with recall.implicit,
 * the newest user message of msgs[0..cnt); else NULL. */
static const char *recall_query(const ctxw_t *cw, const cm_request_t *req,
                                const cm_message_t *msgs, size_t cnt)
{
        if (req->query)
                return req->query;
        if (!cw->w.cfg.recall_implicit)
                return NULL;
        while (cnt > 0) {
                if (msgs[--cnt].role == CM_ROLE_USER)
                        return msgs[cnt].content;
        }
        return NULL;
}

/* The earlier messages recall ranks, oldest first, as one array of
 * borrowed messages (shallow copies: never released): the user's other
 * conversations (scope "user", each in its order), then the session's
 * archive, then its messages before the recent window. Returns the array
 * (free() it; NULL when empty) and sets *cnt. */
static cm_message_t *earlier_of(const item_t *it, const cm_session_t *s,
                                const cm_message_t *before, size_t before_cnt,
                                size_t *cnt)
{
        cm_message_t *e;
        size_t i, n = before_cnt, at = 0;

        for (i = 0; i < it->others_cnt; i++)
                n += it->others[i].msg_cnt;
        if (!it->req.has_history)
                n += s->archive_cnt;
        *cnt = n;
        if (n == 0)
                return NULL;
        e = cm_calloc(n, sizeof(*e));
        for (i = 0; i < it->others_cnt; i++) {
                memcpy(e + at, it->others[i].msgs,
                       it->others[i].msg_cnt * sizeof(*e));
                at += it->others[i].msg_cnt;
        }
        if (!it->req.has_history && s->archive_cnt) {
                memcpy(e + at, s->archive, s->archive_cnt * sizeof(*e));
                at += s->archive_cnt;
        }
        if (before_cnt)
                memcpy(e + at, before, before_cnt * sizeof(*e));
        return e;
}

/* The profile of the reply, into out (release it): the request's fields,
 * then the stored ones it lacks, then what the user says of themself in
 * the inline history, so that a context built from an application's own
 * history knows the user before ingest has applied it. */
static void profile_of(const cm_request_t *req, const cm_session_t *s,
                       cm_profile_t *out)
{
        cm_profile_t said;

        memset(out, 0, sizeof(*out));
        cm_profile_fill(out, &req->profile);
        cm_profile_fill(out, &s->profile);
        if (req->has_history) {
                cm_profile_from_messages(req->history, req->history_cnt, &said);
                cm_profile_fill(out, &said);
                cm_profile_release(&said);
        }
}

/* Builds the reply to a decoded request from session s (request_id ""
 * gives the prebuilt shape, without request_id). Returns a heap JSON
 * string. */
static char *build(ctxw_t *cw, const item_t *it, const cm_session_t *s,
                   int degraded, int64_t t0)
{
        const cm_request_t *req = &it->req;
        cm_context_out_t out;
        cm_context_in_t cin;
        cm_reply_t reply;
        cm_profile_t profile;
        const cm_message_t *msgs;
        cm_message_t *earlier;
        cm_recall_cached_t got;
        size_t msg_cnt, take, earlier_cnt;
        int64_t t_index = 0;
        char *json;
        int recent = recent_of(cw, req), full;

        memset(&out, 0, sizeof(out));
        profile_of(req, s, &profile);
        if (req->has_history) {
                msgs = req->history;
                msg_cnt = req->history_cnt;
        } else {
                msgs = s->msgs;
                msg_cnt = s->msg_cnt;
        }
        take = msg_cnt < (size_t)recent ? msg_cnt : (size_t)recent;
        earlier = earlier_of(it, s, msgs, msg_cnt - take, &earlier_cnt);
        memset(&got, 0, sizeof(got));
        if (earlier_cnt && !req->has_history && !it->others_cnt) {
                /* The session's own history: its index is cached, and
                 * only what joined it since the last request is indexed. */
                char skey[CM_SESSION_KEY_MAX];

                t_index = cm_mono_us();
                cm_session_key(skey, req->user_id, req->conversation_id);
                cm_recall_cache_get(cw->recall_cache, skey, earlier,
                                    earlier_cnt, &got);
                t_index = cm_mono_us() - t_index;
        }

        memset(&cin, 0, sizeof(cin));
        cin.profile = &profile;
        cin.summary = s->summary;
        cin.msgs = msgs + (msg_cnt - take);
        cin.msg_cnt = take;
        cin.max_tokens =
            req->max_tokens ? req->max_tokens : cw->w.cfg.max_tokens;
        cin.tk = cw->w.tk;
        cin.query = recall_query(cw, req, msgs, msg_cnt);
        cin.earlier = got.index ? got.msgs : earlier;
        cin.earlier_cnt = earlier_cnt;
        cin.index = got.index;
        cin.min_score_share = cw->w.cfg.recall_min_score_share;
        cin.summary_max_tokens = (int)((long long)cin.max_tokens *
                                       cw->w.cfg.recall_summary_share / 100);
        cm_context_build(&cin, &out);
        cm_recall_cache_release(&got);
        free(earlier);

        if (req->has_history || (int64_t)s->msg_cnt >= s->total) {
                full =
                    cm_context_full_tokens(&profile, msgs, msg_cnt, cw->w.tk);
        } else {
                /* Older messages were folded: their line tokens were
                 * stored at ingest and summed in the session. */
                full = cm_context_full_tokens_stored(
                    &profile, s->tokens, stored_newest(s),
                    s->last_break_known ? &s->last_break : NULL, cw->w.tk);
        }

        memset(&reply, 0, sizeof(reply));
        reply.request_id = req->request_id[0] ? req->request_id : NULL;
        reply.user_id = req->user_id;
        reply.conversation_id = req->conversation_id;
        reply.context = out.text;
        reply.profile = &profile;
        reply.summary = out.summary;
        reply.recent = out.recent;
        reply.recent_cnt = out.recent_cnt;
        reply.meta.total_messages =
            req->has_history ? (int64_t)req->history_cnt : s->total;
        reply.meta.summarized = out.summary && *out.summary;
        reply.meta.cached = 0;
        reply.meta.tokens = out.tokens;
        reply.meta.full_history_tokens = full;
        reply.meta.degraded = degraded;
        reply.meta.build_us = cm_mono_us() - t0; /* from the request taken */
        reply.meta.recalled = (int)out.recalled_cnt;
        reply.meta.recall_us = out.recall_us + t_index;
        json = cm_reply_encode(&reply);
        cw->degraded += (unsigned long long)degraded;
        cm_metric_add(cw->m.degraded, degraded);
        cm_metric_add(cw->m.recalled, (double)out.recalled_cnt);
        if (full > out.tokens)
                cm_metric_add(cw->m.tokens_saved, full - out.tokens);
        cm_context_out_release(&out);
        cm_profile_release(&profile);
        return json;
}

/* Receives the item's load, if it was sent. Call for every item of a
 * pipeline, in order. */
static void receive(ctxw_t *cw, item_t *it)
{
        char errstr[512];

        if (!it->sent)
                return;
        if (cm_store_load_recv(cw->w.st, it->req.user_id,
                               it->req.conversation_id, &it->s, errstr,
                               sizeof(errstr)) == 0) {
                redis_fine(cw);
                it->loaded = 1;
        } else {
                redis_trouble(cw, errstr);
        }
}

/* Scope "user": loads the user's other conversations (after the
 * pipeline: its replies are all read). Without them the reply is built
 * from the session alone, marked degraded. */
static void receive_others(ctxw_t *cw, item_t *it)
{
        char errstr[512];

        if (!it->loaded || !it->req.scope_user)
                return;
        if (cm_store_load_user_history(
                cw->w.st, it->req.user_id, it->req.conversation_id, &it->others,
                &it->others_cnt, errstr, sizeof(errstr)) == -1) {
                redis_trouble(cw, errstr);
                it->partial = 1;
        }
}

/* A copy for the degraded-mode cache keeps at most this much archive. */
#define CACHE_ARCHIVE_MAX 256

/* Builds the item's reply: from its loaded session, else degraded from
 * the inline history or the cache; its build_us counts from taken_us (0:
 * from now, for a prebuilt context). Then releases what the item holds
 * but its request. Returns a heap JSON string. */
static char *answer(ctxw_t *cw, item_t *it, int64_t taken_us)
{
        cm_session_t none;
        const cm_session_t *use = &none;
        char skey[CM_SESSION_KEY_MAX], *json;
        int64_t t0 = cm_mono_us(), took;

        memset(&none, 0, sizeof(none));
        cm_session_key(skey, it->req.user_id, it->req.conversation_id);
        if (it->loaded) {
                use = &it->s;
        } else if (!it->req.has_history && !it->req.stateless) {
                const cm_session_t *cached =
                    cm_session_cache_get(cw->cache, skey);

                if (cached)
                        use = cached;
        }
        json = build(cw, it, use,
                     !it->req.stateless && (!it->loaded || it->partial),
                     taken_us ? taken_us : t0);
        took = cm_mono_us() - t0;
        cm_metric_observe(cw->m.build_seconds, took / 1e6);
        cw->build_us += (took - cw->build_us) / 8;
        /* A session Redis does not have is not cached: it would only
         * take the slot of one it has. */
        if (it->loaded && it->s.exists && !it->req.has_history) {
                cm_session_t *s = &it->s;

                if (s->archive_cnt > CACHE_ARCHIVE_MAX) {
                        size_t drop = s->archive_cnt - CACHE_ARCHIVE_MAX, i;

                        for (i = 0; i < drop; i++)
                                cm_message_release(&s->archive[i]);
                        memmove(s->archive, s->archive + drop,
                                CACHE_ARCHIVE_MAX * sizeof(*s->archive));
                        s->archive_cnt = CACHE_ARCHIVE_MAX;
                }
                cm_session_cache_put(cw->cache, skey, s);
        }
        cm_session_release(&it->s);
        cm_conv_history_free(it->others, it->others_cnt);
        it->others = NULL;
        it->others_cnt = 0;
        return json;
}

/* Loads the sessions of items[0..n) (one pipeline, then the other
 * conversations of scope "user" requests), the oldest taken at taken_us:
 * Redis gets until the deadline less the time their builds take. */
static void load_all(ctxw_t *cw, item_t *items, size_t n, int64_t taken_us)
{
        size_t i, todo = 0;

        for (i = 0; i < n; i++)
                todo += (size_t)items[i].answer;
        cm_store_set_deadline(
            cw->w.st, cm_deadline_wait_until(taken_us, cw->w.cfg.deadline_ms,
                                             todo, cw->build_us));
        send_loads(cw, items, n);
        for (i = 0; i < n; i++)
                receive(cw, &items[i]);
        for (i = 0; i < n; i++)
                receive_others(cw, &items[i]);
        cm_store_set_deadline(cw->w.st, 0);
}

/* Stores the offsets of a batch whose replies are all delivered. */
static void store_offsets(void *opaque, rd_kafka_topic_partition_list_t *o)
{
        ctxw_t *cw = opaque;
        int i;

        /* Per-partition errors are in each .err; a partition revoked
         * meanwhile fails with __STATE: its next owner answers those
         * requests again. */
        rd_kafka_offsets_store(cw->w.consumer, o);
        for (i = 0; i < o->cnt; i++) {
                const rd_kafka_topic_partition_t *e = &o->elems[i];
                rd_kafka_topic_partition_t *a =
                    rd_kafka_topic_partition_list_find(cw->answered, e->topic,
                                                       e->partition);

                if (!a)
                        a = rd_kafka_topic_partition_list_add(
                            cw->answered, e->topic, e->partition);
                if (e->offset > a->offset)
                        a->offset = e->offset;
        }
        for (i = 0; i < o->cnt; i++)
                if (o->elems[i].err)
                        cm_debug("offset %lld of '%s' [%d] not stored: %s",
                                 (long long)o->elems[i].offset,
                                 o->elems[i].topic, (int)o->elems[i].partition,
                                 rd_kafka_err2str(o->elems[i].err));
}

/* Drops from batch[0..n) the requests this process already answered
 * (after a rebalance that gave their partition back from an older
 * committed offset). Returns the count left, in order. */
static size_t drop_answered(ctxw_t *cw, rd_kafka_message_t **batch, size_t n)
{
        size_t i, k = 0;

        for (i = 0; i < n; i++) {
                const rd_kafka_topic_partition_t *a =
                    rd_kafka_topic_partition_list_find(
                        cw->answered, rd_kafka_topic_name(batch[i]->rkt),
                        batch[i]->partition);

                if (a && batch[i]->offset < a->offset) {
                        cm_debug("request at [%d] @%lld already answered",
                                 (int)batch[i]->partition,
                                 (long long)batch[i]->offset);
                        rd_kafka_message_destroy(batch[i]);
                        continue;
                }
                batch[k++] = batch[i];
        }
        return k;
}

static void store_delivered(ctxw_t *cw)
{
        cm_tracker_pop_done(&cw->inflight, store_offsets, cw);
}

/* Queues a reply (payload owned) that counts for tr (NULL: untracked).
 * The reply to request item it (NULL: none, a prebuilt context) carries
 * the kafka_correlationId header: the request's, else its request_id. */
static void produce(ctxw_t *cw, cm_tracker_t *tr, const char *topic,
                    const char *key, char *payload, const item_t *it)
{
        rd_kafka_headers_t *hdrs = NULL;

        if (it) {
                hdrs = rd_kafka_headers_new(1);
                if (it->corr_len)
                        rd_kafka_header_add(hdrs, "kafka_correlationId", -1,
                                            it->corr, (ssize_t)it->corr_len);
                else
                        rd_kafka_header_add(
                            hdrs, "kafka_correlationId", -1, it->req.request_id,
                            (ssize_t)strlen(it->req.request_id));
        }
        if (cm_worker_produce_headers(&cw->w, topic, key, payload, hdrs,
                                      tr ? &tr->d : NULL) == -1 &&
            tr && !cm_worker_running(&cw->w))
                tr->lost = 1; /* queue full at shutdown: answer it again
                                 after the restart */
}

/* On revoke, hands over what was answered: delivers the replies in flight
 * (bounded) and stores their offsets, which the commit on revoke then
 * commits. */
static void revoke(cm_worker_t *w)
{
        ctxw_t *cw = w->spec->opaque;

        if (cw->inflight.cnt > 0 && cm_worker_running(w)) {
                rd_kafka_flush(w->producer, REVOKE_FLUSH_MS);
                store_delivered(cw);
        }
}

/* The topic a decoded request's reply (or error) goes to: its reply_to,
 * which request_decode() kept only when allowed, else the default. */
static const char *reply_topic(const ctxw_t *cw, const cm_request_t *req)
{
        return req->reply_to ? req->reply_to : cw->w.cfg.topic_replies;
}

static void reply_error(ctxw_t *cw, cm_tracker_t *tr,
                        const rd_kafka_message_t *m, const item_t *it,
                        const char *why)
{
        const cm_request_t *req = &it->req;

        cw->errors++;
        cm_metric_inc(cw->m.errors);
        if (!req->request_id[0]) {
                /* Nobody to answer: the operator sees it in the DLQ. */
                if (cm_worker_to_dlq(&cw->w, m, why, &tr->d) == -1 &&
                    !cm_worker_running(&cw->w))
                        tr->lost = 1;
                return;
        }
        cm_debug("request '%s' is invalid: %s", req->request_id, why);
        produce(cw, tr, reply_topic(cw, req), req->request_id,
                cm_error_reply_encode(req->request_id, "invalid_request", why),
                it);
}

/* Reads the routing headers of request m (kafka_correlationId,
 * kafka_replyTopic) into route, with rid and topic as its storage, and
 * keeps the correlation bytes in it for the reply. */
static void read_route(const rd_kafka_message_t *m, item_t *it,
                       cm_request_route_t *route, char rid[CM_ID_MAX + 1],
                       char *topic, size_t topic_size)
{
        rd_kafka_headers_t *hdrs = NULL;
        const void *corr;

        if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
                hdrs = NULL;
        cm_kafka_request_route(hdrs, route, rid, topic, topic_size, &corr,
                               &it->corr_len);
        if (it->corr_len)
                memcpy(it->corr, corr, it->corr_len);
}

/* Decodes a request (its routing headers standing for a request_id or
 * reply_to its body lacks) and checks what the codec cannot: that its
 * reply_to is allowed. A reply_to that is not is dropped, also from a
 * request that failed otherwise, so that every reply goes to
 * reply_topic(). Returns 0, or -1 with the reason. */
static int request_decode(ctxw_t *cw, const rd_kafka_message_t *m, item_t *it,
                          char *errstr, size_t errstr_size)
{
        cm_request_t *req = &it->req;
        cm_request_route_t route;
        char rid[CM_ID_MAX + 1], topic[256];
        int ret;

        read_route(m, it, &route, rid, topic, sizeof(topic));
        ret = cm_request_decode_routed(m->payload, m->len,
                                       (size_t)cw->w.cfg.max_content_bytes,
                                       &route, req, errstr, errstr_size);

        if (!req->reply_to ||
            cm_config_reply_topic_allowed(&cw->w.cfg, req->reply_to))
                return ret;
        if (ret == 0)
                snprintf(errstr, errstr_size,
                         "field 'reply_to': topic '%s' is not an allowed "
                         "reply topic (context.reply_topics = \"%s\")",
                         req->reply_to, cw->w.cfg.reply_topics);
        free(req->reply_to);
        req->reply_to = NULL;
        return -1;
}

/* Answers a batch of consumed messages, taken from Kafka at taken_us:
 * decode all, pipeline the loads, then receive, build and produce each
 * reply in order. The batch's offsets are stored by store_delivered()
 * once its replies are delivered. Destroys the messages. */
static void answer_batch(ctxw_t *cw, rd_kafka_message_t **batch, size_t n,
                         int64_t taken_us)
{
        cm_tracker_t *tr = cm_tracker_push(&cw->inflight);
        char why[512];
        size_t i;

        cw->redis_trouble = 0;
        for (i = 0; i < n; i++) {
                item_t *it = &cw->items[i];

                memset(it, 0, sizeof(*it));
                cm_tracker_add(tr, batch[i]);
                cm_metric_inc(cw->m.requests);
                if (request_decode(cw, batch[i], it, why, sizeof(why)) == -1) {
                        reply_error(cw, tr, batch[i], it, why);
                        continue;
                }
                it->answer = 1;
        }
        load_all(cw, cw->items, n, taken_us);
        for (i = 0; i < n; i++) {
                item_t *it = &cw->items[i];

                if (it->answer) {
                        char *json = answer(cw, it, taken_us);

                        if (strlen(json) > cw->reply_max) {
                                /* It could never be delivered: an error
                                 * reply instead, so that it is answered. */
                                snprintf(why, sizeof(why),
                                         "the reply would be %zu bytes, over "
                                         "the %zu a message may hold: ask for "
                                         "fewer max_tokens",
                                         strlen(json), cw->reply_max);
                                free(json);
                                reply_error(cw, tr, batch[i], it, why);
                        } else {
                                produce(cw, tr, reply_topic(cw, &it->req),
                                        it->req.request_id, json, it);
                                cw->replies++;
                        }
                        cm_metric_observe(cw->m.reply_seconds,
                                          (cm_mono_us() - taken_us) / 1e6);
                }
                cm_request_release(&it->req);
                rd_kafka_message_destroy(batch[i]);
        }
        cm_tracker_seal(tr); /* the whole batch is queued */
}

/*
 * Publishes the fresh context of the sessions that changed. Ingest and the
 * summarizer mark a changed session in the store's dirty set (with the
 * time of its first change since its last publication); this pops those
 * whose first change is at least prebuilt_interval_ms old, builds each
 * with the default budget (their loads in one pipeline) and publishes it
 * to the prebuilt topic, keyed by session; a session that no longer
 * exists (session.delete, user.delete) gets a tombstone instead. So a
 * session is published at most once per interval and its last change
 * always is, whichever context worker pops it. These produces guard no
 * offset: they are not tracked. The pass waits for Redis no longer than a
 * batch of requests would (context.deadline_ms). A session popped whose
 * load then fails is not published (a degraded context would replace a
 * good one in the compacted topic): it is kept and marked changed again
 * at the start of the next pass.
 */
static void publish_prebuilt(ctxw_t *cw)
{
        char *sessions[BATCH_MAX], errstr[512];
        int64_t t0 = cm_mono_us();
        size_t j;
        int n = -1, i;

        if (!redis_ready(cw))
                return;
        cw->redis_trouble = 0;
        cm_store_set_deadline(cw->w.st,
                              t0 + (int64_t)cw->w.cfg.deadline_ms * 1000);
        if (cw->unpublished_cnt &&
            cm_store_mark_dirty(cw->w.st, (const char *const *)cw->unpublished,
                                cw->unpublished_cnt, errstr,
                                sizeof(errstr)) == 0) {
                for (j = 0; j < cw->unpublished_cnt; j++)
                        free(cw->unpublished[j]);
                cw->unpublished_cnt = 0;
        }
        if (!cw->unpublished_cnt)
                n = cm_store_pop_dirty(cw->w.st, sessions, BATCH_MAX,
                                       cm_now_ms() -
                                           cw->w.cfg.prebuilt_interval_ms,
                                       errstr, sizeof(errstr));
        cm_store_set_deadline(cw->w.st, 0);
        if (n == -1) {
                /* Redis is away: back off, so that the loop does not block
                 * on reconnects. */
                redis_trouble(cw, errstr);
                return;
        }
        for (i = 0; i < n; i++) {
                item_t *it = &cw->items[i];

                memset(it, 0, sizeof(*it));
                it->req.recent = -1;
                it->answer = cm_session_key_split(sessions[i], it->req.user_id,
                                                  it->req.conversation_id,
                                                  errstr, sizeof(errstr)) == 0;
        }
        load_all(cw, cw->items, (size_t)n, t0);
        for (i = 0; i < n; i++) {
                item_t *it = &cw->items[i];

                if (it->answer && !it->loaded) {
                        /* Room for all: the list was empty. */
                        cw->unpublished[cw->unpublished_cnt++] = sessions[i];
                        sessions[i] = NULL;
                } else if (it->answer) {
                        /* A session that is gone (deleted, or expired)
                         * gets a tombstone: log compaction forgets it. */
                        int gone = !it->s.exists;

                        produce(cw, NULL, cw->w.cfg.topic_prebuilt, sessions[i],
                                gone ? NULL : answer(cw, it, 0), NULL);
                        if (gone)
                                cm_session_release(&it->s);
                        cw->prebuilt++;
                        cm_metric_inc(cw->m.prebuilt);
                }
        }
        for (i = 0; i < n; i++)
                free(sessions[i]);
}

int main(int argc, char **argv)
{
        static ctxw_t cw;
        static const cm_worker_spec_t spec = {
            "chatmem-context",
            "Answers context requests with a compact context.",
            1,
            revoke,
            &cw,
        };
        rd_kafka_message_t *batch[BATCH_MAX];
        unsigned long long hits, builds;
        size_t n;

        if (cm_worker_init(&cw.w, argc, argv, &spec) ||
            cm_worker_start(&cw.w, cw.w.cfg.context_group,
                            cw.w.cfg.topic_requests) == -1)
                return cm_worker_finish(&cw.w);
        cw.reply_max = cm_kafka_value_max(cw.w.producer);
        cw.cache = cm_session_cache_new((size_t)cw.w.cfg.cache_sessions);
        cw.items = cm_calloc(BATCH_MAX, sizeof(*cw.items));
        cw.build_us = BUILD_US_FIRST;
        cw.answered = rd_kafka_topic_partition_list_new(8);
        cw.recall_cache = cm_recall_cache_new(
            (size_t)cw.w.cfg.recall_cache_sessions, RECALL_CACHE_MAX_BYTES);
        metrics_init(&cw);

        while (cm_worker_running(&cw.w)) {
                rd_kafka_poll(cw.w.producer, 0); /* delivery reports */
                store_delivered(&cw);
                if (cm_tracker_full(&cw.inflight)) {
                        /* Too many batches in flight: deliver first. */
                        rd_kafka_poll(cw.w.producer, 100);
                        continue;
                }
                if (cw.w.cfg.prebuilt &&
                    cm_mono_us() - cw.prebuilt_at >= PREBUILT_EVERY_US) {
                        cw.prebuilt_at = cm_mono_us();
                        publish_prebuilt(&cw);
                }
                n = cm_worker_poll_batch(&cw.w, batch, BATCH_MAX, 100);
                n = drop_answered(&cw, batch, n);
                if (n > 0)
                        answer_batch(&cw, batch, n, cm_mono_us());
        }
        /* The batch in hand is answered: deliver what is queued (bounded)
         * and store the offsets it stands for; the teardown commits them. */
        rd_kafka_flush(cw.w.producer, SHUTDOWN_FLUSH_MS);
        store_delivered(&cw);
        if (cw.inflight.cnt > 0)
                cm_warn("%zu batch(es) of replies not delivered at shutdown; "
                        "they are answered again after the restart",
                        cw.inflight.cnt);
        cm_recall_cache_stats(cw.recall_cache, &hits, &builds);
        cm_info("stopping: %llu replies (%llu degraded), %llu errors, %llu "
                "prebuilt, %llu given up; recall indexes: %llu reused, %llu "
                "built",
                cw.replies, cw.degraded, cw.errors, cw.prebuilt, cw.w.given_up,
                hits, builds);
        cm_tracker_fifo_release(&cw.inflight);
        rd_kafka_topic_partition_list_destroy(cw.answered);
        for (n = 0; n < cw.unpublished_cnt; n++)
                free(cw.unpublished[n]);
        cm_session_cache_destroy(cw.cache);
        cm_recall_cache_destroy(cw.recall_cache);
        free(cw.items);
        return cm_worker_finish(&cw.w);
}
