/* The deadline loop every NCCL wait goes through (comm_wait), driven on the CPU with fakes:
 * the GPU-side questions (has the event fired? has NCCL reported an asynchronous error?) and
 * the abort are function pointers, and so is the clock, so these cases run in microseconds
 * and decide exactly what comm_nccl.c decides:
 *
 *   done in time          -> 0, no abort, the comm stays usable
 *   async error           -> abort once, comm failed, the trainer's exit code is 3
 *   deadline passed       -> abort once, comm failed, exit code 3, at the deadline
 *   done() reports error  -> (a CUDA error from cudaEventQuery) the same
 *   through comm + engine -> a transport whose all-reduce waits this way fails the CPU
 *                            engine's step with exit 3, like a dead TCP peer does
 *   real clock            -> the default clock and back-off honour a 150 ms deadline
 *   tcp liveness          -> comm_check on the TCP ring (what the NCCL waits poll besides
 *                            NCCL) notices a killed peer, and not a live one
 *   agree                 -> ranks that disagree on using NCCL fail their first collective
 *                            with a usage error (WQ_EINVAL), on both sides */
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
#include <time.h>
#include <unistd.h>
/* after the standard headers */
#include <cmocka.h>

#include "common/clock.h"
#include "common/net.h"
#include "train/comm.h"
#include "train/engine.h"
#include "train/model.h"
#include "train/optim.h"
#include "train/train.h"

typedef struct {
    int64_t now;      /* fake clock, ms */
    int64_t done_at;  /* done() says 1 from this time on (-1: never) */
    int64_t error_at; /* async_error() fails from this time on (-1: never) */
    int64_t fault_at; /* done() itself fails from this time on (-1: never) */
    int aborts, polls;
} fake_t;

static int
f_done(void *ctx, wq_error_t *err)
{
    fake_t *f = ctx;
    f->polls++;
    if (f->fault_at >= 0 && f->now >= f->fault_at)
        return wq_fail(err, WQ_EIO, "fake.c:1: cudaEventQuery(done): an illegal memory access");
    return f->done_at >= 0 && f->now >= f->done_at;
}

static int
f_async(void *ctx, wq_error_t *err)
{
    fake_t *f = ctx;
    if (f->error_at >= 0 && f->now >= f->error_at)
        return wq_fail(err, WQ_EIO, "ncclCommGetAsyncError: remote process exited");
    return 0;
}

static void
f_abort(void *ctx)
{
    ((fake_t *) ctx)->aborts++;
}

static int64_t
f_now(void *ctx)
{
    return ((fake_t *) ctx)->now;
}

static void
f_pause(void *ctx, unsigned polls)
{
    (void) polls;
    ((fake_t *) ctx)->now += 1; /* each poll costs 1 ms of fake time */
}

static comm_waiter_t
waiter(fake_t *f)
{
    return (comm_waiter_t){.ctx = f,
                           .done = f_done,
                           .async_error = f_async,
                           .abort = f_abort,
                           .now_ms = f_now,
                           .pause = f_pause};
}

/* A communicator for the fakes: world 1, so comm_init needs no network. */
static comm_t *
self_comm(void)
{
    comm_opts_t o;
    memset(&o, 0, sizeof o);
    o.world = 1;
    o.timeout_ms = 1000;
    wq_error_t err;
    comm_t *c = comm_init(&o, &err);
    assert_non_null(c);
    return c;
}

static void
test_done_in_time(void **state)
{
    (void) state;
    fake_t f = {.now = 0, .done_at = 50, .error_at = -1, .fault_at = -1};
    comm_waiter_t w = waiter(&f);
    comm_t *c = self_comm();
    wq_error_t err;
    assert_int_equal(comm_wait(c, &w, 1000, "NCCL all-reduce", &err), 0);
    assert_int_equal(f.aborts, 0);
    assert_int_equal(c->failed, 0);
    assert_true(f.now >= 50 && f.now < 60);
    assert_int_equal(comm_barrier(c, &err), 0); /* still usable */
    comm_destroy(&c);
}

static void
test_async_error(void **state)
{
    (void) state;
    fake_t f = {.now = 0, .done_at = -1, .error_at = 30, .fault_at = -1};
    comm_waiter_t w = waiter(&f);
    comm_t *c = self_comm();
    wq_error_t err;
    assert_int_equal(comm_wait(c, &w, 1000, "NCCL all-reduce", &err), -1);
    assert_int_equal(f.aborts, 1);
    assert_true(f.now >= 30 && f.now < 40); /* at the error, not at the deadline */
    assert_true(c->failed);
    assert_int_equal(train_failure_exit(c), TRAIN_EXIT_COMM);
    assert_non_null(strstr(err.text, "comm: NCCL all-reduce: "));
    assert_non_null(strstr(err.text, "remote process exited"));
    /* Every later call fails at once with the first error. */
    wq_error_t e2;
    assert_int_equal(comm_barrier(c, &e2), -1);
    assert_non_null(strstr(e2.text, "remote process exited"));
    comm_destroy(&c);
}

static void
test_deadline(void **state)
{
    (void) state;
    fake_t f = {.now = 1000, .done_at = -1, .error_at = -1, .fault_at = -1};
    comm_waiter_t w = waiter(&f);
    comm_t *c = self_comm();
    wq_error_t err;
    assert_int_equal(comm_wait(c, &w, 1200, "NCCL all-reduce", &err), -1);
    assert_int_equal(f.aborts, 1);
    assert_int_equal(f.now, 1200);
    assert_true(c->failed);
    assert_int_equal(train_failure_exit(c), TRAIN_EXIT_COMM);
    assert_non_null(strstr(err.text, "no progress in 200 ms"));
    comm_destroy(&c);
}

static void
test_done_fails(void **state)
{
    (void) state;
    fake_t f = {.now = 0, .done_at = -1, .error_at = -1, .fault_at = 5};
    comm_waiter_t w = waiter(&f);
    comm_t *c = self_comm();
    wq_error_t err;
    assert_int_equal(comm_wait(c, &w, 1000, "NCCL all-reduce", &err), -1);
    assert_int_equal(f.aborts, 1);
    assert_int_equal(train_failure_exit(c), TRAIN_EXIT_COMM);
    assert_non_null(strstr(err.text, "cudaEventQuery(done): an illegal memory access"));
    comm_destroy(&c);
}

/* ---- a fake transport: host all-reduce that "waits for the GPU" through comm_wait --------- */

static fake_t transport_fake;
static int transport_aborts;

static int
ft_allreduce(comm_t *c, float *buf, size_t n, comm_op_t op, wq_error_t *err)
{
    (void) buf, (void) n, (void) op;
    comm_waiter_t w = waiter(&transport_fake);
    return comm_wait(c, &w, transport_fake.now + c->timeout_ms, "NCCL all-reduce", err);
}

static int
ft_ok(comm_t *c, wq_error_t *err)
{
    (void) c, (void) err;
    return 0;
}

static int
ft_broadcast(comm_t *c, void *buf, size_t bytes, int root, wq_error_t *err)
{
    (void) c, (void) buf, (void) bytes, (void) root, (void) err;
    return 0;
}

static void
ft_abort(comm_t *c)
{
    (void) c;
    transport_aborts++;
}

static void
ft_destroy(comm_t *c)
{
    (void) c;
}

static const comm_ops_t fake_ops = {
    .name = "fake",
    .allreduce = ft_allreduce,
    .broadcast = ft_broadcast,
    .barrier = ft_ok,
    .abort = ft_abort,
    .destroy = ft_destroy,
};

static void
test_engine_step_exit(void **state)
{
    (void) state;
    model_spec_t spec = {.kind = MODEL_MLP,
                         .in_c = 1,
                         .in_h = 4,
                         .in_w = 4,
                         .classes = 3,
                         .n_hidden = 1,
                         .hidden = {5}};
    wq_error_t err;
    model_t *m = model_new(&spec, 2, &err);
    assert_non_null(m);
    model_init_params(m, 1);
    optim_t *o = optim_new(OPTIM_ADAM, m->n_params, 1e-3f, 0.9f);
    comm_t *c = calloc(1, sizeof *c);
    c->ops = &fake_ops;
    c->world = 2;
    c->rank = 0;
    c->timeout_ms = 500;
    engine_t *e = engine_cpu_new(m, o, c);
    float x[32] = {0};
    unsigned char y[2] = {0, 1};
    float loss = 0;
    int stop = 0;

    /* The "GPU" finishes after 3 ms: the step completes. */
    transport_fake = (fake_t){.now = 0, .done_at = 3, .error_at = -1, .fault_at = -1};
    assert_int_equal(e->ops->micro(e, x, y, 2, 0.5f, 1, &err), 0);
    assert_int_equal(e->ops->finish(e, &loss, &stop, &err), 0);
    assert_int_equal(transport_aborts, 0);

    /* Now it never finishes: the step fails at the 500 ms deadline with exit code 3. */
    transport_fake = (fake_t){.now = 0, .done_at = -1, .error_at = -1, .fault_at = -1};
    assert_int_equal(e->ops->micro(e, x, y, 2, 0.5f, 1, &err), 0);
    assert_int_equal(e->ops->finish(e, &loss, &stop, &err), -1);
    assert_int_equal(transport_fake.aborts, 1);
    assert_int_equal(transport_fake.now, 500);
    assert_int_equal(train_failure_exit(c), TRAIN_EXIT_COMM);
    comm_abort(c); /* what train_run does next: safe after the wait's own abort */
    assert_int_equal(transport_aborts, 1);

    engine_destroy(&e);
    comm_destroy(&c);
    optim_destroy(&o);
    model_destroy(&m);
}

/* A failure that is not the communicator's is exit 1, not 3. */
static void
test_non_comm_failure(void **state)
{
    (void) state;
    comm_t *c = self_comm();
    assert_int_equal(train_failure_exit(c), TRAIN_EXIT_ERROR);
    assert_int_equal(train_failure_exit(NULL), TRAIN_EXIT_ERROR);
    comm_destroy(&c);
}

static int
real_never(void *ctx, wq_error_t *err)
{
    (void) ctx, (void) err;
    return 0;
}

static int
real_healthy(void *ctx, wq_error_t *err)
{
    (void) ctx, (void) err;
    return 0;
}

static void
test_real_clock(void **state)
{
    (void) state;
    fake_t f = {0};
    comm_waiter_t w = {
        .ctx = &f, .done = real_never, .async_error = real_healthy, .abort = f_abort};
    wq_error_t err;
    int64_t t0 = wq_clock_mono_ms();
    assert_int_equal(comm_wait(NULL, &w, t0 + 150, "wait", &err), -1);
    int64_t took = wq_clock_mono_ms() - t0;
    assert_int_equal(f.aborts, 1);
    assert_true(took >= 150 && took < 1000);
}

/* ---- comm_check on a real 2-rank TCP ring ----------------------------------------------- */

static void
test_tcp_liveness(void **state)
{
    (void) state;
    comm_opts_t o;
    memset(&o, 0, sizeof o);
    o.world = 2;
    o.timeout_ms = 10000;
    o.master_port = wq_free_tcp_port(INADDR_LOOPBACK);
    snprintf(o.master_addr, sizeof o.master_addr, "127.0.0.1");
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    if (pid == 0) {
        o.rank = 1;
        wq_error_t e;
        comm_t *c = comm_init(&o, &e);
        char b;
        if (c && read(go[0], &b, 1) == 1) /* stay connected until told, then vanish */
            _exit(0);
        _exit(1);
    }
    wq_error_t err;
    comm_t *c = comm_init(&o, &err);
    assert_non_null(c);
    assert_int_equal(comm_check(c, &err), 0); /* peer alive and quiet */
    assert_int_equal(write(go[1], "x", 1), 1);
    int st;
    waitpid(pid, &st, 0);
    int64_t t0 = wq_clock_mono_ms();
    int rc = 0;
    while ((rc = comm_check(c, &err)) == 0 && wq_clock_mono_ms() - t0 < 2000) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err.text, "rank 1 closed the connection"));
    assert_true(c->failed);
    comm_destroy(&c);
    close(go[0]);
    close(go[1]);
}

/* Ranks that resolved --device/--comm differently find out in their first collective. */
static void
test_agree(void **state)
{
    (void) state;
    for (int k = 0; k < 2; k++) {
        comm_opts_t o;
        memset(&o, 0, sizeof o);
        o.world = 2;
        o.timeout_ms = 10000;
        o.master_port = wq_free_tcp_port(INADDR_LOOPBACK);
        snprintf(o.master_addr, sizeof o.master_addr, "127.0.0.1");
        int child_flag = k; /* k 0: both without NCCL; k 1: rank 1 with NCCL, rank 0 without */
        pid_t pid = fork();
        if (pid == 0) {
            o.rank = 1;
            wq_error_t e;
            comm_t *c = comm_init(&o, &e);
            int rc = c ? comm_agree_nccl(c, child_flag, &e) : -2;
            comm_destroy(&c);
            _exit(rc == 0 ? 0 : rc == -1 && e.code == WQ_EINVAL ? 10 : 1);
        }
        wq_error_t err;
        comm_t *c = comm_init(&o, &err);
        assert_non_null(c);
        int rc = comm_agree_nccl(c, 0, &err);
        int st;
        waitpid(pid, &st, 0);
        if (k == 0) {
            assert_int_equal(rc, 0);
            assert_int_equal(WEXITSTATUS(st), 0);
        } else {
            assert_int_equal(rc, -1);
            assert_int_equal(err.code, WQ_EINVAL);
            assert_non_null(strstr(err.text, "1 of 2 ranks use NCCL but this one does not"));
            assert_int_equal(WEXITSTATUS(st), 10);
        }
        comm_destroy(&c);
    }
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_done_in_time),
        cmocka_unit_test(test_async_error),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_done_fails),
        cmocka_unit_test(test_engine_step_exit),
        cmocka_unit_test(test_non_comm_failure),
        cmocka_unit_test(test_real_clock),
        cmocka_unit_test(test_tcp_liveness),
        cmocka_unit_test(test_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
