/* Gangs: a started job is one part per node (its alloc), started, watched and ended together.
 * Launches and kills to every part; what workers report about parts (started, ended, a rank
 * failed) and what the clock says (start timeout, time limit, a part a node forgot) become
 * state machine events here. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "scheduler/sched_int.h"

int
gang_part_of(const Wslq__JobInfo *info, const char *node)
{
    for (size_t k = 0; k < info->n_allocs; k++)
        if (strcmp(info->allocs[k]->node, node) == 0)
            return (int) k;
    return -1;
}

void
gang_launch(sched_t *self, job_t *job, size_t k)
{
    Wslq__JobInfo *info = job->info;
    Wslq__JobLaunch l = WSLQ__JOB_LAUNCH__INIT;
    l.job_id = info->id;
    l.attempt = info->attempt;
    l.spec = info->spec;
    l.alloc = info->allocs[k];
    l.nnodes = (uint32_t) info->n_allocs;
    l.world_size = 0;
    for (size_t i = 0; i < info->n_allocs; i++)
        l.world_size += info->allocs[i]->nranks;
    l.master_addr = info->master_addr;
    l.master_port = info->master_port;
    l.array_job_id = info->array_job_id;
    l.array_index = info->array_index;
    l.tf_workers = tfcfg_workers(info, &l.n_tf_workers);
    out_launch(self, info->allocs[k]->node, &l);
    tfcfg_workers_free(l.tf_workers, l.n_tf_workers);
}

void
gang_kill(sched_t *self, job_t *job, const char *reason, int64_t grace_ms)
{
    Wslq__JobKill kill = WSLQ__JOB_KILL__INIT;
    kill.job_id = job->info->id;
    kill.attempt = job->info->attempt;
    kill.reason = (char *) reason;
    kill.grace_ms = (uint32_t) grace_ms;
    for (size_t k = 0; k < job->sm.n_parts; k++)
        if (!job->sm.parts[k].ended)
            out_kill(self, job->info->allocs[k]->node, &kill);
}

void
gang_suspend(sched_t *self, job_t *job, const char *reason)
{
    Wslq__JobSuspend s = WSLQ__JOB_SUSPEND__INIT;
    s.job_id = job->info->id;
    s.attempt = job->info->attempt;
    s.suspend = job->info->suspended;
    s.reason = (char *) reason;
    for (size_t k = 0; k < job->sm.n_parts; k++)
        if (!job->sm.parts[k].ended)
            out_suspend(self, job->info->allocs[k]->node, &s);
}

/* The part of 'job' on the node that sent m, if the message is about the current attempt. */
static int
part_from(const msg_t *m, const job_t *job, uint32_t attempt)
{
    if (job == NULL || job->info->attempt != attempt)
        return -1;
    return gang_part_of(job->info, m->node->info->name);
}

void
gang_node_lost(sched_t *self, node_t *nd)
{
    for (size_t j = 0; j < self->n_jobs;) {
        job_t *job = self->jobs[j];
        int k = gang_part_of(job->info, nd->info->name);
        size_t before = self->n_jobs;
        if (k >= 0 && jobsm_part_holds(&job->sm, job->info, (size_t) k)) {
            jobsm_event_t ev = {.type = JOBSM_EV_NODE_LOST, .part = (size_t) k};
            jobs_apply(self, job, &ev);
        }
        if (self->n_jobs == before)
            j++; /* else it ended: the same index now holds the next job */
    }
    self->dirty = 1;
}

/* A job being stopped whose part k's node re-registers still running it gets its kill again,
 * whatever the cause (jobsm_kill_again): the worker ignores it if the first one came, and a
 * first one lost (to a scheduler restart, a dropped connection) is made good. */
static void
kill_part_again(sched_t *self, job_t *job, size_t k)
{
    jobsm_out_t out;
    memset(&out, 0, sizeof out);
    if (jobsm_kill_again(&job->sm, job->info, &out) < 0)
        return;
    Wslq__JobKill kill = WSLQ__JOB_KILL__INIT;
    kill.job_id = job->info->id;
    kill.attempt = job->info->attempt;
    kill.reason = out.kill_reason;
    kill.grace_ms = (uint32_t) jobs_kill_grace_ms(self, out.kill_grace);
    log_info("kill sent again to a re-registered node job=%" PRIu64 " node=%s cause=%s",
             job->info->id, job->info->allocs[k]->node, jobsm_cause_name(job->sm.cause));
    out_kill(self, job->info->allocs[k]->node, &kill);
}

void
gang_on_register(sched_t *self, node_t *nd, const Wslq__Register *r, Wslq__RegisterReply *rep)
{
    const char *name = nd->info->name;
    rep->kill_jobs = wq_calloc(r->n_running + 1, sizeof *rep->kill_jobs);
    rep->log_offsets = wq_calloc(r->n_running + 1, sizeof *rep->log_offsets);
    for (size_t i = 0; i < r->n_running; i++) {
        const Wslq__RunningJob *rj = r->running[i];
        job_t *job = jobs_find(self, rj->job_id);
        int k = job && job->info->attempt == rj->attempt ? gang_part_of(job->info, name) : -1;
        if (k < 0 || !jobsm_part_holds(&job->sm, job->info, (size_t) k)) {
            rep->kill_jobs[rep->n_kill_jobs++] = rj->job_id;
            continue;
        }
        /* still running there: adopt it, and tell the worker where its log resumes */
        job->sm.parts[k].missing_since_mono = 0;
        jobsm_event_t ev = {.type = JOBSM_EV_PART_STARTED, .part = (size_t) k};
        jobs_apply(self, job, &ev);
        kill_part_again(self, job, (size_t) k);
        Wslq__RunningJob *off = wq_malloc(sizeof *off);
        wslq__running_job__init(off);
        off->job_id = rj->job_id;
        off->attempt = rj->attempt;
        off->log_offset =
            logs_received(self, rj->job_id, rj->attempt, (size_t) k, job->info->n_allocs);
        rep->log_offsets[rep->n_log_offsets++] = off;
    }
    /* Jobs placed here that the worker no longer lists: it may still send their JobEnded
     * (it re-sends until acknowledged); if not within the grace, they are lost. */
    int64_t now = wq_clock_mono_ms();
    for (size_t j = 0; j < self->n_jobs; j++) {
        job_t *job = self->jobs[j];
        int k = gang_part_of(job->info, name);
        if (k < 0 || !jobsm_part_holds(&job->sm, job->info, (size_t) k))
            continue;
        int listed = 0;
        for (size_t i = 0; i < r->n_running && !listed; i++)
            listed = r->running[i]->job_id == job->info->id &&
                     r->running[i]->attempt == job->info->attempt;
        jobsm_part_t *p = &job->sm.parts[k];
        int stopping = job->sm.kill_sent; /* never launched again: it is to end */
        if (!listed && (p->started || stopping) && p->missing_since_mono == 0)
            p->missing_since_mono = now;
        if (!listed && !p->started && !stopping)
            gang_launch(self, job, (size_t) k); /* the launch may have been lost */
    }
}

/* Free what gang_on_register put in the reply. */
void
gang_free_register_reply(Wslq__RegisterReply *rep)
{
    free(rep->kill_jobs);
    for (size_t i = 0; i < rep->n_log_offsets; i++)
        free(rep->log_offsets[i]);
    free(rep->log_offsets);
}

static int
cmp_id(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

/* The timers of the active jobs that have one running: start timeout, time limit, missing
 * parts, requeue backoff. Only the live set (place.c) is looked at, not the pending jobs,
 * which have none: with 100,000 jobs queued a tick stays as cheap as with none. */
void
gang_tick(sched_t *self, int64_t now)
{
    size_t n;
    job_t *const *live = place_live(self, &n);
    if (n == 0)
        return;
    /* by id, in id order: an event may end a job and change the set */
    uint64_t *ids = wq_malloc(n * sizeof *ids);
    for (size_t j = 0; j < n; j++)
        ids[j] = live[j]->info->id;
    qsort(ids, n, sizeof *ids, cmp_id);
    for (size_t j = 0; j < n; j++) {
        job_t *job = jobs_find(self, ids[j]);
        if (job == NULL)
            continue;
        Wslq__JobInfo *info = job->info;
        if (info->state == WSLQ__JOB_STATE__STARTING && !job->sm.kill_sent &&
            now - job->phase_mono > self->cfg.start_timeout_ms) {
            char why[160];
            snprintf(why, sizeof why, "not every rank started within %" PRId64 " s",
                     self->cfg.start_timeout_ms / 1000);
            jobsm_event_t ev = {.type = JOBSM_EV_START_TIMEOUT, .text = why};
            jobs_apply(self, job, &ev);
            if (jobs_find(self, ids[j]) == NULL)
                continue;
        }
        /* time suspended for a PC's owner does not count (preempt.c) */
        int64_t stopped = info->suspended_ms;
        if (info->suspended && info->suspended_since_ms > 0)
            stopped += wq_clock_wall_ms() - info->suspended_since_ms;
        if (info->state == WSLQ__JOB_STATE__RUNNING && info->spec->time_limit_s > 0 &&
            !job->sm.kill_sent &&
            now - job->phase_mono - stopped > (int64_t) info->spec->time_limit_s * 1000) {
            jobsm_event_t ev = {.type = JOBSM_EV_TIME_LIMIT};
            jobs_apply(self, job, &ev);
            if (jobs_find(self, ids[j]) == NULL)
                continue;
        }
        for (size_t k = 0; k < job->sm.n_parts; k++) {
            jobsm_part_t *p = &job->sm.parts[k];
            if (!p->ended && p->missing_since_mono &&
                now - p->missing_since_mono > self->cfg.missing_grace_ms) {
                jobsm_event_t ev = {.type = JOBSM_EV_PART_MISSING, .part = k};
                jobs_apply(self, job, &ev);
                break; /* the job may be gone */
            }
        }
        if (jobs_find(self, ids[j]) == NULL)
            continue;
        if (info->state == WSLQ__JOB_STATE__PENDING && job->sm.not_before_mono) {
            jobsm_event_t ev = {.type = JOBSM_EV_REQUEUE_TIMER, .now_mono_ms = now};
            jobs_apply(self, job, &ev);
        }
    }
    free(ids);
}

static int64_t
earliest(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* The first millisecond at which gang_tick has something to do for a live job: the same
 * conditions, as deadlines. */
int64_t
gang_next_timer(sched_t *self)
{
    size_t n;
    job_t *const *live = place_live(self, &n);
    int64_t next = INT64_MAX;
    for (size_t j = 0; j < n; j++) {
        const job_t *job = live[j];
        const Wslq__JobInfo *info = job->info;
        if (info->state == WSLQ__JOB_STATE__STARTING && !job->sm.kill_sent)
            next = earliest(next, job->phase_mono + self->cfg.start_timeout_ms + 1);
        if (info->state == WSLQ__JOB_STATE__RUNNING && info->spec->time_limit_s > 0 &&
            !job->sm.kill_sent)
            next = earliest(next, job->phase_mono + (int64_t) info->spec->time_limit_s * 1000 + 1);
        for (size_t k = 0; k < job->sm.n_parts; k++) {
            const jobsm_part_t *p = &job->sm.parts[k];
            if (!p->ended && p->missing_since_mono)
                next = earliest(next, p->missing_since_mono + self->cfg.missing_grace_ms + 1);
        }
        if (info->state == WSLQ__JOB_STATE__PENDING && job->sm.not_before_mono)
            next = earliest(next, job->sm.not_before_mono);
    }
    return next;
}

/* ---------- what workers report ---------- */

void
handle_started(sched_t *self, const msg_t *m)
{
    const Wslq__JobStarted *s = m->env->started;
    job_t *job = jobs_find(self, s->job_id);
    int k = part_from(m, job, s->attempt);
    if (k < 0)
        return;
    jobsm_event_t ev = {.type = JOBSM_EV_PART_STARTED, .part = (size_t) k};
    jobs_apply(self, job, &ev);
}

void
handle_ended(sched_t *self, const msg_t *m)
{
    const Wslq__JobEnded *e = m->env->ended;
    job_t *job = jobs_find(self, e->job_id);
    int k = part_from(m, job, e->attempt);
    /* acknowledged whatever it was, with how much of this node's output we hold: the worker
     * resends from there if that is short, then asks again */
    Wslq__JobEndedAck ack = WSLQ__JOB_ENDED_ACK__INIT;
    ack.job_id = e->job_id;
    ack.attempt = e->attempt;
    ack.log_counted = 1;
    if (k >= 0) {
        ack.log_offset =
            logs_received(self, e->job_id, e->attempt, (size_t) k, job->info->n_allocs);
    } else if (job == NULL) {
        Wslq__JobInfo *info = queue_get(self->q, e->job_id, NULL);
        int kk = info && info->attempt == e->attempt ? gang_part_of(info, m->node->info->name) : -1;
        if (kk >= 0)
            ack.log_offset =
                logs_received(self, e->job_id, e->attempt, (size_t) kk, info->n_allocs);
        else
            ack.log_counted = 0; /* not a job of ours: nothing to resend */
        if (info)
            wslq__job_info__free_unpacked(info, NULL);
    } else {
        ack.log_counted = 0; /* an older attempt: its output is not wanted */
    }
    if (k >= 0 && jobsm_part_holds(&job->sm, job->info, (size_t) k)) {
        job->info->allocs[k]->log_bytes = e->log_bytes;
        isol_set_cpus(job, k, e->cpus);
        if (e->gpu_reset && (e->exit_code != 0 || e->signal != 0))
            m->node->gpu_resets++; /* wslq_gpu_resets_total */
        jobsm_event_t ev = {.type = JOBSM_EV_PART_ENDED,
                            .part = (size_t) k,
                            .exit_code = e->exit_code,
                            .signal = e->signal,
                            .rank = e->failed_rank,
                            .timed_out = e->timed_out,
                            .killed = e->killed,
                            .output_lost = e->output_lost,
                            .out_of_memory = e->out_of_memory,
                            .gpu_reset = e->gpu_reset,
                            .gpu_reset_why = e->gpu_reset_why,
                            .text = e->reason};
        jobs_apply(self, job, &ev);
    }
    out_ended_ack(self, m->from, &ack);
}

void
handle_rank_failed(sched_t *self, const msg_t *m)
{
    const Wslq__RankFailed *f = m->env->rank_failed;
    job_t *job = jobs_find(self, f->job_id);
    int k = part_from(m, job, f->attempt);
    if (k < 0 || !jobsm_part_holds(&job->sm, job->info, (size_t) k))
        return;
    jobsm_event_t ev = {.type = JOBSM_EV_RANK_FAILED,
                        .part = (size_t) k,
                        .exit_code = f->exit_code,
                        .signal = f->signal,
                        .rank = f->rank};
    jobs_apply(self, job, &ev);
}
