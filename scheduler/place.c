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
            if (ni->gpus[g]->index < WIRE_MAX_GPUS)
                p->gpu_present |= 1ULL << ni->gpus[g]->index;
    }
    if (for_feasibility)
        return n;
    for (size_t j = 0; j < self->n_jobs; j++) {
        const job_t *job = self->jobs[j];
        for (size_t k = 0; k < job->info->n_allocs; k++) {
            if (!jobsm_part_holds(&job->sm, job->info, k))
                continue;
            const Wslq__Alloc *a = job->info->allocs[k];
            for (size_t i = 0; i < n; i++) {
                if (strcmp(pn[i].name, a->node) != 0)
                    continue;
                for (size_t g = 0; g < a->n_gpus; g++)
                    pn[i].gpu_used |= 1ULL << a->gpus[g];
                pn[i].cpus_used += job->info->spec->cpus_per_node;
                pn[i].mem_used_mb += job->info->spec->mem_mb_per_node;
            }
        }
    }
    return n;
}

static void
req_of(const Wslq__JobSpec *s, policy_req_t *r)
{
    r->nodes = s->nodes;
    r->gpus_per_node = s->gpus_per_node;
    r->cpus_per_node = s->cpus_per_node ? s->cpus_per_node : 1;
    r->mem_mb_per_node = s->mem_mb_per_node;
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
        for (size_t j = 0; j < self->n_jobs && !used; j++)
            used = self->jobs[j]->info->master_port == port &&
                   self->jobs[j]->info->state != WSLQ__JOB_STATE__PENDING;
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
        info->allocs[k] = a;
    }
    wire_set_str(&info->master_addr, info->allocs[0]->ip);
    info->master_port = pick_port(self);
    jobsm_event_t ev = {.type = JOBSM_EV_PLACE};
    jobs_apply(self, job, &ev);
}

static int
cmp_pending(const void *a, const void *b)
{
    const job_t *x = *(job_t *const *) a, *y = *(job_t *const *) b;
    if (x->info->spec->priority != y->info->spec->priority)
        return x->info->spec->priority > y->info->spec->priority ? -1 : 1;
    return x->info->id < y->info->id ? -1 : x->info->id > y->info->id;
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
            char why[96];
            snprintf(why, sizeof why, "waiting for job %" PRIu64 " (dependency)", dep);
            jobs_set_reason(self, job, WSLQ__WAIT_REASON__WAIT_DEPENDENCY, why);
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

void
place_pass(sched_t *self)
{
    self->dirty = 0;
    policy_node_t pn[WIRE_MAX_NODES];
    size_t nn = snapshot(self, pn, WIRE_MAX_NODES, 0);
    size_t np = 0;
    job_t **pending = wq_malloc((self->n_jobs ? self->n_jobs : 1) * sizeof *pending);
    for (size_t j = 0; j < self->n_jobs; j++)
        if (self->jobs[j]->info->state == WSLQ__JOB_STATE__PENDING)
            pending[np++] = self->jobs[j];
    qsort(pending, np, sizeof *pending, cmp_pending);
    int64_t now = wq_clock_mono_ms();
    const jobs_array_t *blocked = NULL; /* an array whose task did not fit in this pass */
    int any_node = 0, first_waits = 1;  /* for the wait reasons */
    for (size_t i = 0; i < nn; i++)
        any_node |= pn[i].eligible;
    /* nodes with owner = yield whose owner is at the PC: named in the wait reason */
    size_t owner_held = 0;
    const node_t *owner_first = NULL;
    for (size_t i = 0; i < nn; i++)
        if (nodes_owner_blocks(self->nodes[i]) && owner_held++ == 0)
            owner_first = self->nodes[i];
    for (size_t i = 0; i < np; i++) {
        job_t *job = pending[i];
        if (!jobsm_placeable(&job->sm, job->info, now) || jobs_array_full(job))
            continue; /* backoff, held, or its array runs %K tasks already */
        if (job->array != NULL && job->array == blocked)
            continue; /* its tasks ask the same and come one after another: none fits */
        if (job->info->spec->n_depends_on > 0 && deps_ready(self, job) != 1)
            continue; /* waits, or was cancelled (and freed: not touched again) */
        if (jobs_deps_wait(self, job))
            continue; /* afterany, afternotok, singleton: the same */
        policy_req_t req;
        req_of(job->info->spec, &req);
        policy_choice_t choice;
        char why[192];
        unsigned char was[WIRE_MAX_NODES];
        int narrowed = narrow(self, job->info->spec, pn, nn, was);
        int placed = policy_place(pn, nn, &req, &choice, why, sizeof why);
        if (narrowed)
            unnarrow(pn, nn, was);
        if (placed) {
            policy_take(pn, &req, &choice);
            start_job(self, job, pn, &choice);
        } else {
            size_t len = strlen(why);
            if (narrowed && len + 40 < sizeof why)
                snprintf(why + len, sizeof why - len, " (among the nodes it may use)");
            len = strlen(why);
            if (owner_held > 0 && len + 2 < sizeof why)
                snprintf(why + len, sizeof why - len, "; %zu node%s kept for %s owner (%s: %s)",
                         owner_held, owner_held == 1 ? "" : "s", owner_held == 1 ? "its" : "their",
                         owner_first->info->name, nodes_owner_state_name(owner_first->owner_state));
            /* the first in line waits for resources, those behind it for their turn */
            jobs_set_reason(self, job,
                            !any_node     ? WSLQ__WAIT_REASON__WAIT_NO_NODE
                            : first_waits ? WSLQ__WAIT_REASON__WAIT_RESOURCES
                                          : WSLQ__WAIT_REASON__WAIT_PRIORITY,
                            why);
            first_waits = 0;
            blocked = job->array;
        }
    }
    free(pending);
}

int
place_admit(sched_t *self, const Wslq__JobSpec *spec, size_t *n_nodes, wq_error_t *err)
{
    /* A job no node could ever hold is refused now, not left pending forever. */
    policy_node_t pn[WIRE_MAX_NODES];
    size_t nn = snapshot(self, pn, WIRE_MAX_NODES, 1);
    *n_nodes = nn;
    policy_req_t req;
    req_of(spec, &req);
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
    req_of(spec, &req);
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
