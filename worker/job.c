/* Job ranks on this node: fork/exec, spool, time limit, kill escalation (see job.h). */
#include "worker/job.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/net.h"
#include "common/parse.h"
#include "worker/jobstate.h"

#define GANG_GRACE_MS 3000 /* SIGTERM to SIGKILL for a rank's siblings after it failed */

#define MERGE_BUF   (64u << 10) /* bytes read from a rank file per step */
#define MERGE_STEPS 16          /* steps per rank per poll: bounds one poll's work */
#define KILL_REPEAT 1000        /* ms between SIGKILL repeats for a group that lingers */

static void
rank_path(char *buf, size_t n, const job_t *j, const char *what, uint32_t grank, const char *ext)
{
    snprintf(buf, n, "%s/%s-%" PRIu32 "%s", j->spool, what, grank, ext);
}

/* The path a rank's output goes to: job.log for a single rank, rank-<G>.out otherwise. */
static void
out_path(char *buf, size_t n, const job_t *j, const job_rank_t *r)
{
    if (j->merged)
        rank_path(buf, n, j, "rank", r->grank, ".out");
    else
        snprintf(buf, n, "%s/job.log", j->spool);
}

/* Open a file in the job's spool as the worker. The directory belongs to the job's account,
 * which may have put anything there (a link to /etc/shadow, a FIFO, a hard link, a file of
 * someone else's) while the worker runs as root: so no symlink is followed, and only a plain
 * file with one link that the account owns is taken, or one this call created (0600, then
 * given to the account). No O_TRUNC here: a file is truncated (ftruncate) only once it passed.
 * -1 with errno otherwise. */
static int
spool_open(const job_t *j, const char *path, int flags)
{
    int base = (flags & ~O_CREAT) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
    int fd = -1, made = 0;
    for (int tries = 0; tries < 2 && fd < 0; tries++) {
        fd = open(path, base);
        if (fd < 0 && errno == ENOENT && (flags & O_CREAT)) {
            fd = open(path, base | O_CREAT | O_EXCL, 0600); /* EEXIST: it came meanwhile */
            made = fd >= 0;
        }
    }
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
        (st.st_uid != j->uid && (!made || fchown(fd, j->uid, j->gid) < 0))) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK); /* O_NONBLOCK was for a FIFO's open */
    return fd;
}

/* Append one line written by the worker itself to the rank's output. */
static void
rank_note(const job_t *j, const job_rank_t *r, const char *msg)
{
    char p[PATH_MAX + 32];
    out_path(p, sizeof p, j, r);
    int fd = spool_open(j, p, O_WRONLY | O_APPEND | O_CREAT);
    if (fd < 0)
        return;
    char *line = wq_asprintf("wslq: %s\n", msg);
    ssize_t w = write(fd, line, strlen(line));
    (void) w;
    free(line);
    close(fd);
}

static void
job_note(const job_t *j, const char *msg)
{
    if (j->log_fd < 0)
        return;
    char *line = wq_asprintf("wslq: %s\n", msg);
    ssize_t w = write(j->log_fd, line, strlen(line));
    (void) w;
    free(line);
}

static job_t *
job_alloc(uint64_t id, uint32_t attempt, int nranks, const job_cfg_t *cfg)
{
    job_t *j = wq_calloc(1, sizeof *j);
    j->id = id;
    j->attempt = attempt;
    j->nranks = nranks;
    j->merged = nranks > 1;
    j->ranks = wq_calloc((size_t) nranks, sizeof *j->ranks);
    for (int i = 0; i < nranks; i++) {
        j->ranks[i].lrank = i;
        j->ranks[i].status = -1;
        j->ranks[i].errfd = -1;
        j->ranks[i].out_fd = -1;
        j->ranks[i].met_fd = -1;
    }
    j->log_fd = -1;
    j->phase = JOB_RUNNING;
    j->failed_rank = -1;
    j->uid = geteuid();
    j->gid = getegid();
    j->grace_ms = cfg->grace_ms > 0 ? cfg->grace_ms : 10000;
    j->no_space = cfg->no_space;
    j->no_space_arg = cfg->no_space_arg;
    snprintf(j->spool, sizeof j->spool, "%s/spool/%" PRIu64 ".%" PRIu32, cfg->state_dir, id,
             attempt);
    snprintf(j->state_path, sizeof j->state_path, "%s/jobs/%" PRIu64 ".%" PRIu32 ".state",
             cfg->state_dir, id, attempt);
    return j;
}

/* Create the job's spool directory, or take the one there: 0700 and the job's account's. Its
 * parent, spool/, is the worker's, so the path up to it cannot be swapped by the account.
 * 0, or -1 with errno. */
static int
spool_dir(const job_t *j)
{
    if (mkdir(j->spool, 0700) < 0 && errno != EEXIST)
        return -1;
    int fd = open(j->spool, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    int rc = fstat(fd, &st);
    if (rc == 0 && (st.st_uid != j->uid || st.st_gid != j->gid))
        rc = fchown(fd, j->uid, j->gid);
    if (rc == 0 && (st.st_mode & 07777) != 0700)
        rc = fchmod(fd, 0700);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* End a job that never started: reason to the log and into the ending. */
static job_t *
end_early(job_t *j, int exit_code, const char *reason)
{
    job_note(j, reason);
    j->phase = JOB_ENDED;
    j->exit_code = exit_code;
    j->failed_rank = (int) j->first_rank;
    snprintf(j->reason, sizeof j->reason, "%s", reason);
    j->log_bytes = job_log_size(j);
    log_warn("job could not start " JOB_FMT " reason=\"%s\"", j->id, reason);
    return j;
}

/* Find argv0 in PATH (taken from the job's environment). NULL = not found. Caller frees. */
static char *
find_exe(const char *argv0, const char *path)
{
    if (strchr(argv0, '/') != NULL)
        return wq_strdup(argv0);
    if (*argv0 == '\0')
        return NULL;
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;;) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t) (e - p) : strlen(p);
        char *cand = wq_asprintf("%.*s/%s", (int) n, n ? p : ".", argv0);
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
            return cand;
        free(cand);
        if (e == NULL)
            return NULL;
        p = e + 1;
    }
}

/* In the child, between vfork and exec: system calls only, no allocation and no writes to
 * the worker's memory beyond this frame (the child shares it, and the worker has ZeroMQ
 * threads). The error pipe tells the worker which step failed and why. */
static _Noreturn void
child_exec(const char *cwd,
           const char *exe,
           char **argv,
           char **envp,
           int nullfd,
           int outfd,
           int errw,
           int keep_errw,
           const runas_acct_t *acct)
{
    if (keep_errw)
        fcntl(errw, F_SETFD, 0); /* wslq-rank reports the rank's own exec through it */
    setsid();
    dup2(nullfd, 0);
    dup2(outfd, 1);
    dup2(outfd, 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &dfl, NULL); /* ignored signals (SIGPIPE) would survive exec */
    int msg[2] = {1, 0};
    /* The job's account before anything runs (chdir included, so it is checked as the job's):
     * wslq-rank then runs as the account too. A failed switch runs nothing. */
    msg[0] = runas_switch(acct, &msg[1]);
    if (msg[0] != 0) {
        ssize_t w = write(errw, msg, sizeof msg);
        (void) w;
        _exit(126);
    }
    msg[0] = 1;
    if (chdir(cwd) == 0) {
        msg[0] = 2;
        if (exe != NULL)
            execve(exe, argv, envp);
        else
            errno = ENOENT;
    }
    msg[1] = errno;
    ssize_t w = write(errw, msg, sizeof msg);
    (void) w;
    _exit(msg[0] == 1 ? 1 : (msg[1] == ENOENT ? 127 : 126));
}

/* Start one rank. vfork: no copy of the worker's page tables, so a launch costs the same
 * whatever the worker's size (fork of a process with 20 MiB touched measured 3.5 ms here, a
 * vfork-based spawn 0.4 ms). The child runs child_exec() and never returns here; kept in a
 * function of its own so nothing of the caller's frame lives across the vfork. */
static __attribute__((noinline)) pid_t
spawn_rank(const char *cwd,
           const char *exe,
           char **argv,
           char **envp,
           int nullfd,
           int outfd,
           int errw,
           int keep_errw,
           const runas_acct_t *acct)
{
    pid_t pid = vfork();
    if (pid == 0)
        child_exec(cwd, exe, argv, envp, nullfd, outfd, errw, keep_errw, acct);
    return pid;
}

static int
pipe_cloexec(int fds[2])
{
    if (pipe(fds) < 0)
        return -1;
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    return 0;
}

static void
signal_rank(job_rank_t *r, int sig)
{
    if (!r->alive)
        return;
    if (r->pgid > 0)
        kill(-r->pgid, sig);
    if (r->pid > 0)
        kill(r->pid, sig); /* before the child's setsid the group does not exist yet */
}

job_t *
job_launch(const Wslq__JobLaunch *l, const job_cfg_t *cfg)
{
    const Wslq__JobSpec *spec = l->spec;
    int nranks = jobenv_nranks(l);
    job_t *j = job_alloc(l->job_id, l->attempt, nranks, cfg);
    j->first_rank = l->alloc ? l->alloc->first_rank : 0;
    for (int i = 0; i < nranks; i++)
        j->ranks[i].grank = j->first_rank + (uint32_t) i;
    snprintf(j->name, sizeof j->name, "%s", spec->name ? spec->name : "");
    snprintf(j->argv0, sizeof j->argv0, "%s", spec->n_argv ? spec->argv[0] : "");
    j->time_limit_s = (int64_t) spec->time_limit_s;
    const runas_acct_t *acct =
        cfg->refuse == NULL && cfg->acct && cfg->acct->drop ? cfg->acct : NULL;
    if (acct != NULL) {
        j->uid = acct->uid;
        j->gid = acct->gid;
        snprintf(j->user, sizeof j->user, "%s", acct->name);
    }

    char p[PATH_MAX + 32];
    if (spool_dir(j) < 0) {
        char why[200];
        snprintf(why, sizeof why, "cannot create spool %.150s: %s", j->spool, strerror(errno));
        return end_early(j, 1, why);
    }
    snprintf(p, sizeof p, "%s/job.log", j->spool);
    j->log_fd = spool_open(j, p, O_RDWR | O_CREAT | O_APPEND);
    if (j->log_fd < 0 || ftruncate(j->log_fd, 0) < 0) {
        char why[200];
        snprintf(why, sizeof why, "cannot create %.150s: %s", p, strerror(errno));
        return end_early(j, 1, why);
    }
    snprintf(p, sizeof p, "%s/pos", j->spool);
    unlink(p);
    if (cfg->refuse != NULL)
        return end_early(j, 1, cfg->refuse);

    /* Working directory: checked here so a bad one is a clear reason, not N rank errors. The
     * default is the home of the account the ranks run as. */
    const char *cwd = spec->cwd && *spec->cwd ? spec->cwd : acct ? acct->home : getenv("HOME");
    if (cwd == NULL || *cwd == '\0')
        cwd = "/";
    struct stat st;
    if (stat(cwd, &st) < 0 || !S_ISDIR(st.st_mode) || access(cwd, X_OK) < 0) {
        char why[256];
        snprintf(why, sizeof why, "cannot use working directory %.150s: %s", cwd,
                 errno ? strerror(errno) : "not a directory");
        if (stat(cwd, &st) == 0 && !S_ISDIR(st.st_mode))
            snprintf(why, sizeof why, "cannot use working directory %.150s: not a directory", cwd);
        return end_early(j, 1, why);
    }

    int nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
    jobenv_ctx_t ec = cfg->env;
    ec.spool = j->spool;
    char rdv[PATH_MAX + 16];
    snprintf(rdv, sizeof rdv, "%s/rdv.sock", j->spool);
    ec.rdv_path = cfg->rendezvous ? rdv : NULL;
    ec.user = acct ? acct->name : NULL;
    ec.home = acct ? acct->home : NULL;
    /* The scheduler gave no MASTER_PORT (single-node jobs): a port free on every interface
     * of this node right now, the kernel's choice of an ephemeral port; 0 if none. */
    if (l->master_port == 0 && ec.master_port == 0)
        ec.master_port = (unsigned) wq_free_tcp_port(INADDR_ANY);
    int64_t now = wq_clock_mono_ms();
    for (int i = 0; i < nranks; i++) {
        job_rank_t *r = &j->ranks[i];
        char **envp = jobenv_build(l, &ec, i, cfg->base_env);
        char **argv = jobenv_argv(spec, envp);
        char *exe = find_exe(argv[0], jobenv_get(envp, "PATH"));
        out_path(p, sizeof p, j, r);
        int outfd = spool_open(j, p, O_WRONLY | O_APPEND | (j->merged ? O_CREAT : 0));
        if (outfd >= 0 && j->merged && ftruncate(outfd, 0) < 0) {
            close(outfd);
            outfd = -1;
        }
        if (j->merged)
            r->out_fd = spool_open(j, p, O_RDONLY);
        /* made here, 0600 and the account's, rather than by the rank with its umask */
        rank_path(p, sizeof p, j, "metrics", r->grank, ".jsonl");
        r->met_fd = spool_open(j, p, O_RDONLY | O_CREAT);
        int ep[2] = {-1, -1};
        pid_t pid = -1;
        int saved = 0;
        char **sargv = NULL;
        if (outfd >= 0 && nullfd >= 0 && pipe_cloexec(ep) == 0) {
            if (cfg->rank_exe != NULL && exe != NULL) {
                /* wslq-rank STATUS ERRFD PROGRAM ARGV...: built here, the vfork child may
                 * not allocate */
                size_t na = 0;
                while (argv[na] != NULL)
                    na++;
                sargv = wq_calloc(na + 5, sizeof *sargv);
                char stp[PATH_MAX + 32], fdtxt[16];
                rank_path(stp, sizeof stp, j, "rank", r->grank, ".status");
                snprintf(fdtxt, sizeof fdtxt, "%d", ep[1]);
                sargv[0] = (char *) "wslq-rank";
                sargv[1] = stp;
                sargv[2] = fdtxt;
                sargv[3] = exe;
                for (size_t a = 0; a < na; a++)
                    sargv[4 + a] = argv[a];
                pid = spawn_rank(cwd, cfg->rank_exe, sargv, envp, nullfd, outfd, ep[1], 1, acct);
            } else {
                pid = spawn_rank(cwd, exe, argv, envp, nullfd, outfd, ep[1], 0, acct);
            }
        }
        saved = errno;
        free(sargv);
        if (ep[1] >= 0)
            close(ep[1]);
        if (outfd >= 0)
            close(outfd);
        free(exe);
        jobenv_free(&argv);
        jobenv_free(&envp);
        if (pid < 0) {
            if (ep[0] >= 0)
                close(ep[0]);
            char why[200];
            snprintf(why, sizeof why, "cannot start rank %" PRIu32 ": %s", r->grank,
                     strerror(saved));
            job_note(j, why);
            for (int k = 0; k < i; k++)
                signal_rank(&j->ranks[k], SIGKILL);
            j->have_fail = 1;
            j->fail_lrank = i;
            j->fail_cause = 1;
            j->exit_code = 1;
            j->failed_rank = (int) r->grank;
            snprintf(j->reason, sizeof j->reason, "%s", why);
            if (i == 0) {
                if (nullfd >= 0)
                    close(nullfd);
                return end_early(j, 1, why);
            }
            j->phase = JOB_STOPPING;
            j->kill_at_ms = now + KILL_REPEAT;
            break;
        }
        r->pid = pid;
        r->pgid = pid;
        r->alive = 1;
        r->errfd = ep[0];
    }
    if (nullfd >= 0)
        close(nullfd);
    if (j->phase == JOB_RUNNING) {
        j->started = 1;
        j->start_wall_ms = wq_clock_wall_ms();
        if (j->time_limit_s > 0)
            j->deadline_ms = now + j->time_limit_s * 1000;
    }
    return j;
}

/* Read the pos file (2+ ranks, metrics): "out_pos met_pos" per rank. */
static void
pos_load(job_t *j)
{
    char p[PATH_MAX + 8];
    snprintf(p, sizeof p, "%s/pos", j->spool);
    int fd = spool_open(j, p, O_RDONLY);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (f == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    for (int i = 0; i < j->nranks; i++) {
        uint64_t a, b;
        if (fscanf(f, "%" SCNu64 " %" SCNu64, &a, &b) != 2)
            break;
        j->ranks[i].out_pos = a;
        j->ranks[i].met_pos = b;
    }
    fclose(f);
}

static void
pos_save(job_t *j)
{
    if (!j->pos_dirty)
        return;
    j->pos_dirty = 0;
    char p[PATH_MAX + 8];
    snprintf(p, sizeof p, "%s/pos", j->spool);
    int fd = spool_open(j, p, O_WRONLY | O_CREAT);
    if (fd < 0)
        return;
    /* Fixed-width lines: rewriting in place never leaves a shorter file's tail behind. */
    size_t n = (size_t) j->nranks * 42;
    char *buf = wq_malloc(n + 1);
    for (int i = 0; i < j->nranks; i++)
        snprintf(buf + (size_t) i * 42, 43, "%020" PRIu64 " %020" PRIu64 "\n", j->ranks[i].out_pos,
                 j->ranks[i].met_pos);
    ssize_t w = pwrite(fd, buf, n, 0);
    (void) w;
    free(buf);
    close(fd);
}

static void adopted_rank_ended(job_t *j, int i, int64_t now_ms);

job_t *
job_adopt(const char *state_path, const job_cfg_t *cfg, wq_error_t *err)
{
    jobstate_t *st = wq_malloc(sizeof *st);
    if (jobstate_read(state_path, st, err) < 0) {
        free(st);
        return NULL;
    }
    job_t *j = job_alloc(st->job_id, st->attempt, st->nranks, cfg);
    snprintf(j->state_path, sizeof j->state_path, "%s", state_path);
    snprintf(j->spool, sizeof j->spool, "%s", st->spool);
    snprintf(j->name, sizeof j->name, "%s", st->name);
    j->first_rank = st->first_rank;
    j->adopted = 1;
    j->started = 1;
    j->start_wall_ms = st->start_wall_ms;
    j->time_limit_s = st->time_limit_s;
    /* The spool's owner is the job's account: the one its files must belong to. */
    struct stat sd;
    if (lstat(j->spool, &sd) == 0 && S_ISDIR(sd.st_mode)) {
        j->uid = sd.st_uid;
        j->gid = sd.st_gid;
    }
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/job.log", j->spool);
    j->log_fd = spool_open(j, p, O_RDWR | O_CREAT | O_APPEND);
    for (int i = 0; i < j->nranks; i++) {
        job_rank_t *r = &j->ranks[i];
        r->grank = j->first_rank + (uint32_t) i;
        r->pgid = st->pgid[i];
        r->alive = !st->ended && r->pgid > 0 && (kill(-r->pgid, 0) == 0 || errno == EPERM);
        if (!st->ended && !r->alive) /* it ended while no worker watched */
            adopted_rank_ended(j, i, wq_clock_mono_ms());
        if (j->merged) {
            out_path(p, sizeof p, j, r);
            r->out_fd = spool_open(j, p, O_RDONLY);
        }
    }
    pos_load(j);
    if (st->ended) {
        j->phase = JOB_ENDED;
        j->exit_code = st->exit_code;
        j->signal = st->signal;
        j->timed_out = st->timed_out;
        j->killed = st->killed;
        j->failed_rank = st->failed_rank;
        snprintf(j->reason, sizeof j->reason, "%s", st->reason);
        j->log_bytes = st->log_bytes;
    } else if (j->time_limit_s > 0) {
        int64_t left = st->start_wall_ms + j->time_limit_s * 1000 - wq_clock_wall_ms();
        j->deadline_ms = wq_clock_mono_ms() + (left > 0 ? left : 0);
    }
    free(st);
    return j;
}

int
job_save(job_t *j, wq_error_t *err)
{
    jobstate_t *st = wq_calloc(1, sizeof *st);
    st->job_id = j->id;
    st->attempt = j->attempt;
    snprintf(st->name, sizeof st->name, "%s", j->name);
    st->first_rank = j->first_rank;
    st->nranks = j->nranks;
    for (int i = 0; i < j->nranks; i++)
        st->pgid[i] = j->ranks[i].pgid;
    snprintf(st->spool, sizeof st->spool, "%s", j->spool);
    st->start_wall_ms = j->start_wall_ms;
    st->time_limit_s = j->time_limit_s;
    st->ended = j->phase == JOB_ENDED;
    st->exit_code = j->exit_code;
    st->signal = j->signal;
    st->timed_out = j->timed_out;
    st->killed = j->killed;
    st->failed_rank = j->failed_rank;
    snprintf(st->reason, sizeof st->reason, "%s", j->reason);
    st->log_bytes = j->log_bytes;
    int rc = jobstate_write(j->state_path, st, err);
    if (rc < 0 && err != NULL && err->sys_errno == ENOSPC && j->no_space != NULL &&
        j->no_space(j->no_space_arg))
        rc = jobstate_write(j->state_path, st, err); /* a finished job must not look lost */
    free(st);
    return rc;
}

void
job_forget(job_t *j)
{
    unlink(j->state_path);
}

void
job_stop(job_t *j, int64_t grace_ms, int timed_out, const char *reason, int64_t now_ms)
{
    if (j->phase == JOB_ENDED)
        return;
    if (grace_ms <= 0)
        grace_ms = j->grace_ms;
    if (!j->timed_out && !j->killed) {
        if (timed_out)
            j->timed_out = 1;
        else if (reason != NULL) {
            j->killed = 1;
            snprintf(j->kill_reason, sizeof j->kill_reason, "%s", reason);
        }
    }
    if (j->phase == JOB_STOPPING) {
        if (j->kill_at_ms == 0 || now_ms + grace_ms < j->kill_at_ms)
            j->kill_at_ms = now_ms + grace_ms; /* a shorter grace wins */
        return;
    }
    j->phase = JOB_STOPPING;
    for (int i = 0; i < j->nranks; i++)
        signal_rank(&j->ranks[i], SIGTERM);
    j->kill_at_ms = now_ms + grace_ms;
}

/* A rank ended with this wait status: the first failure of the job, and its gang stops. */
static void
rank_ended(job_t *j, int i, int status, int64_t now_ms)
{
    job_rank_t *r = &j->ranks[i];
    r->alive = 0;
    r->status = status;
    int bad = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    if (bad && !j->have_fail) {
        j->have_fail = 1;
        j->fail_lrank = i;
        j->fail_cause = j->phase == JOB_RUNNING;
    }
    if (bad && j->phase == JOB_RUNNING)
        /* The others go too, with a short grace: a broken gang must be gone within 5 s. */
        job_stop(j, j->grace_ms < GANG_GRACE_MS ? j->grace_ms : GANG_GRACE_MS, 0, NULL, now_ms);
}

/* An adopted rank's session is gone: its wait status is what wslq-rank wrote. */
static void
adopted_rank_ended(job_t *j, int i, int64_t now_ms)
{
    job_rank_t *r = &j->ranks[i];
    char p[PATH_MAX + 32];
    rank_path(p, sizeof p, j, "rank", r->grank, ".status");
    int fd = spool_open(j, p, O_RDONLY);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (f == NULL && fd >= 0)
        close(fd);
    int status = 0;
    int known = f != NULL && fscanf(f, "%d", &status) == 1;
    if (f != NULL)
        fclose(f);
    if (!known) {
        r->alive = 0;
        j->status_lost = 1; /* killed with its wslq-rank, or started without one */
        return;
    }
    rank_ended(j, i, status, now_ms);
    log_flag(WORKER, "adopted rank ended " JOB_FMT " rank=%" PRIu32 " status=%d", j->id, r->grank,
             status);
}

/* Why a rank's switch to the job's account failed (exec_stage >= RUNAS_STAGE_GROUPS). */
static void
switch_failure(const job_t *j, const job_rank_t *r, char *buf, size_t n)
{
    static const char *const step[] = {"setgroups", "setgid", "setuid"};
    int k = r->exec_stage - RUNAS_STAGE_GROUPS;
    if (r->exec_stage == RUNAS_STAGE_CHECK)
        snprintf(buf, n,
                 "cannot switch to account '%s': the ids read back differ, or root could "
                 "be regained; nothing was run",
                 j->user);
    else
        snprintf(buf, n, "cannot switch to account '%s': %s: %s", j->user,
                 k >= 0 && k < 3 ? step[k] : "?", strerror(r->exec_errno));
}

int
job_reap(job_t *j, pid_t pid, int status, int64_t now_ms)
{
    for (int i = 0; i < j->nranks; i++) {
        job_rank_t *r = &j->ranks[i];
        if (r->pid != pid || !r->alive)
            continue;
        if (r->errfd >= 0) {
            int msg[2];
            if (read(r->errfd, msg, sizeof msg) == (ssize_t) sizeof msg) {
                r->exec_stage = msg[0];
                r->exec_errno = msg[1];
                char why[400];
                if (msg[0] >= RUNAS_STAGE_GROUPS)
                    switch_failure(j, r, why, sizeof why);
                else
                    snprintf(why, sizeof why, "%s%s: %s", msg[0] == 1 ? "cannot chdir for " : "",
                             msg[0] == 1 ? "rank" : j->argv0,
                             msg[1] == ENOENT && msg[0] == 2 ? "command not found"
                                                             : strerror(msg[1]));
                rank_note(j, r, why);
            }
            close(r->errfd);
            r->errfd = -1;
        }
        rank_ended(j, i, status, now_ms);
        log_flag(WORKER, "rank exited " JOB_FMT " rank=%" PRIu32 " status=%d", j->id, r->grank,
                 status);
        return 1;
    }
    return 0;
}

/* Copy complete lines of one rank's output into job.log with a "[rank G] " prefix. final:
 * also the unterminated tail (the rank is gone). */
static void
merge_rank(job_t *j, job_rank_t *r, int final)
{
    if (r->out_fd < 0 || j->log_fd < 0)
        return;
    char *in = wq_malloc(MERGE_BUF);
    char prefix[32];
    int pl = snprintf(prefix, sizeof prefix, "[rank %" PRIu32 "] ", r->grank);
    for (int step = 0; step < MERGE_STEPS; step++) {
        ssize_t n = pread(r->out_fd, in, MERGE_BUF, (off_t) r->out_pos);
        if (n <= 0)
            break;
        size_t take = 0; /* bytes of complete lines */
        for (ssize_t k = n - 1; k >= 0; k--)
            if (in[k] == '\n') {
                take = (size_t) k + 1;
                break;
            }
        if (take == 0 && (final || (size_t) n == MERGE_BUF))
            take = (size_t) n; /* a line longer than the buffer, or the last words */
        if (take == 0)
            break;
        /* each line grows by the prefix, plus a newline for a cut line */
        size_t lines = 1;
        for (size_t k = 0; k < take; k++)
            lines += in[k] == '\n';
        char *out = wq_malloc(take + lines * ((size_t) pl + 1));
        size_t o = 0, s = 0;
        while (s < take) {
            const char *nl = memchr(in + s, '\n', take - s);
            size_t e = nl ? (size_t) (nl - in) + 1 : take;
            memcpy(out + o, prefix, (size_t) pl);
            o += (size_t) pl;
            memcpy(out + o, in + s, e - s);
            o += e - s;
            if (nl == NULL)
                out[o++] = '\n';
            s = e;
        }
        ssize_t w = write(j->log_fd, out, o);
        free(out);
        if (w != (ssize_t) o)
            break;
        r->out_pos += take;
        j->pos_dirty = 1;
        if ((size_t) n < MERGE_BUF)
            break;
    }
    free(in);
}

static const char *
sig_name(int sig)
{
    const char *s = strsignal(sig);
    return s ? s : "unknown signal";
}

static void
finish(job_t *j)
{
    for (int i = 0; i < j->nranks; i++) {
        job_rank_t *r = &j->ranks[i];
        if (r->pgid > 0)
            kill(-r->pgid, SIGKILL); /* stragglers a rank left behind in its group */
        if (j->merged)
            merge_rank(j, r, 1);
    }
    j->exit_code = 0;
    j->signal = 0;
    j->failed_rank = -1;
    j->reason[0] = '\0';
    if (j->have_fail) {
        job_rank_t *r = &j->ranks[j->fail_lrank];
        if (r->status >= 0 && WIFEXITED(r->status)) {
            j->exit_code = WEXITSTATUS(r->status);
        } else if (r->status >= 0 && WIFSIGNALED(r->status)) {
            j->exit_code = -1;
            j->signal = WTERMSIG(r->status);
        } else if (j->exit_code == 0) {
            j->exit_code = 1;
        }
        if (j->fail_cause) {
            j->failed_rank = (int) r->grank;
            if (r->exec_stage == 2)
                snprintf(j->reason, sizeof j->reason, "rank %" PRIu32 ": cannot run '%.100s': %s",
                         r->grank, j->argv0,
                         r->exec_errno == ENOENT ? "command not found" : strerror(r->exec_errno));
            else if (r->exec_stage == 1)
                snprintf(j->reason, sizeof j->reason, "rank %" PRIu32 ": cannot chdir: %s",
                         r->grank, strerror(r->exec_errno));
            else if (r->exec_stage >= RUNAS_STAGE_GROUPS) {
                char why[200];
                switch_failure(j, r, why, sizeof why);
                snprintf(j->reason, sizeof j->reason, "rank %" PRIu32 ": %s", r->grank, why);
            } else if (j->signal)
                snprintf(j->reason, sizeof j->reason, "rank %" PRIu32 " killed by signal %d (%s)",
                         r->grank, j->signal, sig_name(j->signal));
            else
                snprintf(j->reason, sizeof j->reason, "rank %" PRIu32 " exited with code %d",
                         r->grank, j->exit_code);
        }
    }
    if (j->status_lost && !j->have_fail)
        j->exit_code = -1; /* a rank's status went with the worker that started it */
    if (j->timed_out) {
        char d[32];
        snprintf(j->reason, sizeof j->reason, "time limit of %s reached",
                 wq_format_duration(j->time_limit_s, d, sizeof d));
    } else if (j->killed) {
        snprintf(j->reason, sizeof j->reason, "%s", j->kill_reason);
    } else if (j->status_lost && !j->have_fail) {
        snprintf(j->reason, sizeof j->reason, "worker restarted; exit status lost");
    }
    j->phase = JOB_ENDED;
    j->log_bytes = job_log_size(j);
    pos_save(j);
    wq_error_t err = {0};
    if (job_save(j, &err) < 0)
        log_warn("cannot save job state " JOB_FMT " err=\"%s\"", j->id, err.text);
    log_info("job ended " JOB_FMT " exit=%d signal=%d timed_out=%d killed=%d reason=\"%s\"", j->id,
             j->exit_code, j->signal, j->timed_out, j->killed, j->reason);
}

int
job_poll(job_t *j, int64_t now_ms)
{
    if (j->phase == JOB_ENDED)
        return 0;
    if (j->phase == JOB_RUNNING && j->deadline_ms > 0 && now_ms >= j->deadline_ms)
        job_stop(j, 0, 1, NULL, now_ms);
    if (j->phase == JOB_STOPPING && j->kill_at_ms > 0 && now_ms >= j->kill_at_ms) {
        for (int i = 0; i < j->nranks; i++)
            signal_rank(&j->ranks[i], SIGKILL);
        j->kill_at_ms = now_ms + KILL_REPEAT;
    }
    int alive = 0;
    for (int i = 0; i < j->nranks; i++) {
        job_rank_t *r = &j->ranks[i];
        if (r->alive && r->pid == 0 && kill(-r->pgid, 0) < 0 && errno == ESRCH)
            adopted_rank_ended(j, i, now_ms); /* not our child: we watched its group */
        alive += r->alive;
        if (j->merged)
            merge_rank(j, r, 0);
    }
    if (alive == 0) {
        finish(j);
        return 1;
    }
    pos_save(j);
    return 0;
}

int64_t
job_next_deadline(const job_t *j)
{
    if (j->phase == JOB_RUNNING)
        return j->deadline_ms;
    if (j->phase == JOB_STOPPING)
        return j->kill_at_ms;
    return 0;
}

uint64_t
job_log_size(const job_t *j)
{
    struct stat st;
    if (j->log_fd < 0 || fstat(j->log_fd, &st) < 0)
        return 0;
    return (uint64_t) st.st_size;
}

ssize_t
job_log_read(const job_t *j, uint64_t off, void *buf, size_t n)
{
    if (j->log_fd < 0)
        return -1;
    return pread(j->log_fd, buf, n, (off_t) off);
}

size_t
job_metrics(job_t *j, int ri, char ***lines, size_t max_lines)
{
    *lines = NULL;
    job_rank_t *r = &j->ranks[ri];
    if (r->met_fd < 0) {
        char p[PATH_MAX + 32];
        rank_path(p, sizeof p, j, "metrics", r->grank, ".jsonl");
        r->met_fd = spool_open(j, p, O_RDONLY);
        if (r->met_fd < 0)
            return 0;
    }
    char *buf = wq_malloc(MERGE_BUF);
    ssize_t n = pread(r->met_fd, buf, MERGE_BUF, (off_t) r->met_pos);
    size_t count = 0, s = 0;
    while (n > 0 && s < (size_t) n && count < max_lines) {
        char *nl = memchr(buf + s, '\n', (size_t) n - s);
        if (nl == NULL) {
            if (s == 0 && (size_t) n == MERGE_BUF)
                s = (size_t) n; /* a line longer than any limit: skip it */
            break;
        }
        size_t e = (size_t) (nl - buf), len = e - s;
        if (len > 0 && buf[e - 1] == '\r')
            len--;
        if (len >= 2 && len <= WIRE_MAX_METRIC_LINE && buf[s] == '{' && buf[s + len - 1] == '}' &&
            memchr(buf + s, '\0', len) == NULL) {
            if (*lines == NULL)
                *lines = wq_calloc(max_lines, sizeof **lines);
            (*lines)[count++] = wq_strndup(buf + s, len);
        }
        s = e + 1;
    }
    if (s > 0) {
        r->met_pos += s;
        j->pos_dirty = 1;
    }
    free(buf);
    return count;
}

void
job_destroy(job_t **jp)
{
    if (jp == NULL || *jp == NULL)
        return;
    job_t *j = *jp;
    for (int i = 0; i < j->nranks; i++) {
        job_rank_t *r = &j->ranks[i];
        if (r->errfd >= 0)
            close(r->errfd);
        if (r->out_fd >= 0)
            close(r->out_fd);
        if (r->met_fd >= 0)
            close(r->met_fd);
    }
    if (j->log_fd >= 0)
        close(j->log_fd);
    free(j->ranks);
    free(j);
    *jp = NULL;
}
