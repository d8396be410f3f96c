/*
 * summarize_extractive: the embedded, deterministic summarizer. It keeps
 * facts, not whole answers.
 *
 * 1. The previous summary and each new message are cut into sentences
 *    (at . ! ? followed by a space, and at line breaks; abbreviations and
 *    initials do not end a sentence). A leading greeting or filler clause
 *    ("Hi,", "Oh, wow,") and a leading "but" / "and" / "so" are dropped.
 * 2. A statement is cut into clauses at ";" and ":", at "but" / "so" /
 *    "yet" after a comma or before a subject, and at "and" / "or" before a
 *    subject ("I'm Maria and I live in Lisbon"). Each clause is judged on
 *    its own; when every clause is kept the sentence is kept as it was said.
 * 3. What is kept:
 *    - the user's statements about themself ("I'm a nurse", "my sister
 *      lives in Tokyo", "Knitting is my passion") and the user's other
 *      statements that carry a name, a number, a date or a place, or three
 *      content words; not opinions and politeness ("I think so", "I'm sure
 *      you'll love it", "That's great!"), not clauses about the listener,
 *      not clauses whose object is a bare pronoun ("I love it"), unless
 *      they carry a name, a number or a date;
 *    - the user's questions that have a topic (two content words, or a
 *      name, a number, a technical term; "Can you explain async/await?" →
 *      "User asked about async/await."), not "What do you do?";
 *    - the user's short answer (at most ANSWER_MAX_WORDS words, or one
 *      that says nothing on its own) to the assistant's question about
 *      them, with the question ("Asked "What's your favorite color?", user
 *      said: Orange.");
 *    - of the assistant, only the facts it adds: numbers, dates, decisions,
 *      names the user did not say (HARD_MIN); explanations, questions back
 *      and its statements about itself are dropped.
 *    Kept clauses score for what they carry (names, numbers, dates,
 *    places, decisions, technical terms, content words; a statement about
 *    the user more). Sentences of the previous summary were kept once
 *    already and get a bonus instead of the threshold.
 * 4. Kept text is put in the third person where cheap ("I work with
 *    React" → "User works with React", "my" → "their") and capped at
 *    SENT_MAX_BYTES (cut between words, "…").
 * 5. Candidates are taken best first (score plus a recency bonus, so on a
 *    tie the newest wins), skipping any whose content words are a
 *    near-repeat (Jaccard >= DUP_JACCARD) of one already taken or all among
 *    them, and any that does not fit the token budget. The taken ones are
 *    written oldest first and the result is counted again; while over, the
 *    weakest is dropped, and a lone sentence is cut to fit.
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

#define MIN_SCORE        2.5 /* a user clause below is dropped */
#define HARD_MIN         2.5 /* an assistant clause needs this many facts */
#define SUMMARY_BONUS    1.5
#define RECENCY_WEIGHT   1.5
#define DUP_JACCARD      0.6
#define SENT_MAX_BYTES   200
#define ANSWER_MAX_WORDS 6  /* a shorter answer goes with its question */
#define WORD_MAX         32 /* longer words are never on a list */
#define ELLIPSIS         "\xe2\x80\xa6"

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
    "absolutely", "afternoon", "agree",       "ah",        "alright",
    "amazing",    "anyway",    "anyways",     "awesome",   "believe",
    "bit",        "btw",       "bye",         "care",      "chat",
    "chatting",   "cool",      "course",      "day",       "definitely",
    "enjoy",      "evening",   "exactly",     "excellent", "fantastic",
    "feel",       "feeling",   "fine",        "fun",       "glad",
    "good",       "goodbye",   "great",       "greetings", "guess",
    "haha",       "happy",     "hear",        "hello",     "help",
    "hey",        "hi",        "hiya",        "hmm",       "hope",
    "hopefully",  "indeed",    "interesting", "kind",      "know",
    "later",      "like",      "little",      "lol",       "love",
    "mean",       "meet",      "morning",     "nice",      "night",
    "nope",       "oh",        "ok",          "okay",      "perfect",
    "please",     "right",     "see",         "sorry",     "sound",
    "sounds",     "sure",      "talk",        "talking",   "tell",
    "thank",      "thanks",    "think",       "thx",       "totally",
    "true",       "welcome",   "well",        "wish",      "wonderful",
    "wow",        "yeah",      "yep",         "yes",       "yup",
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

/* Words of a decision or a commitment (not of a wish: "want", "try"). */
static const char *const decision_words[] = {
    "agreed",  "book",      "booked",   "choose",    "chose",     "chosen",
    "decide",  "decided",   "decides",  "decision",  "intend",    "must",
    "pick",    "picked",    "plan",     "planned",   "planning",  "plans",
    "prefer",  "preferred", "prefers",  "schedule",  "scheduled", "settle",
    "settled", "switch",    "switched", "switching",
};

/* A sentence opening with one of these states a fact about the speaker. */
static const char *const self_words[] = {
    "i",  "i'd", "i'll", "i'm",   "i've",  "me",
    "my", "our", "we",   "we're", "we've",
};

/* The listener: a sentence of the user with one of these is about the
 * other side ("I'm sure you'll love it", "What do you do?"). */
static const char *const listener_words[] = {
    "you", "you'd", "you'll", "you're", "you've", "your", "yours", "yourself",
};

/* A clause ending in one of these (before "too", "either"…) refers to
 * something said before and carries no fact of its own ("I love it", "I've
 * always wanted to do that"). */
static const char *const pronoun_ends[] = {
    "it",    "one",   "ones", "so",    "that", "them",
    "there", "these", "this", "those", "yet",
};

/* Trailing words skipped when looking for a clause's last word. */
static const char *const trailing_words[] = {
    "again", "anymore", "either", "lot", "much",
    "now",   "though",  "today",  "too", "well",
};

/* Opinions, feelings and politeness about what was said ("I think…",
 * "I'm sure…"): dropped unless the clause also carries a name, a number
 * or a date. Space-separated lowercase words, apostrophes ASCII. */
static const char *const opener_seqs[] = {
    "i agree",         "i am glad",    "i am happy",   "i am sorry",
    "i am sure",       "i appreciate", "i believe",    "i bet",
    "i can imagine",   "i can relate", "i can see",    "i can tell",
    "i can't imagine", "i can't wait", "i don't know", "i feel like",
    "i guess",         "i hope",       "i imagine",    "i know",
    "i mean",          "i must say",   "i see",        "i suppose",
    "i think",         "i understand", "i wish",       "i would love",
    "i'd love",        "i'm excited",  "i'm glad",     "i'm happy",
    "i'm not sure",    "i'm so glad",  "i'm so happy", "i'm sorry",
    "i'm sure",        "i've heard",   "it was nice",  "that is",
    "that sounds",     "that's",       "this is",      "what a",
};

/* After "can/could/would/will you (please)": the user asks for something. */
static const char *const request_verbs[] = {
    "check", "compare", "describe",  "explain", "find",      "fix",
    "give",  "help",    "list",      "make",    "recommend", "review",
    "show",  "suggest", "summarize", "tell",    "translate", "write",
};

/* Opening a sentence, these tie it to the one before; they are dropped. */
static const char *const coordinators[] = {"also", "and", "but", "or",
                                           "plus", "so",  "yet"};

/* After "but", "so", "and": a new clause with its own subject. */
static const char *const subject_words[] = {
    "he",   "he's",    "i",    "i'd", "i'll",  "i'm",   "i've",
    "it",   "it's",    "my",   "she", "she's", "that",  "there",
    "they", "they're", "this", "we",  "we're", "we've",
};

/* A sentence opening with one of these starts with a subordinate
 * clause; its subject comes after the first comma. */
static const char *const subordinators[] = {
    "after", "although", "as",     "because", "before", "if",       "once",
    "since", "though",   "unless", "until",   "when",   "whenever", "while",
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

/* Verbs ending in "ly": not adverbs ("I apply", "I rely"). */
static const char *const ly_verbs[] = {
    "apply", "bully", "comply", "imply",  "multiply",
    "rally", "rely",  "reply",  "supply", "tally",
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
        uint64_t *known; /* sorted word hashes of the last user message */
        size_t known_cnt;
        char *asked; /* owned: the assistant's question to the user, if the
                        last message asked one; NULL otherwise */
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
        int listener;
} features_t;

static int hash_known(const uint64_t *set, size_t cnt, uint64_t h);

/* Counts what words[0..cnt) of s carry. A capitalised word whose
 * lowercase form hashes into known[0..known_cnt) is not counted as a
 * name: it was said before (the assistant repeating the user's topic). */
static void features(const char *s, const word_t *words, size_t cnt,
                     const uint64_t *known, size_t known_cnt, features_t *f)
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
                f->listener |= in_list(w->lower, LIST(listener_words));
                if (cap && w->lower[0] != '\0' && !is_content(w))
                        cap = 0; /* "Thanks", "Hello" */
                if (cap && k == 0)
                        cap = cnt > 1 && capitalised(s, &words[1]);
                for (size_t j = 0; cap && j < k; j++) {
                        if (strcmp(words[j].lower, w->lower) == 0)
                                cap = 0; /* counted once */
                }
                if (cap && known_cnt &&
                    hash_known(known, known_cnt,
                               cm_fnv1a(w->lower, strlen(w->lower))))
                        cap = 0;
                f->proper += cap;
                if (cap && k > 0 &&
                    in_list(words[k - 1].lower, LIST(place_cues)))
                        f->place = 1;
        }
}

static double min_d(double a, double b)
{
        return a < b ? a : b;
}

/* What a clause carries beyond its words: names, numbers, dates, places,
 * decisions, technical terms. */
static double hard_facts(const features_t *f)
{
        double sc = 0;

        sc += 1.5 * min_d(f->proper, 3);
        sc += 1.5 * min_d(f->numbers, 3);
        sc += 0.8 * min_d(f->technical, 2);
        /* "a great plan!" alone is small talk */
        sc += f->date && f->content >= 2 ? 1.5 : 0;
        sc += f->decision && f->content >= 2 ? 1.0 : 0;
        sc += f->place ? 1.0 : 0;
        return sc;
}

/* A sentence of the previous summary, scored as what it was: a user fact
 * or an explanation. */
static double score_summary(const features_t *f, int user)
{
        double sc = hard_facts(f) + 0.4 * min_d(f->content, 6);

        return sc + (user ? 2.0 : 0) + SUMMARY_BONUS;
}

/* ---- writing sentences ---------------------------------------------- */

/* An adverb that may sit between "I" and its verb: one of verb_adverbs
 * or a lowercase word in "-ly" that is not a verb ("I especially like"). */
static int adverb(const word_t *w)
{
        size_t n = strlen(w->lower);

        if (in_list(w->lower, LIST(verb_adverbs)))
                return 1;
        return n > 4 && strcmp(w->lower + n - 2, "ly") == 0 &&
               !in_list(w->lower, LIST(ly_verbs));
}

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
        if (adverb(&words[k + 1]) && k + 2 < cnt)
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

/* words[j] may open a clause: after "and", "but", "so", "then", after a
 * comma ("I play chess, I love tea"), or after an adverb that does ("but
 * now I'm"). */
static int new_clause(const char *s, const word_t *words, size_t j)
{
        int adverbs;

        for (adverbs = 0; j > 0 && adverbs <= 2; adverbs++, j--) {
                size_t k;

                if (conjunction(&words[j - 1]))
                        return 1;
                for (k = words[j - 1].off + words[j - 1].len; k < words[j].off;
                     k++) {
                        if (s[k] == ',' || s[k] == ';')
                                return 1;
                }
                if (!adverb(&words[j - 1]) &&
                    strcmp(words[j - 1].lower, "now") != 0)
                        return 0;
        }
        return j == 0;
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
        int subject = 1; /* the subject at hand is the speaker */

        if (cnt < 2 || words[0].off != 0)
                return 0;
        if (strcmp(words[0].lower, "my") == 0) {
                cm_buf_addf(b, "%s's", label);
                pos = words[0].len;
                subject = 0;
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
                if (!new_clause(s, words, j))
                        continue;
                cm_buf_add(b, s + pos, words[j].off - pos);
                /* "My sister is … and I'm …": name the speaker again */
                if (!subject && in_list(words[j].lower, LIST(self_words)) &&
                    strcmp(words[j].lower, "my") != 0)
                        cm_buf_addf(b, "%s ", label);
                next = third_person_verb(b, s, words, cnt, j);
                if (next == 0) {
                        b->len = at;
                        b->buf[at] = '\0';
                        continue;
                }
                subject = 1;
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

/* Every content word of a is in b: a says nothing b does not. */
static int contained(const cand_t *a, const cand_t *b)
{
        size_t i = 0;
        size_t j = 0;

        if (a->hash_cnt == 0)
                return 1;
        while (i < a->hash_cnt && j < b->hash_cnt) {
                if (a->hash[i] == b->hash[j]) {
                        i++;
                        j++;
                } else if (a->hash[i] < b->hash[j]) {
                        return 0;
                } else {
                        j++;
                }
        }
        return i == a->hash_cnt;
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

static int hash_known(const uint64_t *set, size_t cnt, uint64_t h)
{
        return bsearch(&h, set, cnt, sizeof(*set), cmp_u64) != NULL;
}

/* Remembers the words of a user message: the assistant repeating them
 * ("Kafka" after "How is Kafka different…?") does not state a new name. */
static void remember_user_words(fold_t *fd, const char *text, size_t len)
{
        size_t cnt = split_words(text, len, &fd->words, &fd->word_cap);
        size_t k;

        free(fd->known);
        fd->known = cm_malloc((cnt ? cnt : 1) * sizeof(*fd->known));
        for (k = 0; k < cnt; k++)
                fd->known[k] =
                    cm_fnv1a(fd->words[k].lower, strlen(fd->words[k].lower));
        qsort(fd->known, cnt, sizeof(*fd->known), cmp_u64);
        fd->known_cnt = cnt;
}

/* The space-separated lowercase words of seq start at words[k]. */
static int words_seq(const word_t *words, size_t cnt, size_t k, const char *seq)
{
        while (*seq) {
                const char *sp = strchr(seq, ' ');
                size_t n = sp ? (size_t)(sp - seq) : strlen(seq);

                if (k >= cnt || strlen(words[k].lower) != n ||
                    memcmp(words[k].lower, seq, n) != 0)
                        return 0;
                k++;
                seq += n;
                if (*seq == ' ')
                        seq++;
        }
        return 1;
}

static int opens_with_opinion(const word_t *words, size_t cnt)
{
        size_t k;

        for (k = 0; k < sizeof(opener_seqs) / sizeof(opener_seqs[0]); k++) {
                if (words_seq(words, cnt, 0, opener_seqs[k]))
                        return 1;
        }
        return 0;
}

/* The clause's last word, past "too", "either"…, is a pronoun. */
static int ends_in_pronoun(const word_t *words, size_t cnt)
{
        while (cnt > 0 && in_list(words[cnt - 1].lower, LIST(trailing_words)))
                cnt--;
        return cnt > 0 && in_list(words[cnt - 1].lower, LIST(pronoun_ends));
}

/* The clause states something of the speaker: it opens with "I", "my",
 * "we"… (after an adverb: "now I'm…"; after a leading subordinate clause:
 * "If I'm not cooking, I'm…"), or says "my" after a subject that is not a
 * pronoun ("Knitting is my passion"). */
static int about_self(const char *s, const word_t *words, size_t cnt)
{
        size_t k = 0;

        if (cnt > 1 && in_list(words[0].lower, LIST(subordinators))) {
                for (k = 1; k < cnt; k++) {
                        if (s[words[k - 1].off + words[k - 1].len] == ',')
                                break;
                }
                if (k == cnt)
                        return 0;
        }
        while (k + 1 < cnt && (in_list(words[k].lower, LIST(verb_adverbs)) ||
                               strcmp(words[k].lower, "now") == 0))
                k++;
        if (k == cnt)
                return 0;
        if (in_list(words[k].lower, LIST(self_words)))
                return 1;
        if (in_list(words[k].lower, LIST(subject_words)))
                return 0;
        for (k = 1; k < cnt; k++) {
                if (strcmp(words[k].lower, "my") == 0)
                        return 1;
        }
        return 0;
}

/* "Can you (please) explain …?": the number of words before the request
 * verb's object when the question asks for something, else 0. */
static size_t request_len(const word_t *words, size_t cnt)
{
        size_t k = 2;

        if (cnt < 3 || strcmp(words[1].lower, "you") != 0 ||
            (strcmp(words[0].lower, "can") != 0 &&
             strcmp(words[0].lower, "could") != 0 &&
             strcmp(words[0].lower, "would") != 0 &&
             strcmp(words[0].lower, "will") != 0))
                return 0;
        if (strcmp(words[k].lower, "please") == 0)
                k++;
        if (k >= cnt || !in_list(words[k].lower, LIST(request_verbs)))
                return 0;
        return k + 1;
}

/* Writes the kept text s[0..n) of the given origin as a candidate. */
static void emit(fold_t *fd, const char *s, size_t n, origin_t origin,
                 int question, double sc)
{
        const char *label = origin == ORIGIN_ASSISTANT ? "Assistant" : "User";
        size_t cnt = split_words(s, n, &fd->words, &fd->word_cap);
        size_t req = question ? request_len(fd->words, cnt) : 0;
        size_t at = 0; /* the object of "explain", "tell me about"… */
        cm_buf_t b;

        if (req && (words_seq(fd->words, cnt, req - 1, "explain") ||
                    words_seq(fd->words, cnt, req - 1, "describe")))
                at = req;
        else if (req && words_seq(fd->words, cnt, req - 1, "tell me about"))
                at = req + 2;
        cm_buf_init(&b);
        if (origin == ORIGIN_SUMMARY) {
                cm_buf_add(&b, s, n);
        } else if (at > 0 && at < cnt) {
                /* "Can you explain async/await?" → "asked about
                 * async/await." */
                cm_buf_adds(&b, "User asked about ");
                cm_buf_add(&b, s + fd->words[at].off, n - fd->words[at].off);
                while (b.len > 0 && strchr("?!. ", b.buf[b.len - 1]))
                        b.buf[--b.len] = '\0';
        } else if (question) {
                cm_buf_adds(&b, "User asked: ");
                cm_buf_add(&b, s, n);
        } else if (!third_person(&b, s, n, fd->words, cnt, label)) {
                size_t first = 0;

                if (origin == ORIGIN_USER) {
                        cm_buf_adds(&b, "User said: ");
                        first = b.len;
                }
                cm_buf_add(&b, s, n);
                /* a clause cut from a longer sentence, or one after a
                 * greeting, starts with a capital ("async function…" is
                 * left as it is) */
                if (cm_islower(b.buf[first]) && cnt > 1 &&
                    !technical(s, &fd->words[0]))
                        b.buf[first] = (char)cm_toupper(b.buf[first]);
        }
        cap_bytes(&b, SENT_MAX_BYTES);
        end_sentence(&b);
        cand_add(fd, &b, sc);
}

/*
 * Scores a clause (or a question) s[0..n): returns its score, or a value
 * below 0 when it is dropped.
 *
 * User statements: opinions and politeness ("I think…", "I'm sure…"),
 * clauses about the listener and clauses ending in a bare pronoun ("I love
 * it") are dropped unless they carry a name, a number or a date; the rest
 * must be about the speaker or carry such a fact, and reach MIN_SCORE.
 * User questions: kept when they have a topic: two content words, or a
 * name, a number, a technical term ("Can you explain async/await?", not
 * "What do you do?").
 * Assistant clauses: kept for the facts they add (numbers, dates,
 * decisions, names the user did not say), not for explanations.
 */
static double clause_score(fold_t *fd, const char *s, size_t n, origin_t origin,
                           int question)
{
        size_t cnt = split_words(s, n, &fd->words, &fd->word_cap);
        const word_t *w = fd->words;
        features_t f;
        double hard;
        int self;

        if (cnt == 0)
                return -1;
        if (origin == ORIGIN_ASSISTANT) {
                features(s, w, cnt, fd->known, fd->known_cnt, &f);
                hard = 1.5 * min_d(f.numbers, 3) + 1.0 * min_d(f.proper, 2);
                hard += f.date && f.content >= 2 ? 1.5 : 0;
                hard += f.decision && f.content >= 2 ? 1.0 : 0;
                hard += f.place ? 1.0 : 0;
                if (question || f.content == 0 || hard < HARD_MIN)
                        return -1;
                return hard + 0.2 * min_d(f.content, 6) - 0.5;
        }
        features(s, w, cnt, NULL, 0, &f);
        if (f.content == 0)
                return -1;
        hard = hard_facts(&f);
        if (question) {
                if (f.content < 2 && hard == 0)
                        return -1;
                return 2.0 + hard + 0.3 * min_d(f.content, 6);
        }
        if ((f.listener || (opens_with_opinion(w, cnt) && f.content < 3) ||
             (ends_in_pronoun(w, cnt) && f.content < 2)) &&
            hard - 0.8 * min_d(f.technical, 2) < 1.5)
                return -1;
        self = about_self(s, w, cnt);
        if (!self && hard < 1.5 && f.content < 3)
                return -1;
        return (self ? 2.0 : 1.0) + hard + 0.5 * min_d(f.content, 6);
}

/*
 * Where the clauses of the sentence s[0..n) start: at ";" or ":", at
 * "but" / "so" / "yet" after a comma or before a subject, and at "and" /
 * "or" before a subject ("I'm Maria and I live in Lisbon"). Fills
 * starts[] (the first is 0) and skips[] (the connector's length, left out
 * of the clause); returns the number of clauses.
 */
static size_t split_clauses(const char *s, size_t n, const word_t *w,
                            size_t cnt, size_t *starts, size_t *skips)
{
        size_t k;
        size_t out = 1;

        starts[0] = 0;
        skips[0] = 0;
        for (k = 1; k < cnt; k++) {
                size_t gap = w[k - 1].off + w[k - 1].len;
                int comma = 0;
                int stop = 0;
                int next_subject =
                    k + 1 < cnt && in_list(w[k + 1].lower, LIST(subject_words));

                for (; gap < w[k].off && gap < n; gap++) {
                        comma |= s[gap] == ',';
                        stop |= s[gap] == ';' || s[gap] == ':';
                }
                if (stop) {
                        starts[out] = w[k].off;
                        skips[out++] = 0;
                } else if ((strcmp(w[k].lower, "but") == 0 ||
                            strcmp(w[k].lower, "so") == 0 ||
                            strcmp(w[k].lower, "yet") == 0) &&
                           (comma || next_subject) && k + 1 < cnt) {
                        starts[out] = w[k].off;
                        skips[out++] = w[k + 1].off - w[k].off;
                } else if ((strcmp(w[k].lower, "and") == 0 ||
                            strcmp(w[k].lower, "or") == 0) &&
                           next_subject) {
                        starts[out] = w[k].off;
                        skips[out++] = w[k + 1].off - w[k].off;
                }
        }
        return out;
}

/* A sentence of a previous summary about the user: "User …", "Asked
 * "…", user said: …", or "The user …" as older summaries wrote it. */
static int user_sentence(const char *s, size_t n)
{
        if (n > 5 && strncmp(s, "User", 4) == 0 && strchr(" ,'", s[4]))
                return 1;
        if (n > 9 && strncmp(s, "The user", 8) == 0 && strchr(" ,'", s[8]))
                return 1;
        return n > 6 && strncmp(s, "Asked ", 6) == 0;
}

/* Splits the trimmed sentence *s[0..*n) into fd->words after dropping a
 * leading greeting ("Hi Tom, …"), which moves *s on. Returns the word
 * count. */
static size_t open_sentence(fold_t *fd, const char **s, size_t *n)
{
        size_t cnt = split_words(*s, *n, &fd->words, &fd->word_cap);
        size_t at = strip_greeting(*s, *n, fd->words, cnt);

        if (at == 0)
                return cnt;
        *s += at;
        *n -= at;
        trim(s, n);
        return split_words(*s, *n, &fd->words, &fd->word_cap);
}

/* Considers one sentence s[0..n) of the given origin. */
static void add_sentence(fold_t *fd, const char *s, size_t n, origin_t origin)
{
        size_t cnt;
        size_t at;
        size_t parts;
        size_t k;
        size_t kept = 0;
        size_t *starts = NULL;
        size_t *skips = NULL;
        double *sc = NULL;
        double best = -1;
        features_t f;
        int question;

        trim(&s, &n);
        if (n == 0)
                return;
        if (origin == ORIGIN_SUMMARY)
                cnt = split_words(s, n, &fd->words, &fd->word_cap);
        else
                cnt = open_sentence(fd, &s, &n);
        if (cnt > 2 && origin != ORIGIN_SUMMARY &&
            in_list(fd->words[0].lower, LIST(coordinators))) {
                /* "But I'm thinking about Wharton." */
                at = fd->words[1].off;
                s += at;
                n -= at;
                cnt = split_words(s, n, &fd->words, &fd->word_cap);
        }
        if (cnt == 0)
                return;
        question = s[n - 1] == '?';
        if (origin == ORIGIN_SUMMARY) {
                int user = user_sentence(s, n);

                features(s, fd->words, cnt, NULL, 0, &f);
                if (f.content > 0)
                        emit(fd, s, n, origin, 0, score_summary(&f, user));
                return;
        }
        if (question) {
                double q = clause_score(fd, s, n, origin, 1);

                if (q >= MIN_SCORE)
                        emit(fd, s, n, origin, 1, q);
                return;
        }
        starts = cm_malloc((cnt + 1) * sizeof(*starts));
        skips = cm_malloc((cnt + 1) * sizeof(*skips));
        parts = split_clauses(s, n, fd->words, cnt, starts, skips);
        starts[parts] = n;
        sc = cm_malloc(parts * sizeof(*sc));
        for (k = 0; k < parts; k++) {
                const char *c = s + starts[k] + skips[k];
                size_t cn = starts[k + 1] - starts[k] - skips[k];

                trim(&c, &cn);
                while (cn > 0 && strchr(",;:", c[cn - 1]))
                        cn--;
                sc[k] = clause_score(fd, c, cn, origin, 0);
                if (origin == ORIGIN_USER ? sc[k] >= MIN_SCORE : sc[k] >= 0)
                        kept++;
                else
                        sc[k] = -1;
                best = sc[k] > best ? sc[k] : best;
        }
        if (kept == parts) {
                /* nothing to cut: the sentence as it was said */
                emit(fd, s, n, origin, 0, best);
        } else {
                for (k = 0; k < parts; k++) {
                        const char *c = s + starts[k] + skips[k];
                        size_t cn = starts[k + 1] - starts[k] - skips[k];

                        if (sc[k] < 0)
                                continue;
                        trim(&c, &cn);
                        while (cn > 0 && strchr(",;:", c[cn - 1]))
                                cn--;
                        emit(fd, c, cn, origin, 0, sc[k]);
                }
        }
        free(starts);
        free(skips);
        free(sc);
}

/*
 * The user's message whose first sentence is s[0..n) answered the
 * assistant's question asked: the question goes with that sentence
 * ("Asked "What's your favorite color?", user said: Orange.").
 */
static void add_answer(fold_t *fd, const char *asked, const char *s, size_t n)
{
        size_t cnt;
        features_t f;
        cm_buf_t b;
        double sc;

        trim(&s, &n);
        if (n == 0 || s[n - 1] == '?')
                return;
        cnt = split_words(asked, strlen(asked), &fd->words, &fd->word_cap);
        features(asked, fd->words, cnt, NULL, 0, &f);
        sc = 2.0 + hard_facts(&f) + 0.3 * min_d(f.content, 6);
        cm_buf_init(&b);
        cm_buf_addf(&b, "Asked \"%s\", user said: ", asked);
        cm_buf_add(&b, s, n);
        cap_bytes(&b, SENT_MAX_BYTES);
        end_sentence(&b);
        cand_add(fd, &b, sc);
}

/*
 * Remembers the assistant's closing question s[0..n) when it asks the
 * user about themself and has a topic ("What's your favorite color?",
 * not "How can I help you?").
 */
static void remember_question(fold_t *fd, const char *s, size_t n)
{
        size_t cnt;
        features_t f;

        trim(&s, &n);
        if (n == 0 || s[n - 1] != '?')
                return;
        cnt = open_sentence(fd, &s, &n);
        features(s, fd->words, cnt, NULL, 0, &f);
        if (!f.listener || f.content < 2 || n > SENT_MAX_BYTES / 2)
                return;
        fd->asked = cm_strndup(s, n);
}

/* Drops the candidates from index mark on. */
static void cands_drop(fold_t *fd, size_t mark)
{
        while (fd->cnt > mark) {
                fd->cnt--;
                free(fd->cands[fd->cnt].text);
                free(fd->cands[fd->cnt].hash);
        }
}

/* The sentence s[0..n) is a short statement with a topic ("I'm a
 * welder.", "Winter, for sure."): it leans on the question before it. */
static int short_answer(fold_t *fd, const char *s, size_t n)
{
        size_t cnt;
        features_t f;

        trim(&s, &n);
        if (n == 0 || s[n - 1] == '?')
                return 0;
        cnt = split_words(s, n, &fd->words, &fd->word_cap);
        features(s, fd->words, cnt, NULL, 0, &f);
        return cnt <= ANSWER_MAX_WORDS && f.content > 0;
}

/* Cuts text into sentences and considers each. The user's answer to the
 * assistant's question about them goes with the question when its first
 * sentence is short or nothing of it is kept (add_answer()). */
static void add_text(fold_t *fd, const char *text, size_t len, origin_t origin)
{
        size_t at = 0;
        size_t last = 0;
        size_t before = fd->cnt;
        char *asked = fd->asked;
        int answered = 0;

        fd->asked = NULL;
        while (at < len) {
                size_t n = sentence_len(text + at, len - at);
                size_t mark = fd->cnt;

                add_sentence(fd, text + at, n, origin);
                if (at == 0 && asked && origin == ORIGIN_USER &&
                    short_answer(fd, text, n)) {
                        cands_drop(fd, mark);
                        add_answer(fd, asked, text, n);
                        answered = 1;
                }
                last = at;
                at += n;
        }
        if (asked && origin == ORIGIN_USER && !answered && fd->cnt == before)
                add_answer(fd, asked, text, sentence_len(text, len));
        free(asked);
        if (origin == ORIGIN_USER)
                remember_user_words(fd, text, len);
        if (origin == ORIGIN_ASSISTANT && len > 0)
                remember_question(fd, text + last, len - last);
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
                        dup = jaccard(picked[j], c) >= DUP_JACCARD ||
                              contained(c, picked[j]);
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
        free(fd.known);
        free(fd.asked);
        free(rank);
        free(picked);
        res = cm_buf_detach(&out, NULL);
        return res;
}
