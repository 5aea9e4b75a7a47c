/* The CUDA engine: engine.h's table over device memory. One compute stream carries everything
 * (uploads, layers, loss, optimizer); NCCL has its own stream in comm_nccl.c, which waits on
 * events recorded here, so gradient buckets reduce while backward continues. */
#include "train/cuda/engine_cuda.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "train/cuda/cuerr.h"
#include "train/cuda/device.h"
#include "train/cuda/dlayers.h"
#include "train/cuda/launch.h"

/* First bucket 1 MiB (reduction starts early, as DDP does), later ones 4 MiB; WSLQ_BUCKET_KB
 * sets both (benchmarks, tests). */
#define FIRST_BUCKET_BYTES (1u << 20)
#define BUCKET_BYTES       (4u << 20)

typedef struct {
    dctx_t d;
    float *params, *grads, *m, *v; /* grads: n_params + MODEL_GRAD_EXTRA floats */
    float **act, **dact, **scratch;
    unsigned char *labels; /* [max_batch] */
    float *row_loss;       /* [max_batch] */
    int *row_hit;          /* [max_batch] */
    double *loss_acc;      /* the step's summed loss so far (k_loss_accum) */

    /* Host staging for transfers, one block: x, labels, row losses, hits, the two extras.
     * Pinned when the driver allows it; WSL caps pinned memory, so pageable is the fallback. */
    void *host;
    int host_pinned;
    float *hx, *hrow, *hextra;
    unsigned char *hy;
    int *hhit;
    float *hgrad; /* staged all-reduce (host transports only): n_params + 2 floats */
    int hgrad_pinned;
    cudaEvent_t staged; /* the last upload from the staging block has completed */
    cudaEvent_t extras; /* the step's loss and stop flag have reached hextra */

    int dev_comm; /* the comm reduces device memory: buckets during backward */
    int n_buckets;
    engine_bucket_t buckets[ENGINE_MAX_BUCKETS];
    cudaEvent_t ready[ENGINE_MAX_BUCKETS]; /* bucket b's gradients are final */
} cuda_t;

static cuda_t *
impl(engine_t *e)
{
    return e->impl;
}

/* ---- memory --------------------------------------------------------------------------- */

/* Zeroed device memory. The memset goes on our stream: the compute stream is non-blocking,
 * so it is not ordered after work on the legacy default stream (plain cudaMemset). */
static int
dev_alloc(cuda_t *g, void *pp, size_t bytes, wq_error_t *err)
{
    void **p = pp;
    *p = NULL;
    if (!CU_OK(err, cudaMalloc(p, bytes ? bytes : 1)))
        return -1;
    return CU_OK(err, cudaMemsetAsync(*p, 0, bytes ? bytes : 1, g->d.stream)) ? 0 : -1;
}

static void *
host_alloc(size_t bytes, int *pinned)
{
    void *p = NULL;
    if (cudaHostAlloc(&p, bytes, cudaHostAllocDefault) == cudaSuccess) {
        *pinned = 1;
        return p;
    }
    cudaGetLastError(); /* clear it: running on pageable memory is fine, only slower */
    log_warn("pinned host memory unavailable, using pageable bytes=%zu", bytes);
    *pinned = 0;
    return wq_calloc(1, bytes);
}

static void
host_free(void *p, int pinned)
{
    if (pinned)
        cudaFreeHost(p);
    else
        free(p);
}

/* ---- transfers ------------------------------------------------------------------------ */

/* x and labels of n samples into act[0] and labels, through the staging block. */
static int
upload_batch(engine_t *e, const float *x, const unsigned char *y, int n, wq_error_t *err)
{
    cuda_t *g = impl(e);
    size_t xb = sizeof(float) * (size_t) n * (size_t) layer_in_size(&e->model->layers[0]);
    /* The previous upload may still be reading the block (it finished long ago in practice:
     * a whole forward/backward ran since). */
    if (!CU_OK(err, cudaEventSynchronize(g->staged)))
        return -1;
    memcpy(g->hx, x, xb);
    memcpy(g->hy, y, (size_t) n);
    if (!CU_OK(err, cudaMemcpyAsync(g->act[0], g->hx, xb, cudaMemcpyHostToDevice, g->d.stream)) ||
        !CU_OK(err, cudaMemcpyAsync(g->labels, g->hy, (size_t) n, cudaMemcpyHostToDevice,
                                    g->d.stream)) ||
        !CU_OK(err, cudaEventRecord(g->staged, g->d.stream)))
        return -1;
    return 0;
}

static int
forward(engine_t *e, int n, wq_error_t *err)
{
    cuda_t *g = impl(e);
    model_t *m = e->model;
    for (int i = 0; i < m->n_layers; i++)
        if (dlayer_forward(&g->d, &m->layers[i], n, g->params, g->act[i], g->act[i + 1],
                           g->scratch[i], err) < 0)
            return -1;
    return 0;
}

/* ---- engine ops -------------------------------------------------------------------------- */

static int
cu_micro(engine_t *e,
         const float *x,
         const unsigned char *y,
         int n,
         float gscale,
         int last,
         wq_error_t *err)
{
    cuda_t *g = impl(e);
    model_t *m = e->model;
    int L = m->n_layers, C = m->spec.classes;
    e->gscale = gscale;
    if (upload_batch(e, x, y, n, err) < 0 || forward(e, n, err) < 0)
        return -1;
    if (!CU_OK(err, wqk_xent_row(g->d.stream, n, g->act[L], g->labels, C, gscale, g->dact[L],
                                 g->row_loss)) ||
        !CU_OK(err, wqk_loss_accum(g->d.stream, g->row_loss, n, g->loss_acc)))
        return -1;
    /* The loss and stop flag go behind the gradients now, so the first bucket (which carries
     * them) can leave as soon as the last layers' gradients are done. */
    if (last && !CU_OK(err, wqk_grad_extras(g->d.stream, g->loss_acc, gscale, e->stop ? 1.0f : 0.0f,
                                            g->grads + m->n_params)))
        return -1;
    int b = 0;
    for (int i = L - 1; i >= 0; i--) {
        if (dlayer_backward(&g->d, &m->layers[i], n, g->params, g->grads, g->act[i], g->dact[i + 1],
                            i > 0 ? g->dact[i] : NULL, g->scratch[i], err) < 0)
            return -1;
        for (; last && g->dev_comm && b < g->n_buckets && g->buckets[b].layer == i; b++) {
            const engine_bucket_t *k = &g->buckets[b];
            if (!CU_OK(err, cudaEventRecord(g->ready[b], g->d.stream)) ||
                comm_dev_allreduce(e->comm, g->grads + k->off, k->n, COMM_AVG, g->ready[b], err) <
                    0)
                return -1;
        }
    }
    return 0;
}

static int
cu_finish(engine_t *e, float *loss, int *stop, wq_error_t *err)
{
    cuda_t *g = impl(e);
    model_t *m = e->model;
    optim_t *o = e->opt;
    size_t np = m->n_params, gb = sizeof(float) * (np + 2);
    if (g->dev_comm) {
        if (comm_dev_wait(e->comm, err) < 0)
            return -1;
    } else {
        /* Host transport: gradients down, all-reduce, back up. */
        if (!CU_OK(err,
                   cudaMemcpyAsync(g->hgrad, g->grads, gb, cudaMemcpyDeviceToHost, g->d.stream)) ||
            !CU_OK(err, cudaStreamSynchronize(g->d.stream)))
            return -1;
        if (comm_allreduce(e->comm, g->hgrad, np + 2, COMM_AVG, err) < 0)
            return -1;
        if (!CU_OK(err,
                   cudaMemcpyAsync(g->grads, g->hgrad, gb, cudaMemcpyHostToDevice, g->d.stream)))
            return -1;
    }
    if (!CU_OK(err, cudaMemcpyAsync(g->hextra, g->grads + np, 2 * sizeof(float),
                                    cudaMemcpyDeviceToHost, g->d.stream)) ||
        !CU_OK(err, cudaEventRecord(g->extras, g->d.stream)))
        return -1;
    o->t++;
    cudaError_t ke;
    if (o->kind == OPTIM_SGD) {
        ke =
            wqk_sgd_momentum(g->d.stream, (long) np, g->params, g->grads, g->m, o->lr, o->momentum);
    } else {
        float bc1, bc2;
        optim_bias_corrections(o, &bc1, &bc2);
        ke = wqk_adam(g->d.stream, (long) np, g->params, g->grads, g->m, g->v, o->lr, o->beta1,
                      o->beta2, o->eps, bc1, bc2);
    }
    if (!CU_OK(err, ke) ||
        !CU_OK(err, cudaMemsetAsync(g->grads, 0, sizeof(float) * (np + MODEL_GRAD_EXTRA),
                                    g->d.stream)) ||
        !CU_OK(err, cudaEventSynchronize(g->extras)))
        return -1;
    *loss = g->hextra[0];
    *stop = g->hextra[1] > 0.0f;
    return 0;
}

static int
cu_evaluate(engine_t *e,
            const float *x,
            const unsigned char *y,
            int n,
            int *hits,
            double *loss_sum,
            wq_error_t *err)
{
    cuda_t *g = impl(e);
    model_t *m = e->model;
    int L = m->n_layers, C = m->spec.classes;
    if (upload_batch(e, x, y, n, err) < 0 || forward(e, n, err) < 0)
        return -1;
    if (!CU_OK(err, wqk_hit_row(g->d.stream, n, g->act[L], g->labels, C, g->row_hit)) ||
        !CU_OK(err,
               wqk_xent_row(g->d.stream, n, g->act[L], g->labels, C, 1.0f, NULL, g->row_loss)) ||
        !CU_OK(err, cudaMemcpyAsync(g->hhit, g->row_hit, sizeof(int) * (size_t) n,
                                    cudaMemcpyDeviceToHost, g->d.stream)) ||
        !CU_OK(err, cudaMemcpyAsync(g->hrow, g->row_loss, sizeof(float) * (size_t) n,
                                    cudaMemcpyDeviceToHost, g->d.stream)) ||
        !CU_OK(err, cudaStreamSynchronize(g->d.stream)))
        return -1;
    /* Summed in row order in double, as layer_xent does on the CPU. */
    double s = 0;
    int h = 0;
    for (int r = 0; r < n; r++) {
        s += g->hrow[r];
        h += g->hhit[r];
    }
    *loss_sum += s;
    *hits = h;
    return 0;
}

/* Copies in stream order (after all queued work), then wait: the host buffers are pageable
 * and are read or reused as soon as these return. */
static int
copy3(cuda_t *g, float **dst, float **src, size_t bytes, enum cudaMemcpyKind kind, wq_error_t *err)
{
    for (int i = 0; i < 3; i++)
        if (!CU_OK(err, cudaMemcpyAsync(dst[i], src[i], bytes, kind, g->d.stream)))
            return -1;
    return CU_OK(err, cudaStreamSynchronize(g->d.stream)) ? 0 : -1;
}

static int
cu_pull(engine_t *e, wq_error_t *err)
{
    cuda_t *g = impl(e);
    float *dst[3] = {e->model->params, e->opt->m, e->opt->v}, *src[3] = {g->params, g->m, g->v};
    return copy3(g, dst, src, sizeof(float) * e->model->n_params, cudaMemcpyDeviceToHost, err);
}

static int
cu_push(engine_t *e, wq_error_t *err)
{
    cuda_t *g = impl(e);
    float *dst[3] = {g->params, g->m, g->v}, *src[3] = {e->model->params, e->opt->m, e->opt->v};
    return copy3(g, dst, src, sizeof(float) * e->model->n_params, cudaMemcpyHostToDevice, err);
}

static void
cu_destroy(engine_t *e)
{
    cuda_t *g = impl(e);
    if (!g)
        return;
    model_t *m = e->model;
    if (g->d.stream)
        cudaStreamSynchronize(g->d.stream);
    for (int i = 0; i <= m->n_layers; i++) {
        if (g->act)
            cudaFree(g->act[i]);
        if (g->dact)
            cudaFree(g->dact[i]);
        if (g->scratch && i < m->n_layers)
            cudaFree(g->scratch[i]);
    }
    free(g->act);
    free(g->dact);
    free(g->scratch);
    cudaFree(g->params);
    cudaFree(g->grads);
    cudaFree(g->m);
    cudaFree(g->v);
    cudaFree(g->labels);
    cudaFree(g->row_loss);
    cudaFree(g->row_hit);
    cudaFree(g->loss_acc);
    if (g->host)
        host_free(g->host, g->host_pinned);
    if (g->hgrad)
        host_free(g->hgrad, g->hgrad_pinned);
    for (int b = 0; b < ENGINE_MAX_BUCKETS; b++)
        if (g->ready[b])
            cudaEventDestroy(g->ready[b]);
    if (g->staged)
        cudaEventDestroy(g->staged);
    if (g->extras)
        cudaEventDestroy(g->extras);
    if (g->d.blas)
        cublasDestroy(g->d.blas);
    if (g->d.stream)
        cudaStreamDestroy(g->d.stream);
    free(g);
    e->impl = NULL;
}

static const engine_ops_t cuda_ops = {
    .name = "cuda",
    .micro = cu_micro,
    .finish = cu_finish,
    .evaluate = cu_evaluate,
    .pull = cu_pull,
    .push = cu_push,
    .destroy = cu_destroy,
};

static size_t
bucket_bytes(size_t dflt)
{
    const char *s = getenv("WSLQ_BUCKET_KB");
    long kb = s && *s ? strtol(s, NULL, 10) : 0;
    return kb > 0 ? (size_t) kb * 1024 : dflt;
}

engine_t *
engine_cuda_new(model_t *m, optim_t *o, comm_t *c, int dev, wq_error_t *err)
{
    engine_t *e = wq_calloc(1, sizeof *e);
    cuda_t *g = wq_calloc(1, sizeof *g);
    e->ops = &cuda_ops;
    e->model = m;
    e->opt = o;
    e->comm = c;
    e->impl = g;
    cuda_describe(dev, e->device, sizeof e->device);
    int B = m->max_batch, L = m->n_layers;
    size_t np = m->n_params, fb = sizeof(float);

    if (!CU_OK(err, cudaStreamCreateWithFlags(&g->d.stream, cudaStreamNonBlocking)) ||
        !BLAS_OK(err, cublasCreate(&g->d.blas)) ||
        !BLAS_OK(err, cublasSetStream(g->d.blas, g->d.stream)) ||
        /* FP32 GEMMs without TF32 tensor-core rounding (which default math never uses for
         * SGEMM unless NVIDIA_TF32_OVERRIDE says so), so results stay comparable with the CPU
         * backend (tolerances in tests/cuda_test.c). */
        !BLAS_OK(err, cublasSetMathMode(g->d.blas, CUBLAS_DEFAULT_MATH)) ||
        !CU_OK(err, cudaEventCreateWithFlags(&g->staged, cudaEventDisableTiming)) ||
        !CU_OK(err, cudaEventCreateWithFlags(&g->extras, cudaEventDisableTiming)))
        goto error;
    if (dev_alloc(g, &g->params, fb * np, err) < 0 ||
        dev_alloc(g, &g->grads, fb * (np + MODEL_GRAD_EXTRA), err) < 0 ||
        dev_alloc(g, &g->m, fb * np, err) < 0 || dev_alloc(g, &g->v, fb * np, err) < 0 ||
        dev_alloc(g, &g->labels, (size_t) B, err) < 0 ||
        dev_alloc(g, &g->row_loss, fb * (size_t) B, err) < 0 ||
        dev_alloc(g, &g->row_hit, sizeof(int) * (size_t) B, err) < 0 ||
        dev_alloc(g, &g->loss_acc, sizeof(double), err) < 0)
        goto error;
    g->act = wq_calloc((size_t) L + 1, sizeof(float *));
    g->dact = wq_calloc((size_t) L + 1, sizeof(float *));
    g->scratch = wq_calloc((size_t) L, sizeof(float *));
    for (int i = 0; i <= L; i++) {
        long sz = i == 0 ? layer_in_size(&m->layers[0]) : layer_out_size(&m->layers[i - 1]);
        size_t s = i < L ? layer_scratch_floats(&m->layers[i], B) : 0;
        if (dev_alloc(g, &g->act[i], fb * (size_t) sz * (size_t) B, err) < 0 ||
            dev_alloc(g, &g->dact[i], fb * (size_t) sz * (size_t) B, err) < 0 ||
            (s && dev_alloc(g, &g->scratch[i], fb * s, err) < 0))
            goto error;
    }

    /* Staging block: x | hrow | hextra (floats), then hhit (ints), then hy (bytes). */
    size_t px = (size_t) layer_in_size(&m->layers[0]), nf = px * (size_t) B + (size_t) B + 2;
    g->host = host_alloc(fb * nf + sizeof(int) * (size_t) B + (size_t) B, &g->host_pinned);
    g->hx = g->host;
    g->hrow = g->hx + px * (size_t) B;
    g->hextra = g->hrow + B;
    g->hhit = (int *) (g->hextra + 2);
    g->hy = (unsigned char *) (g->hhit + B);
    if (!CU_OK(err, cudaEventRecord(g->staged, g->d.stream)))
        goto error;

    g->dev_comm = comm_has_dev(c);
    if (g->dev_comm) {
        g->n_buckets = engine_plan_buckets(m, 2, bucket_bytes(FIRST_BUCKET_BYTES),
                                           bucket_bytes(BUCKET_BYTES), g->buckets);
        for (int b = 0; b < g->n_buckets; b++)
            if (!CU_OK(err, cudaEventCreateWithFlags(&g->ready[b], cudaEventDisableTiming)))
                goto error;
    } else {
        g->hgrad = host_alloc(fb * (np + 2), &g->hgrad_pinned);
    }
    if (cu_push(e, err) < 0)
        goto error;
    return e;
error:
    cu_destroy(e);
    free(e);
    return NULL;
}
