/* The worker's event loop and its side of the protocol (proto/README.md, "Worker
 * conversation"). Single thread; no blocking call except zmq_poll. */
#include "worker/worker.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/mem.h"
#include "proto/wire.h"
#include "worker/job.h"
#include "worker/rdv.h"
#include "worker/sysinfo.h"

#define TAIL_MS           20   /* output/metrics tailing interval while jobs run */
#define ENDED_RESEND_MS   2000 /* JobEnded re-sent until JobEndedAck */
#define REGISTER_RETRY_MS 5000 /* Register re-sent while no RegisterReply came */
#define REREG_DEBOUNCE_MS 200  /* a burst of Reregister (stale queued frames) -> one Register */
#define LOG_CHUNK         (64u << 10) /* bytes per LogChunk */
#define LOG_CHUNKS_TICK   16          /* LogChunks per job per tick */
#define METRIC_LINES_TICK 64          /* metric lines per rank per tick */
#define RECV_BURST        1000        /* messages handled per loop turn */
#define RDV_ITEMS         1024        /* rendezvous poll items per loop turn */
#define CLEANUP_MS        3600000     /* spool cleanup interval */
#define PROBE_MAX         8           /* inbound and outbound self-test connections at once */
#define PROBE_IN_MS       5000        /* an inbound test connection must send its line by then */
#define PROBE_TIMEOUT_MS  3000        /* ProbeRequest.timeout_ms when 0 */
#define PROBE_LINE        160         /* longest line read from a test connection */

/* One self-test connection: accepted on our probe port (inbound) or made to a peer's
 * (outbound, for a ProbeRequest). */
typedef struct probe_conn {
    int fd; /* -1 = slot free */
    int outbound;
    int connected; /* outbound: connect finished and the token went out */
    int64_t start; /* mono ms */
    int64_t deadline;
    char target[WIRE_MAX_NAME + 1]; /* outbound: the node tested */
    char token[80];
    char buf[PROBE_LINE];
    size_t len;
} probe_conn_t;

struct worker {
    wcfg_t cfg;
    sysinfo_t si;
    void *ctx;
    void *sock;
    job_t **jobs;
    size_t njobs, cap;
    job_cfg_t jcfg;
    rdv_t *rdv;          /* rendezvous relay, NULL when disabled */
    int registered;      /* a RegisterReply arrived since the last (re)connect */
    int64_t reg_sent_ms; /* monotonic ms of the last Register */
    int64_t next_hb_ms;  /* monotonic ms of the next Heartbeat */
    int64_t next_cleanup_ms;
    int backlog;           /* a send hit the high-water mark: retry soon */
    wq_ratelimit_t rl_bad; /* bad frames from the scheduler */
    int probe_fd;          /* inbound self-test listener, -1 = none */
    unsigned probe_port;   /* its port, reported in Register; 0 = none */
    probe_conn_t probes[PROBE_MAX];
    uint64_t reg_req_id;     /* request_id of the last Register */
    int64_t reg_sent_wall;   /* wall ms when it was sent */
    int clock_measured;      /* clock_offset_ms and clock_rtt_ms hold a measurement */
    int64_t clock_offset_ms; /* scheduler clock minus ours */
    uint32_t clock_rtt_ms;
};

static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t stop_flag;

static void
on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGTERM || sig == SIGINT)
        stop_flag = 1;
    char b = (char) sig;
    ssize_t w = write(sig_pipe[1], &b, 1);
    (void) w;
    errno = saved;
}

static int
mkdir_p(const char *path, wq_error_t *err)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return wq_fail_errno(err, "cannot create %s", buf);
            *p = c;
            if (c == '\0')
                return 0;
        }
    }
}

static void
add_job(worker_t *w, job_t *j)
{
    if (w->njobs == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 16;
        w->jobs = wq_realloc(w->jobs, w->cap * sizeof *w->jobs);
    }
    w->jobs[w->njobs++] = j;
}

static job_t *
find_job(worker_t *w, uint64_t id, uint32_t attempt)
{
    for (size_t i = 0; i < w->njobs; i++)
        if (w->jobs[i]->id == id && w->jobs[i]->attempt == attempt)
            return w->jobs[i];
    return NULL;
}

/* ---- sending ---- */

static int
send_env(worker_t *w, Wslq__Envelope *env)
{
    wq_error_t err = {0};
    if (wire_send(w->sock, NULL, 0, env, ZMQ_DONTWAIT, &err) < 0) {
        if (errno == EAGAIN)
            w->backlog = 1;
        else
            log_warn("send to scheduler failed err=\"%s\"", err.text);
        return -1;
    }
    return 0;
}

static int
rdv_send(void *ctx, Wslq__Envelope *env)
{
    return send_env(ctx, env);
}

/* Open the job's rendezvous socket (<spool>/rdv.sock). 1 if offered. */
static int
rdv_start(worker_t *w, uint64_t id, uint32_t attempt)
{
    if (w->rdv == NULL)
        return 0;
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/spool/%" PRIu64 ".%" PRIu32, w->cfg.state_dir, id, attempt);
    if (mkdir(p, 0755) < 0 && errno != EEXIST)
        return 0;
    strncat(p, "/rdv.sock", sizeof p - strlen(p) - 1);
    wq_error_t err = {0};
    if (rdv_open(w->rdv, id, attempt, p, &err) < 0) {
        log_warn("no rendezvous socket " JOB_FMT " err=\"%s\"", id, err.text);
        return 0;
    }
    return 1;
}

static void
send_register(worker_t *w, int64_t now)
{
    Wslq__Register r = WSLQ__REGISTER__INIT;
    r.name = w->cfg.name;
    r.hostname = w->si.hostname;
    r.ip = w->si.ip;
    r.cpus = (uint32_t) w->si.cpus;
    r.mem_mb = (uint64_t) w->si.mem_mb;
    Wslq__GpuInfo gm[WIRE_MAX_GPUS], *gp[WIRE_MAX_GPUS];
    sysinfo_gpu_msgs(&w->si, gm, gp);
    r.n_gpus = (size_t) w->si.ngpus;
    r.gpus = gp;
    Wslq__RunningJob *rj = wq_calloc(w->njobs + 1, sizeof *rj);
    Wslq__RunningJob **rp = wq_calloc(w->njobs + 1, sizeof *rp);
    for (size_t i = 0; i < w->njobs; i++) {
        job_t *j = w->jobs[i];
        if (j->phase == JOB_ENDED)
            continue; /* its JobEnded is re-sent instead */
        wslq__running_job__init(&rj[r.n_running]);
        rj[r.n_running].job_id = j->id;
        rj[r.n_running].attempt = j->attempt;
        rj[r.n_running].log_offset = job_log_size(j);
        rp[r.n_running] = &rj[r.n_running];
        r.n_running++;
    }
    r.running = rp;
    r.version = WSLQ_VERSION;
    r.inbound_ok = w->cfg.inbound_ok >= 0 ? w->cfg.inbound_ok : w->si.inbound_ok;
    r.heartbeat_ms = (uint32_t) w->cfg.heartbeat_ms;
    Wslq__NodeAttr a[SYSINFO_MAX_ATTRS + 4], *ap[SYSINFO_MAX_ATTRS + 4];
    const char *keys[4] = {"is_wsl", "iface", "nccl_profile", "gpu_note"};
    const char *vals[4] = {w->si.is_wsl ? "1" : "0", w->si.iface, w->si.nccl_profile,
                           w->si.gpu_note};
    size_t na = 0;
    for (int i = 0; i < 4; i++) {
        if (vals[i][0] == '\0' && i == 3)
            continue;
        wslq__node_attr__init(&a[na]);
        a[na].key = (char *) keys[i];
        a[na].value = (char *) vals[i];
        ap[na] = &a[na];
        na++;
    }
    for (int i = 0; i < w->si.n_attrs; i++) {
        wslq__node_attr__init(&a[na]);
        a[na].key = w->si.attr_key[i];
        a[na].value = w->si.attr_val[i];
        ap[na] = &a[na];
        na++;
    }
    r.n_attrs = na;
    r.attrs = ap;
    r.probe_port = w->probe_port;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_REG;
    env.reg = &r;
    env.request_id = ++w->reg_req_id;
    w->reg_sent_wall = wq_clock_wall_ms();
    send_env(w, &env);
    free(rj);
    free(rp);
    w->reg_sent_ms = now;
    log_flag(WORKER, "register sent running=%zu", r.n_running);
}

static void
send_heartbeat(worker_t *w)
{
    sysinfo_refresh(&w->si);
    Wslq__Heartbeat hb = WSLQ__HEARTBEAT__INIT;
    Wslq__GpuInfo gm[WIRE_MAX_GPUS], *gp[WIRE_MAX_GPUS];
    sysinfo_gpu_msgs(&w->si, gm, gp);
    hb.n_gpus = (size_t) w->si.ngpus;
    hb.gpus = gp;
    for (size_t i = 0; i < w->njobs; i++)
        hb.running += w->jobs[i]->phase != JOB_ENDED;
    hb.clock_measured = w->clock_measured;
    hb.clock_offset_ms = w->clock_offset_ms;
    hb.clock_rtt_ms = w->clock_rtt_ms;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    send_env(w, &env);
}

static void
send_started(worker_t *w, job_t *j)
{
    Wslq__JobStarted m = WSLQ__JOB_STARTED__INIT;
    m.job_id = j->id;
    m.attempt = j->attempt;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_STARTED;
    env.started = &m;
    send_env(w, &env);
}

/* Tell the scheduler at once that a rank failed, so it stops the job's other nodes while
 * this one stops its own other ranks. */
static void
send_rank_failed(worker_t *w, job_t *j)
{
    const job_rank_t *r = &j->ranks[j->fail_lrank];
    Wslq__RankFailed m = WSLQ__RANK_FAILED__INIT;
    m.job_id = j->id;
    m.attempt = j->attempt;
    m.rank = (int32_t) r->grank;
    m.exit_code = WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1;
    m.signal = WIFSIGNALED(r->status) ? WTERMSIG(r->status) : 0;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_RANK_FAILED;
    env.rank_failed = &m;
    send_env(w, &env);
    j->fail_reported = 1;
}

static void
send_ended(worker_t *w, job_t *j, int64_t now)
{
    Wslq__JobEnded m = WSLQ__JOB_ENDED__INIT;
    m.job_id = j->id;
    m.attempt = j->attempt;
    m.exit_code = j->exit_code;
    m.signal = j->signal;
    m.timed_out = j->timed_out;
    m.killed = j->killed;
    m.failed_rank = j->failed_rank;
    m.reason = j->reason;
    m.log_bytes = j->log_bytes;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_ENDED;
    env.ended = &m;
    send_env(w, &env);
    j->ended_sent_ms = now;
}

/* Stream new bytes of job.log from j->sent, bounded per tick. */
static void
send_logs(worker_t *w, job_t *j)
{
    uint64_t size = j->phase == JOB_ENDED ? j->log_bytes : job_log_size(j);
    if (j->sent > size)
        j->sent = size; /* the scheduler claims more than we have: trust our file */
    if (j->sent == size)
        return;
    uint8_t *buf = wq_malloc(LOG_CHUNK);
    for (int k = 0; k < LOG_CHUNKS_TICK && j->sent < size; k++) {
        uint64_t want = size - j->sent < LOG_CHUNK ? size - j->sent : LOG_CHUNK;
        ssize_t n = job_log_read(j, j->sent, buf, (size_t) want);
        if (n <= 0)
            break;
        Wslq__LogChunk c = WSLQ__LOG_CHUNK__INIT;
        c.job_id = j->id;
        c.attempt = j->attempt;
        c.offset = j->sent;
        c.data.data = buf;
        c.data.len = (size_t) n;
        Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
        env.body_case = WSLQ__ENVELOPE__BODY_LOG;
        env.log = &c;
        if (send_env(w, &env) < 0)
            break;
        j->sent += (uint64_t) n;
    }
    if (j->sent < size)
        w->backlog = 1;
    free(buf);
}

static void
send_metrics(worker_t *w, job_t *j)
{
    for (int i = 0; i < j->nranks; i++) {
        char **lines = NULL;
        size_t n = job_metrics(j, i, &lines, METRIC_LINES_TICK);
        if (n > 0) {
            Wslq__MetricLines m = WSLQ__METRIC_LINES__INIT;
            m.job_id = j->id;
            m.rank = j->ranks[i].grank;
            m.n_lines = n;
            m.lines = lines;
            Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
            env.body_case = WSLQ__ENVELOPE__BODY_METRICS;
            env.metrics = &m;
            send_env(w, &env);
            if (n == METRIC_LINES_TICK)
                w->backlog = 1;
        }
        for (size_t k = 0; k < n; k++)
            free(lines[k]);
        free(lines);
    }
}

/* ---- inbound self-test (proto/README.md, "Inbound self-test") ---- */

/* Listen on the probe port on every interface; never fatal: a node that cannot listen
 * reports port 0 and the scheduler marks its test failed. */
static void
probe_listen(worker_t *w)
{
    w->probe_fd = -1;
    w->probe_port = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_warn("no inbound self-test listener err=\"%s\"", strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons((uint16_t) w->cfg.probe_port);
    socklen_t alen = sizeof a;
    if (bind(fd, (struct sockaddr *) &a, sizeof a) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *) &a, &alen) < 0) {
        log_warn("no inbound self-test listener port=%d err=\"%s\"", w->cfg.probe_port,
                 strerror(errno));
        close(fd);
        return;
    }
    w->probe_fd = fd;
    w->probe_port = ntohs(a.sin_port);
    log_info("inbound self-test listening port=%u", w->probe_port);
}

static probe_conn_t *
probe_slot(worker_t *w)
{
    for (int i = 0; i < PROBE_MAX; i++)
        if (w->probes[i].fd < 0)
            return &w->probes[i];
    return NULL;
}

static void
probe_close(probe_conn_t *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
}

static void
probe_result(worker_t *w, probe_conn_t *p, int ok, const char *error, int64_t now)
{
    Wslq__ProbeResult m = WSLQ__PROBE_RESULT__INIT;
    char e[120];
    snprintf(e, sizeof e, "%s", error ? error : "");
    for (char *q = e; *q; q++)
        if ((unsigned char) *q < 0x20 || *q == 0x7f)
            *q = '?';
    m.target_node = p->target;
    m.token = p->token;
    m.ok = ok;
    m.error = e;
    m.elapsed_ms = (uint32_t) (now - p->start);
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_PROBE_RESULT;
    env.probe_result = &m;
    send_env(w, &env);
    log_info("inbound self-test of a peer target=%s ok=%d elapsed_ms=%u err=\"%s\"", p->target, ok,
             m.elapsed_ms, e);
    probe_close(p);
}

/* A ProbeRequest: start a non-blocking connect to the target's probe port. */
static void
probe_connect(worker_t *w, const Wslq__ProbeRequest *r, int64_t now)
{
    probe_conn_t tmp, *p = probe_slot(w);
    if (p == NULL) {
        memset(&tmp, 0, sizeof tmp);
        p = &tmp; /* answer "busy" through a slot that is not kept */
    }
    memset(p, 0, sizeof *p);
    p->fd = -1;
    p->outbound = 1;
    p->start = now;
    p->deadline = now + (r->timeout_ms ? r->timeout_ms : PROBE_TIMEOUT_MS);
    snprintf(p->target, sizeof p->target, "%s", r->target_node);
    snprintf(p->token, sizeof p->token, "%s", r->token);
    if (p == &tmp) {
        probe_result(w, p, 0, "the testing worker has too many tests running", now);
        return;
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t) r->port);
    if (inet_pton(AF_INET, r->ip, &a.sin_addr) != 1) {
        probe_result(w, p, 0, "address is not an IPv4 address", now);
        return;
    }
    p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->fd < 0) {
        probe_result(w, p, 0, strerror(errno), now);
        return;
    }
    if (connect(p->fd, (struct sockaddr *) &a, sizeof a) < 0 && errno != EINPROGRESS) {
        probe_result(w, p, 0, strerror(errno), now);
        return;
    }
    log_flag(WORKER, "inbound self-test connecting target=%s addr=%s:%u", p->target, r->ip,
             r->port);
}

/* Accept waiting connections on the probe port (never blocks). */
static void
probe_accept(worker_t *w, int64_t now)
{
    for (int n = 0; n < PROBE_MAX; n++) {
        int fd = accept(w->probe_fd, NULL, NULL);
        if (fd < 0)
            return;
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        fcntl(fd, F_SETFL, O_NONBLOCK);
        probe_conn_t *p = probe_slot(w);
        if (p == NULL) {
            close(fd); /* too many at once: the tester sees a reset and reports it */
            continue;
        }
        memset(p, 0, sizeof *p);
        p->fd = fd;
        p->start = now;
        p->deadline = now + PROBE_IN_MS;
    }
}

/* Read what arrived; 1 when a whole line is in p->buf (newline removed), 0 for more,
 * -1 on EOF or error (errno or 0 for EOF). */
static int
probe_read_line(probe_conn_t *p)
{
    for (;;) {
        if (p->len + 1 >= sizeof p->buf)
            return 1; /* over-long: judge what we have */
        ssize_t n = read(p->fd, p->buf + p->len, sizeof p->buf - 1 - p->len);
        if (n == 0) {
            errno = 0;
            return -1;
        }
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
        p->len += (size_t) n;
        p->buf[p->len] = '\0';
        char *nl = memchr(p->buf, '\n', p->len);
        if (nl != NULL) {
            *nl = '\0';
            return 1;
        }
    }
}

static void
probe_io(worker_t *w, probe_conn_t *p, short revents, int64_t now)
{
    if (!p->outbound) {
        int r = probe_read_line(p);
        if (r == 1) {
            char ans[WIRE_MAX_NAME + 8];
            int n = snprintf(ans, sizeof ans, "OK %s\n", w->cfg.name);
            ssize_t wr = send(p->fd, ans, (size_t) n, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void) wr; /* a few bytes into an empty socket buffer */
            log_flag(WORKER, "inbound self-test answered");
        }
        if (r != 0)
            probe_close(p);
        return;
    }
    if (!p->connected) {
        if (!(revents & (ZMQ_POLLOUT | ZMQ_POLLERR)))
            return;
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            soerr = errno;
        if (soerr != 0) {
            probe_result(w, p, 0, strerror(soerr), now);
            return;
        }
        char line[96];
        int n = snprintf(line, sizeof line, "%s\n", p->token);
        if (send(p->fd, line, (size_t) n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
            probe_result(w, p, 0, "could not send the token", now);
            return;
        }
        p->connected = 1;
        return;
    }
    int r = probe_read_line(p);
    if (r == 0)
        return;
    if (r < 0) {
        probe_result(w, p, 0, errno ? strerror(errno) : "connection closed without an answer", now);
        return;
    }
    char want[WIRE_MAX_NAME + 8];
    snprintf(want, sizeof want, "OK %s", p->target);
    size_t l = strlen(p->buf);
    if (l > 0 && p->buf[l - 1] == '\r')
        p->buf[l - 1] = '\0';
    if (strcmp(p->buf, want) == 0) {
        probe_result(w, p, 1, "", now);
    } else {
        char e[100];
        snprintf(e, sizeof e, "wrong answer '%.40s' (another program on the port?)", p->buf);
        probe_result(w, p, 0, e, now);
    }
}

/* Time out test connections. */
static void
probe_tick(worker_t *w, int64_t now)
{
    for (int i = 0; i < PROBE_MAX; i++) {
        probe_conn_t *p = &w->probes[i];
        if (p->fd < 0 || now < p->deadline)
            continue;
        if (p->outbound)
            probe_result(w, p, 0, p->connected ? "no answer in time" : "connection timed out", now);
        else
            probe_close(p);
    }
}

/* Poll items: the listener, then each open connection. Returns the count. */
static int
probe_pollitems(worker_t *w, zmq_pollitem_t *items, int *map)
{
    int n = 0;
    if (w->probe_fd >= 0) {
        items[n] = (zmq_pollitem_t){NULL, w->probe_fd, ZMQ_POLLIN, 0};
        map[n++] = -1;
    }
    for (int i = 0; i < PROBE_MAX; i++) {
        probe_conn_t *p = &w->probes[i];
        if (p->fd < 0)
            continue;
        short ev = p->outbound && !p->connected ? ZMQ_POLLOUT : ZMQ_POLLIN;
        items[n] = (zmq_pollitem_t){NULL, p->fd, ev, 0};
        map[n++] = i;
    }
    return n;
}

static void
probe_handle(worker_t *w, zmq_pollitem_t *items, const int *map, int n, int64_t now)
{
    for (int k = 0; k < n; k++) {
        if (items[k].revents == 0)
            continue;
        if (map[k] < 0)
            probe_accept(w, now);
        else if (w->probes[map[k]].fd == items[k].fd)
            probe_io(w, &w->probes[map[k]], items[k].revents, now);
    }
}

/* ---- receiving ---- */

static void
on_launch(worker_t *w, const Wslq__JobLaunch *l, int64_t now)
{
    if (l->spec == NULL || l->alloc == NULL || l->spec->n_argv == 0) {
        log_warn("launch without spec, alloc or argv ignored " JOB_FMT, l->job_id);
        return;
    }
    job_t *j = find_job(w, l->job_id, l->attempt);
    if (j != NULL) { /* a repeat: answer again, never run twice */
        if (j->phase == JOB_ENDED)
            j->ended_sent_ms = 0;
        else if (j->started)
            send_started(w, j);
        return;
    }
    if (l->alloc->node && *l->alloc->node && strcmp(l->alloc->node, w->cfg.name) != 0)
        log_warn("launch for another node " JOB_FMT " node=%s", l->job_id, l->alloc->node);
    w->jcfg.rendezvous = rdv_start(w, l->job_id, l->attempt); /* before any rank runs */
    j = job_launch(l, &w->jcfg);
    if (j->phase == JOB_ENDED && w->rdv != NULL)
        rdv_close_job(w->rdv, j->id, j->attempt);
    add_job(w, j);
    if (j->started)
        send_started(w, j); /* first: the submit-to-start path does nothing else before */
    wq_error_t err = {0};
    if (job_save(j, &err) < 0)
        log_warn("cannot save job state " JOB_FMT " err=\"%s\"", j->id, err.text);
    log_info("job launched " JOB_FMT " attempt=%" PRIu32 " ranks=%d started=%d", j->id, j->attempt,
             j->nranks, j->started);
    (void) now;
}

static void
on_kill(worker_t *w, const Wslq__JobKill *k, int64_t now)
{
    job_t *j = find_job(w, k->job_id, k->attempt);
    if (j == NULL) {
        log_flag(WORKER, "kill for a job not here " JOB_FMT, k->job_id);
        return;
    }
    if (j->phase == JOB_ENDED) {
        j->ended_sent_ms = 0; /* the scheduler missed the end: say it again */
        return;
    }
    job_stop(j, k->grace_ms, 0, k->reason && *k->reason ? k->reason : "cancelled", now);
    log_info("job kill " JOB_FMT " grace_ms=%" PRIu32, j->id, k->grace_ms);
}

/* Clock offset from the Register round trip: the scheduler read its clock somewhere between
 * our send and our receive, so offset = scheduler_time - (send + receive) / 2, good to
 * +- rtt/2. Only the reply to the last Register counts (a resent one has a new id). */
static void
measure_clock(worker_t *w, uint64_t request_id, int64_t sched_ms, int64_t now)
{
    if (sched_ms <= 0 || request_id != w->reg_req_id)
        return;
    int64_t recv_wall = wq_clock_wall_ms();
    int64_t rtt = now - w->reg_sent_ms;
    if (rtt < 0 || rtt > 3600000)
        return;
    w->clock_offset_ms = sched_ms - (w->reg_sent_wall + recv_wall) / 2;
    w->clock_rtt_ms = (uint32_t) rtt;
    w->clock_measured = 1;
    w->next_hb_ms = now; /* report it at once */
    log_info("clock offset against the scheduler offset_ms=%" PRId64 " rtt_ms=%" PRId64,
             w->clock_offset_ms, rtt);
}

static void
on_register_reply(worker_t *w, const Wslq__RegisterReply *r, int64_t now)
{
    w->registered = 1;
    for (size_t i = 0; i < r->n_kill_jobs; i++)
        for (size_t k = 0; k < w->njobs; k++)
            if (w->jobs[k]->id == r->kill_jobs[i] && w->jobs[k]->phase != JOB_ENDED)
                job_stop(w->jobs[k], 0, 0, "ended by the scheduler while the worker was away", now);
    for (size_t i = 0; i < r->n_log_offsets; i++) {
        job_t *j = find_job(w, r->log_offsets[i]->job_id, r->log_offsets[i]->attempt);
        if (j != NULL)
            j->sent = r->log_offsets[i]->log_offset;
    }
    for (size_t k = 0; k < w->njobs; k++)
        if (w->jobs[k]->phase == JOB_ENDED && !w->jobs[k]->acked)
            w->jobs[k]->ended_sent_ms = 0;
    log_info("registered scheduler=%s kill=%zu offsets=%zu", w->cfg.scheduler, r->n_kill_jobs,
             r->n_log_offsets);
}

static void
handle(worker_t *w, const Wslq__Envelope *env, int64_t now)
{
    switch (env->body_case) {
    case WSLQ__ENVELOPE__BODY_REG_REPLY:
        measure_clock(w, env->request_id, env->reg_reply->scheduler_time_ms, now);
        on_register_reply(w, env->reg_reply, now);
        break;
    case WSLQ__ENVELOPE__BODY_PROBE:
        probe_connect(w, env->probe, now);
        break;
    case WSLQ__ENVELOPE__BODY_REREGISTER:
        w->registered = 0;
        if (now - w->reg_sent_ms >= REREG_DEBOUNCE_MS)
            send_register(w, now);
        break;
    case WSLQ__ENVELOPE__BODY_LAUNCH:
        on_launch(w, env->launch, now);
        break;
    case WSLQ__ENVELOPE__BODY_KILL:
        on_kill(w, env->kill, now);
        break;
    case WSLQ__ENVELOPE__BODY_ENDED_ACK: {
        job_t *j = find_job(w, env->ended_ack->job_id, env->ended_ack->attempt);
        if (j != NULL && j->phase == JOB_ENDED)
            j->acked = 1;
        break;
    }
    case WSLQ__ENVELOPE__BODY_KV_REPLY:
        if (w->rdv != NULL)
            rdv_reply(w->rdv, env);
        break;
    case WSLQ__ENVELOPE__BODY_ERROR:
        if (w->rdv != NULL && rdv_reply(w->rdv, env))
            break;
        if (wq_ratelimit(&w->rl_bad, 5, 10000) >= 0)
            log_warn("scheduler error code=%" PRIu32 " text=\"%s\"", env->error->code,
                     env->error->text);
        break;
    default:
        if (wq_ratelimit(&w->rl_bad, 5, 10000) >= 0)
            log_warn("unexpected message from scheduler body=%d", (int) env->body_case);
        break;
    }
}

/* ---- housekeeping ---- */

static void
reap(worker_t *w, int64_t now)
{
    for (int n = 0; n < 100000; n++) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        for (size_t i = 0; i < w->njobs; i++)
            if (job_reap(w->jobs[i], pid, status, now))
                break;
    }
}

/* Remove spool directories of jobs no longer held whose files are older than the limit. */
static void
cleanup_spool(worker_t *w)
{
    if (w->cfg.spool_keep_days <= 0)
        return;
    char dir[PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/spool", w->cfg.state_dir);
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    time_t cutoff = time(NULL) - (time_t) w->cfg.spool_keep_days * 86400;
    struct dirent *e;
    int removed = 0;
    while ((e = readdir(d)) != NULL && removed < 1000) {
        if (e->d_name[0] == '.')
            continue;
        char sp[PATH_MAX + 300];
        snprintf(sp, sizeof sp, "%s/%s", dir, e->d_name);
        int held = 0;
        for (size_t i = 0; i < w->njobs && !held; i++)
            held = strcmp(w->jobs[i]->spool, sp) == 0;
        struct stat st;
        if (held || stat(sp, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_mtime > cutoff)
            continue;
        DIR *sd = opendir(sp);
        if (sd == NULL)
            continue;
        struct dirent *f;
        while ((f = readdir(sd)) != NULL) {
            if (strcmp(f->d_name, ".") == 0 || strcmp(f->d_name, "..") == 0)
                continue;
            char fp[PATH_MAX + 600];
            snprintf(fp, sizeof fp, "%s/%s", sp, f->d_name);
            unlink(fp);
        }
        closedir(sd);
        if (rmdir(sp) == 0)
            removed++;
    }
    closedir(d);
    if (removed)
        log_info("spool cleanup removed=%d", removed);
}

static void
adopt_jobs(worker_t *w)
{
    char dir[PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/jobs", w->cfg.state_dir);
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char p[PATH_MAX + 300];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".tmp") == 0) {
            unlink(p);
            continue;
        }
        if (n < 7 || strcmp(e->d_name + n - 6, ".state") != 0)
            continue;
        wq_error_t err = {0};
        job_t *j = job_adopt(p, &w->jcfg, &err);
        if (j == NULL) {
            log_warn("unusable job state file removed err=\"%s\"", err.text);
            unlink(p);
            continue;
        }
        int alive = 0;
        for (int i = 0; i < j->nranks; i++)
            alive += j->ranks[i].alive;
        log_info("job adopted " JOB_FMT " attempt=%" PRIu32 " ended=%d ranks_alive=%d", j->id,
                 j->attempt, j->phase == JOB_ENDED, alive);
        if (j->phase != JOB_ENDED)
            rdv_start(w, j->id, j->attempt);
        add_job(w, j);
    }
    closedir(d);
}

/* Everything timed: job polls, log/metric streaming, end reports, heartbeats. */
static void
tick(worker_t *w, int64_t now)
{
    w->backlog = 0;
    probe_tick(w, now);
    for (size_t i = 0; i < w->njobs;) {
        job_t *j = w->jobs[i];
        int ended_now = job_poll(j, now);
        if (j->have_fail && j->fail_cause && !j->fail_reported && j->nranks > 0 && w->registered)
            send_rank_failed(w, j);
        if (ended_now)
            sysinfo_cleanup_nccl_shm();
        if (ended_now && w->rdv != NULL)
            rdv_close_job(w->rdv, j->id, j->attempt);
        if (w->registered) {
            send_logs(w, j);
            send_metrics(w, j);
        }
        if (j->phase == JOB_ENDED && !j->acked &&
            (ended_now || j->ended_sent_ms == 0 || now - j->ended_sent_ms >= ENDED_RESEND_MS))
            send_ended(w, j, now);
        if (j->acked && j->sent >= j->log_bytes) {
            job_forget(j);
            job_destroy(&w->jobs[i]);
            w->jobs[i] = w->jobs[--w->njobs];
            continue;
        }
        i++;
    }
    if (now >= w->next_hb_ms) {
        send_heartbeat(w);
        w->next_hb_ms = now + w->cfg.heartbeat_ms;
    }
    if (!w->registered && now - w->reg_sent_ms >= REGISTER_RETRY_MS)
        send_register(w, now);
    if (now >= w->next_cleanup_ms) {
        cleanup_spool(w);
        w->next_cleanup_ms = now + CLEANUP_MS;
    }
}

static int
poll_timeout(const worker_t *w, int64_t now)
{
    int64_t next = w->next_hb_ms;
    if (!w->registered && w->reg_sent_ms + REGISTER_RETRY_MS < next)
        next = w->reg_sent_ms + REGISTER_RETRY_MS;
    int active = w->backlog;
    for (int i = 0; i < PROBE_MAX; i++)
        if (w->probes[i].fd >= 0 && w->probes[i].deadline < next)
            next = w->probes[i].deadline;
    for (size_t i = 0; i < w->njobs; i++) {
        const job_t *j = w->jobs[i];
        int64_t d = job_next_deadline(j);
        if (d > 0 && d < next)
            next = d;
        if (j->phase != JOB_ENDED)
            active = 1;
        else if (!j->acked && j->ended_sent_ms + ENDED_RESEND_MS < next)
            next = j->ended_sent_ms + ENDED_RESEND_MS;
        else if (j->acked)
            active = 1; /* logs still going out */
    }
    if (active && now + TAIL_MS < next)
        next = now + TAIL_MS;
    int64_t t = next - now;
    return t < 0 ? 0 : t > 60000 ? 60000 : (int) t;
}

/* ---- lifecycle ---- */

worker_t *
worker_new(const wcfg_t *cfg, wq_error_t *err)
{
    char p[PATH_MAX + 8];
    if (mkdir_p(cfg->state_dir, err) < 0)
        return NULL;
    snprintf(p, sizeof p, "%s/jobs", cfg->state_dir);
    if (mkdir_p(p, err) < 0)
        return NULL;
    snprintf(p, sizeof p, "%s/spool", cfg->state_dir);
    if (mkdir_p(p, err) < 0)
        return NULL;

    worker_t *w = wq_calloc(1, sizeof *w);
    w->cfg = *cfg;
    w->probe_fd = -1;
    for (int i = 0; i < PROBE_MAX; i++)
        w->probes[i].fd = -1;
    sysinfo_open(&w->si, cfg->name, cfg->gpus, cfg->iface);
    if (cfg->cpus > 0)
        w->si.cpus = cfg->cpus;
    if (cfg->mem_mb > 0)
        w->si.mem_mb = cfg->mem_mb;
    if (cfg->ip[0])
        snprintf(w->si.ip, sizeof w->si.ip, "%s", cfg->ip);
    if (w->si.gpu_note[0] && cfg->gpus < 0)
        log_info("no GPU discovered reason=\"%s\"", w->si.gpu_note);

    extern char **environ;
    w->jcfg.state_dir = w->cfg.state_dir;
    w->jcfg.env.node = w->cfg.name;
    w->jcfg.env.iface = w->si.iface;
    w->jcfg.env.ip = w->si.ip;
    w->jcfg.env.nccl_env = w->si.nccl_env;
    w->jcfg.base_env = environ;
    w->jcfg.grace_ms = cfg->kill_grace_ms;
    if (cfg->rendezvous)
        w->rdv = rdv_new(rdv_send, w);

    adopt_jobs(w);
    probe_listen(w);

    w->ctx = zmq_ctx_new();
    w->sock = zmq_socket(w->ctx, ZMQ_DEALER);
    if (w->sock == NULL) {
        wq_fail_errno(err, "cannot create socket");
        goto error;
    }
    char ident[WIRE_MAX_NAME + 3];
    snprintf(ident, sizeof ident, "w:%s", cfg->name);
    int ivl = 100, ivl_max = 5000, linger = 1000, hb_ivl = 1000, hb_to = 5000;
    zmq_setsockopt(w->sock, ZMQ_ROUTING_ID, ident, strlen(ident));
    zmq_setsockopt(w->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(w->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger);
    /* ZMTP heartbeats drop a dead TCP connection (a PC that slept) so ZeroMQ reconnects */
    zmq_setsockopt(w->sock, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof hb_ivl);
    zmq_setsockopt(w->sock, ZMQ_HEARTBEAT_TIMEOUT, &hb_to, sizeof hb_to);
    if (zmq_connect(w->sock, cfg->scheduler) < 0) {
        wq_fail(err, WQ_EINVAL, "cannot connect to %s: %s", cfg->scheduler,
                zmq_strerror(zmq_errno()));
        goto error;
    }
    return w;
error:
    worker_destroy(&w);
    return NULL;
}

int
worker_run(worker_t *w)
{
    if (sig_pipe[0] < 0) {
        if (pipe(sig_pipe) < 0)
            return -1;
        for (int i = 0; i < 2; i++) {
            fcntl(sig_pipe[i], F_SETFD, FD_CLOEXEC);
            fcntl(sig_pipe[i], F_SETFL, O_NONBLOCK);
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);

    int64_t now = wq_clock_mono_ms();
    log_info("worker started name=%s scheduler=%s ip=%s iface=%s cpus=%d mem_mb=%" PRId64
             " gpus=%d adopted=%zu",
             w->cfg.name, w->cfg.scheduler, w->si.ip, w->si.iface, w->si.cpus, w->si.mem_mb,
             w->si.ngpus, w->njobs);
    send_register(w, now);
    w->next_hb_ms = now + w->cfg.heartbeat_ms;
    int rc = 0;
    while (!stop_flag) {
        now = wq_clock_mono_ms();
        zmq_pollitem_t items[2 + 1 + PROBE_MAX + RDV_ITEMS] = {
            {w->sock, 0, ZMQ_POLLIN, 0},
            {NULL, sig_pipe[0], ZMQ_POLLIN, 0},
        };
        int pmap[1 + PROBE_MAX];
        int npr = probe_pollitems(w, items + 2, pmap);
        zmq_pollitem_t *rdv_items = items + 2 + npr;
        size_t nrdv = w->rdv ? rdv_pollitems(w->rdv, rdv_items, RDV_ITEMS) : 0;
        if (zmq_poll(items, 2 + npr + (int) nrdv, poll_timeout(w, now)) < 0 &&
            zmq_errno() != EINTR) {
            log_err("poll failed err=\"%s\"", zmq_strerror(zmq_errno()));
            rc = -1;
            break;
        }
        char drain[64];
        while (read(sig_pipe[0], drain, sizeof drain) > 0)
            ;
        now = wq_clock_mono_ms();
        reap(w, now);
        probe_handle(w, items + 2, pmap, npr, now);
        if (nrdv > 0)
            rdv_handle(w->rdv, rdv_items, nrdv);
        for (int n = 0; n < RECV_BURST; n++) {
            wq_error_t err = {0};
            Wslq__Envelope *env = wire_recv(w->sock, NULL, NULL, ZMQ_DONTWAIT, &err);
            if (env == NULL) {
                if (err.code == WQ_EPROTO) {
                    if (wq_ratelimit(&w->rl_bad, 5, 10000) >= 0)
                        log_warn("bad frame from scheduler err=\"%s\"", err.text);
                    continue;
                }
                break;
            }
            handle(w, env, now);
            wire_free(&env);
        }
        tick(w, wq_clock_mono_ms());
    }
    log_info("worker stopping running_jobs_left=%zu", w->njobs);
    return rc;
}

void
worker_destroy(worker_t **wp)
{
    if (wp == NULL || *wp == NULL)
        return;
    worker_t *w = *wp;
    for (size_t i = 0; i < w->njobs; i++)
        job_destroy(&w->jobs[i]);
    free(w->jobs);
    rdv_destroy(&w->rdv);
    for (int i = 0; i < PROBE_MAX; i++)
        probe_close(&w->probes[i]);
    if (w->probe_fd >= 0)
        close(w->probe_fd);
    if (w->sock != NULL)
        zmq_close(w->sock);
    if (w->ctx != NULL)
        zmq_ctx_term(w->ctx);
    sysinfo_close(&w->si);
    free(w);
    *wp = NULL;
}
