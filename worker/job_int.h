/* What job.c and launch.c share inside the worker, and nothing else uses: a job's memory,
 * the paths and safe opening of its spool files, signalling a rank. The rest of the worker
 * uses job.h. */
#ifndef WSLQ_WORKER_JOB_INT_H
#define WSLQ_WORKER_JOB_INT_H

#include <stddef.h>
#include <stdint.h>

#include "worker/job.h"

#define KILL_REPEAT 1000 /* ms between SIGKILL repeats for a group that lingers */

/* A job with nranks local ranks, nothing started, spool and state paths set from cfg. */
job_t *job_alloc(uint64_t id, uint32_t attempt, int nranks, const job_cfg_t *cfg);

/* <spool>/<what>-<grank><ext>, e.g. rank-3.status. */
void job_rank_path(
    char *buf, size_t n, const job_t *j, const char *what, uint32_t grank, const char *ext);

/* Where rank r's output goes: job.log for a single rank, rank-<G>.out otherwise. */
void job_out_path(char *buf, size_t n, const job_t *j, const job_rank_t *r);

/* Open a file in the job's spool with no link followed (job.c says what is checked). */
int job_spool_open(const job_t *j, const char *path, int flags);
/* The same, *made set to 1 when the file was created by this call (0 otherwise). */
int job_spool_open_made(const job_t *j, const char *path, int flags, int *made);

/* sig to the rank's process group and the rank itself, if it is alive. */
void job_signal_rank(job_rank_t *r, int sig);

/* isoljob.c: a job's isolation (isol.h). setup at launch: its CPUs (returned, NULL = not
 * bound; use: jobs bound to each CPU now, NULL = none), its cgroup (*procs_fd for the rank
 * children, -1 = none) or the memory watch. watch: the memory watch's look while it runs
 * (over its --mem: stopped, oom set); next: when that look is due (0 = never). end: the
 * cgroup's OOM kills and removal, the out-of-memory reason. adopt: an adopted job's CPUs
 * (its ranks' affinity) and cgroup. The job's cgroup: cg_kind is ISOL_CG_NONE once ended. */
const isol_cpus_t *isol_job_setup(
    job_t *j, const isol_t *is, const int *use, const Wslq__JobSpec *spec, int *procs_fd);
void isol_job_watch(job_t *j, int64_t now_ms);
int64_t isol_job_next(const job_t *j);
void isol_job_end(job_t *j);
void isol_job_adopt(job_t *j, const isol_t *is);
/* An ended job's cgroup that was still busy at its end: removed now (job_destroy). */
void isol_job_release(job_t *j);

#endif
