/* The trainer's CPU arithmetic against PyTorch: every layer kind and both default nets, a few
 * SGD and Adam steps, compared with numbers PyTorch computed from the same inputs
 * (torch_ref_steps.h, written by torch_ref_steps.py, which says how to regenerate it; CI needs
 * no PyTorch). An independent implementation is what catches a rule both of our backends get
 * wrong the same way: the CUDA engine is only ever compared with this CPU code.
 *
 *   layers   linear, conv 3x3 pad 1, conv 5x5 pad 0 and pad 2: y, dx, dW, db of the first
 *            step; 3 SGD and 3 Adam steps on loss = sum(y * r): each loss and every parameter
 *   relu, maxpool   y and dx
 *   nets     default MLP and CNN, batch 16, cross-entropy, 4 SGD and 4 Adam steps: each mean
 *            loss, and per parameter tensor sum(p - p0) and sum(|p - p0|)
 *
 * Tolerances: |ours - torch| <= ATOL + RTOL * |torch| with RTOL 1e-4 and ATOL 1e-5 for layer
 * values and losses; for the nets' per-tensor sums, SUM_RTOL (3e-4) of that tensor's
 * sum(|p - p0|). Measured on x86-64 (OpenBLAS, PyTorch 1.13): the largest layer difference is 2%
 * of its tolerance, the nets' under 0.5%; the margin is for other BLAS kernels summing in
 * another order. The sums rather than every parameter for the nets: Adam's first step is
 * lr * sign(g), so a gradient within rounding of zero may flip one parameter by 2 lr.
 *
 * Breaks this catches (each checked, tests/mutations.md): Adam without the first-moment bias
 * correction (bc1 = 1 in optim_bias_corrections, train/optim.c: the linear layer's second Adam
 * loss is off by 150 times its tolerance, the MLP's by 16 times, the CNN's by 6,000 times);
 * SGD with dampening (v = mu v + (1 - mu) g in k_sgd_momentum, train/kernels.h). */
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

#include "train/layers.h"
#include "train/model.h"
#include "train/optim.h"
#include "train/tests/torch_ref_steps.h"

#define RTOL     1e-4
#define ATOL     1e-5
#define SUM_RTOL 3e-4

/* ---- the inputs, as torch_ref_steps.py makes them ---------------------------------------- */

static uint32_t
h32(uint32_t seed, uint32_t i)
{
    uint32_t h = i * 0x9E3779B1u + seed * 0x85EBCA77u + 0x165667B1u;
    h ^= h >> 15;
    h *= 0x2C1B3C6Du;
    h ^= h >> 12;
    h *= 0x297A2D39u;
    h ^= h >> 15;
    return h;
}

/* k / 2^23 - 1 for a 24-bit k, times a power of two: every step exact in float. */
static void
gen(uint32_t seed, float *out, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (float) ((int32_t) (h32(seed, (uint32_t) i) >> 8) - 8388608) *
                 (1.0f / 8388608.0f) * scale;
}

static const float *
ref(const char *name, int n)
{
    for (size_t i = 0; i < sizeof torch_ref_arrays / sizeof torch_ref_arrays[0]; i++)
        if (strcmp(torch_ref_arrays[i].name, name) == 0) {
            if (torch_ref_arrays[i].n != n)
                fail_msg("%s: the reference has %d values, the test computes %d", name,
                         torch_ref_arrays[i].n, n);
            return torch_ref_arrays[i].v;
        }
    fail_msg("%s: not in torch_ref_steps.h (regenerate it)", name);
    return NULL;
}

static double worst_rel; /* largest difference seen, relative to ATOL + RTOL |ref| */

static void
close_to(const char *name, const float *got, int n)
{
    const float *want = ref(name, n);
    for (int i = 0; i < n; i++) {
        double d = fabs((double) got[i] - want[i]), lim = ATOL + RTOL * fabs(want[i]);
        if (d / lim > worst_rel)
            worst_rel = d / lim;
        if (!(d <= lim))
            fail_msg("%s[%d]: ours %.9g, torch %.9g (difference %.3g, allowed %.3g)", name, i,
                     got[i], want[i], d, lim);
    }
}

/* ---- layers ------------------------------------------------------------------------------- */

static layer_t
layer_of(const torch_ref_layer_t *c)
{
    layer_t L;
    memset(&L, 0, sizeof L);
    L.kind = (layer_kind_t) c->kind;
    L.c = c->c;
    L.h = c->h;
    L.w = c->w;
    L.oc = c->oc;
    L.k = c->k;
    L.pad = c->pad;
    L.oh = c->h;
    L.ow = c->w;
    if (L.kind == LAYER_CONV) {
        L.oh = c->h + 2 * c->pad - c->k + 1;
        L.ow = c->w + 2 * c->pad - c->k + 1;
        L.n_w = (size_t) c->oc * c->c * c->k * c->k;
        L.n_b = (size_t) c->oc;
    } else if (L.kind == LAYER_MAXPOOL) {
        L.oh = c->h / c->k;
        L.ow = c->w / c->k;
    } else if (L.kind == LAYER_LINEAR) {
        L.n_w = (size_t) c->oc * c->c;
        L.n_b = (size_t) c->oc;
    }
    L.w_off = 0;
    L.b_off = L.n_w;
    return L;
}

static void
run_layer(const torch_ref_layer_t *c)
{
    layer_t L = layer_of(c);
    int n = c->batch;
    size_t nx = (size_t) n * (size_t) layer_in_size(&L),
           ny = (size_t) n * (size_t) layer_out_size(&L);
    size_t np = L.n_w + L.n_b;
    float *x = calloc(nx, sizeof(float)), *r = calloc(ny, sizeof(float));
    float *y = calloc(ny, sizeof(float)), *dx = calloc(nx, sizeof(float));
    float *p = calloc(np + 1, sizeof(float)), *g = calloc(np + 1, sizeof(float));
    float *scratch = calloc(layer_scratch_floats(&L, n) + 1, sizeof(float));
    char name[96];
    if (np == 0) {
        gen(c->seed + 1, x, nx, TORCH_REF_X_SCALE);
        gen(c->seed + 2, r, ny, TORCH_REF_R_SCALE);
        layer_forward(&L, n, p, x, y, scratch);
        layer_backward(&L, n, p, g, x, r, dx, scratch);
        snprintf(name, sizeof name, "%s/y", c->name);
        close_to(name, y, (int) ny);
        snprintf(name, sizeof name, "%s/dx", c->name);
        close_to(name, dx, (int) nx);
    }
    for (int opt = 0; opt < 2 && np > 0; opt++) {
        optim_t *o = opt == 0 ? optim_new(OPTIM_SGD, np, TORCH_REF_SGD_LR, TORCH_REF_SGD_MOM)
                              : optim_new(OPTIM_ADAM, np, TORCH_REF_ADAM_LR, 0.0f);
        const char *on = opt == 0 ? "sgd" : "adam";
        gen(c->seed + 3, p, L.n_w, TORCH_REF_W_SCALE);
        gen(c->seed + 4, p + L.n_w, L.n_b, TORCH_REF_B_SCALE);
        float loss[TORCH_REF_STEPS_LAYER];
        for (int s = 0; s < TORCH_REF_STEPS_LAYER; s++) {
            gen(c->seed + 10 * (uint32_t) s + 1, x, nx, TORCH_REF_X_SCALE);
            gen(c->seed + 10 * (uint32_t) s + 2, r, ny, TORCH_REF_R_SCALE);
            layer_forward(&L, n, p, x, y, scratch);
            double sum = 0;
            for (size_t i = 0; i < ny; i++)
                sum += (double) y[i] * r[i];
            loss[s] = (float) sum;
            memset(g, 0, sizeof(float) * np);
            layer_backward(&L, n, p, g, x, r, dx, scratch);
            if (s == 0 && opt == 0) {
                snprintf(name, sizeof name, "%s/y", c->name);
                close_to(name, y, (int) ny);
                snprintf(name, sizeof name, "%s/dx", c->name);
                close_to(name, dx, (int) nx);
                snprintf(name, sizeof name, "%s/dw", c->name);
                close_to(name, g, (int) L.n_w);
                snprintf(name, sizeof name, "%s/db", c->name);
                close_to(name, g + L.n_w, (int) L.n_b);
            }
            optim_step(o, p, g);
        }
        snprintf(name, sizeof name, "%s/%s/loss", c->name, on);
        close_to(name, loss, TORCH_REF_STEPS_LAYER);
        snprintf(name, sizeof name, "%s/%s/params", c->name, on);
        close_to(name, p, (int) np);
        optim_destroy(&o);
    }
    free(x);
    free(r);
    free(y);
    free(dx);
    free(p);
    free(g);
    free(scratch);
}

static void
test_layers(void **state)
{
    (void) state;
    for (size_t i = 0; i < sizeof torch_ref_layers / sizeof torch_ref_layers[0]; i++)
        run_layer(&torch_ref_layers[i]);
    printf("layers: largest difference %.2f of the tolerance (PyTorch %s)\n", worst_rel,
           TORCH_REF_VERSION);
}

/* ---- nets ----------------------------------------------------------------------------------- */

static model_t *
make_net(const torch_ref_net_t *net)
{
    model_spec_t spec = {.kind = MODEL_MLP, .in_c = 1, .in_h = 28, .in_w = 28, .classes = 10};
    if (strcmp(net->name, "cnn") == 0) {
        spec.kind = MODEL_CNN;
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
    model_t *m = model_new(&spec, TORCH_REF_NET_BATCH, &err);
    assert_non_null(m);
    int t = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const layer_t *L = &m->layers[i];
        if (!L->n_w)
            continue;
        assert_true(t + 1 < net->n_tensors);
        gen(net->seed + 100 + (uint32_t) t, m->params + L->w_off, L->n_w, net->scale[t]);
        t++;
        gen(net->seed + 100 + (uint32_t) t, m->params + L->b_off, L->n_b, net->scale[t]);
        t++;
    }
    assert_int_equal(t, net->n_tensors);
    return m;
}

static void
run_net(const torch_ref_net_t *net)
{
    enum { B = TORCH_REF_NET_BATCH };
    for (int opt = 0; opt < 2; opt++) {
        model_t *m = make_net(net);
        float *p0 = malloc(sizeof(float) * m->n_params);
        memcpy(p0, m->params, sizeof(float) * m->n_params);
        optim_t *o = opt == 0 ? optim_new(OPTIM_SGD, m->n_params, TORCH_REF_NET_SGD_LR,
                                          TORCH_REF_NET_SGD_MOM)
                              : optim_new(OPTIM_ADAM, m->n_params, TORCH_REF_NET_ADAM_LR, 0.0f);
        const char *on = opt == 0 ? "sgd" : "adam";
        static float x[B * 784];
        unsigned char y[B];
        float loss[TORCH_REF_STEPS_NET];
        for (int s = 0; s < TORCH_REF_STEPS_NET; s++) {
            gen(net->seed + 10 * (uint32_t) s + 1, x, B * 784, TORCH_REF_X_SCALE);
            for (uint32_t i = 0; i < B; i++)
                y[i] = (unsigned char) (h32(net->seed + 10 * (uint32_t) s + 2, i) % 10);
            model_forward(m, x, B);
            memset(m->grads, 0, sizeof(float) * m->n_params);
            loss[s] = (float) (model_backward(m, y, B, 1.0f / B) / B);
            optim_step(o, m->params, m->grads);
        }
        char name[64];
        snprintf(name, sizeof name, "%s/%s/loss", net->name, on);
        close_to(name, loss, TORCH_REF_STEPS_NET);

        /* Per tensor: the signed and absolute movement, each within SUM_RTOL of the absolute
         * movement (the scale of its rounding). */
        double sd[8] = {0}, sa[8] = {0};
        int t = 0;
        for (int i = 0; i < m->n_layers; i++) {
            const layer_t *L = &m->layers[i];
            if (!L->n_w)
                continue;
            size_t off[2] = {L->w_off, L->b_off}, cnt[2] = {L->n_w, L->n_b};
            for (int k = 0; k < 2; k++, t++)
                for (size_t j = off[k]; j < off[k] + cnt[k]; j++) {
                    double d = (double) m->params[j] - p0[j];
                    sd[t] += d;
                    sa[t] += fabs(d);
                }
        }
        snprintf(name, sizeof name, "%s/%s/sum_delta", net->name, on);
        const float *wd = ref(name, t);
        snprintf(name, sizeof name, "%s/%s/sum_abs_delta", net->name, on);
        const float *wa = ref(name, t);
        for (int k = 0; k < t; k++) {
            double lim = SUM_RTOL * wa[k] + 1e-9;
            if (!(fabs(sa[k] - wa[k]) <= lim) || !(fabs(sd[k] - wd[k]) <= lim))
                fail_msg("%s %s tensor %d: sum(p - p0) ours %.9g torch %.9g, sum(|p - p0|) ours "
                         "%.9g torch %.9g (allowed %.3g)",
                         net->name, on, k, sd[k], wd[k], sa[k], wa[k], lim);
            double rel = fmax(fabs(sa[k] - wa[k]), fabs(sd[k] - wd[k])) / lim;
            if (rel > worst_rel)
                worst_rel = rel;
        }
        free(p0);
        optim_destroy(&o);
        model_destroy(&m);
    }
}

static void
test_mlp(void **state)
{
    (void) state;
    worst_rel = 0;
    run_net(&torch_ref_nets[0]);
    printf("mlp: largest difference %.2f of the tolerance\n", worst_rel);
}

static void
test_cnn(void **state)
{
    (void) state;
    worst_rel = 0;
    run_net(&torch_ref_nets[1]);
    printf("cnn: largest difference %.2f of the tolerance\n", worst_rel);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layers),
        cmocka_unit_test(test_mlp),
        cmocka_unit_test(test_cnn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
