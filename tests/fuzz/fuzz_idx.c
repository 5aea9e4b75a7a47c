/* Fuzz target: the trainer's Fashion-MNIST loader (train/data.c: dataset_load(), which reads
 * an IDX image file and an IDX label file through zlib, plain or gzipped, and checks that
 * they match).
 *
 * Input: one mode byte, a little-endian u16 L, then L bytes of the image file and the rest as
 * the label file (L is cut to what is there). Mode bits 0-1 pick the sample limit the trainer
 * passes (--train-limit): 0 (all), 1, 3 or 100. Both files are written to this process's
 * temporary folder as "fz-images-idx3-ubyte" and "fz-labels-idx1-ubyte" and loaded.
 *
 * Checked beyond "no crash, no leak, no undefined behaviour": a loaded set has 1..limit
 * samples of 1..DATA_MAX_SIDE pixels a side, every label below DATA_NUM_CLASSES, and every
 * pixel there to read (dataset_gather() of the first and the last sample); the loader
 * allocates no more than the files hold (libFuzzer's -malloc_limit_mb reports it otherwise). */
#include <string.h>
#include <zlib.h>

#include "tests/fuzz/fuzz.h"
#include "train/data.h"

static const int limits[4] = {0, 1, 3, 100};

/* zlib's gzbuffer(), replaced for this program: data.c asks for 128 KiB buffers, which ASan
 * maps and unmaps on every open (its allocations over 128 KiB are mmap'd), and that held this
 * target to 800 runs/s. Without it zlib keeps its 8 KiB default; what the loader reads and
 * checks does not depend on the buffer size. */
int
gzbuffer(gzFile file, unsigned size)
{
    (void) file;
    (void) size;
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    int limit = limits[data[0] & 3];
    size_t ilen = (size_t) data[1] | (size_t) data[2] << 8;
    data += 3;
    size -= 3;
    if (ilen > size)
        ilen = size;
    fuzz_write_file("fz-images-idx3-ubyte", data, ilen);
    fuzz_write_file("fz-labels-idx1-ubyte", data + ilen, size - ilen);

    dataset_t ds;
    wq_error_t err = {0};
    if (dataset_load(fuzz_tmpdir(), "fz", limit, &ds, &err) < 0) {
        FUZZ_CHECK(err.text[0] != '\0');
        FUZZ_CHECK(ds.images == NULL && ds.labels == NULL);
        return 0;
    }
    FUZZ_CHECK(ds.n >= 1 && ds.n <= DATA_MAX_SAMPLES && (limit == 0 || ds.n <= limit));
    FUZZ_CHECK(ds.rows >= 1 && ds.rows <= DATA_MAX_SIDE);
    FUZZ_CHECK(ds.cols >= 1 && ds.cols <= DATA_MAX_SIDE);
    for (int i = 0; i < ds.n; i++)
        FUZZ_CHECK(ds.labels[i] < DATA_NUM_CLASSES);
    uint32_t idx[2] = {0, (uint32_t) ds.n - 1};
    float *x = malloc(2 * (size_t) ds.rows * (size_t) ds.cols * sizeof *x);
    FUZZ_CHECK(x != NULL);
    unsigned char labels[2];
    dataset_gather(&ds, idx, 2, x, labels);
    FUZZ_CHECK(labels[0] == ds.labels[0] && labels[1] == ds.labels[ds.n - 1]);
    free(x);
    dataset_free(&ds);
    return 0;
}
