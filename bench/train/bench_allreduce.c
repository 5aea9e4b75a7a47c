/* TCP-ring all-reduce bandwidth on loopback, nccl-tests style.
 *
 *   bench_allreduce [ranks] [min_bytes] [max_bytes]     (defaults 2, 1 KiB, 64 MiB)
 *
 * Forks `ranks` processes that meet through the real bootstrap (MASTER_ADDR 127.0.0.1, a free
 * port) and run comm_allreduce(COMM_SUM) on float buffers, sizes x4 from min to max. Rank 0
 * prints per size: time per call, algbw = bytes / time, busbw = algbw * 2(n-1)/n (the bytes
 * each rank's link carries, as nccl-tests defines it), and checks the result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/train/bench_util.h"
#include "common/net.h"
#include "train/comm.h"

static int
run_rank(int rank, int world, int port, size_t min_b, size_t max_b)
{
    comm_opts_t o;
    memset(&o, 0, sizeof o);
    o.rank = rank;
    o.world = world;
    o.master_port = port;
    o.timeout_ms = 60000;
    snprintf(o.master_addr, sizeof o.master_addr, "127.0.0.1");
    wq_error_t err;
    comm_t *c = comm_init(&o, &err);
    if (!c) {
        fprintf(stderr, "rank %d: %s\n", rank, err.text);
        return 3;
    }
    float *buf = malloc(max_b);
    if (rank == 0)
        printf("# ranks %d, transport %s\n# %12s %10s %12s %10s %10s %6s\n", world, c->ops->name,
               "bytes", "floats", "time_us", "algbw_GB/s", "busbw_GB/s", "check");
    for (size_t b = min_b; b <= max_b; b *= 4) {
        size_t n = b / sizeof(float);
        int iters = (int) ((size_t) 512 * 1024 * 1024 / (b * (size_t) world));
        iters = iters < 5 ? 5 : (iters > 200 ? 200 : iters);
        for (size_t i = 0; i < n; i++)
            buf[i] = (float) (rank + 1);
        if (comm_allreduce(c, buf, n, COMM_SUM, &err) < 0 || comm_barrier(c, &err) < 0)
            goto fail;
        float want = (float) (world * (world + 1) / 2);
        int ok = buf[0] == want && buf[n - 1] == want;
        double t0 = now_us();
        for (int it = 0; it < iters; it++)
            if (comm_allreduce(c, buf, n, COMM_SUM, &err) < 0)
                goto fail;
        if (comm_barrier(c, &err) < 0)
            goto fail;
        double us = (now_us() - t0) / iters;
        double alg = (double) b / (us * 1e-6) / 1e9;
        if (rank == 0)
            printf("  %12zu %10zu %12.1f %10.3f %10.3f %6s\n", b, n, us, alg,
                   alg * 2.0 * (world - 1) / world, ok ? "ok" : "WRONG");
        fflush(stdout);
    }
    free(buf);
    comm_destroy(&c);
    return 0;
fail:
    fprintf(stderr, "rank %d: %s\n", rank, err.text);
    comm_abort(c);
    comm_destroy(&c);
    free(buf);
    return 3;
}

int
main(int argc, char **argv)
{
    int world = argc > 1 ? atoi(argv[1]) : 2;
    size_t min_b = argc > 2 ? strtoull(argv[2], NULL, 10) : 1024;
    size_t max_b = argc > 3 ? strtoull(argv[3], NULL, 10) : 64u << 20;
    if (world < 2 || world > 64 || min_b < 4 || max_b < min_b) {
        fprintf(stderr, "usage: bench_allreduce [ranks] [min_bytes] [max_bytes]\n");
        return 2;
    }
    int port = wq_free_tcp_port(INADDR_LOOPBACK);
    pid_t pids[64];
    for (int r = 1; r < world; r++) {
        pids[r] = fork();
        if (pids[r] == 0)
            _exit(run_rank(r, world, port, min_b, max_b));
    }
    int rc = run_rank(0, world, port, min_b, max_b);
    for (int r = 1; r < world; r++) {
        int st;
        waitpid(pids[r], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st))
            rc = 1;
    }
    return rc;
}
