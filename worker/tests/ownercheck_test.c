/* owner.reporter, the doctor's check of the owner policy and the reporter's file: no file
 * configured (with and without a policy that needs it), missing, stale, garbage and fresh. */
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

#include "worker/ownercheck.h"

#define NOW 1764645600

static char path[] = "/tmp/wslq-ownercheck-XXXXXX";

static void
put(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void
test_owner_check(void **state)
{
    (void) state;
    owner_limits_t lim;
    owner_limits_default(&lim);
    char s[512], fix[512];
    assert_int_equal(owner_check("", OWNER_IGNORE, "", &lim, NOW, s, sizeof s, fix, sizeof fix),
                     WSLQ__CHECK_VERDICT__CHECK_INFO);
    assert_string_equal(s, "owner policy ignore; no owner_file: the PC's owner is not looked at");
    assert_string_equal(fix, "");
    assert_int_equal(owner_check("", OWNER_YIELD, "", &lim, NOW, s, sizeof s, fix, sizeof fix),
                     WSLQ__CHECK_VERDICT__CHECK_WARN);
    assert_non_null(strstr(s, "owner policy yield but no owner_file"));
    assert_non_null(strstr(fix, "owner_file ="));

    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    /* missing */
    assert_int_equal(
        owner_check(path, OWNER_SUSPEND, "alice", &lim, NOW, s, sizeof s, fix, sizeof fix),
        WSLQ__CHECK_VERDICT__CHECK_WARN);
    assert_non_null(strstr(s, "owner policy suspend, owner_user alice; cannot read"));
    assert_non_null(strstr(fix, "wslq-owner logon task"));
    /* stale */
    char buf[512];
    snprintf(buf, sizeof buf,
             "{\"version\":1,\"time\":%d,\"idle_s\":5,\"fullscreen\":false,\"gpu_ok\":true,"
             "\"gpu_procs\":[],\"tdr\":{\"delay_s\":2,\"level\":3,\"events\":1}}",
             NOW - 3600);
    put(buf);
    assert_int_equal(owner_check(path, OWNER_EVICT, "", &lim, NOW, s, sizeof s, fix, sizeof fix),
                     WSLQ__CHECK_VERDICT__CHECK_WARN);
    assert_string_equal(s, "owner policy evict; owner file is stale (3600 s old)");
    /* the same with ignore: only information */
    assert_int_equal(owner_check(path, OWNER_IGNORE, "", &lim, NOW, s, sizeof s, fix, sizeof fix),
                     WSLQ__CHECK_VERDICT__CHECK_INFO);
    /* garbage */
    put("{not json");
    assert_int_equal(owner_check(path, OWNER_YIELD, "", &lim, NOW, s, sizeof s, fix, sizeof fix),
                     WSLQ__CHECK_VERDICT__CHECK_WARN);
    assert_string_equal(s, "owner policy yield; owner file is not valid JSON");
    /* fresh */
    snprintf(buf, sizeof buf,
             "{\"version\":1,\"time\":%d,\"idle_s\":5,\"fullscreen\":false,\"gpu_ok\":true,"
             "\"gpu_procs\":[],\"tdr\":{\"delay_s\":2,\"level\":3,\"events\":1}}",
             NOW - 3);
    put(buf);
    assert_int_equal(owner_check(path, OWNER_YIELD, "", &lim, NOW, s, sizeof s, fix, sizeof fix),
                     WSLQ__CHECK_VERDICT__CHECK_PASS);
    assert_string_equal(s, "owner policy yield; reporter file fresh (3 s old), 1 TDR event since "
                           "boot: owner present (input 5 s ago)");
    assert_string_equal(fix, "");
    unlink(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_owner_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
