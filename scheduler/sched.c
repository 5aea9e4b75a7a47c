/* The scheduler's loop and its turn; see sched.h, and sched_int.h for the invariants.
 *
 * A turn: receive up to MAX_MSGS_PER_TURN messages and dispatch each (dispatch.c); run the
 * timers when due (nodes, self-tests, jobs, parked requests); a placement pass if anything
 * changed (place.c); answer parked watches; COMMIT the turn's writes in one transaction; only
 * then send what the handlers queued (outbox.c). */
#include "scheduler/sched.h"

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "common/fs.h"
#include "common/mem.h"
#include "scheduler/sched_int.h"

#define MAX_MSGS_PER_TURN 4096 /* bounds one turn's work: about 20 ms of submits */

const double sched_wait_bounds[SCHED_WAIT_BUCKETS] = {0.01, 0.1, 1,    5,    30,
                                                      60,   300, 1800, 3600, 86400};
const double sched_loop_bounds[SCHED_LOOP_BUCKETS] = {0.0001, 0.0005, 0.001, 0.005,
                                                      0.01,   0.05,   0.1,   1};

void
sched_observe(uint64_t *buckets, const double *bounds, size_t n, double v)
{
    for (size_t i = 0; i < n; i++)
        if (v <= bounds[i]) {
            buckets[i]++;
            return;
        }
}

/* ---------- the database ---------- */

void
sched_fatal(sched_t *self, const wq_error_t *err)
{
    if (self->failed)
        return; /* the first failure is the one to report */
    self->failed = 1;
    self->fail_err = *err;
    self->stop = 1;
    log_err("database write failed, stopping: %s", err->text);
    if (self->cfg.on_fatal)
        self->cfg.on_fatal(err, self->cfg.on_fatal_arg);
}

void
sched_db_begin(sched_t *self)
{
    wq_error_t err = {0};
    if (!self->failed && queue_begin(self->q, &err) < 0)
        sched_fatal(self, &err);
}

/* ---------- setup ---------- */

/* The local admin: a Unix socket in the state directory, which only the scheduler's own
 * account (and root) may open: 0700 directory, 0600 socket. No key needed there. */
static int
open_admin_socket(sched_t *self, wq_error_t *err)
{
    const char *path = self->cfg.admin_path;
    if (path != NULL && path[0] == '\0')
        return 0; /* none asked for */
    if (path == NULL)
        snprintf(self->admin_path, sizeof self->admin_path, "%s/admin.sock", self->state_dir);
    else
        snprintf(self->admin_path, sizeof self->admin_path, "%s", path);
    unlink(self->admin_path); /* a stale one of an earlier run: the state lock is ours */
    self->admin_router = zmq_socket(self->zctx, ZMQ_ROUTER);
    int zero = 0, one = 1;
    int64_t maxmsg = WIRE_MAX_FRAME;
    zmq_setsockopt(self->admin_router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(self->admin_router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(self->admin_router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    char ep[4200];
    snprintf(ep, sizeof ep, "ipc://%s", self->admin_path);
    mode_t old = umask(077);
    int rc = zmq_bind(self->admin_router, ep);
    umask(old);
    if (rc < 0)
        return wq_fail(err, WQ_ESYS, "cannot open the admin socket %s: %s", self->admin_path,
                       zmq_strerror(errno));
    chmod(self->admin_path, 0600);
    return 0;
}

/* One scheduler per state directory: a second would run every pending job again. The lock is
 * the kernel's (flock), so it goes with the process however that ends. */
static int
lock_state_dir(sched_t *self, wq_error_t *err)
{
    char *path = wq_asprintf("%s/scheduler.lock", self->state_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        wq_fail_errno(err, "cannot open %s", path);
        err->code = WQ_EIO;
        free(path);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        wq_fail(err, WQ_EBUSY,
                "state directory %s is in use by another wslq-scheduler (pid %s); stop it "
                "first, or give this one another --state-dir",
                self->state_dir, pid[0] ? pid : "unknown");
        close(fd);
        free(path);
        return -1;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long) getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t) len, 0) != len)
        log_warn("cannot write the pid to %s: %s", path, strerror(errno));
    free(path);
    self->lock_fd = fd;
    return 0;
}

void
sched_config_init(sched_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen = "tcp://*:7420";
    cfg->state_dir = NULL;
    cfg->sync_full = 1;
    cfg->torpid_ms = 3000;
    cfg->lost_ms = 10000;
    cfg->start_timeout_ms = 60000;
    notify_config_t nc;
    notify_config_init(&nc);
    cfg->notify_timeout_ms = nc.timeout_ms;
    cfg->notify_retries = nc.retries;
    cfg->kill_grace_ms = 10000;
    cfg->missing_grace_ms = 5000;
    cfg->port_lo = 29500;
    cfg->port_hi = 29999;
    cfg->kv_max_keys = SCHED_KV_KEYS_DEFAULT;
    cfg->kv_max_bytes = SCHED_KV_BYTES_DEFAULT;
    cfg->backfill_depth = SCHED_BACKFILL_DEPTH_DEFAULT;
    cfg->default_time_limit_ms = SCHED_DEFAULT_TIME_LIMIT_MS;
    cfg->workdir_max_bytes = SNAP_WORKDIR_MAX_DEFAULT;
    cfg->output_max_bytes = SNAP_OUTPUT_MAX_DEFAULT;
    cfg->snapshot_retention_ms = SNAP_RETENTION_MS_DEFAULT;
    cfg->output_retention_ms = OUTPUT_RETENTION_MS_DEFAULT;
}

sched_t *
sched_new(const sched_config_t *cfg, wq_error_t *err)
{
    sched_t *self = wq_calloc(1, sizeof *self);
    self->cfg = *cfg;
    self->state_dir = wq_strdup(cfg->state_dir);
    self->log_dir = wq_asprintf("%s/logs", cfg->state_dir);
    self->lock_fd = -1;
    self->usock_fd = -1;
    self->wake_fd[0] = self->wake_fd[1] = -1;
    if (pipe(self->wake_fd) < 0) {
        wq_fail(err, WQ_ESYS, "cannot make a pipe: %s", strerror(errno));
        goto error;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(self->wake_fd[i], F_SETFD, FD_CLOEXEC);
        fcntl(self->wake_fd[i], F_SETFL, O_NONBLOCK);
    }
    if (wq_mkdir_p(self->log_dir, 0700, err) < 0) {
        err->code = WQ_EIO; /* the state directory cannot be used */
        goto error;
    }
    /* jobs' commands, environments and logs are their owners' alone: the state directory is
     * this account's (one made by an older version, 0755, is closed up here) */
    if (chmod(self->state_dir, 0700) < 0 || chmod(self->log_dir, 0700) < 0)
        log_warn("cannot make %s private (0700): %s", self->state_dir, strerror(errno));
    struct statvfs vfs;
    if (statvfs(self->state_dir, &vfs) == 0 && (vfs.f_flag & ST_RDONLY)) {
        wq_fail(err, WQ_EIO,
                "state directory %s is on a read-only file system; remount it read-write or "
                "give --state-dir a writable place",
                self->state_dir);
        goto error;
    }
    if (lock_state_dir(self, err) < 0)
        goto error;
    char *db = wq_asprintf("%s/queue.db", cfg->state_dir);
    self->q = queue_new(db, cfg->sync_full, err);
    free(db);
    if (self->q == NULL)
        goto error;
    if (fairshare_open(self, err) < 0)
        goto error;
    if (queue_list_nodes(self->q, nodes_load, self, err) < 0 || nodes_load_drains(self, err) < 0 ||
        nodes_load_tags(self, err) < 0)
        goto error;
    queue_filter_t f = {.active_only = 1, .limit = 1000000, .strict = 1};
    if (queue_list(self->q, &f, jobs_load, self, err) < 0)
        goto error;
    self->next_port = (unsigned) (queue_max_id(self->q) % 997);
    self->zctx = cfg->zctx;
    if (self->zctx == NULL) {
        self->zctx = zmq_ctx_new();
        self->own_zctx = 1;
    }
    self->router = zmq_socket(self->zctx, ZMQ_ROUTER);
    int one = 1, zero = 0, hwm = SCHED_ROUTER_HWM, handshake = SCHED_HANDSHAKE_MS;
    int64_t maxmsg = WIRE_MAX_FRAME + (cfg->insecure ? 0 : WIRE_CURVE_OVERHEAD);
    zmq_setsockopt(self->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(self->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(self->router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(self->router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->router, ZMQ_HANDSHAKE_IVL, &handshake, sizeof handshake);
    /* A worker whose link died silently (a cable, a sleeping PC) connects again with its
     * routing id while the scheduler's end of the old connection lives on: nothing is sent to
     * an idle worker, so the kernel never learns it is dead. The new connection takes the id
     * (ZMQ_ROUTER_HANDOVER; a worker's id holds 128 random bits nobody else sees, so no
     * other peer can take a node's traffic), and TCP keep-alive lets the kernel drop the
     * dead end: probes after 5 s of silence, which a live worker's 3 s heartbeats never
     * leave. */
    int ka_idle = 5, ka_intvl = 2, ka_cnt = 3;
    zmq_setsockopt(self->router, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
    zmq_setsockopt(self->router, ZMQ_TCP_KEEPALIVE, &one, sizeof one);
    zmq_setsockopt(self->router, ZMQ_TCP_KEEPALIVE_IDLE, &ka_idle, sizeof ka_idle);
    zmq_setsockopt(self->router, ZMQ_TCP_KEEPALIVE_INTVL, &ka_intvl, sizeof ka_intvl);
    zmq_setsockopt(self->router, ZMQ_TCP_KEEPALIVE_CNT, &ka_cnt, sizeof ka_cnt);
    if (auth_open(self, err) < 0)
        goto error;
    self->conns = conns_new(self->zctx, self->router, err);
    if (self->conns == NULL)
        goto error;
    struct rlimit nofile;
    self->max_conns = SCHED_MAX_CONNS;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
        nofile.rlim_cur < SCHED_MAX_CONNS + SCHED_FD_RESERVE) {
        self->max_conns = nofile.rlim_cur > SCHED_FD_RESERVE + 64
                              ? (size_t) nofile.rlim_cur - SCHED_FD_RESERVE
                              : 64;
        log_warn("descriptor limit %llu: at most %zu connections (raise LimitNOFILE)",
                 (unsigned long long) nofile.rlim_cur, self->max_conns);
    }
    if (zmq_bind(self->router, cfg->listen) < 0) {
        wq_fail(err, WQ_ESYS, "cannot listen on %s: %s", cfg->listen, zmq_strerror(errno));
        goto error;
    }
    size_t len = sizeof self->endpoint;
    zmq_getsockopt(self->router, ZMQ_LAST_ENDPOINT, self->endpoint, &len);
    if (open_admin_socket(self, err) < 0 || usock_open(self, err) < 0)
        goto error;
    if (cfg->notify_url != NULL || cfg->n_notify_urls > 0) {
        notify_config_t nc;
        notify_config_init(&nc);
        nc.timeout_ms = cfg->notify_timeout_ms;
        nc.retries = cfg->notify_retries;
        self->notify = notify_new(&nc, err);
        if (self->notify == NULL)
            goto error;
    }
    log_info("scheduler listening endpoint=%s state_dir=%s active_jobs=%zu known_nodes=%zu",
             self->endpoint, cfg->state_dir, self->n_jobs, self->n_nodes);
    self->dirty = 1;
    return self;
error:
    sched_destroy(&self);
    return NULL;
}

void
sched_destroy(sched_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    sched_t *self = *self_p;
    conns_destroy(&self->conns);
    if (self->router)
        zmq_close(self->router);
    if (self->admin_router) {
        zmq_close(self->admin_router);
        unlink(self->admin_path);
    }
    usock_close(self);
    free(self->pfd);
    auth_close(self);
    if (self->zctx && self->own_zctx)
        zmq_ctx_term(self->zctx);
    notify_destroy(&self->notify);
    place_free(self);
    backfill_free(self);
    jobs_free_all(self);
    fairshare_close(self);
    nodes_free_all(self);
    waiters_free_all(self);
    out_discard(self);
    free(self->outs);
    free(self->held);
    if (self->q != NULL && queue_in_txn(self->q))
        queue_rollback(self->q);
    queue_destroy(&self->q);
    if (self->lock_fd >= 0)
        close(self->lock_fd); /* releases the lock */
    for (int i = 0; i < 2; i++)
        if (self->wake_fd[i] >= 0)
            close(self->wake_fd[i]);
    snapshots_free(self);
    free(self->state_dir);
    free(self->log_dir);
    free(self);
    *self_p = NULL;
}

void
sched_wake(sched_t *self)
{
    /* async-signal-safe; a full pipe already wakes the poll */
    ssize_t rc = write(self->wake_fd[1], "", 1);
    (void) rc;
}

void
sched_stop(sched_t *self)
{
    self->stop = 1;
    sched_wake(self);
}

const char *
sched_endpoint(const sched_t *self)
{
    return self->endpoint;
}

/* ---------- the turn ---------- */

static void
recv_batch(sched_t *self, void *sock, int admin_sock)
{
    for (int i = 0; i < MAX_MSGS_PER_TURN && !self->failed; i++) {
        peer_t from = {.admin_sock = admin_sock};
        char user_id[64];
        wq_error_t err = {0};
        Wslq__Envelope *env =
            wire_recv_user(sock, from.id, &from.len, user_id, sizeof user_id, ZMQ_DONTWAIT, &err);
        if (env == NULL) {
            if (err.code == WQ_EBUSY)
                return;
            if (err.code == WQ_ESYS && err.sys_errno == EINTR)
                return;
            self->stats.bad_frames_total++;
            self->stats.version++; /* a counter the dashboard shows */
            int suppressed = wq_ratelimit(&self->bad_rl, 10, 10000);
            if (suppressed >= 0)
                log_warn("bad frame dropped: %s total=%" PRIu64 " suppressed=%d", err.text,
                         self->stats.bad_frames_total, suppressed);
            if (from.len > 0 && nodes_by_peer(self, &from) == NULL)
                out_error(self, &from, 0, &err);
            continue;
        }
        dispatch(self, &from, user_id, env);
        wire_free(&env);
    }
}

/* Freed memory is given back to the system this often: a flood of connections leaves much of
 * it in malloc's arenas otherwise. malloc_trim walks every free chunk of the heap and advises
 * each page run away again (a system call and a TLB flush each), so with a large backlog's
 * fragmented heap it is done only when the arenas hold TRIM_MIN_FREE bytes more free memory
 * than the last trim left: a turn that answered a heartbeat freed next to nothing. */
#define TRIM_MS       10000
#define TRIM_MIN_FREE (256u << 10)

#ifdef __GLIBC__
static void
trim_if_freed(sched_t *self)
{
#if __GLIBC_PREREQ(2, 33)
    size_t free_now = mallinfo2().fordblks;
    if (free_now < self->trim_free_after + TRIM_MIN_FREE) {
        if (free_now < self->trim_free_after)
            self->trim_free_after = free_now; /* reused since: the mark follows it down */
        return;
    }
    malloc_trim(0);
    self->trim_free_after = mallinfo2().fordblks;
#else
    malloc_trim(0);
#endif
}
#endif

static void
tick(sched_t *self, int64_t now)
{
    nodes_tick(self, now);
    selftest_tick(self, now);
    gang_tick(self, now);
    waiters_expire(self, now);
    snapshots_tick(self, now);
    usock_tick(self, now);
#ifdef __GLIBC__
    if (self->next_trim_mono != 0 && now >= self->next_trim_mono) {
        trim_if_freed(self);
        self->next_trim_mono = 0;
    }
#endif
}

/* When the timers next have work: the loop sleeps until then, or until a message comes. No
 * fixed tick: an idle scheduler wakes only for what is due (heartbeat deadlines, time limits,
 * waits), so it costs nothing between them. */
static int64_t
next_timer(sched_t *self)
{
    int64_t next = nodes_next_timer(self);
    int64_t t = selftest_next_timer(self);
    next = t < next ? t : next;
    t = gang_next_timer(self);
    next = t < next ? t : next;
    t = waiters_next_timer(self);
    next = t < next ? t : next;
    t = snapshots_next_timer(self);
    next = t < next ? t : next;
    t = usock_next_timer(self);
    next = t < next ? t : next;
    if (self->next_trim_mono != 0 && self->next_trim_mono < next)
        next = self->next_trim_mono;
    if (self->held_due != 0 && self->held_due < next)
        next = self->held_due;
    if (self->hook != NULL && self->hook_due < next)
        next = self->hook_due;
    return next;
}

/* 1 when a message waits on the socket (ZMQ_EVENTS), which also takes its ZMQ_FD's signal */
static int
sock_has_input(void *sock)
{
    int ev = 0;
    size_t sz = sizeof ev;
    return zmq_getsockopt(sock, ZMQ_EVENTS, &ev, &sz) == 0 && (ev & ZMQ_POLLIN) != 0;
}

int
sched_turn(sched_t *self, long timeout_ms, wq_error_t *err)
{
    if (self->failed) {
        if (err)
            *err = self->fail_err;
        return -1;
    }
    int64_t now = wq_clock_mono_ms();
    int64_t due = next_timer(self);
    if (due != INT64_MAX) {
        long until = due > now ? (due - now > LONG_MAX ? LONG_MAX : (long) (due - now)) : 0;
        if (timeout_ms < 0 || timeout_ms > until)
            timeout_ms = until;
    }
    if (self->stop)
        timeout_ms = 0;
    /* The loop polls the sockets' ZMQ_FDs itself: zmq_poll asks every socket for ZMQ_EVENTS
     * (a poll of its mailbox and a getpid each) before and after each sleep, about 12 system
     * calls per message on an idle scheduler. A ZMQ_FD only signals that something changed,
     * and any call on the socket may take that signal, so ZMQ_EVENTS is asked before sleeping
     * of every socket used since it was last asked, and after waking of those that signalled.
     * The ZAP and monitor sockets are used only below, when they have something; each is asked
     * on the first turn too (a pipe nobody has yet found empty signals nothing). */
    enum { S_ROUTER, S_CONNS, S_ZAP, S_ADMIN, S_N };
    void *socks[S_N] = {self->router, conns_socket(self->conns), self->zap, self->admin_router};
    int ready[S_N] = {0}, any = 0;
    for (int i = 0; i < S_N; i++)
        if (socks[i] != NULL && (i == S_ROUTER || i == S_ADMIN || !self->sock_quiet[i]))
            any |= ready[i] = sock_has_input(socks[i]);
    for (int i = 0; i < S_N; i++)
        self->sock_quiet[i] = 1;
    if (self->cap_pfd < S_N + 1) {
        self->cap_pfd = 64;
        self->pfd = wq_realloc(self->pfd, self->cap_pfd * sizeof *self->pfd);
    }
    struct pollfd *pfd = self->pfd;
    int map[S_N + 1], n_fds = 0;
    for (int i = 0; i < S_N; i++) {
        size_t sz = sizeof pfd[0].fd;
        if (socks[i] != NULL && zmq_getsockopt(socks[i], ZMQ_FD, &pfd[n_fds].fd, &sz) == 0) {
            pfd[n_fds].events = POLLIN;
            map[n_fds++] = i;
        }
    }
    pfd[n_fds].fd = self->wake_fd[0];
    pfd[n_fds].events = POLLIN;
    map[n_fds++] = -1;
    size_t n_all = (size_t) n_fds; /* then the user socket's (usock.c) */
    usock_poll_add(self, &n_all);
    pfd = self->pfd;
    int rc =
        poll(pfd, (nfds_t) n_all, any ? 0 : (int) (timeout_ms > INT_MAX ? INT_MAX : timeout_ms));
    if (rc < 0 && errno != EINTR)
        return wq_fail(err, WQ_ESYS, "poll failed: %s", strerror(errno));
    int woken = 0;
    for (int k = 0; rc > 0 && k < n_fds; k++) {
        if (!(pfd[k].revents & POLLIN))
            continue;
        if (map[k] < 0)
            woken = 1;
        else if (!ready[map[k]])
            ready[map[k]] = sock_has_input(socks[map[k]]);
    }
    struct timespec ts0;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    if (ready[S_ZAP]) {
        auth_zap(self); /* handshakes wait for it: first */
        self->sock_quiet[S_ZAP] = 0;
    }
    if (ready[S_CONNS]) {
        conns_events(self, self->conns);
        self->sock_quiet[S_CONNS] = 0;
    }
    if (ready[S_ROUTER])
        recv_batch(self, self->router, 0);
    if (ready[S_ADMIN])
        recv_batch(self, self->admin_router, 1);
    if (rc > 0)
        usock_events(self, (size_t) n_fds, n_all - (size_t) n_fds);
    if (woken) {
        char buf[64];
        while (read(self->wake_fd[0], buf, sizeof buf) > 0) {
        }
    }
    now = wq_clock_mono_ms();
    if (now >= due)
        tick(self, now);
    if (self->dirty || self->n_fresh > 0)
        place_pass(self);
    waiters_wake_watch(self);
    int worked = queue_in_txn(self->q) || self->n_outs > 0;
    /* A turn that tells no one anything (a worker's "started", a timer's change) need not
     * wait for the disk: no peer forgets what it would have been told, and the next turn
     * that tells someone syncs it with its own. A worker's ended ack (it forgets the job on
     * it) waits for that sync too, OUT_HOLD_MS at most: under load one sync then covers the
     * ends of many turns, and a shell loop's next submit syncs them anyway. */
    int64_t end_ms = wq_clock_mono_ms();
    int owed = out_owed(self) || (self->notify != NULL && notify_staged(self->notify)) ||
               (!self->cfg.sync_full && self->n_outs > 0) || /* no sync to wait for */
               (self->held_due != 0 && (end_ms >= self->held_due || self->stop));
    wq_error_t cerr = {0};
    if (!self->failed &&
        (owed ? queue_commit(self->q, &cerr) : queue_commit_lazy(self->q, &cerr)) < 0)
        sched_fatal(self, &cerr);
    if (self->failed) {
        /* nothing that is not on disk may leave: the turn's requests get the reason instead */
        queue_rollback(self->q);
        if (self->notify != NULL)
            notify_discard(self->notify);
        out_fail_requests(self, &self->fail_err);
        if (err)
            *err = self->fail_err;
        return -1;
    }
    if (owed) {
        out_flush(self);
    } else {
        out_hold(self, end_ms);
        usock_flushed(self); /* as out_flush: closed and dead connections go */
    }
    if (self->notify != NULL) {
        notify_commit(self->notify);
        notify_stats_t ns;
        notify_stats(self->notify, &ns);
        if (ns.sent_total != self->stats.notify_sent_total ||
            ns.failed_total != self->stats.notify_failed_total ||
            ns.dropped_total != self->stats.notify_dropped_total ||
            ns.pending != self->stats.notify_pending)
            self->stats.version++; /* the dashboard's counters */
        self->stats.notify_sent_total = ns.sent_total;
        self->stats.notify_failed_total = ns.failed_total;
        self->stats.notify_dropped_total = ns.dropped_total;
        self->stats.notify_pending = ns.pending;
    }
    if (worked && self->next_trim_mono == 0)
        self->next_trim_mono = now + TRIM_MS; /* the turn may have freed memory */
    if (worked) {
        struct timespec ts1;
        clock_gettime(CLOCK_MONOTONIC, &ts1);
        double dt = (double) (ts1.tv_sec - ts0.tv_sec) + (double) (ts1.tv_nsec - ts0.tv_nsec) / 1e9;
        sched_observe(self->stats.loop_bucket, sched_loop_bounds, SCHED_LOOP_BUCKETS, dt);
        self->stats.loop_count++;
        self->stats.loop_sum_s += dt;
    }
    if (self->hook)
        self->hook_due = self->hook(self, self->hook_arg);
    return 0;
}

int
sched_run(sched_t *self, wq_error_t *err)
{
    while (!self->stop)
        if (sched_turn(self, -1, err) < 0)
            return -1;
    if (self->failed) {
        if (err)
            *err = self->fail_err;
        return -1;
    }
    return 0;
}

/* ---------- read-only views ---------- */

const sched_stats_t *
sched_stats(const sched_t *self)
{
    return &self->stats;
}

size_t
sched_node_count(const sched_t *self)
{
    return self->n_nodes;
}

const Wslq__NodeInfo *
sched_node(sched_t *self, size_t i)
{
    if (i >= self->n_nodes)
        return NULL;
    nodes_refresh(self, self->nodes[i]);
    return self->nodes[i]->info;
}

size_t
sched_job_count(const sched_t *self)
{
    return self->n_jobs;
}

const Wslq__JobInfo *
sched_job(const sched_t *self, size_t i)
{
    return i < self->n_jobs ? self->jobs[i]->info : NULL;
}

const char *
sched_state_dir(const sched_t *self)
{
    return self->state_dir;
}

void
sched_set_hook(sched_t *self, sched_hook_f fn, void *arg)
{
    self->hook = fn;
    self->hook_arg = arg;
    self->hook_due = INT64_MAX;
}
