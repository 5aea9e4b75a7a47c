/* The small file a worker keeps per job it runs, so that a restarted worker can report the
 * job's ranks (which outlive it in their own sessions) and keep watching them, or re-send an
 * ending the scheduler has not acknowledged yet.
 *
 * Path: <state-dir>/jobs/<job_id>.<attempt>.state. Text, "key=value" per line, version 1.
 * Written to a temporary file and renamed, so a reader sees the old or the new content; not
 * fsynced: it only has to survive the worker process, and a machine crash ends the ranks
 * too. Removed when the scheduler acknowledges the job's end. */
#ifndef WSLQ_WORKER_JOBSTATE_H
#define WSLQ_WORKER_JOBSTATE_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "proto/wire.h"

#define JOBSTATE_VERSION 1

typedef struct jobstate {
    uint64_t job_id;
    uint32_t attempt;
    char name[WIRE_MAX_NAME + 1]; /* job name, newlines replaced by spaces */
    uint32_t first_rank;          /* global rank of local rank 0 */
    int nranks;                   /* processes on this node, 1..WIRE_MAX_RANKS */
    pid_t pgid[WIRE_MAX_RANKS];   /* process group (= session) of each local rank */
    char spool[PATH_MAX];         /* the job's spool directory */
    int64_t start_wall_ms;        /* wall clock ms when the ranks were started */
    int64_t time_limit_s;         /* 0 = none */
    int ended;                    /* 1: every rank is gone; the fields below are final */
    int exit_code;                /* as JobEnded.exit_code */
    int signal;                   /* 0 = none */
    int timed_out;                /* 0/1; before the end too: it is being stopped */
    int killed;                   /* 0/1; before the end too: it is being stopped */
    int failed_rank;              /* global rank, -1 = none */
    char reason[256];             /* one line; while being stopped, the kill's reason */
    uint64_t log_bytes;           /* bytes in the job's log when it ended */
} jobstate_t;

/* Write *st to 'path' atomically (temp + rename). 0 or -1 with *err. */
int jobstate_write(const char *path, const jobstate_t *st, wq_error_t *err);

/* The same, for a file written more than once: with *fd < 0, through a temp file and a
 * rename as above, the file then left open in *fd; with *fd open, the file is rewritten in
 * place, with one write from its start of one page at most, never shorter than the file (a
 * shorter text is padded with a "pad=" line), so a process killed meanwhile leaves the old
 * text or the new one, not a mix; a longer text goes through a new file again. No new file a
 * save: on a filesystem
 * without a journal each new inode costs a scan over the inodes freed recently. The caller
 * closes *fd. 0 or -1 with *err. */
int jobstate_rewrite(const char *path, const jobstate_t *st, int *fd, wq_error_t *err);

/* The state file at path is no longer needed: kept, under another name that no reader takes,
 * for a later jobstate_rewrite to fill and rename (no file made or removed a job: each costs
 * a scan over the inodes freed recently on a filesystem without a journal), or removed. */
void jobstate_forget(const char *path);

/* Read 'path' into *st. Unknown keys are ignored; a missing required key, a bad number or an
 * unknown version is an error naming the file and line. 0 or -1 with *err. */
int jobstate_read(const char *path, jobstate_t *st, wq_error_t *err);

#endif
