/* Room on the state directory's file system; see space.h. */
#include "worker/space.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/log.h"

static void
reserve_path(const space_t *s, char *buf, size_t size)
{
    snprintf(buf, size, "%.4000s/reserve", s->dir);
}

void
space_open(space_t *s, const char *dir)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    s->free_mb = -1;
    s->verdict = WSLQ__CHECK_VERDICT__CHECK_PASS;
    char p[4200];
    reserve_path(s, p, sizeof p);
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
        /* real blocks, not a hole: the point is that they are taken */
        s->reserve_held = posix_fallocate(fd, 0, (off_t) SPACE_RESERVE_MB << 20) == 0;
        close(fd);
        if (!s->reserve_held)
            unlink(p);
    }
    if (!s->reserve_held)
        log_warn("no reserve file for job states dir=%s: %s", dir, strerror(errno));
    space_check(s);
    s->changed = 0; /* the first verdict goes out with the Register */
}

int
space_check(space_t *s)
{
    struct statvfs v;
    Wslq__CheckVerdict was = s->verdict;
    if (statvfs(s->dir, &v) < 0) {
        s->free_mb = -1;
        return 0;
    }
    s->free_mb = (int64_t) ((uint64_t) v.f_bavail * v.f_frsize >> 20);
    if (s->free_mb < SPACE_FAIL_MB)
        s->verdict = WSLQ__CHECK_VERDICT__CHECK_FAIL;
    else if (s->free_mb < SPACE_WARN_MB)
        s->verdict = WSLQ__CHECK_VERDICT__CHECK_WARN;
    else
        s->verdict = WSLQ__CHECK_VERDICT__CHECK_PASS;
    if (s->verdict != was) {
        s->changed = 1;
        if (s->verdict == WSLQ__CHECK_VERDICT__CHECK_FAIL)
            log_err("the spool is full: job output is at risk dir=%s free_mb=%" PRId64, s->dir,
                    s->free_mb);
        else
            log_info("spool space dir=%s free_mb=%" PRId64, s->dir, s->free_mb);
    }
    return s->verdict != was;
}

int
space_full(const space_t *s)
{
    return s->verdict == WSLQ__CHECK_VERDICT__CHECK_FAIL;
}

void
space_node_check(const space_t *s, Wslq__NodeCheck *c, char *summary, size_t size)
{
    wslq__node_check__init(c);
    c->id = "disk.spool";
    c->verdict = s->verdict;
    if (s->free_mb < 0)
        snprintf(summary, size, "free space of %s unknown", s->dir);
    else if (s->verdict == WSLQ__CHECK_VERDICT__CHECK_FAIL)
        snprintf(summary, size,
                 "%s has %" PRId64 " MiB free: job output is being lost; no new jobs here", s->dir,
                 s->free_mb);
    else
        snprintf(summary, size, "%s has %" PRId64 " MiB free", s->dir, s->free_mb);
    c->summary = summary;
    c->fix = s->verdict == WSLQ__CHECK_VERDICT__CHECK_PASS
                 ? ""
                 : "free space on that file system (old spool directories go after "
                   "spool_keep_days), or move state_dir to a larger disk";
}

int
space_release_reserve(space_t *s)
{
    if (!s->reserve_held)
        return 0;
    char p[4200];
    reserve_path(s, p, sizeof p);
    unlink(p);
    s->reserve_held = 0;
    log_err("disk full: released the reserve file so job states can be written dir=%s", s->dir);
    return 1;
}
