/* policy: no GPU shared, best fit, gang all-or-nothing, impossible requests explained. */
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
    /* c cannot take inbound connections: a 3-node job must wait (and takes nothing). */
    assert_int_equal(policy_place(nodes, 3, &req, &c, why, sizeof why), 0);
    assert_int_equal(nodes[0].gpu_used, 0);
    req.nodes = 2;
    assert_int_equal(policy_place(nodes, 3, &req, &c, why, sizeof why), 1);
    assert_int_equal(c.n, 2);
    assert_true(c.node[0] != c.node[1]);
    assert_true(c.node[0] != 2 && c.node[1] != 2);
    assert_int_equal(c.gpus[0], 3);
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
        cmocka_unit_test(test_impossible_explained),
        cmocka_unit_test(test_cpu_and_memory_respected),
        cmocka_unit_test(test_inbound_selftest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
