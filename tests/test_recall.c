/*
 * Unit tests for recall: normalisation (case, punctuation, stop words,
 * stemming, numbers, dates, names, UTF-8), ranking (the fact first, IDF,
 * ties), neighbours, repeats, the index growing, empty cases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "recall.h"
#include "summarize_fixture.h"
#include "util.h"

#define U        CM_ROLE_USER
#define A        CM_ROLE_ASSISTANT
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The terms of s, as the index sees them, each followed by a space. */
static char *terms(const char *s)
{
        cm_buf_t b;

        cm_buf_init(&b);
        cm_recall_normalize(s, strlen(s), &b);
        return cm_buf_detach(&b, NULL);
}

static void expect_terms(const char *s, const char *expect)
{
        char *t = terms(s);

        if (strcmp(t, expect))
                fail_msg("terms of \"%s\": \"%s\", expected \"%s\"", s, t,
                         expect);
        free(t);
}

/* Whether a and b give the same terms. */
static void expect_same(const char *a, const char *b)
{
        char *ta = terms(a), *tb = terms(b);

        if (strcmp(ta, tb))
                fail_msg("\"%s\" -> \"%s\" but \"%s\" -> \"%s\"", a, ta, b, tb);
        free(ta);
        free(tb);
}

/* ---- normalisation ---- */

static void test_normalize_words(void **state)
{
        (void)state;
        /* Case, punctuation, stop words and chat filler. */
        expect_same("PAINT!", "paint");
        expect_terms("Well, I think the GROUP was... hmm, okay?!",
                     "think group ");
        expect_same("Do you remember my dog?", "dog");
        expect_same("Yeah lol the dog, you know", "dog know");
        /* Apostrophes: a possessive goes, a contraction is one word. */
        expect_same("Melanie's", "Melanie");
        expect_same("Melanie\xe2\x80\x99s", "Melanie");
        expect_terms("don't I'm it's we'll", "");
        /* One-letter words go; one-digit numbers stay. */
        expect_terms("x b 3", "3 ");
        /* Names are terms. */
        expect_terms("Caroline met Jon", "carolin met jon ");
}

static void test_normalize_stems(void **state)
{
        static const char *const families[][5] = {
            {"paint", "paints", "painting", "painted", NULL},
            {"hike", "hikes", "hiking", "hiked", NULL},
            {"party", "parties", NULL},
            {"movie", "movies", NULL},
            {"family", "families", NULL},
            {"study", "studies", "studied", "studying", NULL},
            {"run", "runs", "running", NULL},
            {"stop", "stops", "stopped", "stopping", NULL},
            {"class", "classes", NULL},
            {"box", "boxes", NULL},
            {"wish", "wishes", "wished", NULL},
            {"quick", "quickly", NULL},
            {"bake", "baking", "baked", "bakes", NULL},
            {"plan", "planned", "planning", "plans", NULL},
            {"play", "plays", "played", "playing", NULL},
            {"try", "tries", "tried", NULL},
            {"marry", "married", NULL},
            {"photo", "photos", NULL},
            {"wedding", "weddings", NULL},
        };
        size_t i, j;

        (void)state;
        for (i = 0; i < COUNT(families); i++) {
                for (j = 1; families[i][j]; j++)
                        expect_same(families[i][0], families[i][j]);
        }
        /* Conservative: short words and words without a vowel left keep
         * their ending; -ss, -us, -is are not plurals. */
        expect_terms("bed red string bring sing", "bed red string bring sing ");
        expect_terms("dress bus tennis", "dress bus tennis ");
        /* Different words stay apart. */
        expect_terms("paint pain", "paint pain ");
}

static void test_normalize_numbers(void **state)
{
        (void)state;
        expect_terms("On 2023-05-08 at 7:30 it cost 1,000 or 3.14",
                     "2023-05-08 7:30 cost 1000 3.14 ");
        expect_terms("5/8/2023", "5/8/2023 ");
        /* An ordinal is its number; a sentence end is no separator. */
        expect_same("the 20th", "20");
        expect_same("1st 2nd 3rd", "1 2 3");
        expect_terms("I have 3. Then 4, 5.", "3 4 5 ");
        expect_terms("mp3 covid19", "mp3 covid19 ");
}

static void test_normalize_utf8(void **state)
{
        char *t;
        char longword[200];

        (void)state;
        /* Non-ASCII letters are word characters, kept as bytes; ASCII
         * case folding only. */
        expect_same("caf\xc3\xa9s", "caf\xc3\xa9");
        expect_terms("\xe4\xb8\xad\xe6\x96\x87", "\xe4\xb8\xad\xe6\x96\x87 ");
        expect_terms("se\xc3\xb1or", "se\xc3\xb1or ");
        /* Non-ASCII punctuation separates: an em dash, curly quotes. */
        expect_terms("jazz\xe2\x80\x94swing \xe2\x80\x9c"
                     "blues\xe2\x80\x9d",
                     "jazz swing blu ");
        /* Invalid UTF-8 separates words and is never copied. */
        expect_terms("jazz\xff\xfeswing\xc3", "jazz swing ");
        t = terms("\xe2\x82");
        assert_string_equal(t, "");
        free(t);
        /* A word past the key's length still meets itself. */
        memset(longword, 'k', sizeof(longword) - 1);
        longword[sizeof(longword) - 1] = '\0';
        expect_same(longword, longword);
}

/* ---- search ---- */

/* The units of a search, at most max. */
static size_t search(const cm_recall_index_t *ix, const char *query,
                     const cm_message_t *recent, size_t recent_cnt,
                     cm_recall_unit_t *units, size_t max)
{
        cm_recall_search_t *rs =
            cm_recall_search_new(ix, query, strlen(query), recent, recent_cnt);
        size_t n = 0;

        while (n < max && cm_recall_search_next(rs, &units[n]))
                n++;
        cm_recall_search_destroy(rs);
        return n;
}

/* Filler turns: chat that shares words with the queries below but states
 * none of their facts. */
static const char *const chatter[] = {
    "Work was long today, the meeting ran late again.",
    "Sorry to hear that! Did you get some rest after work?",
    "A bit. I watched a movie with my sister Anna.",
    "Which movie did you two pick?",
    "Some comedy, I forget the name. It was fine.",
    "Puppies are the best, my neighbour has three of them.",
    "Three puppies sounds like a full house!",
    "My work project is due on Friday, wish me luck.",
    "Good luck! What is the project about?",
    "A dashboard for the sales team at work.",
    "I went running by the river this morning.",
    "Running early is a great way to start the day.",
};

static cm_message_t *session(const char *const *extra, const cm_role_t *roles,
                             size_t extra_cnt, size_t at, size_t *cnt)
{
        size_t n = COUNT(chatter) + extra_cnt, i, j = 0;
        cm_message_t *m = cm_calloc(n, sizeof(*m));

        for (i = 0; i < n; i++) {
                if (i >= at && i < at + extra_cnt)
                        m[i] = fixture_msg(roles[i - at], extra[i - at]);
                else {
                        m[i] = fixture_msg(j % 2 ? A : U, chatter[j]);
                        j++;
                }
                m[i].seq = (int64_t)i + 1;
        }
        *cnt = n;
        return m;
}

static void test_rank_fact_first(void **state)
{
        static const char *const fact[] = {
            "Oh, and we finally adopted a golden retriever puppy last spring, "
            "we named him Max."};
        static const cm_role_t roles[] = {U};
        cm_recall_unit_t units[8];
        size_t cnt, n;
        cm_message_t *m = session(fact, roles, 1, 4, &cnt);
        cm_recall_index_t *ix = cm_recall_index_new(m, cnt);

        (void)state;
        /* Inflections (adopt/adopted, puppy/puppies, name/named) and stop
         * words between them. */
        n = search(ix, "What was the name of the puppy that I have adopted?",
                   NULL, 0, units, 8);
        assert_true(n >= 3); /* also the puppies and the name turns */
        assert_int_equal(units[0].hit, 4);
        assert_true(units[0].score > units[1].score);
        for (size_t i = 1; i < n; i++)
                assert_true(units[i - 1].score >= units[i].score);
        cm_recall_index_destroy(ix);
        free(m);
}

static void test_rank_idf(void **state)
{
        static const char *const extra[] = {
            "Honestly jazz records are my thing these days.",
            "I have been at work all weekend, nothing else."};
        static const cm_role_t roles[] = {U, U};
        cm_recall_unit_t units[8];
        size_t cnt, n;
        cm_message_t *m = session(extra, roles, 2, 6, &cnt);
        cm_recall_index_t *ix = cm_recall_index_new(m, cnt);

        (void)state;
        /* "work" is in five turns, "jazz" in one: the jazz turn first,
         * though both match one term of the query. */
        n = search(ix, "Did I mention jazz at work?", NULL, 0, units, 8);
        assert_int_equal(n, 6);
        assert_int_equal(units[0].hit, 6);
        /* And the rest are the work turns; those out of the jazz turn's
         * reach (more than 3 turns away) far behind. */
        for (size_t i = 1; i < n; i++) {
                if (units[i].hit < 3 || units[i].hit > 9)
                        assert_true(units[i].score < units[0].score / 2);
        }
        cm_recall_index_destroy(ix);
        free(m);
}

static void test_rank_ties_newer(void **state)
{
        cm_message_t m[] = {
            fixture_msg(U, "Rex chased a cat."),
            fixture_msg(U, "Rex chased a dog."),
            fixture_msg(A, "Nothing in common here."),
        };
        cm_recall_index_t *ix = cm_recall_index_new(m, COUNT(m));
        cm_recall_unit_t units[4];

        (void)state;
        assert_int_equal(search(ix, "rex", NULL, 0, units, 4), 2);
        assert_int_equal(units[0].hit, 1);
        assert_int_equal(units[1].hit, 0);
        assert_true(units[0].score == units[1].score);
        cm_recall_index_destroy(ix);
}

/* A hit takes in the scores of the hits up to 3 turns on either side;
 * turns without a query term stay no hits. */
static void test_rank_context(void **state)
{
        cm_message_t m[] = {
            fixture_msg(A, "Blank one."),
            /* 1, 2: the concert of the birthday party. */
            fixture_msg(U, "We had a birthday party for my daughter."),
            fixture_msg(A, "The concert was the best part of it."),
            fixture_msg(U, "Blank two."),
            fixture_msg(A, "Blank three."),
            fixture_msg(U, "Blank four."),
            fixture_msg(A, "Blank five."),
            /* 7: as good a match on its own, newer, alone. */
            fixture_msg(U, "The concert was the worst part of it."),
            fixture_msg(A, "Blank six."),
            fixture_msg(U, "Blank seven."),
            fixture_msg(A, "Blank eight."),
            /* 11: 4 turns from 7, out of its reach. */
            fixture_msg(U, "The concert was the first part of it."),
        };
        cm_recall_index_t *ix = cm_recall_index_new(m, COUNT(m));
        cm_recall_unit_t units[8];
        size_t n;

        (void)state;
        /* On its own, 7 would come before 2 (as good, newer): with the
         * birthday next to it, 2 does, after the birthday (the rarer
         * term). */
        n = search(ix, "What was the concert at the birthday?", NULL, 0, units,
                   8);
        assert_int_equal(n, 4); /* the hits only */
        assert_int_equal(units[0].hit, 1);
        assert_int_equal(units[1].hit, 2);
        /* 11 and 7, each out of the other's reach: as they are, a tie
         * that the newer wins. */
        assert_int_equal(units[2].hit, 11);
        assert_int_equal(units[3].hit, 7);
        assert_true(units[2].score == units[3].score);
        assert_true(units[3].score < units[0].score);
        cm_recall_index_destroy(ix);
}

static void test_neighbours(void **state)
{
        cm_message_t m[] = {
            /* 0, 1: an answer brings the question before it. */
            fixture_msg(A, "What is your favourite book?"),
            fixture_msg(U, "Dune by Frank Herbert, I reread it every winter."),
            /* 2, 3: a short hit brings its predecessor, same role. */
            fixture_msg(U, "We could not decide where to spend the holidays."),
            fixture_msg(U, "Porto, finally!"),
            /* 4, 5: a question hit brings the answer. */
            fixture_msg(A, "Does your sister still live in Berlin?"),
            fixture_msg(U, "Yes, she does."),
            /* 6, 7: a long statement brings nothing. */
            fixture_msg(U, "The weather was awful all week long, cold rain."),
            fixture_msg(A, "Glad you stayed in with tea and a good "
                           "documentary about glaciers."),
            fixture_msg(A, "What about you"),
            fixture_msg(U, "I collect vintage stamps from Japan."),
            fixture_msg(A, "That sounds empowering!"),
            fixture_msg(U, "I started violin lessons with a new teacher."),
        };
        cm_recall_index_t *ix = cm_recall_index_new(m, COUNT(m));
        cm_recall_unit_t units[4];

        (void)state;
        assert_int_equal(
            search(ix, "Which novel do I reread?", NULL, 0, units, 4), 1);
        assert_int_equal(units[0].hit, 1);
        assert_int_equal(units[0].first, 0);
        assert_int_equal(units[0].last, 1);

        assert_int_equal(search(ix, "porto", NULL, 0, units, 4), 1);
        assert_int_equal(units[0].hit, 3);
        assert_int_equal(units[0].first, 2);
        assert_int_equal(units[0].last, 3);

        assert_int_equal(search(ix, "berlin", NULL, 0, units, 4), 1);
        assert_int_equal(units[0].hit, 4);
        assert_int_equal(units[0].first, 4);
        assert_int_equal(units[0].last, 5);

        assert_int_equal(search(ix, "glaciers", NULL, 0, units, 4), 1);
        assert_int_equal(units[0].hit, 7);
        assert_int_equal(units[0].first, 7);
        assert_int_equal(units[0].last, 7);

        /* 8, 9: an answer to a turn without a term; 10, 11: not to a
         * short remark that has terms of its own. */
        assert_int_equal(search(ix, "stamps", NULL, 0, units, 4), 1);
        assert_int_equal(units[0].hit, 9);
        assert_int_equal(units[0].first, 8);
        assert_int_equal(search(ix, "violin", NULL, 0, units, 4), 1);
        assert_int_equal(units[0].hit, 11);
        assert_int_equal(units[0].first, 11);

        /* A question hit brings its answer, long as it is; no candidate
         * is in two units: the answer, a hit too, comes no more. */
        assert_int_equal(search(ix, "favourite book dune", NULL, 0, units, 4),
                         1);
        assert_int_equal(units[0].hit, 0);
        assert_int_equal(units[0].first, 0);
        assert_int_equal(units[0].last, 1);
        cm_recall_index_destroy(ix);
}

static void test_repeats(void **state)
{
        cm_message_t m[] = {
            fixture_msg(U, "I love hiking in the Alps with my dog Rex."),
            fixture_msg(A, "The Alps must be beautiful this time of year."),
            fixture_msg(U, "I love hiking in the Alps with my dog Rex!"),
            fixture_msg(U, "i LOVE hiking in the alps, with my dog rex"),
            fixture_msg(U, "Rex and I went hiking near Zermatt in the Alps."),
            fixture_msg(U, "My cat Luna hates the snow."),
        };
        const cm_message_t recent[] = {
            fixture_msg(U, "Luna my cat hates snow!"),
        };
        cm_recall_index_t *ix = cm_recall_index_new(m, COUNT(m));
        cm_recall_unit_t units[8];
        size_t n, i, love = 0;

        (void)state;
        /* The same message three times: once. */
        n = search(ix, "hiking in the Alps with Rex", NULL, 0, units, 8);
        for (i = 0; i < n; i++)
                love +=
                    units[i].hit == 0 || units[i].hit == 2 || units[i].hit == 3;
        assert_int_equal(love, 1);
        assert_int_equal(units[0].hit, 3); /* the newest of the repeats */
        assert_int_equal(n, 3);            /* with 1 and 4 */

        /* A question asked again: not itself, but the answer it had. */
        {
                cm_message_t q[] = {
                    fixture_msg(U, "What was the name of the vet in Lyon?"),
                    fixture_msg(A, "It was Dr. Martin, near the station."),
                    fixture_msg(A, "Anything else about Lyon?"),
                };
                const cm_message_t again[] = {
                    fixture_msg(U, "What was the name of that vet in Lyon?"),
                };
                cm_recall_index_t *qx = cm_recall_index_new(q, COUNT(q));

                assert_int_equal(
                    search(qx, again[0].content, again, 1, units, 8), 2);
                assert_int_equal(units[0].hit, 1);
                assert_int_equal(units[0].first, 1);
                assert_int_equal(units[0].last, 1);
                assert_int_equal(units[1].hit, 2); /* "Lyon" */
                cm_recall_index_destroy(qx);
        }

        /* A repeat of a recent message is not recalled. */
        assert_int_equal(search(ix, "Luna and the snow", NULL, 0, units, 8), 1);
        assert_int_equal(units[0].hit, 5);
        assert_int_equal(search(ix, "Luna and the snow", recent, 1, units, 8),
                         0);
        cm_recall_index_destroy(ix);
}

/* A message's date gives it the terms of its month and year; they do not
 * make repeats differ. */
static void test_date_terms(void **state)
{
        /* Turns 4 apart, out of each other's reach (the context). */
        cm_message_t m[] = {
            fixture_msg(U, "We signed the lease for the flat."),
            fixture_msg(A, "Blank one."),
            fixture_msg(A, "Blank two."),
            fixture_msg(A, "Blank three."),
            fixture_msg(U, "We signed the lease for the flat."),
            fixture_msg(A, "Blank one."),
            fixture_msg(A, "Blank two."),
            fixture_msg(A, "Blank three."),
            fixture_msg(U, "Nothing much happened with the flat."),
            fixture_msg(A, "Blank one."),
            fixture_msg(A, "Blank two."),
            fixture_msg(A, "Blank three."),
            fixture_msg(A, "July is warm in Lisbon."),
        };
        cm_recall_index_t *ix;
        cm_recall_unit_t units[4];
        int64_t y;
        int mo, d;

        (void)state;
        m[0].ts = 1657324800000LL; /* 2022-07-09 */
        m[4].ts = 1668000000000LL; /* 2022-11-09 */
        m[8].ts = 1657411200000LL; /* 2022-07-10 */
        cm_recall_date(m[0].ts, &y, &mo, &d);
        assert_true(y == 2022 && mo == 7 && d == 9);
        cm_recall_date(-1, &y, &mo, &d);
        assert_true(y == 1969 && mo == 12 && d == 31);
        ix = cm_recall_index_new(m, COUNT(m));
        /* "July 2022": the turns of July 2022 first (month and year), then
         * the one that says "July"; the November signing repeats the July
         * one. */
        assert_int_equal(
            search(ix, "What did we sign in July 2022?", NULL, 0, units, 4), 3);
        assert_int_equal(units[0].hit, 0);  /* sign, July, 2022 */
        assert_int_equal(units[1].hit, 8);  /* July, 2022 */
        assert_int_equal(units[2].hit, 12); /* July */
        /* The lease, signed twice months apart: one repeat of the other. */
        assert_int_equal(search(ix, "lease", NULL, 0, units, 4), 1);
        assert_int_equal(units[0].hit, 4);
        cm_recall_index_destroy(ix);
}

static void test_index_extend(void **state)
{
        size_t cnt, i, n1, n2, k;
        cm_message_t *m = session(NULL, NULL, 0, 0, &cnt);
        cm_recall_index_t *once = cm_recall_index_new(m, cnt);
        cm_recall_index_t *grown = cm_recall_index_new(m, 0);
        cm_recall_unit_t u1[16], u2[16];
        static const char *const queries[] = {"work project", "puppies",
                                              "movie with Anna", "running"};

        (void)state;
        assert_int_equal(cm_recall_index_count(grown), 0);
        for (i = 1; i <= cnt; i += 5)
                cm_recall_index_extend(grown, m, i);
        cm_recall_index_extend(grown, m, cnt);
        assert_int_equal(cm_recall_index_count(grown), cnt);
        assert_ptr_equal(cm_recall_index_msgs(grown), m);
        for (k = 0; k < COUNT(queries); k++) {
                n1 = search(once, queries[k], NULL, 0, u1, 16);
                n2 = search(grown, queries[k], NULL, 0, u2, 16);
                assert_true(n1 > 0);
                assert_int_equal(n1, n2);
                for (i = 0; i < n1; i++) {
                        assert_int_equal(u1[i].hit, u2[i].hit);
                        assert_int_equal(u1[i].first, u2[i].first);
                        assert_int_equal(u1[i].last, u2[i].last);
                        assert_true(u1[i].score == u2[i].score);
                }
        }
        /* Fewer candidates than indexed: built anew. */
        cm_recall_index_extend(grown, m + 2, 3);
        assert_int_equal(cm_recall_index_count(grown), 3);
        n1 = search(grown, "movie", NULL, 0, u1, 16);
        assert_int_equal(n1, 2); /* m[2] and m[3] */
        cm_recall_index_destroy(once);
        cm_recall_index_destroy(grown);
        cm_recall_index_destroy(NULL);
        free(m);
}

static void test_nothing(void **state)
{
        size_t cnt;
        cm_message_t *m = session(NULL, NULL, 0, 0, &cnt);
        cm_recall_index_t *ix = cm_recall_index_new(m, cnt);
        cm_recall_index_t *empty = cm_recall_index_new(NULL, 0);
        cm_recall_search_t *rs;
        cm_recall_unit_t u;

        (void)state;
        /* Stop words only, or words the session never used. */
        rs =
            cm_recall_search_new(ix, "What did you say about it?", 26, NULL, 0);
        assert_int_equal(cm_recall_search_hits(rs), 0);
        assert_int_equal(cm_recall_search_next(rs, &u), 0);
        cm_recall_search_destroy(rs);
        rs = cm_recall_search_new(ix, "zeppelin", 8, NULL, 0);
        assert_int_equal(cm_recall_search_hits(rs), 0);
        cm_recall_search_destroy(rs);
        rs = cm_recall_search_new(ix, NULL, 0, NULL, 0);
        assert_int_equal(cm_recall_search_next(rs, &u), 0);
        cm_recall_search_destroy(rs);
        rs = cm_recall_search_new(empty, "work", 4, NULL, 0);
        assert_int_equal(cm_recall_search_hits(rs), 0);
        assert_int_equal(cm_recall_search_next(rs, &u), 0);
        cm_recall_search_destroy(rs);
        cm_recall_search_destroy(NULL);
        /* Hits counts every candidate that matches; next ends. */
        rs = cm_recall_search_new(ix, "work", 4, NULL, 0);
        assert_int_equal(cm_recall_search_hits(rs), 4);
        cnt = 0;
        while (cm_recall_search_next(rs, &u))
                cnt++;
        assert_true(cnt >= 1 && cnt <= 4);
        assert_int_equal(cm_recall_search_next(rs, &u), 0);
        cm_recall_search_destroy(rs);
        cm_recall_index_destroy(ix);
        cm_recall_index_destroy(empty);
        free(m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_normalize_words),
            cmocka_unit_test(test_normalize_stems),
            cmocka_unit_test(test_normalize_numbers),
            cmocka_unit_test(test_normalize_utf8),
            cmocka_unit_test(test_rank_fact_first),
            cmocka_unit_test(test_rank_idf),
            cmocka_unit_test(test_rank_ties_newer),
            cmocka_unit_test(test_rank_context),
            cmocka_unit_test(test_neighbours),
            cmocka_unit_test(test_repeats),
            cmocka_unit_test(test_date_terms),
            cmocka_unit_test(test_index_extend),
            cmocka_unit_test(test_nothing),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
