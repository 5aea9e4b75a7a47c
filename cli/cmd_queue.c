/* wslq queue: the job table, squeue-like. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    "usage: wslq queue [options]\n"
    "\n"
    "List pending and running jobs, newest last. Options:\n"
    "  -a, --all             include ended jobs\n"
    "  -s, --state S[,S]     only these states (PENDING/PD, RUNNING/R, COMPLETED/CD, ...)\n"
    "  -u, --user USER       only this user's jobs\n"
    "      --me              only my jobs\n"
    "  -n, --name NAME       only jobs with this name\n"
    "  -r, --array           one line per array task (else an array's pending tasks are one\n"
    "                        line, 40_[3-499%8]: array 40, tasks 3-499 pending, 8 at a time)\n"
    "      --limit N         at most N jobs\n"
    "      --noheader        no header line\n"
    "      --json            {\"jobs\": [...], \"more\": bool}\n"
    "      --scheduler ADDR, --timeout SEC   as for every command\n"
    "\n"
    "TIME is the elapsed time of a running job, the waiting time of a pending one, and the\n"
    "run time of an ended one. REASON says in a word why a pending job waits (Priority,\n"
    "Resources, Dependency, Held, ArrayLimit, NoNode, Backoff, Reservation; 'wslq why JOB'\n"
    "tells the whole story); NODELIST(REASON) gives the nodes, or the reason in a sentence,\n"
    "after 'start ~14:05' when the backfill plan reserved resources for the job; an ended\n"
    "job's nodes are followed by why it ended: 'pc1 (exit 1)'.\n";

enum { O_ALL = 1, O_STATE, O_USER, O_ME, O_NAME, O_LIMIT, O_NOHEADER, O_JSON, O_ARRAY };

static const opt_t opts[] = {
    {"all", 'a', 0, O_ALL},
    {"state", 's', 1, O_STATE},
    {"user", 'u', 1, O_USER},
    {"me", 0, 0, O_ME},
    {"name", 'n', 1, O_NAME},
    {"limit", 0, 1, O_LIMIT},
    {"noheader", 0, 0, O_NOHEADER},
    {"json", 0, 0, O_JSON},
    {"array", 'r', 0, O_ARRAY},
    OPT_COMMON,
    {NULL, 0, 0, 0},
};

int64_t
print_job_seconds(const Wslq__JobInfo *j, int64_t now_ms)
{
    int64_t from, to;
    if (wire_state_is_final(j->state)) {
        if (j->start_ms <= 0)
            return 0;
        from = j->start_ms;
        to = j->end_ms > 0 ? j->end_ms : j->start_ms;
    } else if (j->state == WSLQ__JOB_STATE__PENDING || j->start_ms <= 0) {
        from = j->submit_ms;
        to = now_ms;
    } else {
        from = j->start_ms;
        to = now_ms;
    }
    return from > 0 && to > from ? (to - from) / 1000 : 0;
}

const char *
print_job_label(const Wslq__JobInfo *j, char *buf, size_t size)
{
    if (j->array_pending > 0 && j->array_limit > 0)
        snprintf(buf, size, "%" PRIu64 "_[%s%%%u]", j->array_job_id, j->array_tasks,
                 j->array_limit);
    else if (j->array_pending > 0)
        snprintf(buf, size, "%" PRIu64 "_[%s]", j->array_job_id, j->array_tasks);
    else if (j->array_job_id != 0)
        snprintf(buf, size, "%" PRIu64 "_%u", j->array_job_id, j->array_index);
    else
        snprintf(buf, size, "%" PRIu64, j->id);
    return buf;
}

const char *
print_short_time(int64_t wall_ms, int64_t now_ms, char *buf, size_t size)
{
    time_t t = (time_t) (wall_ms / 1000), n = (time_t) (now_ms / 1000);
    struct tm tm, tn;
    localtime_r(&t, &tm);
    localtime_r(&n, &tn);
    if (tm.tm_year == tn.tm_year && tm.tm_yday == tn.tm_yday)
        strftime(buf, size, "%H:%M", &tm);
    else
        strftime(buf, size, "%m-%d %H:%M", &tm);
    return buf;
}

void
print_queue(const Wslq__QueueReply *r, int64_t now_ms, int no_header, FILE *out)
{
    static const char *const hdr[] = {"ID",    "USER", "NAME",   "STATE",           "GPUS",
                                      "NODES", "TIME", "REASON", "NODELIST(REASON)"};
    table_t *t = table_new(9, hdr);
    table_set_right(t, 0);
    table_set_right(t, 4);
    table_set_right(t, 5);
    table_set_right(t, 6);
    table_set_max(t, 0, 40);
    table_set_max(t, 1, 12);
    table_set_max(t, 2, 24);
    table_set_max(t, 8, 60);
    for (size_t i = 0; i < r->n_jobs; i++) {
        const Wslq__JobInfo *j = r->jobs[i];
        const Wslq__JobSpec *s = j->spec;
        char dur[32];
        table_row(t);
        char id[96];
        table_cellf(t, "%s", print_job_label(j, id, sizeof id));
        table_cellf(t, "%s", s->user);
        table_cellf(t, "%s", s->name);
        table_cellf(t, "%s", j->suspended ? "SUSPENDED" : wire_state_name(j->state));
        table_cellf(t, "%u", s->nodes * s->gpus_per_node);
        table_cellf(t, "%u", s->nodes);
        table_cellf(t, "%s", wq_format_duration(print_job_seconds(j, now_ms), dur, sizeof dur));
        const char *word = jobspec_wait_name(j->wait_reason);
        table_cellf(t, "%s", j->state == WSLQ__JOB_STATE__PENDING && word[0] ? word : "-");
        if (j->n_allocs > 0 && j->state != WSLQ__JOB_STATE__PENDING) {
            char list[512] = "";
            size_t used = 0;
            for (size_t k = 0; k < j->n_allocs && used < sizeof list - 1; k++)
                used += (size_t) snprintf(list + used, sizeof list - used, "%s%s", k ? "," : "",
                                          j->allocs[k]->node);
            /* an ended job says why beside where: "pc1 (exit 1)" */
            if (wire_state_is_final(j->state) && j->reason != NULL && j->reason[0] != '\0')
                table_cellf(t, "%s (%s)", list, j->reason);
            else
                table_cellf(t, "%s", list);
        } else if (j->state == WSLQ__JOB_STATE__PENDING && j->est_start_ms > 0) {
            char when[32];
            table_cellf(t, "start ~%s (%s)",
                        print_short_time(j->est_start_ms, now_ms, when, sizeof when),
                        j->reason ? j->reason : "");
        } else if (j->reason != NULL && j->reason[0] != '\0') {
            table_cellf(t, "(%s)", j->reason);
        } else {
            table_cellf(t, "%s", "");
        }
    }
    table_print(t, out, 0, no_header);
    table_destroy(&t);
}

static int
parse_states(
    const char *list, Wslq__QueueRequest *q, Wslq__JobState *buf, size_t cap, wq_error_t *err)
{
    char *copy = wq_strdup(list);
    char *save = NULL;
    int rc = 0;
    for (char *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        Wslq__JobState st = wire_state_parse(s);
        if (st == WSLQ__JOB_STATE__JOB_STATE_UNSPECIFIED) {
            rc = wq_fail(err, WQ_EINVAL,
                         "--state: unknown state '%.40s'; use PENDING, STARTING, RUNNING, "
                         "COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL or "
                         "OUT_OF_MEMORY",
                         s);
            break;
        }
        if (q->n_states == cap) {
            rc = wq_fail(err, WQ_EINVAL, "--state: more than %zu states", cap);
            break;
        }
        buf[q->n_states++] = st;
        /* Asking for an ended state means looking at ended jobs. */
        if (wire_state_is_final(st))
            q->all = 1;
    }
    if (rc == 0 && q->n_states == 0)
        rc = wq_fail(err, WQ_EINVAL, "--state: empty list");
    free(copy);
    return rc;
}

int
cmd_queue(cli_ctx_t *ctx, int argc, char **argv)
{
    Wslq__QueueRequest q = WSLQ__QUEUE_REQUEST__INIT;
    Wslq__JobState states[16];
    q.states = states;
    int json = 0, no_header = 0, rc;
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
        case O_ALL:
            q.all = 1;
            break;
        case O_STATE:
            q.n_states = 0;
            if (parse_states(p.arg, &q, states, 16, &err) < 0)
                id = -1;
            break;
        case O_USER:
            q.user = (char *) p.arg;
            break;
        case O_ME:
            q.user = (char *) cli_user_name(ctx);
            break;
        case O_NAME:
            q.name = (char *) p.arg;
            break;
        case O_LIMIT:
            if (wq_parse_int(p.arg, 1, 100000, "--limit", &v, &err) < 0)
                id = -1;
            else
                q.limit = (uint32_t) v;
            break;
        case O_NOHEADER:
            no_header = 1;
            break;
        case O_JSON:
            json = 1;
            break;
        case O_ARRAY:
            q.expand_arrays = 1;
            break;
        default:
            if (opt_common(ctx, id, p.arg, &err) != 0)
                id = -1;
            break;
        }
        if (id < 0)
            break;
    }
    if (id == 0 && p.n_operands > 0) {
        wq_fail(&err, WQ_EINVAL, "unexpected argument '%.40s'", p.operands[0]);
        id = -1;
    }
    opt_parser_fini(&p);
    if (id < 0)
        return cli_usage_error(ctx, "%s", err.text);

    client_t *c = client_new(ctx, &err);
    if (c == NULL)
        return cli_fail(&err);
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_QUEUE;
    env.queue = &q;
    Wslq__Envelope *rep = client_call(c, &env, WSLQ__ENVELOPE__BODY_QUEUE_REPLY, 0, &err);
    client_destroy(&c);
    if (rep == NULL)
        return cli_fail(&err);
    if (json) {
        rc = cli_print_json(json_queue_reply(rep->queue_reply));
    } else {
        print_queue(rep->queue_reply, wq_clock_wall_ms(), no_header, stdout);
        if (rep->queue_reply->more)
            fprintf(stderr, "wslq: more jobs match; raise --limit to see them\n");
        rc = CLI_OK;
    }
    wire_free(&rep);
    return rc;
}
