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
    y[i] = x[i] > 0.0f ? x[i] : 0.0f; /* maxss; branch-free once vectorised (-O3) */
}

/* dx[i] = dy[i] where the input was positive (the subgradient at 0 is 0, as in PyTorch). */
WQ_KERNEL void
k_relu_bwd(long i, const float *x, const float *dy, float *dx)
{
    float d = dy[i]; /* unconditional load: lets the compiler vectorise the select */
    dx[i] = x[i] > 0.0f ? d : 0.0f;
}

/* Row i of y (inner elements, feature i % nb) += that feature's bias: inner = 1, nb = out for
 * a linear layer; inner = H*W, nb = channels for conv. */
WQ_KERNEL void
k_bias_add(long i, float *y, const float *b, long inner, long nb)
{
    float bi = b[i % nb];
    float *p = y + i * inner;
    for (long k = 0; k < inner; k++)
        p[k] += bi;
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

/* Per-row results for a device backend, which cannot return one value per index: the same
 * functions as above, storing what they return. */
WQ_KERNEL void
k_xent_row(long r,
           const float *logits,
           const unsigned char *labels,
           int C,
           float gscale,
           float *dz,
           float *loss)
{
    loss[r] = k_softmax_xent_row(r, logits, labels, C, gscale, dz);
}

WQ_KERNEL void
k_hit_row(long r, const float *logits, const unsigned char *labels, int C, int *hit)
{
    hit[r] = k_argmax_hit(r, logits, labels, C);
}

/* Index 0 only: acc[0] += the n row losses, summed in row order in double: the order and
 * precision layer_xent and the training loop use on the CPU. */
WQ_KERNEL void
k_loss_accum(long i, const float *loss, long n, double *acc)
{
    (void) i;
    double s = 0.0;
    for (long r = 0; r < n; r++)
        s += loss[r];
    acc[0] += s;
}

/* Index 0 only: the two floats that ride behind the gradients in the step's all-reduce (see
 * train.c): the step's loss as the CPU loop computes it, (float) (sum * gscale), and this rank's
 * stop flag. Clears the accumulator for the next step. */
WQ_KERNEL void
k_grad_extras(long i, double *acc, float gscale, float stop, float *extra)
{
    (void) i;
    extra[0] = (float) (acc[0] * gscale);
    extra[1] = stop;
    acc[0] = 0.0;
}

/* ---- max pooling (k x k window, stride k, no padding; a ragged edge is dropped) --------- *
 * One index per output ROW (sample, channel, oh), looping over ow: the divisions that split
 * an index into coordinates are paid once per row, not per element (on a CPU they cost more
 * than the pooling itself); a GPU still gets n*C*OH independent indices. */

/* Output row i of y [n][C][OH][OW] from x [n][C][H][W]. First maximum wins ties. */
WQ_KERNEL void
k_maxpool_fwd(long i, const float *x, float *y, int H, int W, int OH, int OW, int k)
{
    long oh = i % OH, nc = i / OH;
    const float *row = x + (nc * H + oh * k) * W;
    float *out = y + i * OW;
    for (int ow = 0; ow < OW; ow++) {
        const float *p = row + ow * k;
        float m = p[0];
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++)
                m = p[a * W + b] > m ? p[a * W + b] : m;
        out[ow] = m;
    }
}

/* Route dy to the inputs that won output row i (same first-max rule as the forward pass).
 * Windows do not overlap, so each input element is written by at most one index: no atomics.
 * dx must be zeroed first (inputs in a dropped ragged edge get no gradient). */
WQ_KERNEL void
k_maxpool_bwd(
    long i, const float *x, const float *dy, float *dx, int H, int W, int OH, int OW, int k)
{
    long oh = i % OH, nc = i / OH;
    long rowbase = (nc * H + oh * k) * W;
    for (int ow = 0; ow < OW; ow++) {
        long base = rowbase + ow * k, best = base;
        float bv = x[base];
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++) {
                long j = base + a * W + b;
                float v = x[j];
                int gt = v > bv; /* selects, not branches: which input wins is random */
                best = gt ? j : best;
                bv = gt ? v : bv;
            }
        dx[best] = dy[i * OW + ow];
    }
}

/* ---- convolution lowering (stride 1, square kernel K, zero padding P; OH = H + 2P - K + 1).
 * col is [C*K*K][n*OH*OW]: one column per output pixel of every sample, so the whole batch is
 * one GEMM: out[OC][n*OH*OW] = W[OC][C*K*K] x col. Indices are rows of OW (or W) elements. */

/* Index i = ((c*K + kh)*K + kw) * (n*OH) + s*OH + oh fills one row of OW entries of col. */
WQ_KERNEL void
k_im2col(
    long i, const float *x, float *col, int n, int C, int H, int W, int K, int P, int OH, int OW)
{
    long rows = (long) n * OH;
    long r = i / rows, so = i % rows; /* r = (c, kh, kw); so = (s, oh) */
    int kw = (int) (r % K), kh = (int) ((r / K) % K), c = (int) (r / ((long) K * K));
    int oh = (int) (so % OH);
    long s = so / OH;
    float *dst = col + r * rows * OW + so * OW;
    int h = oh + kh - P;
    if (h < 0 || h >= H) {
        for (int ow = 0; ow < OW; ow++)
            dst[ow] = 0.0f;
        return;
    }
    const float *src = x + ((s * C + c) * H + h) * W;
    for (int ow = 0; ow < OW; ow++) {
        int w = ow + kw - P;
        dst[ow] = (w >= 0 && w < W) ? src[w] : 0.0f;
    }
}

/* Index i = (s*C + c)*H + h writes one input row of dx [n][C][H][W] by gathering every col
 * entry that read it (the adjoint of k_im2col), so no two indices write the same place. */
WQ_KERNEL void
k_col2im(
    long i, const float *col, float *dx, int n, int C, int H, int W, int K, int P, int OH, int OW)
{
    long rows = (long) n * OH;
    int h = (int) (i % H), c = (int) ((i / H) % C);
    long s = i / ((long) H * C);
    float *dst = dx + i * W;
    for (int w = 0; w < W; w++)
        dst[w] = 0.0f;
    for (int kh = 0; kh < K; kh++) {
        int oh = h + P - kh;
        if (oh < 0 || oh >= OH)
            continue;
        for (int kw = 0; kw < K; kw++) {
            long r = ((long) c * K + kh) * K + kw;
            const float *src = col + r * rows * OW + (s * OH + oh) * OW;
            /* w reads src[w + P - kw] where that output column exists. */
            int lo = kw - P > 0 ? kw - P : 0;
            int hi = OW - 1 + kw - P < W - 1 ? OW - 1 + kw - P : W - 1;
            for (int w = lo; w <= hi; w++)
                dst[w] += src[w + P - kw];
        }
    }
}

/* [n][C][hw] <-> [C][n][hw]: NCHW vs. the conv GEMM's channel-major layout. Index = one
 * destination row of hw elements. */
WQ_KERNEL void
k_nchw_to_cn(long i, const float *src, float *dst, int n, int C, long hw)
{
    long s = i % n, c = i / n;
    const float *from = src + (s * C + c) * hw;
    float *to = dst + i * hw;
    for (long p = 0; p < hw; p++)
        to[p] = from[p];
}

WQ_KERNEL void
k_cn_to_nchw(long i, const float *src, float *dst, int n, int C, long hw)
{
    long c = i % C, s = i / C;
    const float *from = src + (c * n + s) * hw;
    float *to = dst + i * hw;
    for (long p = 0; p < hw; p++)
        to[p] = from[p];
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
