/* /metrics: the Prometheus text exposition format (version 0.0.4) of one snapshot. Pure:
 * nothing here reads the queue, so a scrape costs the same with 10 or 10 million jobs in
 * history. Names carry the wslq_ prefix; counters end in _total; units in the name. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "proto/wire.h"
#include "scheduler/http/http_int.h"

/* The last slot counts every other status. */
const int http_code_values[HTTP_N_CODES] = {200, 304, 400, 401, 404, 405, 413,
                                            414, 429, 431, 500, 503, 0};

int
http_code_slot(int status)
{
    for (int i = 0; i < HTTP_N_CODES - 1; i++)
        if (http_code_values[i] == status)
            return i;
    return HTTP_N_CODES - 1;
}

typedef struct {
    char *buf;
    size_t len, cap;
} sb_t;

static void __attribute__((format(printf, 2, 3))) sb_printf(sb_t *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t) n < b->cap - b->len) {
            b->len += (size_t) n;
            return;
        }
        b->cap = b->cap * 2 + (n > 0 ? (size_t) n : 0);
        b->buf = wq_realloc(b->buf, b->cap);
    }
}

void
http_prom_escape(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = in; *p && o + 3 < cap; p++) {
        if (*p == '\\' || *p == '"') {
            out[o++] = '\\';
            out[o++] = *p;
        } else if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

static void
help(sb_t *b, const char *name, const char *type, const char *text)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static void
lower_state(Wslq__JobState s, char *out, size_t cap)
{
    const char *n = wire_state_name(s);
    size_t i = 0;
    for (; n[i] && i + 1 < cap; i++)
        out[i] = (char) (n[i] >= 'A' && n[i] <= 'Z' ? n[i] - 'A' + 'a' : n[i]);
    out[i] = '\0';
}

/* A histogram from per-bucket (not cumulative) counts: Prometheus wants each bucket to count
 * every observation at or below its bound, and +Inf to equal _count. */
static void
histogram(sb_t *b,
          const char *name,
          const double *bounds,
          const uint64_t *buckets,
          size_t n,
          uint64_t count,
          double sum)
{
    uint64_t cum = 0;
    for (size_t i = 0; i < n; i++) {
        cum += buckets[i];
        sb_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long) cum);
    }
    sb_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long) count);
    sb_printf(b, "%s_sum %.6f\n%s_count %llu\n", name, sum, name, (unsigned long long) count);
}

typedef enum { G_MEM_USED, G_MEM_TOTAL, G_UTIL, G_TEMP, G_POWER, G_ALLOC } gpu_metric_t;

static void
gpu_family(sb_t *b, const http_snap_t *s, const char *name, const char *text, gpu_metric_t m)
{
    help(b, name, "gauge", text);
    for (size_t i = 0; i < s->n_gpus; i++) {
        const http_gpu_t *g = &s->gpus[i];
        double v;
        switch (m) {
        case G_MEM_USED:
            if (g->mem_total_mb == 0)
                continue;
            v = (double) g->mem_used_mb * 1048576.0;
            break;
        case G_MEM_TOTAL:
            if (g->mem_total_mb == 0)
                continue;
            v = (double) g->mem_total_mb * 1048576.0;
            break;
        case G_UTIL:
            if (g->util_pct < 0)
                continue;
            v = g->util_pct / 100.0;
            break;
        case G_TEMP:
            if (g->temp_c < 0)
                continue;
            v = g->temp_c;
            break;
        case G_POWER:
            if (g->power_w < 0)
                continue;
            v = g->power_w;
            break;
        default:
            v = g->job_id != 0;
            break;
        }
        char node[512], uuid[512];
        http_prom_escape(g->node, node, sizeof node);
        http_prom_escape(g->uuid, uuid, sizeof uuid);
        sb_printf(b, "%s{node=\"%s\",gpu=\"%u\",uuid=\"%s\"} %.17g\n", name, node, g->index, uuid,
                  v);
    }
}

char *
http_prom_render(const http_snap_t *s, const uint64_t http_codes[HTTP_N_CODES], size_t *len)
{
    sb_t b = {wq_malloc(8192), 0, 8192};
    const sched_stats_t *st = &s->stats;
    char state[32];

    help(&b, "wslq_jobs", "gauge",
         "Jobs waiting or running, by state (ended jobs: wslq_jobs_ended_total).");
    for (int i = WSLQ__JOB_STATE__PENDING; i <= WSLQ__JOB_STATE__RUNNING; i++) {
        lower_state((Wslq__JobState) i, state, sizeof state);
        sb_printf(&b, "wslq_jobs{state=\"%s\"} %llu\n", state, (unsigned long long) s->active[i]);
    }
    help(&b, "wslq_job_wait_seconds", "histogram",
         "Time from submission (or requeue) to start, for jobs started since the scheduler "
         "started.");
    histogram(&b, "wslq_job_wait_seconds", sched_wait_bounds, st->wait_bucket, SCHED_WAIT_BUCKETS,
              st->wait_count, st->wait_sum_s);
    help(&b, "wslq_jobs_submitted_total", "counter", "Submissions accepted.");
    sb_printf(&b, "wslq_jobs_submitted_total %llu\n", (unsigned long long) st->submitted_total);
    help(&b, "wslq_jobs_refused_total", "counter",
         "Submissions refused (no node could ever run them, bad dependencies).");
    sb_printf(&b, "wslq_jobs_refused_total %llu\n", (unsigned long long) st->refused_total);
    help(&b, "wslq_jobs_ended_total", "counter", "Jobs that reached a final state, by state.");
    for (int i = WSLQ__JOB_STATE__COMPLETED; i < WIRE_JOB_STATES; i++) {
        if (!wire_state_known(i))
            continue;
        lower_state((Wslq__JobState) i, state, sizeof state);
        sb_printf(&b, "wslq_jobs_ended_total{state=\"%s\"} %llu\n", state,
                  (unsigned long long) st->ended_total[i]);
    }
    help(&b, "wslq_jobs_requeued_total", "counter",
         "Retryable ends (node lost, failure with retries left) sent back to the queue.");
    sb_printf(&b, "wslq_jobs_requeued_total %llu\n", (unsigned long long) st->requeued_total);
    help(&b, "wslq_notify_sent_total", "counter", "--notify webhook posts answered 2xx.");
    sb_printf(&b, "wslq_notify_sent_total %llu\n", (unsigned long long) st->notify_sent_total);
    help(&b, "wslq_notify_failed_total", "counter",
         "--notify notifications given up after every retry.");
    sb_printf(&b, "wslq_notify_failed_total %llu\n", (unsigned long long) st->notify_failed_total);
    help(&b, "wslq_notify_dropped_total", "counter",
         "--notify notifications dropped because too many were waiting.");
    sb_printf(&b, "wslq_notify_dropped_total %llu\n",
              (unsigned long long) st->notify_dropped_total);
    help(&b, "wslq_notify_pending", "gauge", "--notify notifications waiting for a post.");
    sb_printf(&b, "wslq_notify_pending %llu\n", (unsigned long long) st->notify_pending);
    help(&b, "wslq_jobs_preempted_total", "counter",
         "Preemptible jobs stopped and requeued for a higher-priority job.");
    sb_printf(&b, "wslq_jobs_preempted_total %llu\n", (unsigned long long) st->preempted_total);
    help(&b, "wslq_jobs_evicted_total", "counter",
         "Preemptible jobs requeued because a PC's owner came (owner = evict, or suspended "
         "too long).");
    sb_printf(&b, "wslq_jobs_evicted_total %llu\n", (unsigned long long) st->evicted_total);
    help(&b, "wslq_jobs_suspensions_total", "counter",
         "Times a preemptible job was stopped (SIGSTOP) while a PC's owner was present.");
    sb_printf(&b, "wslq_jobs_suspensions_total %llu\n", (unsigned long long) st->suspended_total);
    help(&b, "wslq_jobs_suspended", "gauge", "Running jobs stopped now for a PC's owner.");
    sb_printf(&b, "wslq_jobs_suspended %llu\n", (unsigned long long) s->suspended_now);

    help(&b, "wslq_nodes", "gauge", "Known nodes, by state.");
    for (int i = 0; i < HTTP_NODE_STATES; i++)
        sb_printf(&b, "wslq_nodes{state=\"%s\"} %u\n", http_node_state_names[i],
                  s->nodes_by_state[i]);
    help(&b, "wslq_node_drained", "gauge",
         "1 for each node an admin drained (wslq drain), with the reason given.");
    for (size_t i = 0; i < s->n_drained; i++) {
        char node[512], reason[1024];
        http_prom_escape(s->drained[2 * i], node, sizeof node);
        http_prom_escape(s->drained[2 * i + 1], reason, sizeof reason);
        sb_printf(&b, "wslq_node_drained{node=\"%s\",reason=\"%s\"} 1\n", node, reason);
    }
    help(&b, "wslq_node_owner", "gauge",
         "1 for each node, with its owner policy (ignore, yield, suspend, evict) and the PC "
         "owner's state (unknown, away, present, gaming).");
    for (size_t i = 0; i < s->n_owners; i++) {
        char node[512], policy[64], ostate[64];
        http_prom_escape(s->owners[3 * i], node, sizeof node);
        http_prom_escape(s->owners[3 * i + 1], policy, sizeof policy);
        http_prom_escape(s->owners[3 * i + 2], ostate, sizeof ostate);
        sb_printf(&b, "wslq_node_owner{node=\"%s\",policy=\"%s\",state=\"%s\"} 1\n", node, policy,
                  ostate);
    }
    help(&b, "wslq_gpu_resets_total", "counter",
         "Jobs that failed because Windows reset the GPU (TDR), by node, since the scheduler "
         "started.");
    for (size_t i = 0; i < s->n_owners; i++) {
        char node[512];
        http_prom_escape(s->owners[3 * i], node, sizeof node);
        sb_printf(&b, "wslq_gpu_resets_total{node=\"%s\"} %llu\n", node,
                  (unsigned long long) s->gpu_resets[i]);
    }
    help(&b, "wslq_gpus", "gauge", "GPUs on known nodes, and how many a job holds.");
    sb_printf(&b, "wslq_gpus{state=\"total\"} %u\nwslq_gpus{state=\"allocated\"} %u\n",
              s->gpus_total, s->gpus_used);
    gpu_family(&b, s, "wslq_gpu_memory_used_bytes", "GPU memory in use, as the node reports it.",
               G_MEM_USED);
    gpu_family(&b, s, "wslq_gpu_memory_total_bytes", "GPU memory size, as the node reports it.",
               G_MEM_TOTAL);
    gpu_family(&b, s, "wslq_gpu_utilization_ratio",
               "GPU busy fraction over the driver's last sample period (0..1), where reported.",
               G_UTIL);
    gpu_family(&b, s, "wslq_gpu_temperature_celsius", "GPU temperature, where reported.", G_TEMP);
    gpu_family(&b, s, "wslq_gpu_power_watts", "GPU power draw, where reported.", G_POWER);
    gpu_family(&b, s, "wslq_gpu_allocated", "1 when a job holds the GPU.", G_ALLOC);

    help(&b, "wslq_scheduler_loop_seconds", "histogram",
         "Duration of scheduler loop turns that did work (receive, place, commit, reply).");
    histogram(&b, "wslq_scheduler_loop_seconds", sched_loop_bounds, st->loop_bucket,
              SCHED_LOOP_BUCKETS, st->loop_count, st->loop_sum_s);
    help(&b, "wslq_wire_protocol_errors_total", "counter",
         "Frames the scheduler could not decode or refused as invalid.");
    sb_printf(&b, "wslq_wire_protocol_errors_total %llu\n",
              (unsigned long long) st->bad_frames_total);
    help(&b, "wslq_connections", "gauge", "Connections to the scheduler's port now.");
    sb_printf(&b, "wslq_connections %llu\n", (unsigned long long) st->conns_open);
    help(&b, "wslq_connections_refused_total", "counter",
         "Connections shut at once: over the total or the per-address limit.");
    sb_printf(&b, "wslq_connections_refused_total %llu\n",
              (unsigned long long) st->conns_refused_total);
    help(&b, "wslq_parked_requests", "gauge",
         "Requests parked until something happens (logs -f, kv wait, watch).");
    sb_printf(&b, "wslq_parked_requests %llu\n", (unsigned long long) st->waiters);
    help(&b, "wslq_parked_requests_refused_total", "counter",
         "Requests refused over the total or the per-client limit of parked requests.");
    sb_printf(&b, "wslq_parked_requests_refused_total %llu\n",
              (unsigned long long) st->waiters_refused_total);
    help(&b, "wslq_http_slow_heads_total", "counter",
         "Dashboard connections shut because their request head was not complete in time.");
    sb_printf(&b, "wslq_http_slow_heads_total %llu\n", (unsigned long long) s->http_slow_cut_total);
    help(&b, "wslq_auth_denied_total", "counter",
         "CURVE handshakes the scheduler refused: a revoked key, or a peer without CURVE.");
    sb_printf(&b, "wslq_auth_denied_total %llu\n", (unsigned long long) st->auth_denied_total);
    help(&b, "wslq_enrol_refused_total", "counter",
         "Enrolments and joins refused: a wrong, used or expired code.");
    sb_printf(&b, "wslq_enrol_refused_total %llu\n", (unsigned long long) st->enrol_refused_total);
    help(&b, "wslq_forbidden_total", "counter",
         "Requests refused for who sent them: another user's job, a node's request from a user.");
    sb_printf(&b, "wslq_forbidden_total %llu\n", (unsigned long long) st->forbidden_total);
    help(&b, "wslq_http_unauthorized_total", "counter",
         "Dashboard requests without a valid token (answered 401).");
    sb_printf(&b, "wslq_http_unauthorized_total %llu\n",
              (unsigned long long) s->http_auth_refused_total);
    help(&b, "wslq_state_version", "gauge", "Change counter of jobs and nodes (for debugging).");
    sb_printf(&b, "wslq_state_version %llu\n", (unsigned long long) s->version);

    help(&b, "wslq_http_requests_total", "counter", "Dashboard requests answered, by status.");
    for (int i = 0; i < HTTP_N_CODES; i++) {
        if (i == HTTP_N_CODES - 1)
            sb_printf(&b, "wslq_http_requests_total{code=\"other\"} %llu\n",
                      (unsigned long long) http_codes[i]);
        else
            sb_printf(&b, "wslq_http_requests_total{code=\"%d\"} %llu\n", http_code_values[i],
                      (unsigned long long) http_codes[i]);
    }
    help(&b, "wslq_scheduler_start_time_seconds", "gauge",
         "When the scheduler's dashboard started, seconds since the epoch.");
    sb_printf(&b, "wslq_scheduler_start_time_seconds %.3f\n", (double) s->started_ms / 1000.0);
    *len = b.len;
    return b.buf;
}
