/* Which account a job's ranks run as (worker/README.md, "Run-as modes"), and the switch to it.
 *
 *   service  the default. A worker that is not root runs jobs as its own account (nothing to
 *            switch). A worker that is root switches every rank to service_user (default
 *            wslq), and refuses to start when that account is missing or is root.
 *   owner    each job runs as the PC's local account named like the job's owner
 *            (JobSpec.user). Needs a root worker. An owner without an account here, or whose
 *            account is root, ends the job at once with the reason.
 *   worker   jobs run as the worker's own account, whatever it is, root included: for test
 *            machines whose suites run as root, never for a lab PC (a warning at start).
 *
 * The account is resolved in the worker (runas_resolve: getpwnam_r, getgrouplist) before the
 * rank's vfork; the child switches with runas_switch, raw system calls only, before it runs
 * wslq-rank or the program. */
#ifndef WSLQ_WORKER_RUNAS_H
#define WSLQ_WORKER_RUNAS_H

#include <limits.h>
#include <sys/types.h>

#include "common/err.h"

enum runas_mode {
    RUNAS_SERVICE = 0, /* the default */
    RUNAS_OWNER,
    RUNAS_WORKER,
};

#define RUNAS_NAME_MAX 32 /* longest account name accepted (useradd's limit) */

/* What the worker decided at start. */
typedef struct runas {
    int mode;                              /* enum runas_mode */
    int as_root;                           /* the worker runs as root: ranks switch accounts */
    char service_user[RUNAS_NAME_MAX + 1]; /* RUNAS_SERVICE as root: the jobs' account */
} runas_t;

/* One job's account, resolved in the worker before its ranks start. */
typedef struct runas_acct {
    int drop;                      /* 1: each rank switches to uid/gid/groups before exec */
    uid_t uid;                     /* the account's uid (the worker's own when drop is 0) */
    gid_t gid;                     /* its primary group */
    gid_t *groups;                 /* its supplementary groups (getgrouplist), malloc'd */
    int ngroups;                   /* entries in groups */
    char name[RUNAS_NAME_MAX + 1]; /* account name: USER and LOGNAME when drop is 1 */
    char home[PATH_MAX];           /* its home directory: HOME, the default working directory */
} runas_acct_t;

/* Stages of a failed switch, as the rank's child reports them through the error pipe (after
 * job.c's 1 = chdir and 2 = exec). */
enum runas_stage {
    RUNAS_STAGE_GROUPS = 3, /* setgroups */
    RUNAS_STAGE_GID = 4,    /* setgid */
    RUNAS_STAGE_UID = 5,    /* setuid */
    RUNAS_STAGE_CHECK = 6,  /* the ids read back differ, or setuid(0) still worked */
};

/* 1 if s is an account name this worker accepts: 1..32 of [A-Za-z0-9._-] (and '$' last, as
 * Samba machine accounts), not starting with '-'. */
int runas_valid_name(const char *s);

/* "service", "owner" or "worker" into *mode: 0, or -1 with *err naming the key. */
int runas_parse_mode(const char *s, int *mode, wq_error_t *err);

/* The mode's name. */
const char *runas_mode_name(int mode);

/* Decide at start, from the worker's own account: 0, or -1 with *err one line saying how to
 * fix it (owner mode without root; service mode as root without service_user's account, or
 * with an account that is root). */
int runas_init(runas_t *r, int mode, const char *service_user, wq_error_t *err);

/* The state directory's layout and modes: jobs/ is the worker's alone (0700); spool/ holds one
 * 0700 directory per job, its account's. When ranks switch accounts they must pass through the
 * state directory and spool/ to reach theirs: those two get execute permission for others
 * (0711, no listing), and every directory above must allow it already, or this fails saying
 * which and how to fix it. Otherwise everything is 0700. 0, or -1 with *err. */
int runas_state_dirs(const runas_t *r, const char *state_dir, wq_error_t *err);

/* The account of a job whose owner is 'owner' (JobSpec.user), on node 'node' (for the
 * reason). 0 with *a filled (runas_acct_clear it), or -1 with the reason in why[n]:
 * "no local account 'alice' on pc7 (run_as = owner)", "refusing to run a job as root". */
int runas_resolve(
    const runas_t *r, const char *owner, const char *node, runas_acct_t *a, char *why, size_t n);

/* Free what runas_resolve allocated; leaves *a empty. NULL-safe. */
void runas_acct_clear(runas_acct_t *a);

/* Give 'path', made by the worker in a job's spool (the rendezvous socket), to the job's
 * account uid:gid; never follows a symlink. 0 (also when that is the worker's own account), or
 * -1 with errno. */
int runas_give(const char *path, uid_t uid, gid_t gid);

/* In a rank's child between vfork and exec: supplementary groups, gid, uid, in that order,
 * then read back and checked (all ids equal, setuid(0) refused). Raw system calls only: glibc's
 * setuid and friends would signal every thread of what it takes for the current process, the
 * worker's. 0, or an enum runas_stage with *err_no set. Nothing to do when a->drop is 0. */
int runas_switch(const runas_acct_t *a, int *err_no);

#endif
