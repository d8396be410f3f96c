/*
 * Unit tests for the token budget with the real tokenizers (cl100k_base,
 * o200k_base), on random sessions:
 *
 * - test_budget_cl100k, test_budget_o200k: the context built for a random
 *   session and budget has exactly out.tokens tokens, recounted on the
 *   returned text, and no more than the budget; the newest user message is
 *   there verbatim, or cut behind the marker only when its line alone,
 *   under "Recent Messages:", is over the budget; the text is valid UTF-8.
 * - test_budget_recall_*: the same with earlier messages to recall
 *   (random queries, none, summary caps, prebuilt indexes): within the
 *   budget, exact, valid UTF-8, the text is its parts in the layout
 *   (recalled messages chronological, with their dates, only on top of
 *   every recent message), and the summary gives way to them only as far
 *   as they need (with the exact tokenizers, one sentence more would not
 *   fit).
 * - test_full_stored_*: the full history's tokens from per-line counts
 *   (cm_context_full_tokens_stored, what the context worker uses once older
 *   messages are folded) equal a recount of the full history's text.
 *
 * The tokenizer data is built by `make` (build/data); without it these
 * tests fail, they do not skip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "codec.h"
#include "context.h"
#include "recall.h"
#include "tokens.h"
#include "text.h"
#include "util.h"

#define MARKER "[\xe2\x80\xa6] "

static const cm_tokenizer_t *get(const char *name)
{
        const cm_tokenizer_t *tk = NULL;
        char errstr[512];

        if (cm_tokenizer_get(name, &tk, errstr, sizeof(errstr)) == -1)
                fail_msg("cannot load tokenizer '%s' (run make to build the "
                         "data): %s",
                         name, errstr);
        assert_non_null(tk);
        return tk;
}

static int count(const cm_tokenizer_t *tk, const cm_buf_t *b)
{
        return cm_tokenizer_count(tk, b->buf, b->len);
}

/* ---- random sessions ---- */

static uint64_t rng_state;

static uint32_t rng(void)
{
        /* xorshift64* */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return (uint32_t)((rng_state * 0x2545f4914f6cdd1dULL) >> 32);
}

/* A number in [lo, hi]. */
static size_t rng_range(size_t lo, size_t hi)
{
        return lo + rng() % (hi - lo + 1);
}

static const char *const words[] = {
    "the", "quick", "async", "await", "function", "Hello", "I'm", "don't",
    "we'll", "React", "Node.js", "example", "name", "remember", "token",
    "budget", "Sumit", "developer", "<|endoftext|>",
    "https://example.com/a?b=c", "{\"k\": [1, 2]}", "x", "I", "0", "42",
    "12345", "3.14",
    /* multibyte, CJK, emoji, other scripts, combining marks */
    "\xc3\xa9t\xc3\xa9", "se\xc3\xb1or", "\xc3\x9f",
    "\xe2\x82\xac"
    "5",
    "\xe2\x80\x94", "\xe2\x80\xa6", "\xe2\x80\x9cquoted\xe2\x80\x9d",
    "\xe4\xb8\xad\xe6\x96\x87", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
    "\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4", "\xf0\x9f\x98\x80",
    "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd",
    "\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb",
    "\xf0\x9f\x87\xab\xf0\x9f\x87\xb7", "\xe2\x9d\xa4\xef\xb8\x8f",
    "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7",
    "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d",
    "\xe0\xa4\xa8\xe0\xa4\xae\xe0\xa4\xb8\xe0\xa5\x8d\xe0\xa4\xa4\xe0\xa5\x87",
    "e\xcc\x81", "a\xcc\x8a\xcc\x81"};

static const char *const seps[] = {
    " ",  " ",       " ",    " ",  " ",    ", ",           ". ",
    "! ", "? ",      "... ", ": ", "\n",   "\n\n",         "\r\n",
    "  ", "\t",      " - ",  "/",  "``` ", "\xe3\x80\x80", "(",
    ") ", "\xc2\xa0"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Appends random text of about len bytes to b. */
static void random_text(cm_buf_t *b, size_t len)
{
        size_t end = b->len + len;

        while (b->len < end) {
                cm_buf_adds(b, words[rng() % COUNT(words)]);
                if (rng() % 4)
                        cm_buf_adds(b, seps[rng() % COUNT(seps)]);
        }
}

/* Message lengths: mostly short, some long, a few up to ~20 KB. */
static size_t random_len(void)
{
        uint32_t r = rng() % 100;

        if (r < 5)
                return 0;
        if (r < 75)
                return rng_range(1, 200);
        if (r < 95)
                return rng_range(200, 2000);
        return rng_range(2000, 20000);
}

typedef struct session {
        cm_profile_t profile;
        int with_profile;
        cm_buf_t summary;
        cm_buf_t *contents;
        cm_message_t *msgs;
        size_t cnt;
} session_t;

static char *pick(const char *const *list, size_t cnt)
{
        const char *s = list[rng() % cnt];

        return *s ? cm_strdup(s) : NULL;
}

static void session_random(session_t *s, size_t min_msgs, size_t max_msgs)
{
        static const char *const names[] = {
            "", "Sumit Pandya", "Jos\xc3\xa9 \xc3\x81lvarez",
            "\xe6\x9d\x8e\xe5\xb0\x8f\xe9\xbe\x8d",
            "Zo\xc3\xab \xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb"};
        static const char *const roles[] = {"", "full stack developer",
                                            "data scientist", "C++ dev.",
                                            "\xe5\xad\xa6\xe7\x94\x9f"};
        static const char *const interests[] = {"React",
                                                "Node.js",
                                                "C++",
                                                "Rust",
                                                "\xe5\x9b\xb4\xe6\xa3\x8b",
                                                "hiking \xf0\x9f\xa5\xbe",
                                                "jazz "};
        size_t i, n;

        memset(s, 0, sizeof(*s));
        s->with_profile = rng() % 4 != 0;
        s->profile.name = pick(names, COUNT(names));
        s->profile.role = pick(roles, COUNT(roles));
        n = rng() % 5;
        s->profile.interests = cm_calloc(n + 1, sizeof(char *));
        for (i = 0; i < n; i++)
                s->profile.interests[s->profile.interest_cnt++] =
                    cm_strdup(interests[rng() % COUNT(interests)]);

        cm_buf_init(&s->summary);
        if (rng() % 4) {
                n = rng_range(1, 30);
                for (i = 0; i < n; i++) {
                        random_text(&s->summary, rng_range(10, 150));
                        cm_buf_adds(&s->summary, rng() % 2 ? ". " : "? ");
                }
        }
        cm_buf_add(&s->summary, "", 0); /* allocated, NUL-terminated */

        s->cnt = rng_range(min_msgs, max_msgs);
        s->contents = cm_calloc(s->cnt, sizeof(*s->contents));
        s->msgs = cm_calloc(s->cnt, sizeof(*s->msgs));
        for (i = 0; i < s->cnt; i++) {
                uint32_t r = rng() % 10;

                cm_buf_init(&s->contents[i]);
                random_text(&s->contents[i], random_len());
                cm_buf_add(&s->contents[i], "", 0);
                s->msgs[i].role = r < 5   ? CM_ROLE_USER
                                  : r < 9 ? CM_ROLE_ASSISTANT
                                          : CM_ROLE_SYSTEM;
                s->msgs[i].content = s->contents[i].buf;
                s->msgs[i].content_len = s->contents[i].len;
                s->msgs[i].tokens = -1;
        }
}

static void session_release(session_t *s)
{
        size_t i;

        for (i = 0; i < s->cnt; i++)
                cm_buf_release(&s->contents[i]);
        free(s->contents);
        free(s->msgs);
        cm_buf_release(&s->summary);
        cm_profile_release(&s->profile);
}

/* ---- the budget ---- */

/* Index of the newest user message, else of the newest message. */
static size_t protected_index(const session_t *s)
{
        size_t i;

        for (i = s->cnt; i > 0; i--) {
                if (s->msgs[i - 1].role == CM_ROLE_USER)
                        return i - 1;
        }
        return s->cnt - 1;
}

/* Tokens of the smallest context that holds msg verbatim: its line alone
 * under "Recent Messages:". */
static int alone_tokens(const cm_tokenizer_t *tk, const cm_message_t *msg)
{
        cm_buf_t b;
        int n;

        cm_buf_init(&b);
        cm_buf_addf(&b, "Recent Messages:\n%s: ", cm_role_label(msg->role));
        cm_buf_add(&b, msg->content, msg->content_len);
        n = count(tk, &b);
        cm_buf_release(&b);
        return n;
}

/* Whether text holds msg's line, whole. */
static int has_line(const char *text, size_t text_len, const cm_message_t *msg)
{
        cm_buf_t line;
        const char *p = text, *end = text + text_len;
        int found = 0;

        cm_buf_init(&line);
        cm_buf_addf(&line, "\n%s: ", cm_role_label(msg->role));
        cm_buf_add(&line, msg->content, msg->content_len);
        while (!found) {
                const char *hit =
                    memmem(p, (size_t)(end - p), line.buf, line.len);

                if (!hit)
                        break;
                found = hit + line.len == end || hit[line.len] == '\n';
                p = hit + 1;
        }
        cm_buf_release(&line);
        return found;
}

static int is_suffix(const char *s, size_t len, const char *suffix,
                     size_t suffix_len)
{
        return len >= suffix_len &&
               memcmp(s + len - suffix_len, suffix, suffix_len) == 0;
}

/* Counters over a run, to show that every path was taken. */
typedef struct stats {
        int cases, verbatim, cut, truncated, summary_trimmed, profile_dropped;
} stats_t;

static void check_budget_case(const cm_tokenizer_t *tk, stats_t *st)
{
        session_t s;
        cm_context_in_t in;
        cm_context_out_t out;
        const cm_message_t *newest;
        size_t i;
        int kept = 0;

        session_random(&s, 5, 60);
        newest = &s.msgs[protected_index(&s)];
        memset(&in, 0, sizeof(in));
        in.profile = s.with_profile ? &s.profile : NULL;
        in.summary = s.summary.buf;
        in.msgs = s.msgs;
        in.msg_cnt = s.cnt;
        in.max_tokens = (int)rng_range(50, 4000);
        in.tk = tk;
        cm_context_build(&in, &out);

        /* Exact, within the budget, valid UTF-8. */
        assert_non_null(out.text);
        assert_int_equal(out.text_len, strlen(out.text));
        assert_int_equal(out.tokens,
                         cm_tokenizer_count(tk, out.text, out.text_len));
        assert_true(out.tokens <= in.max_tokens);
        assert_true(cm_utf8_valid(out.text, out.text_len));
        /* "Recent Messages:\nUser: […] " always fits 50 tokens. */
        assert_true(out.text_len > 0);

        /* The newest user message, verbatim, or cut only when its line
         * alone is over the budget. */
        for (i = 0; i < out.recent_cnt; i++) {
                const cm_message_t *r = &out.recent[i];

                if (r->role == newest->role &&
                    r->content_len == newest->content_len &&
                    !memcmp(r->content, newest->content, r->content_len))
                        kept = 1;
        }
        if (kept) {
                assert_true(has_line(out.text, out.text_len, newest));
                st->verbatim++;
        } else {
                const cm_message_t *r = &out.recent[0];
                size_t m = strlen(MARKER);

                if (alone_tokens(tk, newest) <= in.max_tokens)
                        fail_msg("the newest user message (%zu bytes) was "
                                 "cut though its line alone fits %d tokens",
                                 newest->content_len, in.max_tokens);
                assert_int_equal(out.recent_cnt, 1);
                assert_int_equal(out.profile_kept, 0);
                assert_string_equal(out.summary, "");
                assert_int_equal(r->role, newest->role);
                assert_true(r->content_len >= m);
                assert_memory_equal(r->content, MARKER, m);
                assert_true(is_suffix(newest->content, newest->content_len,
                                      r->content + m, r->content_len - m));
                assert_true(cm_utf8_valid(r->content, r->content_len));
                st->cut++;
        }

        st->cases++;
        st->truncated += out.truncated;
        st->summary_trimmed +=
            *out.summary && strlen(out.summary) < s.summary.len;
        st->profile_dropped += in.profile && !out.profile_kept;
        cm_context_out_release(&out);
        session_release(&s);
}

static void run_budget(const char *encoding, uint64_t seed, int cases)
{
        const cm_tokenizer_t *tk = get(encoding);
        stats_t st;
        int n;

        memset(&st, 0, sizeof(st));
        rng_state = seed;
        for (n = 0; n < cases; n++)
                check_budget_case(tk, &st);
        print_message("%s: %d sessions: %d newest verbatim, %d cut; "
                      "%d truncated, %d summaries trimmed, %d profiles "
                      "dropped\n",
                      encoding, st.cases, st.verbatim, st.cut, st.truncated,
                      st.summary_trimmed, st.profile_dropped);
        /* The random sessions reach every stage. */
        assert_true(st.cut > 0 && st.verbatim > 0);
        assert_true(st.truncated > 0 && st.truncated < st.cases);
        assert_true(st.profile_dropped > 0);
        assert_true(st.summary_trimmed > 0 || cases < 1000);
}

static void test_budget_cl100k(void **state)
{
        (void)state;
        run_budget("cl100k_base", 0x9e3779b97f4a7c15ULL, 1000);
}

static void test_budget_o200k(void **state)
{
        (void)state;
        run_budget("o200k_base", 0x2545f4914f6cdd1dULL, 300);
}

/* ---- the budget with recalled messages ---- */

/* The offsets where a trimmed summary may start (as context.c cuts it:
 * after '.', '!' or '?' and whitespace), into starts[], which has room for
 * len + 1; returns their number, starts[0] = 0. */
static size_t summary_starts(const char *s, size_t len, size_t *starts)
{
        size_t n = 0, i;

        starts[n++] = 0;
        for (i = 0; i + 1 < len; i++) {
                size_t j = i + 1;

                if (s[i] != '.' && s[i] != '!' && s[i] != '?')
                        continue;
                while (j < len && (s[j] == ' ' || s[j] == '\n' ||
                                   s[j] == '\t' || s[j] == '\r'))
                        j++;
                if (j == i + 1 || j == len)
                        continue;
                starts[n++] = j;
                i = j - 1;
        }
        return n;
}

/* The UTC calendar day of ts (ms), by gmtime_r: an independent check of
 * the context's own calendar. */
static void utc_day(int64_t ts, struct tm *tm)
{
        time_t t = (time_t)(ts / 1000 - (ts % 1000 < 0));

        gmtime_r(&t, tm);
}

/* Appends the line of a recalled message after prev (NULL: the first),
 * its date first when known and not the day of prev. */
static void recalled_line(cm_buf_t *b, const cm_message_t *m,
                          const cm_message_t *prev)
{
        if (m->ts) {
                struct tm tm, ptm;
                int same = 0;

                utc_day(m->ts, &tm);
                if (prev && prev->ts) {
                        utc_day(prev->ts, &ptm);
                        same = tm.tm_year == ptm.tm_year &&
                               tm.tm_yday == ptm.tm_yday;
                }
                if (!same)
                        cm_buf_addf(b, "[%04d-%02d-%02d] ", tm.tm_year + 1900,
                                    tm.tm_mon + 1, tm.tm_mday);
        }
        cm_buf_addf(b, "%s: ", cm_role_label(m->role));
        cm_buf_add(b, m->content, m->content_len);
}

/*
 * The text out should be, from its parts: the context built without
 * candidates and with out's summary (a budget that cuts nothing), with
 * the section of out's recalled messages before "Recent Messages:".
 * summary replaces out's summary when not NULL.
 */
static void expected_text(const cm_context_in_t *in,
                          const cm_context_out_t *out, const char *summary,
                          cm_buf_t *b)
{
        cm_context_in_t bare = *in;
        cm_context_out_t o;
        const char *recent;
        size_t i, head;

        bare.earlier = NULL;
        bare.earlier_cnt = 0;
        bare.index = NULL;
        bare.summary = summary ? summary : out->summary;
        bare.max_tokens = 1 << 30;
        cm_context_build(&bare, &o);
        recent = in->msg_cnt ? strstr(o.text, "Recent Messages:") : NULL;
        head = recent ? (size_t)(recent - o.text) : o.text_len;
        cm_buf_reset(b);
        cm_buf_add(b, o.text, head);
        if (out->recalled_cnt) {
                if (!recent && head)
                        cm_buf_adds(b, "\n\n");
                cm_buf_adds(b, "Relevant Earlier Messages:");
                for (i = 0; i < out->recalled_cnt; i++) {
                        cm_buf_adds(b, "\n");
                        recalled_line(b, &out->recalled[i],
                                      i ? &out->recalled[i - 1] : NULL);
                }
                if (recent)
                        cm_buf_adds(b, "\n\n");
        }
        cm_buf_add(b, o.text + head, o.text_len - head);
        cm_context_out_release(&o);
}

typedef struct recall_stats {
        int cases, recalled, recency, trimmed, units;
} recall_stats_t;

static void check_recall_case(const cm_tokenizer_t *tk, int exact,
                              recall_stats_t *st)
{
        session_t s;
        cm_context_in_t in;
        cm_context_out_t out, bare;
        cm_recall_index_t *ix = NULL;
        cm_buf_t query, expect;
        size_t recent, i;

        session_random(&s, 2, 80);
        recent = rng_range(1, s.cnt - 1 < 6 ? s.cnt - 1 : 6);
        for (i = 0; i < s.cnt; i++) {
                s.msgs[i].seq = (int64_t)i + 1;
                /* Dates from 1969 to 2033, some unknown, often the
                 * day of the message before (one date for the run). */
                if (rng() % 4 == 0)
                        s.msgs[i].ts = 0;
                else if (i > 0 && s.msgs[i - 1].ts && rng() % 2)
                        s.msgs[i].ts =
                            s.msgs[i - 1].ts + (int64_t)(rng() % 3600000);
                else
                        s.msgs[i].ts = (int64_t)rng() * 470 - 100000000000LL;
        }
        cm_buf_init(&query);
        cm_buf_init(&expect);
        random_text(&query, rng_range(1, 80));

        memset(&in, 0, sizeof(in));
        in.profile = s.with_profile ? &s.profile : NULL;
        in.summary = s.summary.buf;
        in.earlier = s.msgs;
        in.earlier_cnt = s.cnt - recent;
        in.msgs = s.msgs + in.earlier_cnt;
        in.msg_cnt = recent;
        in.max_tokens = (int)rng_range(50, 4000);
        in.tk = tk;
        in.query = rng() % 5 ? query.buf : NULL;
        in.summary_max_tokens =
            rng() % 3 ? (int)rng_range(1, (size_t)in.max_tokens / 2) : 0;
        if (rng() % 2) {
                ix = cm_recall_index_new(in.earlier, in.earlier_cnt);
                in.index = ix;
        }
        cm_context_build(&in, &out);

        /* Exact, within the budget, valid UTF-8. */
        assert_int_equal(out.text_len, strlen(out.text));
        assert_int_equal(out.tokens,
                         cm_tokenizer_count(tk, out.text, out.text_len));
        assert_true(out.tokens <= in.max_tokens);
        assert_true(cm_utf8_valid(out.text, out.text_len));

        /* The text is its parts, in the layout; recalled messages are
         * earlier ones, chronological, whole. */
        for (i = 0; i < out.recalled_cnt; i++) {
                const cm_message_t *r = &out.recalled[i];
                const cm_message_t *src = &s.msgs[r->seq - 1];

                assert_true(r->seq >= 1 && (size_t)r->seq <= in.earlier_cnt);
                assert_true(i == 0 || r->seq > out.recalled[i - 1].seq);
                assert_int_equal(r->content_len, src->content_len);
                assert_memory_equal(r->content, src->content, r->content_len);
                assert_int_equal(r->ts, src->ts);
        }
        if (out.recalled_cnt) {
                /* Only on top of every recent message. */
                assert_int_equal(out.recent_cnt, recent);
                assert_int_equal(out.profile_kept,
                                 in.profile &&
                                     (in.profile->name || in.profile->role ||
                                      in.profile->interest_cnt));
                expected_text(&in, &out, NULL, &expect);
                assert_int_equal(out.text_len, expect.len);
                assert_memory_equal(out.text, expect.buf, expect.len);
        }

        /* The summary gives way to recall only down to its cap, and only
         * as far as needed: one sentence more would not fit. */
        in.earlier_cnt = 0;
        cm_context_build(&in, &bare);
        assert_true(strlen(out.summary) <= strlen(bare.summary));
        if (strlen(out.summary) < strlen(bare.summary)) {
                size_t *starts =
                    cm_malloc((s.summary.len + 1) * sizeof(*starts));
                size_t n = summary_starts(s.summary.buf, s.summary.len, starts);
                size_t kept = s.summary.len - strlen(out.summary), k;

                assert_true(out.recalled_cnt > 0);
                assert_true(in.query && in.summary_max_tokens > 0);
                assert_int_equal(out.truncated, 1);
                for (k = 0; k < n && starts[k] < kept; k++)
                        ;
                assert_true(k > 0);
                if (exact && recent) {
                        expected_text(&in, &out, s.summary.buf + starts[k - 1],
                                      &expect);
                        if (count(tk, &expect) <= in.max_tokens)
                                fail_msg("%s: the summary was trimmed to %zu "
                                         "bytes where %zu fit",
                                         cm_tokenizer_name(tk),
                                         strlen(out.summary),
                                         s.summary.len - starts[k - 1]);
                }
                st->trimmed++;
                free(starts);
        }
        st->cases++;
        st->recalled += out.recalled_cnt > 0;
        st->recency += out.recalled_cnt > 0 && !in.query;
        st->units += (int)out.recalled_cnt;
        cm_context_out_release(&bare);
        cm_context_out_release(&out);
        cm_recall_index_destroy(ix);
        cm_buf_release(&query);
        cm_buf_release(&expect);
        session_release(&s);
}

static void run_recall(const char *encoding, uint64_t seed, int cases)
{
        const cm_tokenizer_t *tk = get(encoding);
        recall_stats_t st;
        int n;

        memset(&st, 0, sizeof(st));
        rng_state = seed;
        for (n = 0; n < cases; n++)
                check_recall_case(tk, strcmp(encoding, "estimate") != 0, &st);
        print_message("%s: %d sessions: %d with recalled messages (%d "
                      "without a query), %d messages in all; %d summaries "
                      "trimmed for them\n",
                      encoding, st.cases, st.recalled, st.recency, st.units,
                      st.trimmed);
        /* The random sessions reach every path. */
        assert_true(st.recalled > cases / 10);
        assert_true(st.recency > 0);
        assert_true(st.trimmed > 0);
}

static void test_budget_recall_cl100k(void **state)
{
        (void)state;
        run_recall("cl100k_base", 0x94d049bb133111ebULL, 600);
}

static void test_budget_recall_o200k(void **state)
{
        (void)state;
        run_recall("o200k_base", 0xbf58476d1ce4e5b9ULL, 200);
}

static void test_budget_recall_estimate(void **state)
{
        (void)state;
        run_recall("estimate", 0xd6e8feb86659fd93ULL, 300);
}

/* ---- full history from stored line tokens ---- */

/* Ends and starts of lines that could make a pre-token span a line
 * break: whitespace, punctuation, newlines, digits, letters, marks. */
static const char *const edges[] = {"",
                                    " ",
                                    "  ",
                                    "\t",
                                    "\n",
                                    "\n\n",
                                    " \n",
                                    "\r",
                                    "\r\n",
                                    "\n ",
                                    ".",
                                    "...",
                                    "?!",
                                    ":",
                                    "/",
                                    "//",
                                    ".\n",
                                    "'s",
                                    "'",
                                    "123",
                                    "1234",
                                    "x",
                                    "\xc3\xa9",
                                    "\xe4\xb8\xad",
                                    "\xf0\x9f\x98\x80",
                                    "e\xcc\x81",
                                    "\xcc\x81",
                                    "\xc2\xa0",
                                    "\xe3\x80\x80",
                                    "\xe2\x80\xa8",
                                    "\xc2\x85",
                                    "\x0b",
                                    "\x0c",
                                    "-",
                                    "**",
                                    "```",
                                    "}\n",
                                    "<|endoftext|>",
                                    " .",
                                    ". ",
                                    ".  \n \n"};

static void edge_content(cm_buf_t *b)
{
        cm_buf_adds(b, edges[rng() % COUNT(edges)]);
        if (rng() % 3)
                random_text(b, rng_range(0, 60));
        cm_buf_adds(b, edges[rng() % COUNT(edges)]);
        cm_buf_add(b, "", 0);
}

/* The full history's tokens from the stored counts, as the context worker
 * computes them, against a recount of its text. */
static void check_full_stored(const cm_tokenizer_t *tk, int exact, size_t *off)
{
        session_t s;
        const cm_profile_t *profile;
        int64_t sum = 0;
        size_t i;
        int full, stored, guess, folded;
        int64_t brk;

        session_random(&s, 1, 30);
        profile = s.with_profile ? &s.profile : NULL;
        for (i = 0; i < s.cnt; i++) {
                cm_buf_reset(&s.contents[i]);
                if (rng() % 4)
                        edge_content(&s.contents[i]);
                else
                        random_text(&s.contents[i], random_len());
                cm_buf_add(&s.contents[i], "", 0);
                s.msgs[i].content = s.contents[i].buf;
                s.msgs[i].content_len = s.contents[i].len;
                s.msgs[i].tokens = cm_context_line_tokens(&s.msgs[i], tk);
                sum += s.msgs[i].tokens;
        }

        full = cm_context_full_tokens(profile, s.msgs, s.cnt, tk);
        stored = cm_context_full_tokens_stored(profile, sum, &s.msgs[s.cnt - 1],
                                               NULL, tk);
        guess = cm_context_full_tokens_stored(profile, sum, NULL, NULL, tk);
        /* The newest message folded away: its break, stored at ingest. */
        brk = cm_context_break_tokens(&s.msgs[s.cnt - 1], tk);
        folded = cm_context_full_tokens_stored(profile, sum, NULL, &brk, tk);
        if (exact) {
                if (stored != full)
                        fail_msg("%s: %zu messages: %d from stored line "
                                 "tokens, %d recounted",
                                 cm_tokenizer_name(tk), s.cnt, stored, full);
                if (folded != full)
                        fail_msg("%s: %zu messages: %d with the newest "
                                 "folded, %d recounted",
                                 cm_tokenizer_name(tk), s.cnt, folded, full);
                /* Without even its stored break (older data), the break is
                 * taken to cost nothing: off by one at most. */
                assert_true(guess >= full - 1 && guess <= full + 1);
                off[guess - full + 1]++;
                /* Its stored tokens unknown: counted again. */
                s.msgs[s.cnt - 1].tokens = -1;
                assert_int_equal(
                    cm_context_full_tokens_stored(profile, sum,
                                                  &s.msgs[s.cnt - 1], NULL, tk),
                    full);
        } else {
                /* "estimate": never below, at most one per line above. */
                assert_true(stored >= full);
                assert_true(stored <= full + (int)s.cnt);
        }
        session_release(&s);
}

static void run_full_stored(const char *encoding, int exact)
{
        const cm_tokenizer_t *tk = get(encoding);
        size_t off[3] = {0};
        int n;

        rng_state = 0x5851f42d4c957f2dULL;
        for (n = 0; n < 2000; n++)
                check_full_stored(tk, exact, off);
        if (exact)
                print_message("%s: 2000 histories exact from stored line "
                              "tokens; with the newest not at hand, off by "
                              "-1: %zu, 0: %zu, +1: %zu\n",
                              encoding, off[0], off[1], off[2]);
}

static void test_full_stored_cl100k(void **state)
{
        (void)state;
        run_full_stored("cl100k_base", 1);
}

static void test_full_stored_o200k(void **state)
{
        (void)state;
        run_full_stored("o200k_base", 1);
}

static void test_full_stored_estimate(void **state)
{
        (void)state;
        run_full_stored("estimate", 0);
}

/* A history without messages is the profile lines alone; one without a
 * profile starts at "Recent Messages:". */
static void test_full_stored_edges(void **state)
{
        const cm_tokenizer_t *tk = get("cl100k_base");
        char *interests[] = {"C++"};
        cm_profile_t profile = {
            .name = "Sumit Pandya", .interests = interests, .interest_cnt = 1};
        cm_message_t m;
        cm_buf_t b;

        (void)state;
        memset(&m, 0, sizeof(m));
        m.role = CM_ROLE_USER;
        m.content = "Do you remember my name?";
        m.content_len = strlen(m.content);
        m.tokens = cm_context_line_tokens(&m, tk);

        cm_buf_init(&b);
        cm_buf_adds(&b, "User: Do you remember my name?\n");
        assert_int_equal(m.tokens, count(tk, &b));
        cm_buf_reset(&b);
        cm_buf_adds(&b, "User Profile: Sumit Pandya\nInterests: C++");
        assert_int_equal(
            cm_context_full_tokens_stored(&profile, 0, NULL, NULL, tk),
            count(tk, &b));
        cm_buf_adds(&b, "\n\nRecent Messages:\nUser: Do you remember my "
                        "name?");
        assert_int_equal(
            cm_context_full_tokens_stored(&profile, m.tokens, &m, NULL, tk),
            count(tk, &b));
        cm_buf_reset(&b);
        cm_buf_adds(&b, "Recent Messages:\nUser: Do you remember my name?");
        assert_int_equal(
            cm_context_full_tokens_stored(NULL, m.tokens, &m, NULL, tk),
            count(tk, &b));
        cm_buf_release(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_budget_cl100k),
            cmocka_unit_test(test_budget_o200k),
            cmocka_unit_test(test_budget_recall_cl100k),
            cmocka_unit_test(test_budget_recall_o200k),
            cmocka_unit_test(test_budget_recall_estimate),
            cmocka_unit_test(test_full_stored_cl100k),
            cmocka_unit_test(test_full_stored_o200k),
            cmocka_unit_test(test_full_stored_estimate),
            cmocka_unit_test(test_full_stored_edges),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
