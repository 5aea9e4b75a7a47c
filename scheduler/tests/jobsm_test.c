/* jobsm: every allowed transition and its actions, every refused one (in every state), the end
 * cause precedence (first failure wins; cancel and the time limit override), requeue with
 * backoff, and the restart view. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* after the standard headers */
#include <cmocka.h>

#include "common/mem.h"
#include "scheduler/jobsm.h"

typedef struct {
    Wslq__JobInfo *info;
    jobsm_t sm;
    jobsm_out_t out;
    wq_error_t err;
} fx_t;

static Wslq__JobInfo *
new_info(unsigned retries, int requeue_on_fail)
{
    Wslq__JobInfo *info = wq_malloc(sizeof *info);
    wslq__job_info__init(info);
    info->spec = wq_malloc(sizeof *info->spec);
    wslq__job_spec__init(info->spec);
    info->spec->retries = retries;
    info->spec->requeue_on_fail = requeue_on_fail;
    info->id = 42;
    return info;
}

static fx_t *
fx_new(unsigned retries, int requeue_on_fail)
{
    fx_t *f = wq_calloc(1, sizeof *f);
    f->info = new_info(retries, requeue_on_fail);
    return f;
}

static void
fx_free(fx_t *f)
{
    jobsm_fini(&f->sm);
    wslq__job_info__free_unpacked(f->info, NULL);
    free(f);
}

static int
apply(fx_t *f, jobsm_event_t ev)
{
    if (ev.now_wall_ms == 0)
        ev.now_wall_ms = 1000000;
    if (ev.now_mono_ms == 0)
        ev.now_mono_ms = 5000;
    memset(&f->err, 0, sizeof f->err);
    return jobsm_apply(&f->sm, f->info, &ev, &f->out, &f->err);
}

/* Give the job n allocs on nodes n0, n1, ... (what placement does before PLACE). */
static void
alloc(fx_t *f, size_t n)
{
    f->info->allocs = wq_calloc(n, sizeof *f->info->allocs);
    for (size_t k = 0; k < n; k++) {
        Wslq__Alloc *a = wq_malloc(sizeof *a);
        wslq__alloc__init(a);
        a->node = wq_asprintf("n%zu", k);
        a->ip = wq_strdup("10.0.0.1");
        a->first_rank = (uint32_t) k * 2;
        a->nranks = 2;
        f->info->allocs[k] = a;
    }
    f->info->n_allocs = n;
}

static void
submitted(fx_t *f)
{
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_SUBMIT, .text = ""}), JOBSM_APPLIED);
}

static void
placed(fx_t *f, size_t n)
{
    alloc(f, n);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PLACE}), JOBSM_APPLIED);
}

static void
running(fx_t *f, size_t n)
{
    submitted(f);
    placed(f, n);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_STARTED, .part = k}),
                         JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__RUNNING);
}

static int
ended(fx_t *f, size_t k, int code, int sig)
{
    return apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_ENDED,
                                    .part = k,
                                    .exit_code = code,
                                    .signal = sig,
                                    .rank = code || sig ? (int32_t) k * 2 + 1 : -1});
}

static const jobsm_row_t *
last_row(const fx_t *f)
{
    assert_true(f->out.n_rows > 0);
    return &f->out.rows[f->out.n_rows - 1];
}

/* ---- allowed transitions ---- */

static void
test_submit(void **state)
{
    (void) state;
    fx_t *f = fx_new(0, 0);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_SUBMIT,
                                              .text = "waiting for a node to register",
                                              .now_wall_ms = 1234}),
                     JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
    assert_int_equal(f->info->submit_ms, 1234);
    assert_int_equal(f->info->exit_code, -1);
    assert_int_equal(f->info->failed_rank, -1);
    assert_string_equal(f->info->reason, "waiting for a node to register");
    assert_true(f->out.state_changed);
    assert_int_equal(f->out.old_state, WSLQ__JOB_STATE__JOB_STATE_UNSPECIFIED);
    assert_int_equal(f->out.act, JOBSM_ACT_SAVE | JOBSM_ACT_RESCHED);
    assert_int_equal(f->out.n_rows, 1);
    assert_int_equal(f->out.rows[0].state, WSLQ__JOB_STATE__PENDING);
    assert_string_equal(f->out.rows[0].reason, "submitted");
    assert_true(jobsm_placeable(&f->sm, f->info, 0));
    fx_free(f);
}

static void
test_place_and_start(void **state)
{
    (void) state;
    fx_t *f = fx_new(0, 0);
    submitted(f);
    alloc(f, 3);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PLACE, .now_wall_ms = 777}),
                     JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__STARTING);
    assert_int_equal(f->info->start_ms, 777);
    assert_int_equal(f->out.act, JOBSM_ACT_SAVE | JOBSM_ACT_LAUNCH);
    assert_string_equal(last_row(f)->reason, "placed");
    assert_string_equal(last_row(f)->node, "n0,n1,n2");
    assert_int_equal(f->sm.n_parts, 3);
    for (size_t k = 0; k < 3; k++)
        assert_true(jobsm_part_holds(&f->sm, f->info, k));
    assert_false(jobsm_part_holds(&f->sm, f->info, 3));
    /* RUNNING only when every part started; a repeat is stale */
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_STARTED, .part = 1}),
                     JOBSM_APPLIED);
    assert_int_equal(f->out.act, 0);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__STARTING);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_STARTED, .part = 1}),
                     JOBSM_STALE);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_STARTED, .part = 0}),
                     JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__STARTING);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_STARTED, .part = 2}),
                     JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__RUNNING);
    assert_true(f->out.state_changed);
    assert_int_equal(f->out.act, JOBSM_ACT_SAVE);
    assert_string_equal(last_row(f)->reason, "every rank started");
    assert_string_equal(last_row(f)->node, "n2");
    fx_free(f);
}

static void
test_complete(void **state)
{
    (void) state;
    fx_t *f = fx_new(3, 1);
    running(f, 2);
    assert_int_equal(ended(f, 1, 0, 0), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__RUNNING);
    assert_int_equal(f->out.act, 0); /* only the row: the gang waits for the other part */
    assert_string_equal(last_row(f)->reason, "node finished");
    assert_string_equal(last_row(f)->node, "n1");
    assert_string_equal(last_row(f)->detail, "exit_code=0 signal=0 rank=-1");
    assert_false(jobsm_part_holds(&f->sm, f->info, 1));
    assert_int_equal(ended(f, 1, 0, 0), JOBSM_STALE); /* a resent JobEnded */
    assert_int_equal(
        apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_ENDED, .part = 0, .now_wall_ms = 99}),
        JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__COMPLETED);
    assert_int_equal(f->info->end_ms, 99);
    assert_int_equal(f->info->exit_code, 0);
    assert_string_equal(f->info->reason, "every rank exited 0");
    assert_int_equal(f->sm.cause, JOBSM_CAUSE_NONE);
    assert_int_equal(f->out.act, JOBSM_ACT_SAVE | JOBSM_ACT_ENDED | JOBSM_ACT_RESCHED);
    assert_int_equal(f->out.n_rows, 2); /* "node finished", then the final state */
    assert_int_equal(f->out.rows[0].state, WSLQ__JOB_STATE__RUNNING);
    assert_int_equal(f->out.rows[1].state, WSLQ__JOB_STATE__COMPLETED);
    assert_int_equal(f->sm.n_parts, 0);
    fx_free(f);
}

static void
test_rank_exit_fails_gang(void **state)
{
    (void) state;
    fx_t *f = fx_new(0, 0);
    running(f, 2);
    assert_int_equal(ended(f, 1, 3, 0), JOBSM_APPLIED);
    assert_int_equal(f->sm.cause, JOBSM_CAUSE_RANK_FAILED);
    assert_true(f->out.act & JOBSM_ACT_KILL);
    assert_true(f->out.act & JOBSM_ACT_SAVE);
    assert_int_equal(f->out.kill_grace, JOBSM_GRACE_GANG);
    assert_string_equal(f->out.kill_reason, "another rank of the job failed");
    assert_int_equal(f->info->failed_rank, 3);
    assert_string_equal(f->info->failed_node, "n1");
    /* the other part dies of our kill: not a new failure */
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_ENDED,
                                              .part = 0,
                                              .exit_code = 143,
                                              .rank = 0,
                                              .killed = 1}),
                     JOBSM_APPLIED);
    assert_false(f->out.act & JOBSM_ACT_KILL);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__FAILED);
    assert_int_equal(f->info->exit_code, 3);
    assert_string_equal(f->info->reason, "rank 3 on n1 exited with code 3");
    assert_string_equal(last_row(f)->node, "n1");
    assert_string_equal(f->out.rows[0].detail, "exit_code=143 signal=0 rank=0 killed");
    fx_free(f);
}

static void
test_output_lost_is_told(void **state)
{
    (void) state;
    fx_t *f = fx_new(0, 0);
    running(f, 1);
    assert_int_equal(
        apply(
            f,
            (jobsm_event_t){.type = JOBSM_EV_PART_ENDED, .part = 0, .rank = -1, .output_lost = 1}),
        JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__COMPLETED); /* it did exit 0 */
    assert_int_equal(f->out.n_rows, 3);
    assert_string_equal(f->out.rows[1].reason, "output lost");
    assert_string_equal(f->out.rows[1].node, "n0");
    assert_non_null(strstr(f->out.rows[1].detail, "spool was full"));
    fx_free(f);
}

static void
test_rank_signal(void **state)
{
    (void) state;
    fx_t *f = fx_new(0, 0);
    running(f, 1);
    assert_int_equal(ended(f, 0, -1, 9), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__FAILED);
    assert_string_equal(f->info->reason, "rank 1 on n0 killed by signal 9");
    fx_free(f);
}

static void
test_rank_failed_event(void **state)
{
    (void) state;
    fx_t *f = fx_new(0, 0);
    running(f, 2);
    assert_int_equal(
        apply(f,
              (jobsm_event_t){.type = JOBSM_EV_RANK_FAILED, .part = 0, .rank = 1, .exit_code = 2}),
        JOBSM_APPLIED);
    assert_int_equal(f->out.act, JOBSM_ACT_SAVE | JOBSM_ACT_KILL);
    assert_string_equal(last_row(f)->reason, "rank failed");
    assert_string_equal(last_row(f)->detail, "rank=1 exit_code=2 signal=0");
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__RUNNING); /* until every part ended */
    /* a second failure, anywhere, is stale: the first one is the story */
    assert_int_equal(
        apply(f,
              (jobsm_event_t){.type = JOBSM_EV_RANK_FAILED, .part = 1, .rank = 2, .exit_code = 5}),
        JOBSM_STALE);
    assert_int_equal(ended(f, 1, 5, 0), JOBSM_APPLIED);
    assert_int_equal(ended(f, 0, 2, 0), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__FAILED);
    assert_string_equal(f->info->reason, "rank 1 on n0 exited with code 2");
    fx_free(f);
}

/* Over its --mem on one node: OUT_OF_MEMORY with the worker's words, the other node stopped;
 * it outranks the rank failure it causes, and is retried only with --requeue-on-fail. */
static void
test_out_of_memory(void **state)
{
    (void) state;
    fx_t *f = fx_new(3, 0);
    running(f, 2);
    /* the kernel's OOM kill: the worker reports the rank's failure first */
    assert_int_equal(
        apply(f, (jobsm_event_t){.type = JOBSM_EV_RANK_FAILED, .part = 1, .rank = 2, .signal = 9}),
        JOBSM_APPLIED);
    assert_int_equal(f->sm.cause, JOBSM_CAUSE_RANK_FAILED);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_ENDED,
                                              .part = 1,
                                              .exit_code = -1,
                                              .signal = 9,
                                              .rank = 2,
                                              .out_of_memory = 1,
                                              .text = "used 612 MiB, more than its --mem 256M"}),
                     JOBSM_APPLIED);
    assert_int_equal(f->sm.cause, JOBSM_CAUSE_OUT_OF_MEMORY);
    assert_string_equal(jobsm_cause_name(f->sm.cause), "out_of_memory");
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__RUNNING); /* until every part ended */
    assert_int_equal(ended(f, 0, 143, 0), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__OUT_OF_MEMORY); /* retries: not asked */
    assert_true(f->out.act & JOBSM_ACT_ENDED);
    assert_string_equal(f->info->reason,
                        "out of memory on n1: used 612 MiB, more than its --mem 256M");
    assert_int_equal(f->info->failed_rank, 2);
    assert_true(wire_state_is_final(f->info->state));
    fx_free(f);

    /* the memory watch: no RankFailed (the worker stopped it), the other part killed */
    f = fx_new(0, 0);
    running(f, 2);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_ENDED,
                                              .part = 0,
                                              .exit_code = -1,
                                              .signal = 15,
                                              .out_of_memory = 1}),
                     JOBSM_APPLIED);
    assert_true(f->out.act & JOBSM_ACT_KILL);
    assert_int_equal(ended(f, 1, 0, 15), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__OUT_OF_MEMORY);
    assert_string_equal(f->info->reason, "out of memory on n0: over its --mem");
    fx_free(f);

    /* a cancel outranks it; an OOM after a time limit does not change the ending */
    f = fx_new(0, 0);
    running(f, 1);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_CANCEL}), JOBSM_APPLIED);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_ENDED,
                                              .part = 0,
                                              .signal = 9,
                                              .out_of_memory = 1}),
                     JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__CANCELLED);
    fx_free(f);
    f = fx_new(0, 0);
    running(f, 1);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_TIME_LIMIT}), JOBSM_APPLIED);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_ENDED,
                                              .part = 0,
                                              .signal = 9,
                                              .out_of_memory = 1}),
                     JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__TIMEOUT);
    fx_free(f);

    /* --requeue-on-fail with retries left: back to PENDING, attempt 2 of 2 */
    f = fx_new(1, 1);
    running(f, 1);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_ENDED,
                                              .part = 0,
                                              .signal = 9,
                                              .out_of_memory = 1,
                                              .text = "more than its --mem 1G"}),
                     JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
    assert_int_equal(f->info->attempt, 1);
    assert_non_null(strstr(f->info->reason, "requeued after OUT_OF_MEMORY"));
    assert_non_null(strstr(f->info->reason, "more than its --mem 1G"));
    fx_free(f);
}

static void
test_node_lost_requeues_with_backoff(void **state)
{
    (void) state;
    fx_t *f = fx_new(1, 0);
    running(f, 2);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_NODE_LOST, .part = 0}),
                     JOBSM_APPLIED);
    assert_string_equal(last_row(f)->reason, "node lost");
    assert_string_equal(f->out.kill_reason, "another node of the job was lost");
    assert_int_equal(f->out.kill_grace, JOBSM_GRACE_GANG);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_NODE_LOST, .part = 0}), JOBSM_STALE);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_ENDED,
                                              .part = 1,
                                              .exit_code = 143,
                                              .killed = 1,
                                              .now_mono_ms = 10000}),
                     JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
    assert_int_equal(f->info->attempt, 1);
    assert_int_equal(f->info->n_allocs, 0);
    assert_int_equal(f->info->master_port, 0);
    assert_int_equal(f->info->start_ms, 0);
    assert_string_equal(f->info->reason,
                        "requeued after NODE_FAIL: node n0 was lost (attempt 2 of 2)");
    assert_int_equal(f->out.act, JOBSM_ACT_SAVE | JOBSM_ACT_REQUEUED | JOBSM_ACT_RESCHED);
    assert_int_equal(f->sm.cause, JOBSM_CAUSE_NONE);
    /* the first retry waits 1 s */
    assert_int_equal(f->sm.not_before_mono, 11000);
    assert_false(jobsm_placeable(&f->sm, f->info, 10999));
    assert_int_equal(
        apply(f, (jobsm_event_t){.type = JOBSM_EV_REQUEUE_TIMER, .now_mono_ms = 10999}),
        JOBSM_STALE);
    assert_int_equal(
        apply(f, (jobsm_event_t){.type = JOBSM_EV_REQUEUE_TIMER, .now_mono_ms = 11000}),
        JOBSM_APPLIED);
    assert_int_equal(f->out.act, JOBSM_ACT_RESCHED);
    assert_true(jobsm_placeable(&f->sm, f->info, 11000));
    /* attempt 2 is lost too: no retries left, NODE_FAIL */
    placed(f, 1);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_MISSING, .part = 0}),
                     JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__NODE_FAIL);
    assert_string_equal(f->info->reason, "node n0 was lost");
    assert_string_equal(f->out.rows[0].reason, "node restarted without the job");
    fx_free(f);
}

static void
test_backoff_doubles_to_a_cap(void **state)
{
    (void) state;
    fx_t *f = fx_new(20, 1);
    submitted(f);
    int64_t expect[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        f->sm.not_before_mono = 0;
        placed(f, 1);
        assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_ENDED,
                                                  .part = 0,
                                                  .exit_code = 1,
                                                  .now_mono_ms = 100}),
                         JOBSM_APPLIED);
        assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
        assert_int_equal(f->info->attempt, i + 1);
        assert_int_equal(f->sm.not_before_mono, 100 + expect[i]);
    }
    fx_free(f);
}

static void
test_failure_without_requeue_flag_is_final(void **state)
{
    (void) state;
    fx_t *f = fx_new(5, 0); /* retries, but no --requeue-on-fail */
    running(f, 1);
    assert_int_equal(ended(f, 0, 1, 0), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__FAILED);
    assert_int_equal(f->info->attempt, 0);
    fx_free(f);
}

static void
test_requeue_on_fail_then_out_of_attempts(void **state)
{
    (void) state;
    fx_t *f = fx_new(1, 1);
    running(f, 1);
    assert_int_equal(ended(f, 0, 4, 0), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
    assert_string_equal(f->info->reason,
                        "requeued after FAILED: rank 1 on n0 exited with code 4 (attempt 2 of 2)");
    f->sm.not_before_mono = 0;
    placed(f, 1);
    /* a new attempt starts clean */
    assert_int_equal(f->info->exit_code, -1);
    assert_int_equal(f->info->failed_rank, -1);
    assert_string_equal(f->info->failed_node, "");
    assert_int_equal(ended(f, 0, 4, 0), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__FAILED);
    assert_int_equal(f->info->attempt, 1);
    fx_free(f);
}

/* ---- precedence of end causes ---- */

static void
test_first_failure_wins(void **state)
{
    (void) state;
    /* a rank failed, then a node was lost: FAILED, as the rank said */
    fx_t *f = fx_new(0, 0);
    running(f, 2);
    assert_int_equal(ended(f, 1, 3, 0), JOBSM_APPLIED);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_NODE_LOST, .part = 0}),
                     JOBSM_APPLIED);
    assert_false(f->out.act & JOBSM_ACT_KILL); /* already killing */
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__FAILED);
    assert_string_equal(f->info->failed_node, "n1");
    fx_free(f);
    /* a node was lost, then a rank failed: NODE_FAIL */
    f = fx_new(0, 0);
    running(f, 2);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_NODE_LOST, .part = 0}),
                     JOBSM_APPLIED);
    assert_int_equal(
        apply(f,
              (jobsm_event_t){.type = JOBSM_EV_RANK_FAILED, .part = 1, .rank = 2, .exit_code = 1}),
        JOBSM_STALE);
    assert_int_equal(ended(f, 1, 1, 0), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__NODE_FAIL);
    assert_string_equal(f->info->reason, "node n0 was lost");
    fx_free(f);
}

static void
test_cancel_overrides(void **state)
{
    (void) state;
    fx_t *f = fx_new(3, 1);
    running(f, 2);
    assert_int_equal(ended(f, 1, 3, 0), JOBSM_APPLIED);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_CANCEL}), JOBSM_APPLIED);
    assert_int_equal(f->sm.cause, JOBSM_CAUSE_CANCELLED);
    /* saved: a restarted scheduler ends it as cancelled too (jobsm_load) */
    assert_int_equal(f->out.act, JOBSM_ACT_KILL | JOBSM_ACT_SAVE);
    assert_string_equal(f->info->end_cause, "cancelled");
    assert_true(f->info->kill_sent);
    assert_int_equal(f->out.kill_grace, JOBSM_GRACE_NORMAL);
    assert_string_equal(f->out.kill_reason, "cancelled");
    assert_string_equal(last_row(f)->reason, "cancel requested");
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_CANCEL}), JOBSM_STALE);
    assert_int_equal(ended(f, 0, 143, 0), JOBSM_APPLIED);
    /* cancelled, and never requeued, whatever --requeue-on-fail says */
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__CANCELLED);
    assert_string_equal(f->info->reason, "cancelled");
    assert_true(f->out.act & JOBSM_ACT_ENDED);
    fx_free(f);
}

static void
test_cancel_pending(void **state)
{
    (void) state;
    fx_t *f = fx_new(0, 0);
    submitted(f);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_CANCEL, .now_wall_ms = 5}),
                     JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__CANCELLED);
    assert_int_equal(f->info->end_ms, 5);
    assert_string_equal(f->info->reason, "cancelled by user");
    assert_int_equal(f->out.act, JOBSM_ACT_SAVE | JOBSM_ACT_ENDED | JOBSM_ACT_RESCHED);
    assert_false(f->out.act & JOBSM_ACT_KILL);
    fx_free(f);
}

static void
test_time_limit(void **state)
{
    (void) state;
    fx_t *f = fx_new(3, 1);
    running(f, 2);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_TIME_LIMIT}), JOBSM_APPLIED);
    assert_int_equal(f->out.act, JOBSM_ACT_KILL | JOBSM_ACT_SAVE);
    assert_int_equal(f->out.kill_grace, JOBSM_GRACE_NORMAL);
    assert_string_equal(f->out.kill_reason, "time limit reached");
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_TIME_LIMIT}), JOBSM_STALE);
    assert_int_equal(ended(f, 0, 143, 0), JOBSM_APPLIED);
    assert_int_equal(ended(f, 1, 143, 0), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__TIMEOUT); /* never requeued */
    assert_string_equal(f->info->reason, "time limit reached");
    /* the ranks died of our kill: that is not a failure of the job */
    assert_int_equal(f->info->failed_rank, -1);
    assert_string_equal(f->info->failed_node, "");
    fx_free(f);
    /* the worker enforced the limit and the rank exited 0; a rank failing afterwards on another
     * node does not turn the ending into FAILED */
    f = fx_new(0, 0);
    running(f, 2);
    assert_int_equal(
        apply(f,
              (jobsm_event_t){.type = JOBSM_EV_PART_ENDED, .part = 0, .timed_out = 1, .rank = -1}),
        JOBSM_APPLIED);
    assert_int_equal(
        apply(f,
              (jobsm_event_t){.type = JOBSM_EV_RANK_FAILED, .part = 1, .rank = 3, .exit_code = 1}),
        JOBSM_APPLIED);
    assert_int_equal(f->info->failed_rank, 3);
    assert_int_equal(ended(f, 1, 1, 0), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__TIMEOUT);
    fx_free(f);
}

static void
test_worker_timeout_stops_gang(void **state)
{
    (void) state;
    fx_t *f = fx_new(0, 0);
    running(f, 2);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_ENDED,
                                              .part = 0,
                                              .exit_code = -1,
                                              .signal = 15,
                                              .rank = 0,
                                              .timed_out = 1,
                                              .text = "time limit 60 s"}),
                     JOBSM_APPLIED);
    assert_int_equal(f->sm.cause, JOBSM_CAUSE_TIME_LIMIT);
    assert_true(f->out.act & JOBSM_ACT_KILL);
    assert_string_equal(f->out.rows[0].detail,
                        "exit_code=-1 signal=15 rank=0 timed_out time limit 60 s");
    assert_int_equal(ended(f, 1, 143, 0), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__TIMEOUT);
    assert_int_equal(f->info->signal, 15);
    fx_free(f);
}

static void
test_start_timeout(void **state)
{
    (void) state;
    fx_t *f = fx_new(0, 0);
    submitted(f);
    placed(f, 2);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_START_TIMEOUT,
                                              .text = "not every rank started within 60 s"}),
                     JOBSM_APPLIED);
    assert_int_equal(f->out.act, JOBSM_ACT_SAVE | JOBSM_ACT_KILL);
    assert_int_equal(f->out.kill_grace, JOBSM_GRACE_NORMAL);
    assert_string_equal(f->info->reason, "not every rank started within 60 s");
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_START_TIMEOUT}), JOBSM_STALE);
    assert_int_equal(ended(f, 0, 143, 0), JOBSM_APPLIED);
    assert_int_equal(ended(f, 1, 143, 0), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__FAILED);
    assert_string_equal(f->info->reason, "not every rank started within 60 s");
    fx_free(f);
    /* a node lost during the teardown ranks higher: NODE_FAIL */
    f = fx_new(0, 0);
    submitted(f);
    placed(f, 2);
    apply(f, (jobsm_event_t){.type = JOBSM_EV_START_TIMEOUT, .text = "slow"});
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_NODE_LOST, .part = 1}),
                     JOBSM_APPLIED);
    assert_int_equal(ended(f, 0, 143, 0), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__NODE_FAIL);
    fx_free(f);
}

static void
test_start_timeout_requeues(void **state)
{
    (void) state;
    fx_t *f = fx_new(1, 0);
    submitted(f);
    placed(f, 1);
    apply(f, (jobsm_event_t){.type = JOBSM_EV_START_TIMEOUT, .text = "slow start"});
    assert_int_equal(ended(f, 0, 143, 0), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
    assert_string_equal(f->info->reason, "requeued after FAILED: slow start (attempt 2 of 2)");
    fx_free(f);
}

static void
test_dependency_failed(void **state)
{
    (void) state;
    fx_t *f = fx_new(0, 0);
    submitted(f);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_DEPENDENCY_FAILED,
                                              .text = "dependency job 7 ended FAILED"}),
                     JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__CANCELLED);
    assert_int_equal(f->sm.cause, JOBSM_CAUSE_DEPENDENCY);
    assert_string_equal(f->info->reason, "dependency job 7 ended FAILED");
    assert_string_equal(last_row(f)->reason, "dependency job 7 ended FAILED");
    assert_true(f->out.act & JOBSM_ACT_ENDED);
    fx_free(f);
}

/* ---- refused transitions ---- */

/* Where each event is allowed, written out independently of jobsm.c's table. */
static int
expect_allowed(jobsm_event_type_t t, Wslq__JobState s)
{
    int pending = s == WSLQ__JOB_STATE__PENDING;
    int starting = s == WSLQ__JOB_STATE__STARTING, run = s == WSLQ__JOB_STATE__RUNNING;
    switch (t) {
    case JOBSM_EV_SUBMIT:
        return s == WSLQ__JOB_STATE__JOB_STATE_UNSPECIFIED;
    case JOBSM_EV_PLACE:
    case JOBSM_EV_DEPENDENCY_FAILED:
    case JOBSM_EV_REQUEUE_TIMER:
    case JOBSM_EV_HOLD:
    case JOBSM_EV_RELEASE:
        return pending;
    case JOBSM_EV_REQUEUE:
        return starting || run;
    case JOBSM_EV_CANCEL:
        return pending || starting || run;
    case JOBSM_EV_TIME_LIMIT:
        return run;
    case JOBSM_EV_START_TIMEOUT:
        return starting;
    case JOBSM_EV_DRAIN:
    case JOBSM_EV_PREEMPT:
        return starting || run;
    case JOBSM_EV_SUSPEND:
    case JOBSM_EV_RESUME:
        return run;
    default: /* part events */
        return starting || run;
    }
}

/* ---- preemption, suspend and resume ---- */

static void
test_preempt_running(void **state)
{
    (void) state;
    fx_t *f = fx_new(0, 0); /* no retries: a preemption is not one */
    running(f, 2);
    const char *why = "preempted for job 7 (priority 5)";
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PREEMPT, .text = why}),
                     JOBSM_APPLIED);
    assert_int_equal(f->sm.cause, JOBSM_CAUSE_PREEMPTED);
    assert_true(f->out.act & JOBSM_ACT_KILL);
    assert_true(f->out.act & JOBSM_ACT_SAVE);
    assert_int_equal(f->out.kill_grace, JOBSM_GRACE_PREEMPT);
    assert_string_equal(f->out.kill_reason, why);
    assert_string_equal(last_row(f)->reason, why);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__RUNNING);
    /* twice is nothing new; nor is a time limit or a drain while it stops */
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PREEMPT, .text = why}), JOBSM_STALE);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_TIME_LIMIT}), JOBSM_STALE);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_DRAIN}), JOBSM_STALE);
    /* the ranks exit non-zero after their checkpoint: not a failure, no ending */
    assert_int_equal(ended(f, 0, 143, 0), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__RUNNING);
    assert_int_equal(f->sm.cause, JOBSM_CAUSE_PREEMPTED);
    assert_int_equal(ended(f, 1, -1, 15), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
    assert_int_equal(f->info->attempt, 1);
    assert_int_equal(f->info->uncounted_requeues, 1);
    assert_int_equal(f->info->preemptions, 1);
    assert_int_equal(f->info->n_allocs, 0);
    assert_int_equal(f->sm.not_before_mono, 0); /* no backoff: it may start at once */
    assert_int_equal(f->sm.cause, JOBSM_CAUSE_NONE);
    assert_int_equal(f->info->wait_reason, WSLQ__WAIT_REASON__WAIT_REASON_UNSPECIFIED);
    assert_true(f->out.act & JOBSM_ACT_REQUEUED);
    assert_true(f->out.act & JOBSM_ACT_RESCHED);
    assert_false(f->out.act & JOBSM_ACT_ENDED);
    assert_non_null(strstr(f->info->reason, "requeued: preempted for job 7 (priority 5)"));
    assert_non_null(strstr(f->info->reason, "retries not used"));
    assert_int_equal(last_row(f)->state, WSLQ__JOB_STATE__PENDING);
    assert_true(jobsm_placeable(&f->sm, f->info, 5000));
    /* a preempted job is pending: preempting it again is refused */
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PREEMPT}), -1);
    assert_non_null(strstr(f->err.text, "preempt is not allowed in state PENDING"));
    /* it runs again, and can be preempted again without using a retry */
    placed(f, 1);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PREEMPT}), JOBSM_APPLIED);
    assert_string_equal(f->out.kill_reason, "preempted for a higher-priority job");
    assert_int_equal(ended(f, 0, 0, 0), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
    assert_int_equal(f->info->attempt, 2);
    assert_int_equal(f->info->uncounted_requeues, 2);
    assert_int_equal(f->info->preemptions, 2);
    fx_free(f);
}

static void
test_preempt_against_other_causes(void **state)
{
    (void) state;
    /* a cancel overrides a preemption under way: the job ends CANCELLED */
    fx_t *f = fx_new(3, 1);
    running(f, 1);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PREEMPT}), JOBSM_APPLIED);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_CANCEL}), JOBSM_APPLIED);
    assert_int_equal(f->sm.cause, JOBSM_CAUSE_CANCELLED);
    assert_int_equal(ended(f, 0, -1, 15), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__CANCELLED);
    assert_int_equal(f->info->preemptions, 0);
    fx_free(f);
    /* a job already being cancelled, or past its time limit, is not preempted */
    f = fx_new(0, 0);
    running(f, 1);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_CANCEL}), JOBSM_APPLIED);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PREEMPT}), JOBSM_STALE);
    assert_int_equal(f->sm.cause, JOBSM_CAUSE_CANCELLED);
    fx_free(f);
    f = fx_new(0, 0);
    running(f, 1);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_TIME_LIMIT}), JOBSM_APPLIED);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PREEMPT}), JOBSM_STALE);
    assert_int_equal(ended(f, 0, -1, 15), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__TIMEOUT);
    fx_free(f);
    /* a node lost while it stops: NODE_LOST ranks below PREEMPTED, so it is still requeued
     * uncounted */
    f = fx_new(0, 0);
    running(f, 2);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PREEMPT}), JOBSM_APPLIED);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_NODE_LOST, .part = 1}),
                     JOBSM_APPLIED);
    assert_int_equal(f->sm.cause, JOBSM_CAUSE_PREEMPTED);
    assert_int_equal(ended(f, 0, 0, 0), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
    assert_int_equal(f->info->uncounted_requeues, 1);
    fx_free(f);
    /* STARTING can be preempted too */
    f = fx_new(0, 0);
    submitted(f);
    placed(f, 1);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PREEMPT}), JOBSM_APPLIED);
    assert_int_equal(ended(f, 0, 0, 0), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
    assert_int_equal(f->info->preemptions, 1);
    fx_free(f);
}

static void
test_suspend_and_resume(void **state)
{
    (void) state;
    fx_t *f = fx_new(0, 0);
    running(f, 1);
    const char *why = "the owner of n0 is present (input 3 s ago)";
    assert_int_equal(
        apply(f, (jobsm_event_t){.type = JOBSM_EV_SUSPEND, .text = why, .now_wall_ms = 2000000}),
        JOBSM_APPLIED);
    assert_true(f->info->suspended);
    assert_int_equal(f->info->suspended_since_ms, 2000000);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__RUNNING);
    assert_true(f->out.act & JOBSM_ACT_SUSPEND);
    assert_true(f->out.act & JOBSM_ACT_SAVE);
    assert_false(f->out.act & JOBSM_ACT_KILL);
    assert_int_equal(f->out.n_rows, 1);
    assert_non_null(strstr(last_row(f)->reason, "suspended: the owner of n0 is present"));
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_SUSPEND}), JOBSM_STALE);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_RESUME, .now_wall_ms = 2090000}),
                     JOBSM_APPLIED);
    assert_false(f->info->suspended);
    assert_int_equal(f->info->suspended_since_ms, 0);
    assert_int_equal(f->info->suspended_ms, 90000);
    assert_true(f->out.act & JOBSM_ACT_SUSPEND);
    assert_string_equal(last_row(f)->reason, "resumed");
    assert_string_equal(last_row(f)->detail, "suspended 90 s");
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_RESUME}), JOBSM_STALE);
    /* stopped again, then it ends while stopped: the stop counts up to the end */
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_SUSPEND, .now_wall_ms = 3000000}),
                     JOBSM_APPLIED);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_CANCEL}), JOBSM_APPLIED);
    /* being stopped by a kill: no suspend, but a resume is still accounted */
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_SUSPEND}), JOBSM_STALE);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_ENDED,
                                              .part = 0,
                                              .signal = 15,
                                              .now_wall_ms = 3010000}),
                     JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__CANCELLED);
    assert_false(f->info->suspended);
    assert_int_equal(f->info->suspended_since_ms, 0);
    assert_int_equal(f->info->suspended_ms, 100000);
    fx_free(f);
}

static void
test_evict_suspended(void **state)
{
    (void) state;
    /* suspended too long: preempted while stopped, requeued, and its next run starts with
     * no suspended time */
    fx_t *f = fx_new(0, 0);
    running(f, 1);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_SUSPEND, .now_wall_ms = 2000000}),
                     JOBSM_APPLIED);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PREEMPT,
                                              .text = "evicted: suspended longer than 30 min"}),
                     JOBSM_APPLIED);
    assert_true(f->info->suspended); /* until its ranks are gone */
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_ENDED,
                                              .part = 0,
                                              .signal = 15,
                                              .now_wall_ms = 2005000}),
                     JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
    assert_false(f->info->suspended);
    assert_int_equal(f->info->suspended_ms, 5000);
    assert_non_null(strstr(f->info->reason, "evicted: suspended longer than 30 min"));
    assert_int_equal(f->info->preemptions, 1);
    placed(f, 1);
    assert_int_equal(f->info->suspended_ms, 0);
    /* STARTING: not suspended (refused), nor resumed */
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_SUSPEND}), -1);
    assert_non_null(strstr(f->err.text, "suspend is not allowed in state STARTING"));
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_RESUME}), -1);
    assert_int_equal(f->out.act, 0);
    fx_free(f);
}

/* ---- hold, release, requeue ---- */

static void
test_hold_and_release(void **state)
{
    (void) state;
    fx_t *f = fx_new(0, 0);
    submitted(f);
    assert_true(jobsm_placeable(&f->sm, f->info, 5000));
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_HOLD}), JOBSM_APPLIED);
    assert_true(f->info->held);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
    assert_string_equal(f->info->reason, "held");
    assert_true(f->out.act & JOBSM_ACT_SAVE);
    assert_int_equal(f->out.n_rows, 1);
    assert_string_equal(last_row(f)->reason, "held");
    assert_false(jobsm_placeable(&f->sm, f->info, 1 << 30)); /* never, however long */
    /* a second hold changes nothing */
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_HOLD}), JOBSM_STALE);
    /* a held job can still be cancelled */
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_RELEASE}), JOBSM_APPLIED);
    assert_false(f->info->held);
    assert_string_equal(f->info->reason, "");
    assert_true(f->out.act & JOBSM_ACT_RESCHED);
    assert_string_equal(last_row(f)->reason, "released");
    assert_true(jobsm_placeable(&f->sm, f->info, 5000));
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_RELEASE}), JOBSM_STALE);
    fx_free(f);

    /* submit --hold: held from the first row; cancel still ends it */
    f = fx_new(0, 0);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_SUBMIT, .held = 1}), JOBSM_APPLIED);
    assert_true(f->info->held);
    assert_string_equal(last_row(f)->reason, "submitted held");
    assert_false(jobsm_placeable(&f->sm, f->info, 5000));
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_CANCEL}), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__CANCELLED);
    fx_free(f);
}

static void
test_requeue_running(void **state)
{
    (void) state;
    fx_t *f = fx_new(0, 0); /* no retries: a requeue is not one */
    running(f, 2);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_REQUEUE}), JOBSM_APPLIED);
    assert_int_equal(f->sm.cause, JOBSM_CAUSE_REQUEUED);
    assert_true(f->out.act & JOBSM_ACT_KILL);
    assert_int_equal(f->out.kill_grace, JOBSM_GRACE_NORMAL);
    assert_string_equal(f->out.kill_reason, "requeued");
    assert_string_equal(last_row(f)->reason, "requeue requested");
    /* twice is nothing new */
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_REQUEUE}), JOBSM_STALE);
    /* the ranks die of the SIGTERM: not a failure, and no ending */
    assert_int_equal(ended(f, 0, -1, 15), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__RUNNING);
    assert_int_equal(ended(f, 1, 0, 0), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
    assert_int_equal(f->info->attempt, 1);
    assert_int_equal(f->info->n_allocs, 0);
    assert_int_equal(f->sm.not_before_mono, 0); /* no backoff: it may start at once */
    assert_int_equal(f->sm.cause, JOBSM_CAUSE_NONE);
    assert_true(f->out.act & JOBSM_ACT_REQUEUED);
    assert_false(f->out.act & JOBSM_ACT_ENDED);
    assert_non_null(strstr(f->info->reason, "requeued by its owner or an admin (attempt 2)"));
    assert_true(jobsm_placeable(&f->sm, f->info, 5000));
    /* and it runs again */
    placed(f, 1);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__STARTING);
    fx_free(f);
}

static void
test_requeue_starting_and_against_cancel(void **state)
{
    (void) state;
    /* a starting job can be requeued too */
    fx_t *f = fx_new(0, 0);
    submitted(f);
    placed(f, 1);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_REQUEUE}), JOBSM_APPLIED);
    assert_int_equal(ended(f, 0, 0, 0), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
    assert_int_equal(f->info->attempt, 1);
    fx_free(f);

    /* a cancel already under way wins: the requeue is stale, the job ends CANCELLED */
    f = fx_new(0, 0);
    running(f, 1);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_CANCEL}), JOBSM_APPLIED);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_REQUEUE}), JOBSM_STALE);
    assert_int_equal(ended(f, 0, -1, 15), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__CANCELLED);
    fx_free(f);

    /* a requeue first, then a cancel: the first of equal rank wins, the job goes back */
    f = fx_new(0, 0);
    running(f, 1);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_REQUEUE}), JOBSM_APPLIED);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_CANCEL}), JOBSM_APPLIED);
    assert_int_equal(ended(f, 0, -1, 15), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
    fx_free(f);

    /* a requeue overrides a failure being torn down: the job goes back, not FAILED */
    f = fx_new(0, 0);
    running(f, 2);
    assert_int_equal(ended(f, 0, 3, 0), JOBSM_APPLIED); /* rank failed, kill sent */
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_REQUEUE}), JOBSM_APPLIED);
    assert_false(f->out.act & JOBSM_ACT_KILL); /* already sent */
    assert_int_equal(ended(f, 1, -1, 15), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
    fx_free(f);
}

/* A job in state s, as the machine would have it. */
static fx_t *
job_in(Wslq__JobState s)
{
    fx_t *f = fx_new(0, 0);
    if (s == WSLQ__JOB_STATE__JOB_STATE_UNSPECIFIED)
        return f;
    submitted(f);
    if (s == WSLQ__JOB_STATE__PENDING)
        return f;
    placed(f, 2);
    if (s == WSLQ__JOB_STATE__STARTING)
        return f;
    apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_STARTED, .part = 0});
    apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_STARTED, .part = 1});
    if (s == WSLQ__JOB_STATE__RUNNING)
        return f;
    if (s == WSLQ__JOB_STATE__CANCELLED)
        apply(f, (jobsm_event_t){.type = JOBSM_EV_CANCEL});
    if (s == WSLQ__JOB_STATE__TIMEOUT)
        apply(f, (jobsm_event_t){.type = JOBSM_EV_TIME_LIMIT});
    if (s == WSLQ__JOB_STATE__NODE_FAIL) {
        apply(f, (jobsm_event_t){.type = JOBSM_EV_NODE_LOST, .part = 0});
        apply(f, (jobsm_event_t){.type = JOBSM_EV_NODE_LOST, .part = 1});
        return f;
    }
    if (s == WSLQ__JOB_STATE__OUT_OF_MEMORY) {
        apply(f, (jobsm_event_t){
                     .type = JOBSM_EV_PART_ENDED, .part = 0, .signal = 9, .out_of_memory = 1});
        ended(f, 1, 0, 0);
        return f;
    }
    ended(f, 0, s == WSLQ__JOB_STATE__FAILED, 0);
    ended(f, 1, 0, 0);
    return f;
}

static void
test_every_refusal(void **state)
{
    (void) state;
    Wslq__JobState states[] = {
        WSLQ__JOB_STATE__JOB_STATE_UNSPECIFIED,
        WSLQ__JOB_STATE__PENDING,
        WSLQ__JOB_STATE__STARTING,
        WSLQ__JOB_STATE__RUNNING,
        WSLQ__JOB_STATE__COMPLETED,
        WSLQ__JOB_STATE__FAILED,
        WSLQ__JOB_STATE__CANCELLED,
        WSLQ__JOB_STATE__TIMEOUT,
        WSLQ__JOB_STATE__NODE_FAIL,
        WSLQ__JOB_STATE__OUT_OF_MEMORY,
    };
    int refused = 0, allowed = 0;
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        for (int t = 0; t < JOBSM_EV_COUNT; t++) {
            fx_t *f = job_in(states[i]);
            assert_int_equal(f->info->state, states[i]);
            Wslq__JobState before = f->info->state;
            size_t parts = f->sm.n_parts;
            jobsm_cause_t cause = f->sm.cause;
            uint32_t attempt = f->info->attempt;
            if (t == JOBSM_EV_PLACE && f->info->n_allocs == 0)
                alloc(f, 1);
            int rc = apply(
                f,
                (jobsm_event_t){.type = (jobsm_event_type_t) t, .part = 0, .now_mono_ms = 1 << 30});
            if (expect_allowed((jobsm_event_type_t) t, states[i])) {
                assert_true(rc == JOBSM_APPLIED || rc == JOBSM_STALE);
                allowed++;
            } else {
                if (rc != -1)
                    fail_msg("%s in %s: expected a refusal, got %d",
                             jobsm_event_name((jobsm_event_type_t) t), wire_state_name(states[i]),
                             rc);
                assert_non_null(strstr(f->err.text, jobsm_event_name((jobsm_event_type_t) t)));
                assert_non_null(strstr(f->err.text, "not allowed"));
                assert_int_equal(f->err.code, WQ_EINVAL);
                /* nothing changed */
                assert_int_equal(f->info->state, before);
                assert_int_equal(f->sm.n_parts, parts);
                assert_int_equal(f->sm.cause, cause);
                assert_int_equal(f->info->attempt, attempt);
                assert_int_equal(f->out.act, 0);
                assert_int_equal(f->out.n_rows, 0);
                refused++;
            }
            fx_free(f);
        }
    }
    assert_int_equal(refused + allowed, 10 * JOBSM_EV_COUNT);
    assert_true(refused > 70);
}

static void
test_bad_arguments(void **state)
{
    (void) state;
    fx_t *f = fx_new(0, 0);
    running(f, 2);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_ENDED, .part = 2}), -1);
    assert_non_null(strstr(f->err.text, "part 2 of 2"));
    assert_int_equal(apply(f, (jobsm_event_t){.type = (jobsm_event_type_t) 99}), -1);
    assert_non_null(strstr(f->err.text, "unknown event"));
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__RUNNING);
    fx_free(f);
    /* placing without an allocation */
    f = fx_new(0, 0);
    submitted(f);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PLACE}), -1);
    assert_non_null(strstr(f->err.text, "without an allocation"));
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
    fx_free(f);
}

static void
test_load_after_restart(void **state)
{
    (void) state;
    fx_t *f = fx_new(0, 0);
    running(f, 2);
    jobsm_t sm;
    jobsm_load(&sm, f->info);
    assert_int_equal(sm.n_parts, 2);
    assert_true(sm.parts[0].started && sm.parts[1].started);
    assert_int_equal(sm.cause, JOBSM_CAUSE_NONE);
    jobsm_fini(&sm);
    f->info->state = WSLQ__JOB_STATE__STARTING;
    jobsm_load(&sm, f->info);
    assert_false(sm.parts[0].started);
    jobsm_fini(&sm);
    f->info->state = WSLQ__JOB_STATE__PENDING;
    jobsm_load(&sm, f->info);
    assert_int_equal(sm.n_parts, 0);
    jobsm_fini(&sm);
    f->info->state = WSLQ__JOB_STATE__RUNNING;
    fx_free(f);
}

/* Windows reset the GPU (TDR): the rank's RankFailed comes first, then its node's JobEnded
 * says gpu_reset. FAILED with its own reason; retried like a lost node (spec.retries). */
static void
test_gpu_reset(void **state)
{
    (void) state;
    fx_t *f = fx_new(1, 0); /* --retries 1, no --requeue-on-fail */
    running(f, 1);
    assert_int_equal(
        apply(f,
              (jobsm_event_t){.type = JOBSM_EV_RANK_FAILED, .part = 0, .exit_code = 1, .rank = 0}),
        JOBSM_APPLIED);
    assert_int_equal(f->sm.cause, JOBSM_CAUSE_RANK_FAILED);
    jobsm_event_t ev = {.type = JOBSM_EV_PART_ENDED,
                        .part = 0,
                        .exit_code = 1,
                        .rank = 0,
                        .gpu_reset = 1,
                        .gpu_reset_why = "a CUDA launch timeout in the job's output: x"};
    assert_int_equal(apply(f, ev), JOBSM_APPLIED);
    /* a retry left: back to PENDING with the reason */
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
    assert_int_equal(f->info->attempt, 1);
    assert_string_equal(f->info->reason,
                        "requeued after FAILED: GPU reset by Windows (TDR) on n0: a CUDA launch "
                        "timeout in the job's output: x (attempt 2 of 2)");
    assert_string_equal(f->info->end_cause, "");
    assert_false(f->info->kill_sent);
    /* the second attempt resets the GPU again, without RankFailed first: out of retries */
    alloc(f, 1);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PLACE, .now_mono_ms = 999999}),
                     JOBSM_APPLIED);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_STARTED}), JOBSM_APPLIED);
    ev.gpu_reset_why = NULL;
    assert_int_equal(apply(f, ev), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__FAILED);
    assert_string_equal(f->info->reason,
                        "GPU reset by Windows (TDR) on n0: the worker saw the GPU reset");
    assert_string_equal(last_row(f)->reason, f->info->reason);
    fx_free(f);

    /* a flag on a clean exit, or on a node other than the failed one, changes nothing */
    f = fx_new(0, 0);
    running(f, 2);
    assert_int_equal(ended(f, 0, 3, 0), JOBSM_APPLIED);
    ev.part = 1;
    assert_int_equal(apply(f, ev), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__FAILED);
    assert_string_equal(f->info->reason, "rank 1 on n0 exited with code 3");
    fx_free(f);
    /* the worker's time limit stopped it: TIMEOUT, whatever its output says */
    f = fx_new(0, 0);
    running(f, 1);
    ev.part = 0;
    ev.timed_out = 1;
    assert_int_equal(apply(f, ev), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__TIMEOUT);
    fx_free(f);
    f = fx_new(0, 0);
    running(f, 1);
    ev.timed_out = 0;
    ev.exit_code = 0;
    assert_int_equal(apply(f, ev), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__COMPLETED);
    fx_free(f);
}

/* A preemption waiting out its grace when the scheduler restarts: the cause and the kill are
 * in the saved JobInfo, so the job still goes back to PENDING (not FAILED) when its ranks end
 * killed, and is not killed twice. */
static void
test_load_keeps_ending(void **state)
{
    (void) state;
    fx_t *f = fx_new(0, 0);
    running(f, 2);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PREEMPT, .text = "evicted: x"}),
                     JOBSM_APPLIED);
    assert_true(f->out.act & JOBSM_ACT_SAVE);
    /* the row as saved and read back */
    size_t n = wslq__job_info__get_packed_size(f->info);
    uint8_t *buf = wq_malloc(n);
    wslq__job_info__pack(f->info, buf);
    Wslq__JobInfo *back = wslq__job_info__unpack(NULL, n, buf);
    free(buf);
    assert_non_null(back);
    assert_string_equal(back->end_cause, "preempted");
    assert_true(back->kill_sent);
    jobsm_fini(&f->sm);
    wslq__job_info__free_unpacked(f->info, NULL);
    f->info = back;
    jobsm_load(&f->sm, f->info);
    assert_int_equal(f->sm.cause, JOBSM_CAUSE_PREEMPTED);
    assert_true(f->sm.kill_sent);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PREEMPT}), JOBSM_STALE);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_TIME_LIMIT}), JOBSM_STALE);
    jobsm_event_t ev = {.type = JOBSM_EV_PART_ENDED, .exit_code = -1, .signal = 15, .killed = 1};
    assert_int_equal(apply(f, ev), JOBSM_APPLIED);
    ev.part = 1;
    assert_int_equal(apply(f, ev), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
    assert_int_equal(f->info->preemptions, 1);
    assert_int_equal(f->info->uncounted_requeues, 1);
    assert_string_equal(f->info->end_cause, "");
    /* a name this build does not know is nothing */
    fx_t *g = fx_new(0, 0);
    running(g, 1);
    wire_set_str(&g->info->end_cause, "made_up");
    g->info->kill_sent = 1;
    jobsm_t sm;
    jobsm_load(&sm, g->info);
    assert_int_equal(sm.cause, JOBSM_CAUSE_NONE);
    assert_false(sm.kill_sent);
    jobsm_fini(&sm);
    fx_free(g);
    fx_free(f);
}

/* wslq drain --now: SIGTERM with the normal grace, then back to PENDING at once, and the
 * attempt does not use up a retry. */
static void
test_uncounted_requeues_without_using_retries(void **state)
{
    (void) state;
    const char *why = "node n0 drained by root: windows update";
    for (unsigned retries = 0; retries < 2; retries++) {
        fx_t *f = fx_new(retries, 0);
        running(f, 2);
        assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_DRAIN, .text = why}),
                         JOBSM_APPLIED);
        assert_true(f->out.act & JOBSM_ACT_KILL);
        assert_int_equal(f->out.kill_grace, JOBSM_GRACE_NORMAL);
        assert_string_equal(f->out.kill_reason, why);
        assert_int_equal(f->info->state, WSLQ__JOB_STATE__RUNNING);
        /* a second drain while the first is under way changes nothing */
        assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_DRAIN, .text = why}),
                         JOBSM_STALE);
        /* the ranks end by the signal, or exit on it with a code: not a failure */
        assert_int_equal(ended(f, 0, 0, 15), JOBSM_APPLIED);
        assert_int_equal(f->info->state, WSLQ__JOB_STATE__RUNNING);
        assert_int_equal(ended(f, 1, 143, 0), JOBSM_APPLIED);
        assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
        assert_true(f->out.act & JOBSM_ACT_REQUEUED);
        assert_int_equal(f->info->attempt, 1);
        assert_int_equal(f->info->uncounted_requeues, 1);
        assert_true(jobsm_placeable(&f->sm, f->info, 5000)); /* no backoff */
        assert_string_equal(f->info->reason, "requeued: node n0 drained by root: windows "
                                             "update (attempt 2 next; retries not used)");
        /* its own retries are all still there: a lost node requeues it only if it has one */
        placed(f, 2);
        assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_NODE_LOST, .part = 0}),
                         JOBSM_APPLIED);
        assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_NODE_LOST, .part = 1}),
                         JOBSM_APPLIED);
        if (retries == 0) {
            assert_int_equal(f->info->state, WSLQ__JOB_STATE__NODE_FAIL);
        } else {
            assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
            assert_non_null(strstr(f->info->reason, "(attempt 2 of 2)"));
        }
        fx_free(f);
    }
    /* a cancel overrides a drain under way; a drain does not override a cancel */
    fx_t *f = fx_new(0, 0);
    running(f, 1);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_DRAIN, .text = why}), JOBSM_APPLIED);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_CANCEL}), JOBSM_APPLIED);
    assert_int_equal(ended(f, 0, 0, 15), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__CANCELLED);
    fx_free(f);
    f = fx_new(0, 0);
    running(f, 1);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_CANCEL}), JOBSM_APPLIED);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_DRAIN, .text = why}), JOBSM_STALE);
    assert_int_equal(ended(f, 0, 0, 15), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__CANCELLED);
    fx_free(f);
}

/* A drain --now under way when the scheduler restarts: the stored record says so (end_cause
 * "drained", kill_sent), and the job read back still goes back to the queue when its ranks
 * end, whatever their exit. A row an older scheduler stored, with its drain flag (field 73,
 * now reserved) beside them, reads back the same. */
static void
test_drain_survives_restart(void **state)
{
    (void) state;
    const char *why = "node n0 drained by root: repair";
    for (int code = 0; code < 4; code++) {
        fx_t *f = fx_new(0, 0);
        running(f, 2);
        assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_DRAIN, .text = why}),
                         JOBSM_APPLIED);
        assert_true(f->out.act & JOBSM_ACT_SAVE);
        assert_string_equal(f->info->end_cause, "drained");
        assert_true(f->info->kill_sent);
        /* the restart: the row as stored, read back; the machine rebuilt from it */
        size_t len = wslq__job_info__get_packed_size(f->info);
        uint8_t *buf = wq_malloc(len + 3);
        wslq__job_info__pack(f->info, buf);
        if (code >= 2) { /* an older scheduler's row: drain_requeue = 1 (73, varint) too */
            buf[len++] = 0xc8;
            buf[len++] = 0x04;
            buf[len++] = 0x01;
        }
        Wslq__JobInfo *back = wslq__job_info__unpack(NULL, len, buf);
        free(buf);
        assert_non_null(back);
        jobsm_fini(&f->sm);
        wslq__job_info__free_unpacked(f->info, NULL);
        f->info = back;
        jobsm_load(&f->sm, f->info);
        assert_int_equal(f->sm.cause, JOBSM_CAUSE_DRAINED);
        assert_true(f->sm.kill_sent);
        /* its node re-registers still running it: the same kill again */
        jobsm_out_t again;
        memset(&again, 0, sizeof again);
        assert_int_equal(jobsm_kill_again(&f->sm, f->info, &again), 0);
        assert_int_equal(again.act, JOBSM_ACT_KILL);
        assert_int_equal(again.kill_grace, JOBSM_GRACE_NORMAL);
        assert_string_equal(again.kill_reason, why);
        /* nothing else takes it over meanwhile */
        assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_DRAIN, .text = why}),
                         JOBSM_STALE);
        assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_TIME_LIMIT}), JOBSM_STALE);
        /* the worker's kill grace ran out (SIGKILL), or the ranks exited 0 on SIGTERM */
        int clean = code % 2;
        assert_int_equal(ended(f, 0, clean ? 0 : 137, clean ? 0 : 9), JOBSM_APPLIED);
        assert_int_equal(f->info->state, WSLQ__JOB_STATE__RUNNING);
        assert_int_equal(ended(f, 1, 0, 0), JOBSM_APPLIED);
        assert_int_equal(f->info->state, WSLQ__JOB_STATE__PENDING);
        assert_true(f->out.act & JOBSM_ACT_REQUEUED);
        assert_int_equal(f->info->attempt, 1);
        assert_int_equal(f->info->uncounted_requeues, 1);
        assert_string_equal(f->info->end_cause, "");
        assert_false(f->info->kill_sent);
        assert_string_equal(f->info->reason, "requeued: node n0 drained by root: repair "
                                             "(attempt 2 next; retries not used)");
        /* the next attempt is an ordinary one again: a restart now leaves it alone */
        placed(f, 1);
        jobsm_t sm;
        jobsm_load(&sm, f->info);
        assert_int_equal(sm.cause, JOBSM_CAUSE_NONE);
        assert_false(sm.kill_sent);
        assert_int_equal(jobsm_kill_again(&sm, f->info, &again), -1);
        jobsm_fini(&sm);
        fx_free(f);
    }
    /* a cancel overtaking it ends it CANCELLED: stored, so a restart finishes the cancel */
    fx_t *f = fx_new(0, 0);
    running(f, 1);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_DRAIN, .text = why}), JOBSM_APPLIED);
    assert_string_equal(f->info->end_cause, "drained");
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_CANCEL}), JOBSM_APPLIED);
    assert_string_equal(f->info->end_cause, "cancelled");
    assert_true(f->info->kill_sent);
    assert_true(f->out.act & JOBSM_ACT_SAVE);
    jobsm_t sm;
    jobsm_load(&sm, f->info);
    assert_int_equal(sm.cause, JOBSM_CAUSE_CANCELLED);
    assert_true(sm.kill_sent);
    jobsm_out_t again;
    memset(&again, 0, sizeof again);
    assert_int_equal(jobsm_kill_again(&sm, f->info, &again), 0);
    assert_string_equal(again.kill_reason, "cancelled");
    jobsm_fini(&sm);
    assert_int_equal(ended(f, 0, 0, 15), JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__CANCELLED);
    assert_string_equal(f->info->end_cause, "");
    fx_free(f);
}

/* One rule for every cause a restart may find a job being stopped for: the kill again carries
 * the cause's reason and grace (preempt grace for an eviction, the short one for a broken
 * gang); a job nothing is stopping gets none. */
static void
test_kill_again_every_cause(void **state)
{
    (void) state;
    struct {
        jobsm_event_t ev;
        jobsm_cause_t cause;
        jobsm_grace_t grace;
        const char *reason;
    } cases[] = {
        {{.type = JOBSM_EV_PREEMPT, .text = "evicted: the owner of n0 is present"},
         JOBSM_CAUSE_PREEMPTED,
         JOBSM_GRACE_PREEMPT,
         "evicted: the owner of n0 is present"},
        {{.type = JOBSM_EV_CANCEL}, JOBSM_CAUSE_CANCELLED, JOBSM_GRACE_NORMAL, "cancelled"},
        {{.type = JOBSM_EV_REQUEUE}, JOBSM_CAUSE_REQUEUED, JOBSM_GRACE_NORMAL, "requeued"},
        {{.type = JOBSM_EV_TIME_LIMIT},
         JOBSM_CAUSE_TIME_LIMIT,
         JOBSM_GRACE_NORMAL,
         "time limit reached"},
        {{.type = JOBSM_EV_RANK_FAILED, .part = 0, .rank = 0, .exit_code = 3},
         JOBSM_CAUSE_RANK_FAILED,
         JOBSM_GRACE_GANG,
         "another rank of the job failed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fx_t *f = fx_new(0, 0);
        running(f, 2);
        jobsm_out_t again;
        memset(&again, 0, sizeof again);
        assert_int_equal(jobsm_kill_again(&f->sm, f->info, &again), -1);
        assert_int_equal(apply(f, cases[i].ev), JOBSM_APPLIED);
        assert_true(f->out.act & JOBSM_ACT_KILL);
        jobsm_t sm; /* the restart */
        jobsm_load(&sm, f->info);
        assert_int_equal(sm.cause, cases[i].cause);
        assert_true(sm.kill_sent);
        assert_int_equal(jobsm_kill_again(&sm, f->info, &again), 0);
        assert_int_equal(again.act, JOBSM_ACT_KILL);
        assert_int_equal(again.kill_grace, cases[i].grace);
        assert_int_equal(f->out.kill_grace, cases[i].grace); /* as first sent */
        assert_string_equal(again.kill_reason, cases[i].reason);
        assert_string_equal(f->out.kill_reason, cases[i].reason);
        jobsm_fini(&sm);
        fx_free(f);
    }
}

/* A rank that never ran its program: the ended reason ends with the worker's line (its
 * "rank N: " left out); a generic line, or another part's, adds nothing; a requeue forgets it. */
static void
test_failure_detail(void **state)
{
    (void) state;
    fx_t *f = fx_new(0, 0);
    running(f, 2);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_ENDED,
                                              .part = 1,
                                              .exit_code = 1,
                                              .rank = 1,
                                              .text = "rank 1: cannot use working directory "
                                                      "/nope on n1: No such file or directory"}),
                     JOBSM_APPLIED);
    assert_string_equal(f->info->failure_detail,
                        "cannot use working directory /nope on n1: No such file or directory");
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_ENDED,
                                              .part = 0,
                                              .exit_code = 143,
                                              .rank = 0,
                                              .killed = 1,
                                              .text = "killed: another rank failed"}),
                     JOBSM_APPLIED);
    assert_int_equal(f->info->state, WSLQ__JOB_STATE__FAILED);
    assert_string_equal(f->info->reason, "rank 1 on n1 exited with code 1: cannot use working "
                                         "directory /nope on n1: No such file or directory");
    fx_free(f);

    f = fx_new(0, 0);
    running(f, 1);
    assert_int_equal(apply(f, (jobsm_event_t){.type = JOBSM_EV_PART_ENDED,
                                              .part = 0,
                                              .exit_code = 2,
                                              .rank = 0,
                                              .text = "rank 0 exited with code 2"}),
                     JOBSM_APPLIED);
    assert_string_equal(f->info->reason, "rank 0 on n0 exited with code 2");
    fx_free(f);
}

static void
test_names(void **state)
{
    (void) state;
    assert_string_equal(jobsm_cause_name(JOBSM_CAUSE_RANK_FAILED), "rank_failed");
    assert_string_equal(jobsm_cause_name(JOBSM_CAUSE_NONE), "none");
    assert_string_equal(jobsm_cause_name(JOBSM_CAUSE_COUNT), "?");
    assert_string_equal(jobsm_event_name(JOBSM_EV_PART_MISSING), "part_missing");
    for (int t = 0; t < JOBSM_EV_COUNT; t++)
        assert_string_not_equal(jobsm_event_name((jobsm_event_type_t) t), "?");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_submit),
        cmocka_unit_test(test_drain_survives_restart),
        cmocka_unit_test(test_kill_again_every_cause),
        cmocka_unit_test(test_place_and_start),
        cmocka_unit_test(test_complete),
        cmocka_unit_test(test_rank_exit_fails_gang),
        cmocka_unit_test(test_rank_signal),
        cmocka_unit_test(test_output_lost_is_told),
        cmocka_unit_test(test_rank_failed_event),
        cmocka_unit_test(test_node_lost_requeues_with_backoff),
        cmocka_unit_test(test_backoff_doubles_to_a_cap),
        cmocka_unit_test(test_failure_without_requeue_flag_is_final),
        cmocka_unit_test(test_requeue_on_fail_then_out_of_attempts),
        cmocka_unit_test(test_first_failure_wins),
        cmocka_unit_test(test_cancel_overrides),
        cmocka_unit_test(test_cancel_pending),
        cmocka_unit_test(test_time_limit),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_worker_timeout_stops_gang),
        cmocka_unit_test(test_start_timeout),
        cmocka_unit_test(test_start_timeout_requeues),
        cmocka_unit_test(test_dependency_failed),
        cmocka_unit_test(test_hold_and_release),
        cmocka_unit_test(test_requeue_running),
        cmocka_unit_test(test_requeue_starting_and_against_cancel),
        cmocka_unit_test(test_every_refusal),
        cmocka_unit_test(test_preempt_running),
        cmocka_unit_test(test_preempt_against_other_causes),
        cmocka_unit_test(test_suspend_and_resume),
        cmocka_unit_test(test_evict_suspended),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_load_after_restart),
        cmocka_unit_test(test_gpu_reset),
        cmocka_unit_test(test_load_keeps_ending),
        cmocka_unit_test(test_uncounted_requeues_without_using_retries),
        cmocka_unit_test(test_failure_detail),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
