/* Every message the worker sends to the scheduler (proto/README.md, "Worker conversation").
 * Sends never block: the loop must keep watching jobs while the scheduler is away. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <zmq.h>

#include "common/clock.h"
#include "common/mem.h"
#include "worker/ownercheck.h"
#include "worker/worker_int.h"

/* An envelope around one message body: Wslq__Envelope's body is an anonymous union, so
 * ENVELOPE(HEARTBEAT, heartbeat, &hb) sets body_case and the matching member together. */
#define ENVELOPE(CASE, member, msg)                                                 \
    ((Wslq__Envelope){.base = PROTOBUF_C_MESSAGE_INIT(&wslq__envelope__descriptor), \
                      .body_case = WSLQ__ENVELOPE__BODY_##CASE,                     \
                      .member = (msg)})

int
outbox_send(worker_t *w, Wslq__Envelope *env)
{
    wq_error_t err = {0};
    if (wire_send(w->sock, NULL, 0, env, ZMQ_DONTWAIT, &err) < 0) {
        if (errno == EAGAIN)
            w->backlog = 1;
        else
            log_warn("send to scheduler failed err=\"%s\"", err.text);
        return -1;
    }
    return 0;
}

int
outbox_rdv_send(void *ctx, Wslq__Envelope *env)
{
    return outbox_send(ctx, env);
}

void
outbox_owner_refresh(worker_t *w)
{
    char why[sizeof w->owner_why];
    int was = w->owner_state;
    w->owner_state = owner_read(w->cfg.owner_file, wq_clock_wall_ms() / 1000, &w->cfg.owner_lim,
                                &w->owner_rep, why, sizeof why);
    w->owner_read_ms = wq_clock_mono_ms();
    /* the reason goes on the wire as one line */
    for (char *p = why; *p; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            *p = '?';
    if (was != w->owner_state || w->owner_why[0] == '\0')
        log_info("owner %s policy=%s: %s", owner_state_name(w->owner_state),
                 owner_policy_name(w->cfg.owner), why);
    memcpy(w->owner_why, why, sizeof why);
}

void
outbox_register(worker_t *w, int64_t now)
{
    Wslq__Register r = WSLQ__REGISTER__INIT;
    r.name = w->cfg.name;
    r.hostname = w->si.hostname;
    r.ip = w->si.ip;
    r.cpus = (uint32_t) w->si.cpus;
    r.mem_mb = (uint64_t) w->si.mem_mb;
    Wslq__GpuInfo gm[WIRE_MAX_GPUS], *gp[WIRE_MAX_GPUS];
    sysinfo_gpu_msgs(&w->si, gm, gp);
    r.n_gpus = (size_t) w->si.ngpus;
    r.gpus = gp;
    Wslq__RunningJob *rj = wq_calloc(w->njobs + 1, sizeof *rj);
    Wslq__RunningJob **rp = wq_calloc(w->njobs + 1, sizeof *rp);
    for (size_t i = 0; i < w->njobs; i++) {
        job_t *j = w->jobs[i];
        if (j->phase == JOB_ENDED)
            continue; /* its JobEnded is re-sent instead */
        wslq__running_job__init(&rj[r.n_running]);
        rj[r.n_running].job_id = j->id;
        rj[r.n_running].attempt = j->attempt;
        rj[r.n_running].log_offset = job_log_size(j);
        rp[r.n_running] = &rj[r.n_running];
        r.n_running++;
    }
    r.running = rp;
    r.version = WSLQ_VERSION;
    r.inbound_ok = w->cfg.inbound_ok >= 0 ? w->cfg.inbound_ok : w->si.inbound_ok;
    r.heartbeat_ms = (uint32_t) w->cfg.heartbeat_ms;
    /* the next Heartbeat comes at the busy interval: a registration is a change */
    r.next_heartbeat_ms = (uint32_t) w->cfg.heartbeat_ms;
    if (w->next_hb_ms > now + w->cfg.heartbeat_ms)
        w->next_hb_ms = now + w->cfg.heartbeat_ms;
    w->hb_idle = 0;
    Wslq__NodeAttr a[4], *ap[4];
    const char *keys[4] = {"is_wsl", "iface", "nccl_profile", "gpu_note"};
    const char *vals[4] = {w->si.is_wsl ? "1" : "0", w->si.iface, w->si.nccl_profile,
                           w->si.gpu_note};
    size_t na = 0;
    for (int i = 0; i < 4; i++) {
        if (vals[i][0] == '\0' && i == 3)
            continue;
        wslq__node_attr__init(&a[na]);
        a[na].key = (char *) keys[i];
        a[na].value = (char *) vals[i];
        ap[na] = &a[na];
        na++;
    }
    r.n_attrs = na;
    r.attrs = ap;
    /* + disk.spool, owner.reporter */
    Wslq__NodeCheck ck[SYSINFO_MAX_CHECKS + 2], *ckp[SYSINFO_MAX_CHECKS + 2];
    for (int i = 0; i < w->si.n_checks; i++) {
        const sysinfo_check_t *c = &w->si.checks[i];
        wslq__node_check__init(&ck[i]);
        ck[i].id = (char *) c->id;
        ck[i].verdict = c->verdict;
        ck[i].summary = (char *) c->summary;
        ck[i].fix = (char *) c->fix;
        ckp[i] = &ck[i];
    }
    r.n_checks = (size_t) w->si.n_checks;
    r.checks = ckp;
    char disk_summary[WIRE_MAX_CHECK_TEXT];
    space_node_check(&w->space, &ck[r.n_checks], disk_summary, sizeof disk_summary);
    ckp[r.n_checks] = &ck[r.n_checks];
    r.n_checks++;
    char owner_summary[WIRE_MAX_CHECK_TEXT], owner_fix[WIRE_MAX_CHECK_TEXT];
    wslq__node_check__init(&ck[r.n_checks]);
    ck[r.n_checks].id = "owner.reporter";
    ck[r.n_checks].verdict =
        owner_check(w->cfg.owner_file, w->cfg.owner, w->cfg.owner_user, &w->cfg.owner_lim,
                    wq_clock_wall_ms() / 1000, owner_summary, sizeof owner_summary, owner_fix,
                    sizeof owner_fix);
    ck[r.n_checks].summary = owner_summary;
    ck[r.n_checks].fix = owner_fix;
    ckp[r.n_checks] = &ck[r.n_checks];
    r.n_checks++;
    r.probe_port = w->selftest.port;
    outbox_owner_refresh(w);
    r.owner_state = (uint32_t) w->owner_state;
    r.owner_policy = (uint32_t) w->cfg.owner;
    r.owner_why = w->owner_why;
    r.owner_user = w->cfg.owner_user;
    r.owner_suspend_max_s = (uint32_t) w->cfg.owner_suspend_max_min * 60u;
    Wslq__Envelope env = ENVELOPE(REG, reg, &r);
    env.request_id = ++w->reg_req_id;
    w->reg_sent_wall = wq_clock_wall_ms();
    outbox_send(w, &env);
    free(rj);
    free(rp);
    w->reg_sent_ms = now;
    log_flag(WORKER, "register sent running=%zu", r.n_running);
}

int
outbox_heartbeat(worker_t *w)
{
    sysinfo_refresh(&w->si);
    outbox_owner_refresh(w);
    uint64_t ours = 0;
    int unsure = 0;
    for (size_t i = 0; i < w->njobs; i++)
        if (w->jobs[i]->phase != JOB_ENDED) {
            ours |= w->jobs[i]->gpus;
            unsure |= w->jobs[i]->adopted;
        }
    /* the Windows processes' GPU memory, when the report is fresh and has it */
    int64_t desktop_mb =
        w->owner_state != OWNER_UNKNOWN && w->owner_rep.gpu_ok ? w->owner_rep.gpu_mem_mb : -1;
    sysinfo_note_idle(&w->si, ours, unsure, desktop_mb);
    Wslq__Heartbeat hb = WSLQ__HEARTBEAT__INIT;
    Wslq__GpuInfo gm[WIRE_MAX_GPUS], *gp[WIRE_MAX_GPUS];
    sysinfo_gpu_msgs(&w->si, gm, gp);
    hb.n_gpus = (size_t) w->si.ngpus;
    hb.gpus = gp;
    for (size_t i = 0; i < w->njobs; i++)
        hb.running += w->jobs[i]->phase != JOB_ENDED;
    hb.clock_measured = w->clock_measured;
    hb.clock_offset_ms = w->clock_offset_ms;
    hb.clock_rtt_ms = w->clock_rtt_ms;
    int changed = space_check(&w->space);
    Wslq__NodeCheck disk, *dp = &disk;
    char summary[WIRE_MAX_CHECK_TEXT];
    space_node_check(&w->space, &disk, summary, sizeof summary);
    hb.checks = &dp;
    hb.n_checks = 1;
    hb.owner_state = (uint32_t) w->owner_state;
    hb.owner_policy = (uint32_t) w->cfg.owner;
    hb.owner_why = w->owner_why;
    hb.owner_user = w->cfg.owner_user;
    hb.owner_suspend_max_s = (uint32_t) w->cfg.owner_suspend_max_min * 60u;
    /* each running job's CPUs (wslq show) */
    Wslq__IsolJobCpus *jc = w->njobs ? wq_calloc(w->njobs, sizeof *jc) : NULL;
    Wslq__IsolJobCpus **jcp = w->njobs ? wq_calloc(w->njobs, sizeof *jcp) : NULL;
    for (size_t i = 0; i < w->njobs && hb.n_job_cpus < WIRE_MAX_RUNNING; i++) {
        job_t *j = w->jobs[i];
        if (j->phase == JOB_ENDED || j->cpulist[0] == '\0')
            continue;
        wslq__isol_job_cpus__init(&jc[hb.n_job_cpus]);
        jc[hb.n_job_cpus].job_id = j->id;
        jc[hb.n_job_cpus].attempt = j->attempt;
        jc[hb.n_job_cpus].cpus = j->cpulist;
        jcp[hb.n_job_cpus] = &jc[hb.n_job_cpus];
        hb.n_job_cpus++;
    }
    hb.job_cpus = jcp;
    /* Idle: no job held (running, or ended and not yet acknowledged), registered, and the
     * same owner state, running count and GPUs as the last heartbeat carried. */
    changed |= w->owner_state != w->hb_owner_state || hb.running != w->hb_running ||
               w->si.ngpus != w->hb_ngpus;
    w->hb_owner_state = w->owner_state;
    w->hb_running = hb.running;
    w->hb_ngpus = w->si.ngpus;
    int idle_ms = wcfg_idle_ms(&w->cfg, w->idle_max_ms);
    w->hb_idle = w->njobs == 0 && w->registered && !changed;
    int next_ms = w->hb_idle ? idle_ms : w->cfg.heartbeat_ms;
    hb.next_heartbeat_ms = (uint32_t) next_ms;
    outbox_send(w, &ENVELOPE(HEARTBEAT, heartbeat, &hb));
    free(jcp);
    free(jc);
    log_flag(WORKER, "heartbeat sent running=%" PRIu32 " next_ms=%d", hb.running, next_ms);
    return next_ms;
}

void
outbox_job_started(worker_t *w, const job_t *j)
{
    Wslq__JobStarted m = WSLQ__JOB_STARTED__INIT;
    m.job_id = j->id;
    m.attempt = j->attempt;
    outbox_send(w, &ENVELOPE(STARTED, started, &m));
}

void
outbox_rank_failed(worker_t *w, const job_t *j)
{
    const job_rank_t *r = &j->ranks[j->fail_lrank];
    Wslq__RankFailed m = WSLQ__RANK_FAILED__INIT;
    m.job_id = j->id;
    m.attempt = j->attempt;
    m.rank = (int32_t) r->grank;
    m.exit_code = WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1;
    m.signal = WIFSIGNALED(r->status) ? WTERMSIG(r->status) : 0;
    outbox_send(w, &ENVELOPE(RANK_FAILED, rank_failed, &m));
}

void
outbox_job_ended(worker_t *w, job_t *j)
{
    Wslq__JobEnded m = WSLQ__JOB_ENDED__INIT;
    m.job_id = j->id;
    m.attempt = j->attempt;
    m.exit_code = j->exit_code;
    m.signal = j->signal;
    m.timed_out = j->timed_out;
    m.killed = j->killed;
    m.failed_rank = j->failed_rank;
    m.reason = j->reason;
    m.log_bytes = j->log_bytes;
    m.output_lost = j->output_lost;
    m.out_of_memory = j->oom;
    m.cpus = j->cpulist;
    m.gpu_reset = j->gpu_reset;
    m.gpu_reset_why = j->gpu_reset_why;
    outbox_send(w, &ENVELOPE(ENDED, ended, &m));
}

int
outbox_log_chunk(worker_t *w, const job_t *j, uint64_t offset, uint8_t *data, size_t len)
{
    Wslq__LogChunk c = WSLQ__LOG_CHUNK__INIT;
    c.job_id = j->id;
    c.attempt = j->attempt;
    c.offset = offset;
    c.data.data = data;
    c.data.len = len;
    return outbox_send(w, &ENVELOPE(LOG, log, &c));
}

void
outbox_metric_lines(worker_t *w, const job_t *j, int ri, char **lines, size_t n)
{
    Wslq__MetricLines m = WSLQ__METRIC_LINES__INIT;
    m.job_id = j->id;
    m.attempt = j->attempt;
    m.rank = j->ranks[ri].grank;
    m.n_lines = n;
    m.lines = lines;
    outbox_send(w, &ENVELOPE(METRICS, metrics, &m));
}

void
outbox_probe_result(
    worker_t *w, char *target, char *token, int ok, char *error, uint32_t elapsed_ms)
{
    Wslq__ProbeResult m = WSLQ__PROBE_RESULT__INIT;
    m.target_node = target;
    m.token = token;
    m.ok = ok;
    m.error = error;
    m.elapsed_ms = elapsed_ms;
    outbox_send(w, &ENVELOPE(PROBE_RESULT, probe_result, &m));
}
