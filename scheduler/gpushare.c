/* Choosing and sharing GPUs: what placement sees of each GPU (model, memory, DirectX kind),
 * the use sharing (--gpu-mem) jobs make of it, derived from the active jobs' allocations like
 * all use (sched_int.h), and what `wslq nodes` shows of it. The choices are policy.c's. */
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "scheduler/sched_int.h"

void
gpushare_policy_gpu(const Wslq__GpuInfo *gi, policy_gpu_t *pg)
{
    pg->model = gi->name;
    pg->mem_mb = gi->mem_total_mb > UINT32_MAX ? UINT32_MAX : (uint32_t) gi->mem_total_mb;
    pg->dx = gi->kind != NULL && strcmp(gi->kind, "dx") == 0;
    pg->other_mb = 0;
    pg->shared_mb = 0;
}

void
gpushare_take(policy_node_t *p, const Wslq__Alloc *a, uint32_t gpu)
{
    if (gpu >= WIRE_MAX_GPUS)
        return;
    if (a->gpu_mem_mb > 0) {
        p->gpu_shared |= 1ULL << gpu;
        p->gpu[gpu].shared_mb += a->gpu_mem_mb;
    } else {
        p->gpu_used |= 1ULL << gpu;
    }
}

/* What is not ours on a GPU (the Windows desktop, other programs). NVML on WSL cannot tell
 * processes apart, so it is estimated: the GPU's reported use less what our sharing jobs
 * declared, but never less than its use when the worker last saw no job of ours on it (a job
 * that has not grown to its share yet would otherwise hide the desktop's part). */
static uint64_t
other_mb(const Wslq__GpuInfo *gi, uint64_t shared)
{
    uint64_t used = gi->mem_used_mb;
    uint64_t est = used > shared ? used - shared : 0;
    return est > gi->mem_idle_used_mb ? est : gi->mem_idle_used_mb;
}

void
gpushare_other(const Wslq__NodeInfo *ni, policy_node_t *p)
{
    for (size_t g = 0; g < ni->n_gpus; g++) {
        uint32_t b = ni->gpus[g]->index;
        if (b >= WIRE_MAX_GPUS || (p->gpu_used & (1ULL << b)))
            continue;
        p->gpu[b].other_mb = other_mb(ni->gpus[g], p->gpu[b].shared_mb);
    }
}

void
gpushare_alloc(const Wslq__JobSpec *s, const Wslq__NodeInfo *ni, Wslq__Alloc *a)
{
    a->gpu_mem_mb = s->gpu_mem_mb;
    if (a->n_gpus == 0)
        return;
    a->gpu_mem_total_mb = wq_calloc(a->n_gpus, sizeof *a->gpu_mem_total_mb);
    a->dx_luids = wq_calloc(a->n_gpus, sizeof *a->dx_luids);
    a->n_gpu_mem_total_mb = a->n_dx_luids = a->n_gpus;
    for (size_t k = 0; k < a->n_gpus; k++) {
        const char *luid = "";
        for (size_t g = 0; g < ni->n_gpus; g++)
            if (ni->gpus[g]->index == a->gpus[k]) {
                a->gpu_mem_total_mb[k] = ni->gpus[g]->mem_total_mb;
                if (ni->gpus[g]->kind != NULL && strcmp(ni->gpus[g]->kind, "dx") == 0 &&
                    ni->gpus[g]->luid != NULL)
                    luid = ni->gpus[g]->luid;
            }
        a->dx_luids[k] = wq_strdup(luid);
    }
}

void
gpushare_refresh_begin(Wslq__NodeInfo *ni)
{
    for (size_t g = 0; g < ni->n_gpus; g++) {
        Wslq__GpuInfo *gi = ni->gpus[g];
        free(gi->shared_jobs);
        gi->shared_jobs = NULL;
        gi->n_shared_jobs = 0;
        gi->mem_shared_mb = 0;
        gi->mem_other_mb = 0;
    }
}

int
gpushare_refresh_part(Wslq__NodeInfo *ni, uint64_t job_id, const Wslq__Alloc *a)
{
    if (a->gpu_mem_mb == 0)
        return 0;
    for (size_t g = 0; g < ni->n_gpus; g++) {
        Wslq__GpuInfo *gi = ni->gpus[g];
        for (size_t x = 0; x < a->n_gpus; x++) {
            if (gi->index != a->gpus[x])
                continue;
            gi->mem_shared_mb += a->gpu_mem_mb;
            gi->shared_jobs =
                wq_realloc(gi->shared_jobs, (gi->n_shared_jobs + 1) * sizeof *gi->shared_jobs);
            gi->shared_jobs[gi->n_shared_jobs++] = job_id;
        }
    }
    return 1;
}

void
gpushare_refresh_end(Wslq__NodeInfo *ni)
{
    for (size_t g = 0; g < ni->n_gpus; g++) {
        Wslq__GpuInfo *gi = ni->gpus[g];
        if (gi->job_id == 0)
            gi->mem_other_mb = other_mb(gi, gi->mem_shared_mb);
    }
}
