/*
 * summarize_extractive: the embedded, deterministic summarizer.
 *
 * 1. The previous summary and each new message are cut into sentences
 *    (at . ! ? followed by a space, and at line breaks; abbreviations and
 *    initials do not end a sentence).
 * 2. A leading greeting clause is dropped ("Hi, I'm Sumit" → "I'm
 *    Sumit"); a sentence with no content word left ("Thanks!", "You're
 *    welcome", "Nice to meet you") is dropped.
 * 3. Each sentence is scored for what it carries: proper names, numbers,
 *    dates, places, decisions, first-person facts, questions the user asked,
 *    technical terms and topic words. Sentences below MIN_SCORE are dropped.
 *    Sentences of the previous summary were kept once already and get a
 *    bonus instead of the threshold.
 * 4. Kept sentences are put in the third person where cheap ("I work with
 *    React" → "The user works with React", a user question → "The user
 *    asked: …") and capped at SENT_MAX_BYTES (cut between words, "…").
 * 5. They are taken best first (score plus a recency bonus, so on a tie
 *    the newest wins), skipping any whose content words are a near-repeat
 *    (Jaccard >= DUP_JACCARD) of one already taken and any that does not
 *    fit the token budget. The taken ones are written oldest first and the
 *    result is counted again; while over, the weakest is dropped, and a
 *    lone sentence is cut to fit.
 *
 * Everything is a pure function of the input: no clock, no randomness, no
 * locale (only ASCII letters change case).
 */
#include "summarize.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "util.h"

#define MIN_SCORE      2.0
#define SUMMARY_BONUS  1.5
#define RECENCY_WEIGHT 1.5
#define DUP_JACCARD    0.8
#define SENT_MAX_BYTES 240
#define WORD_MAX       32 /* longer words are never on a list */
#define ELLIPSIS       "\xe2\x80\xa6"

/* Function words: never content. Sorted (strcmp) for bsearch. */
static const char *const stop_words[] = {
    "a",          "about",     "above",    "actually", "after",      "again",
    "against",    "all",       "already",  "also",     "always",     "am",
    "an",         "and",       "any",      "anyone",   "anything",   "are",
    "aren't",     "as",        "at",       "be",       "because",    "been",
    "before",     "being",     "below",    "between",  "both",       "but",
    "by",         "can",       "can't",    "could",    "did",        "didn't",
    "do",         "does",      "doesn't",  "doing",    "don't",      "down",
    "during",     "each",      "even",     "ever",     "every",      "everyone",
    "everything", "few",       "for",      "from",     "further",    "get",
    "gets",       "getting",   "got",      "had",      "has",        "have",
    "having",     "he",        "he's",     "her",      "here",       "here's",
    "hers",       "herself",   "him",      "himself",  "his",        "how",
    "i",          "i'd",       "i'll",     "i'm",      "i've",       "if",
    "in",         "into",      "is",       "isn't",    "it",         "it's",
    "its",        "itself",    "just",     "let's",    "lot",        "lots",
    "made",       "make",      "many",     "maybe",    "me",         "more",
    "most",       "much",      "my",       "myself",   "never",      "no",
    "nor",        "not",       "now",      "of",       "off",        "often",
    "on",         "once",      "one",      "ones",     "only",       "or",
    "other",      "our",       "ours",     "out",      "over",       "own",
    "perhaps",    "pretty",    "probably", "quite",    "really",     "same",
    "she",        "she's",     "should",   "so",       "some",       "someone",
    "something",  "sometimes", "still",    "stuff",    "such",       "than",
    "that",       "that's",    "the",      "their",    "theirs",     "them",
    "then",       "there",     "there's",  "these",    "they",       "they're",
    "thing",      "things",    "this",     "those",    "through",    "to",
    "too",        "under",     "until",    "up",       "usually",    "very",
    "was",        "wasn't",    "way",      "we",       "we're",      "were",
    "what",       "what's",    "when",     "where",    "which",      "while",
    "who",        "whom",      "why",      "will",     "with",       "won't",
    "would",      "yet",       "you",      "you'd",    "you'll",     "you're",
    "you've",     "your",      "yours",    "yourself", "yourselves",
};

/* Greetings, politeness and small talk: never content. Sorted. */
static const char *const filler_words[] = {
    "absolutely", "afternoon",  "agree",     "ah",      "alright",
    "amazing",    "awesome",    "believe",   "bit",     "bye",
    "care",       "chat",       "chatting",  "cool",    "course",
    "day",        "definitely", "enjoy",     "evening", "exactly",
    "excellent",  "fantastic",  "feel",      "feeling", "fine",
    "fun",        "glad",       "good",      "goodbye", "great",
    "greetings",  "guess",      "haha",      "happy",   "hear",
    "hello",      "help",       "hey",       "hi",      "hiya",
    "hmm",        "hope",       "hopefully", "indeed",  "interesting",
    "kind",       "know",       "later",     "like",    "little",
    "lol",        "love",       "mean",      "meet",    "morning",
    "nice",       "night",      "nope",      "oh",      "ok",
    "okay",       "perfect",    "please",    "right",   "see",
    "sorry",      "sound",      "sounds",    "sure",    "talk",
    "talking",    "tell",       "thank",     "thanks",  "think",
    "thx",        "totally",    "true",      "welcome", "well",
    "wish",       "wonderful",  "wow",       "yeah",    "yep",
    "yes",        "yup",
};

/* Words the summary itself adds; ignored when comparing sentences. */
static const char *const label_words[] = {
    "asked", "assistant", "assistant's", "said", "user", "user's",
};

static const char *const date_words[] = {
    "anniversary", "apr",      "april",    "aug",     "august",    "birthday",
    "deadline",    "dec",      "december", "feb",     "february",  "friday",
    "jan",         "january",  "jul",      "july",    "jun",       "june",
    "march",       "monday",   "month",    "nov",     "november",  "oct",
    "october",     "saturday", "sep",      "sept",    "september", "sunday",
    "thursday",    "today",    "tomorrow", "tonight", "tuesday",   "wednesday",
    "week",        "weekend",  "year",     "years",   "yesterday",
};

static const char *const decision_words[] = {
    "agree",   "agreed",   "book",      "booked",   "choose",    "chose",
    "chosen",  "decide",   "decided",   "decides",  "decision",  "going",
    "intend",  "must",     "need",      "needs",    "pick",      "picked",
    "plan",    "planned",  "planning",  "plans",    "prefer",    "preferred",
    "prefers", "schedule", "scheduled", "settle",   "settled",   "start",
    "started", "starting", "switch",    "switched", "switching", "try",
    "trying",  "want",     "wanted",    "wants",    "will",
};

/* A sentence opening with one of these states a fact about the speaker. */
static const char *const self_words[] = {
    "i",  "i'd", "i'll", "i'm",   "i've",  "me",
    "my", "our", "we",   "we're", "we've",
};

/* Followed by a capitalised word, these point at a place. */
static const char *const place_cues[] = {
    "at",   "based", "born", "from", "in",   "live",  "lives",   "living",
    "move", "moved", "near", "to",   "trip", "visit", "visited", "visiting",
};

/* May sit between "I" and its verb ("I really like"). */
static const char *const verb_adverbs[] = {
    "absolutely", "actually",   "already", "also",       "always",
    "currently",  "definitely", "even",    "just",       "mostly",
    "never",      "often",      "only",    "personally", "really",
    "recently",   "sometimes",  "still",   "totally",    "usually",
};

/* Verbs that stay as they are after "he/she": modals and simple pasts
 * ("I can" → "The user can", "I went" → "The user went"). */
static const char *const invariant_verbs[] = {
    "ate",     "became",   "began", "bought",   "broke",      "brought",
    "built",   "came",     "can",   "can't",    "chose",      "cost",
    "could",   "couldn't", "cut",   "did",      "didn't",     "drew",
    "drove",   "fell",     "felt",  "flew",     "forgot",     "found",
    "gave",    "got",      "grew",  "had",      "heard",      "hid",
    "hit",     "hurt",     "kept",  "knew",     "left",       "let",
    "lost",    "made",     "may",   "met",      "might",      "must",
    "paid",    "put",      "quit",  "ran",      "rode",       "said",
    "sat",     "saw",      "sent",  "set",      "should",     "shouldn't",
    "shut",    "sold",     "spent", "spoke",    "stood",      "taught",
    "thought", "threw",    "told",  "took",     "understood", "used",
    "was",     "wasn't",   "went",  "will",     "woke",       "won",
    "won't",   "wore",     "would", "wouldn't", "wrote",
};

/* A period after these does not end a sentence. */
static const char *const abbreviations[] = {
    "a.m", "approx", "dr",  "e.g", "etc", "fig",  "i.e", "inc", "jr",
    "ltd", "mr",     "mrs", "ms",  "p.m", "prof", "sr",  "st",  "vs",
};

#define LIST(l) (l), sizeof(l) / sizeof((l)[0])

typedef enum origin {
        ORIGIN_SUMMARY = 0,
        ORIGIN_USER,
        ORIGIN_ASSISTANT,
} origin_t;

/* One word of a sentence: where it is and its lowercase form. */
typedef struct word {
        size_t off;
        size_t len;
        char lower[WORD_MAX]; /* "" when len >= WORD_MAX */
} word_t;

/* A sentence that may go into the summary. */
typedef struct cand {
        char *text; /* owned: as it will be written */
        size_t len;
        double score;
        double priority;
        size_t order;   /* oldest first, over summary then messages */
        int tokens;     /* of text alone */
        uint64_t *hash; /* owned: sorted content-word hashes of text */
        size_t hash_cnt;
        int taken;
} cand_t;

typedef struct fold {
        const cm_fold_in_t *in;
        cand_t *cands;
        size_t cnt;
        size_t cap;
        size_t order;
        word_t *words; /* scratch for the sentence at hand */
        size_t word_cap;
} fold_t;

static int cmp_str(const void *key, const void *elem)
{
        return strcmp((const char *)key, *(const char *const *)elem);
}

static int in_list(const char *w, const char *const *list, size_t n)
{
        return w[0] != '\0' && bsearch(w, list, n, sizeof(*list), cmp_str);
}

/* ’ (U+2019) or ‘ (U+2018) at s[0..n). */
static int curly_quote(const unsigned char *s, size_t n)
{
        return n >= 3 && s[0] == 0xe2 && s[1] == 0x80 &&
               (s[2] == 0x98 || s[2] == 0x99);
}

/* Bytes of a character that joins two word characters into one word
 * ("I'm", "I’m", "Node.js", "async/await", "R&D"), or 0. */
static size_t joiner(const unsigned char *s, size_t n)
{
        if (curly_quote(s, n))
                return 3;
        return s[0] && strchr("'-./+#&_", s[0]) ? 1 : 0;
}

/*
 * Splits s[0..n) into words: runs of word characters, joined as above,
 * plus a trailing "++" or "#" ("C++", "C#"). Lowercases each into
 * word_t.lower with curly apostrophes made ASCII. Returns the word count;
 * *words grows as needed.
 */
static size_t split_words(const char *text, size_t n, word_t **words,
                          size_t *cap)
{
        const unsigned char *s = (const unsigned char *)text;
        size_t i = 0;
        size_t cnt = 0;

        while (i < n) {
                size_t c = cm_text_word_char(text + i, n - i);
                size_t start = i;
                size_t o = 0;
                size_t j;
                uint32_t cp;
                word_t *w;

                if (!c) {
                        i += cm_utf8_decode(text + i, n - i, &cp);
                        continue;
                }
                i += c;
                while (i < n) {
                        c = cm_text_word_char(text + i, n - i);
                        if (c) {
                                i += c;
                                continue;
                        }
                        j = joiner(s + i, n - i);
                        if (j && i + j < n &&
                            cm_text_word_char(text + i + j, n - i - j)) {
                                i += j;
                                continue;
                        }
                        break;
                }
                if (i + 1 < n && s[i] == '+' && s[i + 1] == '+')
                        i += 2;
                else if (i < n && s[i] == '#')
                        i++;
                if (cnt == *cap) {
                        *cap = *cap ? *cap * 2 : 32;
                        *words = cm_realloc(*words, *cap * sizeof(**words));
                }
                w = &(*words)[cnt++];
                w->off = start;
                w->len = i - start;
                for (size_t k = start; k < i && o < WORD_MAX; k++) {
                        if (curly_quote(s + k, i - k)) {
                                w->lower[o++] = '\'';
                                k += 2;
                        } else {
                                w->lower[o++] = (char)cm_tolower(s[k]);
                        }
                }
                if (o >= WORD_MAX)
                        o = 0; /* too long for any list */
                w->lower[o] = '\0';
        }
        return cnt;
}

static int is_content(const word_t *w)
{
        if (w->lower[0] == '\0')
                return 1; /* a very long word: an identifier, a URL */
        if (w->len < 2 && !cm_isdigit(w->lower[0]))
                return 0;
        return !in_list(w->lower, LIST(stop_words)) &&
               !in_list(w->lower, LIST(filler_words));
}

static int has_digit(const char *s, const word_t *w)
{
        size_t k;

        for (k = 0; k < w->len; k++) {
                if (cm_isdigit(s[w->off + k]))
                        return 1;
        }
        return 0;
}

/* Capitalised and not all capitals of one letter ("I", "A"). */
static int capitalised(const char *s, const word_t *w)
{
        return cm_isupper(s[w->off]) && w->len > 1;
}

/* An identifier, a path, a version: "Node.js", "async/await", "C++",
 * "loadUser", "v2". */
static int technical(const char *s, const word_t *w)
{
        size_t k;

        if (s[w->off + w->len - 1] == '+' || s[w->off + w->len - 1] == '#')
                return 1;
        for (k = 1; k < w->len; k++) {
                unsigned char c = (unsigned char)s[w->off + k];

                if (strchr("./_#+", c))
                        return 1;
                if (cm_isupper(c) && !cm_isupper(s[w->off + k - 1]))
                        return 1;
        }
        return 0;
}

/* ---- sentences ------------------------------------------------------ */

/* Returns 1 if the '.' at s[i] ends a sentence that starts at s[0]. */
static int period_ends(const char *s, size_t i)
{
        size_t start = i;
        char w[WORD_MAX];
        size_t k;

        while (start > 0 && (cm_isalnum(s[start - 1]) || s[start - 1] == '.'))
                start--;
        if (i - start == 1 && cm_isupper(s[start]))
                return 0; /* an initial: "J. R. R. Tolkien" */
        if (i - start == 0 || i - start >= WORD_MAX)
                return 1;
        for (k = 0; k < i - start; k++)
                w[k] = (char)cm_tolower(s[start + k]);
        w[k] = '\0';
        return !in_list(w, LIST(abbreviations));
}

/* After spaces, s[0..n) goes on with a lowercase letter. */
static int next_lower(const char *s, size_t n)
{
        size_t i = 0;

        while (i < n && (s[i] == ' ' || s[i] == '\t'))
                i++;
        return i < n && cm_islower(s[i]);
}

/*
 * Length of the sentence at s[0..n): up to and including its terminator
 * (. ! ? with closing quotes and brackets, or …) when a space or the end
 * follows, or up to a line break. Never 0 when n > 0.
 */
static size_t sentence_len(const char *s, size_t n)
{
        size_t i;

        for (i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                size_t e;

                if (c == '\n')
                        return i + 1;
                if (c == 0xe2 && i + 2 < n && memcmp(s + i, ELLIPSIS, 3) == 0 &&
                    (i + 3 == n || cm_isspace(s[i + 3])))
                        return i + 3;
                if (c == '.' || c == '!' || c == '?') {
                        e = i + 1;
                        while (e < n && strchr(".!?\"')]", s[e]) && s[e])
                                e++;
                        if (e < n && !cm_isspace(s[e]))
                                continue;
                        if (c == '.' && e == i + 1 && !period_ends(s, i))
                                continue;
                        if (c == '.' && next_lower(s + e, n - e))
                                continue; /* "Super Smash Bros. and…" */
                        return e;
                }
        }
        return n;
}

/* Trims spaces and stray punctuation at the start, spaces at the end. */
static void trim(const char **s, size_t *n)
{
        while (*n > 0 && (cm_isspace(**s) || strchr(",;:-*>", **s) != NULL) &&
               **s)
                (*s)++, (*n)--;
        while (*n > 0 && cm_isspace((*s)[*n - 1]))
                (*n)--;
}

/*
 * Drops leading greeting clauses: the words before the first ',' or ':'
 * are all function words or small talk ("Hi,", "Well,", "Nice to meet
 * you,", "Sure:"), or a greeting and at most two capitalised words ("Hi
 * Tom,"). Returns the new start offset.
 */
static size_t strip_greeting(const char *s, size_t n, const word_t *words,
                             size_t cnt)
{
        size_t at = 0;
        size_t wi = 0;

        for (;;) {
                size_t k = at;
                size_t first = wi;
                int filler = 1;
                int caps = 0;

                while (k < n && s[k] != ',' && s[k] != ':')
                        k++;
                if (k >= n)
                        return at;
                while (wi < cnt && words[wi].off < k) {
                        const word_t *w = &words[wi];

                        if (in_list(w->lower, LIST(stop_words)) ||
                            in_list(w->lower, LIST(filler_words)))
                                ;
                        else if (capitalised(s, w) && wi > first)
                                caps++;
                        else
                                filler = 0;
                        wi++;
                }
                if (!filler || wi == first || wi - first > 5 || caps > 2 ||
                    (caps > 0 &&
                     !in_list(words[first].lower, LIST(filler_words))))
                        return at;
                at = k + 1;
                while (at < n && cm_isspace(s[at]))
                        at++;
        }
}

typedef struct features {
        int content;
        int proper;
        int numbers;
        int technical;
        int date;
        int decision;
        int place;
        int self;
} features_t;

static void features(const char *s, const word_t *words, size_t cnt,
                     features_t *f)
{
        size_t k;

        memset(f, 0, sizeof(*f));
        for (k = 0; k < cnt; k++) {
                const word_t *w = &words[k];
                int cap = capitalised(s, w);

                f->content += is_content(w);
                f->numbers += has_digit(s, w);
                f->technical += technical(s, w);
                f->date |= in_list(w->lower, LIST(date_words));
                f->decision |= in_list(w->lower, LIST(decision_words));
                if (cap && w->lower[0] != '\0' && !is_content(w))
                        cap = 0; /* "Thanks", "Hello" */
                if (cap && k == 0)
                        cap = cnt > 1 && capitalised(s, &words[1]);
                for (size_t j = 0; cap && j < k; j++) {
                        if (strcmp(words[j].lower, w->lower) == 0)
                                cap = 0; /* counted once */
                }
                f->proper += cap;
                if (cap && k > 0 &&
                    in_list(words[k - 1].lower, LIST(place_cues)))
                        f->place = 1;
        }
        f->self = cnt > 0 && in_list(words[0].lower, LIST(self_words));
}

static double min_d(double a, double b)
{
        return a < b ? a : b;
}

static double score(const features_t *f, origin_t origin, int question,
                    int first_of_msg)
{
        double sc = 0;

        sc += 1.5 * min_d(f->proper, 3);
        sc += 1.5 * min_d(f->numbers, 3);
        sc += 0.8 * min_d(f->technical, 2);
        sc += 0.4 * min_d(f->content, 6);
        /* "a great plan!" alone is small talk */
        sc += f->date && f->content >= 2 ? 1.5 : 0;
        sc += f->decision && f->content >= 2 ? 1.5 : 0;
        sc += f->place ? 1.0 : 0;
        if (origin == ORIGIN_ASSISTANT) {
                sc -= 1.0;
                sc += first_of_msg ? 0.5 : 0;
                sc -= question ? 2.0 : 0;
        } else {
                sc += 0.5;
                sc += f->self ? 1.5 : 0;
                sc += f->self && f->proper ? 1.5 : 0; /* "I'm Sumit" */
                if (question)
                        sc += f->content >= 2 ? 2.5 : 1.0;
        }
        return sc;
}

/* ---- writing sentences ---------------------------------------------- */

/* Appends the third-person form of verb v ("like" → "likes"). */
static void add_verb(cm_buf_t *b, const char *v, size_t n)
{
        char last = n ? (char)cm_tolower(v[n - 1]) : 0;
        char prev = n > 1 ? (char)cm_tolower(v[n - 2]) : 0;

        if (n == 4 && strncmp(v, "have", 4) == 0) {
                cm_buf_adds(b, "has");
                return;
        }
        cm_buf_add(b, v, n);
        if (n > 2 && prev == 'e' && last == 'd' && cm_tolower(v[n - 3]) != 'e')
                return; /* past tense, but not "need" */
        if (last == 's' || last == 'x' || last == 'z' || last == 'o' ||
            ((prev == 's' || prev == 'c') && last == 'h')) {
                cm_buf_adds(b, "es");
        } else if (last == 'y' && prev && !strchr("aeiou", prev)) {
                b->len--;
                b->buf[b->len] = '\0';
                cm_buf_adds(b, "ies");
        } else {
                cm_buf_adds(b, "s");
        }
}

static int all_lower(const char *s, const word_t *w)
{
        size_t k;

        for (k = 0; k < w->len; k++) {
                if (!cm_islower(s[w->off + k]))
                        return 0;
        }
        return 1;
}

/*
 * Appends the third-person form of the first-person subject and verb at
 * words[k] ("I'm" → "is", "I've" → "has", "I really like" → "really
 * likes"). Returns the offset in s just after what it replaced, or 0 when
 * nothing cheap applies (then b is untouched).
 */
static size_t third_person_verb(cm_buf_t *b, const char *s, const word_t *words,
                                size_t cnt, size_t k)
{
        static const char *const contracted[][2] = {
            {"i'm", "is"}, {"i've", "has"}, {"i'll", "will"}, {"i'd", "would"}};
        const char *w = words[k].lower;
        size_t v = k + 1;
        size_t i;

        for (i = 0; i < sizeof(contracted) / sizeof(contracted[0]); i++) {
                if (strcmp(w, contracted[i][0]) == 0) {
                        cm_buf_adds(b, contracted[i][1]);
                        return words[k].off + words[k].len;
                }
        }
        if (strcmp(w, "i") != 0 || k + 1 >= cnt)
                return 0;
        if (strcmp(words[k + 1].lower, "am") == 0) {
                cm_buf_adds(b, "is");
                return words[k + 1].off + words[k + 1].len;
        }
        if (in_list(words[k + 1].lower, LIST(verb_adverbs)) && k + 2 < cnt)
                v = k + 2;
        if (!all_lower(s, &words[v]))
                return 0;
        /* the adverb, if any, and the space before the verb */
        cm_buf_add(b, s + words[k + 1].off, words[v].off - words[k + 1].off);
        if (strcmp(words[v].lower, "do") == 0)
                cm_buf_adds(b, "does");
        else if (strcmp(words[v].lower, "don't") == 0)
                cm_buf_adds(b, "doesn't");
        else if (in_list(words[v].lower, LIST(invariant_verbs)))
                cm_buf_add(b, s + words[v].off, words[v].len);
        else
                add_verb(b, s + words[v].off, words[v].len);
        return words[v].off + words[v].len;
}

/* Conjunctions after which a first-person clause is rewritten too ("I'm
 * Maria and I live in Lisbon" → "… and lives in Lisbon"). */
static int conjunction(const word_t *w)
{
        return strcmp(w->lower, "and") == 0 || strcmp(w->lower, "but") == 0 ||
               strcmp(w->lower, "so") == 0 || strcmp(w->lower, "then") == 0;
}

/* "my" → "their", "me" → "them", "myself" → "themself"; else NULL. */
static const char *object_pronoun(const word_t *w)
{
        if (strcmp(w->lower, "my") == 0)
                return "their";
        if (strcmp(w->lower, "me") == 0)
                return "them";
        if (strcmp(w->lower, "myself") == 0)
                return "themself";
        return NULL;
}

/*
 * Writes s[0..n) in the third person into b, with label as the subject:
 * "I'm" → "<label> is", "I like" → "<label> likes", "My" → "<label>'s",
 * and so on after "and", "but", "so", "then"; "my" and "me" further on
 * become "their" and "them". Returns 0 when the sentence does not open in
 * the first person; b is then untouched.
 */
static int third_person(cm_buf_t *b, const char *s, size_t n,
                        const word_t *words, size_t cnt, const char *label)
{
        size_t mark = b->len;
        size_t pos;
        size_t j;

        if (cnt < 2 || words[0].off != 0)
                return 0;
        if (strcmp(words[0].lower, "my") == 0) {
                cm_buf_addf(b, "%s's", label);
                pos = words[0].len;
        } else {
                cm_buf_addf(b, "%s ", label);
                pos = third_person_verb(b, s, words, cnt, 0);
                if (pos == 0) {
                        b->len = mark;
                        b->buf[mark] = '\0';
                        return 0;
                }
        }
        for (j = 1; j < cnt; j++) {
                const char *obj = object_pronoun(&words[j]);
                size_t next;
                size_t at = b->len;

                if (words[j].off < pos)
                        continue;
                if (obj) {
                        cm_buf_add(b, s + pos, words[j].off - pos);
                        cm_buf_adds(b, obj);
                        pos = words[j].off + words[j].len;
                        continue;
                }
                if (!conjunction(&words[j - 1]))
                        continue;
                cm_buf_add(b, s + pos, words[j].off - pos);
                next = third_person_verb(b, s, words, cnt, j);
                if (next == 0) {
                        b->len = at;
                        b->buf[at] = '\0';
                        continue;
                }
                pos = next;
        }
        cm_buf_add(b, s + pos, n - pos);
        return 1;
}

/* Cuts b to at most max bytes between words (else at a UTF-8 boundary)
 * and appends "…". */
static void cap_bytes(cm_buf_t *b, size_t max)
{
        size_t cut = max;
        size_t k;

        if (b->len <= max)
                return;
        for (k = max; k > max / 2; k--) {
                if (b->buf[k] == ' ') {
                        cut = k;
                        break;
                }
        }
        while (cut > 0 && ((unsigned char)b->buf[cut] & 0xc0) == 0x80)
                cut--;
        while (cut > 0 && strchr(" ,;:-", b->buf[cut - 1]))
                cut--;
        b->len = cut;
        b->buf[cut] = '\0';
        cm_buf_adds(b, ELLIPSIS);
}

/* Ends the sentence with . ? or …; "!" becomes ".". */
static void end_sentence(cm_buf_t *b)
{
        char last;

        if (b->len >= 3 && memcmp(b->buf + b->len - 3, ELLIPSIS, 3) == 0)
                return;
        last = b->len ? b->buf[b->len - 1] : 0;
        if (last == '!') {
                b->buf[b->len - 1] = '.';
                return;
        }
        if (last != '.' && last != '?' && last != '"' && last != ')')
                cm_buf_add(b, ".", 1);
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a;
        uint64_t y = *(const uint64_t *)b;

        return x < y ? -1 : x > y;
}

/* Fills c->hash with the sorted, distinct content words of c->text. */
static void cand_hash(fold_t *fd, cand_t *c)
{
        size_t cnt = split_words(c->text, c->len, &fd->words, &fd->word_cap);
        size_t k;
        size_t u = 0;

        c->hash = cm_malloc((cnt ? cnt : 1) * sizeof(*c->hash));
        for (k = 0; k < cnt; k++) {
                const word_t *w = &fd->words[k];
                char tmp[WORD_MAX];

                if (!is_content(w) || in_list(w->lower, LIST(label_words)))
                        continue;
                if (w->lower[0] == '\0') {
                        size_t n =
                            w->len < WORD_MAX - 1 ? w->len : WORD_MAX - 1;

                        for (size_t j = 0; j < n; j++)
                                tmp[j] = (char)cm_tolower(
                                    (unsigned char)c->text[w->off + j]);
                        tmp[n] = '\0';
                        c->hash[u++] = cm_fnv1a(tmp, n) ^ w->len;
                } else {
                        c->hash[u++] = cm_fnv1a(w->lower, strlen(w->lower));
                }
        }
        qsort(c->hash, u, sizeof(*c->hash), cmp_u64);
        c->hash_cnt = 0;
        for (k = 0; k < u; k++) {
                if (k == 0 || c->hash[k] != c->hash[k - 1])
                        c->hash[c->hash_cnt++] = c->hash[k];
        }
}

static double jaccard(const cand_t *a, const cand_t *b)
{
        size_t i = 0;
        size_t j = 0;
        size_t both = 0;
        size_t any;

        while (i < a->hash_cnt && j < b->hash_cnt) {
                if (a->hash[i] == b->hash[j]) {
                        both++;
                        i++;
                        j++;
                } else if (a->hash[i] < b->hash[j]) {
                        i++;
                } else {
                        j++;
                }
        }
        any = a->hash_cnt + b->hash_cnt - both;
        return any ? (double)both / (double)any : 1.0;
}

static void cand_add(fold_t *fd, cm_buf_t *text, double sc)
{
        cand_t *c;

        if (fd->cnt == fd->cap) {
                fd->cap = fd->cap ? fd->cap * 2 : 32;
                fd->cands = cm_realloc(fd->cands, fd->cap * sizeof(*fd->cands));
        }
        c = &fd->cands[fd->cnt++];
        memset(c, 0, sizeof(*c));
        c->text = cm_buf_detach(text, &c->len);
        c->score = sc;
        c->order = fd->order++;
        c->tokens = cm_tokenizer_count(fd->in->tk, c->text, c->len);
        cand_hash(fd, c);
}

/* Considers one sentence s[0..n) of the given origin. */
static void add_sentence(fold_t *fd, const char *s, size_t n, origin_t origin,
                         int first_of_msg)
{
        size_t cnt;
        size_t at;
        features_t f;
        int question;
        double sc;
        cm_buf_t b;
        const char *label =
            origin == ORIGIN_ASSISTANT ? "The assistant" : "The user";

        trim(&s, &n);
        if (n == 0)
                return;
        cnt = split_words(s, n, &fd->words, &fd->word_cap);
        if (origin != ORIGIN_SUMMARY) {
                at = strip_greeting(s, n, fd->words, cnt);
                if (at > 0) {
                        s += at;
                        n -= at;
                        trim(&s, &n);
                        cnt = split_words(s, n, &fd->words, &fd->word_cap);
                }
        }
        if (cnt == 0)
                return;
        question = s[n - 1] == '?';
        features(s, fd->words, cnt, &f);
        if (f.content == 0)
                return;
        if (origin == ORIGIN_SUMMARY) {
                /* Scored as what it was: a user fact or an explanation. */
                int user = n > 9 && strncmp(s, "The user ", 9) == 0;

                sc = score(&f, user ? ORIGIN_USER : ORIGIN_ASSISTANT,
                           question && user, 1);
                sc += SUMMARY_BONUS;
        } else {
                sc = score(&f, origin, question, first_of_msg);
                if (sc < MIN_SCORE)
                        return;
        }

        cm_buf_init(&b);
        if (origin == ORIGIN_SUMMARY) {
                cm_buf_add(&b, s, n);
        } else if (origin == ORIGIN_USER && question) {
                cm_buf_adds(&b, "The user asked: ");
                cm_buf_add(&b, s, n);
        } else if (!third_person(&b, s, n, fd->words, cnt, label)) {
                if (origin == ORIGIN_USER)
                        cm_buf_adds(&b, "The user said: ");
                cm_buf_add(&b, s, n);
        }
        cap_bytes(&b, SENT_MAX_BYTES);
        end_sentence(&b);
        cand_add(fd, &b, sc);
}

/* Cuts text into sentences and considers each. */
static void add_text(fold_t *fd, const char *text, size_t len, origin_t origin)
{
        size_t at = 0;
        int first = 1;

        while (at < len) {
                size_t n = sentence_len(text + at, len - at);
                size_t before = fd->cnt;

                add_sentence(fd, text + at, n, origin, first);
                if (fd->cnt > before)
                        first = 0;
                at += n;
        }
}

static void add_input(fold_t *fd, const char *text, size_t len, origin_t origin)
{
        cm_buf_t clean = CM_BUF_INIT;
        size_t i;

        if (cm_utf8_valid(text, len) && !memchr(text, '\0', len)) {
                add_text(fd, text, len, origin);
                return;
        }
        /* So that the summary is valid UTF-8 text even from bad input. */
        cm_utf8_repair(&clean, text, len);
        for (i = 0; i < clean.len; i++) {
                if (clean.buf[i] == '\0')
                        clean.buf[i] = ' ';
        }
        add_text(fd, clean.buf, clean.len, origin);
        cm_buf_release(&clean);
}

/* ---- choosing ------------------------------------------------------- */

static int cmp_priority(const void *a, const void *b)
{
        const cand_t *x = *(const cand_t *const *)a;
        const cand_t *y = *(const cand_t *const *)b;

        if (x->priority != y->priority)
                return x->priority > y->priority ? -1 : 1;
        return x->order > y->order ? -1 : x->order < y->order;
}

/* The taken candidates, oldest first, separated by spaces. */
static void assemble(const fold_t *fd, cm_buf_t *out)
{
        size_t k;

        cm_buf_reset(out);
        for (k = 0; k < fd->cnt; k++) {
                if (!fd->cands[k].taken)
                        continue;
                if (out->len)
                        cm_buf_add(out, " ", 1);
                cm_buf_add(out, fd->cands[k].text, fd->cands[k].len);
        }
}

/*
 * The longest prefix of text that fits max tokens once "…" is appended,
 * cut between words when one ends in its second half, never inside a UTF-8
 * character. Returns a heap string; "" when not even "…" fits.
 */
static char *fit_one(const cm_tokenizer_t *tk, const char *text, size_t len,
                     int max)
{
        cm_buf_t b;
        size_t lo = 0;
        size_t hi = len;
        size_t k;

        cm_buf_init(&b);
        /* Largest n with count(text[0..n) + "…") <= max. */
        while (lo < hi) {
                size_t mid = lo + (hi - lo + 1) / 2;

                cm_buf_reset(&b);
                cm_buf_add(&b, text, mid);
                cm_buf_adds(&b, ELLIPSIS);
                if (cm_tokenizer_count(tk, b.buf, b.len) <= max)
                        lo = mid;
                else
                        hi = mid - 1;
        }
        for (k = lo; k > lo / 2; k--) {
                if (text[k] == ' ') {
                        lo = k;
                        break;
                }
        }
        while (lo > 0 && ((unsigned char)text[lo] & 0xc0) == 0x80)
                lo--;
        while (lo > 0 && strchr(" ,;:-", text[lo - 1]))
                lo--;
        cm_buf_reset(&b);
        if (lo == 0)
                return cm_buf_detach(&b, NULL);
        cm_buf_add(&b, text, lo);
        cm_buf_adds(&b, ELLIPSIS);
        /* A shorter text may cost more tokens with a BPE tokenizer. */
        while (b.len > 0 && cm_tokenizer_count(tk, b.buf, b.len) > max) {
                b.len--;
                while (b.len > 0 &&
                       ((unsigned char)b.buf[b.len] & 0xc0) == 0x80)
                        b.len--;
                b.buf[b.len] = '\0';
        }
        return cm_buf_detach(&b, NULL);
}

char *cm_extractive_fold(const cm_fold_in_t *in)
{
        fold_t fd;
        cand_t **rank = NULL;
        cand_t **picked = NULL;
        cm_buf_t out;
        size_t k;
        size_t taken = 0;
        int used = 0;
        char *res;

        memset(&fd, 0, sizeof(fd));
        fd.in = in;
        cm_buf_init(&out);
        if (in->max_tokens <= 0)
                goto out;

        if (in->summary && in->summary[0])
                add_input(&fd, in->summary, strlen(in->summary),
                          ORIGIN_SUMMARY);
        for (k = 0; k < in->msg_cnt; k++) {
                const cm_message_t *msg = &in->msgs[k];

                if (msg->role == CM_ROLE_SYSTEM || !msg->content)
                        continue;
                add_input(&fd, msg->content, msg->content_len,
                          msg->role == CM_ROLE_USER ? ORIGIN_USER
                                                    : ORIGIN_ASSISTANT);
        }
        if (fd.cnt == 0)
                goto out;

        rank = cm_malloc(fd.cnt * sizeof(*rank));
        for (k = 0; k < fd.cnt; k++) {
                cand_t *c = &fd.cands[k];

                c->priority = c->score;
                if (fd.cnt > 1)
                        c->priority += RECENCY_WEIGHT * (double)c->order /
                                       (double)(fd.cnt - 1);
                rank[k] = c;
        }
        qsort(rank, fd.cnt, sizeof(*rank), cmp_priority);

        /* Best first: skip near-repeats of what is taken and what does not
         * fit (+1 for the separating space). */
        picked = cm_malloc(fd.cnt * sizeof(*picked));
        for (k = 0; k < fd.cnt && used < in->max_tokens; k++) {
                cand_t *c = rank[k];
                size_t j;
                int dup = 0;

                if (used + c->tokens + (taken > 0) > in->max_tokens)
                        continue;
                for (j = 0; j < taken && !dup; j++)
                        dup = jaccard(picked[j], c) >= DUP_JACCARD;
                if (dup)
                        continue;
                c->taken = 1;
                used += c->tokens + (taken > 0);
                picked[taken++] = c;
        }

        /* A lone sentence longer than the budget: cut it to fit. */
        if (taken == 0) {
                cand_t *c = rank[0];
                char *cut = fit_one(in->tk, c->text, c->len, in->max_tokens);

                free(c->text);
                c->text = cut;
                c->len = strlen(cut);
                c->taken = c->len > 0;
                taken = c->taken;
        }

        /* The count of the whole text is what the contract is about. */
        assemble(&fd, &out);
        while (taken > 0 &&
               cm_tokenizer_count(in->tk, out.buf, out.len) > in->max_tokens) {
                for (k = fd.cnt; k-- > 0;) {
                        if (rank[k]->taken)
                                break;
                }
                if (taken == 1) {
                        char *cut = fit_one(in->tk, rank[k]->text, rank[k]->len,
                                            in->max_tokens);

                        free(rank[k]->text);
                        rank[k]->text = cut;
                        rank[k]->len = strlen(cut);
                        if (rank[k]->len == 0) {
                                rank[k]->taken = 0;
                                taken = 0;
                        }
                } else {
                        rank[k]->taken = 0;
                        taken--;
                }
                assemble(&fd, &out);
        }

out:
        for (k = 0; k < fd.cnt; k++) {
                free(fd.cands[k].text);
                free(fd.cands[k].hash);
        }
        free(fd.cands);
        free(fd.words);
        free(rank);
        free(picked);
        res = cm_buf_detach(&out, NULL);
        return res;
}
