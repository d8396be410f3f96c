/*
 * text: see text.h for the contract.
 *
 * Everything UTF-8 goes through cm_utf8_decode() (in the header, so that
 * the tokenizer's scanners inline it). The validator adds a word-at-a-time
 * skip over ASCII, which is most of any text and what the tokenizer checks
 * on every count.
 */
#include "text.h"

#include <stdio.h>
#include <string.h>

size_t cm_utf8_valid_prefix(const char *buf, size_t len)
{
        size_t i = 0;

        while (i < len) {
                uint64_t w;
                uint32_t cp;
                size_t n;

                if (i + 8 <= len) {
                        memcpy(&w, buf + i, 8);
                        if (!(w & 0x8080808080808080ull)) {
                                i += 8;
                                continue;
                        }
                }
                if (!((unsigned char)buf[i] & 0x80)) {
                        i++;
                        continue;
                }
                n = cm_utf8_decode(buf + i, len - i, &cp);
                if (cp == CM_UTF8_BAD)
                        return i;
                i += n;
        }
        return len;
}

int cm_utf8_valid(const char *buf, size_t len)
{
        return cm_utf8_valid_prefix(buf, len) == len;
}

void cm_utf8_repair(cm_buf_t *out, const char *s, size_t len)
{
        size_t i = 0;

        while (i < len) {
                size_t good = cm_utf8_valid_prefix(s + i, len - i);
                uint32_t cp;

                cm_buf_add(out, s + i, good);
                i += good;
                if (i == len)
                        break;
                i += cm_utf8_decode(s + i, len - i, &cp);
                cm_buf_add(out, CM_UTF8_REPLACEMENT, CM_UTF8_REPLACEMENT_LEN);
        }
}

size_t cm_utf8_floor(const char *buf, size_t len)
{
        const unsigned char *s = (const unsigned char *)buf;
        size_t i = len;
        size_t need;

        /* Step back over continuation bytes (at most 3) to the lead byte of
         * the last sequence, then keep it only if it is complete. */
        while (i > 0 && (s[i - 1] & 0xc0) == 0x80 && len - i < 3)
                i--;
        if (i == 0)
                return 0;
        if (s[i - 1] < 0xc0)
                return len;
        need = s[i - 1] >= 0xf0 ? 4 : s[i - 1] >= 0xe0 ? 3 : 2;
        return len - (i - 1) >= need ? len : i - 1;
}

size_t cm_utf8_ceil(const char *buf, size_t len, size_t off)
{
        while (off < len && ((unsigned char)buf[off] & 0xc0) == 0x80)
                off++;
        return off < len ? off : len;
}

size_t cm_text_word_char(const char *s, size_t n)
{
        const unsigned char *u = (const unsigned char *)s;
        uint32_t cp;
        size_t k;

        if (u[0] < 0x80)
                return cm_isalnum(u[0]) ? 1 : 0;
        k = cm_utf8_decode(s, n, &cp);
        if (cp == CM_UTF8_BAD || (cp >= 0xa0 && cp <= 0xbf) ||
            (cp >= 0x2000 && cp <= 0x206f) || (cp >= 0x3000 && cp <= 0x303f))
                return 0;
        return k;
}

void cm_text_byte_name(int c, char out[CM_TEXT_BYTE_NAME_MAX])
{
        unsigned char u = (unsigned char)c;

        if (cm_isprint(u))
                snprintf(out, CM_TEXT_BYTE_NAME_MAX, "'%c'", u);
        else
                snprintf(out, CM_TEXT_BYTE_NAME_MAX, "0x%02x", u);
}

#define SP CM_CT_SPACE
#define DI CM_CT_DIGIT
#define UP CM_CT_UPPER
#define LO CM_CT_LOWER
#define UX (CM_CT_UPPER | CM_CT_XDIGIT)
#define LX (CM_CT_LOWER | CM_CT_XDIGIT)
#define PU CM_CT_PUNCT
#define CN CM_CT_CNTRL
#define CS (CM_CT_CNTRL | CM_CT_SPACE)

const unsigned char cm_ctype_table[256] = {
    /* 0x00 */ CN, CN, CN, CN, CN, CN, CN, CN,
    /* 0x08 */ CN, CS, CS, CS, CS, CS, CN, CN,
    /* 0x10 */ CN, CN, CN, CN, CN, CN, CN, CN,
    /* 0x18 */ CN, CN, CN, CN, CN, CN, CN, CN,
    /* 0x20 */ SP, PU, PU, PU, PU, PU, PU, PU, /*  !"#$%&' */
    /* 0x28 */ PU, PU, PU, PU, PU, PU, PU, PU, /* ()*+,-./ */
    /* 0x30 */ DI, DI, DI, DI, DI, DI, DI, DI, /* 01234567 */
    /* 0x38 */ DI, DI, PU, PU, PU, PU, PU, PU, /* 89:;<=>? */
    /* 0x40 */ PU, UX, UX, UX, UX, UX, UX, UP, /* @ABCDEFG */
    /* 0x48 */ UP, UP, UP, UP, UP, UP, UP, UP, /* HIJKLMNO */
    /* 0x50 */ UP, UP, UP, UP, UP, UP, UP, UP, /* PQRSTUVW */
    /* 0x58 */ UP, UP, UP, PU, PU, PU, PU, PU, /* XYZ[\]^_ */
    /* 0x60 */ PU, LX, LX, LX, LX, LX, LX, LO, /* `abcdefg */
    /* 0x68 */ LO, LO, LO, LO, LO, LO, LO, LO, /* hijklmno */
    /* 0x70 */ LO, LO, LO, LO, LO, LO, LO, LO, /* pqrstuvw */
    /* 0x78 */ LO, LO, LO, PU, PU, PU, PU, CN, /* xyz{|}~ DEL */
                                               /* 0x80..0xff: no class */
};

uint64_t cm_fnv1a(const void *data, size_t len)
{
        const unsigned char *p = data;
        uint64_t h = 0xcbf29ce484222325ull;
        size_t i;

        for (i = 0; i < len; i++) {
                h ^= p[i];
                h *= 0x100000001b3ull;
        }
        return h;
}
