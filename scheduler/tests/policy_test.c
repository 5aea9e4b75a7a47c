/* policy: no GPU shared, best fit, gang all-or-nothing (also where a partial placement is
 * possible), placement against an independent restatement of the rules, impossible requests
 * explained. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
/* after the standard headers */
#include <cmocka.h>

#include "scheduler/policy.h"

static policy_node_t
node(const char *name, unsigned gpus, unsigned cpus, int inbound)
{
    policy_node_t n = {
        .name = name, .eligible = 1, .inbound_ok = inbound, .cpus = cpus, .mem_mb = 16384};
    n.gpu_present = gpus ? ((1ULL << gpus) - 1) : 0;
    return n;
}

static void
test_no_gpu_shared(void **state)
{
    (void) state;
    policy_node_t nodes[] = {node("a", 2, 8, 1), node("b", 2, 8, 1)};
    policy_req_t req = {.nodes = 1, .gpus_per_node = 1, .cpus_per_node = 1};
    uint64_t seen[2] = {0, 0};
    for (int i = 0; i < 4; i++) {
        policy_choice_t c;
        char why[128];
        assert_int_equal(policy_place(nodes, 2, &req, &c, why, sizeof why), 1);
        assert_int_equal(c.n, 1);
        assert_int_equal(seen[c.node[0]] & c.gpus[0], 0); /* never handed out twice */
        seen[c.node[0]] |= c.gpus[0];
        policy_take(nodes, &req, &c);
    }
    policy_choice_t c;
    char why[128];
    assert_int_equal(policy_place(nodes, 2, &req, &c, why, sizeof why), 0);
    assert_non_null(strstr(why, "waiting for resources"));
}

static void
test_best_fit_keeps_big_holes(void **state)
{
    (void) state;
    policy_node_t nodes[] = {node("big", 4, 8, 1), node("small", 1, 8, 1)};
    policy_req_t req = {.nodes = 1, .gpus_per_node = 1, .cpus_per_node = 1};
    policy_choice_t c;
    char why[128];
    assert_int_equal(policy_place(nodes, 2, &req, &c, why, sizeof why), 1);
    assert_int_equal(c.node[0], 1); /* the 1-GPU node, leaving 4 GPUs together */
    assert_int_equal(c.gpus[0], 1);
}

static void
test_gang_all_or_nothing(void **state)
{
    (void) state;
    policy_node_t nodes[] = {node("a", 2, 8, 1), node("b", 2, 8, 1), node("c", 2, 8, 0)};
    policy_req_t req = {.nodes = 3, .gpus_per_node = 2, .cpus_per_node = 1};
    policy_choice_t c;
    char why[160];
    /* c cannot take inbound connections: a 3-node job must wait although a and b could take
     * two of its three parts, and say it waits for resources, not for c's inbound test (c
     * never takes one). Waiting is the whole answer (0): the pass in scheduler/place.c takes
     * resources only for a choice policy_place returned 1 for, and policy_place cannot change
     * the const snapshot, so there is nothing else to check. Breaks this catches: partial
     * placement ("if (chosen < req->nodes)" weakened to "if (chosen == 0)"), and a node that
     * reports no inbound connections counted as "not tested yet" in fits_now2(). */
    assert_int_equal(policy_place(nodes, 3, &req, &c, why, sizeof why), 0);
    assert_string_equal(why, "waiting for resources: 3 nodes with 2 free GPUs each (2 now)");
    req.nodes = 2;
    assert_int_equal(policy_place(nodes, 3, &req, &c, why, sizeof why), 1);
    assert_int_equal(c.n, 2);
    assert_true(c.node[0] != c.node[1]);
    assert_true(c.node[0] != 2 && c.node[1] != 2);
    assert_int_equal(c.gpus[0], 3);
}

/* A partial placement is possible and must not happen: every node passed the inbound test
 * and two of three are idle, but one GPU of the third is held. Breaks this catches: policy_place
 * returning 1 with the nodes it found when they are fewer than req->nodes (e.g. "if (chosen <
 * req->nodes)" weakened to "if (chosen == 0)"), or handing a node fewer GPUs than asked. */
static void
test_gang_partial_possible_not_taken(void **state)
{
    (void) state;
    policy_node_t nodes[] = {node("a", 2, 8, 1), node("b", 2, 8, 1), node("c", 2, 8, 1)};
    nodes[0].gpu_used = 1;
    policy_req_t three = {.nodes = 3, .gpus_per_node = 2, .cpus_per_node = 1};
    policy_choice_t c;
    memset(&c, 0, sizeof c);
    char why[160];
    assert_int_equal(policy_place(nodes, 3, &three, &c, why, sizeof why), 0);
    assert_string_equal(why, "waiting for resources: 3 nodes with 2 free GPUs each (2 now)");
    /* Nothing held back: a smaller gang behind it takes b and c whole. */
    policy_req_t two = {.nodes = 2, .gpus_per_node = 2, .cpus_per_node = 1};
    assert_int_equal(policy_place(nodes, 3, &two, &c, why, sizeof why), 1);
    assert_int_equal(c.n, 2);
    assert_true((c.node[0] == 1 && c.node[1] == 2) || (c.node[0] == 2 && c.node[1] == 1));
    assert_int_equal(c.gpus[0], 3);
    assert_int_equal(c.gpus[1], 3);
    policy_take(nodes, &two, &c);
    assert_int_equal(policy_place(nodes, 3, &three, &c, why, sizeof why), 0);
    /* Within a node too: 2 GPUs asked, 1 free, so no placement (not one GPU). */
    policy_req_t one = {.nodes = 1, .gpus_per_node = 2, .cpus_per_node = 1};
    assert_int_equal(policy_place(nodes, 3, &one, &c, why, sizeof why), 0);
}

/* The placement rules, restated independently: can this node take one part of req now? */
static int
oracle_fits(const policy_node_t *nd, const policy_req_t *req)
{
    uint64_t free_gpus = nd->gpu_present & ~nd->gpu_used;
    unsigned ngpu = 0;
    for (int b = 0; b < 64; b++)
        ngpu += (free_gpus >> b) & 1;
    long cpus = (long) nd->cpus - (long) nd->cpus_used;
    long long mem = (long long) nd->mem_mb - (long long) nd->mem_used_mb;
    return nd->eligible &&
           (req->nodes == 1 || (nd->inbound_ok && nd->inbound_test == POLICY_INBOUND_PASSED)) &&
           ngpu >= req->gpus_per_node && cpus >= (long) req->cpus_per_node &&
           (req->mem_mb_per_node == 0 || mem >= (long long) req->mem_mb_per_node);
}

static uint32_t
next_rand(uint32_t *seed)
{
    *seed = *seed * 1664525u + 1013904223u;
    return *seed >> 8;
}

/* Random snapshots and requests against that restatement: a job is placed exactly when enough
 * nodes can each take a part, and then on req->nodes distinct such nodes with exactly
 * gpus_per_node free GPUs each; otherwise not at all. Catches partial placement in any form
 * (fewer nodes, fewer GPUs, a busy GPU) and a job left waiting that fits. */
static void
test_place_matches_oracle(void **state)
{
    (void) state;
    uint32_t seed = 12345;
    for (int round = 0; round < 5000; round++) {
        policy_node_t nodes[6];
        size_t n = 1 + next_rand(&seed) % 6;
        for (size_t i = 0; i < n; i++) {
            unsigned g = next_rand(&seed) % 5, cpus = 1 + next_rand(&seed) % 8;
            int inbound = next_rand(&seed) % 4 != 0;
            nodes[i] = node("n", g, cpus, inbound);
            nodes[i].eligible = next_rand(&seed) % 6 != 0;
            nodes[i].inbound_test =
                next_rand(&seed) % 5 == 0 ? (int) (1 + next_rand(&seed) % 2) : 0;
            nodes[i].gpu_used = next_rand(&seed) & nodes[i].gpu_present;
            nodes[i].cpus_used = next_rand(&seed) % (nodes[i].cpus + 1);
            nodes[i].mem_used_mb = (next_rand(&seed) % 3) * 6144;
        }
        policy_req_t req = {.nodes = 1 + next_rand(&seed) % 4,
                            .gpus_per_node = next_rand(&seed) % 4,
                            .cpus_per_node = 1 + next_rand(&seed) % 4,
                            .mem_mb_per_node = (next_rand(&seed) % 3) * 4096};
        unsigned able = 0;
        for (size_t i = 0; i < n; i++)
            able += oracle_fits(&nodes[i], &req);
        policy_choice_t c;
        memset(&c, 0xa5, sizeof c);
        char why[200];
        int got = policy_place(nodes, n, &req, &c, why, sizeof why);
        if (able < req.nodes) {
            if (got != 0)
                fail_msg("round %d: placed a %u-node job with only %u nodes able (n=%u)", round,
                         req.nodes, able, got ? c.n : 0);
            continue;
        }
        if (got != 1)
            fail_msg("round %d: %u nodes able, %u needed, but it waits: %s", round, able, req.nodes,
                     why);
        assert_int_equal(c.n, req.nodes);
        uint64_t seen = 0;
        for (unsigned k = 0; k < c.n; k++) {
            assert_true(c.node[k] < n);
            assert_int_equal(seen & (1ULL << c.node[k]), 0); /* distinct nodes */
            seen |= 1ULL << c.node[k];
            const policy_node_t *nd = &nodes[c.node[k]];
            assert_true(oracle_fits(nd, &req));
            assert_int_equal(c.gpus[k] & ~(nd->gpu_present & ~nd->gpu_used), 0);
            assert_int_equal(policy_popcount(c.gpus[k]), req.gpus_per_node);
        }
    }
}

static void
test_impossible_explained(void **state)
{
    (void) state;
    policy_node_t nodes[] = {node("a", 2, 8, 1), node("b", 1, 4, 1)};
    char why[200];
    policy_req_t req = {.nodes = 1, .gpus_per_node = 4, .cpus_per_node = 1};
    assert_int_equal(policy_feasible(nodes, 2, &req, why, sizeof why), 0);
    assert_string_equal(why, "no node has 4 GPUs; the largest has 2");
    req.gpus_per_node = 1;
    req.cpus_per_node = 16;
    assert_int_equal(policy_feasible(nodes, 2, &req, why, sizeof why), 0);
    assert_string_equal(why, "no node has 16 CPUs; the largest has 8");
    req.cpus_per_node = 1;
    req.nodes = 3;
    assert_int_equal(policy_feasible(nodes, 2, &req, why, sizeof why), 0);
    assert_non_null(strstr(why, "needs 3 nodes"));
    req.nodes = 2;
    assert_int_equal(policy_feasible(nodes, 2, &req, why, sizeof why), 1);
    /* Busy or torpid nodes still count for feasibility. */
    nodes[0].eligible = 0;
    nodes[0].gpu_used = 3;
    req.nodes = 1;
    req.gpus_per_node = 2;
    assert_int_equal(policy_feasible(nodes, 2, &req, why, sizeof why), 1);
}

static void
test_cpu_and_memory_respected(void **state)
{
    (void) state;
    policy_node_t nodes[] = {node("a", 0, 4, 1)};
    policy_req_t req = {
        .nodes = 1, .gpus_per_node = 0, .cpus_per_node = 3, .mem_mb_per_node = 8192};
    policy_choice_t c;
    char why[128];
    assert_int_equal(policy_place(nodes, 1, &req, &c, why, sizeof why), 1);
    policy_take(nodes, &req, &c);
    assert_int_equal(policy_place(nodes, 1, &req, &c, why, sizeof why), 0); /* 1 CPU left */
    req.cpus_per_node = 1;
    req.mem_mb_per_node = 16384;
    assert_int_equal(policy_place(nodes, 1, &req, &c, why, sizeof why), 0); /* 8 GiB left */
    req.mem_mb_per_node = 8192;
    assert_int_equal(policy_place(nodes, 1, &req, &c, why, sizeof why), 1);
}

/* Multi-node jobs need nodes whose inbound test passed; untested nodes count as possible
 * at submit but are not placed; failed ones make a job impossible, and the reason says so. */
static void
test_inbound_selftest(void **state)
{
    (void) state;
    policy_node_t nodes[] = {node("a", 1, 4, 1), node("b", 1, 4, 1), node("c", 1, 4, 1),
                             node("d", 1, 4, 0)};
    char why[300];
    policy_choice_t c;
    policy_req_t req = {.nodes = 3, .gpus_per_node = 1, .cpus_per_node = 1};
    nodes[1].inbound_test = POLICY_INBOUND_PENDING;
    nodes[2].inbound_test = POLICY_INBOUND_PENDING;
    assert_int_equal(policy_feasible(nodes, 4, &req, why, sizeof why), 1);
    assert_int_equal(policy_place(nodes, 4, &req, &c, why, sizeof why), 0);
    assert_non_null(strstr(why, "waiting for the inbound connection test of 2 nodes"));
    nodes[1].inbound_test = POLICY_INBOUND_PASSED;
    nodes[2].inbound_test = POLICY_INBOUND_FAILED;
    assert_int_equal(policy_feasible(nodes, 4, &req, why, sizeof why), 0);
    assert_string_equal(why, "the job needs 3 nodes that each fit it and take inbound "
                             "connections; 2 passed the inbound test, 1 failed it, 1 reports no "
                             "inbound connections (NAT mode or inbound_ok = no) (wslq doctor "
                             "--node NAME: net.inbound)");
    assert_int_equal(policy_place(nodes, 4, &req, &c, why, sizeof why), 0);
    /* two nodes that passed take a 2-node job; single-node jobs ignore the test */
    req.nodes = 2;
    assert_int_equal(policy_place(nodes, 4, &req, &c, why, sizeof why), 1);
    assert_true((c.node[0] == 0 && c.node[1] == 1) || (c.node[0] == 1 && c.node[1] == 0));
    req.nodes = 1;
    nodes[0].gpu_used = nodes[1].gpu_used = nodes[3].gpu_used = 1;
    assert_int_equal(policy_place(nodes, 4, &req, &c, why, sizeof why), 1);
    assert_int_equal(c.node[0], 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_gpu_shared),
        cmocka_unit_test(test_best_fit_keeps_big_holes),
        cmocka_unit_test(test_gang_all_or_nothing),
        cmocka_unit_test(test_gang_partial_possible_not_taken),
        cmocka_unit_test(test_place_matches_oracle),
        cmocka_unit_test(test_impossible_explained),
        cmocka_unit_test(test_cpu_and_memory_respected),
        cmocka_unit_test(test_inbound_selftest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
