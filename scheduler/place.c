/* Placement: the nodes as the policy sees them (use derived from the active jobs), the
 * scheduling pass over pending jobs in priority order, dependencies, MASTER_PORT choice, and
 * the check at submit that a job could ever run. The choices themselves are policy.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "scheduler/sched_int.h"

/* The policy's view of every node, with use derived from the active jobs. for_feasibility:
 * every known node counts, whatever its state, and nothing is in use. */
static size_t
snapshot(sched_t *self, policy_node_t *pn, size_t cap, int for_feasibility)
{
    size_t n = self->n_nodes < cap ? self->n_nodes : cap;
    for (size_t i = 0; i < n; i++) {
        const node_t *nd = self->nodes[i];
        const Wslq__NodeInfo *ni = nd->info;
        policy_node_t *p = &pn[i];
        memset(p, 0, sizeof *p);
        p->name = ni->name;
        p->eligible = for_feasibility || nodes_takes_jobs(nd);
        p->inbound_ok = ni->inbound_ok;
        p->inbound_test = selftest_policy_state(nd);
        p->cpus = ni->cpus;
        p->mem_mb = ni->mem_mb;
        for (size_t g = 0; g < ni->n_gpus; g++)
            if (ni->gpus[g]->index < WIRE_MAX_GPUS) {
                p->gpu_present |= 1ULL << ni->gpus[g]->index;
                gpushare_policy_gpu(ni->gpus[g], &p->gpu[ni->gpus[g]->index]);
            }
    }
    if (for_feasibility)
        return n;
    /* only STARTING and RUNNING jobs hold parts: they are all in the live set */
    for (size_t j = 0; j < self->n_live; j++) {
        const job_t *job = self->live[j];
        for (size_t k = 0; k < job->info->n_allocs; k++) {
            if (!jobsm_part_holds(&job->sm, job->info, k))
                continue;
            const Wslq__Alloc *a = job->info->allocs[k];
            for (size_t i = 0; i < n; i++) {
                if (strcmp(pn[i].name, a->node) != 0)
                    continue;
                for (size_t g = 0; g < a->n_gpus; g++)
                    gpushare_take(&pn[i], a, a->gpus[g]);
                pn[i].cpus_used += job->info->spec->cpus_per_node;
                pn[i].mem_used_mb += job->info->spec->mem_mb_per_node;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        gpushare_other(self->nodes[i]->info, &pn[i]);
    return n;
}

void
place_req_of(const Wslq__JobSpec *s, policy_req_t *r)
{
    r->nodes = s->nodes;
    r->gpus_per_node = s->gpus_per_node;
    r->cpus_per_node = s->cpus_per_node ? s->cpus_per_node : 1;
    r->mem_mb_per_node = s->mem_mb_per_node;
    r->gpu_type = s->gpu_type;
    r->gpu_mem_min_mb = s->gpu_mem_min_mb;
    r->gpu_mem_mb = s->gpu_mem_mb;
}

static unsigned
ranks_per_node(const Wslq__JobSpec *s)
{
    if (s->per_node)
        return 1;
    if (s->ranks_per_node)
        return s->ranks_per_node;
    return s->gpus_per_node ? s->gpus_per_node : 1;
}

/* A MASTER_PORT no started job of ours uses, round robin over the configured range. */
static unsigned
pick_port(sched_t *self)
{
    unsigned span = self->cfg.port_hi - self->cfg.port_lo + 1;
    for (unsigned tries = 0; tries < span; tries++) {
        unsigned port = self->cfg.port_lo + (self->next_port++ % span);
        int used = 0;
        for (size_t j = 0; j < self->n_live && !used; j++)
            used = (self->live[j]->info->master_port == port ||
                    tfcfg_port_used(self->live[j]->info, port)) &&
                   self->live[j]->info->state != WSLQ__JOB_STATE__PENDING;
        if (!used)
            return port;
    }
    return 0;
}

/* Write the policy's choice into the job's allocs, then place it (PENDING -> STARTING). */
static void
start_job(sched_t *self, job_t *job, const policy_node_t *pn, const policy_choice_t *c)
{
    Wslq__JobInfo *info = job->info;
    unsigned rpn = ranks_per_node(info->spec);
    jobsm_free_allocs(info);
    info->n_allocs = c->n;
    info->allocs = wq_calloc(c->n, sizeof *info->allocs);
    for (unsigned k = 0; k < c->n; k++) {
        node_t *nd = nodes_by_name(self, pn[c->node[k]].name);
        Wslq__Alloc *a = wq_malloc(sizeof *a);
        wslq__alloc__init(a);
        a->node = wq_strdup(nd->info->name);
        a->ip = wq_strdup(nd->info->ip);
        a->node_rank = k;
        a->first_rank = k * rpn;
        a->nranks = rpn;
        unsigned ng = policy_popcount(c->gpus[k]);
        a->gpus = wq_calloc(ng ? ng : 1, sizeof *a->gpus);
        a->gpu_uuids = wq_calloc(ng ? ng : 1, sizeof *a->gpu_uuids);
        for (unsigned b = 0; b < WIRE_MAX_GPUS; b++) {
            if (!(c->gpus[k] & (1ULL << b)))
                continue;
            a->gpus[a->n_gpus] = b;
            const char *uuid = "";
            for (size_t g = 0; g < nd->info->n_gpus; g++)
                if (nd->info->gpus[g]->index == b)
                    uuid = nd->info->gpus[g]->uuid;
            a->gpu_uuids[a->n_gpu_uuids++] = wq_strdup(uuid);
            a->n_gpus++;
        }
        gpushare_alloc(info->spec, nd->info, a);
        info->allocs[k] = a;
    }
    wire_set_str(&info->master_addr, info->allocs[0]->ip);
    info->master_port = pick_port(self);
    tfcfg_reserve(self, info);
    jobsm_event_t ev = {.type = JOBSM_EV_PLACE};
    jobs_apply(self, job, &ev);
}

/* ---------- the sets the pass and the timers read ---------- */

/* 1 if a job of (priority pa, id ia) is placed before one of (pb, ib): higher priority
 * first, then the older. */
static int
pend_before(int32_t pa, uint64_t ia, int32_t pb, uint64_t ib)
{
    return pa != pb ? pa > pb : ia < ib;
}

static int
cmp_pend(const void *a, const void *b)
{
    const pend_entry_t *x = a, *y = b;
    return pend_before(x->priority, x->id, y->priority, y->id)   ? -1
           : pend_before(y->priority, y->id, x->priority, x->id) ? 1
                                                                 : 0;
}

/* The first index whose entry is not placed before (priority, id). */
static size_t
pend_lower_bound(const sched_t *self, int32_t priority, uint64_t id)
{
    size_t lo = 0, hi = self->n_pend;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pend_before(self->pend[mid].priority, self->pend[mid].id, priority, id))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Holes dropped; sorted if entries were appended out of order. */
static void
pend_compact(sched_t *self)
{
    if (self->n_pend_holes > 0) {
        size_t w = 0;
        for (size_t i = 0; i < self->n_pend; i++)
            if (self->pend[i].job != NULL)
                self->pend[w++] = self->pend[i];
        self->n_pend = w;
        self->n_pend_holes = 0;
    }
    if (self->pend_unsorted && self->n_pend > 1)
        qsort(self->pend, self->n_pend, sizeof *self->pend, cmp_pend);
    self->pend_unsorted = 0;
}

/* Room for one more waiter on dep: the ids of jobs no longer pending (cancelled, started)
 * are dropped first, and the array grows only if at least half of it still waits, so a long
 * job that many short-lived dependants came and went for keeps a small one. */
static void
waiters_room(sched_t *self, job_t *dep)
{
    size_t kept = 0;
    for (size_t i = 0; i < dep->n_waiters; i++) {
        const job_t *w = jobs_find(self, dep->waiters[i]);
        if (w != NULL && w->in_pend)
            dep->waiters[kept++] = dep->waiters[i];
    }
    dep->n_waiters = kept;
    if (2 * kept >= dep->cap_waiters) {
        dep->cap_waiters = dep->cap_waiters ? 2 * dep->cap_waiters : 4;
        dep->waiters = wq_realloc(dep->waiters, dep->cap_waiters * sizeof *dep->waiters);
    }
}

/* A pending job that waits for other jobs to end (afterok, afterany, afternotok) is noted on
 * each of them that is still active, to be tried again when it leaves (place_wake). (A
 * --singleton is not: once no job keeps it waiting it waits for room like any job, and a pass
 * with room comes to it.) */
static void
wait_for_deps(sched_t *self, job_t *job)
{
    const Wslq__JobSpec *s = job->info->spec;
    size_t n = s->n_depends_on + s->n_after_any + s->n_after_notok;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = i < s->n_depends_on ? s->depends_on[i]
                      : i < s->n_depends_on + s->n_after_any
                          ? s->after_any[i - s->n_depends_on]
                          : s->after_notok[i - s->n_depends_on - s->n_after_any];
        job_t *dep = jobs_find(self, id);
        if (dep == NULL || dep == job)
            continue; /* ended already: the job's own try finds out */
        if (dep->n_waiters == dep->cap_waiters)
            waiters_room(self, dep);
        dep->waiters[dep->n_waiters++] = job->info->id;
    }
}

static void
pend_add(sched_t *self, job_t *job)
{
    int32_t prio = job->info->spec->priority;
    uint64_t id = job->info->id;
    if (self->n_pend == self->cap_pend) {
        self->cap_pend = self->cap_pend ? 2 * self->cap_pend : 64;
        self->pend = wq_realloc(self->pend, self->cap_pend * sizeof *self->pend);
    }
    size_t i = self->n_pend;
    /* A new job usually goes last (the newest, at the usual priority); otherwise it is
     * moved into place, which costs a memmove of the entries after it. */
    if (!self->pend_unsorted && i > 0 &&
        !pend_before(self->pend[i - 1].priority, self->pend[i - 1].id, prio, id)) {
        i = pend_lower_bound(self, prio, id);
        memmove(&self->pend[i + 1], &self->pend[i], (self->n_pend - i) * sizeof *self->pend);
    }
    self->pend[i] = (pend_entry_t){.priority = prio,
                                   .user = fairshare_user_no(self, job),
                                   .id = id,
                                   .submit_ms = job->info->submit_ms,
                                   .array = job->array,
                                   .job = job};
    self->n_pend++;
    job->in_pend = 1;
    wait_for_deps(self, job);
}

static void
pend_drop(sched_t *self, job_t *job)
{
    job->in_pend = 0;
    if (self->pend_unsorted)
        pend_compact(self);
    size_t i = pend_lower_bound(self, job->info->spec->priority, job->info->id);
    WQ_ASSERT(i < self->n_pend && self->pend[i].job == job);
    self->pend[i].job = NULL;
    self->n_pend_holes++;
    if (!self->placing && self->n_pend_holes > 1024 && self->n_pend_holes > self->n_pend / 2)
        pend_compact(self);
}

static void
live_add(sched_t *self, job_t *job)
{
    if (self->n_live == self->cap_live) {
        self->cap_live = self->cap_live ? 2 * self->cap_live : 64;
        self->live = wq_realloc(self->live, self->cap_live * sizeof *self->live);
    }
    self->live[self->n_live++] = job;
    job->live_slot = self->n_live;
}

static void
live_drop(sched_t *self, job_t *job)
{
    size_t i = job->live_slot - 1;
    WQ_ASSERT(i < self->n_live && self->live[i] == job);
    self->live[i] = self->live[--self->n_live];
    self->live[i]->live_slot = i + 1;
    job->live_slot = 0;
}

static void
track(sched_t *self, job_t *job, int gone, int fresh)
{
    const Wslq__JobInfo *info = job->info;
    int pend = !gone && info->state == WSLQ__JOB_STATE__PENDING;
    int live = !gone && (info->state != WSLQ__JOB_STATE__PENDING || job->sm.not_before_mono != 0);
    if (pend && !job->in_pend) {
        pend_add(self, job);
        if (fresh) {
            if (self->n_fresh == self->cap_fresh) {
                self->cap_fresh = self->cap_fresh ? 2 * self->cap_fresh : 64;
                self->fresh = wq_realloc(self->fresh, self->cap_fresh * sizeof *self->fresh);
            }
            self->fresh[self->n_fresh++] = info->id;
        }
    } else if (!pend && job->in_pend) {
        pend_drop(self, job);
    }
    if (live && job->live_slot == 0)
        live_add(self, job);
    else if (!live && job->live_slot != 0)
        live_drop(self, job);
}

/* Built from the active jobs the first time they are needed (after the queue was loaded). */
static int
sets_ready(sched_t *self)
{
    if (self->sets_built)
        return 1;
    self->sets_built = 1;
    self->pend_unsorted = 1;
    for (size_t j = 0; j < self->n_jobs; j++)
        track(self, self->jobs[j], 0, 0);
    pend_compact(self);
    self->dirty = 1;
    self->place_ended = 1;
    return 0;
}

void
place_track(sched_t *self, job_t *job, int gone)
{
    fairshare_track(self, job, gone);
    if (!self->sets_built)
        return; /* they are built from the active jobs when first needed */
    track(self, job, gone, 1);
}

job_t *const *
place_live(sched_t *self, size_t *n)
{
    sets_ready(self);
    *n = self->n_live;
    return self->live;
}

static void
woken_add(uint64_t **v, size_t *n, size_t *cap, uint64_t id)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        *v = wq_realloc(*v, *cap * sizeof **v);
    }
    (*v)[(*n)++] = id;
}

void
place_wake(sched_t *self, job_t *job)
{
    for (size_t i = 0; i < job->n_waiters; i++)
        woken_add(&self->woken, &self->n_woken, &self->cap_woken, job->waiters[i]);
    free(job->waiters);
    job->waiters = NULL;
    job->n_waiters = job->cap_waiters = 0;
}

void
place_free(sched_t *self)
{
    free(self->woken);
    self->woken = NULL;
    self->n_woken = self->cap_woken = 0;
    free(self->pend);
    free(self->fresh);
    free(self->live);
    self->pend = NULL;
    self->fresh = NULL;
    self->live = NULL;
    self->n_pend = self->cap_pend = self->n_pend_holes = 0;
    self->n_fresh = self->cap_fresh = self->n_live = self->cap_live = 0;
    self->sets_built = 0;
}

/* The state of an ended (or unknown) job, read back from the queue. */
static Wslq__JobState
ended_state(sched_t *self, uint64_t id, int *found)
{
    Wslq__JobInfo *d = queue_get(self->q, id, NULL);
    *found = d != NULL;
    Wslq__JobState st = d ? d->state : WSLQ__JOB_STATE__JOB_STATE_UNSPECIFIED;
    if (d)
        wslq__job_info__free_unpacked(d, NULL);
    return st;
}

/* 1 = dependencies met, 0 = wait, -1 = can never be met (the job was cancelled). */
static int
deps_ready(sched_t *self, job_t *job)
{
    const Wslq__JobSpec *s = job->info->spec;
    for (size_t i = 0; i < s->n_depends_on; i++) {
        uint64_t dep = s->depends_on[i];
        if (jobs_find(self, dep) != NULL) {
            jobs_wait_dep(self, job, dep, " (dependency)");
            return 0;
        }
        int found;
        Wslq__JobState st = ended_state(self, dep, &found);
        if (st != WSLQ__JOB_STATE__COMPLETED) {
            char why[128];
            snprintf(why, sizeof why, "dependency job %" PRIu64 " ended %s", dep,
                     wire_state_name(st));
            jobsm_event_t ev = {.type = JOBSM_EV_DEPENDENCY_FAILED, .text = why};
            jobs_apply(self, job, &ev);
            return -1;
        }
    }
    return 1;
}

/* A job's --nodelist, --exclude and --constraint: the nodes it may not use become
 * ineligible in pn (pn[i] is self->nodes[i]; their flags saved in 'was'). Returns 1 when the
 * job has any such limit (restore with unnarrow), else 0 and pn is untouched. */
static int
narrow(sched_t *self, const Wslq__JobSpec *s, policy_node_t *pn, size_t nn, unsigned char *was)
{
    if (s->n_nodelist == 0 && s->n_exclude == 0 && s->n_constraints == 0)
        return 0;
    for (size_t i = 0; i < nn; i++) {
        was[i] = (unsigned char) pn[i].eligible;
        if (!nodes_match(self->nodes[i], s))
            pn[i].eligible = 0;
    }
    return 1;
}

static void
unnarrow(policy_node_t *pn, size_t nn, const unsigned char *was)
{
    for (size_t i = 0; i < nn; i++)
        pn[i].eligible = was[i];
}

/* The PC owner's own jobs run on their PC while other jobs are kept away (owner_user): those
 * nodes become eligible for this job (their flags saved in 'was'). 1 if any did. */
static int
owner_open(sched_t *self, const Wslq__JobSpec *s, policy_node_t *pn, size_t nn, unsigned char *was)
{
    int any = 0;
    for (size_t i = 0; i < nn; i++)
        was[i] = (unsigned char) pn[i].eligible;
    for (size_t i = 0; i < nn; i++)
        if (!pn[i].eligible && nodes_owner_blocks(self->nodes[i]) &&
            preempt_owner_may_run(self->nodes[i], s->user)) {
            pn[i].eligible = 1;
            any = 1;
        }
    return any;
}

/* 1 if some node could take a job now: every job needs a CPU on each of its nodes. With no
 * node known every job is still tried, as its reason then says so. */
static int
any_room(const policy_node_t *pn, size_t nn)
{
    if (nn == 0)
        return 1;
    for (size_t i = 0; i < nn; i++)
        if (pn[i].eligible && pn[i].cpus_used < pn[i].cpus)
            return 1;
    return 0;
}

/* One pass's view: the nodes as the jobs placed so far left them, and what the wait reasons
 * of the jobs that do not fit are worked out from. */
typedef struct {
    policy_node_t *pn;
    size_t nn;
    int64_t now;
    int room;                    /* some node can take another job (any_room) */
    int any_node;                /* some node is eligible at all: else the reason is NoNode */
    int first_waits;             /* no job waits for resources yet: the next that does is the
                                    first in line (Resources), those after it wait their turn */
    const jobs_array_t *blocked; /* an array whose task did not fit in this pass */
    size_t owner_held;           /* nodes with owner = yield whose owner is at the PC */
    const node_t *owner_first;   /* the first of them, named in the wait reason */
    int32_t preempt_below;       /* a job above this priority may preempt (preempt.c) */
    int preempting;              /* room is being made for a job: no other preempts */
} pass_t;

/* A job waits while nodes are kept for their owners (owner = yield, suspend, evict, owner at
 * the PC): the nodes it may use, counted in whole free GPUs, added to why as one line. 1 when
 * those GPUs, with the free ones elsewhere, would be enough for it: it waits for the owners. */
static int
owner_wait(sched_t *self,
           const Wslq__JobSpec *s,
           const policy_node_t *pn,
           size_t nn,
           char *why,
           size_t whylen)
{
    unsigned held = 0, other = 0;
    size_t nodes = 0, others = 0;
    const node_t *first = NULL;
    for (size_t i = 0; i < nn; i++) {
        const node_t *nd = self->nodes[i];
        if (!nodes_match(nd, s))
            continue;
        unsigned free_gpus =
            policy_popcount(pn[i].gpu_present & ~pn[i].gpu_used & ~pn[i].gpu_shared);
        if (nodes_owner_blocks(nd)) {
            held += free_gpus;
            if (nodes++ == 0)
                first = nd;
        } else if (pn[i].eligible) {
            other += free_gpus;
            others++;
        }
    }
    if (first == NULL)
        return 0;
    uint64_t need = (uint64_t) (s->gpus_per_node ? s->gpus_per_node : (s->gpu_mem_mb ? 1 : 0)) *
                    (s->nodes ? s->nodes : 1);
    size_t len = strlen(why);
    const char *state = nodes_owner_state_name(first->owner_state);
    if (need > 0 && held > 0)
        snprintf(why + len, whylen - len,
                 "%s%u of %u free GPU%s %s on PCs whose owners are present (%s: %s)",
                 len ? "; " : "", held, held + other, held + other == 1 ? "" : "s",
                 held == 1 ? "is" : "are", first->info->name, state);
    else
        snprintf(why + len, whylen - len, "%s%zu node%s kept for %s owner (%s: %s)",
                 len ? "; " : "", nodes, nodes == 1 ? "" : "s", nodes == 1 ? "its" : "their",
                 first->info->name, state);
    /* without those PCs it could start: on their free GPUs, or (no GPUs) on no other node */
    return need > 0 ? held > 0 && held + other >= need : others == 0;
}

/* Try one pending job: held, backoff, array cap and dependencies first, then the policy on
 * the nodes the job may use. p->room: cleared when no node can take another job; then only
 * dependencies are looked at, unless 'always' (a new job, which gets the reason the policy
 * gives). */
static void
try_job(sched_t *self, job_t *job, pass_t *p, int always)
{
    if (!jobsm_placeable(&job->sm, job->info, p->now) || jobs_array_full(job))
        return; /* backoff, held, or its array runs %K tasks already */
    if (job->array != NULL && job->array == p->blocked)
        return; /* its tasks ask the same and come one after another: none fits */
    if (job->info->spec->n_depends_on > 0 && deps_ready(self, job) != 1)
        return; /* waits, or was cancelled (and freed: not touched again) */
    if (jobs_deps_wait(self, job))
        return; /* afterany, afternotok, singleton: the same */
    if (fairshare_over_limit(self, job))
        return; /* its user runs as many GPUs or jobs as allowed (reason set) */
    int may_preempt = !p->preempting && job->info->spec->priority > p->preempt_below;
    if (!p->room && !always && !may_preempt && !backfill_wants(self))
        return;
    policy_req_t req;
    place_req_of(job->info->spec, &req);
    policy_choice_t choice;
    char why[192];
    unsigned char was[WIRE_MAX_NODES];
    unsigned char open_was[WIRE_MAX_NODES];
    int opened = p->owner_held > 0 && owner_open(self, job->info->spec, p->pn, p->nn, open_was);
    int narrowed = narrow(self, job->info->spec, p->pn, p->nn, was);
    /* around the reservations of jobs before it (backfill.c) */
    int placed = backfill_place(self, job, p->pn, p->nn, &req, &choice, why, sizeof why);
    if (placed == 0 && may_preempt) /* lower-priority preemptible jobs may make room */
        p->preempting = preempt_for(self, job, p->pn, p->nn, &req, why, sizeof why);
    if (narrowed)
        unnarrow(p->pn, p->nn, was);
    if (opened)
        unnarrow(p->pn, p->nn, open_was);
    if (placed < 0)
        return; /* a job asking the same, for no longer, did not fit in this pass */
    if (placed == 1) {
        policy_take(p->pn, &req, &choice);
        start_job(self, job, p->pn, &choice);
        p->room = any_room(p->pn, p->nn);
        return;
    }
    size_t len = strlen(why);
    if (narrowed && len + 40 < sizeof why)
        snprintf(why + len, sizeof why - len, " (among the nodes it may use)");
    int for_owner = p->owner_held > 0 &&
                    owner_wait(self, job->info->spec, p->pn, p->nn, why, sizeof why) && placed == 0;
    jobs_set_reason(self, job,
                    for_owner        ? WSLQ__WAIT_REASON__WAIT_OWNER
                    : !p->any_node   ? WSLQ__WAIT_REASON__WAIT_NO_NODE
                    : placed == 2    ? WSLQ__WAIT_REASON__WAIT_RESERVATION
                    : p->first_waits ? WSLQ__WAIT_REASON__WAIT_RESOURCES
                                     : WSLQ__WAIT_REASON__WAIT_PRIORITY,
                    why);
    p->first_waits = 0;
    p->blocked = job->array;
}

/* 1 while a full pass has a reason to look at more jobs: a node has room, a job ended (its
 * dependants), backfill reserves for jobs that cannot start, or a job may still preempt. */
static int
pass_goes_on(sched_t *self, const pass_t *p, int deps)
{
    return p->room || deps || backfill_wants(self) ||
           (!p->preempting && p->preempt_below != INT32_MAX);
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

static int
cmp_woken(const void *a, const void *b)
{
    const job_t *x = *(job_t *const *) a, *y = *(job_t *const *) b;
    return pend_before(x->info->spec->priority, x->info->id, y->info->spec->priority, y->info->id)
               ? -1
               : 1;
}

/* The jobs whose dependencies ended since the last full pass, tried in the pending set's order
 * (a dependency failed: cancelled; met: placed where there is room, else their reason set),
 * though the pass stopped looking where no node had room. A job cancelled so wakes its own
 * waiters, which are tried next, up to WOKEN_ROUNDS deep (deeper ones at the next full pass).
 * A job that cannot be tried yet (held, in a requeue backoff, its array at its cap) stays for
 * a later pass. */
#define WOKEN_ROUNDS 64

static void
try_woken(sched_t *self, pass_t *p)
{
    uint64_t *keep = NULL;
    size_t n_keep = 0, cap_keep = 0;
    for (int round = 0; self->n_woken > 0 && round < WOKEN_ROUNDS; round++) {
        uint64_t *ids = self->woken;
        size_t n = self->n_woken;
        self->woken = NULL;
        self->n_woken = self->cap_woken = 0;
        qsort(ids, n, sizeof *ids, cmp_u64);
        job_t **jobs = wq_malloc(n * sizeof *jobs);
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (i > 0 && ids[i] == ids[i - 1])
                continue; /* the same job, noted twice (it joined the pending set again) */
            job_t *job = jobs_find(self, ids[i]);
            if (job != NULL && job->in_pend)
                jobs[m++] = job;
        }
        qsort(jobs, m, sizeof *jobs, cmp_woken);
        for (size_t i = 0; i < m; i++)
            ids[i] = jobs[i]->info->id;
        free(jobs);
        for (size_t i = 0; i < m; i++) {
            job_t *job = jobs_find(self, ids[i]); /* trying one may have ended another */
            if (job == NULL || !job->in_pend)
                continue;
            if (!jobsm_placeable(&job->sm, job->info, p->now) || jobs_array_full(job))
                woken_add(&keep, &n_keep, &cap_keep, ids[i]);
            else
                try_job(self, job, p, 0); /* a failed dependency ends it: place_wake */
        }
        free(ids);
    }
    for (size_t i = 0; i < n_keep; i++)
        woken_add(&self->woken, &self->n_woken, &self->cap_woken, keep[i]);
    free(keep);
}

/* The pass: the pending jobs in order of effective priority (priority, fair-share and age:
 * fairshare.c), each placed if the policy finds room and its user is under the limits. It runs when
 * something changed that could let a job start: a job ended or was requeued, a node came, went or
 * changed, a requeue backoff ran out (self->dirty); then every pending job is looked at until no
 * node has room left, and past that point only the waiters of jobs that ended (try_woken), or
 * every pending job after a restart (place_ended). When the
 * only change is new pending jobs, the others would fare as in the last pass (nothing they wait for
 * was freed), so only the new ones are tried, in the same order. */
void
place_pass(sched_t *self)
{
    sets_ready(self);
    int full = self->dirty;
    self->dirty = 0;
    if (!full && self->n_fresh == 0)
        return;
    self->n_passes++;
    /* every pending job past the point where no node has room: at start (what ended while
     * the scheduler was down) */
    int deps = self->place_ended;
    if (full)
        self->place_ended = 0;
    pend_compact(self);
    policy_node_t pn[WIRE_MAX_NODES];
    size_t nn = snapshot(self, pn, WIRE_MAX_NODES, 0);
    int64_t now = wq_clock_mono_ms();
    pass_t p = {.pn = pn, .nn = nn, .now = now, .room = any_room(pn, nn)};
    for (size_t i = 0; i < nn; i++)
        p.any_node |= pn[i].eligible;
    /* nodes with owner = yield whose owner is at the PC: named in the wait reason */
    for (size_t i = 0; i < nn; i++)
        if (nodes_owner_blocks(self->nodes[i]) && p.owner_held++ == 0)
            p.owner_first = self->nodes[i];
    p.preempt_below = preempt_floor(self);
    /* After a full pass, a job already waiting for resources is ahead of any new one. */
    p.first_waits = full || !self->place_waiting;
    backfill_begin(self, pn, nn, full);
    if (full) {
        /* Jobs started or failed during the sweep leave holes (compacted after it). */
        self->placing = 1;
        /* by effective priority (fair-share, age); past the preemption floor no job may
         * preempt (try_job looks at each job's own priority) */
        if (pass_goes_on(self, &p, deps))
            fairshare_order_begin(self);
        for (size_t i;
             pass_goes_on(self, &p, deps) && (i = fairshare_order_next(self)) < self->n_pend;) {
            job_t *job = self->pend[i].job;
            if (job->blocked_on != 0 && jobs_find(self, job->blocked_on) != NULL)
                continue; /* it waits for a job still active, as try_job would find again */
            if (self->pend[i].array == NULL || self->pend[i].array != p.blocked)
                try_job(self, job, &p, 0); /* (try_job skips those tasks too) */
        }
        try_woken(self, &p);
        self->placing = 0;
    }
    /* The new jobs in placement order, by id (trying one can end another: a dependency);
     * after a full pass, those it did not reach get their reason. */
    size_t n = 0;
    job_t **fresh = wq_malloc((self->n_fresh ? self->n_fresh : 1) * sizeof *fresh);
    for (size_t i = 0; i < self->n_fresh; i++) {
        job_t *job = jobs_find(self, self->fresh[i]);
        if (job != NULL && job->in_pend)
            fresh[n++] = job;
    }
    fairshare_sort(self, fresh, n);
    uint64_t *ids = wq_malloc((n ? n : 1) * sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = fresh[i]->info->id;
    self->n_fresh = 0;
    for (size_t i = 0; i < n; i++) {
        job_t *job = jobs_find(self, ids[i]);
        if (job != NULL && job->in_pend)
            try_job(self, job, &p, 1);
    }
    self->place_waiting = !p.first_waits;
    backfill_end(self, pn, nn);
    free(ids);
    free(fresh);
}

int
place_admit(sched_t *self, const Wslq__JobSpec *spec, size_t *n_nodes, wq_error_t *err)
{
    /* A job no node could ever hold is refused now, not left pending forever. */
    policy_node_t pn[WIRE_MAX_NODES];
    size_t nn = snapshot(self, pn, WIRE_MAX_NODES, 1);
    *n_nodes = nn;
    policy_req_t req;
    place_req_of(spec, &req);
    char why[256];
    for (size_t i = 0; i < spec->n_nodelist && nn > 0; i++)
        if (nodes_by_name(self, spec->nodelist[i]) == NULL)
            return wq_fail(err, WQ_EINVAL,
                           "job refused: --nodelist names %.128s, which is not a node",
                           spec->nodelist[i]);
    if (nn > 0 && (spec->n_nodelist || spec->n_exclude || spec->n_constraints)) {
        size_t k = 0; /* only the nodes the job may use */
        for (size_t i = 0; i < nn; i++)
            if (nodes_match(self->nodes[i], spec))
                pn[k++] = pn[i];
        if (k == 0)
            return wq_fail(err, WQ_EINVAL,
                           "job refused: no node matches its --nodelist, --exclude and "
                           "--constraint (see the tags in 'wslq nodes')");
        nn = k;
    }
    if (nn > 0 && !policy_feasible(pn, nn, &req, why, sizeof why))
        return wq_fail(err, WQ_EINVAL, "job refused: %s", why);
    for (size_t i = 0; i < spec->n_depends_on; i++) {
        uint64_t dep = spec->depends_on[i];
        if (jobs_find(self, dep) != NULL)
            continue;
        int found;
        Wslq__JobState st = ended_state(self, dep, &found);
        if (!found)
            return wq_fail(err, WQ_ENOENT, "job refused: dependency job %" PRIu64 " not found",
                           dep);
        if (st != WSLQ__JOB_STATE__COMPLETED)
            return wq_fail(err, WQ_EINVAL,
                           "job refused: dependency job %" PRIu64
                           " ended %s, so it could never start",
                           dep, wire_state_name(st));
    }
    return 0;
}

int
place_explain(sched_t *self, const Wslq__JobSpec *spec, char *why, size_t size)
{
    policy_node_t pn[WIRE_MAX_NODES];
    policy_req_t req;
    place_req_of(spec, &req);
    size_t nn = snapshot(self, pn, WIRE_MAX_NODES, 1);
    if (nn == 0) {
        snprintf(why, size, "no node has registered");
        return -1;
    }
    if (!policy_feasible(pn, nn, &req, why, size))
        return -1;
    nn = snapshot(self, pn, WIRE_MAX_NODES, 0);
    policy_choice_t choice;
    return policy_place(pn, nn, &req, &choice, why, size) ? 1 : 0;
}
