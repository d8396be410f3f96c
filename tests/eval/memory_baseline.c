/*
 * memory_baseline: what an application could do without chatmem, on the
 * same questions and with the same tokenizer (see memory.h).
 *
 * Both build the lines "<Role>: <content>" of some turns, oldest first,
 * joined with "\n" (the layout of the context's messages), inside the
 * budget. A text's tokens are the sum of its lines' line_tokens (each line
 * with its break) less the break of its newest line: exact for the BPE
 * tokenizers (context.h explains why), and checked here against a recount
 * of every text built.
 *
 *   last N    the newest turns, newest first while they fit.
 *   BM25      plain BM25 over the turns (k1 1.2, b 0.75, idf
 *             ln(1 + (N - df + 0.5) / (df + 0.5)); words are the [a-z0-9]
 *             runs of the lowercased text, no stemming, no stop words;
 *             each distinct word of the question counts once), with the
 *             question as the query: the last EM_BM25_LAST turns first
 *             (newest first while they fit), then the turns by descending
 *             score (ties: the newer first) while they fit, stopping at
 *             the first that does not; turns without a query word are
 *             never taken.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "memory.h"
#include "util.h"

#define BM25_K1 1.2
#define BM25_B  0.75

/* The turns taken, and their tokens as a text. */
typedef struct pick {
        const em_convo_t *c;
        unsigned char *taken; /* per turn */
        int64_t line_sum;     /* sum of line_tokens of the turns taken */
        size_t newest;        /* index of the newest turn taken */
        size_t cnt;
} pick_t;

/* Tokens of the text once turn i is taken too. */
static int64_t pick_cost_with(const pick_t *p, size_t i)
{
        size_t newest = p->cnt == 0 || i > p->newest ? i : p->newest;

        return p->line_sum + p->c->turns[i].line_tokens -
               p->c->turns[newest].break_tokens;
}

/* Takes turn i if the text stays within max_tokens. Returns 1 if taken. */
static int pick_try(pick_t *p, size_t i, int max_tokens)
{
        if (pick_cost_with(p, i) > max_tokens)
                return 0;
        p->line_sum += p->c->turns[i].line_tokens;
        if (p->cnt == 0 || i > p->newest)
                p->newest = i;
        p->taken[i] = 1;
        p->cnt++;
        return 1;
}

static int64_t pick_tokens(const pick_t *p)
{
        return p->cnt ? p->line_sum - p->c->turns[p->newest].break_tokens : 0;
}

/* Builds the text of the turns taken, recounts it, and judges it. */
static int pick_judge(const pick_t *p, const em_question_t *q, int max_tokens,
                      const cm_tokenizer_t *tk, const char *what,
                      em_outcome_t *out, char *errstr, size_t errstr_size)
{
        cm_buf_t b = CM_BUF_INIT;
        char *norm;
        size_t i;
        int tokens;

        for (i = 0; i < p->c->turn_cnt; i++) {
                const cm_message_t *m = &p->c->turns[i].msg;

                if (!p->taken[i])
                        continue;
                if (b.len > 0)
                        cm_buf_adds(&b, "\n");
                cm_buf_addf(&b, "%s: ", cm_role_label(m->role));
                cm_buf_add(&b, m->content, m->content_len);
        }
        tokens = cm_tokenizer_count(tk, b.buf, b.len);
        if (tokens != pick_tokens(p) || tokens > max_tokens) {
                cm_errf(errstr, errstr_size,
                        "%s baseline for '%s' at %d tokens: the text has %d "
                        "tokens, its lines %lld",
                        what, p->c->sample_id, max_tokens, tokens,
                        (long long)pick_tokens(p));
                cm_buf_release(&b);
                return -1;
        }
        norm = em_norm(b.buf, b.len);
        out->answered = strstr(norm, q->answer_norm) != NULL;
        out->tokens = tokens;
        free(norm);
        cm_buf_release(&b);
        return 0;
}

/* Takes the newest turns, at most cnt, newest first while they fit. */
static void take_last(pick_t *p, size_t cnt, int max_tokens)
{
        size_t i, n = p->c->turn_cnt;

        for (i = 0; i < cnt && i < n; i++) {
                if (!pick_try(p, n - 1 - i, max_tokens))
                        break;
        }
}

typedef struct scored {
        double score;
        size_t turn;
} scored_t;

static int cmp_scored(const void *a, const void *b)
{
        const scored_t *x = a, *y = b;

        if (x->score != y->score)
                return x->score > y->score ? -1 : 1;
        return x->turn > y->turn ? -1 : x->turn < y->turn;
}

static int cmp_u32(const void *a, const void *b)
{
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

        return x < y ? -1 : x > y;
}

/* The count of word id in turn t (its terms are sorted), 0 if none. */
static uint32_t term_freq(const em_turn_t *t, uint32_t id)
{
        size_t lo = 0, hi = t->term_cnt;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (t->term[mid] == id)
                        return t->tf[mid];
                if (t->term[mid] < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return 0;
}

/* The distinct word ids of the question that the conversation has, in a
 * heap array of *cnt. */
static uint32_t *query_terms(const em_convo_t *c, const char *question,
                             size_t *cnt)
{
        char *norm = em_norm(question, strlen(question));
        uint32_t *ids = NULL;
        size_t n = 0, i, start = 0, len = strlen(norm), k = 0;

        for (i = 0; i <= len; i++) {
                if (i < len && norm[i] != ' ')
                        continue;
                if (i > start) {
                        uint32_t id =
                            em_vocab_find(&c->vocab, norm + start, i - start);

                        if (id != UINT32_MAX) {
                                ids = cm_realloc(ids, (n + 1) * sizeof(*ids));
                                ids[n++] = id;
                        }
                }
                start = i + 1;
        }
        if (n > 1)
                qsort(ids, n, sizeof(*ids), cmp_u32);
        for (i = 0; i < n; i++) {
                if (k == 0 || ids[k - 1] != ids[i])
                        ids[k++] = ids[i];
        }
        free(norm);
        *cnt = k;
        return ids;
}

/* Takes turns by BM25 score against the question while they fit. */
static void take_bm25(pick_t *p, const char *question, int max_tokens)
{
        const em_convo_t *c = p->c;
        size_t term_cnt, i, k;
        uint32_t *terms = query_terms(c, question, &term_cnt);
        scored_t *s = cm_calloc(c->turn_cnt, sizeof(*s));
        double n = (double)c->turn_cnt;

        for (i = 0; i < c->turn_cnt; i++) {
                const em_turn_t *t = &c->turns[i];
                double norm =
                    BM25_K1 *
                    (1 - BM25_B + BM25_B * (double)t->word_cnt / c->avg_words);

                s[i].turn = i;
                for (k = 0; k < term_cnt; k++) {
                        double df = (double)c->vocab.df[terms[k]];
                        double f = (double)term_freq(t, terms[k]);

                        if (f == 0)
                                continue;
                        s[i].score += log(1 + (n - df + 0.5) / (df + 0.5)) * f *
                                      (BM25_K1 + 1) / (f + norm);
                }
        }
        qsort(s, c->turn_cnt, sizeof(*s), cmp_scored);
        for (i = 0; i < c->turn_cnt && s[i].score > 0; i++) {
                if (p->taken[s[i].turn])
                        continue;
                if (!pick_try(p, s[i].turn, max_tokens))
                        break;
        }
        free(s);
        free(terms);
}

int em_baseline(const em_data_t *d, const em_question_t *q, int kind,
                int max_tokens, const cm_tokenizer_t *tk, em_outcome_t *out,
                char *errstr, size_t errstr_size)
{
        pick_t p;
        int ret;

        memset(&p, 0, sizeof(p));
        p.c = &d->convos[q->convo];
        p.taken = cm_calloc(p.c->turn_cnt, 1);
        if (kind == EM_BASE_LAST) {
                take_last(&p, p.c->turn_cnt, max_tokens);
        } else {
                take_last(&p, EM_BM25_LAST, max_tokens);
                take_bm25(&p, q->question, max_tokens);
        }
        ret = pick_judge(&p, q, max_tokens, tk,
                         kind == EM_BASE_LAST ? "last-N" : "BM25", out, errstr,
                         errstr_size);
        free(p.taken);
        return ret;
}
