/* Model construction and the whole-network passes of the CPU backend. */
#include "train/model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "train/kernels.h"
#include "train/rng.h"

int
model_parse_widths(const char *s, const char *what, int *out, int *n, wq_error_t *err)
{
    *n = 0;
    const char *p = s;
    if (!*p)
        return wq_fail(err, WQ_EINVAL, "%s: empty list (want e.g. 256,128)", what);
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 1 || v > 65536 || (*end && *end != ','))
            return wq_fail(err, WQ_EINVAL, "%s: '%s' is not a list of widths 1..65536", what, s);
        if (*n == MODEL_MAX_WIDTHS)
            return wq_fail(err, WQ_ELIMIT, "%s: more than %d widths", what, MODEL_MAX_WIDTHS);
        out[(*n)++] = (int) v;
        if (!*end)
            return 0;
        p = end + 1;
    }
}

static layer_t *
push(model_t *m, layer_kind_t kind, int c, int h, int w)
{
    layer_t *L = &m->layers[m->n_layers++];
    memset(L, 0, sizeof *L);
    L->kind = kind;
    L->c = c;
    L->h = h;
    L->w = w;
    L->oc = c;
    L->oh = h;
    L->ow = w;
    return L;
}

static void
add_params(model_t *m, layer_t *L, size_t n_w, size_t n_b)
{
    L->w_off = m->n_params;
    L->n_w = n_w;
    L->b_off = m->n_params + n_w;
    L->n_b = n_b;
    m->n_params += n_w + n_b;
}

/* Append "<sep><tag><v>" to the shape string. */
static void
shape_append(char *s, const char *tag, int v)
{
    size_t len = strlen(s);
    snprintf(s + len, MODEL_SHAPE_LEN - len, "-%s%d", tag, v);
}

model_t *
model_new(const model_spec_t *spec, int max_batch, wq_error_t *err)
{
    if (spec->n_hidden > MODEL_MAX_WIDTHS || spec->n_conv > MODEL_MAX_WIDTHS || max_batch < 1 ||
        spec->in_c < 1 || spec->in_h < 1 || spec->in_w < 1 || spec->classes < 2) {
        wq_fail(err, WQ_EINVAL, "bad model shape");
        return NULL;
    }
    model_t *m = wq_calloc(1, sizeof *m);
    m->spec = *spec;
    int c = spec->in_c, h = spec->in_h, w = spec->in_w;
    if (spec->kind == MODEL_CNN) {
        int k = spec->kernel > 0 ? spec->kernel : 3;
        if (k % 2 == 0 || k > 7) {
            wq_fail(err, WQ_EINVAL, "conv kernel %d: want an odd size up to 7", k);
            goto error;
        }
        m->spec.kernel = k;
        snprintf(m->shape, sizeof m->shape, "cnn:%dx%dx%d-k%d", c, h, w, k);
        for (int i = 0; i < spec->n_conv; i++) {
            if (h < 2 || w < 2) {
                wq_fail(err, WQ_EINVAL, "too many conv layers: the image is %dx%d before conv %d",
                        h, w, i + 1);
                goto error;
            }
            layer_t *L = push(m, LAYER_CONV, c, h, w);
            L->k = k;
            L->pad = (k - 1) / 2;
            L->oc = spec->conv[i];
            add_params(m, L, (size_t) L->oc * c * k * k, (size_t) L->oc);
            c = L->oc;
            push(m, LAYER_RELU, c, h, w);
            L = push(m, LAYER_MAXPOOL, c, h, w);
            L->k = 2;
            L->oh = h / 2;
            L->ow = w / 2;
            h /= 2;
            w /= 2;
            shape_append(m->shape, "c", c);
        }
        c = c * h * w;
        h = w = 1;
    } else {
        c = c * h * w;
        h = w = 1;
        snprintf(m->shape, sizeof m->shape, "mlp:%d", c);
    }
    for (int i = 0; i <= spec->n_hidden; i++) {
        int out = i < spec->n_hidden ? spec->hidden[i] : spec->classes;
        layer_t *L = push(m, LAYER_LINEAR, c, 1, 1);
        L->oc = out;
        add_params(m, L, (size_t) out * c, (size_t) out);
        c = out;
        shape_append(m->shape, spec->kind == MODEL_CNN && i < spec->n_hidden ? "f" : "", c);
        if (i < spec->n_hidden)
            push(m, LAYER_RELU, c, 1, 1);
    }

    m->params = wq_calloc(m->n_params, sizeof(float));
    m->grads = wq_calloc(m->n_params + MODEL_GRAD_EXTRA, sizeof(float));
    m->max_batch = max_batch;
    m->act = wq_calloc((size_t) m->n_layers + 1, sizeof(float *));
    m->dact = wq_calloc((size_t) m->n_layers + 1, sizeof(float *));
    m->scratch = wq_calloc((size_t) m->n_layers, sizeof(float *));
    for (int i = 0; i <= m->n_layers; i++) {
        long sz = i == 0 ? layer_in_size(&m->layers[0]) : layer_out_size(&m->layers[i - 1]);
        m->act[i] = wq_malloc(sizeof(float) * (size_t) sz * (size_t) max_batch);
        m->dact[i] = wq_malloc(sizeof(float) * (size_t) sz * (size_t) max_batch);
        size_t s = i < m->n_layers ? layer_scratch_floats(&m->layers[i], max_batch) : 0;
        if (s)
            m->scratch[i] = wq_malloc(sizeof(float) * s);
    }
    return m;
error:
    free(m);
    return NULL;
}

void
model_destroy(model_t **mp)
{
    model_t *m = *mp;
    if (!m)
        return;
    for (int i = 0; i <= m->n_layers; i++) {
        free(m->act[i]);
        free(m->dact[i]);
        if (i < m->n_layers)
            free(m->scratch[i]);
    }
    free(m->act);
    free(m->dact);
    free(m->scratch);
    free(m->params);
    free(m->grads);
    free(m);
    *mp = NULL;
}

void
model_init_params(model_t *m, uint64_t seed)
{
    rng_t r = {seed};
    memset(m->params, 0, sizeof(float) * m->n_params);
    for (int i = 0; i < m->n_layers; i++) {
        const layer_t *L = &m->layers[i];
        if (!L->n_w)
            continue;
        size_t fan_in = L->n_w / (size_t) L->oc;
        float bound = sqrtf(6.0f / (float) fan_in);
        for (size_t j = 0; j < L->n_w; j++)
            m->params[L->w_off + j] = (2.0f * rng_uniform(&r) - 1.0f) * bound;
    }
}

const float *
model_forward(model_t *m, const float *x, int n)
{
    WQ_ASSERT(n >= 1 && n <= m->max_batch);
    memcpy(m->act[0], x, sizeof(float) * (size_t) n * (size_t) layer_in_size(&m->layers[0]));
    for (int i = 0; i < m->n_layers; i++)
        layer_forward(&m->layers[i], n, m->params, m->act[i], m->act[i + 1], m->scratch[i]);
    return m->act[m->n_layers];
}

double
model_backward(model_t *m, const unsigned char *labels, int n, float gscale)
{
    double loss =
        layer_xent(m->act[m->n_layers], labels, n, m->spec.classes, gscale, m->dact[m->n_layers]);
    for (int i = m->n_layers - 1; i >= 0; i--)
        layer_backward(&m->layers[i], n, m->params, m->grads, m->act[i], m->dact[i + 1],
                       i > 0 ? m->dact[i] : NULL, m->scratch[i]);
    return loss;
}

int
model_evaluate(model_t *m, const float *x, const unsigned char *labels, int n, double *loss_sum)
{
    const float *z = model_forward(m, x, n);
    int hits = 0;
    for (long r = 0; r < n; r++)
        hits += k_argmax_hit(r, z, labels, m->spec.classes);
    *loss_sum += layer_xent(z, labels, n, m->spec.classes, 1.0f, NULL);
    return hits;
}
