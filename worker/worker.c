/* The worker's lifecycle and event loop, and its side of the protocol's registration
 * (proto/README.md, "Worker conversation"). Single thread; no blocking call except zmq_poll.
 * What the loop drives lives beside it: jobs in streams.c, the inbound self-test in
 * selftest.c, every outgoing message in outbox.c (worker_int.h has the map). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <zmq.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/mem.h"
#include "worker/worker_int.h"

#define TAIL_MS           20      /* output/metrics tailing interval while jobs run */
#define REGISTER_RETRY_MS 5000    /* Register re-sent while no RegisterReply came */
#define REREG_DEBOUNCE_MS 200     /* a burst of Reregister (stale queued frames) -> one Register */
#define RECV_BURST        1000    /* messages handled per loop turn */
#define RDV_ITEMS         1024    /* rendezvous poll items per loop turn */
#define CLEANUP_MS        3600000 /* spool cleanup interval */

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

/* ---- receiving ---- */

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
    w->idle_max_ms = r->idle_heartbeat_max_ms;
    streams_register_reply(w, r, now);
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
        selftest_connect(w, env->probe, now);
        break;
    case WSLQ__ENVELOPE__BODY_REREGISTER:
        w->registered = 0;
        if (now - w->reg_sent_ms >= REREG_DEBOUNCE_MS)
            outbox_register(w, now);
        break;
    case WSLQ__ENVELOPE__BODY_LAUNCH:
        streams_launch(w, env->launch);
        break;
    case WSLQ__ENVELOPE__BODY_KILL:
        streams_kill(w, env->kill, now);
        break;
    case WSLQ__ENVELOPE__BODY_SUSPEND:
        streams_suspend(w, env->suspend, now);
        break;
    case WSLQ__ENVELOPE__BODY_ENDED_ACK:
        streams_ended_ack(w, env->ended_ack);
        break;
    case WSLQ__ENVELOPE__BODY_SNAP_DATA:
        workdir_snap_data(w, env->snap_data, now);
        break;
    case WSLQ__ENVELOPE__BODY_OUTPUT_PUT_REPLY:
        workdir_output_reply(w, env->output_put_reply);
        break;
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

/* ---- the loop ---- */

/* Everything timed: self-test deadlines, job polls, log/metric streaming, end reports,
 * heartbeats, Register retries, spool cleanup. */
static void
tick(worker_t *w, int64_t now)
{
    w->backlog = 0;
    selftest_tick(w, now);
    streams_tick(w, now);
    workdir_tick(w, now);
    /* a job arrived while the scheduler expects the idle interval: say so at once */
    if (w->hb_idle && w->njobs > 0)
        w->next_hb_ms = now;
    if (now >= w->next_hb_ms)
        w->next_hb_ms = now + outbox_heartbeat(w);
    if (!w->registered && now - w->reg_sent_ms >= REGISTER_RETRY_MS)
        outbox_register(w, now);
    if (now >= w->next_cleanup_ms) {
        streams_cleanup_spool(w);
        /* job cgroups a killed worker left behind, empty now */
        const char **held = wq_calloc(w->njobs + 1, sizeof *held);
        for (size_t i = 0; i < w->njobs; i++)
            held[i] = w->jobs[i]->cg_path;
        int swept = isol_cg_sweep(&w->isol, held, w->njobs);
        free(held);
        if (swept > 0)
            log_info("removed job cgroups no job holds count=%d", swept);
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
    next = selftest_next_deadline(w, next);
    next = streams_next_deadline(w, next, &active);
    if (active && now + TAIL_MS < next)
        next = now + TAIL_MS;
    int64_t t = next - now;
    return t < 0 ? 0 : t > 60000 ? 60000 : (int) t;
}

/* ---- lifecycle ---- */

static int
no_space(void *arg)
{
    worker_t *w = arg;
    return space_release_reserve(&w->space);
}

/* wslq-rank, installed beside this program: every rank runs under it so its exit status
 * survives a restart of this worker (worker/rank.c). Without it ranks still run, and a
 * restart loses the status of the jobs running then. */
static void
find_rank_exe(worker_t *w)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            snprintf(w->rank_exe, sizeof w->rank_exe, "%.*s/wslq-rank", PATH_MAX - 16, self);
        }
    }
    if (w->rank_exe[0] && access(w->rank_exe, X_OK) == 0) {
        w->jcfg.rank_exe = w->rank_exe;
        keeper_init(&w->keeper, w->cfg.state_dir, w->rank_exe);
        if (getenv("WSLQ_NO_RANK_KEEPER") == NULL)
            w->jcfg.keeper = &w->keeper;
        return;
    }
    log_warn("wslq-rank not found beside wslq-worker path=%s: a job running while this worker "
             "restarts will end with its exit status lost",
             w->rank_exe[0] ? w->rank_exe : "(unknown)");
    w->rank_exe[0] = '\0';
}

worker_t *
worker_new(const wcfg_t *cfg, const keys_creds_t *creds, wq_error_t *err)
{
    /* Whose account jobs run as, first: a worker that could only run them as root, or as an
     * account that is missing, does not start (runas.h). */
    runas_t runas;
    if (runas_init(&runas, cfg->run_as, cfg->service_user, err) < 0 ||
        runas_state_dirs(&runas, cfg->state_dir, err) < 0)
        return NULL;

    worker_t *w = wq_calloc(1, sizeof *w);
    w->keeper.fd = -1;
    if (isol_init(&w->isol, cfg->cpu_bind, cfg->cgroup, cfg->cgroup_root, cfg->mem_watch, err) <
        0) {
        free(w);
        return NULL;
    }
    log_info("job isolation cpu_bind=%s cpus=%d %s",
             cfg->cpu_bind == ISOL_BIND_CORES ? "cores" : "none", w->isol.n_avail, w->isol.why);
    w->cfg = *cfg;
    w->runas = runas;
    log_info("jobs run as run_as=%s account=%s", runas_mode_name(runas.mode),
             runas.mode == RUNAS_OWNER                      ? "(each job's owner)"
             : runas.as_root && runas.mode == RUNAS_SERVICE ? runas.service_user
                                                            : "(the worker's own)");
    w->selftest.fd = -1;
    for (int i = 0; i < WORKER_SELFTEST_MAX; i++)
        w->selftest.conns[i].fd = -1;
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
    w->jcfg.env.dx_order = w->si.dx_order;
    w->jcfg.base_env = environ;
    w->jcfg.grace_ms = cfg->kill_grace_ms;
    w->jcfg.isol = &w->isol;
    w->jcfg.container.engine = w->cfg.container_engine;
    w->jcfg.container.flags = w->cfg.container_flags;
    space_open(&w->space, cfg->state_dir);
    w->jcfg.no_space = no_space;
    w->jcfg.no_space_arg = w;
    find_rank_exe(w);
    if (cfg->rendezvous)
        w->rdv = rdv_new(outbox_rdv_send, w);

    streams_adopt(w);
    if (w->jcfg.keeper != NULL)
        keeper_connect(w->jcfg.keeper); /* a keeper left running by an earlier worker */
    selftest_listen(w);

    w->ctx = zmq_ctx_new();
    w->sock = zmq_socket(w->ctx, ZMQ_DEALER);
    if (w->sock == NULL) {
        wq_fail_errno(err, "cannot create socket");
        goto error;
    }
    /* The routing id: the node's name and 128 random bits, fixed for this process. The
     * scheduler's ROUTER hands the id over to a new connection that brings it (a link that
     * died silently while the scheduler's end of it lived on), and nobody else can take the
     * node's traffic that way: the bits are never shown to anyone. */
    unsigned char nonce[16];
    if (getrandom(nonce, sizeof nonce, 0) != (ssize_t) sizeof nonce) {
        wq_fail_errno(err, "cannot draw the connection id (getrandom)");
        goto error;
    }
    char ident[WIRE_MAX_NAME + 3 + 2 * sizeof nonce + 1];
    int n = snprintf(ident, sizeof ident, "w:%s:", cfg->name);
    for (size_t i = 0; i < sizeof nonce; i++)
        n += snprintf(ident + n, sizeof ident - (size_t) n, "%02x", nonce[i]);
    int ivl = 100, ivl_max = 5000, linger = 1000, hb_ivl = 30000, hb_to = 5000, maxrt = 5000;
    zmq_setsockopt(w->sock, ZMQ_ROUTING_ID, ident, strlen(ident));
    zmq_setsockopt(w->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(w->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger);
    /* A dead TCP connection (a PC that slept) is dropped so ZeroMQ reconnects: our own
     * heartbeats leave data unacknowledged on it, which the kernel gives up on after
     * ZMQ_TCP_MAXRT (TCP_USER_TIMEOUT). ZMTP pings only back that up: each one wakes both
     * ends' I/O threads, the larger part of an idle worker's CPU at one a second, and at one
     * every 10 s still about a quarter of its wake-ups next to the 3 s idle heartbeat. */
    zmq_setsockopt(w->sock, ZMQ_TCP_MAXRT, &maxrt, sizeof maxrt);
    zmq_setsockopt(w->sock, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof hb_ivl);
    zmq_setsockopt(w->sock, ZMQ_HEARTBEAT_TIMEOUT, &hb_to, sizeof hb_to);
    if (creds != NULL) {
        if (keys_client_socket(w->sock, creds, err) < 0)
            goto error;
        w->hs_mon = keys_watch(w->ctx, w->sock);
    } else {
        log_warn("insecure = yes: talking to the scheduler without CURVE; anyone on the "
                 "network can pose as it and read every job sent here. Test clusters only");
    }
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
    outbox_register(w, now);
    w->next_hb_ms = now + w->cfg.heartbeat_ms;
    int rc = 0;
    while (!stop_flag) {
        now = wq_clock_mono_ms();
        int hs = keys_handshake_event(w->hs_mon);
        if (hs != KEYS_HS_NONE) {
            int sup = wq_ratelimit(&w->rl_hs, 1, 60000);
            if (sup >= 0 && hs == KEYS_HS_REFUSED)
                log_err("the scheduler refused this node's key: it was removed (wslq admin "
                        "node remove); join again with wslq-worker --join CODE suppressed=%d",
                        sup);
            else if (sup >= 0)
                log_err("the security handshake with %s failed: it is not the scheduler this "
                        "node joined (its key differs), or it does not use CURVE suppressed=%d",
                        w->cfg.scheduler, sup);
        }
        int kfd = keeper_fd(&w->keeper);
        zmq_pollitem_t items[3 + 1 + WORKER_SELFTEST_MAX + RDV_ITEMS] = {
            {w->sock, 0, ZMQ_POLLIN, 0},
            {NULL, sig_pipe[0], ZMQ_POLLIN, 0},
            {NULL, kfd >= 0 ? kfd : sig_pipe[0], kfd >= 0 ? ZMQ_POLLIN : 0, 0},
        };
        int smap[1 + WORKER_SELFTEST_MAX];
        int nst = selftest_pollitems(w, items + 3, smap);
        zmq_pollitem_t *rdv_items = items + 3 + nst;
        size_t nrdv = w->rdv ? rdv_pollitems(w->rdv, rdv_items, RDV_ITEMS) : 0;
        if (zmq_poll(items, 3 + nst + (int) nrdv, poll_timeout(w, now)) < 0 &&
            zmq_errno() != EINTR) {
            log_err("poll failed err=\"%s\"", zmq_strerror(zmq_errno()));
            rc = -1;
            break;
        }
        char drain[64];
        while (read(sig_pipe[0], drain, sizeof drain) > 0)
            ;
        now = wq_clock_mono_ms();
        streams_reap(w, now);
        streams_keeper(w, now);
        selftest_handle(w, items + 3, smap, nst, now);
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
    streams_destroy(w);
    keeper_close(&w->keeper);
    workdir_destroy(w);
    rdv_destroy(&w->rdv);
    selftest_close(w);
    if (w->hs_mon != NULL)
        zmq_close(w->hs_mon);
    if (w->sock != NULL)
        zmq_close(w->sock);
    if (w->ctx != NULL)
        zmq_ctx_term(w->ctx);
    sysinfo_close(&w->si);
    free(w);
    *wp = NULL;
}
