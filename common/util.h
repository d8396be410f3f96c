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

/* Writes the formatted reason to errstr (nothing when errstr is NULL or
 * errstr_size is 0) and returns -1, so that a function can end with
 * `return cm_errf(errstr, errstr_size, "...", ...);`. */
int cm_errf(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Wall clock in ms since the epoch; monotonic clock in µs. Cannot fail. */
int64_t cm_now_ms(void);
int64_t cm_mono_us(void);

/* Parses a whole decimal integer in [min, max]. Returns 0, or -1 when s is
 * not such a number (out is unchanged). */
int cm_parse_int(const char *s, long long min, long long max, long long *out);

/* Writes a random RFC 4122 v4 UUID string (37 bytes with the NUL). */
void cm_uuid(char out[37]);

/*
 * Growable byte buffer (git's strbuf). Embedded: cm_buf_init (or
 * CM_BUF_INIT) / cm_buf_release.
 *
 * Invariant, from init on and after every call: buf is never NULL and
 * buf[len] == '\0', so buf is always a C string (it may also hold NULs of
 * its own before len). Until the first byte is added, buf points to a
 * static, read-only empty string shared by every empty buffer and cap is
 * 0 (init allocates nothing); it must not be written to. A zeroed struct
 * is not initialized.
 */
typedef struct cm_buf {
        char *buf;
        size_t len;
        size_t cap; /* bytes allocated; 0 while buf is the static "" */
} cm_buf_t;

/* The static empty string of empty buffers; never written. */
extern const char cm_buf_empty[1];
#define CM_BUF_INIT                                                            \
        {                                                                      \
                (char *)cm_buf_empty, 0, 0                                     \
        }

/* Makes b an empty buffer. Cannot fail. */
void cm_buf_init(cm_buf_t *b);
/* Frees the memory of b and returns it to the state of cm_buf_init. */
void cm_buf_release(cm_buf_t *b);
/* Empties b, keeping its memory. */
void cm_buf_reset(cm_buf_t *b);
/* Appends data[0..len) (any bytes). */
void cm_buf_add(cm_buf_t *b, const void *data, size_t len);
/* Appends the C string s. */
void cm_buf_adds(cm_buf_t *b, const char *s);
/* Appends the formatted text. */
void cm_buf_addf(cm_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Returns the contents as a heap string the caller frees (always a heap
 * string, "" included), sets *len (if not NULL) to its length, and leaves
 * b as cm_buf_init does. */
char *cm_buf_detach(cm_buf_t *b, size_t *len);

#endif
