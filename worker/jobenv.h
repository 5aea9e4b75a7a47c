/* The environment and argv a job rank sees (DESIGN.md §6), built as pure functions so tests can
 * check every variable without forking.
 *
 * Order: the worker's own environment minus its private variables (WSLQ_*, NOTIFY_SOCKET,
 * LISTEN_*), then HOME, USER and LOGNAME of the account the ranks switch to (when they do),
 * then the wslq variables, then spec.env items ("K=V", the user's word wins). */
#ifndef WSLQ_WORKER_JOBENV_H
#define WSLQ_WORKER_JOBENV_H

#include <stddef.h>

#include "proto/wire.h"

typedef struct jobenv_ctx {
    const char *node;            /* this worker's node name (WSLQ_NODE) */
    const char *iface;           /* cluster interface for NCCL/Gloo, "" = leave unset */
    const char *ip;              /* this node's LAN IP, the MASTER_ADDR fallback of 1-node jobs */
    const char *spool;           /* the job's spool directory (WSLQ_METRICS files live there) */
    const char *rdv_path;        /* rendezvous socket path, NULL = not offered */
    unsigned master_port;        /* used when the launch carries master_port 0 */
    const char *const *nccl_env; /* this node's NCCL profile ("K=V", NULL-ended), or NULL */
    const char *user;            /* the account the ranks switch to (USER, LOGNAME), NULL = none:
                                    they run as the worker and keep its values */
    const char *home;            /* that account's home directory (HOME); with user only */
    const char *const *dx_order; /* this node's DirectX adapter LUIDs in DXCore's order,
                                    NULL-ended, or NULL (DML_VISIBLE_DEVICES numbers them) */
    const char *cpus;            /* the CPUs the job is bound to ("0-3"), WSLQ_CPUS; NULL/"" =
                                    not bound, unset */
} jobenv_ctx_t;

/* Processes this node starts for the launch: 1 for per_node, else alloc.nranks (at least 1). */
int jobenv_nranks(const Wslq__JobLaunch *l);

/* The GPUs (positions in alloc.gpus) of local rank 'lrank': *first and *count. One each when
 * ranks == GPUs, an equal contiguous share when GPUs divide evenly, otherwise (and for
 * per_node or a single rank) all of the node's GPUs. *count 0 = no GPU. */
void jobenv_rank_gpus(const Wslq__JobLaunch *l, int lrank, size_t *first, size_t *count);

/* NULL-terminated "K=V" vector for local rank 'lrank'. base: the worker's environment
 * (environ), may be NULL. Caller owns the result (jobenv_free). */
char **jobenv_build(const Wslq__JobLaunch *l, const jobenv_ctx_t *c, int lrank, char *const *base);

/* argv for execve, NULL-terminated. For non-wrap jobs, "$NAME" and "${NAME}" inside items are
 * replaced by the value in envp when NAME is one of the variables wslq sets (RANK, NODE_RANK,
 * MASTER_ADDR, ...: proto/jobspec.h's jobspec_rank_vars); everything else is left as typed. Wrap
 * jobs
 * (["/bin/sh","-c",line]) are passed unchanged: the shell expands. Caller owns the result. */
char **jobenv_argv(const Wslq__JobSpec *spec, char *const *envp);

/* Value of 'name' in a "K=V" vector, NULL if absent. Points into envp. */
const char *jobenv_get(char *const *envp, const char *name);

/* Free a vector from jobenv_build / jobenv_argv and NULL *vp. NULL-safe. */
void jobenv_free(char ***vp);

#endif
