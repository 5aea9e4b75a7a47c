/* Fashion-MNIST (or MNIST) from IDX files, gzipped or not.
 *
 * IDX: big-endian u32 magic 0x00000803 (u8 images, 3 dims) or 0x00000801 (u8 labels, 1 dim),
 * then one big-endian u32 per dimension, then the bytes. Pixels stay bytes in memory (47 MB for
 * the training set instead of 188 MB as floats); batches are normalised as they are gathered. */
#ifndef WSLQ_TRAIN_DATA_H
#define WSLQ_TRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define DATA_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define DATA_MAX_SAMPLES 10000000 /* refuse headers claiming more */
#define DATA_MAX_SIDE    1024     /* refuse images larger than this on a side */
#define DATA_NUM_CLASSES 10
#define DATA_MEAN        0.2860f /* Fashion-MNIST pixel mean / std over the training set */
#define DATA_STD         0.3530f

typedef struct {
    int n;                 /* samples */
    int rows, cols;        /* image size in pixels */
    unsigned char *images; /* n * rows * cols bytes, row-major */
    unsigned char *labels; /* n labels in [0, DATA_NUM_CLASSES) */
} dataset_t;

/* Read one IDX file (magic 0x803 or 0x801). Reads at most 'limit' items (0 = all). On success
 * fills dims[0..ndims) and *data (caller frees). Errors name the file and what is wrong. */
int idx_read(const char *path,
             uint32_t want_magic,
             int limit,
             uint32_t dims[3],
             unsigned char **data,
             wq_error_t *err);

/* Load "<dir>/<prefix>-images-idx3-ubyte[.gz]" and the matching labels; prefix is "train" or
 * "t10k". limit > 0 keeps only the first 'limit' samples. Caller owns *ds (dataset_free). */
int dataset_load(const char *dir, const char *prefix, int limit, dataset_t *ds, wq_error_t *err);

void dataset_free(dataset_t *ds);

/* Normalise the samples idx[0..n) into x (n * rows * cols floats) and copy their labels. */
void
dataset_gather(const dataset_t *ds, const uint32_t *idx, int n, float *x, unsigned char *labels);

#endif
