/*
 * chatmem-summarizer: chat.compaction -> old messages folded into the
 * session's running summary.
 *
 * For each job: read the session, fold every message but the newest
 * recent_verbatim into the summary (previous summary + folded messages ->
 * new summary, never the whole history), and commit with one script that
 * compares-and-sets the summary cursor (the last folded seq) and removes
 * exactly the folded messages by seq. Messages appended meanwhile are
 * never touched; if the cursor moved (another fold won), the fold is
 * redone from the new state. A failed summarization changes nothing.
 *
 * The job's offset is stored once the fold is committed (or found
 * unnecessary); a crash before that redoes the job, which the cursor makes
 * harmless.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "codec.h"
#include "config.h"
#include "kafka.h"
#include "log.h"
#include "store.h"
#include "summarize.h"
#include "tokens.h"
#include "util.h"

#define BATCH_MAX     64
#define FOLD_ATTEMPTS 5
#define FOLD_ROUNDS   20

typedef struct summ {
        cm_config_t cfg;
        rd_kafka_t *consumer;
        rd_kafka_t *producer; /* DLQ */
        cm_store_t *st;
        const cm_tokenizer_t *tk;
        cm_summarizer_t *sz;
        int redis_down;
        unsigned long long folds, folded, moved, skipped, dead;
} summ_t;

/* Reads {"user_id", "conversation_id"} of a job. Returns 0, or -1 with the
 * reason. */
static int job_decode(const rd_kafka_message_t *m, char *user, char *conv,
                      char *errstr, size_t errstr_size)
{
        struct json_tokener *tok = json_tokener_new();
        struct json_object *obj, *u = NULL, *c = NULL;
        char why[256];
        int ret = -1;

        obj = json_tokener_parse_ex(tok, m->payload, (int)m->len);
        json_tokener_free(tok);
        if (!obj || !json_object_is_type(obj, json_type_object) ||
            !json_object_object_get_ex(obj, "user_id", &u) ||
            !json_object_is_type(u, json_type_string)) {
                snprintf(errstr, errstr_size,
                         "compaction job: missing or bad 'user_id'");
                goto out;
        }
        if (cm_id_check(json_object_get_string(u),
                        (size_t)json_object_get_string_len(u), 0, why,
                        sizeof(why)) == -1) {
                snprintf(errstr, errstr_size, "field 'user_id': %s", why);
                goto out;
        }
        snprintf(user, CM_ID_MAX + 1, "%s", json_object_get_string(u));
        snprintf(conv, CM_ID_MAX + 1, "default");
        if (json_object_object_get_ex(obj, "conversation_id", &c)) {
                if (!json_object_is_type(c, json_type_string) ||
                    cm_id_check(json_object_get_string(c),
                                (size_t)json_object_get_string_len(c), 0, why,
                                sizeof(why)) == -1) {
                        snprintf(errstr, errstr_size,
                                 "field 'conversation_id': bad id");
                        goto out;
                }
                snprintf(conv, CM_ID_MAX + 1, "%s", json_object_get_string(c));
        }
        ret = 0;
out:
        json_object_put(obj);
        return ret;
}

/* Puts a job for the session back on the compaction topic. */
static void requeue(summ_t *sm, const char *user, const char *conv)
{
        char key[2 * CM_ID_MAX + 2], *job;

        snprintf(key, sizeof(key), "%s:%s", user, conv);
        job = cm_compaction_job_encode(user, conv, cm_now_ms());
        /* When it cannot be queued, the mark stays and ingest asks again
         * once it is stale. */
        cm_kafka_produce(sm->producer, sm->cfg.topic_compaction, key, job);
}

/* Folds one session. Returns 0 when done (folded, nothing to fold, or
 * given up after FOLD_ATTEMPTS lost races), -1 on a Redis error (retry). */
static int fold_session(summ_t *sm, const char *user, const char *conv,
                        char *errstr, size_t errstr_size)
{
        int64_t threshold = sm->cfg.recent_verbatim + sm->cfg.summarize_after;
        int attempt, rounds = 0;

        for (attempt = 0; attempt < FOLD_ATTEMPTS && !cm_stop; attempt++) {
                cm_session_t s;
                size_t keep = (size_t)sm->cfg.recent_verbatim, n;
                char *text;
                int fallback;
                int64_t left = 0;
                long long rc;

                if (cm_store_load(sm->st, user, conv, -1, &s, errstr,
                                  errstr_size) == -1)
                        return -1;
                if (!s.exists || s.msg_cnt <= keep) {
                        cm_session_release(&s);
                        if (cm_store_compaction_done(sm->st, user, conv, errstr,
                                                     errstr_size) == -1)
                                return -1;
                        sm->skipped++;
                        return 0;
                }
                n = s.msg_cnt - keep;
                text =
                    cm_summarizer_fold(sm->sz, s.summary, s.msgs, n, &fallback);
                rc = cm_store_fold_commit(sm->st, user, conv, s.summary_upto,
                                          s.msgs[n - 1].seq, text, &left,
                                          errstr, errstr_size);
                free(text);
                cm_session_release(&s);
                if (rc == -1)
                        return -1;
                if (rc != CM_FOLD_MOVED) {
                        sm->folds++;
                        sm->folded += (unsigned long long)rc;
                        cm_debug("session '%s:%s': folded %lld message(s), "
                                 "%lld left",
                                 user, conv, rc, (long long)left);
                        if (left <= threshold)
                                return 0;
                        /* Appends landed during the fold and saw the job
                         * mark: fold again, a bounded number of times,
                         * then queue the session behind the other jobs. */
                        if (++rounds >= FOLD_ROUNDS) {
                                requeue(sm, user, conv);
                                return 0;
                        }
                        attempt = -1;
                        continue;
                }
                sm->moved++;
                cm_debug("session '%s:%s' moved under the fold; again", user,
                         conv);
        }
        cm_warn("session '%s:%s': gave up folding after %d attempts", user,
                conv, FOLD_ATTEMPTS);
        return 0;
}

static void to_dlq(summ_t *sm, const rd_kafka_message_t *m, const char *why)
{
        if (cm_kafka_to_dlq(sm->producer, sm->cfg.topic_dlq, m, why) == 0)
                sm->dead++;
}

static void rewind_to(summ_t *sm, const rd_kafka_message_t *m)
{
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_error_t *error;

        if (m->err)
                return;
        parts = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts, rd_kafka_topic_name(m->rkt),
                                          m->partition)
            ->offset = m->offset;
        error = rd_kafka_seek_partitions(sm->consumer, parts, 1000);
        if (error) {
                cm_warn("cannot rewind [%d] to @%lld: %s", (int)m->partition,
                        (long long)m->offset, rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
        rd_kafka_topic_partition_list_destroy(parts);
}

/* Handles one job, retrying while Redis is down. Returns 0 when done, -1
 * when asked to stop first. */
static int handle(summ_t *sm, const rd_kafka_message_t *m)
{
        char user[CM_ID_MAX + 1], conv[CM_ID_MAX + 1], errstr[512];
        int backoff = 100;

        if (job_decode(m, user, conv, errstr, sizeof(errstr)) == -1) {
                to_dlq(sm, m, errstr);
                return 0;
        }
        while (fold_session(sm, user, conv, errstr, sizeof(errstr)) == -1) {
                if (!sm->redis_down) {
                        sm->redis_down = 1;
                        cm_kafka_pause_all(sm->consumer, 1);
                        cm_warn("%s; partitions paused, retrying", errstr);
                }
                for (int waited = 0; waited < backoff && !cm_stop;
                     waited += 100) {
                        rd_kafka_message_t *x =
                            rd_kafka_consumer_poll(sm->consumer, 100);

                        /* Paused, yet fetched before the pause: rewind
                         * so that it is delivered again on resume. */
                        if (x) {
                                rewind_to(sm, x);
                                rd_kafka_message_destroy(x);
                        }
                }
                if (cm_stop)
                        return -1;
                backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
        }
        if (sm->redis_down) {
                sm->redis_down = 0;
                cm_kafka_pause_all(sm->consumer, 0);
                cm_info("redis '%s' is back; partitions resumed",
                        cm_store_url(sm->st));
        }
        {
                char key[2 * CM_ID_MAX + 2];
                const char *keys[] = {key};

                snprintf(key, sizeof(key), "%s:%s", user, conv);
                if (sm->cfg.prebuilt &&
                    cm_store_mark_dirty(sm->st, keys, 1, errstr,
                                        sizeof(errstr)) == -1)
                        cm_warn("cannot mark '%s' for prebuilt: %s", key,
                                errstr);
        }
        return 0;
}

int main(int argc, char **argv)
{
        summ_t sm;
        char errstr[512];
        int ret = 1;

        memset(&sm, 0, sizeof(sm));
        cm_config_init(&sm.cfg);
        ret = cm_daemon_init(argc, argv, "chatmem-summarizer",
                             "Folds old messages into the running summaries.",
                             &sm.cfg);
        if (ret != -1)
                goto out;
        ret = 1;
        if (cm_tokenizer_get(sm.cfg.tokenizer, &sm.tk, errstr,
                             sizeof(errstr)) == -1) {
                cm_error("%s", errstr);
                goto out;
        }
        sm.sz = cm_summarizer_new(&sm.cfg, sm.tk, errstr, sizeof(errstr));
        if (!sm.sz) {
                cm_error("%s", errstr);
                goto out;
        }
        sm.st = cm_store_new(&sm.cfg, errstr, sizeof(errstr));
        if (!sm.st) {
                cm_error("%s", errstr);
                goto out;
        }
        /* The fold keeps the job mark while more than this is left. */
        cm_store_set_compaction(
            sm.st, sm.cfg.recent_verbatim + sm.cfg.summarize_after, 0);
        if (cm_store_connect(sm.st, errstr, sizeof(errstr)) == -1)
                cm_warn("%s; will retry when jobs arrive", errstr);
        sm.producer =
            cm_kafka_producer_new(&sm.cfg, NULL, NULL, errstr, sizeof(errstr));
        if (!sm.producer) {
                cm_error("%s", errstr);
                goto out;
        }
        sm.consumer = cm_kafka_consumer_new(&sm.cfg, sm.cfg.summarizer_group,
                                            cm_kafka_rebalance_default, &sm,
                                            errstr, sizeof(errstr));
        if (!sm.consumer) {
                cm_error("%s", errstr);
                goto out;
        }
        if (cm_kafka_subscribe(sm.consumer, sm.cfg.topic_compaction, errstr,
                               sizeof(errstr)) == -1) {
                cm_error("%s", errstr);
                goto out;
        }
        cm_info("folding '%s' in group '%s' with the %s summarizer",
                sm.cfg.topic_compaction, sm.cfg.summarizer_group,
                sm.cfg.summarizer_kind);

        while (!cm_stop) {
                rd_kafka_message_t *m =
                    rd_kafka_consumer_poll(sm.consumer, 100);

                if (!m) {
                        rd_kafka_poll(sm.producer, 0);
                        continue;
                }
                if (m->err) {
                        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                cm_warn("consumer: %s",
                                        rd_kafka_message_errstr(m));
                } else if (handle(&sm, m) == 0) {
                        while (rd_kafka_outq_len(sm.producer) > 0 && !cm_stop)
                                rd_kafka_flush(sm.producer, 100);
                        rd_kafka_offset_store(m->rkt, m->partition, m->offset);
                }
                rd_kafka_message_destroy(m);
        }
        cm_info("stopping: %llu folds (%llu messages), %llu raced, %llu with "
                "nothing to fold, %lu llm fallbacks, %llu to dlq",
                sm.folds, sm.folded, sm.moved, sm.skipped,
                sm.sz ? cm_summarizer_fallbacks(sm.sz) : 0UL, sm.dead);
        ret = 0;
out:
        cm_kafka_consumer_close(sm.consumer);
        if (cm_kafka_producer_close(sm.producer, 5000) > 0)
                ret = 1;
        cm_store_destroy(sm.st);
        cm_summarizer_destroy(sm.sz);
        curl_global_cleanup();
        cm_config_release(&sm.cfg);
        return ret;
}
