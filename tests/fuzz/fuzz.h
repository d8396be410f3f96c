/*
 * fuzz: what the libFuzzer targets in tests/fuzz share.
 *
 * Each fuzz_<name>.c defines LLVMFuzzerTestOneInput(): it gives one input,
 * any bytes, to one of chatmem's decoders or parsers (the real function,
 * from libchatmem), releases what it got and checks an invariant of the
 * result, aborting when it does not hold, so that a wrong answer fails the
 * run like a crash does. It returns 0.
 *
 * Each target is built twice: with clang's -fsanitize=fuzzer for
 * `make fuzz` (ops/fuzz.sh), and with the normal compiler beside replay.c
 * for `make unit`, which runs it over the committed inputs
 * (tests/fuzz/corpus/<name>/ and tests/fuzz/regressions/<name>/).
 *
 * Inputs made of parts (a request and its Kafka headers, the messages of a
 * fold) are split at FUZZ_SEP, 0xff, a byte that never occurs in UTF-8.
 */
#ifndef CM_FUZZ_H
#define CM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The content limit the decoders are given: below libFuzzer's default
 * input size, so that both sides of it are reached. */
#define FUZZ_MAX_CONTENT 1024

#define FUZZ_SEP 0xff

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts, naming the invariant, unless cond holds. */
#define FUZZ_CHECK(cond)                                                       \
        do {                                                                   \
                if (!(cond))                                                   \
                        fuzz_fail(__FILE__, __LINE__, #cond);                  \
        } while (0)

static inline _Noreturn void fuzz_fail(const char *file, int line,
                                       const char *what)
{
        fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
        abort();
}

/* 1 when a and b are both NULL or both the same string, else 0. */
static inline int fuzz_str_eq(const char *a, const char *b)
{
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}

/* The parts of an input, taken in turn with fuzz_split_next(). */
typedef struct fuzz_split {
        const uint8_t *p, *end;
        int done;
} fuzz_split_t;

static inline void fuzz_split_init(fuzz_split_t *sp, const uint8_t *data,
                                   size_t size)
{
        sp->p = data;
        sp->end = data + size;
        sp->done = 0;
}

/*
 * Sets *part and *len to the next part: the bytes up to the next FUZZ_SEP,
 * or to the end. Returns 1, or 0 when every part was taken: an input with
 * n separators has n + 1 parts (the empty input has one, empty).
 */
static inline int fuzz_split_next(fuzz_split_t *sp, const char **part,
                                  size_t *len)
{
        const uint8_t *sep = NULL;

        if (sp->done)
                return 0;
        if (sp->p < sp->end)
                sep = memchr(sp->p, FUZZ_SEP, (size_t)(sp->end - sp->p));
        *part = (const char *)sp->p;
        *len = (size_t)((sep ? sep : sp->end) - sp->p);
        if (sep)
                sp->p = sep + 1;
        else
                sp->done = 1;
        return 1;
}

#endif
