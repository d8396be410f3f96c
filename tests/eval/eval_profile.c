/*
 * eval_profile: how the profile extractor and the extractive summarizer do
 * on real, externally written dialogue with gold persona facts
 * (Synthetic-Persona-Chat, validation split; see its README.md).
 *
 *   eval_profile [PATH/valid.csv]
 *
 * Every figure is given for the first half of the conversations (the
 * half rules are developed on), the second half (held out) and all.
 *
 * Profile: every "User 1:" / "User 2:" line goes through
 * cm_profile_extract() as that speaker's message. An extracted role or
 * interest is right when it occurs (case-insensitive, at word boundaries)
 * in one of that speaker's persona facts that supports it: a fact that
 * says the opposite ("I hate …", "I do not …", "I am afraid of …")
 * supports nothing, and a fact about someone else ("My mother is a
 * dentist") supports no role. Recall is over the persona facts that look
 * like a role ("I am a …", "I'm a …", "I work as …") or an interest ("I
 * love …", "I like …", "I enjoy …", "my hobby …", "I'm into …", "…
 * interested in …", "my favorite …"). The role set keeps "I am a boy."
 * and "I am a vegan.": the extractor is meant to refuse those, so role
 * recall has a ceiling below 100%. Precision has a ceiling too: the
 * conversations were generated from the personas, and the speakers also
 * state facts about themselves that their persona does not list ("I'm a
 * student", "I like to play video games"); such a statement, taken at its
 * word, counts as wrong here.
 *
 * Names: the data has no gold names, but it has placeholders ("Hi, I'm
 * [User 1's name]", "I'm User 1"). A name extracted from a line with a
 * placeholder is false. Other names are listed with whether the other
 * speaker says the same word (a sign of a real name: "Nice to meet you,
 * Ashley!") so that a reader can judge the rest.
 *
 * Summary: each conversation is folded in steps of FOLD_STEP messages
 * (previous summary + new messages, as the summarizer worker does) with
 * max_tokens 300 and the "estimate" tokenizer, once with User 1 as the
 * user and once with User 2. Retention is the share of a persona fact's
 * content words found in the summary, next to the share found in the
 * whole conversation (the ceiling: personas are often paraphrased); the
 * figure to hold is their ratio. Beside it, the summary's tokens as a
 * share of the conversation's. A second ratio counts a fact's word as
 * present only where the user voices it: in the user's lines, or in a
 * question put to the user just before they answer. The conversations
 * were generated, and the other speaker often says the user's persona
 * facts as its own ("I love cats" in the wrong mouth); the first ratio
 * credits a summary for keeping those, and for generic words such as
 * "favorite" or "work" anywhere.
 *
 * Exits 0 with a message when the data file is absent.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "profile.h"
#include "summarize.h"
#include "tokens.h"
#include "util.h"

#define DEFAULT_PATH "../shared/data/synthetic-persona-chat/valid.csv"
#define FOLD_STEP    5
#define FOLD_TOKENS  300
#define NAMES_SHOWN  40

typedef struct strv {
        char **v;
        size_t cnt;
} strv_t;

typedef struct convo {
        strv_t persona[2]; /* facts of User 1, User 2 */
        strv_t line;       /* message texts, in order */
        int *speaker;      /* 0 or 1, per line */
} convo_t;

/* [0]: the text occurs in the fact; [1]: its content words do, stemmed. */
typedef struct count {
        size_t got;         /* extracted */
        size_t got_ok[2];   /* extracted and found in the speaker's persona */
        size_t gold;        /* gold facts of this kind */
        size_t gold_hit[2]; /* gold facts matched by something extracted */
} count_t;

typedef struct name_stat {
        char *name;
        size_t times;
        size_t echoed; /* times the other speaker said it too */
} name_stat_t;

static void strv_push(strv_t *sv, char *s)
{
        sv->v = cm_realloc(sv->v, (sv->cnt + 1) * sizeof(*sv->v));
        sv->v[sv->cnt++] = s; /* now owned by sv */
}

static void strv_free(strv_t *sv)
{
        size_t i;

        for (i = 0; i < sv->cnt; i++)
                free(sv->v[i]);
        free(sv->v);
        memset(sv, 0, sizeof(*sv));
}

static int lc(int c)
{
        return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int is_wordc(unsigned char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c >= '0' && c <= '9') || c >= 0x80;
}

/* needle occurs in hay, case-insensitively, at word boundaries. */
static int has_phrase(const char *hay, const char *needle)
{
        size_t n = strlen(needle);
        size_t h = strlen(hay);
        size_t i;

        if (n == 0 || n > h)
                return 0;
        for (i = 0; i + n <= h; i++) {
                size_t k;

                if (i > 0 && is_wordc((unsigned char)hay[i - 1]))
                        continue;
                if (i + n < h && is_wordc((unsigned char)hay[i + n]))
                        continue;
                for (k = 0; k < n; k++) {
                        if (lc((unsigned char)hay[i + k]) !=
                            lc((unsigned char)needle[k]))
                                break;
                }
                if (k == n)
                        return 1;
        }
        return 0;
}

static int has_any(const char *hay, const char *const *needles)
{
        size_t i;

        for (i = 0; needles[i]; i++) {
                if (has_phrase(hay, needles[i]))
                        return 1;
        }
        return 0;
}

static const char *const role_cues[] = {"i am a", "i am an",   "i'm a",
                                        "i'm an", "i work as", NULL};
static const char *const interest_cues[] = {
    "i love",      "i like",   "i enjoy",         "my hobby",
    "my hobbies",  "i'm into", "i am into",       "interested in",
    "my favorite", "i adore",  "i am passionate", NULL};
static const char *const placeholders[] = {
    "[user", "user 1", "user 2", "(name)", "[name", "<name", NULL};

static const char *const fact_stop[] = {
    "the",   "and",   "for",   "with", "have", "has",    "had",    "was",
    "are",   "but",   "not",   "you",  "your", "that",   "this",   "from",
    "they",  "them",  "their", "like", "love", "enjoy",  "am",     "i'm",
    "my",    "our",   "his",   "her",  "its",  "very",   "really", "much",
    "one",   "who",   "what",  "when", "all",  "can",    "will",   "would",
    "been",  "being", "also",  "just", "some", "any",    "out",    "into",
    "about", "there", "here",  "when", "than", "then",   "too",    "get",
    "i've",  "don't", "it's",  "lot",  "time", "things", NULL};

static int is_fact_stop(const char *w)
{
        size_t k;

        for (k = 0; fact_stop[k]; k++) {
                if (strcmp(fact_stop[k], w) == 0)
                        return 1;
        }
        return 0;
}

/*
 * Reads the next word of s (letters, digits, apostrophes) lowercased into
 * w[0..size). Returns the position after it, or NULL at the end.
 */
static const char *next_word(const char *s, char *w, size_t size)
{
        size_t n = 0;

        while (*s && !is_wordc((unsigned char)*s))
                s++;
        if (!*s)
                return NULL;
        while (*s && (is_wordc((unsigned char)*s) || *s == '\'')) {
                if (n < size - 1)
                        w[n++] = (char)lc((unsigned char)*s);
                s++;
        }
        w[n] = '\0';
        return s;
}

/* A crude stem, enough to match "baking" with "bake", "cats" with "cat". */
static void stem(char *w)
{
        static const char *const suf[] = {"ing", "ed", "es", "s", "e", NULL};
        size_t n = strlen(w);
        size_t k;

        for (k = 0; suf[k]; k++) {
                size_t m = strlen(suf[k]);

                if (n > m + 2 && strcmp(w + n - m, suf[k]) == 0) {
                        w[n - m] = '\0';
                        n -= m;
                }
        }
}

/* Every content word of item has a word of the same stem in fact. */
static int stem_match(const char *fact, const char *item)
{
        char w[64];
        const char *s = item;
        int words = 0;

        while ((s = next_word(s, w, sizeof(w))) != NULL) {
                const char *f = fact;
                char v[64];
                int found = 0;

                if (strlen(w) < 3 || is_fact_stop(w))
                        continue;
                words++;
                stem(w);
                while (!found && (f = next_word(f, v, sizeof(v))) != NULL) {
                        stem(v);
                        found = strcmp(v, w) == 0;
                }
                if (!found)
                        return 0;
        }
        return words > 0;
}

/* ---- CSV (RFC 4180: quoted fields, "" escapes, newlines inside) ----- */

/* Reads one record into fields. Returns the number of fields, 0 at end. */
static size_t csv_record(const char **p, const char *end, strv_t *fields)
{
        const char *s = *p;

        memset(fields, 0, sizeof(*fields));
        if (s >= end)
                return 0;
        for (;;) {
                cm_buf_t f;

                cm_buf_init(&f);
                if (s < end && *s == '"') {
                        s++;
                        while (s < end) {
                                if (*s == '"' && s + 1 < end && s[1] == '"') {
                                        cm_buf_add(&f, "\"", 1);
                                        s += 2;
                                } else if (*s == '"') {
                                        s++;
                                        break;
                                } else {
                                        cm_buf_add(&f, s++, 1);
                                }
                        }
                }
                while (s < end && *s != ',' && *s != '\n' && *s != '\r')
                        cm_buf_add(&f, s++, 1);
                strv_push(fields, cm_buf_detach(&f, NULL));
                if (s < end && *s == ',') {
                        s++;
                        continue;
                }
                if (s < end && *s == '\r')
                        s++;
                if (s < end && *s == '\n')
                        s++;
                break;
        }
        *p = s;
        return fields->cnt;
}

static void split_lines(const char *s, strv_t *out)
{
        while (*s) {
                const char *nl = strchr(s, '\n');
                size_t n = nl ? (size_t)(nl - s) : strlen(s);

                while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' '))
                        n--;
                if (n > 0)
                        strv_push(out, cm_strndup(s, n));
                s += n;
                while (*s == '\r' || *s == ' ' || *s == '\n')
                        s++;
        }
}

static void convo_parse(const strv_t *fields, convo_t *cv)
{
        strv_t lines;
        size_t i;

        memset(cv, 0, sizeof(*cv));
        memset(&lines, 0, sizeof(lines));
        split_lines(fields->v[0], &cv->persona[0]);
        split_lines(fields->v[1], &cv->persona[1]);
        split_lines(fields->v[2], &lines);
        cv->speaker = cm_calloc(lines.cnt, sizeof(*cv->speaker));
        for (i = 0; i < lines.cnt; i++) {
                const char *l = lines.v[i];
                int who;

                if (strncmp(l, "User 1:", 7) == 0)
                        who = 0;
                else if (strncmp(l, "User 2:", 7) == 0)
                        who = 1;
                else
                        continue;
                l += 7;
                while (*l == ' ')
                        l++;
                cv->speaker[cv->line.cnt] = who;
                strv_push(&cv->line, cm_strdup(l));
        }
        strv_free(&lines);
}

static void convo_free(convo_t *cv)
{
        strv_free(&cv->persona[0]);
        strv_free(&cv->persona[1]);
        strv_free(&cv->line);
        free(cv->speaker);
}

/* ---- profile -------------------------------------------------------- */

static int strv_has_ci(const strv_t *sv, const char *s)
{
        size_t i;

        for (i = 0; i < sv->cnt; i++) {
                if (strcasecmp(sv->v[i], s) == 0)
                        return 1;
        }
        return 0;
}

/* EVAL_VERBOSE=1 in the environment lists every verdict on stderr. */
static int verbose;

static int match(int how, const char *fact, const char *item)
{
        return how == 0 ? has_phrase(fact, item) : stem_match(fact, item);
}

typedef enum kind {
        KIND_ROLE = 0,
        KIND_INTEREST,
} kind_t;

/* A fact that says the opposite of a taste or a state. */
static const char *const negations[] = {
    "not",       "no",     "never",    "don't", "doesn't", "didn't",   "can't",
    "cannot",    "won't",  "hate",     "hates", "dislike", "dislikes", "afraid",
    "terrified", "scared", "allergic", "fear",  "nor",     NULL};
static const char *const first_person[] = {"i",   "i'm",  "i've",
                                           "i'd", "i'll", NULL};
static const char *const own_work[] = {
    "my job", "my occupation", "my profession", "my career", "my work", NULL};

/* Whether a persona fact can support an extracted item of this kind: not a
 * negative fact, and for a role, a fact about the speaker ("I am …", "my
 * job is …"), not about a relative ("My mother is a dentist"). */
static int supports(kind_t kind, const char *fact)
{
        if (has_any(fact, negations))
                return 0;
        if (kind == KIND_ROLE)
                return has_any(fact, first_person) || has_any(fact, own_work);
        return 1;
}

static void score_items(kind_t kind, const strv_t *got, const strv_t *persona,
                        const char *const *cues, count_t *c)
{
        const char *what = kind == KIND_ROLE ? "role" : "interest";
        size_t i;
        size_t j;
        int how;

        c->got += got->cnt;
        for (j = 0; j < persona->cnt; j++)
                c->gold += has_any(persona->v[j], cues);
        for (how = 0; how < 2; how++) {
                for (i = 0; i < got->cnt; i++) {
                        int ok = 0;

                        for (j = 0; j < persona->cnt && !ok; j++)
                                ok = supports(kind, persona->v[j]) &&
                                     match(how, persona->v[j], got->v[i]);
                        c->got_ok[how] += ok;
                        if (verbose && how == 1)
                                fprintf(stderr, "%s %s: %s\n", what,
                                        ok ? "ok" : "wrong", got->v[i]);
                }
                for (j = 0; j < persona->cnt; j++) {
                        int hit = 0;

                        if (!has_any(persona->v[j], cues))
                                continue;
                        for (i = 0; i < got->cnt && !hit; i++)
                                hit = supports(kind, persona->v[j]) &&
                                      match(how, persona->v[j], got->v[i]);
                        c->gold_hit[how] += hit;
                }
        }
}

static void name_note(name_stat_t **names, size_t *cnt, const char *name,
                      int echoed)
{
        size_t i;

        for (i = 0; i < *cnt; i++) {
                if (strcmp((*names)[i].name, name) == 0)
                        break;
        }
        if (i == *cnt) {
                *names = cm_realloc(*names, (*cnt + 1) * sizeof(**names));
                (*names)[i].name = cm_strdup(name);
                (*names)[i].times = 0;
                (*names)[i].echoed = 0;
                (*cnt)++;
        }
        (*names)[i].times++;
        (*names)[i].echoed += echoed != 0;
}

typedef struct name_count {
        size_t lines_placeholder;
        size_t false_placeholder; /* names from placeholder lines */
        size_t extracted;
        size_t echoed;
} name_count_t;

static void eval_profile(const convo_t *cv, count_t *role, count_t *interest,
                         name_count_t *nc, name_stat_t **names,
                         size_t *name_cnt)
{
        strv_t roles[2];
        strv_t interests[2];
        size_t i;
        size_t k;
        int who;

        memset(roles, 0, sizeof(roles));
        memset(interests, 0, sizeof(interests));
        for (i = 0; i < cv->line.cnt; i++) {
                cm_profile_t prof;
                const char *l = cv->line.v[i];
                int ph = has_any(l, placeholders);

                who = cv->speaker[i];
                cm_profile_extract(l, strlen(l), &prof);
                nc->lines_placeholder += ph;
                if (prof.name) {
                        int echoed = 0;

                        nc->extracted++;
                        nc->false_placeholder += ph;
                        for (k = 0; k < cv->line.cnt && !echoed; k++) {
                                if (cv->speaker[k] != who)
                                        echoed = has_phrase(cv->line.v[k],
                                                            prof.name);
                        }
                        nc->echoed += echoed;
                        if (verbose)
                                fprintf(stderr, "name %s%s: %s\n", prof.name,
                                        ph ? " (placeholder line)" : "", l);
                        name_note(names, name_cnt, prof.name, echoed);
                }
                if (prof.role && !strv_has_ci(&roles[who], prof.role))
                        strv_push(&roles[who], cm_strdup(prof.role));
                for (k = 0; k < prof.interest_cnt; k++) {
                        if (!strv_has_ci(&interests[who], prof.interests[k]))
                                strv_push(&interests[who],
                                          cm_strdup(prof.interests[k]));
                }
                cm_profile_release(&prof);
        }
        for (who = 0; who < 2; who++) {
                score_items(KIND_ROLE, &roles[who], &cv->persona[who],
                            role_cues, role);
                score_items(KIND_INTEREST, &interests[who], &cv->persona[who],
                            interest_cues, interest);
                strv_free(&roles[who]);
                strv_free(&interests[who]);
        }
}

/* ---- summary -------------------------------------------------------- */

typedef struct retention {
        double summary;      /* sum over facts of the share kept */
        double conversation; /* sum over facts of the share in the text */
        double voiced;       /* … of the share the speaker voices */
        double voiced_kept;  /* … of the share voiced and kept */
        size_t facts;
        double summary_tokens;
        double convo_tokens;
        size_t folds;
        int64_t fold_us;
} retention_t;

/* Shares of fact's content words found in summary and in convo. */
static int has_stem(const char *text, const char *stemmed)
{
        char v[64];

        while ((text = next_word(text, v, sizeof(v))) != NULL) {
                stem(v);
                if (strcmp(v, stemmed) == 0)
                        return 1;
        }
        return 0;
}

/* Adds to rt the shares of fact's content words (crudely stemmed) found
 * in summary, in convo, in voiced and in both voiced and summary. */
static void fact_words(const char *fact, const char *summary, const char *convo,
                       const char *voiced, retention_t *rt)
{
        const char *s = fact;
        size_t words = 0;
        size_t hit_s = 0;
        size_t hit_c = 0;
        size_t hit_v = 0;
        size_t hit_vs = 0;
        char w[64];

        while ((s = next_word(s, w, sizeof(w))) != NULL) {
                int v;

                if (strlen(w) < 3 || is_fact_stop(w))
                        continue;
                words++;
                stem(w);
                hit_s += has_stem(summary, w);
                hit_c += has_stem(convo, w);
                v = has_stem(voiced, w);
                hit_v += v;
                hit_vs += v && has_stem(summary, w);
        }
        if (words == 0)
                words = hit_s = hit_c = hit_v = hit_vs = 1;
        rt->summary += (double)hit_s / (double)words;
        rt->conversation += (double)hit_c / (double)words;
        rt->voiced += (double)hit_v / (double)words;
        rt->voiced_kept += (double)hit_vs / (double)words;
}

/* Adds the retention of facts in summary (and in convo) to rt. */
static void retain(const strv_t *facts, const char *summary, const char *convo,
                   const char *voiced, retention_t *rt)
{
        size_t i;

        for (i = 0; i < facts->cnt; i++) {
                fact_words(facts->v[i], summary, convo, voiced, rt);
                rt->facts++;
        }
}

/* Appends the questions (sentences ending in '?') of line to b. */
static void add_questions(cm_buf_t *b, const char *line)
{
        const char *start = line;
        const char *p;

        for (p = line; *p; p++) {
                if (*p != '.' && *p != '!' && *p != '?')
                        continue;
                if (*p == '?') {
                        cm_buf_add(b, start, (size_t)(p + 1 - start));
                        cm_buf_adds(b, "\n");
                }
                start = p + 1;
        }
}

/* Folds cv with speaker 'user' as the user; the facts of that speaker go
 * to rt, those of the other speaker (the "assistant") to rt_other. */
static void eval_summary(const convo_t *cv, int user, const cm_tokenizer_t *tk,
                         retention_t *rt, retention_t *rt_other)
{
        cm_message_t *msgs = cm_calloc(cv->line.cnt + 1, sizeof(*msgs));
        char *summary = cm_strdup("");
        const char *text;
        cm_buf_t convo;
        cm_buf_t voiced; /* what the user says, and what they are asked */
        size_t i;
        size_t at;

        cm_buf_init(&convo);
        cm_buf_init(&voiced);
        for (i = 0; i < cv->line.cnt; i++) {
                msgs[i].role =
                    cv->speaker[i] == user ? CM_ROLE_USER : CM_ROLE_ASSISTANT;
                msgs[i].content = cv->line.v[i];
                msgs[i].content_len = strlen(cv->line.v[i]);
                msgs[i].tokens = -1;
                cm_buf_adds(&convo, cv->line.v[i]);
                cm_buf_adds(&convo, "\n");
                if (cv->speaker[i] == user) {
                        cm_buf_adds(&voiced, cv->line.v[i]);
                        cm_buf_adds(&voiced, "\n");
                } else if (i + 1 < cv->line.cnt && cv->speaker[i + 1] == user) {
                        add_questions(&voiced, cv->line.v[i]);
                }
        }
        for (at = 0; at < cv->line.cnt; at += FOLD_STEP) {
                cm_fold_in_t in;
                int64_t t0;
                char *next;

                memset(&in, 0, sizeof(in));
                in.summary = summary;
                in.msgs = msgs + at;
                in.msg_cnt = cv->line.cnt - at < FOLD_STEP ? cv->line.cnt - at
                                                           : FOLD_STEP;
                in.max_tokens = FOLD_TOKENS;
                in.tk = tk;
                t0 = cm_mono_us();
                next = cm_extractive_fold(&in);
                rt->fold_us += cm_mono_us() - t0;
                rt->folds++;
                free(summary);
                summary = next;
        }
        text = convo.buf;
        if (verbose)
                fprintf(stderr, "summary (User %d as the user): %s\n", user + 1,
                        summary);
        retain(&cv->persona[user], summary, text, voiced.buf, rt);
        retain(&cv->persona[1 - user], summary, text, "", rt_other);
        rt->summary_tokens += cm_tokenizer_count(tk, summary, strlen(summary));
        rt->convo_tokens += cm_tokenizer_count(tk, text, convo.len);
        free(summary);
        free(msgs);
        cm_buf_release(&convo);
        cm_buf_release(&voiced);
}

/* Everything counted over a set of conversations. */
typedef struct tally {
        count_t role;
        count_t interest;
        name_count_t names;
        retention_t user;  /* the 'user' side's facts, and the tokens */
        retention_t other; /* the other side's facts */
        size_t convos;
        size_t lines;
        int64_t profile_us;
} tally_t;

static void count_add(count_t *to, const count_t *c)
{
        int how;

        to->got += c->got;
        to->gold += c->gold;
        for (how = 0; how < 2; how++) {
                to->got_ok[how] += c->got_ok[how];
                to->gold_hit[how] += c->gold_hit[how];
        }
}

static void retention_add(retention_t *to, const retention_t *r)
{
        to->summary += r->summary;
        to->conversation += r->conversation;
        to->voiced += r->voiced;
        to->voiced_kept += r->voiced_kept;
        to->facts += r->facts;
        to->summary_tokens += r->summary_tokens;
        to->convo_tokens += r->convo_tokens;
        to->folds += r->folds;
        to->fold_us += r->fold_us;
}

static void tally_add(tally_t *to, const tally_t *t)
{
        count_add(&to->role, &t->role);
        count_add(&to->interest, &t->interest);
        to->names.lines_placeholder += t->names.lines_placeholder;
        to->names.false_placeholder += t->names.false_placeholder;
        to->names.extracted += t->names.extracted;
        to->names.echoed += t->names.echoed;
        retention_add(&to->user, &t->user);
        retention_add(&to->other, &t->other);
        to->convos += t->convos;
        to->lines += t->lines;
        to->profile_us += t->profile_us;
}

static double pct(size_t a, size_t b)
{
        return b ? 100.0 * (double)a / (double)b : 0.0;
}

static double share(double a, double b)
{
        return b > 0 ? 100.0 * a / b : 0.0;
}

static int cmp_name(const void *a, const void *b)
{
        const name_stat_t *x = a;
        const name_stat_t *y = b;

        if (x->times != y->times)
                return x->times > y->times ? -1 : 1;
        return strcmp(x->name, y->name);
}

static const char *const half_names[3] = {"1st half", "2nd half", "all"};

static void print_row(const char *what, const char *half, const count_t *c)
{
        printf("  %-10s %-9s %9zu %8.1f%% %8.1f%% %10zu %8.1f%% %8.1f%%\n",
               what, half, c->got, pct(c->got_ok[0], c->got),
               pct(c->got_ok[1], c->got), c->gold, pct(c->gold_hit[0], c->gold),
               pct(c->gold_hit[1], c->gold));
}

static void print_profile(const tally_t *t)
{
        int h;

        printf("Profile extraction. Match: 'text' = the extracted text occurs "
               "in a persona fact\nof the speaker (case-insensitive, whole "
               "words); 'words' = each of its content\nwords occurs there, "
               "crudely stemmed (\"bake cookies\" ~ \"I love baking "
               "cookies\").\nA negative fact supports nothing; a fact about "
               "someone else supports no role.\n");
        printf("  %-10s %-9s %9s %19s %10s %19s\n", "", "", "", "precision", "",
               "recall");
        printf("  %-10s %-9s %9s %9s %9s %10s %9s %9s\n", "field", "conversa.",
               "extracted", "text", "words", "gold facts", "text", "words");
        for (h = 0; h < 3; h++)
                print_row("role", half_names[h], &t[h].role);
        for (h = 0; h < 3; h++)
                print_row("interests", half_names[h], &t[h].interest);
        printf("Precision is against the persona only: a speaker's statement "
               "about themself that\ntheir persona does not list (\"I'm a "
               "student\") counts as wrong.\n");
}

static void print_names(const tally_t *t, name_stat_t *names, size_t name_cnt)
{
        size_t i;

        printf("\nNames: %zu extracted; %zu lines hold a placeholder "
               "(\"[User 1's name]\", \"User 1\"), %zu names taken from "
               "them (false)\n",
               t->names.extracted, t->names.lines_placeholder,
               t->names.false_placeholder);
        printf("  %zu of the names are also said by the other speaker\n",
               t->names.echoed);
        qsort(names, name_cnt, sizeof(*names), cmp_name);
        printf("  distinct names (times, echoed), most frequent first:\n   ");
        for (i = 0; i < name_cnt && i < NAMES_SHOWN; i++)
                printf(" %s (%zu,%zu)%s", names[i].name, names[i].times,
                       names[i].echoed, (i + 1) % 6 == 0 ? "\n   " : "");
        if (name_cnt > NAMES_SHOWN)
                printf(" … %zu more", name_cnt - NAMES_SHOWN);
        printf("\n  names never echoed:");
        for (i = 0; i < name_cnt; i++) {
                if (names[i].echoed == 0)
                        printf(" %s", names[i].name);
        }
        printf("\n");
}

static void print_summary(const tally_t *t)
{
        int h;

        printf("\nSummary (fold every %d messages, max_tokens %d, estimate "
               "tokenizer). Facts: the share\nof a persona fact's content "
               "words in the summary and in the conversation, and\ntheir "
               "ratio (kept of those present); tokens: summary vs "
               "conversation, on average.\n",
               FOLD_STEP, FOLD_TOKENS);
        printf("  %-9s %21s %21s %27s\n", "", "'user' side's facts",
               "other side's facts", "tokens");
        printf("  %-9s %6s %6s %7s %6s %6s %7s %7s %8s %8s\n", "conversa.",
               "summ.", "conv.", "ratio", "summ.", "conv.", "ratio", "summ.",
               "conv.", "share");
        for (h = 0; h < 3; h++) {
                const retention_t *u = &t[h].user;
                const retention_t *o = &t[h].other;
                double n = (double)(2 * t[h].convos);

                printf("  %-9s %5.1f%% %5.1f%% %6.1f%% %5.1f%% %5.1f%% "
                       "%6.1f%% %7.0f %8.0f %7.1f%%\n",
                       half_names[h], share(u->summary, (double)u->facts),
                       share(u->conversation, (double)u->facts),
                       share(u->summary, u->conversation),
                       share(o->summary, (double)o->facts),
                       share(o->conversation, (double)o->facts),
                       share(o->summary, o->conversation),
                       n > 0 ? u->summary_tokens / n : 0,
                       n > 0 ? u->convo_tokens / n : 0,
                       share(u->summary_tokens, u->convo_tokens));
        }
        printf("  'user' side's facts as the user voices them (their lines, "
               "and the question put to\n  them before they answer; the other "
               "side often says the user's persona facts\n  as its own in "
               "this data): kept of those voiced, %.1f%% / %.1f%% / %.1f%% "
               "(1st / 2nd / all)\n",
               share(t[0].user.voiced_kept, t[0].user.voiced),
               share(t[1].user.voiced_kept, t[1].user.voiced),
               share(t[2].user.voiced_kept, t[2].user.voiced));
        printf("  fold time: %.1f us per fold of up to %d messages (%zu "
               "folds)\n",
               (double)t[2].user.fold_us /
                   (double)(t[2].user.folds ? t[2].user.folds : 1),
               FOLD_STEP, t[2].user.folds);
        printf("  profile extraction: %.2f us per line\n",
               (double)t[2].profile_us / (double)(t[2].lines ? t[2].lines : 1));
}

static char *slurp(const char *path, size_t *len)
{
        FILE *f = fopen(path, "rb");
        cm_buf_t b;
        char chunk[65536];
        size_t n;

        if (!f)
                return NULL;
        cm_buf_init(&b);
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                cm_buf_add(&b, chunk, n);
        fclose(f);
        return cm_buf_detach(&b, len);
}

/* The number of conversation records after the header. */
static size_t count_records(const char *data, size_t len)
{
        const char *p = data;
        const char *end = data + len;
        strv_t fields;
        size_t n = 0;

        csv_record(&p, end, &fields); /* header */
        strv_free(&fields);
        while (csv_record(&p, end, &fields) > 0) {
                n += fields.cnt >= 3;
                strv_free(&fields);
        }
        return n;
}

int main(int argc, char **argv)
{
        const char *path = argc > 1 ? argv[1] : DEFAULT_PATH;
        const cm_tokenizer_t *tk = NULL;
        char errstr[256];
        char *data;
        size_t len = 0;
        const char *p;
        const char *end;
        strv_t fields;
        tally_t tally[3];
        name_stat_t *names = NULL;
        size_t name_cnt = 0;
        size_t records;
        size_t convos = 0;
        size_t i;

        verbose = getenv("EVAL_VERBOSE") != NULL;
        data = slurp(path, &len);
        if (!data) {
                printf("eval: '%s' is absent: nothing to evaluate (see "
                       "shared/data/synthetic-persona-chat/README.md)\n",
                       path);
                return 0;
        }
        if (cm_tokenizer_get("estimate", &tk, errstr, sizeof(errstr)) != 0) {
                fprintf(stderr, "eval: %s\n", errstr);
                free(data);
                return 1;
        }
        memset(tally, 0, sizeof(tally));
        records = count_records(data, len);
        p = data;
        end = data + len;
        csv_record(&p, end, &fields); /* header */
        strv_free(&fields);
        while (csv_record(&p, end, &fields) > 0) {
                convo_t cv;
                tally_t t;
                int64_t t0;

                if (fields.cnt < 3) {
                        strv_free(&fields);
                        continue;
                }
                memset(&t, 0, sizeof(t));
                convo_parse(&fields, &cv);
                t.convos = 1;
                t.lines = cv.line.cnt;
                t0 = cm_mono_us();
                eval_profile(&cv, &t.role, &t.interest, &t.names, &names,
                             &name_cnt);
                t.profile_us = cm_mono_us() - t0;
                eval_summary(&cv, 0, tk, &t.user, &t.other);
                eval_summary(&cv, 1, tk, &t.user, &t.other);
                tally_add(&tally[convos < (records + 1) / 2 ? 0 : 1], &t);
                tally_add(&tally[2], &t);
                convos++;
                convo_free(&cv);
                strv_free(&fields);
        }

        printf("Synthetic-Persona-Chat valid: %zu conversations, %zu lines; "
               "1st half: %zu conversations (rules are developed on it), "
               "2nd half: %zu (held out)\n\n",
               tally[2].convos, tally[2].lines, tally[0].convos,
               tally[1].convos);
        print_profile(tally);
        print_names(&tally[2], names, name_cnt);
        print_summary(tally);

        for (i = 0; i < name_cnt; i++)
                free(names[i].name);
        free(names);
        free(data);
        return 0;
}
