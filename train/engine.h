/* engine: where the model's numbers live and run during training; a small table of functions
 * with one implementation per backend.
 *
 *   cpu   engine.c here: the model_* and optim_* functions on host memory (OpenBLAS)
 *   cuda  cuda/engine_cuda.c: the same layer list on one GPU (cuBLAS + the kernels.h math)
 *
 * The training loop (train.c) only speaks this interface. A step is: micro() for each
 * micro-batch, then finish() (all-reduce, optimizer step, zero gradients). The host copies
 * in model->params and opt->m/v are what checkpoints and broadcasts use: pull() refreshes them
 * from the device, push() sends them to it (no-ops on the cpu engine, where they are live). */
#ifndef WSLQ_TRAIN_ENGINE_H
#define WSLQ_TRAIN_ENGINE_H

#include <stddef.h>

#include "common/err.h"
#include "train/comm.h"
#include "train/model.h"
#include "train/optim.h"

typedef struct engine engine_t;

typedef struct {
    const char *name;
    /* Forward + backward of one micro-batch: x [n][inputs] and labels y in host memory;
     * gradients are ADDED, scaled by gscale. last: the step's final micro-batch (a device
     * engine starts the gradient all-reduce during its backward). */
    int (*micro)(engine_t *e,
                 const float *x,
                 const unsigned char *y,
                 int n,
                 float gscale,
                 int last,
                 wq_error_t *err);
    /* Average the gradients over ranks together with the step's loss and e->stop, take the
     * optimizer step, zero the gradients. *loss = global mean loss, *stop = some rank asked. */
    int (*finish)(engine_t *e, float *loss, int *stop, wq_error_t *err);
    /* Forward only: correct predictions and summed loss of n samples. */
    int (*evaluate)(engine_t *e,
                    const float *x,
                    const unsigned char *y,
                    int n,
                    int *hits,
                    double *loss_sum,
                    wq_error_t *err);
    int (*pull)(engine_t *e, wq_error_t *err); /* device state -> model->params, opt->m, opt->v */
    int (*push)(engine_t *e, wq_error_t *err); /* the reverse */
    void (*destroy)(engine_t *e);              /* frees impl */
} engine_ops_t;

struct engine {
    const engine_ops_t *ops;
    model_t *model;  /* layer list and host parameters (live on cpu); not owned */
    optim_t *opt;    /* hyper-parameters and step count (moments live on cpu); not owned */
    comm_t *comm;    /* gradient all-reduce; not owned */
    int stop;        /* this rank's stop flag for the step in progress, set by the loop */
    float gscale;    /* the step's gradient scale, 1 / (batch * accum) */
    double loss;     /* cpu: summed losses of the step's micro-batches */
    char device[96]; /* for logs: "cpu" or "cuda:0 (NVIDIA GeForce RTX 4090)" */
    void *impl;      /* the backend's state */
};

/* The CPU engine over m and o. Caller owns the result (engine_destroy). */
engine_t *engine_cpu_new(model_t *m, optim_t *o, comm_t *c);

void engine_destroy(engine_t **ep);

/* ---- gradient buckets (used by device engines; pure arithmetic, tested on CPU) ---------- *
 * The gradient buffer [0, n_params + extra) is cut at layer boundaries into buckets in the
 * order backward produces them: the last layer's first (it sits at the END of the buffer,
 * together with the extra floats). A bucket closes once it holds cap bytes (first_cap for the
 * first, so communication starts early, as DDP does with its 1 MB first bucket). Every rank
 * computes the same plan from the same model, so buckets are launched in the same order. */
#define ENGINE_MAX_BUCKETS MODEL_MAX_LAYERS

typedef struct {
    size_t off, n; /* floats of the gradient buffer */
    int layer;     /* ready once backward of this layer index has run */
} engine_bucket_t;

/* Fills b[0..return) (at most ENGINE_MAX_BUCKETS). */
int engine_plan_buckets(
    const model_t *m, size_t extra, size_t first_cap, size_t cap, engine_bucket_t *b);

/* ---- device choice (pure; tested on CPU) ---------------------------------------------- *
 * CUDA_VISIBLE_DEVICES has already narrowed what the runtime shows to this rank's devices
 * (wslq gives each rank its own, so usually exactly one: use it). With several visible,
 * LOCAL_RANK picks one, as under torchrun. forced >= 0 (--cuda-device) overrides. */
int engine_pick_device(int local_rank, int visible, int forced, int *dev, wq_error_t *err);

#endif
