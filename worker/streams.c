/* The jobs this worker holds, from JobLaunch (or adoption after a restart) until the
 * scheduler has acknowledged the end and has the whole log: what each turn polls, streams
 * and reports. One job's processes and files are job.c's; this file turns them into
 * messages (outbox.c) and keeps sending until the scheduler has them. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/mem.h"
#include "worker/tdr.h"
#include "worker/worker_int.h"

#define ENDED_RESEND_MS   2000 /* JobEnded re-sent until JobEndedAck */
#define LOG_CHUNKS_TICK   16   /* LogChunks per job per tick */
#define METRIC_LINES_TICK 64   /* metric lines per rank per tick */
/* NCCL's /dev/shm leftovers are removed once they are 60 s old (sysinfo.c): a sweep after a
 * job's end at most this often takes the same files, a little later, without a scan of
 * /dev/shm after each of a stream of short jobs */
#define SHM_SWEEP_MS 10000
/* A single-node job's JobStarted waits this long, or until anything else about the job goes
 * out (its output, a failed rank, its end): a job that ends by then has both in one write,
 * which the scheduler takes in one turn and one commit rather than two. Its rank already
 * runs; only the RUNNING state shows up later. A gang's goes at once (its parts wait for
 * each other). */
#define STARTED_HOLD_MS 10

static int64_t shm_swept_ms = INT64_MIN / 2; /* the last sweep (monotonic ms) */

static void
add_job(worker_t *w, job_t *j)
{
    if (w->njobs == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 16;
        w->jobs = wq_realloc(w->jobs, w->cap * sizeof *w->jobs);
    }
    w->jobs[w->njobs++] = j;
}

static job_t *
find_job(worker_t *w, uint64_t id, uint32_t attempt)
{
    for (size_t i = 0; i < w->njobs; i++)
        if (w->jobs[i]->id == id && w->jobs[i]->attempt == attempt)
            return w->jobs[i];
    return NULL;
}

/* Open the job's rendezvous socket (<spool>/rdv.sock), the property of the job's account
 * uid:gid, which must connect to it (a Unix socket needs write permission). 1 if offered. */
static int
open_rendezvous(worker_t *w, uint64_t id, uint32_t attempt, uid_t uid, gid_t gid)
{
    if (w->rdv == NULL)
        return 0;
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/spool/%" PRIu64 ".%" PRIu32, w->cfg.state_dir, id, attempt);
    if (mkdir(p, 0700) < 0 && errno != EEXIST) /* job_launch gives it to the account */
        return 0;
    strncat(p, "/rdv.sock", sizeof p - strlen(p) - 1);
    wq_error_t err = {0};
    if (rdv_open(w->rdv, id, attempt, p, &err) < 0) {
        log_warn("no rendezvous socket " JOB_FMT " err=\"%s\"", id, err.text);
        return 0;
    }
    if (runas_give(p, uid, gid) < 0) {
        log_warn("rendezvous socket not given to the job's account " JOB_FMT " err=\"%s\"", id,
                 strerror(errno));
        rdv_close_job(w->rdv, id, attempt);
        return 0;
    }
    return 1;
}

void
streams_launch(worker_t *w, const Wslq__JobLaunch *l)
{
    if (l->spec == NULL || l->alloc == NULL || l->spec->n_argv == 0) {
        log_warn("launch without spec, alloc or argv ignored " JOB_FMT, l->job_id);
        return;
    }
    job_t *j = find_job(w, l->job_id, l->attempt);
    if (j == NULL && workdir_launch(w, l)) /* its snapshot first (workdir.c) */
        return;
    if (j != NULL) { /* a repeat: answer again, never run twice */
        if (j->phase == JOB_ENDED)
            j->ended_sent_ms = 0;
        else if (j->started) {
            j->started_due_ms = 0;
            outbox_job_started(w, j);
        }
        return;
    }
    if (l->alloc->node && *l->alloc->node && strcmp(l->alloc->node, w->cfg.name) != 0)
        log_warn("launch for another node " JOB_FMT " node=%s", l->job_id, l->alloc->node);
    /* Whose account the ranks run as (runas.h); a job whose owner has none here ends at once. */
    runas_acct_t acct;
    char refuse[256];
    if (runas_resolve(&w->runas, l->spec->user, w->cfg.name, &acct, refuse, sizeof refuse) < 0)
        w->jcfg.refuse = refuse;
    else
        w->jcfg.acct = &acct;
    w->jcfg.rendezvous = w->jcfg.refuse == NULL && /* before any rank runs */
                         open_rendezvous(w, l->job_id, l->attempt, acct.uid, acct.gid);
    /* the CPUs other jobs here are bound to, so this one gets others where there are */
    int *use = wq_calloc(ISOL_MAX_CPUS, sizeof *use);
    for (size_t i = 0; i < w->njobs; i++)
        for (int c = 0; w->jobs[i]->phase != JOB_ENDED && c < ISOL_MAX_CPUS; c++)
            use[c] += isol_cpu_has(&w->jobs[i]->cpus, c) != 0;
    w->jcfg.cpu_use = use;
    j = job_launch(l, &w->jcfg);
    w->jcfg.cpu_use = NULL;
    free(use);
    /* a rise by the end is a GPU reset (tdr.h); the heartbeats' last read of the owner file
     * serves, so a launch waits on no file on the Windows drive */
    j->tdr_events_at_start = tdr_events_recent(w);
    j->tdr_known = j->tdr_events_at_start >= 0;
    w->jcfg.acct = NULL;
    w->jcfg.refuse = NULL;
    runas_acct_clear(&acct);
    if (j->phase == JOB_ENDED && w->rdv != NULL)
        rdv_close_job(w->rdv, j->id, j->attempt);
    add_job(w, j);
    if (j->started && l->nnodes <= 1)
        j->started_due_ms = wq_clock_mono_ms() + STARTED_HOLD_MS;
    else if (j->started)
        outbox_job_started(w, j); /* first: the submit-to-start path does nothing else before */
    wq_error_t err = {0};
    if (job_save(j, &err) < 0)
        log_warn("cannot save job state " JOB_FMT " err=\"%s\"", j->id, err.text);
    log_info("job launched " JOB_FMT " attempt=%" PRIu32 " ranks=%d started=%d uid=%u", j->id,
             j->attempt, j->nranks, j->started, (unsigned) j->uid);
}

void
streams_kill(worker_t *w, const Wslq__JobKill *k, int64_t now)
{
    job_t *j = find_job(w, k->job_id, k->attempt);
    if (j == NULL && workdir_kill(w, k->job_id, k->attempt, k->reason))
        return; /* it was waiting for its snapshot: ended now */
    if (j == NULL) {
        log_flag(WORKER, "kill for a job not here " JOB_FMT, k->job_id);
        return;
    }
    if (j->phase == JOB_ENDED) {
        j->ended_sent_ms = 0; /* the scheduler missed the end: say it again */
        return;
    }
    job_stop(j, k->grace_ms, 0, k->reason && *k->reason ? k->reason : "cancelled", now);
    log_info("job kill " JOB_FMT " grace_ms=%" PRIu32, j->id, k->grace_ms);
}

void
streams_suspend(worker_t *w, const Wslq__JobSuspend *s, int64_t now)
{
    job_t *j = find_job(w, s->job_id, s->attempt);
    if (j == NULL) {
        log_flag(WORKER, "suspend for a job not here " JOB_FMT, s->job_id);
        return;
    }
    if (job_suspend(j, s->suspend, now))
        log_info("job %s " JOB_FMT " reason=\"%s\"", s->suspend ? "suspended" : "resumed", j->id,
                 s->reason ? s->reason : "");
}

void
streams_ended_ack(worker_t *w, const Wslq__JobEndedAck *a)
{
    job_t *j = find_job(w, a->job_id, a->attempt);
    if (j == NULL || j->phase != JOB_ENDED)
        return;
    if (a->log_counted && a->log_offset < j->log_bytes) {
        /* output was lost on the way (a scheduler restart, a dropped send): send it again
         * from what the scheduler holds, then the end again */
        log_info("log resent after the end " JOB_FMT " from=%" PRIu64 " of=%" PRIu64, j->id,
                 a->log_offset, j->log_bytes);
        j->sent = a->log_offset;
        j->ended_sent_ms = 0;
        return;
    }
    j->acked = 1;
}

void
streams_register_reply(worker_t *w, const Wslq__RegisterReply *r, int64_t now)
{
    for (size_t i = 0; i < r->n_kill_jobs; i++)
        for (size_t k = 0; k < w->njobs; k++)
            if (w->jobs[k]->id == r->kill_jobs[i] && w->jobs[k]->phase != JOB_ENDED)
                job_stop(w->jobs[k], 0, 0, "ended by the scheduler while the worker was away", now);
    for (size_t i = 0; i < r->n_log_offsets; i++) {
        job_t *j = find_job(w, r->log_offsets[i]->job_id, r->log_offsets[i]->attempt);
        if (j != NULL)
            j->sent = r->log_offsets[i]->log_offset;
    }
    for (size_t k = 0; k < w->njobs; k++)
        if (w->jobs[k]->phase == JOB_ENDED && !w->jobs[k]->acked)
            w->jobs[k]->ended_sent_ms = 0;
}

void
streams_reap(worker_t *w, int64_t now)
{
    for (int n = 0; n < 100000; n++) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        for (size_t i = 0; i < w->njobs; i++)
            if (job_reap(w->jobs[i], pid, status, now))
                break;
    }
}

void
streams_keeper(worker_t *w, int64_t now)
{
    keeper_end_t e;
    while (keeper_next_end(&w->keeper, &e) == 0)
        for (size_t i = 0; i < w->njobs; i++)
            if (job_reap(w->jobs[i], e.pid, e.status, now))
                break;
    if (!w->keeper.lost)
        return;
    /* The keeper is gone: its ranks are init's now. Watched by group like adopted ones; one
     * that ends without a status file ends the job with the keeper's loss as the reason. */
    w->keeper.lost = 0;
    for (size_t i = 0; i < w->njobs; i++) {
        job_t *j = w->jobs[i];
        for (int r = 0; r < j->nranks; r++)
            if (j->ranks[r].kept && j->ranks[r].alive && j->ranks[r].pid > 0) {
                j->ranks[r].pid = 0;
                j->keeper_lost = 1;
            }
    }
}

/* A held JobStarted sent now (before anything else about the job). */
static void
started_flush(worker_t *w, job_t *j)
{
    if (j->started_due_ms == 0)
        return;
    j->started_due_ms = 0;
    outbox_job_started(w, j);
}

/* Stream new bytes of job.log from j->sent, bounded per tick. */
static void
send_logs(worker_t *w, job_t *j)
{
    uint64_t size = j->phase == JOB_ENDED ? j->log_bytes : job_log_size(j);
    if (j->sent > size)
        j->sent = size; /* the scheduler claims more than we have: trust our file */
    if (j->sent == size)
        return;
    started_flush(w, j);
    uint8_t *buf = wq_malloc(WORKER_LOG_CHUNK);
    for (int k = 0; k < LOG_CHUNKS_TICK && j->sent < size; k++) {
        uint64_t want = size - j->sent < WORKER_LOG_CHUNK ? size - j->sent : WORKER_LOG_CHUNK;
        ssize_t n = job_log_read(j, j->sent, buf, (size_t) want);
        if (n <= 0) {
            if (j->phase == JOB_ENDED) {
                /* the spool lost what it counted: end with what there is rather than never */
                log_warn("job log shorter than counted " JOB_FMT " have=%" PRIu64
                         " counted=%" PRIu64,
                         j->id, j->sent, j->log_bytes);
                j->log_bytes = j->sent;
            }
            break;
        }
        if (outbox_log_chunk(w, j, j->sent, buf, (size_t) n) < 0)
            break;
        j->sent += (uint64_t) n;
    }
    if (j->sent < size)
        w->backlog = 1;
    free(buf);
}

/* Relay new metric lines, bounded per tick. 1 if some rank has more. */
static int
send_metrics(worker_t *w, job_t *j)
{
    int more = 0;
    for (int i = 0; i < j->nranks; i++) {
        char **lines = NULL;
        size_t n = job_metrics(j, i, &lines, METRIC_LINES_TICK);
        if (n > 0) {
            started_flush(w, j);
            outbox_metric_lines(w, j, i, lines, n);
            if (n == METRIC_LINES_TICK)
                more = w->backlog = 1;
        }
        for (size_t k = 0; k < n; k++)
            free(lines[k]);
        free(lines);
    }
    return more;
}

void
streams_tick(worker_t *w, int64_t now)
{
    for (size_t i = 0; i < w->njobs;) {
        job_t *j = w->jobs[i];
        if (j->phase != JOB_ENDED && space_full(&w->space) && !j->output_lost) {
            j->output_lost = 1; /* its ranks write to the spool: some of it may be gone */
            log_warn("job output at risk: the spool is full " JOB_FMT, j->id);
        }
        int ended_now = job_poll(j, now);
        if (j->started_due_ms != 0 &&
            (now >= j->started_due_ms || j->phase == JOB_ENDED || j->have_fail))
            started_flush(w, j);
        if (ended_now && !j->output_lost) {
            /* a job that fills the spool may end before a heartbeat measures it: its end does */
            space_check(&w->space);
            if (space_full(&w->space)) {
                j->output_lost = 1;
                log_warn("job output at risk: the spool is full " JOB_FMT, j->id);
            }
        }
        if (j->have_fail && j->fail_cause && !j->fail_reported && j->nranks > 0 && w->registered) {
            /* at once, so the scheduler stops the job's other nodes while this one stops its
             * own other ranks */
            outbox_rank_failed(w, j);
            j->fail_reported = 1;
        }
        if (ended_now)
            tdr_check_end(w, j);
        if (ended_now && now - shm_swept_ms >= SHM_SWEEP_MS) {
            sysinfo_cleanup_nccl_shm();
            shm_swept_ms = now;
        }
        if (ended_now && w->rdv != NULL)
            rdv_close_job(w->rdv, j->id, j->attempt);
        int more = 0;
        if (w->registered) {
            send_logs(w, j);
            more = send_metrics(w, j);
        }
        /* The end goes after the job's last output and metrics, on the same connection, so
         * the scheduler has them all when it ends the job. */
        if (j->phase == JOB_ENDED && !j->acked && j->sent >= j->log_bytes && !more &&
            workdir_output_ready(w, j, now) &&
            (ended_now || j->ended_sent_ms == 0 || now - j->ended_sent_ms >= ENDED_RESEND_MS)) {
            outbox_job_ended(w, j);
            j->ended_sent_ms = now;
        }
        if (j->acked && j->sent >= j->log_bytes) {
            job_forget(j);
            job_destroy(&w->jobs[i]);
            w->jobs[i] = w->jobs[--w->njobs];
            continue;
        }
        i++;
    }
}

int64_t
streams_next_deadline(const worker_t *w, int64_t next, int *active)
{
    for (size_t i = 0; i < w->njobs; i++) {
        const job_t *j = w->jobs[i];
        int64_t d = job_next_deadline(j);
        if (d > 0 && d < next)
            next = d;
        if (j->started_due_ms != 0 && j->started_due_ms < next)
            next = j->started_due_ms;
        if (j->phase != JOB_ENDED)
            *active = 1;
        else if (!j->acked && j->ended_sent_ms + ENDED_RESEND_MS < next)
            next = j->ended_sent_ms + ENDED_RESEND_MS;
        else if (j->acked)
            *active = 1; /* logs still going out */
    }
    return next;
}

void
streams_cleanup_spool(worker_t *w)
{
    if (w->cfg.spool_keep_days <= 0)
        return;
    char dir[PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/spool", w->cfg.state_dir);
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    time_t cutoff = time(NULL) - (time_t) w->cfg.spool_keep_days * 86400;
    struct dirent *e;
    int removed = 0;
    while ((e = readdir(d)) != NULL && removed < 1000) {
        if (e->d_name[0] == '.')
            continue;
        char sp[PATH_MAX + 300];
        snprintf(sp, sizeof sp, "%s/%s", dir, e->d_name);
        int held = 0;
        for (size_t i = 0; i < w->njobs && !held; i++)
            held = strcmp(w->jobs[i]->spool, sp) == 0;
        struct stat st;
        if (held || stat(sp, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_mtime > cutoff)
            continue;
        DIR *sd = opendir(sp);
        if (sd == NULL)
            continue;
        struct dirent *f;
        while ((f = readdir(sd)) != NULL) {
            if (strcmp(f->d_name, ".") == 0 || strcmp(f->d_name, "..") == 0)
                continue;
            char fp[PATH_MAX + 600];
            snprintf(fp, sizeof fp, "%s/%s", sp, f->d_name);
            unlink(fp);
        }
        closedir(sd);
        if (rmdir(sp) == 0)
            removed++;
    }
    closedir(d);
    if (removed)
        log_info("spool cleanup removed=%d", removed);
}

void
streams_adopt(worker_t *w)
{
    char dir[PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/jobs", w->cfg.state_dir);
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char p[PATH_MAX + 300];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".tmp") == 0) {
            unlink(p);
            continue;
        }
        if (n < 7 || strcmp(e->d_name + n - 6, ".state") != 0)
            continue;
        wq_error_t err = {0};
        job_t *j = job_adopt(p, &w->jcfg, &err);
        if (j == NULL) {
            log_warn("unusable job state file removed err=\"%s\"", err.text);
            unlink(p);
            continue;
        }
        int alive = 0;
        for (int i = 0; i < j->nranks; i++)
            alive += j->ranks[i].alive;
        log_info("job adopted " JOB_FMT " attempt=%" PRIu32 " ended=%d ranks_alive=%d", j->id,
                 j->attempt, j->phase == JOB_ENDED, alive);
        if (j->phase != JOB_ENDED)
            open_rendezvous(w, j->id, j->attempt, j->uid, j->gid);
        add_job(w, j);
    }
    closedir(d);
}

void
streams_destroy(worker_t *w)
{
    for (size_t i = 0; i < w->njobs; i++)
        job_destroy(&w->jobs[i]);
    free(w->jobs);
    w->jobs = NULL;
    w->njobs = w->cap = 0;
}
