/* One scheduling pass with fair-share on, against the real scheduler core in this process
 * (over inproc://): 50 fake nodes x 4 GPUs registered and full, 100,000 pending 1-GPU jobs
 * of 10 users (arrays), every user with different usage. A full pass that looks at every
 * job (as the first after a restart, when any dependency may have ended meanwhile) goes
 * through every pending job in effective-priority order; the tasks of an array after one
 * that did not fit are skipped from the pending set's entries alone. Then the merge alone, and,
 * after a restart with fair-share and age weighted 0 (the order of before) and no node registered
 * again, a pass that must look at every job itself (no node has room: each one's dependencies are
 * checked).
 *
 *   wslq-bench-fairshare [JOBS [PASSES]]     default 100000 jobs, 50 passes
 *
 * Prints the median, 10th and 90th percentile and the largest pass time of each case. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bench/benchstat.h"
#include "common/log.h"
#include "proto/wire.h"
#include "scheduler/fairshare.h"
#include "scheduler/sched_int.h"

#define NODES 50
#define GPUS  4
#define USERS 10

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
die(const char *what, const char *why)
{
    fprintf(stderr, "wslq-bench-fairshare: %s: %s\n", what, why);
    exit(1);
}

static Wslq__Envelope *
call(sched_t *s, void *sock, Wslq__Envelope *env)
{
    wq_error_t err = {0};
    if (wire_send(sock, NULL, 0, env, 0, &err) < 0)
        die("send", err.text);
    for (int turns = 0; turns < 100000; turns++) {
        if (sched_turn(s, 1, &err) < 0)
            die("scheduler turn", err.text);
        Wslq__Envelope *rep = wire_recv(sock, NULL, NULL, ZMQ_DONTWAIT, &err);
        if (rep != NULL) {
            if (rep->body_case == WSLQ__ENVELOPE__BODY_ERROR)
                die("request", rep->error->text);
            return rep;
        }
    }
    die("request", "no answer");
    return NULL;
}

/* Time n passes (ended: every pending job looked at, as after a restart). */
static void
measure(sched_t *s, const char *label, int n, int ended)
{
    double *t = malloc((size_t) n * sizeof *t);
    wq_error_t err = {0};
    for (int i = 0; i < n; i++) {
        s->dirty = 1;
        s->place_ended = ended;
        double t0 = now_s();
        place_pass(s);
        t[i] = (now_s() - t0) * 1e3;
        if (sched_turn(s, 0, &err) < 0) /* commits whatever the pass wrote */
            die("scheduler turn", err.text);
    }
    bench_sort(t, (size_t) n);
    printf("%-48s median %7.2f ms  p10 %7.2f  p90 %7.2f  max %7.2f  (%d passes)\n", label, t[n / 2],
           t[n / 10], t[(n * 9) / 10], t[n - 1], n);
    free(t);
}

/* The cost of the order itself: the merge's set-up and every job taken from it. */
static void
measure_merge(sched_t *s, const char *label, int n)
{
    double *t = malloc((size_t) n * sizeof *t);
    for (int i = 0; i < n; i++) {
        double t0 = now_s();
        fairshare_order_begin(s);
        size_t seen = 0;
        while (fairshare_order_next(s) < s->n_pend)
            seen++;
        t[i] = (now_s() - t0) * 1e3;
        if (seen + s->n_pend_holes != s->n_pend)
            die("merge", "not every pending job came out once");
    }
    bench_sort(t, (size_t) n);
    printf("%-48s median %7.2f ms  p10 %7.2f  p90 %7.2f  max %7.2f  (%d passes)\n", label, t[n / 2],
           t[n / 10], t[(n * 9) / 10], t[n - 1], n);
    free(t);
}

static sched_t *
boot(const char *dir, const char *endpoint, void *zctx, const fs_config_t *fs)
{
    sched_config_t cfg;
    sched_config_init(&cfg);
    cfg.listen = endpoint;
    cfg.state_dir = dir;
    cfg.sync_full = 0;
    cfg.zctx = zctx;
    cfg.insecure = 1;
    cfg.admin_path = "";
    cfg.torpid_ms = 600000;
    cfg.lost_ms = 1200000;
    cfg.fairshare = fs;
    wq_error_t err = {0};
    sched_t *s = sched_new(&cfg, &err);
    if (s == NULL)
        die("scheduler", err.text);
    return s;
}

int
main(int argc, char **argv)
{
    long jobs = argc > 1 ? atol(argv[1]) : 100000;
    int passes = argc > 2 ? atoi(argv[2]) : 50;
    if (jobs < USERS || jobs > 1000000 || passes < 1 || passes > 10000)
        die("usage", "wslq-bench-fairshare [JOBS (10..1000000) [PASSES (1..10000)]]");
    wq_log_level = LOG_WARNING;
    char dir[] = "/tmp/wslq-fs-bench-XXXXXX";
    if (mkdtemp(dir) == NULL)
        die("mkdtemp", "failed");
    void *zctx = zmq_ctx_new();
    fs_config_t fs;
    fs_config_init(&fs);
    sched_t *s = boot(dir, "inproc://fs-bench-1", zctx, &fs);
    void *cli = zmq_socket(zctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(cli, ZMQ_LINGER, &zero, sizeof zero);
    zmq_connect(cli, "inproc://fs-bench-1");
    /* the nodes */
    void *w[NODES];
    for (int n = 0; n < NODES; n++) {
        char id[32], name[32];
        snprintf(id, sizeof id, "w:pc%02d", n);
        snprintf(name, sizeof name, "pc%02d", n);
        w[n] = zmq_socket(zctx, ZMQ_DEALER);
        zmq_setsockopt(w[n], ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(w[n], ZMQ_ROUTING_ID, id, strlen(id));
        zmq_connect(w[n], "inproc://fs-bench-1");
        Wslq__GpuInfo g[GPUS], *gp[GPUS];
        for (int i = 0; i < GPUS; i++) {
            wslq__gpu_info__init(&g[i]);
            g[i].index = (uint32_t) i;
            g[i].uuid = "GPU-bench";
            g[i].name = "bench";
            gp[i] = &g[i];
        }
        Wslq__Register r = WSLQ__REGISTER__INIT;
        r.name = name;
        r.hostname = name;
        r.ip = "127.0.0.1";
        r.cpus = 64;
        r.mem_mb = 256000;
        r.gpus = gp;
        r.n_gpus = GPUS;
        r.version = "bench";
        Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
        env.request_id = 1;
        env.body_case = WSLQ__ENVELOPE__BODY_REG;
        env.reg = &r;
        Wslq__Envelope *rep = call(s, w[n], &env);
        wire_free(&rep);
    }
    /* the jobs: USERS arrays; the first users' jobs go first and fill the GPUs, so their
     * running time is usage, and each user has a different amount */
    double t0 = now_s();
    for (int u = 0; u < USERS; u++) {
        char user[16], array[32];
        snprintf(user, sizeof user, "user%d", u);
        snprintf(array, sizeof array, "0-%ld", jobs / USERS - 1);
        char *av[] = {"true"};
        Wslq__JobSpec spec = WSLQ__JOB_SPEC__INIT;
        spec.argv = av;
        spec.n_argv = 1;
        spec.nodes = 1;
        spec.gpus_per_node = 1;
        spec.user = user;
        spec.name = "sweep";
        spec.cwd = "/tmp";
        spec.priority = u % 3; /* a few priorities */
        Wslq__SubmitRequest sub = WSLQ__SUBMIT_REQUEST__INIT;
        sub.spec = &spec;
        sub.array = array;
        Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
        env.request_id = 2;
        env.body_case = WSLQ__ENVELOPE__BODY_SUBMIT;
        env.submit = &sub;
        Wslq__Envelope *rep = call(s, cli, &env);
        wire_free(&rep);
    }
    printf("%d nodes x %d GPUs, all busy; %ld pending 1-GPU jobs of %d users (%.1f s to set "
           "up)\n",
           NODES, GPUS, (long) s->n_pend, USERS, now_s() - t0);
    usleep(200000); /* the running jobs' time is usage */
    measure(s, "full pass, fair-share and age on (defaults)", passes, 1);
    measure(s, "full pass, no job ended since the last", passes, 0);
    measure_merge(s, "the merge alone (order of every pending job)", passes);
    /* the same queue, fair-share and age off: the order of before */
    zmq_close(cli);
    for (int n = 0; n < NODES; n++)
        zmq_close(w[n]);
    sched_destroy(&s);
    fs.w_fairshare = 0;
    fs.w_age = 0;
    s = boot(dir, "inproc://fs-bench-2", zctx, &fs);
    wq_error_t err = {0};
    sched_turn(s, 0, &err);
    measure(s, "weights 0, restarted, no node: every job looked at", passes, 1);
    measure_merge(s, "the merge alone, weights 0", passes);
    sched_destroy(&s);
    fs_config_free(&fs);
    zmq_ctx_term(zctx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return 0;
}
