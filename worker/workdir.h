/* --workdir and --output on the worker (README "No shared file system"):
 *
 * A JobLaunch whose spec names a snapshot (workdir_hash) waits here while the snapshot comes
 * from the scheduler in chunks (SnapshotGet / SnapshotData) into <state>/snapdl/; its
 * SHA-256 is checked, and it is unpacked, as the job's account, into the job's work area
 * <state>/spool/<id>.<attempt>/work, which becomes the ranks' working directory. A snapshot
 * that cannot be fetched or unpacked ends the job with a reason naming it and this node.
 *
 * A job with --output: once its ranks are gone, the output directory (work/<output>) is
 * packed as the job's account and sent (OutputPut, each chunk answered) before the JobEnded,
 * so the output is stored when the job ends. An output that cannot be packed is reported
 * with the reason (wslq fetch shows it). Not kept across a worker restart. */
#ifndef WSLQ_WORKER_WORKDIR_H
#define WSLQ_WORKER_WORKDIR_H

#include <stdint.h>

#include "proto/wire.h"

struct worker;
struct job;

/* A launch: 1 when it waits here for its snapshot (the caller does nothing more), 0 when it
 * goes on as usual (no snapshot, or the snapshot is ready and spec->cwd set). */
int workdir_launch(struct worker *w, const Wslq__JobLaunch *l);
void workdir_snap_data(struct worker *w, const Wslq__SnapshotData *d, int64_t now);
void workdir_output_reply(struct worker *w, const Wslq__OutputPutReply *r);
/* Resend what went unanswered. */
void workdir_tick(struct worker *w, int64_t now);
/* 1 when the job's JobEnded may go (no output, or it was sent or given up); drives the
 * packing and sending otherwise. */
int workdir_output_ready(struct worker *w, struct job *j, int64_t now);
/* JobKill for a job still waiting for its snapshot: it ends at once (JobEnded with the kill's
 * reason) and 1 is returned; 0 when no such job waits here. */
int workdir_kill(struct worker *w, uint64_t job_id, uint32_t attempt, const char *reason);
void workdir_destroy(struct worker *w);

#endif
