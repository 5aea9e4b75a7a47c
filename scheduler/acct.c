/* Accounting and job updates: wslq history (ended jobs with their GPU-seconds, CPU-seconds,
 * wait and run time), wslq usage (GPU-hours and CPU-hours per user and per node) and wslq
 * update (change a pending job, or lower a running job's time limit). Everything accounting
 * shows is read from the queue's rows (queue.c, schema 4): nothing is kept in memory. */
#include "scheduler/acct.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/parse.h"
#include "scheduler/sched_int.h"

#define ACCT_HISTORY_DEFAULT 100
#define ACCT_HISTORY_MAX     10000

/* ---------- the figures of one ended job ---------- */

void
acct_figures(const Wslq__JobInfo *info, Wslq__AcctJob *a)
{
    const Wslq__JobSpec *s = info->spec;
    a->id = info->id;
    a->array_job_id = info->array_job_id;
    a->array_index = info->array_index;
    a->name = s && s->name ? s->name : "";
    a->user = s && s->user ? s->user : "";
    a->state = info->state;
    a->end_cause = info->reason ? info->reason : "";
    if (info->state == WSLQ__JOB_STATE__COMPLETED && a->end_cause[0] == '\0')
        a->end_cause = "exit 0";
    a->gpus = s ? s->nodes * s->gpus_per_node : 0;
    a->cpus = s ? s->nodes * (s->cpus_per_node ? s->cpus_per_node : 1) : 0;
    a->submit_ms = info->submit_ms;
    a->start_ms = info->start_ms;
    a->end_ms = info->end_ms;
    a->exit_code = info->exit_code;
    if (info->start_ms > 0 && info->submit_ms > 0 && info->start_ms > info->submit_ms)
        a->wait_s = (info->start_ms - info->submit_ms) / 1000;
    if (info->start_ms > 0 && info->end_ms > info->start_ms)
        a->run_s = (info->end_ms - info->start_ms) / 1000;
    a->gpu_seconds = a->run_s * a->gpus;
    a->cpu_seconds = a->run_s * a->cpus;
}

/* ---------- wslq history ---------- */

typedef struct {
    Wslq__AcctJob **jobs;
    Wslq__JobInfo **infos; /* what the jobs' strings point into */
    size_t n, cap;
    size_t bytes;
    int full; /* the reply reached half the frame limit */
} history_t;

static void
history_add(Wslq__JobInfo *info, void *arg)
{
    history_t *h = arg;
    if (h->full) {
        wslq__job_info__free_unpacked(info, NULL);
        return;
    }
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->jobs = wq_realloc(h->jobs, h->cap * sizeof *h->jobs);
        h->infos = wq_realloc(h->infos, h->cap * sizeof *h->infos);
    }
    Wslq__AcctJob *a = wq_malloc(sizeof *a);
    wslq__acct_job__init(a);
    acct_figures(info, a);
    a->n_nodes = info->n_allocs;
    a->nodes = wq_malloc((info->n_allocs ? info->n_allocs : 1) * sizeof *a->nodes);
    for (size_t i = 0; i < info->n_allocs; i++)
        a->nodes[i] = info->allocs[i]->node;
    h->bytes += wslq__acct_job__get_packed_size(a);
    if (h->bytes > WIRE_MAX_FRAME / 2)
        h->full = 1;
    h->jobs[h->n] = a;
    h->infos[h->n] = info;
    h->n++;
}

void
handle_history(sched_t *self, const msg_t *m)
{
    const Wslq__HistoryRequest *r = m->env->history;
    wq_error_t err = {0};
    int admin = WHO_IS_ADMIN(m->who);
    const char *user = r->user[0] ? r->user : m->who->name;
    if (!admin && (r->all_users || strcmp(user, m->who->name) != 0)) {
        self->stats.forbidden_total++;
        wq_fail(&err, WQ_EPERM, "only an admin may see %s history (you are %s)",
                r->all_users ? "every user's" : "another user's", m->who->name);
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    queue_acct_filter_t f = {0};
    /* an insecure cluster knows no sender's name: without --user, every user's */
    f.user = r->all_users || user[0] == '\0' ? NULL : user;
    f.node = r->node[0] ? r->node : NULL;
    f.name = r->name[0] ? r->name : NULL;
    for (size_t i = 0; i < r->n_states; i++) {
        if (!wire_state_is_final(r->states[i])) {
            wq_fail(&err, WQ_EINVAL, "history lists ended jobs only; %s is not an ended state",
                    wire_state_name(r->states[i]));
            out_error(self, m->from, m->env->request_id, &err);
            return;
        }
        f.state_mask |= 1u << r->states[i];
    }
    if (r->since_ms > 0 && r->until_ms > 0 && r->until_ms <= r->since_ms) {
        wq_fail(&err, WQ_EINVAL, "--until must be later than --since");
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    f.since_ms = r->since_ms;
    f.until_ms = r->until_ms;
    f.limit = r->limit ? (r->limit > ACCT_HISTORY_MAX ? ACCT_HISTORY_MAX : r->limit)
                       : ACCT_HISTORY_DEFAULT;
    history_t h = {0};
    long n = queue_history(self->q, &f, history_add, &h, &err);
    if (n < 0) {
        out_error(self, m->from, m->env->request_id, &err);
    } else {
        /* newest first from the queue; oldest first on screen, as sacct */
        for (size_t i = 0; i < h.n / 2; i++) {
            Wslq__AcctJob *t = h.jobs[i];
            h.jobs[i] = h.jobs[h.n - 1 - i];
            h.jobs[h.n - 1 - i] = t;
        }
        Wslq__HistoryReply rep = WSLQ__HISTORY_REPLY__INIT;
        rep.jobs = h.jobs;
        rep.n_jobs = h.n;
        rep.more = h.full || (unsigned long) n == f.limit;
        out_history_reply(self, m->from, m->env->request_id, &rep);
    }
    for (size_t i = 0; i < h.n; i++) {
        free(h.jobs[i]->nodes);
        free(h.jobs[i]);
        wslq__job_info__free_unpacked(h.infos[i], NULL);
    }
    free(h.jobs);
    free(h.infos);
}

/* ---------- wslq usage ---------- */

typedef struct {
    Wslq__UsageRow **rows;
    size_t n, cap;
} usage_set_t;

static Wslq__UsageRow *
usage_row(usage_set_t *s, const char *key, size_t len)
{
    for (size_t i = 0; i < s->n; i++) /* users and nodes are tens, not thousands */
        if (strncmp(s->rows[i]->key, key, len) == 0 && s->rows[i]->key[len] == '\0')
            return s->rows[i];
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->rows = wq_realloc(s->rows, s->cap * sizeof *s->rows);
    }
    Wslq__UsageRow *u = wq_malloc(sizeof *u);
    wslq__usage_row__init(u);
    u->key = wq_malloc(len + 1);
    memcpy(u->key, key, len);
    u->key[len] = '\0';
    s->rows[s->n++] = u;
    return u;
}

typedef struct {
    usage_set_t users, nodes;
    const char *last_user; /* the row the previous job counted in, to skip the search */
    Wslq__UsageRow *last_row;
} usage_t;

static void
usage_add(const queue_acct_row_t *r, void *arg)
{
    usage_t *u = arg;
    int64_t run_s =
        r->start_ms > 0 && r->end_ms > r->start_ms ? (r->end_ms - r->start_ms) / 1000 : 0;
    Wslq__UsageRow *row = u->last_row != NULL && strcmp(u->last_row->key, r->user) == 0
                              ? u->last_row
                              : usage_row(&u->users, r->user, strlen(r->user));
    u->last_row = row;
    row->jobs++;
    row->run_s += run_s;
    row->gpu_s += run_s * r->gpus;
    row->cpu_s += run_s * r->cpus;
    /* per node: each of the job's nodes holds an equal share of its GPUs and CPUs */
    size_t n_nodes = 0;
    for (const char *p = r->nodes; *p; p++)
        n_nodes += *p == ',' && p[1] != '\0';
    for (const char *p = r->nodes; n_nodes > 0 && *p == ',' && p[1] != '\0';) {
        const char *end = strchr(p + 1, ',');
        if (end == NULL)
            break;
        Wslq__UsageRow *nr = usage_row(&u->nodes, p + 1, (size_t) (end - p - 1));
        nr->jobs++;
        nr->run_s += run_s;
        nr->gpu_s += run_s * r->gpus / (int64_t) n_nodes;
        nr->cpu_s += run_s * r->cpus / (int64_t) n_nodes;
        p = end;
    }
}

static int
by_gpu_desc(const void *a, const void *b)
{
    const Wslq__UsageRow *x = *(Wslq__UsageRow *const *) a, *y = *(Wslq__UsageRow *const *) b;
    if (x->gpu_s != y->gpu_s)
        return x->gpu_s > y->gpu_s ? -1 : 1;
    if (x->cpu_s != y->cpu_s)
        return x->cpu_s > y->cpu_s ? -1 : 1;
    return strcmp(x->key, y->key);
}

static int
by_key(const void *a, const void *b)
{
    return strcmp((*(Wslq__UsageRow *const *) a)->key, (*(Wslq__UsageRow *const *) b)->key);
}

static void
usage_set_free(usage_set_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->rows[i]->key);
        free(s->rows[i]);
    }
    free(s->rows);
    memset(s, 0, sizeof *s);
}

int
acct_usage(queue_t *q, int64_t since_ms, int64_t until_ms, Wslq__UsageReply *rep, wq_error_t *err)
{
    usage_t u = {0};
    if (queue_usage(q, since_ms, until_ms, usage_add, &u, err) < 0) {
        usage_set_free(&u.users);
        usage_set_free(&u.nodes);
        return -1;
    }
    if (u.users.n > 1)
        qsort(u.users.rows, u.users.n, sizeof *u.users.rows, by_gpu_desc);
    if (u.nodes.n > 1)
        qsort(u.nodes.rows, u.nodes.n, sizeof *u.nodes.rows, by_key);
    rep->users = u.users.rows;
    rep->n_users = u.users.n;
    rep->nodes = u.nodes.rows;
    rep->n_nodes = u.nodes.n;
    rep->since_ms = since_ms;
    rep->until_ms = until_ms;
    return 0;
}

void
acct_usage_free(Wslq__UsageReply *rep)
{
    usage_set_t users = {rep->users, rep->n_users, rep->n_users};
    usage_set_t nodes = {rep->nodes, rep->n_nodes, rep->n_nodes};
    usage_set_free(&users);
    usage_set_free(&nodes);
    rep->users = rep->nodes = NULL;
    rep->n_users = rep->n_nodes = 0;
}

void
handle_usage(sched_t *self, const msg_t *m)
{
    const Wslq__UsageRequest *r = m->env->usage;
    wq_error_t err = {0};
    int64_t until = r->until_ms > 0 ? r->until_ms : wq_clock_wall_ms() + 1;
    if (r->since_ms > 0 && r->until_ms > 0 && r->until_ms <= r->since_ms) {
        wq_fail(&err, WQ_EINVAL, "--until must be later than --since");
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    Wslq__UsageReply rep = WSLQ__USAGE_REPLY__INIT;
    if (acct_usage(self->q, r->since_ms, until, &rep, &err) < 0) {
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    out_usage_reply(self, m->from, m->env->request_id, &rep);
    acct_usage_free(&rep);
}

/* ---------- wslq update ---------- */

/* Why this job cannot take the update; NULL when it can (err is then untouched). */
static const char *
update_refusal(
    sched_t *self, const Wslq__UpdateRequest *r, const Wslq__JobInfo *info, char *why, size_t size)
{
    const Wslq__JobSpec *s = info->spec;
    if (info->state != WSLQ__JOB_STATE__PENDING) {
        if (r->set_priority || r->set_gpus || r->set_name)
            return "a started job may only have its time limit lowered (--time)";
        char now[32], asked[32];
        if (r->time_limit_s == 0 || (s->time_limit_s != 0 && r->time_limit_s >= s->time_limit_s)) {
            snprintf(
                why, size, "a started job's time limit can only be lowered (it is %s, asked %s)",
                s->time_limit_s ? wq_format_duration((int64_t) s->time_limit_s, now, sizeof now)
                                : "none",
                r->time_limit_s ? wq_format_duration((int64_t) r->time_limit_s, asked, sizeof asked)
                                : "none");
            return why;
        }
        return NULL;
    }
    /* A pending job: the changed spec must be one submit would take. */
    Wslq__JobSpec copy = *s;
    if (r->set_time)
        copy.time_limit_s = r->time_limit_s;
    if (r->set_priority)
        copy.priority = r->priority;
    if (r->set_gpus)
        copy.gpus_per_node = r->gpus_per_node;
    if (r->set_name)
        copy.name = r->name;
    wq_error_t err = {0};
    size_t n_nodes = 0;
    if (wire_validate_spec(&copy, &err) < 0 || place_admit(self, &copy, &n_nodes, &err) < 0) {
        const char *text = err.text;
        if (strncmp(text, "job refused: ", 13) == 0) /* place_admit speaks of a submit */
            text += 13;
        snprintf(why, size, "%s", text);
        return why;
    }
    return NULL;
}

/* Apply the update to one job, with an event row saying what changed. */
static void
update_apply(sched_t *self, const msg_t *m, job_t *job, const Wslq__UpdateRequest *r)
{
    Wslq__JobInfo *info = job->info;
    Wslq__JobSpec *s = info->spec;
    char detail[512] = "";
    size_t off = 0;
    char a[32], b[32];
#define DETAIL(...)                                                                             \
    do {                                                                                        \
        if (off < sizeof detail)                                                                \
            off += (size_t) snprintf(detail + off, sizeof detail - off, "%s", off ? "; " : ""); \
        if (off < sizeof detail)                                                                \
            off += (size_t) snprintf(detail + off, sizeof detail - off, __VA_ARGS__);           \
    } while (0)
    if (r->set_time && r->time_limit_s != s->time_limit_s) {
        DETAIL(
            "time limit %s -> %s",
            s->time_limit_s ? wq_format_duration((int64_t) s->time_limit_s, a, sizeof a) : "none",
            r->time_limit_s ? wq_format_duration((int64_t) r->time_limit_s, b, sizeof b) : "none");
        s->time_limit_s = r->time_limit_s;
    }
    if (r->set_priority && r->priority != s->priority) {
        DETAIL("priority %d -> %d", s->priority, r->priority);
        /* the pending set is ordered by priority: leave it and join again at the new place */
        place_track(self, job, 1);
        s->priority = r->priority;
        place_track(self, job, 0);
    }
    if (r->set_gpus && r->gpus_per_node != s->gpus_per_node) {
        DETAIL("GPUs per node %u -> %u", s->gpus_per_node, r->gpus_per_node);
        s->gpus_per_node = r->gpus_per_node;
    }
    if (r->set_name && strcmp(r->name, s->name) != 0) {
        DETAIL("name %s -> %s", s->name, r->name);
        wire_set_str(&s->name, r->name);
    }
#undef DETAIL
    if (off == 0)
        return; /* nothing differs */
    if (off < sizeof detail)
        snprintf(detail + off, sizeof detail - off, " (by %s)", m->who->name);
    log_info(JOB_FMT " updated: %s", info->id, detail);
    jobs_save(self, job);
    Wslq__JobEvent ev = WSLQ__JOB_EVENT__INIT;
    ev.ts_ms = wq_clock_wall_ms();
    ev.state = info->state;
    ev.reason = "updated";
    ev.node = "";
    ev.detail = detail;
    ev.attempt = info->attempt;
    wq_error_t err = {0};
    sched_db_begin(self);
    if (!self->failed && queue_add_event(self->q, info->id, &ev, &err) < 0)
        sched_fatal(self, &err);
    if (info->state == WSLQ__JOB_STATE__PENDING)
        self->dirty = 1; /* it may fit now, or its place in line changed */
}

void
handle_update(sched_t *self, const msg_t *m)
{
    const Wslq__UpdateRequest *r = m->env->update;
    job_t **jobs = NULL;
    unsigned char *alone = NULL;
    size_t n = 0;
    if (jobs_resolve_selectors(self, m, r->selectors, r->n_selectors, "update", &jobs, &alone, &n) <
        0)
        return;
    /* Every job is checked before anything changes: one named alone that cannot take the
     * update fails the request; in an array or a task list such jobs are passed over. */
    size_t n_ok = 0;
    char why[256], first_why[256] = "";
    for (size_t i = 0; i < n; i++) {
        const char *no = update_refusal(self, r, jobs[i]->info, why, sizeof why);
        if (no == NULL) {
            jobs[n_ok++] = jobs[i];
            continue;
        }
        if (first_why[0] == '\0')
            snprintf(first_why, sizeof first_why, "%s", no);
        if (alone[i]) {
            wq_error_t err;
            wq_fail(&err, WQ_EINVAL, "cannot update job %" PRIu64 " (%s): %s", jobs[i]->info->id,
                    wire_state_name(jobs[i]->info->state), no);
            out_error(self, m->from, m->env->request_id, &err);
            free(jobs);
            free(alone);
            return;
        }
    }
    if (n_ok == 0) {
        wq_error_t err;
        wq_fail(&err, WQ_EINVAL, "no job there can be updated: %s", first_why);
        out_error(self, m->from, m->env->request_id, &err);
        free(jobs);
        free(alone);
        return;
    }
    uint64_t *done = wq_malloc(n_ok * sizeof *done);
    for (size_t i = 0; i < n_ok; i++) {
        update_apply(self, m, jobs[i], r);
        done[i] = jobs[i]->info->id;
    }
    Wslq__UpdateReply rep = WSLQ__UPDATE_REPLY__INIT;
    rep.job_ids = done;
    rep.n_job_ids = n_ok;
    out_update_reply(self, m->from, m->env->request_id, &rep);
    free(done);
    free(jobs);
    free(alone);
}
