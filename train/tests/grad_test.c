/* Finite-difference gradient checks for every layer kind and the loss, plus a whole small CNN.
 *
 * For a layer we take L = sum(y * r) with fixed random r, so dL/dy = r; backward with dy = r
 * must give dL/dparams and dL/dx. Central differences with step 1e-2 in float: linear and conv
 * are linear in each input (so exact up to rounding); relu and maxpool inputs are kept far
 * from their kinks and ties so the step never crosses one. */
/* cmocka.h needs these first. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* after the standard headers */
#include <cmocka.h>

#include "train/kernels.h"
#include "train/layers.h"
#include "train/model.h"
#include "train/rng.h"

#define EPS 1e-2f

static rng_t rng = {12345};

static void
fill(float *a, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        a[i] = lo + (hi - lo) * rng_uniform(&rng);
}

/* Values away from 0 by at least 0.1, either sign: relu's kink is never crossed. */
static void
fill_away_from_zero(float *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float v = 0.1f + rng_uniform(&rng);
        a[i] = rng_uniform(&rng) < 0.5f ? -v : v;
    }
}

/* Distinct values 0.1 apart in random order: no two pool inputs tie within the step. */
static void
fill_distinct(float *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        a[i] = 0.1f * (float) i - 0.05f * (float) n;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = rng_below(&rng, (uint32_t) i + 1);
        float t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

static double
objective(const layer_t *L,
          int n,
          const float *params,
          const float *x,
          const float *r,
          float *y,
          float *scratch)
{
    layer_forward(L, n, params, x, y, scratch);
    double s = 0;
    for (long i = 0; i < n * layer_out_size(L); i++)
        s += (double) y[i] * r[i];
    return s;
}

static void
check_close(const char *what, size_t idx, double num, double ana)
{
    double tol = 2e-3 + 2e-3 * fabs(ana);
    if (fabs(num - ana) > tol)
        fail_msg("%s[%zu]: finite difference %.6f, backward %.6f", what, idx, num, ana);
}

static void
check_layer(layer_t *L, int n, int input_kind)
{
    size_t nx = (size_t) n * (size_t) layer_in_size(L),
           ny = (size_t) n * (size_t) layer_out_size(L);
    size_t np = L->n_w + L->n_b;
    L->w_off = 0;
    L->b_off = L->n_w;
    float *params = calloc(np + 1, sizeof(float));
    float *grads = calloc(np + 1, sizeof(float));
    float *x = malloc(nx * sizeof(float)), *dx = malloc(nx * sizeof(float));
    float *y = malloc(ny * sizeof(float)), *r = malloc(ny * sizeof(float));
    size_t ns = layer_scratch_floats(L, n);
    float *scratch = malloc((ns ? ns : 1) * sizeof(float));
    fill(params, np, -0.5f, 0.5f);
    if (input_kind == 1)
        fill_away_from_zero(x, nx);
    else if (input_kind == 2)
        fill_distinct(x, nx);
    else
        fill(x, nx, -1.0f, 1.0f);
    fill(r, ny, -1.0f, 1.0f);

    objective(L, n, params, x, r, y, scratch);
    layer_backward(L, n, params, grads, x, r, dx, scratch);

    for (int t = 0; t < 60 && np; t++) {
        size_t j = t < 30 && L->n_w ? rng_below(&rng, (uint32_t) L->n_w)
                                    : L->n_w + rng_below(&rng, (uint32_t) L->n_b);
        float keep = params[j];
        params[j] = keep + EPS;
        double up = objective(L, n, params, x, r, y, scratch);
        params[j] = keep - EPS;
        double down = objective(L, n, params, x, r, y, scratch);
        params[j] = keep;
        check_close(j < L->n_w ? "dW" : "db", j, (up - down) / (2 * EPS), grads[j]);
    }
    for (int t = 0; t < 60; t++) {
        size_t j = rng_below(&rng, (uint32_t) nx);
        float keep = x[j];
        x[j] = keep + EPS;
        double up = objective(L, n, params, x, r, y, scratch);
        x[j] = keep - EPS;
        double down = objective(L, n, params, x, r, y, scratch);
        x[j] = keep;
        check_close("dx", j, (up - down) / (2 * EPS), dx[j]);
    }
    free(params);
    free(grads);
    free(x);
    free(dx);
    free(y);
    free(r);
    free(scratch);
}

static void
test_linear(void **state)
{
    (void) state;
    layer_t L = {.kind = LAYER_LINEAR, .c = 13, .h = 1, .w = 1, .oc = 7, .oh = 1, .ow = 1};
    L.n_w = 13 * 7;
    L.n_b = 7;
    check_layer(&L, 5, 0);
}

static void
test_conv(void **state)
{
    (void) state;
    /* 3 -> 4 channels, 6x5 images (non-square catches h/w mix-ups), 3x3 pad 1, batch 2. */
    layer_t L = {.kind = LAYER_CONV, .c = 3, .h = 6, .w = 5, .oc = 4, .oh = 6, .ow = 5};
    L.k = 3;
    L.pad = 1;
    L.n_w = 4 * 3 * 9;
    L.n_b = 4;
    check_layer(&L, 2, 0);
    /* 5x5 kernel, no padding: output shrinks. */
    layer_t V = {.kind = LAYER_CONV, .c = 2, .h = 7, .w = 8, .oc = 3, .oh = 3, .ow = 4};
    V.k = 5;
    V.pad = 0;
    V.n_w = 3 * 2 * 25;
    V.n_b = 3;
    check_layer(&V, 2, 0);
}

static void
test_relu(void **state)
{
    (void) state;
    layer_t L = {.kind = LAYER_RELU, .c = 4, .h = 3, .w = 3, .oc = 4, .oh = 3, .ow = 3};
    check_layer(&L, 3, 1);
}

static void
test_maxpool(void **state)
{
    (void) state;
    /* Odd size: the last row and column are dropped and must get zero gradient. */
    layer_t L = {.kind = LAYER_MAXPOOL, .c = 3, .h = 7, .w = 6, .oc = 3, .oh = 3, .ow = 3};
    L.k = 2;
    check_layer(&L, 2, 2);
}

static void
test_softmax_xent(void **state)
{
    (void) state;
    enum { N = 6, C = 10 };
    float z[N * C], dz[N * C];
    unsigned char y[N];
    fill(z, N * C, -3.0f, 3.0f);
    for (int i = 0; i < N; i++)
        y[i] = (unsigned char) rng_below(&rng, C);
    double loss = layer_xent(z, y, N, C, 1.0f, dz);
    assert_true(loss > 0);
    for (int j = 0; j < N * C; j++) {
        float keep = z[j];
        z[j] = keep + 1e-2f;
        double up = layer_xent(z, y, N, C, 1.0f, NULL);
        z[j] = keep - 1e-2f;
        double down = layer_xent(z, y, N, C, 1.0f, NULL);
        z[j] = keep;
        check_close("dz", (size_t) j, (up - down) / 2e-2, dz[j]);
    }
    /* Huge logits must not overflow (max-shift). */
    float big[C] = {1000, -1000, 999};
    unsigned char l0 = 0;
    double lb = layer_xent(big, &l0, 1, C, 1.0f, NULL);
    assert_true(isfinite(lb) && lb < 0.32 && lb > 0.31);
}

/* The whole CNN: conv-relu-pool-conv-relu-pool-fc-relu-fc + loss, against finite differences
 * of the mean loss, via model_forward/model_backward (which the trainer runs). */
static void
test_model_cnn(void **state)
{
    (void) state;
    model_spec_t spec = {.kind = MODEL_CNN,
                         .in_c = 1,
                         .in_h = 8,
                         .in_w = 8,
                         .classes = 5,
                         .n_hidden = 1,
                         .hidden = {6},
                         .n_conv = 2,
                         .conv = {3, 4},
                         .kernel = 3};
    enum { N = 3 };
    model_t *m = model_new(&spec, N, NULL);
    assert_non_null(m);
    assert_string_equal(m->shape, "cnn:1x8x8-k3-c3-c4-f6-5");
    model_init_params(m, 7);
    float x[N * 64];
    unsigned char y[N] = {0, 3, 4};
    fill(x, N * 64, -1, 1);
    model_forward(m, x, N);
    memset(m->grads, 0, sizeof(float) * m->n_params);
    model_backward(m, y, N, 1.0f / N);
    float *g = malloc(sizeof(float) * m->n_params);
    memcpy(g, m->grads, sizeof(float) * m->n_params);
    int bad = 0;
    for (int t = 0; t < 80; t++) {
        size_t j = rng_below(&rng, (uint32_t) m->n_params);
        float keep = m->params[j];
        double l[2];
        for (int s = 0; s < 2; s++) {
            m->params[j] = keep + (s ? -1e-2f : 1e-2f);
            model_forward(m, x, N);
            l[s] = layer_xent(m->act[m->n_layers], y, N, 5, 1.0f, NULL) / N;
        }
        m->params[j] = keep;
        double num = (l[0] - l[1]) / 2e-2;
        /* A relu or pool kink may sit inside the step for a few parameters of a whole net:
         * allow a handful of misses, not a pattern. */
        if (fabs(num - g[j]) > 2e-3 + 2e-2 * fabs(g[j]))
            bad++;
    }
    assert_true(bad <= 3);
    free(g);
    model_destroy(&m);
    assert_null(m);
}

static void
test_mlp_shape(void **state)
{
    (void) state;
    model_spec_t spec = {.kind = MODEL_MLP,
                         .in_c = 1,
                         .in_h = 28,
                         .in_w = 28,
                         .classes = 10,
                         .n_hidden = 2,
                         .hidden = {256, 128}};
    model_t *m = model_new(&spec, 4, NULL);
    assert_string_equal(m->shape, "mlp:784-256-128-10");
    assert_int_equal(m->n_params, 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
    model_destroy(&m);
    spec.kind = MODEL_CNN;
    spec.n_conv = 2;
    spec.conv[0] = 32;
    spec.conv[1] = 64;
    spec.n_hidden = 1;
    spec.hidden[0] = 128;
    spec.kernel = 3;
    m = model_new(&spec, 4, NULL);
    assert_string_equal(m->shape, "cnn:1x28x28-k3-c32-c64-f128-10");
    assert_int_equal(m->n_params,
                     32 * 9 + 32 + 64 * 32 * 9 + 64 + 64 * 7 * 7 * 128 + 128 + 128 * 10 + 10);
    model_destroy(&m);
}

static void
test_widths(void **state)
{
    (void) state;
    int w[MODEL_MAX_WIDTHS], n;
    wq_error_t err;
    assert_int_equal(model_parse_widths("256,128", "--hidden", w, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(w[1], 128);
    assert_int_equal(model_parse_widths("256,", "--hidden", w, &n, &err), -1);
    assert_int_equal(model_parse_widths("0", "--hidden", w, &n, &err), -1);
    assert_int_equal(model_parse_widths("12x", "--hidden", w, &n, &err), -1);
    assert_int_equal(model_parse_widths("", "--hidden", w, &n, &err), -1);
    assert_int_equal(model_parse_widths("1,2,3,4,5,6,7,8,9", "--hidden", w, &n, &err), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),       cmocka_unit_test(test_conv),
        cmocka_unit_test(test_relu),         cmocka_unit_test(test_maxpool),
        cmocka_unit_test(test_softmax_xent), cmocka_unit_test(test_model_cnn),
        cmocka_unit_test(test_mlp_shape),    cmocka_unit_test(test_widths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
