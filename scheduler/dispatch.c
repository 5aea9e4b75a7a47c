/* Dispatch: one table says, for every body the scheduler accepts, which principals may send it
 * and which handler takes it. The principal comes from the connection's CURVE key (auth.c),
 * never from the message. Ownership of a job (owner or admin) is checked by the handlers. */
#include "scheduler/sched_int.h"

enum {
    BY_USER = 1 << 0,  /* an enrolled user, the local admin, or anyone when insecure */
    BY_NODE = 1 << 1,  /* an enrolled node (or anyone when insecure), registered, not lost */
    BY_ANON = 1 << 2,  /* a key nobody enrolled yet */
    BY_ADMIN = 1 << 3, /* the local admin or an admin user */
};

typedef void (*handler_f)(sched_t *self, const msg_t *m);

static const struct {
    Wslq__Envelope__BodyCase body;
    unsigned by;
    handler_f fn;
} handlers[] = {
    {WSLQ__ENVELOPE__BODY_SUBMIT, BY_USER, handle_submit},
    {WSLQ__ENVELOPE__BODY_QUEUE, BY_USER, handle_queue},
    {WSLQ__ENVELOPE__BODY_SHOW, BY_USER, handle_show},
    {WSLQ__ENVELOPE__BODY_LOGS, BY_USER, handle_logs},
    {WSLQ__ENVELOPE__BODY_CANCEL, BY_USER, handle_cancel},
    {WSLQ__ENVELOPE__BODY_CONTROL, BY_USER, handle_control},
    {WSLQ__ENVELOPE__BODY_WHY, BY_USER, handle_why},
    /* history: a user's own jobs, any user's for an admin (checked by the handler) */
    {WSLQ__ENVELOPE__BODY_HISTORY, BY_USER, handle_history},
    {WSLQ__ENVELOPE__BODY_USAGE, BY_USER, handle_usage},
    {WSLQ__ENVELOPE__BODY_UPDATE, BY_USER, handle_update},
    {WSLQ__ENVELOPE__BODY_SHARE, BY_USER, handle_share},
    {WSLQ__ENVELOPE__BODY_NODES, BY_USER, handle_nodes},
    {WSLQ__ENVELOPE__BODY_KV, BY_USER | BY_NODE, handle_kv},
    {WSLQ__ENVELOPE__BODY_WATCH, BY_USER, handle_watch},
    {WSLQ__ENVELOPE__BODY_TOKEN, BY_USER, handle_token},
    {WSLQ__ENVELOPE__BODY_ADMIN, BY_ADMIN, handle_admin},
    {WSLQ__ENVELOPE__BODY_ENROL, BY_ANON, handle_enrol},
    {WSLQ__ENVELOPE__BODY_REG, BY_NODE, handle_register},
    {WSLQ__ENVELOPE__BODY_HEARTBEAT, BY_NODE, handle_heartbeat},
    {WSLQ__ENVELOPE__BODY_STARTED, BY_NODE, handle_started},
    {WSLQ__ENVELOPE__BODY_ENDED, BY_NODE, handle_ended},
    {WSLQ__ENVELOPE__BODY_RANK_FAILED, BY_NODE, handle_rank_failed},
    {WSLQ__ENVELOPE__BODY_LOG, BY_NODE, handle_log_chunk},
    {WSLQ__ENVELOPE__BODY_METRICS, BY_NODE, handle_metrics},
    {WSLQ__ENVELOPE__BODY_PROBE_RESULT, BY_NODE, handle_probe_result},
    /* --workdir and --output (snapshots.c): ownership checked by the handlers */
    {WSLQ__ENVELOPE__BODY_SNAP_PUT, BY_USER, handle_snap_put},
    {WSLQ__ENVELOPE__BODY_FETCH, BY_USER, handle_fetch},
    {WSLQ__ENVELOPE__BODY_SNAP_GET, BY_NODE, handle_snap_get},
    {WSLQ__ENVELOPE__BODY_OUTPUT_PUT, BY_NODE, handle_output_put},
};

/* What this principal may send, as BY_* bits. */
static unsigned
allowed(const who_t *w)
{
    switch (w->kind) {
    case WHO_USER:
        return BY_USER | (w->admin ? BY_ADMIN : 0);
    case WHO_NODE:
        return BY_NODE;
    case WHO_ANON:
        return BY_ANON;
    case WHO_LOCAL_ADMIN:
        return BY_USER | BY_ADMIN;
    case WHO_INSECURE:
        return BY_USER | BY_NODE | BY_ADMIN;
    default:
        return 0;
    }
}

static void
refuse(sched_t *self, const peer_t *from, uint64_t rid, const who_t *w, unsigned need)
{
    wq_error_t err;
    self->stats.forbidden_total++;
    const char *account = from->local ? usock_account(self, from) : "";
    if (from->local && w->kind == WHO_NOBODY && w->name[0])
        wq_fail(&err, WQ_EPERM,
                "the wslq user %s (this account) was removed by an admin; ask an admin for a "
                "new enrolment code (wslq login CODE)",
                w->name);
    else if (from->local && w->kind == WHO_NOBODY && account[0])
        wq_fail(&err, WQ_EPERM,
                "account %s is not an enrolled wslq user; ask an admin for an enrolment code "
                "(wslq admin user add %s), then run 'wslq login CODE' once",
                account, account);
    else if (from->local && w->kind == WHO_NOBODY)
        wq_fail(&err, WQ_EPERM,
                "uid %u has no account name on the scheduler host; wslq users are known by "
                "their account's name",
                (unsigned) from->uid);
    else if (from->local && (need & BY_ANON))
        wq_fail(&err, WQ_EINVAL,
                "enrol over the network: 'wslq login CODE' uses the address in the code");
    else if (w->kind == WHO_NOBODY)
        wq_fail(&err, WQ_EPERM,
                "this key was revoked by an admin (it was %s's): a user needs a new enrolment "
                "code (wslq login CODE), a node a new join code (wslq-worker --join CODE)",
                w->name[0] ? w->name : "someone");
    else if (w->kind == WHO_ANON)
        wq_fail(&err, WQ_EPERM,
                "the scheduler does not know this key; ask an admin for an enrolment code "
                "(wslq login CODE)");
    else if (need & BY_ANON)
        wq_fail(&err, WQ_EINVAL, "this key is enrolled already (as %s)", w->name);
    else if (need & BY_ADMIN)
        wq_fail(&err, WQ_EPERM, "only an admin may do this (%s is not one)", w->name);
    else if (w->kind == WHO_NODE)
        wq_fail(&err, WQ_EPERM, "a node's key (%s) may not be used for this", w->name);
    else
        wq_fail(&err, WQ_EPERM, "only a node may send this");
    out_error(self, from, rid, &err);
}

void
dispatch(sched_t *self, const peer_t *from, const char *user_id, Wslq__Envelope *env)
{
    who_t who;
    auth_who(self, from, user_id, &who);
    node_t *nd = nodes_by_peer(self, from);
    /* a node's connection must also be that node's key: no node speaks for another */
    if (nd != NULL && who.kind != WHO_INSECURE &&
        (who.kind != WHO_NODE || strcmp(who.name, nd->info->name) != 0))
        nd = NULL;
    if (nd != NULL)
        nodes_seen(self, nd);
    for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++) {
        if (handlers[i].body != env->body_case)
            continue;
        unsigned by = handlers[i].by;
        if (!(allowed(&who) & by)) {
            refuse(self, from, env->request_id, &who, by);
            return;
        }
        int node_only = by == BY_NODE && env->body_case != WSLQ__ENVELOPE__BODY_REG;
        if (node_only && (nd == NULL || nd->state == NODE_LOST)) {
            /* Not acknowledged: the worker re-sends a JobEnded until it is, and after it has
             * registered again the ending is applied to the job. */
            out_reregister(self, from);
            return;
        }
        msg_t m = {.from = from, .who = &who, .node = nd, .env = env};
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
