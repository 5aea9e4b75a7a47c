/* Checkpoints: one file per saved step, "ckpt-<step, 12 digits>.wqck" in the checkpoint dir.
 *
 * Layout (little-endian; header_size bytes of header, then the payload):
 *   0   char[8]  magic "WQTRAIN\0"
 *   8   u32      format version (CKPT_VERSION)
 *   12  u32      header size in bytes (256 for version 1; readers skip what they do not know)
 *   16  u32      flags (0)
 *   20  u32      optimizer (1 sgd, 2 adam)
 *   24  u64      number of parameters n
 *   32  u64      optimizer steps done (global step)
 *   40  u32      epoch in progress (0-based)
 *   44  u32      steps done within that epoch
 *   48  u64      optimizer step count t (Adam bias correction)
 *   56  f32 x5   lr, momentum, beta1, beta2, eps
 *   76  u32 x3   world size, per-rank batch, accumulation steps at save time (informational)
 *   88  u64      seed
 *   96  u64      data-order RNG state at the start of the epoch
 *   104 u32      CRC-32 of the payload
 *   108 u32      CRC-32 of the header with this field zeroed
 *   112 char[128] model shape string (model.h), NUL-padded
 *   240 reserved, zero
 *   payload: params[n], optimizer m[n] (SGD velocity / Adam 1st moment), v[n] (Adam 2nd
 *            moment; zero for SGD), float32 each.
 *
 * Writing: temp file in the same dir, fsync, rename over the final name, fsync the dir; so a
 * crash leaves either the old set or the new file complete. The newest CKPT_KEEP are kept.
 * Reading: newest file first; a damaged one (bad magic, CRC, size) is skipped with a warning. */
#ifndef WSLQ_TRAIN_CKPT_H
#define WSLQ_TRAIN_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define CKPT_VERSION     1u
#define CKPT_HEADER_SIZE 256u
#define CKPT_KEEP        2

typedef struct {
    char shape[128];        /* model shape string */
    uint64_t n_params;      /* floats per array */
    uint64_t step;          /* global optimizer steps done */
    uint32_t epoch;         /* epoch in progress, 0-based */
    uint32_t step_in_epoch; /* steps done in it */
    uint32_t optim_kind;    /* optim_kind_t */
    uint64_t optim_t;       /* optimizer's own step count */
    float lr, momentum, beta1, beta2, eps;
    uint32_t world, batch, accum; /* run geometry at save time */
    uint64_t seed;                /* --seed */
    uint64_t rng_state;           /* data-order RNG state at the epoch start */
} ckpt_meta_t;

/* Write a checkpoint for meta->step. Returns 0, or -1 with err (the old files stay). */
int ckpt_save(const char *dir,
              const ckpt_meta_t *meta,
              const float *params,
              const float *m,
              const float *v,
              wq_error_t *err);

/* Load the newest complete checkpoint in dir. Returns 1 if one was loaded (caller owns the
 * three arrays, n_params floats each), 0 if there is none (or dir does not exist), -1 on
 * error. Path of the file loaded goes to path (if non-NULL, len bytes). */
int ckpt_load_latest(const char *dir,
                     ckpt_meta_t *meta,
                     float **params,
                     float **m,
                     float **v,
                     char *path,
                     size_t len,
                     wq_error_t *err);

#endif
