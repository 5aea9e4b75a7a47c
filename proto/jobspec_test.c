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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_name),
        cmocka_unit_test(test_apply_defaults),
        cmocka_unit_test(test_rank_vars),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
