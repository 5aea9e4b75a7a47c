/* The floor of a drain: the fastest this machine runs N short jobs, SLOTS at a time, started
 * by one small process with posix_spawn (the cheapest start there is: no copy of the parent's
 * page tables) and reaped with waitpid. A queue that drains N jobs can do no better than this,
 * whatever its daemons do; bench/vs_tsp.py holds both tools' drains against it.
 *     wslq-bench-spawn N SLOTS PROGRAM [ARG...]
 * Prints "N runs, SLOTS at a time: SECONDS s, RATE/s". Exits 1 when a run cannot be started
 * or exits other than 0, 2 on bad arguments. */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "bench/benchstat.h"
#include "common/parse.h"

extern char **environ;

/* one child reaped; 0 when it exited 0 */
static int
reap(void)
{
    int status;
    pid_t pid;
    do
        pid = waitpid(-1, &status, 0);
    while (pid < 0 && errno == EINTR);
    if (pid < 0) {
        fprintf(stderr, "wslq-bench-spawn: waitpid: %s\n", strerror(errno));
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "wslq-bench-spawn: a run ended with status 0x%x\n", (unsigned) status);
        return -1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: wslq-bench-spawn N SLOTS PROGRAM [ARG...]\n");
        return 2;
    }
    int64_t n, slots;
    wq_error_t err = {0};
    if (wq_parse_int(argv[1], 1, 10000000, "N", &n, &err) < 0 ||
        wq_parse_int(argv[2], 1, 4096, "SLOTS", &slots, &err) < 0) {
        fprintf(stderr, "wslq-bench-spawn: %s\n", err.text);
        return 2;
    }
    double t0 = bench_clock_ms(CLOCK_MONOTONIC);
    int64_t running = 0, started = 0;
    while (started < n || running > 0) {
        if (started < n && running < slots) {
            pid_t pid;
            int rc = posix_spawn(&pid, argv[3], NULL, NULL, argv + 3, environ);
            if (rc != 0) {
                fprintf(stderr, "wslq-bench-spawn: %s: %s\n", argv[3], strerror(rc));
                return 1;
            }
            started++;
            running++;
            continue;
        }
        if (reap() != 0)
            return 1;
        running--;
    }
    double s = (bench_clock_ms(CLOCK_MONOTONIC) - t0) / 1e3;
    printf("%lld runs, %lld at a time: %.3f s, %.1f/s\n", (long long) n, (long long) slots, s,
           (double) n / s);
    return 0;
}
