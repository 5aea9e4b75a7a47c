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
 * Transports implement comm_ops_t: "self" (world 1) and "tcp-ring" here; NCCL plugs in the
 * same way (its abort maps to ncclCommAbort). Bootstrap (how ranks learn each other's ring
 * addresses) sits behind comm_bootstrap_fn so a rendezvous-store version can replace the
 * MASTER_ADDR one. */
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

/* Fill opts from the environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, WSLQ_JOB_ID);
 * unset variables leave the defaults (rank 0 of 1, 127.0.0.1:29500). */
int comm_opts_from_env(comm_opts_t *o, wq_error_t *err);

/* Connect. world 1 gives the self transport. Caller owns the result (comm_destroy). */
comm_t *comm_init(const comm_opts_t *o, wq_error_t *err);

/* The TCP ring with a chosen bootstrap (comm_init uses comm_bootstrap_master). */
comm_t *comm_tcp_new(const comm_opts_t *o, comm_bootstrap_fn boot, wq_error_t *err);

int comm_allreduce(comm_t *c, float *buf, size_t n, comm_op_t op, wq_error_t *err);
int comm_broadcast(comm_t *c, void *buf, size_t bytes, int root, wq_error_t *err);
int comm_barrier(comm_t *c, wq_error_t *err);
void comm_abort(comm_t *c);
void comm_destroy(comm_t **cp);

/* For transports: record the first failure (sets c->failed) and fill err. Returns -1. */
int comm_fail(comm_t *c, wq_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
