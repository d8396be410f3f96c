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
 * A hit is a candidate sharing at least one term with the query. Hits come
 * back as units, in rank order: the hit and the neighbours its meaning
 * depends on, a contiguous run of candidates:
 * - an answer brings the question before it: the previous message, by the
 *   other role, when it ends with '?' (spaces, closing quotes and brackets
 *   and emoji aside) or is short;
 * - a short hit ("Yes, Paris!") brings the message before it;
 * - a question hit brings a short answer right after it, by the other role.
 * Short: at most CM_RECALL_SHORT_TERMS terms and CM_RECALL_SHORT_BYTES
 * bytes. No candidate is in two units, and no unit holds a near-repeat
 * (term sets with a Jaccard similarity of at least 0.8) of a message
 * already in a better unit or of one of the recent messages given to the
 * search: a hit that is one is skipped, a neighbour that is one is left
 * out.
 *
 * An index is immutable once built: any number of threads may search it
 * at once.
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
        size_t hit;   /* the candidate that matched the query */
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

/* Frees the index (not the messages). Accepts NULL. */
void cm_recall_index_destroy(cm_recall_index_t *ix);

/* The number of candidates indexed, and the array they are in. Cannot
 * fail. */
size_t cm_recall_index_count(const cm_recall_index_t *ix);
const cm_message_t *cm_recall_index_msgs(const cm_recall_index_t *ix);

/*
 * Ranks the candidates against query[0..query_len) (any bytes; invalid
 * UTF-8 separates words) and writes up to max_units units, best first, to
 * units. recent[0..recent_cnt) are the messages already in the context
 * (may be NULL when recent_cnt is 0): their near-repeats are left out.
 * Ranking: BM25 (k1 1.2, b 0.75) with IDF and the average length from the
 * candidates, times a small bonus for each further distinct query term
 * matched; ties go to the newer hit. Returns the number of units written:
 * 0 when nothing matches (a query of stop words only, an empty index).
 * Cannot fail.
 */
size_t cm_recall_search(const cm_recall_index_t *ix, const char *query,
                        size_t query_len, const cm_message_t *recent,
                        size_t recent_cnt, cm_recall_unit_t *units,
                        size_t max_units);

/* Appends the terms of text[0..len), as the index and the search see them,
 * to out, each followed by one space (stems, in text order, repeats
 * kept), and returns their number. For tests and tuning. Cannot fail. */
size_t cm_recall_normalize(const char *text, size_t len, cm_buf_t *out);

#endif
