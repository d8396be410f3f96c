/*
 * eval_memory: how much of a very long conversation chatmem's context
 * still holds, on LoCoMo's development split (see its README.md and the
 * memory issue). Run by `make eval-memory` (ops/eval-memory.sh starts the
 * fleet); never part of `make test`.
 *
 *   eval_memory [OPTIONS] [PATH/locomo-dev.json]
 *
 * Method:
 *  - Each conversation becomes one session (memory_data.c): speaker_a is
 *    the user, speaker_b the assistant, each turn's content is
 *    "<Speaker>: <text>", its ts the date of its LoCoMo session.
 *  - Questions: the qa entries except category 5 (adversarial: no answer
 *    in the conversation) whose normalised answer (lowercase, only
 *    [a-z0-9 ], spaces collapsed; a number as its text) occurs in the
 *    normalised history (the turn texts as ingested). A question counts as
 *    answered by a text when its normalised answer occurs in the
 *    normalised text (a plain substring test, as the README's numbers).
 *  - The fleet (memory_fleet.c): every turn is produced to chat.events,
 *    paced by default (turn k of each session once the fleet has settled
 *    after turn k - 1, as in a live chat, so that runs are reproducible;
 *    -b sends them all at once); once Redis holds every session whole and
 *    folded down, every question is asked as a context request at
 *    max_tokens 500, 1000 and 2000, once with `query` = the question and
 *    once without `query`. A reply counts as not answered when it is
 *    missing or an error (either also fails the run).
 *  - Baselines (memory_baseline.c), in-process on the same questions and
 *    with the session's tokenizer: the last N tokens of the history, and
 *    plain BM25 over the turns plus the last 3 turns.
 *  - Reports the retention per budget and mode, the mean tokens used, and
 *    metadata.recalled / metadata.recall_us where replies carry them, on
 *    stdout and as JSON (-o), with the settings of the run and a line per
 *    target of the issue (informational).
 *
 * The fleet's Kafka and Redis are those of the chatmem config (-c, the
 * environment: CHATMEM_KAFKA_BROKERS, CHATMEM_REDIS_URL...), and so are
 * the thresholds the wait uses (context.recent_verbatim,
 * context.summarize_after) and the tokenizer: run it with the workers'
 * environment. The Redis must hold no other data of these sessions.
 *
 * Exit status: 0 when the report was written (whatever the results) or
 * the data is absent; 1 when the harness failed (the fleet did not
 * settle, replies missing, error replies, a baseline miscounted); 2 bad
 * usage.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <json-c/json.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "memory.h"
#include "redis.h"
#include "tokens.h"
#include "util.h"

#define DEFAULT_PATH        "../shared/data/locomo-dev/locomo-dev.json"
#define DEFAULT_OUT         "build/eval/memory.json"
#define DEFAULT_REPLY_TOPIC "context.replies.eval"

/* The targets, with query: retention (%) per budget. */
static const double target_query[EM_BUDGET_CNT] = {75, 85, 90};

static const char *const mode_key[EM_MODE_CNT] = {"with_query",
                                                  "without_query"};
static const char *const mode_name[EM_MODE_CNT] = {"chatmem, with query",
                                                   "chatmem, without query"};
static const char *const base_key[EM_BASE_CNT] = {"last_n", "bm25_last3"};
static const char *const base_name[EM_BASE_CNT] = {
    "baseline: last N tokens", "baseline: BM25 + last 3 turns"};

/* What one row of the table holds at one budget. */
typedef struct cell {
        long long n; /* replies (or texts) */
        long long answered;
        long long tokens;  /* sum */
        long long over;    /* tokens > budget */
        long long missing; /* no reply */
        long long errors;
        long long cached;
        long long degraded;
        int64_t *recall_us; /* values present */
        size_t recall_cnt;
        long long recalled_sum;
        long long recalled_cnt;
        int64_t *build_us;
        size_t build_cnt;
} cell_t;

typedef struct run {
        const char *data_path;
        const char *out_path;
        const char *label;
        const char *user_prefix;
        const char *only; /* -C: the conversations kept, NULL: all */
        int fleet;        /* 0: baselines only */
        em_fleet_opts_t fo;
        cm_config_t cfg;
        const cm_tokenizer_t *tk;
        em_data_t d;
        em_outcome_t *base;  /* [(q * EM_BASE_CNT + kind) * budgets + b] */
        em_reply_t *replies; /* [(q * EM_MODE_CNT + mode) * budgets + b] */
        em_session_state_t *states;
        double ingest_s, ask_s;
        cell_t modes[EM_MODE_CNT][EM_BUDGET_CNT];
        cell_t bases[EM_BASE_CNT][EM_BUDGET_CNT];
        int targets_met, target_cnt;
} run_t;

static void usage(FILE *fp)
{
        fprintf(fp,
                "usage: eval_memory [OPTIONS] [PATH/locomo-dev.json]\n"
                "\n"
                "Answer retention of chatmem's contexts on LoCoMo (default "
                "data: %s),\nagainst the last-N-tokens and BM25 baselines. "
                "Kafka, Redis and the\nsettings come from the chatmem config "
                "and environment, as for the workers.\n"
                "\n"
                "  -o FILE      JSON report (default %s)\n"
                "  -r TOPIC     reply topic (default %s)\n"
                "  -u PREFIX    user ids are PREFIX-<sample_id> (default "
                "locomo)\n"
                "  -C IDS       only these conversations (comma-separated "
                "sample ids,\n"
                "               conv-26,conv-30 say): a tuning set and a "
                "check set\n"
                "  -b           produce every turn at once (default: paced, "
                "one turn per\n"
                "               session at a time, each once the fleet has "
                "settled)\n"
                "  -w N         context requests in flight (default 32)\n"
                "  -s SECONDS   wait at most this for the whole ingest, "
                "folding included\n"
                "               (default 300)\n"
                "  -t SECONDS   wait at most this without any reply (default "
                "60)\n"
                "  -L LABEL     label of the run in the report (a commit, "
                "say)\n"
                "  -n           no fleet: the baselines alone\n"
                "  -c FILE      chatmem.conf to read\n"
                "  -h           this text\n",
                DEFAULT_PATH, DEFAULT_OUT, DEFAULT_REPLY_TOPIC);
}

static double pct(long long part, long long whole)
{
        return whole ? 100.0 * (double)part / (double)whole : 0;
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

/* Nearest-rank percentile p of v[0..n) (sorted); -1 when n is 0. */
static int64_t percentile(const int64_t *v, size_t n, double p)
{
        size_t k;

        if (n == 0)
                return -1;
        k = (size_t)ceil(p / 100.0 * (double)n);
        return v[k > 0 ? k - 1 : 0];
}

static void push_i64(int64_t **v, size_t *n, int64_t x)
{
        *v = cm_realloc(*v, (*n + 1) * sizeof(**v));
        (*v)[(*n)++] = x;
}

static void cell_release(cell_t *c)
{
        free(c->recall_us);
        free(c->build_us);
        memset(c, 0, sizeof(*c));
}

static int run_baselines(run_t *r, char *errstr, size_t errstr_size)
{
        size_t q;
        int kind, b;

        r->base = cm_calloc(r->d.q_cnt * EM_BASE_CNT * EM_BUDGET_CNT,
                            sizeof(*r->base));
        for (q = 0; q < r->d.q_cnt; q++) {
                for (kind = 0; kind < EM_BASE_CNT; kind++) {
                        for (b = 0; b < EM_BUDGET_CNT; b++) {
                                em_outcome_t *o =
                                    &r->base[(q * EM_BASE_CNT + kind) *
                                                 EM_BUDGET_CNT +
                                             b];
                                cell_t *c = &r->bases[kind][b];

                                if (em_baseline(&r->d, &r->d.qs[q], kind,
                                                em_budgets[b], r->tk, o, errstr,
                                                errstr_size) == -1)
                                        return -1;
                                c->n++;
                                c->answered += o->answered;
                                c->tokens += o->tokens;
                        }
                }
        }
        return 0;
}

static void tally_replies(run_t *r)
{
        size_t q;
        int mode, b;

        for (q = 0; q < r->d.q_cnt; q++) {
                for (mode = 0; mode < EM_MODE_CNT; mode++) {
                        for (b = 0; b < EM_BUDGET_CNT; b++) {
                                const em_reply_t *x =
                                    &r->replies[(q * EM_MODE_CNT + mode) *
                                                    EM_BUDGET_CNT +
                                                b];
                                cell_t *c = &r->modes[mode][b];

                                if (!x->got) {
                                        c->missing++;
                                        continue;
                                }
                                if (x->error) {
                                        c->errors++;
                                        continue;
                                }
                                c->n++;
                                c->answered += x->out.answered;
                                c->tokens += x->out.tokens;
                                c->over += x->out.tokens > em_budgets[b];
                                c->cached += x->cached;
                                c->degraded += x->degraded;
                                push_i64(&c->build_us, &c->build_cnt,
                                         x->build_us);
                                if (x->recall_us >= 0)
                                        push_i64(&c->recall_us, &c->recall_cnt,
                                                 x->recall_us);
                                if (x->recalled >= 0) {
                                        c->recalled_sum += x->recalled;
                                        c->recalled_cnt++;
                                }
                        }
                }
        }
        for (mode = 0; mode < EM_MODE_CNT; mode++) {
                for (b = 0; b < EM_BUDGET_CNT; b++) {
                        cell_t *c = &r->modes[mode][b];

                        if (c->recall_cnt > 1)
                                qsort(c->recall_us, c->recall_cnt,
                                      sizeof(*c->recall_us), cmp_i64);
                        if (c->build_cnt > 1)
                                qsort(c->build_us, c->build_cnt,
                                      sizeof(*c->build_us), cmp_i64);
                }
        }
}

/* Retention of a cell over every question (a missing or error reply
 * counts as not answered). */
static double retention(const run_t *r, const cell_t *c)
{
        return pct(c->answered, (long long)r->d.q_cnt);
}

static double mean_tokens(const cell_t *c)
{
        return c->n ? (double)c->tokens / (double)c->n : 0;
}

/* "12.3% (456)" into out. */
static void fmt_cell(char *out, size_t size, const run_t *r, const cell_t *c)
{
        if (c->n == 0)
                snprintf(out, size, "n/a");
        else
                snprintf(out, size, "%5.1f%% (%4.0f)", retention(r, c),
                         mean_tokens(c));
}

static void print_row(const run_t *r, const char *name, const cell_t *cells)
{
        char buf[EM_BUDGET_CNT][64];
        int b;

        for (b = 0; b < EM_BUDGET_CNT; b++)
                fmt_cell(buf[b], sizeof(buf[b]), r, &cells[b]);
        printf("  %-32s %15s %15s %15s\n", name, buf[0], buf[1], buf[2]);
}

/* "p50 / p99 us" of v, or "n/a". */
static void fmt_pcts(char *out, size_t size, const int64_t *v, size_t n)
{
        if (n == 0)
                snprintf(out, size, "n/a");
        else
                snprintf(out, size, "%lld / %lld",
                         (long long)percentile(v, n, 50),
                         (long long)percentile(v, n, 99));
}

static void print_recall(const run_t *r)
{
        static const char *const label[EM_MODE_CNT][3] = {
            {"with query: recalled", "            recall_us",
             "            build_us"},
            {"without query: recalled", "               recall_us",
             "               build_us"},
        };
        char buf[EM_BUDGET_CNT][64];
        int mode, b;

        printf("\nchatmem replies' metadata (recalled: mean; recall_us, "
               "build_us: p50 / p99):\n");
        printf("  %-32s %15d %15d %15d\n", "max_tokens", em_budgets[0],
               em_budgets[1], em_budgets[2]);
        for (mode = 0; mode < EM_MODE_CNT; mode++) {
                const cell_t *c = r->modes[mode];

                for (b = 0; b < EM_BUDGET_CNT; b++) {
                        if (c[b].recalled_cnt == 0)
                                snprintf(buf[b], sizeof(buf[b]), "n/a");
                        else
                                snprintf(buf[b], sizeof(buf[b]), "%.1f",
                                         (double)c[b].recalled_sum /
                                             (double)c[b].recalled_cnt);
                }
                printf("  %-32s %15s %15s %15s\n", label[mode][0], buf[0],
                       buf[1], buf[2]);
                for (b = 0; b < EM_BUDGET_CNT; b++)
                        fmt_pcts(buf[b], sizeof(buf[b]), c[b].recall_us,
                                 c[b].recall_cnt);
                printf("  %-32s %15s %15s %15s\n", label[mode][1], buf[0],
                       buf[1], buf[2]);
                for (b = 0; b < EM_BUDGET_CNT; b++)
                        fmt_pcts(buf[b], sizeof(buf[b]), c[b].build_us,
                                 c[b].build_cnt);
                printf("  %-32s %15s %15s %15s\n", label[mode][2], buf[0],
                       buf[1], buf[2]);
        }
}

/* One target line; returns 1 when met. */
static int print_target(const char *what, int budget, double value,
                        double target, const char *target_name)
{
        int met = value >= target;

        printf("  %-22s %5d tokens: %5.1f%% >= %s %5.1f%%: %s", what, budget,
               value, target_name, target, met ? "PASS" : "FAIL");
        if (!met)
                printf(" (short by %.1f points)", target - value);
        printf("\n");
        return met;
}

static void print_targets(run_t *r)
{
        int b;

        printf("\nTargets of the memory issue (informational):\n");
        for (b = EM_BUDGET_CNT - 1; b >= 0; b--) {
                r->targets_met +=
                    print_target("with query,", em_budgets[b],
                                 retention(r, &r->modes[EM_MODE_QUERY][b]),
                                 target_query[b], "target");
                r->target_cnt++;
        }
        for (b = EM_BUDGET_CNT - 1; b >= 0; b--) {
                r->targets_met += print_target(
                    "without query,", em_budgets[b],
                    retention(r, &r->modes[EM_MODE_NONE][b]),
                    retention(r, &r->bases[EM_BASE_LAST][b]), "last N");
                r->target_cnt++;
        }
        printf("  %d of %d targets met%s\n", r->targets_met, r->target_cnt,
               r->cfg.recall_implicit
                   ? " (recall.implicit is on: the issue compares without "
                     "query with it off)"
                   : "");
}

static void print_report(run_t *r)
{
        size_t i;
        int mode, kind;

        printf("eval-memory: %s\n", r->data_path);
        printf("  %zu conversations, %zu turns; %zu questions kept of %zu "
               "(%zu adversarial, %zu whose answer is not in the history "
               "left out)\n",
               r->d.convo_cnt, r->d.turn_cnt, r->d.q_cnt, r->d.qa_cnt,
               r->d.qa_adversarial, r->d.qa_absent);
        printf("  tokenizer %s; context.recent_verbatim %d, "
               "context.summarize_after %d, summarizer.max_tokens %d "
               "(%s), recall.implicit %d\n",
               cm_tokenizer_name(r->tk), r->cfg.recent_verbatim,
               r->cfg.summarize_after, r->cfg.summary_max_tokens,
               r->cfg.summarizer_kind, r->cfg.recall_implicit);
        if (r->fleet) {
                printf("\nSessions once settled (ingest %s %.1f s, questions "
                       "%.1f s):\n",
                       r->fo.paced ? "paced" : "in a burst", r->ingest_s,
                       r->ask_s);
                for (i = 0; i < r->d.convo_cnt; i++) {
                        const em_convo_t *c = &r->d.convos[i];
                        const em_session_state_t *s = &r->states[i];

                        printf("  %-28s %4zu turns in %2d sessions, history "
                               "%6lld tokens; stored %lld, folded %lld, "
                               "summary %d tokens\n",
                               c->user_id, c->turn_cnt, c->sessions,
                               (long long)c->history_tokens, s->stored,
                               s->folded, s->summary_tokens);
                }
        }
        printf("\nAnswer retention over %zu questions (mean tokens used):\n",
               r->d.q_cnt);
        printf("  %-32s %15d %15d %15d\n", "max_tokens", em_budgets[0],
               em_budgets[1], em_budgets[2]);
        for (mode = 0; r->fleet && mode < EM_MODE_CNT; mode++)
                print_row(r, mode_name[mode], r->modes[mode]);
        for (kind = 0; kind < EM_BASE_CNT; kind++)
                print_row(r, base_name[kind], r->bases[kind]);
        if (!r->fleet)
                return;
        for (mode = 0; mode < EM_MODE_CNT; mode++) {
                int b;

                for (b = 0; b < EM_BUDGET_CNT; b++) {
                        const cell_t *c = &r->modes[mode][b];

                        if (c->over || c->missing || c->errors || c->degraded)
                                printf("  WARNING: %s at %d: %lld over "
                                       "budget, %lld missing, %lld errors, "
                                       "%lld degraded\n",
                                       mode_name[mode], em_budgets[b], c->over,
                                       c->missing, c->errors, c->degraded);
                }
        }
        print_recall(r);
        print_targets(r);
}

/* JSON helpers: the report is a file of this tool, not a message of the
 * protocol. */
static void put(json_object *o, const char *k, json_object *v)
{
        json_object_object_add(o, k, v);
}

static json_object *jstr(const char *s)
{
        return json_object_new_string(s ? s : "");
}

static json_object *jint(long long v)
{
        return json_object_new_int64(v);
}

static json_object *jpct(const int64_t *v, size_t n, double p)
{
        return n ? jint(percentile(v, n, p)) : NULL;
}

static json_object *json_cell(const run_t *r, const cell_t *c, int fleet)
{
        json_object *o = json_object_new_object();

        put(o, "retention_pct", json_object_new_double(retention(r, c)));
        put(o, "answered", jint(c->answered));
        put(o, "questions", jint((long long)r->d.q_cnt));
        put(o, "mean_tokens", json_object_new_double(mean_tokens(c)));
        if (!fleet)
                return o;
        put(o, "replies", jint(c->n));
        put(o, "missing", jint(c->missing));
        put(o, "errors", jint(c->errors));
        put(o, "over_budget", jint(c->over));
        put(o, "cached", jint(c->cached));
        put(o, "degraded", jint(c->degraded));
        put(o, "recalled_mean",
            c->recalled_cnt ? json_object_new_double((double)c->recalled_sum /
                                                     (double)c->recalled_cnt)
                            : NULL);
        put(o, "recall_us_p50", jpct(c->recall_us, c->recall_cnt, 50));
        put(o, "recall_us_p99", jpct(c->recall_us, c->recall_cnt, 99));
        put(o, "build_us_p50", jpct(c->build_us, c->build_cnt, 50));
        put(o, "build_us_p99", jpct(c->build_us, c->build_cnt, 99));
        return o;
}

static json_object *json_settings(const run_t *r)
{
        json_object *s = json_object_new_object(), *a;
        char *redis = cm_url_redact(r->cfg.redis_url);
        char when[32];
        time_t now = time(NULL);
        struct tm tm;
        int b;

        gmtime_r(&now, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        put(s, "finished_at", jstr(when));
        put(s, "label", r->label ? jstr(r->label) : NULL);
        put(s, "data", jstr(r->data_path));
        put(s, "only", r->only ? jstr(r->only) : NULL);
        put(s, "conversations", jint((long long)r->d.convo_cnt));
        put(s, "turns", jint((long long)r->d.turn_cnt));
        put(s, "qa", jint((long long)r->d.qa_cnt));
        put(s, "qa_adversarial", jint((long long)r->d.qa_adversarial));
        put(s, "qa_answer_not_in_history", jint((long long)r->d.qa_absent));
        put(s, "questions", jint((long long)r->d.q_cnt));
        a = json_object_new_array();
        for (b = 0; b < EM_BUDGET_CNT; b++)
                json_object_array_add(a, jint(em_budgets[b]));
        put(s, "budgets", a);
        put(s, "tokenizer", jstr(cm_tokenizer_name(r->tk)));
        put(s, "recent_verbatim", jint(r->cfg.recent_verbatim));
        put(s, "summarize_after", jint(r->cfg.summarize_after));
        put(s, "summarizer_kind", jstr(r->cfg.summarizer_kind));
        put(s, "summary_max_tokens", jint(r->cfg.summary_max_tokens));
        put(s, "recall_implicit", jint(r->cfg.recall_implicit));
        put(s, "recall_summary_share", jint(r->cfg.recall_summary_share));
        put(s, "archive_max_messages", jint(r->cfg.archive_max_messages));
        put(s, "fleet", json_object_new_boolean(r->fleet));
        if (r->fleet) {
                put(s, "kafka_brokers", jstr(r->cfg.kafka_brokers));
                put(s, "redis", jstr(redis));
                put(s, "reply_topic", jstr(r->fo.reply_topic));
                put(s, "run_tag", jstr(r->fo.run_tag));
                put(s, "window", jint(r->fo.window));
                put(s, "ingest", jstr(r->fo.paced ? "paced" : "burst"));
                put(s, "ingest_s", json_object_new_double(r->ingest_s));
                put(s, "ask_s", json_object_new_double(r->ask_s));
        }
        free(redis);
        return s;
}

static json_object *json_flags(const run_t *r, size_t q, int is_mode, int k)
{
        json_object *a = json_object_new_array();
        int b;

        for (b = 0; b < EM_BUDGET_CNT; b++) {
                if (is_mode) {
                        const em_reply_t *x =
                            &r->replies[(q * EM_MODE_CNT + (size_t)k) *
                                            EM_BUDGET_CNT +
                                        (size_t)b];

                        json_object_array_add(a, x->got && !x->error
                                                     ? jint(x->out.answered)
                                                     : NULL);
                } else {
                        json_object_array_add(
                            a, jint(r->base[(q * EM_BASE_CNT + (size_t)k) *
                                                EM_BUDGET_CNT +
                                            (size_t)b]
                                        .answered));
                }
        }
        return a;
}

static int write_json(const run_t *r, char *errstr, size_t errstr_size)
{
        json_object *root = json_object_new_object(), *o, *a;
        size_t i;
        int mode, kind, b, ret;

        put(root, "settings", json_settings(r));
        if (r->fleet) {
                a = json_object_new_array();
                for (i = 0; i < r->d.convo_cnt; i++) {
                        const em_convo_t *c = &r->d.convos[i];

                        o = json_object_new_object();
                        put(o, "user_id", jstr(c->user_id));
                        put(o, "conversation_id", jstr(c->conv_id));
                        put(o, "turns", jint((long long)c->turn_cnt));
                        put(o, "locomo_sessions", jint(c->sessions));
                        put(o, "image_captions_left_out", jint(c->captions));
                        put(o, "history_tokens", jint(c->history_tokens));
                        put(o, "total", jint(r->states[i].total));
                        put(o, "stored", jint(r->states[i].stored));
                        put(o, "folded", jint(r->states[i].folded));
                        put(o, "summary_tokens",
                            jint(r->states[i].summary_tokens));
                        put(o, "summary",
                            r->states[i].summary ? jstr(r->states[i].summary)
                                                 : NULL);
                        put(o, "profile_name",
                            r->states[i].profile[0]
                                ? jstr(r->states[i].profile[0])
                                : NULL);
                        put(o, "profile_role",
                            r->states[i].profile[1]
                                ? jstr(r->states[i].profile[1])
                                : NULL);
                        put(o, "profile_interests",
                            r->states[i].profile[2]
                                ? jstr(r->states[i].profile[2])
                                : NULL);
                        json_object_array_add(a, o);
                }
                put(root, "sessions", a);
        }
        o = json_object_new_object();
        for (mode = 0; r->fleet && mode < EM_MODE_CNT; mode++) {
                json_object *m = json_object_new_object();

                for (b = 0; b < EM_BUDGET_CNT; b++) {
                        char k[16];

                        snprintf(k, sizeof(k), "%d", em_budgets[b]);
                        put(m, k, json_cell(r, &r->modes[mode][b], 1));
                }
                put(o, mode_key[mode], m);
        }
        for (kind = 0; kind < EM_BASE_CNT; kind++) {
                json_object *m = json_object_new_object();

                for (b = 0; b < EM_BUDGET_CNT; b++) {
                        char k[16];

                        snprintf(k, sizeof(k), "%d", em_budgets[b]);
                        put(m, k, json_cell(r, &r->bases[kind][b], 0));
                }
                put(o, base_key[kind], m);
        }
        put(root, "results", o);
        if (r->fleet) {
                o = json_object_new_object();
                put(o, "met", jint(r->targets_met));
                put(o, "of", jint(r->target_cnt));
                put(root, "targets", o);
        }
        a = json_object_new_array();
        for (i = 0; i < r->d.q_cnt; i++) {
                const em_question_t *q = &r->d.qs[i];

                o = json_object_new_object();
                put(o, "conversation_id", jstr(r->d.convos[q->convo].conv_id));
                put(o, "qa_index", jint((long long)q->qa_index));
                put(o, "category", jint(q->category));
                put(o, "question", jstr(q->question));
                put(o, "answer", jstr(q->answer));
                for (mode = 0; r->fleet && mode < EM_MODE_CNT; mode++)
                        put(o, mode_key[mode], json_flags(r, i, 1, mode));
                for (kind = 0; kind < EM_BASE_CNT; kind++)
                        put(o, base_key[kind], json_flags(r, i, 0, kind));
                json_object_array_add(a, o);
        }
        put(root, "questions", a);
        ret = json_object_to_file_ext(r->out_path, root,
                                      JSON_C_TO_STRING_PRETTY |
                                          JSON_C_TO_STRING_NOSLASHESCAPE);
        json_object_put(root);
        if (ret != 0)
                return cm_errf(errstr, errstr_size, "cannot write '%s': %s",
                               r->out_path, json_util_get_last_err());
        return 0;
}

static int parse_opt_int(const char *name, const char *s, long long min,
                         long long max, int *out)
{
        long long v;

        if (cm_parse_int(s, min, max, &v) == -1) {
                fprintf(stderr,
                        "eval-memory: %s must be an integer in [%lld, %lld], "
                        "got '%s'\n",
                        name, min, max, s);
                return -1;
        }
        *out = (int)v;
        return 0;
}

static int run_fleet(run_t *r, char *errstr, size_t errstr_size)
{
        int64_t t0;

        r->states = cm_calloc(r->d.convo_cnt, sizeof(*r->states));
        r->replies = cm_calloc(r->d.q_cnt * EM_MODE_CNT * EM_BUDGET_CNT,
                               sizeof(*r->replies));
        fprintf(stderr,
                "eval-memory: producing %zu events to '%s' at '%s' (%s), "
                "waiting for ingest and folding\n",
                r->d.turn_cnt, r->cfg.topic_events, r->cfg.kafka_brokers,
                r->fo.paced ? "paced: one turn per session at a time"
                            : "in a burst");
        if (em_fleet_ingest(&r->cfg, &r->fo, &r->d, r->tk, r->states,
                            &r->ingest_s, errstr, errstr_size) == -1)
                return -1;
        fprintf(stderr,
                "eval-memory: settled; asking %zu questions x %d budgets x "
                "%d modes\n",
                r->d.q_cnt, EM_BUDGET_CNT, EM_MODE_CNT);
        t0 = cm_mono_us();
        if (em_fleet_ask(&r->cfg, &r->fo, &r->d, r->replies, errstr,
                         errstr_size) == -1)
                return -1;
        r->ask_s = (double)(cm_mono_us() - t0) / 1e6;
        tally_replies(r);
        return 0;
}

int main(int argc, char **argv)
{
        run_t r;
        const char *conf_path = NULL;
        char errstr[1024] = "", uuid[37], tag[16];
        cm_log_level_t level;
        long long errors = 0;
        struct stat sb;
        size_t i;
        int opt, mode, kind, b, ret = 1;

        memset(&r, 0, sizeof(r));
        r.out_path = DEFAULT_OUT;
        r.user_prefix = "locomo";
        r.fleet = 1;
        r.fo.reply_topic = DEFAULT_REPLY_TOPIC;
        r.fo.paced = 1;
        r.fo.window = 32;
        r.fo.settle_timeout_s = 300;
        r.fo.reply_timeout_s = 60;
        cm_log_init("eval-memory");
        cm_config_init(&r.cfg);
        json_c_set_serialization_double_format("%.6g", JSON_C_OPTION_GLOBAL);
        while ((opt = getopt(argc, argv, "o:r:u:C:bw:s:t:L:nc:h")) != -1) {
                int bad = 0;

                switch (opt) {
                case 'o':
                        r.out_path = optarg;
                        break;
                case 'r':
                        r.fo.reply_topic = optarg;
                        break;
                case 'u':
                        r.user_prefix = optarg;
                        break;
                case 'C':
                        r.only = optarg;
                        break;
                case 'b':
                        r.fo.paced = 0;
                        break;
                case 'w':
                        bad =
                            parse_opt_int("-w", optarg, 1, 10000, &r.fo.window);
                        break;
                case 's':
                        bad = parse_opt_int("-s", optarg, 1, 86400,
                                            &r.fo.settle_timeout_s);
                        break;
                case 't':
                        bad = parse_opt_int("-t", optarg, 1, 86400,
                                            &r.fo.reply_timeout_s);
                        break;
                case 'L':
                        r.label = optarg;
                        break;
                case 'n':
                        r.fleet = 0;
                        break;
                case 'c':
                        conf_path = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        ret = 0;
                        goto out;
                default:
                        bad = -1;
                }
                if (bad) {
                        usage(stderr);
                        ret = 2;
                        goto out;
                }
        }
        if (argc - optind > 1) {
                usage(stderr);
                ret = 2;
                goto out;
        }
        r.data_path = optind < argc ? argv[optind] : DEFAULT_PATH;
        if (stat(r.data_path, &sb) == -1 && errno == ENOENT) {
                printf("eval-memory: '%s' is absent: nothing to evaluate "
                       "(LoCoMo's dev split; see "
                       "shared/data/locomo-dev/README.md, or set "
                       "EVAL_MEMORY_DATA)\n",
                       r.data_path);
                ret = 0;
                goto out;
        }
        if (cm_config_load(&r.cfg, conf_path, errstr, sizeof(errstr)) == -1)
                goto out;
        if (cm_log_level_parse(r.cfg.log_level, &level) == 0)
                cm_log_level = level;
        if (cm_tokenizer_get(r.cfg.tokenizer, &r.tk, errstr, sizeof(errstr)) ==
            -1)
                goto out;
        cm_uuid(uuid);
        snprintf(tag, sizeof(tag), "em%.8s", uuid);
        r.fo.run_tag = tag;
        cm_daemon_signals();
        if (em_data_load(r.data_path, r.user_prefix, r.only, r.tk, &r.d, errstr,
                         sizeof(errstr)) == -1 ||
            run_baselines(&r, errstr, sizeof(errstr)) == -1 ||
            (r.fleet && run_fleet(&r, errstr, sizeof(errstr)) == -1))
                goto out;
        print_report(&r);
        if (write_json(&r, errstr, sizeof(errstr)) == -1)
                goto out;
        printf("\nreport: %s\n", r.out_path);
        for (mode = 0; mode < EM_MODE_CNT; mode++) {
                for (b = 0; b < EM_BUDGET_CNT; b++)
                        errors +=
                            r.modes[mode][b].errors + r.modes[mode][b].missing;
        }
        if (errors > 0) {
                snprintf(errstr, sizeof(errstr),
                         "%lld requests got an error reply or none: the run "
                         "is not valid",
                         errors);
                goto out;
        }
        ret = 0;
out:
        if (ret == 1)
                fprintf(stderr, "eval-memory: FAILED: %s\n", errstr);
        for (mode = 0; mode < EM_MODE_CNT; mode++) {
                for (b = 0; b < EM_BUDGET_CNT; b++)
                        cell_release(&r.modes[mode][b]);
        }
        for (kind = 0; kind < EM_BASE_CNT; kind++) {
                for (b = 0; b < EM_BUDGET_CNT; b++)
                        cell_release(&r.bases[kind][b]);
        }
        free(r.base);
        free(r.replies);
        for (i = 0; r.states && i < r.d.convo_cnt; i++) {
                free(r.states[i].summary);
                free(r.states[i].profile[0]);
                free(r.states[i].profile[1]);
                free(r.states[i].profile[2]);
        }
        free(r.states);
        em_data_release(&r.d);
        cm_config_release(&r.cfg);
        return ret;
}
