/*
 * recall: see recall.h for the contract.
 *
 * Index: one pass over each candidate's bytes turns its text into term
 * keys (a 64-bit hash of the stem) and each key into a term id through an
 * open-addressing table of the session's terms. A candidate keeps its
 * distinct term ids with their counts, its length in terms and a 64-bit
 * sketch of its term set; each term its document frequency. Nothing is
 * sorted and nothing depends on the candidates after it, so the index
 * grows by appending (cm_recall_index_extend). The cost is the scan of
 * the text, about 3 ns a byte: a byte-class table, the word's key built
 * in registers as it is read, an open-addressing stop list.
 *
 * Search: the query's terms are looked up once, then the candidates' term
 * lists are walked, one byte lookup per term occurrence (a few thousand
 * for 700 turns: less than postings would cost to build, and nothing to
 * update when the index grows). The hits are ranked a chunk at a time
 * (quickselect, then a sort of the chunk) and formed into units only as
 * far as the caller asks, so that the near-repeat checks, quadratic in the
 * units, stop where the budget does.
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
 * nudge that reorders near-ties and leaves IDF in charge.
 *
 * Context: a turn of a conversation is rarely about its topic on its own.
 * The words a question uses are often in the turn that raised the topic,
 * and the fact it asks for one or two turns later ("That must've been
 * breathtaking!" / "It was one of those moments where I felt tiny..."),
 * and a hit among other hits is more likely on the topic than a lone one
 * that shares a common word. So each hit adds the scores of the
 * candidates up to CONTEXT_REACH on either side, the one at distance d
 * weighted CONTEXT_DECAY^d: a kernel over the turns, in one pass over
 * the candidates. Only hits are ranked (a turn without a query term is
 * recalled as a neighbour, not on its neighbours' score), so a query that
 * matches nothing still finds nothing. Measured on long two-person
 * conversations (LoCoMo, tuned on three, checked on two others), this
 * keeps the answer to 6 to 10 more questions in 100 at 500 tokens, 8 to
 * 9 at 1000, 5 to 7 at 2000; the reach and decay are on a flat optimum
 * (reach 2 to 4, decay 0.5 to 0.75 are within 2 points). Ties go to the
 * newer message, the more likely to hold the current state of a fact.
 *
 * Term keys: not cm_fnv1a(). FNV-1a is a chain of one multiply per byte;
 * an index over 700 turns keys some 20,000 words, most of them twice (the
 * word for the stop list, then its stem), and FNV made that the largest
 * cost of the build. Here the word's bytes are packed 8 to a 64-bit chunk
 * as they are read, so its key is one multiply per 8 bytes and a fold of
 * the high half into the low one (both bijections: words of up to 8 bytes
 * never collide; longer ones as any 64-bit hash). Keys live only in
 * memory, in one process.
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

/* A hit takes in the scores of the candidates up to CONTEXT_REACH on
 * either side, the one at distance d weighted CONTEXT_DECAY^d. */
#define CONTEXT_REACH 3
#define CONTEXT_DECAY 0.7

/* Jaccard similarity of term sets from which two messages are repeats:
 * REPEAT_NUM / REPEAT_DEN. */
#define REPEAT_NUM 4
#define REPEAT_DEN 5

/* Bytes of a word kept for its key; longer words are cut (consistently,
 * so they still match) and not stemmed. */
#define WORD_MAX 48

/* ---- term keys ---- */

static uint64_t key_mix(uint64_t h, uint64_t c)
{
        return (h ^ (h >> 29) ^ c) * 0x9e3779b97f4a7c15ULL;
}

static uint64_t key_end(uint64_t h)
{
        h ^= h >> 32;
        return h ? h : 1;
}

/* The key of the word w[0..n) (0 < n): its bytes packed 8 to a 64-bit
 * chunk (byte i at bit 8 * (i % 8)), mixed, and the high half folded in.
 * Never 0: 0 marks an empty slot. Built from bytes, not from 64-bit loads
 * of a buffer just stored byte by byte, which would stall on store
 * forwarding. */
static uint64_t word_key(const char *w, size_t n)
{
        uint64_t h = 0, c = 0;
        size_t i;

        for (i = 0; i < n; i++) {
                c |= (uint64_t)(unsigned char)w[i] << (8 * (i & 7));
                if ((i & 7) == 7) {
                        h = key_mix(h, c);
                        c = 0;
                }
        }
        return key_end(n & 7 ? key_mix(h, c) : h);
}

/* ---- byte classes and stop words, built once ---- */

/* For an ASCII letter or digit c: fold[c] is the lowercase letter or the
 * digit, kind[c] K_LETTER or K_DIGIT, ctab[c] both (fold | kind << 8), in
 * one load for the hot loop of scan(); 0 for any other byte. */
enum { K_LETTER = 1, K_DIGIT = 2 };
static unsigned char fold[256];
static unsigned char kind[256];
static uint16_t ctab[256];

static const char *const stop_words[] = {
    /* function words */
    "a", "about", "above", "after", "again", "against", "all", "almost", "also",
    "am", "an", "and", "any", "anyone", "anything", "anyway", "are", "around",
    "as", "at", "be", "because", "been", "before", "being", "below", "between",
    "both", "but", "by", "can", "could", "did", "do", "does", "doing", "done",
    "down", "during", "each", "either", "else", "even", "ever", "every", "few",
    "for", "from", "further", "get", "gets", "getting", "got", "had", "has",
    "have", "having", "he", "her", "here", "hers", "herself", "him", "himself",
    "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just",
    "let", "lot", "lots", "me", "might", "mine", "more", "most", "much", "must",
    "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once",
    "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own",
    "quite", "rather", "same", "she", "should", "so", "some", "something",
    "such", "than", "that", "the", "their", "theirs", "them", "themselves",
    "then", "there", "these", "they", "this", "those", "though", "through",
    "to", "too", "under", "until", "up", "upon", "us", "very", "was", "way",
    "we", "were", "what", "when", "where", "which", "while", "who", "whom",
    "whose", "why", "will", "with", "would", "yet", "you", "your", "yours",
    "yourself", "yourselves",
    /* contractions, apostrophe dropped */
    "arent", "cant", "couldnt", "didnt", "doesnt", "dont", "hadnt", "hasnt",
    "havent", "hed", "heres", "hes", "id", "ill", "im", "isnt", "ive", "lets",
    "shed", "shes", "shouldnt", "thats", "theres", "theyd", "theyll", "theyre",
    "theyve", "wasnt", "wed", "werent", "weve", "whats", "wont", "wouldnt",
    "youd", "youll", "youre", "youve",
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

static uint64_t stop_table[STOP_SLOTS]; /* keys; 0: empty */

static const char *const month_names[] = {
    "January", "February", "March",     "April",   "May",      "June",
    "July",    "August",   "September", "October", "November", "December"};
static uint64_t month_key[12]; /* their terms' keys */
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* Whether key is that of a stop word. */
static int is_stop(uint64_t key)
{
        size_t slot;

        for (slot = key & (STOP_SLOTS - 1); stop_table[slot];
             slot = (slot + 1) & (STOP_SLOTS - 1)) {
                if (stop_table[slot] == key)
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

/* A stem may lose a suffix when at least 3 bytes with a vowel are left
 * ("painted" -> "paint", never "bed" -> "b" or "string" -> "str"). */
static int stem_ok(const char *w, size_t n)
{
        size_t i;

        if (n < 3)
                return 0;
        for (i = 0; i < n; i++) {
                if (is_vowel((unsigned char)w[i]))
                        return 1;
        }
        return 0;
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
static size_t stem(char *w, size_t n, int *changed)
{
        size_t n0 = n;

        if (n >= 4 && w[n - 1] == 's') {
                char p = w[n - 2], q = w[n - 3];

                if (p == 'e' && q == 'i')
                        n -= 2; /* -ies */
                else if (p == 'e' && n >= 5 &&
                         ((q == 's' && w[n - 4] == 's') ||
                          (q == 'h' && (w[n - 4] == 's' || w[n - 4] == 'c'))))
                        n -= 2; /* -sses, -shes, -ches */
                else if (p == 'e' && (q == 'x' || q == 'z'))
                        n -= 2; /* -xes, -zes */
                else if (p != 's' && p != 'u' && p != 'i')
                        n -= 1;
        }

        if (n >= 5 && w[n - 1] == 'g' && w[n - 2] == 'n' && w[n - 3] == 'i' &&
            stem_ok(w, n - 3)) {
                n = undouble(w, n - 3);
        } else if (n >= 4 && w[n - 1] == 'd' && w[n - 2] == 'e') {
                if (w[n - 3] == 'i')
                        n -= 2; /* -ied -> -i */
                else if (w[n - 3] != 'e' && stem_ok(w, n - 2))
                        n = undouble(w, n - 2);
        } else if (n >= 6 && w[n - 1] == 'y' && w[n - 2] == 'l' &&
                   w[n - 3] != 'i') {
                n -= 2;
        }

        *changed = n != n0;
        if (n >= 3 && w[n - 1] == 'y' && !is_vowel((unsigned char)w[n - 2])) {
                w[n - 1] = 'i';
                *changed = 1;
        } else if (n >= 3 && w[n - 1] == 'e' && w[n - 2] != 'e' &&
                   (n >= 4 || w[n - 2] == 'i')) {
                n -= 1;
                *changed = 1;
        }
        return n;
}

/* Where the terms of a text go: their keys, and with text their stems
 * followed by a space. */
typedef struct sink {
        uint64_t *key;
        size_t cnt, cap;
        cm_buf_t *text;
} sink_t;

static void sink_add(sink_t *sk, const char *w, size_t n, uint64_t key)
{
        if (sk->cnt == sk->cap) {
                sk->cap = sk->cap ? sk->cap * 2 : 64;
                sk->key = cm_realloc(sk->key, sk->cap * sizeof(*sk->key));
        }
        sk->key[sk->cnt++] = key;
        if (sk->text && w) {
                cm_buf_add(sk->text, w, n);
                cm_buf_add(sk->text, " ", 1);
        }
}

/*
 * Stores byte b as the next of the word being read in scan(): into w and
 * into its key, which is built as word_key() builds it (h over the full
 * 8-byte chunks, c the chunk in progress, sh its bits), in scan()'s locals
 * so that they stay in registers: a function taking their address keeps
 * them in memory, and a chain of loads and stores per byte.
 */
#define WORD_PUT(b)                                                            \
        do {                                                                   \
                w[stored++] = (char)(b);                                       \
                c |= (uint64_t)(b) << sh;                                      \
                sh += 8;                                                       \
                if (sh == 64) {                                                \
                        h = key_mix(h, c);                                     \
                        c = 0;                                                 \
                        sh = 0;                                                \
                }                                                              \
        } while (0)

/* A finished word of n bytes, the first stored of them in w (ASCII
 * lowercased; stored < n when it was cut), kinds K_LETTER | K_DIGIT, key
 * the key of w[0..stored): drops it or adds its term. */
static void word_end(sink_t *sk, char *w, size_t n, size_t stored,
                     unsigned kinds, uint64_t key)
{
        int changed = 0;

        if (stored < n) {
                sink_add(sk, w, stored, key); /* cut: no stop, no stem */
                return;
        }
        if (!(kinds & K_DIGIT)) {
                if (n == 1 && (unsigned char)w[0] < 0x80)
                        return; /* "a", "x" */
                if (n <= STOP_WORD_MAX && is_stop(key))
                        return;
                n = stem(w, n, &changed);
        } else if ((kinds & K_LETTER) && n > 2 &&
                   ((w[n - 2] == 's' && w[n - 1] == 't') ||
                    (w[n - 2] == 'n' && w[n - 1] == 'd') ||
                    (w[n - 2] == 'r' && w[n - 1] == 'd') ||
                    (w[n - 2] == 't' && w[n - 1] == 'h'))) {
                size_t i;

                for (i = 0; i < n - 2 && kind[(unsigned char)w[i]] == K_DIGIT;
                     i++)
                        ;
                if (i == n - 2) {
                        n -= 2; /* "20th" -> "20" */
                        changed = 1;
                }
        }
        sink_add(sk, w, n, changed ? word_key(w, n) : key);
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
        if (fold[s[0]])
                return 1;
        if (s[0] < 0x80)
                return 0;
        return cm_text_word_char((const char *)s, n);
}

/*
 * Adds the terms of text[0..len) to sk; returns how many it added. A word
 * runs over word characters, an apostrophe between letters ("don't"; a
 * final "'s" ends the word and goes) and '.', ',', ':', '/', '-' between
 * two digits (',' dropped).
 */
static size_t scan(const char *text, size_t len, sink_t *sk)
{
        const unsigned char *s = (const unsigned char *)text;
        char w[WORD_MAX];
        size_t before = sk->cnt;
        size_t i = 0, k;

        for (;;) {
                /* n bytes of the word read, stored of them in w: all but
                 * those past WORD_MAX (a character that does not fit
                 * whole is left out; a later one may fit: the same word
                 * always gives the same bytes, which is what matters). */
                size_t n = 0, stored = 0;
                unsigned kinds = 0, sh = 0;
                uint64_t h = 0, c = 0;

                /* To the next word. */
                while (i < len && !ctab[s[i]] && s[i] < 0x80)
                        i++;
                if (i >= len)
                        break;
                if (!ctab[s[i]] &&
                    !cm_text_word_char((const char *)s + i, len - i)) {
                        i++;
                        continue;
                }
                for (;;) {
                        unsigned char b;

                        /* The common case: a run of ASCII letters and
                         * digits. */
                        for (; i < len && ctab[s[i]]; i++, n++) {
                                unsigned t = ctab[s[i]];

                                kinds |= t;
                                if (stored < WORD_MAX)
                                        WORD_PUT(t & 0xff);
                        }
                        if (i >= len)
                                break;
                        b = s[i];
                        k = b >= 0x80 ? word_char(s + i, len - i) : 0;
                        if (k) {
                                size_t j;

                                kinds |= K_LETTER << 8;
                                for (j = 0; stored + k <= WORD_MAX && j < k;
                                     j++)
                                        WORD_PUT(s[i + j]);
                                n += k;
                                i += k;
                                continue;
                        }
                        k = apostrophe(s + i, len - i);
                        if (k && (kinds & K_LETTER << 8) && i + k < len &&
                            kind[s[i + k]] == K_LETTER) {
                                if (fold[s[i + k]] == 's' &&
                                    (i + k + 1 == len ||
                                     !word_char(s + i + k + 1,
                                                len - i - k - 1))) {
                                        i += k + 1; /* "Melanie's" */
                                        break;
                                }
                                i += k; /* "don't" */
                                continue;
                        }
                        if ((b == '.' || b == ',' || b == ':' || b == '/' ||
                             b == '-') &&
                            kind[s[i - 1]] == K_DIGIT && i + 1 < len &&
                            kind[s[i + 1]] == K_DIGIT) {
                                if (b != ',') {
                                        if (stored < WORD_MAX)
                                                WORD_PUT(b);
                                        n++;
                                }
                                i++;
                                continue;
                        }
                        break;
                }
                word_end(sk, w, n, stored, kinds >> 8,
                         key_end(sh ? key_mix(h, c) : h));
        }
        return sk->cnt - before;
}

static void tables_init(void)
{
        size_t i;

        /* From the text module's locale-free ctype, once. */
        for (i = 0; i < 256; i++) {
                if (cm_isdigit((int)i)) {
                        fold[i] = (unsigned char)i;
                        kind[i] = K_DIGIT;
                } else if (cm_isalpha((int)i)) {
                        fold[i] = (unsigned char)cm_tolower((int)i);
                        kind[i] = K_LETTER;
                }
                ctab[i] = (uint16_t)(fold[i] | kind[i] << 8);
        }
        for (i = 0; i < STOP_CNT; i++) {
                uint64_t key = word_key(stop_words[i], strlen(stop_words[i]));
                size_t slot;

                for (slot = key & (STOP_SLOTS - 1); stop_table[slot];
                     slot = (slot + 1) & (STOP_SLOTS - 1))
                        ;
                stop_table[slot] = key;
        }
        for (i = 0; i < 12; i++) {
                sink_t sk;

                memset(&sk, 0, sizeof(sk));
                scan(month_names[i], strlen(month_names[i]), &sk);
                month_key[i] = sk.key[0];
                free(sk.key);
        }
}

size_t cm_recall_normalize(const char *text, size_t len, cm_buf_t *out)
{
        sink_t sk;
        size_t n;

        pthread_once(&tables_once, tables_init);
        memset(&sk, 0, sizeof(sk));
        sk.text = out;
        n = scan(text, len, &sk);
        free(sk.key);
        return n;
}

/* ---- the index ---- */

enum {
        F_QUESTION = 0x01, /* ends with '?' */
        F_SHORT = 0x02,    /* a few terms in a few bytes */
};

typedef struct slot {
        uint64_t key; /* 0: empty */
        uint32_t term;
} slot_t;

struct cm_recall_index {
        const cm_message_t *msgs;
        size_t cnt, cap;
        /* Per candidate: its distinct term ids terms[off[i]..off[i + 1]),
         * in text order, with their counts tf[]; its length in terms; the
         * sketch of its term set (bit key >> 58 of each term); flags. */
        uint32_t *off;
        uint32_t *distinct; /* of the content's terms, the first ids */
        uint32_t *len;
        uint64_t *sketch;
        uint8_t *flags;
        uint32_t *terms;
        uint16_t *tf;
        size_t occ_cap; /* room in terms[] and tf[] */
        uint64_t total_len;
        /* The session's terms: an open-addressing table of keys to term
         * ids (load at most 1/2); per id its key, its document frequency
         * and, while a candidate is indexed, where in terms[] it was last
         * seen (last_doc: the candidate plus one). */
        slot_t *slots;
        size_t slot_mask;
        size_t term_cnt, term_cap;
        uint64_t *term_key;
        uint32_t *df;
        uint32_t *last_doc;
        uint32_t *last_pos;
};

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

/* The term id of key, or -1. */
static long term_find(const cm_recall_index_t *ix, uint64_t key)
{
        size_t i;

        for (i = key & ix->slot_mask; ix->slots[i].key;
             i = (i + 1) & ix->slot_mask) {
                if (ix->slots[i].key == key)
                        return (long)ix->slots[i].term;
        }
        return -1;
}

/* Doubles the table. */
static void table_grow(cm_recall_index_t *ix)
{
        size_t slots = (ix->slot_mask + 1) * 2, i, j;

        free(ix->slots);
        ix->slots = cm_calloc(slots, sizeof(*ix->slots));
        ix->slot_mask = slots - 1;
        for (i = 0; i < ix->term_cnt; i++) {
                for (j = ix->term_key[i] & ix->slot_mask; ix->slots[j].key;
                     j = (j + 1) & ix->slot_mask)
                        ;
                ix->slots[j].key = ix->term_key[i];
                ix->slots[j].term = (uint32_t)i;
        }
}

/* The term id of key, added when new. */
static uint32_t term_add(cm_recall_index_t *ix, uint64_t key)
{
        size_t i;

        for (i = key & ix->slot_mask; ix->slots[i].key;
             i = (i + 1) & ix->slot_mask) {
                if (ix->slots[i].key == key)
                        return ix->slots[i].term;
        }
        if (ix->term_cnt == ix->term_cap) {
                ix->term_cap *= 2;
                ix->term_key = cm_realloc(ix->term_key,
                                          ix->term_cap * sizeof(*ix->term_key));
                ix->df = cm_realloc(ix->df, ix->term_cap * sizeof(*ix->df));
                ix->last_doc = cm_realloc(ix->last_doc,
                                          ix->term_cap * sizeof(*ix->last_doc));
                ix->last_pos = cm_realloc(ix->last_pos,
                                          ix->term_cap * sizeof(*ix->last_pos));
        }
        ix->term_key[ix->term_cnt] = key;
        ix->df[ix->term_cnt] = 0;
        ix->last_doc[ix->term_cnt] = 0;
        ix->slots[i].key = key;
        ix->slots[i].term = (uint32_t)ix->term_cnt;
        ix->term_cnt++;
        if (ix->term_cnt * 2 > ix->slot_mask + 1)
                table_grow(ix);
        return (uint32_t)(ix->term_cnt - 1);
}

static uint64_t sketch_bit(uint64_t key)
{
        return (uint64_t)1 << (key >> 58);
}

/* Makes room for cnt candidates. */
static void docs_reserve(cm_recall_index_t *ix, size_t cnt)
{
        if (cnt <= ix->cap)
                return;
        while (ix->cap < cnt)
                ix->cap *= 2;
        ix->off = cm_realloc(ix->off, (ix->cap + 1) * sizeof(*ix->off));
        ix->len = cm_realloc(ix->len, ix->cap * sizeof(*ix->len));
        ix->distinct =
            cm_realloc(ix->distinct, ix->cap * sizeof(*ix->distinct));
        ix->sketch = cm_realloc(ix->sketch, ix->cap * sizeof(*ix->sketch));
        ix->flags = cm_realloc(ix->flags, ix->cap * sizeof(*ix->flags));
}

/* Indexes candidate ix->cnt, msg, whose terms are keys[0..n): those of
 * its content, keys[0..content_n), then those of its date. */
static void doc_add(cm_recall_index_t *ix, const cm_message_t *msg,
                    const uint64_t *keys, size_t n, size_t content_n)
{
        size_t i = ix->cnt, d = ix->off[i], j;
        uint64_t sketch = 0;

        ix->distinct[i] = 0;
        if (d + n > ix->occ_cap) {
                while (d + n > ix->occ_cap)
                        ix->occ_cap *= 2;
                ix->terms =
                    cm_realloc(ix->terms, ix->occ_cap * sizeof(*ix->terms));
                ix->tf = cm_realloc(ix->tf, ix->occ_cap * sizeof(*ix->tf));
        }
        for (j = 0; j < n; j++) {
                uint32_t t = term_add(ix, keys[j]);

                if (ix->last_doc[t] == i + 1) {
                        if (ix->tf[ix->last_pos[t]] < UINT16_MAX)
                                ix->tf[ix->last_pos[t]]++;
                        continue;
                }
                ix->last_doc[t] = (uint32_t)(i + 1);
                ix->last_pos[t] = (uint32_t)d;
                ix->df[t]++;
                ix->terms[d] = t;
                ix->tf[d] = 1;
                if (j < content_n) {
                        sketch |= sketch_bit(keys[j]);
                        ix->distinct[i]++;
                }
                d++;
        }
        ix->off[i + 1] = (uint32_t)d;
        ix->len[i] = (uint32_t)n;
        ix->sketch[i] = sketch;
        ix->flags[i] = 0;
        if (content_n <= CM_RECALL_SHORT_TERMS &&
            msg->content_len <= CM_RECALL_SHORT_BYTES)
                ix->flags[i] |= F_SHORT;
        if (ends_question(msg->content, msg->content_len))
                ix->flags[i] |= F_QUESTION;
        ix->total_len += n;
        ix->cnt++;
}

/* Frees what the index holds (not the index). */
static void index_release(cm_recall_index_t *ix)
{
        free(ix->off);
        free(ix->distinct);
        free(ix->len);
        free(ix->sketch);
        free(ix->flags);
        free(ix->terms);
        free(ix->tf);
        free(ix->slots);
        free(ix->term_key);
        free(ix->df);
        free(ix->last_doc);
        free(ix->last_pos);
}

/* Frees what the index holds and makes it the empty index. */
static void index_reset(cm_recall_index_t *ix)
{
        index_release(ix);
        memset(ix, 0, sizeof(*ix));
        ix->cap = 64;
        ix->off = cm_calloc(ix->cap + 1, sizeof(*ix->off));
        ix->len = cm_malloc(ix->cap * sizeof(*ix->len));
        ix->distinct = cm_malloc(ix->cap * sizeof(*ix->distinct));
        ix->sketch = cm_malloc(ix->cap * sizeof(*ix->sketch));
        ix->flags = cm_malloc(ix->cap * sizeof(*ix->flags));
        ix->occ_cap = 1024;
        ix->terms = cm_malloc(ix->occ_cap * sizeof(*ix->terms));
        ix->tf = cm_malloc(ix->occ_cap * sizeof(*ix->tf));
        ix->slots = cm_calloc(1024, sizeof(*ix->slots));
        ix->slot_mask = 1023;
        ix->term_cap = 256;
        ix->term_key = cm_malloc(ix->term_cap * sizeof(*ix->term_key));
        ix->df = cm_malloc(ix->term_cap * sizeof(*ix->df));
        ix->last_doc = cm_malloc(ix->term_cap * sizeof(*ix->last_doc));
        ix->last_pos = cm_malloc(ix->term_cap * sizeof(*ix->last_pos));
}

void cm_recall_date(int64_t ts, int64_t *year, int *month, int *day)
{
        int64_t days = ts / 86400000 - (ts % 86400000 < 0);
        int64_t z = days + 719468;
        int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        int64_t doe = z - era * 146097;
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        int64_t mp = (5 * doy + 2) / 153;

        *day = (int)(doy - (153 * mp + 2) / 5 + 1);
        *month = (int)(mp < 10 ? mp + 3 : mp - 9);
        *year = yoe + era * 400 + (*month <= 2);
}

/*
 * Adds the terms of the date of ts, when known, to sk: its month's name
 * and its year, as the words "July" and "2022" give them, so that a
 * question about "July 2022" finds what was said then, as the context
 * shows it ("[2022-07-09] ..."). Not the day: a bare number in a query is
 * more often a count than a day. Not among the terms that make two
 * messages repeats of each other.
 */
static void date_terms(int64_t ts, sink_t *sk)
{
        int64_t year;
        int month, day;
        char digits[4];

        if (!ts)
                return;
        cm_recall_date(ts, &year, &month, &day);
        if (year < 1000 || year > 9999)
                return;
        sink_add(sk, NULL, 0, month_key[month - 1]);
        digits[0] = (char)('0' + year / 1000);
        digits[1] = (char)('0' + year / 100 % 10);
        digits[2] = (char)('0' + year / 10 % 10);
        digits[3] = (char)('0' + year % 10);
        sink_add(sk, NULL, 0, word_key(digits, 4));
}

cm_recall_index_t *cm_recall_index_new(const cm_message_t *msgs, size_t cnt)
{
        cm_recall_index_t *ix = cm_calloc(1, sizeof(*ix));

        index_reset(ix);
        cm_recall_index_extend(ix, msgs, cnt);
        return ix;
}

void cm_recall_index_extend(cm_recall_index_t *ix, const cm_message_t *msgs,
                            size_t cnt)
{
        sink_t sk;
        size_t i;

        pthread_once(&tables_once, tables_init);
        if (cnt < ix->cnt)
                index_reset(ix);
        ix->msgs = msgs;
        docs_reserve(ix, cnt);
        memset(&sk, 0, sizeof(sk));
        for (i = ix->cnt; i < cnt; i++) {
                size_t content_n;

                sk.cnt = 0;
                content_n = scan(msgs[i].content, msgs[i].content_len, &sk);
                date_terms(msgs[i].ts, &sk);
                doc_add(ix, &msgs[i], sk.key, sk.cnt, content_n);
        }
        free(sk.key);
}

void cm_recall_index_destroy(cm_recall_index_t *ix)
{
        if (!ix)
                return;
        index_release(ix);
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

/* A term set: its size, its sketch and the ids of those of its terms
 * that are in the index. */
typedef struct termset {
        size_t n;
        uint64_t sketch;
        const uint32_t *ids;
        size_t id_cnt;
} termset_t;

typedef struct hit {
        double score;
        uint32_t doc;
} hit_t;

struct cm_recall_search {
        const cm_recall_index_t *ix;
        hit_t *hits; /* hits[0..ranked) in rank order, the rest not yet */
        size_t hit_cnt, ranked, next, chunk;
        uint8_t *claimed; /* per candidate: in a unit already */
        uint32_t *chosen; /* the candidates in units, in order */
        size_t chosen_cnt;
        termset_t *recent; /* the recent messages' term sets */
        size_t recent_cnt;
        uint32_t *recent_ids;
        uint32_t *mark; /* per term id: the stamp of the set marked */
        uint32_t stamp;
};

static termset_t doc_set(const cm_recall_index_t *ix, size_t i)
{
        termset_t ts;

        ts.ids = ix->terms + ix->off[i];
        ts.n = ts.id_cnt = ix->distinct[i];
        ts.sketch = ix->sketch[i];
        return ts;
}

static unsigned popcount64(uint64_t x)
{
        x = x - ((x >> 1) & 0x5555555555555555ULL);
        x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
        x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
        return (unsigned)((x * 0x0101010101010101ULL) >> 56);
}

/*
 * Whether b is a near-repeat of a, the set last marked (rs->mark holds
 * rs->stamp for a's ids): Jaccard(a, b) >= 4/5. Two cheap necessary
 * conditions first: the sizes are within 4/5 of each other, and the bits
 * where the sketches differ, each set by a term of one set only, number
 * at most |a xor b| <= (1 - 4/5) * |a u b| <= (|a| + |b|) / 5.
 */
static int near_repeat(const cm_recall_search_t *rs, const termset_t *a,
                       const termset_t *b)
{
        size_t i, inter = 0, uni;

        if (!a->n || !b->n)
                return 0;
        if (a->n * REPEAT_DEN < b->n * REPEAT_NUM ||
            b->n * REPEAT_DEN < a->n * REPEAT_NUM)
                return 0;
        if (popcount64(a->sketch ^ b->sketch) * REPEAT_DEN >
            (a->n + b->n) * (REPEAT_DEN - REPEAT_NUM))
                return 0;
        for (i = 0; i < b->id_cnt; i++)
                inter += rs->mark[b->ids[i]] == rs->stamp;
        uni = a->n + b->n - inter;
        return inter * REPEAT_DEN >= uni * REPEAT_NUM;
}

/* Whether candidate i repeats a recent message or one already chosen. */
static int repeats(cm_recall_search_t *rs, size_t i)
{
        const cm_recall_index_t *ix = rs->ix;
        termset_t t = doc_set(ix, i);
        size_t k;

        if (!t.n)
                return 0;
        rs->stamp++;
        for (k = 0; k < t.id_cnt; k++)
                rs->mark[t.ids[k]] = rs->stamp;
        for (k = 0; k < rs->recent_cnt; k++) {
                if (near_repeat(rs, &t, &rs->recent[k]))
                        return 1;
        }
        for (k = 0; k < rs->chosen_cnt; k++) {
                termset_t c = doc_set(ix, rs->chosen[k]);

                if (near_repeat(rs, &t, &c))
                        return 1;
        }
        return 0;
}

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

/* Moves the k best of h[0..n) (0 < k <= n) to h[0..k), in rank order:
 * quickselect (median of three), then a sort of the k. */
static void select_best(hit_t *h, size_t n, size_t k)
{
        size_t lo = 0, hi = n; /* the k-th best is in h[lo..hi) */

        while (k < n && hi - lo > 1) {
                size_t mid = lo + (hi - lo) / 2, i, store = lo;

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

/* Sorts k[0..n) and folds repeats; returns the distinct count. */
static size_t sort_unique(uint64_t *k, size_t n)
{
        size_t i, j, d = 0;

        for (i = 1; i < n; i++) {
                uint64_t v = k[i];

                for (j = i; j > 0 && k[j - 1] > v; j--)
                        k[j] = k[j - 1];
                k[j] = v;
        }
        for (i = 0; i < n; i++) {
                if (!d || k[d - 1] != k[i])
                        k[d++] = k[i];
        }
        return d;
}

/*
 * Adds to each hit of raw[0..cnt) (the candidates' own scores, 0 for
 * those that are no hit) the scores of its neighbours, as the header of
 * this file says, into rs->hits.
 */
static void hits_in_context(cm_recall_search_t *rs, const double *raw,
                            size_t cnt)
{
        size_t i, d;

        for (i = 0; i < cnt; i++) {
                double score = raw[i], w = 1;

                if (score <= 0)
                        continue;
                for (d = 1; d <= CONTEXT_REACH; d++) {
                        w *= CONTEXT_DECAY;
                        if (i >= d)
                                score += w * raw[i - d];
                        if (i + d < cnt)
                                score += w * raw[i + d];
                }
                rs->hits[rs->hit_cnt].doc = (uint32_t)i;
                rs->hits[rs->hit_cnt++].score = score;
        }
}

/*
 * Scores the hits of the query terms keys[0..q) (distinct) into rs->hits.
 * The candidates' term lists are walked once, each id checked against the
 * query's (a byte per term id): no postings to build or to keep up to
 * date when the index grows, for a walk of a few thousand ids.
 */
static void score_hits(cm_recall_search_t *rs, const uint64_t *keys, size_t q)
{
        const cm_recall_index_t *ix = rs->ix;
        double *idf = cm_malloc(q * sizeof(*idf));
        double *raw = cm_calloc(ix->cnt, sizeof(*raw));
        uint8_t *qslot = cm_calloc(ix->term_cnt, sizeof(*qslot));
        double avg =
            ix->total_len ? (double)ix->total_len / (double)ix->cnt : 1.0;
        size_t found = 0, i, j;

        /* qslot[t]: 1 + the index in idf[] of term t, 0 when not asked. */
        for (i = 0; i < q && found < UINT8_MAX; i++) {
                long t = term_find(ix, keys[i]);
                double df;

                if (t < 0)
                        continue;
                df = ix->df[t];
                idf[found] =
                    log(1.0 + ((double)ix->cnt - df + 0.5) / (df + 0.5));
                qslot[t] = (uint8_t)++found;
        }
        for (i = 0; found && i < ix->cnt; i++) {
                double score = 0, norm = 0;
                unsigned matched = 0;

                for (j = ix->off[i]; j < ix->off[i + 1]; j++) {
                        unsigned k = qslot[ix->terms[j]];
                        double tf;

                        if (!k)
                                continue;
                        if (!matched++)
                                norm = BM25_K1 *
                                       (1.0 - BM25_B +
                                        BM25_B * (double)ix->len[i] / avg);
                        tf = ix->tf[j];
                        score +=
                            idf[k - 1] * tf * (BM25_K1 + 1.0) / (tf + norm);
                }
                if (!matched)
                        continue;
                if (found > 1)
                        score *=
                            1.0 + COORD * (matched - 1) / (double)(found - 1);
                raw[i] = score;
        }
        if (found)
                hits_in_context(rs, raw, ix->cnt);
        free(idf);
        free(raw);
        free(qslot);
}

/* The term sets of the recent messages, for the repeats. */
static void recent_sets(cm_recall_search_t *rs, const cm_message_t *recent,
                        size_t cnt)
{
        sink_t sk;
        size_t i, k, ids = 0;

        memset(&sk, 0, sizeof(sk));
        rs->recent = cm_calloc(cnt ? cnt : 1, sizeof(*rs->recent));
        rs->recent_cnt = cnt;
        for (i = 0; i < cnt; i++) {
                size_t start = sk.cnt;

                scan(recent[i].content, recent[i].content_len, &sk);
                sk.cnt = start + sort_unique(sk.key + start, sk.cnt - start);
                rs->recent[i].n = sk.cnt - start;
        }
        rs->recent_ids =
            cm_malloc((sk.cnt ? sk.cnt : 1) * sizeof(*rs->recent_ids));
        for (i = 0, k = 0; i < cnt; i++) {
                termset_t *ts = &rs->recent[i];
                size_t end = k + ts->n;

                ts->ids = rs->recent_ids + ids;
                for (; k < end; k++) {
                        long t = term_find(rs->ix, sk.key[k]);

                        ts->sketch |= sketch_bit(sk.key[k]);
                        if (t >= 0)
                                rs->recent_ids[ids++] = (uint32_t)t;
                }
                ts->id_cnt = (size_t)(rs->recent_ids + ids - ts->ids);
        }
        free(sk.key);
}

cm_recall_search_t *cm_recall_search_new(const cm_recall_index_t *ix,
                                         const char *query, size_t query_len,
                                         const cm_message_t *recent,
                                         size_t recent_cnt)
{
        cm_recall_search_t *rs = cm_calloc(1, sizeof(*rs));
        sink_t qs;
        size_t q;

        pthread_once(&tables_once, tables_init);
        rs->ix = ix;
        if (!ix->cnt || !query)
                return rs;
        memset(&qs, 0, sizeof(qs));
        scan(query, query_len, &qs);
        q = sort_unique(qs.key, qs.cnt);
        rs->hits = cm_malloc(ix->cnt * sizeof(*rs->hits));
        score_hits(rs, qs.key, q);
        free(qs.key);
        if (!rs->hit_cnt)
                return rs;
        rs->claimed = cm_calloc(ix->cnt, sizeof(*rs->claimed));
        rs->chosen = cm_malloc(ix->cnt * sizeof(*rs->chosen));
        rs->mark =
            cm_calloc(ix->term_cnt ? ix->term_cnt : 1, sizeof(*rs->mark));
        rs->chunk = 16;
        recent_sets(rs, recent, recent_cnt);
        return rs;
}

size_t cm_recall_search_hits(const cm_recall_search_t *rs)
{
        return rs->hit_cnt;
}

static int other_role(const cm_message_t *a, const cm_message_t *b)
{
        return a->role != b->role;
}

/* Whether the message after question i is its answer, free to come
 * along: by the other role, in no unit yet, no repeat. */
static int answer_follows(cm_recall_search_t *rs, size_t i)
{
        const cm_recall_index_t *ix = rs->ix;

        return i + 1 < ix->cnt && !rs->claimed[i + 1] &&
               other_role(&ix->msgs[i], &ix->msgs[i + 1]) &&
               !repeats(rs, i + 1);
}

/* Forms the unit of hit h into *u; returns 0 when h is skipped. */
static int unit_form(cm_recall_search_t *rs, const hit_t *h,
                     cm_recall_unit_t *u)
{
        const cm_recall_index_t *ix = rs->ix;
        const cm_message_t *m = ix->msgs;
        size_t i = h->doc;

        if (rs->claimed[i])
                return 0;
        u->score = h->score;
        if (repeats(rs, i)) {
                /* A question asked again (the newest user message, say):
                 * the answer it had is still worth recalling, alone. */
                if (!(ix->flags[i] & F_QUESTION) || !answer_follows(rs, i))
                        return 0;
                u->hit = u->first = u->last = i + 1;
                goto claim;
        }
        u->hit = u->first = u->last = i;
        /* A short hit, or an answer (a hit that is no question) to a
         * question by the other role, or to a turn without a term ("And
         * you", "How so"). */
        if (i > 0 && !rs->claimed[i - 1] &&
            ((ix->flags[i] & F_SHORT) ||
             (!(ix->flags[i] & F_QUESTION) && other_role(&m[i - 1], &m[i]) &&
              ((ix->flags[i - 1] & F_QUESTION) ||
               ((ix->flags[i - 1] & F_SHORT) && !ix->distinct[i - 1])))) &&
            !repeats(rs, i - 1))
                u->first = i - 1;
        /* A question hit, the answer after it by the other role: what
         * the question was asked for, whatever its length. (Measured on
         * long two-person conversations, bringing it even when long
         * keeps the answer to 7 to 10% more questions at 500 to 2000
         * tokens than bringing only a short one.) */
        if ((ix->flags[i] & F_QUESTION) && answer_follows(rs, i))
                u->last = i + 1;
claim:
        for (i = u->first; i <= u->last; i++) {
                rs->claimed[i] = 1;
                rs->chosen[rs->chosen_cnt++] = (uint32_t)i;
        }
        return 1;
}

int cm_recall_search_next(cm_recall_search_t *rs, cm_recall_unit_t *unit)
{
        while (rs->next < rs->hit_cnt) {
                if (rs->next == rs->ranked) {
                        /* Rank the next chunk of the hits left. */
                        size_t left = rs->hit_cnt - rs->ranked;
                        size_t k = left < rs->chunk ? left : rs->chunk;

                        select_best(rs->hits + rs->ranked, left, k);
                        rs->ranked += k;
                        rs->chunk *= 2;
                }
                if (unit_form(rs, &rs->hits[rs->next++], unit))
                        return 1;
        }
        return 0;
}

void cm_recall_search_destroy(cm_recall_search_t *rs)
{
        if (!rs)
                return;
        free(rs->hits);
        free(rs->claimed);
        free(rs->chosen);
        free(rs->recent);
        free(rs->recent_ids);
        free(rs->mark);
        free(rs);
}
