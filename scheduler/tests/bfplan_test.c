/* Backfill planning (bfplan.c): reservations from the running jobs' planned ends, gang
 * reservations, short jobs backfilled and long ones kept off reserved resources, jobs on
 * other nodes backfilled, several reservations, and (on random clusters) that backfilling
 * never delays the first reservation. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* after the standard headers */
#include <cmocka.h>

#include "scheduler/bfplan.h"
#include "scheduler/policy.h"

static policy_node_t
node(const char *name, unsigned gpus)
{
    policy_node_t n = {.name = name,
                       .eligible = 1,
                       .inbound_ok = 1,
                       .inbound_test = POLICY_INBOUND_PASSED,
                       .cpus = 16,
                       .mem_mb = 65536};
    n.gpu_present = gpus ? ((1ULL << gpus) - 1) : 0;
    return n;
}

/* A running job's part: GPUs 'gpus' of node x until 'end', also marked used on nodes. */
static void
run(bf_plan_t *p, policy_node_t *nodes, uint64_t job, size_t x, uint64_t gpus, int64_t end)
{
    bf_hold_t h = {.start_ms = 0, .end_ms = end, .job = job, .node = x, .gpus = gpus, .cpus = 1};
    bf_hold(p, &h);
    nodes[x].gpu_used |= gpus;
    nodes[x].cpus_used += 1;
}

/* Try to start a job of duration d now around the reservations: 1 placed (taken), 0 not. */
static int
try_start(bf_plan_t *p,
          policy_node_t *nodes,
          size_t n,
          const policy_req_t *req,
          int64_t d,
          uint64_t job,
          policy_choice_t *c)
{
    static bf_undo_t u; /* zeroed once: bf_undo leaves it ready */
    bf_apply(p, nodes, n, d, &u);
    char why[128];
    int ok = policy_place(nodes, n, req, c, why, sizeof why);
    bf_undo(nodes, &u);
    if (ok) {
        policy_take(nodes, req, c);
        bf_take(p, job, req, c, d, 0);
    }
    return ok;
}

static const policy_req_t one_gpu = {.nodes = 1, .gpus_per_node = 1, .cpus_per_node = 1};

/* pc1's 4 GPUs busy until 100, pc2's GPUs 0-1 until 50 and 2 free (3 free for nobody). */
static void
setup_two(bf_plan_t *p, policy_node_t *nodes)
{
    nodes[0] = node("pc1", 4);
    nodes[1] = node("pc2", 4);
    bf_init(p, 0, 4);
    run(p, nodes, 1, 0, 0xF, 100);
    run(p, nodes, 2, 1, 0x3, 50);
    run(p, nodes, 3, 1, 0x4, 60);
}

static void
test_gang_reservation_and_short_backfill(void **state)
{
    (void) state;
    policy_node_t nodes[2];
    bf_plan_t p;
    setup_two(&p, nodes);
    /* a 2-node job of 4 GPUs each cannot start: reserved when pc1 frees, on both nodes */
    policy_req_t gang = {.nodes = 2, .gpus_per_node = 4, .cpus_per_node = 1};
    policy_choice_t c;
    assert_int_equal(try_start(&p, nodes, 2, &gang, 500, 10, &c), 0);
    bf_resv_t r;
    assert_int_equal(bf_reserve(&p, nodes, 2, &gang, 500, 10, &r), 1);
    assert_int_equal(r.start_ms, 100);
    assert_int_equal(r.end_ms, 600);
    assert_int_equal(r.after_job, 1); /* pc1's job ends last */
    assert_int_equal(r.choice.n, 2);
    assert_non_null(bf_find(&p, 10));
    /* a 1-GPU job that ends by 100 backfills onto pc2's free GPU */
    assert_int_equal(try_start(&p, nodes, 2, &one_gpu, 40, 11, &c), 1);
    assert_int_equal(c.node[0], 1);
    assert_int_equal(c.gpus[0], 0x8);
    bf_free(&p);
}

static void
test_long_job_does_not_backfill(void **state)
{
    (void) state;
    policy_node_t nodes[2];
    bf_plan_t p;
    setup_two(&p, nodes);
    policy_req_t gang = {.nodes = 2, .gpus_per_node = 4, .cpus_per_node = 1};
    assert_int_equal(bf_reserve(&p, nodes, 2, &gang, 500, 10, NULL), 1);
    policy_choice_t c;
    /* ends at 101, after the reservation starts: kept off the free GPU */
    assert_int_equal(try_start(&p, nodes, 2, &one_gpu, 101, 11, &c), 0);
    /* ... which is free all the same: it would fit without the reservation */
    char why[128];
    assert_int_equal(policy_place(nodes, 2, &one_gpu, &c, why, sizeof why), 1);
    /* exactly up to the start is fine */
    assert_int_equal(try_start(&p, nodes, 2, &one_gpu, 100, 12, &c), 1);
    bf_free(&p);
}

static void
test_other_nodes_backfill(void **state)
{
    (void) state;
    policy_node_t nodes[2] = {node("pc1", 4), node("pc2", 4)};
    bf_plan_t p;
    bf_init(&p, 0, 4);
    run(&p, nodes, 1, 0, 0x3, 100); /* pc1: 2 of 4 busy until 100; pc2 idle */
    /* a job for 4 GPUs on pc1 only (pc2 ineligible for it, as --nodelist pc1 would do) */
    policy_node_t only1[2];
    memcpy(only1, nodes, sizeof only1);
    only1[1].eligible = 0;
    policy_req_t four = {.nodes = 1, .gpus_per_node = 4, .cpus_per_node = 1};
    bf_resv_t r;
    assert_int_equal(bf_reserve(&p, only1, 2, &four, 1000, 10, &r), 1);
    assert_int_equal(r.start_ms, 100);
    assert_int_equal(r.choice.node[0], 0);
    /* a long 2-GPU job cannot use pc1's free pair, but pc2 is nobody's: it starts there */
    policy_req_t two = {.nodes = 1, .gpus_per_node = 2, .cpus_per_node = 1};
    policy_choice_t c;
    assert_int_equal(try_start(&p, nodes, 2, &two, 100000, 11, &c), 1);
    assert_int_equal(c.node[0], 1);
    /* another long one has no place left but pc1's reserved pair */
    assert_int_equal(try_start(&p, nodes, 2, &two, 100000, 12, &c), 1);
    assert_int_equal(c.node[0], 1);
    assert_int_equal(try_start(&p, nodes, 2, &two, 100000, 13, &c), 0);
    /* a short one still fits before the reservation */
    assert_int_equal(try_start(&p, nodes, 2, &two, 50, 14, &c), 1);
    assert_int_equal(c.node[0], 0);
    bf_free(&p);
}

static void
test_several_reservations(void **state)
{
    (void) state;
    policy_node_t nodes[1] = {node("pc1", 4)};
    bf_plan_t p;
    bf_init(&p, 0, 2);
    run(&p, nodes, 1, 0, 0x1, 10);
    run(&p, nodes, 2, 0, 0x2, 20);
    run(&p, nodes, 3, 0, 0x4, 30);
    run(&p, nodes, 4, 0, 0x8, 40);
    policy_req_t four = {.nodes = 1, .gpus_per_node = 4, .cpus_per_node = 1};
    policy_req_t three = {.nodes = 1, .gpus_per_node = 3, .cpus_per_node = 1};
    bf_resv_t a, b;
    assert_int_equal(bf_reserve(&p, nodes, 1, &four, 100, 10, &a), 1);
    assert_int_equal(a.start_ms, 40);
    assert_int_equal(a.after_job, 4);
    /* the second waits for the first to end: never on top of it */
    assert_int_equal(bf_reserve(&p, nodes, 1, &three, 100, 11, &b), 1);
    assert_int_equal(b.start_ms, 140);
    assert_int_equal(b.after_job, 10);
    /* depth 2: no third */
    assert_int_equal(bf_wants(&p), 0);
    assert_int_equal(bf_reserve(&p, nodes, 1, &one_gpu, 1, 12, NULL), 0);
    /* a job that ends by 40 may use each GPU as it frees... only those free now: none */
    policy_choice_t c;
    assert_int_equal(try_start(&p, nodes, 1, &one_gpu, 5, 13, &c), 0);
    bf_free(&p);
}

static void
test_overdue_and_never(void **state)
{
    (void) state;
    policy_node_t nodes[1] = {node("pc1", 2)};
    bf_plan_t p;
    bf_init(&p, 1000, 4);
    /* a job past its planned end counts as ending any moment */
    run(&p, nodes, 1, 0, 0x3, 10);
    policy_req_t two = {.nodes = 1, .gpus_per_node = 2, .cpus_per_node = 1};
    bf_resv_t r;
    assert_int_equal(bf_reserve(&p, nodes, 1, &two, 100, 10, &r), 1);
    assert_int_equal(r.start_ms, 1001);
    /* a request no node can hold gets no reservation */
    policy_req_t eight = {.nodes = 1, .gpus_per_node = 8, .cpus_per_node = 1};
    assert_int_equal(bf_reserve(&p, nodes, 1, &eight, 100, 11, NULL), 0);
    policy_req_t gang = {.nodes = 2, .gpus_per_node = 1, .cpus_per_node = 1};
    assert_int_equal(bf_reserve(&p, nodes, 1, &gang, 100, 12, NULL), 0);
    bf_free(&p);
}

/* On random clusters: whatever is backfilled around the first reservation, planning that
 * job again (with the backfilled jobs running) finds it a start no later. */
static void
test_backfill_never_delays(void **state)
{
    (void) state;
    srand(12345);
    static const char *names[8] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    for (int round = 0; round < 500; round++) {
        size_t n = 2 + (size_t) (rand() % 6);
        policy_node_t nodes[8];
        for (size_t i = 0; i < n; i++)
            nodes[i] = node(names[i], 1 + (unsigned) (rand() % 4));
        bf_plan_t p;
        bf_init(&p, 0, 1);
        uint64_t id = 1;
        /* running jobs: random GPUs of random nodes until random ends */
        bf_hold_t running[64];
        size_t n_run = 0;
        for (size_t i = 0; i < n; i++)
            for (unsigned g = 0; g < 4; g++)
                if ((nodes[i].gpu_present >> g & 1) && rand() % 3 != 0 && n_run < 64) {
                    int64_t end = 1 + rand() % 200;
                    run(&p, nodes, id, i, 1ULL << g, end);
                    running[n_run++] = p.holds[p.n_holds - 1];
                    id++;
                }
        policy_req_t big = {.nodes = 1 + (unsigned) (rand() % 2),
                            .gpus_per_node = 1 + (unsigned) (rand() % 4),
                            .cpus_per_node = 1};
        int64_t big_d = 1 + rand() % 300;
        bf_resv_t r;
        if (!bf_reserve(&p, nodes, n, &big, big_d, 999, &r)) {
            bf_free(&p);
            continue; /* never fits this cluster */
        }
        /* backfill a stream of small random jobs */
        bf_hold_t started[64];
        size_t n_started = 0;
        for (int k = 0; k < 40; k++) {
            policy_req_t small = {.nodes = 1,
                                  .gpus_per_node = 1 + (unsigned) (rand() % 2),
                                  .cpus_per_node = 1 + (unsigned) (rand() % 4)};
            int64_t d = 1 + rand() % 400;
            policy_choice_t c;
            if (try_start(&p, nodes, n, &small, d, id, &c) && n_started < 64) {
                started[n_started++] = (bf_hold_t){.start_ms = 0,
                                                   .end_ms = d,
                                                   .job = id,
                                                   .node = c.node[0],
                                                   .gpus = c.gpus[0],
                                                   .cpus = small.cpus_per_node};
            }
            id++;
        }
        /* plan again from what runs now */
        policy_node_t fresh[8];
        for (size_t i = 0; i < n; i++) {
            fresh[i] = nodes[i];
            fresh[i].gpu_used = 0;
            fresh[i].cpus_used = 0;
        }
        bf_plan_t q;
        bf_init(&q, 0, 1);
        for (size_t i = 0; i < n_run; i++)
            bf_hold(&q, &running[i]);
        for (size_t i = 0; i < n_started; i++)
            bf_hold(&q, &started[i]);
        bf_resv_t again;
        assert_int_equal(bf_reserve(&q, fresh, n, &big, big_d, 999, &again), 1);
        assert_true(again.start_ms <= r.start_ms);
        bf_free(&q);
        bf_free(&p);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gang_reservation_and_short_backfill),
        cmocka_unit_test(test_long_job_does_not_backfill),
        cmocka_unit_test(test_other_nodes_backfill),
        cmocka_unit_test(test_several_reservations),
        cmocka_unit_test(test_overdue_and_never),
        cmocka_unit_test(test_backfill_never_delays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
