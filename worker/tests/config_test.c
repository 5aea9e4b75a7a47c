/* config: flags, INI keys, flags over the file, one-line errors with file:line, run_as. */
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

static char ini[64];

static int
write_ini(const char *text)
{
    snprintf(ini, sizeof ini, "/tmp/wslq-wcfg-XXXXXX");
    int fd = mkstemp(ini);
    if (fd < 0)
        return -1;
    ssize_t w = write(fd, text, strlen(text));
    close(fd);
    return w == (ssize_t) strlen(text) ? 0 : -1;
}

static void
test_flags(void **state)
{
    (void) state;
    char *argv[] = {"wslq-worker", "--scheduler", "tcp://10.0.0.5:7420",
                    "--name",      "pc-1.lab",    "--state-dir",
                    "/tmp/x",      "--gpus",      "2",
                    "--mem",       "4G",          "--heartbeat-ms",
                    "250",         NULL};
    wcfg_t c;
    enum wcfg_action act;
    wq_error_t err = {0};
    assert_int_equal(wcfg_parse_args(&c, 13, argv, &act, &err), 0);
    assert_int_equal(act, WCFG_RUN);
    assert_string_equal(c.scheduler, "tcp://10.0.0.5:7420");
    assert_string_equal(c.name, "pc-1.lab");
    assert_string_equal(c.state_dir, "/tmp/x");
    assert_int_equal(c.gpus, 2);
    assert_int_equal(c.mem_mb, 4096);
    assert_int_equal(c.heartbeat_ms, 250);
}

/* idle_heartbeat_ms: unset, the interval follows heartbeat_ms and what the scheduler takes
 * (half its --lost); set, it is kept; below heartbeat_ms, or out of range, is refused with a
 * line naming the key. */
static void
test_idle_heartbeat(void **state)
{
    (void) state;
    wcfg_t c;
    enum wcfg_action act;
    wq_error_t err = {0};
    char *a1[] = {"w", "--name", "pc1", NULL};
    assert_int_equal(wcfg_parse_args(&c, 3, a1, &act, &err), 0);
    assert_int_equal(c.heartbeat_ms, 1000);
    assert_int_equal(c.idle_heartbeat_ms, 0);        /* unset */
    assert_int_equal(wcfg_idle_ms(&c, 5000), 5000);  /* the shipped --lost 10s */
    assert_int_equal(wcfg_idle_ms(&c, 30000), 5000); /* a longer --lost: 5 s still */
    assert_int_equal(wcfg_idle_ms(&c, 2000), 2000);  /* --lost 4s */
    assert_int_equal(wcfg_idle_ms(&c, 400), 1000);   /* never below heartbeat_ms */
    assert_int_equal(wcfg_idle_ms(&c, 0), 3000);     /* no scheduler has said: as before */
    char *a2[] = {"w", "--name", "pc1", "--heartbeat-ms", "200", NULL};
    assert_int_equal(wcfg_parse_args(&c, 5, a2, &act, &err), 0);
    assert_int_equal(wcfg_idle_ms(&c, 5000), 1000); /* 5 x heartbeat_ms */
    assert_int_equal(wcfg_idle_ms(&c, 700), 700);
    assert_int_equal(wcfg_idle_ms(&c, 0), 600);
    char *a3[] = {"w", "--name", "pc1", "--heartbeat-ms", "5000", NULL};
    assert_int_equal(wcfg_parse_args(&c, 5, a3, &act, &err), 0);
    assert_int_equal(wcfg_idle_ms(&c, 5000), 5000);
    assert_int_equal(wcfg_idle_ms(&c, 0), 5000);
    assert_int_equal(wcfg_idle_ms(&c, UINT32_MAX), 5000);
    char *a4[] = {"w",    "--name",         "pc1", "--idle-heartbeat-ms",
                  "1500", "--heartbeat-ms", "200", NULL};
    assert_int_equal(wcfg_parse_args(&c, 7, a4, &act, &err), 0);
    assert_int_equal(c.idle_heartbeat_ms, 1500);
    assert_int_equal(c.heartbeat_ms, 200);
    /* set: kept, whatever the scheduler takes (it warns when over half its --lost) */
    assert_int_equal(wcfg_idle_ms(&c, 5000), 1500);
    assert_int_equal(wcfg_idle_ms(&c, 500), 1500);
    assert_int_equal(wcfg_idle_ms(&c, 0), 1500);
    const char *bad[] = {"49", "60001", "3s", "", "-5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *a5[] = {"w", "--name", "pc1", "--idle-heartbeat-ms", (char *) bad[i], NULL};
        memset(&err, 0, sizeof err);
        assert_int_equal(wcfg_parse_args(&c, 5, a5, &act, &err), -1);
        assert_non_null(strstr(err.text, "idle_heartbeat_ms"));
        assert_null(strchr(err.text, '\n'));
    }
    char *a6[] = {"w", "--name", "pc1", "--idle-heartbeat-ms", "500", NULL};
    memset(&err, 0, sizeof err);
    assert_int_equal(wcfg_parse_args(&c, 5, a6, &act, &err), -1);
    assert_non_null(strstr(err.text, "idle_heartbeat_ms"));
    assert_non_null(strstr(err.text, "heartbeat_ms (1000)"));
    /* the same from a file */
    assert_int_equal(write_ini("[worker]\nheartbeat_ms = 2000\nidle_heartbeat_ms = 1000\n"), 0);
    char *a7[] = {"w", "--name", "pc1", "--config", ini, NULL};
    memset(&err, 0, sizeof err);
    assert_int_equal(wcfg_parse_args(&c, 5, a7, &act, &err), -1);
    assert_non_null(strstr(err.text, "idle_heartbeat_ms"));
    unlink(ini);
    assert_int_equal(write_ini("[worker]\nidle_heartbeat_ms = 0\n"), 0);
    memset(&err, 0, sizeof err);
    assert_int_equal(wcfg_parse_args(&c, 5, a7, &act, &err), -1);
    assert_non_null(strstr(err.text, "idle_heartbeat_ms"));
    assert_non_null(strstr(err.text, ":2:"));
    unlink(ini);
}

static void
test_bad_flags(void **state)
{
    (void) state;
    wcfg_t c;
    enum wcfg_action act;
    wq_error_t err = {0};
    char *a1[] = {"w", "--bogus", NULL};
    assert_int_equal(wcfg_parse_args(&c, 2, a1, &act, &err), -1);
    assert_non_null(strstr(err.text, "--bogus"));
    char *a2[] = {"w", "--name", "bad name", NULL};
    assert_int_equal(wcfg_parse_args(&c, 3, a2, &act, &err), -1);
    assert_non_null(strstr(err.text, "--name"));
    char *a3[] = {"w", "--gpus", "-1", NULL};
    assert_int_equal(wcfg_parse_args(&c, 3, a3, &act, &err), -1);
    char *a4[] = {"w", "--gpus", NULL};
    assert_int_equal(wcfg_parse_args(&c, 2, a4, &act, &err), -1);
    assert_null(strchr(err.text, '\n'));
    char *a6[] = {"w", "--probe-port", "65536", NULL};
    assert_int_equal(wcfg_parse_args(&c, 3, a6, &act, &err), -1);
    assert_non_null(strstr(err.text, "probe"));
    char *a7[] = {"w", "--probe-port", "7425", NULL};
    assert_int_equal(wcfg_parse_args(&c, 3, a7, &act, &err), 0);
    assert_int_equal(c.probe_port, 7425);
    char *a5[] = {"w", "--version", NULL};
    assert_int_equal(wcfg_parse_args(&c, 2, a5, &act, &err), 0);
    assert_int_equal(act, WCFG_VERSION);
}

static void
test_config_file(void **state)
{
    (void) state;
    assert_int_equal(write_ini("[other]\nx = 1\n[worker]\nname = fromfile\ngpus = 3\n"
                               "kill_grace_ms = 500\nrendezvous = no\n"),
                     0);
    char *argv[] = {"w", "--config", ini, "--gpus", "1", NULL};
    wcfg_t c;
    enum wcfg_action act;
    wq_error_t err = {0};
    assert_int_equal(wcfg_parse_args(&c, 5, argv, &act, &err), 0);
    assert_string_equal(c.name, "fromfile");
    assert_int_equal(c.gpus, 1); /* the flag wins */
    assert_int_equal(c.kill_grace_ms, 500);
    assert_int_equal(c.rendezvous, 0);
    unlink(ini);

    assert_int_equal(write_ini("[worker]\nname = ok\ngpus = lots\n"), 0);
    assert_int_equal(wcfg_parse_args(&c, 3, argv, &act, &err), -1);
    char want[96];
    snprintf(want, sizeof want, "%s:3:", ini);
    assert_non_null(strstr(err.text, want));
    unlink(ini);

    assert_int_equal(write_ini("[worker]\nthis is not ini\n"), 0);
    assert_int_equal(wcfg_parse_args(&c, 3, argv, &act, &err), -1);
    snprintf(want, sizeof want, "%s:2:", ini);
    assert_non_null(strstr(err.text, want));
    unlink(ini);

    assert_int_equal(write_ini("[worker]\nflavour = salty\n"), 0);
    assert_int_equal(wcfg_parse_args(&c, 3, argv, &act, &err), -1);
    assert_non_null(strstr(err.text, "flavour"));
    unlink(ini);
}

/* run_as and service_user: defaults, flags, the file, and bad values named. */
static void
test_run_as(void **state)
{
    (void) state;
    wcfg_t c;
    enum wcfg_action act;
    wq_error_t err = {0};
    char *a0[] = {"w", NULL};
    assert_int_equal(wcfg_parse_args(&c, 1, a0, &act, &err), 0);
    assert_int_equal(c.run_as, RUNAS_SERVICE);
    assert_string_equal(c.service_user, "wslq");
    char *a1[] = {"w", "--run-as", "owner", "--service-user", "svc-jobs", NULL};
    assert_int_equal(wcfg_parse_args(&c, 5, a1, &act, &err), 0);
    assert_int_equal(c.run_as, RUNAS_OWNER);
    assert_string_equal(c.service_user, "svc-jobs");
    char *a2[] = {"w", "--run-as", "root", NULL};
    assert_int_equal(wcfg_parse_args(&c, 3, a2, &act, &err), -1);
    assert_non_null(strstr(err.text, "--run-as"));
    char *a3[] = {"w", "--service-user", "bad name", NULL};
    assert_int_equal(wcfg_parse_args(&c, 3, a3, &act, &err), -1);
    assert_non_null(strstr(err.text, "service_user"));

    assert_int_equal(write_ini("[worker]\nrun_as = worker\nservice_user = jobs\n"), 0);
    char *a4[] = {"w", "--config", ini, NULL};
    assert_int_equal(wcfg_parse_args(&c, 3, a4, &act, &err), 0);
    assert_int_equal(c.run_as, RUNAS_WORKER);
    assert_string_equal(c.service_user, "jobs");
    unlink(ini);
    assert_int_equal(write_ini("[worker]\nrun_as = everyone\n"), 0);
    assert_int_equal(wcfg_parse_args(&c, 3, a4, &act, &err), -1);
    char want[96];
    snprintf(want, sizeof want, "%s:2: run_as", ini);
    assert_non_null(strstr(err.text, want));
    unlink(ini);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flags),          cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_idle_heartbeat), cmocka_unit_test(test_config_file),
        cmocka_unit_test(test_run_as),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
