/* A job's isolation on this node (isol.h): its CPUs and cgroup at launch, the memory watch
 * while it runs, the out-of-memory verdict and the cgroup's removal at its end, and what an
 * adopted job's binding was. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/parse.h"
#include "worker/job_int.h"

#define MIB            ((uint64_t) 1024 * 1024)
#define MEM_WATCH_MS   500 /* between two looks of the memory watch at a job */
#define OOM_KILL_GRACE 1   /* ms: over its --mem, a job gets SIGKILL at the next poll */

const isol_cpus_t *
isol_job_setup(job_t *j, const isol_t *is, const int *use, const Wslq__JobSpec *spec, int *procs_fd)
{
    static const int none[ISOL_MAX_CPUS];
    const isol_cpus_t *bind = NULL;
    *procs_fd = -1;
    if (is->bind == ISOL_BIND_CORES && is->n_avail > 0) {
        int want = spec->cpus_per_node > 0 ? (int) spec->cpus_per_node : 1;
        isol_pick_cpus(&is->avail, use ? use : none, want, &j->cpus);
        isol_cpulist(&j->cpus, j->cpulist, sizeof j->cpulist);
        bind = &j->cpus;
    }
    j->mem_mb = spec->mem_mb_per_node;
    if (is->cg == ISOL_CG_V2 || is->cg == ISOL_CG_V1) {
        wq_error_t err = {0};
        int ncpus = bind ? isol_cpu_count(&j->cpus) : 0;
        int rc = isol_cg_create(is->cg, is->cg_root, j->id, j->attempt, j->mem_mb, ncpus,
                                j->cg_path, sizeof j->cg_path, &err);
        if (rc >= 0) {
            *procs_fd = isol_cg_procs_fd(is->cg, j->cg_path);
            if (*procs_fd < 0) {
                log_warn("cannot join the job's cgroup " JOB_FMT " path=%s", j->id, j->cg_path);
                isol_cg_remove(j->cg_path);
                j->cg_path[0] = '\0';
            } else {
                j->cg_kind = is->cg;
                /* a cgroup made now has had no OOM kill: read only a leftover's count */
                j->cg_oom_before = rc == 1 ? isol_cg_oom_kills(is->cg, j->cg_path) : 0;
            }
        } else {
            j->cg_path[0] = '\0';
            log_warn("no cgroup for the job " JOB_FMT " err=\"%s\": memory watch instead", j->id,
                     err.text);
        }
    }
    if (j->mem_mb > 0 && j->cg_path[0] == '\0' && is->mem_watch &&
        (spec->container == NULL || spec->container[0] == '\0'))
        j->mem_watched = 1;
    return bind;
}

void
isol_job_watch(job_t *j, int64_t now_ms)
{
    if (!j->mem_watched || j->phase != JOB_RUNNING || j->suspended || now_ms < j->mem_next_ms)
        return;
    pid_t pg[64];
    int n = 0;
    for (int i = 0; i < j->nranks && n < 64; i++)
        if (j->ranks[i].alive && j->ranks[i].pgid > 0)
            pg[n++] = j->ranks[i].pgid;
    int64_t t0 = wq_clock_mono_ms();
    uint64_t rss = isol_rss_groups("/proc", pg, n);
    /* a look reads every process's stat: on a machine with thousands of processes it is
     * slow, so the next one waits at least 50 times as long (2 % of a CPU at most) */
    int64_t cost = wq_clock_mono_ms() - t0;
    j->mem_next_ms = now_ms + (cost * 50 > MEM_WATCH_MS ? cost * 50 : MEM_WATCH_MS);
    if (rss > j->mem_used_mb * MIB)
        j->mem_used_mb = rss / MIB; /* the most seen */
    if (rss <= isol_watch_limit(j->mem_mb))
        return;
    j->oom = 1;
    log_warn("job over its memory " JOB_FMT " used_mb=%" PRIu64 " mem_mb=%" PRIu64, j->id,
             rss / MIB, j->mem_mb);
    job_stop(j, OOM_KILL_GRACE, 0, NULL, now_ms);
}

int64_t
isol_job_next(const job_t *j)
{
    return j->mem_watched && j->phase == JOB_RUNNING && !j->suspended ? j->mem_next_ms : 0;
}

void
isol_job_end(job_t *j)
{
    if (j->cg_path[0] != '\0' && j->cg_kind != ISOL_CG_NONE) {
        if (isol_cg_oom_kills(j->cg_kind, j->cg_path) > j->cg_oom_before)
            j->oom = 1;
        uint64_t peak = isol_cg_peak(j->cg_kind, j->cg_path);
        if (peak / MIB > j->mem_used_mb)
            j->mem_used_mb = peak / MIB;
        /* a straggler SIGKILLed just now may still be in it: tried again at job_destroy */
        if (isol_cg_remove(j->cg_path) == 0)
            j->cg_path[0] = '\0';
        j->cg_kind = ISOL_CG_NONE; /* its verdict is taken */
    }
    if (!j->oom)
        return;
    char lim[32];
    wq_format_size_mb((int64_t) j->mem_mb, lim, sizeof lim);
    if (j->mem_used_mb > 0)
        snprintf(j->reason, sizeof j->reason, "used %" PRIu64 " MiB, more than its --mem %s",
                 j->mem_used_mb, lim);
    else
        snprintf(j->reason, sizeof j->reason, "more than its --mem %s (the kernel's OOM killer)",
                 lim);
    if (j->log_fd >= 0) {
        char line[320];
        int len = snprintf(line, sizeof line, "wslq: out of memory: %s\n", j->reason);
        ssize_t w = write(j->log_fd, line, (size_t) len);
        (void) w;
    }
}

void
isol_job_adopt(job_t *j, const isol_t *is)
{
    for (int i = 0; i < j->nranks; i++)
        if (j->ranks[i].pgid > 0 && isol_affinity(j->ranks[i].pgid, &j->cpus) == 0)
            break;
    if (is != NULL && is->bind == ISOL_BIND_CORES && isol_cpu_count(&j->cpus) > 0 &&
        memcmp(&j->cpus, &is->avail, sizeof j->cpus) != 0)
        isol_cpulist(&j->cpus, j->cpulist, sizeof j->cpulist);
    else
        memset(&j->cpus, 0, sizeof j->cpus);
    if (is != NULL && (is->cg == ISOL_CG_V2 || is->cg == ISOL_CG_V1)) {
        char p[PATH_MAX];
        struct stat st;
        int w = snprintf(p, sizeof p, "%s/wslq-job-%" PRIu64 "-%" PRIu32, is->cg_root, j->id,
                         j->attempt);
        if (w > 0 && (size_t) w < sizeof p && stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(j->cg_path, sizeof j->cg_path, "%s", p);
            j->cg_kind = is->cg; /* its OOM kills counted from 0 */
        }
    }
}

void
isol_job_release(job_t *j)
{
    if (j->cg_path[0] == '\0' || j->cg_kind != ISOL_CG_NONE)
        return; /* none, or the job has not ended (a worker stopping leaves it running) */
    if (isol_cg_remove(j->cg_path) < 0)
        log_warn("cannot remove the job's cgroup " JOB_FMT " path=%s err=\"%s\"", j->id, j->cg_path,
                 strerror(errno));
    j->cg_path[0] = '\0';
}
