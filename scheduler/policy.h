/* Placement: pure functions over a snapshot of the nodes. No I/O, no clock.
 * Jobs get whole GPUs (by index) on 'nodes' distinct nodes, all at once or not at all. */
#ifndef WSLQ_POLICY_H
#define WSLQ_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "common/limits.h" /* WIRE_MAX_NODES, WIRE_MAX_GPUS */

/* policy_node_t.inbound_test: the scheduler's inbound self-test of the node */
#define POLICY_INBOUND_PASSED  0 /* passed (or not applicable): may take multi-node jobs */
#define POLICY_INBOUND_PENDING 1 /* not tested yet: possible at submit, not placed */
#define POLICY_INBOUND_FAILED  2 /* failed: never takes multi-node jobs */

typedef struct {
    const char *name;     /* borrowed */
    int eligible;         /* alive and accepting jobs now */
    int inbound_ok;       /* the node claims peers can connect in */
    int inbound_test;     /* POLICY_INBOUND_*: multi-node jobs need inbound_ok and PASSED */
    unsigned cpus;        /* total */
    unsigned cpus_used;   /* held by live jobs */
    uint64_t mem_mb;      /* total, MiB */
    uint64_t mem_used_mb; /* held by live jobs, MiB */
    uint64_t gpu_present; /* bit i: GPU index i exists */
    uint64_t gpu_used;    /* bit i: GPU index i held by a live job */
} policy_node_t;

typedef struct {
    unsigned nodes; /* >= 1 */
    unsigned gpus_per_node;
    unsigned cpus_per_node;   /* >= 1 */
    uint64_t mem_mb_per_node; /* 0 = none */
} policy_req_t;

typedef struct {
    unsigned n;                    /* nodes chosen (= req.nodes when placed) */
    size_t node[WIRE_MAX_NODES];   /* index into the node array, node_rank order */
    uint64_t gpus[WIRE_MAX_NODES]; /* GPU index mask given on each node */
} policy_choice_t;

/* Could the job ever run on these nodes if they were all idle and alive? Returns 1, or 0
 * with a one-line reason in 'why' ("no node has 4 GPUs; the largest has 2"). */
int policy_feasible(
    const policy_node_t *nodes, size_t n, const policy_req_t *req, char *why, size_t whylen);

/* Choose nodes and GPUs for the job now. Returns 1 with *out filled, or 0 with the reason
 * it waits in 'why'. Best fit: the fewest free GPUs that still fit, to keep big holes
 * for big jobs; lowest GPU indices first. Does not change 'nodes'. */
int policy_place(const policy_node_t *nodes,
                 size_t n,
                 const policy_req_t *req,
                 policy_choice_t *out,
                 char *why,
                 size_t whylen);

/* Mark a choice's resources as used in 'nodes'. */
void policy_take(policy_node_t *nodes, const policy_req_t *req, const policy_choice_t *c);

/* Number of set bits. */
unsigned policy_popcount(uint64_t mask);

#endif
