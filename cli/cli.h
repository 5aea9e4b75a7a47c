/* The wslq command-line client: what every command shares.
 *
 * Exit codes: CLI_OK (0) done; CLI_FAIL (1) the request failed (server error, unreachable
 * scheduler, unknown job); CLI_USAGE (2) the command line was wrong. Errors are one line on
 * stderr starting with "wslq: ". */
#ifndef WSLQ_CLI_H
#define WSLQ_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

#define CLI_DEFAULT_SCHEDULER  "tcp://127.0.0.1:7420"
#define CLI_DEFAULT_TIMEOUT_MS 5000

/* Settings every command shares; filled from the config files, the environment, then the
 * flags before and after the verb. */
typedef struct cli_ctx {
    const char *scheduler;        /* ZeroMQ endpoint; argv, environ or conf_scheduler */
    int scheduler_given;          /* by --scheduler or WSLQ_SCHEDULER (else the credentials say) */
    int scheduler_conf;           /* by a config file: over the credentials' address, but root
                                   * without credentials still uses the local admin socket */
    int timeout_ms;               /* ms to wait for each reply */
    const char *verb;             /* the command being run, for usage messages */
    char credentials[4096];       /* our keys: WSLQ_CREDENTIALS, else ~/.config/wslq/credentials */
    const char *admin_socket;     /* the scheduler host's local socket (WSLQ_ADMIN_SOCKET) */
    int admin;                    /* talk to admin_socket (wslq admin), not over TCP */
    int insecure;                 /* WSLQ_INSECURE=yes: no CURVE (an insecure test cluster) */
    char conf_scheduler[4200];    /* storage for 'scheduler' from a config file */
    char conf_admin_socket[4096]; /* storage for the admin socket a config file names */
} cli_ctx_t;

#define CLI_DEFAULT_ADMIN_SOCKET "/var/lib/wslq/scheduler/admin.sock"

/* The machine's config file (WSLQ_SYSTEM_CONFIG names another). */
#define CLI_SYSTEM_CONFIG "/etc/wslq/wslq.conf"

/* Defaults, then the system config file (CLI_SYSTEM_CONFIG, or $WSLQ_SYSTEM_CONFIG), then
 * the user's (cli_conf_user_path), then WSLQ_SCHEDULER, WSLQ_ADMIN_SOCKET, WSLQ_TIMEOUT;
 * the flags come last (opt_common). Returns 0, or -1 with *err when a file is broken
 * ("PATH:LINE: what") or WSLQ_TIMEOUT is not a duration. */
int cli_ctx_init(cli_ctx_t *ctx, wq_error_t *err);

/* The built-in defaults alone, with no file or environment read: what 'wslq VERB --help'
 * runs with. */
void cli_ctx_defaults(cli_ctx_t *ctx);

/* Apply one config file: its [client] section (scheduler, timeout, admin_socket) and, from
 * its [scheduler] section, where the local admin socket is (admin_socket, else
 * state_dir/admin.sock). Other sections are other programs'. A missing file is no error.
 * Returns 0, or -1 with *err naming the file and line of the first bad one. */
int cli_conf_load(cli_ctx_t *ctx, const char *path, wq_error_t *err);

/* The user's config file: $XDG_CONFIG_HOME/wslq/wslq.conf, else
 * $HOME/.config/wslq/wslq.conf; "" when neither variable is an absolute path. */
void cli_conf_user_path(char *buf, size_t n);

/* Parse a request timeout: a bare number is seconds; "500ms", "2s", "1m" also work.
 * 'what' names the source in the error ("--timeout"). */
int cli_parse_timeout(const char *s, const char *what, int *timeout_ms, wq_error_t *err);

/* Print "wslq: <what>; see 'wslq <verb> --help'" and return CLI_USAGE. */
int cli_usage_error(const cli_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print "wslq: <err->text>" and return CLI_FAIL. */
int cli_fail(const wq_error_t *err);

/* Parse a job id ("42"): 0 or -1 with *err. */
int cli_parse_job_id(const char *s, uint64_t *id, wq_error_t *err);

/* Exactly one job id among the operands of show/logs: 0 or -1 with *err. */
int cli_one_job_id(char **operands, int n, uint64_t *id, wq_error_t *err);

/* Login name of the calling user (getpwuid), or the uid as a string when there is no
 * passwd entry. Static storage. */
const char *cli_user_name(const cli_ctx_t *ctx);
/* 1 when the scheduler is reached over its user socket (unix:PATH), which knows us by uid. */
int cli_by_uid(const cli_ctx_t *ctx);

struct cJSON;
/* Print a JSON document (pretty, newline-terminated) to stdout and delete it. Returns
 * CLI_OK, or CLI_FAIL when stdout cannot be written. */
int cli_print_json(struct cJSON *doc);

/* One function per verb: argv[0] is the verb. Each returns an exit code. */
int cmd_submit(cli_ctx_t *ctx, int argc, char **argv);
int cmd_queue(cli_ctx_t *ctx, int argc, char **argv);
int cmd_show(cli_ctx_t *ctx, int argc, char **argv);
int cmd_logs(cli_ctx_t *ctx, int argc, char **argv);
int cmd_cancel(cli_ctx_t *ctx, int argc, char **argv);
int cmd_hold(cli_ctx_t *ctx, int argc, char **argv);
int cmd_release(cli_ctx_t *ctx, int argc, char **argv);
int cmd_requeue(cli_ctx_t *ctx, int argc, char **argv);
int cmd_why(cli_ctx_t *ctx, int argc, char **argv);
int cmd_share(cli_ctx_t *ctx, int argc, char **argv);
int cmd_nodes(cli_ctx_t *ctx, int argc, char **argv);
int cmd_kv(cli_ctx_t *ctx, int argc, char **argv);
int cmd_doctor(cli_ctx_t *ctx, int argc, char **argv);
int cmd_top(cli_ctx_t *ctx, int argc, char **argv);
int cmd_login(cli_ctx_t *ctx, int argc, char **argv);
int cmd_admin(cli_ctx_t *ctx, int argc, char **argv);
int cmd_token(cli_ctx_t *ctx, int argc, char **argv);
int cmd_fetch(cli_ctx_t *ctx, int argc, char **argv);
int cmd_drain(cli_ctx_t *ctx, int argc, char **argv);
int cmd_resume(cli_ctx_t *ctx, int argc, char **argv);
int cmd_history(cli_ctx_t *ctx, int argc, char **argv);
int cmd_usage(cli_ctx_t *ctx, int argc, char **argv);
int cmd_update(cli_ctx_t *ctx, int argc, char **argv);

#endif
