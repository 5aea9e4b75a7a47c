/* Job arrays at scale, against the real scheduler core in this process (over inproc://, one
 * DEALER, no worker): how fast one `submit --array 0-99999` is written durably (every task a
 * job row and its event row, in one transaction with SQLite synchronous=FULL, the reply only
 * after COMMIT), and how long `wslq queue`, `wslq why` (of the middle task) and
 * `wslq cancel ARRAY` take with that many tasks pending; then, with those 100,000 jobs ended,
 * how long `wslq history` (the newest 100, all users and one user's) and `wslq usage` (every
 * one of them summed) take.
 *
 *   wslq-bench-array [TASKS [RUNS]]     default 100000 tasks, 3 runs, a fresh queue each
 *
 * Prints each run and the median of each figure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bench/benchstat.h"
#include "common/log.h"
#include "proto/wire.h"
#include "scheduler/sched.h"

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* CPU seconds this process used (the scheduler core runs in it): less sensitive than the
 * wall clock to other work on the machine. */
static double
cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 +
           (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
}

static void
die(const char *what, const char *why)
{
    fprintf(stderr, "wslq-bench-array: %s: %s\n", what, why);
    exit(1);
}

/* Send env, turn the scheduler until the answer comes; returns it (caller frees). */
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

int
main(int argc, char **argv)
{
    long tasks = argc > 1 ? atol(argv[1]) : 100000;
    int runs = argc > 2 ? atoi(argv[2]) : 3;
    if (tasks < 1 || tasks > 100000 || runs < 1 || runs > 50)
        die("usage", "wslq-bench-array [TASKS (1..100000) [RUNS (1..50)]]");
    wq_log_level = LOG_WARNING; /* not a line per job */
    double rate[50], cpu_rate[50], submit_s[50], queue_s[50], why_s[50], cancel_s[50];
    double hist_all_s[50], hist_user_s[50], usage_s[50], usage_cpu_s[50];
    char array[32];
    snprintf(array, sizeof array, "0-%ld", tasks - 1);
    printf("array of %ld tasks, %d runs, SQLite synchronous=FULL, a fresh queue each run\n", tasks,
           runs);
    for (int r = 0; r < runs; r++) {
        char dir[] = "/tmp/wslq-array-bench-XXXXXX";
        if (mkdtemp(dir) == NULL)
            die("mkdtemp", "failed");
        char endpoint[64];
        snprintf(endpoint, sizeof endpoint, "inproc://array-bench-%d", r);
        void *zctx = zmq_ctx_new();
        sched_config_t cfg;
        sched_config_init(&cfg);
        cfg.listen = endpoint;
        cfg.state_dir = dir;
        cfg.sync_full = 1;
        cfg.zctx = zctx;
        cfg.insecure = 1;
        cfg.admin_path = "";
        wq_error_t err = {0};
        sched_t *s = sched_new(&cfg, &err);
        if (s == NULL)
            die("scheduler", err.text);
        void *sock = zmq_socket(zctx, ZMQ_DEALER);
        int zero = 0;
        zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
        if (zmq_connect(sock, endpoint) != 0)
            die("connect", zmq_strerror(zmq_errno()));

        char *av[] = {"true"};
        Wslq__JobSpec spec = WSLQ__JOB_SPEC__INIT;
        spec.argv = av;
        spec.n_argv = 1;
        spec.nodes = 1;
        spec.cpus_per_node = 1;
        spec.user = "bench";
        spec.name = "sweep";
        spec.cwd = "/tmp";
        Wslq__SubmitRequest sub = WSLQ__SUBMIT_REQUEST__INIT;
        sub.spec = &spec;
        sub.array = array;
        Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
        env.request_id = 1;
        env.body_case = WSLQ__ENVELOPE__BODY_SUBMIT;
        env.submit = &sub;
        double c0 = cpu_s(), t0 = now_s();
        Wslq__Envelope *rep = call(s, sock, &env);
        double t1 = now_s(), c1 = cpu_s();
        uint64_t id = rep->submit_reply->job_id;
        if (rep->submit_reply->array_size != (uint32_t) tasks)
            die("submit", "the reply counts another number of tasks");
        wire_free(&rep);

        Wslq__QueueRequest q = WSLQ__QUEUE_REQUEST__INIT;
        env.request_id = 2;
        env.body_case = WSLQ__ENVELOPE__BODY_QUEUE;
        env.queue = &q;
        double t2 = now_s();
        rep = call(s, sock, &env);
        double t3 = now_s();
        if (rep->queue_reply->n_jobs != 1 || rep->queue_reply->jobs[0]->array_pending != tasks)
            die("queue", "the array is not one line");
        wire_free(&rep);

        char sel[48];
        snprintf(sel, sizeof sel, "%llu_%ld", (unsigned long long) id, tasks / 2);
        Wslq__WhyRequest w = WSLQ__WHY_REQUEST__INIT;
        w.selector = sel;
        env.request_id = 4;
        env.body_case = WSLQ__ENVELOPE__BODY_WHY;
        env.why = &w;
        double tw0 = now_s();
        rep = call(s, sock, &env);
        double tw1 = now_s();
        if (rep->why_reply->n_lines < 3)
            die("why", "too short a story");
        wire_free(&rep);
        why_s[r] = tw1 - tw0;

        snprintf(sel, sizeof sel, "%llu", (unsigned long long) id);
        char *sels[] = {sel};
        Wslq__CancelRequest c = WSLQ__CANCEL_REQUEST__INIT;
        c.selectors = sels;
        c.n_selectors = 1;
        env.request_id = 3;
        env.body_case = WSLQ__ENVELOPE__BODY_CANCEL;
        env.cancel = &c;
        double t4 = now_s();
        rep = call(s, sock, &env);
        double t5 = now_s();
        if (rep->cancel_reply->n_cancelled != (size_t) tasks)
            die("cancel", "not every task was cancelled");
        wire_free(&rep);

        /* accounting with every task ended: the newest 100 of all users and of one user
         * (the scheduler's side of wslq history), and wslq usage over all of them */
        Wslq__HistoryRequest h = WSLQ__HISTORY_REQUEST__INIT;
        h.all_users = 1;
        env.request_id = 5;
        env.body_case = WSLQ__ENVELOPE__BODY_HISTORY;
        env.history = &h;
        double th0 = now_s();
        rep = call(s, sock, &env);
        double th1 = now_s();
        if (rep->history_reply->n_jobs != (tasks < 100 ? (size_t) tasks : 100))
            die("history", "not the newest 100 jobs");
        wire_free(&rep);
        h.all_users = 0;
        h.user = "bench";
        env.request_id = 6;
        double th2 = now_s();
        rep = call(s, sock, &env);
        double th3 = now_s();
        if (rep->history_reply->n_jobs != (tasks < 100 ? (size_t) tasks : 100))
            die("history", "not the user's newest 100 jobs");
        wire_free(&rep);
        Wslq__UsageRequest u = WSLQ__USAGE_REQUEST__INIT;
        env.request_id = 7;
        env.body_case = WSLQ__ENVELOPE__BODY_USAGE;
        env.usage = &u;
        double tu0 = now_s(), cu0 = cpu_s();
        rep = call(s, sock, &env);
        double tu1 = now_s(), cu1 = cpu_s();
        if (rep->usage_reply->n_users != 1 || rep->usage_reply->users[0]->jobs != (uint64_t) tasks)
            die("usage", "not every ended job counted");
        wire_free(&rep);
        hist_all_s[r] = th1 - th0;
        hist_user_s[r] = th3 - th2;
        usage_s[r] = tu1 - tu0;
        usage_cpu_s[r] = cu1 - cu0;

        submit_s[r] = t1 - t0;
        rate[r] = (double) tasks / (t1 - t0);
        cpu_rate[r] = (double) tasks / (c1 - c0);
        queue_s[r] = t3 - t2;
        cancel_s[r] = t5 - t4;
        printf("run %d: submit %.3f s (%.0f rows/s durable; %.0f rows per CPU-second), queue "
               "%.1f ms, why %.1f ms, cancel the array %.3f s; ended: history %.1f ms (all "
               "users), %.1f ms (one user), usage %.1f ms (%.1f CPU-ms)\n",
               r + 1, submit_s[r], rate[r], cpu_rate[r], queue_s[r] * 1e3, why_s[r] * 1e3,
               cancel_s[r], hist_all_s[r] * 1e3, hist_user_s[r] * 1e3, usage_s[r] * 1e3,
               usage_cpu_s[r] * 1e3);
        fflush(stdout);
        zmq_close(sock);
        sched_destroy(&s);
        zmq_ctx_term(zctx);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "wslq-bench-array: could not remove %s\n", dir);
    }
    printf("median: submit %.3f s = %.0f rows/s durable (%.0f rows per CPU-second); with %ld "
           "pending: queue %.1f ms, why %.1f ms; cancel of the whole array %.3f s\n",
           bench_median(submit_s, (size_t) runs), bench_median(rate, (size_t) runs),
           bench_median(cpu_rate, (size_t) runs), tasks, bench_median(queue_s, (size_t) runs) * 1e3,
           bench_median(why_s, (size_t) runs) * 1e3, bench_median(cancel_s, (size_t) runs));
    printf("median with %ld ended: history (newest 100) %.1f ms all users, %.1f ms one user; "
           "usage of all %.1f ms (%.1f CPU-ms)\n",
           tasks, bench_median(hist_all_s, (size_t) runs) * 1e3,
           bench_median(hist_user_s, (size_t) runs) * 1e3,
           bench_median(usage_s, (size_t) runs) * 1e3,
           bench_median(usage_cpu_s, (size_t) runs) * 1e3);
    return 0;
}
