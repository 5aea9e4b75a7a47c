/* A model: an ordered list of layers over one contiguous parameter buffer and one contiguous
 * gradient buffer (so a step needs one all-reduce), plus the CPU workspace for a batch size.
 *
 *   mlp: [linear -> relu] per hidden width, then linear -> 10 classes
 *   cnn: [conv KxK pad (K-1)/2 -> relu -> maxpool 2] per conv width,
 *        then [linear -> relu] per fc width, then linear -> 10 classes
 *
 * The shape string ("mlp:784-256-128-10", "cnn:1x28x28-c32-c64-f128-10") names the model in
 * logs and checkpoints; two models with equal shape strings have identical parameter layouts. */
#ifndef WSLQ_TRAIN_MODEL_H
#define WSLQ_TRAIN_MODEL_H

#include <stdint.h>

#include "common/err.h"
#include "train/layers.h"

#define MODEL_MAX_LAYERS 64
#define MODEL_MAX_WIDTHS 8
#define MODEL_SHAPE_LEN  128

typedef enum {
    MODEL_MLP = 1,
    MODEL_CNN = 2,
} model_kind_t;

typedef struct {
    model_kind_t kind;
    int in_c, in_h, in_w;         /* input shape (1x28x28 for Fashion-MNIST) */
    int classes;                  /* output logits */
    int n_hidden;                 /* mlp hidden widths, or cnn fc widths */
    int hidden[MODEL_MAX_WIDTHS]; /* features */
    int n_conv;                   /* cnn conv layers */
    int conv[MODEL_MAX_WIDTHS];   /* output channels per conv layer */
    int kernel;                   /* conv kernel size (odd) */
} model_spec_t;

typedef struct {
    model_spec_t spec;
    char shape[MODEL_SHAPE_LEN]; /* canonical description, see above */
    int n_layers;
    layer_t layers[MODEL_MAX_LAYERS];
    size_t n_params; /* floats in params and grads */
    float *params;   /* all weights and biases, layer after layer */
    float *grads;    /* same layout; n_params + MODEL_GRAD_EXTRA floats (see train.c) */

    /* CPU workspace, sized for max_batch samples. */
    int max_batch;
    float **act;     /* act[0] = input, act[i + 1] = output of layer i */
    float **dact;    /* gradients w.r.t. act[i] */
    float **scratch; /* per layer, layer_scratch_floats() each (NULL if none) */
} model_t;

/* Extra floats after the gradients that ride along in the same all-reduce (loss, stop flag). */
#define MODEL_GRAD_EXTRA 4

/* Parse a comma list of positive widths ("256,128") into out[], at most MODEL_MAX_WIDTHS. */
int model_parse_widths(const char *s, const char *what, int *out, int *n, wq_error_t *err);

/* Build the layer list and allocate buffers for batches up to max_batch. Parameters are zero;
 * call model_init_params. Caller owns the result (model_destroy). */
model_t *model_new(const model_spec_t *spec, int max_batch, wq_error_t *err);

void model_destroy(model_t **mp);

/* He-uniform weights (bound sqrt(6 / fan_in)), zero biases, drawn from 'seed'. */
void model_init_params(model_t *m, uint64_t seed);

/* Forward x [n][in] through every layer; returns the logits [n][classes] (inside the model). */
const float *model_forward(model_t *m, const float *x, int n);

/* After model_forward: softmax cross-entropy against labels, backward through every layer,
 * ADDING parameter gradients into m->grads scaled by gscale (1 / samples in the global batch
 * share). Returns the sum of the n per-sample losses. */
double model_backward(model_t *m, const unsigned char *labels, int n, float gscale);

/* Count of correct predictions and summed loss for n samples (forward only). */
int
model_evaluate(model_t *m, const float *x, const unsigned char *labels, int n, double *loss_sum);

#endif
