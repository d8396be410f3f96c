/*
 * chatmem-ingest: chat.events -> the user's session in Redis, exactly once.
 *
 * The loop: poll a batch of events; decode and validate each; send the bad
 * ones to chat.dlq with the reason; append the good ones with one Redis
 * pipeline (store.h explains why a redelivered or repeated event changes
 * nothing); once Redis acknowledged the batch and the DLQ entries are
 * delivered, store the batch's offsets, which auto-commit then commits.
 *
 * Redis down: the batch in hand is kept, every assigned partition is paused
 * (the consumer keeps its group membership), and the append is retried with
 * backoff until it succeeds; then the partitions resume. Nothing is
 * acknowledged that Redis has not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "config.h"
#include "context.h"
#include "kafka.h"
#include "log.h"
#include "profile.h"
#include "store.h"
#include "tokens.h"
#include "util.h"

typedef struct ingest {
        cm_config_t cfg;
        rd_kafka_t *consumer;
        rd_kafka_t *producer;
        cm_store_t *st;
        const cm_tokenizer_t *tk;
        int redis_down;

        /* the batch in hand */
        rd_kafka_message_t **msgs;
        size_t msg_cnt;
        cm_event_t *events;
        cm_append_t *items;
        int64_t *times;                  /* event time of each item */
        char (*keys)[2 * CM_ID_MAX + 2]; /* session key of each item */
        size_t item_cnt;
        /* messages that arrived while Redis was down: next batch */
        rd_kafka_message_t **carry;
        size_t carry_cnt;

        unsigned long long applied, duplicates, dead;
        /* counted but not yet added to the fleet counters in Redis */
        long long unsent[3];
        size_t dlq_pending;        /* DLQ entries produced, not yet delivered */
        unsigned long long logged; /* applied + duplicates + dead at the
                                      last stats line */
        int64_t stats_at;          /* mono µs of the last stats line */
} ingest_t;

#define STATS_INTERVAL_US 2000000
/* A compaction job pending longer than this is asked for again (its
 * message may have been lost with a crashed ingest). */
#define COMPACTION_STALE_MS 60000

/* Logs the counters every 2 s while they move, and at exit. */
static void log_stats(ingest_t *in, int force)
{
        unsigned long long sum = in->applied + in->duplicates + in->dead;
        int64_t now = cm_mono_us();

        if (!force &&
            (sum == in->logged || now - in->stats_at < STATS_INTERVAL_US))
                return;
        cm_info("stats: %llu applied, %llu duplicates skipped, %llu to dlq",
                in->applied, in->duplicates, in->dead);
        in->logged = sum;
        in->stats_at = now;
}

static void rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        ingest_t *in = opaque;

        cm_kafka_rebalance_default(rk, err, parts, opaque);
        /* New partitions stay paused until Redis is back. */
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && in->redis_down)
                rd_kafka_pause_partitions(rk, parts);
}

/* Delivery reports of the DLQ producer: an entry that could not be
 * delivered is produced again, so that the offset of a bad event is stored
 * only once its DLQ entry is in Kafka (see wait_dlq()). */
static void dlq_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        ingest_t *in = opaque;
        int dlq = !strcmp(rd_kafka_topic_name(m->rkt), in->cfg.topic_dlq);

        if (!m->err) {
                if (dlq && in->dlq_pending > 0)
                        in->dlq_pending--;
                return;
        }
        cm_warn("%s not delivered (%s); producing it again",
                dlq ? "dlq entry" : "compaction job", rd_kafka_err2str(m->err));
        if (rd_kafka_producev(
                rk, RD_KAFKA_V_RKT(m->rkt), RD_KAFKA_V_KEY(m->key, m->key_len),
                RD_KAFKA_V_VALUE(m->payload, m->len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) {
                cm_error("cannot produce it again");
                /* Do not wait for it forever. */
                if (dlq && in->dlq_pending > 0)
                        in->dlq_pending--;
        }
}

static void to_dlq(ingest_t *in, const rd_kafka_message_t *m,
                   const char *reason)
{
        if (cm_kafka_to_dlq(in->producer, in->cfg.topic_dlq, m, reason) == 0) {
                in->dead++;
                in->unsent[2]++;
                in->dlq_pending++;
        }
}

/* Checks that the message key is the session key "<user>:<conv>" (for
 * user.delete, also just "<user>"). Returns 0, or -1 with the reason. */
static int check_key(const rd_kafka_message_t *m, const cm_event_t *ev,
                     char *errstr, size_t errstr_size)
{
        size_t ulen = strlen(ev->user_id), clen = strlen(ev->conversation_id);
        const char *k = m->key;

        if (!m->key) {
                snprintf(errstr, errstr_size,
                         "message key missing: must be '%s:%s'", ev->user_id,
                         ev->conversation_id);
                return -1;
        }
        if (m->key_len == ulen + 1 + clen && !memcmp(k, ev->user_id, ulen) &&
            k[ulen] == ':' && !memcmp(k + ulen + 1, ev->conversation_id, clen))
                return 0;
        if (ev->type == CM_EVENT_USER_DELETE && m->key_len == ulen &&
            !memcmp(k, ev->user_id, ulen))
                return 0;
        snprintf(errstr, errstr_size,
                 "message key does not match the event: must be '%s:%s'",
                 ev->user_id, ev->conversation_id);
        return -1;
}

/* The time of an event, for ordering profile statements: its ts, else the
 * Kafka message timestamp, else now. */
static int64_t event_time(const rd_kafka_message_t *m, const cm_event_t *ev)
{
        rd_kafka_timestamp_type_t type;
        int64_t ts;

        if (ev->msg.ts > 0)
                return ev->msg.ts;
        ts = rd_kafka_message_timestamp(m, &type);
        return ts > 0 ? ts : cm_now_ms();
}

/* Decodes the batch into items, in partition order; bad events go to the
 * DLQ. */
static void prepare(ingest_t *in)
{
        size_t i;

        in->item_cnt = 0;
        for (i = 0; i < in->msg_cnt; i++) {
                const rd_kafka_message_t *m = in->msgs[i];
                cm_event_t *ev = &in->events[in->item_cnt];
                cm_append_t *item = &in->items[in->item_cnt];
                char why[512];

                if (m->err)
                        continue;
                if (cm_event_decode(m->payload, m->len,
                                    (size_t)in->cfg.max_content_bytes, ev, why,
                                    sizeof(why)) == -1) {
                        to_dlq(in, m, why);
                        continue;
                }
                if (check_key(m, ev, why, sizeof(why)) == -1) {
                        to_dlq(in, m, why);
                        cm_event_release(ev);
                        continue;
                }
                memset(item, 0, sizeof(*item));
                item->ev = ev;
                item->partition = m->partition;
                item->offset = m->offset;
                if (ev->type == CM_EVENT_MESSAGE) {
                        item->tokens = cm_context_line_tokens(&ev->msg, in->tk);
                        item->break_tokens =
                            cm_context_break_tokens(&ev->msg, in->tk);
                }
                in->times[in->item_cnt] = event_time(m, ev);
                snprintf(in->keys[in->item_cnt], sizeof(in->keys[0]), "%s:%s",
                         ev->user_id, ev->conversation_id);
                in->item_cnt++;
        }
}

/* Serves the consumer while Redis is down. A message that still arrives
 * (fetched before the pause took effect) is kept for the next batch. */
static void wait_serving(ingest_t *in, int ms)
{
        while (ms > 0 && !cm_stop) {
                rd_kafka_message_t *m =
                    rd_kafka_consumer_poll(in->consumer, 100);

                if (m) {
                        in->carry =
                            cm_realloc(in->carry, (in->carry_cnt + 1) *
                                                      sizeof(*in->carry));
                        in->carry[in->carry_cnt++] = m;
                }
                ms -= 100;
        }
}

/* Extracts profile facts from the user messages of items[0..cnt) and
 * stores them. Runs for redelivered messages too (their seq is known from
 * the append), so that a crash between the append and this step loses no
 * fact; the profile script keeps the newest statement either way. */
static int update_profiles(ingest_t *in, cm_append_t *items, int64_t *times,
                           size_t cnt, char *errstr, size_t errstr_size)
{
        cm_profile_t *facts = cm_calloc(cnt + 1, sizeof(*facts));
        cm_profile_update_t *u = cm_calloc(cnt + 1, sizeof(*u));
        char(*src)[CM_ID_MAX + 32] = cm_calloc(cnt + 1, sizeof(*src));
        size_t i, n = 0;
        int ret;

        for (i = 0; i < cnt; i++) {
                const cm_event_t *ev = items[i].ev;

                if (ev->msg.role != CM_ROLE_USER || items[i].seq <= 0)
                        continue;
                if (cm_profile_extract(ev->msg.content, ev->msg.content_len,
                                       &facts[n]) <= 0) {
                        cm_profile_release(&facts[n]);
                        continue;
                }
                snprintf(src[n], sizeof(src[n]), "%s:%lld", ev->conversation_id,
                         (long long)items[i].seq);
                u[n].user = ev->user_id;
                u[n].profile = &facts[n];
                u[n].extracted = 1;
                u[n].ts = times[i];
                u[n].src = src[n];
                n++;
        }
        ret = cm_store_profile_update_batch(in->st, u, n, NULL, errstr,
                                            errstr_size);
        for (i = 0; i < n; i++)
                cm_profile_release(&facts[i]);
        free(facts);
        free(u);
        free(src);
        return ret;
}

/* Applies items[0..cnt): a run of message events, or one other event.
 * Returns 0 when Redis acknowledged all of it, or -1 with the reason;
 * applying again is always safe. */
static int apply_run(ingest_t *in, cm_append_t *items, int64_t *times,
                     size_t cnt, char *errstr, size_t errstr_size)
{
        const cm_event_t *ev = items[0].ev;
        char src[CM_ID_MAX + 32];
        int rc;

        switch (ev->type) {
        case CM_EVENT_MESSAGE:
                if (cm_store_append_batch(in->st, items, cnt, errstr,
                                          errstr_size) == -1)
                        return -1;
                return update_profiles(in, items, times, cnt, errstr,
                                       errstr_size);
        case CM_EVENT_PROFILE_SET:
                snprintf(src, sizeof(src), "%s:set", ev->conversation_id);
                rc = cm_store_profile_update(in->st, ev->user_id, &ev->profile,
                                             0, times[0], src, errstr,
                                             errstr_size);
                items[0].result = CM_APPEND_APPLIED;
                return rc == -1 ? -1 : 0;
        case CM_EVENT_SESSION_DELETE:
                rc = cm_store_session_delete_event(
                    in->st, ev->user_id, ev->conversation_id,
                    items[0].partition, items[0].offset, errstr, errstr_size);
                items[0].result =
                    rc == 1 ? CM_APPEND_APPLIED : CM_APPEND_DUP_OFFSET;
                return rc == -1 ? -1 : 0;
        case CM_EVENT_USER_DELETE:
                items[0].result = CM_APPEND_APPLIED;
                return cm_store_user_delete(in->st, ev->user_id, errstr,
                                            errstr_size);
        }
        return 0;
}

/* Runs apply_run, retrying with backoff while Redis is down (partitions
 * paused). Returns 0 once applied, or -1 when asked to stop first. */
static int apply_retry(ingest_t *in, cm_append_t *items, int64_t *times,
                       size_t cnt)
{
        char errstr[512];
        int backoff = 100;

        while (apply_run(in, items, times, cnt, errstr, sizeof(errstr)) == -1) {
                if (!in->redis_down) {
                        in->redis_down = 1;
                        cm_kafka_pause_all(in->consumer, 1);
                        cm_warn("%s; partitions paused, retrying", errstr);
                } else {
                        cm_debug("%s; retrying in %d ms", errstr, backoff);
                }
                wait_serving(in, backoff);
                if (cm_stop)
                        return -1;
                backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
        }
        if (in->redis_down) {
                in->redis_down = 0;
                cm_kafka_pause_all(in->consumer, 0);
                cm_info("redis '%s' is back; partitions resumed",
                        cm_store_url(in->st));
        }
        return 0;
}

/* Asks the summarizer to fold a session: {"user_id","conversation_id",
 * "requested_at"} keyed by session on the compaction topic. */
static void ask_compaction(ingest_t *in, const cm_event_t *ev)
{
        char key[2 * CM_ID_MAX + 2], *job;

        snprintf(key, sizeof(key), "%s:%s", ev->user_id, ev->conversation_id);
        job = cm_compaction_job_encode(ev->user_id, ev->conversation_id,
                                       cm_now_ms());
        /* When it cannot be queued, the job stays marked pending in
         * Redis and is asked for again once it goes stale. */
        cm_kafka_produce(in->producer, in->cfg.topic_compaction, key, job);
}

/* Applies the prepared items in partition order: runs of messages with one
 * pipeline each, other events one by one. Returns 0 once Redis
 * acknowledged everything, or -1 when asked to stop first. */
static int apply(ingest_t *in)
{
        size_t i = 0, j;
        const char **dirty = NULL;
        size_t dirty_cnt = 0;
        char errstr[512];

        while (i < in->item_cnt) {
                j = i + 1;
                if (in->items[i].ev->type == CM_EVENT_MESSAGE)
                        while (j < in->item_cnt &&
                               in->items[j].ev->type == CM_EVENT_MESSAGE)
                                j++;
                if (apply_retry(in, in->items + i, in->times + i, j - i) == -1)
                        return -1;
                i = j;
        }
        if (in->cfg.prebuilt)
                dirty = cm_calloc(in->item_cnt + 1, sizeof(*dirty));
        for (i = 0; i < in->item_cnt; i++) {
                cm_append_t *item = &in->items[i];

                if (item->result == CM_APPEND_APPLIED) {
                        in->applied++;
                        in->unsent[0]++;
                        if (dirty)
                                dirty[dirty_cnt++] = in->keys[i];
                } else {
                        in->duplicates++;
                        in->unsent[1]++;
                }
                if (item->compact)
                        ask_compaction(in, item->ev);
        }
        /* Prebuilt contexts are best effort: a session missed here is
         * published with its next change. */
        if (dirty_cnt && cm_store_mark_dirty(in->st, dirty, dirty_cnt, errstr,
                                             sizeof(errstr)) == -1)
                cm_warn("cannot mark sessions for prebuilt contexts: %s",
                        errstr);
        /* A profile.set changes the context of every conversation of the
         * user, not only the one its key names. */
        for (i = 0; dirty && i < in->item_cnt; i++) {
                if (in->items[i].ev->type == CM_EVENT_PROFILE_SET &&
                    cm_store_mark_user_dirty(in->st, in->items[i].ev->user_id,
                                             errstr, sizeof(errstr)) == -1)
                        cm_warn("cannot mark the conversations of '%s' for "
                                "prebuilt contexts: %s",
                                in->items[i].ev->user_id, errstr);
        }
        free(dirty);
        return 0;
}

/* Waits until every DLQ entry is delivered (compaction jobs are not
 * waited for: a lost one is asked for again once stale). Returns -1 if
 * asked to stop first. */
static int wait_dlq(ingest_t *in)
{
        while (in->dlq_pending > 0) {
                if (cm_stop)
                        return -1;
                rd_kafka_flush(in->producer, 10);
        }
        return 0;
}

/* Adds the batch's counts to the fleet counters in Redis (P:stats). They
 * are for operators and the benchmark: when Redis refuses, they are kept
 * and added with the next batch. */
static void send_stats(ingest_t *in)
{
        static const char *const names[] = {"ingest_applied",
                                            "ingest_duplicates", "ingest_dead"};
        char errstr[512];

        if (!in->unsent[0] && !in->unsent[1] && !in->unsent[2])
                return;
        if (cm_store_stats_add(in->st, names, in->unsent, 3, errstr,
                               sizeof(errstr)) == 0)
                memset(in->unsent, 0, sizeof(in->unsent));
        else
                cm_debug("stats not added: %s", errstr);
}

static void store_offsets(ingest_t *in)
{
        size_t i;

        for (i = 0; i < in->msg_cnt; i++) {
                const rd_kafka_message_t *m = in->msgs[i];
                rd_kafka_resp_err_t err;

                if (m->err || !m->rkt)
                        continue;
                err = rd_kafka_offset_store(m->rkt, m->partition, m->offset);
                /* A partition revoked meanwhile is stored by its new owner,
                 * which re-applies it harmlessly. */
                if (err && err != RD_KAFKA_RESP_ERR__STATE)
                        cm_debug("offset store [%d] @%lld: %s",
                                 (int)m->partition, (long long)m->offset,
                                 rd_kafka_err2str(err));
        }
}

static void release_batch(ingest_t *in)
{
        size_t i;

        for (i = 0; i < in->item_cnt; i++)
                cm_event_release(&in->events[i]);
        in->item_cnt = 0;
        for (i = 0; i < in->msg_cnt; i++)
                rd_kafka_message_destroy(in->msgs[i]);
        in->msg_cnt = 0;
}

/* Fills the batch: messages carried over first, then up to batch_size
 * from the consumer, waiting at most 100 ms for the first. */
static void poll_batch(ingest_t *in)
{
        size_t max = (size_t)in->cfg.ingest_batch_size;
        rd_kafka_message_t *m;

        while (in->carry_cnt > 0 && in->msg_cnt < max) {
                in->msgs[in->msg_cnt++] = in->carry[0];
                memmove(in->carry, in->carry + 1,
                        --in->carry_cnt * sizeof(*in->carry));
        }
        if (in->msg_cnt == 0) {
                m = rd_kafka_consumer_poll(in->consumer, 100);
                if (!m)
                        return;
                in->msgs[in->msg_cnt++] = m;
        }
        while (in->msg_cnt < max) {
                m = rd_kafka_consumer_poll(in->consumer, 0);
                if (!m)
                        break;
                in->msgs[in->msg_cnt++] = m;
        }
}

static void log_consumer_error(const rd_kafka_message_t *m)
{
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                return;
        cm_warn("consumer: %s", rd_kafka_message_errstr(m));
        if (m->err == RD_KAFKA_RESP_ERR__FATAL)
                cm_stop = 1;
}

int main(int argc, char **argv)
{
        ingest_t in;
        char errstr[512];
        int ret = 1;

        memset(&in, 0, sizeof(in));
        cm_config_init(&in.cfg);
        ret = cm_daemon_init(
            argc, argv, "chatmem-ingest",
            "Consumes chat events and appends them to the sessions "
            "in Redis.",
            &in.cfg);
        if (ret != -1)
                goto out;
        ret = 1;

        if (cm_tokenizer_get(in.cfg.tokenizer, &in.tk, errstr,
                             sizeof(errstr)) == -1) {
                cm_error("%s", errstr);
                goto out;
        }
        in.st = cm_store_new(&in.cfg, errstr, sizeof(errstr));
        if (!in.st) {
                cm_error("%s", errstr);
                goto out;
        }
        if (cm_store_connect(in.st, errstr, sizeof(errstr)) == -1)
                cm_warn("%s; will retry when events arrive", errstr);

        in.producer =
            cm_kafka_producer_new(&in.cfg, dlq_dr, &in, errstr, sizeof(errstr));
        if (!in.producer) {
                cm_error("%s", errstr);
                goto out;
        }
        in.consumer =
            cm_kafka_consumer_new(&in.cfg, in.cfg.ingest_group, rebalance, &in,
                                  errstr, sizeof(errstr));
        if (!in.consumer) {
                cm_error("%s", errstr);
                goto out;
        }
        if (cm_kafka_subscribe(in.consumer, in.cfg.topic_events, errstr,
                               sizeof(errstr)) == -1) {
                cm_error("%s", errstr);
                goto out;
        }
        in.msgs = cm_calloc((size_t)in.cfg.ingest_batch_size, sizeof(*in.msgs));
        in.events =
            cm_calloc((size_t)in.cfg.ingest_batch_size, sizeof(*in.events));
        in.items =
            cm_calloc((size_t)in.cfg.ingest_batch_size, sizeof(*in.items));
        in.times =
            cm_calloc((size_t)in.cfg.ingest_batch_size, sizeof(*in.times));
        in.keys = cm_calloc((size_t)in.cfg.ingest_batch_size, sizeof(*in.keys));
        cm_store_set_compaction(in.st,
                                in.cfg.recent_verbatim + in.cfg.summarize_after,
                                COMPACTION_STALE_MS);
        cm_info("consuming '%s' in group '%s' into redis '%s'",
                in.cfg.topic_events, in.cfg.ingest_group, cm_store_url(in.st));

        while (!cm_stop) {
                size_t i;

                poll_batch(&in);
                if (in.msg_cnt == 0) {
                        rd_kafka_poll(in.producer, 0);
                        log_stats(&in, 0);
                        continue;
                }
                for (i = 0; i < in.msg_cnt; i++)
                        if (in.msgs[i]->err)
                                log_consumer_error(in.msgs[i]);
                prepare(&in);
                /* Stopping before Redis or the DLQ acknowledged the batch
                 * leaves its offsets unstored: it is delivered again. */
                if (apply(&in) == 0 && wait_dlq(&in) == 0) {
                        store_offsets(&in);
                        send_stats(&in);
                }
                release_batch(&in);
                rd_kafka_poll(in.producer, 0);
                log_stats(&in, 0);
        }
        log_stats(&in, 1);
        cm_info("stopping");
        ret = 0;
out:
        release_batch(&in);
        for (size_t i = 0; i < in.carry_cnt; i++)
                rd_kafka_message_destroy(in.carry[i]);
        free(in.carry);
        cm_kafka_consumer_close(in.consumer);
        if (cm_kafka_producer_close(in.producer, 5000) > 0)
                ret = 1;
        cm_store_destroy(in.st);
        free(in.msgs);
        free(in.events);
        free(in.items);
        free(in.times);
        free(in.keys);
        cm_config_release(&in.cfg);
        return ret;
}
