/* wslq submit's pieces shared by its three files: cmd_submit.c (the command: the spec built
 * from the options and checked, the request sent), submit_opts.c (the option table and each
 * option's parsing and checks) and submit_script.c (a batch script's #WSLQ directives). */
#ifndef WSLQ_CLI_SUBMIT_INT_H
#define WSLQ_CLI_SUBMIT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "cli/client.h"
#include "cli/submit.h"

/* A growable list of malloc'd strings. */
typedef struct {
    char **v;
    size_t n, cap;
} strlist_t;

void submit_strlist_push(strlist_t *l, char *s);
void submit_strlist_free(strlist_t *l);

/* Set "K=V" in an env list, replacing an earlier K. Takes ownership of kv. */
void submit_env_set(strlist_t *l, char *kv);

/* The ids of one dependency type, and singleton. */
typedef struct {
    strlist_t ok, any, notok; /* afterok, afterany, afternotok: ids as text */
    int singleton;
} deps_t;

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

void submit_opts_init(sub_t *o);
void submit_opts_fini(sub_t *o);

/* --export VAR[,VAR...] or ALL: copy from this process's environment into env. A named
 * variable that is not set is skipped, as Slurm does. 0, or -1 with *err. */
int submit_apply_export(strlist_t *env, const char *list, wq_error_t *err);

/* A list's strings moved into a spec's repeated field. */
void submit_take_list(strlist_t *l, char ***v, size_t *n);

/* The ids of a dependency list, as numbers (checked when parsed); NULL when empty. */
uint64_t *submit_dep_ids(const strlist_t *l, size_t *n);

/* Apply the options of argv[1..]: 0 with *rest the index of the command's first word (and
 * *dashdash set when '--' ended the options), 1 for --help, or -1 with *err. */
int submit_apply_argv(cli_ctx_t *ctx,
                      sub_t *o,
                      submit_args_t *a,
                      int argc,
                      char **argv,
                      int *rest,
                      int *dashdash,
                      wq_error_t *err);

/* Apply the words of one #WSLQ line, v[1..argc-1] (v[0] is not looked at): 0, or -1 with
 * *err, which the caller prefixes with the script and line. --help, --wrap and a word that
 * is not an option are refused. */
int
submit_apply_words(cli_ctx_t *ctx, sub_t *o, submit_args_t *a, int argc, char **v, wq_error_t *err);

/* Read a batch script: 1 with its text when 'path' names a regular file here that starts
 * with "#!", 0 when it does not (a program the worker finds), -1 with *err. */
int submit_script_read(const char *path, char **text, size_t *len, wq_error_t *err);

/* Apply the #WSLQ lines at the top of a script (after "#!", before the first line that is
 * neither blank nor a comment): 0, or -1 with *err naming the script and line. A #WSLQ line
 * further down is an error too, as is anything a directive cannot hold. */
int submit_script_options(cli_ctx_t *ctx,
                          const char *path,
                          const char *text,
                          size_t len,
                          sub_t *o,
                          submit_args_t *a,
                          wq_error_t *err);

/* --file: the jobs of a file, one a line (submit_file.c). */
typedef struct {
    char *text;     /* the whole file, its lines cut at '\n' in place */
    char **line;    /* each job's command line, in text */
    size_t *lineno; /* its line number in the file, from 1 */
    size_t n;
} submit_lines_t;

/* Read path ('-': standard input) and check each job it holds as spec with that line for
 * its /bin/sh -c command: empty lines, blank ones and those starting with '#' (after
 * blanks) are skipped, a trailing '\r' is dropped. 0, or -1 with *err naming the file and
 * line ("FILE:7: ...") or what is wrong with the file as a whole (unreadable, over
 * 64 MiB, no job, more than WIRE_MAX_ARRAY_TASKS). */
int submit_lines_read(const char *path, Wslq__JobSpec *spec, submit_lines_t *l, wq_error_t *err);
void submit_lines_free(submit_lines_t *l);

/* Send the jobs of l, spec (a->spec) with each line in turn, over one connection with up
 * to SUBMIT_FILE_WINDOW requests in flight; print each job's id in the order of the lines
 * (or a --json list), and each refusal as "wslq: FILE:LINE: reason" on stderr. CLI_OK when
 * every job was queued, CLI_FAIL otherwise. */
int submit_file(cli_ctx_t *ctx, client_t *c, submit_args_t *a, const submit_lines_t *l);

#endif
