/* The training loop. See train.h for the data-parallel contract. */
#include "train/train.h"

#include <cblas.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/mem.h"
#include "train/ckpt.h"
#include "train/data.h"
#include "train/rng.h"
#ifdef WSLQ_HAVE_CUDA
#include "train/cuda/device.h"
#include "train/cuda/engine_cuda.h"
#endif
#ifdef WSLQ_HAVE_NCCL
#include "train/cuda/comm_nccl.h"
#endif

static volatile sig_atomic_t stop_requested;

static void
on_stop(int sig)
{
    (void) sig;
    stop_requested = 1;
}

void
train_cfg_defaults(train_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->spec.kind = MODEL_MLP;
    cfg->spec.in_c = 1;
    cfg->spec.in_h = 28;
    cfg->spec.in_w = 28;
    cfg->spec.classes = DATA_NUM_CLASSES;
    cfg->spec.n_hidden = 2;
    cfg->spec.hidden[0] = 256;
    cfg->spec.hidden[1] = 128;
    cfg->spec.kernel = 3;
    cfg->data_dir = DATA_DEFAULT_DIR;
    cfg->epochs = 5;
    cfg->batch = 64;
    cfg->accum = 1;
    cfg->optim = OPTIM_ADAM;
    cfg->lr = 1e-3f;
    cfg->momentum = 0.9f;
    cfg->seed = 1;
    cfg->threads = 1;
    cfg->log_every = 0;
    cfg->comm.world = 1;
    cfg->comm.timeout_ms = COMM_DEFAULT_TIMEOUT_MS;
    cfg->device = TRAIN_DEVICE_CPU;
    cfg->cuda_device = -1;
    cfg->comm_kind = TRAIN_COMM_AUTO;
}

int
train_failure_exit(const comm_t *c)
{
    return c && c->failed ? TRAIN_EXIT_COMM : TRAIN_EXIT_ERROR;
}

/* Data-order RNG for an epoch: depends only on seed and epoch, so every rank (and a resumed
 * run) draws the same permutation. */
static uint64_t
epoch_rng_state(uint64_t seed, uint32_t epoch)
{
    rng_t r = {seed ^ 0xD1B54A32D192ED03ull};
    r.s += (uint64_t) epoch * 0x9E3779B97F4A7C15ull;
    return rng_next(&r);
}

static void
shuffle(uint32_t *perm, int n, uint64_t state)
{
    rng_t r = {state};
    for (int i = 0; i < n; i++)
        perm[i] = (uint32_t) i;
    for (int i = n - 1; i > 0; i--) {
        uint32_t j = rng_below(&r, (uint32_t) i + 1);
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

typedef struct {
    const train_cfg_t *cfg;
    comm_t *comm;
    model_t *model;
    optim_t *opt;
    engine_t *eng; /* runs the model: cpu or cuda */
    dataset_t train, test;
    FILE *metrics;  /* rank 0 only, may be NULL */
    uint64_t step;  /* optimizer steps done */
    uint32_t epoch; /* epoch in progress, 0-based */
    uint32_t sie;   /* steps done in that epoch */
    int rank, world;
} run_t;

static void metrics_line(run_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
metrics_line(run_t *r, const char *fmt, ...)
{
    if (!r->metrics)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(r->metrics, fmt, ap);
    va_end(ap);
    fputc('\n', r->metrics);
    fflush(r->metrics);
}

static int
save(run_t *r, wq_error_t *err)
{
    if (!r->cfg->ckpt_dir || r->rank != 0)
        return 0;
    if (r->eng->ops->pull(r->eng, err) < 0)
        return -1;
    ckpt_meta_t m;
    memset(&m, 0, sizeof m);
    snprintf(m.shape, sizeof m.shape, "%s", r->model->shape);
    m.n_params = r->model->n_params;
    m.step = r->step;
    m.epoch = r->epoch;
    m.step_in_epoch = r->sie;
    m.optim_kind = r->opt->kind;
    m.optim_t = r->opt->t;
    m.lr = r->opt->lr;
    m.momentum = r->opt->momentum;
    m.beta1 = r->opt->beta1;
    m.beta2 = r->opt->beta2;
    m.eps = r->opt->eps;
    m.world = (uint32_t) r->world;
    m.batch = (uint32_t) r->cfg->batch;
    m.accum = (uint32_t) r->cfg->accum;
    m.seed = r->cfg->seed;
    m.rng_state = epoch_rng_state(r->cfg->seed, r->epoch);
    return ckpt_save(r->cfg->ckpt_dir, &m, r->model->params, r->opt->m, r->opt->v, err);
}

/* Rank 0 reads the newest checkpoint (the others may not share its disk), then broadcasts the
 * state and the parameters: this is also the start-of-run broadcast of rank 0's parameters.
 * Returns a TRAIN_EXIT code (OK to go on). */
static int
restore_and_broadcast(run_t *r)
{
    wq_error_t err;
    /* [0] status (0 fresh, 1 resumed, -1 failed), [1] step, [2] epoch, [3] sie, [4] optim t */
    int64_t st[5] = {0, 0, 0, 0, 0};
    char path[4096] = "";
    if (r->rank == 0 && r->cfg->ckpt_dir) {
        ckpt_meta_t m;
        float *p = NULL, *mm = NULL, *vv = NULL;
        int got = ckpt_load_latest(r->cfg->ckpt_dir, &m, &p, &mm, &vv, path, sizeof path, &err);
        if (got < 0) {
            fprintf(stderr, "wslq-train: %s\n", err.text);
            st[0] = -1;
        } else if (got == 1 &&
                   (strcmp(m.shape, r->model->shape) != 0 || m.n_params != r->model->n_params ||
                    m.optim_kind != (uint32_t) r->opt->kind)) {
            fprintf(stderr,
                    "wslq-train: checkpoint %s is for model %s with %s, this run is %s with %s; "
                    "use another --checkpoint-dir\n",
                    path, m.shape, optim_name((optim_kind_t) m.optim_kind), r->model->shape,
                    optim_name(r->opt->kind));
            st[0] = -1;
        } else if (got == 1) {
            size_t bytes = sizeof(float) * r->model->n_params;
            memcpy(r->model->params, p, bytes);
            memcpy(r->opt->m, mm, bytes);
            memcpy(r->opt->v, vv, bytes);
            st[0] = 1;
            st[1] = (int64_t) m.step;
            st[2] = m.epoch;
            st[3] = m.step_in_epoch;
            st[4] = (int64_t) m.optim_t;
        }
        free(p);
        free(mm);
        free(vv);
    }
    if (comm_broadcast(r->comm, st, sizeof st, 0, &err) < 0)
        goto comm_error;
    if (st[0] < 0)
        return TRAIN_EXIT_USAGE;
    size_t bytes = sizeof(float) * r->model->n_params;
    if (comm_broadcast(r->comm, r->model->params, bytes, 0, &err) < 0)
        goto comm_error;
    if (st[0] == 1) {
        if (comm_broadcast(r->comm, r->opt->m, bytes, 0, &err) < 0 ||
            comm_broadcast(r->comm, r->opt->v, bytes, 0, &err) < 0)
            goto comm_error;
        r->step = (uint64_t) st[1];
        r->epoch = (uint32_t) st[2];
        r->sie = (uint32_t) st[3];
        r->opt->t = (uint64_t) st[4];
        if (r->rank == 0)
            log_info("resumed from checkpoint path=%s step=%" PRIu64 " epoch=%u", path, r->step,
                     r->epoch + 1);
    }
    if (r->eng->ops->push(r->eng, &err) < 0) {
        fprintf(stderr, "wslq-train: rank %d: %s\n", r->rank, err.text);
        return TRAIN_EXIT_ERROR;
    }
    return TRAIN_EXIT_OK;
comm_error:
    fprintf(stderr, "wslq-train: rank %d: %s\n", r->rank, err.text);
    return TRAIN_EXIT_COMM;
}

/* Sharded test-set evaluation: rank r scores its contiguous share, then one all-reduce. */
static int
evaluate(run_t *r, double *acc, double *loss, wq_error_t *err)
{
    model_t *m = r->model;
    int n = r->test.n, B = m->max_batch;
    int lo = (int) ((int64_t) n * r->rank / r->world),
        hi = (int) ((int64_t) n * (r->rank + 1) / r->world);
    long px = layer_in_size(&m->layers[0]);
    float *x = wq_malloc(sizeof(float) * (size_t) B * (size_t) px);
    unsigned char *y = wq_malloc((size_t) B);
    uint32_t *idx = wq_malloc(sizeof(uint32_t) * (size_t) B);
    double hits = 0, lsum = 0;
    for (int s = lo; s < hi; s += B) {
        int k = hi - s < B ? hi - s : B;
        for (int i = 0; i < k; i++)
            idx[i] = (uint32_t) (s + i);
        dataset_gather(&r->test, idx, k, x, y);
        int h = 0;
        if (r->eng->ops->evaluate(r->eng, x, y, k, &h, &lsum, err) < 0) {
            free(x);
            free(y);
            free(idx);
            return -1;
        }
        hits += h;
    }
    free(x);
    free(y);
    free(idx);
    float v[2] = {(float) hits, (float) lsum};
    if (comm_allreduce(r->comm, v, 2, COMM_SUM, err) < 0)
        return -1;
    *acc = n ? v[0] / n : 0.0;
    *loss = n ? v[1] / n : 0.0;
    return 0;
}

static int
loop(run_t *r)
{
    const train_cfg_t *cfg = r->cfg;
    model_t *m = r->model;
    wq_error_t err;
    int B = cfg->batch, K = cfg->accum, P = r->world;
    int64_t G = (int64_t) B * P * K;
    uint32_t spe = (uint32_t) (r->train.n / G);
    long px = layer_in_size(&m->layers[0]);
    float *x = wq_malloc(sizeof(float) * (size_t) B * (size_t) px);
    unsigned char *y = wq_malloc((size_t) B);
    uint32_t *perm = wq_malloc(sizeof(uint32_t) * (size_t) r->train.n);
    float gscale = 1.0f / (float) (B * K);
    engine_t *e = r->eng;
    int rc = TRAIN_EXIT_OK;

    if ((cfg->max_steps && r->step >= (uint64_t) cfg->max_steps) ||
        r->epoch >= (uint32_t) cfg->epochs) {
        if (r->rank == 0)
            printf("nothing to do: the checkpoint is at step %" PRIu64 ", epoch %u\n", r->step,
                   r->epoch);
        goto out;
    }
    while (r->epoch < (uint32_t) cfg->epochs) {
        shuffle(perm, r->train.n, epoch_rng_state(cfg->seed, r->epoch));
        int64_t t0 = wq_clock_mono_ms();
        double loss_sum = 0;
        uint32_t steps_here = 0;
        int stop_max = 0, preempt = 0;
        while (r->sie < spe) {
            float loss = 0;
            if (cfg->lr_cosine) {
                /* A function of the step alone, so a resumed run follows the same curve. */
                uint64_t total = (uint64_t) cfg->epochs * spe;
                if (cfg->max_steps && (uint64_t) cfg->max_steps < total)
                    total = (uint64_t) cfg->max_steps;
                double frac = total ? (double) r->step / (double) total : 0.0;
                r->opt->lr = (float) (cfg->lr * 0.5 * (1.0 + cos(M_PI * (frac < 1 ? frac : 1))));
            }
            for (int k = 0; k < K; k++) {
                const uint32_t *ids = perm + (int64_t) r->sie * G + ((int64_t) k * P + r->rank) * B;
                dataset_gather(&r->train, ids, B, x, y);
                e->stop = stop_requested != 0;
                if (e->ops->micro(e, x, y, B, gscale, k == K - 1, &err) < 0)
                    goto step_failed;
            }
            e->stop = stop_requested != 0;
            if (e->ops->finish(e, &loss, &preempt, &err) < 0)
                goto step_failed;
            r->step++;
            r->sie++;
            steps_here++;
            loss_sum += loss;
            if (cfg->log_every && r->step % (uint64_t) cfg->log_every == 0)
                metrics_line(r, "{\"epoch\":%u,\"step\":%" PRIu64 ",\"loss\":%.9g}", r->epoch + 1,
                             r->step, loss);
            if (cfg->max_steps && r->step >= (uint64_t) cfg->max_steps)
                stop_max = 1;
            if (preempt || stop_max)
                break;
            if (cfg->ckpt_every && r->step % (uint64_t) cfg->ckpt_every == 0 && save(r, &err) < 0)
                log_warn("checkpoint not written: %s", err.text);
        }
        double secs = (double) (wq_clock_mono_ms() - t0) / 1000.0;
        double sps = secs > 0 ? (double) steps_here * (double) G / secs : 0.0;
        if (r->sie >= spe) {
            r->epoch++;
            r->sie = 0;
        }
        if (preempt) {
            /* Every rank saw the same flag in the same all-reduce, so all stop here. */
            int wrote = 0;
            if (cfg->ckpt_dir && save(r, &err) < 0) {
                fprintf(stderr, "wslq-train: preempted but the checkpoint failed: %s\n", err.text);
                rc = TRAIN_EXIT_ERROR;
            } else {
                wrote = cfg->ckpt_dir != NULL;
            }
            comm_barrier(r->comm, &err); /* rank 0 has written before anyone reports success */
            if (r->rank == 0)
                fprintf(stderr, "wslq-train: preempted at step %" PRIu64 "%s\n", r->step,
                        wrote ? ", checkpoint written"
                              : (cfg->ckpt_dir ? "" : "; no --checkpoint-dir, progress lost"));
            metrics_line(r, "{\"step\":%" PRIu64 ",\"event\":\"preempted\"}", r->step);
            if (rc == TRAIN_EXIT_OK)
                rc = TRAIN_EXIT_PREEMPTED;
            goto out;
        }
        double acc = 0, tloss = 0;
        if (evaluate(r, &acc, &tloss, &err) < 0)
            goto step_failed;
        double mean = steps_here ? loss_sum / steps_here : 0.0;
        uint32_t shown = r->sie == 0 ? r->epoch : r->epoch + 1;
        if (r->rank == 0 && !cfg->quiet)
            printf("epoch %u/%d%s  step %" PRIu64 "  loss %.4f  test_loss %.4f  test_acc %.4f  "
                   "samples/s %.0f  time %.1f s\n",
                   shown, cfg->epochs, r->sie ? " (partial)" : "", r->step, mean, tloss, acc, sps,
                   secs);
        fflush(stdout);
        metrics_line(r,
                     "{\"epoch\":%u,\"step\":%" PRIu64 ",\"loss\":%.6f,\"test_loss\":%.6f,"
                     "\"test_acc\":%.4f,\"samples_per_s\":%.1f}",
                     shown, r->step, mean, tloss, acc, sps);
        if (save(r, &err) < 0)
            log_warn("checkpoint not written: %s", err.text);
        if (stop_max)
            break;
    }
    goto out;
step_failed:
    fprintf(stderr, "wslq-train: rank %d: %s\n", r->rank, err.text);
    rc = train_failure_exit(r->comm);
out:
    free(x);
    free(y);
    free(perm);
    return rc;
}

/* The communicator and the engine for cfg->device. A CUDA rank binds its GPU first: NCCL
 * needs the device current before its communicator exists. Returns a TRAIN_EXIT code. */
static int
open_backend(run_t *r)
{
    const train_cfg_t *cfg = r->cfg;
    wq_error_t err;
    int dev = -1, nccl = 0;
    if (cfg->device == TRAIN_DEVICE_CUDA) {
#ifdef WSLQ_HAVE_CUDA
        if (cuda_open_device(cfg->local_rank, cfg->cuda_device, &dev, &err) < 0) {
            fprintf(stderr, "wslq-train: rank %d: --device cuda: %s\n", r->rank, err.text);
            return TRAIN_EXIT_USAGE;
        }
#else
        fprintf(stderr, "wslq-train: --device cuda: CUDA support not built into this binary\n");
        return TRAIN_EXIT_USAGE;
#endif
    }
#ifdef WSLQ_HAVE_NCCL
    nccl = dev >= 0 && r->world > 1 && cfg->comm_kind != TRAIN_COMM_TCP;
#endif
    if (cfg->comm_kind == TRAIN_COMM_NCCL && !nccl && r->world > 1) {
        fprintf(stderr, "wslq-train: --comm nccl needs --device cuda and NCCL support\n");
        return TRAIN_EXIT_USAGE;
    }
#ifdef WSLQ_HAVE_NCCL
    if (nccl)
        r->comm = comm_nccl_new(&cfg->comm, comm_nccl_id_over_comm, &err);
    else
#endif
        r->comm = comm_init(&cfg->comm, &err);
    /* A mismatch of --device/--comm between ranks (WQ_EINVAL from comm_agree_nccl, which the
     * NCCL transport runs first thing) is a usage error: retrying will not fix it. */
    if (!r->comm) {
        fprintf(stderr, "wslq-train: rank %d: %s\n", r->rank, err.text);
        return nccl && err.code == WQ_EINVAL ? TRAIN_EXIT_USAGE : TRAIN_EXIT_COMM;
    }
    if (!nccl && r->world > 1 && comm_agree_nccl(r->comm, 0, &err) < 0) {
        fprintf(stderr, "wslq-train: rank %d: %s\n", r->rank, err.text);
        return err.code == WQ_EINVAL ? TRAIN_EXIT_USAGE : TRAIN_EXIT_COMM;
    }
    r->eng = dev < 0 ? engine_cpu_new(r->model, r->opt, r->comm) : NULL;
#ifdef WSLQ_HAVE_CUDA
    if (dev >= 0)
        r->eng = engine_cuda_new(r->model, r->opt, r->comm, dev, &err);
#endif
    if (!r->eng) {
        fprintf(stderr, "wslq-train: rank %d: %s\n", r->rank, err.text);
        return train_failure_exit(r->comm);
    }
    return TRAIN_EXIT_OK;
}

int
train_run(const train_cfg_t *cfg)
{
    wq_error_t err;
    run_t r;
    memset(&r, 0, sizeof r);
    r.cfg = cfg;
    r.rank = cfg->comm.rank;
    r.world = cfg->comm.world;
    int rc = TRAIN_EXIT_USAGE;

    openblas_set_num_threads(cfg->threads);
    if (dataset_load(cfg->data_dir, "train", cfg->train_limit, &r.train, &err) < 0 ||
        dataset_load(cfg->data_dir, "t10k", cfg->test_limit, &r.test, &err) < 0) {
        fprintf(stderr, "wslq-train: %s\n", err.text);
        goto out;
    }
    model_spec_t spec = cfg->spec;
    spec.in_c = 1;
    spec.in_h = r.train.rows;
    spec.in_w = r.train.cols;
    if (r.test.rows != r.train.rows || r.test.cols != r.train.cols) {
        fprintf(stderr, "wslq-train: test images are %dx%d but training images %dx%d\n",
                r.test.rows, r.test.cols, r.train.rows, r.train.cols);
        goto out;
    }
    int64_t G = (int64_t) cfg->batch * r.world * cfg->accum;
    if (G > r.train.n) {
        fprintf(stderr,
                "wslq-train: the training set (%d samples) is smaller than one global batch "
                "(%" PRId64 " = batch %d x %d ranks x accum %d)\n",
                r.train.n, G, cfg->batch, r.world, cfg->accum);
        goto out;
    }
    r.model = model_new(&spec, cfg->batch > 64 ? cfg->batch : 64, &err);
    if (!r.model) {
        fprintf(stderr, "wslq-train: %s\n", err.text);
        goto out;
    }
    model_init_params(r.model, cfg->seed);
    r.opt = optim_new(cfg->optim, r.model->n_params, cfg->lr, cfg->momentum);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if ((rc = open_backend(&r)) != TRAIN_EXIT_OK)
        goto out;
    if (r.rank == 0 && cfg->metrics_path && *cfg->metrics_path) {
        r.metrics = fopen(cfg->metrics_path, "a");
        if (!r.metrics)
            log_warn("cannot open metrics file path=%s", cfg->metrics_path);
    }
    if ((rc = restore_and_broadcast(&r)) != TRAIN_EXIT_OK)
        goto out;
    if (r.rank == 0 && !cfg->quiet) {
        double sum = 0;
        for (size_t i = 0; i < r.model->n_params; i++)
            sum += r.model->params[i];
        printf("wslq-train: model %s (%zu params, checksum %.6f), %s lr %g, batch %d x %d "
               "rank%s x accum %d = %" PRId64 ", %d train / %d test samples, %d thread%s, "
               "device %s, comm %s%s\n",
               r.model->shape, r.model->n_params, sum, optim_name(cfg->optim), (double) cfg->lr,
               cfg->batch, r.world, r.world == 1 ? "" : "s", cfg->accum, G, r.train.n, r.test.n,
               cfg->threads, cfg->threads == 1 ? "" : "s", r.eng->device, r.comm->ops->name,
               r.world > 1 && getenv("WSLQ_RENDEZVOUS") ? " (ranks met through the job's "
                                                          "rendezvous store)"
                                                        : "");
        fflush(stdout);
    }
    rc = loop(&r);
out:
    /* Anything but a clean or agreed stop: abort, so peers notice now and nothing waits on
     * an orderly NCCL finalize that the others will never join. */
    if (r.comm && rc != TRAIN_EXIT_OK && rc != TRAIN_EXIT_PREEMPTED)
        comm_abort(r.comm);
    engine_destroy(&r.eng);
    comm_destroy(&r.comm);
    if (r.metrics)
        fclose(r.metrics);
    optim_destroy(&r.opt);
    model_destroy(&r.model);
    dataset_free(&r.train);
    dataset_free(&r.test);
    return rc;
}
