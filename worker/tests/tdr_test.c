/* tdr: the GPU reset (TDR) messages in a failed job's output, with the lines that look alike
 * but are not one; only the tail of a long output is read; the reporter's TDR event count. */
/* cmocka.h needs these first. */
#include <fcntl.h>
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

#include "worker/owner.h"
#include "worker/tdr.h"

static int
scan(const char *text, char *why, size_t n)
{
    why[0] = '\0';
    return tdr_scan(text, strlen(text), why, n);
}

static void
test_true_positives(void **state)
{
    (void) state;
    static const char *const hits[] = {
        "step 10\nRuntimeError: CUDA error: the launch timed out and was terminated\n",
        "cudaErrorLaunchTimeout at train.cu:42\n",
        "error: CUDA_ERROR_LAUNCH_TIMEOUT (702)\n",
        "[rank 0] NVRM: Xid (PCI:0000:01:00): 8, pid=1234, Channel 00000010\n",
        "Xid (PCI:0000:2b:00): 109, pid=77, name=python\n",
        "D3D12 device removed: DXGI_ERROR_DEVICE_REMOVED\n",
        "the GPU device has been removed\n",
        "RuntimeError: CUDA error: unspecified launch failure\r\n",
        "loss 0.1\nloss 0.09\nTHE LAUNCH TIMED OUT AND WAS TERMINATED", /* no final newline */
    };
    char why[200];
    for (size_t i = 0; i < sizeof hits / sizeof hits[0]; i++) {
        if (scan(hits[i], why, sizeof why) != 1)
            fail_msg("not seen: %s", hits[i]);
        assert_non_null(strstr(why, "in the job's output: "));
        assert_null(strchr(why, '\n'));
        assert_null(strchr(why, '\r'));
    }
    assert_int_equal(scan(hits[0], why, sizeof why), 1);
    assert_string_equal(why, "a CUDA launch timeout in the job's output: RuntimeError: CUDA error: "
                             "the launch timed out and was terminated");
    /* a long line is shown shortened, still one line */
    char longline[4000];
    memset(longline, 'x', sizeof longline);
    memcpy(longline, "cudaErrorLaunchTimeout ", 23);
    longline[sizeof longline - 1] = '\0';
    assert_int_equal(scan(longline, why, sizeof why), 1);
    assert_true(strlen(why) < sizeof why);
}

static void
test_false_positives(void **state)
{
    (void) state;
    static const char *const misses[] = {
        "",
        "Traceback (most recent call last):\nValueError: bad shape\n",
        "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB\n",
        "connect: the launch timed out\n",                /* not the CUDA message */
        "Xidian University dataset loaded\n",             /* a word starting with Xid */
        "USB device has been removed\n",                  /* not a GPU */
        "worker: unspecified launch failure of task 3\n", /* no CUDA on the line */
        "CUDA error: an illegal memory access was encountered\n",
        "cudaErrorLaunch\nTimeout\n", /* split over lines */
    };
    char why[200];
    for (size_t i = 0; i < sizeof misses / sizeof misses[0]; i++)
        if (scan(misses[i], why, sizeof why) != 0)
            fail_msg("wrongly seen: %s (%s)", misses[i], why);
    /* a NUL inside the text neither ends nor hides the scan */
    const char nul[] = "a\0b\ncudaErrorLaunchTimeout\n";
    assert_int_equal(tdr_scan(nul, sizeof nul - 1, why, sizeof why), 1);
    assert_int_equal(tdr_scan(nul, 4, why, sizeof why), 0);
    assert_int_equal(tdr_scan("cudaErrorLaunchTimeout", 22, NULL, 0), 1);
}

/* Only the last TDR_SCAN_TAIL bytes of a file are read; a line cut at its start is skipped. */
static void
test_tail(void **state)
{
    (void) state;
    char path[] = "/tmp/wslq-tdr-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    char why[200];
    assert_int_equal(tdr_scan_fd(fd, why, sizeof why), 0); /* empty */
    assert_int_equal(tdr_scan_fd(-1, why, sizeof why), 0);
    const char *early = "cudaErrorLaunchTimeout early\n";
    assert_int_equal(write(fd, early, strlen(early)), (ssize_t) strlen(early));
    assert_int_equal(tdr_scan_fd(fd, why, sizeof why), 1);
    /* then more than the tail of ordinary output: the early message is out of reach */
    char line[101];
    memset(line, 'a', 99);
    line[99] = '\n';
    line[100] = '\0';
    for (int i = 0; i < TDR_SCAN_TAIL / 100 + 10; i++)
        assert_int_equal(write(fd, line, 100), 100);
    assert_int_equal(tdr_scan_fd(fd, why, sizeof why), 0);
    const char *late = "[rank 1] RuntimeError: CUDA error: unspecified launch failure\n";
    assert_int_equal(write(fd, late, strlen(late)), (ssize_t) strlen(late));
    assert_int_equal(tdr_scan_fd(fd, why, sizeof why), 1);
    assert_non_null(strstr(why, "[rank 1] RuntimeError"));
    close(fd);
}

/* The owner file's optional "tdr": {"events": N}. */
static void
test_owner_events(void **state)
{
    (void) state;
    owner_limits_t lim;
    owner_limits_default(&lim);
    owner_report_t r;
    char why[200];
#define BASE                                                                          \
    "{\"version\":1,\"time\":1000,\"idle_s\":5,\"fullscreen\":false,\"gpu_ok\":true," \
    "\"gpu_procs\":[],\"tdr\":{\"delay_s\":8,\"level\":3%s}}"
    char buf[512];
    snprintf(buf, sizeof buf, BASE, ",\"events\":3");
    assert_int_equal(owner_classify(buf, strlen(buf), 1000, &lim, &r, why, sizeof why),
                     OWNER_PRESENT);
    assert_int_equal(r.tdr_events, 3);
    assert_int_equal(r.tdr_delay_s, 8);
    snprintf(buf, sizeof buf, BASE, ""); /* an older reporter: no count */
    assert_int_equal(owner_classify(buf, strlen(buf), 1000, &lim, &r, why, sizeof why),
                     OWNER_PRESENT);
    assert_int_equal(r.tdr_events, -1);
    static const char *const bad[] = {",\"events\":-1", ",\"events\":\"3\"", ",\"events\":null",
                                      ",\"events\":true"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, BASE, bad[i]);
        assert_int_equal(owner_classify(buf, strlen(buf), 1000, &lim, &r, why, sizeof why),
                         OWNER_UNKNOWN);
        assert_string_equal(why, "owner file: tdr.events is missing or invalid");
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_true_positives),
        cmocka_unit_test(test_false_positives),
        cmocka_unit_test(test_tail),
        cmocka_unit_test(test_owner_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
