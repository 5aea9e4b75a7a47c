/* wq_mkdir_p: creates every missing parent, accepts what exists, and refuses an empty name,
 * an over-long path and a file where a directory should be, naming the component. */
/* cmocka.h needs these first. */
#include <errno.h>
#include <limits.h>
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

#include "common/fs.h"

static char dir[64];

static int
setup(void **state)
{
    (void) state;
    snprintf(dir, sizeof dir, "/tmp/wslq-fs-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
    (void) state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int
is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void
test_creates_parents(void **state)
{
    (void) state;
    char p[256];
    snprintf(p, sizeof p, "%s/a/b/c", dir);
    wq_error_t err = {0};
    assert_int_equal(wq_mkdir_p(p, 0700, &err), 0);
    assert_true(is_dir(p));
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    /* again, and with a trailing slash and a doubled one: all exist already */
    assert_int_equal(wq_mkdir_p(p, 0700, &err), 0);
    snprintf(p, sizeof p, "%s/a//b/c/", dir);
    assert_int_equal(wq_mkdir_p(p, 0700, &err), 0);
    assert_int_equal(wq_mkdir_p("/", 0755, &err), 0);
    assert_int_equal(err.code, WQ_OK);
}

static void
test_relative(void **state)
{
    (void) state;
    char old[PATH_MAX];
    assert_non_null(getcwd(old, sizeof old));
    assert_int_equal(chdir(dir), 0);
    wq_error_t err = {0};
    int rc = wq_mkdir_p("r/s", 0755, &err);
    int made = is_dir("r/s");
    assert_int_equal(chdir(old), 0);
    assert_int_equal(rc, 0);
    assert_true(made);
}

static void
test_file_in_the_way(void **state)
{
    (void) state;
    char f[256], p[256];
    snprintf(f, sizeof f, "%s/file", dir);
    FILE *fp = fopen(f, "w");
    assert_non_null(fp);
    fclose(fp);
    wq_error_t err = {0};
    /* the last component is a file: EEXIST must not pass for a directory */
    assert_int_equal(wq_mkdir_p(f, 0755, &err), -1);
    assert_int_equal(err.code, WQ_ESYS);
    assert_int_equal(err.sys_errno, ENOTDIR);
    assert_non_null(strstr(err.text, "cannot create"));
    assert_non_null(strstr(err.text, "/file"));
    /* a file part way along */
    snprintf(p, sizeof p, "%s/file/sub/dir", dir);
    memset(&err, 0, sizeof err);
    assert_int_equal(wq_mkdir_p(p, 0755, &err), -1);
    assert_int_equal(err.sys_errno, ENOTDIR);
    assert_non_null(strstr(err.text, "/file/sub"));
}

static void
test_bad_names(void **state)
{
    (void) state;
    wq_error_t err = {0};
    assert_int_equal(wq_mkdir_p("", 0755, &err), -1);
    assert_int_equal(err.code, WQ_EINVAL);
    assert_int_equal(wq_mkdir_p(NULL, 0755, NULL), -1);
    /* over-long: refused, never truncated into a shorter path that gets created */
    static char p[PATH_MAX + 16];
    int n = snprintf(p, sizeof p, "%s/", dir);
    memset(p + n, 'x', sizeof p - (size_t) n - 1);
    p[sizeof p - 1] = '\0';
    memset(&err, 0, sizeof err);
    assert_int_equal(wq_mkdir_p(p, 0755, &err), -1);
    assert_int_equal(err.sys_errno, ENAMETOOLONG);
    p[n + 8] = '\0';
    assert_false(is_dir(p));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_creates_parents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_in_the_way, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
