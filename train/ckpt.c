#include "train/ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/log.h"
#include "common/mem.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint payloads are written as the host's floats: little-endian hosts only"
#endif

static const char MAGIC[8] = "WQTRAIN";

static void
le32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static void
le64(unsigned char *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static uint32_t
rd32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t
rd64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void
lef(unsigned char *p, float f)
{
    memcpy(p, &f, 4);
}

static float
rdf(const unsigned char *p)
{
    float f;
    memcpy(&f, p, 4);
    return f;
}

static uint32_t
payload_crc(const float *a, const float *b, const float *c, size_t n)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    const float *arr[3] = {a, b, c};
    for (int k = 0; k < 3; k++) {
        const unsigned char *p = (const unsigned char *) arr[k];
        size_t left = n * sizeof(float);
        while (left) {
            uInt piece = left > (1u << 30) ? (1u << 30) : (uInt) left;
            crc = crc32(crc, p, piece);
            p += piece;
            left -= piece;
        }
    }
    return (uint32_t) crc;
}

static int
write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

static int
is_ckpt_name(const char *name, uint64_t *step)
{
    unsigned long long s;
    int end = 0;
    if (sscanf(name, "ckpt-%12llu.wqck%n", &s, &end) != 1 || name[end] != '\0' ||
        strlen(name) != 22)
        return 0;
    *step = s;
    return 1;
}

/* Remove all but the newest CKPT_KEEP checkpoints. */
static void
prune(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    uint64_t steps[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        uint64_t s;
        if (is_ckpt_name(e->d_name, &s))
            steps[n++] = s;
    }
    closedir(d);
    for (int i = 0; i < n; i++) {
        int newer = 0;
        for (int j = 0; j < n; j++)
            newer += steps[j] > steps[i];
        if (newer >= CKPT_KEEP) {
            char path[4096];
            snprintf(path, sizeof path, "%s/ckpt-%012" PRIu64 ".wqck", dir, steps[i]);
            unlink(path);
        }
    }
}

int
ckpt_save(const char *dir,
          const ckpt_meta_t *meta,
          const float *params,
          const float *m,
          const float *v,
          wq_error_t *err)
{
    char final[4096], tmp[4096];
    if (mkdir(dir, 0777) < 0 && errno != EEXIST)
        return wq_fail_errno(err, "cannot create checkpoint dir %s", dir);
    snprintf(final, sizeof final, "%s/ckpt-%012" PRIu64 ".wqck", dir, meta->step);
    snprintf(tmp, sizeof tmp, "%s/.ckpt-%012" PRIu64 ".wqck.tmp.%ld", dir, meta->step,
             (long) getpid());

    unsigned char h[CKPT_HEADER_SIZE];
    memset(h, 0, sizeof h);
    memcpy(h, MAGIC, 8);
    le32(h + 8, CKPT_VERSION);
    le32(h + 12, CKPT_HEADER_SIZE);
    le32(h + 20, meta->optim_kind);
    le64(h + 24, meta->n_params);
    le64(h + 32, meta->step);
    le32(h + 40, meta->epoch);
    le32(h + 44, meta->step_in_epoch);
    le64(h + 48, meta->optim_t);
    lef(h + 56, meta->lr);
    lef(h + 60, meta->momentum);
    lef(h + 64, meta->beta1);
    lef(h + 68, meta->beta2);
    lef(h + 72, meta->eps);
    le32(h + 76, meta->world);
    le32(h + 80, meta->batch);
    le32(h + 84, meta->accum);
    le64(h + 88, meta->seed);
    le64(h + 96, meta->rng_state);
    le32(h + 104, payload_crc(params, m, v, meta->n_params));
    memcpy(h + 112, meta->shape, strnlen(meta->shape, 127));
    le32(h + 108, (uint32_t) crc32(0L, h, CKPT_HEADER_SIZE));

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return wq_fail_errno(err, "cannot create %s", tmp);
    size_t bytes = meta->n_params * sizeof(float);
    if (write_all(fd, h, sizeof h) < 0 || write_all(fd, params, bytes) < 0 ||
        write_all(fd, m, bytes) < 0 || write_all(fd, v, bytes) < 0 || fsync(fd) < 0) {
        wq_fail_errno(err, "cannot write %s", tmp);
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) < 0 || rename(tmp, final) < 0) {
        wq_fail_errno(err, "cannot write %s", final);
        unlink(tmp);
        return -1;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    prune(dir);
    return 0;
}

/* Read and validate one file. Returns 0 or -1 with the reason in err. */
static int
load_one(const char *path, ckpt_meta_t *meta, float **pp, float **pm, float **pv, wq_error_t *err)
{
    unsigned char h[CKPT_HEADER_SIZE];
    float *a = NULL, *b = NULL, *c = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return wq_fail_errno(err, "%s", path);
    if (fread(h, 1, 112, f) != 112 || memcmp(h, MAGIC, 8) != 0) {
        wq_fail(err, WQ_EINVAL, "%s: not a wslq-train checkpoint", path);
        goto error;
    }
    uint32_t version = rd32(h + 8), hsize = rd32(h + 12);
    if (version != CKPT_VERSION || hsize < 240 || hsize > 65536) {
        wq_fail(err, WQ_EINVAL, "%s: unsupported checkpoint version %u (header %u bytes)", path,
                version, hsize);
        goto error;
    }
    unsigned char *hdr = wq_malloc(hsize);
    memcpy(hdr, h, 112);
    if (fread(hdr + 112, 1, hsize - 112, f) != hsize - 112) {
        free(hdr);
        wq_fail(err, WQ_EINVAL, "%s: truncated header", path);
        goto error;
    }
    uint32_t hcrc = rd32(hdr + 108);
    le32(hdr + 108, 0);
    uint32_t hcrc_now = (uint32_t) crc32(0L, hdr, hsize);
    memset(meta, 0, sizeof *meta);
    meta->optim_kind = rd32(hdr + 20);
    meta->n_params = rd64(hdr + 24);
    meta->step = rd64(hdr + 32);
    meta->epoch = rd32(hdr + 40);
    meta->step_in_epoch = rd32(hdr + 44);
    meta->optim_t = rd64(hdr + 48);
    meta->lr = rdf(hdr + 56);
    meta->momentum = rdf(hdr + 60);
    meta->beta1 = rdf(hdr + 64);
    meta->beta2 = rdf(hdr + 68);
    meta->eps = rdf(hdr + 72);
    meta->world = rd32(hdr + 76);
    meta->batch = rd32(hdr + 80);
    meta->accum = rd32(hdr + 84);
    meta->seed = rd64(hdr + 88);
    meta->rng_state = rd64(hdr + 96);
    uint32_t pcrc = rd32(hdr + 104);
    memcpy(meta->shape, hdr + 112, 127);
    meta->shape[127] = '\0';
    free(hdr);
    if (hcrc != hcrc_now) {
        wq_fail(err, WQ_EINVAL, "%s: header checksum mismatch", path);
        goto error;
    }
    if (meta->n_params == 0 || meta->n_params > ((uint64_t) 1 << 32)) {
        wq_fail(err, WQ_ELIMIT, "%s: %" PRIu64 " parameters is out of range", path, meta->n_params);
        goto error;
    }
    struct stat st; /* the file must hold what the header declares before we allocate for it */
    if (fstat(fileno(f), &st) < 0 ||
        (uint64_t) st.st_size != hsize + 3 * meta->n_params * sizeof(float)) {
        wq_fail(err, WQ_EINVAL, "%s: size does not match its header", path);
        goto error;
    }
    size_t n = (size_t) meta->n_params;
    a = wq_malloc(n * sizeof(float));
    b = wq_malloc(n * sizeof(float));
    c = wq_malloc(n * sizeof(float));
    if (fread(a, sizeof(float), n, f) != n || fread(b, sizeof(float), n, f) != n ||
        fread(c, sizeof(float), n, f) != n) {
        wq_fail(err, WQ_EINVAL, "%s: truncated payload", path);
        goto error;
    }
    if (fgetc(f) != EOF) {
        wq_fail(err, WQ_EINVAL, "%s: longer than its header says", path);
        goto error;
    }
    if (payload_crc(a, b, c, n) != pcrc) {
        wq_fail(err, WQ_EINVAL, "%s: payload checksum mismatch", path);
        goto error;
    }
    fclose(f);
    *pp = a;
    *pm = b;
    *pv = c;
    return 0;
error:
    free(a);
    free(b);
    free(c);
    fclose(f);
    return -1;
}

int
ckpt_load_latest(const char *dir,
                 ckpt_meta_t *meta,
                 float **params,
                 float **m,
                 float **v,
                 char *path,
                 size_t len,
                 wq_error_t *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        return wq_fail_errno(err, "cannot read checkpoint dir %s", dir);
    }
    size_t cap = 16, n = 0;
    uint64_t *steps = wq_malloc(cap * sizeof *steps);
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t s;
        if (!is_ckpt_name(e->d_name, &s))
            continue;
        if (n == cap)
            steps = wq_realloc(steps, (cap *= 2) * sizeof *steps);
        steps[n++] = s;
    }
    closedir(d);
    int rc = 0;
    while (n > 0) {
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
            if (steps[i] > steps[best])
                best = i;
        char p[4096];
        snprintf(p, sizeof p, "%s/ckpt-%012" PRIu64 ".wqck", dir, steps[best]);
        wq_error_t e2;
        if (load_one(p, meta, params, m, v, &e2) == 0) {
            if (path)
                snprintf(path, len, "%s", p);
            rc = 1;
            break;
        }
        log_warn("skipping damaged checkpoint: %s", e2.text);
        steps[best] = steps[--n];
    }
    free(steps);
    return rc;
}
