/*
 * archive: see archive.h for the chunk format and the measurements behind
 * it.
 */
#include "archive.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "text.h"
#include "util.h"

/* A varint of a 64-bit value takes at most 10 bytes. */
#define VARINT_MAX 10

/* A caller's bug, or zstd out of memory: abort with a message, as an
 * allocation failure does (util.h). */
static void die(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "chatmem: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\n");
        abort();
}

/*
 * One zstd decompression context per thread, made on first use and freed
 * when the thread ends: a context made for each chunk would cost more
 * than decompressing a chunk of 64 messages (measured: 25 µs against 6).
 */
static pthread_once_t dctx_once = PTHREAD_ONCE_INIT;
static pthread_key_t dctx_key;

static void dctx_free(void *dctx)
{
        ZSTD_freeDCtx(dctx);
}

static void dctx_key_create(void)
{
        if (pthread_key_create(&dctx_key, dctx_free))
                die("cannot create a thread key");
}

static ZSTD_DCtx *dctx_get(void)
{
        ZSTD_DCtx *dctx;

        pthread_once(&dctx_once, dctx_key_create);
        dctx = pthread_getspecific(dctx_key);
        if (!dctx) {
                dctx = ZSTD_createDCtx();
                if (!dctx || pthread_setspecific(dctx_key, dctx))
                        die("out of memory for a zstd context");
        }
        return dctx;
}

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
        int i;

        for (i = 0; i < bytes; i++)
                p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
        uint64_t v = 0;
        int i;

        for (i = 0; i < bytes; i++)
                v |= (uint64_t)p[i] << (8 * i);
        return v;
}

static uint64_t zz(int64_t v)
{
        return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzz(uint64_t v)
{
        return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static void put_varint(cm_buf_t *b, uint64_t v)
{
        unsigned char tmp[VARINT_MAX];
        size_t n = 0;

        do {
                tmp[n] = (unsigned char)(v & 0x7f);
                v >>= 7;
                if (v)
                        tmp[n] |= 0x80;
                n++;
        } while (v);
        cm_buf_add(b, tmp, n);
}

/* A reader over the raw payload. */
typedef struct rd {
        const unsigned char *p, *end;
} rd_t;

/* Reads one varint. Returns 0, or -1 when truncated or over 64 bits. */
static int get_varint(rd_t *r, uint64_t *out)
{
        uint64_t v = 0;
        int shift = 0;

        while (r->p < r->end) {
                unsigned char c = *r->p++;

                if (shift == 63 && (c & 0x7e))
                        return -1;
                v |= (uint64_t)(c & 0x7f) << shift;
                if (!(c & 0x80)) {
                        *out = v;
                        return 0;
                }
                shift += 7;
                if (shift > 63)
                        return -1;
        }
        return -1;
}

int cm_archive_header_read(const void *chunk, size_t len,
                           cm_archive_header_t *h, char *errstr,
                           size_t errstr_size)
{
        const unsigned char *p = chunk;

        memset(h, 0, sizeof(*h));
        if (len < CM_ARCHIVE_HEADER_SIZE)
                return cm_errf(errstr, errstr_size,
                               "archive chunk of %zu bytes is shorter than "
                               "its header",
                               len);
        if (p[0] != CM_ARCHIVE_VERSION)
                return cm_errf(errstr, errstr_size,
                               "archive chunk of unknown version %u", p[0]);
        if (p[1] & ~CM_ARCHIVE_ZSTD)
                return cm_errf(errstr, errstr_size,
                               "archive chunk with unknown flags 0x%02x", p[1]);
        h->flags = p[1];
        h->count = (size_t)get_le(p + 2, 2);
        h->raw_len = (size_t)get_le(p + 4, 4);
        h->first_seq = (int64_t)get_le(p + 8, 8);
        h->last_seq = (int64_t)get_le(p + 16, 8);
        h->base = (int64_t)get_le(p + 24, 8);
        if (h->count == 0)
                return cm_errf(errstr, errstr_size,
                               "archive chunk of 0 messages");
        if (h->first_seq < 0 || h->last_seq < h->first_seq || h->base < 0)
                return cm_errf(errstr, errstr_size,
                               "archive chunk with seqs %lld..%lld, base %lld",
                               (long long)h->first_seq, (long long)h->last_seq,
                               (long long)h->base);
        if (h->raw_len > CM_ARCHIVE_RAW_MAX)
                return cm_errf(errstr, errstr_size,
                               "archive chunk of %zu bytes uncompressed, over "
                               "the limit of %u",
                               h->raw_len, CM_ARCHIVE_RAW_MAX);
        if (!(h->flags & CM_ARCHIVE_ZSTD) &&
            len - CM_ARCHIVE_HEADER_SIZE != h->raw_len)
                return cm_errf(errstr, errstr_size,
                               "raw archive chunk of %zu payload bytes, its "
                               "header says %zu",
                               len - CM_ARCHIVE_HEADER_SIZE, h->raw_len);
        return 0;
}

/* The raw (columnar) payload of msgs[0..cnt), into b. */
static void payload_encode(const cm_message_t *msgs, size_t cnt, cm_buf_t *b)
{
        int64_t prev;
        size_t i;

        prev = msgs[0].seq;
        for (i = 0; i < cnt; i++) {
                put_varint(b, zz(msgs[i].seq - prev));
                prev = msgs[i].seq;
        }
        prev = 0;
        for (i = 0; i < cnt; i++) {
                put_varint(b, zz(msgs[i].ts - prev));
                prev = msgs[i].ts;
        }
        for (i = 0; i < cnt; i++)
                put_varint(
                    b, msgs[i].tokens < 0 ? 0 : (uint64_t)msgs[i].tokens + 1);
        for (i = 0; i < cnt; i++)
                put_varint(b, (uint64_t)msgs[i].content_len << 2 |
                                  ((uint64_t)msgs[i].role & 3));
        for (i = 0; i < cnt; i++)
                cm_buf_add(b, msgs[i].content, msgs[i].content_len);
}

char *cm_archive_encode(const cm_message_t *msgs, size_t cnt, int level,
                        size_t *len)
{
        cm_buf_t raw = CM_BUF_INIT;
        unsigned char *out;
        size_t i, bound, z;
        unsigned flags = 0;

        if (cnt == 0 || cnt > CM_ARCHIVE_COUNT_MAX)
                die("archive chunk of %zu messages", cnt);
        for (i = 1; i < cnt; i++)
                if (msgs[i].seq <= msgs[i - 1].seq)
                        die("archive chunk with seq %lld after %lld",
                            (long long)msgs[i].seq, (long long)msgs[i - 1].seq);
        payload_encode(msgs, cnt, &raw);
        if (raw.len > CM_ARCHIVE_RAW_MAX)
                die("archive chunk of %zu bytes", raw.len);
        bound = ZSTD_compressBound(raw.len);
        out = cm_malloc(CM_ARCHIVE_HEADER_SIZE +
                        (bound > raw.len ? bound : raw.len));
        z = ZSTD_compress(out + CM_ARCHIVE_HEADER_SIZE, bound, raw.buf, raw.len,
                          level);
        if (ZSTD_isError(z))
                die("zstd: %s", ZSTD_getErrorName(z));
        if (z < raw.len) {
                flags = CM_ARCHIVE_ZSTD;
        } else {
                memcpy(out + CM_ARCHIVE_HEADER_SIZE, raw.buf, raw.len);
                z = raw.len;
        }
        out[0] = CM_ARCHIVE_VERSION;
        out[1] = (unsigned char)flags;
        put_le(out + 2, cnt, 2);
        put_le(out + 4, raw.len, 4);
        put_le(out + 8, (uint64_t)msgs[0].seq, 8);
        put_le(out + 16, (uint64_t)msgs[cnt - 1].seq, 8);
        put_le(out + 24, 0, 8);
        *len = CM_ARCHIVE_HEADER_SIZE + z;
        cm_buf_release(&raw);
        return (char *)out;
}

/* Decodes the raw payload r into out[0..h->count). Returns 0, or -1 with
 * the reason (out may hold contents: the caller releases them). */
static int payload_decode(rd_t *r, const cm_archive_header_t *h,
                          cm_message_t *out, char *errstr, size_t errstr_size)
{
        size_t i, n = h->count;
        int64_t prev;
        uint64_t v;

        prev = h->first_seq;
        for (i = 0; i < n; i++) {
                if (get_varint(r, &v) == -1)
                        return cm_errf(errstr, errstr_size,
                                       "archive chunk: truncated seqs");
                out[i].seq = prev + unzz(v);
                if (i == 0 ? out[i].seq != h->first_seq
                           : out[i].seq <= prev || out[i].seq > h->last_seq)
                        return cm_errf(errstr, errstr_size,
                                       "archive chunk: seq %lld out of "
                                       "order or outside %lld..%lld",
                                       (long long)out[i].seq,
                                       (long long)h->first_seq,
                                       (long long)h->last_seq);
                prev = out[i].seq;
        }
        if (prev != h->last_seq)
                return cm_errf(errstr, errstr_size,
                               "archive chunk: last seq %lld, its header "
                               "says %lld",
                               (long long)prev, (long long)h->last_seq);
        prev = 0;
        for (i = 0; i < n; i++) {
                if (get_varint(r, &v) == -1)
                        return cm_errf(errstr, errstr_size,
                                       "archive chunk: truncated times");
                out[i].ts = (int64_t)((uint64_t)prev + (uint64_t)unzz(v));
                prev = out[i].ts;
        }
        for (i = 0; i < n; i++) {
                if (get_varint(r, &v) == -1 || v > (uint64_t)INT32_MAX)
                        return cm_errf(errstr, errstr_size,
                                       "archive chunk: bad token counts");
                out[i].tokens = (int)v - 1;
        }
        for (i = 0; i < n; i++) {
                if (get_varint(r, &v) == -1 || (v & 3) > CM_ROLE_SYSTEM ||
                    (v >> 2) > (uint64_t)(r->end - r->p))
                        return cm_errf(errstr, errstr_size,
                                       "archive chunk: bad content length "
                                       "or role of message %zu",
                                       i);
                out[i].role = (cm_role_t)(v & 3);
                out[i].content_len = (size_t)(v >> 2);
        }
        for (i = 0; i < n; i++) {
                size_t clen = out[i].content_len;

                if (clen > (size_t)(r->end - r->p))
                        return cm_errf(errstr, errstr_size,
                                       "archive chunk: truncated contents");
                if (memchr(r->p, '\0', clen) ||
                    !cm_utf8_valid((const char *)r->p, clen))
                        return cm_errf(errstr, errstr_size,
                                       "archive chunk: message %lld is not "
                                       "valid UTF-8 without NUL",
                                       (long long)out[i].seq);
                out[i].content = cm_strndup((const char *)r->p, clen);
                r->p += clen;
        }
        if (r->p != r->end)
                return cm_errf(errstr, errstr_size,
                               "archive chunk: %zu bytes after the last "
                               "message",
                               (size_t)(r->end - r->p));
        return 0;
}

long cm_archive_decode(const void *chunk, size_t len, cm_message_t *out,
                       size_t out_cap, char *errstr, size_t errstr_size)
{
        cm_archive_header_t h;
        const char *payload = (const char *)chunk + CM_ARCHIVE_HEADER_SIZE;
        char *raw = NULL;
        rd_t r;
        size_t i;
        long ret = -1;

        if (cm_archive_header_read(chunk, len, &h, errstr, errstr_size) == -1)
                return -1;
        if (h.count > out_cap)
                return cm_errf(errstr, errstr_size,
                               "archive chunk of %zu messages, room for %zu",
                               h.count, out_cap);
        memset(out, 0, h.count * sizeof(*out));
        if (h.flags & CM_ARCHIVE_ZSTD) {
                size_t zlen = len - CM_ARCHIVE_HEADER_SIZE, got;
                unsigned long long size =
                    ZSTD_getFrameContentSize(payload, zlen);

                if (size != h.raw_len)
                        return cm_errf(errstr, errstr_size,
                                       "archive chunk: the zstd frame is not "
                                       "of %zu bytes",
                                       h.raw_len);
                raw = cm_malloc(h.raw_len ? h.raw_len : 1);
                got = ZSTD_decompressDCtx(dctx_get(), raw, h.raw_len, payload,
                                          zlen);
                if (ZSTD_isError(got) || got != h.raw_len) {
                        cm_errf(errstr, errstr_size, "archive chunk: zstd: %s",
                                ZSTD_isError(got) ? ZSTD_getErrorName(got)
                                                  : "short frame");
                        goto out;
                }
                r.p = (const unsigned char *)raw;
        } else {
                r.p = (const unsigned char *)payload;
        }
        r.end = r.p + h.raw_len;
        if (payload_decode(&r, &h, out, errstr, errstr_size) == -1)
                goto out;
        ret = (long)h.count;
out:
        if (ret == -1)
                for (i = 0; i < h.count; i++)
                        cm_message_release(&out[i]);
        free(raw);
        return ret;
}
