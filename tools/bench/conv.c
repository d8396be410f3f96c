/*
 * conv: the bench's conversations, in the seed's style, and the state
 * chatmem keeps for them (see bench.h).
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "context.h"
#include "profile.h"
#include "summarize.h"

static const char *const topics[][2] = {
    {"async/await in JavaScript",
     "an async function returns a Promise and await pauses it until the "
     "Promise settles"},
    {"the event loop",
     "the call stack runs to completion, then microtasks such as resolved "
     "Promises, then the next macrotask such as a timer"},
    {"closures", "a function keeps access to the variables of the scope it "
                 "was created in, even after that scope has returned"},
    {"React hooks", "useState keeps state between renders and useEffect runs "
                    "side effects after the render is committed"},
    {"Node.js streams",
     "a readable stream emits chunks, a writable stream accepts them, and "
     "pipe() handles backpressure between them"},
    {"PostgreSQL indexes", "a B-tree index speeds up equality and range "
                           "lookups at the cost of slower writes"},
    {"Docker layers", "each instruction of a Dockerfile adds a layer, and "
                      "unchanged layers are reused from the cache"},
    {"JWT authentication", "the server signs a token with the user's claims "
                           "and checks the signature on every request"},
};
#define TOPIC_CNT (sizeof(topics) / sizeof(topics[0]))

const char *conv_topic(long long n)
{
        return topics[(size_t)(n < 0 ? -n : n) % TOPIC_CNT][0];
}

cm_role_t conv_msg(long long n, cm_buf_t *b)
{
        const char *const *t = topics[(size_t)(n / 2) % TOPIC_CNT];

        cm_buf_reset(b);
        if (n == 0) {
                cm_buf_adds(b, "Hi, I'm Sumit Pandya, full stack developer");
                return CM_ROLE_USER;
        }
        if (n == 1) {
                cm_buf_adds(b, "Nice to meet you, Sumit! How can I help you "
                               "today?");
                return CM_ROLE_ASSISTANT;
        }
        if (n % 2 == 0) {
                cm_buf_addf(b,
                            "Can you explain %s? I use it at work on our React "
                            "and Node.js app.",
                            t[0]);
                return CM_ROLE_USER;
        }
        cm_buf_addf(b,
                    "Sure. In short, %s. In practice this matters because it "
                    "decides how your code behaves under load, how errors "
                    "surface and how easy it is to test. If you tell me more "
                    "about your setup, I can suggest a concrete pattern for "
                    "%s.",
                    t[1], t[0]);
        return CM_ROLE_ASSISTANT;
}

/* Fills msgs[0..cnt) with the conversation (owned; release each). */
static void conv_fill(cm_message_t *msgs, size_t cnt)
{
        cm_buf_t b;
        size_t i;

        cm_buf_init(&b);
        for (i = 0; i < cnt; i++) {
                memset(&msgs[i], 0, sizeof(msgs[i]));
                msgs[i].role = conv_msg((long long)i, &b);
                msgs[i].content = cm_strndup(b.buf, b.len);
                msgs[i].content_len = b.len;
                msgs[i].seq = (int64_t)i + 1;
                msgs[i].ts = 1732400000000LL + (int64_t)i * 1000;
                msgs[i].tokens = -1;
        }
        cm_buf_release(&b);
}

/* Folds the facts of one user message into profile as ingest does: a
 * later statement replaces an earlier one, interests add up. */
static void profile_merge(cm_profile_t *profile, const cm_message_t *msg)
{
        cm_profile_t facts;
        size_t j;

        cm_profile_extract(msg->content, msg->content_len, &facts);
        if (facts.name) {
                free(profile->name);
                profile->name = facts.name;
                facts.name = NULL;
        }
        if (facts.role) {
                free(profile->role);
                profile->role = facts.role;
                facts.role = NULL;
        }
        for (j = 0; j < facts.interest_cnt; j++) {
                profile->interests =
                    cm_realloc(profile->interests,
                               (profile->interest_cnt + 1) * sizeof(char *));
                profile->interests[profile->interest_cnt++] =
                    facts.interests[j];
                facts.interests[j] = NULL;
        }
        facts.interest_cnt = 0;
        cm_profile_release(&facts);
}

/* The profile and the summary of msgs[0..cnt) (see conv_session_t); sets
 * the tokens of each message. */
static void session_state(const cm_config_t *cfg, const cm_tokenizer_t *tk,
                          cm_message_t *msgs, size_t cnt, cm_profile_t *profile,
                          char **summary)
{
        size_t i, keep = (size_t)cfg->recent_verbatim,
                  step = (size_t)cfg->summarize_after, upto = 0;
        char *sum = cm_strdup("");

        memset(profile, 0, sizeof(*profile));
        for (i = 0; i < cnt; i++) {
                if (msgs[i].role == CM_ROLE_USER)
                        profile_merge(profile, &msgs[i]);
                msgs[i].tokens = cm_context_line_tokens(&msgs[i], tk);
        }
        /* Fold once more than keep + step are unsummarized. */
        while (cnt > keep && cnt - upto > keep + step) {
                cm_fold_in_t in = {
                    .summary = sum,
                    .msgs = msgs + upto,
                    .msg_cnt = cnt - keep - upto,
                    .max_tokens = cfg->summary_max_tokens,
                    .tk = tk,
                };
                char *next = cm_extractive_fold(&in);

                free(sum);
                sum = next;
                upto = cnt - keep;
        }
        *summary = sum;
}

void conv_session_init(conv_session_t *cs, size_t cnt, const cm_config_t *cfg,
                       const cm_tokenizer_t *tk)
{
        cs->cnt = cnt;
        cs->msgs = cm_calloc(cnt ? cnt : 1, sizeof(*cs->msgs));
        conv_fill(cs->msgs, cnt);
        session_state(cfg, tk, cs->msgs, cnt, &cs->profile, &cs->summary);
}

void conv_session_release(conv_session_t *cs)
{
        size_t i;

        for (i = 0; cs->msgs && i < cs->cnt; i++)
                cm_message_release(&cs->msgs[i]);
        free(cs->msgs);
        cm_profile_release(&cs->profile);
        free(cs->summary);
        memset(cs, 0, sizeof(*cs));
}

void conv_context_in(const conv_session_t *cs, const cm_message_t *msgs,
                     size_t msg_cnt, const cm_config_t *cfg,
                     const cm_tokenizer_t *tk, cm_context_in_t *in)
{
        memset(in, 0, sizeof(*in));
        in->profile = &cs->profile;
        in->summary = cs->summary;
        in->msgs = msgs;
        in->msg_cnt = msg_cnt;
        in->max_tokens = cfg->max_tokens;
        in->tk = tk;
}
