/* wslq doctor --scheduler-host: the pure parts (cli/doctor_sched.h) and the config reading. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* after the standard headers */
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/doctor_sched.h"

static void
test_ntp_parse(void **state)
{
    (void) state;
    assert_int_equal(dsched_ntp_parse("NTPSynchronized=yes\n"), 1);
    assert_int_equal(dsched_ntp_parse("NTPSynchronized=yes"), 1);
    assert_int_equal(dsched_ntp_parse("NTPSynchronized=no\n"), 0);
    assert_int_equal(dsched_ntp_parse("Timezone=UTC\nNTPSynchronized=no\n"), 0);
    /* what timedatectl says without systemd, and anything else */
    assert_int_equal(dsched_ntp_parse("System has not been booted with systemd as init system "
                                      "(PID 1). Can't operate.\nFailed to connect to bus: Host "
                                      "is down\n"),
                     -1);
    assert_int_equal(dsched_ntp_parse(""), -1);
    assert_int_equal(dsched_ntp_parse("NTPSynchronized=maybe\n"), -1);
    assert_int_equal(dsched_ntp_parse("NTPSynchronized=yesterday\n"), -1);
    assert_int_equal(dsched_ntp_parse("XNTPSynchronized=yes\n"), -1);
}

static void
test_endpoint(void **state)
{
    (void) state;
    char host[64];
    unsigned port = 0;
    assert_int_equal(dsched_endpoint("tcp://0.0.0.0:7420", host, sizeof host, &port), 0);
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(port, 7420);
    assert_true(dsched_is_any(host));
    assert_int_equal(dsched_endpoint("tcp://*:1", host, sizeof host, &port), 0);
    assert_true(dsched_is_any(host) && port == 1);
    assert_int_equal(dsched_endpoint("tcp://[::1]:7421", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_true(dsched_is_loopback(host));
    assert_int_equal(dsched_endpoint("tcp://127.0.0.1:7420", host, sizeof host, &port), 0);
    assert_true(dsched_is_loopback(host) && !dsched_is_any(host));
    assert_int_equal(dsched_endpoint("tcp://10.0.0.5:7420", host, sizeof host, &port), 0);
    assert_false(dsched_is_loopback(host) || dsched_is_any(host));
    /* not endpoints: nothing written that a caller could take for one */
    assert_int_equal(dsched_endpoint("ipc:///run/x", host, sizeof host, &port), -1);
    assert_int_equal(dsched_endpoint("tcp://host", host, sizeof host, &port), -1);
    assert_int_equal(dsched_endpoint("tcp://host:", host, sizeof host, &port), -1);
    assert_int_equal(dsched_endpoint("tcp://host:0", host, sizeof host, &port), -1);
    assert_int_equal(dsched_endpoint("tcp://host:65536", host, sizeof host, &port), -1);
    assert_int_equal(dsched_endpoint("tcp://host:74x", host, sizeof host, &port), -1);
    char tiny[4];
    assert_int_equal(dsched_endpoint("tcp://longhost:1", tiny, sizeof tiny, &port), -1);
}

/* A real file's mode, as stat gives it. */
static void
test_key_mode(void **state)
{
    (void) state;
    char path[] = "/tmp/wslq-doctor-key-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char why[160];
    struct stat st;
    static const struct {
        mode_t mode;
        doctor_verdict_t v;
        const char *why;
    } cases[] = {
        {0600, DOCTOR_PASS, "mode 0600, its owner's only"},
        {0400, DOCTOR_PASS, "mode 0400, its owner's only"},
        {0640, DOCTOR_FAIL, "mode 0640: its group may read or change it"},
        {0644, DOCTOR_FAIL, "mode 0644: every user of this host may read or change it"},
        {0602, DOCTOR_FAIL, "mode 0602: every user of this host may read or change it"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(chmod(path, cases[i].mode), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(dsched_key_mode(st.st_mode, why, sizeof why), cases[i].v);
        assert_string_equal(why, cases[i].why);
    }
    unlink(path);
}

static void
test_sqlite_header(void **state)
{
    (void) state;
    unsigned char h[100] = "SQLite format 3";
    h[60] = 0;
    h[61] = 0;
    h[62] = 1;
    h[63] = 4;
    uint32_t v = 0;
    assert_int_equal(dsched_sqlite_header(h, sizeof h, &v), 0);
    assert_int_equal(v, 260);
    assert_int_equal(dsched_sqlite_header(h, 99, &v), -1); /* short */
    h[14] = 'x';                                           /* the magic's last byte */
    assert_int_equal(dsched_sqlite_header(h, sizeof h, &v), -1);
}

static void
test_disk(void **state)
{
    (void) state;
    const uint64_t mib = 1ull << 20, gib = 1ull << 30;
    assert_int_equal(dsched_disk_verdict(99 * mib, 100 * gib), DOCTOR_FAIL);
    assert_int_equal(dsched_disk_verdict(500 * mib, 1 * gib), DOCTOR_WARN);
    assert_int_equal(dsched_disk_verdict(4 * gib, 100 * gib), DOCTOR_WARN); /* under 5 % */
    assert_int_equal(dsched_disk_verdict(6 * gib, 100 * gib), DOCTOR_PASS);
    assert_int_equal(dsched_disk_verdict(2 * gib, 0), DOCTOR_PASS);
}

static void
test_conf(void **state)
{
    (void) state;
    dsched_conf_t c;
    wq_error_t err = {0};
    /* no file: the scheduler's defaults */
    assert_int_equal(dsched_conf_load(&c, "/nonexistent/wslq.conf", &err), 0);
    assert_false(c.found);
    assert_string_equal(c.listen, "tcp://*:7420");
    assert_string_equal(c.state_dir, "/var/lib/wslq/scheduler");
    assert_string_equal(c.http, "127.0.0.1:7421");
    char path[] = "/tmp/wslq-doctor-conf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("[worker]\nstate_dir = /w\n[scheduler]\nlisten = tcp://0.0.0.0:9000\n"
          "state_dir = /s\nhttp = eth0:9001\nhttp_public = summary\n"
          "http_token_file = /etc/wslq/http.token\nsync = full\n[client]\nscheduler = x\n",
          f);
    fclose(f);
    assert_int_equal(dsched_conf_load(&c, path, &err), 0);
    assert_true(c.found && c.http_public && !c.insecure);
    assert_string_equal(c.path, path);
    assert_string_equal(c.listen, "tcp://0.0.0.0:9000");
    assert_string_equal(c.state_dir, "/s");
    assert_string_equal(c.http, "eth0:9001");
    assert_string_equal(c.http_token, "/etc/wslq/http.token");
    f = fopen(path, "w");
    fputs("[scheduler\nlisten = x\n", f);
    fclose(f);
    assert_int_equal(dsched_conf_load(&c, path, &err), -1);
    assert_non_null(strstr(err.text, ":1: syntax error"));
    unlink(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ntp_parse), cmocka_unit_test(test_endpoint),
        cmocka_unit_test(test_key_mode),  cmocka_unit_test(test_sqlite_header),
        cmocka_unit_test(test_disk),      cmocka_unit_test(test_conf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
