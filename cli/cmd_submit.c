/* wslq submit: its usage, the job spec built from the options (submit_opts.c) and a batch
 * script's directives (submit_script.c) and checked as a whole, the --workdir snapshot
 * uploaded (snapshot.c), the request sent and its answer printed. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/snapshot.h"
#include "cli/submit.h"
#include "cli/submit_int.h"
#include "common/mem.h"
#include "proto/jobspec.h"
#include "proto/json.h"

static const char usage[] =
    "usage: wslq submit [options] [--] CMD [ARGS...]\n"
    "       wslq submit [options] --wrap 'shell line'\n"
    "       wslq submit [options] --file jobs.txt\n"
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
    "      --file FILE          one job per line of FILE ('-': standard input), each line\n"
    "                           run with /bin/sh -c and the other options applied to all;\n"
    "                           empty lines and lines starting with # are skipped; every\n"
    "                           line is checked before any is sent; prints one id a line\n"
    "      --hold               queue it held: it starts only after 'wslq release ID'\n"
    "      --parsable           print only the job id\n"
    "      --json               print {\"job_id\": N}\n"
    "      --scheduler ADDR     scheduler address (env WSLQ_SCHEDULER, "
    "default " CLI_DEFAULT_SCHEDULER ")\n"
    "      --timeout SEC        how long to wait for the scheduler (env WSLQ_TIMEOUT, default 5)\n"
    "\n"
    "Options end at '--' or at the first word that is not an option.\n";

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
    free(a->file);
    a->file = NULL;
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

int
submit_parse(cli_ctx_t *ctx, int argc, char **argv, submit_args_t *a, wq_error_t *err)
{
    memset(a, 0, sizeof *a);
    sub_t sub, *o = &sub;
    submit_opts_init(o);
    strlist_t env = {0};
    int rc = -1, rest = argc, dashdash = 0;
    char *script = NULL;
    size_t script_len = 0;
    Wslq__JobSpec *s = NULL;

    rc = submit_apply_argv(ctx, o, a, argc, argv, &rest, &dashdash, err);
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
            submit_opts_fini(o);
            submit_opts_init(o);
            free(a->array);
            free(a->file);
            memset(a, 0, sizeof *a);
            if (submit_script_options(ctx, argv[rest], script, script_len, o, a, err) < 0 ||
                submit_apply_argv(ctx, o, a, argc, argv, &rest, &dashdash, err) != 0)
                goto out;
        }
    }

    /* The command. */
    int ncmd = argc - rest;
    if (a->file != NULL) {
        if (o->wrap != NULL || ncmd > 0) {
            wq_fail(err, WQ_EINVAL,
                    "--file and %s cannot be used together: each line of %.200s "
                    "is a command",
                    o->wrap != NULL ? "--wrap" : "a command", a->file);
            goto out;
        }
        if (a->array != NULL) {
            wq_fail(err, WQ_EINVAL, "--file and --array cannot be used together");
            goto out;
        }
        o->wrap = "true"; /* checked as such; each line takes its place (submit_file) */
    }
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
        if (submit_apply_export(&env, o->exports.v[i], err) < 0)
            goto out;
    for (size_t i = 0; i < o->env_opts.n; i++) {
        submit_env_set(&env, o->env_opts.v[i]);
        o->env_opts.v[i] = NULL;
    }
    s->n_env = env.n;
    s->env = env.v;
    memset(&env, 0, sizeof env);
    s->n_secret_env = o->secrets.n;
    s->secret_env = o->secrets.v;
    memset(&o->secrets, 0, sizeof o->secrets);
    /* the scheduler names the owner itself (the key, or over unix:PATH the uid): the name is
     * only read where nothing else says who we are, which spares a submit over the user
     * socket the account lookup (nsswitch, /etc/passwd) */
    s->user = wq_strdup(cli_by_uid(ctx) ? "" : cli_user_name(ctx));
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
    s->depends_on = submit_dep_ids(&o->deps.ok, &s->n_depends_on);
    s->after_any = submit_dep_ids(&o->deps.any, &s->n_after_any);
    s->after_notok = submit_dep_ids(&o->deps.notok, &s->n_after_notok);
    s->singleton = o->deps.singleton;
    for (size_t i = 0; i < o->nodelist.n; i++)
        for (size_t k = 0; k < o->exclude.n; k++)
            if (strcmp(o->nodelist.v[i], o->exclude.v[k]) == 0) {
                wq_fail(err, WQ_EINVAL, "%.40s is in both --nodelist and --exclude",
                        o->nodelist.v[i]);
                goto out;
            }
    submit_take_list(&o->nodelist, &s->nodelist, &s->n_nodelist);
    submit_take_list(&o->exclude, &s->exclude, &s->n_exclude);
    submit_take_list(&o->constraints, &s->constraints, &s->n_constraints);
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
        free(a->file);
        a->file = NULL;
    }
    if (s != NULL)
        wslq__job_spec__free_unpacked(s, NULL);
    submit_strlist_free(&o->env_opts);
    submit_strlist_free(&o->exports);
    submit_strlist_free(&o->deps.ok);
    submit_strlist_free(&o->deps.any);
    submit_strlist_free(&o->deps.notok);
    submit_strlist_free(&env);
    submit_strlist_free(&o->secrets);
    submit_strlist_free(&o->nodelist);
    submit_strlist_free(&o->exclude);
    submit_strlist_free(&o->constraints);
    submit_opts_fini(o);
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
    submit_lines_t lines = {0};
    if (a.file != NULL && submit_lines_read(a.file, a.spec, &lines, &err) < 0) {
        submit_args_fini(&a);
        return cli_usage_error(ctx, "%s", err.text);
    }
    client_t *c = client_new(ctx, &err);
    if (c == NULL) {
        submit_lines_free(&lines);
        submit_args_fini(&a);
        return cli_fail(&err);
    }
    if (a.workdir != NULL) { /* the snapshot first: the spec names it by hash */
        free(a.spec->workdir_hash);
        a.spec->workdir_hash = NULL;
        if (cli_snapshot_upload(c, a.workdir, &a.spec->workdir_hash, &err) < 0) {
            client_destroy(&c);
            submit_lines_free(&lines);
            submit_args_fini(&a);
            return cli_fail(&err);
        }
    }
    if (a.file != NULL) {
        int frc = submit_file(ctx, c, &a, &lines);
        client_destroy(&c);
        submit_lines_free(&lines);
        submit_args_fini(&a);
        return frc;
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
