/* Backfill planning; see bfplan.h. */
#include "scheduler/bfplan.h"

#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

void
bf_init(bf_plan_t *p, int64_t now, size_t depth)
{
    memset(p, 0, sizeof *p);
    p->now = now;
    p->depth = depth < BF_MAX_DEPTH ? depth : BF_MAX_DEPTH;
    if (p->depth > 0)
        p->resv = wq_calloc(p->depth, sizeof *p->resv);
}

void
bf_free(bf_plan_t *p)
{
    free(p->holds);
    free(p->resv);
    memset(p, 0, sizeof *p);
}

void
bf_reset(bf_plan_t *p, int64_t now)
{
    p->now = now;
    p->n_holds = 0;
    p->n_resv = 0;
}

static void
push_hold(bf_plan_t *p, const bf_hold_t *h)
{
    if (p->n_holds == p->cap_holds) {
        p->cap_holds = p->cap_holds ? 2 * p->cap_holds : 64;
        p->holds = wq_realloc(p->holds, p->cap_holds * sizeof *p->holds);
    }
    p->holds[p->n_holds++] = *h;
}

void
bf_hold(bf_plan_t *p, const bf_hold_t *h)
{
    bf_hold_t c = *h;
    if (c.end_ms <= p->now)
        c.end_ms = p->now + 1;
    if (c.start_ms > p->now && !c.reservation)
        c.start_ms = p->now;
    push_hold(p, &c);
}

void
bf_take(bf_plan_t *p,
        uint64_t job,
        const policy_req_t *req,
        const policy_choice_t *c,
        int64_t duration_ms,
        int by_default)
{
    for (unsigned k = 0; k < c->n; k++) {
        bf_hold_t h = {.start_ms = p->now,
                       .end_ms = p->now + (duration_ms > 0 ? duration_ms : 1),
                       .job = job,
                       .by_default = by_default,
                       .node = c->node[k],
                       .gpus = c->gpus[k],
                       .cpus = req->cpus_per_node,
                       .mem_mb = req->mem_mb_per_node};
        push_hold(p, &h);
    }
}

int
bf_wants(const bf_plan_t *p)
{
    return p->n_resv < p->depth;
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

/* The nodes as they would be over [t, t + d): 'out' (a copy of the nodes: a node's GPU table
 * is large, so it is copied once per reservation, not per window) with no use, then every
 * hold that overlaps the window. */
static void
view_at(const bf_plan_t *p, size_t n, int64_t t, int64_t d, policy_node_t *out)
{
    for (size_t i = 0; i < n; i++) {
        out[i].gpu_used = 0;
        out[i].cpus_used = 0;
        out[i].mem_used_mb = 0;
    }
    for (size_t h = 0; h < p->n_holds; h++) {
        const bf_hold_t *x = &p->holds[h];
        if (x->node >= n || x->end_ms <= t || x->start_ms >= t + d)
            continue;
        out[x->node].gpu_used |= x->gpus;
        out[x->node].cpus_used += x->cpus;
        out[x->node].mem_used_mb += x->mem_mb;
    }
}

int
bf_reserve(bf_plan_t *p,
           const policy_node_t *nodes,
           size_t n,
           const policy_req_t *req,
           int64_t duration_ms,
           uint64_t job,
           bf_resv_t *out)
{
    if (!bf_wants(p) || n == 0 || n > WIRE_MAX_NODES)
        return 0;
    if (duration_ms <= 0)
        duration_ms = 1;
    /* candidate starts: now, and every end of a hold still to come */
    int64_t *times = wq_malloc((p->n_holds + 1) * sizeof *times);
    size_t nt = 0;
    times[nt++] = p->now;
    for (size_t h = 0; h < p->n_holds; h++)
        if (p->holds[h].end_ms > p->now)
            times[nt++] = p->holds[h].end_ms;
    qsort(times, nt, sizeof *times, cmp_i64);
    policy_node_t *view = wq_malloc(n * sizeof *view);
    memcpy(view, nodes, n * sizeof *view);
    int found = 0;
    bf_resv_t r = {.job = job};
    for (size_t k = 0; k < nt && !found; k++) {
        if (k > 0 && times[k] == times[k - 1])
            continue;
        int64_t t = times[k];
        view_at(p, n, t, duration_ms, view);
        char why[8];
        if (!policy_place(view, n, req, &r.choice, why, sizeof why))
            continue;
        found = 1;
        r.start_ms = t;
        r.end_ms = t + duration_ms;
        /* the running job whose end opened the window: the latest of those ending at t
         * (a reservation's end counts too: its job) */
        for (size_t h = 0; h < p->n_holds; h++)
            if (p->holds[h].end_ms == t && t > p->now) {
                r.after_job = p->holds[h].job;
                r.after_default = p->holds[h].by_default;
                if (!p->holds[h].reservation)
                    break;
            }
    }
    free(view);
    free(times);
    if (!found)
        return 0;
    r.cpus_per_node = req->cpus_per_node;
    r.mem_mb_per_node = req->mem_mb_per_node;
    for (unsigned k = 0; k < r.choice.n; k++) {
        bf_hold_t h = {.start_ms = r.start_ms,
                       .end_ms = r.end_ms,
                       .job = job,
                       .reservation = 1,
                       .node = r.choice.node[k],
                       .gpus = r.choice.gpus[k],
                       .cpus = req->cpus_per_node,
                       .mem_mb = req->mem_mb_per_node};
        push_hold(p, &h);
    }
    /* kept in ascending start (a later one with the same start goes after) */
    size_t i = p->n_resv;
    while (i > 0 && p->resv[i - 1].start_ms > r.start_ms) {
        p->resv[i] = p->resv[i - 1];
        i--;
    }
    p->resv[i] = r;
    p->n_resv++;
    if (out != NULL)
        *out = r;
    return 1;
}

size_t
bf_apply(const bf_plan_t *p, policy_node_t *nodes, size_t n, int64_t duration_ms, bf_undo_t *u)
{
    u->n = 0;
    size_t k = 0;
    int64_t until = p->now + (duration_ms > 0 ? duration_ms : 1);
    for (; k < p->n_resv && p->resv[k].start_ms < until; k++) {
        const bf_resv_t *r = &p->resv[k];
        for (unsigned j = 0; j < r->choice.n; j++) {
            size_t x = r->choice.node[j];
            if (x >= n)
                continue;
            if (!u->seen[x]) {
                u->seen[x] = 1;
                u->node[u->n] = x;
                u->gpu_used[u->n] = nodes[x].gpu_used;
                u->cpus_used[u->n] = nodes[x].cpus_used;
                u->mem_used_mb[u->n] = nodes[x].mem_used_mb;
                u->n++;
            }
            nodes[x].gpu_used |= r->choice.gpus[j];
            nodes[x].cpus_used += r->cpus_per_node;
            nodes[x].mem_used_mb += r->mem_mb_per_node;
        }
    }
    return k;
}

void
bf_undo(policy_node_t *nodes, bf_undo_t *u)
{
    for (size_t i = 0; i < u->n; i++) {
        size_t x = u->node[i];
        nodes[x].gpu_used = u->gpu_used[i];
        nodes[x].cpus_used = u->cpus_used[i];
        nodes[x].mem_used_mb = u->mem_used_mb[i];
        u->seen[x] = 0;
    }
}

const bf_resv_t *
bf_find(const bf_plan_t *p, uint64_t job)
{
    for (size_t i = 0; i < p->n_resv; i++)
        if (p->resv[i].job == job)
            return &p->resv[i];
    return NULL;
}
