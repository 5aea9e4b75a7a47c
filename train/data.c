/* IDX loading through zlib's gzread, which reads plain files transparently too. */
#include "train/data.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/mem.h"
#include "train/kernels.h"

static int
read_exact(gzFile f, void *buf, size_t len, const char *path, const char *what, wq_error_t *err)
{
    size_t got = 0;
    while (got < len) {
        unsigned chunk = len - got > (1u << 30) ? (1u << 30) : (unsigned) (len - got);
        int r = gzread(f, (char *) buf + got, chunk);
        if (r < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            return wq_fail(err, WQ_EIO, "%s: corrupt file (%s) while reading %s", path,
                           zerr == Z_ERRNO ? strerror(errno) : msg, what);
        }
        if (r == 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            if (zerr != Z_OK && zerr != Z_BUF_ERROR)
                return wq_fail(err, WQ_EIO, "%s: corrupt file (%s) while reading %s", path, msg,
                               what);
            return wq_fail(err, WQ_EIO, "%s: truncated: %s needs %zu bytes, file has %zu", path,
                           what, len, got);
        }
        got += (size_t) r;
    }
    return 0;
}

static uint32_t
be32(const unsigned char *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

int
idx_read(const char *path,
         uint32_t want_magic,
         int limit,
         uint32_t dims[3],
         unsigned char **data,
         wq_error_t *err)
{
    unsigned char *buf = NULL;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return wq_fail_errno(err, "%s: cannot open", path);
    gzbuffer(f, 1 << 17);

    unsigned char hdr[16];
    if (read_exact(f, hdr, 4, path, "the IDX header", err) < 0)
        goto error;
    uint32_t magic = be32(hdr);
    if (magic != want_magic) {
        wq_fail(err, WQ_EINVAL, "%s: not an IDX %s file (magic 0x%08x, want 0x%08x)", path,
                want_magic == 0x803 ? "image" : "label", magic, want_magic);
        goto error;
    }
    unsigned ndims = magic & 0xff;
    if (read_exact(f, hdr + 4, 4 * ndims, path, "the IDX header", err) < 0)
        goto error;
    uint64_t items = 1;
    for (unsigned d = 0; d < ndims; d++) {
        dims[d] = be32(hdr + 4 + 4 * d);
        uint32_t lim = d == 0 ? DATA_MAX_SAMPLES : DATA_MAX_SIDE;
        if (dims[d] == 0 || dims[d] > lim) {
            wq_fail(err, WQ_ELIMIT, "%s: dimension %u is %u (allowed 1..%u)", path, d, dims[d],
                    lim);
            goto error;
        }
    }
    if (limit > 0 && (uint32_t) limit < dims[0])
        dims[0] = (uint32_t) limit;
    for (unsigned d = 0; d < ndims; d++)
        items *= dims[d];
    struct stat st; /* deflate expands at most 1032:1: refuse a header the file cannot back */
    if (stat(path, &st) == 0 && items > (uint64_t) st.st_size * 1032) {
        wq_fail(err, WQ_EINVAL, "%s: truncated: the header declares %" PRIu64 " bytes of data",
                path, items);
        goto error;
    }
    buf = wq_malloc(items ? items : 1);
    if (read_exact(f, buf, items, path, "the data", err) < 0)
        goto error;
    if (limit <= 0 || (uint32_t) limit > dims[0]) {
        /* Whole file wanted: anything after the declared data means a damaged file. */
        char extra;
        if (gzread(f, &extra, 1) != 0) {
            wq_fail(err, WQ_EINVAL, "%s: corrupt file (data continues past the declared size)",
                    path);
            goto error;
        }
    }
    gzclose(f);
    *data = buf;
    return 0;
error:
    free(buf);
    gzclose(f);
    return -1;
}

/* "<dir>/<name>.gz" if it exists, else "<dir>/<name>". Caller frees. */
static char *
find_file(const char *dir, const char *name)
{
    char *p = wq_asprintf("%s/%s.gz", dir, name);
    if (access(p, F_OK) == 0)
        return p;
    free(p);
    return wq_asprintf("%s/%s", dir, name);
}

int
dataset_load(const char *dir, const char *prefix, int limit, dataset_t *ds, wq_error_t *err)
{
    memset(ds, 0, sizeof *ds);
    char name[64];
    uint32_t idims[3] = {0}, ldims[3] = {0};
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    char *ipath = find_file(dir, name);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    char *lpath = find_file(dir, name);
    int rc = -1;

    if (idx_read(ipath, 0x803, limit, idims, &ds->images, err) < 0)
        goto out;
    if (idx_read(lpath, 0x801, limit, ldims, &ds->labels, err) < 0)
        goto out;
    if (idims[0] != ldims[0]) {
        wq_fail(err, WQ_EINVAL, "%s has %u images but %s has %u labels", ipath, idims[0], lpath,
                ldims[0]);
        goto out;
    }
    for (uint32_t i = 0; i < ldims[0]; i++) {
        if (ds->labels[i] >= DATA_NUM_CLASSES) {
            wq_fail(err, WQ_EINVAL, "%s: label %u of sample %u is not in 0..%d", lpath,
                    ds->labels[i], i, DATA_NUM_CLASSES - 1);
            goto out;
        }
    }
    ds->n = (int) idims[0];
    ds->rows = (int) idims[1];
    ds->cols = (int) idims[2];
    rc = 0;
out:
    if (rc < 0)
        dataset_free(ds);
    free(ipath);
    free(lpath);
    return rc;
}

void
dataset_free(dataset_t *ds)
{
    free(ds->images);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

void
dataset_gather(const dataset_t *ds, const uint32_t *idx, int n, float *x, unsigned char *labels)
{
    long px = (long) ds->rows * ds->cols;
    for (int s = 0; s < n; s++) {
        const unsigned char *src = ds->images + (long) idx[s] * px;
        float *dst = x + (long) s * px;
        for (long i = 0; i < px; i++)
            k_normalize_u8(i, src, dst, DATA_MEAN, 1.0f / DATA_STD);
        labels[s] = ds->labels[idx[s]];
    }
}
