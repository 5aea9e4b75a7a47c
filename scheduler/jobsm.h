/* The job state machine: every change of a job's state is one event through jobsm_apply().
 *
 * Pure: no I/O, no clock, no globals. It reads and writes the job (its JobInfo and the
 * jobsm_t beside it) and says what the caller must do (write the row, add event rows, send
 * launches or kills, forget the job); the scheduler's handlers only turn messages and timers
 * into events and carry out those actions. A transition the state does not allow is refused
 * with an error and changes nothing.
 *
 *   PENDING --place--> STARTING --every part started--> RUNNING
 *      ^                   |                                |
 *      |                   +------- every part ended -------+--> COMPLETED, FAILED,
 *      +--- retryable end, attempts left (backoff) ---------+    CANCELLED, TIMEOUT, NODE_FAIL,
 *                                                                OUT_OF_MEMORY
 *   PENDING --cancel / dependency failed--> CANCELLED
 *   PENDING --hold--> PENDING, held (never placed) --release--> PENDING
 *   STARTING/RUNNING --requeue--> (every part ended) --> PENDING, attempt + 1
 *   STARTING/RUNNING --preempt--> (every part ended) --> PENDING, attempt + 1 (PREEMPTED)
 *   RUNNING --suspend--> RUNNING, suspended --resume--> RUNNING
 *
 * Why a started job ends is one value, its end cause. Causes have a precedence: a cause
 * replaces the current one only if it ranks higher, so among equals the first wins (a rank
 * that fails after a node was lost does not change the ending) while a user's cancel or the
 * time limit overrides a failure that is being torn down. Adding an ending is one line of
 * JOBSM_CAUSES below and its reason text in jobsm_apply's finish step (jobsm.c). */
#ifndef WSLQ_SCHED_JOBSM_H
#define WSLQ_SCHED_JOBSM_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "proto/wire.h"

/* Retry policy of an ending: whether the job goes back to PENDING while attempts remain. */
enum jobsm_retry {
    JOBSM_RETRY_NEVER,     /* the ending is what the user asked for, or the job's own limit */
    JOBSM_RETRY_ALWAYS,    /* not the job's fault: its node died or never started it */
    JOBSM_RETRY_IF_ASKED,  /* the job failed: only with --requeue-on-fail */
    JOBSM_RETRY_UNCOUNTED, /* an admin took the node away (wslq drain --now), or the owner or
                              an admin requeued the job: always, at once, and not counted
                              against spec.retries (info->uncounted_requeues) */
};

/* X(name, precedence, final state, retry) */
#define JOBSM_CAUSES(X)                                      \
    X(NONE, 0, COMPLETED, JOBSM_RETRY_NEVER)                 \
    X(START_TIMEOUT, 1, FAILED, JOBSM_RETRY_ALWAYS)          \
    X(RANK_FAILED, 2, FAILED, JOBSM_RETRY_IF_ASKED)          \
    X(NODE_LOST, 2, NODE_FAIL, JOBSM_RETRY_ALWAYS)           \
    X(TIME_LIMIT, 3, TIMEOUT, JOBSM_RETRY_NEVER)             \
    X(CANCELLED, 4, CANCELLED, JOBSM_RETRY_NEVER)            \
    X(DEPENDENCY, 4, CANCELLED, JOBSM_RETRY_NEVER)           \
    X(DRAINED, 3, PENDING, JOBSM_RETRY_UNCOUNTED)            \
    X(REQUEUED, 4, PENDING, JOBSM_RETRY_UNCOUNTED)           \
    X(PREEMPTED, 3, PENDING, JOBSM_RETRY_UNCOUNTED)          \
    X(OUT_OF_MEMORY, 3, OUT_OF_MEMORY, JOBSM_RETRY_IF_ASKED) \
    X(GPU_RESET, 2, FAILED, JOBSM_RETRY_ALWAYS)

typedef enum {
#define JOBSM_CAUSE_ENUM(name, prec, final, retry) JOBSM_CAUSE_##name,
    JOBSM_CAUSES(JOBSM_CAUSE_ENUM)
#undef JOBSM_CAUSE_ENUM
        JOBSM_CAUSE_COUNT
} jobsm_cause_t;

/* Short stable name ("rank_failed"), for logs and tests. */
const char *jobsm_cause_name(jobsm_cause_t c);

typedef struct jobsm_part {
    unsigned started : 1;       /* its ranks started (JobStarted, or adopted after a restart) */
    unsigned ended : 1;         /* JobEnded received, or the node lost: its resources are free */
    unsigned lost : 1;          /* ended because the node was lost or forgot the job */
    int64_t missing_since_mono; /* the caller's timer, not read here: mono ms the part's node
                                   re-registered without it (PART_MISSING after a grace); 0 */
} jobsm_part_t;

/* What the state machine keeps beside a job's JobInfo. The cause and kill_sent are mirrored
 * in info->end_cause and info->kill_sent (saved with the job's row), so after a scheduler
 * restart a job being ended (a drain --now, a preemption or eviction waiting out its grace, a
 * cancel, a requeue) ends the same way (jobsm_load); the parts' flags and the backoff are
 * memory only. */
typedef struct jobsm {
    jobsm_part_t *parts;     /* one per info->allocs entry while STARTING/RUNNING; owned */
    size_t n_parts;          /* == info->n_allocs while STARTING/RUNNING, else 0 */
    jobsm_cause_t cause;     /* why the job is ending (NONE while nothing went wrong) */
    int kill_sent;           /* a JobKill went to the parts still running */
    int failure_recorded;    /* info holds the first failure (rank, node, code, signal) */
    int64_t not_before_mono; /* PENDING after a requeue: not placed before this mono ms; 0 */
} jobsm_t;

typedef enum {
    JOBSM_EV_SUBMIT,            /* a new job (state unset): -> PENDING */
    JOBSM_EV_PLACE,             /* PENDING -> STARTING; info->allocs already hold the choice */
    JOBSM_EV_PART_STARTED,      /* part's ranks started (or were adopted) */
    JOBSM_EV_PART_ENDED,        /* part's ranks all ended: exit_code, signal, rank, flags */
    JOBSM_EV_RANK_FAILED,       /* one rank of part failed while others may run: stop all */
    JOBSM_EV_NODE_LOST,         /* part's node went silent past the lost timeout */
    JOBSM_EV_PART_MISSING,      /* part's node re-registered without it, past the grace */
    JOBSM_EV_CANCEL,            /* the user cancelled */
    JOBSM_EV_TIME_LIMIT,        /* RUNNING past spec.time_limit_s (the scheduler's backstop) */
    JOBSM_EV_START_TIMEOUT,     /* STARTING past the start timeout; text says why */
    JOBSM_EV_DEPENDENCY_FAILED, /* a dependency can never be met; text says which */
    JOBSM_EV_REQUEUE_TIMER,     /* the timer: a requeued job's backoff may be over */
    JOBSM_EV_DRAIN,             /* an admin drained a node of the job with --now: requeue it */
    JOBSM_EV_HOLD,              /* PENDING: the owner or an admin holds it: never placed */
    JOBSM_EV_RELEASE,           /* a held PENDING job may be placed again */
    JOBSM_EV_REQUEUE,           /* the owner or an admin requeues a started job: stop it, then
                                   PENDING again with attempt + 1 (retries not counted) */
    JOBSM_EV_PREEMPT,           /* a preemptible job makes room for a higher-priority one, or
                                   leaves a PC whose owner is present (owner = evict, or
                                   suspended too long): SIGTERM, the preempt grace, then
                                   PENDING with attempt + 1 (retries not counted); text: why
                                   ("preempted for job 7", "evicted: ...") */
    JOBSM_EV_SUSPEND,           /* RUNNING: its ranks are stopped (SIGSTOP) while the PC's
                                   owner is present; text: why */
    JOBSM_EV_RESUME,            /* a suspended job's ranks continue (SIGCONT) */
    JOBSM_EV_COUNT
} jobsm_event_type_t;

/* Short stable name ("part_ended"), for logs, errors and tests. */
const char *jobsm_event_name(jobsm_event_type_t t);

typedef struct jobsm_event {
    jobsm_event_type_t type;
    size_t part;         /* PART_*, RANK_FAILED, NODE_LOST: index into info->allocs */
    int32_t exit_code;   /* PART_ENDED, RANK_FAILED */
    int32_t signal;      /* PART_ENDED, RANK_FAILED: 0 = none */
    int32_t rank;        /* PART_ENDED (first failed rank, -1 none), RANK_FAILED */
    int timed_out;       /* PART_ENDED: the worker enforced the time limit */
    int killed;          /* PART_ENDED: the worker killed it on a JobKill */
    int output_lost;     /* PART_ENDED: the node's spool was full while it ran */
    int out_of_memory;   /* PART_ENDED: it went over its --mem there (text says by how much) */
    const char *text;    /* PART_ENDED: the worker's reason; SUBMIT: the first wait reason;
                            START_TIMEOUT, DEPENDENCY_FAILED, DRAIN: why. May be NULL */
    int64_t now_wall_ms; /* the caller's clock: start and end times */
    int64_t now_mono_ms; /* the caller's monotonic clock: requeue backoff */
    int held;            /* SUBMIT: held from the start (submit --hold) */
    int gpu_reset;       /* PART_ENDED: it failed because Windows reset the GPU (TDR) */
    /* PART_ENDED with gpu_reset: what the worker saw; may be NULL */
    const char *gpu_reset_why;
} jobsm_event_t;

/* Actions, carried out by the caller (scheduler/jobs.c, jobs_apply). */
enum {
    JOBSM_ACT_SAVE = 1u << 0,     /* write the job's row (insert it when new) */
    JOBSM_ACT_LAUNCH = 1u << 1,   /* send JobLaunch for every part */
    JOBSM_ACT_KILL = 1u << 2,     /* send JobKill to every part not ended */
    JOBSM_ACT_REQUEUED = 1u << 3, /* back to PENDING: clear its key/value store, count it */
    JOBSM_ACT_ENDED = 1u << 4,    /* final: answer waiting `logs -f`, forget the job */
    JOBSM_ACT_RESCHED = 1u << 5,  /* resources freed or a job became placeable: a pass */
    JOBSM_ACT_SUSPEND = 1u << 6,  /* send JobSuspend (info->suspended: stop or continue) */
};

/* SIGTERM-to-SIGKILL grace of a kill. */
typedef enum {
    JOBSM_GRACE_NORMAL,  /* cancel, time limit, start timeout: the configured grace */
    JOBSM_GRACE_GANG,    /* another part failed or was lost: short, the gang is broken */
    JOBSM_GRACE_PREEMPT, /* preempted or evicted: the configured preempt grace */
} jobsm_grace_t;

#define JOBSM_MAX_ROWS 3 /* event rows one transition writes at most */

/* One job_events row, in the order they must be written. */
typedef struct jobsm_row {
    Wslq__JobState state; /* the job's state when the row was made */
    char reason[320];
    char node[WIRE_MAX_NAME + 1];
    char detail[320];
} jobsm_row_t;

typedef struct jobsm_out {
    unsigned act;             /* JOBSM_ACT_* */
    int state_changed;        /* info->state is new (STARTING/RUNNING timing, statistics) */
    Wslq__JobState old_state; /* before the event */
    jobsm_row_t rows[JOBSM_MAX_ROWS];
    size_t n_rows;
    jobsm_grace_t kill_grace; /* JOBSM_ACT_KILL */
    char kill_reason[160];    /* JOBSM_ACT_KILL: JobKill.reason */
} jobsm_out_t;

/* Results of jobsm_apply besides -1. */
#define JOBSM_APPLIED 0 /* the event changed the job: carry out out->act */
#define JOBSM_STALE   1 /* allowed but changes nothing (a duplicate, or overtaken) */

/* Apply one event. On JOBSM_APPLIED *out says what to do; JOBSM_STALE leaves job and out
 * empty-handed; -1 refuses a transition the state does not allow (err says which) and
 * changes nothing. info is the job's JobInfo (state, attempt, allocs, failure fields,
 * reason, times are read and written); strings it sets are heap copies owned by info. */
int jobsm_apply(
    jobsm_t *sm, Wslq__JobInfo *info, const jobsm_event_t *ev, jobsm_out_t *out, wq_error_t *err);

/* Rebuild the machine's memory of a job read back from the queue after a restart: a
 * RUNNING job's parts count as started, a STARTING job's as not yet. A job something was
 * ending keeps that cause (info->end_cause) and whether its kill went out (info->kill_sent):
 * a drain --now, a preemption, a requeue still end requeued, a cancel cancelled. */
void jobsm_load(jobsm_t *sm, const Wslq__JobInfo *info);

/* The kill again, for a job being stopped (its kill sent, restored or not) whose part's node
 * re-registers still running it (gang.c): its cause's reason and grace, as first sent. One
 * rule for every cause. The worker stops a job once: a kill for a job already stopping sends
 * no second SIGTERM (a shorter grace only moves its SIGKILL earlier), so the job gets exactly
 * one SIGTERM, and one whose kill was lost (the scheduler saved kill_sent and died before the
 * send, or the connection dropped) is still stopped. 0 with out->act JOBSM_ACT_KILL,
 * out->kill_grace and out->kill_reason set (nothing else of out), or -1: no kill was sent. */
int jobsm_kill_again(const jobsm_t *sm, const Wslq__JobInfo *info, jobsm_out_t *out);

/* Free the parts array. */
void jobsm_fini(jobsm_t *sm);

/* Free a job's allocs (placement replaces them; a requeue drops them). */
void jobsm_free_allocs(Wslq__JobInfo *info);

/* 1 while part k holds its node's resources (the job is STARTING/RUNNING, k not ended). */
int jobsm_part_holds(const jobsm_t *sm, const Wslq__JobInfo *info, size_t k);

/* 1 if a PENDING job may be placed now (not held, no requeue backoff left). */
int jobsm_placeable(const jobsm_t *sm, const Wslq__JobInfo *info, int64_t now_mono_ms);

#endif
