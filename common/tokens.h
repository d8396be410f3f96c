/*
 * tokens: counting the tokens of a text, behind one interface, so that the
 * rest of chatmem does not care which tokenizer is configured.
 *
 * Tokenizers are process-wide singletons: cm_tokenizer_get() loads on first
 * use and the result is immutable and thread-safe afterwards.
 *
 * "estimate": ceil(code points / 4), the seed's rule; always available.
 */
#ifndef CM_TOKENS_H
#define CM_TOKENS_H

#include <stddef.h>

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

#endif
