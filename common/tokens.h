/*
 * tokens: counting the tokens of a text, behind one interface, so that the
 * rest of chatmem does not care which tokenizer is configured.
 *
 * Tokenizers are process-wide singletons: cm_tokenizer_get() loads on first
 * use and the result is immutable and thread-safe afterwards.
 *
 * "estimate": ceil(code points / 4), the seed's rule; always available.
 *
 * "cl100k_base", "o200k_base": OpenAI's byte-level BPE encodings. The ids
 * are exactly those of js-tiktoken's encode(text, [], []) (special tokens
 * such as "<|endoftext|>" are plain text), where text is the input decoded
 * as by WHATWG TextDecoder("utf-8", {ignoreBOM: true}): each maximal
 * ill-formed subsequence (a stray byte, a truncated, overlong or surrogate
 * sequence) stands for U+FFFD, whose bytes EF BF BD are then encoded, and a
 * leading BOM is a character like any other. The rank data and the Unicode
 * classes of the pre-tokenizer are read on first use from
 * <dir>/<encoding>.bin, made by ops/fetch-tokenizer-data.sh (`make` does
 * it); <dir> is $CHATMEM_TOKENIZER_DIR when set, else the build tree's
 * build/data, else /usr/local/share/chatmem.
 */
#ifndef CM_TOKENS_H
#define CM_TOKENS_H

#include <stddef.h>
#include <stdint.h>

typedef struct cm_tokenizer cm_tokenizer_t;

/* Looks a tokenizer up by name. On error (unknown name, data that cannot
 * be loaded) returns -1 and writes the reason to errstr. The tokenizer is
 * owned by the library and never freed. */
int cm_tokenizer_get(const char *name, const cm_tokenizer_t **out, char *errstr,
                     size_t errstr_size);

/* The tokenizer's name as given to cm_tokenizer_get(). */
const char *cm_tokenizer_name(const cm_tokenizer_t *tk);

/* Number of tokens in text[0..len). text need not be valid UTF-8. Cannot
 * fail. */
int cm_tokenizer_count(const cm_tokenizer_t *tk, const char *text, size_t len);

/*
 * The token ids of text[0..len), as described above; text need not be
 * valid UTF-8. Returns 0 and sets *ids to a heap array of *cnt ids that the
 * caller frees with free() (*ids may be NULL when *cnt is 0). Returns -1,
 * with *ids NULL and *cnt 0, for a tokenizer without ids ("estimate").
 */
int cm_tokenizer_encode(const cm_tokenizer_t *tk, const char *text, size_t len,
                        uint32_t **ids, size_t *cnt);

/*
 * The bytes of token id (not NUL-terminated, possibly part of a UTF-8
 * sequence): returns a pointer owned by the tokenizer, valid for the life
 * of the process, and sets *len. Returns NULL for an id that is not a rank
 * of the encoding, and for a tokenizer without ids. For valid UTF-8 input
 * the bytes of the ids from cm_tokenizer_encode() concatenate to the input.
 */
const char *cm_tokenizer_token(const cm_tokenizer_t *tk, uint32_t id,
                               size_t *len);

#endif
