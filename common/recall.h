/*
 * recall: which earlier messages of a session matter for a query.
 *
 * Lexical recall over a session's earlier messages (the archive and the
 * stored messages outside the recent window): an index built once over the
 * candidates, then searches that rank them against a query with BM25 on
 * the session's own term statistics.
 *
 * Terms (cm_recall_normalize() shows them): words are runs of ASCII
 * letters and digits and of non-ASCII word characters (cm_text_word_char;
 * kept as their bytes, never split), case-folded in ASCII, locale-free.
 * Punctuation separates words, except an apostrophe inside a word ("don't"
 * is "dont"; a possessive "'s" is dropped) and '.', ',', ':', '/', '-'
 * between two digits ("3.14", "2023-05-08", "7:30" are one term, "1,000"
 * is "1000"). An ordinal suffix goes ("20th" is "20"). Stop words (a
 * compact English list with chat filler: "the", "you", "yeah", "lol",
 * "remember"…) and one-letter words are dropped; numbers, dates and names
 * are terms. Words of letters only are stemmed, lightly: plural and third
 * person -s/-es/-ies, -ing, -ed, -ly (not -ily), a final consonant-y and a
 * final e, so that "paint", "paints", "painting", "painted" meet, as do
 * "hike"/"hiking", "party"/"parties", "movie"/"movies". Stems are keys,
 * not words ("hiking" is "hik").
 *
 * A candidate whose ts is known also has the terms of its date's month
 * and year ("July", "2022"), for the questions that name a time; they
 * count for ranking, not for repeats.
 *
 * A hit is a candidate sharing at least one term with the query. Hits come
 * back as units, in rank order: the hit and the neighbours its meaning
 * depends on, a contiguous run of candidates:
 * - an answer (a hit that is no question) brings the question before it:
 *   the previous message, by the other role, when it ends with '?'
 *   (spaces, closing quotes and brackets and emoji aside) or is short
 *   without a single term ("And you", "How so");
 * - a short hit ("Yes, Paris!") brings the message before it;
 * - a question hit brings the answer right after it: the next message, by
 *   the other role, whatever its length (what the question asked for is
 *   there).
 * Short: at most CM_RECALL_SHORT_TERMS terms and CM_RECALL_SHORT_BYTES
 * bytes. No candidate is in two units, and no unit holds a near-repeat
 * (term sets with a Jaccard similarity of at least 0.8) of a message
 * already in a better unit or of one of the recent messages given to the
 * search: a hit that is one is skipped, a neighbour that is one is left
 * out; but a question asked again (a repeat of the newest user message,
 * say) still brings the answer it had, alone.
 *
 * An index changes only through cm_recall_index_extend(): any number of
 * threads may search it at once, none while it is extended.
 */
#ifndef CM_RECALL_H
#define CM_RECALL_H

#include <stddef.h>
#include <stdint.h>

#include "message.h"
#include "util.h"

#define CM_RECALL_SHORT_TERMS 2
#define CM_RECALL_SHORT_BYTES 40

typedef struct cm_recall_index cm_recall_index_t;

/* One unit of a search: msgs[first..last] (chronological, first <= hit <=
 * last), the hit and the neighbours it brings. */
typedef struct cm_recall_unit {
        size_t hit;   /* the candidate that matched the query (for a
                         question asked again, its answer) */
        size_t first; /* the unit's first candidate */
        size_t last;  /* and its last, inclusive */
        double score; /* the hit's score, > 0; higher ranks first */
} cm_recall_unit_t;

/*
 * Indexes the candidates msgs[0..cnt), oldest first (cnt may be 0, msgs
 * then NULL). The index keeps the pointer msgs and reads msgs[i].role,
 * .content and .content_len when searched: the array and the messages must
 * outlive it, unchanged. Destroy with cm_recall_index_destroy(). Cannot
 * fail (out of memory aborts).
 */
cm_recall_index_t *cm_recall_index_new(const cm_message_t *msgs, size_t cnt);

/*
 * Indexes the candidates that were added at the end: msgs[0..cnt) are the
 * candidates now, the first cm_recall_index_count(ix) of them the ones
 * already indexed (the same messages, the array possibly moved). The index
 * keeps msgs from now on. Costs what indexing the new ones costs, so that
 * a caller that caches the index of a session pays only for the messages
 * that joined it. When cnt is below the count (the oldest candidates went),
 * the index is built anew. Not while the index is searched. Cannot fail.
 */
void cm_recall_index_extend(cm_recall_index_t *ix, const cm_message_t *msgs,
                            size_t cnt);

/* Frees the index (not the messages). Accepts NULL. */
void cm_recall_index_destroy(cm_recall_index_t *ix);

/* The number of candidates indexed, and the array they are in. Cannot
 * fail. */
size_t cm_recall_index_count(const cm_recall_index_t *ix);
const cm_message_t *cm_recall_index_msgs(const cm_recall_index_t *ix);

/* A search in progress: its units, best first, one at a time. */
typedef struct cm_recall_search cm_recall_search_t;

/*
 * Ranks the candidates of ix against query[0..query_len) (any bytes;
 * invalid UTF-8 separates words). recent[0..recent_cnt) are the messages
 * already in the context (may be NULL when recent_cnt is 0): their
 * near-repeats are left out. Ranking: BM25 (k1 1.2, b 0.75) with IDF and
 * the average length from the candidates, times a small bonus for each
 * further distinct query term matched; then each hit adds the scores of
 * the candidates up to 3 on either side, weighted 0.7 per step (0.7,
 * 0.49, 0.34): a turn of a conversation shares the topic of the turns
 * around it. Ties go to the newer hit. The
 * search reads ix and recent until destroyed; it ranks and forms units
 * lazily, as cm_recall_search_next() asks for them. Destroy with
 * cm_recall_search_destroy(). Cannot fail (out of memory aborts).
 */
cm_recall_search_t *cm_recall_search_new(const cm_recall_index_t *ix,
                                         const char *query, size_t query_len,
                                         const cm_message_t *recent,
                                         size_t recent_cnt);

/* The number of hits: candidates sharing a term with the query (0 for a
 * query of stop words only, or an empty index). Cannot fail. */
size_t cm_recall_search_hits(const cm_recall_search_t *rs);

/* Writes the next unit, in rank order, to *unit and returns 1; returns 0
 * when there is none left. Cannot fail. */
int cm_recall_search_next(cm_recall_search_t *rs, cm_recall_unit_t *unit);

/* Frees the search. Accepts NULL. */
void cm_recall_search_destroy(cm_recall_search_t *rs);

/* The UTC calendar date of ts (ms since the epoch, any sign; the
 * proleptic Gregorian calendar): what the context prints before a recalled
 * message and what recall indexes of it. Cannot fail. */
void cm_recall_date(int64_t ts, int64_t *year, int *month, int *day);

/* Appends the terms of text[0..len), as the index and the search see them,
 * to out, each followed by one space (stems, in text order, repeats
 * kept), and returns their number. For tests and tuning. Cannot fail. */
size_t cm_recall_normalize(const char *text, size_t len, cm_buf_t *out);

#endif
