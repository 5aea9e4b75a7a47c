/* The cost of faulting in fresh anonymous memory, in 4 KiB pages against transparent huge
 * pages, on memory that has just been freed and on memory that has sat free for a while.
 *
 *     wslq-bench-fault [MIB [ROUNDS [PAUSE_MS]]]
 *
 * Each round maps MIB (default 128) of anonymous memory aligned to 2 MiB, advises it
 * MADV_NOHUGEPAGE or MADV_HUGEPAGE, writes one byte in every 4 KiB and unmaps it, timing the
 * writes. Each kind runs after a pause of PAUSE_MS (default 3,000: "rested") and once more
 * straight after itself ("again", on the memory it just freed); which kind goes first
 * alternates round by round. A virtual machine that reports free memory back to its host
 * (free page reporting, as WSL 2 does) has to back a rested 2 MiB block again before the
 * guest can zero it. Prints the median of ROUNDS (default 5) for each kind and case, and
 * whether the kernel has transparent huge pages for madvise at all
 * (/sys/kernel/mm/transparent_hugepage/enabled). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "bench/benchstat.h"

#define HUGE_SZ    ((size_t) 2 << 20)
#define MAX_ROUNDS 50

/* ms to touch size bytes advised huge or not; -1 when the mapping fails */
static double
touch(size_t size, int huge)
{
    char *raw =
        mmap(NULL, size + HUGE_SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return -1;
    char *p = (char *) (((uintptr_t) raw + HUGE_SZ - 1) & ~(uintptr_t) (HUGE_SZ - 1));
    (void) madvise(p, size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    double t0 = bench_clock_ms(CLOCK_MONOTONIC);
    for (size_t i = 0; i < size; i += 4096)
        p[i] = 1;
    double dt = bench_clock_ms(CLOCK_MONOTONIC) - t0;
    munmap(raw, size + HUGE_SZ);
    return dt;
}

static void
pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* a positive integer argument, or exit with the usage */
static long
arg(const char *s, long max)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > max) {
        fprintf(stderr,
                "usage: wslq-bench-fault [MIB [ROUNDS [PAUSE_MS]]] (MIB 1-65536, "
                "ROUNDS 1-%d, PAUSE_MS 1-600000)\n",
                MAX_ROUNDS);
        exit(2);
    }
    return v;
}

int
main(int argc, char **argv)
{
    if (argc > 4)
        arg("", 1);
    size_t mib = argc > 1 ? (size_t) arg(argv[1], 65536) : 128;
    int rounds = argc > 2 ? (int) arg(argv[2], MAX_ROUNDS) : 5;
    long pause = argc > 3 ? arg(argv[3], 600000) : 3000;
    char thp[128] = "unknown";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f != NULL) {
        if (fgets(thp, sizeof thp, f) != NULL)
            thp[strcspn(thp, "\n")] = '\0';
        fclose(f);
    }
    printf("transparent huge pages: %s\n", thp);
    /* [kind: 0 4 KiB, 1 huge][case: 0 rested, 1 again][round] */
    double ms[2][2][MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < 2; i++) {
            int kind = (i + r) % 2; /* who goes first alternates round by round */
            pause_ms(pause);
            ms[kind][0][r] = touch(mib << 20, kind);
            ms[kind][1][r] = touch(mib << 20, kind);
            if (ms[kind][0][r] < 0 || ms[kind][1][r] < 0) {
                fprintf(stderr, "wslq-bench-fault: cannot map %zu MiB\n", mib);
                return 1;
            }
        }
    }
    static const char *kinds[] = {"4 KiB pages", "huge pages"};
    static const char *cases[] = {"rested", "again"};
    for (int c = 0; c < 2; c++)
        for (int kind = 0; kind < 2; kind++)
            printf("%s, %s: median %.1f ms to fault %zu MiB (%d rounds)\n", kinds[kind], cases[c],
                   bench_median(ms[kind][c], (size_t) rounds), mib, rounds);
    return 0;
}
