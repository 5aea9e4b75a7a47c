/* The per-job key/value store: how a job's ranks find each other (wslq kv, the trainer's
 * rendezvous through the worker's relay). Memory only, cleared when the job ends or is
 * requeued; limited per job by kv_max_keys and kv_max_bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "scheduler/sched_int.h"

void
kv_clear(job_t *job)
{
    for (size_t i = 0; i < job->n_kv; i++) {
        free(job->kv[i].key);
        free(job->kv[i].value);
    }
    free(job->kv);
    job->kv = NULL;
    job->n_kv = 0;
    job->kv_bytes = 0;
}

static kv_entry_t *
kv_find(job_t *job, const char *key)
{
    for (size_t i = 0; i < job->n_kv; i++)
        if (strcmp(job->kv[i].key, key) == 0)
            return &job->kv[i];
    return NULL;
}

/* The answer to a GET/PUT/WAIT: the entry's value, or found = false. */
static void
reply(sched_t *self, const peer_t *to, uint64_t request_id, const kv_entry_t *e)
{
    Wslq__KvReply rep = WSLQ__KV_REPLY__INIT;
    rep.found = e != NULL;
    if (e) {
        rep.value.data = e->value;
        rep.value.len = e->len;
    }
    out_kv_reply(self, to, request_id, &rep);
}

static void
put(sched_t *self, const msg_t *m, job_t *job, kv_entry_t *e)
{
    const Wslq__KvRequest *r = m->env->kv;
    wq_error_t err = {0};
    size_t klen = strlen(r->key);
    uint64_t grow = r->value.len + (e ? 0 : klen) - (e ? e->len : 0);
    if (!e && job->n_kv >= self->cfg.kv_max_keys) {
        wq_fail(&err, WQ_ELIMIT, "job %" PRIu64 " already has %u keys, the limit", r->job_id,
                self->cfg.kv_max_keys);
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    if (job->kv_bytes + grow > self->cfg.kv_max_bytes) {
        wq_fail(&err, WQ_ELIMIT, "job %" PRIu64 " key/value store would exceed %" PRIu64 " bytes",
                r->job_id, self->cfg.kv_max_bytes);
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    if (e == NULL) {
        job->kv = wq_realloc(job->kv, (job->n_kv + 1) * sizeof *job->kv);
        e = &job->kv[job->n_kv++];
        e->key = wq_strdup(r->key);
        e->value = NULL;
        e->len = 0;
    }
    free(e->value);
    e->value = wq_malloc(r->value.len ? r->value.len : 1);
    memcpy(e->value, r->value.data, r->value.len);
    e->len = r->value.len;
    job->kv_bytes += grow;
    reply(self, m->from, m->env->request_id, e);
    waiters_wake_kv(self, r->job_id, r->key, e);
}

static void
wait_for(sched_t *self, const msg_t *m, const kv_entry_t *e)
{
    const Wslq__KvRequest *r = m->env->kv;
    if (e != NULL) {
        reply(self, m->from, m->env->request_id, e);
        return;
    }
    if (r->timeout_ms == 0) {
        wq_error_t err;
        wq_fail(&err, WQ_ETIMEDOUT, "key '%.64s' is not set", r->key);
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    waiter_t w = {0};
    w.kind = WAIT_KV;
    w.peer = *m->from;
    w.request_id = m->env->request_id;
    w.job_id = r->job_id;
    w.key = wq_strdup(r->key);
    w.deadline_mono = wq_clock_mono_ms() + r->timeout_ms;
    wq_error_t err;
    if (waiters_park(self, &w, &err) < 0)
        out_error(self, m->from, m->env->request_id, &err);
}

void
handle_kv(sched_t *self, const msg_t *m)
{
    const Wslq__KvRequest *r = m->env->kv;
    wq_error_t err = {0};
    job_t *job = jobs_find(self, r->job_id);
    if (job == NULL || job->info->state == WSLQ__JOB_STATE__PENDING) {
        wq_fail(&err, WQ_ENOENT, "job %" PRIu64 " is not running", r->job_id);
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    if (m->who->kind == WHO_NODE) {
        /* a job's ranks, through their worker: only their own job, its current attempt */
        if (m->node == NULL || gang_part_of(job->info, m->node->info->name) < 0 ||
            r->attempt != job->info->attempt) {
            self->stats.forbidden_total++;
            wq_fail(&err, WQ_EPERM, "job %" PRIu64 " (attempt %u) does not run on this node",
                    r->job_id, r->attempt);
            out_error(self, m->from, m->env->request_id, &err);
            return;
        }
    } else if (jobs_forbid(self, m, job->info, "use the key/value store of")) {
        return;
    }
    kv_entry_t *e = kv_find(job, r->key);
    switch (r->op) {
    case WSLQ__KV_REQUEST__OP__PUT:
        put(self, m, job, e);
        return;
    case WSLQ__KV_REQUEST__OP__GET:
        reply(self, m->from, m->env->request_id, e);
        return;
    case WSLQ__KV_REQUEST__OP__WAIT:
        wait_for(self, m, e);
        return;
    default:
        wq_fail(&err, WQ_EPROTO, "unknown key/value operation");
        out_error(self, m->from, m->env->request_id, &err);
    }
}

/* For waiters.c: the reply to a parked WAIT. */
void
kv_reply_to(sched_t *self, const peer_t *to, uint64_t request_id, const kv_entry_t *e)
{
    reply(self, to, request_id, e);
}
