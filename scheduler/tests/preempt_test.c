/* preempt_choose: which running jobs a waiting higher-priority job preempts, on synthetic
 * clusters: the fewest, the lowest priority first, then the most recently started; never a
 * job that is not preemptible, never one of an equal or higher priority; jobs already
 * stopping count as free (wait for them, preempt nothing more); gangs across nodes. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
/* after the standard headers */
#include <cmocka.h>

#include "scheduler/preempt.h"

#define MAXC 16

typedef struct {
    policy_node_t nodes[8];
    size_t nn;
    preempt_cand_t c[MAXC];
    size_t node_of[MAXC][4];
    uint64_t gpus_of[MAXC][4];
    size_t nc;
} cluster_t;

static void
add_node(cluster_t *cl, const char *name, unsigned gpus)
{
    policy_node_t *p = &cl->nodes[cl->nn++];
    memset(p, 0, sizeof *p);
    p->name = name;
    p->eligible = 1;
    p->inbound_ok = 1;
    p->inbound_test = POLICY_INBOUND_PASSED;
    p->cpus = 16;
    p->mem_mb = 65536;
    p->gpu_present = gpus >= 64 ? ~0ULL : (1ULL << gpus) - 1;
}

/* A running job holding 'mask' GPUs on node 'node' (and 1 CPU); returns its index. */
static size_t
add_job(cluster_t *cl, int32_t prio, int64_t start, int preemptible, size_t node, uint64_t mask)
{
    size_t i = cl->nc++;
    preempt_cand_t *c = &cl->c[i];
    memset(c, 0, sizeof *c);
    c->priority = prio;
    c->start_ms = start;
    c->preemptible = preemptible;
    c->cpus = 1;
    c->n = 1;
    cl->node_of[i][0] = node;
    cl->gpus_of[i][0] = mask;
    c->node = cl->node_of[i];
    c->gpus = cl->gpus_of[i];
    cl->nodes[node].gpu_used |= mask;
    cl->nodes[node].cpus_used += 1;
    return i;
}

/* A second part of job i on another node. */
static void
add_part(cluster_t *cl, size_t i, size_t node, uint64_t mask)
{
    preempt_cand_t *c = &cl->c[i];
    cl->node_of[i][c->n] = node;
    cl->gpus_of[i][c->n] = mask;
    c->n++;
    cl->nodes[node].gpu_used |= mask;
    cl->nodes[node].cpus_used += 1;
}

static policy_req_t
req(unsigned nodes, unsigned gpus)
{
    policy_req_t r = {.nodes = nodes, .gpus_per_node = gpus, .cpus_per_node = 1};
    return r;
}

static int
choose(cluster_t *cl, policy_req_t r, int32_t prio, size_t *v, size_t *nv)
{
    return preempt_choose(cl->nodes, cl->nn, &r, prio, cl->c, cl->nc, v, nv);
}

static void
test_one_gpu_lowest_priority_first(void **state)
{
    (void) state;
    cluster_t cl = {0};
    add_node(&cl, "pc1", 4);
    add_job(&cl, 0, 100, 1, 0, 1 << 0);  /* 0: prio 0 */
    add_job(&cl, -5, 100, 1, 0, 1 << 1); /* 1: prio -5: first */
    add_job(&cl, 3, 100, 1, 0, 1 << 2);  /* 2 */
    add_job(&cl, 0, 100, 0, 0, 1 << 3);  /* 3: not preemptible */
    size_t v[MAXC], nv = 99;
    assert_int_equal(choose(&cl, req(1, 1), 10, v, &nv), PREEMPT_CHOSE);
    assert_int_equal(nv, 1);
    assert_int_equal(v[0], 1);
    /* the most recently started among equal priorities */
    cluster_t c2 = {0};
    add_node(&c2, "pc1", 3);
    add_job(&c2, 0, 100, 1, 0, 1 << 0);
    add_job(&c2, 0, 300, 1, 0, 1 << 1); /* newest */
    add_job(&c2, 0, 200, 1, 0, 1 << 2);
    assert_int_equal(choose(&c2, req(1, 1), 1, v, &nv), PREEMPT_CHOSE);
    assert_int_equal(nv, 1);
    assert_int_equal(v[0], 1);
}

static void
test_never_equal_or_higher_nor_unpreemptible(void **state)
{
    (void) state;
    cluster_t cl = {0};
    add_node(&cl, "pc1", 2);
    add_job(&cl, 5, 100, 1, 0, 1 << 0); /* same priority as the waiting job */
    add_job(&cl, 9, 100, 1, 0, 1 << 1); /* higher */
    size_t v[MAXC], nv = 99;
    assert_int_equal(choose(&cl, req(1, 1), 5, v, &nv), PREEMPT_NONE);
    assert_int_equal(nv, 0);
    cluster_t c2 = {0};
    add_node(&c2, "pc1", 1);
    add_job(&c2, -100, 100, 0, 0, 1 << 0); /* lowest priority but not preemptible */
    assert_int_equal(choose(&c2, req(1, 1), 100, v, &nv), PREEMPT_NONE);
    assert_int_equal(nv, 0);
    /* enough victims exist only with the unpreemptible one: none at all is chosen */
    cluster_t c3 = {0};
    add_node(&c3, "pc1", 2);
    add_job(&c3, 0, 100, 1, 0, 1 << 0);
    add_job(&c3, 0, 100, 0, 0, 1 << 1);
    assert_int_equal(choose(&c3, req(1, 2), 10, v, &nv), PREEMPT_NONE);
    assert_int_equal(nv, 0);
}

static void
test_fewest(void **state)
{
    (void) state;
    /* pc1: three 1-GPU jobs of prio 0 on GPUs 0-2, GPU 3 free; pc2: one 4-GPU job of prio 1.
     * A 4-GPU job needs either the three small ones or the big one: the lowest priority
     * comes first, so the three small ones (prio 0) are chosen, all needed. */
    cluster_t cl = {0};
    add_node(&cl, "pc1", 4);
    add_node(&cl, "pc2", 4);
    add_job(&cl, 0, 100, 1, 0, 1 << 0);
    add_job(&cl, 0, 200, 1, 0, 1 << 1);
    add_job(&cl, 0, 300, 1, 0, 1 << 2);
    add_job(&cl, 1, 100, 1, 1, 0xf);
    size_t v[MAXC], nv = 0;
    assert_int_equal(choose(&cl, req(1, 4), 10, v, &nv), PREEMPT_CHOSE);
    assert_int_equal(nv, 3);
    for (size_t k = 0; k < nv; k++)
        assert_true(v[k] <= 2);
    /* a 1-GPU job with GPU 3 free would fit already; with it taken, one victim is enough,
     * not every job added on the way (the set is minimal) */
    cl.nodes[0].gpu_used |= 1 << 3;
    assert_int_equal(choose(&cl, req(1, 1), 10, v, &nv), PREEMPT_CHOSE);
    assert_int_equal(nv, 1);
    assert_int_equal(v[0], 2); /* newest of the lowest priority */
    /* a 2-GPU job: the lowest-priority jobs are on pc1 (GPUs 0-2 + the taken 3): two of
     * them suffice */
    assert_int_equal(choose(&cl, req(1, 2), 10, v, &nv), PREEMPT_CHOSE);
    assert_int_equal(nv, 2);
    assert_true(v[0] <= 2 && v[1] <= 2 && v[0] != v[1]);
}

static void
test_minimal_gives_back_unneeded(void **state)
{
    (void) state;
    /* Order: A (prio 0, pc1 1 GPU), B (prio 1, pc2 2 GPUs). A 2-GPU job: A alone frees 1
     * GPU on pc1 (pc1 has 1 GPU used of 2, the other by an unpreemptible job): not enough;
     * adding B frees pc2 entirely: it fits, and A is then not needed and is given back. */
    cluster_t cl = {0};
    add_node(&cl, "pc1", 2);
    add_node(&cl, "pc2", 2);
    add_job(&cl, 0, 100, 1, 0, 1 << 0);  /* A */
    add_job(&cl, 50, 100, 0, 0, 1 << 1); /* not preemptible */
    add_job(&cl, 1, 100, 1, 1, 0x3);     /* B */
    size_t v[MAXC], nv = 0;
    assert_int_equal(choose(&cl, req(1, 2), 10, v, &nv), PREEMPT_CHOSE);
    assert_int_equal(nv, 1);
    assert_int_equal(v[0], 2);
}

static void
test_ending_counts_as_free(void **state)
{
    (void) state;
    cluster_t cl = {0};
    add_node(&cl, "pc1", 2);
    size_t a = add_job(&cl, 0, 100, 1, 0, 1 << 0);
    add_job(&cl, 0, 200, 1, 0, 1 << 1);
    cl.c[a].ending = 1; /* already being preempted */
    size_t v[MAXC], nv = 99;
    /* one GPU: the ending job's is enough: wait, preempt nothing more */
    assert_int_equal(choose(&cl, req(1, 1), 10, v, &nv), PREEMPT_WAIT);
    assert_int_equal(nv, 0);
    /* two GPUs: the other one is needed as well, and only it is chosen */
    assert_int_equal(choose(&cl, req(1, 2), 10, v, &nv), PREEMPT_CHOSE);
    assert_int_equal(nv, 1);
    assert_int_equal(v[0], 1);
}

static void
test_gangs_and_eligibility(void **state)
{
    (void) state;
    /* a 2-node job of prio 0 holds one GPU on each of pc1 and pc2 (1 GPU each): a 1-GPU job
     * preempts it; a 2-node 1-GPU job too */
    cluster_t cl = {0};
    add_node(&cl, "pc1", 1);
    add_node(&cl, "pc2", 1);
    size_t g = add_job(&cl, 0, 100, 1, 0, 1);
    add_part(&cl, g, 1, 1);
    size_t v[MAXC], nv = 0;
    assert_int_equal(choose(&cl, req(2, 1), 5, v, &nv), PREEMPT_CHOSE);
    assert_int_equal(nv, 1);
    assert_int_equal(v[0], g);
    /* a node the waiting job may not use (ineligible) is no help */
    cl.nodes[1].eligible = 0;
    assert_int_equal(choose(&cl, req(2, 1), 5, v, &nv), PREEMPT_NONE);
    assert_int_equal(choose(&cl, req(1, 1), 5, v, &nv), PREEMPT_CHOSE);
    /* a job no node could hold even empty: none */
    assert_int_equal(choose(&cl, req(1, 2), 5, v, &nv), PREEMPT_NONE);
    assert_int_equal(nv, 0);
    /* no nodes at all */
    assert_int_equal(preempt_choose(cl.nodes, 0, &(policy_req_t){.nodes = 1, .cpus_per_node = 1}, 5,
                                    cl.c, cl.nc, v, &nv),
                     PREEMPT_NONE);
}

static void
test_cpu_only(void **state)
{
    (void) state;
    /* CPU-only: a node of 16 CPUs full of 16 preemptible 1-CPU jobs; a 4-CPU job preempts
     * the 4 newest */
    cluster_t cl = {0};
    add_node(&cl, "pc1", 0);
    for (int i = 0; i < 16; i++)
        add_job(&cl, 0, 100 + i, 1, 0, 0);
    size_t v[MAXC], nv = 0;
    policy_req_t r = {.nodes = 1, .gpus_per_node = 0, .cpus_per_node = 4};
    assert_int_equal(preempt_choose(cl.nodes, cl.nn, &r, 1, cl.c, cl.nc, v, &nv), PREEMPT_CHOSE);
    assert_int_equal(nv, 4);
    for (size_t k = 0; k < nv; k++)
        assert_true(v[k] >= 12);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_gpu_lowest_priority_first),
        cmocka_unit_test(test_never_equal_or_higher_nor_unpreemptible),
        cmocka_unit_test(test_fewest),
        cmocka_unit_test(test_minimal_gives_back_unneeded),
        cmocka_unit_test(test_ending_counts_as_free),
        cmocka_unit_test(test_gangs_and_eligibility),
        cmocka_unit_test(test_cpu_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
