/* hist.h - an HdrHistogram-style latency histogram (log-linear buckets).
 *
 * Debian 12 packages HdrHistogram only for Java and Go (`apt-cache search hdrhistogram`),
 * so this is a small C one with the same idea: values below 256 ns are counted exactly;
 * above, each power of two is split into 128 linear sub-buckets, so a bucket is at most
 * 1/128 (0.78%) of its values wide. Values are nanoseconds from 0 to 2^37 (137 s, past the
 * 60 s the load generator needs); larger ones are clamped and counted in `clamped`.
 * 3,968 buckets of 8 bytes: 31 KiB per histogram, recording is O(1) with no allocation.
 * The exact minimum, maximum and sum are kept beside the buckets. */
#ifndef FO_HIST_H
#define FO_HIST_H

#include <stdint.h>

#define FO_HIST_SUB_BITS 7
#define FO_HIST_MAX_EXP 37
#define FO_HIST_NBUCKETS (256 + (FO_HIST_MAX_EXP - 8) * (1 << FO_HIST_SUB_BITS))

typedef struct fo_hist {
    uint64_t count;
    uint64_t clamped; /* values above the range, counted at the top bucket */
    uint64_t min, max;
    double sum;
    uint64_t buckets[FO_HIST_NBUCKETS];
} fo_hist;

/* The caller owns the storage; init zeroes it (reset is the same thing). */
void fo_hist_init(fo_hist *h);
void fo_hist_record(fo_hist *h, uint64_t ns);
/* Adds every count of `src` to `dst`. */
void fo_hist_merge(fo_hist *dst, const fo_hist *src);
/* The value at percentile p (0..100): the highest value equivalent to the bucket that
 * holds the rank ceil(p/100 * count) (HdrHistogram's convention), capped by the exact max.
 * 0 when the histogram is empty. p = 100 gives the exact max. */
uint64_t fo_hist_percentile(const fo_hist *h, double p);
double fo_hist_mean(const fo_hist *h);

#endif
