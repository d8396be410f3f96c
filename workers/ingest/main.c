/*
 * chatmem-ingest: chat.events -> the user's session in Redis, exactly once.
 *
 * The loop: poll a batch of events; decode and validate each; send the bad
 * ones to chat.dlq with the reason; append the good ones with one Redis
 * pipeline (store.h explains why a redelivered or repeated event changes
 * nothing); once Redis acknowledged the batch and the DLQ entries are
 * delivered, store the batch's offsets, which auto-commit then commits.
 *
 * Where each partition starts (store.h, "The applied-offset record").
 * After each batch, ingest records in Redis the offset it applied up to
 * per partition. Every partition is assigned held (worker.h) and released
 * at the lower of that record and the committed offset, so that writes
 * Redis acknowledged and then lost in a restart are applied again; a
 * partition with no record starts from its beginning (Redis lost
 * everything, or this is the first start). A record past the partition's
 * end means the topic was recreated (or Kafka lost data): the partition
 * stays held, said loudly, until the operator chooses replay
 * (ingest.topic_reset = "replay").
 *
 * Redis down, or any failed Redis write: the batch in hand is dropped
 * unacknowledged and every partition held again; once Redis answers, each
 * is released where the record says, as after an assignment. So a Redis
 * that restarted having lost writes gets them again, in partition order,
 * before anything newer. Nothing is acknowledged that Redis has not. A DLQ
 * entry that can never be delivered (a permanent error such as topic
 * authorization) is given up and counted (ingest_dlq_lost): the partition
 * goes on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "context.h"
#include "kafka.h"
#include "log.h"
#include "profile.h"
#include "store.h"
#include "util.h"
#include "worker.h"

/* The fleet counters ingest adds to in Redis (P:stats), in this order. */
enum { STAT_APPLIED, STAT_DUPLICATES, STAT_DEAD, STAT_DLQ_LOST, STAT_CNT };
static const char *const stat_names[STAT_CNT] = {
    "ingest_applied", "ingest_duplicates", "ingest_dead", "ingest_dlq_lost"};

typedef struct ingest {
        cm_worker_t w;

        /* the batch in hand */
        rd_kafka_message_t **msgs;
        size_t msg_cnt;
        cm_event_t *events;
        cm_append_t *items;
        int64_t *times;                   /* event time of each item */
        char (*keys)[CM_SESSION_KEY_MAX]; /* session key of each item */
        size_t item_cnt;
        cm_delivery_t dlq; /* the batch's DLQ entries */
        /* the counters as metrics (STAT_DEAD: by reason, in to_dlq) */
        cm_metric_t *m_stat[STAT_CNT];
        cm_metric_t *m_invalid, *m_bad_key, *m_batch_seconds;
        cm_metric_t *m_rewinds, *m_held;

        /* per partition number: the record as last read or written */
        cm_applied_t *applied;
        size_t applied_cap;
        int replay_reset;           /* ingest.topic_reset is "replay" */
        cm_backoff_t kafka_backoff; /* of the start offsets' Kafka queries */
        /* partitions found recreated: held, never released by this
         * process (ingest.topic_reset = "stop") */
        rd_kafka_topic_partition_list_t *stuck;
        int64_t reset_said_us; /* mono µs the stuck ones were logged */
        /* cm_store_connects() when the partitions were last released: a
         * batch is applied only on that connection */
        unsigned long connects;

        unsigned long long count[STAT_CNT];
        long long unsent[STAT_CNT]; /* not yet added to P:stats */
        unsigned long long logged;  /* events counted at the last stats
                                       line */
        int64_t stats_at;           /* mono µs of the last stats line */
} ingest_t;

#define STATS_INTERVAL_US 2000000
/* A compaction job pending longer than this is asked for again (its
 * message may have been lost with a crashed ingest). */
#define COMPACTION_STALE_MS 60000
/* The committed offsets and watermarks at a release. */
#define KAFKA_QUERY_MS 5000

static void metrics_init(ingest_t *in)
{
        static const char *const invalid[] = {"reason", "invalid_event", NULL};
        static const char *const bad_key[] = {"reason", "bad_key", NULL};
        static const char *const dlq_help = "Events sent to the DLQ.";
        cm_metrics_t *mx = in->w.mx;

        in->m_stat[STAT_APPLIED] = cm_metrics_counter(
            mx, "events_applied_total", "Events applied to Redis.", NULL);
        in->m_stat[STAT_DUPLICATES] =
            cm_metrics_counter(mx, "duplicates_skipped_total",
                               "Events skipped as already applied.", NULL);
        in->m_stat[STAT_DLQ_LOST] = cm_metrics_counter(
            mx, "dlq_lost_total", "DLQ entries that could not be delivered.",
            NULL);
        in->m_invalid =
            cm_metrics_counter(mx, "dlq_events_total", dlq_help, invalid);
        in->m_bad_key =
            cm_metrics_counter(mx, "dlq_events_total", dlq_help, bad_key);
        in->m_rewinds = cm_metrics_counter(
            mx, "offset_rewinds_total",
            "Partitions started below their committed offset, because "
            "Redis had lost writes.",
            NULL);
        in->m_held = cm_metrics_gauge(
            mx, "partitions_held",
            "Partitions not consumed because the topic was recreated.", NULL);
        in->m_batch_seconds = cm_metrics_histogram(
            mx, "batch_seconds",
            "Time to apply one batch, until Redis acknowledged it.",
            cm_metrics_latency_buckets, cm_metrics_latency_bucket_cnt, NULL);
}

static void count(ingest_t *in, int stat, long long n)
{
        in->count[stat] += (unsigned long long)n;
        in->unsent[stat] += n;
        cm_metric_add(in->m_stat[stat], (double)n);
}

/* Logs the counters every 2 s while they move, and at exit. */
static void log_stats(ingest_t *in, int force)
{
        unsigned long long sum = in->count[STAT_APPLIED] +
                                 in->count[STAT_DUPLICATES] +
                                 in->count[STAT_DEAD];
        int64_t now = cm_mono_us();

        if (!force &&
            (sum == in->logged || now - in->stats_at < STATS_INTERVAL_US))
                return;
        cm_info("stats: %llu applied, %llu duplicates skipped, %llu to dlq "
                "(%llu never delivered)",
                in->count[STAT_APPLIED], in->count[STAT_DUPLICATES],
                in->count[STAT_DEAD], in->count[STAT_DLQ_LOST]);
        in->logged = sum;
        in->stats_at = now;
}

/* Sends m to the DLQ with reason, counted under kind (a metric label). */
static void to_dlq(ingest_t *in, const rd_kafka_message_t *m, cm_metric_t *kind,
                   const char *reason)
{
        count(in, STAT_DEAD, 1);
        cm_metric_inc(kind);
        /* Not even queued (and not because of a stop, which leaves the
         * batch unacknowledged): as lost as a refused delivery. */
        if (cm_worker_to_dlq(&in->w, m, reason, &in->dlq) == -1 &&
            cm_worker_running(&in->w))
                count(in, STAT_DLQ_LOST, 1);
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

/* The record of partition p, as last read or written. */
static cm_applied_t *applied_of(ingest_t *in, int32_t p)
{
        if ((size_t)p >= in->applied_cap) {
                size_t cap = (size_t)p + 16, i;

                in->applied =
                    cm_realloc(in->applied, cap * sizeof(*in->applied));
                for (i = in->applied_cap; i < cap; i++) {
                        in->applied[i].partition = (int32_t)i;
                        in->applied[i].next = -1;
                        in->applied[i].base = 0;
                        in->applied[i].reset = -1;
                }
                in->applied_cap = cap;
        }
        return &in->applied[p];
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

                if (cm_event_decode(m->payload, m->len,
                                    (size_t)in->w.cfg.max_content_bytes, ev,
                                    why, sizeof(why)) == -1) {
                        to_dlq(in, m, in->m_invalid, why);
                        continue;
                }
                if (check_key(m, ev, why, sizeof(why)) == -1) {
                        to_dlq(in, m, in->m_bad_key, why);
                        cm_event_release(ev);
                        continue;
                }
                memset(item, 0, sizeof(*item));
                item->ev = ev;
                item->partition = m->partition;
                item->offset = m->offset + applied_of(in, m->partition)->base;
                if (ev->type == CM_EVENT_MESSAGE) {
                        item->tokens =
                            cm_context_line_tokens(&ev->msg, in->w.tk);
                        item->break_tokens =
                            cm_context_break_tokens(&ev->msg, in->w.tk);
                }
                in->times[in->item_cnt] = event_time(m, ev);
                cm_session_key(in->keys[in->item_cnt], ev->user_id,
                               ev->conversation_id);
                in->item_cnt++;
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
        ret = cm_store_profile_update_batch(in->w.st, u, n, NULL, errstr,
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
                if (cm_store_append_batch(in->w.st, items, cnt, errstr,
                                          errstr_size) == -1)
                        return -1;
                return update_profiles(in, items, times, cnt, errstr,
                                       errstr_size);
        case CM_EVENT_PROFILE_SET:
                snprintf(src, sizeof(src), "%s:set", ev->conversation_id);
                rc = cm_store_profile_update(in->w.st, ev->user_id,
                                             &ev->profile, 0, times[0], src,
                                             errstr, errstr_size);
                items[0].result = CM_APPEND_APPLIED;
                return rc == -1 ? -1 : 0;
        case CM_EVENT_SESSION_DELETE:
                rc = cm_store_session_delete_event(
                    in->w.st, ev->user_id, ev->conversation_id,
                    items[0].partition, items[0].offset, errstr, errstr_size);
                items[0].result =
                    rc == 1 ? CM_APPEND_APPLIED : CM_APPEND_DUP_OFFSET;
                return rc == -1 ? -1 : 0;
        case CM_EVENT_USER_DELETE:
                items[0].result = CM_APPEND_APPLIED;
                return cm_store_user_delete(in->w.st, ev->user_id,
                                            in->w.cfg.prebuilt, errstr,
                                            errstr_size);
        }
        return 0;
}

/* Applies the prepared items in partition order: runs of messages with one
 * pipeline each, other events one by one. Returns 0 once Redis
 * acknowledged everything, or -1 with the reason in errstr: then a prefix
 * may have been applied, and the batch must come again from where the
 * record says (hold_all). */
static int apply(ingest_t *in, char *errstr, size_t errstr_size)
{
        size_t i = 0, j;
        const char **dirty = NULL;
        size_t dirty_cnt = 0;

        while (i < in->item_cnt) {
                j = i + 1;
                if (in->items[i].ev->type == CM_EVENT_MESSAGE)
                        while (j < in->item_cnt &&
                               in->items[j].ev->type == CM_EVENT_MESSAGE)
                                j++;
                if (apply_run(in, in->items + i, in->times + i, j - i, errstr,
                              errstr_size) == -1)
                        return -1;
                i = j;
        }
        if (in->w.cfg.prebuilt)
                dirty = cm_calloc(in->item_cnt + 1, sizeof(*dirty));
        for (i = 0; i < in->item_cnt; i++) {
                cm_append_t *item = &in->items[i];

                if (item->result == CM_APPEND_APPLIED) {
                        count(in, STAT_APPLIED, 1);
                        if (dirty)
                                dirty[dirty_cnt++] = in->keys[i];
                } else {
                        count(in, STAT_DUPLICATES, 1);
                }
                if (item->compact)
                        cm_worker_ask_compaction(&in->w, item->ev->user_id,
                                                 item->ev->conversation_id);
        }
        /* Prebuilt contexts are best effort: a session missed here is
         * published with its next change. */
        if (dirty_cnt && cm_store_mark_dirty(in->w.st, dirty, dirty_cnt, errstr,
                                             errstr_size) == -1)
                cm_warn("cannot mark sessions for prebuilt contexts: %s",
                        errstr);
        /* A profile.set changes the context of every conversation of the
         * user, not only the one its key names. */
        for (i = 0; dirty && i < in->item_cnt; i++) {
                if (in->items[i].ev->type == CM_EVENT_PROFILE_SET &&
                    cm_store_mark_user_dirty(in->w.st, in->items[i].ev->user_id,
                                             errstr, errstr_size) == -1)
                        cm_warn("cannot mark the conversations of '%s' for "
                                "prebuilt contexts: %s",
                                in->items[i].ev->user_id, errstr);
        }
        free(dirty);
        return 0;
}

/* Waits until the fate of every DLQ entry of the batch is final. An entry
 * given up (a permanent error, such as topic authorization) is counted and
 * logged, and the partition goes on. Returns -1 if asked to stop first:
 * then the batch's offsets are not stored. */
static int wait_dlq(ingest_t *in)
{
        if (cm_worker_wait_delivered(&in->w, &in->dlq) == -1)
                return -1;
        if (in->dlq.failed > 0) {
                cm_error("%ld dlq entries of this batch cannot be delivered to "
                         "'%s': given up",
                         in->dlq.failed, in->w.cfg.topic_dlq);
                count(in, STAT_DLQ_LOST, in->dlq.failed);
                in->dlq.failed = 0;
        }
        return 0;
}

/* Adds the batch's counts to the fleet counters in Redis (P:stats). They
 * are for operators and tests: when Redis refuses, they are kept and added
 * with the next batch. */
static void send_stats(ingest_t *in)
{
        char errstr[512];
        size_t i;

        for (i = 0; i < STAT_CNT && !in->unsent[i]; i++)
                ;
        if (i == STAT_CNT)
                return;
        if (cm_store_stats_add(in->w.st, stat_names, in->unsent, STAT_CNT,
                               errstr, sizeof(errstr)) == 0)
                memset(in->unsent, 0, sizeof(in->unsent));
        else
                cm_debug("stats not added: %s", errstr);
}

/* Records in Redis, per partition of the batch, the offset applied up to.
 * A record that is not written only makes a later replay longer: it is
 * logged, and the batch goes on to store its offsets. */
static void record_applied(ingest_t *in)
{
        cm_applied_t *rec = cm_calloc(in->msg_cnt + 1, sizeof(*rec));
        size_t i, n = 0, j;
        char errstr[512];

        for (i = 0; i < in->msg_cnt; i++) {
                const rd_kafka_message_t *m = in->msgs[i];
                cm_applied_t *a = applied_of(in, m->partition);

                a->next = m->offset + 1 + a->base;
                for (j = 0; j < n && rec[j].partition != m->partition; j++)
                        ;
                if (j == n)
                        n++;
                rec[j] = *a;
        }
        if (cm_store_applied_set(in->w.st, in->w.cfg.topic_events, rec, n,
                                 errstr, sizeof(errstr)) == -1)
                cm_warn("cannot record the offsets applied: %s", errstr);
        free(rec);
}

static void store_offsets(ingest_t *in)
{
        size_t i;

        for (i = 0; i < in->msg_cnt; i++)
                cm_kafka_offset_store(in->msgs[i]);
}

/* Where partition a->partition starts, given its committed offset (< 0:
 * none), its low and high watermarks (lo, hi) and its record *a (updated
 * when the topic was recreated): the lower of the record and the
 * committed offset, none counting as the beginning. Returns the offset (a
 * logical one for the beginning), or RD_KAFKA_OFFSET_INVALID when it
 * stays held. */
static int64_t start_offset(ingest_t *in, cm_applied_t *a, int64_t committed,
                            int64_t lo, int64_t hi)
{
        int p = (int)a->partition;
        int64_t done;

        if (a->next < 0) {
                if (committed >= 0)
                        cm_warn("partition %d: no applied-offset record in "
                                "redis, though the group committed %lld: "
                                "redis lost its data (or this is its first "
                                "record); applying the partition from its "
                                "beginning, the sessions' watermarks skip "
                                "what redis still has",
                                p, (long long)committed);
                return RD_KAFKA_OFFSET_BEGINNING;
        }
        done = a->next - a->base;
        if (a->reset < 0 && done > hi)
                a->reset = hi;
        if (a->reset >= 0) {
                if (!in->replay_reset)
                        return RD_KAFKA_OFFSET_INVALID;
                /* Past every offset used so far: the new topic's events
                 * are new to every session. */
                cm_warn("partition %d: applying the recreated topic from "
                        "its beginning (ingest.topic_reset = replay)",
                        p);
                a->base = a->next;
                a->next = a->base + lo;
                a->reset = -1;
                return RD_KAFKA_OFFSET_BEGINNING;
        }
        /* No committed offset: the group starts from the beginning
         * (auto.offset.reset), the lower of the two. */
        if (committed < 0)
                return RD_KAFKA_OFFSET_BEGINNING;
        if (committed <= done)
                return committed;
        cm_warn("partition %d: redis records events applied up to offset "
                "%lld, below the committed %lld: applying the %lld events "
                "redis lost again",
                p, (long long)done, (long long)committed,
                (long long)(committed - done));
        cm_metric_inc(in->m_rewinds);
        if (done >= lo)
                return done;
        cm_error("partition %d: kafka no longer has the events from offset "
                 "%lld to %lld that redis lost: they cannot be applied again",
                 p, (long long)done, (long long)lo - 1);
        return RD_KAFKA_OFFSET_BEGINNING;
}

/* Logs, at most every 30 s, the partitions held because the topic was
 * recreated (those of in->stuck still held), and sets the gauge. */
static void say_stuck(ingest_t *in)
{
        const rd_kafka_topic_partition_list_t *held = in->w.held;
        int64_t now = cm_mono_us();
        int i, n = 0, say;

        say = !in->reset_said_us || now - in->reset_said_us >= 30000000;
        for (i = 0; held && i < held->cnt; i++) {
                const cm_applied_t *a =
                    applied_of(in, held->elems[i].partition);

                if (!rd_kafka_topic_partition_list_find(
                        in->stuck, held->elems[i].topic, a->partition))
                        continue;
                n++;
                if (!say)
                        continue;
                cm_error("partition %d of '%s' ended at %lld when redis "
                         "recorded events applied up to %lld: the topic was "
                         "recreated (or kafka lost data). The partition is "
                         "not consumed: its new events would be taken for "
                         "applied ones. Set ingest.topic_reset = \"replay\" "
                         "to apply them as new, and restart",
                         (int)a->partition, in->w.cfg.topic_events,
                         (long long)a->reset, (long long)(a->next - a->base));
        }
        if (say && n)
                in->reset_said_us = now;
        cm_metric_set(in->m_held, n);
}

/* Decides where each held partition starts (start_offset) and releases
 * it there. Needs Redis (the record) and Kafka (committed offsets and
 * watermarks); while Redis is down it waits with the worker's outage
 * pause, while Kafka does not answer it backs off and tries again from
 * the loop. Partitions of a recreated topic join in->stuck: held, and
 * never looked at again by this process. */
static void release_held(ingest_t *in)
{
        const rd_kafka_topic_partition_list_t *held = in->w.held;
        rd_kafka_topic_partition_list_t *parts, *starts = NULL;
        cm_applied_t *rec = NULL;
        rd_kafka_resp_err_t err;
        char errstr[512];
        int i, n, stay = 0;

        if (!held || !held->cnt)
                return;
        parts = rd_kafka_topic_partition_list_new(held->cnt);
        for (i = 0; i < held->cnt; i++)
                if (!rd_kafka_topic_partition_list_find(
                        in->stuck, held->elems[i].topic,
                        held->elems[i].partition))
                        rd_kafka_topic_partition_list_add(
                            parts, held->elems[i].topic,
                            held->elems[i].partition);
        n = parts->cnt;
        if (!n || !cm_backoff_ready(&in->kafka_backoff, cm_mono_us())) {
                rd_kafka_topic_partition_list_destroy(parts);
                say_stuck(in);
                return;
        }
        rec = cm_calloc((size_t)n, sizeof(*rec));
        starts = rd_kafka_topic_partition_list_new(n);
        for (i = 0; i < n; i++)
                rec[i].partition = parts->elems[i].partition;
        if (cm_store_applied_get(in->w.st, in->w.cfg.topic_events, rec,
                                 (size_t)n, errstr, sizeof(errstr)) == -1) {
                cm_worker_redis_wait(&in->w, errstr);
                goto out;
        }
        err = rd_kafka_committed(in->w.consumer, parts, KAFKA_QUERY_MS);
        for (i = 0; !err && i < n; i++) {
                rd_kafka_topic_partition_t *t = &parts->elems[i];
                int64_t lo, hi;

                err = t->err ? t->err
                             : rd_kafka_query_watermark_offsets(
                                   in->w.consumer, t->topic, t->partition, &lo,
                                   &hi, KAFKA_QUERY_MS);
                if (err)
                        break;
                /* parts' offsets: the committed ones, then the starts */
                t->offset = start_offset(in, &rec[i], t->offset, lo, hi);
        }
        if (err) {
                cm_warn("cannot read where to start the partitions: %s; "
                        "retrying in %d ms",
                        rd_kafka_err2str(err),
                        cm_backoff_fail(&in->kafka_backoff, cm_mono_us()));
                goto out;
        }
        cm_backoff_ok(&in->kafka_backoff);
        for (i = 0; i < n; i++)
                stay += parts->elems[i].offset == RD_KAFKA_OFFSET_INVALID;
        /* A recreation found is kept in the record until replayed. */
        if (stay &&
            cm_store_applied_set(in->w.st, in->w.cfg.topic_events, rec,
                                 (size_t)n, errstr, sizeof(errstr)) == -1) {
                cm_worker_redis_wait(&in->w, errstr);
                goto out;
        }
        cm_worker_redis_ok(&in->w);
        in->connects = cm_store_connects(in->w.st);
        for (i = 0; i < n; i++) {
                rd_kafka_topic_partition_t *t = &parts->elems[i];

                *applied_of(in, t->partition) = rec[i];
                if (t->offset == RD_KAFKA_OFFSET_INVALID)
                        rd_kafka_topic_partition_list_add(in->stuck, t->topic,
                                                          t->partition);
                else
                        rd_kafka_topic_partition_list_add(starts, t->topic,
                                                          t->partition)
                            ->offset = t->offset;
        }
        if (cm_worker_release(&in->w, starts, errstr, sizeof(errstr)) == -1)
                cm_warn("%s; retrying", errstr);
        else if (starts->cnt)
                cm_info("%d partition(s) started where redis and the group "
                        "agree",
                        starts->cnt);
        say_stuck(in);
out:
        if (starts)
                rd_kafka_topic_partition_list_destroy(starts);
        free(rec);
        rd_kafka_topic_partition_list_destroy(parts);
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

/* 1 when Redis is connected on the connection the partitions were
 * released on. A connection made since (any call failed and the next one
 * reconnected) may be to a Redis that restarted without its last writes:
 * applying there would move the sessions' watermarks past what it lost.
 * Then 0 with the reason: the batch is dropped and the partitions start
 * again from the record. */
static int on_release_connection(ingest_t *in, char *errstr, size_t errstr_size)
{
        if (cm_store_connect(in->w.st, errstr, errstr_size) == -1)
                return 0;
        if (cm_store_connects(in->w.st) == in->connects)
                return 1;
        snprintf(errstr, errstr_size,
                 "redis '%s' was connected again: starting the partitions "
                 "from the applied-offset record",
                 cm_store_url(in->w.st));
        return 0;
}

static const cm_worker_spec_t spec = {
    .name = "chatmem-ingest",
    .summary = "Consumes chat events and appends them to the sessions in "
               "Redis.",
    .hold = 1,
};

int main(int argc, char **argv)
{
        ingest_t in;
        size_t batch;
        char errstr[512];

        memset(&in, 0, sizeof(in));
        if (cm_worker_init(&in.w, argc, argv, &spec) ||
            cm_worker_start(&in.w, in.w.cfg.ingest_group,
                            in.w.cfg.topic_events) == -1)
                return cm_worker_finish(&in.w);
        batch = (size_t)in.w.cfg.ingest_batch_size;
        in.msgs = cm_calloc(batch, sizeof(*in.msgs));
        in.events = cm_calloc(batch, sizeof(*in.events));
        in.items = cm_calloc(batch, sizeof(*in.items));
        in.times = cm_calloc(batch, sizeof(*in.times));
        in.keys = cm_calloc(batch, sizeof(*in.keys));
        cm_store_set_compaction(
            in.w.st, in.w.cfg.recent_verbatim + in.w.cfg.summarize_after,
            COMPACTION_STALE_MS);
        metrics_init(&in);
        in.replay_reset = !strcmp(in.w.cfg.ingest_topic_reset, "replay");
        in.stuck = rd_kafka_topic_partition_list_new(0);
        if (!in.replay_reset && strcmp(in.w.cfg.ingest_topic_reset, "stop")) {
                cm_error("ingest.topic_reset: expected stop or replay, got "
                         "'%.40s'",
                         in.w.cfg.ingest_topic_reset);
                in.w.status = 1;
                goto out;
        }

        while (cm_worker_running(&in.w)) {
                release_held(&in);
                in.msg_cnt = cm_worker_poll_batch(&in.w, in.msgs, batch, 100);
                if (in.msg_cnt > 0) {
                        int64_t t0 = cm_mono_us();

                        prepare(&in);
                        /* Stopping before Redis or the DLQ acknowledged the
                         * batch leaves its offsets unstored: it is
                         * delivered again. */
                        if (!on_release_connection(&in, errstr,
                                                   sizeof(errstr)) ||
                            apply(&in, errstr, sizeof(errstr)) == -1) {
                                cm_worker_hold_all(&in.w);
                                cm_worker_redis_wait(&in.w, errstr);
                        } else if (wait_dlq(&in) == 0) {
                                cm_metric_observe(in.m_batch_seconds,
                                                  (cm_mono_us() - t0) / 1e6);
                                record_applied(&in);
                                store_offsets(&in);
                                send_stats(&in);
                        }
                        release_batch(&in);
                }
                rd_kafka_poll(in.w.producer, 0);
                log_stats(&in, 0);
        }
        log_stats(&in, 1);
        cm_info("stopping");
out:
        if (in.stuck)
                rd_kafka_topic_partition_list_destroy(in.stuck);
        free(in.applied);
        free(in.msgs);
        free(in.events);
        free(in.items);
        free(in.times);
        free(in.keys);
        return cm_worker_finish(&in.w);
}
