/* Nodes: the registry of workers (alive -> torpid -> lost), registration and heartbeats, the
 * attributes the scheduler sets on a node (clock offset; the self-test's are selftest.c's),
 * drain and resume (wslq drain), and `wslq nodes`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "proto/nodecheck.h"
#include "scheduler/sched_int.h"

#define CLOCK_WARN_MS 500 /* |offset| from which doctor.time.offset warns */
/* Heartbeats' GPU metrics bump stats.version (the dashboard's snapshot, wslq top's watch) at
 * most this often. A snapshot rendered every node's JSON: with 200 nodes heartbeating at 1 Hz
 * that took a median 17.5 ms here, 2.3 % of a core at one every 750 ms (bench/README.md, the
 * fleet); it now fills the fresh figures into each node's cached JSON (http_snap.c), but
 * wslq top's watchers still get one update per bump. GPU figures 2 s old are what Grafana
 * and the dashboard show anyway; any other change (a job, a node's state, a check's
 * verdict) still publishes at once. */
#define METRICS_VERSION_MS 2000

static const char *const node_state_names[] = {"idle", "torpid", "lost"};

node_t *
nodes_by_name(sched_t *self, const char *name)
{
    for (size_t i = 0; i < self->n_nodes; i++)
        if (strcmp(self->nodes[i]->info->name, name) == 0)
            return self->nodes[i];
    return NULL;
}

static size_t
peer_hash(const peer_t *p)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < p->len; i++) {
        h ^= (unsigned char) p->id[i];
        h *= 0x100000001b3ull;
    }
    return (size_t) h;
}

/* The table of nodes by connection, built again after a node registered or was forgotten:
 * every message asks it, so a fleet's heartbeats do not each walk every node. Where two
 * nodes had the same connection, the first in the registry has it, as a walk would find. */
static void
peers_rebuild(sched_t *self)
{
    size_t cap = 16;
    while (cap < 2 * self->n_nodes)
        cap *= 2;
    if (cap != self->node_peers_cap) {
        free(self->node_peers);
        self->node_peers = wq_calloc(cap, sizeof *self->node_peers);
        self->node_peers_cap = cap;
    } else {
        memset(self->node_peers, 0, cap * sizeof *self->node_peers);
    }
    for (size_t i = 0; i < self->n_nodes; i++) {
        node_t *nd = self->nodes[i];
        if (nd->peer.len == 0)
            continue;
        size_t j = peer_hash(&nd->peer) & (cap - 1);
        while (self->node_peers[j] != NULL && !peer_same(&self->node_peers[j]->peer, &nd->peer))
            j = (j + 1) & (cap - 1);
        if (self->node_peers[j] == NULL)
            self->node_peers[j] = nd;
    }
    self->node_peers_stale = 0;
}

node_t *
nodes_by_peer(sched_t *self, const peer_t *p)
{
    if (p->len == 0)
        return NULL;
    if (self->node_peers == NULL || self->node_peers_stale)
        peers_rebuild(self);
    size_t mask = self->node_peers_cap - 1;
    for (size_t j = peer_hash(p) & mask; self->node_peers[j] != NULL; j = (j + 1) & mask)
        if (peer_same(&self->node_peers[j]->peer, p))
            return self->node_peers[j];
    return NULL;
}

/* ---------- when a node's silence is next due ---------- */

static int64_t node_torpid_ms(const sched_t *self, const node_t *nd);

/* The first millisecond at which nodes_tick finds the node silent too long. */
static int64_t
node_due(const sched_t *self, const node_t *nd)
{
    return nd->state == NODE_ALIVE    ? nd->last_seen_mono + node_torpid_ms(self, nd) + 1
           : nd->state == NODE_TORPID ? nd->last_seen_mono + self->cfg.lost_ms + 1
                                      : INT64_MAX;
}

/* self->nodes_due stays a lower bound of every node's due time: a change that may bring a
 * node's earlier lowers it here; one that puts it later (a heartbeat) leaves it, and the loop
 * then wakes early once, when nodes_tick finds the true one. */
static void
due_note(sched_t *self, const node_t *nd)
{
    int64_t t = node_due(self, nd);
    if (t < self->nodes_due)
        self->nodes_due = t;
}

static node_t *
node_add(sched_t *self, Wslq__NodeInfo *info)
{
    node_t *n = wq_calloc(1, sizeof *n);
    n->info = info;
    n->state = NODE_TORPID;
    n->torpid_passes = UINT64_MAX; /* not seen in this run: its return is news */
    n->last_seen_mono = wq_clock_mono_ms();
    self->nodes = wq_realloc(self->nodes, (self->n_nodes + 1) * sizeof *self->nodes);
    self->nodes[self->n_nodes++] = n;
    due_note(self, n);
    return n;
}

void
nodes_load(Wslq__NodeInfo *info, void *arg)
{
    sched_t *self = arg;
    /* Remembered, not connected: it must register within lost_ms or its jobs are lost. */
    node_add(self, info);
}

void
nodes_free_all(sched_t *self)
{
    for (size_t i = 0; i < self->n_nodes; i++) {
        wslq__node_info__free_unpacked(self->nodes[i]->info, NULL);
        free(self->nodes[i]);
    }
    free(self->nodes);
    self->nodes = NULL;
    self->n_nodes = 0;
    free(self->node_peers);
    self->node_peers = NULL;
    self->node_peers_cap = 0;
}

void
nodes_set_attr(Wslq__NodeInfo *ni, const char *key, const char *value)
{
    for (size_t i = 0; i < ni->n_attrs; i++)
        if (strcmp(ni->attrs[i]->key, key) == 0) {
            wire_set_str(&ni->attrs[i]->value, value);
            return;
        }
    ni->attrs = wq_realloc(ni->attrs, (ni->n_attrs + 1) * sizeof *ni->attrs);
    Wslq__NodeAttr *a = wq_malloc(sizeof *a);
    wslq__node_attr__init(a);
    a->key = wq_strdup(key);
    a->value = wq_strdup(value);
    ni->attrs[ni->n_attrs++] = a;
}

/* The node's tags into its NodeInfo, rebuilt only when they differ. */
static void
refresh_tags(node_t *nd)
{
    Wslq__NodeInfo *ni = nd->info;
    size_t n = 0, same = 1;
    const char *p = nd->tags;
    while (*p) {
        size_t len = strcspn(p, ",");
        same = same && n < ni->n_tags && strlen(ni->tags[n]) == len &&
               strncmp(ni->tags[n], p, len) == 0;
        n++;
        p += len + (p[len] == ',');
    }
    if (same && n == ni->n_tags)
        return;
    for (size_t i = 0; i < ni->n_tags; i++)
        free(ni->tags[i]);
    free(ni->tags);
    ni->tags = n ? wq_calloc(n, sizeof *ni->tags) : NULL;
    ni->n_tags = 0;
    for (p = nd->tags; *p;) {
        size_t len = strcspn(p, ",");
        ni->tags[ni->n_tags++] = wq_strndup(p, len);
        p += len + (p[len] == ',');
    }
}

void
nodes_refresh(sched_t *self, node_t *nd)
{
    Wslq__NodeInfo *ni = nd->info;
    ni->cpus_alloc = 0;
    ni->mem_alloc_mb = 0;
    for (size_t g = 0; g < ni->n_gpus; g++)
        ni->gpus[g]->job_id = 0;
    gpushare_refresh_begin(ni);
    /* only STARTING and RUNNING jobs hold parts, and they are all in the live set: pending
     * jobs, however many, cost nothing here */
    size_t n_live;
    job_t *const *live = place_live(self, &n_live);
    for (size_t j = 0; j < n_live; j++) {
        job_t *job = live[j];
        for (size_t k = 0; k < job->info->n_allocs; k++) {
            const Wslq__Alloc *a = job->info->allocs[k];
            if (!jobsm_part_holds(&job->sm, job->info, k) || strcmp(a->node, ni->name) != 0)
                continue;
            ni->cpus_alloc += job->info->spec->cpus_per_node;
            ni->mem_alloc_mb += job->info->spec->mem_mb_per_node;
            if (gpushare_refresh_part(ni, job->info->id, a))
                continue;
            for (size_t g = 0; g < ni->n_gpus; g++)
                for (size_t x = 0; x < a->n_gpus; x++)
                    if (ni->gpus[g]->index == a->gpus[x])
                        ni->gpus[g]->job_id = job->info->id;
        }
    }
    gpushare_refresh_end(ni);
    ni->drained = nd->drained;
    wire_set_str(&ni->owner, nodes_owner_policy_name(nd->owner_policy));
    wire_set_str(&ni->owner_state, nodes_owner_state_name(nd->owner_state));
    wire_set_str(&ni->owner_why, nd->owner_why);
    wire_set_str(&ni->owner_user, nd->owner_user);
    ni->gpu_resets = nd->gpu_resets;
    {
        uint64_t ids[WIRE_MAX_RUNNING];
        size_t ns = preempt_suspended_on(self, nd, ids, WIRE_MAX_RUNNING);
        free(ni->suspended_jobs);
        ni->suspended_jobs = ns ? wq_malloc(ns * sizeof *ids) : NULL;
        if (ns)
            memcpy(ni->suspended_jobs, ids, ns * sizeof *ids);
        ni->n_suspended_jobs = ns;
    }
    wire_set_str(&ni->drain_reason, nd->drained ? nd->drain.reason : "");
    wire_set_str(&ni->drain_by, nd->drained ? nd->drain.by : "");
    ni->drain_since_ms = nd->drained ? nd->drain.since_ms : 0;
    refresh_tags(nd);
    const char *state = node_state_names[nd->state];
    if (nd->state == NODE_ALIVE && nd->drained) {
        /* draining while jobs still hold some of it, then drained */
        int busy = ni->cpus_alloc > 0 || ni->mem_alloc_mb > 0;
        for (size_t g = 0; g < ni->n_gpus; g++)
            busy |= ni->gpus[g]->job_id != 0;
        state = busy ? "draining" : "drained";
    } else if (nd->state == NODE_ALIVE && !nodes_takes_jobs(nd) && !nodes_owner_blocks(nd)) {
        state = "full"; /* its spool: no new jobs until there is room */
    } else if (nd->state == NODE_ALIVE && (ni->cpus_alloc > 0 || ni->mem_alloc_mb > 0)) {
        unsigned used = 0;
        for (size_t g = 0; g < ni->n_gpus; g++)
            used += ni->gpus[g]->job_id != 0;
        state = (used == ni->n_gpus && ni->n_gpus > 0) || ni->cpus_alloc >= ni->cpus ? "allocated"
                                                                                     : "mixed";
    }
    wire_set_str(&ni->state, state);
}

const char *
nodes_owner_state_name(uint32_t s)
{
    static const char *const names[] = {"unknown", "away", "present", "gaming"};
    return s < 4 ? names[s] : "unknown";
}

const char *
nodes_owner_policy_name(uint32_t p)
{
    static const char *const names[] = {"ignore", "yield", "suspend", "evict"};
    return p < 4 ? names[p] : "ignore";
}

/* Alive, not drained, room to spool output. */
static int
takes_jobs_but_owner(const node_t *nd)
{
    const Wslq__NodeCheck *disk =
        nodecheck_find(nd->info->checks, nd->info->n_checks, "disk.spool");
    return nd->state == NODE_ALIVE && !nd->drained &&
           (disk == NULL || disk->verdict != WSLQ__CHECK_VERDICT__CHECK_FAIL);
}

int
nodes_owner_blocks(const node_t *nd)
{
    /* yield, suspend and evict all keep new jobs away while the owner is not away */
    return nd->owner_policy >= 1 && nd->owner_state != 1 && takes_jobs_but_owner(nd);
}

int
nodes_takes_jobs(const node_t *nd)
{
    return takes_jobs_but_owner(nd) && !nodes_owner_blocks(nd);
}

/* The owner fields of a Register or Heartbeat: logged and replanned when they change. */
static void
owner_report(sched_t *self,
             node_t *nd,
             uint32_t state,
             uint32_t policy,
             const char *why,
             const char *user,
             uint32_t suspend_max_s)
{
    int was_blocked = nodes_owner_blocks(nd);
    int acted = nd->owner_policy >= 2;
    if (nd->owner_state != state || nd->owner_policy != policy ||
        nd->owner_suspend_max_s != suspend_max_s || strcmp(nd->owner_why, why) != 0 ||
        strcmp(nd->owner_user, user ? user : "") != 0)
        self->stats.version++; /* shown (wslq nodes, the dashboard) */
    snprintf(nd->owner_user, sizeof nd->owner_user, "%s", user ? user : "");
    nd->owner_suspend_max_s = suspend_max_s;
    if (nd->owner_state != state || nd->owner_policy != policy)
        log_info("node owner name=%s state=%s policy=%s why=\"%s\"", nd->info->name,
                 nodes_owner_state_name(state), nodes_owner_policy_name(policy), why);
    nd->owner_state = state;
    nd->owner_policy = policy;
    snprintf(nd->owner_why, sizeof nd->owner_why, "%s", why);
    if (was_blocked != nodes_owner_blocks(nd))
        self->dirty = 1; /* the node takes jobs again, or stops */
    if (acted || policy >= 2)
        preempt_owner(self, nd); /* suspend, resume or evict its preemptible jobs */
}

void
nodes_seen(sched_t *self, node_t *nd)
{
    nd->last_seen_mono = wq_clock_mono_ms();
    nd->info->last_seen_ms = wq_clock_wall_ms();
    if (nd->state == NODE_TORPID) {
        log_info("node back name=%s", nd->info->name);
        self->stats.version++;
        nd->state = NODE_ALIVE;
        /* jobs were placed without it only if a pass ran meanwhile: an idle worker whose
         * heartbeat comes just past --torpid costs no pass over the whole backlog */
        if (self->n_passes != nd->torpid_passes)
            self->dirty = 1;
    }
    due_note(self, nd);
}

static void
node_lost(sched_t *self, node_t *nd)
{
    nd->state = NODE_LOST;
    self->stats.version++;
    log_warn("node lost name=%s silent_ms=%" PRId64, nd->info->name,
             wq_clock_mono_ms() - nd->last_seen_mono);
    gang_node_lost(self, nd);
}

uint32_t
nodes_idle_max_ms(int64_t lost_ms)
{
    return lost_ms / 2 > UINT32_MAX ? UINT32_MAX : (uint32_t) (lost_ms / 2);
}

int64_t
nodes_torpid_ms(int64_t torpid_ms, int64_t lost_ms, uint32_t next_hb_ms, int *clamped)
{
    uint32_t max = nodes_idle_max_ms(lost_ms);
    *clamped = next_hb_ms > max;
    int64_t ivl = *clamped ? max : next_hb_ms;
    int64_t t = ivl + ivl / 2;
    return t > torpid_ms ? t : torpid_ms;
}

void
nodes_announce(sched_t *self, node_t *nd, uint32_t next_hb_ms)
{
    int clamped;
    nodes_torpid_ms(self->cfg.torpid_ms, self->cfg.lost_ms, next_hb_ms, &clamped);
    if (clamped && !nd->hb_warned) {
        nd->hb_warned = 1;
        log_warn("node heartbeat interval too long name=%s next_ms=%" PRIu32 " lost_ms=%" PRId64
                 ": taken as %" PRIu32 " ms; set its idle_heartbeat_ms to half of --lost or less",
                 nd->info->name, next_hb_ms, self->cfg.lost_ms,
                 nodes_idle_max_ms(self->cfg.lost_ms));
    }
    nd->next_hb_ms = next_hb_ms;
    due_note(self, nd);
}

static int64_t
node_torpid_ms(const sched_t *self, const node_t *nd)
{
    int clamped;
    return nodes_torpid_ms(self->cfg.torpid_ms, self->cfg.lost_ms, nd->next_hb_ms, &clamped);
}

void
nodes_tick(sched_t *self, int64_t now)
{
    int64_t due = INT64_MAX;
    for (size_t i = 0; i < self->n_nodes; i++) {
        node_t *nd = self->nodes[i];
        int64_t silent = now - nd->last_seen_mono;
        if (nd->state == NODE_ALIVE && silent > node_torpid_ms(self, nd)) {
            nd->state = NODE_TORPID;
            nd->torpid_passes = self->n_passes;
            self->stats.version++;
            log_warn("node torpid name=%s silent_ms=%" PRId64, nd->info->name, silent);
        }
        if (nd->state == NODE_TORPID && silent > self->cfg.lost_ms)
            node_lost(self, nd);
        int64_t t = node_due(self, nd);
        due = t < due ? t : due;
    }
    self->nodes_due = due;
}

int64_t
nodes_next_timer(const sched_t *self)
{
    return self->nodes_due; /* O(1): a heartbeat only ever puts its node's due time later */
}

/* ---------- what workers send ---------- */

void
handle_register(sched_t *self, const msg_t *m)
{
    Wslq__Register *r = m->env->reg;
    if (m->who->kind == WHO_NODE && strcmp(r->name, m->who->name) != 0) {
        /* a node name is bound to its key */
        self->stats.forbidden_total++;
        wq_error_t err;
        wq_fail(&err, WQ_EPERM, "this key belongs to node %s; it cannot register as %.64s",
                m->who->name, r->name);
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    node_t *nd = nodes_by_name(self, r->name);
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
    ni->checks = r->checks;
    ni->n_checks = r->n_checks;
    r->checks = NULL;
    r->n_checks = 0;
    ni->last_seen_ms = wq_clock_wall_ms();
    ni->state = wq_strdup("idle");
    if (nd == NULL) {
        nd = node_add(self, ni);
    } else {
        if (nd->peer.len &&
            (nd->peer.len != m->from->len || memcmp(nd->peer.id, m->from->id, m->from->len) != 0))
            log_warn("node re-registered from another connection name=%s", r->name);
        wslq__node_info__free_unpacked(nd->info, NULL);
        nd->info = ni;
    }
    nd->peer = *m->from;
    self->node_peers_stale = 1;
    nd->state = NODE_ALIVE;
    nd->last_seen_mono = wq_clock_mono_ms();
    nd->clock_known = 0;
    nodes_announce(self, nd, r->next_heartbeat_ms);
    self->stats.version++;
    log_info("node registered name=%s ip=%s cpus=%u mem_mb=%" PRIu64 " gpus=%zu running=%zu",
             ni->name, ni->ip, ni->cpus, ni->mem_mb, ni->n_gpus, r->n_running);
    wq_error_t err = {0};
    sched_db_begin(self);
    if (!self->failed && queue_save_node(self->q, ni, &err) < 0)
        sched_fatal(self, &err);
    /* after the save: test results live in memory only (a restart tests again) */
    selftest_on_register(self, nd, r->inbound_ok, r->probe_port);
    owner_report(self, nd, r->owner_state, r->owner_policy, r->owner_why, r->owner_user,
                 r->owner_suspend_max_s);

    Wslq__RegisterReply rep = WSLQ__REGISTER_REPLY__INIT;
    gang_on_register(self, nd, r, &rep);
    rep.scheduler_time_ms = wq_clock_wall_ms();
    rep.idle_heartbeat_max_ms = nodes_idle_max_ms(self->cfg.lost_ms);
    out_reg_reply(self, m->from, m->env->request_id, &rep);
    gang_free_register_reply(&rep);
    self->dirty = 1;
}

/* The worker's clock against ours, as doctor.time.offset (PASS, or WARN with the fix). */
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
    char v[160];
    Wslq__NodeInfo *ni = nd->info;
    if (mag < CLOCK_WARN_MS) {
        snprintf(v, sizeof v, "offset %c%" PRId64 " ms (rtt %" PRIu32 " ms)", off < 0 ? '-' : '+',
                 mag, hb->clock_rtt_ms);
        nodecheck_set(&ni->checks, &ni->n_checks, "time.offset", WSLQ__CHECK_VERDICT__CHECK_PASS, v,
                      "");
    } else {
        snprintf(v, sizeof v, "offset %c%" PRId64 ".%" PRId64 " s (rtt %" PRIu32 " ms)",
                 off < 0 ? '-' : '+', mag / 1000, (mag % 1000) / 100, hb->clock_rtt_ms);
        nodecheck_set(&ni->checks, &ni->n_checks, "time.offset", WSLQ__CHECK_VERDICT__CHECK_WARN, v,
                      "enable time sync (systemd-timesyncd or chrony) in WSL; WSL's clock drifts "
                      "after the PC sleeps");
    }
    self->stats.version++;
}

void
handle_heartbeat(sched_t *self, const msg_t *m)
{
    node_t *nd = m->node;
    const Wslq__Heartbeat *hb = m->env->heartbeat;
    log_flag(SCHED, "heartbeat name=%s running=%" PRIu32 " next_ms=%" PRIu32, nd->info->name,
             hb->running, hb->next_heartbeat_ms);
    nodes_announce(self, nd, hb->next_heartbeat_ms);
    clock_report(self, nd, hb);
    owner_report(self, nd, hb->owner_state, hb->owner_policy, hb->owner_why, hb->owner_user,
                 hb->owner_suspend_max_s);
    for (size_t i = 0; i < hb->n_checks; i++) {
        const Wslq__NodeCheck *c = hb->checks[i];
        const Wslq__NodeCheck *was = nodecheck_find(nd->info->checks, nd->info->n_checks, c->id);
        if (was != NULL && was->verdict == c->verdict && strcmp(was->summary, c->summary) == 0)
            continue;
        int verdict_changed = was == NULL || was->verdict != c->verdict;
        int blocks = strcmp(c->id, "disk.spool") == 0 &&
                     (c->verdict == WSLQ__CHECK_VERDICT__CHECK_FAIL) !=
                         (was != NULL && was->verdict == WSLQ__CHECK_VERDICT__CHECK_FAIL);
        if (blocks)
            log_warn("node spool %s name=%s: %s",
                     c->verdict == WSLQ__CHECK_VERDICT__CHECK_FAIL ? "full" : "has room again",
                     nd->info->name, c->summary);
        nodecheck_set(&nd->info->checks, &nd->info->n_checks, c->id, c->verdict, c->summary,
                      c->fix);
        if (verdict_changed)
            self->stats.version++; /* a check's verdict changed (wslq doctor, wslq nodes) */
        else
            self->metrics_unpublished = 1; /* its text only (free space): as metrics */
        self->dirty |= blocks;             /* the node takes jobs again, or stops */
    }
    isol_heartbeat_cpus(self, nd, hb);
    for (size_t i = 0; i < hb->n_gpus; i++)
        for (size_t g = 0; g < nd->info->n_gpus; g++) {
            Wslq__GpuInfo *dst = nd->info->gpus[g];
            const Wslq__GpuInfo *src = hb->gpus[i];
            if (dst->index != src->index)
                continue;
            self->metrics_unpublished |=
                dst->mem_used_mb != src->mem_used_mb || dst->temp_c != src->temp_c ||
                dst->util_pct != src->util_pct || dst->power_w != src->power_w ||
                dst->mem_idle_used_mb != src->mem_idle_used_mb ||
                (src->mem_total_mb && dst->mem_total_mb != src->mem_total_mb);
            dst->mem_used_mb = src->mem_used_mb;
            if (src->mem_total_mb)
                dst->mem_total_mb = src->mem_total_mb;
            dst->temp_c = src->temp_c;
            dst->util_pct = src->util_pct;
            dst->power_w = src->power_w;
            dst->mem_idle_used_mb = src->mem_idle_used_mb;
        }
    /* fresh GPU metrics: shown, but not worth a snapshot per heartbeat (METRICS_VERSION_MS);
     * held ones go with the next heartbeat after that, or with any other change first */
    int64_t now = wq_clock_mono_ms();
    if (self->metrics_unpublished && now - self->metrics_bumped_mono >= METRICS_VERSION_MS) {
        self->stats.version++;
        self->metrics_bumped_mono = now;
        self->metrics_unpublished = 0;
    }
}

/* ---------- `wslq nodes` ---------- */

void
handle_nodes(sched_t *self, const msg_t *m)
{
    const char *want = m->env->nodes->name;
    Wslq__NodeInfo **list = wq_calloc(self->n_nodes ? self->n_nodes : 1, sizeof *list);
    size_t n = 0;
    for (size_t i = 0; i < self->n_nodes; i++) {
        node_t *nd = self->nodes[i];
        if (want[0] && strcmp(want, nd->info->name) != 0)
            continue;
        nodes_refresh(self, nd);
        list[n++] = nd->info;
    }
    if (want[0] && n == 0) {
        wq_error_t err;
        wq_fail(&err, WQ_ENOENT, "node %s not found", want);
        out_error(self, m->from, m->env->request_id, &err);
        free(list);
        return;
    }
    Wslq__NodesReply rep = WSLQ__NODES_REPLY__INIT;
    rep.nodes = list;
    rep.n_nodes = n;
    out_nodes_reply(self, m->from, m->env->request_id, &rep);
    free(list);
}

void
nodes_forget(sched_t *self, const char *name)
{
    for (size_t i = 0; i < self->n_nodes; i++) {
        node_t *nd = self->nodes[i];
        if (strcmp(nd->info->name, name) != 0)
            continue;
        if (nd->state != NODE_LOST)
            gang_node_lost(self, nd); /* its parts end lost: jobs fail or requeue */
        wq_error_t err = {0};
        if (queue_forget_node(self->q, name, &err) < 0 ||
            queue_drain_remove(self->q, name, &err) < 0 ||
            queue_tags_put(self->q, name, "", &err) < 0)
            sched_fatal(self, &err);
        wslq__node_info__free_unpacked(nd->info, NULL);
        free(nd);
        self->node_peers_stale = 1;
        memmove(&self->nodes[i], &self->nodes[i + 1],
                (self->n_nodes - i - 1) * sizeof *self->nodes);
        self->n_nodes--;
        self->stats.version++;
        self->dirty = 1;
        return;
    }
}

/* ---------- drain and resume (wslq drain, wslq resume) ---------- */

static void
drain_loaded(const queue_drain_t *d, void *arg)
{
    node_t *nd = nodes_by_name(arg, d->name);
    if (nd == NULL)
        return; /* not known (removing a node removes its row too) */
    nd->drained = 1;
    nd->drain = *d;
}

int
nodes_load_drains(sched_t *self, wq_error_t *err)
{
    return queue_drains_list(self->q, drain_loaded, self, err) < 0 ? -1 : 0;
}

/* 1 while part k of the job holds something on the node. */
static int
job_on_node(const job_t *job, const char *name)
{
    for (size_t k = 0; k < job->info->n_allocs; k++)
        if (jobsm_part_holds(&job->sm, job->info, k) &&
            strcmp(job->info->allocs[k]->node, name) == 0)
            return 1;
    return 0;
}

int
nodes_drain(sched_t *self,
            const char *name,
            const char *reason,
            const char *by,
            int now,
            unsigned *running,
            wq_error_t *err)
{
    node_t *nd = nodes_by_name(self, name);
    if (nd == NULL)
        return wq_fail(err, WQ_ENOENT, "node %.128s not found", name);
    queue_drain_t d = {0};
    snprintf(d.name, sizeof d.name, "%s", name);
    snprintf(d.reason, sizeof d.reason, "%s", reason);
    snprintf(d.by, sizeof d.by, "%s", by);
    /* draining again changes the reason, not when it began */
    d.since_ms = nd->drained ? nd->drain.since_ms : wq_clock_wall_ms();
    if (queue_drain_put(self->q, &d, err) < 0) {
        sched_fatal(self, err);
        return -1;
    }
    nd->drained = 1;
    nd->drain = d;
    self->stats.version++;
    self->dirty = 1;
    log_warn("node drained name=%s by=%s now=%d reason=\"%s\"", name, by, now, reason);
    /* Collect first: an ended job leaves self->jobs while we walk it. */
    size_t n = 0;
    job_t **on = wq_calloc(self->n_jobs ? self->n_jobs : 1, sizeof *on);
    for (size_t j = 0; j < self->n_jobs; j++)
        if (job_on_node(self->jobs[j], name))
            on[n++] = self->jobs[j];
    *running = (unsigned) n;
    if (now) {
        char why[WIRE_MAX_DRAIN_REASON + WIRE_MAX_NAME * 2 + 64];
        snprintf(why, sizeof why, "node %s drained by %s%s%s", name, by, reason[0] ? ": " : "",
                 reason);
        for (size_t i = 0; i < n && !self->failed; i++) {
            jobsm_event_t ev = {.type = JOBSM_EV_DRAIN, .text = why};
            jobs_apply(self, on[i], &ev);
        }
    }
    free(on);
    return self->failed ? -1 : 0;
}

int
nodes_resume(sched_t *self, const char *name, const char *by, wq_error_t *err)
{
    node_t *nd = nodes_by_name(self, name);
    if (nd == NULL)
        return wq_fail(err, WQ_ENOENT, "node %.128s not found", name);
    if (!nd->drained)
        return wq_fail(err, WQ_EINVAL, "node %.128s is not drained", name);
    if (queue_drain_remove(self->q, name, err) < 0) {
        sched_fatal(self, err);
        return -1;
    }
    nd->drained = 0;
    memset(&nd->drain, 0, sizeof nd->drain);
    self->stats.version++;
    self->dirty = 1;
    log_info("node resumed name=%s by=%s", name, by);
    return 0;
}

/* ---------- tags (wslq admin node tag) and what a job asks of its nodes ---------- */

static void
tags_loaded(const char *name, const char *tags, void *arg)
{
    node_t *nd = nodes_by_name(arg, name);
    if (nd != NULL)
        snprintf(nd->tags, sizeof nd->tags, "%s", tags);
}

int
nodes_load_tags(sched_t *self, wq_error_t *err)
{
    return queue_tags_list(self->q, tags_loaded, self, err) < 0 ? -1 : 0;
}

int
nodes_tag(
    sched_t *self, const char *name, char *const *tags, size_t n, const char *by, wq_error_t *err)
{
    node_t *nd = nodes_by_name(self, name);
    if (nd == NULL)
        return wq_fail(err, WQ_ENOENT, "node %.128s not found", name);
    char joined[sizeof nd->tags] = "";
    size_t off = 0;
    for (size_t i = 0; i < n && i < WIRE_MAX_TAGS; i++) {
        int dup = 0;
        for (size_t k = 0; k < i; k++)
            dup |= strcmp(tags[k], tags[i]) == 0;
        if (!dup)
            off += (size_t) snprintf(joined + off, sizeof joined - off, "%s%s", off ? "," : "",
                                     tags[i]);
    }
    if (queue_tags_put(self->q, name, joined, err) < 0) {
        sched_fatal(self, err);
        return -1;
    }
    snprintf(nd->tags, sizeof nd->tags, "%s", joined);
    self->stats.version++;
    self->dirty = 1; /* jobs waiting for these tags may fit now */
    log_info("node tags name=%s tags=%s by=%s", name, joined[0] ? joined : "(none)", by);
    return 0;
}

static int
has_tag(const node_t *nd, const char *tag)
{
    size_t want = strlen(tag);
    for (const char *p = nd->tags; *p;) {
        size_t len = strcspn(p, ",");
        if (len == want && strncmp(p, tag, len) == 0)
            return 1;
        p += len + (p[len] == ',');
    }
    return 0;
}

int
nodes_match(const node_t *nd, const Wslq__JobSpec *spec)
{
    const char *name = nd->info->name;
    if (spec->n_nodelist > 0) {
        int listed = 0;
        for (size_t i = 0; i < spec->n_nodelist && !listed; i++)
            listed = strcmp(spec->nodelist[i], name) == 0;
        if (!listed)
            return 0;
    }
    for (size_t i = 0; i < spec->n_exclude; i++)
        if (strcmp(spec->exclude[i], name) == 0)
            return 0;
    for (size_t i = 0; i < spec->n_constraints; i++)
        if (!has_tag(nd, spec->constraints[i]))
            return 0;
    return 1;
}
