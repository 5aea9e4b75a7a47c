/* Small helpers shared by the trainer benchmarks: a microsecond clock. (A free loopback port
 * for a bootstrap is wq_free_tcp_port(INADDR_LOOPBACK), common/net.h.) */
#ifndef WSLQ_BENCH_UTIL_H
#define WSLQ_BENCH_UTIL_H

#include <time.h>

static inline double
now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}

#endif
