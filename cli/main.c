/* wslq: the command-line client. Reads the global options, then hands the rest of the
 * command line to one cmd_<verb>() function. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/opt.h"
#include "proto/wire.h"

#ifndef WSLQ_VERSION
#define WSLQ_VERSION "unknown"
#endif

static const struct {
    const char *verb;
    int (*run)(cli_ctx_t *ctx, int argc, char **argv);
    const char *summary;
} commands[] = {
    {"submit", cmd_submit, "queue a job: wslq submit [options] -- CMD [ARGS...]"},
    {"queue", cmd_queue, "list pending and running jobs (--all for ended ones too)"},
    {"show", cmd_show, "a job's spec, allocation and every state change"},
    {"logs", cmd_logs, "a job's output (-f to follow)"},
    {"fetch", cmd_fetch, "download the files a job's --output brought back"},
    {"cancel", cmd_cancel, "cancel jobs (42, a whole array 40, array tasks 40_[3-9])"},
    {"hold", cmd_hold, "keep pending jobs from starting until released"},
    {"release", cmd_release, "let held jobs start again"},
    {"requeue", cmd_requeue, "stop running jobs and queue them again (attempt + 1)"},
    {"why", cmd_why, "why a pending job waits, the whole story"},
    {"update", cmd_update, "change a pending job (time, priority, GPUs, name); lower a time"},
    {"history", cmd_history, "ended jobs with wait, run time and GPU-hours (like sacct)"},
    {"usage", cmd_usage, "GPU-hours and CPU-hours per user and per node (like sreport)"},
    {"share", cmd_share, "fair-share: each user's decayed GPU-hours, share and factor"},
    {"nodes", cmd_nodes, "nodes, their CPUs, memory and GPUs"},
    {"top", cmd_top, "live view of nodes, GPUs and the queue (q quits)"},
    {"kv", cmd_kv, "the job's rendezvous key/value store (inside a job)"},
    {"doctor", cmd_doctor, "check this machine as a wslq node"},
    {"login", cmd_login, "enrol with a one-time code from an admin"},
    {"token", cmd_token, "a token for the dashboard and the JSON API"},
    {"admin", cmd_admin, "users, nodes and their codes (scheduler host or admin users)"},
    {"drain", cmd_drain, "place nothing new on a node (--now: requeue its jobs); admins"},
    {"resume", cmd_resume, "let a drained node take jobs again; admins"},
};

static void
print_usage(void)
{
    printf("usage: wslq [--scheduler ADDR] [--timeout SEC] COMMAND [options]\n\nCommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        printf("  %-8s %s\n", commands[i].verb, commands[i].summary);
    printf("\nGlobal options (also accepted after the command):\n"
           "  --scheduler ADDR   scheduler address (env WSLQ_SCHEDULER, default %s)\n"
           "                     unix:PATH: the scheduler host's user socket (by uid, no keys)\n"
           "  --timeout SEC      seconds to wait for each reply (env WSLQ_TIMEOUT, default 5)\n"
           "  --version          print the version\n"
           "\nConfig files: " CLI_SYSTEM_CONFIG " (env WSLQ_SYSTEM_CONFIG names another), then\n"
           "~/.config/wslq/wslq.conf; their [client] section: scheduler, timeout, admin_socket.\n"
           "The environment overrides them, the flags override both.\n"
           "\nEnvironment: WSLQ_CREDENTIALS (your keys, default ~/.config/wslq/credentials,\n"
           "made by 'wslq login'), WSLQ_ADMIN_SOCKET (for 'wslq admin' on the scheduler host),\n"
           "WSLQ_INSECURE=yes (a test cluster started with --insecure).\n"
           "  -h, --help         this text; 'wslq COMMAND --help' for a command\n"
           "\nExit codes: 0 ok, 1 failed (server error, unreachable, not found), 2 usage.\n",
           CLI_DEFAULT_SCHEDULER);
}

enum { O_VERSION = 1 };

/* "wslq 0.1.0 (protocol 1)\n", whole at compile time: no printf at start-up. */
#define STR_(x)      #x
#define STR(x)       STR_(x)
#define VERSION_LINE "wslq " WSLQ_VERSION " (protocol " STR(WIRE_PROTO_CUR) ")\n"

int
main(int argc, char **argv)
{
    /* Writing to a closed pipe (wslq logs 5 | head) is an ordinary end, handled as EPIPE. */
    signal(SIGPIPE, SIG_IGN);

    /* The global options come first, so --version and --help read no file: a flag is
     * parsed into `flags` and applied over the config files and the environment once they
     * are read. A broken config file stops every command but the help and --version, which
     * still say how to use wslq. */
    static cli_ctx_t ctx, flags; /* 12 KiB each: out of the stack, untouched by --version */
    wq_error_t err = {0}, conf_err = {0};
    int timeout_given = 0;

    static const opt_t opts[] = {{"version", 'V', 0, O_VERSION}, OPT_COMMON, {NULL, 0, 0, 0}};
    opt_parser_t p;
    opt_parser_init(&p, argc, argv, 1);
    int id;
    while ((id = opt_next(&p, opts, &err)) > 0) {
        if (id == OPT_HELP) {
            print_usage();
            opt_parser_fini(&p);
            return CLI_OK;
        }
        if (id == O_VERSION) {
            fputs(VERSION_LINE, stdout);
            opt_parser_fini(&p);
            return CLI_OK;
        }
        if (opt_common(&flags, id, p.arg, &err) != 0)
            break;
        timeout_given |= id == OPT_TIMEOUT;
    }
    int rest = p.rest;
    opt_parser_fini(&p);
    if (id != 0)
        return cli_usage_error(NULL, "%s", err.text);
    /* 'wslq VERB --help' and 'wslq help VERB' only print: they run on the defaults and read
     * no file, so a broken config file still lets them say how to use the command */
    int help_only = rest < argc && (strcmp(argv[rest], "help") == 0 ||
                                    (rest + 1 < argc && (strcmp(argv[rest + 1], "--help") == 0 ||
                                                         strcmp(argv[rest + 1], "-h") == 0)));
    if (help_only)
        cli_ctx_defaults(&ctx);
    else if (cli_ctx_init(&ctx, &conf_err) < 0) {
        fprintf(stderr, "wslq: %s\n", conf_err.text);
        return CLI_USAGE;
    }
    if (flags.scheduler_given) {
        ctx.scheduler = flags.scheduler;
        ctx.scheduler_given = 1;
    }
    if (timeout_given)
        ctx.timeout_ms = flags.timeout_ms;
    if (rest >= argc)
        return cli_usage_error(NULL, "no command given");

    const char *verb = argv[rest];
    char *help_argv[3];
    if (strcmp(verb, "help") == 0) {
        if (rest + 1 >= argc) {
            print_usage();
            return CLI_OK;
        }
        help_argv[0] = argv[rest + 1];
        help_argv[1] = "--help";
        help_argv[2] = NULL;
        verb = help_argv[0];
        argv = help_argv;
        argc = 2;
        rest = 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(commands[i].verb, verb) == 0) {
            ctx.verb = commands[i].verb;
            return client_exit(commands[i].run(&ctx, argc - rest, argv + rest));
        }
    }
    return cli_usage_error(NULL, "unknown command '%.40s'", verb);
}
