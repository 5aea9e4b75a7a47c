/* sysinfo_note_idle: what the Windows desktop holds on each GPU, as the worker tells the
 * scheduler (GpuInfo.mem_idle_used_mb): a GPU's use while no job of ours holds it, kept while
 * ours run, never less than the owner reporter's figure on a one-GPU PC. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
/* after the standard headers */
#include <cmocka.h>

#include "worker/sysinfo.h"

static void
gpu(sysinfo_t *si, uint32_t index, uint64_t total, uint64_t used)
{
    sysinfo_gpu_t *g = &si->gpus[si->ngpus++];
    g->index = index;
    g->mem_total_mb = total;
    g->mem_used_mb = used;
}

static void
test_idle_use(void **state)
{
    (void) state;
    sysinfo_t si;
    memset(&si, 0, sizeof si);
    gpu(&si, 0, 24564, 1800);
    gpu(&si, 1, 24576, 300);
    sysinfo_note_idle(&si, 0, 0, -1);
    assert_int_equal(si.gpus[0].mem_idle_mb, 1800);
    assert_int_equal(si.gpus[1].mem_idle_mb, 300);
    /* a job of ours on GPU 0 now uses memory: GPU 0 keeps its idle figure, GPU 1 follows */
    si.gpus[0].mem_used_mb = 9000;
    si.gpus[1].mem_used_mb = 700;
    sysinfo_note_idle(&si, 1, 0, -1);
    assert_int_equal(si.gpus[0].mem_idle_mb, 1800);
    assert_int_equal(si.gpus[1].mem_idle_mb, 700);
    /* a job whose GPUs are not known (adopted after a restart): nothing is taken as idle */
    si.gpus[1].mem_used_mb = 5000;
    sysinfo_note_idle(&si, 0, 1, -1);
    assert_int_equal(si.gpus[1].mem_idle_mb, 700);
    /* two GPUs: the owner's total cannot be split, so it is not used */
    sysinfo_note_idle(&si, 1, 0, 12000);
    assert_int_equal(si.gpus[0].mem_idle_mb, 1800);
}

static void
test_owner_floor(void **state)
{
    (void) state;
    sysinfo_t si;
    memset(&si, 0, sizeof si);
    gpu(&si, 0, 24564, 9000);
    sysinfo_gpu_t *dx = &si.gpus[si.ngpus++]; /* a DirectX GPU does not count */
    dx->index = 1;
    dx->dx = 1;
    dx->mem_total_mb = 24560;
    sysinfo_note_idle(&si, 1, 0, -1);
    assert_int_equal(si.gpus[0].mem_idle_mb, 0); /* ours from the start: not seen idle */
    sysinfo_note_idle(&si, 1, 0, 2500);          /* the reporter: the desktop holds 2500 */
    assert_int_equal(si.gpus[0].mem_idle_mb, 2500);
    sysinfo_note_idle(&si, 1, 0, 1000); /* never lowered while ours run */
    assert_int_equal(si.gpus[0].mem_idle_mb, 2500);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_use),
        cmocka_unit_test(test_owner_floor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
