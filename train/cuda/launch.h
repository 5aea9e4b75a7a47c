/* Launchers for the kernels.h math on a CUDA stream (cuda/kernels.cu). Each runs its kernels.h
 * function once for every index in [0, n) over a grid-stride loop and returns the launch's
 * error (cudaGetLastError; errors inside the kernel surface at the next synchronisation).
 * Pointers are device memory. Arguments follow the kernels.h function of the same name, with
 * n (the index count) first. */
#ifndef WSLQ_TRAIN_CUDA_LAUNCH_H
#define WSLQ_TRAIN_CUDA_LAUNCH_H

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

cudaError_t wqk_relu_fwd(cudaStream_t s, long n, const float *x, float *y);
cudaError_t wqk_relu_bwd(cudaStream_t s, long n, const float *x, const float *dy, float *dx);
cudaError_t wqk_bias_add(cudaStream_t s, long rows, float *y, const float *b, long inner, long nb);
cudaError_t wqk_bias_grad_rows(cudaStream_t s, long m, const float *dy, float *db, long n);
cudaError_t wqk_bias_grad_cols(cudaStream_t s, long c, const float *dyt, float *db, long len);
cudaError_t wqk_xent_row(cudaStream_t s,
                         long n,
                         const float *logits,
                         const unsigned char *labels,
                         int C,
                         float gscale,
                         float *dz,
                         float *loss);
cudaError_t wqk_hit_row(
    cudaStream_t s, long n, const float *logits, const unsigned char *labels, int C, int *hit);
cudaError_t wqk_loss_accum(cudaStream_t s, const float *loss, long n, double *acc);
cudaError_t wqk_grad_extras(cudaStream_t s, double *acc, float gscale, float stop, float *extra);
cudaError_t wqk_maxpool_fwd(
    cudaStream_t s, long rows, const float *x, float *y, int H, int W, int OH, int OW, int k);
cudaError_t wqk_maxpool_bwd(cudaStream_t s,
                            long rows,
                            const float *x,
                            const float *dy,
                            float *dx,
                            int H,
                            int W,
                            int OH,
                            int OW,
                            int k);
cudaError_t wqk_im2col(cudaStream_t s,
                       long rows,
                       const float *x,
                       float *col,
                       int n,
                       int C,
                       int H,
                       int W,
                       int K,
                       int P,
                       int OH,
                       int OW);
cudaError_t wqk_col2im(cudaStream_t s,
                       long rows,
                       const float *col,
                       float *dx,
                       int n,
                       int C,
                       int H,
                       int W,
                       int K,
                       int P,
                       int OH,
                       int OW);
cudaError_t
wqk_nchw_to_cn(cudaStream_t s, long rows, const float *src, float *dst, int n, int C, long hw);
cudaError_t
wqk_cn_to_nchw(cudaStream_t s, long rows, const float *src, float *dst, int n, int C, long hw);
cudaError_t
wqk_sgd_momentum(cudaStream_t s, long n, float *p, const float *g, float *v, float lr, float mu);
cudaError_t wqk_adam(cudaStream_t s,
                     long n,
                     float *p,
                     const float *g,
                     float *m,
                     float *v,
                     float lr,
                     float b1,
                     float b2,
                     float eps,
                     float bc1,
                     float bc2);

#ifdef __cplusplus
}
#endif

#endif
