/* wslq why: the full story of why a pending job waits, from the registry, the nodes and
 * the placement policy. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "proto/jobspec.h"
#include "scheduler/sched_int.h"

/* ---------- wslq why ---------- */

typedef struct {
    char **v;
    size_t n, cap;
} lines_t;

static void lines_add(lines_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
lines_add(lines_t *l, const char *fmt, ...)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = wq_realloc(l->v, l->cap * sizeof *l->v);
    }
    char buf[WIRE_MAX_ERROR_TEXT];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    l->v[l->n++] = wq_strdup(buf);
}

static void
why_pending(sched_t *self, job_t *job, const Wslq__JobInfo *shown, lines_t *l)
{
    const Wslq__JobInfo *info = job->info;
    int64_t now = wq_clock_mono_ms();
    lines_add(l, "waits: %s: %s", jobspec_wait_name(shown->wait_reason),
              shown->reason && shown->reason[0] ? shown->reason : "not looked at by a pass yet");
    if (info->held)
        lines_add(l, "held: it is never started until 'wslq release %" PRIu64 "'", info->id);
    if (job->array != NULL) {
        if (job->array->limit > 0)
            lines_add(l, "array %" PRIu64 ": %u of its tasks run now, at most %u at once (%%%u)%s",
                      job->array->id, job->array->active, job->array->limit, job->array->limit,
                      jobs_array_full(job) ? ": this task waits for one of them to end" : "");
        else
            lines_add(l, "array %" PRIu64 ": %u of its tasks run now, no cap on how many",
                      job->array->id, job->array->active);
    }
    if (job->sm.not_before_mono > now)
        lines_add(l, "requeued after a failure: not started for another %.1f s (backoff)",
                  (double) (job->sm.not_before_mono - now) / 1000.0);
    const Wslq__JobSpec *s = info->spec;
    for (size_t i = 0; i < s->n_depends_on; i++) {
        uint64_t dep = s->depends_on[i];
        job_t *d = jobs_find(self, dep);
        if (d != NULL) {
            lines_add(l, "dependency afterok:%" PRIu64 ": that job is %s, not yet COMPLETED", dep,
                      wire_state_name(d->info->state));
            continue;
        }
        Wslq__JobInfo *e = queue_get(self->q, dep, NULL);
        lines_add(l, "dependency afterok:%" PRIu64 ": %s", dep,
                  e == NULL                                ? "not found"
                  : e->state == WSLQ__JOB_STATE__COMPLETED ? "COMPLETED, met"
                                                           : "ended otherwise: never met");
        if (e != NULL)
            wslq__job_info__free_unpacked(e, NULL);
    }
    for (size_t i = 0; i < s->n_after_any + s->n_after_notok; i++) {
        int notok = i >= s->n_after_any;
        uint64_t dep = notok ? s->after_notok[i - s->n_after_any] : s->after_any[i];
        Wslq__JobState st = jobs_state_of(self, dep);
        lines_add(l, "dependency %s:%" PRIu64 ": that job is %s%s",
                  notok ? "afternotok" : "afterany", dep, wire_state_name(st),
                  !wire_state_is_final(st)                    ? ", not ended yet"
                  : notok && st == WSLQ__JOB_STATE__COMPLETED ? ": never met"
                                                              : ": met");
    }
    if (s->singleton) {
        const job_t *o = jobs_singleton_blocker(self, job);
        if (o != NULL)
            lines_add(l, "singleton: job %" PRIu64 " of the same user and name is %s", o->info->id,
                      wire_state_name(o->info->state));
        else
            lines_add(l, "singleton: no other job of the same user and name runs or waits first");
    }
    /* the jobs a pass looks at before this one, by effective priority (fairshare.c) */
    char fs_line[WIRE_MAX_ERROR_TEXT];
    fairshare_why(self, job, fs_line, sizeof fs_line);
    lines_add(l, "%s", fs_line);
    size_t ahead = 0, ahead_free = 0;
    for (size_t i = 0; i < self->n_jobs; i++) {
        const job_t *o = self->jobs[i];
        if (o == job || o->info->state != WSLQ__JOB_STATE__PENDING ||
            !fairshare_before(self, o, job))
            continue;
        ahead++;
        ahead_free += !o->info->held && !jobs_array_full(o);
    }
    lines_add(l,
              "priority %d: %zu pending job%s come%s before it in the queue's order (higher "
              "effective priority, or the same and older), %zu of them neither held nor at an "
              "array limit",
              s->priority, ahead, ahead == 1 ? "" : "s", ahead == 1 ? "s" : "", ahead_free);
    char why[256];
    int fit = place_explain(self, s, why, sizeof why);
    if (fit < 0)
        lines_add(l, "no node can ever run it now: %s", why);
    else if (fit == 0)
        lines_add(l, "resources: it does not fit the free resources now: %s", why);
    else if (info->held || jobs_array_full(job) || job->sm.not_before_mono > now ||
             info->wait_reason == WSLQ__WAIT_REASON__WAIT_DEPENDENCY)
        lines_add(l, "resources: it would fit the free resources now, but waits for what is said "
                     "above");
    else
        lines_add(l, "resources: it would fit the free resources now%s",
                  ahead_free ? "; the jobs before it go first" : "; it starts at the next pass");
    /* when: the backfill plan's reservation (backfill.c), if the job has one */
    if (shown->wait_reason == WSLQ__WAIT_REASON__WAIT_RESERVATION && shown->kept_for_job != 0) {
        job_t *r = jobs_find(self, shown->kept_for_job);
        char when[40];
        if (r != NULL && r->info->est_start_ms != 0)
            lines_add(l,
                      "reservation: the free resources it would use are kept for job %" PRIu64
                      ", which starts by %s on %s; a job whose --time ends before then may "
                      "use them",
                      shown->kept_for_job,
                      wq_clock_format(r->info->est_start_ms, when, sizeof when),
                      r->info->est_nodes);
    }
    if (info->est_start_ms != 0) {
        char when[40], after[160] = "";
        if (info->est_after_job != 0)
            snprintf(after, sizeof after,
                     info->est_by_default ? " (when job %" PRIu64
                                            " reaches the planning default time limit: it "
                                            "has no --time, so this is a guess)"
                                          : " (when job %" PRIu64 " reaches its time limit)",
                     info->est_after_job);
        lines_add(l,
                  "estimated start %s%s on %s: reserved for it; jobs after it start before "
                  "only if they end by then or use other resources",
                  wq_clock_format(info->est_start_ms, when, sizeof when), after, info->est_nodes);
    }
    /* when something frees: the running job that reaches its time limit first */
    const Wslq__JobInfo *soonest = NULL;
    int64_t soonest_ms = 0, running = 0;
    for (size_t i = 0; i < self->n_jobs; i++) {
        const Wslq__JobInfo *o = self->jobs[i]->info;
        if (o->state != WSLQ__JOB_STATE__RUNNING && o->state != WSLQ__JOB_STATE__STARTING)
            continue;
        running++;
        if (o->spec->time_limit_s == 0 || o->start_ms == 0)
            continue;
        int64_t end = o->start_ms + (int64_t) o->spec->time_limit_s * 1000;
        if (soonest == NULL || end < soonest_ms) {
            soonest = o;
            soonest_ms = end;
        }
    }
    if (soonest != NULL) {
        char when[40];
        lines_add(l,
                  "%" PRId64 " job%s run now; the first to reach its time limit is job %" PRIu64
                  ", at %s",
                  running, running == 1 ? "" : "s", soonest->id,
                  wq_clock_format(soonest_ms, when, sizeof when));
    } else {
        lines_add(l,
                  "%" PRId64 " job%s run now, none with a time limit: no start time can be "
                  "estimated",
                  running, running == 1 ? "" : "s");
    }
}

void
handle_why(sched_t *self, const msg_t *m)
{
    wq_error_t err = {0};
    uint64_t id;
    if (jobs_select_one(self, m->env->why->selector, &id, &err) < 0) {
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    int owned;
    Wslq__JobInfo *info = jobs_lookup(self, id, &owned, &err);
    if (info == NULL) {
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    Wslq__JobInfo *shown = jobs_info_dup(info);
    jobs_unlookup(info, owned);
    jobs_listing_reason(self, shown);
    who_redact(m->who, shown);
    lines_t l = {0};
    job_t *job = jobs_find(self, id);
    fairshare_fill(self, job, shown);
    char label[64];
    if (shown->array_job_id != 0)
        snprintf(label, sizeof label, "%" PRIu64 "_%u (job %" PRIu64 ")", shown->array_job_id,
                 shown->array_index, id);
    else
        snprintf(label, sizeof label, "%" PRIu64, id);
    lines_add(&l, "job %s \"%s\" of %s: %s, attempt %u", label, shown->spec->name,
              shown->spec->user, wire_state_name(shown->state), shown->attempt);
    if (shown->state == WSLQ__JOB_STATE__PENDING && job != NULL) {
        why_pending(self, job, shown, &l);
    } else if (shown->state == WSLQ__JOB_STATE__PENDING) {
        lines_add(&l, "waits: %s", shown->reason);
    } else if (wire_state_is_final(shown->state)) {
        lines_add(&l, "it does not wait: it ended %s: %s", wire_state_name(shown->state),
                  shown->reason);
    } else {
        char nodes[256] = "";
        size_t off = 0;
        for (size_t k = 0; k < shown->n_allocs && off < sizeof nodes; k++)
            off += (size_t) snprintf(nodes + off, sizeof nodes - off, "%s%s", k ? "," : "",
                                     shown->allocs[k]->node);
        lines_add(&l, "it does not wait: it is %s on %s", wire_state_name(shown->state), nodes);
    }
    Wslq__WhyReply rep = WSLQ__WHY_REPLY__INIT;
    rep.job = shown;
    rep.lines = l.v;
    rep.n_lines = l.n;
    out_why_reply(self, m->from, m->env->request_id, &rep);
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i]);
    free(l.v);
    wslq__job_info__free_unpacked(shown, NULL);
}
