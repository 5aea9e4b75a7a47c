/* job: real processes on this machine. Output spooling, exit codes, exec failure, bad working
 * directory, time limit and kill escalation (small grace), multi-rank merge and gang failure,
 * metrics lines, adoption from the state file, and suspend/resume (SIGSTOP/SIGCONT of the
 * rank's group, the time limit waiting meanwhile, a kill of a stopped job reaching its trap).
 * Every wait is bounded. */
/* cmocka.h needs these first. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
/* after the standard headers */
#include <cmocka.h>

#include "common/clock.h"
#include "worker/job.h"

static char dir[64];
static job_cfg_t cfg;
static uint64_t next_id = 1;

static int
setup(void **state)
{
    (void) state;
    snprintf(dir, sizeof dir, "/tmp/wslq-jobtest-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    char p[128];
    snprintf(p, sizeof p, "%s/jobs", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/spool", dir);
    mkdir(p, 0755);
    extern char **environ;
    cfg.state_dir = dir;
    cfg.env.node = "testnode";
    cfg.env.iface = "lo";
    cfg.env.ip = "127.0.0.1";
    cfg.base_env = environ;
    cfg.grace_ms = 200;
    return 0;
}

static int
teardown(void **state)
{
    (void) state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

typedef struct {
    Wslq__JobLaunch l;
    Wslq__JobSpec spec;
    Wslq__Alloc alloc;
    char *argv[4];
} launch_t;

static void
init_launch(launch_t *f, const char *shell_line, int nranks)
{
    wslq__job_launch__init(&f->l);
    wslq__job_spec__init(&f->spec);
    wslq__alloc__init(&f->alloc);
    f->argv[0] = "/bin/sh";
    f->argv[1] = "-c";
    f->argv[2] = (char *) shell_line;
    f->spec.argv = f->argv;
    f->spec.n_argv = 3;
    f->spec.wrap = 1;
    f->spec.name = "t";
    f->spec.cwd = "/tmp";
    f->alloc.nranks = (uint32_t) nranks;
    f->alloc.node = "testnode";
    f->l.job_id = next_id++;
    f->l.spec = &f->spec;
    f->l.alloc = &f->alloc;
    f->l.world_size = (uint32_t) nranks;
    f->l.nnodes = 1;
}

/* Reap and poll until the job ends, at most limit_ms. */
static void
run_to_end(job_t *j, int64_t limit_ms)
{
    int64_t end = wq_clock_mono_ms() + limit_ms;
    while (j->phase != JOB_ENDED && wq_clock_mono_ms() < end) {
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
            job_reap(j, pid, status, wq_clock_mono_ms());
        job_poll(j, wq_clock_mono_ms());
        usleep(5000);
    }
    assert_int_equal(j->phase, JOB_ENDED);
}

static char *
read_log(const job_t *j)
{
    static char buf[4096];
    ssize_t n = job_log_read(j, 0, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void
test_output_and_exit0(void **state)
{
    (void) state;
    launch_t f;
    init_launch(&f, "echo hello; echo oops >&2; pwd", 1);
    job_t *j = job_launch(&f.l, &cfg);
    assert_int_equal(j->started, 1);
    run_to_end(j, 5000);
    assert_int_equal(j->exit_code, 0);
    assert_int_equal(j->failed_rank, -1);
    assert_string_equal(j->reason, "");
    assert_string_equal(read_log(j), "hello\noops\n/tmp\n");
    assert_int_equal(j->log_bytes, 16);
    job_destroy(&j);
}

static void
test_exit_code(void **state)
{
    (void) state;
    launch_t f;
    init_launch(&f, "exit 3", 1);
    f.alloc.first_rank = 5;
    job_t *j = job_launch(&f.l, &cfg);
    run_to_end(j, 5000);
    assert_int_equal(j->exit_code, 3);
    assert_int_equal(j->signal, 0);
    assert_int_equal(j->failed_rank, 5);
    assert_string_equal(j->reason, "rank 5 exited with code 3");
    job_destroy(&j);
}

static void
test_exec_failure(void **state)
{
    (void) state;
    launch_t f;
    init_launch(&f, "", 1);
    f.argv[0] = "wslq-no-such-command";
    f.spec.n_argv = 1;
    f.spec.wrap = 0;
    job_t *j = job_launch(&f.l, &cfg);
    assert_int_equal(j->started, 1);
    run_to_end(j, 5000);
    assert_int_equal(j->exit_code, 127);
    assert_non_null(strstr(j->reason, "command not found"));
    assert_non_null(strstr(read_log(j), "wslq-no-such-command: command not found"));
    job_destroy(&j);
}

static void
test_bad_cwd(void **state)
{
    (void) state;
    launch_t f;
    init_launch(&f, "true", 1);
    f.spec.cwd = "/nonexistent/dir";
    job_t *j = job_launch(&f.l, &cfg);
    assert_int_equal(j->started, 0);
    assert_int_equal(j->phase, JOB_ENDED);
    assert_int_not_equal(j->exit_code, 0);
    assert_non_null(strstr(j->reason, "/nonexistent/dir"));
    assert_non_null(strstr(read_log(j), "working directory"));
    job_destroy(&j);
}

static void
test_time_limit_escalates(void **state)
{
    (void) state;
    launch_t f;
    /* ignores SIGTERM: only the SIGKILL after the grace ends it */
    init_launch(&f, "trap '' TERM; echo up; while :; do sleep 0.05; done", 1);
    f.spec.time_limit_s = 1;
    int64_t t0 = wq_clock_mono_ms();
    job_t *j = job_launch(&f.l, &cfg);
    run_to_end(j, 8000);
    int64_t took = wq_clock_mono_ms() - t0;
    assert_true(took >= 1000 + 150);
    assert_int_equal(j->timed_out, 1);
    assert_int_equal(j->killed, 0);
    assert_int_equal(j->signal, 9);
    assert_non_null(strstr(j->reason, "time limit"));
    job_destroy(&j);
}

static void
test_kill(void **state)
{
    (void) state;
    launch_t f;
    init_launch(&f, "sleep 30", 1);
    job_t *j = job_launch(&f.l, &cfg);
    job_stop(j, 100, 0, "cancelled by test", wq_clock_mono_ms());
    job_stop(j, 5000, 0, "second cancel", wq_clock_mono_ms()); /* no effect on cause */
    run_to_end(j, 5000);
    assert_int_equal(j->killed, 1);
    assert_int_equal(j->failed_rank, -1);
    assert_int_equal(j->signal, 15);
    assert_string_equal(j->reason, "cancelled by test");
    job_destroy(&j);
}

/* The state of a process group from /proc: 'T' when it has a stopped process and none
 * running or sleeping (a shell waiting in vfork for a stopped child shows 'D'), 'R' when one
 * runs or sleeps, '?' when none is found. */
static char
group_state(pid_t pgid)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return '?';
    int stopped = 0, active = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char p[300], buf[512];
        snprintf(p, sizeof p, "/proc/%s/stat", e->d_name);
        FILE *fp = fopen(p, "r");
        if (fp == NULL)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, fp);
        fclose(fp);
        buf[n] = '\0';
        const char *rp = strrchr(buf, ')');
        char st;
        int ppid, pgrp;
        if (rp == NULL || sscanf(rp + 1, " %c %d %d", &st, &ppid, &pgrp) != 3 || pgrp != pgid)
            continue;
        stopped += st == 'T' || st == 't';
        active += st == 'R' || st == 'S';
    }
    closedir(d);
    return active ? 'R' : stopped ? 'T' : '?';
}

/* Wait (bounded) until the group is in state 'want'. */
static char
wait_group_state(pid_t pgid, char want)
{
    char st = '?';
    for (int i = 0; i < 3000; i++) { /* 15 s at most: a loaded machine can be slow */
        st = group_state(pgid);
        if (st == want)
            break;
        usleep(5000);
    }
    return st;
}

static void
test_suspend_and_resume(void **state)
{
    (void) state;
    launch_t f;
    init_launch(&f, "trap 'echo got term; exit 0' TERM; echo up; while :; do sleep 0.05; done", 1);
    f.spec.time_limit_s = 1;
    job_t *j = job_launch(&f.l, &cfg);
    assert_int_equal(j->started, 1);
    for (int i = 0; i < 400 && strstr(read_log(j), "up") == NULL; i++)
        usleep(5000); /* its trap is set */
    assert_non_null(strstr(read_log(j), "up"));
    pid_t pgid = j->ranks[0].pgid;
    int64_t deadline = j->deadline_ms;
    assert_true(deadline > 0);
    assert_int_equal(job_suspend(j, 1, wq_clock_mono_ms()), 1);
    assert_int_equal(job_suspend(j, 1, wq_clock_mono_ms()), 0); /* already */
    assert_int_equal(wait_group_state(pgid, 'T'), 'T');
    assert_int_equal(job_next_deadline(j), 0); /* the time limit waits */
    /* past the deadline while stopped: not timed out */
    int64_t until = deadline + 300;
    while (wq_clock_mono_ms() < until) {
        job_poll(j, wq_clock_mono_ms());
        usleep(5000);
    }
    assert_int_equal(j->phase, JOB_RUNNING);
    assert_int_equal(j->timed_out, 0);
    int64_t resumed = wq_clock_mono_ms();
    int64_t stopped_since = j->suspended_at_ms;
    assert_int_equal(job_suspend(j, 0, resumed), 1);
    assert_int_equal(j->deadline_ms, deadline + (resumed - stopped_since));
    assert_int_equal(wait_group_state(pgid, 'R'), 'R');
    assert_int_equal(job_suspend(j, 0, wq_clock_mono_ms()), 0);
    /* stopped again, then killed: SIGCONT follows the SIGTERM, so the trap runs */
    assert_int_equal(job_suspend(j, 1, wq_clock_mono_ms()), 1);
    assert_int_equal(wait_group_state(pgid, 'T'), 'T');
    job_stop(j, 5000, 0, "preempted by test", wq_clock_mono_ms());
    assert_int_equal(j->suspended, 0);
    run_to_end(j, 5000);
    assert_int_equal(j->killed, 1);
    assert_int_equal(j->exit_code, 0);
    assert_int_equal(j->signal, 0);
    assert_non_null(strstr(read_log(j), "got term"));
    job_destroy(&j);
}

static void
test_ranks_merge_and_gang_failure(void **state)
{
    (void) state;
    launch_t f;
    init_launch(&f,
                "echo r$RANK of $WORLD_SIZE local $LOCAL_RANK; printf partial$RANK;"
                "if [ $RANK = 3 ]; then sleep 0.3; exit 4; fi; exec sleep 30",
                2);
    f.alloc.first_rank = 2;
    f.l.world_size = 4;
    int64_t t0 = wq_clock_mono_ms();
    job_t *j = job_launch(&f.l, &cfg);
    run_to_end(j, 5000);
    assert_true(wq_clock_mono_ms() - t0 < 3000); /* rank 2 was stopped, not waited for */
    assert_int_equal(j->exit_code, 4);
    assert_int_equal(j->failed_rank, 3);
    assert_string_equal(j->reason, "rank 3 exited with code 4");
    const char *log = read_log(j);
    assert_non_null(strstr(log, "[rank 2] r2 of 4 local 0\n"));
    assert_non_null(strstr(log, "[rank 3] r3 of 4 local 1\n"));
    assert_non_null(strstr(log, "[rank 3] partial3\n")); /* tail flushed at the end */
    assert_non_null(strstr(log, "[rank 2] partial2\n"));
    job_destroy(&j);
}

static void
test_metrics(void **state)
{
    (void) state;
    launch_t f;
    init_launch(&f,
                "echo '{\"step\":1,\"loss\":0.5}' >> \"$WSLQ_METRICS\"; echo notjson >> "
                "\"$WSLQ_METRICS\"; printf '{\"step\":2}' >> \"$WSLQ_METRICS\"",
                1);
    job_t *j = job_launch(&f.l, &cfg);
    run_to_end(j, 5000);
    char **lines = NULL;
    size_t n = job_metrics(j, 0, &lines, 16);
    assert_int_equal(n, 1);
    assert_string_equal(lines[0], "{\"step\":1,\"loss\":0.5}");
    free(lines[0]);
    free(lines);
    assert_int_equal(job_metrics(j, 0, &lines, 16), 0); /* incomplete last line waits */
    job_destroy(&j);
}

static void
test_adopt(void **state)
{
    (void) state;
    launch_t f;
    init_launch(&f, "echo adopted; exec sleep 30", 1);
    f.spec.time_limit_s = 3600;
    job_t *j = job_launch(&f.l, &cfg);
    wq_error_t err = {0};
    assert_int_equal(job_save(j, &err), 0);
    /* the rank is in its own session once it has printed */
    for (int i = 0; i < 400 && strstr(read_log(j), "adopted") == NULL; i++)
        usleep(5000);
    job_t *a = job_adopt(j->state_path, &cfg, &err);
    assert_non_null(a);
    assert_int_equal(a->id, j->id);
    assert_int_equal(a->adopted, 1);
    assert_int_equal(a->ranks[0].pgid, j->ranks[0].pgid);
    assert_int_equal(a->ranks[0].alive, 1);
    assert_true(a->deadline_ms > wq_clock_mono_ms());
    /* the process dies while "the other worker" owns it; we reap it as the old parent */
    job_stop(a, 50, 0, "stop", wq_clock_mono_ms());
    run_to_end(j, 5000);
    run_to_end(a, 5000);
    assert_int_equal(a->killed, 1);
    job_destroy(&a);

    /* an adopted job whose ranks vanished on their own: exit status lost */
    init_launch(&f, "exit 0", 1);
    job_t *k = job_launch(&f.l, &cfg);
    run_to_end(k, 5000);
    k->phase = JOB_RUNNING; /* the file as a worker that died mid-job left it */
    assert_int_equal(job_save(k, &err), 0);
    a = job_adopt(k->state_path, &cfg, &err);
    assert_non_null(a);
    assert_int_equal(job_poll(a, wq_clock_mono_ms()), 1);
    assert_int_equal(a->phase, JOB_ENDED);
    assert_string_equal(a->reason, "worker restarted; exit status lost");
    job_t *again = job_adopt(a->state_path, &cfg, &err); /* ended state is kept */
    assert_non_null(again);
    assert_int_equal(again->phase, JOB_ENDED);
    assert_string_equal(again->reason, "worker restarted; exit status lost");
    job_forget(again);
    assert_int_equal(access(a->state_path, F_OK), -1);
    job_destroy(&again);
    job_destroy(&a);
    job_destroy(&k);
    job_destroy(&j);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_and_exit0),
        cmocka_unit_test(test_exit_code),
        cmocka_unit_test(test_exec_failure),
        cmocka_unit_test(test_bad_cwd),
        cmocka_unit_test(test_time_limit_escalates),
        cmocka_unit_test(test_kill),
        cmocka_unit_test(test_suspend_and_resume),
        cmocka_unit_test(test_ranks_merge_and_gang_failure),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_adopt),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
