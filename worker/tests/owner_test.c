/* owner: the Windows reporter's file (deploy/windows/README.md, version 1) to an owner state:
 * every state, stale and future files, every field missing or of the wrong type, garbage,
 * a missing file and one over the size limit; the owner_* config keys. */
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

#include "worker/config.h"
#include "worker/owner.h"

#define NOW 1764645600

static owner_limits_t lim;

static int
setup(void **state)
{
    (void) state;
    owner_limits_default(&lim);
    return 0;
}

/* A valid report with these values; procs is the gpu_procs array's text. */
static void
report(char *buf, size_t n, int64_t time, int64_t idle, const char *fullscreen, const char *procs)
{
    snprintf(buf, n,
             "{\"version\":1,\"time\":%lld,\"idle_s\":%lld,\"fullscreen\":%s,\"gpu_ok\":true,"
             "\"gpu_procs\":%s,\"tdr\":{\"delay_s\":2,\"level\":3}}",
             (long long) time, (long long) idle, fullscreen, procs);
}

static enum owner_state
classify(const char *text, owner_report_t *r, char *why, size_t n)
{
    return owner_classify(text, strlen(text), NOW, &lim, r, why, n);
}

static void
test_states(void **state)
{
    (void) state;
    char buf[1024], why[256];
    owner_report_t r;
    const char *dwm = "[{\"name\":\"dwm\",\"pid\":1312,\"mem_mb\":310,\"engine_pct\":2.5}]";

    report(buf, sizeof buf, NOW - 3, 5, "false", dwm);
    assert_int_equal(classify(buf, &r, why, sizeof why), OWNER_PRESENT);
    assert_int_equal(r.idle_s, 5);
    assert_int_equal(r.gpu_mem_mb, 310);
    assert_string_equal(r.gpu_top, "dwm");
    assert_int_equal(r.tdr_delay_s, 2);
    assert_non_null(strstr(why, "5 s"));

    /* exactly the configured minutes: away; one second less: present */
    report(buf, sizeof buf, NOW, 600, "false", dwm);
    assert_int_equal(classify(buf, &r, why, sizeof why), OWNER_AWAY);
    report(buf, sizeof buf, NOW, 599, "false", dwm);
    assert_int_equal(classify(buf, &r, why, sizeof why), OWNER_PRESENT);
    lim.away_min = 1;
    report(buf, sizeof buf, NOW, 60, "false", "[]");
    assert_int_equal(classify(buf, &r, why, sizeof why), OWNER_AWAY);
    lim.away_min = 10;

    /* full screen is gaming even when the owner has been idle for an hour (a video) */
    report(buf, sizeof buf, NOW, 3600, "true", "[]");
    assert_int_equal(classify(buf, &r, why, sizeof why), OWNER_GAMING);
    assert_non_null(strstr(why, "full-screen"));

    /* one process's engine at the threshold, or the processes' memory in all */
    report(buf, sizeof buf, NOW, 3600, "false",
           "[{\"name\":\"dwm\",\"pid\":1,\"mem_mb\":100,\"engine_pct\":3},"
           "{\"name\":\"blender\",\"pid\":2,\"mem_mb\":900,\"engine_pct\":30}]");
    assert_int_equal(classify(buf, &r, why, sizeof why), OWNER_GAMING);
    assert_string_equal(r.gpu_top, "blender");
    assert_non_null(strstr(why, "blender"));
    report(buf, sizeof buf, NOW, 3600, "false",
           "[{\"name\":\"a\",\"pid\":1,\"mem_mb\":1024,\"engine_pct\":1},"
           "{\"name\":\"b\",\"pid\":2,\"mem_mb\":1024,\"engine_pct\":1}]");
    assert_int_equal(classify(buf, &r, why, sizeof why), OWNER_GAMING);
    assert_int_equal(r.gpu_mem_mb, 2048);
    /* thresholds of 0 turn those checks off */
    lim.gpu_mem_mb = 0;
    assert_int_equal(classify(buf, &r, why, sizeof why), OWNER_AWAY);
    lim.gpu_mem_mb = 2048;

    /* WSL's own GPU use (our jobs) is not the owner's */
    report(buf, sizeof buf, NOW, 3600, "false",
           "[{\"name\":\"vmmemWSL\",\"pid\":5,\"mem_mb\":20480,\"engine_pct\":99},"
           "{\"name\":\"VMMEM\",\"pid\":6,\"mem_mb\":20480,\"engine_pct\":99}]");
    assert_int_equal(classify(buf, &r, why, sizeof why), OWNER_AWAY);
    assert_int_equal(r.gpu_mem_mb, 0);

    /* counters unreadable: GPU use tells nothing, idle time still counts */
    snprintf(buf, sizeof buf,
             "{\"version\":1,\"time\":%d,\"idle_s\":900,\"fullscreen\":false,\"gpu_ok\":false,"
             "\"gpu_procs\":[{\"name\":\"x\",\"pid\":1,\"mem_mb\":99999,\"engine_pct\":100}],"
             "\"tdr\":{\"delay_s\":60,\"level\":3}}",
             NOW);
    assert_int_equal(classify(buf, &r, why, sizeof why), OWNER_AWAY);
    assert_int_equal(r.tdr_delay_s, 60);

    /* idle time the reporter could not read: unknown, never away */
    report(buf, sizeof buf, NOW, -1, "false", "[]");
    assert_int_equal(classify(buf, &r, why, sizeof why), OWNER_UNKNOWN);
    assert_non_null(strstr(why, "idle"));
}

static void
test_stale(void **state)
{
    (void) state;
    char buf[1024], why[256];
    report(buf, sizeof buf, NOW - 30, 3600, "false", "[]");
    assert_int_equal(classify(buf, NULL, why, sizeof why), OWNER_AWAY);
    report(buf, sizeof buf, NOW - 31, 3600, "false", "[]");
    assert_int_equal(classify(buf, NULL, why, sizeof why), OWNER_UNKNOWN);
    assert_non_null(strstr(why, "stale"));
    report(buf, sizeof buf, NOW - 86400, 3600, "false", "[]");
    assert_int_equal(classify(buf, NULL, why, sizeof why), OWNER_UNKNOWN);
    /* a clock far ahead is as untrustworthy as one far behind */
    report(buf, sizeof buf, NOW + 31, 3600, "false", "[]");
    assert_int_equal(classify(buf, NULL, why, sizeof why), OWNER_UNKNOWN);
    assert_non_null(strstr(why, "future"));
    lim.stale_s = 3600;
    report(buf, sizeof buf, NOW - 3000, 3600, "false", "[]");
    assert_int_equal(classify(buf, NULL, why, sizeof why), OWNER_AWAY);
    lim.stale_s = 30;
}

/* Each field in turn missing, then of the wrong type: unknown, and why names the field. */
static void
test_bad_fields(void **state)
{
    (void) state;
    static const struct {
        const char *text, *field;
    } cases[] = {
        {"{\"time\":%d,\"idle_s\":900,\"fullscreen\":false,\"gpu_ok\":true,\"gpu_procs\":[],"
         "\"tdr\":{\"delay_s\":2}}",
         "version"},
        {"{\"version\":\"1\",\"time\":%d,\"idle_s\":900,\"fullscreen\":false,\"gpu_ok\":true,"
         "\"gpu_procs\":[],\"tdr\":{\"delay_s\":2}}",
         "version"},
        {"{\"version\":2,\"time\":%d,\"idle_s\":900,\"fullscreen\":false,\"gpu_ok\":true,"
         "\"gpu_procs\":[],\"tdr\":{\"delay_s\":2}}",
         "version 2"},
        {"{\"version\":1,\"idle_s\":900,\"fullscreen\":false,\"gpu_ok\":true,\"gpu_procs\":[],"
         "\"tdr\":{\"delay_s\":2},\"x\":%d}",
         "time"},
        {"{\"version\":1,\"time\":\"%d\",\"idle_s\":900,\"fullscreen\":false,\"gpu_ok\":true,"
         "\"gpu_procs\":[],\"tdr\":{\"delay_s\":2}}",
         "time"},
        {"{\"version\":1,\"time\":%d,\"fullscreen\":false,\"gpu_ok\":true,\"gpu_procs\":[],"
         "\"tdr\":{\"delay_s\":2}}",
         "idle_s"},
        {"{\"version\":1,\"time\":%d,\"idle_s\":null,\"fullscreen\":false,\"gpu_ok\":true,"
         "\"gpu_procs\":[],\"tdr\":{\"delay_s\":2}}",
         "idle_s"},
        {"{\"version\":1,\"time\":%d,\"idle_s\":-5,\"fullscreen\":false,\"gpu_ok\":true,"
         "\"gpu_procs\":[],\"tdr\":{\"delay_s\":2}}",
         "idle_s"},
        {"{\"version\":1,\"time\":%d,\"idle_s\":900,\"gpu_ok\":true,\"gpu_procs\":[],"
         "\"tdr\":{\"delay_s\":2}}",
         "fullscreen"},
        {"{\"version\":1,\"time\":%d,\"idle_s\":900,\"fullscreen\":0,\"gpu_ok\":true,"
         "\"gpu_procs\":[],\"tdr\":{\"delay_s\":2}}",
         "fullscreen"},
        {"{\"version\":1,\"time\":%d,\"idle_s\":900,\"fullscreen\":false,\"gpu_procs\":[],"
         "\"tdr\":{\"delay_s\":2}}",
         "gpu_ok"},
        {"{\"version\":1,\"time\":%d,\"idle_s\":900,\"fullscreen\":false,\"gpu_ok\":\"yes\","
         "\"gpu_procs\":[],\"tdr\":{\"delay_s\":2}}",
         "gpu_ok"},
        {"{\"version\":1,\"time\":%d,\"idle_s\":900,\"fullscreen\":false,\"gpu_ok\":true,"
         "\"tdr\":{\"delay_s\":2}}",
         "gpu_procs"},
        {"{\"version\":1,\"time\":%d,\"idle_s\":900,\"fullscreen\":false,\"gpu_ok\":true,"
         "\"gpu_procs\":{},\"tdr\":{\"delay_s\":2}}",
         "gpu_procs"},
        {"{\"version\":1,\"time\":%d,\"idle_s\":900,\"fullscreen\":false,\"gpu_ok\":true,"
         "\"gpu_procs\":[1],\"tdr\":{\"delay_s\":2}}",
         "gpu_procs[]"},
        {"{\"version\":1,\"time\":%d,\"idle_s\":900,\"fullscreen\":false,\"gpu_ok\":true,"
         "\"gpu_procs\":[{\"pid\":1,\"mem_mb\":1,\"engine_pct\":1}],\"tdr\":{\"delay_s\":2}}",
         "gpu_procs[]"},
        {"{\"version\":1,\"time\":%d,\"idle_s\":900,\"fullscreen\":false,\"gpu_ok\":true,"
         "\"gpu_procs\":[{\"name\":\"a\",\"pid\":1,\"mem_mb\":-1,\"engine_pct\":1}],"
         "\"tdr\":{\"delay_s\":2}}",
         "gpu_procs[]"},
        {"{\"version\":1,\"time\":%d,\"idle_s\":900,\"fullscreen\":false,\"gpu_ok\":true,"
         "\"gpu_procs\":[{\"name\":\"a\",\"pid\":1,\"mem_mb\":1,\"engine_pct\":101}],"
         "\"tdr\":{\"delay_s\":2}}",
         "gpu_procs[]"},
        {"{\"version\":1,\"time\":%d,\"idle_s\":900,\"fullscreen\":false,\"gpu_ok\":true,"
         "\"gpu_procs\":[]}",
         "tdr"},
        {"{\"version\":1,\"time\":%d,\"idle_s\":900,\"fullscreen\":false,\"gpu_ok\":true,"
         "\"gpu_procs\":[],\"tdr\":{\"delay_s\":\"2\"}}",
         "tdr"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[1024], why[256] = "";
        /* the cases' %d is the report's time */
        const char *at = strstr(cases[i].text, "%d");
        assert_non_null(at);
        snprintf(buf, sizeof buf, "%.*s%d%s", (int) (at - cases[i].text), cases[i].text, NOW,
                 at + 2);
        enum owner_state st = classify(buf, NULL, why, sizeof why);
        if (st != OWNER_UNKNOWN || strstr(why, cases[i].field) == NULL)
            fail_msg("case %zu (%s): state %s, why '%s'", i, cases[i].field, owner_state_name(st),
                     why);
    }
}

static void
test_garbage(void **state)
{
    (void) state;
    char why[256];
    static const char *bad[] = {"",         "not json",        "{",           "[]", "null", "1",
                                "\"away\"", "{\"version\":1,", "\xff\xfe{\0}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        assert_int_equal(owner_classify(bad[i], strlen(bad[i]), NOW, &lim, NULL, why, sizeof why),
                         OWNER_UNKNOWN);
        assert_true(why[0] != '\0');
    }
    /* not NUL-terminated: only len bytes are read */
    char buf[1024];
    report(buf, sizeof buf, NOW, 3600, "false", "[]");
    size_t n = strlen(buf);
    buf[n] = 'x';
    assert_int_equal(owner_classify(buf, n, NOW, &lim, NULL, why, sizeof why), OWNER_AWAY);
    assert_int_equal(owner_classify(buf, n - 1, NOW, &lim, NULL, why, sizeof why), OWNER_UNKNOWN);
    /* a NULL why is allowed */
    assert_int_equal(owner_classify("x", 1, NOW, &lim, NULL, NULL, 0), OWNER_UNKNOWN);
}

static void
test_files(void **state)
{
    (void) state;
    char path[64], why[256], buf[1024];
    snprintf(path, sizeof path, "/tmp/wslq-owner-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    report(buf, sizeof buf, NOW, 3600, "false", "[]");
    assert_int_equal(write(fd, buf, strlen(buf)), (ssize_t) strlen(buf));
    close(fd);
    assert_int_equal(owner_read(path, NOW, &lim, NULL, why, sizeof why), OWNER_AWAY);

    /* over the limit: not parsed, even though it is valid JSON (spaces after the object) */
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    for (int i = 0; i < OWNER_FILE_MAX; i++)
        fputc(' ', f);
    fclose(f);
    assert_int_equal(owner_read(path, NOW, &lim, NULL, why, sizeof why), OWNER_UNKNOWN);
    assert_non_null(strstr(why, "larger"));
    /* exactly at the limit: read */
    assert_int_equal(truncate(path, OWNER_FILE_MAX), 0);
    assert_int_equal(owner_read(path, NOW, &lim, NULL, why, sizeof why), OWNER_AWAY);
    owner_report_t rep;
    assert_int_equal(owner_read(path, NOW, &lim, &rep, why, sizeof why), OWNER_AWAY);
    assert_int_equal(rep.version, OWNER_FORMAT_VERSION);
    unlink(path);

    assert_int_equal(owner_read(path, NOW, &lim, NULL, why, sizeof why), OWNER_UNKNOWN);
    assert_non_null(strstr(why, "cannot read"));
    /* a file gone leaves nothing of the report read before it in the same struct */
    assert_int_equal(owner_read(path, NOW, &lim, &rep, why, sizeof why), OWNER_UNKNOWN);
    assert_int_equal(rep.version, 0);
    assert_int_equal(rep.time, 0);
    assert_int_equal(rep.tdr_events, -1);
    assert_int_equal(rep.tdr_delay_s, -1);
    assert_int_equal(owner_read("", NOW, &lim, NULL, why, sizeof why), OWNER_UNKNOWN);
    assert_int_equal(owner_read("/tmp", NOW, &lim, NULL, why, sizeof why), OWNER_UNKNOWN);
}

static void
test_config(void **state)
{
    (void) state;
    wcfg_t c;
    wq_error_t e = {0};
    wcfg_defaults(&c);
    assert_int_equal(c.owner, OWNER_IGNORE);
    assert_string_equal(c.owner_file, "/mnt/c/ProgramData/wslq/owner.json");
    assert_int_equal(wcfg_set(&c, "owner", "yield", &e), 0);
    assert_int_equal(c.owner, OWNER_YIELD);
    assert_string_equal(owner_policy_name(c.owner), "yield");
    assert_int_equal(wcfg_set(&c, "owner", "evict-everything", &e), -1);
    assert_non_null(strstr(e.text, "ignore, yield, suspend or evict"));
    assert_int_equal(c.owner, OWNER_YIELD);
    assert_int_equal(wcfg_set(&c, "owner", "suspend", &e), 0);
    assert_int_equal(c.owner, OWNER_SUSPEND);
    assert_string_equal(owner_policy_name(c.owner), "suspend");
    assert_int_equal(wcfg_set(&c, "owner", "evict", &e), 0);
    assert_int_equal(c.owner, OWNER_EVICT);
    assert_string_equal(owner_policy_name(c.owner), "evict");
    assert_int_equal(wcfg_set(&c, "owner", "yield", &e), 0);
    assert_int_equal(c.owner_suspend_max_min, 30);
    assert_int_equal(wcfg_set(&c, "owner_suspend_max_min", "0", &e), -1);
    assert_int_equal(c.owner_suspend_max_min, 30);
    assert_int_equal(wcfg_set(&c, "owner_suspend_max_min", "5", &e), 0);
    assert_int_equal(c.owner_suspend_max_min, 5);
    assert_string_equal(c.owner_user, "");
    assert_int_equal(wcfg_set(&c, "owner_user", "bad name!", &e), -1);
    assert_non_null(strstr(e.text, "owner_user"));
    assert_string_equal(c.owner_user, "");
    assert_int_equal(wcfg_set(&c, "owner_user", "alice", &e), 0);
    assert_string_equal(c.owner_user, "alice");
    assert_int_equal(wcfg_set(&c, "owner_file", "relative/owner.json", &e), -1);
    assert_int_equal(wcfg_set(&c, "owner_file", "/x/owner.json", &e), 0);
    assert_string_equal(c.owner_file, "/x/owner.json");
    assert_int_equal(wcfg_set(&c, "owner_away_min", "3", &e), 0);
    assert_int_equal(c.owner_lim.away_min, 3);
    assert_int_equal(wcfg_set(&c, "owner_stale_s", "0", &e), -1);
    assert_int_equal(wcfg_set(&c, "owner_gpu_pct", "101", &e), -1);
    assert_int_equal(wcfg_set(&c, "owner_gpu_mem_mb", "512", &e), 0);
    assert_int_equal(c.owner_lim.gpu_mem_mb, 512);
    assert_string_equal(owner_state_name(OWNER_GAMING), "gaming");
    assert_string_equal(owner_state_name(99), "unknown");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_states, setup),     cmocka_unit_test_setup(test_stale, setup),
        cmocka_unit_test_setup(test_bad_fields, setup), cmocka_unit_test_setup(test_garbage, setup),
        cmocka_unit_test_setup(test_files, setup),      cmocka_unit_test_setup(test_config, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
