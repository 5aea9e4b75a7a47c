/* The scheduler core's shared state and the functions its files export to each other.
 * Loop thread only; nothing here is for the HTTP threads (they use sched.h's views).
 *
 * Invariants (asserted where they can break):
 * - every job in self->jobs is PENDING, STARTING or RUNNING, ascending by id, and its row in
 *   the queue holds the same JobInfo once the turn commits;
 * - GPU, CPU and memory use are derived from the active jobs' allocations (parts not yet
 *   ended, jobsm_part_holds), never stored, so they cannot drift;
 * - nothing leaves the process (reply, launch, kill) before the turn's COMMIT: handlers
 *   queue envelopes in the outbox and the loop flushes it after queue_commit. */
#ifndef WSLQ_SCHED_INT_H
#define WSLQ_SCHED_INT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "proto/keys.h"
#include "proto/wire.h"
#include "scheduler/jobsm.h"
#include "scheduler/notify.h"
#include "scheduler/policy.h"
#include "scheduler/queue.h"
#include "scheduler/sched.h"
#include "scheduler/snapshots.h"
#include "scheduler/who.h"

#define SCHED_MAX_IDENTITY 256 /* bytes of a ROUTER identity (ZeroMQ allows 255) */

/* Who sent a message, and where its reply goes: a ROUTER identity. */
typedef struct peer {
    char id[SCHED_MAX_IDENTITY];
    size_t len;     /* 0 = nobody (a node never connected in this run) */
    int admin_sock; /* it came over the local admin socket (and its answer goes back there) */
    int local;      /* it came over the user socket (usock.c): id is the connection's serial */
    uint32_t uid;   /* local: the peer's uid (SO_PEERCRED) */
} peer_t;

/* 1 if a and b are the same connection. */
static inline int
peer_same(const peer_t *a, const peer_t *b)
{
    return a->len == b->len && a->local == b->local && a->admin_sock == b->admin_sock &&
           memcmp(a->id, b->id, a->len) == 0;
}

/* ---- who sent a message (auth.c) ---- */

typedef struct auth_key {
    char key[48];    /* Z85, sorted by it */
    who_kind_t kind; /* WHO_USER, WHO_NODE, or WHO_NOBODY when revoked */
    char name[WIRE_MAX_NAME + 1];
    int admin;
} auth_key_t;

/* ---- nodes (nodes.c) and their inbound self-test (selftest.c) ---- */

enum node_state { NODE_ALIVE, NODE_TORPID, NODE_LOST };

enum selftest_state {
    SELFTEST_UNKNOWN,    /* not registered in this run */
    SELFTEST_NONE,       /* the node does not claim inbound connections: not tested */
    SELFTEST_PENDING,    /* a peer was asked */
    SELFTEST_PASSED,     /* a peer connected and got the right answer */
    SELFTEST_FAILED,     /* a peer could not connect, or the node has no listener */
    SELFTEST_UNVERIFIED, /* no other alive node to test it yet */
};

typedef struct selftest {
    enum selftest_state state;
    unsigned port;                /* the node's listener (Register.probe_port), 0 = none */
    char token[40];               /* what the peer must read back */
    char peer[WIRE_MAX_NAME + 1]; /* node asked to connect, "" none */
    int64_t deadline_mono;        /* ms: the peer's answer is late after this */
    int tries;                    /* peers asked for this registration */
} selftest_t;

typedef struct node {
    Wslq__NodeInfo *info; /* owned; name, hostname, ip, cpus, mem, gpus, attrs */
    peer_t peer;          /* its worker's connection; len 0 = not connected in this run */
    enum node_state state;
    int64_t last_seen_mono; /* ms */
    uint32_t next_hb_ms;    /* the interval its last Register or Heartbeat announced; 0 unknown */
    int hb_warned;          /* the "interval too long for --lost" warning was logged */
    selftest_t selftest;
    int64_t clock_offset_ms; /* last reported offset against our clock, for change detection */
    uint32_t clock_rtt_ms;   /* round trip of that measurement */
    int clock_known;         /* the two above hold a report */
    int drained;             /* an admin drained it (wslq drain): nothing new is placed */
    queue_drain_t drain;     /* why, since when, by whom (kept in the queue's node_drains) */
    char tags[WIRE_MAX_TAGS * (WIRE_MAX_TAG + 1)]; /* wslq admin node tag: "a,b"; "" none */
    /* The PC owner, as its worker last said (Register, Heartbeat; memory only): state 0
     * unknown, 1 away, 2 present, 3 gaming; policy 0 ignore, 1 yield (worker/owner.h). */
    uint32_t owner_state;
    uint32_t owner_policy; /* 2 suspend, 3 evict (preempt.c) */
    char owner_why[WIRE_MAX_CHECK_TEXT + 1];
    char owner_user[WIRE_MAX_NAME + 1]; /* the PC owner's user: its jobs run there anyway */
    uint32_t owner_suspend_max_s;       /* suspend: evict a job stopped longer; 0 = 1800 */
    /* jobs that failed here with a GPU reset (TDR) since the scheduler started */
    uint64_t gpu_resets;
    /* sched_t.n_passes when it went torpid: back with no pass run meanwhile, no pass runs for
     * it (nothing was decided without it) */
    uint64_t torpid_passes;
} node_t;

/* ---- jobs (jobs.c, gang.c, place.c) ---- */

typedef struct kv_entry {
    char *key;      /* owned */
    uint8_t *value; /* owned */
    size_t len;     /* bytes of value */
} kv_entry_t;

/* A job array's tasks in the registry share one of these: the %K cap needs how many run. */
typedef struct jobs_array {
    uint64_t id;     /* the array's id (its first task's) */
    uint32_t limit;  /* %K; 0 = no cap */
    uint32_t active; /* its tasks in the registry that are STARTING or RUNNING */
    size_t refs;     /* its tasks in the registry */
} jobs_array_t;

typedef struct job {
    Wslq__JobInfo *info; /* owned; mirrored in the queue */
    jobs_array_t *array; /* an array task in the registry: its array; NULL otherwise */
    jobsm_t sm;          /* parts, end cause, kill sent, requeue backoff */
    int64_t phase_mono;  /* ms: when the current state began (time limit, start timeout) */
    kv_entry_t *kv;      /* owned array: the job's rendezvous store */
    size_t n_kv;
    uint64_t kv_bytes; /* keys + values */
    /* place.c's sets (place_track): in the ordered pending set; index in self->live + 1
     * (0 = not there) */
    int in_pend;
    /* the active job it was last found waiting for (its reason says so); 0 = none. Cleared by
     * any event applied to it or reason set: a pass passes over it while that job is active */
    uint64_t blocked_on;
    size_t live_slot;
    /* the ids of pending jobs that wait for this one to end (afterok, afterany, afternotok),
     * tried again when it leaves the active jobs (place_wake); some may have gone since */
    uint64_t *waiters;
    size_t n_waiters, cap_waiters;
    /* fairshare.c: its user, what of it the user's counts hold now (FS_COUNTED_*), and when
     * the run it counts began (wall ms) */
    struct fs_user *fs_user;
    unsigned fs_counted;
    int64_t fs_start_ms;
} job_t;

/* An entry of the ordered pending set (place.c): the order's key kept beside the job, so
 * an entry can be found by binary search after its job is gone (job NULL: a hole, dropped
 * at the next compaction). */
typedef struct pend_entry {
    int32_t priority;
    uint32_t user; /* fairshare.c's number for the job's user (the pass's merge) */
    uint64_t id;
    int64_t submit_ms;         /* the job's, for its age (the pass's merge) */
    const jobs_array_t *array; /* the job's array, NULL none: the pass skips the tasks of an
                                  array whose task did not fit without reading the jobs */
    job_t *job;
} pend_entry_t;

/* ---- parked requests (waiters.c) ---- */

enum waiter_kind { WAIT_LOGS, WAIT_KV, WAIT_WATCH };

typedef struct waiter {
    enum waiter_kind kind;
    peer_t peer;
    uint64_t request_id;
    uint64_t job_id;    /* logs, kv */
    uint64_t offset;    /* logs: read from here; watch: the version the client has */
    uint32_t max_bytes; /* logs */
    char *key;          /* kv: owned; NULL otherwise */
    int64_t deadline_mono;
} waiter_t;

/* ---- connections (conns.c) ---- */

typedef struct conns conns_t;

/* ---- the outbox (outbox.c) ---- */

/* How long a worker's ended ack may wait for a sync that a later turn does anyway. */
#define OUT_HOLD_MS 25

typedef struct out {
    peer_t peer;
    uint64_t request_id; /* of the request this answers; 0 = sent unasked */
    uint8_t *buf;        /* owned, packed envelope */
    size_t len;
    int can_wait; /* a worker's ended ack: it may wait for a later turn's sync (OUT_HOLD_MS) */
} out_t;

struct sched {
    sched_config_t cfg;
    char *state_dir;
    char *log_dir;
    char endpoint[256];
    void *zctx;
    int own_zctx; /* we made zctx (not given in cfg) */
    void *router;
    void *admin_router; /* ipc://<state-dir>/admin.sock: the local admin, no CURVE */
    char admin_path[4096];
    void *zap; /* the ZAP handler (auth.c) */
    keys_creds_t server_keys;
    char advertise[256]; /* the address codes give: where clients and workers connect */
    auth_key_t *keys;    /* the principals, sorted by key */
    size_t n_keys;
    wq_ratelimit_t auth_rl, enrol_rl;
    conns_t *conns; /* connection accounting and caps on the ROUTER */
    int usock_fd;   /* the user socket's listening fd (usock.c); -1 = none */
    char usock_path[4096];
    struct uconn **uconns; /* its open connections */
    size_t n_uconns;
    uint64_t usock_serial; /* the last connection's serial */
    struct pollfd *pfd;    /* sched_turn's poll set, grown as needed */
    size_t cap_pfd;
    size_t max_conns;       /* SCHED_MAX_CONNS, lower when the descriptor limit is */
    int64_t next_trim_mono; /* ms: when freed memory is next given back to the system (0:
                               nothing was freed since the last time) */
    size_t trim_free_after; /* bytes free in malloc's arenas after the last trim */
    notify_t *notify;       /* the webhook sender (notify.c); NULL when none is configured */
    int wake_fd[2];         /* a pipe: sched_stop (a signal handler) and sched_wake wake the poll */
    int sock_quiet[4];      /* sched_turn: 1 when ZMQ_EVENTS said nothing and nobody read since */
    wq_ratelimit_t conn_rl;
    queue_t *q;
    volatile sig_atomic_t stop;
    int failed;          /* a database write failed: nothing more is sent or committed */
    wq_error_t fail_err; /* what failed */
    int lock_fd;         /* <state-dir>/scheduler.lock, held (flock) while we run */

    node_t **nodes;
    size_t n_nodes;
    /* nodes.c: the nodes by their connection (open addressing, rebuilt when stale), the
     * earliest a node's silence may be due (a lower bound: nodes_tick sets it exactly), and
     * when heartbeats' GPU metrics last bumped stats.version */
    node_t **node_peers;
    size_t node_peers_cap;
    int node_peers_stale;
    int64_t nodes_due;
    int64_t metrics_bumped_mono;
    int metrics_unpublished;
    /* no pending self-test's deadline is before this (selftest.c); 0: none pending */
    int64_t selftest_due;
    job_t **jobs; /* active jobs, ascending id */
    size_t n_jobs;
    size_t cap_jobs;
    jobs_array_t **arrays; /* arrays with tasks in the registry, ascending id */
    size_t n_arrays;
    waiter_t *waiters;
    size_t n_waiters;
    out_t *outs;
    size_t n_outs, cap_outs;
    /* messages of turns committed without a sync that can wait for one (out_hold), in the
     * order they were made; sent before the next turn's, at the latest at held_due */
    out_t *held;
    size_t n_held, cap_held;
    int64_t held_due; /* monotonic ms; 0 = nothing held */

    int dirty; /* run a full placement pass this turn */
    /* place.c: the PENDING jobs in placement order (priority, then id), holes included; the
     * ids of jobs that became pending since the last pass (tried alone when nothing else
     * changed); whether a job left the active set since the last full pass (dependencies
     * to check again); the active jobs the timers must look at (not PENDING, or PENDING
     * with a requeue backoff) */
    pend_entry_t *pend;
    size_t n_pend, cap_pend, n_pend_holes;
    int pend_unsorted; /* appended out of order (a bulk load): sorted at the next pass */
    uint64_t *fresh;
    size_t n_fresh, cap_fresh;
    int place_ended; /* look at every pending job past the last free CPU (see place.c) */
    /* the waiters of jobs that left the active jobs, for the next full pass to try; those it
     * could not try yet (held, in a backoff, their array at its cap) stay for the next */
    uint64_t *woken;
    size_t n_woken, cap_woken;
    int placing;       /* in place_pass: the pending set is not compacted under its sweep */
    int place_waiting; /* a pending job waits for resources: a new one waits its turn */
    int sets_built;    /* the sets above are built (from the active jobs, when first needed) */
    uint64_t n_passes; /* placement passes that looked at jobs (full or of new jobs alone) */
    job_t **live;
    size_t n_live, cap_live;
    unsigned next_port;
    wq_ratelimit_t bad_rl;
    sched_stats_t stats;
    uint64_t seen_version; /* version when parked watches were last checked */
    sched_hook_f hook;
    void *hook_arg;
    int64_t hook_due;    /* monotonic ms the hook asked to run again by (INT64_MAX: no need) */
    struct backfill *bf; /* backfill.c: the last pass's plan and reservations; NULL = none */
    struct fs_core *fs;  /* fairshare.c: usage, shares, limits, the pass's order */
    /* snapshots.c: upload leases, the next removal sweep */
    struct snapstore *snap;
};

/* A message as handlers see it. */
typedef struct msg {
    const peer_t *from;
    const who_t *who; /* the principal: identity never comes from message fields */
    node_t *node;     /* the registered, not lost worker that sent it; NULL for the CLI */
    Wslq__Envelope *env;
} msg_t;

/* sched.c: the database, and the stop on failure */
void sched_db_begin(sched_t *self);
/* A database write failed: memory is ahead of the disk. Stop the loop at the end of this
 * turn without committing or sending anything; sched_run returns -1. */
void sched_fatal(sched_t *self, const wq_error_t *err);
/* Count v in the histogram bucket whose upper bound first holds it. */
void sched_observe(uint64_t *buckets, const double *bounds, size_t n, double v);

/* outbox.c: queued until the turn commits */
void out_push(sched_t *self, const peer_t *to, Wslq__Envelope *env);
void out_error(sched_t *self, const peer_t *to, uint64_t request_id, const wq_error_t *err);
void out_submit_reply(sched_t *self, const peer_t *to, uint64_t rid, Wslq__SubmitReply *b);
void out_queue_reply(sched_t *self, const peer_t *to, uint64_t rid, Wslq__QueueReply *b);
void out_show_reply(sched_t *self, const peer_t *to, uint64_t rid, Wslq__ShowReply *b);
void out_logs_reply(sched_t *self, const peer_t *to, uint64_t rid, Wslq__LogsReply *b);
void out_cancel_reply(sched_t *self, const peer_t *to, uint64_t rid, Wslq__CancelReply *b);
void out_nodes_reply(sched_t *self, const peer_t *to, uint64_t rid, Wslq__NodesReply *b);
void out_kv_reply(sched_t *self, const peer_t *to, uint64_t rid, Wslq__KvReply *b);
void out_watch_reply(sched_t *self, const peer_t *to, uint64_t rid, Wslq__WatchReply *b);
void out_reg_reply(sched_t *self, const peer_t *to, uint64_t rid, Wslq__RegisterReply *b);
void out_reregister(sched_t *self, const peer_t *to);
void out_ended_ack(sched_t *self, const peer_t *to, Wslq__JobEndedAck *b);
void out_probe(sched_t *self, const peer_t *to, Wslq__ProbeRequest *b);
void out_enrol_reply(sched_t *self, const peer_t *to, uint64_t rid, Wslq__EnrolReply *b);
void out_admin_reply(sched_t *self, const peer_t *to, uint64_t rid, Wslq__AdminReply *b);
void out_token_reply(sched_t *self, const peer_t *to, uint64_t rid, Wslq__TokenReply *b);
void out_control_reply(sched_t *self, const peer_t *to, uint64_t rid, Wslq__JobControlReply *b);
void out_why_reply(sched_t *self, const peer_t *to, uint64_t rid, Wslq__WhyReply *b);
void out_history_reply(sched_t *self, const peer_t *to, uint64_t rid, Wslq__HistoryReply *b);
void out_usage_reply(sched_t *self, const peer_t *to, uint64_t rid, Wslq__UsageReply *b);
void out_update_reply(sched_t *self, const peer_t *to, uint64_t rid, Wslq__UpdateReply *b);
/* To a node's worker by name; dropped if it is not connected. */
void out_launch(sched_t *self, const char *node, Wslq__JobLaunch *b);
void out_kill(sched_t *self, const char *node, Wslq__JobKill *b);
void out_suspend(sched_t *self, const char *node, Wslq__JobSuspend *b);
/* 1 if the turn has made a message that may not wait: a reply, a launch, a kill, anything
 * but a worker's ended ack. */
int out_owed(const sched_t *self);
/* The turn committed without a sync and all it made can wait: keep it for a later turn's
 * out_flush, due by now + OUT_HOLD_MS at the latest. */
void out_hold(sched_t *self, int64_t now);
/* Send everything held and queued, in the order made. Only after a COMMIT that waited for
 * the disk (queue_commit). */
void out_flush(sched_t *self);
/* Free what is queued and held, unsent (a worker re-sends what it has no ack for). */
void out_discard(sched_t *self);
/* The turn failed: what was queued is not on disk. Every request of the turn is answered
 * with an error saying why instead, and nothing else is sent. */
void out_fail_requests(sched_t *self, const wq_error_t *why);

/* conns.c: the ROUTER's connections, counted and capped */
conns_t *conns_new(void *zctx, void *router, wq_error_t *err);
size_t conns_count(const conns_t *cs); /* the ROUTER's open connections */

/* usock.c: the user socket on the scheduler host (a Unix stream, no ZeroMQ): each connection
 * is known by the uid the kernel gives (SO_PEERCRED); auth_who maps it to the enrolled user
 * of the account's name. */
int usock_open(sched_t *self, wq_error_t *err);
void usock_close(sched_t *self);
/* Add the listening fd and every connection's to pfd (grown in self->pfd) from index *n. */
void usock_poll_add(sched_t *self, size_t *n);
/* After the poll: accept, read and dispatch, write, close; pfd[first..] as usock_poll_add
 * left them. */
void usock_events(sched_t *self, size_t first, size_t n);
/* out_flush: queue a packed envelope to a local peer; a closed connection drops it. */
void usock_send(sched_t *self, const peer_t *to, const uint8_t *buf, size_t len);
/* After out_flush: connections with nothing more to send that are to close are closed. */
void usock_flushed(sched_t *self);
int64_t usock_next_timer(const sched_t *self);
void usock_tick(sched_t *self, int64_t now);
/* The account name of a local peer ("" when its uid has none). */
const char *usock_account(const sched_t *self, const peer_t *p);
void conns_destroy(conns_t **self_p);
void *conns_socket(conns_t *self); /* to poll: readable when there are events */
void conns_events(sched_t *self, conns_t *cs);

/* auth.c: keys, principals, the ZAP handler, enrolment, administration, tokens */
int auth_open(sched_t *self, wq_error_t *err); /* before the ROUTER binds */
void auth_close(sched_t *self);
void *auth_zap_socket(sched_t *self); /* NULL when insecure */
void auth_zap(sched_t *self);
/* The principal of a message: from its connection's User-Id (ZAP's answer) and socket. */
void auth_who(sched_t *self, const peer_t *from, const char *user_id, who_t *who);
void handle_enrol(sched_t *self, const msg_t *m);
void handle_admin(sched_t *self, const msg_t *m);
void handle_token(sched_t *self, const msg_t *m);

/* dispatch.c */
void dispatch(sched_t *self, const peer_t *from, const char *user_id, Wslq__Envelope *env);

/* jobs.c: the registry, the journal and the CLI's job requests */
job_t *jobs_find(sched_t *self, uint64_t id);
void jobs_load(Wslq__JobInfo *info, void *arg); /* queue_list callback at start */
void jobs_free_all(sched_t *self);
/* Run one event through the state machine and carry out what it returns. 0 applied, 1 stale,
 * -1 refused (logged). The job may be gone afterwards (ended): do not touch it. */
int jobs_apply(sched_t *self, job_t *job, jobsm_event_t *ev);
/* A kill's SIGTERM-to-SIGKILL grace in ms: the configured kill grace, at most 5 s for a broken
 * gang, the preempt grace for a preemption or eviction. */
int64_t jobs_kill_grace_ms(const sched_t *self, jobsm_grace_t g);
/* Write the job's row as it is now (reasons and other fields outside a transition). */
void jobs_save(sched_t *self, job_t *job);
/* Set why a pending job waits (a word and a sentence), writing it only when it changed. */
void jobs_set_reason(sched_t *self, job_t *job, Wslq__WaitReason code, const char *why);
/* 1 if the job's reason is already "waiting for job DEP" followed by tail (WAIT_DEPENDENCY): a
 * pass that looks at a waiting job again formats no reason that would not change. */
int jobs_waits_for(const job_t *job, uint64_t dep, const char *tail);
/* The job waits for the active job dep: its reason becomes "waiting for job DEP" + tail
 * (written only when it changes) and a pass passes over it while dep is active (blocked_on). */
void jobs_wait_dep(sched_t *self, job_t *job, uint64_t dep, const char *tail);
/* Refuse, with the reason, a request about a job this principal may not touch. 1 = refused. */
int jobs_forbid(sched_t *self, const msg_t *m, const Wslq__JobInfo *info, const char *what);
void handle_submit(sched_t *self, const msg_t *m);
void handle_queue(sched_t *self, const msg_t *m);
void handle_show(sched_t *self, const msg_t *m);
void handle_cancel(sched_t *self, const msg_t *m);
void handle_control(sched_t *self, const msg_t *m);
void handle_why(sched_t *self, const msg_t *m);
/* Dependencies besides afterok (place.c's deps): afterany, afternotok, singleton. At submit:
 * 0, or -1 with why the job could never start. In a pass: 1 when the job waits (its reason
 * set) or was just cancelled because one can never be met (freed: do not touch it), 0 when
 * they allow it to start. */
int jobs_deps_admit(sched_t *self, const Wslq__JobSpec *spec, wq_error_t *err);
int jobs_deps_wait(sched_t *self, job_t *job);
/* The one job a selector names ("42", "40_7"): 0 and *id, or -1 with *err. */
int jobs_select_one(sched_t *self, const char *text, uint64_t *id, wq_error_t *err);
/* Shared by jobs.c, jobsel.c and why.c. */
int jobs_is_active(Wslq__JobState st); /* PENDING, STARTING or RUNNING */
/* A job's state: the registry's, else the queue's; 0 (UNSPECIFIED) when there is none. */
Wslq__JobState jobs_state_of(sched_t *self, uint64_t id);
/* The job of the same user and name that keeps a singleton job waiting, or NULL. */
const job_t *jobs_singleton_blocker(sched_t *self, const job_t *job);
/* A job's info: the registry's (borrowed) or read from the queue (*owned set); NULL with
 * *err. Give it back with jobs_unlookup. */
Wslq__JobInfo *jobs_lookup(sched_t *self, uint64_t id, int *owned, wq_error_t *err);
void jobs_unlookup(Wslq__JobInfo *info, int owned);
Wslq__JobInfo *jobs_info_dup(const Wslq__JobInfo *info); /* a deep copy; caller frees */
/* A listed copy's wait reason, worked out now for an array task the pass skipped. */
void jobs_listing_reason(sched_t *self, Wslq__JobInfo *copy);
/* 1 if the job is an array task and its array already runs %K tasks: not placed now. */
int jobs_array_full(const job_t *job);

/* jobsel.c: the registry's jobs a request's selectors name (ended ones left out of an array or
 * a task list); alone[i] is set for a job named by itself. 0 with *jobs and *alone (caller
 * frees both), or -1 after answering the error (nothing changed). */
int jobs_resolve_selectors(sched_t *self,
                           const msg_t *m,
                           char **selectors,
                           size_t n_sel,
                           const char *what,
                           job_t ***jobs,
                           unsigned char **alone,
                           size_t *n);

/* acct.c: wslq history, wslq usage, wslq update */
void handle_history(sched_t *self, const msg_t *m);
void handle_usage(sched_t *self, const msg_t *m);
void handle_update(sched_t *self, const msg_t *m);

/* gang.c: the parts of a started job on their nodes */
int gang_part_of(const Wslq__JobInfo *info, const char *node); /* alloc index, -1 none */

/* isolcpus.c: the CPUs a job's part is bound to, as its worker reports them (Alloc.cpus). */
void isol_set_cpus(job_t *job, int part, const char *cpus);
void isol_heartbeat_cpus(sched_t *self, const node_t *nd, const Wslq__Heartbeat *hb);
void gang_launch(sched_t *self, job_t *job, size_t k);
/* tfcfg.c: TensorFlow jobs (spec.tf). tfcfg_reserve fills info->tf_ports, one port per
 * global rank from the MASTER_PORT range, none held by a started job (nothing for other jobs);
 * tfcfg_workers gives every rank's "host:port" in rank order (free with tfcfg_workers_free). */
int tfcfg_port_used(const Wslq__JobInfo *info, unsigned port);
void tfcfg_reserve(sched_t *self, Wslq__JobInfo *info);
char **tfcfg_workers(const Wslq__JobInfo *info, size_t *n);
void tfcfg_workers_free(char **v, size_t n);
void gang_kill(sched_t *self, job_t *job, const char *reason, int64_t grace_ms);
/* JobSuspend to every part not ended: stop (info->suspended) or continue its ranks. */
void gang_suspend(sched_t *self, job_t *job, const char *reason);
/* The node was lost: every part it held ends lost. */
void gang_node_lost(sched_t *self, node_t *nd);
/* The node (re)registered listing what it runs: adopt those parts, kill what it should not
 * run, resend lost launches, start the grace of parts it forgot. Fills the reply's lists. */
void gang_on_register(sched_t *self, node_t *nd, const Wslq__Register *r, Wslq__RegisterReply *rep);
void gang_free_register_reply(Wslq__RegisterReply *rep);
void gang_tick(sched_t *self, int64_t now);
/* The monotonic ms at which gang_tick next has work (INT64_MAX: none); likewise the other
 * *_next_timer functions for their ticks. */
int64_t gang_next_timer(sched_t *self);
void handle_started(sched_t *self, const msg_t *m);
void handle_ended(sched_t *self, const msg_t *m);
void handle_rank_failed(sched_t *self, const msg_t *m);

/* jobnotify.c: --notify. A submit asking for it needs a webhook for its user; each state
 * change (and requeue) it asked for is staged for the turn's commit. */
int jobnotify_admit(sched_t *self, const Wslq__JobSpec *spec, wq_error_t *err);
void jobnotify_change(sched_t *self, const job_t *job, Wslq__JobState old, int requeued);

/* place.c: the scheduling pass */
/* What a job asks of the policy (its type string borrowed from the spec). */
void place_req_of(const Wslq__JobSpec *s, policy_req_t *r);
/* Keeps the job in the sets the pass and the timers read up to date with its state: called
 * when it joins the active jobs, after each event applied to it, and (gone = 1) just before
 * it leaves them. */
void place_track(sched_t *self, job_t *job, int gone);
/* The job leaves the active jobs for good (jobs_remove): the jobs waiting for its end are
 * tried at the next full pass. */
void place_wake(sched_t *self, job_t *job);
void place_free(sched_t *self);
/* The active jobs that are not PENDING, and PENDING ones in a requeue backoff (unordered). */
job_t *const *place_live(sched_t *self, size_t *n);
/* Runs when something changed that could let a job start (self->dirty) or new jobs are
 * pending; a pass for new jobs alone tries only them. */
void place_pass(sched_t *self);
/* At submit: 0 if the job could ever run, else -1 and why not ("job refused: no node has 4
 * GPUs; the largest has 2", "job refused: dependency job 7 not found"). *n_nodes: nodes
 * known. */
int place_admit(sched_t *self, const Wslq__JobSpec *spec, size_t *n_nodes, wq_error_t *err);
/* For wslq why: 1 if the job fits the free resources now, 0 if it does not (why says which),
 * -1 if no known node could ever run it (why says). */
int place_explain(sched_t *self, const Wslq__JobSpec *spec, char *why, size_t size);

/* backfill.c: reservations and backfill in the placement pass (planning in bfplan.c) */
/* At the start of a pass, after the snapshot pn: the running jobs' parts until their planned
 * end; a pass for new jobs alone (full = 0) makes the last pass's reservations again. */
void backfill_begin(sched_t *self, const policy_node_t *pn, size_t nn, int full);
/* 1 if the pass should go on looking at jobs that cannot start (to reserve for them). */
int backfill_wants(const sched_t *self);
/* policy_place for a job in the pass, around the reservations: 1 placed (*c; the caller takes
 * and starts it), 0 waits (why; reserved for when backfill_depth allows), 2 would fit now
 * but the resources are kept for a reservation (why; kept_for_job set), -1 a job of the same
 * request and no shorter time already failed in this pass: nothing to do. pn: the nodes the
 * job may use (narrowed), left as they were. With backfill off, policy_place. */
int backfill_place(sched_t *self,
                   job_t *job,
                   policy_node_t *pn,
                   size_t nn,
                   const policy_req_t *req,
                   policy_choice_t *c,
                   char *why,
                   size_t size);
/* At the end of a pass: the estimates of the reserved jobs written to their records (those
 * that lost theirs cleared), when they changed. */
void backfill_end(sched_t *self, const policy_node_t *pn, size_t nn);
void backfill_free(sched_t *self);
/* fairshare.c: fair-share order and per-user limits (the formulas: fairshare.h) */
/* After the queue is open, before the active jobs load: usage from the ended jobs. */
int fairshare_open(sched_t *self, wq_error_t *err);
void fairshare_close(sched_t *self);
/* place_track's hook: the job's user counts it as pending or running, and a run that stopped
 * adds its GPU- and CPU-seconds to the user's usage. */
void fairshare_track(sched_t *self, job_t *job, int gone);
/* The number of the job's user, for its pend_entry_t. */
uint32_t fairshare_user_no(sched_t *self, job_t *job);
/* A full pass's order: begin refreshes every user's factor and prepares a merge of
 * self->pend by effective priority; next gives the next index into self->pend, or
 * self->n_pend at the end. */
void fairshare_order_begin(sched_t *self);
size_t fairshare_order_next(sched_t *self);
/* Sort jobs (the new ones of a pass) by effective priority, then id. */
void fairshare_sort(sched_t *self, job_t **jobs, size_t n);
/* 1 if the job's user already runs as many GPUs or jobs as a limit allows (the job's reason
 * is set: WAIT_LIMIT), else 0. */
int fairshare_over_limit(sched_t *self, job_t *job);
/* At submit of n jobs of this spec: 0, or -1 with why (over the pending limit, or more GPUs
 * than the user may ever run at once). */
int fairshare_admit(sched_t *self, const Wslq__JobSpec *spec, size_t n, wq_error_t *err);
/* wslq show / why: the effective priority and its factors onto a copy of a pending job. */
void fairshare_fill(sched_t *self, const job_t *job, Wslq__JobInfo *shown);
/* 1 if a is placed before b (both pending). */
int fairshare_before(sched_t *self, const job_t *a, const job_t *b);
/* One line for wslq why: the effective priority, its parts and the user's standing. */
void fairshare_why(sched_t *self, const job_t *job, char *buf, size_t size);
void handle_share(sched_t *self, const msg_t *m);
/* preempt.c: preemption in the pass, and the PC owner's suspend and evict policies */
/* The lowest priority of a started preemptible job not already ending; INT32_MAX if none. A
 * job of a higher priority than this may preempt. */
int32_t preempt_floor(sched_t *self);
/* The job does not fit on pn (the pass's view, narrowed to the nodes it may use): preempt
 * the fewest lower-priority preemptible jobs that let it fit (JOBSM_EV_PREEMPT). Returns 1
 * if room is being made for it (victims chosen now, or earlier ones still stopping), with a
 * note appended to why; 0 if preemption cannot help. */
int preempt_for(sched_t *self,
                job_t *job,
                const policy_node_t *pn,
                size_t nn,
                const policy_req_t *req,
                char *why,
                size_t whylen);
/* A report of the node's owner: stop, continue or evict the preemptible jobs there as its
 * policy says (suspend, evict), and evict those suspended past the node's maximum. */
void preempt_owner(sched_t *self, node_t *nd);
/* 1 if the user is the node's owner (owner_user): their jobs run there regardless. */
int preempt_owner_may_run(const node_t *nd, const char *user);
/* The ids of the jobs suspended on the node, at most cap. */
size_t preempt_suspended_on(sched_t *self, const node_t *nd, uint64_t *ids, size_t cap);
/* ---- choosing and sharing GPUs (gpushare.c) ---- */

/* A GPU's model, memory and kind for the policy (use zero). */
void gpushare_policy_gpu(const Wslq__GpuInfo *gi, policy_gpu_t *pg);
/* A live part's hold on GPU 'gpu': shared by its --gpu-mem, or whole. */
void gpushare_take(policy_node_t *p, const Wslq__Alloc *a, uint32_t gpu);
/* After every take: each GPU's use by others (gpushare.c says how it is estimated). */
void gpushare_other(const Wslq__NodeInfo *ni, policy_node_t *p);
/* A new part's share, its GPUs' memory and DirectX LUIDs (start_job). */
void gpushare_alloc(const Wslq__JobSpec *s, const Wslq__NodeInfo *ni, Wslq__Alloc *a);
/* nodes_refresh: clear the GPUs' sharing view; add a live part (1 if it shares, then its
 * GPUs get no job_id); work out the memory others hold. */
void gpushare_refresh_begin(Wslq__NodeInfo *ni);
int gpushare_refresh_part(Wslq__NodeInfo *ni, uint64_t job_id, const Wslq__Alloc *a);
void gpushare_refresh_end(Wslq__NodeInfo *ni);

/* nodes.c */
node_t *nodes_by_name(sched_t *self, const char *name);
node_t *nodes_by_peer(sched_t *self, const peer_t *p);
void nodes_load(Wslq__NodeInfo *info, void *arg); /* queue_list_nodes callback at start */
void nodes_free_all(sched_t *self);
void nodes_set_attr(Wslq__NodeInfo *ni, const char *key, const char *value);
/* Allocation, GPU holders and state name brought up to date from the active jobs. */
void nodes_refresh(sched_t *self, node_t *nd);
/* 1 if new jobs may be placed on the node: alive, and room in its spool (disk.spool). */
int nodes_takes_jobs(const node_t *nd);
/* 1 if the node would take jobs but for its owner: policy yield and the owner not away. */
int nodes_owner_blocks(const node_t *nd);
/* "unknown", "away", "present", "gaming"; "ignore", "yield". */
const char *nodes_owner_state_name(uint32_t s);
const char *nodes_owner_policy_name(uint32_t p);
/* A message came from this node's worker: it is alive. */
void nodes_seen(sched_t *self, node_t *nd);
void nodes_tick(sched_t *self, int64_t now);
/* The longest heartbeat interval taken as announced: half of lost_ms (two heartbeats before a
 * loss), at most UINT32_MAX. Each RegisterReply tells the worker (idle_heartbeat_max_ms). */
uint32_t nodes_idle_max_ms(int64_t lost_ms);
/* How long a node may stay silent before it is torpid: max(torpid_ms, 1.5 x the interval it
 * announced), the interval taken as at most nodes_idle_max_ms (*clamped = 1 when longer), so
 * a node is torpid after a missed heartbeat and a half and lost after two or more. */
int64_t nodes_torpid_ms(int64_t torpid_ms, int64_t lost_ms, uint32_t next_hb_ms, int *clamped);
/* A Register's or Heartbeat's next_heartbeat_ms; one too long for lost_ms is logged once. */
void nodes_announce(sched_t *self, node_t *nd, uint32_t next_hb_ms);
int64_t nodes_next_timer(const sched_t *self);
/* An admin removed the node: it is lost now (its jobs end or requeue) and forgotten. */
void nodes_forget(sched_t *self, const char *name);
/* Drained nodes from the queue, onto the nodes loaded (at start, after nodes_load). */
int nodes_load_drains(sched_t *self, wq_error_t *err);
/* `wslq drain`: nothing new goes to the node; with now, its running jobs are requeued
 * (JOBSM_EV_DRAIN: SIGTERM, then the kill grace). *running: the jobs still on it. 0, or -1
 * with *err (unknown node). Inside the turn's transaction. */
int nodes_drain(sched_t *self,
                const char *name,
                const char *reason,
                const char *by,
                int now,
                unsigned *running,
                wq_error_t *err);
/* `wslq resume`: the node takes jobs again. 0, or -1 with *err (unknown or not drained). */
int nodes_resume(sched_t *self, const char *name, const char *by, wq_error_t *err);
/* Tags from the queue onto the nodes loaded (at start). */
int nodes_load_tags(sched_t *self, wq_error_t *err);
/* `wslq admin node tag`: the node's tags become these (none: cleared). 0, or -1 with *err. */
int nodes_tag(
    sched_t *self, const char *name, char *const *tags, size_t n, const char *by, wq_error_t *err);
/* 1 if the job may run on the node: in its --nodelist (when it has one), not in its
 * --exclude, and carrying every --constraint tag. */
int nodes_match(const node_t *nd, const Wslq__JobSpec *spec);
void handle_register(sched_t *self, const msg_t *m);
void handle_heartbeat(sched_t *self, const msg_t *m);
void handle_nodes(sched_t *self, const msg_t *m);

/* selftest.c: the inbound connection test */
void selftest_on_register(sched_t *self, node_t *nd, int claims_inbound, unsigned port);
void selftest_tick(sched_t *self, int64_t now);
int64_t selftest_next_timer(const sched_t *self);
/* The policy's view of a node's test. */
int selftest_policy_state(const node_t *nd);
void handle_probe_result(sched_t *self, const msg_t *m);

/* kv.c: the per-job rendezvous store */
void kv_clear(job_t *job);
void kv_reply_to(sched_t *self, const peer_t *to, uint64_t request_id, const kv_entry_t *e);
void handle_kv(sched_t *self, const msg_t *m);

/* logs.c: job output and metrics under <state-dir>/logs */
char *
logs_path(sched_t *self, uint64_t id, int node_rank); /* caller frees; node_rank < 0: merged */
int64_t logs_size(const char *path);
/* Bytes of part k's output for this attempt that we hold (the worker's offset to resume at). */
uint64_t logs_received(sched_t *self, uint64_t id, uint32_t attempt, size_t k, size_t nparts);
/* 1 when every part that ended has had all the output its JobEnded counted arrive. */
int logs_complete(sched_t *self, const Wslq__JobInfo *info);
void logs_answer(sched_t *self, const waiter_t *w);
void handle_logs(sched_t *self, const msg_t *m);
void handle_log_chunk(sched_t *self, const msg_t *m);
void handle_metrics(sched_t *self, const msg_t *m);

/* waiters.c: parked `logs -f`, `kv wait` and `watch` requests */
/* Park a request until what it waits for happens or its deadline. -1 with err (and w->key
 * freed) over SCHED_MAX_WAITERS or SCHED_MAX_WAITERS_PER_PEER: the caller answers with err. */
int waiters_park(sched_t *self, waiter_t *w, wq_error_t *err);
void waiters_wake_logs(sched_t *self, uint64_t job_id);
/* Answer every parked WAIT for this key with entry e. */
void waiters_wake_kv(sched_t *self, uint64_t job_id, const char *key, const kv_entry_t *e);
void waiters_wake_watch(sched_t *self);
void waiters_expire(sched_t *self, int64_t now);
int64_t waiters_next_timer(const sched_t *self);
void waiters_free_all(sched_t *self);
void handle_watch(sched_t *self, const msg_t *m);

#endif
