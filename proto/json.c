/* Wire messages as JSON; see json.h. */
#include "proto/json.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "proto/jobspec.h"
#include "proto/nodecheck.h"

static void
add_str(cJSON *o, const char *key, const char *s)
{
    cJSON_AddStringToObject(o, key, s ? s : "");
}

static void
add_u64(cJSON *o, const char *key, uint64_t v)
{
    /* Exact up to 2^53: ids, offsets and sizes stay far below. */
    cJSON_AddNumberToObject(o, key, (double) v);
}

static void
add_time(cJSON *o, const char *ms_key, const char *time_key, int64_t ms)
{
    if (ms <= 0) {
        cJSON_AddNullToObject(o, ms_key);
        cJSON_AddNullToObject(o, time_key);
        return;
    }
    char buf[40];
    cJSON_AddNumberToObject(o, ms_key, (double) ms);
    cJSON_AddStringToObject(o, time_key, json_format_time(ms, buf, sizeof buf));
}

/* -1 (or the given "unset" value) becomes null. */
static void
add_opt_int(cJSON *o, const char *key, int64_t v, int64_t unset)
{
    if (v == unset)
        cJSON_AddNullToObject(o, key);
    else
        cJSON_AddNumberToObject(o, key, (double) v);
}

static cJSON *
str_array(char **items, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(items[i] ? items[i] : ""));
    return a;
}

const char *
json_format_time(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t) (ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(buf, len, "?");
        return buf;
    }
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", day, (int) (ms % 1000));
    return buf;
}

cJSON *
json_spec(const Wslq__JobSpec *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "argv", str_array(s->argv, s->n_argv));
    cJSON_AddBoolToObject(o, "wrap", s->wrap);
    add_str(o, "cwd", s->cwd);
    cJSON_AddItemToObject(o, "env", str_array(s->env, s->n_env));
    /* --secret-env: the names only, never a value */
    cJSON *sec = cJSON_AddArrayToObject(o, "secret_env");
    for (size_t i = 0; i < s->n_secret_env; i++) {
        const char *eq = strchr(s->secret_env[i], '=');
        size_t n = eq ? (size_t) (eq - s->secret_env[i]) : strlen(s->secret_env[i]);
        char name[WIRE_MAX_NAME + 1];
        snprintf(name, sizeof name, "%.*s", (int) (n < WIRE_MAX_NAME ? n : WIRE_MAX_NAME),
                 s->secret_env[i]);
        cJSON_AddItemToArray(sec, cJSON_CreateString(name));
    }
    add_u64(o, "script_bytes", s->script.len); /* a batch script: wslq show --script */
    add_str(o, "name", s->name);
    add_str(o, "user", s->user);
    add_u64(o, "uid", s->uid);
    add_u64(o, "nodes", s->nodes);
    add_u64(o, "gpus_per_node", s->gpus_per_node);
    add_u64(o, "gpus", (uint64_t) s->nodes * s->gpus_per_node);
    add_u64(o, "ranks_per_node", s->ranks_per_node);
    cJSON_AddBoolToObject(o, "per_node", s->per_node);
    add_u64(o, "cpus_per_node", s->cpus_per_node);
    add_u64(o, "mem_mb_per_node", s->mem_mb_per_node);
    add_opt_int(o, "time_limit_s", (int64_t) s->time_limit_s, 0);
    cJSON_AddNumberToObject(o, "priority", s->priority);
    add_u64(o, "retries", s->retries);
    cJSON_AddBoolToObject(o, "requeue_on_fail", s->requeue_on_fail);
    {
        char nb[64];
        cJSON_AddStringToObject(o, "notify", jobspec_format_notify(s->notify, nb, sizeof nb));
    }
    cJSON_AddBoolToObject(o, "preemptible", s->preemptible);
    cJSON_AddItemToObject(o, "nodelist", str_array(s->nodelist, s->n_nodelist));
    cJSON_AddItemToObject(o, "exclude", str_array(s->exclude, s->n_exclude));
    cJSON_AddItemToObject(o, "constraints", str_array(s->constraints, s->n_constraints));
    add_str(o, "gpu_type", s->gpu_type);
    add_u64(o, "gpu_mem_min_mb", s->gpu_mem_min_mb);
    add_u64(o, "gpu_mem_mb", s->gpu_mem_mb);
    cJSON *deps = cJSON_AddArrayToObject(o, "depends_on");
    for (size_t i = 0; i < s->n_depends_on; i++)
        cJSON_AddItemToArray(deps, cJSON_CreateNumber((double) s->depends_on[i]));
    if (s->n_after_any > 0) {
        cJSON *any = cJSON_AddArrayToObject(o, "after_any");
        for (size_t i = 0; i < s->n_after_any; i++)
            cJSON_AddItemToArray(any, cJSON_CreateNumber((double) s->after_any[i]));
    }
    if (s->n_after_notok > 0) {
        cJSON *notok = cJSON_AddArrayToObject(o, "after_notok");
        for (size_t i = 0; i < s->n_after_notok; i++)
            cJSON_AddItemToArray(notok, cJSON_CreateNumber((double) s->after_notok[i]));
    }
    if (s->singleton)
        cJSON_AddBoolToObject(o, "singleton", 1);
    if (s->tf)
        cJSON_AddBoolToObject(o, "tf", 1);
    if (s->container != NULL && s->container[0] != '\0')
        add_str(o, "container", s->container);
    if (s->workdir_hash != NULL && s->workdir_hash[0] != '\0')
        add_str(o, "workdir_hash", s->workdir_hash);
    if (s->output_dir != NULL && s->output_dir[0] != '\0')
        add_str(o, "output_dir", s->output_dir);
    return o;
}

cJSON *
json_alloc(const Wslq__Alloc *a)
{
    cJSON *o = cJSON_CreateObject();
    add_str(o, "node", a->node);
    add_u64(o, "node_rank", a->node_rank);
    add_str(o, "ip", a->ip);
    cJSON *g = cJSON_AddArrayToObject(o, "gpus");
    for (size_t i = 0; i < a->n_gpus; i++)
        cJSON_AddItemToArray(g, cJSON_CreateNumber(a->gpus[i]));
    cJSON_AddItemToObject(o, "gpu_uuids", str_array(a->gpu_uuids, a->n_gpu_uuids));
    add_u64(o, "first_rank", a->first_rank);
    add_u64(o, "nranks", a->nranks);
    add_u64(o, "gpu_mem_mb", a->gpu_mem_mb);
    add_str(o, "cpus", a->cpus);
    return o;
}

cJSON *
json_job(const Wslq__JobInfo *j)
{
    cJSON *o = cJSON_CreateObject();
    add_u64(o, "id", j->id);
    add_str(o, "state", wire_state_name(j->state));
    add_u64(o, "attempt", j->attempt);
    add_time(o, "submit_ms", "submit_time", j->submit_ms);
    add_time(o, "start_ms", "start_time", j->start_ms);
    add_time(o, "end_ms", "end_time", j->end_ms);
    add_opt_int(o, "exit_code", j->exit_code, -1);
    add_opt_int(o, "signal", j->signal, 0);
    add_str(o, "reason", j->reason);
    add_opt_int(o, "failed_rank", j->failed_rank, -1);
    add_str(o, "failed_node", j->failed_node);
    add_str(o, "master_addr", j->master_addr);
    add_opt_int(o, "master_port", j->master_port, 0);
    if (j->n_tf_ports > 0) {
        cJSON *tfp = cJSON_AddArrayToObject(o, "tf_ports");
        for (size_t i = 0; i < j->n_tf_ports; i++)
            cJSON_AddItemToArray(tfp, cJSON_CreateNumber(j->tf_ports[i]));
    }
    if (j->array_job_id != 0) {
        add_u64(o, "array_job_id", j->array_job_id);
        add_u64(o, "array_index", j->array_index);
        add_u64(o, "array_size", j->array_size);
        add_u64(o, "array_limit", j->array_limit);
    }
    if (j->array_pending > 0) {
        add_str(o, "array_tasks", j->array_tasks);
        add_u64(o, "array_pending", j->array_pending);
    }
    cJSON_AddBoolToObject(o, "held", j->held);
    add_u64(o, "uncounted_requeues", j->uncounted_requeues);
    add_u64(o, "preemptions", j->preemptions);
    cJSON_AddBoolToObject(o, "suspended", j->suspended);
    if (j->suspended)
        add_time(o, "suspended_since_ms", "suspended_since_time", j->suspended_since_ms);
    add_u64(o, "suspended_ms", (uint64_t) j->suspended_ms);
    if (j->state == WSLQ__JOB_STATE__PENDING)
        add_str(o, "wait_reason", jobspec_wait_name(j->wait_reason));
    if (j->state == WSLQ__JOB_STATE__PENDING && j->est_start_ms != 0) {
        add_time(o, "est_start_ms", "est_start_time", j->est_start_ms);
        add_str(o, "est_nodes", j->est_nodes);
        add_opt_int(o, "est_after_job", (int64_t) j->est_after_job, 0);
        cJSON_AddBoolToObject(o, "est_by_default", j->est_by_default);
    }
    if (j->state == WSLQ__JOB_STATE__PENDING &&
        j->wait_reason == WSLQ__WAIT_REASON__WAIT_RESERVATION && j->kept_for_job != 0)
        add_u64(o, "kept_for_job", j->kept_for_job);
    if (j->priority_known) { /* wslq show / why of a pending job: fair-share order */
        cJSON *p = cJSON_AddObjectToObject(o, "effective_priority");
        cJSON_AddNumberToObject(p, "value", j->effective_priority);
        cJSON_AddNumberToObject(p, "fairshare_factor", j->fairshare_factor);
        cJSON_AddNumberToObject(p, "age_factor", j->age_factor);
        cJSON_AddNumberToObject(p, "priority_weight", j->priority_weight);
        cJSON_AddNumberToObject(p, "fairshare_weight", j->fairshare_weight);
        cJSON_AddNumberToObject(p, "age_weight", j->age_weight);
    }
    if (j->spec != NULL)
        cJSON_AddItemToObject(o, "spec", json_spec(j->spec));
    else
        cJSON_AddNullToObject(o, "spec");
    cJSON *allocs = cJSON_AddArrayToObject(o, "allocs");
    for (size_t i = 0; i < j->n_allocs; i++)
        cJSON_AddItemToArray(allocs, json_alloc(j->allocs[i]));
    return o;
}

cJSON *
json_event(const Wslq__JobEvent *e)
{
    cJSON *o = cJSON_CreateObject();
    add_time(o, "ts_ms", "time", e->ts_ms);
    add_str(o, "state", wire_state_name(e->state));
    add_u64(o, "attempt", e->attempt);
    add_str(o, "node", e->node);
    add_str(o, "reason", e->reason);
    add_str(o, "detail", e->detail);
    return o;
}

cJSON *
json_gpu(const Wslq__GpuInfo *g)
{
    cJSON *o = cJSON_CreateObject();
    add_u64(o, "index", g->index);
    add_str(o, "uuid", g->uuid);
    add_str(o, "name", g->name);
    add_u64(o, "mem_total_mb", g->mem_total_mb);
    add_u64(o, "mem_used_mb", g->mem_used_mb);
    add_opt_int(o, "temp_c", g->temp_c, -1);
    add_opt_int(o, "util_pct", g->util_pct, -1);
    add_opt_int(o, "power_w", g->power_w, -1);
    if (g->job_id == 0)
        cJSON_AddNullToObject(o, "job_id");
    else
        add_u64(o, "job_id", g->job_id);
    cJSON_AddBoolToObject(o, "declared", g->declared);
    add_str(o, "kind", g->kind != NULL && g->kind[0] ? g->kind : "nvidia");
    if (g->cc_major > 0) {
        char cc[24];
        snprintf(cc, sizeof cc, "%u.%u", g->cc_major, g->cc_minor);
        add_str(o, "compute_capability", cc);
    }
    if (g->luid != NULL && g->luid[0])
        add_str(o, "luid", g->luid);
    if (g->vendor != NULL && g->vendor[0])
        add_str(o, "vendor", g->vendor);
    add_u64(o, "mem_shared_mb", g->mem_shared_mb);
    add_u64(o, "mem_other_mb", g->mem_other_mb);
    cJSON *sj = cJSON_AddArrayToObject(o, "shared_jobs");
    for (size_t i = 0; i < g->n_shared_jobs; i++)
        cJSON_AddItemToArray(sj, cJSON_CreateNumber((double) g->shared_jobs[i]));
    return o;
}

cJSON *
json_node(const Wslq__NodeInfo *n)
{
    cJSON *o = cJSON_CreateObject();
    add_str(o, "name", n->name);
    add_str(o, "state", n->state);
    add_str(o, "hostname", n->hostname);
    add_str(o, "ip", n->ip);
    add_str(o, "version", n->version);
    add_u64(o, "cpus", n->cpus);
    add_u64(o, "cpus_alloc", n->cpus_alloc);
    add_u64(o, "mem_mb", n->mem_mb);
    add_u64(o, "mem_alloc_mb", n->mem_alloc_mb);
    size_t used = 0;
    for (size_t i = 0; i < n->n_gpus; i++)
        used += n->gpus[i]->job_id != 0;
    add_u64(o, "gpus_total", n->n_gpus);
    add_u64(o, "gpus_used", used);
    add_time(o, "last_seen_ms", "last_seen_time", n->last_seen_ms);
    cJSON_AddBoolToObject(o, "inbound_ok", n->inbound_ok);
    cJSON_AddItemToObject(o, "tags", str_array(n->tags, n->n_tags));
    add_str(o, "owner", n->owner && n->owner[0] ? n->owner : "ignore");
    add_str(o, "owner_state", n->owner_state && n->owner_state[0] ? n->owner_state : "unknown");
    add_str(o, "owner_why", n->owner_why);
    add_str(o, "owner_user", n->owner_user);
    cJSON_AddNumberToObject(o, "gpu_resets", (double) n->gpu_resets);
    cJSON *susp = cJSON_AddArrayToObject(o, "suspended_jobs");
    for (size_t i = 0; i < n->n_suspended_jobs; i++)
        cJSON_AddItemToArray(susp, cJSON_CreateNumber((double) n->suspended_jobs[i]));
    cJSON_AddBoolToObject(o, "drained", n->drained);
    if (n->drained) {
        add_str(o, "drain_reason", n->drain_reason);
        add_str(o, "drain_by", n->drain_by);
        add_time(o, "drain_since_ms", "drain_since_time", n->drain_since_ms);
    }
    cJSON *attrs = cJSON_AddObjectToObject(o, "attrs");
    for (size_t i = 0; i < n->n_attrs; i++)
        add_str(attrs, n->attrs[i]->key ? n->attrs[i]->key : "", n->attrs[i]->value);
    /* each check also as the line "doctor.<id>" of earlier versions, for scripts */
    cJSON *checks = cJSON_AddArrayToObject(o, "checks");
    for (size_t i = 0; i < n->n_checks; i++) {
        const Wslq__NodeCheck *c = n->checks[i];
        cJSON *co = cJSON_CreateObject();
        add_str(co, "id", c->id);
        add_str(co, "verdict", nodecheck_verdict_lower(c->verdict));
        add_str(co, "summary", c->summary);
        add_str(co, "fix", c->fix);
        cJSON_AddItemToArray(checks, co);
        char key[WIRE_MAX_CHECK_ID + 8], line[2 * WIRE_MAX_CHECK_TEXT + 16];
        snprintf(key, sizeof key, "doctor.%s", c->id);
        add_str(attrs, key, nodecheck_line(c, line, sizeof line));
    }
    cJSON *gpus = cJSON_AddArrayToObject(o, "gpus");
    for (size_t i = 0; i < n->n_gpus; i++)
        cJSON_AddItemToArray(gpus, json_gpu(n->gpus[i]));
    return o;
}

cJSON *
json_queue_reply(const Wslq__QueueReply *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *jobs = cJSON_AddArrayToObject(o, "jobs");
    for (size_t i = 0; i < r->n_jobs; i++)
        cJSON_AddItemToArray(jobs, json_job(r->jobs[i]));
    cJSON_AddBoolToObject(o, "more", r->more);
    return o;
}

cJSON *
json_show_reply(const Wslq__ShowReply *r)
{
    cJSON *o = cJSON_CreateObject();
    if (r->job != NULL)
        cJSON_AddItemToObject(o, "job", json_job(r->job));
    else
        cJSON_AddNullToObject(o, "job");
    cJSON *ev = cJSON_AddArrayToObject(o, "events");
    for (size_t i = 0; i < r->n_events; i++)
        cJSON_AddItemToArray(ev, json_event(r->events[i]));
    return o;
}

cJSON *
json_nodes_reply(const Wslq__NodesReply *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *nodes = cJSON_AddArrayToObject(o, "nodes");
    for (size_t i = 0; i < r->n_nodes; i++)
        cJSON_AddItemToArray(nodes, json_node(r->nodes[i]));
    return o;
}
