/* gpu.tdr: Windows' TDR delay through reg.exe (see tdrdelay.h). */
#include "node/tdrdelay.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "node/node_internal.h"

#define TDR_KEY     "HKLM\\System\\CurrentControlSet\\Control\\GraphicsDrivers"
#define REG_TIMEOUT 5000 /* ms: interop can hang when Windows is busy */

int
tdr_delay_parse(const char *out, int rc, int *delay_s)
{
    /* "    TdrDelay    REG_DWORD    0x8" */
    for (const char *line = out; line && *line;) {
        const char *end = strpbrk(line, "\r\n");
        size_t n = end ? (size_t) (end - line) : strlen(line);
        char buf[256];
        if (n < sizeof buf) {
            memcpy(buf, line, n);
            buf[n] = '\0';
            char name[64], type[64], value[64], extra[8];
            int k = sscanf(buf, "%63s %63s %63s %7s", name, type, value, extra);
            if (k == 3 && strcasecmp(name, "TdrDelay") == 0) {
                if (strcmp(type, "REG_DWORD") != 0 || strncasecmp(value, "0x", 2) != 0 ||
                    value[2] == '\0')
                    return -1;
                char *e;
                errno = 0;
                unsigned long v = strtoul(value + 2, &e, 16);
                if (*e != '\0' || errno != 0 || v > 3600 * 24)
                    return -1;
                *delay_s = (int) v;
                return 1;
            }
        }
        line = end ? end + 1 : NULL;
    }
    /* reg.exe says "ERROR: The system was unable to find the specified registry key or
     * value." on stderr and exits 1 when TdrDelay is not set */
    return rc == 1 ? 0 : -1;
}

int
tdr_reg_exe(const char *root, char *out, size_t size)
{
    const char *path = getenv("PATH");
    while (path && *path) {
        size_t n = strcspn(path, ":");
        if (n > 0 && n < 4000) {
            snprintf(out, size, "%.*s/reg.exe", (int) n, path);
            if (access(out, X_OK) == 0)
                return 0;
        }
        path += n + (path[n] == ':');
    }
    snprintf(out, size, "%s/mnt/c/Windows/System32/reg.exe",
             root && strcmp(root, "/") != 0 ? root : "");
    return access(out, X_OK) == 0 ? 0 : -1;
}

/* Run reg.exe query; its stdout (at most size - 1 bytes) in out. The exit code, -1 when it
 * could not run or took too long. */
static int
run_reg(const char *exe, char *out, size_t size)
{
    const char *const argv[] = {exe, "query", TDR_KEY, "/v", "TdrDelay", NULL};
    int rc = node_run_output(argv, REG_TIMEOUT, out, size);
    return rc == 127 ? -1 : rc;
}

void
doctor_check_tdr(doctor_report_t *r, const char *root)
{
    const char *fix_short = "keep each CUDA kernel well under the TDR delay, or raise TdrDelay "
                            "(REG_DWORD, seconds) under " TDR_KEY " and restart Windows";
    char exe[4096];
    if (tdr_reg_exe(root, exe, sizeof exe) < 0) {
        if (doctor_facts(r)->is_wsl)
            doctor_add(r, "gpu.tdr", DOCTOR_INFO,
                       "enable WSL interop ([interop] enabled = true in /etc/wsl.conf)",
                       "reg.exe not found: the TDR delay is unknown (Windows' default is %d s)",
                       TDR_DELAY_DEFAULT_S);
        return;
    }
    char out[2048];
    int rc = run_reg(exe, out, sizeof out);
    int delay = TDR_DELAY_DEFAULT_S;
    int got = rc < 0 ? -1 : tdr_delay_parse(out, rc, &delay);
    if (got < 0) {
        doctor_add(r, "gpu.tdr", DOCTOR_INFO, NULL,
                   "could not read TdrDelay with %s (%s): Windows' default is %d s", exe,
                   rc < 0 ? "it did not run" : "unexpected output", TDR_DELAY_DEFAULT_S);
        return;
    }
    if (delay <= TDR_DELAY_DEFAULT_S)
        doctor_add(r, "gpu.tdr", DOCTOR_WARN, fix_short,
                   "TdrDelay is %d s%s: a CUDA kernel running longer is stopped by a GPU reset "
                   "and its job fails",
                   delay, got == 0 ? " (not set: Windows' default)" : "");
    else
        doctor_add(r, "gpu.tdr", DOCTOR_PASS, NULL,
                   "TdrDelay is %d s: Windows resets a GPU that does not answer for that long",
                   delay);
}
