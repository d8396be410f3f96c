/*
 * archive: the chunk codec of a session's archive, the messages that
 * folds moved out of the session's list (store.h keeps them in
 * P{u:c}:archive, a Redis list of chunks, oldest first).
 *
 * A chunk holds the records of 1..65535 consecutive archived messages
 * behind a fixed 32-byte header that the fold script (common/lua/fold.lua)
 * reads with struct.unpack('<BBHI4I8I8I8'), all little-endian:
 *
 *   offset size  field
 *        0    1  version (CM_ARCHIVE_VERSION)
 *        1    1  flags: CM_ARCHIVE_ZSTD when the payload is compressed
 *        2    2  count of messages
 *        4    4  raw_len: bytes of the payload uncompressed
 *        8    8  first_seq: seq of the first message
 *       16    8  last_seq: seq of the last message
 *       24    8  base: how many messages the archive had received before
 *                this chunk's first one (written by the fold script, which
 *                alone knows it; the codec writes 0)
 *       32       payload: raw_len bytes, or a zstd frame that decompresses
 *                to exactly raw_len bytes
 *
 * The raw payload is columnar, because columns of alike values compress
 * better than interleaved records (each varint is LEB128, unsigned; zz()
 * is the zigzag mapping of a signed value):
 *   count x varint zz(seq - previous seq)   (the first against first_seq)
 *   count x varint zz(ts - previous ts)     (the first against 0)
 *   count x varint (tokens + 1)             (0: unknown)
 *   count x varint (content bytes << 2 | role)
 *   the contents, one after the other
 * A decoder checks every length against the bytes it has, the counts and
 * seqs against the header, and each content as valid UTF-8 without NUL:
 * corrupt or truncated input is an error, never a crash or a bad message.
 * The event_id of a message is not kept.
 *
 * Measured with `chatmem-bench archive` (make bench; BENCH_ONLY=archive
 * runs just that) on synthetic chat of ~135 bytes of text per message,
 * bytes per message, header and record fields included:
 *
 *   messages per chunk     1      5     16     32     64    128
 *   zstd level 1         158    103     81     72     65     62
 *   zstd level 3         158    103     79     70     64     59
 *   zstd level 9         158    102     78     69     61     56
 *   zstd level 19        156    101     77     67     59     54
 *
 * (real chat text measured before: 87 at 5, 66 at 32, 61 at 64 from 148
 * bytes of text; the synthetic text compresses a little worse). Chosen:
 * chunks grow to CM_ARCHIVE_CHUNK_MSGS (64) messages, the fold merging
 * the newest chunk with the folded messages (folds move ~6 messages,
 * which alone would cost ~100 bytes each); level 3 while a chunk grows,
 * as it is encoded again at every fold (~1.4 µs per message), and level
 * 9 once full, encoded once (3.5% smaller than level 3). Level 19 would
 * save 3.5% more but costs ~25 µs per message: a summarizer folding behind
 * an ingest of 30k events/s would spend most of its CPU there (measured:
 * the bench's backlog of 10,000 sessions of 100 messages took minutes).
 * A chunk is stored raw when compression does not make it smaller. The
 * archive then costs ~61 bytes per message in chunks, ~67 in Redis
 * (make bench prints the figures of the build at hand).
 * 128 messages per chunk would save another 8% at twice the work per
 * fold. Decoding takes ~0.15-0.35 µs per message (one zstd context per
 * thread, kept).
 */
#ifndef CM_ARCHIVE_H
#define CM_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include "message.h"

#define CM_ARCHIVE_VERSION     1
#define CM_ARCHIVE_HEADER_SIZE 32
#define CM_ARCHIVE_ZSTD        0x01 /* flags: the payload is a zstd frame */
/* Messages a chunk grows to (the fold merges the tail chunk up to it). */
#define CM_ARCHIVE_CHUNK_MSGS 64
/* The most messages one chunk can hold (its count is 16 bits). */
#define CM_ARCHIVE_COUNT_MAX 65535
/* zstd level of a chunk while it grows (it is encoded again at each
 * fold), and once it is full (encoded once, kept until evicted). */
#define CM_ARCHIVE_LEVEL      3
#define CM_ARCHIVE_LEVEL_FULL 9
/* A decoder refuses payloads larger than this (uncompressed). */
#define CM_ARCHIVE_RAW_MAX (64u * 1024 * 1024)

typedef struct cm_archive_header {
        unsigned flags; /* CM_ARCHIVE_ZSTD or 0 */
        size_t count;
        size_t raw_len;
        int64_t first_seq;
        int64_t last_seq;
        int64_t base;
} cm_archive_header_t;

/*
 * Reads and checks the header of chunk[0..len): version, flags, a count of
 * at least 1, first_seq <= last_seq, raw_len within CM_ARCHIVE_RAW_MAX, and
 * for a raw chunk that the payload is exactly raw_len bytes. Returns 0, or
 * -1 and writes the reason to errstr.
 */
int cm_archive_header_read(const void *chunk, size_t len,
                           cm_archive_header_t *h, char *errstr,
                           size_t errstr_size);

/*
 * Encodes msgs[0..cnt) (1 <= cnt <= CM_ARCHIVE_COUNT_MAX, seqs ascending)
 * as one chunk with base 0, its payload compressed with zstd at level
 * (CM_ARCHIVE_LEVEL unless measuring) when that makes it smaller, else
 * raw. Returns the chunk as a heap buffer the caller frees, its size in
 * *len. Cannot fail (a cnt out of range or a seq out of order is a
 * caller's bug and aborts).
 */
char *cm_archive_encode(const cm_message_t *msgs, size_t cnt, int level,
                        size_t *len);

/*
 * Decodes chunk[0..len) into out[0..count), count being the header's
 * (cm_archive_header_read), of which out must have room for out_cap.
 * Each message gets its seq, ts, role, tokens (-1: unknown) and content
 * (owned; event_id NULL). Returns the count, or -1 and writes the reason
 * to errstr; out is then left zeroed.
 */
long cm_archive_decode(const void *chunk, size_t len, cm_message_t *out,
                       size_t out_cap, char *errstr, size_t errstr_size);

#endif
