/* The data-parallel training loop: data, model, optimizer, comm, checkpoints, metrics.
 *
 * Each optimizer step consumes one global batch of batch * world * accum samples from the
 * epoch's shuffled order (same order on every rank: it depends only on seed and epoch). Rank r
 * takes micro-batch k's slice at offset (k * world + r) * batch. Gradients are scaled so their
 * all-reduced average is the gradient of the mean loss over the global batch: N ranks with
 * per-rank batch B/N follow one rank with batch B up to float rounding. The step's loss and
 * the SIGTERM flag ride in the same all-reduce as the gradients, so every rank learns of a
 * preemption at the same step. */
#ifndef WSLQ_TRAIN_TRAIN_H
#define WSLQ_TRAIN_TRAIN_H

#include <stdint.h>

#include "comm.h"
#include "model.h"
#include "optim.h"

/* Exit codes of wslq-train (and of train_run). */
enum {
    TRAIN_EXIT_OK = 0,        /* finished */
    TRAIN_EXIT_ERROR = 1,     /* internal or I/O error (e.g. cannot write a checkpoint) */
    TRAIN_EXIT_USAGE = 2,     /* bad flags, bad or missing data, incompatible checkpoint,
                                 device not available */
    TRAIN_EXIT_COMM = 3,      /* comm abort: a peer died, hung past the deadline, or could not be
                                 reached; the gang should be restarted (from a checkpoint) */
    TRAIN_EXIT_PREEMPTED = 4, /* SIGTERM/SIGINT: stopped at a step all ranks agreed on, wrote a
                                 checkpoint (when --checkpoint-dir is set); requeue to resume */
};

typedef struct {
    model_spec_t spec;
    const char *data_dir; /* IDX files */
    int epochs;           /* passes over the training set */
    int64_t max_steps;    /* stop after this many optimizer steps in total (0 = no limit) */
    int batch;            /* per-rank micro-batch */
    int accum;            /* micro-batches per optimizer step */
    optim_kind_t optim;
    float lr, momentum;
    uint64_t seed;
    int threads;              /* OpenBLAS threads */
    int train_limit;          /* use the first N training samples (0 = all) */
    int test_limit;           /* use the first N test samples (0 = all) */
    const char *ckpt_dir;     /* NULL = no checkpoints */
    int64_t ckpt_every;       /* steps between checkpoints (0 = at epoch ends only) */
    int log_every;            /* steps between step metrics lines (0 = none) */
    const char *metrics_path; /* WSLQ_METRICS: JSON lines (rank 0 writes) */
    int quiet;                /* no per-epoch lines on stdout */
    comm_opts_t comm;
} train_cfg_t;

/* Defaults: the reference MLP, Adam 1e-3, batch 64, 5 epochs, seed 1, data in the default dir. */
void train_cfg_defaults(train_cfg_t *cfg);

/* Run to completion; returns one of the TRAIN_EXIT_* codes. Errors are printed to stderr. */
int train_run(const train_cfg_t *cfg);

#endif
