/* CPU-side pieces of the GPU path, tested where CI can run them:
 *
 *   buckets       the all-reduce bucket plan tiles the gradient buffer exactly, last layer
 *                 first, extras in the first bucket, caps respected, same plan every time
 *   pick_device   LOCAL_RANK within CUDA_VISIBLE_DEVICES, forced index, clear errors
 *   row_kernels   the per-row loss/hit functions and the loss accumulator the CUDA engine
 *                 runs (kernels.h) give exactly what the CPU's layer_xent / model_evaluate /
 *                 training loop compute
 *   engine_cpu    the cpu engine's step equals the model_* + optim_step sequence it wraps */
/* cmocka.h needs these first. */
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
#include "train/engine.h"
#include "train/kernels.h"
#include "train/layers.h"
#include "train/model.h"
#include "train/optim.h"
#include "train/rng.h"

static model_t *
make(model_kind_t kind, int batch)
{
    model_spec_t spec = {.kind = kind, .in_c = 1, .in_h = 28, .in_w = 28, .classes = 10};
    if (kind == MODEL_CNN) {
        spec.n_conv = 2;
        spec.conv[0] = 32;
        spec.conv[1] = 64;
        spec.n_hidden = 1;
        spec.hidden[0] = 128;
        spec.kernel = 3;
    } else {
        spec.n_hidden = 2;
        spec.hidden[0] = 256;
        spec.hidden[1] = 128;
    }
    wq_error_t err;
    model_t *m = model_new(&spec, batch, &err);
    assert_non_null(m);
    return m;
}

/* The plan covers [0, n_params + extra) with no gap or overlap, going down. */
static void
check_plan(const model_t *m, const engine_bucket_t *b, int nb, size_t extra)
{
    assert_true(nb >= 1 && nb <= ENGINE_MAX_BUCKETS);
    size_t hi = m->n_params + extra;
    int last_layer = m->n_layers;
    for (int i = 0; i < nb; i++) {
        assert_int_equal(b[i].off + b[i].n, hi);
        assert_true(b[i].n > 0);
        assert_true(b[i].layer < last_layer);
        assert_true(m->layers[b[i].layer].n_w > 0);
        /* A bucket is ready after its layer's backward: it holds no gradient of a lower layer,
         * except the final one, which waits for the lowest layer with parameters. */
        if (i < nb - 1)
            assert_int_equal(b[i].off, m->layers[b[i].layer].w_off);
        last_layer = b[i].layer;
        hi = b[i].off;
    }
    assert_int_equal(hi, 0);
}

static void
test_buckets(void **state)
{
    (void) state;
    engine_bucket_t b[ENGINE_MAX_BUCKETS];
    model_t *mlp = make(MODEL_MLP, 4), *cnn = make(MODEL_CNN, 4);

    /* Default caps (1 MiB first, 4 MiB after): the MLP (0.94 MB) is one bucket; the CNN's
     * 1.6 MB fc layer closes the first, the convs make the second, which overlaps nothing
     * but the conv backward is where the time goes. */
    int nb = engine_plan_buckets(mlp, 2, 1 << 20, 4 << 20, b);
    assert_int_equal(nb, 1);
    check_plan(mlp, b, nb, 2);
    nb = engine_plan_buckets(cnn, 2, 1 << 20, 4 << 20, b);
    assert_int_equal(nb, 2);
    check_plan(cnn, b, nb, 2);
    assert_int_equal(b[0].off, cnn->layers[b[0].layer].w_off);
    assert_int_equal(cnn->layers[b[0].layer].kind, LAYER_LINEAR);
    assert_int_equal(cnn->layers[b[1].layer].kind, LAYER_CONV);

    /* Tiny caps: one bucket per layer with parameters, in backward order. */
    nb = engine_plan_buckets(cnn, 2, 1, 1, b);
    check_plan(cnn, b, nb, 2);
    assert_int_equal(nb, 4); /* conv, conv, fc, fc */
    assert_int_equal(b[0].n, cnn->layers[b[0].layer].n_w + cnn->layers[b[0].layer].n_b + 2);
    /* Huge caps: one bucket. */
    nb = engine_plan_buckets(cnn, 2, (size_t) 1 << 40, (size_t) 1 << 40, b);
    assert_int_equal(nb, 1);
    check_plan(cnn, b, nb, 2);
    model_destroy(&mlp);
    model_destroy(&cnn);
}

static void
test_pick_device(void **state)
{
    (void) state;
    wq_error_t err;
    int dev = -1;
    assert_int_equal(engine_pick_device(3, 1, -1, &dev, &err), 0); /* wslq: one GPU per rank */
    assert_int_equal(dev, 0);
    assert_int_equal(engine_pick_device(1, 2, -1, &dev, &err), 0); /* torchrun-style */
    assert_int_equal(dev, 1);
    assert_int_equal(engine_pick_device(0, 4, 2, &dev, &err), 0); /* --cuda-device 2 */
    assert_int_equal(dev, 2);
    assert_int_equal(engine_pick_device(2, 2, -1, &dev, &err), -1);
    assert_non_null(strstr(err.text, "LOCAL_RANK 2, but only 2 CUDA devices are visible"));
    assert_int_equal(engine_pick_device(0, 2, 5, &dev, &err), -1);
    assert_non_null(strstr(err.text, "CUDA device 5 asked for"));
    assert_int_equal(engine_pick_device(0, 0, -1, &dev, &err), -1);
    assert_non_null(strstr(err.text, "no CUDA device"));
}

static void
test_row_kernels(void **state)
{
    (void) state;
    enum { N = 7, C = 10 };
    rng_t r = {99};
    float z[N * C], dz1[N * C], dz2[N * C], loss[N];
    unsigned char y[N];
    for (int i = 0; i < N * C; i++)
        z[i] = 6.0f * rng_uniform(&r) - 3.0f;
    for (int i = 0; i < N; i++)
        y[i] = (unsigned char) rng_below(&r, C);
    double cpu = layer_xent(z, y, N, C, 0.25f, dz1);
    for (long i = 0; i < N; i++)
        k_xent_row(i, z, y, C, 0.25f, dz2, loss);
    assert_memory_equal(dz1, dz2, sizeof dz1);
    double acc = 0;
    k_loss_accum(0, loss, N, &acc);
    assert_true(acc == cpu); /* same order, same precision: identical */
    k_loss_accum(0, loss, N, &acc);
    assert_true(acc == cpu + cpu);
    float extra[2];
    k_grad_extras(0, &acc, 0.125f, 1.0f, extra);
    assert_true(extra[0] == (float) ((cpu + cpu) * 0.125f));
    assert_true(extra[1] == 1.0f);
    assert_true(acc == 0.0);
    int hit[N], hits = 0;
    for (long i = 0; i < N; i++) {
        k_hit_row(i, z, y, C, hit);
        hits += hit[i];
        assert_int_equal(hit[i], k_argmax_hit(i, z, y, C));
    }
    assert_true(hits >= 0 && hits <= N);
}

/* The cpu engine is a thin wrapper: two steps through it equal two steps done by hand. */
static void
test_engine_cpu(void **state)
{
    (void) state;
    enum { B = 8 };
    model_t *a = make(MODEL_MLP, B), *b = make(MODEL_MLP, B);
    model_init_params(a, 5);
    model_init_params(b, 5);
    optim_t *oa = optim_new(OPTIM_ADAM, a->n_params, 1e-3f, 0.9f);
    optim_t *ob = optim_new(OPTIM_ADAM, b->n_params, 1e-3f, 0.9f);
    comm_opts_t o;
    memset(&o, 0, sizeof o);
    o.world = 1;
    wq_error_t err;
    comm_t *c = comm_init(&o, &err);
    engine_t *e = engine_cpu_new(a, oa, c);
    float x[B * 784];
    unsigned char y[B];
    rng_t r = {7};
    for (int i = 0; i < B * 784; i++)
        x[i] = rng_uniform(&r);
    for (int i = 0; i < B; i++)
        y[i] = (unsigned char) rng_below(&r, 10);
    for (int s = 0; s < 2; s++) {
        float loss;
        int stop;
        e->stop = s == 1;
        assert_int_equal(e->ops->micro(e, x, y, B, 1.0f / B, 1, &err), 0);
        assert_int_equal(e->ops->finish(e, &loss, &stop, &err), 0);
        model_forward(b, x, B);
        double l = model_backward(b, y, B, 1.0f / B);
        optim_step(ob, b->params, b->grads);
        memset(b->grads, 0, sizeof(float) * (b->n_params + MODEL_GRAD_EXTRA));
        assert_true(loss == (float) (l * (1.0f / B)));
        assert_int_equal(stop, s == 1);
    }
    assert_memory_equal(a->params, b->params, sizeof(float) * a->n_params);
    engine_destroy(&e);
    comm_destroy(&c);
    optim_destroy(&oa);
    optim_destroy(&ob);
    model_destroy(&a);
    model_destroy(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_pick_device),
        cmocka_unit_test(test_row_kernels),
        cmocka_unit_test(test_engine_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
