/* Clocks; see clock.h. */
#include "common/clock.h"

#include <stdio.h>
#include <time.h>

int64_t
wq_clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
wq_clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *
wq_clock_format(int64_t wall_ms, char *buf, unsigned len)
{
    time_t t = (time_t) (wall_ms / 1000);
    struct tm tm;
    if (wall_ms <= 0 || localtime_r(&t, &tm) == NULL) {
        snprintf(buf, len, "-");
        return buf;
    }
    strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    return buf;
}
