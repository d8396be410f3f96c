/*
 * profile: name, role and interests from what the user says about themself.
 *
 * A wrong profile is worse than none: it lands in every context. So only
 * first-person statements are taken, and only at their word.
 *
 * The message is normalised (curly apostrophes become ASCII), cut into word
 * and punctuation tokens (each marked when inside quotation marks), and
 * every word is tried as the start of a trigger ("my name is", "call me",
 * "I'm", "I work as", "As a … ,", "I love", "I'm into"…). A trigger is
 * dropped when its statement is not a fact about the speaker now (hedged()):
 * quoted; in a clause that is a question; after "if", "would", "want",
 * "maybe"… or "not", "never"… in its clause; after "said", "told",
 * "think"… in its sentence; for a role, after "used to", "was" in its
 * clause. What follows a kept trigger is read with hand-written rules, no
 * regular expressions:
 *
 * - a name is 1-3 capitalised words that are not a mood, an adverb, a verb
 *   form (-ing/-ed), a role word ("user", "assistant") or a determiner,
 *   and not followed by a number ("User 1");
 * - a role is a noun phrase of at most 5 words whose last word names an
 *   occupation (a known head noun, or -er/-or/-ist that is not on a list of
 *   non-occupations such as "lover", "beginner", "optimist"), not a skill
 *   ("a good cook") or a former one ("a former nurse");
 * - interests are the rest of the clause, split on ",", "&" and "and",
 *   up to a question tagged on ("I love hiking, do you?"); not a pronoun
 *   or a definite description that points back ("I love it", "I love the
 *   characters"; "the Beatles" is a name), not only generic words ("learn
 *   new things", "help people", "my job").
 *
 * Within one message the last statement of a field wins. Names are facts
 * about whoever speaks: "I'm Claude" said by an assistant gives "Claude",
 * which is why the caller passes user messages only; the names the user
 * greets ("Hi Tom") are never taken.
 */
#include "profile.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "util.h"

#define NAME_MAX_WORDS     3
#define ROLE_MAX_WORDS     5
#define INTEREST_MAX_WORDS 6
#define INTEREST_MAX       16
#define INTEREST_MAX_BYTES 64

typedef enum tok_kind {
        TOK_WORD = 0,
        TOK_PUNCT,
} tok_kind_t;

typedef struct tok {
        tok_kind_t kind;
        size_t off; /* into scan_t.text */
        size_t len;
        int quoted; /* inside quotation marks */
} tok_t;

/* One message, normalised and tokenised. */
typedef struct scan {
        char *text; /* owned; ’ and ‘ replaced by ' */
        size_t len;
        tok_t *toks; /* owned */
        size_t cnt;
        size_t cap;
        int in_quote; /* while tokenising: after an opening quotation mark */
} scan_t;

/* Words that are never (the first word of) a name. */
static const char *const name_reject[] = {
    "a", "about", "absolutely", "actually", "afraid", "ai", "all", "allergic",
    "almost", "alone", "also", "always", "an", "and", "assistant", "at",
    "available", "aware", "back", "basically", "being", "big", "bored", "bot",
    "both", "busy", "but", "certain", "chatbot", "cold", "confused", "curious",
    "currently", "definitely", "done", "down", "dr", "early", "even", "excited",
    "fine", "finally", "for", "free", "from", "glad", "going", "good",
    "grateful", "great", "happy", "her", "here", "his", "home", "hot", "human",
    "hungry", "ill", "in", "into", "is", "it", "its", "just", "kind", "late",
    "like", "literally", "little", "lost", "lucky", "married", "me", "mostly",
    "my", "nervous", "never", "new", "no", "nobody", "not", "now", "of", "off",
    "ok", "okay", "old", "on", "one", "only", "our", "out", "over", "pretty",
    "probably", "proud", "quite", "ready", "really", "retired", "right", "sad",
    "scared", "sick", "single", "sir", "so", "somebody", "someone", "sorry",
    "sort", "still", "stuck", "such", "super", "sure", "that", "the", "their",
    "then", "there", "this", "tired", "to", "too", "totally", "up", "user",
    "vegan", "vegetarian", "very", "well", "what", "who", "with", "worried",
    "wrong", "yes", "you", "young", "your",
    /* nationalities and beliefs: "I'm American" is not a name */
    "african", "american", "asian", "australian", "brazilian", "british",
    "buddhist", "canadian", "catholic", "chinese", "christian", "dutch",
    "english", "european", "french", "german", "indian", "irish", "italian",
    "japanese", "jewish", "korean", "mexican", "muslim", "polish", "russian",
    "scottish", "spanish", "swedish", NULL};

/* Occupations recognised by their head noun. */
static const char *const occupations[] = {
    "accountant",   "activist",      "actor",        "actress",
    "admin",        "administrator", "agent",        "analyst",
    "animator",     "apprentice",    "architect",    "artist",
    "assistant",    "astronaut",     "astronomer",   "athlete",
    "attorney",     "auditor",       "author",       "baker",
    "banker",       "barber",        "barista",      "bartender",
    "biologist",    "blogger",       "bookkeeper",   "broker",
    "builder",      "butcher",       "carpenter",    "cashier",
    "caregiver",    "ceo",           "cfo",          "chef",
    "chemist",      "cleaner",       "clerk",        "coach",
    "comedian",     "composer",      "consultant",   "contractor",
    "cook",         "coordinator",   "cop",          "counselor",
    "counsellor",   "cto",           "dancer",       "dentist",
    "designer",     "detective",     "dev",          "developer",
    "dietitian",    "diplomat",      "director",     "doctor",
    "driver",       "economist",     "editor",       "electrician",
    "engineer",     "entrepreneur",  "executive",    "farmer",
    "filmmaker",    "firefighter",   "fisherman",    "florist",
    "founder",      "freelancer",    "gardener",     "geologist",
    "guard",        "hairdresser",   "historian",    "housekeeper",
    "illustrator",  "influencer",    "instructor",   "intern",
    "interpreter",  "janitor",       "journalist",   "judge",
    "lawyer",       "lecturer",      "librarian",    "lifeguard",
    "linguist",     "machinist",     "maid",         "manager",
    "marketer",     "mathematician", "mechanic",     "medic",
    "midwife",      "miner",         "minister",     "missionary",
    "model",        "musician",      "nanny",        "novelist",
    "nurse",        "nutritionist",  "officer",      "optometrist",
    "painter",      "paralegal",     "paramedic",    "pastor",
    "pharmacist",   "philosopher",   "photographer", "physician",
    "physicist",    "pianist",       "pilot",        "plumber",
    "podcaster",    "poet",          "policeman",    "policewoman",
    "politician",   "postdoc",       "priest",       "principal",
    "producer",     "professor",     "programmer",   "psychiatrist",
    "psychologist", "rabbi",         "radiologist",  "realtor",
    "receptionist", "reporter",      "researcher",   "sailor",
    "salesman",     "salesperson",   "saleswoman",   "scholar",
    "scientist",    "sculptor",      "secretary",    "singer",
    "soldier",      "specialist",    "statistician", "streamer",
    "student",      "stylist",       "supervisor",   "surgeon",
    "surveyor",     "sysadmin",      "tailor",       "teacher",
    "technician",   "tester",        "therapist",    "trainer",
    "translator",   "tutor",         "veterinarian", "vet",
    "vlogger",      "volunteer",     "waiter",       "waitress",
    "welder",       "writer",        "youtuber",     NULL};

/* Words ending like an occupation (-er, -or, -ist) that name a mood, a
 * relation, a habit or a comparison instead. */
static const char *const non_occupations[] = {
    "after",     "atheist",     "baptist",       "beginner",   "believer",
    "client",    "better",      "bigger",        "bitter",     "brother",
    "buddhist",  "character",   "clever",        "color",      "colour",
    "computer",  "communist",   "corner",        "customer",   "daughter",
    "dinner",    "door",        "dreamer",       "drinker",    "enthusiast",
    "hobbyist",  "eater",       "either",        "error",      "ever",
    "extremist", "father",      "favor",         "favour",     "feminist",
    "fighter",   "floor",       "follower",      "foreigner",  "former",
    "gamer",     "grandfather", "grandmother",   "honor",      "horror",
    "humor",     "idealist",    "inferior",      "junior",     "killer",
    "later",     "learner",     "leftover",      "letter",     "listener",
    "loner",     "loser",       "lover",         "lower",      "major",
    "matter",    "member",      "methodist",     "minimalist", "minor",
    "mirror",    "monster",     "mother",        "neighbor",   "neighbour",
    "neither",   "never",       "newcomer",      "number",     "older",
    "optimist",  "order",       "other",         "outsider",   "over",
    "paper",     "partner",     "perfectionist", "pessimist",  "power",
    "prior",     "proper",      "rather",        "reader",     "realist",
    "runner",    "senior",      "sister",        "sleeper",    "smaller",
    "smoker",    "sober",       "socialist",     "speaker",    "stranger",
    "summer",    "superior",    "supporter",     "survivor",   "talker",
    "thinker",   "tourist",     "traveler",      "traveller",  "under",
    "upper",     "user",        "walker",        "water",      "weather",
    "whatever",  "winner",      "winter",        "worker",     "younger",
    NULL};

/* A role phrase with one of these states a skill or a taste ("a pretty
 * good cook", "a big fan"), not an occupation. */
static const char *const role_reject[] = {
    "bad",      "best", "better", "big",    "decent", "good",
    "great",    "huge", "much",   "pretty", "quite",  "really",
    "terrible", "very", "worse",  "worst",  NULL};

/* Words that end a role phrase. */
static const char *const role_stop[] = {
    "a",        "an",     "and",       "as",     "at",      "based", "because",
    "but",      "by",     "currently", "for",    "from",    "here",  "in",
    "like",     "living", "myself",    "never",  "no",      "not",   "now",
    "nowadays", "of",     "on",        "or",     "since",   "so",    "that",
    "there",    "these",  "this",      "though", "to",      "too",   "when",
    "where",    "which",  "who",       "with",   "working", NULL};

/* Words that end an interest clause. */
static const char *const clause_stop[] = {
    "although", "because", "but",      "cause", "especially", "except",
    "if",       "since",   "so",       "than",  "though",     "unless",
    "until",    "when",    "whenever", "where", "whereas",    "which",
    "while",    "who",     "whose",    NULL};

/* Leading words dropped from an interest ("to bake" → "bake", "a lot of
 * jazz" → "jazz", "all kinds of music" → "music"). */
static const char *const interest_lead[] = {
    "a",   "all",  "an",   "any",   "different", "kind", "kinds",
    "lot", "lots", "my",   "of",    "some",      "sort", "sorts",
    "the", "to",   "type", "types", "various",   NULL};

/* Trailing words dropped from an interest ("hiking too" → "hiking"). */
static const char *const interest_trail[] = {
    "a",    "also", "anyway", "as",    "etc", "lately", "lot",  "more",
    "much", "now",  "so",     "today", "too", "very",   "well", NULL};

/* An interest starting with one of these is not an interest ("I love it",
 * "I like that idea", "I love when…"). */
static const char *const interest_reject[] = {
    "anything",   "being", "believe", "both",   "each",    "either",
    "i",          "i'd",   "i'll",    "i'm",    "i've",    "mine",
    "everything", "hear",  "hearing", "her",    "him",     "how",
    "imagine",    "it",    "it's",    "its",    "know",    "me",
    "nothing",    "one",   "ones",    "our",    "pretend", "say",
    "something",  "that",  "that's",  "their",  "them",    "there",
    "these",      "they",  "thing",   "things", "think",   "this",
    "those",      "us",    "what",    "when",   "where",   "who",
    "why",        "you",   "your",    NULL};

/* An interest with one of these anywhere refers to something said before
 * ("a big fan of both of them"), not to a topic. */
static const char *const interest_pronouns[] = {
    "her",  "him",   "his",  "it",    "its", "mine", "that", "their",
    "them", "these", "this", "those", "us",  "you",  "your", NULL};

/* Subjects that show who a sentence is about, for "as a X". */
static const char *const first_person[] = {"i",    "i'd", "i'll",   "i'm",
                                           "i've", "me",  "myself", NULL};
static const char *const other_person[] = {
    "everyone", "he",     "he's", "her",     "his", "it",
    "it's",     "my",     "our",  "people",  "she", "she's",
    "someone",  "their",  "they", "they're", "we",  "we're",
    "you",      "you're", "your", NULL};

/* Adverbs allowed between "I" / "I'm" and the verb of a trigger. */
static const char *const trigger_adverbs[] = {
    "absolutely", "actually", "also",       "always",    "currently",
    "definitely", "do",       "especially", "genuinely", "just",
    "mostly",     "now",      "really",     "still",     "totally",
    "truly",      "usually",  NULL};

static const char *const interest_verbs[] = {"adore", "enjoy", "like", "love",
                                             NULL};

/* Before a statement in its clause, these make it a wish, a plan, a
 * hypothesis or a question of what might be ("If I were…", "I want to
 * work as…", "maybe I like…"): not a fact. */
static const char *const irrealis[] = {
    "considering", "could",          "hope",     "hopefully", "hopes",
    "hoping",      "hypothetically", "if",       "imagine",   "maybe",
    "might",       "perhaps",        "planning", "pretend",   "pretending",
    "someday",     "studying",       "suppose",  "supposing", "thinking",
    "training",    "trying",         "unless",   "want",      "wanted",
    "wants",       "whether",        "wish",     "wished",    "would",
    NULL};

/* Before a statement in its clause: it is denied ("I can't say I love…"). */
static const char *const negations[] = {
    "aren't", "can't",   "cannot",  "didn't",  "doesn't", "don't",    "hardly",
    "hasn't", "haven't", "isn't",   "neither", "never",   "no",       "nobody",
    "nor",    "not",     "nothing", "wasn't",  "won't",   "wouldn't", NULL};

/* Before a statement in its sentence: someone's words or belief are
 * reported ("She told me I'm…", "I think I like…"). */
static const char *const reporting[] = {
    "ask",     "asked",   "asks",  "believe", "believes", "claim",
    "claimed", "claims",  "guess", "heard",   "say",      "saying",
    "says",    "said",    "tell",  "telling", "tells",    "think",
    "thinks",  "thought", "told",  NULL};

/* They start a new clause: "I used to paint but now I'm a nurse". */
static const char *const conjunctions[] = {
    "although", "and",     "because", "but", "or", "so",
    "though",   "whereas", "while",   "yet", NULL};

/* Before a role in its clause: it was ("I used to work as…"). */
static const char *const past_words[] = {"ex",   "former",     "formerly",
                                         "once", "previously", "used",
                                         "was",  "were",       NULL};

/* After "the", a part or a quality of something said before ("I love the
 * characters", "I like the way…"). */
static const char *const anaphoric[] = {
    "atmosphere",  "challenge", "character", "characters", "concept",
    "convenience", "design",    "details",   "ending",     "energy",
    "experience",  "fact",      "feel",      "feeling",    "freedom",
    "idea",        "look",      "part",      "people",     "plot",
    "process",     "rest",      "results",   "smell",      "sound",
    "stories",     "story",     "taste",     "thought",    "vibe",
    "way",         "work",      NULL};

/* An interest made only of these says nothing ("learn new things", "help
 * people", "have fun", "my job"). */
static const char *const generic_words[] = {
    "a",       "about",    "an",         "and",     "anything", "at",
    "be",      "being",    "busy",       "day",     "days",     "different",
    "do",      "doing",    "everything", "for",     "fun",      "get",
    "getting", "go",       "going",      "hang",    "hanging",  "have",
    "having",  "help",     "helping",    "in",      "it",       "job",
    "keep",    "learn",    "learning",   "life",    "lot",      "lots",
    "make",    "making",   "meet",       "meeting", "more",     "my",
    "new",     "of",       "on",         "one",     "ones",     "other",
    "others",  "out",      "people",     "see",     "seeing",   "something",
    "spend",   "spending", "stay",       "stuff",   "take",     "taking",
    "the",     "them",     "thing",      "things",  "time",     "times",
    "to",      "try",      "trying",     "way",     "ways",     "with",
    "work",    "working",  "world",      NULL};

/* A space inside a line (a line break is a token of its own), or NUL. */
static int is_space(unsigned char c)
{
        return c == '\0' || (c != '\n' && cm_isspace(c));
}

static int ci_eq(const char *a, size_t alen, const char *b)
{
        size_t i;

        for (i = 0; i < alen; i++) {
                if (b[i] == '\0' || cm_tolower(a[i]) != b[i])
                        return 0;
        }
        return b[alen] == '\0';
}

/* Copies text with ’ (U+2019) and ‘ (U+2018) replaced by '. */
static void scan_normalise(scan_t *sc, const char *text, size_t len)
{
        size_t i = 0;
        size_t o = 0;

        sc->text = cm_malloc(len + 1);
        while (i < len) {
                if (i + 2 < len && (unsigned char)text[i] == 0xe2 &&
                    (unsigned char)text[i + 1] == 0x80 &&
                    ((unsigned char)text[i + 2] == 0x98 ||
                     (unsigned char)text[i + 2] == 0x99)) {
                        sc->text[o++] = '\'';
                        i += 3;
                        continue;
                }
                sc->text[o++] = text[i++];
        }
        sc->text[o] = '\0';
        sc->len = o;
}

static void scan_push(scan_t *sc, tok_kind_t kind, size_t off, size_t len)
{
        if (sc->cnt == sc->cap) {
                sc->cap = sc->cap ? sc->cap * 2 : 64;
                sc->toks = cm_realloc(sc->toks, sc->cap * sizeof(*sc->toks));
        }
        sc->toks[sc->cnt].kind = kind;
        sc->toks[sc->cnt].off = off;
        sc->toks[sc->cnt].len = len;
        sc->toks[sc->cnt].quoted = sc->in_quote;
        sc->cnt++;
}

/* Bytes of a quotation mark or non-breaking space at s[0..n), or 0: they
 * are read as spaces ("I love “Dune”"). */
static size_t quote_or_space(const unsigned char *s, size_t n)
{
        if (s[0] == '"')
                return 1;
        if (n >= 2 && s[0] == 0xc2 &&
            (s[1] == 0xa0 || s[1] == 0xab || s[1] == 0xbb))
                return 2;
        if (n >= 3 && s[0] == 0xe2 && s[1] == 0x80 &&
            (s[2] == 0x9c || s[2] == 0x9d))
                return 3;
        return 0;
}

/*
 * Words are runs of word characters joined by ' - . / + # & _ when a word
 * character follows ("I'm", "Node.js", "R&D"), plus a trailing "++" or
 * "#" ("C++", "C#"). Every other character that is not a space or a quote
 * is one punctuation token; a line break is one too.
 */
static void scan_tokenise(scan_t *sc)
{
        const unsigned char *s = (const unsigned char *)sc->text;
        size_t n = sc->len;
        size_t i = 0;

        while (i < n) {
                size_t start = i;
                size_t c = cm_text_word_char(sc->text + i, n - i);
                size_t q = quote_or_space(s + i, n - i);
                uint32_t cp;

                if (is_space(s[i]) || q) {
                        /* a quotation mark, not a non-breaking space */
                        if (q && !(q == 2 && s[i + 1] == 0xa0))
                                sc->in_quote = !sc->in_quote;
                        i += q ? q : 1;
                        continue;
                }
                if (!c) {
                        c = cm_utf8_decode(sc->text + i, n - i, &cp);
                        scan_push(sc, TOK_PUNCT, i, c);
                        i += c;
                        continue;
                }
                i += c;
                while (i < n) {
                        c = cm_text_word_char(sc->text + i, n - i);
                        if (c) {
                                i += c;
                        } else if (s[i] && strchr("'-./+#&_", s[i]) &&
                                   i + 1 < n &&
                                   cm_text_word_char(sc->text + i + 1,
                                                     n - i - 1)) {
                                i++;
                        } else {
                                break;
                        }
                }
                if (i + 1 < n && s[i] == '+' && s[i + 1] == '+')
                        i += 2;
                else if (i < n && s[i] == '#')
                        i++;
                scan_push(sc, TOK_WORD, start, i - start);
        }
}

static void scan_release(scan_t *sc)
{
        free(sc->text);
        free(sc->toks);
        memset(sc, 0, sizeof(*sc));
}

static int is_word(const scan_t *sc, size_t i)
{
        return i < sc->cnt && sc->toks[i].kind == TOK_WORD;
}

/* Token i is the word w (lowercase) in any case. */
static int tok_eq(const scan_t *sc, size_t i, const char *w)
{
        return is_word(sc, i) &&
               ci_eq(sc->text + sc->toks[i].off, sc->toks[i].len, w);
}

static int tok_in(const scan_t *sc, size_t i, const char *const *list)
{
        size_t k;

        for (k = 0; list[k]; k++) {
                if (tok_eq(sc, i, list[k]))
                        return 1;
        }
        return 0;
}

static int tok_punct(const scan_t *sc, size_t i, char c)
{
        return i < sc->cnt && sc->toks[i].kind == TOK_PUNCT &&
               sc->text[sc->toks[i].off] == c;
}

/* Token i ends with the lowercase suffix suf and is longer than min. */
static int tok_ends(const scan_t *sc, size_t i, const char *suf, size_t min)
{
        size_t n = strlen(suf);
        const tok_t *t = &sc->toks[i];

        return t->len > min && t->len >= n &&
               ci_eq(sc->text + t->off + t->len - n, n, suf);
}

/*
 * Matches the space-separated lowercase words of seq at token i. Returns
 * the number of tokens matched, or 0.
 */
static size_t tok_seq(const scan_t *sc, size_t i, const char *seq)
{
        size_t k = 0;

        while (*seq) {
                const char *sp = strchr(seq, ' ');
                size_t wlen = sp ? (size_t)(sp - seq) : strlen(seq);
                const tok_t *t;

                if (!is_word(sc, i + k))
                        return 0;
                t = &sc->toks[i + k];
                if (t->len != wlen)
                        return 0;
                for (size_t c = 0; c < wlen; c++) {
                        if (cm_tolower(sc->text[t->off + c]) != seq[c])
                                return 0;
                }
                k++;
                seq += wlen;
                if (*seq == ' ')
                        seq++;
        }
        return k;
}

/* "I'm" or "I am" at token i: returns the tokens matched, or 0. */
static size_t tok_i_am(const scan_t *sc, size_t i)
{
        if (tok_eq(sc, i, "i'm"))
                return 1;
        return tok_seq(sc, i, "i am");
}

static size_t skip_adverb(const scan_t *sc, size_t i)
{
        return tok_in(sc, i, trigger_adverbs) ? i + 1 : i;
}

/* Copies [off, off+len) of the normalised text with quotes dropped and
 * whitespace runs made single spaces. */
static char *span_dup(const scan_t *sc, size_t off, size_t len)
{
        cm_buf_t b;
        size_t i;
        size_t q;
        int space = 0;

        cm_buf_init(&b);
        for (i = off; i < off + len; i++) {
                unsigned char c = (unsigned char)sc->text[i];

                if (is_space(c) || c == '\n') {
                        space = 1;
                        continue;
                }
                q = quote_or_space((const unsigned char *)sc->text + i,
                                   off + len - i);
                if (q) {
                        i += q - 1;
                        space = 1;
                        continue;
                }
                if (space && b.len > 0)
                        cm_buf_add(&b, " ", 1);
                space = 0;
                cm_buf_add(&b, &sc->text[i], 1);
        }
        return cm_buf_detach(&b, NULL);
}

/* Text of tokens [first, last]. */
static char *toks_dup(const scan_t *sc, size_t first, size_t last)
{
        size_t off = sc->toks[first].off;

        return span_dup(sc, off, sc->toks[last].off + sc->toks[last].len - off);
}

static void set_field(char **field, char *value)
{
        free(*field);
        *field = value; /* now owned by the profile */
}

void cm_profile_release(cm_profile_t *profile)
{
        size_t i;

        if (!profile)
                return;
        free(profile->name);
        free(profile->role);
        for (i = 0; profile->interests && i < profile->interest_cnt; i++)
                free(profile->interests[i]);
        free(profile->interests);
        memset(profile, 0, sizeof(*profile));
}

int cm_profile_empty(const cm_profile_t *profile)
{
        return !profile ||
               (!profile->name && !profile->role && !profile->interest_cnt);
}

/* ---- names ---------------------------------------------------------- */

/*
 * Token i could be a word of a name: letters only (inner ' and - allowed,
 * not a trailing "'s"), capitalised (or, when allow_lower, all lowercase),
 * not all capitals, not on the reject list, not -ing/-ed.
 */
static int name_word(const scan_t *sc, size_t i, int allow_lower)
{
        const tok_t *t;
        const unsigned char *s;
        size_t k;
        int lower_seen = 0;

        if (!is_word(sc, i))
                return 0;
        t = &sc->toks[i];
        s = (const unsigned char *)sc->text + t->off;
        if (!cm_isupper(s[0]) && !(allow_lower && cm_islower(s[0])))
                return 0;
        for (k = 0; k < t->len; k++) {
                if (cm_isdigit(s[k]))
                        return 0;
                if (strchr("./+#&_", s[k]))
                        return 0;
                lower_seen |= cm_islower(s[k]) || s[k] >= 0x80;
        }
        if (!lower_seen && t->len > 1)
                return 0; /* "I'M GOING", "USA" */
        if (t->len > 2 && s[t->len - 2] == '\'' &&
            cm_tolower(s[t->len - 1]) == 's')
                return 0;
        if (tok_in(sc, i, name_reject) || tok_in(sc, i, occupations))
                return 0;
        if (tok_ends(sc, i, "ing", 4) || tok_ends(sc, i, "ed", 4))
                return 0;
        return 1;
}

/*
 * Reads a name at token i. Returns the heap name and sets *end to the
 * token after it, or returns NULL.
 */
static char *parse_name(const scan_t *sc, size_t i, int allow_lower,
                        size_t *end)
{
        size_t k = i;
        char *name;

        if (!name_word(sc, i, allow_lower))
                return NULL;
        if (cm_islower(sc->text[sc->toks[i].off])) {
                k = i + 1; /* "my name is ada": one word, capitalised */
        } else {
                while (k < sc->cnt && k - i < NAME_MAX_WORDS &&
                       name_word(sc, k, 0))
                        k++;
        }
        /* "User 1", "Agent 47": a number right after is not a name. */
        if (is_word(sc, k) && cm_isdigit(sc->text[sc->toks[k].off]))
                return NULL;
        name = toks_dup(sc, i, k - 1);
        name[0] = (char)cm_toupper(name[0]);
        *end = k;
        return name;
}

/* ---- roles ---------------------------------------------------------- */

static int occupation_head(const scan_t *sc, size_t i, int strict)
{
        if (tok_in(sc, i, occupations))
                return 1;
        if (strict || tok_in(sc, i, non_occupations))
                return 0;
        return tok_ends(sc, i, "er", 4) || tok_ends(sc, i, "or", 4) ||
               tok_ends(sc, i, "ist", 4);
}

/*
 * Reads a role at token i: an optional article, then up to ROLE_MAX_WORDS
 * words up to punctuation or a stop word, whose last word is an occupation
 * (strict: from the list only). Returns the heap role or NULL.
 */
static char *parse_role(const scan_t *sc, size_t i, int need_article,
                        int strict)
{
        size_t k;
        size_t first;

        if (tok_eq(sc, i, "a") || tok_eq(sc, i, "an") || tok_eq(sc, i, "the"))
                i++;
        else if (need_article)
                return NULL;
        first = i;
        for (k = i; is_word(sc, k) && k - first < ROLE_MAX_WORDS; k++) {
                if (tok_in(sc, k, role_stop))
                        break;
        }
        if (k == first)
                return NULL;
        for (size_t r = first; r < k; r++) {
                if (tok_in(sc, r, role_reject) || tok_in(sc, r, past_words))
                        return NULL; /* "a good cook", "a former nurse" */
        }
        /* Cut mid-phrase by the word limit: not a clean noun phrase. */
        if (is_word(sc, k) && !tok_in(sc, k, role_stop))
                return NULL;
        if (!occupation_head(sc, k - 1, strict))
                return NULL;
        return toks_dup(sc, first, k - 1);
}

/* ---- interests ------------------------------------------------------ */

static int clause_end(const scan_t *sc, size_t i)
{
        if (i >= sc->cnt)
                return 1;
        if (sc->toks[i].kind == TOK_PUNCT)
                return !strchr(",&'-/", sc->text[sc->toks[i].off]);
        return tok_in(sc, i, clause_stop);
}

static int item_sep(const scan_t *sc, size_t i)
{
        return tok_punct(sc, i, ',') || tok_punct(sc, i, '&') ||
               tok_eq(sc, i, "and");
}

static int interest_has(const cm_profile_t *out, const char *s)
{
        size_t k;

        for (k = 0; k < out->interest_cnt; k++) {
                const char *t = out->interests[k];
                size_t j = 0;

                while (t[j] && s[j] && cm_tolower(t[j]) == cm_tolower(s[j]))
                        j++;
                if (t[j] == '\0' && s[j] == '\0')
                        return 1;
        }
        return 0;
}

/* Adds the interest of tokens [first, last) after trimming, if it is one. */
static void add_interest(const scan_t *sc, size_t first, size_t last,
                         cm_profile_t *out)
{
        size_t end;
        size_t k;
        char *item;

        /* "I love the characters": a definite description of a part or a
         * quality points back at something said before ("the beach", "the
         * Beatles" do not) */
        if (tok_eq(sc, first, "the") && tok_in(sc, first + 1, anaphoric))
                return;
        while (first < last && tok_in(sc, first, interest_lead))
                first++;
        while (last > first && tok_in(sc, last - 1, interest_trail))
                last--;
        if (first == last || last - first > INTEREST_MAX_WORDS)
                return;
        if (tok_in(sc, first, interest_reject) || !is_word(sc, first))
                return;
        for (k = first; k < last; k++) {
                if (tok_in(sc, k, interest_pronouns))
                        return;
        }
        for (k = first; k < last && tok_in(sc, k, generic_words); k++)
                ;
        if (k == last)
                return; /* "learn new things", "help people" */
        if (out->interest_cnt >= INTEREST_MAX)
                return;
        /* At most INTEREST_MAX_BYTES: whole words, else a UTF-8-safe cut. */
        end = last;
        while (end > first + 1 && sc->toks[end - 1].off +
                                          sc->toks[end - 1].len -
                                          sc->toks[first].off >
                                      INTEREST_MAX_BYTES)
                end--;
        item = toks_dup(sc, first, end - 1);
        k = strlen(item);
        if (k > INTEREST_MAX_BYTES) {
                k = INTEREST_MAX_BYTES;
                while (k > 0 && ((unsigned char)item[k] & 0xc0) == 0x80)
                        k--;
                item[k] = '\0';
        }
        if (k == 0 || interest_has(out, item)) {
                free(item);
                return;
        }
        out->interests = cm_realloc(
            out->interests, (out->interest_cnt + 1) * sizeof(*out->interests));
        out->interests[out->interest_cnt++] = item;
}

/* A question tagged on after a comma: ", do you?", ", and you?", ", what
 * about you?". */
static int tag_question(const scan_t *sc, size_t i, size_t end)
{
        size_t k;

        if (!tok_punct(sc, i, ',') || !tok_punct(sc, end, '?'))
                return 0;
        for (k = i + 1; k < end; k++) {
                if (tok_eq(sc, k, "you") || tok_eq(sc, k, "yours"))
                        return k - i <= 3;
        }
        return 0;
}

/* Reads the interest list of the clause starting at token i. A clause
 * that ends in '?' is a question, not a statement, and is skipped, but
 * for a question tagged on after it ("I love hiking, do you?"). */
static void parse_interests(const scan_t *sc, size_t i, cm_profile_t *out)
{
        size_t end = i;
        size_t start;
        size_t k;

        /* "I love their long, flowing fins": the whole list is about
         * something said before */
        if (tok_in(sc, i, interest_pronouns))
                return;
        while (!clause_end(sc, end))
                end++;
        if (tok_punct(sc, end, '?')) {
                for (k = i; k < end && !tag_question(sc, k, end); k++)
                        ;
                if (k == end)
                        return;
                end = k;
        }
        start = i;
        for (k = i; k <= end; k++) {
                if (k == end || item_sep(sc, k)) {
                        add_interest(sc, start, k, out);
                        start = k + 1;
                }
        }
}

/* ---- triggers ------------------------------------------------------- */

static int sentence_end(const scan_t *sc, size_t i)
{
        return sc->toks[i].kind == TOK_PUNCT &&
               strchr(".!?;\n", sc->text[sc->toks[i].off]);
}

static int clause_sep(const scan_t *sc, size_t i)
{
        return sc->toks[i].kind == TOK_PUNCT &&
               strchr(".!?;:,()\n", sc->text[sc->toks[i].off]);
}

typedef enum field {
        FIELD_NAME = 0,
        FIELD_ROLE,
        FIELD_INTEREST,
} field_t;

/*
 * The statement whose trigger starts at token i is not taken at its word:
 * it is quoted, its clause is a question, a wish, a plan or a hypothesis
 * ("if", "would", "want"…), or denied ("not", "never"…) before it, its
 * sentence reports someone's words ("said", "told", "think"…), or, for a
 * role, its clause is in the past ("used to", "was").
 */
static int hedged(const scan_t *sc, size_t i, field_t field)
{
        size_t k;

        if (sc->toks[i].quoted)
                return 1;
        for (k = i; k < sc->cnt && !clause_sep(sc, k); k++)
                ;
        if (tok_punct(sc, k, '?'))
                return 1;
        for (k = i; k > 0 && !clause_sep(sc, k - 1) &&
                    !tok_in(sc, k - 1, conjunctions);
             k--) {
                if (tok_in(sc, k - 1, irrealis) || tok_in(sc, k - 1, negations))
                        return 1;
                if (field == FIELD_ROLE && tok_in(sc, k - 1, past_words))
                        return 1;
        }
        for (k = i; k > 0 && !sentence_end(sc, k - 1); k--) {
                if (tok_in(sc, k - 1, reporting))
                        return 1;
        }
        return 0;
}

/* "my name is X", "call me X", "I'm X" (with an appositive role: "I'm
 * Sumit Pandya, full stack developer"). */
static void try_name(const scan_t *sc, size_t i, cm_profile_t *out)
{
        size_t j = 0;
        size_t m;
        size_t end = 0;
        int allow_lower = 0;
        int appositive = 0;
        char *name;
        char *role;

        if ((m = tok_seq(sc, i, "my name is")) ||
            (m = tok_seq(sc, i, "my name's"))) {
                j = i + m;
                allow_lower = 1;
        } else if ((m = tok_seq(sc, i, "call me"))) {
                j = i + m;
        } else if ((m = tok_i_am(sc, i))) {
                j = i + m;
                if (tok_eq(sc, j, "called"))
                        j++;
                appositive = 1;
        } else {
                return;
        }
        if (hedged(sc, i, FIELD_NAME))
                return;
        name = parse_name(sc, j, allow_lower, &end);
        if (!name)
                return;
        set_field(&out->name, name);
        /* "I'm Sumit Pandya, full stack developer" */
        if (appositive && tok_punct(sc, end, ',')) {
                role = parse_role(sc, end + 1, 0, 0);
                if (role)
                        set_field(&out->role, role);
        }
}

/*
 * The sentence around token i is about the speaker: the nearest subject
 * before i is first person ("I work as", "I see myself as"), or, with none
 * before, the first one after ("As a nurse, I…"). "My sister works as a
 * nurse" is not.
 */
static int about_speaker(const scan_t *sc, size_t i)
{
        size_t k;

        for (k = i; k > 0 && !sentence_end(sc, k - 1); k--) {
                if (tok_in(sc, k - 1, first_person))
                        return 1;
                if (tok_in(sc, k - 1, other_person))
                        return 0;
        }
        for (k = i; k < sc->cnt && !sentence_end(sc, k); k++) {
                if (tok_in(sc, k, first_person))
                        return 1;
                if (tok_in(sc, k, other_person))
                        return 0;
        }
        return 0;
}

static void try_role(const scan_t *sc, size_t i, cm_profile_t *out)
{
        char *role = NULL;
        size_t m;
        size_t j;

        if ((m = tok_i_am(sc, i))) {
                j = skip_adverb(sc, i + m);
                role = parse_role(sc, j, 1, 0);
                if (!role && !tok_eq(sc, j, "a") && !tok_eq(sc, j, "an"))
                        role = parse_role(sc, j, 0, 1); /* "I'm teacher" */
        } else if ((m = tok_seq(sc, i, "my job is")) ||
                   (m = tok_seq(sc, i, "my profession is")) ||
                   (m = tok_seq(sc, i, "my occupation is"))) {
                role = parse_role(sc, i + m, 0, 0);
        } else if ((m = tok_seq(sc, i, "work as")) ||
                   (m = tok_seq(sc, i, "working as")) ||
                   (m = tok_seq(sc, i, "employed as"))) {
                if (about_speaker(sc, i))
                        role = parse_role(sc, i + m, 0, 0);
        } else if ((tok_seq(sc, i, "as a") || tok_seq(sc, i, "as an")) &&
                   (i == 0 || sentence_end(sc, i - 1))) {
                /* "As a developer, I…" */
                if (about_speaker(sc, i))
                        role = parse_role(sc, i + 1, 1, 0);
        }
        if (role && hedged(sc, i, FIELD_ROLE)) {
                free(role);
                role = NULL;
        }
        if (role)
                set_field(&out->role, role);
}

/* Where the interests of a trigger at token i start ("I love X", "I'm
 * into X", "my hobby is X"…), or 0 when there is none. */
static size_t interest_start(const scan_t *sc, size_t i)
{
        size_t m;
        size_t j;

        if (tok_eq(sc, i, "i")) {
                j = skip_adverb(sc, i + 1);
                if (tok_in(sc, j, interest_verbs))
                        return j + 1;
                if ((m = tok_seq(sc, j, "work with")))
                        return j + m;
        }
        if ((m = tok_i_am(sc, i))) {
                j = skip_adverb(sc, i + m);
                if ((m = tok_seq(sc, j, "into")) ||
                    (m = tok_seq(sc, j, "working with")) ||
                    (m = tok_seq(sc, j, "interested in")) ||
                    (m = tok_seq(sc, j, "passionate about")) ||
                    (m = tok_seq(sc, j, "a fan of")) ||
                    (m = tok_seq(sc, j, "a big fan of")) ||
                    (m = tok_seq(sc, j, "a huge fan of")))
                        return j + m;
                return 0;
        }
        if ((m = tok_seq(sc, i, "my hobby is")) ||
            (m = tok_seq(sc, i, "my hobbies are")) ||
            (m = tok_seq(sc, i, "my hobbies include")) ||
            (m = tok_seq(sc, i, "my passion is")))
                return i + m;
        return 0;
}

static void try_interests(const scan_t *sc, size_t i, cm_profile_t *out)
{
        size_t j = interest_start(sc, i);

        if (j > 0 && !hedged(sc, i, FIELD_INTEREST))
                parse_interests(sc, j, out);
}

int cm_profile_extract(const char *text, size_t len, cm_profile_t *out)
{
        scan_t sc;
        size_t i;
        int found;

        memset(out, 0, sizeof(*out));
        memset(&sc, 0, sizeof(sc));
        if (!text || len == 0)
                return 0;
        scan_normalise(&sc, text, len);
        scan_tokenise(&sc);
        for (i = 0; i < sc.cnt; i++) {
                /* Every trigger starts with i, my, call, work, employed
                 * or as: skip the other words cheaply. */
                if (sc.toks[i].kind != TOK_WORD ||
                    !strchr("imcwea", cm_tolower(sc.text[sc.toks[i].off])))
                        continue;
                try_name(&sc, i, out);
                try_role(&sc, i, out);
                try_interests(&sc, i, out);
        }
        scan_release(&sc);
        found =
            (out->name != NULL) + (out->role != NULL) + (out->interest_cnt > 0);
        return found;
}

void cm_profile_fill(cm_profile_t *dst, const cm_profile_t *src)
{
        size_t i;

        if (!src)
                return;
        if (!dst->name && src->name)
                dst->name = cm_strdup(src->name);
        if (!dst->role && src->role)
                dst->role = cm_strdup(src->role);
        for (i = 0; i < src->interest_cnt && dst->interest_cnt < INTEREST_MAX;
             i++) {
                if (interest_has(dst, src->interests[i]))
                        continue;
                dst->interests =
                    cm_realloc(dst->interests, (dst->interest_cnt + 1) *
                                                   sizeof(*dst->interests));
                dst->interests[dst->interest_cnt++] =
                    cm_strdup(src->interests[i]);
        }
}

void cm_profile_from_messages(const cm_message_t *msgs, size_t cnt,
                              cm_profile_t *out)
{
        cm_profile_t said;
        size_t i;

        memset(out, 0, sizeof(*out));
        for (i = cnt; i > 0; i--) {
                const cm_message_t *m = &msgs[i - 1];

                if (m->role != CM_ROLE_USER ||
                    !cm_profile_extract(m->content, m->content_len, &said))
                        continue;
                cm_profile_fill(out, &said);
                cm_profile_release(&said);
        }
}
