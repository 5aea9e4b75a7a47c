/* GPU resets by Windows (TDR) at a job's end; see tdr.h. */
#include "worker/tdr.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "worker/worker_int.h"

#define LINE_MAX_SCAN 1024 /* a longer line is looked at in its first this many bytes */

/* What one line must hold (lower case) to count. 'also': a second word the same line must
 * hold too (lower case, "" = none), for messages that other failures can print alike. */
static const struct {
    const char *needle;
    const char *also;
    const char *what;
} signs[] = {
    {"cudaerrorlaunchtimeout", "", "cudaErrorLaunchTimeout"},
    {"cuda_error_launch_timeout", "", "CUDA_ERROR_LAUNCH_TIMEOUT"},
    {"the launch timed out and was terminated", "", "a CUDA launch timeout"},
    {"dxgi_error_device_removed", "", "DXGI_ERROR_DEVICE_REMOVED"},
    {"nvrm: xid", "", "an NVIDIA Xid error"},
    {"xid (pci:", "", "an NVIDIA Xid error"},
    {"device has been removed", "gpu", "the GPU device removed"},
    {"device has been removed", "dxg", "the GPU device removed"},
    {"device has been removed", "d3d", "the GPU device removed"},
    {"device has been removed", "cuda", "the GPU device removed"},
    {"unspecified launch failure", "cuda", "a CUDA unspecified launch failure"},
};

static int
line_sign(const char *lower)
{
    for (size_t i = 0; i < sizeof signs / sizeof signs[0]; i++)
        if (strstr(lower, signs[i].needle) != NULL &&
            (signs[i].also[0] == '\0' || strstr(lower, signs[i].also) != NULL))
            return (int) i;
    return -1;
}

int
tdr_scan(const char *text, size_t len, char *why, size_t whylen)
{
    char lower[LINE_MAX_SCAN + 1];
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t) (nl - text) : len;
        size_t n = end - pos < LINE_MAX_SCAN ? end - pos : LINE_MAX_SCAN;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char) text[pos + i];
            lower[i] = c == '\0' ? ' ' : (char) tolower(c);
        }
        lower[n] = '\0';
        int s = line_sign(lower);
        if (s >= 0) {
            if (why != NULL && whylen > 0) {
                /* the line as printed, shortened and made one printable line */
                char shown[121];
                size_t k = 0;
                for (size_t i = 0; i < n && k < sizeof shown - 1; i++) {
                    unsigned char c = (unsigned char) text[pos + i];
                    if (c == '\r')
                        continue;
                    shown[k++] = c < 0x20 || c == 0x7f ? '?' : (char) c;
                }
                while (k > 0 && shown[k - 1] == ' ')
                    k--;
                shown[k] = '\0';
                const char *start = shown;
                while (*start == ' ')
                    start++;
                snprintf(why, whylen, "%s in the job's output: %s", signs[s].what, start);
            }
            return 1;
        }
        pos = end + 1;
    }
    return 0;
}

int
tdr_scan_fd(int fd, char *why, size_t whylen)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size <= 0)
        return 0;
    off_t from = st.st_size > TDR_SCAN_TAIL ? st.st_size - TDR_SCAN_TAIL : 0;
    size_t want = (size_t) (st.st_size - from);
    char *buf = malloc(want);
    if (buf == NULL)
        return 0;
    size_t got = 0;
    while (got < want) {
        ssize_t k = pread(fd, buf + got, want - got, from + (off_t) got);
        if (k <= 0)
            break;
        got += (size_t) k;
    }
    size_t skip = 0;
    if (from > 0) { /* the first line is cut: start at the next one */
        const char *nl = memchr(buf, '\n', got);
        skip = nl ? (size_t) (nl - buf) + 1 : got;
    }
    int hit = tdr_scan(buf + skip, got - skip, why, whylen);
    free(buf);
    return hit;
}

/* The count in a report read from the owner file, -1 when the report is not fresh at now. */
static int64_t
report_events(const worker_t *w, const owner_report_t *rep, int64_t now)
{
    if (rep->version != OWNER_FORMAT_VERSION || rep->time <= 0 ||
        llabs(now - rep->time) > w->cfg.owner_lim.stale_s)
        return -1;
    return rep->tdr_events;
}

int64_t
tdr_events_now(worker_t *w)
{
    if (w->cfg.owner_file[0] == '\0')
        return -1;
    outbox_owner_refresh(w);
    return report_events(w, &w->owner_rep, wq_clock_wall_ms() / 1000);
}

int64_t
tdr_events_recent(worker_t *w)
{
    if (w->cfg.owner_file[0] == '\0')
        return -1;
    if (w->owner_read_ms == 0 || wq_clock_mono_ms() - w->owner_read_ms > TDR_REUSE_MS)
        outbox_owner_refresh(w);
    return report_events(w, &w->owner_rep, wq_clock_wall_ms() / 1000);
}

void
tdr_check_end(worker_t *w, job_t *j)
{
    if ((j->exit_code == 0 && j->signal == 0) || j->timed_out || j->killed)
        return; /* it did not fail, or was stopped: its time limit, a JobKill */
    char why[sizeof j->gpu_reset_why];
    int64_t events = j->tdr_known ? tdr_events_now(w) : -1;
    if (events >= 0 && events > j->tdr_events_at_start) {
        snprintf(why, sizeof why, "Windows logged %lld display driver reset%s (TDR) while it ran",
                 (long long) (events - j->tdr_events_at_start),
                 events - j->tdr_events_at_start == 1 ? "" : "s");
    } else if (!tdr_scan_fd(j->log_fd, why, sizeof why)) {
        return;
    }
    j->gpu_reset = 1;
    snprintf(j->gpu_reset_why, sizeof j->gpu_reset_why, "%s", why);
    log_warn("job failed with a GPU reset " JOB_FMT " why=\"%s\"", j->id, j->gpu_reset_why);
}
