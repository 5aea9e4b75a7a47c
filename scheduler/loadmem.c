/* See loadmem.h. Measured (bench/restart_bench.py): with 100,000 active jobs the load was
 * half page faults, one per 4 KiB of freshly grown heap, each costly on a virtual machine.
 *
 * Past LOADMEM_AFTER jobs (a small queue is left alone) the heap grows LOADMEM_PAD at a time
 * and each new stretch is advised MADV_HUGEPAGE (honoured when transparent huge pages are
 * "madvise" or "always"; a no-op when "never"). Setting M_TOP_PAD turns off glibc's sliding
 * mmap threshold, so the two thresholds are set to the values it slides to (32 MiB, trim at
 * twice that). Only the main thread's heap grows with sbrk; a load on another thread (tests
 * that run the core in a thread) sees the break not move and advises nothing. */
#include "scheduler/loadmem.h"

#include <malloc.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "scheduler/sched_int.h"

#define LOADMEM_AFTER    2000        /* jobs loaded before the heap is switched */
#define LOADMEM_PAD      (32u << 20) /* heap growth step while loading */
#define LOADMEM_TOP_PAD  (128 << 10) /* glibc's default M_TOP_PAD */
#define LOADMEM_MMAP_MAX (32 << 20)  /* where glibc's sliding mmap threshold stops */

static __thread size_t n_loaded;
static __thread int switched;
static __thread uintptr_t advised_end; /* the heap up to here is advised */

void
loadmem_job(Wslq__JobInfo *info, void *arg)
{
    if (++n_loaded == LOADMEM_AFTER) {
        mallopt(M_MMAP_THRESHOLD, LOADMEM_MMAP_MAX);
        mallopt(M_TRIM_THRESHOLD, 2 * LOADMEM_MMAP_MAX);
        mallopt(M_TOP_PAD, LOADMEM_PAD);
        advised_end = (uintptr_t) sbrk(0);
        switched = 1;
    }
    if (switched) {
        uintptr_t top = (uintptr_t) sbrk(0);
        if (top > advised_end) {
            uintptr_t page = (uintptr_t) sysconf(_SC_PAGESIZE);
            uintptr_t from = advised_end & ~(page - 1);
            (void) madvise((void *) from, top - from, MADV_HUGEPAGE);
            advised_end = top;
        }
    }
    jobs_load(info, arg);
}

size_t
loadmem_done(void)
{
    if (switched)
        mallopt(M_TOP_PAD, LOADMEM_TOP_PAD);
    size_t n = n_loaded;
    n_loaded = 0;
    switched = 0;
    advised_end = 0;
    return n;
}
