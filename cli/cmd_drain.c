/* wslq drain / wslq resume: take a node out of placement for Windows Update, a reboot or a
 * repair, and give it back. Admins only (the scheduler checks); the drained state and its
 * reason are kept by the scheduler and shown by `wslq nodes`, `top` and the dashboard. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/opt.h"

static const char drain_usage[] =
    "usage: wslq drain NODE --reason TEXT [--now]\n"
    "\n"
    "Place no new job on NODE (an admin's command). Jobs running there finish as usual;\n"
    "with --now they are stopped (SIGTERM, then SIGKILL after the kill grace) and go back to\n"
    "the queue at once, without using up one of their --retries. The node shows as\n"
    "'draining' while jobs still run there, then 'drained', with the reason, until\n"
    "'wslq resume NODE'. Draining a drained node again changes its reason.\n"
    "  -r, --reason TEXT   why, shown with the node (one line, at most 200 bytes)\n"
    "      --now           requeue the jobs running there now\n"
    "  --scheduler ADDR, --timeout SEC   as for every command\n";

static const char resume_usage[] =
    "usage: wslq resume NODE\n"
    "\n"
    "Let the scheduler place jobs on NODE again after 'wslq drain' (an admin's command).\n"
    "  --scheduler ADDR, --timeout SEC   as for every command\n";

enum { D_REASON = 1, D_NOW };

static int
send_admin(cli_ctx_t *ctx, Wslq__AdminRequest *req, unsigned *on_node)
{
    wq_error_t err = {0};
    client_t *c = client_new(ctx, &err);
    if (c == NULL)
        return cli_fail(&err);
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_ADMIN;
    env.admin = req;
    Wslq__Envelope *rep = client_call(c, &env, WSLQ__ENVELOPE__BODY_ADMIN_REPLY, 0, &err);
    client_destroy(&c);
    if (rep == NULL)
        return cli_fail(&err);
    *on_node = rep->admin_reply->jobs_on_node;
    wire_free(&rep);
    return CLI_OK;
}

static int
node_cmd(cli_ctx_t *ctx, int argc, char **argv, int drain)
{
    static const opt_t drain_opts[] = {
        {"reason", 'r', 1, D_REASON}, {"now", 0, 0, D_NOW}, OPT_COMMON, {NULL, 0, 0, 0}};
    static const opt_t resume_opts[] = {OPT_COMMON, {NULL, 0, 0, 0}};
    const char *usage = drain ? drain_usage : resume_usage;
    wq_error_t err = {0};
    opt_parser_t p;
    opt_parser_init(&p, argc, argv, 0);
    const char *reason = NULL;
    int id, now = 0;
    while ((id = opt_next(&p, drain ? drain_opts : resume_opts, &err)) > 0) {
        if (id == OPT_HELP) {
            opt_parser_fini(&p);
            fputs(usage, stdout);
            return CLI_OK;
        }
        if (id == D_REASON)
            reason = p.arg;
        else if (id == D_NOW)
            now = 1;
        else if (opt_common(ctx, id, p.arg, &err) != 0)
            break;
    }
    char name[WIRE_MAX_NAME + 1] = "";
    if (id == 0 && p.n_operands == 0)
        id = wq_fail(&err, WQ_EINVAL, "no node given");
    else if (id == 0 && p.n_operands > 1)
        id = wq_fail(&err, WQ_EINVAL, "one node expected, got %d", p.n_operands);
    else if (id == 0 && strlen(p.operands[0]) > WIRE_MAX_NAME)
        id = wq_fail(&err, WQ_EINVAL, "'%.40s...' is not a node name", p.operands[0]);
    else if (id == 0)
        snprintf(name, sizeof name, "%s", p.operands[0]);
    opt_parser_fini(&p);
    if (id == 0 && drain && (reason == NULL || reason[0] == '\0'))
        id = wq_fail(&err, WQ_EINVAL, "--reason TEXT is needed: say why (it shows with the node)");
    if (id == 0 && drain && strlen(reason) > WIRE_MAX_DRAIN_REASON)
        id = wq_fail(&err, WQ_EINVAL, "--reason: %zu bytes; at most %d", strlen(reason),
                     WIRE_MAX_DRAIN_REASON);
    for (const char *q = drain && id == 0 ? reason : ""; *q && id == 0; q++)
        if ((unsigned char) *q < 0x20 || *q == 0x7f)
            id = wq_fail(&err, WQ_EINVAL, "--reason: one line of text, no control characters");
    if (id < 0)
        return cli_usage_error(ctx, "%s", err.text);

    Wslq__AdminRequest req = WSLQ__ADMIN_REQUEST__INIT;
    req.op = drain ? WSLQ__ADMIN_REQUEST__OP__NODE_DRAIN : WSLQ__ADMIN_REQUEST__OP__NODE_RESUME;
    req.name = name;
    req.reason = drain ? (char *) reason : "";
    req.now = now;
    unsigned on_node = 0;
    int rc = send_admin(ctx, &req, &on_node);
    if (rc != CLI_OK)
        return rc;
    if (!drain)
        printf("Node %s resumed: it takes jobs again\n", name);
    else if (on_node == 0)
        printf("Node %s drained (%s): no jobs on it\n", name, reason);
    else if (now)
        printf("Node %s drained (%s): %u job%s requeued\n", name, reason, on_node,
               on_node == 1 ? "" : "s");
    else
        printf("Node %s draining (%s): %u job%s left to finish, nothing new placed\n", name, reason,
               on_node, on_node == 1 ? "" : "s");
    return CLI_OK;
}

int
cmd_drain(cli_ctx_t *ctx, int argc, char **argv)
{
    return node_cmd(ctx, argc, argv, 1);
}

int
cmd_resume(cli_ctx_t *ctx, int argc, char **argv)
{
    return node_cmd(ctx, argc, argv, 0);
}
