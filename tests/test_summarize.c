/*
 * Unit tests for the extractive summarizer: it keeps the facts of a
 * fixture, drops greetings, respects the token cap, is deterministic,
 * handles empty and huge input, and folds incrementally. Its speed is
 * measured by tests/bench/bench_summarize.c (make bench-summarize).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"
#include "summarize.h"
#include "summarize_fixture.h"
#include "tokens.h"
#include "text.h"
#include "util.h"

static const cm_tokenizer_t *estimate(void)
{
        const cm_tokenizer_t *tk = NULL;
        char errstr[256];

        assert_int_equal(
            cm_tokenizer_get("estimate", &tk, errstr, sizeof(errstr)), 0);
        assert_non_null(tk);
        return tk;
}

#define U(s) fixture_msg(CM_ROLE_USER, s)
#define A(s) fixture_msg(CM_ROLE_ASSISTANT, s)

/* The ten messages of summarize_fixture.h. */
static cm_message_t fixture[SUMMARIZE_FIXTURE_CNT];

static int setup_fixture(void **state)
{
        (void)state;
        summarize_fixture(fixture);
        return 0;
}

/* Folds and checks what every result must hold: valid UTF-8, within the
 * cap by the tokenizer's own count. */
static char *fold(const char *summary, const cm_message_t *msgs, size_t cnt,
                  int max_tokens)
{
        cm_fold_in_t in;
        char *out;
        size_t len;

        memset(&in, 0, sizeof(in));
        in.summary = summary;
        in.msgs = msgs;
        in.msg_cnt = cnt;
        in.max_tokens = max_tokens;
        in.tk = estimate();
        out = cm_extractive_fold(&in);
        assert_non_null(out);
        len = strlen(out);
        assert_true(cm_utf8_valid(out, len));
        assert_true(cm_tokenizer_count(in.tk, out, len) <= max_tokens);
        return out;
}

static size_t occurrences(const char *hay, const char *needle)
{
        size_t n = 0;
        const char *p = hay;

        while ((p = strstr(p, needle)) != NULL) {
                n++;
                p += strlen(needle);
        }
        return n;
}

static void test_keeps_facts_drops_greetings(void **state)
{
        char *s;

        (void)state;
        s = fold(NULL, fixture, 10, 300);
        print_message("summary: %s\n", s);
        /* names, places, dates, numbers, decisions, questions, topics */
        assert_non_null(strstr(s, "Maria Lopez"));
        assert_non_null(strstr(s, "Lisbon"));
        assert_non_null(strstr(s, "March 14"));
        assert_non_null(strstr(s, "3 more weeks"));
        assert_non_null(strstr(s, "decided"));
        assert_non_null(strstr(s, "asked: How is Kafka different from "
                                  "RabbitMQ?"));
        assert_non_null(strstr(s, "replayable log"));
        /* greetings and filler */
        assert_null(strstr(s, "Hi!"));
        assert_null(strstr(s, "Hi,"));
        assert_null(strstr(s, "Hello"));
        assert_null(strstr(s, "help you"));
        assert_null(strstr(s, "Nice to meet"));
        assert_null(strstr(s, "Thanks"));
        assert_null(strstr(s, "welcome"));
        free(s);
}

static void test_third_person(void **state)
{
        cm_message_t m[6];
        char *s;

        (void)state;
        m[0] = U("I work with React and Node.js.");
        m[1] = U("Can you explain async/await in JavaScript?");
        m[2] = A("I'm Claude, an assistant made by Anthropic.");
        m[3] = U("I need a visa for Japan by June.");
        m[4] = U("I really study Japanese every Monday and I watch anime.");
        m[5] = U("My sister Ana lives in Tokyo.");
        s = fold(NULL, m, 6, 300);
        print_message("summary: %s\n", s);
        assert_non_null(strstr(s, "The user works with React and Node.js."));
        assert_non_null(strstr(s, "The user needs a visa for Japan by June."));
        assert_non_null(strstr(s, "The user really studies Japanese every "
                                  "Monday and watches anime."));
        assert_non_null(strstr(s, "The user's sister Ana lives in Tokyo."));
        assert_non_null(strstr(s, "The user asked: Can you explain "
                                  "async/await in JavaScript?"));
        /* what the assistant says about itself is not about the user */
        assert_null(strstr(s, "The user is Claude"));
        free(s);
}

static void test_token_cap(void **state)
{
        int max;

        (void)state;
        for (max = 1; max <= 320; max++) {
                char *s = fold(NULL, fixture, 10, max);

                if (max >= 20)
                        assert_true(s[0] != '\0');
                free(s);
        }
}

/* Over the budget, the weakest and oldest go first: of thirty equally
 * factual messages the newest are kept. */
static void test_keeps_newest(void **state)
{
        char text[30][96];
        cm_message_t m[30];
        char *s;
        int i;

        (void)state;
        for (i = 0; i < 30; i++) {
                snprintf(text[i], sizeof(text[i]),
                         "Order %d ships to Porto on May %d.", 100 + i, 1 + i);
                m[i] = U(text[i]);
        }
        s = fold(NULL, m, 30, 60);
        print_message("summary: %s\n", s);
        assert_non_null(strstr(s, "Order 129"));
        assert_null(strstr(s, "Order 100"));
        free(s);
}

static void test_deterministic(void **state)
{
        char *a;
        char *b;
        int max;

        (void)state;
        for (max = 10; max <= 300; max += 29) {
                a = fold(NULL, fixture, 10, max);
                b = fold(NULL, fixture, 10, max);
                assert_string_equal(a, b);
                free(a);
                free(b);
        }
}

static void test_empty(void **state)
{
        cm_message_t m[3];
        char *s;

        (void)state;
        s = fold(NULL, NULL, 0, 300);
        assert_string_equal(s, "");
        free(s);
        s = fold("", NULL, 0, 300);
        assert_string_equal(s, "");
        free(s);
        /* nothing but greetings and filler */
        m[0] = U("Hi! Thanks, ok.");
        m[1] = A("You're welcome! Nice to meet you.");
        m[2] = U("");
        s = fold(NULL, m, 3, 300);
        assert_string_equal(s, "");
        free(s);
}

static void test_huge_message(void **state)
{
        cm_buf_t b;
        cm_message_t m;
        char *s;

        (void)state;
        /* 64 KiB of sentences with multi-byte characters */
        cm_buf_init(&b);
        while (b.len < 64 * 1024)
                cm_buf_adds(&b, "Zo\xc3\xab moved to M\xc3\xbcnchen in 2019 "
                                "and works at Caf\xc3\xa9 \xe2\x98\x95 "
                                "Nr. 7 since June. ");
        m = U(b.buf);
        s = fold(NULL, &m, 1, 300);
        assert_true(s[0] != '\0');
        free(s);

        /* one 64 KiB "sentence" of 2-byte characters, without a space
         * after its first words */
        cm_buf_reset(&b);
        cm_buf_adds(&b, "I moved to Z\xc3\xbcrich in 2019: ");
        while (b.len < 64 * 1024)
                cm_buf_adds(&b, "\xc3\xb1");
        m = U(b.buf);
        s = fold(NULL, &m, 1, 300);
        assert_true(s[0] != '\0');
        free(s);
        s = fold(NULL, &m, 1, 7);
        free(s);

        /* one 64 KiB line of words, no punctuation */
        cm_buf_reset(&b);
        while (b.len < 64 * 1024)
                cm_buf_adds(&b, "Kafka partition offset 42 ");
        m = U(b.buf);
        s = fold(NULL, &m, 1, 300);
        assert_true(s[0] != '\0');
        assert_true(strlen(s) < 2000);
        free(s);
        cm_buf_release(&b);
}

static void test_invalid_utf8_input(void **state)
{
        cm_message_t m;
        char *s;

        (void)state;
        m = U("My order 4711 ships to Berlin \xff\xfe on Friday.");
        s = fold("The user lives in Oslo \xc3.", &m, 1, 300);
        assert_non_null(strstr(s, "4711"));
        assert_non_null(strstr(s, "Oslo"));
        free(s);
}

static void test_incremental(void **state)
{
        char *first;
        char *second;

        (void)state;
        first = fold(NULL, fixture, 6, 300);
        assert_non_null(strstr(first, "Maria Lopez"));
        second = fold(first, fixture + 6, 4, 300);
        print_message("summary: %s\n", second);
        /* the facts of the previous summary stay when there is room */
        assert_non_null(strstr(second, "Maria Lopez"));
        assert_non_null(strstr(second, "Lisbon"));
        assert_non_null(strstr(second, "March 14"));
        assert_non_null(strstr(second, "Kafka"));
        assert_null(strstr(second, "welcome"));
        /* folding nothing new keeps the summary */
        free(first);
        first = fold(second, NULL, 0, 300);
        assert_string_equal(first, second);
        free(first);
        free(second);
}

static void test_near_repeats(void **state)
{
        cm_message_t m[3];
        char *s;

        (void)state;
        m[0] = U("My flight to Berlin leaves on May 3 at 10:00.");
        m[1] = U("my flight to Berlin leaves on May 3 at 10:00!");
        m[2] = U("So, my flight to Berlin leaves on May 3, at 10:00.");
        s = fold("The user's flight to Berlin leaves on May 3 at 10:00.", m, 3,
                 300);
        assert_int_equal(occurrences(s, "Berlin"), 1);
        free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_keeps_facts_drops_greetings),
            cmocka_unit_test(test_third_person),
            cmocka_unit_test(test_token_cap),
            cmocka_unit_test(test_keeps_newest),
            cmocka_unit_test(test_deterministic),
            cmocka_unit_test(test_empty),
            cmocka_unit_test(test_huge_message),
            cmocka_unit_test(test_invalid_utf8_input),
            cmocka_unit_test(test_incremental),
            cmocka_unit_test(test_near_repeats),
        };

        return cmocka_run_group_tests(tests, setup_fixture, NULL);
}
