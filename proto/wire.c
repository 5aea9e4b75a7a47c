/* The wire; see wire.h. The only file that unpacks bytes that came from a socket. */
#include "proto/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zmq.h>

#include "common/log.h"
#include "common/mem.h"
#include "proto/wire_snap.h"

#define WIRE_MAX_PROBE_TOKEN 64 /* ProbeRequest/ProbeResult token */

static int
check_str(const char *s, size_t max, int required, const char *what, wq_error_t *err)
{
    if (s == NULL || s[0] == '\0') {
        if (required)
            return wq_fail(err, WQ_EPROTO, "%s is empty", what);
        return 0;
    }
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return wq_fail(err, WQ_ELIMIT, "%s is longer than %zu bytes", what, max);
    return 0;
}

static int
check_name(const char *s, int required, const char *what, wq_error_t *err)
{
    if (check_str(s, WIRE_MAX_NAME, required, what, err) < 0)
        return -1;
    for (const char *p = s; p != NULL && *p; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            return wq_fail(err, WQ_EPROTO, "%s contains a control character", what);
    return 0;
}

/* One line of text: no control character but tab, so it cannot forge a log line. */
static int
check_line(const char *s, size_t max, int required, const char *what, wq_error_t *err)
{
    if (check_str(s, max, required, what, err) < 0)
        return -1;
    for (const char *p = s; p != NULL && *p; p++)
        if (((unsigned char) *p < 0x20 && *p != '\t') || *p == 0x7f)
            return wq_fail(err, WQ_EPROTO, "%s contains a control character", what);
    return 0;
}

/* An IPv4 or IPv6 address in text form, nothing else (it becomes MASTER_ADDR). */
static int
check_ip(const char *s, int required, const char *what, wq_error_t *err)
{
    if (check_str(s, WIRE_MAX_IP, required, what, err) < 0)
        return -1;
    if (s == NULL || s[0] == '\0')
        return 0;
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, s, buf) != 1 && inet_pton(AF_INET6, s, buf) != 1)
        return wq_fail(err, WQ_EPROTO, "%s '%.40s' is not an IP address", what, s);
    return 0;
}

/* Lowercase hexadecimal of at most max characters. */
static int
check_hex(const char *s, size_t max, int required, const char *what, wq_error_t *err)
{
    if (check_str(s, max, required, what, err) < 0)
        return -1;
    for (const char *p = s; p != NULL && *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return wq_fail(err, WQ_EPROTO, "%s is not hexadecimal", what);
    return 0;
}

/* A node name: it names files and shows in tables, so [A-Za-z0-9._-] only. */
static int
check_node_name(const char *s, int required, wq_error_t *err)
{
    if (check_name(s, required, "node name", err) < 0)
        return -1;
    for (const char *p = s; p != NULL && *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return wq_fail(err, WQ_EPROTO,
                           "node name '%.64s' may hold only letters, digits, '-', '_', '.'", s);
    return 0;
}

static int
check_count(size_t n, size_t max, const char *what, wq_error_t *err)
{
    if (n > max)
        return wq_fail(err, WQ_ELIMIT, "%s has %zu items, more than %zu", what, n, max);
    return 0;
}

static int
check_state(Wslq__JobState st, int allow_unset, wq_error_t *err)
{
    if ((st == WSLQ__JOB_STATE__JOB_STATE_UNSPECIFIED && !allow_unset) || st < 0 ||
        (st != WSLQ__JOB_STATE__JOB_STATE_UNSPECIFIED && !wire_state_known(st)))
        return wq_fail(err, WQ_EPROTO, "job state %d is out of range", (int) st);
    return 0;
}

int
wire_check_tag(const char *s, const char *what, wq_error_t *err)
{
    size_t n = s != NULL ? strnlen(s, WIRE_MAX_TAG + 1) : 0;
    if (n == 0)
        return wq_fail(err, WQ_EINVAL, "%s: empty tag", what);
    if (n > WIRE_MAX_TAG)
        return wq_fail(err, WQ_EINVAL, "%s: '%.40s...' is longer than %d bytes", what, s,
                       WIRE_MAX_TAG);
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == '-'))
            return wq_fail(err, WQ_EINVAL, "%s: '%.40s' is not a tag (letters, digits, _ . -)",
                           what, s);
    return 0;
}

/* The nodes a job may run on: names, and tags it needs. */
static int
check_placement(const Wslq__JobSpec *spec, wq_error_t *err)
{
    if (check_count(spec->n_nodelist, WIRE_MAX_NODES, "nodelist", err) < 0 ||
        check_count(spec->n_exclude, WIRE_MAX_NODES, "exclude list", err) < 0 ||
        check_count(spec->n_constraints, WIRE_MAX_TAGS, "constraints", err) < 0)
        return -1;
    for (size_t i = 0; i < spec->n_nodelist; i++)
        if (check_name(spec->nodelist[i], 1, "nodelist entry", err) < 0)
            return -1;
    for (size_t i = 0; i < spec->n_exclude; i++)
        if (check_name(spec->exclude[i], 1, "exclude entry", err) < 0)
            return -1;
    for (size_t i = 0; i < spec->n_constraints; i++)
        if (wire_check_tag(spec->constraints[i], "constraint", err) < 0)
            return -1;
    return 0;
}

int
wire_check_container(const char *image, wq_error_t *err)
{
    if (check_str(image, WIRE_MAX_IMAGE, 0, "container image", err) < 0)
        return -1;
    if (image == NULL || image[0] == '\0')
        return 0;
    /* an image reference: registry/name:tag or @digest; never an option of the engine */
    int ok = (image[0] >= 'a' && image[0] <= 'z') || (image[0] >= 'A' && image[0] <= 'Z') ||
             (image[0] >= '0' && image[0] <= '9');
    for (const char *p = image; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             strchr("._-/:@", *p) != NULL;
    if (!ok)
        return wq_fail(err, WQ_EINVAL,
                       "--container: '%.60s' is not an image name (letters, digits and ._-/:@, "
                       "starting with a letter or digit)",
                       image);
    return 0;
}

int
wire_validate_spec(const Wslq__JobSpec *spec, wq_error_t *err)
{
    if (spec == NULL)
        return wq_fail(err, WQ_EPROTO, "job spec is missing");
    if (spec->n_argv == 0)
        return wq_fail(err, WQ_EPROTO, "job has no command (argv is empty)");
    if (check_count(spec->n_argv, WIRE_MAX_ARGV, "argv", err) < 0 ||
        check_count(spec->n_env + spec->n_secret_env, WIRE_MAX_ENV, "env", err) < 0 ||
        check_count(spec->n_depends_on, WIRE_MAX_DEPS, "dependency list", err) < 0 ||
        check_count(spec->n_after_any, WIRE_MAX_DEPS, "afterany list", err) < 0 ||
        check_count(spec->n_after_notok, WIRE_MAX_DEPS, "afternotok list", err) < 0 ||
        check_placement(spec, err) < 0)
        return -1;
    size_t total = 0;
    for (size_t i = 0; i < spec->n_argv; i++) {
        if (spec->argv[i] == NULL)
            return wq_fail(err, WQ_EPROTO, "argv[%zu] is missing", i);
        size_t n = strnlen(spec->argv[i], WIRE_MAX_ARG_LEN + 1);
        if (n > WIRE_MAX_ARG_LEN)
            return wq_fail(err, WQ_ELIMIT, "argv[%zu] is longer than %d bytes", i,
                           WIRE_MAX_ARG_LEN);
        if (i == 0 && n == 0)
            return wq_fail(err, WQ_EPROTO, "argv[0] (the program) is empty");
        total += n;
    }
    for (size_t i = 0; i < spec->n_env + spec->n_secret_env; i++) {
        int secret = i >= spec->n_env;
        size_t k = secret ? i - spec->n_env : i;
        const char *e = secret ? spec->secret_env[k] : spec->env[k];
        const char *what = secret ? "secret_env" : "env";
        if (e == NULL)
            return wq_fail(err, WQ_EPROTO, "%s[%zu] is missing", what, k);
        size_t n = strnlen(e, WIRE_MAX_ENV_LEN + 1);
        if (n > WIRE_MAX_ENV_LEN)
            return wq_fail(err, WQ_ELIMIT, "%s[%zu] is longer than %d bytes", what, k,
                           WIRE_MAX_ENV_LEN);
        const char *eq = strchr(e, '=');
        if (eq == NULL || eq == e)
            return wq_fail(err, WQ_EPROTO, "%s[%zu] is not of the form NAME=VALUE", what, k);
        total += n;
    }
    if (check_str(spec->cwd, WIRE_MAX_PATH, 0, "working directory", err) < 0)
        return -1;
    if (spec->cwd != NULL && spec->cwd[0] != '\0' && spec->cwd[0] != '/')
        return wq_fail(err, WQ_EPROTO, "working directory '%.64s' is not absolute", spec->cwd);
    total += spec->cwd ? strlen(spec->cwd) : 0;
    if (spec->script.len > WIRE_MAX_SCRIPT)
        return wq_fail(err, WQ_ELIMIT, "the batch script has %zu bytes, more than %u",
                       spec->script.len, WIRE_MAX_SCRIPT);
    total += spec->script.len;
    if (total > WIRE_MAX_SPEC_BYTES)
        return wq_fail(err, WQ_ELIMIT,
                       "command, environment, directory and script total %zu bytes, "
                       "more than %u",
                       total, WIRE_MAX_SPEC_BYTES);
    if (check_name(spec->name, 0, "job name", err) < 0 ||
        check_name(spec->user, 0, "user name", err) < 0)
        return -1;
    if (spec->tf && spec->per_node)
        return wq_fail(err, WQ_EINVAL,
                       "--tf starts one TensorFlow worker per rank and cannot be used with "
                       "--per-node; use --ranks-per-node 1 for one worker per node");
    if (wire_check_container(spec->container, err) < 0 || wire_check_snap_spec(spec, err) < 0)
        return -1;
    if (spec->nodes < 1 || spec->nodes > WIRE_MAX_NODES)
        return wq_fail(err, WQ_EPROTO, "node count %u is out of range (1..%d)", spec->nodes,
                       WIRE_MAX_NODES);
    if (spec->gpus_per_node > WIRE_MAX_GPUS)
        return wq_fail(err, WQ_ELIMIT, "%u GPUs per node is more than %d", spec->gpus_per_node,
                       WIRE_MAX_GPUS);
    if (spec->ranks_per_node > WIRE_MAX_RANKS)
        return wq_fail(err, WQ_ELIMIT, "%u ranks per node is more than %d", spec->ranks_per_node,
                       WIRE_MAX_RANKS);
    if (spec->cpus_per_node > WIRE_MAX_CPUS)
        return wq_fail(err, WQ_ELIMIT, "%u CPUs per node is out of range", spec->cpus_per_node);
    if (spec->mem_mb_per_node > (1ULL << 30))
        return wq_fail(err, WQ_ELIMIT, "memory request is out of range");
    if (spec->gpu_mem_mb > (1ULL << 30) || spec->gpu_mem_min_mb > (1ULL << 30))
        return wq_fail(err, WQ_ELIMIT, "GPU memory request is out of range");
    if (check_str(spec->gpu_type, WIRE_MAX_GPU_TYPE, 0, "GPU type", err) < 0)
        return -1;
    for (const char *p = spec->gpu_type; p != NULL && *p; p++)
        if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
            return wq_fail(err, WQ_EINVAL, "--gpu-type: only printable ASCII (a model name)");
    if ((spec->gpu_mem_mb > 0 || spec->gpu_mem_min_mb > 0 ||
         (spec->gpu_type != NULL && spec->gpu_type[0] != '\0')) &&
        spec->gpus_per_node == 0)
        return wq_fail(err, WQ_EINVAL, "--gpu-type, --gpu-mem and --gpu-mem-min need GPUs");
    if (spec->time_limit_s > (uint64_t) WIRE_MAX_TIME_LIMIT_S)
        return wq_fail(err, WQ_ELIMIT, "time limit is longer than a year");
    if (spec->retries > WIRE_MAX_RETRIES)
        return wq_fail(err, WQ_ELIMIT, "%u retries is more than 100", spec->retries);
    for (size_t i = 0; i < spec->n_depends_on; i++)
        if (spec->depends_on[i] == 0)
            return wq_fail(err, WQ_EPROTO, "dependency on job 0");
    for (size_t i = 0; i < spec->n_after_any; i++)
        if (spec->after_any[i] == 0)
            return wq_fail(err, WQ_EPROTO, "dependency on job 0");
    for (size_t i = 0; i < spec->n_after_notok; i++)
        if (spec->after_notok[i] == 0)
            return wq_fail(err, WQ_EPROTO, "dependency on job 0");
    return 0;
}

static int
check_gpus(size_t n, Wslq__GpuInfo **gpus, wq_error_t *err)
{
    if (check_count(n, WIRE_MAX_GPUS, "GPU list", err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (gpus[i]->index >= WIRE_MAX_GPUS)
            return wq_fail(err, WQ_EPROTO, "GPU index %u is out of range", gpus[i]->index);
        if (check_str(gpus[i]->uuid, WIRE_MAX_GPU_TEXT, 0, "GPU UUID", err) < 0 ||
            check_str(gpus[i]->name, WIRE_MAX_GPU_TEXT, 0, "GPU name", err) < 0)
            return -1;
    }
    return 0;
}

/* A CPU list as the worker reports it ("0-3,8"): digits, '-' and ',' only, bounded. */
static int
check_cpus(const char *s, wq_error_t *err)
{
    if (check_str(s, WIRE_MAX_CPULIST, 0, "CPU list", err) < 0)
        return -1;
    for (const char *p = s; p != NULL && *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '-' || *p == ','))
            return wq_fail(err, WQ_EPROTO, "CPU list '%.40s' is not like 0-3,8", s);
    return 0;
}

static int
check_alloc(const Wslq__Alloc *a, wq_error_t *err)
{
    if (a == NULL)
        return wq_fail(err, WQ_EPROTO, "allocation is missing");
    if (check_name(a->node, 1, "node name", err) < 0 ||
        check_count(a->n_gpus, WIRE_MAX_GPUS, "allocated GPUs", err) < 0 ||
        check_count(a->n_gpu_uuids, WIRE_MAX_GPUS, "allocated GPU UUIDs", err) < 0 ||
        check_ip(a->ip, 0, "node IP", err) < 0 || check_cpus(a->cpus, err) < 0)
        return -1;
    if (a->nranks < 1 || a->nranks > WIRE_MAX_RANKS)
        return wq_fail(err, WQ_EPROTO, "rank count %u is out of range", a->nranks);
    for (size_t i = 0; i < a->n_gpus; i++)
        if (a->gpus[i] >= WIRE_MAX_GPUS)
            return wq_fail(err, WQ_EPROTO, "GPU index %u is out of range", a->gpus[i]);
    return 0;
}

static int
check_attrs(size_t n, Wslq__NodeAttr **attrs, wq_error_t *err)
{
    if (check_count(n, WIRE_MAX_ATTRS, "node attributes", err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (check_line(attrs[i]->key, WIRE_MAX_ATTR_KEY, 1, "attribute key", err) < 0 ||
            check_line(attrs[i]->value, WIRE_MAX_ATTR_VALUE, 0, "attribute value", err) < 0)
            return -1;
    return 0;
}

/* The PC owner's state and policy (worker/owner.h): 0..3 and 0..3, one line of why; the
 * owner's user name ("" none). */
static int
check_owner(uint32_t state, uint32_t policy, const char *why, const char *user, wq_error_t *err)
{
    if (state > 3)
        return wq_fail(err, WQ_EPROTO, "owner state %u is out of range", state);
    if (policy > 3)
        return wq_fail(err, WQ_EPROTO, "owner policy %u is out of range", policy);
    if (check_name(user, 0, "owner user", err) < 0)
        return -1;
    return check_line(why, WIRE_MAX_CHECK_TEXT, 0, "owner reason", err);
}

static int
check_checks(size_t n, Wslq__NodeCheck **checks, wq_error_t *err)
{
    if (check_count(n, WIRE_MAX_CHECKS, "node checks", err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const Wslq__NodeCheck *c = checks[i];
        if (check_line(c->id, WIRE_MAX_CHECK_ID, 1, "check id", err) < 0 ||
            check_line(c->summary, WIRE_MAX_CHECK_TEXT, 0, "check summary", err) < 0 ||
            check_line(c->fix, WIRE_MAX_CHECK_TEXT, 0, "check fix", err) < 0)
            return -1;
        if (c->verdict < WSLQ__CHECK_VERDICT__CHECK_PASS ||
            c->verdict > WSLQ__CHECK_VERDICT__CHECK_FAIL)
            return wq_fail(err, WQ_EPROTO, "check %.48s: verdict %d is out of range", c->id,
                           (int) c->verdict);
    }
    return 0;
}

static int
check_job_info(const Wslq__JobInfo *j, wq_error_t *err)
{
    if (j == NULL)
        return wq_fail(err, WQ_EPROTO, "job is missing");
    if (wire_validate_spec(j->spec, err) < 0 || check_state(j->state, 0, err) < 0 ||
        check_count(j->n_allocs, WIRE_MAX_NODES, "allocations", err) < 0 ||
        check_line(j->array_tasks, WIRE_MAX_SELECTOR, 0, "array task list", err) < 0 ||
        check_count(j->n_tf_ports, (size_t) WIRE_MAX_NODES * WIRE_MAX_RANKS, "TF ports", err) < 0)
        return -1;
    for (size_t i = 0; i < j->n_allocs; i++)
        if (check_alloc(j->allocs[i], err) < 0)
            return -1;
    return 0;
}

static int
check_selectors(size_t n, char **sel, wq_error_t *err)
{
    if (check_count(n, WIRE_MAX_SELECTORS, "job selector list", err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (check_line(sel[i], WIRE_MAX_SELECTOR, 1, "job selector", err) < 0)
            return -1;
    return 0;
}

/* wslq history, usage and update (accounting): every string a name or a line, every list
 * bounded, every state an ended one. */
static int
wire_validate_acct(const Wslq__Envelope *env, wq_error_t *err)
{
    switch (env->body_case) {
    case WSLQ__ENVELOPE__BODY_HISTORY: {
        const Wslq__HistoryRequest *h = env->history;
        if (check_name(h->user, 0, "user filter", err) < 0 ||
            check_name(h->node, 0, "node filter", err) < 0 ||
            check_name(h->name, 0, "name filter", err) < 0 ||
            check_count(h->n_states, WIRE_MAX_STATE_FILTER, "state filter", err) < 0)
            return -1;
        for (size_t i = 0; i < h->n_states; i++)
            if (check_state(h->states[i], 0, err) < 0)
                return -1;
        if (h->since_ms < 0 || h->until_ms < 0)
            return wq_fail(err, WQ_EPROTO, "a negative time bound");
        return 0;
    }
    case WSLQ__ENVELOPE__BODY_HISTORY_REPLY: {
        const Wslq__HistoryReply *r = env->history_reply;
        if (check_count(r->n_jobs, WIRE_MAX_LIST, "job list", err) < 0)
            return -1;
        for (size_t i = 0; i < r->n_jobs; i++) {
            const Wslq__AcctJob *j = r->jobs[i];
            if (check_name(j->name, 0, "job name", err) < 0 ||
                check_name(j->user, 0, "user", err) < 0 ||
                check_line(j->end_cause, WIRE_MAX_ERROR_TEXT, 0, "end cause", err) < 0 ||
                check_state(j->state, 0, err) < 0 ||
                check_count(j->n_nodes, WIRE_MAX_NODES, "node list", err) < 0)
                return -1;
            for (size_t k = 0; k < j->n_nodes; k++)
                if (check_name(j->nodes[k], 1, "node name", err) < 0)
                    return -1;
        }
        return 0;
    }
    case WSLQ__ENVELOPE__BODY_USAGE:
        return env->usage->since_ms < 0 || env->usage->until_ms < 0
                   ? wq_fail(err, WQ_EPROTO, "a negative time bound")
                   : 0;
    case WSLQ__ENVELOPE__BODY_USAGE_REPLY: {
        const Wslq__UsageReply *r = env->usage_reply;
        if (check_count(r->n_users, WIRE_MAX_LIST, "user list", err) < 0 ||
            check_count(r->n_nodes, WIRE_MAX_LIST, "node list", err) < 0)
            return -1;
        for (size_t i = 0; i < r->n_users + r->n_nodes; i++) {
            const Wslq__UsageRow *u = i < r->n_users ? r->users[i] : r->nodes[i - r->n_users];
            if (check_name(u->key, 0, "usage key", err) < 0)
                return -1;
        }
        return 0;
    }
    case WSLQ__ENVELOPE__BODY_UPDATE: {
        const Wslq__UpdateRequest *u = env->update;
        if (u->n_selectors == 0)
            return wq_fail(err, WQ_EPROTO, "update names no job");
        if (!u->set_time && !u->set_priority && !u->set_gpus && !u->set_name)
            return wq_fail(err, WQ_EPROTO, "update changes nothing");
        if (check_selectors(u->n_selectors, u->selectors, err) < 0 ||
            check_name(u->name, u->set_name, "job name", err) < 0)
            return -1;
        return 0;
    }
    case WSLQ__ENVELOPE__BODY_UPDATE_REPLY:
        return check_count(env->update_reply->n_job_ids, WIRE_MAX_ARRAY_TASKS * 10ULL, "job list",
                           err);
    default:
        return wq_fail(err, WQ_EPROTO, "not an accounting message");
    }
}

static int
validate_body(const Wslq__Envelope *env, wq_error_t *err)
{
    if (wire_is_snap(env))
        return wire_validate_snap(env, err);
    switch (env->body_case) {
    case WSLQ__ENVELOPE__BODY_SUBMIT:
        if (check_line(env->submit->array, WIRE_MAX_SELECTOR, 0, "array index list", err) < 0)
            return -1;
        return wire_validate_spec(env->submit->spec, err);
    case WSLQ__ENVELOPE__BODY_CONTROL:
        if (env->control->op <= WSLQ__JOB_CONTROL_REQUEST__OP__OP_UNSPECIFIED ||
            env->control->op > WSLQ__JOB_CONTROL_REQUEST__OP__REQUEUE)
            return wq_fail(err, WQ_EPROTO, "job control operation %d is out of range",
                           (int) env->control->op);
        if (env->control->n_selectors == 0)
            return wq_fail(err, WQ_EPROTO, "job control names no job");
        return check_selectors(env->control->n_selectors, env->control->selectors, err);
    case WSLQ__ENVELOPE__BODY_WHY:
        return check_line(env->why->selector, WIRE_MAX_SELECTOR, 1, "job selector", err);
    case WSLQ__ENVELOPE__BODY_WHY_REPLY:
        if (check_job_info(env->why_reply->job, err) < 0 ||
            check_count(env->why_reply->n_lines, WIRE_MAX_LIST, "lines", err) < 0)
            return -1;
        for (size_t i = 0; i < env->why_reply->n_lines; i++)
            if (check_line(env->why_reply->lines[i], WIRE_MAX_ERROR_TEXT, 0, "line", err) < 0)
                return -1;
        return 0;
    case WSLQ__ENVELOPE__BODY_SHARE:
        return check_name(env->share->user, 0, "user", err);
    case WSLQ__ENVELOPE__BODY_SHARE_REPLY:
        if (check_count(env->share_reply->n_users, WIRE_MAX_LIST, "user list", err) < 0)
            return -1;
        for (size_t i = 0; i < env->share_reply->n_users; i++)
            if (check_name(env->share_reply->users[i]->user, 1, "user", err) < 0)
                return -1;
        return 0;
    case WSLQ__ENVELOPE__BODY_CONTROL_REPLY:
        return check_count(env->control_reply->n_job_ids, WIRE_MAX_ARRAY_TASKS * 10ULL, "job list",
                           err);
    case WSLQ__ENVELOPE__BODY_HISTORY:
    case WSLQ__ENVELOPE__BODY_HISTORY_REPLY:
    case WSLQ__ENVELOPE__BODY_USAGE:
    case WSLQ__ENVELOPE__BODY_USAGE_REPLY:
    case WSLQ__ENVELOPE__BODY_UPDATE:
    case WSLQ__ENVELOPE__BODY_UPDATE_REPLY:
        return wire_validate_acct(env, err);
    case WSLQ__ENVELOPE__BODY_SUBMIT_REPLY:
    case WSLQ__ENVELOPE__BODY_REREGISTER:
    case WSLQ__ENVELOPE__BODY_STARTED:
    case WSLQ__ENVELOPE__BODY_ENDED_ACK:
    case WSLQ__ENVELOPE__BODY_CANCEL_REPLY:
    case WSLQ__ENVELOPE__BODY_WATCH_REPLY:
    case WSLQ__ENVELOPE__BODY_RANK_FAILED:
        return 0;
    case WSLQ__ENVELOPE__BODY_WATCH:
        return env->watch->wait_ms > WIRE_MAX_PARK_MS
                   ? wq_fail(err, WQ_ELIMIT, "watch wait over 60 s")
                   : 0;
    case WSLQ__ENVELOPE__BODY_QUEUE: {
        const Wslq__QueueRequest *q = env->queue;
        if (check_count(q->n_states, WIRE_MAX_STATE_FILTER, "state filter", err) < 0 ||
            check_name(q->user, 0, "user filter", err) < 0 ||
            check_name(q->name, 0, "name filter", err) < 0)
            return -1;
        for (size_t i = 0; i < q->n_states; i++)
            if (check_state(q->states[i], 0, err) < 0)
                return -1;
        return 0;
    }
    case WSLQ__ENVELOPE__BODY_QUEUE_REPLY:
        if (check_count(env->queue_reply->n_jobs, WIRE_MAX_LIST, "job list", err) < 0)
            return -1;
        for (size_t i = 0; i < env->queue_reply->n_jobs; i++)
            if (check_job_info(env->queue_reply->jobs[i], err) < 0)
                return -1;
        return 0;
    case WSLQ__ENVELOPE__BODY_SHOW:
        if (env->show->selector != NULL && env->show->selector[0] != '\0')
            return check_line(env->show->selector, WIRE_MAX_SELECTOR, 1, "job selector", err);
        return env->show->job_id == 0 ? wq_fail(err, WQ_EPROTO, "job id 0") : 0;
    case WSLQ__ENVELOPE__BODY_SHOW_REPLY:
        if (check_job_info(env->show_reply->job, err) < 0 ||
            check_count(env->show_reply->n_events, WIRE_MAX_LIST, "event list", err) < 0)
            return -1;
        for (size_t i = 0; i < env->show_reply->n_events; i++)
            if (check_state(env->show_reply->events[i]->state, 0, err) < 0)
                return -1;
        return 0;
    case WSLQ__ENVELOPE__BODY_LOGS:
        if (env->logs->selector != NULL && env->logs->selector[0] != '\0') {
            if (check_line(env->logs->selector, WIRE_MAX_SELECTOR, 1, "job selector", err) < 0)
                return -1;
        } else if (env->logs->job_id == 0) {
            return wq_fail(err, WQ_EPROTO, "job id 0");
        }
        return env->logs->wait_ms > WIRE_MAX_PARK_MS ? wq_fail(err, WQ_ELIMIT, "log wait over 60 s")
                                                     : 0;
    case WSLQ__ENVELOPE__BODY_LOGS_REPLY:
        if (env->logs_reply->data.len > WIRE_MAX_LOG_CHUNK)
            return wq_fail(err, WQ_ELIMIT, "log reply of %zu bytes is too large",
                           env->logs_reply->data.len);
        return check_state(env->logs_reply->state, 1, err);
    case WSLQ__ENVELOPE__BODY_CANCEL:
        if (env->cancel->n_job_ids == 0 && env->cancel->n_selectors == 0)
            return wq_fail(err, WQ_EPROTO, "cancel names no job");
        if (check_count(env->cancel->n_job_ids, WIRE_MAX_CANCEL, "cancel list", err) < 0 ||
            check_selectors(env->cancel->n_selectors, env->cancel->selectors, err) < 0)
            return -1;
        for (size_t i = 0; i < env->cancel->n_job_ids; i++)
            if (env->cancel->job_ids[i] == 0)
                return wq_fail(err, WQ_EPROTO, "job id 0");
        return 0;
    case WSLQ__ENVELOPE__BODY_NODES:
        return check_name(env->nodes->name, 0, "node name", err);
    case WSLQ__ENVELOPE__BODY_NODES_REPLY:
        if (check_count(env->nodes_reply->n_nodes, WIRE_MAX_LIST, "node list", err) < 0)
            return -1;
        for (size_t i = 0; i < env->nodes_reply->n_nodes; i++) {
            const Wslq__NodeInfo *n = env->nodes_reply->nodes[i];
            if (check_name(n->name, 1, "node name", err) < 0 ||
                check_gpus(n->n_gpus, n->gpus, err) < 0 ||
                check_attrs(n->n_attrs, n->attrs, err) < 0 ||
                check_checks(n->n_checks, n->checks, err) < 0 ||
                check_line(n->drain_reason, WIRE_MAX_DRAIN_REASON, 0, "drain reason", err) < 0 ||
                check_name(n->drain_by, 0, "drained by", err) < 0 ||
                check_count(n->n_tags, WIRE_MAX_TAGS, "node tags", err) < 0)
                return -1;
            for (size_t k = 0; k < n->n_tags; k++)
                if (wire_check_tag(n->tags[k], "node tag", err) < 0)
                    return -1;
        }
        return 0;
    case WSLQ__ENVELOPE__BODY_KV: {
        const Wslq__KvRequest *kv = env->kv;
        if (kv->op < WSLQ__KV_REQUEST__OP__PUT || kv->op > WSLQ__KV_REQUEST__OP__WAIT)
            return wq_fail(err, WQ_EPROTO, "key/value operation %d is out of range", (int) kv->op);
        if (kv->job_id == 0)
            return wq_fail(err, WQ_EPROTO, "job id 0");
        if (check_str(kv->key, WIRE_MAX_KV_KEY, 1, "key", err) < 0)
            return -1;
        if (kv->value.len > WIRE_MAX_KV_VALUE)
            return wq_fail(err, WQ_ELIMIT, "value of %zu bytes is larger than %u", kv->value.len,
                           WIRE_MAX_KV_VALUE);
        return kv->timeout_ms > WIRE_MAX_KV_WAIT_MS ? wq_fail(err, WQ_ELIMIT, "wait over an hour")
                                                    : 0;
    }
    case WSLQ__ENVELOPE__BODY_KV_REPLY:
        return env->kv_reply->value.len > WIRE_MAX_KV_VALUE
                   ? wq_fail(err, WQ_ELIMIT, "value too large")
                   : 0;
    case WSLQ__ENVELOPE__BODY_ERROR:
        return check_line(env->error->text, WIRE_MAX_ERROR_TEXT, 0, "error text", err);
    case WSLQ__ENVELOPE__BODY_REG: {
        const Wslq__Register *r = env->reg;
        if (check_node_name(r->name, 1, err) < 0)
            return -1;
        if (check_name(r->hostname, 0, "hostname", err) < 0 ||
            check_ip(r->ip, 0, "node IP", err) < 0 ||
            check_line(r->version, WIRE_MAX_VERSION, 0, "version", err) < 0 ||
            check_gpus(r->n_gpus, r->gpus, err) < 0 ||
            check_count(r->n_running, WIRE_MAX_RUNNING, "running job list", err) < 0 ||
            check_attrs(r->n_attrs, r->attrs, err) < 0 ||
            check_checks(r->n_checks, r->checks, err) < 0)
            return -1;
        if (r->probe_port > 65535)
            return wq_fail(err, WQ_EPROTO, "probe port %u is out of range", r->probe_port);
        return check_owner(r->owner_state, r->owner_policy, r->owner_why, r->owner_user, err);
    }
    case WSLQ__ENVELOPE__BODY_PROBE: {
        const Wslq__ProbeRequest *p = env->probe;
        if (check_name(p->target_node, 1, "probe target", err) < 0 ||
            check_ip(p->ip, 1, "probe address", err) < 0 ||
            check_name(p->token, 1, "probe token", err) < 0)
            return -1;
        if (strlen(p->token) > WIRE_MAX_PROBE_TOKEN)
            return wq_fail(err, WQ_ELIMIT, "probe token is longer than %d bytes",
                           WIRE_MAX_PROBE_TOKEN);
        if (p->port < 1 || p->port > 65535)
            return wq_fail(err, WQ_EPROTO, "probe port %u is out of range", p->port);
        if (p->timeout_ms > WIRE_MAX_SELFTEST_MS)
            return wq_fail(err, WQ_ELIMIT, "probe timeout over 60 s");
        return 0;
    }
    case WSLQ__ENVELOPE__BODY_PROBE_RESULT: {
        const Wslq__ProbeResult *p = env->probe_result;
        if (check_name(p->target_node, 1, "probe target", err) < 0 ||
            check_name(p->token, 1, "probe token", err) < 0 ||
            check_name(p->error, 0, "probe error", err) < 0)
            return -1;
        return 0;
    }
    case WSLQ__ENVELOPE__BODY_REG_REPLY:
        return check_count(env->reg_reply->n_kill_jobs, WIRE_MAX_RUNNING, "kill list", err);
    case WSLQ__ENVELOPE__BODY_HEARTBEAT:
        if (check_checks(env->heartbeat->n_checks, env->heartbeat->checks, err) < 0)
            return -1;
        if (env->heartbeat->clock_rtt_ms > WIRE_MAX_RTT_MS)
            return wq_fail(err, WQ_EPROTO, "clock round trip is out of range");
        if (check_owner(env->heartbeat->owner_state, env->heartbeat->owner_policy,
                        env->heartbeat->owner_why, env->heartbeat->owner_user, err) < 0)
            return -1;
        if (check_count(env->heartbeat->n_job_cpus, WIRE_MAX_RUNNING, "job CPU lists", err) < 0)
            return -1;
        for (size_t i = 0; i < env->heartbeat->n_job_cpus; i++)
            if (check_cpus(env->heartbeat->job_cpus[i]->cpus, err) < 0)
                return -1;
        return check_gpus(env->heartbeat->n_gpus, env->heartbeat->gpus, err);
    case WSLQ__ENVELOPE__BODY_LAUNCH: {
        const Wslq__JobLaunch *l = env->launch;
        if (l->job_id == 0)
            return wq_fail(err, WQ_EPROTO, "job id 0");
        if (wire_validate_spec(l->spec, err) < 0 || check_alloc(l->alloc, err) < 0 ||
            check_ip(l->master_addr, 0, "master address", err) < 0)
            return -1;
        if (l->world_size < 1 || l->master_port > 65535)
            return wq_fail(err, WQ_EPROTO, "world size or master port out of range");
        if (check_count(l->n_tf_workers, (size_t) WIRE_MAX_NODES * WIRE_MAX_RANKS, "TF workers",
                        err) < 0)
            return -1;
        for (size_t i = 0; i < l->n_tf_workers; i++)
            if (check_name(l->tf_workers[i], 1, "TF worker address", err) < 0 ||
                strpbrk(l->tf_workers[i], "\"\\ ") != NULL)
                return wq_fail(err, WQ_EPROTO, "TF worker address '%.40s' is not host:port",
                               l->tf_workers[i]);
        return 0;
    }
    case WSLQ__ENVELOPE__BODY_ENDED:
        if (check_cpus(env->ended->cpus, err) < 0)
            return -1;
        return check_line(env->ended->reason, WIRE_MAX_REASON, 0, "end reason", err);
    case WSLQ__ENVELOPE__BODY_KILL:
        return check_line(env->kill->reason, WIRE_MAX_REASON, 0, "kill reason", err);
    case WSLQ__ENVELOPE__BODY_SUSPEND:
        return check_line(env->suspend->reason, WIRE_MAX_REASON, 0, "suspend reason", err);
    case WSLQ__ENVELOPE__BODY_LOG:
        if (env->log->data.len > WIRE_MAX_LOG_CHUNK)
            return wq_fail(err, WQ_ELIMIT, "log chunk of %zu bytes is larger than %u",
                           env->log->data.len, WIRE_MAX_LOG_CHUNK);
        return 0;
    case WSLQ__ENVELOPE__BODY_METRICS:
        if (check_count(env->metrics->n_lines, WIRE_MAX_METRIC_LINES, "metric lines", err) < 0)
            return -1;
        for (size_t i = 0; i < env->metrics->n_lines; i++)
            if (check_str(env->metrics->lines[i], WIRE_MAX_METRIC_LINE, 1, "metric line", err) < 0)
                return -1;
        return 0;
    case WSLQ__ENVELOPE__BODY_ENROL:
        return check_hex(env->enrol->secret, WIRE_MAX_SECRET_HEX, 1, "enrolment code", err) < 0 ||
                       check_node_name(env->enrol->node_name, 0, err) < 0
                   ? -1
                   : 0;
    case WSLQ__ENVELOPE__BODY_ENROL_REPLY:
        return check_name(env->enrol_reply->kind, 1, "principal kind", err) < 0 ||
                       check_name(env->enrol_reply->name, 1, "principal name", err) < 0
                   ? -1
                   : 0;
    case WSLQ__ENVELOPE__BODY_ADMIN: {
        const Wslq__AdminRequest *a = env->admin;
        if (a->op <= WSLQ__ADMIN_REQUEST__OP__OP_UNSPECIFIED ||
            a->op > WSLQ__ADMIN_REQUEST__OP__NODE_TAG)
            return wq_fail(err, WQ_EPROTO, "admin operation %d is out of range", (int) a->op);
        if (a->valid_s > WIRE_CODE_VALID_MAX_S)
            return wq_fail(err, WQ_EINVAL, "a code may work for 30 days at most");
        if (check_line(a->reason, WIRE_MAX_DRAIN_REASON, 0, "drain reason", err) < 0 ||
            check_count(a->n_tags, WIRE_MAX_TAGS, "tag list", err) < 0)
            return -1;
        for (size_t i = 0; i < a->n_tags; i++)
            if (wire_check_tag(a->tags[i], "tag", err) < 0)
                return -1;
        return check_name(a->name, 0, "name", err);
    }
    case WSLQ__ENVELOPE__BODY_ADMIN_REPLY: {
        const Wslq__AdminReply *a = env->admin_reply;
        if (check_line(a->code, WIRE_MAX_PATH, 0, "code", err) < 0 ||
            check_count(a->n_principals, WIRE_MAX_LIST, "principal list", err) < 0)
            return -1;
        for (size_t i = 0; i < a->n_principals; i++)
            if (check_name(a->principals[i]->kind, 1, "principal kind", err) < 0 ||
                check_name(a->principals[i]->name, 0, "principal name", err) < 0 ||
                check_line(a->principals[i]->key, WIRE_MAX_KEY_TEXT, 0, "key", err) < 0)
                return -1;
        return 0;
    }
    case WSLQ__ENVELOPE__BODY_TOKEN:
        return 0;
    case WSLQ__ENVELOPE__BODY_TOKEN_REPLY:
        return check_line(env->token_reply->token, WIRE_MAX_KEY_TEXT, 1, "token", err);
    case WSLQ__ENVELOPE__BODY__NOT_SET:
    default:
        break;
    }
    return wq_fail(err, WQ_EPROTO, "message has no body (or one this version does not know)");
}

int
wire_validate(const Wslq__Envelope *env, wq_error_t *err)
{
    if (env->proto_version < WIRE_PROTO_MIN || env->proto_version > WIRE_PROTO_CUR)
        return wq_fail(err, WQ_EPROTO, "unsupported protocol version %u (this build speaks %d..%d)",
                       env->proto_version, WIRE_PROTO_MIN, WIRE_PROTO_CUR);
    return validate_body(env, err);
}

/* 1 if no message in m's tree keeps an unknown field numbered 0 or past 2^29 - 1. protobuf-c
 * reads such a tag from an over-long varint, keeps it, and packs it into bytes it then refuses:
 * a spec carrying one would be stored and break every reply and launch that repeats it. */
static int
unknown_fields_ok(const ProtobufCMessage *m)
{
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0 || m->unknown_fields[i].tag > 536870911u)
            return 0;
    const char *base = (const char *) m;
    for (unsigned i = 0; i < m->descriptor->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &m->descriptor->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *) (base + f->quantifier_offset);
            ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *) (base + f->offset);
            for (size_t k = 0; k < n; k++)
                if (!unknown_fields_ok(v[k]))
                    return 0;
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *) (base + f->quantifier_offset) != f->id)
            continue; /* another member of the oneof holds the union */
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *) (base + f->offset);
        if (sub != NULL && !unknown_fields_ok(sub))
            return 0;
    }
    return 1;
}

Wslq__Envelope *
wire_decode(const void *data, size_t len, wq_error_t *err)
{
    if (len > WIRE_MAX_FRAME) {
        wq_fail(err, WQ_ELIMIT, "frame of %zu bytes exceeds the limit of %u", len, WIRE_MAX_FRAME);
        return NULL;
    }
    if (len == 0) {
        wq_fail(err, WQ_EPROTO, "empty frame");
        return NULL;
    }
    Wslq__Envelope *env = wslq__envelope__unpack(NULL, len, data);
    if (env == NULL) {
        wq_fail(err, WQ_EPROTO, "malformed message (%zu bytes)", len);
        return NULL;
    }
    if (!unknown_fields_ok(&env->base)) {
        wq_fail(err, WQ_EPROTO, "malformed message (a field numbered 0 or out of range)");
        wire_free(&env);
        return NULL;
    }
    if (wire_validate(env, err) < 0) {
        wire_free(&env);
        return NULL;
    }
    return env;
}

void
wire_free(Wslq__Envelope **env_p)
{
    if (env_p == NULL || *env_p == NULL)
        return;
    wslq__envelope__free_unpacked(*env_p, NULL);
    *env_p = NULL;
}

uint8_t *
wire_encode(Wslq__Envelope *env, size_t *len)
{
    env->proto_version = WIRE_PROTO_CUR;
    size_t n = wslq__envelope__get_packed_size(env);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL)
        abort();
    *len = wslq__envelope__pack(env, buf);
    return buf;
}

static void
free_buf(void *data, void *hint)
{
    (void) hint;
    free(data);
}

int
wire_send(void *sock,
          const void *identity,
          size_t identity_len,
          Wslq__Envelope *env,
          int flags,
          wq_error_t *err)
{
    size_t len;
    uint8_t *buf = wire_encode(env, &len);
    if (identity != NULL && zmq_send(sock, identity, identity_len, ZMQ_SNDMORE | flags) < 0) {
        free(buf);
        return wq_fail_errno(err, "send failed");
    }
    zmq_msg_t msg;
    zmq_msg_init_data(&msg, buf, len, free_buf, NULL);
    if (zmq_msg_send(&msg, sock, flags) < 0) {
        zmq_msg_close(&msg);
        return wq_fail_errno(err, "send failed");
    }
    return 0;
}

static void
drain(void *sock)
{
    int more = 1;
    size_t sz = sizeof more;
    while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) == 0 && more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        zmq_msg_recv(&m, sock, 0);
        zmq_msg_close(&m);
    }
}

Wslq__Envelope *
wire_recv(void *sock, void *identity, size_t *identity_len, int flags, wq_error_t *err)
{
    return wire_recv_user(sock, identity, identity_len, NULL, 0, flags, err);
}

Wslq__Envelope *
wire_recv_user(void *sock,
               void *identity,
               size_t *identity_len,
               char *user_id,
               size_t user_id_size,
               int flags,
               wq_error_t *err)
{
    if (user_id != NULL && user_id_size > 0)
        user_id[0] = '\0';
    if (identity != NULL) {
        int n = zmq_recv(sock, identity, 256, flags);
        if (n < 0) {
            if (errno == EAGAIN)
                wq_fail(err, WQ_EBUSY, "no message");
            else
                wq_fail_errno(err, "receive failed");
            return NULL;
        }
        *identity_len = n > 256 ? 256 : (size_t) n;
        int more = 0;
        size_t sz = sizeof more;
        zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz);
        if (!more) {
            wq_fail(err, WQ_EPROTO, "message has no body frame");
            return NULL;
        }
        flags = 0; /* the rest of a multipart message is already here */
    }
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, sock, flags) < 0) {
        if (errno == EAGAIN)
            wq_fail(err, WQ_EBUSY, "no message");
        else
            wq_fail_errno(err, "receive failed");
        zmq_msg_close(&msg);
        return NULL;
    }
    int more = 0;
    size_t sz = sizeof more;
    zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz);
    if (more) {
        drain(sock);
        zmq_msg_close(&msg);
        wq_fail(err, WQ_EPROTO, "message has more than one body frame");
        return NULL;
    }
    if (user_id != NULL && user_id_size > 0) {
        /* set by the ZAP handler for the connection; absent without a security mechanism */
        const char *uid = zmq_msg_gets(&msg, "User-Id");
        if (uid != NULL)
            snprintf(user_id, user_id_size, "%s", uid);
    }
    Wslq__Envelope *env = wire_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), err);
    zmq_msg_close(&msg);
    return env;
}

int
wire_send_error(
    void *sock, const void *identity, size_t identity_len, uint64_t request_id, const wq_error_t *e)
{
    Wslq__ErrorReply er = WSLQ__ERROR_REPLY__INIT;
    er.code = (uint32_t) e->code;
    er.text = (char *) e->text;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = request_id;
    env.body_case = WSLQ__ENVELOPE__BODY_ERROR;
    env.error = &er;
    return wire_send(sock, identity, identity_len, &env, ZMQ_DONTWAIT, NULL);
}

static const char *const state_names[WIRE_JOB_STATES] = {
    "UNKNOWN",   "PENDING",
    "STARTING",  "RUNNING",
    "COMPLETED", "FAILED",
    "CANCELLED", "TIMEOUT",
    "NODE_FAIL", [WSLQ__JOB_STATE__OUT_OF_MEMORY] = "OUT_OF_MEMORY"};

int
wire_state_known(int state)
{
    return state > 0 && state < WIRE_JOB_STATES && state_names[state] != NULL;
}

const char *
wire_state_name(Wslq__JobState state)
{
    if (!wire_state_known(state))
        return "UNKNOWN";
    return state_names[state];
}

Wslq__JobState
wire_state_parse(const char *name)
{
    static const struct {
        const char *abbr;
        Wslq__JobState st;
    } abbrs[] = {{"PD", WSLQ__JOB_STATE__PENDING},       {"ST", WSLQ__JOB_STATE__STARTING},
                 {"R", WSLQ__JOB_STATE__RUNNING},        {"CD", WSLQ__JOB_STATE__COMPLETED},
                 {"F", WSLQ__JOB_STATE__FAILED},         {"CA", WSLQ__JOB_STATE__CANCELLED},
                 {"TO", WSLQ__JOB_STATE__TIMEOUT},       {"NF", WSLQ__JOB_STATE__NODE_FAIL},
                 {"OOM", WSLQ__JOB_STATE__OUT_OF_MEMORY}};
    if (name == NULL)
        return WSLQ__JOB_STATE__JOB_STATE_UNSPECIFIED;
    for (int i = 1; i < WIRE_JOB_STATES; i++)
        if (wire_state_known(i) && strcasecmp(name, state_names[i]) == 0)
            return (Wslq__JobState) i;
    for (size_t i = 0; i < sizeof abbrs / sizeof abbrs[0]; i++)
        if (strcasecmp(name, abbrs[i].abbr) == 0)
            return abbrs[i].st;
    return WSLQ__JOB_STATE__JOB_STATE_UNSPECIFIED;
}

int
wire_state_is_final(Wslq__JobState state)
{
    return (state >= WSLQ__JOB_STATE__COMPLETED && state <= WSLQ__JOB_STATE__NODE_FAIL) ||
           state == WSLQ__JOB_STATE__OUT_OF_MEMORY;
}

void
wire_set_str(char **field, const char *v)
{
    if (v == NULL)
        v = "";
    if (*field != NULL && *field != protobuf_c_empty_string && strcmp(*field, v) == 0)
        return; /* the same: no free and copy (nodes_refresh sets many fields on every look) */
    if (*field != NULL && *field != protobuf_c_empty_string)
        free(*field);
    *field = wq_strdup(v);
}

/* ---------- the user socket's stream framing ---------- */

void
wire_stream_header(uint8_t hdr[WIRE_STREAM_HDR], size_t len)
{
    uint32_t be = htonl((uint32_t) len);
    memcpy(hdr, &be, sizeof be);
}

int
wire_stream_frame(const uint8_t *buf, size_t have, size_t *body_len, wq_error_t *err)
{
    if (have < WIRE_STREAM_HDR)
        return 0;
    uint32_t be;
    memcpy(&be, buf, sizeof be);
    uint32_t len = ntohl(be);
    if (len == 0 || len > WIRE_MAX_FRAME)
        return wq_fail(err, WQ_ELIMIT, "bad frame length %" PRIu32 " (1 to %u bytes)", len,
                       (unsigned) WIRE_MAX_FRAME);
    if (have - WIRE_STREAM_HDR < len)
        return 0;
    *body_len = len;
    return 1;
}
