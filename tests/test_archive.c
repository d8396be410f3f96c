/*
 * Unit tests for the archive's chunk codec (common/archive.c): round trips
 * of every field, raw against compressed payloads, and corrupt or
 * truncated chunks, which must give an error and never a crash or a
 * message that is not valid text (run under ASan: make SANITIZE=1).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "archive.h"
#include "text.h"
#include "util.h"

/* A small deterministic generator (xorshift64*), so that a failure can be
 * replayed. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 2685821657736338717ULL;
}

/* Message i of a test conversation: seq first + i (with a gap now and
 * then), ts growing with a step back now and then, text that repeats. */
static void make_msgs(cm_message_t *m, size_t cnt, int64_t first)
{
        static const char *const text[] = {
            "Hi, I'm Ann and I work as a nurse in Leeds.",
            "Nice to meet you, Ann! How long have you been a nurse?",
            "Twelve years now. I moved to night shifts on 2023-05-08.",
            "That sounds demanding. How do you keep your sleep regular?",
            "Blackout curtains, and a run at 7 pm before the shift starts.",
            "Caf\xc3\xa9 au lait, \xe6\x97\xa5\xe6\x9c\xac, \xf0\x9f\x8e\x89 "
            "and emoji are text too.",
            "",
        };
        int64_t seq = first, ts = 1683500000000LL;
        size_t i;

        for (i = 0; i < cnt; i++) {
                const char *t = text[i % (sizeof(text) / sizeof(text[0]))];

                memset(&m[i], 0, sizeof(m[i]));
                m[i].seq = seq;
                seq += (i % 5 == 4) ? 3 : 1;
                m[i].ts = i % 7 == 3 ? 0 : ts;
                ts += (i % 4 == 2) ? -1500 : 61000;
                m[i].role = (cm_role_t)(i % 3);
                m[i].tokens = i % 6 == 5 ? -1 : (int)(i * 3 + 1);
                m[i].content = cm_strdup(t);
                m[i].content_len = strlen(t);
        }
}

static void release_msgs(cm_message_t *m, size_t cnt)
{
        size_t i;

        for (i = 0; i < cnt; i++)
                cm_message_release(&m[i]);
}

static void assert_same(const cm_message_t *a, const cm_message_t *b,
                        size_t cnt)
{
        size_t i;

        for (i = 0; i < cnt; i++) {
                assert_int_equal(a[i].seq, b[i].seq);
                assert_int_equal(a[i].ts, b[i].ts);
                assert_int_equal(a[i].role, b[i].role);
                assert_int_equal(a[i].tokens, b[i].tokens);
                assert_int_equal(a[i].content_len, b[i].content_len);
                assert_memory_equal(a[i].content, b[i].content,
                                    a[i].content_len);
                assert_int_equal(b[i].content[b[i].content_len], '\0');
                assert_null(b[i].event_id);
        }
}

/* Encodes m[0..cnt), checks the header, decodes and compares. Returns the
 * header's flags. */
static unsigned round_trip(const cm_message_t *m, size_t cnt)
{
        cm_archive_header_t h;
        cm_message_t *out = cm_calloc(cnt, sizeof(*out));
        char err[256];
        size_t len;
        char *chunk = cm_archive_encode(m, cnt, CM_ARCHIVE_LEVEL, &len);
        long n;

        assert_int_equal(
            cm_archive_header_read(chunk, len, &h, err, sizeof(err)), 0);
        assert_int_equal(h.count, cnt);
        assert_int_equal(h.first_seq, m[0].seq);
        assert_int_equal(h.last_seq, m[cnt - 1].seq);
        assert_int_equal(h.base, 0);
        n = cm_archive_decode(chunk, len, out, cnt, err, sizeof(err));
        if (n < 0)
                fail_msg("decode: %s", err);
        assert_int_equal(n, cnt);
        assert_same(m, out, cnt);
        release_msgs(out, cnt);
        free(out);
        free(chunk);
        return h.flags;
}

static void test_round_trip(void **state)
{
        cm_message_t m[200];
        size_t sizes[] = {1, 2, 5, 64, 200}, i;

        (void)state;
        for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                make_msgs(m, sizes[i], 1 + (int64_t)i * 1000);
                round_trip(m, sizes[i]);
                release_msgs(m, sizes[i]);
        }
        /* Extremes: seq 0 and huge, a negative ts, a 64 KiB content. */
        make_msgs(m, 3, 0);
        m[1].seq = INT64_MAX - 1;
        m[2].seq = INT64_MAX;
        m[1].ts = -5;
        free(m[2].content);
        m[2].content = cm_malloc(65537);
        memset(m[2].content, 'a', 65536);
        m[2].content[65536] = '\0';
        m[2].content_len = 65536;
        round_trip(m, 3);
        release_msgs(m, 3);
}

static void test_raw_or_compressed(void **state)
{
        cm_message_t m[64];
        size_t i, j;

        (void)state;
        /* Chat text compresses. */
        make_msgs(m, 64, 1);
        assert_int_equal(round_trip(m, 64), CM_ARCHIVE_ZSTD);
        release_msgs(m, 64);
        /* Random letters in one short message do not: stored raw. */
        make_msgs(m, 1, 1);
        free(m[0].content);
        m[0].content = cm_malloc(41);
        for (j = 0; j < 40; j++)
                m[0].content[j] = (char)('!' + rng() % 90);
        m[0].content[40] = '\0';
        m[0].content_len = 40;
        assert_int_equal(round_trip(m, 1), 0);
        release_msgs(m, 1);
        /* Many random messages neither. */
        make_msgs(m, 20, 1);
        for (i = 0; i < 20; i++) {
                for (j = 0; j < m[i].content_len; j++)
                        m[i].content[j] = (char)('!' + rng() % 90);
        }
        round_trip(m, 20);
        release_msgs(m, 20);
}

/* Decoding buf[0..len) must fail with a reason, or succeed with valid
 * messages; never crash. Returns the decode's result. */
static long decode_any(const char *buf, size_t len)
{
        cm_message_t out[300];
        char err[256] = "";
        size_t i;
        long n = cm_archive_decode(buf, len, out, 300, err, sizeof(err));

        if (n < 0) {
                assert_true(err[0] != '\0');
                return n;
        }
        for (i = 0; i < (size_t)n; i++) {
                assert_true(cm_utf8_valid(out[i].content, out[i].content_len));
                assert_null(memchr(out[i].content, '\0', out[i].content_len));
                cm_message_release(&out[i]);
        }
        return n;
}

static void test_truncated(void **state)
{
        cm_message_t m[64];
        size_t len, cut, cnt;
        int level;

        (void)state;
        for (level = 0; level < 2; level++) {
                char *chunk;

                cnt = level ? 64 : 1;
                make_msgs(m, cnt, 1);
                if (!level) /* one message of 8 bytes: stored raw */
                        m[0].content[8] = '\0', m[0].content_len = 8;
                chunk = cm_archive_encode(m, cnt, CM_ARCHIVE_LEVEL, &len);
                for (cut = 0; cut < len; cut++) {
                        /* a copy of exactly cut bytes, for ASan */
                        char *p = cm_malloc(cut ? cut : 1);

                        memcpy(p, chunk, cut);
                        assert_int_equal(decode_any(p, cut), -1);
                        free(p);
                }
                assert_int_equal(decode_any(chunk, len), (long)cnt);
                free(chunk);
                release_msgs(m, cnt);
        }
}

/* Writes v little-endian into vlen bytes of a copy of chunk at off, and
 * expects an error. */
static void expect_bad(const char *chunk, size_t len, size_t off, uint64_t v,
                       size_t vlen, const char *why)
{
        char *p = cm_malloc(len);
        char err[256] = "";
        cm_message_t out[300];
        size_t i;

        memcpy(p, chunk, len);
        for (i = 0; i < vlen; i++)
                p[off + i] = (char)(v >> (8 * i));
        if (cm_archive_decode(p, len, out, 300, err, sizeof(err)) != -1)
                fail_msg("decoded a chunk with %s", why);
        assert_true(err[0] != '\0');
        free(p);
}

static void test_corrupt(void **state)
{
        /* Header fields rewritten in a 64-message chunk of seqs 10..97. */
        static const struct {
                size_t off, size;
                uint64_t v;
                const char *why;
        } bad[] = {
            {0, 1, 2, "an unknown version"},
            {1, 1, 0x80, "unknown flags"},
            {2, 2, 0, "a count of 0"},
            {2, 2, 63, "a count one short"},
            {2, 2, 65, "a count one over"},
            {4, 4, CM_ARCHIVE_RAW_MAX + 1, "a raw length over the limit"},
            {4, 4, 100, "a raw length the frame lacks"},
            {8, 8, 11, "a first seq the records lack"},
            {16, 8, 5, "a last seq before the first"},
            {16, 8, 1000, "a last seq the records lack"},
            {1, 1, 0, "a zstd frame read as raw"},
        };
        cm_message_t m[64], few[2];
        cm_archive_header_t h;
        size_t len, i, failed = 0;
        char *chunk, err[256];

        (void)state;
        make_msgs(m, 64, 10);
        chunk = cm_archive_encode(m, 64, CM_ARCHIVE_LEVEL, &len);
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                expect_bad(chunk, len, bad[i].off, bad[i].v, bad[i].size,
                           bad[i].why);
        /* Room for fewer messages than the chunk holds. */
        assert_int_equal(
            cm_archive_decode(chunk, len, few, 2, err, sizeof(err)), -1);
        assert_int_equal(
            cm_archive_header_read(chunk, len, &h, err, sizeof(err)), 0);
        /* Every single bit flipped, past the header: an error or valid
         * messages, never a crash. */
        for (i = CM_ARCHIVE_HEADER_SIZE * 8; i < len * 8; i++) {
                char *p = cm_malloc(len);

                memcpy(p, chunk, len);
                p[i / 8] ^= (char)(1 << (i % 8));
                if (decode_any(p, len) < 0)
                        failed++;
                free(p);
        }
        assert_true(failed > 0);
        free(chunk);
        release_msgs(m, 64);

        /* A raw chunk with damaged records: lengths past the end, a role
         * out of range, bytes that are not UTF-8, a NUL, bytes left over. */
        make_msgs(m, 2, 1);
        m[0].content[2] = '\0';
        m[0].content_len = 2;
        m[1].content[3] = '\0';
        m[1].content_len = 3;
        chunk = cm_archive_encode(m, 2, CM_ARCHIVE_LEVEL, &len);
        assert_int_equal(
            cm_archive_header_read(chunk, len, &h, err, sizeof(err)), 0);
        assert_int_equal(h.flags, 0);
        /* payload: seq deltas (2 bytes), ts (2 x up to 10), tokens (2),
         * len|role (2), contents (5): the contents are the last 5 bytes */
        expect_bad(chunk, len, len - 5, 0xff, 1, "invalid UTF-8");
        expect_bad(chunk, len, len - 1, 0, 1, "a NUL in a content");
        expect_bad(chunk, len, len - 6, 3 << 2 | 3, 1, "a role out of range");
        expect_bad(chunk, len, len - 6, 40 << 2, 1, "a content past the end");
        expect_bad(chunk, len, len - 6, 2 << 2, 1, "a byte left over");
        free(chunk);
        release_msgs(m, 2);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_round_trip),
            cmocka_unit_test(test_raw_or_compressed),
            cmocka_unit_test(test_truncated),
            cmocka_unit_test(test_corrupt),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
