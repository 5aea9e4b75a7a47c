/* The CUDA engine's own code (cuda/engine_cuda.c, cuda/dlayers.c) executed on the CPU, so the
 * GPU path's logic is tested where CI runs: this file provides a host stand-in for every CUDA
 * runtime and cuBLAS call those two files make, and for the kernel launchers. "Device"
 * pointers are host memory, launchers run their kernels.h function in a loop (what the
 * kernels do, minus the grid), cublasSgemm is a column-major reference GEMM that checks its
 * arguments the way cuBLAS documents them (so a row-major/column-major operand mix-up or a
 * wrong leading dimension fails here). The runtime stand-ins know which pointers are device
 * memory and which are pinned, check each copy's direction against them, and model what the
 * host may see of an asynchronous copy before it waits for it (below, "the CUDA runtime, on
 * the host"). No CUDA library is linked: a call this file does not provide fails the link.
 *
 *   layers        dlayers.c vs layers.c for linear, conv (3x3 p1, 5x5 p0) relu, maxpool
 *   engine        the CUDA engine vs the CPU engine, MLP and CNN, Adam, 2 micro-batches per
 *                 step, 4 steps, evaluation, pull/push: same losses and parameters (1e-5)
 *   staged        the same through a host transport: gradients staged down to pinned memory,
 *                 all-reduced there and copied back up
 *   buckets       with a device-memory transport that records each bucket it is handed:
 *                 every bucket of the plan, in order, once per step, on the last micro-batch
 *                 only, and each bucket's gradients already final when it is handed over
 *                 (what makes starting the all-reduce during backward correct)
 *   pageable      cudaHostAlloc failing (WSL's pinned-memory cap) falls back and still trains
 *
 * What it cannot show: real kernel launches, real cuBLAS numerics, NCCL (tests/cuda_test.c
 * and the gpu_* run cases do, on a GPU). */
/* cmocka.h needs these first. */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
/* after the standard headers */
#include <cmocka.h>

#include "train/comm.h"
#include "train/cuda/cuerr.h"
#include "train/cuda/dlayers.h"
#include "train/cuda/engine_cuda.h"
#include "train/cuda/launch.h"
#include "train/engine.h"
#include "train/kernels.h"
#include "train/layers.h"
#include "train/model.h"
#include "train/optim.h"
#include "train/rng.h"

/* ---- the CUDA runtime, on the host ----------------------------------------------------- */

/* What the stand-ins know about memory: every cudaMalloc block is "device", every cudaHostAlloc
 * block "pinned"; anything else is pageable host memory. A copy must go the way its kind says
 * (a device-to-host copy labelled host-to-device fails here), kernels and cuBLAS get device
 * pointers only, and memset is on device memory.
 *
 * Streams run in order; what the host can observe follows CUDA's rules for cudaMemcpyAsync
 * ("API synchronization behavior" in the CUDA runtime documentation):
 *   - device to pinned host: the data lands when the host waits for the copy
 *     (cudaStreamSynchronize, or cudaEventSynchronize on an event recorded after it). Until
 *     then the destination's pages are unreadable (mprotect PROT_NONE: a host read or write
 *     stops the test with a message naming the address) and hold 0xff bytes.
 *   - pinned host to device: the host must not change the source until it has waited for the
 *     copy: its pages are read-only until then, and a change is reported at the wait.
 *   - pageable host memory: both directions complete before the call returns (CUDA stages
 *     them synchronously), so no wait is needed and none is checked.
 * Kernels and device-to-device copies run at once: only the host's view is deferred.
 *
 * Breaks these catch (see tests/mutations.md): a cudaMemcpyAsync in cuda/engine_cuda.c with
 * the wrong cudaMemcpyKind; the cudaEventSynchronize(g->extras) before reading the loss, or
 * the cudaStreamSynchronize before reading evaluation results or staged gradients, removed;
 * the cudaEventSynchronize(g->staged) before refilling the upload block removed. */

enum { MEM_DEVICE = 1, MEM_PINNED = 2 };

typedef struct {
    char *p;
    size_t n;
    int kind;
    size_t map; /* pinned blocks: the whole pages mapped for it (so they can be protected) */
} region_t;

static region_t *regions;
static size_t n_regions, cap_regions;

static void
region_add(void *p, size_t n, int kind, size_t map)
{
    if (n_regions == cap_regions) {
        cap_regions = cap_regions ? 2 * cap_regions : 64;
        regions = realloc(regions, cap_regions * sizeof *regions);
        assert_non_null(regions);
    }
    regions[n_regions++] = (region_t){p, n, kind, map};
}

static const region_t *
region_of(const void *p)
{
    const char *c = p;
    for (size_t i = 0; i < n_regions; i++)
        if (c >= regions[i].p && c < regions[i].p + regions[i].n)
            return &regions[i];
    return NULL;
}

/* The kind of memory [p, p + n) is: MEM_DEVICE or MEM_PINNED when wholly inside one such block,
 * 0 for pageable host memory; a range that straddles a block's end fails the test. */
static int
mem_kind(const void *p, size_t n)
{
    const region_t *r = region_of(p);
    if (!r)
        return 0;
    if ((const char *) p + n > r->p + r->n)
        fail_msg("%p + %zu runs past the end of its %s block", p, n,
                 r->kind == MEM_DEVICE ? "device" : "pinned");
    return r->kind;
}

static const char *
kind_name(int k)
{
    return k == MEM_DEVICE ? "device" : k == MEM_PINNED ? "pinned host" : "pageable host";
}

/* Device pointer arguments of launchers and cuBLAS (NULL allowed where the kernel allows it). */
#define DEV(p)                                                                    \
    do {                                                                          \
        if ((p) != NULL && mem_kind((p), 1) != MEM_DEVICE)                        \
            fail_msg("%s: %s = %p is %s memory, not device memory", __func__, #p, \
                     (const void *) (p), kind_name(mem_kind((p), 1)));            \
    } while (0)

static void
region_remove(void *p, int kind, const char *call)
{
    if (!p)
        return;
    for (size_t i = 0; i < n_regions; i++)
        if (regions[i].p == p) {
            if (regions[i].kind != kind)
                fail_msg("%s(%p): that is %s memory", call, p, kind_name(regions[i].kind));
            regions[i] = regions[--n_regions];
            return;
        }
    fail_msg("%s(%p): not allocated by its allocator", call, p);
}

typedef struct {
    int live;
} stream_t;

typedef struct {
    stream_t *stream; /* where it was last recorded; NULL before */
    uint64_t seq;     /* the stream work it covers: every operation with seq <= this */
} event_t;

/* A copy whose host side is not settled yet. */
typedef struct {
    stream_t *stream;
    uint64_t seq;
    int to_host;    /* 1: device to pinned host (data lands at the wait); 0: pinned to device */
    char *host;     /* the pinned buffer */
    size_t bytes;   /* its length */
    char *snapshot; /* to_host: the data to land; else: the source as it was handed over */
} pending_t;

#define MAX_PENDING 256
static pending_t pending[MAX_PENDING];
static int n_pending;
static uint64_t seq_now; /* stream operations enqueued so far, all streams */

static void
settle(int i)
{
    pending_t *q = &pending[i];
    if (q->to_host) {
        for (size_t b = 0; b < q->bytes; b++)
            if ((unsigned char) q->host[b] != 0xff)
                fail_msg("the host wrote %p (+%zu) while a device-to-host copy into it was in "
                         "flight",
                         (void *) q->host, b);
        memcpy(q->host, q->snapshot, q->bytes);
    } else if (memcmp(q->host, q->snapshot, q->bytes) != 0) {
        fail_msg("the host changed %p (%zu bytes) before waiting for the host-to-device copy "
                 "reading it",
                 (void *) q->host, q->bytes);
    }
    free(q->snapshot);
    pending[i] = pending[--n_pending];
}

/* The host has waited for stream s up to seq: those copies are done. */
static void
complete(stream_t *s, uint64_t upto)
{
    for (int i = n_pending - 1; i >= 0; i--)
        if (pending[i].stream == s && pending[i].seq <= upto)
            settle(i);
}

/* Earlier copies on s touching [p, p + n) are done before a new operation there starts. */
static void
order_after(stream_t *s, const void *p, size_t n)
{
    const char *c = p;
    for (int i = n_pending - 1; i >= 0; i--)
        if (pending[i].stream == s && c < pending[i].host + pending[i].bytes &&
            pending[i].host < c + n)
            settle(i);
}

/* Page protection of pinned memory from the copies in flight: PROT_NONE under a device-to-host
 * copy, read-only under a host-to-device one. unguard() before the stand-ins touch host memory
 * themselves, guard() when they return to the engine. */
static void
set_pinned_protection(int open_all)
{
    long page = sysconf(_SC_PAGESIZE);
    for (size_t r = 0; r < n_regions; r++) {
        if (regions[r].kind != MEM_PINNED)
            continue;
        for (char *pg = regions[r].p; pg < regions[r].p + regions[r].map; pg += page) {
            int prot = PROT_READ | PROT_WRITE;
            for (int i = 0; i < n_pending && !open_all; i++)
                if (pending[i].host < pg + page && pg < pending[i].host + pending[i].bytes)
                    prot = pending[i].to_host ? PROT_NONE : (prot & PROT_READ);
            assert_int_equal(mprotect(pg, (size_t) page, prot), 0);
        }
    }
}

static void
guard(void)
{
    set_pinned_protection(0);
}

static void
unguard(void)
{
    set_pinned_protection(1);
}

/* A fault on a guarded page is the engine touching host memory before waiting for a copy: say
 * so, then let the handler that was there (cmocka's, which fails the test) take it. */
static struct sigaction prior_fault;

static void
on_fault(int sig, siginfo_t *si, void *ctx)
{
    (void) ctx;
    const region_t *r = region_of(si->si_addr);
    char msg[256];
    int n = snprintf(msg, sizeof msg,
                     r && r->kind == MEM_PINNED
                         ? "FAIL: the host touched pinned memory %p while a copy with it was in "
                           "flight (a missing cudaStreamSynchronize/cudaEventSynchronize)\n"
                         : "FAIL: memory fault at %p\n",
                     si->si_addr);
    if (write(2, msg, (size_t) n) < 0)
        n = 0;
    if (!(prior_fault.sa_flags & SA_SIGINFO) && prior_fault.sa_handler != SIG_DFL &&
        prior_fault.sa_handler != SIG_IGN) {
        prior_fault.sa_handler(sig);
        return;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Called at the start of a test, after cmocka has set its own handlers. */
static void
watch_faults(void)
{
    struct sigaction sa, cur;
    sigaction(SIGSEGV, NULL, &cur);
    if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_fault)
        return;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, &prior_fault);
}

/* Freeing memory a copy is still using. */
static void
no_pending_in(const void *p, const char *call)
{
    for (int i = 0; i < n_pending; i++)
        if ((const void *) pending[i].host == p)
            fail_msg("%s(%p) while a copy with it is in flight", call, p);
}

static stream_t *
stream_of(cudaStream_t s)
{
    assert_non_null(s);
    stream_t *st = (stream_t *) s;
    assert_true(st->live);
    return st;
}

static int pinned_fails; /* cudaHostAlloc reports out of memory */
static int pinned_calls;
static int token; /* cuBLAS handles point here */

cudaError_t
cudaMalloc(void **p, size_t bytes)
{
    *p = malloc(bytes);
    if (*p)
        region_add(*p, bytes, MEM_DEVICE, 0);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t
cudaFree(void *p)
{
    no_pending_in(p, "cudaFree");
    region_remove(p, MEM_DEVICE, "cudaFree");
    free(p);
    return cudaSuccess;
}

cudaError_t
cudaHostAlloc(void **p, size_t bytes, unsigned int flags)
{
    (void) flags;
    pinned_calls++;
    if (pinned_fails) {
        *p = NULL;
        return cudaErrorMemoryAllocation;
    }
    long page = sysconf(_SC_PAGESIZE);
    size_t map = (bytes + (size_t) page - 1) / (size_t) page * (size_t) page;
    *p = mmap(NULL, map ? map : (size_t) page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
              -1, 0);
    assert_true(*p != MAP_FAILED);
    region_add(*p, bytes, MEM_PINNED, map ? map : (size_t) page);
    return cudaSuccess;
}

cudaError_t
cudaFreeHost(void *p)
{
    no_pending_in(p, "cudaFreeHost");
    const region_t *r = region_of(p);
    size_t map = r ? r->map : 0;
    region_remove(p, MEM_PINNED, "cudaFreeHost");
    munmap(p, map);
    return cudaSuccess;
}

cudaError_t
cudaGetLastError(void)
{
    return cudaSuccess;
}

cudaError_t
cudaMemsetAsync(void *p, int v, size_t bytes, cudaStream_t s)
{
    stream_of(s);
    if (mem_kind(p, bytes) != MEM_DEVICE)
        fail_msg("cudaMemsetAsync on %s memory %p", kind_name(mem_kind(p, bytes)), p);
    seq_now++;
    memset(p, v, bytes);
    return cudaSuccess;
}

cudaError_t
cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind, cudaStream_t s)
{
    stream_t *st = stream_of(s);
    unguard();
    int dk = mem_kind(dst, bytes), sk = mem_kind(src, bytes);
    int want_d = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    int want_s = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (kind != cudaMemcpyHostToDevice && kind != cudaMemcpyDeviceToHost &&
        kind != cudaMemcpyDeviceToDevice)
        fail_msg("cudaMemcpyAsync kind %d: the engine names every direction", (int) kind);
    if ((dk == MEM_DEVICE) != want_d || (sk == MEM_DEVICE) != want_s)
        fail_msg("cudaMemcpyAsync labelled %s copies %s memory %p to %s memory %p",
                 kind == cudaMemcpyHostToDevice   ? "host-to-device"
                 : kind == cudaMemcpyDeviceToHost ? "device-to-host"
                                                  : "device-to-device",
                 kind_name(sk), src, kind_name(dk), dst);
    seq_now++;
    if (kind == cudaMemcpyHostToDevice) {
        order_after(st, src, bytes);
        memcpy(dst, src, bytes);
        if (sk == MEM_PINNED) {
            assert_true(n_pending < MAX_PENDING);
            pending_t *q = &pending[n_pending++];
            *q = (pending_t){st, seq_now, 0, (char *) src, bytes, malloc(bytes)};
            memcpy(q->snapshot, src, bytes);
        }
    } else if (kind == cudaMemcpyDeviceToHost) {
        order_after(st, dst, bytes);
        if (dk == MEM_PINNED) {
            assert_true(n_pending < MAX_PENDING);
            pending_t *q = &pending[n_pending++];
            *q = (pending_t){st, seq_now, 1, dst, bytes, malloc(bytes)};
            memcpy(q->snapshot, src, bytes);
            memset(dst, 0xff, bytes);
        } else {
            memcpy(dst, src, bytes);
        }
    } else {
        memcpy(dst, src, bytes);
    }
    guard();
    return cudaSuccess;
}

cudaError_t
cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags)
{
    (void) flags;
    stream_t *st = calloc(1, sizeof *st);
    st->live = 1;
    *s = (cudaStream_t) st;
    return cudaSuccess;
}

cudaError_t
cudaStreamSynchronize(cudaStream_t s)
{
    unguard();
    complete(stream_of(s), UINT64_MAX);
    guard();
    return cudaSuccess;
}

cudaError_t
cudaStreamDestroy(cudaStream_t s)
{
    stream_t *st = stream_of(s);
    for (int i = 0; i < n_pending; i++)
        if (pending[i].stream == st)
            fail_msg("cudaStreamDestroy with a copy never waited for");
    st->live = 0;
    free(st);
    return cudaSuccess;
}

cudaError_t
cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int flags)
{
    (void) flags;
    *e = (cudaEvent_t) calloc(1, sizeof(event_t));
    return cudaSuccess;
}

cudaError_t
cudaEventRecord(cudaEvent_t e, cudaStream_t s)
{
    assert_non_null(e);
    event_t *ev = (event_t *) e;
    ev->stream = stream_of(s);
    ev->seq = seq_now;
    return cudaSuccess;
}

cudaError_t
cudaEventSynchronize(cudaEvent_t e)
{
    assert_non_null(e);
    event_t *ev = (event_t *) e;
    unguard();
    if (ev->stream) /* an event never recorded is complete at once */
        complete(ev->stream, ev->seq);
    guard();
    return cudaSuccess;
}

cudaError_t
cudaEventDestroy(cudaEvent_t e)
{
    free(e);
    return cudaSuccess;
}

cublasStatus_t
cublasCreate(cublasHandle_t *h)
{
    *h = (cublasHandle_t) &token;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t
cublasDestroy(cublasHandle_t h)
{
    (void) h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t
cublasSetStream(cublasHandle_t h, cudaStream_t s)
{
    (void) h, (void) s;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t
cublasSetMathMode(cublasHandle_t h, cublasMath_t mode)
{
    (void) h;
    assert_int_equal(mode, CUBLAS_DEFAULT_MATH);
    return CUBLAS_STATUS_SUCCESS;
}

/* cuBLAS's contract: column-major C[m][n] (ldc >= m) = alpha op(A) op(B) + beta C, where op(A)
 * is m x k (A stored k x m if transposed, lda >= rows of the stored matrix), op(B) k x n. */
cublasStatus_t
cublasSgemm(cublasHandle_t h,
            cublasOperation_t ta,
            cublasOperation_t tb,
            int m,
            int n,
            int k,
            const float *alpha,
            const float *A,
            int lda,
            const float *B,
            int ldb,
            const float *beta,
            float *C,
            int ldc)
{
    (void) h;
    DEV(A);
    DEV(B);
    DEV(C);
    int arows = ta == CUBLAS_OP_N ? m : k, brows = tb == CUBLAS_OP_N ? k : n;
    if (m < 0 || n < 0 || k < 0 || lda < (arows > 1 ? arows : 1) || ldb < (brows > 1 ? brows : 1) ||
        ldc < (m > 1 ? m : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0;
            for (int p = 0; p < k; p++) {
                float a = ta == CUBLAS_OP_N ? A[i + (size_t) p * lda] : A[p + (size_t) i * lda];
                float b = tb == CUBLAS_OP_N ? B[p + (size_t) j * ldb] : B[j + (size_t) p * ldb];
                s += (double) a * b;
            }
            float *c = &C[i + (size_t) j * ldc];
            *c = (float) (*alpha * s + (*beta != 0.0f ? *beta * *c : 0.0f));
        }
    return CUBLAS_STATUS_SUCCESS;
}

int
cu_check(wq_error_t *err, const char *file, int line, const char *call, cudaError_t e)
{
    return e == cudaSuccess ? 0 : wq_fail(err, WQ_EIO, "%s:%d: %s: error %d", file, line, call, e);
}

int
cublas_check(wq_error_t *err, const char *file, int line, const char *call, cublasStatus_t s)
{
    return s == CUBLAS_STATUS_SUCCESS
               ? 0
               : wq_fail(err, WQ_EIO, "%s:%d: %s: status %d", file, line, call, s);
}

void
cuda_describe(int dev, char *buf, size_t len)
{
    snprintf(buf, len, "cuda:%d (host stand-in)", dev);
}

/* ---- the launchers: each kernels.h function over [0, n), as the kernels do -------------- */

#define EACH(n, call)                  \
    do {                               \
        for (long i = 0; i < (n); i++) \
            call;                      \
        return cudaSuccess;            \
    } while (0)

cudaError_t
wqk_relu_fwd(cudaStream_t s, long n, const float *x, float *y)
{
    stream_of(s);
    DEV(x);
    DEV(y);
    EACH(n, k_relu_fwd(i, x, y));
}

cudaError_t
wqk_relu_bwd(cudaStream_t s, long n, const float *x, const float *dy, float *dx)
{
    stream_of(s);
    DEV(x);
    DEV(dy);
    DEV(dx);
    EACH(n, k_relu_bwd(i, x, dy, dx));
}

cudaError_t
wqk_bias_add(cudaStream_t s, long rows, float *y, const float *b, long inner, long nb)
{
    stream_of(s);
    DEV(y);
    DEV(b);
    EACH(rows, k_bias_add(i, y, b, inner, nb));
}

cudaError_t
wqk_bias_grad_rows(cudaStream_t s, long m, const float *dy, float *db, long n)
{
    stream_of(s);
    DEV(dy);
    DEV(db);
    EACH(m, k_bias_grad_rows(i, dy, db, n, m));
}

cudaError_t
wqk_bias_grad_cols(cudaStream_t s, long c, const float *dyt, float *db, long len)
{
    stream_of(s);
    DEV(dyt);
    DEV(db);
    EACH(c, k_bias_grad_cols(i, dyt, db, len));
}

cudaError_t
wqk_xent_row(cudaStream_t s,
             long n,
             const float *logits,
             const unsigned char *labels,
             int C,
             float gscale,
             float *dz,
             float *loss)
{
    stream_of(s);
    DEV(logits);
    DEV(labels);
    DEV(dz);
    DEV(loss);
    EACH(n, k_xent_row(i, logits, labels, C, gscale, dz, loss));
}

cudaError_t
wqk_hit_row(
    cudaStream_t s, long n, const float *logits, const unsigned char *labels, int C, int *hit)
{
    stream_of(s);
    DEV(logits);
    DEV(labels);
    DEV(hit);
    EACH(n, k_hit_row(i, logits, labels, C, hit));
}

cudaError_t
wqk_loss_accum(cudaStream_t s, const float *loss, long n, double *acc)
{
    stream_of(s);
    DEV(loss);
    DEV(acc);
    EACH(1, k_loss_accum(i, loss, n, acc));
}

cudaError_t
wqk_grad_extras(cudaStream_t s, double *acc, float gscale, float stop, float *extra)
{
    stream_of(s);
    DEV(acc);
    DEV(extra);
    EACH(1, k_grad_extras(i, acc, gscale, stop, extra));
}

cudaError_t
wqk_maxpool_fwd(
    cudaStream_t s, long rows, const float *x, float *y, int H, int W, int OH, int OW, int k)
{
    stream_of(s);
    DEV(x);
    DEV(y);
    EACH(rows, k_maxpool_fwd(i, x, y, H, W, OH, OW, k));
}

cudaError_t
wqk_maxpool_bwd(cudaStream_t s,
                long rows,
                const float *x,
                const float *dy,
                float *dx,
                int H,
                int W,
                int OH,
                int OW,
                int k)
{
    stream_of(s);
    DEV(x);
    DEV(dy);
    DEV(dx);
    EACH(rows, k_maxpool_bwd(i, x, dy, dx, H, W, OH, OW, k));
}

cudaError_t
wqk_im2col(cudaStream_t s,
           long rows,
           const float *x,
           float *col,
           int n,
           int C,
           int H,
           int W,
           int K,
           int P,
           int OH,
           int OW)
{
    stream_of(s);
    DEV(x);
    DEV(col);
    EACH(rows, k_im2col(i, x, col, n, C, H, W, K, P, OH, OW));
}

cudaError_t
wqk_col2im(cudaStream_t s,
           long rows,
           const float *col,
           float *dx,
           int n,
           int C,
           int H,
           int W,
           int K,
           int P,
           int OH,
           int OW)
{
    stream_of(s);
    DEV(col);
    DEV(dx);
    EACH(rows, k_col2im(i, col, dx, n, C, H, W, K, P, OH, OW));
}

cudaError_t
wqk_nchw_to_cn(cudaStream_t s, long rows, const float *src, float *dst, int n, int C, long hw)
{
    stream_of(s);
    DEV(src);
    DEV(dst);
    EACH(rows, k_nchw_to_cn(i, src, dst, n, C, hw));
}

cudaError_t
wqk_cn_to_nchw(cudaStream_t s, long rows, const float *src, float *dst, int n, int C, long hw)
{
    stream_of(s);
    DEV(src);
    DEV(dst);
    EACH(rows, k_cn_to_nchw(i, src, dst, n, C, hw));
}

cudaError_t
wqk_sgd_momentum(cudaStream_t s, long n, float *p, const float *g, float *v, float lr, float mu)
{
    stream_of(s);
    DEV(p);
    DEV(g);
    DEV(v);
    EACH(n, k_sgd_momentum(i, p, g, v, lr, mu));
}

cudaError_t
wqk_adam(cudaStream_t s,
         long n,
         float *p,
         const float *g,
         float *m,
         float *v,
         float lr,
         float b1,
         float b2,
         float eps,
         float bc1,
         float bc2)
{
    stream_of(s);
    DEV(p);
    DEV(g);
    DEV(m);
    DEV(v);
    EACH(n, k_adam(i, p, g, m, v, lr, b1, b2, eps, bc1, bc2));
}

/* ---- helpers ------------------------------------------------------------------------------- */

static rng_t rng = {31337};

static void
fill(float *a, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        a[i] = lo + (hi - lo) * rng_uniform(&rng);
}

static void
close_to(const char *what, const float *ref, const float *got, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++)
        if (fabs((double) got[i] - ref[i]) > tol * (1 + fabs(ref[i])))
            fail_msg("%s[%zu]: cpu %.9g, cuda engine %.9g", what, i, ref[i], got[i]);
}

/* ---- dlayers.c vs layers.c ------------------------------------------------------------- */

/* A device copy of host data (through the stand-ins' copy, so kinds are checked too). */
static float *
to_dev(cudaStream_t st, const float *h, size_t n)
{
    void *d;
    assert_int_equal(cudaMalloc(&d, sizeof(float) * n), cudaSuccess);
    assert_int_equal(cudaMemcpyAsync(d, h, sizeof(float) * n, cudaMemcpyHostToDevice, st),
                     cudaSuccess);
    return d;
}

static void
from_dev(cudaStream_t st, float *h, const float *d, size_t n)
{
    assert_int_equal(cudaMemcpyAsync(h, d, sizeof(float) * n, cudaMemcpyDeviceToHost, st),
                     cudaSuccess);
    assert_int_equal(cudaStreamSynchronize(st), cudaSuccess);
}

static void
check_layer(layer_t *L, int n)
{
    size_t nx = (size_t) n * (size_t) layer_in_size(L),
           ny = (size_t) n * (size_t) layer_out_size(L);
    size_t np = L->n_w + L->n_b + 1, ns = layer_scratch_floats(L, n) + 1;
    L->w_off = 0;
    L->b_off = L->n_w;
    float *p = malloc(sizeof(float) * np), *x = malloc(sizeof(float) * nx);
    float *dy = malloc(sizeof(float) * ny);
    float *g1 = malloc(sizeof(float) * np), *g2 = malloc(sizeof(float) * np);
    float *y1 = malloc(sizeof(float) * ny), *y2 = malloc(sizeof(float) * ny);
    float *dx1 = malloc(sizeof(float) * nx), *dx2 = malloc(sizeof(float) * nx);
    float *s1 = malloc(sizeof(float) * ns);
    fill(p, np, -0.5f, 0.5f);
    fill(x, nx, -1, 1);
    fill(dy, ny, -1, 1);
    fill(g1, np, -0.1f, 0.1f);
    cudaStream_t st;
    assert_int_equal(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), cudaSuccess);
    dctx_t d = {.blas = (cublasHandle_t) &token, .stream = st};
    float *dp = to_dev(st, p, np), *dxin = to_dev(st, x, nx), *ddy = to_dev(st, dy, ny);
    float *dg = to_dev(st, g1, np), *dout = to_dev(st, y1, ny), *ddx = to_dev(st, dx1, nx);
    float *ds = to_dev(st, s1, ns);
    wq_error_t err;
    layer_forward(L, n, p, x, y1, s1);
    layer_backward(L, n, p, g1, x, dy, dx1, s1);
    assert_int_equal(dlayer_forward(&d, L, n, dp, dxin, dout, ds, &err), 0);
    assert_int_equal(dlayer_backward(&d, L, n, dp, dg, dxin, ddy, ddx, ds, &err), 0);
    from_dev(st, y2, dout, ny);
    from_dev(st, dx2, ddx, nx);
    from_dev(st, g2, dg, np);
    close_to("y", y1, y2, ny, 1e-5);
    close_to("dx", dx1, dx2, nx, 1e-5);
    close_to("dparams", g1, g2, np - 1, 1e-5);
    float *dev[] = {dp, dxin, ddy, dg, dout, ddx, ds};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        cudaFree(dev[i]);
    cudaStreamDestroy(st);
    free(p);
    free(x);
    free(dy);
    free(g1);
    free(g2);
    free(y1);
    free(y2);
    free(dx1);
    free(dx2);
    free(s1);
}

static void
test_layers(void **state)
{
    (void) state;
    layer_t lin = {.kind = LAYER_LINEAR, .c = 13, .h = 1, .w = 1, .oc = 7, .oh = 1, .ow = 1};
    lin.n_w = 13 * 7;
    lin.n_b = 7;
    check_layer(&lin, 5);
    layer_t conv = {.kind = LAYER_CONV, .c = 3, .h = 6, .w = 5, .oc = 4, .oh = 6, .ow = 5};
    conv.k = 3;
    conv.pad = 1;
    conv.n_w = 4 * 3 * 9;
    conv.n_b = 4;
    check_layer(&conv, 2);
    layer_t v = {.kind = LAYER_CONV, .c = 2, .h = 7, .w = 8, .oc = 3, .oh = 3, .ow = 4};
    v.k = 5;
    v.n_w = 3 * 2 * 25;
    v.n_b = 3;
    check_layer(&v, 3);
    layer_t relu = {.kind = LAYER_RELU, .c = 4, .h = 3, .w = 3, .oc = 4, .oh = 3, .ow = 3};
    check_layer(&relu, 3);
    layer_t pool = {.kind = LAYER_MAXPOOL, .c = 3, .h = 7, .w = 6, .oc = 3, .oh = 3, .ow = 3};
    pool.k = 2;
    check_layer(&pool, 2);
}

/* ---- a device-memory transport that records what it is handed --------------------------- */

#define MAX_CALLS 64

static struct {
    int calls;
    size_t off[MAX_CALLS], n[MAX_CALLS];
    float *snap[MAX_CALLS]; /* the bucket's contents when handed over */
    size_t first_off;       /* where the plan's first bucket starts */
    const float *base;      /* the engine's gradient buffer, found from the first call */
    int waits;
} rec;

static int
rec_dev_allreduce(comm_t *c, float *dbuf, size_t n, comm_op_t op, void *after, wq_error_t *err)
{
    (void) c, (void) err;
    assert_int_equal(op, COMM_AVG);
    assert_non_null(after);
    assert_true(rec.calls < MAX_CALLS);
    int k = rec.calls++;
    if (!rec.base)
        rec.base = dbuf - rec.first_off;
    rec.n[k] = n;
    rec.snap[k] = malloc(sizeof(float) * n);
    memcpy(rec.snap[k], dbuf, sizeof(float) * n);
    rec.off[k] = (size_t) (dbuf - rec.base);
    return 0;
}

static int
rec_wait(comm_t *c, wq_error_t *err)
{
    (void) c, (void) err;
    rec.waits++;
    return 0;
}

static int
rec_host(comm_t *c, float *buf, size_t n, comm_op_t op, wq_error_t *err)
{
    (void) c, (void) buf, (void) n, (void) op, (void) err;
    return 0;
}

static int
rec_bcast(comm_t *c, void *buf, size_t bytes, int root, wq_error_t *err)
{
    (void) c, (void) buf, (void) bytes, (void) root, (void) err;
    return 0;
}

static void
rec_noop(comm_t *c)
{
    (void) c;
}

static const comm_ops_t rec_ops = {
    .name = "recorder",
    .allreduce = rec_host,
    .broadcast = rec_bcast,
    .barrier = rec_wait,
    .abort = rec_noop,
    .destroy = rec_noop,
    .dev_allreduce = rec_dev_allreduce,
    .dev_wait = rec_wait,
};

/* A host transport (no device memory, so the engine stages gradients through host memory):
 * the average over one rank, reading every value and writing it back as a ring would. */
static int host_calls;

static int
host_avg(comm_t *c, float *buf, size_t n, comm_op_t op, wq_error_t *err)
{
    (void) err;
    assert_int_equal(op, COMM_AVG);
    for (size_t i = 0; i < n; i++)
        buf[i] = buf[i] / (float) c->world;
    host_calls++;
    return 0;
}

static int
host_barrier(comm_t *c, wq_error_t *err)
{
    (void) c, (void) err;
    return 0;
}

static const comm_ops_t host_ops = {
    .name = "host",
    .allreduce = host_avg,
    .broadcast = rec_bcast,
    .barrier = host_barrier,
    .abort = rec_noop,
    .destroy = rec_noop,
};

/* run_engines' transport for the CUDA engine */
enum { VIA_SELF, VIA_RECORDER, VIA_HOST };

static model_t *
make(model_kind_t kind, int batch)
{
    model_spec_t spec = {.kind = kind, .in_c = 1, .in_h = 12, .in_w = 12, .classes = 10};
    if (kind == MODEL_CNN) {
        spec.n_conv = 2;
        spec.conv[0] = 4;
        spec.conv[1] = 6;
        spec.n_hidden = 1;
        spec.hidden[0] = 16;
        spec.kernel = 3;
    } else {
        spec.n_hidden = 2;
        spec.hidden[0] = 32;
        spec.hidden[1] = 16;
    }
    wq_error_t err;
    model_t *m = model_new(&spec, batch, &err);
    assert_non_null(m);
    model_init_params(m, 11);
    return m;
}

/* 4 Adam steps of 2 micro-batches through both engines; buckets recorded when rec_comm. */
static void
run_engines(model_kind_t kind, int transport)
{
    enum { B = 6, STEPS = 4, PX = 144 };
    watch_faults();
    model_t *a = make(kind, B), *b = make(kind, B);
    optim_t *oa = optim_new(OPTIM_ADAM, a->n_params, 1e-2f, 0.9f);
    optim_t *ob = optim_new(OPTIM_ADAM, b->n_params, 1e-2f, 0.9f);
    comm_opts_t o;
    memset(&o, 0, sizeof o);
    o.world = 1;
    wq_error_t err;
    comm_t *self = comm_init(&o, &err);
    comm_t *recc = calloc(1, sizeof *recc);
    recc->ops = &rec_ops;
    recc->world = 1;
    recc->timeout_ms = 1000;
    memset(&rec, 0, sizeof rec);
    /* 1 KiB buckets: these small models get two, so the overlap logic is exercised. */
    setenv("WSLQ_BUCKET_KB", "1", 1);
    engine_bucket_t plan[ENGINE_MAX_BUCKETS];
    int nb = engine_plan_buckets(b, 2, 1024, 1024, plan);
    assert_true(nb >= 2);
    rec.first_off = plan[0].off;
    engine_t *cpu = engine_cpu_new(a, oa, self);
    comm_t *hostc = calloc(1, sizeof *hostc);
    hostc->ops = &host_ops;
    hostc->world = 1;
    hostc->timeout_ms = 1000;
    host_calls = 0;
    int use_recorder = transport == VIA_RECORDER;
    engine_t *gpu = engine_cuda_new(b, ob,
                                    use_recorder            ? recc
                                    : transport == VIA_HOST ? hostc
                                                            : self,
                                    0, &err);
    assert_non_null(gpu);
    float x[2 * B * PX];
    unsigned char y[2 * B];
    for (int s = 0; s < STEPS; s++) {
        fill(x, sizeof x / sizeof x[0], -0.5f, 2.0f);
        for (int i = 0; i < 2 * B; i++)
            y[i] = (unsigned char) rng_below(&rng, 10);
        float lc, lg;
        int sc, sg;
        cpu->stop = gpu->stop = s == STEPS - 1;
        int before = rec.calls;
        for (int k = 0; k < 2; k++) {
            assert_int_equal(cpu->ops->micro(cpu, x + k * B * PX, y + k * B, B, 0.5f / B, k, &err),
                             0);
            assert_int_equal(gpu->ops->micro(gpu, x + k * B * PX, y + k * B, B, 0.5f / B, k, &err),
                             0);
            if (use_recorder && k == 0)
                assert_int_equal(rec.calls, before); /* nothing before the last micro-batch */
        }
        size_t np = a->n_params;
        if (use_recorder) {
            /* The whole plan, in order, once this step, and every bucket already holding its
             * final gradients when handed over: equal to the cpu engine's gradients after
             * the whole backward (a->grads, before its finish). */
            assert_int_equal(rec.calls - before, nb);
            for (int i = 0; i < nb; i++) {
                int k = before + i;
                assert_int_equal(rec.off[k], plan[i].off);
                assert_int_equal(rec.n[k], plan[i].n);
                size_t upto = plan[i].off + plan[i].n > np ? np - plan[i].off : plan[i].n;
                close_to("bucket at hand-over", a->grads + plan[i].off, rec.snap[k], upto, 1e-5);
            }
        }
        assert_int_equal(cpu->ops->finish(cpu, &lc, &sc, &err), 0);
        assert_int_equal(gpu->ops->finish(gpu, &lg, &sg, &err), 0);
        if (use_recorder) {
            /* The loss and stop flag ride at the end of the first bucket. */
            const float *ex = rec.snap[before] + (np - plan[0].off);
            assert_true(fabsf(ex[0] - lc) <= 1e-5f * (1 + fabsf(lc)));
            assert_true(ex[1] == (s == STEPS - 1 ? 1.0f : 0.0f));
        }
        assert_true(fabsf(lc - lg) <= 1e-5f * (1 + fabsf(lc)));
        assert_int_equal(sc, s == STEPS - 1);
        assert_int_equal(sg, s == STEPS - 1);
    }
    assert_int_equal(gpu->ops->pull(gpu, &err), 0);
    close_to("params", a->params, b->params, a->n_params, 1e-5);
    close_to("adam m", oa->m, ob->m, a->n_params, 1e-5);
    int hc, hg;
    double lsc = 0, lsg = 0;
    assert_int_equal(cpu->ops->evaluate(cpu, x, y, B, &hc, &lsc, &err), 0);
    assert_int_equal(gpu->ops->evaluate(gpu, x, y, B, &hg, &lsg, &err), 0);
    assert_int_equal(hc, hg);
    assert_true(fabs(lsc - lsg) <= 1e-5 * (1 + fabs(lsc)));
    /* push: host parameters changed by hand reach the device. */
    b->params[0] += 1.0f;
    assert_int_equal(gpu->ops->push(gpu, &err), 0);
    b->params[0] = 0.0f;
    assert_int_equal(gpu->ops->pull(gpu, &err), 0);
    assert_true(fabsf(b->params[0] - (a->params[0] + 1.0f)) < 1e-5f);
    if (use_recorder)
        assert_int_equal(rec.waits, STEPS);
    if (transport == VIA_HOST)
        assert_int_equal(host_calls, STEPS);
    for (int i = 0; i < rec.calls; i++)
        free(rec.snap[i]);
    unsetenv("WSLQ_BUCKET_KB");
    engine_destroy(&gpu);
    engine_destroy(&cpu);
    comm_destroy(&self);
    free(recc);
    free(hostc);
    optim_destroy(&oa);
    optim_destroy(&ob);
    model_destroy(&a);
    model_destroy(&b);
}

static void
test_engine_mlp(void **state)
{
    (void) state;
    run_engines(MODEL_MLP, VIA_SELF);
}

static void
test_engine_cnn(void **state)
{
    (void) state;
    run_engines(MODEL_CNN, VIA_SELF);
}

/* A host transport: gradients go down to pinned host memory, through the all-reduce, and back
 * up, with the waits that needs. */
static void
test_staged(void **state)
{
    (void) state;
    run_engines(MODEL_MLP, VIA_HOST);
    run_engines(MODEL_CNN, VIA_HOST);
}

static void
test_buckets(void **state)
{
    (void) state;
    run_engines(MODEL_MLP, VIA_RECORDER);
    run_engines(MODEL_CNN, VIA_RECORDER);
}

static void
test_pageable(void **state)
{
    (void) state;
    pinned_fails = 1;
    pinned_calls = 0;
    run_engines(MODEL_MLP, VIA_SELF);
    run_engines(MODEL_MLP, VIA_HOST);
    assert_true(pinned_calls >= 1);
    pinned_fails = 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layers),     cmocka_unit_test(test_engine_mlp),
        cmocka_unit_test(test_engine_cnn), cmocka_unit_test(test_staged),
        cmocka_unit_test(test_buckets),    cmocka_unit_test(test_pageable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
