/* CUDA layer implementations; read beside ../layers.c, which they follow step by step. */
#include "train/cuda/dlayers.h"

#include "train/cuda/cuerr.h"
#include "train/cuda/launch.h"

/* Row-major C[M][N] = alpha op(A) op(B) + beta C, called like cblas_sgemm(CblasRowMajor, ...).
 * cuBLAS is column-major, where a row-major matrix reads as its transpose: so compute
 * C^T = op(B)^T op(A)^T by swapping the operands (and M with N). */
static int
gemm(const dctx_t *d,
     int ta,
     int tb,
     int M,
     int N,
     int K,
     float alpha,
     const float *A,
     int lda,
     const float *B,
     int ldb,
     float beta,
     float *C,
     int ldc,
     wq_error_t *err)
{
    cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    return BLAS_OK(err,
                   cublasSgemm(d->blas, ob, oa, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc))
               ? 0
               : -1;
}

static int
linear_forward(const dctx_t *d,
               const layer_t *L,
               int n,
               const float *params,
               const float *x,
               float *y,
               wq_error_t *err)
{
    const float *W = params + L->w_off, *b = params + L->b_off;
    if (gemm(d, 0, 1, n, L->oc, L->c, 1.0f, x, L->c, W, L->c, 0.0f, y, L->oc, err) < 0)
        return -1;
    return CU_OK(err, wqk_bias_add(d->stream, (long) n * L->oc, y, b, 1, L->oc)) ? 0 : -1;
}

static int
linear_backward(const dctx_t *d,
                const layer_t *L,
                int n,
                const float *params,
                float *grads,
                const float *x,
                const float *dy,
                float *dx,
                wq_error_t *err)
{
    const float *W = params + L->w_off;
    /* dW[out][in] += dy^T x */
    if (gemm(d, 1, 0, L->oc, L->c, n, 1.0f, dy, L->oc, x, L->c, 1.0f, grads + L->w_off, L->c, err) <
        0)
        return -1;
    if (!CU_OK(err, wqk_bias_grad_rows(d->stream, L->oc, dy, grads + L->b_off, n)))
        return -1;
    if (dx && gemm(d, 0, 0, n, L->c, L->oc, 1.0f, dy, L->oc, W, L->c, 0.0f, dx, L->c, err) < 0)
        return -1;
    return 0;
}

static int
conv_forward(const dctx_t *d,
             const layer_t *L,
             int n,
             const float *params,
             const float *x,
             float *y,
             float *scratch,
             wq_error_t *err)
{
    long npix = (long) n * L->oh * L->ow, ckk = (long) L->c * L->k * L->k;
    float *col = scratch, *out = scratch + ckk * npix;
    if (!CU_OK(err, wqk_im2col(d->stream, ckk * n * L->oh, x, col, n, L->c, L->h, L->w, L->k,
                               L->pad, L->oh, L->ow)))
        return -1;
    /* out[OC][npix] = W[OC][ckk] x col[ckk][npix] */
    if (gemm(d, 0, 0, L->oc, (int) npix, (int) ckk, 1.0f, params + L->w_off, (int) ckk, col,
             (int) npix, 0.0f, out, (int) npix, err) < 0)
        return -1;
    long hw = (long) L->oh * L->ow, rows = (long) n * L->oc;
    if (!CU_OK(err, wqk_cn_to_nchw(d->stream, rows, out, y, n, L->oc, hw)) ||
        !CU_OK(err, wqk_bias_add(d->stream, rows, y, params + L->b_off, hw, L->oc)))
        return -1;
    return 0;
}

static int
conv_backward(const dctx_t *d,
              const layer_t *L,
              int n,
              const float *params,
              float *grads,
              const float *dy,
              float *dx,
              float *scratch,
              wq_error_t *err)
{
    long npix = (long) n * L->oh * L->ow, ckk = (long) L->c * L->k * L->k;
    long hw = (long) L->oh * L->ow;
    float *col = scratch, *dyt = scratch + ckk * npix;
    /* col still holds the forward pass's im2col of x (see layers.h): not rebuilt. */
    if (!CU_OK(err, wqk_nchw_to_cn(d->stream, (long) L->oc * n, dy, dyt, n, L->oc, hw)))
        return -1;
    /* dW[OC][ckk] += dyt[OC][npix] x col^T */
    if (gemm(d, 0, 1, L->oc, (int) ckk, (int) npix, 1.0f, dyt, (int) npix, col, (int) npix, 1.0f,
             grads + L->w_off, (int) ckk, err) < 0)
        return -1;
    if (!CU_OK(err, wqk_bias_grad_cols(d->stream, L->oc, dyt, grads + L->b_off, npix)))
        return -1;
    if (!dx)
        return 0;
    /* dcol[ckk][npix] = W^T x dyt, written over col (no longer needed). */
    if (gemm(d, 1, 0, (int) ckk, (int) npix, L->oc, 1.0f, params + L->w_off, (int) ckk, dyt,
             (int) npix, 0.0f, col, (int) npix, err) < 0)
        return -1;
    return CU_OK(err, wqk_col2im(d->stream, (long) n * L->c * L->h, col, dx, n, L->c, L->h, L->w,
                                 L->k, L->pad, L->oh, L->ow))
               ? 0
               : -1;
}

int
dlayer_forward(const dctx_t *d,
               const layer_t *L,
               int n,
               const float *params,
               const float *x,
               float *y,
               float *scratch,
               wq_error_t *err)
{
    long total = (long) n * layer_out_size(L);
    switch (L->kind) {
    case LAYER_LINEAR:
        return linear_forward(d, L, n, params, x, y, err);
    case LAYER_CONV:
        return conv_forward(d, L, n, params, x, y, scratch, err);
    case LAYER_RELU:
        return CU_OK(err, wqk_relu_fwd(d->stream, total, x, y)) ? 0 : -1;
    case LAYER_MAXPOOL:
        return CU_OK(err, wqk_maxpool_fwd(d->stream, (long) n * L->oc * L->oh, x, y, L->h, L->w,
                                          L->oh, L->ow, L->k))
                   ? 0
                   : -1;
    }
    return wq_fail(err, WQ_EINVAL, "unknown layer kind %d", (int) L->kind);
}

int
dlayer_backward(const dctx_t *d,
                const layer_t *L,
                int n,
                const float *params,
                float *grads,
                const float *x,
                const float *dy,
                float *dx,
                float *scratch,
                wq_error_t *err)
{
    long total = (long) n * layer_out_size(L);
    switch (L->kind) {
    case LAYER_LINEAR:
        return linear_backward(d, L, n, params, grads, x, dy, dx, err);
    case LAYER_CONV:
        return conv_backward(d, L, n, params, grads, dy, dx, scratch, err);
    case LAYER_RELU:
        if (dx && !CU_OK(err, wqk_relu_bwd(d->stream, total, x, dy, dx)))
            return -1;
        return 0;
    case LAYER_MAXPOOL:
        if (!dx)
            return 0;
        if (!CU_OK(err,
                   cudaMemsetAsync(dx, 0, sizeof(float) * (size_t) n * (size_t) layer_in_size(L),
                                   d->stream)) ||
            !CU_OK(err, wqk_maxpool_bwd(d->stream, (long) n * L->oc * L->oh, x, dy, dx, L->h, L->w,
                                        L->oh, L->ow, L->k)))
            return -1;
        return 0;
    }
    return wq_fail(err, WQ_EINVAL, "unknown layer kind %d", (int) L->kind);
}
