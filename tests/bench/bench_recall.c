/*
 * bench_recall: what recall adds to an in-process context build.
 *
 *   bench_recall [RUNS]
 *
 * A synthetic 700-turn conversation (generated here, about 150 bytes a
 * message: two speakers, names, places, hobbies, dates and numbers, a
 * question now and then) is split as the context worker would: the last 3
 * messages recent, the 697 before them recall candidates, a 300-token
 * summary and a profile. RUNS times (default 2000), with a different
 * query each time (built from the conversation's words), it times:
 *
 *   index build        cm_recall_index_new() over the 697 candidates
 *   search             the first 40 units of a search on a built index
 *   context, no recall cm_context_build() without candidates
 *   context + recall   cm_context_build() with query and candidates, the
 *                      index built inside (what an uncached request pays)
 *   context + cached   the same with the index built beforehand
 *   context + extended the same with an index built beforehand over all
 *                      but the 2 newest candidates and extended by them
 *                      (what a caller that caches the index pays once
 *                      two messages left the recent window)
 *
 * and prints the p50 and p99 of each in microseconds, for cl100k_base (and
 * o200k_base when its data is built), with the budget max_tokens 2000, and
 * what recall adds at p50 and p99 (each context build with recall against
 * context, no recall). The target: at most 300 us at p99, index included.
 *
 * A measurement, not a test: it asserts nothing. `make bench-recall` runs
 * it. Exit status: 0, or 2 on a bad argument.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "recall.h"
#include "tokens.h"
#include "util.h"

#define TURNS   700
#define RECENT  3
#define QUERIES 64

static uint64_t rng_state = 0x853c49e6748fea9bULL;

static uint32_t rng(void)
{
        /* xorshift64* */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return (uint32_t)((rng_state * 0x2545f4914f6cdd1dULL) >> 32);
}

#define PICK(a) ((a)[rng() % (sizeof(a) / sizeof((a)[0]))])

static const char *const names[] = {
    "Maria", "Caroline", "Melanie", "Jon",  "Gina", "Priya", "Omar",
    "Lena",  "Tom",      "Yuki",    "Sam",  "Noah", "Ava",   "Luca",
    "Nina",  "Kofi",     "Ines",    "Ravi", "Zoe",  "Felix"};
static const char *const places[] = {
    "Lisbon",     "Paris",      "Tokyo",       "Denver",   "the lake",
    "the museum", "the park",   "the library", "Oslo",     "the beach",
    "Nairobi",    "the market", "Seattle",     "the cafe", "Lima"};
static const char *const hobbies[] = {
    "painting", "hiking",       "pottery",  "swimming",    "camping",
    "running",  "baking",       "guitar",   "photography", "volunteering",
    "chess",    "gardening",    "climbing", "knitting",    "surfing",
    "yoga",     "birdwatching", "cycling",  "woodworking", "salsa"};
static const char *const things[] = {
    "dog",     "cat",    "car",  "bike",   "book",   "camera", "garden",
    "kitchen", "violin", "tent", "laptop", "jacket", "puppy",  "boat"};
static const char *const adjs[] = {"amazing",    "relaxing", "tough",
                                   "exciting",   "peaceful", "hilarious",
                                   "exhausting", "wonderful"};
static const char *const months[] = {"January", "March",     "May",
                                     "July",    "September", "November"};
static const char *const family[] = {"sister", "brother", "mom",      "dad",
                                     "cousin", "friend",  "neighbour"};

/* Appends one sentence of the user's kind. */
static void user_sentence(cm_buf_t *b)
{
        switch (rng() % 6) {
        case 0:
                cm_buf_addf(b,
                            "I went %s with %s at %s last weekend and it was "
                            "%s. ",
                            PICK(hobbies), PICK(names), PICK(places),
                            PICK(adjs));
                break;
        case 1:
                cm_buf_addf(b, "My %s %s just started %s classes on %s %u. ",
                            PICK(family), PICK(names), PICK(hobbies),
                            PICK(months), 1 + rng() % 28);
                break;
        case 2:
                cm_buf_addf(b, "We got a new %s in %s %u, it cost %u dollars. ",
                            PICK(things), PICK(months), 2015 + rng() % 10,
                            10 * (1 + rng() % 90));
                break;
        case 3:
                cm_buf_addf(b,
                            "Do you think I should take my %s to %s "
                            "before %s?",
                            PICK(things), PICK(places), PICK(months));
                break;
        case 4:
                cm_buf_addf(b,
                            "Honestly %s has been my favourite thing since "
                            "I moved to %s. ",
                            PICK(hobbies), PICK(places));
                break;
        default:
                cm_buf_addf(b, "Yes, %s!", PICK(places));
                break;
        }
}

/* Appends one sentence of the assistant's kind. */
static void assistant_sentence(cm_buf_t *b)
{
        switch (rng() % 4) {
        case 0:
                cm_buf_addf(b,
                            "That sounds %s! How long have you been into "
                            "%s? ",
                            PICK(adjs), PICK(hobbies));
                break;
        case 1:
                cm_buf_addf(b,
                            "It's great that you and %s found time for %s at "
                            "%s. ",
                            PICK(names), PICK(hobbies), PICK(places));
                break;
        case 2:
                cm_buf_addf(b,
                            "A %s can be a lot of work, but %s in %s is a "
                            "good time to start. ",
                            PICK(things), PICK(places), PICK(months));
                break;
        default:
                cm_buf_addf(b, "Did %s enjoy the %s trip?", PICK(names),
                            PICK(places));
                break;
        }
}

typedef struct convo {
        cm_buf_t text[TURNS];
        cm_message_t msgs[TURNS];
        cm_buf_t queries[QUERIES];
        cm_buf_t summary;
} convo_t;

static void convo_make(convo_t *c)
{
        int64_t ts = 1683500000000LL; /* 2023-05-07 */
        size_t i;

        memset(c, 0, sizeof(*c));
        for (i = 0; i < TURNS; i++) {
                cm_buf_t *b = &c->text[i];

                cm_buf_init(b);
                while (b->len < 110) {
                        if (i % 2 == 0)
                                user_sentence(b);
                        else
                                assistant_sentence(b);
                }
                c->msgs[i].role = i % 2 ? CM_ROLE_ASSISTANT : CM_ROLE_USER;
                c->msgs[i].content = b->buf;
                c->msgs[i].content_len = b->len;
                c->msgs[i].tokens = -1;
                c->msgs[i].seq = (int64_t)i + 1;
                ts += 60000 * (1 + rng() % 600);
                c->msgs[i].ts = ts;
        }
        for (i = 0; i < QUERIES; i++) {
                cm_buf_init(&c->queries[i]);
                switch (i % 4) {
                case 0:
                        cm_buf_addf(&c->queries[i], "When did I go %s with %s?",
                                    PICK(hobbies), PICK(names));
                        break;
                case 1:
                        cm_buf_addf(&c->queries[i],
                                    "What did my %s start in %s?", PICK(family),
                                    PICK(months));
                        break;
                case 2:
                        cm_buf_addf(&c->queries[i],
                                    "How much did the new %s cost?",
                                    PICK(things));
                        break;
                default:
                        cm_buf_addf(&c->queries[i],
                                    "Do you remember where I moved, %s or %s?",
                                    PICK(places), PICK(places));
                        break;
                }
        }
        cm_buf_init(&c->summary);
        while (c->summary.len < 1300)
                user_sentence(&c->summary);
}

static void convo_release(convo_t *c)
{
        size_t i;

        for (i = 0; i < TURNS; i++)
                cm_buf_release(&c->text[i]);
        for (i = 0; i < QUERIES; i++)
                cm_buf_release(&c->queries[i]);
        cm_buf_release(&c->summary);
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

/* Sorts us[0..n) and returns its p-th percentile. */
static int64_t pct(int64_t *us, size_t n, double p)
{
        size_t k = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);

        qsort(us, n, sizeof(*us), cmp_i64);
        return us[k];
}

enum { T_INDEX, T_SEARCH, T_PLAIN, T_RECALL, T_CACHED, T_EXTEND, T_CNT };

static const char *const labels[T_CNT] = {
    "index build",      "search",           "context, no recall",
    "context + recall", "context + cached", "context + extended"};

static void bench(const cm_tokenizer_t *tk, convo_t *c, size_t runs)
{
        static char *interests[] = {"hiking", "pottery"};
        cm_profile_t profile = {.name = "Maria Lopez",
                                .role = "nurse",
                                .interests = interests,
                                .interest_cnt = 2};
        const cm_message_t *earlier = c->msgs;
        size_t earlier_cnt = TURNS - RECENT, r, t;
        int64_t *us[T_CNT];
        cm_recall_index_t *cached = cm_recall_index_new(earlier, earlier_cnt);
        size_t recalled = 0, bytes = 0;
        int tokens = 0;

        for (t = 0; t < T_CNT; t++)
                us[t] = cm_calloc(runs, sizeof(*us[t]));
        for (t = 0; t < earlier_cnt; t++)
                bytes += earlier[t].content_len;
        for (r = 0; r < runs; r++) {
                const cm_buf_t *q = &c->queries[r % QUERIES];
                cm_context_in_t in;
                cm_context_out_t out;
                cm_recall_index_t *ix;
                cm_recall_search_t *rs;
                cm_recall_unit_t unit;
                int64_t t0;

                t0 = cm_mono_us();
                ix = cm_recall_index_new(earlier, earlier_cnt);
                us[T_INDEX][r] = cm_mono_us() - t0;

                /* The first 40 units: about what a budget of 2000 takes. */
                t0 = cm_mono_us();
                rs = cm_recall_search_new(ix, q->buf, q->len,
                                          c->msgs + earlier_cnt, RECENT);
                for (t = 0; t < 40 && cm_recall_search_next(rs, &unit); t++)
                        ;
                cm_recall_search_destroy(rs);
                us[T_SEARCH][r] = cm_mono_us() - t0;
                cm_recall_index_destroy(ix);

                memset(&in, 0, sizeof(in));
                in.profile = &profile;
                in.summary = c->summary.buf;
                in.msgs = c->msgs + earlier_cnt;
                in.msg_cnt = RECENT;
                in.max_tokens = 2000;
                in.tk = tk;
                t0 = cm_mono_us();
                cm_context_build(&in, &out);
                us[T_PLAIN][r] = cm_mono_us() - t0;
                cm_context_out_release(&out);

                in.query = q->buf;
                in.earlier = earlier;
                in.earlier_cnt = earlier_cnt;
                in.summary_max_tokens = 500;
                t0 = cm_mono_us();
                cm_context_build(&in, &out);
                us[T_RECALL][r] = cm_mono_us() - t0;
                recalled += out.recalled_cnt;
                tokens += out.tokens;
                cm_context_out_release(&out);

                in.index = cached;
                t0 = cm_mono_us();
                cm_context_build(&in, &out);
                us[T_CACHED][r] = cm_mono_us() - t0;
                cm_context_out_release(&out);

                ix = cm_recall_index_new(earlier, earlier_cnt - 2);
                in.index = ix;
                t0 = cm_mono_us();
                cm_recall_index_extend(ix, earlier, earlier_cnt);
                cm_context_build(&in, &out);
                us[T_EXTEND][r] = cm_mono_us() - t0;
                cm_context_out_release(&out);
                cm_recall_index_destroy(ix);
        }
        printf("%s: %zu candidates (%.0f bytes a message), budget 2000, "
               "%zu runs; %.1f messages recalled, %.0f tokens a context\n",
               cm_tokenizer_name(tk), earlier_cnt,
               (double)bytes / (double)earlier_cnt, runs,
               (double)recalled / (double)runs, (double)tokens / (double)runs);
        {
                int64_t p50[T_CNT], p99[T_CNT];

                for (t = 0; t < T_CNT; t++) {
                        p50[t] = pct(us[t], runs, 50);
                        p99[t] = pct(us[t], runs, 99);
                        printf("  %-20s p50 %6lld us   p99 %6lld us\n",
                               labels[t], (long long)p50[t], (long long)p99[t]);
                }
                printf("  recall adds          p50 %6lld us   p99 %6lld us "
                       "with the index built per request\n",
                       (long long)(p50[T_RECALL] - p50[T_PLAIN]),
                       (long long)(p99[T_RECALL] - p99[T_PLAIN]));
                printf("  recall adds          p50 %6lld us   p99 %6lld us "
                       "with a cached index\n",
                       (long long)(p50[T_CACHED] - p50[T_PLAIN]),
                       (long long)(p99[T_CACHED] - p99[T_PLAIN]));
                printf("  recall adds          p50 %6lld us   p99 %6lld us "
                       "with a cached index extended by 2\n",
                       (long long)(p50[T_EXTEND] - p50[T_PLAIN]),
                       (long long)(p99[T_EXTEND] - p99[T_PLAIN]));
        }
        for (t = 0; t < T_CNT; t++)
                free(us[t]);
        cm_recall_index_destroy(cached);
}

int main(int argc, char **argv)
{
        static const char *const encodings[] = {"cl100k_base", "o200k_base"};
        static convo_t c;
        char errstr[256];
        long long runs = 2000;
        size_t i;

        if (argc > 2 ||
            (argc == 2 && cm_parse_int(argv[1], 1, 100000000, &runs) == -1)) {
                fprintf(stderr, "usage: %s [RUNS]\n", argv[0]);
                return 2;
        }
        convo_make(&c);
        for (i = 0; i < sizeof(encodings) / sizeof(encodings[0]); i++) {
                const cm_tokenizer_t *tk = NULL;

                if (cm_tokenizer_get(encodings[i], &tk, errstr,
                                     sizeof(errstr)) == -1) {
                        printf("%s: skipped (%s)\n", encodings[i], errstr);
                        continue;
                }
                bench(tk, &c, (size_t)runs);
        }
        convo_release(&c);
        return 0;
}
