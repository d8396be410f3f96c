/*
 * llm: a client for any OpenAI-compatible chat completions endpoint
 * (Groq, OpenAI, vLLM, llama.cpp server...) that folds messages into a
 * running summary, through libcurl.
 *
 * One cm_llm_t owns one CURL easy handle, reused across calls so that the
 * connection is kept alive. A transport error (timeout, refused or reset
 * connection, TLS error, oversized reply) destroys the handle and the next
 * attempt starts from a new one: a failed connection is rebuilt, never
 * reused. A cm_llm_t is not thread-safe: use one per thread.
 *
 * Failure handling of one cm_llm_fold() call:
 *   - retried, with exponential backoff (backoff_base_ms * 2^n, capped at
 *     backoff_max_ms, "equal jitter": a random wait in [d/2, d]): HTTP 429,
 *     HTTP 5xx, timeouts and connection errors, at most max_retries times;
 *   - Retry-After (delta-seconds) on 429 and 503 is honoured: the wait is
 *     the larger of the backoff and Retry-After. When that wait exceeds
 *     30 s or the call's remaining budget, the call fails at once rather
 *     than waiting less than the server asked (retrying early would only
 *     earn another 429; the caller has a fallback);
 *   - not retried: any other 4xx, and a 2xx whose body is not a usable
 *     summary (malformed JSON, no choices, missing or blank content, a
 *     refusal). The same prompt would most likely get the same answer, and
 *     the caller falls back to its extractive summarizer at once;
 *   - the budget of one call is (max_retries + 1) * timeout_ms +
 *     max_retries * backoff_max_ms; no attempt or wait runs past it.
 *
 * Circuit breaker: after breaker_failures consecutive failed calls (any
 * cause, retries included in one call) the breaker opens and calls fail
 * at once with "circuit open", without a request, until
 * breaker_cooldown_ms has passed. The next call is then a trial
 * (half-open): success closes the breaker, failure opens it for another
 * cooldown. breaker_failures <= 0 disables the breaker.
 *
 * Time: the call budget, the waits between attempts and the breaker's
 * cooldown run on the client's clock (cm_llm_clock_t): by default the
 * monotonic clock and a real sleep; a test injects its own, so that it
 * asserts the decisions (how long a wait, when the breaker half-opens)
 * without sleeping or measuring. libcurl's per-attempt timeout is always
 * real time.
 *
 * Secrets: the API key is sent only in the Authorization header. It never
 * appears in a log line or in errstr (an error text from the server is
 * scrubbed of it), curl's verbose mode is never enabled, and the key is
 * wiped from memory by cm_llm_destroy().
 *
 * libcurl: cm_llm_new() calls curl_global_init() once per process
 * (pthread_once). The program calls curl_global_cleanup() at teardown,
 * after the last cm_llm_destroy().
 */
#ifndef CM_LLM_H
#define CM_LLM_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

/* A clock for the client: now_us() returns monotonic microseconds;
 * sleep_us() waits us (> 0) microseconds, in whatever sense the clock
 * gives that (a fake clock just moves its time on). Both are called with
 * opaque, from the thread that calls cm_llm_fold(). */
typedef struct cm_llm_clock {
        int64_t (*now_us)(void *opaque);
        void (*sleep_us)(void *opaque, int64_t us);
        void *opaque;
} cm_llm_clock_t;

typedef struct cm_llm_conf {
        /* e.g. "https://api.groq.com/openai" or "http://127.0.0.1:8080";
         * the client appends /v1/chat/completions (only /chat/completions
         * when base_url already ends in /v1, as vendors document it) */
        const char *base_url;
        const char *model;
        const char *api_key; /* may be NULL: no Authorization header */
        double temperature;
        int timeout_ms;      /* per attempt, > 0 */
        int max_retries;     /* >= 0 */
        int backoff_base_ms; /* >= 0 */
        int backoff_max_ms;  /* >= backoff_base_ms */
        /* consecutive failed calls that open the breaker; <= 0: none */
        int breaker_failures;
        int breaker_cooldown_ms;
        /* NULL: cm_mono_us() and nanosleep(). Else both functions must be
         * set; the struct is copied, opaque must outlive the client. */
        const cm_llm_clock_t *clock;
} cm_llm_conf_t;

typedef struct cm_llm cm_llm_t;

typedef struct cm_llm_stats {
        unsigned long calls;        /* cm_llm_fold() calls */
        unsigned long retries;      /* attempts after the first of a call */
        unsigned long failures;     /* calls that returned -1 (also those
                                       refused by the open breaker) */
        unsigned long breaker_open; /* times the breaker opened */
} cm_llm_stats_t;

/*
 * Creates a client. conf is copied: the caller keeps ownership of it and of
 * its strings. Does not connect. On error (missing base_url or model, bad
 * number, a clock without both functions, libcurl cannot start) returns
 * NULL and writes the reason to errstr. Destroy with cm_llm_destroy().
 */
cm_llm_t *cm_llm_new(const cm_llm_conf_t *conf, char *errstr,
                     size_t errstr_size);

/* Frees the client and closes its connection. Accepts NULL. */
void cm_llm_destroy(cm_llm_t *llm);

/*
 * Folds msgs[0..msg_cnt) (oldest first) into prev_summary (NULL or "" for
 * none), asking for at most max_tokens words (> 0). The request's own
 * max_tokens is set a bit above that, since a word is about 1.3 LLM
 * tokens; the caller enforces its exact budget with its tokenizer.
 * Blocks for at most the budget described above.
 *
 * The prompt: a system message asking to update the running summary with
 * the new lines, keep facts (names, numbers, dates, places, decisions,
 * questions), write in the third person, use at most max_tokens words and
 * return only the summary; a user message "Current summary:\n<prev or
 * (none)>\n\nNew lines:\nUser: ...\nAssistant: ..." with one line per
 * message (line breaks inside a message become spaces).
 *
 * On success returns 0 and stores in *out the new summary (a leading
 * "Summary:" label dropped), trimmed, non-empty, valid UTF-8 and not a
 * refusal, as a heap string the caller frees. On error
 * returns -1, sets *out to NULL and writes the reason to errstr; no text
 * from the endpoint is ever returned as a summary on error.
 */
int cm_llm_fold(cm_llm_t *llm, const char *prev_summary,
                const cm_message_t *msgs, size_t msg_cnt, int max_tokens,
                char **out, char *errstr, size_t errstr_size);

/*
 * The parser of cm_llm_fold(): extracts the summary from buf[0..len), the
 * body of a 2xx reply of /v1/chat/completions (any bytes). The summary is
 * the content of choices[0].message, a leading "Summary:" label dropped.
 * On success returns 0 and stores in *summary the summary, trimmed,
 * non-empty and valid UTF-8, as a heap string the caller frees. On error
 * (malformed JSON, no choice or content, blank content, a refusal: the
 * message's refusal field, or content opening with "I'm sorry", "As an
 * AI"...) returns -1, leaves *summary unchanged and writes the reason to
 * errstr.
 */
int cm_llm_reply_parse(const char *buf, size_t len, char **summary,
                       char *errstr, size_t errstr_size);

/* Copies the counters. Cannot fail. */
void cm_llm_stats(const cm_llm_t *llm, cm_llm_stats_t *stats);

#endif
