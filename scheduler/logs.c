/* Job output and metrics under <state-dir>/logs: LogChunks from workers appended at the
 * offsets they carry (a resent chunk is not written twice), `wslq logs` reads, and the metric
 * lines a job writes to $WSLQ_METRICS. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mem.h"
#include "scheduler/sched_int.h"

#define LOG_DRAIN_MS                                                        \
    60000 /* after a job ends, `logs -f` waits this long at most for output \
                its JobEnded counted but that has not arrived */

char *
logs_path(sched_t *self, uint64_t id, int node_rank)
{
    if (node_rank < 0)
        return wq_asprintf("%s/%" PRIu64 ".log", self->log_dir, id);
    return wq_asprintf("%s/%" PRIu64 ".n%d.log", self->log_dir, id, node_rank);
}

int64_t
logs_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t) st.st_size : 0;
}

/* The file holding exactly what part k of this attempt sent, byte for byte: its offsets are
 * the worker's. The merged log itself for a one-node job's first attempt; else a file of its
 * own (<id>.n<k>.log for the first attempt, <id>.a<attempt>.n<k>.log for later ones). */
static char *
stream_path(sched_t *self, uint64_t id, uint32_t attempt, size_t k, size_t nparts)
{
    if (attempt == 0 && nparts == 1)
        return logs_path(self, id, -1);
    if (attempt == 0)
        return logs_path(self, id, (int) k);
    return wq_asprintf("%s/%" PRIu64 ".a%" PRIu32 ".n%zu.log", self->log_dir, id, attempt, k);
}

uint64_t
logs_received(sched_t *self, uint64_t id, uint32_t attempt, size_t k, size_t nparts)
{
    char *p = stream_path(self, id, attempt, k, nparts);
    int64_t n = logs_size(p);
    free(p);
    return (uint64_t) n;
}

int
logs_complete(sched_t *self, const Wslq__JobInfo *info)
{
    for (size_t k = 0; k < info->n_allocs; k++)
        if (logs_received(self, info->id, info->attempt, k, info->n_allocs) <
            info->allocs[k]->log_bytes)
            return 0;
    return 1;
}

/* Append the part of data (which starts at 'offset' of the sender's stream) that the file
 * does not hold yet. Returns the bytes written (0: we have them all), -1 on an error, -2 for
 * a gap (the worker resends from our size after it re-registers or is acknowledged). */
static ssize_t
append_exact(const char *path, uint64_t offset, const uint8_t *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    struct stat st;
    ssize_t rc = -1;
    if (fstat(fd, &st) == 0) {
        uint64_t have = (uint64_t) st.st_size;
        if (offset > have) {
            rc = -2;
        } else if (offset + len <= have) {
            rc = 0;
        } else {
            size_t skip = (size_t) (have - offset);
            ssize_t w = write(fd, data + skip, len - skip);
            rc = w == (ssize_t) (len - skip) ? w : -1;
        }
    }
    close(fd);
    return rc;
}

static int
append_raw(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int rc = write(fd, data, len) == (ssize_t) len ? 0 : -1;
    close(fd);
    return rc;
}

/* Store a chunk of part k's output for the job's current attempt: exact in its stream file,
 * and in arrival order in the merged log `wslq logs` reads, where a later attempt's output
 * starts with a line that says so. */
static void
append_chunk(sched_t *self, const Wslq__JobInfo *info, size_t k, const Wslq__LogChunk *c)
{
    size_t np = info->n_allocs;
    char *sp = stream_path(self, info->id, info->attempt, k, np);
    char *merged = logs_path(self, info->id, -1);
    int first = info->attempt > 0 && c->offset == 0;
    for (size_t i = 0; first && i < np; i++)
        first = logs_received(self, info->id, info->attempt, i, np) == 0;
    ssize_t w = append_exact(sp, c->offset, c->data.data, c->data.len);
    if (w > 0 && strcmp(sp, merged) != 0) {
        char line[96];
        int n = snprintf(line, sizeof line, "--- wslq: attempt %" PRIu32 " of %" PRIu32 " ---\n",
                         info->attempt + 1, info->spec->retries + 1 + info->uncounted_requeues);
        if ((first && append_raw(merged, line, (size_t) n) < 0) ||
            append_raw(merged, c->data.data + (c->data.len - (size_t) w), (size_t) w) < 0)
            w = -1;
    }
    if (w == -1)
        log_warn("log write failed " JOB_FMT ": %s", info->id, strerror(errno));
    free(sp);
    free(merged);
}

/* Send what the log holds from w->offset (at most w->max_bytes), with eof once the job has
 * ended and everything was sent. */
void
logs_answer(sched_t *self, const waiter_t *w)
{
    char *path = logs_path(self, w->job_id, -1);
    int64_t size = logs_size(path);
    uint32_t want = w->max_bytes ? w->max_bytes : SCHED_LOG_READ_DEFAULT;
    if (want > WIRE_MAX_LOG_CHUNK)
        want = WIRE_MAX_LOG_CHUNK;
    uint8_t *data = NULL;
    size_t got = 0;
    if ((int64_t) w->offset < size) {
        size_t n = (size_t) (size - (int64_t) w->offset);
        if (n > want)
            n = want;
        data = wq_malloc(n);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t r = pread(fd, data, n, (off_t) w->offset);
            got = r > 0 ? (size_t) r : 0;
            close(fd);
        }
    }
    free(path);
    job_t *job = jobs_find(self, w->job_id);
    Wslq__JobState st = WSLQ__JOB_STATE__JOB_STATE_UNSPECIFIED;
    int drained = 1; /* every byte the job's parts counted has arrived, or we waited enough */
    if (job != NULL) {
        st = job->info->state;
    } else {
        Wslq__JobInfo *info = queue_get(self->q, w->job_id, NULL);
        if (info != NULL) {
            st = info->state;
            drained = logs_complete(self, info) || info->end_ms + LOG_DRAIN_MS < wq_clock_wall_ms();
            wslq__job_info__free_unpacked(info, NULL);
        }
    }
    Wslq__LogsReply rep = WSLQ__LOGS_REPLY__INIT;
    rep.data.data = data;
    rep.data.len = got;
    rep.next_offset = w->offset + got;
    rep.state = st;
    rep.eof = job == NULL && drained && (int64_t) rep.next_offset >= size;
    out_logs_reply(self, &w->peer, w->request_id, &rep);
    free(data);
}

void
handle_logs(sched_t *self, const msg_t *m)
{
    Wslq__LogsRequest *r = m->env->logs;
    if (r->selector != NULL && r->selector[0] != '\0') { /* "42" or an array task "40_7" */
        wq_error_t err = {0};
        if (jobs_select_one(self, r->selector, &r->job_id, &err) < 0) {
            out_error(self, m->from, m->env->request_id, &err);
            return;
        }
    }
    job_t *job = jobs_find(self, r->job_id);
    if (job != NULL && jobs_forbid(self, m, job->info, "read the log of"))
        return;
    if (job == NULL) {
        wq_error_t err = {0};
        Wslq__JobInfo *info = queue_get(self->q, r->job_id, &err);
        if (info == NULL) {
            out_error(self, m->from, m->env->request_id, &err);
            return;
        }
        int forbidden = jobs_forbid(self, m, info, "read the log of");
        wslq__job_info__free_unpacked(info, NULL);
        if (forbidden)
            return;
    }
    char *path = logs_path(self, r->job_id, -1);
    int64_t size = logs_size(path);
    free(path);
    waiter_t w = {0};
    w.kind = WAIT_LOGS;
    w.peer = *m->from;
    w.request_id = m->env->request_id;
    w.job_id = r->job_id;
    w.offset = r->offset;
    w.max_bytes = r->max_bytes;
    if (job != NULL && r->wait_ms > 0 && (int64_t) r->offset >= size) {
        w.deadline_mono = wq_clock_mono_ms() + r->wait_ms;
        /* answered when output comes, the job ends, or at the deadline */
        wq_error_t err;
        if (waiters_park(self, &w, &err) < 0)
            out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    logs_answer(self, &w);
}

void
handle_log_chunk(sched_t *self, const msg_t *m)
{
    const Wslq__LogChunk *c = m->env->log;
    if (c->data.len == 0)
        return;
    /* The job may have ended already: output the worker counted in its JobEnded can still be
     * on its way (or resent after an outage), and is kept. */
    job_t *job = jobs_find(self, c->job_id);
    Wslq__JobInfo *ended = job ? NULL : queue_get(self->q, c->job_id, NULL);
    const Wslq__JobInfo *info = job ? job->info : ended;
    int k = info && info->attempt == c->attempt ? gang_part_of(info, m->node->info->name) : -1;
    if (k >= 0)
        append_chunk(self, info, (size_t) k, c);
    if (ended)
        wslq__job_info__free_unpacked(ended, NULL);
    if (k >= 0)
        waiters_wake_logs(self, c->job_id);
}

void
handle_metrics(sched_t *self, const msg_t *m)
{
    const Wslq__MetricLines *ml = m->env->metrics;
    job_t *job = jobs_find(self, ml->job_id);
    /* only from a node the job runs on, for its current attempt */
    if (job == NULL || job->info->attempt != ml->attempt ||
        gang_part_of(job->info, m->node->info->name) < 0)
        return;
    char *path = wq_asprintf("%s/%" PRIu64 ".metrics", self->log_dir, ml->job_id);
    FILE *f = fopen(path, "ae");
    if (f != NULL) {
        for (size_t i = 0; i < ml->n_lines; i++)
            if (strchr(ml->lines[i], '\n') == NULL)
                fprintf(f, "%u\t%s\n", ml->rank, ml->lines[i]);
        fclose(f);
    }
    free(path);
}
