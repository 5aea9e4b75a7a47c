/* The rank keeper: one long-lived `wslq-rank --keeper FD` per worker, the parent of every rank
 * the worker starts (worker/README.md, "The rank keeper"). The worker sends it a launch over a
 * Unix seqpacket socket, <state-dir>/rank-keeper.sock (root's, 0600); the keeper forks, the
 * child runs child_exec (childexec.h) and execs the rank's program itself, and the keeper
 * answers with the pid. When a rank ends the keeper writes its wait status to the rank's
 * STATUS_FILE (rank-<G>.status, made afresh, before the rank is reaped so its group outlives
 * the write) and then tells the worker. One exec per rank instead of two (wslq-rank
 * then the program).
 *
 * The keeper runs in its own session, ignores the group signals and outlives the worker: a
 * restarted worker connects to it again, and ranks it started are adopted from their state
 * and status files as before. It exits once no worker is connected and no rank is left. If it
 * dies, its ranks go to init; the worker watches their groups instead, and a rank that ends
 * then has no status file: the job ends with "rank keeper died; exit status lost".
 *
 * The protocol: both ends are this worker's (root), and the keeper takes connections only from
 * its own uid; every message is still checked, and a bad one is answered KEEPER_REFUSED. */
#ifndef WSLQ_WORKER_KEEPER_H
#define WSLQ_WORKER_KEEPER_H

#include <stdint.h>
#include <sys/types.h>

#include "worker/isol.h"
#include "worker/runas.h"

#define KEEPER_MAGIC   0x31504b57u  /* "WKP1" */
#define KEEPER_MAX_MSG (160 * 1024) /* a launch larger than this goes through wslq-rank */
#define KEEPER_SOCK    "rank-keeper.sock"

enum keeper_type {
    KEEPER_LAUNCH = 1,  /* worker -> keeper: keeper_launch_t, then the data; fds attached */
    KEEPER_STARTED = 2, /* keeper -> worker: pid of the rank */
    KEEPER_REFUSED = 3, /* keeper -> worker: not started, errno in value */
    KEEPER_ENDED = 4,   /* keeper -> worker: pid ended, wait status in value */
};

/* A launch. After it: ngroups gid_t, then argc + envc + 3 NUL-terminated strings (status
 * file, program ("" = not found), working directory, argv..., envp...), exactly filling the
 * message. Attached: stdin, stdout+stderr, the error pipe's write end, and with has_procs the
 * cgroup's procs file. */
typedef struct keeper_launch {
    uint32_t magic, type;
    uint32_t argc, envc, ngroups;
    int32_t drop; /* 1: switch to uid/gid/groups */
    uint32_t uid, gid;
    int32_t has_cpus, has_procs;
    uint32_t status_uid, status_gid; /* the status file's owner */
    isol_cpus_t cpus;
} keeper_launch_t;

typedef struct keeper_reply {
    uint32_t magic, type;
    int32_t pid;
    int32_t value;
} keeper_reply_t;

/* ---- the worker's side (keeper.c) ---- */

typedef struct keeper_end {
    pid_t pid;
    int status;
} keeper_end_t;

typedef struct keeper {
    int fd;               /* connection to the keeper, -1 = none */
    char dir[4096];       /* the state directory (the socket is in it) */
    const char *rank_exe; /* wslq-rank, which is the keeper too */
    keeper_end_t *ends;   /* ends read while waiting for a launch's answer, not yet taken */
    size_t nends, cap;
    int lost; /* the connection broke: ranks it started are watched instead */
} keeper_t;

/* Set up (nothing connected yet). */
void keeper_init(keeper_t *k, const char *state_dir, const char *rank_exe);

/* Connect to a keeper already running (a restarted worker's, at its start, so the keeper
 * does not leave before the first launch): 0, or -1 when none answers. */
int keeper_connect(keeper_t *k);

/* Start rank through the keeper, connecting to it or starting it first. The pid, or -1 with
 * errno when the keeper refused, fork failed or the keeper went away before it answered (the
 * rank cannot start), or -2 when the keeper cannot be used (nothing was sent: the caller
 * starts the rank the old way). */
pid_t keeper_launch(keeper_t *k,
                    const char *status_path,
                    const char *exe,
                    const char *cwd,
                    char **argv,
                    char **envp,
                    int nullfd,
                    int outfd,
                    int errw,
                    const runas_acct_t *acct,
                    uid_t status_uid,
                    gid_t status_gid,
                    const isol_cpus_t *cpus,
                    int procs_fd);

/* The next rank end the keeper reported (0), or 1 when none is waiting. Sets k->lost when the
 * keeper went away (the caller then watches the ranks it started). */
int keeper_next_end(keeper_t *k, keeper_end_t *e);

/* The descriptor to poll for ends, -1 = none. */
int keeper_fd(const keeper_t *k);

/* Close the connection (the keeper stays for its ranks) and free. */
void keeper_close(keeper_t *k);

#endif
