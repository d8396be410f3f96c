/*
 * text: bytes as text, in one place. One UTF-8 decoder, and the validator,
 * the repair and the scanners built on it; a locale-free ctype; the FNV-1a
 * hash.
 *
 * Prefixes: cm_utf8_* (UTF-8), cm_is* and cm_to* (ctype), cm_text_* (word
 * scanning), cm_fnv1a (hash).
 *
 * UTF-8 is well-formed as in RFC 3629 and Unicode table 3-7: no overlong
 * forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no
 * truncated sequence.
 *
 * Repair policy, the only one in chatmem: that of the WHATWG Encoding
 * standard's UTF-8 decoder (TextDecoder), also Unicode's "U+FFFD
 * substitution of maximal subparts" (chapter 3.9): each maximal subpart of
 * an ill-formed sequence becomes one U+FFFD. A maximal subpart is the
 * longest start of a well-formed sequence found at that point, or else one
 * byte: "\xE2\x82 x" gives one U+FFFD then " x"; "\xE0\x80" gives two (0x80
 * cannot follow 0xE0); "\xF0\x80\x80" gives three; "\xF0\x9F\x98" at the
 * end gives one. The tokenizer relies on it to match js-tiktoken, which
 * sees text through TextDecoder.
 *
 * ctype (git's sane-ctype: "no locale, and works with signed chars"):
 * ASCII classes only, whatever the process locale. Every function takes
 * any char value, negative ones included (it looks at the byte as unsigned
 * char), and EOF. Bytes 0x80..0xFF belong to no class; cm_tolower and
 * cm_toupper return them unchanged. cm_isspace is C's set " \t\n\v\f\r".
 */
#ifndef CM_TEXT_H
#define CM_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* ---- UTF-8 ---------------------------------------------------------- */

/* The code point cm_utf8_decode() gives for an ill-formed sequence. */
#define CM_UTF8_BAD UINT32_MAX

/* U+FFFD REPLACEMENT CHARACTER in UTF-8. */
#define CM_UTF8_REPLACEMENT     "\xef\xbf\xbd"
#define CM_UTF8_REPLACEMENT_LEN 3

/*
 * The decoder. Decodes the character at s[0..len), len > 0: returns its
 * bytes (1..4) and sets *cp to its code point. When s does not start with
 * a well-formed sequence, returns the bytes of its maximal subpart (1..3,
 * what the repair policy turns into one U+FFFD) and sets *cp to
 * CM_UTF8_BAD. Never reads past s[len - 1]. Cannot fail.
 */
static inline size_t cm_utf8_decode(const char *s, size_t len, uint32_t *cp)
{
        const unsigned char *u = (const unsigned char *)s;
        unsigned char lo = 0x80, hi = 0xbf;
        uint32_t v = u[0];
        size_t need, k;

        if (v < 0x80) {
                *cp = v;
                return 1;
        }
        if (v >= 0xc2 && v <= 0xdf) {
                need = 2;
                v &= 0x1f;
        } else if (v >= 0xe0 && v <= 0xef) {
                need = 3;
                lo = v == 0xe0 ? 0xa0 : 0x80; /* no overlong */
                hi = v == 0xed ? 0x9f : 0xbf; /* no surrogate */
                v &= 0x0f;
        } else if (v >= 0xf0 && v <= 0xf4) {
                need = 4;
                lo = v == 0xf0 ? 0x90 : 0x80; /* no overlong */
                hi = v == 0xf4 ? 0x8f : 0xbf; /* <= U+10FFFF */
                v &= 0x07;
        } else {
                *cp = CM_UTF8_BAD; /* 0x80..0xc1, 0xf5..0xff */
                return 1;
        }
        for (k = 1; k < need; k++) {
                if (k >= len || u[k] < lo || u[k] > hi) {
                        *cp = CM_UTF8_BAD;
                        return k;
                }
                v = v << 6 | (u[k] & 0x3fu);
                lo = 0x80;
                hi = 0xbf;
        }
        *cp = v;
        return need;
}

/* The length of the longest well-formed prefix of buf[0..len), which is
 * also the offset of the first byte of the first ill-formed sequence (len
 * when there is none): what an error message names. Cannot fail. */
size_t cm_utf8_valid_prefix(const char *buf, size_t len);

/* Returns 1 if buf[0..len) is well-formed UTF-8, else 0. Cannot fail. */
int cm_utf8_valid(const char *buf, size_t len);

/* Appends s[0..len) to out with each maximal subpart of an ill-formed
 * sequence replaced by one U+FFFD (the repair policy above); well-formed
 * input is appended as it is. Cannot fail. */
void cm_utf8_repair(cm_buf_t *out, const char *s, size_t len);

/* The largest n <= len such that buf[0..n) does not end inside a UTF-8
 * sequence: where to cut buf to at most len bytes. buf[0..len) must be a
 * prefix of well-formed UTF-8; buf[len] is not read. Cannot fail. */
size_t cm_utf8_floor(const char *buf, size_t len);

/* The smallest n >= off (and <= len) at which buf[n..len) starts on a
 * character boundary: where to cut the start of buf[0..len) from off on.
 * buf must be well-formed UTF-8. Cannot fail. */
size_t cm_utf8_ceil(const char *buf, size_t len, size_t off);

/* Bytes of the word character at s[0..n), n > 0, or 0 when s does not
 * start with one. Word characters: ASCII letters and digits, and every
 * well-formed non-ASCII character but spaces and punctuation (U+00A0..
 * U+00BF, U+2000..U+206F, U+3000..U+303F). An ill-formed sequence is not
 * one. Cannot fail. */
size_t cm_text_word_char(const char *s, size_t n);

/* Room for cm_text_byte_name()'s output, with the NUL. */
#define CM_TEXT_BYTE_NAME_MAX 8

/* Names byte c for an error message: 'c' (quoted) when printable ASCII,
 * else 0xNN. Cannot fail. */
void cm_text_byte_name(int c, char out[CM_TEXT_BYTE_NAME_MAX]);

/* ---- ctype ---------------------------------------------------------- */

enum {
        CM_CT_SPACE = 0x01,
        CM_CT_DIGIT = 0x02,
        CM_CT_UPPER = 0x04,
        CM_CT_LOWER = 0x08,
        CM_CT_XDIGIT = 0x10, /* a-f A-F (digits have CM_CT_DIGIT) */
        CM_CT_PUNCT = 0x20,
        CM_CT_CNTRL = 0x40,
};

/* The class bits of each byte; use the functions below. */
extern const unsigned char cm_ctype_table[256];

static inline int cm_ctype_is(int c, unsigned mask)
{
        return (cm_ctype_table[(unsigned char)c] & mask) != 0;
}

static inline int cm_isspace(int c)
{
        return cm_ctype_is(c, CM_CT_SPACE);
}

static inline int cm_isdigit(int c)
{
        return cm_ctype_is(c, CM_CT_DIGIT);
}

static inline int cm_isxdigit(int c)
{
        return cm_ctype_is(c, CM_CT_DIGIT | CM_CT_XDIGIT);
}

static inline int cm_isupper(int c)
{
        return cm_ctype_is(c, CM_CT_UPPER);
}

static inline int cm_islower(int c)
{
        return cm_ctype_is(c, CM_CT_LOWER);
}

static inline int cm_isalpha(int c)
{
        return cm_ctype_is(c, CM_CT_UPPER | CM_CT_LOWER);
}

static inline int cm_isalnum(int c)
{
        return cm_ctype_is(c, CM_CT_UPPER | CM_CT_LOWER | CM_CT_DIGIT);
}

static inline int cm_ispunct(int c)
{
        return cm_ctype_is(c, CM_CT_PUNCT);
}

static inline int cm_iscntrl(int c)
{
        return cm_ctype_is(c, CM_CT_CNTRL);
}

/* Printable ASCII, space included (0x20..0x7e). */
static inline int cm_isprint(int c)
{
        return (unsigned char)c >= 0x20 && (unsigned char)c < 0x7f;
}

/* The byte as unsigned char, lowercased if it is A-Z. */
static inline int cm_tolower(int c)
{
        return cm_isupper(c) ? (unsigned char)c + ('a' - 'A')
                             : (unsigned char)c;
}

/* The byte as unsigned char, uppercased if it is a-z. */
static inline int cm_toupper(int c)
{
        return cm_islower(c) ? (unsigned char)c - ('a' - 'A')
                             : (unsigned char)c;
}

/* ---- hash ----------------------------------------------------------- */

/* 64-bit FNV-1a of data[0..len) (offset basis 0xcbf29ce484222325, prime
 * 0x100000001b3): "" gives 0xcbf29ce484222325, "a" 0xaf63dc4c8601ec8c.
 * Cannot fail. */
uint64_t cm_fnv1a(const void *data, size_t len);

#endif
