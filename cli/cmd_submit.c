/* wslq submit: build a job spec from the command line, check it, send it. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/opt.h"
#include "cli/snapshot.h"
#include "cli/submit.h"
#include "common/mem.h"
#include "common/parse.h"
#include "proto/jobspec.h"
#include "proto/json.h"

extern char **environ;

static const char usage[] =
    "usage: wslq submit [options] [--] CMD [ARGS...]\n"
    "       wslq submit [options] --wrap 'shell line'\n"
    "\n"
    "Queue a job and print its id. Options:\n"
    "  -J, --name NAME          job name (default: the program's name, or 'wrap')\n"
    "  -G, --gpus N             N GPUs on one node\n"
    "  -N, --nodes N            number of nodes (default 1)\n"
    "      --gpus-per-node G    GPUs on each node\n"
    "      --ranks-per-node R   processes per node (default: one per GPU, or 1)\n"
    "      --per-node           one launcher process per node (torchrun)\n"
    "      --tf                 TensorFlow multi-worker: TF_CONFIG for each rank (every\n"
    "                           rank's host:port, its own index); not with --per-node\n"
    "      --container IMAGE    run each rank in IMAGE with the node's podman or docker\n"
    "  -c, --cpus N             CPUs per node (default 1)\n"
    "      --mem SIZE           memory per node: 512M, 16G (bare number = MiB)\n"
    "      --gpu-type T[,T]     only GPUs whose model name contains T (4090, 'rtx a6000'),\n"
    "                           any of several; dx = a DirectX GPU of another vendor\n"
    "      --gpu-mem-min SIZE   only GPUs with at least this much memory (20G)\n"
    "      --gpu-mem SIZE       share each GPU: this much of its memory (6G); small jobs are\n"
    "                           packed on one GPU, never beyond what the card has free\n"
    "                           (the job gets WSLQ_GPU_MEM in MiB; default 1 GPU)\n"
    "  -t, --time DUR           time limit: 90s, 10m, 2h, 1:30:00, 1-00:00:00 (bare = minutes)\n"
    "      --priority N         higher runs first (default 0)\n"
    "      --retries N          requeues allowed after a node loss (0..100)\n"
    "      --requeue-on-fail    also requeue on a non-zero exit\n"
    "      --preemptible        may be stopped for a higher-priority job (SIGTERM, then\n"
    "                           requeued, retries not used) and suspended or evicted on a\n"
    "                           PC whose owner is present (worker 'owner = suspend | evict')\n"
    "  -d, --dependency TYPE:ID[:ID...][,...]  afterok: start after these jobs COMPLETED;\n"
    "                           afterany: after they ended, however; afternotok: after they\n"
    "                           ended other than COMPLETED (cancelled if one completes);\n"
    "                           singleton: when no other job of yours with this name runs\n"
    "      --env K=V            set a variable in the job (repeatable)\n"
    "      --export VAR[,VAR]   copy variables from this shell; ALL copies all\n"
    "      --secret-env NAME[=VALUE]  a variable only the job sees (an API key): the value\n"
    "                           (from this shell if not given) is never shown by wslq show,\n"
    "                           the dashboard or the API, nor kept in the job's event log\n"
    "  -w, --nodelist N[,N]     run only on these nodes\n"
    "  -x, --exclude N[,N]      never on these nodes\n"
    "  -C, --constraint T[,T]   only on nodes tagged with every one of these (wslq nodes\n"
    "                           shows the tags; an admin sets them: wslq admin node tag)\n"
    "      --notify EVENTS      post to your webhook (the lab sets it up) on start, end,\n"
    "                           fail, requeue or all (comma-separated; end: every end,\n"
    "                           fail: ends other than COMPLETED)\n"
    "  -D, --chdir DIR          working directory (default: the current one)\n"
    "      --workdir DIR        no shared file system: send a snapshot of DIR (usually .)\n"
    "                           with the job, minus what its .gitignore and .wslqignore\n"
    "                           leave out; each node unpacks it into the job's own work\n"
    "                           area, where the ranks start (not with --chdir)\n"
    "      --output DIR         with --workdir: the files in DIR (relative to the work\n"
    "                           area) come back when the job ends: wslq fetch JOB\n"
    "      --wrap LINE          run LINE with /bin/sh -c\n"
    "  -a, --array LIST         a job array: one job per index, e.g. 0-499%8 (at most 8 run at\n"
    "                           once) or 1,3,5-9:2; each task gets WSLQ_ARRAY_INDEX and\n"
    "                           WSLQ_ARRAY_JOB_ID ('$WSLQ_ARRAY_INDEX' in the command expands)\n"
    "      --hold               queue it held: it starts only after 'wslq release ID'\n"
    "      --parsable           print only the job id\n"
    "      --json               print {\"job_id\": N}\n"
    "      --scheduler ADDR     scheduler address (env WSLQ_SCHEDULER, "
    "default " CLI_DEFAULT_SCHEDULER ")\n"
    "      --timeout SEC        how long to wait for the scheduler (env WSLQ_TIMEOUT, default 5)\n"
    "\n"
    "Options end at '--' or at the first word that is not an option.\n";

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

/* A growable list of malloc'd strings. */
typedef struct {
    char **v;
    size_t n, cap;
} strlist_t;

static void
strlist_push(strlist_t *l, char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = wq_realloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = s;
}

static void
strlist_free(strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Set "K=V" in an env list, replacing an earlier K. Takes ownership of kv. */
static void
env_set(strlist_t *l, char *kv)
{
    size_t klen = (size_t) (strchr(kv, '=') - kv);
    for (size_t i = 0; i < l->n; i++)
        if (strncmp(l->v[i], kv, klen + 1) == 0) {
            free(l->v[i]);
            l->v[i] = kv;
            return;
        }
    strlist_push(l, kv);
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

/* --export VAR[,VAR...] or ALL: copy from this process's environment. A named variable
 * that is not set is skipped, as Slurm does. */
static int
apply_export(strlist_t *env, const char *list, wq_error_t *err)
{
    if (strcmp(list, "ALL") == 0) {
        for (char **e = environ; e != NULL && *e != NULL; e++) {
            const char *eq = strchr(*e, '=');
            if (eq == NULL || !valid_env_name(*e, (size_t) (eq - *e)) || skip_on_export_all(*e))
                continue;
            env_set(env, wq_strdup(*e));
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
            env_set(env, wq_asprintf("%s=%s", name, v));
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
            strlist_push(out, wq_strdup(w));
    }
    if (rc == 0 && !any)
        rc = wq_fail(err, WQ_EINVAL, "%s: empty list", what);
    free(copy);
    return rc;
}

/* A list's strings moved into a spec's repeated field. */
static void
take_list(strlist_t *l, char ***v, size_t *n)
{
    *n = l->n;
    *v = l->v;
    memset(l, 0, sizeof *l);
}

/* The ids of one dependency type, and singleton. */
typedef struct {
    strlist_t ok, any, notok; /* afterok, afterany, afternotok: ids as text */
    int singleton;
} deps_t;

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
                strlist_push(to, wq_strdup(id));
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

/* The ids of a list, as numbers (checked by parse_dependency). */
static uint64_t *
dep_ids(const strlist_t *l, size_t *n)
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
submit_args_fini(submit_args_t *a)
{
    if (a->spec != NULL)
        wslq__job_spec__free_unpacked(a->spec, NULL);
    a->spec = NULL;
    free(a->array);
    a->array = NULL;
    free(a->workdir);
    a->workdir = NULL;
}

static char *
absolute_dir(const char *dir, wq_error_t *err)
{
    if (dir != NULL && dir[0] == '/')
        return wq_strdup(dir);
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL) {
        wq_fail_errno(err, "cannot read the current directory (use --chdir)");
        return NULL;
    }
    if (dir == NULL || dir[0] == '\0' || strcmp(dir, ".") == 0)
        return wq_strdup(cwd);
    return wq_asprintf("%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", dir);
}

/* What the options set, before the spec is built from it. */
typedef struct {
    const char *name, *wrap, *chdir_opt, *container;
    const char *workdir, *output; /* --workdir, --output */
    uint32_t gpus, nodes, gpn, rpn, cpus, retries;
    int gpus_set, nodes_set, gpn_set, rpn_set, per_node, requeue, preemptible, tf;
    int64_t mem_mb, time_s, prio;
    uint32_t notify; /* JOBSPEC_NOTIFY_* */
    const char *gpu_type;
    int64_t gpu_mem_min_mb, gpu_mem_mb;
    deps_t deps;
    strlist_t env_opts, exports, secrets, nodelist, exclude, constraints;
    strlist_t words; /* a batch script's directive words, which the values above point into */
} sub_t;

static void
sub_init(sub_t *o)
{
    memset(o, 0, sizeof *o);
    o->nodes = 1;
}

static void
sub_fini(sub_t *o)
{
    strlist_free(&o->env_opts);
    strlist_free(&o->exports);
    strlist_free(&o->deps.ok);
    strlist_free(&o->deps.any);
    strlist_free(&o->deps.notok);
    strlist_free(&o->secrets);
    strlist_free(&o->nodelist);
    strlist_free(&o->exclude);
    strlist_free(&o->constraints);
    strlist_free(&o->words);
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
        strlist_push(&o->env_opts, wq_strdup(v));
        break;
    }
    case O_EXPORT:
        strlist_push(&o->exports, wq_strdup(v));
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
            env_set(&o->secrets, wq_strdup(v));
            break;
        }
        const char *val = getenv(v);
        if (val == NULL) {
            wq_fail(err, WQ_EINVAL, "--secret-env: %.40s is not set in this shell", v);
            return -1;
        }
        env_set(&o->secrets, wq_asprintf("%s=%s", v, val));
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

/* Apply the options of argv[1..]: 0 with *rest the index of the command's first word (and
 * *dashdash set when '--' ended the options), 1 for --help, or -1 with *err. */
static int
apply_argv(cli_ctx_t *ctx,
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

/* Split a directive's text into words: blanks separate them, '...' and "..." quote, a word
 * starting with '#' ends the line. 0, or -1 with *err. */
static int
split_words(const char *t, strlist_t *out, wq_error_t *err)
{
    size_t n = strlen(t);
    char *w = wq_malloc(n + 1);
    size_t i = 0;
    int rc = 0;
    for (;;) {
        while (t[i] == ' ' || t[i] == '\t' || t[i] == '\r')
            i++;
        if (t[i] == '\0' || t[i] == '#')
            break;
        size_t k = 0;
        while (t[i] != '\0' && t[i] != ' ' && t[i] != '\t' && t[i] != '\r') {
            if (t[i] == '\'' || t[i] == '"') {
                char q = t[i++];
                while (t[i] != '\0' && t[i] != q)
                    w[k++] = t[i++];
                if (t[i] != q) {
                    rc = wq_fail(err, WQ_EINVAL, "unterminated %s quote",
                                 q == '"' ? "double" : "single");
                    goto out;
                }
                i++;
            } else {
                w[k++] = t[i++];
            }
        }
        w[k] = '\0';
        strlist_push(out, wq_strdup(w));
    }
out:
    free(w);
    return rc;
}

/* A directive line "#WSLQ ...": the text after the tag, or NULL when the line is not one.
 * *bad is set for "#WSLQsomething". */
static const char *
directive(const char *line, int *bad)
{
    *bad = 0;
    if (strncmp(line, "#WSLQ", 5) != 0)
        return NULL;
    if (line[5] != '\0' && line[5] != ' ' && line[5] != '\t' && line[5] != '\r') {
        *bad = 1;
        return NULL;
    }
    return line + 5;
}

/* Read a batch script: 1 with its text when 'path' names a regular file here that starts
 * with "#!", 0 when it does not (a program the worker finds), -1 with *err. */
static int
submit_script_read(const char *path, char **text, size_t *len, wq_error_t *err)
{
    *text = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return 0;
    struct stat st;
    char head[2];
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || pread(fd, head, 2, 0) != 2 ||
        head[0] != '#' || head[1] != '!') {
        close(fd);
        return 0;
    }
    if (st.st_size > WIRE_MAX_SCRIPT) {
        close(fd);
        return wq_fail(err, WQ_ELIMIT,
                       "%.200s: %lld bytes; a batch script is sent with the job and may have at "
                       "most %u",
                       path, (long long) st.st_size, WIRE_MAX_SCRIPT);
    }
    char *buf = wq_malloc((size_t) st.st_size + 1);
    size_t got = 0;
    while (got < (size_t) st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t) st.st_size - got);
        if (r < 0) {
            int e = errno;
            close(fd);
            free(buf);
            errno = e;
            return wq_fail_errno(err, "cannot read %.200s", path);
        }
        if (r == 0)
            break;
        got += (size_t) r;
    }
    close(fd);
    buf[got] = '\0';
    *text = buf;
    *len = got;
    return 1;
}

/* Apply the #WSLQ lines at the top of a script (after "#!", before the first line that is
 * neither blank nor a comment): 0, or -1 with *err naming the script and line. A #WSLQ line
 * further down is an error too, as is anything a directive cannot hold. */
static int
submit_script_options(cli_ctx_t *ctx,
                      const char *path,
                      const char *text,
                      size_t len,
                      sub_t *o,
                      submit_args_t *a,
                      wq_error_t *err)
{
    size_t pos = 0;
    int line = 0, first_cmd = 0, rc = 0;
    while (pos < len && rc == 0) {
        size_t e = pos;
        while (e < len && text[e] != '\n')
            e++;
        char *l = wq_strndup(text + pos, e - pos);
        pos = e + 1;
        line++;
        int bad;
        const char *d = directive(l, &bad);
        if (bad) {
            rc = wq_fail(err, WQ_EINVAL,
                         "%.200s:%d: '%.20s' is not a directive; write '#WSLQ --OPTION'", path,
                         line, l);
        } else if (d != NULL && first_cmd) {
            rc = wq_fail(err, WQ_EINVAL,
                         "%.200s:%d: #WSLQ after the first command (line %d) would be ignored; "
                         "move it above",
                         path, line, first_cmd);
        } else if (d != NULL) {
            size_t first = o->words.n;
            wq_error_t e2 = {0};
            if (split_words(d, &o->words, &e2) < 0) {
                rc = wq_fail(err, WQ_EINVAL, "%.200s:%d: %s", path, line, e2.text);
            } else {
                int nw = (int) (o->words.n - first);
                char **v = wq_calloc((size_t) nw + 1, sizeof *v);
                v[0] = (char *) "submit";
                for (int i = 0; i < nw; i++)
                    v[i + 1] = o->words.v[first + (size_t) i];
                opt_parser_t p;
                opt_parser_init(&p, nw + 1, v, 1);
                int id;
                while (rc == 0 && (id = opt_next(&p, opts, &e2)) != 0) {
                    if (id == OPT_HELP || id == O_WRAP)
                        wq_fail(&e2, WQ_EINVAL, "%s cannot be used in a batch script", p.name);
                    if (id < 0 || id == OPT_HELP || id == O_WRAP ||
                        apply_opt(ctx, o, a, id, p.arg, &e2) != 0)
                        rc = wq_fail(err, WQ_EINVAL, "%.200s:%d: %s", path, line, e2.text);
                }
                if (rc == 0 && p.rest < nw + 1)
                    rc = wq_fail(err, WQ_EINVAL, "%.200s:%d: '%.40s' is not an option", path, line,
                                 v[p.rest]);
                opt_parser_fini(&p);
                free(v);
            }
        } else if (!first_cmd && line > 1) {
            const char *c = l;
            while (*c == ' ' || *c == '\t' || *c == '\r')
                c++;
            if (*c != '\0' && *c != '#')
                first_cmd = line;
        }
        free(l);
    }
    return rc;
}

int
submit_parse(cli_ctx_t *ctx, int argc, char **argv, submit_args_t *a, wq_error_t *err)
{
    memset(a, 0, sizeof *a);
    sub_t sub, *o = &sub;
    sub_init(o);
    strlist_t env = {0};
    int rc = -1, rest = argc, dashdash = 0;
    char *script = NULL;
    size_t script_len = 0;
    Wslq__JobSpec *s = NULL;

    rc = apply_argv(ctx, o, a, argc, argv, &rest, &dashdash, err);
    if (rc != 0)
        goto out;
    rc = -1;
    /* A batch script: its #WSLQ lines first, then the command line's options again, which
     * win. */
    if (!dashdash && o->wrap == NULL && rest < argc) {
        int r = submit_script_read(argv[rest], &script, &script_len, err);
        if (r < 0)
            goto out;
        if (r > 0) {
            sub_fini(o);
            sub_init(o);
            free(a->array);
            memset(a, 0, sizeof *a);
            if (submit_script_options(ctx, argv[rest], script, script_len, o, a, err) < 0 ||
                apply_argv(ctx, o, a, argc, argv, &rest, &dashdash, err) != 0)
                goto out;
        }
    }

    /* The command. */
    int ncmd = argc - rest;
    if (o->wrap != NULL && ncmd > 0) {
        wq_fail(err, WQ_EINVAL, "--wrap and a command ('%.40s') cannot be used together",
                argv[rest]);
        goto out;
    }
    if (o->wrap == NULL && ncmd == 0) {
        wq_fail(err, WQ_EINVAL,
                "no command given; use 'wslq submit [options] -- CMD [ARGS...]'"
                " or --wrap 'shell line'");
        goto out;
    }
    if (ncmd > WIRE_MAX_ARGV) {
        wq_fail(err, WQ_ELIMIT, "the command has %d words, more than %d", ncmd, WIRE_MAX_ARGV);
        goto out;
    }

    /* Resources. */
    if (o->gpus_set && o->gpn_set) {
        wq_fail(err, WQ_EINVAL,
                "--gpus and --gpus-per-node cannot be used together; --gpus is the total on "
                "one node");
        goto out;
    }
    if (o->gpus_set && o->nodes > 1) {
        wq_fail(err, WQ_EINVAL,
                "--gpus is the total on one node; with --nodes %u use --gpus-per-node", o->nodes);
        goto out;
    }
    if (o->per_node && o->rpn_set && o->rpn != 1) {
        wq_fail(err, WQ_EINVAL, "--per-node and --ranks-per-node %u cannot be used together",
                o->rpn);
        goto out;
    }

    s = wq_malloc(sizeof *s);
    wslq__job_spec__init(s);
    if (o->wrap != NULL) {
        s->n_argv = 3;
        s->argv = wq_calloc(3, sizeof *s->argv);
        s->argv[0] = wq_strdup("/bin/sh");
        s->argv[1] = wq_strdup("-c");
        s->argv[2] = wq_strdup(o->wrap);
        s->wrap = 1;
    } else {
        s->n_argv = (size_t) ncmd;
        s->argv = wq_calloc((size_t) ncmd, sizeof *s->argv);
        for (int i = 0; i < ncmd; i++)
            s->argv[i] = wq_strdup(argv[rest + i]);
    }
    if (o->name == NULL) {
        char buf[WIRE_MAX_NAME + 1];
        s->name = wq_strdup(jobspec_default_name(s, buf, sizeof buf));
    } else {
        s->name = wq_strdup(o->name);
    }
    s->cwd = absolute_dir(o->chdir_opt, err);
    if (s->cwd == NULL)
        goto out;
    if (submit_workdir_opts(o->workdir, o->chdir_opt, o->output, s, &a->workdir, err) < 0)
        goto out;
    for (size_t i = 0; i < o->exports.n; i++)
        if (apply_export(&env, o->exports.v[i], err) < 0)
            goto out;
    for (size_t i = 0; i < o->env_opts.n; i++) {
        env_set(&env, o->env_opts.v[i]);
        o->env_opts.v[i] = NULL;
    }
    s->n_env = env.n;
    s->env = env.v;
    memset(&env, 0, sizeof env);
    s->n_secret_env = o->secrets.n;
    s->secret_env = o->secrets.v;
    memset(&o->secrets, 0, sizeof o->secrets);
    s->user = wq_strdup(cli_user_name(ctx));
    s->uid = (uint32_t) getuid();
    s->nodes = o->nodes;
    s->gpus_per_node = o->gpus_set ? o->gpus : o->gpn;
    if ((o->gpu_type != NULL || o->gpu_mem_min_mb > 0 || o->gpu_mem_mb > 0) && !o->gpus_set &&
        !o->gpn_set)
        s->gpus_per_node = 1; /* choosing or sharing a GPU asks for one */
    if (o->gpu_type != NULL)
        s->gpu_type = wq_strdup(o->gpu_type);
    s->gpu_mem_min_mb = (uint64_t) o->gpu_mem_min_mb;
    s->gpu_mem_mb = (uint64_t) o->gpu_mem_mb;
    s->ranks_per_node = o->per_node ? 1 : o->rpn;
    s->per_node = o->per_node;
    s->tf = o->tf;
    if (o->container != NULL)
        s->container = wq_strdup(o->container);
    s->cpus_per_node = o->cpus;
    s->mem_mb_per_node = (uint64_t) o->mem_mb;
    s->time_limit_s = (uint64_t) o->time_s;
    s->priority = (int32_t) o->prio;
    s->retries = o->retries;
    s->requeue_on_fail = o->requeue;
    s->notify = o->notify;
    s->preemptible = o->preemptible;
    s->depends_on = dep_ids(&o->deps.ok, &s->n_depends_on);
    s->after_any = dep_ids(&o->deps.any, &s->n_after_any);
    s->after_notok = dep_ids(&o->deps.notok, &s->n_after_notok);
    s->singleton = o->deps.singleton;
    for (size_t i = 0; i < o->nodelist.n; i++)
        for (size_t k = 0; k < o->exclude.n; k++)
            if (strcmp(o->nodelist.v[i], o->exclude.v[k]) == 0) {
                wq_fail(err, WQ_EINVAL, "%.40s is in both --nodelist and --exclude",
                        o->nodelist.v[i]);
                goto out;
            }
    take_list(&o->nodelist, &s->nodelist, &s->n_nodelist);
    take_list(&o->exclude, &s->exclude, &s->n_exclude);
    take_list(&o->constraints, &s->constraints, &s->n_constraints);
    if (script != NULL) {
        s->script.data = (uint8_t *) script;
        s->script.len = script_len;
        script = NULL;
    }
    if (wire_validate_spec(s, err) < 0)
        goto out;
    a->spec = s;
    s = NULL;
    rc = 0;
out:
    if (rc != 0) {
        free(a->array);
        a->array = NULL;
        free(a->workdir);
        a->workdir = NULL;
    }
    if (s != NULL)
        wslq__job_spec__free_unpacked(s, NULL);
    strlist_free(&o->env_opts);
    strlist_free(&o->exports);
    strlist_free(&o->deps.ok);
    strlist_free(&o->deps.any);
    strlist_free(&o->deps.notok);
    strlist_free(&env);
    strlist_free(&o->secrets);
    strlist_free(&o->nodelist);
    strlist_free(&o->exclude);
    strlist_free(&o->constraints);
    sub_fini(o);
    free(script);
    return rc;
}

int
cmd_submit(cli_ctx_t *ctx, int argc, char **argv)
{
    submit_args_t a;
    wq_error_t err = {0};
    int rc = submit_parse(ctx, argc, argv, &a, &err);
    if (rc == 1) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    if (rc < 0)
        return cli_usage_error(ctx, "%s", err.text);
    client_t *c = client_new(ctx, &err);
    if (c == NULL) {
        submit_args_fini(&a);
        return cli_fail(&err);
    }
    if (a.workdir != NULL) { /* the snapshot first: the spec names it by hash */
        free(a.spec->workdir_hash);
        a.spec->workdir_hash = NULL;
        if (cli_snapshot_upload(c, a.workdir, &a.spec->workdir_hash, &err) < 0) {
            client_destroy(&c);
            submit_args_fini(&a);
            return cli_fail(&err);
        }
    }
    Wslq__SubmitRequest req = WSLQ__SUBMIT_REQUEST__INIT;
    req.spec = a.spec;
    req.array = a.array ? a.array : "";
    req.hold = a.hold;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_SUBMIT;
    env.submit = &req;
    Wslq__Envelope *rep = client_call(c, &env, WSLQ__ENVELOPE__BODY_SUBMIT_REPLY, 0, &err);
    client_destroy(&c);
    int json = a.json, parsable = a.parsable;
    submit_args_fini(&a);
    if (rep == NULL)
        return cli_fail(&err);
    uint64_t id = rep->submit_reply->job_id;
    uint32_t tasks = rep->submit_reply->array_size;
    wire_free(&rep);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "job_id", (double) id);
        if (tasks > 0)
            cJSON_AddNumberToObject(o, "array_size", tasks);
        return cli_print_json(o);
    }
    if (parsable)
        printf("%" PRIu64 "\n", id);
    else if (tasks > 0)
        printf("Submitted array job %" PRIu64 " (%u tasks: jobs %" PRIu64 "-%" PRIu64 ")\n", id,
               tasks, id, id + tasks - 1);
    else
        printf("Submitted job %" PRIu64 "\n", id);
    return CLI_OK;
}
