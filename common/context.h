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
 *   Recent Messages:
 *   User: <content>
 *   Assistant: <content>
 *
 * Lines are joined with "\n"; the text has no trailing newline.
 *
 * Budget: the returned text never has more than max_tokens tokens, counted
 * with the given tokenizer on the exact text returned. When it must cut, it
 * drops, in this order: the summary, trimmed from its start at a sentence
 * boundary (then dropped whole); the oldest recent messages, except the
 * newest user message; the profile and interests lines; finally it cuts the
 * newest user message itself from its start, on a UTF-8 boundary, behind
 * the marker "[…] ". The text is always valid UTF-8.
 */
#ifndef CM_CONTEXT_H
#define CM_CONTEXT_H

#include <stddef.h>

#include "codec.h"
#include "tokens.h"

typedef struct cm_context_in {
        const cm_profile_t *profile; /* NULL or empty: no profile lines */
        const char *summary;         /* NULL or "": no summary line */
        const cm_message_t *msgs;    /* recent candidates, oldest first */
        size_t msg_cnt;
        int max_tokens; /* > 0 */
        const cm_tokenizer_t *tk;
} cm_context_in_t;

typedef struct cm_context_out {
        char *text; /* owned */
        size_t text_len;
        int tokens;           /* tokens of text, <= max_tokens */
        char *summary;        /* owned: the summary as kept ("" if dropped) */
        cm_message_t *recent; /* owned copies of the messages kept, oldest
                                 first; a cut message holds its cut text */
        size_t recent_cnt;
        int profile_kept; /* 1 if the profile lines are in text */
        int truncated;    /* 1 if anything was trimmed or dropped */
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

#endif
