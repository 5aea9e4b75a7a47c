/* Submit load against a scheduler over one DEALER, for benchmarks.
 *   wslq-bench-submit ENDPOINT latency N STAMPFILE   one job at a time on an idle cluster:
 *       prints "<job id> <submit ns>" per job (the stamp job writes its start time)
 *   wslq-bench-submit ENDPOINT drain N               N trivial jobs pipelined, then waits
 *       until none is active; prints submit and drain rates
 *   wslq-bench-submit ENDPOINT pending N JOBID       N trivial jobs pipelined that wait for
 *       JOBID to complete (a backlog of active jobs, for bench/http_bench.py)
 *   wslq-bench-submit ENDPOINT rtt N [JOBID]         N submits one at a time, each answered
 *       before the next (behind JOBID if given); prints each round trip in ms
 *   wslq-bench-submit ENDPOINT empty MS              asks every MS ms until no job is active
 *       (the end of a drain, for bench/vs_tsp.py) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "proto/keys.h"
#include "proto/wire.h"

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static long long
wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t after_id; /* pending mode: every job depends on this one */

static void
send_submit(void *sock, uint64_t rid, char **argv, size_t argc)
{
    Wslq__JobSpec spec = WSLQ__JOB_SPEC__INIT;
    if (after_id) {
        spec.depends_on = &after_id;
        spec.n_depends_on = 1;
    }
    spec.argv = argv;
    spec.n_argv = argc;
    spec.nodes = 1;
    spec.cpus_per_node = 1;
    spec.user = "bench";
    spec.name = "bench";
    Wslq__SubmitRequest req = WSLQ__SUBMIT_REQUEST__INIT;
    req.spec = &spec;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = rid;
    env.body_case = WSLQ__ENVELOPE__BODY_SUBMIT;
    env.submit = &req;
    if (wire_send(sock, NULL, 0, &env, 0, NULL) < 0) {
        fprintf(stderr, "send failed\n");
        exit(1);
    }
}

static Wslq__Envelope *
recv_reply(void *sock)
{
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, 10000) <= 0) {
        fprintf(stderr, "no reply within 10 s\n");
        exit(1);
    }
    wq_error_t err = {0};
    Wslq__Envelope *r = wire_recv(sock, NULL, NULL, 0, &err);
    if (r == NULL || r->body_case == WSLQ__ENVELOPE__BODY_ERROR) {
        fprintf(stderr, "bad reply: %s\n", r ? r->error->text : err.text);
        exit(1);
    }
    return r;
}

/* Whether any job is active: the newest one at most is listed, so that asking every few ms
 * at the end of a drain does not weigh on the scheduler it measures (a listing of 1,000 jobs
 * each time took a quarter of its CPU). */
static size_t
active_jobs(void *sock)
{
    Wslq__QueueRequest q = WSLQ__QUEUE_REQUEST__INIT;
    q.limit = 1;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = 1;
    env.body_case = WSLQ__ENVELOPE__BODY_QUEUE;
    env.queue = &q;
    wire_send(sock, NULL, 0, &env, 0, NULL);
    Wslq__Envelope *r = recv_reply(sock);
    size_t n = r->queue_reply->n_jobs;
    wire_free(&r);
    return n;
}

int
main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: wslq-bench-submit ENDPOINT latency N STAMPFILE STAMPBIN | "
                        "drain N | pending N JOBID | rtt N [JOBID] | empty MS\n");
        return 2;
    }
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    /* a CURVE client with the keys of $WSLQ_CREDENTIALS, as wslq is; plain without (an
     * --insecure scheduler, or its local ipc:// socket) */
    const char *creds_path = getenv("WSLQ_CREDENTIALS");
    if (creds_path != NULL && creds_path[0] != '\0' && strncmp(argv[1], "ipc://", 6) != 0) {
        keys_creds_t creds;
        wq_error_t err = {0};
        if (keys_load(creds_path, &creds, &err) < 0 || keys_client_socket(sock, &creds, &err) < 0) {
            fprintf(stderr, "wslq-bench-submit: %s\n", err.text);
            return 2;
        }
    }
    zmq_connect(sock, argv[1]);
    int n = atoi(argv[3]);
    if (strcmp(argv[2], "latency") == 0 && argc == 6) {
        char *job[] = {argv[5], argv[4]};
        for (int i = 0; i < n; i++) {
            long long t0 = wall_ns();
            send_submit(sock, (uint64_t) i + 1, job, 2);
            Wslq__Envelope *r = recv_reply(sock);
            printf("%llu %lld\n", (unsigned long long) r->submit_reply->job_id, t0);
            wire_free(&r);
            /* Let it finish so every job starts on an idle cluster. */
            while (active_jobs(sock) > 0)
                usleep(2000);
        }
    } else if (strcmp(argv[2], "drain") == 0) {
        char *job[] = {"/bin/true"};
        double t0 = now_s();
        for (int i = 0; i < n; i++)
            send_submit(sock, (uint64_t) i + 1, job, 1);
        for (int i = 0; i < n; i++) {
            Wslq__Envelope *r = recv_reply(sock);
            wire_free(&r);
        }
        double t1 = now_s();
        double deadline = t1 + 600;
        while (active_jobs(sock) > 0 && now_s() < deadline)
            usleep(5000);
        double t2 = now_s();
        printf("submitted %d jobs in %.3f s: %.0f jobs/s (one connection, pipelined)\n", n, t1 - t0,
               n / (t1 - t0));
        printf("drained %d jobs in %.3f s from the first submit: %.0f jobs/s\n", n, t2 - t0,
               n / (t2 - t0));
    } else if (strcmp(argv[2], "pending") == 0 && argc == 5) {
        char *job[] = {"/bin/true"};
        after_id = strtoull(argv[4], NULL, 10);
        double t0 = now_s();
        for (int i = 0; i < n; i++)
            send_submit(sock, (uint64_t) i + 1, job, 1);
        for (int i = 0; i < n; i++) {
            Wslq__Envelope *r = recv_reply(sock);
            wire_free(&r);
        }
        printf("queued %d jobs behind job %s in %.3f s\n", n, argv[4], now_s() - t0);
    } else if (strcmp(argv[2], "rtt") == 0 && (argc == 4 || argc == 5)) {
        char *job[] = {"/bin/true"};
        if (argc == 5)
            after_id = strtoull(argv[4], NULL, 10);
        for (int i = 0; i < n; i++) {
            double t0 = now_s();
            send_submit(sock, (uint64_t) i + 1, job, 1);
            Wslq__Envelope *r = recv_reply(sock);
            wire_free(&r);
            printf("%.3f\n", (now_s() - t0) * 1000);
        }
    } else if (strcmp(argv[2], "empty") == 0) {
        int ms = n > 0 ? n : 10;
        double deadline = now_s() + 600;
        while (active_jobs(sock) > 0 && now_s() < deadline)
            usleep((useconds_t) ms * 1000);
    } else {
        fprintf(stderr, "unknown mode %s\n", argv[2]);
        return 2;
    }
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return 0;
}
