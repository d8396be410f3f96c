/*
 * summarize: folding old messages into a running summary.
 *
 * Incremental: the previous summary plus the newly folded messages make the
 * new summary; the whole history is never re-read.
 *
 * "extractive" (the default) is embedded and deterministic: it keeps facts,
 * not whole answers. Of the user, the clauses that state something about
 * them or carry a name, a number, a date, a place or a decision, and the
 * questions they ask; of the assistant, only the facts it adds (numbers,
 * dates, decisions, new names). It drops greetings, filler, opinions and
 * politeness, removes near-repeats, writes "User …" in the third person,
 * and stays within max_tokens counted with tk.
 */
#ifndef CM_SUMMARIZE_H
#define CM_SUMMARIZE_H

#include <stddef.h>

#include "codec.h"
#include "config.h"
#include "tokens.h"

typedef struct cm_fold_in {
        const char *summary;      /* previous summary; NULL or "" for none */
        const cm_message_t *msgs; /* messages to fold, oldest first */
        size_t msg_cnt;
        int max_tokens; /* summary_max_tokens, > 0 */
        const cm_tokenizer_t *tk;
} cm_fold_in_t;

/*
 * Extractive fold. Returns the new summary as a heap string (caller frees),
 * valid UTF-8, with at most in->max_tokens tokens; "" when nothing in the
 * input carries a fact. Deterministic: the same input gives the same
 * output. Cannot fail.
 */
char *cm_extractive_fold(const cm_fold_in_t *in);

/*
 * The summarizer a worker uses, chosen by summarizer.kind: "extractive" or
 * "llm". The llm one falls back to extractive for any fold the endpoint
 * fails (HTTP error, timeout, malformed or empty answer, refusal, open
 * circuit), so a fold always yields a summary and never an error text.
 */
typedef struct cm_summarizer cm_summarizer_t;

/* Creates the configured summarizer. The LLM API key is read from the
 * environment variable named by llm.api_key_env. On error (unknown kind,
 * bad temperature) returns NULL and writes the reason to errstr. */
cm_summarizer_t *cm_summarizer_new(const cm_config_t *cfg,
                                   const cm_tokenizer_t *tk, char *errstr,
                                   size_t errstr_size);
void cm_summarizer_destroy(cm_summarizer_t *sz);

/* Folds msgs into prev. Returns a heap string (caller frees). Sets
 * *fallback to 1 when the llm summarizer failed and extractive was used.
 * Cannot fail. */
char *cm_summarizer_fold(cm_summarizer_t *sz, const char *prev,
                         const cm_message_t *msgs, size_t msg_cnt,
                         int *fallback);

/* Folds so far that fell back to extractive. */
unsigned long cm_summarizer_fallbacks(const cm_summarizer_t *sz);

#endif
