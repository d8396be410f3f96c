/*
 * Recall's query normalisation (cm_recall_normalize) and the search it
 * feeds. An input is parts split at 0xff: the query (any bytes), then the
 * candidates, one per part, their first byte choosing the role and the
 * rest the content (repaired to valid UTF-8, cut at a NUL); a fixed
 * session when there is none.
 *
 * Invariants: normalisation returns as many terms as it writes, each
 * non-empty, without a space or an ASCII capital; a search's units are in
 * rank order, within the candidates, first <= hit <= last, with a score
 * above 0, no candidate in two units and no more units than hits.
 */
#include "fuzz.h"
#include "recall.h"
#include "text.h"
#include "util.h"

#define CANDIDATES_MAX 64

static const char *const session[] = {
    "I adopted a cat in July, her name is Luna.",
    "What a lovely name! How old is she?",
    "She is 3. We went hiking on 2023-05-08 near Paris.",
    "Did you take pictures?",
    "Yes, lots of them. I'm painting one now.",
};
#define SESSION_LEN (sizeof(session) / sizeof(session[0]))

static void check_terms(const cm_buf_t *b, size_t n)
{
        size_t i, spaces = 0;

        FUZZ_CHECK(b->len == 0 || b->buf[b->len - 1] == ' ');
        for (i = 0; i < b->len; i++) {
                FUZZ_CHECK(!cm_isupper(b->buf[i]));
                if (b->buf[i] != ' ')
                        continue;
                FUZZ_CHECK(i > 0 && b->buf[i - 1] != ' ');
                spaces++;
        }
        FUZZ_CHECK(spaces == n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        cm_message_t msgs[CANDIDATES_MAX];
        unsigned char used[CANDIDATES_MAX] = {0};
        cm_recall_index_t *ix;
        cm_recall_search_t *rs;
        cm_recall_unit_t unit;
        cm_buf_t b = CM_BUF_INIT;
        fuzz_split_t sp;
        const char *query, *part;
        size_t query_len, len, i, cnt = 0, units = 0;
        double last_score = 0;

        fuzz_split_init(&sp, data, size);
        fuzz_split_next(&sp, &query, &query_len);
        check_terms(&b, cm_recall_normalize(query, query_len, &b));

        while (cnt < CANDIDATES_MAX && fuzz_split_next(&sp, &part, &len)) {
                cm_buf_t text = CM_BUF_INIT;

                memset(&msgs[cnt], 0, sizeof(msgs[cnt]));
                msgs[cnt].role =
                    len ? (cm_role_t)((uint8_t)part[0] % 3) : CM_ROLE_USER;
                cm_utf8_repair(&text, len ? part + 1 : part, len ? len - 1 : 0);
                msgs[cnt].content = cm_buf_detach(&text, NULL);
                msgs[cnt].content_len = strlen(msgs[cnt].content);
                msgs[cnt].ts = 1690000000000 + (int64_t)cnt * 86400000;
                msgs[cnt].tokens = -1;
                cnt++;
        }
        if (!cnt) {
                for (i = 0; i < SESSION_LEN; i++) {
                        memset(&msgs[i], 0, sizeof(msgs[i]));
                        msgs[i].role = i % 2 ? CM_ROLE_ASSISTANT : CM_ROLE_USER;
                        msgs[i].content = cm_strdup(session[i]);
                        msgs[i].content_len = strlen(session[i]);
                        msgs[i].tokens = -1;
                }
                cnt = SESSION_LEN;
        }

        ix = cm_recall_index_new(msgs, cnt);
        rs = cm_recall_search_new(ix, query, query_len, NULL, 0);
        while (cm_recall_search_next(rs, &unit)) {
                FUZZ_CHECK(unit.first <= unit.hit && unit.hit <= unit.last &&
                           unit.last < cnt);
                FUZZ_CHECK(unit.score > 0);
                FUZZ_CHECK(units == 0 || unit.score <= last_score);
                for (i = unit.first; i <= unit.last; i++) {
                        FUZZ_CHECK(!used[i]);
                        used[i] = 1;
                }
                last_score = unit.score;
                units++;
        }
        FUZZ_CHECK(units <= cm_recall_search_hits(rs));
        cm_recall_search_destroy(rs);
        cm_recall_index_destroy(ix);
        for (i = 0; i < cnt; i++)
                cm_message_release(&msgs[i]);
        cm_buf_release(&b);
        return 0;
}
