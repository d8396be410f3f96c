/*
 * summarize_fixture: ten typical chat messages, shared by the extractive
 * summarizer's unit tests (tests/test_summarize.c) and its benchmark
 * (tests/bench/bench_summarize.c): greetings, a name and a place, a
 * decision with a date and a number, a question and its answer, thanks.
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

#endif
