/* A fleet of fake workers against a real scheduler, for the "at a lab's scale" figures:
 *   wslq-bench-fleet [--no-http | --scrape S] SCHEDULER_BIN NODES PENDING [SECONDS]
 * starts SCHEDULER_BIN (--insecure yes, --sync full, the dashboard on a free loopback port
 * unless --no-http, default --torpid 3s and --lost 10s) in a fresh state directory, opens
 * NODES DEALER connections in this one process and registers each as a node (4 GPUs of
 * 24 GiB, 16 CPUs, 64 GiB), then heartbeats each once a second like a worker (fresh GPU metrics,
 * the disk.spool check, the clock offset), spread evenly over the second with a little jitter.
 *
 * With PENDING > 0 the fleet is first filled: one job per node takes its 4 GPUs and 16 CPUs
 * (each fake node answers its JobLaunch with JobStarted and then reports it running), and
 * then PENDING 1-GPU jobs are submitted pipelined; they wait for resources (nothing launches
 * while they do). With PENDING = 0 the nodes are idle and the queue empty.
 *
 * After a 5 s settle it takes the scheduler's CPU (utime + stime of all its threads, from
 * /proc/PID/stat) over SECONDS (default 30) and its RSS (with --scrape S, GET /metrics every
 * S seconds meanwhile, as Prometheus would; else nobody reads the dashboard), then stops the
 * heartbeats of one node and asks `wslq nodes` (NodesRequest) every 50 ms until that node is lost:
 * the time from its last heartbeat. Every wait is bounded; the scheduler is stopped at the end. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "proto/wire.h"

#define NGPUS        4
#define SETTLE_S     5
#define LOST_MS      10000 /* the scheduler's default --lost */
#define WINDOW       2000  /* submits in flight at once */
#define HB_IVL_MS    1000
#define JITTER_MS    50
#define REG_RETRY_MS 5000 /* a Register unanswered this long is sent again */

typedef struct {
    void *sock;
    char name[32];
    int64_t next_hb; /* monotonic ms of the next heartbeat */
    int64_t last_hb; /* when the last one was sent */
    int registered;
    int64_t reg_sent; /* when its last Register left (one lost in a connect storm is resent) */
    int silent;       /* heartbeats stopped (the loss measurement) */
    uint64_t job_id;  /* the filler job it runs; 0 = none */
    uint32_t attempt;
    unsigned hbs;
} fnode_t;

static pid_t sched_pid;
static char state_dir[] = "/tmp/wslq-fleet-XXXXXX";
static fnode_t *fleet;
static int n_fleet;
static unsigned launches, others;

static int64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int keep_dir; /* a failed run keeps the scheduler's log */

static void
cleanup(void)
{
    if (sched_pid > 0) {
        kill(sched_pid, SIGTERM);
        for (int i = 0; i < 100 && waitpid(sched_pid, NULL, WNOHANG) == 0; i++)
            usleep(50000);
        kill(sched_pid, SIGKILL);
        waitpid(sched_pid, NULL, 0);
        sched_pid = 0;
    }
    if (keep_dir)
        return;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", state_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", state_dir);
}

/* Stopped by a signal (SIGTERM from timeout, ^C): the scheduler goes too. */
static void
on_signal(int sig)
{
    if (sched_pid > 0)
        kill(sched_pid, SIGKILL);
    _exit(128 + sig);
}

static void
die(const char *what)
{
    fprintf(stderr, "wslq-bench-fleet: %s (the scheduler's log: %s/scheduler.log)\n", what,
            state_dir);
    keep_dir = 1;
    exit(1);
}

static int
free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *) &a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *) &a, &len) < 0)
        die("cannot find a free port");
    close(fd);
    return ntohs(a.sin_port);
}

/* utime + stime of every thread, in clock ticks; RSS in KiB */
static unsigned long long
sched_ticks(void)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int) sched_pid);
    FILE *f = fopen(path, "r");
    if (f == NULL || fgets(buf, sizeof buf, f) == NULL)
        die("cannot read the scheduler's /proc/PID/stat");
    fclose(f);
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    /* after ") ": state(3) ... utime is field 14, stime 15 */
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        die("cannot parse /proc/PID/stat");
    return ut + st;
}

static long
sched_rss_kib(void)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int) sched_pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return kib;
}

static void
send_env(void *sock, Wslq__Envelope *env)
{
    wq_error_t err = {0};
    if (wire_send(sock, NULL, 0, env, 0, &err) < 0)
        die(err.text);
}

static Wslq__Envelope *
recv_env(void *sock, long timeout_ms)
{
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, timeout_ms) <= 0)
        return NULL;
    wq_error_t err = {0};
    Wslq__Envelope *r = wire_recv(sock, NULL, NULL, ZMQ_DONTWAIT, &err);
    if (r != NULL && r->body_case == WSLQ__ENVELOPE__BODY_ERROR)
        die(r->error->text);
    return r;
}

static void
gpu_init(Wslq__GpuInfo *g, Wslq__GpuInfo **gp, unsigned node, int metrics)
{
    static char uuids[NGPUS][48];
    for (unsigned i = 0; i < NGPUS; i++) {
        wslq__gpu_info__init(&g[i]);
        snprintf(uuids[i], sizeof uuids[i], "GPU-%08x-0000-0000-0000-%012x", node, i);
        g[i].index = i;
        g[i].uuid = uuids[i];
        g[i].name = "NVIDIA GeForce RTX 4090";
        g[i].mem_total_mb = 24564;
        g[i].cc_major = 8;
        g[i].cc_minor = 9;
        g[i].mem_used_mb = metrics ? 300 + (unsigned) rand() % 100 : 0;
        g[i].temp_c = metrics ? 35 + rand() % 10 : -1;
        g[i].util_pct = metrics ? rand() % 3 : -1;
        g[i].power_w = metrics ? 20 + rand() % 10 : -1;
        g[i].mem_idle_used_mb = metrics ? 300 : 0;
        gp[i] = &g[i];
    }
}

static void
send_register(fnode_t *n, unsigned idx)
{
    n->reg_sent = mono_ms();
    Wslq__GpuInfo g[NGPUS], *gp[NGPUS];
    gpu_init(g, gp, idx, 0);
    Wslq__Register r = WSLQ__REGISTER__INIT;
    r.name = n->name;
    r.hostname = n->name;
    r.ip = "127.0.0.1";
    r.cpus = 16;
    r.mem_mb = 65536;
    r.gpus = gp;
    r.n_gpus = NGPUS;
    r.version = "fleet-bench";
    r.heartbeat_ms = HB_IVL_MS;
    r.next_heartbeat_ms = HB_IVL_MS;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = idx + 1;
    env.body_case = WSLQ__ENVELOPE__BODY_REG;
    env.reg = &r;
    send_env(n->sock, &env);
}

static void
send_heartbeat(fnode_t *n, unsigned idx)
{
    Wslq__GpuInfo g[NGPUS], *gp[NGPUS];
    gpu_init(g, gp, idx, 1);
    Wslq__Heartbeat hb = WSLQ__HEARTBEAT__INIT;
    hb.gpus = gp;
    hb.n_gpus = NGPUS;
    hb.running = n->job_id != 0;
    hb.clock_measured = 1;
    hb.clock_offset_ms = 3;
    hb.clock_rtt_ms = 1;
    Wslq__NodeCheck disk = WSLQ__NODE_CHECK__INIT, *dp = &disk;
    disk.id = "disk.spool";
    disk.verdict = WSLQ__CHECK_VERDICT__CHECK_PASS;
    disk.summary = "spool /var/lib/wslq/worker: 412.0 GiB free";
    disk.fix = "";
    hb.checks = &dp;
    hb.n_checks = 1;
    hb.owner_why = "";
    hb.owner_user = "";
    hb.next_heartbeat_ms = HB_IVL_MS;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    send_env(n->sock, &env);
    n->hbs++;
}

/* What the scheduler sent one node: answered as a worker would (a launch: started). */
static void
node_input(fnode_t *n, unsigned idx)
{
    for (;;) {
        wq_error_t err = {0};
        Wslq__Envelope *e = wire_recv(n->sock, NULL, NULL, ZMQ_DONTWAIT, &err);
        if (e == NULL)
            return;
        if (e->body_case == WSLQ__ENVELOPE__BODY_REG_REPLY) {
            n->registered = 1;
        } else if (e->body_case == WSLQ__ENVELOPE__BODY_LAUNCH) {
            launches++;
            n->job_id = e->launch->job_id;
            n->attempt = e->launch->attempt;
            Wslq__JobStarted s = WSLQ__JOB_STARTED__INIT;
            s.job_id = n->job_id;
            s.attempt = n->attempt;
            Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
            env.body_case = WSLQ__ENVELOPE__BODY_STARTED;
            env.started = &s;
            send_env(n->sock, &env);
        } else if (e->body_case == WSLQ__ENVELOPE__BODY_REREGISTER) {
            if (!n->silent)
                send_register(n, idx);
        } else if (e->body_case == WSLQ__ENVELOPE__BODY_ERROR) {
            fprintf(stderr, "%s: %s\n", n->name, e->error->text);
            others++;
        } else {
            others++;
        }
        wire_free(&e);
    }
}

/* One round of the fleet: heartbeats that are due, then whatever came in. */
static void
fleet_step(long max_wait_ms)
{
    int64_t now = mono_ms(), next = now + max_wait_ms;
    for (int i = 0; i < n_fleet; i++) {
        fnode_t *n = &fleet[i];
        if (!n->registered && !n->silent && now - n->reg_sent >= REG_RETRY_MS)
            send_register(n, (unsigned) i); /* as a worker does when no answer comes */
        if (!n->registered || n->silent)
            continue;
        if (now >= n->next_hb) {
            send_heartbeat(n, (unsigned) i);
            n->last_hb = now;
            n->next_hb += HB_IVL_MS - JITTER_MS / 2 + rand() % JITTER_MS;
            if (n->next_hb <= now)
                n->next_hb = now + HB_IVL_MS;
        }
        if (n->next_hb < next)
            next = n->next_hb;
    }
    static zmq_pollitem_t *items;
    if (items == NULL)
        items = calloc((size_t) (n_fleet > 0 ? n_fleet : 1), sizeof *items);
    for (int i = 0; i < n_fleet; i++) {
        items[i].socket = fleet[i].sock;
        items[i].events = ZMQ_POLLIN;
        items[i].revents = 0;
    }
    long wait = next > now ? (long) (next - now) : 0;
    if (zmq_poll(items, n_fleet, wait) > 0)
        for (int i = 0; i < n_fleet; i++)
            if (items[i].revents & ZMQ_POLLIN)
                node_input(&fleet[i], (unsigned) i);
}

static void
fleet_run_for(long ms)
{
    int64_t end = mono_ms() + ms;
    while (mono_ms() < end)
        fleet_step(end - mono_ms());
}

/* GET /metrics from the dashboard on 127.0.0.1:port, as a Prometheus scrape: the body's size,
 * or exit when it does not answer 200 within 10 s. */
static size_t
scrape(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("cannot make a socket for GET /metrics");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    static const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0 ||
        write(fd, req, sizeof req - 1) != (ssize_t) (sizeof req - 1))
        die("cannot send GET /metrics to the dashboard");
    char buf[65536], head[16] = "";
    size_t total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        if (total == 0)
            snprintf(head, sizeof head, "%.*s", (int) (n < 12 ? n : 12), buf);
        total += (size_t) n;
    }
    close(fd);
    if (strncmp(head, "HTTP/1.0 200", 12) != 0 && strncmp(head, "HTTP/1.1 200", 12) != 0)
        die("GET /metrics did not answer 200");
    return total;
}

static void
send_submit(void *sock, uint64_t rid, unsigned gpus, unsigned cpus)
{
    static char *argv[] = {"/bin/true"};
    Wslq__JobSpec spec = WSLQ__JOB_SPEC__INIT;
    spec.argv = argv;
    spec.n_argv = 1;
    spec.nodes = 1;
    spec.gpus_per_node = gpus;
    spec.cpus_per_node = cpus;
    spec.user = "bench";
    spec.name = "fleet";
    Wslq__SubmitRequest req = WSLQ__SUBMIT_REQUEST__INIT;
    req.spec = &spec;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = rid;
    env.body_case = WSLQ__ENVELOPE__BODY_SUBMIT;
    env.submit = &req;
    send_env(sock, &env);
}

/* N jobs pipelined (at most WINDOW unanswered), the fleet kept heartbeating meanwhile. */
static void
submit_many(void *cli, long n, unsigned gpus, unsigned cpus)
{
    long sent = 0, got = 0;
    int64_t deadline = mono_ms() + 600000;
    while (got < n) {
        while (sent < n && sent - got < WINDOW)
            send_submit(cli, (uint64_t) ++sent, gpus, cpus);
        Wslq__Envelope *r;
        while ((r = recv_env(cli, 0)) != NULL) {
            wire_free(&r);
            got++;
        }
        fleet_step(1);
        if (mono_ms() > deadline)
            die("submits not answered within 600 s");
    }
}

/* The node's state as `wslq nodes NAME` shows it; the caller frees it. */
static char *
node_state(void *cli, const char *name)
{
    static uint64_t rid = 1u << 30;
    Wslq__NodesRequest q = WSLQ__NODES_REQUEST__INIT;
    q.name = (char *) name;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = ++rid;
    env.body_case = WSLQ__ENVELOPE__BODY_NODES;
    env.nodes = &q;
    send_env(cli, &env);
    int64_t deadline = mono_ms() + 10000;
    while (mono_ms() < deadline) {
        Wslq__Envelope *r = recv_env(cli, 0);
        if (r == NULL) {
            fleet_step(5);
            continue;
        }
        char *s = NULL;
        if (r->request_id == rid && r->body_case == WSLQ__ENVELOPE__BODY_NODES_REPLY &&
            r->nodes_reply->n_nodes == 1)
            s = strdup(r->nodes_reply->nodes[0]->state);
        int mine = r->request_id == rid;
        wire_free(&r);
        if (mine)
            return s ? s : strdup("?");
    }
    die("wslq nodes not answered within 10 s");
    return NULL;
}

int
main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int no_http = argc > 1 && strcmp(argv[1], "--no-http") == 0;
    argc -= no_http;
    argv += no_http;
    int scrape_s = 0;
    if (argc > 2 && strcmp(argv[1], "--scrape") == 0) {
        scrape_s = atoi(argv[2]);
        argc -= 2;
        argv += 2;
    }
    if (argc < 4 || argc > 5 || scrape_s < 0 || (scrape_s > 0 && no_http)) {
        fprintf(stderr, "usage: wslq-bench-fleet [--no-http | --scrape S] SCHEDULER_BIN NODES "
                        "PENDING [SECONDS]\n");
        return 2;
    }
    const char *bin = argv[1];
    keep_dir = getenv("WSLQ_BENCH_KEEP") != NULL; /* its log, e.g. with WSLQ_DEBUG=http */
    n_fleet = atoi(argv[2]);
    long pending = atol(argv[3]);
    int secs = argc == 5 ? atoi(argv[4]) : 30;
    if (n_fleet < 2 || n_fleet > 5000 || pending < 0 || secs < 1) {
        fprintf(stderr, "wslq-bench-fleet: NODES 2..5000, PENDING >= 0, SECONDS >= 1\n");
        return 2;
    }
    srand(1);
    /* a descriptor or two per connection here and in the scheduler (which inherits it) */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (mkdtemp(state_dir) == NULL)
        die("cannot make a state directory");
    int port = free_port(), http_port = free_port();
    char listen[64], http[64], endpoint[64], logpath[128], sdir[128];
    snprintf(listen, sizeof listen, "tcp://127.0.0.1:%d", port);
    if (no_http)
        snprintf(http, sizeof http, "off");
    else
        snprintf(http, sizeof http, "127.0.0.1:%d", http_port);
    snprintf(sdir, sizeof sdir, "%s/sched", state_dir);
    snprintf(logpath, sizeof logpath, "%s/scheduler.log", state_dir);
    sched_pid = fork();
    if (sched_pid == 0) {
        FILE *lf = freopen(logpath, "w", stderr);
        (void) lf;
        execl(bin, bin, "--listen", listen, "--state-dir", sdir, "--insecure", "yes", "--http",
              http, (char *) NULL);
        _exit(127);
    }
    atexit(cleanup);
    signal(SIGPIPE, SIG_IGN); /* a closed stdout (| head) must not skip the cleanup */
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, n_fleet + 64);
    zmq_ctx_set(ctx, ZMQ_IO_THREADS, 1);
    void *cli = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(cli, ZMQ_LINGER, &zero, sizeof zero);
    zmq_connect(cli, listen);
    /* up when it answers */
    int64_t t_up = mono_ms() + 10000;
    for (;;) {
        Wslq__NodesRequest q = WSLQ__NODES_REQUEST__INIT;
        q.name = "";
        Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
        env.request_id = 1;
        env.body_case = WSLQ__ENVELOPE__BODY_NODES;
        env.nodes = &q;
        send_env(cli, &env);
        Wslq__Envelope *r = recv_env(cli, 200);
        if (r != NULL) {
            wire_free(&r);
            break;
        }
        if (mono_ms() > t_up || waitpid(sched_pid, NULL, WNOHANG) != 0)
            die("the scheduler did not answer within 10 s (see its log)");
    }

    /* The fleet: one connection each, from 127.0.0.2.. (the scheduler takes at most 256
     * connections from one address). */
    fleet = calloc((size_t) (n_fleet > 0 ? n_fleet : 1), sizeof *fleet);
    int64_t t0 = mono_ms();
    for (int i = 0; i < n_fleet; i++) {
        fnode_t *n = &fleet[i];
        snprintf(n->name, sizeof n->name, "fleet%04d", i);
        n->sock = zmq_socket(ctx, ZMQ_DEALER);
        if (n->sock == NULL)
            die("cannot make a socket (descriptor limit?)");
        zmq_setsockopt(n->sock, ZMQ_LINGER, &zero, sizeof zero);
        snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.%d:0;127.0.0.1:%d", 2 + i / 200, port);
        if (zmq_connect(n->sock, endpoint) < 0)
            die("cannot connect a node");
        send_register(n, (unsigned) i);
        n->next_hb = t0 + HB_IVL_MS + (int64_t) i * HB_IVL_MS / n_fleet;
    }
    int64_t t_reg = mono_ms() + 60000;
    for (int done = 0; !done;) {
        fleet_step(10);
        done = 1;
        for (int i = 0; i < n_fleet; i++)
            done &= fleet[i].registered;
        if (mono_ms() > t_reg) {
            int n = 0;
            for (int i = 0; i < n_fleet; i++)
                n += fleet[i].registered;
            fprintf(stderr, "wslq-bench-fleet: %d of %d nodes registered\n", n, n_fleet);
            die("the fleet did not register within 60 s");
        }
    }
    printf("fleet: %d nodes registered in %.2f s (4 GPUs, 16 CPUs, 64 GiB each; 1 s heartbeats)\n",
           n_fleet, (double) (mono_ms() - t0) / 1000);

    if (pending > 0) {
        /* fill every node, then the backlog that waits for resources */
        submit_many(cli, n_fleet, NGPUS, 16);
        int64_t t_fill = mono_ms() + 60000;
        while ((int) launches < n_fleet && mono_ms() < t_fill)
            fleet_step(10);
        if ((int) launches < n_fleet)
            die("the fleet was not filled within 60 s");
        int64_t ts = mono_ms();
        submit_many(cli, pending, 1, 4);
        printf("fleet full (%u jobs started); %ld 1-GPU jobs submitted pipelined in %.2f s\n",
               launches, pending, (double) (mono_ms() - ts) / 1000);
    }
    fleet_run_for(SETTLE_S * 1000);

    unsigned launches0 = launches, hbs0 = 0, hbs1 = 0;
    for (int i = 0; i < n_fleet; i++)
        hbs0 += fleet[i].hbs;
    long hz = sysconf(_SC_CLK_TCK);
    unsigned long long c0 = sched_ticks();
    int64_t m0 = mono_ms();
    unsigned scrapes = 0;
    size_t scraped = 0;
    if (scrape_s > 0) {
        for (int64_t next = m0, end = m0 + (int64_t) secs * 1000; mono_ms() < end;) {
            if (mono_ms() >= next) {
                scraped += scrape(http_port);
                scrapes++;
                next += (int64_t) scrape_s * 1000;
            }
            fleet_run_for((next < end ? next : end) - mono_ms());
        }
    } else {
        fleet_run_for((long) secs * 1000);
    }
    unsigned long long c1 = sched_ticks();
    int64_t m1 = mono_ms();
    for (int i = 0; i < n_fleet; i++)
        hbs1 += fleet[i].hbs;
    long rss = sched_rss_kib();
    double pct = (double) (c1 - c0) / (double) hz / ((double) (m1 - m0) / 1000) * 100;
    double target = pending > 0 ? 3.0 : 5.0;
    printf("scheduler CPU over %.1f s: %.2f %% of a core (%.3f ms per heartbeat, %u "
           "heartbeats) target <= %.0f %%: %s\n",
           (double) (m1 - m0) / 1000, pct,
           (double) (c1 - c0) * 1000 / (double) hz / (double) (hbs1 - hbs0), hbs1 - hbs0, target,
           pct <= target ? "met" : "NOT met");
    printf("scheduler RSS: %.1f MiB\n", (double) rss / 1024);
    if (scrapes > 0)
        printf("dashboard: GET /metrics every %d s, %u times in the window (%zu bytes each)\n",
               scrape_s, scrapes, scraped / scrapes);
    else
        printf("dashboard: %s\n", no_http ? "off" : "on, nobody reading it");
    if (launches != launches0)
        printf("note: %u jobs launched during the window\n", launches - launches0);

    /* node loss: the last node falls silent */
    fnode_t *victim = &fleet[n_fleet - 1];
    while (mono_ms() < victim->next_hb - 5)
        fleet_step(victim->next_hb - 5 - mono_ms());
    victim->silent = 1;
    int64_t last = victim->last_hb;
    double lost_s = -1;
    int64_t t_lost = mono_ms() + LOST_MS + 20000;
    while (mono_ms() < t_lost) {
        char *s = node_state(cli, victim->name);
        int lost = strcmp(s, "lost") == 0;
        free(s);
        if (lost) {
            lost_s = (double) (mono_ms() - last) / 1000;
            break;
        }
        fleet_run_for(50);
    }
    /* the scheduler's own view: how long the node had been silent when it marked it lost */
    long silent_ms = -1;
    FILE *lf = fopen(logpath, "r");
    char line[1024];
    while (lf != NULL && fgets(line, sizeof line, lf) != NULL) {
        char *p = strstr(line, "node lost name=");
        if (p != NULL && strstr(p, victim->name) != NULL && (p = strstr(p, "silent_ms=")) != NULL)
            silent_ms = atol(p + 10);
    }
    if (lf != NULL)
        fclose(lf);
    if (silent_ms < 0)
        printf("node loss: %s NOT marked lost within %d s of its last heartbeat\n", victim->name,
               LOST_MS / 1000 + 20);
    else
        printf("node loss: %s marked lost after %.2f s of silence (the scheduler's log; --lost "
               "10s, target <= 10 s + the check, here 1 s): %s; `wslq nodes` showed it %.2f s "
               "after its last heartbeat was sent\n",
               victim->name, (double) silent_ms / 1000,
               silent_ms <= LOST_MS + 1000 ? "met" : "NOT met", lost_s);
    if (others)
        printf("note: %u other messages from the scheduler to the fleet\n", others);
    for (int i = 0; i < n_fleet; i++)
        zmq_close(fleet[i].sock);
    zmq_close(cli);
    zmq_ctx_term(ctx);
    cleanup();
    return 0;
}
