/* CUDA backend against the CPU backend, layer by layer and for whole training steps (ctest
 * label gpu; exit 77 when no CUDA device is usable). Same layer_t, same inputs, results
 * compared element by element with these tolerances:
 *
 *   relu, maxpool (fwd/bwd)      identical: the same kernels.h code; kernels.cu is built
 *                                without FMA contraction, the host compiler does not contract
 *   softmax-CE dz, row losses    |gpu - cpu| <= 1e-6 * (1 + |cpu|): expf/logf differ by ulps
 *   linear, conv (fwd/bwd)       |gpu - cpu| <= 1e-4 * (|cpu| + rms(cpu)): cuBLAS and OpenBLAS
 *                                sum the GEMM products in different orders (FP32, no TF32)
 *   SGD / Adam update            |gpu - cpu| <= 1e-6 * (1 + |cpu|) (expected identical)
 *   whole MLP / CNN, 3 SGD steps losses within 1e-4 relative, parameters within 1e-5
 *
 * Every layer kind is covered with the shapes the reference models use and with odd ones
 * (non-square images, 5x5 kernels without padding, ragged pooling edges). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/comm.h"
#include "train/cuda/cuerr.h"
#include "train/cuda/device.h"
#include "train/cuda/dlayers.h"
#include "train/cuda/engine_cuda.h"
#include "train/cuda/launch.h"
#include "train/engine.h"
#include "train/kernels.h"
#include "train/layers.h"
#include "train/model.h"
#include "train/optim.h"
#include "train/rng.h"

static int failures;
static rng_t rng = {2024};
static dctx_t d;

/* Setup that must work for the comparisons to mean anything; uses the caller's err. */
#define REQUIRE(what, call)                                     \
    do {                                                        \
        if (!(call)) {                                          \
            fprintf(stderr, "FAIL %s: %s\n", (what), err.text); \
            exit(1);                                            \
        }                                                       \
    } while (0)

static void
fill(float *a, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        a[i] = lo + (hi - lo) * rng_uniform(&rng);
}

static float *
to_dev(const float *h, size_t n)
{
    float *p = NULL;
    wq_error_t err;
    if (!CU_OK(&err, cudaMalloc((void **) &p, sizeof(float) * (n ? n : 1))) ||
        (n && !CU_OK(&err, cudaMemcpy(p, h, sizeof(float) * n, cudaMemcpyHostToDevice)))) {
        fprintf(stderr, "FAIL upload: %s\n", err.text);
        exit(1);
    }
    return p;
}

static void
from_dev(float *h, const float *p, size_t n)
{
    wq_error_t err;
    if (!CU_OK(&err, cudaStreamSynchronize(d.stream)) ||
        !CU_OK(&err, cudaMemcpy(h, p, sizeof(float) * n, cudaMemcpyDeviceToHost))) {
        fprintf(stderr, "FAIL download: %s\n", err.text);
        exit(1);
    }
}

/* kind 0: identical; 1: 1e-6 * (1 + |ref|); 2: 1e-4 * (|ref| + rms(ref)). */
static void
compare(const char *what, const float *ref, const float *got, size_t n, int kind)
{
    double ss = 0, worst = 0;
    for (size_t i = 0; i < n; i++)
        ss += (double) ref[i] * ref[i];
    double rms = n ? sqrt(ss / (double) n) : 0;
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double) got[i] - ref[i]);
        double tol = kind == 0   ? 0.0
                     : kind == 1 ? 1e-6 * (1 + fabs(ref[i]))
                                 : 1e-4 * (fabs(ref[i]) + rms);
        worst = diff > worst ? diff : worst;
        if (diff > tol && !bad++)
            first = i;
    }
    if (bad) {
        fprintf(stderr,
                "FAIL %s: %zu of %zu elements out of tolerance, first [%zu] cpu %.9g gpu %.9g\n",
                what, bad, n, first, ref[first], got[first]);
        failures++;
    }
    printf("%-34s %8zu elements, largest |gpu - cpu| %.3g\n", what, n, worst);
}

static void
check_layer(const char *name, layer_t *L, int n, int tol)
{
    size_t nx = (size_t) n * (size_t) layer_in_size(L),
           ny = (size_t) n * (size_t) layer_out_size(L);
    size_t np = L->n_w + L->n_b, ns = layer_scratch_floats(L, n);
    L->w_off = 0;
    L->b_off = L->n_w;
    float *params = malloc(sizeof(float) * (np + 1)), *grads = malloc(sizeof(float) * (np + 1));
    float *x = malloc(sizeof(float) * nx), *dy = malloc(sizeof(float) * ny);
    float *y = malloc(sizeof(float) * ny), *dx = malloc(sizeof(float) * nx);
    float *scratch = malloc(sizeof(float) * (ns ? ns : 1));
    float *gy = malloc(sizeof(float) * ny), *gdx = malloc(sizeof(float) * nx);
    float *gg = malloc(sizeof(float) * (np + 1));
    fill(params, np, -0.5f, 0.5f);
    fill(grads, np, -0.1f, 0.1f); /* backward must ADD to what is there */
    fill(x, nx, -1.0f, 1.0f);
    fill(dy, ny, -1.0f, 1.0f);
    float *dp = to_dev(params, np), *dg = to_dev(grads, np), *dxin = to_dev(x, nx);
    float *ddy = to_dev(dy, ny), *dyo = NULL, *ddx = NULL, *ds = NULL;
    wq_error_t err;
    REQUIRE("alloc", CU_OK(&err, cudaMalloc((void **) &dyo, sizeof(float) * ny)) &&
                         CU_OK(&err, cudaMalloc((void **) &ddx, sizeof(float) * nx)) &&
                         CU_OK(&err, cudaMalloc((void **) &ds, sizeof(float) * (ns ? ns : 1))));

    layer_forward(L, n, params, x, y, scratch);
    layer_backward(L, n, params, grads, x, dy, dx, scratch);
    REQUIRE(name, dlayer_forward(&d, L, n, dp, dxin, dyo, ds, &err) == 0);
    REQUIRE(name, dlayer_backward(&d, L, n, dp, dg, dxin, ddy, ddx, ds, &err) == 0);
    from_dev(gy, dyo, ny);
    from_dev(gdx, ddx, nx);
    from_dev(gg, dg, np);
    char what[96];
    snprintf(what, sizeof what, "%s forward", name);
    compare(what, y, gy, ny, tol);
    snprintf(what, sizeof what, "%s dx", name);
    compare(what, dx, gdx, nx, tol);
    if (np) {
        snprintf(what, sizeof what, "%s dparams", name);
        compare(what, grads, gg, np, tol);
    }
    cudaFree(dp);
    cudaFree(dg);
    cudaFree(dxin);
    cudaFree(ddy);
    cudaFree(dyo);
    cudaFree(ddx);
    cudaFree(ds);
    free(params);
    free(grads);
    free(x);
    free(dy);
    free(y);
    free(dx);
    free(scratch);
    free(gy);
    free(gdx);
    free(gg);
}

static void
test_layers(void)
{
    layer_t lin = {.kind = LAYER_LINEAR, .c = 13, .h = 1, .w = 1, .oc = 7, .oh = 1, .ow = 1};
    lin.n_w = 13 * 7;
    lin.n_b = 7;
    check_layer("linear 13->7", &lin, 5, 2);
    layer_t big = {.kind = LAYER_LINEAR, .c = 784, .h = 1, .w = 1, .oc = 256, .oh = 1, .ow = 1};
    big.n_w = 784 * 256;
    big.n_b = 256;
    check_layer("linear 784->256 batch 64", &big, 64, 2);
    layer_t conv = {.kind = LAYER_CONV, .c = 3, .h = 6, .w = 5, .oc = 4, .oh = 6, .ow = 5};
    conv.k = 3;
    conv.pad = 1;
    conv.n_w = 4 * 3 * 9;
    conv.n_b = 4;
    check_layer("conv 3->4 6x5 k3 p1", &conv, 2, 2);
    layer_t v = {.kind = LAYER_CONV, .c = 2, .h = 7, .w = 8, .oc = 3, .oh = 3, .ow = 4};
    v.k = 5;
    v.n_w = 3 * 2 * 25;
    v.n_b = 3;
    check_layer("conv 2->3 7x8 k5 p0", &v, 2, 2);
    layer_t c2 = {.kind = LAYER_CONV, .c = 32, .h = 14, .w = 14, .oc = 64, .oh = 14, .ow = 14};
    c2.k = 3;
    c2.pad = 1;
    c2.n_w = 64 * 32 * 9;
    c2.n_b = 64;
    check_layer("conv 32->64 14x14 k3 p1 batch 16", &c2, 16, 2);
    layer_t relu = {.kind = LAYER_RELU, .c = 4, .h = 3, .w = 3, .oc = 4, .oh = 3, .ow = 3};
    check_layer("relu", &relu, 3, 0);
    layer_t pool = {.kind = LAYER_MAXPOOL, .c = 3, .h = 7, .w = 6, .oc = 3, .oh = 3, .ow = 3};
    pool.k = 2;
    check_layer("maxpool 7x6 (ragged)", &pool, 2, 0);
}

static void
test_xent_and_optim(void)
{
    enum { N = 64, C = 10, P = 5000 };
    float z[N * C], dz[N * C], gdz[N * C], gl[N];
    unsigned char y[N];
    fill(z, N * C, -4.0f, 4.0f);
    for (int i = 0; i < N; i++)
        y[i] = (unsigned char) rng_below(&rng, C);
    float cl[N];
    for (long r = 0; r < N; r++)
        cl[r] = k_softmax_xent_row(r, z, y, C, 1.0f / N, dz);
    float *dzv = to_dev(z, N * C), *ddz = to_dev(dz, N * C), *dl = to_dev(cl, N);
    unsigned char *dy = NULL;
    wq_error_t err;
    REQUIRE("labels", CU_OK(&err, cudaMalloc((void **) &dy, N)) &&
                          CU_OK(&err, cudaMemcpy(dy, y, N, cudaMemcpyHostToDevice)));
    REQUIRE("xent", CU_OK(&err, wqk_xent_row(d.stream, N, dzv, dy, C, 1.0f / N, ddz, dl)));
    from_dev(gdz, ddz, N * C);
    from_dev(gl, dl, N);
    compare("softmax-CE dz", dz, gdz, N * C, 1);
    compare("softmax-CE row losses", cl, gl, N, 1);

    float p[P], g[P], m[P], v[P], p2[P], m2[P], v2[P], gp[P], gm[P], gv[P];
    fill(p, P, -1, 1);
    fill(g, P, -0.1f, 0.1f);
    fill(m, P, -0.01f, 0.01f);
    fill(v, P, 0, 0.001f);
    for (int kind = 0; kind < 2; kind++) {
        memcpy(p2, p, sizeof p);
        memcpy(m2, m, sizeof m);
        memcpy(v2, v, sizeof v);
        float *dp = to_dev(p, P), *dg = to_dev(g, P), *dm = to_dev(m, P), *dv = to_dev(v, P);
        if (kind == 0) {
            for (long i = 0; i < P; i++)
                k_sgd_momentum(i, p2, g, m2, 0.01f, 0.9f);
            REQUIRE("sgd", CU_OK(&err, wqk_sgd_momentum(d.stream, P, dp, dg, dm, 0.01f, 0.9f)));
        } else {
            for (long i = 0; i < P; i++)
                k_adam(i, p2, g, m2, v2, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.271f, 0.0039f);
            REQUIRE("adam", CU_OK(&err, wqk_adam(d.stream, P, dp, dg, dm, dv, 1e-3f, 0.9f, 0.999f,
                                                 1e-8f, 0.271f, 0.0039f)));
        }
        from_dev(gp, dp, P);
        from_dev(gm, dm, P);
        from_dev(gv, dv, P);
        compare(kind ? "adam params" : "sgd params", p2, gp, P, 1);
        compare(kind ? "adam m" : "sgd velocity", m2, gm, P, 1);
        if (kind)
            compare("adam v", v2, gv, P, 1);
        cudaFree(dp);
        cudaFree(dg);
        cudaFree(dm);
        cudaFree(dv);
    }
    cudaFree(dzv);
    cudaFree(ddz);
    cudaFree(dl);
    cudaFree(dy);
}

/* Three SGD steps of a whole model through both engines (world 1), then an evaluation. */
static void
test_model(model_kind_t kind, int dev)
{
    enum { B = 16, STEPS = 3 };
    model_spec_t spec = {.kind = kind, .in_c = 1, .in_h = 28, .in_w = 28, .classes = 10};
    if (kind == MODEL_CNN) {
        spec.n_conv = 2;
        spec.conv[0] = 8;
        spec.conv[1] = 16;
        spec.n_hidden = 1;
        spec.hidden[0] = 32;
        spec.kernel = 3;
    } else {
        spec.n_hidden = 2;
        spec.hidden[0] = 256;
        spec.hidden[1] = 128;
    }
    wq_error_t err;
    model_t *a = model_new(&spec, B, &err), *b = model_new(&spec, B, &err);
    model_init_params(a, 3);
    model_init_params(b, 3);
    optim_t *oa = optim_new(OPTIM_SGD, a->n_params, 0.01f, 0.9f);
    optim_t *ob = optim_new(OPTIM_SGD, b->n_params, 0.01f, 0.9f);
    comm_opts_t o;
    memset(&o, 0, sizeof o);
    o.world = 1;
    o.timeout_ms = 10000;
    comm_t *c = comm_init(&o, &err);
    engine_t *cpu = engine_cpu_new(a, oa, c);
    engine_t *gpu = engine_cuda_new(b, ob, c, dev, &err);
    REQUIRE("engine_cuda_new", gpu != NULL);
    float *x = malloc(sizeof(float) * B * 784);
    unsigned char y[B];
    float lc[STEPS], lg[STEPS];
    for (int s = 0; s < STEPS; s++) {
        fill(x, (size_t) B * 784, -0.5f, 2.0f);
        for (int i = 0; i < B; i++)
            y[i] = (unsigned char) rng_below(&rng, 10);
        int stop;
        /* Two micro-batches per step: accumulation and the loss sum across them. */
        REQUIRE("cpu step", cpu->ops->micro(cpu, x, y, B / 2, 1.0f / B, 0, &err) == 0 &&
                                cpu->ops->micro(cpu, x + B / 2 * 784, y + B / 2, B / 2, 1.0f / B, 1,
                                                &err) == 0 &&
                                cpu->ops->finish(cpu, &lc[s], &stop, &err) == 0);
        REQUIRE("gpu step", gpu->ops->micro(gpu, x, y, B / 2, 1.0f / B, 0, &err) == 0 &&
                                gpu->ops->micro(gpu, x + B / 2 * 784, y + B / 2, B / 2, 1.0f / B, 1,
                                                &err) == 0 &&
                                gpu->ops->finish(gpu, &lg[s], &stop, &err) == 0);
    }
    REQUIRE("pull", gpu->ops->pull(gpu, &err) == 0);
    char what[64];
    snprintf(what, sizeof what, "%s losses (3 steps)", kind == MODEL_CNN ? "cnn" : "mlp");
    for (int s = 0; s < STEPS; s++)
        if (fabsf(lg[s] - lc[s]) > 1e-4f * fabsf(lc[s])) {
            fprintf(stderr, "FAIL %s: step %d cpu %.9g gpu %.9g\n", what, s + 1, lc[s], lg[s]);
            failures++;
        }
    printf("%-34s cpu %.6f %.6f %.6f, gpu %.6f %.6f %.6f\n", what, lc[0], lc[1], lc[2], lg[0],
           lg[1], lg[2]);
    double worst = 0;
    for (size_t i = 0; i < a->n_params; i++) {
        double diff = fabs((double) a->params[i] - b->params[i]);
        worst = diff > worst ? diff : worst;
    }
    snprintf(what, sizeof what, "%s params after 3 steps", kind == MODEL_CNN ? "cnn" : "mlp");
    printf("%-34s %8zu params, largest |gpu - cpu| %.3g\n", what, a->n_params, worst);
    if (worst > 1e-5) {
        fprintf(stderr, "FAIL %s: %.3g > 1e-5\n", what, worst);
        failures++;
    }
    int hc = 0, hg = 0;
    double sc = 0, sg = 0;
    REQUIRE("evaluate", cpu->ops->evaluate(cpu, x, y, B, &hc, &sc, &err) == 0 &&
                            gpu->ops->evaluate(gpu, x, y, B, &hg, &sg, &err) == 0);
    if (fabs(sc - sg) > 1e-4 * fabs(sc)) {
        fprintf(stderr, "FAIL evaluate: loss cpu %.9g gpu %.9g (hits %d, %d)\n", sc, sg, hc, hg);
        failures++;
    }
    engine_destroy(&gpu);
    engine_destroy(&cpu);
    comm_destroy(&c);
    optim_destroy(&oa);
    optim_destroy(&ob);
    model_destroy(&a);
    model_destroy(&b);
    free(x);
}

int
main(void)
{
    char why[256];
    if (cuda_device_count(why, sizeof why) == 0) {
        printf("skipped: no usable CUDA device: %s\n", why);
        return 77;
    }
    int dev;
    wq_error_t err;
    REQUIRE("device", cuda_open_device(0, -1, &dev, &err) == 0);
    char desc[160];
    cuda_describe(dev, desc, sizeof desc);
    printf("device %s\n", desc);
    REQUIRE("stream", CU_OK(&err, cudaStreamCreate(&d.stream)) &&
                          BLAS_OK(&err, cublasCreate(&d.blas)) &&
                          BLAS_OK(&err, cublasSetStream(d.blas, d.stream)));
    test_layers();
    test_xent_and_optim();
    test_model(MODEL_MLP, dev);
    test_model(MODEL_CNN, dev);
    cublasDestroy(d.blas);
    cudaStreamDestroy(d.stream);
    if (failures) {
        fprintf(stderr, "%d comparison(s) failed\n", failures);
        return 1;
    }
    return 0;
}
