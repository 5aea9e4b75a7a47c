/* Fuzz target: the trainer's checkpoint reader (train/ckpt.c: ckpt_load_latest(), which
 * finds the newest "ckpt-<step>.wqck" in a folder and reads and checks it).
 *
 * Input: one mode byte, then the file. Both checksums guard everything past the magic, so
 * random changes would almost never get beyond them; the mode lets the fuzzer past:
 *   bit 0  recompute the header CRC (offset 108) over the header the file declares
 *   bit 1  first recompute the payload CRC (offset 104) over the bytes after the header
 * The file is written as this process's temporary folder's only checkpoint and loaded.
 *
 * Checked beyond "no crash, no leak, no undefined behaviour": a loaded checkpoint has
 * 1..2^32 parameters, its three arrays and a NUL-terminated shape; the reader allocates no
 * more than the file holds (libFuzzer's -malloc_limit_mb reports it otherwise). */
#include <string.h>
#include <zlib.h>

#include "common/log.h"
#include "tests/fuzz/fuzz.h"
#include "train/ckpt.h"

#define FIX_HEADER_CRC  1
#define FIX_PAYLOAD_CRC 2

static volatile float sink; /* keeps the reads of the loaded arrays */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    wq_log_level = LOG_ERR; /* a damaged file is a warning per run: noise, and slow */
    return 0;
}

static uint32_t
get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void
put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0];
    size_t n = size - 1;
    uint8_t *file = malloc(n ? n : 1);
    FUZZ_CHECK(file != NULL);
    memcpy(file, data + 1, n);
    uint32_t hsize = n >= 16 ? get32(file + 12) : 0;
    if ((mode & FIX_HEADER_CRC) && hsize >= 240 && hsize <= n) {
        if (mode & FIX_PAYLOAD_CRC)
            put32(file + 104, (uint32_t) crc32(0L, file + hsize, (uInt) (n - hsize)));
        put32(file + 108, 0);
        put32(file + 108, (uint32_t) crc32(0L, file, hsize));
    }
    fuzz_write_file("ckpt-000000000001.wqck", file, n);
    free(file);

    ckpt_meta_t meta;
    float *p = NULL, *m = NULL, *v = NULL;
    char path[512];
    wq_error_t err = {0};
    int rc = ckpt_load_latest(fuzz_tmpdir(), &meta, &p, &m, &v, path, sizeof path, &err);
    FUZZ_CHECK(rc == 0 || rc == 1); /* a damaged file is skipped, not an error */
    if (rc == 1) {
        FUZZ_CHECK(meta.n_params >= 1 && meta.n_params <= (uint64_t) 1 << 32);
        FUZZ_CHECK(p != NULL && m != NULL && v != NULL);
        FUZZ_CHECK(memchr(meta.shape, '\0', sizeof meta.shape) != NULL);
        FUZZ_CHECK(strstr(path, "ckpt-000000000001.wqck") != NULL);
        /* every float of the three arrays is there to be read */
        float sum = 0;
        for (uint64_t i = 0; i < meta.n_params; i += 1 + meta.n_params / 64)
            sum += p[i] + m[i] + v[i];
        sum += p[meta.n_params - 1] + m[meta.n_params - 1] + v[meta.n_params - 1];
        sink = sum;
        free(p);
        free(m);
        free(v);
    }
    return 0;
}
