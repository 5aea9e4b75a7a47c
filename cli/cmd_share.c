/* wslq share: every user's fair-share standing (decayed usage, share, factor) and jobs. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/opt.h"
#include "cli/table.h"
#include "common/mem.h"

static const char usage[] =
    "usage: wslq share [USER] [--json]\n"
    "\n"
    "Per user with usage or jobs (or only USER): GPU-hours and CPU-hours used, decayed by the\n"
    "scheduler's half-life (running jobs count their time so far), the configured share,\n"
    "the user's part of all use (NORM_USAGE) and of all shares (NORM_SHARE), the fair-share\n"
    "factor 2^(-NORM_USAGE/NORM_SHARE) (1 = nothing used; lower goes later), jobs running\n"
    "(and their GPUs) and pending, and the limits in force ('-' = none). Pending jobs are\n"
    "placed by PRIORITY_WEIGHT * priority + FAIRSHARE_WEIGHT * factor + AGE_WEIGHT * age.\n"
    "  --json              {\"users\": [...], \"halflife_s\", \"max_age_s\", weights}\n"
    "  --scheduler ADDR, --timeout SEC   as for every command\n";

enum { O_JSON = 1 };
static const opt_t opts[] = {{"json", 0, 0, O_JSON}, OPT_COMMON, {NULL, 0, 0, 0}};

static void
limit_cell(table_t *t, uint32_t v)
{
    if (v == 0)
        table_cellf(t, "-");
    else
        table_cellf(t, "%u", v);
}

static int
print_json(const Wslq__ShareReply *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *users = cJSON_AddArrayToObject(o, "users");
    for (size_t i = 0; i < r->n_users; i++) {
        const Wslq__ShareUser *u = r->users[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "user", u->user);
        cJSON_AddNumberToObject(j, "gpu_hours", u->gpu_hours);
        cJSON_AddNumberToObject(j, "cpu_hours", u->cpu_hours);
        cJSON_AddNumberToObject(j, "share", u->share);
        cJSON_AddNumberToObject(j, "norm_share", u->norm_share);
        cJSON_AddNumberToObject(j, "norm_usage", u->norm_usage);
        cJSON_AddNumberToObject(j, "fairshare_factor", u->fairshare_factor);
        cJSON_AddNumberToObject(j, "running", u->running);
        cJSON_AddNumberToObject(j, "gpus_running", u->gpus_running);
        cJSON_AddNumberToObject(j, "pending", u->pending);
        cJSON_AddNumberToObject(j, "max_running_gpus", u->max_running_gpus);
        cJSON_AddNumberToObject(j, "max_running_jobs", u->max_running_jobs);
        cJSON_AddNumberToObject(j, "max_pending_jobs", u->max_pending_jobs);
        cJSON_AddItemToArray(users, j);
    }
    cJSON_AddNumberToObject(o, "halflife_s", (double) r->halflife_s);
    cJSON_AddNumberToObject(o, "max_age_s", (double) r->max_age_s);
    cJSON_AddNumberToObject(o, "priority_weight", r->priority_weight);
    cJSON_AddNumberToObject(o, "fairshare_weight", r->fairshare_weight);
    cJSON_AddNumberToObject(o, "age_weight", r->age_weight);
    return cli_print_json(o);
}

int
cmd_share(cli_ctx_t *ctx, int argc, char **argv)
{
    int json = 0;
    wq_error_t err = {0};
    opt_parser_t p;
    opt_parser_init(&p, argc, argv, 0);
    int id = opt_flag_loop(ctx, &p, opts, O_JSON, usage, &json, &err);
    if (id > 0) {
        opt_parser_fini(&p);
        return CLI_OK;
    }
    char user[WIRE_MAX_NAME + 1] = "";
    if (id == 0 && p.n_operands > 1) {
        wq_fail(&err, WQ_EINVAL, "one user name expected, got %d", p.n_operands);
        id = -1;
    } else if (id == 0 && p.n_operands == 1) {
        if (strlen(p.operands[0]) == 0 || strlen(p.operands[0]) > WIRE_MAX_NAME) {
            wq_fail(&err, WQ_EINVAL, "'%.64s' is not a user name", p.operands[0]);
            id = -1;
        } else {
            snprintf(user, sizeof user, "%s", p.operands[0]);
        }
    }
    opt_parser_fini(&p);
    if (id < 0)
        return cli_usage_error(ctx, "%s", err.text);
    client_t *c = client_new(ctx, &err);
    if (c == NULL)
        return cli_fail(&err);
    Wslq__ShareRequest req = WSLQ__SHARE_REQUEST__INIT;
    req.user = user;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_SHARE;
    env.share = &req;
    Wslq__Envelope *rep = client_call(c, &env, WSLQ__ENVELOPE__BODY_SHARE_REPLY, 0, &err);
    client_destroy(&c);
    if (rep == NULL)
        return cli_fail(&err);
    const Wslq__ShareReply *r = rep->share_reply;
    int rc = CLI_OK;
    if (json) {
        rc = print_json(r);
    } else if (r->n_users == 0) {
        printf("no user has used anything or has jobs (usage half-life %.1f days)\n",
               (double) r->halflife_s / 86400.0);
    } else {
        static const char *const hdr[] = {
            "USER",    "GPU_HOURS", "CPU_HOURS", "SHARE",    "NORM_SHARE", "NORM_USAGE", "FACTOR",
            "RUNNING", "GPUS",      "PENDING",   "MAX_GPUS", "MAX_JOBS",   "MAX_PENDING"};
        table_t *t = table_new(13, hdr);
        for (int col = 1; col < 13; col++)
            table_set_right(t, col);
        for (size_t i = 0; i < r->n_users; i++) {
            const Wslq__ShareUser *u = r->users[i];
            table_row(t);
            table_cellf(t, "%s", u->user);
            table_cellf(t, "%.2f", u->gpu_hours);
            table_cellf(t, "%.2f", u->cpu_hours);
            table_cellf(t, "%g", u->share);
            table_cellf(t, "%.3f", u->norm_share);
            table_cellf(t, "%.3f", u->norm_usage);
            table_cellf(t, "%.3f", u->fairshare_factor);
            table_cellf(t, "%u", u->running);
            table_cellf(t, "%u", u->gpus_running);
            table_cellf(t, "%u", u->pending);
            limit_cell(t, u->max_running_gpus);
            limit_cell(t, u->max_running_jobs);
            limit_cell(t, u->max_pending_jobs);
        }
        table_print(t, stdout, 0, 0);
        table_destroy(&t);
        printf("usage half-life %.1f days; priority = %g x priority + %g x factor + %g x age "
               "(age reaches 1 after %.1f days)\n",
               (double) r->halflife_s / 86400.0, r->priority_weight, r->fairshare_weight,
               r->age_weight, (double) r->max_age_s / 86400.0);
    }
    wire_free(&rep);
    return rc;
}
