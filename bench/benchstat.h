/* What the C benchmarks share: a clock in milliseconds, putting their samples in order, and
 * the median. */
#ifndef WSLQ_BENCH_BENCHSTAT_H
#define WSLQ_BENCH_BENCHSTAT_H

#include <stddef.h>
#include <stdlib.h>
#include <time.h>

/* clock id (CLOCK_MONOTONIC: wall time; CLOCK_THREAD_CPUTIME_ID: this thread's CPU) in ms */
static inline double
bench_clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static inline int
bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

/* v[0..n) in ascending order */
static inline void
bench_sort(double *v, size_t n)
{
    qsort(v, n, sizeof *v, bench_cmp_double);
}

/* The median of v[0..n), n >= 1; sorts v. */
static inline double
bench_median(double *v, size_t n)
{
    bench_sort(v, n);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
