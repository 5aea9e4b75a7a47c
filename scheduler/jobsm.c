/* The job state machine; see jobsm.h. */
#include "scheduler/jobsm.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

#define BACKOFF_FIRST_MS 1000  /* first requeue waits 1 s ... */
#define BACKOFF_MAX_MS   60000 /* ... doubling up to 60 s, so a broken node cannot spin */

static const struct {
    const char *name;
    int precedence;
    Wslq__JobState final;
    enum jobsm_retry retry;
} causes[JOBSM_CAUSE_COUNT] = {
#define JOBSM_CAUSE_ROW(n, prec, fin, rt) \
    [JOBSM_CAUSE_##n] = {#n, prec, WSLQ__JOB_STATE__##fin, rt},
    JOBSM_CAUSES(JOBSM_CAUSE_ROW)
#undef JOBSM_CAUSE_ROW
};

static const char *const event_names[JOBSM_EV_COUNT] = {
    [JOBSM_EV_SUBMIT] = "submit",
    [JOBSM_EV_PLACE] = "place",
    [JOBSM_EV_PART_STARTED] = "part_started",
    [JOBSM_EV_PART_ENDED] = "part_ended",
    [JOBSM_EV_RANK_FAILED] = "rank_failed",
    [JOBSM_EV_NODE_LOST] = "node_lost",
    [JOBSM_EV_PART_MISSING] = "part_missing",
    [JOBSM_EV_CANCEL] = "cancel",
    [JOBSM_EV_TIME_LIMIT] = "time_limit",
    [JOBSM_EV_START_TIMEOUT] = "start_timeout",
    [JOBSM_EV_DEPENDENCY_FAILED] = "dependency_failed",
    [JOBSM_EV_REQUEUE_TIMER] = "requeue_timer",
    [JOBSM_EV_DRAIN] = "drain",
    [JOBSM_EV_HOLD] = "hold",
    [JOBSM_EV_RELEASE] = "release",
    [JOBSM_EV_REQUEUE] = "requeue",
    [JOBSM_EV_PREEMPT] = "preempt",
    [JOBSM_EV_SUSPEND] = "suspend",
    [JOBSM_EV_RESUME] = "resume",
};

const char *
jobsm_cause_name(jobsm_cause_t c)
{
    static char lower[JOBSM_CAUSE_COUNT][24]; /* filled on first use, loop thread only */
    if ((unsigned) c >= JOBSM_CAUSE_COUNT)
        return "?";
    if (lower[c][0] == '\0') {
        size_t i = 0;
        for (; causes[c].name[i] && i + 1 < sizeof lower[c]; i++) {
            char ch = causes[c].name[i];
            lower[c][i] = ch >= 'A' && ch <= 'Z' ? (char) (ch - 'A' + 'a') : ch;
        }
        lower[c][i] = '\0';
    }
    return lower[c];
}

const char *
jobsm_event_name(jobsm_event_type_t t)
{
    return (unsigned) t < JOBSM_EV_COUNT ? event_names[t] : "?";
}

static int
is_active(Wslq__JobState st)
{
    return st == WSLQ__JOB_STATE__STARTING || st == WSLQ__JOB_STATE__RUNNING;
}

/* The invariants every transition keeps; checked after each one. */
static void
check_invariants(const jobsm_t *sm, const Wslq__JobInfo *info)
{
    WQ_ASSERT((unsigned) sm->cause < JOBSM_CAUSE_COUNT);
    /* parts exist exactly while the job holds an allocation */
    WQ_ASSERT(is_active(info->state) ? sm->n_parts == info->n_allocs && sm->n_parts > 0
                                     : sm->n_parts == 0);
    /* a kill is only ever sent because something is ending the job */
    WQ_ASSERT(!sm->kill_sent || sm->cause != JOBSM_CAUSE_NONE);
    /* a recorded failure is a failure or a lost node, unless a stronger cause overrode it */
    WQ_ASSERT(!sm->failure_recorded || causes[sm->cause].precedence >= 2);
    /* a requeue backoff only holds a PENDING job */
    WQ_ASSERT(sm->not_before_mono == 0 || info->state == WSLQ__JOB_STATE__PENDING);
    /* only a PENDING job is held */
    WQ_ASSERT(!info->held || info->state == WSLQ__JOB_STATE__PENDING);
    /* only a RUNNING job is suspended, and it knows since when */
    WQ_ASSERT(!info->suspended || info->state == WSLQ__JOB_STATE__RUNNING);
    WQ_ASSERT(!info->suspended == !info->suspended_since_ms);
}

static jobsm_row_t *
add_row(jobsm_out_t *out, Wslq__JobState st, const char *reason, const char *node)
{
    WQ_ASSERT(out->n_rows < JOBSM_MAX_ROWS);
    jobsm_row_t *r = &out->rows[out->n_rows++];
    r->state = st;
    snprintf(r->reason, sizeof r->reason, "%s", reason ? reason : "");
    snprintf(r->node, sizeof r->node, "%s", node ? node : "");
    r->detail[0] = '\0';
    return r;
}

static void
set_state(Wslq__JobInfo *info, jobsm_out_t *out, Wslq__JobState st)
{
    info->state = st;
    out->state_changed = 1;
    out->act |= JOBSM_ACT_SAVE;
}

/* Raise the end cause if the new one ranks higher; equal ranks keep the first. */
static void
raise_cause(jobsm_t *sm, jobsm_cause_t c)
{
    if (causes[c].precedence > causes[sm->cause].precedence)
        sm->cause = c;
}

/* The JobKill reasons the first kill of a cause and jobsm_kill_again share. */
static const char WHY_CANCELLED[] = "cancelled";
static const char WHY_TIME_LIMIT[] = "time limit reached";
static const char WHY_REQUEUED[] = "requeued";
static const char WHY_RANK_FAILED[] = "another rank of the job failed";
static const char WHY_NODE_LOST[] = "another node of the job was lost";

static void
kill_rest(jobsm_t *sm, jobsm_out_t *out, jobsm_grace_t grace, const char *why)
{
    sm->kill_sent = 1;
    out->act |= JOBSM_ACT_KILL;
    out->kill_grace = grace;
    snprintf(out->kill_reason, sizeof out->kill_reason, "%s", why);
}

static void
drop_parts(jobsm_t *sm)
{
    free(sm->parts);
    sm->parts = NULL;
    sm->n_parts = 0;
}

void
jobsm_free_allocs(Wslq__JobInfo *info)
{
    for (size_t i = 0; i < info->n_allocs; i++)
        wslq__alloc__free_unpacked(info->allocs[i], NULL);
    free(info->allocs);
    info->allocs = NULL;
    info->n_allocs = 0;
}

/* Every part has ended: the final state from the cause, or back to PENDING. */
static void
finish(jobsm_t *sm, Wslq__JobInfo *info, const jobsm_event_t *ev, jobsm_out_t *out)
{
    Wslq__JobState st = causes[sm->cause].final;
    char reason[256];
    switch (sm->cause) {
    case JOBSM_CAUSE_NONE:
        info->exit_code = 0;
        snprintf(reason, sizeof reason, "every rank exited 0");
        break;
    case JOBSM_CAUSE_START_TIMEOUT:
        snprintf(reason, sizeof reason, "%s", info->reason);
        break;
    case JOBSM_CAUSE_RANK_FAILED:
        if (info->signal)
            snprintf(reason, sizeof reason, "rank %d on %s killed by signal %d", info->failed_rank,
                     info->failed_node, info->signal);
        else
            snprintf(reason, sizeof reason, "rank %d on %s exited with code %d", info->failed_rank,
                     info->failed_node, info->exit_code);
        if (info->failure_detail != NULL && info->failure_detail[0] != '\0') {
            size_t n = strlen(reason);
            snprintf(reason + n, sizeof reason - n, ": %s", info->failure_detail);
        }
        break;
    case JOBSM_CAUSE_NODE_LOST:
        snprintf(reason, sizeof reason, "node %s was lost", info->failed_node);
        break;
    case JOBSM_CAUSE_TIME_LIMIT:
        snprintf(reason, sizeof reason, "time limit reached");
        break;
    case JOBSM_CAUSE_CANCELLED:
        snprintf(reason, sizeof reason, "cancelled");
        break;
    case JOBSM_CAUSE_DRAINED:
        snprintf(reason, sizeof reason, "%s", info->reason);
        break;
    case JOBSM_CAUSE_REQUEUED:
        snprintf(reason, sizeof reason, "requeued by its owner or an admin");
        break;
    case JOBSM_CAUSE_PREEMPTED:
        snprintf(reason, sizeof reason, "%s", info->reason);
        info->preemptions++;
        break;
    case JOBSM_CAUSE_OUT_OF_MEMORY:
        snprintf(reason, sizeof reason, "%s", info->reason);
        break;
    case JOBSM_CAUSE_GPU_RESET:
        snprintf(reason, sizeof reason, "%s", info->reason); /* set by gpu_reset_seen */
        break;
    default:
        WQ_ASSERT(!"a started job cannot end for this cause");
    }
    enum jobsm_retry rt = causes[sm->cause].retry;
    int retry =
        rt == JOBSM_RETRY_ALWAYS || (rt == JOBSM_RETRY_IF_ASKED && info->spec->requeue_on_fail);
    int uncounted = rt == JOBSM_RETRY_UNCOUNTED;
    drop_parts(sm);
    if (info->suspended) { /* it ended stopped: the stop counts up to now */
        if (ev->now_wall_ms > info->suspended_since_ms)
            info->suspended_ms += ev->now_wall_ms - info->suspended_since_ms;
        info->suspended = 0;
        info->suspended_since_ms = 0;
    }
    /* attempts a drain or an asked requeue ended are not the job's: they use up no retries */
    if (uncounted || (retry && info->attempt - info->uncounted_requeues < info->spec->retries)) {
        char why[320];
        if (sm->cause == JOBSM_CAUSE_REQUEUED)
            snprintf(why, sizeof why, "%s (attempt %u)", reason, info->attempt + 2);
        else if (uncounted)
            snprintf(why, sizeof why, "requeued: %s (attempt %u next; retries not used)", reason,
                     info->attempt + 2);
        else
            snprintf(why, sizeof why, "requeued after %s: %s (attempt %u of %u)",
                     wire_state_name(st), reason, info->attempt + 2 - info->uncounted_requeues,
                     info->spec->retries + 1);
        info->attempt++;
        if (uncounted) {
            info->uncounted_requeues++;
            sm->not_before_mono = 0; /* nothing wrong with the job: place it at once */
        } else {
            unsigned shift = info->attempt - 1 < 6 ? info->attempt - 1 : 6;
            int64_t backoff = (int64_t) BACKOFF_FIRST_MS << shift;
            sm->not_before_mono =
                ev->now_mono_ms + (backoff > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff);
        }
        sm->cause = JOBSM_CAUSE_NONE;
        sm->kill_sent = 0;
        sm->failure_recorded = 0;
        jobsm_free_allocs(info);
        info->master_port = 0;
        free(info->tf_ports);
        info->tf_ports = NULL;
        info->n_tf_ports = 0;
        wire_set_str(&info->master_addr, "");
        info->start_ms = 0;
        wire_set_str(&info->reason, why);
        info->wait_reason = uncounted ? WSLQ__WAIT_REASON__WAIT_REASON_UNSPECIFIED
                                      : WSLQ__WAIT_REASON__WAIT_BACKOFF;
        set_state(info, out, WSLQ__JOB_STATE__PENDING);
        add_row(out, WSLQ__JOB_STATE__PENDING, why, NULL);
        out->act |= JOBSM_ACT_REQUEUED | JOBSM_ACT_RESCHED;
        return;
    }
    info->end_ms = ev->now_wall_ms;
    wire_set_str(&info->reason, reason);
    set_state(info, out, st);
    add_row(out, st, reason, info->failed_node);
    out->act |= JOBSM_ACT_ENDED | JOBSM_ACT_RESCHED;
}

static void
finish_if_all_ended(jobsm_t *sm, Wslq__JobInfo *info, const jobsm_event_t *ev, jobsm_out_t *out)
{
    for (size_t k = 0; k < sm->n_parts; k++)
        if (!sm->parts[k].ended)
            return;
    finish(sm, info, ev, out);
}

/* The worker's line on a failed part says more than its exit code: not its own generic
 * "rank N exited with code C" / "rank N killed by signal S", but why a rank never ran its
 * program ("rank 0: cannot run 'x': command not found", "cannot use working directory ..."). */
static int
says_more(const char *text)
{
    if (text == NULL || text[0] == '\0')
        return 0;
    if (strncmp(text, "rank ", 5) != 0)
        return 1;
    const char *p = text + 5;
    while (*p >= '0' && *p <= '9')
        p++;
    return strncmp(p, " exited with code", 17) != 0 && strncmp(p, " killed by signal", 17) != 0;
}

/* The first failure of the job: its rank, node, code and signal are what `wslq show` says. */
static void
record_failure(jobsm_t *sm, Wslq__JobInfo *info, const jobsm_event_t *ev)
{
    sm->failure_recorded = 1;
    info->exit_code = ev->exit_code;
    info->signal = ev->signal;
    info->failed_rank = ev->rank;
    wire_set_str(&info->failed_node, info->allocs[ev->part]->node);
}

static int
refuse(const jobsm_event_t *ev, const Wslq__JobInfo *info, wq_error_t *err)
{
    return wq_fail(err, WQ_EINVAL, "job %" PRIu64 ": %s is not allowed in state %s", info->id,
                   jobsm_event_name(ev->type), wire_state_name(info->state));
}

static int
on_submit(jobsm_t *sm, Wslq__JobInfo *info, const jobsm_event_t *ev, jobsm_out_t *out)
{
    memset(sm, 0, sizeof *sm);
    info->submit_ms = ev->now_wall_ms;
    info->exit_code = -1;
    info->failed_rank = -1;
    info->held = ev->held != 0;
    info->wait_reason =
        info->held ? WSLQ__WAIT_REASON__WAIT_HELD : WSLQ__WAIT_REASON__WAIT_REASON_UNSPECIFIED;
    wire_set_str(&info->reason, info->held ? "held" : ev->text);
    set_state(info, out, WSLQ__JOB_STATE__PENDING);
    add_row(out, WSLQ__JOB_STATE__PENDING, info->held ? "submitted held" : "submitted", NULL);
    out->act |= JOBSM_ACT_RESCHED;
    return JOBSM_APPLIED;
}

static int
on_place(jobsm_t *sm, Wslq__JobInfo *info, const jobsm_event_t *ev, jobsm_out_t *out)
{
    WQ_ASSERT(info->n_allocs > 0);
    sm->parts = wq_calloc(info->n_allocs, sizeof *sm->parts);
    sm->n_parts = info->n_allocs;
    sm->cause = JOBSM_CAUSE_NONE;
    sm->kill_sent = 0;
    sm->failure_recorded = 0;
    sm->not_before_mono = 0;
    info->start_ms = ev->now_wall_ms;
    info->end_ms = 0;
    info->suspended_ms = 0;
    info->exit_code = -1;
    info->signal = 0;
    info->failed_rank = -1;
    wire_set_str(&info->failed_node, "");
    wire_set_str(&info->failure_detail, "");
    wire_set_str(&info->reason, "");
    info->wait_reason = WSLQ__WAIT_REASON__WAIT_REASON_UNSPECIFIED;
    char nodes[512] = "";
    size_t off = 0;
    for (size_t k = 0; k < info->n_allocs && off < sizeof nodes; k++)
        off += (size_t) snprintf(nodes + off, sizeof nodes - off, "%s%s", k ? "," : "",
                                 info->allocs[k]->node);
    set_state(info, out, WSLQ__JOB_STATE__STARTING);
    add_row(out, WSLQ__JOB_STATE__STARTING, "placed", nodes);
    out->act |= JOBSM_ACT_LAUNCH;
    return JOBSM_APPLIED;
}

static int
on_part_started(jobsm_t *sm, Wslq__JobInfo *info, const jobsm_event_t *ev, jobsm_out_t *out)
{
    jobsm_part_t *p = &sm->parts[ev->part];
    if (p->started || p->ended)
        return JOBSM_STALE;
    p->started = 1;
    for (size_t k = 0; k < sm->n_parts; k++)
        if (!sm->parts[k].started)
            return JOBSM_APPLIED;
    if (info->state == WSLQ__JOB_STATE__STARTING) {
        set_state(info, out, WSLQ__JOB_STATE__RUNNING);
        add_row(out, WSLQ__JOB_STATE__RUNNING, "every rank started", info->allocs[ev->part]->node);
    }
    return JOBSM_APPLIED;
}

/* The failure recorded for part ev->part was Windows resetting the GPU (TDR): the job ends
 * GPU_RESET instead of RANK_FAILED, retried like a lost node (spec.retries). */
static void
gpu_reset_seen(jobsm_t *sm, Wslq__JobInfo *info, const jobsm_event_t *ev, jobsm_out_t *out)
{
    sm->cause = JOBSM_CAUSE_GPU_RESET;
    const char *node = info->allocs[ev->part]->node;
    char reason[256];
    snprintf(reason, sizeof reason, "GPU reset by Windows (TDR) on %s: %.180s", node,
             ev->gpu_reset_why && ev->gpu_reset_why[0] ? ev->gpu_reset_why
                                                       : "the worker saw the GPU reset");
    wire_set_str(&info->reason, reason);
    out->act |= JOBSM_ACT_SAVE;
}

static int
on_part_ended(jobsm_t *sm, Wslq__JobInfo *info, const jobsm_event_t *ev, jobsm_out_t *out)
{
    jobsm_part_t *p = &sm->parts[ev->part];
    if (p->ended)
        return JOBSM_STALE;
    p->ended = 1;
    p->started = 1;
    jobsm_row_t *r = add_row(out, info->state, "node finished", info->allocs[ev->part]->node);
    const char *why = ev->text ? ev->text : "";
    snprintf(r->detail, sizeof r->detail, "exit_code=%d signal=%d rank=%d%s%s%s%s", ev->exit_code,
             ev->signal, ev->rank, ev->timed_out ? " timed_out" : "", ev->killed ? " killed" : "",
             why[0] ? " " : "", why);
    if (ev->output_lost) {
        jobsm_row_t *lost = add_row(out, info->state, "output lost", info->allocs[ev->part]->node);
        snprintf(lost->detail, sizeof lost->detail,
                 "the node's spool was full while the job ran: its log may miss output");
    }
    int failed = ev->exit_code != 0 || ev->signal != 0;
    if (ev->timed_out)
        raise_cause(sm, JOBSM_CAUSE_TIME_LIMIT);
    int oom_first = ev->out_of_memory && sm->cause != JOBSM_CAUSE_OUT_OF_MEMORY;
    if (ev->out_of_memory)
        raise_cause(sm, JOBSM_CAUSE_OUT_OF_MEMORY);
    if (oom_first && sm->cause == JOBSM_CAUSE_OUT_OF_MEMORY) { /* its reason, the worker's words */
        char oom[320];
        snprintf(oom, sizeof oom, "out of memory on %s: %s", info->allocs[ev->part]->node,
                 why[0] ? why : "over its --mem");
        wire_set_str(&info->reason, oom);
    }
    if (failed && !sm->failure_recorded && !sm->kill_sent) {
        record_failure(sm, info, ev);
        raise_cause(sm, JOBSM_CAUSE_RANK_FAILED);
        out->act |= JOBSM_ACT_SAVE;
        kill_rest(sm, out, JOBSM_GRACE_GANG, WHY_RANK_FAILED);
        if (ev->gpu_reset && sm->cause == JOBSM_CAUSE_RANK_FAILED) /* not the time limit */
            gpu_reset_seen(sm, info, ev, out);
    } else if (failed && ev->gpu_reset && sm->cause == JOBSM_CAUSE_RANK_FAILED &&
               strcmp(info->failed_node, info->allocs[ev->part]->node) == 0) {
        gpu_reset_seen(sm, info, ev, out); /* its RankFailed came first */
    } else if (failed && !sm->failure_recorded && ev->timed_out) {
        info->exit_code = ev->exit_code;
        info->signal = ev->signal;
    }
    if (failed && sm->cause == JOBSM_CAUSE_RANK_FAILED && says_more(ev->text) &&
        (info->failure_detail == NULL || info->failure_detail[0] == '\0') &&
        info->failed_node != NULL && strcmp(info->failed_node, info->allocs[ev->part]->node) == 0) {
        const char *d = ev->text; /* without the worker's "rank N: " */
        if (strncmp(d, "rank ", 5) == 0 && strchr(d, ':') != NULL)
            d = strchr(d, ':') + 1 + (strchr(d, ':')[1] == ' ');
        wire_set_str(&info->failure_detail, d);
    }
    finish_if_all_ended(sm, info, ev, out);
    return JOBSM_APPLIED;
}

static int
on_rank_failed(jobsm_t *sm, Wslq__JobInfo *info, const jobsm_event_t *ev, jobsm_out_t *out)
{
    if (sm->parts[ev->part].ended || sm->failure_recorded || sm->kill_sent)
        return JOBSM_STALE;
    record_failure(sm, info, ev);
    raise_cause(sm, JOBSM_CAUSE_RANK_FAILED);
    out->act |= JOBSM_ACT_SAVE;
    jobsm_row_t *r = add_row(out, info->state, "rank failed", info->allocs[ev->part]->node);
    snprintf(r->detail, sizeof r->detail, "rank=%d exit_code=%d signal=%d", ev->rank, ev->exit_code,
             ev->signal);
    kill_rest(sm, out, JOBSM_GRACE_GANG, WHY_RANK_FAILED);
    return JOBSM_APPLIED;
}

static int
on_part_lost(jobsm_t *sm, Wslq__JobInfo *info, const jobsm_event_t *ev, jobsm_out_t *out)
{
    jobsm_part_t *p = &sm->parts[ev->part];
    if (p->ended)
        return JOBSM_STALE;
    int missing = ev->type == JOBSM_EV_PART_MISSING;
    p->ended = 1;
    p->lost = 1;
    const char *node = info->allocs[ev->part]->node;
    if (!sm->failure_recorded) {
        sm->failure_recorded = 1;
        wire_set_str(&info->failed_node, node);
    }
    raise_cause(sm, JOBSM_CAUSE_NODE_LOST);
    add_row(out, info->state, missing ? "node restarted without the job" : "node lost", node);
    if (!sm->kill_sent)
        kill_rest(sm, out, JOBSM_GRACE_GANG,
                  missing ? "another node of the job lost it" : WHY_NODE_LOST);
    finish_if_all_ended(sm, info, ev, out);
    return JOBSM_APPLIED;
}

/* A job that never started ends at once. */
static int
end_pending(jobsm_t *sm,
            Wslq__JobInfo *info,
            const jobsm_event_t *ev,
            jobsm_out_t *out,
            jobsm_cause_t cause,
            const char *reason)
{
    sm->cause = cause;
    sm->not_before_mono = 0;
    info->held = 0;
    info->wait_reason = WSLQ__WAIT_REASON__WAIT_REASON_UNSPECIFIED;
    info->end_ms = ev->now_wall_ms;
    wire_set_str(&info->reason, reason);
    set_state(info, out, causes[cause].final);
    add_row(out, info->state, reason, NULL);
    out->act |= JOBSM_ACT_ENDED | JOBSM_ACT_RESCHED;
    return JOBSM_APPLIED;
}

static int
on_cancel(jobsm_t *sm, Wslq__JobInfo *info, const jobsm_event_t *ev, jobsm_out_t *out)
{
    if (info->state == WSLQ__JOB_STATE__PENDING)
        return end_pending(sm, info, ev, out, JOBSM_CAUSE_CANCELLED, "cancelled by user");
    if (sm->cause == JOBSM_CAUSE_CANCELLED)
        return JOBSM_STALE;
    raise_cause(sm, JOBSM_CAUSE_CANCELLED);
    add_row(out, info->state, "cancel requested", NULL);
    kill_rest(sm, out, JOBSM_GRACE_NORMAL, WHY_CANCELLED);
    return JOBSM_APPLIED;
}

static int
on_time_limit(jobsm_t *sm, Wslq__JobInfo *info, jobsm_out_t *out)
{
    if (sm->kill_sent)
        return JOBSM_STALE;
    raise_cause(sm, JOBSM_CAUSE_TIME_LIMIT);
    add_row(out, info->state, "time limit reached", NULL);
    kill_rest(sm, out, JOBSM_GRACE_NORMAL, WHY_TIME_LIMIT);
    return JOBSM_APPLIED;
}

static int
on_start_timeout(jobsm_t *sm, Wslq__JobInfo *info, const jobsm_event_t *ev, jobsm_out_t *out)
{
    if (sm->kill_sent)
        return JOBSM_STALE;
    const char *why = ev->text ? ev->text : "not every rank started in time";
    raise_cause(sm, JOBSM_CAUSE_START_TIMEOUT);
    wire_set_str(&info->reason, why);
    out->act |= JOBSM_ACT_SAVE;
    add_row(out, info->state, why, NULL);
    kill_rest(sm, out, JOBSM_GRACE_NORMAL, why);
    return JOBSM_APPLIED;
}

/* wslq drain --now: the job goes back to the queue once its ranks are gone (SIGTERM, then
 * SIGKILL after the kill grace), without using one of its retries. */
static int
on_drain(jobsm_t *sm, Wslq__JobInfo *info, const jobsm_event_t *ev, jobsm_out_t *out)
{
    if (sm->kill_sent)
        return JOBSM_STALE; /* already ending for another cause */
    const char *why = ev->text ? ev->text : "its node was drained";
    raise_cause(sm, JOBSM_CAUSE_DRAINED); /* stored (mirror): a restart still requeues it */
    wire_set_str(&info->reason, why);
    out->act |= JOBSM_ACT_SAVE;
    add_row(out, info->state, why, NULL);
    kill_rest(sm, out, JOBSM_GRACE_NORMAL, why);
    return JOBSM_APPLIED;
}

static int
on_requeue_timer(jobsm_t *sm, Wslq__JobInfo *info, const jobsm_event_t *ev, jobsm_out_t *out)
{
    if (sm->not_before_mono == 0 || ev->now_mono_ms < sm->not_before_mono)
        return JOBSM_STALE;
    sm->not_before_mono = 0;
    if (info->wait_reason == WSLQ__WAIT_REASON__WAIT_BACKOFF)
        info->wait_reason = WSLQ__WAIT_REASON__WAIT_REASON_UNSPECIFIED;
    out->act |= JOBSM_ACT_RESCHED;
    return JOBSM_APPLIED;
}

static int
on_hold(Wslq__JobInfo *info, jobsm_out_t *out)
{
    if (info->held)
        return JOBSM_STALE;
    info->held = 1;
    info->wait_reason = WSLQ__WAIT_REASON__WAIT_HELD;
    wire_set_str(&info->reason, "held");
    out->act |= JOBSM_ACT_SAVE;
    add_row(out, info->state, "held", NULL);
    return JOBSM_APPLIED;
}

static int
on_release(Wslq__JobInfo *info, jobsm_out_t *out)
{
    if (!info->held)
        return JOBSM_STALE;
    info->held = 0;
    info->wait_reason = WSLQ__WAIT_REASON__WAIT_REASON_UNSPECIFIED;
    wire_set_str(&info->reason, "");
    out->act |= JOBSM_ACT_SAVE | JOBSM_ACT_RESCHED;
    add_row(out, info->state, "released", NULL);
    return JOBSM_APPLIED;
}

static int
on_requeue(jobsm_t *sm, Wslq__JobInfo *info, jobsm_out_t *out)
{
    if (sm->cause == JOBSM_CAUSE_REQUEUED)
        return JOBSM_STALE;
    if (causes[sm->cause].precedence >= causes[JOBSM_CAUSE_REQUEUED].precedence)
        return JOBSM_STALE; /* a cancel is already ending it */
    raise_cause(sm, JOBSM_CAUSE_REQUEUED);
    add_row(out, info->state, "requeue requested", NULL);
    if (!sm->kill_sent)
        kill_rest(sm, out, JOBSM_GRACE_NORMAL, WHY_REQUEUED);
    else
        out->act |= JOBSM_ACT_SAVE;
    return JOBSM_APPLIED;
}

/* Preempted (for a higher-priority job) or evicted (by the PC's owner): like a drain, back
 * to the queue once its ranks are gone, SIGTERM first so it can checkpoint, no retry used. */
static int
on_preempt(jobsm_t *sm, Wslq__JobInfo *info, const jobsm_event_t *ev, jobsm_out_t *out)
{
    if (sm->kill_sent)
        return JOBSM_STALE; /* already ending for another cause */
    char why[150];
    snprintf(why, sizeof why, "%.140s",
             ev->text ? ev->text : "preempted for a higher-priority job");
    raise_cause(sm, JOBSM_CAUSE_PREEMPTED);
    wire_set_str(&info->reason, why);
    out->act |= JOBSM_ACT_SAVE;
    add_row(out, info->state, why, NULL);
    kill_rest(sm, out, JOBSM_GRACE_PREEMPT, why);
    return JOBSM_APPLIED;
}

/* The owner's suspend policy: the ranks stop (SIGSTOP) and later continue; the job stays
 * RUNNING and holds its resources meanwhile. A job already being stopped is left alone. */
static int
on_suspend(jobsm_t *sm, Wslq__JobInfo *info, const jobsm_event_t *ev, jobsm_out_t *out)
{
    if (info->suspended || sm->kill_sent)
        return JOBSM_STALE;
    info->suspended = 1;
    info->suspended_since_ms = ev->now_wall_ms > 0 ? ev->now_wall_ms : 1;
    char why[256];
    snprintf(why, sizeof why, "suspended: %s", ev->text ? ev->text : "its PC's owner is present");
    out->act |= JOBSM_ACT_SAVE | JOBSM_ACT_SUSPEND;
    add_row(out, info->state, why, NULL);
    return JOBSM_APPLIED;
}

static int
on_resume(Wslq__JobInfo *info, const jobsm_event_t *ev, jobsm_out_t *out)
{
    if (!info->suspended)
        return JOBSM_STALE;
    int64_t stopped =
        ev->now_wall_ms > info->suspended_since_ms ? ev->now_wall_ms - info->suspended_since_ms : 0;
    info->suspended_ms += stopped;
    info->suspended = 0;
    info->suspended_since_ms = 0;
    out->act |= JOBSM_ACT_SAVE | JOBSM_ACT_SUSPEND;
    jobsm_row_t *r = add_row(out, info->state, "resumed", NULL);
    snprintf(r->detail, sizeof r->detail, "suspended %" PRId64 " s", stopped / 1000);
    return JOBSM_APPLIED;
}

/* The cause and kill_sent go into the job's row, so a restarted scheduler ends it the same way
 * (jobsm_load). Names, not numbers: a build with more causes reads them alike. */
static void
mirror(const jobsm_t *sm, Wslq__JobInfo *info, jobsm_out_t *out)
{
    int active = is_active(info->state);
    const char *cause = active && sm->cause != JOBSM_CAUSE_NONE ? jobsm_cause_name(sm->cause) : "";
    int kill_sent = active && sm->kill_sent;
    if (strcmp(info->end_cause ? info->end_cause : "", cause) != 0 ||
        info->kill_sent != (kill_sent != 0)) {
        wire_set_str(&info->end_cause, cause);
        info->kill_sent = kill_sent != 0;
        out->act |= JOBSM_ACT_SAVE;
    }
}

/* Which states each event is allowed in (bit = 1 << state). */
#define IN(s)         (1u << WSLQ__JOB_STATE__##s)
#define ACTIVE_STATES (IN(STARTING) | IN(RUNNING))
static const unsigned allowed[JOBSM_EV_COUNT] = {
    [JOBSM_EV_SUBMIT] = 1u << WSLQ__JOB_STATE__JOB_STATE_UNSPECIFIED,
    [JOBSM_EV_PLACE] = IN(PENDING),
    [JOBSM_EV_PART_STARTED] = ACTIVE_STATES,
    [JOBSM_EV_PART_ENDED] = ACTIVE_STATES,
    [JOBSM_EV_RANK_FAILED] = ACTIVE_STATES,
    [JOBSM_EV_NODE_LOST] = ACTIVE_STATES,
    [JOBSM_EV_PART_MISSING] = ACTIVE_STATES,
    [JOBSM_EV_CANCEL] = IN(PENDING) | ACTIVE_STATES,
    [JOBSM_EV_TIME_LIMIT] = IN(RUNNING),
    [JOBSM_EV_START_TIMEOUT] = IN(STARTING),
    [JOBSM_EV_DEPENDENCY_FAILED] = IN(PENDING),
    [JOBSM_EV_REQUEUE_TIMER] = IN(PENDING),
    [JOBSM_EV_DRAIN] = ACTIVE_STATES,
    [JOBSM_EV_HOLD] = IN(PENDING),
    [JOBSM_EV_RELEASE] = IN(PENDING),
    [JOBSM_EV_REQUEUE] = ACTIVE_STATES,
    [JOBSM_EV_PREEMPT] = ACTIVE_STATES,
    [JOBSM_EV_SUSPEND] = IN(RUNNING),
    [JOBSM_EV_RESUME] = IN(RUNNING),
};

static int
has_part(jobsm_event_type_t t)
{
    return t == JOBSM_EV_PART_STARTED || t == JOBSM_EV_PART_ENDED || t == JOBSM_EV_RANK_FAILED ||
           t == JOBSM_EV_NODE_LOST || t == JOBSM_EV_PART_MISSING;
}

int
jobsm_apply(
    jobsm_t *sm, Wslq__JobInfo *info, const jobsm_event_t *ev, jobsm_out_t *out, wq_error_t *err)
{
    memset(out, 0, sizeof *out);
    out->old_state = info->state;
    if ((unsigned) ev->type >= JOBSM_EV_COUNT)
        return wq_fail(err, WQ_EINVAL, "job %" PRIu64 ": unknown event %d", info->id,
                       (int) ev->type);
    if ((unsigned) info->state >= 32 || !(allowed[ev->type] & (1u << info->state)))
        return refuse(ev, info, err);
    if (has_part(ev->type) && ev->part >= sm->n_parts)
        return wq_fail(err, WQ_EINVAL, "job %" PRIu64 ": %s names part %zu of %zu", info->id,
                       jobsm_event_name(ev->type), ev->part, sm->n_parts);
    int rc = JOBSM_STALE;
    switch (ev->type) {
    case JOBSM_EV_SUBMIT:
        rc = on_submit(sm, info, ev, out);
        break;
    case JOBSM_EV_PLACE:
        if (info->n_allocs == 0)
            return wq_fail(err, WQ_EINVAL, "job %" PRIu64 ": placed without an allocation",
                           info->id);
        rc = on_place(sm, info, ev, out);
        break;
    case JOBSM_EV_PART_STARTED:
        rc = on_part_started(sm, info, ev, out);
        break;
    case JOBSM_EV_PART_ENDED:
        rc = on_part_ended(sm, info, ev, out);
        break;
    case JOBSM_EV_RANK_FAILED:
        rc = on_rank_failed(sm, info, ev, out);
        break;
    case JOBSM_EV_NODE_LOST:
    case JOBSM_EV_PART_MISSING:
        rc = on_part_lost(sm, info, ev, out);
        break;
    case JOBSM_EV_CANCEL:
        rc = on_cancel(sm, info, ev, out);
        break;
    case JOBSM_EV_TIME_LIMIT:
        rc = on_time_limit(sm, info, out);
        break;
    case JOBSM_EV_START_TIMEOUT:
        rc = on_start_timeout(sm, info, ev, out);
        break;
    case JOBSM_EV_DEPENDENCY_FAILED:
        rc = end_pending(sm, info, ev, out, JOBSM_CAUSE_DEPENDENCY,
                         ev->text ? ev->text : "a dependency can never be met");
        break;
    case JOBSM_EV_REQUEUE_TIMER:
        rc = on_requeue_timer(sm, info, ev, out);
        break;
    case JOBSM_EV_HOLD:
        rc = on_hold(info, out);
        break;
    case JOBSM_EV_RELEASE:
        rc = on_release(info, out);
        break;
    case JOBSM_EV_REQUEUE:
        rc = on_requeue(sm, info, out);
        break;
    case JOBSM_EV_DRAIN:
        rc = on_drain(sm, info, ev, out);
        break;
    case JOBSM_EV_PREEMPT:
        rc = on_preempt(sm, info, ev, out);
        break;
    case JOBSM_EV_SUSPEND:
        rc = on_suspend(sm, info, ev, out);
        break;
    case JOBSM_EV_RESUME:
        rc = on_resume(info, ev, out);
        break;
    case JOBSM_EV_COUNT:
        break;
    }
    if (rc == JOBSM_APPLIED)
        mirror(sm, info, out);
    check_invariants(sm, info);
    return rc;
}

void
jobsm_load(jobsm_t *sm, const Wslq__JobInfo *info)
{
    memset(sm, 0, sizeof *sm);
    if (!is_active(info->state) || info->n_allocs == 0)
        return;
    sm->parts = wq_calloc(info->n_allocs, sizeof *sm->parts);
    sm->n_parts = info->n_allocs;
    if (info->state == WSLQ__JOB_STATE__RUNNING)
        for (size_t k = 0; k < sm->n_parts; k++)
            sm->parts[k].started = 1;
    /* what was ending it before the restart (mirror); an unknown name is nothing */
    for (int c = 1; c < JOBSM_CAUSE_COUNT && info->end_cause && info->end_cause[0]; c++)
        if (strcmp(info->end_cause, jobsm_cause_name((jobsm_cause_t) c)) == 0)
            sm->cause = (jobsm_cause_t) c;
    sm->kill_sent = info->kill_sent && sm->cause != JOBSM_CAUSE_NONE;
    sm->failure_recorded = causes[sm->cause].precedence >= 2 && info->failed_node != NULL &&
                           info->failed_node[0] != '\0';
}

int
jobsm_kill_again(const jobsm_t *sm, const Wslq__JobInfo *info, jobsm_out_t *out)
{
    if (!sm->kill_sent || !is_active(info->state))
        return -1;
    const char *why = jobsm_cause_name(sm->cause);
    jobsm_grace_t grace = JOBSM_GRACE_NORMAL;
    switch (sm->cause) {
    case JOBSM_CAUSE_CANCELLED:
        why = WHY_CANCELLED;
        break;
    case JOBSM_CAUSE_TIME_LIMIT:
        why = WHY_TIME_LIMIT;
        break;
    case JOBSM_CAUSE_REQUEUED:
        why = WHY_REQUEUED;
        break;
    case JOBSM_CAUSE_PREEMPTED: /* the reason says who drained, preempted or evicted it */
    case JOBSM_CAUSE_DRAINED:
    case JOBSM_CAUSE_START_TIMEOUT:
        if (sm->cause == JOBSM_CAUSE_PREEMPTED)
            grace = JOBSM_GRACE_PREEMPT;
        if (info->reason != NULL && info->reason[0] != '\0')
            why = info->reason;
        break;
    case JOBSM_CAUSE_NODE_LOST:
        grace = JOBSM_GRACE_GANG;
        why = WHY_NODE_LOST;
        break;
    case JOBSM_CAUSE_RANK_FAILED:
    case JOBSM_CAUSE_OUT_OF_MEMORY:
    case JOBSM_CAUSE_GPU_RESET:
        grace = JOBSM_GRACE_GANG;
        why = WHY_RANK_FAILED;
        break;
    default:
        break;
    }
    out->act |= JOBSM_ACT_KILL;
    out->kill_grace = grace;
    snprintf(out->kill_reason, sizeof out->kill_reason, "%s", why);
    return 0;
}

void
jobsm_fini(jobsm_t *sm)
{
    drop_parts(sm);
}

int
jobsm_part_holds(const jobsm_t *sm, const Wslq__JobInfo *info, size_t k)
{
    return is_active(info->state) && k < sm->n_parts && !sm->parts[k].ended;
}

int
jobsm_placeable(const jobsm_t *sm, const Wslq__JobInfo *info, int64_t now_mono_ms)
{
    return info->state == WSLQ__JOB_STATE__PENDING && !info->held &&
           (sm->not_before_mono == 0 || sm->not_before_mono <= now_mono_ms);
}
