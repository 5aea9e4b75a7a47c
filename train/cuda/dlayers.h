/* Layers on one GPU: layers.c line for line, with cblas_sgemm replaced by cuBLAS and each
 * for-loop over a kernels.h function replaced by its launcher (launch.h). Same layer_t, same
 * memory layouts, same scratch contract (conv keeps its im2col columns for backward), same
 * "backward ADDS parameter gradients". All pointers are device memory; work is queued on
 * d->stream and the functions return once it is queued (launch errors are reported here,
 * faults inside kernels at the next synchronisation). */
#ifndef WSLQ_TRAIN_CUDA_DLAYERS_H
#define WSLQ_TRAIN_CUDA_DLAYERS_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "common/err.h"
#include "train/layers.h"

typedef struct {
    cublasHandle_t blas; /* bound to stream */
    cudaStream_t stream; /* all compute work */
} dctx_t;

int dlayer_forward(const dctx_t *d,
                   const layer_t *L,
                   int n,
                   const float *params,
                   const float *x,
                   float *y,
                   float *scratch,
                   wq_error_t *err);

int dlayer_backward(const dctx_t *d,
                    const layer_t *L,
                    int n,
                    const float *params,
                    float *grads,
                    const float *x,
                    const float *dy,
                    float *dx,
                    float *scratch,
                    wq_error_t *err);

#endif
