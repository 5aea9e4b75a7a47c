/* One job's share on this node: its rank processes, spool files, time limit and ending.
 * No networking here: streams.c turns these states into messages.
 *
 * Spool directory <state-dir>/spool/<job_id>.<attempt>/:
 *   job.log              the job's log as streamed to the scheduler (LogChunk offsets)
 *   rank-<G>.out         raw stdout+stderr of global rank G, only when this node runs 2+ ranks;
 *                        the worker copies complete lines into job.log as "[rank G] line"
 *   metrics-<G>.jsonl    WSLQ_METRICS of rank G: JSON lines relayed as MetricLines
 *   pos                  how far each rank-<G>.out and metrics file was consumed, so a
 *                        restarted worker continues where the last one stopped
 *   rank-<G>.status      the wait status the rank keeper (keeper.h) or wslq-rank records for
 *                        rank G (worker/rank.c)
 *   rdv.sock             the rendezvous socket (rdv.h), made by streams.c
 * Ranks write their output straight to files (never to a pipe the worker holds), so they
 * keep running and logging while the worker restarts.
 *
 * The directory is 0700 and belongs to the job's account (runas.h), and so does every file in
 * it; files the worker makes are 0600. The account may change anything in there, and the worker
 * may be root: it opens those files only through job_spool_open (job.c), which follows no link and
 * takes only a plain file of the account's or its own. */
#ifndef WSLQ_WORKER_JOB_H
#define WSLQ_WORKER_JOB_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "proto/wire.h"
#include "worker/container.h"
#include "worker/isol.h"
#include "worker/jobenv.h"
#include "worker/keeper.h"
#include "worker/runas.h"

enum job_phase {
    JOB_RUNNING = 1, /* ranks started (or adopted), none stopped by us */
    JOB_STOPPING,    /* SIGTERM sent to every rank; SIGKILL at kill_at_ms */
    JOB_ENDED,       /* every rank gone; the end fields are final */
};

typedef struct job_rank {
    int lrank;        /* local rank on this node */
    uint32_t grank;   /* global rank */
    pid_t pid;        /* leader: our child, or the rank keeper's (kept); 0 when adopted from an
                         earlier worker process or when its keeper is gone */
    int kept;         /* started by the rank keeper (keeper.h): its end comes from the keeper */
    pid_t pgid;       /* its process group and session (setsid) */
    int alive;        /* 1 until the leader is reaped (own) or the group is gone (adopted) */
    int status;       /* waitpid status once reaped (or read from rank-<G>.status when
                         adopted), -1 unknown */
    int errfd;        /* read end of the exec-error pipe, -1 once read */
    int exec_stage;   /* 0 ok, 1 chdir failed, 2 exec failed, 3.. the switch to the job's
                         account failed (enum runas_stage): from the error pipe */
    int exec_errno;   /* errno of that failure */
    int out_fd;       /* 2+ ranks: read fd of rank-<G>.out; else -1 */
    uint64_t out_pos; /* bytes of rank-<G>.out already copied into job.log */
    int met_fd;       /* metrics-<G>.jsonl once it exists, else -1 */
    uint64_t met_pos; /* bytes of it already relayed */
} job_rank_t;

typedef struct job {
    uint64_t id;
    uint32_t attempt;
    char name[WIRE_MAX_NAME + 1];
    char spool[PATH_MAX];          /* spool directory */
    char state_path[PATH_MAX];     /* <state-dir>/jobs/<id>.<attempt>.state */
    int state_fd;                  /* that file once written (rewritten in place), -1 */
    char argv0[256];               /* for error messages */
    uid_t uid;                     /* the job's account, owner of its spool (the worker's own when
                                      the ranks do not switch accounts) */
    gid_t gid;                     /* its primary group */
    char user[RUNAS_NAME_MAX + 1]; /* its name when the ranks switch to it, for reasons; "" */
    uint32_t first_rank;
    int nranks;
    job_rank_t *ranks; /* nranks entries */
    int merged;        /* 1 when ranks write rank-<G>.out and the worker merges */
    int log_fd;        /* job.log, O_RDWR|O_APPEND */
    uint64_t sent;     /* bytes of job.log the scheduler has (streams.c advances it) */
    int phase;         /* enum job_phase */
    int started;       /* 1 if every rank was forked (JobStarted may be sent) */
    int adopted;       /* 1 if taken over from an earlier worker process */
    uint64_t gpus;     /* bit i: its ranks were given GPU i (launched here, not adopted) */
    int64_t start_wall_ms;
    int64_t time_limit_s;    /* 0 = none */
    int64_t deadline_ms;     /* monotonic ms of the time limit, 0 = none */
    int64_t grace_ms;        /* default SIGTERM -> SIGKILL grace */
    int64_t kill_at_ms;      /* monotonic ms of the next SIGKILL while stopping, 0 = none */
    int pos_dirty;           /* the pos file needs writing */
    int suspended;           /* its ranks were stopped (JobSuspend): the time limit waits */
    int64_t suspended_at_ms; /* monotonic ms they were stopped */
    /* the ending (valid once phase == JOB_ENDED; cause fields may be set while stopping) */
    int timed_out;
    int killed;
    char kill_reason[256];
    int have_fail;              /* a rank ended non-zero: fail_* valid */
    int status_lost;            /* an adopted rank ended without a status we can read */
    int keeper_lost;            /* the rank keeper of some of its ranks went away */
    int output_lost;            /* the spool was full while it ran: some output may be missing */
    int (*no_space)(void *arg); /* job_cfg_t's, for job_save */
    void *no_space_arg;
    int fail_lrank;    /* local rank that failed first */
    int fail_cause;    /* 1 if it failed while running (not because we stopped the job) */
    int fail_reported; /* streams.c sent RankFailed for it */
    int exit_code;     /* as JobEnded.exit_code: first failing rank's code, 0, -1 = by signal */
    int signal;        /* 0 = none */
    int failed_rank;   /* global rank, -1 = none */
    char reason[256];
    uint64_t log_bytes; /* size of job.log at the end */
    /* streams.c's bookkeeping for the start and end messages */
    int64_t started_due_ms; /* JobStarted held until then (monotonic ms), 0 = sent or none */
    int64_t ended_sent_ms;  /* monotonic ms JobEnded was last sent, 0 = not yet */
    int acked;              /* JobEndedAck received */
    /* --container: `ENGINE rm -f NAMES` run when the job is stopped or fails, so no container
     * outlives its rank; NULL = not a container job */
    char **ctr_rm;
    /* isolation (isol.h) */
    isol_cpus_t cpus;       /* the CPUs its ranks are bound to; empty = not bound */
    char cpulist[256];      /* the same as text ("0-3"), "" = not bound */
    uint64_t mem_mb;        /* its --mem on this node, MiB; 0 = none */
    int cg_kind;            /* enum isol_cg of its live cgroup; ISOL_CG_NONE once ended */
    char cg_path[PATH_MAX]; /* its cgroup directory */
    uint64_t cg_oom_before; /* OOM kills counted in the cgroup when it started */
    int mem_watched;        /* the memory watch looks after it (no cgroup limit) */
    int64_t mem_next_ms;    /* monotonic ms of the watch's next look */
    int oom;                /* it went over its --mem: JobEnded.out_of_memory */
    uint64_t mem_used_mb;   /* how much it held then (or at most), MiB; 0 = unknown */
    /* GPU resets by Windows (tdr.h), set by streams.c */
    int tdr_known;               /* tdr_events_at_start was read at the launch */
    int64_t tdr_events_at_start; /* the reporter's TDR event count then */
    int gpu_reset;               /* it failed with a GPU reset: JobEnded.gpu_reset */
    char gpu_reset_why[200];     /* one line: what was seen */
} job_t;

typedef struct job_cfg {
    const char *state_dir; /* holds jobs/ and spool/ (created by the caller) */
    jobenv_ctx_t env;      /* node, iface, ip, master_port; spool and rdv_path set per job */
    char *const *base_env; /* the worker's environment, NULL = none */
    int64_t grace_ms;      /* default kill grace */
    int rendezvous;        /* 1: offer WSLQ_RENDEZVOUS = <spool>/rdv.sock */
    keeper_t *keeper;      /* the rank keeper every rank starts under when it can (keeper.h);
                              NULL = none: ranks start under wslq-rank each */
    const char *rank_exe;  /* wslq-rank, the parent that records each rank's exit status for a
                              worker restarted meanwhile (worker/rank.c); NULL = ranks are
                              started directly and that status is lost */
    /* --container jobs: the engine and its flags */
    container_cfg_t container;
    const isol_t *isol; /* CPU binding, cgroups, memory watch; NULL = none of them */
    const int *cpu_use; /* per launch: jobs bound to each CPU now (ISOL_MAX_CPUS), or NULL */
    /* Per launch (streams.c sets them around job_launch): */
    const runas_acct_t *acct; /* the account the ranks run as; NULL = the worker's own */
    const char *refuse;       /* not NULL: the job cannot run here (its owner has no usable
                                 account); it ends at once with this reason */
    /* A job state could not be written for lack of room: make some (1) or not (0); the save
     * is tried once more after a 1. NULL = none. */
    int (*no_space)(void *arg);
    void *no_space_arg;
} job_cfg_t;

/* Start this node's ranks of a launch, as cfg->acct. Always returns a job (caller owns it:
 * job_destroy): started == 1 when every rank was forked; otherwise the job is already JOB_ENDED
 * with the reason (cfg->refuse, bad working directory, spool not writable, fork failure) written
 * to its log too. */
job_t *job_launch(const Wslq__JobLaunch *l, const job_cfg_t *cfg);

/* Take over a job from its state file after a worker restart. NULL with *err if the file is
 * unusable (the caller logs and removes it). Caller owns the result. */
job_t *job_adopt(const char *state_path, const job_cfg_t *cfg, wq_error_t *err);

/* A child exited: returns 1 if pid was one of this job's rank leaders. */
int job_reap(job_t *j, pid_t pid, int status, int64_t now_ms);

/* Stop the job: SIGTERM to every rank's process group, SIGKILL after grace_ms (<= 0: the
 * job's default). timed_out 1 = time limit, else a kill with 'reason'. No-op once ended. */
void job_stop(job_t *j, int64_t grace_ms, int timed_out, const char *reason, int64_t now_ms);

/* JobSuspend: SIGSTOP (stop = 1) or SIGCONT (0) to every rank's process group. The time
 * limit does not count the stopped time: its deadline moves on by it at the resume. No-op
 * when already so, or once the job is stopping or ended. Returns 1 if it changed. */
int job_suspend(job_t *j, int stop, int64_t now_ms);

/* Time limit, SIGKILL escalation, adopted groups, output merging. Returns 1 when the job
 * became JOB_ENDED in this call (its state file is rewritten as ended). */
int job_poll(job_t *j, int64_t now_ms);

/* Earliest monotonic ms at which job_poll has timed work, 0 = none. */
int64_t job_next_deadline(const job_t *j);

/* Current size of job.log. */
uint64_t job_log_size(const job_t *j);

/* Read up to n bytes of job.log at off: bytes read, 0 at end, -1 on error. */
ssize_t job_log_read(const job_t *j, uint64_t off, void *buf, size_t n);

/* Up to max_lines new complete lines of rank index ri's metrics file that look like JSON
 * objects and fit WIRE_MAX_METRIC_LINE. *lines gets a malloc'd array of malloc'd strings
 * (caller frees both). Returns the count. */
size_t job_metrics(job_t *j, int ri, char ***lines, size_t max_lines);

/* Write the state file now. 0 or -1 with *err. */
int job_save(job_t *j, wq_error_t *err);

/* Remove the state file (the end was acknowledged); the spool stays for later cleanup. */
void job_forget(job_t *j);

/* Close files and free; NULLs *jp. Does not signal the ranks. NULL-safe. */
void job_destroy(job_t **jp);

#endif
