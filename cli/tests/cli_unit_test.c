/* wslq client: option parser, submit parser (every flag and every rejection), tables, JSON. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* after the standard headers */
#include <cmocka.h>

#include "cli/cli.h"
#include "cli/opt.h"
#include "cli/print.h"
#include "cli/submit.h"
#include "cli/table.h"
#include "proto/json.h"

#define ARGC(a) ((int) (sizeof(a) / sizeof((a)[0])))

static cli_ctx_t
ctx_default(void)
{
    cli_ctx_t c = {
        .scheduler = CLI_DEFAULT_SCHEDULER, .timeout_ms = CLI_DEFAULT_TIMEOUT_MS, .verb = "submit"};
    return c;
}

/* ---- option parser ---- */

static void
test_opt_mixed_operands(void **state)
{
    (void) state;
    static const opt_t opts[] = {
        {"json", 0, 0, 1}, {"name", 'J', 1, 2}, OPT_COMMON, {NULL, 0, 0, 0}};
    char *argv[] = {"show", "5", "--json", "-Jx", "--name=y", "--", "--json"};
    opt_parser_t p;
    wq_error_t err = {0};
    opt_parser_init(&p, ARGC(argv), argv, 0);
    assert_int_equal(opt_next(&p, opts, &err), 1);
    assert_int_equal(opt_next(&p, opts, &err), 2);
    assert_string_equal(p.arg, "x");
    assert_int_equal(opt_next(&p, opts, &err), 2);
    assert_string_equal(p.arg, "y");
    assert_int_equal(opt_next(&p, opts, &err), 0);
    assert_int_equal(p.n_operands, 2);
    assert_string_equal(p.operands[0], "5");
    assert_string_equal(p.operands[1], "--json");
    opt_parser_fini(&p);
}

static void
expect_opt_error(char **argv, int argc, const char *text)
{
    static const opt_t opts[] = {
        {"json", 'j', 0, 1}, {"name", 'J', 1, 2}, OPT_COMMON, {NULL, 0, 0, 0}};
    opt_parser_t p;
    wq_error_t err = {0};
    opt_parser_init(&p, argc, argv, 0);
    int id;
    while ((id = opt_next(&p, opts, &err)) > 0)
        ;
    assert_int_equal(id, -1);
    assert_string_equal(err.text, text);
    opt_parser_fini(&p);
}

static void
test_opt_errors(void **state)
{
    (void) state;
    char *a[] = {"x", "--nope"};
    expect_opt_error(a, 2, "unknown option '--nope'");
    char *b[] = {"x", "--name"};
    expect_opt_error(b, 2, "option '--name' needs a value");
    char *c[] = {"x", "--json=1"};
    expect_opt_error(c, 2, "option '--json' takes no value");
    char *d[] = {"x", "-q"};
    expect_opt_error(d, 2, "unknown option '-q'");
    char *e[] = {"x", "-jx"};
    expect_opt_error(e, 2, "unknown option '-jx'");
    char *f[] = {"x", "-J"};
    expect_opt_error(f, 2, "option '-J' needs a value");
}

static void
test_timeout_parse(void **state)
{
    (void) state;
    int ms = 0;
    wq_error_t err = {0};
    assert_int_equal(cli_parse_timeout("5", "--timeout", &ms, &err), 0);
    assert_int_equal(ms, 5000);
    assert_int_equal(cli_parse_timeout("250ms", "--timeout", &ms, &err), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(cli_parse_timeout("2m", "--timeout", &ms, &err), 0);
    assert_int_equal(ms, 120000);
    assert_int_equal(cli_parse_timeout("0", "--timeout", &ms, &err), -1);
    assert_string_equal(err.text, "--timeout: '0' is out of range (1ms..1h)");
    assert_int_equal(cli_parse_timeout("x", "--timeout", &ms, &err), -1);
    assert_string_equal(err.text,
                        "--timeout: 'x' is not a timeout; use seconds, e.g. 5, 500ms, 2m");
}

/* ---- config files ---- */

static char conf_dir[64];

static void
write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A fresh environment: the system file and HOME in a temporary directory, no WSLQ_*. */
static void
conf_env(const char *sys_text, const char *user_text)
{
    char path[256];
    if (conf_dir[0] == '\0') {
        snprintf(conf_dir, sizeof conf_dir, "/tmp/wslq-cli-conf-XXXXXX");
        assert_non_null(mkdtemp(conf_dir));
        snprintf(path, sizeof path, "%s/home/.config/wslq", conf_dir);
        char cmd[512];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
        assert_int_equal(system(cmd), 0);
    }
    snprintf(path, sizeof path, "%s/system.conf", conf_dir);
    unlink(path);
    if (sys_text != NULL)
        write_text(path, sys_text);
    setenv("WSLQ_SYSTEM_CONFIG", path, 1);
    snprintf(path, sizeof path, "%s/home/.config/wslq/wslq.conf", conf_dir);
    unlink(path);
    if (user_text != NULL)
        write_text(path, user_text);
    snprintf(path, sizeof path, "%s/home", conf_dir);
    setenv("HOME", path, 1);
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("WSLQ_SCHEDULER");
    unsetenv("WSLQ_TIMEOUT");
    unsetenv("WSLQ_ADMIN_SOCKET");
}

static void
test_conf_precedence(void **state)
{
    (void) state;
    cli_ctx_t c;
    wq_error_t err = {0};

    /* no files: the defaults, and the credentials say where the scheduler is */
    conf_env(NULL, NULL);
    assert_int_equal(cli_ctx_init(&c, &err), 0);
    assert_string_equal(c.scheduler, CLI_DEFAULT_SCHEDULER);
    assert_int_equal(c.scheduler_given, 0);
    assert_int_equal(c.scheduler_conf, 0);
    assert_int_equal(c.timeout_ms, CLI_DEFAULT_TIMEOUT_MS);
    assert_string_equal(c.admin_socket, CLI_DEFAULT_ADMIN_SOCKET);

    /* the system file alone; other programs' sections and keys are theirs */
    const char *sys = "[scheduler]\nlisten = tcp://0.0.0.0:7420\nhttp = eth0:7421\n"
                      "[worker]\nname = pc7\n"
                      "[client]\nscheduler = tcp://sched.lab:7420\ntimeout = 7s\n";
    conf_env(sys, NULL);
    assert_int_equal(cli_ctx_init(&c, &err), 0);
    assert_string_equal(c.scheduler, "tcp://sched.lab:7420");
    assert_int_equal(c.scheduler_given, 0);
    assert_int_equal(c.scheduler_conf, 1);
    assert_int_equal(c.timeout_ms, 7000);

    /* the user's file over the system's, key by key */
    conf_env(sys, "[client]\nscheduler = tcp://10.0.0.5:7420\n");
    assert_int_equal(cli_ctx_init(&c, &err), 0);
    assert_string_equal(c.scheduler, "tcp://10.0.0.5:7420");
    assert_int_equal(c.timeout_ms, 7000);

    /* XDG_CONFIG_HOME moves the user's file */
    char xdg[128];
    snprintf(xdg, sizeof xdg, "%s/home/.config", conf_dir);
    setenv("XDG_CONFIG_HOME", xdg, 1);
    assert_int_equal(cli_ctx_init(&c, &err), 0);
    assert_string_equal(c.scheduler, "tcp://10.0.0.5:7420");
    snprintf(xdg, sizeof xdg, "%s/nowhere", conf_dir);
    setenv("XDG_CONFIG_HOME", xdg, 1);
    assert_int_equal(cli_ctx_init(&c, &err), 0);
    assert_string_equal(c.scheduler, "tcp://sched.lab:7420");
    unsetenv("XDG_CONFIG_HOME");

    /* the environment over both files */
    setenv("WSLQ_SCHEDULER", "tcp://env:1", 1);
    setenv("WSLQ_TIMEOUT", "2", 1);
    assert_int_equal(cli_ctx_init(&c, &err), 0);
    assert_string_equal(c.scheduler, "tcp://env:1");
    assert_int_equal(c.scheduler_given, 1);
    assert_int_equal(c.timeout_ms, 2000);

    /* the flags over everything */
    assert_int_equal(opt_common(&c, OPT_SCHEDULER, "tcp://flag:2", &err), 0);
    assert_int_equal(opt_common(&c, OPT_TIMEOUT, "300ms", &err), 0);
    assert_string_equal(c.scheduler, "tcp://flag:2");
    assert_int_equal(c.timeout_ms, 300);
    unsetenv("WSLQ_SCHEDULER");
    unsetenv("WSLQ_TIMEOUT");
}

static void
test_conf_admin_socket(void **state)
{
    (void) state;
    cli_ctx_t c;
    wq_error_t err = {0};
    /* the scheduler host: its state directory says where the admin socket is */
    conf_env("[scheduler]\nstate_dir = /srv/wslq\n", NULL);
    assert_int_equal(cli_ctx_init(&c, &err), 0);
    assert_string_equal(c.admin_socket, "/srv/wslq/admin.sock");
    /* ... unless the scheduler's own admin_socket names it */
    conf_env("[scheduler]\nadmin_socket = /run/wq.sock\nstate_dir = /srv/wslq\n", NULL);
    assert_int_equal(cli_ctx_init(&c, &err), 0);
    assert_string_equal(c.admin_socket, "/run/wq.sock");
    /* [client] admin_socket, the user's file, and WSLQ_ADMIN_SOCKET in that order */
    conf_env("[scheduler]\nstate_dir = /srv/wslq\n[client]\nadmin_socket = /a.sock\n",
             "[client]\nadmin_socket = /b.sock\n");
    assert_int_equal(cli_ctx_init(&c, &err), 0);
    assert_string_equal(c.admin_socket, "/b.sock");
    setenv("WSLQ_ADMIN_SOCKET", "/c.sock", 1);
    assert_int_equal(cli_ctx_init(&c, &err), 0);
    assert_string_equal(c.admin_socket, "/c.sock");
    unsetenv("WSLQ_ADMIN_SOCKET");
}

/* A broken file: one line naming the file and the line. */
static void
expect_conf_error(const char *sys, const char *user, const char *which, const char *tail)
{
    cli_ctx_t c;
    wq_error_t err = {0};
    conf_env(sys, user);
    assert_int_equal(cli_ctx_init(&c, &err), -1);
    char want[512];
    snprintf(want, sizeof want, "%s%s%s", conf_dir, which, tail);
    assert_string_equal(err.text, want);
    assert_null(strchr(err.text, '\n'));
}

static void
test_conf_errors(void **state)
{
    (void) state;
    expect_conf_error("[client]\nscheduler = tcp://a:1\nschedular = tcp://b:1\n", NULL,
                      "/system.conf",
                      ":3: unknown key 'schedular' in [client] (scheduler, timeout, admin_socket)");
    expect_conf_error("# lab\n[client\nscheduler = tcp://a:1\n", NULL, "/system.conf",
                      ":2: syntax error");
    expect_conf_error(NULL, "[client]\n\ntimeout = soon\n", "/home/.config/wslq/wslq.conf",
                      ":3: timeout: 'soon' is not a timeout; use seconds, e.g. 5, 500ms, 2m");
    expect_conf_error(
        NULL, "[client]\nscheduler = sched.lab:7420\n", "/home/.config/wslq/wslq.conf",
        ":2: scheduler: 'sched.lab:7420' is not tcp://HOST:PORT, unix:PATH or ipc://PATH");
    expect_conf_error("[client]\nadmin_socket =\n", NULL, "/system.conf",
                      ":2: admin_socket: empty value");
    expect_conf_error("[client]\ntimeout = 0\n", "[client]\ntimeout = 3\n", "/system.conf",
                      ":2: timeout: '0' is out of range (1ms..1h)");
    /* a good system file and a broken user file: the user's is named */
    expect_conf_error("[client]\ntimeout = 3\n", "[client]\nbogus = 1\n",
                      "/home/.config/wslq/wslq.conf",
                      ":2: unknown key 'bogus' in [client] (scheduler, timeout, admin_socket)");
}

/* ---- submit ---- */

static void
test_submit_every_flag(void **state)
{
    (void) state;
    cli_ctx_t ctx = ctx_default();
    char *argv[] = {"submit",
                    "-J",
                    "train",
                    "--nodes",
                    "2",
                    "--gpus-per-node",
                    "2",
                    "--ranks-per-node",
                    "4",
                    "--cpus",
                    "8",
                    "--mem",
                    "16G",
                    "-t",
                    "1:30:00",
                    "--priority",
                    "-5",
                    "--retries",
                    "3",
                    "--requeue-on-fail",
                    "--dependency",
                    "afterok:3:4",
                    "-d",
                    "afterok:9,afterany:5,singleton",
                    "-d",
                    "afternotok:6:7",
                    "--array",
                    "0-9%2",
                    "--hold",
                    "--env",
                    "A=1",
                    "--env",
                    "B=x=y",
                    "-D",
                    "/data/run",
                    "--scheduler",
                    "tcp://h:1",
                    "--timeout",
                    "2",
                    "--json",
                    "--",
                    "python3",
                    "train.py",
                    "--lr",
                    "0.1"};
    submit_args_t a;
    wq_error_t err = {0};
    assert_int_equal(submit_parse(&ctx, ARGC(argv), argv, &a, &err), 0);
    const Wslq__JobSpec *s = a.spec;
    assert_string_equal(s->name, "train");
    assert_int_equal(s->nodes, 2);
    assert_int_equal(s->gpus_per_node, 2);
    assert_int_equal(s->ranks_per_node, 4);
    assert_int_equal(s->cpus_per_node, 8);
    assert_int_equal(s->mem_mb_per_node, 16384);
    assert_int_equal(s->time_limit_s, 5400);
    assert_int_equal(s->priority, -5);
    assert_int_equal(s->retries, 3);
    assert_true(s->requeue_on_fail);
    assert_int_equal(s->n_depends_on, 3);
    assert_int_equal(s->depends_on[0], 3);
    assert_int_equal(s->depends_on[1], 4);
    assert_int_equal(s->depends_on[2], 9);
    assert_int_equal(s->n_after_any, 1);
    assert_int_equal(s->after_any[0], 5);
    assert_int_equal(s->n_after_notok, 2);
    assert_int_equal(s->after_notok[1], 7);
    assert_true(s->singleton);
    assert_string_equal(a.array, "0-9%2");
    assert_true(a.hold);
    assert_int_equal(s->n_env, 2);
    assert_string_equal(s->env[0], "A=1");
    assert_string_equal(s->env[1], "B=x=y");
    assert_string_equal(s->cwd, "/data/run");
    assert_int_equal(s->n_argv, 4);
    assert_string_equal(s->argv[0], "python3");
    assert_string_equal(s->argv[3], "0.1");
    assert_false(s->wrap);
    assert_false(s->per_node);
    assert_string_equal(s->user, cli_user_name(&ctx));
    assert_int_equal(s->uid, getuid());
    assert_true(a.json);
    assert_false(a.parsable);
    assert_string_equal(ctx.scheduler, "tcp://h:1");
    assert_int_equal(ctx.timeout_ms, 2000);
    submit_args_fini(&a);
    assert_null(a.spec);
    assert_null(a.array);
}

static void
test_submit_defaults_and_operand_stop(void **state)
{
    (void) state;
    cli_ctx_t ctx = ctx_default();
    /* Options end at the first operand: "-V" belongs to the job. */
    char *argv[] = {"submit", "--gpus", "2", "--parsable", "/usr/bin/python3", "-V", "--gpus"};
    submit_args_t a;
    wq_error_t err = {0};
    assert_int_equal(submit_parse(&ctx, ARGC(argv), argv, &a, &err), 0);
    const Wslq__JobSpec *s = a.spec;
    assert_int_equal(s->nodes, 1);
    assert_int_equal(s->gpus_per_node, 2);
    assert_int_equal(s->ranks_per_node, 0);
    assert_int_equal(s->cpus_per_node, 0);
    assert_int_equal(s->time_limit_s, 0);
    assert_string_equal(s->name, "python3");
    assert_int_equal(s->n_argv, 3);
    assert_string_equal(s->argv[1], "-V");
    assert_string_equal(s->argv[2], "--gpus");
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_string_equal(s->cwd, cwd);
    assert_true(a.parsable);
    submit_args_fini(&a);
}

/* --nodelist, --exclude, --constraint: comma lists, repeatable, duplicates dropped. */
static void
test_submit_node_choice(void **state)
{
    (void) state;
    cli_ctx_t ctx = ctx_default();
    char *argv[] = {"submit", "-w",           "pc1,pc2", "--nodelist", "pc2,pc3",    "-x",
                    "pc7",    "--constraint", "ampere",  "-C",         "48g,ampere", "ls"};
    submit_args_t a;
    wq_error_t err = {0};
    assert_int_equal(submit_parse(&ctx, ARGC(argv), argv, &a, &err), 0);
    const Wslq__JobSpec *s = a.spec;
    assert_int_equal(s->n_nodelist, 3);
    assert_string_equal(s->nodelist[0], "pc1");
    assert_string_equal(s->nodelist[2], "pc3");
    assert_int_equal(s->n_exclude, 1);
    assert_string_equal(s->exclude[0], "pc7");
    assert_int_equal(s->n_constraints, 2);
    assert_string_equal(s->constraints[0], "ampere");
    assert_string_equal(s->constraints[1], "48g");
    submit_args_fini(&a);
}

static void
test_submit_wrap_and_per_node(void **state)
{
    (void) state;
    cli_ctx_t ctx = ctx_default();
    char *argv[] = {"submit", "--wrap", "echo $X; sleep 1", "--per-node", "-N", "3", "-D", "sub"};
    submit_args_t a;
    wq_error_t err = {0};
    assert_int_equal(submit_parse(&ctx, ARGC(argv), argv, &a, &err), 0);
    const Wslq__JobSpec *s = a.spec;
    assert_true(s->wrap);
    assert_int_equal(s->n_argv, 3);
    assert_string_equal(s->argv[0], "/bin/sh");
    assert_string_equal(s->argv[1], "-c");
    assert_string_equal(s->argv[2], "echo $X; sleep 1");
    assert_string_equal(s->name, "wrap");
    assert_true(s->per_node);
    assert_int_equal(s->ranks_per_node, 1);
    assert_int_equal(s->nodes, 3);
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    char want[4200];
    snprintf(want, sizeof want, "%s/sub", strcmp(cwd, "/") == 0 ? "" : cwd);
    assert_string_equal(s->cwd, want);
    submit_args_fini(&a);
}

static void
test_submit_export(void **state)
{
    (void) state;
    cli_ctx_t ctx = ctx_default();
    setenv("WSLQ_T_ONE", "1", 1);
    setenv("WSLQ_T_TWO", "two", 1);
    unsetenv("WSLQ_T_MISSING");
    setenv("CUDA_VISIBLE_DEVICES", "0", 1);
    char *argv[] = {"submit",
                    "--export",
                    "WSLQ_T_ONE,WSLQ_T_MISSING",
                    "--env",
                    "WSLQ_T_ONE=override",
                    "--export",
                    "WSLQ_T_TWO",
                    "true"};
    submit_args_t a;
    wq_error_t err = {0};
    assert_int_equal(submit_parse(&ctx, ARGC(argv), argv, &a, &err), 0);
    const Wslq__JobSpec *s = a.spec;
    /* Exports first, then --env values replace them; unset names are skipped. */
    assert_int_equal(s->n_env, 2);
    assert_string_equal(s->env[0], "WSLQ_T_ONE=override");
    assert_string_equal(s->env[1], "WSLQ_T_TWO=two");
    submit_args_fini(&a);

    char *all[] = {"submit", "--export", "ALL", "true"};
    assert_int_equal(submit_parse(&ctx, ARGC(all), all, &a, &err), 0);
    int one = 0, cuda = 0;
    for (size_t i = 0; i < a.spec->n_env; i++) {
        one |= strcmp(a.spec->env[i], "WSLQ_T_ONE=1") == 0;
        cuda |= strncmp(a.spec->env[i], "CUDA_VISIBLE_DEVICES=", 21) == 0;
    }
    assert_true(one);
    assert_false(cuda); /* the worker sets it per rank */
    submit_args_fini(&a);
}

static void
test_submit_secret_env(void **state)
{
    (void) state;
    cli_ctx_t ctx = ctx_default();
    setenv("WSLQ_T_TOKEN", "s3cret", 1);
    unsetenv("WSLQ_T_UNSET");
    char *argv[] = {"submit",       "--secret-env", "WSLQ_T_TOKEN", "--secret-env", "API_KEY=abc",
                    "--secret-env", "API_KEY=xyz",  "--env",        "PLAIN=1",      "true"};
    submit_args_t a;
    wq_error_t err = {0};
    assert_int_equal(submit_parse(&ctx, ARGC(argv), argv, &a, &err), 0);
    const Wslq__JobSpec *s = a.spec;
    /* secrets travel apart from env, the later value of a name wins */
    assert_int_equal(s->n_secret_env, 2);
    assert_string_equal(s->secret_env[0], "WSLQ_T_TOKEN=s3cret");
    assert_string_equal(s->secret_env[1], "API_KEY=xyz");
    assert_int_equal(s->n_env, 1);
    assert_string_equal(s->env[0], "PLAIN=1");
    submit_args_fini(&a);

    char *unset[] = {"submit", "--secret-env", "WSLQ_T_UNSET", "true"};
    assert_int_equal(submit_parse(&ctx, ARGC(unset), unset, &a, &err), -1);
    assert_string_equal(err.text, "--secret-env: WSLQ_T_UNSET is not set in this shell");
    char *bad[] = {"submit", "--secret-env", "1BAD=x", "true"};
    assert_int_equal(submit_parse(&ctx, ARGC(bad), bad, &a, &err), -1);
    assert_string_equal(err.text, "--secret-env: '1BAD' is not a variable name");
    assert_null(a.spec);
}

static void
expect_submit_error(char **argv, int argc, const char *text)
{
    cli_ctx_t ctx = ctx_default();
    submit_args_t a;
    wq_error_t err = {0};
    assert_int_equal(submit_parse(&ctx, argc, argv, &a, &err), -1);
    if (strcmp(err.text, text) != 0)
        fail_msg("got '%s', want '%s'", err.text, text);
    assert_null(a.spec);
}

#define SUBMIT_ERR(text, ...)                    \
    do {                                         \
        char *v_[] = {"submit", __VA_ARGS__};    \
        expect_submit_error(v_, ARGC(v_), text); \
    } while (0)

static void
test_submit_rejections(void **state)
{
    (void) state;
    SUBMIT_ERR("no command given; use 'wslq submit [options] -- CMD [ARGS...]' or --wrap 'shell "
               "line'",
               "--gpus", "1");
    SUBMIT_ERR("--wrap and a command ('ls') cannot be used together", "--wrap", "x", "ls");
    SUBMIT_ERR("--wrap: empty command line", "--wrap", "");
    SUBMIT_ERR("--gpus: 'two' is not a whole number", "--gpus", "two", "ls");
    SUBMIT_ERR("--gpus: 65 is out of range (0..64)", "--gpus", "65", "ls");
    SUBMIT_ERR("--gpus: -1 is out of range (0..64)", "--gpus", "-1", "ls");
    SUBMIT_ERR("--nodes: 0 is out of range (1..256)", "--nodes", "0", "ls");
    SUBMIT_ERR("--gpus and --gpus-per-node cannot be used together; --gpus is the total on one "
               "node",
               "--gpus", "1", "--gpus-per-node", "1", "ls");
    SUBMIT_ERR("--gpus is the total on one node; with --nodes 2 use --gpus-per-node", "--nodes",
               "2", "--gpus", "4", "ls");
    SUBMIT_ERR("--per-node and --ranks-per-node 2 cannot be used together", "--per-node",
               "--ranks-per-node", "2", "ls");
    SUBMIT_ERR("--ranks-per-node: 0 is out of range (1..256)", "--ranks-per-node", "0", "ls");
    SUBMIT_ERR("--cpus: 0 is out of range (1..65536)", "--cpus", "0", "ls");
    SUBMIT_ERR("--mem: '4X' is not a size; use e.g. 512M or 4G", "--mem", "4X", "ls");
    SUBMIT_ERR("--time: 'soon' is not a duration; use e.g. 90s, 10m, 2h, 1:30:00, 1-00:00:00", "-t",
               "soon", "ls");
    SUBMIT_ERR("--priority: 'high' is not a whole number", "--priority", "high", "ls");
    SUBMIT_ERR("--retries: 101 is out of range (0..100)", "--retries", "101", "ls");
    SUBMIT_ERR("--dependency: 'after:3' is not supported; use afterok:ID, afterany:ID, "
               "afternotok:ID (each with :ID... for more) or singleton",
               "--dependency", "after:3", "ls");
    SUBMIT_ERR("--dependency: 'afternotok' names no job; use afternotok:ID", "--dependency",
               "afternotok", "ls");
    SUBMIT_ERR("--dependency: 'singleton:3' is not supported; use afterok:ID, afterany:ID, "
               "afternotok:ID (each with :ID... for more) or singleton",
               "--dependency", "singleton:3", "ls");
    SUBMIT_ERR("--dependency: 'x' is not a job id", "--dependency", "afterok:x", "ls");
    SUBMIT_ERR("--constraint: 'a b' is not a tag (letters, digits, _ . -)", "-C", "a b", "ls");
    SUBMIT_ERR("--constraint: empty list", "--constraint", ",", "ls");
    SUBMIT_ERR("--nodelist: 'p c' is not a node name", "--nodelist", "p c", "ls");
    SUBMIT_ERR("pc1 is in both --nodelist and --exclude", "-w", "pc1", "-x", "pc2,pc1", "ls");
    SUBMIT_ERR("--dependency: 'afterok' names no job; use afterok:ID", "--dependency",
               "afterok:", "ls");
    SUBMIT_ERR("--dependency: '0' is not a job id", "--dependency", "afterok:0", "ls");
    SUBMIT_ERR("--array: array range 9-3 runs backwards", "--array", "9-3", "ls");
    SUBMIT_ERR("--array: '0-100000' names more than 100000 array tasks", "--array", "0-100000",
               "ls");
    SUBMIT_ERR("--array: '1%0': %K takes how many tasks may run at once, 1..100000", "--array",
               "1%0", "ls");
    SUBMIT_ERR("--env: 'NOEQUALS' is not of the form NAME=VALUE", "--env", "NOEQUALS", "ls");
    SUBMIT_ERR("--env: '=v' is not of the form NAME=VALUE", "--env", "=v", "ls");
    SUBMIT_ERR("--env: '1A=v' is not of the form NAME=VALUE", "--env", "1A=v", "ls");
    SUBMIT_ERR("--export: 'A B' is not a variable name", "--export", "A B", "ls");
    SUBMIT_ERR("--chdir: empty directory", "-D", "", "ls");
    SUBMIT_ERR("unknown option '--gpu'", "--gpu", "1", "ls");
    SUBMIT_ERR("option '--mem' needs a value", "--mem");
    /* wire_validate_spec's own reasons come through unchanged. */
    SUBMIT_ERR("argv[0] (the program) is empty", "--", "");
    SUBMIT_ERR("job name contains a control character", "-J", "a\nb", "ls");
}

static void
test_submit_help(void **state)
{
    (void) state;
    cli_ctx_t ctx = ctx_default();
    char *argv[] = {"submit", "--gpus", "1", "--help"};
    submit_args_t a;
    wq_error_t err = {0};
    assert_int_equal(submit_parse(&ctx, ARGC(argv), argv, &a, &err), 1);
    assert_null(a.spec);
}

/* ---- batch scripts ---- */

/* Write a script into a fresh temporary directory; returns its path (static). */
static const char *
write_script(const char *text)
{
    static char dir[64], path[128];
    snprintf(dir, sizeof dir, "/tmp/wslq-cli-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/train.sh", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void
remove_script(const char *path)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s", path);
    unlink(path);
    *strrchr(dir, '/') = '\0';
    rmdir(dir);
}

static void
test_submit_script(void **state)
{
    (void) state;
    static const char text[] = "#!/bin/bash\n"
                               "# a comment\n"
                               "#WSLQ --gpus 2 --time 4h -J 'my run'\n"
                               "\n"
                               "#WSLQ --env A=1 --priority=5   # why: it is urgent\n"
                               "#WSLQ --env \"B=two words\"\n"
                               "echo hello \"$@\"\n";
    const char *path = write_script(text);
    cli_ctx_t ctx = ctx_default();
    /* the command line wins over the script's --time and --priority */
    char *argv[] = {"submit", "-t", "10m", "--priority", "7", (char *) path, "x", "y"};
    submit_args_t a;
    wq_error_t err = {0};
    assert_int_equal(submit_parse(&ctx, ARGC(argv), argv, &a, &err), 0);
    Wslq__JobSpec *s = a.spec;
    assert_int_equal(s->gpus_per_node, 2);
    assert_int_equal(s->time_limit_s, 600);
    assert_int_equal(s->priority, 7);
    assert_string_equal(s->name, "my run");
    assert_int_equal(s->n_env, 2);
    assert_string_equal(s->env[0], "A=1");
    assert_string_equal(s->env[1], "B=two words");
    assert_int_equal(s->n_argv, 3);
    assert_string_equal(s->argv[0], path);
    assert_string_equal(s->argv[2], "y");
    assert_int_equal(s->script.len, strlen(text));
    assert_memory_equal(s->script.data, text, strlen(text));
    submit_args_fini(&a);

    /* after '--' the same file is a program the worker runs by its path */
    char *plain[] = {"submit", "--", (char *) path};
    assert_int_equal(submit_parse(&ctx, ARGC(plain), plain, &a, &err), 0);
    assert_int_equal(a.spec->script.len, 0);
    assert_int_equal(a.spec->gpus_per_node, 0);
    submit_args_fini(&a);
    remove_script(path);

    /* a program that is not a file here, and a file without "#!", are not scripts */
    char *prog[] = {"submit", "/bin/true"};
    assert_int_equal(submit_parse(&ctx, ARGC(prog), prog, &a, &err), 0);
    assert_int_equal(a.spec->script.len, 0);
    submit_args_fini(&a);
}

static void
expect_script_error(const char *text, const char *want)
{
    const char *path = write_script(text);
    cli_ctx_t ctx = ctx_default();
    char *argv[] = {"submit", (char *) path};
    submit_args_t a;
    wq_error_t err = {0};
    assert_int_equal(submit_parse(&ctx, ARGC(argv), argv, &a, &err), -1);
    char full[512];
    snprintf(full, sizeof full, "%s%s", path, want);
    if (strcmp(err.text, full) != 0)
        fail_msg("got '%s', want '%s'", err.text, full);
    assert_null(a.spec);
    remove_script(path);
}

static void
test_submit_script_errors(void **state)
{
    (void) state;
    expect_script_error("#!/bin/sh\n#WSLQ --gpuz 2\n", ":2: unknown option '--gpuz'");
    expect_script_error("#!/bin/sh\n\n#WSLQ --gpus two\n",
                        ":3: --gpus: 'two' is not a whole number");
    expect_script_error("#!/bin/sh\n#WSLQ --gpus 1\necho hi\n#WSLQ --time 1h\n",
                        ":4: #WSLQ after the first command (line 3) would be ignored; move it "
                        "above");
    expect_script_error("#!/bin/sh\n#WSLQ --name 'x\n", ":2: unterminated single quote");
    expect_script_error("#!/bin/sh\n#WSLQ --gpus 1 python3\n", ":2: 'python3' is not an option");
    expect_script_error("#!/bin/sh\n#WSLQ --wrap 'ls'\n",
                        ":2: --wrap cannot be used in a batch script");
    expect_script_error("#!/bin/sh\n#WSLQ --help\n", ":2: --help cannot be used in a batch script");
    expect_script_error("#!/bin/sh\n#WSLQ--gpus 1\n",
                        ":2: '#WSLQ--gpus 1' is not a directive; write '#WSLQ --OPTION'");
    expect_script_error("#!/bin/sh\n#WSLQ --mem\n", ":2: option '--mem' needs a value");
    /* too big to send with the job */
    char *big = malloc(70000);
    assert_non_null(big);
    memset(big, '#', 69999);
    memcpy(big, "#!/bin/sh\n", 10);
    big[69999] = '\0';
    expect_script_error(big, ": 69999 bytes; a batch script is sent with the job and may have at "
                             "most 65536");
    free(big);
}

/* ---- tables ---- */

static char *
capture(void (*fn)(void *arg, FILE *out), void *arg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fn(arg, f);
    fclose(f);
    return buf;
}

static void
table_fn(void *arg, FILE *out)
{
    (void) arg;
    static const char *const hdr[] = {"ID", "NAME", "STATE"};
    table_t *t = table_new(3, hdr);
    table_set_right(t, 0);
    table_set_max(t, 1, 6);
    table_row(t);
    table_cellf(t, "%d", 7);
    table_cellf(t, "%s", "short");
    table_cellf(t, "%s", "RUNNING");
    table_row(t);
    table_cellf(t, "%d", 12345);
    table_cellf(t, "%s", "a-very-long-name");
    table_cellf(t, "%s", "PD");
    table_row(t);
    table_cellf(t, "%d", 1);
    table_cellf(t, "%s", "tab\there");
    assert_int_equal(table_rows(t), 3);
    table_print(t, out, 0, 0);
    table_destroy(&t);
    assert_null(t);
}

static void
test_table_layout(void **state)
{
    (void) state;
    char *s = capture(table_fn, NULL);
    assert_string_equal(s, "   ID  NAME    STATE\n"
                           "    7  short   RUNNING\n"
                           "12345  a-ver…  PD\n"
                           "    1  tab?h…\n");
    free(s);
    assert_int_equal(table_width("a…b"), 3);
}

static Wslq__JobSpec spec_a;
static Wslq__JobInfo job_a, job_b;
static Wslq__Alloc alloc_a;
static char *argv_a[] = {"python3", "-c", "print('hi there')"};
static char *env_a[] = {"A=1"};
static uint32_t gpus_a[] = {0, 1};
static char *uuids_a[] = {"GPU-aaa", "GPU-bbb"};

static void
fill_jobs(void)
{
    wslq__job_spec__init(&spec_a);
    spec_a.n_argv = 3;
    spec_a.argv = argv_a;
    spec_a.n_env = 1;
    spec_a.env = env_a;
    spec_a.name = "hello";
    spec_a.user = "alice";
    spec_a.uid = 1000;
    spec_a.nodes = 1;
    spec_a.gpus_per_node = 2;
    spec_a.cwd = "/home/alice";
    wslq__alloc__init(&alloc_a);
    alloc_a.node = "pc1";
    alloc_a.n_gpus = 2;
    alloc_a.gpus = gpus_a;
    alloc_a.n_gpu_uuids = 2;
    alloc_a.gpu_uuids = uuids_a;
    alloc_a.nranks = 2;
    alloc_a.ip = "10.0.0.5";
    alloc_a.cpus = "2-3";
    static Wslq__Alloc *allocs[] = {&alloc_a};
    wslq__job_info__init(&job_a);
    job_a.id = 12;
    job_a.spec = &spec_a;
    job_a.state = WSLQ__JOB_STATE__RUNNING;
    job_a.submit_ms = 1700000000000;
    job_a.start_ms = 1700000001000;
    job_a.n_allocs = 1;
    job_a.allocs = allocs;
    job_a.exit_code = -1;
    job_a.failed_rank = -1;
    job_a.master_addr = "10.0.0.5";
    job_a.master_port = 29500;
    wslq__job_info__init(&job_b);
    job_b.id = 13;
    job_b.spec = &spec_a;
    job_b.state = WSLQ__JOB_STATE__PENDING;
    job_b.submit_ms = 1700000000000;
    job_b.reason = "no node has 2 free GPUs";
    job_b.wait_reason = WSLQ__WAIT_REASON__WAIT_RESOURCES;
    job_b.exit_code = -1;
    job_b.failed_rank = -1;
}

static void
queue_fn(void *arg, FILE *out)
{
    print_queue(arg, 1700000066000, 0, out);
}

static void
test_queue_table(void **state)
{
    (void) state;
    fill_jobs();
    /* an array: task 40_7 runs, its tasks 8-499 wait as one line, at most 8 at once */
    Wslq__JobInfo task = job_a, rest = job_b;
    task.id = 47;
    task.array_job_id = 40;
    task.array_index = 7;
    task.array_size = 500;
    task.array_limit = 8;
    rest.id = 48;
    rest.array_job_id = 40;
    rest.array_index = 8;
    rest.array_size = 500;
    rest.array_limit = 8;
    rest.array_tasks = "8-499";
    rest.array_pending = 492;
    rest.wait_reason = WSLQ__WAIT_REASON__WAIT_ARRAY_LIMIT;
    rest.reason = "array limit: 8 of its tasks run (%8)";
    /* an ended job: where it ran and why it ended; a cancelled one that never ran: why */
    Wslq__JobInfo failed = job_a, cancelled = job_b;
    failed.id = 14;
    failed.state = WSLQ__JOB_STATE__FAILED;
    failed.end_ms = 1700000030000;
    failed.exit_code = 1;
    failed.reason = "exit 1";
    cancelled.id = 15;
    cancelled.state = WSLQ__JOB_STATE__CANCELLED;
    cancelled.end_ms = 1700000010000;
    cancelled.wait_reason = WSLQ__WAIT_REASON__WAIT_REASON_UNSPECIFIED;
    cancelled.reason = "cancelled by alice";
    Wslq__JobInfo *jobs[] = {&job_a, &job_b, &task, &rest, &failed, &cancelled};
    Wslq__QueueReply r = WSLQ__QUEUE_REPLY__INIT;
    r.n_jobs = 6;
    r.jobs = jobs;
    char *s = capture(queue_fn, &r);
    assert_string_equal(
        s,
        "          ID  USER   NAME   STATE      GPUS  NODES  TIME  REASON      NODELIST(REASON)\n"
        "          12  alice  hello  RUNNING       2      1  1:05  -           pc1\n"
        "          13  alice  hello  PENDING       2      1  1:06  Resources   (no node has 2 "
        "free GPUs)\n"
        "        40_7  alice  hello  RUNNING       2      1  1:05  -           pc1\n"
        "40_[8-499%8]  alice  hello  PENDING       2      1  1:06  ArrayLimit  (array limit: 8 "
        "of its tasks run (%8))\n"
        "          14  alice  hello  FAILED        2      1  0:29  -           pc1 (exit 1)\n"
        "          15  alice  hello  CANCELLED     2      1  0:00  -           (cancelled by "
        "alice)\n");
    free(s);
    char *cmd = print_command(&spec_a);
    assert_string_equal(cmd, "python3 -c 'print('\\''hi there'\\'')'");
    free(cmd);
}

static void
show_fn(void *arg, FILE *out)
{
    print_show(arg, 1700000066000, out);
}

static void
test_show_text(void **state)
{
    (void) state;
    fill_jobs();
    Wslq__JobEvent ev = WSLQ__JOB_EVENT__INIT;
    ev.ts_ms = 1700000001000;
    ev.state = WSLQ__JOB_STATE__RUNNING;
    ev.node = "pc1";
    ev.reason = "started";
    Wslq__JobEvent *evs[] = {&ev};
    Wslq__ShowReply r = WSLQ__SHOW_REPLY__INIT;
    r.job = &job_a;
    r.n_events = 1;
    r.events = evs;
    char *s = capture(show_fn, &r);
    assert_non_null(strstr(s, "Job 12: hello (RUNNING)\n"));
    assert_non_null(strstr(s, "  Command:      python3 -c 'print('\\''hi there'\\'')'\n"));
    assert_non_null(strstr(s, "  Environment:  A=1\n"));
    assert_non_null(strstr(s, "  Master:       10.0.0.5:29500\n"));
    assert_non_null(strstr(s, "  pc1   0          10.0.0.5  0-1    0,1   GPU-aaa,GPU-bbb  2-3\n"));
    assert_non_null(strstr(s, "RUNNING  0        pc1   started"));
    free(s);
}

/* ---- JSON ---- */

static void
test_json_job_shape(void **state)
{
    (void) state;
    fill_jobs();
    cJSON *o = json_job(&job_a);
    assert_int_equal(cJSON_GetObjectItem(o, "id")->valuedouble, 12);
    assert_string_equal(cJSON_GetObjectItem(o, "state")->valuestring, "RUNNING");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "exit_code")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "end_ms")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "failed_rank")));
    assert_string_equal(cJSON_GetObjectItem(o, "start_time")->valuestring,
                        "2023-11-14T22:13:21.000Z");
    cJSON *spec = cJSON_GetObjectItem(o, "spec");
    assert_string_equal(cJSON_GetObjectItem(spec, "name")->valuestring, "hello");
    assert_int_equal(cJSON_GetObjectItem(spec, "gpus")->valuedouble, 2);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(spec, "time_limit_s")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(spec, "argv")), 3);
    cJSON *alloc = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "allocs"), 0);
    assert_string_equal(cJSON_GetObjectItem(alloc, "node")->valuestring, "pc1");
    assert_string_equal(cJSON_GetObjectItem(alloc, "cpus")->valuestring, "2-3");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(alloc, "gpu_uuids"), 1)->valuestring,
                        "GPU-bbb");
    cJSON_Delete(o);
}

static void
test_json_node_shape(void **state)
{
    (void) state;
    Wslq__GpuInfo g0 = WSLQ__GPU_INFO__INIT, g1 = WSLQ__GPU_INFO__INIT;
    g0.index = 0;
    g0.uuid = "GPU-a";
    g0.name = "RTX 4090";
    g0.temp_c = -1;
    g0.util_pct = 30;
    g0.power_w = -1;
    g0.job_id = 12;
    g1.index = 1;
    g1.temp_c = 50;
    g1.util_pct = -1;
    g1.power_w = -1;
    g1.declared = 1;
    Wslq__GpuInfo *gpus[] = {&g0, &g1};
    Wslq__NodeAttr at = WSLQ__NODE_ATTR__INIT;
    at.key = "wsl.version";
    at.value = "pass";
    Wslq__NodeAttr *attrs[] = {&at};
    Wslq__NodeInfo n = WSLQ__NODE_INFO__INIT;
    n.name = "pc1";
    n.state = "mixed";
    n.cpus = 16;
    n.cpus_alloc = 4;
    n.n_gpus = 2;
    n.gpus = gpus;
    n.n_attrs = 1;
    n.attrs = attrs;
    Wslq__NodeInfo *nodes[] = {&n};
    Wslq__NodesReply r = WSLQ__NODES_REPLY__INIT;
    r.n_nodes = 1;
    r.nodes = nodes;
    cJSON *o = json_nodes_reply(&r);
    cJSON *jn = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "nodes"), 0);
    assert_int_equal(cJSON_GetObjectItem(jn, "gpus_used")->valuedouble, 1);
    assert_int_equal(cJSON_GetObjectItem(jn, "gpus_total")->valuedouble, 2);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(jn, "attrs"), "wsl.version")->valuestring, "pass");
    cJSON *j0 = cJSON_GetArrayItem(cJSON_GetObjectItem(jn, "gpus"), 0);
    cJSON *j1 = cJSON_GetArrayItem(cJSON_GetObjectItem(jn, "gpus"), 1);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j0, "temp_c")));
    assert_int_equal(cJSON_GetObjectItem(j0, "util_pct")->valuedouble, 30);
    assert_int_equal(cJSON_GetObjectItem(j0, "job_id")->valuedouble, 12);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j1, "job_id")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j1, "declared")));
    cJSON_Delete(o);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    print_nodes(&r, 0, f);
    fclose(f);
    assert_non_null(strstr(text, "pc1   mixed  4/16"));
    assert_non_null(strstr(text, "RTX 4090"));
    assert_non_null(strstr(text, "free  declared\n"));
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opt_mixed_operands),
        cmocka_unit_test(test_opt_errors),
        cmocka_unit_test(test_timeout_parse),
        cmocka_unit_test(test_conf_precedence),
        cmocka_unit_test(test_conf_admin_socket),
        cmocka_unit_test(test_conf_errors),
        cmocka_unit_test(test_submit_every_flag),
        cmocka_unit_test(test_submit_defaults_and_operand_stop),
        cmocka_unit_test(test_submit_node_choice),
        cmocka_unit_test(test_submit_wrap_and_per_node),
        cmocka_unit_test(test_submit_export),
        cmocka_unit_test(test_submit_secret_env),
        cmocka_unit_test(test_submit_rejections),
        cmocka_unit_test(test_submit_help),
        cmocka_unit_test(test_submit_script),
        cmocka_unit_test(test_submit_script_errors),
        cmocka_unit_test(test_table_layout),
        cmocka_unit_test(test_queue_table),
        cmocka_unit_test(test_show_text),
        cmocka_unit_test(test_json_job_shape),
        cmocka_unit_test(test_json_node_shape),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (conf_dir[0] != '\0') {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", conf_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", conf_dir);
    }
    return rc;
}
