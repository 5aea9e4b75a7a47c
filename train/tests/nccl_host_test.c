/* The NCCL transport's own code (cuda/comm_nccl.c) run on the CPU with two real ranks (fork)
 * over the real TCP ring, and host stand-ins for the NCCL and CUDA calls it makes: the
 * stand-ins follow NCCL's non-blocking contract (calls may return ncclInProgress; the state
 * from ncclCommGetAsyncError says when the work is queued or the communicator ready) and
 * let each case choose when the completion event fires or an asynchronous error appears.
 * No NCCL or CUDA library is linked.
 *
 *   normal      init through ncclInProgress with config.blocking = 0; rank 1 receives rank 0's
 *               unique id over the ring; three buckets (one queued via ncclInProgress, ncclAvg,
 *               after the caller's event) and one wait; host collectives over the ring;
 *               orderly shutdown = ncclCommFinalize (waited for) + ncclCommDestroy, no abort
 *   hang        the event never fires: dev_wait fails at the deadline, ncclCommAbort once,
 *               the comm is failed (the trainer's exit 3)
 *   async       ncclCommGetAsyncError turns to ncclRemoteError: abort, failed, and the error
 *               names NCCL's message and ncclGetLastError's text
 *   peer_dies   rank 1 exits during rank 0's wait (event never fires, 10 s deadline): rank 0
 *               sees the ring close and aborts within ~1 s */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
/* after the standard headers */
#include <cmocka.h>
#include <nccl.h>

#include "common/clock.h"
#include "common/net.h"
#include "train/comm.h"
#include "train/cuda/comm_nccl.h"
#include "train/cuda/cuerr.h"

/* ---- scenario knobs and what happened ---------------------------------------------------- */

static struct {
    int init_polls;  /* state stays ncclInProgress this many polls after init */
    int queue_polls; /* ... and after an all-reduce that returned ncclInProgress */
    int event_polls; /* cudaEventQuery: not ready this many times (-1: never) */
    int error_after; /* asynchronous ncclRemoteError after this many state polls (-1 never) */
    int state_left;  /* current ncclInProgress countdown */
    int state_polls; /* total polls of the state */
    int event_left;
    int allreduces, inprogress_once, avg, waited_event;
    int aborts, finalized, destroyed, blocking;
    unsigned char id[NCCL_UNIQUE_ID_BYTES];
} f;
static int token;

static void
scenario(int event_polls, int error_after)
{
    memset(&f, 0, sizeof f);
    f.init_polls = 3;
    f.queue_polls = 2;
    f.event_polls = event_polls;
    f.error_after = error_after;
    f.blocking = -1;
}

ncclResult_t
ncclGetUniqueId(ncclUniqueId *id)
{
    for (int i = 0; i < NCCL_UNIQUE_ID_BYTES; i++)
        id->internal[i] = (char) (i * 7 + 1);
    return ncclSuccess;
}

ncclResult_t
ncclCommInitRankConfig(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank, ncclConfig_t *cfg)
{
    (void) nranks, (void) rank;
    memcpy(f.id, id.internal, sizeof f.id);
    f.blocking = cfg->blocking;
    *comm = (ncclComm_t) &token;
    f.state_left = f.init_polls;
    return ncclInProgress;
}

ncclResult_t
ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *st)
{
    (void) comm;
    f.state_polls++;
    if (f.error_after >= 0 && f.state_polls > f.error_after) {
        *st = ncclRemoteError;
        return ncclSuccess;
    }
    *st = f.state_left > 0 ? ncclInProgress : ncclSuccess;
    if (f.state_left > 0)
        f.state_left--;
    return ncclSuccess;
}

ncclResult_t
ncclAllReduce(const void *s,
              void *r,
              size_t n,
              ncclDataType_t t,
              ncclRedOp_t op,
              ncclComm_t c,
              cudaStream_t st)
{
    (void) s, (void) r, (void) n, (void) c;
    assert_int_equal(t, ncclFloat32);
    assert_non_null(st);
    f.avg += op == ncclAvg;
    f.allreduces++;
    f.event_left = f.event_polls;
    if (!f.inprogress_once++) { /* the first one is queued in the background */
        f.state_left = f.queue_polls;
        return ncclInProgress;
    }
    return ncclSuccess;
}

ncclResult_t
ncclCommAbort(ncclComm_t c)
{
    (void) c;
    f.aborts++;
    return ncclSuccess;
}

ncclResult_t
ncclCommFinalize(ncclComm_t c)
{
    (void) c;
    f.finalized++;
    f.state_left = 2;
    return ncclInProgress;
}

ncclResult_t
ncclCommDestroy(ncclComm_t c)
{
    (void) c;
    f.destroyed++;
    return ncclSuccess;
}

const char *
ncclGetErrorString(ncclResult_t r)
{
    return r == ncclRemoteError ? "remote process exited or there was a network error"
                                : "some NCCL error";
}

const char *
ncclGetLastError(ncclComm_t c)
{
    (void) c;
    return "NET/Socket : peer 10.0.0.7 closed the connection";
}

ncclResult_t
ncclGetVersion(int *v)
{
    *v = NCCL_VERSION_CODE;
    return ncclSuccess;
}

cudaError_t
cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int flags)
{
    (void) flags;
    assert_non_null(s);
    f.waited_event += e != NULL;
    return cudaSuccess;
}

cudaError_t
cudaEventQuery(cudaEvent_t e)
{
    (void) e;
    if (f.event_left < 0)
        return cudaErrorNotReady;
    if (f.event_left > 0) {
        f.event_left--;
        return cudaErrorNotReady;
    }
    return cudaSuccess;
}

cudaError_t
cudaEventRecord(cudaEvent_t e, cudaStream_t s)
{
    (void) e, (void) s;
    return cudaSuccess;
}

cudaError_t
cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags)
{
    (void) flags;
    *s = (cudaStream_t) &token;
    return cudaSuccess;
}

cudaError_t
cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int flags)
{
    (void) flags;
    *e = (cudaEvent_t) &token;
    return cudaSuccess;
}

cudaError_t
cudaEventDestroy(cudaEvent_t e)
{
    (void) e;
    return cudaSuccess;
}

cudaError_t
cudaStreamDestroy(cudaStream_t s)
{
    (void) s;
    return cudaSuccess;
}

int
cu_check(wq_error_t *err, const char *file, int line, const char *call, cudaError_t e)
{
    return e == cudaSuccess ? 0 : wq_fail(err, WQ_EIO, "%s:%d: %s: error %d", file, line, call, e);
}

/* ---- two ranks -------------------------------------------------------------------------- */

static comm_opts_t
opts(int rank, int port, int timeout_ms)
{
    comm_opts_t o;
    memset(&o, 0, sizeof o);
    o.rank = rank;
    o.world = 2;
    o.master_port = port;
    o.timeout_ms = timeout_ms;
    snprintf(o.master_addr, sizeof o.master_addr, "127.0.0.1");
    return o;
}

static float dev_buf[64]; /* stands for device memory: the stand-ins never touch it */

/* One rank's normal run; returns 0 if everything behaved. */
static int
normal_rank(int rank, int port, wq_error_t *err)
{
    scenario(5, -1);
    comm_opts_t o = opts(rank, port, 5000);
    comm_t *c = comm_nccl_new(&o, comm_nccl_id_over_comm, err);
    if (!c)
        return 1;
    int ok = f.blocking == 0;
    for (int i = 0; i < NCCL_UNIQUE_ID_BYTES; i++)
        ok &= f.id[i] == (unsigned char) (i * 7 + 1);
    for (int b = 0; b < 3; b++)
        ok &= comm_dev_allreduce(c, dev_buf + b * 8, 8, COMM_AVG, (void *) &token, err) == 0;
    ok &= comm_dev_wait(c, err) == 0;
    ok &= f.allreduces == 3 && f.avg == 3 && f.waited_event == 3;
    float v[2] = {(float) rank, 1.0f};
    ok &= comm_allreduce(c, v, 2, COMM_SUM, err) == 0 && v[0] == 1.0f && v[1] == 2.0f;
    ok &= comm_barrier(c, err) == 0;
    comm_destroy(&c);
    ok &= f.finalized == 1 && f.destroyed == 1 && f.aborts == 0;
    return ok ? 0 : 2;
}

static void
test_normal(void **state)
{
    (void) state;
    int port = wq_free_tcp_port(INADDR_LOOPBACK);
    pid_t pid = fork();
    if (pid == 0) {
        wq_error_t e;
        _exit(normal_rank(1, port, &e));
    }
    wq_error_t err;
    int rc = normal_rank(0, port, &err);
    int st;
    waitpid(pid, &st, 0);
    if (rc)
        fail_msg("rank 0: %d (%s)", rc, err.text);
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* Rank 0 waits for a collective that misbehaves as the scenario says; rank 1 completes its
 * part (or dies) and then waits for rank 0 to go away. */
static void
failing_wait(int event_polls,
             int error_after,
             int timeout_ms,
             int child_dies,
             int64_t *took,
             wq_error_t *err)
{
    int port = wq_free_tcp_port(INADDR_LOOPBACK);
    pid_t pid = fork();
    if (pid == 0) {
        scenario(0, -1);
        comm_opts_t o = opts(1, port, 10000);
        wq_error_t e;
        comm_t *c = comm_nccl_new(&o, comm_nccl_id_over_comm, &e);
        if (!c)
            _exit(1);
        if (child_dies) {
            usleep(200 * 1000);
            _exit(0); /* like SIGKILL: the kernel closes the ring sockets */
        }
        comm_dev_allreduce(c, dev_buf, 8, COMM_AVG, NULL, &e);
        comm_dev_wait(c, &e);
        usleep((useconds_t) timeout_ms * 1000 + 500000); /* outlive rank 0's wait */
        comm_abort(c);
        comm_destroy(&c);
        _exit(0);
    }
    scenario(0, -1);
    comm_opts_t o = opts(0, port, timeout_ms);
    comm_t *c = comm_nccl_new(&o, comm_nccl_id_over_comm, err);
    assert_non_null(c);
    scenario(event_polls, error_after); /* init is done: arm the failure */
    int64_t t0 = wq_clock_mono_ms();
    assert_int_equal(comm_dev_allreduce(c, dev_buf, 8, COMM_AVG, NULL, err), 0);
    int rc = comm_dev_wait(c, err);
    *took = wq_clock_mono_ms() - t0;
    print_message("rank 0 after %lld ms: %s\n", (long long) *took, err->text);
    assert_int_equal(rc, -1);
    assert_int_equal(f.aborts, 1);
    assert_true(c->failed); /* = exit 3 (train_failure_exit, tested in comm_wait_test) */
    comm_abort(c);          /* train_run's own abort: must not abort NCCL twice */
    comm_destroy(&c);
    assert_int_equal(f.aborts, 1);
    assert_int_equal(f.destroyed, 0);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
}

static void
test_hang(void **state)
{
    (void) state;
    int64_t took;
    wq_error_t err;
    failing_wait(-1, -1, 400, 0, &took, &err);
    assert_true(took >= 400 && took < 2000);
    assert_non_null(strstr(err.text, "comm: NCCL all-reduce: no progress in"));
}

static void
test_async(void **state)
{
    (void) state;
    int64_t took;
    wq_error_t err;
    failing_wait(-1, 10, 10000, 0, &took, &err);
    assert_true(took < 2000);
    assert_non_null(strstr(err.text, "remote process exited or there was a network error"));
    assert_non_null(strstr(err.text, "peer 10.0.0.7 closed the connection"));
    assert_non_null(strstr(err.text, "ncclCommGetAsyncError"));
}

static void
test_peer_dies(void **state)
{
    (void) state;
    int64_t took;
    wq_error_t err;
    failing_wait(-1, -1, 10000, 1, &took, &err);
    assert_true(took < 2000);
    assert_non_null(strstr(err.text, "rank 1 closed the connection"));
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normal),
        cmocka_unit_test(test_hang),
        cmocka_unit_test(test_async),
        cmocka_unit_test(test_peer_dies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
