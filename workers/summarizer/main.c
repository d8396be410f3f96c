/*
 * chatmem-summarizer: chat.compaction -> old messages folded into the
 * session's running summary.
 *
 * For each job: read the session, fold every message but the newest
 * recent_verbatim into the summary (previous summary + folded messages ->
 * new summary, never the whole history), and commit with one script that
 * compares-and-sets the summary cursor (the last folded seq) and moves
 * exactly the folded messages, checked by count and seq, from the list to
 * the session's archive (store.h). Messages appended meanwhile are never
 * touched; if the cursor moved (another fold won) or the list is not what
 * was read, the fold is redone from the new state. A failed summarization
 * changes nothing.
 *
 * The job's offset is stored once the fold is committed (or found
 * unnecessary) and, for a bad job, once its DLQ entry is delivered; a
 * crash or a stop before that redoes the job, which the cursor makes
 * harmless. Redis down: the worker's outage pause (worker.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "kafka.h"
#include "log.h"
#include "store.h"
#include "summarize.h"
#include "util.h"
#include "worker.h"

#define FOLD_ATTEMPTS 5
#define FOLD_ROUNDS   20

typedef struct summ {
        cm_worker_t w;
        cm_summarizer_t *sz;
        cm_delivery_t dlq; /* the DLQ entry of the job in hand */
        unsigned long long folds, folded, moved, skipped, dead;
        int llm; /* summarizer.kind = "llm" */
        struct {
                cm_metric_t *folds, *folded, *raced, *llm_calls, *fallbacks,
                    *dead, *fold_seconds, *llm_seconds;
        } m;
} summ_t;

static void metrics_init(summ_t *sm)
{
        static const char *const invalid[] = {"reason", "invalid_job", NULL};
        cm_metrics_t *mx = sm->w.mx;

        sm->m.folds =
            cm_metrics_counter(mx, "folds_total", "Folds committed.", NULL);
        sm->m.folded =
            cm_metrics_counter(mx, "messages_folded_total",
                               "Messages folded into running summaries.", NULL);
        sm->m.raced = cm_metrics_counter(
            mx, "folds_raced_total",
            "Folds redone because the session moved under them.", NULL);
        sm->m.llm_calls = cm_metrics_counter(
            mx, "llm_calls_total", "Folds asked of the LLM endpoint.", NULL);
        sm->m.fallbacks = cm_metrics_counter(
            mx, "llm_fallbacks_total",
            "LLM folds that fell back to the extractive summarizer.", NULL);
        sm->m.dead = cm_metrics_counter(
            mx, "dlq_jobs_total", "Compaction jobs sent to the DLQ.", invalid);
        sm->m.fold_seconds = cm_metrics_histogram(
            mx, "fold_seconds", "Time of one fold: load, summarize and commit.",
            cm_metrics_latency_buckets, cm_metrics_latency_bucket_cnt, NULL);
        if (sm->llm)
                sm->m.llm_seconds = cm_metrics_histogram(
                    mx, "llm_seconds",
                    "Time of one LLM summary, retries and fallback included.",
                    cm_metrics_latency_buckets, cm_metrics_latency_bucket_cnt,
                    NULL);
}

/* Folds one session. Returns 0 when done (folded, nothing to fold, or
 * given up after FOLD_ATTEMPTS lost races), -1 on a Redis error (retry). */
static int fold_session(summ_t *sm, const char *user, const char *conv,
                        char *errstr, size_t errstr_size)
{
        int64_t threshold =
            sm->w.cfg.recent_verbatim + sm->w.cfg.summarize_after;
        int attempt, rounds = 0;

        for (attempt = 0; attempt < FOLD_ATTEMPTS && cm_worker_running(&sm->w);
             attempt++) {
                cm_session_t s;
                size_t keep = (size_t)sm->w.cfg.recent_verbatim, n;
                char *text;
                int fallback;
                int64_t left = 0, t0 = cm_mono_us(), t_llm;
                long long rc;

                if (cm_store_load(sm->w.st, user, conv, -1, 0, &s, errstr,
                                  errstr_size) == -1)
                        return -1;
                if (!s.exists || s.msg_cnt <= keep) {
                        cm_session_release(&s);
                        if (cm_store_compaction_done(sm->w.st, user, conv,
                                                     errstr, errstr_size) == -1)
                                return -1;
                        sm->skipped++;
                        return 0;
                }
                n = s.msg_cnt - keep;
                t_llm = cm_mono_us();
                text =
                    cm_summarizer_fold(sm->sz, s.summary, s.msgs, n, &fallback);
                if (sm->llm) {
                        cm_metric_inc(sm->m.llm_calls);
                        cm_metric_observe(sm->m.llm_seconds,
                                          (cm_mono_us() - t_llm) / 1e6);
                }
                if (fallback)
                        cm_metric_inc(sm->m.fallbacks);
                rc = cm_store_fold_commit(sm->w.st, user, conv, s.summary_upto,
                                          s.msgs, n, text, &left, errstr,
                                          errstr_size);
                free(text);
                cm_session_release(&s);
                if (rc == -1)
                        return -1;
                if (rc != CM_FOLD_MOVED) {
                        sm->folds++;
                        sm->folded += (unsigned long long)rc;
                        cm_metric_inc(sm->m.folds);
                        cm_metric_add(sm->m.folded, (double)rc);
                        cm_metric_observe(sm->m.fold_seconds,
                                          (cm_mono_us() - t0) / 1e6);
                        cm_debug("session '%s:%s': folded %lld message(s), "
                                 "%lld left",
                                 user, conv, rc, (long long)left);
                        if (left <= threshold)
                                return 0;
                        /* Appends landed during the fold and saw the job
                         * mark: fold again, a bounded number of times,
                         * then queue the session behind the other jobs. */
                        if (++rounds >= FOLD_ROUNDS) {
                                cm_worker_ask_compaction(&sm->w, user, conv);
                                return 0;
                        }
                        attempt = -1;
                        continue;
                }
                sm->moved++;
                cm_metric_inc(sm->m.raced);
                cm_debug("session '%s:%s' moved under the fold; again", user,
                         conv);
        }
        cm_warn("session '%s:%s': gave up folding after %d attempts", user,
                conv, FOLD_ATTEMPTS);
        return 0;
}

/* Marks the session changed for prebuilt publication (best effort: a
 * session missed here is published with its next change). */
static void mark_dirty(summ_t *sm, const char *user, const char *conv)
{
        char key[CM_SESSION_KEY_MAX], errstr[512];
        const char *keys[] = {key};

        if (!sm->w.cfg.prebuilt)
                return;
        cm_session_key(key, user, conv);
        if (cm_store_mark_dirty(sm->w.st, keys, 1, errstr, sizeof(errstr)) ==
            -1)
                cm_warn("cannot mark '%s' for prebuilt: %s", key, errstr);
}

/* Handles one job, retrying while Redis is down. Returns 0 when done (its
 * offset may be stored), -1 when asked to stop first. */
static int handle(summ_t *sm, const rd_kafka_message_t *m)
{
        cm_compaction_job_t job;
        char errstr[512];

        if (cm_compaction_job_decode(m->payload, m->len, &job, errstr,
                                     sizeof(errstr)) == -1) {
                if (cm_worker_to_dlq(&sm->w, m, errstr, &sm->dlq) == 0) {
                        sm->dead++;
                        cm_metric_inc(sm->m.dead);
                }
                /* Stored only once the entry is delivered (or given up). */
                return cm_worker_wait_delivered(&sm->w, &sm->dlq);
        }
        while (fold_session(sm, job.user_id, job.conversation_id, errstr,
                            sizeof(errstr)) == -1)
                if (cm_worker_redis_wait(&sm->w, errstr) == -1)
                        return -1;
        cm_worker_redis_ok(&sm->w);
        mark_dirty(sm, job.user_id, job.conversation_id);
        return 0;
}

static const cm_worker_spec_t spec = {
    "chatmem-summarizer",
    "Folds old messages into the running summaries.",
};

int main(int argc, char **argv)
{
        summ_t sm;
        char errstr[512];

        memset(&sm, 0, sizeof(sm));
        if (cm_worker_init(&sm.w, argc, argv, &spec) ||
            cm_worker_start(&sm.w, sm.w.cfg.summarizer_group,
                            sm.w.cfg.topic_compaction) == -1)
                return cm_worker_finish(&sm.w);
        sm.sz = cm_summarizer_new(&sm.w.cfg, sm.w.tk, errstr, sizeof(errstr));
        if (!sm.sz) {
                cm_error("%s", errstr);
                sm.w.status = 1;
                return cm_worker_finish(&sm.w);
        }
        sm.llm = !strcmp(sm.w.cfg.summarizer_kind, "llm");
        metrics_init(&sm);
        /* The fold keeps the job mark while more than this is left. */
        cm_store_set_compaction(
            sm.w.st, sm.w.cfg.recent_verbatim + sm.w.cfg.summarize_after, 0);
        cm_info("folding with the %s summarizer", sm.w.cfg.summarizer_kind);

        while (cm_worker_running(&sm.w)) {
                rd_kafka_message_t *m = cm_worker_poll(&sm.w, 100);

                if (m) {
                        if (handle(&sm, m) == 0)
                                cm_kafka_offset_store(m);
                        rd_kafka_message_destroy(m);
                }
                rd_kafka_poll(sm.w.producer, 0);
        }
        cm_info("stopping: %llu folds (%llu messages), %llu raced, %llu with "
                "nothing to fold, %lu llm fallbacks, %llu to dlq",
                sm.folds, sm.folded, sm.moved, sm.skipped,
                cm_summarizer_fallbacks(sm.sz), sm.dead);
        cm_summarizer_destroy(sm.sz);
        return cm_worker_finish(&sm.w);
}
