/* The real wslq-worker against a fake scheduler: a ROUTER socket in this process on a random
 * loopback port. Register, launch, JobStarted, LogChunk content, JobEnded with exit code,
 * re-sends until JobEndedAck, duplicate launches, Reregister with running jobs, kill, a bad
 * frame, and a worker restart that re-adopts a running job; that a launch does not read the
 * owner file again. Every wait is bounded. argv[1] = path of wslq-worker. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>
/* after the standard headers */
#include <cmocka.h>

#include "common/clock.h"
#include "proto/keys.h"
#include "proto/wire.h"

static const char *worker_bin;
static void *zctx, *router;
static char endpoint[128];
static char dir[32];
static pid_t worker_pid;
static char ident[256];
static size_t ident_len;
static char logbuf[8192];
static size_t loglen;

/* The worker with a heartbeat every heartbeat_ms and the owner file owner_file ("": the
 * default one). */
static void
start_worker_with(const char *heartbeat_ms, const char *owner_file)
{
    worker_pid = fork();
    assert_true(worker_pid >= 0);
    if (worker_pid == 0) {
        /* without an owner file, NULL ends the arguments before it */
        const char *owner_opt = *owner_file ? "--owner-file" : NULL;
        execl(worker_bin, worker_bin, "--scheduler", endpoint, "--name", "tw1", "--state-dir", dir,
              "--gpus", "2", "--heartbeat-ms", heartbeat_ms, "--kill-grace-ms", "300", "--ip",
              "127.0.0.1",
              /* the protocol, not accounts (worker_runas_test): jobs as the worker, root too */
              "--run-as", "worker", owner_opt, owner_file, (char *) NULL);
        _exit(127);
    }
}

static void
start_worker(void)
{
    start_worker_with("100", "");
}

static int
stop_worker(void)
{
    kill(worker_pid, SIGTERM);
    int status = -1;
    for (int i = 0; i < 500; i++) {
        if (waitpid(worker_pid, &status, WNOHANG) == worker_pid)
            return status;
        usleep(10000);
    }
    kill(worker_pid, SIGKILL);
    waitpid(worker_pid, &status, 0);
    return -1;
}

/* The messages about a job in the order they came (body and job id), for the order checks:
 * nothing about a job may come before its JobStarted. */
#define SEEN_MAX 4096
static struct {
    int body;
    uint64_t job;
} seen[SEEN_MAX];
static size_t nseen;
static unsigned nheartbeats; /* Heartbeats received, all of them */

static void
note_seen(const Wslq__Envelope *env)
{
    uint64_t job = env->body_case == WSLQ__ENVELOPE__BODY_STARTED       ? env->started->job_id
                   : env->body_case == WSLQ__ENVELOPE__BODY_ENDED       ? env->ended->job_id
                   : env->body_case == WSLQ__ENVELOPE__BODY_LOG         ? env->log->job_id
                   : env->body_case == WSLQ__ENVELOPE__BODY_METRICS     ? env->metrics->job_id
                   : env->body_case == WSLQ__ENVELOPE__BODY_RANK_FAILED ? env->rank_failed->job_id
                                                                        : 0;
    nheartbeats += env->body_case == WSLQ__ENVELOPE__BODY_HEARTBEAT;
    if (job != 0 && nseen < SEEN_MAX) {
        seen[nseen].body = (int) env->body_case;
        seen[nseen].job = job;
        nseen++;
    }
}

/* Where the first message of this body about job came in seen[], or -1. */
static long
seen_at(int body, uint64_t job)
{
    for (size_t i = 0; i < nseen; i++)
        if (seen[i].body == body && seen[i].job == job)
            return (long) i;
    return -1;
}

/* Next message of kind 'body' within timeout_ms; LogChunks seen on the way are collected
 * into logbuf. NULL on timeout. */
static Wslq__Envelope *
expect(int body, int timeout_ms)
{
    int64_t end = wq_clock_mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = end - wq_clock_mono_ms();
        if (left <= 0)
            return NULL;
        zmq_pollitem_t it = {router, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, (long) left) <= 0)
            continue;
        wq_error_t err = {0};
        char id[256];
        size_t idl = 0;
        Wslq__Envelope *env = wire_recv(router, id, &idl, 0, &err);
        if (env == NULL)
            continue;
        memcpy(ident, id, idl);
        ident_len = idl;
        note_seen(env);
        if (env->body_case == WSLQ__ENVELOPE__BODY_LOG) {
            Wslq__LogChunk *c = env->log;
            if (c->offset == loglen && loglen + c->data.len < sizeof logbuf) {
                memcpy(logbuf + loglen, c->data.data, c->data.len);
                loglen += c->data.len;
                logbuf[loglen] = '\0';
            }
        }
        if ((int) env->body_case == body)
            return env;
        wire_free(&env);
    }
}

static void
send_to_worker(Wslq__Envelope *env)
{
    wq_error_t err = {0};
    assert_int_equal(wire_send(router, ident, ident_len, env, 0, &err), 0);
}

static void
send_register_reply(uint64_t job, uint64_t log_offset)
{
    Wslq__RegisterReply r = WSLQ__REGISTER_REPLY__INIT;
    Wslq__RunningJob rj = WSLQ__RUNNING_JOB__INIT, *rp = &rj;
    if (job) {
        rj.job_id = job;
        rj.log_offset = log_offset;
        r.n_log_offsets = 1;
        r.log_offsets = &rp;
    }
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_REG_REPLY;
    env.reg_reply = &r;
    send_to_worker(&env);
}

static char *argv_sh[3] = {"/bin/sh", "-c", NULL};
static uint32_t gpu1[] = {1};
static char *uuid1[] = {"DECLARED-tw1-1"};

static void
send_launch(uint64_t id, const char *line, int with_gpu)
{
    Wslq__JobSpec spec = WSLQ__JOB_SPEC__INIT;
    argv_sh[2] = (char *) line;
    spec.argv = argv_sh;
    spec.n_argv = 3;
    spec.wrap = 1;
    spec.cwd = "/tmp";
    spec.name = "t";
    spec.nodes = 1;
    Wslq__Alloc al = WSLQ__ALLOC__INIT;
    al.node = "tw1";
    al.nranks = 1;
    if (with_gpu) {
        al.gpus = gpu1;
        al.n_gpus = 1;
        al.gpu_uuids = uuid1;
        al.n_gpu_uuids = 1;
    }
    Wslq__JobLaunch l = WSLQ__JOB_LAUNCH__INIT;
    l.job_id = id;
    l.spec = &spec;
    l.alloc = &al;
    l.world_size = 1;
    l.nnodes = 1;
    l.master_addr = "127.0.0.1";
    l.master_port = 29999;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_LAUNCH;
    env.launch = &l;
    send_to_worker(&env);
}

static void
send_kill(uint64_t id, uint32_t grace)
{
    Wslq__JobKill k = WSLQ__JOB_KILL__INIT;
    k.job_id = id;
    k.grace_ms = grace;
    k.reason = "cancelled by test";
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_KILL;
    env.kill = &k;
    send_to_worker(&env);
}

static void
send_ack(uint64_t id)
{
    Wslq__JobEndedAck a = WSLQ__JOB_ENDED_ACK__INIT;
    a.job_id = id;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_ENDED_ACK;
    env.ended_ack = &a;
    send_to_worker(&env);
}

static int
setup(void **state)
{
    (void) state;
    snprintf(dir, sizeof dir, "/tmp/wslq-wproto-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    zctx = zmq_ctx_new();
    router = zmq_socket(zctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
    /* a CURVE server like the real one; the worker's credentials pin its key (as after
     * wslq-worker --join) */
    keys_creds_t server, node = {.name = "tw1"};
    wq_error_t err = {0};
    int on = 1;
    if (keys_generate(&server, &err) < 0 || keys_generate(&node, &err) < 0 ||
        zmq_setsockopt(router, ZMQ_CURVE_SERVER, &on, sizeof on) < 0 ||
        zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY, server.secret, KEYS_Z85_LEN) < 0)
        return -1;
    if (zmq_bind(router, "tcp://127.0.0.1:*") < 0)
        return -1;
    size_t n = sizeof endpoint;
    zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, endpoint, &n);
    snprintf(node.server, sizeof node.server, "%s", server.public_);
    snprintf(node.scheduler, sizeof node.scheduler, "%s", endpoint);
    char path[64];
    snprintf(path, sizeof path, "%s/credentials", dir);
    return keys_save(path, &node, &err);
}

static int
teardown(void **state)
{
    (void) state;
    if (worker_pid > 0 && waitpid(worker_pid, NULL, WNOHANG) == 0)
        stop_worker();
    zmq_close(router);
    zmq_ctx_term(zctx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
test_worker_conversation(void **state)
{
    (void) state;
    start_worker();

    /* Register with declared GPUs, under identity w:tw1: and 128 random bits in hex */
    Wslq__Envelope *e = expect(WSLQ__ENVELOPE__BODY_REG, 10000);
    assert_non_null(e);
    assert_int_equal(ident_len, 6 + 32);
    assert_memory_equal(ident, "w:tw1:", 6);
    for (size_t i = 6; i < 6 + 32; i++)
        assert_non_null(strchr("0123456789abcdef", ident[i]));
    assert_string_equal(e->reg->name, "tw1");
    assert_string_equal(e->reg->ip, "127.0.0.1");
    assert_int_equal(e->reg->n_gpus, 2);
    assert_true(e->reg->gpus[1]->declared);
    assert_string_equal(e->reg->gpus[1]->uuid, "DECLARED-tw1-1");
    assert_string_equal(e->reg->gpus[1]->name, "declared");
    assert_int_equal(e->reg->n_running, 0);
    assert_int_equal(e->reg->heartbeat_ms, 100);
    assert_int_equal(e->reg->next_heartbeat_ms, 100);
    assert_true(e->reg->cpus >= 1);
    wire_free(&e);
    send_register_reply(0, 0);

    /* heartbeats come */
    e = expect(WSLQ__ENVELOPE__BODY_HEARTBEAT, 2000);
    assert_non_null(e);
    assert_int_equal(e->heartbeat->n_gpus, 2);
    wire_free(&e);
    /* idle: once nothing changes, they announce the idle interval (3 x heartbeat_ms) */
    uint32_t announced = 0;
    for (int i = 0; i < 10 && announced != 300; i++) {
        e = expect(WSLQ__ENVELOPE__BODY_HEARTBEAT, 2000);
        assert_non_null(e);
        announced = e->heartbeat->next_heartbeat_ms;
        assert_true(announced == 100 || announced == 300);
        wire_free(&e);
    }
    assert_int_equal(announced, 300);

    /* a job: started, its output, its end with exit code, resent until acked */
    loglen = 0;
    send_launch(1,
                "echo hello $RANK $MASTER_PORT; echo gpus=$CUDA_VISIBLE_DEVICES;"
                "test -S \"$WSLQ_RENDEZVOUS\" && echo rdv; exit 7",
                1);
    e = expect(WSLQ__ENVELOPE__BODY_STARTED, 5000);
    assert_non_null(e);
    assert_int_equal(e->started->job_id, 1);
    wire_free(&e);
    e = expect(WSLQ__ENVELOPE__BODY_ENDED, 5000);
    assert_non_null(e);
    assert_int_equal(e->ended->job_id, 1);
    assert_int_equal(e->ended->exit_code, 7);
    assert_int_equal(e->ended->failed_rank, 0);
    assert_int_equal(e->ended->log_bytes, 25);
    wire_free(&e);
    for (int i = 0; i < 100 && loglen < 25; i++)
        wire_free((e = expect(WSLQ__ENVELOPE__BODY_ENDED, 100), &e));
    assert_string_equal(logbuf, "hello 0 29999\ngpus=1\nrdv\n");
    e = expect(WSLQ__ENVELOPE__BODY_ENDED, 3500); /* re-sent: no ack yet */
    assert_non_null(e);
    wire_free(&e);
    send_ack(1);
    e = expect(WSLQ__ENVELOPE__BODY_ENDED, 3000);
    assert_null(e);
    /* it ended within the JobStarted hold: its JobStarted still came first, before its
     * output, its failed rank and its end */
    long started = seen_at(WSLQ__ENVELOPE__BODY_STARTED, 1);
    assert_true(started >= 0);
    assert_true(seen_at(WSLQ__ENVELOPE__BODY_LOG, 1) > started);
    assert_true(seen_at(WSLQ__ENVELOPE__BODY_RANK_FAILED, 1) > started);
    assert_true(seen_at(WSLQ__ENVELOPE__BODY_ENDED, 1) > started);

    /* a long job: duplicate launch answered, not run twice; Reregister lists it */
    loglen = 0;
    send_launch(2, "echo long; exec sleep 60", 0);
    e = expect(WSLQ__ENVELOPE__BODY_STARTED, 5000);
    assert_non_null(e);
    wire_free(&e);
    send_launch(2, "echo long; exec sleep 60", 0);
    e = expect(WSLQ__ENVELOPE__BODY_STARTED, 5000);
    assert_non_null(e);
    wire_free(&e);
    for (int i = 0; i < 100 && loglen < 5; i++)
        wire_free((e = expect(WSLQ__ENVELOPE__BODY_ENDED, 50), &e));
    assert_string_equal(logbuf, "long\n");
    /* a job runs: the heartbeats say so and come at heartbeat_ms again */
    e = expect(WSLQ__ENVELOPE__BODY_HEARTBEAT, 2000);
    assert_non_null(e);
    assert_int_equal(e->heartbeat->running, 1);
    assert_int_equal(e->heartbeat->next_heartbeat_ms, 100);
    wire_free(&e);

    /* the rendezvous relay: this process plays a rank of job 2 */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/spool/2.0/rdv.sock", dir);
    assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof sa), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(write(fd, "GET ring0\n", 10), 10);
    e = expect(WSLQ__ENVELOPE__BODY_KV, 5000);
    assert_non_null(e);
    assert_int_equal(e->kv->job_id, 2);
    assert_int_equal(e->kv->op, WSLQ__KV_REQUEST__OP__GET);
    assert_string_equal(e->kv->key, "ring0");
    Wslq__KvReply kr = WSLQ__KV_REPLY__INIT;
    kr.found = 1;
    kr.value.data = (uint8_t *) "10.0.0.1:4000";
    kr.value.len = 13;
    Wslq__Envelope kre = WSLQ__ENVELOPE__INIT;
    kre.request_id = e->request_id;
    kre.body_case = WSLQ__ENVELOPE__BODY_KV_REPLY;
    kre.kv_reply = &kr;
    wire_free(&e);
    send_to_worker(&kre);
    char kbuf[64] = "";
    ssize_t kn = 0;
    for (int i = 0; i < 10 && kn < 19; i++) {
        ssize_t r = read(fd, kbuf + kn, sizeof kbuf - 1 - (size_t) kn);
        if (r <= 0)
            break;
        kn += r;
    }
    kbuf[kn > 0 ? kn : 0] = '\0';
    assert_string_equal(kbuf, "VAL 13\n10.0.0.1:4000");
    close(fd);

    Wslq__Envelope rr = WSLQ__ENVELOPE__INIT;
    Wslq__Reregister rrb = WSLQ__REREGISTER__INIT;
    rr.body_case = WSLQ__ENVELOPE__BODY_REREGISTER;
    rr.reregister = &rrb;
    send_to_worker(&rr);
    e = expect(WSLQ__ENVELOPE__BODY_REG, 5000);
    assert_non_null(e);
    assert_int_equal(e->reg->n_running, 1);
    assert_int_equal(e->reg->running[0]->job_id, 2);
    assert_int_equal(e->reg->running[0]->log_offset, 5);
    wire_free(&e);
    /* the new scheduler has 0 bytes of the log: the worker sends it again */
    loglen = 0;
    send_register_reply(2, 0);
    for (int i = 0; i < 100 && loglen < 5; i++)
        wire_free((e = expect(WSLQ__ENVELOPE__BODY_ENDED, 50), &e));
    assert_string_equal(logbuf, "long\n");

    /* garbage and a kill for an unknown job change nothing */
    zmq_send(router, ident, ident_len, ZMQ_SNDMORE);
    zmq_send(router, "\xff\x00garbage", 9, 0);
    send_kill(999, 100);

    /* worker restart: the job keeps running and is reported, then killed */
    assert_int_equal(stop_worker(), 0);
    start_worker();
    e = expect(WSLQ__ENVELOPE__BODY_REG, 10000);
    assert_non_null(e);
    assert_int_equal(e->reg->n_running, 1);
    assert_int_equal(e->reg->running[0]->job_id, 2);
    wire_free(&e);
    send_register_reply(2, 5);
    int64_t t0 = wq_clock_mono_ms();
    send_kill(2, 200);
    e = expect(WSLQ__ENVELOPE__BODY_ENDED, 5000);
    assert_non_null(e);
    assert_int_equal(e->ended->job_id, 2);
    assert_true(e->ended->killed);
    assert_string_equal(e->ended->reason, "cancelled by test");
    assert_true(wq_clock_mono_ms() - t0 < 3000);
    wire_free(&e);
    send_ack(2);

    /* a bad working directory is a failed job with a reason, not a crash */
    Wslq__JobSpec spec = WSLQ__JOB_SPEC__INIT;
    char *argv_true[] = {"true"};
    spec.argv = argv_true;
    spec.n_argv = 1;
    spec.cwd = "/nonexistent/wslq";
    spec.nodes = 1;
    Wslq__Alloc al = WSLQ__ALLOC__INIT;
    al.node = "tw1";
    al.nranks = 1;
    Wslq__JobLaunch l = WSLQ__JOB_LAUNCH__INIT;
    l.job_id = 3;
    l.world_size = 1;
    l.spec = &spec;
    l.alloc = &al;
    Wslq__Envelope le = WSLQ__ENVELOPE__INIT;
    le.body_case = WSLQ__ENVELOPE__BODY_LAUNCH;
    le.launch = &l;
    send_to_worker(&le);
    e = expect(WSLQ__ENVELOPE__BODY_ENDED, 5000);
    assert_non_null(e);
    assert_int_equal(e->ended->job_id, 3);
    assert_non_null(strstr(e->ended->reason, "/nonexistent/wslq"));
    wire_free(&e);
    send_ack(3);

    e = expect(WSLQ__ENVELOPE__BODY_HEARTBEAT, 2000); /* still alive and talking */
    assert_non_null(e);
    assert_int_equal(e->heartbeat->running, 0);
    wire_free(&e);
    assert_int_equal(stop_worker(), 0);
}

/* Whether the file watched by inotify descriptor fd was opened since the last call, and how
 * many times as far as inotify tells (it merges an event with the same one still unread). */
static int
opens_since(int fd)
{
    int n = 0;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t len = read(fd, buf, sizeof buf);
        if (len <= 0)
            return n;
        for (char *p = buf; p < buf + len;) {
            const struct inotify_event *ev = (const struct inotify_event *) p;
            n += (ev->mask & IN_OPEN) != 0;
            p += sizeof *ev + ev->len;
        }
    }
}

/* Launch job id (exit 0) and wait for its end; acknowledged. */
static void
run_one(uint64_t id)
{
    send_launch(id, "exit 0", 0);
    Wslq__Envelope *e = expect(WSLQ__ENVELOPE__BODY_ENDED, 10000);
    assert_non_null(e);
    assert_int_equal(e->ended->job_id, id);
    assert_int_equal(e->ended->exit_code, 0);
    wire_free(&e);
    send_ack(id);
}

/* The Windows reporter's owner file at path, written now with a TDR event count of events
 * (written whole and renamed into place, as the reporter does). */
static void
write_owner(const char *path, int events)
{
    char tmp[80];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"version\": 1, \"time\": %lld, \"idle_s\": 5, \"fullscreen\": false, "
            "\"gpu_ok\": true, \"gpu_procs\": [], \"tdr\": {\"delay_s\": 2, \"level\": 3, "
            "\"events\": %d}}\n",
            (long long) (wq_clock_wall_ms() / 1000), events);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

/* The owner file (on WSL 2 on the Windows drive, where every open waits on Windows) is read
 * for the Register and each heartbeat; a launch takes the TDR count of that last read while it
 * is under TDR_REUSE_MS (5 s) old, and reads the file again only after. */
static void
test_owner_file_not_read_per_launch(void **state)
{
    (void) state;
    char owner[64];
    snprintf(owner, sizeof owner, "%s/owner.json", dir);
    write_owner(owner, 7);
    int ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    assert_true(ino >= 0);
    assert_true(inotify_add_watch(ino, owner, IN_OPEN) >= 0);

    /* heartbeats 20 s apart: none comes while the jobs below run */
    int64_t t_start = wq_clock_mono_ms(); /* the Register's read is later */
    start_worker_with("20000", owner);
    Wslq__Envelope *e = expect(WSLQ__ENVELOPE__BODY_REG, 10000);
    assert_non_null(e);
    wire_free(&e);
    int64_t t_reg = wq_clock_mono_ms(); /* ... and earlier */
    send_register_reply(0, 0);
    assert_true(opens_since(ino) >= 1);

    /* five launches, no read of their own: a launch that ended within 5 s of the worker's
     * start came within 5 s of that read; one later (a slow machine) may read once. A
     * heartbeat, were one sent, reads once. Looked at after each: inotify would merge them. */
    for (uint64_t id = 101; id <= 105; id++) {
        unsigned hb0 = nheartbeats;
        run_one(id);
        int opens = opens_since(ino) - (int) (nheartbeats - hb0);
        if (wq_clock_mono_ms() - t_start < 5000)
            assert_int_equal(opens, 0);
        else
            assert_true(opens <= 1);
    }

    /* past TDR_REUSE_MS since the last read: the next launch reads the file */
    while (wq_clock_mono_ms() - t_reg < 5300)
        usleep(50000);
    (void) opens_since(ino);
    unsigned hb0 = nheartbeats;
    run_one(106);
    assert_int_equal(opens_since(ino), 1 + (int) (nheartbeats - hb0));
    close(ino);
    assert_int_equal(stop_worker(), 0);
}

/* A failed job's end reads the owner file afresh, and that read is the one the next launch
 * takes: a reset the count rose by while one job ran is that job's, not also the next one's
 * (which, launched within 5 s of an older read, would start from the count before it). */
static void
test_tdr_count_from_the_last_end(void **state)
{
    (void) state;
    char owner[64];
    snprintf(owner, sizeof owner, "%s/owner.json", dir);
    write_owner(owner, 7);
    start_worker_with("20000", owner); /* no heartbeat reads the file meanwhile */
    Wslq__Envelope *e = expect(WSLQ__ENVELOPE__BODY_REG, 10000);
    assert_non_null(e);
    wire_free(&e);
    int64_t t_reg = wq_clock_mono_ms(); /* the Register's read was earlier */
    send_register_reply(0, 0);

    /* the count rises from 7 to 8 while job 201 runs, which then fails: a GPU reset */
    send_launch(201, "sleep 1; exit 1", 0);
    e = expect(WSLQ__ENVELOPE__BODY_STARTED, 10000);
    assert_non_null(e);
    wire_free(&e);
    write_owner(owner, 8);
    e = expect(WSLQ__ENVELOPE__BODY_ENDED, 10000);
    assert_non_null(e);
    assert_int_equal(e->ended->job_id, 201);
    assert_int_equal(e->ended->exit_code, 1);
    assert_true(e->ended->gpu_reset);
    assert_non_null(strstr(e->ended->gpu_reset_why, "Windows logged 1 display driver reset"));
    wire_free(&e);
    send_ack(201);

    /* job 202 starts after that end and fails with no new reset: an ordinary failure. Within
     * 5 s (TDR_REUSE_MS) of the Register's read it takes a kept read, which must be the end's;
     * later it reads the file itself, and this case then proves less: say so */
    if (wq_clock_mono_ms() - t_reg >= 5000)
        print_message("note: job 202 came over 5 s after the Register; its launch read the "
                      "owner file itself\n");
    send_launch(202, "exit 1", 0);
    e = expect(WSLQ__ENVELOPE__BODY_ENDED, 10000);
    assert_non_null(e);
    assert_int_equal(e->ended->job_id, 202);
    assert_int_equal(e->ended->exit_code, 1);
    assert_false(e->ended->gpu_reset);
    assert_string_equal(e->ended->gpu_reset_why, "");
    wire_free(&e);
    send_ack(202);
    assert_int_equal(stop_worker(), 0);
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH-TO-wslq-worker\n", argv[0]);
        return 77;
    }
    worker_bin = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_conversation),
        cmocka_unit_test(test_owner_file_not_read_per_launch),
        cmocka_unit_test(test_tdr_count_from_the_last_end),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
