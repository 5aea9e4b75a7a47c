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

#include "train/comm.h"
#include "train/engine.h"
#include "train/model.h"
#include "train/optim.h"

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

typedef enum {
    TRAIN_DEVICE_CPU = 0,  /* OpenBLAS + plain loops */
    TRAIN_DEVICE_CUDA = 1, /* one GPU per rank (built with WSLQ_HAVE_CUDA) */
} train_device_t;

typedef enum {
    TRAIN_COMM_AUTO = 0, /* nccl for cuda ranks when built in, else tcp */
    TRAIN_COMM_TCP,      /* the TCP ring (cuda ranks stage gradients through host memory) */
    TRAIN_COMM_NCCL,     /* NCCL over GPU memory (cuda ranks only) */
} train_comm_t;

typedef struct {
    model_spec_t spec;
    const char *data_dir; /* IDX files */
    int epochs;           /* passes over the training set */
    int64_t max_steps;    /* stop after this many optimizer steps in total (0 = no limit) */
    int batch;            /* per-rank micro-batch */
    int accum;            /* micro-batches per optimizer step */
    optim_kind_t optim;
    float lr, momentum;
    int lr_cosine; /* 1: lr follows a half cosine from lr to 0 over the run's steps */
    uint64_t seed;
    int threads;              /* OpenBLAS threads */
    int train_limit;          /* use the first N training samples (0 = all) */
    int test_limit;           /* use the first N test samples (0 = all) */
    const char *ckpt_dir;     /* NULL = no checkpoints */
    int64_t ckpt_every;       /* steps between checkpoints (0 = at epoch ends only) */
    int log_every;            /* steps between step metrics lines (0 = none) */
    const char *metrics_path; /* WSLQ_METRICS: JSON lines (rank 0 writes) */
    int quiet;                /* no per-epoch lines on stdout */
    train_device_t device;    /* resolved: main turns --device auto into cpu or cuda */
    int cuda_device;          /* visible device index, or -1: pick from local_rank */
    int local_rank;           /* LOCAL_RANK: this rank's index on its node */
    train_comm_t comm_kind;   /* gradient transport */
    comm_opts_t comm;
} train_cfg_t;

/* Defaults: the reference MLP, Adam 1e-3, batch 64, 5 epochs, seed 1, data in the default dir. */
void train_cfg_defaults(train_cfg_t *cfg);

/* Run to completion; returns one of the TRAIN_EXIT_* codes. Errors are printed to stderr. */
int train_run(const train_cfg_t *cfg);

/* The exit code for a failed step: TRAIN_EXIT_COMM when the communicator failed (a peer died,
 * stalled past the deadline, or a transport wait gave up and aborted), else TRAIN_EXIT_ERROR
 * (e.g. a CUDA error in this rank's own work). */
int train_failure_exit(const comm_t *c);

#endif
