/* Logging: "message key=value ..." lines on stderr (systemd's journal adds the time).
 * Per-subsystem debug flags come from WSLQ_DEBUG=wire,sched,sql,http,worker. */
#ifndef WSLQ_LOG_H
#define WSLQ_LOG_H

#include <inttypes.h>
#include <syslog.h>

enum wq_log_flag_b {
    WQ_LOGF_WIRE = 1 << 0,
    WQ_LOGF_SCHED = 1 << 1,
    WQ_LOGF_SQL = 1 << 2,
    WQ_LOGF_HTTP = 1 << 3,
    WQ_LOGF_WORKER = 1 << 4,
};
extern unsigned wq_log_flags; /* bitmask of wq_log_flag_b */
extern int wq_log_level;      /* syslog level; messages above it are dropped */

/* Set the program name shown in each line and read WSLQ_DEBUG. */
void wq_log_init(const char *progname);

void wq_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)  wq_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...) wq_log(LOG_WARNING, __VA_ARGS__)
#define log_info(...) wq_log(LOG_INFO, __VA_ARGS__)
#define log_flag(f, ...)                    \
    do {                                    \
        if (wq_log_flags & WQ_LOGF_##f)     \
            wq_log(LOG_DEBUG, __VA_ARGS__); \
    } while (0)

/* One spelling for job ids in logs. */
#define JOB_FMT "job=%" PRIu64

/* Rate limiter for a log site: at most 'burst' lines per 'interval_ms'; the rest are counted
 * and reported as "suppressed=N" on the next line that passes. */
typedef struct {
    int64_t window_start_ms; /* monotonic ms when the current window opened */
    unsigned in_window;      /* lines let through in this window */
    unsigned suppressed;     /* lines dropped since the last one let through */
} wq_ratelimit_t;

/* Returns the number of suppressed lines to report (>= 0) if a line may be logged now,
 * or -1 if it must be dropped. */
int wq_ratelimit(wq_ratelimit_t *rl, unsigned burst, int64_t interval_ms);

#endif
