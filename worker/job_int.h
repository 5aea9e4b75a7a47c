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

/* sig to the rank's process group and the rank itself, if it is alive. */
void job_signal_rank(job_rank_t *r, int sig);

#endif
