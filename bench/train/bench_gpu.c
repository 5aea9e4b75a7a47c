/* The GPU path's speed, on whatever GPUs this machine has.
 *
 *   bench_gpu [ranks] [min_bytes] [max_bytes]   (defaults: all visible GPUs, 1 KiB, 256 MiB)
 *
 * 1. Training step on GPU 0: forward + backward + Adam through the CUDA engine (what
 *    wslq-train --device cuda does per step minus data gathering), MLP and CNN, batch 64 and
 *    256: ms/step and samples/s.
 * 2. NCCL all-reduce over `ranks` GPUs (one process each, through the trainer's own NCCL
 *    transport and bootstrap): per size, time per call (iterations queued back to back, then
 *    one wait, as nccl-tests does), algbw = bytes / time, busbw = algbw * 2(n-1)/n.
 *
 * No usable GPU: one line "no GPU: <reason>" and exit 77. CUDA is only touched in child
 * processes (a CUDA context does not survive fork), so the parent can fork the ranks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/train/bench_util.h"
#include "common/net.h"
#include "train/comm.h"
#include "train/cuda/cuerr.h"
#include "train/cuda/device.h"
#include "train/cuda/engine_cuda.h"
#include "train/engine.h"
#include "train/model.h"
#include "train/optim.h"
#include "train/rng.h"
#ifdef WSLQ_HAVE_NCCL
#include "train/cuda/comm_nccl.h"
#endif

/* Run fn(arg) in a child; returns its exit status (or 1 if it died). */
static int
in_child(int (*fn)(long), long arg)
{
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        int rc = fn(arg);
        fflush(stdout);
        _exit(rc);
    }
    int st;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

static int
probe(long unused)
{
    (void) unused;
    char why[256];
    int n = cuda_device_count(why, sizeof why);
    if (n == 0) {
        printf("no GPU: %s\n", why);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        char d[160];
        cuda_describe(i, d, sizeof d);
        printf("# %s\n", d);
    }
    return n > 100 ? 100 : n;
}

static int
step_bench(long unused)
{
    (void) unused;
    wq_error_t err;
    int dev;
    if (cuda_open_device(0, 0, &dev, &err) < 0) {
        fprintf(stderr, "%s\n", err.text);
        return 1;
    }
    comm_opts_t o;
    memset(&o, 0, sizeof o);
    o.world = 1;
    o.timeout_ms = 60000;
    comm_t *c = comm_init(&o, &err);
    printf("# training step on GPU 0, Adam, one rank\n# %-26s %6s %10s %12s\n", "model", "batch",
           "ms/step", "samples/s");
    for (int kind = 0; kind < 2; kind++)
        for (int bi = 0; bi < 2; bi++) {
            int batch = bi ? 256 : 64, steps = kind ? 100 : 400;
            model_spec_t spec = {.kind = MODEL_MLP,
                                 .in_c = 1,
                                 .in_h = 28,
                                 .in_w = 28,
                                 .classes = 10,
                                 .n_hidden = 2,
                                 .hidden = {256, 128},
                                 .kernel = 3};
            if (kind) {
                spec.kind = MODEL_CNN;
                spec.n_conv = 2;
                spec.conv[0] = 32;
                spec.conv[1] = 64;
                spec.n_hidden = 1;
                spec.hidden[0] = 128;
            }
            model_t *m = model_new(&spec, batch, &err);
            model_init_params(m, 1);
            optim_t *opt = optim_new(OPTIM_ADAM, m->n_params, 1e-3f, 0.9f);
            engine_t *e = engine_cuda_new(m, opt, c, dev, &err);
            if (!e) {
                fprintf(stderr, "%s\n", err.text);
                return 1;
            }
            float *x = malloc(sizeof(float) * 784 * (size_t) batch);
            unsigned char *y = malloc((size_t) batch);
            rng_t r = {42};
            for (int i = 0; i < 784 * batch; i++)
                x[i] = rng_uniform(&r) * 2 - 1;
            for (int i = 0; i < batch; i++)
                y[i] = (unsigned char) rng_below(&r, 10);
            int warm = steps / 10 + 2;
            double t0 = 0;
            for (int s = 0; s < warm + steps; s++) {
                if (s == warm)
                    t0 = now_us();
                float loss;
                int stop;
                if (e->ops->micro(e, x, y, batch, 1.0f / (float) batch, 1, &err) < 0 ||
                    e->ops->finish(e, &loss, &stop, &err) < 0) {
                    fprintf(stderr, "%s\n", err.text);
                    return 1;
                }
            }
            double ms = (now_us() - t0) / 1000.0 / steps;
            printf("  %-26s %6d %10.3f %12.0f\n", m->shape, batch, ms, batch / (ms / 1000.0));
            free(x);
            free(y);
            engine_destroy(&e);
            optim_destroy(&opt);
            model_destroy(&m);
        }
    comm_destroy(&c);
    return 0;
}

#ifdef WSLQ_HAVE_NCCL
static int g_world, g_port;
static size_t g_min, g_max;

static int
nccl_rank(long rank)
{
    wq_error_t err;
    int dev;
    if (cuda_open_device((int) rank, -1, &dev, &err) < 0) {
        fprintf(stderr, "rank %ld: %s\n", rank, err.text);
        return 1;
    }
    comm_opts_t o;
    memset(&o, 0, sizeof o);
    o.rank = (int) rank;
    o.world = g_world;
    o.master_port = g_port;
    o.timeout_ms = 60000;
    snprintf(o.master_addr, sizeof o.master_addr, "127.0.0.1");
    comm_t *c = comm_nccl_new(&o, comm_nccl_id_over_comm, &err);
    if (!c) {
        fprintf(stderr, "rank %ld: %s\n", rank, err.text);
        return 3;
    }
    float *buf = NULL;
    if (!CU_OK(&err, cudaMalloc((void **) &buf, g_max)))
        goto fail;
    if (rank == 0)
        printf("# NCCL all-reduce (sum, float32), %d ranks, one GPU each\n"
               "# %12s %10s %12s %10s %10s\n",
               g_world, "bytes", "floats", "time_us", "algbw_GB/s", "busbw_GB/s");
    for (size_t b = g_min; b <= g_max; b *= 4) {
        size_t n = b / sizeof(float);
        int iters = (int) ((size_t) 4 * 1024 * 1024 * 1024 / (b * (size_t) g_world));
        iters = iters < 10 ? 10 : (iters > 500 ? 500 : iters);
        for (int w = 0; w < 5; w++)
            if (comm_dev_allreduce(c, buf, n, COMM_SUM, NULL, &err) < 0)
                goto fail;
        if (comm_dev_wait(c, &err) < 0 || comm_barrier(c, &err) < 0)
            goto fail;
        double t0 = now_us();
        for (int it = 0; it < iters; it++)
            if (comm_dev_allreduce(c, buf, n, COMM_SUM, NULL, &err) < 0)
                goto fail;
        if (comm_dev_wait(c, &err) < 0)
            goto fail;
        double us = (now_us() - t0) / iters;
        double alg = (double) b / (us * 1e-6) / 1e9;
        if (rank == 0)
            printf("  %12zu %10zu %12.1f %10.3f %10.3f\n", b, n, us, alg,
                   alg * 2.0 * (g_world - 1) / g_world);
        fflush(stdout);
    }
    cudaFree(buf);
    comm_destroy(&c);
    return 0;
fail:
    fprintf(stderr, "rank %ld: %s\n", rank, err.text);
    comm_abort(c);
    comm_destroy(&c);
    return 3;
}
#endif

int
main(int argc, char **argv)
{
    int world = argc > 1 ? atoi(argv[1]) : 0;
    size_t min_b = argc > 2 ? strtoull(argv[2], NULL, 10) : 1024;
    size_t max_b = argc > 3 ? strtoull(argv[3], NULL, 10) : 256u << 20;
    if (world < 0 || world > 64 || min_b < 4 || max_b < min_b) {
        fprintf(stderr, "usage: bench_gpu [ranks] [min_bytes] [max_bytes]\n");
        return 2;
    }
    int n = in_child(probe, 0);
    if (n == 0)
        return 77;
    if (in_child(step_bench, 0) != 0)
        return 1;
    world = world ? world : n;
#ifdef WSLQ_HAVE_NCCL
    if (world < 2 || world > n) {
        printf("# NCCL all-reduce: needs 2 to %d ranks (one per GPU), asked for %d\n", n, world);
        return 0;
    }
    g_world = world;
    g_port = wq_free_tcp_port(INADDR_LOOPBACK);
    g_min = min_b;
    g_max = max_b;
    pid_t pids[64];
    for (int r = 0; r < world; r++) {
        fflush(stdout);
        pids[r] = fork();
        if (pids[r] == 0) {
            int rc = nccl_rank(r);
            fflush(stdout);
            _exit(rc);
        }
    }
    int rc = 0;
    for (int r = 0; r < world; r++) {
        int st;
        waitpid(pids[r], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st))
            rc = 1;
    }
    return rc;
#else
    printf("# NCCL all-reduce: NCCL support not built\n");
    return 0;
#endif
}
