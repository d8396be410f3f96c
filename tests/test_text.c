/*
 * Unit tests for text: the UTF-8 decoder and validator, the repair policy
 * (WHATWG / Unicode maximal subparts), floor and ceil, word characters, the
 * locale-free ctype and FNV-1a.
 */
#include <ctype.h>
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "text.h"
#include "util.h"

#define FFFD CM_UTF8_REPLACEMENT

typedef struct bytes {
        const char *s;
        size_t len;
} bytes_t;

#define B(lit)                                                                 \
        {                                                                      \
                lit, sizeof(lit) - 1                                           \
        }

static void test_decode(void **state)
{
        static const struct {
                bytes_t in;
                size_t n;
                uint32_t cp;
        } cases[] = {
            {B("A"), 1, 0x41},
            {B("\x00"), 1, 0},
            {B("\x7f"), 1, 0x7f},
            {B("\xc2\x80"), 2, 0x80},
            {B("\xdf\xbf"), 2, 0x7ff},
            {B("\xe0\xa0\x80"), 3, 0x800},
            {B("\xe2\x82\xac"), 3, 0x20ac},
            {B("\xed\x9f\xbf"), 3, 0xd7ff},
            {B("\xee\x80\x80"), 3, 0xe000},
            {B("\xef\xbf\xbf"), 3, 0xffff},
            {B("\xf0\x90\x80\x80"), 4, 0x10000},
            {B("\xf0\x9f\x98\x80"), 4, 0x1f600},
            {B("\xf4\x8f\xbf\xbf"), 4, 0x10ffff},
            /* ill-formed: the length is that of the maximal subpart */
            {B("\x80"), 1, CM_UTF8_BAD},
            {B("\xbf"), 1, CM_UTF8_BAD},
            {B("\xc0\x80"), 1, CM_UTF8_BAD},         /* overlong NUL */
            {B("\xc1\xbf"), 1, CM_UTF8_BAD},         /* overlong */
            {B("\xe0\x80\x80"), 1, CM_UTF8_BAD},     /* overlong */
            {B("\xe0\x9f\xbf"), 1, CM_UTF8_BAD},     /* overlong */
            {B("\xf0\x8f\xbf\xbf"), 1, CM_UTF8_BAD}, /* overlong */
            {B("\xed\xa0\x80"), 1, CM_UTF8_BAD},     /* U+D800 */
            {B("\xed\xbf\xbf"), 1, CM_UTF8_BAD},     /* U+DFFF */
            {B("\xf4\x90\x80\x80"), 1, CM_UTF8_BAD}, /* U+110000 */
            {B("\xf5\x80\x80\x80"), 1, CM_UTF8_BAD},
            {B("\xff"), 1, CM_UTF8_BAD},
            {B("\xe2\x82"), 2, CM_UTF8_BAD},      /* truncated */
            {B("\xe2\x82x"), 2, CM_UTF8_BAD},     /* cut short */
            {B("\xf0\x9f\x98"), 3, CM_UTF8_BAD},  /* truncated */
            {B("\xf0\x9f\x98 "), 3, CM_UTF8_BAD}, /* cut short */
            {B("\xc3"), 1, CM_UTF8_BAD},          /* truncated */
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint32_t cp = 12345;
                size_t n = cm_utf8_decode(cases[i].in.s, cases[i].in.len, &cp);

                print_message("case %zu\n", i);
                assert_int_equal(n, cases[i].n);
                assert_int_equal(cp, cases[i].cp);
        }
}

/* The decoder never reads past len: a valid sequence cut by len is bad. */
static void test_decode_bounded(void **state)
{
        const char *s = "\xf0\x9f\x98\x80";
        uint32_t cp;
        size_t k;

        (void)state;
        for (k = 1; k < 4; k++) {
                assert_int_equal(cm_utf8_decode(s, k, &cp), k);
                assert_int_equal(cp, CM_UTF8_BAD);
        }
        assert_int_equal(cm_utf8_decode(s, 4, &cp), 4);
        assert_int_equal(cp, 0x1f600);
}

static void test_valid(void **state)
{
        static const struct {
                bytes_t in;
                size_t prefix; /* offset of the first bad byte */
        } cases[] = {
            {B(""), 0},
            {B("hello"), 5},
            {B("caf\xc3\xa9"), 5},
            {B("\x00"), 1},
            {B("\xf4\x8f\xbf\xbf"), 4},
            {B("caf\xc3"), 3},               /* truncated at the end */
            {B("ab\xc0\x80"), 2},            /* overlong */
            {B("ab\xe0\x80\x80"), 2},        /* overlong */
            {B("ab\xf0\x80\x80\x80"), 2},    /* overlong */
            {B("x\xed\xa0\x80y"), 1},        /* surrogate */
            {B("x\xed\xb0\x80y"), 1},        /* surrogate */
            {B("xyz\xf4\x90\x80\x80"), 3},   /* above U+10FFFF */
            {B("\xf8\x88\x80\x80\x80"), 0},  /* 5-byte form */
            {B("\x80"), 0},                  /* stray continuation */
            {B("0123456789abcdef\xff"), 16}, /* after the ASCII skip */
            {B("01234567\xc3\xa9"
               "89\xe2\x82"),
             12},
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                print_message("case %zu\n", i);
                assert_int_equal(
                    cm_utf8_valid_prefix(cases[i].in.s, cases[i].in.len),
                    cases[i].prefix);
                assert_int_equal(cm_utf8_valid(cases[i].in.s, cases[i].in.len),
                                 cases[i].prefix == cases[i].in.len);
        }
}

static void expect_repair(bytes_t in, bytes_t want)
{
        cm_buf_t b = CM_BUF_INIT;

        cm_utf8_repair(&b, in.s, in.len);
        assert_int_equal(b.len, want.len);
        assert_memory_equal(b.buf, want.s, b.len);
        assert_int_equal(b.buf[b.len], '\0');
        assert_true(cm_utf8_valid(b.buf, b.len));
        cm_buf_release(&b);
}

/* Each maximal subpart of an ill-formed sequence is one U+FFFD, as the
 * WHATWG decoder (and Python's "replace") gives. */
static void test_repair_whatwg(void **state)
{
        static const struct {
                bytes_t in;
                bytes_t want;
        } cases[] = {
            /* Unicode 15, chapter 3.9, table 3-8 */
            {B("\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64"),
             B("a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d")},
            {B("\xf0\x80\x80"), B(FFFD FFFD FFFD)}, /* F0 wants 90..BF */
            {B("\xe0\x80"), B(FFFD FFFD)},          /* E0 wants A0..BF */
            {B("\xed\xa0\x80"), B(FFFD FFFD FFFD)}, /* surrogate */
            {B("\xf4\x90\x80\x80"), B(FFFD FFFD FFFD FFFD)},
            {B("\xf8\x88\x80\x80\x80"), B(FFFD FFFD FFFD FFFD FFFD)},
            {B("\xc0\xaf"), B(FFFD FFFD)},
            {B("\xe2\x82 x"), B(FFFD " x")},
            {B("\xf0\x9f\x98"), B(FFFD)},
            {B("\xef\xbf"), B(FFFD)},
            {B("\xff"), B(FFFD)},
            {B("it\x80's"), B("it" FFFD "'s")},
            {B("a\xc3"), B("a" FFFD)},
            {B("\xc3\xc3\xa9"), B(FFFD "\xc3\xa9")},
            {B("\xe2\x82\xac"), B("\xe2\x82\xac")},
            {B("plain"), B("plain")},
            {B(""), B("")},
            {B("\x00z"), B("\x00z")},
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                print_message("case %zu\n", i);
                expect_repair(cases[i].in, cases[i].want);
        }
}

/* Random bytes: the repair is valid UTF-8, keeps valid input as it is, and
 * is the same whether done at once or after any cut between characters. */
static void test_repair_random(void **state)
{
        static const unsigned char pool[] = {
            'a',  ' ',  0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf,
            0xe0, 0xe1, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xff};
        unsigned int seed = 42;
        char in[24];
        int round;

        (void)state;
        for (round = 0; round < 20000; round++) {
                cm_buf_t once = CM_BUF_INIT, twice = CM_BUF_INIT;
                size_t len = (size_t)(rand_r(&seed) % sizeof(in));
                size_t k;

                for (k = 0; k < len; k++)
                        in[k] = (char)pool[rand_r(&seed) % sizeof(pool)];
                cm_utf8_repair(&once, in, len);
                assert_true(cm_utf8_valid(once.buf, once.len));
                if (cm_utf8_valid(in, len)) {
                        assert_int_equal(once.len, len);
                        assert_memory_equal(once.buf, in, len);
                }
                /* Repairing the repair changes nothing. */
                cm_utf8_repair(&twice, once.buf, once.len);
                assert_int_equal(twice.len, once.len);
                assert_memory_equal(twice.buf, once.buf, once.len);
                cm_buf_release(&once);
                cm_buf_release(&twice);
        }
}

static void test_floor_ceil(void **state)
{
        /* a € b 😀 c: bytes 0 | 1 2 3 | 4 | 5 6 7 8 | 9 */
        const char *s = "a\xe2\x82\xac"
                        "b\xf0\x9f\x98\x80"
                        "c";
        static const size_t floor_of[] = {0, 1, 1, 1, 4, 5, 5, 5, 5, 9, 10};
        static const size_t ceil_of[] = {0, 1, 4, 4, 4, 5, 9, 9, 9, 9, 10};
        size_t len = strlen(s);
        size_t i;

        (void)state;
        assert_int_equal(len, 10);
        for (i = 0; i <= len; i++) {
                print_message("offset %zu\n", i);
                assert_int_equal(cm_utf8_floor(s, i), floor_of[i]);
                assert_int_equal(cm_utf8_ceil(s, len, i), ceil_of[i]);
        }
        /* a cut inside the last character, at the end of the buffer */
        assert_int_equal(cm_utf8_ceil(s, 8, 6), 8);
        assert_int_equal(cm_utf8_floor("", 0), 0);
        assert_int_equal(cm_utf8_ceil("", 0, 0), 0);
}

static void test_word_char(void **state)
{
        static const struct {
                bytes_t in;
                size_t want;
        } cases[] = {
            {B("a"), 1},
            {B("Z"), 1},
            {B("7"), 1},
            {B("_"), 0},
            {B(" "), 0},
            {B("'"), 0},
            {B("\xc3\xa9"), 2},         /* é */
            {B("\xe4\xb8\xad"), 3},     /* 中 */
            {B("\xf0\x9f\x98\x80"), 4}, /* 😀 */
            {B("\xc2\xa0"), 0},         /* no-break space */
            {B("\xc2\xbf"), 0},         /* ¿ */
            {B("\xc3\x80"), 2},         /* À */
            {B("\xe2\x80\x99"), 0},     /* ’ */
            {B("\xe2\x81\xaf"), 0},     /* U+206F */
            {B("\xe2\x82\xac"), 3},     /* € (U+20AC) */
            {B("\xe3\x80\x81"), 0},     /* 、 */
            {B("\xe3\x81\x82"), 3},     /* あ */
            {B("\x80"), 0},             /* stray byte */
            {B("\xc3"), 0},             /* truncated */
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                print_message("case %zu\n", i);
                assert_int_equal(
                    cm_text_word_char(cases[i].in.s, cases[i].in.len),
                    cases[i].want);
        }
}

/* The ASCII classes are those of the C locale; bytes >= 0x80, as unsigned
 * or as negative chars, are in none, whatever the locale. */
static void test_ctype(void **state)
{
        int c;

        (void)state;
        setlocale(LC_ALL, "C");
        for (c = 0; c < 0x80; c++) {
                print_message("byte 0x%02x\n", c);
                assert_int_equal(cm_isspace(c), !!isspace(c));
                assert_int_equal(cm_isdigit(c), !!isdigit(c));
                assert_int_equal(cm_isxdigit(c), !!isxdigit(c));
                assert_int_equal(cm_isalpha(c), !!isalpha(c));
                assert_int_equal(cm_isalnum(c), !!isalnum(c));
                assert_int_equal(cm_isupper(c), !!isupper(c));
                assert_int_equal(cm_islower(c), !!islower(c));
                assert_int_equal(cm_ispunct(c), !!ispunct(c));
                assert_int_equal(cm_iscntrl(c), !!iscntrl(c));
                assert_int_equal(cm_isprint(c), !!isprint(c));
                assert_int_equal(cm_tolower(c), tolower(c));
                assert_int_equal(cm_toupper(c), toupper(c));
        }
        /* A locale where 0xe9 is a letter changes nothing here. */
        setlocale(LC_ALL, "C.UTF-8");
        for (c = 0x80; c < 0x100; c++) {
                char sc = (char)c; /* negative where char is signed */

                assert_false(cm_isspace(c) || cm_isdigit(c) || cm_isxdigit(c) ||
                             cm_isalpha(c) || cm_isalnum(c) || cm_isupper(c) ||
                             cm_islower(c) || cm_ispunct(c) || cm_iscntrl(c) ||
                             cm_isprint(c));
                assert_false(cm_isspace(sc) || cm_isdigit(sc) ||
                             cm_isalpha(sc) || cm_isalnum(sc) ||
                             cm_isupper(sc) || cm_islower(sc) ||
                             cm_ispunct(sc) || cm_isprint(sc));
                assert_int_equal(cm_tolower(sc), c);
                assert_int_equal(cm_toupper(sc), c);
        }
        assert_false(cm_isalpha(EOF) || cm_isspace(EOF) || cm_isdigit(EOF));
        assert_int_equal(cm_tolower((char)'Q'), 'q');
        assert_int_equal(cm_toupper((char)'q'), 'Q');
        setlocale(LC_ALL, "C");
}

static void test_fnv1a(void **state)
{
        (void)state;
        assert_true(cm_fnv1a("", 0) == 0xcbf29ce484222325ull);
        assert_true(cm_fnv1a("a", 1) == 0xaf63dc4c8601ec8cull);
        assert_true(cm_fnv1a("foobar", 6) == 0x85944171f73967e8ull);
        /* bytes, not a C string */
        assert_true(cm_fnv1a("a\0b", 3) != cm_fnv1a("a", 1));
}

static void test_byte_name(void **state)
{
        char out[CM_TEXT_BYTE_NAME_MAX];

        (void)state;
        cm_text_byte_name('/', out);
        assert_string_equal(out, "'/'");
        cm_text_byte_name(' ', out);
        assert_string_equal(out, "' '");
        cm_text_byte_name('\n', out);
        assert_string_equal(out, "0x0a");
        cm_text_byte_name((char)0xe9, out);
        assert_string_equal(out, "0xe9");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_decode),
            cmocka_unit_test(test_decode_bounded),
            cmocka_unit_test(test_valid),
            cmocka_unit_test(test_repair_whatwg),
            cmocka_unit_test(test_repair_random),
            cmocka_unit_test(test_floor_ceil),
            cmocka_unit_test(test_word_char),
            cmocka_unit_test(test_ctype),
            cmocka_unit_test(test_fnv1a),
            cmocka_unit_test(test_byte_name),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
