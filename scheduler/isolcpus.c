/* The CPUs a job's ranks are bound to on each node, as its workers report them: each
 * Heartbeat lists the binding of every job running there (IsolJobCpus) and JobEnded repeats
 * it, so `wslq show` and the job's record name them (Alloc.cpus). Memory only between saves:
 * the next heartbeat after a scheduler restart sets them again. */
#include <string.h>

#include "scheduler/sched_int.h"

void
isol_set_cpus(job_t *job, int part, const char *cpus)
{
    if (job == NULL || part < 0 || cpus == NULL || (size_t) part >= job->info->n_allocs)
        return;
    Wslq__Alloc *a = job->info->allocs[part];
    if (a->cpus != NULL && strcmp(a->cpus, cpus) == 0)
        return;
    wire_set_str(&a->cpus, cpus);
}

void
isol_heartbeat_cpus(sched_t *self, const node_t *nd, const Wslq__Heartbeat *hb)
{
    for (size_t i = 0; i < hb->n_job_cpus; i++) {
        const Wslq__IsolJobCpus *c = hb->job_cpus[i];
        job_t *job = jobs_find(self, c->job_id);
        if (job == NULL || job->info->attempt != c->attempt)
            continue;
        isol_set_cpus(job, gang_part_of(job->info, nd->info->name), c->cpus);
    }
}
