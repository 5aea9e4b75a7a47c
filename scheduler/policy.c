/* Placement; see policy.h. */
#include "scheduler/policy.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

unsigned
policy_popcount(uint64_t mask)
{
    return (unsigned) __builtin_popcountll(mask);
}

/* 1 if 'hay' contains 'needle' (len bytes), ignoring case. */
static int
contains_nocase(const char *hay, const char *needle, size_t len)
{
    if (len == 0)
        return 0;
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, len) == 0)
            return 1;
    return 0;
}

int
policy_gpu_type_match(const char *type, const policy_gpu_t *g)
{
    if (type == NULL || type[0] == '\0')
        return 1;
    const char *model = g->model != NULL ? g->model : "";
    for (const char *p = type; *p;) {
        size_t len = strcspn(p, ",");
        const char *w = p;
        size_t wl = len;
        while (wl > 0 && isspace((unsigned char) *w))
            w++, wl--;
        while (wl > 0 && isspace((unsigned char) w[wl - 1]))
            wl--;
        if (wl == 2 && strncasecmp(w, "dx", 2) == 0) {
            if (g->dx)
                return 1;
        } else if (!g->dx && contains_nocase(model, w, wl)) {
            return 1;
        }
        p += len + (p[len] == ',');
    }
    return 0;
}

uint64_t
policy_gpu_free_mb(const policy_node_t *nd, unsigned index)
{
    if (index >= WIRE_MAX_GPUS || !(nd->gpu_present & (1ULL << index)) ||
        (nd->gpu_used & (1ULL << index)))
        return 0;
    const policy_gpu_t *g = &nd->gpu[index];
    uint64_t held = (uint64_t) g->other_mb + g->shared_mb;
    return g->mem_mb > held ? g->mem_mb - held : 0;
}

/* 1 if GPU b is one the job could ever use: its type and memory minimum, and for a share,
 * memory of at least the share. */
static int
gpu_kind_ok(const policy_node_t *nd, unsigned b, const policy_req_t *req)
{
    const policy_gpu_t *g = &nd->gpu[b];
    if (!policy_gpu_type_match(req->gpu_type, g))
        return 0;
    if (req->gpu_mem_min_mb > 0 && g->mem_mb < req->gpu_mem_min_mb)
        return 0;
    return req->gpu_mem_mb == 0 || g->mem_mb >= req->gpu_mem_mb;
}

/* The node's GPUs the job could ever use (the whole node idle). */
static int
gpu_filtered(const policy_req_t *req)
{
    return (req->gpu_type != NULL && req->gpu_type[0] != '\0') || req->gpu_mem_min_mb > 0 ||
           req->gpu_mem_mb > 0;
}

static uint64_t
gpus_ever(const policy_node_t *nd, const policy_req_t *req)
{
    if (!gpu_filtered(req))
        return nd->gpu_present;
    uint64_t out = 0;
    for (uint64_t m = nd->gpu_present; m != 0; m &= m - 1) {
        unsigned b = (unsigned) __builtin_ctzll(m);
        if (gpu_kind_ok(nd, b, req))
            out |= 1ULL << b;
    }
    return out;
}

/* The node's GPUs the job could get now: whole jobs only GPUs nobody holds; sharing jobs
 * GPUs not held whole with room for the share. */
static uint64_t
gpus_now(const policy_node_t *nd, const policy_req_t *req)
{
    uint64_t ever = gpus_ever(nd, req), out = 0;
    if (req->gpu_mem_mb == 0)
        return ever & ~nd->gpu_used & ~nd->gpu_shared;
    for (unsigned b = 0; b < WIRE_MAX_GPUS; b++)
        if ((ever & (1ULL << b)) && policy_gpu_free_mb(nd, b) >= req->gpu_mem_mb)
            out |= 1ULL << b;
    return out;
}

static int
fits_empty(const policy_node_t *nd, const policy_req_t *req)
{
    return policy_popcount(gpus_ever(nd, req)) >= req->gpus_per_node &&
           nd->cpus >= req->cpus_per_node && nd->mem_mb >= req->mem_mb_per_node;
}

/* " of type 4090" for the job's type, else "". */
static void
type_words(const policy_req_t *req, char *buf, size_t size)
{
    if (req->gpu_type != NULL && req->gpu_type[0] != '\0')
        snprintf(buf, size, " of type %.100s", req->gpu_type);
    else if (size > 0)
        buf[0] = '\0';
}

/* Why no node has the GPUs the job asks for (policy_feasible), when GPU filters are set:
 * returns 0 with 'why' filled, or 1 if some node has enough of them. */
static int
gpus_feasible(
    const policy_node_t *nodes, size_t n, const policy_req_t *req, char *why, size_t whylen)
{
    unsigned most = 0, typed = 0;
    uint64_t largest = 0;
    int unknown_mem = 0;
    char models[160] = "";
    size_t mlen = 0;
    for (size_t i = 0; i < n; i++) {
        const policy_node_t *nd = &nodes[i];
        unsigned c = policy_popcount(gpus_ever(nd, req));
        if (c > most)
            most = c;
        for (unsigned b = 0; b < WIRE_MAX_GPUS; b++) {
            if (!(nd->gpu_present & (1ULL << b)))
                continue;
            const policy_gpu_t *g = &nd->gpu[b];
            const char *m = g->dx ? "dx" : g->model && g->model[0] ? g->model : "unknown";
            if (mlen + strlen(m) + 3 < sizeof models && !strstr(models, m))
                mlen += (size_t) snprintf(models + mlen, sizeof models - mlen, "%s%s",
                                          mlen ? ", " : "", m);
            if (!policy_gpu_type_match(req->gpu_type, g))
                continue;
            typed++;
            if (g->mem_mb > largest)
                largest = g->mem_mb;
            unknown_mem |= g->mem_mb == 0;
        }
    }
    if (most >= req->gpus_per_node)
        return 1;
    char tw[128];
    type_words(req, tw, sizeof tw);
    uint64_t need = req->gpu_mem_min_mb > req->gpu_mem_mb ? req->gpu_mem_min_mb : req->gpu_mem_mb;
    if (typed == 0)
        snprintf(why, whylen, "no GPU matches --gpu-type %.100s (the GPUs here: %s)", req->gpu_type,
                 models[0] ? models : "none");
    else if (need > 0 && largest < need && largest == 0 && unknown_mem)
        snprintf(why, whylen,
                 "no GPU%s reports its memory, which --gpu-mem and --gpu-mem-min need "
                 "(declared GPUs report none)",
                 tw);
    else if (need > 0 && largest < need)
        snprintf(why, whylen, "no GPU%s has %llu MiB of memory; the largest has %llu MiB", tw,
                 (unsigned long long) need, (unsigned long long) largest);
    else
        snprintf(why, whylen, "no node has %u GPU%s%s%s; the most on one node is %u",
                 req->gpus_per_node, req->gpus_per_node == 1 ? "" : "s", tw,
                 need > 0 ? " with that memory" : "", most);
    return 0;
}

int
policy_feasible(
    const policy_node_t *nodes, size_t n, const policy_req_t *req, char *why, size_t whylen)
{
    unsigned max_gpus = 0, max_cpus = 0, fitting = 0, fitting_inbound = 0;
    unsigned passed = 0, pending = 0, failed = 0, no_inbound = 0;
    uint64_t max_mem = 0;
    for (size_t i = 0; i < n; i++) {
        const policy_node_t *nd = &nodes[i];
        unsigned g = policy_popcount(nd->gpu_present);
        if (g > max_gpus)
            max_gpus = g;
        if (nd->cpus > max_cpus)
            max_cpus = nd->cpus;
        if (nd->mem_mb > max_mem)
            max_mem = nd->mem_mb;
        if (fits_empty(nd, req)) {
            fitting++;
            if (!nd->inbound_ok)
                no_inbound++;
            else if (nd->inbound_test == POLICY_INBOUND_FAILED)
                failed++;
            else if (nd->inbound_test == POLICY_INBOUND_PENDING)
                pending++;
            else
                passed++;
            if (nd->inbound_ok && nd->inbound_test != POLICY_INBOUND_FAILED)
                fitting_inbound++;
        }
    }
    if (n == 0) {
        snprintf(why, whylen, "no node has registered");
        return 0;
    }
    if (max_gpus < req->gpus_per_node) {
        snprintf(why, whylen, "no node has %u GPU%s; the largest has %u", req->gpus_per_node,
                 req->gpus_per_node == 1 ? "" : "s", max_gpus);
        return 0;
    }
    if (gpu_filtered(req) && !gpus_feasible(nodes, n, req, why, whylen))
        return 0;
    if (max_cpus < req->cpus_per_node) {
        snprintf(why, whylen, "no node has %u CPUs; the largest has %u", req->cpus_per_node,
                 max_cpus);
        return 0;
    }
    if (max_mem < req->mem_mb_per_node) {
        snprintf(why, whylen, "no node has %llu MiB of memory; the largest has %llu MiB",
                 (unsigned long long) req->mem_mb_per_node, (unsigned long long) max_mem);
        return 0;
    }
    if (fitting == 0) {
        snprintf(why, whylen, "no single node has %u GPUs, %u CPUs and %llu MiB together",
                 req->gpus_per_node, req->cpus_per_node, (unsigned long long) req->mem_mb_per_node);
        return 0;
    }
    if (req->nodes > 1 && fitting_inbound < req->nodes) {
        /* Nodes not tested yet count as possible: only failed tests and nodes that say
         * they take no inbound connections make a job impossible. */
        int k = snprintf(why, whylen,
                         "the job needs %u nodes that each fit it and take inbound connections; "
                         "%u passed the inbound test",
                         req->nodes, passed);
        if (k > 0 && (size_t) k < whylen && pending)
            k += snprintf(why + k, whylen - (size_t) k, ", %u %s not tested yet", pending,
                          pending == 1 ? "is" : "are");
        if (k > 0 && (size_t) k < whylen && failed)
            k += snprintf(why + k, whylen - (size_t) k, ", %u failed it", failed);
        if (k > 0 && (size_t) k < whylen && no_inbound)
            k += snprintf(why + k, whylen - (size_t) k,
                          ", %u %s no inbound connections (NAT mode or inbound_ok = no)",
                          no_inbound, no_inbound == 1 ? "reports" : "report");
        if (k > 0 && (size_t) k < whylen && (failed || no_inbound))
            snprintf(why + k, whylen - (size_t) k, " (wslq doctor --node NAME: net.inbound)");
        return 0;
    }
    return 1;
}

/* Can the node take its share of the job now? 'untested_ok': count a node whose inbound
 * test has not finished as able (to tell "waits for the test" from "waits for GPUs"). */
static int
fits_now2(const policy_node_t *nd, const policy_req_t *req, int untested_ok)
{
    uint64_t free_gpus = gpus_now(nd, req);
    int inbound = nd->inbound_ok && (nd->inbound_test == POLICY_INBOUND_PASSED ||
                                     (untested_ok && nd->inbound_test == POLICY_INBOUND_PENDING));
    return nd->eligible && (req->nodes == 1 || inbound) &&
           policy_popcount(free_gpus) >= req->gpus_per_node &&
           nd->cpus - (nd->cpus_used < nd->cpus ? nd->cpus_used : nd->cpus) >= req->cpus_per_node &&
           (req->mem_mb_per_node == 0 ||
            nd->mem_mb - (nd->mem_used_mb < nd->mem_mb ? nd->mem_used_mb : nd->mem_mb) >=
                req->mem_mb_per_node);
}

static int
fits_now(const policy_node_t *nd, const policy_req_t *req)
{
    return fits_now2(nd, req, 0);
}

/* 'count' of the GPUs in 'mask' for a sharing job: those already shared first (whole GPUs
 * stay free for whole-GPU jobs), then the least free memory that fits (big holes stay for big
 * shares), then the lowest index. */
static uint64_t
pack_bits(const policy_node_t *nd, uint64_t mask, unsigned count)
{
    uint64_t out = 0;
    while (count-- > 0) {
        int best = -1;
        uint64_t best_free = 0;
        int best_shared = 0;
        for (unsigned b = 0; b < WIRE_MAX_GPUS; b++) {
            if (!(mask & ~out & (1ULL << b)))
                continue;
            int sh = (nd->gpu_shared >> b) & 1;
            uint64_t f = policy_gpu_free_mb(nd, b);
            if (best < 0 || sh > best_shared || (sh == best_shared && f < best_free)) {
                best = (int) b;
                best_free = f;
                best_shared = sh;
            }
        }
        if (best < 0)
            break;
        out |= 1ULL << best;
    }
    return out;
}

static uint64_t
lowest_bits(uint64_t mask, unsigned count)
{
    uint64_t out = 0;
    for (unsigned b = 0; b < 64 && count > 0; b++)
        if (mask & (1ULL << b)) {
            out |= 1ULL << b;
            count--;
        }
    return out;
}

/* The wait reason of a one-node job that chooses or shares GPUs: what it waits for, and for
 * a share the most any matching GPU has free now. */
static void
wait_words(const policy_node_t *nodes, size_t n, const policy_req_t *req, char *why, size_t whylen)
{
    char tw[128];
    type_words(req, tw, sizeof tw);
    if (req->gpu_mem_mb == 0) {
        snprintf(why, whylen, "waiting for resources: %u GPU%s%s, %u CPU%s free on one node",
                 req->gpus_per_node, req->gpus_per_node == 1 ? "" : "s", tw, req->cpus_per_node,
                 req->cpus_per_node == 1 ? "" : "s");
        return;
    }
    uint64_t most = 0;
    for (size_t i = 0; i < n; i++) {
        if (!nodes[i].eligible)
            continue;
        uint64_t ever = gpus_ever(&nodes[i], req);
        for (unsigned b = 0; b < WIRE_MAX_GPUS; b++)
            if ((ever & (1ULL << b)) && policy_gpu_free_mb(&nodes[i], b) > most)
                most = policy_gpu_free_mb(&nodes[i], b);
    }
    snprintf(why, whylen,
             "waiting for GPU memory: %u GPU%s%s with %llu MiB free each, %u CPU%s on one node "
             "(the most free on a GPU now: %llu MiB)",
             req->gpus_per_node, req->gpus_per_node == 1 ? "" : "s", tw,
             (unsigned long long) req->gpu_mem_mb, req->cpus_per_node,
             req->cpus_per_node == 1 ? "" : "s", (unsigned long long) most);
}

int
policy_place(const policy_node_t *nodes,
             size_t n,
             const policy_req_t *req,
             policy_choice_t *out,
             char *why,
             size_t whylen)
{
    if (req->nodes == 0 || req->nodes > WIRE_MAX_NODES) {
        snprintf(why, whylen, "node count %u is out of range", req->nodes);
        return 0;
    }
    unsigned chosen = 0;
    char taken[WIRE_MAX_NODES * 4] = {0};
    size_t limit = n < sizeof taken ? n : sizeof taken;
    /* Pick req->nodes nodes one by one, each time the best fit among the rest: the node
     * with the fewest free GPUs, then the fewest free CPUs, then the lowest index. */
    while (chosen < req->nodes) {
        size_t best = (size_t) -1;
        unsigned best_free = 0, best_cpu = 0;
        for (size_t i = 0; i < limit; i++) {
            if (taken[i] || !fits_now(&nodes[i], req))
                continue;
            unsigned f = policy_popcount(gpus_now(&nodes[i], req));
            unsigned c = nodes[i].cpus - nodes[i].cpus_used;
            if (best == (size_t) -1 || f < best_free || (f == best_free && c < best_cpu)) {
                best = i;
                best_free = f;
                best_cpu = c;
            }
        }
        if (best == (size_t) -1)
            break;
        taken[best] = 1;
        out->node[chosen] = best;
        uint64_t avail = gpus_now(&nodes[best], req);
        out->gpus[chosen] = req->gpu_mem_mb > 0 ? pack_bits(&nodes[best], avail, req->gpus_per_node)
                                                : lowest_bits(avail, req->gpus_per_node);
        chosen++;
    }
    if (chosen < req->nodes) {
        if (req->nodes == 1 && gpu_filtered(req))
            wait_words(nodes, limit, req, why, whylen);
        else if (req->nodes == 1)
            snprintf(why, whylen, "waiting for resources: %u GPU%s, %u CPU%s free on one node",
                     req->gpus_per_node, req->gpus_per_node == 1 ? "" : "s", req->cpus_per_node,
                     req->cpus_per_node == 1 ? "" : "s");
        else {
            unsigned untested = 0;
            for (size_t i = 0; i < limit; i++)
                untested += !fits_now(&nodes[i], req) && fits_now2(&nodes[i], req, 1);
            if (untested > 0 && chosen + untested >= req->nodes)
                snprintf(why, whylen,
                         "waiting for the inbound connection test of %u node%s (%u of %u "
                         "nodes ready)",
                         untested, untested == 1 ? "" : "s", chosen, req->nodes);
            else
                snprintf(why, whylen,
                         "waiting for resources: %u nodes with %u free GPUs each (%u now)",
                         req->nodes, req->gpus_per_node, chosen);
        }
        return 0;
    }
    out->n = chosen;
    return 1;
}

void
policy_take(policy_node_t *nodes, const policy_req_t *req, const policy_choice_t *c)
{
    for (unsigned i = 0; i < c->n; i++) {
        policy_node_t *nd = &nodes[c->node[i]];
        if (req->gpu_mem_mb > 0) {
            nd->gpu_shared |= c->gpus[i];
            for (unsigned b = 0; b < WIRE_MAX_GPUS; b++)
                if (c->gpus[i] & (1ULL << b))
                    nd->gpu[b].shared_mb += req->gpu_mem_mb;
        } else {
            nd->gpu_used |= c->gpus[i];
        }
        nd->cpus_used += req->cpus_per_node;
        nd->mem_used_mb += req->mem_mb_per_node;
    }
}
