/* Room on the file system of the worker's state directory (jobs/ and spool/): a full spool
 * loses job output, and a job state that cannot be written turns a finished job into a lost
 * one at the next restart. The worker checks the room at every heartbeat, reports it as the
 * node check disk.spool, marks the jobs that ran while it was full, and keeps a reserve file
 * it gives back when a job state cannot be written for lack of room. */
#ifndef WSLQ_WORKER_SPACE_H
#define WSLQ_WORKER_SPACE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/wire.h"

#define SPACE_FAIL_MB    64   /* less free than this: FAIL, no new jobs, output is at risk */
#define SPACE_WARN_MB    1024 /* less free than this: WARN */
#define SPACE_RESERVE_MB 4    /* the reserve file: room for job states when the disk fills */

typedef struct space {
    char dir[4096];             /* the state directory */
    int64_t free_mb;            /* at the last check, -1 unknown */
    Wslq__CheckVerdict verdict; /* disk.spool at the last check */
    int changed;                /* the verdict changed since it was last reported */
    int reserve_held;           /* the reserve file exists */
} space_t;

/* Start watching dir; makes the reserve file (best effort). */
void space_open(space_t *s, const char *dir);

/* Measure again. 1 if the verdict changed. */
int space_check(space_t *s);

/* 1 while the spool is full (FAIL): output written now may be lost. */
int space_full(const space_t *s);

/* The node check disk.spool, filled into c (strings point into static or s-held buffers
 * valid until the next check). */
void space_node_check(const space_t *s, Wslq__NodeCheck *c, char *summary, size_t size);

/* A job state could not be written for lack of room: give back the reserve so it can be.
 * 1 if there was one to give. */
int space_release_reserve(space_t *s);

#endif
