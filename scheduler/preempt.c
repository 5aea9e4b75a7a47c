/* Preemption and the PC owner's suspend and evict policies.
 *
 * preempt_choose (pure, preempt.h) picks the preemptible jobs a waiting higher-priority job
 * needs gone. The scheduler's side: the pass asks preempt_for when a job does not fit, which
 * sends JOBSM_EV_PREEMPT to the victims (SIGTERM, the preempt grace, then they are requeued
 * with attempt + 1 and no retry used); preempt_owner runs on each report of a node's owner
 * and stops (JOBSM_EV_SUSPEND), continues (JOBSM_EV_RESUME) or evicts (JOBSM_EV_PREEMPT) the
 * preemptible jobs there. The decision is the scheduler's, which knows every node's owner
 * and every job; the worker only signals the ranks. */
#include "scheduler/preempt.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/parse.h"
#include "scheduler/sched_int.h"

/* ---------- the choice (pure) ---------- */

static void
give(policy_node_t *w, const preempt_cand_t *c, int sign)
{
    for (unsigned k = 0; k < c->n; k++) {
        policy_node_t *p = &w[c->node[k]];
        if (sign < 0) {
            p->gpu_used &= ~c->gpus[k];
            p->cpus_used = p->cpus_used > c->cpus ? p->cpus_used - c->cpus : 0;
            p->mem_used_mb = p->mem_used_mb > c->mem_mb ? p->mem_used_mb - c->mem_mb : 0;
        } else {
            p->gpu_used |= c->gpus[k];
            p->cpus_used += c->cpus;
            p->mem_used_mb += c->mem_mb;
        }
    }
}

static int
fits(const policy_node_t *w, size_t n, const policy_req_t *req)
{
    policy_choice_t ch;
    char why[8];
    return policy_place(w, n, req, &ch, why, sizeof why);
}

/* Victim order: lowest priority, then most recently started, then the lower index. */
static const preempt_cand_t *sort_cands;

static int
cmp_victim(const void *a, const void *b)
{
    size_t i = *(const size_t *) a, j = *(const size_t *) b;
    const preempt_cand_t *x = &sort_cands[i], *y = &sort_cands[j];
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    if (x->start_ms != y->start_ms)
        return x->start_ms > y->start_ms ? -1 : 1;
    return i < j ? -1 : i > j;
}

int
preempt_choose(const policy_node_t *nodes,
               size_t n_nodes,
               const policy_req_t *req,
               int32_t priority,
               const preempt_cand_t *cands,
               size_t n_cands,
               size_t *victims,
               size_t *n_victims)
{
    *n_victims = 0;
    if (n_nodes == 0 || n_nodes > WIRE_MAX_NODES)
        return PREEMPT_NONE;
    policy_node_t w[WIRE_MAX_NODES];
    memcpy(w, nodes, n_nodes * sizeof *w);
    int any_ending = 0;
    for (size_t i = 0; i < n_cands; i++)
        if (cands[i].ending) {
            give(w, &cands[i], -1);
            any_ending = 1;
        }
    if (any_ending && fits(w, n_nodes, req))
        return PREEMPT_WAIT;
    size_t n = 0;
    for (size_t i = 0; i < n_cands; i++)
        if (cands[i].preemptible && !cands[i].ending && cands[i].priority < priority)
            victims[n++] = i;
    if (n == 0)
        return PREEMPT_NONE;
    sort_cands = cands;
    qsort(victims, n, sizeof *victims, cmp_victim);
    sort_cands = NULL;
    size_t used = 0;
    int ok = 0;
    while (used < n && !ok) {
        give(w, &cands[victims[used++]], -1);
        ok = fits(w, n_nodes, req);
    }
    if (!ok)
        return PREEMPT_NONE;
    /* minimal: give back each victim the job can do without, the dearest (last added) first */
    for (size_t k = used; k-- > 0;) {
        give(w, &cands[victims[k]], +1);
        if (fits(w, n_nodes, req)) {
            memmove(&victims[k], &victims[k + 1], (used - k - 1) * sizeof *victims);
            used--;
        } else {
            give(w, &cands[victims[k]], -1);
        }
    }
    *n_victims = used;
    return PREEMPT_CHOSE;
}

/* ---------- the scheduler's side: preemption in the pass ---------- */

static int
preempt_ending(const job_t *job)
{
    return job->sm.cause == JOBSM_CAUSE_PREEMPTED && job->sm.kill_sent;
}

int32_t
preempt_floor(sched_t *self)
{
    size_t n;
    job_t *const *live = place_live(self, &n);
    int32_t low = INT32_MAX;
    for (size_t j = 0; j < n; j++) {
        const job_t *job = live[j];
        if (job->info->spec->preemptible && jobs_is_active(job->info->state) &&
            !job->sm.kill_sent && job->info->spec->priority < low)
            low = job->info->spec->priority;
    }
    return low;
}

int
preempt_for(sched_t *self,
            job_t *job,
            const policy_node_t *pn,
            size_t nn,
            const policy_req_t *req,
            char *why,
            size_t whylen)
{
    size_t n_live;
    job_t *const *live = place_live(self, &n_live);
    size_t n_parts = 0;
    for (size_t j = 0; j < n_live; j++)
        n_parts += live[j]->info->n_allocs;
    preempt_cand_t *cands = wq_calloc(n_live ? n_live : 1, sizeof *cands);
    size_t *nodes = wq_calloc(n_parts + 1, sizeof *nodes);
    uint64_t *gpus = wq_calloc(n_parts + 1, sizeof *gpus);
    job_t **of = wq_calloc(n_live ? n_live : 1, sizeof *of);
    size_t nc = 0, used_parts = 0;
    for (size_t j = 0; j < n_live; j++) {
        job_t *v = live[j];
        const Wslq__JobInfo *vi = v->info;
        if (!vi->spec->preemptible || !jobs_is_active(vi->state) || v == job)
            continue;
        if (v->sm.kill_sent && !preempt_ending(v))
            continue; /* ending for another cause: not ours to count on */
        preempt_cand_t *c = &cands[nc];
        c->priority = vi->spec->priority;
        c->start_ms = vi->start_ms;
        c->preemptible = 1;
        c->ending = preempt_ending(v);
        /* the snapshot counts cpus_per_node as given: take back the same */
        c->cpus = vi->spec->cpus_per_node;
        c->mem_mb = vi->spec->mem_mb_per_node;
        size_t *cn = &nodes[used_parts];
        uint64_t *cg = &gpus[used_parts];
        for (size_t k = 0; k < vi->n_allocs; k++) {
            if (!jobsm_part_holds(&v->sm, vi, k))
                continue;
            const Wslq__Alloc *a = vi->allocs[k];
            for (size_t i = 0; i < nn; i++) {
                if (strcmp(pn[i].name, a->node) != 0)
                    continue;
                uint64_t mask = 0;
                for (size_t g = 0; g < a->n_gpus; g++)
                    if (a->gpus[g] < WIRE_MAX_GPUS)
                        mask |= 1ULL << a->gpus[g];
                cn[c->n] = i;
                cg[c->n] = mask;
                c->n++;
                break;
            }
        }
        c->node = cn;
        c->gpus = cg;
        used_parts += c->n;
        of[nc++] = v;
    }
    size_t *victims = wq_calloc(nc ? nc : 1, sizeof *victims);
    size_t nv = 0;
    int rc = preempt_choose(pn, nn, req, job->info->spec->priority, cands, nc, victims, &nv);
    size_t len = strlen(why);
    if (rc == PREEMPT_WAIT) {
        snprintf(why + len, whylen - len, "; preempted jobs are stopping to make room");
    } else if (rc == PREEMPT_CHOSE) {
        char text[160];
        snprintf(text, sizeof text, "preempted for job %" PRIu64 " (priority %d)", job->info->id,
                 job->info->spec->priority);
        uint64_t *ids = wq_malloc(nv * sizeof *ids);
        for (size_t k = 0; k < nv; k++)
            ids[k] = of[victims[k]]->info->id;
        for (size_t k = 0; k < nv; k++) {
            job_t *v = jobs_find(self, ids[k]);
            if (v == NULL)
                continue;
            log_info(JOB_FMT " preempted for job %" PRIu64, ids[k], job->info->id);
            jobsm_event_t ev = {.type = JOBSM_EV_PREEMPT, .text = text};
            if (jobs_apply(self, v, &ev) == JOBSM_APPLIED)
                self->stats.preempted_total++;
        }
        snprintf(why + len, whylen - len, "; preempting %zu job%s to make room", nv,
                 nv == 1 ? "" : "s");
        free(ids);
    }
    free(victims);
    free(of);
    free(gpus);
    free(nodes);
    free(cands);
    return rc != PREEMPT_NONE;
}

/* ---------- the PC owner's suspend and evict policies ---------- */

/* 1 if the owner is at the PC (present or gaming): "unknown" keeps new jobs away (like yield)
 * but never stops or evicts a running one. */
static int
owner_here(const node_t *nd)
{
    return nd->owner_state == 2 || nd->owner_state == 3;
}

int
preempt_owner_may_run(const node_t *nd, const char *user)
{
    return nd->owner_user[0] != '\0' && user != NULL && strcmp(nd->owner_user, user) == 0;
}

void
preempt_owner(sched_t *self, node_t *nd)
{
    size_t n_live;
    job_t *const *live = place_live(self, &n_live);
    if (n_live == 0)
        return;
    /* by id: an event may change the live set */
    uint64_t *ids = wq_malloc(n_live * sizeof *ids);
    size_t n = 0;
    for (size_t j = 0; j < n_live; j++)
        if (live[j]->info->spec->preemptible && jobs_is_active(live[j]->info->state) &&
            gang_part_of(live[j]->info, nd->info->name) >= 0)
            ids[n++] = live[j]->info->id;
    int64_t now = wq_clock_wall_ms();
    for (size_t j = 0; j < n; j++) {
        job_t *job = jobs_find(self, ids[j]);
        if (job == NULL || job->sm.kill_sent)
            continue;
        Wslq__JobInfo *info = job->info;
        /* over every node of the job: an owner there who wants it stopped or gone */
        const node_t *suspend_by = NULL, *evict_by = NULL;
        uint32_t max_s = 0;
        for (size_t k = 0; k < info->n_allocs; k++) {
            const node_t *on = nodes_by_name(self, info->allocs[k]->node);
            if (on == NULL || !owner_here(on) || preempt_owner_may_run(on, info->spec->user))
                continue;
            if (on->owner_policy == 3 && evict_by == NULL)
                evict_by = on;
            if (on->owner_policy == 2 && suspend_by == NULL) {
                suspend_by = on;
                max_s = on->owner_suspend_max_s ? on->owner_suspend_max_s : 1800;
            }
        }
        char text[WIRE_MAX_CHECK_TEXT + 96];
        if (evict_by != NULL) {
            snprintf(text, sizeof text, "evicted: the owner of %s is %s (%s)", evict_by->info->name,
                     nodes_owner_state_name(evict_by->owner_state), evict_by->owner_why);
            jobsm_event_t ev = {.type = JOBSM_EV_PREEMPT, .text = text};
            if (jobs_apply(self, job, &ev) == JOBSM_APPLIED)
                self->stats.evicted_total++;
        } else if (suspend_by != NULL && info->suspended &&
                   now - info->suspended_since_ms > (int64_t) max_s * 1000) {
            char d[32];
            snprintf(text, sizeof text, "evicted: suspended longer than %s on %s",
                     wq_format_duration(max_s, d, sizeof d), suspend_by->info->name);
            jobsm_event_t ev = {.type = JOBSM_EV_PREEMPT, .text = text};
            if (jobs_apply(self, job, &ev) == JOBSM_APPLIED)
                self->stats.evicted_total++;
        } else if (suspend_by != NULL && !info->suspended &&
                   info->state == WSLQ__JOB_STATE__RUNNING) {
            snprintf(text, sizeof text, "the owner of %s is %s (%s)", suspend_by->info->name,
                     nodes_owner_state_name(suspend_by->owner_state), suspend_by->owner_why);
            jobsm_event_t ev = {.type = JOBSM_EV_SUSPEND, .text = text};
            if (jobs_apply(self, job, &ev) == JOBSM_APPLIED)
                self->stats.suspended_total++;
        } else if (suspend_by == NULL && info->suspended) {
            jobsm_event_t ev = {.type = JOBSM_EV_RESUME};
            jobs_apply(self, job, &ev);
        }
    }
    free(ids);
}

size_t
preempt_suspended_on(sched_t *self, const node_t *nd, uint64_t *ids, size_t cap)
{
    size_t n_live, n = 0;
    job_t *const *live = place_live(self, &n_live);
    for (size_t j = 0; j < n_live && n < cap; j++)
        if (live[j]->info->suspended && gang_part_of(live[j]->info, nd->info->name) >= 0)
            ids[n++] = live[j]->info->id;
    return n;
}
