/* Placement; see policy.h. */
#include "scheduler/policy.h"

#include <stdio.h>
#include <string.h>

unsigned
policy_popcount(uint64_t mask)
{
    return (unsigned) __builtin_popcountll(mask);
}

static int
fits_empty(const policy_node_t *nd, const policy_req_t *req)
{
    return policy_popcount(nd->gpu_present) >= req->gpus_per_node &&
           nd->cpus >= req->cpus_per_node && nd->mem_mb >= req->mem_mb_per_node;
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
    uint64_t free_gpus = nd->gpu_present & ~nd->gpu_used;
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
            unsigned f = policy_popcount(nodes[i].gpu_present & ~nodes[i].gpu_used);
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
        out->gpus[chosen] =
            lowest_bits(nodes[best].gpu_present & ~nodes[best].gpu_used, req->gpus_per_node);
        chosen++;
    }
    if (chosen < req->nodes) {
        if (req->nodes == 1)
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
        nd->gpu_used |= c->gpus[i];
        nd->cpus_used += req->cpus_per_node;
        nd->mem_used_mb += req->mem_mb_per_node;
    }
}
