/* The CUDA engine's own code (cuda/engine_cuda.c, cuda/dlayers.c) executed on the CPU, so the
 * GPU path's logic is tested where CI runs: this file provides a host stand-in for every CUDA
 * runtime and cuBLAS call those two files make, and for the kernel launchers. "Device"
 * pointers are host memory, launchers run their kernels.h function in a loop (what the
 * kernels do, minus the grid), cublasSgemm is a column-major reference GEMM that checks its
 * arguments the way cuBLAS documents them (so a row-major/column-major operand mix-up or a
 * wrong leading dimension fails here), copies are memcpy, streams and events are tokens. No
 * CUDA library is linked: a call this file does not provide fails the link.
 *
 *   layers        dlayers.c vs layers.c for linear, conv (3x3 p1, 5x5 p0) relu, maxpool
 *   engine        the CUDA engine vs the CPU engine, MLP and CNN, Adam, 2 micro-batches per
 *                 step, 4 steps, evaluation, pull/push: same losses and parameters (1e-5)
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
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int pinned_fails; /* cudaHostAlloc reports out of memory */
static int pinned_calls;
static int token; /* streams, events, handles point here */

cudaError_t
cudaMalloc(void **p, size_t bytes)
{
    *p = malloc(bytes);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t
cudaFree(void *p)
{
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
    *p = malloc(bytes);
    return cudaSuccess;
}

cudaError_t
cudaFreeHost(void *p)
{
    free(p);
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
    assert_non_null(s);
    memset(p, v, bytes);
    return cudaSuccess;
}

cudaError_t
cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind, cudaStream_t s)
{
    (void) kind;
    assert_non_null(s);
    memcpy(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t
cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags)
{
    (void) flags;
    *s = (cudaStream_t) &token;
    return cudaSuccess;
}

cudaError_t
cudaStreamSynchronize(cudaStream_t s)
{
    (void) s;
    return cudaSuccess;
}

cudaError_t
cudaStreamDestroy(cudaStream_t s)
{
    (void) s;
    return cudaSuccess;
}

cudaError_t
cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int flags)
{
    (void) flags;
    *e = (cudaEvent_t) &token;
    return cudaSuccess;
}

cudaError_t
cudaEventRecord(cudaEvent_t e, cudaStream_t s)
{
    assert_non_null(e);
    assert_non_null(s);
    return cudaSuccess;
}

cudaError_t
cudaEventSynchronize(cudaEvent_t e)
{
    assert_non_null(e);
    return cudaSuccess;
}

cudaError_t
cudaEventDestroy(cudaEvent_t e)
{
    (void) e;
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
    (void) s;
    EACH(n, k_relu_fwd(i, x, y));
}

cudaError_t
wqk_relu_bwd(cudaStream_t s, long n, const float *x, const float *dy, float *dx)
{
    (void) s;
    EACH(n, k_relu_bwd(i, x, dy, dx));
}

cudaError_t
wqk_bias_add(cudaStream_t s, long rows, float *y, const float *b, long inner, long nb)
{
    (void) s;
    EACH(rows, k_bias_add(i, y, b, inner, nb));
}

cudaError_t
wqk_bias_grad_rows(cudaStream_t s, long m, const float *dy, float *db, long n)
{
    (void) s;
    EACH(m, k_bias_grad_rows(i, dy, db, n, m));
}

cudaError_t
wqk_bias_grad_cols(cudaStream_t s, long c, const float *dyt, float *db, long len)
{
    (void) s;
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
    (void) s;
    EACH(n, k_xent_row(i, logits, labels, C, gscale, dz, loss));
}

cudaError_t
wqk_hit_row(
    cudaStream_t s, long n, const float *logits, const unsigned char *labels, int C, int *hit)
{
    (void) s;
    EACH(n, k_hit_row(i, logits, labels, C, hit));
}

cudaError_t
wqk_loss_accum(cudaStream_t s, const float *loss, long n, double *acc)
{
    (void) s;
    EACH(1, k_loss_accum(i, loss, n, acc));
}

cudaError_t
wqk_grad_extras(cudaStream_t s, double *acc, float gscale, float stop, float *extra)
{
    (void) s;
    EACH(1, k_grad_extras(i, acc, gscale, stop, extra));
}

cudaError_t
wqk_maxpool_fwd(
    cudaStream_t s, long rows, const float *x, float *y, int H, int W, int OH, int OW, int k)
{
    (void) s;
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
    (void) s;
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
    (void) s;
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
    (void) s;
    EACH(rows, k_col2im(i, col, dx, n, C, H, W, K, P, OH, OW));
}

cudaError_t
wqk_nchw_to_cn(cudaStream_t s, long rows, const float *src, float *dst, int n, int C, long hw)
{
    (void) s;
    EACH(rows, k_nchw_to_cn(i, src, dst, n, C, hw));
}

cudaError_t
wqk_cn_to_nchw(cudaStream_t s, long rows, const float *src, float *dst, int n, int C, long hw)
{
    (void) s;
    EACH(rows, k_cn_to_nchw(i, src, dst, n, C, hw));
}

cudaError_t
wqk_sgd_momentum(cudaStream_t s, long n, float *p, const float *g, float *v, float lr, float mu)
{
    (void) s;
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
    (void) s;
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
    float *s1 = malloc(sizeof(float) * ns), *s2 = malloc(sizeof(float) * ns);
    fill(p, np, -0.5f, 0.5f);
    fill(x, nx, -1, 1);
    fill(dy, ny, -1, 1);
    fill(g1, np, -0.1f, 0.1f);
    memcpy(g2, g1, sizeof(float) * np);
    dctx_t d = {.blas = (cublasHandle_t) &token, .stream = (cudaStream_t) &token};
    wq_error_t err;
    layer_forward(L, n, p, x, y1, s1);
    layer_backward(L, n, p, g1, x, dy, dx1, s1);
    assert_int_equal(dlayer_forward(&d, L, n, p, x, y2, s2, &err), 0);
    assert_int_equal(dlayer_backward(&d, L, n, p, g2, x, dy, dx2, s2, &err), 0);
    close_to("y", y1, y2, ny, 1e-5);
    close_to("dx", dx1, dx2, nx, 1e-5);
    close_to("dparams", g1, g2, np - 1, 1e-5);
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
    free(s2);
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
run_engines(model_kind_t kind, int use_recorder)
{
    enum { B = 6, STEPS = 4, PX = 144 };
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
    engine_t *gpu = engine_cuda_new(b, ob, use_recorder ? recc : self, 0, &err);
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
    for (int i = 0; i < rec.calls; i++)
        free(rec.snap[i]);
    unsetenv("WSLQ_BUCKET_KB");
    engine_destroy(&gpu);
    engine_destroy(&cpu);
    comm_destroy(&self);
    free(recc);
    optim_destroy(&oa);
    optim_destroy(&ob);
    model_destroy(&a);
    model_destroy(&b);
}

static void
test_engine_mlp(void **state)
{
    (void) state;
    run_engines(MODEL_MLP, 0);
}

static void
test_engine_cnn(void **state)
{
    (void) state;
    run_engines(MODEL_CNN, 0);
}

static void
test_buckets(void **state)
{
    (void) state;
    run_engines(MODEL_MLP, 1);
    run_engines(MODEL_CNN, 1);
}

static void
test_pageable(void **state)
{
    (void) state;
    pinned_fails = 1;
    pinned_calls = 0;
    run_engines(MODEL_MLP, 0);
    assert_true(pinned_calls >= 1);
    pinned_fails = 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layers),     cmocka_unit_test(test_engine_mlp),
        cmocka_unit_test(test_engine_cnn), cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_pageable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
