/* Jobs: the registry of active jobs, carrying out the state machine's actions (jobsm.c), and
 * the CLI's job requests: submit, queue, show, cancel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "proto/jobspec.h"
#include "scheduler/sched_int.h"

#define GANG_GRACE_MS 3000 /* SIGTERM to SIGKILL when another part of a gang failed */

/* ---------- the registry ---------- */

job_t *
jobs_find(sched_t *self, uint64_t id)
{
    size_t lo = 0, hi = self->n_jobs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uint64_t mid_id = self->jobs[mid]->info->id;
        if (mid_id == id)
            return self->jobs[mid];
        if (mid_id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void
jobs_insert(sched_t *self, job_t *job)
{
    WQ_ASSERT(!wire_state_is_final(job->info->state) && job->info->id > 0);
    /* room for a power of two: grown when full (n a power of two), not once per job, which
     * made loading 100,000 jobs at start quadratic */
    size_t n = self->n_jobs;
    if (n == 0 || (n & (n - 1)) == 0)
        self->jobs = wq_realloc(self->jobs, (n ? 2 * n : 1) * sizeof *self->jobs);
    size_t i = self->n_jobs;
    while (i > 0 && self->jobs[i - 1]->info->id > job->info->id) {
        self->jobs[i] = self->jobs[i - 1];
        i--;
    }
    WQ_ASSERT(i == 0 || self->jobs[i - 1]->info->id < job->info->id); /* ids are unique */
    self->jobs[i] = job;
    self->n_jobs++;
    place_track(self, job, 0);
}

static void
job_free(job_t *job)
{
    if (job == NULL)
        return;
    kv_clear(job);
    jobsm_fini(&job->sm);
    wslq__job_info__free_unpacked(job->info, NULL);
    free(job);
}

static void
jobs_remove(sched_t *self, job_t *job)
{
    place_track(self, job, 1);
    size_t lo = 0, hi = self->n_jobs; /* ascending id: a binary search */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->jobs[mid]->info->id < job->info->id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < self->n_jobs && self->jobs[lo] == job) {
        memmove(&self->jobs[lo], &self->jobs[lo + 1], (self->n_jobs - lo - 1) * sizeof *self->jobs);
        self->n_jobs--;
    }
    job_free(job);
}

void
jobs_load(Wslq__JobInfo *info, void *arg)
{
    sched_t *self = arg;
    job_t *job = wq_calloc(1, sizeof *job);
    job->info = info;
    job->phase_mono = wq_clock_mono_ms();
    jobsm_load(&job->sm, info);
    jobs_insert(self, job);
}

void
jobs_free_all(sched_t *self)
{
    for (size_t i = 0; i < self->n_jobs; i++)
        job_free(self->jobs[i]);
    free(self->jobs);
    self->jobs = NULL;
    self->n_jobs = 0;
}

/* ---------- the journal ---------- */

void
jobs_save(sched_t *self, job_t *job)
{
    wq_error_t err = {0};
    self->stats.version++;
    sched_db_begin(self);
    if (self->failed)
        return;
    int rc = job->info->id == 0 ? queue_insert(self->q, job->info, &err)
                                : queue_update(self->q, job->info, &err);
    if (rc < 0)
        sched_fatal(self, &err);
}

static void
add_row(sched_t *self, job_t *job, const jobsm_row_t *r)
{
    Wslq__JobEvent ev = WSLQ__JOB_EVENT__INIT;
    ev.ts_ms = wq_clock_wall_ms();
    ev.state = r->state;
    ev.reason = (char *) r->reason;
    ev.node = (char *) r->node;
    ev.detail = (char *) r->detail;
    ev.attempt = job->info->attempt;
    wq_error_t err = {0};
    sched_db_begin(self);
    if (!self->failed && queue_add_event(self->q, job->info->id, &ev, &err) < 0)
        sched_fatal(self, &err);
}

void
jobs_set_reason(sched_t *self, job_t *job, const char *why)
{
    if (strcmp(job->info->reason, why) == 0)
        return;
    wire_set_str(&job->info->reason, why);
    jobs_save(self, job);
}

/* Statistics and the log line of a state change. */
static void
note_state(sched_t *self, job_t *job, const jobsm_out_t *out)
{
    Wslq__JobInfo *info = job->info;
    Wslq__JobState st = info->state;
    if (st == WSLQ__JOB_STATE__STARTING && info->attempt == 0 && info->submit_ms > 0) {
        double wait = (double) (wq_clock_wall_ms() - info->submit_ms) / 1000.0;
        sched_observe(self->stats.wait_bucket, sched_wait_bounds, SCHED_WAIT_BUCKETS, wait);
        self->stats.wait_count++;
        self->stats.wait_sum_s += wait;
    }
    if (wire_state_is_final(st))
        self->stats.ended_total[st]++;
    const char *reason = "";
    for (size_t i = 0; i < out->n_rows; i++)
        if (out->rows[i].state == st)
            reason = out->rows[i].reason;
    log_info(JOB_FMT " state=%s attempt=%u reason=\"%s\"", info->id, wire_state_name(st),
             info->attempt, reason);
}

int
jobs_apply(sched_t *self, job_t *job, jobsm_event_t *ev)
{
    if (ev->now_wall_ms == 0)
        ev->now_wall_ms = wq_clock_wall_ms();
    if (ev->now_mono_ms == 0)
        ev->now_mono_ms = wq_clock_mono_ms();
    jobsm_out_t out;
    wq_error_t err = {0};
    int rc = jobsm_apply(&job->sm, job->info, ev, &out, &err);
    if (rc < 0) {
        log_warn("job event refused: %s", err.text);
        return -1;
    }
    if (rc == JOBSM_STALE)
        return JOBSM_STALE;
    if (out.state_changed) {
        job->phase_mono = ev->now_mono_ms;
        note_state(self, job, &out);
    }
    if (out.act & JOBSM_ACT_SAVE)
        jobs_save(self, job);
    else
        self->stats.version++;
    for (size_t i = 0; i < out.n_rows; i++)
        add_row(self, job, &out.rows[i]);
    if (job->info->id != 0 && jobs_find(self, job->info->id) == job)
        place_track(self, job, 0); /* a submitted job joins when it is inserted */
    if (out.act & JOBSM_ACT_KILL) {
        int64_t grace = self->cfg.kill_grace_ms;
        if (out.kill_grace == JOBSM_GRACE_GANG && grace > GANG_GRACE_MS)
            grace = GANG_GRACE_MS; /* the gang is already broken: every rank gone within 5 s */
        gang_kill(self, job, out.kill_reason, grace);
    }
    if (out.act & JOBSM_ACT_LAUNCH)
        for (size_t k = 0; k < job->info->n_allocs; k++)
            gang_launch(self, job, k);
    if (out.act & JOBSM_ACT_REQUEUED) {
        kv_clear(job);
        self->stats.requeued_total++;
    }
    if ((out.act & JOBSM_ACT_RESCHED) && ev->type != JOBSM_EV_SUBMIT)
        self->dirty = 1; /* a new job alone is tried by itself (place_pass) */
    if (out.act & JOBSM_ACT_ENDED) {
        waiters_wake_logs(self, job->info->id);
        jobs_remove(self, job);
    }
    return JOBSM_APPLIED;
}

/* ---------- who may see and touch a job ---------- */

int
jobs_forbid(sched_t *self, const msg_t *m, const Wslq__JobInfo *info, const char *what)
{
    if (who_may_touch(m->who, info))
        return 0;
    self->stats.forbidden_total++;
    wq_error_t err;
    wq_fail(&err, WQ_EPERM, "job %" PRIu64 " is %s's: only its owner or an admin may %s it",
            info->id, info->spec ? info->spec->user : "someone else", what);
    out_error(self, m->from, m->env->request_id, &err);
    return 1;
}

/* ---------- CLI requests ---------- */

void
handle_submit(sched_t *self, const msg_t *m)
{
    Wslq__JobSpec *spec = m->env->submit->spec;
    if (m->who->kind != WHO_INSECURE) /* the owner is who sent it, whatever the spec claims */
        wire_set_str(&spec->user, m->who->name);
    jobspec_apply_defaults(spec);
    wq_error_t err = {0};
    size_t n_nodes = 0;
    if (place_admit(self, spec, &n_nodes, &err) < 0) {
        self->stats.refused_total++;
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    job_t *job = wq_calloc(1, sizeof *job);
    job->info = wq_malloc(sizeof *job->info);
    wslq__job_info__init(job->info);
    job->info->spec = spec;
    m->env->submit->spec = NULL; /* the job owns it now */
    jobsm_event_t ev = {.type = JOBSM_EV_SUBMIT,
                        .text = n_nodes == 0 ? "waiting for a node to register" : ""};
    if (jobs_apply(self, job, &ev) != JOBSM_APPLIED || self->failed) {
        job_free(job);
        return; /* the database failed: the loop stops, nothing is answered */
    }
    jobs_insert(self, job);
    self->stats.submitted_total++;
    Wslq__SubmitReply rep = WSLQ__SUBMIT_REPLY__INIT;
    rep.job_id = job->info->id;
    out_submit_reply(self, m->from, m->env->request_id, &rep);
}

typedef struct {
    Wslq__JobInfo **jobs;
    size_t n, cap;
} collect_t;

static void
collect_job(Wslq__JobInfo *info, void *arg)
{
    collect_t *c = arg;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->jobs = wq_realloc(c->jobs, c->cap * sizeof *c->jobs);
    }
    c->jobs[c->n++] = info;
}

void
handle_queue(sched_t *self, const msg_t *m)
{
    const Wslq__QueueRequest *r = m->env->queue;
    queue_filter_t f = {0};
    f.active_only = !r->all && r->n_states == 0;
    for (size_t i = 0; i < r->n_states; i++)
        f.state_mask |= 1u << r->states[i];
    f.user = r->user[0] ? r->user : NULL;
    f.name = r->name[0] ? r->name : NULL;
    f.before_id = r->before_id;
    f.limit =
        r->limit ? (r->limit > SCHED_LIST_MAX ? SCHED_LIST_MAX : r->limit) : SCHED_LIST_DEFAULT;
    f.newest_first = 1;
    collect_t c = {0};
    wq_error_t err = {0};
    if (queue_list(self->q, &f, collect_job, &c, &err) < 0) {
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    /* Oldest first on screen, as squeue; keep the reply well under the frame limit. */
    size_t keep = c.n, bytes = 0;
    for (size_t i = 0; i < c.n; i++) {
        bytes += wslq__job_info__get_packed_size(c.jobs[i]);
        if (bytes > WIRE_MAX_FRAME / 2) {
            keep = i;
            break;
        }
    }
    Wslq__JobInfo **ordered = wq_malloc((keep ? keep : 1) * sizeof *ordered);
    for (size_t i = 0; i < keep; i++) {
        ordered[i] = c.jobs[keep - 1 - i];
        who_redact(m->who, ordered[i]); /* everyone sees the queue; commands are the owner's */
    }
    Wslq__QueueReply rep = WSLQ__QUEUE_REPLY__INIT;
    rep.jobs = ordered;
    rep.n_jobs = keep;
    rep.more = keep < c.n || c.n == f.limit;
    out_queue_reply(self, m->from, m->env->request_id, &rep);
    for (size_t i = 0; i < c.n; i++)
        wslq__job_info__free_unpacked(c.jobs[i], NULL);
    free(c.jobs);
    free(ordered);
}

void
handle_show(sched_t *self, const msg_t *m)
{
    wq_error_t err = {0};
    Wslq__JobInfo *info = queue_get(self->q, m->env->show->job_id, &err);
    if (info == NULL) {
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    who_redact(m->who, info);
    Wslq__JobEvent **events = NULL;
    size_t n = 0;
    if (queue_events(self->q, info->id, &events, &n, &err) < 0) {
        wslq__job_info__free_unpacked(info, NULL);
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    Wslq__ShowReply rep = WSLQ__SHOW_REPLY__INIT;
    rep.job = info;
    rep.events = events;
    rep.n_events = n;
    out_show_reply(self, m->from, m->env->request_id, &rep);
    queue_free_events(events, n);
    wslq__job_info__free_unpacked(info, NULL);
}

void
handle_cancel(sched_t *self, const msg_t *m)
{
    const Wslq__CancelRequest *r = m->env->cancel;
    wq_error_t err = {0};
    /* Check every id first: a bad id, or another user's job, changes nothing. */
    for (size_t i = 0; i < r->n_job_ids; i++) {
        job_t *active = jobs_find(self, r->job_ids[i]);
        if (active != NULL && jobs_forbid(self, m, active->info, "cancel"))
            return;
        if (active != NULL)
            continue;
        Wslq__JobInfo *info = queue_get(self->q, r->job_ids[i], &err);
        if (info == NULL) {
            out_error(self, m->from, m->env->request_id, &err);
            return;
        }
        if (jobs_forbid(self, m, info, "cancel")) {
            wslq__job_info__free_unpacked(info, NULL);
            return;
        }
        wq_fail(&err, WQ_EINVAL, "job %" PRIu64 " has already ended (%s)", info->id,
                wire_state_name(info->state));
        wslq__job_info__free_unpacked(info, NULL);
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    for (size_t i = 0; i < r->n_job_ids; i++) {
        job_t *job = jobs_find(self, r->job_ids[i]);
        if (job == NULL)
            continue; /* listed twice */
        jobsm_event_t ev = {.type = JOBSM_EV_CANCEL};
        jobs_apply(self, job, &ev);
    }
    Wslq__CancelReply rep = WSLQ__CANCEL_REPLY__INIT;
    rep.cancelled = r->job_ids;
    rep.n_cancelled = r->n_job_ids;
    out_cancel_reply(self, m->from, m->env->request_id, &rep);
}
