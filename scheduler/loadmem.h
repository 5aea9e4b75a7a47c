/* Loading a large backlog at start-up (loadmem.c): the heap that holds the loaded jobs is
 * given transparent huge pages, so the memory of 100,000 job records is faulted in 2 MiB at
 * a time rather than 4 KiB at a time. */
#ifndef WSLQ_LOADMEM_H
#define WSLQ_LOADMEM_H

#include "proto/wire.h"

/* A queue_list callback for sched_new's load: jobs_load(info, arg), and past
 * LOADMEM_AFTER jobs the heap grows in large steps with MADV_HUGEPAGE. */
void loadmem_job(Wslq__JobInfo *info, void *arg);
/* The load is over: the heap grows as before. Returns how many jobs were loaded. */
size_t loadmem_done(void);

#endif
