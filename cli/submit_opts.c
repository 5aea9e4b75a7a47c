/* wslq submit's options: the option table, each option's parsing and checks (numbers,
 * --env and --export, node lists, --dependency), the options of argv and of a batch script's
 * #WSLQ line applied to the options struct (submit_int.h) that cmd_submit.c builds the spec
 * from. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opt.h"
#include "cli/submit_int.h"
#include "common/mem.h"
#include "common/parse.h"
#include "proto/jobspec.h"

extern char **environ;

enum {
    O_NAME = 1,
    O_GPUS,
    O_NODES,
    O_GPN,
    O_RPN,
    O_PER_NODE,
    O_CPUS,
    O_MEM,
    O_TIME,
    O_PRIORITY,
    O_RETRIES,
    O_REQUEUE,
    O_PREEMPTIBLE,
    O_DEP,
    O_ENV,
    O_EXPORT,
    O_SECRET_ENV,
    O_CHDIR,
    O_WRAP,
    O_PARSABLE,
    O_JSON,
    O_NODELIST,
    O_EXCLUDE,
    O_CONSTRAINT,
    O_ARRAY,
    O_HOLD,
    O_FILE,
    O_NOTIFY,
    O_TF,
    O_CONTAINER,
    O_GPU_TYPE,
    O_GPU_MEM_MIN,
    O_GPU_MEM,
    O_WORKDIR,
    O_OUTPUT,
};

static const opt_t opts[] = {
    {"name", 'J', 1, O_NAME},
    {"job-name", 0, 1, O_NAME},
    {"gpus", 'G', 1, O_GPUS},
    {"nodes", 'N', 1, O_NODES},
    {"gpus-per-node", 0, 1, O_GPN},
    {"ranks-per-node", 0, 1, O_RPN},
    {"per-node", 0, 0, O_PER_NODE},
    {"cpus", 'c', 1, O_CPUS},
    {"mem", 0, 1, O_MEM},
    {"time", 't', 1, O_TIME},
    {"priority", 0, 1, O_PRIORITY},
    {"retries", 0, 1, O_RETRIES},
    {"requeue-on-fail", 0, 0, O_REQUEUE},
    {"preemptible", 0, 0, O_PREEMPTIBLE},
    {"dependency", 'd', 1, O_DEP},
    {"env", 0, 1, O_ENV},
    {"export", 0, 1, O_EXPORT},
    {"secret-env", 0, 1, O_SECRET_ENV},
    {"chdir", 'D', 1, O_CHDIR},
    {"wrap", 0, 1, O_WRAP},
    {"parsable", 0, 0, O_PARSABLE},
    {"json", 0, 0, O_JSON},
    {"nodelist", 'w', 1, O_NODELIST},
    {"exclude", 'x', 1, O_EXCLUDE},
    {"constraint", 'C', 1, O_CONSTRAINT},
    {"array", 'a', 1, O_ARRAY},
    {"hold", 'H', 0, O_HOLD},
    {"file", 0, 1, O_FILE},
    {"notify", 0, 1, O_NOTIFY},
    {"tf", 0, 0, O_TF},
    {"container", 0, 1, O_CONTAINER},
    {"gpu-type", 0, 1, O_GPU_TYPE},
    {"gpu-mem-min", 0, 1, O_GPU_MEM_MIN},
    {"gpu-mem", 0, 1, O_GPU_MEM},
    {"workdir", 0, 1, O_WORKDIR},
    {"output", 0, 1, O_OUTPUT},
    OPT_COMMON,
    {NULL, 0, 0, 0},
};

const char *const submit_export_skip[] = {"PWD", "OLDPWD", "SHLVL", "_", NULL};

void
submit_strlist_push(strlist_t *l, char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = wq_realloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = s;
}

void
submit_strlist_free(strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

void
submit_env_set(strlist_t *l, char *kv)
{
    size_t klen = (size_t) (strchr(kv, '=') - kv);
    for (size_t i = 0; i < l->n; i++)
        if (strncmp(l->v[i], kv, klen + 1) == 0) {
            free(l->v[i]);
            l->v[i] = kv;
            return;
        }
    submit_strlist_push(l, kv);
}

static int
valid_env_name(const char *s, size_t len)
{
    if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

static int
skip_on_export_all(const char *kv)
{
    size_t klen = strcspn(kv, "=");
    if (jobspec_is_rank_var(kv, klen))
        return 1;
    for (const char *const *p = submit_export_skip; *p; p++)
        if (strlen(*p) == klen && strncmp(*p, kv, klen) == 0)
            return 1;
    return 0;
}

int
submit_apply_export(strlist_t *env, const char *list, wq_error_t *err)
{
    if (strcmp(list, "ALL") == 0) {
        for (char **e = environ; e != NULL && *e != NULL; e++) {
            const char *eq = strchr(*e, '=');
            if (eq == NULL || !valid_env_name(*e, (size_t) (eq - *e)) || skip_on_export_all(*e))
                continue;
            submit_env_set(env, wq_strdup(*e));
        }
        return 0;
    }
    if (strcmp(list, "NONE") == 0)
        return 0;
    char *copy = wq_strdup(list);
    char *save = NULL;
    int rc = 0;
    for (char *name = strtok_r(copy, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        if (!valid_env_name(name, strlen(name))) {
            rc = wq_fail(err, WQ_EINVAL, "--export: '%.40s' is not a variable name", name);
            break;
        }
        const char *v = getenv(name);
        if (v != NULL)
            submit_env_set(env, wq_asprintf("%s=%s", name, v));
    }
    free(copy);
    return rc;
}

/* --nodelist, --exclude (node names) and --constraint (tags): comma lists, repeatable,
 * duplicates dropped. */
static int
parse_names(const char *s, const char *what, int tags, strlist_t *out, wq_error_t *err)
{
    char *copy = wq_strdup(s);
    char *save = NULL;
    int rc = 0, any = 0;
    for (char *w = strtok_r(copy, ",", &save); w && rc == 0; w = strtok_r(NULL, ",", &save)) {
        any = 1;
        if (tags) {
            rc = wire_check_tag(w, what, err);
        } else {
            size_t n = strlen(w);
            for (size_t i = 0; i < n && rc == 0; i++)
                if ((unsigned char) w[i] <= ' ' || w[i] == 0x7f)
                    rc = wq_fail(err, WQ_EINVAL, "%s: '%.40s' is not a node name", what, w);
            if (rc == 0 && n > WIRE_MAX_NAME)
                rc = wq_fail(err, WQ_EINVAL, "%s: '%.40s...' is not a node name", what, w);
        }
        int dup = 0;
        for (size_t i = 0; i < out->n && !dup; i++)
            dup = strcmp(out->v[i], w) == 0;
        if (rc == 0 && !dup)
            submit_strlist_push(out, wq_strdup(w));
    }
    if (rc == 0 && !any)
        rc = wq_fail(err, WQ_EINVAL, "%s: empty list", what);
    free(copy);
    return rc;
}

void
submit_take_list(strlist_t *l, char ***v, size_t *n)
{
    *n = l->n;
    *v = l->v;
    memset(l, 0, sizeof *l);
}

/* --dependency TYPE:ID[:ID...][,TYPE:...] with TYPE afterok, afterany or afternotok; or
 * singleton. Repeatable; the lists add up. */
static int
parse_dependency(const char *s, deps_t *d, wq_error_t *err)
{
    static const char hint[] =
        "use afterok:ID, afterany:ID, afternotok:ID (each with :ID... for more) or singleton";
    char *copy = wq_strdup(s);
    char *save = NULL;
    int rc = 0;
    int any = 0;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        if (strcmp(item, "singleton") == 0) {
            d->singleton = 1;
            any = 1;
            continue;
        }
        char *colon = strchr(item, ':');
        size_t tlen = colon ? (size_t) (colon - item) : strlen(item);
        strlist_t *to = NULL;
        if (tlen == 7 && strncmp(item, "afterok", 7) == 0)
            to = &d->ok;
        else if (tlen == 8 && strncmp(item, "afterany", 8) == 0)
            to = &d->any;
        else if (tlen == 10 && strncmp(item, "afternotok", 10) == 0)
            to = &d->notok;
        if (to == NULL) {
            rc = wq_fail(err, WQ_EINVAL, "--dependency: '%.40s' is not supported; %s", item, hint);
            break;
        }
        int n = 0;
        if (colon != NULL) {
            char *save2 = NULL;
            for (char *id = strtok_r(colon + 1, ":", &save2); id;
                 id = strtok_r(NULL, ":", &save2)) {
                uint64_t v;
                if (cli_parse_job_id(id, &v, NULL) < 0) {
                    rc = wq_fail(err, WQ_EINVAL, "--dependency: '%.40s' is not a job id", id);
                    goto out;
                }
                submit_strlist_push(to, wq_strdup(id));
                n++;
            }
        }
        if (n == 0) {
            rc = wq_fail(err, WQ_EINVAL, "--dependency: '%.*s' names no job; use %.*s:ID",
                         (int) tlen, item, (int) tlen, item);
            break;
        }
        any = 1;
    }
    if (rc == 0 && !any)
        rc = wq_fail(err, WQ_EINVAL, "--dependency: empty; %s", hint);
out:
    free(copy);
    return rc;
}

uint64_t *
submit_dep_ids(const strlist_t *l, size_t *n)
{
    *n = l->n;
    if (l->n == 0)
        return NULL;
    uint64_t *v = wq_calloc(l->n, sizeof *v);
    for (size_t i = 0; i < l->n; i++)
        v[i] = strtoull(l->v[i], NULL, 10);
    return v;
}

static int
parse_uint(
    const char *s, const char *what, int64_t min, int64_t max, uint32_t *out, wq_error_t *err)
{
    int64_t v;
    if (wq_parse_int(s, min, max, what, &v, err) < 0)
        return -1;
    *out = (uint32_t) v;
    return 0;
}

void
submit_opts_init(sub_t *o)
{
    memset(o, 0, sizeof *o);
    o->nodes = 1;
}

void
submit_opts_fini(sub_t *o)
{
    submit_strlist_free(&o->env_opts);
    submit_strlist_free(&o->exports);
    submit_strlist_free(&o->deps.ok);
    submit_strlist_free(&o->deps.any);
    submit_strlist_free(&o->deps.notok);
    submit_strlist_free(&o->secrets);
    submit_strlist_free(&o->nodelist);
    submit_strlist_free(&o->exclude);
    submit_strlist_free(&o->constraints);
    submit_strlist_free(&o->words);
}

/* Apply one option: 0, 1 for --help, or -1 with *err. */
static int
apply_opt(cli_ctx_t *ctx, sub_t *o, submit_args_t *a, int id, const char *v, wq_error_t *err)
{
    switch (id) {
    case OPT_HELP:
        return 1;
    case O_NAME:
        o->name = v;
        break;
    case O_GPUS:
        if (parse_uint(v, "--gpus", 0, WIRE_MAX_GPUS, &o->gpus, err) < 0)
            return -1;
        o->gpus_set = 1;
        break;
    case O_NODES:
        if (parse_uint(v, "--nodes", 1, WIRE_MAX_NODES, &o->nodes, err) < 0)
            return -1;
        o->nodes_set = 1;
        break;
    case O_GPN:
        if (parse_uint(v, "--gpus-per-node", 0, WIRE_MAX_GPUS, &o->gpn, err) < 0)
            return -1;
        o->gpn_set = 1;
        break;
    case O_RPN:
        if (parse_uint(v, "--ranks-per-node", 1, WIRE_MAX_RANKS, &o->rpn, err) < 0)
            return -1;
        o->rpn_set = 1;
        break;
    case O_PER_NODE:
        o->per_node = 1;
        break;
    case O_CPUS:
        if (parse_uint(v, "--cpus", 1, WIRE_MAX_CPUS, &o->cpus, err) < 0)
            return -1;
        break;
    case O_MEM:
        if (wq_parse_size_mb(v, "--mem", &o->mem_mb, err) < 0)
            return -1;
        break;
    case O_TIME:
        if (wq_parse_duration(v, "--time", &o->time_s, err) < 0)
            return -1;
        break;
    case O_PRIORITY:
        if (wq_parse_int(v, -1000000, 1000000, "--priority", &o->prio, err) < 0)
            return -1;
        break;
    case O_RETRIES:
        if (parse_uint(v, "--retries", 0, 100, &o->retries, err) < 0)
            return -1;
        break;
    case O_REQUEUE:
        o->requeue = 1;
        break;
    case O_PREEMPTIBLE:
        o->preemptible = 1;
        break;
    case O_DEP:
        if (parse_dependency(v, &o->deps, err) < 0)
            return -1;
        break;
    case O_ENV: {
        const char *eq = strchr(v, '=');
        if (eq == NULL || !valid_env_name(v, (size_t) (eq - v))) {
            wq_fail(err, WQ_EINVAL, "--env: '%.40s' is not of the form NAME=VALUE", v);
            return -1;
        }
        submit_strlist_push(&o->env_opts, wq_strdup(v));
        break;
    }
    case O_EXPORT:
        submit_strlist_push(&o->exports, wq_strdup(v));
        break;
    case O_SECRET_ENV: {
        const char *eq = strchr(v, '=');
        size_t nlen = eq != NULL ? (size_t) (eq - v) : strlen(v);
        if (!valid_env_name(v, nlen)) {
            wq_fail(err, WQ_EINVAL, "--secret-env: '%.*s' is not a variable name",
                    (int) (nlen > 40 ? 40 : nlen), v);
            return -1;
        }
        if (eq != NULL) {
            submit_env_set(&o->secrets, wq_strdup(v));
            break;
        }
        const char *val = getenv(v);
        if (val == NULL) {
            wq_fail(err, WQ_EINVAL, "--secret-env: %.40s is not set in this shell", v);
            return -1;
        }
        submit_env_set(&o->secrets, wq_asprintf("%s=%s", v, val));
        break;
    }
    case O_CHDIR:
        if (v[0] == '\0') {
            wq_fail(err, WQ_EINVAL, "--chdir: empty directory");
            return -1;
        }
        o->chdir_opt = v;
        break;
    case O_WRAP:
        if (v[0] == '\0') {
            wq_fail(err, WQ_EINVAL, "--wrap: empty command line");
            return -1;
        }
        o->wrap = v;
        break;
    case O_NODELIST:
        if (parse_names(v, "--nodelist", 0, &o->nodelist, err) < 0)
            return -1;
        break;
    case O_EXCLUDE:
        if (parse_names(v, "--exclude", 0, &o->exclude, err) < 0)
            return -1;
        break;
    case O_CONSTRAINT:
        if (parse_names(v, "--constraint", 1, &o->constraints, err) < 0)
            return -1;
        break;
    case O_PARSABLE:
        a->parsable = 1;
        break;
    case O_JSON:
        a->json = 1;
        break;
    case O_ARRAY: {
        jobspec_array_t arr;
        wq_error_t e = {0};
        if (jobspec_parse_array(v, 1, &arr, &e) < 0) {
            wq_fail(err, e.code, "--array: %s", e.text);
            return -1;
        }
        jobspec_array_fini(&arr);
        free(a->array);
        a->array = wq_strdup(v);
        break;
    }
    case O_HOLD:
        a->hold = 1;
        break;
    case O_FILE:
        if (v[0] == '\0') {
            wq_fail(err, WQ_EINVAL, "--file: empty path");
            return -1;
        }
        free(a->file);
        a->file = wq_strdup(v);
        break;
    case O_NOTIFY:
        if (jobspec_parse_notify(v, &o->notify, err) < 0)
            return -1;
        break;
    case O_TF:
        o->tf = 1;
        break;
    case O_WORKDIR:
    case O_OUTPUT:
        if (v[0] == '\0') {
            wq_fail(err, WQ_EINVAL, "%s: empty directory",
                    id == O_WORKDIR ? "--workdir" : "--output");
            return -1;
        }
        *(id == O_WORKDIR ? &o->workdir : &o->output) = v;
        break;
    case O_CONTAINER:
        if (wire_check_container(v, err) < 0)
            return -1;
        if (v[0] == '\0') {
            wq_fail(err, WQ_EINVAL, "--container: empty image name");
            return -1;
        }
        o->container = v;
        break;
    case O_GPU_TYPE:
        if (v[0] == '\0') {
            wq_fail(err, WQ_EINVAL, "--gpu-type: empty GPU type");
            return -1;
        }
        o->gpu_type = v;
        break;
    case O_GPU_MEM_MIN:
        if (wq_parse_size_mb(v, "--gpu-mem-min", &o->gpu_mem_min_mb, err) < 0)
            return -1;
        break;
    case O_GPU_MEM:
        if (wq_parse_size_mb(v, "--gpu-mem", &o->gpu_mem_mb, err) < 0)
            return -1;
        if (o->gpu_mem_mb == 0) {
            wq_fail(err, WQ_EINVAL, "--gpu-mem: a share must be more than 0");
            return -1;
        }
        break;
    default:
        if (opt_common(ctx, id, v, err) != 0)
            return -1;
        break;
    }
    return 0;
}

int
submit_apply_argv(cli_ctx_t *ctx,
                  sub_t *o,
                  submit_args_t *a,
                  int argc,
                  char **argv,
                  int *rest,
                  int *dashdash,
                  wq_error_t *err)
{
    opt_parser_t p;
    opt_parser_init(&p, argc, argv, 1);
    int id, rc = 0;
    while (rc == 0 && (id = opt_next(&p, opts, err)) != 0) {
        if (id < 0)
            rc = -1;
        else
            rc = apply_opt(ctx, o, a, id, p.arg, err);
    }
    *rest = p.rest;
    *dashdash = p.dashdash;
    opt_parser_fini(&p);
    return rc;
}

int
submit_apply_words(cli_ctx_t *ctx, sub_t *o, submit_args_t *a, int argc, char **v, wq_error_t *err)
{
    opt_parser_t p;
    opt_parser_init(&p, argc, v, 1);
    int id, rc = 0;
    while (rc == 0 && (id = opt_next(&p, opts, err)) != 0) {
        if (id == OPT_HELP || id == O_WRAP || id == O_FILE)
            rc = wq_fail(err, WQ_EINVAL, "%s cannot be used in a batch script", p.name);
        else if (id < 0 || apply_opt(ctx, o, a, id, p.arg, err) != 0)
            rc = -1;
    }
    if (rc == 0 && p.rest < argc)
        rc = wq_fail(err, WQ_EINVAL, "'%.40s' is not an option", v[p.rest]);
    opt_parser_fini(&p);
    return rc;
}
