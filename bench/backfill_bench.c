/* One scheduling pass with a big backlog, backfill on and off, against the real scheduler
 * core in this process (over inproc://, fake workers that register and stay silent): 50
 * nodes x 4 GPUs, 195 GPUs held by running 1-GPU jobs with time limits, then N pending jobs
 * (default 100,000) of mixed shapes and time limits behind a 4-GPU job that cannot start. The pass
 * (place_pass) is timed directly, many times: full:  a full pass (as after a job ended), once the
 * backlog has settled: every pending job looked at while a node has room, reservations made, short
 * jobs backfilled; fresh: a pass for one new job alone (as after a submit): the last pass's
 * reservations made again, then the new job tried around them.
 *
 *   wslq-bench-backfill [PENDING [PASSES]]    default 100000 pending, 200 passes
 *
 * Prints the distribution (min, median, p90, p99, max) of each, with backfill_depth 8 (the
 * default) and 0 (off: strict priority order). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bench/benchstat.h"
#include "common/log.h"
#include "proto/wire.h"
#include "scheduler/sched.h"
#include "scheduler/sched_int.h"

#define NODES 50
#define GPUS  4

static void
die(const char *what, const char *why)
{
    fprintf(stderr, "wslq-bench-backfill: %s: %s\n", what, why);
    exit(1);
}

static void
send_env(void *sock, Wslq__Envelope *env)
{
    wq_error_t err = {0};
    if (wire_send(sock, NULL, 0, env, 0, &err) < 0)
        die("send", err.text);
}

static void
turn(sched_t *s)
{
    wq_error_t err = {0};
    if (sched_turn(s, 1, &err) < 0)
        die("scheduler turn", err.text);
}

/* Wait for n answers of this kind on sock (others dropped), turning the scheduler. */
static void
answers(sched_t *s, void *sock, Wslq__Envelope__BodyCase want, long n)
{
    wq_error_t err = {0};
    for (long turns = 0; n > 0 && turns < 10000000; turns++) {
        turn(s);
        Wslq__Envelope *rep;
        while (n > 0 && (rep = wire_recv(sock, NULL, NULL, ZMQ_DONTWAIT, &err)) != NULL) {
            if (rep->body_case == WSLQ__ENVELOPE__BODY_ERROR)
                die("request", rep->error->text);
            n -= rep->body_case == want;
            wire_free(&rep);
        }
    }
    if (n > 0)
        die("request", "answers missing");
}

static void
submit(void *sock, uint64_t rid, uint32_t nodes, uint32_t gpus, uint64_t time_s)
{
    char *av[] = {"true"};
    Wslq__JobSpec spec = WSLQ__JOB_SPEC__INIT;
    spec.argv = av;
    spec.n_argv = 1;
    spec.nodes = nodes;
    spec.gpus_per_node = gpus;
    spec.cpus_per_node = 1;
    spec.time_limit_s = time_s;
    spec.user = "bench";
    spec.name = "job";
    spec.cwd = "/tmp";
    Wslq__SubmitRequest sub = WSLQ__SUBMIT_REQUEST__INIT;
    sub.spec = &spec;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = rid;
    env.body_case = WSLQ__ENVELOPE__BODY_SUBMIT;
    env.submit = &sub;
    send_env(sock, &env);
}

static void
report(const char *what, double *v, int n)
{
    bench_sort(v, (size_t) n);
    printf("  %-6s pass (CPU ms): min %.3f  median %.3f  p90 %.3f  p99 %.3f  max %.3f  (%d "
           "passes)\n",
           what, v[0], v[n / 2], v[n * 9 / 10], v[n * 99 / 100], v[n - 1], n);
}

/* One timed pass: full (as after an end) or for one new job (the newest pending job). */
static double
timed_pass(sched_t *s, int full)
{
    if (full) {
        s->dirty = 1;
    } else {
        /* the newest pending job, as if just submitted */
        s->fresh[0] = s->jobs[s->n_jobs - 1]->info->id;
        s->n_fresh = 1;
    }
    sched_db_begin(s);
    /* this thread's CPU time: the pass is single-threaded, and CPU time is less disturbed
     * than the wall clock by other work on a shared machine */
    double t0 = bench_clock_ms(CLOCK_THREAD_CPUTIME_ID);
    place_pass(s);
    double t1 = bench_clock_ms(CLOCK_THREAD_CPUTIME_ID);
    wq_error_t err = {0};
    if (queue_commit(s->q, &err) < 0)
        die("commit", err.text);
    out_discard(s); /* launches to the silent workers */
    return t1 - t0;
}

static void
run(long pending, int passes, unsigned depth)
{
    char dir[] = "/tmp/wslq-backfill-bench-XXXXXX";
    if (mkdtemp(dir) == NULL)
        die("mkdtemp", "failed");
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://backfill-bench-%u", depth);
    void *zctx = zmq_ctx_new();
    sched_config_t cfg;
    sched_config_init(&cfg);
    cfg.listen = endpoint;
    cfg.state_dir = dir;
    cfg.sync_full = 0;
    cfg.zctx = zctx;
    cfg.insecure = 1;
    cfg.admin_path = "";
    cfg.torpid_ms = 3600 * 1000; /* the fake workers never beat */
    cfg.lost_ms = 7200 * 1000;
    cfg.start_timeout_ms = 3600 * 1000;
    cfg.backfill_depth = depth;
    wq_error_t err = {0};
    sched_t *s = sched_new(&cfg, &err);
    if (s == NULL)
        die("scheduler", err.text);
    int zero = 0;
    void *w[NODES];
    for (int i = 0; i < NODES; i++) {
        char id[32], name[32];
        snprintf(id, sizeof id, "w:n%02d", i);
        snprintf(name, sizeof name, "n%02d", i);
        w[i] = zmq_socket(zctx, ZMQ_DEALER);
        zmq_setsockopt(w[i], ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(w[i], ZMQ_ROUTING_ID, id, strlen(id));
        if (zmq_connect(w[i], endpoint) != 0)
            die("connect", zmq_strerror(zmq_errno()));
        Wslq__GpuInfo gpus[GPUS], *gp[GPUS];
        char uuids[GPUS][48];
        for (unsigned g = 0; g < GPUS; g++) {
            wslq__gpu_info__init(&gpus[g]);
            gpus[g].index = g;
            snprintf(uuids[g], sizeof uuids[g], "GPU-%s-%u", name, g);
            gpus[g].uuid = uuids[g];
            gpus[g].name = "fake";
            gp[g] = &gpus[g];
        }
        Wslq__Register r = WSLQ__REGISTER__INIT;
        r.name = name;
        r.hostname = name;
        r.ip = "127.0.0.1";
        r.cpus = 64;
        r.mem_mb = 256000;
        r.gpus = gp;
        r.n_gpus = GPUS;
        r.inbound_ok = 0;
        r.version = "bench";
        Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
        env.request_id = 1;
        env.body_case = WSLQ__ENVELOPE__BODY_REG;
        env.reg = &r;
        send_env(w[i], &env);
        answers(s, w[i], WSLQ__ENVELOPE__BODY_REG_REPLY, 1);
    }
    void *cli = zmq_socket(zctx, ZMQ_DEALER);
    zmq_setsockopt(cli, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(cli, endpoint) != 0)
        die("connect", zmq_strerror(zmq_errno()));
    srand(42);
    uint64_t rid = 1;
    /* 195 of the 200 GPUs held by 1-GPU jobs of 10 minutes to 2 hours */
    for (int i = 0; i < NODES * GPUS - 5; i++)
        submit(cli, rid++, 1, 1, 600 + (uint64_t) (rand() % 6600));
    answers(s, cli, WSLQ__ENVELOPE__BODY_SUBMIT_REPLY, NODES * GPUS - 5);
    /* the backlog: a 4-GPU job on each of 2 nodes first, then a mix (nodes here take no
     * inbound connections, so gangs are 1-node: 4 GPUs, the widest) */
    submit(cli, rid++, 1, 4, 3600);
    for (long i = 1; i < pending; i += 2000) {
        long batch = pending - i < 2000 ? pending - i : 2000;
        for (long k = 0; k < batch; k++) {
            int r = rand() % 100;
            uint32_t gpus = r < 75 ? 1 : r < 90 ? 2 : 4;
            uint64_t t = rand() % 10 == 0 ? 0 : 300 + (uint64_t) (rand() % 14100);
            submit(cli, rid++, 1, gpus, t);
        }
        answers(s, cli, WSLQ__ENVELOPE__BODY_SUBMIT_REPLY, batch);
    }
    /* settle: passes until nothing more starts */
    for (int i = 0; i < 20; i++)
        timed_pass(s, 1);
    size_t n_pend = 0, n_run = 0, n_est = 0;
    for (size_t j = 0; j < s->n_jobs; j++) {
        const Wslq__JobInfo *info = s->jobs[j]->info;
        if (info->state == WSLQ__JOB_STATE__PENDING) {
            n_pend++;
            n_est += info->est_start_ms != 0;
        } else {
            n_run++;
        }
    }
    printf("backfill_depth %u: %zu pending (%zu with a reservation), %zu started\n", depth, n_pend,
           n_est, n_run);
    double *full = malloc((size_t) passes * sizeof *full);
    double *fresh = malloc((size_t) passes * sizeof *fresh);
    for (int i = 0; i < passes; i++)
        full[i] = timed_pass(s, 1);
    for (int i = 0; i < passes; i++)
        fresh[i] = timed_pass(s, 0);
    report("full", full, passes);
    report("fresh", fresh, passes);
    free(full);
    free(fresh);
    for (int i = 0; i < NODES; i++)
        zmq_close(w[i]);
    zmq_close(cli);
    sched_destroy(&s);
    zmq_ctx_term(zctx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

int
main(int argc, char **argv)
{
    long pending = argc > 1 ? atol(argv[1]) : 100000;
    int passes = argc > 2 ? atoi(argv[2]) : 200;
    if (pending < 2 || pending > 1000000 || passes < 10 || passes > 100000)
        die("usage", "wslq-bench-backfill [PENDING (2..1000000) [PASSES (10..100000)]]");
    wq_log_level = LOG_WARNING;
    printf("one placement pass, %d nodes x %d GPUs, %ld pending jobs (75%% 1 GPU, 15%% 2, 10%% "
           "4; 10%% with no --time)\n",
           NODES, GPUS, pending);
    run(pending, passes, 8);
    run(pending, passes, 0);
    return 0;
}
