/* The inbound self-test (proto/README.md, "Inbound self-test"): a node that claims peers can
 * connect in is tested when it registers, by asking one other alive node to connect to its
 * test port and read back a token. Results are node attributes kept in memory: inbound_probe
 * (wslq nodes) and doctor.net.inbound (wslq doctor --node); a restart tests again. */
#include <stdio.h>
#include <string.h>

#include "proto/nodecheck.h"
#include "scheduler/sched_int.h"

#define SELFTEST_TIMEOUT_MS                                                                    \
    3000                       /* ProbeRequest.timeout_ms: the peer's connect-and-answer bound \
                                */
#define SELFTEST_SLACK_MS 2000 /* the peer's ProbeResult may take this much longer */
#define SELFTEST_TRIES    3    /* peers asked before a silent test counts as failed */

static const char *const fix_text =
    "let the lab subnet connect in: networkingMode=mirrored in .wslconfig and the "
    "Hyper-V/Windows firewall rules of deploy/windows (the job port range covers the "
    "worker's ephemeral probe port; or pin probe_port and open it)";

/* Record a test outcome: the node attribute inbound_probe (wslq nodes) and the node check
 * net.inbound (wslq doctor --node). */
static void
set_result(sched_t *self,
           node_t *nd,
           enum selftest_state st,
           const char *short_text,
           Wslq__CheckVerdict verdict,
           const char *summary,
           const char *fix)
{
    Wslq__NodeInfo *ni = nd->info;
    nd->selftest.state = st;
    nodes_set_attr(ni, "inbound_probe", short_text);
    nodecheck_set(&ni->checks, &ni->n_checks, "net.inbound", verdict, summary, fix);
    self->stats.version++;
    self->dirty = 1;
}

/* A token the peer must read back: unguessable enough that a stray listener cannot pass. */
static void
make_token(char *buf, size_t size, const void *salt)
{
    static uint64_t counter;
    uint64_t x = (uint64_t) wq_clock_wall_ms() * 6364136223846793005ULL + ++counter +
                 (uint64_t) (uintptr_t) salt;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 32;
    snprintf(buf, size, "%016" PRIx64 "%04" PRIx64, x, counter & 0xffff);
}

/* Ask a peer to test-connect 'nd'. Prefers an alive node with another IP and, after a
 * silent peer, a different one. Without any peer the node stays unverified. */
static void
start(sched_t *self, node_t *nd)
{
    selftest_t *t = &nd->selftest;
    node_t *best = NULL;
    int best_score = -1;
    for (size_t i = 0; i < self->n_nodes; i++) {
        node_t *p = self->nodes[i];
        if (p == nd || p->state != NODE_ALIVE || p->peer.len == 0)
            continue;
        int score = (strcmp(p->info->ip, nd->info->ip) != 0 ? 2 : 0) +
                    (strcmp(p->info->name, t->peer) != 0 ? 4 : 0) +
                    (p->selftest.state == SELFTEST_PASSED ? 1 : 0);
        if (score > best_score) {
            best = p;
            best_score = score;
        }
    }
    if (best == NULL) {
        t->peer[0] = '\0';
        set_result(self, nd, SELFTEST_UNVERIFIED, "unverified: no peer",
                   WSLQ__CHECK_VERDICT__CHECK_INFO,
                   "inbound connections not tested yet: no other node is up to test them "
                   "(multi-node jobs wait for the test)",
                   "");
        log_info("inbound self-test waits for a peer node=%s", nd->info->name);
        return;
    }
    make_token(t->token, sizeof t->token, nd);
    snprintf(t->peer, sizeof t->peer, "%s", best->info->name);
    t->tries++;
    t->deadline_mono = wq_clock_mono_ms() + SELFTEST_TIMEOUT_MS + SELFTEST_SLACK_MS;
    if (self->selftest_due == 0 || t->deadline_mono < self->selftest_due)
        self->selftest_due = t->deadline_mono;
    char txt[WIRE_MAX_NAME + 48];
    snprintf(txt, sizeof txt, "pending (by %s)", best->info->name);
    set_result(self, nd, SELFTEST_PENDING, txt, WSLQ__CHECK_VERDICT__CHECK_INFO,
               "inbound connection test running (a peer node connects to this node)", "");
    Wslq__ProbeRequest pr = WSLQ__PROBE_REQUEST__INIT;
    pr.target_node = nd->info->name;
    pr.ip = nd->info->ip;
    pr.port = t->port;
    pr.token = t->token;
    pr.timeout_ms = SELFTEST_TIMEOUT_MS;
    pr.scheduler_time_ms = wq_clock_wall_ms();
    out_probe(self, &best->peer, &pr);
    log_info("inbound self-test node=%s addr=%s:%u peer=%s try=%d", nd->info->name, nd->info->ip,
             t->port, best->info->name, t->tries);
}

void
selftest_on_register(sched_t *self, node_t *nd, int claims_inbound, unsigned port)
{
    selftest_t *t = &nd->selftest;
    t->port = port;
    t->tries = 0;
    t->peer[0] = '\0';
    if (!claims_inbound) {
        set_result(self, nd, SELFTEST_NONE, "not tested: node reports no inbound connections",
                   WSLQ__CHECK_VERDICT__CHECK_INFO,
                   "inbound connections not tested: the worker reports none (inbound_ok = no, or "
                   "WSL in NAT mode); single-node jobs only",
                   "networkingMode=mirrored in .wslconfig (Windows 11 22H2+) and deploy/windows, "
                   "then restart the worker");
    } else if (port == 0) {
        set_result(self, nd, SELFTEST_FAILED, "failed: worker could not listen on its probe port",
                   WSLQ__CHECK_VERDICT__CHECK_FAIL,
                   "inbound test impossible: the worker could not listen on its probe port",
                   "free the port set as probe_port, or set probe_port = 0 (any port)");
    } else {
        start(self, nd);
    }
    /* the new node can test the nodes that were waiting for a peer */
    for (size_t i = 0; i < self->n_nodes; i++) {
        node_t *o = self->nodes[i];
        if (o != nd && o->state == NODE_ALIVE && o->selftest.state == SELFTEST_UNVERIFIED)
            start(self, o);
    }
}

void
handle_probe_result(sched_t *self, const msg_t *m)
{
    const Wslq__ProbeResult *r = m->env->probe_result;
    node_t *peer = m->node;
    node_t *nd = nodes_by_name(self, r->target_node);
    if (nd == NULL || nd->selftest.state != SELFTEST_PENDING ||
        strcmp(r->token, nd->selftest.token) != 0 ||
        strcmp(nd->selftest.peer, peer->info->name) != 0) {
        log_flag(SCHED, "stale probe result target=%s peer=%s", r->target_node, peer->info->name);
        return;
    }
    char txt[320], doc[512];
    const char *error = r->error[0] ? r->error : "unknown error";
    if (r->ok) {
        snprintf(txt, sizeof txt, "passed (by %s, %" PRIu32 " ms)", peer->info->name,
                 r->elapsed_ms);
        snprintf(doc, sizeof doc, "peers can connect in: %s reached %s:%u in %" PRIu32 " ms",
                 peer->info->name, nd->info->ip, nd->selftest.port, r->elapsed_ms);
        set_result(self, nd, SELFTEST_PASSED, txt, WSLQ__CHECK_VERDICT__CHECK_PASS, doc, "");
    } else {
        snprintf(txt, sizeof txt, "failed: %s (by %s)", error, peer->info->name);
        snprintf(doc, sizeof doc, "%s could not connect to %s:%u: %s", peer->info->name,
                 nd->info->ip, nd->selftest.port, error);
        set_result(self, nd, SELFTEST_FAILED, txt, WSLQ__CHECK_VERDICT__CHECK_FAIL, doc, fix_text);
    }
    log_info("inbound self-test done node=%s peer=%s ok=%d elapsed_ms=%" PRIu32 " err=\"%s\"",
             nd->info->name, peer->info->name, r->ok, r->elapsed_ms, r->error);
}

/* A pending test whose peer stayed silent: another peer, or failed after SELFTEST_TRIES. */
void
selftest_tick(sched_t *self, int64_t now)
{
    for (size_t i = 0; i < self->n_nodes; i++) {
        node_t *nd = self->nodes[i];
        selftest_t *t = &nd->selftest;
        if (t->state != SELFTEST_PENDING || now < t->deadline_mono)
            continue;
        if (nd->state != NODE_ALIVE) {
            t->state = SELFTEST_UNKNOWN; /* tested again when it registers */
            continue;
        }
        log_warn("inbound self-test: no answer from peer node=%s peer=%s try=%d", nd->info->name,
                 t->peer, t->tries);
        if (t->tries >= SELFTEST_TRIES) {
            char txt[320];
            snprintf(txt, sizeof txt, "failed: no peer answered (%d tries)", t->tries);
            set_result(self, nd, SELFTEST_FAILED, txt, WSLQ__CHECK_VERDICT__CHECK_FAIL,
                       "inbound test got no answer from the peers asked to run it",
                       "check that the other workers are up and can reach this node; restart "
                       "this worker to test again");
        } else {
            start(self, nd);
        }
    }
    self->selftest_due = 0;
    for (size_t i = 0; i < self->n_nodes; i++) {
        const selftest_t *t = &self->nodes[i]->selftest;
        if (t->state == SELFTEST_PENDING &&
            (self->selftest_due == 0 || t->deadline_mono < self->selftest_due))
            self->selftest_due = t->deadline_mono;
    }
}

/* O(1), called on every loop turn (a walk over 1,000 nodes each was measurable): the earliest
 * deadline as start() lowered it and selftest_tick() found it. A test that ended since only
 * makes it early, which costs one tick that finds nothing due and sets it right. */
int64_t
selftest_next_timer(const sched_t *self)
{
    return self->selftest_due != 0 ? self->selftest_due : INT64_MAX;
}

int
selftest_policy_state(const node_t *nd)
{
    /* passed: may take multi-node jobs; failed: never; not tested yet: possible at submit,
     * not placed */
    switch (nd->selftest.state) {
    case SELFTEST_PASSED:
        return POLICY_INBOUND_PASSED;
    case SELFTEST_FAILED:
        return POLICY_INBOUND_FAILED;
    default:
        return POLICY_INBOUND_PENDING;
    }
}
