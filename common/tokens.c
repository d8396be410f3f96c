/*
 * tokens: the table of known tokenizers and the "estimate" tokenizer.
 *
 * A tokenizer is a name and a count function. Adding an exact BPE tokenizer
 * ("cl100k_base", "o200k_base") means adding a row to tokenizers[]; one whose
 * data must be loaded on first use would do so under pthread_once() in
 * cm_tokenizer_get(), so that the result stays immutable and thread-safe.
 */
#include "tokens.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

struct cm_tokenizer {
        const char *name;
        /* Tokens in text[0..len); text need not be valid UTF-8. */
        int (*count)(const char *text, size_t len);
};

/* ceil(code points / 4), the seed's rule. A code point is counted for each
 * byte that is not a continuation byte (0x80..0xBF), which also gives a
 * sensible answer for invalid UTF-8. */
static int estimate_count(const char *text, size_t len)
{
        const unsigned char *s = (const unsigned char *)text;
        size_t cp = 0;
        size_t tokens;
        size_t i;

        for (i = 0; i < len; i++)
                cp += (s[i] & 0xc0) != 0x80;
        tokens = cp / 4 + (cp % 4 != 0);
        return tokens > INT_MAX ? INT_MAX : (int)tokens;
}

static const cm_tokenizer_t tokenizers[] = {
    {"estimate", estimate_count},
};

#define TOKENIZER_CNT (sizeof(tokenizers) / sizeof(tokenizers[0]))

int cm_tokenizer_get(const char *name, const cm_tokenizer_t **out, char *errstr,
                     size_t errstr_size)
{
        cm_buf_t known;
        size_t i;

        for (i = 0; name && i < TOKENIZER_CNT; i++) {
                if (strcmp(tokenizers[i].name, name) == 0) {
                        *out = &tokenizers[i];
                        return 0;
                }
        }

        cm_buf_init(&known);
        for (i = 0; i < TOKENIZER_CNT; i++) {
                if (i > 0)
                        cm_buf_adds(&known, ", ");
                cm_buf_adds(&known, tokenizers[i].name);
        }
        snprintf(errstr, errstr_size, "unknown tokenizer '%s' (known: %s)",
                 name ? name : "", known.buf);
        cm_buf_release(&known);
        return -1;
}

const char *cm_tokenizer_name(const cm_tokenizer_t *tk)
{
        return tk->name;
}

int cm_tokenizer_count(const cm_tokenizer_t *tk, const char *text, size_t len)
{
        return tk->count(text, len);
}
