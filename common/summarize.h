/*
 * summarize: folding old messages into a running summary.
 *
 * Incremental: the previous summary plus the newly folded messages make the
 * new summary; the whole history is never re-read.
 *
 * "extractive" (the default) is embedded and deterministic: it keeps the
 * sentences that carry facts (names, numbers, dates, places, decisions,
 * questions asked, topics), drops greetings and filler, removes
 * near-repeats, and stays within max_tokens counted with tk.
 */
#ifndef CM_SUMMARIZE_H
#define CM_SUMMARIZE_H

#include <stddef.h>

#include "codec.h"
#include "tokens.h"

typedef struct cm_fold_in {
        const char *summary;      /* previous summary; NULL or "" for none */
        const cm_message_t *msgs; /* messages to fold, oldest first */
        size_t msg_cnt;
        int max_tokens;           /* summary_max_tokens, > 0 */
        const cm_tokenizer_t *tk;
} cm_fold_in_t;

/*
 * Extractive fold. Returns the new summary as a heap string (caller frees),
 * valid UTF-8, with at most in->max_tokens tokens; "" when nothing in the
 * input carries a fact. Deterministic: the same input gives the same
 * output. Cannot fail.
 */
char *cm_extractive_fold(const cm_fold_in_t *in);

#endif
