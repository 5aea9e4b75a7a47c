/* The scheduler core, driven turn by turn over inproc:// with fake workers and a fake CLI in
 * this process: register, place, start, end; a lost node; a gang whose rank fails; a restart
 * from the database that adopts a running job; a database that cannot be written. No network,
 * no other process. */
/* cmocka.h needs these first. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* after the standard headers */
#include <cmocka.h>
#include <sqlite3.h>
#include <zmq.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/mem.h"
#include "proto/nodecheck.h"
#include "proto/wire.h"
#include "scheduler/sched.h"
#include "scheduler/sched_int.h" /* nodes_torpid_ms */
#include "scheduler/tests/vfs_count.h"

#define MAX_WORKERS 24

typedef struct {
    void *sock;
    char name[32];
    int beating; /* send a Heartbeat every HB_MS while the test pumps the loop */
    uint32_t owner_state, owner_policy, owner_max_s; /* sent in each Heartbeat */
    uint32_t next_hb_ms;                             /* its next_heartbeat_ms; 0 = an old one */
} fake_worker_t;

typedef struct {
    char dir[64];
    char endpoint[96];
    void *zctx;
    sched_config_t cfg;
    sched_t *s;
    void *cli;
    fake_worker_t w[MAX_WORKERS];
    int n_w;
    int64_t next_hb;
    uint64_t next_rid;
    int fatal_calls;
    char fatal_text[256];
    struct {
        void *sock;
        Wslq__Envelope *env;
    } stash[32]; /* messages expect() read while looking for another kind */
    int n_stash;
    int preemptible;  /* what send_submit's spec says */
    int32_t priority; /* likewise */
} fx_t;

#define HB_MS 50

static void
on_fatal(const wq_error_t *err, void *arg)
{
    fx_t *f = arg;
    f->fatal_calls++;
    snprintf(f->fatal_text, sizeof f->fatal_text, "%s", err->text);
}

static void
boot(fx_t *f)
{
    wq_error_t err = {0};
    f->s = sched_new(&f->cfg, &err);
    if (f->s == NULL)
        fail_msg("sched_new: %s", err.text);
}

static void
new_endpoint(fx_t *f)
{
    static int seq;
    snprintf(f->endpoint, sizeof f->endpoint, "inproc://core-%d-%d", (int) getpid(), ++seq);
}

static int
setup(void **state)
{
    fx_t *f = wq_calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/wslq-core-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    new_endpoint(f);
    f->zctx = zmq_ctx_new();
    sched_config_init(&f->cfg);
    f->cfg.listen = f->endpoint;
    f->cfg.state_dir = f->dir;
    f->cfg.sync_full = 0;
    f->cfg.zctx = f->zctx;
    /* the core's logic, not its keys: CURVE and enrolment are tested with the real programs
     * (tests/integration/test_security.py) */
    f->cfg.insecure = 1;
    f->cfg.admin_path = "";
    f->cfg.torpid_ms = 600; /* generous: ASan on two busy cores */
    f->cfg.lost_ms = 1500;
    f->cfg.kill_grace_ms = 1000;
    f->cfg.missing_grace_ms = 400;
    f->cfg.on_fatal = on_fatal;
    f->cfg.on_fatal_arg = f;
    boot(f);
    *state = f;
    return 0;
}

static void
close_socks(fx_t *f)
{
    for (int i = 0; i < f->n_w; i++)
        if (f->w[i].sock) {
            zmq_close(f->w[i].sock);
            f->w[i].sock = NULL;
        }
    if (f->cli) {
        zmq_close(f->cli);
        f->cli = NULL;
    }
}

/* The scheduler process restarts: same state directory, fresh memory. (A new inproc name:
 * ZeroMQ frees the old one asynchronously.) */
static void
reboot(fx_t *f)
{
    close_socks(f);
    f->n_w = 0;
    sched_destroy(&f->s);
    new_endpoint(f);
    boot(f);
}

static int
teardown(void **state)
{
    fx_t *f = *state;
    close_socks(f);
    for (int i = 0; i < f->n_stash; i++)
        wire_free(&f->stash[i].env);
    sched_destroy(&f->s);
    zmq_ctx_term(f->zctx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

static void *
dealer(fx_t *f, const char *identity)
{
    void *s = zmq_socket(f->zctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (identity)
        zmq_setsockopt(s, ZMQ_ROUTING_ID, identity, strlen(identity));
    assert_int_equal(zmq_connect(s, f->endpoint), 0);
    return s;
}

static void
send_env(void *sock, Wslq__Envelope *env)
{
    wq_error_t err = {0};
    if (wire_send(sock, NULL, 0, env, 0, &err) < 0)
        fail_msg("send: %s", err.text);
}

static void
heartbeats(fx_t *f)
{
    int64_t now = wq_clock_mono_ms();
    if (now < f->next_hb)
        return;
    f->next_hb = now + HB_MS;
    for (int i = 0; i < f->n_w; i++) {
        if (!f->w[i].beating)
            continue;
        Wslq__Heartbeat hb = WSLQ__HEARTBEAT__INIT;
        hb.owner_state = f->w[i].owner_state;
        hb.owner_policy = f->w[i].owner_policy;
        hb.owner_suspend_max_s = f->w[i].owner_max_s;
        hb.next_heartbeat_ms = f->w[i].next_hb_ms;
        Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
        env.body_case = WSLQ__ENVELOPE__BODY_HEARTBEAT;
        env.heartbeat = &hb;
        send_env(f->w[i].sock, &env);
    }
}

/* One turn of the scheduler (and the fake workers' heartbeats). */
static int
turn(fx_t *f)
{
    heartbeats(f);
    wq_error_t err = {0};
    return sched_turn(f->s, 5, &err);
}

static void
pump(fx_t *f, int ms)
{
    int64_t end = wq_clock_mono_ms() + ms;
    while (wq_clock_mono_ms() < end)
        assert_int_equal(turn(f), 0);
}

/* The next message of this kind on sock, pumping the loop meanwhile; others are kept for a
 * later expect(). */
static Wslq__Envelope *
expect(fx_t *f, void *sock, Wslq__Envelope__BodyCase want, int ms)
{
    for (int i = 0; i < f->n_stash; i++)
        if (f->stash[i].sock == sock && f->stash[i].env->body_case == want) {
            Wslq__Envelope *env = f->stash[i].env;
            memmove(&f->stash[i], &f->stash[i + 1],
                    (size_t) (f->n_stash - i - 1) * sizeof f->stash[0]);
            f->n_stash--;
            return env;
        }
    int64_t end = wq_clock_mono_ms() + ms;
    while (wq_clock_mono_ms() < end) {
        assert_int_equal(turn(f), 0);
        wq_error_t err = {0};
        Wslq__Envelope *env;
        while ((env = wire_recv(sock, NULL, NULL, ZMQ_DONTWAIT, &err)) != NULL) {
            if (env->body_case == want)
                return env;
            if (env->body_case == WSLQ__ENVELOPE__BODY_ERROR)
                fail_msg("error reply: %s", env->error->text);
            if (f->n_stash < (int) (sizeof f->stash / sizeof f->stash[0])) {
                f->stash[f->n_stash].sock = sock;
                f->stash[f->n_stash++].env = env;
            } else {
                wire_free(&env);
            }
        }
    }
    fail_msg("no message with body %d within %d ms", (int) want, ms);
    return NULL;
}

/* Nothing of this kind arrives within ms. */
static void
expect_none(fx_t *f, void *sock, Wslq__Envelope__BodyCase body, int ms)
{
    int64_t end = wq_clock_mono_ms() + ms;
    while (wq_clock_mono_ms() < end) {
        turn(f);
        wq_error_t err = {0};
        Wslq__Envelope *env;
        while ((env = wire_recv(sock, NULL, NULL, ZMQ_DONTWAIT, &err)) != NULL) {
            int bad = env->body_case == body;
            wire_free(&env);
            if (bad)
                fail_msg("unexpected message with body %d", (int) body);
        }
    }
}

static fake_worker_t *
add_worker(fx_t *f, const char *name)
{
    fake_worker_t *w = &f->w[f->n_w++];
    snprintf(w->name, sizeof w->name, "%s", name);
    char id[40];
    snprintf(id, sizeof id, "w:%s", name);
    w->sock = dealer(f, id);
    w->beating = 1;
    return w;
}

/* Register (again), listing running jobs (id, attempt) pairs; returns the reply. */
static Wslq__Envelope *
register_worker(fx_t *f, fake_worker_t *w, uint32_t ngpus, const uint64_t *running, size_t n_run)
{
    Wslq__GpuInfo gpus[4], *gp[4];
    char uuids[4][48];
    for (uint32_t i = 0; i < ngpus; i++) {
        wslq__gpu_info__init(&gpus[i]);
        gpus[i].index = i;
        snprintf(uuids[i], sizeof uuids[i], "GPU-%s-%u", w->name, i);
        gpus[i].uuid = uuids[i];
        gpus[i].name = "fake";
        gp[i] = &gpus[i];
    }
    Wslq__RunningJob rj[4], *rjp[4];
    for (size_t i = 0; i < n_run; i++) {
        wslq__running_job__init(&rj[i]);
        rj[i].job_id = running[i];
        rjp[i] = &rj[i];
    }
    Wslq__Register r = WSLQ__REGISTER__INIT;
    r.name = w->name;
    r.hostname = w->name;
    r.ip = "127.0.0.1";
    r.cpus = 8;
    r.mem_mb = 16000;
    r.gpus = gp;
    r.n_gpus = ngpus;
    r.running = rjp;
    r.n_running = n_run;
    r.version = "test";
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = ++f->next_rid;
    env.body_case = WSLQ__ENVELOPE__BODY_REG;
    env.reg = &r;
    send_env(w->sock, &env);
    return expect(f, w->sock, WSLQ__ENVELOPE__BODY_REG_REPLY, 2000);
}

/* Send a SubmitRequest from the fake CLI; returns its request_id. */
static uint64_t
send_submit(fx_t *f, uint32_t nodes, uint32_t gpus_per_node, unsigned retries)
{
    if (f->cli == NULL)
        f->cli = dealer(f, NULL);
    char *argv[] = {"true"};
    Wslq__JobSpec spec = WSLQ__JOB_SPEC__INIT;
    spec.argv = argv;
    spec.n_argv = 1;
    spec.nodes = nodes;
    spec.gpus_per_node = gpus_per_node;
    spec.retries = retries;
    spec.user = "alice";
    spec.preemptible = f->preemptible;
    spec.priority = f->priority;
    Wslq__SubmitRequest req = WSLQ__SUBMIT_REQUEST__INIT;
    req.spec = &spec;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = ++f->next_rid;
    env.body_case = WSLQ__ENVELOPE__BODY_SUBMIT;
    env.submit = &req;
    send_env(f->cli, &env);
    return env.request_id;
}

static uint64_t
submit(fx_t *f, uint32_t nodes, uint32_t gpus_per_node, unsigned retries)
{
    uint64_t rid = send_submit(f, nodes, gpus_per_node, retries);
    Wslq__Envelope *rep = expect(f, f->cli, WSLQ__ENVELOPE__BODY_SUBMIT_REPLY, 2000);
    assert_int_equal(rep->request_id, rid);
    uint64_t id = rep->submit_reply->job_id;
    wire_free(&rep);
    return id;
}

/* env sent from the fake CLI with the next request id; the reply of kind want within ms
 * (caller frees). */
static Wslq__Envelope *
request(fx_t *f, Wslq__Envelope *env, Wslq__Envelope__BodyCase want, int ms)
{
    if (f->cli == NULL)
        f->cli = dealer(f, NULL);
    env->request_id = ++f->next_rid;
    send_env(f->cli, env);
    return expect(f, f->cli, want, ms);
}

/* A SubmitRequest from the fake CLI: the job's id (an array's first), its size in *size when
 * not NULL. */
static uint64_t
submit_req(fx_t *f, Wslq__SubmitRequest *req, uint32_t *size)
{
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_SUBMIT;
    env.submit = req;
    Wslq__Envelope *rep = request(f, &env, WSLQ__ENVELOPE__BODY_SUBMIT_REPLY, 5000);
    uint64_t id = rep->submit_reply->job_id;
    if (size != NULL)
        *size = rep->submit_reply->array_size;
    wire_free(&rep);
    return id;
}

/* `wslq show`: the job and its events. Caller frees. */
static Wslq__Envelope *
show(fx_t *f, uint64_t id)
{
    Wslq__ShowRequest req = WSLQ__SHOW_REQUEST__INIT;
    req.job_id = id;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_SHOW;
    env.show = &req;
    return request(f, &env, WSLQ__ENVELOPE__BODY_SHOW_REPLY, 2000);
}

static Wslq__JobState
state_of(fx_t *f, uint64_t id, char *reason, size_t size)
{
    Wslq__Envelope *e = show(f, id);
    Wslq__JobState st = e->show_reply->job->state;
    if (reason)
        snprintf(reason, size, "%s", e->show_reply->job->reason);
    wire_free(&e);
    return st;
}

/* Pump until the job is in state st (or fail after ms). */
static void
wait_state(fx_t *f, uint64_t id, Wslq__JobState st, int ms)
{
    int64_t end = wq_clock_mono_ms() + ms;
    Wslq__JobState now = 0;
    while (wq_clock_mono_ms() < end) {
        now = state_of(f, id, NULL, 0);
        if (now == st)
            return;
        pump(f, 20);
    }
    fail_msg("job %" PRIu64 " is %s, not %s, after %d ms", id, wire_state_name(now),
             wire_state_name(st), ms);
}

static void
worker_says(fake_worker_t *w, Wslq__Envelope__BodyCase body, void *msg)
{
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = body;
    switch (body) {
    case WSLQ__ENVELOPE__BODY_STARTED:
        env.started = msg;
        break;
    case WSLQ__ENVELOPE__BODY_ENDED:
        env.ended = msg;
        break;
    case WSLQ__ENVELOPE__BODY_RANK_FAILED:
        env.rank_failed = msg;
        break;
    case WSLQ__ENVELOPE__BODY_LOG:
        env.log = msg;
        break;
    default:
        fail_msg("worker_says: body %d", (int) body);
    }
    send_env(w->sock, &env);
}

static void
started(fake_worker_t *w, uint64_t id, uint32_t attempt)
{
    Wslq__JobStarted s = WSLQ__JOB_STARTED__INIT;
    s.job_id = id;
    s.attempt = attempt;
    worker_says(w, WSLQ__ENVELOPE__BODY_STARTED, &s);
}

static void
ended_with_log(fake_worker_t *w,
               uint64_t id,
               uint32_t attempt,
               int code,
               int rank,
               int killed,
               uint64_t log_bytes)
{
    Wslq__JobEnded e = WSLQ__JOB_ENDED__INIT;
    e.job_id = id;
    e.attempt = attempt;
    e.exit_code = code;
    e.failed_rank = rank;
    e.killed = killed;
    e.reason = "";
    e.log_bytes = log_bytes;
    worker_says(w, WSLQ__ENVELOPE__BODY_ENDED, &e);
}

static void
ended(fake_worker_t *w, uint64_t id, uint32_t attempt, int code, int rank, int killed)
{
    ended_with_log(w, id, attempt, code, rank, killed, 0);
}

/* The worker reports the job's end with this exit code (0: completed), acknowledged. */
static void
end_cpu_job(fx_t *f, fake_worker_t *w, uint64_t id, int code)
{
    ended(w, id, 0, code, code ? 0 : -1, 0);
    wire_free((Wslq__Envelope *[]){expect(f, w->sock, WSLQ__ENVELOPE__BODY_ENDED_ACK, 2000)});
}

static void
output(fake_worker_t *w, uint64_t id, uint32_t attempt, uint64_t offset, const char *text)
{
    Wslq__LogChunk c = WSLQ__LOG_CHUNK__INIT;
    c.job_id = id;
    c.attempt = attempt;
    c.offset = offset;
    c.data.data = (uint8_t *) text;
    c.data.len = strlen(text);
    worker_says(w, WSLQ__ENVELOPE__BODY_LOG, &c);
}

/* `wslq logs` from offset: the reply (caller frees). */
static Wslq__Envelope *
logs_at(fx_t *f, uint64_t id, uint64_t offset)
{
    Wslq__LogsRequest req = WSLQ__LOGS_REQUEST__INIT;
    req.job_id = id;
    req.offset = offset;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_LOGS;
    env.logs = &req;
    return request(f, &env, WSLQ__ENVELOPE__BODY_LOGS_REPLY, 2000);
}

static void
read_file(const char *path, char *buf, size_t size)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, size - 1, fp);
    buf[n] = '\0';
    fclose(fp);
}

/* ---- the tests ---- */

static void
test_register_place_start_end(void **state)
{
    fx_t *f = *state;
    fake_worker_t *w = add_worker(f, "pcA");
    Wslq__Envelope *rr = register_worker(f, w, 2, NULL, 0);
    assert_int_equal(rr->reg_reply->n_kill_jobs, 0);
    assert_true(rr->reg_reply->scheduler_time_ms > 0);
    wire_free(&rr);
    uint64_t id = submit(f, 1, 1, 0);
    assert_true(id > 0);
    Wslq__Envelope *l = expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000);
    assert_int_equal(l->launch->job_id, id);
    assert_string_equal(l->launch->alloc->node, "pcA");
    assert_int_equal(l->launch->alloc->n_gpus, 1);
    assert_int_equal(l->launch->world_size, 1);
    assert_true(l->launch->master_port >= f->cfg.port_lo &&
                l->launch->master_port <= f->cfg.port_hi);
    wire_free(&l);
    assert_int_equal(state_of(f, id, NULL, 0), WSLQ__JOB_STATE__STARTING);
    started(w, id, 0);
    wait_state(f, id, WSLQ__JOB_STATE__RUNNING, 2000);
    /* a line of output reaches the log file */
    Wslq__LogChunk c = WSLQ__LOG_CHUNK__INIT;
    c.job_id = id;
    c.data.data = (uint8_t *) "hello\n";
    c.data.len = 6;
    worker_says(w, WSLQ__ENVELOPE__BODY_LOG, &c);
    ended(w, id, 0, 0, -1, 0);
    Wslq__Envelope *ack = expect(f, w->sock, WSLQ__ENVELOPE__BODY_ENDED_ACK, 2000);
    assert_int_equal(ack->ended_ack->job_id, id);
    wire_free(&ack);
    Wslq__Envelope *e = show(f, id);
    Wslq__ShowReply *sr = e->show_reply;
    assert_int_equal(sr->job->state, WSLQ__JOB_STATE__COMPLETED);
    assert_string_equal(sr->job->reason, "every rank exited 0");
    assert_int_equal(sr->job->exit_code, 0);
    /* every transition is a row: submitted, placed, every rank started, node finished, end */
    const char *want[] = {"submitted", "placed", "every rank started", "node finished",
                          "every rank exited 0"};
    assert_int_equal(sr->n_events, 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(sr->events[i]->reason, want[i]);
    wire_free(&e);
    char path[128], buf[16] = "";
    snprintf(path, sizeof path, "%s/logs/%" PRIu64 ".log", f->dir, id);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(buf, sizeof buf, fp));
    fclose(fp);
    assert_string_equal(buf, "hello\n");
    /* the GPU is free again: a second job is placed at once */
    uint64_t id2 = submit(f, 1, 2, 0);
    l = expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000);
    assert_int_equal(l->launch->job_id, id2);
    assert_int_equal(l->launch->alloc->n_gpus, 2);
    wire_free(&l);
}

static void
test_impossible_job_refused(void **state)
{
    fx_t *f = *state;
    fake_worker_t *w = add_worker(f, "pcA");
    wire_free((Wslq__Envelope *[]){register_worker(f, w, 2, NULL, 0)});
    uint64_t rid = send_submit(f, 1, 4, 0);
    int64_t end = wq_clock_mono_ms() + 2000;
    Wslq__Envelope *rep = NULL;
    wq_error_t err = {0};
    while (rep == NULL && wq_clock_mono_ms() < end) {
        turn(f);
        rep = wire_recv(f->cli, NULL, NULL, ZMQ_DONTWAIT, &err);
    }
    assert_non_null(rep);
    assert_int_equal(rep->body_case, WSLQ__ENVELOPE__BODY_ERROR);
    assert_int_equal(rep->request_id, rid);
    assert_string_equal(rep->error->text, "job refused: no node has 4 GPUs; the largest has 2");
    wire_free(&rep);
    assert_int_equal(sched_stats(f->s)->refused_total, 1);
    assert_int_equal(sched_job_count(f->s), 0);
}

static void
test_node_lost_requeues(void **state)
{
    fx_t *f = *state;
    fake_worker_t *w = add_worker(f, "pcA");
    wire_free((Wslq__Envelope *[]){register_worker(f, w, 1, NULL, 0)});
    uint64_t id = submit(f, 1, 1, 1);
    Wslq__Envelope *l = expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000);
    wire_free(&l);
    started(w, id, 0);
    wait_state(f, id, WSLQ__JOB_STATE__RUNNING, 2000);
    w->beating = 0; /* the PC went to sleep */
    char reason[256];
    wait_state(f, id, WSLQ__JOB_STATE__PENDING, 3000);
    state_of(f, id, reason, sizeof reason);
    assert_string_equal(reason, "requeued after NODE_FAIL: node pcA was lost (attempt 2 of 2)");
    assert_int_equal(sched_stats(f->s)->requeued_total, 1);
    const Wslq__NodeInfo *ni = sched_node(f->s, 0);
    assert_string_equal(ni->state, "lost");
    /* the node comes back: the job is launched again as attempt 1, after its backoff */
    w->beating = 1;
    wire_free((Wslq__Envelope *[]){register_worker(f, w, 1, NULL, 0)});
    l = expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 3000);
    assert_int_equal(l->launch->job_id, id);
    assert_int_equal(l->launch->attempt, 1);
    wire_free(&l);
    /* the first attempt's late JobEnded changes nothing */
    end_cpu_job(f, w, id, 0);
    assert_int_equal(state_of(f, id, NULL, 0), WSLQ__JOB_STATE__STARTING);
}

static const char *
node_state_of(fx_t *f, const char *name)
{
    for (size_t i = 0; i < sched_node_count(f->s); i++)
        if (strcmp(sched_node(f->s, i)->name, name) == 0)
            return sched_node(f->s, i)->state;
    return "none";
}

/* Many nodes: each heartbeat finds its own node by its connection, also after another was
 * forgotten; heartbeats that change nothing shown leave the state version alone; one node
 * falls silent and is lost while every other stays idle. */
static void
test_fleet_one_node_lost(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < MAX_WORKERS; i++) {
        char name[16];
        snprintf(name, sizeof name, "pc%02d", i);
        fake_worker_t *w = add_worker(f, name);
        wire_free((Wslq__Envelope *[]){register_worker(f, w, 1, NULL, 0)});
    }
    pump(f, 3 * HB_MS);
    f->w[5].beating = 0;
    nodes_forget(f->s, "pc05");
    assert_int_equal(sched_node_count(f->s), MAX_WORKERS - 1);
    pump(f, 3 * HB_MS);
    uint64_t v = sched_stats(f->s)->version;
    pump(f, 8 * HB_MS);
    assert_int_equal(sched_stats(f->s)->version, v);
    f->w[11].beating = 0;
    int64_t end = wq_clock_mono_ms() + 5000;
    while (strcmp(node_state_of(f, "pc11"), "lost") != 0 && wq_clock_mono_ms() < end)
        pump(f, 20);
    assert_string_equal(node_state_of(f, "pc11"), "lost");
    for (int i = 0; i < MAX_WORKERS; i++)
        if (i != 5 && i != 11)
            assert_string_equal(node_state_of(f, f->w[i].name), "idle");
    assert_string_equal(node_state_of(f, "pc05"), "none");
}

/* The torpid threshold: the configured one, stretched to 1.5 x the interval the worker
 * announced, that interval taken as at most half of lost. */
static void
test_torpid_threshold(void **state)
{
    (void) state;
    int clamped = -1;
    assert_int_equal(nodes_torpid_ms(3000, 10000, 0, &clamped), 3000); /* an old worker */
    assert_int_equal(clamped, 0);
    assert_int_equal(nodes_torpid_ms(3000, 10000, 1000, &clamped), 3000);
    assert_int_equal(nodes_torpid_ms(3000, 10000, 2000, &clamped), 3000);
    assert_int_equal(nodes_torpid_ms(3000, 10000, 3000, &clamped), 4500); /* old idle default */
    assert_int_equal(clamped, 0);
    assert_int_equal(nodes_torpid_ms(3000, 10000, 5000, &clamped), 7500); /* idle default */
    assert_int_equal(clamped, 0);
    assert_int_equal(nodes_torpid_ms(3000, 10000, 5001, &clamped), 7500);
    assert_int_equal(clamped, 1);
    /* what a RegisterReply offers is the clamp's own limit */
    assert_int_equal(nodes_idle_max_ms(10000), 5000);
    assert_int_equal(nodes_idle_max_ms(10001), 5000);
    assert_int_equal(nodes_torpid_ms(3000, 10001, 5000, &clamped), 7500);
    assert_int_equal(clamped, 0);
    assert_int_equal(nodes_idle_max_ms(INT64_MAX), UINT32_MAX);
    assert_int_equal(nodes_torpid_ms(3000, 10000, 60000, &clamped), 7500);
    assert_int_equal(clamped, 1);
    assert_int_equal(nodes_torpid_ms(1000, 3000, 1500, &clamped), 2250); /* the test cluster */
    assert_int_equal(clamped, 0);
    assert_int_equal(nodes_torpid_ms(1000, 3000, 200, &clamped), 1000);
    /* the threshold stays under lost */
    assert_true(nodes_torpid_ms(2000, 2500, 60000, &clamped) < 2500);
}

/* wslq cancel ID */
static void
cancel_job(fx_t *f, uint64_t id)
{
    Wslq__CancelRequest cr = WSLQ__CANCEL_REQUEST__INIT;
    cr.job_ids = &id;
    cr.n_job_ids = 1;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_CANCEL;
    env.cancel = &cr;
    wire_free((Wslq__Envelope *[]){request(f, &env, WSLQ__ENVELOPE__BODY_CANCEL_REPLY, 2000)});
}

/* A node that announced a longer interval stays alive past the configured torpid threshold,
 * and is still torpid, then lost, after the configured lost. */
static void
test_announced_interval_stretches_torpid(void **state)
{
    fx_t *f = *state;
    fake_worker_t *w = add_worker(f, "pcA");
    w->next_hb_ms = 700; /* torpid after 1050 ms silent, not the configured 600 */
    wire_free((Wslq__Envelope *[]){register_worker(f, w, 1, NULL, 0)});
    pump(f, 3 * HB_MS);
    w->beating = 0;
    pump(f, 800);
    assert_string_equal(sched_node(f->s, 0)->state, "idle");
    int64_t end = wq_clock_mono_ms() + 5000;
    while (strcmp(sched_node(f->s, 0)->state, "lost") != 0 && wq_clock_mono_ms() < end)
        pump(f, 20);
    assert_string_equal(sched_node(f->s, 0)->state, "lost");
    /* an old worker (0) is back to the configured thresholds */
    w->next_hb_ms = 0;
    w->beating = 1;
    wire_free((Wslq__Envelope *[]){register_worker(f, w, 1, NULL, 0)});
    pump(f, 3 * HB_MS);
    w->beating = 0;
    end = wq_clock_mono_ms() + 5000;
    while (strcmp(sched_node(f->s, 0)->state, "idle") == 0 && wq_clock_mono_ms() < end)
        pump(f, 20);
    assert_string_not_equal(sched_node(f->s, 0)->state, "idle");
}

static void
test_rank_failure_and_cancel(void **state)
{
    fx_t *f = *state;
    fake_worker_t *w = add_worker(f, "pcA");
    wire_free((Wslq__Envelope *[]){register_worker(f, w, 1, NULL, 0)});
    uint64_t id = submit(f, 1, 1, 0);
    wire_free((Wslq__Envelope *[]){expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000)});
    started(w, id, 0);
    wait_state(f, id, WSLQ__JOB_STATE__RUNNING, 2000);
    uint64_t queued = submit(f, 1, 1, 0); /* the only GPU is taken: PENDING */
    /* one rank of the job fails while the others run: they are stopped at once */
    Wslq__RankFailed rf = WSLQ__RANK_FAILED__INIT;
    rf.job_id = id;
    rf.rank = 0;
    rf.exit_code = 3;
    worker_says(w, WSLQ__ENVELOPE__BODY_RANK_FAILED, &rf);
    Wslq__Envelope *k = expect(f, w->sock, WSLQ__ENVELOPE__BODY_KILL, 2000);
    assert_int_equal(k->kill->job_id, id);
    assert_string_equal(k->kill->reason, "another rank of the job failed");
    assert_int_equal(k->kill->grace_ms, 1000);
    wire_free(&k);
    ended(w, id, 0, 3, 0, 1);
    wait_state(f, id, WSLQ__JOB_STATE__FAILED, 2000);
    char reason[256];
    state_of(f, id, reason, sizeof reason);
    assert_string_equal(reason, "rank 0 on pcA exited with code 3");
    /* the queued job starts on the freed GPU; cancelling it kills it with the full grace */
    Wslq__Envelope *l = expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000);
    assert_int_equal(l->launch->job_id, queued);
    wire_free(&l);
    cancel_job(f, queued);
    k = expect(f, w->sock, WSLQ__ENVELOPE__BODY_KILL, 2000);
    assert_string_equal(k->kill->reason, "cancelled");
    assert_int_equal(k->kill->grace_ms, 1000);
    wire_free(&k);
    ended(w, queued, 0, 143, 0, 1);
    wait_state(f, queued, WSLQ__JOB_STATE__CANCELLED, 2000);
    /* a pending job is cancelled at once */
    uint64_t pend = submit(f, 1, 1, 0);
    wire_free((Wslq__Envelope *[]){expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000)});
    uint64_t behind = submit(f, 1, 1, 0);
    cancel_job(f, behind);
    assert_int_equal(state_of(f, behind, reason, sizeof reason), WSLQ__JOB_STATE__CANCELLED);
    assert_string_equal(reason, "cancelled by user");
    assert_int_equal(state_of(f, pend, NULL, 0), WSLQ__JOB_STATE__STARTING);
}

/* Register w as a node that claims inbound connections (so it is self-tested). */
static void
register_inbound(fx_t *f, fake_worker_t *w, const char *ip, unsigned port)
{
    Wslq__Register r = WSLQ__REGISTER__INIT;
    Wslq__GpuInfo g = WSLQ__GPU_INFO__INIT, *gp = &g;
    g.uuid = "GPU-x";
    g.name = "fake";
    r.name = w->name;
    r.hostname = w->name;
    r.ip = (char *) ip;
    r.cpus = 4;
    r.mem_mb = 8000;
    r.gpus = &gp;
    r.n_gpus = 1;
    r.inbound_ok = 1;
    r.probe_port = port;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = ++f->next_rid;
    env.body_case = WSLQ__ENVELOPE__BODY_REG;
    env.reg = &r;
    send_env(w->sock, &env);
    wire_free((Wslq__Envelope *[]){expect(f, w->sock, WSLQ__ENVELOPE__BODY_REG_REPLY, 2000)});
}

/* A peer that never answers the inbound test: its deadline (the test's timeout and slack,
 * 5 s) still comes, and the node is tested again, by the only other peer there is. */
static void
test_selftest_silent_peer_asked_again(void **state)
{
    fx_t *f = *state;
    fake_worker_t *a = add_worker(f, "pcA"), *b = add_worker(f, "pcB");
    register_inbound(f, a, "127.0.0.1", 40000);
    register_inbound(f, b, "127.0.0.2", 40001);
    Wslq__Envelope *p1 = expect(f, b->sock, WSLQ__ENVELOPE__BODY_PROBE, 2000);
    assert_string_equal(p1->probe->target_node, "pcA");
    int64_t asked = wq_clock_mono_ms();
    Wslq__Envelope *p2 = expect(f, b->sock, WSLQ__ENVELOPE__BODY_PROBE, 8000);
    assert_string_equal(p2->probe->target_node, "pcA");
    assert_string_not_equal(p2->probe->token, p1->probe->token);
    assert_true(wq_clock_mono_ms() - asked >= 4000);
    wire_free(&p1);
    wire_free(&p2);
}

static void
test_gang_across_nodes(void **state)
{
    fx_t *f = *state;
    fake_worker_t *a = add_worker(f, "pcA"), *b = add_worker(f, "pcB");
    /* nodes that claim inbound connections are tested by each other: answer the test */
    for (int i = 0; i < 2; i++) {
        fake_worker_t *w = i ? b : a;
        Wslq__Register r = WSLQ__REGISTER__INIT;
        Wslq__GpuInfo g = WSLQ__GPU_INFO__INIT, *gp = &g;
        g.uuid = "GPU-x";
        g.name = "fake";
        r.name = w->name;
        r.hostname = w->name;
        r.ip = i ? "127.0.0.2" : "127.0.0.1";
        r.cpus = 4;
        r.mem_mb = 8000;
        r.gpus = &gp;
        r.n_gpus = 1;
        r.inbound_ok = 1;
        r.probe_port = 40000 + (unsigned) i;
        Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
        env.request_id = ++f->next_rid;
        env.body_case = WSLQ__ENVELOPE__BODY_REG;
        env.reg = &r;
        send_env(w->sock, &env);
        wire_free((Wslq__Envelope *[]){expect(f, w->sock, WSLQ__ENVELOPE__BODY_REG_REPLY, 2000)});
    }
    /* pcA was unverified until pcB came; now each is asked to test the other */
    for (int i = 0; i < 2; i++) {
        fake_worker_t *w = i ? b : a;
        Wslq__Envelope *p = expect(f, w->sock, WSLQ__ENVELOPE__BODY_PROBE, 2000);
        Wslq__ProbeResult pr = WSLQ__PROBE_RESULT__INIT;
        pr.target_node = p->probe->target_node;
        pr.token = p->probe->token;
        pr.ok = 1;
        pr.elapsed_ms = 1;
        pr.error = "";
        Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
        env.body_case = WSLQ__ENVELOPE__BODY_PROBE_RESULT;
        env.probe_result = &pr;
        send_env(w->sock, &env);
        wire_free(&p);
    }
    pump(f, 50);
    /* the outcome is a node check, PASS, naming the peer that connected */
    for (size_t i = 0; i < 2; i++) {
        const Wslq__NodeInfo *ni = sched_node(f->s, i);
        const Wslq__NodeCheck *c = nodecheck_find(ni->checks, ni->n_checks, "net.inbound");
        assert_non_null(c);
        assert_int_equal(c->verdict, WSLQ__CHECK_VERDICT__CHECK_PASS);
        assert_non_null(strstr(c->summary, i == 0 ? "pcB reached" : "pcA reached"));
    }
    uint64_t id = submit(f, 2, 1, 0);
    Wslq__Envelope *la = expect(f, a->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000);
    Wslq__Envelope *lb = expect(f, b->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000);
    assert_int_equal(la->launch->nnodes, 2);
    assert_int_equal(la->launch->world_size, 2);
    assert_string_equal(la->launch->master_addr, lb->launch->master_addr);
    assert_int_equal(la->launch->alloc->node_rank + lb->launch->alloc->node_rank, 1);
    wire_free(&la);
    wire_free(&lb);
    started(a, id, 0);
    pump(f, 30);
    assert_int_equal(state_of(f, id, NULL, 0), WSLQ__JOB_STATE__STARTING);
    started(b, id, 0);
    wait_state(f, id, WSLQ__JOB_STATE__RUNNING, 2000);
    /* pcB's rank exits 5: pcA's part is killed with the short gang grace */
    ended(b, id, 0, 5, 1, 0);
    Wslq__Envelope *k = expect(f, a->sock, WSLQ__ENVELOPE__BODY_KILL, 2000);
    assert_int_equal(k->kill->grace_ms, 1000); /* min(kill_grace_ms, the gang's 3 s) */
    wire_free(&k);
    expect_none(f, b->sock, WSLQ__ENVELOPE__BODY_KILL, 100); /* pcB's part has ended */
    /* pcA is lost during the teardown: the first failure stays the story */
    a->beating = 0;
    char reason[128];
    wait_state(f, id, WSLQ__JOB_STATE__FAILED, 3000);
    state_of(f, id, reason, sizeof reason);
    assert_string_equal(reason, "rank 1 on pcB exited with code 5");
}

static void
test_restart_adopts_running_job(void **state)
{
    fx_t *f = *state;
    fake_worker_t *w = add_worker(f, "pcA");
    wire_free((Wslq__Envelope *[]){register_worker(f, w, 1, NULL, 0)});
    uint64_t id = submit(f, 1, 1, 0);
    wire_free((Wslq__Envelope *[]){expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000)});
    started(w, id, 0);
    wait_state(f, id, WSLQ__JOB_STATE__RUNNING, 2000);
    uint64_t waiting = submit(f, 1, 1, 0); /* no GPU left: stays PENDING */
    pump(f, 30);
    reboot(f); /* the scheduler restarts */
    assert_int_equal(sched_job_count(f->s), 2);
    assert_int_equal(sched_node_count(f->s), 1); /* remembered, torpid until it registers */
    w = add_worker(f, "pcA");
    Wslq__Envelope *rr = register_worker(f, w, 1, &id, 1);
    assert_int_equal(rr->reg_reply->n_kill_jobs, 0);
    assert_int_equal(rr->reg_reply->n_log_offsets, 1);
    assert_int_equal(rr->reg_reply->log_offsets[0]->job_id, id);
    wire_free(&rr);
    expect_none(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 100); /* adopted, not rerun */
    assert_int_equal(state_of(f, id, NULL, 0), WSLQ__JOB_STATE__RUNNING);
    ended(w, id, 0, 0, -1, 0);
    wait_state(f, id, WSLQ__JOB_STATE__COMPLETED, 2000);
    /* the waiting job takes the freed GPU */
    Wslq__Envelope *l = expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000);
    assert_int_equal(l->launch->job_id, waiting);
    wire_free(&l);
    /* a worker that runs a job the scheduler does not know is told to kill it */
    uint64_t ghost = 9999;
    rr = register_worker(f, w, 1, &ghost, 1);
    assert_int_equal(rr->reg_reply->n_kill_jobs, 1);
    assert_int_equal(rr->reg_reply->kill_jobs[0], ghost);
    wire_free(&rr);
}

/* Submit an array of 1-GPU tasks; returns the array's id. */
static uint64_t
submit_array(fx_t *f, const char *array, uint32_t *size)
{
    char *argv[] = {"true"};
    Wslq__JobSpec spec = WSLQ__JOB_SPEC__INIT;
    spec.argv = argv;
    spec.n_argv = 1;
    spec.nodes = 1;
    spec.gpus_per_node = 1;
    spec.user = "alice";
    Wslq__SubmitRequest req = WSLQ__SUBMIT_REQUEST__INIT;
    req.spec = &spec;
    req.array = (char *) array;
    return submit_req(f, &req, size);
}

/* An array's %K cap holds across a scheduler restart: the started tasks are counted again
 * when the registry is loaded, and the next task starts only when one of them ends. */
static void
test_array_cap_survives_restart(void **state)
{
    fx_t *f = *state;
    fake_worker_t *w = add_worker(f, "pcA");
    wire_free((Wslq__Envelope *[]){register_worker(f, w, 4, NULL, 0)});
    uint32_t size = 0;
    uint64_t id = submit_array(f, "10-19%2", &size);
    assert_int_equal(size, 10);
    for (uint32_t k = 0; k < 2; k++) {
        Wslq__Envelope *l = expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000);
        assert_int_equal(l->launch->job_id, id + k);
        assert_int_equal(l->launch->array_job_id, id);
        assert_int_equal(l->launch->array_index, 10 + k);
        wire_free(&l);
        started(w, id + k, 0);
    }
    expect_none(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 200); /* 4 GPUs, but %2 */
    wait_state(f, id + 1, WSLQ__JOB_STATE__RUNNING, 2000);
    reboot(f);
    assert_int_equal(sched_job_count(f->s), 10);
    w = add_worker(f, "pcA");
    uint64_t running[] = {id, id + 1};
    wire_free((Wslq__Envelope *[]){register_worker(f, w, 4, running, 2)});
    expect_none(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 200); /* still two run */
    ended(w, id, 0, 0, -1, 0);
    Wslq__Envelope *l = expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000);
    assert_int_equal(l->launch->job_id, id + 2);
    assert_int_equal(l->launch->array_index, 12);
    wire_free(&l);
    expect_none(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 100);
}

static void
test_restart_forgotten_part_is_lost(void **state)
{
    fx_t *f = *state;
    fake_worker_t *w = add_worker(f, "pcA");
    wire_free((Wslq__Envelope *[]){register_worker(f, w, 1, NULL, 0)});
    uint64_t id = submit(f, 1, 1, 0);
    wire_free((Wslq__Envelope *[]){expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000)});
    started(w, id, 0);
    wait_state(f, id, WSLQ__JOB_STATE__RUNNING, 2000);
    /* the worker restarts without the job, and its JobEnded never comes */
    wire_free((Wslq__Envelope *[]){register_worker(f, w, 1, NULL, 0)});
    wait_state(f, id, WSLQ__JOB_STATE__NODE_FAIL, 3000);
}

static void
test_database_failure_stops_without_answer(void **state)
{
    fx_t *f = *state;
    fake_worker_t *w = add_worker(f, "pcA");
    wire_free((Wslq__Envelope *[]){register_worker(f, w, 1, NULL, 0)});
    /* another process holds the write lock: the scheduler's writes fail (after SQLite's
     * busy timeout) */
    char db_path[128];
    snprintf(db_path, sizeof db_path, "%s/queue.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    send_submit(f, 1, 0, 0);
    int rc = 0;
    wq_error_t err = {0};
    int64_t end = wq_clock_mono_ms() + 15000;
    while (rc == 0 && wq_clock_mono_ms() < end)
        rc = sched_turn(f->s, 10, &err);
    assert_int_equal(rc, -1);
    assert_int_equal(f->fatal_calls, 1);
    assert_non_null(strstr(f->fatal_text, "lock"));
    assert_string_equal(err.text, f->fatal_text);
    /* the loop stays stopped, and the submitter never heard "Submitted", but why not */
    assert_int_equal(sched_turn(f->s, 0, &err), -1);
    assert_int_equal(sched_run(f->s, &err), -1);
    Wslq__Envelope *rep = NULL;
    for (int i = 0; i < 200 && rep == NULL; i++) {
        rep = wire_recv(f->cli, NULL, NULL, ZMQ_DONTWAIT, &err);
        if (rep == NULL)
            usleep(5000);
    }
    assert_non_null(rep);
    assert_int_equal(rep->body_case, WSLQ__ENVELOPE__BODY_ERROR);
    assert_non_null(strstr(rep->error->text, "cannot write its database and is stopping"));
    assert_non_null(strstr(rep->error->text, "locked"));
    wire_free(&rep);
    rep = wire_recv(f->cli, NULL, NULL, ZMQ_DONTWAIT, &err);
    assert_null(rep); /* one answer, and it is not "Submitted" */
    assert_int_equal(f->fatal_calls, 1);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    reboot(f); /* a restart finds the queue as it was committed: no job */
    assert_int_equal(sched_job_count(f->s), 0);
}

static void
test_log_tail_after_the_end(void **state)
{
    fx_t *f = *state;
    fake_worker_t *w = add_worker(f, "pcA");
    wire_free((Wslq__Envelope *[]){register_worker(f, w, 1, NULL, 0)});
    uint64_t id = submit(f, 1, 1, 0);
    wire_free((Wslq__Envelope *[]){expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000)});
    started(w, id, 0);
    output(w, id, 0, 0, "head\n");
    /* the end counts 10 bytes, but only 5 arrived: the ack says so */
    ended_with_log(w, id, 0, 0, -1, 0, 10);
    Wslq__Envelope *ack = expect(f, w->sock, WSLQ__ENVELOPE__BODY_ENDED_ACK, 2000);
    assert_true(ack->ended_ack->log_counted);
    assert_int_equal(ack->ended_ack->log_offset, 5);
    wire_free(&ack);
    wait_state(f, id, WSLQ__JOB_STATE__COMPLETED, 2000);
    /* `wslq logs` does not say end-of-file while counted output is missing */
    Wslq__Envelope *l = logs_at(f, id, 0);
    assert_int_equal(l->logs_reply->data.len, 5);
    assert_false(l->logs_reply->eof);
    wire_free(&l);
    /* the tail arrives after the job ended, and is kept */
    output(w, id, 0, 5, "tail\n");
    ended_with_log(w, id, 0, 0, -1, 0, 10);
    ack = expect(f, w->sock, WSLQ__ENVELOPE__BODY_ENDED_ACK, 2000);
    assert_int_equal(ack->ended_ack->log_offset, 10);
    wire_free(&ack);
    l = logs_at(f, id, 0);
    assert_int_equal(l->logs_reply->data.len, 10);
    assert_memory_equal(l->logs_reply->data.data, "head\ntail\n", 10);
    assert_true(l->logs_reply->eof);
    wire_free(&l);
    /* a JobEnded of a job we never ran is acknowledged, with nothing to resend */
    ended_with_log(w, 4242, 0, 0, -1, 0, 10);
    ack = expect(f, w->sock, WSLQ__ENVELOPE__BODY_ENDED_ACK, 2000);
    assert_false(ack->ended_ack->log_counted);
    wire_free(&ack);
}

static void
test_requeued_log_keeps_both_attempts(void **state)
{
    fx_t *f = *state;
    fake_worker_t *w = add_worker(f, "pcA");
    wire_free((Wslq__Envelope *[]){register_worker(f, w, 1, NULL, 0)});
    uint64_t id = submit(f, 1, 1, 1);
    wire_free((Wslq__Envelope *[]){expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000)});
    started(w, id, 0);
    output(w, id, 0, 0, "first try\n");
    /* the node restarts without the job: requeued */
    wire_free((Wslq__Envelope *[]){register_worker(f, w, 1, NULL, 0)});
    wait_state(f, id, WSLQ__JOB_STATE__PENDING, 5000);
    Wslq__Envelope *l = expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 5000);
    assert_int_equal(l->launch->attempt, 1);
    wire_free(&l);
    started(w, id, 1);
    output(w, id, 0, 10, "late from the first try\n"); /* an old attempt's output: dropped */
    output(w, id, 1, 0, "second\n");
    output(w, id, 1, 0, "second\n"); /* resent: kept once */
    ended_with_log(w, id, 1, 0, -1, 0, 7);
    wait_state(f, id, WSLQ__JOB_STATE__COMPLETED, 2000);
    char path[128], buf[256];
    snprintf(path, sizeof path, "%s/logs/%" PRIu64 ".log", f->dir, id);
    read_file(path, buf, sizeof buf);
    assert_string_equal(buf, "first try\n--- wslq: attempt 2 of 2 ---\nsecond\n");
}

static void
test_parked_requests_are_capped(void **state)
{
    fx_t *f = *state;
    fake_worker_t *w = add_worker(f, "pcA");
    wire_free((Wslq__Envelope *[]){register_worker(f, w, 1, NULL, 0)});
    uint64_t id = submit(f, 1, 1, 0);
    wire_free((Wslq__Envelope *[]){expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000)});
    started(w, id, 0);
    wait_state(f, id, WSLQ__JOB_STATE__RUNNING, 2000);
    /* one client parks as many `kv wait`s as it may, then one more */
    Wslq__KvRequest kv = WSLQ__KV_REQUEST__INIT;
    kv.job_id = id;
    kv.op = WSLQ__KV_REQUEST__OP__WAIT;
    kv.key = "never";
    kv.timeout_ms = 60000;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_KV;
    env.kv = &kv;
    for (int i = 0; i <= SCHED_MAX_WAITERS_PER_PEER; i++) {
        env.request_id = 1000 + (uint64_t) i;
        send_env(f->cli, &env);
    }
    pump(f, 100);
    assert_int_equal(sched_stats(f->s)->waiters, SCHED_MAX_WAITERS_PER_PEER);
    assert_int_equal(sched_stats(f->s)->waiters_refused_total, 1);
    wq_error_t err = {0};
    Wslq__Envelope *rep = wire_recv(f->cli, NULL, NULL, ZMQ_DONTWAIT, &err);
    assert_non_null(rep);
    assert_int_equal(rep->body_case, WSLQ__ENVELOPE__BODY_ERROR);
    assert_int_equal(rep->request_id, 1000 + SCHED_MAX_WAITERS_PER_PEER);
    assert_non_null(strstr(rep->error->text, "too many requests are waiting"));
    wire_free(&rep);
    /* another client still may: the cap is per client */
    void *other = dealer(f, NULL);
    env.request_id = 1;
    send_env(other, &env);
    pump(f, 50);
    assert_int_equal(sched_stats(f->s)->waiters, SCHED_MAX_WAITERS_PER_PEER + 1);
    zmq_close(other);
}

/* A 1-CPU job with this priority, after job dep (0: none; afterok, or afternotok when notok),
 * held from the start when hold; returns its id. */
static uint64_t
submit_cpu_after(fx_t *f, int32_t priority, uint64_t dep, int notok, int hold)
{
    char *argv[] = {"true"};
    Wslq__JobSpec spec = WSLQ__JOB_SPEC__INIT;
    spec.argv = argv;
    spec.n_argv = 1;
    spec.nodes = 1;
    spec.cpus_per_node = 1;
    spec.priority = priority;
    spec.user = "alice";
    if (dep != 0 && notok) {
        spec.after_notok = &dep;
        spec.n_after_notok = 1;
    } else if (dep != 0) {
        spec.depends_on = &dep;
        spec.n_depends_on = 1;
    }
    Wslq__SubmitRequest req = WSLQ__SUBMIT_REQUEST__INIT;
    req.spec = &spec;
    req.hold = hold != 0;
    return submit_req(f, &req, NULL);
}

static uint64_t
submit_cpu_job(fx_t *f, int32_t priority, uint64_t dep)
{
    return submit_cpu_after(f, priority, dep, 0, 0);
}

/* wslq hold ID, wslq release ID */
static void
control(fx_t *f, Wslq__JobControlRequest__Op op, uint64_t id)
{
    char sel[32];
    snprintf(sel, sizeof sel, "%" PRIu64, id);
    char *sels[] = {sel};
    Wslq__JobControlRequest cr = WSLQ__JOB_CONTROL_REQUEST__INIT;
    cr.op = op;
    cr.selectors = sels;
    cr.n_selectors = 1;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_CONTROL;
    env.control = &cr;
    wire_free((Wslq__Envelope *[]){request(f, &env, WSLQ__ENVELOPE__BODY_CONTROL_REPLY, 2000)});
}

static uint64_t
launched(fx_t *f, fake_worker_t *w)
{
    Wslq__Envelope *l = expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000);
    uint64_t id = l->launch->job_id;
    wire_free(&l);
    return id;
}

/* The CPU node pcA (8 CPUs, no GPU), registered, and the client connected. */
static fake_worker_t *
cpu_node(fx_t *f)
{
    if (f->cli == NULL)
        f->cli = dealer(f, NULL);
    fake_worker_t *w = add_worker(f, "pcA");
    wire_free((Wslq__Envelope *[]){register_worker(f, w, 0, NULL, 0)});
    return w;
}

/* n one-CPU jobs submitted, launched on w and RUNNING, their ids in ids. */
static void
run_cpu_jobs(fx_t *f, fake_worker_t *w, uint64_t *ids, int n)
{
    for (int i = 0; i < n; i++) {
        ids[i] = submit_cpu_job(f, 0, 0);
        assert_int_equal(launched(f, w), ids[i]);
        started(w, ids[i], 0);
    }
    for (int i = 0; i < n; i++)
        wait_state(f, ids[i], WSLQ__JOB_STATE__RUNNING, 2000);
}

/* A job of a higher priority preempts a preemptible one on the only GPU: JobKill with the
 * preempt grace, the victim requeued with attempt 1, the new job launched once it ended. */
static void
test_preempt_for_higher_priority(void **state)
{
    fx_t *f = *state;
    f->cfg.preempt_grace_ms = 777;
    reboot(f);
    fake_worker_t *w = add_worker(f, "pcA");
    wire_free(&(Wslq__Envelope *){register_worker(f, w, 1, NULL, 0)});
    f->preemptible = 1;
    uint64_t a = submit(f, 1, 1, 0);
    Wslq__Envelope *l = expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000);
    assert_int_equal(l->launch->job_id, a);
    assert_true(l->launch->spec->preemptible);
    wire_free(&l);
    started(w, a, 0);
    wait_state(f, a, WSLQ__JOB_STATE__RUNNING, 2000);
    /* the same priority does not preempt */
    f->preemptible = 0;
    uint64_t same = submit(f, 1, 1, 0);
    expect_none(f, w->sock, WSLQ__ENVELOPE__BODY_KILL, 200);
    f->priority = 5;
    uint64_t b = submit(f, 1, 1, 0);
    Wslq__Envelope *k = expect(f, w->sock, WSLQ__ENVELOPE__BODY_KILL, 2000);
    assert_int_equal(k->kill->job_id, a);
    assert_int_equal(k->kill->grace_ms, 777);
    char want[96];
    snprintf(want, sizeof want, "preempted for job %" PRIu64 " (priority 5)", b);
    assert_string_equal(k->kill->reason, want);
    wire_free(&k);
    /* nothing is launched before the victim's GPU is free, and nothing else is killed */
    expect_none(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 100);
    ended(w, a, 0, 143, 0, 1);
    l = expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000);
    assert_int_equal(l->launch->job_id, b);
    wire_free(&l);
    Wslq__Envelope *e = show(f, a);
    Wslq__JobInfo *j = e->show_reply->job;
    assert_int_equal(j->state, WSLQ__JOB_STATE__PENDING);
    assert_int_equal(j->attempt, 1);
    assert_int_equal(j->preemptions, 1);
    assert_int_equal(j->uncounted_requeues, 1);
    wire_free(&e);
    /* b is not preemptible: a job of a higher priority still waits */
    f->priority = 50;
    uint64_t c = submit(f, 1, 1, 0);
    expect_none(f, w->sock, WSLQ__ENVELOPE__BODY_KILL, 200);
    assert_int_equal(state_of(f, c, NULL, 0), WSLQ__JOB_STATE__PENDING);
    assert_int_equal(state_of(f, same, NULL, 0), WSLQ__JOB_STATE__PENDING);
}

/* The PC owner's suspend policy: JobSuspend when the owner arrives, again (continue) when
 * they leave, and eviction (JobKill) once suspended longer than the node's maximum. */
static void
test_owner_suspend_and_evict_after_max(void **state)
{
    fx_t *f = *state;
    fake_worker_t *w = add_worker(f, "pcA");
    w->owner_policy = 2; /* suspend */
    w->owner_state = 1;  /* away */
    w->owner_max_s = 1;
    wire_free(&(Wslq__Envelope *){register_worker(f, w, 1, NULL, 0)});
    f->preemptible = 1;
    uint64_t a = submit(f, 1, 1, 0);
    wire_free(&(Wslq__Envelope *){expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000)});
    started(w, a, 0);
    wait_state(f, a, WSLQ__JOB_STATE__RUNNING, 2000);
    w->owner_max_s = 3600;
    w->owner_state = 2; /* present */
    Wslq__Envelope *s = expect(f, w->sock, WSLQ__ENVELOPE__BODY_SUSPEND, 2000);
    assert_int_equal(s->suspend->job_id, a);
    assert_true(s->suspend->suspend);
    wire_free(&s);
    Wslq__Envelope *e = show(f, a);
    assert_true(e->show_reply->job->suspended);
    assert_int_equal(e->show_reply->job->state, WSLQ__JOB_STATE__RUNNING);
    wire_free(&e);
    w->owner_state = 1; /* away again */
    s = expect(f, w->sock, WSLQ__ENVELOPE__BODY_SUSPEND, 2000);
    assert_false(s->suspend->suspend);
    wire_free(&s);
    /* unknown (a stale file) neither stops nor evicts a running job */
    w->owner_state = 0;
    expect_none(f, w->sock, WSLQ__ENVELOPE__BODY_SUSPEND, 200);
    w->owner_max_s = 1;
    w->owner_state = 3; /* gaming */
    s = expect(f, w->sock, WSLQ__ENVELOPE__BODY_SUSPEND, 2000);
    assert_true(s->suspend->suspend);
    wire_free(&s);
    Wslq__Envelope *k = expect(f, w->sock, WSLQ__ENVELOPE__BODY_KILL, 5000);
    assert_int_equal(k->kill->job_id, a);
    assert_non_null(strstr(k->kill->reason, "evicted: suspended longer than"));
    wire_free(&k);
    ended(w, a, 0, 0, -1, 1);
    for (int i = 0; i < 100 && state_of(f, a, NULL, 0) != WSLQ__JOB_STATE__PENDING; i++)
        pump(f, 20);
    e = show(f, a);
    assert_int_equal(e->show_reply->job->state, WSLQ__JOB_STATE__PENDING);
    assert_false(e->show_reply->job->suspended);
    assert_int_equal(e->show_reply->job->preemptions, 1);
    assert_true(e->show_reply->job->suspended_ms > 0);
    wire_free(&e);
    /* the owner is still there: it is not placed on pcA again */
    expect_none(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 200);
}

/* The pass on a full node: a new job still gets its reason; a freed CPU goes to the highest
 * priority, then the oldest; a job whose dependency failed is cancelled although the pass
 * stopped placing (no CPU left) before reaching it. */
static void
test_pass_on_a_full_node(void **state)
{
    fx_t *f = *state;
    fake_worker_t *w = cpu_node(f);
    uint64_t run[8];
    run_cpu_jobs(f, w, run, 8); /* 8 CPUs, 8 one-CPU jobs: full */
    char reason[256];
    uint64_t low = submit_cpu_job(f, 0, 0);
    assert_int_equal(state_of(f, low, reason, sizeof reason), WSLQ__JOB_STATE__PENDING);
    assert_string_equal(reason, "waiting for resources: 0 GPUs, 1 CPU free on one node");
    uint64_t after = submit_cpu_job(f, 0, run[0]);
    assert_int_equal(state_of(f, after, reason, sizeof reason), WSLQ__JOB_STATE__PENDING);
    char want[96];
    snprintf(want, sizeof want, "waiting for job %" PRIu64 " (dependency)", run[0]);
    assert_string_equal(reason, want);
    uint64_t high = submit_cpu_job(f, 5, 0);
    uint64_t high2 = submit_cpu_job(f, 5, 0);
    /* run[0] fails: its CPU goes to the first high-priority job; the job after it is cancelled */
    end_cpu_job(f, w, run[0], 1);
    assert_int_equal(launched(f, w), high);
    wait_state(f, after, WSLQ__JOB_STATE__CANCELLED, 2000);
    state_of(f, after, reason, sizeof reason);
    snprintf(want, sizeof want, "dependency job %" PRIu64 " ended FAILED", run[0]);
    assert_string_equal(reason, want);
    assert_int_equal(state_of(f, high2, NULL, 0), WSLQ__JOB_STATE__PENDING);
    assert_int_equal(state_of(f, low, NULL, 0), WSLQ__JOB_STATE__PENDING);
    /* the next freed CPUs: the other high-priority job, then the oldest of the rest */
    end_cpu_job(f, w, run[1], 0);
    assert_int_equal(launched(f, w), high2);
    end_cpu_job(f, w, run[2], 0);
    assert_int_equal(launched(f, w), low);
}

/* A running job that 100 dependants came and went for (each submitted, then cancelled) keeps
 * a short list of waiters (place.c's waiters_room: those gone are dropped before it grows),
 * and the one still waiting is on it: cancelled when that job fails. */
static void
test_waiters_stay_few(void **state)
{
    fx_t *f = *state;
    fake_worker_t *w = cpu_node(f);
    uint64_t x;
    run_cpu_jobs(f, w, &x, 1);
    for (int i = 0; i < 100; i++) {
        uint64_t d = submit_cpu_job(f, 0, x);
        cancel_job(f, d);
        assert_int_equal(state_of(f, d, NULL, 0), WSLQ__JOB_STATE__CANCELLED);
    }
    uint64_t last = submit_cpu_job(f, 0, x);
    const job_t *jx = jobs_find(f->s, x);
    assert_non_null(jx);
    assert_true(jx->cap_waiters <= 8);
    int noted = 0;
    for (size_t i = 0; i < jx->n_waiters; i++)
        noted |= jx->waiters[i] == last;
    assert_true(noted);
    end_cpu_job(f, w, x, 1);
    wait_state(f, last, WSLQ__JOB_STATE__CANCELLED, 2000);
}

/* A job waiting for a running one is passed over by the pass while that job runs (its
 * reason stands, place.c's blocked_on), but not once an event changed its reason: held, it
 * says so; released, it says again what it waits for. And a full pass goes on past it: a CPU
 * freed on a full node goes to a job after it in line. */
static void
test_blocked_reason_after_release(void **state)
{
    fx_t *f = *state;
    fake_worker_t *w = cpu_node(f);
    uint64_t x;
    run_cpu_jobs(f, w, &x, 1);
    char reason[256], want[96];
    snprintf(want, sizeof want, "waiting for job %" PRIu64 " (dependency)", x);
    uint64_t d = submit_cpu_job(f, 0, x);
    assert_int_equal(state_of(f, d, reason, sizeof reason), WSLQ__JOB_STATE__PENDING);
    assert_string_equal(reason, want);
    control(f, WSLQ__JOB_CONTROL_REQUEST__OP__HOLD, d);
    assert_int_equal(state_of(f, d, reason, sizeof reason), WSLQ__JOB_STATE__PENDING);
    assert_string_equal(reason, "held");
    control(f, WSLQ__JOB_CONTROL_REQUEST__OP__RELEASE, d);
    pump(f, 50);
    assert_int_equal(state_of(f, d, reason, sizeof reason), WSLQ__JOB_STATE__PENDING);
    assert_string_equal(reason, want);
    /* the other 7 CPUs taken, then a job after d in line: a freed CPU goes to it */
    uint64_t fill[7];
    run_cpu_jobs(f, w, fill, 7);
    uint64_t y = submit_cpu_job(f, 0, 0);
    assert_int_equal(state_of(f, y, NULL, 0), WSLQ__JOB_STATE__PENDING);
    end_cpu_job(f, w, fill[0], 0);
    assert_int_equal(launched(f, w), y);
    assert_int_equal(state_of(f, d, reason, sizeof reason), WSLQ__JOB_STATE__PENDING);
    assert_string_equal(reason, want);
}

/* jobs_waits_for: the reason a pass would write again is recognised without formatting it,
 * and nothing else is: another job, another tail, another code, a leading zero, a number
 * past 64 bits, no number. */
static void
test_waits_for_reason(void **state)
{
    (void) state;
    Wslq__JobInfo info = WSLQ__JOB_INFO__INIT;
    job_t job = {.info = &info};
    info.wait_reason = WSLQ__WAIT_REASON__WAIT_DEPENDENCY;
    info.reason = "waiting for job 42 (dependency)";
    assert_true(jobs_waits_for(&job, 42, " (dependency)"));
    assert_false(jobs_waits_for(&job, 4, " (dependency)"));
    assert_false(jobs_waits_for(&job, 420, " (dependency)"));
    assert_false(jobs_waits_for(&job, 42, " to end (afterany)"));
    info.reason = "waiting for job 42 to end (afternotok)";
    assert_true(jobs_waits_for(&job, 42, " to end (afternotok)"));
    assert_false(jobs_waits_for(&job, 42, " to end (afterany)"));
    info.wait_reason = WSLQ__WAIT_REASON__WAIT_RESOURCES;
    assert_false(jobs_waits_for(&job, 42, " to end (afternotok)"));
    info.wait_reason = WSLQ__WAIT_REASON__WAIT_DEPENDENCY;
    info.reason = "waiting for job 042 (dependency)";
    assert_false(jobs_waits_for(&job, 42, " (dependency)"));
    info.reason = "waiting for job 18446744073709551615 (dependency)";
    assert_true(jobs_waits_for(&job, UINT64_MAX, " (dependency)"));
    info.reason = "waiting for job 18446744073709551616 (dependency)"; /* 2^64 */
    assert_false(jobs_waits_for(&job, 0, " (dependency)"));
    info.reason = "waiting for job  (dependency)";
    assert_false(jobs_waits_for(&job, 0, " (dependency)"));
    info.reason = "";
    assert_false(jobs_waits_for(&job, 0, ""));
}

/* Without backfill a pass stops where no node has room; the jobs waiting for one that ended
 * are tried all the same (place.c's try_woken), though the CPU it freed went to an older job:
 * afterok of a failed job is cancelled, and so is the job after that one (a chain); a held
 * one is cancelled once released; afternotok of a completed job is cancelled. */
static void
test_dependants_on_a_full_node(void **state)
{
    fx_t *f = *state;
    f->cfg.backfill_depth = 0;
    reboot(f);
    fake_worker_t *w = cpu_node(f);
    uint64_t run[8];
    run_cpu_jobs(f, w, run, 8); /* 8 CPUs, 8 one-CPU jobs: full */
    char reason[256], want[128];
    uint64_t plain[2] = {submit_cpu_job(f, 0, 0), submit_cpu_job(f, 0, 0)};
    uint64_t okdep = submit_cpu_job(f, 0, run[0]);
    uint64_t chain = submit_cpu_job(f, 0, okdep);
    uint64_t held = submit_cpu_after(f, 0, run[0], 0, 1);
    /* run[0] fails: its CPU goes to the older plain job; its dependants are cancelled */
    end_cpu_job(f, w, run[0], 1);
    assert_int_equal(launched(f, w), plain[0]);
    wait_state(f, okdep, WSLQ__JOB_STATE__CANCELLED, 2000);
    state_of(f, okdep, reason, sizeof reason);
    snprintf(want, sizeof want, "dependency job %" PRIu64 " ended FAILED", run[0]);
    assert_string_equal(reason, want);
    wait_state(f, chain, WSLQ__JOB_STATE__CANCELLED, 2000);
    state_of(f, chain, reason, sizeof reason);
    snprintf(want, sizeof want, "dependency job %" PRIu64 " ended CANCELLED", okdep);
    assert_string_equal(reason, want);
    assert_int_equal(state_of(f, held, NULL, 0), WSLQ__JOB_STATE__PENDING);
    control(f, WSLQ__JOB_CONTROL_REQUEST__OP__RELEASE, held);
    wait_state(f, held, WSLQ__JOB_STATE__CANCELLED, 2000);
    state_of(f, held, reason, sizeof reason);
    snprintf(want, sizeof want, "dependency job %" PRIu64 " ended FAILED", run[0]);
    assert_string_equal(reason, want);
    uint64_t notok = submit_cpu_after(f, 0, run[1], 1, 0);
    assert_int_equal(state_of(f, notok, reason, sizeof reason), WSLQ__JOB_STATE__PENDING);
    snprintf(want, sizeof want, "waiting for job %" PRIu64 " to end (afternotok)", run[1]);
    assert_string_equal(reason, want);
    /* run[1] completes: its CPU goes to the other plain job; afternotok can never be met */
    end_cpu_job(f, w, run[1], 0);
    assert_int_equal(launched(f, w), plain[1]);
    wait_state(f, notok, WSLQ__JOB_STATE__CANCELLED, 2000);
    state_of(f, notok, reason, sizeof reason);
    snprintf(want, sizeof want,
             "dependency job %" PRIu64 " COMPLETED, so afternotok can never be met", run[1]);
    assert_string_equal(reason, want);
    expect_none(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 200); /* nothing else started */
}

/* A 1-node job of gpus GPUs with a time limit (0 = none); returns its id. */
static uint64_t
submit_timed(fx_t *f, uint32_t gpus, uint64_t time_s)
{
    char *argv[] = {"true"};
    Wslq__JobSpec spec = WSLQ__JOB_SPEC__INIT;
    spec.argv = argv;
    spec.n_argv = 1;
    spec.nodes = 1;
    spec.gpus_per_node = gpus;
    spec.time_limit_s = time_s;
    spec.user = "alice";
    Wslq__SubmitRequest req = WSLQ__SUBMIT_REQUEST__INIT;
    req.spec = &spec;
    return submit_req(f, &req, NULL);
}

/* Backfill in the real core, the passes for new jobs alone included: a 4-GPU job behind four
 * running 1-GPU jobs gets a reservation whose start is the last planned end (the job without
 * a time limit, planned with default_time_limit); once one GPU is free, a long 1-GPU job
 * submitted after it waits with the reason Reservation, and a short one starts. */
static void
test_backfill_reservation(void **state)
{
    fx_t *f = *state;
    fake_worker_t *w = add_worker(f, "pcA");
    wire_free((Wslq__Envelope *[]){register_worker(f, w, 4, NULL, 0)});
    uint64_t small[4];
    for (int i = 0; i < 4; i++) {
        small[i] = submit_timed(f, 1, i < 3 ? 600 : 0);
        Wslq__Envelope *l = expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000);
        assert_int_equal(l->launch->job_id, small[i]);
        wire_free(&l);
        started(w, small[i], 0);
        wait_state(f, small[i], WSLQ__JOB_STATE__RUNNING, 2000);
    }
    uint64_t big = submit_timed(f, 4, 3600);
    pump(f, 50);
    Wslq__Envelope *e = show(f, small[3]);
    int64_t last_start = e->show_reply->job->start_ms;
    wire_free(&e);
    e = show(f, big);
    const Wslq__JobInfo *j = e->show_reply->job;
    assert_int_equal(j->state, WSLQ__JOB_STATE__PENDING);
    assert_int_equal(j->est_start_ms, last_start + SCHED_DEFAULT_TIME_LIMIT_MS);
    assert_int_equal(j->est_after_job, small[3]);
    assert_true(j->est_by_default);
    assert_string_equal(j->est_nodes, "pcA");
    wire_free(&e);
    /* one GPU frees */
    ended(w, small[0], 0, 0, -1, 0);
    wait_state(f, small[0], WSLQ__JOB_STATE__COMPLETED, 2000);
    uint64_t long_job = submit_timed(f, 1, 2 * 86400);
    pump(f, 50);
    e = show(f, long_job);
    j = e->show_reply->job;
    assert_int_equal(j->state, WSLQ__JOB_STATE__PENDING);
    assert_int_equal(j->wait_reason, WSLQ__WAIT_REASON__WAIT_RESERVATION);
    assert_int_equal(j->kept_for_job, big);
    wire_free(&e);
    uint64_t short_job = submit_timed(f, 1, 60);
    Wslq__Envelope *l = expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000);
    assert_int_equal(l->launch->job_id, short_job);
    wire_free(&l);
    e = show(f, big);
    assert_int_equal(e->show_reply->job->state, WSLQ__JOB_STATE__PENDING);
    assert_int_not_equal(e->show_reply->job->est_start_ms, 0);
    wire_free(&e);
    assert_int_equal(state_of(f, long_job, NULL, 0), WSLQ__JOB_STATE__PENDING);
}

/* The job's state as the loop holds it (no request: a reply would be a turn of its own). */
static Wslq__JobState
state_held(fx_t *f, uint64_t id)
{
    for (size_t i = 0; i < sched_job_count(f->s); i++)
        if (sched_job(f->s, i)->id == id)
            return sched_job(f->s, i)->state;
    return WSLQ__JOB_STATE__JOB_STATE_UNSPECIFIED;
}

/* With --sync full a turn that tells no one anything commits without a sync, and a worker's
 * ended ack waits for one: a job's "started" leaves the WAL unsynced, and the ack of its end
 * arrives after a sync, by itself (OUT_HOLD_MS) when nothing else comes. Breaks this catches:
 * an ack sent ahead of the disk (the worker forgets a job that a power loss could take back),
 * a held ack never sent, every turn waiting for the disk. */
static void
test_acks_follow_the_disk(void **state)
{
    fx_t *f = *state;
    vfs_count_install();
    f->cfg.sync_full = 1;
    reboot(f);
    fake_worker_t *w = add_worker(f, "pcA");
    wire_free((Wslq__Envelope *[]){register_worker(f, w, 1, NULL, 0)});
    uint64_t id = submit(f, 1, 1, 0);
    wire_free((Wslq__Envelope *[]){expect(f, w->sock, WSLQ__ENVELOPE__BODY_LAUNCH, 2000)});
    int syncs = vfs_count_wal_syncs();
    started(w, id, 0);
    int64_t end = wq_clock_mono_ms() + 2000;
    while (state_held(f, id) != WSLQ__JOB_STATE__RUNNING && wq_clock_mono_ms() < end)
        assert_int_equal(turn(f), 0);
    assert_int_equal(state_held(f, id), WSLQ__JOB_STATE__RUNNING);
    pump(f, 50); /* heartbeats only: nothing to tell, nothing synced */
    assert_int_equal(vfs_count_wal_syncs(), syncs);
    ended(w, id, 0, 0, -1, 0);
    Wslq__Envelope *ack = expect(f, w->sock, WSLQ__ENVELOPE__BODY_ENDED_ACK, 2000);
    assert_int_equal(ack->ended_ack->job_id, id);
    assert_true(vfs_count_wal_syncs() > syncs); /* the end, and the start before it */
    wire_free(&ack);
    assert_int_equal(state_of(f, id, NULL, 0), WSLQ__JOB_STATE__COMPLETED);
}

int
main(void)
{
    wq_log_init("core_test");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_register_place_start_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acks_follow_the_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_impossible_job_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_lost_requeues, setup, teardown),
        cmocka_unit_test(test_torpid_threshold),
        cmocka_unit_test(test_waits_for_reason),
        cmocka_unit_test_setup_teardown(test_announced_interval_stretches_torpid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rank_failure_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gang_across_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_selftest_silent_peer_asked_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_adopts_running_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_array_cap_survives_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_forgotten_part_is_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_database_failure_stops_without_answer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_tail_after_the_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requeued_log_keeps_both_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parked_requests_are_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pass_on_a_full_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dependants_on_a_full_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waiters_stay_few, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocked_reason_after_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backfill_reservation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_preempt_for_higher_priority, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_suspend_and_evict_after_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fleet_one_node_lost, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
