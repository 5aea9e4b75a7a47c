/* The memory watch's cost (worker/README.md, "Isolation"): one look at a job sums the
 * resident memory of its process groups by reading /proc/<pid>/stat of every process on the
 * machine, so its cost grows with the machine's process count. This starts 0, 200 and 1000
 * idle processes beside what runs, times 200 looks at one process group each, and prints the
 * median and 90th percentile per look, the interval the worker then takes between looks
 * (500 ms, or 50 times a look's cost when longer) and the share of one CPU a watched job
 * costs at it.
 *   wslq-bench-memwatch [LOOKS] */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/benchstat.h"
#include "worker/isol.h"

static int
count_procs(void)
{
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        n += e->d_name[0] >= '1' && e->d_name[0] <= '9';
    if (d != NULL)
        closedir(d);
    return n;
}

int
main(int argc, char **argv)
{
    int looks = argc > 1 ? atoi(argv[1]) : 200;
    if (looks < 1 || looks > 100000) {
        fprintf(stderr, "usage: wslq-bench-memwatch [LOOKS 1..100000]\n");
        return 2;
    }
    static const int extra[] = {0, 200, 1000};
    pid_t *kids = calloc(1000, sizeof *kids);
    double *t = calloc((size_t) looks, sizeof *t);
    int started = 0;
    pid_t g = getpgrp();
    printf("%-8s %-10s %-10s %-10s %-12s %s\n", "extra", "processes", "median_ms", "p90_ms",
           "interval_ms", "cpu");
    for (size_t k = 0; k < sizeof extra / sizeof extra[0]; k++) {
        while (started < extra[k]) {
            pid_t p = fork();
            if (p == 0) {
                pause();
                _exit(0);
            }
            if (p < 0)
                break;
            kids[started++] = p;
        }
        for (int i = 0; i < looks; i++) {
            double a = bench_clock_ms(CLOCK_MONOTONIC);
            volatile uint64_t r = isol_rss_groups("/proc", &g, 1);
            (void) r;
            t[i] = bench_clock_ms(CLOCK_MONOTONIC) - a;
        }
        bench_sort(t, (size_t) looks);
        double med = t[looks / 2], p90 = t[looks * 9 / 10];
        double every = med * 50 > 500 ? med * 50 : 500;
        printf("%-8d %-10d %-10.3f %-10.3f %-12.0f %.2f%%\n", started, count_procs(), med, p90,
               every, med / every * 100.0);
    }
    for (int i = 0; i < started; i++)
        kill(kids[i], SIGKILL);
    for (int i = 0; i < started; i++)
        waitpid(kids[i], NULL, 0);
    free(kids);
    free(t);
    return 0;
}
