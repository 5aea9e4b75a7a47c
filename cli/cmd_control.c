/* wslq hold / release / requeue: keep pending jobs from starting, let them start again, or
 * stop running jobs and put them back in the queue. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/opt.h"
#include "common/mem.h"
#include "proto/jobspec.h"

static const char usage_hold[] =
    "usage: wslq hold JOB [JOB...]      (JOB: 42, an array 40, a task 40_7, tasks 40_[3-9])\n"
    "\n"
    "Hold pending jobs: they stay in the queue but are never started until 'wslq release'.\n"
    "Only a job's owner or an admin may. A job named alone must be pending and not held; in\n"
    "an array or a task list, jobs that are not are passed over.\n"
    "  --scheduler ADDR, --timeout SEC   as for every command\n";

static const char usage_release[] =
    "usage: wslq release JOB [JOB...]   (JOB: 42, an array 40, a task 40_7, tasks 40_[3-9])\n"
    "\n"
    "Release held jobs: they may start again, in their place in the queue.\n"
    "  --scheduler ADDR, --timeout SEC   as for every command\n";

static const char usage_requeue[] =
    "usage: wslq requeue JOB [JOB...]   (JOB: 42, an array 40, a task 40_7, tasks 40_[3-9])\n"
    "\n"
    "Stop starting or running jobs (SIGTERM, then SIGKILL after the grace period) and put\n"
    "them back in the queue as pending, attempt + 1; they start again like any pending job.\n"
    "A requeue does not count against --retries.\n"
    "  --scheduler ADDR, --timeout SEC   as for every command\n";

static const opt_t opts[] = {OPT_COMMON, {NULL, 0, 0, 0}};

static int
run(cli_ctx_t *ctx,
    int argc,
    char **argv,
    Wslq__JobControlRequest__Op op,
    const char *usage,
    const char *done_verb)
{
    wq_error_t err = {0};
    opt_parser_t p;
    opt_parser_init(&p, argc, argv, 0);
    int id = opt_flag_loop(ctx, &p, opts, 0, usage, NULL, &err);
    if (id > 0) {
        opt_parser_fini(&p);
        return CLI_OK;
    }
    if (id == 0 && p.n_operands == 0) {
        wq_fail(&err, WQ_EINVAL, "no job id given");
        id = -1;
    }
    if (id == 0 && p.n_operands > WIRE_MAX_SELECTORS) {
        wq_fail(&err, WQ_ELIMIT, "more than %d jobs in one command", WIRE_MAX_SELECTORS);
        id = -1;
    }
    for (int i = 0; id == 0 && i < p.n_operands; i++) {
        jobspec_selector_t sel;
        if (jobspec_parse_selector(p.operands[i], &sel, &err) < 0)
            id = -1;
        jobspec_selector_fini(&sel);
    }
    if (id < 0) {
        opt_parser_fini(&p);
        return cli_usage_error(ctx, "%s", err.text);
    }
    client_t *c = client_new(ctx, &err);
    if (c == NULL) {
        opt_parser_fini(&p);
        return cli_fail(&err);
    }
    /* One request for all of them: the scheduler checks every one first, so a bad job id or
     * another user's job changes nothing. */
    Wslq__JobControlRequest req = WSLQ__JOB_CONTROL_REQUEST__INIT;
    req.op = op;
    req.n_selectors = (size_t) p.n_operands;
    req.selectors = p.operands;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_CONTROL;
    env.control = &req;
    Wslq__Envelope *rep = client_call(c, &env, WSLQ__ENVELOPE__BODY_CONTROL_REPLY, 0, &err);
    client_destroy(&c);
    if (rep == NULL) {
        opt_parser_fini(&p);
        return cli_fail(&err);
    }
    const Wslq__JobControlReply *r = rep->control_reply;
    if (r->n_job_ids <= 20) {
        for (size_t i = 0; i < r->n_job_ids; i++)
            printf("%s job %" PRIu64 "\n", done_verb, r->job_ids[i]);
    } else {
        printf("%s %zu jobs (%" PRIu64 " ... %" PRIu64 ")\n", done_verb, r->n_job_ids,
               r->job_ids[0], r->job_ids[r->n_job_ids - 1]);
    }
    wire_free(&rep);
    opt_parser_fini(&p);
    return CLI_OK;
}

int
cmd_hold(cli_ctx_t *ctx, int argc, char **argv)
{
    return run(ctx, argc, argv, WSLQ__JOB_CONTROL_REQUEST__OP__HOLD, usage_hold, "Held");
}

int
cmd_release(cli_ctx_t *ctx, int argc, char **argv)
{
    return run(ctx, argc, argv, WSLQ__JOB_CONTROL_REQUEST__OP__RELEASE, usage_release, "Released");
}

int
cmd_requeue(cli_ctx_t *ctx, int argc, char **argv)
{
    return run(ctx, argc, argv, WSLQ__JOB_CONTROL_REQUEST__OP__REQUEUE, usage_requeue, "Requeued");
}
