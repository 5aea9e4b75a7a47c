/* Job ranks on this node once started: spool files, adoption after a restart, reaping, output
 * merging, time limit, kill escalation, the ending (see job.h). Starting them is launch.c. */
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
#include "worker/job_int.h"
#include "worker/jobstate.h"

#define GANG_GRACE_MS 3000 /* SIGTERM to SIGKILL for a rank's siblings after it failed */

#define MERGE_BUF   (64u << 10) /* bytes read from a rank file per step */
#define MERGE_STEPS 16          /* steps per rank per poll: bounds one poll's work */

void
job_rank_path(
    char *buf, size_t n, const job_t *j, const char *what, uint32_t grank, const char *ext)
{
    snprintf(buf, n, "%s/%s-%" PRIu32 "%s", j->spool, what, grank, ext);
}

/* The path a rank's output goes to: job.log for a single rank, rank-<G>.out otherwise. */
void
job_out_path(char *buf, size_t n, const job_t *j, const job_rank_t *r)
{
    if (j->merged)
        job_rank_path(buf, n, j, "rank", r->grank, ".out");
    else
        snprintf(buf, n, "%s/job.log", j->spool);
}

/* Open a file in the job's spool as the worker. The directory belongs to the job's account,
 * which may have put anything there (a link to /etc/shadow, a FIFO, a hard link, a file of
 * someone else's) while the worker runs as root: so no symlink is followed, and only a plain
 * file with one link that the account owns is taken, or one this call created (0600, then
 * given to the account). No O_TRUNC here: a file is truncated (ftruncate) only once it passed.
 * -1 with errno otherwise. With O_CREAT a new file is tried first (a fresh spool has none):
 * O_EXCL opens no FIFO, so that open needs no O_NONBLOCK to take off again. *made (if not
 * NULL): 1 when this call created the file. */
int
job_spool_open_made(const job_t *j, const char *path, int flags, int *made_out)
{
    int base = (flags & ~O_CREAT) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
    int fd = -1, made = 0, nonblock = 1;
    if (flags & O_CREAT) {
        fd = open(path, (base & ~O_NONBLOCK) | O_CREAT | O_EXCL, 0600);
        made = fd >= 0;
        nonblock = !made;
        if (fd < 0 && errno != EEXIST)
            return -1;
    }
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
    if (made_out != NULL)
        *made_out = made;
    if (nonblock || (flags & O_NONBLOCK))
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK); /* it was for a FIFO's open */
    return fd;
}

int
job_spool_open(const job_t *j, const char *path, int flags)
{
    return job_spool_open_made(j, path, flags, NULL);
}

/* Append one line written by the worker itself to the rank's output. */
static void
rank_note(const job_t *j, const job_rank_t *r, const char *msg)
{
    char p[PATH_MAX + 32];
    job_out_path(p, sizeof p, j, r);
    int fd = job_spool_open(j, p, O_WRONLY | O_APPEND | O_CREAT);
    if (fd < 0)
        return;
    char *line = wq_asprintf("wslq: %s\n", msg);
    ssize_t w = write(fd, line, strlen(line));
    (void) w;
    free(line);
    close(fd);
}

job_t *
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
    j->state_fd = -1;
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

void
job_signal_rank(job_rank_t *r, int sig)
{
    if (!r->alive)
        return;
    /* The group holds the rank's first process (its leader, after its setsid): once the group
     * took the signal the process is not sent it again, which a rank that handles its
     * SIGTERM (a checkpoint) between the two would see twice */
    if (r->pgid > 0 && kill(-r->pgid, sig) == 0)
        return;
    if (r->pid > 0)
        kill(r->pid, sig); /* before the child's setsid the group does not exist yet */
}

/* Read the pos file (2+ ranks, metrics): "out_pos met_pos" per rank. */
static void
pos_load(job_t *j)
{
    char p[PATH_MAX + 8];
    snprintf(p, sizeof p, "%s/pos", j->spool);
    int fd = job_spool_open(j, p, O_RDONLY);
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
    int fd = job_spool_open(j, p, O_WRONLY | O_CREAT);
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
    j->log_fd = job_spool_open(j, p, O_RDWR | O_CREAT | O_APPEND);
    for (int i = 0; i < j->nranks; i++) {
        job_rank_t *r = &j->ranks[i];
        r->grank = j->first_rank + (uint32_t) i;
        r->pgid = st->pgid[i];
        r->alive = !st->ended && r->pgid > 0 && (kill(-r->pgid, 0) == 0 || errno == EPERM);
        if (!st->ended && !r->alive) /* it ended while no worker watched */
            adopted_rank_ended(j, i, wq_clock_mono_ms());
        if (j->merged) {
            job_out_path(p, sizeof p, j, r);
            r->out_fd = job_spool_open(j, p, O_RDONLY);
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
    } else {
        if ((st->killed || st->timed_out) && j->phase != JOB_ENDED) {
            /* it was being stopped: its SIGTERM went out, a kill again sends none; the
             * SIGKILL comes a grace from now (the one it had was the old worker's) */
            j->phase = JOB_STOPPING;
            j->killed = st->killed;
            j->timed_out = st->timed_out;
            snprintf(j->kill_reason, sizeof j->kill_reason, "%s", st->reason);
            j->kill_at_ms = wq_clock_mono_ms() + j->grace_ms;
        }
        if (j->time_limit_s > 0) {
            int64_t left = st->start_wall_ms + j->time_limit_s * 1000 - wq_clock_wall_ms();
            j->deadline_ms = wq_clock_mono_ms() + (left > 0 ? left : 0);
        }
    }
    if (!st->ended)
        isol_job_adopt(j, cfg->isol);
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
    /* while stopping, the kill's reason: a worker restarted meanwhile goes on stopping it */
    snprintf(st->reason, sizeof st->reason, "%s", st->ended ? j->reason : j->kill_reason);
    st->log_bytes = j->log_bytes;
    int rc = jobstate_rewrite(j->state_path, st, &j->state_fd, err);
    if (rc < 0 && err != NULL && err->sys_errno == ENOSPC && j->no_space != NULL &&
        j->no_space(j->no_space_arg)) /* a finished job must not look lost */
        rc = jobstate_rewrite(j->state_path, st, &j->state_fd, err);
    free(st);
    return rc;
}

void
job_forget(job_t *j)
{
    jobstate_forget(j->state_path);
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
    j->kill_at_ms = now_ms + grace_ms;
    /* Saved before the SIGTERM goes out: a worker restarted afterwards sends no second one.
     * Saved after, a rank could act on its SIGTERM (a checkpoint, a line in a file) while the
     * state still said "running", and a worker killed then would send it again. */
    wq_error_t err = {0};
    if (j->state_path[0] != '\0' && job_save(j, &err) < 0)
        log_warn("cannot save job state " JOB_FMT " err=\"%s\"", j->id, err.text);
    for (int i = 0; i < j->nranks; i++)
        job_signal_rank(&j->ranks[i], SIGTERM);
    /* a stopped (suspended) rank handles its SIGTERM, a checkpoint, once continued; sent
     * always, as a worker restarted meanwhile does not know which are stopped */
    for (int i = 0; i < j->nranks; i++)
        job_signal_rank(&j->ranks[i], SIGCONT);
    j->suspended = 0;
}

int
job_suspend(job_t *j, int stop, int64_t now_ms)
{
    if (j->phase != JOB_RUNNING || !j->started)
        return 0;
    if (!stop) /* always: a worker restarted meanwhile does not know its ranks are stopped */
        for (int i = 0; i < j->nranks; i++)
            job_signal_rank(&j->ranks[i], SIGCONT);
    if ((stop != 0) == (j->suspended != 0))
        return 0;
    if (stop) {
        for (int i = 0; i < j->nranks; i++)
            job_signal_rank(&j->ranks[i], SIGSTOP);
        j->suspended = 1;
        j->suspended_at_ms = now_ms;
    } else {
        j->suspended = 0;
        if (j->deadline_ms > 0 && now_ms > j->suspended_at_ms)
            j->deadline_ms += now_ms - j->suspended_at_ms;
    }
    return 1;
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
    job_rank_path(p, sizeof p, j, "rank", r->grank, ".status");
    int fd = job_spool_open(j, p, O_RDONLY);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (f == NULL && fd >= 0)
        close(fd);
    int status = 0;
    int known = f != NULL && fscanf(f, "%d", &status) == 1;
    if (f != NULL)
        fclose(f);
    if (!known) {
        r->alive = 0;
        j->status_lost = 1; /* killed with its wslq-rank or keeper, or started without one */
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

/* --container: remove the job's containers, as the job's account (rootless Podman keeps
 * them per account). Once: a container whose client is gone would otherwise run on. */
static void
container_stop(job_t *j)
{
    if (j->ctr_rm == NULL)
        return;
    runas_acct_t acct = {0};
    acct.drop = getuid() == 0 && j->uid != 0;
    acct.uid = j->uid;
    acct.gid = j->gid;
    container_spawn_detached(j->ctr_rm, &acct);
    jobenv_free(&j->ctr_rm);
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
    } else if (j->status_lost && !j->have_fail && j->keeper_lost) {
        snprintf(j->reason, sizeof j->reason, "rank keeper died; exit status lost");
    } else if (j->status_lost && !j->have_fail) {
        snprintf(j->reason, sizeof j->reason, "worker restarted; exit status lost");
    }
    isol_job_end(j); /* over its --mem: that is the reason */
    if (j->have_fail || j->timed_out || j->killed)
        container_stop(j);
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
    if (j->phase == JOB_RUNNING && !j->suspended && j->deadline_ms > 0 && now_ms >= j->deadline_ms)
        job_stop(j, 0, 1, NULL, now_ms);
    isol_job_watch(j, now_ms);
    if (j->phase == JOB_STOPPING && j->kill_at_ms > 0 && now_ms >= j->kill_at_ms) {
        for (int i = 0; i < j->nranks; i++)
            job_signal_rank(&j->ranks[i], SIGKILL);
        j->kill_at_ms = now_ms + KILL_REPEAT;
        container_stop(j);
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
    if (j->phase == JOB_RUNNING) {
        int64_t d = j->suspended ? 0 : j->deadline_ms, m = isol_job_next(j);
        return m > 0 && (d == 0 || m < d) ? m : d;
    }
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
        job_rank_path(p, sizeof p, j, "metrics", r->grank, ".jsonl");
        r->met_fd = job_spool_open(j, p, O_RDONLY);
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
    if (j->phase == JOB_ENDED)
        isol_job_release(j);
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
    if (j->state_fd >= 0)
        close(j->state_fd);
    jobenv_free(&j->ctr_rm);
    free(j->ranks);
    free(j);
    *jp = NULL;
}
