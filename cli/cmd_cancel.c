/* wslq cancel: cancel jobs by id, or every job of a user (optionally by state or name). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/opt.h"
#include "common/mem.h"
#include "proto/jobspec.h"

static const char usage[] =
    "usage: wslq cancel JOB [JOB...]      (JOB: 42, an array 40, a task 40_7, tasks 40_[3-9])\n"
    "       wslq cancel (--me | --user USER) [--state S[,S]] [--name NAME]\n"
    "\n"
    "Cancel jobs: pending ones never start, running ones are stopped on every node\n"
    "(SIGTERM, then SIGKILL after a grace period). Prints 'Cancelled job N' for each; an\n"
    "array's id cancels every task of it not yet ended, 40_[3-9] the tasks with those indices.\n"
    "  -u, --user USER     every pending or running job of USER\n"
    "      --me            every pending or running job of mine\n"
    "  -s, --state S[,S]   with --user/--me: only jobs in these states\n"
    "  -n, --name NAME     with --user/--me: only jobs with this name\n"
    "  --scheduler ADDR, --timeout SEC   as for every command\n"
    "\n"
    "Exit 1 if any job could not be cancelled (not found, already ended).\n";

enum { O_USER = 1, O_ME, O_STATE, O_NAME };
static const opt_t opts[] = {
    {"user", 'u', 1, O_USER}, {"me", 0, 0, O_ME}, {"state", 's', 1, O_STATE},
    {"name", 'n', 1, O_NAME}, OPT_COMMON,         {NULL, 0, 0, 0},
};

/* Cancel what one selector names; prints the outcome. Returns CLI_OK or CLI_FAIL. */
static int
cancel_one(client_t *c, const char *sel, wq_error_t *errp)
{
    wq_error_t err = {0};
    Wslq__CancelRequest req = WSLQ__CANCEL_REQUEST__INIT;
    char *sels[1] = {(char *) sel};
    req.n_selectors = 1;
    req.selectors = sels;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_CANCEL;
    env.cancel = &req;
    Wslq__Envelope *rep = client_call(c, &env, WSLQ__ENVELOPE__BODY_CANCEL_REPLY, 0, &err);
    if (rep == NULL) {
        *errp = err;
        return cli_fail(&err);
    }
    size_t n = rep->cancel_reply->n_cancelled;
    uint64_t first = n > 0 ? rep->cancel_reply->cancelled[0] : 0;
    wire_free(&rep);
    char num[24];
    snprintf(num, sizeof num, "%" PRIu64, first);
    if (n == 0) {
        fprintf(stderr, "wslq: job %s was not cancelled (it has already ended)\n", sel);
        return CLI_FAIL;
    }
    if (n == 1 && (strcmp(num, sel) == 0 || strchr(sel, '[') == NULL))
        printf("Cancelled job %s\n", sel); /* "42", or one task "40_7" */
    else
        printf("Cancelled job %s (%zu job%s)\n", sel, n, n == 1 ? "" : "s");
    fflush(stdout);
    return CLI_OK;
}

/* Selectors for the live jobs matching the filters. Without a state filter an array is one
 * selector, its id (every task of it matches: they share user and name), so a sweep of
 * 100,000 tasks is one request; with one, each matching task is named. Caller owns *sels
 * and its strings. */
static int
select_jobs(client_t *c, Wslq__QueueRequest *q, char ***sels, size_t *n, wq_error_t *err)
{
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_QUEUE;
    env.queue = q;
    q->all = 0;
    q->limit = 100000;
    int whole_arrays = q->n_states == 0;
    q->expand_arrays = !whole_arrays; /* else an array's pending tasks are one line */
    Wslq__Envelope *rep = client_call(c, &env, WSLQ__ENVELOPE__BODY_QUEUE_REPLY, 0, err);
    if (rep == NULL)
        return -1;
    const Wslq__QueueReply *r = rep->queue_reply;
    *n = 0;
    *sels = wq_calloc(r->n_jobs + 1, sizeof **sels);
    uint64_t last_array = 0;
    for (size_t i = 0; i < r->n_jobs; i++) {
        const Wslq__JobInfo *j = r->jobs[i];
        if (wire_state_is_final(j->state))
            continue;
        if (whole_arrays && j->array_job_id != 0) {
            if (j->array_job_id == last_array)
                continue;
            int seen = 0; /* an array's lines are together, in ascending id: look back */
            for (size_t k = 0; k < *n && !seen; k++)
                seen = strtoull((*sels)[k], NULL, 10) == j->array_job_id;
            last_array = j->array_job_id;
            if (!seen)
                (*sels)[(*n)++] = wq_asprintf("%" PRIu64, j->array_job_id);
            continue;
        }
        if (j->array_job_id != 0) /* the array's id alone would name all of it */
            (*sels)[(*n)++] = wq_asprintf("%" PRIu64 "_%u", j->array_job_id, j->array_index);
        else
            (*sels)[(*n)++] = wq_asprintf("%" PRIu64, j->id);
    }
    wire_free(&rep);
    return 0;
}

int
cmd_cancel(cli_ctx_t *ctx, int argc, char **argv)
{
    Wslq__QueueRequest q = WSLQ__QUEUE_REQUEST__INIT;
    Wslq__JobState states[16];
    q.states = states;
    int filtered = 0, whose = 0;
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
        case O_USER:
            q.user = (char *) p.arg;
            filtered = whose = 1;
            break;
        case O_ME:
            q.user = (char *) cli_user_name(ctx);
            filtered = whose = 1;
            break;
        case O_NAME:
            q.name = (char *) p.arg;
            filtered = 1;
            break;
        case O_STATE: {
            char *copy = wq_strdup(p.arg), *save = NULL;
            q.n_states = 0;
            for (char *s = strtok_r(copy, ",", &save); s && id > 0;
                 s = strtok_r(NULL, ",", &save)) {
                Wslq__JobState st = wire_state_parse(s);
                if (st == WSLQ__JOB_STATE__JOB_STATE_UNSPECIFIED || wire_state_is_final(st)) {
                    wq_fail(&err, WQ_EINVAL,
                            "--state: '%.40s' is not a state a job can be "
                            "cancelled in (PENDING, STARTING, RUNNING)",
                            s);
                    id = -1;
                } else if (q.n_states < 16) {
                    states[q.n_states++] = st;
                }
            }
            free(copy);
            filtered = 1;
            break;
        }
        default:
            if (opt_common(ctx, id, p.arg, &err) != 0)
                id = -1;
            break;
        }
        if (id < 0)
            break;
    }
    size_t n = 0;
    char **sels = NULL;
    if (id == 0) {
        if (filtered && p.n_operands > 0) {
            wq_fail(&err, WQ_EINVAL, "give job ids or filters, not both");
            id = -1;
        } else if (filtered && !whose) {
            wq_fail(&err, WQ_EINVAL, "say whose jobs to cancel with --me or --user USER");
            id = -1;
        } else if (!filtered && p.n_operands == 0) {
            wq_fail(&err, WQ_EINVAL, "no job id given");
            id = -1;
        } else if (!filtered) {
            sels = wq_calloc((size_t) p.n_operands + 1, sizeof *sels);
            for (int i = 0; i < p.n_operands && id == 0; i++) {
                jobspec_selector_t sel;
                if (jobspec_parse_selector(p.operands[i], &sel, &err) < 0)
                    id = -1;
                jobspec_selector_fini(&sel);
                sels[n++] = wq_strdup(p.operands[i]);
            }
        }
    }
    opt_parser_fini(&p);
    if (id < 0) {
        for (size_t i = 0; i < n && sels; i++)
            free(sels[i]);
        free(sels);
        return cli_usage_error(ctx, "%s", err.text);
    }

    client_t *c = client_new(ctx, &err);
    if (c == NULL) {
        for (size_t i = 0; i < n && sels; i++)
            free(sels[i]);
        free(sels);
        return cli_fail(&err);
    }
    int rc = CLI_OK;
    if (filtered) {
        if (select_jobs(c, &q, &sels, &n, &err) < 0) {
            client_destroy(&c);
            return cli_fail(&err);
        }
        if (n == 0)
            printf("No matching jobs\n");
    }
    /* One request per operand, so each gets its own answer ("job 99 not found"). */
    size_t i = 0;
    for (; i < n; i++) {
        wq_error_t e = {0};
        if (cancel_one(c, sels[i], &e) != CLI_OK) {
            rc = CLI_FAIL;
            if (e.code == WQ_ETIMEDOUT)
                break; /* the scheduler is gone: do not wait again for each job */
        }
    }
    for (i = 0; i < n; i++)
        free(sels[i]);
    free(sels);
    client_destroy(&c);
    return rc;
}
