/* Parked requests: `wslq logs -f` waiting for output, `kv wait` for a key, `watch` (wslq top)
 * for any change. Each is answered when what it waits for happens, or at its deadline. */
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "scheduler/sched_int.h"

int
waiters_park(sched_t *self, waiter_t *w, wq_error_t *err)
{
    size_t same = 0;
    for (size_t i = 0; i < self->n_waiters; i++)
        same += peer_same(&self->waiters[i].peer, &w->peer);
    if (self->n_waiters >= SCHED_MAX_WAITERS || same >= SCHED_MAX_WAITERS_PER_PEER) {
        self->stats.waiters_refused_total++;
        free(w->key);
        w->key = NULL;
        return wq_fail(err, WQ_ELIMIT,
                       "too many requests are waiting (%zu from this client, %zu in all; the "
                       "limits are %d and %d): try again later",
                       same, self->n_waiters, SCHED_MAX_WAITERS_PER_PEER, SCHED_MAX_WAITERS);
    }
    self->waiters = wq_realloc(self->waiters, (self->n_waiters + 1) * sizeof *self->waiters);
    self->waiters[self->n_waiters++] = *w;
    self->stats.waiters = self->n_waiters;
    return 0;
}

static void
drop(sched_t *self, size_t i)
{
    free(self->waiters[i].key);
    self->waiters[i] = self->waiters[--self->n_waiters];
    self->stats.waiters = self->n_waiters;
}

void
waiters_free_all(sched_t *self)
{
    for (size_t i = 0; i < self->n_waiters; i++)
        free(self->waiters[i].key);
    free(self->waiters);
    self->waiters = NULL;
    self->n_waiters = 0;
}

/* Answer parked log requests for 'job_id': it has new output, or it ended. */
void
waiters_wake_logs(sched_t *self, uint64_t job_id)
{
    for (size_t i = 0; i < self->n_waiters;) {
        waiter_t *w = &self->waiters[i];
        if (w->kind == WAIT_LOGS && w->job_id == job_id) {
            logs_answer(self, w);
            drop(self, i);
        } else {
            i++;
        }
    }
}

void
waiters_wake_kv(sched_t *self, uint64_t job_id, const char *key, const kv_entry_t *e)
{
    for (size_t i = 0; i < self->n_waiters;) {
        waiter_t *w = &self->waiters[i];
        if (w->kind == WAIT_KV && w->job_id == job_id && strcmp(w->key, key) == 0) {
            kv_reply_to(self, &w->peer, w->request_id, e);
            drop(self, i);
        } else {
            i++;
        }
    }
}

static void
watch_reply(sched_t *self, const peer_t *to, uint64_t request_id)
{
    Wslq__WatchReply rep = WSLQ__WATCH_REPLY__INIT;
    rep.version = self->stats.version;
    out_watch_reply(self, to, request_id, &rep);
}

/* Answer parked watches once anything changed. */
void
waiters_wake_watch(sched_t *self)
{
    if (self->seen_version == self->stats.version)
        return;
    self->seen_version = self->stats.version;
    for (size_t i = 0; i < self->n_waiters;) {
        waiter_t *w = &self->waiters[i];
        if (w->kind == WAIT_WATCH && w->offset != self->stats.version) {
            watch_reply(self, &w->peer, w->request_id);
            drop(self, i);
        } else {
            i++;
        }
    }
}

void
waiters_expire(sched_t *self, int64_t now)
{
    for (size_t i = 0; i < self->n_waiters;) {
        waiter_t *w = &self->waiters[i];
        if (w->deadline_mono > now) {
            i++;
            continue;
        }
        if (w->kind == WAIT_WATCH) {
            watch_reply(self, &w->peer, w->request_id);
        } else if (w->kind == WAIT_KV) {
            wq_error_t err;
            wq_fail(&err, WQ_ETIMEDOUT, "key '%.64s' was not set in time", w->key);
            out_error(self, &w->peer, w->request_id, &err);
        } else {
            logs_answer(self, w);
        }
        drop(self, i);
    }
}

int64_t
waiters_next_timer(const sched_t *self)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < self->n_waiters; i++)
        if (self->waiters[i].deadline_mono < next)
            next = self->waiters[i].deadline_mono;
    return next;
}

void
handle_watch(sched_t *self, const msg_t *m)
{
    const Wslq__WatchRequest *r = m->env->watch;
    if (r->since_version != self->stats.version || r->wait_ms == 0) {
        watch_reply(self, m->from, m->env->request_id);
        return;
    }
    waiter_t w = {0};
    w.kind = WAIT_WATCH;
    w.peer = *m->from;
    w.request_id = m->env->request_id;
    w.offset = r->since_version;
    w.deadline_mono = wq_clock_mono_ms() + r->wait_ms;
    wq_error_t err;
    if (waiters_park(self, &w, &err) < 0)
        out_error(self, m->from, m->env->request_id, &err);
}
