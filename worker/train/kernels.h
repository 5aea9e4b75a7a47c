/* Elementwise, loss, pooling, lowering and optimizer math, written once for host and device.
 *
 * Every function here computes ONE output element (or one row) given its index, touches no
 * global state, allocates nothing and calls only expf/logf/sqrtf. The CPU backend (layers.c,
 * optim.c) calls them in plain for-loops; a CUDA backend wraps each in a one-line kernel
 * (`i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) k_relu_fwd(i, x, y);`). So the CPU
 * tests (gradient checks, 1-vs-N-rank equivalence, accuracy) check the very arithmetic the GPU
 * runs. Under nvcc WQ_HD expands to __host__ __device__; elsewhere to nothing.
 *
 * Layouts: activations are NCHW, row-major, float32. A "row" is one sample. */
#ifndef WSLQ_TRAIN_KERNELS_H
#define WSLQ_TRAIN_KERNELS_H

#include <math.h>

#if defined(__CUDACC__)
#define WQ_HD __host__ __device__
#else
#define WQ_HD
#endif
#define WQ_KERNEL static inline WQ_HD

/* ---- elementwise ---------------------------------------------------------------------- */

/* y[i] = max(x[i], 0) */
WQ_KERNEL void
k_relu_fwd(long i, const float *x, float *y)
{
    y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* dx[i] = dy[i] where the input was positive (the subgradient at 0 is 0, as in PyTorch). */
WQ_KERNEL void
k_relu_bwd(long i, const float *x, const float *dy, float *dx)
{
    dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

/* y[i] += b[(i / inner) % nb]: bias per feature; inner = 1 for a linear layer, H*W for conv. */
WQ_KERNEL void
k_bias_add(long i, float *y, const float *b, long inner, long nb)
{
    y[i] += b[(i / inner) % nb];
}

/* x[i] *= s */
WQ_KERNEL void
k_scale(long i, float *x, float s)
{
    x[i] *= s;
}

/* Input normalisation: pixel byte -> (v/255 - mean) / std. */
WQ_KERNEL void
k_normalize_u8(long i, const unsigned char *src, float *dst, float mean, float inv_std)
{
    dst[i] = ((float) src[i] * (1.0f / 255.0f) - mean) * inv_std;
}

/* ---- reductions over one output index ----------------------------------------------- */

/* db[j] (+)= sum over the n rows of dy[r*m + j]: bias gradient of a linear layer, one output
 * feature per index. Accumulates (gradients add up over micro-batches). */
WQ_KERNEL void
k_bias_grad_rows(long j, const float *dy, float *db, long n, long m)
{
    float s = 0.0f;
    for (long r = 0; r < n; r++)
        s += dy[r * m + j];
    db[j] += s;
}

/* db[c] (+)= sum of row c of a [C][len] matrix: conv bias gradient over channel-major data. */
WQ_KERNEL void
k_bias_grad_cols(long c, const float *dyt, float *db, long len)
{
    const float *p = dyt + c * len;
    float s = 0.0f;
    for (long k = 0; k < len; k++)
        s += p[k];
    db[c] += s;
}

/* ---- softmax cross-entropy ------------------------------------------------------------ */

/* Row r of logits [n][C] with label y[r]: returns -log softmax(z)[y] and, if dz is non-NULL,
 * writes dz = (softmax(z) - onehot(y)) * gscale. gscale is 1/(rows in the global batch share)
 * so gradients come out as the gradient of the MEAN loss. Uses the max-shift for stability. */
WQ_KERNEL float
k_softmax_xent_row(
    long r, const float *logits, const unsigned char *labels, int C, float gscale, float *dz)
{
    const float *z = logits + r * C;
    float m = z[0];
    for (int j = 1; j < C; j++)
        m = z[j] > m ? z[j] : m;
    float sum = 0.0f;
    for (int j = 0; j < C; j++)
        sum += expf(z[j] - m);
    float lse = m + logf(sum);
    int y = labels[r];
    if (dz) {
        for (int j = 0; j < C; j++) {
            float p = expf(z[j] - lse);
            dz[r * C + j] = (p - (j == y ? 1.0f : 0.0f)) * gscale;
        }
    }
    return lse - z[y];
}

/* 1 if row r's largest logit (first one on ties) is its label, else 0. */
WQ_KERNEL int
k_argmax_hit(long r, const float *logits, const unsigned char *labels, int C)
{
    const float *z = logits + r * C;
    int best = 0;
    for (int j = 1; j < C; j++)
        if (z[j] > z[best])
            best = j;
    return best == labels[r];
}

/* ---- max pooling (k x k window, stride k, no padding; a ragged edge is dropped) --------- */

/* One output element i of y [n][C][OH][OW] from x [n][C][H][W]. First maximum wins ties. */
WQ_KERNEL void
k_maxpool_fwd(long i, const float *x, float *y, int H, int W, int OH, int OW, int k)
{
    long ow = i % OW, oh = (i / OW) % OH, nc = i / ((long) OW * OH);
    const float *p = x + nc * H * W + (oh * k) * W + ow * k;
    float m = p[0];
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++)
            m = p[a * W + b] > m ? p[a * W + b] : m;
    y[i] = m;
}

/* Route dy[i] to the input that won output i (same first-max rule as the forward pass). Windows
 * do not overlap, so each input element is written by at most one index: no atomics. dx must
 * be zeroed first (inputs in a dropped ragged edge get no gradient). */
WQ_KERNEL void
k_maxpool_bwd(
    long i, const float *x, const float *dy, float *dx, int H, int W, int OH, int OW, int k)
{
    long ow = i % OW, oh = (i / OW) % OH, nc = i / ((long) OW * OH);
    long base = nc * H * W + (oh * k) * W + ow * k;
    long best = base;
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++)
            if (x[base + a * W + b] > x[best])
                best = base + a * W + b;
    dx[best] = dy[i];
}

/* ---- convolution lowering (stride 1, square kernel K, zero padding P, same-size output when
 * P = (K-1)/2). col is [C*K*K][n*OH*OW]: one column per output pixel of every sample, so the
 * whole batch is one GEMM: out[OC][n*OH*OW] = W[OC][C*K*K] x col. ---------------------------- */

/* One element i of col. */
WQ_KERNEL void
k_im2col(
    long i, const float *x, float *col, int n, int C, int H, int W, int K, int P, int OH, int OW)
{
    long npix = (long) n * OH * OW;
    long row = i / npix, colidx = i % npix;
    int kw = (int) (row % K), kh = (int) ((row / K) % K), c = (int) (row / ((long) K * K));
    int ow = (int) (colidx % OW), oh = (int) ((colidx / OW) % OH);
    long s = colidx / ((long) OW * OH);
    int h = oh + kh - P, w = ow + kw - P;
    col[i] = (h >= 0 && h < H && w >= 0 && w < W) ? x[((s * C + c) * H + h) * W + w] : 0.0f;
}

/* One input element i of dx [n][C][H][W]: gathers every col entry that read it (the adjoint of
 * k_im2col), so no two indices write the same place. */
WQ_KERNEL void
k_col2im(
    long i, const float *col, float *dx, int n, int C, int H, int W, int K, int P, int OH, int OW)
{
    long npix = (long) n * OH * OW;
    int w = (int) (i % W), h = (int) ((i / W) % H), c = (int) ((i / ((long) W * H)) % C);
    long s = i / ((long) W * H * C);
    float acc = 0.0f;
    for (int kh = 0; kh < K; kh++) {
        int oh = h + P - kh;
        if (oh < 0 || oh >= OH)
            continue;
        for (int kw = 0; kw < K; kw++) {
            int ow = w + P - kw;
            if (ow < 0 || ow >= OW)
                continue;
            long row = ((long) c * K + kh) * K + kw;
            acc += col[row * npix + (s * OH + oh) * OW + ow];
        }
    }
    dx[i] = acc;
}

/* [n][C][HW] <-> [C][n*HW]: the GEMM output layout vs. NCHW. Index over the destination. */
WQ_KERNEL void
k_nchw_to_cn(long i, const float *src, float *dst, int n, int C, long hw)
{
    long p = i % hw, s = (i / hw) % n, c = i / (hw * n);
    dst[i] = src[(s * C + c) * hw + p];
}

WQ_KERNEL void
k_cn_to_nchw(long i, const float *src, float *dst, int n, int C, long hw)
{
    long p = i % hw, c = (i / hw) % C, s = i / (hw * C);
    dst[i] = src[(c * n + s) * hw + p];
}

/* ---- optimizers (one parameter per index; PyTorch's update rules) ---------------------- */

/* SGD with momentum: v = mu*v + g; p -= lr*v. */
WQ_KERNEL void
k_sgd_momentum(long i, float *p, const float *g, float *v, float lr, float mu)
{
    v[i] = mu * v[i] + g[i];
    p[i] -= lr * v[i];
}

/* Adam. bc1 = 1 - beta1^t, bc2 = 1 - beta2^t are computed once per step by the caller. */
WQ_KERNEL void
k_adam(long i,
       float *p,
       const float *g,
       float *m,
       float *v,
       float lr,
       float b1,
       float b2,
       float eps,
       float bc1,
       float bc2)
{
    float gi = g[i];
    m[i] = b1 * m[i] + (1.0f - b1) * gi;
    v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
    float mhat = m[i] / bc1, vhat = v[i] / bc2;
    p[i] -= lr * mhat / (sqrtf(vhat) + eps);
}

#endif
