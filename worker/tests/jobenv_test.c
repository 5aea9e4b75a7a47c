/* jobenv: every DESIGN.md §6 variable for a 2-node x 2-GPU job, per_node mode, GPU-less jobs,
 * the account's HOME/USER/LOGNAME, $VAR expansion in argv and spec.env overriding the worker's
 * defaults. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* after the standard headers */
#include <cmocka.h>

#include "worker/jobenv.h"

static char *argv_torch[] = {
    "torchrun", "--node-rank", "$NODE_RANK",   "--master=${MASTER_ADDR}:$MASTER_PORT",
    "$HOME/x",  "$RANKX",      "${WORLD_SIZE", "cost$"};
static char *env_user[] = {"FOO=bar", "NCCL_IB_DISABLE=0"};
static uint32_t gpus_node1[] = {2, 3};
static char *uuids_node1[] = {"GPU-a", "GPU-b"};
static char *base_env[] = {"PATH=/usr/bin:/bin",       "HOME=/home/u",
                           "WSLQ_SCHEDULER=tcp://x:1", "RANK=99",
                           "NOTIFY_SOCKET=/run/x",     NULL};

typedef struct {
    Wslq__JobLaunch l;
    Wslq__JobSpec spec;
    Wslq__Alloc alloc;
} fixture_t;

/* Node 1 of a 2-node x 2-GPU job: global ranks 2 and 3. */
static void
init_2x2(fixture_t *f)
{
    wslq__job_launch__init(&f->l);
    wslq__job_spec__init(&f->spec);
    wslq__alloc__init(&f->alloc);
    f->spec.argv = argv_torch;
    f->spec.n_argv = sizeof argv_torch / sizeof argv_torch[0];
    f->spec.env = env_user;
    f->spec.n_env = 2;
    f->spec.name = "train";
    f->spec.nodes = 2;
    f->spec.gpus_per_node = 2;
    f->alloc.node = "pc2";
    f->alloc.node_rank = 1;
    f->alloc.gpus = gpus_node1;
    f->alloc.n_gpus = 2;
    f->alloc.gpu_uuids = uuids_node1;
    f->alloc.n_gpu_uuids = 2;
    f->alloc.first_rank = 2;
    f->alloc.nranks = 2;
    f->alloc.ip = "10.0.0.2";
    f->l.job_id = 42;
    f->l.attempt = 1;
    f->l.spec = &f->spec;
    f->l.alloc = &f->alloc;
    f->l.world_size = 4;
    f->l.nnodes = 2;
    f->l.master_addr = "10.0.0.1";
    f->l.master_port = 29510;
}

static const char *const no_shm_env[] = {"NCCL_SHM_DISABLE=1", NULL};
static const jobenv_ctx_t ctx = {
    "pc2", "eth0", "10.0.0.2", "/spool/42.1", "/spool/42.1/rdv.sock", 0, no_shm_env,
    NULL,  NULL,   NULL,       NULL};

/* A --gpu-mem share: the budget, the fraction of the rank's card, the allocator hints (the
 * job's own --env wins); none of them for whole GPUs. */
static void
test_gpu_mem_share(void **state)
{
    (void) state;
    fixture_t f;
    init_2x2(&f);
    char **e = jobenv_build(&f.l, &ctx, 0, base_env);
    assert_null(jobenv_get(e, "WSLQ_GPU_MEM"));
    assert_null(jobenv_get(e, "PYTORCH_CUDA_ALLOC_CONF"));
    jobenv_free(&e);
    uint64_t totals[] = {24564, 12288};
    f.alloc.gpu_mem_mb = 6144;
    f.alloc.gpu_mem_total_mb = totals;
    f.alloc.n_gpu_mem_total_mb = 2;
    e = jobenv_build(&f.l, &ctx, 0, base_env);
    assert_string_equal(jobenv_get(e, "CUDA_VISIBLE_DEVICES"), "2");
    assert_string_equal(jobenv_get(e, "WSLQ_GPU_MEM"), "6144");
    assert_string_equal(jobenv_get(e, "WSLQ_GPU_MEM_FRACTION"), "0.250");
    assert_string_equal(jobenv_get(e, "PYTORCH_CUDA_ALLOC_CONF"), "expandable_segments:True");
    assert_string_equal(jobenv_get(e, "TF_FORCE_GPU_ALLOW_GROWTH"), "true");
    jobenv_free(&e);
    e = jobenv_build(&f.l, &ctx, 1, base_env);
    assert_string_equal(jobenv_get(e, "WSLQ_GPU_MEM_FRACTION"), "0.500");
    jobenv_free(&e);
    char *own[] = {"PYTORCH_CUDA_ALLOC_CONF=max_split_size_mb:128"};
    f.spec.env = own;
    f.spec.n_env = 1;
    e = jobenv_build(&f.l, &ctx, 0, base_env);
    assert_string_equal(jobenv_get(e, "PYTORCH_CUDA_ALLOC_CONF"), "max_split_size_mb:128");
    jobenv_free(&e);
}

/* A DirectX GPU of another vendor is not CUDA's: DML_VISIBLE_DEVICES numbers it among the
 * node's adapters in DXCore's order, WSLQ_DX_ADAPTERS names its LUID. */
static void
test_dx_gpu(void **state)
{
    (void) state;
    fixture_t f;
    init_2x2(&f);
    char *luids[] = {"", "0x0000000000054321"};
    f.alloc.dx_luids = luids;
    f.alloc.n_dx_luids = 2;
    static const char *const order[] = {"0x000000000001a2b3", "0x0000000000054321", NULL};
    jobenv_ctx_t c = ctx;
    c.dx_order = order;
    char **e = jobenv_build(&f.l, &c, 1, base_env);
    assert_string_equal(jobenv_get(e, "CUDA_VISIBLE_DEVICES"), "");
    assert_string_equal(jobenv_get(e, "DML_VISIBLE_DEVICES"), "1");
    assert_string_equal(jobenv_get(e, "WSLQ_DX_ADAPTERS"), "0x0000000000054321");
    jobenv_free(&e);
    e = jobenv_build(&f.l, &c, 0, base_env); /* rank 0 has the NVIDIA GPU only */
    assert_string_equal(jobenv_get(e, "CUDA_VISIBLE_DEVICES"), "2");
    assert_null(jobenv_get(e, "DML_VISIBLE_DEVICES"));
    assert_null(jobenv_get(e, "WSLQ_DX_ADAPTERS"));
    jobenv_free(&e);
}

/* The CPUs the job is bound to: WSLQ_CPUS, even over the worker's own WSLQ_CPUS. */
static void
test_env_cpus(void **state)
{
    (void) state;
    fixture_t f;
    init_2x2(&f);
    jobenv_ctx_t c = ctx;
    c.cpus = "2-3,6";
    char *const worker_env[] = {"PATH=/usr/bin", "WSLQ_CPUS=0-7", NULL};
    char **e = jobenv_build(&f.l, &c, 0, worker_env);
    assert_string_equal(jobenv_get(e, "WSLQ_CPUS"), "2-3,6");
    jobenv_free(&e);
    c.cpus = "";
    e = jobenv_build(&f.l, &c, 0, worker_env);
    assert_null(jobenv_get(e, "WSLQ_CPUS"));
    jobenv_free(&e);
}

static void
test_env_2x2(void **state)
{
    (void) state;
    fixture_t f;
    init_2x2(&f);
    assert_int_equal(jobenv_nranks(&f.l), 2);
    char **e = jobenv_build(&f.l, &ctx, 1, base_env);
    assert_string_equal(jobenv_get(e, "WSLQ_JOB_ID"), "42");
    assert_string_equal(jobenv_get(e, "WSLQ_JOB_NAME"), "train");
    assert_string_equal(jobenv_get(e, "WSLQ_ATTEMPT"), "1");
    assert_null(jobenv_get(e, "WSLQ_ARRAY_INDEX"));
    assert_string_equal(jobenv_get(e, "WSLQ_NODE"), "pc2");
    assert_null(jobenv_get(e, "WSLQ_CPUS")); /* not bound */
    assert_string_equal(jobenv_get(e, "CUDA_VISIBLE_DEVICES"), "3");
    assert_string_equal(jobenv_get(e, "CUDA_DEVICE_ORDER"), "PCI_BUS_ID");
    assert_string_equal(jobenv_get(e, "WSLQ_GPU_UUIDS"), "GPU-b");
    assert_string_equal(jobenv_get(e, "RANK"), "3");
    assert_string_equal(jobenv_get(e, "WORLD_SIZE"), "4");
    assert_string_equal(jobenv_get(e, "LOCAL_RANK"), "1");
    assert_string_equal(jobenv_get(e, "LOCAL_WORLD_SIZE"), "2");
    assert_string_equal(jobenv_get(e, "GROUP_RANK"), "1");
    assert_string_equal(jobenv_get(e, "NODE_RANK"), "1");
    assert_string_equal(jobenv_get(e, "NNODES"), "2");
    assert_string_equal(jobenv_get(e, "MASTER_ADDR"), "10.0.0.1");
    assert_string_equal(jobenv_get(e, "MASTER_PORT"), "29510");
    assert_string_equal(jobenv_get(e, "TORCHELASTIC_RESTART_COUNT"), "1");
    assert_string_equal(jobenv_get(e, "NCCL_SOCKET_IFNAME"), "eth0");
    assert_string_equal(jobenv_get(e, "GLOO_SOCKET_IFNAME"), "eth0");
    assert_string_equal(jobenv_get(e, "WSLQ_METRICS"), "/spool/42.1/metrics-3.jsonl");
    assert_string_equal(jobenv_get(e, "WSLQ_RENDEZVOUS"), "/spool/42.1/rdv.sock");
    /* the node's NCCL profile (chosen by wslq doctor's checks) */
    assert_string_equal(jobenv_get(e, "NCCL_SHM_DISABLE"), "1");
    /* spec.env wins over the worker's value; the worker's private variables are gone */
    assert_string_equal(jobenv_get(e, "NCCL_IB_DISABLE"), "0");
    assert_string_equal(jobenv_get(e, "FOO"), "bar");
    assert_string_equal(jobenv_get(e, "PATH"), "/usr/bin:/bin");
    assert_null(jobenv_get(e, "WSLQ_SCHEDULER"));
    assert_null(jobenv_get(e, "NOTIFY_SOCKET"));
    /* each key once */
    size_t ranks = 0;
    for (char **p = e; *p; p++)
        ranks += strncmp(*p, "RANK=", 5) == 0;
    assert_int_equal(ranks, 1);
    jobenv_free(&e);
    assert_null(e);

    e = jobenv_build(&f.l, &ctx, 0, base_env);
    assert_string_equal(jobenv_get(e, "CUDA_VISIBLE_DEVICES"), "2");
    assert_string_equal(jobenv_get(e, "RANK"), "2");
    jobenv_free(&e);
}

/* --tf: TF_CONFIG names every rank's host:port in rank order and this rank's index. */
static void
test_env_tf(void **state)
{
    (void) state;
    fixture_t f;
    init_2x2(&f);
    char *workers[] = {"10.0.0.1:31000", "10.0.0.1:31001", "10.0.0.2:31002", "10.0.0.2:31003"};
    f.spec.tf = 1;
    f.l.tf_workers = workers;
    f.l.n_tf_workers = 4;
    char **e = jobenv_build(&f.l, &ctx, 1, NULL);
    assert_string_equal(jobenv_get(e, "TF_CONFIG"),
                        "{\"cluster\":{\"worker\":[\"10.0.0.1:31000\",\"10.0.0.1:31001\","
                        "\"10.0.0.2:31002\",\"10.0.0.2:31003\"]},\"task\":{\"type\":"
                        "\"worker\",\"index\":3}}");
    assert_string_equal(jobenv_get(e, "TF_FORCE_GPU_ALLOW_GROWTH"), "true");
    assert_string_equal(jobenv_get(e, "WSLQ_NPROC_PER_NODE"), "2");
    assert_string_equal(jobenv_get(e, "CUDA_VISIBLE_DEVICES"), "3");
    jobenv_free(&e);
    /* a launch naming too few workers for the rank sets none rather than a wrong one */
    f.l.n_tf_workers = 3;
    e = jobenv_build(&f.l, &ctx, 1, NULL);
    assert_null(jobenv_get(e, "TF_CONFIG"));
    jobenv_free(&e);
    /* without --tf nothing of TensorFlow's */
    f.spec.tf = 0;
    f.l.n_tf_workers = 4;
    e = jobenv_build(&f.l, &ctx, 1, NULL);
    assert_null(jobenv_get(e, "TF_CONFIG"));
    assert_null(jobenv_get(e, "TF_FORCE_GPU_ALLOW_GROWTH"));
    jobenv_free(&e);
}

static void
test_env_per_node_and_no_gpu(void **state)
{
    (void) state;
    fixture_t f;
    init_2x2(&f);
    f.spec.per_node = 1;
    f.alloc.nranks = 1;
    f.alloc.first_rank = 1;
    f.l.world_size = 2;
    assert_int_equal(jobenv_nranks(&f.l), 1);
    char **e = jobenv_build(&f.l, &ctx, 0, NULL);
    assert_string_equal(jobenv_get(e, "CUDA_VISIBLE_DEVICES"), "2,3");
    assert_string_equal(jobenv_get(e, "WSLQ_GPU_UUIDS"), "GPU-a,GPU-b");
    assert_string_equal(jobenv_get(e, "LOCAL_WORLD_SIZE"), "1");
    assert_string_equal(jobenv_get(e, "NODE_RANK"), "1");
    /* what the launcher passes to torchrun --nproc-per-node: the node's GPUs */
    assert_string_equal(jobenv_get(e, "WSLQ_NPROC_PER_NODE"), "2");
    assert_string_equal(jobenv_get(e, "WSLQ_GPUS_ON_NODE"), "2");
    assert_null(jobenv_get(e, "TF_CONFIG"));
    jobenv_free(&e);

    /* no GPU: CUDA_VISIBLE_DEVICES is empty (hides every GPU), master falls back */
    f.alloc.n_gpus = 0;
    f.alloc.n_gpu_uuids = 0;
    f.l.master_addr = "";
    f.l.master_port = 0;
    jobenv_ctx_t c2 = ctx;
    c2.iface = "";
    c2.rdv_path = NULL;
    c2.master_port = 30001;
    e = jobenv_build(&f.l, &c2, 0, NULL);
    assert_string_equal(jobenv_get(e, "CUDA_VISIBLE_DEVICES"), "");
    assert_string_equal(jobenv_get(e, "WSLQ_NPROC_PER_NODE"), "1");
    assert_string_equal(jobenv_get(e, "WSLQ_GPUS_ON_NODE"), "0");
    assert_string_equal(jobenv_get(e, "MASTER_ADDR"), "10.0.0.2");
    assert_string_equal(jobenv_get(e, "MASTER_PORT"), "30001");
    assert_null(jobenv_get(e, "NCCL_SOCKET_IFNAME"));
    assert_null(jobenv_get(e, "WSLQ_RENDEZVOUS"));
    jobenv_free(&e);
}

/* HOME, USER and LOGNAME are the account's when the ranks switch to one, and the worker's
 * otherwise; spec.env still has the last word. */
static void
test_env_account(void **state)
{
    (void) state;
    fixture_t f;
    init_2x2(&f);
    char *base[] = {"HOME=/root", "USER=root", "LOGNAME=root", "PATH=/bin", NULL};
    char **e = jobenv_build(&f.l, &ctx, 0, base);
    assert_string_equal(jobenv_get(e, "HOME"), "/root"); /* no switch: the worker's */
    assert_string_equal(jobenv_get(e, "USER"), "root");
    jobenv_free(&e);

    jobenv_ctx_t c2 = ctx;
    c2.user = "alice";
    c2.home = "/home/alice";
    e = jobenv_build(&f.l, &c2, 0, base);
    assert_string_equal(jobenv_get(e, "HOME"), "/home/alice");
    assert_string_equal(jobenv_get(e, "USER"), "alice");
    assert_string_equal(jobenv_get(e, "LOGNAME"), "alice");
    assert_string_equal(jobenv_get(e, "PATH"), "/bin");
    size_t homes = 0;
    for (char **p = e; *p; p++)
        homes += strncmp(*p, "HOME=", 5) == 0;
    assert_int_equal(homes, 1);
    jobenv_free(&e);

    char *user_env[] = {"HOME=/scratch/alice"};
    f.spec.env = user_env;
    f.spec.n_env = 1;
    e = jobenv_build(&f.l, &c2, 0, base);
    assert_string_equal(jobenv_get(e, "HOME"), "/scratch/alice");
    jobenv_free(&e);

    /* --secret-env values reach the job, after (and over) the plain ones */
    char *secret_env[] = {"HF_TOKEN=hf_s3cret", "HOME=/secret/home", "=bad"};
    f.spec.secret_env = secret_env;
    f.spec.n_secret_env = 3;
    e = jobenv_build(&f.l, &c2, 0, base);
    assert_string_equal(jobenv_get(e, "HF_TOKEN"), "hf_s3cret");
    assert_string_equal(jobenv_get(e, "HOME"), "/secret/home");
    assert_null(jobenv_get(e, ""));
    jobenv_free(&e);
}

static void
test_gpu_shares(void **state)
{
    (void) state;
    fixture_t f;
    init_2x2(&f);
    uint32_t four[] = {0, 1, 2, 3};
    f.alloc.gpus = four;
    f.alloc.n_gpus = 4;
    f.alloc.n_gpu_uuids = 0;
    size_t first, count;
    jobenv_rank_gpus(&f.l, 1, &first, &count); /* 4 GPUs, 2 ranks: two each */
    assert_int_equal(first, 2);
    assert_int_equal(count, 2);
    f.alloc.nranks = 3; /* uneven: every rank sees all */
    jobenv_rank_gpus(&f.l, 2, &first, &count);
    assert_int_equal(first, 0);
    assert_int_equal(count, 4);
    f.alloc.nranks = 1;
    jobenv_rank_gpus(&f.l, 0, &first, &count);
    assert_int_equal(count, 4);
}

static void
test_argv_expansion(void **state)
{
    (void) state;
    fixture_t f;
    init_2x2(&f);
    char **e = jobenv_build(&f.l, &ctx, 0, base_env);
    char **a = jobenv_argv(&f.spec, e);
    assert_string_equal(a[0], "torchrun");
    assert_string_equal(a[2], "1");
    assert_string_equal(a[3], "--master=10.0.0.1:29510");
    assert_string_equal(a[4], "$HOME/x"); /* not a wslq variable: left as typed */
    assert_string_equal(a[5], "$RANKX");
    assert_string_equal(a[6], "${WORLD_SIZE"); /* unterminated brace */
    assert_string_equal(a[7], "cost$");
    assert_null(a[8]);
    jobenv_free(&a);

    f.spec.wrap = 1; /* the shell expands wrap lines itself */
    a = jobenv_argv(&f.spec, e);
    assert_string_equal(a[2], "$NODE_RANK");
    jobenv_free(&a);
    jobenv_free(&e);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_2x2),
        cmocka_unit_test(test_env_cpus),
        cmocka_unit_test(test_env_per_node_and_no_gpu),
        cmocka_unit_test(test_env_account),
        cmocka_unit_test(test_gpu_shares),
        cmocka_unit_test(test_argv_expansion),
        cmocka_unit_test(test_env_tf),
        cmocka_unit_test(test_argv_expansion),
        cmocka_unit_test(test_gpu_mem_share),
        cmocka_unit_test(test_dx_gpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
