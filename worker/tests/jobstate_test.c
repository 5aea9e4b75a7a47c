/* jobstate: the per-job state file survives a write/read round trip; damaged files are
 * rejected with the file and line. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
/* after the standard headers */
#include <cmocka.h>

#include "worker/jobstate.h"

static char dir[64];

static int
setup(void **state)
{
    (void) state;
    snprintf(dir, sizeof dir, "/tmp/wslq-jobstate-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
    (void) state;
    char p[128];
    snprintf(p, sizeof p, "%s/a.state", dir);
    unlink(p);
    rmdir(dir);
    return 0;
}

static void
test_roundtrip(void **state)
{
    (void) state;
    jobstate_t *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    a->job_id = 77;
    a->attempt = 2;
    snprintf(a->name, sizeof a->name, "two\nlines");
    a->first_rank = 4;
    a->nranks = 3;
    a->pgid[0] = 100;
    a->pgid[1] = 200;
    a->pgid[2] = 300;
    snprintf(a->spool, sizeof a->spool, "/var/lib/wslq/worker/spool/77.2");
    a->start_wall_ms = 1700000000123;
    a->time_limit_s = 600;
    char p[128];
    snprintf(p, sizeof p, "%s/a.state", dir);
    wq_error_t err = {0};
    assert_int_equal(jobstate_write(p, a, &err), 0);
    assert_int_equal(jobstate_read(p, b, &err), 0);
    assert_int_equal(b->job_id, 77);
    assert_int_equal(b->attempt, 2);
    assert_string_equal(b->name, "two lines");
    assert_int_equal(b->first_rank, 4);
    assert_int_equal(b->nranks, 3);
    assert_int_equal(b->pgid[2], 300);
    assert_string_equal(b->spool, a->spool);
    assert_int_equal(b->start_wall_ms, 1700000000123);
    assert_int_equal(b->time_limit_s, 600);
    assert_int_equal(b->ended, 0);
    assert_int_equal(b->failed_rank, -1);
    assert_int_equal(b->killed, 0);

    /* being stopped: a worker restarted now knows its SIGTERM went out, and why */
    a->killed = 1;
    snprintf(a->reason, sizeof a->reason, "cancelled");
    assert_int_equal(jobstate_write(p, a, &err), 0);
    memset(b, 0, sizeof *b);
    assert_int_equal(jobstate_read(p, b, &err), 0);
    assert_int_equal(b->ended, 0);
    assert_int_equal(b->killed, 1);
    assert_int_equal(b->timed_out, 0);
    assert_string_equal(b->reason, "cancelled");
    a->killed = 0;

    a->ended = 1;
    a->exit_code = -1;
    a->signal = 9;
    a->killed = 1;
    a->failed_rank = 5;
    snprintf(a->reason, sizeof a->reason, "cancelled by alice");
    a->log_bytes = 123456789;
    assert_int_equal(jobstate_write(p, a, &err), 0);
    assert_int_equal(jobstate_read(p, b, &err), 0);
    assert_int_equal(b->ended, 1);
    assert_int_equal(b->exit_code, -1);
    assert_int_equal(b->signal, 9);
    assert_int_equal(b->killed, 1);
    assert_int_equal(b->timed_out, 0);
    assert_int_equal(b->failed_rank, 5);
    assert_string_equal(b->reason, "cancelled by alice");
    assert_int_equal(b->log_bytes, 123456789);
    free(a);
    free(b);
}

static void
test_rejects(void **state)
{
    (void) state;
    char p[128];
    snprintf(p, sizeof p, "%s/a.state", dir);
    jobstate_t *b = calloc(1, sizeof *b);
    wq_error_t err = {0};
    const char *bad[] = {
        "version=1\njob_id=x\n",                                      /* bad number */
        "version=2\njob_id=1\nnranks=1\npgid=5\nspool=/s\n",          /* unknown version */
        "version=1\njob_id=1\nnranks=2\npgid=5\nspool=/s\n",          /* pgid count */
        "version=1\njob_id=1\nnranks=1\npgid=5\nspool=/s\ngarbage\n", /* no '=' */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = fopen(p, "w");
        fputs(bad[i], f);
        fclose(f);
        assert_int_equal(jobstate_read(p, b, &err), -1);
        assert_non_null(strstr(err.text, p));
    }
    assert_int_equal(jobstate_read("/nonexistent/x.state", b, &err), -1);
    free(b);
}

/* A state rewritten in place keeps its file; a forgotten one is kept as a spare and becomes
 * the next job's state file, whole and with no leftover of the former text: cut when it was
 * past a page, padded to its length when not. */
static void
test_rewrite_and_spare(void **state)
{
    (void) state;
    jobstate_t *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    a->job_id = 5;
    a->nranks = 1;
    a->pgid[0] = 42;
    snprintf(a->spool, sizeof a->spool, "/spool/5.0");
    snprintf(a->reason, sizeof a->reason, "a long reason that the next text is shorter than");
    a->ended = 1;
    char p[128], q[128], spare[128];
    snprintf(p, sizeof p, "%s/5.0.state", dir);
    snprintf(q, sizeof q, "%s/6.0.state", dir);
    snprintf(spare, sizeof spare, "%s/spare-0", dir);
    wq_error_t err = {0};
    int fd = -1;
    assert_int_equal(jobstate_rewrite(p, a, &fd, &err), 0);
    assert_true(fd >= 0);
    struct stat st0, st1;
    assert_int_equal(stat(p, &st0), 0);
    a->exit_code = 3;
    assert_int_equal(jobstate_rewrite(p, a, &fd, &err), 0);
    assert_int_equal(stat(p, &st1), 0);
    assert_true(st0.st_ino == st1.st_ino); /* in place */
    assert_int_equal(jobstate_read(p, b, &err), 0);
    assert_int_equal(b->exit_code, 3);
    /* a shorter text: one write, padded to the file's length (never cut after the write,
     * which a kill between the two would leave with the old text's tail) */
    snprintf(a->reason, sizeof a->reason, "short");
    assert_int_equal(jobstate_rewrite(p, a, &fd, &err), 0);
    struct stat st2;
    assert_int_equal(stat(p, &st2), 0);
    assert_true(st2.st_ino == st0.st_ino && st2.st_size >= st1.st_size);
    assert_int_equal(jobstate_read(p, b, &err), 0);
    assert_string_equal(b->reason, "short");
    assert_int_equal(b->exit_code, 3);
    /* a text past one page goes through a new file and a rename, whole */
    a->nranks = 256;
    for (int i = 0; i < a->nranks; i++)
        a->pgid[i] = 2000000000 + i;
    assert_int_equal(jobstate_rewrite(p, a, &fd, &err), 0);
    assert_int_equal(stat(p, &st2), 0);
    assert_true(st2.st_ino != st0.st_ino && st2.st_size > 4096);
    assert_int_equal(jobstate_read(p, b, &err), 0);
    assert_int_equal(b->nranks, 256);
    assert_int_equal(b->pgid[255], 2000000255);
    st0 = st2; /* the file now */
    a->nranks = 1;
    snprintf(a->reason, sizeof a->reason, "a long reason that the next text is shorter than");
    close(fd);

    jobstate_forget(p);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(access(spare, F_OK), 0);
    a->job_id = 6;
    a->ended = 0;
    a->reason[0] = '\0';
    fd = -1;
    assert_int_equal(jobstate_rewrite(q, a, &fd, &err), 0);
    assert_int_equal(access(spare, F_OK), -1);
    assert_int_equal(stat(q, &st1), 0);
    assert_true(st0.st_ino == st1.st_ino); /* the spare's file */
    assert_int_equal(jobstate_read(q, b, &err), 0);
    assert_int_equal(b->job_id, 6);
    assert_int_equal(b->ended, 0);
    assert_int_equal(b->exit_code, 0);
    close(fd);
    /* a spare longer than the next text is padded, not cut: the same length, read whole */
    a->nranks = 8;
    for (int i = 0; i < a->nranks; i++)
        a->pgid[i] = 3000 + i;
    fd = -1;
    assert_int_equal(jobstate_rewrite(q, a, &fd, &err), 0);
    assert_int_equal(fstat(fd, &st0), 0);
    close(fd);
    jobstate_forget(q);
    char r[128];
    snprintf(r, sizeof r, "%s/7.0.state", dir);
    a->job_id = 7;
    a->nranks = 1;
    fd = -1;
    assert_int_equal(jobstate_rewrite(r, a, &fd, &err), 0);
    assert_int_equal(stat(r, &st1), 0);
    assert_true(st1.st_ino == st0.st_ino && st1.st_size == st0.st_size);
    assert_int_equal(jobstate_read(r, b, &err), 0);
    assert_int_equal(b->job_id, 7);
    assert_int_equal(b->nranks, 1);
    assert_int_equal(b->pgid[0], 3000);
    close(fd);
    jobstate_forget(r);
    unlink(spare);
    free(a);
    free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_rewrite_and_spare),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
