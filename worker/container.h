/* --container IMAGE: each rank runs as `ENGINE [FLAGS] run ... IMAGE ARGV...` with the node's
 * Podman or Docker (worker/README.md, "Containers"). The engine's client is the rank's own
 * child, so the worker's SIGTERM reaches it and it passes the signal on (--sig-proxy, and
 * --init inside); a container that outlives its client (SIGKILL after the grace) is removed
 * by name with `ENGINE rm -f` when the job stops. */
#ifndef WSLQ_WORKER_CONTAINER_H
#define WSLQ_WORKER_CONTAINER_H

#include <stddef.h>
#include <sys/types.h>

#include "proto/wire.h"
#include "worker/runas.h"

typedef struct container_cfg {
    const char *engine; /* podman or docker: a name found by PATH or a path; "" or NULL =
                           podman, else docker, whichever PATH has */
    const char *flags;  /* the engine's global flags, blank-separated ("--runtime runc") */
} container_cfg_t;

/* The engine to run: its path in out (by cfg->engine or the PATH search); *docker 1 when it
 * takes Docker's options (its name contains "docker"). 0, or -1 when none is there. */
int
container_engine(const container_cfg_t *cfg, const char *path, char *out, size_t size, int *docker);

/* What one rank's container gets. */
typedef struct container_rank {
    const char *engine; /* from container_engine */
    int docker;
    const char *flags; /* cfg->flags */
    const char *name;  /* the container's name (container_name) */
    const char *image;
    const char *cwd;   /* mounted at the same path and the working directory */
    const char *spool; /* the job's spool, mounted too (WSLQ_METRICS, batch scripts) */
    uid_t uid;         /* the account the rank runs as; 0 runs as nobody in the container,
                          another runs Podman rootless (--userns=keep-id) */
    gid_t gid;
    const Wslq__JobLaunch *launch;
    int lrank; /* its GPUs: jobenv_rank_gpus */
} container_rank_t;

/* "wslq-<node>-<job>.<attempt>-<rank>-<tag>", tag from the worker's state directory so two
 * workers on one machine never share a name. */
void container_name(char *out,
                    size_t size,
                    const char *node,
                    const char *state_dir,
                    uint64_t job,
                    uint32_t attempt,
                    uint32_t grank);

/* argv (NULL-terminated, caller frees with jobenv_free) running 'argv' in the container: the
 * rank's GPUs only (CDI nvidia.com/gpu=UUID for Podman, --gpus device=UUID for Docker) with
 * CUDA_VISIBLE_DEVICES renumbered from 0 as the container sees them, host network and IPC,
 * the job's variables of envp passed by name (-e NAME: values stay out of argv), the user.
 * exe_inside: the program to run inside, in place of argv[0] (a batch script's path). */
char **container_argv(const container_rank_t *c,
                      const char *exe_inside,
                      char *const *argv,
                      char *const *envp);

/* argv of `ENGINE [FLAGS] rm -f NAME...` (Podman: with --time 0) for the names given. Caller
 * frees (jobenv_free). */
char **
container_rm_argv(const char *engine, int docker, const char *flags, char *const *names, size_t n);

/* Run argv detached (as acct when it drops privileges), output to /dev/null, not waited for
 * beyond its start. */
void container_spawn_detached(char *const *argv, const runas_acct_t *acct);

#endif
