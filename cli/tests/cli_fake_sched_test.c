/* The real wslq binary against a fake scheduler: a ROUTER on a random loopback port that
 * answers with canned replies. Each case forks wslq, serves its requests and captures its
 * stdout, stderr and exit code. Every loop is bounded by a deadline.
 * Usage: cli_fake_sched_test PATH/TO/wslq */
/* cmocka.h needs these first. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
/* after the standard headers */
#include <cjson/cJSON.h>
#include <cmocka.h>
#include <zmq.h>

#include "common/clock.h"
#include "proto/keys.h"
#include "proto/wire.h"

static const char *wslq_bin;
static void *zctx;
static void *router;
static char addr[64];
/* The fake is a CURVE server like the real one; wslq gets credentials that trust its key. */
static char tmpdir[] = "/tmp/wslq-cli-fake-XXXXXX";
static char creds_path[128];
static keys_creds_t server_keys;

/* What a handler saw and how it should answer. */
typedef struct fake fake_t;
typedef void (*handler_fn)(fake_t *f, const Wslq__Envelope *req, Wslq__Envelope *rep);
struct fake {
    handler_fn handler;
    int nreq;             /* requests served */
    int send_stale_first; /* also send a reply with a wrong request_id before the real one */
    int bad_wait;         /* a logs request came without wait_ms */
    uint64_t last_offset;
    int log_calls;
    Wslq__Envelope last_req_copy_kind;
    Wslq__JobSpec *seen_spec; /* copy of the last submitted spec (owned) */
};

typedef struct {
    int rc; /* exit code, or 128+signal */
    char out[65536];
    size_t out_len;
    char err[8192];
    size_t err_len;
    int64_t elapsed_ms;
} run_t;

static void
drain_fd(int *fd, char *buf, size_t cap, size_t *len)
{
    char tmp[4096];
    ssize_t n = read(*fd, tmp, sizeof tmp);
    if (n <= 0) {
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            return;
        close(*fd);
        *fd = -1;
        return;
    }
    size_t k = (size_t) n;
    if (*len + k >= cap)
        k = cap - 1 - *len;
    memcpy(buf + *len, tmp, k);
    *len += k;
    buf[*len] = '\0';
}

static void
serve_one(fake_t *f)
{
    uint8_t id[256];
    size_t id_len = 0;
    wq_error_t err = {0};
    Wslq__Envelope *req = wire_recv(router, id, &id_len, ZMQ_DONTWAIT, &err);
    if (req == NULL)
        fail_msg("fake scheduler could not decode a request: %s", err.text);
    f->nreq++;
    Wslq__Envelope rep = WSLQ__ENVELOPE__INIT;
    f->handler(f, req, &rep);
    if (rep.body_case != WSLQ__ENVELOPE__BODY__NOT_SET) {
        if (f->send_stale_first) {
            Wslq__ErrorReply er = WSLQ__ERROR_REPLY__INIT;
            er.code = WQ_EINVAL;
            er.text = "stale reply must be ignored";
            Wslq__Envelope stale = WSLQ__ENVELOPE__INIT;
            stale.request_id = req->request_id + 1;
            stale.body_case = WSLQ__ENVELOPE__BODY_ERROR;
            stale.error = &er;
            assert_int_equal(wire_send(router, id, id_len, &stale, 0, NULL), 0);
        }
        rep.request_id = req->request_id;
        assert_int_equal(wire_send(router, id, id_len, &rep, 0, NULL), 0);
    }
    wire_free(&req);
}

static void run_wslq_env(
    fake_t *f, run_t *r, const char *env_sched, char *const *envs, const char *const *args);

/* Run wslq with args (NULL-terminated, without argv[0]); serve it with f until it exits. */
static void
run_wslq(fake_t *f, run_t *r, const char *env_sched, const char *const *args)
{
    run_wslq_env(f, r, env_sched, NULL, args);
}

static void
run_wslq_env(fake_t *f, run_t *r, const char *env_sched, char *const *envs, const char *const *args)
{
    char *argv[64];
    int n = 0;
    argv[n++] = "wslq";
    for (; args[n - 1] != NULL && n < 63; n++)
        argv[n] = (char *) args[n - 1];
    argv[n] = NULL;
    memset(r, 0, sizeof *r);
    int out[2], err[2];
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    int64_t t0 = wq_clock_mono_ms();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(out[0]);
        close(err[0]);
        close(out[1]);
        close(err[1]);
        unsetenv("WSLQ_TIMEOUT");
        if (env_sched != NULL)
            setenv("WSLQ_SCHEDULER", env_sched, 1);
        else
            unsetenv("WSLQ_SCHEDULER");
        unsetenv("WSLQ_JOB_ID");
        unsetenv("WSLQ_RENDEZVOUS");
        unsetenv("WSLQ_INSECURE");
        setenv("WSLQ_CREDENTIALS", creds_path, 1);
        for (int i = 0; envs != NULL && envs[i] != NULL; i++)
            putenv(envs[i]);
        execv(wslq_bin, argv);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    int ofd = out[0], efd = err[0];
    int status = 0, exited = 0;
    int64_t deadline = t0 + 15000;
    while (!(exited && ofd < 0 && efd < 0)) {
        if (wq_clock_mono_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("wslq did not finish within 15 s; stderr so far: %s", r->err);
        }
        zmq_pollitem_t items[3];
        int ni = 0;
        items[ni++] = (zmq_pollitem_t){router, 0, ZMQ_POLLIN, 0};
        int oi = -1, ei = -1;
        if (ofd >= 0) {
            oi = ni;
            items[ni++] = (zmq_pollitem_t){NULL, ofd, ZMQ_POLLIN, 0};
        }
        if (efd >= 0) {
            ei = ni;
            items[ni++] = (zmq_pollitem_t){NULL, efd, ZMQ_POLLIN, 0};
        }
        int k = zmq_poll(items, ni, 50);
        if (k > 0) {
            if (items[0].revents & ZMQ_POLLIN)
                serve_one(f);
            if (oi >= 0 && (items[oi].revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
                drain_fd(&ofd, r->out, sizeof r->out, &r->out_len);
            if (ei >= 0 && (items[ei].revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
                drain_fd(&efd, r->err, sizeof r->err, &r->err_len);
        }
        if (!exited && waitpid(pid, &status, WNOHANG) == pid) {
            exited = 1;
            r->elapsed_ms = wq_clock_mono_ms() - t0;
        }
    }
    r->rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define RUN(f, r, ...)                          \
    do {                                        \
        const char *a_[] = {__VA_ARGS__, NULL}; \
        run_wslq((f), (r), NULL, a_);           \
    } while (0)

/* ---- canned replies ---- */

static char *job_argv[] = {"python3", "train.py"};

static void
fill_job(Wslq__JobInfo *j, Wslq__JobSpec *s, uint64_t id, Wslq__JobState st)
{
    wslq__job_spec__init(s);
    s->n_argv = 2;
    s->argv = job_argv;
    s->name = "train";
    s->user = "alice";
    s->nodes = 1;
    s->gpus_per_node = 1;
    wslq__job_info__init(j);
    j->id = id;
    j->spec = s;
    j->state = st;
    j->submit_ms = wq_clock_wall_ms() - 5000;
    j->exit_code = -1;
    j->failed_rank = -1;
}

static void
h_submit(fake_t *f, const Wslq__Envelope *req, Wslq__Envelope *rep)
{
    static Wslq__SubmitReply sr = WSLQ__SUBMIT_REPLY__INIT;
    assert_int_equal(req->body_case, WSLQ__ENVELOPE__BODY_SUBMIT);
    const Wslq__JobSpec *s = req->submit->spec;
    assert_non_null(s);
    assert_true(s->n_argv >= 1);
    /* Keep what we need from the request for the test to check. */
    if (f->seen_spec != NULL)
        wslq__job_spec__free_unpacked(f->seen_spec, NULL);
    size_t len = wslq__job_spec__get_packed_size(s);
    uint8_t *buf = malloc(len + 1);
    wslq__job_spec__pack(s, buf);
    f->seen_spec = wslq__job_spec__unpack(NULL, len, buf);
    free(buf);
    sr.job_id = 42;
    rep->body_case = WSLQ__ENVELOPE__BODY_SUBMIT_REPLY;
    rep->submit_reply = &sr;
}

static void
set_error(Wslq__Envelope *rep, enum wq_errc code, const char *text)
{
    static Wslq__ErrorReply er = WSLQ__ERROR_REPLY__INIT;
    er.code = (uint32_t) code;
    er.text = (char *) text;
    rep->body_case = WSLQ__ENVELOPE__BODY_ERROR;
    rep->error = &er;
}

static void
h_reject(fake_t *f, const Wslq__Envelope *req, Wslq__Envelope *rep)
{
    (void) f;
    (void) req;
    set_error(rep, WQ_EINVAL, "no node has 4 GPUs; the largest has 2");
}

static void
h_not_found(fake_t *f, const Wslq__Envelope *req, Wslq__Envelope *rep)
{
    (void) f;
    (void) req;
    set_error(rep, WQ_ENOENT, "job 99 not found");
}

static void
h_cancel(fake_t *f, const Wslq__Envelope *req, Wslq__Envelope *rep)
{
    (void) f;
    static Wslq__CancelReply cr = WSLQ__CANCEL_REPLY__INIT;
    static uint64_t ids[1];
    assert_int_equal(req->body_case, WSLQ__ENVELOPE__BODY_CANCEL);
    /* one job a request, named as the user wrote it (it may be an array task, 40_[3-9]) */
    assert_int_equal(req->cancel->n_job_ids + req->cancel->n_selectors, 1);
    uint64_t id = req->cancel->n_job_ids ? req->cancel->job_ids[0]
                                         : strtoull(req->cancel->selectors[0], NULL, 10);
    if (id == 99) {
        set_error(rep, WQ_ENOENT, "job 99 not found");
        return;
    }
    ids[0] = id;
    cr.n_cancelled = id == 7 ? 0 : 1; /* job 7 has already ended */
    cr.cancelled = ids;
    rep->body_case = WSLQ__ENVELOPE__BODY_CANCEL_REPLY;
    rep->cancel_reply = &cr;
}

/* Output: "line1\n" at 0; then one empty wait; then "line2\n"; then eof. */
static void
h_logs(fake_t *f, const Wslq__Envelope *req, Wslq__Envelope *rep)
{
    static Wslq__LogsReply lr;
    wslq__logs_reply__init(&lr);
    assert_int_equal(req->body_case, WSLQ__ENVELOPE__BODY_LOGS);
    assert_int_equal(req->logs->job_id, 5);
    if (req->logs->wait_ms == 0)
        f->bad_wait = 1;
    uint64_t off = req->logs->offset;
    f->log_calls++;
    lr.state = WSLQ__JOB_STATE__RUNNING;
    if (off == 0) {
        lr.data.data = (uint8_t *) "line1\n";
        lr.data.len = 6;
        lr.next_offset = 6;
    } else if (off == 6 && f->last_offset != 6) {
        lr.next_offset = 6; /* nothing new yet */
    } else if (off == 6) {
        lr.data.data = (uint8_t *) "line2\n";
        lr.data.len = 6;
        lr.next_offset = 12;
    } else {
        lr.next_offset = off;
        lr.eof = 1;
        lr.state = WSLQ__JOB_STATE__COMPLETED;
    }
    f->last_offset = off;
    rep->body_case = WSLQ__ENVELOPE__BODY_LOGS_REPLY;
    rep->logs_reply = &lr;
}

static Wslq__JobInfo q_jobs[2];
static Wslq__JobSpec q_specs[2];
static Wslq__JobInfo *q_ptrs[2] = {&q_jobs[0], &q_jobs[1]};

static void
h_queue(fake_t *f, const Wslq__Envelope *req, Wslq__Envelope *rep)
{
    (void) f;
    static Wslq__QueueReply qr;
    assert_int_equal(req->body_case, WSLQ__ENVELOPE__BODY_QUEUE);
    fill_job(&q_jobs[0], &q_specs[0], 1, WSLQ__JOB_STATE__RUNNING);
    fill_job(&q_jobs[1], &q_specs[1], 2, WSLQ__JOB_STATE__PENDING);
    q_jobs[1].reason = "Resources";
    wslq__queue_reply__init(&qr);
    qr.n_jobs = 2;
    qr.jobs = q_ptrs;
    rep->body_case = WSLQ__ENVELOPE__BODY_QUEUE_REPLY;
    rep->queue_reply = &qr;
}

static void
h_silent(fake_t *f, const Wslq__Envelope *req, Wslq__Envelope *rep)
{
    (void) f;
    (void) req;
    (void) rep; /* never answers */
}

/* ---- cases ---- */

static void
test_submit(void **state)
{
    (void) state;
    fake_t f = {.handler = h_submit};
    run_t r;
    RUN(&f, &r, "--scheduler", addr, "submit", "--gpus", "1", "--name", "hello", "--", "python3",
        "-c", "print(1)");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "Submitted job 42\n");
    assert_string_equal(r.err, "");
    assert_string_equal(f.seen_spec->name, "hello");
    assert_int_equal(f.seen_spec->gpus_per_node, 1);
    assert_string_equal(f.seen_spec->argv[2], "print(1)");

    /* --scheduler after the verb, --parsable, and a stale reply that must be skipped. */
    f.send_stale_first = 1;
    RUN(&f, &r, "submit", "--scheduler", addr, "--parsable", "--wrap", "echo hi");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "42\n");
    assert_true(f.seen_spec->wrap);

    /* WSLQ_SCHEDULER, and --json. */
    f.send_stale_first = 0;
    const char *a[] = {"submit", "--json", "true", NULL};
    run_wslq(&f, &r, addr, a);
    assert_int_equal(r.rc, 0);
    cJSON *o = cJSON_Parse(r.out);
    assert_non_null(o);
    assert_int_equal(cJSON_GetObjectItem(o, "job_id")->valuedouble, 42);
    cJSON_Delete(o);
    wslq__job_spec__free_unpacked(f.seen_spec, NULL);
}

static void
test_error_reply(void **state)
{
    (void) state;
    fake_t f = {.handler = h_reject};
    run_t r;
    RUN(&f, &r, "--scheduler", addr, "submit", "--gpus", "4", "true");
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, "wslq: no node has 4 GPUs; the largest has 2\n");
}

static void
test_unknown_job(void **state)
{
    (void) state;
    fake_t f = {.handler = h_not_found};
    run_t r;
    RUN(&f, &r, "--scheduler", addr, "show", "99");
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "wslq: job 99 not found\n");
    RUN(&f, &r, "--scheduler", addr, "logs", "99");
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "wslq: job 99 not found\n");
}

static void
test_cancel(void **state)
{
    (void) state;
    fake_t f = {.handler = h_cancel};
    run_t r;
    RUN(&f, &r, "--scheduler", addr, "cancel", "5", "99", "6");
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.out, "Cancelled job 5\nCancelled job 6\n");
    assert_string_equal(r.err, "wslq: job 99 not found\n");
    assert_int_equal(f.nreq, 3);
    RUN(&f, &r, "--scheduler", addr, "cancel", "7");
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "wslq: job 7 was not cancelled (it has already ended)\n");
    RUN(&f, &r, "--scheduler", addr, "cancel", "8");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "Cancelled job 8\n");
}

static void
test_unreachable(void **state)
{
    (void) state;
    /* A port nothing listens on, held (bound, never listening) until the command is done: a
     * port closed again could meanwhile be taken by a parallel test's listener, or by the
     * command's own connection to itself (its source port picked equal to it), and the
     * command would then report a failed handshake instead. */
    int held = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(held >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(held, (struct sockaddr *) &sa, sizeof sa), 0);
    socklen_t salen = sizeof sa;
    assert_int_equal(getsockname(held, (struct sockaddr *) &sa, &salen), 0);
    char dead[64];
    snprintf(dead, sizeof dead, "tcp://127.0.0.1:%u", (unsigned) ntohs(sa.sin_port));
    fake_t f = {.handler = h_silent};
    run_t r;
    RUN(&f, &r, "--scheduler", dead, "--timeout", "1", "queue");
    assert_int_equal(r.rc, 1);
    char want[256];
    snprintf(want, sizeof want,
             "wslq: cannot reach scheduler at %s (timed out after 1 s); is wslq-scheduler "
             "running?\n",
             dead);
    assert_string_equal(r.err, want);
    assert_true(r.elapsed_ms >= 900);
    assert_true(r.elapsed_ms < 4000);
    close(held);

    /* A scheduler that accepts but never answers gives the same line, after --timeout. */
    RUN(&f, &r, "--scheduler", addr, "show", "3", "--timeout", "500ms");
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "(timed out after 0.5 s)"));
    assert_int_equal(f.nreq, 1);
}

static void
test_usage_errors(void **state)
{
    (void) state;
    fake_t f = {.handler = h_silent};
    run_t r;
    RUN(&f, &r, "--scheduler", addr, "submit", "--gpus", "x", "true");
    assert_int_equal(r.rc, 2);
    assert_string_equal(r.err,
                        "wslq: --gpus: 'x' is not a whole number; see 'wslq submit --help'\n");
    RUN(&f, &r, "--scheduler", addr, "queue", "--bogus");
    assert_int_equal(r.rc, 2);
    assert_string_equal(r.err, "wslq: unknown option '--bogus'; see 'wslq queue --help'\n");
    RUN(&f, &r, "--scheduler", addr, "show", "abc");
    assert_int_equal(r.rc, 2);
    assert_string_equal(r.err, "wslq: 'abc' is not a job id; use 42, or ARRAY_INDEX (40_7) or "
                               "ARRAY_[LIST] (40_[3-9]) for array tasks; see 'wslq show --help'\n");
    RUN(&f, &r, "frobnicate");
    assert_int_equal(r.rc, 2);
    assert_string_equal(r.err, "wslq: unknown command 'frobnicate'; see 'wslq --help'\n");
    RUN(&f, &r, "--timeout", "soon", "queue");
    assert_int_equal(r.rc, 2);
    assert_int_equal(f.nreq, 0); /* nothing was sent */
    RUN(&f, &r, "kv", "get", "x");
    assert_int_equal(r.rc, 2);
    assert_string_equal(r.err, "wslq: not inside a wslq job (WSLQ_RENDEZVOUS is not set)\n");
    /* Every command has --help. */
    static const char *const verbs[] = {"submit", "queue", "show", "logs",
                                        "cancel", "nodes", "kv",   "doctor"};
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        RUN(&f, &r, verbs[i], "--help");
        if (r.rc != 0 || strncmp(r.out, "usage: wslq ", 12) != 0)
            fail_msg("wslq %s --help: rc %d, out '%.60s'", verbs[i], r.rc, r.out);
    }
    RUN(&f, &r, "--version");
    assert_int_equal(r.rc, 0);
    assert_int_equal(strncmp(r.out, "wslq ", 5), 0);
}

static void
test_logs_follow(void **state)
{
    (void) state;
    fake_t f = {.handler = h_logs};
    run_t r;
    RUN(&f, &r, "--scheduler", addr, "logs", "-f", "5");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "line1\nline2\n");
    assert_string_equal(r.err, "");
    assert_false(f.bad_wait);
    assert_int_equal(f.log_calls, 4);

    /* Without -f: stops once caught up, before the job ends. */
    fake_t g = {.handler = h_logs};
    RUN(&g, &r, "--scheduler", addr, "logs", "5");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "line1\n");
    assert_int_equal(g.log_calls, 2);
}

static void
test_queue(void **state)
{
    (void) state;
    fake_t f = {.handler = h_queue};
    run_t r;
    RUN(&f, &r, "--scheduler", addr, "queue", "--all", "--json");
    assert_int_equal(r.rc, 0);
    cJSON *o = cJSON_Parse(r.out);
    assert_non_null(o);
    cJSON *jobs = cJSON_GetObjectItem(o, "jobs");
    assert_int_equal(cJSON_GetArraySize(jobs), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(jobs, 1), "state")->valuestring,
                        "PENDING");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(o, "more")));
    cJSON_Delete(o);

    RUN(&f, &r, "--scheduler", addr, "queue");
    assert_int_equal(r.rc, 0);
    assert_int_equal(strncmp(r.out, "ID  USER   NAME   STATE", 23), 0);
    assert_non_null(strstr(r.out, "(Resources)\n"));
}

static void
h_kv(fake_t *f, const Wslq__Envelope *req, Wslq__Envelope *rep)
{
    static Wslq__KvReply kr;
    static uint8_t stored[64];
    static size_t stored_len;
    wslq__kv_reply__init(&kr);
    assert_int_equal(req->body_case, WSLQ__ENVELOPE__BODY_KV);
    assert_int_equal(req->kv->job_id, 17);
    assert_int_equal(req->kv->attempt, 2);
    f->log_calls++;
    switch (req->kv->op) {
    case WSLQ__KV_REQUEST__OP__PUT:
        assert_true(req->kv->value.len < sizeof stored);
        memcpy(stored, req->kv->value.data, req->kv->value.len);
        stored_len = req->kv->value.len;
        kr.found = 1;
        break;
    case WSLQ__KV_REQUEST__OP__GET:
        if (strcmp(req->kv->key, "nccl_id") == 0) {
            kr.found = 1;
            kr.value.data = stored;
            kr.value.len = stored_len;
        }
        break;
    default:
        assert_int_equal(req->kv->timeout_ms, 300);
        set_error(rep, WQ_ETIMEDOUT, "key 'peer' was not set in time");
        return;
    }
    rep->body_case = WSLQ__ENVELOPE__BODY_KV_REPLY;
    rep->kv_reply = &kr;
}

static void
test_kv(void **state)
{
    (void) state;
    fake_t f = {.handler = h_kv};
    run_t r;
    char *envs[] = {"WSLQ_JOB_ID=17", "WSLQ_ATTEMPT=2", NULL};
    const char *put[] = {"kv", "put", "nccl_id", "abc123", NULL};
    run_wslq_env(&f, &r, addr, envs, put);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "");
    const char *get[] = {"kv", "get", "nccl_id", NULL};
    run_wslq_env(&f, &r, addr, envs, get);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "abc123\n");
    const char *miss[] = {"kv", "get", "other", NULL};
    run_wslq_env(&f, &r, addr, envs, miss);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "wslq: key 'other' is not set\n");
    const char *wait[] = {"kv", "wait", "peer", "--timeout", "300ms", NULL};
    run_wslq_env(&f, &r, addr, envs, wait);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "wslq: key 'peer' was not set in time\n");
    const char *bad[] = {"kv", "put", "k", NULL};
    run_wslq_env(&f, &r, addr, envs, bad);
    assert_int_equal(r.rc, 2);
    assert_string_equal(r.err, "wslq: put takes KEY VALUE; see 'wslq kv --help'\n");
    assert_int_equal(f.log_calls, 4);
}

static void
test_doctor(void **state)
{
    (void) state;
    /* The node fixture of a plain Linux box: calm INFO lines, exit 0. */
    char root[4096];
    snprintf(root, sizeof root, "%s/node/tests/fixtures/plain-linux", WSLQ_SRC);
    if (access(root, R_OK) != 0)
        skip();
    fake_t f = {.handler = h_silent};
    run_t r;
    RUN(&f, &r, "doctor", "--root", root, "--no-gpu", "--json");
    if (r.rc == 1 && strstr(r.err, "not built") != NULL)
        skip();
    assert_int_equal(r.rc, 0);
    cJSON *o = cJSON_Parse(r.out);
    assert_non_null(o);
    assert_int_equal(cJSON_GetObjectItem(o, "exit_code")->valuedouble, 0);
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(o, "checks")));
    cJSON_Delete(o);
    assert_int_equal(f.nreq, 0);
}

/* Credentials that are missing, readable by others, or trust another scheduler's key: each
 * a one-line reason, exit 1, and nothing reaches the scheduler in the clear. */
static void
test_credentials(void **state)
{
    (void) state;
    fake_t f = {.handler = h_silent};
    run_t r;
    char env[300], *envs[] = {env, NULL};
    const char *queue[] = {"--scheduler", addr, "--timeout", "2", "queue", NULL};

    snprintf(env, sizeof env, "WSLQ_CREDENTIALS=%s/other", tmpdir);
    run_wslq_env(&f, &r, NULL, envs, queue);
    assert_int_equal(r.rc, 1);
    char want[512];
    snprintf(want, sizeof want,
             "wslq: no credentials (%s/other): ask an admin for an enrolment code, then run "
             "'wslq login CODE'\n",
             tmpdir);
    assert_string_equal(r.err, want);

    keys_creds_t c = {.name = "alice"};
    wq_error_t err = {0};
    assert_int_equal(keys_generate(&c, &err), 0);
    snprintf(c.server, sizeof c.server, "%s", server_keys.public_);
    char path[256];
    snprintf(path, sizeof path, "%s/open", tmpdir);
    assert_int_equal(keys_save(path, &c, &err), 0);
    assert_int_equal(chmod(path, 0644), 0);
    snprintf(env, sizeof env, "WSLQ_CREDENTIALS=%s", path);
    run_wslq_env(&f, &r, NULL, envs, queue);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "others may read it"));

    /* a server key that is not the fake's: the handshake fails, the client says so */
    keys_creds_t other;
    assert_int_equal(keys_generate(&other, &err), 0);
    snprintf(c.server, sizeof c.server, "%s", other.public_);
    snprintf(path, sizeof path, "%s/wrong", tmpdir);
    assert_int_equal(keys_save(path, &c, &err), 0);
    snprintf(env, sizeof env, "WSLQ_CREDENTIALS=%s", path);
    run_wslq_env(&f, &r, NULL, envs, queue);
    assert_int_equal(r.rc, 1);
    if (strstr(r.err, "security handshake") == NULL)
        fail_msg("want a handshake failure, got: %s", r.err);
    assert_int_equal(f.nreq, 0);
}

static int
setup(void **state)
{
    (void) state;
    zctx = zmq_ctx_new();
    router = zmq_socket(zctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
    wq_error_t err = {0};
    int on = 1;
    if (keys_generate(&server_keys, &err) < 0 ||
        zmq_setsockopt(router, ZMQ_CURVE_SERVER, &on, sizeof on) < 0 ||
        zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY, server_keys.secret, KEYS_Z85_LEN) < 0)
        return -1;
    if (zmq_bind(router, "tcp://127.0.0.1:*") < 0)
        return -1;
    size_t len = sizeof addr;
    zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, addr, &len);
    /* the client's file names no scheduler: --scheduler and WSLQ_SCHEDULER say where */
    keys_creds_t client = {.name = "alice"};
    snprintf(client.server, sizeof client.server, "%s", server_keys.public_);
    if (mkdtemp(tmpdir) == NULL || keys_generate(&client, &err) < 0)
        return -1;
    snprintf(creds_path, sizeof creds_path, "%s/credentials", tmpdir);
    if (keys_save(creds_path, &client, &err) < 0) {
        fprintf(stderr, "%s\n", err.text);
        return -1;
    }
    return 0;
}

static int
teardown(void **state)
{
    (void) state;
    zmq_close(router);
    zmq_ctx_term(zctx);
    char path[256];
    const char *files[] = {"credentials", "other", "open", "wrong"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, files[i]);
        unlink(path);
    }
    rmdir(tmpdir);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/TO/wslq\n", argv[0]);
        return 2;
    }
    wslq_bin = argv[1];
    if (access(wslq_bin, X_OK) != 0) {
        fprintf(stderr, "%s: cannot run %s\n", argv[0], wslq_bin);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_submit),      cmocka_unit_test(test_error_reply),
        cmocka_unit_test(test_unknown_job), cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_unreachable), cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_logs_follow), cmocka_unit_test(test_queue),
        cmocka_unit_test(test_kv),          cmocka_unit_test(test_doctor),
        cmocka_unit_test(test_credentials),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
