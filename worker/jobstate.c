/* Per-job state file (see jobstate.h). */
#include "worker/jobstate.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/parse.h"

/* the longest text of a jobstate_t: its strings, and a pgid line of at most 24 bytes a rank */
#define JOBSTATE_TEXT_MAX (sizeof(jobstate_t) + 24 * WIRE_MAX_RANKS + 1024)
/* The most a rewrite in place writes: one page, which a kill cannot cut in two */
#define JOBSTATE_PAGE 4096

/* Copy s into dst (size n) with newlines turned into spaces, so one value stays one line. */
static void
one_line(char *dst, size_t n, const char *s)
{
    size_t i = 0;
    for (; s[i] != '\0' && i + 1 < n; i++)
        dst[i] = (s[i] == '\n' || s[i] == '\r') ? ' ' : s[i];
    dst[i] = '\0';
}

/* The file's text into buf (size n): its length, or -1 when it does not fit. */
static int
format(char *buf, size_t n, const jobstate_t *st)
{
    char name[sizeof st->name], reason[sizeof st->reason];
    one_line(name, sizeof name, st->name);
    one_line(reason, sizeof reason, st->reason);
    size_t len = 0;
#define PUT(...)                                                          \
    do {                                                                  \
        int k_ = snprintf(buf + len, len < n ? n - len : 0, __VA_ARGS__); \
        if (k_ < 0)                                                       \
            return -1;                                                    \
        len += (size_t) k_;                                               \
    } while (0)
    PUT("version=%d\njob_id=%" PRIu64 "\nattempt=%" PRIu32 "\nname=%s\nfirst_rank=%" PRIu32
        "\nnranks=%d\nspool=%s\nstart_wall_ms=%" PRId64 "\ntime_limit_s=%" PRId64 "\n",
        JOBSTATE_VERSION, st->job_id, st->attempt, name, st->first_rank, st->nranks, st->spool,
        st->start_wall_ms, st->time_limit_s);
    for (int i = 0; i < st->nranks; i++)
        PUT("pgid=%ld\n", (long) st->pgid[i]);
    PUT("ended=%d\n", st->ended);
    if (st->ended)
        PUT("exit_code=%d\nsignal=%d\ntimed_out=%d\nkilled=%d\nfailed_rank=%d\nreason=%s\n"
            "log_bytes=%" PRIu64 "\n",
            st->exit_code, st->signal, st->timed_out, st->killed, st->failed_rank, reason,
            st->log_bytes);
    else if (st->timed_out || st->killed) /* being stopped: its SIGTERM went out */
        PUT("timed_out=%d\nkilled=%d\nreason=%s\n", st->timed_out, st->killed, reason);
#undef PUT
    return len < n && len <= INT_MAX ? (int) len : -1;
}

/* All of buf at offset off of fd: 0, or -1 with errno. */
static int
write_all(int fd, const char *buf, size_t len, off_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(fd, buf + done, len - done, off + (off_t) done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        done += (size_t) w;
    }
    return 0;
}

/* Files of ended jobs kept for the next jobs' states (jobstate_forget): <dir>/spare-<i> for
 * i < n, in the directory of the states. One process's memory: a restarted worker starts
 * with none and overwrites the names of the spares a former one left. */
#define SPARES_MAX 64
static struct {
    char dir[PATH_MAX];
    size_t n;
} spares;

/* The directory of path (up to its last '/') into dir (size PATH_MAX); 0, or -1 if none. */
static int
dir_of(const char *path, char *dir)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL || (size_t) (slash - path) >= PATH_MAX)
        return -1;
    memcpy(dir, path, (size_t) (slash - path));
    dir[slash - path] = '\0';
    return 0;
}

/* <dir>/spare-<i> into p (size n): 0, or -1 when it does not fit. */
static int
spare_path(char *p, size_t n, const char *dir, size_t i)
{
    return snprintf(p, n, "%s/spare-%zu", dir, i) < (int) n ? 0 : -1;
}

/* The text buf[0..n) made as long as a file of cur bytes, when shorter, with a "pad=..."
 * line the reader ignores (at least 5 bytes: "pad=" and '\n'). The new length, or 0 when that
 * does not fit in cap. */
static size_t
pad_to(char *buf, size_t n, size_t cap, off_t cur)
{
    if (cur <= 0 || (size_t) cur <= n)
        return n;
    size_t pad = (size_t) cur - n < 5 ? 5 : (size_t) cur - n;
    if (n + pad > cap)
        return 0;
    memcpy(buf + n, "pad=", 4);
    memset(buf + n + 4, '.', pad - 5);
    buf[n + pad - 1] = '\n';
    return n + pad;
}

/* A spare's text replaced by buf (len used, room for a page), then the spare renamed to path:
 * 0 with the file open in *keep, or -1 (no spare here, or one that failed: the caller makes a
 * new file). A longer spare is padded rather than cut to length, as a rewrite in place is (a
 * cut costs more than the rest of the save on ext4 with a journal); one that would pass a
 * page is cut, so the later rewrites stay in place. */
static int
write_spare(const char *path, char *buf, size_t len, int *keep)
{
    char dir[PATH_MAX], p[PATH_MAX + 32];
    while (spares.n > 0 && dir_of(path, dir) == 0 && strcmp(dir, spares.dir) == 0 &&
           spare_path(p, sizeof p, dir, spares.n - 1) == 0) {
        spares.n--;
        int fd = open(p, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue; /* gone meanwhile: the next one */
        off_t cur = lseek(fd, 0, SEEK_END);
        size_t n = cur < 0 ? 0 : pad_to(buf, len, JOBSTATE_PAGE, cur);
        if (write_all(fd, buf, n ? n : len, 0) == 0 &&
            (n != 0 || ftruncate(fd, (off_t) len) == 0) && rename(p, path) == 0) {
            *keep = fd;
            return 0;
        }
        close(fd);
        unlink(p);
    }
    return -1;
}

/* Through path.tmp and a rename; the file left open in *keep when keep is not NULL. */
static int
write_new(const char *path, const char *buf, size_t len, int *keep, wq_error_t *err)
{
    char tmp[PATH_MAX + 8];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int) sizeof tmp)
        return wq_fail(err, WQ_EINVAL, "state file path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return wq_fail_errno(err, "cannot write %s", tmp);
    if (write_all(fd, buf, len, 0) < 0) {
        wq_fail_errno(err, "cannot write %s", tmp);
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) < 0) {
        wq_fail_errno(err, "cannot rename %s", tmp);
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (keep != NULL)
        *keep = fd;
    else
        close(fd);
    return 0;
}

int
jobstate_write(const char *path, const jobstate_t *st, wq_error_t *err)
{
    char buf[JOBSTATE_TEXT_MAX];
    int len = format(buf, sizeof buf, st);
    if (len < 0)
        return wq_fail(err, WQ_EINVAL, "state of job %" PRIu64 " too long", st->job_id);
    return write_new(path, buf, (size_t) len, NULL, err);
}

int
jobstate_rewrite(const char *path, const jobstate_t *st, int *fd, wq_error_t *err)
{
    char buf[JOBSTATE_TEXT_MAX];
    int len = format(buf, sizeof buf, st);
    if (len < 0)
        return wq_fail(err, WQ_EINVAL, "state of job %" PRIu64 " too long", st->job_id);
    if (*fd < 0 && write_spare(path, buf, (size_t) len, fd) == 0)
        return 0;
    if (*fd < 0)
        return write_new(path, buf, (size_t) len, fd, err);
    /* In place, with one pwrite from the start that is never shorter than the file: a
     * shorter text ends with a "pad=..." line the reader ignores, since a cut to length after
     * the write would leave, were the worker killed between the two, the new text followed
     * by the old one's tail. A kill stops a write only between pages, so a text past the
     * first page goes through a new file and a rename as the first one did. */
    off_t cur = lseek(*fd, 0, SEEK_END);
    size_t n = cur < 0 ? 0 : pad_to(buf, (size_t) len, sizeof buf, cur);
    if (n == 0 || n > JOBSTATE_PAGE) { /* 0: no room for the pad */
        close(*fd);
        *fd = -1;
        return write_new(path, buf, (size_t) len, fd, err);
    }
    if (write_all(*fd, buf, n, 0) < 0)
        return wq_fail_errno(err, "cannot write %s", path);
    return 0;
}

void
jobstate_forget(const char *path)
{
    char dir[PATH_MAX], p[PATH_MAX + 32];
    if (dir_of(path, dir) == 0 && strcmp(dir, spares.dir) != 0) {
        memcpy(spares.dir, dir, sizeof dir); /* another directory (tests): its own spares */
        spares.n = 0;
    }
    if (spares.n < SPARES_MAX && dir_of(path, dir) == 0 &&
        spare_path(p, sizeof p, dir, spares.n) == 0 && rename(path, p) == 0) {
        spares.n++;
        return;
    }
    unlink(path);
}

static int
num(const char *v, int64_t min, int64_t max, int64_t *out)
{
    return wq_parse_int(v, min, max, "value", out, NULL);
}

int
jobstate_read(const char *path, jobstate_t *st, wq_error_t *err)
{
    memset(st, 0, sizeof *st);
    st->failed_rank = -1;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return wq_fail_errno(err, "cannot read %s", path);
    char line[PATH_MAX + 64];
    int lineno = 0, version = 0, have_id = 0, npgid = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        char *eq = strchr(line, '=');
        if (eq == NULL)
            goto bad;
        *eq = '\0';
        const char *k = line, *v = eq + 1;
        int64_t x = 0;
        if (strcmp(k, "name") == 0) {
            snprintf(st->name, sizeof st->name, "%s", v);
        } else if (strcmp(k, "reason") == 0) {
            snprintf(st->reason, sizeof st->reason, "%s", v);
        } else if (strcmp(k, "spool") == 0) {
            if (strlen(v) >= sizeof st->spool)
                goto bad;
            memcpy(st->spool, v, strlen(v) + 1);
        } else if (strcmp(k, "version") == 0) {
            if (num(v, 1, 1000, &x) < 0)
                goto bad;
            version = (int) x;
        } else if (strcmp(k, "job_id") == 0) {
            if (num(v, 1, INT64_MAX, &x) < 0)
                goto bad;
            st->job_id = (uint64_t) x;
            have_id = 1;
        } else if (strcmp(k, "attempt") == 0) {
            if (num(v, 0, UINT32_MAX, &x) < 0)
                goto bad;
            st->attempt = (uint32_t) x;
        } else if (strcmp(k, "first_rank") == 0) {
            if (num(v, 0, UINT32_MAX, &x) < 0)
                goto bad;
            st->first_rank = (uint32_t) x;
        } else if (strcmp(k, "nranks") == 0) {
            if (num(v, 1, WIRE_MAX_RANKS, &x) < 0)
                goto bad;
            st->nranks = (int) x;
        } else if (strcmp(k, "pgid") == 0) {
            if (num(v, 0, INT32_MAX, &x) < 0 || npgid >= WIRE_MAX_RANKS)
                goto bad;
            st->pgid[npgid++] = (pid_t) x;
        } else if (strcmp(k, "start_wall_ms") == 0 || strcmp(k, "time_limit_s") == 0 ||
                   strcmp(k, "log_bytes") == 0) {
            if (num(v, 0, INT64_MAX, &x) < 0)
                goto bad;
            if (k[0] == 's')
                st->start_wall_ms = x;
            else if (k[0] == 't')
                st->time_limit_s = x;
            else
                st->log_bytes = (uint64_t) x;
        } else if (strcmp(k, "ended") == 0 || strcmp(k, "timed_out") == 0 ||
                   strcmp(k, "killed") == 0) {
            if (num(v, 0, 1, &x) < 0)
                goto bad;
            *(k[0] == 'e' ? &st->ended : k[0] == 't' ? &st->timed_out : &st->killed) = (int) x;
        } else if (strcmp(k, "exit_code") == 0 || strcmp(k, "signal") == 0 ||
                   strcmp(k, "failed_rank") == 0) {
            if (num(v, -1, INT32_MAX, &x) < 0)
                goto bad;
            *(k[0] == 'e'   ? &st->exit_code
              : k[0] == 's' ? &st->signal
                            : &st->failed_rank) = (int) x;
        }
        /* other keys: written by a newer worker, ignored */
    }
    fclose(f);
    if (version != JOBSTATE_VERSION)
        return wq_fail(err, WQ_EINVAL, "%s: unsupported version %d", path, version);
    if (!have_id || st->nranks == 0 || npgid != st->nranks || st->spool[0] == '\0')
        return wq_fail(err, WQ_EINVAL, "%s: incomplete state file", path);
    return 0;
bad:
    fclose(f);
    return wq_fail(err, WQ_EINVAL, "%s:%d: bad line", path, lineno);
}
