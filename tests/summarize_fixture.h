/*
 * summarize_fixture: chat messages shared by the extractive summarizer's
 * unit tests (tests/test_summarize.c) and its benchmark
 * (tests/bench/bench_summarize.c). summarize_fixture(): ten typical
 * messages (greetings, a name and a place, a decision with a date and a
 * number, a question and its answer, thanks). chat_fixture(): a longer
 * chat where the user's facts sit between small talk and long answers.
 * The messages point to string literals: nothing to free.
 */
#ifndef CM_SUMMARIZE_FIXTURE_H
#define CM_SUMMARIZE_FIXTURE_H

#include <string.h>

#include "codec.h"

#define SUMMARIZE_FIXTURE_CNT 10

/* A message of role with content (a literal), its tokens not counted. */
static inline cm_message_t fixture_msg(cm_role_t role, const char *content)
{
        cm_message_t m;

        memset(&m, 0, sizeof(m));
        m.role = role;
        m.content = (char *)content;
        m.content_len = strlen(content);
        m.tokens = -1;
        return m;
}

/* Fills m[0..SUMMARIZE_FIXTURE_CNT). */
static inline void summarize_fixture(cm_message_t *m)
{
        m[0] = fixture_msg(CM_ROLE_USER, "Hi!");
        m[1] =
            fixture_msg(CM_ROLE_ASSISTANT, "Hello! How can I help you today?");
        m[2] = fixture_msg(CM_ROLE_USER,
                           "Hi, I'm Maria Lopez and I live in Lisbon.");
        m[3] = fixture_msg(CM_ROLE_ASSISTANT, "Nice to meet you, Maria!");
        m[4] = fixture_msg(CM_ROLE_USER,
                           "We decided to move the launch to March 14 because "
                           "the payments API is not ready.");
        m[5] = fixture_msg(CM_ROLE_ASSISTANT,
                           "Understood. Moving the launch to March 14 gives "
                           "the team 3 more weeks.");
        m[6] =
            fixture_msg(CM_ROLE_USER, "How is Kafka different from RabbitMQ?");
        m[7] = fixture_msg(CM_ROLE_ASSISTANT,
                           "Kafka keeps an ordered, replayable log per "
                           "partition, while RabbitMQ routes messages to "
                           "queues and deletes them once they are "
                           "acknowledged.");
        m[8] = fixture_msg(CM_ROLE_USER, "Thanks, that helps!");
        m[9] = fixture_msg(CM_ROLE_ASSISTANT, "You're welcome!");
}

/*
 * A longer chat with a user who tells about themself between small talk,
 * and an assistant that answers at length and asks back: what the
 * summarizer must boil down to the user's facts. Sixteen messages.
 */
#define CHAT_FIXTURE_CNT 16

/* Fills m[0..CHAT_FIXTURE_CNT). */
static inline void chat_fixture(cm_message_t *m)
{
        m[0] = fixture_msg(CM_ROLE_USER, "Hey there! How are you doing today?");
        m[1] = fixture_msg(CM_ROLE_ASSISTANT,
                           "I'm doing well, thanks for asking! It's always "
                           "nice to chat. What would you like to talk about?");
        m[2] = fixture_msg(CM_ROLE_USER,
                           "Oh, I'm just winding down after a long shift. I "
                           "work as a paramedic in Rotterdam.");
        m[3] = fixture_msg(
            CM_ROLE_ASSISTANT,
            "That sounds like demanding but really meaningful work. Long "
            "shifts can be exhausting, so it's important to rest and take "
            "care of yourself when you get home. Do you have any hobbies "
            "that help you unwind?");
        m[4] = fixture_msg(CM_ROLE_USER,
                           "Definitely. I love rock climbing and I brew my "
                           "own beer. That's so true about resting, though!");
        m[5] = fixture_msg(
            CM_ROLE_ASSISTANT,
            "Rock climbing is a fantastic way to stay strong and focused, "
            "and home brewing is a fun mix of science and creativity. Many "
            "people find that hobbies with clear goals help them switch off "
            "from stressful jobs. What kind of beer do you like to brew?");
        m[6] = fixture_msg(CM_ROLE_USER, "Mostly dark stouts.");
        m[7] = fixture_msg(CM_ROLE_ASSISTANT,
                           "Stouts are a great choice! They are rich and "
                           "forgiving, which makes them a nice style to "
                           "experiment with.");
        m[8] = fixture_msg(CM_ROLE_USER,
                           "I think so too. Anyway, my sister Noor is "
                           "getting married on June 21 and I'm giving a "
                           "speech.");
        m[9] = fixture_msg(
            CM_ROLE_ASSISTANT,
            "Congratulations to your sister! A wedding speech is a lovely "
            "honour. A good speech is usually short, personal and warm: open "
            "with how you know the couple, tell one story, and end with a "
            "toast. Would you like help drafting it?");
        m[10] = fixture_msg(CM_ROLE_USER, "Yes please, that would be great.");
        m[11] = fixture_msg(
            CM_ROLE_ASSISTANT,
            "Of course! Start by introducing yourself, then share a memory "
            "that shows who your sister is, and finish by raising a glass "
            "to the couple. Keep it under five minutes so that everyone "
            "stays with you.");
        m[12] = fixture_msg(CM_ROLE_USER,
                            "Thanks, that helps a lot. I'm sure it will go "
                            "fine.");
        m[13] = fixture_msg(CM_ROLE_ASSISTANT,
                            "I'm sure it will! You clearly care about her a "
                            "lot, and that will come through.");
        m[14] = fixture_msg(CM_ROLE_USER,
                            "By the way, we have two cats, Miso and Tofu.");
        m[15] = fixture_msg(CM_ROLE_ASSISTANT,
                            "Those are adorable names! Cats are wonderful "
                            "company after a long day.");
}

#endif
