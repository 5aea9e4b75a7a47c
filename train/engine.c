/* The CPU engine, the bucket plan and the device choice. */
#include "train/engine.h"

#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

static int
cpu_micro(engine_t *e,
          const float *x,
          const unsigned char *y,
          int n,
          float gscale,
          int last,
          wq_error_t *err)
{
    (void) last, (void) err;
    model_forward(e->model, x, n);
    e->loss += model_backward(e->model, y, n, gscale);
    e->gscale = gscale;
    return 0;
}

static int
cpu_finish(engine_t *e, float *loss, int *stop, wq_error_t *err)
{
    model_t *m = e->model;
    size_t np = m->n_params;
    m->grads[np] = (float) (e->loss * e->gscale);
    m->grads[np + 1] = e->stop ? 1.0f : 0.0f;
    e->loss = 0;
    if (comm_allreduce(e->comm, m->grads, np + 2, COMM_AVG, err) < 0)
        return -1;
    *loss = m->grads[np];
    *stop = m->grads[np + 1] > 0.0f;
    optim_step(e->opt, m->params, m->grads);
    memset(m->grads, 0, sizeof(float) * (np + MODEL_GRAD_EXTRA));
    return 0;
}

static int
cpu_evaluate(engine_t *e,
             const float *x,
             const unsigned char *y,
             int n,
             int *hits,
             double *loss_sum,
             wq_error_t *err)
{
    (void) err;
    *hits = model_evaluate(e->model, x, y, n, loss_sum);
    return 0;
}

static int
cpu_nothing(engine_t *e, wq_error_t *err)
{
    (void) e, (void) err;
    return 0;
}

static void
cpu_destroy(engine_t *e)
{
    (void) e;
}

static const engine_ops_t cpu_ops = {
    .name = "cpu",
    .micro = cpu_micro,
    .finish = cpu_finish,
    .evaluate = cpu_evaluate,
    .pull = cpu_nothing,
    .push = cpu_nothing,
    .destroy = cpu_destroy,
};

engine_t *
engine_cpu_new(model_t *m, optim_t *o, comm_t *c)
{
    engine_t *e = wq_calloc(1, sizeof *e);
    e->ops = &cpu_ops;
    e->model = m;
    e->opt = o;
    e->comm = c;
    memcpy(e->device, "cpu", 4);
    memset(m->grads, 0, sizeof(float) * (m->n_params + MODEL_GRAD_EXTRA));
    return e;
}

void
engine_destroy(engine_t **ep)
{
    engine_t *e = *ep;
    if (!e)
        return;
    e->ops->destroy(e);
    free(e);
    *ep = NULL;
}

int
engine_plan_buckets(
    const model_t *m, size_t extra, size_t first_cap, size_t cap, engine_bucket_t *b)
{
    int nb = 0, lowest = -1;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].n_w + m->layers[i].n_b) {
            lowest = i;
            break;
        }
    size_t hi = m->n_params + extra;
    for (int i = m->n_layers - 1; i >= 0 && lowest >= 0; i--) {
        const layer_t *L = &m->layers[i];
        if (!(L->n_w + L->n_b))
            continue;
        size_t lo = L->w_off, want = nb == 0 ? first_cap : cap;
        /* The last bucket takes everything down to offset 0 and waits for the lowest layer. */
        int final = i == lowest || nb == ENGINE_MAX_BUCKETS - 1;
        if (final || (hi - lo) * sizeof(float) >= want) {
            lo = final ? 0 : lo;
            b[nb++] = (engine_bucket_t){.off = lo, .n = hi - lo, .layer = final ? lowest : i};
            hi = lo;
            if (final)
                break;
        }
    }
    return nb;
}

int
engine_pick_device(int local_rank, int visible, int forced, int *dev, wq_error_t *err)
{
    if (visible < 1)
        return wq_fail(err, WQ_ENOENT, "no CUDA device is visible");
    if (forced >= 0) {
        if (forced >= visible)
            return wq_fail(err, WQ_EINVAL, "CUDA device %d asked for, but %d %s visible", forced,
                           visible, visible == 1 ? "is" : "are");
        *dev = forced;
        return 0;
    }
    if (visible == 1) {
        *dev = 0;
        return 0;
    }
    if (local_rank < 0)
        local_rank = 0;
    if (local_rank >= visible)
        return wq_fail(err, WQ_EINVAL,
                       "LOCAL_RANK %d, but only %d CUDA devices are visible (one GPU per rank)",
                       local_rank, visible);
    *dev = local_rank;
    return 0;
}
