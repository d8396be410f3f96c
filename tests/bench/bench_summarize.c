/*
 * bench_summarize: how long one extractive fold takes.
 *
 *   bench_summarize [RUNS]
 *
 * Folds the ten typical chat messages of tests/summarize_fixture.h (those
 * of the unit tests) into an empty summary of at most 300 tokens, RUNS
 * times (default 1000), with the "estimate" tokenizer and with cl100k_base
 * (when its data is built), and prints the best of 3 such runs as
 *
 *   extractive fold of 10 messages, <tokenizer>: <us> us per fold
 *
 * A measurement, not a test: it asserts nothing. `make bench-summarize`
 * runs it. Exit status: 0, or 2 on a bad argument.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "summarize.h"
#include "../summarize_fixture.h"
#include "tokens.h"
#include "util.h"

#define MSG_CNT SUMMARIZE_FIXTURE_CNT

/* Microseconds per fold, the best of 3 runs of runs folds each. */
static double bench(const cm_tokenizer_t *tk, const cm_message_t *msgs,
                    long runs)
{
        cm_fold_in_t in;
        double best = 0;
        int r;

        memset(&in, 0, sizeof(in));
        in.msgs = msgs;
        in.msg_cnt = MSG_CNT;
        in.max_tokens = 300;
        in.tk = tk;
        for (r = 0; r < 3; r++) {
                int64_t t0 = cm_mono_us();
                double us;
                long i;

                for (i = 0; i < runs; i++)
                        free(cm_extractive_fold(&in));
                us = (double)(cm_mono_us() - t0) / (double)runs;
                if (r == 0 || us < best)
                        best = us;
        }
        return best;
}

int main(int argc, char **argv)
{
        static const char *const names[] = {"estimate", "cl100k_base"};
        cm_message_t msgs[MSG_CNT];
        char errstr[256];
        long long runs = 1000;
        size_t i;

        if (argc > 2 ||
            (argc == 2 && cm_parse_int(argv[1], 1, 100000000, &runs) == -1)) {
                fprintf(stderr, "usage: %s [RUNS]\n", argv[0]);
                return 2;
        }
        summarize_fixture(msgs);
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                const cm_tokenizer_t *tk = NULL;

                if (cm_tokenizer_get(names[i], &tk, errstr, sizeof(errstr)) ==
                    -1) {
                        printf("extractive fold of %d messages, %s: skipped "
                               "(%s)\n",
                               MSG_CNT, names[i], errstr);
                        continue;
                }
                printf("extractive fold of %d messages, %s: %.1f us per fold "
                       "(best of 3 runs of %lld)\n",
                       MSG_CNT, names[i], bench(tk, msgs, (long)runs), runs);
        }
        return 0;
}
