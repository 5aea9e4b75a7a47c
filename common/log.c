/* Logging to stderr; see log.h. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"

unsigned wq_log_flags;
int wq_log_level = LOG_INFO;
static const char *log_prog = "wslq";

void
wq_log_init(const char *progname)
{
    log_prog = progname;
    const char *dbg = getenv("WSLQ_DEBUG");
    if (dbg == NULL)
        return;
    static const struct {
        const char *name;
        unsigned flag;
    } names[] = {{"wire", WQ_LOGF_WIRE},
                 {"sched", WQ_LOGF_SCHED},
                 {"sql", WQ_LOGF_SQL},
                 {"http", WQ_LOGF_HTTP},
                 {"worker", WQ_LOGF_WORKER}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strstr(dbg, names[i].name) != NULL || strcmp(dbg, "all") == 0)
            wq_log_flags |= names[i].flag;
    if (wq_log_flags != 0)
        wq_log_level = LOG_DEBUG;
}

void
wq_log(int level, const char *fmt, ...)
{
    if (level > wq_log_level)
        return;
    static const char *const tags[] = {"emerg", "alert", "crit", "error",
                                       "warn",  "note",  "info", "debug"};
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s: %s\n", log_prog, tags[level & 7], line);
}

int
wq_ratelimit(wq_ratelimit_t *rl, unsigned burst, int64_t interval_ms)
{
    int64_t now = wq_clock_mono_ms();
    if (now - rl->window_start_ms >= interval_ms) {
        rl->window_start_ms = now;
        rl->in_window = 0;
    }
    if (rl->in_window >= burst) {
        rl->suppressed++;
        return -1;
    }
    rl->in_window++;
    int s = (int) rl->suppressed;
    rl->suppressed = 0;
    return s;
}
