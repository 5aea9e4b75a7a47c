#include "train/optim.h"

#include <math.h>
#include <stdlib.h>

#include "common/mem.h"
#include "train/kernels.h"

optim_t *
optim_new(optim_kind_t kind, size_t n, float lr, float momentum)
{
    optim_t *o = wq_calloc(1, sizeof *o);
    o->kind = kind;
    o->lr = lr;
    o->momentum = momentum;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
    o->n = n;
    o->m = wq_calloc(n ? n : 1, sizeof(float));
    o->v = wq_calloc(n ? n : 1, sizeof(float));
    return o;
}

void
optim_destroy(optim_t **op)
{
    optim_t *o = *op;
    if (!o)
        return;
    free(o->m);
    free(o->v);
    free(o);
    *op = NULL;
}

void
optim_bias_corrections(const optim_t *o, float *bc1, float *bc2)
{
    /* In double, once per step, so late steps do not lose them to rounding. */
    *bc1 = (float) (1.0 - pow(o->beta1, (double) o->t));
    *bc2 = (float) (1.0 - pow(o->beta2, (double) o->t));
}

void
optim_step(optim_t *o, float *params, const float *grads)
{
    o->t++;
    long n = (long) o->n;
    if (o->kind == OPTIM_SGD) {
        for (long i = 0; i < n; i++)
            k_sgd_momentum(i, params, grads, o->m, o->lr, o->momentum);
        return;
    }
    float bc1, bc2;
    optim_bias_corrections(o, &bc1, &bc2);
    for (long i = 0; i < n; i++)
        k_adam(i, params, grads, o->m, o->v, o->lr, o->beta1, o->beta2, o->eps, bc1, bc2);
}

const char *
optim_name(optim_kind_t kind)
{
    return kind == OPTIM_SGD ? "sgd" : "adam";
}
