/* jobspec: the default name of every kind of command, the defaults a spec gets, and which
 * variables are the worker's per-rank ones. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* after the standard headers */
#include <cmocka.h>

#include "common/mem.h"
#include "proto/jobspec.h"
#include "proto/wire.h"

static const char *
name_of(char *argv0, int wrap, char *buf, size_t size)
{
    Wslq__JobSpec s = WSLQ__JOB_SPEC__INIT;
    char *argv[] = {argv0};
    s.argv = argv;
    s.n_argv = argv0 ? 1 : 0;
    s.wrap = wrap;
    return jobspec_default_name(&s, buf, size);
}

static void
test_default_name(void **state)
{
    (void) state;
    char buf[WIRE_MAX_NAME + 1];
    assert_string_equal(name_of("/usr/bin/python3", 0, buf, sizeof buf), "python3");
    assert_string_equal(name_of("train.sh", 0, buf, sizeof buf), "train.sh");
    assert_string_equal(name_of("./bin/", 0, buf, sizeof buf), "./bin/"); /* no last part */
    assert_string_equal(name_of("/bin/sh", 1, buf, sizeof buf), "wrap");
    assert_string_equal(name_of(NULL, 0, buf, sizeof buf), "");
    char long_name[300];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_int_equal(strlen(name_of(long_name, 0, buf, sizeof buf)), WIRE_MAX_NAME);
}

static void
test_apply_defaults(void **state)
{
    (void) state;
    Wslq__JobSpec *s = wq_malloc(sizeof *s);
    wslq__job_spec__init(s);
    s->argv = wq_calloc(1, sizeof *s->argv);
    s->argv[0] = wq_strdup("/opt/x/run");
    s->n_argv = 1;
    jobspec_apply_defaults(s);
    assert_int_equal(s->cpus_per_node, 1);
    assert_string_equal(s->name, "run");
    assert_string_equal(s->user, "unknown");
    /* what was given stays */
    s->cpus_per_node = 4;
    free(s->name);
    s->name = wq_strdup("mine");
    free(s->user);
    s->user = wq_strdup("alice");
    jobspec_apply_defaults(s);
    assert_int_equal(s->cpus_per_node, 4);
    assert_string_equal(s->name, "mine");
    assert_string_equal(s->user, "alice");
    wslq__job_spec__free_unpacked(s, NULL);
}

static void
test_rank_vars(void **state)
{
    (void) state;
    const char *yes[] = {"RANK",        "WORLD_SIZE",      "MASTER_ADDR",
                         "WSLQ_JOB_ID", "NCCL_IB_DISABLE", "CUDA_VISIBLE_DEVICES"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(jobspec_is_rank_var(yes[i], strlen(yes[i])));
    const char *no[] = {"RANKX", "RAN", "PATH", "HOME", ""};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(jobspec_is_rank_var(no[i], strlen(no[i])));
    assert_true(jobspec_is_rank_var("RANK=3", 4)); /* a length, not a NUL */
}

/* ---- arrays and selectors ---- */

static char *
parsed(const char *spec, int allow_limit, uint32_t *limit)
{
    static char buf[512];
    jobspec_array_t a;
    wq_error_t err = {0};
    if (jobspec_parse_array(spec, allow_limit, &a, &err) < 0) {
        assert_true(err.text[0] != '\0');
        assert_null(strchr(err.text, '\n'));
        assert_null(a.idx);
        assert_int_equal(a.n, 0);
        return NULL;
    }
    jobspec_format_indices(a.idx, a.n, buf, sizeof buf);
    if (limit)
        *limit = a.limit;
    for (size_t i = 1; i < a.n; i++)
        assert_true(a.idx[i] > a.idx[i - 1]); /* ascending, once each */
    jobspec_array_fini(&a);
    return buf;
}

static void
test_parse_array(void **state)
{
    (void) state;
    uint32_t k = 99;
    assert_string_equal(parsed("0-499%8", 1, &k), "0-499");
    assert_int_equal(k, 8);
    assert_string_equal(parsed("1,3,5-9:2", 1, &k), "1,3,5,7,9");
    assert_int_equal(k, 0);
    assert_string_equal(parsed("7", 1, NULL), "7");
    assert_string_equal(parsed("3-5,4-8,1", 1, NULL), "1,3-8"); /* overlaps count once */
    assert_string_equal(parsed("0-10:5", 1, NULL), "0,5,10");
    assert_string_equal(parsed("0-99999", 1, NULL), "0-99999"); /* the most tasks */
    assert_string_equal(parsed("9999999", 1, NULL), "9999999"); /* the largest index */
    /* every bad one says so */
    const char *bad[] = {"",    "-1",  "a",        "1-",         "5-3",        "1,,2", "1,",
                         "1%",  "1%0", "1%x",      "1%2%3",      "1-9:0",      "1-9:", "0-100000",
                         "1 2", "1;2", "10000000", "9999999999", "1-2%100001", "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (parsed(bad[i], 1, NULL) != NULL)
            fail_msg("'%s' was accepted", bad[i]);
    /* a task list in a selector takes no %K */
    assert_null(parsed("1-3%2", 0, NULL));
    wq_error_t err = {0};
    jobspec_array_t a;
    assert_int_equal(jobspec_parse_array("0-100000", 1, &a, &err), -1);
    assert_int_equal(err.code, WQ_ELIMIT);
    assert_non_null(strstr(err.text, "100000"));
}

static void
test_format_indices(void **state)
{
    (void) state;
    char buf[16];
    uint32_t idx[] = {1, 2, 3, 5, 7, 8, 100000, 100002, 100004};
    assert_string_equal(jobspec_format_indices(idx, 0, buf, sizeof buf), "");
    assert_string_equal(jobspec_format_indices(idx, 6, buf, sizeof buf), "1-3,5,7-8");
    /* what does not fit ends in "..." and stays inside the buffer */
    const char *s = jobspec_format_indices(idx, 9, buf, sizeof buf);
    assert_true(strlen(s) < sizeof buf);
    assert_non_null(strstr(s, "..."));
    assert_int_equal(strncmp(s, "1-3,5,7-8", 9), 0);
}

static void
test_parse_selector(void **state)
{
    (void) state;
    jobspec_selector_t sel;
    wq_error_t err = {0};
    assert_int_equal(jobspec_parse_selector("42", &sel, &err), 0);
    assert_int_equal(sel.id, 42);
    assert_false(sel.has_tasks);
    jobspec_selector_fini(&sel);
    assert_int_equal(jobspec_parse_selector("40_7", &sel, &err), 0);
    assert_int_equal(sel.id, 40);
    assert_true(sel.has_tasks);
    assert_int_equal(sel.tasks.n, 1);
    assert_int_equal(sel.tasks.idx[0], 7);
    jobspec_selector_fini(&sel);
    assert_int_equal(jobspec_parse_selector("40_[3-9,12]", &sel, &err), 0);
    assert_int_equal(sel.tasks.n, 8);
    assert_int_equal(sel.tasks.idx[7], 12);
    jobspec_selector_fini(&sel);
    const char *bad[] = {"",
                         "0",
                         "0_1",
                         "x",
                         "40_",
                         "40_[",
                         "40_[]",
                         "40_[3-9",
                         "40_3-9]",
                         "40_[3-]",
                         "40__1",
                         "40_[1%2]",
                         "-40",
                         "40 ",
                         "40_[1][2]",
                         "4x_1",
                         "40_[5-3]",
                         "40_a",
                         "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        if (jobspec_parse_selector(bad[i], &sel, &err) == 0)
            fail_msg("selector '%s' was accepted", bad[i]);
        assert_true(err.text[0] != '\0');
        assert_false(sel.has_tasks);
        assert_null(sel.tasks.idx);
    }
}

static void
test_notify(void **state)
{
    (void) state;
    wq_error_t err = {0};
    uint32_t m = 99;
    char buf[64];
    assert_int_equal(jobspec_parse_notify("end,fail", &m, &err), 0);
    assert_int_equal(m, JOBSPEC_NOTIFY_END | JOBSPEC_NOTIFY_FAIL);
    assert_string_equal(jobspec_format_notify(m, buf, sizeof buf), "end,fail");
    assert_int_equal(jobspec_parse_notify("all", &m, &err), 0);
    assert_string_equal(jobspec_format_notify(m, buf, sizeof buf), "start,end,fail,requeue");
    assert_int_equal(jobspec_parse_notify("none", &m, &err), 0);
    assert_int_equal(m, 0);
    assert_string_equal(jobspec_format_notify(0, buf, sizeof buf), "none");
    const char *bad[] = {"", "end,", ",end", "ends", "end,,fail", "END", "start;end"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = 7;
        err.text[0] = '\0';
        if (jobspec_parse_notify(bad[i], &m, &err) != -1)
            fail_msg("--notify '%s' was accepted", bad[i]);
        assert_int_equal(m, 7); /* unchanged */
        assert_non_null(strstr(err.text, "--notify"));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_name),   cmocka_unit_test(test_apply_defaults),
        cmocka_unit_test(test_rank_vars),      cmocka_unit_test(test_parse_array),
        cmocka_unit_test(test_format_indices), cmocka_unit_test(test_parse_selector),
        cmocka_unit_test(test_notify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
