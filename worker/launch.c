/* Starting a job's ranks on this node: the spool directory, each rank's environment and
 * account, the launch through the rank keeper (keeper.h; else vfork + exec under wslq-rank),
 * and the ending of a job that could not start (see job.h). What happens after the start is
 * job.c. */
#define _GNU_SOURCE /* pipe2 */
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
#include "worker/childexec.h"
#include "worker/job_int.h"
#include "worker/jobstate.h"

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
    isol_job_end(j);
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

/* Start one rank. vfork: no copy of the worker's page tables, so a launch costs the same
 * whatever the worker's size (fork of a process with 20 MiB touched measured 3.5 ms here, a
 * vfork-based spawn 0.4 ms). The child runs child_exec() (childexec.h) and never returns here; kept
 * in a function of its own so nothing of the caller's frame lives across the vfork. */
static __attribute__((noinline)) pid_t
spawn_rank(const child_spec_t *c)
{
    pid_t pid = vfork();
    if (pid == 0)
        child_exec(c);
    return pid;
}

static int
pipe_cloexec(int fds[2])
{
    return pipe2(fds, O_CLOEXEC);
}

job_t *
job_launch(const Wslq__JobLaunch *l, const job_cfg_t *cfg)
{
    const Wslq__JobSpec *spec = l->spec;
    int nranks = jobenv_nranks(l);
    job_t *j = job_alloc(l->job_id, l->attempt, nranks, cfg);
    j->first_rank = l->alloc ? l->alloc->first_rank : 0;
    for (size_t g = 0; l->alloc != NULL && g < l->alloc->n_gpus; g++)
        if (l->alloc->gpus[g] < WIRE_MAX_GPUS)
            j->gpus |= 1ULL << l->alloc->gpus[g];
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
    int fresh = 0; /* a file just created is empty already */
    j->log_fd = job_spool_open_made(j, p, O_RDWR | O_CREAT | O_APPEND, &fresh);
    if (j->log_fd < 0 || (!fresh && ftruncate(j->log_fd, 0) < 0)) {
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
        char why[400];
        snprintf(why, sizeof why, "cannot use working directory %.150s on %.64s: %s", cwd,
                 cfg->env.node ? cfg->env.node : "this node",
                 errno ? strerror(errno) : "not a directory");
        if (stat(cwd, &st) == 0 && !S_ISDIR(st.st_mode))
            snprintf(why, sizeof why,
                     "cannot use working directory %.150s on %.64s: not a directory", cwd,
                     cfg->env.node ? cfg->env.node : "this node");
        return end_early(j, 1, why);
    }

    /* A batch script sent with the job: written into the spool, the account's and 0700, and
     * run in place of argv[0] (the kernel reads its "#!" line). */
    char script[PATH_MAX + 32];
    script[0] = '\0';
    if (spec->script.len > 0) {
        snprintf(script, sizeof script, "%s/job.script", j->spool);
        unlink(script);
        int sfd = job_spool_open(j, script, O_WRONLY | O_CREAT);
        size_t done = 0;
        while (sfd >= 0 && done < spec->script.len) {
            ssize_t w = write(sfd, spec->script.data + done, spec->script.len - done);
            if (w <= 0)
                break;
            done += (size_t) w;
        }
        if (sfd < 0 || done < spec->script.len || fchmod(sfd, 0700) < 0) {
            char why[256];
            snprintf(why, sizeof why, "cannot write the batch script %.150s: %s", script,
                     strerror(errno));
            if (sfd >= 0)
                close(sfd);
            return end_early(j, 1, why);
        }
        close(sfd);
    }

    /* --container: the engine, checked before any rank starts */
    const char *image = spec->container != NULL && *spec->container ? spec->container : NULL;
    char engine[PATH_MAX];
    int docker = 0;
    if (image != NULL) {
        if (container_engine(&cfg->container, getenv("PATH"), engine, sizeof engine, &docker) < 0) {
            char why[PATH_MAX + 128];
            snprintf(why, sizeof why,
                     "--container: %.200s is not installed on this node (worker "
                     "container_engine)",
                     cfg->container.engine && *cfg->container.engine ? cfg->container.engine
                                                                     : "neither podman nor docker");
            return end_early(j, 1, why);
        }
        /* the containers' names, for `ENGINE rm -f` when the job is stopped */
        char **names = wq_calloc((size_t) nranks, sizeof *names);
        for (int i = 0; i < nranks; i++) {
            names[i] = wq_malloc(256);
            container_name(names[i], 256, cfg->env.node, cfg->state_dir, l->job_id, l->attempt,
                           j->ranks[i].grank);
        }
        j->ctr_rm = container_rm_argv(engine, docker, cfg->container.flags, names, (size_t) nranks);
        for (int i = 0; i < nranks; i++)
            free(names[i]);
        free(names);
    }

    /* Isolation (isol.h): the job's CPUs, its cgroup or the memory watch */
    const isol_cpus_t *bind = NULL;
    int procs_fd = -1;
    if (cfg->isol != NULL)
        bind = isol_job_setup(j, cfg->isol, cfg->cpu_use, spec, &procs_fd);

    int nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
    jobenv_ctx_t ec = cfg->env;
    ec.cpus = j->cpulist;
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
        char *exe = script[0] ? wq_strdup(script) : find_exe(argv[0], jobenv_get(envp, "PATH"));
        if (image != NULL) {
            /* the engine's client is the rank; the program runs inside */
            char name[256];
            container_name(name, sizeof name, cfg->env.node, cfg->state_dir, l->job_id, l->attempt,
                           r->grank);
            container_rank_t cr = {
                engine, docker, cfg->container.flags, name, image, cwd, j->spool, j->uid, j->gid,
                l,      i};
            char **cargv = container_argv(&cr, script[0] ? script : NULL, argv, envp);
            jobenv_free(&argv);
            argv = cargv;
            free(exe);
            exe = wq_strdup(engine);
        }
        job_out_path(p, sizeof p, j, r);
        /* one rank writes the job's log through the worker's own descriptor of it (O_APPEND),
         * which the launch passes on; ranks of a merged job each get a file of their own */
        int outfd = j->merged ? job_spool_open(j, p, O_WRONLY | O_APPEND | O_CREAT) : j->log_fd;
        if (outfd >= 0 && j->merged && ftruncate(outfd, 0) < 0) {
            close(outfd);
            outfd = -1;
        }
        if (j->merged)
            r->out_fd = job_spool_open(j, p, O_RDONLY);
        /* made here, 0600 and the account's, rather than by the rank with its umask */
        job_rank_path(p, sizeof p, j, "metrics", r->grank, ".jsonl");
        r->met_fd = job_spool_open(j, p, O_RDONLY | O_CREAT);
        int ep[2] = {-1, -1};
        pid_t pid = cfg->keeper != NULL ? -1 : -2;
        int saved = 0;
        char **sargv = NULL;
        if (outfd >= 0 && nullfd >= 0 && pipe_cloexec(ep) == 0) {
            char stp[PATH_MAX + 32];
            job_rank_path(stp, sizeof stp, j, "rank", r->grank, ".status");
            if (cfg->keeper != NULL) {
                /* the rank keeper forks and execs the program itself (keeper.h) */
                pid = keeper_launch(cfg->keeper, stp, exe, cwd, argv, envp, nullfd, outfd, ep[1],
                                    acct, j->uid, j->gid, bind, procs_fd);
                if (pid > 0)
                    r->kept = 1;
            }
            if (pid == -2 && cfg->rank_exe != NULL && exe != NULL) {
                /* wslq-rank STATUS ERRFD PROGRAM ARGV...: built here, the vfork child may
                 * not allocate */
                size_t na = 0;
                while (argv[na] != NULL)
                    na++;
                sargv = wq_calloc(na + 5, sizeof *sargv);
                char fdtxt[16];
                snprintf(fdtxt, sizeof fdtxt, "%d", ep[1]);
                sargv[0] = (char *) "wslq-rank";
                sargv[1] = stp;
                sargv[2] = fdtxt;
                sargv[3] = exe;
                for (size_t a = 0; a < na; a++)
                    sargv[4 + a] = argv[a];
                child_spec_t c = {cwd, cfg->rank_exe, sargv, envp,     nullfd, outfd, ep[1],
                                  1,   acct,          bind,  procs_fd, NULL,   0};
                pid = spawn_rank(&c);
            } else if (pid == -2) {
                child_spec_t c = {cwd, exe,  argv, envp,     nullfd, outfd, ep[1],
                                  0,   acct, bind, procs_fd, NULL,   0};
                pid = spawn_rank(&c);
            }
        }
        saved = errno;
        free(sargv);
        if (ep[1] >= 0)
            close(ep[1]);
        if (outfd >= 0 && outfd != j->log_fd)
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
                job_signal_rank(&j->ranks[k], SIGKILL);
            j->have_fail = 1;
            j->fail_lrank = i;
            j->fail_cause = 1;
            j->exit_code = 1;
            j->failed_rank = (int) r->grank;
            snprintf(j->reason, sizeof j->reason, "%s", why);
            if (i == 0) {
                if (nullfd >= 0)
                    close(nullfd);
                if (procs_fd >= 0)
                    close(procs_fd);
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
    if (procs_fd >= 0)
        close(procs_fd);
    if (j->phase == JOB_RUNNING) {
        j->started = 1;
        j->start_wall_ms = wq_clock_wall_ms();
        if (j->time_limit_s > 0)
            j->deadline_ms = now + j->time_limit_s * 1000;
    }
    return j;
}
