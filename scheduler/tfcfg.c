/* TensorFlow multi-worker jobs (JobSpec.tf): one TF_CONFIG port per global rank, reserved from
 * the MASTER_PORT range the way MASTER_PORT is, and the "host:port" list every rank's
 * TF_CONFIG names (sent in JobLaunch.tf_workers). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "scheduler/sched_int.h"

int
tfcfg_port_used(const Wslq__JobInfo *info, unsigned port)
{
    for (size_t i = 0; i < info->n_tf_ports; i++)
        if (info->tf_ports[i] == port)
            return 1;
    return 0;
}

/* 1 if a started job of ours, or 'job' itself so far, holds the port. */
static int
port_taken(sched_t *self, const Wslq__JobInfo *job, unsigned port)
{
    if (job->master_port == port || tfcfg_port_used(job, port))
        return 1;
    for (size_t j = 0; j < self->n_live; j++) {
        const Wslq__JobInfo *o = self->live[j]->info;
        if (o == job || o->state == WSLQ__JOB_STATE__PENDING)
            continue;
        if (o->master_port == port || tfcfg_port_used(o, port))
            return 1;
    }
    return 0;
}

void
tfcfg_reserve(sched_t *self, Wslq__JobInfo *info)
{
    free(info->tf_ports);
    info->tf_ports = NULL;
    info->n_tf_ports = 0;
    if (!info->spec->tf)
        return;
    size_t world = 0;
    for (size_t k = 0; k < info->n_allocs; k++)
        world += info->allocs[k]->nranks;
    unsigned span = self->cfg.port_hi - self->cfg.port_lo + 1;
    info->tf_ports = wq_calloc(world ? world : 1, sizeof *info->tf_ports);
    for (size_t r = 0; r < world; r++) {
        unsigned port = 0;
        for (unsigned tries = 0; tries < span && port == 0; tries++) {
            unsigned p = self->cfg.port_lo + (self->next_port++ % span);
            if (!port_taken(self, info, p))
                port = p;
        }
        /* the range is used up by started jobs: share a port with another job (on another
         * node it does not clash) rather than give none, but never one of this job's own */
        for (unsigned tries = 0; tries < span && port == 0; tries++) {
            unsigned p = self->cfg.port_lo + (self->next_port++ % span);
            if (p != info->master_port && !tfcfg_port_used(info, p))
                port = p;
        }
        info->tf_ports[info->n_tf_ports++] = port ? port : self->cfg.port_lo;
    }
}

char **
tfcfg_workers(const Wslq__JobInfo *info, size_t *n)
{
    *n = 0;
    if (!info->spec->tf || info->n_tf_ports == 0)
        return NULL;
    char **v = wq_calloc(info->n_tf_ports, sizeof *v);
    for (size_t k = 0; k < info->n_allocs; k++) {
        const Wslq__Alloc *a = info->allocs[k];
        const char *host = a->ip && *a->ip ? a->ip : "127.0.0.1";
        int v6 = strchr(host, ':') != NULL;
        for (uint32_t r = 0; r < a->nranks; r++) {
            size_t g = (size_t) a->first_rank + r;
            if (g >= info->n_tf_ports || *n >= info->n_tf_ports)
                continue;
            v[(*n)++] =
                wq_asprintf("%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", info->tf_ports[g]);
        }
    }
    return v;
}

void
tfcfg_workers_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}
