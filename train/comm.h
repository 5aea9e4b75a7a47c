/* comm: the collectives data-parallel training needs, over a pluggable transport.
 *
 *   comm_init       rendezvous (bootstrap) and connect; world_size 1 needs no network
 *   comm_broadcast  root's bytes to every rank
 *   comm_allreduce  float sum or average, bit-identical result on every rank
 *   comm_barrier    every rank has reached this point
 *   comm_abort      give up now: close everything so peers notice, never blocks
 *   comm_destroy    orderly close
 *
 * Every call that waits does so under a deadline (opts.timeout_ms per call). A failure (a peer
 * closed, reset, timed out, or broke the protocol) marks the communicator failed; every later
 * call fails at once. The trainer then calls comm_abort and exits with TRAIN_EXIT_COMM (3), so
 * the failure ripples through the ring: each rank that aborts closes its sockets, its
 * neighbours' next wait fails immediately, and no rank waits longer than one deadline.
 *
 * Transports implement comm_ops_t: "self" (world 1) and "tcp-ring" here, "nccl" in
 * cuda/comm_nccl.c (its abort maps to ncclCommAbort). Bootstrap (how ranks learn each other's
 * ring addresses) sits behind comm_bootstrap_fn so a rendezvous-store version can replace the
 * MASTER_ADDR one.
 *
 * Device memory: a transport that can reduce GPU buffers (nccl; self trivially) also fills
 * dev_allreduce/dev_wait. dev_allreduce only STARTS a reduction (so gradient buckets overlap
 * the backward pass); dev_wait waits for everything started, polling through comm_wait: the
 * one deadline loop, which a CPU test drives with a fake (tests/comm_wait_test.c). */
#ifndef WSLQ_TRAIN_COMM_H
#define WSLQ_TRAIN_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define COMM_DEFAULT_TIMEOUT_MS 30000
#define COMM_MAX_WORLD          1024

typedef struct {
    int rank;             /* this rank, 0 .. world-1 */
    int world;            /* number of ranks */
    char master_addr[64]; /* rank 0's IPv4 address (dotted quad) */
    int master_port;      /* rank 0's bootstrap port */
    int timeout_ms;       /* deadline for each wait */
    uint64_t job_tag;     /* hash of WSLQ_JOB_ID (0 if unset): ranks of other jobs are refused */
} comm_opts_t;

typedef enum {
    COMM_SUM,
    COMM_AVG,
} comm_op_t;

typedef struct comm comm_t;

/* A transport: one table of functions per kind. All but abort/destroy return 0 or -1 + err. */
typedef struct {
    const char *name;
    int (*allreduce)(comm_t *c, float *buf, size_t n, comm_op_t op, wq_error_t *err);
    int (*broadcast)(comm_t *c, void *buf, size_t bytes, int root, wq_error_t *err);
    int (*barrier)(comm_t *c, wq_error_t *err);
    void (*abort)(comm_t *c);   /* must not block; safe to call twice */
    void (*destroy)(comm_t *c); /* frees impl */
    /* Optional (NULL = not supported). check: are the peers still there? Never blocks; 0 or -1
     * + err. dev_allreduce: start an in-place reduction of n floats of device memory, ordered
     * after the CUDA event 'after' (a cudaEvent_t, or NULL); dev_wait: wait, under the
     * deadline, until every started reduction has finished. */
    int (*check)(comm_t *c, wq_error_t *err);
    int (*dev_allreduce)(
        comm_t *c, float *dbuf, size_t n, comm_op_t op, void *after, wq_error_t *err);
    int (*dev_wait)(comm_t *c, wq_error_t *err);
} comm_ops_t;

struct comm {
    const comm_ops_t *ops;
    int rank, world;
    int timeout_ms; /* per wait */
    int failed;     /* set on the first error; every later call fails at once */
    char why[256];  /* the first error, for later calls */
    void *impl;     /* the transport's state */
};

/* One rank's ring listening address, as exchanged by the bootstrap. */
typedef struct {
    uint32_t ip;   /* IPv4, network order */
    uint16_t port; /* host order */
} comm_addr_t;

/* Bootstrap: given this rank's ring address, fill table[0..world) with every rank's. */
typedef int (*comm_bootstrap_fn)(const comm_opts_t *o,
                                 const comm_addr_t *mine,
                                 comm_addr_t *table,
                                 wq_error_t *err);

/* The MASTER_ADDR:MASTER_PORT bootstrap: rank 0 listens there and serves the table. */
int comm_bootstrap_master(const comm_opts_t *o,
                          const comm_addr_t *mine,
                          comm_addr_t *table,
                          wq_error_t *err);

/* The rendezvous-store bootstrap (WSLQ_RENDEZVOUS, inside a wslq job): every rank puts its
 * ring address in the job's key/value store and waits for the others'. */
int comm_bootstrap_kv(const comm_opts_t *o,
                      const comm_addr_t *mine,
                      comm_addr_t *table,
                      wq_error_t *err);

/* Fill opts from the environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, WSLQ_JOB_ID);
 * unset variables leave the defaults (rank 0 of 1, 127.0.0.1:29500). */
int comm_opts_from_env(comm_opts_t *o, wq_error_t *err);

/* Connect. world 1 gives the self transport. Caller owns the result (comm_destroy). */
comm_t *comm_init(const comm_opts_t *o, wq_error_t *err);

/* The TCP ring with a chosen bootstrap (comm_init uses comm_bootstrap_kv inside a wslq job
 * that offers WSLQ_RENDEZVOUS, comm_bootstrap_master otherwise). */
comm_t *comm_tcp_new(const comm_opts_t *o, comm_bootstrap_fn boot, wq_error_t *err);

int comm_allreduce(comm_t *c, float *buf, size_t n, comm_op_t op, wq_error_t *err);
int comm_broadcast(comm_t *c, void *buf, size_t bytes, int root, wq_error_t *err);
int comm_barrier(comm_t *c, wq_error_t *err);
void comm_abort(comm_t *c);
void comm_destroy(comm_t **cp);

/* Device-memory collectives (see the top of this file). comm_has_dev says whether the
 * transport has them; the others return -1 + err when it has not. */
int comm_has_dev(const comm_t *c);
int
comm_dev_allreduce(comm_t *c, float *dbuf, size_t n, comm_op_t op, void *after, wq_error_t *err);
int comm_dev_wait(comm_t *c, wq_error_t *err);

/* The first collective of a multi-rank run: every rank says whether it will use NCCL, so
 * ranks whose --device/--comm resolved differently (e.g. --device auto on a PC without a GPU)
 * stop with a clear error instead of misreading each other's messages. Returns 0 when all
 * agree, -1 with err (code WQ_EINVAL) when they do not, or on a comm failure. */
int comm_agree_nccl(comm_t *c, int mine, wq_error_t *err);

/* Are the peers still there? 0 if so or if the transport cannot tell; never blocks. */
int comm_check(comm_t *c, wq_error_t *err);

/* ---- the deadline loop --------------------------------------------------------------- *
 * How a transport waits for work it cannot block on safely (NCCL kernels spin forever on a
 * dead peer): poll done() and async_error() until done, an error, or the deadline; on error
 * or timeout call abort() (ncclCommAbort) and mark the comm failed, so the trainer exits
 * TRAIN_EXIT_COMM like the TCP ring does. Every decision goes through these pointers, so a
 * test can drive the loop with fakes and a fake clock. */
typedef struct {
    void *ctx;
    int (*done)(void *ctx, wq_error_t *err);        /* 1 finished, 0 not yet, -1 failed + err */
    int (*async_error)(void *ctx, wq_error_t *err); /* 0 healthy, -1 failed + err */
    void (*abort)(void *ctx);                       /* give up the transport; must not block */
    int64_t (*now_ms)(void *ctx);                   /* NULL: the monotonic clock */
    void (*pause)(void *ctx, unsigned polls);       /* NULL: spin ~200 polls, then sleep <= 1 ms */
} comm_waiter_t;

/* Returns 0 once done() says 1. Otherwise -1 with err "comm: <what>: <reason>" (the reason is
 * the failing callback's text, or "no progress in <N> ms" at the deadline) after calling
 * w->abort and marking c failed (c may be NULL for a wait outside a communicator). */
int comm_wait(
    comm_t *c, const comm_waiter_t *w, int64_t deadline_ms, const char *what, wq_error_t *err);

/* For transports: record the first failure (sets c->failed) and fill err. Returns -1. */
int comm_fail(comm_t *c, wq_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
