/*
 * Unit tests for profile: name, role and interests from user messages,
 * with the traps that made the seed's regex wrong.
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
#include "profile.h"
#include "text.h"
#include "util.h"

/* Extracts from s and checks the invariants of every result. */
static int extract(const char *s, cm_profile_t *prof)
{
        int n = cm_profile_extract(s, strlen(s), prof);
        size_t i;

        assert_int_equal(n, (prof->name != NULL) + (prof->role != NULL) +
                                (prof->interest_cnt > 0));
        assert_true(prof->interest_cnt <= 16);
        for (i = 0; i < prof->interest_cnt; i++) {
                size_t len = strlen(prof->interests[i]);

                assert_true(len > 0 && len <= 64);
                assert_true(cm_utf8_valid(prof->interests[i], len));
        }
        if (prof->name)
                assert_true(cm_utf8_valid(prof->name, strlen(prof->name)));
        if (prof->role)
                assert_true(cm_utf8_valid(prof->role, strlen(prof->role)));
        return n;
}

/* The fields of s are exactly name, role (NULL: none) and no interests. */
static void expect(const char *s, const char *name, const char *role)
{
        cm_profile_t prof;

        extract(s, &prof);
        if (name)
                assert_non_null(prof.name);
        if (name)
                assert_string_equal(prof.name, name);
        else
                assert_null(prof.name);
        if (role)
                assert_non_null(prof.role);
        if (role)
                assert_string_equal(prof.role, role);
        else
                assert_null(prof.role);
        cm_profile_release(&prof);
}

/* The interests of s are exactly want[0..cnt). */
static void expect_interests(const char *s, const char *const *want, size_t cnt)
{
        cm_profile_t prof;
        size_t i;

        extract(s, &prof);
        assert_int_equal(prof.interest_cnt, cnt);
        for (i = 0; i < cnt; i++)
                assert_string_equal(prof.interests[i], want[i]);
        cm_profile_release(&prof);
}

static void expect_nothing(const char *s)
{
        cm_profile_t prof;

        assert_int_equal(extract(s, &prof), 0);
        assert_true(cm_profile_empty(&prof));
        cm_profile_release(&prof);
}

static void test_seed_intro(void **state)
{
        cm_profile_t prof;
        const char *s = "Hi, I'm Sumit Pandya, full stack developer";

        (void)state;
        assert_int_equal(extract(s, &prof), 2);
        assert_string_equal(prof.name, "Sumit Pandya");
        assert_string_equal(prof.role, "full stack developer");
        assert_int_equal(prof.interest_cnt, 0);
        cm_profile_release(&prof);
}

static void test_seed_interests(void **state)
{
        static const char *const want[] = {"React", "Node.js"};

        (void)state;
        expect_interests("I work with React and Node.js. Can you explain "
                         "async/await in JavaScript?",
                         want, 2);
        expect_interests("I work with React and Node.js", want, 2);
}

static void test_names(void **state)
{
        (void)state;
        expect("I'm Sumit", "Sumit", NULL);
        expect("I am Sam.", "Sam", NULL);
        expect("my name is Ada Lovelace", "Ada Lovelace", NULL);
        expect("My name's Grace Hopper!", "Grace Hopper", NULL);
        expect("call me Max", "Max", NULL);
        expect("You can call me Max, everyone does.", "Max", NULL);
        expect("My friends call me Jo", "Jo", NULL);
        expect("Hello! I'm called Tom.", "Tom", NULL);
        expect("Hi Tom, I'm Kate.", "Kate", NULL);
        expect("I'm Jean-Luc Picard", "Jean-Luc Picard", NULL);
        expect("I'm Sumit and I like tea", "Sumit", NULL);
        /* an explicit cue takes a lowercase name, capitalised */
        expect("my name is sumit", "Sumit", NULL);
}

static void test_name_traps(void **state)
{
        (void)state;
        expect_nothing("I'm going to learn Rust");
        expect_nothing("I'm Going To Learn Rust");
        expect_nothing("I'M GOING TO LEARN RUST");
        expect_nothing("I'm not sure");
        expect_nothing("I'm a bit tired");
        expect_nothing("I'm sorry, I'm just tired");
        expect_nothing("I'm fine, thanks");
        expect_nothing("I'm sure it will work.");
        expect_nothing("I'm so happy today");
        expect_nothing("I'm here to help");
        expect_nothing("I'm back!");
        expect_nothing("I am really glad");
        expect_nothing("I'm still learning");
        expect_nothing("I'm excited about it");
        expect_nothing("I'm American");
        expect_nothing("I'm Learning Go");
        expect_nothing("my name is not important");
        expect_nothing("please call me back");
        expect_nothing("I'm sumit"); /* lowercase after "I'm": not a name */
        /* the data set's placeholders */
        expect_nothing("Hi, I'm [User 1's name].");
        expect_nothing("I'm User 1");
        expect_nothing("Hi (name)! I'm (name).");
        /* someone else's name */
        expect_nothing("Her name is Daisy.");
}

/* Role filtering is the caller's job: the extractor takes what it is
 * given at its word. */
static void test_assistant_text_is_taken_at_its_word(void **state)
{
        (void)state;
        expect("I'm Claude, an AI assistant made by Anthropic.", "Claude",
               NULL);
}

static void test_roles(void **state)
{
        (void)state;
        expect("I work as a nurse", NULL, "nurse");
        expect("I work as an accountant.", NULL, "accountant");
        expect("I'm a teacher.", NULL, "teacher");
        expect("I am an engineer at Google", NULL, "engineer");
        expect("I'm a software engineer at a startup", NULL,
               "software engineer");
        expect("I am a retired gym teacher.", NULL, "retired gym teacher");
        expect("I'm also a graduate student", NULL, "graduate student");
        expect("As a developer, I often use Go.", NULL, "developer");
        expect("I've been working as a nurse for 10 years", NULL, "nurse");
        expect("I'm a C++ programmer", NULL, "C++ programmer");
        expect("My job is a translator", NULL, "translator");
        expect("I'm teacher", NULL, "teacher");
        expect("My name is Ada Lovelace and I'm a mathematician.",
               "Ada Lovelace", "mathematician");
        expect("I'm Sumit, a web designer from Pune", "Sumit", "web designer");
        /* the later statement wins */
        expect("I was a teacher. Now I work as a nurse.", NULL, "nurse");
}

static void test_role_traps(void **state)
{
        (void)state;
        expect_nothing("I'm a bit tired");
        expect_nothing("I'm a little bored");
        expect_nothing("I'm a huge coffee lover");
        expect_nothing("I'm a beginner");
        expect_nothing("I'm a morning person");
        expect_nothing("I'm a pretty good cook");
        expect_nothing("I'm not a doctor");
        expect_nothing("I'm no longer a teacher");
        expect_nothing("I'm a mother of two");
        expect_nothing("I'm a vegan");
        expect_nothing("I'm just a hobbyist");
        expect_nothing("My sister works as a nurse.");
        expect_nothing("She is a teacher.");
        expect_nothing("As a result, it failed.");
        expect_nothing("Treat me as a customer");
        expect_nothing("I'm going to be a teacher");
}

static void test_fan_is_an_interest(void **state)
{
        static const char *const want[] = {"Beatles"};
        cm_profile_t prof;

        (void)state;
        expect_interests("I'm a big fan of the Beatles", want, 1);
        assert_int_equal(extract("I'm a big fan of the Beatles", &prof), 1);
        assert_null(prof.role);
        cm_profile_release(&prof);
        expect_nothing("I'm a big fan of both of them.");
}

static void test_interests(void **state)
{
        static const char *const bake[] = {"bake cookies", "knit"};
        static const char *const langs[] = {"C++", "Rust", "C#"};
        static const char *const ml[] = {"machine learning"};
        static const char *const chess[] = {"chess"};
        static const char *const hiking[] = {"hiking", "photography", "jazz"};
        static const char *const dune[] = {"Dune"};
        static const char *const docs[] = {"watching war documentaries"};

        (void)state;
        expect_interests("I love to bake cookies and knit.", bake, 2);
        expect_interests("I really enjoy C++, Rust and C#.", langs, 3);
        expect_interests("I'm interested in machine learning", ml, 1);
        expect_interests("My hobby is chess.", chess, 1);
        expect_interests("I'm into hiking, photography & jazz", hiking, 3);
        expect_interests("I love \"Dune\" so much", dune, 1);
        expect_interests("I like watching war documentaries too!", docs, 1);
        /* case-insensitive de-duplication, across triggers */
        expect_interests("I love chess. I also like Chess and CHESS.", chess,
                         1);
}

static void test_interest_traps(void **state)
{
        (void)state;
        expect_nothing("I don't like tea");
        expect_nothing("I love it!");
        expect_nothing("I like that idea");
        expect_nothing("I like those things too!");
        expect_nothing("I love when it rains");
        expect_nothing("I love you");
        expect_nothing("Do you like jazz?");
        expect_nothing("Did I say I like jazz?");
        expect_nothing("I'm not into sports");
}

/* The interests of s are exactly the one item want. */
static void expect_interest(const char *s, const char *want)
{
        expect_interests(s, &want, 1);
}

/* A question is not a statement; a question tagged on after one is. */
static void test_questions(void **state)
{
        (void)state;
        expect_nothing("I'm a nurse?");
        expect_nothing("So you think I like opera?");
        expect_nothing("Can you believe I'm a pilot now?");
        expect_interest("I love hiking, do you?", "hiking");
        expect_interest("I'm into chess, and you?", "chess");
        expect("I'm Tom, what's your name?", "Tom", NULL);
}

/* Wishes, plans and hypotheses are not facts. */
static void test_hypotheticals(void **state)
{
        (void)state;
        expect_nothing("If I like the course, I will continue.");
        expect_nothing("Maybe I like jazz after all.");
        expect_nothing("I want to work as a nurse.");
        expect_nothing("I'm thinking about working as a translator.");
        expect_nothing("If I work as a pilot next year, I will travel.");
        expect_nothing("I wish I could say I love my commute.");
        /* the condition is its own clause: the statement after it holds */
        expect_interest("When I'm not at work, I love sailing.", "sailing");
}

static void test_negations(void **state)
{
        (void)state;
        expect_nothing("I can't say I love opera.");
        expect_nothing("Don't call me Max.");
        expect_nothing("Not that I'm a doctor.");
        expect_nothing("Nobody believes I'm into knitting.");
        expect_interest("I'm not a fan of opera, but I love jazz.", "jazz");
}

/* Quoted or reported words are someone else's. */
static void test_reported_speech(void **state)
{
        (void)state;
        expect_nothing("She told everyone I'm a nurse.");
        expect_nothing("He said \"I am Tom\" to everyone.");
        expect_nothing("She said, \xe2\x80\x9cI love jazz.\xe2\x80\x9d");
        expect_nothing("They think I'm a doctor.");
        expect_nothing("My brother says I love drama.");
        /* a quoted title is fine as the thing liked */
        expect_interest("My favourite book is \"Dune\". I love hiking.",
                        "hiking");
}

/* A role is what the user is now. */
static void test_past_roles(void **state)
{
        (void)state;
        expect_nothing("I used to work as a nurse.");
        expect_nothing("I worked as a chef in Paris.");
        expect_nothing("I'm a former teacher.");
        expect("I used to be a chef, but now I'm a pilot.", NULL, "pilot");
        expect("I'm a retired firefighter.", NULL, "retired firefighter");
}

/* "I love the characters", "I like to think…": no topic of its own. */
static void test_interest_references(void **state)
{
        (void)state;
        expect_nothing("I love the way you explain things.");
        expect_nothing("I love the characters.");
        expect_nothing("I really enjoy the work.");
        expect_nothing("I like to think I'm smart.");
        expect_nothing("I love their long, flowing fins.");
        expect_nothing("I also like his song \"The Plan\".");
        expect_nothing("They are! I love mine to death.");
        expect_interest("I love the Rolling Stones.", "Rolling Stones");
}

/* Interests that say nothing about the user are not kept. */
static void test_generic_interests(void **state)
{
        (void)state;
        expect_nothing("I love learning new things.");
        expect_nothing("I like helping people.");
        expect_nothing("I love my job.");
        expect_nothing("I just like to have fun.");
        expect_interest("I like all kinds of music.", "music");
        expect_interest("I love spending time with my family.",
                        "spending time with my family");
}

/* A name is the speaker's own, never the one they greet. */
static void test_name_of_the_speaker(void **state)
{
        (void)state;
        expect("Nice to meet you, Ashley! I'm Michael.", "Michael", NULL);
        expect_nothing("Thanks, Ashley!");
        expect_nothing("Hi Ashley, how are you?");
        expect_nothing("Hi User 1, I'm Little Girl.");
        expect_nothing("Hello [User 2's name], my name is [User 1's name].");
}

static void test_curly_apostrophes(void **state)
{
        static const char *const want[] = {"hiking", "photography", "jazz"};
        cm_profile_t prof;
        const char *s = "I\xe2\x80\x99m Zo\xc3\xab and I\xe2\x80\x99m into "
                        "hiking, photography & jazz";

        (void)state;
        assert_int_equal(extract(s, &prof), 2);
        assert_string_equal(prof.name, "Zo\xc3\xab");
        cm_profile_release(&prof);
        expect_interests(s, want, 3);
        expect("I\xe2\x80\x98m Sam", "Sam", NULL);
        expect("I\xe2\x80\x99m a nurse", NULL, "nurse");
        expect_nothing("I\xe2\x80\x99m going to learn Rust");
        expect_nothing("I\xe2\x80\x99m not sure");
}

static void test_limits(void **state)
{
        cm_profile_t prof;
        cm_buf_t b;
        int i;

        (void)state;
        /* at most 16 interests */
        cm_buf_init(&b);
        cm_buf_adds(&b, "I love topic0");
        for (i = 1; i < 30; i++)
                cm_buf_addf(&b, ", topic%d", i);
        extract(b.buf, &prof);
        assert_int_equal(prof.interest_cnt, 16);
        assert_string_equal(prof.interests[15], "topic15");
        cm_profile_release(&prof);

        /* at most 64 bytes, never inside a UTF-8 character */
        cm_buf_reset(&b);
        cm_buf_adds(&b, "I love ");
        for (i = 0; i < 50; i++)
                cm_buf_adds(&b, "\xc3\xa9"); /* é */
        extract(b.buf, &prof);
        assert_int_equal(prof.interest_cnt, 1);
        assert_int_equal(strlen(prof.interests[0]), 64);
        cm_profile_release(&prof);

        cm_buf_reset(&b);
        cm_buf_adds(&b, "I love a");
        for (i = 0; i < 50; i++)
                cm_buf_adds(&b, "\xc3\xa9");
        extract(b.buf, &prof);
        assert_int_equal(prof.interest_cnt, 1);
        assert_int_equal(strlen(prof.interests[0]), 63);
        cm_profile_release(&prof);

        /* long phrases are cut between words */
        extract("I love exploring abandoned railway stations across "
                "the northern provinces",
                &prof);
        assert_int_equal(prof.interest_cnt, 0); /* more than 6 words */
        cm_profile_release(&prof);
        cm_buf_release(&b);
}

static void test_empty_and_bounds(void **state)
{
        cm_profile_t prof;
        const char buf[] = "I'm SumitXYZ and I love chess";

        (void)state;
        assert_int_equal(cm_profile_extract("", 0, &prof), 0);
        assert_true(cm_profile_empty(&prof));
        cm_profile_release(&prof);
        assert_int_equal(cm_profile_extract(NULL, 0, &prof), 0);
        cm_profile_release(&prof);
        expect_nothing("   \n\t ");
        expect_nothing("...!?,");
        /* only len bytes are read */
        assert_int_equal(cm_profile_extract(buf, 9, &prof), 1);
        assert_string_equal(prof.name, "Sumit");
        cm_profile_release(&prof);
        /* NUL bytes inside are spaces */
        assert_int_equal(cm_profile_extract("I'm\0Sam", 7, &prof), 1);
        assert_string_equal(prof.name, "Sam");
        cm_profile_release(&prof);
}

static void test_huge_input(void **state)
{
        static const char unit[] = "I'm going to learn Rust and I love "
                                   "hiking. I'm not sure, I'm a bit tired. ";
        cm_profile_t prof;
        cm_buf_t b;
        int64_t t0;
        int64_t us;

        (void)state;
        cm_buf_init(&b);
        while (b.len < 64 * 1024)
                cm_buf_adds(&b, unit);
        t0 = cm_mono_us();
        extract(b.buf, &prof);
        us = cm_mono_us() - t0;
        print_message("profile: %zu bytes of text in %lld us\n", b.len,
                      (long long)us);
        assert_null(prof.name);
        assert_null(prof.role);
        assert_int_equal(prof.interest_cnt, 1);
        assert_string_equal(prof.interests[0], "hiking");
        cm_profile_release(&prof);

        /* one 64 KiB word, then 64 KiB of punctuation */
        cm_buf_reset(&b);
        while (b.len < 64 * 1024)
                cm_buf_adds(&b, "aaaaaaaaaaaaaaaa");
        expect_nothing(b.buf);
        cm_buf_reset(&b);
        while (b.len < 64 * 1024)
                cm_buf_adds(&b, ",.!? '\xe2\x80\x99");
        expect_nothing(b.buf);
        cm_buf_release(&b);
}

/* A history's profile: the newest statement of the name and role wins,
 * the assistant's words are not about the user, interests gather newest
 * first without case duplicates. */
static void test_from_messages(void **state)
{
        static const char *const text[] = {
            "Hi, I'm Sumit Pandya, full stack developer", "I'm Claude.",
            "I work with React and Node.js", "My name is Sam Lee",
            "I love hiking and react"};
        static const cm_role_t role[] = {CM_ROLE_USER, CM_ROLE_ASSISTANT,
                                         CM_ROLE_USER, CM_ROLE_USER,
                                         CM_ROLE_USER};
        cm_message_t msgs[5];
        cm_profile_t prof;
        size_t i;

        (void)state;
        memset(msgs, 0, sizeof(msgs));
        for (i = 0; i < 5; i++) {
                msgs[i].role = role[i];
                msgs[i].content = (char *)text[i];
                msgs[i].content_len = strlen(text[i]);
        }
        cm_profile_from_messages(msgs, 5, &prof);
        assert_string_equal(prof.name, "Sam Lee");
        assert_string_equal(prof.role, "full stack developer");
        assert_int_equal(prof.interest_cnt, 3);
        assert_string_equal(prof.interests[0], "hiking");
        assert_string_equal(prof.interests[1], "react");
        assert_string_equal(prof.interests[2], "Node.js");
        cm_profile_release(&prof);
        cm_profile_from_messages(msgs, 0, &prof);
        assert_true(cm_profile_empty(&prof));
        cm_profile_from_messages(msgs + 1, 1, &prof);
        assert_true(cm_profile_empty(&prof));
}

/* fill only completes: what dst has stays; at most 16 interests. */
static void test_fill(void **state)
{
        char *a[20], buf[20][8];
        cm_profile_t dst, src;
        size_t i;

        (void)state;
        memset(&dst, 0, sizeof(dst));
        memset(&src, 0, sizeof(src));
        cm_profile_fill(&dst, NULL);
        assert_true(cm_profile_empty(&dst));
        src.name = "Ann";
        src.role = "nurse";
        for (i = 0; i < 20; i++) {
                snprintf(buf[i], sizeof(buf[i]), "x%zu", i);
                a[i] = buf[i];
        }
        src.interests = a;
        src.interest_cnt = 2;
        dst.name = cm_strdup("Bo");
        dst.interests = cm_calloc(1, sizeof(*dst.interests));
        dst.interests[0] = cm_strdup("X1");
        dst.interest_cnt = 1;
        cm_profile_fill(&dst, &src);
        assert_string_equal(dst.name, "Bo");
        assert_string_equal(dst.role, "nurse");
        assert_int_equal(dst.interest_cnt, 2);
        assert_string_equal(dst.interests[0], "X1");
        assert_string_equal(dst.interests[1], "x0");
        src.interest_cnt = 20;
        cm_profile_fill(&dst, &src);
        assert_int_equal(dst.interest_cnt, 16);
        assert_string_equal(dst.interests[15], "x15");
        cm_profile_release(&dst);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_seed_intro),
            cmocka_unit_test(test_seed_interests),
            cmocka_unit_test(test_names),
            cmocka_unit_test(test_name_traps),
            cmocka_unit_test(test_assistant_text_is_taken_at_its_word),
            cmocka_unit_test(test_roles),
            cmocka_unit_test(test_role_traps),
            cmocka_unit_test(test_fan_is_an_interest),
            cmocka_unit_test(test_interests),
            cmocka_unit_test(test_interest_traps),
            cmocka_unit_test(test_questions),
            cmocka_unit_test(test_hypotheticals),
            cmocka_unit_test(test_negations),
            cmocka_unit_test(test_reported_speech),
            cmocka_unit_test(test_past_roles),
            cmocka_unit_test(test_interest_references),
            cmocka_unit_test(test_generic_interests),
            cmocka_unit_test(test_name_of_the_speaker),
            cmocka_unit_test(test_curly_apostrophes),
            cmocka_unit_test(test_limits),
            cmocka_unit_test(test_empty_and_bounds),
            cmocka_unit_test(test_huge_input),
            cmocka_unit_test(test_from_messages),
            cmocka_unit_test(test_fill),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
