/* The scheduler's loop; see sched.h.
 *
 * Invariants:
 * - every job in self->jobs is PENDING, STARTING or RUNNING, and its row in the queue
 *   holds the same JobInfo once the turn commits;
 * - GPU, CPU and memory use are derived from the active jobs' allocations (parts not yet
 *   ended), never stored, so they cannot drift;
 * - nothing leaves the process (reply, launch, kill) before the turn's COMMIT. */
#include "scheduler/sched.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/mem.h"
#include "scheduler/policy.h"
#include "proto/wire.h"
#include "scheduler/queue.h"

#define MAX_MSGS_PER_TURN 4096 /* bounds one turn's work: about 20 ms of submits */
#define TICK_MS           100  /* timer resolution for expiry, limits and waits */
#define LOG_READ_DEFAULT  (64u << 10)
#define DEFAULT_LIST      1000
#define GANG_GRACE_MS     3000 /* SIGTERM to SIGKILL when another part of a gang failed */

#define PROBE_TIMEOUT_MS 3000 /* ProbeRequest.timeout_ms: the peer's connect-and-answer bound */
#define PROBE_SLACK_MS   2000 /* the peer's ProbeResult may take this much longer */
#define PROBE_TRIES      3    /* peers asked before a silent test counts as failed */

enum node_state { NODE_ALIVE, NODE_TORPID, NODE_LOST };

/* Inbound self-test of a node (proto/README.md, "Inbound self-test"). */
enum probe_state {
    PROBE_UNKNOWN,    /* not registered in this run */
    PROBE_NONE,       /* the node does not claim inbound connections: not tested */
    PROBE_PENDING,    /* a peer was asked */
    PROBE_PASSED,     /* a peer connected and got the right answer */
    PROBE_FAILED,     /* a peer could not connect, or the node has no listener */
    PROBE_UNVERIFIED, /* no other alive node to test it yet */
};
static const char *const node_state_names[] = {"idle", "torpid", "lost"};

typedef struct node {
    Wslq__NodeInfo *info; /* owned; name, hostname, ip, cpus, mem, gpus, attrs */
    char identity[256];   /* ROUTER identity of its worker */
    size_t identity_len;  /* 0 = never connected in this run */
    enum node_state state;
    int64_t last_seen_mono; /* ms */
    enum probe_state probe;
    unsigned probe_port;
    char probe_token[40];
    char probe_peer[WIRE_MAX_NAME + 1]; /* node asked to connect */
    int64_t probe_deadline;             /* mono ms: the peer's answer is late after this */
    int probe_tries;                    /* peers asked for this registration */
    int64_t clock_offset_ms;            /* last reported, for change detection */
    uint32_t clock_rtt_ms;
    int clock_known;
} node_t;

typedef struct kv_entry {
    char *key;      /* owned */
    uint8_t *value; /* owned */
    size_t len;     /* bytes of value */
} kv_entry_t;

typedef struct part {
    unsigned started : 1;  /* JobStarted received */
    unsigned ended : 1;    /* JobEnded received, or node lost: resources free */
    unsigned lost : 1;     /* ended because the node was lost */
    int64_t missing_since; /* mono ms when a re-registered node did not list it; 0 = no */
    int64_t log_bytes;     /* bytes received from this node */
} part_t;

typedef struct job {
    Wslq__JobInfo *info;     /* owned; mirrored in the queue */
    part_t *parts;           /* one per alloc (node_rank order); owned */
    int64_t phase_mono;      /* when STARTING/RUNNING began, ms */
    int64_t not_before_mono; /* requeue backoff: do not place before, ms */
    int cancel_requested;
    int timeout_hit;
    int node_failed;
    int start_failed;
    int failure_seen; /* a rank failed: first failure recorded in info */
    int killing;      /* JobKill sent to the remaining parts */
    kv_entry_t *kv;   /* owned array */
    size_t n_kv;
    uint64_t kv_bytes;
} job_t;

enum waiter_kind { WAIT_LOGS, WAIT_KV, WAIT_WATCH };

typedef struct waiter {
    enum waiter_kind kind;
    char identity[256];
    size_t identity_len;
    uint64_t request_id;
    uint64_t job_id;
    uint64_t offset;    /* logs: read from here */
    uint32_t max_bytes; /* logs */
    char *key;          /* kv WAIT: owned; NULL for logs */
    int64_t deadline_mono;
} waiter_t;

typedef struct out {
    char identity[256];
    size_t identity_len;
    uint8_t *buf; /* owned, packed envelope */
    size_t len;
} out_t;

struct sched {
    sched_config_t cfg;
    char *state_dir;
    char *log_dir;
    char endpoint[256];
    void *zctx;
    void *router;
    queue_t *q;
    volatile sig_atomic_t stop;

    node_t **nodes;
    size_t n_nodes;
    job_t **jobs; /* active jobs, ascending id */
    size_t n_jobs;
    waiter_t *waiters;
    size_t n_waiters;
    out_t *outs;
    size_t n_outs, cap_outs;

    int dirty; /* run a placement pass this turn */
    unsigned next_port;
    int64_t start_mono;
    wq_ratelimit_t bad_rl;
    sched_stats_t stats;
    uint64_t seen_version; /* version when parked watches were last checked */
    sched_hook_f hook;
    void *hook_arg;
};

const double sched_wait_bounds[SCHED_WAIT_BUCKETS] = {0.01, 0.1, 1,    5,    30,
                                                      60,   300, 1800, 3600, 86400};
const double sched_loop_bounds[SCHED_LOOP_BUCKETS] = {0.0001, 0.0005, 0.001, 0.005,
                                                      0.01,   0.05,   0.1,   1};

static void
observe(uint64_t *buckets, const double *bounds, size_t n, double v)
{
    for (size_t i = 0; i < n; i++)
        if (v <= bounds[i]) {
            buckets[i]++;
            return;
        }
}

/* ---------- small helpers ---------- */

static void
set_str(char **field, const char *v)
{
    if (*field != NULL && *field != protobuf_c_empty_string)
        free(*field);
    *field = wq_strdup(v ? v : "");
}

static job_t *
job_find(sched_t *self, uint64_t id)
{
    size_t lo = 0, hi = self->n_jobs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uint64_t mid_id = self->jobs[mid]->info->id;
        if (mid_id == id)
            return self->jobs[mid];
        if (mid_id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void
job_insert(sched_t *self, job_t *job)
{
    self->jobs = wq_realloc(self->jobs, (self->n_jobs + 1) * sizeof *self->jobs);
    size_t i = self->n_jobs;
    while (i > 0 && self->jobs[i - 1]->info->id > job->info->id) {
        self->jobs[i] = self->jobs[i - 1];
        i--;
    }
    self->jobs[i] = job;
    self->n_jobs++;
}

static void
kv_clear(job_t *job)
{
    for (size_t i = 0; i < job->n_kv; i++) {
        free(job->kv[i].key);
        free(job->kv[i].value);
    }
    free(job->kv);
    job->kv = NULL;
    job->n_kv = 0;
    job->kv_bytes = 0;
}

static void
job_free(job_t *job)
{
    if (job == NULL)
        return;
    kv_clear(job);
    free(job->parts);
    wslq__job_info__free_unpacked(job->info, NULL);
    free(job);
}

static void
job_remove(sched_t *self, job_t *job)
{
    for (size_t i = 0; i < self->n_jobs; i++)
        if (self->jobs[i] == job) {
            memmove(&self->jobs[i], &self->jobs[i + 1],
                    (self->n_jobs - i - 1) * sizeof *self->jobs);
            self->n_jobs--;
            break;
        }
    job_free(job);
}

static node_t *
node_by_name(sched_t *self, const char *name)
{
    for (size_t i = 0; i < self->n_nodes; i++)
        if (strcmp(self->nodes[i]->info->name, name) == 0)
            return self->nodes[i];
    return NULL;
}

static node_t *
node_by_identity(sched_t *self, const void *id, size_t len)
{
    for (size_t i = 0; i < self->n_nodes; i++) {
        node_t *n = self->nodes[i];
        if (n->identity_len == len && memcmp(n->identity, id, len) == 0)
            return n;
    }
    return NULL;
}

static node_t *
node_add(sched_t *self, Wslq__NodeInfo *info)
{
    node_t *n = wq_calloc(1, sizeof *n);
    n->info = info;
    n->state = NODE_TORPID;
    n->last_seen_mono = wq_clock_mono_ms();
    self->nodes = wq_realloc(self->nodes, (self->n_nodes + 1) * sizeof *self->nodes);
    self->nodes[self->n_nodes++] = n;
    return n;
}

/* Queue an envelope for sending after the turn commits. */
static void
out_push(sched_t *self, const void *identity, size_t idlen, Wslq__Envelope *env)
{
    if (self->n_outs == self->cap_outs) {
        self->cap_outs = self->cap_outs ? self->cap_outs * 2 : 64;
        self->outs = wq_realloc(self->outs, self->cap_outs * sizeof *self->outs);
    }
    out_t *o = &self->outs[self->n_outs++];
    memcpy(o->identity, identity, idlen);
    o->identity_len = idlen;
    o->buf = wire_encode(env, &o->len);
}

static void
out_error(
    sched_t *self, const void *identity, size_t idlen, uint64_t request_id, const wq_error_t *err)
{
    Wslq__ErrorReply er = WSLQ__ERROR_REPLY__INIT;
    er.code = (uint32_t) err->code;
    er.text = (char *) err->text;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = request_id;
    env.body_case = WSLQ__ENVELOPE__BODY_ERROR;
    env.error = &er;
    out_push(self, identity, idlen, &env);
}

static void
out_to_node(sched_t *self, const char *node_name, Wslq__Envelope *env)
{
    node_t *n = node_by_name(self, node_name);
    if (n == NULL || n->identity_len == 0)
        return;
    out_push(self, n->identity, n->identity_len, env);
}

static void
flush_outs(sched_t *self)
{
    for (size_t i = 0; i < self->n_outs; i++) {
        out_t *o = &self->outs[i];
        if (zmq_send(self->router, o->identity, o->identity_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
            zmq_send(self->router, o->buf, o->len, ZMQ_DONTWAIT) < 0)
            log_flag(SCHED, "send dropped: %s", zmq_strerror(errno));
        free(o->buf);
    }
    self->n_outs = 0;
}

/* ---------- node attributes set by the scheduler ---------- */

/* Set (add or replace) one attribute of a node. */
static void
node_set_attr(Wslq__NodeInfo *ni, const char *key, const char *value)
{
    for (size_t i = 0; i < ni->n_attrs; i++)
        if (strcmp(ni->attrs[i]->key, key) == 0) {
            set_str(&ni->attrs[i]->value, value);
            return;
        }
    ni->attrs = wq_realloc(ni->attrs, (ni->n_attrs + 1) * sizeof *ni->attrs);
    Wslq__NodeAttr *a = wq_malloc(sizeof *a);
    wslq__node_attr__init(a);
    a->key = wq_strdup(key);
    a->value = wq_strdup(value);
    ni->attrs[ni->n_attrs++] = a;
}

/* ---------- inbound self-test ---------- */

static const char *const probe_fix =
    "fix: let the lab subnet connect in: networkingMode=mirrored in .wslconfig and the "
    "Hyper-V/Windows firewall rules of deploy/windows (the job port range covers the "
    "worker's ephemeral probe port; or pin probe_port and open it)";

/* Record a test outcome in the node's attributes: inbound_probe (wslq nodes) and
 * doctor.net.inbound (wslq doctor --node). */
static void
probe_set(
    sched_t *self, node_t *nd, enum probe_state st, const char *short_text, const char *doctor_text)
{
    nd->probe = st;
    node_set_attr(nd->info, "inbound_probe", short_text);
    node_set_attr(nd->info, "doctor.net.inbound", doctor_text);
    self->stats.version++;
    self->dirty = 1;
}

/* Ask a peer to test-connect 'nd'. Prefers an alive node with another IP and, after a
 * silent peer, a different one. Without any peer the node stays unverified. */
static void
probe_start(sched_t *self, node_t *nd)
{
    node_t *best = NULL;
    int best_score = -1;
    for (size_t i = 0; i < self->n_nodes; i++) {
        node_t *p = self->nodes[i];
        if (p == nd || p->state != NODE_ALIVE || p->identity_len == 0)
            continue;
        int score = (strcmp(p->info->ip, nd->info->ip) != 0 ? 2 : 0) +
                    (strcmp(p->info->name, nd->probe_peer) != 0 ? 4 : 0) +
                    (p->probe == PROBE_PASSED ? 1 : 0);
        if (score > best_score) {
            best = p;
            best_score = score;
        }
    }
    if (best == NULL) {
        nd->probe_peer[0] = '\0';
        probe_set(self, nd, PROBE_UNVERIFIED, "unverified: no peer",
                  "INFO inbound connections not tested yet: no other node is up to test them "
                  "(multi-node jobs wait for the test)");
        log_info("inbound self-test waits for a peer node=%s", nd->info->name);
        return;
    }
    static uint64_t counter;
    uint64_t x = (uint64_t) wq_clock_wall_ms() * 6364136223846793005ULL + ++counter +
                 (uint64_t) (uintptr_t) nd;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 32;
    snprintf(nd->probe_token, sizeof nd->probe_token, "%016" PRIx64 "%04" PRIx64, x,
             counter & 0xffff);
    snprintf(nd->probe_peer, sizeof nd->probe_peer, "%s", best->info->name);
    nd->probe_tries++;
    nd->probe_deadline = wq_clock_mono_ms() + PROBE_TIMEOUT_MS + PROBE_SLACK_MS;
    char txt[WIRE_MAX_NAME + 48];
    snprintf(txt, sizeof txt, "pending (by %s)", best->info->name);
    probe_set(self, nd, PROBE_PENDING, txt,
              "INFO inbound connection test running (a peer node connects to this node)");
    Wslq__ProbeRequest pr = WSLQ__PROBE_REQUEST__INIT;
    pr.target_node = nd->info->name;
    pr.ip = nd->info->ip;
    pr.port = nd->probe_port;
    pr.token = nd->probe_token;
    pr.timeout_ms = PROBE_TIMEOUT_MS;
    pr.scheduler_time_ms = wq_clock_wall_ms();
    Wslq__Envelope out = WSLQ__ENVELOPE__INIT;
    out.body_case = WSLQ__ENVELOPE__BODY_PROBE;
    out.probe = &pr;
    out_push(self, best->identity, best->identity_len, &out);
    log_info("inbound self-test node=%s addr=%s:%u peer=%s try=%d", nd->info->name, nd->info->ip,
             nd->probe_port, best->info->name, nd->probe_tries);
}

/* A node (re-)registered: test it, and let it test the nodes that were waiting for a peer. */
static void
probe_on_register(sched_t *self, node_t *nd, int claims_inbound, unsigned port)
{
    nd->probe_port = port;
    nd->probe_tries = 0;
    nd->probe_peer[0] = '\0';
    nd->clock_known = 0;
    if (!claims_inbound) {
        probe_set(self, nd, PROBE_NONE, "not tested: node reports no inbound connections",
                  "INFO inbound connections not tested: the worker reports none (inbound_ok = "
                  "no, or WSL in NAT mode); single-node jobs only | fix: networkingMode=mirrored "
                  "in .wslconfig (Windows 11 22H2+) and deploy/windows, then restart the worker");
    } else if (port == 0) {
        probe_set(self, nd, PROBE_FAILED, "failed: worker could not listen on its probe port",
                  "FAIL inbound test impossible: the worker could not listen on its probe port "
                  "| fix: free the port set as probe_port, or set probe_port = 0 (any port)");
    } else {
        probe_start(self, nd);
    }
    for (size_t i = 0; i < self->n_nodes; i++) {
        node_t *o = self->nodes[i];
        if (o != nd && o->state == NODE_ALIVE && o->probe == PROBE_UNVERIFIED)
            probe_start(self, o);
    }
}

static void
handle_probe_result(sched_t *self, node_t *peer, Wslq__Envelope *env)
{
    const Wslq__ProbeResult *r = env->probe_result;
    node_t *nd = node_by_name(self, r->target_node);
    if (nd == NULL || nd->probe != PROBE_PENDING || strcmp(r->token, nd->probe_token) != 0 ||
        strcmp(nd->probe_peer, peer->info->name) != 0) {
        log_flag(SCHED, "stale probe result target=%s peer=%s", r->target_node, peer->info->name);
        return;
    }
    char txt[320], doc[640];
    if (r->ok) {
        snprintf(txt, sizeof txt, "passed (by %s, %" PRIu32 " ms)", peer->info->name,
                 r->elapsed_ms);
        snprintf(doc, sizeof doc, "PASS peers can connect in: %s reached %s:%u in %" PRIu32 " ms",
                 peer->info->name, nd->info->ip, nd->probe_port, r->elapsed_ms);
        probe_set(self, nd, PROBE_PASSED, txt, doc);
    } else {
        snprintf(txt, sizeof txt, "failed: %s (by %s)", r->error[0] ? r->error : "unknown error",
                 peer->info->name);
        snprintf(doc, sizeof doc, "FAIL %s could not connect to %s:%u: %s | %s", peer->info->name,
                 nd->info->ip, nd->probe_port, r->error[0] ? r->error : "unknown error", probe_fix);
        probe_set(self, nd, PROBE_FAILED, txt, doc);
    }
    log_info("inbound self-test done node=%s peer=%s ok=%d elapsed_ms=%" PRIu32 " err=\"%s\"",
             nd->info->name, peer->info->name, r->ok, r->elapsed_ms, r->error);
}

/* A pending test whose peer stayed silent: another peer, or failed after PROBE_TRIES. */
static void
probe_tick(sched_t *self, int64_t now)
{
    for (size_t i = 0; i < self->n_nodes; i++) {
        node_t *nd = self->nodes[i];
        if (nd->probe != PROBE_PENDING || now < nd->probe_deadline)
            continue;
        if (nd->state != NODE_ALIVE) {
            nd->probe = PROBE_UNKNOWN; /* tested again when it registers */
            continue;
        }
        log_warn("inbound self-test: no answer from peer node=%s peer=%s try=%d", nd->info->name,
                 nd->probe_peer, nd->probe_tries);
        if (nd->probe_tries >= PROBE_TRIES) {
            char txt[320];
            snprintf(txt, sizeof txt, "failed: no peer answered (%d tries)", nd->probe_tries);
            probe_set(self, nd, PROBE_FAILED, txt,
                      "FAIL inbound test got no answer from the peers asked to run it | fix: "
                      "check that the other workers are up and can reach this node; restart "
                      "this worker to test again");
        } else {
            probe_start(self, nd);
        }
    }
}

/* ---------- clock offset ---------- */

static void
clock_report(sched_t *self, node_t *nd, const Wslq__Heartbeat *hb)
{
    if (!hb->clock_measured)
        return;
    if (nd->clock_known && nd->clock_offset_ms == hb->clock_offset_ms &&
        nd->clock_rtt_ms == hb->clock_rtt_ms)
        return;
    nd->clock_known = 1;
    nd->clock_offset_ms = hb->clock_offset_ms;
    nd->clock_rtt_ms = hb->clock_rtt_ms;
    int64_t off = hb->clock_offset_ms, mag = off < 0 ? -off : off;
    char v[400];
    if (mag < 500)
        snprintf(v, sizeof v, "PASS offset %c%" PRId64 " ms (rtt %" PRIu32 " ms)",
                 off < 0 ? '-' : '+', mag, hb->clock_rtt_ms);
    else
        snprintf(v, sizeof v,
                 "WARN offset %c%" PRId64 ".%" PRId64 " s (rtt %" PRIu32 " ms) | fix: enable "
                 "time sync (systemd-timesyncd or chrony) in WSL; WSL's clock drifts after the "
                 "PC sleeps",
                 off < 0 ? '-' : '+', mag / 1000, (mag % 1000) / 100, hb->clock_rtt_ms);
    node_set_attr(nd->info, "doctor.time.offset", v);
    self->stats.version++;
}

/* A failed database write leaves memory ahead of the disk: stop rather than answer with
 * something that is not durable. A restart reloads the last committed state. */
static void
fatal_db(const wq_error_t *err)
{
    log_err("database write failed, stopping: %s", err->text);
    exit(1);
}

static void
db_begin(sched_t *self)
{
    wq_error_t err = {0};
    if (queue_begin(self->q, &err) < 0)
        fatal_db(&err);
}

static void
job_save(sched_t *self, job_t *job)
{
    wq_error_t err = {0};
    self->stats.version++;
    db_begin(self);
    if (queue_update(self->q, job->info, &err) < 0)
        fatal_db(&err);
}

static void
job_event(sched_t *self, job_t *job, const char *reason, const char *node, const char *detail)
{
    Wslq__JobEvent ev = WSLQ__JOB_EVENT__INIT;
    ev.ts_ms = wq_clock_wall_ms();
    ev.state = job->info->state;
    ev.reason = (char *) (reason ? reason : "");
    ev.node = (char *) (node ? node : "");
    ev.detail = (char *) (detail ? detail : "");
    ev.attempt = job->info->attempt;
    wq_error_t err = {0};
    db_begin(self);
    if (queue_add_event(self->q, job->info->id, &ev, &err) < 0)
        fatal_db(&err);
}

/* Change state, write the row and one event. */
static void
job_set_state(sched_t *self,
              job_t *job,
              Wslq__JobState st,
              const char *reason,
              const char *node,
              const char *detail)
{
    job->info->state = st;
    job->phase_mono = wq_clock_mono_ms();
    if (st == WSLQ__JOB_STATE__STARTING && job->info->attempt == 0 && job->info->submit_ms > 0) {
        double wait = (double) (wq_clock_wall_ms() - job->info->submit_ms) / 1000.0;
        observe(self->stats.wait_bucket, sched_wait_bounds, SCHED_WAIT_BUCKETS, wait);
        self->stats.wait_count++;
        self->stats.wait_sum_s += wait;
    }
    if (wire_state_is_final(st))
        self->stats.ended_total[st]++;
    log_info(JOB_FMT " state=%s attempt=%u reason=\"%s\"", job->info->id, wire_state_name(st),
             job->info->attempt, reason ? reason : "");
    job_save(self, job);
    job_event(self, job, reason, node, detail);
}

static void
free_allocs(Wslq__JobInfo *info)
{
    for (size_t i = 0; i < info->n_allocs; i++)
        wslq__alloc__free_unpacked(info->allocs[i], NULL);
    free(info->allocs);
    info->allocs = NULL;
    info->n_allocs = 0;
}

static char *
log_path(sched_t *self, uint64_t id, int node_rank)
{
    if (node_rank < 0)
        return wq_asprintf("%s/%" PRIu64 ".log", self->log_dir, id);
    return wq_asprintf("%s/%" PRIu64 ".n%d.log", self->log_dir, id, node_rank);
}

static int64_t
file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t) st.st_size : 0;
}

/* ---------- waiters (parked logs -f and kv wait requests) ---------- */

static void
waiter_add(sched_t *self, const waiter_t *w)
{
    self->waiters = wq_realloc(self->waiters, (self->n_waiters + 1) * sizeof *self->waiters);
    self->waiters[self->n_waiters++] = *w;
}

static void
waiter_drop(sched_t *self, size_t i)
{
    free(self->waiters[i].key);
    self->waiters[i] = self->waiters[--self->n_waiters];
}

static void answer_logs(sched_t *self,
                        const void *identity,
                        size_t idlen,
                        uint64_t request_id,
                        uint64_t job_id,
                        uint64_t offset,
                        uint32_t max_bytes);

/* Answer parked log requests for 'job_id' that now have data or an end. */
static void
wake_log_waiters(sched_t *self, uint64_t job_id)
{
    for (size_t i = 0; i < self->n_waiters;) {
        waiter_t *w = &self->waiters[i];
        if (w->kind == WAIT_LOGS && w->job_id == job_id) {
            answer_logs(self, w->identity, w->identity_len, w->request_id, w->job_id, w->offset,
                        w->max_bytes);
            waiter_drop(self, i);
        } else {
            i++;
        }
    }
}

/* ---------- placement ---------- */

static int
part_holds(const job_t *job, size_t k)
{
    return (job->info->state == WSLQ__JOB_STATE__STARTING ||
            job->info->state == WSLQ__JOB_STATE__RUNNING) &&
           k < job->info->n_allocs && !job->parts[k].ended;
}

/* Build the policy view of every node, with use derived from active jobs. */
static size_t
snapshot(sched_t *self, policy_node_t *pn, size_t cap, int for_feasibility)
{
    size_t n = self->n_nodes < cap ? self->n_nodes : cap;
    for (size_t i = 0; i < n; i++) {
        const Wslq__NodeInfo *ni = self->nodes[i]->info;
        policy_node_t *p = &pn[i];
        memset(p, 0, sizeof *p);
        p->name = ni->name;
        p->eligible = for_feasibility || self->nodes[i]->state == NODE_ALIVE;
        p->inbound_ok = ni->inbound_ok;
        /* passed: may take multi-node jobs; failed: never; not tested yet: possible at
         * submit, not placed */
        enum probe_state ps = self->nodes[i]->probe;
        p->inbound_probe = ps == PROBE_PASSED   ? POLICY_PROBE_PASSED
                           : ps == PROBE_FAILED ? POLICY_PROBE_FAILED
                                                : POLICY_PROBE_PENDING;
        p->cpus = ni->cpus;
        p->mem_mb = ni->mem_mb;
        for (size_t g = 0; g < ni->n_gpus; g++)
            if (ni->gpus[g]->index < 64)
                p->gpu_present |= 1ULL << ni->gpus[g]->index;
    }
    if (for_feasibility)
        return n;
    for (size_t j = 0; j < self->n_jobs; j++) {
        const job_t *job = self->jobs[j];
        for (size_t k = 0; k < job->info->n_allocs; k++) {
            if (!part_holds(job, k))
                continue;
            const Wslq__Alloc *a = job->info->allocs[k];
            for (size_t i = 0; i < n; i++) {
                if (strcmp(pn[i].name, a->node) != 0)
                    continue;
                for (size_t g = 0; g < a->n_gpus; g++)
                    pn[i].gpu_used |= 1ULL << a->gpus[g];
                pn[i].cpus_used += job->info->spec->cpus_per_node;
                pn[i].mem_used_mb += job->info->spec->mem_mb_per_node;
            }
        }
    }
    return n;
}

static void
req_of(const Wslq__JobSpec *s, policy_req_t *r)
{
    r->nodes = s->nodes;
    r->gpus_per_node = s->gpus_per_node;
    r->cpus_per_node = s->cpus_per_node ? s->cpus_per_node : 1;
    r->mem_mb_per_node = s->mem_mb_per_node;
}

static unsigned
ranks_per_node(const Wslq__JobSpec *s)
{
    if (s->per_node)
        return 1;
    if (s->ranks_per_node)
        return s->ranks_per_node;
    return s->gpus_per_node ? s->gpus_per_node : 1;
}

static unsigned
pick_port(sched_t *self)
{
    unsigned span = self->cfg.port_hi - self->cfg.port_lo + 1;
    for (unsigned tries = 0; tries < span; tries++) {
        unsigned port = self->cfg.port_lo + (self->next_port++ % span);
        int used = 0;
        for (size_t j = 0; j < self->n_jobs && !used; j++)
            used = self->jobs[j]->info->master_port == port &&
                   self->jobs[j]->info->state != WSLQ__JOB_STATE__PENDING;
        if (!used)
            return port;
    }
    return 0;
}

static void
send_launch(sched_t *self, job_t *job, size_t k)
{
    Wslq__JobLaunch l = WSLQ__JOB_LAUNCH__INIT;
    l.job_id = job->info->id;
    l.attempt = job->info->attempt;
    l.spec = job->info->spec;
    l.alloc = job->info->allocs[k];
    l.nnodes = (uint32_t) job->info->n_allocs;
    l.world_size = 0;
    for (size_t i = 0; i < job->info->n_allocs; i++)
        l.world_size += job->info->allocs[i]->nranks;
    l.master_addr = job->info->master_addr;
    l.master_port = job->info->master_port;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_LAUNCH;
    env.launch = &l;
    out_to_node(self, job->info->allocs[k]->node, &env);
}

static void
send_kill(sched_t *self, job_t *job, const char *reason, int64_t grace_ms)
{
    Wslq__JobKill kill = WSLQ__JOB_KILL__INIT;
    kill.job_id = job->info->id;
    kill.attempt = job->info->attempt;
    kill.reason = (char *) reason;
    kill.grace_ms = (uint32_t) grace_ms;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_KILL;
    env.kill = &kill;
    for (size_t k = 0; k < job->info->n_allocs; k++)
        if (!job->parts[k].ended)
            out_to_node(self, job->info->allocs[k]->node, &env);
    job->killing = 1;
}

static void
start_job(sched_t *self, job_t *job, const policy_node_t *pn, const policy_choice_t *c)
{
    Wslq__JobInfo *info = job->info;
    const Wslq__JobSpec *s = info->spec;
    free_allocs(info);
    free(job->parts);
    unsigned rpn = ranks_per_node(s);
    info->n_allocs = c->n;
    info->allocs = wq_calloc(c->n, sizeof *info->allocs);
    job->parts = wq_calloc(c->n, sizeof *job->parts);
    char nodelist[512] = "";
    size_t off = 0;
    for (unsigned k = 0; k < c->n; k++) {
        node_t *nd = node_by_name(self, pn[c->node[k]].name);
        Wslq__Alloc *a = wq_malloc(sizeof *a);
        wslq__alloc__init(a);
        a->node = wq_strdup(nd->info->name);
        a->ip = wq_strdup(nd->info->ip);
        a->node_rank = k;
        a->first_rank = k * rpn;
        a->nranks = rpn;
        unsigned ng = policy_popcount(c->gpus[k]);
        a->gpus = wq_calloc(ng ? ng : 1, sizeof *a->gpus);
        a->gpu_uuids = wq_calloc(ng ? ng : 1, sizeof *a->gpu_uuids);
        for (unsigned b = 0; b < 64; b++) {
            if (!(c->gpus[k] & (1ULL << b)))
                continue;
            a->gpus[a->n_gpus] = b;
            const char *uuid = "";
            for (size_t g = 0; g < nd->info->n_gpus; g++)
                if (nd->info->gpus[g]->index == b)
                    uuid = nd->info->gpus[g]->uuid;
            a->gpu_uuids[a->n_gpu_uuids++] = wq_strdup(uuid);
            a->n_gpus++;
        }
        info->allocs[k] = a;
        if (off < sizeof nodelist)
            off += (size_t) snprintf(nodelist + off, sizeof nodelist - off, "%s%s", k ? "," : "",
                                     a->node);
    }
    set_str(&info->master_addr, info->allocs[0]->ip);
    info->master_port = pick_port(self);
    info->start_ms = wq_clock_wall_ms();
    info->end_ms = 0;
    info->exit_code = -1;
    info->signal = 0;
    info->failed_rank = -1;
    set_str(&info->failed_node, "");
    set_str(&info->reason, "");
    job->cancel_requested = job->timeout_hit = job->node_failed = job->start_failed = 0;
    job->failure_seen = job->killing = 0;
    job_set_state(self, job, WSLQ__JOB_STATE__STARTING, "placed", nodelist, NULL);
    for (size_t k = 0; k < info->n_allocs; k++)
        send_launch(self, job, k);
}

static int
cmp_pending(const void *a, const void *b)
{
    const job_t *x = *(job_t *const *) a, *y = *(job_t *const *) b;
    if (x->info->spec->priority != y->info->spec->priority)
        return x->info->spec->priority > y->info->spec->priority ? -1 : 1;
    return x->info->id < y->info->id ? -1 : x->info->id > y->info->id;
}

static void cancel_pending(sched_t *self, job_t *job, const char *reason);

/* 1 = dependencies met, 0 = wait, -1 = can never be met (job cancelled). */
static int
deps_ready(sched_t *self, job_t *job)
{
    const Wslq__JobSpec *s = job->info->spec;
    for (size_t i = 0; i < s->n_depends_on; i++) {
        uint64_t dep = s->depends_on[i];
        if (job_find(self, dep) != NULL) {
            char why[96];
            snprintf(why, sizeof why, "waiting for job %" PRIu64 " (dependency)", dep);
            if (strcmp(job->info->reason, why) != 0) {
                set_str(&job->info->reason, why);
                job_save(self, job);
            }
            return 0;
        }
        Wslq__JobInfo *d = queue_get(self->q, dep, NULL);
        Wslq__JobState st = d ? d->state : WSLQ__JOB_STATE__JOB_STATE_UNSPECIFIED;
        if (d)
            wslq__job_info__free_unpacked(d, NULL);
        if (st != WSLQ__JOB_STATE__COMPLETED) {
            char why[128];
            snprintf(why, sizeof why, "dependency job %" PRIu64 " ended %s", dep,
                     wire_state_name(st));
            cancel_pending(self, job, why);
            return -1;
        }
    }
    return 1;
}

static void
schedule_pass(sched_t *self)
{
    self->dirty = 0;
    policy_node_t pn[POLICY_MAX_NODES];
    size_t nn = snapshot(self, pn, POLICY_MAX_NODES, 0);
    size_t np = 0;
    job_t **pending = wq_malloc((self->n_jobs ? self->n_jobs : 1) * sizeof *pending);
    for (size_t j = 0; j < self->n_jobs; j++)
        if (self->jobs[j]->info->state == WSLQ__JOB_STATE__PENDING)
            pending[np++] = self->jobs[j];
    qsort(pending, np, sizeof *pending, cmp_pending);
    int64_t now = wq_clock_mono_ms();
    for (size_t i = 0; i < np; i++) {
        job_t *job = pending[i];
        if (job->not_before_mono > now)
            continue;
        if (job->info->spec->n_depends_on > 0 && deps_ready(self, job) != 1)
            continue;
        policy_req_t req;
        req_of(job->info->spec, &req);
        policy_choice_t choice;
        char why[192];
        if (policy_place(pn, nn, &req, &choice, why, sizeof why)) {
            policy_take(pn, &req, &choice);
            start_job(self, job, pn, &choice);
        } else if (strcmp(job->info->reason, why) != 0) {
            set_str(&job->info->reason, why);
            job_save(self, job);
        }
    }
    free(pending);
}

/* ---------- endings ---------- */

static void
cancel_pending(sched_t *self, job_t *job, const char *reason)
{
    job->info->end_ms = wq_clock_wall_ms();
    set_str(&job->info->reason, reason);
    job_set_state(self, job, WSLQ__JOB_STATE__CANCELLED, reason, NULL, NULL);
    wake_log_waiters(self, job->info->id);
    job_remove(self, job);
    self->dirty = 1;
}

/* Every part has ended: decide the job's end, or requeue it. */
static void
finalize(sched_t *self, job_t *job)
{
    Wslq__JobInfo *info = job->info;
    Wslq__JobState st;
    const char *reason;
    char buf[256];
    int retryable = 0;
    if (job->cancel_requested) {
        st = WSLQ__JOB_STATE__CANCELLED;
        reason = "cancelled";
    } else if (job->timeout_hit) {
        st = WSLQ__JOB_STATE__TIMEOUT;
        reason = "time limit reached";
    } else if (job->node_failed) {
        st = WSLQ__JOB_STATE__NODE_FAIL;
        snprintf(buf, sizeof buf, "node %s was lost", info->failed_node);
        reason = buf;
        retryable = 1;
    } else if (job->start_failed) {
        st = WSLQ__JOB_STATE__FAILED;
        reason = info->reason;
        retryable = 1;
    } else if (job->failure_seen) {
        st = WSLQ__JOB_STATE__FAILED;
        if (info->signal)
            snprintf(buf, sizeof buf, "rank %d on %s killed by signal %d", info->failed_rank,
                     info->failed_node, info->signal);
        else
            snprintf(buf, sizeof buf, "rank %d on %s exited with code %d", info->failed_rank,
                     info->failed_node, info->exit_code);
        reason = buf;
        retryable = info->spec->requeue_on_fail;
    } else {
        st = WSLQ__JOB_STATE__COMPLETED;
        info->exit_code = 0;
        reason = "every rank exited 0";
    }
    if (retryable && info->attempt < info->spec->retries) {
        char why[320];
        snprintf(why, sizeof why, "requeued after %s: %s (attempt %u of %u)", wire_state_name(st),
                 reason, info->attempt + 2, info->spec->retries + 1);
        info->attempt++;
        /* Back off 1, 2, 4 ... 60 s so a broken node or script does not spin. */
        int64_t backoff = 1000LL << (info->attempt - 1 < 6 ? info->attempt - 1 : 6);
        job->not_before_mono = wq_clock_mono_ms() + (backoff > 60000 ? 60000 : backoff);
        free_allocs(info);
        free(job->parts);
        job->parts = NULL;
        info->master_port = 0;
        set_str(&info->master_addr, "");
        info->start_ms = 0;
        set_str(&info->reason, why);
        kv_clear(job);
        self->stats.requeued_total++;
        job_set_state(self, job, WSLQ__JOB_STATE__PENDING, why, NULL, NULL);
        self->dirty = 1;
        return;
    }
    info->end_ms = wq_clock_wall_ms();
    set_str(&info->reason, reason);
    job_set_state(self, job, st, reason, info->failed_node, NULL);
    wake_log_waiters(self, info->id);
    job_remove(self, job);
    self->dirty = 1;
}

static void
maybe_finalize(sched_t *self, job_t *job)
{
    for (size_t k = 0; k < job->info->n_allocs; k++)
        if (!job->parts[k].ended)
            return;
    finalize(self, job);
}

/* A part of a job failed or was lost: stop the others (gang semantics). */
static void
gang_stop(sched_t *self, job_t *job, const char *why)
{
    /* Short: the gang is already broken, and every rank must be gone within 5 s. */
    if (!job->killing)
        send_kill(self, job, why,
                  self->cfg.kill_grace_ms < GANG_GRACE_MS ? self->cfg.kill_grace_ms
                                                          : GANG_GRACE_MS);
}

static void
node_lost(sched_t *self, node_t *nd)
{
    nd->state = NODE_LOST;
    self->stats.version++;
    log_warn("node lost name=%s silent_ms=%" PRId64, nd->info->name,
             wq_clock_mono_ms() - nd->last_seen_mono);
    for (size_t j = 0; j < self->n_jobs;) {
        job_t *job = self->jobs[j];
        int touched = 0;
        for (size_t k = 0; k < job->info->n_allocs; k++) {
            if (part_holds(job, k) && strcmp(job->info->allocs[k]->node, nd->info->name) == 0) {
                job->parts[k].ended = 1;
                job->parts[k].lost = 1;
                touched = 1;
            }
        }
        if (touched) {
            if (!job->node_failed && !job->failure_seen) {
                job->node_failed = 1;
                set_str(&job->info->failed_node, nd->info->name);
            }
            job_event(self, job, "node lost", nd->info->name, NULL);
            gang_stop(self, job, "another node of the job was lost");
            size_t before = self->n_jobs;
            maybe_finalize(self, job);
            if (self->n_jobs < before)
                continue; /* removed: same index now holds the next job */
        }
        j++;
    }
    self->dirty = 1;
}

/* ---------- CLI requests ---------- */

static const char *
basename_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void
handle_submit(sched_t *self, const void *id, size_t idlen, Wslq__Envelope *env)
{
    Wslq__JobSpec *spec = env->submit->spec;
    wq_error_t err = {0};
    if (spec->cpus_per_node == 0)
        spec->cpus_per_node = 1;
    if (spec->name[0] == '\0')
        set_str(&spec->name, spec->wrap ? "wrap" : basename_of(spec->argv[0]));
    if (spec->user[0] == '\0')
        set_str(&spec->user, "unknown");
    /* A job no node could ever hold is refused now, not left pending forever. */
    policy_node_t pn[POLICY_MAX_NODES];
    size_t nn = snapshot(self, pn, POLICY_MAX_NODES, 1);
    policy_req_t req;
    req_of(spec, &req);
    char why[256];
    if (nn > 0 && !policy_feasible(pn, nn, &req, why, sizeof why)) {
        self->stats.refused_total++;
        wq_fail(&err, WQ_EINVAL, "job refused: %s", why);
        out_error(self, id, idlen, env->request_id, &err);
        return;
    }
    for (size_t i = 0; i < spec->n_depends_on; i++) {
        uint64_t dep = spec->depends_on[i];
        if (job_find(self, dep) != NULL)
            continue;
        Wslq__JobInfo *d = queue_get(self->q, dep, &err);
        if (d == NULL) {
            wq_fail(&err, WQ_ENOENT, "job refused: dependency job %" PRIu64 " not found", dep);
            out_error(self, id, idlen, env->request_id, &err);
            return;
        }
        Wslq__JobState st = d->state;
        wslq__job_info__free_unpacked(d, NULL);
        if (st != WSLQ__JOB_STATE__COMPLETED) {
            wq_fail(&err, WQ_EINVAL,
                    "job refused: dependency job %" PRIu64 " ended %s, so it could never start",
                    dep, wire_state_name(st));
            out_error(self, id, idlen, env->request_id, &err);
            return;
        }
    }
    job_t *job = wq_calloc(1, sizeof *job);
    job->info = wq_malloc(sizeof *job->info);
    wslq__job_info__init(job->info);
    job->info->spec = spec;
    env->submit->spec = NULL; /* the job owns it now */
    job->info->state = WSLQ__JOB_STATE__PENDING;
    job->info->submit_ms = wq_clock_wall_ms();
    job->info->exit_code = -1;
    job->info->failed_rank = -1;
    set_str(&job->info->reason, nn == 0 ? "waiting for a node to register" : "");
    db_begin(self);
    if (queue_insert(self->q, job->info, &err) < 0)
        fatal_db(&err);
    job_event(self, job, "submitted", NULL, NULL);
    job_insert(self, job);
    self->stats.submitted_total++;
    self->dirty = 1;

    Wslq__SubmitReply rep = WSLQ__SUBMIT_REPLY__INIT;
    rep.job_id = job->info->id;
    Wslq__Envelope out = WSLQ__ENVELOPE__INIT;
    out.request_id = env->request_id;
    out.body_case = WSLQ__ENVELOPE__BODY_SUBMIT_REPLY;
    out.submit_reply = &rep;
    out_push(self, id, idlen, &out);
}

typedef struct {
    Wslq__JobInfo **jobs;
    size_t n, cap;
    size_t bytes;
} collect_t;

static void
collect_job(Wslq__JobInfo *info, void *arg)
{
    collect_t *c = arg;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->jobs = wq_realloc(c->jobs, c->cap * sizeof *c->jobs);
    }
    c->jobs[c->n++] = info;
    c->bytes += wslq__job_info__get_packed_size(info);
}

static void
handle_queue(sched_t *self, const void *id, size_t idlen, Wslq__Envelope *env)
{
    const Wslq__QueueRequest *r = env->queue;
    queue_filter_t f = {0};
    f.active_only = !r->all && r->n_states == 0;
    for (size_t i = 0; i < r->n_states; i++)
        f.state_mask |= 1u << r->states[i];
    f.user = r->user[0] ? r->user : NULL;
    f.name = r->name[0] ? r->name : NULL;
    f.before_id = r->before_id;
    f.limit = r->limit ? (r->limit > 10000 ? 10000 : r->limit) : DEFAULT_LIST;
    f.newest_first = 1;
    collect_t c = {0};
    wq_error_t err = {0};
    if (queue_list(self->q, &f, collect_job, &c, &err) < 0) {
        out_error(self, id, idlen, env->request_id, &err);
        return;
    }
    /* Oldest first on screen, as squeue; keep the reply well under the frame limit. */
    size_t keep = c.n, bytes = 0;
    for (size_t i = 0; i < c.n; i++) {
        bytes += wslq__job_info__get_packed_size(c.jobs[i]);
        if (bytes > WIRE_MAX_FRAME / 2) {
            keep = i;
            break;
        }
    }
    Wslq__JobInfo **ordered = wq_malloc((keep ? keep : 1) * sizeof *ordered);
    for (size_t i = 0; i < keep; i++)
        ordered[i] = c.jobs[keep - 1 - i];
    Wslq__QueueReply rep = WSLQ__QUEUE_REPLY__INIT;
    rep.jobs = ordered;
    rep.n_jobs = keep;
    rep.more = keep < c.n || c.n == f.limit;
    Wslq__Envelope out = WSLQ__ENVELOPE__INIT;
    out.request_id = env->request_id;
    out.body_case = WSLQ__ENVELOPE__BODY_QUEUE_REPLY;
    out.queue_reply = &rep;
    out_push(self, id, idlen, &out);
    for (size_t i = 0; i < c.n; i++)
        wslq__job_info__free_unpacked(c.jobs[i], NULL);
    free(c.jobs);
    free(ordered);
}

static void
handle_show(sched_t *self, const void *id, size_t idlen, Wslq__Envelope *env)
{
    wq_error_t err = {0};
    Wslq__JobInfo *info = queue_get(self->q, env->show->job_id, &err);
    if (info == NULL) {
        out_error(self, id, idlen, env->request_id, &err);
        return;
    }
    Wslq__JobEvent **events = NULL;
    size_t n = 0;
    if (queue_events(self->q, info->id, &events, &n, &err) < 0) {
        wslq__job_info__free_unpacked(info, NULL);
        out_error(self, id, idlen, env->request_id, &err);
        return;
    }
    Wslq__ShowReply rep = WSLQ__SHOW_REPLY__INIT;
    rep.job = info;
    rep.events = events;
    rep.n_events = n;
    Wslq__Envelope out = WSLQ__ENVELOPE__INIT;
    out.request_id = env->request_id;
    out.body_case = WSLQ__ENVELOPE__BODY_SHOW_REPLY;
    out.show_reply = &rep;
    out_push(self, id, idlen, &out);
    queue_free_events(events, n);
    wslq__job_info__free_unpacked(info, NULL);
}

/* Send what the log holds from 'offset' (at most max_bytes), with eof once the job has
 * ended and everything was sent. */
static void
answer_logs(sched_t *self,
            const void *identity,
            size_t idlen,
            uint64_t request_id,
            uint64_t job_id,
            uint64_t offset,
            uint32_t max_bytes)
{
    char *path = log_path(self, job_id, -1);
    int64_t size = file_size(path);
    uint32_t want = max_bytes ? max_bytes : LOG_READ_DEFAULT;
    if (want > WIRE_MAX_LOG_CHUNK)
        want = WIRE_MAX_LOG_CHUNK;
    uint8_t *data = NULL;
    size_t got = 0;
    if ((int64_t) offset < size) {
        size_t n = (size_t) (size - (int64_t) offset);
        if (n > want)
            n = want;
        data = wq_malloc(n);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t r = pread(fd, data, n, (off_t) offset);
            got = r > 0 ? (size_t) r : 0;
            close(fd);
        }
    }
    free(path);
    job_t *job = job_find(self, job_id);
    Wslq__JobState st = WSLQ__JOB_STATE__JOB_STATE_UNSPECIFIED;
    if (job != NULL) {
        st = job->info->state;
    } else {
        Wslq__JobInfo *info = queue_get(self->q, job_id, NULL);
        if (info != NULL) {
            st = info->state;
            wslq__job_info__free_unpacked(info, NULL);
        }
    }
    Wslq__LogsReply rep = WSLQ__LOGS_REPLY__INIT;
    rep.data.data = data;
    rep.data.len = got;
    rep.next_offset = offset + got;
    rep.state = st;
    rep.eof = job == NULL && (int64_t) rep.next_offset >= size;
    Wslq__Envelope out = WSLQ__ENVELOPE__INIT;
    out.request_id = request_id;
    out.body_case = WSLQ__ENVELOPE__BODY_LOGS_REPLY;
    out.logs_reply = &rep;
    out_push(self, identity, idlen, &out);
    free(data);
}

static void
handle_logs(sched_t *self, const void *id, size_t idlen, Wslq__Envelope *env)
{
    const Wslq__LogsRequest *r = env->logs;
    job_t *job = job_find(self, r->job_id);
    if (job == NULL) {
        wq_error_t err = {0};
        Wslq__JobInfo *info = queue_get(self->q, r->job_id, &err);
        if (info == NULL) {
            out_error(self, id, idlen, env->request_id, &err);
            return;
        }
        wslq__job_info__free_unpacked(info, NULL);
    }
    char *path = log_path(self, r->job_id, -1);
    int64_t size = file_size(path);
    free(path);
    if (job != NULL && r->wait_ms > 0 && (int64_t) r->offset >= size) {
        waiter_t w = {0};
        memcpy(w.identity, id, idlen);
        w.identity_len = idlen;
        w.request_id = env->request_id;
        w.job_id = r->job_id;
        w.offset = r->offset;
        w.max_bytes = r->max_bytes;
        w.deadline_mono = wq_clock_mono_ms() + r->wait_ms;
        waiter_add(self, &w);
        return;
    }
    answer_logs(self, id, idlen, env->request_id, r->job_id, r->offset, r->max_bytes);
}

static void
handle_cancel(sched_t *self, const void *id, size_t idlen, Wslq__Envelope *env)
{
    const Wslq__CancelRequest *r = env->cancel;
    wq_error_t err = {0};
    /* Check every id first: a bad id changes nothing. */
    for (size_t i = 0; i < r->n_job_ids; i++) {
        if (job_find(self, r->job_ids[i]) != NULL)
            continue;
        Wslq__JobInfo *info = queue_get(self->q, r->job_ids[i], &err);
        if (info == NULL) {
            out_error(self, id, idlen, env->request_id, &err);
            return;
        }
        wq_fail(&err, WQ_EINVAL, "job %" PRIu64 " has already ended (%s)", info->id,
                wire_state_name(info->state));
        wslq__job_info__free_unpacked(info, NULL);
        out_error(self, id, idlen, env->request_id, &err);
        return;
    }
    for (size_t i = 0; i < r->n_job_ids; i++) {
        job_t *job = job_find(self, r->job_ids[i]);
        if (job == NULL)
            continue; /* listed twice */
        if (job->info->state == WSLQ__JOB_STATE__PENDING) {
            cancel_pending(self, job, "cancelled by user");
        } else if (!job->cancel_requested) {
            job->cancel_requested = 1;
            job_event(self, job, "cancel requested", NULL, NULL);
            send_kill(self, job, "cancelled", self->cfg.kill_grace_ms);
        }
    }
    Wslq__CancelReply rep = WSLQ__CANCEL_REPLY__INIT;
    rep.cancelled = r->job_ids;
    rep.n_cancelled = r->n_job_ids;
    Wslq__Envelope out = WSLQ__ENVELOPE__INIT;
    out.request_id = env->request_id;
    out.body_case = WSLQ__ENVELOPE__BODY_CANCEL_REPLY;
    out.cancel_reply = &rep;
    out_push(self, id, idlen, &out);
}

/* Bring a node's allocation, GPU holders and state name up to date from the active jobs. */
static void
node_refresh(sched_t *self, node_t *nd)
{
    Wslq__NodeInfo *ni = nd->info;
    ni->cpus_alloc = 0;
    ni->mem_alloc_mb = 0;
    for (size_t g = 0; g < ni->n_gpus; g++)
        ni->gpus[g]->job_id = 0;
    for (size_t j = 0; j < self->n_jobs; j++) {
        job_t *job = self->jobs[j];
        for (size_t k = 0; k < job->info->n_allocs; k++) {
            const Wslq__Alloc *a = job->info->allocs[k];
            if (!part_holds(job, k) || strcmp(a->node, ni->name) != 0)
                continue;
            ni->cpus_alloc += job->info->spec->cpus_per_node;
            ni->mem_alloc_mb += job->info->spec->mem_mb_per_node;
            for (size_t g = 0; g < ni->n_gpus; g++)
                for (size_t x = 0; x < a->n_gpus; x++)
                    if (ni->gpus[g]->index == a->gpus[x])
                        ni->gpus[g]->job_id = job->info->id;
        }
    }
    const char *state = node_state_names[nd->state];
    if (nd->state == NODE_ALIVE && (ni->cpus_alloc > 0 || ni->mem_alloc_mb > 0)) {
        unsigned used = 0;
        for (size_t g = 0; g < ni->n_gpus; g++)
            used += ni->gpus[g]->job_id != 0;
        state = (used == ni->n_gpus && ni->n_gpus > 0) || ni->cpus_alloc >= ni->cpus ? "allocated"
                                                                                     : "mixed";
    }
    set_str(&ni->state, state);
}

static void
handle_nodes(sched_t *self, const void *id, size_t idlen, Wslq__Envelope *env)
{
    const char *want = env->nodes->name;
    Wslq__NodeInfo **list = wq_calloc(self->n_nodes ? self->n_nodes : 1, sizeof *list);
    size_t n = 0;
    for (size_t i = 0; i < self->n_nodes; i++) {
        node_t *nd = self->nodes[i];
        if (want[0] && strcmp(want, nd->info->name) != 0)
            continue;
        node_refresh(self, nd);
        list[n++] = nd->info;
    }
    if (want[0] && n == 0) {
        wq_error_t err;
        wq_fail(&err, WQ_ENOENT, "node %s not found", want);
        out_error(self, id, idlen, env->request_id, &err);
        free(list);
        return;
    }
    Wslq__NodesReply rep = WSLQ__NODES_REPLY__INIT;
    rep.nodes = list;
    rep.n_nodes = n;
    Wslq__Envelope out = WSLQ__ENVELOPE__INIT;
    out.request_id = env->request_id;
    out.body_case = WSLQ__ENVELOPE__BODY_NODES_REPLY;
    out.nodes_reply = &rep;
    out_push(self, id, idlen, &out);
    free(list);
}

static void
kv_reply(sched_t *self, const void *id, size_t idlen, uint64_t request_id, const kv_entry_t *e)
{
    Wslq__KvReply rep = WSLQ__KV_REPLY__INIT;
    rep.found = e != NULL;
    if (e) {
        rep.value.data = e->value;
        rep.value.len = e->len;
    }
    Wslq__Envelope out = WSLQ__ENVELOPE__INIT;
    out.request_id = request_id;
    out.body_case = WSLQ__ENVELOPE__BODY_KV_REPLY;
    out.kv_reply = &rep;
    out_push(self, id, idlen, &out);
}

static kv_entry_t *
kv_find(job_t *job, const char *key)
{
    for (size_t i = 0; i < job->n_kv; i++)
        if (strcmp(job->kv[i].key, key) == 0)
            return &job->kv[i];
    return NULL;
}

static void
handle_kv(sched_t *self, const void *id, size_t idlen, Wslq__Envelope *env)
{
    const Wslq__KvRequest *r = env->kv;
    wq_error_t err = {0};
    job_t *job = job_find(self, r->job_id);
    if (job == NULL || job->info->state == WSLQ__JOB_STATE__PENDING) {
        wq_fail(&err, WQ_ENOENT, "job %" PRIu64 " is not running", r->job_id);
        out_error(self, id, idlen, env->request_id, &err);
        return;
    }
    kv_entry_t *e = kv_find(job, r->key);
    switch (r->op) {
    case WSLQ__KV_REQUEST__OP__PUT: {
        size_t klen = strlen(r->key);
        uint64_t grow = r->value.len + (e ? 0 : klen) - (e ? e->len : 0);
        if (!e && job->n_kv >= self->cfg.kv_max_keys) {
            wq_fail(&err, WQ_ELIMIT, "job %" PRIu64 " already has %u keys, the limit", r->job_id,
                    self->cfg.kv_max_keys);
            out_error(self, id, idlen, env->request_id, &err);
            return;
        }
        if (job->kv_bytes + grow > self->cfg.kv_max_bytes) {
            wq_fail(&err, WQ_ELIMIT,
                    "job %" PRIu64 " key/value store would exceed %" PRIu64 " bytes", r->job_id,
                    self->cfg.kv_max_bytes);
            out_error(self, id, idlen, env->request_id, &err);
            return;
        }
        if (e == NULL) {
            job->kv = wq_realloc(job->kv, (job->n_kv + 1) * sizeof *job->kv);
            e = &job->kv[job->n_kv++];
            e->key = wq_strdup(r->key);
            e->value = NULL;
            e->len = 0;
        }
        free(e->value);
        e->value = wq_malloc(r->value.len ? r->value.len : 1);
        memcpy(e->value, r->value.data, r->value.len);
        e->len = r->value.len;
        job->kv_bytes += grow;
        kv_reply(self, id, idlen, env->request_id, e);
        /* Wake parked WAITs for this key. */
        for (size_t i = 0; i < self->n_waiters;) {
            waiter_t *w = &self->waiters[i];
            if (w->kind == WAIT_KV && w->job_id == r->job_id && strcmp(w->key, r->key) == 0) {
                kv_reply(self, w->identity, w->identity_len, w->request_id, e);
                waiter_drop(self, i);
            } else {
                i++;
            }
        }
        return;
    }
    case WSLQ__KV_REQUEST__OP__GET:
        kv_reply(self, id, idlen, env->request_id, e);
        return;
    case WSLQ__KV_REQUEST__OP__WAIT:
        if (e != NULL || r->timeout_ms == 0) {
            if (e == NULL) {
                wq_fail(&err, WQ_ETIMEDOUT, "key '%.64s' is not set", r->key);
                out_error(self, id, idlen, env->request_id, &err);
            } else {
                kv_reply(self, id, idlen, env->request_id, e);
            }
            return;
        }
        {
            waiter_t w = {0};
            memcpy(w.identity, id, idlen);
            w.identity_len = idlen;
            w.request_id = env->request_id;
            w.job_id = r->job_id;
            w.kind = WAIT_KV;
            w.key = wq_strdup(r->key);
            w.deadline_mono = wq_clock_mono_ms() + r->timeout_ms;
            waiter_add(self, &w);
        }
        return;
    default:
        wq_fail(&err, WQ_EPROTO, "unknown key/value operation");
        out_error(self, id, idlen, env->request_id, &err);
    }
}

/* ---------- worker messages ---------- */

static int
alloc_index(const job_t *job, const char *node)
{
    for (size_t k = 0; k < job->info->n_allocs; k++)
        if (strcmp(job->info->allocs[k]->node, node) == 0)
            return (int) k;
    return -1;
}

static void
mark_started(sched_t *self, job_t *job, size_t k, const char *node)
{
    if (job->parts[k].started)
        return;
    job->parts[k].started = 1;
    for (size_t i = 0; i < job->info->n_allocs; i++)
        if (!job->parts[i].started)
            return;
    if (job->info->state == WSLQ__JOB_STATE__STARTING)
        job_set_state(self, job, WSLQ__JOB_STATE__RUNNING, "every rank started", node, NULL);
}

static void
handle_register(sched_t *self, const void *id, size_t idlen, Wslq__Envelope *env)
{
    Wslq__Register *r = env->reg;
    node_t *nd = node_by_name(self, r->name);
    Wslq__NodeInfo *ni = wq_malloc(sizeof *ni);
    wslq__node_info__init(ni);
    ni->name = wq_strdup(r->name);
    ni->hostname = wq_strdup(r->hostname);
    ni->ip = wq_strdup(r->ip);
    ni->cpus = r->cpus;
    ni->mem_mb = r->mem_mb;
    ni->version = wq_strdup(r->version);
    ni->inbound_ok = r->inbound_ok;
    /* Take the GPU and attribute arrays from the request. */
    ni->gpus = r->gpus;
    ni->n_gpus = r->n_gpus;
    r->gpus = NULL;
    r->n_gpus = 0;
    ni->attrs = r->attrs;
    ni->n_attrs = r->n_attrs;
    r->attrs = NULL;
    r->n_attrs = 0;
    ni->last_seen_ms = wq_clock_wall_ms();
    ni->state = wq_strdup("idle");
    if (nd == NULL) {
        nd = node_add(self, ni);
    } else {
        if (nd->identity_len && (nd->identity_len != idlen || memcmp(nd->identity, id, idlen)))
            log_warn("node re-registered from another connection name=%s", r->name);
        wslq__node_info__free_unpacked(nd->info, NULL);
        nd->info = ni;
    }
    memcpy(nd->identity, id, idlen);
    nd->identity_len = idlen;
    nd->state = NODE_ALIVE;
    nd->last_seen_mono = wq_clock_mono_ms();
    self->stats.version++;
    log_info("node registered name=%s ip=%s cpus=%u mem_mb=%" PRIu64 " gpus=%zu running=%zu",
             ni->name, ni->ip, ni->cpus, ni->mem_mb, ni->n_gpus, r->n_running);
    wq_error_t err = {0};
    db_begin(self);
    if (queue_save_node(self->q, ni, &err) < 0)
        fatal_db(&err);
    /* after the save: test results live in memory only (a restart tests again) */
    probe_on_register(self, nd, r->inbound_ok, r->probe_port);

    uint64_t *kill = wq_calloc(r->n_running + 1, sizeof *kill);
    size_t n_kill = 0;
    Wslq__RunningJob **offs = wq_calloc(r->n_running + 1, sizeof *offs);
    Wslq__RunningJob *off_store = wq_calloc(r->n_running + 1, sizeof *off_store);
    size_t n_offs = 0;
    for (size_t i = 0; i < r->n_running; i++) {
        const Wslq__RunningJob *rj = r->running[i];
        job_t *job = job_find(self, rj->job_id);
        int k = job ? alloc_index(job, ni->name) : -1;
        if (job == NULL || job->info->attempt != rj->attempt || k < 0 || job->parts[k].ended) {
            kill[n_kill++] = rj->job_id;
            continue;
        }
        job->parts[k].missing_since = 0;
        mark_started(self, job, (size_t) k, ni->name);
        wslq__running_job__init(&off_store[n_offs]);
        off_store[n_offs].job_id = rj->job_id;
        off_store[n_offs].attempt = rj->attempt;
        char *p = log_path(self, rj->job_id, job->info->n_allocs > 1 ? k : -1);
        off_store[n_offs].log_offset = (uint64_t) file_size(p);
        free(p);
        offs[n_offs] = &off_store[n_offs];
        n_offs++;
    }
    /* Jobs placed here that the worker no longer lists: it may still send their JobEnded
     * (it re-sends until acknowledged); if not within the grace, they are lost. */
    int64_t now = wq_clock_mono_ms();
    for (size_t j = 0; j < self->n_jobs; j++) {
        job_t *job = self->jobs[j];
        int k = alloc_index(job, ni->name);
        if (k < 0 || !part_holds(job, (size_t) k))
            continue;
        int listed = 0;
        for (size_t i = 0; i < r->n_running && !listed; i++)
            listed = r->running[i]->job_id == job->info->id &&
                     r->running[i]->attempt == job->info->attempt;
        if (!listed && job->parts[k].started && job->parts[k].missing_since == 0)
            job->parts[k].missing_since = now;
        if (!listed && !job->parts[k].started)
            send_launch(self, job, (size_t) k); /* the launch may have been lost */
    }
    Wslq__RegisterReply rep = WSLQ__REGISTER_REPLY__INIT;
    rep.kill_jobs = kill;
    rep.n_kill_jobs = n_kill;
    rep.log_offsets = offs;
    rep.n_log_offsets = n_offs;
    rep.scheduler_time_ms = wq_clock_wall_ms();
    Wslq__Envelope out = WSLQ__ENVELOPE__INIT;
    out.request_id = env->request_id;
    out.body_case = WSLQ__ENVELOPE__BODY_REG_REPLY;
    out.reg_reply = &rep;
    out_push(self, id, idlen, &out);
    free(kill);
    free(offs);
    free(off_store);
    self->dirty = 1;
}

static void
send_reregister(sched_t *self, const void *id, size_t idlen)
{
    Wslq__Reregister rr = WSLQ__REREGISTER__INIT;
    Wslq__Envelope out = WSLQ__ENVELOPE__INIT;
    out.body_case = WSLQ__ENVELOPE__BODY_REREGISTER;
    out.reregister = &rr;
    out_push(self, id, idlen, &out);
}

static void
handle_heartbeat(sched_t *self, node_t *nd, Wslq__Envelope *env)
{
    self->stats.version++; /* fresh GPU metrics */
    const Wslq__Heartbeat *hb = env->heartbeat;
    clock_report(self, nd, hb);
    for (size_t i = 0; i < hb->n_gpus; i++)
        for (size_t g = 0; g < nd->info->n_gpus; g++) {
            Wslq__GpuInfo *dst = nd->info->gpus[g];
            const Wslq__GpuInfo *src = hb->gpus[i];
            if (dst->index != src->index)
                continue;
            dst->mem_used_mb = src->mem_used_mb;
            if (src->mem_total_mb)
                dst->mem_total_mb = src->mem_total_mb;
            dst->temp_c = src->temp_c;
            dst->util_pct = src->util_pct;
            dst->power_w = src->power_w;
        }
}

static void
handle_started(sched_t *self, node_t *nd, Wslq__Envelope *env)
{
    job_t *job = job_find(self, env->started->job_id);
    if (job == NULL || job->info->attempt != env->started->attempt)
        return;
    int k = alloc_index(job, nd->info->name);
    if (k < 0 || job->parts[k].ended)
        return;
    mark_started(self, job, (size_t) k, nd->info->name);
}

static void
handle_ended(sched_t *self, node_t *nd, const void *id, size_t idlen, Wslq__Envelope *env)
{
    const Wslq__JobEnded *e = env->ended;
    job_t *job = job_find(self, e->job_id);
    int k = job && job->info->attempt == e->attempt ? alloc_index(job, nd->info->name) : -1;
    if (k >= 0 && !job->parts[k].ended) {
        part_t *p = &job->parts[k];
        p->ended = 1;
        p->started = 1;
        int failed = e->exit_code != 0 || e->signal != 0;
        char detail[320];
        snprintf(detail, sizeof detail, "exit_code=%d signal=%d rank=%d%s%s%s", e->exit_code,
                 e->signal, e->failed_rank, e->timed_out ? " timed_out" : "",
                 e->killed ? " killed" : "", e->reason[0] ? " " : "");
        if (e->reason[0])
            strncat(detail, e->reason, sizeof detail - strlen(detail) - 1);
        if (e->timed_out)
            job->timeout_hit = 1;
        job_event(self, job, "node finished", nd->info->name, detail);
        if (failed && !job->failure_seen && !job->killing && !job->node_failed) {
            job->failure_seen = 1;
            job->info->exit_code = e->exit_code;
            job->info->signal = e->signal;
            job->info->failed_rank = e->failed_rank;
            set_str(&job->info->failed_node, nd->info->name);
            job_save(self, job);
            gang_stop(self, job, "another rank of the job failed");
        } else if (failed && !job->failure_seen && e->timed_out) {
            job->info->exit_code = e->exit_code;
            job->info->signal = e->signal;
        }
        maybe_finalize(self, job);
    }
    Wslq__JobEndedAck ack = WSLQ__JOB_ENDED_ACK__INIT;
    ack.job_id = e->job_id;
    ack.attempt = e->attempt;
    Wslq__Envelope out = WSLQ__ENVELOPE__INIT;
    out.body_case = WSLQ__ENVELOPE__BODY_ENDED_ACK;
    out.ended_ack = &ack;
    out_push(self, id, idlen, &out);
}

static void
handle_rank_failed(sched_t *self, node_t *nd, Wslq__Envelope *env)
{
    const Wslq__RankFailed *f = env->rank_failed;
    job_t *job = job_find(self, f->job_id);
    if (job == NULL || job->info->attempt != f->attempt || job->failure_seen || job->killing ||
        job->node_failed)
        return;
    int k = alloc_index(job, nd->info->name);
    if (k < 0 || job->parts[k].ended)
        return;
    job->failure_seen = 1;
    job->info->exit_code = f->exit_code;
    job->info->signal = f->signal;
    job->info->failed_rank = f->rank;
    set_str(&job->info->failed_node, nd->info->name);
    job_save(self, job);
    char detail[96];
    snprintf(detail, sizeof detail, "rank=%d exit_code=%d signal=%d", f->rank, f->exit_code,
             f->signal);
    job_event(self, job, "rank failed", nd->info->name, detail);
    gang_stop(self, job, "another rank of the job failed");
}

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
            rc = 1; /* a gap: the worker resends from our size after it re-registers */
        } else {
            rc = 2; /* already have it */
        }
    }
    close(fd);
    return rc;
}

static void
handle_log(sched_t *self, node_t *nd, Wslq__Envelope *env)
{
    const Wslq__LogChunk *c = env->log;
    job_t *job = job_find(self, c->job_id);
    if (job == NULL || job->info->attempt != c->attempt || c->data.len == 0)
        return;
    int k = alloc_index(job, nd->info->name);
    if (k < 0)
        return;
    char *path = log_path(self, c->job_id, -1);
    if (job->info->n_allocs == 1) {
        if (append_file(path, c->offset, c->data.data, c->data.len, 1) < 0)
            log_warn("log write failed " JOB_FMT ": %s", c->job_id, strerror(errno));
    } else {
        /* Several nodes: an exact per-node copy tracks offsets; the merged file is what
         * `wslq logs` reads, in arrival order. */
        char *npath = log_path(self, c->job_id, k);
        int rc = append_file(npath, c->offset, c->data.data, c->data.len, 1);
        if (rc == 0)
            append_file(path, 0, c->data.data, c->data.len, 0);
        free(npath);
    }
    free(path);
    wake_log_waiters(self, c->job_id);
}

static void
handle_metrics(sched_t *self, Wslq__Envelope *env)
{
    const Wslq__MetricLines *m = env->metrics;
    if (job_find(self, m->job_id) == NULL)
        return;
    char *path = wq_asprintf("%s/%" PRIu64 ".metrics", self->log_dir, m->job_id);
    FILE *f = fopen(path, "ae");
    if (f != NULL) {
        for (size_t i = 0; i < m->n_lines; i++)
            if (strchr(m->lines[i], '\n') == NULL)
                fprintf(f, "%u\t%s\n", m->rank, m->lines[i]);
        fclose(f);
    }
    free(path);
}

static void
watch_reply(sched_t *self, const void *id, size_t idlen, uint64_t request_id)
{
    Wslq__WatchReply rep = WSLQ__WATCH_REPLY__INIT;
    rep.version = self->stats.version;
    Wslq__Envelope out = WSLQ__ENVELOPE__INIT;
    out.request_id = request_id;
    out.body_case = WSLQ__ENVELOPE__BODY_WATCH_REPLY;
    out.watch_reply = &rep;
    out_push(self, id, idlen, &out);
}

static void
handle_watch(sched_t *self, const void *id, size_t idlen, Wslq__Envelope *env)
{
    const Wslq__WatchRequest *r = env->watch;
    if (r->since_version != self->stats.version || r->wait_ms == 0) {
        watch_reply(self, id, idlen, env->request_id);
        return;
    }
    waiter_t w = {0};
    w.kind = WAIT_WATCH;
    memcpy(w.identity, id, idlen);
    w.identity_len = idlen;
    w.request_id = env->request_id;
    w.offset = r->since_version;
    w.deadline_mono = wq_clock_mono_ms() + r->wait_ms;
    waiter_add(self, &w);
}

/* Answer parked watches once anything changed. */
static void
wake_watchers(sched_t *self)
{
    if (self->seen_version == self->stats.version)
        return;
    self->seen_version = self->stats.version;
    for (size_t i = 0; i < self->n_waiters;) {
        waiter_t *w = &self->waiters[i];
        if (w->kind == WAIT_WATCH && w->offset != self->stats.version) {
            watch_reply(self, w->identity, w->identity_len, w->request_id);
            waiter_drop(self, i);
        } else {
            i++;
        }
    }
}

/* ---------- dispatch ---------- */

static int
is_worker_body(Wslq__Envelope__BodyCase c)
{
    return c == WSLQ__ENVELOPE__BODY_HEARTBEAT || c == WSLQ__ENVELOPE__BODY_STARTED ||
           c == WSLQ__ENVELOPE__BODY_RANK_FAILED || c == WSLQ__ENVELOPE__BODY_ENDED ||
           c == WSLQ__ENVELOPE__BODY_LOG || c == WSLQ__ENVELOPE__BODY_METRICS ||
           c == WSLQ__ENVELOPE__BODY_PROBE_RESULT;
}

static void
dispatch(sched_t *self, const void *id, size_t idlen, Wslq__Envelope *env)
{
    node_t *nd = node_by_identity(self, id, idlen);
    if (nd != NULL) {
        nd->last_seen_mono = wq_clock_mono_ms();
        nd->info->last_seen_ms = wq_clock_wall_ms();
        if (nd->state != NODE_ALIVE && nd->state != NODE_LOST) {
            log_info("node back name=%s", nd->info->name);
            self->stats.version++;
            nd->state = NODE_ALIVE;
            self->dirty = 1;
        }
    }
    if (is_worker_body(env->body_case) && (nd == NULL || nd->state == NODE_LOST)) {
        /* Not acknowledged: the worker re-sends a JobEnded until it is, and after it has
         * registered again the ending is applied to the job. */
        send_reregister(self, id, idlen);
        return;
    }
    switch (env->body_case) {
    case WSLQ__ENVELOPE__BODY_SUBMIT:
        handle_submit(self, id, idlen, env);
        break;
    case WSLQ__ENVELOPE__BODY_QUEUE:
        handle_queue(self, id, idlen, env);
        break;
    case WSLQ__ENVELOPE__BODY_SHOW:
        handle_show(self, id, idlen, env);
        break;
    case WSLQ__ENVELOPE__BODY_LOGS:
        handle_logs(self, id, idlen, env);
        break;
    case WSLQ__ENVELOPE__BODY_CANCEL:
        handle_cancel(self, id, idlen, env);
        break;
    case WSLQ__ENVELOPE__BODY_NODES:
        handle_nodes(self, id, idlen, env);
        break;
    case WSLQ__ENVELOPE__BODY_KV:
        handle_kv(self, id, idlen, env);
        break;
    case WSLQ__ENVELOPE__BODY_WATCH:
        handle_watch(self, id, idlen, env);
        break;
    case WSLQ__ENVELOPE__BODY_REG:
        handle_register(self, id, idlen, env);
        break;
    case WSLQ__ENVELOPE__BODY_HEARTBEAT:
        handle_heartbeat(self, nd, env);
        break;
    case WSLQ__ENVELOPE__BODY_STARTED:
        handle_started(self, nd, env);
        break;
    case WSLQ__ENVELOPE__BODY_ENDED:
        handle_ended(self, nd, id, idlen, env);
        break;
    case WSLQ__ENVELOPE__BODY_RANK_FAILED:
        handle_rank_failed(self, nd, env);
        break;
    case WSLQ__ENVELOPE__BODY_LOG:
        handle_log(self, nd, env);
        break;
    case WSLQ__ENVELOPE__BODY_METRICS:
        handle_metrics(self, env);
        break;
    case WSLQ__ENVELOPE__BODY_PROBE_RESULT:
        handle_probe_result(self, nd, env);
        break;
    default: {
        wq_error_t err;
        wq_fail(&err, WQ_EPROTO, "the scheduler does not accept this message");
        out_error(self, id, idlen, env->request_id, &err);
    }
    }
}

/* ---------- timers ---------- */

static void
tick(sched_t *self)
{
    int64_t now = wq_clock_mono_ms();
    for (size_t i = 0; i < self->n_nodes; i++) {
        node_t *nd = self->nodes[i];
        int64_t silent = now - nd->last_seen_mono;
        if (nd->state == NODE_ALIVE && silent > self->cfg.torpid_ms) {
            nd->state = NODE_TORPID;
            self->stats.version++;
            log_warn("node torpid name=%s silent_ms=%" PRId64, nd->info->name, silent);
        }
        if (nd->state == NODE_TORPID && silent > self->cfg.lost_ms)
            node_lost(self, nd);
    }
    probe_tick(self, now);
    for (size_t j = 0; j < self->n_jobs;) {
        job_t *job = self->jobs[j];
        size_t before = self->n_jobs;
        Wslq__JobInfo *info = job->info;
        if (info->state == WSLQ__JOB_STATE__STARTING && !job->killing &&
            now - job->phase_mono > self->cfg.start_timeout_ms) {
            char why[160];
            snprintf(why, sizeof why, "not every rank started within %" PRId64 " s",
                     self->cfg.start_timeout_ms / 1000);
            job->start_failed = 1;
            set_str(&info->reason, why);
            job_event(self, job, why, NULL, NULL);
            send_kill(self, job, why, self->cfg.kill_grace_ms);
        }
        if (info->state == WSLQ__JOB_STATE__RUNNING && info->spec->time_limit_s > 0 &&
            !job->killing && now - job->phase_mono > (int64_t) info->spec->time_limit_s * 1000) {
            job->timeout_hit = 1;
            job_event(self, job, "time limit reached", NULL, NULL);
            send_kill(self, job, "time limit reached", self->cfg.kill_grace_ms);
        }
        for (size_t k = 0; k < info->n_allocs && job->parts; k++) {
            part_t *p = &job->parts[k];
            if (!p->ended && p->missing_since &&
                now - p->missing_since > self->cfg.missing_grace_ms) {
                p->ended = 1;
                p->lost = 1;
                if (!job->node_failed && !job->failure_seen) {
                    job->node_failed = 1;
                    set_str(&info->failed_node, info->allocs[k]->node);
                }
                job_event(self, job, "node restarted without the job", info->allocs[k]->node, NULL);
                gang_stop(self, job, "another node of the job lost it");
                maybe_finalize(self, job);
                break;
            }
        }
        if (job->not_before_mono && job->not_before_mono <= now &&
            info->state == WSLQ__JOB_STATE__PENDING) {
            job->not_before_mono = 0;
            self->dirty = 1;
        }
        if (self->n_jobs == before)
            j++;
    }
    for (size_t i = 0; i < self->n_waiters;) {
        waiter_t *w = &self->waiters[i];
        if (w->deadline_mono > now) {
            i++;
            continue;
        }
        if (w->kind == WAIT_WATCH) {
            watch_reply(self, w->identity, w->identity_len, w->request_id);
        } else if (w->kind == WAIT_KV) {
            wq_error_t err;
            wq_fail(&err, WQ_ETIMEDOUT, "key '%.64s' was not set in time", w->key);
            out_error(self, w->identity, w->identity_len, w->request_id, &err);
        } else {
            answer_logs(self, w->identity, w->identity_len, w->request_id, w->job_id, w->offset,
                        w->max_bytes);
        }
        waiter_drop(self, i);
    }
}

/* ---------- setup and the loop ---------- */

void
sched_config_init(sched_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen = "tcp://*:7420";
    cfg->state_dir = NULL;
    cfg->sync_full = 1;
    cfg->torpid_ms = 3000;
    cfg->lost_ms = 10000;
    cfg->start_timeout_ms = 60000;
    cfg->kill_grace_ms = 10000;
    cfg->missing_grace_ms = 5000;
    cfg->port_lo = 29500;
    cfg->port_hi = 29999;
    cfg->kv_max_keys = 1024;
    cfg->kv_max_bytes = 4u << 20;
}

static int
mkdir_p(const char *path, wq_error_t *err)
{
    char *tmp = wq_strdup(path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST) {
            wq_fail_errno(err, "cannot create %s", tmp);
            free(tmp);
            return -1;
        }
        *p = '/';
    }
    free(tmp);
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        return wq_fail_errno(err, "cannot create %s", path);
    return 0;
}

static void
load_job(Wslq__JobInfo *info, void *arg)
{
    sched_t *self = arg;
    job_t *job = wq_calloc(1, sizeof *job);
    job->info = info;
    job->phase_mono = wq_clock_mono_ms();
    if (info->n_allocs > 0) {
        job->parts = wq_calloc(info->n_allocs, sizeof *job->parts);
        if (info->state == WSLQ__JOB_STATE__RUNNING)
            for (size_t k = 0; k < info->n_allocs; k++)
                job->parts[k].started = 1;
    }
    job_insert(self, job);
}

static void
load_node(Wslq__NodeInfo *info, void *arg)
{
    sched_t *self = arg;
    node_t *nd = node_add(self, info);
    /* Remembered, not connected: it must register within lost_ms or its jobs are lost. */
    nd->state = NODE_TORPID;
    nd->identity_len = 0;
}

sched_t *
sched_new(const sched_config_t *cfg, wq_error_t *err)
{
    sched_t *self = wq_calloc(1, sizeof *self);
    self->cfg = *cfg;
    self->start_mono = wq_clock_mono_ms();
    self->state_dir = wq_strdup(cfg->state_dir);
    self->log_dir = wq_asprintf("%s/logs", cfg->state_dir);
    if (mkdir_p(self->log_dir, err) < 0)
        goto error;
    char *db = wq_asprintf("%s/queue.db", cfg->state_dir);
    self->q = queue_new(db, cfg->sync_full, err);
    free(db);
    if (self->q == NULL)
        goto error;
    if (queue_list_nodes(self->q, load_node, self, err) < 0)
        goto error;
    queue_filter_t f = {.active_only = 1, .limit = 1000000};
    if (queue_list(self->q, &f, load_job, self, err) < 0)
        goto error;
    self->next_port = (unsigned) (queue_max_id(self->q) % 997);
    self->zctx = zmq_ctx_new();
    self->router = zmq_socket(self->zctx, ZMQ_ROUTER);
    int one = 1, zero = 0;
    int64_t maxmsg = WIRE_MAX_FRAME;
    zmq_setsockopt(self->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(self->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(self->router, ZMQ_LINGER, &zero, sizeof zero);
    int hwm = 100000;
    zmq_setsockopt(self->router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind(self->router, cfg->listen) < 0) {
        wq_fail(err, WQ_ESYS, "cannot listen on %s: %s", cfg->listen, zmq_strerror(errno));
        goto error;
    }
    size_t len = sizeof self->endpoint;
    zmq_getsockopt(self->router, ZMQ_LAST_ENDPOINT, self->endpoint, &len);
    log_info("scheduler listening endpoint=%s state_dir=%s active_jobs=%zu known_nodes=%zu",
             self->endpoint, cfg->state_dir, self->n_jobs, self->n_nodes);
    self->dirty = 1;
    return self;
error:
    sched_destroy(&self);
    return NULL;
}

void
sched_destroy(sched_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    sched_t *self = *self_p;
    if (self->router)
        zmq_close(self->router);
    if (self->zctx)
        zmq_ctx_term(self->zctx);
    for (size_t i = 0; i < self->n_jobs; i++)
        job_free(self->jobs[i]);
    free(self->jobs);
    for (size_t i = 0; i < self->n_nodes; i++) {
        wslq__node_info__free_unpacked(self->nodes[i]->info, NULL);
        free(self->nodes[i]);
    }
    free(self->nodes);
    for (size_t i = 0; i < self->n_waiters; i++)
        free(self->waiters[i].key);
    free(self->waiters);
    for (size_t i = 0; i < self->n_outs; i++)
        free(self->outs[i].buf);
    free(self->outs);
    queue_destroy(&self->q);
    free(self->state_dir);
    free(self->log_dir);
    free(self);
    *self_p = NULL;
}

void
sched_stop(sched_t *self)
{
    self->stop = 1;
}

const char *
sched_endpoint(const sched_t *self)
{
    return self->endpoint;
}

static void
recv_batch(sched_t *self)
{
    for (int i = 0; i < MAX_MSGS_PER_TURN; i++) {
        char id[256];
        size_t idlen = 0;
        wq_error_t err = {0};
        Wslq__Envelope *env = wire_recv(self->router, id, &idlen, ZMQ_DONTWAIT, &err);
        if (env == NULL) {
            if (err.code == WQ_EBUSY)
                return;
            if (err.code == WQ_ESYS && err.sys_errno == EINTR)
                return;
            self->stats.bad_frames_total++;
            int suppressed = wq_ratelimit(&self->bad_rl, 10, 10000);
            if (suppressed >= 0)
                log_warn("bad frame dropped: %s total=%" PRIu64 " suppressed=%d", err.text,
                         self->stats.bad_frames_total, suppressed);
            if (idlen > 0 && node_by_identity(self, id, idlen) == NULL)
                out_error(self, id, idlen, 0, &err);
            continue;
        }
        dispatch(self, id, idlen, env);
        wire_free(&env);
    }
}

int
sched_run(sched_t *self, wq_error_t *err)
{
    int64_t next_tick = wq_clock_mono_ms() + TICK_MS;
    while (!self->stop) {
        int64_t now = wq_clock_mono_ms();
        long timeout = next_tick > now ? (long) (next_tick - now) : 0;
        zmq_pollitem_t items[] = {{self->router, 0, ZMQ_POLLIN, 0}};
        int rc = zmq_poll(items, 1, timeout);
        if (rc < 0 && errno != EINTR)
            return wq_fail(err, WQ_ESYS, "poll failed: %s", zmq_strerror(errno));
        struct timespec ts0;
        clock_gettime(CLOCK_MONOTONIC, &ts0);
        if (rc > 0)
            recv_batch(self);
        now = wq_clock_mono_ms();
        if (now >= next_tick) {
            tick(self);
            next_tick = now + TICK_MS;
        }
        if (self->dirty)
            schedule_pass(self);
        wake_watchers(self);
        int worked = queue_in_txn(self->q) || self->n_outs > 0;
        wq_error_t cerr = {0};
        if (queue_commit(self->q, &cerr) < 0)
            fatal_db(&cerr);
        flush_outs(self);
        if (worked) {
            struct timespec ts1;
            clock_gettime(CLOCK_MONOTONIC, &ts1);
            double dt =
                (double) (ts1.tv_sec - ts0.tv_sec) + (double) (ts1.tv_nsec - ts0.tv_nsec) / 1e9;
            observe(self->stats.loop_bucket, sched_loop_bounds, SCHED_LOOP_BUCKETS, dt);
            self->stats.loop_count++;
            self->stats.loop_sum_s += dt;
        }
        if (self->hook)
            self->hook(self, self->hook_arg);
    }
    return 0;
}

const sched_stats_t *
sched_stats(const sched_t *self)
{
    return &self->stats;
}

size_t
sched_node_count(const sched_t *self)
{
    return self->n_nodes;
}

const Wslq__NodeInfo *
sched_node(sched_t *self, size_t i)
{
    if (i >= self->n_nodes)
        return NULL;
    node_refresh(self, self->nodes[i]);
    return self->nodes[i]->info;
}

size_t
sched_job_count(const sched_t *self)
{
    return self->n_jobs;
}

const Wslq__JobInfo *
sched_job(const sched_t *self, size_t i)
{
    return i < self->n_jobs ? self->jobs[i]->info : NULL;
}

const char *
sched_state_dir(const sched_t *self)
{
    return self->state_dir;
}

void
sched_set_hook(sched_t *self, sched_hook_f fn, void *arg)
{
    self->hook = fn;
    self->hook_arg = arg;
}
