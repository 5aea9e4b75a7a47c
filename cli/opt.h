/* A small command-line option parser with exact one-line errors.
 *
 * Accepts "--long", "--long=value", "--long value", "-x", "-x value", "-xvalue". "--" ends
 * the options. In 'stop_at_operand' mode (wslq submit) the first operand also ends them, so
 * "wslq submit --gpus 1 python3 -V" passes "-V" to the job; otherwise operands and options
 * may be mixed ("wslq show 5 --json") and operands are collected in order. */
#ifndef WSLQ_CLI_OPT_H
#define WSLQ_CLI_OPT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct {
    const char *long_name; /* without "--"; NULL ends a table */
    char short_name;       /* 0 = none */
    int has_arg;           /* 1 = takes a value */
    int id;                /* > 0, returned by opt_next */
} opt_t;

typedef struct {
    int argc;
    char **argv;         /* not owned */
    int next;            /* index of the next word to look at */
    int stop_at_operand; /* see above */
    int done;            /* options ended */
    int dashdash;        /* they ended at "--" */
    const char *arg;     /* the value of the option just returned, or NULL */
    const char *name;    /* how the option just returned was spelled ("--gpus", "-J") */
    char name_buf[64];
    char **operands; /* operands in order; owned, freed by opt_parser_fini */
    int n_operands;
    int rest; /* stop_at_operand: index of the first word after the options */
} opt_parser_t;

/* Start parsing argv[1..argc-1] (argv[0] is the verb). */
void opt_parser_init(opt_parser_t *p, int argc, char **argv, int stop_at_operand);
void opt_parser_fini(opt_parser_t *p);

/* Next option: its id, 0 when the options are over, -1 with *err for an unknown option,
 * a missing value, or a value given to a flag. */
int opt_next(opt_parser_t *p, const opt_t *opts, wq_error_t *err);

/* Common options every command takes; their ids and table rows. */
enum { OPT_HELP = 1000, OPT_SCHEDULER, OPT_TIMEOUT };
#define OPT_COMMON                                                  \
    {"help", 'h', 0, OPT_HELP}, {"scheduler", 0, 1, OPT_SCHEDULER}, \
    {                                                               \
        "timeout", 0, 1, OPT_TIMEOUT                                \
    }

struct cli_ctx;
/* Apply a common option (--scheduler, --timeout) to ctx: 0, or -1 with *err. Returns 1 when
 * 'id' is not a common option. */
int opt_common(struct cli_ctx *ctx, int id, const char *arg, wq_error_t *err);

/* The option loop of a command with the common options and at most one switch of its own
 * ('flag_id' sets *flag; 0: none). Returns 0 at the operands (in p), 1 when --help was asked
 * for (usage printed to stdout), -1 with *err. The caller finishes p (opt_parser_fini). */
int opt_flag_loop(struct cli_ctx *ctx,
                  opt_parser_t *p,
                  const opt_t *opts,
                  int flag_id,
                  const char *usage,
                  int *flag,
                  wq_error_t *err);

/* Arguments of a command that takes one job id and at most one switch (`show --json`,
 * `logs -f`): *flag is set when option 'flag_id' is given. Returns -1 when the caller goes
 * on, or the exit code to return now (--help printed: CLI_OK; a usage error printed). */
int opt_job_command(struct cli_ctx *ctx,
                    int argc,
                    char **argv,
                    const opt_t *opts,
                    int flag_id,
                    const char *usage,
                    int *flag,
                    uint64_t *job);

/* The one operand of a command that takes one job named by a selector (42 or an array task
 * 40_7, not a range), copied to sel (size bytes): 0, or -1 with *err; 'verb' names the
 * command in the error for a selector of several jobs. */
int opt_one_job_selector(
    const opt_parser_t *p, const char *verb, char *sel, size_t size, wq_error_t *err);

/* The same for a command that takes one job named by a selector (42 or an array task 40_7,
 * not a range): the selector is copied to sel (size bytes); 'verb' names the command in the
 * error for a selector of several jobs. */
int opt_one_job_command(struct cli_ctx *ctx,
                        int argc,
                        char **argv,
                        const opt_t *opts,
                        int flag_id,
                        const char *usage,
                        const char *verb,
                        int *flag,
                        char *sel,
                        size_t size);

#endif
