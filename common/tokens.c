/*
 * tokens: the table of known tokenizers, the "estimate" tokenizer and the
 * exact byte-level BPE tokenizers "cl100k_base" and "o200k_base".
 *
 * A tokenizer is a row of tokenizers[]. A BPE row loads its data on first
 * use, under load_lock, from the file ops/fetch-tokenizer-data.sh makes;
 * the loaded bpe_t is never changed again, so counting needs no lock.
 *
 * Encoding a text is tiktoken's: (1) a pre-tokenizer splits the text into
 * pieces as the encoding's regular expression does (hand-written scanners
 * below, one per encoding; the Unicode classes come from the data file);
 * (2) a piece that is a token is that token; (3) otherwise its bytes are
 * merged pairwise, always the pair of lowest rank, the leftmost of equal
 * ones, until no adjacent pair is a token. Step (3) keeps the ranks of the
 * adjacent pairs in an array and scans it (pieces are short); a piece
 * longer than SHORT_PIECE uses a heap instead, so that a 100 KB run of one
 * letter is O(n log n), not O(n^2).
 */
#include "tokens.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "util.h"

/* The build tree's data directory, set by the Makefile. */
#ifndef CM_TOKENIZER_DATA_DIR
#define CM_TOKENIZER_DATA_DIR "/usr/local/share/chatmem"
#endif
#define SYSTEM_DATA_DIR "/usr/local/share/chatmem"

/* Unicode class bits of a code point (data file, stage2). */
enum {
        CL_L = 1,  /* \p{L} */
        CL_N = 2,  /* \p{N} */
        CL_S = 4,  /* \s as JavaScript has it */
        CL_U = 8,  /* [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] */
        CL_W = 16, /* [\p{Ll}\p{Lm}\p{Lo}\p{M}] */
};

#define RANK_NONE   UINT32_MAX
#define SHORT_PIECE 64 /* longer pieces are merged with a heap */

#define FILE_MAGIC   "CMTOKBIN"
#define FILE_VERSION 1
#define FILE_HEADER  88
#define STAGE1_CNT   0x1100

/* A slot of the rank hash table; len 0 marks an empty slot. key holds the
 * whole token when len <= 8 (see key8()), else its first 8 bytes. */
typedef struct bpe_slot {
        uint64_t key;
        uint32_t rank;
        uint32_t len;
} bpe_slot_t;

typedef struct bpe {
        uint16_t stage1[STAGE1_CNT]; /* block of each 256 code points */
        uint8_t *stage2;             /* class bits, 256 per block */
        uint32_t n_tokens;
        uint32_t max_len;  /* of a token */
        uint32_t *offsets; /* token r is blob[offsets[r]..offsets[r+1]) */
        uint8_t *blob;
        bpe_slot_t *slots;
        uint32_t mask; /* slot count - 1 */
        int shift;     /* 64 - log2(slot count) */
} bpe_t;

/* Returns the end of the piece of s[0..len) that starts at i < len. */
typedef size_t (*scan_fn)(const bpe_t *bpe, const uint8_t *s, size_t len,
                          size_t i);

struct cm_tokenizer {
        const char *name;
        scan_fn scan; /* NULL: "estimate" */
        bpe_t *bpe;   /* set once, under load_lock */
};

/* Token ids being collected (functions take NULL when only counting). */
typedef struct ids {
        uint32_t *v;
        size_t cnt;
        size_t cap;
} ids_t;

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- "estimate" ---------------------------------------------------- */

/* ceil(code points / 4), the seed's rule. A code point is counted for each
 * byte that is not a continuation byte (0x80..0xBF), which also gives a
 * sensible answer for invalid UTF-8. */
static size_t estimate_count(const char *text, size_t len)
{
        const unsigned char *s = (const unsigned char *)text;
        size_t cp = 0;
        size_t i;

        for (i = 0; i < len; i++)
                cp += (s[i] & 0xc0) != 0x80;
        return cp / 4 + (cp % 4 != 0);
}

/* ---- pre-tokenizers -------------------------------------------------- */

static inline unsigned cls_of(const bpe_t *bpe, uint32_t cp)
{
        return bpe->stage2[(size_t)bpe->stage1[cp >> 8] << 8 | (cp & 0xff)];
}

/* Code point and class at s[i]; *end is set past it. */
static inline unsigned char_at(const bpe_t *bpe, const uint8_t *s, size_t len,
                               size_t i, size_t *end, uint32_t *cp)
{
        /* s is well-formed UTF-8 (bpe_encode repaired it). */
        *end = i + cm_utf8_decode((const char *)s + i, len - i, cp);
        return cls_of(bpe, *cp);
}

/* End of the run from i of characters with a class bit in mask. */
static size_t run_in(const bpe_t *bpe, const uint8_t *s, size_t len, size_t i,
                     unsigned mask)
{
        while (i < len) {
                size_t end;
                uint32_t cp;

                if (!(char_at(bpe, s, len, i, &end, &cp) & mask))
                        break;
                i = end;
        }
        return i;
}

/* End of the run from i of characters that are not \s, \p{L}, \p{N}. */
static size_t run_other(const bpe_t *bpe, const uint8_t *s, size_t len,
                        size_t i)
{
        while (i < len) {
                size_t end;
                uint32_t cp;

                if (char_at(bpe, s, len, i, &end, &cp) & (CL_L | CL_N | CL_S))
                        break;
                i = end;
        }
        return i;
}

/* End of the run from i of \r and \n, and of '/' too if slash. */
static size_t run_newlines(const uint8_t *s, size_t len, size_t i, int slash)
{
        while (i < len &&
               (s[i] == '\r' || s[i] == '\n' || (slash && s[i] == '/')))
                i++;
        return i;
}

/* Length of the contraction ('s 't 're 've 'm 'll 'd, any case) at s[i],
 * or 0. */
static size_t contraction(const uint8_t *s, size_t len, size_t i)
{
        unsigned a, b;

        if (i + 1 >= len || s[i] != '\'')
                return 0;
        a = (unsigned)cm_tolower(s[i + 1]);
        if (a == 's' || a == 't' || a == 'm' || a == 'd')
                return 2;
        if (i + 2 >= len)
                return 0;
        b = (unsigned)cm_tolower(s[i + 2]);
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') ||
            (a == 'l' && b == 'l'))
                return 3;
        return 0;
}

/* \p{N}{1,3} at i, whose character (ending at end) is \p{N}. */
static size_t scan_digits(const bpe_t *bpe, const uint8_t *s, size_t len,
                          size_t end)
{
        int k;

        for (k = 1; k < 3 && end < len; k++) {
                size_t next;
                uint32_t cp;

                if (!(char_at(bpe, s, len, end, &next, &cp) & CL_N))
                        break;
                end = next;
        }
        return end;
}

/*
 * \s*[\r\n]+|\s+(?!\S)|\s+ at i, whose character is \s: up to the last
 * \r or \n of the whitespace run if it has one; else the whole run if it
 * ends the text; else the run less its last character, if that leaves
 * something; else the one character.
 */
static size_t scan_space(const bpe_t *bpe, const uint8_t *s, size_t len,
                         size_t i)
{
        size_t j = i, last = i, nl = 0;

        while (j < len) {
                size_t end;
                uint32_t cp;

                if (!(char_at(bpe, s, len, j, &end, &cp) & CL_S))
                        break;
                if (cp == '\r' || cp == '\n')
                        nl = end;
                last = j;
                j = end;
        }
        if (nl)
                return nl;
        if (j == len || last == i)
                return j;
        return last;
}

/*
 * cl100k_base:
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *   ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * (js-tiktoken spells the case-insensitive group out in ASCII cases).
 */
static size_t scan_cl100k(const bpe_t *bpe, const uint8_t *s, size_t len,
                          size_t i)
{
        size_t end, end2, k;
        uint32_t cp, cp2;
        unsigned c = char_at(bpe, s, len, i, &end, &cp);

        k = contraction(s, len, i);
        if (k)
                return i + k;
        if (c & CL_L)
                return run_in(bpe, s, len, end, CL_L);
        if (!(c & CL_N) && cp != '\r' && cp != '\n' && end < len &&
            (char_at(bpe, s, len, end, &end2, &cp2) & CL_L))
                return run_in(bpe, s, len, end2, CL_L);
        if (c & CL_N)
                return scan_digits(bpe, s, len, end);
        if (cp == ' ' && end < len &&
            !(char_at(bpe, s, len, end, &end2, &cp2) & (CL_L | CL_N | CL_S)))
                return run_newlines(s, len, run_other(bpe, s, len, end2), 0);
        if (!(c & CL_S))
                return run_newlines(s, len, run_other(bpe, s, len, end), 0);
        return scan_space(bpe, s, len, i);
}

/* o200k_base's (?i:'s|'t|'re|'ve|'m|'ll|'d)? after a word ending at i. */
static size_t after_contraction(const uint8_t *s, size_t len, size_t i)
{
        return i + contraction(s, len, i);
}

/*
 * o200k_base's first alternative without its optional first character:
 * [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+ at i. The
 * greedy U* takes the whole U run; W+ then starts where the run ends if
 * that character is W, else (backtracking) at the last W character of the
 * run, which the next one is not. Returns the end of the match, or 0.
 */
static size_t o200k_word(const bpe_t *bpe, const uint8_t *s, size_t len,
                         size_t i)
{
        size_t last_w = 0;

        while (i < len) {
                size_t end;
                uint32_t cp;
                unsigned c = char_at(bpe, s, len, i, &end, &cp);

                if (!(c & CL_U)) {
                        if (c & CL_W)
                                return run_in(bpe, s, len, end, CL_W);
                        break;
                }
                if (c & CL_W)
                        last_w = end;
                i = end;
        }
        return last_w;
}

/*
 * o200k_base:
 *   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*
 *     [\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
 *   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+
 *     [\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
 *   \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * Marks (\p{M}) are neither \p{L} nor \p{N}, so they can also be the
 * optional first character; the regex tries that first.
 */
static size_t scan_o200k(const bpe_t *bpe, const uint8_t *s, size_t len,
                         size_t i)
{
        size_t end, end2, e;
        uint32_t cp, cp2;
        unsigned c = char_at(bpe, s, len, i, &end, &cp);
        int opt = !(c & (CL_L | CL_N)) && cp != '\r' && cp != '\n';

        if (opt) {
                e = o200k_word(bpe, s, len, end);
                if (e)
                        return after_contraction(s, len, e);
        }
        e = o200k_word(bpe, s, len, i);
        if (e)
                return after_contraction(s, len, e);
        if (opt && end < len &&
            (char_at(bpe, s, len, end, &end2, &cp2) & CL_U)) {
                e = run_in(bpe, s, len, end2, CL_U);
                return after_contraction(s, len, run_in(bpe, s, len, e, CL_W));
        }
        if (c & CL_U) {
                e = run_in(bpe, s, len, end, CL_U);
                return after_contraction(s, len, run_in(bpe, s, len, e, CL_W));
        }
        if (c & CL_N)
                return scan_digits(bpe, s, len, end);
        if (cp == ' ' && end < len &&
            !(char_at(bpe, s, len, end, &end2, &cp2) & (CL_L | CL_N | CL_S)))
                return run_newlines(s, len, run_other(bpe, s, len, end2), 1);
        if (!(c & CL_S))
                return run_newlines(s, len, run_other(bpe, s, len, end), 1);
        return scan_space(bpe, s, len, i);
}

/* ---- ranks ----------------------------------------------------------- */

/* A key that, with the length, identifies a token of up to 8 bytes
 * (overlapping loads cover every byte); the first 8 bytes of a longer
 * one. */
static inline uint64_t key8(const uint8_t *p, size_t n)
{
        uint64_t k;
        uint32_t a, b;

        if (n >= 8) {
                memcpy(&k, p, 8);
                return k;
        }
        if (n >= 4) {
                memcpy(&a, p, 4);
                memcpy(&b, p + n - 4, 4);
                return a | (uint64_t)b << 32;
        }
        return p[0] | (uint64_t)p[n / 2] << 8 | (uint64_t)p[n - 1] << 16;
}

static inline uint64_t hash_bytes(uint64_t key, const uint8_t *p, size_t n)
{
        uint64_t h =
            (key ^ (n * 0xff51afd7ed558ccdull)) * 0x9e3779b97f4a7c15ull;
        size_t i;

        for (i = 8; i < n; i += 8) {
                uint64_t w;

                memcpy(&w, p + (i + 8 <= n ? i : n - 8), 8);
                h = (h ^ (h >> 29) ^ w) * 0x9e3779b97f4a7c15ull;
        }
        return h;
}

/* Rank of the token p[0..n), n >= 1, or RANK_NONE. */
static inline uint32_t rank_of(const bpe_t *bpe, const uint8_t *p, size_t n)
{
        uint64_t key;
        uint32_t i;

        if (n > bpe->max_len)
                return RANK_NONE;
        key = key8(p, n);
        i = (uint32_t)(hash_bytes(key, p, n) >> bpe->shift);
        for (;; i = (i + 1) & bpe->mask) {
                const bpe_slot_t *slot = &bpe->slots[i];

                if (!slot->len)
                        return RANK_NONE;
                if (slot->len == n && slot->key == key &&
                    (n <= 8 || !memcmp(bpe->blob + bpe->offsets[slot->rank] + 8,
                                       p + 8, n - 8)))
                        return slot->rank;
        }
}

static inline void ids_push(ids_t *out, uint32_t id)
{
        if (out->cnt == out->cap) {
                out->cap = out->cap ? out->cap * 2 : 64;
                out->v = cm_realloc(out->v, out->cap * sizeof(*out->v));
        }
        out->v[out->cnt++] = id;
}

/* ---- merging --------------------------------------------------------- */

/* Merges p[0..n), 2 <= n <= SHORT_PIECE: start[k] is where part k begins
 * (start[parts] == n), rank[k] the rank of parts k and k+1 together. */
static size_t merge_short(const bpe_t *bpe, const uint8_t *p, size_t n,
                          ids_t *out)
{
        uint32_t start[SHORT_PIECE + 1];
        uint32_t rank[SHORT_PIECE + 1];
        size_t parts = n; /* entries: parts + 1 */
        size_t k;

        for (k = 0; k + 1 < n; k++) {
                start[k] = (uint32_t)k;
                rank[k] = rank_of(bpe, p + k, 2);
        }
        start[n - 1] = (uint32_t)(n - 1);
        rank[n - 1] = RANK_NONE;
        start[n] = (uint32_t)n;
        rank[n] = RANK_NONE;

        for (;;) {
                uint32_t min = RANK_NONE;
                size_t at = 0;

                for (k = 0; k + 1 < parts; k++) {
                        if (rank[k] < min) {
                                min = rank[k];
                                at = k;
                        }
                }
                if (min == RANK_NONE)
                        break;
                /* Part at+1 joins part at. */
                memmove(start + at + 1, start + at + 2,
                        (parts - at - 1) * sizeof(*start));
                memmove(rank + at + 1, rank + at + 2,
                        (parts - at - 1) * sizeof(*rank));
                parts--;
                rank[at] = at + 1 < parts ? rank_of(bpe, p + start[at],
                                                    start[at + 2] - start[at])
                                          : RANK_NONE;
                if (at > 0)
                        rank[at - 1] = rank_of(bpe, p + start[at - 1],
                                               start[at + 1] - start[at - 1]);
        }
        if (out) {
                for (k = 0; k < parts; k++)
                        ids_push(out, rank_of(bpe, p + start[k],
                                              start[k + 1] - start[k]));
        }
        return parts;
}

/* Min-heap of (rank << 32 | start): lowest rank first, then leftmost. */
static void heap_push(uint64_t *heap, size_t *cnt, uint64_t v)
{
        size_t i = (*cnt)++;

        while (i > 0 && heap[(i - 1) / 2] > v) {
                heap[i] = heap[(i - 1) / 2];
                i = (i - 1) / 2;
        }
        heap[i] = v;
}

static uint64_t heap_pop(uint64_t *heap, size_t *cnt)
{
        uint64_t top = heap[0];
        uint64_t v = heap[--*cnt];
        size_t i = 0;

        for (;;) {
                size_t c = 2 * i + 1;

                if (c >= *cnt)
                        break;
                if (c + 1 < *cnt && heap[c + 1] < heap[c])
                        c++;
                if (heap[c] >= v)
                        break;
                heap[i] = heap[c];
                i = c;
        }
        if (*cnt)
                heap[i] = v;
        return top;
}

/*
 * Merges a long piece p[0..n), n < 2^32, in the same order as
 * merge_short(). Parts are named by their first byte: next[k] is where the
 * part after k begins, rank[k] the rank of part k with the next one
 * (RANK_NONE also once k has been merged into its left neighbour). Heap
 * entries whose rank no longer matches rank[k] are stale; a grown pair is a
 * different token, so it cannot have the same rank.
 */
static size_t merge_long(const bpe_t *bpe, const uint8_t *p, size_t n,
                         ids_t *out)
{
        uint32_t *next = cm_malloc((n + 1) * sizeof(*next));
        uint32_t *prev = cm_malloc((n + 1) * sizeof(*prev));
        uint32_t *rank = cm_malloc((n + 1) * sizeof(*rank));
        uint64_t *heap = cm_malloc(3 * n * sizeof(*heap));
        size_t heap_cnt = 0;
        size_t parts = n;
        size_t k;

        for (k = 0; k < n; k++) {
                next[k] = (uint32_t)(k + 1);
                prev[k] = (uint32_t)k - 1; /* unused for k == 0 */
                rank[k] = k + 1 < n ? rank_of(bpe, p + k, 2) : RANK_NONE;
                if (rank[k] != RANK_NONE)
                        heap_push(heap, &heap_cnt, (uint64_t)rank[k] << 32 | k);
        }
        while (heap_cnt) {
                uint64_t top = heap_pop(heap, &heap_cnt);
                uint32_t at = (uint32_t)top;
                uint32_t gone, after;

                if (rank[at] != (uint32_t)(top >> 32))
                        continue;
                gone = next[at];
                after = next[gone];
                next[at] = after;
                if (after < n)
                        prev[after] = at;
                rank[gone] = RANK_NONE;
                parts--;
                rank[at] = after < n ? rank_of(bpe, p + at, next[after] - at)
                                     : RANK_NONE;
                if (rank[at] != RANK_NONE)
                        heap_push(heap, &heap_cnt,
                                  (uint64_t)rank[at] << 32 | at);
                if (at > 0) {
                        uint32_t before = prev[at];

                        rank[before] = rank_of(bpe, p + before, after - before);
                        if (rank[before] != RANK_NONE)
                                heap_push(heap, &heap_cnt,
                                          (uint64_t)rank[before] << 32 |
                                              before);
                }
        }
        if (out) {
                for (k = 0; k < n; k = next[k])
                        ids_push(out, rank_of(bpe, p + k, next[k] - k));
        }
        free(next);
        free(prev);
        free(rank);
        free(heap);
        return parts;
}

/* Tokens of the piece p[0..n), n >= 1; appends their ids to out if any. */
static inline size_t encode_piece(const bpe_t *bpe, const uint8_t *p, size_t n,
                                  ids_t *out)
{
        uint32_t r = rank_of(bpe, p, n);

        if (r != RANK_NONE) {
                if (out)
                        ids_push(out, r);
                return 1;
        }
        if (n <= SHORT_PIECE)
                return merge_short(bpe, p, n, out);
        return merge_long(bpe, p, n, out);
}

/* Tokens of text[0..len) with a BPE tokenizer; ids to out if not NULL. */
static size_t bpe_encode(const cm_tokenizer_t *tk, const char *text, size_t len,
                         ids_t *out)
{
        const bpe_t *bpe = tk->bpe;
        const uint8_t *s = (const uint8_t *)text;
        cm_buf_t repaired = CM_BUF_INIT;
        size_t cnt = 0;
        size_t i = 0;

        if (!cm_utf8_valid(text, len)) {
                cm_utf8_repair(&repaired, text, len);
                s = (const uint8_t *)repaired.buf;
                len = repaired.len;
        }
        while (i < len) {
                size_t end = tk->scan(bpe, s, len, i);

                cnt += encode_piece(bpe, s + i, end - i, out);
                i = end;
        }
        cm_buf_release(&repaired);
        return cnt;
}

/* ---- loading ---------------------------------------------------------- */

static uint32_t le32(const uint8_t *p)
{
        return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
               (uint32_t)p[3] << 24;
}

static void bpe_destroy(bpe_t *bpe)
{
        if (!bpe)
                return;
        free(bpe->stage2);
        free(bpe->offsets);
        free(bpe->blob);
        free(bpe->slots);
        free(bpe);
}

/* Adds token r to the hash table. Returns -1 if it is already there. */
static int bpe_insert(bpe_t *bpe, uint32_t r)
{
        const uint8_t *p = bpe->blob + bpe->offsets[r];
        size_t n = bpe->offsets[r + 1] - bpe->offsets[r];
        uint64_t key = key8(p, n);
        uint32_t i = (uint32_t)(hash_bytes(key, p, n) >> bpe->shift);

        if (rank_of(bpe, p, n) != RANK_NONE)
                return -1;
        while (bpe->slots[i].len)
                i = (i + 1) & bpe->mask;
        bpe->slots[i].key = key;
        bpe->slots[i].rank = r;
        bpe->slots[i].len = (uint32_t)n;
        return 0;
}

/* Builds a bpe_t from the bytes of a data file (format in
 * ops/fetch-tokenizer-data.sh). On error returns NULL and writes the
 * reason to errstr. */
static bpe_t *bpe_parse(const char *encoding, const uint8_t *d, size_t size,
                        char *errstr, size_t errstr_size)
{
        bpe_t *bpe = NULL;
        uint32_t n_tokens, blob_size, n_blocks;
        size_t stage2_at, offsets_at, blob_at, slot_cnt;
        uint32_t r, b;
        int bits;

        if (size < FILE_HEADER || memcmp(d, FILE_MAGIC, 8) ||
            le32(d + 8) != FILE_VERSION) {
                snprintf(errstr, errstr_size, "not a tokenizer data file");
                goto err;
        }
        if (strncmp((const char *)d + 24, encoding, 16)) {
                snprintf(errstr, errstr_size, "data of another encoding");
                goto err;
        }
        n_tokens = le32(d + 12);
        blob_size = le32(d + 16);
        n_blocks = le32(d + 20);
        stage2_at = FILE_HEADER + 2 * STAGE1_CNT;
        offsets_at = stage2_at + (size_t)n_blocks * 256;
        blob_at = offsets_at + ((size_t)n_tokens + 1) * 4;
        if (n_tokens < 256 || n_tokens > (1u << 24) || n_blocks < 1 ||
            n_blocks > STAGE1_CNT || size != blob_at + blob_size) {
                snprintf(errstr, errstr_size, "truncated or corrupt");
                goto err;
        }

        bpe = cm_calloc(1, sizeof(*bpe));
        for (b = 0; b < STAGE1_CNT; b++) {
                bpe->stage1[b] = d[FILE_HEADER + 2 * b] |
                                 (uint16_t)(d[FILE_HEADER + 2 * b + 1] << 8);
                if (bpe->stage1[b] >= n_blocks) {
                        snprintf(errstr, errstr_size, "corrupt class table");
                        goto err;
                }
        }
        bpe->stage2 = cm_malloc((size_t)n_blocks * 256);
        memcpy(bpe->stage2, d + stage2_at, (size_t)n_blocks * 256);
        bpe->n_tokens = n_tokens;
        bpe->offsets = cm_malloc(((size_t)n_tokens + 1) * sizeof(uint32_t));
        for (r = 0; r <= n_tokens; r++) {
                bpe->offsets[r] = le32(d + offsets_at + 4 * (size_t)r);
                if (r == 0 ? bpe->offsets[r] != 0
                           : bpe->offsets[r] <= bpe->offsets[r - 1] ||
                                 bpe->offsets[r] - bpe->offsets[r - 1] > 255) {
                        snprintf(errstr, errstr_size, "corrupt token table");
                        goto err;
                }
                if (r > 0 &&
                    bpe->offsets[r] - bpe->offsets[r - 1] > bpe->max_len)
                        bpe->max_len = bpe->offsets[r] - bpe->offsets[r - 1];
        }
        if (bpe->offsets[n_tokens] != blob_size) {
                snprintf(errstr, errstr_size, "corrupt token table");
                goto err;
        }
        bpe->blob = cm_malloc(blob_size);
        memcpy(bpe->blob, d + blob_at, blob_size);

        /* At most half full. */
        for (bits = 9, slot_cnt = 512; slot_cnt < 2 * (size_t)n_tokens; bits++)
                slot_cnt *= 2;
        bpe->slots = cm_calloc(slot_cnt, sizeof(*bpe->slots));
        bpe->mask = (uint32_t)(slot_cnt - 1);
        bpe->shift = 64 - bits;
        for (r = 0; r < n_tokens; r++) {
                if (bpe_insert(bpe, r) == -1) {
                        snprintf(errstr, errstr_size, "duplicate token %u", r);
                        goto err;
                }
        }
        /* Merging starts from single bytes: each must be a token. */
        for (b = 0; b < 256; b++) {
                uint8_t byte = (uint8_t)b;

                if (rank_of(bpe, &byte, 1) == RANK_NONE) {
                        snprintf(errstr, errstr_size, "byte %u has no token",
                                 b);
                        goto err;
                }
        }
        return bpe;
err:
        bpe_destroy(bpe);
        return NULL;
}

/* Reads path whole. Returns 0, -1 with errno set. */
static int read_file(const char *path, uint8_t **data, size_t *size)
{
        FILE *fp = fopen(path, "rb");
        uint8_t *buf = NULL;
        size_t cap = 0, len = 0;
        int err = 0;

        if (!fp)
                return -1;
        for (;;) {
                size_t n;

                if (len == cap) {
                        cap = cap ? cap * 2 : 1 << 20;
                        buf = cm_realloc(buf, cap);
                }
                n = fread(buf + len, 1, cap - len, fp);
                len += n;
                if (n == 0)
                        break;
        }
        if (ferror(fp))
                err = errno ? errno : EIO;
        fclose(fp);
        if (err) {
                free(buf);
                errno = err;
                return -1;
        }
        *data = buf;
        *size = len;
        return 0;
}

/* Loads <dir>/<encoding>.bin from the first directory that has it. On
 * error returns NULL and writes the reason to errstr. */
static bpe_t *bpe_load(const char *encoding, char *errstr, size_t errstr_size)
{
        const char *env = getenv("CHATMEM_TOKENIZER_DIR");
        const char *dirs[2];
        size_t dir_cnt = 0;
        bpe_t *bpe = NULL;
        uint8_t *data = NULL;
        size_t size = 0;
        char path[4096];
        char why[256];
        size_t i;

        if (env && *env) {
                dirs[dir_cnt++] = env;
        } else {
                dirs[dir_cnt++] = CM_TOKENIZER_DATA_DIR;
                if (strcmp(CM_TOKENIZER_DATA_DIR, SYSTEM_DATA_DIR))
                        dirs[dir_cnt++] = SYSTEM_DATA_DIR;
        }
        for (i = 0; i < dir_cnt; i++) {
                snprintf(path, sizeof(path), "%s/%s.bin", dirs[i], encoding);
                if (read_file(path, &data, &size) == 0)
                        break;
                if (errno != ENOENT) {
                        snprintf(errstr, errstr_size,
                                 "cannot read tokenizer data '%s': %s", path,
                                 strerror(errno));
                        return NULL;
                }
        }
        if (i == dir_cnt && env && *env) {
                snprintf(errstr, errstr_size,
                         "no tokenizer data '%s.bin' in '%s' "
                         "($CHATMEM_TOKENIZER_DIR)",
                         encoding, env);
                return NULL;
        }
        if (i == dir_cnt) {
                snprintf(errstr, errstr_size,
                         "no tokenizer data '%s.bin' in '%s'%s%s%s (run 'make' "
                         "to build it, or set CHATMEM_TOKENIZER_DIR)",
                         encoding, dirs[0], dir_cnt > 1 ? " or '" : "",
                         dir_cnt > 1 ? dirs[1] : "", dir_cnt > 1 ? "'" : "");
                return NULL;
        }
        bpe = bpe_parse(encoding, data, size, why, sizeof(why));
        if (!bpe)
                snprintf(errstr, errstr_size, "bad tokenizer data '%s': %s",
                         path, why);
        free(data);
        return bpe;
}

/* ---- the table and the interface -------------------------------------- */

static cm_tokenizer_t tokenizers[] = {
    {"estimate", NULL, NULL},
    {"cl100k_base", scan_cl100k, NULL},
    {"o200k_base", scan_o200k, NULL},
};

#define TOKENIZER_CNT (sizeof(tokenizers) / sizeof(tokenizers[0]))

int cm_tokenizer_get(const char *name, const cm_tokenizer_t **out, char *errstr,
                     size_t errstr_size)
{
        cm_tokenizer_t *tk = NULL;
        cm_buf_t known;
        size_t i;
        int rc = 0;

        for (i = 0; name && i < TOKENIZER_CNT; i++) {
                if (strcmp(tokenizers[i].name, name) == 0) {
                        tk = &tokenizers[i];
                        break;
                }
        }
        if (!tk) {
                cm_buf_init(&known);
                for (i = 0; i < TOKENIZER_CNT; i++) {
                        if (i > 0)
                                cm_buf_adds(&known, ", ");
                        cm_buf_adds(&known, tokenizers[i].name);
                }
                snprintf(errstr, errstr_size,
                         "unknown tokenizer '%s' (known: %s)", name ? name : "",
                         known.buf);
                cm_buf_release(&known);
                return -1;
        }
        if (tk->scan) {
                /* A failed load is retried by the next call. */
                pthread_mutex_lock(&load_lock);
                if (!tk->bpe)
                        tk->bpe = bpe_load(tk->name, errstr, errstr_size);
                if (!tk->bpe)
                        rc = -1;
                pthread_mutex_unlock(&load_lock);
        }
        if (rc == 0)
                *out = tk;
        return rc;
}

const char *cm_tokenizer_name(const cm_tokenizer_t *tk)
{
        return tk->name;
}

int cm_tokenizer_count(const cm_tokenizer_t *tk, const char *text, size_t len)
{
        size_t cnt = tk->scan ? bpe_encode(tk, text, len, NULL)
                              : estimate_count(text, len);

        return cnt > INT_MAX ? INT_MAX : (int)cnt;
}

int cm_tokenizer_encode(const cm_tokenizer_t *tk, const char *text, size_t len,
                        uint32_t **ids, size_t *cnt)
{
        ids_t out = {NULL, 0, 0};

        *ids = NULL;
        *cnt = 0;
        if (!tk->scan)
                return -1;
        if (len) {
                out.cap = len / 4 + 16;
                out.v = cm_malloc(out.cap * sizeof(*out.v));
        }
        bpe_encode(tk, text, len, &out);
        *ids = out.v;
        *cnt = out.cnt;
        return 0;
}

const char *cm_tokenizer_token(const cm_tokenizer_t *tk, uint32_t id,
                               size_t *len)
{
        const bpe_t *bpe = tk->bpe;

        if (!tk->scan || id >= bpe->n_tokens)
                return NULL;
        *len = bpe->offsets[id + 1] - bpe->offsets[id];
        return (const char *)bpe->blob + bpe->offsets[id];
}
