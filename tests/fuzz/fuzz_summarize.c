/*
 * The extractive summarizer (cm_extractive_fold). An input is a control
 * byte, then parts split at 0xff: the previous summary, then one message
 * per part, its first byte choosing the role and the rest its content.
 * The control byte chooses max_tokens (1..128) and the tokenizer
 * (cl100k_base or estimate). Texts are made what a cm_message_t holds:
 * repaired to valid UTF-8 (text.h), cut at a NUL.
 *
 * Invariant: the summary is valid UTF-8 within max_tokens tokens.
 */
#include "fuzz.h"
#include "summarize.h"
#include "text.h"
#include "tokens.h"
#include "util.h"

#define MSGS_MAX 256

static const cm_tokenizer_t *tokenizer(const char *name)
{
        const cm_tokenizer_t *tk = NULL;
        char errstr[256];

        if (cm_tokenizer_get(name, &tk, errstr, sizeof(errstr)) == -1) {
                fprintf(stderr, "fuzz_summarize: %s\n", errstr);
                abort();
        }
        return tk;
}

/* A heap copy of s[0..len) as valid UTF-8 without NUL; *out_len its
 * length. */
static char *text_dup(const char *s, size_t len, size_t *out_len)
{
        cm_buf_t b = CM_BUF_INIT;
        char *text;

        cm_utf8_repair(&b, s, len);
        text = cm_buf_detach(&b, NULL);
        *out_len = strlen(text);
        return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        cm_message_t msgs[MSGS_MAX];
        cm_fold_in_t in;
        fuzz_split_t sp;
        const char *part;
        size_t len, i, cnt = 0, out_len;
        char *prev, *out;

        if (size < 1)
                return 0;
        memset(&in, 0, sizeof(in));
        in.max_tokens = 1 + (data[0] >> 1) % 128;
        in.tk = tokenizer(data[0] & 1 ? "estimate" : "cl100k_base");
        fuzz_split_init(&sp, data + 1, size - 1);
        fuzz_split_next(&sp, &part, &len);
        prev = text_dup(part, len, &len);
        in.summary = prev;
        while (cnt < MSGS_MAX && fuzz_split_next(&sp, &part, &len)) {
                memset(&msgs[cnt], 0, sizeof(msgs[cnt]));
                msgs[cnt].role =
                    len ? (cm_role_t)((uint8_t)part[0] % 3) : CM_ROLE_USER;
                msgs[cnt].content =
                    text_dup(len ? part + 1 : part, len ? len - 1 : 0,
                             &msgs[cnt].content_len);
                msgs[cnt].tokens = -1;
                cnt++;
        }
        in.msgs = cnt ? msgs : NULL;
        in.msg_cnt = cnt;

        out = cm_extractive_fold(&in);
        FUZZ_CHECK(out != NULL);
        out_len = strlen(out);
        FUZZ_CHECK(cm_utf8_valid(out, out_len));
        FUZZ_CHECK(cm_tokenizer_count(in.tk, out, out_len) <= in.max_tokens);

        free(out);
        free(prev);
        for (i = 0; i < cnt; i++)
                cm_message_release(&msgs[i]);
        return 0;
}
