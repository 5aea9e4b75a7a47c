/* wslq doctor: check this machine as a wslq node (node/doctor.h does the checks), or
 * with --node NAME show what another node's worker found when it registered, with the
 * scheduler's own checks of it (NodeInfo.checks, proto/nodecheck.h). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/doctor_sched.h"
#include "cli/opt.h"
#include "node/doctor.h"
#include "proto/nodecheck.h"

/* Print (or return as JSON) the checks the scheduler holds for node 'name'. Exit code as for
 * a local run: 1 if any check FAILed. */
static int
remote_doctor(cli_ctx_t *ctx, const char *name, int json)
{
    wq_error_t err = {0};
    client_t *c = client_new(ctx, &err);
    if (c == NULL)
        return cli_fail(&err);
    Wslq__Envelope *rep = client_nodes(c, name, &err);
    client_destroy(&c);
    if (rep == NULL)
        return cli_fail(&err);
    const Wslq__NodesReply *r = rep->nodes_reply;
    if (r->n_nodes == 0) {
        fprintf(stderr, "wslq: node %.128s not found\n", name);
        wire_free(&rep);
        return CLI_FAIL;
    }
    const Wslq__NodeInfo *n = r->nodes[0];
    int fails = 0;
    cJSON *arr = json ? cJSON_CreateArray() : NULL;
    for (size_t i = 0; i < n->n_checks; i++) {
        const Wslq__NodeCheck *ck = n->checks[i];
        fails += ck->verdict == WSLQ__CHECK_VERDICT__CHECK_FAIL;
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", ck->id);
            cJSON_AddStringToObject(o, "verdict", nodecheck_verdict_lower(ck->verdict));
            cJSON_AddStringToObject(o, "summary", ck->summary);
            cJSON_AddStringToObject(o, "fix", ck->fix);
            cJSON_AddItemToArray(arr, o);
        } else {
            printf("%-5s %-18s %s\n", nodecheck_verdict_name(ck->verdict), ck->id, ck->summary);
            if (ck->fix[0])
                printf("      %-18s fix: %s\n", "", ck->fix);
        }
    }
    int rc = fails ? CLI_FAIL : CLI_OK;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "node", n->name);
        cJSON_AddItemToObject(o, "checks", arr);
        cJSON_AddNumberToObject(o, "exit_code", rc);
        if (cli_print_json(o) != CLI_OK)
            rc = CLI_FAIL;
    } else if (n->n_checks == 0) {
        printf("node %s reported no doctor results (its worker is older than this wslq)\n",
               n->name);
    }
    wire_free(&rep);
    return rc;
}

static const char usage[] =
    "usage: wslq doctor [--json] [--no-gpu] [--iface IF]\n"
    "       wslq doctor --node NAME [--json]\n"
    "       wslq doctor --scheduler-host [--config FILE] [--lan-addr IP,...] [--json]\n"
    "\n"
    "Check this machine as a wslq node: WSL version and settings, GPU driver, NVML and CUDA,\n"
    "NCCL, shared memory, network. Each check is PASS, WARN, FAIL or INFO with a one-line fix.\n"
    "  --json           the report as JSON (node facts, GPUs, checks, counts, exit_code)\n"
    "  --no-gpu         do not load NVML/CUDA\n"
    "  --iface IF       cluster network interface (default: detected)\n"
    "  --root DIR       read the system under DIR instead of / (tests)\n"
    "  --node NAME      what node NAME's worker found when it registered (asks the scheduler)\n"
    "  --scheduler-host check this host as the scheduler host instead: the scheduler runs and\n"
    "                   answers, its port and dashboard are reachable from the LAN, NTP and\n"
    "                   the nodes' clocks, disk, database, key file permissions\n"
    "  --config FILE    its [scheduler] section (default /etc/wslq/wslq.conf)\n"
    "  --lan-addr IP,.. the addresses other PCs reach this host by (default: each\n"
    "                   non-loopback IPv4 address)\n"
    "Exit: 0 no FAIL (warnings allowed), 1 at least one FAIL, 2 the checks could not run or\n"
    "usage error.\n";

enum { O_JSON = 1, O_NO_GPU, O_IFACE, O_ROOT, O_NODE, O_SCHED, O_CONFIG, O_LAN };
static const opt_t opts[] = {
    {"json", 0, 0, O_JSON},
    {"no-gpu", 0, 0, O_NO_GPU},
    {"iface", 0, 1, O_IFACE},
    {"root", 0, 1, O_ROOT},
    {"node", 0, 1, O_NODE},
    {"scheduler-host", 0, 0, O_SCHED},
    {"config", 0, 1, O_CONFIG},
    {"lan-addr", 0, 1, O_LAN},
    OPT_COMMON,
    {NULL, 0, 0, 0},
};

int
cmd_doctor(cli_ctx_t *ctx, int argc, char **argv)
{
    int json = 0;
    const char *root = "/";
    const char *node = NULL;
    int sched = 0;
    const char *config = NULL, *lan = NULL;
    doctor_opts_t dopts = DOCTOR_OPTS_INIT;
    wq_error_t err = {0};
    opt_parser_t p;
    opt_parser_init(&p, argc, argv, 0);
    int id;
    while ((id = opt_next(&p, opts, &err)) > 0) {
        switch (id) {
        case OPT_HELP:
            opt_parser_fini(&p);
            fputs(usage, stdout);
            return CLI_OK;
        case O_JSON:
            json = 1;
            break;
        case O_NO_GPU:
            dopts.skip_gpu = 1;
            break;
        case O_IFACE:
            dopts.iface = p.arg;
            break;
        case O_ROOT:
            root = p.arg;
            break;
        case O_NODE:
            node = p.arg;
            break;
        case O_SCHED:
            sched = 1;
            break;
        case O_CONFIG:
            config = p.arg;
            break;
        case O_LAN:
            lan = p.arg;
            break;
        default:
            if (opt_common(ctx, id, p.arg, &err) != 0)
                id = -1;
            break;
        }
        if (id < 0)
            break;
    }
    if (id == 0 && p.n_operands > 0)
        id = wq_fail(&err, WQ_EINVAL, "unexpected argument '%.40s'", p.operands[0]);
    if (id == 0 && !sched && (config != NULL || lan != NULL))
        id = wq_fail(&err, WQ_EINVAL, "--config and --lan-addr go with --scheduler-host");
    if (id == 0 && sched && node != NULL)
        id = wq_fail(&err, WQ_EINVAL, "--scheduler-host and --node: one or the other");
    opt_parser_fini(&p);
    if (id < 0)
        return cli_usage_error(ctx, "%s", err.text);
    if (node != NULL)
        return remote_doctor(ctx, node, json);
    if (sched)
        return doctor_sched_run(ctx, config, lan, json);

    doctor_report_t *r = doctor_run(root, &dopts, &err);
    if (r == NULL) {
        fprintf(stderr, "wslq: doctor: %s\n", err.text);
        return CLI_USAGE;
    }
    int rc = doctor_exit_code(r);
    if (json) {
        if (cli_print_json(doctor_to_json(r)) != CLI_OK)
            rc = CLI_FAIL;
    } else {
        doctor_print(r, stdout);
    }
    doctor_destroy(&r);
    return rc;
}
