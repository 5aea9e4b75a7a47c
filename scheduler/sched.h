/* The scheduler's event loop: one thread, zmq_poll over the ROUTER socket plus timers.
 * Owns the node registry, the active jobs (PENDING/STARTING/RUNNING, mirrored in the
 * queue), placement passes, the per-job key/value store and parked log/kv requests.
 * Every state change of a loop turn is written in one transaction, committed, and only
 * then are replies and launches sent. */
#ifndef WSLQ_SCHED_H
#define WSLQ_SCHED_H

#include <stdint.h>

#include "common/err.h"

typedef struct {
    const char *listen;        /* ZeroMQ endpoint, e.g. "tcp://0.0.0.0:7420" */
    const char *state_dir;     /* holds queue.db and logs/ */
    int sync_full;             /* SQLite synchronous=FULL (1) or NORMAL (0) */
    int64_t torpid_ms;         /* silent this long: no new jobs placed there */
    int64_t lost_ms;           /* silent this long: node lost, its jobs failed/requeued */
    int64_t start_timeout_ms;  /* every rank must report started within this */
    int64_t kill_grace_ms;     /* SIGTERM to SIGKILL on cancel and time limit */
    int64_t missing_grace_ms;  /* a re-registered node that no longer runs a job: wait this
                                  long for its JobEnded before calling the job lost */
    unsigned port_lo, port_hi; /* MASTER_PORT range */
    unsigned kv_max_keys;      /* per job */
    uint64_t kv_max_bytes;     /* per job, keys + values */
    const char *http;          /* dashboard address, NULL = off (see http.c) */
} sched_config_t;

/* Fill defaults. */
void sched_config_init(sched_config_t *cfg);

typedef struct sched sched_t;

/* Open the queue, bind the socket. Caller owns the result. */
sched_t *sched_new(const sched_config_t *cfg, wq_error_t *err);
void sched_destroy(sched_t **self_p);

/* Run until sched_stop() (or SIGTERM/SIGINT caught by main). 0 on a clean stop. */
int sched_run(sched_t *self, wq_error_t *err);

/* Ask the loop to stop at the end of its current turn (async-signal-safe). */
void sched_stop(sched_t *self);

/* The endpoint actually bound (resolves port 0 / "*"). */
const char *sched_endpoint(const sched_t *self);

#endif
