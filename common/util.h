/*
 * util: small helpers shared by every module.
 *
 * Allocation helpers never return NULL: out of memory aborts the process
 * with a message (as Redis's zmalloc does), so callers need not check.
 */
#ifndef CM_UTIL_H
#define CM_UTIL_H

#include <stddef.h>
#include <stdint.h>

void *cm_malloc(size_t size);
void *cm_calloc(size_t nmemb, size_t size);
void *cm_realloc(void *ptr, size_t size);
/* Returns a heap copy of s (NULL gives NULL); free with free(). */
char *cm_strdup(const char *s);
/* Returns a heap copy of the first n bytes of s, NUL-terminated. */
char *cm_strndup(const char *s, size_t n);

/* Returns 1 if buf[0..len) is well-formed UTF-8 (no overlongs, no
 * surrogates, nothing above U+10FFFF), else 0. Cannot fail. */
int cm_utf8_valid(const char *buf, size_t len);

/* Returns the largest n <= len such that buf[0..n) does not end inside a
 * UTF-8 sequence. buf must be valid UTF-8. Cannot fail. */
size_t cm_utf8_floor(const char *buf, size_t len);

/* Bytes of the UTF-8 sequence starting at s[0..n) (1 for a stray byte);
 * n > 0. Cannot fail. */
size_t cm_utf8_seq_len(const unsigned char *s, size_t n);

/* Bytes of the word character at s[0..n) (n > 0), or 0: ASCII letters and
 * digits, and every non-ASCII character but spaces and punctuation
 * (U+00A0..U+00BF, U+2000..U+206F, U+3000..U+303F). Cannot fail. */
size_t cm_text_word_char(const unsigned char *s, size_t n);

/* Wall clock in ms since the epoch; monotonic clock in µs. Cannot fail. */
int64_t cm_now_ms(void);
int64_t cm_mono_us(void);

/* Parses a whole decimal integer in [min, max]. Returns 0, or -1 when s is
 * not such a number (out is unchanged). */
int cm_parse_int(const char *s, long long min, long long max, long long *out);

/* Writes a random RFC 4122 v4 UUID string (37 bytes with the NUL). */
void cm_uuid(char out[37]);

/* Growable byte buffer, always NUL-terminated (git's strbuf). Embedded:
 * cm_buf_init / cm_buf_release. */
typedef struct cm_buf {
        char *buf;
        size_t len;
        size_t cap;
} cm_buf_t;

void cm_buf_init(cm_buf_t *b);
void cm_buf_release(cm_buf_t *b);
void cm_buf_reset(cm_buf_t *b);
void cm_buf_add(cm_buf_t *b, const void *data, size_t len);
void cm_buf_adds(cm_buf_t *b, const char *s);
void cm_buf_addf(cm_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Removes and returns the buffer (caller frees); b is left empty. */
char *cm_buf_detach(cm_buf_t *b, size_t *len);

#endif
