/*
 * context: assembling the context text in the seed's layout, inside a token
 * budget.
 *
 * Layout (sections that are empty are left out):
 *
 *   User Profile: <name>, <role>
 *   Interests: <a>, <b>
 *   Summary: <summary>
 *   <blank line, only when one of the lines above is present>
 *   Relevant Earlier Messages:
 *   [2023-05-08] User: <content>
 *   Assistant: <content>
 *   <blank line, only when recent messages follow>
 *   Recent Messages:
 *   User: <content>
 *   Assistant: <content>
 *
 * Lines are joined with "\n"; the text has no trailing newline. Messages
 * recalled from the earlier ones are in chronological order (their order
 * in the candidate array), each behind its date [YYYY-MM-DD] (UTC) when
 * its ts is not 0.
 *
 * Budget: the returned text never has more than max_tokens tokens, counted
 * with the given tokenizer on the exact text returned. When it must cut, it
 * drops, in this order: the summary, trimmed from its start at a sentence
 * boundary (then dropped whole); the oldest recent messages, except the
 * newest user message; the profile and interests lines; finally it cuts the
 * newest user message itself from its start, on a UTF-8 boundary, behind
 * the marker "[…] ". The text is always valid UTF-8.
 *
 * Earlier messages (recall) only take what is left: recent messages, the
 * profile and the summary up to summary_max_tokens (all of it when that is
 * 0) come first, the recalled messages next, and the summary beyond
 * summary_max_tokens last. With a query, the candidates that match it
 * (recall.h) are taken in rank order, a hit with its neighbours as one
 * unit; a unit that does not fit is taken as its last message alone (the
 * answer of a question and its answer) when that fits and is not short
 * (recall.h's CM_RECALL_SHORT_BYTES), else skipped, and the next ones are
 * tried (up to 8 skips in a row); the summary is trimmed towards
 * summary_max_tokens only as far as the units taken need. A query that nothing
 * but repeats of the recent messages matches recalls nothing (what is not
 * relevant costs tokens and holds nothing asked for). Without a query, the
 * newest earlier messages fill the room left after the whole summary, newest
 * first, with the same skipping: what the last tokens of the history
 * would hold.
 * Nothing is recalled when the budget did not keep every recent message
 * whole with the profile. Without candidates the text is exactly what it
 * was before recall existed.
 */
#ifndef CM_CONTEXT_H
#define CM_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "message.h"
#include "profile.h"
#include "recall.h"
#include "tokens.h"

typedef struct cm_context_in {
        const cm_profile_t *profile; /* NULL or empty: no profile lines */
        const char *summary;         /* NULL or "": no summary line */
        const cm_message_t *msgs;    /* recent candidates, oldest first */
        size_t msg_cnt;
        int max_tokens; /* > 0 */
        const cm_tokenizer_t *tk;
        /* Recall (all optional, zeroed: none). */
        const char *query;           /* NULL or "": no query */
        const cm_message_t *earlier; /* recall candidates, oldest first,
                                        none of them among msgs */
        size_t earlier_cnt;
        /* An index over exactly earlier[0..earlier_cnt), for a caller that
         * caches it; NULL (or one of another count): built here. */
        const cm_recall_index_t *index;
        /* Tokens the summary line (with its break) may keep when it must
         * make room for recalled messages; 0: no cap, the summary never
         * yields to them. */
        int summary_max_tokens;
        /* Hits scoring below this % of the best hit's score are not
         * recalled (0: every hit, as the budget allows). */
        int min_score_share;
} cm_context_in_t;

typedef struct cm_context_out {
        char *text; /* owned */
        size_t text_len;
        int tokens;           /* tokens of text, <= max_tokens */
        char *summary;        /* owned: the summary as kept ("" if dropped) */
        cm_message_t *recent; /* owned copies of the messages kept, oldest
                                 first; a cut message holds its cut text */
        size_t recent_cnt;
        int profile_kept;       /* 1 if the profile lines are in text */
        int truncated;          /* 1 if anything was trimmed or dropped (the
                                   summary included, when trimmed to make room
                                   for recalled messages) */
        cm_message_t *recalled; /* owned copies of the earlier messages
                                   in text, chronological */
        size_t recalled_cnt;
        int64_t recall_us; /* time spent on recall (index, ranking and
                              fitting); 0 without candidates */
} cm_context_out_t;

/* Builds the context. Cannot fail (out of memory aborts). Release out with
 * cm_context_out_release(). */
void cm_context_build(const cm_context_in_t *in, cm_context_out_t *out);
void cm_context_out_release(cm_context_out_t *out);

/* Tokens of the full history msgs[0..cnt) in the same layout, with the
 * same profile and no summary (what the application would send without
 * chatmem). Cannot fail. */
int cm_context_full_tokens(const cm_profile_t *profile,
                           const cm_message_t *msgs, size_t cnt,
                           const cm_tokenizer_t *tk);

/*
 * The full history's tokens without its text, for a session whose older
 * messages are gone (folded into the summary).
 *
 * Every line of the history text starts with a role label, a letter, and
 * in cl100k_base and o200k_base no pre-token spans the start of such a
 * line: the pieces that can hold a '\n' ("\s*[\r\n]+", a punctuation run
 * followed by "[\r\n]*" or "[\r\n/]*") end before a letter, and
 * "\s+(?!\S)" is never the alternative chosen when the run ends in '\n'.
 * BPE encodes each pre-token on its own, so the history's tokens are the
 * sum of those of its parts cut right after each line break: the head
 * (the profile lines, "Recent Messages:" and its break) and each message
 * line with its break, except the newest line, which ends the text.
 * Ingest stores cm_context_line_tokens() per message and the session
 * keeps their sum; tests/test_budget.c checks the result against a
 * recount of the text.
 */

/* Tokens of "<Role>: <content>\n": msg's line and its line break, as the
 * line takes them in a history text that goes on after it. Cannot fail. */
int cm_context_line_tokens(const cm_message_t *msg, const cm_tokenizer_t *tk);

/* What the line break adds to cm_context_line_tokens(): its tokens minus
 * those of the line alone (0, 1, or less where trailing whitespace and the
 * break merge). Cannot fail. */
int cm_context_break_tokens(const cm_message_t *msg, const cm_tokenizer_t *tk);

/*
 * Tokens of the full history (as cm_context_full_tokens() would count its
 * text) from line_sum, the sum of cm_context_line_tokens() over every
 * message of the history, and newest, its newest message (newest->tokens
 * is its stored line tokens, or -1 to count them here). Exact for
 * cl100k_base and o200k_base. With newest NULL (not at hand: every
 * message folded, or an append came in between the reads) last_break, the
 * cm_context_break_tokens() of the newest message stored at ingest, takes
 * its place, which is just as exact; when that is unknown too (NULL: data
 * of an older version) the break is taken to cost no token, and the result
 * may be off by one. For "estimate" the sum of per-line estimates is never
 * below the estimate of the whole text, and at most one token per line above
 * it. A history without messages (line_sum 0, newest NULL) is the profile lines
 * alone. Cannot fail.
 */
int cm_context_full_tokens_stored(const cm_profile_t *profile, int64_t line_sum,
                                  const cm_message_t *newest,
                                  const int64_t *last_break,
                                  const cm_tokenizer_t *tk);

#endif
