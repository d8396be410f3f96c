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
 * Each request is answered exactly once while this process runs: a context
 * or an error object. Offsets are stored without waiting for delivery in
 * the loop: every batch has a tracker (its next offset per partition and
 * a count of replies not yet delivered) in a FIFO of at most INFLIGHT_MAX
 * batches, and its replies carry a pointer to it. The delivery callback
 * counts the tracker down; a reply that failed for a reason that may pass
 * (timeouts, broker down) is produced again and still counts. Every loop
 * iteration stores the offsets of the oldest batches whose replies are all
 * delivered, strictly in FIFO order, so an offset is stored only after
 * the replies it stands for, and all earlier ones, were acknowledged
 * (at-least-once: after a crash, requests whose replies were not yet
 * acknowledged are answered again, with the same request_id). When the
 * FIFO is full the loop serves the producer until its head completes. On a
 * revoke and at shutdown the replies in flight are delivered (bounded) and
 * their offsets stored before the commit. A reply that can never be
 * delivered (too large, unknown topic) is logged and given up, so that one
 * bad reply_to cannot hold back the offsets of its partition for ever.
 *
 * Redis down: replies keep coming, marked degraded, built from the inline
 * history or from a bounded in-process cache of the sessions last read
 * (a direct-mapped table of context.cache_sessions slots: a session
 * loaded from Redis moves into its slot once its reply is built, without
 * a copy). Reconnects back off from 100 ms to 5 s, one step per batch.
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

#define BATCH_MAX         256 /* requests per batch, sessions per prebuilt pass */
#define INFLIGHT_MAX      64   /* batches whose replies are being delivered */
#define REVOKE_FLUSH_MS   5000 /* delivering the replies in flight on revoke */
#define SHUTDOWN_FLUSH_MS 5000

typedef struct cache_slot {
        char *key; /* "<user>:<conv>", NULL when empty */
        cm_session_t s;
} cache_slot_t;

/* A batch of requests whose replies are on their way. */
typedef struct tracker {
        rd_kafka_topic_partition_list_t *offsets; /* next offset per
                                                     partition */
        int undelivered; /* replies queued and not yet delivered, plus one
                            while the batch is being answered */
        int lost;        /* a reply could not be queued at shutdown: its
                            offsets are never stored */
} tracker_t;

/* One request of the batch in hand (or one session of a prebuilt pass). */
typedef struct item {
        cm_request_t req;
        int answer; /* 1: decoded, to be answered with a context */
        int sent;   /* 1: its load is in the Redis pipeline */
} item_t;

typedef struct ctxw {
        cm_config_t cfg;
        rd_kafka_t *consumer;
        rd_kafka_t *producer;
        cm_store_t *st;
        const cm_tokenizer_t *tk;
        int64_t redis_retry_at; /* mono µs before which we do not reconnect */
        int redis_backoff_ms;
        int redis_trouble; /* 1 once a load of the batch in hand failed */
        cache_slot_t *cache;
        size_t cache_cnt;
        item_t *items;                    /* BATCH_MAX */
        tracker_t inflight[INFLIGHT_MAX]; /* FIFO of in_cnt from in_head */
        size_t in_head, in_cnt;
        int64_t dr_warned_at; /* mono µs of the last delivery warning */
        unsigned long long replies, errors, degraded, prebuilt, given_up;
        int64_t prebuilt_at; /* mono µs of the last prebuilt pass */
} ctxw_t;

static uint64_t hash_key(const char *s)
{
        uint64_t h = 1469598103934665603ULL; /* FNV-1a */

        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        return h;
}

static cache_slot_t *cache_slot(ctxw_t *cw, const char *key)
{
        if (cw->cache_cnt == 0)
                return NULL;
        return &cw->cache[hash_key(key) % cw->cache_cnt];
}

/* Moves *s into the key's slot (s is left empty); what the slot held is
 * released. */
static void cache_put(ctxw_t *cw, const char *key, cm_session_t *s)
{
        cache_slot_t *slot = cache_slot(cw, key);

        if (!slot) {
                cm_session_release(s);
                return;
        }
        if (!slot->key || strcmp(slot->key, key)) {
                free(slot->key);
                slot->key = cm_strdup(key);
        }
        cm_session_release(&slot->s);
        slot->s = *s; /* now owned by the slot */
        memset(s, 0, sizeof(*s));
}

/* The cached session of key, borrowed until the next cache_put(), or NULL
 * when not cached. */
static const cm_session_t *cache_get(ctxw_t *cw, const char *key)
{
        cache_slot_t *slot = cache_slot(cw, key);

        if (!slot || !slot->key || strcmp(slot->key, key))
                return NULL;
        return &slot->s;
}

/* A load of the batch in hand failed: one backoff step per batch. */
static void redis_trouble(ctxw_t *cw, const char *errstr)
{
        if (cw->redis_trouble)
                return;
        cw->redis_trouble = 1;
        if (!cw->redis_backoff_ms)
                cm_warn("%s; replying degraded", errstr);
        else
                cm_debug("%s", errstr);
        cw->redis_backoff_ms =
            cw->redis_backoff_ms
                ? (cw->redis_backoff_ms * 2 > 5000 ? 5000
                                                   : cw->redis_backoff_ms * 2)
                : 100;
        cw->redis_retry_at =
            cm_mono_us() + (int64_t)cw->redis_backoff_ms * 1000;
}

/* A load succeeded. */
static void redis_fine(ctxw_t *cw)
{
        if (cw->redis_trouble || !cw->redis_backoff_ms)
                return;
        cm_info("redis '%s' is back", cm_store_url(cw->st));
        cw->redis_backoff_ms = 0;
}

static int recent_of(const ctxw_t *cw, const cm_request_t *req)
{
        return req->recent >= 0 ? req->recent : cw->cfg.recent_verbatim;
}

/* Inline history replaces the stored messages; the profile and summary
 * still come from the store when it answers. At least the newest stored
 * message is loaded, for full_history_tokens. */
static int load_cnt(const ctxw_t *cw, const cm_request_t *req)
{
        int recent = recent_of(cw, req);

        return req->has_history ? 0 : (recent > 0 ? recent : 1);
}

/* Sends the loads of the items to answer in one pipeline, connecting once
 * (with backoff) first. An item whose load is not sent is answered
 * degraded. */
static void send_loads(ctxw_t *cw, item_t *items, size_t n)
{
        char errstr[512];
        size_t i, todo = 0;

        for (i = 0; i < n; i++)
                todo += (size_t)items[i].answer;
        if (!todo ||
            (!cm_store_connected(cw->st) && cm_mono_us() < cw->redis_retry_at))
                return;
        if (cm_store_connect(cw->st, errstr, sizeof(errstr)) == -1) {
                redis_trouble(cw, errstr);
                return;
        }
        for (i = 0; i < n; i++) {
                if (!items[i].answer)
                        continue;
                if (cm_store_load_send(cw->st, items[i].req.user_id,
                                       items[i].req.conversation_id,
                                       load_cnt(cw, &items[i].req), errstr,
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

/* Builds the reply to a decoded request from session s (request_id ""
 * gives the prebuilt shape, without request_id). Returns a heap JSON
 * string. */
static char *build(ctxw_t *cw, const cm_request_t *req, const cm_session_t *s,
                   int degraded, int64_t t0)
{
        cm_context_out_t out;
        cm_context_in_t cin;
        cm_reply_t reply;
        const cm_message_t *msgs;
        size_t msg_cnt, take;
        char *json;
        int recent = recent_of(cw, req), full;

        memset(&out, 0, sizeof(out));
        if (req->has_history) {
                msgs = req->history;
                msg_cnt = req->history_cnt;
        } else {
                msgs = s->msgs;
                msg_cnt = s->msg_cnt;
        }
        take = msg_cnt < (size_t)recent ? msg_cnt : (size_t)recent;

        memset(&cin, 0, sizeof(cin));
        cin.profile = &s->profile;
        cin.summary = s->summary;
        cin.msgs = msgs + (msg_cnt - take);
        cin.msg_cnt = take;
        cin.max_tokens = req->max_tokens ? req->max_tokens : cw->cfg.max_tokens;
        cin.tk = cw->tk;
        cm_context_build(&cin, &out);

        if (req->has_history || (int64_t)s->msg_cnt >= s->total) {
                full =
                    cm_context_full_tokens(&s->profile, msgs, msg_cnt, cw->tk);
        } else {
                /* Older messages were folded or are not loaded: their line
                 * tokens were stored at ingest and summed in the session. */
                full = cm_context_full_tokens_stored(
                    &s->profile, s->tokens, stored_newest(s),
                    s->last_break_known ? &s->last_break : NULL, cw->tk);
        }

        memset(&reply, 0, sizeof(reply));
        reply.request_id = req->request_id[0] ? req->request_id : NULL;
        reply.user_id = req->user_id;
        reply.conversation_id = req->conversation_id;
        reply.context = out.text;
        reply.profile = &s->profile;
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
        reply.meta.build_us = cm_mono_us() - t0;
        json = cm_reply_encode(&reply);
        cw->degraded += (unsigned long long)degraded;
        cm_context_out_release(&out);
        return json;
}

/* Receives the item's load (if it was sent) and builds its reply: from
 * the loaded session, else degraded from the inline history or the cache.
 * Returns a heap JSON string. */
static char *answer(ctxw_t *cw, item_t *it)
{
        cm_session_t s, none;
        const cm_session_t *use = &none;
        char skey[2 * CM_ID_MAX + 2], errstr[512], *json;
        int64_t t0 = cm_mono_us();
        int loaded = 0;

        memset(&s, 0, sizeof(s));
        memset(&none, 0, sizeof(none));
        snprintf(skey, sizeof(skey), "%s:%s", it->req.user_id,
                 it->req.conversation_id);
        if (it->sent) {
                if (cm_store_load_recv(cw->st, it->req.user_id,
                                       it->req.conversation_id, &s, errstr,
                                       sizeof(errstr)) == 0) {
                        redis_fine(cw);
                        loaded = 1;
                        use = &s;
                } else {
                        redis_trouble(cw, errstr);
                }
        }
        if (!loaded && !it->req.has_history) {
                const cm_session_t *cached = cache_get(cw, skey);

                if (cached)
                        use = cached;
        }
        json = build(cw, &it->req, use, !loaded, t0);
        if (loaded && !it->req.has_history)
                cache_put(cw, skey, &s);
        cm_session_release(&s);
        return json;
}

/* The tracker at the tail of the FIFO, for the batch about to be
 * answered; the FIFO is not full. */
static tracker_t *tracker_push(ctxw_t *cw)
{
        tracker_t *tr =
            &cw->inflight[(cw->in_head + cw->in_cnt) % INFLIGHT_MAX];

        cw->in_cnt++;
        tr->offsets = rd_kafka_topic_partition_list_new(8);
        tr->undelivered = 1; /* until the whole batch is queued */
        tr->lost = 0;
        return tr;
}

/* Notes that m's offset is answered once tr's replies are delivered. */
static void tracker_add(tracker_t *tr, const rd_kafka_message_t *m)
{
        const char *topic = rd_kafka_topic_name(m->rkt);
        rd_kafka_topic_partition_t *p;

        p = rd_kafka_topic_partition_list_find(tr->offsets, topic,
                                               m->partition);
        if (!p)
                p = rd_kafka_topic_partition_list_add(tr->offsets, topic,
                                                      m->partition);
        if (m->offset + 1 > p->offset)
                p->offset = m->offset + 1;
}

/* Stores the offsets of the head batches whose replies are all delivered,
 * in FIFO order, and frees their trackers. */
static void store_delivered(ctxw_t *cw)
{
        while (cw->in_cnt > 0) {
                tracker_t *tr = &cw->inflight[cw->in_head];
                int i;

                if (tr->undelivered > 0 || tr->lost)
                        return;
                if (tr->offsets->cnt > 0) {
                        /* Per-partition errors are in each .err; a
                         * partition revoked meanwhile fails with __STATE:
                         * its next owner answers those requests again. */
                        rd_kafka_offsets_store(cw->consumer, tr->offsets);
                        for (i = 0; i < tr->offsets->cnt; i++) {
                                const rd_kafka_topic_partition_t *p =
                                    &tr->offsets->elems[i];

                                if (p->err)
                                        cm_debug("offset %lld of '%s' [%d] "
                                                 "not stored: %s",
                                                 (long long)p->offset, p->topic,
                                                 (int)p->partition,
                                                 rd_kafka_err2str(p->err));
                        }
                }
                rd_kafka_topic_partition_list_destroy(tr->offsets);
                tr->offsets = NULL;
                cw->in_head = (cw->in_head + 1) % INFLIGHT_MAX;
                cw->in_cnt--;
        }
}

/* Queues a reply (payload owned) that counts for tr (NULL: untracked). */
static void produce(ctxw_t *cw, tracker_t *tr, const char *topic,
                    const char *key, char *payload)
{
        if (tr)
                tr->undelivered++;
        if (cm_kafka_produce_opaque(cw->producer, topic, key, payload, tr) == 0)
                return;
        if (!tr)
                return;
        tr->undelivered--;
        if (cm_stop)
                tr->lost = 1; /* queue full at shutdown: answer it again
                                 after the restart */
        else
                cw->given_up++; /* it can never be queued (logged) */
}

/* The delivery callback of every reply, error reply, DLQ entry and
 * prebuilt context; m->_private is its tracker or NULL. */
static void reply_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        ctxw_t *cw = opaque;
        tracker_t *tr = m->_private;

        if (m->err) {
                int64_t now = cm_mono_us();

                if (cm_kafka_delivery_retriable(m->err)) {
                        /* One warning a second at most: in a Kafka outage
                         * every reply comes back. */
                        if (now - cw->dr_warned_at >= 1000000) {
                                cw->dr_warned_at = now;
                                cm_warn("message to '%s' not delivered (%s); "
                                        "producing it again",
                                        rd_kafka_topic_name(m->rkt),
                                        rd_kafka_err2str(m->err));
                        }
                        if (cm_kafka_produce_again(rk, m) == 0)
                                return; /* still counts for tr */
                } else {
                        cm_error("message to '%s' cannot be delivered: %s; "
                                 "giving it up",
                                 rd_kafka_topic_name(m->rkt),
                                 rd_kafka_err2str(m->err));
                }
                cw->given_up++;
        }
        if (tr)
                tr->undelivered--;
}

/* On revoke, hands over what was answered: delivers the replies in flight
 * (bounded) and stores their offsets, which the default handler then
 * commits. */
static void rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        ctxw_t *cw = opaque;

        if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && cw->in_cnt > 0 &&
            !cm_stop) {
                rd_kafka_flush(cw->producer, REVOKE_FLUSH_MS);
                store_delivered(cw);
        }
        cm_kafka_rebalance_default(rk, err, parts, opaque);
}

static void reply_error(ctxw_t *cw, tracker_t *tr, const rd_kafka_message_t *m,
                        const cm_request_t *req, const char *why)
{
        const char *topic =
            req->reply_to ? req->reply_to : cw->cfg.topic_replies;

        cw->errors++;
        if (!req->request_id[0]) {
                /* Nobody to answer: the operator sees it in the DLQ. */
                tr->undelivered++;
                if (cm_kafka_to_dlq_opaque(cw->producer, cw->cfg.topic_dlq, m,
                                           why, tr) == -1) {
                        tr->undelivered--;
                        if (cm_stop)
                                tr->lost = 1;
                        else
                                cw->given_up++;
                }
                return;
        }
        cm_debug("request '%s' is invalid: %s", req->request_id, why);
        produce(cw, tr, topic, req->request_id,
                cm_error_reply_encode(req->request_id, "invalid_request", why));
}

/* Answers a batch of consumed messages: decode all, pipeline the loads,
 * then receive, build and produce each reply in order. The batch's
 * offsets are stored by store_delivered() once its replies are
 * delivered. Destroys the messages. */
static void answer_batch(ctxw_t *cw, rd_kafka_message_t **batch, size_t n)
{
        tracker_t *tr = tracker_push(cw);
        char why[512];
        size_t i;

        cw->redis_trouble = 0;
        for (i = 0; i < n; i++) {
                item_t *it = &cw->items[i];

                memset(it, 0, sizeof(*it));
                if (batch[i]->err) {
                        if (batch[i]->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                cm_warn("consumer: %s",
                                        rd_kafka_message_errstr(batch[i]));
                        continue;
                }
                tracker_add(tr, batch[i]);
                if (cm_request_decode(batch[i]->payload, batch[i]->len,
                                      (size_t)cw->cfg.max_content_bytes,
                                      &it->req, why, sizeof(why)) == -1) {
                        reply_error(cw, tr, batch[i], &it->req, why);
                        continue;
                }
                it->answer = 1;
        }
        send_loads(cw, cw->items, n);
        for (i = 0; i < n; i++) {
                item_t *it = &cw->items[i];

                if (it->answer) {
                        produce(cw, tr,
                                it->req.reply_to ? it->req.reply_to
                                                 : cw->cfg.topic_replies,
                                it->req.request_id, answer(cw, it));
                        cw->replies++;
                }
                cm_request_release(&it->req);
                rd_kafka_message_destroy(batch[i]);
        }
        tr->undelivered--; /* the whole batch is queued */
}

/*
 * Publishes the fresh context of the sessions that changed. Ingest and the
 * summarizer mark a changed session in the store's dirty set (with the
 * time of its first change since its last publication); this pops those
 * whose first change is at least prebuilt_interval_ms old, builds each
 * with the default budget (their loads in one pipeline) and publishes it
 * to the prebuilt topic, keyed by session. So a session is published at
 * most once per interval and its last change always is, whichever context
 * worker pops it. These produces guard no offset: they are not tracked.
 */
static void publish_prebuilt(ctxw_t *cw)
{
        char *sessions[BATCH_MAX], errstr[512];
        int n, i;

        if (!cm_store_connected(cw->st) && cm_mono_us() < cw->redis_retry_at)
                return;
        n = cm_store_pop_dirty(cw->st, sessions, BATCH_MAX,
                               cm_now_ms() - cw->cfg.prebuilt_interval_ms,
                               errstr, sizeof(errstr));
        if (n == -1) {
                /* Redis is away: try again in a second, so that the loop
                 * does not block on reconnects. */
                cm_debug("prebuilt: %s", errstr);
                cw->redis_retry_at = cm_mono_us() + 1000000;
                return;
        }
        cw->redis_trouble = 0;
        for (i = 0; i < n; i++) {
                item_t *it = &cw->items[i];
                char *colon = strchr(sessions[i], ':');

                memset(it, 0, sizeof(*it));
                if (colon && (size_t)(colon - sessions[i]) <= CM_ID_MAX &&
                    strlen(colon + 1) <= CM_ID_MAX) {
                        memcpy(it->req.user_id, sessions[i],
                               (size_t)(colon - sessions[i]));
                        snprintf(it->req.conversation_id,
                                 sizeof(it->req.conversation_id), "%s",
                                 colon + 1);
                        it->req.recent = -1;
                        it->answer = 1;
                }
        }
        send_loads(cw, cw->items, (size_t)n);
        for (i = 0; i < n; i++) {
                item_t *it = &cw->items[i];

                if (it->answer) {
                        produce(cw, NULL, cw->cfg.topic_prebuilt, sessions[i],
                                answer(cw, it));
                        cw->prebuilt++;
                }
                free(sessions[i]);
        }
}

/* Polls up to BATCH_MAX messages, waiting at most 100 ms for the first.
 * Returns the count. */
static size_t poll_batch(ctxw_t *cw, rd_kafka_message_t **batch)
{
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cw->consumer, 100);
        size_t n = 0;

        if (!m)
                return 0;
        batch[n++] = m;
        while (n < BATCH_MAX && (m = rd_kafka_consumer_poll(cw->consumer, 0)))
                batch[n++] = m;
        return n;
}

int main(int argc, char **argv)
{
        ctxw_t cw;
        rd_kafka_message_t *batch[BATCH_MAX];
        char errstr[512];
        int ret = 1;
        size_t i, n;

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
        cw.items = cm_calloc(BATCH_MAX, sizeof(*cw.items));

        cw.producer = cm_kafka_rpc_producer_new(&cw.cfg, reply_dr, &cw, errstr,
                                                sizeof(errstr));
        if (!cw.producer) {
                cm_error("%s", errstr);
                goto out;
        }
        cw.consumer =
            cm_kafka_consumer_new(&cw.cfg, cw.cfg.context_group, rebalance, &cw,
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
                rd_kafka_poll(cw.producer, 0); /* delivery reports */
                store_delivered(&cw);
                if (cw.in_cnt == INFLIGHT_MAX) {
                        /* Too many batches in flight: deliver first. */
                        rd_kafka_poll(cw.producer, 100);
                        continue;
                }
                if (cw.cfg.prebuilt &&
                    cm_mono_us() - cw.prebuilt_at >= 100000) {
                        cw.prebuilt_at = cm_mono_us();
                        publish_prebuilt(&cw);
                }
                n = poll_batch(&cw, batch);
                if (n > 0)
                        answer_batch(&cw, batch, n);
        }
        /* The batch in hand is answered: deliver what is queued (bounded)
         * and store the offsets it stands for; closing commits them. */
        rd_kafka_flush(cw.producer, SHUTDOWN_FLUSH_MS);
        store_delivered(&cw);
        if (cw.in_cnt > 0)
                cm_warn("%zu batch(es) of replies not delivered at shutdown; "
                        "they are answered again after the restart",
                        cw.in_cnt);
        cm_info("stopping: %llu replies (%llu degraded), %llu errors, %llu "
                "prebuilt, %llu given up",
                cw.replies, cw.degraded, cw.errors, cw.prebuilt, cw.given_up);
        ret = 0;
out:
        cm_kafka_consumer_close(cw.consumer);
        if (cm_kafka_producer_close(cw.producer, 1000) > 0)
                ret = 1;
        for (i = 0; i < cw.in_cnt; i++)
                rd_kafka_topic_partition_list_destroy(
                    cw.inflight[(cw.in_head + i) % INFLIGHT_MAX].offsets);
        cm_store_destroy(cw.st);
        for (i = 0; cw.cache && i < cw.cache_cnt; i++) {
                free(cw.cache[i].key);
                cm_session_release(&cw.cache[i].s);
        }
        free(cw.cache);
        free(cw.items);
        cm_config_release(&cw.cfg);
        return ret;
}
