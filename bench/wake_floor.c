/* The floor under an idle daemon's CPU: what one wake from a timed sleep costs a thread that
 * does nothing else. It sleeps N times in poll() for MS milliseconds, as the daemons' loops
 * do, and reads its own CPU time (CLOCK_THREAD_CPUTIME_ID) around each sleep. On a virtual
 * machine a wake costs more the longer the sleep was (the CPU's way out of its deepest idle
 * state, caches and TLB gone cold), and an idle daemon's wakes come after seconds of sleep:
 * bench/idle_bench.py runs it beside the daemons at their sleep length and at 5 ms.
 *     wslq-bench-wake MS N
 * Prints "N wakes after MS ms sleeps: median X us of CPU each (least Y, most Z)". Exits 2 on
 * bad arguments, 1 when the clock cannot be read. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/parse.h"

static int
thread_ns(int64_t *ns)
{
    struct timespec t;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) < 0) {
        fprintf(stderr, "wslq-bench-wake: clock_gettime: %s\n", strerror(errno));
        return -1;
    }
    *ns = (int64_t) t.tv_sec * 1000000000 + t.tv_nsec;
    return 0;
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: wslq-bench-wake MS N\n");
        return 2;
    }
    int64_t ms, n;
    wq_error_t err = {0};
    if (wq_parse_int(argv[1], 1, 60000, "MS", &ms, &err) < 0 ||
        wq_parse_int(argv[2], 1, 100000, "N", &n, &err) < 0) {
        fprintf(stderr, "wslq-bench-wake: %s\n", err.text);
        return 2;
    }
    int64_t *cost = malloc((size_t) n * sizeof *cost);
    if (cost == NULL) {
        fprintf(stderr, "wslq-bench-wake: out of memory\n");
        return 1;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t t0, t1;
        if (thread_ns(&t0) < 0)
            return 1;
        (void) poll(NULL, 0, (int) ms); /* a signal cutting it short is one more wake */
        if (thread_ns(&t1) < 0)
            return 1;
        cost[i] = t1 - t0;
    }
    qsort(cost, (size_t) n, sizeof *cost, cmp_i64);
    double median = n % 2 ? (double) cost[n / 2] : (cost[n / 2 - 1] + cost[n / 2]) / 2.0;
    printf("%lld wakes after %lld ms sleeps: median %.1f us of CPU each (least %.1f, most %.1f)\n",
           (long long) n, (long long) ms, median / 1e3, (double) cost[0] / 1e3,
           (double) cost[n - 1] / 1e3);
    free(cost);
    return 0;
}
