/* Working-directory snapshots and job output, scheduler side (snapshots.h). */
#include "scheduler/snapshots.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/parse.h"
#include "common/snaptar.h"
#include "scheduler/sched_int.h"
#include "scheduler/who.h"

/* an upload is kept from removal this long for its submit to come */
#define LEASE_MS 120000
/* the sweep, at least this far apart */
#define SWEEP_MIN_MS 1000

typedef struct {
    char owner[WIRE_MAX_NAME + 1];
    char hash[65];
    int64_t until_mono;
} lease_t;

struct snapstore {
    int64_t next_mono; /* the next sweep; INT64_MAX none due */
    lease_t *leases;
    size_t n_leases;
};

static struct snapstore *
store(sched_t *self)
{
    if (self->snap == NULL) {
        self->snap = wq_calloc(1, sizeof *self->snap);
        self->snap->next_mono = 0; /* a sweep at start: what a restart left */
    }
    return self->snap;
}

static void
rearm(sched_t *self, int64_t at)
{
    struct snapstore *s = store(self);
    if (at < s->next_mono)
        s->next_mono = at;
}

/* ---- configuration ---- */

int
snapshots_config_apply(void *vcfg, const char *key, const char *v, wq_error_t *err)
{
    sched_config_t *cfg = vcfg;
    int64_t n;
    if (strcmp(key, "workdir_max_mb") == 0 || strcmp(key, "workdir-max-mb") == 0 ||
        strcmp(key, "output_max_mb") == 0 || strcmp(key, "output-max-mb") == 0) {
        if (wq_parse_int(v, 1, 1 << 20, key, &n, err) < 0)
            return -1;
        if (key[0] == 'w')
            cfg->workdir_max_bytes = (uint64_t) n << 20;
        else
            cfg->output_max_bytes = (uint64_t) n << 20;
        return 1;
    }
    int snap = strcmp(key, "snapshot_retention") == 0 || strcmp(key, "snapshot-retention") == 0;
    if (snap || strcmp(key, "output_retention") == 0 || strcmp(key, "output-retention") == 0) {
        /* bare numbers are seconds, as the scheduler's other times; 0 = at once */
        if (strcmp(v, "0") == 0) {
            n = 0;
        } else {
            char *tmp = NULL;
            size_t len = strlen(v);
            if (len > 0 && v[len - 1] >= '0' && v[len - 1] <= '9')
                v = tmp = wq_asprintf("%ss", v);
            int rc = wq_parse_duration(v, key, &n, err);
            free(tmp);
            if (rc < 0)
                return -1;
        }
        if (snap)
            cfg->snapshot_retention_ms = n * 1000;
        else
            cfg->output_retention_ms = n * 1000;
        return 1;
    }
    return 0;
}

/* ---- names ---- */

/* Whose folder: the principal's name; one folder for everybody when insecure. */
static const char *
owner_name(const sched_t *self, const char *user)
{
    return self->cfg.insecure ? "_insecure" : user;
}

static int
safe_part(const char *s)
{
    return s != NULL && *s != '\0' && strchr(s, '/') == NULL && strcmp(s, ".") != 0 &&
           strcmp(s, "..") != 0 && strlen(s) <= WIRE_MAX_NAME;
}

static char *
snap_path(const sched_t *self, const char *owner, const char *hash, const char *ext)
{
    return wq_asprintf("%s/snapshots/%s/%s%s", self->state_dir, owner, hash ? hash : "",
                       hash ? ext : "");
}

static void
reply_error(sched_t *self, const msg_t *m, enum wq_errc code, const char *text)
{
    wq_error_t err;
    wq_fail(&err, code, "%s", text);
    out_error(self, m->from, m->env->request_id, &err);
}

static void
touch(const char *path)
{
    (void) utimensat(AT_FDCWD, path, NULL, 0);
}

/* Append a chunk at offset to an upload in progress (path.part), offset 0 starting over.
 * Returns the bytes now held, or -1 with *err. */
static int64_t
put_chunk(const char *part,
          uint64_t size,
          uint64_t offset,
          const uint8_t *data,
          size_t len,
          wq_error_t *err)
{
    int fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return wq_fail_errno(err, "cannot store the upload");
    struct stat sb;
    uint64_t cur = fstat(fd, &sb) == 0 ? (uint64_t) sb.st_size : 0;
    if (cur > size || (len > 0 && offset == 0 && cur != 0)) {
        if (ftruncate(fd, 0) < 0) {
            close(fd);
            return wq_fail_errno(err, "cannot store the upload");
        }
        cur = 0;
    }
    if (len == 0) {
        close(fd);
        return (int64_t) cur;
    }
    if (offset != cur || offset + len > size) {
        close(fd);
        return wq_fail(err, WQ_EPROTO,
                       "upload out of order: a chunk at %" PRIu64 ", the scheduler has %" PRIu64
                       " of %" PRIu64 " bytes",
                       offset, cur, size);
    }
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(fd, data + done, len - done, (off_t) (offset + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            errno = e;
            return wq_fail_errno(err, "cannot store the upload");
        }
        done += (size_t) w;
    }
    close(fd);
    return (int64_t) (cur + len);
}

static void
lease(sched_t *self, const char *owner, const char *hash)
{
    struct snapstore *s = store(self);
    int64_t now = wq_clock_mono_ms();
    size_t k = 0;
    for (size_t i = 0; i < s->n_leases; i++) /* drop the expired */
        if (s->leases[i].until_mono > now &&
            !(strcmp(s->leases[i].owner, owner) == 0 && strcmp(s->leases[i].hash, hash) == 0))
            s->leases[k++] = s->leases[i];
    s->n_leases = k;
    s->leases = wq_realloc(s->leases, (k + 1) * sizeof *s->leases);
    lease_t *l = &s->leases[s->n_leases++];
    snprintf(l->owner, sizeof l->owner, "%s", owner);
    snprintf(l->hash, sizeof l->hash, "%s", hash);
    l->until_mono = now + LEASE_MS;
    rearm(self, l->until_mono);
}

/* ---- snapshots: upload (CLI) ---- */

void
handle_snap_put(sched_t *self, const msg_t *m)
{
    const Wslq__SnapshotPut *p = m->env->snap_put;
    const char *owner = owner_name(self, m->who->name);
    uint64_t max = self->cfg.workdir_max_bytes;
    char a[32], b[32];
    if (!safe_part(owner))
        return reply_error(self, m, WQ_EPERM, "snapshots need a user name");
    if (p->size == 0) { /* only the limit asked for (the CLI checks it before packing) */
        Wslq__SnapshotPutReply r0 = WSLQ__SNAPSHOT_PUT_REPLY__INIT;
        r0.max_bytes = max;
        Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
        env.request_id = m->env->request_id;
        env.body_case = WSLQ__ENVELOPE__BODY_SNAP_PUT_REPLY;
        env.snap_put_reply = &r0;
        return out_push(self, m->from, &env);
    }
    if (max > 0 && p->size > max) {
        wq_error_t err;
        wq_fail(&err, WQ_ELIMIT,
                "working directory snapshot is %s, over the scheduler's limit of %s "
                "(workdir_max_mb); nothing was stored",
                snaptar_size_text(p->size, a, sizeof a), snaptar_size_text(max, b, sizeof b));
        self->stats.refused_total++;
        return out_error(self, m->from, m->env->request_id, &err);
    }
    wq_error_t err = {0};
    char *dir = snap_path(self, owner, NULL, NULL);
    char *fin = snap_path(self, owner, p->hash, ".tar.gz");
    char *part = snap_path(self, owner, p->hash, ".part");
    Wslq__SnapshotPutReply rep = WSLQ__SNAPSHOT_PUT_REPLY__INIT;
    rep.max_bytes = max;
    struct stat sb;
    int64_t have = -1;
    if (stat(fin, &sb) == 0) { /* stored already: nothing to send */
        touch(fin);
        have = (int64_t) sb.st_size;
    } else if (wq_mkdir_p(dir, 0700, &err) == 0 &&
               (have = put_chunk(part, p->size, p->offset, p->data.data, p->data.len, &err)) >= 0 &&
               (uint64_t) have == p->size) {
        char hex[65];
        if (snaptar_sha256_file(part, hex, &err) < 0) {
            have = -1;
        } else if (strcmp(hex, p->hash) != 0) {
            unlink(part);
            have = wq_fail(&err, WQ_EINVAL,
                           "the uploaded snapshot does not match its hash; nothing was stored");
        } else if (rename(part, fin) < 0) {
            have = wq_fail_errno(&err, "cannot store the snapshot");
        } else {
            log_info("snapshot stored user=%s hash=%.12s bytes=%" PRIu64, owner, p->hash, p->size);
        }
    }
    if (have >= 0) {
        lease(self, owner, p->hash);
        rep.have = (uint64_t) have;
        Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
        env.request_id = m->env->request_id;
        env.body_case = WSLQ__ENVELOPE__BODY_SNAP_PUT_REPLY;
        env.snap_put_reply = &rep;
        out_push(self, m->from, &env);
    } else {
        out_error(self, m->from, m->env->request_id, &err);
    }
    free(dir);
    free(fin);
    free(part);
}

int
snapshots_admit(sched_t *self, const msg_t *m, const void *vspec, wq_error_t *err)
{
    const Wslq__JobSpec *spec = vspec;
    if (spec->workdir_hash == NULL || spec->workdir_hash[0] == '\0')
        return 0;
    const char *owner = owner_name(self, m->who->name);
    if (!safe_part(owner))
        return wq_fail(err, WQ_EPERM, "job refused: --workdir needs a user name");
    char *fin = snap_path(self, owner, spec->workdir_hash, ".tar.gz");
    int ok = access(fin, R_OK) == 0;
    if (ok)
        touch(fin);
    free(fin);
    /* the job keeps it now: the upload's lease ends */
    struct snapstore *s = store(self);
    size_t k = 0;
    for (size_t i = 0; i < s->n_leases; i++)
        if (!(strcmp(s->leases[i].owner, owner) == 0 &&
              strcmp(s->leases[i].hash, spec->workdir_hash) == 0))
            s->leases[k++] = s->leases[i];
    s->n_leases = k;
    if (!ok)
        return wq_fail(err, WQ_ENOENT,
                       "job refused: snapshot %.12s is not one of yours stored at the scheduler "
                       "(upload it first: wslq submit --workdir)",
                       spec->workdir_hash);
    return 0;
}

void
snapshots_job_gone(sched_t *self, const job_t *job)
{
    const Wslq__JobSpec *spec = job->info->spec;
    if (spec == NULL || spec->workdir_hash == NULL || spec->workdir_hash[0] == '\0' ||
        spec->user == NULL)
        return;
    const char *owner = owner_name(self, spec->user);
    if (!safe_part(owner))
        return;
    char *fin = snap_path(self, owner, spec->workdir_hash, ".tar.gz");
    touch(fin); /* the retention counts from the end of its last job */
    free(fin);
    rearm(self, wq_clock_mono_ms() + self->cfg.snapshot_retention_ms);
}

/* ---- snapshots: download (worker) ---- */

/* The reason a job's snapshot that is stored but cannot be read gives: what to do, in a line. */
static void
damaged(char *why, size_t size, const char *hash, const char *what)
{
    snprintf(why, size,
             "the job's --workdir snapshot %.12s cannot be read on the scheduler (%.64s: its "
             "snapshot store is damaged); resubmit it with --workdir",
             hash, what);
}

void
handle_snap_get(sched_t *self, const msg_t *m)
{
    const Wslq__SnapshotGet *g = m->env->snap_get;
    Wslq__SnapshotData d = WSLQ__SNAPSHOT_DATA__INIT;
    d.job_id = g->job_id;
    d.attempt = g->attempt;
    d.hash = g->hash;
    d.offset = g->offset;
    d.max_bytes = self->cfg.workdir_max_bytes;
    char why[256] = "";
    uint8_t *buf = NULL;
    job_t *job = jobs_find(self, g->job_id);
    const Wslq__JobSpec *spec = job ? job->info->spec : NULL;
    if (job == NULL || job->info->attempt != g->attempt || m->node == NULL ||
        gang_part_of(job->info, m->node->info->name) < 0) {
        snprintf(why, sizeof why, "job %" PRIu64 " attempt %" PRIu32 " is not placed on this node",
                 g->job_id, g->attempt);
    } else if (spec == NULL || spec->workdir_hash == NULL ||
               strcmp(spec->workdir_hash, g->hash) != 0 || !safe_part(spec->user)) {
        snprintf(why, sizeof why, "snapshot %.12s is not job %" PRIu64 "'s", g->hash, g->job_id);
    } else {
        char *fin = snap_path(self, owner_name(self, spec->user), g->hash, ".tar.gz");
        int fd = open(fin, O_RDONLY | O_CLOEXEC);
        struct stat sb;
        if (fd < 0 && errno == ENOENT) { /* removed (snapshot_retention, or by hand) */
            snprintf(why, sizeof why,
                     "the job's --workdir snapshot %.12s is no longer stored on the scheduler "
                     "(snapshot_retention); resubmit it with --workdir",
                     g->hash);
        } else if (fd < 0 || fstat(fd, &sb) < 0) {
            damaged(why, sizeof why, g->hash, strerror(errno));
        } else if (g->offset > (uint64_t) sb.st_size) {
            char what[64];
            snprintf(what, sizeof what, "it has no byte %" PRIu64, g->offset);
            damaged(why, sizeof why, g->hash, what);
        } else {
            d.size = (uint64_t) sb.st_size;
            size_t want = (size_t) (d.size - g->offset);
            if (want > WIRE_MAX_SNAP_CHUNK)
                want = WIRE_MAX_SNAP_CHUNK;
            buf = wq_malloc(want ? want : 1);
            ssize_t r = pread(fd, buf, want, (off_t) g->offset);
            if (r < 0 || (size_t) r != want)
                damaged(why, sizeof why, g->hash, r < 0 ? strerror(errno) : "short read");
            d.data.data = buf;
            d.data.len = r > 0 ? (size_t) r : 0;
        }
        if (fd >= 0)
            close(fd);
        free(fin);
    }
    if (why[0] != '\0') {
        d.error = why;
        d.data.len = 0;
        log_warn("snapshot fetch refused node=%s job=%" PRIu64 " why=\"%s\"",
                 m->node ? m->node->info->name : "?", g->job_id, why);
    }
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = m->env->request_id;
    env.body_case = WSLQ__ENVELOPE__BODY_SNAP_DATA;
    env.snap_data = &d;
    out_push(self, m->from, &env);
    free(buf);
}

/* ---- output (worker up, CLI down) ---- */

static char *
out_path(const sched_t *self, uint64_t id, const char *node, const char *ext)
{
    if (node == NULL)
        return wq_asprintf("%s/outputs/%" PRIu64, self->state_dir, id);
    return wq_asprintf("%s/outputs/%" PRIu64 "/%s%s", self->state_dir, id, node, ext);
}

static void
write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

void
handle_output_put(sched_t *self, const msg_t *m)
{
    const Wslq__OutputPut *p = m->env->output_put;
    Wslq__OutputPutReply rep = WSLQ__OUTPUT_PUT_REPLY__INIT;
    rep.job_id = p->job_id;
    rep.attempt = p->attempt;
    char why[300] = "";
    job_t *job = jobs_find(self, p->job_id);
    const char *node = m->node ? m->node->info->name : NULL;
    if (job == NULL || job->info->attempt != p->attempt || node == NULL ||
        gang_part_of(job->info, node) < 0 || job->info->spec == NULL ||
        job->info->spec->output_dir == NULL || job->info->spec->output_dir[0] == '\0' ||
        !safe_part(node)) {
        snprintf(why, sizeof why, "job %" PRIu64 " has no output to take from this node",
                 p->job_id);
    } else {
        wq_error_t err = {0};
        char *dir = out_path(self, p->job_id, NULL, NULL);
        char *part = out_path(self, p->job_id, node, ".part");
        char *fin = out_path(self, p->job_id, node, ".tar.gz");
        char *errf = out_path(self, p->job_id, node, ".error");
        uint64_t max = self->cfg.output_max_bytes;
        char a[32], b[32];
        if (wq_mkdir_p(dir, 0700, &err) < 0) {
            snprintf(why, sizeof why, "%s", err.text);
        } else if (p->error != NULL && p->error[0] != '\0') {
            write_text(errf, p->error); /* wslq fetch shows it */
            unlink(fin);
        } else if (max > 0 && p->size > max) {
            snprintf(why, sizeof why,
                     "output is %s, over the scheduler's limit of %s (output_max_mb); nothing "
                     "was kept",
                     snaptar_size_text(p->size, a, sizeof a), snaptar_size_text(max, b, sizeof b));
            write_text(errf, why);
            unlink(fin);
            unlink(part);
        } else if (p->size > 0) {
            if (p->offset == 0)
                unlink(fin);
            int64_t have = put_chunk(part, p->size, p->offset, p->data.data, p->data.len, &err);
            if (have < 0) {
                snprintf(why, sizeof why, "%s", err.text);
            } else {
                rep.have = (uint64_t) have;
                if ((uint64_t) have == p->size && rename(part, fin) == 0) {
                    unlink(errf);
                    log_info("output stored job=%" PRIu64 " node=%s bytes=%" PRIu64, p->job_id,
                             node, p->size);
                }
            }
        }
        free(dir);
        free(part);
        free(fin);
        free(errf);
        rearm(self, wq_clock_mono_ms() + self->cfg.output_retention_ms);
    }
    if (why[0] != '\0')
        rep.error = why;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = m->env->request_id;
    env.body_case = WSLQ__ENVELOPE__BODY_OUTPUT_PUT_REPLY;
    env.output_put_reply = &rep;
    out_push(self, m->from, &env);
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The nodes whose output came (.tar.gz) and the "node: why" of those whose did not. */
static void
list_outputs(const sched_t *self, uint64_t id, Wslq__FetchReply *rep)
{
    char *dir = out_path(self, id, NULL, NULL);
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL && rep->n_nodes < WIRE_MAX_NODES &&
           rep->n_errors < WIRE_MAX_NODES) {
        size_t n = strlen(de->d_name);
        if (n > 7 && strcmp(de->d_name + n - 7, ".tar.gz") == 0) {
            rep->nodes = wq_realloc(rep->nodes, (rep->n_nodes + 1) * sizeof *rep->nodes);
            rep->nodes[rep->n_nodes++] = wq_strndup(de->d_name, n - 7);
        } else if (n > 6 && strcmp(de->d_name + n - 6, ".error") == 0) {
            char *p = wq_asprintf("%s/%s", dir, de->d_name);
            char text[WIRE_MAX_REASON + 1] = "";
            FILE *f = fopen(p, "re");
            if (f != NULL) {
                size_t r = fread(text, 1, sizeof text - 1, f);
                text[r] = '\0';
                fclose(f);
            }
            for (char *c = text; *c; c++)
                if ((unsigned char) *c < 0x20)
                    *c = ' ';
            free(p);
            rep->errors = wq_realloc(rep->errors, (rep->n_errors + 1) * sizeof *rep->errors);
            rep->errors[rep->n_errors++] = wq_asprintf("%.*s: %s", (int) (n - 6), de->d_name, text);
        }
    }
    if (d != NULL)
        closedir(d);
    free(dir);
    if (rep->n_nodes > 1)
        qsort(rep->nodes, rep->n_nodes, sizeof *rep->nodes, cmp_str);
}

void
handle_fetch(sched_t *self, const msg_t *m)
{
    const Wslq__FetchRequest *f = m->env->fetch;
    job_t *job = jobs_find(self, f->job_id);
    Wslq__JobInfo *ended = job ? NULL : queue_get(self->q, f->job_id, NULL);
    const Wslq__JobInfo *info = job ? job->info : ended;
    wq_error_t err = {0};
    Wslq__FetchReply rep = WSLQ__FETCH_REPLY__INIT;
    uint8_t *buf = NULL;
    int ok = 0;
    if (info == NULL) {
        wq_fail(&err, WQ_ENOENT, "job %" PRIu64 " not found", f->job_id);
    } else if (!who_may_touch(m->who, info)) {
        wq_fail(&err, WQ_EPERM,
                "job %" PRIu64 " is %s's: only its owner or an admin may fetch its output",
                f->job_id, info->spec && info->spec->user ? info->spec->user : "someone else");
    } else if (info->spec == NULL || info->spec->output_dir == NULL ||
               info->spec->output_dir[0] == '\0') {
        wq_fail(&err, WQ_EINVAL,
                "job %" PRIu64 " was submitted without --output: it has no output to fetch",
                f->job_id);
    } else if (job != NULL) {
        wq_fail(&err, WQ_EBUSY,
                "job %" PRIu64 " is %s: its output comes back when it ends; fetch it then",
                f->job_id, wire_state_name(info->state));
    } else if (f->node == NULL || f->node[0] == '\0') {
        list_outputs(self, f->job_id, &rep);
        if (rep.n_nodes == 0 && rep.n_errors == 0)
            wq_fail(&err, WQ_ENOENT,
                    "job %" PRIu64 " has no output stored (none came back, or it was removed "
                    "after output_retention)",
                    f->job_id);
        else
            ok = 1;
    } else {
        char *fin = out_path(self, f->job_id, f->node, ".tar.gz");
        int fd = open(fin, O_RDONLY | O_CLOEXEC);
        struct stat sb;
        if (fd < 0 || fstat(fd, &sb) < 0 || f->offset > (uint64_t) sb.st_size) {
            wq_fail(&err, WQ_ENOENT, "job %" PRIu64 " has no output from node %s", f->job_id,
                    f->node);
        } else {
            rep.size = (uint64_t) sb.st_size;
            rep.offset = f->offset;
            size_t want = (size_t) (rep.size - f->offset);
            if (want > WIRE_MAX_SNAP_CHUNK)
                want = WIRE_MAX_SNAP_CHUNK;
            buf = wq_malloc(want ? want : 1);
            ssize_t r = pread(fd, buf, want, (off_t) f->offset);
            if (r < 0 || (size_t) r != want) {
                wq_fail(&err, WQ_EIO, "job %" PRIu64 ": the output cannot be read", f->job_id);
            } else {
                rep.data.data = buf;
                rep.data.len = want;
                ok = 1;
            }
        }
        if (fd >= 0)
            close(fd);
        free(fin);
    }
    if (ok) {
        Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
        env.request_id = m->env->request_id;
        env.body_case = WSLQ__ENVELOPE__BODY_FETCH_REPLY;
        env.fetch_reply = &rep;
        out_push(self, m->from, &env);
    } else {
        out_error(self, m->from, m->env->request_id, &err);
    }
    for (size_t i = 0; i < rep.n_nodes; i++)
        free(rep.nodes[i]);
    free(rep.nodes);
    for (size_t i = 0; i < rep.n_errors; i++)
        free(rep.errors[i]);
    free(rep.errors);
    free(buf);
    if (ended)
        wslq__job_info__free_unpacked(ended, NULL);
}

/* ---- removal ---- */

static int
referenced(const sched_t *self, const char *owner, const char *hash, size_t hlen)
{
    for (size_t i = 0; i < self->n_jobs; i++) {
        const Wslq__JobSpec *s = self->jobs[i]->info->spec;
        if (s != NULL && s->workdir_hash != NULL && strlen(s->workdir_hash) == hlen &&
            strncmp(s->workdir_hash, hash, hlen) == 0 && s->user != NULL &&
            strcmp(owner_name(self, s->user), owner) == 0)
            return 1;
    }
    return 0;
}

static int
leased(const struct snapstore *s, const char *owner, const char *hash, size_t hlen, int64_t now)
{
    for (size_t i = 0; i < s->n_leases; i++)
        if (s->leases[i].until_mono > now && strcmp(s->leases[i].owner, owner) == 0 &&
            strlen(s->leases[i].hash) == hlen && strncmp(s->leases[i].hash, hash, hlen) == 0)
            return 1;
    return 0;
}

/* Remove the files in dir older than keep_ms (and not kept by keep()); the earliest later
 * expiry lowers *next. Returns how many remain. */
static size_t
sweep_dir(sched_t *self,
          const char *dir,
          const char *owner,
          int64_t keep_ms,
          int64_t now_wall,
          int64_t now,
          int64_t *next)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    size_t left = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode))
            continue;
        size_t n = strlen(de->d_name);
        if (owner != NULL) {
            size_t hlen = n > 7 && strcmp(de->d_name + n - 7, ".tar.gz") == 0 ? n - 7
                          : n > 5 && strcmp(de->d_name + n - 5, ".part") == 0 ? n - 5
                                                                              : 0;
            if (hlen > 0 && (referenced(self, owner, de->d_name, hlen) ||
                             leased(self->snap, owner, de->d_name, hlen, now))) {
                left++;
                continue; /* job_gone or the lease's end arms the sweep again */
            }
        }
        int64_t mtime = (int64_t) sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
        int64_t due = mtime + keep_ms;
        if (due <= now_wall) {
            if (unlinkat(dirfd(d), de->d_name, 0) == 0)
                log_info("removed after its retention path=%s/%s", dir, de->d_name);
            continue;
        }
        left++;
        if (now + (due - now_wall) < *next)
            *next = now + (due - now_wall);
    }
    closedir(d);
    return left;
}

static void
sweep(sched_t *self, int64_t now)
{
    struct snapstore *s = store(self);
    int64_t now_wall = wq_clock_wall_ms();
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < s->n_leases; i++)
        if (s->leases[i].until_mono > now && s->leases[i].until_mono < next)
            next = s->leases[i].until_mono;
    const char *kinds[2] = {"snapshots", "outputs"};
    for (int k = 0; k < 2; k++) {
        char *top = wq_asprintf("%s/%s", self->state_dir, kinds[k]);
        DIR *d = opendir(top);
        struct dirent *de;
        while (d != NULL && (de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            char *sub = wq_asprintf("%s/%s", top, de->d_name);
            size_t left =
                sweep_dir(self, sub, k == 0 ? de->d_name : NULL,
                          k == 0 ? self->cfg.snapshot_retention_ms : self->cfg.output_retention_ms,
                          now_wall, now, &next);
            if (left == 0 && k == 1)
                (void) rmdir(sub); /* a job's emptied output folder */
            free(sub);
        }
        if (d != NULL)
            closedir(d);
        free(top);
    }
    s->next_mono = next;
}

void
snapshots_tick(sched_t *self, int64_t now)
{
    struct snapstore *s = store(self);
    if (now >= s->next_mono) {
        s->next_mono = INT64_MAX;
        sweep(self, now);
        if (s->next_mono < now + SWEEP_MIN_MS)
            s->next_mono = now + SWEEP_MIN_MS;
    }
}

int64_t
snapshots_next_timer(sched_t *self)
{
    return self->snap ? self->snap->next_mono : 0;
}

void
snapshots_free(sched_t *self)
{
    if (self->snap == NULL)
        return;
    free(self->snap->leases);
    free(self->snap);
    self->snap = NULL;
}
