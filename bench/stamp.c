/* A job for latency benchmarks: appends "<job id> <CLOCK_REALTIME ns>" to the file named by
 * argv[1] as the first thing it does, so submit-to-start is measured to exec + main. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int
main(int argc, char **argv)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (argc != 2)
        return 2;
    FILE *f = fopen(argv[1], "a");
    if (f == NULL)
        return 1;
    const char *id = getenv("WSLQ_JOB_ID");
    fprintf(f, "%s %lld\n", id ? id : "0", (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec);
    return fclose(f) == 0 ? 0 : 1;
}
