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

typedef struct plan {
        const cm_context_in_t *in;
        const char *profile; /* the profile lines, "" when none */
        size_t profile_len;
        int profile_on;
        const char *summary; /* the kept suffix of in->summary */
        size_t summary_len;  /* 0: no summary line */
        size_t protect;      /* index of the message never dropped */
        size_t dropped;      /* other messages dropped, oldest first */
        int cut;             /* 1: msgs[protect] cut behind the marker */
        size_t cut_off;      /* ... keeping content[cut_off..] */
        cm_buf_t text;       /* the text of the plan, once rendered */
        int tokens;          /* and its tokens */
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
static int trim_summary(plan_t *pl)
{
        const char *s = pl->summary;
        size_t len = pl->summary_len;
        size_t *starts = cm_malloc(sizeof(*starts) * (len + 1));
        size_t cnt = 0;
        size_t lo, hi, i;
        int fits = 0;

        /* starts[0] is the full summary, then each later sentence start. */
        starts[cnt++] = 0;
        for (i = 0; i + 1 < len; i++) {
                size_t j = i + 1;

                if (s[i] != '.' && s[i] != '!' && s[i] != '?')
                        continue;
                while (j < len && (s[j] == ' ' || s[j] == '\n' ||
                                   s[j] == '\t' || s[j] == '\r'))
                        j++;
                if (j == i + 1 || j == len)
                        continue;
                starts[cnt++] = j;
                i = j - 1;
        }

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

void cm_context_build(const cm_context_in_t *in, cm_context_out_t *out)
{
        cm_buf_t profile;
        plan_t pl;
        int empty = 0;
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

        if (plan_fits(&pl))
                goto out;
        out->truncated = 1;
        if (pl.summary_len && trim_summary(&pl))
                goto out;
        if (in->msg_cnt && drop_messages(&pl))
                goto out;
        if (pl.profile_on) {
                pl.profile_on = 0;
                if (plan_fits(&pl))
                        goto out;
        }
        if (in->msg_cnt && cut_message(&pl))
                goto out;
        /* Not even the marker fits: the best text that does is "". */
        empty = 1;
        pl.profile_on = 0;
        pl.summary_len = 0;
        cm_buf_reset(&pl.text);
        pl.tokens = cm_tokenizer_count(in->tk, "", 0);

out:
        out->text = cm_buf_detach(&pl.text, &out->text_len);
        out->tokens = pl.tokens;
        out->summary = cm_strndup(pl.summary, pl.summary_len);
        out->profile_kept = pl.profile_on;
        if (!empty && in->msg_cnt) {
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

/* Appends "<Role>: <content>" to b. */
static void line_render(const cm_message_t *msg, cm_buf_t *b)
{
        cm_buf_adds(b, cm_role_label(msg->role));
        cm_buf_adds(b, ": ");
        cm_buf_add(b, msg->content, msg->content_len);
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
