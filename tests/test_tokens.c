/*
 * Unit tests for tokens: the exact BPE tokenizers (cl100k_base,
 * o200k_base) and "estimate".
 *
 * With CHATMEM_TOKENS_REF set to a file made by
 * tests/test_e2e_tokenizer_exact.sh (lines "label<TAB>hex bytes<TAB>
 * cl100k ids<TAB>o200k ids", ids from js-tiktoken), test_reference checks
 * every string against it; without it, that test is skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include "tokens.h"
#include "text.h"
#include "util.h"

static const cm_tokenizer_t *get(const char *name)
{
        const cm_tokenizer_t *tk = NULL;
        char errstr[512];

        if (cm_tokenizer_get(name, &tk, errstr, sizeof(errstr)) == -1)
                fail_msg("%s", errstr);
        assert_non_null(tk);
        return tk;
}

/* Encodes s and checks the ids are want[0..want_cnt). */
static void assert_ids(const char *name, const char *s, size_t len,
                       const uint32_t *want, size_t want_cnt)
{
        const cm_tokenizer_t *tk = get(name);
        uint32_t *ids = NULL;
        size_t cnt = 0, i;

        assert_int_equal(cm_tokenizer_encode(tk, s, len, &ids, &cnt), 0);
        assert_int_equal(cnt, want_cnt);
        for (i = 0; i < cnt; i++)
                assert_int_equal(ids[i], want[i]);
        assert_int_equal(cm_tokenizer_count(tk, s, len), (int)want_cnt);
        free(ids);
}

/* The ids of s, encoded; *cnt set. Caller frees. */
static uint32_t *encode(const char *name, const char *s, size_t len,
                        size_t *cnt)
{
        uint32_t *ids = NULL;

        assert_int_equal(cm_tokenizer_encode(get(name), s, len, &ids, cnt), 0);
        return ids;
}

/* The bytes of ids, concatenated, equal s[0..len). */
static int round_trips(const cm_tokenizer_t *tk, const uint32_t *ids,
                       size_t cnt, const char *s, size_t len)
{
        size_t at = 0, i;

        for (i = 0; i < cnt; i++) {
                size_t n = 0;
                const char *p = cm_tokenizer_token(tk, ids[i], &n);

                if (!p || at + n > len || memcmp(s + at, p, n))
                        return 0;
                at += n;
        }
        return at == len;
}

/* Runs first, in a child, before this process loads any data. */
static void test_data_dir_env(void **state)
{
        pid_t pid;
        int status;

        (void)state;
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                const cm_tokenizer_t *tk = NULL;
                char errstr[512];
                int rc;

                setenv("CHATMEM_TOKENIZER_DIR", "/nonexistent/chatmem", 1);
                rc = cm_tokenizer_get("cl100k_base", &tk, errstr,
                                      sizeof(errstr));
                _exit(rc == -1 && strstr(errstr, "/nonexistent/chatmem") &&
                              strstr(errstr, "cl100k_base.bin")
                          ? 0
                          : 1);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* Several threads load and count at once; all agree with one thread. */
#define THREADS 4
static const char thread_text[] =
    "Hello, world! It's 2024 and we're counting tokens in \xe6\x97\xa5\xe6"
    "\x9c\xac\xe8\xaa\x9e and emoji \xf0\x9f\x98\x80 too.\n\n  indented\n";

static void *count_many(void *arg)
{
        int *out = arg;
        int i;

        out[0] = out[1] = 0;
        for (i = 0; i < 2000; i++) {
                out[0] += cm_tokenizer_count(get("cl100k_base"), thread_text,
                                             sizeof(thread_text) - 1);
                out[1] += cm_tokenizer_count(get("o200k_base"), thread_text,
                                             sizeof(thread_text) - 1);
        }
        return NULL;
}

static void test_threads(void **state)
{
        pthread_t th[THREADS];
        int got[THREADS][2];
        int i, cl, o2;

        (void)state;
        for (i = 0; i < THREADS; i++)
                assert_int_equal(
                    pthread_create(&th[i], NULL, count_many, got[i]), 0);
        for (i = 0; i < THREADS; i++)
                assert_int_equal(pthread_join(th[i], NULL), 0);
        cl = cm_tokenizer_count(get("cl100k_base"), thread_text,
                                sizeof(thread_text) - 1);
        o2 = cm_tokenizer_count(get("o200k_base"), thread_text,
                                sizeof(thread_text) - 1);
        assert_true(cl > 10 && o2 > 10);
        for (i = 0; i < THREADS; i++) {
                assert_int_equal(got[i][0], 2000 * cl);
                assert_int_equal(got[i][1], 2000 * o2);
        }
}

/* Well-known ids (tiktoken's README and documentation). */
static void test_known(void **state)
{
        static const uint32_t hello_cl[] = {15339, 1917};
        static const uint32_t hello_o2[] = {24912, 2375};
        static const uint32_t great[] = {83, 1609, 5963, 374, 2294, 0};

        (void)state;
        assert_ids("cl100k_base", "hello world", 11, hello_cl, 2);
        assert_ids("o200k_base", "hello world", 11, hello_o2, 2);
        assert_ids("cl100k_base", "tiktoken is great!", 18, great, 6);
}

static void test_empty(void **state)
{
        static const char *const names[] = {"cl100k_base", "o200k_base",
                                            "estimate"};
        uint32_t *ids = (uint32_t *)1;
        size_t cnt = 1, i;

        (void)state;
        for (i = 0; i < 3; i++)
                assert_int_equal(cm_tokenizer_count(get(names[i]), "", 0), 0);
        assert_int_equal(
            cm_tokenizer_encode(get("o200k_base"), "", 0, &ids, &cnt), 0);
        assert_null(ids);
        assert_int_equal(cnt, 0);
}

/* Special tokens are plain text: "<|endoftext|>" is not id 100257. */
static void test_special_is_text(void **state)
{
        static const char s[] = "<|endoftext|>";
        uint32_t *ids;
        size_t cnt, i;

        (void)state;
        ids = encode("cl100k_base", s, sizeof(s) - 1, &cnt);
        assert_true(cnt > 1);
        for (i = 0; i < cnt; i++)
                assert_true(ids[i] < 100257);
        assert_true(
            round_trips(get("cl100k_base"), ids, cnt, s, sizeof(s) - 1));
        free(ids);
}

/* Each maximal ill-formed subsequence is one U+FFFD (WHATWG). */
static void test_invalid_utf8(void **state)
{
        static const struct {
                const char *bad, *good;
        } cases[] = {
            {"\xff", "\xef\xbf\xbd"},
            {"a\xc0\x80z", "a\xef\xbf\xbd\xef\xbf\xbdz"},
            {"\xe2\x82 x", "\xef\xbf\xbd x"},
            {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
            {"\xf0\x9f\x98", "\xef\xbf\xbd"},
            {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf"
                                 "\xbd"},
            {"it\x80's", "it\xef\xbf\xbd's"},
        };
        static const char *const names[] = {"cl100k_base", "o200k_base"};
        size_t c, e, i, cnt_bad, cnt_good;

        (void)state;
        for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
                for (e = 0; e < 2; e++) {
                        uint32_t *bad = encode(names[e], cases[c].bad,
                                               strlen(cases[c].bad), &cnt_bad);
                        uint32_t *good =
                            encode(names[e], cases[c].good,
                                   strlen(cases[c].good), &cnt_good);

                        assert_int_equal(cnt_bad, cnt_good);
                        for (i = 0; i < cnt_bad; i++)
                                assert_int_equal(bad[i], good[i]);
                        free(bad);
                        free(good);
                }
        }
}

/* 100 KB pieces merge in O(n log n) and still round-trip. */
static void test_long_runs(void **state)
{
        static const char *const units[] = {"a",  " ", "\xe4\xb8\xad",
                                            "ab", "-", "7"};
        static const char *const names[] = {"cl100k_base", "o200k_base"};
        size_t u, e, len = 100 * 1024;
        char *s = cm_malloc(len);

        (void)state;
        for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
                size_t ul = strlen(units[u]), i;
                size_t n = len / ul * ul;

                for (i = 0; i < n; i++)
                        s[i] = units[u][i % ul];
                for (e = 0; e < 2; e++) {
                        const cm_tokenizer_t *tk = get(names[e]);
                        int64_t t0 = cm_mono_us();
                        size_t cnt;
                        uint32_t *ids = encode(names[e], s, n, &cnt);

                        assert_true(cnt > 0 && cnt < n);
                        assert_int_equal(cm_tokenizer_count(tk, s, n),
                                         (int)cnt);
                        assert_true(round_trips(tk, ids, cnt, s, n));
                        /* Generous even under ASan; quadratic takes
                         * minutes. */
                        assert_true(cm_mono_us() - t0 < 5 * 1000 * 1000);
                        free(ids);
                }
        }
        free(s);
}

static void test_estimate(void **state)
{
        const cm_tokenizer_t *tk = get("estimate");
        uint32_t *ids = (uint32_t *)1;
        size_t cnt = 1, len = 0;

        (void)state;
        assert_string_equal(cm_tokenizer_name(tk), "estimate");
        assert_int_equal(cm_tokenizer_count(tk, "abcd", 4), 1);
        assert_int_equal(cm_tokenizer_count(tk, "abcde", 5), 2);
        /* Code points, not bytes. */
        assert_int_equal(cm_tokenizer_count(tk, "\xc3\xa9\xc3\xa9\xc3\xa9", 6),
                         1);
        assert_int_equal(cm_tokenizer_encode(tk, "abc", 3, &ids, &cnt), -1);
        assert_null(ids);
        assert_int_equal(cnt, 0);
        assert_null(cm_tokenizer_token(tk, 0, &len));
}

static void test_unknown(void **state)
{
        const cm_tokenizer_t *tk = NULL;
        char errstr[256];

        (void)state;
        assert_int_equal(cm_tokenizer_get("p50k", &tk, errstr, sizeof(errstr)),
                         -1);
        assert_non_null(strstr(errstr, "cl100k_base"));
        assert_int_equal(cm_tokenizer_get(NULL, &tk, errstr, sizeof(errstr)),
                         -1);
        assert_null(tk);
        assert_string_equal(cm_tokenizer_name(get("o200k_base")), "o200k_base");
        assert_null(
            cm_tokenizer_token(get("cl100k_base"), 100256, &(size_t){0}));
        assert_null(
            cm_tokenizer_token(get("o200k_base"), 199998, &(size_t){0}));
}

/* ---- the js-tiktoken reference ---------------------------------------- */

static int hexval(int c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* Parses space-separated ids from s (up to end) into *ids. */
static size_t parse_ids(const char *s, const char *end, uint32_t **ids)
{
        size_t cnt = 0, cap = 64;
        char *next;

        *ids = cm_malloc(cap * sizeof(**ids));
        while (s < end) {
                unsigned long v = strtoul(s, &next, 10);

                if (next == s)
                        fail_msg("bad reference ids near '%.20s'", s);
                if (cnt == cap) {
                        cap *= 2;
                        *ids = cm_realloc(*ids, cap * sizeof(**ids));
                }
                (*ids)[cnt++] = (uint32_t)v;
                s = next;
                while (s < end && *s == ' ')
                        s++;
        }
        return cnt;
}

static void show_mismatch(size_t line, const char *label, const char *name,
                          const char *text, size_t len, const uint32_t *want,
                          size_t want_cnt, const uint32_t *got, size_t got_cnt)
{
        size_t i, at = 0;

        while (at < want_cnt && at < got_cnt && want[at] == got[at])
                at++;
        printf("MISMATCH line %zu (%s) %s, %zu bytes: \"", line, label, name,
               len);
        for (i = 0; i < len && i < 160; i++) {
                unsigned char c = (unsigned char)text[i];

                if (c >= 0x20 && c < 0x7f && c != '\\')
                        putchar(c);
                else
                        printf("\\x%02x", c);
        }
        printf("%s\"\n  first difference at id %zu; want %zu ids:",
               len > 160 ? "..." : "", at, want_cnt);
        for (i = at; i < want_cnt && i < at + 12; i++)
                printf(" %u", want[i]);
        printf("\n  got %zu ids:", got_cnt);
        for (i = at; i < got_cnt && i < at + 12; i++)
                printf(" %u", got[i]);
        printf("\n");
}

static void test_reference(void **state)
{
        static const char *const names[] = {"cl100k_base", "o200k_base"};
        const char *path = getenv("CHATMEM_TOKENS_REF");
        FILE *fp;
        char *line = NULL;
        size_t line_cap = 0, lineno = 0, strings = 0, tokens = 0;
        size_t mismatches = 0;
        char *bytes = NULL;
        ssize_t n;

        (void)state;
        if (!path || !*path) {
                skip();
                return;
        }
        fp = fopen(path, "r");
        if (!fp)
                fail_msg("cannot open '%s'", path);
        while ((n = getline(&line, &line_cap, fp)) > 0) {
                char *field[4], *p = line, *end = line + n;
                size_t len = 0, f, e, i;

                lineno++;
                if (end[-1] == '\n')
                        *--end = '\0';
                for (f = 0; f < 4; f++) {
                        field[f] = p;
                        p = memchr(p, f < 3 ? '\t' : '\0', end + 1 - p);
                        if (!p)
                                fail_msg("line %zu: not 4 fields", lineno);
                        *p++ = '\0';
                }
                bytes = cm_realloc(bytes, strlen(field[1]) / 2 + 1);
                for (i = 0; field[1][i] && field[1][i + 1]; i += 2) {
                        int hi = hexval(field[1][i]),
                            lo = hexval(field[1][i + 1]);

                        if (hi < 0 || lo < 0)
                                fail_msg("line %zu: bad hex", lineno);
                        bytes[len++] = (char)(hi << 4 | lo);
                }
                for (e = 0; e < 2; e++) {
                        const cm_tokenizer_t *tk = get(names[e]);
                        uint32_t *want = NULL, *got = NULL;
                        size_t want_cnt, got_cnt = 0;

                        want_cnt = parse_ids(
                            field[2 + e], field[2 + e] + strlen(field[2 + e]),
                            &want);
                        assert_int_equal(
                            cm_tokenizer_encode(tk, bytes, len, &got, &got_cnt),
                            0);
                        if (got_cnt != want_cnt ||
                            (got_cnt &&
                             memcmp(got, want, got_cnt * sizeof(*got))) ||
                            cm_tokenizer_count(tk, bytes, len) !=
                                (int)got_cnt ||
                            (cm_utf8_valid(bytes, len) &&
                             !round_trips(tk, got, got_cnt, bytes, len))) {
                                if (mismatches++ < 10)
                                        show_mismatch(
                                            lineno, field[0], names[e], bytes,
                                            len, want, want_cnt, got, got_cnt);
                        }
                        tokens += want_cnt;
                        free(want);
                        free(got);
                }
                strings++;
        }
        fclose(fp);
        free(line);
        free(bytes);
        printf("reference: %zu strings x 2 encodings, %zu tokens, %zu "
               "mismatches\n",
               strings, tokens, mismatches);
        assert_true(strings >= 2000);
        assert_int_equal(mismatches, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_data_dir_env),
            cmocka_unit_test(test_threads),
            cmocka_unit_test(test_known),
            cmocka_unit_test(test_empty),
            cmocka_unit_test(test_special_is_text),
            cmocka_unit_test(test_invalid_utf8),
            cmocka_unit_test(test_long_runs),
            cmocka_unit_test(test_estimate),
            cmocka_unit_test(test_unknown),
            cmocka_unit_test(test_reference),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
