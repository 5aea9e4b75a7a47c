/* wslq show: one job in full, and every state change it went through. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/opt.h"
#include "cli/print.h"
#include "cli/table.h"
#include "common/clock.h"
#include "common/mem.h"
#include "common/parse.h"
#include "proto/jobspec.h"
#include "proto/json.h"

static const char usage[] =
    "usage: wslq show JOB [--json | --script]   (JOB: 42, or an array task 40_7)\n"
    "\n"
    "A job's command, working directory, environment (the --env/--export values you gave),\n"
    "resources, state, exit status, where each rank runs (node, GPUs by index and UUID,\n"
    "ranks), the rendezvous address, and every state change with time, node and reason.\n"
    "  --json              {\"job\": {...}, \"events\": [...]}\n"
    "  --script            print the batch script the job was submitted with, as it was\n"
    "  --scheduler ADDR, --timeout SEC   as for every command\n";

enum { O_JSON = 1, O_SCRIPT };
static const opt_t opts[] = {
    {"json", 0, 0, O_JSON}, {"script", 0, 0, O_SCRIPT}, OPT_COMMON, {NULL, 0, 0, 0}};

static int
shell_safe(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("_@%+=:,./-", *s) != NULL))
            return 0;
    return 1;
}

char *
print_command(const Wslq__JobSpec *spec)
{
    size_t cap = 64, len = 0;
    char *out = wq_malloc(cap);
    out[0] = '\0';
    for (size_t i = 0; i < spec->n_argv; i++) {
        const char *w = spec->argv[i];
        /* Worst case every byte is a quote ("'\\''" = 4 bytes), plus quotes and a space. */
        size_t need = len + strlen(w) * 4 + 4;
        if (need > cap) {
            cap = need * 2;
            out = wq_realloc(out, cap);
        }
        if (i > 0)
            out[len++] = ' ';
        if (shell_safe(w)) {
            memcpy(out + len, w, strlen(w));
            len += strlen(w);
        } else {
            out[len++] = '\'';
            for (const char *p = w; *p; p++) {
                if (*p == '\'') {
                    memcpy(out + len, "'\\''", 4);
                    len += 4;
                } else {
                    out[len++] = *p;
                }
            }
            out[len++] = '\'';
        }
        out[len] = '\0';
    }
    return out;
}

#define KEY "  %-13s "

static void
print_time_line(FILE *out, const char *label, int64_t ms)
{
    char buf[40];
    if (ms > 0)
        fprintf(out, KEY "%s\n", label, wq_clock_format(ms, buf, sizeof buf));
}

static void
print_allocs(const Wslq__JobInfo *j, FILE *out)
{
    static const char *const hdr[] = {"NODE", "NODE_RANK", "IP",  "RANKS",
                                      "GPUS", "GPU_UUIDS", "CPUS"};
    table_t *t = table_new(7, hdr);
    for (size_t i = 0; i < j->n_allocs; i++) {
        const Wslq__Alloc *a = j->allocs[i];
        char gpus[512] = "", uuids[2048] = "";
        size_t g = 0, u = 0;
        for (size_t k = 0; k < a->n_gpus && g < sizeof gpus - 1; k++)
            g += (size_t) snprintf(gpus + g, sizeof gpus - g, "%s%u", k ? "," : "", a->gpus[k]);
        for (size_t k = 0; k < a->n_gpu_uuids && u < sizeof uuids - 1; k++)
            u += (size_t) snprintf(uuids + u, sizeof uuids - u, "%s%s", k ? "," : "",
                                   a->gpu_uuids[k]);
        table_row(t);
        table_cellf(t, "%s", a->node);
        table_cellf(t, "%u", a->node_rank);
        table_cellf(t, "%s", a->ip && a->ip[0] ? a->ip : "-");
        if (a->nranks > 1)
            table_cellf(t, "%u-%u", a->first_rank, a->first_rank + a->nranks - 1);
        else
            table_cellf(t, "%u", a->first_rank);
        table_cellf(t, "%s", g ? gpus : "-");
        table_cellf(t, "%s", u ? uuids : "-");
        table_cellf(t, "%s", a->cpus && a->cpus[0] ? a->cpus : "-");
    }
    table_print(t, out, 2, 0);
    table_destroy(&t);
}

static void
print_events(const Wslq__ShowReply *r, FILE *out)
{
    static const char *const hdr[] = {"TIME", "STATE", "ATTEMPT", "NODE", "REASON", "DETAIL"};
    table_t *t = table_new(6, hdr);
    for (size_t i = 0; i < r->n_events; i++) {
        const Wslq__JobEvent *e = r->events[i];
        char buf[40];
        table_row(t);
        table_cellf(t, "%s", wq_clock_format(e->ts_ms, buf, sizeof buf));
        table_cellf(t, "%s", wire_state_name(e->state));
        table_cellf(t, "%u", e->attempt);
        table_cellf(t, "%s", e->node && e->node[0] ? e->node : "-");
        table_cellf(t, "%s", e->reason && e->reason[0] ? e->reason : "-");
        table_cellf(t, "%s", e->detail ? e->detail : "");
    }
    table_print(t, out, 2, 0);
    table_destroy(&t);
}

void
print_show(const Wslq__ShowReply *r, int64_t now_ms, FILE *out)
{
    const Wslq__JobInfo *j = r->job;
    const Wslq__JobSpec *s = j->spec;
    char buf[64];
    fprintf(out, "Job %" PRIu64 ": %s (%s)\n", j->id, s->name, wire_state_name(j->state));
    fprintf(out, KEY "%s (uid %u)\n", "User:", s->user, s->uid);
    if (j->array_job_id != 0) {
        fprintf(out, KEY "%" PRIu64 "_%u: task %u of array %" PRIu64 " (%u tasks",
                "Array:", j->array_job_id, j->array_index, j->array_index, j->array_job_id,
                j->array_size);
        if (j->array_limit > 0)
            fprintf(out, ", at most %u at once", j->array_limit);
        fputs(")\n", out);
    }
    if (j->held)
        fprintf(out, KEY "yes: it starts only after 'wslq release %" PRIu64 "'\n", "Held:", j->id);
    if (s->wrap && s->n_argv == 3) {
        fprintf(out, KEY "%s\n", "Wrap:", s->argv[2]);
    } else {
        char *cmd = print_command(s);
        fprintf(out, KEY "%s\n", "Command:", cmd);
        free(cmd);
    }
    fprintf(out, KEY "%s\n", "Directory:", s->cwd && s->cwd[0] ? s->cwd : "(the worker's home)");
    for (size_t i = 0; i < s->n_env; i++)
        fprintf(out, KEY "%s\n", i == 0 ? "Environment:" : "", s->env[i]);
    const char *ranks = s->per_node ? "1 (per node)" : NULL;
    char rbuf[32];
    if (ranks == NULL) {
        if (s->ranks_per_node > 0)
            snprintf(rbuf, sizeof rbuf, "%u", s->ranks_per_node);
        else
            snprintf(rbuf, sizeof rbuf, "one per GPU");
        ranks = rbuf;
    }
    fprintf(out, KEY "%u node%s, %u GPU%s per node, ranks per node: %s\n", "Resources:", s->nodes,
            s->nodes == 1 ? "" : "s", s->gpus_per_node, s->gpus_per_node == 1 ? "" : "s", ranks);
    fprintf(out, KEY "%u CPU%s, memory %s per node\n", "", s->cpus_per_node ? s->cpus_per_node : 1,
            s->cpus_per_node > 1 ? "s" : "",
            s->mem_mb_per_node ? wq_format_size_mb((int64_t) s->mem_mb_per_node, buf, sizeof buf)
                               : "not reserved");
    fprintf(out, KEY "%s\n", "Time limit:",
            s->time_limit_s ? wq_format_duration((int64_t) s->time_limit_s, buf, sizeof buf)
                            : "none");
    fprintf(out, KEY "%d\n", "Priority:", s->priority);
    if (j->priority_known)
        fprintf(out, KEY "%.1f = %g x %d (priority) + %g x %.3f (fair-share) + %g x %.3f (age)\n",
                "Effective:", j->effective_priority, j->priority_weight, s->priority,
                j->fairshare_weight, j->fairshare_factor, j->age_weight, j->age_factor);
    fprintf(out, KEY "%u%s\n", "Retries:", s->retries,
            s->requeue_on_fail ? " (also on failure)" : " (on node loss)");
    if (s->notify != 0)
        fprintf(out, KEY "%s (webhook)\n",
                "Notify:", jobspec_format_notify(s->notify, buf, sizeof buf));
    const char *dep_label = "Depends on:";
    if (s->n_depends_on > 0) {
        fprintf(out, KEY "afterok", dep_label);
        for (size_t i = 0; i < s->n_depends_on; i++)
            fprintf(out, ":%" PRIu64, s->depends_on[i]);
        fputc('\n', out);
        dep_label = "";
    }
    if (s->n_after_any > 0) {
        fprintf(out, KEY "afterany", dep_label);
        for (size_t i = 0; i < s->n_after_any; i++)
            fprintf(out, ":%" PRIu64, s->after_any[i]);
        fputc('\n', out);
        dep_label = "";
    }
    if (s->n_after_notok > 0) {
        fprintf(out, KEY "afternotok", dep_label);
        for (size_t i = 0; i < s->n_after_notok; i++)
            fprintf(out, ":%" PRIu64, s->after_notok[i]);
        fputc('\n', out);
        dep_label = "";
    }
    if (s->singleton)
        fprintf(out, KEY "singleton (one job named %s of %s at a time)\n", dep_label, s->name,
                s->user);
    const struct {
        const char *key;
        char **v;
        size_t n;
    } where[] = {{"Nodelist:", s->nodelist, s->n_nodelist},
                 {"Exclude:", s->exclude, s->n_exclude},
                 {"Constraint:", s->constraints, s->n_constraints}};
    for (size_t w = 0; w < sizeof where / sizeof where[0]; w++) {
        if (where[w].n == 0)
            continue;
        fprintf(out, KEY, where[w].key);
        for (size_t i = 0; i < where[w].n; i++)
            fprintf(out, "%s%s", i ? "," : "", where[w].v[i]);
        fputc('\n', out);
    }
    if (s->container != NULL && s->container[0] != '\0')
        fprintf(out, KEY "%s\n", "Container:", s->container);
    if (s->tf) {
        fprintf(out, KEY "TF_CONFIG for each rank", "TensorFlow:");
        for (size_t i = 0; i < j->n_tf_ports; i++)
            fprintf(out, "%s%u", i ? "," : "; ports ", j->tf_ports[i]);
        fputc('\n', out);
    }
    if (s->gpu_type != NULL && s->gpu_type[0] != '\0')
        fprintf(out, KEY "%s\n", "GPU type:", s->gpu_type);
    char gm[32];
    if (s->gpu_mem_min_mb > 0)
        fprintf(out, KEY "%s\n",
                "GPU mem min:", wq_format_size_mb((int64_t) s->gpu_mem_min_mb, gm, sizeof gm));
    if (s->gpu_mem_mb > 0)
        fprintf(out, KEY "%s of each GPU, shared\n",
                "GPU share:", wq_format_size_mb((int64_t) s->gpu_mem_mb, gm, sizeof gm));
    fprintf(out, KEY "%u\n", "Attempt:", j->attempt);
    if (s->preemptible)
        fprintf(out, KEY "yes (preempted or evicted %u time%s)\n", "Preemptible:", j->preemptions,
                j->preemptions == 1 ? "" : "s");
    if (j->suspended || j->suspended_ms > 0) {
        int64_t ms = j->suspended_ms;
        if (j->suspended && j->suspended_since_ms > 0 && now_ms > j->suspended_since_ms)
            ms += now_ms - j->suspended_since_ms;
        fprintf(out, KEY "%s%s in all (not counted against the time limit)\n",
                "Suspended:", j->suspended ? "yes, while its PC's owner is present; " : "no; ",
                wq_format_duration(ms / 1000, buf, sizeof buf));
    }
    print_time_line(out, "Submitted:", j->submit_ms);
    print_time_line(out, "Started:", j->start_ms);
    print_time_line(out, "Ended:", j->end_ms);
    fprintf(out, KEY "%s\n",
            j->state == WSLQ__JOB_STATE__PENDING ? "Waiting:"
            : wire_state_is_final(j->state)      ? "Run time:"
                                                 : "Elapsed:",
            wq_format_duration(print_job_seconds(j, now_ms), buf, sizeof buf));
    if (j->signal > 0)
        fprintf(out, KEY "killed by signal %d (%s)\n", "Exit:", j->signal, strsignal(j->signal));
    else if (j->exit_code >= 0 && wire_state_is_final(j->state))
        fprintf(out, KEY "code %d\n", "Exit:", j->exit_code);
    if (j->reason && j->reason[0])
        fprintf(out, KEY "%s\n", "Reason:", j->reason);
    if (j->failed_rank >= 0)
        fprintf(out, KEY "rank %d on %s\n", "Failed rank:", j->failed_rank,
                j->failed_node && j->failed_node[0] ? j->failed_node : "?");
    if (j->master_addr && j->master_addr[0])
        fprintf(out, KEY "%s:%u\n", "Master:", j->master_addr, j->master_port);
    if (j->n_allocs > 0) {
        fprintf(out, "\nAllocation:\n");
        print_allocs(j, out);
    }
    fprintf(out, "\nEvents:\n");
    if (r->n_events == 0)
        fprintf(out, "  (none)\n");
    else
        print_events(r, out);
}

int
cmd_show(cli_ctx_t *ctx, int argc, char **argv)
{
    int json = 0, script = 0;
    wq_error_t err = {0};
    opt_parser_t p;
    opt_parser_init(&p, argc, argv, 0);
    int id;
    while ((id = opt_next(&p, opts, &err)) > 0) {
        if (id == OPT_HELP) {
            opt_parser_fini(&p);
            fputs(usage, stdout);
            return CLI_OK;
        }
        if (id == O_JSON)
            json = 1;
        else if (id == O_SCRIPT)
            script = 1;
        else if (opt_common(ctx, id, p.arg, &err) != 0)
            id = -1;
        if (id < 0)
            break;
    }
    char selector[WIRE_MAX_SELECTOR + 1] = "";
    if (id == 0 && opt_one_job_selector(&p, "show", selector, sizeof selector, &err) < 0)
        id = -1;
    opt_parser_fini(&p);
    if (id == 0 && json && script) {
        wq_fail(&err, WQ_EINVAL, "--json and --script cannot be used together");
        id = -1;
    }
    if (id < 0)
        return cli_usage_error(ctx, "%s", err.text);

    client_t *c = client_new(ctx, &err);
    if (c == NULL)
        return cli_fail(&err);
    Wslq__ShowRequest req = WSLQ__SHOW_REQUEST__INIT;
    req.selector = selector;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_SHOW;
    env.show = &req;
    Wslq__Envelope *rep = client_call(c, &env, WSLQ__ENVELOPE__BODY_SHOW_REPLY, 0, &err);
    client_destroy(&c);
    if (rep == NULL)
        return cli_fail(&err);
    int rc = CLI_OK;
    const Wslq__JobInfo *job = rep->show_reply->job;
    if (script && (job == NULL || job->spec == NULL || job->spec->script.len == 0)) {
        fprintf(stderr,
                "wslq show: job %s has no batch script (not submitted as one, or not yours)\n",
                selector);
        rc = CLI_FAIL;
    } else if (script) {
        fwrite(job->spec->script.data, 1, job->spec->script.len, stdout);
    } else if (json)
        rc = cli_print_json(json_show_reply(rep->show_reply));
    else
        print_show(rep->show_reply, wq_clock_wall_ms(), stdout);
    wire_free(&rep);
    return rc;
}
