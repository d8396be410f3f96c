/*
 * Unit tests for tokens (the "estimate" tokenizer) and context (layout and
 * token budget).
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
#include "context.h"
#include "summarize_fixture.h"
#include "tokens.h"
#include "text.h"
#include "util.h"

#define MARKER "[\xe2\x80\xa6] "

static const cm_tokenizer_t *estimate(void)
{
        const cm_tokenizer_t *tk = NULL;
        char errstr[256];

        assert_int_equal(
            cm_tokenizer_get("estimate", &tk, errstr, sizeof(errstr)), 0);
        assert_non_null(tk);
        return tk;
}

static int est(const char *s)
{
        return cm_tokenizer_count(estimate(), s, strlen(s));
}

static char *seed_interests[] = {"React", "Node.js"};
static const cm_profile_t seed_profile = {
    .name = "Sumit Pandya",
    .role = "full stack developer",
    .interests = seed_interests,
    .interest_cnt = 2,
};
static const char seed_summary[] =
    "The user asked about async/await in JavaScript; examples were given.";

static cm_context_in_t input(const cm_profile_t *profile, const char *summary,
                             const cm_message_t *msgs, size_t cnt,
                             int max_tokens)
{
        cm_context_in_t in;

        memset(&in, 0, sizeof(in));
        in.profile = profile;
        in.summary = summary;
        in.msgs = msgs;
        in.msg_cnt = cnt;
        in.max_tokens = max_tokens;
        in.tk = estimate();
        return in;
}

/* Builds and checks the invariants every result must hold. */
static void build(const cm_context_in_t *in, cm_context_out_t *out)
{
        cm_context_build(in, out);
        assert_non_null(out->text);
        assert_non_null(out->summary);
        assert_int_equal(out->text_len, strlen(out->text));
        assert_int_equal(out->tokens,
                         cm_tokenizer_count(in->tk, out->text, out->text_len));
        assert_true(out->tokens <= in->max_tokens);
        assert_true(cm_utf8_valid(out->text, out->text_len));
}

/* ---- tokens ---- */

static void test_estimate(void **state)
{
        const cm_tokenizer_t *tk = estimate();

        (void)state;
        assert_string_equal(cm_tokenizer_name(tk), "estimate");
        assert_int_equal(est(""), 0);
        assert_int_equal(est("a"), 1);
        assert_int_equal(est("abcd"), 1);
        assert_int_equal(est("abcde"), 2);
        assert_int_equal(est("abcdefgh"), 2);
        /* "é" is two bytes but one code point. */
        assert_int_equal(est("\xc3\xa9"), 1);
        assert_int_equal(est("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"), 1);
        assert_int_equal(est("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"), 2);
        /* An emoji is one code point. */
        assert_int_equal(est("\xf0\x9f\x98\x80"
                             "abc"),
                         1);
        /* Invalid UTF-8: every byte that is not 0x80..0xBF counts. */
        assert_int_equal(cm_tokenizer_count(tk, "\xff\xfe\x80\x80\xc3", 5), 1);
        assert_int_equal(cm_tokenizer_count(tk, "\xff\xfe\xfd\xfc\xc3", 5), 2);
        /* len, not the NUL, bounds the text. */
        assert_int_equal(cm_tokenizer_count(tk, "abcdefgh", 4), 1);
}

static void test_tokenizer_unknown(void **state)
{
        const cm_tokenizer_t *tk = NULL;
        char errstr[256] = "";

        (void)state;
        assert_int_equal(cm_tokenizer_get("x", &tk, errstr, sizeof(errstr)),
                         -1);
        assert_null(tk);
        assert_string_equal(
            errstr,
            "unknown tokenizer 'x' (known: estimate, cl100k_base, o200k_base)");
        assert_int_equal(
            cm_tokenizer_get("Estimate", &tk, errstr, sizeof(errstr)), -1);
}

/* ---- layout ---- */

static void test_seed_layout(void **state)
{
        const cm_message_t msgs[] = {
            fixture_msg(CM_ROLE_USER, "Can you give me a practical example?"),
            fixture_msg(CM_ROLE_ASSISTANT, "Sure: ..."),
            fixture_msg(CM_ROLE_USER, "Do you remember my name?"),
        };
        cm_context_in_t in = input(&seed_profile, seed_summary, msgs, 3, 2000);
        cm_context_out_t out;
        size_t i;

        (void)state;
        build(&in, &out);
        assert_string_equal(
            out.text,
            "User Profile: Sumit Pandya, full stack developer\n"
            "Interests: React, Node.js\n"
            "Summary: The user asked about async/await in JavaScript; "
            "examples were given.\n"
            "\n"
            "Recent Messages:\n"
            "User: Can you give me a practical example?\n"
            "Assistant: Sure: ...\n"
            "User: Do you remember my name?");
        assert_int_equal(out.tokens, est(out.text));
        assert_int_equal(out.truncated, 0);
        assert_int_equal(out.profile_kept, 1);
        assert_string_equal(out.summary, seed_summary);
        assert_int_equal(out.recent_cnt, 3);
        for (i = 0; i < 3; i++) {
                assert_int_equal(out.recent[i].role, msgs[i].role);
                assert_string_equal(out.recent[i].content, msgs[i].content);
                assert_int_equal(out.recent[i].content_len,
                                 msgs[i].content_len);
        }
        cm_context_out_release(&out);
}

/* The block of DESIGN.md "Context text", byte for byte. */
static void test_design_layout(void **state)
{
        const cm_message_t msgs[] = {
            fixture_msg(CM_ROLE_USER, "Can you give me a practical example?"),
            fixture_msg(CM_ROLE_ASSISTANT, "..."),
            fixture_msg(CM_ROLE_USER, "Do you remember my name?"),
        };
        cm_context_in_t in = input(&seed_profile, seed_summary, msgs, 3, 2000);
        cm_context_out_t out;

        (void)state;
        build(&in, &out);
        assert_string_equal(
            out.text,
            "User Profile: Sumit Pandya, full stack developer\n"
            "Interests: React, Node.js\n"
            "Summary: The user asked about async/await in JavaScript; "
            "examples were given.\n"
            "\n"
            "Recent Messages:\n"
            "User: Can you give me a practical example?\n"
            "Assistant: ...\n"
            "User: Do you remember my name?");
        cm_context_out_release(&out);
}

static void test_no_profile(void **state)
{
        const cm_message_t msgs[] = {fixture_msg(CM_ROLE_USER, "Hi")};
        cm_profile_t empty = {0};
        cm_context_in_t in = input(NULL, "S.", msgs, 1, 2000);
        cm_context_out_t out;

        (void)state;
        build(&in, &out);
        assert_string_equal(out.text,
                            "Summary: S.\n\nRecent Messages:\nUser: Hi");
        assert_int_equal(out.profile_kept, 0);
        cm_context_out_release(&out);

        in.profile = &empty;
        build(&in, &out);
        assert_string_equal(out.text,
                            "Summary: S.\n\nRecent Messages:\nUser: Hi");
        assert_int_equal(out.profile_kept, 0);
        cm_context_out_release(&out);
}

static void test_partial_profile(void **state)
{
        char *interests[] = {"Go"};
        cm_profile_t name_only = {.name = "Ann"};
        cm_profile_t role_only = {.role = "nurse"};
        cm_profile_t interests_only = {.interests = interests,
                                       .interest_cnt = 1};
        cm_context_in_t in = input(&name_only, NULL, NULL, 0, 2000);
        cm_context_out_t out;

        (void)state;
        build(&in, &out);
        assert_string_equal(out.text, "User Profile: Ann");
        assert_int_equal(out.profile_kept, 1);
        cm_context_out_release(&out);

        in.profile = &role_only;
        build(&in, &out);
        assert_string_equal(out.text, "User Profile: nurse");
        cm_context_out_release(&out);

        in.profile = &interests_only;
        build(&in, &out);
        assert_string_equal(out.text, "Interests: Go");
        cm_context_out_release(&out);
}

static void test_no_summary(void **state)
{
        const cm_message_t msgs[] = {
            fixture_msg(CM_ROLE_USER, "Hi"),
            fixture_msg(CM_ROLE_ASSISTANT, "Hello"),
        };
        const char *expect = "User Profile: Sumit Pandya, full stack "
                             "developer\nInterests: React, Node.js\n\n"
                             "Recent Messages:\nUser: Hi\nAssistant: Hello";
        cm_context_in_t in = input(&seed_profile, NULL, msgs, 2, 2000);
        cm_context_out_t out;

        (void)state;
        build(&in, &out);
        assert_string_equal(out.text, expect);
        assert_string_equal(out.summary, "");
        cm_context_out_release(&out);

        in.summary = "";
        build(&in, &out);
        assert_string_equal(out.text, expect);
        cm_context_out_release(&out);
}

static void test_no_messages(void **state)
{
        cm_context_in_t in = input(&seed_profile, seed_summary, NULL, 0, 2000);
        cm_context_out_t out;

        (void)state;
        build(&in, &out);
        assert_string_equal(out.text,
                            "User Profile: Sumit Pandya, full stack developer\n"
                            "Interests: React, Node.js\n"
                            "Summary: The user asked about async/await in "
                            "JavaScript; examples were given.");
        assert_int_equal(out.recent_cnt, 0);
        cm_context_out_release(&out);

        in = input(NULL, NULL, NULL, 0, 2000);
        build(&in, &out);
        assert_string_equal(out.text, "");
        assert_int_equal(out.tokens, 0);
        assert_int_equal(out.truncated, 0);
        cm_context_out_release(&out);
}

static void test_only_messages(void **state)
{
        const cm_message_t msgs[] = {
            fixture_msg(CM_ROLE_SYSTEM, "Be brief."),
            fixture_msg(CM_ROLE_USER, "line one\nline two"),
        };
        cm_context_in_t in = input(NULL, NULL, msgs, 2, 2000);
        cm_context_out_t out;

        (void)state;
        build(&in, &out);
        assert_string_equal(out.text, "Recent Messages:\nSystem: Be brief.\n"
                                      "User: line one\nline two");
        cm_context_out_release(&out);
}

static void test_copies(void **state)
{
        cm_message_t msgs[] = {
            fixture_msg(CM_ROLE_USER, "Hi"),
            fixture_msg(CM_ROLE_ASSISTANT, "Hello"),
        };
        cm_context_in_t in = input(NULL, NULL, msgs, 2, 2000);
        cm_context_out_t out;

        (void)state;
        msgs[0].seq = 7;
        msgs[0].ts = 1732400000123;
        msgs[0].tokens = 3;
        msgs[0].event_id = "e-7";
        build(&in, &out);
        assert_int_equal(out.recent_cnt, 2);
        assert_int_equal(out.recent[0].seq, 7);
        assert_int_equal(out.recent[0].ts, 1732400000123);
        assert_int_equal(out.recent[0].tokens, 3);
        assert_string_equal(out.recent[0].event_id, "e-7");
        assert_ptr_not_equal(out.recent[0].event_id, msgs[0].event_id);
        assert_ptr_not_equal(out.recent[0].content, msgs[0].content);
        assert_null(out.recent[1].event_id);
        cm_context_out_release(&out);
        cm_context_out_release(NULL);
}

static void test_full_tokens(void **state)
{
        const cm_message_t msgs[] = {
            fixture_msg(CM_ROLE_USER, "Can you give me a practical example?"),
            fixture_msg(CM_ROLE_ASSISTANT, "Sure: ..."),
            fixture_msg(CM_ROLE_USER, "Do you remember my name?"),
        };
        const char *full = "User Profile: Sumit Pandya, full stack developer\n"
                           "Interests: React, Node.js\n"
                           "\n"
                           "Recent Messages:\n"
                           "User: Can you give me a practical example?\n"
                           "Assistant: Sure: ...\n"
                           "User: Do you remember my name?";

        (void)state;
        assert_int_equal(
            cm_context_full_tokens(&seed_profile, msgs, 3, estimate()),
            est(full));
        assert_int_equal(cm_context_full_tokens(NULL, msgs, 1, estimate()),
                         est("Recent Messages:\nUser: Can you give me a "
                             "practical example?"));
        assert_int_equal(cm_context_full_tokens(NULL, NULL, 0, estimate()), 0);
}

/* ---- budget, one stage at a time ---- */

/* Builds with max_tokens = est(expect) and checks the text is expect; the
 * untrimmed text must not fit. */
static void build_expect(cm_context_in_t *in, const char *untrimmed,
                         const char *expect, cm_context_out_t *out)
{
        assert_true(est(untrimmed) > est(expect));
        in->max_tokens = est(expect);
        build(in, out);
        assert_string_equal(out->text, expect);
        assert_int_equal(out->truncated, 1);
}

static void test_budget_summary_trimmed(void **state)
{
        const cm_message_t msgs[] = {fixture_msg(CM_ROLE_USER, "Hi")};
        const char *summary = "First sentence is rather long, really long. "
                              "Second one! Third one? Last.";
        cm_context_in_t in = input(NULL, summary, msgs, 1, 0);
        cm_context_out_t out;

        (void)state;
        build_expect(&in,
                     "Summary: First sentence is rather long, really long. "
                     "Second one! Third one? Last.\n\n"
                     "Recent Messages:\nUser: Hi",
                     "Summary: Second one! Third one? Last.\n\n"
                     "Recent Messages:\nUser: Hi",
                     &out);
        assert_string_equal(out.summary, "Second one! Third one? Last.");
        assert_int_equal(out.recent_cnt, 1);
        cm_context_out_release(&out);

        /* One token less: only the latest sentences that fit are kept. */
        in.max_tokens = est("Summary: Third one? Last.\n\n"
                            "Recent Messages:\nUser: Hi");
        build(&in, &out);
        assert_string_equal(out.text, "Summary: Third one? Last.\n\n"
                                      "Recent Messages:\nUser: Hi");
        assert_string_equal(out.summary, "Third one? Last.");
        cm_context_out_release(&out);
}

static void test_budget_summary_dropped(void **state)
{
        const cm_message_t msgs[] = {
            fixture_msg(CM_ROLE_USER, "Hi"),
            fixture_msg(CM_ROLE_ASSISTANT, "Hello there"),
        };
        /* Even the last sentence alone does not fit: the summary goes. */
        const char *summary = "Short. A last sentence that is far too long.";
        cm_context_in_t in = input(&seed_profile, summary, msgs, 2, 0);
        cm_context_out_t out;
        const char *prof = "User Profile: Sumit Pandya, full stack "
                           "developer\nInterests: React, Node.js\n";
        const char *recent = "\nRecent Messages:\nUser: Hi\nAssistant: Hello "
                             "there";
        cm_buf_t last, expect;

        (void)state;
        cm_buf_init(&last);
        cm_buf_init(&expect);
        cm_buf_addf(&last,
                    "%sSummary: A last sentence that is far too "
                    "long.\n%s",
                    prof, recent);
        cm_buf_addf(&expect, "%s%s", prof, recent);
        assert_true(est(last.buf) > est(expect.buf));
        in.max_tokens = est(expect.buf);
        build(&in, &out);
        assert_string_equal(out.text, expect.buf);
        assert_string_equal(out.summary, "");
        assert_int_equal(out.truncated, 1);
        assert_int_equal(out.profile_kept, 1);
        assert_int_equal(out.recent_cnt, 2);
        cm_context_out_release(&out);

        /* No sentence boundary at all ("3.5", "e.g." at the end). */
        in.summary = "Nothing to trim in 3.5 seconds, e.g.";
        build(&in, &out);
        assert_string_equal(out.text, expect.buf);
        assert_string_equal(out.summary, "");
        cm_context_out_release(&out);
        cm_buf_release(&last);
        cm_buf_release(&expect);
}

static void test_budget_oldest_dropped(void **state)
{
        const cm_message_t msgs[] = {
            fixture_msg(CM_ROLE_USER, "one one one one"),
            fixture_msg(CM_ROLE_ASSISTANT, "two two two two"),
            fixture_msg(CM_ROLE_USER, "three three three"),
            fixture_msg(CM_ROLE_ASSISTANT, "four four four"),
        };
        cm_context_in_t in = input(&seed_profile, seed_summary, msgs, 4, 0);
        cm_context_out_t out;
        const char *prof = "User Profile: Sumit Pandya, full stack developer\n"
                           "Interests: React, Node.js\n\n";
        cm_buf_t untrimmed, expect;

        (void)state;
        cm_buf_init(&untrimmed);
        cm_buf_init(&expect);
        cm_buf_addf(&untrimmed,
                    "%sRecent Messages:\nUser: one one one one\n"
                    "Assistant: two two two two\nUser: three three three\n"
                    "Assistant: four four four",
                    prof);
        cm_buf_addf(&expect,
                    "%sRecent Messages:\nUser: three three three\n"
                    "Assistant: four four four",
                    prof);
        build_expect(&in, untrimmed.buf, expect.buf, &out);
        assert_string_equal(out.summary, "");
        assert_int_equal(out.recent_cnt, 2);
        assert_string_equal(out.recent[0].content, "three three three");
        assert_string_equal(out.recent[1].content, "four four four");
        cm_context_out_release(&out);
        cm_buf_release(&untrimmed);
        cm_buf_release(&expect);
}

static void test_budget_newest_user_kept(void **state)
{
        const cm_message_t msgs[] = {
            fixture_msg(CM_ROLE_USER, "old question"),
            fixture_msg(CM_ROLE_ASSISTANT, "old answer"),
            fixture_msg(CM_ROLE_USER, "What is my name?"),
            fixture_msg(CM_ROLE_ASSISTANT, "A newer and rather long assistant "
                                           "answer that does not fit."),
        };
        cm_context_in_t in = input(&seed_profile, NULL, msgs, 4, 0);
        cm_context_out_t out;
        const char *expect = "User Profile: Sumit Pandya, full stack "
                             "developer\nInterests: React, Node.js\n\n"
                             "Recent Messages:\nUser: What is my name?";

        (void)state;
        in.max_tokens = est(expect);
        build(&in, &out);
        assert_string_equal(out.text, expect);
        assert_int_equal(out.profile_kept, 1);
        assert_int_equal(out.recent_cnt, 1);
        assert_int_equal(out.recent[0].role, CM_ROLE_USER);
        assert_string_equal(out.recent[0].content, "What is my name?");
        cm_context_out_release(&out);

        /* With room for one more, the older ones are still dropped first. */
        in.max_tokens = est("User Profile: Sumit Pandya, full stack "
                            "developer\nInterests: React, Node.js\n\n"
                            "Recent Messages:\nUser: What is my name?\n"
                            "Assistant: A newer and rather long assistant "
                            "answer that does not fit.");
        build(&in, &out);
        assert_int_equal(out.recent_cnt, 2);
        assert_string_equal(out.recent[0].content, "What is my name?");
        cm_context_out_release(&out);
}

static void test_budget_no_user_message(void **state)
{
        const cm_message_t msgs[] = {
            fixture_msg(CM_ROLE_ASSISTANT, "first first first first first"),
            fixture_msg(CM_ROLE_SYSTEM, "newest"),
        };
        cm_context_in_t in = input(NULL, NULL, msgs, 2, 0);
        cm_context_out_t out;

        (void)state;
        in.max_tokens = est("Recent Messages:\nSystem: newest");
        build(&in, &out);
        assert_string_equal(out.text, "Recent Messages:\nSystem: newest");
        cm_context_out_release(&out);
}

static void test_budget_profile_dropped(void **state)
{
        const cm_message_t msgs[] = {
            fixture_msg(CM_ROLE_USER, "older"),
            fixture_msg(CM_ROLE_USER, "Do you remember my name?"),
        };
        cm_context_in_t in = input(&seed_profile, seed_summary, msgs, 2, 0);
        cm_context_out_t out;

        (void)state;
        in.max_tokens = est("Recent Messages:\nUser: Do you remember my name?");
        build(&in, &out);
        assert_string_equal(out.text,
                            "Recent Messages:\nUser: Do you remember my name?");
        assert_int_equal(out.profile_kept, 0);
        assert_string_equal(out.summary, "");
        assert_int_equal(out.recent_cnt, 1);
        assert_int_equal(out.truncated, 1);
        cm_context_out_release(&out);
}

static void test_budget_cut_ascii(void **state)
{
        const cm_message_t msgs[] = {
            fixture_msg(CM_ROLE_ASSISTANT, "dropped"),
            fixture_msg(CM_ROLE_USER, "abcdefghijklmnopqrstuvwxyz0123456789"),
        };
        cm_context_in_t in = input(&seed_profile, seed_summary, msgs, 2, 0);
        cm_context_out_t out;

        (void)state;
        /* "Recent Messages:\nUser: " is 23 code points and the marker 4:
         * 10 tokens leave 40 - 27 = 13 for the message. */
        in.max_tokens = 10;
        build(&in, &out);
        assert_string_equal(out.text,
                            "Recent Messages:\nUser: " MARKER "xyz0123456789");
        assert_int_equal(out.recent_cnt, 1);
        assert_string_equal(out.recent[0].content, MARKER "xyz0123456789");
        assert_int_equal(out.recent[0].content_len,
                         strlen(MARKER "xyz0123456789"));
        assert_int_equal(out.recent[0].tokens, -1);
        assert_int_equal(out.profile_kept, 0);
        assert_int_equal(out.truncated, 1);
        cm_context_out_release(&out);
}

static void test_budget_cut_multibyte(void **state)
{
        cm_buf_t content, expect;
        cm_message_t msgs[1];
        cm_context_in_t in;
        cm_context_out_t out;
        int i;

        (void)state;
        cm_buf_init(&content);
        cm_buf_init(&expect);
        /* Mixed widths: 1, 2 ("é"), 3 ("中") and 4 (emoji) bytes. */
        for (i = 0; i < 40; i++)
                cm_buf_adds(&content, "a\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80");
        msgs[0] = fixture_msg(CM_ROLE_USER, content.buf);
        in = input(NULL, NULL, msgs, 1, 0);
        for (i = 1; i <= 40; i++) {
                size_t keep = (size_t)i * 4 - 27; /* code points kept */
                const char *p = content.buf + content.len;
                size_t n = 0;

                if ((size_t)i * 4 < 27)
                        continue;
                in.max_tokens = i;
                build(&in, &out);
                /* The suffix of `keep` code points of the content. */
                while (n < keep) {
                        p--;
                        if (((unsigned char)*p & 0xc0) != 0x80)
                                n++;
                }
                cm_buf_reset(&expect);
                cm_buf_adds(&expect, "Recent Messages:\nUser: " MARKER);
                cm_buf_adds(&expect, p);
                assert_string_equal(out.text, expect.buf);
                assert_int_equal(out.tokens, i);
                assert_true(cm_utf8_valid(out.recent[0].content,
                                          out.recent[0].content_len));
                cm_context_out_release(&out);
        }

        /* Only "é": every cut lands between two-byte sequences. */
        cm_buf_reset(&content);
        for (i = 0; i < 50; i++)
                cm_buf_adds(&content, "\xc3\xa9");
        msgs[0] = fixture_msg(CM_ROLE_USER, content.buf);
        in.max_tokens = 8; /* 32 - 27 = 5 code points */
        build(&in, &out);
        assert_string_equal(out.text,
                            "Recent Messages:\nUser: " MARKER
                            "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
        cm_context_out_release(&out);

        /* Only emoji. */
        cm_buf_reset(&content);
        for (i = 0; i < 50; i++)
                cm_buf_adds(&content, "\xf0\x9f\x98\x80");
        msgs[0] = fixture_msg(CM_ROLE_USER, content.buf);
        in.max_tokens = 7; /* 28 - 27 = 1 code point */
        build(&in, &out);
        assert_string_equal(out.text, "Recent Messages:\nUser: " MARKER
                                      "\xf0\x9f\x98\x80");
        cm_context_out_release(&out);

        cm_buf_release(&content);
        cm_buf_release(&expect);
}

static void test_budget_tiny(void **state)
{
        const cm_message_t msgs[] = {
            fixture_msg(CM_ROLE_USER, "Do you remember my name?"),
        };
        cm_message_t msgs_assistant[1];
        cm_context_in_t in = input(&seed_profile, seed_summary, msgs, 1, 0);
        cm_context_out_t out;
        int max;

        (void)state;
        /* "Recent Messages:\nUser: [...] " is 27 code points, 7 tokens. */
        for (max = 1; max <= 6; max++) {
                in.max_tokens = max;
                build(&in, &out);
                assert_string_equal(out.text, "");
                assert_int_equal(out.tokens, 0);
                assert_int_equal(out.recent_cnt, 0);
                assert_int_equal(out.profile_kept, 0);
                assert_string_equal(out.summary, "");
                assert_int_equal(out.truncated, 1);
                cm_context_out_release(&out);
        }
        /* 7 tokens: the marker and one code point (28). */
        in.max_tokens = 7;
        build(&in, &out);
        assert_string_equal(out.text, "Recent Messages:\nUser: " MARKER "?");
        assert_int_equal(out.recent_cnt, 1);
        assert_string_equal(out.recent[0].content, MARKER "?");
        cm_context_out_release(&out);

        /* "Recent Messages:\nAssistant: [...] " is exactly 32 code points:
         * the marker alone. */
        msgs_assistant[0] = fixture_msg(CM_ROLE_ASSISTANT, "Sure.");
        in = input(NULL, NULL, msgs_assistant, 1, 8);
        build(&in, &out);
        assert_string_equal(out.text, "Recent Messages:\nAssistant: " MARKER);
        assert_string_equal(out.recent[0].content, MARKER);
        cm_context_out_release(&out);
        in.max_tokens = 7;
        build(&in, &out);
        assert_string_equal(out.text, "");
        cm_context_out_release(&out);

        /* No messages: the profile goes, then nothing is left. */
        in = input(&seed_profile, NULL, NULL, 0, 3);
        build(&in, &out);
        assert_string_equal(out.text, "");
        assert_int_equal(out.truncated, 1);
        cm_context_out_release(&out);
}

/* A long history of 64 KiB messages: the searches keep this fast. */
static void test_budget_large(void **state)
{
        size_t cnt = 200, i;
        cm_message_t *msgs = cm_calloc(cnt, sizeof(*msgs));
        char *big = cm_malloc(64 * 1024 + 1);
        const cm_message_t *older;
        cm_context_in_t in;
        cm_context_out_t out;
        size_t older_cp;

        (void)state;
        for (i = 0; i < 64 * 1024; i++)
                big[i] = (char)('a' + i % 26);
        big[64 * 1024] = '\0';
        for (i = 0; i < cnt; i++)
                msgs[i] =
                    fixture_msg(i % 2 ? CM_ROLE_ASSISTANT : CM_ROLE_USER, big);

        /* The newest user message is cut to 2000 * 4 - 27 code points. */
        in = input(&seed_profile, seed_summary, msgs, cnt, 2000);
        build(&in, &out);
        assert_int_equal(out.recent_cnt, 1);
        assert_int_equal(out.tokens, 2000);
        assert_int_equal(out.recent[0].role, CM_ROLE_USER);
        assert_int_equal(out.recent[0].content_len, 2000 * 4 - 27 + 6);
        assert_memory_equal(out.recent[0].content + 6,
                            big + 64 * 1024 - (2000 * 4 - 27), 2000 * 4 - 27);
        cm_context_out_release(&out);

        /* A budget for some 60 messages: the next older one would not
         * fit (the estimate is additive in code points). */
        in.max_tokens = 1000000;
        build(&in, &out);
        assert_int_equal(out.profile_kept, 1);
        assert_string_equal(out.summary, "");
        assert_true(out.recent_cnt > 1 && out.recent_cnt < cnt);
        older = &msgs[cnt - out.recent_cnt - 1];
        older_cp =
            1 + strlen(cm_role_label(older->role)) + 2 + older->content_len;
        assert_true(out.text_len + older_cp > (size_t)in.max_tokens * 4);
        cm_context_out_release(&out);

        free(big);
        free(msgs);
}

/* ---- recall ---- */

#define DAY_0508 1683504000000LL /* 2023-05-08T00:00Z */
#define DAY_0601 1685577600000LL /* 2023-06-01T00:00Z */

/* A message with its sequence and time. */
static cm_message_t dated(cm_role_t role, const char *content, int64_t seq,
                          int64_t ts)
{
        cm_message_t m = fixture_msg(role, content);

        m.seq = seq;
        m.ts = ts;
        return m;
}

/* A message literal (role, content). */
#define MSG(r, s)                                                              \
        {                                                                      \
                .role = (r), .content = (char *)(s),                           \
                .content_len = sizeof(s) - 1, .tokens = -1                     \
        }

static const cm_message_t recall_recent[] = {
    MSG(CM_ROLE_USER, "Thanks for listening."),
    MSG(CM_ROLE_ASSISTANT, "Any time."),
    MSG(CM_ROLE_USER, "Which support group did I go to, and what colour did "
                      "we paint the kitchen?"),
};

static cm_context_in_t recall_input(const cm_message_t *earlier, size_t cnt,
                                    const char *query, int max_tokens)
{
        cm_context_in_t in =
            input(&seed_profile, seed_summary, recall_recent, 3, max_tokens);

        in.earlier = earlier;
        in.earlier_cnt = cnt;
        in.query = query;
        return in;
}

static void test_recall_layout(void **state)
{
        cm_message_t earlier[] = {
            dated(CM_ROLE_USER, "I went to the LGBTQ support group yesterday.",
                  1, DAY_0508 + 3600000),
            dated(CM_ROLE_ASSISTANT, "That sounds empowering!", 2,
                  DAY_0508 + 3660000),
            dated(CM_ROLE_USER, "My car broke down on the highway.", 3, 0),
            dated(CM_ROLE_ASSISTANT, "Oh no, I hope you are safe.", 4, 0),
            dated(CM_ROLE_USER, "We painted the kitchen green last weekend.", 5,
                  DAY_0601 + 86399999),
            dated(CM_ROLE_ASSISTANT, "Green is a bold choice for a kitchen!", 6,
                  DAY_0601 + 86400000 - 1),
        };
        cm_context_in_t in =
            recall_input(earlier, 6, recall_recent[2].content, 2000);
        cm_context_out_t out;
        size_t i;

        (void)state;
        build(&in, &out);
        assert_string_equal(
            out.text,
            "User Profile: Sumit Pandya, full stack developer\n"
            "Interests: React, Node.js\n"
            "Summary: The user asked about async/await in JavaScript; "
            "examples were given.\n"
            "\n"
            "Relevant Earlier Messages:\n"
            "[2023-05-08] User: I went to the LGBTQ support group "
            "yesterday.\n"
            "[2023-06-01] User: We painted the kitchen green last weekend.\n"
            "Assistant: Green is a bold choice for a kitchen!\n"
            "\n"
            "Recent Messages:\n"
            "User: Thanks for listening.\n"
            "Assistant: Any time.\n"
            "User: Which support group did I go to, and what colour did we "
            "paint the kitchen?");
        assert_int_equal(out.truncated, 0);
        assert_string_equal(out.summary, seed_summary);
        assert_int_equal(out.recent_cnt, 3);
        /* Owned copies, chronological, with what the store knows. */
        assert_int_equal(out.recalled_cnt, 3);
        assert_int_equal(out.recalled[0].seq, 1);
        assert_int_equal(out.recalled[1].seq, 5);
        assert_int_equal(out.recalled[2].seq, 6);
        for (i = 0; i < out.recalled_cnt; i++) {
                const cm_message_t *src = &earlier[out.recalled[i].seq - 1];

                assert_ptr_not_equal(out.recalled[i].content, src->content);
                assert_string_equal(out.recalled[i].content, src->content);
                assert_int_equal(out.recalled[i].ts, src->ts);
                assert_int_equal(out.recalled[i].role, src->role);
        }
        assert_true(out.recall_us >= 0);
        cm_context_out_release(&out);
}

/* The date in front of a recalled line: UTC, any year, none for ts 0. */
static void test_recall_dates(void **state)
{
        static const struct {
                int64_t ts;
                const char *line;
        } cases[] = {
            {1, "[1970-01-01] User: zebra"},
            {-1, "[1969-12-31] User: zebra"},
            {1709164800000LL + 3600000, "[2024-02-29] User: zebra"},
            {951868800000LL - 1, "[2000-02-29] User: zebra"},
            {951868800000LL, "[2000-03-01] User: zebra"},
            {253402300800000LL, "[10000-01-01] User: zebra"},
            {0, "\nUser: zebra"},
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                cm_message_t earlier[] = {
                    dated(CM_ROLE_USER, "zebra", 1, cases[i].ts)};
                cm_context_in_t in = recall_input(earlier, 1, "zebra", 2000);
                cm_context_out_t out;

                build(&in, &out);
                assert_int_equal(out.recalled_cnt, 1);
                if (!strstr(out.text, cases[i].line))
                        fail_msg("ts %lld: no \"%s\" in \"%s\"",
                                 (long long)cases[i].ts, cases[i].line,
                                 out.text);
                cm_context_out_release(&out);
        }
}

/* Recalled messages are in their order among the candidates, whatever
 * their rank. */
static void test_recall_chronological(void **state)
{
        cm_message_t earlier[12];
        char text[12][64];
        cm_context_in_t in;
        cm_context_out_t out;
        const char *prev = NULL;
        size_t i;

        (void)state;
        for (i = 0; i < 12; i++) {
                /* The later, the fewer query terms: rank is the reverse
                 * of time. */
                snprintf(text[i], sizeof(text[i]), "%s%s%s note %zu",
                         i < 4 ? "alpha " : "", i < 8 ? "beta " : "", "gamma",
                         i);
                earlier[i] = dated(i % 2 ? CM_ROLE_ASSISTANT : CM_ROLE_USER,
                                   text[i], (int64_t)i + 1, 0);
        }
        in = recall_input(earlier, 12, "alpha beta gamma", 2000);
        build(&in, &out);
        assert_int_equal(out.recalled_cnt, 12);
        for (i = 0; i < out.recalled_cnt; i++) {
                const char *at = strstr(out.text, out.recalled[i].content);

                assert_int_equal(out.recalled[i].seq, (int64_t)i + 1);
                assert_non_null(at);
                assert_true(!prev || at > prev);
                prev = at;
        }
        cm_context_out_release(&out);
}

/* Without a query, or when it matches nothing, the newest earlier
 * messages fill the room left. */
static void test_recall_recency(void **state)
{
        cm_message_t earlier[10];
        char text[10][32];
        cm_context_in_t in;
        cm_context_out_t out, base;
        size_t i, last = 0;
        int max;

        (void)state;
        for (i = 0; i < 10; i++) {
                snprintf(text[i], sizeof(text[i]), "older message %zu", i);
                earlier[i] = dated(CM_ROLE_USER, text[i], (int64_t)i + 1, 0);
        }
        in = recall_input(earlier, 10, NULL, 2000);
        in.earlier_cnt = 0;
        build(&in, &base);
        in.earlier_cnt = 10;
        for (max = base.tokens; max < base.tokens + 80; max++) {
                in.max_tokens = max;
                build(&in, &out);
                /* The newest ones, as many as fit, never fewer than with
                 * one token less. */
                assert_true(out.recalled_cnt >= last);
                for (i = 0; i < out.recalled_cnt; i++)
                        assert_int_equal(
                            out.recalled[i].seq,
                            (int64_t)(10 - out.recalled_cnt + i + 1));
                last = out.recalled_cnt;
                cm_context_out_release(&out);
        }
        assert_int_equal(last, 10);

        /* A query of words the session never used, or that only
         * repeats match: nothing recalled, the text without candidates.
         * No query at all ("" is none): the newest ones again. */
        in.max_tokens = base.tokens + 30;
        in.earlier_cnt = 0;
        cm_context_out_release(&base);
        build(&in, &base);
        in.earlier_cnt = 10;
        in.query = "zeppelin";
        build(&in, &out);
        assert_int_equal(out.recalled_cnt, 0);
        assert_string_equal(out.text, base.text);
        cm_context_out_release(&out);
        snprintf(text[0], sizeof(text[0]), "Thanks for listening.");
        earlier[0].content_len = strlen(text[0]);
        in.query = "thanks for listening";
        in.summary_max_tokens = 1;
        build(&in, &out);
        assert_int_equal(out.recalled_cnt, 0);
        assert_string_equal(out.text, base.text);
        assert_string_equal(out.summary, base.summary);
        cm_context_out_release(&out);
        in.summary_max_tokens = 0;
        in.query = "";
        build(&in, &out);
        assert_true(out.recalled_cnt > 0 && out.recalled_cnt < 10);
        assert_int_equal(out.recalled[out.recalled_cnt - 1].seq, 10);
        cm_context_out_release(&out);
        cm_context_out_release(&base);
}

/* min_score_share: a hit far below the best one is left out, however much
 * room is left; 0 takes every hit the budget allows. */
static void test_recall_min_score(void **state)
{
        cm_message_t earlier[] = {
            dated(CM_ROLE_USER,
                  "My sister Priya opened a bakery in Lisbon called Pastel "
                  "Azul.",
                  1, 0),
            dated(CM_ROLE_USER, "The weather was grey all week.", 2, 0),
            dated(CM_ROLE_USER, "We played chess on Sunday evening.", 3, 0),
            dated(CM_ROLE_USER, "The train was late again.", 4, 0),
            dated(CM_ROLE_USER, "My cat sleeps all afternoon.", 5, 0),
            /* more than 3 turns away: its score is its own */
            dated(CM_ROLE_USER, "I read a novel about a bakery.", 6, 0),
        };
        cm_context_in_t in = recall_input(
            earlier, 6, "Where is Priya's bakery in Lisbon, Pastel Azul?",
            2000);
        cm_context_out_t out;

        (void)state;
        in.min_score_share = 0;
        build(&in, &out);
        assert_int_equal(out.recalled_cnt, 2); /* seq 1 and 6 */
        assert_int_equal(out.recalled[0].seq, 1);
        assert_int_equal(out.recalled[1].seq, 6);
        cm_context_out_release(&out);
        in.min_score_share = 50;
        build(&in, &out);
        assert_int_equal(out.recalled_cnt, 1);
        assert_int_equal(out.recalled[0].seq, 1);
        cm_context_out_release(&out);
}

/* No candidates: the text of before recall, byte for byte, whatever the
 * query. */
static void test_recall_no_candidates(void **state)
{
        cm_context_in_t in = recall_input(NULL, 0, NULL, 2000);
        cm_context_out_t a, b;
        int max;

        (void)state;
        for (max = 1; max < 120; max += 7) {
                in.max_tokens = max;
                in.query = NULL;
                build(&in, &a);
                in.query = "support group kitchen";
                in.summary_max_tokens = 5;
                build(&in, &b);
                assert_string_equal(a.text, b.text);
                assert_string_equal(a.summary, b.summary);
                assert_int_equal(a.truncated, b.truncated);
                assert_int_equal(b.recalled_cnt, 0);
                assert_null(b.recalled);
                assert_int_equal(b.recall_us, 0);
                cm_context_out_release(&a);
                cm_context_out_release(&b);
        }
}

/* The summary yields to recalled messages only beyond summary_max_tokens,
 * from its oldest sentences, and only as far as they need. */
static void test_recall_summary_share(void **state)
{
        /* Five sentences of 16 code points (4 "estimate" tokens) each. */
        const char *summary = "Aaaa aaaa aaaaa. Bbbb bbbb bbbbb. Cccc cccc "
                              "ccccc. Dddd dddd ddddd. Eeee eeee eeeee.";
        cm_message_t earlier[] = {
            dated(CM_ROLE_USER, "The kitchen is green now.", 1, 0),
        };
        cm_context_in_t in = recall_input(earlier, 1, "kitchen", 0);
        cm_context_out_t out, base;

        (void)state;
        in.profile = NULL;
        in.summary = summary;
        in.earlier_cnt = 0;
        in.max_tokens = 1000;
        build(&in, &base);
        in.earlier_cnt = 1;

        /* The budget of the text without recall: the summary whole with a
         * cap of 0, no recall. */
        in.max_tokens = base.tokens;
        build(&in, &out);
        assert_string_equal(out.text, base.text);
        assert_int_equal(out.recalled_cnt, 0);
        cm_context_out_release(&out);

        /* With a cap, the oldest sentences make room (tests/test_budget.c
         * checks, with the exact tokenizers, that no more go than
         * needed; "estimate" counts each piece rounded up). */
        in.summary_max_tokens = 10;
        build(&in, &out);
        assert_int_equal(out.recalled_cnt, 1);
        assert_int_equal(out.truncated, 1);
        assert_true(strlen(out.summary) < strlen(summary));
        assert_true(strstr(summary, out.summary) != NULL);
        assert_string_equal(out.summary + strlen(out.summary) - 16,
                            "Eeee eeee eeeee.");
        cm_context_out_release(&out);

        /* Never below the cap: a cap of the whole summary keeps it. */
        in.summary_max_tokens = 1000;
        build(&in, &out);
        assert_string_equal(out.summary, summary);
        assert_int_equal(out.recalled_cnt, 0);
        cm_context_out_release(&out);

        /* Room to spare: nothing trimmed. */
        in.summary_max_tokens = 10;
        in.max_tokens = base.tokens + 40;
        build(&in, &out);
        assert_string_equal(out.summary, summary);
        assert_int_equal(out.recalled_cnt, 1);
        assert_int_equal(out.truncated, 0);
        cm_context_out_release(&out);
        cm_context_out_release(&base);
}

/* Recall only where every recent message is whole. */
static void test_recall_after_recent(void **state)
{
        cm_message_t earlier[] = {
            dated(CM_ROLE_USER, "kitchen", 1, 0),
        };
        cm_context_in_t in = recall_input(earlier, 1, "kitchen", 0);
        cm_context_out_t out;

        (void)state;
        in.summary_max_tokens = 1;
        in.max_tokens = est("User Profile: Sumit Pandya, full stack "
                            "developer\nInterests: React, Node.js\n\n"
                            "Recent Messages:\nAssistant: Any time.\n") +
                        est(recall_recent[2].content) + 4;
        build(&in, &out);
        assert_int_equal(out.recent_cnt, 2);
        assert_int_equal(out.recalled_cnt, 0);
        assert_null(strstr(out.text, "Relevant"));
        cm_context_out_release(&out);
}

/* A unit that does not fit is skipped for the next ones. */
static void test_recall_skips(void **state)
{
        char big[2001];
        cm_message_t earlier[3];
        cm_context_in_t in;
        cm_context_out_t out;

        (void)state;
        memset(big, 'x', sizeof(big) - 1);
        memcpy(big, "kitchen kitchen kitchen ", 24);
        big[sizeof(big) - 1] = '\0';
        earlier[0] = dated(CM_ROLE_USER, "The kitchen tiles are blue.", 1, 0);
        earlier[1] = dated(CM_ROLE_ASSISTANT, "Nice.", 2, 0);
        earlier[2] = dated(CM_ROLE_USER, big, 3, 0);
        in = recall_input(earlier, 3, "kitchen", 400);
        build(&in, &out);
        assert_int_equal(out.recalled_cnt, 1);
        assert_int_equal(out.recalled[0].seq, 1);
        cm_context_out_release(&out);
}

/* A question and its answer that do not fit together: the answer alone
 * when it fits and is not short; else nothing of the unit. */
static void test_recall_answer_alone(void **state)
{
        char question[801];
        cm_message_t earlier[2];
        cm_context_in_t in;
        cm_context_out_t base, out;
        const char *answer = "I play the violin on Sundays with my aunt.";
        char line[128];
        int room;

        (void)state;
        memset(question, 'x', sizeof(question) - 1);
        memcpy(question, "Which instrument do you play? ", 30);
        question[sizeof(question) - 2] = '?';
        question[sizeof(question) - 1] = '\0';
        earlier[0] = dated(CM_ROLE_ASSISTANT, question, 1, 0);
        earlier[1] = dated(CM_ROLE_USER, answer, 2, 0);
        in = recall_input(earlier, 2, "Which instrument?", 2000);
        in.earlier_cnt = 0;
        build(&in, &base);
        in.earlier_cnt = 2;
        /* Room for the answer's line, far from the question's 200. */
        snprintf(line, sizeof(line), "User: %s\n\n", answer);
        room = est("Relevant Earlier Messages:\n") + est(line) + 2;

        /* With room for both: the unit, question and answer. */
        build(&in, &out);
        assert_int_equal(out.recalled_cnt, 2);
        cm_context_out_release(&out);

        /* Room for the answer only. */
        in.max_tokens = base.tokens + room;
        build(&in, &out);
        assert_int_equal(out.recalled_cnt, 1);
        assert_int_equal(out.recalled[0].seq, 2);
        cm_context_out_release(&out);

        /* A short answer says nothing alone. */
        earlier[1] = dated(CM_ROLE_USER, "The violin.", 2, 0);
        build(&in, &out);
        assert_int_equal(out.recalled_cnt, 0);
        assert_string_equal(out.text, base.text);
        cm_context_out_release(&out);
        cm_context_out_release(&base);
}

/* A prebuilt index gives the same text; one over another count is not
 * used. */
static void test_recall_index_given(void **state)
{
        cm_message_t earlier[] = {
            dated(CM_ROLE_USER, "I went to the LGBTQ support group.", 1, 0),
            dated(CM_ROLE_USER, "We painted the kitchen green.", 2, 0),
            dated(CM_ROLE_USER, "Thanks for listening.", 3, 0),
        };
        cm_recall_index_t *ix = cm_recall_index_new(earlier, 3);
        cm_recall_index_t *other = cm_recall_index_new(earlier, 2);
        cm_context_in_t in =
            recall_input(earlier, 3, recall_recent[2].content, 2000);
        cm_context_out_t a, b, c;

        (void)state;
        build(&in, &a);
        in.index = ix;
        build(&in, &b);
        in.index = other;
        build(&in, &c);
        assert_string_equal(a.text, b.text);
        assert_string_equal(a.text, c.text);
        /* "Thanks for listening." repeats a recent message. */
        assert_int_equal(a.recalled_cnt, 2);
        cm_context_out_release(&a);
        cm_context_out_release(&b);
        cm_context_out_release(&c);
        cm_recall_index_destroy(ix);
        cm_recall_index_destroy(other);
}

/* ---- property test ---- */

static uint64_t rng_state;

static uint32_t rng(void)
{
        /* xorshift64* */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return (uint32_t)((rng_state * 0x2545f4914f6cdd1dULL) >> 32);
}

static void random_text(cm_buf_t *b, size_t pieces)
{
        static const char *const piece[] = {
            "word",
            "a",
            " ",
            "Hello",
            ". ",
            "! ",
            "? ",
            "\n",
            "\xc3\xa9",
            "\xe4\xb8\xad",
            "\xf0\x9f\x98\x80",
            "caf\xc3\xa9",
            ".",
            "end. Start ",
        };
        size_t i;

        for (i = 0; i < pieces; i++)
                cm_buf_adds(b,
                            piece[rng() % (sizeof(piece) / sizeof(piece[0]))]);
}

/* The text that the layout gives for out's own parts. */
static void render_out(const cm_context_out_t *out, const cm_profile_t *profile,
                       cm_buf_t *b)
{
        size_t i;

        if (out->profile_kept) {
                cm_buf_addf(b,
                            "User Profile: %s, %s\nInterests: ", profile->name,
                            profile->role);
                for (i = 0; i < profile->interest_cnt; i++)
                        cm_buf_addf(b, "%s%s", i ? ", " : "",
                                    profile->interests[i]);
        }
        if (*out->summary)
                cm_buf_addf(b, "%sSummary: %s", b->len ? "\n" : "",
                            out->summary);
        if (out->recent_cnt)
                cm_buf_adds(b, b->len ? "\n\nRecent Messages:"
                                      : "Recent Messages:");
        for (i = 0; i < out->recent_cnt; i++)
                cm_buf_addf(b, "\n%s: %s", cm_role_label(out->recent[i].role),
                            out->recent[i].content);
}

static int ends_with(const char *s, size_t len, const char *suffix,
                     size_t suffix_len)
{
        return len >= suffix_len &&
               memcmp(s + len - suffix_len, suffix, suffix_len) == 0;
}

static void check_random_case(void)
{
        cm_buf_t contents[8], summary, rendered;
        cm_message_t msgs[8];
        cm_context_in_t in;
        cm_context_out_t out;
        size_t cnt = rng() % 9, i, protect = 0, j;
        int with_profile = rng() % 2;
        const cm_message_t *newest_user = NULL;

        cm_buf_init(&summary);
        cm_buf_init(&rendered);
        if (rng() % 3)
                random_text(&summary, rng() % 40);
        for (i = 0; i < cnt; i++) {
                cm_buf_init(&contents[i]);
                random_text(&contents[i], rng() % 4 ? rng() % 30 : rng() % 600);
                msgs[i] = fixture_msg((cm_role_t)(rng() % 3), contents[i].buf);
        }
        for (i = cnt; i > 0; i--) {
                if (msgs[i - 1].role == CM_ROLE_USER) {
                        newest_user = &msgs[i - 1];
                        protect = i - 1;
                        break;
                }
        }
        if (!newest_user && cnt) {
                protect = cnt - 1;
                newest_user = &msgs[protect];
        }

        in = input(with_profile ? &seed_profile : NULL, summary.buf, msgs, cnt,
                   1 + (int)(rng() % 400));
        build(&in, &out);

        /* The text is the layout of the parts reported. */
        render_out(&out, &seed_profile, &rendered);
        assert_string_equal(out.text, rendered.buf);

        /* The summary kept is a suffix of the summary. */
        assert_true(ends_with(summary.buf, summary.len, out.summary,
                              strlen(out.summary)));

        /* The messages kept are in order, and the protected one is there
         * verbatim, or cut with the marker only when it is alone. */
        for (i = 0, j = 0; i < out.recent_cnt; i++, j++) {
                const cm_message_t *r = &out.recent[i];

                while (j < cnt &&
                       (msgs[j].role != r->role ||
                        (strcmp(msgs[j].content, r->content) && j != protect)))
                        j++;
                assert_true(j < cnt);
        }
        if (newest_user && out.text_len == 0) {
                char head[64];

                snprintf(head, sizeof(head), "Recent Messages:\n%s: " MARKER,
                         cm_role_label(newest_user->role));
                assert_true(est(head) > in.max_tokens ||
                            newest_user->content_len == 0);
        } else if (newest_user) {
                int found = 0;

                for (i = 0; i < out.recent_cnt; i++) {
                        const cm_message_t *r = &out.recent[i];

                        if (r->role == newest_user->role &&
                            strcmp(r->content, newest_user->content) == 0)
                                found = 1;
                }
                if (!found) {
                        const cm_message_t *r = &out.recent[0];

                        assert_int_equal(out.recent_cnt, 1);
                        assert_int_equal(out.profile_kept, 0);
                        assert_string_equal(out.summary, "");
                        assert_int_equal(r->role, newest_user->role);
                        assert_memory_equal(r->content, MARKER, strlen(MARKER));
                        assert_true(ends_with(newest_user->content,
                                              newest_user->content_len,
                                              r->content + strlen(MARKER),
                                              r->content_len - strlen(MARKER)));
                        assert_true(cm_utf8_valid(r->content, r->content_len));
                }
        }
        if (!out.truncated) {
                assert_int_equal(out.recent_cnt, cnt);
                assert_int_equal(strlen(out.summary), summary.len);
        }

        cm_context_out_release(&out);
        for (i = 0; i < cnt; i++)
                cm_buf_release(&contents[i]);
        cm_buf_release(&summary);
        cm_buf_release(&rendered);
}

static void test_property_random(void **state)
{
        int n;

        (void)state;
        rng_state = 0x9e3779b97f4a7c15ULL;
        for (n = 0; n < 1000; n++)
                check_random_case();
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_estimate),
            cmocka_unit_test(test_tokenizer_unknown),
            cmocka_unit_test(test_seed_layout),
            cmocka_unit_test(test_design_layout),
            cmocka_unit_test(test_no_profile),
            cmocka_unit_test(test_partial_profile),
            cmocka_unit_test(test_no_summary),
            cmocka_unit_test(test_no_messages),
            cmocka_unit_test(test_only_messages),
            cmocka_unit_test(test_copies),
            cmocka_unit_test(test_full_tokens),
            cmocka_unit_test(test_budget_summary_trimmed),
            cmocka_unit_test(test_budget_summary_dropped),
            cmocka_unit_test(test_budget_oldest_dropped),
            cmocka_unit_test(test_budget_newest_user_kept),
            cmocka_unit_test(test_budget_no_user_message),
            cmocka_unit_test(test_budget_profile_dropped),
            cmocka_unit_test(test_budget_cut_ascii),
            cmocka_unit_test(test_budget_cut_multibyte),
            cmocka_unit_test(test_budget_tiny),
            cmocka_unit_test(test_budget_large),
            cmocka_unit_test(test_recall_layout),
            cmocka_unit_test(test_recall_dates),
            cmocka_unit_test(test_recall_chronological),
            cmocka_unit_test(test_recall_recency),
            cmocka_unit_test(test_recall_min_score),
            cmocka_unit_test(test_recall_no_candidates),
            cmocka_unit_test(test_recall_summary_share),
            cmocka_unit_test(test_recall_after_recent),
            cmocka_unit_test(test_recall_skips),
            cmocka_unit_test(test_recall_answer_alone),
            cmocka_unit_test(test_recall_index_given),
            cmocka_unit_test(test_property_random),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
