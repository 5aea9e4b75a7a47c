/* Jobs: the registry of active jobs, carrying out the state machine's actions (jobsm.c), and
 * the CLI's job requests: submit (one job or an array), queue, show; the dependency types
 * besides afterok. Requests by selector (cancel, hold, ...) are jobsel.c, why is why.c. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
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

int
jobs_is_active(Wslq__JobState st)
{
    return st == WSLQ__JOB_STATE__STARTING || st == WSLQ__JOB_STATE__RUNNING;
}

/* ---------- job arrays in the registry ---------- */

static jobs_array_t *
array_find(sched_t *self, uint64_t id, size_t *pos)
{
    size_t lo = 0, hi = self->n_arrays;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (self->arrays[mid]->id == id) {
            *pos = mid;
            return self->arrays[mid];
        }
        if (self->arrays[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return NULL;
}

/* The job enters the registry: count it in its array. */
static void
array_attach(sched_t *self, job_t *job)
{
    const Wslq__JobInfo *info = job->info;
    if (info->array_job_id == 0)
        return;
    size_t pos;
    jobs_array_t *a = array_find(self, info->array_job_id, &pos);
    if (a == NULL) {
        a = wq_calloc(1, sizeof *a);
        a->id = info->array_job_id;
        a->limit = info->array_limit;
        self->arrays = wq_realloc(self->arrays, (self->n_arrays + 1) * sizeof *self->arrays);
        memmove(&self->arrays[pos + 1], &self->arrays[pos],
                (self->n_arrays - pos) * sizeof *self->arrays);
        self->arrays[pos] = a;
        self->n_arrays++;
    }
    a->refs++;
    if (jobs_is_active(info->state))
        a->active++;
    job->array = a;
}

static void
array_detach(sched_t *self, job_t *job)
{
    jobs_array_t *a = job->array;
    if (a == NULL)
        return;
    job->array = NULL;
    if (jobs_is_active(job->info->state) && a->active > 0)
        a->active--;
    if (--a->refs > 0)
        return;
    size_t pos;
    if (array_find(self, a->id, &pos) == a) {
        memmove(&self->arrays[pos], &self->arrays[pos + 1],
                (self->n_arrays - pos - 1) * sizeof *self->arrays);
        self->n_arrays--;
    }
    free(a);
}

int
jobs_array_full(const job_t *job)
{
    return job->array != NULL && job->array->limit > 0 && job->array->active >= job->array->limit;
}

static void
jobs_insert(sched_t *self, job_t *job)
{
    WQ_ASSERT(!wire_state_is_final(job->info->state) && job->info->id > 0);
    if (self->n_jobs == self->cap_jobs) { /* an array adds its tasks one by one: grow by half */
        self->cap_jobs = self->cap_jobs < 64 ? 64 : self->cap_jobs + self->cap_jobs / 2;
        self->jobs = wq_realloc(self->jobs, self->cap_jobs * sizeof *self->jobs);
    }
    size_t i = self->n_jobs;
    while (i > 0 && self->jobs[i - 1]->info->id > job->info->id) {
        self->jobs[i] = self->jobs[i - 1];
        i--;
    }
    WQ_ASSERT(i == 0 || self->jobs[i - 1]->info->id < job->info->id); /* ids are unique */
    self->jobs[i] = job;
    self->n_jobs++;
    array_attach(self, job);
    place_track(self, job, 0);
}

static void
job_free(job_t *job)
{
    if (job == NULL)
        return;
    kv_clear(job);
    free(job->waiters);
    jobsm_fini(&job->sm);
    wslq__job_info__free_unpacked(job->info, NULL);
    free(job);
}

static void
jobs_remove(sched_t *self, job_t *job)
{
    snapshots_job_gone(self, job);
    place_track(self, job, 1);
    place_wake(self, job);
    array_detach(self, job);
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
    self->cap_jobs = 0;
    for (size_t i = 0; i < self->n_arrays; i++)
        free(self->arrays[i]);
    free(self->arrays);
    self->arrays = NULL;
    self->n_arrays = 0;
}

/* ---------- the journal ---------- */

void
jobs_save(sched_t *self, job_t *job)
{
    wq_error_t err = {0};
    self->stats.version++;
    self->stats.jobs_changes++;
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
jobs_set_reason(sched_t *self, job_t *job, Wslq__WaitReason code, const char *why)
{
    job->blocked_on = 0;
    if (strcmp(job->info->reason, why) == 0 && job->info->wait_reason == code)
        return;
    wire_set_str(&job->info->reason, why);
    job->info->wait_reason = code;
    jobs_save(self, job);
}

int
jobs_waits_for(const job_t *job, uint64_t dep, const char *tail)
{
    static const char head[] = "waiting for job ";
    const char *r = job->info->reason;
    if (job->info->wait_reason != WSLQ__WAIT_REASON__WAIT_DEPENDENCY ||
        strncmp(r, head, sizeof head - 1) != 0)
        return 0;
    r += sizeof head - 1;
    if (*r < '1' || *r > '9')
        return 0; /* no number, or a leading zero: not the text this formats */
    uint64_t id = 0;
    for (; *r >= '0' && *r <= '9'; r++) {
        uint64_t d = (uint64_t) (*r - '0');
        if (id > UINT64_MAX / 10 || (id == UINT64_MAX / 10 && d > UINT64_MAX % 10))
            return 0; /* past 64 bits */
        id = id * 10 + d;
    }
    return id == dep && strcmp(r, tail) == 0;
}

void
jobs_wait_dep(sched_t *self, job_t *job, uint64_t dep, const char *tail)
{
    if (!jobs_waits_for(job, dep, tail)) { /* else as the last pass found it */
        char why[96];
        snprintf(why, sizeof why, "waiting for job %" PRIu64 "%s", dep, tail);
        jobs_set_reason(self, job, WSLQ__WAIT_REASON__WAIT_DEPENDENCY, why);
    }
    job->blocked_on = dep;
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
    if (out->old_state == WSLQ__JOB_STATE__JOB_STATE_UNSPECIFIED && info->array_size > 0)
        return; /* an array's tasks: its one line says it ("array N submitted: ...") */
    const char *reason = "";
    for (size_t i = 0; i < out->n_rows; i++)
        if (out->rows[i].state == st)
            reason = out->rows[i].reason;
    log_info(JOB_FMT " state=%s attempt=%u reason=\"%s\"", info->id, wire_state_name(st),
             info->attempt, reason);
}

int64_t
jobs_kill_grace_ms(const sched_t *self, jobsm_grace_t g)
{
    int64_t grace = self->cfg.kill_grace_ms;
    if (g == JOBSM_GRACE_GANG && grace > GANG_GRACE_MS)
        grace = GANG_GRACE_MS; /* the gang is already broken: every rank gone within 5 s */
    if (g == JOBSM_GRACE_PREEMPT && self->cfg.preempt_grace_ms > 0)
        grace = self->cfg.preempt_grace_ms;
    return grace;
}

int
jobs_apply(sched_t *self, job_t *job, jobsm_event_t *ev)
{
    if (ev->now_wall_ms == 0)
        ev->now_wall_ms = wq_clock_wall_ms();
    if (ev->now_mono_ms == 0)
        ev->now_mono_ms = wq_clock_mono_ms();
    job->blocked_on = 0; /* its reason may change */
    jobsm_out_t out;
    wq_error_t err = {0};
    int rc = jobsm_apply(&job->sm, job->info, ev, &out, &err);
    if (rc < 0) {
        log_warn("job event refused: %s", err.text);
        return -1;
    }
    if (rc == JOBSM_STALE)
        return JOBSM_STALE;
    if (job->array != NULL) { /* the %K cap counts the array's started tasks */
        int was = jobs_is_active(out.old_state), now = jobs_is_active(job->info->state);
        if (now && !was)
            job->array->active++;
        else if (was && !now && job->array->active > 0)
            job->array->active--;
    }
    if (out.state_changed)
        job->phase_mono = ev->now_mono_ms;
    if (out.act & JOBSM_ACT_SAVE)
        jobs_save(self, job); /* a new job's first save gives it its id */
    else {
        self->stats.version++;
        self->stats.jobs_changes++;
    }
    if (out.state_changed)
        note_state(self, job, &out); /* after the save: the line names the job's id */
    for (size_t i = 0; i < out.n_rows; i++)
        add_row(self, job, &out.rows[i]);
    if (job->info->id != 0 && jobs_find(self, job->info->id) == job)
        place_track(self, job, 0); /* a submitted job joins when it is inserted */
    if (out.act & JOBSM_ACT_KILL)
        gang_kill(self, job, out.kill_reason, jobs_kill_grace_ms(self, out.kill_grace));
    if (out.act & JOBSM_ACT_SUSPEND)
        gang_suspend(self, job, out.rows[0].reason);
    if (out.act & JOBSM_ACT_LAUNCH)
        for (size_t k = 0; k < job->info->n_allocs; k++)
            gang_launch(self, job, k);
    if (out.act & JOBSM_ACT_REQUEUED) {
        kv_clear(job);
        self->stats.requeued_total++;
    }
    if (out.state_changed || (out.act & JOBSM_ACT_REQUEUED))
        jobnotify_change(self, job, out.old_state, (out.act & JOBSM_ACT_REQUEUED) != 0);
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

/* A copy of a spec, for each task of an array, from the spec packed once. */
static Wslq__JobSpec *
spec_copy(const uint8_t *packed, size_t len)
{
    Wslq__JobSpec *copy = wslq__job_spec__unpack(NULL, len, packed);
    WQ_ASSERT(copy != NULL);
    return copy;
}

/* Queue one job (a task of an array when arr is not NULL). Returns it, in the registry, or
 * NULL when the database failed (nothing may be answered). spec is taken. */
static job_t *
submit_one(sched_t *self,
           Wslq__JobSpec *spec,
           const char *first_reason,
           int hold,
           const jobspec_array_t *arr,
           size_t k,
           uint64_t array_id)
{
    job_t *job = wq_calloc(1, sizeof *job);
    job->info = wq_malloc(sizeof *job->info);
    wslq__job_info__init(job->info);
    job->info->spec = spec;
    if (arr != NULL) {
        job->info->array_job_id = array_id; /* 0 for the first: its own id, set below */
        job->info->array_index = arr->idx[k];
        job->info->array_size = (uint32_t) arr->n;
        job->info->array_limit = arr->limit;
    }
    jobsm_event_t ev = {.type = JOBSM_EV_SUBMIT, .text = first_reason, .held = hold};
    if (jobs_apply(self, job, &ev) != JOBSM_APPLIED || self->failed) {
        job_free(job);
        return NULL;
    }
    if (arr != NULL && array_id == 0) {
        job->info->array_job_id = job->info->id;
        jobs_save(self, job);
        if (self->failed) {
            job_free(job);
            return NULL;
        }
    }
    jobs_insert(self, job);
    self->stats.submitted_total++;
    return job;
}

void
handle_submit(sched_t *self, const msg_t *m)
{
    Wslq__JobSpec *spec = m->env->submit->spec;
    if (m->who->kind != WHO_INSECURE) /* the owner is who sent it, whatever the spec claims */
        wire_set_str(&spec->user, m->who->name);
    jobspec_apply_defaults(spec);
    wq_error_t err = {0};
    jobspec_array_t arr = {0};
    const char *array = m->env->submit->array;
    int is_array = array != NULL && array[0] != '\0';
    if (is_array && jobspec_parse_array(array, 1, &arr, &err) < 0) {
        self->stats.refused_total++;
        wq_fail(&err, err.code, "job refused: --array %s", err.text);
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    if (is_array && spec->script.len * arr.n > WIRE_MAX_ARRAY_SCRIPTS) {
        /* every task stores its own copy of the spec */
        self->stats.refused_total++;
        wq_fail(&err, WQ_ELIMIT,
                "job refused: %zu tasks each keeping the %zu-byte batch script is more than "
                "%u MiB; shorten the array or the script",
                arr.n, spec->script.len, WIRE_MAX_ARRAY_SCRIPTS >> 20);
        jobspec_array_fini(&arr);
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    size_t n_nodes = 0;
    if (place_admit(self, spec, &n_nodes, &err) < 0 || jobs_deps_admit(self, spec, &err) < 0 ||
        jobnotify_admit(self, spec, &err) < 0 || snapshots_admit(self, m, spec, &err) < 0 ||
        fairshare_admit(self, spec, is_array ? arr.n : 1, &err) < 0) {
        self->stats.refused_total++;
        jobspec_array_fini(&arr);
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    const char *first_reason = n_nodes == 0 ? "waiting for a node to register" : "";
    int hold = m->env->submit->hold;
    m->env->submit->spec = NULL; /* the jobs own it (and its copies) now */
    Wslq__SubmitReply rep = WSLQ__SUBMIT_REPLY__INIT;
    if (!is_array) {
        job_t *job = submit_one(self, spec, first_reason, hold, NULL, 0, 0);
        if (job == NULL)
            return; /* the database failed: the loop stops, nothing is answered */
        rep.job_id = job->info->id;
    } else {
        /* One transaction (this turn's): every task is written, or none is answered. */
        uint64_t array_id = 0;
        size_t len = wslq__job_spec__get_packed_size(spec);
        uint8_t *packed = wq_malloc(len ? len : 1);
        wslq__job_spec__pack(spec, packed);
        for (size_t k = 0; k < arr.n; k++) {
            Wslq__JobSpec *own = k + 1 == arr.n ? spec : spec_copy(packed, len);
            job_t *job = submit_one(self, own, first_reason, hold, &arr, k, array_id);
            if (job == NULL) {
                if (own != spec)
                    wslq__job_spec__free_unpacked(spec, NULL);
                free(packed);
                jobspec_array_fini(&arr);
                return;
            }
            if (k == 0)
                array_id = job->info->id;
        }
        free(packed);
        rep.job_id = array_id;
        rep.array_size = (uint32_t) arr.n;
        log_info("array %" PRIu64 " submitted: %zu tasks, limit %u", array_id, arr.n, arr.limit);
        jobspec_array_fini(&arr);
    }
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

/* A job for a listing: a copy the reply owns (the sender's view of it). */
Wslq__JobInfo *
jobs_info_dup(const Wslq__JobInfo *info)
{
    size_t len = wslq__job_info__get_packed_size(info);
    uint8_t *buf = wq_malloc(len ? len : 1);
    wslq__job_info__pack(info, buf);
    Wslq__JobInfo *copy = wslq__job_info__unpack(NULL, len, buf);
    free(buf);
    WQ_ASSERT(copy != NULL);
    return copy;
}

/* Why a pending job waits, as of now, where the stored reason cannot say it without a write
 * per job and pass: held, its array's %K cap, a requeue backoff, or a task behind the earlier
 * tasks of its array (a pass tries an array's first waiting task only). */
void
jobs_listing_reason(sched_t *self, Wslq__JobInfo *copy)
{
    if (copy->state != WSLQ__JOB_STATE__PENDING)
        return;
    job_t *job = jobs_find(self, copy->id);
    if (job == NULL)
        return;
    char why[128];
    if (copy->held) {
        copy->wait_reason = WSLQ__WAIT_REASON__WAIT_HELD;
    } else if (jobs_array_full(job)) {
        copy->wait_reason = WSLQ__WAIT_REASON__WAIT_ARRAY_LIMIT;
        snprintf(why, sizeof why, "array limit: %u of its tasks run (%%%u)", job->array->active,
                 job->array->limit);
        wire_set_str(&copy->reason, why);
    } else if (job->sm.not_before_mono > wq_clock_mono_ms()) {
        copy->wait_reason = WSLQ__WAIT_REASON__WAIT_BACKOFF;
    } else if (copy->wait_reason == WSLQ__WAIT_REASON__WAIT_REASON_UNSPECIFIED &&
               job->array != NULL) {
        copy->wait_reason = WSLQ__WAIT_REASON__WAIT_PRIORITY;
        snprintf(why, sizeof why, "behind the earlier tasks of array %" PRIu64, job->array->id);
        wire_set_str(&copy->reason, why);
    }
}

/* One line of a listing: a job, or an array's pending tasks from 'first' on. */
typedef struct {
    const Wslq__JobInfo *first;
    uint32_t *idx; /* pending tasks' indices; NULL for a plain line */
    size_t n_idx, cap_idx;
} line_t;

/* Answer a queue request with these jobs (ascending id): an array's pending tasks collapse
 * into one line unless expand; the newest 'limit' lines are sent, oldest first. */
static void
reply_listing(sched_t *self,
              const msg_t *m,
              const Wslq__JobInfo **rows,
              size_t n,
              unsigned limit,
              int expand,
              int more)
{
    line_t *lines = wq_malloc((n ? n : 1) * sizeof *lines);
    size_t nl = 0, open = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        const Wslq__JobInfo *r = rows[i];
        int group = !expand && r->array_job_id != 0 && r->state == WSLQ__JOB_STATE__PENDING;
        if (group && open != SIZE_MAX && lines[open].first->array_job_id == r->array_job_id) {
            line_t *l = &lines[open];
            if (l->n_idx == l->cap_idx) {
                l->cap_idx *= 2;
                l->idx = wq_realloc(l->idx, l->cap_idx * sizeof *l->idx);
            }
            l->idx[l->n_idx++] = r->array_index;
            continue;
        }
        line_t *l = &lines[nl];
        memset(l, 0, sizeof *l);
        l->first = r;
        if (group) {
            l->cap_idx = 16;
            l->idx = wq_malloc(l->cap_idx * sizeof *l->idx);
            l->idx[l->n_idx++] = r->array_index;
            open = nl;
        }
        nl++;
    }
    size_t from = nl > limit ? nl - limit : 0;
    more |= from > 0;
    /* Newest first until the reply would pass half the frame limit. */
    Wslq__JobInfo **out = wq_malloc((nl - from ? nl - from : 1) * sizeof *out);
    size_t n_out = 0, bytes = 0;
    for (size_t i = nl; i > from; i--) {
        line_t *l = &lines[i - 1];
        Wslq__JobInfo *c = jobs_info_dup(l->first);
        if (l->idx != NULL) {
            char tasks[256];
            jobspec_format_indices(l->idx, l->n_idx, tasks, sizeof tasks);
            wire_set_str(&c->array_tasks, tasks);
            c->array_pending = (uint32_t) l->n_idx;
        }
        jobs_listing_reason(self, c);
        who_redact(m->who, c); /* everyone sees the queue; commands are the owner's */
        free(c->spec ? c->spec->script.data : NULL); /* wslq show has it; a listing is lean */
        if (c->spec != NULL) {
            c->spec->script.data = NULL;
            c->spec->script.len = 0;
        }
        bytes += wslq__job_info__get_packed_size(c);
        if (bytes > WIRE_MAX_FRAME / 2) {
            wslq__job_info__free_unpacked(c, NULL);
            more = 1;
            break;
        }
        out[n_out++] = c;
    }
    for (size_t i = 0; i < n_out / 2; i++) { /* oldest first on screen, as squeue */
        Wslq__JobInfo *t = out[i];
        out[i] = out[n_out - 1 - i];
        out[n_out - 1 - i] = t;
    }
    Wslq__QueueReply rep = WSLQ__QUEUE_REPLY__INIT;
    rep.jobs = out;
    rep.n_jobs = n_out;
    rep.more = more;
    out_queue_reply(self, m->from, m->env->request_id, &rep);
    for (size_t i = 0; i < n_out; i++)
        wslq__job_info__free_unpacked(out[i], NULL);
    free(out);
    for (size_t i = 0; i < nl; i++)
        free(lines[i].idx);
    free(lines);
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
    unsigned active_mask = (1u << WSLQ__JOB_STATE__PENDING) | (1u << WSLQ__JOB_STATE__STARTING) |
                           (1u << WSLQ__JOB_STATE__RUNNING);
    if (!r->all && (f.state_mask & ~active_mask) == 0) {
        /* Pending and running jobs are all in memory (the registry mirrors their rows): list
         * them from there, so an array of 100,000 pending tasks is one line, quickly. */
        unsigned mask = f.state_mask ? f.state_mask : active_mask;
        const Wslq__JobInfo **rows = wq_malloc((self->n_jobs ? self->n_jobs : 1) * sizeof *rows);
        size_t n = 0;
        for (size_t i = 0; i < self->n_jobs; i++) {
            const Wslq__JobInfo *info = self->jobs[i]->info;
            if (!(mask & (1u << info->state)) || (f.before_id && info->id >= f.before_id) ||
                (f.user && strcmp(info->spec->user, f.user) != 0) ||
                (f.name && strcmp(info->spec->name, f.name) != 0))
                continue;
            rows[n++] = info;
        }
        reply_listing(self, m, rows, n, f.limit, r->expand_arrays, 0);
        free(rows);
        return;
    }
    f.newest_first = 1;
    collect_t c = {0};
    wq_error_t err = {0};
    if (queue_list(self->q, &f, collect_job, &c, &err) < 0) {
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    const Wslq__JobInfo **rows = wq_malloc((c.n ? c.n : 1) * sizeof *rows);
    for (size_t i = 0; i < c.n; i++)
        rows[i] = c.jobs[c.n - 1 - i]; /* ascending */
    reply_listing(self, m, rows, c.n, f.limit, r->expand_arrays, c.n == f.limit);
    free(rows);
    for (size_t i = 0; i < c.n; i++)
        wslq__job_info__free_unpacked(c.jobs[i], NULL);
    free(c.jobs);
}

void
handle_show(sched_t *self, const msg_t *m)
{
    wq_error_t err = {0};
    uint64_t id = m->env->show->job_id;
    const char *text = m->env->show->selector;
    if (text != NULL && text[0] != '\0' && jobs_select_one(self, text, &id, &err) < 0) {
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    Wslq__JobInfo *info = queue_get(self->q, id, &err);
    if (info == NULL) {
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    who_redact(m->who, info);
    fairshare_fill(self, jobs_find(self, info->id), info);
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

/* ---------- dependencies besides afterok (place.c's): afterany, afternotok, singleton ----------
 */

/* The state of a job: the registry's, else the queue's; 0 (UNSPECIFIED) when there is none. */
Wslq__JobState
jobs_state_of(sched_t *self, uint64_t id)
{
    job_t *job = jobs_find(self, id);
    if (job != NULL)
        return job->info->state;
    Wslq__JobInfo *info = queue_get(self->q, id, NULL);
    Wslq__JobState st = info ? info->state : WSLQ__JOB_STATE__JOB_STATE_UNSPECIFIED;
    if (info != NULL)
        wslq__job_info__free_unpacked(info, NULL);
    return st;
}

int
jobs_deps_admit(sched_t *self, const Wslq__JobSpec *spec, wq_error_t *err)
{
    for (size_t i = 0; i < spec->n_after_any + spec->n_after_notok; i++) {
        int notok = i >= spec->n_after_any;
        uint64_t dep = notok ? spec->after_notok[i - spec->n_after_any] : spec->after_any[i];
        Wslq__JobState st = jobs_state_of(self, dep);
        if (st == WSLQ__JOB_STATE__JOB_STATE_UNSPECIFIED)
            return wq_fail(err, WQ_ENOENT, "job refused: dependency job %" PRIu64 " not found",
                           dep);
        if (notok && st == WSLQ__JOB_STATE__COMPLETED)
            return wq_fail(err, WQ_EINVAL,
                           "job refused: dependency job %" PRIu64
                           " COMPLETED, so afternotok could never be met",
                           dep);
    }
    return 0;
}

/* The other job of the same user and name a singleton waits for: one that is started, or
 * pending and older. NULL when there is none. */
const job_t *
jobs_singleton_blocker(sched_t *self, const job_t *job)
{
    const Wslq__JobSpec *s = job->info->spec;
    for (size_t i = 0; i < self->n_jobs; i++) {
        const job_t *o = self->jobs[i];
        if (o == job || strcmp(o->info->spec->name, s->name) != 0 ||
            strcmp(o->info->spec->user, s->user) != 0)
            continue;
        if (o->info->state != WSLQ__JOB_STATE__PENDING || o->info->id < job->info->id)
            return o;
    }
    return NULL;
}

int
jobs_deps_wait(sched_t *self, job_t *job)
{
    const Wslq__JobSpec *s = job->info->spec;
    char why[160];
    for (size_t i = 0; i < s->n_after_any + s->n_after_notok; i++) {
        int notok = i >= s->n_after_any;
        uint64_t dep = notok ? s->after_notok[i - s->n_after_any] : s->after_any[i];
        if (jobs_find(self, dep) != NULL) {
            jobs_wait_dep(self, job, dep, notok ? " to end (afternotok)" : " to end (afterany)");
            return 1;
        }
        if (notok && jobs_state_of(self, dep) == WSLQ__JOB_STATE__COMPLETED) {
            snprintf(why, sizeof why,
                     "dependency job %" PRIu64 " COMPLETED, so afternotok can never be met", dep);
            jobsm_event_t ev = {.type = JOBSM_EV_DEPENDENCY_FAILED, .text = why};
            jobs_apply(self, job, &ev);
            return 1; /* ended, and freed */
        }
    }
    if (s->singleton) {
        const job_t *o = jobs_singleton_blocker(self, job);
        if (o != NULL) {
            snprintf(why, sizeof why, "singleton: job %" PRIu64 " of %s named %s is %s",
                     o->info->id, s->user, s->name,
                     o->info->state == WSLQ__JOB_STATE__PENDING ? "older and waits first"
                                                                : "running");
            jobs_set_reason(self, job, WSLQ__WAIT_REASON__WAIT_DEPENDENCY, why);
            return 1;
        }
    }
    return 0;
}
