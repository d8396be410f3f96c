/*
 * hist: the bench's log-bucketed latency histogram (see bench.h). Values
 * below 128 have a bucket each; above, each power of two is split in 64
 * buckets, so a percentile is within ~1.6% of the true value.
 */
#include <math.h>

#include "bench.h"

static int hist_index(int64_t v)
{
        int e = 0;

        if (v < 0)
                v = 0;
        if (v < 2 * HIST_SUB)
                return (int)v;
        while ((v >> e) >= 2 * HIST_SUB)
                e++;
        /* v >> e in [64, 128) */
        if (e >= HIST_EXP)
                return HIST_LEN - 1;
        return 2 * HIST_SUB + (e - 1) * HIST_SUB + (int)((v >> e) - HIST_SUB);
}

/* Highest value that falls in bucket i. */
static int64_t hist_value(int i)
{
        int e, sub;

        if (i < 2 * HIST_SUB)
                return i;
        e = (i - 2 * HIST_SUB) / HIST_SUB + 1;
        sub = (i - 2 * HIST_SUB) % HIST_SUB + HIST_SUB;
        return (((int64_t)sub + 1) << e) - 1;
}

void hist_record(hist_t *h, int64_t v)
{
        h->counts[hist_index(v)]++;
        h->total++;
        if (v > h->max)
                h->max = v;
}

int64_t hist_pct(const hist_t *h, double pct)
{
        uint64_t want, seen = 0;
        int i;

        if (!h->total)
                return 0;
        want = (uint64_t)ceil(pct / 100.0 * (double)h->total);
        if (want < 1)
                want = 1;
        for (i = 0; i < HIST_LEN; i++) {
                seen += h->counts[i];
                if (seen >= want) {
                        int64_t v = hist_value(i);
                        return v < h->max ? v : h->max;
                }
        }
        return h->max;
}
