/* wslq update: change a pending job (time limit, priority, GPUs, name), or lower a running
 * job's time limit. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/opt.h"
#include "common/parse.h"
#include "proto/jobspec.h"

static const char usage[] =
    "usage: wslq update JOB [JOB...] [--time T] [--priority N] [--gpus N] [--name NAME]\n"
    "       (JOB: 42, an array 40, a task 40_7, tasks 40_[3-9])\n"
    "\n"
    "Change pending jobs: their time limit, priority, GPUs per node (checked as at submit: some\n"
    "node must be able to hold them) or name. A started job may only have its time limit\n"
    "lowered. Only a job's owner or an admin may. Every job is checked first: a change one job\n"
    "named alone cannot take changes nothing; in an array or a task list, jobs that cannot\n"
    "take it are passed over. Each change is an event in 'wslq show'.\n"
    "  -t, --time T        time limit: 90 (minutes), 2h, 1:30:00; 0 = none (pending only)\n"
    "      --priority N    higher runs first (-1000000 .. 1000000)\n"
    "  -G, --gpus N        GPUs per node\n"
    "  -J, --name NAME     the job's name\n"
    "  --scheduler ADDR, --timeout SEC   as for every command\n";

enum { O_TIME = 1, O_PRIORITY, O_GPUS, O_NAME };
static const opt_t opts[] = {
    {"time", 't', 1, O_TIME},
    {"priority", 0, 1, O_PRIORITY},
    {"gpus", 'G', 1, O_GPUS},
    {"name", 'J', 1, O_NAME},
    OPT_COMMON,
    {NULL, 0, 0, 0},
};

int
cmd_update(cli_ctx_t *ctx, int argc, char **argv)
{
    Wslq__UpdateRequest req = WSLQ__UPDATE_REQUEST__INIT;
    wq_error_t err = {0};
    opt_parser_t p;
    opt_parser_init(&p, argc, argv, 0);
    int id;
    while ((id = opt_next(&p, opts, &err)) > 0) {
        int64_t v;
        switch (id) {
        case OPT_HELP:
            opt_parser_fini(&p);
            fputs(usage, stdout);
            return CLI_OK;
        case O_TIME:
            if (wq_parse_duration(p.arg, "--time", &v, &err) < 0) {
                id = -1;
            } else {
                req.set_time = 1;
                req.time_limit_s = (uint64_t) v;
            }
            break;
        case O_PRIORITY:
            if (wq_parse_int(p.arg, -1000000, 1000000, "--priority", &v, &err) < 0) {
                id = -1;
            } else {
                req.set_priority = 1;
                req.priority = (int32_t) v;
            }
            break;
        case O_GPUS:
            if (wq_parse_int(p.arg, 0, WIRE_MAX_GPUS, "--gpus", &v, &err) < 0) {
                id = -1;
            } else {
                req.set_gpus = 1;
                req.gpus_per_node = (uint32_t) v;
            }
            break;
        case O_NAME:
            if (p.arg[0] == '\0') {
                wq_fail(&err, WQ_EINVAL, "--name: empty");
                id = -1;
            } else {
                req.set_name = 1;
                req.name = (char *) p.arg;
            }
            break;
        default:
            if (opt_common(ctx, id, p.arg, &err) != 0)
                id = -1;
            break;
        }
        if (id < 0)
            break;
    }
    if (id == 0 && p.n_operands == 0) {
        wq_fail(&err, WQ_EINVAL, "no job id given");
        id = -1;
    }
    if (id == 0 && !req.set_time && !req.set_priority && !req.set_gpus && !req.set_name) {
        wq_fail(&err, WQ_EINVAL, "nothing to change: give --time, --priority, --gpus or --name");
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
    req.n_selectors = (size_t) p.n_operands;
    req.selectors = p.operands;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_UPDATE;
    env.update = &req;
    Wslq__Envelope *rep = client_call(c, &env, WSLQ__ENVELOPE__BODY_UPDATE_REPLY, 0, &err);
    client_destroy(&c);
    opt_parser_fini(&p);
    if (rep == NULL)
        return cli_fail(&err);
    const Wslq__UpdateReply *r = rep->update_reply;
    if (r->n_job_ids <= 20) {
        for (size_t i = 0; i < r->n_job_ids; i++)
            printf("Updated job %" PRIu64 "\n", r->job_ids[i]);
    } else {
        printf("Updated %zu jobs (%" PRIu64 " ... %" PRIu64 ")\n", r->n_job_ids, r->job_ids[0],
               r->job_ids[r->n_job_ids - 1]);
    }
    wire_free(&rep);
    return CLI_OK;
}
