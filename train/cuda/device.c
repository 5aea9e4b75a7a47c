/* Which GPU, and which versions. */
#include "train/cuda/device.h"

#include <stdio.h>
#include <stdlib.h>

#include "train/cuda/cuerr.h"
#include "train/engine.h"

int
cuda_device_count(char *why, size_t len)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        snprintf(why, len, "cudaGetDeviceCount: %s (%s)", cudaGetErrorString(e),
                 cudaGetErrorName(e));
        return 0;
    }
    if (n == 0) {
        const char *vis = getenv("CUDA_VISIBLE_DEVICES");
        snprintf(why, len, "cudaGetDeviceCount: no devices (CUDA_VISIBLE_DEVICES=%s)",
                 vis ? vis : "unset");
    }
    return n;
}

int
cuda_open_device(int local_rank, int forced, int *dev, wq_error_t *err)
{
    char why[256];
    int n = cuda_device_count(why, sizeof why);
    if (n == 0)
        return wq_fail(err, WQ_ENOENT, "no usable CUDA device: %s", why);
    if (engine_pick_device(local_rank, n, forced, dev, err) < 0)
        return -1;
    if (!CU_OK(err, cudaSetDevice(*dev)) || !CU_OK(err, cudaFree(NULL)))
        return -1;
    return 0;
}

void
cuda_describe(int dev, char *buf, size_t len)
{
    struct cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, dev) != cudaSuccess) {
        snprintf(buf, len, "cuda:%d (properties unavailable)", dev);
        return;
    }
    size_t free_b = 0, total_b = 0;
    int cur = -1;
    cudaGetDevice(&cur);
    if (cur == dev)
        cudaMemGetInfo(&free_b, &total_b);
    double gib = 1024.0 * 1024.0 * 1024.0;
    if (free_b)
        snprintf(buf, len, "cuda:%d (%s, %.1f GiB, %.1f GiB free, cc %d.%d)", dev, p.name,
                 (double) p.totalGlobalMem / gib, (double) free_b / gib, p.major, p.minor);
    else
        snprintf(buf, len, "cuda:%d (%s, %.1f GiB, cc %d.%d)", dev, p.name,
                 (double) p.totalGlobalMem / gib, p.major, p.minor);
}

void
cuda_version_text(char *buf, size_t len)
{
    int rt = 0, drv = 0, bmaj = 0, bmin = 0, bpat = 0;
    cudaRuntimeGetVersion(&rt);
    cudaDriverGetVersion(&drv); /* 0 when no driver is installed */
    cublasGetProperty(MAJOR_VERSION, &bmaj);
    cublasGetProperty(MINOR_VERSION, &bmin);
    cublasGetProperty(PATCH_LEVEL, &bpat);
    char d[48];
    if (drv)
        snprintf(d, sizeof d, "%d.%d", drv / 1000, drv % 1000 / 10);
    else
        snprintf(d, sizeof d, "none found");
    snprintf(buf, len, "compiled with CUDA %d.%d, runtime %d.%d, driver %s, cuBLAS %d.%d.%d",
             CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10, rt / 1000, rt % 1000 / 10, d, bmaj,
             bmin, bpat);
}
