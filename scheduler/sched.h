/* The scheduler core: one thread, zmq_poll over the ROUTER socket plus timers. Owns the node
 * registry, the active jobs (PENDING/STARTING/RUNNING, mirrored in the queue), placement
 * passes, the per-job key/value store and parked log/kv/watch requests. Every state change
 * of a loop turn is written in one transaction, committed, and only then are replies and
 * launches sent. The files of the core and what each owns: README.md beside this file. */
#ifndef WSLQ_SCHED_H
#define WSLQ_SCHED_H

#include <stdint.h>

#include "common/err.h"
#include "proto/wire.h"

/* A user's own webhook for --notify (the config's notify-url.USER). */
typedef struct {
    const char *user;
    const char *url;
} sched_notify_url_t;

/* backfill_depth and default_time_limit (24 h) when the configuration does not say */
#define SCHED_BACKFILL_DEPTH_DEFAULT 8
#define SCHED_DEFAULT_TIME_LIMIT_MS  (24LL * 3600 * 1000)
struct fs_config; /* scheduler/fairshare.h */

typedef struct {
    const char *listen;        /* ZeroMQ endpoint, e.g. "tcp://0.0.0.0:7420" */
    const char *state_dir;     /* holds queue.db and logs/ */
    int sync_full;             /* SQLite synchronous=FULL (1) or NORMAL (0) */
    int64_t torpid_ms;         /* silent this long: no new jobs placed there */
    int64_t lost_ms;           /* silent this long: node lost, its jobs failed/requeued */
    int64_t start_timeout_ms;  /* every rank must report started within this */
    int64_t kill_grace_ms;     /* SIGTERM to SIGKILL on cancel and time limit */
    int64_t preempt_grace_ms;  /* SIGTERM to SIGKILL of a preempted or evicted job; 0 = the
                                  kill grace */
    int64_t missing_grace_ms;  /* a re-registered node that no longer runs a job: wait this
                                  long for its JobEnded before calling the job lost */
    unsigned port_lo, port_hi; /* MASTER_PORT range */
    unsigned kv_max_keys;      /* per job */
    uint64_t kv_max_bytes;     /* per job, keys + values */
    const char *http;          /* dashboard address, NULL = off (see http/http.c) */
    void *zctx;             /* ZeroMQ context to bind in (tests use inproc://), NULL = a new one */
    int insecure;           /* no CURVE: every peer is what it claims (throwaway clusters) */
    const char *advertise;  /* the address enrolment codes carry; NULL = a guess (first IPv4) */
    const char *admin_path; /* the local admin socket; NULL = <state_dir>/admin.sock, "" = none */
    const char *user_path;  /* the user socket (usock.c); NULL or "" = none */
    /* --notify webhooks: the lab's (NULL = none) and users' own, which win; with neither,
     * no sender thread runs and a --notify submit is refused. */
    const char *notify_url;
    const sched_notify_url_t *notify_urls;
    size_t n_notify_urls;
    int64_t notify_timeout_ms; /* one post */
    unsigned notify_retries;   /* posts after a failed one, the backoff doubling from 2 s */
    /* Called once when a database write fails, before the loop stops (sched_run then
     * returns -1 and nothing of that turn is sent). NULL = only logged. */
    void (*on_fatal)(const wq_error_t *err, void *arg);
    void *on_fatal_arg;
    /* Backfill (backfill.c): how many pending jobs get a reservation in a pass; 0 = off,
     * strict priority order as before. */
    unsigned backfill_depth;
    /* Planning only: how long a job with no --time counts as running (it is not stopped). */
    int64_t default_time_limit_ms;
    /* Fair-share weights, half-life, shares and per-user limits (scheduler/fairshare.h);
     * NULL = the defaults. Copied by sched_new. */
    const struct fs_config *fairshare;
    /* --workdir snapshots and --output (snapshots.c): the largest snapshot and output one
     * node sends (bytes, 0 = no limit), and how long an unused snapshot and an output are
     * kept (ms, 0 = removed at once). */
    uint64_t workdir_max_bytes;
    uint64_t output_max_bytes;
    int64_t snapshot_retention_ms;
    int64_t output_retention_ms;
} sched_config_t;

/* Fill defaults. */
void sched_config_init(sched_config_t *cfg);

typedef struct sched sched_t;

/* Open the queue, bind the socket. Caller owns the result. */
sched_t *sched_new(const sched_config_t *cfg, wq_error_t *err);
void sched_destroy(sched_t **self_p);

/* Run until sched_stop() (or SIGTERM/SIGINT caught by main). 0 on a clean stop, -1 if a
 * database write failed (err says what): memory is then ahead of the disk, and the caller
 * must exit; a restart reloads the last committed state. */
int sched_run(sched_t *self, wq_error_t *err);

/* One turn of the loop: wait up to timeout_ms (-1: until the next timer) for messages, handle
 * them, run due timers and a placement pass, commit, send. 0, or -1 as sched_run. For tests
 * that drive the core step by step. */
int sched_turn(sched_t *self, long timeout_ms, wq_error_t *err);

/* Ask the loop to stop at the end of its current turn (async-signal-safe). */
void sched_stop(sched_t *self);

/* Wake the loop for a turn now (its hook runs at the end of it); from any thread. */
void sched_wake(sched_t *self);

/* The endpoint actually bound (resolves port 0 / "*"). */
const char *sched_endpoint(const sched_t *self);

/* ---- Read-only views for the dashboard. Loop thread only: call them from the hook. ---- */

#define SCHED_WAIT_BUCKETS 10 /* queue wait histogram: upper bounds in sched_wait_bounds */
#define SCHED_LOOP_BUCKETS 8  /* loop turn time histogram: bounds in sched_loop_bounds */
extern const double sched_wait_bounds[SCHED_WAIT_BUCKETS]; /* seconds */
extern const double sched_loop_bounds[SCHED_LOOP_BUCKETS]; /* seconds */

typedef struct {
    uint64_t version;                         /* bumps on every job or node change */
    uint64_t jobs_changes;                    /* bumps (with version) on every job change */
    uint64_t submitted_total;                 /* accepted submissions */
    uint64_t refused_total;                   /* submissions refused (impossible, bad deps) */
    uint64_t ended_total[WIRE_JOB_STATES];    /* by final JobState */
    uint64_t requeued_total;                  /* retryable ends sent back to PENDING */
    uint64_t notify_sent_total;               /* webhook posts answered 2xx */
    uint64_t notify_failed_total;             /* webhook notifications given up */
    uint64_t notify_dropped_total;            /* dropped: too many waiting */
    uint64_t notify_pending;                  /* waiting for their (next) post */
    uint64_t preempted_total;                 /* jobs preempted for a higher-priority job */
    uint64_t evicted_total;                   /* preemptible jobs requeued by a PC's owner */
    uint64_t suspended_total;                 /* times a job was stopped for a PC's owner */
    uint64_t bad_frames_total;                /* frames wire_decode() refused */
    uint64_t conns_open;                      /* connections to the ROUTER now */
    uint64_t conns_refused_total;             /* shut over the total or per-address cap */
    uint64_t waiters;                         /* parked requests now */
    uint64_t waiters_refused_total;           /* parked requests refused over the caps */
    uint64_t auth_denied_total;               /* CURVE handshakes refused (revoked key, no CURVE) */
    uint64_t enrol_refused_total;             /* enrolments with a wrong, used or expired code */
    uint64_t forbidden_total;                 /* requests refused: not the job's owner, wrong kind
                                                 of key, a node speaking for another */
    uint64_t wait_bucket[SCHED_WAIT_BUCKETS]; /* starts with wait <= bound (not cumulative) */
    uint64_t wait_count;                      /* starts observed */
    double wait_sum_s;                        /* total wait of those starts, seconds */
    uint64_t loop_bucket[SCHED_LOOP_BUCKETS]; /* turns with work, by duration */
    uint64_t loop_count;                      /* turns with work */
    double loop_sum_s;                        /* their total duration, seconds */
} sched_stats_t;

const sched_stats_t *sched_stats(const sched_t *self);

/* Nodes, with allocation, GPU holders and state ("idle", "mixed", "allocated", "torpid",
 * "lost") brought up to date. Borrowed: valid until the loop's next turn. */
size_t sched_node_count(const sched_t *self);
const Wslq__NodeInfo *sched_node(sched_t *self, size_t i);

/* Active jobs (PENDING, STARTING, RUNNING), ascending id. Borrowed as above. */
size_t sched_job_count(const sched_t *self);
const Wslq__JobInfo *sched_job(const sched_t *self, size_t i);

/* The state directory: queue.db (open another connection to read history) and logs/. */
const char *sched_state_dir(const sched_t *self);

/* Called on the loop thread at the end of every turn, after replies are sent. Returns the
 * monotonic ms at which it wants the next turn even if nothing else happens (INT64_MAX: not
 * before the next message or timer): the loop sleeps no longer than that. */
typedef int64_t (*sched_hook_f)(sched_t *self, void *arg);
void sched_set_hook(sched_t *self, sched_hook_f fn, void *arg);

#endif
