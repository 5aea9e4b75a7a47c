/* The worker's insides, shared by its files and by nothing outside worker/ (worker.h is the
 * public face). One event loop, one thread (worker.c); each file owns one thing:
 *
 *   worker.c    lifecycle, the event loop and its poll timeout, signals, registration and the
 *               clock offset, dispatch of what the scheduler sends
 *   outbox.c    every message to the scheduler, each built by one typed helper
 *   streams.c   the jobs this worker holds: launch, kill, adoption, per-turn polling, log and
 *               metric streaming, JobStarted/RankFailed/JobEnded until acknowledged, spool
 *               cleanup
 *   selftest.c  the inbound connection self-test: the listener on probe_port and the outbound
 *               connects for a ProbeRequest
 */
#ifndef WSLQ_WORKER_WORKER_INT_H
#define WSLQ_WORKER_WORKER_INT_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "common/log.h"
#include "proto/wire.h"
#include "worker/config.h"
#include "worker/job.h"
#include "worker/keeper.h"
#include "worker/owner.h"
#include "worker/rdv.h"
#include "worker/runas.h"
#include "worker/space.h"
#include "worker/sysinfo.h"
#include "worker/workdir.h"
#include "worker/worker.h"

/* One self-test connection: accepted on our probe port (inbound) or made to a peer's
 * (outbound, for a ProbeRequest). */
typedef struct selftest_conn {
    int fd;                         /* -1 = slot free */
    int outbound;                   /* 1: we are the tester; 0: accepted on our listener */
    int connected;                  /* outbound: connect finished and the token went out */
    int64_t start;                  /* monotonic ms the test began (elapsed_ms counts from it) */
    int64_t deadline;               /* monotonic ms it is given up at */
    char target[WIRE_MAX_NAME + 1]; /* outbound: the node tested */
    char token[80];                 /* outbound: ProbeRequest.token, sent as one line */
    char buf[WORKER_SELFTEST_LINE]; /* the line read so far, NUL-terminated */
    size_t len;                     /* bytes in buf */
} selftest_conn_t;

/* The inbound self-test's state (selftest.c). */
typedef struct selftest {
    int fd;        /* listener on probe_port, -1 = none */
    unsigned port; /* its port, reported in Register.probe_port; 0 = none */
    selftest_conn_t conns[WORKER_SELFTEST_MAX]; /* open test connections, fd -1 = free */
} selftest_t;

struct worker {
    wcfg_t cfg;              /* flags and config file, as given to worker_new */
    sysinfo_t si;            /* what this PC has (node facts, GPUs, doctor verdicts) */
    space_t space;           /* room on the state directory's file system (disk.spool) */
    void *ctx;               /* ZeroMQ context */
    void *sock;              /* DEALER connected to the scheduler */
    job_t **jobs;            /* jobs held (streams.c): running, or ended and not yet forgotten */
    size_t njobs;            /* entries used in jobs */
    size_t cap;              /* entries allocated in jobs */
    job_cfg_t jcfg;          /* what every job launch needs (state dir, env, grace) */
    isol_t isol;             /* CPU binding and cgroups of jobs (isol.h), decided at start */
    char rank_exe[PATH_MAX]; /* wslq-rank beside this program, "" when missing */
    keeper_t keeper;         /* the rank keeper (keeper.h), started at the first launch */
    runas_t runas;           /* whose account jobs run as (runas.h), decided at start */
    rdv_t *rdv;              /* rendezvous relay, NULL when disabled */
    int registered;          /* a RegisterReply arrived since the last (re)connect */
    int64_t reg_sent_ms;     /* monotonic ms of the last Register */
    int64_t next_hb_ms;      /* monotonic ms of the next Heartbeat */
    int hb_idle;             /* the last Heartbeat announced the idle interval */
    uint32_t idle_max_ms;    /* the last RegisterReply's idle_heartbeat_max_ms (0: none) */
    int hb_owner_state;      /* owner state, running count and GPU count the last Heartbeat */
    uint32_t hb_running;     /* carried: a change keeps the next one at heartbeat_ms */
    int hb_ngpus;
    int64_t next_cleanup_ms; /* monotonic ms of the next spool cleanup */
    int backlog;             /* a send hit the high-water mark or a cap: poll again soon */
    wq_ratelimit_t rl_bad;   /* bad frames from the scheduler */
    void *hs_mon;            /* CURVE handshake failures of sock (keys_watch), or NULL */
    wq_ratelimit_t rl_hs;    /* their log lines */
    selftest_t selftest;     /* the inbound self-test (selftest.c) */
    uint64_t reg_req_id;     /* request_id of the last Register */
    int64_t reg_sent_wall;   /* wall ms when it was sent */
    int clock_measured;      /* clock_offset_ms and clock_rtt_ms hold a measurement */
    int owner_state;         /* enum owner_state, read before each Register and heartbeat */
    char owner_why[256];     /* why that state (one line) */
    /* what that read found in the owner file, and when (monotonic ms; 0 before the first) */
    owner_report_t owner_rep;
    int64_t owner_read_ms;
    int64_t clock_offset_ms; /* ms: scheduler clock minus ours */
    uint32_t clock_rtt_ms;   /* ms: round trip of the Register that measured it */
    /* workdir.c: snapshots being fetched, outputs being sent; NULL until the first */
    struct workdir *wd;
};

/* ---- outbox.c: messages to the scheduler. Each sends without blocking; a full queue sets
 * w->backlog and the message is dropped (each caller's bookkeeping sends it again). ---- */

/* Send one envelope. 0, or -1 (high-water mark: w->backlog set; else logged). */
int outbox_send(worker_t *w, Wslq__Envelope *env);

/* outbox_send for the rendezvous relay (rdv_send_fn); ctx is the worker. */
int outbox_rdv_send(void *ctx, Wslq__Envelope *env);

/* Read the owner file (the Windows reporter's) into owner_state, owner_why and owner_rep; a
 * change of state is logged with its reason. Each Register and heartbeat does, a failed job's
 * end (tdr_events_now), and a launch when the last read is older than TDR_REUSE_MS. */
void outbox_owner_refresh(worker_t *w);

/* Register: node facts, GPUs, attributes, running jobs, probe port. A new request_id each
 * time; records the send time (monotonic 'now' and wall) for the clock measurement. */
void outbox_register(worker_t *w, int64_t now);

/* Heartbeat: refreshed GPU facts, the running count, the clock offset, and the interval to
 * the next one, which it returns: the idle interval (wcfg_idle_ms) while no job is held here
 * and nothing reported changed since the last one, else heartbeat_ms (worker/README.md). */
int outbox_heartbeat(worker_t *w);

void outbox_job_started(worker_t *w, const job_t *j);

/* RankFailed for the job's first failing rank (j->fail_lrank). */
void outbox_rank_failed(worker_t *w, const job_t *j);

/* JobEnded from the job's end fields. */
void outbox_job_ended(worker_t *w, job_t *j);

/* One LogChunk of 'len' bytes of job.log at 'offset'. 0 or -1 as outbox_send. */
int outbox_log_chunk(worker_t *w, const job_t *j, uint64_t offset, uint8_t *data, size_t len);

/* MetricLines: 'n' lines of local rank index 'ri'. Does not take the lines. */
void outbox_metric_lines(worker_t *w, const job_t *j, int ri, char **lines, size_t n);

/* ProbeResult of a test of node 'target'; 'error' is one line without control characters. */
void outbox_probe_result(
    worker_t *w, char *target, char *token, int ok, char *error, uint32_t elapsed_ms);

/* ---- streams.c: the jobs this worker holds ---- */

/* Take over every job in <state-dir>/jobs left by an earlier worker process (at start). */
void streams_adopt(worker_t *w);

/* JobLaunch: start it, or answer a repeat again (a job never runs twice). */
void streams_launch(worker_t *w, const Wslq__JobLaunch *l);

/* JobKill: stop the job; ignored for a job not here. */
void streams_kill(worker_t *w, const Wslq__JobKill *k, int64_t now);

/* JobSuspend: stop or continue the job's ranks; ignored for a job not here. */
void streams_suspend(worker_t *w, const Wslq__JobSuspend *s, int64_t now);

/* JobEndedAck: the job's end may be forgotten once its log is all sent. */
void streams_ended_ack(worker_t *w, const Wslq__JobEndedAck *a);

/* The jobs' part of a RegisterReply: kill_jobs, log_offsets, and JobEnded again for every
 * unacknowledged end. */
void streams_register_reply(worker_t *w, const Wslq__RegisterReply *r, int64_t now);

/* Reap exited children and give each to its job. */
void streams_reap(worker_t *w, int64_t now);

/* Rank ends the rank keeper reported; when it went away, its running ranks are watched by
 * group from then on (keeper.h). */
void streams_keeper(worker_t *w, int64_t now);

/* One turn: poll every job, stream logs and metrics (only while registered), send
 * RankFailed and JobEnded when due, forget jobs whose end was acknowledged and sent. */
void streams_tick(worker_t *w, int64_t now);

/* The earliest of 'next' and the jobs' own deadlines (monotonic ms); *active set to 1 if a
 * job needs polling every turn (running, or its log still going out). */
int64_t streams_next_deadline(const worker_t *w, int64_t next, int *active);

/* Remove spool directories of jobs no longer held, older than spool_keep_days. */
void streams_cleanup_spool(worker_t *w);

/* Free every job (their ranks keep running). */
void streams_destroy(worker_t *w);

/* ---- selftest.c: the inbound connection self-test ---- */

/* Listen on cfg.probe_port on every interface; never fatal (port 0 when it cannot). */
void selftest_listen(worker_t *w);

/* ProbeRequest: start a non-blocking connect to the peer; the answer is a ProbeResult. */
void selftest_connect(worker_t *w, const Wslq__ProbeRequest *r, int64_t now);

/* Time out test connections. */
void selftest_tick(worker_t *w, int64_t now);

/* The earliest of 'next' and the open connections' deadlines (monotonic ms). */
int64_t selftest_next_deadline(const worker_t *w, int64_t next);

/* Poll items: the listener, then each open connection; map[k] is the connection index of
 * items[k] (-1 = the listener). 'items' and 'map' hold 1 + WORKER_SELFTEST_MAX. Returns the count.
 */
int selftest_pollitems(worker_t *w, zmq_pollitem_t *items, int *map);

/* Accept, read and answer what selftest_pollitems' items reported. */
void selftest_handle(worker_t *w, const zmq_pollitem_t *items, const int *map, int n, int64_t now);

/* Close the listener and every connection. */
void selftest_close(worker_t *w);

#endif
