/* Dispatch: one table says, for every body the scheduler accepts, who may send it and which
 * handler takes it. Bodies only a registered worker sends are refused from anyone else. */
#include "scheduler/sched_int.h"

enum sender {
    FROM_ANYONE, /* the CLI, the rendezvous relay, or a worker */
    FROM_WORKER, /* a registered worker whose node is not lost */
};

typedef void (*handler_f)(sched_t *self, const msg_t *m);

static const struct {
    Wslq__Envelope__BodyCase body;
    enum sender from;
    handler_f fn;
} handlers[] = {
    {WSLQ__ENVELOPE__BODY_SUBMIT, FROM_ANYONE, handle_submit},
    {WSLQ__ENVELOPE__BODY_QUEUE, FROM_ANYONE, handle_queue},
    {WSLQ__ENVELOPE__BODY_SHOW, FROM_ANYONE, handle_show},
    {WSLQ__ENVELOPE__BODY_LOGS, FROM_ANYONE, handle_logs},
    {WSLQ__ENVELOPE__BODY_CANCEL, FROM_ANYONE, handle_cancel},
    {WSLQ__ENVELOPE__BODY_NODES, FROM_ANYONE, handle_nodes},
    {WSLQ__ENVELOPE__BODY_KV, FROM_ANYONE, handle_kv},
    {WSLQ__ENVELOPE__BODY_WATCH, FROM_ANYONE, handle_watch},
    {WSLQ__ENVELOPE__BODY_REG, FROM_ANYONE, handle_register},
    {WSLQ__ENVELOPE__BODY_HEARTBEAT, FROM_WORKER, handle_heartbeat},
    {WSLQ__ENVELOPE__BODY_STARTED, FROM_WORKER, handle_started},
    {WSLQ__ENVELOPE__BODY_ENDED, FROM_WORKER, handle_ended},
    {WSLQ__ENVELOPE__BODY_RANK_FAILED, FROM_WORKER, handle_rank_failed},
    {WSLQ__ENVELOPE__BODY_LOG, FROM_WORKER, handle_log_chunk},
    {WSLQ__ENVELOPE__BODY_METRICS, FROM_WORKER, handle_metrics},
    {WSLQ__ENVELOPE__BODY_PROBE_RESULT, FROM_WORKER, handle_probe_result},
};

void
dispatch(sched_t *self, const peer_t *from, Wslq__Envelope *env)
{
    node_t *nd = nodes_by_peer(self, from);
    if (nd != NULL)
        nodes_seen(self, nd);
    for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++) {
        if (handlers[i].body != env->body_case)
            continue;
        if (handlers[i].from == FROM_WORKER && (nd == NULL || nd->state == NODE_LOST)) {
            /* Not acknowledged: the worker re-sends a JobEnded until it is, and after it has
             * registered again the ending is applied to the job. */
            out_reregister(self, from);
            return;
        }
        msg_t m = {.from = from, .node = nd, .env = env};
        if (nd != NULL && nd->state == NODE_LOST)
            m.node = NULL;
        handlers[i].fn(self, &m);
        if (self->failed && env->request_id != 0)
            out_error(self, from, env->request_id, &self->fail_err); /* answered at the end */
        return;
    }
    wq_error_t err;
    wq_fail(&err, WQ_EPROTO, "the scheduler does not accept this message");
    out_error(self, from, env->request_id, &err);
}
