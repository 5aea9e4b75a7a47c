/* wslq nodes: every node with its CPUs, memory and GPUs, and which job holds each GPU. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/opt.h"
#include "cli/print.h"
#include "cli/table.h"
#include "common/clock.h"
#include "common/parse.h"
#include "proto/json.h"
#include "proto/nodecheck.h"

static const char usage[] =
    "usage: wslq nodes [NAME] [--json]\n"
    "\n"
    "Per node: state, CPUs and memory (allocated/total), GPUs (in use/total), address; then\n"
    "one line per GPU: index, model, memory used/total, temperature and utilisation ('-' when\n"
    "the driver does not report them), UUID, the job holding it, the --gpu-mem jobs sharing\n"
    "it ('7,8 share 12.0G of 22.0G': declared shares of the card less what others hold) or\n"
    "'free', and a note: compute capability ('cc 8.9'), 'dx VENDOR' for a DirectX GPU, or\n"
    "'declared' for GPUs configured by hand rather than discovered. With NAME, also the node's "
    "attributes\n"
    "(wslq doctor results). A node an admin drained ('wslq drain') shows 'draining' while\n"
    "jobs still run there, then 'drained', and a line saying by whom, since when and why.\n"
    "A node whose worker has 'owner = yield', or whose PC owner is known, gets a line with\n"
    "the owner's state (away, present, gaming, unknown), the policy and why.\n"
    "  --json              {\"nodes\": [...]}\n"
    "  --scheduler ADDR, --timeout SEC   as for every command\n";

enum { O_JSON = 1 };
static const opt_t opts[] = {{"json", 0, 0, O_JSON}, OPT_COMMON, {NULL, 0, 0, 0}};

/* "3m", "2h": how long ago, coarse */
static const char *
ago(int64_t ms, char *buf, size_t size)
{
    int64_t s = ms / 1000;
    if (s < 120)
        snprintf(buf, size, "%" PRId64 "s", s < 0 ? 0 : s);
    else if (s < 2 * 3600)
        snprintf(buf, size, "%" PRId64 "m", s / 60);
    else if (s < 2 * 86400)
        snprintf(buf, size, "%" PRId64 "h", s / 3600);
    else
        snprintf(buf, size, "%" PRId64 "d", s / 86400);
    return buf;
}

/* One line per node with tags under the table (wslq admin node tag). */
static void
print_tags(const Wslq__NodesReply *r, FILE *out)
{
    int first = 1;
    for (size_t i = 0; i < r->n_nodes; i++) {
        const Wslq__NodeInfo *n = r->nodes[i];
        if (n->n_tags == 0)
            continue;
        fprintf(out, "%s%s tags: ", first ? "\n" : "", n->name);
        for (size_t k = 0; k < n->n_tags; k++)
            fprintf(out, "%s%s", k ? "," : "", n->tags[k]);
        fputc('\n', out);
        first = 0;
    }
}

/* One line per node whose owner counts (policy yield) or is known, under the table. */
static void
print_owners(const Wslq__NodesReply *r, FILE *out)
{
    int first = 1;
    for (size_t i = 0; i < r->n_nodes; i++) {
        const Wslq__NodeInfo *n = r->nodes[i];
        const char *policy = n->owner && n->owner[0] ? n->owner : "ignore";
        int counts = strcmp(policy, "ignore") != 0;
        const char *st = n->owner_state && n->owner_state[0] ? n->owner_state : "unknown";
        if (!counts && strcmp(st, "unknown") == 0)
            continue;
        fprintf(out, "%s%s owner %s, policy %s%s: %s\n", first ? "\n" : "", n->name, st, policy,
                counts && strcmp(st, "away") != 0 ? " (no new jobs)" : "",
                n->owner_why && n->owner_why[0] ? n->owner_why : "-");
        if (n->owner_user && n->owner_user[0])
            fprintf(out, "%s owner's user %s: their jobs run there regardless\n", n->name,
                    n->owner_user);
        if (n->gpu_resets > 0)
            fprintf(out, "%s GPU resets by Windows (TDR): %" PRIu64 " jobs failed\n", n->name,
                    n->gpu_resets);
        if (n->n_suspended_jobs > 0) {
            fprintf(out, "%s suspended jobs:", n->name);
            for (size_t k = 0; k < n->n_suspended_jobs; k++)
                fprintf(out, " %" PRIu64, n->suspended_jobs[k]);
            fputc('\n', out);
        }
        first = 0;
    }
}

/* One line per drained node under the table: who, how long ago, why. */
static void
print_drains(const Wslq__NodesReply *r, int64_t now_ms, FILE *out)
{
    int first = 1;
    for (size_t i = 0; i < r->n_nodes; i++) {
        const Wslq__NodeInfo *n = r->nodes[i];
        if (!n->drained)
            continue;
        char a[32];
        fprintf(out, "%s%s drained by %s %s ago: %s\n", first ? "\n" : "", n->name,
                n->drain_by && n->drain_by[0] ? n->drain_by : "?",
                ago(now_ms - n->drain_since_ms, a, sizeof a),
                n->drain_reason && n->drain_reason[0] ? n->drain_reason : "(no reason)");
        first = 0;
    }
}

/* A GPU that --gpu-mem jobs share: "7,8 share 12G of 22.2G" (its memory less what others
 * hold). */
static void
print_shared(table_t *g, const Wslq__GpuInfo *x)
{
    char ids[128] = "", a[32], b[32];
    size_t len = 0;
    for (size_t i = 0; i < x->n_shared_jobs && len + 24 < sizeof ids; i++)
        len += (size_t) snprintf(ids + len, sizeof ids - len, "%s%" PRIu64, i ? "," : "",
                                 x->shared_jobs[i]);
    uint64_t room = x->mem_total_mb > x->mem_other_mb ? x->mem_total_mb - x->mem_other_mb : 0;
    table_cellf(g, "%s share %s of %s", ids,
                wq_format_size_mb((int64_t) x->mem_shared_mb, a, sizeof a),
                wq_format_size_mb((int64_t) room, b, sizeof b));
}

void
print_nodes(const Wslq__NodesReply *r, int64_t now_ms, FILE *out)
{
    static const char *const nh[] = {"NAME", "STATE", "CPUS", "MEMORY", "GPUS", "IP", "SEEN"};
    table_t *t = table_new(7, nh);
    table_set_right(t, 2);
    table_set_right(t, 3);
    table_set_right(t, 4);
    size_t ngpus = 0;
    for (size_t i = 0; i < r->n_nodes; i++) {
        const Wslq__NodeInfo *n = r->nodes[i];
        char a[32], b[32];
        size_t used = 0;
        for (size_t k = 0; k < n->n_gpus; k++)
            used += n->gpus[k]->job_id != 0 || n->gpus[k]->n_shared_jobs > 0;
        ngpus += n->n_gpus;
        table_row(t);
        table_cellf(t, "%s", n->name);
        table_cellf(t, "%s", n->state && n->state[0] ? n->state : "-");
        table_cellf(t, "%u/%u", n->cpus_alloc, n->cpus);
        table_cellf(t, "%s/%s", wq_format_size_mb((int64_t) n->mem_alloc_mb, a, sizeof a),
                    wq_format_size_mb((int64_t) n->mem_mb, b, sizeof b));
        table_cellf(t, "%zu/%zu", used, n->n_gpus);
        table_cellf(t, "%s%s", n->ip && n->ip[0] ? n->ip : "-", n->inbound_ok ? "" : " (nat)");
        if (n->last_seen_ms > 0 && now_ms >= n->last_seen_ms)
            table_cellf(t, "%" PRId64 "s ago", (now_ms - n->last_seen_ms) / 1000);
        else
            table_cellf(t, "-");
    }
    table_print(t, out, 0, 0);
    table_destroy(&t);
    print_drains(r, now_ms, out);
    print_owners(r, out);
    print_tags(r, out);
    if (ngpus == 0)
        return;

    static const char *const gh[] = {"NODE", "GPU",  "NAME", "MEMORY", "TEMP",
                                     "UTIL", "UUID", "JOB",  "NOTE"};
    table_t *g = table_new(9, gh);
    table_set_right(g, 1);
    table_set_right(g, 3);
    table_set_right(g, 4);
    table_set_right(g, 5);
    table_set_max(g, 2, 32);
    for (size_t i = 0; i < r->n_nodes; i++) {
        const Wslq__NodeInfo *n = r->nodes[i];
        for (size_t k = 0; k < n->n_gpus; k++) {
            const Wslq__GpuInfo *x = n->gpus[k];
            char a[32], b[32];
            table_row(g);
            table_cellf(g, "%s", n->name);
            table_cellf(g, "%u", x->index);
            table_cellf(g, "%s", x->name && x->name[0] ? x->name : "-");
            if (x->mem_total_mb > 0)
                table_cellf(g, "%s/%s", wq_format_size_mb((int64_t) x->mem_used_mb, a, sizeof a),
                            wq_format_size_mb((int64_t) x->mem_total_mb, b, sizeof b));
            else
                table_cellf(g, "-");
            if (x->temp_c >= 0)
                table_cellf(g, "%dC", x->temp_c);
            else
                table_cellf(g, "-");
            if (x->util_pct >= 0)
                table_cellf(g, "%d%%", x->util_pct);
            else
                table_cellf(g, "-");
            table_cellf(g, "%s", x->uuid && x->uuid[0] ? x->uuid : "-");
            if (x->job_id != 0)
                table_cellf(g, "%" PRIu64, x->job_id);
            else if (x->n_shared_jobs > 0)
                print_shared(g, x);
            else
                table_cellf(g, "free");
            if (x->declared)
                table_cellf(g, "declared");
            else if (x->kind != NULL && strcmp(x->kind, "dx") == 0)
                table_cellf(g, "dx %s", x->vendor ? x->vendor : "");
            else if (x->cc_major > 0)
                table_cellf(g, "cc %u.%u", x->cc_major, x->cc_minor);
            else
                table_cellf(g, "%s", "");
        }
    }
    fputc('\n', out);
    table_print(g, out, 0, 0);
    table_destroy(&g);
}

/* The node's attributes, then its checks as doctor.<id> lines (`wslq doctor --node` shows
 * them as a table). */
static void
print_attrs(const Wslq__NodeInfo *n, FILE *out)
{
    if (n->n_attrs == 0 && n->n_checks == 0)
        return;
    fprintf(out, "\nAttributes of %s:\n", n->name);
    for (size_t i = 0; i < n->n_attrs; i++)
        fprintf(out, "  %s=%s\n", n->attrs[i]->key, n->attrs[i]->value ? n->attrs[i]->value : "");
    char line[2 * WIRE_MAX_CHECK_TEXT + 16];
    for (size_t i = 0; i < n->n_checks; i++)
        fprintf(out, "  doctor.%s=%s\n", n->checks[i]->id,
                nodecheck_line(n->checks[i], line, sizeof line));
}

int
cmd_nodes(cli_ctx_t *ctx, int argc, char **argv)
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
    const char *name = NULL;
    if (id == 0 && p.n_operands > 1) {
        wq_fail(&err, WQ_EINVAL, "one node name expected, got %d", p.n_operands);
        id = -1;
    } else if (id == 0 && p.n_operands == 1) {
        name = p.operands[0];
    }
    opt_parser_fini(&p);
    if (id < 0)
        return cli_usage_error(ctx, "%s", err.text);

    client_t *c = client_new(ctx, &err);
    if (c == NULL)
        return cli_fail(&err);
    Wslq__Envelope *rep = client_nodes(c, name, &err);
    client_destroy(&c);
    if (rep == NULL)
        return cli_fail(&err);
    const Wslq__NodesReply *r = rep->nodes_reply;
    int rc = CLI_OK;
    if (name != NULL && r->n_nodes == 0) {
        fprintf(stderr, "wslq: node %.128s not found\n", name);
        rc = CLI_FAIL;
    } else if (json) {
        rc = cli_print_json(json_nodes_reply(r));
    } else {
        print_nodes(r, wq_clock_wall_ms(), stdout);
        if (name != NULL)
            for (size_t i = 0; i < r->n_nodes; i++)
                print_attrs(r->nodes[i], stdout);
    }
    wire_free(&rep);
    return rc;
}
