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

int cm_errf(char *errstr, size_t errstr_size, const char *fmt, ...)
{
        va_list ap;

        if (!errstr || !errstr_size)
                return -1;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
        return -1;
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

const char cm_buf_empty[1] = "";

void cm_buf_init(cm_buf_t *b)
{
        b->buf = (char *)cm_buf_empty;
        b->len = 0;
        b->cap = 0;
}

void cm_buf_release(cm_buf_t *b)
{
        if (b->cap)
                free(b->buf);
        cm_buf_init(b);
}

void cm_buf_reset(cm_buf_t *b)
{
        b->len = 0;
        if (b->cap)
                b->buf[0] = '\0';
}

/* Makes room for extra more bytes and the NUL. */
static void buf_grow(cm_buf_t *b, size_t extra)
{
        size_t need = b->len + extra + 1;

        if (need <= b->cap)
                return;
        if (b->cap * 2 > need)
                need = b->cap * 2;
        if (need < 64)
                need = 64;
        if (b->cap) {
                b->buf = cm_realloc(b->buf, need);
        } else {
                b->buf = cm_malloc(need); /* leaving the static "" */
                b->buf[0] = '\0';
        }
        b->cap = need;
}

void cm_buf_add(cm_buf_t *b, const void *data, size_t len)
{
        if (!len)
                return;
        buf_grow(b, len);
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
        if (n < 0) {
                b->buf[b->len] = '\0';
                return;
        }
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
        char *p = b->cap ? b->buf : cm_strndup("", 0);

        if (len)
                *len = b->len;
        cm_buf_init(b);
        return p;
}
