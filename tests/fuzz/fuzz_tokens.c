/*
 * The tokenizer (tokens.h), cl100k_base and o200k_base: count and encode.
 * Invariants: the count is the number of ids; every id is a rank of the
 * encoding; and the bytes of the ids concatenate to the input as the
 * tokenizer reads it, repaired to valid UTF-8 (text.h). The data is read
 * from CHATMEM_TOKENIZER_DIR or the build tree's build/data.
 */
#include "fuzz.h"
#include "text.h"
#include "tokens.h"
#include "util.h"

static const char *const encodings[] = {"cl100k_base", "o200k_base"};

static void check(const char *name, const char *text, size_t len,
                  const cm_buf_t *want)
{
        const cm_tokenizer_t *tk = NULL;
        char errstr[256];
        uint32_t *ids = NULL;
        size_t cnt = 0, i, tok_len;
        const char *tok;
        cm_buf_t got = CM_BUF_INIT;

        if (cm_tokenizer_get(name, &tk, errstr, sizeof(errstr)) == -1) {
                fprintf(stderr, "fuzz_tokens: %s\n", errstr);
                abort();
        }
        FUZZ_CHECK(cm_tokenizer_encode(tk, text, len, &ids, &cnt) == 0);
        FUZZ_CHECK(cm_tokenizer_count(tk, text, len) == (int)cnt);
        for (i = 0; i < cnt; i++) {
                tok = cm_tokenizer_token(tk, ids[i], &tok_len);
                FUZZ_CHECK(tok != NULL);
                cm_buf_add(&got, tok, tok_len);
        }
        FUZZ_CHECK(got.len == want->len &&
                   !memcmp(got.buf, want->buf, got.len));
        cm_buf_release(&got);
        free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *text = (const char *)data;
        cm_buf_t want = CM_BUF_INIT;
        size_t i;

        cm_utf8_repair(&want, text, size);
        for (i = 0; i < sizeof(encodings) / sizeof(encodings[0]); i++)
                check(encodings[i], text, size, &want);
        cm_buf_release(&want);
        return 0;
}
