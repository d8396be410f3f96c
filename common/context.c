/*
 * context: the seed's layout inside a token budget.
 *
 * The builder keeps a plan (which parts are in the text and how much of
 * them), renders the whole text from it and counts it with the tokenizer.
 * Token counts of BPE tokenizers are not additive, so every decision is
 * taken on the count of the exact text; each stage looks for the least
 * cutting that fits with a binary search, so that a long summary, a long
 * history or a 64 KiB message costs O(n log n), not O(n^2). A stage only
 * ever returns a plan whose text it has counted as fitting, so the result
 * fits even if a tokenizer is not monotonic.
 *
 * Recall comes last, on a plan that fits with every recent message. It
 * cannot afford a count of the whole text per candidate, and needs none:
 * in cl100k_base and o200k_base no pre-token spans the start of a line
 * that does not start with whitespace (see context.h on
 * cm_context_line_tokens: the pieces that hold a '\n' end with their line
 * breaks or hold only whitespace), so inserting the section before
 * "Recent Messages:" adds exactly the tokens of its pieces cut after each
 * line break: "Relevant Earlier Messages:\n", each line with its "\n",
 * the last one with "\n\n". Each candidate line is counted once, the
 * summary's suffixes with their "\n\n" (a binary search, as in stage
 * (a)), and the final text once. That total is exact for those tokenizers
 * and an overestimate for "estimate"; when the final count is over all
 * the same (a tokenizer for which the pieces do not add up), the
 * lowest-ranked units go until it fits, and without any the plan is the
 * one that fitted before recall.
 */
#include "context.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "util.h"

#define MARKER     "[\xe2\x80\xa6] " /* "[…] " */
#define MARKER_LEN (sizeof(MARKER) - 1)

#define RECALL_HEAD "Relevant Earlier Messages:"
/* Units that do not fit skipped in a row before recall stops trying. */
#define RECALL_MAX_SKIPS 8
/* No token of cl100k_base or o200k_base has more bytes ("estimate": 16):
 * a line of more than TOKEN_MAX_BYTES * n bytes has more than n tokens. */
#define TOKEN_MAX_BYTES 128

typedef struct plan {
        const cm_context_in_t *in;
        const char *profile; /* the profile lines, "" when none */
        size_t profile_len;
        int profile_on;
        const char *summary;  /* the kept suffix of in->summary */
        size_t summary_len;   /* 0: no summary line */
        size_t protect;       /* index of the message never dropped */
        size_t dropped;       /* other messages dropped, oldest first */
        int cut;              /* 1: msgs[protect] cut behind the marker */
        size_t cut_off;       /* ... keeping content[cut_off..] */
        const size_t *recall; /* in->earlier[] in the text, chronological */
        size_t recall_cnt;
        cm_buf_t text; /* the text of the plan, once rendered */
        int tokens;    /* and its tokens */
} plan_t;

static int nonempty(const char *s)
{
        return s && *s;
}

/* Appends the profile lines (User Profile, Interests) of profile to b. */
static void profile_render(const cm_profile_t *profile, cm_buf_t *b)
{
        const char *sep = "";
        size_t i;

        if (!profile)
                return;
        if (nonempty(profile->name) || nonempty(profile->role)) {
                cm_buf_adds(b, "User Profile: ");
                if (nonempty(profile->name)) {
                        cm_buf_adds(b, profile->name);
                        sep = ", ";
                }
                if (nonempty(profile->role)) {
                        cm_buf_adds(b, sep);
                        cm_buf_adds(b, profile->role);
                }
        }
        sep = b->len ? "\nInterests: " : "Interests: ";
        for (i = 0; i < profile->interest_cnt; i++) {
                if (!nonempty(profile->interests[i]))
                        continue;
                cm_buf_adds(b, sep);
                cm_buf_adds(b, profile->interests[i]);
                sep = ", ";
        }
}

/* Appends "<Role>: <content>" to b. */
static void line_render(const cm_message_t *msg, cm_buf_t *b)
{
        cm_buf_adds(b, cm_role_label(msg->role));
        cm_buf_adds(b, ": ");
        cm_buf_add(b, msg->content, msg->content_len);
}

/* Appends "[YYYY-MM-DD] ", the UTC date of ts (cm_recall_date), to b. */
static void date_render(int64_t ts, cm_buf_t *b)
{
        int64_t y;
        int m, d;
        char out[16];

        cm_recall_date(ts, &y, &m, &d);
        if (y < 0 || y > 9999) {
                cm_buf_addf(b, "[%04lld-%02d-%02d] ", (long long)y, m, d);
                return;
        }
        /* The common case, without printf: one per recalled line, twice
         * per build. */
        memcpy(out, "[0000-00-00] ", 13);
        out[1] = (char)('0' + y / 1000);
        out[2] = (char)('0' + y / 100 % 10);
        out[3] = (char)('0' + y / 10 % 10);
        out[4] = (char)('0' + y % 10);
        out[6] = (char)('0' + m / 10);
        out[7] = (char)('0' + m % 10);
        out[9] = (char)('0' + d / 10);
        out[10] = (char)('0' + d % 10);
        cm_buf_add(b, out, 13);
}

/* The UTC day of ts (ms), for comparing dates. */
static int64_t day_of(int64_t ts)
{
        int64_t day = ts / 86400000;

        return ts < 0 && ts % 86400000 ? day - 1 : day;
}

/* Whether the line of msg shows its date after the line of prev (NULL:
 * msg's is the first line of the section): when its ts is known and its
 * day is not that of prev. A run of messages of one day shows the date
 * once, as a header of the run, which saves its 8 tokens on every line
 * but the first. */
static int dated(const cm_message_t *msg, const cm_message_t *prev)
{
        if (!msg->ts)
                return 0;
        return !prev || !prev->ts || day_of(prev->ts) != day_of(msg->ts);
}

/* Appends the line of a recalled message after that of prev (NULL: none):
 * its date when dated(), then as line_render(). */
static void recalled_render(const cm_message_t *msg, const cm_message_t *prev,
                            cm_buf_t *b)
{
        if (dated(msg, prev))
                date_render(msg->ts, b);
        line_render(msg, b);
}

/* Whether msgs[i] is in the text of the plan. The messages other than
 * the protected one are dropped oldest first. */
static int plan_keeps(const plan_t *pl, size_t i)
{
        size_t rank;

        if (i == pl->protect)
                return 1;
        rank = i < pl->protect ? i : i - 1;
        return rank >= pl->dropped;
}

/* Renders the text of the plan into pl->text and counts it. Returns 1 if
 * it fits the budget. */
static int plan_fits(plan_t *pl)
{
        const cm_context_in_t *in = pl->in;
        cm_buf_t *b = &pl->text;
        size_t i;

        cm_buf_reset(b);
        if (pl->profile_on)
                cm_buf_add(b, pl->profile, pl->profile_len);
        if (pl->summary_len) {
                if (b->len)
                        cm_buf_adds(b, "\n");
                cm_buf_adds(b, "Summary: ");
                cm_buf_add(b, pl->summary, pl->summary_len);
        }
        if (pl->recall_cnt) {
                if (b->len)
                        cm_buf_adds(b, "\n\n");
                cm_buf_adds(b, RECALL_HEAD);
        }
        for (i = 0; i < pl->recall_cnt; i++) {
                cm_buf_adds(b, "\n");
                recalled_render(&in->earlier[pl->recall[i]],
                                i ? &in->earlier[pl->recall[i - 1]] : NULL, b);
        }
        if (in->msg_cnt) {
                if (b->len)
                        cm_buf_adds(b, "\n\n");
                cm_buf_adds(b, "Recent Messages:");
        }
        for (i = 0; i < in->msg_cnt; i++) {
                const cm_message_t *msg = &in->msgs[i];

                if (!plan_keeps(pl, i))
                        continue;
                cm_buf_adds(b, "\n");
                cm_buf_adds(b, cm_role_label(msg->role));
                cm_buf_adds(b, ": ");
                if (pl->cut && i == pl->protect) {
                        cm_buf_add(b, MARKER, MARKER_LEN);
                        cm_buf_add(b, msg->content + pl->cut_off,
                                   msg->content_len - pl->cut_off);
                } else {
                        cm_buf_add(b, msg->content, msg->content_len);
                }
        }
        pl->tokens = cm_tokenizer_count(in->tk, b->buf, b->len);
        return pl->tokens <= in->max_tokens;
}

/*
 * Stage (a): keeps the longest suffix of the summary that starts after a
 * sentence end ('.', '!' or '?' followed by whitespace) and fits, or drops
 * the summary. The full summary is known not to fit.
 */
/* Returns a heap array (free() it) of the offsets in s[0..len) where the
 * summary may start when trimmed, and sets *cnt: starts[0] is 0, the full
 * summary, then each later sentence start (after '.', '!' or '?' and
 * whitespace). */
static size_t *sentence_starts(const char *s, size_t len, size_t *cnt)
{
        size_t *starts = cm_malloc(sizeof(*starts) * (len + 1));
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
        *cnt = n;
        return starts;
}

static int trim_summary(plan_t *pl)
{
        const char *s = pl->summary;
        size_t len = pl->summary_len;
        size_t cnt;
        size_t *starts = sentence_starts(s, len, &cnt);
        size_t lo, hi;
        int fits = 0;

        /* Binary search: starts[lo] does not fit, starts[hi] does. */
        lo = 0;
        hi = cnt - 1;
        if (hi > 0) {
                pl->summary = s + starts[hi];
                pl->summary_len = len - starts[hi];
                fits = plan_fits(pl);
        }
        while (fits && hi - lo > 1) {
                size_t mid = lo + (hi - lo) / 2;

                pl->summary = s + starts[mid];
                pl->summary_len = len - starts[mid];
                if (plan_fits(pl))
                        hi = mid;
                else
                        lo = mid;
        }
        if (fits) {
                pl->summary = s + starts[hi];
                pl->summary_len = len - starts[hi];
        } else {
                pl->summary = "";
                pl->summary_len = 0;
        }
        free(starts);
        return plan_fits(pl);
}

/*
 * Stage (b): drops the fewest of the other messages, oldest first, so that
 * the text fits; when even dropping all of them does not do, leaves only
 * the protected message. No message dropped is known not to fit.
 */
static int drop_messages(plan_t *pl)
{
        size_t lo = 0, hi = pl->in->msg_cnt - 1;

        if (hi == 0)
                return 0;
        pl->dropped = hi;
        if (!plan_fits(pl))
                return 0;
        while (hi - lo > 1) {
                size_t mid = lo + (hi - lo) / 2;

                pl->dropped = mid;
                if (plan_fits(pl))
                        hi = mid;
                else
                        lo = mid;
        }
        pl->dropped = hi;
        return plan_fits(pl);
}

/*
 * Stage (d): keeps the longest suffix of the protected message, starting
 * on a character, that fits behind the marker. Returns 0 when not even the
 * marker alone fits.
 */
static int cut_message(plan_t *pl)
{
        const cm_message_t *msg = &pl->in->msgs[pl->protect];
        const char *s = msg->content;
        size_t lo = 0, hi = msg->content_len;

        if (hi == 0)
                return 0;
        pl->cut = 1;
        pl->cut_off = hi;
        if (!plan_fits(pl))
                return 0;
        /* content[lo..] does not fit (lo = 0 without the marker did not),
         * content[hi..] does; both lo and hi start a character. */
        for (;;) {
                size_t mid = lo + (hi - lo) / 2;
                size_t off = cm_utf8_ceil(s, hi, mid);

                if (off == hi || off == lo)
                        off = cm_utf8_floor(s, mid);
                if (off <= lo || off >= hi)
                        break;
                pl->cut_off = off;
                if (plan_fits(pl))
                        hi = off;
                else
                        lo = off;
        }
        pl->cut_off = hi;
        return plan_fits(pl);
}

/* Copies msg into *dst; with cut, its content is the marker and
 * content[cut_off..]. */
static void message_copy(cm_message_t *dst, const cm_message_t *msg, int cut,
                         size_t cut_off)
{
        cm_buf_t content;

        *dst = *msg;
        dst->event_id = cm_strdup(msg->event_id);
        if (!cut) {
                dst->content = cm_strndup(msg->content, msg->content_len);
                return;
        }
        cm_buf_init(&content);
        cm_buf_add(&content, MARKER, MARKER_LEN);
        cm_buf_add(&content, msg->content + cut_off,
                   msg->content_len - cut_off);
        dst->content = cm_buf_detach(&content, &dst->content_len);
        dst->tokens = -1;
}

/* Index of the newest user message, else of the newest message. */
static size_t protected_index(const cm_message_t *msgs, size_t cnt)
{
        size_t i;

        for (i = cnt; i > 0; i--) {
                if (msgs[i - 1].role == CM_ROLE_USER)
                        return i - 1;
        }
        return cnt - 1;
}

/*
 * The stages (a) to (d), in order, until the plan fits; sets *truncated
 * when one of them cut. Returns 0 when not even the marker fits: the plan
 * is then the empty text.
 */
static int base_fit(plan_t *pl, int *truncated)
{
        const cm_context_in_t *in = pl->in;

        if (plan_fits(pl))
                return 1;
        *truncated = 1;
        if (pl->summary_len && trim_summary(pl))
                return 1;
        if (in->msg_cnt && drop_messages(pl))
                return 1;
        if (pl->profile_on) {
                pl->profile_on = 0;
                if (plan_fits(pl))
                        return 1;
        }
        if (in->msg_cnt && cut_message(pl))
                return 1;
        /* Not even the marker fits: the best text that does is "". */
        pl->profile_on = 0;
        pl->summary_len = 0;
        cm_buf_reset(&pl->text);
        pl->tokens = cm_tokenizer_count(in->tk, "", 0);
        return 0;
}

/* ---- recall ---- */

/* The state of the recall stage. Costs are tokens. */
typedef struct recall {
        plan_t *pl;
        const cm_message_t *cand; /* in->earlier */
        size_t cnt;
        int *line;               /* per candidate: its line with "\n", dated;
                                    -1: not counted yet */
        int *plain;              /* and without its date; -1: not counted */
        uint8_t *taken;          /* per candidate: in the text */
        cm_recall_unit_t *units; /* the units taken, in rank order */
        size_t unit_cnt;
        size_t *chrono; /* the candidates taken, chronological */
        int used;       /* what the units taken cost, lines with "\n" */
        cm_buf_t scratch;
} recall_t;

static int count_buf(const plan_t *pl, const cm_buf_t *b)
{
        return cm_tokenizer_count(pl->in->tk, b->buf, b->len);
}

/* Tokens of candidate i's line after that of candidate prev (NO_PREV:
 * the first), followed by tail ("\n" or "\n\n"; "" at the end of the
 * text). */
#define NO_PREV SIZE_MAX
static int line_tokens(recall_t *rc, size_t i, size_t prev, const char *tail)
{
        cm_buf_reset(&rc->scratch);
        recalled_render(&rc->cand[i], prev == NO_PREV ? NULL : &rc->cand[prev],
                        &rc->scratch);
        cm_buf_adds(&rc->scratch, tail);
        return count_buf(rc->pl, &rc->scratch);
}

/* The cost of candidate i's line with "\n" after that of prev (NO_PREV:
 * the first), counted once for each of its two forms. Lines are counted
 * apart: after a line break no pre-token of cl100k_base or o200k_base
 * spans two lines (context.h). */
static int line_cost(recall_t *rc, size_t i, size_t prev)
{
        int with_date =
            dated(&rc->cand[i], prev == NO_PREV ? NULL : &rc->cand[prev]);
        int *slot = with_date ? &rc->line[i] : &rc->plain[i];

        if (*slot < 0)
                *slot = line_tokens(rc, i, with_date ? NO_PREV : prev, "\n");
        return *slot;
}

/* The candidate taken before i (NO_PREV: none), and after i (NO_PREV). */
static size_t taken_before(const recall_t *rc, size_t i)
{
        while (i > 0)
                if (rc->taken[--i])
                        return i;
        return NO_PREV;
}

static size_t taken_after(const recall_t *rc, size_t i)
{
        while (++i < rc->cnt)
                if (rc->taken[i])
                        return i;
        return NO_PREV;
}

/* What taking unit u adds to the cost of the section's lines (its own
 * lines, and the date the line after it may no longer show), or INT_MAX
 * when it is sure to be over left: a line of more than TOKEN_MAX_BYTES
 * bytes a token is not even counted. */
static int unit_cost(recall_t *rc, const cm_recall_unit_t *u, int left)
{
        size_t prev = taken_before(rc, u->first), next, i;
        int64_t sum = 0;

        for (i = u->first; i <= u->last; i++) {
                if (left <= 0 ||
                    rc->cand[i].content_len / TOKEN_MAX_BYTES >= (size_t)left)
                        return INT_MAX;
                sum += line_cost(rc, i, i == u->first ? prev : i - 1);
        }
        next = taken_after(rc, u->last);
        if (next != NO_PREV)
                sum += line_cost(rc, next, u->last) - line_cost(rc, next, prev);
        return sum > INT_MAX ? INT_MAX : (int)sum;
}

/*
 * Takes units in order while they fit room: those of search, or with
 * search NULL each candidate alone, newest first. A unit of several
 * messages that does not fit is tried as its last message alone, unless
 * that is short; a unit that does not fit even so is skipped;
 * RECALL_MAX_SKIPS in a row end the search. Returns how many units were
 * tried.
 */
static size_t recall_take(recall_t *rc, cm_recall_search_t *search, int room)
{
        const cm_context_in_t *in = rc->pl->in;
        size_t k, skips = 0, i;
        double floor = -1;

        for (k = 0; skips < RECALL_MAX_SKIPS; k++) {
                cm_recall_unit_t u;
                int cost;

                if (search) {
                        if (!cm_recall_search_next(search, &u))
                                break;
                        /* Far below the best hit: more tokens, little
                         * more held. */
                        if (floor < 0)
                                floor = u.score * in->min_score_share / 100;
                        if (u.score < floor)
                                break;
                } else {
                        if (k == rc->cnt)
                                break;
                        memset(&u, 0, sizeof(u));
                        u.hit = u.first = u.last = rc->cnt - 1 - k;
                }
                cost = unit_cost(rc, &u, room - rc->used);
                if (cost > room - rc->used && u.first < u.last &&
                    rc->cand[u.last].content_len > CM_RECALL_SHORT_BYTES) {
                        /* Its last message alone, when that says enough
                         * on its own (not a short "Yes, Paris!"): the
                         * answer, what a question and its answer are
                         * recalled for. */
                        u.first = u.hit = u.last;
                        cost = unit_cost(rc, &u, room - rc->used);
                }
                if (cost > room - rc->used) {
                        skips++;
                        continue;
                }
                skips = 0;
                rc->used += cost;
                rc->units[rc->unit_cnt++] = u;
                for (i = u.first; i <= u.last; i++)
                        rc->taken[i] = 1;
        }
        return k;
}

/* Lists the candidates taken, chronological, as the plan's section. */
static void recall_chrono(recall_t *rc)
{
        size_t i, n = 0;

        for (i = 0; i < rc->cnt; i++) {
                if (rc->taken[i])
                        rc->chrono[n++] = i;
        }
        rc->pl->recall = rc->chrono;
        rc->pl->recall_cnt = n;
}

/* Tokens of the summary line for the suffix s[off..len) with the blank
 * line after it ("\n\n"); 0 for the empty suffix. */
static int summary_tokens(recall_t *rc, const char *s, size_t len, size_t off)
{
        if (off >= len)
                return 0;
        cm_buf_reset(&rc->scratch);
        cm_buf_adds(&rc->scratch, "Summary: ");
        cm_buf_add(&rc->scratch, s + off, len - off);
        cm_buf_adds(&rc->scratch, "\n\n");
        return count_buf(rc->pl, &rc->scratch);
}

/*
 * The first of starts[lo..hi] (hi < cnt, or hi == cnt for the empty
 * suffix) whose summary line costs at most max: a binary search, as the
 * cost falls with the start. *cost is set to its cost. Returns hi when
 * none of the earlier ones does.
 */
static size_t summary_fit(recall_t *rc, const char *s, size_t len,
                          const size_t *starts, size_t cnt, size_t lo,
                          size_t hi, int max, int *cost)
{
        int c;

        *cost = summary_tokens(rc, s, len, hi < cnt ? starts[hi] : len);
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                c = summary_tokens(rc, s, len, starts[mid]);
                if (c <= max) {
                        hi = mid;
                        *cost = c;
                } else {
                        lo = mid + 1;
                }
        }
        return hi;
}

/*
 * The recall stage, on a plan that fits with every recent message whole
 * and the profile: adds the section of earlier messages in what is left
 * of the budget (and in the summary beyond in->summary_max_tokens, with a
 * query), as the header of this file describes.
 */
static void recall_stage(plan_t *pl, cm_context_out_t *out)
{
        const cm_context_in_t *in = pl->in;
        int64_t t0 = cm_mono_us();
        cm_recall_index_t *built = NULL;
        const cm_recall_index_t *ix = in->index;
        cm_recall_search_t *search = NULL;
        size_t hit_cnt = 0, start_cnt = 0, cap_at = 0, at, last, prev;
        size_t *starts = NULL;
        const char *sum = pl->summary;
        size_t sum_len = pl->summary_len;
        int slack = in->max_tokens - pl->tokens;
        int head, reserve, room, kept_cost = 0, cap_cost = 0, need;
        int fits;
        recall_t rc;

        memset(&rc, 0, sizeof(rc));
        rc.pl = pl;
        rc.cand = in->earlier;
        rc.cnt = in->earlier_cnt;
        cm_buf_init(&rc.scratch);
        cm_buf_adds(&rc.scratch, RECALL_HEAD "\n");
        head = count_buf(pl, &rc.scratch);
        /* The last line's blank line, before "Recent Messages:". */
        reserve = in->msg_cnt ? 1 : 0;

        if (nonempty(in->query)) {
                if (!ix || cm_recall_index_count(ix) != in->earlier_cnt)
                        ix = built =
                            cm_recall_index_new(in->earlier, in->earlier_cnt);
                search = cm_recall_search_new(ix, in->query, strlen(in->query),
                                              in->msgs, in->msg_cnt);
                hit_cnt = cm_recall_search_hits(search);
        }

        /* With hits, the summary beyond its cap is room too. */
        if (hit_cnt && in->summary_max_tokens > 0 && sum_len) {
                starts = sentence_starts(sum, sum_len, &start_cnt);
                kept_cost = summary_tokens(&rc, sum, sum_len, 0);
                cap_cost = kept_cost;
                if (kept_cost > in->summary_max_tokens)
                        cap_at = summary_fit(&rc, sum, sum_len, starts,
                                             start_cnt, 1, start_cnt,
                                             in->summary_max_tokens, &cap_cost);
        }
        room = slack + (kept_cost - cap_cost) - head - reserve;
        if (room <= 0)
                goto out;

        rc.line = cm_malloc(rc.cnt * sizeof(*rc.line));
        memset(rc.line, 0xff, rc.cnt * sizeof(*rc.line)); /* -1 */
        rc.plain = cm_malloc(rc.cnt * sizeof(*rc.plain));
        memset(rc.plain, 0xff, rc.cnt * sizeof(*rc.plain));
        rc.taken = cm_calloc(rc.cnt, sizeof(*rc.taken));
        rc.units = cm_malloc(rc.cnt * sizeof(*rc.units));
        rc.chrono = cm_malloc(rc.cnt * sizeof(*rc.chrono));
        if (hit_cnt) {
                recall_take(&rc, search, room);
        } else if (!nonempty(in->query)) {
                /* No query: the newest earlier messages, in the room left.
                 * A query that matches nothing recalls nothing: what is
                 * not relevant costs tokens and holds nothing asked for. */
                cap_at = 0;
                room = slack - head - reserve;
                recall_take(&rc, NULL, room);
        }
        if (!rc.unit_cnt)
                goto out;
        recall_chrono(&rc);

        /* The exact cost: the last line ends with the section's blank line
         * (or the text), not with one "\n". */
        last = pl->recall[pl->recall_cnt - 1];
        prev = pl->recall_cnt > 1 ? pl->recall[pl->recall_cnt - 2] : NO_PREV;
        need = head + rc.used - line_cost(&rc, last, prev) +
               line_tokens(&rc, last, prev, in->msg_cnt ? "\n\n" : "") - slack;
        if (need > 0 && cap_at > 0) {
                int cost;

                /* Trim the summary from its start, only as far as need. */
                at = summary_fit(&rc, sum, sum_len, starts, start_cnt, 1,
                                 cap_at, kept_cost - need, &cost);
                pl->summary = sum + (at < start_cnt ? starts[at] : sum_len);
                pl->summary_len = (size_t)(sum + sum_len - pl->summary);
        }

        /* The one count of the final text; over (the pieces did not add
         * up): the lowest-ranked units go. */
        fits = plan_fits(pl);
        while (!fits && rc.unit_cnt > 1) {
                const cm_recall_unit_t *u = &rc.units[--rc.unit_cnt];
                size_t i;

                for (i = u->first; i <= u->last; i++)
                        rc.taken[i] = 0;
                recall_chrono(&rc);
                fits = plan_fits(pl);
        }
        if (!fits) {
                /* The plan before recall, which fitted. */
                pl->summary = sum;
                pl->summary_len = sum_len;
                pl->recall = NULL;
                pl->recall_cnt = 0;
                plan_fits(pl);
        }
        if (pl->summary_len < sum_len)
                out->truncated = 1;

out:
        if (pl->recall_cnt) {
                size_t i;

                out->recalled =
                    cm_calloc(pl->recall_cnt, sizeof(*out->recalled));
                for (i = 0; i < pl->recall_cnt; i++)
                        message_copy(&out->recalled[i],
                                     &in->earlier[pl->recall[i]], 0, 0);
                out->recalled_cnt = pl->recall_cnt;
        }
        /* The text has the section; the plan, whose list goes with rc,
         * no longer. */
        pl->recall = NULL;
        pl->recall_cnt = 0;
        cm_recall_search_destroy(search);
        cm_recall_index_destroy(built);
        free(starts);
        free(rc.line);
        free(rc.plain);
        free(rc.taken);
        free(rc.units);
        free(rc.chrono);
        cm_buf_release(&rc.scratch);
        out->recall_us = cm_mono_us() - t0;
}

void cm_context_build(const cm_context_in_t *in, cm_context_out_t *out)
{
        cm_buf_t profile;
        plan_t pl;
        int fitted;
        size_t i;

        memset(out, 0, sizeof(*out));
        cm_buf_init(&profile);
        profile_render(in->profile, &profile);

        memset(&pl, 0, sizeof(pl));
        pl.in = in;
        pl.profile = profile.buf;
        pl.profile_len = profile.len;
        pl.profile_on = profile.len > 0;
        pl.summary = in->summary ? in->summary : "";
        pl.summary_len = strlen(pl.summary);
        pl.protect = in->msg_cnt ? protected_index(in->msgs, in->msg_cnt) : 0;
        cm_buf_init(&pl.text);

        fitted = base_fit(&pl, &out->truncated);
        /* Recall only where every recent message and the profile are. */
        if (fitted && in->earlier_cnt && !pl.dropped && !pl.cut &&
            pl.profile_on == (profile.len > 0))
                recall_stage(&pl, out);

        out->text = cm_buf_detach(&pl.text, &out->text_len);
        out->tokens = pl.tokens;
        out->summary = cm_strndup(pl.summary, pl.summary_len);
        out->profile_kept = pl.profile_on;
        if (fitted && in->msg_cnt) {
                out->recent = cm_calloc(in->msg_cnt, sizeof(*out->recent));
                for (i = 0; i < in->msg_cnt; i++) {
                        if (!plan_keeps(&pl, i))
                                continue;
                        message_copy(&out->recent[out->recent_cnt++],
                                     &in->msgs[i], pl.cut && i == pl.protect,
                                     pl.cut_off);
                }
        }
        cm_buf_release(&profile);
}

void cm_context_out_release(cm_context_out_t *out)
{
        size_t i;

        if (!out)
                return;
        free(out->text);
        free(out->summary);
        for (i = 0; i < out->recent_cnt; i++)
                cm_message_release(&out->recent[i]);
        free(out->recent);
        for (i = 0; i < out->recalled_cnt; i++)
                cm_message_release(&out->recalled[i]);
        free(out->recalled);
        memset(out, 0, sizeof(*out));
}

int cm_context_full_tokens(const cm_profile_t *profile,
                           const cm_message_t *msgs, size_t cnt,
                           const cm_tokenizer_t *tk)
{
        cm_context_in_t in;
        cm_buf_t prof;
        plan_t pl;

        memset(&in, 0, sizeof(in));
        in.profile = profile;
        in.msgs = msgs;
        in.msg_cnt = cnt;
        in.max_tokens = INT_MAX;
        in.tk = tk;

        cm_buf_init(&prof);
        profile_render(profile, &prof);
        memset(&pl, 0, sizeof(pl));
        pl.in = &in;
        pl.profile = prof.buf;
        pl.profile_len = prof.len;
        pl.profile_on = prof.len > 0;
        pl.summary = "";
        pl.protect = SIZE_MAX; /* nothing dropped, every message kept */
        cm_buf_init(&pl.text);
        plan_fits(&pl);
        cm_buf_release(&pl.text);
        cm_buf_release(&prof);
        return pl.tokens;
}

int cm_context_line_tokens(const cm_message_t *msg, const cm_tokenizer_t *tk)
{
        cm_buf_t line;
        int n;

        cm_buf_init(&line);
        line_render(msg, &line);
        cm_buf_adds(&line, "\n");
        n = cm_tokenizer_count(tk, line.buf, line.len);
        cm_buf_release(&line);
        return n;
}

int cm_context_break_tokens(const cm_message_t *msg, const cm_tokenizer_t *tk)
{
        cm_buf_t b;
        int n;

        cm_buf_init(&b);
        line_render(msg, &b);
        n = cm_tokenizer_count(tk, b.buf, b.len);
        cm_buf_release(&b);
        return cm_context_line_tokens(msg, tk) - n;
}

int cm_context_full_tokens_stored(const cm_profile_t *profile, int64_t line_sum,
                                  const cm_message_t *newest,
                                  const int64_t *last_break,
                                  const cm_tokenizer_t *tk)
{
        cm_buf_t b;
        int64_t n;

        if (line_sum <= 0 && !newest)
                return cm_context_full_tokens(profile, NULL, 0, tk);
        cm_buf_init(&b);
        profile_render(profile, &b);
        if (b.len)
                cm_buf_adds(&b, "\n\n");
        cm_buf_adds(&b, "Recent Messages:\n");
        n = cm_tokenizer_count(tk, b.buf, b.len) + line_sum;
        if (newest) {
                /* The newest line ends the text: its break is not there. */
                n -= newest->tokens >= 0 ? newest->tokens
                                         : cm_context_line_tokens(newest, tk);
                cm_buf_reset(&b);
                line_render(newest, &b);
                n += cm_tokenizer_count(tk, b.buf, b.len);
        } else if (last_break) {
                n -= *last_break;
        }
        /* Else the newest line's break is taken to merge into the line's
         * last token, as it does after a final '.', '?' or '!'. */
        cm_buf_release(&b);
        return n > INT_MAX ? INT_MAX : n < 0 ? 0 : (int)n;
}
