/* Fair-share and per-user limits (formulas and settings: fairshare.h). The pieces:
 * - the settings ([scheduler] keys) and their checks;
 * - the usage table: per user, the ended runs' GPU- and CPU-seconds decayed with the
 *   half-life, rebuilt from the queue's ended jobs at start and kept as jobs stop running;
 *   the counts of pending and running jobs and GPUs, kept as jobs change (fairshare_track);
 * - the order of a full pass: the pending set (place.c) stays sorted by (priority, id); within
 *   one user and one priority that is also the effective order (same fair-share factor, the
 *   older first), so the pass merges those runs with a heap keyed by the effective priority
 *   of each run's first job: O(n log r) for n pending jobs in r runs;
 * - the running limits (a job waits with WAIT_LIMIT), the pending limit at submit;
 * - wslq share, and the effective priority in wslq show and wslq why. */
#include "scheduler/fairshare.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/parse.h"
#include "scheduler/sched_int.h"

#define FS_COUNTED_PEND 1u
#define FS_COUNTED_RUN  2u
#define FS_NONE         SIZE_MAX

/* ---------- settings ---------- */

void
fs_config_init(fs_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->halflife_ms = FS_DEFAULT_HALFLIFE_MS;
    c->max_age_ms = FS_DEFAULT_MAX_AGE_MS;
    c->w_priority = FS_DEFAULT_W_PRIORITY;
    c->w_fairshare = FS_DEFAULT_W_FAIRSHARE;
    c->w_age = FS_DEFAULT_W_AGE;
}

void
fs_config_free(fs_config_t *c)
{
    for (size_t i = 0; i < c->n_users; i++)
        free(c->users[i].name);
    free(c->users);
    c->users = NULL;
    c->n_users = 0;
}

static int
cmp_conf_user(const void *a, const void *b)
{
    return strcmp(((const fs_user_conf_t *) a)->name, ((const fs_user_conf_t *) b)->name);
}

void
fs_config_copy(fs_config_t *dst, const fs_config_t *src)
{
    *dst = *src;
    dst->users = wq_calloc(src->n_users ? src->n_users : 1, sizeof *dst->users);
    for (size_t i = 0; i < src->n_users; i++) {
        dst->users[i] = src->users[i];
        dst->users[i].name = wq_strdup(src->users[i].name);
    }
    if (dst->n_users > 1)
        qsort(dst->users, dst->n_users, sizeof *dst->users, cmp_conf_user);
}

static fs_user_conf_t *
conf_user(fs_config_t *c, const char *name, wq_error_t *err)
{
    for (size_t i = 0; i < c->n_users; i++)
        if (strcmp(c->users[i].name, name) == 0)
            return &c->users[i];
    if (c->n_users >= FS_MAX_USERS) {
        wq_fail(err, WQ_ELIMIT, "more than %d users with their own settings", FS_MAX_USERS);
        return NULL;
    }
    c->users = wq_realloc(c->users, (c->n_users + 1) * sizeof *c->users);
    fs_user_conf_t *u = &c->users[c->n_users++];
    memset(u, 0, sizeof *u);
    u->name = wq_strdup(name);
    return u;
}

/* A duration: bare numbers are seconds; more than 0. */
static int
parse_time(const char *v, const char *what, int64_t *ms, wq_error_t *err)
{
    char *tmp = NULL;
    size_t n = strlen(v);
    if (n > 0 && v[n - 1] >= '0' && v[n - 1] <= '9')
        v = tmp = wq_asprintf("%ss", v);
    int64_t s;
    int rc = wq_parse_duration(v, what, &s, err);
    free(tmp);
    if (rc < 0)
        return -1;
    if (s <= 0)
        return wq_fail(err, WQ_EINVAL, "%s must be more than 0", what);
    *ms = s * 1000;
    return 0;
}

static int
valid_user(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > WIRE_MAX_NAME)
        return 0;
    for (const char *p = name; *p; p++)
        if ((unsigned char) *p <= 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

int
fs_config_apply(fs_config_t *c, const char *key, const char *value, wq_error_t *err)
{
    char base[64];
    const char *dot = strchr(key, '.');
    size_t blen = dot ? (size_t) (dot - key) : strlen(key);
    if (blen >= sizeof base)
        return 0;
    memcpy(base, key, blen);
    base[blen] = '\0';
    for (char *p = base; *p; p++)
        if (*p == '_')
            *p = '-';
    const char *user = dot ? dot + 1 : NULL;
    static const char *const ours[] = {"share",
                                       "fairshare-halflife",
                                       "max-age",
                                       "priority-weight",
                                       "fairshare-weight",
                                       "age-weight",
                                       "max-running-gpus",
                                       "max-running-jobs",
                                       "max-pending-jobs"};
    int mine = 0;
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
        mine |= strcmp(base, ours[i]) == 0;
    if (!mine)
        return 0;
    int per_user = strcmp(base, "share") == 0 || strncmp(base, "max-running-", 12) == 0 ||
                   strcmp(base, "max-pending-jobs") == 0;
    if (user != NULL && !per_user)
        return wq_fail(err, WQ_EINVAL, "%s is lab-wide: it takes no user (%s)", base, key);
    if (strcmp(base, "share") == 0 && user == NULL)
        return wq_fail(err, WQ_EINVAL, "share needs a user: share.NAME = NUMBER");
    if (user != NULL && !valid_user(user))
        return wq_fail(err, WQ_EINVAL, "%s: '%.64s' is not a user name", base, user);
    if (strcmp(base, "fairshare-halflife") == 0)
        return parse_time(value, "fairshare-halflife", &c->halflife_ms, err) < 0 ? -1 : 1;
    if (strcmp(base, "max-age") == 0)
        return parse_time(value, "max-age", &c->max_age_ms, err) < 0 ? -1 : 1;
    if (strstr(base, "-weight") != NULL) {
        int64_t w;
        if (wq_parse_int(value, 0, 1000000, base, &w, err) < 0)
            return -1;
        if (strcmp(base, "priority-weight") == 0)
            c->w_priority = w;
        else if (strcmp(base, "fairshare-weight") == 0)
            c->w_fairshare = w;
        else
            c->w_age = w;
        return 1;
    }
    if (strcmp(base, "share") == 0) {
        char *end = NULL;
        double s = strtod(value, &end);
        if (end == value || *end != '\0' || !isfinite(s) || s <= 0 || s > 1e6)
            return wq_fail(err, WQ_EINVAL,
                           "share.%s: '%.40s' is not a number above 0 (at most "
                           "1000000)",
                           user, value);
        fs_user_conf_t *u = conf_user(c, user, err);
        if (u == NULL)
            return -1;
        u->share = s;
        return 1;
    }
    /* the limits */
    int64_t n;
    if (wq_parse_int(value, 0, 1000000, key, &n, err) < 0)
        return -1;
    int64_t *lab = strcmp(base, "max-running-gpus") == 0   ? &c->max_gpus
                   : strcmp(base, "max-running-jobs") == 0 ? &c->max_jobs
                                                           : &c->max_pend;
    if (user == NULL) {
        *lab = n;
        return 1;
    }
    fs_user_conf_t *u = conf_user(c, user, err);
    if (u == NULL)
        return -1;
    int64_t *own = lab == &c->max_gpus   ? &u->max_gpus
                   : lab == &c->max_jobs ? &u->max_jobs
                                         : &u->max_pend;
    *own = n == 0 ? -1 : n; /* 0 for a user: no limit for them, whatever the lab-wide one */
    return 1;
}

/* ---------- the arithmetic ---------- */

double
fs_decay(double value, int64_t dt_ms, int64_t halflife_ms)
{
    if (dt_ms <= 0 || halflife_ms <= 0 || value == 0)
        return value;
    return value * exp2(-(double) dt_ms / (double) halflife_ms);
}

double
fs_factor(double norm_usage, double norm_share)
{
    if (norm_usage <= 0)
        return 1.0;
    if (norm_share <= 0)
        return 0.0;
    return exp2(-norm_usage / norm_share);
}

double
fs_age_factor(int64_t age_ms, int64_t max_age_ms)
{
    if (age_ms <= 0 || max_age_ms <= 0)
        return 0.0;
    return age_ms >= max_age_ms ? 1.0 : (double) age_ms / (double) max_age_ms;
}

/* ---------- the usage table ---------- */

typedef struct fs_core {
    fs_table_t t;
    fs_user_t **by_no; /* users by number (the order they were first seen) */
    size_t cap_no;
    /* the merge of a full pass */
    size_t *next; /* per pending index: the next index of its run, FS_NONE at its end */
    size_t cap_next;
    size_t *last;  /* per user number: the last index of its run in the current priority */
    size_t *stamp; /* per user number: the priority run 'last' belongs to */
    size_t cap_user;
    struct heap_item {
        double key;
        uint64_t id;
        size_t i;
    } * heap;
    size_t n_heap, cap_heap;
    int64_t now; /* wall ms of the pass */
} fs_core_t;

void
fs_table_init(fs_table_t *t, const fs_config_t *cfg)
{
    memset(t, 0, sizeof *t);
    fs_config_copy(&t->cfg, cfg);
}

void
fs_table_fini(fs_table_t *t)
{
    for (size_t i = 0; i < t->n_users; i++) {
        free(t->users[i]->name);
        free(t->users[i]);
    }
    free(t->users);
    fs_config_free(&t->cfg);
    memset(t, 0, sizeof *t);
}

static const fs_user_conf_t *
find_conf(const fs_config_t *c, const char *name)
{
    size_t lo = 0, hi = c->n_users;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int d = strcmp(c->users[mid].name, name);
        if (d == 0)
            return &c->users[mid];
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int64_t
limit_of(int64_t own, int64_t lab)
{
    return own > 0 ? own : own < 0 ? 0 : lab;
}

/* The index of name in t->users, or where it would go (*found 0). */
static size_t
user_pos(const fs_table_t *t, const char *name, int *found)
{
    size_t lo = 0, hi = t->n_users;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int d = strcmp(t->users[mid]->name, name);
        if (d == 0) {
            *found = 1;
            return mid;
        }
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

/* A new user's settings: its configured share and limits, else the lab-wide ones. */
static void
user_defaults(const fs_table_t *t, fs_user_t *u, const char *name)
{
    u->name = wq_strdup(name);
    const fs_user_conf_t *uc = find_conf(&t->cfg, u->name);
    u->share = uc && uc->share > 0 ? uc->share : 1.0;
    u->max_gpus = limit_of(uc ? uc->max_gpus : 0, t->cfg.max_gpus);
    u->max_jobs = limit_of(uc ? uc->max_jobs : 0, t->cfg.max_jobs);
    u->max_pend = limit_of(uc ? uc->max_pend : 0, t->cfg.max_pend);
    u->factor = 1.0;
}

fs_user_t *
fs_user(fs_table_t *t, const char *name)
{
    int found;
    size_t i = user_pos(t, name ? name : "", &found);
    if (found)
        return t->users[i];
    fs_user_t *u = wq_calloc(1, sizeof *u);
    user_defaults(t, u, name ? name : "");
    t->users = wq_realloc(t->users, (t->n_users + 1) * sizeof *t->users);
    memmove(&t->users[i + 1], &t->users[i], (t->n_users - i) * sizeof *t->users);
    t->users[i] = u;
    t->n_users++;
    return u;
}

void
fs_add_usage(fs_table_t *t, fs_user_t *u, double gpu_s, double cpu_s, int64_t end_ms)
{
    if (end_ms > u->ref_ms) { /* bring what it has up to end_ms */
        u->gpu_s = fs_decay(u->gpu_s, end_ms - u->ref_ms, t->cfg.halflife_ms);
        u->cpu_s = fs_decay(u->cpu_s, end_ms - u->ref_ms, t->cfg.halflife_ms);
        u->ref_ms = end_ms;
    }
    u->gpu_s += fs_decay(gpu_s, u->ref_ms - end_ms, t->cfg.halflife_ms);
    u->cpu_s += fs_decay(cpu_s, u->ref_ms - end_ms, t->cfg.halflife_ms);
}

double
fs_usage_at(const fs_table_t *t, const fs_user_t *u, int64_t now_ms, double *cpu_s)
{
    if (cpu_s != NULL)
        *cpu_s = fs_decay(u->cpu_s, now_ms - u->ref_ms, t->cfg.halflife_ms);
    return fs_decay(u->gpu_s, now_ms - u->ref_ms, t->cfg.halflife_ms);
}

/* A user is counted in the shares when it used something or has jobs. */
static int
user_active(const fs_table_t *t, const fs_user_t *u, int64_t now_ms, double *g, double *c)
{
    double cpu;
    *g = fs_usage_at(t, u, now_ms, &cpu) + u->run_gpu_s;
    *c = cpu + u->run_cpu_s;
    return *g > 1e-9 || *c > 1e-9 || u->n_pend > 0 || u->n_run > 0;
}

void
fs_refresh(fs_table_t *t, int64_t now_ms)
{
    double sum_g = 0, sum_c = 0, sum_share = 0;
    for (size_t i = 0; i < t->n_users; i++) {
        double g, c;
        if (!user_active(t, t->users[i], now_ms, &g, &c))
            continue;
        sum_g += g;
        sum_c += c;
        sum_share += t->users[i]->share;
    }
    int by_gpu = sum_g > 1e-9;
    for (size_t i = 0; i < t->n_users; i++) {
        fs_user_t *u = t->users[i];
        double g, c;
        int active = user_active(t, u, now_ms, &g, &c);
        double use = by_gpu ? g : c, sum = by_gpu ? sum_g : sum_c;
        u->norm_usage = sum > 1e-9 ? use / sum : 0;
        u->norm_share = u->share / (active ? sum_share : sum_share + u->share);
        u->factor = fs_factor(u->norm_usage, u->norm_share);
    }
    t->refreshed_ms = now_ms;
}

/* ---------- the core's glue ---------- */

static uint32_t
job_gpus(const Wslq__JobSpec *s)
{
    return (s->nodes ? s->nodes : 1) * s->gpus_per_node;
}

static uint32_t
job_cpus(const Wslq__JobSpec *s)
{
    return (s->nodes ? s->nodes : 1) * (s->cpus_per_node ? s->cpus_per_node : 1);
}

static fs_user_t *
core_user(fs_core_t *c, const char *name)
{
    size_t before = c->t.n_users;
    fs_user_t *u = fs_user(&c->t, name);
    if (c->t.n_users != before) { /* new: give it the next number */
        if (before == c->cap_no) {
            c->cap_no = c->cap_no ? 2 * c->cap_no : 16;
            c->by_no = wq_realloc(c->by_no, c->cap_no * sizeof *c->by_no);
        }
        c->by_no[before] = u;
        u->no = (uint32_t) before;
    }
    return u;
}

static void
load_ended(Wslq__JobInfo *info, void *arg)
{
    fs_core_t *c = arg;
    if (info->spec != NULL && info->start_ms > 0 && info->end_ms >= info->start_ms) {
        fs_user_t *u = core_user(c, info->spec->user);
        double s = (double) (info->end_ms - info->start_ms) / 1000.0;
        fs_add_usage(&c->t, u, job_gpus(info->spec) * s, job_cpus(info->spec) * s, info->end_ms);
    }
    wslq__job_info__free_unpacked(info, NULL);
}

int
fairshare_open(sched_t *self, wq_error_t *err)
{
    fs_core_t *c = wq_calloc(1, sizeof *c);
    fs_config_t defaults;
    fs_config_init(&defaults);
    fs_table_init(&c->t, self->cfg.fairshare ? self->cfg.fairshare : &defaults);
    self->fs = c;
    self->cfg.fairshare = NULL; /* the caller's; ours is c->t.cfg */
    queue_filter_t f = {.limit = 0xffffffffu};
    for (int s = WSLQ__JOB_STATE__COMPLETED; s < WIRE_JOB_STATES; s++)
        f.state_mask |= 1u << s;
    if (queue_list(self->q, &f, load_ended, c, err) < 0)
        return -1;
    log_info("fair-share: usage of %zu users from the ended jobs (half-life %" PRId64 " s)",
             c->t.n_users, c->t.cfg.halflife_ms / 1000);
    return 0;
}

void
fairshare_close(sched_t *self)
{
    fs_core_t *c = self->fs;
    if (c == NULL)
        return;
    fs_table_fini(&c->t);
    free(c->by_no);
    free(c->next);
    free(c->last);
    free(c->stamp);
    free(c->heap);
    free(c);
    self->fs = NULL;
}

uint32_t
fairshare_user_no(sched_t *self, job_t *job)
{
    if (job->fs_user == NULL)
        job->fs_user = core_user(self->fs, job->info->spec->user);
    return job->fs_user->no;
}

void
fairshare_track(sched_t *self, job_t *job, int gone)
{
    fs_core_t *c = self->fs;
    if (c == NULL)
        return;
    fairshare_user_no(self, job);
    fs_user_t *u = job->fs_user;
    const Wslq__JobInfo *info = job->info;
    unsigned want = 0;
    if (!gone && info->state == WSLQ__JOB_STATE__PENDING)
        want |= FS_COUNTED_PEND;
    if (!gone &&
        (info->state == WSLQ__JOB_STATE__STARTING || info->state == WSLQ__JOB_STATE__RUNNING))
        want |= FS_COUNTED_RUN;
    unsigned have = job->fs_counted;
    if ((want ^ have) & FS_COUNTED_PEND) {
        if (want & FS_COUNTED_PEND)
            u->n_pend++;
        else
            u->n_pend--;
    }
    uint32_t g = job_gpus(info->spec);
    if ((want & FS_COUNTED_RUN) && !(have & FS_COUNTED_RUN)) {
        u->n_run++;
        u->gpus_run += g;
        job->fs_start_ms = info->start_ms > 0 ? info->start_ms : wq_clock_wall_ms();
    } else if (!(want & FS_COUNTED_RUN) && (have & FS_COUNTED_RUN)) {
        u->n_run--;
        u->gpus_run -= g;
        int64_t end = info->end_ms > 0 && wire_state_is_final(info->state) ? info->end_ms
                                                                           : wq_clock_wall_ms();
        double s = end > job->fs_start_ms ? (double) (end - job->fs_start_ms) / 1000.0 : 0;
        fs_add_usage(&c->t, u, g * s, job_cpus(info->spec) * s, end);
    }
    job->fs_counted = want;
}

/* Every user's factor now, with the running jobs' time so far. */
static void
refresh(sched_t *self)
{
    fs_core_t *c = self->fs;
    int64_t now = wq_clock_wall_ms();
    for (size_t i = 0; i < c->t.n_users; i++)
        c->t.users[i]->run_gpu_s = c->t.users[i]->run_cpu_s = 0;
    size_t n;
    job_t *const *live = place_live(self, &n);
    for (size_t j = 0; j < n; j++) {
        const job_t *job = live[j];
        if (!(job->fs_counted & FS_COUNTED_RUN) || now <= job->fs_start_ms)
            continue;
        double s = (double) (now - job->fs_start_ms) / 1000.0;
        job->fs_user->run_gpu_s += job_gpus(job->info->spec) * s;
        job->fs_user->run_cpu_s += job_cpus(job->info->spec) * s;
    }
    fs_refresh(&c->t, now);
    c->now = now;
}

static double
age_of(const fs_core_t *c, const Wslq__JobInfo *info)
{
    return fs_age_factor(c->now - info->submit_ms, c->t.cfg.max_age_ms);
}

/* The effective priority (after refresh). */
static double
key_of(const fs_core_t *c, const job_t *job)
{
    const fs_config_t *cfg = &c->t.cfg;
    double f = job->fs_user ? job->fs_user->factor : 1.0;
    return (double) cfg->w_priority * job->info->spec->priority + (double) cfg->w_fairshare * f +
           (double) cfg->w_age * age_of(c, job->info);
}

/* The same from a pending set entry: no look at the job itself (the merge is the pass's
 * inner loop over up to every pending job; the entries are one array). */
static double
key_of_entry(const fs_core_t *c, const pend_entry_t *e)
{
    const fs_config_t *cfg = &c->t.cfg;
    return (double) cfg->w_priority * e->priority +
           (double) cfg->w_fairshare * c->by_no[e->user]->factor +
           (double) cfg->w_age * fs_age_factor(c->now - e->submit_ms, cfg->max_age_ms);
}

static int
item_before(const struct heap_item *a, const struct heap_item *b)
{
    return a->key != b->key ? a->key > b->key : a->id < b->id;
}

static void
heap_down(fs_core_t *c, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        if (l < c->n_heap && item_before(&c->heap[l], &c->heap[best]))
            best = l;
        if (r < c->n_heap && item_before(&c->heap[r], &c->heap[best]))
            best = r;
        if (best == i)
            return;
        struct heap_item tmp = c->heap[i];
        c->heap[i] = c->heap[best];
        c->heap[best] = tmp;
        i = best;
    }
}

static void
heap_push(fs_core_t *c, const struct heap_item *it)
{
    if (c->n_heap == c->cap_heap) {
        c->cap_heap = c->cap_heap ? 2 * c->cap_heap : 64;
        c->heap = wq_realloc(c->heap, c->cap_heap * sizeof *c->heap);
    }
    size_t i = c->n_heap++;
    c->heap[i] = *it;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!item_before(&c->heap[i], &c->heap[up]))
            break;
        struct heap_item tmp = c->heap[i];
        c->heap[i] = c->heap[up];
        c->heap[up] = tmp;
        i = up;
    }
}

/* The first index from i on (along its run) whose job is still pending, or FS_NONE. */
static size_t
run_live(const sched_t *self, const fs_core_t *c, size_t i)
{
    while (i != FS_NONE && (i >= self->n_pend || self->pend[i].job == NULL))
        i = i < self->n_pend ? c->next[i] : FS_NONE;
    return i;
}

void
fairshare_order_begin(sched_t *self)
{
    fs_core_t *c = self->fs;
    refresh(self);
    size_t n = self->n_pend;
    if (n > c->cap_next) {
        c->cap_next = n + n / 2;
        c->next = wq_realloc(c->next, c->cap_next * sizeof *c->next);
    }
    if (c->t.n_users > c->cap_user) {
        size_t old = c->cap_user;
        c->cap_user = c->t.n_users * 2;
        c->last = wq_realloc(c->last, c->cap_user * sizeof *c->last);
        c->stamp = wq_realloc(c->stamp, c->cap_user * sizeof *c->stamp);
        for (size_t u = old; u < c->cap_user; u++)
            c->stamp[u] = 0;
    }
    for (size_t u = 0; u < c->t.n_users; u++)
        c->stamp[u] = 0;
    c->n_heap = 0;
    size_t run = 0;
    int32_t prio = 0;
    for (size_t i = 0; i < n; i++) {
        const pend_entry_t *e = &self->pend[i];
        if (e->job == NULL)
            continue;
        if (run == 0 || e->priority != prio) {
            prio = e->priority;
            run++;
        }
        uint32_t u = e->user;
        c->next[i] = FS_NONE;
        if (c->stamp[u] != run) { /* the first of this user at this priority: a new run */
            c->stamp[u] = run;
            struct heap_item it = {.key = key_of_entry(c, e), .id = e->id, .i = i};
            heap_push(c, &it);
        } else {
            c->next[c->last[u]] = i;
        }
        c->last[u] = i;
    }
}

size_t
fairshare_order_next(sched_t *self)
{
    fs_core_t *c = self->fs;
    while (c->n_heap > 0) {
        struct heap_item top = c->heap[0];
        size_t j = top.i < self->n_pend ? run_live(self, c, c->next[top.i]) : FS_NONE;
        if (j != FS_NONE) { /* the run's next job takes its place */
            c->heap[0] = (struct heap_item){
                .key = key_of_entry(c, &self->pend[j]), .id = self->pend[j].id, .i = j};
        } else {
            c->heap[0] = c->heap[--c->n_heap];
        }
        heap_down(c, 0);
        /* a job the pass already started or ended left a hole; an entry that moved (a job
         * became pending during the pass) is left to the next pass */
        if (top.i < self->n_pend && self->pend[top.i].job != NULL && self->pend[top.i].id == top.id)
            return top.i;
    }
    return self->n_pend;
}

typedef struct {
    double key;
    job_t *job;
} keyed_t;

static int
cmp_keyed(const void *a, const void *b)
{
    const keyed_t *x = a, *y = b;
    if (x->key != y->key)
        return x->key > y->key ? -1 : 1;
    return x->job->info->id < y->job->info->id ? -1 : x->job->info->id > y->job->info->id;
}

void
fairshare_sort(sched_t *self, job_t **jobs, size_t n)
{
    if (n < 2)
        return;
    fs_core_t *c = self->fs;
    refresh(self);
    keyed_t *k = wq_malloc(n * sizeof *k);
    for (size_t i = 0; i < n; i++) {
        fairshare_user_no(self, jobs[i]);
        k[i] = (keyed_t){.key = key_of(c, jobs[i]), .job = jobs[i]};
    }
    qsort(k, n, sizeof *k, cmp_keyed);
    for (size_t i = 0; i < n; i++)
        jobs[i] = k[i].job;
    free(k);
}

int
fairshare_before(sched_t *self, const job_t *a, const job_t *b)
{
    fs_core_t *c = self->fs;
    if (c->now == 0 || c->t.refreshed_ms != c->now)
        refresh(self);
    double ka = key_of(c, a), kb = key_of(c, b);
    return ka != kb ? ka > kb : a->info->id < b->info->id;
}

int
fairshare_over_limit(sched_t *self, job_t *job)
{
    fairshare_user_no(self, job);
    const fs_user_t *u = job->fs_user;
    char why[160];
    uint32_t g = job_gpus(job->info->spec);
    if (u->max_jobs > 0 && u->n_run >= u->max_jobs)
        snprintf(why, sizeof why, "user %s runs %u job%s, the limit is %" PRId64, u->name, u->n_run,
                 u->n_run == 1 ? "" : "s", u->max_jobs);
    else if (u->max_gpus > 0 && g > 0 && u->gpus_run + g > u->max_gpus)
        snprintf(why, sizeof why,
                 "user %s runs %u GPU%s, the limit is %" PRId64 " (this job needs %u)", u->name,
                 u->gpus_run, u->gpus_run == 1 ? "" : "s", u->max_gpus, g);
    else
        return 0;
    jobs_set_reason(self, job, WSLQ__WAIT_REASON__WAIT_LIMIT, why);
    return 1;
}

int
fairshare_admit(sched_t *self, const Wslq__JobSpec *spec, size_t n, wq_error_t *err)
{
    fs_user_t *u = core_user(self->fs, spec->user);
    uint32_t g = job_gpus(spec);
    if (u->max_gpus > 0 && g > u->max_gpus)
        return wq_fail(err, WQ_ELIMIT,
                       "job refused: it needs %u GPUs and user %s may run at most %" PRId64
                       " at once",
                       g, u->name, u->max_gpus);
    if (u->max_pend > 0 && (uint64_t) u->n_pend + n > (uint64_t) u->max_pend) {
        if (n == 1)
            return wq_fail(err, WQ_ELIMIT,
                           "job refused: user %s has %u pending jobs, the limit is %" PRId64,
                           u->name, u->n_pend, u->max_pend);
        return wq_fail(err, WQ_ELIMIT,
                       "job refused: user %s has %u pending jobs and the array adds %zu; the "
                       "limit is %" PRId64,
                       u->name, u->n_pend, n, u->max_pend);
    }
    return 0;
}

void
fairshare_fill(sched_t *self, const job_t *job, Wslq__JobInfo *shown)
{
    if (job == NULL || job->info->state != WSLQ__JOB_STATE__PENDING || job->fs_user == NULL)
        return;
    fs_core_t *c = self->fs;
    refresh(self);
    shown->priority_known = 1;
    shown->effective_priority = key_of(c, job);
    shown->fairshare_factor = job->fs_user->factor;
    shown->age_factor = age_of(c, job->info);
    shown->priority_weight = (double) c->t.cfg.w_priority;
    shown->fairshare_weight = (double) c->t.cfg.w_fairshare;
    shown->age_weight = (double) c->t.cfg.w_age;
}

void
fairshare_why(sched_t *self, const job_t *job, char *buf, size_t size)
{
    fs_core_t *c = self->fs;
    refresh(self);
    const fs_user_t *u = job->fs_user;
    const fs_config_t *cfg = &c->t.cfg;
    double cpu, g = fs_usage_at(&c->t, u, c->now, &cpu) + u->run_gpu_s;
    snprintf(buf, size,
             "effective priority %.1f = %" PRId64 " x %d (priority) + %" PRId64
             " x %.3f (fair-share of %s: %.2f GPU-hours used, %.1f%% of all use, share %.1f%%) "
             "+ %" PRId64 " x %.3f (age)",
             key_of(c, job), cfg->w_priority, job->info->spec->priority, cfg->w_fairshare,
             u->factor, u->name, g / 3600.0, 100.0 * u->norm_usage, 100.0 * u->norm_share,
             cfg->w_age, age_of(c, job->info));
}

void
handle_share(sched_t *self, const msg_t *m)
{
    fs_core_t *c = self->fs;
    const char *want = m->env->share->user;
    int one = want != NULL && want[0] != '\0';
    refresh(self);
    int found = 0;
    if (one)
        user_pos(&c->t, want, &found);
    fs_user_t unknown = {0}; /* asked for by name, never seen: its settings, no use */
    if (one && !found) {
        user_defaults(&c->t, &unknown, want);
        double sum_share = 0;
        for (size_t i = 0; i < c->t.n_users; i++) {
            double g, cpu;
            if (user_active(&c->t, c->t.users[i], c->now, &g, &cpu))
                sum_share += c->t.users[i]->share;
        }
        unknown.norm_share = unknown.share / (sum_share + unknown.share);
    }
    Wslq__ShareReply rep = WSLQ__SHARE_REPLY__INIT;
    Wslq__ShareUser *rows = wq_calloc(c->t.n_users ? c->t.n_users : 1, sizeof *rows);
    Wslq__ShareUser **ptrs = wq_calloc(c->t.n_users ? c->t.n_users : 1, sizeof *ptrs);
    size_t n = one && !found ? 1 : c->t.n_users;
    for (size_t i = 0; i < n && rep.n_users < WIRE_MAX_LIST; i++) {
        fs_user_t *u = one && !found ? &unknown : c->t.users[i];
        double g, cpu;
        int active = user_active(&c->t, u, c->now, &g, &cpu);
        if (one ? strcmp(u->name, want) != 0 : !active)
            continue;
        Wslq__ShareUser *r = &rows[rep.n_users];
        wslq__share_user__init(r);
        r->user = u->name;
        r->gpu_hours = g / 3600.0;
        r->cpu_hours = cpu / 3600.0;
        r->share = u->share;
        r->norm_share = u->norm_share;
        r->norm_usage = u->norm_usage;
        r->fairshare_factor = u->factor;
        r->running = u->n_run;
        r->pending = u->n_pend;
        r->gpus_running = u->gpus_run;
        r->max_running_gpus = (uint32_t) u->max_gpus;
        r->max_running_jobs = (uint32_t) u->max_jobs;
        r->max_pending_jobs = (uint32_t) u->max_pend;
        ptrs[rep.n_users++] = r;
    }
    rep.users = ptrs;
    rep.halflife_s = (uint64_t) (c->t.cfg.halflife_ms / 1000);
    rep.max_age_s = (uint64_t) (c->t.cfg.max_age_ms / 1000);
    rep.priority_weight = (double) c->t.cfg.w_priority;
    rep.fairshare_weight = (double) c->t.cfg.w_fairshare;
    rep.age_weight = (double) c->t.cfg.w_age;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = m->env->request_id;
    env.body_case = WSLQ__ENVELOPE__BODY_SHARE_REPLY;
    env.share_reply = &rep;
    out_push(self, m->from, &env);
    free(rows);
    free(ptrs);
    free(unknown.name);
}
