/* Backfill planning: pure functions over a snapshot of the nodes and what holds their
 * resources over time (running jobs until their planned end, reservations from their start
 * to their end). No I/O, no clock: times are whatever the caller counts in (wall ms).
 *
 * A reservation is the earliest window [start, start + duration) in which a job's request
 * fits, given every hold: it is looked for at now and at each hold's end. A job may start
 * now on resources that a reservation needs only if it ends (by its planned duration)
 * before that reservation starts: bf_apply marks, on a node view, the resources of every
 * reservation that starts before now + duration as used, so that policy_place picks around
 * them. */
#ifndef WSLQ_BFPLAN_H
#define WSLQ_BFPLAN_H

#include <stddef.h>
#include <stdint.h>

#include "scheduler/policy.h"

#define BF_MAX_DEPTH 64 /* reservations per plan at most */

/* Resources of one node held over [start_ms, end_ms). */
typedef struct {
    int64_t start_ms, end_ms;
    uint64_t job;    /* who holds them */
    int by_default;  /* end_ms counts the planning default time limit (no --time) */
    int reservation; /* a reservation's part (not a running job's) */
    size_t node;     /* index into the node array */
    uint64_t gpus;   /* GPU index mask */
    unsigned cpus;
    uint64_t mem_mb;
} bf_hold_t;

typedef struct {
    uint64_t job;
    int64_t start_ms, end_ms;
    uint64_t after_job; /* the running job whose planned end makes the room (0: none) */
    int after_default;  /* that end counts the planning default time limit */
    policy_choice_t choice;
    unsigned cpus_per_node;
    uint64_t mem_mb_per_node;
} bf_resv_t;

typedef struct {
    int64_t now;
    size_t depth; /* reservations at most (<= BF_MAX_DEPTH) */
    bf_hold_t *holds;
    size_t n_holds, cap_holds;
    bf_resv_t *resv; /* ascending start_ms (then the order they were made) */
    size_t n_resv;
} bf_plan_t;

/* Undo record of bf_apply: the nodes it changed and their use before. Zero it once before
 * its first use; bf_undo leaves it ready for the next. */
typedef struct {
    size_t n;
    size_t node[WIRE_MAX_NODES];
    uint64_t gpu_used[WIRE_MAX_NODES];
    unsigned cpus_used[WIRE_MAX_NODES];
    uint64_t mem_used_mb[WIRE_MAX_NODES];
    unsigned char seen[WIRE_MAX_NODES];
} bf_undo_t;

void bf_init(bf_plan_t *p, int64_t now, size_t depth);
void bf_free(bf_plan_t *p);
/* Forget the holds and reservations; keep the memory. */
void bf_reset(bf_plan_t *p, int64_t now);

/* A running job's part: held from now until end_ms (an end already past counts as now + 1:
 * the job is due to end any moment). */
void bf_hold(bf_plan_t *p, const bf_hold_t *h);

/* A job placed now for duration_ms on 'c': its parts become holds. */
void bf_take(bf_plan_t *p,
             uint64_t job,
             const policy_req_t *req,
             const policy_choice_t *c,
             int64_t duration_ms,
             int by_default);

/* 1 if another reservation may be made. */
int bf_wants(const bf_plan_t *p);

/* Look for the earliest window in which the job fits for duration_ms, on the nodes as
 * 'nodes' describes them (eligibility, inbound test, totals; their use now is ignored: the
 * holds say it). Found: 1, the reservation added to the plan (and copied to *out when out
 * is not NULL). 0: none (no more room for reservations, or the job fits no eligible node
 * even when all holds have ended). */
int bf_reserve(bf_plan_t *p,
               const policy_node_t *nodes,
               size_t n,
               const policy_req_t *req,
               int64_t duration_ms,
               uint64_t job,
               bf_resv_t *out);

/* On 'nodes' (the use now), mark as used what reservations that start before now +
 * duration_ms need. Returns how many reservations that is (the first ones). Undo with
 * bf_undo (always, even when it returned 0). */
size_t
bf_apply(const bf_plan_t *p, policy_node_t *nodes, size_t n, int64_t duration_ms, bf_undo_t *u);
void bf_undo(policy_node_t *nodes, bf_undo_t *u);

/* The reservation of a job, or NULL. */
const bf_resv_t *bf_find(const bf_plan_t *p, uint64_t job);

#endif
