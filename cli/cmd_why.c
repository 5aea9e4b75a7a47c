/* wslq why: why a pending job waits, as the scheduler sees it now. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/opt.h"
#include "common/mem.h"
#include "proto/jobspec.h"
#include "proto/json.h"

static const char usage[] =
    "usage: wslq why JOB [--json]      (JOB: 42, or an array task 40_7)\n"
    "\n"
    "Why a pending job waits: its reason (Priority, Resources, Dependency, Held, ArrayLimit,\n"
    "NoNode, Backoff, Reservation) and the whole story: held or not, its array's cap, each\n"
    "dependency, how many jobs come before it, whether it fits the free resources now or\n"
    "could ever fit a registered node, its estimated start and nodes when the backfill plan\n"
    "reserved them for it, and which running job reaches its time limit first.\n"
    "  --json              {\"job\": {...}, \"lines\": [...]}\n"
    "  --scheduler ADDR, --timeout SEC   as for every command\n";

enum { O_JSON = 1 };
static const opt_t opts[] = {{"json", 0, 0, O_JSON}, OPT_COMMON, {NULL, 0, 0, 0}};

int
cmd_why(cli_ctx_t *ctx, int argc, char **argv)
{
    int json = 0;
    char selector[WIRE_MAX_SELECTOR + 1] = "";
    int done = opt_one_job_command(ctx, argc, argv, opts, O_JSON, usage, "why", &json, selector,
                                   sizeof selector);
    if (done >= 0)
        return done;
    wq_error_t err = {0};
    client_t *c = client_new(ctx, &err);
    if (c == NULL)
        return cli_fail(&err);
    Wslq__WhyRequest req = WSLQ__WHY_REQUEST__INIT;
    req.selector = selector;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_WHY;
    env.why = &req;
    Wslq__Envelope *rep = client_call(c, &env, WSLQ__ENVELOPE__BODY_WHY_REPLY, 0, &err);
    client_destroy(&c);
    if (rep == NULL)
        return cli_fail(&err);
    const Wslq__WhyReply *r = rep->why_reply;
    int rc = CLI_OK;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "job", json_job(r->job));
        cJSON *lines = cJSON_AddArrayToObject(o, "lines");
        for (size_t i = 0; i < r->n_lines; i++)
            cJSON_AddItemToArray(lines, cJSON_CreateString(r->lines[i]));
        rc = cli_print_json(o);
    } else {
        for (size_t i = 0; i < r->n_lines; i++)
            printf("%s%s\n", i ? "  " : "", r->lines[i]);
    }
    wire_free(&rep);
    return rc;
}
