/* The CUDA engine (see ../engine.h): the model's layer list on one GPU. Built only with
 * WSLQ_HAVE_CUDA. */
#ifndef WSLQ_TRAIN_CUDA_ENGINE_CUDA_H
#define WSLQ_TRAIN_CUDA_ENGINE_CUDA_H

#include "train/engine.h"

/* On device dev (already current: cuda_open_device): parameters, gradients, optimizer moments,
 * activations and scratch for m->max_batch samples, a cuBLAS handle and a compute stream.
 * Parameters and moments start as a copy of the host ones (push). Gradients are all-reduced
 * in buckets during the last micro-batch's backward when c reduces device memory (NCCL, or a
 * world of one), else staged through host memory for c's host all-reduce (the TCP ring).
 * Caller owns the result (engine_destroy); m, o and c must outlive it. */
engine_t *engine_cuda_new(model_t *m, optim_t *o, comm_t *c, int dev, wq_error_t *err);

#endif
