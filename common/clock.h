/* Clocks: monotonic for deadlines and intervals, wall for what people read. */
#ifndef WSLQ_CLOCK_H
#define WSLQ_CLOCK_H

#include <stdint.h>

/* Monotonic milliseconds (CLOCK_MONOTONIC), for deadlines. */
int64_t wq_clock_mono_ms(void);

/* Wall-clock milliseconds since the Unix epoch, for records people read. */
int64_t wq_clock_wall_ms(void);

/* Format a wall time (ms since epoch) as local "YYYY-MM-DDTHH:MM:SS" into buf. */
const char *wq_clock_format(int64_t wall_ms, char *buf, unsigned len);

#endif
