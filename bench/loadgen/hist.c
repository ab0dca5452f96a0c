#include "bench/loadgen/hist.h"

#include <math.h>
#include <string.h>

#define SUB (1u << FO_HIST_SUB_BITS)
#define TOP ((uint64_t)1 << FO_HIST_MAX_EXP)

void fo_hist_init(fo_hist *h)
{
    memset(h, 0, sizeof(*h));
}

static uint32_t index_of(uint64_t v)
{
    uint32_t e;

    if (v < 256)
        return (uint32_t)v;
    e = 63u - (uint32_t)__builtin_clzll(v); /* 8 .. MAX_EXP-1 */
    return 256u + (e - 8u) * SUB + (uint32_t)((v >> (e - FO_HIST_SUB_BITS)) & (SUB - 1));
}

/* The largest value that lands in bucket i. */
static uint64_t highest_of(uint32_t i)
{
    uint32_t e, m;
    uint64_t lo;

    if (i < 256)
        return i;
    e = (i - 256u) / SUB + 8u;
    m = (i - 256u) % SUB;
    lo = ((uint64_t)(SUB + m)) << (e - FO_HIST_SUB_BITS);
    return lo + ((uint64_t)1 << (e - FO_HIST_SUB_BITS)) - 1;
}

void fo_hist_record(fo_hist *h, uint64_t ns)
{
    if (ns >= TOP) {
        h->clamped++;
        ns = TOP - 1;
    }
    h->buckets[index_of(ns)]++;
    if (h->count == 0 || ns < h->min)
        h->min = ns;
    if (ns > h->max)
        h->max = ns;
    h->count++;
    h->sum += (double)ns;
}

void fo_hist_merge(fo_hist *dst, const fo_hist *src)
{
    uint32_t i;

    if (!src->count)
        return;
    for (i = 0; i < FO_HIST_NBUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    dst->clamped += src->clamped;
    dst->sum += src->sum;
}

uint64_t fo_hist_percentile(const fo_hist *h, double p)
{
    uint64_t rank, seen = 0, v;
    uint32_t i;

    if (!h->count)
        return 0;
    if (p >= 100.0)
        return h->max;
    if (p < 0)
        p = 0;
    rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
    if (rank < 1)
        rank = 1;
    for (i = 0; i < FO_HIST_NBUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            v = highest_of(i);
            return v > h->max ? h->max : (v < h->min ? h->min : v);
        }
    }
    return h->max;
}

double fo_hist_mean(const fo_hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}
