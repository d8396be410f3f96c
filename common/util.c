#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void oom(size_t size)
{
        fprintf(stderr, "chatmem: out of memory allocating %zu bytes\n", size);
        abort();
}

void *cm_malloc(size_t size)
{
        void *p = malloc(size ? size : 1);

        if (!p)
                oom(size);
        return p;
}

void *cm_calloc(size_t nmemb, size_t size)
{
        void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

        if (!p)
                oom(nmemb * size);
        return p;
}

void *cm_realloc(void *ptr, size_t size)
{
        void *p = realloc(ptr, size ? size : 1);

        if (!p)
                oom(size);
        return p;
}

char *cm_strdup(const char *s)
{
        if (!s)
                return NULL;
        return cm_strndup(s, strlen(s));
}

char *cm_strndup(const char *s, size_t n)
{
        char *p = cm_malloc(n + 1);

        memcpy(p, s, n);
        p[n] = '\0';
        return p;
}

/* Length of the UTF-8 sequence starting at s[0..len), or 0 if it is not
 * well-formed (RFC 3629 table 3-7). */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
        unsigned char c = s[0];

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                return len >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
        if (c >= 0xe0 && c <= 0xef) {
                unsigned char lo = 0x80, hi = 0xbf;

                if (c == 0xe0)
                        lo = 0xa0;
                else if (c == 0xed)
                        hi = 0x9f;
                if (len < 3 || s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80)
                        return 0;
                return 3;
        }
        if (c >= 0xf0 && c <= 0xf4) {
                unsigned char lo = 0x80, hi = 0xbf;

                if (c == 0xf0)
                        lo = 0x90;
                else if (c == 0xf4)
                        hi = 0x8f;
                if (len < 4 || s[1] < lo || s[1] > hi ||
                    (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
                        return 0;
                return 4;
        }
        return 0;
}

int cm_utf8_valid(const char *buf, size_t len)
{
        const unsigned char *s = (const unsigned char *)buf;
        size_t i = 0;

        while (i < len) {
                size_t n;

                if (s[i] < 0x80) {
                        i++;
                        continue;
                }
                n = utf8_seq(s + i, len - i);
                if (!n)
                        return 0;
                i += n;
        }
        return 1;
}

size_t cm_utf8_floor(const char *buf, size_t len)
{
        const unsigned char *s = (const unsigned char *)buf;
        size_t i = len;

        /* Step back over continuation bytes to the lead byte of the last
         * sequence, then keep it only if it is complete. */
        while (i > 0 && (s[i - 1] & 0xc0) == 0x80 && len - i < 3)
                i--;
        if (i == 0)
                return 0;
        if (s[i - 1] >= 0xc0) {
                size_t need = s[i - 1] >= 0xf0 ? 4 : s[i - 1] >= 0xe0 ? 3 : 2;

                if (len - (i - 1) >= need)
                        return len;
                return i - 1;
        }
        return len;
}

size_t cm_utf8_seq_len(const unsigned char *s, size_t n)
{
        size_t k = 1;

        if (s[0] < 0xc0)
                return 1;
        while (k < n && k < 4 && (s[k] & 0xc0) == 0x80)
                k++;
        return k;
}

size_t cm_text_word_char(const unsigned char *s, size_t n)
{
        if (s[0] < 0x80)
                return (s[0] >= 'a' && s[0] <= 'z') ||
                       (s[0] >= 'A' && s[0] <= 'Z') ||
                       (s[0] >= '0' && s[0] <= '9');
        if (n >= 2 && s[0] == 0xc2 && s[1] >= 0xa0 && s[1] <= 0xbf)
                return 0;
        if (n >= 2 && s[0] == 0xe2 && (s[1] == 0x80 || s[1] == 0x81))
                return 0;
        if (n >= 2 && s[0] == 0xe3 && s[1] == 0x80)
                return 0;
        return cm_utf8_seq_len(s, n);
}

int64_t cm_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cm_mono_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int cm_parse_int(const char *s, long long min, long long max, long long *out)
{
        char *end = NULL;
        long long v;

        if (!s || !*s)
                return -1;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || !end || *end || v < min || v > max)
                return -1;
        *out = v;
        return 0;
}

void cm_uuid(char out[37])
{
        static const char hex[] = "0123456789abcdef";
        unsigned char b[16];
        FILE *fp = fopen("/dev/urandom", "rb");
        size_t i, j = 0;

        if (!fp || fread(b, 1, sizeof(b), fp) != sizeof(b)) {
                /* Fall back to a time-seeded PRNG: ids need to be unique,
                 * not secret. */
                unsigned int seed =
                    (unsigned int)cm_mono_us() ^ (unsigned int)cm_now_ms();

                for (i = 0; i < sizeof(b); i++)
                        b[i] = (unsigned char)rand_r(&seed);
        }
        if (fp)
                fclose(fp);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        for (i = 0; i < 16; i++) {
                if (i == 4 || i == 6 || i == 8 || i == 10)
                        out[j++] = '-';
                out[j++] = hex[b[i] >> 4];
                out[j++] = hex[b[i] & 15];
        }
        out[j] = '\0';
}

void cm_buf_init(cm_buf_t *b)
{
        b->buf = NULL;
        b->len = 0;
        b->cap = 0;
}

void cm_buf_release(cm_buf_t *b)
{
        free(b->buf);
        cm_buf_init(b);
}

void cm_buf_reset(cm_buf_t *b)
{
        b->len = 0;
        if (b->buf)
                b->buf[0] = '\0';
}

static void buf_grow(cm_buf_t *b, size_t extra)
{
        size_t need = b->len + extra + 1;

        if (need <= b->cap)
                return;
        if (b->cap * 2 > need)
                need = b->cap * 2;
        if (need < 64)
                need = 64;
        b->buf = cm_realloc(b->buf, need);
        b->cap = need;
        b->buf[b->len] = '\0';
}

void cm_buf_add(cm_buf_t *b, const void *data, size_t len)
{
        buf_grow(b, len);
        if (len)
                memcpy(b->buf + b->len, data, len);
        b->len += len;
        b->buf[b->len] = '\0';
}

void cm_buf_adds(cm_buf_t *b, const char *s)
{
        cm_buf_add(b, s, strlen(s));
}

void cm_buf_addf(cm_buf_t *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        buf_grow(b, 64);
        va_start(ap, fmt);
        n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        if ((size_t)n >= b->cap - b->len) {
                buf_grow(b, (size_t)n);
                va_start(ap, fmt);
                vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
                va_end(ap);
        }
        b->len += (size_t)n;
}

char *cm_buf_detach(cm_buf_t *b, size_t *len)
{
        char *p;

        if (!b->buf)
                buf_grow(b, 0);
        p = b->buf;
        if (len)
                *len = b->len;
        cm_buf_init(b);
        return p;
}
