/*
 * recall: see recall.h for the contract.
 *
 * Index: one pass over each candidate turns its text into term hashes
 * (64-bit FNV-1a of the stem); each candidate keeps its distinct terms,
 * sorted, with their counts, its length in terms and a 64-bit sketch of its
 * term set; a table of the session's terms gives each its document
 * frequency and its postings (candidate, count), in candidate order. A
 * search then normalises the query, walks the postings of its terms and
 * touches only the hits: its cost is that of the query and of the hits,
 * not of the session.
 *
 * Ranking: Okapi BM25, IDF log(1 + (N - df + 0.5) / (df + 0.5)) (never
 * negative, so a term in most messages still counts a little), with N, df
 * and the average length taken from this session's candidates, not from a
 * corpus: a name the user mentions twice in 700 turns weighs far more than
 * "work", which they use every day. k1 = 1.2 and b = 0.75 are the usual
 * values; chat turns are short, so term frequency saturates early and the
 * length normalisation mostly keeps a long pasted answer from outranking
 * the turn that states the fact. Plain BM25 lets a message with one rare
 * term beat one with the two query terms that are together the point of
 * the question ("Lisbon" alone against "moved to Lisbon"), so the score is
 * multiplied by 1 + 0.3 * (m - 1) / (q - 1) for m of the q distinct query
 * terms that occur in the session: up to 30% for matching all of them, a
 * nudge that reorders near-ties and leaves IDF in charge. Ties go to the
 * newer message, the more likely to hold the current state of a fact.
 */
#include "recall.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "util.h"

#define BM25_K1 1.2
#define BM25_B  0.75
#define COORD   0.3

/* Jaccard similarity of term sets from which two messages are repeats:
 * REPEAT_NUM / REPEAT_DEN. */
#define REPEAT_NUM 4
#define REPEAT_DEN 5

/* Bytes of a word kept for its term; longer words are cut (consistently,
 * so they still match) and not stemmed. */
#define WORD_MAX 48

/* ---- byte classes and stop words, built once ---- */

enum {
        B_SEP = 0, /* separates words */
        B_LOWER,   /* a-z */
        B_UPPER,   /* A-Z */
        B_DIGIT,   /* 0-9 */
        B_APOS,    /* ' */
        B_NUMSEP,  /* . , : / - : inside a number */
        B_HIGH,    /* 0x80..0xff: decoded */
};

static unsigned char byte_class[256];

static const char *const stop_words[] = {
    /* function words */
    "a", "about", "above", "after", "again", "against", "all", "almost",
    "also", "am", "an", "and", "any", "anyone", "anything", "anyway", "are",
    "around", "as", "at", "be", "because", "been", "before", "being", "below",
    "between", "both", "but", "by", "can", "could", "did", "do", "does",
    "doing", "done", "down", "during", "each", "either", "else", "even",
    "ever", "every", "few", "for", "from", "further", "get", "gets", "getting",
    "got", "had", "has", "have", "having", "he", "her", "here", "hers",
    "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is",
    "it", "its", "itself", "just", "let", "lot", "lots", "me", "might",
    "mine", "more", "most", "much", "must", "my", "myself", "no", "nor",
    "not", "now", "of", "off", "on", "once", "only", "or", "other", "our",
    "ours", "ourselves", "out", "over", "own", "quite", "rather", "same",
    "she", "should", "so", "some", "something", "such", "than", "that",
    "the", "their", "theirs", "them", "themselves", "then", "there", "these",
    "they", "this", "those", "though", "through", "to", "too", "under",
    "until", "up", "upon", "us", "very", "was", "way", "we", "were", "what",
    "when", "where", "which", "while", "who", "whom", "whose", "why", "will",
    "with", "would", "yet", "you", "your", "yours", "yourself", "yourselves",
    /* contractions, apostrophe dropped */
    "arent", "cant", "couldnt", "didnt", "doesnt", "dont", "hadnt", "hasnt",
    "havent", "hed", "heres", "hes", "id", "ill", "im", "isnt", "ive", "lets",
    "shed", "shes", "shouldnt", "thats", "theres", "theyd", "theyll",
    "theyre", "theyve", "wasnt", "wed", "werent", "weve", "whats", "wont",
    "wouldnt", "youd", "youll", "youre", "youve",
    /* chat filler */
    "actually", "ah", "aw", "awesome", "aww", "btw", "cool", "definitely",
    "gonna", "gosh", "gotta", "great", "haha", "hahaha", "hey", "hi", "hello",
    "hmm", "kind", "like", "lol", "maybe", "nice", "oh", "ok", "okay", "omg",
    "pretty", "probably", "really", "sure", "thank", "thanks", "thing",
    "things", "thx", "totally", "uh", "um", "wanna", "well", "wow", "yay",
    "yeah", "yep", "yes",
    /* the question about the conversation itself */
    "mention", "mentioned", "recall", "remember", "said", "say", "tell",
    "told"};

#define STOP_CNT      (sizeof(stop_words) / sizeof(stop_words[0]))
#define STOP_SLOTS    1024 /* a power of two, over twice STOP_CNT */
#define STOP_WORD_MAX 16   /* no stop word is longer */

static uint64_t stop_table[STOP_SLOTS]; /* FNV-1a hashes; 0: empty */
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* 0 marks an empty slot, of the stop table and of an index's term table:
 * the hash 0 (never seen in practice) stands for itself plus one. */
static uint64_t nonzero(uint64_t h)
{
        return h ? h : 1;
}

static void tables_init(void)
{
        size_t i;

        for (i = 0; i < 256; i++) {
                if (i >= 'a' && i <= 'z')
                        byte_class[i] = B_LOWER;
                else if (i >= 'A' && i <= 'Z')
                        byte_class[i] = B_UPPER;
                else if (i >= '0' && i <= '9')
                        byte_class[i] = B_DIGIT;
                else if (i == '\'')
                        byte_class[i] = B_APOS;
                else if (i == '.' || i == ',' || i == ':' || i == '/' ||
                         i == '-')
                        byte_class[i] = B_NUMSEP;
                else if (i >= 0x80)
                        byte_class[i] = B_HIGH;
                else
                        byte_class[i] = B_SEP;
        }
        for (i = 0; i < STOP_CNT; i++) {
                uint64_t h = nonzero(
                    cm_fnv1a(stop_words[i], strlen(stop_words[i])));
                size_t slot = h & (STOP_SLOTS - 1);

                while (stop_table[slot] && stop_table[slot] != h)
                        slot = (slot + 1) & (STOP_SLOTS - 1);
                stop_table[slot] = h;
        }
}

static int is_stop(const char *w, size_t n)
{
        uint64_t h;
        size_t slot;

        if (n > STOP_WORD_MAX)
                return 0;
        h = nonzero(cm_fnv1a(w, n));
        for (slot = h & (STOP_SLOTS - 1); stop_table[slot];
             slot = (slot + 1) & (STOP_SLOTS - 1)) {
                if (stop_table[slot] == h)
                        return 1;
        }
        return 0;
}

/* ---- normalisation ---- */

static int is_vowel(unsigned char c)
{
        return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' ||
               c == 'y' || c >= 0x80;
}

static int has_vowel(const char *w, size_t n)
{
        size_t i;

        for (i = 0; i < n; i++) {
                if (is_vowel((unsigned char)w[i]))
                        return 1;
        }
        return 0;
}

static int ends(const char *w, size_t n, const char *suffix)
{
        size_t k = strlen(suffix);

        return n >= k && !memcmp(w + n - k, suffix, k);
}

/* A stem may lose a suffix when at least 3 bytes with a vowel are left
 * ("painted" -> "paint", never "bed" -> "b" or "string" -> "str"). */
static int stem_ok(const char *w, size_t n)
{
        return n >= 3 && has_vowel(w, n);
}

/* "runn" -> "run", "stopp" -> "stop"; not "fall", "dress", "buzz". */
static size_t undouble(const char *w, size_t n)
{
        unsigned char c = (unsigned char)w[n - 1];

        if (n >= 4 && w[n - 2] == (char)c && !is_vowel(c) && c != 'l' &&
            c != 's' && c != 'z')
                return n - 1;
        return n;
}

/*
 * Light stemming of a lowercase word of letters w[0..n) in place; returns
 * the new length. Rules, in order:
 *   -ies -> -i; -sses, -shes, -ches, -xes, -zes -> drop "es"; -s -> drop
 *   (not -ss, -us, -is);
 *   -ing, -ed (-ied -> -i; not -eed) -> drop, then undouble; -ly (not
 *   -ily) -> drop;
 *   consonant + final y -> i; final e (not -ee) -> drop.
 * Both forms of a pair meet whatever the rules make of them.
 */
static size_t stem(char *w, size_t n)
{
        if (n >= 4 && ends(w, n, "ies"))
                n -= 2;
        else if ((n >= 5 && ends(w, n, "sses")) ||
                 (n >= 5 && ends(w, n, "shes")) ||
                 (n >= 5 && ends(w, n, "ches")) ||
                 (n >= 4 && ends(w, n, "xes")) || (n >= 4 && ends(w, n, "zes")))
                n -= 2;
        else if (n >= 4 && w[n - 1] == 's' && w[n - 2] != 's' &&
                 w[n - 2] != 'u' && w[n - 2] != 'i')
                n -= 1;

        if (n >= 5 && ends(w, n, "ing") && stem_ok(w, n - 3)) {
                n = undouble(w, n - 3);
        } else if (n >= 4 && ends(w, n, "ied")) {
                n -= 2;
        } else if (n >= 4 && ends(w, n, "ed") && !ends(w, n, "eed") &&
                   stem_ok(w, n - 2)) {
                n = undouble(w, n - 2);
        } else if (n >= 6 && ends(w, n, "ly") && w[n - 3] != 'i') {
                n -= 2;
        }

        if (n >= 3 && w[n - 1] == 'y' && !is_vowel((unsigned char)w[n - 2]))
                w[n - 1] = 'i';
        else if (n >= 3 && w[n - 1] == 'e' && w[n - 2] != 'e' &&
                 (n >= 4 || w[n - 2] == 'i'))
                n -= 1;
        return n;
}

/* Where the terms of a text go: their hashes, and with text their stems
 * followed by a space. */
typedef struct sink {
        uint64_t *h;
        size_t cnt, cap;
        cm_buf_t *text;
} sink_t;

static void sink_add(sink_t *sk, const char *w, size_t n)
{
        if (sk->cnt == sk->cap) {
                sk->cap = sk->cap ? sk->cap * 2 : 64;
                sk->h = cm_realloc(sk->h, sk->cap * sizeof(*sk->h));
        }
        sk->h[sk->cnt++] = nonzero(cm_fnv1a(w, n));
        if (sk->text) {
                cm_buf_add(sk->text, w, n);
                cm_buf_add(sk->text, " ", 1);
        }
}

/* Bytes of an apostrophe at s[0..n): ' or U+2019, else 0. */
static size_t apostrophe(const unsigned char *s, size_t n)
{
        if (s[0] == '\'')
                return 1;
        if (n >= 3 && s[0] == 0xe2 && s[1] == 0x80 && s[2] == 0x99)
                return 3;
        return 0;
}

/* Bytes of the word character at s[0..n) (n > 0), else 0. */
static size_t word_char(const unsigned char *s, size_t n)
{
        unsigned char c = byte_class[s[0]];

        if (c == B_LOWER || c == B_UPPER || c == B_DIGIT)
                return 1;
        if (c == B_HIGH)
                return cm_text_word_char((const char *)s, n);
        return 0;
}

/* A finished word w[0..n) (ASCII lowercased): drops it or adds its term. */
static void word_end(sink_t *sk, char *w, size_t n, int letters, int digits,
                     int cut)
{
        if (n == 0)
                return;
        if (!digits) {
                if (n == 1 && (unsigned char)w[0] < 0x80)
                        return; /* "a", "x" */
                if (is_stop(w, n))
                        return;
                if (!cut)
                        n = stem(w, n);
        } else if (letters && n > 2 && cm_isdigit(w[n - 3]) &&
                   (ends(w, n, "st") || ends(w, n, "nd") || ends(w, n, "rd") ||
                    ends(w, n, "th"))) {
                size_t i;

                for (i = 0; i < n - 2 && cm_isdigit(w[i]); i++)
                        ;
                if (i == n - 2)
                        n -= 2; /* "20th" -> "20" */
        }
        sink_add(sk, w, n);
}

/* Adds the terms of s[0..len) to sk; returns how many it added. */
static size_t scan(const char *text, size_t len, sink_t *sk)
{
        const unsigned char *s = (const unsigned char *)text;
        size_t before = sk->cnt;
        size_t i = 0;

        while (i < len) {
                char w[WORD_MAX];
                size_t n = 0, k;
                int letters = 0, digits = 0, cut = 0;

                k = word_char(s + i, len - i);
                if (k == 0) {
                        i++;
                        continue;
                }
                /* A word: from s[i] while word characters, inner
                 * apostrophes and separators inside numbers go on. */
                while (i < len) {
                        unsigned char c = byte_class[s[i]];

                        k = word_char(s + i, len - i);
                        if (k) {
                                if (c == B_DIGIT)
                                        digits = 1;
                                else
                                        letters = 1;
                                if (n + k > WORD_MAX) {
                                        cut = 1;
                                } else if (k == 1) {
                                        w[n++] = (char)cm_tolower(s[i]);
                                } else {
                                        memcpy(w + n, s + i, k);
                                        n += k;
                                }
                                i += k;
                                continue;
                        }
                        k = apostrophe(s + i, len - i);
                        if (k && letters && i + k < len &&
                            cm_isalpha(s[i + k])) {
                                /* "'s" at the end of the word goes; else
                                 * the apostrophe alone: "don't" -> "dont".
                                 */
                                if ((s[i + k] | 0x20) == 's' &&
                                    (i + k + 1 == len ||
                                     !word_char(s + i + k + 1,
                                                len - i - k - 1))) {
                                        i += k + 1;
                                        break;
                                }
                                i += k;
                                continue;
                        }
                        if (c == B_NUMSEP && n && cm_isdigit(w[n - 1]) &&
                            i + 1 < len && byte_class[s[i + 1]] == B_DIGIT) {
                                if (s[i] != ',' && n < WORD_MAX)
                                        w[n++] = (char)s[i];
                                i++;
                                continue;
                        }
                        break;
                }
                word_end(sk, w, n, letters, digits, cut);
        }
        return sk->cnt - before;
}

size_t cm_recall_normalize(const char *text, size_t len, cm_buf_t *out)
{
        sink_t sk;
        size_t n;

        pthread_once(&tables_once, tables_init);
        memset(&sk, 0, sizeof(sk));
        sk.text = out;
        n = scan(text, len, &sk);
        free(sk.h);
        return n;
}

/* ---- the index ---- */

enum {
        F_QUESTION = 0x01, /* ends with '?' */
        F_SHORT = 0x02,    /* a few terms in a few bytes */
};

struct cm_recall_index {
        const cm_message_t *msgs;
        size_t cnt;
        /* Per candidate: its distinct terms terms[off[i]..off[i + 1]),
         * sorted, with their counts tf[]; its length in terms, its BM25
         * length factor k1 * (1 - b + b * len / avg_len), the sketch of
         * its term set (bit hash % 64 of each term) and flags. */
        uint32_t *off;
        uint64_t *terms;
        uint16_t *tf;
        float *len_factor;
        uint64_t *sketch;
        uint8_t *flags;
        /* The session's terms: an open-addressing table of hashes (0:
         * empty) to term ids; per term id its document frequency and its
         * postings post_doc/post_tf[post_off[t]..post_off[t + 1]). */
        uint64_t *slot_hash;
        uint32_t *slot_term;
        size_t slot_mask;
        size_t term_cnt;
        uint32_t *post_off;
        uint32_t *post_doc;
        uint16_t *post_tf;
};

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return x < y ? -1 : x > y;
}

/* Sorts h[0..n) (short runs by insertion, the usual case for a turn). */
static void sort_u64(uint64_t *h, size_t n)
{
        size_t i, j;

        if (n > 32) {
                qsort(h, n, sizeof(*h), cmp_u64);
                return;
        }
        for (i = 1; i < n; i++) {
                uint64_t v = h[i];

                for (j = i; j > 0 && h[j - 1] > v; j--)
                        h[j] = h[j - 1];
                h[j] = v;
        }
}

/* Sorts h[0..n) and folds repeats: returns the distinct count, with their
 * counts in tf[] when tf is not NULL. */
static size_t sort_unique(uint64_t *h, size_t n, uint16_t *tf)
{
        size_t i, d = 0;

        sort_u64(h, n);
        for (i = 0; i < n; i++) {
                if (d && h[d - 1] == h[i]) {
                        if (tf && tf[d - 1] < UINT16_MAX)
                                tf[d - 1]++;
                        continue;
                }
                h[d] = h[i];
                if (tf)
                        tf[d] = 1;
                d++;
        }
        return d;
}

static uint64_t sketch_of(const uint64_t *h, size_t n)
{
        uint64_t sk = 0;
        size_t i;

        for (i = 0; i < n; i++)
                sk |= (uint64_t)1 << (h[i] >> 58);
        return sk;
}

/* Whether content ends with '?', trailing spaces, closing quotes and
 * brackets and up to 16 bytes of non-ASCII (emoji, curly quotes) aside. */
static int ends_question(const char *s, size_t n)
{
        size_t high = 0;

        while (n > 0) {
                unsigned char c = (unsigned char)s[n - 1];

                if (c == '?')
                        return 1;
                if (c >= 0x80 && ++high <= 16) {
                        n--;
                        continue;
                }
                if (!cm_isspace(c) && c != '"' && c != '\'' && c != ')' &&
                    c != ']')
                        return 0;
                n--;
        }
        return 0;
}

/* The term id of hash h, or -1. */
static long term_find(const cm_recall_index_t *ix, uint64_t h)
{
        size_t slot;

        for (slot = h & ix->slot_mask; ix->slot_hash[slot];
             slot = (slot + 1) & ix->slot_mask) {
                if (ix->slot_hash[slot] == h)
                        return (long)ix->slot_term[slot];
        }
        return -1;
}

static void table_alloc(cm_recall_index_t *ix, size_t slots)
{
        ix->slot_hash = cm_calloc(slots, sizeof(*ix->slot_hash));
        ix->slot_term = cm_malloc(slots * sizeof(*ix->slot_term));
        ix->slot_mask = slots - 1;
}

/* The term id of hash h, added with the next id when new. */
static uint32_t term_add(cm_recall_index_t *ix, uint64_t h)
{
        size_t slot;

        if ((ix->term_cnt + 1) * 2 > ix->slot_mask + 1) {
                uint64_t *old_hash = ix->slot_hash;
                uint32_t *old_term = ix->slot_term;
                size_t old_slots = ix->slot_mask + 1, i;

                table_alloc(ix, old_slots * 2);
                for (i = 0; i < old_slots; i++) {
                        if (!old_hash[i])
                                continue;
                        for (slot = old_hash[i] & ix->slot_mask;
                             ix->slot_hash[slot];
                             slot = (slot + 1) & ix->slot_mask)
                                ;
                        ix->slot_hash[slot] = old_hash[i];
                        ix->slot_term[slot] = old_term[i];
                }
                free(old_hash);
                free(old_term);
        }
        for (slot = h & ix->slot_mask; ix->slot_hash[slot];
             slot = (slot + 1) & ix->slot_mask) {
                if (ix->slot_hash[slot] == h)
                        return ix->slot_term[slot];
        }
        ix->slot_hash[slot] = h;
        ix->slot_term[slot] = (uint32_t)ix->term_cnt;
        return (uint32_t)ix->term_cnt++;
}

cm_recall_index_t *cm_recall_index_new(const cm_message_t *msgs, size_t cnt)
{
        cm_recall_index_t *ix = cm_calloc(1, sizeof(*ix));
        sink_t sk;
        uint32_t *tid = NULL, *df = NULL, *fill = NULL;
        uint64_t total_len = 0;
        double avg;
        size_t i, j, d, tf_cap = 0;

        pthread_once(&tables_once, tables_init);
        memset(&sk, 0, sizeof(sk));
        ix->msgs = msgs;
        ix->cnt = cnt;
        ix->off = cm_calloc(cnt + 1, sizeof(*ix->off));
        ix->len_factor = cm_malloc((cnt ? cnt : 1) * sizeof(*ix->len_factor));
        ix->sketch = cm_malloc((cnt ? cnt : 1) * sizeof(*ix->sketch));
        ix->flags = cm_calloc(cnt ? cnt : 1, sizeof(*ix->flags));

        /* Each candidate's terms, folded to its distinct ones in place:
         * the write position d never passes the read position. */
        d = 0;
        for (i = 0; i < cnt; i++) {
                const cm_message_t *msg = &msgs[i];
                size_t start = sk.cnt, n, u;

                n = scan(msg->content, msg->content_len, &sk);
                total_len += n;
                ix->len_factor[i] = (float)n; /* the length, for now */
                if (n <= CM_RECALL_SHORT_TERMS &&
                    msg->content_len <= CM_RECALL_SHORT_BYTES)
                        ix->flags[i] |= F_SHORT;
                if (ends_question(msg->content, msg->content_len))
                        ix->flags[i] |= F_QUESTION;
                ix->sketch[i] = 0;
                if (n) {
                        if (tf_cap < sk.cap) {
                                tf_cap = sk.cap;
                                ix->tf = cm_realloc(ix->tf,
                                                    tf_cap * sizeof(*ix->tf));
                        }
                        u = sort_unique(sk.h + start, n, ix->tf + d);
                        memmove(sk.h + d, sk.h + start, u * sizeof(*sk.h));
                        ix->sketch[i] = sketch_of(sk.h + d, u);
                        d += u;
                }
                sk.cnt = d;
                ix->off[i + 1] = (uint32_t)d;
        }
        ix->terms = sk.h ? sk.h : cm_malloc(sizeof(*ix->terms));
        sk.h = NULL; /* now owned by ix */
        if (!ix->tf)
                ix->tf = cm_malloc(sizeof(*ix->tf));

        avg = cnt && total_len ? (double)total_len / (double)cnt : 1.0;
        for (i = 0; i < cnt; i++)
                ix->len_factor[i] = (float)(
                    BM25_K1 * (1.0 - BM25_B +
                               BM25_B * (double)ix->len_factor[i] / avg));

        /* The term table and the document frequencies. */
        table_alloc(ix, 1024);
        tid = cm_malloc((d ? d : 1) * sizeof(*tid));
        df = cm_calloc(d + 1, sizeof(*df));
        for (j = 0; j < d; j++) {
                tid[j] = term_add(ix, ix->terms[j]);
                df[tid[j]]++;
        }

        /* Postings, in candidate order. */
        ix->post_off = cm_malloc((ix->term_cnt + 1) * sizeof(*ix->post_off));
        ix->post_off[0] = 0;
        for (j = 0; j < ix->term_cnt; j++)
                ix->post_off[j + 1] = ix->post_off[j] + df[j];
        fill = df; /* reused: the next free posting of each term */
        memcpy(fill, ix->post_off, ix->term_cnt * sizeof(*fill));
        ix->post_doc = cm_malloc((d ? d : 1) * sizeof(*ix->post_doc));
        ix->post_tf = cm_malloc((d ? d : 1) * sizeof(*ix->post_tf));
        for (i = 0; i < cnt; i++) {
                for (j = ix->off[i]; j < ix->off[i + 1]; j++) {
                        uint32_t p = fill[tid[j]]++;

                        ix->post_doc[p] = (uint32_t)i;
                        ix->post_tf[p] = ix->tf[j];
                }
        }
        free(tid);
        free(df);
        return ix;
}

void cm_recall_index_destroy(cm_recall_index_t *ix)
{
        if (!ix)
                return;
        free(ix->off);
        free(ix->terms);
        free(ix->tf);
        free(ix->len_factor);
        free(ix->sketch);
        free(ix->flags);
        free(ix->slot_hash);
        free(ix->slot_term);
        free(ix->post_off);
        free(ix->post_doc);
        free(ix->post_tf);
        free(ix);
}

size_t cm_recall_index_count(const cm_recall_index_t *ix)
{
        return ix->cnt;
}

const cm_message_t *cm_recall_index_msgs(const cm_recall_index_t *ix)
{
        return ix->msgs;
}

/* ---- search ---- */

/* A term set: sorted distinct hashes and their sketch. */
typedef struct termset {
        const uint64_t *h;
        size_t n;
        uint64_t sketch;
} termset_t;

static termset_t doc_terms(const cm_recall_index_t *ix, size_t i)
{
        termset_t ts;

        ts.h = ix->terms + ix->off[i];
        ts.n = ix->off[i + 1] - ix->off[i];
        ts.sketch = ix->sketch[i];
        return ts;
}

/*
 * Whether a and b are near-repeats: Jaccard(a, b) >= 4/5. Two cheap
 * necessary conditions first: the sizes are within 4/5 of each other, and
 * the bits where the sketches differ, each set by a term of one set only,
 * are at most |a xor b| <= (1 - 4/5) * |a u b| <= (|a| + |b|) / 5.
 */
static int near_repeat(const termset_t *a, const termset_t *b)
{
        size_t i = 0, j = 0, inter = 0, uni;

        if (!a->n || !b->n)
                return 0;
        if (a->n * REPEAT_DEN < b->n * REPEAT_NUM ||
            b->n * REPEAT_DEN < a->n * REPEAT_NUM)
                return 0;
        if ((size_t)__builtin_popcountll(a->sketch ^ b->sketch) *
                REPEAT_DEN >
            (a->n + b->n) * (REPEAT_DEN - REPEAT_NUM))
                return 0;
        while (i < a->n && j < b->n) {
                if (a->h[i] < b->h[j]) {
                        i++;
                } else if (a->h[i] > b->h[j]) {
                        j++;
                } else {
                        inter++;
                        i++;
                        j++;
                }
        }
        uni = a->n + b->n - inter;
        return inter * REPEAT_DEN >= uni * REPEAT_NUM;
}

typedef struct hit {
        double score;
        uint32_t doc;
} hit_t;

/* Rank order: higher score first, then the newer candidate. */
static int hit_before(const hit_t *a, const hit_t *b)
{
        return a->score > b->score || (a->score == b->score && a->doc > b->doc);
}

static int cmp_hit(const void *a, const void *b)
{
        const hit_t *x = a, *y = b;

        return hit_before(x, y) ? -1 : hit_before(y, x);
}

static void hit_swap(hit_t *a, hit_t *b)
{
        hit_t t = *a;

        *a = *b;
        *b = t;
}

/* Moves the k best of h[0..n) (0 < k <= n) to h[0..k), in rank order. */
static void select_best(hit_t *h, size_t n, size_t k)
{
        size_t lo = 0, hi = n; /* the k-th best is in h[lo..hi) */

        while (k < n && hi - lo > 1) {
                size_t mid = lo + (hi - lo) / 2, i, store = lo;

                /* Median of three as the pivot, moved to h[hi - 1]. */
                if (hit_before(&h[mid], &h[lo]))
                        hit_swap(&h[mid], &h[lo]);
                if (hit_before(&h[hi - 1], &h[lo]))
                        hit_swap(&h[hi - 1], &h[lo]);
                if (hit_before(&h[mid], &h[hi - 1]))
                        hit_swap(&h[mid], &h[hi - 1]);
                for (i = lo; i < hi - 1; i++) {
                        if (hit_before(&h[i], &h[hi - 1]))
                                hit_swap(&h[i], &h[store++]);
                }
                hit_swap(&h[store], &h[hi - 1]);
                if (store == k - 1 || store == k)
                        break;
                if (store < k)
                        lo = store + 1;
                else
                        hi = store;
        }
        qsort(h, k, sizeof(*h), cmp_hit);
}

/* The state of one search while it forms units. */
typedef struct pick {
        const cm_recall_index_t *ix;
        uint8_t *claimed;  /* per candidate: in a unit already */
        uint32_t *chosen;  /* the candidates in units, in order */
        size_t chosen_cnt;
        termset_t *recent; /* the term sets of the recent messages */
        size_t recent_cnt;
} pick_t;

/* Whether candidate i repeats a recent message or one already chosen. */
static int repeats(const pick_t *pk, size_t i)
{
        termset_t t = doc_terms(pk->ix, i);
        size_t k;

        for (k = 0; k < pk->recent_cnt; k++) {
                if (near_repeat(&t, &pk->recent[k]))
                        return 1;
        }
        for (k = 0; k < pk->chosen_cnt; k++) {
                termset_t c = doc_terms(pk->ix, pk->chosen[k]);

                if (near_repeat(&t, &c))
                        return 1;
        }
        return 0;
}

static int other_role(const cm_message_t *a, const cm_message_t *b)
{
        return a->role != b->role;
}

/* Forms the unit of hit h into *u; returns 0 when h is skipped. */
static int unit_form(pick_t *pk, size_t h, double score, cm_recall_unit_t *u)
{
        const cm_recall_index_t *ix = pk->ix;
        const cm_message_t *m = ix->msgs;
        size_t i;

        if (pk->claimed[h] || repeats(pk, h))
                return 0;
        u->hit = u->first = u->last = h;
        u->score = score;
        if (h > 0 && !pk->claimed[h - 1] &&
            ((ix->flags[h] & F_SHORT) ||
             (other_role(&m[h - 1], &m[h]) &&
              (ix->flags[h - 1] & (F_QUESTION | F_SHORT)))) &&
            !repeats(pk, h - 1))
                u->first = h - 1;
        if (h + 1 < ix->cnt && !pk->claimed[h + 1] &&
            (ix->flags[h] & F_QUESTION) && (ix->flags[h + 1] & F_SHORT) &&
            other_role(&m[h], &m[h + 1]) && !repeats(pk, h + 1))
                u->last = h + 1;
        for (i = u->first; i <= u->last; i++) {
                pk->claimed[i] = 1;
                pk->chosen[pk->chosen_cnt++] = (uint32_t)i;
        }
        return 1;
}

size_t cm_recall_search(const cm_recall_index_t *ix, const char *query,
                        size_t query_len, const cm_message_t *recent,
                        size_t recent_cnt, cm_recall_unit_t *units,
                        size_t max_units)
{
        sink_t qs, rs;
        double *score = NULL;
        uint16_t *matched = NULL;
        hit_t *hits = NULL;
        pick_t pk;
        size_t q, found = 0, hit_cnt = 0, done = 0, unit_cnt = 0, i, j;
        size_t chunk;

        memset(&qs, 0, sizeof(qs));
        memset(&rs, 0, sizeof(rs));
        memset(&pk, 0, sizeof(pk));
        if (!ix || !ix->cnt || !max_units || !query)
                goto out;
        pthread_once(&tables_once, tables_init);
        scan(query, query_len, &qs);
        q = sort_unique(qs.h, qs.cnt, NULL);
        if (!q)
                goto out;

        /* BM25 over the postings of each query term. */
        score = cm_calloc(ix->cnt, sizeof(*score));
        matched = cm_calloc(ix->cnt, sizeof(*matched));
        hits = cm_malloc(ix->cnt * sizeof(*hits));
        for (i = 0; i < q; i++) {
                long t = term_find(ix, qs.h[i]);
                double df, idf;

                if (t < 0)
                        continue;
                found++;
                df = (double)(ix->post_off[t + 1] - ix->post_off[t]);
                idf = log(1.0 + ((double)ix->cnt - df + 0.5) / (df + 0.5));
                for (j = ix->post_off[t]; j < ix->post_off[t + 1]; j++) {
                        uint32_t doc = ix->post_doc[j];
                        double tf = ix->post_tf[j];

                        if (!matched[doc]++)
                                hits[hit_cnt++].doc = doc;
                        score[doc] += idf * tf * (BM25_K1 + 1.0) /
                                      (tf + ix->len_factor[doc]);
                }
        }
        for (i = 0; i < hit_cnt; i++) {
                uint32_t doc = hits[i].doc;
                double coord = found > 1 ? COORD * (matched[doc] - 1) /
                                               (double)(found - 1)
                                         : 0.0;

                hits[i].score = score[doc] * (1.0 + coord);
        }
        if (!hit_cnt)
                goto out;

        /* The recent messages' term sets, for the repeats. */
        pk.ix = ix;
        pk.claimed = cm_calloc(ix->cnt, sizeof(*pk.claimed));
        pk.chosen = cm_malloc(ix->cnt * sizeof(*pk.chosen));
        pk.recent = cm_calloc(recent_cnt ? recent_cnt : 1, sizeof(*pk.recent));
        for (i = 0; i < recent_cnt; i++) {
                size_t start = rs.cnt, n;

                n = scan(recent[i].content, recent[i].content_len, &rs);
                if (n)
                        rs.cnt = start + sort_unique(rs.h + start, n, NULL);
                pk.recent[i].n = rs.cnt - start;
        }
        /* rs.h is final now: point into it. */
        for (i = 0, j = 0; i < recent_cnt; j += pk.recent[i++].n) {
                if (!pk.recent[i].n)
                        continue;
                pk.recent[i].h = rs.h + j;
                pk.recent[i].sketch = sketch_of(pk.recent[i].h, pk.recent[i].n);
        }
        pk.recent_cnt = recent_cnt;

        /* Units in rank order; the hits are ranked a chunk at a time, as
         * far as the units need them. */
        chunk = max_units + 8;
        while (unit_cnt < max_units && done < hit_cnt) {
                size_t k = hit_cnt - done < chunk ? hit_cnt - done : chunk;

                select_best(hits + done, hit_cnt - done, k);
                for (i = done; i < done + k && unit_cnt < max_units; i++) {
                        if (unit_form(&pk, hits[i].doc, hits[i].score,
                                      &units[unit_cnt]))
                                unit_cnt++;
                }
                done += k;
                chunk *= 2;
        }

out:
        free(qs.h);
        free(rs.h);
        free(score);
        free(matched);
        free(hits);
        free(pk.claimed);
        free(pk.chosen);
        free(pk.recent);
        return unit_cnt;
}
