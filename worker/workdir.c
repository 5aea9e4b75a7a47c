/* --workdir snapshots and --output on the worker (workdir.h). */
#include "worker/workdir.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/mem.h"
#include "common/snaptar.h"
#include "worker/worker_int.h"

/* an unanswered request is sent again after this, given up after RETRIES */
#define RESEND_MS 10000
#define RETRIES   6

typedef struct {
    int drop;
    uid_t uid;
    gid_t gid;
} who_t;

typedef struct {
    uint64_t job_id;
    uint32_t attempt;
    char hash[65];
    uint8_t *launch; /* the JobLaunch, packed */
    size_t launch_len;
    char dl[PATH_MAX + 64]; /* the download */
    int fd;
    uint64_t offset, size, max_bytes;
    uint64_t rid;
    int64_t sent_ms;
    int tries;
} fetch_t;

typedef struct {
    uint64_t job_id;
    uint32_t attempt;
    char dir[2 * PATH_MAX + 64]; /* what to pack */
    who_t as;
    int state; /* 0 waiting for the end, 1 sending, 2 done */
    int fd;    /* the packed output (unlinked), -1 none */
    char error[256];
    uint64_t size, offset;
    uint64_t rid;
    int64_t sent_ms;
    int tries;
} output_t;

struct workdir {
    fetch_t *f;
    size_t nf;
    output_t *o;
    size_t no;
    int launching; /* streams_launch called from here: do not take it again */
};

static struct workdir *
wd(worker_t *w)
{
    if (w->wd == NULL)
        w->wd = wq_calloc(1, sizeof *w->wd);
    return w->wd;
}

/* Run fn(arg) in a child with the job's account (when the worker switches accounts); its
 * error line comes back in err. 0 or -1. */
static int
as_account(const who_t *as, int (*fn)(void *arg, wq_error_t *err), void *arg, wq_error_t *err)
{
    if (!as->drop)
        return fn(arg, err);
    int p[2];
    if (pipe(p) < 0)
        return wq_fail_errno(err, "pipe");
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return wq_fail_errno(err, "fork");
    }
    if (pid == 0) {
        wq_error_t e = {0};
        int rc = -1;
        if (setgroups(1, &as->gid) < 0 || setgid(as->gid) < 0 || setuid(as->uid) < 0)
            wq_fail_errno(&e, "cannot switch to uid %u", (unsigned) as->uid);
        else
            rc = fn(arg, &e);
        if (rc < 0 && write(p[1], e.text, strlen(e.text)) < 0)
            _exit(2);
        _exit(rc < 0 ? 1 : 0);
    }
    close(p[1]);
    char text[sizeof err->text] = "";
    ssize_t n = 0, r;
    while ((r = read(p[0], text + n, sizeof text - 1 - (size_t) n)) > 0)
        n += r;
    text[n > 0 ? n : 0] = '\0';
    close(p[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    return wq_fail(err, WQ_EIO, "%s", text[0] ? text : "the helper process failed");
}

/* ---- the snapshot ---- */

static void
send_get(worker_t *w, fetch_t *f, int64_t now)
{
    Wslq__SnapshotGet g = WSLQ__SNAPSHOT_GET__INIT;
    g.job_id = f->job_id;
    g.attempt = f->attempt;
    g.hash = f->hash;
    g.offset = f->offset;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_SNAP_GET;
    env.snap_get = &g;
    env.request_id = f->rid = ((uint64_t) f->job_id << 16) ^ (uint64_t) now ^ f->offset;
    outbox_send(w, &env);
    f->sent_ms = now;
}

int
workdir_launch(worker_t *w, const Wslq__JobLaunch *l)
{
    const Wslq__JobSpec *s = l->spec;
    if (s->workdir_hash == NULL || s->workdir_hash[0] == '\0' || wd(w)->launching)
        return 0;
    struct workdir *d = wd(w);
    for (size_t i = 0; i < d->nf; i++)
        if (d->f[i].job_id == l->job_id && d->f[i].attempt == l->attempt)
            return 1; /* a repeat while it comes */
    d->f = wq_realloc(d->f, (d->nf + 1) * sizeof *d->f);
    fetch_t *f = &d->f[d->nf++];
    memset(f, 0, sizeof *f);
    f->job_id = l->job_id;
    f->attempt = l->attempt;
    snprintf(f->hash, sizeof f->hash, "%s", s->workdir_hash);
    f->launch_len = wslq__job_launch__get_packed_size(l);
    f->launch = wq_malloc(f->launch_len ? f->launch_len : 1);
    wslq__job_launch__pack(l, f->launch);
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/snapdl", w->cfg.state_dir);
    (void) mkdir(dir, 0700);
    snprintf(f->dl, sizeof f->dl, "%s/%" PRIu64 ".%" PRIu32 ".tar.gz", dir, f->job_id, f->attempt);
    f->fd = open(f->dl, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    log_info("fetching the job's snapshot " JOB_FMT " hash=%.12s", f->job_id, f->hash);
    send_get(w, f, wq_clock_mono_ms());
    return 1;
}

typedef struct {
    int fd;
    const char *work;
    uint64_t max;
} unpack_arg_t;

static int
unpack_fn(void *v, wq_error_t *err)
{
    unpack_arg_t *a = v;
    if (mkdir(a->work, 0700) < 0)
        return wq_fail_errno(err, "cannot create %s", a->work);
    return snaptar_unpack_fd(a->fd, a->work, a->max, err);
}

/* The snapshot is here (or failed: why set): unpack it and launch, or end the job. A reason
 * from the scheduler (sched_said) is the job's as it stands: it names the snapshot and says
 * what to do; the worker's own are prefixed with the snapshot and this node. */
static void
finish_fetch(worker_t *w, size_t k, const char *why_in, int sched_said)
{
    struct workdir *d = wd(w);
    fetch_t f = d->f[k];
    d->f[k] = d->f[--d->nf];
    Wslq__JobLaunch *l = wslq__job_launch__unpack(NULL, f.launch_len, f.launch);
    free(f.launch);
    char why[512] = "";
    if (why_in != NULL)
        snprintf(why, sizeof why, "%s", why_in);
    if (l == NULL || l->spec == NULL) {
        log_warn("snapshot launch lost " JOB_FMT, f.job_id);
        if (f.fd >= 0)
            close(f.fd);
        unlink(f.dl);
        if (l)
            wslq__job_launch__free_unpacked(l, NULL);
        return;
    }
    char spool[PATH_MAX + 48], work[PATH_MAX + 64];
    snprintf(spool, sizeof spool, "%s/spool/%" PRIu64 ".%" PRIu32, w->cfg.state_dir, f.job_id,
             f.attempt);
    snprintf(work, sizeof work, "%s/work", spool);
    wq_error_t err = {0};
    char hex[65];
    if (why[0] == '\0' && snaptar_sha256_file(f.dl, hex, &err) < 0)
        snprintf(why, sizeof why, "%s", err.text);
    else if (why[0] == '\0' && strcmp(hex, f.hash) != 0)
        snprintf(why, sizeof why,
                 "the snapshot that came does not match its hash (the scheduler's copy is "
                 "damaged); resubmit the job with --workdir");
    if (why[0] == '\0') {
        runas_acct_t acct;
        char refuse[256];
        who_t as = {0};
        if (runas_resolve(&w->runas, l->spec->user, w->cfg.name, &acct, refuse, sizeof refuse) ==
            0) {
            as.drop = acct.drop;
            as.uid = acct.uid;
            as.gid = acct.gid;
            runas_acct_clear(&acct);
        }
        /* the spool, as job_launch makes it: the account's, 0700 */
        if (mkdir(spool, 0700) < 0 && errno != EEXIST)
            snprintf(why, sizeof why, "cannot create %.300s: %s", spool, strerror(errno));
        else if (as.drop && chown(spool, as.uid, as.gid) < 0)
            snprintf(why, sizeof why, "cannot give %.300s to uid %u: %s", spool, (unsigned) as.uid,
                     strerror(errno));
        else {
            unpack_arg_t a = {.fd = f.fd, .work = work, .max = f.max_bytes};
            if (as_account(&as, unpack_fn, &a, &err) < 0)
                snprintf(why, sizeof why, "%s", err.text);
        }
    }
    if (f.fd >= 0)
        close(f.fd);
    unlink(f.dl);
    char reason[768];
    if (why[0] != '\0') {
        if (sched_said)
            snprintf(reason, sizeof reason, "%s", why);
        else
            snprintf(reason, sizeof reason, "working directory snapshot %.12s not usable on %s: %s",
                     f.hash, w->cfg.name, why);
        w->jcfg.refuse = reason;
        log_warn("snapshot refused " JOB_FMT " why=\"%s\"", f.job_id, why);
    } else {
        wire_set_str(&l->spec->cwd, work);
        log_info("snapshot unpacked " JOB_FMT " dir=%s", f.job_id, work);
    }
    d->launching = 1;
    streams_launch(w, l);
    d->launching = 0;
    w->jcfg.refuse = NULL;
    /* --output: packed and sent when the ranks are gone */
    if (why[0] == '\0' && l->spec->output_dir != NULL && l->spec->output_dir[0] != '\0') {
        d->o = wq_realloc(d->o, (d->no + 1) * sizeof *d->o);
        output_t *o = &d->o[d->no++];
        memset(o, 0, sizeof *o);
        o->job_id = f.job_id;
        o->attempt = f.attempt;
        o->fd = -1;
        snprintf(o->dir, sizeof o->dir, "%s/%s", work, l->spec->output_dir);
        runas_acct_t acct;
        char refuse[256];
        if (runas_resolve(&w->runas, l->spec->user, w->cfg.name, &acct, refuse, sizeof refuse) ==
            0) {
            o->as.drop = acct.drop;
            o->as.uid = acct.uid;
            o->as.gid = acct.gid;
            runas_acct_clear(&acct);
        }
    }
    wslq__job_launch__free_unpacked(l, NULL);
}

void
workdir_snap_data(worker_t *w, const Wslq__SnapshotData *m, int64_t now)
{
    struct workdir *d = wd(w);
    for (size_t k = 0; k < d->nf; k++) {
        fetch_t *f = &d->f[k];
        if (f->job_id != m->job_id || f->attempt != m->attempt || f->offset != m->offset)
            continue;
        if (m->error != NULL && m->error[0] != '\0')
            return finish_fetch(w, k, m->error, 1);
        if (f->fd < 0)
            return finish_fetch(w, k, "cannot write the download", 0);
        f->size = m->size;
        f->max_bytes = m->max_bytes;
        size_t done = 0;
        while (done < m->data.len) {
            ssize_t r =
                pwrite(f->fd, m->data.data + done, m->data.len - done, (off_t) (f->offset + done));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                char why[300];
                snprintf(why, sizeof why, "cannot write %.200s: %s", f->dl, strerror(errno));
                return finish_fetch(w, k, why, 0);
            }
            done += (size_t) r;
        }
        f->offset += m->data.len;
        f->tries = 0;
        if (f->offset >= f->size)
            return finish_fetch(w, k, NULL, 0);
        if (m->data.len == 0)
            return finish_fetch(w, k, "the scheduler sent an empty piece", 0);
        send_get(w, f, now);
        return;
    }
}

/* ---- output ---- */

typedef struct {
    const char *dir;
    int fd;
} pack_arg_t;

static int
pack_fn(void *v, wq_error_t *err)
{
    pack_arg_t *a = v;
    struct stat sb;
    if (lstat(a->dir, &sb) < 0)
        return wq_fail_errno(err, "--output %s", a->dir);
    if (!S_ISDIR(sb.st_mode))
        return wq_fail(err, WQ_EINVAL, "--output %s is not a directory", a->dir);
    return snaptar_pack_fd(a->dir, NULL, a->fd, 0, NULL, err);
}

static void
send_output(worker_t *w, output_t *o, int64_t now)
{
    Wslq__OutputPut p = WSLQ__OUTPUT_PUT__INIT;
    p.job_id = o->job_id;
    p.attempt = o->attempt;
    p.size = o->size;
    p.offset = o->offset;
    uint8_t *buf = NULL;
    if (o->error[0] != '\0') {
        p.error = o->error;
    } else {
        size_t want = o->size - o->offset < WIRE_MAX_SNAP_CHUNK ? (size_t) (o->size - o->offset)
                                                                : WIRE_MAX_SNAP_CHUNK;
        buf = wq_malloc(want ? want : 1);
        ssize_t r = pread(o->fd, buf, want, (off_t) o->offset);
        p.data.data = buf;
        p.data.len = r > 0 ? (size_t) r : 0;
    }
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_OUTPUT_PUT;
    env.output_put = &p;
    env.request_id = o->rid = ((uint64_t) o->job_id << 20) ^ (uint64_t) now ^ o->offset;
    outbox_send(w, &env);
    o->sent_ms = now;
    free(buf);
}

static void
output_done(output_t *o)
{
    o->state = 2;
    if (o->fd >= 0)
        close(o->fd);
    o->fd = -1;
}

int
workdir_output_ready(worker_t *w, job_t *j, int64_t now)
{
    if (w->wd == NULL)
        return 1;
    struct workdir *d = w->wd;
    for (size_t k = 0; k < d->no; k++) {
        output_t *o = &d->o[k];
        if (o->job_id != j->id || o->attempt != j->attempt)
            continue;
        if (o->state == 2) {
            d->o[k] = d->o[--d->no]; /* the JobEnded goes now; forget it */
            return 1;
        }
        if (o->state == 0) {
            char tmp[PATH_MAX + 32];
            snprintf(tmp, sizeof tmp, "%s/snapdl/out-XXXXXX", w->cfg.state_dir);
            o->fd = mkstemp(tmp);
            wq_error_t err = {0};
            if (o->fd < 0) {
                snprintf(o->error, sizeof o->error, "cannot pack the output on %s: %s", w->cfg.name,
                         strerror(errno));
            } else {
                unlink(tmp);
                pack_arg_t a = {.dir = o->dir, .fd = o->fd};
                struct stat sb;
                if (as_account(&o->as, pack_fn, &a, &err) < 0)
                    snprintf(o->error, sizeof o->error, "%s", err.text);
                else if (fstat(o->fd, &sb) < 0)
                    snprintf(o->error, sizeof o->error, "cannot read the packed output");
                else
                    o->size = (uint64_t) sb.st_size;
            }
            o->state = 1;
            log_info("job output packed " JOB_FMT " bytes=%" PRIu64 " error=\"%s\"", o->job_id,
                     o->size, o->error);
            send_output(w, o, now);
        }
        return 0;
    }
    return 1;
}

void
workdir_output_reply(worker_t *w, const Wslq__OutputPutReply *r)
{
    if (w->wd == NULL)
        return;
    struct workdir *d = w->wd;
    int64_t now = wq_clock_mono_ms();
    for (size_t k = 0; k < d->no; k++) {
        output_t *o = &d->o[k];
        if (o->job_id != r->job_id || o->attempt != r->attempt || o->state != 1)
            continue;
        if ((r->error != NULL && r->error[0] != '\0') || o->error[0] != '\0') {
            if (r->error && r->error[0])
                log_warn("job output refused " JOB_FMT " why=\"%s\"", o->job_id, r->error);
            output_done(o);
        } else if (r->have >= o->size) {
            output_done(o);
        } else if (r->have > o->offset) {
            o->offset = r->have;
            o->tries = 0;
            send_output(w, o, now);
        }
        return;
    }
}

void
workdir_tick(worker_t *w, int64_t now)
{
    if (w->wd == NULL)
        return;
    struct workdir *d = w->wd;
    for (size_t k = 0; k < d->nf; k++) {
        fetch_t *f = &d->f[k];
        if (now - f->sent_ms < RESEND_MS)
            continue;
        if (++f->tries > RETRIES) {
            finish_fetch(w, k, "no answer from the scheduler", 0);
            return; /* the list changed */
        }
        send_get(w, f, now);
    }
    for (size_t k = 0; k < d->no; k++) {
        output_t *o = &d->o[k];
        if (o->state != 1 || now - o->sent_ms < RESEND_MS)
            continue;
        if (++o->tries > RETRIES) {
            log_warn("job output not sent: no answer " JOB_FMT, o->job_id);
            output_done(o);
        } else {
            send_output(w, o, now);
        }
    }
}

int
workdir_kill(worker_t *w, uint64_t job_id, uint32_t attempt, const char *reason)
{
    if (w->wd == NULL)
        return 0;
    for (size_t k = 0; k < w->wd->nf; k++)
        if (w->wd->f[k].job_id == job_id && w->wd->f[k].attempt == attempt) {
            char why[300];
            snprintf(why, sizeof why, "stopped before its snapshot arrived: %s",
                     reason && *reason ? reason : "cancelled");
            finish_fetch(w, k, why, 0);
            return 1;
        }
    return 0;
}

void
workdir_destroy(worker_t *w)
{
    if (w->wd == NULL)
        return;
    struct workdir *d = w->wd;
    for (size_t k = 0; k < d->nf; k++) {
        free(d->f[k].launch);
        if (d->f[k].fd >= 0)
            close(d->f[k].fd);
    }
    for (size_t k = 0; k < d->no; k++)
        if (d->o[k].fd >= 0)
            close(d->o[k].fd);
    free(d->f);
    free(d->o);
    free(d);
    w->wd = NULL;
}
