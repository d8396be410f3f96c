/*
 * memory: the parts of `make eval-memory` (tests/eval/eval_memory.c says
 * what it measures and how).
 *
 *   memory_data.c      LoCoMo's conversations as chatmem sessions, the
 *                      questions kept, the normalisation of answers
 *   memory_baseline.c  the in-process baselines: the last N tokens of the
 *                      history, plain BM25 over the turns plus the last 3
 *   memory_fleet.c     the real fleet through the wire contract: events to
 *                      chat.events, the wait until Redis has settled,
 *                      context requests and their replies
 *
 * Prefix em_ ("eval memory"). Every function that can fail returns -1 and
 * writes the reason to errstr; out of memory aborts (cm_malloc).
 */
#ifndef CM_EVAL_MEMORY_H
#define CM_EVAL_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "config.h"
#include "message.h"
#include "tokens.h"

/* The budgets every question is asked at (max_tokens). */
#define EM_BUDGET_CNT 3
extern const int em_budgets[EM_BUDGET_CNT]; /* 500, 1000, 2000 */

/* Request modes: with query = the question, and without query. */
enum { EM_MODE_QUERY = 0, EM_MODE_NONE, EM_MODE_CNT };

/* The baselines. */
enum { EM_BASE_LAST = 0, EM_BASE_BM25, EM_BASE_CNT };

/* How many of the newest turns the BM25 baseline always keeps. */
#define EM_BM25_LAST 3

/* The words of a text for BM25: lowercase [a-z0-9] runs (em_norm()). */
typedef struct em_vocab {
        char **words;  /* by id */
        uint32_t *df;  /* turns holding each word */
        size_t cnt;    /* words */
        uint32_t *map; /* open addressing: id + 1, 0 = empty */
        size_t map_cap;
} em_vocab_t;

typedef struct em_turn {
        cm_message_t msg; /* role, content "<Speaker>: <text>", ts */
        int line_tokens;  /* cm_context_line_tokens(): "<Role>: ...\n" */
        int break_tokens; /* what the line break adds (the newest line of
                             a text has none) */
        uint32_t *term;   /* distinct word ids */
        uint32_t *tf;     /* their counts in the turn */
        size_t term_cnt;
        size_t word_cnt; /* words in the turn (BM25 document length) */
} em_turn_t;

typedef struct em_convo {
        char *sample_id;
        char user_id[CM_ID_MAX + 1];
        char conv_id[CM_ID_MAX + 1];
        em_turn_t *turns; /* in order: session by session, turn by turn */
        size_t turn_cnt;
        int sessions;           /* LoCoMo sessions (each with its date) */
        int captions;           /* turns with an image caption (left out) */
        int64_t history_tokens; /* the whole history as lines, exact */
        char *history_norm;     /* em_norm() of the turn texts, ' '-joined */
        em_vocab_t vocab;
        double avg_words; /* mean word_cnt */
} em_convo_t;

typedef struct em_question {
        size_t convo;    /* index in em_data_t.convos */
        size_t qa_index; /* index in the conversation's qa list */
        int category;
        char *question;
        char *answer;      /* as in the data (a number as its text) */
        char *answer_norm; /* em_norm(answer), never "" */
} em_question_t;

typedef struct em_data {
        em_convo_t *convos;
        size_t convo_cnt;
        em_question_t *qs; /* the questions kept */
        size_t q_cnt;
        size_t qa_cnt;         /* qa entries in the data */
        size_t qa_adversarial; /* category 5: left out */
        size_t qa_absent;      /* answer not in the history: left out */
        size_t turn_cnt;
} em_data_t;

/*
 * The normalised form of s[0..len): ASCII letters lowercased, digits kept,
 * every other byte a space, runs of spaces collapsed, none at either end.
 * Returns a heap string. Cannot fail.
 */
char *em_norm(const char *s, size_t len);

/* The id of the word w[0..len) in v, or UINT32_MAX when v lacks it.
 * Cannot fail. */
uint32_t em_vocab_find(const em_vocab_t *v, const char *w, size_t len);

/*
 * Reads LoCoMo's JSON at path into d: conversation i becomes the session
 * <user_prefix>-<sample_id>:<sample_id> (user id and conversation id
 * checked as ids), with exact token counts by tk. only: NULL for every
 * conversation, else a comma-separated list of the sample ids to keep
 * ("conv-26,conv-30"). On error (none kept included) returns -1 with the
 * reason in errstr; d is then empty. Release with em_data_release()
 * (accepts a zeroed struct).
 */
int em_data_load(const char *path, const char *user_prefix, const char *only,
                 const cm_tokenizer_t *tk, em_data_t *d, char *errstr,
                 size_t errstr_size);
void em_data_release(em_data_t *d);

/* A context text and how it did on one question. */
typedef struct em_outcome {
        int answered; /* 1: the normalised answer occurs in the text */
        int tokens;
} em_outcome_t;

/*
 * The baseline kind (EM_BASE_*) for question q at budget max_tokens:
 * builds its text (the lines "<Role>: <content>" joined with "\n", as in
 * the context), recounts it with tk, and fills out. On error (the recount
 * differs from the sum of line tokens, or exceeds the budget: a fault of
 * this harness) returns -1 with the reason in errstr.
 */
int em_baseline(const em_data_t *d, const em_question_t *q, int kind,
                int max_tokens, const cm_tokenizer_t *tk, em_outcome_t *out,
                char *errstr, size_t errstr_size);

/* What the fleet run is told. */
typedef struct em_fleet_opts {
        const char *reply_topic; /* must match context.reply_topics */
        const char *run_tag;     /* unique per run: event and request ids */
        int paced;               /* 1: one turn per session at a time */
        int window;              /* context requests in flight */
        int settle_timeout_s;    /* ingest and folding, in all */
        int reply_timeout_s;     /* longest wait without any reply */
} em_fleet_opts_t;

/* What Redis holds of a session once settled. */
typedef struct em_session_state {
        long long total;  /* meta 'total': messages ever appended */
        long long stored; /* messages in the list */
        long long folded; /* summary 'folded' */
        int summary_tokens;
        char *summary; /* the summary text (heap; NULL: none) */
        /* The user's profile fields as stored (heap; NULL: none):
         * name, role, interests (a JSON array). */
        char *profile[3];
} em_session_state_t;

/* One context reply. */
typedef struct em_reply {
        int got;   /* 1 once it came */
        int error; /* 1: an error reply, or one that breaks the contract */
        int cached;
        int degraded;
        em_outcome_t out;
        int64_t build_us;
        int64_t recalled;  /* metadata.recalled, -1 when absent */
        int64_t recall_us; /* metadata.recall_us, -1 when absent */
} em_reply_t;

/*
 * Produces every turn of d to cfg->topic_events, keyed by session (paced:
 * turn k of every session once the fleet has settled after turn k - 1;
 * else all at once), and waits until Redis holds each session whole and
 * folded down (total = turns, at most recent_verbatim + summarize_after
 * messages stored, no pending compaction job). states[i] (d->convo_cnt
 * entries) gets what Redis holds of conversation i, *ingest_s the seconds
 * it took. On error returns -1 with the reason in errstr.
 */
int em_fleet_ingest(const cm_config_t *cfg, const em_fleet_opts_t *o,
                    const em_data_t *d, const cm_tokenizer_t *tk,
                    em_session_state_t *states, double *ingest_s, char *errstr,
                    size_t errstr_size);

/*
 * Asks every question of d in every mode at every budget:
 * replies[(q * EM_MODE_CNT + mode) * EM_BUDGET_CNT + budget]. On error
 * (undeliverable request, no reply within the timeout, stop asked)
 * returns -1 with the reason in errstr; the replies that came are filled.
 */
int em_fleet_ask(const cm_config_t *cfg, const em_fleet_opts_t *o,
                 const em_data_t *d, em_reply_t *replies, char *errstr,
                 size_t errstr_size);

#endif
