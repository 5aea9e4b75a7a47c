/* CPU layer implementations. Only GEMMs leave plain C: they go to OpenBLAS. */
#include "train/layers.h"

#include <cblas.h>
#include <string.h>

#include "train/kernels.h"

size_t
layer_scratch_floats(const layer_t *L, int n)
{
    if (L->kind != LAYER_CONV)
        return 0;
    size_t npix = (size_t) n * L->oh * L->ow;
    /* col [C*K*K][npix] plus one [OC][npix] buffer for the channel-major GEMM output. */
    return (size_t) L->c * L->k * L->k * npix + (size_t) L->oc * npix;
}

static void
linear_forward(const layer_t *L, int n, const float *params, const float *x, float *y)
{
    const float *W = params + L->w_off, *b = params + L->b_off;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, L->oc, L->c, 1.0f, x, L->c, W, L->c,
                0.0f, y, L->oc);
    long total = (long) n * L->oc;
    for (long i = 0; i < total; i++)
        k_bias_add(i, y, b, 1, L->oc);
}

static void
linear_backward(const layer_t *L,
                int n,
                const float *params,
                float *grads,
                const float *x,
                const float *dy,
                float *dx)
{
    const float *W = params + L->w_off;
    /* dW[out][in] += dy^T x */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L->oc, L->c, n, 1.0f, dy, L->oc, x, L->c,
                1.0f, grads + L->w_off, L->c);
    for (long j = 0; j < L->oc; j++)
        k_bias_grad_rows(j, dy, grads + L->b_off, n, L->oc);
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, L->c, L->oc, 1.0f, dy, L->oc, W,
                    L->c, 0.0f, dx, L->c);
}

static void
conv_forward(const layer_t *L, int n, const float *params, const float *x, float *y, float *scratch)
{
    long npix = (long) n * L->oh * L->ow, ckk = (long) L->c * L->k * L->k;
    float *col = scratch, *out = scratch + ckk * npix;
    for (long i = 0; i < ckk * n * L->oh; i++)
        k_im2col(i, x, col, n, L->c, L->h, L->w, L->k, L->pad, L->oh, L->ow);
    /* out[OC][npix] = W[OC][ckk] x col[ckk][npix] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L->oc, (int) npix, (int) ckk, 1.0f,
                params + L->w_off, (int) ckk, col, (int) npix, 0.0f, out, (int) npix);
    long hw = (long) L->oh * L->ow, rows = (long) n * L->oc;
    for (long i = 0; i < rows; i++)
        k_cn_to_nchw(i, out, y, n, L->oc, hw);
    for (long i = 0; i < rows; i++)
        k_bias_add(i, y, params + L->b_off, hw, L->oc);
}

static void
conv_backward(const layer_t *L,
              int n,
              const float *params,
              float *grads,
              const float *dy,
              float *dx,
              float *scratch)
{
    long npix = (long) n * L->oh * L->ow, ckk = (long) L->c * L->k * L->k;
    long hw = (long) L->oh * L->ow;
    float *col = scratch, *dyt = scratch + ckk * npix;
    /* col still holds the forward pass's im2col of x (see layers.h): not rebuilt. */
    for (long i = 0; i < (long) L->oc * n; i++)
        k_nchw_to_cn(i, dy, dyt, n, L->oc, hw);
    /* dW[OC][ckk] += dyt[OC][npix] x col^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L->oc, (int) ckk, (int) npix, 1.0f, dyt,
                (int) npix, col, (int) npix, 1.0f, grads + L->w_off, (int) ckk);
    for (long c = 0; c < L->oc; c++)
        k_bias_grad_cols(c, dyt, grads + L->b_off, npix);
    if (!dx)
        return;
    /* dcol[ckk][npix] = W^T x dyt, written over col (no longer needed). */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int) ckk, (int) npix, L->oc, 1.0f,
                params + L->w_off, (int) ckk, dyt, (int) npix, 0.0f, col, (int) npix);
    for (long i = 0; i < (long) n * L->c * L->h; i++)
        k_col2im(i, col, dx, n, L->c, L->h, L->w, L->k, L->pad, L->oh, L->ow);
}

void
layer_forward(
    const layer_t *L, int n, const float *params, const float *x, float *y, float *scratch)
{
    long total = (long) n * layer_out_size(L);
    switch (L->kind) {
    case LAYER_LINEAR:
        linear_forward(L, n, params, x, y);
        break;
    case LAYER_CONV:
        conv_forward(L, n, params, x, y, scratch);
        break;
    case LAYER_RELU:
        for (long i = 0; i < total; i++)
            k_relu_fwd(i, x, y);
        break;
    case LAYER_MAXPOOL:
        for (long i = 0; i < (long) n * L->oc * L->oh; i++)
            k_maxpool_fwd(i, x, y, L->h, L->w, L->oh, L->ow, L->k);
        break;
    }
}

void
layer_backward(const layer_t *L,
               int n,
               const float *params,
               float *grads,
               const float *x,
               const float *dy,
               float *dx,
               float *scratch)
{
    long total = (long) n * layer_out_size(L);
    switch (L->kind) {
    case LAYER_LINEAR:
        linear_backward(L, n, params, grads, x, dy, dx);
        break;
    case LAYER_CONV:
        conv_backward(L, n, params, grads, dy, dx, scratch);
        break;
    case LAYER_RELU:
        if (dx)
            for (long i = 0; i < total; i++)
                k_relu_bwd(i, x, dy, dx);
        break;
    case LAYER_MAXPOOL:
        if (dx) {
            memset(dx, 0, sizeof(float) * (size_t) n * (size_t) layer_in_size(L));
            for (long i = 0; i < (long) n * L->oc * L->oh; i++)
                k_maxpool_bwd(i, x, dy, dx, L->h, L->w, L->oh, L->ow, L->k);
        }
        break;
    }
}

double
layer_xent(const float *logits, const unsigned char *labels, int n, int C, float gscale, float *dz)
{
    double sum = 0.0;
    for (long r = 0; r < n; r++)
        sum += k_softmax_xent_row(r, logits, labels, C, gscale, dz);
    return sum;
}
