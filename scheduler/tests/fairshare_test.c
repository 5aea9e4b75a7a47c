/* Fair-share and per-user limits: the arithmetic alone (decay, factor, shares, age), the
 * settings and their errors, then the real core over inproc:// with a fake worker and CLI
 * (as core_test.c): a user who used the GPU goes after one who did not, usage survives a
 * restart, the running limits keep jobs pending with WAIT_LIMIT, the pending limit refuses
 * a submit (an array too) and stores nothing, wslq share's reply. */
/* cmocka.h needs these first. */
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* after the standard headers */
#include <cmocka.h>
#include <zmq.h>

#include "common/clock.h"
#include "common/mem.h"
#include "proto/wire.h"
#include "scheduler/fairshare.h"
#include "scheduler/sched.h"

#define H (7LL * 24 * 3600 * 1000) /* the default half-life, ms */

static void
assert_near(double a, double b)
{
    if (fabs(a - b) > 1e-6 * (fabs(b) > 1 ? fabs(b) : 1))
        fail_msg("%.9g is not %.9g", a, b);
}

/* ---- the arithmetic ---- */

static void
test_decay_halves_every_halflife(void **state)
{
    (void) state;
    assert_near(fs_decay(100, 0, H), 100);
    assert_near(fs_decay(100, H, H), 50);
    assert_near(fs_decay(100, 2 * H, H), 25);
    assert_near(fs_decay(100, H / 2, H), 100 / sqrt(2.0));
    fs_config_t cfg;
    fs_config_init(&cfg);
    fs_table_t t;
    fs_table_init(&t, &cfg);
    fs_user_t *u = fs_user(&t, "alice");
    int64_t t0 = 1000000000000LL;
    fs_add_usage(&t, u, 3600, 7200, t0); /* one GPU-hour ended at t0 */
    double cpu;
    assert_near(fs_usage_at(&t, u, t0, &cpu), 3600);
    assert_near(cpu, 7200);
    assert_near(fs_usage_at(&t, u, t0 + H, &cpu), 1800);
    assert_near(cpu, 3600);
    /* a run that ended earlier than the last one is decayed from its own end */
    fs_add_usage(&t, u, 1000, 0, t0 - H);
    assert_near(fs_usage_at(&t, u, t0, NULL), 3600 + 500);
    /* a later one brings what is there up to its end first */
    fs_add_usage(&t, u, 100, 0, t0 + H);
    assert_near(fs_usage_at(&t, u, t0 + H, NULL), (3600 + 500) / 2.0 + 100);
    fs_table_fini(&t);
    fs_config_free(&cfg);
}

static void
test_factor_and_shares(void **state)
{
    (void) state;
    assert_near(fs_factor(0, 0.5), 1);
    assert_near(fs_factor(0.5, 0.5), 0.5);
    assert_near(fs_factor(1, 0.5), 0.25);
    assert_near(fs_factor(1, 0), 0);
    fs_config_t cfg;
    fs_config_init(&cfg);
    wq_error_t err = {0};
    assert_int_equal(fs_config_apply(&cfg, "share.alice", "2", &err), 1);
    fs_table_t t;
    fs_table_init(&t, &cfg);
    int64_t now = 1000000000000LL;
    fs_user_t *a = fs_user(&t, "alice"), *b = fs_user(&t, "bob"), *c = fs_user(&t, "carol");
    assert_near(a->share, 2);
    assert_near(b->share, 1);
    /* nobody used anything: everyone 1 */
    fs_refresh(&t, now);
    assert_near(a->factor, 1);
    assert_near(b->factor, 1);
    /* equal use, alice has twice the share: alice higher */
    fs_add_usage(&t, a, 1000, 0, now);
    fs_add_usage(&t, b, 1000, 0, now);
    fs_refresh(&t, now);
    assert_near(a->norm_usage, 0.5);
    assert_near(a->norm_share, 2.0 / 3);
    assert_near(b->norm_share, 1.0 / 3);
    assert_near(a->factor, exp2(-0.5 / (2.0 / 3)));
    assert_near(b->factor, exp2(-0.5 / (1.0 / 3)));
    assert_true(a->factor > b->factor);
    /* carol used nothing and has no jobs: not in the shares, factor 1 */
    assert_near(c->factor, 1);
    /* running time counts: bob runs a lot now */
    b->run_gpu_s = 8000;
    b->n_run = 1;
    fs_refresh(&t, now);
    assert_near(b->norm_usage, 9000.0 / 10000);
    assert_true(b->factor < a->factor);
    /* only CPU used by anyone: the CPU figures decide */
    fs_table_fini(&t);
    fs_table_init(&t, &cfg);
    a = fs_user(&t, "alice");
    b = fs_user(&t, "bob");
    fs_add_usage(&t, a, 0, 100, now);
    fs_add_usage(&t, b, 0, 300, now);
    fs_refresh(&t, now);
    assert_near(a->norm_usage, 0.25);
    assert_true(a->factor > b->factor);
    fs_table_fini(&t);
    fs_config_free(&cfg);
}

static void
test_age_factor(void **state)
{
    (void) state;
    assert_near(fs_age_factor(0, H), 0);
    assert_near(fs_age_factor(-5, H), 0);
    assert_near(fs_age_factor(H / 4, H), 0.25);
    assert_near(fs_age_factor(H, H), 1);
    assert_near(fs_age_factor(10 * H, H), 1);
}

static void
test_settings(void **state)
{
    (void) state;
    fs_config_t c;
    fs_config_init(&c);
    assert_int_equal(c.halflife_ms, H);
    assert_int_equal(c.w_priority, 1000);
    wq_error_t err = {0};
    assert_int_equal(fs_config_apply(&c, "torpid", "3s", &err), 0); /* not ours */
    assert_int_equal(fs_config_apply(&c, "fairshare-halflife", "2d", &err), 1);
    assert_int_equal(c.halflife_ms, 2LL * 86400 * 1000);
    assert_int_equal(fs_config_apply(&c, "fairshare_halflife", "60", &err), 1);
    assert_int_equal(c.halflife_ms, 60000);
    assert_int_equal(fs_config_apply(&c, "max-age", "1h", &err), 1);
    assert_int_equal(c.max_age_ms, 3600000);
    assert_int_equal(fs_config_apply(&c, "fairshare-weight", "5000", &err), 1);
    assert_int_equal(c.w_fairshare, 5000);
    assert_int_equal(fs_config_apply(&c, "max-running-gpus", "4", &err), 1);
    assert_int_equal(fs_config_apply(&c, "max-running-gpus.bob", "0", &err), 1);
    assert_int_equal(fs_config_apply(&c, "max-pending-jobs.carol", "7", &err), 1);
    assert_int_equal(fs_config_apply(&c, "share.alice", "0.5", &err), 1);
    struct {
        const char *key, *value, *says;
    } bad[] = {
        {"fairshare-halflife", "0", "more than 0"},
        {"fairshare-halflife", "soon", "fairshare-halflife"},
        {"max-age", "-1d", "max-age"},
        {"priority-weight", "abc", "priority-weight"},
        {"age-weight", "2000000", "age-weight"},
        {"share", "2", "needs a user"},
        {"share.alice", "0", "not a number above 0"},
        {"share.alice", "2x", "not a number above 0"},
        {"share.alice", "nan", "not a number above 0"},
        {"share.", "1", "not a user name"},
        {"max-age.alice", "1d", "lab-wide"},
        {"max-running-jobs", "-1", "max-running-jobs"},
        {"max-pending-jobs.bob", "many", "max-pending-jobs.bob"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        wq_error_t e = {0};
        if (fs_config_apply(&c, bad[i].key, bad[i].value, &e) != -1)
            fail_msg("%s = %s was accepted", bad[i].key, bad[i].value);
        if (strstr(e.text, bad[i].says) == NULL)
            fail_msg("%s = %s: '%s' does not say '%s'", bad[i].key, bad[i].value, e.text,
                     bad[i].says);
    }
    /* the values before the bad ones are kept */
    assert_int_equal(c.halflife_ms, 60000);
    fs_table_t t;
    fs_table_init(&t, &c);
    assert_int_equal(fs_user(&t, "alice")->max_gpus, 4);
    assert_int_equal(fs_user(&t, "bob")->max_gpus, 0); /* 0 for bob: none */
    assert_int_equal(fs_user(&t, "carol")->max_pend, 7);
    assert_near(fs_user(&t, "alice")->share, 0.5);
    fs_table_fini(&t);
    fs_config_free(&c);
}

/* ---- the core ---- */

typedef struct {
    char dir[64];
    char endpoint[96];
    void *zctx;
    sched_config_t cfg;
    fs_config_t fs;
    sched_t *s;
    void *cli;
    void *w;
    uint64_t next_rid;
} fx_t;

static void
new_endpoint(fx_t *f)
{
    static int seq;
    snprintf(f->endpoint, sizeof f->endpoint, "inproc://fs-%d-%d", (int) getpid(), ++seq);
}

static void
boot(fx_t *f)
{
    wq_error_t err = {0};
    f->s = sched_new(&f->cfg, &err);
    if (f->s == NULL)
        fail_msg("sched_new: %s", err.text);
}

static int
setup(void **state)
{
    fx_t *f = wq_calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/wslq-fs-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    new_endpoint(f);
    f->zctx = zmq_ctx_new();
    sched_config_init(&f->cfg);
    f->cfg.listen = f->endpoint;
    f->cfg.state_dir = f->dir;
    f->cfg.sync_full = 0;
    f->cfg.zctx = f->zctx;
    f->cfg.insecure = 1; /* every peer is the user it claims: alice and bob from one socket */
    f->cfg.admin_path = "";
    f->cfg.torpid_ms = 5000;
    f->cfg.lost_ms = 10000;
    fs_config_init(&f->fs);
    f->cfg.fairshare = &f->fs;
    *state = f;
    return 0;
}

static void
close_socks(fx_t *f)
{
    if (f->w) {
        zmq_close(f->w);
        f->w = NULL;
    }
    if (f->cli) {
        zmq_close(f->cli);
        f->cli = NULL;
    }
}

static int
teardown(void **state)
{
    fx_t *f = *state;
    close_socks(f);
    sched_destroy(&f->s);
    zmq_ctx_term(f->zctx);
    fs_config_free(&f->fs);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

static void
set(fx_t *f, const char *key, const char *value)
{
    wq_error_t err = {0};
    if (fs_config_apply(&f->fs, key, value, &err) != 1)
        fail_msg("%s = %s: %s", key, value, err.text);
}

static void *
dealer(fx_t *f, const char *identity)
{
    void *s = zmq_socket(f->zctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (identity)
        zmq_setsockopt(s, ZMQ_ROUTING_ID, identity, strlen(identity));
    assert_int_equal(zmq_connect(s, f->endpoint), 0);
    return s;
}

static void
send_env(void *sock, Wslq__Envelope *env)
{
    wq_error_t err = {0};
    if (wire_send(sock, NULL, 0, env, 0, &err) < 0)
        fail_msg("send: %s", err.text);
}

/* The next message of this kind on sock (others are dropped), turning the loop meanwhile;
 * NULL after ms. An error reply is returned as it is. */
static Wslq__Envelope *
recv_kind(fx_t *f, void *sock, Wslq__Envelope__BodyCase want, int ms)
{
    int64_t end = wq_clock_mono_ms() + ms;
    while (wq_clock_mono_ms() < end) {
        wq_error_t err = {0};
        assert_int_equal(sched_turn(f->s, 5, &err), 0);
        Wslq__Envelope *env;
        while ((env = wire_recv(sock, NULL, NULL, ZMQ_DONTWAIT, &err)) != NULL) {
            if (env->body_case == want || env->body_case == WSLQ__ENVELOPE__BODY_ERROR)
                return env;
            wire_free(&env);
        }
    }
    return NULL;
}

static void
register_worker(fx_t *f, uint32_t ngpus)
{
    f->w = dealer(f, "w:pc1");
    Wslq__GpuInfo gpus[4], *gp[4];
    for (uint32_t i = 0; i < ngpus; i++) {
        wslq__gpu_info__init(&gpus[i]);
        gpus[i].index = i;
        gpus[i].uuid = "GPU-x";
        gpus[i].name = "fake";
        gp[i] = &gpus[i];
    }
    Wslq__Register r = WSLQ__REGISTER__INIT;
    r.name = "pc1";
    r.hostname = "pc1";
    r.ip = "127.0.0.1";
    r.cpus = 8;
    r.mem_mb = 16000;
    r.gpus = gp;
    r.n_gpus = ngpus;
    r.version = "test";
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = ++f->next_rid;
    env.body_case = WSLQ__ENVELOPE__BODY_REG;
    env.reg = &r;
    send_env(f->w, &env);
    Wslq__Envelope *rep = recv_kind(f, f->w, WSLQ__ENVELOPE__BODY_REG_REPLY, 3000);
    assert_non_null(rep);
    wire_free(&rep);
}

/* Submit as user (array: "" none); the reply (SubmitReply or ErrorReply). Caller frees. */
static Wslq__Envelope *
submit_as(fx_t *f, const char *user, uint32_t gpus, const char *array)
{
    if (f->cli == NULL)
        f->cli = dealer(f, NULL);
    char *argv[] = {"true"};
    Wslq__JobSpec spec = WSLQ__JOB_SPEC__INIT;
    spec.argv = argv;
    spec.n_argv = 1;
    spec.nodes = 1;
    spec.gpus_per_node = gpus;
    spec.user = (char *) user;
    Wslq__SubmitRequest req = WSLQ__SUBMIT_REQUEST__INIT;
    req.spec = &spec;
    req.array = (char *) array;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = ++f->next_rid;
    env.body_case = WSLQ__ENVELOPE__BODY_SUBMIT;
    env.submit = &req;
    send_env(f->cli, &env);
    Wslq__Envelope *rep = recv_kind(f, f->cli, WSLQ__ENVELOPE__BODY_SUBMIT_REPLY, 3000);
    assert_non_null(rep);
    return rep;
}

static uint64_t
submit_ok(fx_t *f, const char *user, uint32_t gpus)
{
    Wslq__Envelope *rep = submit_as(f, user, gpus, "");
    if (rep->body_case == WSLQ__ENVELOPE__BODY_ERROR)
        fail_msg("submit refused: %s", rep->error->text);
    uint64_t id = rep->submit_reply->job_id;
    wire_free(&rep);
    return id;
}

static Wslq__Envelope *
show(fx_t *f, uint64_t id)
{
    Wslq__ShowRequest req = WSLQ__SHOW_REQUEST__INIT;
    req.job_id = id;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = ++f->next_rid;
    env.body_case = WSLQ__ENVELOPE__BODY_SHOW;
    env.show = &req;
    send_env(f->cli, &env);
    Wslq__Envelope *rep = recv_kind(f, f->cli, WSLQ__ENVELOPE__BODY_SHOW_REPLY, 3000);
    assert_non_null(rep);
    assert_int_equal(rep->body_case, WSLQ__ENVELOPE__BODY_SHOW_REPLY);
    return rep;
}

static Wslq__Envelope *
share(fx_t *f, const char *user)
{
    if (f->cli == NULL)
        f->cli = dealer(f, NULL);
    Wslq__ShareRequest req = WSLQ__SHARE_REQUEST__INIT;
    req.user = (char *) user;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = ++f->next_rid;
    env.body_case = WSLQ__ENVELOPE__BODY_SHARE;
    env.share = &req;
    send_env(f->cli, &env);
    Wslq__Envelope *rep = recv_kind(f, f->cli, WSLQ__ENVELOPE__BODY_SHARE_REPLY, 3000);
    assert_non_null(rep);
    assert_int_equal(rep->body_case, WSLQ__ENVELOPE__BODY_SHARE_REPLY);
    return rep;
}

static const Wslq__ShareUser *
share_row(const Wslq__Envelope *rep, const char *user)
{
    for (size_t i = 0; i < rep->share_reply->n_users; i++)
        if (strcmp(rep->share_reply->users[i]->user, user) == 0)
            return rep->share_reply->users[i];
    return NULL;
}

/* The job the worker is told to launch next. */
static uint64_t
next_launch(fx_t *f)
{
    Wslq__Envelope *l = recv_kind(f, f->w, WSLQ__ENVELOPE__BODY_LAUNCH, 3000);
    assert_non_null(l);
    uint64_t id = l->launch->job_id;
    wire_free(&l);
    return id;
}

static void
worker_ends(fx_t *f, uint64_t id)
{
    Wslq__JobStarted s = WSLQ__JOB_STARTED__INIT;
    s.job_id = id;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_STARTED;
    env.started = &s;
    send_env(f->w, &env);
    Wslq__JobEnded e = WSLQ__JOB_ENDED__INIT;
    e.job_id = id;
    e.failed_rank = -1;
    e.reason = "";
    Wslq__Envelope env2 = WSLQ__ENVELOPE__INIT;
    env2.body_case = WSLQ__ENVELOPE__BODY_ENDED;
    env2.ended = &e;
    send_env(f->w, &env2);
}

static void
pump(fx_t *f, int ms)
{
    int64_t end = wq_clock_mono_ms() + ms;
    wq_error_t err = {0};
    while (wq_clock_mono_ms() < end)
        assert_int_equal(sched_turn(f->s, 5, &err), 0);
}

/* Alice used the only GPU; then alice and bob each queue a job, alice first: bob's starts
 * first (priority order alone would start alice's, the older). The usage is in wslq share
 * and survives a restart. */
static void
test_used_less_goes_first(void **state)
{
    fx_t *f = *state;
    boot(f);
    register_worker(f, 1);
    uint64_t a1 = submit_ok(f, "alice", 1);
    assert_int_equal(next_launch(f), a1);
    pump(f, 300); /* alice's job holds the GPU for a while */
    uint64_t a2 = submit_ok(f, "alice", 1);
    uint64_t b1 = submit_ok(f, "bob", 1);
    assert_true(a2 < b1);
    /* both wait; show gives the effective priority and its factors */
    Wslq__Envelope *sa = show(f, a2), *sb = show(f, b1);
    const Wslq__JobInfo *ja = sa->show_reply->job, *jb = sb->show_reply->job;
    assert_true(ja->priority_known && jb->priority_known);
    assert_true(ja->fairshare_factor < 1.0);
    assert_near(jb->fairshare_factor, 1.0);
    assert_true(jb->effective_priority > ja->effective_priority);
    assert_near(ja->fairshare_weight, 1000);
    wire_free(&sa);
    wire_free(&sb);
    worker_ends(f, a1);
    assert_int_equal(next_launch(f), b1);
    worker_ends(f, b1);
    assert_int_equal(next_launch(f), a2);
    worker_ends(f, a2);
    pump(f, 100);
    Wslq__Envelope *r = share(f, "");
    const Wslq__ShareUser *ua = share_row(r, "alice"), *ub = share_row(r, "bob");
    assert_non_null(ua);
    assert_true(ua->gpu_hours > 0.2 / 3600); /* at least the 300 ms it held the GPU */
    assert_int_equal(ua->running + ua->pending, 0);
    if (ub != NULL) { /* bob's job ran a few ms at most: listed only when that is not 0 */
        assert_true(ua->gpu_hours > ub->gpu_hours);
        assert_true(ua->fairshare_factor < ub->fairshare_factor);
        assert_int_equal(ub->running + ub->pending, 0);
    }
    double before = ua->gpu_hours;
    assert_near(r->share_reply->halflife_s, 7 * 86400);
    wire_free(&r);
    /* restart: the usage comes back from the ended jobs */
    close_socks(f);
    sched_destroy(&f->s);
    new_endpoint(f);
    boot(f);
    r = share(f, "alice");
    assert_int_equal(r->share_reply->n_users, 1);
    ua = share_row(r, "alice");
    assert_non_null(ua);
    assert_true(fabs(ua->gpu_hours - before) < 0.01 * before);
    wire_free(&r);
}

/* The per-user running limits: a job over one waits with WAIT_LIMIT and says why; another
 * user's job is not held back. */
static void
test_running_limits(void **state)
{
    fx_t *f = *state;
    set(f, "max-running-jobs.alice", "1");
    set(f, "max-running-gpus", "2");
    boot(f);
    register_worker(f, 4);
    uint64_t a1 = submit_ok(f, "alice", 1);
    assert_int_equal(next_launch(f), a1);
    uint64_t a2 = submit_ok(f, "alice", 1);
    pump(f, 100);
    Wslq__Envelope *s = show(f, a2);
    assert_int_equal(s->show_reply->job->state, WSLQ__JOB_STATE__PENDING);
    assert_int_equal(s->show_reply->job->wait_reason, WSLQ__WAIT_REASON__WAIT_LIMIT);
    assert_string_equal(s->show_reply->job->reason, "user alice runs 1 job, the limit is 1");
    wire_free(&s);
    /* bob: the lab-wide GPU limit, 2 */
    uint64_t b1 = submit_ok(f, "bob", 2);
    assert_int_equal(next_launch(f), b1);
    uint64_t b2 = submit_ok(f, "bob", 1);
    pump(f, 100);
    s = show(f, b2);
    assert_int_equal(s->show_reply->job->wait_reason, WSLQ__WAIT_REASON__WAIT_LIMIT);
    assert_string_equal(s->show_reply->job->reason,
                        "user bob runs 2 GPUs, the limit is 2 (this job needs 1)");
    wire_free(&s);
    /* a job that alone needs more than the limit is refused at submit */
    Wslq__Envelope *rep = submit_as(f, "bob", 3, "");
    assert_int_equal(rep->body_case, WSLQ__ENVELOPE__BODY_ERROR);
    assert_non_null(strstr(rep->error->text, "may run at most 2"));
    wire_free(&rep);
    /* alice's first ends: her second starts */
    worker_ends(f, a1);
    assert_int_equal(next_launch(f), a2);
    Wslq__Envelope *r = share(f, "bob");
    assert_int_equal(share_row(r, "bob")->gpus_running, 2);
    assert_int_equal(share_row(r, "bob")->pending, 1);
    assert_int_equal(share_row(r, "bob")->max_running_gpus, 2);
    wire_free(&r);
}

/* The pending limit: over it a submit is refused with a line saying so, an array that
 * would pass it too, and nothing of them is stored. */
static void
test_pending_limit(void **state)
{
    fx_t *f = *state;
    set(f, "max-pending-jobs", "3");
    set(f, "max-pending-jobs.carol", "0"); /* none for carol */
    boot(f);                               /* no node: everything stays pending */
    submit_ok(f, "alice", 1);
    submit_ok(f, "alice", 1);
    Wslq__Envelope *rep = submit_as(f, "alice", 1, "0-1");
    assert_int_equal(rep->body_case, WSLQ__ENVELOPE__BODY_ERROR);
    assert_string_equal(rep->error->text, "job refused: user alice has 2 pending jobs and the "
                                          "array adds 2; the limit is 3");
    wire_free(&rep);
    uint64_t a3 = submit_ok(f, "alice", 1);
    rep = submit_as(f, "alice", 1, "");
    assert_int_equal(rep->body_case, WSLQ__ENVELOPE__BODY_ERROR);
    assert_string_equal(rep->error->text,
                        "job refused: user alice has 3 pending jobs, the limit is 3");
    wire_free(&rep);
    /* nothing stored: the next job id follows a3 */
    uint64_t b1 = submit_ok(f, "bob", 1);
    assert_int_equal(b1, a3 + 1);
    for (int i = 0; i < 5; i++)
        submit_ok(f, "carol", 1);
    Wslq__Envelope *r = share(f, "");
    assert_int_equal(share_row(r, "alice")->pending, 3);
    assert_int_equal(share_row(r, "alice")->max_pending_jobs, 3);
    assert_int_equal(share_row(r, "carol")->pending, 5);
    assert_int_equal(share_row(r, "carol")->max_pending_jobs, 0);
    assert_null(share_row(r, "zed"));
    wire_free(&r);
    /* a user never seen: its settings and no use, and it is not kept */
    r = share(f, "zed");
    assert_int_equal(r->share_reply->n_users, 1);
    assert_int_equal(share_row(r, "zed")->pending, 0);
    assert_int_equal(share_row(r, "zed")->max_pending_jobs, 3);
    assert_near(share_row(r, "zed")->fairshare_factor, 1);
    assert_near(share_row(r, "zed")->norm_share, 1.0 / 4); /* alice, bob, carol and zed */
    wire_free(&r);
    r = share(f, "");
    assert_null(share_row(r, "zed"));
    assert_int_equal(r->share_reply->n_users, 3);
    wire_free(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decay_halves_every_halflife),
        cmocka_unit_test(test_factor_and_shares),
        cmocka_unit_test(test_age_factor),
        cmocka_unit_test(test_settings),
        cmocka_unit_test_setup_teardown(test_used_less_goes_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_running_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_limit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
