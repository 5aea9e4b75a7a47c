/* Preemption's choice of victims: a pure function over the policy's view of the nodes, like
 * policy.h. No I/O, no clock. The scheduler's side (which running jobs are candidates, the
 * events sent, the PC owner's suspend and evict policies) is preempt.c's, declared in
 * sched_int.h. */
#ifndef WSLQ_SCHED_PREEMPT_H
#define WSLQ_SCHED_PREEMPT_H

#include <stddef.h>
#include <stdint.h>

#include "scheduler/policy.h"

/* A started job as the choice sees it: its priority, when it started, and what it holds. */
typedef struct preempt_cand {
    int32_t priority;
    int64_t start_ms;     /* wall clock; the more recent is preempted first */
    int preemptible;      /* submitted --preemptible: may be chosen */
    int ending;           /* already being preempted: what it holds counts as free */
    unsigned n;           /* parts */
    const size_t *node;   /* n entries: index into the node array, one per part */
    const uint64_t *gpus; /* n entries: GPU index mask held on that node */
    unsigned cpus;        /* per part */
    uint64_t mem_mb;      /* per part */
} preempt_cand_t;

/* What preempt_choose found. */
#define PREEMPT_NONE  (-1) /* no set of allowed victims lets the job fit: nothing to do */
#define PREEMPT_WAIT  0    /* it fits once the jobs already ending are gone: wait for them */
#define PREEMPT_CHOSE 1    /* victims[0..*n_victims) would let it fit: preempt them */

/* The victims for a job of 'priority' asking 'req' that does not fit on 'nodes' now. Only
 * candidates that are preemptible, not already ending and of a strictly lower priority are
 * chosen; among them the lowest priority first, then the most recently started, then the
 * lower index, added until the job fits; then every victim that is not needed (the last
 * added first) is given back, so the set is minimal: no victim could be spared. victims
 * holds indices into cands (room for n_cands). */
int preempt_choose(const policy_node_t *nodes,
                   size_t n_nodes,
                   const policy_req_t *req,
                   int32_t priority,
                   const preempt_cand_t *cands,
                   size_t n_cands,
                   size_t *victims,
                   size_t *n_victims);

#endif
