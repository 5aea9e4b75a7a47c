/* policy: choosing GPUs by model and memory, and sharing them by declared memory (--gpu-type,
 * --gpu-mem-min, --gpu-mem): type matching, packing, the desktop's part never given out, whole
 * and shared jobs never on one GPU, and the reasons a request is refused or waits. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
/* after the standard headers */
#include <cmocka.h>

#include "scheduler/policy.h"

#define R4090 "NVIDIA GeForce RTX 4090"
#define R3090 "NVIDIA GeForce RTX 3090"

/* A node whose GPUs are the given models, each with mem_mb memory and 'other' held by others. */
static policy_node_t
node(const char *name, unsigned gpus, const char *model, uint32_t mem_mb, uint64_t other)
{
    policy_node_t n = {.name = name, .eligible = 1, .inbound_ok = 1, .cpus = 8, .mem_mb = 16384};
    n.gpu_present = gpus ? ((1ULL << gpus) - 1) : 0;
    for (unsigned b = 0; b < gpus; b++)
        n.gpu[b] = (policy_gpu_t){.model = model, .mem_mb = mem_mb, .other_mb = other};
    return n;
}

static void
test_type_match(void **state)
{
    (void) state;
    policy_gpu_t g = {.model = R4090, .mem_mb = 24564};
    policy_gpu_t dx = {.model = "AMD Radeon RX 7900 XTX", .mem_mb = 24560, .dx = 1};
    policy_gpu_t unknown = {0};
    assert_true(policy_gpu_type_match(NULL, &g));
    assert_true(policy_gpu_type_match("", &unknown));
    assert_true(policy_gpu_type_match("4090", &g));
    assert_true(policy_gpu_type_match("rtx 4090", &g));    /* any case, words with spaces */
    assert_true(policy_gpu_type_match("a6000, 4090", &g)); /* any of several */
    assert_false(policy_gpu_type_match("3090", &g));
    assert_false(policy_gpu_type_match("4090", &unknown));
    assert_false(policy_gpu_type_match("dx", &g)); /* NVIDIA GPUs are not dx */
    assert_true(policy_gpu_type_match("dx", &dx));
    assert_true(policy_gpu_type_match("4090,DX", &dx));
    assert_false(policy_gpu_type_match("radeon", &dx)); /* a dx GPU only as dx */
    assert_false(policy_gpu_type_match(",", &g));
}

static void
test_type_picks_node_and_gpu(void **state)
{
    (void) state;
    policy_node_t nodes[] = {node("a", 1, R3090, 24576, 0), node("b", 2, R3090, 24576, 0)};
    nodes[1].gpu[1].model = R4090;
    policy_req_t req = {.nodes = 1, .gpus_per_node = 1, .cpus_per_node = 1, .gpu_type = "4090"};
    policy_choice_t c;
    char why[256];
    assert_int_equal(policy_place(nodes, 2, &req, &c, why, sizeof why), 1);
    assert_int_equal(c.node[0], 1);
    assert_int_equal(c.gpus[0], 2); /* GPU 1, the 4090, not the lower index */
    policy_take(nodes, &req, &c);
    assert_int_equal(policy_place(nodes, 2, &req, &c, why, sizeof why), 0);
    assert_string_equal(why, "waiting for resources: 1 GPU of type 4090, 1 CPU free on one node");
    /* any type: the 3090s are still free */
    req.gpu_type = NULL;
    assert_int_equal(policy_place(nodes, 2, &req, &c, why, sizeof why), 1);
    assert_int_equal(c.gpus[0], 1);
}

static void
test_mem_min(void **state)
{
    (void) state;
    policy_node_t nodes[] = {node("small", 2, "NVIDIA GeForce RTX 3060", 12288, 0),
                             node("big", 1, R4090, 24564, 0)};
    policy_req_t req = {
        .nodes = 1, .gpus_per_node = 1, .cpus_per_node = 1, .gpu_mem_min_mb = 20480};
    policy_choice_t c;
    char why[256];
    assert_int_equal(policy_feasible(nodes, 2, &req, why, sizeof why), 1);
    assert_int_equal(policy_place(nodes, 2, &req, &c, why, sizeof why), 1);
    assert_int_equal(c.node[0], 1);
    req.gpus_per_node = 2; /* two 20G GPUs on one node: none has them */
    assert_int_equal(policy_feasible(nodes, 2, &req, why, sizeof why), 0);
    assert_string_equal(why, "no node has 2 GPUs with that memory; the most on one node is 1");
    req.gpus_per_node = 1;
    req.gpu_mem_min_mb = 40960;
    assert_int_equal(policy_feasible(nodes, 2, &req, why, sizeof why), 0);
    assert_string_equal(why, "no GPU has 40960 MiB of memory; the largest has 24564 MiB");
}

static void
test_feasibility_reasons(void **state)
{
    (void) state;
    policy_node_t nodes[] = {node("a", 1, R3090, 24576, 0), node("b", 1, R4090, 24564, 0),
                             node("c", 2, "declared", 0, 0)};
    policy_req_t req = {.nodes = 1, .gpus_per_node = 1, .cpus_per_node = 1, .gpu_type = "a100"};
    char why[256];
    assert_int_equal(policy_feasible(nodes, 3, &req, why, sizeof why), 0);
    assert_string_equal(why, "no GPU matches --gpu-type a100 (the GPUs here: " R3090 ", " R4090
                             ", declared)");
    req.gpu_type = "4090";
    req.gpus_per_node = 2;
    assert_int_equal(policy_feasible(nodes, 3, &req, why, sizeof why), 0);
    assert_string_equal(why, "no node has 2 GPUs of type 4090; the most on one node is 1");
    req.gpus_per_node = 1;
    req.gpu_mem_mb = 30000;
    assert_int_equal(policy_feasible(nodes, 3, &req, why, sizeof why), 0);
    assert_string_equal(why, "no GPU of type 4090 has 30000 MiB of memory; the largest has "
                             "24564 MiB");
    req.gpu_type = "declared"; /* declared GPUs report no memory: a share never fits */
    req.gpu_mem_mb = 1024;
    assert_int_equal(policy_feasible(nodes, 3, &req, why, sizeof why), 0);
    assert_non_null(strstr(why, "reports its memory"));
    req.gpu_type = "";
    assert_int_equal(policy_feasible(nodes, 3, &req, why, sizeof why), 1);
}

/* Three 8G shares on a 24G card whose desktop holds 1843 MiB: two fit, the third waits and
 * says how much the GPU has free. */
static void
test_pack_by_memory(void **state)
{
    (void) state;
    policy_node_t nodes[] = {node("pc1", 1, R4090, 24564, 1843)};
    policy_req_t req = {.nodes = 1, .gpus_per_node = 1, .cpus_per_node = 1, .gpu_mem_mb = 8192};
    policy_choice_t c;
    char why[256];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(policy_place(nodes, 1, &req, &c, why, sizeof why), 1);
        assert_int_equal(c.gpus[0], 1);
        policy_take(nodes, &req, &c);
    }
    assert_int_equal(nodes[0].gpu_used, 0); /* shared, not held whole */
    assert_int_equal(nodes[0].gpu_shared, 1);
    assert_int_equal(nodes[0].gpu[0].shared_mb, 16384);
    assert_int_equal(policy_gpu_free_mb(&nodes[0], 0), 24564 - 1843 - 16384);
    assert_int_equal(policy_place(nodes, 1, &req, &c, why, sizeof why), 0);
    assert_string_equal(why, "waiting for GPU memory: 1 GPU with 8192 MiB free each, 1 CPU on "
                             "one node (the most free on a GPU now: 6337 MiB)");
    /* a smaller share still fits in what is left */
    req.gpu_mem_mb = 6337;
    assert_int_equal(policy_place(nodes, 1, &req, &c, why, sizeof why), 1);
    req.gpu_mem_mb = 6338;
    assert_int_equal(policy_place(nodes, 1, &req, &c, why, sizeof why), 0);
    /* never feasible-refused: the card could take it when idle */
    assert_int_equal(policy_feasible(nodes, 1, &req, why, sizeof why), 1);
}

/* What the desktop holds is never given out, even to the first share. */
static void
test_desktop_part_kept(void **state)
{
    (void) state;
    policy_node_t nodes[] = {node("pc1", 1, R4090, 24564, 20000)};
    policy_req_t req = {.nodes = 1, .gpus_per_node = 1, .cpus_per_node = 1, .gpu_mem_mb = 6144};
    policy_choice_t c;
    char why[256];
    assert_int_equal(policy_place(nodes, 1, &req, &c, why, sizeof why), 0);
    assert_non_null(strstr(why, "the most free on a GPU now: 4564 MiB"));
    req.gpu_mem_mb = 4096;
    assert_int_equal(policy_place(nodes, 1, &req, &c, why, sizeof why), 1);
    /* more held than the card has (a stale report): nothing free, no wrap-around */
    nodes[0].gpu[0].other_mb = 30000;
    assert_int_equal(policy_gpu_free_mb(&nodes[0], 0), 0);
    assert_int_equal(policy_place(nodes, 1, &req, &c, why, sizeof why), 0);
}

/* A GPU with a sharing job is not given whole, a GPU held whole takes no share, and shares go
 * to a GPU already shared first so whole GPUs stay free. */
static void
test_whole_and_shared_exclusive(void **state)
{
    (void) state;
    policy_node_t nodes[] = {node("pc1", 2, R4090, 24564, 0)};
    policy_req_t share = {.nodes = 1, .gpus_per_node = 1, .cpus_per_node = 1, .gpu_mem_mb = 4096};
    policy_req_t whole = {.nodes = 1, .gpus_per_node = 1, .cpus_per_node = 1};
    policy_choice_t c;
    char why[256];
    assert_int_equal(policy_place(nodes, 1, &share, &c, why, sizeof why), 1);
    assert_int_equal(c.gpus[0], 1);
    policy_take(nodes, &share, &c);
    assert_int_equal(policy_place(nodes, 1, &whole, &c, why, sizeof why), 1);
    assert_int_equal(c.gpus[0], 2); /* not GPU 0, which has a share */
    policy_take(nodes, &whole, &c);
    assert_int_equal(policy_place(nodes, 1, &whole, &c, why, sizeof why), 0);
    assert_int_equal(policy_place(nodes, 1, &share, &c, why, sizeof why), 1);
    assert_int_equal(c.gpus[0], 1); /* GPU 1 is held whole */
    assert_int_equal(policy_gpu_free_mb(&nodes[0], 1), 0);

    /* both free: the second share joins the first on GPU 0, leaving GPU 1 whole */
    policy_node_t fresh[] = {node("pc2", 2, R4090, 24564, 0)};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(policy_place(fresh, 1, &share, &c, why, sizeof why), 1);
        assert_int_equal(c.gpus[0], 1);
        policy_take(fresh, &share, &c);
    }
    assert_int_equal(policy_place(fresh, 1, &whole, &c, why, sizeof why), 1);
    assert_int_equal(c.gpus[0], 2);
    /* two shares per job: one on each GPU */
    policy_node_t two[] = {node("pc3", 2, R4090, 24564, 0)};
    share.gpus_per_node = 2;
    assert_int_equal(policy_place(two, 1, &share, &c, why, sizeof why), 1);
    assert_int_equal(c.gpus[0], 3);
    policy_take(two, &share, &c);
    assert_int_equal(two[0].gpu[0].shared_mb, 4096);
    assert_int_equal(two[0].gpu[1].shared_mb, 4096);
}

/* Best fit among shares: the GPU with the least free memory that still fits. */
static void
test_share_best_fit(void **state)
{
    (void) state;
    policy_node_t nodes[] = {node("pc1", 2, R4090, 24564, 0)};
    nodes[0].gpu_shared = 3;
    nodes[0].gpu[0].shared_mb = 4096;
    nodes[0].gpu[1].shared_mb = 16384;
    policy_req_t req = {.nodes = 1, .gpus_per_node = 1, .cpus_per_node = 1, .gpu_mem_mb = 6144};
    policy_choice_t c;
    char why[256];
    assert_int_equal(policy_place(nodes, 1, &req, &c, why, sizeof why), 1);
    assert_int_equal(c.gpus[0], 2);
    req.gpu_mem_mb = 10000; /* only GPU 0 has room */
    assert_int_equal(policy_place(nodes, 1, &req, &c, why, sizeof why), 1);
    assert_int_equal(c.gpus[0], 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_match),
        cmocka_unit_test(test_type_picks_node_and_gpu),
        cmocka_unit_test(test_mem_min),
        cmocka_unit_test(test_feasibility_reasons),
        cmocka_unit_test(test_pack_by_memory),
        cmocka_unit_test(test_desktop_part_kept),
        cmocka_unit_test(test_whole_and_shared_exclusive),
        cmocka_unit_test(test_share_best_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
