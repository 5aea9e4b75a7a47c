/* Backfill with reservations, as the placement pass (place.c) uses it. The planning itself
 * is bfplan.c's (pure); this file builds the plan from the running jobs, keeps the
 * reservations between passes, and fills the estimates into listings.
 *
 * A pass keeps one plan: the running jobs' parts held until their planned end (start plus
 * time limit, or the configured default_time_limit for a job without one: planning only,
 * such a job is not stopped at it), jobs placed in the pass, and the reservations made in
 * it. In priority order, the first backfill_depth jobs that cannot start get a reservation
 * (the earliest window where they fit); a later job starts only on resources no reservation
 * starting before its own planned end needs. A pass for new jobs alone makes the last
 * pass's reservations again first (in the same order), so a new job never jumps one. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "scheduler/bfplan.h"
#include "scheduler/sched_int.h"

#define BF_CACHE 16 /* request shapes remembered as failing in a pass */

typedef struct {
    uint64_t job;
    int64_t start_ms;
    uint64_t after_job;
    int after_default;
    char nodes[256]; /* "pc1,pc2" */
} bf_kept_t;

struct backfill {
    bf_plan_t plan;
    bf_undo_t undo;
    policy_node_t *narrow; /* a copy of the pass's nodes, narrowed for one job */
    /* jobs reserved, in the order the pass made them (with what listings show) */
    bf_kept_t *kept;
    size_t n_kept;
    uint64_t *order; /* the same ids during a pass */
    size_t n_order;
    /* shapes that failed in this pass: a job of the same shape and a duration at least
     * fail_ms fails too (the resources only shrink during a pass) */
    struct {
        policy_req_t req;
        int64_t fail_ms;
    } cache[BF_CACHE];
    size_t n_cache;
    int swept;    /* estimates left from before a restart were cleared */
    size_t tries; /* reservations looked for in this pass (bounded: a request no node can
                     take now gets none, and must not make the pass look at every job) */
};

/* reservations looked for per pass, at most, per reservation allowed */
#define BF_TRIES_PER_DEPTH 4

static int
wants(const struct backfill *b)
{
    return bf_wants(&b->plan) && b->tries < BF_TRIES_PER_DEPTH * b->plan.depth;
}

static int
enabled(const sched_t *self)
{
    return self->cfg.backfill_depth > 0;
}

/* A job's planned duration: its time limit, else the planning default. */
static int64_t
duration_of(const sched_t *self, const Wslq__JobSpec *s, int *by_default)
{
    *by_default = s->time_limit_s == 0;
    return s->time_limit_s ? (int64_t) s->time_limit_s * 1000 : self->cfg.default_time_limit_ms;
}

static int
plain(const Wslq__JobSpec *s)
{
    return s->n_nodelist == 0 && s->n_exclude == 0 && s->n_constraints == 0;
}

static size_t
node_index(const policy_node_t *pn, size_t nn, const char *name)
{
    for (size_t i = 0; i < nn; i++)
        if (strcmp(pn[i].name, name) == 0)
            return i;
    return (size_t) -1;
}

/* The nodes the job may use: a copy of pn with the others made ineligible. */
static const policy_node_t *
nodes_for(sched_t *self, const Wslq__JobSpec *s, const policy_node_t *pn, size_t nn)
{
    if (plain(s))
        return pn;
    struct backfill *b = self->bf;
    memcpy(b->narrow, pn, nn * sizeof *pn);
    for (size_t i = 0; i < nn && i < self->n_nodes; i++)
        if (!nodes_match(self->nodes[i], s))
            b->narrow[i].eligible = 0;
    return b->narrow;
}

static void
reserve(sched_t *self, const job_t *job, const policy_node_t *pn, size_t nn)
{
    struct backfill *b = self->bf;
    policy_req_t req;
    place_req_of(job->info->spec, &req);
    int by_default;
    int64_t d = duration_of(self, job->info->spec, &by_default);
    b->tries++;
    if (bf_reserve(&b->plan, pn, nn, &req, d, job->info->id, NULL))
        b->order[b->n_order++] = job->info->id;
}

void
backfill_begin(sched_t *self, const policy_node_t *pn, size_t nn, int full)
{
    if (!enabled(self))
        return;
    if (self->bf == NULL) {
        self->bf = wq_calloc(1, sizeof *self->bf);
        bf_init(&self->bf->plan, 0, self->cfg.backfill_depth);
        self->bf->narrow = wq_calloc(WIRE_MAX_NODES, sizeof *self->bf->narrow);
        self->bf->order = wq_calloc(BF_MAX_DEPTH, sizeof *self->bf->order);
    }
    struct backfill *b = self->bf;
    int64_t now = wq_clock_wall_ms();
    bf_reset(&b->plan, now);
    b->n_cache = 0;
    b->tries = 0;
    /* the running jobs' parts, until their planned end */
    size_t n_live;
    job_t *const *live = place_live(self, &n_live);
    for (size_t j = 0; j < n_live; j++) {
        const Wslq__JobInfo *info = live[j]->info;
        if (info->state == WSLQ__JOB_STATE__PENDING)
            continue;
        int by_default;
        int64_t d = duration_of(self, info->spec, &by_default);
        int64_t start = info->start_ms > 0 ? info->start_ms : now;
        for (size_t k = 0; k < info->n_allocs; k++) {
            if (!jobsm_part_holds(&live[j]->sm, info, k))
                continue;
            const Wslq__Alloc *a = info->allocs[k];
            size_t x = node_index(pn, nn, a->node);
            if (x == (size_t) -1)
                continue;
            bf_hold_t h = {.start_ms = start,
                           .end_ms = start + d,
                           .job = info->id,
                           .by_default = by_default,
                           .node = x,
                           .cpus = info->spec->cpus_per_node ? info->spec->cpus_per_node : 1,
                           .mem_mb = info->spec->mem_mb_per_node};
            for (size_t g = 0; g < a->n_gpus; g++)
                if (a->gpus[g] < WIRE_MAX_GPUS)
                    h.gpus |= 1ULL << a->gpus[g];
            bf_hold(&b->plan, &h);
        }
    }
    /* A pass for new jobs alone: the last pass's reservations first, in their order. */
    size_t n_old = b->n_order;
    b->n_order = 0;
    if (full)
        return;
    uint64_t old[BF_MAX_DEPTH];
    memcpy(old, b->order, n_old * sizeof *old);
    for (size_t i = 0; i < n_old && wants(b); i++) {
        job_t *job = jobs_find(self, old[i]);
        if (job == NULL || !job->in_pend || job->info->state != WSLQ__JOB_STATE__PENDING)
            continue;
        reserve(self, job, nodes_for(self, job->info->spec, pn, nn), nn);
    }
}

int
backfill_wants(const sched_t *self)
{
    return enabled(self) && self->bf != NULL && wants(self->bf);
}

/* Only plain shapes are remembered: a GPU type, minimum memory or share makes the request
 * depend on which GPUs are free, and its type string belongs to a job that may go. */
static int
cacheable(const policy_req_t *r)
{
    return (r->gpu_type == NULL || r->gpu_type[0] == '\0') && r->gpu_mem_min_mb == 0 &&
           r->gpu_mem_mb == 0;
}

static int
cached_fail(const struct backfill *b, const policy_req_t *r, int64_t d)
{
    if (!cacheable(r))
        return 0;
    for (size_t i = 0; i < b->n_cache; i++) {
        const policy_req_t *c = &b->cache[i].req;
        if (c->nodes == r->nodes && c->gpus_per_node == r->gpus_per_node &&
            c->cpus_per_node == r->cpus_per_node && c->mem_mb_per_node == r->mem_mb_per_node)
            return d >= b->cache[i].fail_ms;
    }
    return 0;
}

static void
cache_fail(struct backfill *b, const policy_req_t *r, int64_t d)
{
    if (!cacheable(r))
        return;
    for (size_t i = 0; i < b->n_cache; i++) {
        const policy_req_t *c = &b->cache[i].req;
        if (c->nodes == r->nodes && c->gpus_per_node == r->gpus_per_node &&
            c->cpus_per_node == r->cpus_per_node && c->mem_mb_per_node == r->mem_mb_per_node) {
            if (d < b->cache[i].fail_ms)
                b->cache[i].fail_ms = d;
            return;
        }
    }
    if (b->n_cache < BF_CACHE) {
        b->cache[b->n_cache].req = *r;
        b->cache[b->n_cache].fail_ms = d;
        b->n_cache++;
    }
}

/* "pc1,pc2" of a reservation. */
static void
resv_nodes(const policy_node_t *pn, size_t nn, const bf_resv_t *r, char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    for (unsigned k = 0; k < r->choice.n && off + 1 < size; k++) {
        if (r->choice.node[k] >= nn)
            continue;
        int w = snprintf(buf + off, size - off, "%s%s", off ? "," : "", pn[r->choice.node[k]].name);
        if (w < 0)
            break;
        off += (size_t) w;
    }
}

int
backfill_place(sched_t *self,
               job_t *job,
               policy_node_t *pn,
               size_t nn,
               const policy_req_t *req,
               policy_choice_t *c,
               char *why,
               size_t size)
{
    if (!enabled(self) || self->bf == NULL)
        return policy_place(pn, nn, req, c, why, size);
    struct backfill *b = self->bf;
    const Wslq__JobSpec *s = job->info->spec;
    int by_default;
    int64_t d = duration_of(self, s, &by_default);
    int shape = plain(s);
    if (shape && cached_fail(b, req, d) && !wants(b))
        return -1;
    size_t k = bf_apply(&b->plan, pn, nn, d, &b->undo);
    int placed = policy_place(pn, nn, req, c, why, size);
    bf_undo(pn, &b->undo);
    if (placed) {
        bf_take(&b->plan, job->info->id, req, c, d, by_default);
        Wslq__JobInfo *info = job->info; /* saved as it starts */
        info->kept_for_job = 0;
        info->est_start_ms = 0;
        wire_set_str(&info->est_nodes, "");
        info->est_after_job = 0;
        info->est_by_default = 0;
        return 1;
    }
    int kept = 0;
    if (k > 0) {
        policy_choice_t bare;
        char tmp[8];
        kept = policy_place(pn, nn, req, &bare, tmp, sizeof tmp);
    }
    /* a request that does not fit even without the reservations fails for any time */
    if (shape)
        cache_fail(b, req, kept ? d : 0);
    /* the reservation that keeps it: the first that starts (before its own is added) */
    uint64_t kept_for = kept ? b->plan.resv[0].job : 0;
    char nodes[192] = "";
    if (kept)
        resv_nodes(pn, nn, &b->plan.resv[0], nodes, sizeof nodes);
    if (wants(b))
        reserve(self, job, pn, nn);
    job->info->kept_for_job = kept_for;
    if (!kept)
        return 0;
    snprintf(why, size,
             "the free resources it needs are kept for job %" PRIu64
             ", reserved on %s; only a job that ends before that reservation starts may use "
             "them (its --time)",
             kept_for, nodes);
    return 2;
}

/* Write a job's estimate into its record (what listings, wslq why and the JSON API read)
 * when it changed. */
static void
set_estimate(sched_t *self, job_t *job, const bf_kept_t *k)
{
    Wslq__JobInfo *info = job->info;
    int64_t start = k ? k->start_ms : 0;
    const char *nodes = k ? k->nodes : "";
    uint64_t after = k ? k->after_job : 0;
    int by_default = k ? k->after_default : 0;
    if (info->est_start_ms == start && strcmp(info->est_nodes, nodes) == 0 &&
        info->est_after_job == after && info->est_by_default == (protobuf_c_boolean) by_default)
        return;
    info->est_start_ms = start;
    wire_set_str(&info->est_nodes, nodes);
    info->est_after_job = after;
    info->est_by_default = by_default;
    jobs_save(self, job);
}

static int
in_kept(const bf_kept_t *v, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].job == id)
            return 1;
    return 0;
}

void
backfill_end(sched_t *self, const policy_node_t *pn, size_t nn)
{
    if (!enabled(self) || self->bf == NULL)
        return;
    struct backfill *b = self->bf;
    bf_kept_t *now = wq_calloc(b->n_order ? b->n_order : 1, sizeof *now);
    size_t n_now = 0;
    for (size_t i = 0; i < b->n_order; i++) {
        const bf_resv_t *r = bf_find(&b->plan, b->order[i]);
        if (r == NULL)
            continue;
        bf_kept_t *k = &now[n_now++];
        k->job = r->job;
        k->start_ms = r->start_ms;
        k->after_job = r->after_job;
        k->after_default = r->after_default;
        resv_nodes(pn, nn, r, k->nodes, sizeof k->nodes);
    }
    /* estimates that no longer hold are cleared: of the last pass's jobs, or (the first
     * pass after a start) of any pending job */
    if (!b->swept) {
        b->swept = 1;
        for (size_t i = 0; i < self->n_jobs; i++) {
            job_t *job = self->jobs[i];
            if (job->info->est_start_ms != 0 && !in_kept(now, n_now, job->info->id))
                set_estimate(self, job, NULL);
        }
    }
    for (size_t i = 0; i < b->n_kept; i++) {
        if (in_kept(now, n_now, b->kept[i].job))
            continue;
        job_t *job = jobs_find(self, b->kept[i].job);
        if (job != NULL && job->info->state == WSLQ__JOB_STATE__PENDING)
            set_estimate(self, job, NULL);
    }
    for (size_t i = 0; i < n_now; i++) {
        job_t *job = jobs_find(self, now[i].job);
        if (job != NULL && job->info->state == WSLQ__JOB_STATE__PENDING)
            set_estimate(self, job, &now[i]);
    }
    free(b->kept);
    b->kept = now;
    b->n_kept = n_now;
}

void
backfill_free(sched_t *self)
{
    struct backfill *b = self->bf;
    if (b == NULL)
        return;
    bf_free(&b->plan);
    free(b->narrow);
    free(b->kept);
    free(b->order);
    free(b);
    self->bf = NULL;
}
