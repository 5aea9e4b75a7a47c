/* The CLI's requests that name jobs by selector ("42", "40", "40_7", "40_[3-9]"): cancel,
 * hold, release, requeue (see jobs.c for the registry and the state machine's actions). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "proto/jobspec.h"
#include "scheduler/sched_int.h"

/* ---------- job selectors: "42", "40" (a whole array), "40_7", "40_[3-9]" ---------- */

/* A job's info: the registry's (borrowed) or read from the queue (*owned set). */
Wslq__JobInfo *
jobs_lookup(sched_t *self, uint64_t id, int *owned, wq_error_t *err)
{
    job_t *job = jobs_find(self, id);
    *owned = 0;
    if (job != NULL)
        return job->info;
    Wslq__JobInfo *info = queue_get(self->q, id, err);
    *owned = info != NULL;
    return info;
}

void
jobs_unlookup(Wslq__JobInfo *info, int owned)
{
    if (owned)
        wslq__job_info__free_unpacked(info, NULL);
}

/* The array index of job id (one of an array's tasks); -1 when it cannot be read. */
static int64_t
index_of(sched_t *self, uint64_t id)
{
    int owned;
    Wslq__JobInfo *info = jobs_lookup(self, id, &owned, NULL);
    if (info == NULL)
        return -1;
    int64_t idx = info->array_index;
    jobs_unlookup(info, owned);
    return idx;
}

/* The id of the task with index idx of the array whose first task is 'first'; 0 if none. Task
 * ids are consecutive from the first's, in ascending index: a contiguous index range maps
 * directly, any other is a binary search. */
static uint64_t
task_id(sched_t *self, const Wslq__JobInfo *first, uint32_t idx)
{
    uint64_t lo = first->id, n = first->array_size ? first->array_size : 1;
    int64_t first_idx = first->array_index;
    int64_t last_idx = index_of(self, lo + n - 1);
    if ((int64_t) idx < first_idx || (last_idx >= 0 && (int64_t) idx > last_idx))
        return 0;
    if (last_idx - first_idx == (int64_t) n - 1)
        return lo + (idx - (uint64_t) first_idx);
    uint64_t a = 0, b = n;
    while (a < b) {
        uint64_t mid = (a + b) / 2;
        int64_t v = index_of(self, lo + mid);
        if (v < 0)
            return 0;
        if (v == idx)
            return lo + mid;
        if (v < idx)
            a = mid + 1;
        else
            b = mid;
    }
    return 0;
}

int
jobs_select_one(sched_t *self, const char *text, uint64_t *id, wq_error_t *err)
{
    jobspec_selector_t sel;
    if (jobspec_parse_selector(text, &sel, err) < 0)
        return -1;
    int rc = 0;
    *id = sel.id;
    if (sel.has_tasks) {
        int owned;
        Wslq__JobInfo *first = jobs_lookup(self, sel.id, &owned, err);
        if (first == NULL)
            rc = -1;
        else if (sel.tasks.n != 1)
            rc = wq_fail(err, WQ_EINVAL, "'%.40s' names %zu jobs; give one (40_7)", text,
                         sel.tasks.n);
        else if (first->array_job_id != sel.id)
            rc = wq_fail(err, WQ_EINVAL, "'%.40s': job %" PRIu64 " is not an array's id", text,
                         sel.id);
        else if ((*id = task_id(self, first, sel.tasks.idx[0])) == 0)
            rc = wq_fail(err, WQ_ENOENT, "array %" PRIu64 " has no task %u", sel.id,
                         sel.tasks.idx[0]);
        if (first != NULL)
            jobs_unlookup(first, owned);
    }
    jobspec_selector_fini(&sel);
    return rc;
}

typedef struct {
    job_t *job;
    int explicit; /* named alone ("42", "40_7"): it must be eligible, else the request fails */
} pick_t;

typedef struct {
    pick_t *v;
    size_t n, cap;
} picks_t;

static void
picks_push(picks_t *p, job_t *job, int explicit)
{
    for (size_t i = p->n; i > 0 && i + 8 > p->n; i--) /* the same job twice in a row */
        if (p->v[i - 1].job == job) {
            p->v[i - 1].explicit |= explicit;
            return;
        }
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->v = wq_realloc(p->v, p->cap * sizeof *p->v);
    }
    p->v[p->n].job = job;
    p->v[p->n].explicit = explicit;
    p->n++;
}

/* Resolve one selector into the registry's jobs it names (ended ones are left out of a whole
 * array or a task list; a job named alone that has ended is an error). Checks the sender may
 * touch them ('what' for the message). 0, or -1 with *err (and *forbidden when refused for
 * ownership: already answered). */
static int
resolve_one(sched_t *self,
            const msg_t *m,
            const char *text,
            const char *what,
            picks_t *out,
            int *forbidden,
            wq_error_t *err)
{
    jobspec_selector_t sel;
    if (jobspec_parse_selector(text, &sel, err) < 0)
        return -1;
    int owned, rc = 0;
    Wslq__JobInfo *info = jobs_lookup(self, sel.id, &owned, err);
    if (info == NULL) {
        jobspec_selector_fini(&sel);
        return -1;
    }
    if (jobs_forbid(self, m, info, what)) {
        *forbidden = 1;
        rc = -1;
    } else if (!sel.has_tasks && info->array_job_id != sel.id) {
        /* one job (or one task named by its own id) */
        job_t *job = jobs_find(self, sel.id);
        if (job == NULL)
            rc = wq_fail(err, WQ_EINVAL, "job %" PRIu64 " has already ended (%s)", sel.id,
                         wire_state_name(info->state));
        else
            picks_push(out, job, 1);
    } else if (!sel.has_tasks) {
        /* the whole array: its tasks still in the registry */
        size_t before = out->n;
        for (uint64_t k = 0; k < info->array_size; k++) {
            job_t *job = jobs_find(self, sel.id + k);
            if (job != NULL)
                picks_push(out, job, 0);
        }
        if (out->n == before)
            rc = wq_fail(err, WQ_EINVAL, "every task of array %" PRIu64 " has already ended",
                         sel.id);
    } else if (info->array_job_id != sel.id) {
        if (info->array_job_id != 0)
            rc = wq_fail(err, WQ_EINVAL,
                         "'%.40s': job %" PRIu64 " is task %" PRIu64 "_%u, not an array's id; "
                         "use %" PRIu64 "_[...]",
                         text, sel.id, info->array_job_id, info->array_index, info->array_job_id);
        else
            rc = wq_fail(err, WQ_EINVAL, "'%.40s': job %" PRIu64 " is not an array", text, sel.id);
    } else {
        size_t before = out->n;
        int alone = sel.tasks.n == 1;
        for (size_t i = 0; i < sel.tasks.n && rc == 0; i++) {
            uint64_t tid = task_id(self, info, sel.tasks.idx[i]);
            if (tid == 0) {
                rc = wq_fail(err, WQ_ENOENT, "array %" PRIu64 " has no task %u", sel.id,
                             sel.tasks.idx[i]);
                break;
            }
            job_t *job = jobs_find(self, tid);
            if (job != NULL) {
                picks_push(out, job, alone);
            } else if (alone) {
                int o2;
                Wslq__JobInfo *t = jobs_lookup(self, tid, &o2, NULL);
                rc = wq_fail(err, WQ_EINVAL,
                             "job %" PRIu64 "_%u (%" PRIu64 ") has already ended (%s)", sel.id,
                             sel.tasks.idx[i], tid, t ? wire_state_name(t->state) : "?");
                if (t)
                    jobs_unlookup(t, o2);
            }
        }
        if (rc == 0 && out->n == before)
            rc = wq_fail(err, WQ_EINVAL, "every task '%.40s' names has already ended", text);
    }
    jobs_unlookup(info, owned);
    jobspec_selector_fini(&sel);
    return rc;
}

/* Resolve every selector (and bare ids) of a request. 0, or -1 after answering the error. */
static int
resolve(sched_t *self,
        const msg_t *m,
        char **selectors,
        size_t n_sel,
        const uint64_t *ids,
        size_t n_ids,
        const char *what,
        picks_t *out)
{
    wq_error_t err = {0};
    int forbidden = 0;
    for (size_t i = 0; i < n_ids + n_sel; i++) {
        char num[24];
        const char *text = selectors != NULL && i >= n_ids ? selectors[i - n_ids] : num;
        if (i < n_ids)
            snprintf(num, sizeof num, "%" PRIu64, ids[i]);
        if (resolve_one(self, m, text, what, out, &forbidden, &err) < 0) {
            if (!forbidden)
                out_error(self, m->from, m->env->request_id, &err);
            free(out->v);
            memset(out, 0, sizeof *out);
            return -1;
        }
    }
    return 0;
}

int
jobs_resolve_selectors(sched_t *self,
                       const msg_t *m,
                       char **selectors,
                       size_t n_sel,
                       const char *what,
                       job_t ***jobs,
                       unsigned char **alone,
                       size_t *n)
{
    picks_t picks = {0};
    if (resolve(self, m, selectors, n_sel, NULL, 0, what, &picks) < 0)
        return -1;
    *jobs = wq_malloc((picks.n ? picks.n : 1) * sizeof **jobs);
    *alone = wq_malloc(picks.n ? picks.n : 1);
    for (size_t i = 0; i < picks.n; i++) {
        (*jobs)[i] = picks.v[i].job;
        (*alone)[i] = (unsigned char) picks.v[i].explicit;
    }
    *n = picks.n;
    free(picks.v);
    return 0;
}

void
handle_cancel(sched_t *self, const msg_t *m)
{
    const Wslq__CancelRequest *r = m->env->cancel;
    picks_t picks = {0};
    /* Check every selector first: a bad one, or another user's job, changes nothing. */
    if (resolve(self, m, r->selectors, r->n_selectors, r->job_ids, r->n_job_ids, "cancel", &picks) <
        0)
        return;
    uint64_t *done = wq_malloc((picks.n ? picks.n : 1) * sizeof *done);
    size_t n_done = 0;
    /* Newest first: an ended job leaves the registry, and the newest are at its end. */
    for (size_t i = picks.n; i-- > 0;) {
        uint64_t id = picks.v[i].job->info->id;
        job_t *job = jobs_find(self, id); /* a pick may have ended (freed) through another */
        if (job == NULL)
            continue;
        jobsm_event_t ev = {.type = JOBSM_EV_CANCEL};
        if (jobs_apply(self, job, &ev) >= 0)
            done[n_done++] = id;
    }
    free(picks.v);
    for (size_t i = 0; i < n_done / 2; i++) { /* answered in ascending order */
        uint64_t t = done[i];
        done[i] = done[n_done - 1 - i];
        done[n_done - 1 - i] = t;
    }
    Wslq__CancelReply rep = WSLQ__CANCEL_REPLY__INIT;
    rep.cancelled = done;
    rep.n_cancelled = n_done;
    out_cancel_reply(self, m->from, m->env->request_id, &rep);
    free(done);
}

/* Why a job cannot take a hold, release or requeue; NULL when it can. */
static const char *
control_refusal(Wslq__JobControlRequest__Op op, const Wslq__JobInfo *info)
{
    switch (op) {
    case WSLQ__JOB_CONTROL_REQUEST__OP__HOLD:
        if (info->state != WSLQ__JOB_STATE__PENDING)
            return "only a pending job can be held";
        return info->held ? "it is held already" : NULL;
    case WSLQ__JOB_CONTROL_REQUEST__OP__RELEASE:
        return info->state == WSLQ__JOB_STATE__PENDING && info->held ? NULL : "it is not held";
    case WSLQ__JOB_CONTROL_REQUEST__OP__REQUEUE:
        return jobs_is_active(info->state) ? NULL
                                           : "only a starting or running job can be requeued";
    default:
        return "unknown operation";
    }
}

void
handle_control(sched_t *self, const msg_t *m)
{
    const Wslq__JobControlRequest *r = m->env->control;
    static const char *const verbs[] = {"", "hold", "release", "requeue"};
    const char *verb = verbs[r->op];
    picks_t picks = {0};
    if (resolve(self, m, r->selectors, r->n_selectors, NULL, 0, verb, &picks) < 0)
        return;
    /* A job named alone that cannot take it fails the request before anything changes; in an
     * array or a task list such jobs are passed over. */
    size_t n_ok = 0;
    for (size_t i = 0; i < picks.n; i++) {
        const Wslq__JobInfo *info = picks.v[i].job->info;
        const char *why = control_refusal(r->op, info);
        if (why == NULL) {
            picks.v[n_ok++] = picks.v[i];
            continue;
        }
        if (picks.v[i].explicit) {
            wq_error_t err;
            wq_fail(&err, WQ_EINVAL, "cannot %s job %" PRIu64 " (%s): %s", verb, info->id,
                    wire_state_name(info->state), why);
            out_error(self, m->from, m->env->request_id, &err);
            free(picks.v);
            return;
        }
    }
    if (n_ok == 0) {
        wq_error_t err;
        wq_fail(&err, WQ_EINVAL, "no job there can be %s: %s",
                r->op == WSLQ__JOB_CONTROL_REQUEST__OP__HOLD      ? "held"
                : r->op == WSLQ__JOB_CONTROL_REQUEST__OP__RELEASE ? "released"
                                                                  : "requeued",
                control_refusal(r->op, picks.v[0].job->info));
        out_error(self, m->from, m->env->request_id, &err);
        free(picks.v);
        return;
    }
    jobsm_event_type_t type = r->op == WSLQ__JOB_CONTROL_REQUEST__OP__HOLD      ? JOBSM_EV_HOLD
                              : r->op == WSLQ__JOB_CONTROL_REQUEST__OP__RELEASE ? JOBSM_EV_RELEASE
                                                                                : JOBSM_EV_REQUEUE;
    uint64_t *done = wq_malloc(n_ok * sizeof *done);
    size_t n_done = 0;
    for (size_t i = 0; i < n_ok; i++) {
        uint64_t id = picks.v[i].job->info->id;
        job_t *job = jobs_find(self, id);
        if (job == NULL)
            continue;
        jobsm_event_t ev = {.type = type};
        if (jobs_apply(self, job, &ev) >= 0)
            done[n_done++] = id;
    }
    free(picks.v);
    Wslq__JobControlReply rep = WSLQ__JOB_CONTROL_REPLY__INIT;
    rep.job_ids = done;
    rep.n_job_ids = n_done;
    out_control_reply(self, m->from, m->env->request_id, &rep);
    free(done);
}
