/* Layers on the CPU backend: GEMMs through OpenBLAS (cblas_sgemm), everything else through the
 * host/device-neutral functions in kernels.h run in plain loops.
 *
 * A layer reads x [n][in] and writes y [n][out] (per-sample sizes in_size/out_size; conv and
 * pool data are NCHW). Backward ADDS the parameter gradients into grads (so micro-batches
 * accumulate) and, when dx is non-NULL, writes the input gradient dx. */
#ifndef WSLQ_TRAIN_LAYERS_H
#define WSLQ_TRAIN_LAYERS_H

#include <stddef.h>

typedef enum {
    LAYER_LINEAR,  /* y = x W^T + b; W is [out][in] */
    LAYER_CONV,    /* KxK, stride 1, zero padding P; W is [OC][C*K*K] */
    LAYER_RELU,    /* y = max(x, 0) */
    LAYER_MAXPOOL, /* KxK window, stride K */
} layer_kind_t;

typedef struct {
    layer_kind_t kind;
    int c, h, w;         /* input shape per sample (a linear layer has c features, h = w = 1) */
    int oc, oh, ow;      /* output shape per sample */
    int k, pad;          /* window size and padding (conv, pool) */
    size_t w_off, b_off; /* offsets of weights and bias in the model's parameter buffer (floats) */
    size_t n_w, n_b;     /* number of weights and biases (0 for relu/pool) */
} layer_t;

static inline long
layer_in_size(const layer_t *L)
{
    return (long) L->c * L->h * L->w;
}

static inline long
layer_out_size(const layer_t *L)
{
    return (long) L->oc * L->oh * L->ow;
}

/* Floats of scratch a layer needs at batch n (conv: im2col buffer and GEMM output). A layer's
 * scratch belongs to it: layer_backward expects what layer_forward left there for the same x
 * (conv reuses the im2col columns instead of rebuilding them). */
size_t layer_scratch_floats(const layer_t *L, int n);

void layer_forward(
    const layer_t *L, int n, const float *params, const float *x, float *y, float *scratch);

void layer_backward(const layer_t *L,
                    int n,
                    const float *params,
                    float *grads,
                    const float *x,
                    const float *dy,
                    float *dx,
                    float *scratch);

/* Softmax cross-entropy over logits [n][C]: returns the SUM of the n losses and writes
 * dz = (softmax - onehot) * gscale when dz is non-NULL. */
double
layer_xent(const float *logits, const unsigned char *labels, int n, int C, float gscale, float *dz);

#endif
