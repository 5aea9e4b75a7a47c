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

/* Append data that starts at 'offset' of the sender's stream. exact: only the part past what
 * the file holds is written (0), a gap is refused (1: the worker resends from our size after
 * it re-registers), a chunk we have is skipped (2); otherwise appended as is. -1 on error. */
static int
append_file(const char *path, uint64_t offset, const uint8_t *data, size_t len, int exact)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) == 0) {
        uint64_t have = (uint64_t) st.st_size;
        if (!exact) {
            rc = write(fd, data, len) == (ssize_t) len ? 0 : -1;
        } else if (offset <= have && offset + len > have) {
            size_t skip = (size_t) (have - offset);
            rc = write(fd, data + skip, len - skip) == (ssize_t) (len - skip) ? 0 : -1;
        } else if (offset > have) {
            rc = 1;
        } else {
            rc = 2;
        }
    }
    close(fd);
    return rc;
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
    if (job != NULL) {
        st = job->info->state;
    } else {
        Wslq__JobInfo *info = queue_get(self->q, w->job_id, NULL);
        if (info != NULL) {
            st = info->state;
            wslq__job_info__free_unpacked(info, NULL);
        }
    }
    Wslq__LogsReply rep = WSLQ__LOGS_REPLY__INIT;
    rep.data.data = data;
    rep.data.len = got;
    rep.next_offset = w->offset + got;
    rep.state = st;
    rep.eof = job == NULL && (int64_t) rep.next_offset >= size;
    out_logs_reply(self, &w->peer, w->request_id, &rep);
    free(data);
}

void
handle_logs(sched_t *self, const msg_t *m)
{
    const Wslq__LogsRequest *r = m->env->logs;
    job_t *job = jobs_find(self, r->job_id);
    if (job == NULL) {
        wq_error_t err = {0};
        Wslq__JobInfo *info = queue_get(self->q, r->job_id, &err);
        if (info == NULL) {
            out_error(self, m->from, m->env->request_id, &err);
            return;
        }
        wslq__job_info__free_unpacked(info, NULL);
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
        waiters_add(self, &w); /* answered when output comes, the job ends, or at the deadline */
        return;
    }
    logs_answer(self, &w);
}

void
handle_log_chunk(sched_t *self, const msg_t *m)
{
    const Wslq__LogChunk *c = m->env->log;
    job_t *job = jobs_find(self, c->job_id);
    if (job == NULL || job->info->attempt != c->attempt || c->data.len == 0)
        return;
    int k = gang_part_of(job, m->node->info->name);
    if (k < 0)
        return;
    char *path = logs_path(self, c->job_id, -1);
    if (job->info->n_allocs == 1) {
        if (append_file(path, c->offset, c->data.data, c->data.len, 1) < 0)
            log_warn("log write failed " JOB_FMT ": %s", c->job_id, strerror(errno));
    } else {
        /* Several nodes: an exact per-node copy tracks offsets; the merged file is what
         * `wslq logs` reads, in arrival order. */
        char *npath = logs_path(self, c->job_id, k);
        int rc = append_file(npath, c->offset, c->data.data, c->data.len, 1);
        if (rc == 0)
            append_file(path, 0, c->data.data, c->data.len, 0);
        free(npath);
    }
    free(path);
    waiters_wake_logs(self, c->job_id);
}

void
handle_metrics(sched_t *self, const msg_t *m)
{
    const Wslq__MetricLines *ml = m->env->metrics;
    if (jobs_find(self, ml->job_id) == NULL)
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
