/* Working-directory snapshots and job output, scheduler side (README "No shared file
 * system"; the messages in proto/README.md "Snapshots and output").
 *
 *   <state>/snapshots/<user>/<sha256>.tar.gz   one per user and content, shared by its jobs
 *   <state>/snapshots/<user>/<sha256>.part     an upload in progress
 *   <state>/outputs/<job id>/<node>.tar.gz     what --output brought back from each node
 *
 * A snapshot belongs to the user who uploaded it: a submit names one of its own (by hash),
 * and a worker fetches only the snapshot of a job placed on it. One no active job refers to
 * is removed snapshot_retention after it was last used (uploaded, submitted, or its last job
 * ended); a partial upload the same time after its last chunk; an output output_retention
 * after it came. Loop thread only. */
#ifndef WSLQ_SCHEDULER_SNAPSHOTS_H
#define WSLQ_SCHEDULER_SNAPSHOTS_H

#include <stdint.h>

#include "common/err.h"

struct sched;
struct msg;
struct job;

#define SNAP_WORKDIR_MAX_DEFAULT    (100ull << 20)
#define SNAP_OUTPUT_MAX_DEFAULT     (100ull << 20)
#define SNAP_RETENTION_MS_DEFAULT   (3600LL * 1000)
#define OUTPUT_RETENTION_MS_DEFAULT (7LL * 86400 * 1000)

void handle_snap_put(struct sched *self, const struct msg *m);
void handle_snap_get(struct sched *self, const struct msg *m);
void handle_output_put(struct sched *self, const struct msg *m);
void handle_fetch(struct sched *self, const struct msg *m);

/* A submit naming a snapshot: it must be the sender's and stored. 0, or -1 with *err. */
int snapshots_admit(struct sched *self, const struct msg *m, const void *spec, wq_error_t *err);
/* A job left the active set: its snapshot's retention starts now. */
void snapshots_job_gone(struct sched *self, const struct job *job);
/* Removal of what is past its retention; when it is next due (mono ms). */
void snapshots_tick(struct sched *self, int64_t now);
int64_t snapshots_next_timer(struct sched *self);
void snapshots_free(struct sched *self);
/* The scheduler's configuration keys of this feature (workdir_max_mb, output_max_mb,
 * snapshot_retention, output_retention) into cfg (a sched_config_t): 1 taken, 0 not one of
 * them, -1 a bad value with *err. */
int snapshots_config_apply(void *cfg, const char *key, const char *v, wq_error_t *err);

#endif
