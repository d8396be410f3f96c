/*
 * Unit tests for the extractive summarizer: it keeps the facts of a
 * fixture and not whole answers, drops greetings, opinions, politeness and
 * questions back, trims clauses, respects the token cap, is deterministic,
 * handles empty and huge input, and folds incrementally. Each rule has a
 * positive and a negative case. Its speed is measured by
 * tests/bench/bench_summarize.c (make bench-summarize).
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
        /* not the whole answer: it names nothing the user did not */
        assert_null(strstr(s, "replayable log"));
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
        assert_non_null(strstr(s, "User works with React and Node.js."));
        assert_non_null(strstr(s, "User needs a visa for Japan by June."));
        assert_non_null(strstr(s, "User really studies Japanese every "
                                  "Monday and watches anime."));
        assert_non_null(strstr(s, "User's sister Ana lives in Tokyo."));
        assert_non_null(strstr(s, "User asked about async/await in "
                                  "JavaScript."));
        /* what the assistant says about itself is not about the user */
        assert_null(strstr(s, "User is Claude"));
        free(s);
}

/* Clauses joined by a comma, an adverb before the verb, "but now". */
static void test_third_person_clauses(void **state)
{
        cm_message_t m[4];
        char *s;

        (void)state;
        m[0] = U("I play the cello, I coach a chess club, and I speak Dutch.");
        m[1] = U("I especially like Ethiopian coffee.");
        m[2] = U("I used to be a baker, but now I'm a pilot.");
        m[3] = U("I apply to Lufthansa every year.");
        s = fold(NULL, m, 4, 300);
        print_message("summary: %s\n", s);
        assert_non_null(strstr(s, "User plays the cello, coaches a chess "
                                  "club, and speaks Dutch."));
        assert_non_null(strstr(s, "User especially likes Ethiopian coffee."));
        assert_non_null(strstr(s, "User used to be a baker, but now is a "
                                  "pilot."));
        assert_non_null(strstr(s, "User applies to Lufthansa every year."));
        free(s);
}

/* Folds one conversation and returns whether the summary has needle. */
static int keeps(const cm_message_t *m, size_t cnt, const char *needle)
{
        char *s = fold(NULL, m, cnt, 300);
        int found = strstr(s, needle) != NULL;

        print_message("summary: %s\n", s);
        free(s);
        return found;
}

/* Opinions and politeness go, unless they carry a name, number or date. */
static void test_opinions_and_politeness(void **state)
{
        cm_message_t m[2];

        (void)state;
        m[0] = U("I'm sure you will love the new flat.");
        assert_false(keeps(m, 1, "flat"));
        m[0] = U("I think so too!");
        assert_false(keeps(m, 1, "think"));
        m[0] = U("That's great, thanks for telling me about the garden.");
        assert_false(keeps(m, 1, "garden"));
        m[0] = U("I'm sorry to hear that about the move.");
        assert_false(keeps(m, 1, "move"));
        /* with a date, an opinion carries a fact */
        m[0] = U("I think the exam is on Friday.");
        assert_true(keeps(m, 1, "exam is on Friday"));
        /* an opinion of the user's own, with a topic */
        m[0] = U("I think learning a second language opens doors.");
        assert_true(keeps(m, 1, "second language"));
}

/* A statement about the listener is not a fact about the user. */
static void test_listener(void **state)
{
        cm_message_t m[1];

        (void)state;
        m[0] = U("Your garden must be beautiful in spring.");
        assert_false(keeps(m, 1, "garden"));
        m[0] = U("I'm glad you enjoyed the hike.");
        assert_false(keeps(m, 1, "hike"));
        m[0] = U("My garden is full of tomatoes in spring.");
        assert_true(keeps(m, 1, "User's garden is full of tomatoes"));
}

/* "I love it": the object was said before. */
static void test_bare_pronoun(void **state)
{
        cm_message_t m[1];

        (void)state;
        m[0] = U("I love it!");
        assert_false(keeps(m, 1, "love"));
        m[0] = U("I'd really like to try that.");
        assert_false(keeps(m, 1, "try"));
        m[0] = U("I love hiking in the Alps.");
        assert_true(keeps(m, 1, "User loves hiking in the Alps."));
}

/* A statement not about the user needs a fact or a topic. */
static void test_other_statements(void **state)
{
        cm_message_t m[1];

        (void)state;
        m[0] = U("It's really relaxing.");
        assert_false(keeps(m, 1, "relaxing"));
        m[0] = U("That is so cool.");
        assert_false(keeps(m, 1, "cool"));
        m[0] = U("The conference starts on 12 May.");
        assert_true(keeps(m, 1, "conference starts on 12 May"));
        m[0] = U("Knitting is my passion.");
        assert_true(keeps(m, 1, "Knitting is my passion"));
        /* what is left after a greeting starts with a capital */
        m[0] = U("Anyway, the ferry leaves at 6 tomorrow.");
        assert_true(keeps(m, 1, "User said: The ferry leaves at 6 tomorrow."));
}

/* Questions: requests and topics stay, questions without one go. */
static void test_user_questions(void **state)
{
        cm_message_t m[1];

        (void)state;
        m[0] = U("Could you please explain how Raft elects a leader?");
        assert_true(keeps(m, 1, "User asked about how Raft elects a leader."));
        m[0] = U("What is the difference between TCP and UDP?");
        assert_true(keeps(m, 1,
                          "User asked: What is the difference between "
                          "TCP and UDP?"));
        m[0] = U("What do you do?");
        assert_false(keeps(m, 1, "asked"));
        m[0] = U("Really?");
        assert_false(keeps(m, 1, "asked"));
        m[0] = U("Why not?");
        assert_false(keeps(m, 1, "asked"));
}

/* A sentence is cut into clauses; only those with facts stay. */
static void test_clause_trimming(void **state)
{
        cm_message_t m[1];
        char *s;

        (void)state;
        m[0] = U("That sounds fun, but I'm a night nurse so I sleep days.");
        s = fold(NULL, m, 1, 300);
        print_message("summary: %s\n", s);
        assert_non_null(strstr(s, "User is a night nurse so sleeps days."));
        assert_null(strstr(s, "sounds"));
        free(s);
        m[0] = U("It was a long day; I'm a night nurse.");
        s = fold(NULL, m, 1, 300);
        print_message("summary: %s\n", s);
        assert_string_equal(s, "User is a night nurse.");
        free(s);
        /* every clause kept: the sentence as it was said */
        m[0] = U("I've never tried sushi, but I love ramen.");
        assert_true(keeps(m, 1,
                          "User has never tried sushi, but loves "
                          "ramen."));
        /* a leading "but" ties to nothing in a summary */
        m[0] = U("But I'm thinking about Wharton.");
        assert_true(keeps(m, 1, "User is thinking about Wharton."));
}

/* Of the assistant, only the facts it adds. */
static void test_assistant_facts(void **state)
{
        cm_message_t m[2];

        (void)state;
        m[0] = U("Can you book a table for Friday?");
        m[1] = A("Done: your table for 4 is booked for Friday at 8 pm.");
        assert_true(keeps(m, 2, "table for 4 is booked for Friday at 8 pm"));
        m[0] = U("How does Kafka store messages?");
        m[1] = A("Kafka appends them to a log. Each partition is a separate "
                 "ordered file on disk, replicated across brokers.");
        assert_false(keeps(m, 2, "appends"));
        assert_false(keeps(m, 2, "replicated"));
        m[1] = A("I'm an assistant and I love helping with questions like "
                 "this one.");
        assert_false(keeps(m, 2, "assistant"));
        m[1] = A("What made you curious about Kafka?");
        assert_false(keeps(m, 2, "curious"));
}

/* A short answer to the assistant's question keeps the question. */
static void test_answer_keeps_question(void **state)
{
        cm_message_t m[2];

        (void)state;
        m[0] = A("Nice! What is your favourite colour?");
        m[1] = U("Teal, mostly.");
        assert_true(keeps(m, 2,
                          "Asked \"What is your favourite colour?\", "
                          "user said: Teal, mostly."));
        m[0] = A("Do you drink coffee?");
        m[1] = U("No, never.");
        assert_true(keeps(m, 2,
                          "Asked \"Do you drink coffee?\", user said: "
                          "No, never."));
        /* a question without a topic, and an answer that says it all */
        m[0] = A("How can I help you today?");
        m[1] = U("Hi!");
        assert_false(keeps(m, 2, "Asked"));
        m[0] = A("What do you do for work?");
        m[1] = U("I'm a welder.");
        assert_false(keeps(m, 2, "Asked"));
        assert_true(keeps(m, 2, "User is a welder."));
        /* a short answer leans on the question even when it is kept */
        m[0] = A("Which season do you like best?");
        m[1] = U("Winter, for sure. I love skiing in the Alps.");
        assert_true(keeps(m, 2,
                          "Asked \"Which season do you like best?\", "
                          "user said: Winter, for sure."));
        assert_true(keeps(m, 2, "User loves skiing in the Alps."));
        /* the rest of the message says it: no need for the question */
        m[0] = A("Do you have any hobbies?");
        m[1] = U("Sure. I collect vinyl records.");
        assert_false(keeps(m, 2, "Asked"));
        assert_true(keeps(m, 2, "User collects vinyl records."));
}

/* "My sister … and I'm …": the second subject is the user again. */
static void test_subject_changes(void **state)
{
        cm_message_t m[1];

        (void)state;
        m[0] = U("My brother Omar lives in Cairo and I visit him every May.");
        assert_true(keeps(m, 1,
                          "User's brother Omar lives in Cairo and User "
                          "visits him every May."));
}

/* The chat fixture: its facts at a third of its tokens or less. */
static void test_chat_ratio(void **state)
{
        cm_message_t m[CHAT_FIXTURE_CNT];
        const cm_tokenizer_t *tk = estimate();
        static const char *const facts[] = {
            "paramedic", "Rotterdam", "rock climbing", "brew", "stouts",
            "Noor",      "June 21",   "speech",        "Miso", "Tofu"};
        static const char *const filler[] = {
            "How are you", "thanks for asking", "demanding", "exhausting",
            "hobbies",     "fantastic",         "honour",    "glass",
            "I'm sure",    "adorable"};
        int convo = 0;
        int sum;
        size_t i;
        char *s;

        (void)state;
        chat_fixture(m);
        for (i = 0; i < CHAT_FIXTURE_CNT; i++)
                convo += cm_tokenizer_count(tk, m[i].content, m[i].content_len);
        s = fold(NULL, m, CHAT_FIXTURE_CNT, 300);
        sum = cm_tokenizer_count(tk, s, strlen(s));
        print_message("summary (%d of %d tokens): %s\n", sum, convo, s);
        for (i = 0; i < sizeof(facts) / sizeof(facts[0]); i++)
                assert_non_null(strstr(s, facts[i]));
        for (i = 0; i < sizeof(filler) / sizeof(filler[0]); i++)
                assert_null(strstr(s, filler[i]));
        assert_true(sum * 100 <= convo * 35);
        free(s);
}

/* Incremental folds of the chat give the facts of the one-shot fold,
 * and the same input always gives the same bytes. */
static void test_chat_incremental_deterministic(void **state)
{
        cm_message_t m[CHAT_FIXTURE_CNT];
        char *prev = NULL;
        char *again = NULL;
        size_t at;

        (void)state;
        chat_fixture(m);
        for (at = 0; at < CHAT_FIXTURE_CNT; at += 5) {
                size_t n =
                    CHAT_FIXTURE_CNT - at < 5 ? CHAT_FIXTURE_CNT - at : 5;
                char *next = fold(prev, m + at, n, 300);
                char *twin = fold(prev, m + at, n, 300);

                assert_string_equal(next, twin);
                free(twin);
                free(prev);
                prev = next;
        }
        print_message("summary: %s\n", prev);
        assert_non_null(strstr(prev, "paramedic"));
        assert_non_null(strstr(prev, "Noor"));
        assert_non_null(strstr(prev, "Miso"));
        /* folding the summary again with nothing new keeps it */
        again = fold(prev, NULL, 0, 300);
        assert_string_equal(again, prev);
        free(again);
        free(prev);
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
        /* a statement whose facts another one holds adds nothing */
        m[0] = U("I love to bake sourdough bread on Sundays.");
        m[1] = U("I love sourdough!");
        s = fold(NULL, m, 2, 300);
        print_message("summary: %s\n", s);
        assert_int_equal(occurrences(s, "sourdough"), 1);
        assert_non_null(strstr(s, "Sundays"));
        free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_keeps_facts_drops_greetings),
            cmocka_unit_test(test_third_person),
            cmocka_unit_test(test_third_person_clauses),
            cmocka_unit_test(test_opinions_and_politeness),
            cmocka_unit_test(test_listener),
            cmocka_unit_test(test_bare_pronoun),
            cmocka_unit_test(test_other_statements),
            cmocka_unit_test(test_user_questions),
            cmocka_unit_test(test_clause_trimming),
            cmocka_unit_test(test_assistant_facts),
            cmocka_unit_test(test_answer_keeps_question),
            cmocka_unit_test(test_subject_changes),
            cmocka_unit_test(test_chat_ratio),
            cmocka_unit_test(test_chat_incremental_deterministic),
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
