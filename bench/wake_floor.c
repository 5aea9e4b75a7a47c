/* The floor under an idle daemon's CPU: what one wake from a timed sleep costs a thread that
 * does nothing else. It sleeps N times in poll() for MS milliseconds, as the daemons' loops
 * do, and reads its own CPU time (CLOCK_THREAD_CPUTIME_ID) around each sleep. On a virtual
 * machine a wake costs more the longer the sleep was (the CPU's way out of its deepest idle
 * state, caches and TLB gone cold), and an idle daemon's wakes come after seconds of sleep:
 * bench/idle_bench.py runs it beside the daemons at their sleep length and at 5 ms.
 *     wslq-bench-wake MS N
 * Prints "N wakes after MS ms sleeps: median X us of CPU each (least Y, most Z)". Exits 2 on
 * bad arguments, 1 when out of memory. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/benchstat.h"
#include "common/parse.h"

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
    double *cost = malloc((size_t) n * sizeof *cost); /* us */
    if (cost == NULL) {
        fprintf(stderr, "wslq-bench-wake: out of memory\n");
        return 1;
    }
    for (int64_t i = 0; i < n; i++) {
        double t0 = bench_clock_ms(CLOCK_THREAD_CPUTIME_ID);
        (void) poll(NULL, 0, (int) ms); /* a signal cutting it short is one more wake */
        cost[i] = (bench_clock_ms(CLOCK_THREAD_CPUTIME_ID) - t0) * 1e3;
    }
    double median = bench_median(cost, (size_t) n); /* sorts cost */
    printf("%lld wakes after %lld ms sleeps: median %.1f us of CPU each (least %.1f, most %.1f)\n",
           (long long) n, (long long) ms, median, cost[0], cost[n - 1]);
    free(cost);
    return 0;
}
