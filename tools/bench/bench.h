/*
 * bench: what the modes of chatmem-bench share.
 *
 * Each mode is one run_<mode>() in <mode>.c that takes the loaded
 * configuration and the options, prints its result as one JSON line per
 * measurement on stdout (ops/bench.sh and ops/bench_report.py read them),
 * its progress on stderr, and returns the exit status. Messages go through
 * the codec like every chatmem program's: the bench fills structs and
 * calls it.
 */
#ifndef CM_BENCH_H
#define CM_BENCH_H

#include <stdint.h>
#include <stdio.h>

#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "config.h"
#include "context.h"
#include "tokens.h"
#include "util.h"

/* The options of every mode (main.c parses them). */
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
        long long warmup;        /* context: seconds of sending at the rate
                                    before the clock starts, not recorded */
        long long timeout;       /* seconds to wait for acks / replies */
        long long iterations;    /* build: builds to time */
        long long linger_ms;     /* -1: chatmem's default */
        long long wait_summary;  /* ingest: also wait for this many summaries */
        const char *reply_topic; /* context: NULL = the configured one */
        const char *req_prefix;  /* context: request_id = <prefix><n> */
        int query;               /* context: every request has a query */
        const char *lengths;     /* cost: "5,10,20,50" */
        double price;            /* cost: $ per 1M input tokens */
        long long users;         /* cost */
        long long per_day;       /* cost: messages per user per day */
        const char *sizes;       /* archive: "100,1000,10000" archived
                                    messages per session */
        long long samples;       /* archive: sessions per size */
} bench_opts_t;

/* The modes. Each returns the process exit status. */
int run_ingest(const cm_config_t *cfg, const bench_opts_t *o);
int run_context(const cm_config_t *cfg, const bench_opts_t *o);
int run_build(const cm_config_t *cfg, const cm_tokenizer_t *tk,
              const bench_opts_t *o);
int run_cost(const cm_config_t *cfg, const cm_tokenizer_t *tk,
             const bench_opts_t *o);
int run_archive(const cm_config_t *cfg, const bench_opts_t *o);

/* Seconds on the monotonic clock. Cannot fail. */
static inline double now_s(void)
{
        return (double)cm_mono_us() / 1e6;
}

/* Delivery report callback of the bench's producers: counts the failed
 * deliveries in the atomic_llong that is the producer's opaque, and logs
 * the first few. */
void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

/*
 * conv.c: conversations in the seed's style. The user introduces
 * themself ("Hi, I'm Sumit Pandya, full stack developer") and asks
 * programming questions that get long answers.
 */

/* The name of topic n of the bench's conversations ("closures"...).
 * Cannot fail. */
const char *conv_topic(long long n);
/* Writes message n of the conversation into b (reset first) and returns
 * its role. Message 0 introduces the user; then questions and answers
 * alternate. Cannot fail. */
cm_role_t conv_msg(long long n, cm_buf_t *b);

/* A conversation of cnt messages and the state chatmem keeps for it: the
 * profile extracted from the user's messages and the summary of all but the
 * newest recent ones, folded in steps as the summarizer does. */
typedef struct conv_session {
        cm_message_t *msgs; /* owned; seq, ts and tokens set */
        size_t cnt;
        cm_profile_t profile;
        char *summary; /* owned, never NULL */
} conv_session_t;

/* Makes the session of a cnt-message conversation. Cannot fail. */
void conv_session_init(conv_session_t *cs, size_t cnt, const cm_config_t *cfg,
                       const cm_tokenizer_t *tk);
void conv_session_release(conv_session_t *cs);

/* Fills in (zeroed first) to build the context of the session from msgs
 * (msg_cnt of them, the newest), within cfg's max_tokens. in borrows from
 * cs and msgs. Cannot fail. */
void conv_context_in(const conv_session_t *cs, const cm_message_t *msgs,
                     size_t msg_cnt, const cm_config_t *cfg,
                     const cm_tokenizer_t *tk, cm_context_in_t *in);

/* hist.c: log-bucketed latency histogram (HDR-style, ~1.6% precision). */
#define HIST_SUB 64
#define HIST_EXP 40
#define HIST_LEN (2 * HIST_SUB + HIST_EXP * HIST_SUB)

typedef struct hist {
        uint64_t counts[HIST_LEN];
        uint64_t total;
        int64_t max;
} hist_t;

/* Records v (negative counts as 0). Cannot fail. */
void hist_record(hist_t *h, int64_t v);
/* The pct-th percentile (0 when empty), at most the maximum. */
int64_t hist_pct(const hist_t *h, double pct);

/* redis.c: how much of a run Redis holds. */

/* Connects to the Redis of url. On error returns NULL and writes the
 * reason to errstr. Free with redisFree(). */
redisContext *redis_connect(const char *url, char *errstr, size_t errstr_size);

/* Counts what Redis holds for the sessions "<tag>u<i>:default" (i <
 * sessions): out[0] the sum of their messages, and when full, out[1] the
 * sessions with a summary and out[2] the users with a profile name (else
 * 0). Returns 0, or -1 with the reason in errstr. */
int redis_count(redisContext *rc, const char *prefix, const char *tag,
                long long sessions, int full, long long out[3], char *errstr,
                size_t errstr_size);

/* Reads the fleet counter ingest_applied (P:stats) into *out. Returns 0,
 * or -1 with the reason in errstr. */
int redis_applied(redisContext *rc, const char *prefix, long long *out,
                  char *errstr, size_t errstr_size);

#endif
