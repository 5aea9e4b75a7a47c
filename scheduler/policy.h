/* Placement: pure functions over a snapshot of the nodes. No I/O, no clock.
 * Jobs get GPUs (by index) on 'nodes' distinct nodes, all at once or not at all: whole GPUs,
 * or with gpu_mem_mb a share of each GPU's memory (packed with other sharing jobs, never
 * beyond the card's memory less what others hold). A GPU holds whole-GPU jobs or sharing
 * jobs, never both. gpu_type and gpu_mem_min_mb restrict which GPUs count at all. */
#ifndef WSLQ_POLICY_H
#define WSLQ_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "common/limits.h" /* WIRE_MAX_NODES, WIRE_MAX_GPUS */

/* policy_node_t.inbound_test: the scheduler's inbound self-test of the node */
#define POLICY_INBOUND_PASSED  0 /* passed (or not applicable): may take multi-node jobs */
#define POLICY_INBOUND_PENDING 1 /* not tested yet: possible at submit, not placed */
#define POLICY_INBOUND_FAILED  2 /* failed: never takes multi-node jobs */

/* One GPU as placement sees it (policy_node_t.gpu[index]). All zero: unknown model and
 * memory, which matches any job that names no type, minimum or share. */
typedef struct {
    const char *model;  /* borrowed: "NVIDIA GeForce RTX 4090"; NULL or "" unknown */
    uint32_t mem_mb;    /* the card's memory, MiB; 0 = unknown */
    uint64_t other_mb;  /* held by what is not ours (the Windows desktop, other programs) */
    uint64_t shared_mb; /* declared by the sharing (--gpu-mem) jobs on it */
    uint8_t dx;         /* a DirectX adapter of another vendor: matches --gpu-type dx only */
} policy_gpu_t;

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
    uint64_t gpu_used;    /* bit i: GPU index i held whole by a live job */
    uint64_t gpu_shared;  /* bit i: GPU index i holds sharing (--gpu-mem) jobs */
    policy_gpu_t gpu[WIRE_MAX_GPUS]; /* by GPU index */
} policy_node_t;

typedef struct {
    unsigned nodes; /* >= 1 */
    unsigned gpus_per_node;
    unsigned cpus_per_node;   /* >= 1 */
    uint64_t mem_mb_per_node; /* 0 = none */
    const char *gpu_type;     /* borrowed: --gpu-type; NULL or "" = any model */
    uint64_t gpu_mem_min_mb;  /* only GPUs with at least this much memory; 0 = any */
    uint64_t gpu_mem_mb;      /* a share of each GPU, MiB; 0 = whole GPUs */
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

/* 1 if the GPU is of the type: 'type' is one or more comma-separated words, each matched as a
 * case-insensitive substring of the model name ("4090", "rtx a6000"); "dx" matches DirectX
 * adapters of other vendors, which no other word matches. NULL or "" matches any GPU. */
int policy_gpu_type_match(const char *type, const policy_gpu_t *g);

/* MiB a sharing job could still get on the GPU: its memory less what others hold and what
 * sharing jobs declared; 0 when unknown or used whole. */
uint64_t policy_gpu_free_mb(const policy_node_t *nd, unsigned index);

/* Number of set bits. */
unsigned policy_popcount(uint64_t mask);

#endif
