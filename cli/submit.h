/* wslq submit: the option parser, apart from the sending, so tests can drive it. */
#ifndef WSLQ_CLI_SUBMIT_H
#define WSLQ_CLI_SUBMIT_H

#include "cli/cli.h"
#include "proto/wire.h"

typedef struct {
    Wslq__JobSpec *spec; /* owned: every field malloc'd; free with submit_args_fini */
    int parsable;        /* --parsable: print only the id */
    int json;            /* --json: print {"job_id":N} */
    char *array;         /* --array LIST (checked), NULL = one job; owned */
    int hold;            /* --hold: held until `wslq release` */
    char *workdir;       /* --workdir DIR: packed and uploaded before sending; owned */
    char *file;          /* --file FILE: one job per line ('-': stdin), each line the
                          * spec's argv[2] (/bin/sh -c LINE) in turn; owned */
} submit_args_t;

/* --workdir, --chdir and --output checked together (snapshot.c): with a workdir, *workdir is
 * its absolute path and spec->workdir_hash a placeholder the upload replaces; --output set in
 * spec->output_dir. 0, or -1 with *err. */
int submit_workdir_opts(const char *workdir,
                        const char *chdir_opt,
                        const char *output,
                        Wslq__JobSpec *spec,
                        char **workdir_out,
                        wq_error_t *err);

/* Parse "submit [options] [--] CMD [ARGS...]" (argv[0] = "submit") into a checked spec.
 * Returns 0, 1 when --help was given (nothing else filled), or -1 with *err holding the one
 * line to show (a usage error). Reads the environment (--export), the current directory
 * and the user's passwd entry. */
int submit_parse(cli_ctx_t *ctx, int argc, char **argv, submit_args_t *a, wq_error_t *err);

/* Free what submit_parse filled. Safe on a zeroed or already freed struct. */
void submit_args_fini(submit_args_t *a);

/* Variables --export ALL does not copy besides proto/jobspec.h's jobspec_rank_vars (which the
 * worker sets for each rank, DESIGN.md §6): they describe the submitting shell only.
 * NULL-terminated. */
extern const char *const submit_export_skip[];

#endif
