/* The job spec's defaults and the per-rank variables; see jobspec.h. */
#include "proto/jobspec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "proto/wire.h"

const char *const jobspec_rank_vars[] = {
    /* identity */
    "WSLQ_JOB_ID", "WSLQ_JOB_NAME", "WSLQ_ATTEMPT", "WSLQ_ARRAY_INDEX", "WSLQ_NODE",
    /* where a rank reaches its worker */
    "WSLQ_METRICS", "WSLQ_RENDEZVOUS",
    /* its GPUs */
    "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "WSLQ_GPU_UUIDS",
    /* the torchrun contract */
    "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "NODE_RANK", "NNODES",
    "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RESTART_COUNT",
    /* the node's network and NCCL profile */
    "NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME", "NCCL_IB_DISABLE", "NCCL_SHM_DISABLE",
    "NCCL_P2P_DISABLE", NULL};

int
jobspec_is_rank_var(const char *name, size_t len)
{
    for (const char *const *v = jobspec_rank_vars; *v != NULL; v++)
        if (strlen(*v) == len && memcmp(*v, name, len) == 0)
            return 1;
    return 0;
}

const char *
jobspec_default_name(const Wslq__JobSpec *spec, char *buf, size_t size)
{
    const char *name = "wrap";
    if (!spec->wrap) {
        const char *argv0 = spec->n_argv > 0 ? spec->argv[0] : "";
        const char *slash = strrchr(argv0, '/');
        name = slash && slash[1] ? slash + 1 : argv0;
    }
    size_t n = strlen(name);
    if (n > WIRE_MAX_NAME)
        n = WIRE_MAX_NAME;
    snprintf(buf, size, "%.*s", (int) n, name);
    /* argv[0] may hold control characters, a stored job name may not (wire.c's check_name) */
    for (char *p = buf; *p != '\0'; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            *p = '?';
    return buf;
}

void
jobspec_apply_defaults(Wslq__JobSpec *spec)
{
    if (spec->cpus_per_node == 0)
        spec->cpus_per_node = 1;
    if (spec->name == NULL || spec->name[0] == '\0') {
        char buf[WIRE_MAX_NAME + 1];
        wire_set_str(&spec->name, jobspec_default_name(spec, buf, sizeof buf));
    }
    if (spec->user == NULL || spec->user[0] == '\0')
        wire_set_str(&spec->user, "unknown");
}
