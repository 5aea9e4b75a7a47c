/* wslq history (like sacct: every ended job, with its GPU-hours) and wslq usage (like sreport:
 * GPU-hours and CPU-hours per user and per node). */
#define _GNU_SOURCE /* timegm */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/opt.h"
#include "cli/table.h"
#include "common/clock.h"
#include "common/mem.h"
#include "common/parse.h"

static const char usage_history[] =
    "usage: wslq history [options]\n"
    "\n"
    "Every ended job, the newest --limit of those that match, oldest first: its GPUs, when\n"
    "it was submitted, how long it waited and ran, and its GPU-hours (GPUs x run time of its\n"
    "last attempt). Options:\n"
    "  -u, --user USER       this user's jobs (default: yours; other users' for admins)\n"
    "      --all-users       every user's jobs (admins)\n"
    "  -s, --state S[,S]     only these end states (COMPLETED/CD, FAILED/F, CANCELLED/CA,\n"
    "                        TIMEOUT/TO, NODE_FAIL/NF, OUT_OF_MEMORY/OOM)\n"
    "      --node NODE       only jobs that ran on this node\n"
    "  -n, --name NAME       only jobs with this name\n"
    "      --since WHEN      ended at or after WHEN: 7d, 12h, 30m ago, or a date or time\n"
    "                        (2026-11-30, 2026-11-30T14:00, ...Z for UTC; else local time)\n"
    "      --until WHEN      ended before WHEN (same forms)\n"
    "      --limit N         at most N jobs (default 100, at most 10000)\n"
    "      --noheader        no header line\n"
    "      --json            {\"jobs\": [...], \"more\": bool}, times in ms since the epoch\n"
    "      --scheduler ADDR, --timeout SEC   as for every command\n";

static const char usage_usage[] =
    "usage: wslq usage [--since WHEN] [--until WHEN] [--json]\n"
    "\n"
    "GPU-hours, CPU-hours and job counts of the jobs that ended in the window, per user (most\n"
    "GPU-hours first) and per node (a job on several nodes counts its share on each).\n"
    "  --since WHEN        start of the window (default 30d): 7d, 12h, 30m ago, or a date or\n"
    "                      time (2026-11-30, 2026-11-30T14:00, ...Z for UTC; else local time)\n"
    "  --until WHEN        end of the window (default now), same forms\n"
    "  --json              {\"since_ms\", \"until_ms\", \"users\": [...], \"nodes\": [...]}\n"
    "  --scheduler ADDR, --timeout SEC   as for every command\n";

/* A point in time: "7d", "12h", "30m", "90s" before now, or a date "2026-11-30", or a time
 * "2026-11-30T14:00[:SS]" (or with a space), local unless it ends in "Z". */
static int
parse_when(const char *s, int64_t now_ms, const char *what, int64_t *out_ms, wq_error_t *err)
{
    size_t n = strlen(s);
    if (n > 0 && n < 16 && isdigit((unsigned char) s[0]) && strchr("smhd", s[n - 1]) != NULL &&
        strchr(s, '-') == NULL) {
        int64_t secs;
        if (wq_parse_duration(s, what, &secs, err) < 0)
            return -1;
        if (secs > now_ms / 1000)
            return wq_fail(err, WQ_EINVAL, "%s: '%.40s' reaches back before 1970", what, s);
        *out_ms = now_ms - secs * 1000;
        return 0;
    }
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, sec = 0, used = 0;
    int got = sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &used);
    const char *rest = s + used;
    int utc = 0;
    if (got == 3 && (*rest == 'T' || *rest == ' ')) {
        int u2 = 0;
        if (sscanf(rest + 1, "%2d:%2d%n", &h, &mi, &u2) == 2) {
            rest += 1 + u2;
            if (*rest == ':') {
                int u3 = 0;
                if (sscanf(rest + 1, "%2d%n", &sec, &u3) == 1)
                    rest += 1 + u3;
                else
                    got = 0;
            }
        } else {
            got = 0;
        }
    }
    if (got == 3 && *rest == 'Z') {
        utc = 1;
        rest++;
    }
    if (got != 3 || used != 10 || *rest != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
        mi > 59 || sec > 60 || y < 1970)
        return wq_fail(err, WQ_EINVAL,
                       "%s: '%.40s' is not a time; use 7d, 12h, 30m (ago), 2026-11-30 or "
                       "2026-11-30T14:00[:00][Z]",
                       what, s);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    tm.tm_isdst = -1;
    time_t t = utc ? timegm(&tm) : mktime(&tm);
    if (t == (time_t) -1 || tm.tm_mday != d) /* 2026-02-31 normalises to March */
        return wq_fail(err, WQ_EINVAL, "%s: '%.40s' is not a date", what, s);
    *out_ms = (int64_t) t * 1000;
    return 0;
}

static const char *
fmt_time(int64_t ms, char *buf, size_t size)
{
    if (ms <= 0)
        return "-";
    time_t t = (time_t) (ms / 1000);
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL || strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        return "-";
    return buf;
}

static int
parse_end_states(const char *list, Wslq__JobState *buf, size_t cap, size_t *n, wq_error_t *err)
{
    char *copy = wq_strdup(list);
    char *save = NULL;
    int rc = 0;
    *n = 0;
    for (char *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        Wslq__JobState st = wire_state_parse(s);
        if (!wire_state_is_final(st)) {
            rc = wq_fail(err, WQ_EINVAL,
                         "--state: '%.40s' is not an end state; use COMPLETED, FAILED, "
                         "CANCELLED, TIMEOUT, NODE_FAIL or OUT_OF_MEMORY",
                         s);
            break;
        }
        if (*n == cap) {
            rc = wq_fail(err, WQ_EINVAL, "--state: more than %zu states", cap);
            break;
        }
        buf[(*n)++] = st;
    }
    if (rc == 0 && *n == 0)
        rc = wq_fail(err, WQ_EINVAL, "--state: empty list");
    free(copy);
    return rc;
}

static cJSON *
json_acct(const Wslq__AcctJob *j)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double) j->id);
    if (j->array_job_id) {
        cJSON_AddNumberToObject(o, "array_job_id", (double) j->array_job_id);
        cJSON_AddNumberToObject(o, "array_index", j->array_index);
    }
    cJSON_AddStringToObject(o, "name", j->name);
    cJSON_AddStringToObject(o, "user", j->user);
    cJSON_AddStringToObject(o, "state", wire_state_name(j->state));
    cJSON_AddStringToObject(o, "end_cause", j->end_cause);
    cJSON_AddNumberToObject(o, "exit_code", j->exit_code);
    cJSON *nodes = cJSON_AddArrayToObject(o, "nodes");
    for (size_t i = 0; i < j->n_nodes; i++)
        cJSON_AddItemToArray(nodes, cJSON_CreateString(j->nodes[i]));
    cJSON_AddNumberToObject(o, "gpus", j->gpus);
    cJSON_AddNumberToObject(o, "cpus", j->cpus);
    cJSON_AddNumberToObject(o, "submit_ms", (double) j->submit_ms);
    cJSON_AddNumberToObject(o, "start_ms", (double) j->start_ms);
    cJSON_AddNumberToObject(o, "end_ms", (double) j->end_ms);
    cJSON_AddNumberToObject(o, "wait_s", (double) j->wait_s);
    cJSON_AddNumberToObject(o, "run_s", (double) j->run_s);
    cJSON_AddNumberToObject(o, "gpu_seconds", (double) j->gpu_seconds);
    cJSON_AddNumberToObject(o, "cpu_seconds", (double) j->cpu_seconds);
    cJSON_AddNumberToObject(o, "gpu_hours", (double) j->gpu_seconds / 3600.0);
    return o;
}

static void
print_history(const Wslq__HistoryReply *r, int no_header)
{
    static const char *const hdr[] = {"ID",   "NAME",   "USER", "STATE",   "END CAUSE", "NODES",
                                      "GPUS", "SUBMIT", "WAIT", "RUNTIME", "GPU-HOURS"};
    table_t *t = table_new(11, hdr);
    table_set_right(t, 0);
    table_set_right(t, 6);
    table_set_right(t, 8);
    table_set_right(t, 9);
    table_set_right(t, 10);
    table_set_max(t, 1, 24);
    table_set_max(t, 2, 12);
    table_set_max(t, 4, 40);
    table_set_max(t, 5, 30);
    for (size_t i = 0; i < r->n_jobs; i++) {
        const Wslq__AcctJob *j = r->jobs[i];
        char buf[64];
        table_row(t);
        if (j->array_job_id)
            table_cellf(t, "%" PRIu64 "_%u", j->array_job_id, j->array_index);
        else
            table_cellf(t, "%" PRIu64, j->id);
        table_cellf(t, "%s", j->name);
        table_cellf(t, "%s", j->user);
        table_cellf(t, "%s", wire_state_name(j->state));
        table_cellf(t, "%s", j->end_cause[0] ? j->end_cause : "-");
        char nodes[256] = "";
        size_t off = 0;
        for (size_t k = 0; k < j->n_nodes && off < sizeof nodes; k++)
            off += (size_t) snprintf(nodes + off, sizeof nodes - off, "%s%s", k ? "," : "",
                                     j->nodes[k]);
        table_cellf(t, "%s", nodes[0] ? nodes : "-");
        table_cellf(t, "%u", j->gpus);
        table_cellf(t, "%s", fmt_time(j->submit_ms, buf, sizeof buf));
        table_cellf(t, "%s",
                    j->start_ms > 0 ? wq_format_duration(j->wait_s, buf, sizeof buf) : "-");
        table_cellf(t, "%s", wq_format_duration(j->run_s, buf, sizeof buf));
        table_cellf(t, "%.2f", (double) j->gpu_seconds / 3600.0);
    }
    table_print(t, stdout, 0, no_header);
    table_destroy(&t);
    if (r->more)
        fprintf(stderr, "(older jobs not shown: use --limit, --since or --until)\n");
}

enum {
    O_USER = 1,
    O_ALL_USERS,
    O_STATE,
    O_NODE,
    O_NAME,
    O_SINCE,
    O_UNTIL,
    O_LIMIT,
    O_NOHEADER,
    O_JSON
};

static const opt_t history_opts[] = {
    {"user", 'u', 1, O_USER},
    {"all-users", 0, 0, O_ALL_USERS},
    {"state", 's', 1, O_STATE},
    {"node", 0, 1, O_NODE},
    {"name", 'n', 1, O_NAME},
    {"since", 0, 1, O_SINCE},
    {"until", 0, 1, O_UNTIL},
    {"limit", 0, 1, O_LIMIT},
    {"noheader", 0, 0, O_NOHEADER},
    {"json", 0, 0, O_JSON},
    OPT_COMMON,
    {NULL, 0, 0, 0},
};

int
cmd_history(cli_ctx_t *ctx, int argc, char **argv)
{
    Wslq__HistoryRequest q = WSLQ__HISTORY_REQUEST__INIT;
    Wslq__JobState states[16];
    q.states = states;
    int json = 0, no_header = 0;
    int64_t now = wq_clock_wall_ms();
    wq_error_t err = {0};
    opt_parser_t p;
    opt_parser_init(&p, argc, argv, 0);
    int id;
    while ((id = opt_next(&p, history_opts, &err)) > 0) {
        int64_t v;
        switch (id) {
        case OPT_HELP:
            opt_parser_fini(&p);
            fputs(usage_history, stdout);
            return CLI_OK;
        case O_USER:
            q.user = (char *) p.arg;
            break;
        case O_ALL_USERS:
            q.all_users = 1;
            break;
        case O_STATE:
            if (parse_end_states(p.arg, states, 16, &q.n_states, &err) < 0)
                id = -1;
            break;
        case O_NODE:
            q.node = (char *) p.arg;
            break;
        case O_NAME:
            q.name = (char *) p.arg;
            break;
        case O_SINCE:
            if (parse_when(p.arg, now, "--since", &q.since_ms, &err) < 0)
                id = -1;
            break;
        case O_UNTIL:
            if (parse_when(p.arg, now, "--until", &q.until_ms, &err) < 0)
                id = -1;
            break;
        case O_LIMIT:
            if (wq_parse_int(p.arg, 1, 10000, "--limit", &v, &err) < 0)
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
    if (id == 0 && q.all_users && q.user[0]) {
        wq_fail(&err, WQ_EINVAL, "give --user or --all-users, not both");
        id = -1;
    }
    if (id == 0 && q.since_ms > 0 && q.until_ms > 0 && q.until_ms <= q.since_ms) {
        wq_fail(&err, WQ_EINVAL, "--until must be later than --since");
        id = -1;
    }
    if (id < 0) {
        opt_parser_fini(&p);
        return cli_usage_error(ctx, "%s", err.text);
    }
    if (ctx->insecure && !q.all_users && q.user[0] == '\0')
        q.user = (char *) cli_user_name(ctx); /* no key says who we are: the login name */
    client_t *c = client_new(ctx, &err);
    if (c == NULL) {
        opt_parser_fini(&p);
        return cli_fail(&err);
    }
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_HISTORY;
    env.history = &q;
    Wslq__Envelope *rep = client_call(c, &env, WSLQ__ENVELOPE__BODY_HISTORY_REPLY, 0, &err);
    client_destroy(&c);
    opt_parser_fini(&p);
    if (rep == NULL)
        return cli_fail(&err);
    const Wslq__HistoryReply *r = rep->history_reply;
    int rc = CLI_OK;
    if (json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON *jobs = cJSON_AddArrayToObject(doc, "jobs");
        for (size_t i = 0; i < r->n_jobs; i++)
            cJSON_AddItemToArray(jobs, json_acct(r->jobs[i]));
        cJSON_AddBoolToObject(doc, "more", r->more);
        rc = cli_print_json(doc);
    } else {
        print_history(r, no_header);
    }
    wire_free(&rep);
    return rc;
}

static cJSON *
json_usage_rows(Wslq__UsageRow **rows, size_t n, const char *key)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, key, rows[i]->key);
        cJSON_AddNumberToObject(o, "jobs", (double) rows[i]->jobs);
        cJSON_AddNumberToObject(o, "gpu_seconds", (double) rows[i]->gpu_s);
        cJSON_AddNumberToObject(o, "cpu_seconds", (double) rows[i]->cpu_s);
        cJSON_AddNumberToObject(o, "gpu_hours", (double) rows[i]->gpu_s / 3600.0);
        cJSON_AddNumberToObject(o, "cpu_hours", (double) rows[i]->cpu_s / 3600.0);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static void
print_usage_rows(Wslq__UsageRow **rows, size_t n, const char *what)
{
    const char *hdr[] = {what, "JOBS", "GPU-HOURS", "CPU-HOURS"};
    table_t *t = table_new(4, hdr);
    table_set_right(t, 1);
    table_set_right(t, 2);
    table_set_right(t, 3);
    for (size_t i = 0; i < n; i++) {
        table_row(t);
        table_cellf(t, "%s", rows[i]->key);
        table_cellf(t, "%" PRIu64, rows[i]->jobs);
        table_cellf(t, "%.2f", (double) rows[i]->gpu_s / 3600.0);
        table_cellf(t, "%.2f", (double) rows[i]->cpu_s / 3600.0);
    }
    table_print(t, stdout, 0, 0);
    table_destroy(&t);
}

static const opt_t usage_opts[] = {
    {"since", 0, 1, O_SINCE}, {"until", 0, 1, O_UNTIL}, {"json", 0, 0, O_JSON}, OPT_COMMON,
    {NULL, 0, 0, 0},
};

int
cmd_usage(cli_ctx_t *ctx, int argc, char **argv)
{
    Wslq__UsageRequest q = WSLQ__USAGE_REQUEST__INIT;
    int json = 0;
    int64_t now = wq_clock_wall_ms();
    q.since_ms = now - 30LL * 86400 * 1000;
    wq_error_t err = {0};
    opt_parser_t p;
    opt_parser_init(&p, argc, argv, 0);
    int id;
    while ((id = opt_next(&p, usage_opts, &err)) > 0) {
        switch (id) {
        case OPT_HELP:
            opt_parser_fini(&p);
            fputs(usage_usage, stdout);
            return CLI_OK;
        case O_SINCE:
            if (parse_when(p.arg, now, "--since", &q.since_ms, &err) < 0)
                id = -1;
            break;
        case O_UNTIL:
            if (parse_when(p.arg, now, "--until", &q.until_ms, &err) < 0)
                id = -1;
            break;
        case O_JSON:
            json = 1;
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
    if (id == 0 && q.until_ms > 0 && q.until_ms <= q.since_ms) {
        wq_fail(&err, WQ_EINVAL, "--until must be later than --since");
        id = -1;
    }
    opt_parser_fini(&p);
    if (id < 0)
        return cli_usage_error(ctx, "%s", err.text);
    client_t *c = client_new(ctx, &err);
    if (c == NULL)
        return cli_fail(&err);
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_USAGE;
    env.usage = &q;
    Wslq__Envelope *rep = client_call(c, &env, WSLQ__ENVELOPE__BODY_USAGE_REPLY, 0, &err);
    client_destroy(&c);
    if (rep == NULL)
        return cli_fail(&err);
    const Wslq__UsageReply *r = rep->usage_reply;
    int rc = CLI_OK;
    if (json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddNumberToObject(doc, "since_ms", (double) r->since_ms);
        cJSON_AddNumberToObject(doc, "until_ms", (double) r->until_ms);
        cJSON_AddItemToObject(doc, "users", json_usage_rows(r->users, r->n_users, "user"));
        cJSON_AddItemToObject(doc, "nodes", json_usage_rows(r->nodes, r->n_nodes, "node"));
        rc = cli_print_json(doc);
    } else {
        char a[32], b[32];
        printf("Usage of jobs that ended %s .. %s\n\n", fmt_time(r->since_ms, a, sizeof a),
               fmt_time(r->until_ms, b, sizeof b));
        print_usage_rows(r->users, r->n_users, "USER");
        printf("\n");
        print_usage_rows(r->nodes, r->n_nodes, "NODE");
    }
    wire_free(&rep);
    return rc;
}
