/* The outbox: every reply, launch and kill is packed here when a handler makes it and sent
 * only after the turn's COMMIT (sched.c), so nothing the peer hears is ahead of the disk. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/mem.h"
#include "scheduler/sched_int.h"

void
out_push(sched_t *self, const peer_t *to, Wslq__Envelope *env)
{
    if (self->n_outs == self->cap_outs) {
        self->cap_outs = self->cap_outs ? self->cap_outs * 2 : 64;
        self->outs = wq_realloc(self->outs, self->cap_outs * sizeof *self->outs);
    }
    out_t *o = &self->outs[self->n_outs++];
    o->peer = *to;
    o->request_id = env->request_id;
    o->buf = wire_encode(env, &o->len);
    o->can_wait = 0;
}

/* One typed helper per body the scheduler sends: the envelope is written once, here. */
#define OUT_BODY(linkage, fn, Type, member, BODY)                           \
    linkage void fn(sched_t *self, const peer_t *to, uint64_t rid, Type *b) \
    {                                                                       \
        Wslq__Envelope env = WSLQ__ENVELOPE__INIT;                          \
        env.request_id = rid;                                               \
        env.body_case = WSLQ__ENVELOPE__BODY_##BODY;                        \
        env.member = b;                                                     \
        out_push(self, to, &env);                                           \
    }

OUT_BODY(, out_submit_reply, Wslq__SubmitReply, submit_reply, SUBMIT_REPLY)
OUT_BODY(, out_queue_reply, Wslq__QueueReply, queue_reply, QUEUE_REPLY)
OUT_BODY(, out_show_reply, Wslq__ShowReply, show_reply, SHOW_REPLY)
OUT_BODY(, out_logs_reply, Wslq__LogsReply, logs_reply, LOGS_REPLY)
OUT_BODY(, out_cancel_reply, Wslq__CancelReply, cancel_reply, CANCEL_REPLY)
OUT_BODY(, out_nodes_reply, Wslq__NodesReply, nodes_reply, NODES_REPLY)
OUT_BODY(, out_kv_reply, Wslq__KvReply, kv_reply, KV_REPLY)
OUT_BODY(, out_watch_reply, Wslq__WatchReply, watch_reply, WATCH_REPLY)
OUT_BODY(, out_reg_reply, Wslq__RegisterReply, reg_reply, REG_REPLY)
OUT_BODY(, out_enrol_reply, Wslq__EnrolReply, enrol_reply, ENROL_REPLY)
OUT_BODY(, out_admin_reply, Wslq__AdminReply, admin_reply, ADMIN_REPLY)
OUT_BODY(, out_token_reply, Wslq__TokenReply, token_reply, TOKEN_REPLY)
OUT_BODY(, out_control_reply, Wslq__JobControlReply, control_reply, CONTROL_REPLY)
OUT_BODY(, out_why_reply, Wslq__WhyReply, why_reply, WHY_REPLY)
OUT_BODY(, out_history_reply, Wslq__HistoryReply, history_reply, HISTORY_REPLY)
OUT_BODY(, out_usage_reply, Wslq__UsageReply, usage_reply, USAGE_REPLY)
OUT_BODY(, out_update_reply, Wslq__UpdateReply, update_reply, UPDATE_REPLY)
OUT_BODY(static, error_body, Wslq__ErrorReply, error, ERROR)
OUT_BODY(static, ended_ack_body, Wslq__JobEndedAck, ended_ack, ENDED_ACK)
OUT_BODY(static, probe_body, Wslq__ProbeRequest, probe, PROBE)
OUT_BODY(static, reregister_body, Wslq__Reregister, reregister, REREGISTER)
OUT_BODY(static, launch_body, Wslq__JobLaunch, launch, LAUNCH)
OUT_BODY(static, kill_body, Wslq__JobKill, kill, KILL)
OUT_BODY(static, suspend_body, Wslq__JobSuspend, suspend, SUSPEND)

void
out_error(sched_t *self, const peer_t *to, uint64_t request_id, const wq_error_t *err)
{
    Wslq__ErrorReply er = WSLQ__ERROR_REPLY__INIT;
    er.code = (uint32_t) err->code;
    er.text = (char *) err->text;
    error_body(self, to, request_id, &er);
}

/* Messages the scheduler starts (not replies) carry request_id 0. */
void
out_reregister(sched_t *self, const peer_t *to)
{
    Wslq__Reregister rr = WSLQ__REREGISTER__INIT;
    reregister_body(self, to, 0, &rr);
}

void
out_ended_ack(sched_t *self, const peer_t *to, Wslq__JobEndedAck *b)
{
    ended_ack_body(self, to, 0, b);
    /* the worker forgets the job once acknowledged, so the ack follows the disk; nothing
     * waits on it but the worker's state file, so it may wait for the next sync */
    self->outs[self->n_outs - 1].can_wait = 1;
}

void
out_probe(sched_t *self, const peer_t *to, Wslq__ProbeRequest *b)
{
    probe_body(self, to, 0, b);
}

void
out_launch(sched_t *self, const char *node, Wslq__JobLaunch *b)
{
    node_t *n = nodes_by_name(self, node);
    if (n != NULL && n->peer.len > 0)
        launch_body(self, &n->peer, 0, b);
}

void
out_kill(sched_t *self, const char *node, Wslq__JobKill *b)
{
    node_t *n = nodes_by_name(self, node);
    if (n != NULL && n->peer.len > 0)
        kill_body(self, &n->peer, 0, b);
}

void
out_suspend(sched_t *self, const char *node, Wslq__JobSuspend *b)
{
    node_t *n = nodes_by_name(self, node);
    if (n != NULL && n->peer.len > 0)
        suspend_body(self, &n->peer, 0, b);
}

int
out_owed(const sched_t *self)
{
    for (size_t i = 0; i < self->n_outs; i++)
        if (!self->outs[i].can_wait)
            return 1;
    return 0;
}

void
out_hold(sched_t *self, int64_t now)
{
    if (self->n_outs == 0)
        return;
    if (self->n_held + self->n_outs > self->cap_held) {
        self->cap_held = (self->n_held + self->n_outs) * 2;
        self->held = wq_realloc(self->held, self->cap_held * sizeof *self->held);
    }
    memcpy(self->held + self->n_held, self->outs, self->n_outs * sizeof *self->outs);
    self->n_held += self->n_outs;
    self->n_outs = 0;
    if (self->held_due == 0)
        self->held_due = now + OUT_HOLD_MS;
}

/* What was held goes first: it was made first, and a peer's messages keep their order. */
static void
unhold(sched_t *self)
{
    if (self->n_held == 0)
        return;
    size_t n = self->n_held + self->n_outs;
    if (n > self->cap_outs) {
        self->cap_outs = n * 2;
        self->outs = wq_realloc(self->outs, self->cap_outs * sizeof *self->outs);
    }
    memmove(self->outs + self->n_held, self->outs, self->n_outs * sizeof *self->outs);
    memcpy(self->outs, self->held, self->n_held * sizeof *self->held);
    self->n_outs = n;
    self->n_held = 0;
    self->held_due = 0;
}

/* The turn's messages in two passes, each in the order they were made: first those over
 * ZeroMQ (launches to the workers among them: the I/O thread sends them while this one goes
 * on), then the user socket's replies, whose client wakes at once and may take this CPU. The
 * order between two messages to the same peer is kept, since a peer is on one side only. */
void
out_flush(sched_t *self)
{
    WQ_ASSERT(!queue_in_txn(self->q)); /* nothing leaves before the turn's COMMIT */
    unhold(self);
    size_t n_local = 0;
    for (size_t i = 0; i < self->n_outs; i++) {
        out_t *o = &self->outs[i];
        if (o->peer.local) {
            self->outs[n_local++] = *o; /* kept, in order, for the second pass */
            continue;
        }
        void *sock = o->peer.admin_sock ? self->admin_router : self->router;
        if (zmq_send(sock, o->peer.id, o->peer.len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
            zmq_send(sock, o->buf, o->len, ZMQ_DONTWAIT) < 0)
            log_flag(SCHED, "send dropped: %s", zmq_strerror(errno));
        free(o->buf);
    }
    for (size_t i = 0; i < n_local; i++) {
        usock_send(self, &self->outs[i].peer, self->outs[i].buf, self->outs[i].len);
        free(self->outs[i].buf);
    }
    self->n_outs = 0;
    usock_flushed(self);
}

/* Held acks freed unsent: a worker re-sends an end it has no ack for. */
static void
drop_held(sched_t *self)
{
    for (size_t i = 0; i < self->n_held; i++)
        free(self->held[i].buf);
    self->n_held = 0;
    self->held_due = 0;
}

void
out_discard(sched_t *self)
{
    for (size_t i = 0; i < self->n_outs; i++)
        free(self->outs[i].buf);
    self->n_outs = 0;
    drop_held(self);
}

void
out_fail_requests(sched_t *self, const wq_error_t *why)
{
    drop_held(self); /* their sync will not come: the workers re-send their ends */
    size_t n = self->n_outs;
    out_t *old = self->outs;
    self->outs = NULL;
    self->n_outs = self->cap_outs = 0;
    wq_error_t err;
    wq_fail(&err, WQ_EIO, "the scheduler cannot write its database and is stopping: %.180s",
            why->text);
    for (size_t i = 0; i < n; i++) {
        int answered = 0; /* one answer per request */
        for (size_t j = 0; j < i && !answered; j++)
            answered =
                old[j].request_id == old[i].request_id && peer_same(&old[j].peer, &old[i].peer);
        if (old[i].request_id != 0 && !answered)
            out_error(self, &old[i].peer, old[i].request_id, &err);
    }
    for (size_t i = 0; i < n; i++)
        free(old[i].buf);
    free(old);
    out_flush(self);
}
