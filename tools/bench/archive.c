/*
 * chatmem-bench archive: how compact the archive of folded messages is.
 *
 * 1. The codec, in-process: synthetic chat messages encoded in chunks of
 *    several sizes at several zstd levels; bytes per message (header
 *    included), encoding and decoding time. The figures behind the
 *    choice written in common/archive.h.
 * 2. Redis, through the real fold path: for each size N (--sizes),
 *    --samples sessions each get N + recent_verbatim messages appended
 *    with cm_store_append_batch() and folded the way the summarizer
 *    folds (a fold whenever more than recent_verbatim + summarize_after
 *    messages are in the list, of all but recent_verbatim of them) with
 *    cm_store_fold_commit(), until N are archived. Then MEMORY USAGE
 *    (SAMPLES 0: every element) of each archive key: bytes per archived
 *    message, and per 1M such sessions.
 *
 * The messages are made up here, never read from a data set: sentences of
 * words drawn from a Zipf distribution (the 100 most common English chat
 * words, then made-up words; a few topic words recurring for a while),
 * stock phrases, names, numbers and dates; user turns of 1-3 sentences,
 * answers of 2-7; ~135 bytes on average. They compress a little worse
 * than real chat text (common/archive.h): the figures err on the large
 * side.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "bench.h"
#include "log.h"
#include "store.h"

/* ------------------------------------------------------------------ */
/* Synthetic chat                                                       */

static const char *const common_words[] = {
    "I",     "the",     "to",   "and",  "you",    "a",       "it",     "that",
    "of",    "is",      "in",   "my",   "for",    "was",     "with",   "so",
    "on",    "have",    "be",   "but",  "we",     "do",      "this",   "are",
    "what",  "not",     "like", "just", "at",     "me",      "your",   "can",
    "they",  "about",   "it's", "I'm",  "if",     "all",     "get",    "there",
    "would", "one",     "out",  "or",   "an",     "how",     "know",   "really",
    "when",  "he",      "she",  "from", "up",     "time",    "had",    "think",
    "good",  "go",      "no",   "some", "been",   "more",    "will",   "as",
    "them",  "by",      "yes",  "did",  "great",  "work",    "now",    "going",
    "also",  "love",    "too",  "day",  "new",    "people",  "much",   "make",
    "want",  "then",    "last", "see",  "lot",    "sounds",  "thanks", "that's",
    "don't", "yeah",    "oh",   "well", "family", "friends", "week",   "year",
    "today", "weekend", "trip", "dog",
};
#define COMMON_CNT (sizeof(common_words) / sizeof(common_words[0]))

static const char *const names[] = {
    "Caroline", "Melanie", "Jon",    "Gina",   "Maria", "John",  "Nate",
    "Joanna",   "Tim",     "Audrey", "Andrew", "Evan",  "Sam",   "Deborah",
    "Jolene",   "Calvin",  "Dave",   "James",  "Priya", "Kenji",
};
#define NAME_CNT (sizeof(names) / sizeof(names[0]))

/* What people say again and again. */
static const char *const stock[] = {
    "That's great!",
    "How are you doing?",
    "I'm so happy for you.",
    "Thanks for asking.",
    "That sounds like a lot of fun.",
    "What do you think about it?",
    "I know what you mean.",
    "Good luck with that!",
    "Let me know how it goes.",
    "It was a really nice day.",
    "I can't wait to see it.",
    "That's really cool, I didn't know that.",
    "Oh no, I'm sorry to hear that.",
    "Have you tried it before?",
    "Sounds like a good plan.",
    "I'll keep that in mind.",
    "It means a lot to me.",
    "We should do that again sometime.",
    "What made you decide to do that?",
    "That's awesome, congrats!",
};
#define STOCK_CNT (sizeof(stock) / sizeof(stock[0]))

static const char *const syllables[] = {
    "ba",  "ker", "mo",  "ti", "lan",  "re",  "son", "ca",  "dor", "pe",
    "ri",  "tu",  "vel", "na", "gro",  "sha", "min", "lo",  "fen", "da",
    "quo", "ist", "ple", "xa", "ment", "ing", "ous", "ble", "ter", "al",
};
#define SYL_CNT (sizeof(syllables) / sizeof(syllables[0]))

/* Words of the vocabulary (the common ones, then made-up ones) and the
 * Zipf exponent of their frequencies. */
#define VOCAB_CNT 3000
#define ZIPF_S    1.1
/* Sentences: a stock phrase STOCK_PCT% of the time, else 4..19 words,
 * TOPIC_PCT% of them from the conversation's topic words. */
#define STOCK_PCT 45
#define TOPIC_PCT 20

/* Words a conversation keeps coming back to, changed every TOPIC_MSGS
 * messages. */
#define TOPIC_WORDS 16
#define TOPIC_MSGS  40

typedef struct chat_gen {
        uint64_t rng;
        const char *topic[TOPIC_WORDS];
        char **vocab; /* VOCAB_CNT words */
        double *cdf;  /* VOCAB_CNT cumulative probabilities */
} chat_gen_t;

static uint64_t gen_next(chat_gen_t *g)
{
        g->rng ^= g->rng >> 12;
        g->rng ^= g->rng << 25;
        g->rng ^= g->rng >> 27;
        return g->rng * 2685821657736338717ULL;
}

/* Uniform in [0, n). */
static size_t gen_below(chat_gen_t *g, size_t n)
{
        return (size_t)(gen_next(g) % n);
}

static void gen_init(chat_gen_t *g, uint64_t seed)
{
        double sum = 0;
        size_t i;

        g->rng = seed | 1;
        g->vocab = cm_calloc(VOCAB_CNT, sizeof(*g->vocab));
        g->cdf = cm_calloc(VOCAB_CNT, sizeof(*g->cdf));
        for (i = 0; i < VOCAB_CNT; i++) {
                if (i < COMMON_CNT) {
                        g->vocab[i] = cm_strdup(common_words[i]);
                } else {
                        cm_buf_t b = CM_BUF_INIT;
                        size_t n = 1 + gen_below(g, 3), j;

                        for (j = 0; j < n; j++)
                                cm_buf_adds(&b,
                                            syllables[gen_below(g, SYL_CNT)]);
                        g->vocab[i] = cm_buf_detach(&b, NULL);
                }
                sum += 1.0 / pow((double)(i + 1), ZIPF_S);
                g->cdf[i] = sum;
        }
        for (i = 0; i < VOCAB_CNT; i++)
                g->cdf[i] /= sum;
}

static void gen_release(chat_gen_t *g)
{
        size_t i;

        for (i = 0; i < VOCAB_CNT; i++)
                free(g->vocab[i]);
        free(g->vocab);
        free(g->cdf);
}

static const char *gen_word(chat_gen_t *g)
{
        double u = (double)(gen_next(g) >> 11) / 9007199254740992.0;
        size_t lo = 0, hi = VOCAB_CNT - 1;

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;

                if (g->cdf[mid] < u)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return g->vocab[lo];
}

/* New topic words: from the less common part of the vocabulary. */
static void gen_topic(chat_gen_t *g)
{
        size_t i;

        for (i = 0; i < TOPIC_WORDS; i++)
                g->topic[i] =
                    g->vocab[COMMON_CNT + gen_below(g, VOCAB_CNT - COMMON_CNT)];
}

/* One sentence into b: a stock phrase, or words. */
static void gen_sentence(chat_gen_t *g, cm_buf_t *b)
{
        static const char *const ends[] = {".", ".", ".", "?", "!"};
        size_t n = 4 + gen_below(g, 16), i;

        if (gen_below(g, 100) < STOCK_PCT) {
                cm_buf_adds(b, stock[gen_below(g, STOCK_CNT)]);
                return;
        }
        for (i = 0; i < n; i++) {
                size_t r = gen_below(g, 100);
                const char *w;

                if (r >= 7 && r < 7 + TOPIC_PCT) {
                        cm_buf_adds(b, g->topic[gen_below(g, TOPIC_WORDS)]);
                        continue;
                }

                if (i)
                        cm_buf_adds(b, i > 2 && r < 6 ? ", " : " ");
                if (r < 4) {
                        cm_buf_adds(b, names[gen_below(g, NAME_CNT)]);
                        continue;
                }
                if (r < 6) {
                        cm_buf_addf(b, "%zu", 1 + gen_below(g, 2000));
                        continue;
                }
                if (r < 7) {
                        cm_buf_addf(b, "2023-%02zu-%02zu", 1 + gen_below(g, 12),
                                    1 + gen_below(g, 28));
                        continue;
                }
                w = gen_word(g);
                if (i == 0 && w[0] >= 'a' && w[0] <= 'z') {
                        cm_buf_addf(b, "%c%s", w[0] - 'a' + 'A', w + 1);
                        continue;
                }
                cm_buf_adds(b, w);
        }
        cm_buf_adds(b, ends[gen_below(g, 5)]);
}

/* Message i of a conversation (user turns of 1-3 sentences, answers of
 * 2-7) into m, owned. */
static void gen_message(chat_gen_t *g, int64_t i, cm_message_t *m)
{
        cm_buf_t b = CM_BUF_INIT;
        size_t n, j;

        memset(m, 0, sizeof(*m));
        if (i % TOPIC_MSGS == 0)
                gen_topic(g);
        m->role = i % 2 ? CM_ROLE_ASSISTANT : CM_ROLE_USER;
        n = m->role == CM_ROLE_USER ? 1 + gen_below(g, 3) : 2 + gen_below(g, 6);
        for (j = 0; j < n; j++) {
                if (j)
                        cm_buf_adds(&b, " ");
                gen_sentence(g, &b);
        }
        m->content = cm_buf_detach(&b, &m->content_len);
        m->seq = i + 1;
        m->ts = 1683500000000LL + i * 45000 + (int64_t)gen_below(g, 30000);
        m->tokens = (int)(m->content_len / 4 + 3);
}

/* ------------------------------------------------------------------ */
/* 1. The codec                                                         */

#define CODEC_MSGS 8192

static void codec_measure(void)
{
        static const size_t chunk_sizes[] = {1, 5, 16, 32, 64, 128};
        static const int levels[] = {1, 3, 9, 19};
        chat_gen_t g;
        cm_message_t *m = cm_calloc(CODEC_MSGS, sizeof(*m));
        cm_message_t *out = cm_calloc(CODEC_MSGS, sizeof(*out));
        size_t raw = 0, i, c, l;

        gen_init(&g, 42);
        for (i = 0; i < CODEC_MSGS; i++) {
                gen_message(&g, (int64_t)i, &m[i]);
                raw += m[i].content_len;
        }
        for (c = 0; c < sizeof(chunk_sizes) / sizeof(chunk_sizes[0]); c++) {
                for (l = 0; l < sizeof(levels) / sizeof(levels[0]); l++) {
                        size_t k = chunk_sizes[c], bytes = 0, raw_chunks = 0;
                        int64_t t0, t1, t2;
                        char **chunk =
                            cm_calloc(CODEC_MSGS / k + 1, sizeof(*chunk));
                        size_t *len =
                            cm_calloc(CODEC_MSGS / k + 1, sizeof(*len));
                        size_t n = 0;

                        t0 = cm_mono_us();
                        for (i = 0; i + k <= CODEC_MSGS; i += k, n++)
                                chunk[n] = cm_archive_encode(
                                    m + i, k, levels[l], &len[n]);
                        t1 = cm_mono_us();
                        for (i = 0; i < n; i++) {
                                char why[256];
                                long got = cm_archive_decode(chunk[i], len[i],
                                                             out, CODEC_MSGS,
                                                             why, sizeof(why));
                                long j;

                                if (got < 0)
                                        cm_error("decode: %s", why);
                                for (j = 0; j < got; j++)
                                        cm_message_release(&out[j]);
                        }
                        t2 = cm_mono_us();
                        for (i = 0; i < n; i++) {
                                bytes += len[i];
                                raw_chunks += !(chunk[i][1] & CM_ARCHIVE_ZSTD);
                                free(chunk[i]);
                        }
                        free(chunk);
                        free(len);
                        printf("{\"mode\":\"archive_codec\",\"chunk_msgs\":%zu,"
                               "\"level\":%d,\"messages\":%zu,"
                               "\"content_bytes_per_msg\":%.1f,"
                               "\"bytes_per_msg\":%.1f,\"raw_chunks\":%zu,"
                               "\"encode_us_per_msg\":%.3f,"
                               "\"decode_us_per_msg\":%.3f}\n",
                               k, levels[l], n * k, (double)raw / CODEC_MSGS,
                               (double)bytes / (double)(n * k), raw_chunks,
                               (double)(t1 - t0) / (double)(n * k),
                               (double)(t2 - t1) / (double)(n * k));
                        fflush(stdout);
                }
        }
        for (i = 0; i < CODEC_MSGS; i++)
                cm_message_release(&m[i]);
        free(m);
        free(out);
        gen_release(&g);
}

/* ------------------------------------------------------------------ */
/* 2. Redis, through the real fold path                                 */

/* Appends msgs[0..cnt) to user:default at offsets from *offset on. */
static int append_msgs(cm_store_t *st, const char *user, cm_message_t *msgs,
                       size_t cnt, int64_t *offset)
{
        cm_event_t *ev = cm_calloc(cnt, sizeof(*ev));
        cm_append_t *it = cm_calloc(cnt, sizeof(*it));
        char errstr[512];
        size_t i;
        int ret;

        for (i = 0; i < cnt; i++) {
                ev[i].type = CM_EVENT_MESSAGE;
                snprintf(ev[i].event_id, sizeof(ev[i].event_id), "%s-%lld",
                         user, (long long)*offset);
                snprintf(ev[i].user_id, sizeof(ev[i].user_id), "%s", user);
                snprintf(ev[i].conversation_id, sizeof(ev[i].conversation_id),
                         "default");
                ev[i].msg = msgs[i];
                it[i].ev = &ev[i];
                it[i].partition = 0;
                it[i].offset = (*offset)++;
                it[i].tokens = msgs[i].tokens;
                it[i].break_tokens = 1;
        }
        ret = cm_store_append_batch(st, it, cnt, errstr, sizeof(errstr));
        if (ret == -1)
                cm_error("append: %s", errstr);
        free(ev);
        free(it);
        return ret;
}

/* Builds the archive of one session of `archived` folded messages, as the
 * summarizer would: appends until the list holds one message more than
 * recent_verbatim + summarize_after (when ingest asks for a fold), then
 * folds all but the newest recent_verbatim. Returns 0, or -1 after
 * logging why. */
static int build_session(cm_store_t *st, const cm_config_t *cfg, chat_gen_t *g,
                         const char *user, long long archived)
{
        size_t keep = (size_t)cfg->recent_verbatim;
        size_t threshold = keep + (size_t)cfg->summarize_after;
        long long total = archived + (long long)keep, next = 0, folded = 0;
        int64_t offset = 1, left = 0;
        char errstr[512];

        while (folded < archived) {
                cm_message_t batch[256];
                cm_session_t s;
                size_t n = threshold + 1 - (size_t)left, i;
                long long rc;

                if ((long long)n > total - next)
                        n = (size_t)(total - next);
                if (n > sizeof(batch) / sizeof(batch[0]))
                        n = sizeof(batch) / sizeof(batch[0]);
                for (i = 0; i < n; i++)
                        gen_message(g, next++, &batch[i]);
                rc = append_msgs(st, user, batch, n, &offset);
                for (i = 0; i < n; i++)
                        cm_message_release(&batch[i]);
                if (rc == -1)
                        return -1;
                if (cm_store_load(st, user, "default", -1, 0, &s, errstr,
                                  sizeof(errstr)) == -1) {
                        cm_error("load: %s", errstr);
                        return -1;
                }
                if (s.msg_cnt <= keep) {
                        cm_session_release(&s);
                        cm_error("session '%s': nothing to fold", user);
                        return -1;
                }
                rc = cm_store_fold_commit(st, user, "default", s.summary_upto,
                                          s.msgs, s.msg_cnt - keep, "summary",
                                          &left, errstr, sizeof(errstr));
                cm_session_release(&s);
                if (rc < 0) {
                        cm_error("fold: %s",
                                 rc == CM_FOLD_MOVED ? "moved" : errstr);
                        return -1;
                }
                folded += rc;
        }
        return 0;
}

/* MEMORY USAGE (every element) and the chunks' bytes of an archive key. */
static int archive_usage(redisContext *rc, const char *key, long long *usage,
                         long long *bytes, long long *chunks)
{
        redisReply *r = redisCommand(rc, "MEMORY USAGE %s SAMPLES 0", key);
        size_t i;

        if (!r || r->type != REDIS_REPLY_INTEGER) {
                cm_error("MEMORY USAGE %s: %s", key,
                         r && r->type == REDIS_REPLY_ERROR ? r->str : "?");
                freeReplyObject(r);
                return -1;
        }
        *usage = r->integer;
        freeReplyObject(r);
        r = redisCommand(rc, "LRANGE %s 0 -1", key);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
                freeReplyObject(r);
                return -1;
        }
        *bytes = 0;
        for (i = 0; i < r->elements; i++)
                *bytes += (long long)r->element[i]->len;
        *chunks = (long long)r->elements;
        freeReplyObject(r);
        return 0;
}

static int redis_measure(const cm_config_t *cfg, const bench_opts_t *o)
{
        const char *p = o->sizes;
        cm_store_t *st = NULL;
        redisContext *rc = NULL;
        chat_gen_t g;
        char errstr[512];
        int ret = 1;

        gen_init(&g, 7);
        st = cm_store_new(cfg, errstr, sizeof(errstr));
        if (!st) {
                cm_error("%s", errstr);
                goto out;
        }
        /* The summarizer's threshold: the fold keeps the job mark while
         * more is left (irrelevant here, set as the summarizer does). */
        cm_store_set_compaction(st, cfg->recent_verbatim + cfg->summarize_after,
                                0);
        rc = redis_connect(cfg->redis_url, errstr, sizeof(errstr));
        if (!rc) {
                cm_error("%s", errstr);
                goto out;
        }
        while (*p) {
                char num[16];
                size_t l = strcspn(p, ",");
                long long n, i, usage_sum = 0, bytes_sum = 0, chunk_sum = 0;
                double per;

                if (l == 0 || l >= sizeof(num)) {
                        cm_error("bad --sizes '%s'", o->sizes);
                        goto out;
                }
                memcpy(num, p, l);
                num[l] = '\0';
                p += l + (p[l] == ',');
                if (cm_parse_int(num, 1, 1000000, &n) == -1) {
                        cm_error("bad --sizes '%s'", o->sizes);
                        goto out;
                }
                if (cfg->archive_max_messages > 0 &&
                    n > cfg->archive_max_messages)
                        cm_warn("size %lld is over archive.max_messages %d: "
                                "the archive keeps the newest ones",
                                n, cfg->archive_max_messages);
                for (i = 0; i < o->samples; i++) {
                        char user[128], key[512];
                        long long usage, bytes, chunks;

                        snprintf(user, sizeof(user), "%sa%lld-%lld", o->tag, n,
                                 i);
                        cm_info("archive of %lld messages, session %lld/%lld",
                                n, i + 1, o->samples);
                        if (build_session(st, cfg, &g, user, n) == -1)
                                goto out;
                        cm_store_key(st, key, sizeof(key), user, "default",
                                     "archive");
                        if (archive_usage(rc, key, &usage, &bytes, &chunks) ==
                            -1)
                                goto out;
                        usage_sum += usage;
                        bytes_sum += bytes;
                        chunk_sum += chunks;
                }
                per = (double)usage_sum / (double)o->samples;
                printf("{\"mode\":\"archive_memory\",\"archived\":%lld,"
                       "\"samples\":%lld,\"chunks\":%.1f,"
                       "\"memory_usage_bytes\":%.0f,\"bytes_per_msg\":%.1f,"
                       "\"chunk_bytes_per_msg\":%.1f,"
                       "\"gb_per_1m_sessions\":%.2f}\n",
                       n, o->samples, (double)chunk_sum / (double)o->samples,
                       per, per / (double)n,
                       (double)bytes_sum / (double)o->samples / (double)n,
                       per * 1e6 / 1e9);
                fflush(stdout);
        }
        ret = 0;
out:
        if (rc)
                redisFree(rc);
        cm_store_destroy(st);
        gen_release(&g);
        return ret;
}

int run_archive(const cm_config_t *cfg, const bench_opts_t *o)
{
        codec_measure();
        return redis_measure(cfg, o);
}
