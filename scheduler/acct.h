/* Accounting (acct.c): the figures of ended jobs and the usage totals, shared by the loop's
 * requests (wslq history, wslq usage) and the dashboard, which reads through its own
 * read-only queue connection. Pure of the loop's state. */
#ifndef WSLQ_SCHEDULER_ACCT_H
#define WSLQ_SCHEDULER_ACCT_H

#include <stdint.h>

#include "common/err.h"
#include "proto/wslq.pb-c.h"
#include "scheduler/queue.h"

/* An ended job's accounting figures: GPUs and CPUs (nodes x per node), wait (start - submit),
 * run time (end - start, of its last attempt), GPU- and CPU-seconds (x run time). Strings
 * point into info; nodes are left to the caller. */
void acct_figures(const Wslq__JobInfo *info, Wslq__AcctJob *a);

/* GPU-, CPU- and run seconds and job counts of the jobs that ended in [since_ms, until_ms)
 * (0: no bound), per user (most GPU-seconds first) and per node (by name; a job on several
 * nodes counts an equal share on each). Fills rep's lists and window: free them with
 * acct_usage_free. 0, or -1 with *err. */
int
acct_usage(queue_t *q, int64_t since_ms, int64_t until_ms, Wslq__UsageReply *rep, wq_error_t *err);
void acct_usage_free(Wslq__UsageReply *rep);

#endif
