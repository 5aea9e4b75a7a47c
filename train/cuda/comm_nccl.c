/* The NCCL transport; see comm_nccl.h for the protocol. */
#include "train/cuda/comm_nccl.h"

#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/mem.h"
#include "train/cuda/cuerr.h"

#if NCCL_VERSION_CODE < NCCL_VERSION(2, 14, 0)
#error "NCCL 2.14 or newer is needed (non-blocking communicators, ncclCommFinalize)"
#endif

typedef struct {
    comm_t *side;        /* TCP ring: id exchange, host collectives, peer liveness */
    ncclComm_t nc;       /* NULL once aborted or destroyed */
    cudaStream_t stream; /* NCCL work; waits on the callers' events */
    cudaEvent_t done;    /* recorded behind the queued collectives by dev_wait */
    int started;         /* collectives queued since the last dev_wait */
} nccl_t;

static nccl_t *
impl(comm_t *c)
{
    return c->impl;
}

/* "comm_nccl.c:120: ncclAllReduce(...): unhandled system error (<ncclGetLastError text>)" */
static int
nccl_check(
    wq_error_t *err, const char *file, int line, const char *call, ncclResult_t r, ncclComm_t nc)
{
    if (r == ncclSuccess || r == ncclInProgress)
        return 0;
    const char *last = ncclGetLastError(nc);
    return wq_fail(err, WQ_EIO, "%s:%d: %s: %s%s%s%s", file, line, call, ncclGetErrorString(r),
                   last && *last ? " (" : "", last && *last ? last : "", last && *last ? ")" : "");
}

#define NCCL_OK(err, nc, call) (nccl_check((err), CU_FILE, __LINE__, #call, (call), (nc)) == 0)

static void
nccl_abort(comm_t *c)
{
    nccl_t *t = impl(c);
    if (!t)
        return;
    if (t->nc) {
        ncclCommAbort(t->nc); /* also stops kernels spinning on a dead peer */
        t->nc = NULL;
    }
    if (t->side)
        comm_abort(t->side);
}

/* ---- what comm_wait polls ------------------------------------------------------------- */

/* The communicator's own state: ncclSuccess once init (or enqueueing) has finished. */
/* The communicator's state: ncclSuccess, ncclInProgress, or the asynchronous error. */
static int
get_state(nccl_t *t, ncclResult_t *st, wq_error_t *err)
{
    *st = ncclSuccess;
    if (!NCCL_OK(err, t->nc, ncclCommGetAsyncError(t->nc, st)))
        return -1;
    return nccl_check(err, CU_FILE, __LINE__, "ncclCommGetAsyncError: asynchronous error", *st,
                      t->nc);
}

static int
state_done(void *ctx, wq_error_t *err)
{
    ncclResult_t st;
    if (get_state(impl(ctx), &st, err) < 0)
        return -1;
    return st == ncclSuccess;
}

static int
event_done(void *ctx, wq_error_t *err)
{
    nccl_t *t = impl(ctx);
    cudaError_t e = cudaEventQuery(t->done);
    if (e == cudaErrorNotReady)
        return 0;
    return CU_OK(err, e) ? 1 : -1;
}

/* For finalize: the ring is not a liveness signal any more (a rank that finished first closes
 * it), so only NCCL's own state counts. */
static int
nccl_health(void *ctx, wq_error_t *err)
{
    ncclResult_t st;
    return get_state(impl(ctx), &st, err);
}

/* Healthy = no asynchronous NCCL error and both ring neighbours still connected. */
static int
health(void *ctx, wq_error_t *err)
{
    if (nccl_health(ctx, err) < 0)
        return -1;
    if (comm_check(impl(ctx)->side, err) == 0)
        return 0;
    char why[256];
    snprintf(why, sizeof why, "%s", strncmp(err->text, "comm: ", 6) ? err->text : err->text + 6);
    return wq_fail(err, WQ_EPROTO, "%s (seen on the TCP ring)", why);
}

static void
abort_cb(void *ctx)
{
    nccl_abort(ctx);
}

static int
wait_for(comm_t *c, int (*done)(void *, wq_error_t *), const char *what, wq_error_t *err)
{
    comm_waiter_t w = {.ctx = c, .done = done, .async_error = health, .abort = abort_cb};
    return comm_wait(c, &w, wq_clock_mono_ms() + c->timeout_ms, what, err);
}

/* A failure outside comm_wait: abort and mark the comm failed, like comm_wait does. */
static int
fail(comm_t *c, wq_error_t *err)
{
    nccl_abort(c);
    return comm_fail(c, err, "comm: %s", err->text);
}

/* ---- transport ops -------------------------------------------------------------------- */

static int
n_dev_allreduce(comm_t *c, float *dbuf, size_t n, comm_op_t op, void *after, wq_error_t *err)
{
    nccl_t *t = impl(c);
    if (after && !CU_OK(err, cudaStreamWaitEvent(t->stream, (cudaEvent_t) after, 0)))
        return fail(c, err);
    ncclResult_t r = ncclAllReduce(dbuf, dbuf, n, ncclFloat32, op == COMM_AVG ? ncclAvg : ncclSum,
                                   t->nc, t->stream);
    if (!NCCL_OK(err, t->nc, r))
        return fail(c, err);
    /* Non-blocking mode: the call may return before the work is queued; it must be, before
     * the next NCCL call. */
    if (r == ncclInProgress && wait_for(c, state_done, "queueing an NCCL all-reduce", err) < 0)
        return -1;
    t->started++;
    return 0;
}

static int
n_dev_wait(comm_t *c, wq_error_t *err)
{
    nccl_t *t = impl(c);
    if (!t->started)
        return 0;
    if (!CU_OK(err, cudaEventRecord(t->done, t->stream)))
        return fail(c, err);
    if (wait_for(c, event_done, "NCCL all-reduce", err) < 0)
        return -1;
    t->started = 0;
    return 0;
}

/* Host collectives go over the ring; its failure is this comm's failure. */
static int
n_allreduce(comm_t *c, float *buf, size_t n, comm_op_t op, wq_error_t *err)
{
    return comm_allreduce(impl(c)->side, buf, n, op, err) < 0 ? fail(c, err) : 0;
}

static int
n_broadcast(comm_t *c, void *buf, size_t bytes, int root, wq_error_t *err)
{
    return comm_broadcast(impl(c)->side, buf, bytes, root, err) < 0 ? fail(c, err) : 0;
}

static int
n_barrier(comm_t *c, wq_error_t *err)
{
    return comm_barrier(impl(c)->side, err) < 0 ? fail(c, err) : 0;
}

static int
n_check(comm_t *c, wq_error_t *err)
{
    return health(c, err) < 0 ? fail(c, err) : 0;
}

static void
n_destroy(comm_t *c)
{
    nccl_t *t = impl(c);
    if (!t)
        return;
    if (t->nc && !c->failed) {
        /* Orderly: finalize (non-blocking, so wait for it under the deadline), then free. */
        wq_error_t err;
        comm_waiter_t w = {
            .ctx = c, .done = state_done, .async_error = nccl_health, .abort = abort_cb};
        if (NCCL_OK(&err, t->nc, ncclCommFinalize(t->nc)) &&
            comm_wait(c, &w, wq_clock_mono_ms() + c->timeout_ms, "NCCL finalize", &err) == 0) {
            ncclCommDestroy(t->nc);
            t->nc = NULL;
        }
    }
    nccl_abort(c); /* whatever is left */
    if (t->done)
        cudaEventDestroy(t->done);
    if (t->stream)
        cudaStreamDestroy(t->stream);
    comm_destroy(&t->side);
    free(t);
    c->impl = NULL;
}

static const comm_ops_t nccl_ops = {
    .name = "nccl",
    .allreduce = n_allreduce,
    .broadcast = n_broadcast,
    .barrier = n_barrier,
    .abort = nccl_abort,
    .destroy = n_destroy,
    .check = n_check,
    .dev_allreduce = n_dev_allreduce,
    .dev_wait = n_dev_wait,
};

int
comm_nccl_id_over_comm(comm_t *boot, void *id, size_t len, wq_error_t *err)
{
    return comm_broadcast(boot, id, len, 0, err);
}

comm_t *
comm_nccl_new(const comm_opts_t *o, comm_nccl_id_fn xchg, wq_error_t *err)
{
    comm_t *side = comm_init(o, err);
    if (!side)
        return NULL;
    comm_t *c = wq_calloc(1, sizeof *c);
    nccl_t *t = wq_calloc(1, sizeof *t);
    c->ops = &nccl_ops;
    c->impl = t;
    c->rank = o->rank;
    c->world = o->world;
    c->timeout_ms = o->timeout_ms;
    t->side = side;

    if (comm_agree_nccl(side, 1, err) < 0)
        goto error;
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    /* A rank 0 that fails here closes the ring, so the others fail in xchg at once. */
    if (o->rank == 0 && !NCCL_OK(err, NULL, ncclGetUniqueId(&id)))
        goto error;
    if (xchg(side, &id, sizeof id, err) < 0)
        goto error;
    ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
    cfg.blocking = 0;
    if (!NCCL_OK(err, t->nc, ncclCommInitRankConfig(&t->nc, o->world, id, o->rank, &cfg)))
        goto error;
    if (wait_for(c, state_done, "NCCL init", err) < 0)
        goto error;
    if (!CU_OK(err, cudaStreamCreateWithFlags(&t->stream, cudaStreamNonBlocking)) ||
        !CU_OK(err, cudaEventCreateWithFlags(&t->done, cudaEventDisableTiming)))
        goto error;
    return c;
error:
    c->failed = 1; /* no orderly finalize: abort */
    n_destroy(c);
    free(c);
    return NULL;
}

void
nccl_version_text(char *buf, size_t len)
{
    int v = 0;
    ncclGetVersion(&v);
    /* Codes since 2.9: major*10000 + minor*100 + patch. */
    snprintf(buf, len, "compiled with NCCL %d.%d.%d, library %d.%d.%d", NCCL_MAJOR, NCCL_MINOR,
             NCCL_PATCH, v / 10000, v / 100 % 100, v % 100);
}
